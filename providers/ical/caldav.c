/*
 * caldav.c - the CalDAV calendar provider (caldav.h): a booking's VEVENT written with PUT into
 * the trainer's calendar collection, kept in step with ETags, removed with DELETE.
 *
 * Entry points: caldav_provider_ops ("caldav"), caldav_object().
 *
 * RFC 4791 5.3.2 (creating calendar object resources) and 4.1: the body is text/calendar, one
 * VCALENDAR that "MUST NOT specify the iCalendar METHOD property", with one VEVENT whose UID is
 * the booking's; the resource is {collection}/{uid}.ics. Writes are conditional (RFC 9110
 * 13.1.1-2), so a retry or a change made on the server is never silently overwritten or
 * doubled:
 *   create  PUT with If-None-Match: * (RFC 4791 5.3.2: "prevent an existing resource from being
 *           overwritten"). 412: the resource exists (an earlier try whose answer was lost): GET
 *           it for its ETag, then PUT with If-Match: that ETag.
 *   update  PUT with If-Match: the ETag the last write got (stored on the booking). 412: the
 *           resource was changed on the server since (a client edited it): GET the fresh ETag
 *           and PUT again with it; the booking is what the gateway owns, so its times win. 404
 *           (deleted on the server): created again with If-None-Match: *. Without a stored
 *           ETag (the server gave none, or the create is still pending) it goes as a create.
 *   delete  DELETE the resource; 404 and 410 (already gone) are done.
 * The ETag of a PUT's answer (RFC 4791 5.3.4: a server that changed the data may send none) is
 * returned in res->out for the booking. A second 412 in a row (it changes under us) is
 * transient: tried again later.
 *
 * The customer is not an ATTENDEE: a server with implicit scheduling (RFC 6638) would email them
 * an invitation of its own, and the customer has the gateway's confirmation with its .ics. The
 * description names them. The trainer is the ORGANIZER.
 *
 * Authentication: HTTP Basic (RFC 7617) on every request, over https in production (the URL is
 * checked when connecting; http only for tests on 127.0.0.1 or a private network).
 *
 * Outcomes: 2xx sent; 401 PROVIDER_AUTH_REVOKED (the username or password no longer works: the
 * connection needs reconnecting); 429 and 5xx transient with the Retry-After; 403 (a
 * precondition such as CALDAV:supported-calendar-data), 404 or 409 on PUT (no such collection:
 * RFC 4918 9.7.1) and other 4xx permanent; no answer transient. The detail carries the status
 * and the server's words (bounded by rest.c), never the password.
 *
 * Busy times (RFC 4791 7.8 calendar-query, 9.9 CALDAV:time-range): REPORT on the collection,
 * Depth: 1, asking for the VEVENTs that overlap [from, to) with their calendar-data; the 207
 * multistatus (RFC 4918 13) is scanned for each calendar-data element (any namespace prefix,
 * XML entities and CDATA undone) and each one parsed with libical. An event is busy unless
 * STATUS:CANCELLED or TRANSP:TRANSPARENT (RFC 5545 3.8.1.11, 3.8.2.7); a recurring one is
 * expanded in the range with icalcomponent_foreach_recurrence (RRULE, RDATE, EXDATE), less the
 * instances an overriding VEVENT (RECURRENCE-ID) of the same resource replaces. The gateway's
 * own events (their UID ends in "@ordinatus", lc_book) are left out.
 *
 * Threading: a context belongs to one worker thread.
 */
#include "caldav.h"

#include <libical/ical.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/rest.h"
#include "common/timefmt.h"
#include "ical.h"

#define CALDAV_CONNECT_TIMEOUT 10
#define CALDAV_TIMEOUT         30
#define URL_LEN                3000
#define CRED_MAX               1400 /* "user:password" before base64 */

struct caldav_ctx {
	struct rest *rest; /* one handle: connections to the server are reused */
	char *collection;  /* from strdup(): the collection URL without a trailing '/' */
	char auth[2000];   /* "Authorization: Basic ..."; wiped on close */
};

