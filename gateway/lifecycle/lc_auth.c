/*
 * lc_auth.c - sign-in by emailed link and the session it opens.
 *
 * The sign-in request writes the link and its email in one transaction (docs/design.md rule
 * 1: the dispatcher sends it). The login uses the link with one conditional UPDATE and creates
 * the session in the same transaction, so a link opens at most one session.
 *
 * Entry points: lc_sign_in(), lc_login().
 * Threading: the caller's connection.
 */
#include "lc_auth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "gateway/templates/tpl_auth.h"

/* the roles that sign in to the pages; a kiosk uses its own token */
#define SIGN_IN_ROLES (ROLE_ORG_ADMIN | ROLE_TRAINER)

/* decoy - render and serialise the email a user would get, and drop it: the work of the
 * answer for an address that may not sign in, so that its time does not tell */
static gw_rc decoy(const struct lc_env *env, const char *email, const char *token, time_t expires)
{
	struct tpl_env tenv = {.org_name = "-",
	                       .org_timezone = "UTC",
	                       .install_id = "-",
	                       .public_url = env->public_url,
	                       .now = clock_now()};
	json_t *user = json_pack("{s:s, s:s}", "email", email, "name", "");
	json_t *payload = NULL;
	char url[700], *text = NULL;
	gw_rc rc = GW_ENOMEM;

	snprintf(url, sizeof(url), "%s/login/%s", env->public_url, token);
	if(user && !(rc = tpl_sign_in(&tenv, "sign_in:0:0", user, url, expires, &payload))) {
		text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
		rc = text ? GW_OK : GW_ENOMEM;
	}
	free(text);
	json_decref(payload);
	json_decref(user);
	OPENSSL_cleanse(url, sizeof(url));
	return rc;
}

/* lc_sign_in - a link for a user who may sign in; nothing for anyone else */
gw_rc lc_sign_in(struct store *st, const struct lc_env *env, int64_t org, const char *email,
                 bool *queued, struct gw_err *err)
{
	json_t *user = NULL, *orgj = NULL, *payload = NULL;
	char token[CRYPTO_TOKEN_LEN] = "", hash[CRYPTO_HASH_HEX], url[700], key[96];
	struct tpl_env tenv;
	time_t now = clock_now(), expires = now + LC_SIGN_IN_SECS;
	int64_t id = 0, uid;
	gw_rc rc;

	*queued = false;
	/* made for every request, known or not: the answer takes about the same time */
	rc = crypto_token("", token, sizeof(token));
	if(rc)
		return rc;
	crypto_sha256_hex(token, strlen(token), hash);
	rc = store_begin(st);
	if(rc)
		goto done;
	rc = store_auth_signer(st, org, email, SIGN_IN_ROLES, &user);
	if(rc == GW_ENOTFOUND) {
		store_rollback(st);
		rc = decoy(env, email, token, expires);
		goto done;
	}
	if(rc)
		goto fail;
	uid = json_integer_value(json_object_get(user, "id"));
	if((rc = store_auth_link_add(st, org, uid, hash, now, expires, &id)) ||
	   (rc = lc_tpl_env(st, env, org, &orgj, &tenv)))
		goto fail;
	snprintf(url, sizeof(url), "%s/login/%s", env->public_url, token);
	snprintf(key, sizeof(key), "sign_in:%lld:%lld", (long long)uid, (long long)id);
	if((rc = tpl_sign_in(&tenv, key, user, url, expires, &payload)))
		goto fail;
	/* past the link's end the email is worthless: the outbox expires it instead */
	rc = lc_enqueue_email(st, org, "sign_in", key, 0, 0, payload, 0, expires, NULL, err);
	payload = NULL;
	if(rc)
		goto fail;
	if((rc = store_commit(st)))
		goto fail;
	*queued = true;
	goto done;
fail:
	store_rollback(st);
done:
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(url, sizeof(url));
	json_decref(payload);
	json_decref(user);
	json_decref(orgj);
	return rc;
}

/* lc_login - use the link, open the session */
gw_rc lc_login(struct store *st, const char *token, struct lc_session *out, struct gw_err *err)
{
	char hash[CRYPTO_HASH_HEX], shash[CRYPTO_HASH_HEX];
	time_t now = clock_now();
	int64_t uid = 0;
	gw_rc rc;

	memset(out, 0, sizeof(*out));
	crypto_sha256_hex(token, strlen(token), hash);
	if((rc = crypto_token("", out->cookie, sizeof(out->cookie))) ||
	   (rc = crypto_token("", out->csrf, sizeof(out->csrf))))
		goto clear;
	crypto_sha256_hex(out->cookie, strlen(out->cookie), shash);
	out->expires_at = now + LC_SESSION_SECS;
	rc = store_begin(st);
	if(rc)
		goto clear;
	rc = store_auth_link_take(st, hash, now, &uid);
	if(rc == GW_EEXPIRED) {
		rc = gw_err_set(err, rc, "",
		                "this sign-in link was used already or has expired; "
		                "ask for a new one");
		goto fail;
	}
	if(rc == GW_ENOTFOUND) {
		rc = gw_err_set(err, rc, "", "unknown sign-in link");
		goto fail;
	}
	if(rc || (rc = store_session_create(st, uid, shash, out->csrf, now, out->expires_at)) ||
	   (rc = store_session_user(st, shash, now, &out->user, out->csrf, sizeof(out->csrf))))
		goto fail;
	rc = store_commit(st);
	if(rc)
		goto fail;
	return GW_OK;
fail:
	store_rollback(st);
clear:
	OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}
