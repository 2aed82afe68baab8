/*
 * http_booking.c - HTTP handlers of the booking lifecycle: availability, scheduling links and
 * the customer's schedule pages, bookings and their transitions, notes, effects, customer
 * history, the free slots a booking can move to, the admin's test email, the kiosk's
 * check-in, the payout report, surveys, the trainer's feed, the cancel of a request, and the
 * customer's manage page.
 *
 * Entry points: the http_* handlers declared in http_routes.h.
 * Threading: MHD's threads, each with its own store connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "http_routes.h"
#include "providers/ical/ical.h"
#include "common/jsonv.h"
#include "common/timefmt.h"
#include "gateway/lifecycle/lc_slots.h"

#define ADMINS (ROLE_ORG_ADMIN | ROLE_PLATFORM_ADMIN)

static const char *const day_keys[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* env_of - the lifecycle environment of a request */
static struct lc_env env_of(const struct http_req *r)
{
	struct lc_env env = {.public_url = r->cfg->public_url};

	return env;
}

/* self_or_admin - the user named in the path, or an admin of the organisation */
static gw_rc self_or_admin(struct http_req *r)
{
	gw_rc rc = http_require_org(r, r->id[0], ADMINS | ROLE_TRAINER);

	if(rc)
		return rc;
	if(!(r->user.roles & ADMINS) && r->user.id != r->id[1])
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "only that trainer or an org admin");
	return GW_OK;
}

/* hhmm - "HH:MM" (00:00..24:00) to minutes, or -1 */
static int hhmm(const char *s)
{
	int h, m;

	if(!s || strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '9' || s[1] < '0' ||
	   s[1] > '9' || s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if(m > 59 || h > 24 || (h == 24 && m != 0))
		return -1;
	return h * 60 + m;
}

/* http_availability_put - PUT .../users/{id}/availability */
gw_rc http_availability_put(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"weekly", "blackouts", NULL};
	static const char *const wkeys[] = {"day", "start", "end", NULL};
	static const char *const bkeys[] = {"start", "end", NULL};
	json_t *weekly, *blackouts, *x, *norm = NULL, *nw, *nbk;
	size_t i, d;
	gw_rc rc;

	if((rc = self_or_admin(r)) || (rc = jv_only(r->body, keys, &r->err)))
		return rc;
	weekly = json_object_get(r->body, "weekly");
	blackouts = json_object_get(r->body, "blackouts");
	if(!json_is_array(weekly) || json_array_size(weekly) > 100)
		return gw_err_set(&r->err, GW_EINVAL, "weekly",
		                  "weekly must be an array of up to 100 {day, start, end}");
	if(blackouts && !json_is_null(blackouts) &&
	   (!json_is_array(blackouts) || json_array_size(blackouts) > 500))
		return gw_err_set(&r->err, GW_EINVAL, "blackouts",
		                  "blackouts must be an array of up to 500 {start, end}");
	norm = json_pack("{s:[], s:[]}", "weekly", "blackouts");
	if(!norm)
		return GW_ENOMEM;
	nw = json_object_get(norm, "weekly");
	nbk = json_object_get(norm, "blackouts");
	json_array_foreach(weekly, i, x) {
		const char *day = json_string_value(json_object_get(x, "day"));
		int a = hhmm(json_string_value(json_object_get(x, "start")));
		int b = hhmm(json_string_value(json_object_get(x, "end")));
		for(d = 0; day && d < 7; d++) {
			if(strcmp(day, day_keys[d]) == 0)
				break;
		}
		if(!json_is_object(x) || jv_only(x, wkeys, NULL) || !day || d == 7 || a < 0 || b < 0 ||
		   a >= b) {
			rc = gw_err_set(&r->err, GW_EINVAL, "weekly",
			                "weekly[%zu] must be {day: mon..sun, start: \"HH:MM\", end: "
			                "\"HH:MM\"} with start before end",
			                i);
			goto out;
		}
		json_array_append_new(nw, json_pack("{s:s, s:O, s:O}", "day", day_keys[d], "start",
		                                     json_object_get(x, "start"), "end",
		                                     json_object_get(x, "end")));
	}
	json_array_foreach(blackouts, i, x) {
		time_t a, b;
		char sa[TIMEFMT_LEN], sb[TIMEFMT_LEN];
		if(!json_is_object(x) || jv_only(x, bkeys, NULL) ||
		   timefmt_parse(json_string_value(json_object_get(x, "start")), &a) ||
		   timefmt_parse(json_string_value(json_object_get(x, "end")), &b) || a >= b) {
			rc = gw_err_set(&r->err, GW_EINVAL, "blackouts",
			                "blackouts[%zu] must be {start, end}, start first, each "
			                TIMEFMT_WANTED, i);
			goto out;
		}
		timefmt_rfc3339(a, sa);
		timefmt_rfc3339(b, sb);
		json_array_append_new(nbk, json_pack("{s:s, s:s}", "start", sa, "end", sb));
	}
	rc = store_user_availability_put(r->st, r->id[0], r->id[1], norm);
	if(rc)
		goto out;
	*out = norm;
	norm = NULL;
out:
	json_decref(norm);
	return rc;
}