/* caldav_object - the VCALENDAR of a booking */
gw_rc caldav_object(const json_t *payload, time_t now, char **out, struct gw_err *err)
{
	const json_t *tr = json_object_get(payload, "trainer");
	struct ical_event ev = {0};
	const json_t *seq = json_object_get(payload, "sequence");
	const char *loc = provider_str(payload, "location");

	*out = NULL;
	ev.uid = provider_str(payload, "uid");
	if(!provider_str(payload, "start") ||
	   timefmt_parse(provider_str(payload, "start"), &ev.start))
		return gw_err_set(err, GW_EINVAL, "start", "the payload has no usable start");
	if(!provider_str(payload, "end") || timefmt_parse(provider_str(payload, "end"), &ev.end))
		return gw_err_set(err, GW_EINVAL, "end", "the payload has no usable end");
	if(!json_is_integer(seq) || json_integer_value(seq) < 0 ||
	   json_integer_value(seq) > 1000000)
		return gw_err_set(err, GW_EINVAL, "sequence", "the payload has no usable sequence");
	ev.sequence = (int)json_integer_value(seq);
	ev.dtstamp = now;
	ev.summary = provider_str(payload, "summary");
	ev.description = provider_str(payload, "description");
	ev.location = loc && loc[0] ? loc : NULL;
	ev.organizer_email = provider_str(tr, "email");
	ev.organizer_name = provider_str(tr, "name") && provider_str(tr, "name")[0]
	                            ? provider_str(tr, "name")
	                            : NULL;
	/* RFC 4791 4.1: calendar object resources carry no METHOD */
	return ical_build(&ev, 1, NULL, out, err);
}

/* caldav_close - free a context */
static void caldav_close(void *ctx)
{
	struct caldav_ctx *c = ctx;

	if(!c)
		return;
	rest_destroy(c->rest);
	free(c->collection);
	OPENSSL_cleanse(c->auth, sizeof(c->auth));
	free(c);
}

/* basic_auth - the Authorization header line for user and password into buf */
static gw_rc basic_auth(const char *user, const char *pass, char *buf, size_t n)
{
	unsigned char cred[CRED_MAX + 1];
	char b64[((CRED_MAX + 2) / 3) * 4 + 1];
	int len, k;

	len = snprintf((char *)cred, sizeof(cred), "%s:%s", user, pass);
	if(len < 0 || (size_t)len >= sizeof(cred)) {
		OPENSSL_cleanse(cred, sizeof(cred));
		return GW_ECONFIG;
	}
	EVP_EncodeBlock((unsigned char *)b64, cred, len);
	OPENSSL_cleanse(cred, sizeof(cred));
	k = snprintf(buf, n, "Authorization: Basic %s", b64);
	OPENSSL_cleanse(b64, sizeof(b64));
	return k < 0 || (size_t)k >= n ? GW_ECONFIG : GW_OK;
}

/* caldav_open - a context for one trainer's connection */
static gw_rc caldav_open(const json_t *config, const char *data_dir, void **ctx)
{
	struct rest_opts ro = {0};
	struct netguard guard;
	struct caldav_ctx *c = NULL;
	const char *url = provider_str(config, "calendar_id"),
	           *text = provider_str(config, "credentials");
	json_t *cred = NULL;
	size_t n;
	gw_rc rc;

	(void)data_dir;
	*ctx = NULL;
	if(!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) || !text)
		return GW_ECONFIG;
	cred = json_loads(text, 0, NULL);
	if(!provider_str(cred, "username") || !provider_str(cred, "password")) {
		rc = GW_ECONFIG;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if(!c) {
		rc = GW_ENOMEM;
		goto out;
	}
	ro.connect_timeout_ms =
	        provider_cfg_secs(config, "connect_timeout", CALDAV_CONNECT_TIMEOUT) * 1000;
	ro.timeout_ms = provider_cfg_secs(config, "timeout", CALDAV_TIMEOUT) * 1000;
	/* the operator's --allow-outbound ranges, which the dispatcher adds to the config */
	if(netguard_from_json(json_object_get(config, "allow_outbound"), &guard)) {
		rc = GW_ECONFIG;
		goto out;
	}
	ro.guard = &guard;
	if((rc = rest_create(&ro, &c->rest)))
		goto out;
	if((rc = basic_auth(provider_str(cred, "username"), provider_str(cred, "password"), c->auth,
	                    sizeof(c->auth))))
		goto out;
	if(!(c->collection = strdup(url))) {
		rc = GW_ENOMEM;
		goto out;
	}
	n = strlen(c->collection);
	while(n > 0 && c->collection[n - 1] == '/')
		c->collection[--n] = '\0';
	*ctx = c;
	c = NULL;
out:
	json_decref(cred);
	caldav_close(c);
	return rc;
}

