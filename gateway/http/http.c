/*
 * http.c - the libmicrohttpd server: request state, body limit, routing, auth, errors.
 *
 * Entry points: http_parse_listen(), http_bind(), http_start(), http_stop(), http_status(),
 * http_query(), http_query_enum(), http_require_org(), http_rate_limit(),
 * http_rate_limit_burst().
 * Threading: MHD's thread pool; per-request state lives in *req_cls from the first callback to
 * the completion callback (libmicrohttpd examples); per-thread store connections are opened on
 * first use and closed by a pthread key destructor.
 *
 * Authentication: a bearer token, or else the session cookie (http_auth.c) on the routes that
 * are not public; a state-changing call made with the cookie passes its CSRF check before its
 * body is read.
 *
 * Abuse bounds (README "Limits"):
 * - rate limits: token buckets (common/ratelimit.h) on the monotonic clock; the link routes here,
 *   the public intake in its handler (the organisation's settings);
 * - the client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy;
 * - slow clients: libmicrohttpd has only an inactivity timeout (MHD_OPTION_CONNECTION_TIMEOUT,
 *   reset by every byte), so a client sending a header byte a second is never timed out by it.
 *   Each connection is tracked from MHD_OPTION_NOTIFY_CONNECTION's STARTED to its CLOSED, with
 *   the phase it is in (waiting for headers, receiving a body, being answered) and since when;
 *   a reaper thread shuts down (shutdown(2), never close: the socket stays the library's) those
 *   past the phase's bound, and the library then sees the end of the stream and closes it;
 * - connections per client address: MHD_OPTION_PER_IP_CONNECTION_LIMIT would count a reverse
 *   proxy as one client, so the accept policy callback (MHD_OPTION_APC... the apc argument of
 *   MHD_start_daemon) counts the tracked connections of the peer, trusted proxies exempt;
 * - request heads: libmicrohttpd answers a head that overflows its per-connection memory pool
 *   with its own HTML 414/431 (no option replaces that body), so the pool is made larger than
 *   our own limits and we answer JSON 414/431 below them.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "gateway/delivery/dispatch.h"
#include "http_routes.h"
#include "http_static.h"
#include "common/jsonv.h"
#include "common/log.h"

struct req_state {
	char *body;     /* malloc'd, up to HTTP_BODY_MAX */
	size_t len;
	int too_large;
	int64_t start_ms;
	bool wake; /* dispatch_wake() when the answer has gone */
};

/* One TCP connection, tracked from MHD's STARTED notification to its CLOSED one. */
enum conn_phase { PHASE_HEAD, PHASE_BODY, PHASE_ANSWER };
struct conn_info {
	struct conn_info *prev, *next;
	MHD_socket fd;
	uint32_t peer;
	_Atomic int phase;         /* enum conn_phase */
	_Atomic int64_t since_ms;  /* monotonic start of the phase */
	bool shut;                 /* the reaper shut it down */
};

static struct MHD_Daemon *daemon_handle;
static struct http_config config;
static pthread_key_t store_key;
static struct rl_table *limits;

/* the tracked connections (under conn_lock) and the reaper */
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reaper_cond = PTHREAD_COND_INITIALIZER;
static struct conn_info *conns;
static size_t conn_count;
static bool reaper_stop;
static bool reaper_running;
static pthread_t reaper_thread;
static _Atomic long long reaped_total, refused_total;

/* The one table from result code to HTTP status. */
static const int status_table[GW_RC_COUNT] = {
    [GW_OK] = 200,        [GW_ENOMEM] = 503,     [GW_EJSON] = 400,     [GW_EINVAL] = 400,
    [GW_EUNAUTH] = 401,   [GW_EFORBIDDEN] = 403, [GW_ENOTFOUND] = 404, [GW_ECLAIMED] = 409,
    [GW_ESTATE] = 409,    [GW_ESLOT] = 409,      [GW_EEXPIRED] = 410,  [GW_ETOOLARGE] = 413,
    [GW_ERATE] = 429,     [GW_EEXISTS] = 409,    [GW_EDB] = 500,       [GW_EIO] = 500,
    [GW_EBUSY] = 503,     [GW_EVERSION] = 500,   [GW_ECONFIG] = 500,   [GW_EMETHOD] = 405,
    [GW_EMEDIA] = 415,    [GW_EURITOOLONG] = 414, [GW_EHEADERS] = 431,
    [GW_EUNAVAIL] = 503,
};

