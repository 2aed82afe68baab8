/*
 * lc.h - the booking lifecycle: guards and transitions. Each transition runs in ONE store
 * transaction that writes the state change, its outbox rows and their dedupe keys (DESIGN.md
 * rules 1 and 2). Nothing here sends anything: the dispatcher does.
 *
 * Threading: every function uses the caller's store connection (one per thread).
 */
#ifndef LC_H
#define LC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "gw.h"
#include "store.h"

/* Who is acting: from the bearer token. */
struct lc_actor {
	int64_t user_id;
	int64_t org_id; /* 0: platform admin */
	int roles;      /* ROLE_* bits */
};

/* What the lifecycle needs to render effects. */
struct lc_env {
	const char *public_url; /* no trailing slash */
};

enum lc_action {
	LC_CLAIM,
	LC_CHANGE_SESSION_TYPE,
	LC_ACTION_COUNT
};

/* lc_request_guard - may actor do action on a request in status, claimed by claimer (0: none)?
 * GW_OK, GW_EFORBIDDEN (role or ownership), GW_ECLAIMED (claim of a claimed request) or
 * GW_ESTATE. Pure: the table the transitions use. */
gw_rc lc_request_guard(enum lc_action action, const char *status, const struct lc_actor *actor,
                       int64_t claimer);

/* lc_intake - validate a public request body (borrowed) and, in one transaction, write the
 * request and one new_request email per matching trainer. *out: {id, status, matched_trainers}
 * (new reference). */
gw_rc lc_intake(struct store *st, const struct lc_env *env, int64_t org, json_t *body,
                json_t **out, struct gw_err *err);

/* lc_claim - the trainer claims the request: exactly one wins (conditional UPDATE); the other
 * trainers' unsent new_request emails expire in the same transaction.
 * *out: {status, trainer_id}. */
gw_rc lc_claim(struct store *st, int64_t org, int64_t request, const struct lc_actor *actor,
               json_t **out, struct gw_err *err);

/* lc_request_patch - the claiming trainer changes the session type while claimed. */
gw_rc lc_request_patch(struct store *st, int64_t org, int64_t request,
                       const struct lc_actor *actor, json_t *body, json_t **out,
                       struct gw_err *err);

/* lc_effects_enqueue - enqueue an email payload (new reference taken) as an outbox row inside
 * the caller's transaction. */
gw_rc lc_enqueue_email(struct store *st, int64_t org, const char *kind, const char *dedupe_key,
                       int64_t request, int64_t booking, json_t *payload, time_t deadline,
                       struct gw_err *err);

#endif