/* http_availability_get - GET .../users/{id}/availability */
gw_rc http_availability_get(struct http_req *r, json_t **out)
{
	gw_rc rc = self_or_admin(r);

	return rc ? rc : store_user_availability(r->st, r->id[0], r->id[1], out);
}

/* http_link_send - POST .../requests/{id}/scheduling-link */
gw_rc http_link_send(struct http_req *r, json_t **out)
{
	struct lc_env env = env_of(r);
	gw_rc rc = http_require_org(r, r->id[0], ROLE_TRAINER | ADMINS);

	if(rc)
		return rc;
	if(r->body && json_object_size(r->body))
		return gw_err_set(&r->err, GW_EINVAL, "", "this call takes no fields");
	return lc_link_send(r->st, &env, r->id[0], r->id[1], &r->actor, out, &r->err);
}

/* token_of - the link token from the path */
static gw_rc token_of(struct http_req *r, char *buf, size_t n)
{
	if(http_seg(r, 0, buf, n))
		return gw_err_set(&r->err, GW_EEXPIRED, "", "this link has expired or was replaced");
	return GW_OK;
}

/* http_schedule_get - GET /v1/schedule/{token} */
gw_rc http_schedule_get(struct http_req *r, json_t **out)
{
	const char *from = http_query(r, "from");
	time_t after = 0;
	char tok[128];
	gw_rc rc = token_of(r, tok, sizeof(tok));

	if(rc)
		return rc;
	if(from && timefmt_parse(from, &after))
		return gw_err_set(&r->err, GW_EINVAL, "from",
		                  "from must be an RFC 3339 time such as 2026-12-01T09:00:00Z");
	return lc_schedule_view(r->st, tok, after, out, &r->err);
}

/* http_schedule_book - POST /v1/schedule/{token}/booking */
gw_rc http_schedule_book(struct http_req *r, json_t **out)
{
	char tok[128];
	gw_rc rc = token_of(r, tok, sizeof(tok));

	if(!rc)
		rc = lc_book(r->st, tok, r->body, out, &r->err);
	if(!rc)
		r->status = 201;
	return rc;
}

/* http_schedule_pay - POST /v1/schedule/{token}/payment */
gw_rc http_schedule_pay(struct http_req *r, json_t **out)
{
	char tok[128];
	gw_rc rc = token_of(r, tok, sizeof(tok));

	return rc ? rc : lc_pay(r->st, tok, r->body, out, &r->err);
}

/* http_request_cancel - POST /v1/orgs/{org}/requests/{id}/cancel {reason} */
gw_rc http_request_cancel(struct http_req *r, json_t **out)
{
	gw_rc rc = http_require_org(r, r->id[0], ADMINS | ROLE_TRAINER);

	return rc ? rc : lc_request_cancel(r->st, r->id[0], r->id[1], &r->actor, r->body, out,
	                                   &r->err);
}

