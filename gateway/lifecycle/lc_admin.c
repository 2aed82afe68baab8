/*
 * lc_admin.c - what an organisation admin does that is neither a request nor a booking: the
 * test email sent to themself through the outbox, so the email provider (SMTP with DKIM, or
 * the maildir) is shown to work end to end by the path every email takes.
 *
 * Entry points: lc_test_email().
 * Threading: the caller's store connection.
 */
#include <stdio.h>
#include <string.h>

#include "common/crypto.h"
#include "gateway/delivery/dispatch.h"
#include "gateway/templates/tpl_test.h"
#include "lc.h"

/* lc_test_email - one test_email row to the admin acting, in one transaction */
gw_rc lc_test_email(struct store *st, const struct lc_env *env, int64_t org,
                    const struct lc_actor *actor, json_t **out, struct gw_err *err)
{
	json_t *user = NULL, *orgj = NULL, *payload = NULL;
	struct tpl_env tenv;
	char tok[CRYPTO_TOKEN_LEN], key[96];
	gw_rc rc;

	*out = NULL;
	if(!(actor->roles & ROLE_ORG_ADMIN) || actor->org_id != org || actor->user_id <= 0)
		return gw_err_set(err, GW_EFORBIDDEN, "",
		                  "only an org admin sends a test email (to themself)");
	/* every click is its own email: a random part in the key, never a dedupe hit */
	if((rc = crypto_token("", tok, sizeof(tok))))
		return rc;
	snprintf(key, sizeof(key), "test_email:%lld:%.16s", (long long)actor->user_id, tok);
	if((rc = store_begin(st)))
		return rc;
	if((rc = store_user_get(st, org, actor->user_id, &user)) ||
	   (rc = lc_tpl_env(st, env, org, &orgj, &tenv)) ||
	   (rc = tpl_test_email(&tenv, key, user, &payload)))
		goto fail;
	rc = lc_enqueue_email(st, org, "test_email", key, 0, 0, payload, 0, 0, NULL, err);
	payload = NULL; /* taken */
	if(rc)
		goto fail;
	if((rc = store_commit(st)))
		goto done;
	dispatch_wake();
	*out = json_pack("{s:s, s:O, s:s}", "kind", "test_email", "to",
	                 json_object_get(user, "email"), "dedupe_key", key);
	if(!*out)
		rc = GW_ENOMEM;
	goto done;
fail:
	store_rollback(st);
done:
	json_decref(payload);
	json_decref(user);
	json_decref(orgj);
	return rc;
}
