/*
 * provider.c - the small helpers every delivery provider shares (provider.h): reading its
 * config, filling a result, wiping secrets.
 *
 * Entry points: provider_str(), provider_cfg_str(), provider_cfg_secs(), provider_set(),
 * provider_wipe_free(). Threading: reentrant.
 */
#include "provider.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* provider_str - a string member, or NULL */
const char *provider_str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* provider_cfg_str - a non-empty string member of config, or NULL */
const char *provider_cfg_str(const json_t *c, const char *k)
{
	const char *s = json_string_value(json_object_get(c, k));

	return s && s[0] ? s : NULL;
}

/* provider_cfg_secs - a number of seconds (1..3600) or def */
long provider_cfg_secs(const json_t *c, const char *k, long def)
{
	const json_t *v = json_object_get(c, k);

	if(json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 3600)
		return (long)json_integer_value(v);
	return def;
}

/* provider_set - fill a provider result */
void provider_set(struct provider_result *res, enum provider_outcome o, int retry_after,
                  const char *what, const char *detail)
{
	res->outcome = o;
	res->retry_after = retry_after;
	snprintf(res->detail, sizeof(res->detail), "%.140s: %.360s", what, detail ? detail : "");
}

/* provider_wipe_free - free a string holding a secret */
void provider_wipe_free(char *s)
{
	if(s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}
