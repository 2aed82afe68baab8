/*
 * lc_booking.c - the life of a booking once the customer has taken a slot (lc_schedule.c):
 * confirm, complete, undo, no-show, cancel and reschedule, and the kiosk's check-in. Every
 * transition is one store transaction that writes the state change and its outbox rows with
 * their dedupe keys (docs/design.md rules 1 and 2).
 *
 * Entry points: lc_booking_guard(), lc_change_cutoff_at(), lc_booking_facts_of(),
 * lc_booking_act(), lc_booking_actions(), lc_booking_system(),
 * lc_booking_notify(), lc_checkin(), lc_org_settings().
 *
 * The customer acts too, through the manage link of the confirmation and reminders
 * (lc_manage.c): an actor with customer set, who may cancel or move a booking until
 * customer_change_cutoff_hours before its start, through the same transitions as the trainer.
 * Threading: the caller's store connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "gateway/delivery/dispatch.h"
#include "providers/ical/ical.h"
#include "common/jsonv.h"
#include "lc.h"
#include "settings.h"
#include "common/timefmt.h"
#include "gateway/templates/tpl.h"
#include "lc_slots.h"

#define ADMIN_ROLES (ROLE_ORG_ADMIN | ROLE_PLATFORM_ADMIN)

/* is_admin - org admin (or platform admin) */
static bool is_admin(const struct lc_actor *a)
{
	return (a->roles & ADMIN_ROLES) != 0;
}

/* is_owner - the booking's trainer, acting as trainer */
static bool is_owner(const struct lc_actor *a, int64_t owner)
{
	return (a->roles & ROLE_TRAINER) && a->user_id == owner;
}

/* lc_change_cutoff_at - start less the cutoff hours */
time_t lc_change_cutoff_at(time_t start, int hours)
{
	return start - (time_t)hours * 3600;
}

/* customer_guard - the customer's row of the guard table: view, and cancel or move a held
 * booking before the cutoff; the refusal names whom to contact */
static gw_rc customer_guard(enum lc_booking_action action, const struct lc_booking_facts *f,
                            struct gw_err *err)
{
	const char *who = f->trainer_name && *f->trainer_name ? f->trainer_name : "your trainer";

	switch(action) {
	case LC_B_VIEW:
		return GW_OK;
	case LC_B_CANCEL:
	case LC_B_RESCHEDULE:
		if(strcmp(f->status, "pending_payment") != 0 && strcmp(f->status, "confirmed") != 0)
			return gw_err_set(err, GW_ESTATE, "", "this booking is %s and can no "
			                                      "longer be changed", f->status);
		if(f->cutoff_hours <= 0)
			return gw_err_set(err, GW_ESTATE, "", "this booking cannot be changed "
			                                      "online: please contact %s", who);
		if(f->now >= lc_change_cutoff_at(f->start, f->cutoff_hours))
			return gw_err_set(err, GW_ESTATE, "",
			                  "it is too late to change this booking online (changes "
			                  "close %d hours before the start): please contact %s",
			                  f->cutoff_hours, who);
		return GW_OK;
	default:
		break;
	}
	return gw_err_set(err, GW_EFORBIDDEN, "", "only the booking's trainer or an org admin");
}

/* lc_booking_guard - the booking guard table */
gw_rc lc_booking_guard(enum lc_booking_action action, const struct lc_booking_facts *f,
                       const struct lc_actor *actor, struct gw_err *err)
{
	bool admin = is_admin(actor), owner = is_owner(actor, f->owner);
	const char *need = "confirmed";

	if(actor->customer)
		return customer_guard(action, f, err);
	if(!admin && !owner)
		return gw_err_set(err, GW_EFORBIDDEN, "", "only the booking's trainer or an org admin");
	switch(action) {
	case LC_B_VIEW:
		return GW_OK;
	case LC_B_CONFIRM:
		if(strcmp(f->status, "pending_payment") != 0)
			return gw_err_set(err, GW_ESTATE, "", "only a booking awaiting payment can be "
			                                      "confirmed (it is %s)", f->status);
		if(!f->paid)
			return gw_err_set(err, GW_ESTATE, "", "the customer has not paid yet");
		return GW_OK;
	case LC_B_COMPLETE:
		if(strcmp(f->status, need) != 0)
			break;
		if(!admin && f->now < f->end)
			return gw_err_set(err, GW_ESTATE, "",
			                  "a trainer can complete a booking only after it has ended");
		return GW_OK;
	case LC_B_UNDO_COMPLETE:
		if(!admin)
			return gw_err_set(err, GW_EFORBIDDEN, "", "only an org admin can undo a completion");
		if(!f->allow_undo)
			return gw_err_set(err, GW_EFORBIDDEN, "",
			                  "this organisation does not allow undoing a completion");
		need = "completed";
		if(strcmp(f->status, need) != 0)
			break;
		return GW_OK;
	case LC_B_NO_SHOW_CUSTOMER:
		if(strcmp(f->status, need) != 0)
			break;
		if(!admin && f->now < f->start)
			return gw_err_set(err, GW_ESTATE, "",
			                  "a customer no-show can be recorded only after the start");
		return GW_OK;
	case LC_B_NO_SHOW_TRAINER:
		if(!admin)
			return gw_err_set(err, GW_EFORBIDDEN, "", "only an org admin records a trainer "
			                                          "no-show");
		if(strcmp(f->status, need) != 0)
			break;
		return GW_OK;
	case LC_B_CANCEL:
	case LC_B_RESCHEDULE:
		if(strcmp(f->status, "pending_payment") == 0 || strcmp(f->status, "confirmed") == 0)
			return GW_OK;
		return gw_err_set(err, GW_ESTATE, "", "a %s booking cannot be %s", f->status,
		                  action == LC_B_CANCEL ? "cancelled" : "rescheduled");
	case LC_B_ACTION_COUNT:
		break;
	}
	return gw_err_set(err, GW_ESTATE, "", "not allowed while the booking is %s (needs %s)",
	                  f->status, need);
}

