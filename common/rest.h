/*
 * rest.h - the one REST client every HTTP provider shares (Google Calendar now; Microsoft
 * Graph, Zoho and CalDAV later): libcurl + jansson.
 *
 * A struct rest holds one CURL easy handle, so the connections of one worker are reused from
 * call to call. A call is one request: a method (GET, POST, PATCH, PUT, DELETE, or a WebDAV
 * verb for CalDAV), a URL, optional bearer token and extra headers, and a JSON or raw body. Its
 * answer is the HTTP status, the body (raw, and parsed when it is JSON), the Retry-After of the
 * far side (delta-seconds or HTTP-date, RFC 9110 10.2.3), its ETag and, for anything but 2xx, a
 * detail line: "HTTP 409: " and the far side's error body, bounded and with control characters
 * replaced, or libcurl's words when there was no answer. Never a token or a secret.
 *
 * TLS is always verified (peer and host name), against the system store or a CA given as PEM
 * in memory. Only http and https are spoken; redirects are not followed. Connections go to
 * public addresses and the operator's allowed ranges only (netguard.h): a refused address is
 * never connected to, and the call fails with detail NETGUARD_REFUSED and res->refused set.
 *
 * Threading: a struct rest belongs to one thread at a time. curl_global_init() must have run.
 */
#ifndef REST_H
#define REST_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "gw.h"
#include "netguard.h"

#define REST_BODY_MAX    (1024 * 1024) /* answers longer than this fail the call */
#define REST_DETAIL_LEN  512
#define REST_ERRBODY_MAX 300 /* bytes of the far side's error body kept in detail */
#define REST_ETAG_LEN    256

struct rest; /* opaque */

struct rest_opts {
	long connect_timeout_ms; /* 0: 10 s */
	long timeout_ms;         /* the whole call; 0: 30 s */
	const char *ca_pem;      /* PEM certificates to trust instead of the system store, or NULL
	                          * (copied by libcurl) */
	const struct netguard *guard; /* the allow list beyond public addresses (copied), or NULL:
	                               * public addresses only */
};

struct rest_req {
	const char *method; /* "GET", "POST", "PATCH", "PUT", "DELETE", ... */
	const char *url;    /* absolute http(s) URL, already escaped */
	const char *bearer; /* access token for "Authorization: Bearer", or NULL */
	const json_t *json; /* JSON body (Content-Type: application/json), or NULL */
	const char *body;   /* raw body when json is NULL, or NULL */
	size_t body_len;
	const char *content_type;   /* of the raw body */
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
};

struct rest_res {
	long status;     /* HTTP status; 0 when no answer came */
	int curl_code;   /* CURLcode of the transfer (0: an answer came) */
	int retry_after; /* seconds the far side asked to wait, or -1 */
	int refused;     /* the outbound guard refused every address: nothing was connected */
	char *body;      /* malloc'd, NUL-terminated (body_len bytes), or NULL: rest_res_free */
	size_t body_len;
	json_t *json; /* the body parsed when it is a JSON value (new reference), or NULL */
	char etag[REST_ETAG_LEN]; /* the answer's ETag, verbatim with its quotes (RFC 9110 8.8.3:
	                           * CalDAV's If-Match), or "" when none or too long */
	char detail[REST_DETAIL_LEN]; /* "" on 2xx; else what went wrong, bounded, no controls */
};

/* rest_create - a client with its CURL handle. *out: caller frees (rest_destroy). */
gw_rc rest_create(const struct rest_opts *opts, struct rest **out);

/* rest_destroy - close the connections and free; accepts NULL. */
void rest_destroy(struct rest *r);

/* rest_call - one request. GW_OK when an HTTP answer came, whatever its status (res filled);
 * GW_EIO when none did (connection refused, timeout, TLS, answer over REST_BODY_MAX: res->detail
 * says which, res->status 0); GW_EINVAL for an unusable request; GW_ENOMEM. res is reset first
 * and must be freed with rest_res_free() in every case. */
gw_rc rest_call(struct rest *r, const struct rest_req *req, struct rest_res *res);

/* rest_form_post - POST fields as application/x-www-form-urlencoded (the OAuth 2.0 token
 * endpoint, RFC 6749 4.1.3 and 6): fields is "name", "value", ..., NULL; values are escaped
 * here. Same results as rest_call. */
gw_rc rest_form_post(struct rest *r, const char *url, const char *const *fields,
                     struct rest_res *res);

/* rest_res_free - free what a call left in res (body, json); res can be reused. */
void rest_res_free(struct rest_res *res);

/* rest_retry_after - a Retry-After value (RFC 9110 10.2.3: delta-seconds, or an HTTP-date
 * compared with now) as seconds from now, at most a day; -1 when unusable. A date in the past
 * is 0. */
int rest_retry_after(const char *value, time_t now);

/* rest_escape - s percent-encoded for a URL path segment or query value (RFC 3986 2.1), into
 * buf (n bytes); GW_EINVAL when it does not fit. */
gw_rc rest_escape(const char *s, char *buf, size_t n);

/* rest_clean - copy at most max bytes of s (len bytes) into buf (n bytes) with every control
 * character or byte outside printable ASCII replaced by '?' and runs of white space folded:
 * the far side's words made safe for a log line or a delivery row. */
void rest_clean(const char *s, size_t len, size_t max, char *buf, size_t n);

#endif