/* manage_token - the manage token from the path: anything unusable is an unknown link */
static gw_rc manage_token(struct http_req *r, char *buf, size_t n)
{
	if(http_seg(r, 0, buf, n))
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "no such booking link");
	return GW_OK;
}

/* http_manage_get - GET /v1/manage/{token} */
gw_rc http_manage_get(struct http_req *r, json_t **out)
{
	char tok[128];
	gw_rc rc = manage_token(r, tok, sizeof(tok));

	return rc ? rc : lc_manage_view(r->st, tok, out, &r->err);
}

/* http_manage_act - POST /v1/manage/{token}/cancel and /reschedule */
gw_rc http_manage_act(struct http_req *r, json_t **out)
{
	struct lc_env env = env_of(r);
	const char *action = strrchr(r->path, '/');
	char tok[128];
	gw_rc rc = manage_token(r, tok, sizeof(tok));

	if(rc)
		return rc;
	return lc_manage_act(r->st, &env, tok, action ? action + 1 : "", r->body, out, &r->err);
}

static const char *const booking_states[] = {"pending_payment", "confirmed", "completed",
                                             "no_show", "cancelled", NULL};

/* booking_actions - each booking of list (an array or one booking) gets "actions": what the
 * caller may do to it at now (lc_booking_actions), so that pages offer only what the guard
 * table allows and never decide it themselves */
static gw_rc booking_actions(struct http_req *r, json_t *list, time_t now)
{
	json_t *settings = NULL, *x;
	size_t i, n = json_is_array(list) ? json_array_size(list) : 1;
	gw_rc rc = lc_org_settings(r->st, r->id[0], &settings);

	for(i = 0; !rc && i < n; i++) {
		x = json_is_array(list) ? json_array_get(list, i) : list;
		if(json_object_set_new(x, "actions",
		                       lc_booking_actions(x, settings, now, &r->actor)))
			rc = GW_ENOMEM;
	}
	json_decref(settings);
	return rc;
}

/* http_booking_list - GET /v1/orgs/{org}/bookings?status=&trainer_id=&awaiting_completion=
 * &from=&to= */
gw_rc http_booking_list(struct http_req *r, json_t **out)
{
	struct store_booking_filter f = {0};
	const char *status = NULL, *tid = http_query(r, "trainer_id");
	const char *aw = http_query(r, "awaiting_completion");
	const char *from = http_query(r, "from"), *to = http_query(r, "to");
	gw_rc rc = http_require_org(r, r->id[0], ADMINS | ROLE_TRAINER);

	if(rc || (rc = http_query_enum(r, "status", booking_states, &status)))
		return rc;
	if(tid) {
		char *end;
		f.trainer_id = strtoll(tid, &end, 10);
		if(*end || f.trainer_id <= 0)
			return gw_err_set(&r->err, GW_EINVAL, "trainer_id", "trainer_id must be an id");
	}
	if(aw && strcmp(aw, "true") != 0 && strcmp(aw, "false") != 0)
		return gw_err_set(&r->err, GW_EINVAL, "awaiting_completion",
		                  "awaiting_completion must be true or false");
	/* from and to bound the start ([from, to)): the week a calendar page shows */
	if(from && (timefmt_parse(from, &f.start_from) || f.start_from <= 0))
		return gw_err_set(&r->err, GW_EINVAL, "from", "from must be " TIMEFMT_WANTED);
	if(to && (timefmt_parse(to, &f.start_to) || f.start_to <= 0))
		return gw_err_set(&r->err, GW_EINVAL, "to", "to must be " TIMEFMT_WANTED);
	/* a trainer sees their own bookings only */
	if(!(r->user.roles & ADMINS))
		f.trainer_id = r->user.id;
	f.status = status;
	f.awaiting_completion = aw && strcmp(aw, "true") == 0;
	f.now = clock_now();
	if((rc = store_booking_list(r->st, r->id[0], &f, out)))
		return rc;
	return booking_actions(r, *out, f.now);
}