/* lc_org_settings - effective settings */
gw_rc lc_org_settings(struct store *st, int64_t org, json_t **out)
{
	json_t *stored = NULL;
	gw_rc rc = store_org_settings(st, org, &stored);

	*out = NULL;
	if(rc)
		return rc;
	*out = settings_effective(stored);
	json_decref(stored);
	return *out ? GW_OK : GW_ENOMEM;
}

/* tenv_for - the template environment of org; *orgj holds its strings (caller decrefs) */
static gw_rc tenv_for(struct store *st, const struct lc_env *env, int64_t org, json_t **orgj,
                      struct tpl_env *t)
{
	return lc_tpl_env(st, env, org, orgj, t);
}

/* ---- effects of a booking ---- */

/* build_ics - the booking's iCalendar object with method */
static gw_rc build_ics(const json_t *b, const char *method, char **ics, struct gw_err *err)
{
	struct ical_event ev = {0};
	const json_t *tr = json_object_get(b, "trainer"), *cu = json_object_get(b, "customer");
	const json_t *stype = json_object_get(b, "session_type");
	char summary[512], desc[512];
	time_t s = 0, e = 0;

	timefmt_parse(json_string_value(json_object_get(b, "start")), &s);
	timefmt_parse(json_string_value(json_object_get(b, "end")), &e);
	snprintf(summary, sizeof(summary), "%s with %s",
	         json_is_object(stype) ? json_string_value(json_object_get(stype, "name"))
	                               : "Training session",
	         json_string_value(json_object_get(tr, "name")));
	snprintf(desc, sizeof(desc), "Training session for %s with %s.",
	         json_string_value(json_object_get(cu, "name")),
	         json_string_value(json_object_get(tr, "name")));
	ev.uid = json_string_value(json_object_get(b, "uid"));
	ev.sequence = (int)json_integer_value(json_object_get(b, "sequence"));
	ev.start = s;
	ev.end = e;
	ev.dtstamp = clock_now();
	ev.summary = summary;
	ev.description = desc;
	/* the invite goes to the customer: with Zoho Assist, the join URL, never the
	 * technician's (session_link) */
	ev.location = json_string_value(json_object_get(b, "session_join_url"));
	if(!ev.location || !ev.location[0])
		ev.location = json_string_value(json_object_get(b, "session_link"));
	ev.organizer_email = json_string_value(json_object_get(tr, "email"));
	ev.organizer_name = json_string_value(json_object_get(tr, "name"));
	ev.attendee_email = json_string_value(json_object_get(cu, "email"));
	ev.attendee_name = json_string_value(json_object_get(cu, "name"));
	ev.cancelled = strcmp(method, "CANCEL") == 0;
	return ical_build(&ev, 1, method, ics, err);
}

/* email_effect - render one booking email from ctx and enqueue it */
static gw_rc email_effect(struct store *st, const struct tpl_env *tenv, const char *kind,
                          const char *key, json_t *ctx, int64_t request, int64_t booking,
                          time_t not_before, time_t deadline, bool *inserted,
                          struct gw_err *err)
{
	json_t *payload = NULL;
	gw_rc rc = tpl_booking(tenv, kind, key, ctx, &payload);

	if(rc) {
		gw_err_cause(err, "template %s: %s", kind, gw_rc_name(rc));
		return rc;
	}
	return lc_enqueue_email(st, tenv->org_id, kind, key, request, booking, payload, not_before,
	                        deadline, inserted, err);
}

/* delivery_label - the words for a delivery_method setting in the event's description */
static const char *delivery_label(const char *m)
{
	static const struct {
		const char *key, *label;
	} labels[] = {
	    {"zoho_assist", "Zoho Assist"},
	    {"zoom", "Zoom"},
	    {"google_meet", "Google Meet"},
	    {"teams", "Microsoft Teams"},
	    {"phone", "phone"},
	    {"manual", "arranged by the trainer"},
	};
	size_t i;

	for(i = 0; m && i < GW_ARRAY_LEN(labels); i++)
		if(strcmp(labels[i].key, m) == 0)
			return labels[i].label;
	return "arranged by the trainer";
}

/* calendar_effect - the trainer's calendar event create/update/delete row. The payload holds
 * everything a calendar provider needs (providers/google/gcal.h), rendered now: what is sent
 * is what was recorded. */
