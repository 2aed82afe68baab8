/*
 * http_auth.c - sign-in by emailed link, the session cookie and its CSRF token (API.md "Pages
 * and sign-in"; README "Signing in to the pages").
 *
 * POST /v1/auth/sign-in answers 202 {} for every well-formed request, whether or not the
 * address belongs to someone who may sign in, so the answer tells nobody which addresses are
 * known. POST /v1/auth/login uses the link's token and sets the session cookie (HttpOnly,
 * SameSite=Lax, Secure with an https public URL). The API takes the cookie beside bearer
 * tokens (http.c authenticate); a state-changing call made with it needs X-CSRF-Token equal to
 * the session's token (the synchronizer token pattern, OWASP CSRF Prevention Cheat Sheet),
 * and, when the browser sends Origin, the public URL's origin (RFC 6454 7).
 *
 * Entry points: http_auth_sign_in(), http_auth_login(), http_auth_session(),
 * http_auth_sign_out(), http_auth_cookie(), http_auth_csrf().
 * Threading: MHD's threads, each with its own store connection.
 */
#include <ctype.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/jsonv.h"
#include "gateway/lifecycle/lc_auth.h"
#include "http_routes.h"

/* sign-ins per email address: 5 at once, then one a minute */
#define SIGN_IN_BURST      5
#define SIGN_IN_PER_MINUTE 1

/* secure_url - does the public URL use https (then the cookie is Secure)? */
static bool secure_url(const struct http_req *r)
{
	return r->cfg->public_url && strncasecmp(r->cfg->public_url, "https://", 8) == 0;
}

/* set_cookie - the Set-Cookie value of the answer: value for max_age seconds ("" and 0 clear
 * it). GW_ENOMEM when it cannot be made. */
static gw_rc set_cookie(struct http_req *r, const char *value, long max_age)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax%s",
	         HTTP_SESSION_COOKIE, value, max_age, secure_url(r) ? "; Secure" : "");
	free(r->set_cookie);
	r->set_cookie = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return r->set_cookie ? GW_OK : GW_ENOMEM;
}

/* session_body - {user:{id, org_id, name, email, roles}, csrf_token} of r's user */
static json_t *session_body(const struct store_user *u, const char *csrf)
{
	static const char *const names[] = {"platform_admin", "org_admin", "trainer", "kiosk"};
	json_t *roles = json_array();
	size_t i;

	for(i = 0; roles && i < GW_ARRAY_LEN(names); i++)
		if(u->roles & (1 << i))
			json_array_append_new(roles, json_string(names[i]));
	if(!roles)
		return NULL;
	return json_pack("{s:{s:I, s:I, s:s, s:s, s:o}, s:s}", "user", "id", (json_int_t)u->id,
	                 "org_id", (json_int_t)u->org_id, "name", u->name, "email", u->email,
	                 "roles", roles, "csrf_token", csrf);
}

/* http_auth_sign_in - POST /v1/auth/sign-in {email, org}: 202 {} whoever it names */
gw_rc http_auth_sign_in(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"email", "org", NULL};
	struct lc_env env = {.public_url = r->cfg->public_url};
	const char *email;
	char key[256];
	long long org;
	bool queued;
	size_t i;
	gw_rc rc;

	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_email(r->body, "email", true, &email, NULL, &r->err)) ||
	   (rc = jv_int(r->body, "org", true, 1, INT64_MAX, &org, NULL, &r->err)))
		return rc;
	/* per address, whichever organisation: the limit is the same for known and unknown ones */
	for(i = 0; email[i] && i + 1 < sizeof(key); i++)
		key[i] = (char)tolower((unsigned char)email[i]);
	key[i] = '\0';
	rc = http_rate_limit_burst(r, RL_SIGN_IN, key, SIGN_IN_PER_MINUTE, SIGN_IN_BURST);
	if(rc)
		return rc;
	rc = lc_sign_in(r->st, &env, org, email, &queued, &r->err);
	if(rc)
		return rc;
	r->wake_after = queued; /* after the answer: the send does not slow it down */
	r->status = 202;
	*out = json_object();
	return *out ? GW_OK : GW_ENOMEM;
}

