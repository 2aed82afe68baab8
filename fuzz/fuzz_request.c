/*
 * fuzz_request.c - libFuzzer harness for request JSON: the body parser and every validator a
 * request body meets (settings PATCH, skills, e-mail, strings, times, the intake's fields).
 * Whatever the bytes, nothing may crash, leak or read out of bounds, and a refusal must name
 * a result code.
 *
 * Built two ways: with clang -fsanitize=fuzzer (make fuzz) to search, and with fuzz/replay.c
 * (make check) to replay the committed corpus under ASan+UBSan.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/jsonv.h"
#include "gateway/lifecycle/settings.h"
#include "common/timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_err err = {0};
	json_t *body = NULL, *next = NULL, *skills = NULL;
	const char *s;
	long long n;
	bool b, here;
	time_t t;

	if(jv_parse((const char *)data, size, &body, &err))
		return 0;
	if(!settings_patch(NULL, body, &next, &err))
		json_decref(next);
	(void)jv_skills(body, "skills", false, 50, &skills, &here, &err);
	json_decref(skills);
	(void)jv_email(body, "email", false, &s, &here, &err);
	(void)jv_string(body, "name", false, 1, 200, 0, &s, &here, &err);
	(void)jv_int(body, "session_type_id", false, 1, INT64_MAX, &n, &here, &err);
	(void)jv_bool(body, "confirm", false, &b, &here, &err);
	if(!jv_string(body, "start", false, 1, 64, 0, &s, &here, &err) && here)
		(void)timefmt_parse(s, &t);
	json_decref(body);
	return 0;
}