static gw_rc calendar_effect(struct store *st, const json_t *b, const char *action,
                             const json_t *settings, struct gw_err *err)
{
	const json_t *tr = json_object_get(b, "trainer"), *cu = json_object_get(b, "customer");
	const json_t *stype = json_object_get(b, "session_type");
	const char *method = json_string_value(json_object_get(settings, "delivery_method"));
	const char *link = json_string_value(json_object_get(b, "session_link"));
	const char *tname =
	        json_is_object(stype) ? json_string_value(json_object_get(stype, "name")) : NULL;
	char key[96], summary[512], desc[1400];
	json_t *payload;

	snprintf(key, sizeof(key), "calendar:%lld:%lld",
	         (long long)json_integer_value(json_object_get(b, "id")),
	         (long long)json_integer_value(json_object_get(b, "sequence")));
	snprintf(summary, sizeof(summary), "%.200s with %.200s", tname ? tname : "Training session",
	         json_string_value(json_object_get(cu, "name")));
	snprintf(desc, sizeof(desc),
	         "%.200s with %.200s <%.254s>, booked through Ordinatus.\nDelivery: %s.%s%.600s",
	         tname ? tname : "Training session", json_string_value(json_object_get(cu, "name")),
	         json_string_value(json_object_get(cu, "email")), delivery_label(method),
	         link && link[0] ? "\nSession link: " : "", link && link[0] ? link : "");
	payload = json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "action",
	                    action, "org_id", json_object_get(b, "org_id"), "booking_id",
	                    json_object_get(b, "id"), "trainer_id",
	                    json_object_get(b, "trainer_id"), "uid", json_object_get(b, "uid"),
	                    "sequence", json_object_get(b, "sequence"), "start",
	                    json_object_get(b, "start"), "end", json_object_get(b, "end"),
	                    "customer", cu, "session_type", stype, "timezone",
	                    json_object_get(tr, "timezone"));
	if(payload) {
		json_object_set_new(payload, "summary", json_string(summary));
		json_object_set_new(payload, "description", json_string(desc));
		json_object_set_new(payload, "location", link && link[0] ? json_string(link)
		                                                           : json_null());
		json_object_set_new(payload, "delivery_method", json_string(method ? method
		                                                                   : "manual"));
		json_object_set_new(payload, "trainer",
		                    json_pack("{s:O, s:O, s:O, s:O}", "id",
		                              json_object_get(tr, "id"), "name",
		                              json_object_get(tr, "name"), "email",
		                              json_object_get(tr, "email"), "timezone",
		                              json_object_get(tr, "timezone")));
	}
	return lc_enqueue(st, json_integer_value(json_object_get(b, "org_id")), "calendar",
	                  "calendar", key, json_integer_value(json_object_get(b, "request_id")),
	                  json_integer_value(json_object_get(b, "id")), payload, 0, 0, NULL, err);
}

/* zoho_effect - the remote session row (providers/zoho/zoho.h), when the organisation
 * delivers by Zoho Assist: "create" on confirm (dedupe zoho:{booking}), "update" on a
 * reschedule (zoho:{booking}:{sequence}), "delete" on a cancel (zoho_cancel:{booking}). The
 * title is "{session type} with {customer}", the time zone the trainer's (the org's when the
 * trainer has none). */
static gw_rc zoho_effect(struct store *st, const json_t *b, const char *action,
                         const json_t *settings, struct gw_err *err)
{
	const json_t *tr = json_object_get(b, "trainer"), *cu = json_object_get(b, "customer");
	const json_t *stype = json_object_get(b, "session_type");
	const char *tname =
	        json_is_object(stype) ? json_string_value(json_object_get(stype, "name")) : NULL;
	const char *tz = json_string_value(json_object_get(tr, "timezone"));
	long long id = json_integer_value(json_object_get(b, "id"));
	char key[96], title[420];
	json_t *payload;

	(void)settings;
	if(strcmp(action, "create") == 0)
		snprintf(key, sizeof(key), "zoho:%lld", id);
	else if(strcmp(action, "update") == 0)
		snprintf(key, sizeof(key), "zoho:%lld:%lld", id,
		         (long long)json_integer_value(json_object_get(b, "sequence")));
	else
		snprintf(key, sizeof(key), "zoho_cancel:%lld", id);
	snprintf(title, sizeof(title), "%.200s with %.200s", tname ? tname : "Training session",
	         json_string_value(json_object_get(cu, "name")));
	payload = json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:s, s:O, s:O}", "action", action,
	                    "org_id", json_object_get(b, "org_id"), "booking_id",
	                    json_object_get(b, "id"), "sequence", json_object_get(b, "sequence"),
	                    "start", json_object_get(b, "start"), "end", json_object_get(b, "end"),
	                    "title", title, "customer", cu, "trainer", tr);
	if(payload && tz && tz[0])
		json_object_set_new(payload, "timezone", json_string(tz));
	return lc_enqueue(st, json_integer_value(json_object_get(b, "org_id")), "zoho_session",
	                  "zoho", key, json_integer_value(json_object_get(b, "request_id")), id,
	                  payload, 0, 0, NULL, err);
}

/* zoho_wanted - a reschedule or cancel of b needs a Zoho row: the organisation delivers by
 * Zoho Assist, or the booking has a session (the method changed since) */
static bool zoho_wanted(struct store *st, const json_t *b, const json_t *settings)
{
	json_t *ref = NULL;
	bool has;

	if(strcmp(json_string_value(json_object_get(settings, "delivery_method")),
	          "zoho_assist") == 0)
		return true;
	if(store_zoho_ref(st, json_integer_value(json_object_get(b, "id")), &ref))
		return false;
	has = json_is_string(json_object_get(ref, "session_id"));
	json_decref(ref);
	return has;
}