/* Default messages when a handler gives none. */
static const char *const default_message[GW_RC_COUNT] = {
    [GW_ENOMEM] = "the server is short of memory; try again",
    [GW_EJSON] = "the request body must be a JSON object",
    [GW_EINVAL] = "a field is missing or invalid",
    [GW_EUNAUTH] = "a valid bearer token is required",
    [GW_EFORBIDDEN] = "your role does not allow this",
    [GW_ENOTFOUND] = "not found",
    [GW_ECLAIMED] = "This request has already been claimed by another trainer.",
    [GW_ESTATE] = "not allowed in the current state",
    [GW_ESLOT] = "that slot is no longer free",
    [GW_EEXPIRED] = "this link has expired or was replaced by a newer one",
    [GW_ETOOLARGE] = "the request body is larger than 64 KiB",
    [GW_ERATE] = "too many requests; slow down",
    [GW_EEXISTS] = "that already exists",
    [GW_EDB] = "internal error",
    [GW_EIO] = "internal error",
    [GW_EBUSY] = "the server is busy; try again",
    [GW_EVERSION] = "internal error",
    [GW_ECONFIG] = "internal error",
    [GW_EMETHOD] = "this endpoint does not take that method",
    [GW_EMEDIA] = "the request body must be sent as Content-Type: application/json",
    [GW_EURITOOLONG] = "the request target is longer than 8 KiB",
    [GW_EHEADERS] = "the request header fields are larger than 16 KiB",
    [GW_EUNAVAIL] = "the database is unavailable; try again shortly",
};

/* http_status - result code to status */
int http_status(gw_rc rc)
{
	if((unsigned)rc >= GW_RC_COUNT || !status_table[rc])
		return 500;
	return status_table[rc];
}

/* thread_store - this thread's connection, opened on first use */
static struct store *thread_store(void)
{
	struct store *st = pthread_getspecific(store_key);
	struct gw_err err = {0};

	if(st)
		return st;
	if(store_open(config.db_path, false, &st, &err)) {
		log_event("error", "store_open_failed", json_pack("{s:s}", "error", err.message));
		return NULL;
	}
	pthread_setspecific(store_key, st);
	return st;
}

/* close_store - pthread key destructor */
static void close_store(void *p)
{
	store_close(p);
}

/* http_query - query-string value */
const char *http_query(struct http_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* http_query_enum - a query value from a fixed list */
gw_rc http_query_enum(struct http_req *r, const char *key, const char *const *choices,
                      const char **out)
{
	const char *v = http_query(r, key);
	gw_rc rc;

	*out = NULL;
	if(!v)
		return GW_OK;
	rc = gw_enum_check(v, key, choices, &r->err);
	if(!rc)
		*out = v;
	return rc;
}

/* http_require_org - role and organisation check */
gw_rc http_require_org(struct http_req *r, int64_t org, int roles)
{
	if(!r->authed)
		return gw_err_set(&r->err, GW_EUNAUTH, "", "a valid bearer token is required");
	if(r->user.roles & ROLE_PLATFORM_ADMIN) {
		if(roles & ROLE_PLATFORM_ADMIN)
			return GW_OK;
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "your role does not allow this");
	}
	if(r->user.org_id != org)
		return gw_err_set(&r->err, GW_ENOTFOUND, "", "not found");
	if(!(r->user.roles & roles))
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "your role does not allow this");
	return GW_OK;
}

