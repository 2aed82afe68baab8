/*
 * lc.h - the booking lifecycle: guards and transitions. Each transition runs in ONE store
 * transaction that writes the state change, its outbox rows and their dedupe keys (docs/design.md
 * rules 1 and 2). Nothing here sends anything: the dispatcher does.
 *
 * Threading: every function uses the caller's store connection (one per thread).
 */
#ifndef LC_H
#define LC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/gw.h"
#include "store/store.h"

struct tpl_env;

/* Who is acting: from the bearer token, or the customer holding a booking's manage link. */
struct lc_actor {
	int64_t user_id;
	int64_t org_id; /* 0: platform admin */
	int roles;      /* ROLE_* bits */
	bool customer;  /* the booking's customer (manage link): no user, no roles */
};

/* What the lifecycle needs to render effects. */
struct lc_env {
	const char *public_url; /* no trailing slash */
	size_t fanout_chunk;    /* new_request rows per fan-out transaction; 0: 1,000 */
};

enum lc_action {
	LC_CLAIM,
	LC_CHANGE_SESSION_TYPE,
	LC_CANCEL_REQUEST,
	LC_ACTION_COUNT
};

/* lc_request_guard - may actor do action on a request in status, claimed by claimer (0: none)?
 * GW_OK, GW_EFORBIDDEN (role or ownership), GW_ECLAIMED (claim of a claimed request) or
 * GW_ESTATE. Pure: the table the transitions use. */
gw_rc lc_request_guard(enum lc_action action, const char *status, const struct lc_actor *actor,
                       int64_t claimer);

/* lc_request_actions - what actor may do to request req (as store_request_get shows it,
 * borrowed) now, by the guards the transitions use: a new array of names among "claim",
 * "session-type" (PATCH), "scheduling-link" and "cancel", for pages to offer only what the
 * lifecycle allows. NULL when out of memory. */
json_t *lc_request_actions(const json_t *req, const struct lc_actor *actor);

/* lc_intake - validate a public request body (borrowed) and, in one transaction, write the
 * request and one new_request email per matching trainer. *out: {id, status, matched_trainers}
 * (new reference). */
gw_rc lc_intake(struct store *st, const struct lc_env *env, int64_t org, json_t *body,
                json_t **out, struct gw_err *err);

/* lc_request_cancel - an org admin or the claiming trainer cancels a new, claimed or scheduling
 * request ({reason} optional, at most 1000 bytes): in one transaction the request becomes
 * cancelled, its scheduling link stops working (410) and its unsent new_request and
 * scheduling_link emails expire. *out: the request (new reference). */
gw_rc lc_request_cancel(struct store *st, int64_t org, int64_t request,
                        const struct lc_actor *actor, json_t *body, json_t **out,
                        struct gw_err *err);

/* lc_claim - the trainer claims the request: exactly one wins (conditional UPDATE); the other
 * trainers' unsent new_request emails expire in the same transaction.
 * *out: {status, trainer_id}. */
gw_rc lc_claim(struct store *st, int64_t org, int64_t request, const struct lc_actor *actor,
               json_t **out, struct gw_err *err);

/* lc_request_patch - the claiming trainer changes the session type while claimed. */
gw_rc lc_request_patch(struct store *st, int64_t org, int64_t request,
                       const struct lc_actor *actor, json_t *body, json_t **out,
                       struct gw_err *err);

/* lc_fanout_step - enqueue the next chunk of the oldest fan-out an intake left for later, of a
 * request id above after (0: any), in its own transaction on st; a fan-out whose request is no
 * longer new is dropped. *more: there was one (call again); *request: its request id (the
 * caller passes it as after to go past one that fails). */
gw_rc lc_fanout_step(struct store *st, const struct lc_env *env, int64_t after, int64_t *request,
                     bool *more, struct gw_err *err);
/* lc_fanout_start - the background thread that runs lc_fanout_step until no fan-out is left,
 * at start (the rest of a fan-out a stop or a crash interrupted), when woken and every few
 * seconds (one left by another gateway on the same database); lc_fanout_wake - an intake left
 * one; lc_fanout_stop - stop and join the thread. */
gw_rc lc_fanout_start(const char *db_path, const char *public_url, struct gw_err *err);
void lc_fanout_wake(void);
void lc_fanout_stop(void);

/* lc_tpl_env - the email template environment of org (see lc.c); *hold: caller decrefs. */
gw_rc lc_tpl_env(struct store *st, const struct lc_env *env, int64_t org, json_t **hold,
                 struct tpl_env *t);

