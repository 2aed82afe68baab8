/*
 * test_bearer.c - the token endpoint's answers as the REST providers take them
 * (common/bearer.c): a table of answers (status, JSON body, Retry-After) for a provider that
 * does not rotate refresh tokens and one that does (Microsoft), each with the outcome, whether
 * an access token is set, and which refresh token is kept. The HTTP side (the token request,
 * the refresh on a 401) is tested against the fakes by tests/integration/test_gcal.py and
 * test_outlook.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/bearer.h"

static const char *const google_revoked[] = {"invalid_grant", NULL};
static const char *const ms_revoked[] = {"invalid_grant", "interaction_required", NULL};

struct answer_case {
	const char *name;
	bool rotate;
	long status;
	const char *body; /* JSON, or NULL for no JSON body */
	int retry_after;
	bool ok;                          /* bearer_answer's result */
	enum provider_outcome outcome;    /* when !ok */
	int want_retry;                   /* when !ok */
	const char *access;               /* when ok */
	const char *refresh;              /* the refresh token kept */
	const char *detail_has;           /* when !ok: words the detail must hold */
};

static const struct answer_case answer_cases[] = {
    {"a token", false, 200, "{\"access_token\": \"ya29.a\", \"expires_in\": 3599}", -1, true, 0,
     0, "ya29.a", "rt-old", NULL},
    {"a token without expires_in", false, 200, "{\"access_token\": \"ya29.b\"}", -1, true, 0, 0,
     "ya29.b", "rt-old", NULL},
    {"a rotated refresh token is ignored without rotate", false, 200,
     "{\"access_token\": \"t\", \"refresh_token\": \"rt-new\"}", -1, true, 0, 0, "t", "rt-old",
     NULL},
    {"Microsoft: the rotated refresh token is kept", true, 200,
     "{\"access_token\": \"t\", \"refresh_token\": \"rt-new\"}", -1, true, 0, 0, "t", "rt-new",
     NULL},
    {"Microsoft: an unusable refresh token is not kept", true, 200,
     "{\"access_token\": \"t\", \"refresh_token\": \"has space\"}", -1, true, 0, 0, "t",
     "rt-old", NULL},
    {"2xx without access_token", false, 200, "{\"token_type\": \"Bearer\"}", -1, false,
     PROVIDER_TRANSIENT, -1, NULL, "rt-old", "no usable access_token"},
    {"2xx with an empty access_token", false, 200, "{\"access_token\": \"\"}", -1, false,
     PROVIDER_TRANSIENT, -1, NULL, "rt-old", "no usable access_token"},
    {"an access_token with a CR LF", false, 200, "{\"access_token\": \"a\\r\\nX-Evil: 1\"}", -1,
     false, PROVIDER_TRANSIENT, -1, NULL, "rt-old", "no usable access_token"},
    {"2xx that is not JSON", false, 200, NULL, -1, false, PROVIDER_TRANSIENT, -1, NULL, "rt-old",
     "no usable access_token"},
    {"invalid_grant: the grant is gone", false, 400,
     "{\"error\": \"invalid_grant\", \"error_description\": \"Token has been expired or "
     "revoked.\"}",
     -1, false, PROVIDER_AUTH_REVOKED, -1, NULL, "rt-old", "must reconnect"},
    {"Microsoft: interaction_required is a revoked grant", true, 400,
     "{\"error\": \"interaction_required\"}", -1, false, PROVIDER_AUTH_REVOKED, -1, NULL,
     "rt-old", "must reconnect"},
    {"Google: interaction_required is the client's settings", false, 400,
     "{\"error\": \"interaction_required\"}", -1, false, PROVIDER_PERMANENT, -1, NULL, "rt-old",
     "client settings"},
    {"invalid_client: the organisation's settings", false, 401,
     "{\"error\": \"invalid_client\"}", -1, false, PROVIDER_PERMANENT, -1, NULL, "rt-old",
     "client settings"},
    {"429 with Retry-After", false, 429, "{\"error\": \"rate_limited\"}", 30, false,
     PROVIDER_TRANSIENT, 30, NULL, "rt-old", "token endpoint"},
    {"503 without a body", false, 503, NULL, -1, false, PROVIDER_TRANSIENT, -1, NULL, "rt-old",
     "token endpoint"},
    {"an error that is not a string", false, 400, "{\"error\": {\"code\": 1}}", -1, false,
     PROVIDER_PERMANENT, -1, NULL, "rt-old", "client settings"},
};

static void test_answers(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(answer_cases) / sizeof(answer_cases[0]); i++) {
		const struct answer_case *k = &answer_cases[i];
		struct bearer b;
		struct rest_res rr;
		struct provider_result res;
		bool ok;

		print_message("case: %s\n", k->name);
		assert_int_equal(bearer_init(&b, NULL, "Tester", NULL,
		                             k->rotate ? ms_revoked : google_revoked, k->rotate,
		                             "https://token.example/token", "cid", "csecret", "rt-old"),
		                 GW_OK);
		memset(&rr, 0, sizeof(rr));
		memset(&res, 0, sizeof(res));
		rr.status = k->status;
		rr.retry_after = k->retry_after;
		rr.json = k->body ? json_loads(k->body, 0, NULL) : NULL;
		snprintf(rr.detail, sizeof(rr.detail), "HTTP %ld: %s", k->status,
		         k->body ? k->body : "");
		ok = bearer_answer(&b, &rr, &res);
		assert_int_equal(ok, k->ok);
		if(ok) {
			assert_string_equal(b.access, k->access);
			assert_true(b.access_until_ms > 0);
		} else {
			assert_int_equal(res.outcome, k->outcome);
			assert_int_equal(res.retry_after, k->want_retry);
			assert_string_equal(b.access, "");
			assert_non_null(strstr(res.detail, k->detail_has));
			assert_non_null(strstr(res.detail, "Tester"));
			assert_null(strstr(res.detail, "csecret"));
		}
		assert_string_equal(b.refresh_token, k->refresh);
		json_decref(rr.json);
		bearer_clear(&b);
		assert_null(b.client_secret);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
