/*
 * fuzz_settings.c - libFuzzer harness for the settings PATCH (gateway/lifecycle/settings.c):
 * the body of PATCH /v1/orgs/{org}/settings against a stored object that is not the defaults.
 *
 * Beyond "no crash, no leak", it checks what the contract promises of a PATCH:
 * - a refused patch says why (a message) and leaves the stored settings as they were, with no
 * result;
 * - an accepted one stores only known settings (the keys of settings_defaults()), and storing
 *   it again (the result patched onto itself) is accepted and changes nothing: values come
 *   back normalised, never in a form the validator would refuse on the next PATCH.
 * A broken promise aborts, which libFuzzer reports as a crash.
 *
 * Built two ways: with clang -fsanitize=fuzzer (make fuzz) to search, and with fuzz/replay.c
 * (make check) to replay the committed corpus under ASan+UBSan.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonv.h"
#include "gateway/lifecycle/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* stored_start - what an earlier PATCH stored (not the defaults): a merged checkin, two
 * reminders, a policy; NULL when settings_patch refuses it */
static json_t *stored_start(void)
{
	json_t *p = json_pack("{s:s, s:s, s:{s:i}, s:b}", "reminder_hours", "24, 1",
	                      "completion_policy", "auto_close", "checkin", "window_before_minutes",
	                      10, "survey_enabled", 0);
	json_t *out = NULL;
	struct gw_err err = {0};

	if(p && settings_patch(NULL, p, &out, &err))
		out = NULL;
	json_decref(p);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_err err = {0};
	json_t *patch = NULL, *stored = NULL, *before = NULL, *next = NULL, *again = NULL;
	json_t *defaults = NULL, *eff = NULL, *v;
	const char *key;

	if(jv_parse((const char *)data, size, &patch, &err))
		return 0;
	stored = stored_start();
	before = json_deep_copy(stored);
	defaults = settings_defaults();
	if(!stored || !before || !defaults)
		abort();
	if(settings_patch(stored, patch, &next, &err)) {
		/* refused: a reason, no result, the stored object untouched (the field is named
		 * too, except for the empty key "", which has no name to give) */
		if(next || !err.message[0] || !json_equal(stored, before))
			abort();
		goto out;
	}
	if(!next || !json_equal(stored, before))
		abort();
	json_object_foreach(next, key, v)
	{
		if(!json_object_get(defaults, key))
			abort();
	}
	memset(&err, 0, sizeof(err));
	if(settings_patch(next, next, &again, &err) || !json_equal(again, next))
		abort();
	eff = settings_effective(next);
	if(!eff || json_object_size(eff) != json_object_size(defaults))
		abort();
out:
	json_decref(eff);
	json_decref(again);
	json_decref(next);
	json_decref(defaults);
	json_decref(before);
	json_decref(stored);
	json_decref(patch);
	return 0;
}
