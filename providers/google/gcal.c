/*
 * gcal.c - the Google Calendar provider (gcal.h): OAuth 2.0 refresh-token grant, then Calendar
 * API v3 events insert / patch / delete, over common/rest.h.
 *
 * Entry points: gcal_provider_ops ("google"), gcal_event_body().
 *
 * Access token (developers.google.com/identity/protocols/oauth2/web-server, "Refreshing an
 * access token"; RFC 6749 6): POST token_url, application/x-www-form-urlencoded, with
 * grant_type=refresh_token, client_id, client_secret and refresh_token; the answer is
 * {"access_token", "expires_in", "token_type": "Bearer", ...}. The token is kept in the
 * context (one per trainer connection and worker) until a minute before expires_in runs out,
 * on the monotonic clock (Google's clock runs on whatever the test clock says). A 401 from the
 * API (developers.google.com/workspace/calendar/api/guides/errors: "Invalid Credentials",
 * the access token expired or was revoked) drops it, refreshes once and repeats the call. The
 * token endpoint's error body is RFC 6749 5.2's {"error": "invalid_grant", "error_description":
 * "Token has been expired or revoked."}: the trainer's grant is gone, which is
 * PROVIDER_AUTH_REVOKED; invalid_client and other 4xx there mean the organisation's client
 * settings are wrong: permanent.
 *
 * Events (developers.google.com/calendar/api/v3/reference/events/insert, .../patch,
 * .../delete), all with sendUpdates=none, so Google sends no invitation of its own (the
 * customer has the gateway's confirmation with its .ics):
 *   create  POST   {api_base}/calendars/{calendarId}/events with the client-chosen "id"
 *                  (base32hex a-v 0-9, 5..1024 characters; ical_event_key(), which Microsoft
 *                  Graph uses as its transactionId too). 409 (duplicate: an
 *                  earlier try that lost its answer, or an event deleted earlier, which Google
 *                  keeps as cancelled under its id) means it exists: PATCH it, status confirmed.
 *   update  PATCH  .../events/{eventId}; 404 (never created): insert it.
 *   delete  DELETE .../events/{eventId}; 404 or 410 (already gone) count as done.
 * The events insert page says the iCalUID and the id "are not identical and only one of them
 * should be supplied at event creation time": the id is what makes a retry idempotent, so the
 * booking's UID goes in extendedProperties.private (ordinatus_uid) instead of iCalUID.
 *
 * Outcomes (the errors guide): 2xx sent; 429, and 403 with reason rateLimitExceeded or
 * userRateLimitExceeded, transient with the Retry-After; 5xx transient; a 401 that a fresh
 * token did not cure PROVIDER_AUTH; any other 4xx (400 bad request, 404 no such calendar,
 * 403 forbidden) permanent; no answer (connection refused or dropped, timeout) transient. The
 * detail names the call and carries Google's error body (bounded, cleaned by rest.c); never a
 * token.
 *
 * Busy times (developers.google.com/workspace/calendar/api/v3/reference/freebusy/query):
 *   busy   POST   {api_base}/freeBusy {"timeMin", "timeMax" (RFC 3339), "items": [{"id"}]}
 *                  -> {"calendars": {"{id}": {"busy": [{"start", "end"}], "errors": [...]}}}.
 * An "errors" list on the calendar (notFound, internalError, ...) means its busy list is not
 * to be trusted: the fetch fails (the caller keeps the last list). freeBusy names no events,
 * so the gateway's own events cannot be told apart here; the store leaves out a block that is
 * exactly one of the trainer's own bookings (store_busy_ranges).
 *
 * Threading: a context belongs to one worker thread.
 */
#include "gcal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bearer.h"
#include "common/rest.h"
#include "common/timefmt.h"
#include "common/tz.h"
#include "providers/ical/ical.h"

#define GCAL_CONNECT_TIMEOUT 10
#define GCAL_TIMEOUT         30
#define URL_LEN              2600

struct gcal_ctx {
	struct rest *rest;      /* one handle: connections to Google are reused */
	struct bearer auth;     /* the access token from the trainer's refresh token (bearer.h) */
	char *api_base;         /* from strdup(), without a trailing '/' */
	char calendar[800];     /* the calendar id, percent-encoded for the path */
	char calendar_raw[300]; /* the calendar id as freeBusy's items and answer name it */
};

