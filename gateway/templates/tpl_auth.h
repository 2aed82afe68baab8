/*
 * tpl_auth.h - the sign-in email (kind sign_in): the one-time link {public_url}/login/{token}
 * to a trainer or org admin who asked to sign in. Built on tpl_email (tpl.h), like every email.
 * Threading: reentrant.
 */
#ifndef TPL_AUTH_H
#define TPL_AUTH_H

#include <jansson.h>
#include <time.h>

#include "common/gw.h"
#include "gateway/templates/tpl.h"

/* tpl_sign_in - "Your sign-in link for ORG" to user ({email, name}, borrowed): link_url (the
 * link with its token, borrowed) and until when it works (expires_at, shown in the
 * organisation's zone), once. *out new reference. */
gw_rc tpl_sign_in(const struct tpl_env *env, const char *dedupe_key, const json_t *user,
                  const char *link_url, time_t expires_at, json_t **out);

#endif
