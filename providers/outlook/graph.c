/*
 * graph.c - the Microsoft Graph (Outlook) calendar provider (graph.h): the Microsoft identity
 * platform's refresh-token grant, then Graph v1.0 events create / update / delete, over
 * common/rest.h. Its shape is gcal.c's.
 *
 * Entry points: graph_provider_ops ("outlook"), graph_event_body().
 *
 * Access token (learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow,
 * "Refresh the access token"; RFC 6749 6): POST token_url (https://login.microsoftonline.com/
 * {tenant}/oauth2/v2.0/token), application/x-www-form-urlencoded, with client_id,
 * grant_type=refresh_token, scope "offline_access Calendars.ReadWrite" (space separated: work
 * and school accounts refuse commas), refresh_token and client_secret. The answer is
 * {"token_type": "Bearer", "scope", "expires_in", "access_token", "refresh_token"}: the access
 * token is kept until a minute before expires_in runs out (monotonic clock) and a 401 from Graph
 * drops it, refreshes once and repeats the call. Microsoft hands out a new refresh token with
 * each grant; the context uses the newest from then on (it is not written back to the store:
 * the stored one stays valid, 90 days by default). Errors there are RFC 6749 5.2's
 * {"error", "error_description": "AADSTS70008: ...", "error_codes": [70008], "timestamp",
 * "trace_id", "correlation_id"}: invalid_grant (expired or revoked grant, AADSTS70008,
 * AADSTS700082, AADSTS50173...) and interaction_required (the user must sign in again: MFA,
 * consent) are PROVIDER_AUTH_REVOKED; invalid_client and other 4xx mean the organisation's client
 * settings are wrong: permanent; 429 and 5xx transient.
 *
 * Events (learn.microsoft.com/graph/api/calendar-post-events, .../event-update,
 * .../event-delete, .../resources/event):
 *   create  POST  {api}/me/calendars/{id}/events (or {api}/me/events for the default
 *                 calendar) with "transactionId" = ical_event_key() of the booking, the key
 *                 Google's event id is: "a custom identifier specified by a client app for the
 *                 server to avoid redundant POST operations in case of client retries", so a
 *                 create whose answer was lost and that is sent again gets the event made the
 *                 first time (201 again, the same id) instead of a second one. 201 carries the
 *                 event's "id": returned in res->out, stored on the booking.
 *   update  PATCH {api}/me/events/{stored id}; 404 (ErrorItemNotFound: deleted in Outlook, or
 *                 a create that never arrived) or 400 ErrorInvalidIdMalformed (an id another
 *                 provider stored before the trainer switched) is created again. Without a
 *                 stored id (the create is still pending or was lost) the event is created
 *                 (the transactionId finds the first one if it exists) and then patched, so the
 *                 moved times win over what a first create carried.
 *   delete  DELETE {api}/me/events/{stored id}: 204; 404 and 410 (already gone) and a
 *                 malformed id count as done; without a stored id there is nothing to delete.
 * Graph has no sendUpdates: an event with attendees always sends them Outlook's invitation
 * (and updates and cancellations), and there is no parameter to stop it. The customer has the
 * gateway's own confirmation with its .ics, so the customer is not an attendee here: the event
 * body (the row's description) names them and their address instead.
 *
 * Times: dateTimeTimeZone {dateTime, timeZone}. Graph takes Windows zone names and a documented
 * list of IANA names, and "methods such as create or update might not support all" of them
 * (learn.microsoft.com/graph/api/resources/datetimetimezone). UTC is always accepted, and
 * Outlook shows an event in each viewer's own zone, so both times go as UTC wall clock
 * ("2026-12-02T09:00:00", "UTC"): no mapping table of zone names to keep up to date.
 *
 * Outcomes (learn.microsoft.com/graph/errors, .../graph/throttling): 2xx sent; 429 (throttled),
 * 503 and 504 (and other 5xx) transient with the Retry-After Graph sends (the dispatcher's
 * backoff when none); a 401 that a fresh token did not cure PROVIDER_AUTH; any other 4xx
 * permanent with Graph's {"error": {"code", "message"}} in the detail (bounded by rest.c); no
 * answer (refused, dropped, timeout) transient. Never a token in a detail.
 *
 * Busy times (learn.microsoft.com/graph/api/user-list-calendarview, .../calendar-list-
 * calendarview): GET {api}/me/calendarView (or {api}/me/calendars/{id}/calendarView) with
 * startDateTime and endDateTime (ISO 8601, UTC), $select of the members read and
 * Prefer: outlook.timezone="UTC", so every start and end comes back as UTC wall clock. The view
 * has every single event, occurrence and exception in the range (recurring series expanded by
 * Graph). Pages follow @odata.nextLink (an absolute URL, used as given) up to BUSY_PAGES. An
 * event is busy unless showAs is "free" or it isCancelled; the gateway's own events (their
 * transactionId is an ical_event_key(): 52 base32hex characters) are left out.
 *
 * Threading: a context belongs to one worker thread.
 */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bearer.h"