/* classify - the outcome of an answer the action does not handle itself */
static void classify(const struct rest_res *rr, const char *what, struct provider_result *res)
{
	if(rr->status >= 200 && rr->status <= 299)
		provider_set(res, PROVIDER_SENT, -1, what, "done");
	else if(rr->status == 401)
		provider_set(res, PROVIDER_AUTH_REVOKED, -1,
		             "the CalDAV server refused the username or password (the trainer must "
		             "reconnect the calendar)",
		             rr->detail);
	else if(rr->status == 429 || rr->status >= 500)
		provider_set(res, PROVIDER_TRANSIENT, rr->retry_after, what, rr->detail);
	else
		provider_set(res, PROVIDER_PERMANENT, -1, what, rr->detail);
}

/* call - one request with Basic auth and an optional condition header; false with res filled
 * when no answer came */
static bool call(struct caldav_ctx *c, const char *method, const char *url, const char *body,
                 const char *cond, const char *what, struct rest_res *rr,
                 struct provider_result *res)
{
	const char *headers[3] = {c->auth, cond, NULL};
	struct rest_req q = {.method = method, .url = url, .headers = headers};

	if(body) {
		q.body = body;
		q.body_len = strlen(body);
		q.content_type = "text/calendar; charset=utf-8";
	}
	if(rest_call(c->rest, &q, rr)) {
		provider_set(res, PROVIDER_TRANSIENT, -1, what, rr->detail);
		rest_res_free(rr);
		return false;
	}
	return true;
}

/* fresh_etag - GET the resource's current ETag into etag; false with res filled */
static bool fresh_etag(struct caldav_ctx *c, const char *url, char *etag, size_t n,
                       struct provider_result *res)
{
	struct rest_res rr;
	bool ok = false;

	if(!call(c, "GET", url, NULL, NULL, "CalDAV GET", &rr, res))
		return false;
	if(rr.status == 200 && rr.etag[0]) {
		snprintf(etag, n, "%s", rr.etag);
		ok = true;
	} else if(rr.status == 200) {
		provider_set(res, PROVIDER_PERMANENT, -1, "CalDAV GET",
		             "the server gives no ETag, so a change cannot be made safely");
	} else if(rr.status == 404) {
		etag[0] = '\0'; /* gone again meanwhile: create it */
		ok = true;
	} else {
		classify(&rr, "CalDAV GET", res);
	}
	rest_res_free(&rr);
	return ok;
}

/* put - PUT body to url with If-Match: etag (etag non-empty) or If-None-Match: *; *status the
 * answer's HTTP status (0: none) and new_etag its ETag */
static void put(struct caldav_ctx *c, const char *url, const char *body, const char *etag,
                long *status, char *new_etag, size_t n, struct provider_result *res)
{
	char cond[REST_ETAG_LEN + 16];
	struct rest_res rr;

	*status = 0;
	new_etag[0] = '\0';
	if(etag && etag[0])
		snprintf(cond, sizeof(cond), "If-Match: %s", etag);
	else
		snprintf(cond, sizeof(cond), "If-None-Match: *");
	if(!call(c, "PUT", url, body, cond, "CalDAV PUT", &rr, res))
		return;
	*status = rr.status;
	if(rr.status == 412)
		provider_set(res, PROVIDER_TRANSIENT, -1, "CalDAV PUT", rr.detail);
	else
		classify(&rr, "CalDAV PUT", res);
	if(rr.status >= 200 && rr.status <= 299)
		snprintf(new_etag, n, "%s", rr.etag);
	rest_res_free(&rr);
}