/* http_auth_login - POST /v1/auth/login {token}: the session, and its cookie */
gw_rc http_auth_login(struct http_req *r, json_t **out)
{
	static const char *const keys[] = {"token", NULL};
	struct lc_session s;
	const char *token;
	gw_rc rc;

	if((rc = jv_only(r->body, keys, &r->err)) ||
	   (rc = jv_string(r->body, "token", true, 1, 200, 0, &token, NULL, &r->err)))
		return rc;
	rc = lc_login(r->st, token, &s, &r->err);
	if(rc)
		return rc;
	rc = set_cookie(r, s.cookie, LC_SESSION_SECS);
	if(!rc) {
		*out = session_body(&s.user, s.csrf);
		rc = *out ? GW_OK : GW_ENOMEM;
	}
	OPENSSL_cleanse(&s, sizeof(s));
	return rc;
}

/* http_auth_session - GET /v1/auth/session: who the cookie signs in, or 401 */
gw_rc http_auth_session(struct http_req *r, json_t **out)
{
	if(!r->via_cookie) {
		/* a stale cookie is of no use any more: let the browser drop it */
		if(MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE) &&
		   !r->authed)
			set_cookie(r, "", 0);
		return gw_err_set(&r->err, GW_EUNAUTH, "",
		                  "not signed in (no session, or it ended)");
	}
	*out = session_body(&r->user, r->csrf);
	return *out ? GW_OK : GW_ENOMEM;
}

/* http_auth_sign_out - POST /v1/auth/sign-out: the session ends, the cookie is cleared */
gw_rc http_auth_sign_out(struct http_req *r, json_t **out)
{
	gw_rc rc;

	if(r->via_cookie && (rc = store_session_end(r->st, r->session_hash)))
		return rc;
	if((rc = set_cookie(r, "", 0)))
		return rc;
	*out = json_object();
	return *out ? GW_OK : GW_ENOMEM;
}

/* cookie_ok - 43 base64url characters: what crypto_token makes (anything else is not ours) */
static bool cookie_ok(const char *v)
{
	size_t n = 0;

	for(; v[n]; n++)
		if(!isalnum((unsigned char)v[n]) && v[n] != '-' && v[n] != '_')
			return false;
	return n == CRYPTO_TOKEN_LEN - 1;
}

/* http_auth_cookie - the session of the cookie, if it is live */
gw_rc http_auth_cookie(struct http_req *r)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE);
	gw_rc rc;

	if(!v || !cookie_ok(v))
		return GW_OK;
	crypto_sha256_hex(v, strlen(v), r->session_hash);
	rc = store_session_user(r->st, r->session_hash, clock_now(), &r->user, r->csrf,
	                        sizeof(r->csrf));
	if(rc == GW_EUNAUTH) {
		r->session_hash[0] = '\0';
		return GW_OK;
	}
	if(rc)
		return rc;
	r->authed = true;
	r->via_cookie = true;
	r->actor.user_id = r->user.id;
	r->actor.org_id = r->user.org_id;
	r->actor.roles = r->user.roles;
	return GW_OK;
}

/* origin_ok - is origin the public URL's origin (scheme://host[:port], compared without case)?
 */
static bool origin_ok(const struct http_req *r, const char *origin)
{
	const char *u = r->cfg->public_url, *host, *end;
	size_t n;

	if(!u || !(host = strstr(u, "://")))
		return false;
	end = strchr(host + 3, '/');
	n = end ? (size_t)(end - u) : strlen(u);
	return strlen(origin) == n && strncasecmp(origin, u, n) == 0;
}

/* http_auth_csrf - the checks of a state-changing call made with the cookie */
gw_rc http_auth_csrf(struct http_req *r)
{
	const char *origin, *token;
	size_t n;

	if(strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ||
	   strcmp(r->method, "OPTIONS") == 0)
		return GW_OK;
	origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
	if(origin && !origin_ok(r, origin))
		return gw_err_set(&r->err, GW_EFORBIDDEN, "",
		                  "a change made with the session cookie must come from %.200s",
		                  r->cfg->public_url ? r->cfg->public_url : "the gateway's pages");
	token = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-CSRF-Token");
	n = strlen(r->csrf);
	if(!token || !n || strlen(token) != n || CRYPTO_memcmp(token, r->csrf, n) != 0)
		return gw_err_set(&r->err, GW_EFORBIDDEN, "", "missing or wrong CSRF token");
	return GW_OK;
}