/* manage_link - a fresh manage link of booking b for one customer email: ctx gains manage_url,
 * and change_until while the customer can still change the booking; hash gets the token's
 * hash, which the caller records once the email is enqueued (a deduplicated email shows no
 * link, so it needs no row) */
static gw_rc manage_link(const struct tpl_env *tenv, const json_t *b, const json_t *settings,
                         json_t *ctx, char hash[CRYPTO_HASH_HEX])
{
	char token[CRYPTO_TOKEN_LEN], url[600], until[TIMEFMT_LEN];
	const char *status = json_string_value(json_object_get(b, "status"));
	int hours = (int)json_integer_value(
	        json_object_get(settings, "customer_change_cutoff_hours"));
	time_t start = 0, cut;
	gw_rc rc;

	if((rc = crypto_token("", token, sizeof(token))))
		return rc;
	crypto_sha256_hex(token, strlen(token), hash);
	snprintf(url, sizeof(url), "%s/b/%s", tenv->public_url, token);
	memset(token, 0, sizeof(token));
	timefmt_parse(json_string_value(json_object_get(b, "start")), &start);
	cut = lc_change_cutoff_at(start, hours);
	if(json_object_set_new(ctx, "manage_url", json_string(url)))
		return GW_ENOMEM;
	json_object_del(ctx, "change_until");
	if(hours > 0 && cut > clock_now() && status &&
	   (strcmp(status, "confirmed") == 0 || strcmp(status, "pending_payment") == 0)) {
		timefmt_rfc3339(cut, until);
		if(json_object_set_new(ctx, "change_until", json_string(until)))
			return GW_ENOMEM;
	}
	return GW_OK;
}

/* booking_ctx - the template context of a booking (new reference) */
static json_t *booking_ctx(const json_t *b)
{
	return json_pack("{s:O, s:O, s:O, s:O}", "booking", b, "customer",
	                 json_object_get(b, "customer"), "trainer", json_object_get(b, "trainer"),
	                 "session_type", json_object_get(b, "session_type"));
}

/* confirm_effects - confirmation (+ .ics), trainer confirmation, calendar, Zoho: at the
 * confirmation (moved_from NULL) or after a reschedule (moved_from the old start, "" when
 * unknown: the emails then read as at the confirmation, the calendar and Zoho still update) */
static gw_rc confirm_effects(struct store *st, const struct tpl_env *tenv, const json_t *b,
                             const json_t *settings, const char *moved_from, struct gw_err *err)
{
	bool first = !moved_from;
	json_t *ctx = booking_ctx(b);
	char *ics = NULL, key[96], hash[CRYPTO_HASH_HEX];
	bool inserted = false;
	long long id = json_integer_value(json_object_get(b, "id"));
	long long seq = json_integer_value(json_object_get(b, "sequence"));
	int64_t req = json_integer_value(json_object_get(b, "request_id"));
	gw_rc rc;

	if(!ctx)
		return GW_ENOMEM;
	if((rc = build_ics(b, "REQUEST", &ics, err)))
		goto out;
	json_object_set_new(ctx, "ics", json_string(ics));
	json_object_set_new(ctx, "ics_method", json_string("REQUEST"));
	/* a move: both confirmations say so, with the old start (tpl_booking) */
	if(moved_from)
		json_object_set_new(ctx, "moved_from", json_string(moved_from));
	if((rc = manage_link(tenv, b, settings, ctx, hash)))
		goto out;
	snprintf(key, sizeof(key), "confirmation:%lld:%lld", id, seq);
	if((rc = email_effect(st, tenv, "confirmation", key, ctx, req, id, 0, 0, &inserted, err)))
		goto out;
	if(inserted && (rc = store_manage_token_add(st, tenv->org_id, id, hash, clock_now())))
		goto out;
	if(json_is_true(json_object_get(json_object_get(b, "trainer"), "notify_on_confirm"))) {
		/* the trainer is the invite's ORGANIZER: a REQUEST sent to its organizer confuses
		 * calendar clients, and the trainer's calendar gets the event from its own effect;
		 * the customer's manage link is the customer's alone */
		json_object_del(ctx, "ics");
		json_object_del(ctx, "ics_method");
		json_object_del(ctx, "manage_url");
		json_object_del(ctx, "change_until");
		snprintf(key, sizeof(key), "trainer_confirmation:%lld:%lld", id, seq);
		if((rc = email_effect(st, tenv, "trainer_confirmation", key, ctx, req, id, 0, 0, NULL, err)))
			goto out;
	}
	if((rc = calendar_effect(st, b, first ? "create" : "update", settings, err)))
		goto out;
	if(first && strcmp(json_string_value(json_object_get(settings, "delivery_method")),
	                   "zoho_assist") == 0)
		rc = zoho_effect(st, b, "create", settings, err);
	else if(!first && zoho_wanted(st, b, settings))
		rc = zoho_effect(st, b, "update", settings, err);
out:
	free(ics);
	json_decref(ctx);
	return rc;
}

/* survey_effect - a survey token and its email, once per booking */
static gw_rc survey_effect(struct store *st, const struct tpl_env *tenv, const json_t *b,
                           struct gw_err *err)
{
	char token[CRYPTO_TOKEN_LEN], hash[CRYPTO_HASH_HEX], url[600], key[64];
	long long id = json_integer_value(json_object_get(b, "id"));
	json_t *ctx;
	gw_rc rc;