/* write_event - the conditional PUT of the booking's resource, following 412 and 404 once */
static void write_event(struct caldav_ctx *c, const char *url, const char *body,
                        const char *stored_etag, char *etag, size_t n, struct provider_result *res)
{
	char cur[REST_ETAG_LEN];
	long status;

	snprintf(cur, sizeof(cur), "%s", stored_etag ? stored_etag : "");
	put(c, url, body, cur, &status, etag, n, res);
	if(status == 404 && cur[0]) {
		/* deleted on the server since: make it again */
		put(c, url, body, NULL, &status, etag, n, res);
	} else if(status == 412) {
		/* it exists (If-None-Match) or changed (If-Match): its current ETag, then again */
		if(!fresh_etag(c, url, cur, sizeof(cur), res))
			return;
		put(c, url, body, cur, &status, etag, n, res);
		if(status == 412)
			provider_set(res, PROVIDER_TRANSIENT, -1, "CalDAV PUT",
			             "the resource changed again while it was written (HTTP 412): "
			             "later");
	}
}

/* caldav_send - write or remove one booking's resource */
static void caldav_send(void *ctx, const char *kind, const json_t *payload,
                        struct provider_result *res)
{
	struct caldav_ctx *c = ctx;
	struct gw_err err = {0};
	const char *action = provider_str(payload, "action"), *uid = provider_str(payload, "uid");
	const char *stored_etag = provider_str(json_object_get(payload, "stored"), "etag");
	char name[600], url[URL_LEN], etag[REST_ETAG_LEN] = "", esc[560];
	char *body = NULL;
	struct rest_res rr;
	gw_rc rc;
	int k;

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
	if(!uid || !uid[0] || rest_escape(uid, esc, sizeof(esc))) {
		provider_set(res, PROVIDER_PERMANENT, -1, "unusable calendar payload",
		             "no usable uid");
		return;
	}
	snprintf(name, sizeof(name), "%s.ics", esc);
	k = snprintf(url, sizeof(url), "%s/%s", c->collection, name);
	if(k < 0 || (size_t)k >= sizeof(url)) {
		provider_set(res, PROVIDER_PERMANENT, -1, "unusable calendar payload",
		             "URL too long");
		return;
	}
	if(strcmp(action, "delete") == 0) {
		if(!call(c, "DELETE", url, NULL, NULL, "CalDAV DELETE", &rr, res))
			return;
		if(rr.status == 404 || rr.status == 410)
			provider_set(res, PROVIDER_SENT, -1, "CalDAV DELETE",
			             "the resource was already gone");
		else
			classify(&rr, "CalDAV DELETE", res);
		rest_res_free(&rr);
		if(res->outcome == PROVIDER_SENT)
			res->out = json_pack("{s:s}", "event_id", name);
		return;
	}
	if((rc = caldav_object(payload, clock_now(), &body, &err))) {
		provider_set(res, rc == GW_ENOMEM ? PROVIDER_TRANSIENT : PROVIDER_PERMANENT, -1,
		             "unusable calendar payload",
		             err.message[0] ? err.message : "out of memory");
		return;
	}
	/* a create never trusts an old ETag: If-None-Match first */
	write_event(c, url, body, strcmp(action, "update") == 0 ? stored_etag : NULL, etag,
	            sizeof(etag), res);
	if(res->outcome == PROVIDER_SENT) {
		res->out = json_pack("{s:s}", "event_id", name);
		if(res->out && etag[0])
			json_object_set_new(res->out, "etag", json_string(etag));
	}
	free(body);
}

/* BUSY_MAX_OVERRIDES - RECURRENCE-IDs of one resource remembered to skip their instances */
#define BUSY_MAX_OVERRIDES 64
#define OWN_UID_SUFFIX     "@ordinatus"

struct busy_walk {
	json_t *blocks;                  /* borrowed: the list appended to */
	time_t from, to;                 /* the range */
	time_t skip[BUSY_MAX_OVERRIDES]; /* instance starts an override replaces */
	int nskip;
	bool nomem;
};

/* add_span - icalcomponent_foreach_recurrence's callback: one instance */
static void add_span(icalcomponent *comp, struct icaltime_span *span, void *data)
{
	struct busy_walk *w = data;
	time_t s = span->start, e = span->end;
	int k;

	(void)comp;
	for(k = 0; k < w->nskip; k++)
		if(w->skip[k] == s &&
		   icalcomponent_get_first_property(comp, ICAL_RECURRENCEID_PROPERTY) == NULL)
			return; /* an override of this instance says where it went */
	if(s < w->from)
		s = w->from;
	if(e > w->to)
		e = w->to;
	if(e > s &&
	   json_array_append_new(w->blocks, json_pack("[I, I]", (json_int_t)s, (json_int_t)e)))
		w->nomem = true;
}

