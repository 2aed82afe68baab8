/*
 * test_zoho.c - the Zoho Assist provider's pure parts (providers/zoho/zoho.c), table-driven: the
 * Schedule Session request made from a payload (ms times, the zone's utc_offset on that date,
 * what is refused), the answer parser (www.zoho.com/assist/api/schedulesession.html's
 * representation), and what a token answer without an access token means. Its HTTP side is
 * tested against tests/helpers/fake_zoho.py by tests/integration/test_zoho.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <curl/curl.h>

#include "common/tz.h"
#include "providers/zoho/zoho.h"

static const struct body_case {
	const char *name;
	const char *payload; /* JSON */
	const char *dept;
	gw_rc rc;
	const char *field;  /* GW_EINVAL: the field named */
	long long time_ms, upto_ms;
	const char *offset, *zone;
} body_cases[] = {
        {"winter, Berlin", "{\"start\":\"2026-12-02T09:00:00Z\",\"end\":\"2026-12-02T10:00:00Z\","
         "\"timezone\":\"Europe/Berlin\",\"title\":\"Yoga with Cleo\","
         "\"customer\":{\"name\":\"Cleo\",\"email\":\"cleo@example.test\"}}",
         "42", GW_OK, NULL, 1796202000000LL, 1796205600000LL, "+01:00", "Europe/Berlin"},
        {"summer, Berlin", "{\"start\":\"2027-07-01T09:00:00Z\",\"end\":\"2027-07-01T10:30:00Z\","
         "\"timezone\":\"Europe/Berlin\",\"title\":\"T\",\"customer\":{\"email\":\"c@x.test\"}}",
         NULL, GW_OK, NULL, 1814432400000LL, 1814437800000LL, "+02:00", "Europe/Berlin"},
        {"Kolkata, half hours", "{\"start\":\"2026-12-02T09:00:00Z\",\"end\":\"2026-12-02T10:00:00Z\","
         "\"timezone\":\"Asia/Kolkata\",\"title\":\"T\",\"customer\":{\"email\":\"c@x.test\"}}",
         NULL, GW_OK, NULL, 1796202000000LL, 1796205600000LL, "+05:30", "Asia/Kolkata"},
        {"west of UTC", "{\"start\":\"2026-12-02T09:00:00Z\",\"end\":\"2026-12-02T10:00:00Z\","
         "\"timezone\":\"America/New_York\",\"title\":\"T\",\"customer\":{\"email\":\"c@x.test\"}}",
         NULL, GW_OK, NULL, 1796202000000LL, 1796205600000LL, "-05:00", "America/New_York"},
        {"no zone: UTC", "{\"start\":\"2026-12-02T09:00:00Z\",\"end\":\"2026-12-02T10:00:00Z\","
         "\"title\":\"T\",\"customer\":{\"email\":\"c@x.test\"}}",
         NULL, GW_OK, NULL, 1796202000000LL, 1796205600000LL, "+00:00", "UTC"},
        {"no start", "{\"end\":\"2026-12-02T10:00:00Z\",\"title\":\"T\","
         "\"customer\":{\"email\":\"c@x.test\"}}", NULL, GW_EINVAL, "start", 0, 0, NULL, NULL},
        {"end before start", "{\"start\":\"2026-12-02T10:00:00Z\",\"end\":\"2026-12-02T09:00:00Z\","
         "\"title\":\"T\",\"customer\":{\"email\":\"c@x.test\"}}", NULL, GW_EINVAL, "end", 0, 0,
         NULL, NULL},
        {"no title", "{\"start\":\"2026-12-02T09:00:00Z\",\"end\":\"2026-12-02T10:00:00Z\","
         "\"customer\":{\"email\":\"c@x.test\"}}", NULL, GW_EINVAL, "title", 0, 0, NULL, NULL},
        {"no customer email", "{\"start\":\"2026-12-02T09:00:00Z\",\"end\":\"2026-12-02T10:00:00Z\","
         "\"title\":\"T\",\"customer\":{\"name\":\"C\"}}", NULL, GW_EINVAL, "customer", 0, 0, NULL,
         NULL},
};

static void test_body(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		const struct body_case *c = &body_cases[i];
		json_t *p = json_loads(c->payload, 0, NULL), *b = NULL;
		struct gw_err err = {0};
		gw_rc rc;

		assert_non_null(p);
		rc = zoho_session_body(p, c->dept, &b, &err);
		if(rc != c->rc)
			fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
		if(rc == GW_OK) {
			assert_string_equal(json_string_value(json_object_get(b, "mode")), "SCHEDULE");
			assert_int_equal(json_integer_value(json_object_get(b, "schedule_time")),
			                 c->time_ms);
			assert_int_equal(json_integer_value(json_object_get(b, "schedule_upto")),
			                 c->upto_ms);
			assert_string_equal(json_string_value(json_object_get(b, "utc_offset")),
			                    c->offset);
			assert_string_equal(json_string_value(json_object_get(b, "time_zone")), c->zone);
			assert_true(json_is_integer(json_object_get(b, "reminder")));
			assert_non_null(json_string_value(json_object_get(b, "customer_email")));
			assert_non_null(json_string_value(json_object_get(b, "title")));
			if(c->dept)
				assert_string_equal(
				        json_string_value(json_object_get(b, "department_id")), c->dept);
			else
				assert_null(json_object_get(b, "department_id"));
		} else {
			assert_null(b);
			assert_string_equal(err.field, c->field);
		}
		json_decref(b);
		json_decref(p);
	}
}