/* the token endpoint's error code that means the trainer's grant is gone (RFC 6749 5.2) */
static const char *const revoked_codes[] = {"invalid_grant", NULL};

/* local_time - t as an RFC 3339 local time in tzid ("2026-12-02T10:00:00+01:00") */
static gw_rc local_time(const char *tzid, time_t t, char *buf, size_t n)
{
	struct tm tm;
	long off;
	char sign = '+';

	if(tz_utc_to_local(tzid, t, &tm))
		return GW_EINVAL;
	off = (long)(timegm(&tm) - t);
	if(off < 0) {
		sign = '-';
		off = -off;
	}
	if(off >= 86400 || tm.tm_year < 0 || tm.tm_year > 8000)
		return GW_EINVAL; /* no zone is a day off UTC */
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
	         (int)(off / 3600), (int)((off % 3600) / 60));
	return GW_OK;
}

/* gcal_event_body - the Events resource of a booking */
gw_rc gcal_event_body(const json_t *payload, const char *event_id, json_t **out, struct gw_err *err)
{
	const json_t *cu = json_object_get(payload, "customer");
	const char *tzid = provider_str(payload, "timezone"), *uid = provider_str(payload, "uid");
	const char *summary = provider_str(payload, "summary"),
	           *desc = provider_str(payload, "description");
	const char *loc = provider_str(payload, "location");
	char s_local[40], e_local[40], num[32], seq[32];
	time_t s = 0, e = 0;
	json_t *ev, *priv;

	*out = NULL;
	if(!tzid || !tz_valid(tzid))
		tzid = "UTC";
	if(!provider_str(payload, "start") || timefmt_parse(provider_str(payload, "start"), &s))
		return gw_err_set(err, GW_EINVAL, "start", "the payload has no usable start");
	if(!provider_str(payload, "end") || timefmt_parse(provider_str(payload, "end"), &e) ||
	   e <= s)
		return gw_err_set(err, GW_EINVAL, "end", "the payload has no usable end");
	if(!summary || !uid)
		return gw_err_set(err, GW_EINVAL, summary ? "uid" : "summary",
		                  "the payload has no %s", summary ? "uid" : "summary");
	if(local_time(tzid, s, s_local, sizeof(s_local)) ||
	   local_time(tzid, e, e_local, sizeof(e_local)))
		return gw_err_set(err, GW_EINVAL, "timezone", "cannot convert to %s", tzid);
	snprintf(num, sizeof(num), "%lld",
	         (long long)json_integer_value(json_object_get(payload, "booking_id")));
	snprintf(seq, sizeof(seq), "%lld",
	         (long long)json_integer_value(json_object_get(payload, "sequence")));
	/* extendedProperties values are strings */
	priv = json_pack("{s:s, s:s, s:s}", "ordinatus_uid", uid, "ordinatus_booking", num,
	                 "ordinatus_sequence", seq);
	ev = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:{s:o*}}", "summary", summary,
	               "start", "dateTime", s_local, "timeZone", tzid, "end", "dateTime", e_local,
	               "timeZone", tzid, "status", "confirmed", "extendedProperties", "private",
	               priv);
	if(!ev)
		return GW_ENOMEM;
	if(desc)
		json_object_set_new(ev, "description", json_string(desc));
	if(loc && loc[0])
		json_object_set_new(ev, "location", json_string(loc));
	if(provider_str(cu, "email")) {
		json_t *a = json_pack("{s:s}", "email", provider_str(cu, "email"));
		if(a && provider_str(cu, "name"))
			json_object_set_new(a, "displayName",
			                    json_string(provider_str(cu, "name")));
		json_object_set_new(ev, "attendees", json_pack("[o*]", a));
	}
	if(event_id)
		json_object_set_new(ev, "id", json_string(event_id));
	*out = ev;
	return GW_OK;
}

/* gcal_close - free a context */
static void gcal_close(void *ctx)
{
	struct gcal_ctx *g = ctx;

	if(!g)
		return;
	bearer_clear(&g->auth);
	rest_destroy(g->rest);
	free(g->api_base);
	free(g);
}

