/*
 * rest.c - the shared REST client over libcurl and jansson (rest.h).
 *
 * Entry points: rest_create(), rest_destroy(), rest_call(), rest_form_post(), rest_res_free(),
 * rest_retry_after(), rest_escape(), rest_clean().
 *
 * One easy handle per struct rest. Each call starts with curl_easy_reset(), which drops the
 * previous call's options but keeps the live connections and the DNS cache (libcurl's
 * documented behaviour), so calls to one host reuse one connection and no option of an earlier
 * call (a body, a method) leaks into the next.
 *
 * Threading: a struct rest belongs to one thread at a time.
 */
#include "rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "clock.h"

#define REST_CONNECT_MS 10000
#define REST_TIMEOUT_MS 30000
#define RETRY_AFTER_MAX 86400

struct rest {
	CURL *curl; /* one handle: its connection cache is reused */
	long connect_timeout_ms;
	long timeout_ms;
	char *ca_pem; /* from strdup() or NULL */
	/* the call in progress */
	struct rest_res *res; /* borrowed during one call */
	size_t cap;           /* allocated size of res->body */
	int too_big;
	char retry_after[64]; /* the Retry-After header's value */
	char content_type[128];
	char etag[REST_ETAG_LEN + 1]; /* one more: a value that did not fit is dropped */
	char errbuf[CURL_ERROR_SIZE];
	struct netguard guard; /* installed on curl at every call: it must not move */
};

/* rest_clean - printable ASCII only, white space folded, bounded */
void rest_clean(const char *s, size_t len, size_t max, char *buf, size_t n)
{
	size_t i, used = 0;
	int space = 0;

	if(n == 0)
		return;
	for(i = 0; s && i < len && i < max && used + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if(c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = used > 0;
			continue;
		}
		if(space && used + 2 < n)
			buf[used++] = ' ';
		space = 0;
		buf[used++] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
	}
	buf[used] = '\0';
}

/* rest_retry_after - delta-seconds or HTTP-date, RFC 9110 10.2.3 */
int rest_retry_after(const char *value, time_t now)
{
	const char *p;
	long long secs = 0;
	time_t at;

	if(!value)
		return -1;
	while(*value == ' ' || *value == '\t')
		value++;
	if(!*value)
		return -1;
	for(p = value; *p >= '0' && *p <= '9'; p++) {
		secs = secs * 10 + (*p - '0');
		if(secs > RETRY_AFTER_MAX)
			secs = RETRY_AFTER_MAX;
	}
	if(p != value) {
		while(*p == ' ' || *p == '\t')
			p++;
		return *p ? -1 : (int)secs;
	}
	/* curl_getdate reads the IMF-fixdate and the two obsolete forms RFC 9110 5.6.7 allows */
	at = curl_getdate(value, NULL);
	if(at == (time_t)-1)
		return -1;
	if(at <= now)
		return 0;
	return at - now > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : (int)(at - now);
}

/* rest_escape - percent-encode every byte but RFC 3986 unreserved ones */
gw_rc rest_escape(const char *s, char *buf, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t used = 0;

	for(; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		   c == '-' || c == '.' || c == '_' || c == '~') {
			if(used + 1 >= n)
				return GW_EINVAL;
			buf[used++] = (char)c;
		} else {
			if(used + 3 >= n)
				return GW_EINVAL;
			buf[used++] = '%';
			buf[used++] = hex[c >> 4];
			buf[used++] = hex[c & 15];
		}
	}
	if(n == 0)
		return GW_EINVAL;
	buf[used] = '\0';
	return GW_OK;
}

/* rest_create - the client and its handle */
gw_rc rest_create(const struct rest_opts *opts, struct rest **out)
{
	struct rest *r;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if(!r)
		return GW_ENOMEM;
	r->connect_timeout_ms =
	        opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : REST_CONNECT_MS;
	r->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : REST_TIMEOUT_MS;
	r->curl = curl_easy_init();
	if(opts && opts->guard)
		r->guard = *opts->guard;
	if(opts && opts->ca_pem)
		r->ca_pem = strdup(opts->ca_pem);
	if(!r->curl || (opts && opts->ca_pem && !r->ca_pem)) {
		rest_destroy(r);
		return GW_ENOMEM;
	}
	*out = r;
	return GW_OK;
}

/* rest_destroy - free the handle (and its connections) */
void rest_destroy(struct rest *r)
{
	if(!r)
		return;
	if(r->curl)
		curl_easy_cleanup(r->curl);
	free(r->ca_pem);
	free(r);
}

/* rest_res_free - free body and json */
void rest_res_free(struct rest_res *res)
{
	if(!res)
		return;
	free(res->body);
	json_decref(res->json);
	res->body = NULL;
	res->json = NULL;
	res->body_len = 0;
}