	if((rc = crypto_token("", token, sizeof(token))))
		return rc;
	crypto_sha256_hex(token, strlen(token), hash);
	rc = store_survey_create(st, tenv->org_id, id, hash, clock_now());
	if(rc == GW_EEXISTS)
		return GW_OK; /* completed before (then undone): the customer has their survey */
	if(rc)
		return rc;
	ctx = booking_ctx(b);
	if(!ctx)
		return GW_ENOMEM;
	snprintf(url, sizeof(url), "%s/survey/%s", tenv->public_url, token);
	json_object_set_new(ctx, "survey_url", json_string(url));
	snprintf(key, sizeof(key), "survey:%lld", id);
	rc = email_effect(st, tenv, "survey", key, ctx,
	                  json_integer_value(json_object_get(b, "request_id")), id, 0, 0, NULL, err);
	json_decref(ctx);
	return rc;
}

/* Kinds whose unsent rows are worthless once a booking's time changes or it ends. */
static const char *const time_bound_kinds[] = {"reminder", "close_reminder", NULL};

enum act { ACT_CONFIRM, ACT_COMPLETE, ACT_UNDO, ACT_NO_SHOW, ACT_CANCEL, ACT_RESCHEDULE };

static const struct {
	const char *name;
	enum act act;
} act_names[] = {
    {"confirm-payment", ACT_CONFIRM}, {"complete", ACT_COMPLETE}, {"undo-complete", ACT_UNDO},
    {"no-show", ACT_NO_SHOW},         {"cancel", ACT_CANCEL},     {"reschedule", ACT_RESCHEDULE},
};

/* What an action was asked to do, validated. */
struct act_params {
	const char *note;      /* complete, no-show */
	const char *reason;    /* cancel */
	bool customer, trainer; /* no-show */
	time_t start;          /* reschedule */
	const char *by;        /* completed_by / marked_by: user id text or "system" */
	time_t checked_in_at;  /* check-in */
};

/* act_in_tx - apply one action to booking b (borrowed) inside the open transaction; the
 * guard has been passed. */
static gw_rc act_in_tx(struct store *st, const struct tpl_env *tenv, const json_t *settings,
                       const json_t *b, enum act act, const struct act_params *p,
                       struct gw_err *err)
{
	struct store_booking_set set = {0};
	const char *status = json_string_value(json_object_get(b, "status"));
	int64_t org = tenv->org_id, id = json_integer_value(json_object_get(b, "id"));
	int64_t req = json_integer_value(json_object_get(b, "request_id"));
	time_t now = clock_now(), s = 0, e = 0;
	json_t *nb = NULL, *ctx = NULL;
	char key[96], *ics = NULL;
	gw_rc rc = GW_OK;

	timefmt_parse(json_string_value(json_object_get(b, "start")), &s);
	timefmt_parse(json_string_value(json_object_get(b, "end")), &e);
	switch(act) {
	case ACT_CONFIRM:
		set.status = "confirmed";
		set.confirmed_at = now;
		break;
	case ACT_COMPLETE:
		set.status = "completed";
		set.completed_at = now;
		set.completed_by = p->by;
		set.completion_note = p->note;
		set.checked_in_at = p->checked_in_at;
		break;
	case ACT_UNDO:
		set.status = "confirmed";
		set.clear_completion = 1;
		break;
	case ACT_NO_SHOW:
		set.status = "no_show";
		set.customer_no_show = p->customer;
		set.trainer_no_show = p->trainer;
		set.no_show_marked_by = p->by;
		set.no_show_marked_at = now;
		set.no_show_note = p->note;
		break;
	case ACT_CANCEL:
		set.status = "cancelled";
		set.cancelled_at = now;
		set.cancel_reason = p->reason;
		/* the invite's CANCEL must carry a higher SEQUENCE than the REQUEST (RFC 5546) */
		set.bump_sequence = strcmp(status, "confirmed") == 0;
		break;
	case ACT_RESCHEDULE:
		set.start = p->start;
		set.end = p->start + (e - s);
		set.bump_sequence = 1;
		break;
	}
	rc = store_booking_transition(st, org, id, status, &set, now);
	if(rc == GW_ESLOT)
		gw_err_set(err, rc, "start", "the trainer has another booking at that time");
	else if(rc == GW_ESTATE)
		gw_err_set(err, rc, "", "the booking changed meanwhile; reload it");
	if(rc)
		goto out;
	if((rc = store_booking_get(st, org, id, &nb)))
		goto out;
	ctx = booking_ctx(nb);
	if(!ctx) {
		rc = GW_ENOMEM;
		goto out;
	}
	switch(act) {
	case ACT_CONFIRM:
		rc = confirm_effects(st, tenv, nb, settings, NULL, err);
		break;
	case ACT_COMPLETE:
		store_request_set_status(st, req, "booked", "closed", now); /* GW_ESTATE: already */
		if((rc = store_outbox_skip_booking(st, id, time_bound_kinds, "booking completed")))
			break;
		if(json_is_true(json_object_get(settings, "survey_enabled")))
			rc = survey_effect(st, tenv, nb, err);
		break;
	case ACT_UNDO:
		store_request_set_status(st, req, "closed", "booked", now);
		break;
	case ACT_NO_SHOW:
		store_request_set_status(st, req, "booked", "closed", now);
		if((rc = store_outbox_skip_booking(st, id, time_bound_kinds, "booking marked no-show")))
			break;
		if(p->customer) {
			json_object_set(ctx, "no_show_policy", json_object_get(settings, "no_show_policy"));
			snprintf(key, sizeof(key), "no_show:%lld", (long long)id);
			rc = email_effect(st, tenv, "no_show", key, ctx, req, id, 0, 0, NULL, err);
		}
		break;
	case ACT_CANCEL: {
		/* zoho_session: a session create or move not sent yet is not wanted any more */
		static const char *const gone[] = {"reminder", "close_reminder", "confirmation",
		                                   "trainer_confirmation", "zoho_session", NULL};
		store_request_set_status(st, req, "booked", "closed", now);
		if((rc = store_outbox_skip_booking(st, id, gone, "booking cancelled")))
			break;
		if(p->reason)
			json_object_set_new(ctx, "reason", json_string(p->reason));
		if(strcmp(status, "confirmed") == 0) {
			if((rc = build_ics(nb, "CANCEL", &ics, err)))
				break;
			json_object_set_new(ctx, "ics", json_string(ics));
			json_object_set_new(ctx, "ics_method", json_string("CANCEL"));
			if((rc = calendar_effect(st, nb, "delete", settings, err)))
				break;
			if(zoho_wanted(st, nb, settings) &&
			   (rc = zoho_effect(st, nb, "delete", settings, err)))
				break;
		}
		snprintf(key, sizeof(key), "cancellation:%lld", (long long)id);
		rc = email_effect(st, tenv, "cancellation", key, ctx, req, id, 0, 0, NULL, err);
		break;
	}
	case ACT_RESCHEDULE: {
		const char *s_text = json_string_value(json_object_get(b, "start"));

		if((rc = store_outbox_skip_booking(st, id, time_bound_kinds, "booking rescheduled")))
			break;
		if(strcmp(status, "confirmed") == 0)
			rc = confirm_effects(st, tenv, nb, settings, s_text ? s_text : "", err);
		break;
	}
	}
out:
	free(ics);
	json_decref(ctx);
	json_decref(nb);
	return rc;
}