/* booking_for - the booking if the caller may see it */
static gw_rc booking_for(struct http_req *r, json_t **b)
{
	gw_rc rc = http_require_org(r, r->id[0], ADMINS | ROLE_TRAINER);

	*b = NULL;
	if(rc || (rc = store_booking_get(r->st, r->id[0], r->id[1], b)))
		return rc;
	if(!(r->user.roles & ADMINS) &&
	   json_integer_value(json_object_get(*b, "trainer_id")) != r->user.id) {
		json_decref(*b);
		*b = NULL;
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "this is another trainer's booking");
	}
	return GW_OK;
}

/* http_booking_get - GET /v1/orgs/{org}/bookings/{id} */
gw_rc http_booking_get(struct http_req *r, json_t **out)
{
	gw_rc rc = booking_for(r, out);

	if(!rc && (rc = booking_actions(r, *out, clock_now()))) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* http_test_email - POST /v1/orgs/{org}/providers/smtp/test: the admin's test email, 202 */
gw_rc http_test_email(struct http_req *r, json_t **out)
{
	struct lc_env env = env_of(r);
	gw_rc rc = http_require_org(r, r->id[0], ROLE_ORG_ADMIN);

	if(rc)
		return rc;
	if(r->body && json_object_size(r->body))
		return gw_err_set(&r->err, GW_EINVAL, "", "this call takes no fields");
	if(!(rc = lc_test_email(r->st, &env, r->id[0], &r->actor, out, &r->err)))
		r->status = 202;
	return rc;
}

/* http_booking_slots - GET /v1/orgs/{org}/bookings/{id}/slots: where the owner trainer or an
 * org admin can move the booking to (the schedule view's rule for its trainer and length, its
 * own time counted free); 409 invalid_state for a booking that can no longer move. Costs one
 * slot computation of 14 days. */
gw_rc http_booking_slots(struct http_req *r, json_t **out)
{
	struct lc_booking_facts f;
	struct lc_slot *slots = NULL;
	json_t *b = NULL, *settings = NULL, *list = NULL;
	size_t n = 0, i;
	gw_rc rc = booking_for(r, &b);

	if(rc || (rc = lc_org_settings(r->st, r->id[0], &settings)))
		goto out;
	lc_booking_facts_of(b, settings, clock_now(), &f);
	if((rc = lc_booking_guard(LC_B_RESCHEDULE, &f, &r->actor, &r->err)) ||
	   (rc = lc_booking_slots(r->st, b, &slots, &n, &r->err)))
		goto out;
	if(!(list = json_array())) {
		rc = GW_ENOMEM;
		goto out;
	}
	for(i = 0; i < n && i < LC_VIEW_SLOTS_MAX; i++) {
		char a[TIMEFMT_LEN], e[TIMEFMT_LEN];

		timefmt_rfc3339(slots[i].start, a);
		timefmt_rfc3339(slots[i].end, e);
		if(json_array_append_new(list, json_pack("{s:s, s:s}", "start", a, "end", e))) {
			rc = GW_ENOMEM;
			goto out;
		}
	}
	*out = json_pack("{s:O, s:O, s:O, s:o, s:b}", "booking_id", json_object_get(b, "id"),
	                 "start", json_object_get(b, "start"), "length_minutes",
	                 json_object_get(b, "length_minutes"), "slots", list,
	                 "truncated", n > LC_VIEW_SLOTS_MAX);
	list = NULL;
	if(!*out)
		rc = GW_ENOMEM;
out:
	free(slots);
	json_decref(b);
	json_decref(settings);
	json_decref(list);
	return rc;
}

/* http_booking_act - POST /v1/orgs/{org}/bookings/{id}/{action} */
gw_rc http_booking_act(struct http_req *r, json_t **out)
{
	struct lc_env env = env_of(r);
	char action[32];
	gw_rc rc = http_require_org(r, r->id[0], ADMINS | ROLE_TRAINER);

	if(rc)
		return rc;
	if(http_seg(r, 0, action, sizeof(action)))
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "no such booking action");
	return lc_booking_act(r->st, &env, r->id[0], r->id[1], action, &r->actor, r->body, out,
	                      &r->err);
}

