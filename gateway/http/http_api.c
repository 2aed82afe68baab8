/*
 * http_api.c - the route table and the handlers of the HTTP API (the contract; docs/openapi.yaml):
 * organisations, users, settings, session types, requests and the claim, deliveries, health,
 * metrics and the test clock. Handlers validate, call the lifecycle or the store, and shape
 * the answer; they never send anything (docs/design.md rule 1).
 *
 * Entry points: http_route_find(), http_routes_count(), http_routes_metrics() and the route
 * table. Threading: handlers run on MHD's threads with that thread's store connection.
 */
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "gateway/delivery/dispatch.h"
#include "http_routes.h"
#include "http_static.h"
#include "common/jsonv.h"
#include "gateway/scheduler/scheduler.h"
#include "gateway/lifecycle/settings.h"
#include "common/timefmt.h"
#include "gateway/templates/tpl.h"
#include "common/tz.h"
#include "common/version.h"

#define ANY_ADMIN (ROLE_ORG_ADMIN | ROLE_PLATFORM_ADMIN)

/* ---- organisations ---- */

/* org_create - POST /v1/orgs */
static gw_rc org_create(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"name", "timezone", NULL};
	const char *name, *tz;
	int64_t id;
	gw_rc rc;

	if(!r->authed)
		return gw_err_set(&r->err, GW_EUNAUTH, "", "a valid bearer token is required");
	if(!(r->user.roles & ROLE_PLATFORM_ADMIN))
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "only a platform admin creates "
		                                              "organisations");
	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_string(r->body, "name", true, 1, 200, 0, &name, NULL, &r->err)) ||
	   (rc = jv_string(r->body, "timezone", true, 1, 64, 0, &tz, NULL, &r->err)))
		return rc;
	if(!tz_valid(tz))
		return gw_err_set(&r->err, GW_EINVAL, "timezone",
		                  "timezone must be an IANA time zone such as Europe/Berlin");
	rc = store_org_create(r->st, name, tz, &id);
	if(rc)
		return rc;
	r->status = 201;
	return store_org_get(r->st, id, out);
}

/* org_get - GET /v1/orgs/{org}: the organisation, with what its staff pages show every
 * member: how sessions are delivered, and which calendar providers a trainer can connect
 * (those configured with a client_id; never their settings) */
static gw_rc org_get(struct http_req *r, json_t **out)
{
	static const char *const oauth[] = {"google", "outlook"};
	json_t *settings = NULL, *prov = NULL, *cals = NULL;
	size_t i;
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN | ROLE_TRAINER | ROLE_KIOSK);

	if(rc || (rc = store_org_get(r->st, r->id[0], out)))
		return rc;
	if((rc = lc_org_settings(r->st, r->id[0], &settings)) ||
	   (rc = store_provider_list(r->st, r->id[0], &prov)))
		goto out;
	if(!(cals = json_array())) {
		rc = GW_ENOMEM;
		goto out;
	}
	for(i = 0; i < GW_ARRAY_LEN(oauth); i++) {
		const char *id = json_string_value(
		        json_object_get(json_object_get(prov, oauth[i]), "client_id"));
		if(id && *id && json_array_append_new(cals, json_string(oauth[i]))) {
			rc = GW_ENOMEM;
			goto out;
		}
	}
	if(json_object_set(*out, "delivery_method", json_object_get(settings, "delivery_method")) ||
	   json_object_set(*out, "calendar_providers", cals))
		rc = GW_ENOMEM;