/* send_json - queue a JSON response; allow: the Allow header of a 405, or NULL; retry_after:
 * the Retry-After seconds of a 429, or 0 */
static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *body,
                                 const char *allow, unsigned retry_after,
                                 const char *set_cookie)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if(!text) {
		static const char oom[] = "{\"error\":\"out_of_memory\",\"message\":\"try again\"}";
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)(uintptr_t)oom,
		                                       MHD_RESPMEM_PERSISTENT);
		status = 503;
	} else {
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	}
	if(!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if(allow)
		MHD_add_response_header(resp, "Allow", allow);
	if(set_cookie)
		MHD_add_response_header(resp, "Set-Cookie", set_cookie);
	if(retry_after) {
		char secs[16];

		snprintf(secs, sizeof(secs), "%u", retry_after);
		MHD_add_response_header(resp, "Retry-After", secs);
	}
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* send_text - queue a text response; takes ownership of text (malloc'd) */
static enum MHD_Result send_text(struct MHD_Connection *c, int status, char *text,
                                 const char *content_type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if(!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", content_type ? content_type : "text/plain");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* send_redirect - queue a redirect to location (borrowed) with an empty body; never cached, and
 * no Referer leaves with the query it came with (the OAuth callback's code and state) */
static enum MHD_Result send_redirect(struct MHD_Connection *c, int status, const char *location)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if(!resp)
		return MHD_NO;
	if(MHD_add_response_header(resp, "Location", location) != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* error_body - the contract's error body (docs/openapi.yaml) */
static json_t *error_body(gw_rc rc, const struct gw_err *err)
{
	const char *msg = err->message[0] ? err->message : default_message[rc];
	json_t *b = json_pack("{s:s, s:s}", "error", gw_rc_name(rc), "message", msg ? msg : "error");

	if(b && err->field[0])
		json_object_set_new(b, "field", json_string(err->field));
	return b;
}

/* cookie_route - does the route look at the session cookie? Not the public ones, which work
 * for anyone (the links, the intake, sign-in and login themselves): a page of the same origin
 * posting to them sends the cookie along without the CSRF token, and needs neither. */
static bool cookie_route(const struct http_route *route)
{
	static const char *const public_prefixes[] = {"/v1/schedule/", "/v1/survey/", "/v1/feeds/",
	                                              "/v1/manage/", "/oauth/", "/v1/test/",
	                                              "/v1/auth/sign-in", "/v1/auth/login",
	                                              "/healthz", "/metrics"};
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(public_prefixes); i++)
		if(strncmp(route->pattern, public_prefixes[i], strlen(public_prefixes[i])) == 0)
			return false;
	/* the public intake */
	return !(strcmp(route->method, "POST") == 0 &&
	         strcmp(route->pattern, "/v1/orgs/{id}/requests") == 0);
}

/* authenticate - resolve the bearer token, if any; else the session cookie, where the route
 * takes it. A bearer token wins over a cookie sent with it. */
static gw_rc authenticate(struct http_req *r, const struct http_route *route)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
	char hash[CRYPTO_HASH_HEX];
	gw_rc rc;

	if(!h)
		return cookie_route(route) ? http_auth_cookie(r) : GW_OK;
	if(strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) == 0 || strlen(h + 7) > 200)
		return gw_err_set(&r->err, GW_EUNAUTH, "", "the Authorization header must be "
		                                           "\"Bearer TOKEN\"");
	crypto_sha256_hex(h + 7, strlen(h + 7), hash);
	rc = store_user_by_token(r->st, hash, &r->user);
	if(rc == GW_EUNAUTH)
		return gw_err_set(&r->err, rc, "", "unknown or revoked token");
	if(rc)
		return rc;
	r->authed = true;
	r->actor.user_id = r->user.id;
	r->actor.org_id = r->user.org_id;
	r->actor.roles = r->user.roles;
	return GW_OK;
}

/* log_request - one line per answered request: the route's pattern, never the raw path (the
 * link, survey and feed paths hold tokens) */
static void log_request(const char *method, const struct http_route *route, int status,
                        int64_t ms)
{
	if(!log_enabled("info"))
		return;
	log_event("info", "http_request",
	          json_pack("{s:s, s:s, s:i, s:I}", "method", method, "route",
	                    route ? route->pattern : "(none)", "status", status, "ms",
	                    (json_int_t)ms));
}

/* http_rate_limit - one request against a token bucket.
 * The monotonic clock, never clock_now(): a limit is about requests per real elapsed second,
 * and the test clock (serve --test-clock) jumps by days or stands still, which would either
 * refill every bucket at once or never; a wall-clock step would do the same. */
gw_rc http_rate_limit(struct http_req *r, enum rl_kind kind, const char *key,
                      unsigned per_minute)
{
	return http_rate_limit_burst(r, kind, key, per_minute, per_minute);
}

/* http_rate_limit_burst - http_rate_limit with its own burst */
gw_rc http_rate_limit_burst(struct http_req *r, enum rl_kind kind, const char *key,
                            unsigned per_minute, unsigned burst)
{
	unsigned secs = 1;

	if(!limits || rl_take(limits, kind, key, per_minute, burst, clock_mono_ms(), &secs) ==
	                   GW_OK)
		return GW_OK;
	r->retry_after = secs;
	return gw_err_set(&r->err, GW_ERATE, "", "too many requests; try again in %u s", secs);
}

struct xff_list {
	const char *v[8];
	size_t n;
};

/* collect_xff - MHD header iterator: every X-Forwarded-For value, in order (the last 8) */
static enum MHD_Result collect_xff(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	struct xff_list *l = cls;

	(void)kind;
	if(strcasecmp(key, "X-Forwarded-For") != 0 || !value)
		return MHD_YES;
	if(l->n == GW_ARRAY_LEN(l->v)) {
		memmove(l->v, l->v + 1, sizeof(l->v) - sizeof(l->v[0]));
		l->n--;
	}
	l->v[l->n++] = value;
	return MHD_YES;
}

/* peer_addr - the connection's peer (IPv4, host order); 0 when unknown */
static uint32_t peer_addr(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	if(!ci || !ci->client_addr || ci->client_addr->sa_family != AF_INET)
		return 0;
	return ntohl(((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr.s_addr);
}

/* client_addr - the client's address as the limits see it */
static void client_addr(struct http_req *r)
{
	uint32_t peer = peer_addr(r->conn), addr = peer;

	if(config.ntrusted && cidr4_contains(config.trusted, config.ntrusted, peer)) {
		struct xff_list l = {{NULL}, 0};

		MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_xff, &l);
		addr = netaddr_client(peer, l.v, l.n, config.trusted, config.ntrusted);
	}
	netaddr_format(addr, r->client);
}

/* token_route - the routes whose path holds a secret token, and the sign-in and login (a link
 * token in the body, an address to probe): limited per client address */
static bool token_route(const struct http_route *route)
{
	static const char *const prefixes[] = {"/v1/schedule/", "/v1/survey/", "/v1/feeds/",
	                                       "/v1/manage/", "/oauth/", "/s/", "/survey/", "/b/",
	                                       "/login/", "/v1/auth/sign-in", "/v1/auth/login"};
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(prefixes); i++)
		if(strncmp(route->pattern, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* json_media - is the Content-Type application/json (any parameters, any case)? */
static bool json_media(const char *ct)
{
	static const char want[] = "application/json";

	if(!ct)
		return false;
	while(*ct == ' ' || *ct == '\t')
		ct++;
	if(strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	ct += sizeof(want) - 1;
	while(*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* conn_of - the tracked connection of c, or NULL */
static struct conn_info *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* conn_phase - move the connection into phase, from now */
static void conn_phase(struct MHD_Connection *c, enum conn_phase phase)
{
	struct conn_info *ci = conn_of(c);

	if(!ci)
		return;
	atomic_store(&ci->since_ms, clock_mono_ms());
	atomic_store(&ci->phase, (int)phase);
}

/* handle - run one complete request */
static enum MHD_Result handle(struct MHD_Connection *c, const char *url, const char *method,
                              struct req_state *rs)
{
	struct http_req r;
	const struct http_route *route = NULL;
	json_t *out = NULL, *body = NULL;
	int status;
	gw_rc rc = GW_OK;
	enum MHD_Result ret;
	char allow[64];
	int64_t ms;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = url;
	r.conn = c;
	r.cfg = &config;
	r.status = 200;
	conn_phase(c, PHASE_ANSWER);
	client_addr(&r);
	route = http_route_find(method, url, &r, allow, sizeof(allow));
	if(route && token_route(route) &&
	   (rc = http_rate_limit(&r, RL_TOKEN_ROUTE, r.client, config.token_per_minute)))
		goto out;
	if(route && rs->too_large) {
		rc = GW_ETOOLARGE;
		goto out;
	}
	/* a body, when one is sent, is JSON and says so: a form or text/plain post from another
	 * site's page (which a browser sends without asking) is refused before anything is read */
	if(route && route->body != HTTP_BODY_NONE && rs->len > 0 &&
	   !json_media(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"))) {
		rc = gw_err_set(&r.err, GW_EMEDIA, "", "the request body must be JSON sent with "
		                                       "Content-Type: application/json");
		goto out;
	}
	if(!route) {
		if(allow[0])
			rc = gw_err_set(&r.err, GW_EMETHOD, "", "%s is not allowed here; allowed: %s",
			                method, allow);
		else
			rc = gw_err_set(&r.err, GW_ENOTFOUND, "", "no such endpoint");
		status = http_status(rc);
		body = error_body(rc, &r.err);
		ms = clock_mono_ms() - rs->start_ms;
		http_routes_count(NULL, status, ms);
		log_request(method, NULL, status, ms);
		ret = send_json(c, status, body, allow[0] ? allow : NULL, 0, NULL);
		json_decref(body);
		return ret;
	}
	r.st = thread_store();
	if(!r.st) {
		/* this thread could not open its connection: the database is away (PostgreSQL) */
		rc = GW_EUNAVAIL;
		goto out;
	}
	rc = authenticate(&r, route);
	if(rc)
		goto out;
	if(r.via_cookie && (rc = http_auth_csrf(&r)))
		goto out;
	if(route->body == HTTP_BODY_REQUIRED ||
	   (route->body == HTTP_BODY_OPTIONAL && rs->len > 0)) {
		rc = jv_parse(rs->body, rs->len, &r.body, &r.err);
		if(rc)
			goto out;
	}
	rc = route->handler(&r, &out);
out:
	/* a store failure because the database cannot be reached is 503 unavailable, not 500:
	 * the request changed nothing (its transaction is gone with the connection) */
	if((rc == GW_EDB || rc == GW_EIO || rc == GW_EBUSY) && r.st && store_unavailable(r.st)) {
		rc = GW_EUNAVAIL;
		r.err.message[0] = '\0';
		r.err.field[0] = '\0';
	}
	if(rc) {
		status = http_status(rc);
		json_decref(out);
		out = error_body(rc, &r.err);
		if(status >= 500)
			log_event("error", "http_error",
			          json_pack("{s:s, s:s, s:i, s:s, s:s}", "method", method, "route",
			                    route->pattern,
			                    "status", status, "error", gw_rc_name(rc), "cause",
			                    r.err.cause[0] ? r.err.cause
			                                   : (r.st ? store_errmsg(r.st) : "")));
		if(r.st)
			store_rollback(r.st);
	} else {
		status = r.status;
		if(!out)
			out = json_object();
	}
	ms = clock_mono_ms() - rs->start_ms;
	http_routes_count(route, status, ms);
	log_request(method, route, status, ms);
	if(!rc && r.page) {
		ret = http_static_send(c, r.page);
		r.page = NULL;
	} else if(!rc && r.location) {
		ret = send_redirect(c, status, r.location);
	} else if(!rc && r.text) {
		ret = send_text(c, status, r.text, r.content_type);
		r.text = NULL;
	} else {
		ret = send_json(c, status, out, NULL, rc == GW_ERATE ? r.retry_after : 0,
		                r.set_cookie);
	}
	rs->wake = r.wake_after;
	json_decref(out);
	json_decref(r.body);
	free(r.text);
	free(r.location);
	http_page_free(r.page);
	free(r.set_cookie);
	return ret;
}

/* add_size - MHD value iterator: the bytes of a header line or query argument */
static enum MHD_Result add_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
	size_t *n = cls;

	(void)kind;
	*n += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

/* head_limits - our JSON 414/431 for a request head over HTTP_URI_MAX/HTTP_HEADERS_MAX; true
 * when answered (*ret) */
static bool head_limits(struct MHD_Connection *c, const char *url, const char *method,
                        const struct req_state *rs, enum MHD_Result *ret)
{
	size_t uri = strlen(url), head = 0;
	struct gw_err err = {0};
	json_t *body;
	int status;
	int64_t ms;
	gw_rc rc;

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_size, &uri);
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_size, &head);
	if(uri > HTTP_URI_MAX)
		rc = GW_EURITOOLONG;
	else if(head > HTTP_HEADERS_MAX)
		rc = GW_EHEADERS;
	else
		return false;
	status = http_status(rc);
	body = error_body(rc, &err);
	ms = clock_mono_ms() - rs->start_ms;
	http_routes_count(NULL, status, ms);
	log_request(method, NULL, status, ms);
	*ret = send_json(c, status, body, NULL, 0, NULL);
	json_decref(body);
	return true;
}

/* on_request - libmicrohttpd access handler: accumulate the body, then handle */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
	struct req_state *rs = *req_cls;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if(!rs) {
		const char *cl;
		rs = calloc(1, sizeof(*rs));
		if(!rs)
			return MHD_NO;
		rs->start_ms = clock_mono_ms();
		*req_cls = rs;
		conn_phase(c, PHASE_BODY);
		if(head_limits(c, url, method, rs, &ret))
			return ret;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if(cl && strtoull(cl, NULL, 10) > HTTP_BODY_MAX)
			rs->too_large = 1;
		return MHD_YES;
	}
	if(*upload_data_size) {
		if(!rs->too_large && rs->len + *upload_data_size > HTTP_BODY_MAX) {
			rs->too_large = 1;
			free(rs->body);
			rs->body = NULL;
			rs->len = 0;
		}
		if(!rs->too_large) {
			char *nb = realloc(rs->body, rs->len + *upload_data_size + 1);
			if(!nb)
				return MHD_NO;
			memcpy(nb + rs->len, upload_data, *upload_data_size);
			rs->len += *upload_data_size;
			nb[rs->len] = '\0';
			rs->body = nb;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return handle(c, url, method, rs);
}

/* on_completed - free the request state */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req_state *rs = *req_cls;

	(void)cls;
	(void)toe;
	conn_phase(c, PHASE_HEAD); /* a kept-alive connection waits for its next request's head */
	if(rs) {
		if(rs->wake)
			dispatch_wake();
		free(rs->body);
		free(rs);
		*req_cls = NULL;
	}
}

/* http_parse_listen - "host:port" into a sockaddr_in */
gw_rc http_parse_listen(const char *listen, struct sockaddr_in *sa, struct gw_err *err)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port;

	memset(sa, 0, sizeof(*sa));
	if(!colon || (size_t)(colon - listen) >= sizeof(host))
		return gw_err_set(err, GW_EINVAL, "listen", "--listen must be HOST:PORT");
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	port = strtol(colon + 1, &end, 10);
	if(*end || port < 0 || port > 65535)
		return gw_err_set(err, GW_EINVAL, "listen", "--listen port must be 0..65535");
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if(strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if(inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return gw_err_set(err, GW_EINVAL, "listen", "--listen host must be an IPv4 address");
	return GW_OK;
}

/* http_bind - the listening socket */
gw_rc http_bind(const char *listen_on, int *fd, struct gw_err *err)
{
	struct sockaddr_in sa;
	int s, one = 1;
	gw_rc rc;

	*fd = -1;
	rc = http_parse_listen(listen_on, &sa, err);
	if(rc)
		return rc;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if(s < 0)
		return gw_err_set(err, GW_EIO, "listen", "cannot make a socket: %s", strerror(errno));
	/* SO_REUSEADDR only: a restart may bind beside its old connections in TIME_WAIT, but on
	 * Linux never beside a live listener. SO_REUSEPORT (MHD_OPTION_LISTENING_ADDRESS_REUSE)
	 * would let a second gateway share the port and split the connections between the two. */
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if(bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;

		close(s);
		if(e == EADDRINUSE)
			return gw_err_set(err, GW_EIO, "listen", "%s is in use", listen_on);
		return gw_err_set(err, GW_EIO, "listen", "cannot listen on %s: %s", listen_on,
		                  strerror(e));
	}
	if(listen(s, 128) != 0) {
		int e = errno;

		close(s);
		return gw_err_set(err, GW_EIO, "listen", "cannot listen on %s: %s", listen_on,
		                  strerror(e));
	}
	*fd = s;
	return GW_OK;
}

/* mhd_log - libmicrohttpd's own messages, as JSON lines like every other */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t len;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while(len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	log_event("warn", "http_library", json_pack("{s:s}", "message", msg));
}

/* on_connection - MHD_OPTION_NOTIFY_CONNECTION: track each connection from start to close.
 * CLOSED comes before the library closes the socket, so a tracked fd is always still open. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct conn_info *ci = *socket_context;
	const union MHD_ConnectionInfo *fdi;

	(void)cls;
	if(toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = calloc(1, sizeof(*ci));
		if(!ci)
			return; /* untracked: only the inactivity timeout bounds it */
		fdi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		ci->fd = fdi ? fdi->connect_fd : MHD_INVALID_SOCKET;
		ci->peer = peer_addr(c);
		atomic_store(&ci->phase, PHASE_HEAD);
		atomic_store(&ci->since_ms, clock_mono_ms());
		pthread_mutex_lock(&conn_lock);
		ci->next = conns;
		if(conns)
			conns->prev = ci;
		conns = ci;
		conn_count++;
		pthread_mutex_unlock(&conn_lock);
		*socket_context = ci;
	} else if(toe == MHD_CONNECTION_NOTIFY_CLOSED && ci) {
		pthread_mutex_lock(&conn_lock);
		if(ci->prev)
			ci->prev->next = ci->next;
		else
			conns = ci->next;
		if(ci->next)
			ci->next->prev = ci->prev;
		conn_count--;
		pthread_mutex_unlock(&conn_lock);
		free(ci);
		*socket_context = NULL;
	}
}

/* accept_policy - refuse a peer that holds conns_per_addr connections already (trusted proxies
 * carry many clients and are exempt). Counted from the tracked list: at most a few accepts in
 * flight on other threads can pass the limit together. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
	uint32_t peer;
	struct conn_info *ci;
	unsigned n = 0;

	(void)cls;
	if(addr->sa_family != AF_INET || len < (socklen_t)sizeof(struct sockaddr_in))
		return MHD_YES;
	peer = ntohl(((const struct sockaddr_in *)(const void *)addr)->sin_addr.s_addr);
	if(config.ntrusted && cidr4_contains(config.trusted, config.ntrusted, peer))
		return MHD_YES;
	pthread_mutex_lock(&conn_lock);
	for(ci = conns; ci && n < config.conns_per_addr; ci = ci->next)
		n += ci->peer == peer;
	pthread_mutex_unlock(&conn_lock);
	if(n < config.conns_per_addr)
		return MHD_YES;
	atomic_fetch_add(&refused_total, 1);
	return MHD_NO;
}

/* reaper - every 200 ms, shut down connections past their phase's bound */
static void *reaper(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&conn_lock);
	while(!reaper_stop) {
		struct timespec ts;
		int64_t now = clock_mono_ms();
		struct conn_info *ci;

		for(ci = conns; ci; ci = ci->next) {
			int phase = atomic_load(&ci->phase);
			int64_t age = now - atomic_load(&ci->since_ms);

			if(ci->shut || ci->fd == MHD_INVALID_SOCKET || phase == PHASE_ANSWER)
				continue;
			if((phase == PHASE_HEAD && age > (int64_t)config.header_secs * 1000) ||
			   (phase == PHASE_BODY && age > (int64_t)config.body_secs * 1000)) {
				shutdown(ci->fd, SHUT_RDWR);
				ci->shut = true;
				atomic_fetch_add(&reaped_total, 1);
			}
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if(ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&reaper_cond, &conn_lock, &ts);
	}
	pthread_mutex_unlock(&conn_lock);
	return NULL;
}

/* http_limits_metrics - the abuse counters, for /metrics */
void http_limits_metrics(long long *reaped, long long *refused, long long *open)
{
	*reaped = atomic_load(&reaped_total);
	*refused = atomic_load(&refused_total);
	pthread_mutex_lock(&conn_lock);
	*open = (long long)conn_count;
	pthread_mutex_unlock(&conn_lock);
}

/* http_start - start the daemon on cfg->listen_fd */
gw_rc http_start(const struct http_config *cfg, struct gw_err *err)
{
	config = *cfg;
	if(!config.token_per_minute)
		config.token_per_minute = HTTP_DEF_TOKEN_PER_MINUTE;
	if(!config.conns_per_addr)
		config.conns_per_addr = HTTP_DEF_CONNS_PER_ADDR;
	if(!config.conns_total)
		config.conns_total = HTTP_DEF_CONNS_TOTAL;
	if(!config.header_secs)
		config.header_secs = HTTP_DEF_HEADER_SECS;
	if(!config.body_secs)
		config.body_secs = HTTP_DEF_BODY_SECS;
	if(pthread_key_create(&store_key, close_store) != 0)
		return gw_err_set(err, GW_EIO, "", "cannot create thread key");
	/* 16384 buckets (about 2 MB): per address and per organisation, least recently used out */
	limits = rl_create(16384);
	if(!limits)
		return gw_err_set(err, GW_ENOMEM, "", "out of memory");
	reaper_stop = false;
	if(pthread_create(&reaper_thread, NULL, reaper, NULL) != 0)
		return gw_err_set(err, GW_EIO, "", "cannot start the connection reaper");
	reaper_running = true;
	daemon_handle = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, &accept_policy,
	    NULL,
	    /* the logger first, so that no message of the library bypasses it */
	    &on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, &mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)cfg->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)(cfg->threads > 0 ? cfg->threads : 4), MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_IDLE_SECS, MHD_OPTION_CONNECTION_LIMIT, config.conns_total,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, &on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
	    &on_connection, NULL, MHD_OPTION_END);
	if(!daemon_handle) {
		http_stop();
		return gw_err_set(err, GW_EIO, "listen", "cannot serve on %s", cfg->listen);
	}
	return GW_OK;
}

/* http_stop - stop the daemon */
void http_stop(void)
{
	if(reaper_running) {
		pthread_mutex_lock(&conn_lock);
		reaper_stop = true;
		pthread_cond_signal(&reaper_cond);
		pthread_mutex_unlock(&conn_lock);
		pthread_join(reaper_thread, NULL);
		reaper_running = false;
	}
	if(daemon_handle) {
		MHD_stop_daemon(daemon_handle);
		daemon_handle = NULL;
	}
	rl_free(limits);
	limits = NULL;
}