/* http_booking_notes - GET or POST .../bookings/{id}/notes: the author's own notes */
gw_rc http_booking_notes(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"body", NULL};
	json_t *b = NULL;
	const char *body;
	int64_t id;
	gw_rc rc = booking_for(r, &b);

	json_decref(b);
	if(rc)
		return rc;
	if(strcmp(r->method, "GET") == 0)
		return store_note_list(r->st, r->id[1], r->user.id, out);
	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_string(r->body, "body", true, 1, 4000, JV_MULTILINE, &body, NULL, &r->err)))
		return rc;
	if((rc = store_note_add(r->st, r->id[1], r->user.id, body, clock_now(), &id)))
		return rc;
	r->status = 201;
	*out = json_pack("{s:I, s:s}", "id", (json_int_t)id, "body", body);
	return *out ? GW_OK : GW_ENOMEM;
}

/* outcome_text - what a trainer is told of a delivery: its outcome, not the far side's words
 * (a provider's reply names the organisation's servers and accounts: the admins' business) */
static const char *outcome_text(const char *status)
{
	if(!status || strcmp(status, "sent") == 0)
		return NULL;
	if(strcmp(status, "dead") == 0)
		return "could not be delivered; an administrator can see why and retry it";
	if(strcmp(status, "pending") == 0 || strcmp(status, "leased") == 0)
		return "not delivered yet; it will be tried again";
	return "not sent: it was no longer needed";
}

/* trainer_view - the effects list with each last_error replaced by its outcome's text */
static void trainer_view(json_t *list)
{
	json_t *e, *arr = json_is_array(list) ? list : json_object_get(list, "effects");
	size_t i;

	json_array_foreach(arr, i, e)
	{
		const char *t;

		if(json_is_null(json_object_get(e, "last_error")))
			continue;
		t = outcome_text(json_string_value(json_object_get(e, "status")));
		json_object_set_new(e, "last_error", t ? json_string(t) : json_null());
	}
}

/* http_booking_effects - GET .../bookings/{id}/effects */
gw_rc http_booking_effects(struct http_req *r, json_t **out)
{
	json_t *b = NULL;
	gw_rc rc = booking_for(r, &b);

	json_decref(b);
	if(!rc)
		rc = store_booking_effects(r->st, r->id[0], r->id[1], out);
	if(!rc && !(r->user.roles & ADMINS))
		trainer_view(*out);
	return rc;
}

/* http_customer_bookings - GET /v1/orgs/{org}/customers/{email}/bookings */
gw_rc http_customer_bookings(struct http_req *r, json_t **out)
{
	struct store_booking_filter f = {0};
	char email[256];
	gw_rc rc = http_require_org(r, r->id[0], ADMINS);

	if(rc)
		return rc;
	if(http_seg(r, 0, email, sizeof(email)) || !jv_email_valid(email))
		return gw_err_set(&r->err, GW_EINVAL, "email", "the path must name an e-mail address");
	f.customer_email = email;
	f.newest_first = true;
	f.now = clock_now();
	if((rc = store_booking_list(r->st, r->id[0], &f, out)))
		return rc;
	return booking_actions(r, *out, f.now);
}

/* kiosk_view - what a front-desk kiosk is shown of each booking: the customer's first name,
 * the session's times, the trainer's name and the check-in state. Prices, payment references,
 * e-mail addresses and notes stay with the admins, who get the full answer. */
static gw_rc kiosk_view(json_t *ans)
{
	json_t *list = json_object_get(ans, "bookings"), *b, *view = json_array();
	size_t i;

	if(!view)
		return GW_ENOMEM;
	json_array_foreach(list, i, b)
	{
		const char *name = json_string_value(json_object_get(json_object_get(b, "customer"),
		                                                     "name"));
		const json_t *at = json_object_get(b, "checked_in_at");
		size_t first = name ? strcspn(name, " \t") : 0;
		json_t *v = json_pack(
		        "{s:{s:s%}, s:O, s:O, s:{s:O}, s:b, s:O}", "customer", "first_name",
		        name ? name : "", first, "start", json_object_get(b, "start"), "end",
		        json_object_get(b, "end"), "trainer", "name",
		        json_object_get(json_object_get(b, "trainer"), "name"), "checked_in",
		        at && !json_is_null(at), "checked_in_at", at ? at : json_null());

		if(!v || json_array_append_new(view, v)) {
			json_decref(view);
			return GW_ENOMEM;
		}
	}
	return json_object_set_new(ans, "bookings", view) ? GW_ENOMEM : GW_OK;
}