static const struct parse_case {
	const char *name;
	const char *answer;
	gw_rc rc;
	const char *id;
} parse_cases[] = {
        {"the documented answer",
         "{\"representation\":{\"statue\":\"ok\",\"schedule_id\":\"215000000000000001\","
         "\"technician_url\":\"https://assist.zoho.com/assist-schedule?digest=a&role=V\","
         "\"customer_url\":\"https://assist.zoho.com/assist-schedule?digest=b&role=A\"},"
         "\"resource_type\":\"/api/v2/session/schedule\"}",
         GW_OK, "215000000000000001"},
        {"a numeric id", "{\"representation\":{\"schedule_id\":77,"
         "\"technician_url\":\"https://a.test/t\",\"customer_url\":\"https://a.test/c\"}}",
         GW_OK, "77"},
        {"no representation", "{\"schedule_id\":\"1\"}", GW_EINVAL, NULL},
        {"no id", "{\"representation\":{\"technician_url\":\"https://a.test/t\","
         "\"customer_url\":\"https://a.test/c\"}}", GW_EINVAL, NULL},
        {"an id with a slash", "{\"representation\":{\"schedule_id\":\"1/2\","
         "\"technician_url\":\"https://a.test/t\",\"customer_url\":\"https://a.test/c\"}}",
         GW_EINVAL, NULL},
        {"no customer URL", "{\"representation\":{\"schedule_id\":\"1\","
         "\"technician_url\":\"https://a.test/t\"}}", GW_EINVAL, NULL},
        {"a javascript: URL", "{\"representation\":{\"schedule_id\":\"1\","
         "\"technician_url\":\"https://a.test/t\",\"customer_url\":\"javascript:alert(1)\"}}",
         GW_EINVAL, NULL},
        {"an error body", "{\"error\":{\"code\":1002,\"message\":\"invalid_oauthtoken\"}}",
         GW_EINVAL, NULL},
};

static void test_parse(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		json_t *a = json_loads(c->answer, 0, NULL), *o = NULL;
		gw_rc rc;

		assert_non_null(a);
		rc = zoho_session_parse(a, &o);
		if(rc != c->rc)
			fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
		if(rc == GW_OK) {
			assert_string_equal(json_string_value(json_object_get(o, "session_id")), c->id);
			assert_non_null(json_string_value(json_object_get(o, "technician_url")));
			assert_non_null(json_string_value(json_object_get(o, "customer_url")));
		} else {
			assert_null(o);
		}
		json_decref(o);
		json_decref(a);
	}
}

static const struct token_case {
	long status;
	const char *answer;
	enum provider_outcome want;
} token_cases[] = {
        {200, "{\"error\":\"invalid_code\"}", PROVIDER_PERMANENT},
        {200, "{\"error\":\"invalid_client\"}", PROVIDER_PERMANENT},
        {400, "{\"error\":\"invalid_grant\"}", PROVIDER_PERMANENT},
        {400, "{\"error\":\"Access Denied\",\"error_description\":\"You have made too many "
              "requests continuously. Please try again after some time.\"}",
         PROVIDER_TRANSIENT},
        {429, NULL, PROVIDER_TRANSIENT},
        {503, "{}", PROVIDER_TRANSIENT},
};

static void test_token_error(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(token_cases) / sizeof(token_cases[0]); i++) {
		json_t *a = token_cases[i].answer ? json_loads(token_cases[i].answer, 0, NULL) : NULL;
		assert_int_equal(zoho_token_error(token_cases[i].status, a), token_cases[i].want);
		json_decref(a);
	}
}

/* open: the three credentials are needed */
static void test_open(void **state)
{
	json_t *c = json_pack("{s:s, s:s}", "client_id", "1000.X", "client_secret", "s");
	void *ctx = NULL;

	(void)state;
	assert_int_equal(zoho_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	assert_null(ctx);
	json_object_set_new(c, "refresh_token", json_string("1000.rt"));
	json_object_set_new(c, "api_base", json_string("https://assist.zoho.eu/api/v2/"));
	assert_int_equal(zoho_provider_ops.open(c, "/nonexistent", &ctx), GW_OK);
	assert_non_null(ctx);
	zoho_provider_ops.close(ctx);
	zoho_provider_ops.close(NULL);
	assert_string_equal(zoho_provider_ops.name, "zoho");
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_body),        cmocka_unit_test(test_parse),
	        cmocka_unit_test(test_token_error), cmocka_unit_test(test_open),
	};
	int failed;

	tz_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests_name("zoho", tests, NULL, NULL);
	curl_global_cleanup();
	return failed;
}
