/*
 * http.c - the libmicrohttpd server: request state, body limit, routing, auth, errors.
 *
 * Entry points: http_parse_listen(), http_bind(), http_start(), http_stop(), http_status(),
 * http_query(), http_query_enum(), http_require_org().
 * Threading: MHD's thread pool; per-request state lives in *req_cls from the first callback to
 * the completion callback (libmicrohttpd examples); per-thread store connections are opened on
 * first use and closed by a pthread key destructor.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "http_routes.h"
#include "common/jsonv.h"
#include "common/log.h"

struct req_state {
	char *body;     /* malloc'd, up to HTTP_BODY_MAX */
	size_t len;
	int too_large;
	int64_t start_ms;
};

static struct MHD_Daemon *daemon_handle;
static struct http_config config;
static pthread_key_t store_key;

/* The one table from result code to HTTP status. */
static const int status_table[GW_RC_COUNT] = {
    [GW_OK] = 200,        [GW_ENOMEM] = 503,     [GW_EJSON] = 400,     [GW_EINVAL] = 400,
    [GW_EUNAUTH] = 401,   [GW_EFORBIDDEN] = 403, [GW_ENOTFOUND] = 404, [GW_ECLAIMED] = 409,
    [GW_ESTATE] = 409,    [GW_ESLOT] = 409,      [GW_EEXPIRED] = 410,  [GW_ETOOLARGE] = 413,
    [GW_ERATE] = 429,     [GW_EEXISTS] = 409,    [GW_EDB] = 500,       [GW_EIO] = 500,
    [GW_EBUSY] = 503,     [GW_EVERSION] = 500,   [GW_ECONFIG] = 500,   [GW_EMETHOD] = 405,
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

/* send_json - queue a JSON response; allow: the Allow header of a 405, or NULL */
static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *body,
                                 const char *allow)
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

/* authenticate - resolve the bearer token, if any */
static gw_rc authenticate(struct http_req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
	char hash[CRYPTO_HASH_HEX];
	gw_rc rc;

	if(!h)
		return GW_OK;
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
	route = http_route_find(method, url, &r, allow, sizeof(allow));
	if(route && rs->too_large) {
		rc = GW_ETOOLARGE;
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
		ret = send_json(c, status, body, allow[0] ? allow : NULL);
		json_decref(body);
		return ret;
	}
	r.st = thread_store();
	if(!r.st) {
		rc = GW_EDB;
		goto out;
	}
	rc = authenticate(&r);
	if(rc)
		goto out;
	if(route->body == HTTP_BODY_REQUIRED ||
	   (route->body == HTTP_BODY_OPTIONAL && rs->len > 0)) {
		rc = jv_parse(rs->body, rs->len, &r.body, &r.err);
		if(rc)
			goto out;
	}
	rc = route->handler(&r, &out);
out:
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
	if(!rc && r.location) {
		ret = send_redirect(c, status, r.location);
	} else if(!rc && r.text) {
		ret = send_text(c, status, r.text, r.content_type);
		r.text = NULL;
	} else {
		ret = send_json(c, status, out, NULL);
	}
	json_decref(out);
	json_decref(r.body);
	free(r.text);
	free(r.location);
	return ret;
}

/* on_request - libmicrohttpd access handler: accumulate the body, then handle */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
	struct req_state *rs = *req_cls;

	(void)cls;
	(void)version;
	if(!rs) {
		const char *cl;
		rs = calloc(1, sizeof(*rs));
		if(!rs)
			return MHD_NO;
		rs->start_ms = clock_mono_ms();
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if(cl && strtoull(cl, NULL, 10) > HTTP_BODY_MAX)
			rs->too_large = 1;
		*req_cls = rs;
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
	(void)c;
	(void)toe;
	if(rs) {
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

/* http_start - start the daemon on cfg->listen_fd */
gw_rc http_start(const struct http_config *cfg, struct gw_err *err)
{
	config = *cfg;
	if(pthread_key_create(&store_key, close_store) != 0)
		return gw_err_set(err, GW_EIO, "", "cannot create thread key");
	daemon_handle = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    /* the logger first, so that no message of the library bypasses it */
	    &on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, &mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)cfg->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)(cfg->threads > 0 ? cfg->threads : 4), MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_NOTIFY_COMPLETED,
	    &on_completed, NULL, MHD_OPTION_END);
	if(!daemon_handle)
		return gw_err_set(err, GW_EIO, "listen", "cannot serve on %s", cfg->listen);
	return GW_OK;
}

/* http_stop - stop the daemon */
void http_stop(void)
{
	if(daemon_handle) {
		MHD_stop_daemon(daemon_handle);
		daemon_handle = NULL;
	}
}