out:
	json_decref(settings);
	json_decref(prov);
	json_decref(cals);
	if(rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* org_exists - GW_ENOTFOUND for an unknown organisation */
static gw_rc org_exists(struct http_req *r, int64_t org)
{
	json_t *o = NULL;
	gw_rc rc = store_org_get(r->st, org, &o);

	json_decref(o);
	if(rc == GW_ENOTFOUND)
		gw_err_set(&r->err, rc, "", "no such organisation");
	return rc;
}

/* ---- users ---- */

static const char *const role_names[] = {"platform_admin", "org_admin", "trainer", "kiosk"};

/* parse_roles - roles array to bits; platform_admin is not assignable in an organisation */
static gw_rc parse_roles(struct http_req *r, bool required, int *bits, bool *present)
{
	const json_t *v = json_object_get(r->body, "roles");
	const json_t *x;
	size_t i, j;

	*bits = 0;
	*present = false;
	if(!v || json_is_null(v)) {
		if(required)
			return gw_err_set(&r->err, GW_EINVAL, "roles", "roles is required");
		return GW_OK;
	}
	if(!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 4)
		return gw_err_set(&r->err, GW_EINVAL, "roles",
		                  "roles must be a non-empty array of org_admin, trainer, kiosk");
	json_array_foreach(v, i, x) {
		int found = 0;
		for(j = 1; j < GW_ARRAY_LEN(role_names); j++) {
			if(json_is_string(x) && strcmp(json_string_value(x), role_names[j]) == 0) {
				*bits |= 1 << j;
				found = 1;
			}
		}
		if(!found)
			return gw_err_set(&r->err, GW_EINVAL, "roles",
			                  "roles must be a non-empty array of org_admin, trainer, kiosk");
	}
	*present = true;
	return GW_OK;
}

/* user_create - POST /v1/orgs/{org}/users */
static gw_rc user_create(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"email", "name", "roles", "skills", "timezone",
	                                   "notify_on_confirm", NULL};
	struct store_user_new u = {0};
	char token[64] = "", hash[CRYPTO_HASH_HEX], org_tz[65];
	json_t *skills = NULL;
	bool here;
	int64_t id;
	gw_rc rc;

	if((rc = http_require_org(r, r->id[0], ANY_ADMIN)) || (rc = org_exists(r, r->id[0])))
		return rc;
	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_email(r->body, "email", true, &u.email, NULL, &r->err)) ||
	   (rc = jv_string(r->body, "name", true, 1, 200, 0, &u.name, NULL, &r->err)) ||
	   (rc = parse_roles(r, true, &u.roles, &here)) ||
	   (rc = jv_skills(r->body, "skills", false, 50, &skills, &here, &r->err)) ||
	   (rc = jv_string(r->body, "timezone", false, 1, 64, 0, &u.timezone, &here, &r->err)) ||
	   (rc = jv_bool(r->body, "notify_on_confirm", false, &u.notify_on_confirm, &here, &r->err)))
		goto out;
	if(u.timezone && !tz_valid(u.timezone)) {
		rc = gw_err_set(&r->err, GW_EINVAL, "timezone",
		                "timezone must be an IANA time zone such as Europe/Berlin");
		goto out;
	}
	if(!u.timezone) {
		json_t *org = NULL;
		/* a user without a zone lives in the organisation's */
		rc = store_org_get(r->st, r->id[0], &org);
		if(rc)
			goto out;
		snprintf(org_tz, sizeof(org_tz), "%s",
		         json_string_value(json_object_get(org, "timezone")));
		json_decref(org);
		u.timezone = org_tz;
	}
	u.skills = skills;
	rc = crypto_token("ord_", token, sizeof(token));
	if(rc)
		goto out;
	crypto_sha256_hex(token, strlen(token), hash);
	u.token_hash = hash;
	rc = store_user_create(r->st, r->id[0], &u, &id);
	if(rc == GW_EEXISTS) {
		rc = gw_err_set(&r->err, GW_EEXISTS, "email",
		                "a user with this email already exists in the organisation");
		goto out;
	}
	if(rc)
		goto out;
	rc = store_user_get(r->st, r->id[0], id, out);
	if(rc)
		goto out;
	json_object_set_new(*out, "token", json_string(token));
	r->status = 201;
out:
	OPENSSL_cleanse(token, sizeof(token));
	json_decref(skills);
	return rc;
}

/* user_list - GET /v1/orgs/{org}/users */
static gw_rc user_list(struct http_req *r, json_t **out)
{
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN);

	return rc ? rc : store_user_list(r->st, r->id[0], out);
}

/* user_get - GET /v1/orgs/{org}/users/{id}: that user or an admin */
static gw_rc user_get(struct http_req *r, json_t **out)
{
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN | ROLE_TRAINER | ROLE_KIOSK);

	if(rc)
		return rc;
	if(!(r->user.roles & ANY_ADMIN) && r->user.id != r->id[1])
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "you may see only your own user");
	return store_user_get(r->st, r->id[0], r->id[1], out);
}

