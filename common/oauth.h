/*
 * oauth.h - the client side of the OAuth 2.0 authorization code grant (RFC 6749 4.1) with PKCE
 * (RFC 7636, S256), shared by the calendar providers that trainers connect (Google, Microsoft):
 * the code verifier and its challenge, the authorization request URL, and the token request
 * that exchanges the code for a refresh token.
 *
 * Nothing here touches the store: the caller keeps the state and the verifier.
 * Threading: reentrant; oauth_exchange() makes one outbound call (libcurl) with bounded
 * timeouts, and needs curl_global_init() to have run.
 */
#ifndef OAUTH_H
#define OAUTH_H

#include <stddef.h>

#include "gw.h"

#define OAUTH_VERIFIER_LEN  44 /* 43 unreserved characters (RFC 7636 4.1) + NUL */
#define OAUTH_CHALLENGE_LEN 44 /* base64url of a SHA-256, no padding + NUL */
#define OAUTH_DETAIL_LEN    400

/* oauth_pkce_verifier - a fresh code_verifier: 32 random bytes in base64url, 43 characters of
 * [A-Za-z0-9-_] (RFC 7636 4.1: high entropy, 43 to 128 characters). GW_EIO without entropy. */
gw_rc oauth_pkce_verifier(char out[OAUTH_VERIFIER_LEN]);

/* oauth_pkce_challenge - code_challenge = BASE64URL(SHA256(ASCII(code_verifier))), without
 * padding (RFC 7636 4.2, the S256 method). */
void oauth_pkce_challenge(const char *verifier, char out[OAUTH_CHALLENGE_LEN]);

/* oauth_authorize_url - base (the authorization endpoint, which may already hold a query) with
 * the parameters params appended, percent-encoded: "name", "value", ..., NULL. *out malloc'd,
 * caller frees. GW_EINVAL when a value cannot be encoded in URL_MAX bytes. */
gw_rc oauth_authorize_url(const char *base, const char *const *params, char **out);

struct netguard;

struct oauth_exchange {
	const char *token_url;
	const char *client_id;
	const char *client_secret;
	const char *code;
	const char *redirect_uri;
	const char *code_verifier;
	const char *scope;       /* sent with the token request when not NULL (Microsoft) */
	long connect_timeout_ms; /* 0: 10 s */
	long timeout_ms;         /* 0: 15 s: the browser waits for it */
	const struct netguard *guard; /* the operator's allowed ranges (netguard.h), or NULL:
	                               * public addresses only */
};

/* oauth_exchange - the token request (RFC 6749 4.1.3, RFC 7636 4.5): grant_type=
 * authorization_code with the code, redirect_uri, client_id, client_secret and code_verifier.
 * GW_OK: *refresh_token (malloc'd, caller wipes and frees) from the answer's refresh_token.
 * GW_EINVAL: the token endpoint refused (detail: its error code, e.g. "invalid_grant", and its
 * bounded description), or answered without a refresh token. GW_EIO: no usable answer (detail
 * says why: connection, timeout, 5xx). detail never holds a secret. */
gw_rc oauth_exchange(const struct oauth_exchange *x, char **refresh_token,
                     char detail[OAUTH_DETAIL_LEN]);

#endif
