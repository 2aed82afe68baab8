/*
 * zoho.c - the Zoho Assist provider (zoho.h): Zoho's OAuth 2.0 refresh-token grant, then the
 * Assist API v2 scheduled sessions, over common/rest.h. Its shape is gcal.c's.
 *
 * Entry points: zoho_provider_ops ("zoho"), zoho_session_body(), zoho_session_parse(),
 * zoho_token_error().
 *
 * Access token (www.zoho.com/assist/api/refresh-access-token.html): POST
 * {accounts_url}/oauth/v2/token with refresh_token, client_id, client_secret and
 * grant_type=refresh_token (sent in the form body, as the same site's generate-access-token page
 * asks for the code grant "for security reasons"); the answer is {"access_token",
 * "expires_in": 3600, "api_domain", "token_type": "Bearer"}. The accounts server is the data
 * centre's (accounts.zoho.com, .eu, .in, .com.au, .com.cn, .jp). The token is kept until a
 * minute before expires_in runs out (monotonic clock); a 401 from Assist drops it, refreshes
 * once and repeats the call. Zoho answers a refused refresh token with HTTP 200 and
 * {"error": "invalid_code"} (and invalid_client for a wrong client): both are permanent with a
 * clear reason, since this is the organisation's own grant (no trainer connection to mark);
 * {"error": "Access Denied", "error_description": "You have made too many requests ..."} and
 * 429/5xx are transient.
 *
 * Every API call carries "Authorization: Zoho-oauthtoken {access_token}" (not Bearer), as the
 * Assist API pages show.
 *
 * Sessions (www.zoho.com/assist/api/schedulesession.html):
 *   create  POST {api_base}/api/v2/session/schedule, JSON {mode: "SCHEDULE", title, notes,
 *           customer_email, schedule_time, schedule_upto (ms), utc_offset ("+05:30"),
 *           time_zone (IANA), reminder, department_id}; the answer is {"representation":
 *           {"statue": "ok", "schedule_id", "technician_url", "customer_url"},
 *           "resource_type": "/api/v2/session/schedule"}.
 *   update  PUT  {api_base}/api/v2/session/schedule/{schedule_id} with the same body, same
 *           answer; 404 (gone): created again. ASSUMED: the public pages document no update.
 *   delete  DELETE {api_base}/api/v2/session/schedule/{schedule_id}; 404 counts as done.
 *           ASSUMED likewise.
 * A create has no client-chosen id on Zoho's side: a create whose answer was lost can leave a
 * session behind (at-least-once; the row's retry makes a second one, the booking keeps the last).
 *
 * Outcomes: 2xx sent; 429 and 5xx transient with the Retry-After; a 401 that a fresh token did
 * not cure PROVIDER_AUTH; any other 4xx permanent; no answer transient. Details name the call and
 * carry Zoho's body (bounded and cleaned by rest.c); never a token or secret.
 *
 * Threading: a context belongs to one worker thread.
 */
#include "zoho.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/rest.h"
#include "common/timefmt.h"
#include "common/tz.h"

#define ZOHO_CONNECT_TIMEOUT 10
#define ZOHO_TIMEOUT         30
#define TOKEN_MARGIN_MS      60000
#define URL_LEN              2600

struct zoho_ctx {
	struct rest *rest;
	char *client_id;     /* from strdup() */
	char *client_secret; /* from strdup(); wiped on close */
	char *refresh_token; /* from strdup(); wiped on close */
	char *token_url;     /* from malloc(): {accounts_url}/oauth/v2/token */
	char *api;           /* from malloc(): {api_base} ending in /api/v2 */
	char *department_id; /* from strdup(), or NULL */
	char access[4096];   /* the current access token, or "" */
	int64_t access_until_ms;
};

/* utc_offset - "+05:30" of tzid at t */
static gw_rc utc_offset(const char *tzid, time_t t, char *buf, size_t n)
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
	if(off >= 86400)
		return GW_EINVAL;
	snprintf(buf, n, "%c%02d:%02d", sign, (int)(off / 3600), (int)((off % 3600) / 60));
	return GW_OK;
}

/* zoho_session_body - the Schedule Session request */
gw_rc zoho_session_body(const json_t *payload, const char *department_id, json_t **out,
                        struct gw_err *err)
{
	const char *tzid = provider_str(payload, "timezone"),
	           *title = provider_str(payload, "title");
	const char *email = provider_str(json_object_get(payload, "customer"), "email");
	char off[32]; /* "+05:30"; room for any int the compiler imagines */
	time_t s = 0, e = 0;
	json_t *b;