/* user_patch - PATCH /v1/orgs/{org}/users/{id} */
static gw_rc user_patch(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"name", "roles", "skills", "timezone",
	                                   "notify_on_confirm", "active", NULL};
	json_t *patch = json_object(), *skills = NULL;
	const char *s;
	bool here, b;
	int roles;
	gw_rc rc;

	if(!patch)
		return GW_ENOMEM;
	if((rc = http_require_org(r, r->id[0], ANY_ADMIN)) || (rc = jv_only(r->body, keys, &r->err)))
		goto out;
	if((rc = jv_string(r->body, "name", false, 1, 200, 0, &s, &here, &r->err)))
		goto out;
	if(here)
		json_object_set_new(patch, "name", json_string(s));
	if((rc = parse_roles(r, false, &roles, &here)))
		goto out;
	if(here)
		json_object_set_new(patch, "roles", json_integer(roles));
	if((rc = jv_skills(r->body, "skills", false, 50, &skills, &here, &r->err)))
		goto out;
	if(here)
		json_object_set(patch, "skills", skills);
	if((rc = jv_string(r->body, "timezone", false, 1, 64, 0, &s, &here, &r->err)))
		goto out;
	if(here && !tz_valid(s)) {
		rc = gw_err_set(&r->err, GW_EINVAL, "timezone",
		                "timezone must be an IANA time zone such as Europe/Berlin");
		goto out;
	}
	if(here)
		json_object_set_new(patch, "timezone", json_string(s));
	if((rc = jv_bool(r->body, "notify_on_confirm", false, &b, &here, &r->err)))
		goto out;
	if(here)
		json_object_set_new(patch, "notify_on_confirm", json_boolean(b));
	if((rc = jv_bool(r->body, "active", false, &b, &here, &r->err)))
		goto out;
	if(here)
		json_object_set_new(patch, "active", json_boolean(b));
	rc = store_user_update(r->st, r->id[0], r->id[1], patch);
	if(rc)
		goto out;
	rc = store_user_get(r->st, r->id[0], r->id[1], out);
out:
	json_decref(skills);
	json_decref(patch);
	return rc;
}

/* ---- settings ---- */

/* settings_get - GET /v1/orgs/{org}/settings: every setting, defaults filled in */
static gw_rc settings_get(struct http_req *r, json_t **out)
{
	json_t *stored = NULL;
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN);

	if(rc || (rc = store_org_settings(r->st, r->id[0], &stored)))
		return rc;
	*out = settings_effective(stored);
	json_decref(stored);
	return *out ? GW_OK : GW_ENOMEM;
}

/* settings_update - PATCH /v1/orgs/{org}/settings: all or nothing */
static gw_rc settings_update(struct http_req *r, json_t **out)
{
	json_t *stored = NULL, *next = NULL;
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN);

	if(rc)
		return rc;
	rc = store_begin(r->st);
	if(rc)
		return rc;
	if((rc = store_org_settings(r->st, r->id[0], &stored)) ||
	   (rc = settings_patch(stored, r->body, &next, &r->err)) ||
	   (rc = store_org_settings_put(r->st, r->id[0], next)))
		goto fail;
	rc = store_commit(r->st);
	if(rc)
		goto done;
	*out = settings_effective(next);
	rc = *out ? GW_OK : GW_ENOMEM;
	goto done;
fail:
	store_rollback(r->st);
done:
	json_decref(stored);
	json_decref(next);
	return rc;
}

/* ---- session types ---- */

/* valid_currency - three upper-case letters (ISO 4217 form) */
static bool valid_currency(const char *c)
{
	return strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
	       c[2] >= 'A' && c[2] <= 'Z';
}

/* session_type_create - POST /v1/orgs/{org}/session-types */
static gw_rc session_type_create(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"name",     "skills",       "lengths", "price_cents",
	                                   "currency", "step_minutes", NULL};
	struct store_session_type_new t = {0};
	json_t *skills = NULL, *lengths = NULL, *lv, *x;
	long long price = 0, step = 30;
	bool here;
	size_t i;
	int64_t id;
	gw_rc rc;

	if((rc = http_require_org(r, r->id[0], ANY_ADMIN)) || (rc = org_exists(r, r->id[0])))
		return rc;
	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_string(r->body, "name", true, 1, 200, 0, &t.name, NULL, &r->err)) ||
	   (rc = jv_skills(r->body, "skills", false, 20, &skills, &here, &r->err)) ||
	   (rc = jv_int(r->body, "price_cents", true, 0, 100000000, &price, NULL, &r->err)) ||
	   (rc = jv_string(r->body, "currency", true, 3, 3, 0, &t.currency, NULL, &r->err)) ||
	   (rc = jv_int(r->body, "step_minutes", false, 5, 240, &step, &here, &r->err)))
		goto out;
	if(!valid_currency(t.currency)) {
		rc = gw_err_set(&r->err, GW_EINVAL, "currency",
		                "currency must be an ISO 4217 code such as EUR");
		goto out;
	}
	lv = json_object_get(r->body, "lengths");
	if(!json_is_array(lv) || json_array_size(lv) < 1 || json_array_size(lv) > 10) {
		rc = gw_err_set(&r->err, GW_EINVAL, "lengths",
		                "lengths must be an array of 1 to 10 durations in minutes");
		goto out;
	}
	lengths = json_array();
	json_array_foreach(lv, i, x) {
		if(!json_is_integer(x) || json_integer_value(x) < 5 || json_integer_value(x) > 720) {
			rc = gw_err_set(&r->err, GW_EINVAL, "lengths",
			                "each length must be a whole number of minutes from 5 to 720");
			goto out;
		}
		json_array_append(lengths, x);
	}
	if(!skills)
		skills = json_array(); /* a session type without skills fits every request */
	t.skills = skills;
	t.lengths = lengths;
	t.price_cents = price;
	t.step_minutes = (int)step;
	rc = store_session_type_create(r->st, r->id[0], &t, &id);
	if(rc)
		goto out;
	rc = store_session_type_get(r->st, r->id[0], id, out);
	r->status = 201;