#include "common/rest.h"
#include "common/timefmt.h"
#include "providers/ical/ical.h"

#define GRAPH_CONNECT_TIMEOUT 10
#define GRAPH_TIMEOUT         30
#define GRAPH_SCOPE           "offline_access Calendars.ReadWrite"
#define URL_LEN               3000
#define BUSY_PAGES            50 /* pages of a calendar view read at most */

struct graph_ctx {
	struct rest *rest;   /* one handle: connections to Graph are reused */
	struct bearer auth;  /* the access token from the trainer's refresh token (bearer.h);
	                      * Microsoft rotates refresh tokens: the newest is used from then on */
	char *api_base;      /* from strdup(), without a trailing '/' */
	char calendar[1200]; /* the calendar id, percent-encoded for the path, or "" */
};

/* the token endpoint's error codes after which only the trainer can help: the grant is
 * invalid, expired or revoked (RFC 6749 5.2), or the user must sign in again (AADSTS50076,
 * AADSTS65001) */
static const char *const revoked_codes[] = {"invalid_grant", "interaction_required", NULL};

/* utc_wall - t as the dateTime of a dateTimeTimeZone in UTC ("2026-12-02T09:00:00") */
static gw_rc utc_wall(time_t t, char *buf, size_t n)
{
	struct tm tm;

	if(!gmtime_r(&t, &tm) || tm.tm_year < 0 || tm.tm_year > 8000)
		return GW_EINVAL;
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return GW_OK;
}

/* graph_event_body - the event resource of a booking */
gw_rc graph_event_body(const json_t *payload, const char *transaction_id, json_t **out,
                       struct gw_err *err)
{
	const char *summary = provider_str(payload, "summary"),
	           *desc = provider_str(payload, "description");
	const char *loc = provider_str(payload, "location");
	char s_utc[32], e_utc[32];
	time_t s = 0, e = 0;
	json_t *ev;

	*out = NULL;
	if(!provider_str(payload, "start") || timefmt_parse(provider_str(payload, "start"), &s))
		return gw_err_set(err, GW_EINVAL, "start", "the payload has no usable start");
	if(!provider_str(payload, "end") || timefmt_parse(provider_str(payload, "end"), &e) ||
	   e <= s)
		return gw_err_set(err, GW_EINVAL, "end", "the payload has no usable end");
	if(!summary)
		return gw_err_set(err, GW_EINVAL, "summary", "the payload has no summary");
	if(utc_wall(s, s_utc, sizeof(s_utc)) || utc_wall(e, e_utc, sizeof(e_utc)))
		return gw_err_set(err, GW_EINVAL, "start", "the times are out of range");
	ev = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:s}", "subject", summary,
	               "body", "contentType", "text", "content", desc ? desc : "", "start",
	               "dateTime", s_utc, "timeZone", "UTC", "end", "dateTime", e_utc, "timeZone",
	               "UTC", "showAs", "busy");
	if(!ev)
		return GW_ENOMEM;
	if(loc && loc[0])
		json_object_set_new(ev, "location", json_pack("{s:s}", "displayName", loc));
	if(transaction_id)
		json_object_set_new(ev, "transactionId", json_string(transaction_id));
	*out = ev;
	return GW_OK;
}

