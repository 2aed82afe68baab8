/*
 * http.h - the HTTP API server (libmicrohttpd): routing, bearer auth, organisation scoping,
 * body limits, the contract's error body (docs/openapi.yaml), and the one table from gw_rc to
 * HTTP status.
 *
 * Threading: libmicrohttpd serves from a small thread pool; each thread opens its own store
 * connection on first use (closed when the thread ends).
 */
#ifndef HTTP_H
#define HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/gw.h"
#include "common/netaddr.h"
#include "common/ratelimit.h"
#include "gateway/lifecycle/lc.h"
#include "store/store.h"

#define HTTP_BODY_MAX (64 * 1024)

/* Request heads: our own JSON 414 and 431 answer a request target or a header block over these;
 * libmicrohttpd's memory pool per connection (HTTP_CONN_MEMORY) is set well above their sum,
 * so that the library's own (HTML) 414/431 is reached only past that. */
#define HTTP_URI_MAX      (8 * 1024)
#define HTTP_HEADERS_MAX  (16 * 1024)
#define HTTP_CONN_MEMORY  (64 * 1024)
#define HTTP_MAX_TRUSTED  16

/* Defaults of the operator's limits (serve options). */
#define HTTP_DEF_TOKEN_PER_MINUTE 120 /* link, survey, feed, manage routes per client address */
#define HTTP_DEF_CONNS_PER_ADDR   64  /* open connections per peer address */
#define HTTP_DEF_CONNS_TOTAL      4000
#define HTTP_DEF_HEADER_SECS      10  /* to receive a request's headers (or the next request) */
#define HTTP_DEF_BODY_SECS        30  /* to receive its body after the headers */
#define HTTP_IDLE_SECS            30  /* libmicrohttpd's inactivity timeout (answer in flight) */

struct http_config {
	const char *listen;     /* "127.0.0.1:8080", for messages */
	int listen_fd;          /* bound and listening (http_bind); the daemon takes it over */
	const char *public_url; /* no trailing slash */
	const char *db_path;
	const char *data_dir;
	const unsigned char *master_key;
	const json_t *allow_outbound; /* serve --allow-outbound CIDR strings, or NULL (borrowed) */
	bool test_clock;
	const char *web_dir;    /* serve --web: pages read from this folder, or NULL: embedded */
	bool allow_plain_auth; /* serve --allow-plain-auth: SMTP AUTH over security "none" */
	int threads;
	const struct cidr4 *trusted; /* --trust-proxy ranges (ntrusted of them) */
	size_t ntrusted;
	unsigned token_per_minute;   /* 0: the default */
	unsigned conns_per_addr;     /* 0: the default */
	unsigned conns_total;        /* 0: the default */
	unsigned header_secs;        /* 0: the default */
	unsigned body_secs;          /* 0: the default */
};

/* One request as a handler sees it. Everything is borrowed for the handler's call. */
struct http_req {
	const char *method;
	const char *path;
	int64_t id[4];         /* integer path parameters, in order */
	const char *str[2];    /* string path parameters, in order */
	json_t *body;          /* parsed object, or NULL when the route takes none */
	struct store *st;      /* this thread's connection */
	bool authed;           /* a valid token was given */
	struct store_user user;
	struct lc_actor actor;
	const struct http_config *cfg;
	struct MHD_Connection *conn;
	struct gw_err err;
	int status;            /* success status to send (default 200) */
	char *text;            /* malloc'd non-JSON answer (e.g. /metrics), or NULL */
	const char *content_type; /* of text */
	char *location;        /* malloc'd Location of a redirect (r->status 302), or NULL */
	struct http_page *page; /* malloc'd page or asset answer (http_static.c), or NULL */
	char client[NETADDR_LEN]; /* the client's address (the peer, or X-Forwarded-For from a
	                           * trusted proxy) */
	unsigned retry_after;     /* seconds, for a GW_ERATE answer */
	/* cookie sessions (http_auth.c): authed by the session cookie rather than a bearer
	 * token, that session's hash and CSRF token; and a Set-Cookie value to send with the
	 * answer, whatever it is (malloc'd, or NULL) */
	bool via_cookie;
	char session_hash[CRYPTO_HASH_HEX];
	char csrf[CRYPTO_TOKEN_LEN];
	char *set_cookie;
	bool wake_after; /* wake the dispatcher once the answer has gone (http_auth.c) */
};

/* The session cookie's name (README "Signing in to the pages"). */
#define HTTP_SESSION_COOKIE "ordinatus_session"

/* http_parse_listen - "HOST:PORT" (IPv4 or localhost) into *sa; GW_EINVAL naming listen. */
struct sockaddr_in;
gw_rc http_parse_listen(const char *listen_on, struct sockaddr_in *sa, struct gw_err *err);

/* http_bind - a listening socket on "HOST:PORT" in *fd (caller owns it until http_start).
 * A port another process listens on is GW_EIO "HOST:PORT is in use": never shared. */
gw_rc http_bind(const char *listen_on, int *fd, struct gw_err *err);

/* http_start - serve on cfg->listen_fd (bound by http_bind). */
gw_rc http_start(const struct http_config *cfg, struct gw_err *err);

/* http_stop - stop accepting, finish requests in flight, stop the threads. */
void http_stop(void);

/* http_limits_metrics - connections shut down for slowness, and refused as one address's
 * connections over the limit, since start; connections open now. */
void http_limits_metrics(long long *reaped, long long *refused, long long *open);

/* http_status - the HTTP status of a result code (the one table). */
int http_status(gw_rc rc);

/* http_query - a query-string value (borrowed) or NULL. */
const char *http_query(struct http_req *r, const char *key);

/* http_query_enum - the query value key, which must be one of choices (NULL-terminated) when
 * present: *out borrowed, or NULL when absent; GW_EINVAL naming key and the choices. */
gw_rc http_query_enum(struct http_req *r, const char *key, const char *const *choices,
                      const char **out);

/* http_require_org - the caller may act in org with one of roles (bits); a platform admin
 * passes when ROLE_PLATFORM_ADMIN is among them. GW_EUNAUTH without a token, GW_ENOTFOUND for
 * another organisation's token, GW_EFORBIDDEN without the role. */
gw_rc http_require_org(struct http_req *r, int64_t org, int roles);

/* http_rate_limit - take one request of key from the limit kind allowing per_minute requests a
 * minute (burst as many): GW_OK, or GW_ERATE with r->retry_after and the message set (the
 * answer is 429 rate_limited with Retry-After). The reusable per-key limiter: time is the
 * monotonic clock. */
gw_rc http_rate_limit(struct http_req *r, enum rl_kind kind, const char *key,
                      unsigned per_minute);

/* http_rate_limit_burst - http_rate_limit with a burst other than per_minute: burst requests
 * at once, then per_minute a minute. */
gw_rc http_rate_limit_burst(struct http_req *r, enum rl_kind kind, const char *key,
                            unsigned per_minute, unsigned burst);

/* Handlers (http_api.c): fill *out (new reference) and r->status, or return an error. */
typedef gw_rc (*http_handler)(struct http_req *r, json_t **out);

#endif