out:
	json_decref(skills);
	json_decref(lengths);
	return rc;
}

/* session_type_list - GET /v1/orgs/{org}/session-types: public (the intake form needs it) */
static gw_rc session_type_list(struct http_req *r, json_t **out)
{
	gw_rc rc = org_exists(r, r->id[0]);

	return rc ? rc : store_session_type_list(r->st, r->id[0], out);
}

/* session_type_get - GET /v1/orgs/{org}/session-types/{id} */
static gw_rc session_type_get(struct http_req *r, json_t **out)
{
	return store_session_type_get(r->st, r->id[0], r->id[1], out);
}

/* ---- requests ---- */

/* intake_limits - the organisation's intake limits, per client address first (one flooding
 * address is refused before it uses up the organisation's allowance), then per organisation;
 * every attempt counts, valid or not */
static gw_rc intake_limits(struct http_req *r, int64_t org)
{
	json_t *stored = NULL, *eff;
	long long per_addr, per_org;
	char key[64];
	gw_rc rc;

	if((rc = store_org_settings(r->st, org, &stored)))
		return rc;
	eff = settings_effective(stored);
	json_decref(stored);
	if(!eff)
		return GW_ENOMEM;
	per_addr = json_integer_value(json_object_get(eff, "intake_per_address_per_minute"));
	per_org = json_integer_value(json_object_get(eff, "intake_per_org_per_minute"));
	json_decref(eff);
	snprintf(key, sizeof(key), "%lld/%s", (long long)org, r->client);
	if((rc = http_rate_limit(r, RL_INTAKE_ADDRESS, key, (unsigned)per_addr)))
		return rc;
	snprintf(key, sizeof(key), "%lld", (long long)org);
	return http_rate_limit(r, RL_INTAKE_ORG, key, (unsigned)per_org);
}

/* request_create - POST /v1/orgs/{org}/requests (public intake) */
static gw_rc request_create(struct http_req *r, json_t **out)
{
	struct lc_env env = {.public_url = r->cfg->public_url};
	gw_rc rc = org_exists(r, r->id[0]);

	if(rc || (rc = intake_limits(r, r->id[0])))
		return rc;
	rc = lc_intake(r->st, &env, r->id[0], r->body, out, &r->err);
	if(!rc)
		r->status = 201;
	return rc;
}

static const char *const request_states[] = {"new",    "claimed",   "scheduling",
                                             "booked", "cancelled", "closed",
                                             NULL};

/* request_actions - each request of list (an array or one request) gets "actions": what the
 * caller may do to it now (lc_request_actions), so that pages offer only what is allowed */
static gw_rc request_actions(struct http_req *r, json_t *list)
{
	json_t *one[1] = {list}, *x;
	size_t i, n = json_is_array(list) ? json_array_size(list) : 1;

	for(i = 0; i < n; i++) {
		x = json_is_array(list) ? json_array_get(list, i) : one[0];
		if(json_object_set_new(x, "actions", lc_request_actions(x, &r->actor)))
			return GW_ENOMEM;
	}
	return GW_OK;
}

/* request_list - GET /v1/orgs/{org}/requests?status= */
static gw_rc request_list(struct http_req *r, json_t **out)
{
	const char *status;
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN | ROLE_TRAINER);

	if(rc || (rc = http_query_enum(r, "status", request_states, &status)))
		return rc;
	/* an org admin sees every request; a trainer the unclaimed ones that match and their own */
	if((rc = store_request_list(r->st, r->id[0], status,
	                            (r->user.roles & ANY_ADMIN) ? 0 : r->user.id, out)))
		return rc;
	return request_actions(r, *out);
}

/* request_get - GET /v1/orgs/{org}/requests/{id} */
static gw_rc request_get(struct http_req *r, json_t **out)
{
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN | ROLE_TRAINER);
	bool match = false;
	json_t *req = NULL;

	if(rc || (rc = store_request_get(r->st, r->id[0], r->id[1], &req)))
		return rc;
	if(!(r->user.roles & ANY_ADMIN) &&
	   json_integer_value(json_object_get(req, "trainer_id")) != r->user.id) {
		rc = store_trainer_matches(r->st, r->id[0], r->id[1], r->user.id, &match);
		if(!rc && !match)
			rc = gw_err_set(&r->err, GW_EFORBIDDEN, "", "this request is not for your skills");
		if(!rc && strcmp(json_string_value(json_object_get(req, "status")), "new") != 0)
			rc = gw_err_set(&r->err, GW_EFORBIDDEN, "",
			                "this request has been claimed by another trainer");
		if(rc) {
			json_decref(req);
			return rc;
		}
	}
	if((rc = request_actions(r, req))) {
		json_decref(req);
		return rc;
	}
	*out = req;
	return GW_OK;
}