/* gcal_open - a context for one trainer's connection */
static gw_rc gcal_open(const json_t *config, const char *data_dir, void **ctx)
{
	struct rest_opts ro = {0};
	struct netguard guard;
	struct gcal_ctx *g = NULL;
	const char *cid, *csec, *rt, *turl, *api, *cal;
	size_t n;
	gw_rc rc;

	(void)data_dir;
	*ctx = NULL;
	cid = provider_cfg_str(config, "client_id");
	csec = provider_cfg_str(config, "client_secret");
	rt = provider_cfg_str(config, "refresh_token");
	turl = provider_cfg_str(config, "token_url");
	api = provider_cfg_str(config, "api_base");
	cal = provider_cfg_str(config, "calendar_id");
	if(!turl)
		turl = "https://oauth2.googleapis.com/token";
	if(!api)
		api = "https://www.googleapis.com/calendar/v3";
	if(!cal)
		cal = "primary";
	if(!cid || !csec || !rt)
		return GW_ECONFIG;
	g = calloc(1, sizeof(*g));
	if(!g)
		return GW_ENOMEM;
	ro.connect_timeout_ms =
	        provider_cfg_secs(config, "connect_timeout", GCAL_CONNECT_TIMEOUT) * 1000;
	ro.timeout_ms = provider_cfg_secs(config, "timeout", GCAL_TIMEOUT) * 1000;
	/* the operator's --allow-outbound ranges, which the dispatcher adds to the config */
	if(netguard_from_json(json_object_get(config, "allow_outbound"), &guard)) {
		rc = GW_ECONFIG;
		goto out;
	}
	ro.guard = &guard;
	if((rc = rest_create(&ro, &g->rest)))
		goto out;
	if((rc = bearer_init(&g->auth, g->rest, "Google", NULL, revoked_codes, false, turl, cid,
	                     csec, rt)))
		goto out;
	g->api_base = strdup(api);
	if(!g->api_base) {
		rc = GW_ENOMEM;
		goto out;
	}
	n = strlen(g->api_base);
	while(n > 0 && g->api_base[n - 1] == '/')
		g->api_base[--n] = '\0';
	if(strlen(cal) >= sizeof(g->calendar_raw) ||
	   (rc = rest_escape(cal, g->calendar, sizeof(g->calendar)))) {
		rc = GW_ECONFIG;
		goto out;
	}
	snprintf(g->calendar_raw, sizeof(g->calendar_raw), "%s", cal);
	*ctx = g;
	g = NULL;
out:
	gcal_close(g);
	return rc;
}

/* api - one Calendar API call with a valid access token, refreshed once on a 401. true with
 * the answer in rr; false when res was filled (no token, no answer). */
static bool api(struct gcal_ctx *g, const char *method, const char *url, const json_t *body,
                const char *what, struct rest_res *rr, struct provider_result *res)
{
	struct rest_req q = {.method = method, .url = url, .json = body};

	return bearer_call(&g->auth, &q, what, rr, res);
}

/* rate_limited - 403 with Google's rate limit reasons (the errors guide) */
static bool rate_limited(const struct rest_res *rr)
{
	const json_t *errs = json_object_get(json_object_get(rr->json, "error"), "errors");
	const json_t *e;
	size_t i;

	json_array_foreach(errs, i, e)
	{
		const char *reason = json_string_value(json_object_get(e, "reason"));
		if(reason && (strcmp(reason, "rateLimitExceeded") == 0 ||
		              strcmp(reason, "userRateLimitExceeded") == 0))
			return true;
	}
	return false;
}

/* classify - the outcome of an answer that is not one the action handles itself */
static void classify(const struct rest_res *rr, const char *what, struct provider_result *res)
{
	if(rr->status >= 200 && rr->status <= 299)
		provider_set(res, PROVIDER_SENT, -1, what, "done");
	else if(rr->status == 429 || (rr->status == 403 && rate_limited(rr)))
		provider_set(res, PROVIDER_TRANSIENT, rr->retry_after, what, rr->detail);
	else if(rr->status >= 500)
		provider_set(res, PROVIDER_TRANSIENT, rr->retry_after, what, rr->detail);
	else if(rr->status == 401)
		provider_set(res, PROVIDER_AUTH, -1, what, rr->detail);
	else
		provider_set(res, PROVIDER_PERMANENT, -1, what, rr->detail);
}

