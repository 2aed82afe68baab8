/*
 * lc_auth.h - sign-in by emailed link, and the browser session it opens (API.md "Pages and
 * sign-in"; README "Signing in to the pages").
 *
 * Threading: the caller's store connection.
 */
#ifndef LC_AUTH_H
#define LC_AUTH_H

#include <stdint.h>
#include <time.h>

#include "common/crypto.h"
#include "common/gw.h"
#include "gateway/lifecycle/lc.h"
#include "store/store.h"

#define LC_SIGN_IN_SECS (15 * 60)      /* a sign-in link works this long, once */
#define LC_SESSION_SECS (12 * 60 * 60) /* a session lasts this long from the login (fixed) */

/* lc_sign_in - when email names an active trainer or org admin of org, record a new sign-in
 * link and enqueue its sign_in email (dedupe key "sign_in:{user}:{link}"), in one transaction,
 * and set *queued; otherwise write nothing (the email is rendered all the same, so both take
 * about as long). Either way GW_OK: the caller's answer must not tell the two apart, and the
 * caller wakes the dispatcher (dispatch_wake) only after that answer has gone. An error is
 * only a failure of the store. */
gw_rc lc_sign_in(struct store *st, const struct lc_env *env, int64_t org, const char *email,
                 bool *queued, struct gw_err *err);

/* The session lc_login opened: the cookie value and CSRF token (random, shown once: the
 * store keeps the cookie's hash), until when it lasts, and its user. */
struct lc_session {
	char cookie[CRYPTO_TOKEN_LEN];
	char csrf[CRYPTO_TOKEN_LEN];
	time_t expires_at;
	struct store_user user;
};

/* lc_login - use the sign-in link token (once, even racing) and open a session, in one
 * transaction. GW_EEXPIRED (410) for a used or expired link, or one whose user was
 * deactivated meanwhile; GW_ENOTFOUND (404) for an unknown one; nothing is written then. */
gw_rc lc_login(struct store *st, const char *token, struct lc_session *out, struct gw_err *err);

#endif