/* to_utc - an iCalendar time as Unix time (floating times read as UTC) */
static time_t to_utc(struct icaltimetype t)
{
	return icaltime_as_timet_with_zone(t, t.zone ? t.zone : icaltimezone_get_utc_timezone());
}

/* busy_object - the busy blocks of one calendar object (a VCALENDAR text) */
static gw_rc busy_object(const char *text, struct busy_walk *w, char *why, size_t n)
{
	icalcomponent *cal = icalparser_parse_string(text), *ev;
	struct icaltimetype a =
	        icaltime_from_timet_with_zone(w->from, 0, icaltimezone_get_utc_timezone());
	struct icaltimetype b =
	        icaltime_from_timet_with_zone(w->to, 0, icaltimezone_get_utc_timezone());

	if(!cal || icalcomponent_isa(cal) != ICAL_VCALENDAR_COMPONENT) {
		if(cal)
			icalcomponent_free(cal);
		snprintf(why, n, "a calendar-data is not a VCALENDAR: %.100s",
		         icalerror_strerror(icalerrno));
		return GW_EINVAL;
	}
	w->nskip = 0;
	for(ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev;
	    ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
		if(icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY) &&
		   w->nskip < BUSY_MAX_OVERRIDES)
			w->skip[w->nskip++] = to_utc(icalcomponent_get_recurrenceid(ev));
	}
	for(ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev;
	    ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
		icalproperty *tr = icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY);
		const char *uid = icalcomponent_get_uid(ev);
		size_t ul = uid ? strlen(uid) : 0, sl = strlen(OWN_UID_SUFFIX);

		if(icalcomponent_get_status(ev) == ICAL_STATUS_CANCELLED)
			continue;
		if(tr && icalproperty_get_transp(tr) == ICAL_TRANSP_TRANSPARENT)
			continue;
		if(ul > sl && strcmp(uid + ul - sl, OWN_UID_SUFFIX) == 0)
			continue; /* the gateway's own booking */
		if(icaltime_is_null_time(icalcomponent_get_dtstart(ev)))
			continue;
		icalcomponent_foreach_recurrence(ev, a, b, add_span, w);
		if(w->nomem)
			break;
	}
	icalcomponent_free(cal);
	return w->nomem ? GW_ENOMEM : GW_OK;
}

/* xml_text - the text of an element (entities and CDATA undone) into a new malloc'd string */
static char *xml_text(const char *p, size_t len)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&lt;", '<'},    {"&gt;", '>'},   {"&amp;", '&'},  {"&quot;", '"'},
	            {"&apos;", '\''}, {"&#13;", '\r'}, {"&#xD;", '\r'}, {"&#xd;", '\r'},
	            {"&#10;", '\n'},  {"&#xA;", '\n'}};
	char *out = malloc(len + 1), *o = out;
	size_t i = 0, k;

	if(!out)
		return NULL;
	while(i < len) {
		if(len - i >= 9 && strncmp(p + i, "<![CDATA[", 9) == 0) {
			const char *end = memmem(p + i + 9, len - i - 9, "]]>", 3);
			size_t m = end ? (size_t)(end - (p + i + 9)) : len - i - 9;
			memcpy(o, p + i + 9, m);
			o += m;
			i += 9 + m + (end ? 3 : 0);
			continue;
		}
		if(p[i] == '&') {
			for(k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].ent);
				if(len - i >= el && strncmp(p + i, ents[k].ent, el) == 0) {
					*o++ = ents[k].c;
					i += el;
					break;
				}
			}
			if(k < sizeof(ents) / sizeof(ents[0]))
				continue;
		}
		*o++ = p[i++];
	}
	*o = '\0';
	return out;
}