/* event_url - {api}/calendars/{cal}/events[/{id}]?sendUpdates=none */
static void event_url(const struct gcal_ctx *g, const char *id, char *buf, size_t n)
{
	snprintf(buf, n, "%s/calendars/%s/events%s%s?sendUpdates=none", g->api_base, g->calendar,
	         id ? "/" : "", id ? id : "");
}

/* do_insert - insert; 409: it exists, patch it. *status: the insert's HTTP status (0: none) */
static void do_insert(struct gcal_ctx *g, const json_t *body, const char *id, const json_t *patch,
                      struct provider_result *res, long *status);

/* do_patch - patch the event (status confirmed) */
static void do_patch(struct gcal_ctx *g, const json_t *patch, const char *id,
                     struct provider_result *res, long *status)
{
	char url[URL_LEN];
	struct rest_res rr;

	*status = 0;
	event_url(g, id, url, sizeof(url));
	if(!api(g, "PATCH", url, patch, "Google Calendar events.patch", &rr, res))
		return;
	*status = rr.status;
	classify(&rr, "Google Calendar events.patch", res);
	rest_res_free(&rr);
}

static void do_insert(struct gcal_ctx *g, const json_t *body, const char *id, const json_t *patch,
                      struct provider_result *res, long *status)
{
	char url[URL_LEN];
	struct rest_res rr;
	long ps;

	*status = 0;
	event_url(g, NULL, url, sizeof(url));
	if(!api(g, "POST", url, body, "Google Calendar events.insert", &rr, res))
		return;
	*status = rr.status;
	if(rr.status == 409) {
		/* the id exists: an earlier try whose answer was lost, or an event deleted before
		 * (Google keeps it, cancelled, under its id): bring it up to date */
		rest_res_free(&rr);
		do_patch(g, patch, id, res, &ps);
		return;
	}
	classify(&rr, "Google Calendar events.insert", res);
	rest_res_free(&rr);
}

/* do_delete - delete; 404 and 410 are already gone */
static void do_delete(struct gcal_ctx *g, const char *id, struct provider_result *res)
{
	char url[URL_LEN];
	struct rest_res rr;

	event_url(g, id, url, sizeof(url));
	if(!api(g, "DELETE", url, NULL, "Google Calendar events.delete", &rr, res))
		return;
	if(rr.status == 404 || rr.status == 410)
		provider_set(res, PROVIDER_SENT, -1, "Google Calendar events.delete",
		             "the event was already gone");
	else
		classify(&rr, "Google Calendar events.delete", res);
	rest_res_free(&rr);
}

/* gcal_send - write one booking's event */
static void gcal_send(void *ctx, const char *kind, const json_t *payload,
                      struct provider_result *res)
{
	struct gcal_ctx *g = ctx;
	struct gw_err err = {0};
	const char *action = provider_str(payload, "action");
	json_t *body = NULL, *patch = NULL;
	char id[ICAL_EVENT_KEY_LEN];
	long status = 0;
	gw_rc rc;

	(void)kind;
	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;
	if(!action ||
	   (strcmp(action, "create") && strcmp(action, "update") && strcmp(action, "delete"))) {
		provider_set(res, PROVIDER_PERMANENT, -1, "unusable calendar payload", "no action");
		return;
	}
	if(!json_is_integer(json_object_get(payload, "org_id")) ||
	   !json_is_integer(json_object_get(payload, "booking_id")) ||
	   !provider_str(payload, "uid")) {
		provider_set(res, PROVIDER_PERMANENT, -1, "unusable calendar payload",
		             "no org_id, booking_id or uid");
		return;
	}
	ical_event_key(json_integer_value(json_object_get(payload, "org_id")),
	               json_integer_value(json_object_get(payload, "booking_id")),
	               provider_str(payload, "uid"), id);
	if(strcmp(action, "delete") == 0) {
		do_delete(g, id, res);
		goto out;
	}
	if((rc = gcal_event_body(payload, id, &body, &err)) ||
	   (rc = gcal_event_body(payload, NULL, &patch, &err))) {
		provider_set(res, rc == GW_ENOMEM ? PROVIDER_TRANSIENT : PROVIDER_PERMANENT, -1,
		             "unusable calendar payload",
		             err.message[0] ? err.message : "out of memory");
		goto out;
	}
	if(strcmp(action, "create") == 0) {
		do_insert(g, body, id, patch, res, &status);
	} else {
		do_patch(g, patch, id, res, &status);
		if(status == 404) /* never created (the create row was lost or dead): create it */
			do_insert(g, body, id, patch, res, &status);
	}
out:
	if(res->outcome == PROVIDER_SENT)
		res->out = json_pack("{s:s}", "event_id", id);
	json_decref(body);
	json_decref(patch);
}