/* lc_enqueue - enqueue a payload (new reference taken) of provider class pclass ("email",
 * "calendar", "zoho") as an outbox row inside the caller's transaction; the rest as below. */
gw_rc lc_enqueue(struct store *st, int64_t org, const char *kind, const char *pclass,
                 const char *dedupe_key, int64_t request, int64_t booking, json_t *payload,
                 time_t not_before, time_t deadline, bool *inserted, struct gw_err *err);

/* lc_enqueue_email - enqueue an email payload (new reference taken) as an outbox row inside
 * the caller's transaction, not sent before not_before (0: now); *inserted (may be NULL) is
 * false when the dedupe key existed. */
gw_rc lc_enqueue_email(struct store *st, int64_t org, const char *kind, const char *dedupe_key,
                       int64_t request, int64_t booking, json_t *payload, time_t not_before,
                       time_t deadline, bool *inserted, struct gw_err *err);

/* lc_test_email - the acting org admin's test email to themself (kind test_email, dedupe key
 * test_email:{user}:{random}) through the outbox, in one transaction. *out: {kind, to,
 * dedupe_key} (new reference). GW_EFORBIDDEN for anyone but an org admin of org. */
gw_rc lc_test_email(struct store *st, const struct lc_env *env, int64_t org,
                    const struct lc_actor *actor, json_t **out, struct gw_err *err);

/* ---- bookings (lc_booking.c) ---- */

enum lc_booking_action {
	LC_B_CONFIRM,
	LC_B_COMPLETE,
	LC_B_UNDO_COMPLETE,
	LC_B_NO_SHOW_CUSTOMER, /* customer no-show only */
	LC_B_NO_SHOW_TRAINER,  /* any no-show that flags the trainer */
	LC_B_CANCEL,
	LC_B_RESCHEDULE,
	LC_B_VIEW,             /* read, notes, effects */
	LC_B_ACTION_COUNT
};

/* The facts a booking guard looks at. */
struct lc_booking_facts {
	const char *status;
	int64_t owner;      /* trainer id */
	time_t now, start, end;
	bool paid;          /* the customer's payment call was made */
	bool allow_undo;    /* settings.allow_undo_completion */
	int cutoff_hours;   /* settings.customer_change_cutoff_hours (0: no customer changes) */
	const char *trainer_name; /* named in a refusal to the customer: whom to contact */
};

/* lc_booking_facts_of - the facts of booking b (as store_booking_get shows it) under the
 * effective settings at now. Strings borrowed from b. */
void lc_booking_facts_of(const json_t *b, const json_t *settings, time_t now,
                         struct lc_booking_facts *f);

/* lc_change_cutoff_at - the last instant before which a customer may still change a booking
 * starting at start: start - hours. A change at or after it is refused. */
time_t lc_change_cutoff_at(time_t start, int hours);

/* lc_booking_guard - may actor do action on a booking with these facts? GW_OK, GW_EFORBIDDEN
 * (role, ownership, or too early for the trainer: "after the end"), GW_ESTATE (not from this
 * status). A customer actor may view, and cancel or reschedule a pending or confirmed booking
 * while now < lc_change_cutoff_at(start, cutoff_hours) and cutoff_hours > 0; otherwise
 * GW_ESTATE with a message naming the trainer to contact; anything else GW_EFORBIDDEN.
 * Pure: the state x action x role table of docs/design.md. */
gw_rc lc_booking_guard(enum lc_booking_action action, const struct lc_booking_facts *f,
                       const struct lc_actor *actor, struct gw_err *err);

/* lc_booking_actions - what actor may do to booking b (as store_booking_get shows it, borrowed)
 * at now under the effective settings: a new array of the names of POST .../bookings/{id}/
 * {action} that lc_booking_guard allows ("no-show": the customer's no-show). NULL when out of
 * memory. */
json_t *lc_booking_actions(const json_t *b, const json_t *settings, time_t now,
                           const struct lc_actor *actor);

/* lc_link_send - the claiming trainer sends (or resends) the scheduling link: a new token, the
 * old one revoked, request -> scheduling, a scheduling_link email. */
gw_rc lc_link_send(struct store *st, const struct lc_env *env, int64_t org, int64_t request,
                   const struct lc_actor *actor, json_t **out, struct gw_err *err);

/* The most slots one view lists (schedule and manage views): a session type with a 5-minute
 * grid, ten lengths and 24-hour days has about 40,000 in 14 days (3 MB of JSON). Past it the view
 * says "truncated": true and "next_from": the start of the first slot left out. */