/* parse_params - validate the body of an action */
static gw_rc parse_params(enum act act, json_t *body, struct act_params *p, struct gw_err *err)
{
	static const char *const note_keys[] = {"note", NULL};
	static const char *const noshow_keys[] = {"customer", "trainer", "note", NULL};
	static const char *const cancel_keys[] = {"reason", NULL};
	static const char *const resched_keys[] = {"start", NULL};
	static const char *const none[] = {NULL};
	bool here;
	gw_rc rc;

	memset(p, 0, sizeof(*p));
	switch(act) {
	case ACT_CONFIRM:
	case ACT_UNDO:
		return jv_only(body, none, err);
	case ACT_COMPLETE:
		if((rc = jv_only(body, note_keys, err)))
			return rc;
		return jv_string(body, "note", false, 0, 2000, JV_MULTILINE, &p->note, NULL, err);
	case ACT_NO_SHOW:
		p->customer = true;
		if((rc = jv_only(body, noshow_keys, err)) ||
		   (rc = jv_bool(body, "customer", false, &p->customer, &here, err)) ||
		   (rc = jv_bool(body, "trainer", false, &p->trainer, &here, err)) ||
		   (rc = jv_string(body, "note", false, 0, 2000, JV_MULTILINE, &p->note, NULL, err)))
			return rc;
		if(!p->customer && !p->trainer)
			return gw_err_set(err, GW_EINVAL, "customer",
			                  "mark the customer, the trainer or both as no-show");
		return GW_OK;
	case ACT_CANCEL:
		if((rc = jv_only(body, cancel_keys, err)))
			return rc;
		return jv_string(body, "reason", false, 0, 1000, JV_MULTILINE, &p->reason, NULL, err);
	case ACT_RESCHEDULE:
		if((rc = jv_only(body, resched_keys, err)) ||
		   (rc = jv_time(body, "start", true, &p->start, NULL, err)))
			return rc;
		if(p->start < clock_now())
			return gw_err_set(err, GW_EINVAL, "start", "start is in the past");
		return GW_OK;
	}
	return GW_EINVAL;
}

/* lc_booking_facts_of - what the guard looks at */
void lc_booking_facts_of(const json_t *b, const json_t *settings, time_t now,
                         struct lc_booking_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->status = json_string_value(json_object_get(b, "status"));
	f->owner = json_integer_value(json_object_get(b, "trainer_id"));
	f->now = now;
	timefmt_parse(json_string_value(json_object_get(b, "start")), &f->start);
	timefmt_parse(json_string_value(json_object_get(b, "end")), &f->end);
	f->paid = json_is_string(json_object_get(b, "paid_at"));
	f->allow_undo = json_is_true(json_object_get(settings, "allow_undo_completion"));
	f->cutoff_hours =
	        (int)json_integer_value(json_object_get(settings, "customer_change_cutoff_hours"));
	f->trainer_name = json_string_value(json_object_get(json_object_get(b, "trainer"), "name"));
}