/* request_patch - PATCH /v1/orgs/{org}/requests/{id} */
static gw_rc request_patch(struct http_req *r, json_t **out)
{
	gw_rc rc = http_require_org(r, r->id[0], ROLE_TRAINER | ROLE_ORG_ADMIN);

	return rc ? rc : lc_request_patch(r->st, r->id[0], r->id[1], &r->actor, r->body, out, &r->err);
}

/* request_claim - POST /v1/orgs/{org}/requests/{id}/claim */
static gw_rc request_claim(struct http_req *r, json_t **out)
{
	gw_rc rc = http_require_org(r, r->id[0], ROLE_TRAINER | ROLE_ORG_ADMIN | ROLE_KIOSK);

	if(rc)
		return rc;
	if(!(r->user.roles & ROLE_TRAINER))
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "only a trainer can claim a request");
	return lc_claim(r->st, r->id[0], r->id[1], &r->actor, out, &r->err);
}

/* ---- deliveries ---- */

/* outbox_list - GET /v1/orgs/{org}/outbox?status= */
static gw_rc outbox_list(struct http_req *r, json_t **out)
{
	const char *status;
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN);

	if(rc || (rc = http_query_enum(r, "status", store_outbox_states, &status)))
		return rc;
	return store_outbox_list(r->st, r->id[0], status, 1000, out);
}

/* outbox_retry - POST /v1/orgs/{org}/outbox/{id}/retry */
static gw_rc outbox_retry(struct http_req *r, json_t **out)
{
	gw_rc rc = http_require_org(r, r->id[0], ANY_ADMIN);
	bool gone = false;

	if(rc)
		return rc;
	rc = store_outbox_retry(r->st, r->id[0], r->id[1], &gone);
	if(rc == GW_ESTATE && gone)
		return gw_err_set(&r->err, rc, "",
		                  "this delivery's content was removed after the retention period;"
		                  " it cannot be sent again");
	if(rc == GW_ESTATE)
		return gw_err_set(&r->err, rc, "", "only a dead or expired delivery can be retried");
	if(rc)
		return rc;
	dispatch_wake();
	*out = json_pack("{s:I, s:s}", "id", (json_int_t)r->id[1], "status", "pending");
	return *out ? GW_OK : GW_ENOMEM;
}

/* ---- operations ---- */

/* healthz - GET /healthz */
static gw_rc healthz(struct http_req *r, json_t **out)
{
	(void)r;
	*out = json_pack("{s:s, s:s}", "status", "ok", "version", ORDINATUS_VERSION);
	return *out ? GW_OK : GW_ENOMEM;
}

/* test_clock - PUT /v1/test/clock (serve --test-clock only) */
static gw_rc test_clock(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"now", NULL};
	char buf[TIMEFMT_LEN];
	time_t t;
	gw_rc rc;

	if(!r->cfg->test_clock)
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "the test clock is off");
	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_time(r->body, "now", true, &t, NULL, &r->err)))
		return rc;
	clock_set_test(t);
	dispatch_wake();
	timefmt_rfc3339(clock_now(), buf);
	*out = json_pack("{s:s}", "now", buf);
	return *out ? GW_OK : GW_ENOMEM;
}

/* test_tick - POST /v1/test/tick (serve --test-clock only): one tick at the clock's time */
static gw_rc test_tick(struct http_req *r, json_t **out)
{
	struct lc_env env = {.public_url = r->cfg->public_url};

	if(!r->cfg->test_clock)
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "the test clock is off");
	return sched_tick(r->st, &env, clock_now(), out, &r->err);
}

/* test_busy_refresh - POST /v1/test/busy-refresh (serve --test-clock only, where the busy-time
 * thread is off): fetch every connected calendar's busy times now, on this request */
static gw_rc test_busy_refresh(struct http_req *r, json_t **out)
{
	if(!r->cfg->test_clock)
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "the test clock is off");
	return dispatch_busy_refresh(r->st, 0, out);
}

