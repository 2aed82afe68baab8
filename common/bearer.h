/*
 * bearer.h - an OAuth 2.0 access token from a refresh token (RFC 6749 section 6), for the REST
 * providers that call an API on a user's or an organisation's behalf (Google Calendar,
 * Microsoft Graph, ...): the token request, the token kept until a minute before it expires
 * (on the monotonic clock: the far side's clock is real whatever the test clock says), one
 * refresh and repeat on a 401, and the token endpoint's answer classified as a provider
 * outcome. One implementation, so each provider only says what differs (its name, the scope,
 * whether the refresh token rotates, which error codes mean the grant is gone).
 *
 * Threading: a struct bearer belongs to its provider context, so to one worker thread.
 */
#ifndef BEARER_H
#define BEARER_H

#include <stdbool.h>
#include <stdint.h>

#include "gw.h"
#include "provider.h"
#include "rest.h"

#define BEARER_TOKEN_MAX 8192 /* access and refresh tokens longer than this are refused */

struct bearer {
	struct rest *rest;          /* borrowed: the provider's client */
	const char *who;            /* "Google", "Microsoft": named in details; static */
	const char *scope;          /* sent with the token request, or NULL; static */
	const char *const *revoked; /* token endpoint error codes that mean the grant is gone
	                             * (RFC 6749 5.2 invalid_grant, ...); NULL-terminated, static */
	bool rotate;                /* adopt a new refresh_token from an answer (Microsoft) */
	char *token_url;            /* from strdup() */
	char *client_id;            /* from strdup() */
	char *client_secret;        /* from strdup(); wiped when cleared */
	char *refresh_token;        /* from strdup(), or the newest one; wiped when cleared */
	char access[BEARER_TOKEN_MAX]; /* the current access token, or "" */
	int64_t access_until_ms;       /* clock_mono_ms() after which it is not used */
};

/* bearer_init - b for rest with copies of the strings; who, scope and revoked are kept as
 * given (static). GW_ENOMEM; on failure b is cleared. */
gw_rc bearer_init(struct bearer *b, struct rest *rest, const char *who, const char *scope,
                  const char *const *revoked, bool rotate, const char *token_url,
                  const char *client_id, const char *client_secret, const char *refresh_token);

/* bearer_clear - free and wipe what b holds; b may be all zero. */
void bearer_clear(struct bearer *b);

/* bearer_answer - take the token endpoint's answer rr (borrowed): true with b->access set from
 * a 2xx that has a usable access_token (and, with rotate, a new refresh token adopted); false
 * with res filled: a revoked code (PROVIDER_AUTH_REVOKED), 429 or 5xx (transient with the
 * Retry-After), an unusable 2xx (transient), any other refusal (permanent: the client
 * settings). Pure apart from clock_mono_ms(): the fuzz harness feeds it any answer. */
bool bearer_answer(struct bearer *b, const struct rest_res *rr, struct provider_result *res);

/* bearer_call - q (its bearer is set here) with a valid access token, refreshed first when
 * there is none or it runs out, and once more on a 401. true with the answer in rr (caller
 * frees with rest_res_free); false with res filled (no token, or no answer: transient, what
 * names the call). */
bool bearer_call(struct bearer *b, struct rest_req *q, const char *what, struct rest_res *rr,
                 struct provider_result *res);

#endif
