/*
 * tpl_test.h - the test email (kind test_email) an org admin sends to themself from the admin
 * page to see that the organisation's email provider delivers. Built on tpl_email (tpl.h).
 * Threading: reentrant.
 */
#ifndef TPL_TEST_H
#define TPL_TEST_H

#include <jansson.h>

#include "common/gw.h"
#include "gateway/templates/tpl.h"

/* tpl_test_email - "Test email from ORG" to user ({email, name}, borrowed). *out new
 * reference. */
gw_rc tpl_test_email(const struct tpl_env *env, const char *dedupe_key, const json_t *user,
                     json_t **out);

#endif