/* metrics - GET /metrics: Prometheus text format */
static gw_rc metrics(struct http_req *r, json_t **out)
{
	struct tpl_buf b = {0};
	gw_rc rc;

	(void)out;
	tpl_buf_add(&b, "# HELP ordinatus_build_info The version of this build.\n"
	                "# TYPE ordinatus_build_info gauge\n"
	                "ordinatus_build_info{version=\"" ORDINATUS_VERSION "\"} 1\n");
	/* the delivery engine's metrics (outbox rows, depth, lag, outcomes, attempt latency) */
	rc = dispatch_metrics(&b, r->st);
	if(rc) {
		tpl_buf_free(&b);
		return rc;
	}
	http_routes_metrics(&b);
	if(b.oom) {
		tpl_buf_free(&b);
		return GW_ENOMEM;
	}
	r->text = b.p;
	r->content_type = "text/plain; version=0.0.4";
	return GW_OK;
}

/* ---- the route table ---- */

static const struct http_route routes[] = {
    {"GET", "/healthz", "healthz", healthz, HTTP_BODY_NONE},
    {"GET", "/metrics", "metrics", metrics, HTTP_BODY_NONE},
    {"POST", "/v1/orgs", "org_create", org_create, HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}", "org_get", org_get, HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/users", "user_create", user_create, HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/users", "user_list", user_list, HTTP_BODY_NONE},
    {"GET", "/v1/orgs/{id}/users/{id}", "user_get", user_get, HTTP_BODY_NONE},
    {"PATCH", "/v1/orgs/{id}/users/{id}", "user_patch", user_patch, HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/settings", "settings_get", settings_get, HTTP_BODY_NONE},
    {"PATCH", "/v1/orgs/{id}/settings", "settings_patch", settings_update, HTTP_BODY_REQUIRED},
    {"POST", "/v1/orgs/{id}/session-types", "session_type_create", session_type_create,
     HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/session-types", "session_type_list", session_type_list, HTTP_BODY_NONE},
    {"GET", "/v1/orgs/{id}/session-types/{id}", "session_type_get", session_type_get,
     HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/requests", "request_create", request_create, HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/requests", "request_list", request_list, HTTP_BODY_NONE},
    {"GET", "/v1/orgs/{id}/requests/{id}", "request_get", request_get, HTTP_BODY_NONE},
    {"PATCH", "/v1/orgs/{id}/requests/{id}", "request_patch", request_patch, HTTP_BODY_REQUIRED},
    {"POST", "/v1/orgs/{id}/requests/{id}/claim", "request_claim", request_claim, HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/requests/{id}/cancel", "request_cancel", http_request_cancel,
     HTTP_BODY_OPTIONAL},
    {"GET", "/v1/orgs/{id}/outbox", "outbox_list", outbox_list, HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/outbox/{id}/retry", "outbox_retry", outbox_retry, HTTP_BODY_NONE},
    {"PUT", "/v1/test/clock", "test_clock", test_clock, HTTP_BODY_REQUIRED},
    {"POST", "/v1/test/tick", "test_tick", test_tick, HTTP_BODY_OPTIONAL},
    {"POST", "/v1/test/busy-refresh", "test_busy_refresh", test_busy_refresh,
     HTTP_BODY_OPTIONAL},
    {"PUT", "/v1/orgs/{id}/users/{id}/availability", "availability_put", http_availability_put,
     HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/users/{id}/availability", "availability_get", http_availability_get,
     HTTP_BODY_NONE},
    {"PUT", "/v1/orgs/{id}/users/{id}/calendar", "calendar_put", http_calendar_put,
     HTTP_BODY_REQUIRED},
    {"DELETE", "/v1/orgs/{id}/users/{id}/calendar", "calendar_delete", http_calendar_delete,
     HTTP_BODY_NONE},
    {"GET", "/v1/orgs/{id}/users/{id}/calendar/connect", "calendar_connect",
     http_calendar_connect, HTTP_BODY_NONE},
    {"GET", "/oauth/callback", "oauth_callback", http_oauth_callback, HTTP_BODY_NONE},
    {"GET", "/v1/orgs/{id}/calendar-connections", "calendar_list", http_calendar_list,
     HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/users/{id}/feed", "feed_create", http_feed_create, HTTP_BODY_NONE},
    {"GET", "/v1/feeds/{s}", "feed_get", http_feed_get, HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/requests/{id}/scheduling-link", "link_send", http_link_send,
     HTTP_BODY_OPTIONAL},
    {"GET", "/v1/schedule/{s}", "schedule_get", http_schedule_get, HTTP_BODY_NONE},
    {"POST", "/v1/schedule/{s}/booking", "schedule_book", http_schedule_book,
     HTTP_BODY_REQUIRED},
    {"POST", "/v1/schedule/{s}/payment", "schedule_pay", http_schedule_pay, HTTP_BODY_REQUIRED},
    {"GET", "/v1/manage/{s}", "manage_get", http_manage_get, HTTP_BODY_NONE},
    {"POST", "/v1/manage/{s}/cancel", "manage_cancel", http_manage_act, HTTP_BODY_OPTIONAL},
    {"POST", "/v1/manage/{s}/reschedule", "manage_reschedule", http_manage_act,
     HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/bookings", "booking_list", http_booking_list, HTTP_BODY_NONE},
    {"GET", "/v1/orgs/{id}/bookings/{id}", "booking_get", http_booking_get, HTTP_BODY_NONE},
    {"GET", "/v1/orgs/{id}/bookings/{id}/notes", "booking_notes", http_booking_notes,
     HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/bookings/{id}/notes", "booking_note_add", http_booking_notes,
     HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/bookings/{id}/effects", "booking_effects", http_booking_effects,
     HTTP_BODY_NONE},
    {"GET", "/v1/orgs/{id}/bookings/{id}/slots", "booking_slots", http_booking_slots,
     HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/bookings/{id}/{s}", "booking_act", http_booking_act,
     HTTP_BODY_OPTIONAL},
    {"GET", "/v1/orgs/{id}/customers/{s}/bookings", "customer_bookings", http_customer_bookings,
     HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/checkin", "checkin", http_checkin, HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/reports/payouts", "report_payouts", http_report_payouts,
     HTTP_BODY_NONE},
    {"GET", "/v1/survey/{s}", "survey_get", http_survey_get, HTTP_BODY_NONE},
    {"PUT", "/v1/orgs/{id}/providers/{s}", "provider_put", http_provider_put, HTTP_BODY_REQUIRED},
    {"GET", "/v1/orgs/{id}/providers", "provider_list", http_provider_list, HTTP_BODY_NONE},
    {"POST", "/v1/orgs/{id}/providers/smtp/test", "test_email", http_test_email,
     HTTP_BODY_OPTIONAL},
    {"DELETE", "/v1/orgs/{id}/providers/{s}", "provider_delete", http_provider_delete,
     HTTP_BODY_NONE},
    {"POST", "/v1/survey/{s}", "survey_answer", http_survey_answer, HTTP_BODY_REQUIRED},
    /* the pages (web/, http_static.c): HEAD is served by each GET route */
    {"GET", "/", "page_index", http_static_page, HTTP_BODY_NONE},
    {"GET", "/login", "page_login", http_static_page, HTTP_BODY_NONE},
    {"GET", "/login/{s}", "page_login_link", http_static_page, HTTP_BODY_NONE},
    {"GET", "/requests/{id}", "page_request", http_static_page, HTTP_BODY_NONE},
    {"GET", "/s/{s}", "page_schedule", http_static_page, HTTP_BODY_NONE},
    {"GET", "/survey/{s}", "page_survey", http_static_page, HTTP_BODY_NONE},
    {"GET", "/b/{s}", "page_manage", http_static_page, HTTP_BODY_NONE},
    {"GET", "/dashboard", "page_dashboard", http_static_page, HTTP_BODY_NONE},
    {"GET", "/calendar", "page_calendar", http_static_page, HTTP_BODY_NONE},
    {"GET", "/admin", "page_admin", http_static_page, HTTP_BODY_NONE},
    {"GET", "/kiosk", "page_kiosk", http_static_page, HTTP_BODY_NONE},
    {"GET", "/static/{s}", "static_asset", http_static_asset, HTTP_BODY_NONE},
    {"POST", "/v1/auth/sign-in", "auth_sign_in", http_auth_sign_in, HTTP_BODY_REQUIRED},
    {"POST", "/v1/auth/login", "auth_login", http_auth_login, HTTP_BODY_REQUIRED},
    {"GET", "/v1/auth/session", "auth_session", http_auth_session, HTTP_BODY_NONE},
    {"POST", "/v1/auth/sign-out", "auth_sign_out", http_auth_sign_out, HTTP_BODY_NONE},
};

#define NROUTES GW_ARRAY_LEN(routes)
#define NCLASSES 6 /* status classes 1xx..5xx, index by status / 100; 0 unused */

static _Atomic long long counters[NROUTES + 1][NCLASSES];
static _Atomic long long latency_ms_sum[NROUTES + 1];

/* match - does path match pattern; fills ids and strings */
static bool match(const char *pattern, const char *path, struct http_req *r)
{
	const char *p = pattern, *s = path;
	int nid = 0, nstr = 0;

	while(*p && *s) {
		if(strncmp(p, "{id}", 4) == 0) {
			long long v = 0;
			int digits = 0;
			while(*s >= '0' && *s <= '9') {
				if(v > (INT64_MAX - 9) / 10)
					return false;
				v = v * 10 + (*s - '0');
				s++;
				digits++;
			}
			if(!digits || v == 0 || nid >= 4)
				return false;
			r->id[nid++] = v;
			p += 4;
		} else if(strncmp(p, "{s}", 3) == 0) {
			const char *e = strchr(s, '/');
			if(e == s || nstr >= 2)
				return false;
			r->str[nstr++] = s; /* the handler reads up to the next '/' */
			s = e ? e : s + strlen(s);
			p += 3;
		} else {
			if(*p != *s)
				return false;
			p++;
			s++;
		}
	}
	return !*p && !*s;
}

/* http_seg - copy a string path parameter */
gw_rc http_seg(const struct http_req *r, int i, char *buf, size_t n)
{
	const char *s = r->str[i], *e;
	size_t len;

	if(!s)
		return GW_EINVAL;
	e = strchr(s, '/');
	len = e ? (size_t)(e - s) : strlen(s);
	if(len == 0 || len >= n)
		return GW_EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return GW_OK;
}

/* allow_add - add method to the comma-separated list allow (n bytes) unless it is there */
static void allow_add(char *allow, size_t n, const char *method)
{
	size_t used = strlen(allow), mlen = strlen(method);
	const char *p;

	for(p = allow; (p = strstr(p, method)) != NULL; p += mlen)
		if((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
			return;
	snprintf(allow + used, n - used, "%s%s", used ? ", " : "", method);
}

/* http_route_find - route lookup; HEAD is served by the GET route (RFC 9110 9.3.2) */
const struct http_route *http_route_find(const char *method, const char *path,
                                         struct http_req *r, char *allow, size_t n)
{
	const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	size_t i;

	allow[0] = '\0';
	for(i = 0; i < NROUTES; i++) {
		memset(r->id, 0, sizeof(r->id));
		memset(r->str, 0, sizeof(r->str));
		if(!match(routes[i].pattern, path, r))
			continue;
		if(strcmp(routes[i].method, want) == 0)
			return &routes[i];
		allow_add(allow, n, routes[i].method);
		if(strcmp(routes[i].method, "GET") == 0)
			allow_add(allow, n, "HEAD");
	}
	return NULL;
}

/* http_routes_count - count an answered request */
void http_routes_count(const struct http_route *route, int status, int64_t ms)
{
	size_t i = route ? (size_t)(route - routes) : NROUTES;
	int cls = status / 100;

	if(cls < 1 || cls >= NCLASSES)
		cls = 5;
	atomic_fetch_add(&counters[i][cls], 1);
	atomic_fetch_add(&latency_ms_sum[i], ms);
}

/* http_routes_metrics - Prometheus text of the HTTP counters */
void http_routes_metrics(struct tpl_buf *b)
{
	long long reaped, refused, open;
	size_t i;
	int c;

	http_limits_metrics(&reaped, &refused, &open);
	tpl_buf_addf(b, "# HELP ordinatus_http_slow_closed_total Connections closed for sending "
	                "their request too slowly.\n"
	                "# TYPE ordinatus_http_slow_closed_total counter\n"
	                "ordinatus_http_slow_closed_total %lld\n"
	                "# HELP ordinatus_http_refused_total Connections refused: the address had "
	                "too many open.\n# TYPE ordinatus_http_refused_total counter\n"
	                "ordinatus_http_refused_total %lld\n"
	                "# HELP ordinatus_http_connections Connections open now.\n"
	                "# TYPE ordinatus_http_connections gauge\n"
	                "ordinatus_http_connections %lld\n",
	             reaped, refused, open);

	tpl_buf_add(b, "# HELP ordinatus_http_requests_total HTTP requests by route and status "
	               "class.\n# TYPE ordinatus_http_requests_total counter\n");
	for(i = 0; i <= NROUTES; i++) {
		for(c = 1; c < NCLASSES; c++) {
			long long n = atomic_load(&counters[i][c]);
			if(n)
				tpl_buf_addf(b, "ordinatus_http_requests_total{route=\"%s\",status=\"%dxx\"} %lld\n",
				             i < NROUTES ? routes[i].name : "unmatched", c, n);
		}
	}
	tpl_buf_add(b, "# HELP ordinatus_http_request_ms_sum Time spent answering, by route.\n"
	               "# TYPE ordinatus_http_request_ms_sum counter\n");
	for(i = 0; i <= NROUTES; i++) {
		long long ms = atomic_load(&latency_ms_sum[i]);
		if(ms)
			tpl_buf_addf(b, "ordinatus_http_request_ms_sum{route=\"%s\"} %lld\n",
			             i < NROUTES ? routes[i].name : "unmatched", ms);
	}
}

/* http_route_at - route i of the table, NULL past its end (`ordinatus routes`, the
 * authorization matrix test) */
const struct http_route *http_route_at(size_t i)
{
	return i < NROUTES ? &routes[i] : NULL;
}