	*out = NULL;
	if(!tzid || !tz_valid(tzid))
		tzid = "UTC";
	if(!provider_str(payload, "start") || timefmt_parse(provider_str(payload, "start"), &s))
		return gw_err_set(err, GW_EINVAL, "start", "the payload has no usable start");
	if(!provider_str(payload, "end") || timefmt_parse(provider_str(payload, "end"), &e) ||
	   e <= s)
		return gw_err_set(err, GW_EINVAL, "end", "the payload has no usable end");
	if(!title || !title[0])
		return gw_err_set(err, GW_EINVAL, "title", "the payload has no title");
	if(!email || !email[0])
		return gw_err_set(err, GW_EINVAL, "customer", "the payload has no customer email");
	if(utc_offset(tzid, s, off, sizeof(off)))
		return gw_err_set(err, GW_EINVAL, "timezone", "cannot convert to %s", tzid);
	/* reminder 0: the gateway sends the customer's reminders itself */
	b = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:i}", "mode", "SCHEDULE", "title",
	              title, "notes", "Booked through Ordinatus.", "customer_email", email,
	              "schedule_time", (json_int_t)s * 1000, "schedule_upto", (json_int_t)e * 1000,
	              "utc_offset", off, "time_zone", tzid, "reminder", 0);
	if(!b)
		return GW_ENOMEM;
	if(department_id && department_id[0] &&
	   json_object_set_new(b, "department_id", json_string(department_id))) {
		json_decref(b);
		return GW_ENOMEM;
	}
	*out = b;
	return GW_OK;
}

/* web_url - an http(s) URL without white space or quotes */
static bool web_url(const char *s)
{
	const char *p;

	if(!s || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0))
		return false;
	for(p = s; *p; p++)
		if((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("\"'<>\\`", *p))
			return false;
	return strlen(s) < 1024;
}

/* zoho_session_parse - the representation of a Schedule Session answer */
gw_rc zoho_session_parse(const json_t *answer, json_t **out)
{
	const json_t *r = json_object_get(answer, "representation");
	const json_t *idv = json_object_get(r, "schedule_id");
	const char *tech = provider_str(r, "technician_url"),
	           *cust = provider_str(r, "customer_url");
	char id[64];

	*out = NULL;
	if(json_is_string(idv) && json_string_length(idv) > 0 && json_string_length(idv) < 64 &&
	   !strpbrk(json_string_value(idv), "/?#%\r\n \t"))
		snprintf(id, sizeof(id), "%s", json_string_value(idv));
	else if(json_is_integer(idv) && json_integer_value(idv) > 0)
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(idv));
	else
		return GW_EINVAL;
	if(!web_url(tech) || !web_url(cust))
		return GW_EINVAL;
	*out = json_pack("{s:s, s:s, s:s}", "session_id", id, "technician_url", tech,
	                 "customer_url", cust);
	return *out ? GW_OK : GW_ENOMEM;
}

/* zoho_token_error - the meaning of a token answer without an access token */
enum provider_outcome zoho_token_error(long status, const json_t *answer)
{
	const char *e = provider_str(answer, "error");

	if(status == 429 || status >= 500 || status == 0)
		return PROVIDER_TRANSIENT;
	if(e && strcmp(e, "Access Denied") == 0) /* Zoho's throttling of token requests */
		return PROVIDER_TRANSIENT;
	return PROVIDER_PERMANENT;
}

/* zoho_close - free a context */
static void zoho_close(void *ctx)
{
	struct zoho_ctx *z = ctx;

	if(!z)
		return;
	rest_destroy(z->rest);
	free(z->client_id);
	provider_wipe_free(z->client_secret);
	provider_wipe_free(z->refresh_token);
	free(z->token_url);
	free(z->api);
	free(z->department_id);
	OPENSSL_cleanse(z->access, sizeof(z->access));
	free(z);
}

/* joined - base without trailing '/' followed by tail unless base already ends with it */
static char *joined(const char *base, const char *tail)
{
	size_t n = strlen(base), t = strlen(tail);
	char *s;

	while(n > 0 && base[n - 1] == '/')
		n--;
	if(n >= t && strncmp(base + n - t, tail, t) == 0)
		t = 0;
	s = malloc(n + t + 1);
	if(!s)
		return NULL;
	memcpy(s, base, n);
	memcpy(s + n, tail, t);
	s[n + t] = '\0';
	return s;
}