/* caldav_busy_parse - the busy blocks of a calendar-query multistatus */
gw_rc caldav_busy_parse(const char *xml, size_t len, time_t from, time_t to, json_t *blocks,
                        char *why, size_t n)
{
	struct busy_walk w = {.blocks = blocks, .from = from, .to = to};
	const char *p = xml, *end = xml + len;
	gw_rc rc = GW_OK;

	why[0] = '\0';
	if(!xml || !memmem(xml, len, "multistatus", 11)) {
		snprintf(why, n, "the answer is not a multistatus");
		return GW_EINVAL;
	}
	/* each <prefix:calendar-data ...>text</prefix:calendar-data> */
	while(p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		const char *name = p + 1, *ne = name, *local, *gt, *close;
		char tag[80];
		char *text;
		int tl;

		while(ne < end && *ne != '>' && *ne != '/' && *ne != ' ' && *ne != '\t' &&
		      *ne != '\r' && *ne != '\n')
			ne++;
		local = memchr(name, ':', (size_t)(ne - name));
		local = local ? local + 1 : name;
		p = ne;
		if(ne - local != 13 || strncmp(local, "calendar-data", 13) != 0)
			continue;
		gt = memchr(ne, '>', (size_t)(end - ne));
		if(!gt)
			break;
		p = gt + 1;
		if(gt[-1] == '/')
			continue; /* <C:calendar-data/>: nothing */
		tl = snprintf(tag, sizeof(tag), "</%.*s>", (int)(ne - name), name);
		if(tl < 0 || (size_t)tl >= sizeof(tag))
			continue;
		close = memmem(gt + 1, (size_t)(end - gt - 1), tag, (size_t)tl);
		if(!close) {
			snprintf(why, n, "a calendar-data element is not closed");
			return GW_EINVAL;
		}
		if(!(text = xml_text(gt + 1, (size_t)(close - (gt + 1)))))
			return GW_ENOMEM;
		rc = busy_object(text, &w, why, n);
		free(text);
		if(rc)
			return rc;
		p = close + tl;
	}
	return GW_OK;
}

/* caldav_busy - the collection's busy times by a time-range calendar-query */
static void caldav_busy(void *ctx, time_t from, time_t to, json_t **blocks,
                        struct provider_result *res)
{
	static const char *const what = "CalDAV calendar-query";
	struct caldav_ctx *c = ctx;
	const char *headers[3] = {c->auth, "Depth: 1", NULL};
	struct rest_req q = {.method = "REPORT", .url = NULL, .headers = headers};
	char url[URL_LEN], body[900], a[20], b[20], why[300];
	struct tm tm;
	struct rest_res rr;
	json_t *list;
	gw_rc rc;

	*blocks = NULL;
	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;
	/* RFC 4791 9.9: start and end in UTC "date with UTC time" form */
	gmtime_r(&from, &tm);
	strftime(a, sizeof(a), "%Y%m%dT%H%M%SZ", &tm);
	gmtime_r(&to, &tm);
	strftime(b, sizeof(b), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(body, sizeof(body),
	         "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	         "<C:calendar-query xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\">"
	         "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
	         "<C:filter><C:comp-filter name=\"VCALENDAR\"><C:comp-filter name=\"VEVENT\">"
	         "<C:time-range start=\"%s\" end=\"%s\"/>"
	         "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>",
	         a, b);
	snprintf(url, sizeof(url), "%s/", c->collection);
	q.url = url;
	q.body = body;
	q.body_len = strlen(body);
	q.content_type = "application/xml; charset=utf-8";
	if(rest_call(c->rest, &q, &rr)) {
		provider_set(res, PROVIDER_TRANSIENT, -1, what, rr.detail);
		rest_res_free(&rr);
		return;
	}
	if(rr.status != 207) {
		if(rr.status >= 200 && rr.status <= 299)
			provider_set(res, PROVIDER_TRANSIENT, -1, what,
			             "the answer is not 207 Multi-Status");
		else
			classify(&rr, what, res);
		rest_res_free(&rr);
		return;
	}
	if(!(list = json_array())) {
		provider_set(res, PROVIDER_TRANSIENT, -1, what, "out of memory");
		rest_res_free(&rr);
		return;
	}
	rc = caldav_busy_parse(rr.body, rr.body_len, from, to, list, why, sizeof(why));
	rest_res_free(&rr);
	if(rc) {
		provider_set(res, PROVIDER_TRANSIENT, -1, what,
		             rc == GW_ENOMEM ? "out of memory" : why);
		json_decref(list);
		return;
	}
	provider_set(res, PROVIDER_SENT, -1, what, "done");
	*blocks = list;
}

const struct provider_ops caldav_provider_ops = {
        .name = "caldav",
        .open = caldav_open,
        .send = caldav_send,
        .busy = caldav_busy,
        .close = caldav_close,
};