/* http_checkin - POST /v1/orgs/{org}/checkin */
gw_rc http_checkin(struct http_req *r, json_t **out)
{
	struct lc_env env = env_of(r);
	gw_rc rc = http_require_org(r, r->id[0], ADMINS | ROLE_KIOSK);

	if(!rc)
		rc = lc_checkin(r->st, &env, r->id[0], &r->actor, r->body, out, &r->err);
	if(!rc && !(r->user.roles & ADMINS))
		rc = kiosk_view(*out);
	return rc;
}

/* range_param - an RFC 3339 time or a YYYY-MM-DD date (midnight UTC) */
static gw_rc range_param(struct http_req *r, const char *name, time_t *t)
{
	const char *v = http_query(r, name);
	char buf[32];

	if(!v)
		return gw_err_set(&r->err, GW_EINVAL, name, "%s is required", name);
	if(strlen(v) == 10) {
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", v);
		v = buf;
	}
	if(timefmt_parse(v, t))
		return gw_err_set(&r->err, GW_EINVAL, name,
		                  "%s must be a date (YYYY-MM-DD) or " TIMEFMT_WANTED, name);
	return GW_OK;
}

/* http_report_payouts - GET /v1/orgs/{org}/reports/payouts?from=&to= */
gw_rc http_report_payouts(struct http_req *r, json_t **out)
{
	time_t from, to;
	gw_rc rc = http_require_org(r, r->id[0], ADMINS);

	if(rc || (rc = range_param(r, "from", &from)) || (rc = range_param(r, "to", &to)))
		return rc;
	if(to <= from)
		return gw_err_set(&r->err, GW_EINVAL, "to", "to must be after from");
	return store_report_payouts(r->st, r->id[0], from, to, out);
}

/* survey_hash - the stored hash of the survey token in the path */
static gw_rc survey_hash(struct http_req *r, char hash[CRYPTO_HASH_HEX])
{
	char tok[128];

	if(http_seg(r, 0, tok, sizeof(tok)))
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "no such survey");
	crypto_sha256_hex(tok, strlen(tok), hash);
	return GW_OK;
}

/* http_survey_get - GET /v1/survey/{token} */
gw_rc http_survey_get(struct http_req *r, json_t **out)
{
	char hash[CRYPTO_HASH_HEX];
	gw_rc rc = survey_hash(r, hash);

	if(rc || (rc = store_survey_get(r->st, hash, out)))
		return rc == GW_ENOTFOUND ? gw_err_set(&r->err, rc, "", "no such survey") : rc;
	json_object_del(*out, "org_id");
	return GW_OK;
}

/* http_survey_answer - POST /v1/survey/{token}: {rating 1..5, comment}, once */
gw_rc http_survey_answer(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"rating", "comment", NULL};
	char hash[CRYPTO_HASH_HEX];
	const char *comment = NULL;
	long long rating;
	gw_rc rc;

	if((rc = survey_hash(r, hash)) || (rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_int(r->body, "rating", true, 1, 5, &rating, NULL, &r->err)) ||
	   (rc = jv_string(r->body, "comment", false, 0, 4000, JV_MULTILINE, &comment, NULL,
	                   &r->err)))
		return rc;
	rc = store_survey_answer(r->st, hash, (int)rating, comment, clock_now());
	if(rc == GW_ESTATE)
		return gw_err_set(&r->err, rc, "", "this survey has already been answered");
	if(rc == GW_ENOTFOUND)
		return gw_err_set(&r->err, rc, "", "no such survey");
	if(rc)
		return rc;
	*out = json_pack("{s:b, s:I}", "answered", 1, "rating", (json_int_t)rating);
	return *out ? GW_OK : GW_ENOMEM;
}

