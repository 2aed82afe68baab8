/*
 * oauth.c - OAuth 2.0 authorization code grant with PKCE, client side (oauth.h).
 *
 * Entry points: oauth_pkce_verifier(), oauth_pkce_challenge(), oauth_authorize_url(),
 * oauth_exchange().
 *
 * RFC 7636 4.1-4.2: the verifier is 32 random octets in base64url (43 characters), the S256
 * challenge the base64url SHA-256 of it, both without padding; appendix B's test vector is in
 * tests/unit/test_oauth.c. RFC 6749 4.1.3 and 5.1-5.2: the token request is a form POST, the
 * answer JSON with a refresh_token (Google gives one for access_type=offline; Microsoft for the
 * offline_access scope), an error answer {"error", "error_description"}.
 *
 * Threading: reentrant; one struct rest per exchange.
 */
#include "oauth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "rest.h"

#define URL_MAX 8192

/* b64url - base64url without padding of len bytes into out (4*ceil(len/3)+1 bytes) */
static void b64url(const unsigned char *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	int i;

	for(i = 0; i < n; i++) {
		if(out[i] == '+')
			out[i] = '-';
		else if(out[i] == '/')
			out[i] = '_';
	}
	while(n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
}

/* oauth_pkce_verifier - a fresh code_verifier */
gw_rc oauth_pkce_verifier(char out[OAUTH_VERIFIER_LEN])
{
	return crypto_token("", out, OAUTH_VERIFIER_LEN);
}

/* oauth_pkce_challenge - the S256 code_challenge of verifier */
void oauth_pkce_challenge(const char *verifier, char out[OAUTH_CHALLENGE_LEN])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char enc[48];

	SHA256((const unsigned char *)verifier, strlen(verifier), md);
	b64url(md, sizeof(md), enc); /* 43 characters */
	memcpy(out, enc, OAUTH_CHALLENGE_LEN - 1);
	out[OAUTH_CHALLENGE_LEN - 1] = '\0';
}

/* oauth_authorize_url - base plus the encoded parameters */
gw_rc oauth_authorize_url(const char *base, const char *const *params, char **out)
{
	char *url = malloc(URL_MAX), *enc = malloc(URL_MAX);
	size_t used;
	gw_rc rc = GW_OK;
	int i;

	*out = NULL;
	if(!url || !enc) {
		rc = GW_ENOMEM;
		goto out;
	}
	used = (size_t)snprintf(url, URL_MAX, "%s", base);
	if(used >= URL_MAX) {
		rc = GW_EINVAL;
		goto out;
	}
	for(i = 0; params[i] && params[i + 1]; i += 2) {
		int n;

		if((rc = rest_escape(params[i + 1], enc, URL_MAX)))
			goto out;
		n = snprintf(url + used, URL_MAX - used, "%s%s=%s",
		             i == 0 && !strchr(base, '?') ? "?" : "&", params[i], enc);
		if(n < 0 || (size_t)n >= URL_MAX - used) {
			rc = GW_EINVAL;
			goto out;
		}
		used += (size_t)n;
	}
	*out = url;
	url = NULL;
out:
	free(url);
	free(enc);
	return rc;
}

/* oauth_exchange - the code for a refresh token */
gw_rc oauth_exchange(const struct oauth_exchange *x, char **refresh_token,
                     char detail[OAUTH_DETAIL_LEN])
{
	struct rest_opts opts = {0};
	struct rest *r = NULL;
	struct rest_res res = {0};
	const char *fields[16];
	const char *err, *desc, *rt;
	char clean_err[64], clean_desc[300];
	int n = 0;
	gw_rc rc;

	*refresh_token = NULL;
	detail[0] = '\0';
	opts.connect_timeout_ms = x->connect_timeout_ms > 0 ? x->connect_timeout_ms : 10000;
	opts.timeout_ms = x->timeout_ms > 0 ? x->timeout_ms : 15000;
	opts.guard = x->guard;
	fields[n++] = "grant_type";
	fields[n++] = "authorization_code";
	fields[n++] = "code";
	fields[n++] = x->code;
	fields[n++] = "redirect_uri";
	fields[n++] = x->redirect_uri;
	fields[n++] = "client_id";
	fields[n++] = x->client_id;
	fields[n++] = "client_secret";
	fields[n++] = x->client_secret;
	fields[n++] = "code_verifier";
	fields[n++] = x->code_verifier;
	if(x->scope) {
		fields[n++] = "scope";
		fields[n++] = x->scope;
	}
	fields[n] = NULL;
	if((rc = rest_create(&opts, &r))) {
		snprintf(detail, OAUTH_DETAIL_LEN, "cannot make an HTTP client: %s",
		         gw_rc_name(rc));
		return rc;
	}
	rc = rest_form_post(r, x->token_url, fields, &res);
	if(rc) {
		snprintf(detail, OAUTH_DETAIL_LEN, "the token endpoint did not answer: %.300s",
		         res.detail);
		rc = rc == GW_ENOMEM ? rc : GW_EIO;
		goto out;
	}
	err = json_string_value(json_object_get(res.json, "error"));
	desc = json_string_value(json_object_get(res.json, "error_description"));
	if(res.status >= 200 && res.status <= 299) {
		rt = json_string_value(json_object_get(res.json, "refresh_token"));
		if(!rt || !rt[0] || strlen(rt) > 2048 || strpbrk(rt, "\r\n")) {
			snprintf(detail, OAUTH_DETAIL_LEN,
			         "the token endpoint gave no refresh token (offline access was not "
			         "granted)");
			rc = GW_EINVAL;
			goto out;
		}
		*refresh_token = strdup(rt);
		rc = *refresh_token ? GW_OK : GW_ENOMEM;
		goto out;
	}
	if(err && res.status >= 400 && res.status < 500) {
		/* RFC 6749 5.2: invalid_grant (a wrong, used or expired code, or a verifier that
		 * does not match), invalid_client, ... */
		rest_clean(err, strlen(err), 60, clean_err, sizeof(clean_err));
		rest_clean(desc ? desc : "", desc ? strlen(desc) : 0, 200, clean_desc,
		           sizeof(clean_desc));
		snprintf(detail, OAUTH_DETAIL_LEN, "%s%s%s", clean_err, clean_desc[0] ? ": " : "",
		         clean_desc);
		rc = GW_EINVAL;
		goto out;
	}
	snprintf(detail, OAUTH_DETAIL_LEN, "the token endpoint failed: %.300s", res.detail);
	rc = GW_EIO;
out:
	rest_res_free(&res);
	rest_destroy(r);
	return rc;
}