/* on_body - CURLOPT_WRITEFUNCTION: collect the answer, at most REST_BODY_MAX bytes */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct rest *r = userp;
	struct rest_res *res = r->res;
	size_t n = size * nmemb;

	if(res->body_len + n > REST_BODY_MAX) {
		r->too_big = 1;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if(res->body_len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *nb;

		while(cap < res->body_len + n + 1)
			cap *= 2;
		nb = realloc(res->body, cap);
		if(!nb)
			return 0;
		res->body = nb;
		r->cap = cap;
	}
	memcpy(res->body + res->body_len, data, n);
	res->body_len += n;
	res->body[res->body_len] = '\0';
	return n;
}

/* header_value - copy the value of header line (n bytes) into buf when its name is name */
static void header_value(const char *line, size_t n, const char *name, char *buf, size_t bn)
{
	size_t nl = strlen(name), i, k = 0;

	if(n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	for(i = nl + 1; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	for(; i < n && line[i] != '\r' && line[i] != '\n' && k + 1 < bn; i++)
		buf[k++] = line[i];
	buf[k] = '\0';
}

/* on_header - CURLOPT_HEADERFUNCTION: Retry-After, Content-Type and ETag of the final answer */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct rest *r = userp;
	size_t n = size * nmemb;

	if(n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new status line (after a 100 Continue): forget the headers before it */
		r->retry_after[0] = '\0';
		r->content_type[0] = '\0';
		r->etag[0] = '\0';
	}
	header_value(data, n, "Retry-After", r->retry_after, sizeof(r->retry_after));
	header_value(data, n, "Content-Type", r->content_type, sizeof(r->content_type));
	header_value(data, n, "ETag", r->etag, sizeof(r->etag));
	return n;
}

/* is_json - does the answer's Content-Type say JSON ("application/json", "...+json")? */
static int is_json(const char *ct)
{
	const char *semi = strchr(ct, ';');
	size_t n = semi ? (size_t)(semi - ct) : strlen(ct);

	while(n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* method_ok - an HTTP token (RFC 9110 5.6.2) of capital letters: GET, PROPFIND, ... */
static int method_ok(const char *m)
{
	size_t i;

	for(i = 0; m[i]; i++)
		if(m[i] < 'A' || m[i] > 'Z')
			return 0;
	return i > 0 && i <= 16;
}

/* perform - set up the handle for one request and run it */
static gw_rc perform(struct rest *r, const char *method, const char *url,
                     struct curl_slist *headers, const char *body, size_t body_len,
                     struct rest_res *res)
{
	CURL *h = r->curl;
	CURLcode cc = CURLE_OK;

	curl_easy_reset(h);
	r->res = res;
	r->cap = 0;
	r->too_big = 0;
	r->retry_after[0] = '\0';
	r->content_type[0] = '\0';
	r->etag[0] = '\0';
	r->errbuf[0] = '\0';
#define SET(opt, val)                                       \
	do {                                                \
		if(!cc)                                     \
			cc = curl_easy_setopt(h, opt, val); \
	} while(0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if(r->ca_pem) {
		struct curl_blob blob = {r->ca_pem, strlen(r->ca_pem), CURL_BLOB_COPY};
		SET(CURLOPT_CAINFO_BLOB, &blob);
	}
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_USERAGENT, "ordinatus-gateway");
	SET(CURLOPT_HTTPHEADER, headers);
	if(strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, method);
		if(body) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
			SET(CURLOPT_POSTFIELDS, body);
		} else if(strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
		          strcmp(method, "PATCH") == 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
			SET(CURLOPT_POSTFIELDS, "");
		}
	}
#undef SET
	/* after curl_easy_reset(): the guard is an option like any other */
	if(!cc)
		cc = netguard_curl(&r->guard, h);
	if(cc) {
		snprintf(res->detail, sizeof(res->detail), "libcurl refused an option: %s",
		         curl_easy_strerror(cc));
		r->res = NULL;
		return GW_EINVAL;
	}
	cc = curl_easy_perform(h);
	r->res = NULL;
	res->curl_code = (int)cc;
	if(cc != CURLE_OK) {
		res->status = 0;
		if(netguard_blocked(&r->guard)) {
			/* nothing was connected: no far side's words, one answer for every port */
			res->refused = 1;
			snprintf(res->detail, sizeof(res->detail), "%s", NETGUARD_REFUSED);
		} else if(r->too_big)
			snprintf(res->detail, sizeof(res->detail),
			         "the answer was longer than %d bytes", REST_BODY_MAX);
		else
			snprintf(res->detail, sizeof(res->detail), "curl error %d: %s", (int)cc,
			         r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
		return GW_EIO;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
	res->retry_after = r->retry_after[0] ? rest_retry_after(r->retry_after, clock_now()) : -1;
	if(strlen(r->etag) < sizeof(res->etag) && !strpbrk(r->etag, "\r\n"))
		memcpy(res->etag, r->etag, strlen(r->etag) + 1);
	if(res->body && is_json(r->content_type))
		res->json = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, NULL);
	if(res->status < 200 || res->status > 299) {
		char said[REST_ERRBODY_MAX + 1];

		rest_clean(res->body, res->body_len, REST_ERRBODY_MAX, said, sizeof(said));
		snprintf(res->detail, sizeof(res->detail), "HTTP %ld%s%s", res->status,
		         said[0] ? ": " : "", said);
	}
	return GW_OK;
}

/* res_reset - an empty result */
static void res_reset(struct rest_res *res)
{
	memset(res, 0, sizeof(*res));
	res->retry_after = -1;
}

/* rest_call - one request with a JSON or raw body */
gw_rc rest_call(struct rest *r, const struct rest_req *req, struct rest_res *res)
{
	struct curl_slist *hl = NULL, *t;
	char *json_text = NULL, line[4200];
	const char *body = req->body;
	size_t body_len = req->body_len, i;
	gw_rc rc = GW_OK;

	res_reset(res);
	if(!req->method || !method_ok(req->method) || !req->url ||
	   (strncmp(req->url, "https://", 8) != 0 && strncmp(req->url, "http://", 7) != 0)) {
		snprintf(res->detail, sizeof(res->detail), "not a usable request");
		return GW_EINVAL;
	}
	if(req->json) {
		json_text = json_dumps(req->json, JSON_COMPACT);
		if(!json_text) {
			rc = GW_ENOMEM;
			goto out;
		}
		body = json_text;
		body_len = strlen(json_text);
		hl = curl_slist_append(hl, "Content-Type: application/json");
	} else if(body && req->content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
		hl = curl_slist_append(hl, line);
	}
	if((t = curl_slist_append(hl, "Accept: application/json")))
		hl = t;
	/* no "Expect: 100-continue" round trip before a body */
	if((t = curl_slist_append(hl, "Expect:")))
		hl = t;
	if(req->bearer) {
		if(strlen(req->bearer) > sizeof(line) - 32 || strpbrk(req->bearer, "\r\n")) {
			rc = GW_EINVAL;
			snprintf(res->detail, sizeof(res->detail), "unusable access token");
			goto out;
		}
		snprintf(line, sizeof(line), "Authorization: Bearer %s", req->bearer);
		t = curl_slist_append(hl, line);
		memset(line, 0, sizeof(line));
		if(!t) {
			rc = GW_ENOMEM;
			goto out;
		}
		hl = t;
	}
	for(i = 0; req->headers && req->headers[i]; i++) {
		if(strpbrk(req->headers[i], "\r\n")) {
			rc = GW_EINVAL;
			snprintf(res->detail, sizeof(res->detail), "a header holds CR or LF");
			goto out;
		}
		if(!(t = curl_slist_append(hl, req->headers[i]))) {
			rc = GW_ENOMEM;
			goto out;
		}
		hl = t;
	}
	if(!hl) {
		rc = GW_ENOMEM;
		goto out;
	}
	rc = perform(r, req->method, req->url, hl, body, body_len, res);
out:
	/* the list held the bearer token: wipe it before it goes back to the allocator */
	for(t = hl; t; t = t->next)
		if(strncmp(t->data, "Authorization:", 14) == 0)
			memset(t->data, 0, strlen(t->data));
	curl_slist_free_all(hl);
	free(json_text);
	if(rc == GW_ENOMEM)
		snprintf(res->detail, sizeof(res->detail), "out of memory");
	return rc;
}

/* rest_form_post - an application/x-www-form-urlencoded POST */
gw_rc rest_form_post(struct rest *r, const char *url, const char *const *fields,
                     struct rest_res *res)
{
	struct rest_req req = {0};
	char *form = NULL;
	size_t cap = 1, used = 0, i;
	gw_rc rc;

	res_reset(res);
	for(i = 0; fields[i] && fields[i + 1]; i += 2)
		cap += 3 * (strlen(fields[i]) + strlen(fields[i + 1])) + 2;
	form = malloc(cap);
	if(!form) {
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		return GW_ENOMEM;
	}
	form[0] = '\0';
	for(i = 0; fields[i] && fields[i + 1]; i += 2) {
		if(used)
			form[used++] = '&';
		if(rest_escape(fields[i], form + used, cap - used))
			break;
		used += strlen(form + used);
		form[used++] = '=';
		if(rest_escape(fields[i + 1], form + used, cap - used))
			break;
		used += strlen(form + used);
	}
	req.method = "POST";
	req.url = url;
	req.body = form;
	req.body_len = used;
	req.content_type = "application/x-www-form-urlencoded";
	rc = rest_call(r, &req, res);
	/* the form held the client secret and the refresh token */
	memset(form, 0, cap);
	free(form);
	return rc;
}