/* http_feed_create - POST .../users/{id}/feed: that trainer; replaces the previous URL */
gw_rc http_feed_create(struct http_req *r, json_t **out)
{
	char token[CRYPTO_TOKEN_LEN], hash[CRYPTO_HASH_HEX], url[600];
	gw_rc rc = http_require_org(r, r->id[0], ROLE_TRAINER);

	if(rc)
		return rc;
	if(r->user.id != r->id[1])
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "only that trainer makes their feed");
	if((rc = crypto_token("", token, sizeof(token))))
		return rc;
	crypto_sha256_hex(token, strlen(token), hash);
	if((rc = store_user_feed_set(r->st, r->id[0], r->id[1], hash)))
		return rc;
	snprintf(url, sizeof(url), "%s/v1/feeds/%s.ics", r->cfg->public_url, token);
	*out = json_pack("{s:s}", "url", url);
	return *out ? GW_OK : GW_ENOMEM;
}

/* http_feed_get - GET /v1/feeds/{token}.ics: the trainer's confirmed and completed bookings */
gw_rc http_feed_get(struct http_req *r, json_t **out)
{
	struct store_booking_filter f = {0};
	struct ical_event *ev = NULL;
	char tok[128], hash[CRYPTO_HASH_HEX], *ics = NULL, (*summary)[256] = NULL;
	json_t *user = NULL, *list = NULL, *b;
	size_t len, i, n = 0;
	gw_rc rc;

	(void)out;
	if(http_seg(r, 0, tok, sizeof(tok)) || (len = strlen(tok)) < 5 ||
	   strcmp(tok + len - 4, ".ics") != 0)
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "no such feed");
	tok[len - 4] = '\0';
	crypto_sha256_hex(tok, strlen(tok), hash);
	if((rc = store_user_by_feed(r->st, hash, &user)))
		return rc == GW_ENOTFOUND ? gw_err_set(&r->err, rc, "", "no such feed") : rc;
	f.trainer_id = json_integer_value(json_object_get(user, "id"));
	f.start_from = clock_now() - 90 * 86400;
	f.now = clock_now();
	if((rc = store_booking_list(r->st, json_integer_value(json_object_get(user, "org_id")), &f,
	                            &list)))
		goto out;
	ev = calloc(json_array_size(list) + 1, sizeof(*ev));
	summary = calloc(json_array_size(list) + 1, sizeof(*summary));
	if(!ev || !summary) {
		rc = GW_ENOMEM;
		goto out;
	}
	json_array_foreach(list, i, b) {
		const char *st = json_string_value(json_object_get(b, "status"));
		const json_t *cu = json_object_get(b, "customer");
		if(strcmp(st, "confirmed") != 0 && strcmp(st, "completed") != 0)
			continue;
		snprintf(summary[n], sizeof(summary[n]), "Session with %s",
		         json_string_value(json_object_get(cu, "name")));
		ev[n].uid = json_string_value(json_object_get(b, "uid"));
		ev[n].sequence = (int)json_integer_value(json_object_get(b, "sequence"));
		timefmt_parse(json_string_value(json_object_get(b, "start")), &ev[n].start);
		timefmt_parse(json_string_value(json_object_get(b, "end")), &ev[n].end);
		ev[n].dtstamp = clock_now();
		ev[n].summary = summary[n];
		ev[n].location = json_string_value(json_object_get(b, "session_link"));
		ev[n].organizer_email = json_string_value(json_object_get(user, "email"));
		ev[n].organizer_name = json_string_value(json_object_get(user, "name"));
		ev[n].attendee_email = json_string_value(json_object_get(cu, "email"));
		ev[n].attendee_name = json_string_value(json_object_get(cu, "name"));
		n++;
	}
	if((rc = ical_build(ev, n, "PUBLISH", &ics, &r->err)))
		goto out;
	r->text = ics;
	r->content_type = "text/calendar; charset=utf-8";
out:
	free(ev);
	free(summary);
	json_decref(user);
	json_decref(list);
	return rc;
}
