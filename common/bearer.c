/*
 * bearer.c - OAuth 2.0 access tokens from a refresh token for the REST providers (bearer.h).
 *
 * The token request (RFC 6749 6): POST token_url as application/x-www-form-urlencoded with
 * grant_type=refresh_token, refresh_token, client_id, client_secret and, where the far side
 * wants it, scope. The answer (RFC 6749 5.1) is {"access_token", "token_type": "Bearer",
 * "expires_in", ...}; Microsoft's also carries a new "refresh_token" to use from then on. An
 * error answer (RFC 6749 5.2) is {"error": code, "error_description": ...}: a code in the
 * provider's revoked list (invalid_grant: revoked, expired or the password changed) means only
 * the user can fix it.
 *
 * Entry points: bearer_init(), bearer_clear(), bearer_answer(), bearer_call().
 * Threading: one struct bearer per provider context (one worker thread).
 */
#include "bearer.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define TOKEN_MARGIN_MS 60000 /* refresh a minute before the token runs out */

/* bearer_clear - free and wipe */
void bearer_clear(struct bearer *b)
{
	if(!b)
		return;
	free(b->token_url);
	free(b->client_id);
	provider_wipe_free(b->client_secret);
	provider_wipe_free(b->refresh_token);
	OPENSSL_cleanse(b->access, sizeof(b->access));
	memset(b, 0, sizeof(*b));
}

/* bearer_init - copies of the settings */
gw_rc bearer_init(struct bearer *b, struct rest *rest, const char *who, const char *scope,
                  const char *const *revoked, bool rotate, const char *token_url,
                  const char *client_id, const char *client_secret, const char *refresh_token)
{
	memset(b, 0, sizeof(*b));
	b->rest = rest;
	b->who = who;
	b->scope = scope;
	b->revoked = revoked;
	b->rotate = rotate;
	b->token_url = strdup(token_url);
	b->client_id = strdup(client_id);
	b->client_secret = strdup(client_secret);
	b->refresh_token = strdup(refresh_token);
	if(!b->token_url || !b->client_id || !b->client_secret || !b->refresh_token) {
		bearer_clear(b);
		return GW_ENOMEM;
	}
	return GW_OK;
}

/* usable - a token that can go into a header or a form: visible ASCII, bounded */
static bool usable(const char *t)
{
	size_t i;

	if(!t || !t[0] || strlen(t) >= BEARER_TOKEN_MAX)
		return false;
	for(i = 0; t[i]; i++)
		if((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
			return false;
	return true;
}

/* set - fill a provider result: who, what happened, and the far side's words */
static void set(struct provider_result *res, enum provider_outcome o, int retry_after,
                const char *who, const char *what, const char *detail)
{
	res->outcome = o;
	res->retry_after = retry_after;
	snprintf(res->detail, sizeof(res->detail), "%s %.100s: %.380s", who, what, detail);
}

/* is_revoked - is code one of the provider's revoked-grant codes */
static bool is_revoked(const struct bearer *b, const char *code)
{
	size_t i;

	for(i = 0; code && b->revoked && b->revoked[i]; i++)
		if(strcmp(code, b->revoked[i]) == 0)
			return true;
	return false;
}

/* bearer_answer - the token endpoint's answer */
bool bearer_answer(struct bearer *b, const struct rest_res *rr, struct provider_result *res)
{
	const char *err = json_string_value(json_object_get(rr->json, "error"));
	const char *tok, *rt;
	json_int_t expires;

	b->access[0] = '\0';
	if(rr->status >= 200 && rr->status <= 299) {
		tok = json_string_value(json_object_get(rr->json, "access_token"));
		expires = json_integer_value(json_object_get(rr->json, "expires_in"));
		if(!usable(tok)) {
			set(res, PROVIDER_TRANSIENT, -1, b->who, "token endpoint",
			    "the answer has no usable access_token");
			return false;
		}
		snprintf(b->access, sizeof(b->access), "%s", tok);
		if(expires <= 0 || expires > 86400 * 30)
			expires = 3600;
		b->access_until_ms = clock_mono_ms() + (int64_t)expires * 1000 - TOKEN_MARGIN_MS;
		rt = json_string_value(json_object_get(rr->json, "refresh_token"));
		if(b->rotate && usable(rt) && strcmp(rt, b->refresh_token) != 0) {
			char *copy = strdup(rt);

			if(copy) {
				provider_wipe_free(b->refresh_token);
				b->refresh_token = copy;
			}
		}
		return true;
	}
	if(is_revoked(b, err))
		set(res, PROVIDER_AUTH_REVOKED, -1, b->who,
		    "refused the calendar grant (the trainer must reconnect the calendar)",
		    rr->detail);
	else if(rr->status == 429 || rr->status >= 500)
		set(res, PROVIDER_TRANSIENT, rr->retry_after, b->who, "token endpoint", rr->detail);
	else
		/* invalid_client, unauthorized_client, invalid_request, invalid_scope */
		set(res, PROVIDER_PERMANENT, -1, b->who,
		    "token endpoint refused the organisation's client settings", rr->detail);
	return false;
}

/* refresh - a new access token */
static bool refresh(struct bearer *b, struct provider_result *res)
{
	const char *fields[] = {"grant_type",
	                        "refresh_token",
	                        "client_id",
	                        b->client_id,
	                        "client_secret",
	                        b->client_secret,
	                        "refresh_token",
	                        b->refresh_token,
	                        b->scope ? "scope" : NULL,
	                        b->scope,
	                        NULL};
	struct rest_res rr;
	bool ok;

	b->access[0] = '\0';
	if(rest_form_post(b->rest, b->token_url, fields, &rr)) {
		/* a refused address stays refused: the settings or the operator must change */
		set(res, rr.refused ? PROVIDER_PERMANENT : PROVIDER_TRANSIENT, -1, b->who,
		    "token endpoint", rr.detail);
		rest_res_free(&rr);
		return false;
	}
	ok = bearer_answer(b, &rr, res);
	rest_res_free(&rr);
	return ok;
}

/* bearer_call - one API call with a valid access token, refreshed once on a 401 */
bool bearer_call(struct bearer *b, struct rest_req *q, const char *what, struct rest_res *rr,
                 struct provider_result *res)
{
	bool refreshed = false;

	for(;;) {
		if(!b->access[0] || clock_mono_ms() >= b->access_until_ms) {
			if(!refresh(b, res))
				return false;
			refreshed = true;
		}
		q->bearer = b->access;
		if(rest_call(b->rest, q, rr)) {
			res->outcome = rr->refused ? PROVIDER_PERMANENT : PROVIDER_TRANSIENT;
			res->retry_after = -1;
			snprintf(res->detail, sizeof(res->detail), "%.120s: %.380s", what,
			         rr->detail);
			rest_res_free(rr);
			return false;
		}
		if(rr->status != 401 || refreshed)
			return true;
		/* the access token expired or was revoked early: a fresh one, once */
		rest_res_free(rr);
		b->access[0] = '\0';
	}
}