/* gcal_busy_parse - the busy blocks of calendar in a freeBusy answer */
gw_rc gcal_busy_parse(const json_t *answer, const char *calendar, time_t from, time_t to,
                      json_t **blocks, char *why, size_t n)
{
	const json_t *cal = json_object_get(json_object_get(answer, "calendars"), calendar);
	const json_t *busy = json_object_get(cal, "busy"), *errs = json_object_get(cal, "errors");
	const json_t *b;
	json_t *list = NULL;
	size_t i;

	*blocks = NULL;
	why[0] = '\0';
	if(!json_is_object(cal)) {
		snprintf(why, n, "the answer has no calendar %.200s", calendar);
		return GW_EINVAL;
	}
	if(json_array_size(errs) > 0) {
		const char *reason =
		        json_string_value(json_object_get(json_array_get(errs, 0), "reason"));
		snprintf(why, n, "Google reports an error for calendar %.200s: %.100s", calendar,
		         reason ? reason : "unknown");
		return GW_EINVAL;
	}
	if(busy && !json_is_array(busy)) {
		snprintf(why, n, "the calendar's busy member is not a list");
		return GW_EINVAL;
	}
	if(!(list = json_array()))
		return GW_ENOMEM;
	json_array_foreach(busy, i, b)
	{
		time_t s = 0, e = 0;
		if(!json_is_string(json_object_get(b, "start")) ||
		   !json_is_string(json_object_get(b, "end")) ||
		   timefmt_parse(json_string_value(json_object_get(b, "start")), &s) ||
		   timefmt_parse(json_string_value(json_object_get(b, "end")), &e)) {
			snprintf(why, n, "busy block %zu has no usable start and end", i);
			json_decref(list);
			return GW_EINVAL;
		}
		if(s < from)
			s = from;
		if(e > to)
			e = to;
		if(e > s &&
		   json_array_append_new(list, json_pack("[I, I]", (json_int_t)s, (json_int_t)e))) {
			json_decref(list);
			return GW_ENOMEM;
		}
	}
	*blocks = list;
	return GW_OK;
}

/* gcal_busy - the calendar's busy times by freebusy.query */
static void gcal_busy(void *ctx, time_t from, time_t to, json_t **blocks,
                      struct provider_result *res)
{
	struct gcal_ctx *g = ctx;
	char url[URL_LEN], a[TIMEFMT_LEN], b[TIMEFMT_LEN], why[300];
	struct rest_res rr;
	json_t *body;
	gw_rc rc;

	*blocks = NULL;
	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;
	timefmt_rfc3339(from, a);
	timefmt_rfc3339(to, b);
	body = json_pack("{s:s, s:s, s:[{s:s}]}", "timeMin", a, "timeMax", b, "items", "id",
	                 g->calendar_raw);
	if(!body) {
		provider_set(res, PROVIDER_TRANSIENT, -1, "Google Calendar freebusy.query",
		             "out of memory");
		return;
	}
	snprintf(url, sizeof(url), "%s/freeBusy", g->api_base);
	if(!api(g, "POST", url, body, "Google Calendar freebusy.query", &rr, res)) {
		json_decref(body);
		return;
	}
	json_decref(body);
	if(rr.status < 200 || rr.status > 299) {
		classify(&rr, "Google Calendar freebusy.query", res);
	} else if((rc = gcal_busy_parse(rr.json, g->calendar_raw, from, to, blocks, why,
	                                sizeof(why)))) {
		provider_set(res, PROVIDER_TRANSIENT, -1, "Google Calendar freebusy.query",
		             rc == GW_ENOMEM ? "out of memory" : why);
	} else {
		provider_set(res, PROVIDER_SENT, -1, "Google Calendar freebusy.query", "done");
	}
	rest_res_free(&rr);
}

const struct provider_ops gcal_provider_ops = {
        .name = "google",
        .open = gcal_open,
        .send = gcal_send,
        .busy = gcal_busy,
        .close = gcal_close,
};