/* graph_close - free a context */
static void graph_close(void *ctx)
{
	struct graph_ctx *g = ctx;

	if(!g)
		return;
	bearer_clear(&g->auth);
	rest_destroy(g->rest);
	free(g->api_base);
	free(g);
}

/* graph_open - a context for one trainer's connection */
static gw_rc graph_open(const json_t *config, const char *data_dir, void **ctx)
{
	struct rest_opts ro = {0};
	struct netguard guard;
	struct graph_ctx *g = NULL;
	const char *cid, *csec, *rt, *turl, *api, *cal, *tenant;
	char deftoken[300];
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
	tenant = provider_cfg_str(config, "tenant");
	if(!turl) {
		snprintf(deftoken, sizeof(deftoken),
		         "https://login.microsoftonline.com/%.200s/oauth2/v2.0/token",
		         tenant ? tenant : "common");
		turl = deftoken;
	}
	if(!api)
		api = "https://graph.microsoft.com/v1.0";
	if(!cid || !csec || !rt || strlen(rt) >= BEARER_TOKEN_MAX)
		return GW_ECONFIG;
	g = calloc(1, sizeof(*g));
	if(!g)
		return GW_ENOMEM;
	ro.connect_timeout_ms =
	        provider_cfg_secs(config, "connect_timeout", GRAPH_CONNECT_TIMEOUT) * 1000;
	ro.timeout_ms = provider_cfg_secs(config, "timeout", GRAPH_TIMEOUT) * 1000;
	/* the operator's --allow-outbound ranges, which the dispatcher adds to the config */
	if(netguard_from_json(json_object_get(config, "allow_outbound"), &guard)) {
		rc = GW_ECONFIG;
		goto out;
	}
	ro.guard = &guard;
	if((rc = rest_create(&ro, &g->rest)))
		goto out;
	if((rc = bearer_init(&g->auth, g->rest, "Microsoft", GRAPH_SCOPE, revoked_codes, true, turl,
	                     cid, csec, rt)))
		goto out;
	g->api_base = strdup(api);
	if(!g->api_base) {
		rc = GW_ENOMEM;
		goto out;
	}
	n = strlen(g->api_base);
	while(n > 0 && g->api_base[n - 1] == '/')
		g->api_base[--n] = '\0';
	if(cal && (rc = rest_escape(cal, g->calendar, sizeof(g->calendar)))) {
		rc = GW_ECONFIG;
		goto out;
	}
	*ctx = g;
	g = NULL;
out:
	graph_close(g);
	return rc;
}

/* usable_token - an id or token that can go into a URL path or a header: visible ASCII,
 * shorter than max */