#define LC_VIEW_SLOTS_MAX 2000

/* lc_schedule_view - GET /v1/schedule/{token}: the trainer, session type and free slots of the
 * next 14 days, those starting at or after from (0: all), at most LC_VIEW_SLOTS_MAX of them.
 * GW_EEXPIRED for an expired or replaced link. */
gw_rc lc_schedule_view(struct store *st, const char *token, time_t from, json_t **out,
                       struct gw_err *err);

/* lc_book - the customer books a slot: pending_payment, request -> booked. */
gw_rc lc_book(struct store *st, const char *token, json_t *body, json_t **out,
              struct gw_err *err);

/* lc_pay - the customer's payment call: records reference and paid_at. */
gw_rc lc_pay(struct store *st, const char *token, json_t *body, json_t **out,
             struct gw_err *err);

struct lc_slot;
/* lc_booking_slots - the free slots booking b (as store_booking_get shows it, borrowed) can move
 * to: the schedule view's rule (lc_schedule_view: availability less blackouts and held
 * bookings, the session type's grid, the next 14 days) for the same trainer and b's length, b's
 * own time counted free. *slots: malloc'd, caller frees. */
gw_rc lc_booking_slots(struct store *st, const json_t *b, struct lc_slot **slots, size_t *n,
                       struct gw_err *err);

/* lc_customer_slots - the slots of lc_booking_slots a customer may move b to: those starting
 * at least cutoff_hours (customer_change_cutoff_hours) from now, so that a move never lands
 * inside the window in which the booking can no longer be changed. *slots: malloc'd, caller
 * frees. */
gw_rc lc_customer_slots(struct store *st, const json_t *b, int cutoff_hours,
                        struct lc_slot **slots, size_t *n, struct gw_err *err);

/* lc_manage_view - GET /v1/manage/{token}: the customer's booking, what can still be changed
 * until when, and (while it can move) the free slots to move to. GW_ENOTFOUND for an unknown
 * token. */
gw_rc lc_manage_view(struct store *st, const char *token, json_t **out, struct gw_err *err);

/* lc_manage_act - POST /v1/manage/{token}/{action}, action "cancel" ({reason}) or "reschedule"
 * ({start}: one of the offered slots): lc_booking_act with the customer as the actor, so the
 * effects are the trainer's own. *out: the customer's view after the change. */
gw_rc lc_manage_act(struct store *st, const struct lc_env *env, const char *token,
                    const char *action, json_t *body, json_t **out, struct gw_err *err);

/* lc_booking_act - every booking transition by action name ("confirm-payment", "complete",
 * "undo-complete", "no-show", "cancel", "reschedule"), each in one transaction with its
 * effects. *out: the booking after the change. */
gw_rc lc_booking_act(struct store *st, const struct lc_env *env, int64_t org, int64_t booking,
                     const char *action, const struct lc_actor *actor, json_t *body,
                     json_t **out, struct gw_err *err);

enum lc_system_action {
	LC_SYS_COMPLETE,     /* auto-close: complete, completed_by = "system" */
	LC_SYS_CANCEL,       /* auto-close: cancel */
	LC_SYS_RELEASE_HOLD, /* pending payment whose link expired: cancelled, slot free */
};

/* lc_booking_system - what the scheduler does to one booking, inside the caller's transaction,
 * with the same effects as the API's transitions. GW_ESTATE when the booking is no longer in
 * the state the action needs (marked meanwhile: left alone). */
gw_rc lc_booking_system(struct store *st, const struct lc_env *env, int64_t org, int64_t booking,
                        enum lc_system_action action, struct gw_err *err);

/* lc_booking_notify - render one booking email of kind (template context of the booking plus
 * the fields of extra, borrowed) and enqueue it inside the caller's transaction. A reminder
 * also carries a fresh manage link for the customer. */
gw_rc lc_booking_notify(struct store *st, const struct lc_env *env, int64_t org,
                        int64_t booking, const char *kind, const char *dedupe_key,
                        json_t *extra, time_t not_before, time_t deadline, bool *inserted,
                        struct gw_err *err);

/* lc_checkin - the kiosk: bookings of a customer inside the check-in window; with confirm
 * (or without require_confirmation) and auto_log, each is logged completed. */
gw_rc lc_checkin(struct store *st, const struct lc_env *env, int64_t org,
                 const struct lc_actor *actor, json_t *body, json_t **out, struct gw_err *err);

/* lc_org_settings - the organisation's effective settings (new reference). */
gw_rc lc_org_settings(struct store *st, int64_t org, json_t **out);

#endif