/* zoho_open - a context for one organisation */
static gw_rc zoho_open(const json_t *config, const char *data_dir, void **ctx)
{
	struct rest_opts ro = {0};
	struct netguard guard;
	struct zoho_ctx *z = NULL;
	const char *cid, *csec, *rt, *acc, *api, *dep;
	gw_rc rc;

	(void)data_dir;
	*ctx = NULL;
	cid = provider_cfg_str(config, "client_id");
	csec = provider_cfg_str(config, "client_secret");
	rt = provider_cfg_str(config, "refresh_token");
	acc = provider_cfg_str(config, "accounts_url");
	api = provider_cfg_str(config, "api_base");
	dep = provider_cfg_str(config, "department_id");
	if(!acc)
		acc = "https://accounts.zoho.com";
	if(!api)
		api = "https://assist.zoho.com";
	if(!cid || !csec || !rt)
		return GW_ECONFIG;
	z = calloc(1, sizeof(*z));
	if(!z)
		return GW_ENOMEM;
	ro.connect_timeout_ms =
	        provider_cfg_secs(config, "connect_timeout", ZOHO_CONNECT_TIMEOUT) * 1000;
	ro.timeout_ms = provider_cfg_secs(config, "timeout", ZOHO_TIMEOUT) * 1000;
	/* the operator's --allow-outbound ranges, which the dispatcher adds to the config */
	if(netguard_from_json(json_object_get(config, "allow_outbound"), &guard)) {
		rc = GW_ECONFIG;
		goto out;
	}
	ro.guard = &guard;
	if((rc = rest_create(&ro, &z->rest)))
		goto out;
	z->client_id = strdup(cid);
	z->client_secret = strdup(csec);
	z->refresh_token = strdup(rt);
	z->token_url = joined(acc, "/oauth/v2/token");
	z->api = joined(api, "/api/v2");
	z->department_id = dep ? strdup(dep) : NULL;
	if(!z->client_id || !z->client_secret || !z->refresh_token || !z->token_url || !z->api ||
	   (dep && !z->department_id)) {
		rc = GW_ENOMEM;
		goto out;
	}
	*ctx = z;
	z = NULL;
out:
	zoho_close(z);
	return rc;
}

/* refresh - a new access token; false with res filled when none came */
static bool refresh(struct zoho_ctx *z, struct provider_result *res)
{
	const char *fields[] = {"refresh_token", z->refresh_token, "client_id",
	                        z->client_id,    "client_secret",  z->client_secret,
	                        "grant_type",    "refresh_token",  NULL};
	struct rest_res rr;
	const char *tok, *err;
	json_int_t expires;
	char why[REST_DETAIL_LEN + 40];

	z->access[0] = '\0';
	if(rest_form_post(z->rest, z->token_url, fields, &rr)) {
		provider_set(res, PROVIDER_TRANSIENT, -1, "Zoho token endpoint", rr.detail);
		goto fail;
	}
	tok = provider_str(rr.json, "access_token");
	err = provider_str(rr.json, "error");
	if(rr.status >= 200 && rr.status <= 299 && !err && tok) {
		if(!tok[0] || strlen(tok) >= sizeof(z->access) || strpbrk(tok, "\r\n ")) {
			provider_set(res, PROVIDER_TRANSIENT, -1, "Zoho token endpoint",
			             "the answer has no usable access_token");
			goto fail;
		}
		snprintf(z->access, sizeof(z->access), "%s", tok);
		expires = json_integer_value(json_object_get(rr.json, "expires_in"));
		if(expires <= 0)
			expires = 3600;
		z->access_until_ms = clock_mono_ms() + (int64_t)expires * 1000 - TOKEN_MARGIN_MS;
		rest_res_free(&rr);
		return true;
	}
	/* Zoho answers refused grants with 200 and an error member: the detail is empty then */
	if(rr.detail[0])
		snprintf(why, sizeof(why), "%s", rr.detail);
	else
		snprintf(why, sizeof(why), "HTTP %ld: error %.200s", rr.status, err ? err : "?");
	switch(zoho_token_error(rr.status, rr.json)) {
	case PROVIDER_TRANSIENT:
		provider_set(res, PROVIDER_TRANSIENT, rr.retry_after, "Zoho token endpoint", why);
		break;
	default:
		provider_set(
		        res, PROVIDER_PERMANENT, -1,
		        err && (strcmp(err, "invalid_code") == 0 ||
		                strcmp(err, "invalid_grant") == 0)
		                ? "Zoho refused the organisation's refresh token (generate a new "
		                  "one and "
		                  "PUT /v1/orgs/{org}/providers/zoho)"
		                : "Zoho token endpoint refused the organisation's client settings",
		        why);
		break;
	}
fail:
	rest_res_free(&rr);
	return false;
}