static bool usable_token(const char *t, size_t max)
{
	size_t i;

	if(!t || !t[0] || strlen(t) >= max)
		return false;
	for(i = 0; t[i]; i++)
		if((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
			return false;
	return true;
}

/* api - one Graph call with a valid access token, refreshed once on a 401. true with the
 * answer in rr; false when res was filled (no token, no answer). */
static bool api(struct graph_ctx *g, const char *method, const char *url, const json_t *body,
                const char *what, struct rest_res *rr, struct provider_result *res)
{
	struct rest_req q = {.method = method, .url = url, .json = body};

	return bearer_call(&g->auth, &q, what, rr, res);
}

/* error_code - Graph's {"error": {"code"}} of an answer, or "" */
static const char *error_code(const struct rest_res *rr)
{
	const char *c =
	        json_string_value(json_object_get(json_object_get(rr->json, "error"), "code"));

	return c ? c : "";
}

/* not_there - the event named by an id does not exist (or the id is not one of Graph's) */
static bool not_there(const struct rest_res *rr)
{
	return rr->status == 404 || rr->status == 410 ||
	       (rr->status == 400 && strcmp(error_code(rr), "ErrorInvalidIdMalformed") == 0);
}

/* classify - the outcome of an answer that is not one the action handles itself */
static void classify(const struct rest_res *rr, const char *what, struct provider_result *res)
{
	if(rr->status >= 200 && rr->status <= 299)
		provider_set(res, PROVIDER_SENT, -1, what, "done");
	else if(rr->status == 429 || rr->status >= 500)
		provider_set(res, PROVIDER_TRANSIENT, rr->retry_after, what, rr->detail);
	else if(rr->status == 401)
		provider_set(res, PROVIDER_AUTH, -1, what, rr->detail);
	else
		provider_set(res, PROVIDER_PERMANENT, -1, what, rr->detail);
}

/* event_url - {api}/me/events/{id}, or the collection to create in */
static gw_rc event_url(const struct graph_ctx *g, const char *id, char *buf, size_t n)
{
	char esc[1200];
	int k;

	if(!id) {
		if(g->calendar[0])
			k = snprintf(buf, n, "%s/me/calendars/%s/events", g->api_base, g->calendar);
		else
			k = snprintf(buf, n, "%s/me/events", g->api_base);
	} else {
		if(rest_escape(id, esc, sizeof(esc)))
			return GW_EINVAL;
		k = snprintf(buf, n, "%s/me/events/%s", g->api_base, esc);
	}
	return k < 0 || (size_t)k >= n ? GW_EINVAL : GW_OK;
}

/* keep_id - copy the event id of a 2xx answer into id (GRAPH_EVENT_ID_MAX + 1 bytes) */
static bool keep_id(const struct rest_res *rr, char *id)
{
	const char *v = json_string_value(json_object_get(rr->json, "id"));

	if(!usable_token(v, GRAPH_EVENT_ID_MAX + 1))
		return false;
	snprintf(id, GRAPH_EVENT_ID_MAX + 1, "%s", v);
	return true;
}

/* do_create - POST with the transactionId; id gets the event's id when it was made (or found) */
static void do_create(struct graph_ctx *g, const json_t *body, char *id,
                      struct provider_result *res)
{
	char url[URL_LEN];
	struct rest_res rr;

	id[0] = '\0';
	if(event_url(g, NULL, url, sizeof(url))) {
		provider_set(res, PROVIDER_PERMANENT, -1, "Microsoft Graph create event",
		             "URL too long");
		return;
	}
	if(!api(g, "POST", url, body, "Microsoft Graph create event", &rr, res))
		return;
	classify(&rr, "Microsoft Graph create event", res);
	if(res->outcome == PROVIDER_SENT && !keep_id(&rr, id))
		provider_set(res, PROVIDER_TRANSIENT, -1, "Microsoft Graph create event",
		             "the answer has no usable event id");
	rest_res_free(&rr);
}

/* do_patch - PATCH the event id; *gone when Graph has no such event */
static void do_patch(struct graph_ctx *g, const json_t *patch, const char *id, bool *gone,
                     struct provider_result *res)
{
	char url[URL_LEN];
	struct rest_res rr;

	*gone = false;
	if(event_url(g, id, url, sizeof(url))) {
		*gone = true; /* not an id Graph could have given */
		return;
	}
	if(!api(g, "PATCH", url, patch, "Microsoft Graph update event", &rr, res))
		return;
	if(not_there(&rr))
		*gone = true;
	else
		classify(&rr, "Microsoft Graph update event", res);
	rest_res_free(&rr);
}

/* do_delete - DELETE the event id; already gone is done */
static void do_delete(struct graph_ctx *g, const char *id, struct provider_result *res)
{
	char url[URL_LEN];
	struct rest_res rr;

	if(event_url(g, id, url, sizeof(url))) {
		provider_set(res, PROVIDER_SENT, -1, "Microsoft Graph delete event",
		             "the stored id is not Graph's: nothing to delete");
		return;
	}
	if(!api(g, "DELETE", url, NULL, "Microsoft Graph delete event", &rr, res))
		return;
	if(not_there(&rr))
		provider_set(res, PROVIDER_SENT, -1, "Microsoft Graph delete event",
		             "the event was already gone");
	else
		classify(&rr, "Microsoft Graph delete event", res);
	rest_res_free(&rr);
}

/* graph_send - write one booking's event */
static void graph_send(void *ctx, const char *kind, const json_t *payload,
                       struct provider_result *res)
{
	struct graph_ctx *g = ctx;
	struct gw_err err = {0};
	const char *action = provider_str(payload, "action");
	const char *stored = provider_str(json_object_get(payload, "stored"), "event_id");
	json_t *body = NULL, *patch = NULL;
	char key[ICAL_EVENT_KEY_LEN], id[GRAPH_EVENT_ID_MAX + 1] = "";
	bool gone = false;
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
	if(stored && !stored[0])
		stored = NULL;
	if(strcmp(action, "delete") == 0) {
		if(stored)
			do_delete(g, stored, res);
		else
			provider_set(res, PROVIDER_SENT, -1, "Microsoft Graph delete event",
			             "no event was stored for this booking: nothing to delete");
		return;
	}
	ical_event_key(json_integer_value(json_object_get(payload, "org_id")),
	               json_integer_value(json_object_get(payload, "booking_id")),
	               provider_str(payload, "uid"), key);
	if((rc = graph_event_body(payload, key, &body, &err)) ||
	   (rc = graph_event_body(payload, NULL, &patch, &err))) {
		provider_set(res, rc == GW_ENOMEM ? PROVIDER_TRANSIENT : PROVIDER_PERMANENT, -1,
		             "unusable calendar payload",
		             err.message[0] ? err.message : "out of memory");
		goto out;
	}
	if(strcmp(action, "create") == 0) {
		/* a repeat (the first answer lost) gets the first event back */
		do_create(g, body, id, res);
		goto out;
	}
	if(stored) {
		snprintf(id, sizeof(id), "%s", stored);
		do_patch(g, patch, id, &gone, res);
		if(!gone)
			goto out;
	}
	/* no event to patch (never stored, or gone from Outlook): create it; the transactionId
	 * may find the first create's event, which then gets the current times */
	do_create(g, body, id, res);
	if(res->outcome == PROVIDER_SENT && !gone)
		do_patch(g, patch, id, &gone, res);
out:
	if(res->outcome == PROVIDER_SENT && id[0])
		res->out = json_pack("{s:s}", "event_id", id);
	json_decref(body);
	json_decref(patch);
}

/* own_event - a transactionId the gateway chose (ical_event_key: 52 base32hex characters) */
static bool own_event(const char *tid)
{
	size_t i;

	if(!tid || strlen(tid) != ICAL_EVENT_KEY_LEN - 1)
		return false;
	for(i = 0; tid[i]; i++)
		if(!((tid[i] >= '0' && tid[i] <= '9') || (tid[i] >= 'a' && tid[i] <= 'v')))
			return false;
	return true;
}

/* utc_parse - a dateTimeTimeZone in UTC ("2026-12-02T09:00:00.0000000", "UTC") as Unix time */
static gw_rc utc_parse(const json_t *dt, time_t *out)
{
	const char *v = provider_str(dt, "dateTime"), *zone = provider_str(dt, "timeZone");
	char buf[32];

	if(!v || strlen(v) < 19 || (zone && strcmp(zone, "UTC") != 0 && strcmp(zone, "Etc/GMT")))
		return GW_EINVAL;
	snprintf(buf, sizeof(buf), "%.19sZ", v);
	return timefmt_parse(buf, out);
}

/* graph_busy_parse - append one calendarView page's busy blocks */
gw_rc graph_busy_parse(const json_t *page, time_t from, time_t to, json_t *blocks, char *why,
                       size_t n)
{
	const json_t *value = json_object_get(page, "value"), *ev;
	size_t i;

	why[0] = '\0';
	if(!json_is_array(value)) {
		snprintf(why, n, "the calendar view has no value list");
		return GW_EINVAL;
	}
	json_array_foreach(value, i, ev)
	{
		const char *show = provider_str(ev, "showAs");
		time_t s = 0, e = 0;

		if(json_is_true(json_object_get(ev, "isCancelled")) ||
		   (show && !strcmp(show, "free")) || own_event(provider_str(ev, "transactionId")))
			continue;
		if(utc_parse(json_object_get(ev, "start"), &s) ||
		   utc_parse(json_object_get(ev, "end"), &e)) {
			snprintf(why, n,
			         "event %zu of the calendar view has no usable UTC start and end",
			         i);
			return GW_EINVAL;
		}
		if(s < from)
			s = from;
		if(e > to)
			e = to;
		if(e > s &&
		   json_array_append_new(blocks, json_pack("[I, I]", (json_int_t)s, (json_int_t)e)))
			return GW_ENOMEM;
	}
	return GW_OK;
}

/* graph_busy - the calendar's busy times from its calendar view, every page */
static void graph_busy(void *ctx, time_t from, time_t to, json_t **blocks,
                       struct provider_result *res)
{
	static const char *const prefer[] = {"Prefer: outlook.timezone=\"UTC\"", NULL};
	static const char *const what = "Microsoft Graph calendarView";
	struct graph_ctx *g = ctx;
	char url[URL_LEN], a[TIMEFMT_LEN], b[TIMEFMT_LEN], why[300];
	json_t *list = json_array();
	int page;
	gw_rc rc;

	*blocks = NULL;
	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;
	if(!list) {
		provider_set(res, PROVIDER_TRANSIENT, -1, what, "out of memory");
		return;
	}
	timefmt_rfc3339(from, a);
	timefmt_rfc3339(to, b);
	if(g->calendar[0])
		snprintf(url, sizeof(url),
		         "%s/me/calendars/%s/calendarView?startDateTime=%s"
		         "&endDateTime=%s&$select=start,end,showAs,isCancelled,transactionId&$top="
		         "100",
		         g->api_base, g->calendar, a, b);
	else
		snprintf(url, sizeof(url),
		         "%s/me/calendarView?startDateTime=%s&endDateTime=%s"
		         "&$select=start,end,showAs,isCancelled,transactionId&$top=100",
		         g->api_base, a, b);
	for(page = 0; page < BUSY_PAGES; page++) {
		struct rest_res rr;
		struct rest_req q = {.method = "GET", .url = url, .headers = prefer};
		const char *next;

		/* with the Prefer header: a fresh token once on a 401 */
		if(!bearer_call(&g->auth, &q, what, &rr, res))
			goto fail;
		if(rr.status < 200 || rr.status > 299) {
			classify(&rr, what, res);
			rest_res_free(&rr);
			goto fail;
		}
		if((rc = graph_busy_parse(rr.json, from, to, list, why, sizeof(why)))) {
			provider_set(res, PROVIDER_TRANSIENT, -1, what,
			             rc == GW_ENOMEM ? "out of memory" : why);
			rest_res_free(&rr);
			goto fail;
		}
		next = provider_str(rr.json, "@odata.nextLink");
		if(!next) {
			rest_res_free(&rr);
			provider_set(res, PROVIDER_SENT, -1, what, "done");
			*blocks = list;
			return;
		}
		if(strlen(next) >= sizeof(url) || strncmp(next, "http", 4) != 0) {
			provider_set(res, PROVIDER_TRANSIENT, -1, what,
			             "an unusable @odata.nextLink");
			rest_res_free(&rr);
			goto fail;
		}
		snprintf(url, sizeof(url), "%s", next);
		rest_res_free(&rr);
	}
	provider_set(res, PROVIDER_TRANSIENT, -1, what, "more pages than the gateway reads");
fail:
	json_decref(list);
}

const struct provider_ops graph_provider_ops = {
        .name = "outlook",
        .open = graph_open,
        .send = graph_send,
        .busy = graph_busy,
        .close = graph_close,
};