/* lc_booking_actions - the guard table applied to every action of act_names */
json_t *lc_booking_actions(const json_t *b, const json_t *settings, time_t now,
                           const struct lc_actor *actor)
{
	static const enum lc_booking_action guards[] = {
	        [ACT_CONFIRM] = LC_B_CONFIRM,         [ACT_COMPLETE] = LC_B_COMPLETE,
	        [ACT_UNDO] = LC_B_UNDO_COMPLETE,      [ACT_NO_SHOW] = LC_B_NO_SHOW_CUSTOMER,
	        [ACT_CANCEL] = LC_B_CANCEL,           [ACT_RESCHEDULE] = LC_B_RESCHEDULE,
	};
	struct lc_booking_facts f;
	json_t *list = json_array();
	size_t i;

	if(!list)
		return NULL;
	lc_booking_facts_of(b, settings, now, &f);
	if(!f.status)
		return list;
	for(i = 0; i < GW_ARRAY_LEN(act_names); i++) {
		if(lc_booking_guard(guards[act_names[i].act], &f, actor, NULL) != GW_OK)
			continue;
		if(json_array_append_new(list, json_string(act_names[i].name))) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

/* customer_slot_check - a customer moves a booking only to a slot the manage view offers:
 * *offered says whether start is one (length and trainer are the booking's own) */
static gw_rc customer_slot_check(struct store *st, const json_t *b, int cutoff_hours,
                                 time_t start, bool *offered, struct gw_err *err)
{
	struct lc_slot *slots = NULL;
	size_t n = 0, i;
	gw_rc rc = lc_customer_slots(st, b, cutoff_hours, &slots, &n, err);

	*offered = false;
	for(i = 0; !rc && i < n; i++)
		*offered |= slots[i].start == start;
	free(slots);
	return rc;
}

/* lc_booking_act - one booking transition with its effects */
gw_rc lc_booking_act(struct store *st, const struct lc_env *env, int64_t org, int64_t booking,
                     const char *action, const struct lc_actor *actor, json_t *body,
                     json_t **out, struct gw_err *err)
{
	struct lc_booking_facts f = {0};
	struct act_params p;
	struct tpl_env tenv;
	json_t *b = NULL, *settings = NULL, *orgj = NULL, *empty = NULL;
	enum lc_booking_action guard = LC_B_VIEW;
	enum act act = ACT_CONFIRM;
	char by[32];
	bool found = false, offered = true;
	size_t i;
	gw_rc rc;

	*out = NULL;
	for(i = 0; i < GW_ARRAY_LEN(act_names); i++) {
		if(strcmp(act_names[i].name, action) == 0) {
			act = act_names[i].act;
			found = true;
		}
	}
	if(!found)
		return gw_err_set(err, GW_ENOTFOUND, "", "no such booking action");
	if(!body)
		body = empty = json_object();
	rc = parse_params(act, body, &p, err);
	json_decref(empty);
	if(rc)
		return rc;
	snprintf(by, sizeof(by), "%lld", (long long)actor->user_id);
	p.by = by;
	if((rc = store_begin(st)))
		return rc;
	if((rc = store_booking_get(st, org, booking, &b)) || (rc = lc_org_settings(st, org, &settings)))
		goto fail;
	lc_booking_facts_of(b, settings, clock_now(), &f);
	switch(act) {
	case ACT_CONFIRM: guard = LC_B_CONFIRM; break;
	case ACT_COMPLETE: guard = LC_B_COMPLETE; break;
	case ACT_UNDO: guard = LC_B_UNDO_COMPLETE; break;
	case ACT_NO_SHOW: guard = p.trainer ? LC_B_NO_SHOW_TRAINER : LC_B_NO_SHOW_CUSTOMER; break;
	case ACT_CANCEL: guard = LC_B_CANCEL; break;
	case ACT_RESCHEDULE: guard = LC_B_RESCHEDULE; break;
	}
	if((rc = lc_booking_guard(guard, &f, actor, err)))
		goto fail;
	if(actor->customer && act == ACT_RESCHEDULE &&
	   (rc = customer_slot_check(st, b, f.cutoff_hours, p.start, &offered, err)))
		goto fail;
	if((rc = tenv_for(st, env, org, &orgj, &tenv)))
		goto fail;
	rc = act_in_tx(st, &tenv, settings, b, act, &p, err);
	if(!offered) {
		/* not offered: taken (the move collides with a held booking) or never available;
		 * either way nothing of it stays */
		if(rc != GW_ESLOT)
			rc = gw_err_set(err, GW_EINVAL, "start",
			                "start is not one of the offered slots");
		goto fail;
	}
	if(rc)
		goto fail;
	json_decref(b);
	b = NULL;
	if((rc = store_booking_get(st, org, booking, &b)))
		goto fail;
	if((rc = store_commit(st)))
		goto done;
	dispatch_wake();
	*out = b;
	b = NULL;
	goto done;
fail:
	store_rollback(st);
done:
	json_decref(b);
	json_decref(settings);
	json_decref(orgj);
	return rc;
}

/* lc_booking_system - the scheduler's action on one booking, inside the caller's transaction */
gw_rc lc_booking_system(struct store *st, const struct lc_env *env, int64_t org, int64_t booking,
                        enum lc_system_action action, struct gw_err *err)
{
	struct act_params p = {0};
	struct tpl_env tenv;
	json_t *b = NULL, *settings = NULL, *orgj = NULL;
	const char *need = action == LC_SYS_RELEASE_HOLD ? "pending_payment" : "confirmed";
	gw_rc rc;

	p.by = "system";
	if(action == LC_SYS_CANCEL)
		p.reason = "closed automatically after the session";
	else if(action == LC_SYS_RELEASE_HOLD)
		p.reason = "the payment did not arrive before the scheduling link expired";
	if((rc = store_booking_get(st, org, booking, &b)) ||
	   (rc = lc_org_settings(st, org, &settings)) || (rc = tenv_for(st, env, org, &orgj, &tenv)))
		goto out;
	if(strcmp(json_string_value(json_object_get(b, "status")), need) != 0) {
		rc = GW_ESTATE; /* marked meanwhile: never auto-closed */
		goto out;
	}
	rc = act_in_tx(st, &tenv, settings, b, action == LC_SYS_COMPLETE ? ACT_COMPLETE : ACT_CANCEL,
	               &p, err);
out:
	json_decref(b);
	json_decref(settings);
	json_decref(orgj);
	return rc;
}

/* lc_booking_notify - one booking email from the booking's context plus extra */
gw_rc lc_booking_notify(struct store *st, const struct lc_env *env, int64_t org,
                        int64_t booking, const char *kind, const char *dedupe_key,
                        json_t *extra, time_t not_before, time_t deadline, bool *inserted,
                        struct gw_err *err)
{
	struct tpl_env tenv;
	json_t *b = NULL, *orgj = NULL, *ctx = NULL, *settings = NULL;
	char hash[CRYPTO_HASH_HEX];
	bool ins = false, link;
	gw_rc rc;

	if(inserted)
		*inserted = false;
	if((rc = store_booking_get(st, org, booking, &b)) || (rc = tenv_for(st, env, org, &orgj,
	                                                                    &tenv)))
		goto out;
	ctx = booking_ctx(b);
	if(!ctx) {
		rc = GW_ENOMEM;
		goto out;
	}
	if(extra)
		json_object_update(ctx, extra);
	/* a reminder carries the customer's manage link, like the confirmation */
	link = strcmp(kind, "reminder") == 0;
	if(link && ((rc = lc_org_settings(st, org, &settings)) ||
	            (rc = manage_link(&tenv, b, settings, ctx, hash))))
		goto out;
	rc = email_effect(st, &tenv, kind, dedupe_key, ctx,
	                  json_integer_value(json_object_get(b, "request_id")), booking, not_before,
	                  deadline, &ins, err);
	if(!rc && ins && link)
		rc = store_manage_token_add(st, org, booking, hash, clock_now());
	if(inserted)
		*inserted = ins;
out:
	json_decref(ctx);
	json_decref(b);
	json_decref(orgj);
	json_decref(settings);
	return rc;
}

/* lc_checkin - the kiosk's check-in */
gw_rc lc_checkin(struct store *st, const struct lc_env *env, int64_t org,
                 const struct lc_actor *actor, json_t *body, json_t **out, struct gw_err *err)
{
	static const char *const keys[] = {"customer_email", "confirm", NULL};
	struct store_booking_filter f = {0};
	struct act_params p = {0};
	struct tpl_env tenv;
	json_t *settings = NULL, *list = NULL, *orgj = NULL, *res = NULL, *b, *ck;
	const char *email;
	bool confirm = false, here, log_them;
	char by[32];
	time_t now = clock_now();
	size_t i;
	int logged = 0;
	gw_rc rc;

	*out = NULL;
	if((rc = jv_only(body, keys, err)) || (rc = jv_email(body, "customer_email", true, &email,
	                                                     NULL, err)) ||
	   (rc = jv_bool(body, "confirm", false, &confirm, &here, err)))
		return rc;
	if((rc = store_begin(st)))
		return rc;
	if((rc = lc_org_settings(st, org, &settings)) || (rc = tenv_for(st, env, org, &orgj, &tenv)))
		goto fail;
	ck = json_object_get(settings, "checkin");
	f.status = "confirmed";
	f.customer_email = email;
	f.now = now;
	/* inside the window: start - before <= now <= start + after */
	f.start_from = now - 60 * json_integer_value(json_object_get(ck, "window_after_minutes"));
	f.start_to = now + 60 * json_integer_value(json_object_get(ck, "window_before_minutes")) + 1;
	if((rc = store_booking_list(st, org, &f, &list)))
		goto fail;
	log_them = json_is_true(json_object_get(ck, "auto_log")) &&
	           (confirm || !json_is_true(json_object_get(ck, "require_confirmation")));
	snprintf(by, sizeof(by), "%lld", (long long)actor->user_id);
	p.by = by;
	p.note = "checked in at the front desk";
	p.checked_in_at = now;
	res = json_array();
	json_array_foreach(list, i, b) {
		json_t *nb = NULL;
		int64_t id = json_integer_value(json_object_get(b, "id"));
		if(log_them) {
			if((rc = act_in_tx(st, &tenv, settings, b, ACT_COMPLETE, &p, err)))
				goto fail;
			logged++;
		}
		if((rc = store_booking_get(st, org, id, &nb)))
			goto fail;
		json_array_append_new(res, nb);
	}
	if((rc = store_commit(st)))
		goto done;
	if(logged)
		dispatch_wake();
	*out = json_pack("{s:o, s:i}", "bookings", res, "logged", logged);
	res = NULL;
	rc = *out ? GW_OK : GW_ENOMEM;
	goto done;
fail:
	store_rollback(st);
done:
	json_decref(res);
	json_decref(list);
	json_decref(settings);
	json_decref(orgj);
	return rc;
}