/* api_call - one Assist call with a valid token, refreshed once on a 401 */
static bool api_call(struct zoho_ctx *z, const char *method, const char *url, const json_t *body,
                     const char *what, struct rest_res *rr, struct provider_result *res)
{
	char auth[4200];
	const char *headers[] = {auth, NULL};
	struct rest_req q = {.method = method, .url = url, .json = body, .headers = headers};
	bool refreshed = false;

	for(;;) {
		if(!z->access[0] || clock_mono_ms() >= z->access_until_ms) {
			if(!refresh(z, res))
				return false;
			refreshed = true;
		}
		snprintf(auth, sizeof(auth), "Authorization: Zoho-oauthtoken %s", z->access);
		if(rest_call(z->rest, &q, rr)) {
			OPENSSL_cleanse(auth, sizeof(auth));
			provider_set(res, PROVIDER_TRANSIENT, -1, what, rr->detail);
			rest_res_free(rr);
			return false;
		}
		OPENSSL_cleanse(auth, sizeof(auth));
		if(rr->status != 401 || refreshed)
			return true;
		rest_res_free(rr);
		z->access[0] = '\0';
	}
}

/* classify - the outcome of an answer */
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

/* write_session - POST (id NULL) or PUT the session; *status the HTTP status (0: none) */
static void write_session(struct zoho_ctx *z, const json_t *body, const char *id,
                          struct provider_result *res, long *status)
{
	const char *what =
	        id ? "Zoho Assist update scheduled session" : "Zoho Assist schedule session";
	char url[URL_LEN];
	struct rest_res rr;

	*status = 0;
	snprintf(url, sizeof(url), "%s/session/schedule%s%s", z->api, id ? "/" : "", id ? id : "");
	if(!api_call(z, id ? "PUT" : "POST", url, body, what, &rr, res))
		return;
	*status = rr.status;
	classify(&rr, what, res);
	if(res->outcome == PROVIDER_SENT && zoho_session_parse(rr.json, &res->out)) {
		/* done on Zoho's side, but nothing to link the booking to: say so, try again */
		provider_set(
		        res, PROVIDER_TRANSIENT, -1, what,
		        "the answer has no usable schedule_id, technician_url or customer_url");
	}
	rest_res_free(&rr);
}

/* zoho_send - write one booking's scheduled session */
static void zoho_send(void *ctx, const char *kind, const json_t *payload,
                      struct provider_result *res)
{
	struct zoho_ctx *z = ctx;
	const char *action = provider_str(payload, "action");
	const char *sid = provider_str(json_object_get(payload, "stored"), "session_id");
	struct gw_err err = {0};
	char url[URL_LEN], esc[200];
	struct rest_res rr;
	json_t *body = NULL;
	long status = 0;
	gw_rc rc;

	(void)kind;
	res->outcome = PROVIDER_SENT;
	res->retry_after = -1;
	res->detail[0] = '\0';
	res->out = NULL;
	if(!action)
		action = "create"; /* rows enqueued before actions existed */
	if(sid && (!sid[0] || rest_escape(sid, esc, sizeof(esc))))
		sid = NULL;
	if(strcmp(action, "delete") == 0) {
		if(!sid) {
			provider_set(res, PROVIDER_SENT, -1, "Zoho Assist delete scheduled session",
			             "no session was scheduled: nothing to delete");
			return;
		}
		snprintf(url, sizeof(url), "%s/session/schedule/%s", z->api, esc);
		if(!api_call(z, "DELETE", url, NULL, "Zoho Assist delete scheduled session", &rr,
		             res))
			return;
		if(rr.status == 404)
			provider_set(res, PROVIDER_SENT, -1, "Zoho Assist delete scheduled session",
			             "the session was already gone");
		else
			classify(&rr, "Zoho Assist delete scheduled session", res);
		rest_res_free(&rr);
		if(res->outcome == PROVIDER_SENT)
			res->out = json_pack("{s:b}", "deleted", 1);
		return;
	}
	if(strcmp(action, "create") && strcmp(action, "update")) {
		provider_set(res, PROVIDER_PERMANENT, -1, "unusable Zoho Assist payload",
		             "unknown action");
		return;
	}
	if((rc = zoho_session_body(payload, z->department_id, &body, &err))) {
		provider_set(res, rc == GW_ENOMEM ? PROVIDER_TRANSIENT : PROVIDER_PERMANENT, -1,
		             "unusable Zoho Assist payload",
		             err.message[0] ? err.message : "out of memory");
		return;
	}
	if(strcmp(action, "update") == 0 && sid) {
		write_session(z, body, esc, res, &status);
		if(status == 404) { /* deleted in Zoho Assist meanwhile: schedule it again */
			json_decref(res->out);
			res->out = NULL;
			write_session(z, body, NULL, res, &status);
		}
	} else {
		/* a create, or an update of a session never created (its row was lost or dead) */
		write_session(z, body, NULL, res, &status);
	}
	if(res->outcome != PROVIDER_SENT) {
		json_decref(res->out);
		res->out = NULL;
	}
	json_decref(body);
}

const struct provider_ops zoho_provider_ops = {
        .name = "zoho",
        .open = zoho_open,
        .send = zoho_send,
        .close = zoho_close,
};
