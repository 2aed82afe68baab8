/*
 * test_gcal.c - the Google Calendar provider's pure parts (providers/google/gcal.c): the event id
 * chosen before any call (Google's rules: base32hex a-v and 0-9, 5 to 1024 characters), and the
 * Events resource made from a calendar payload (local times with the trainer's zone across
 * daylight-saving changes, the attendee, what is refused). Its HTTP side is tested against
 * tests/helpers/fake_google.py by tests/integration/test_gcal.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <curl/curl.h>

#include "common/tz.h"
#include "providers/google/gcal.h"

/* event ids: Google's alphabet and length, fixed per (org, booking, uid), distinct otherwise */
static void test_event_id(void **state)
{
	char a[GCAL_EVENT_ID_LEN], b[GCAL_EVENT_ID_LEN];
	size_t i;

	(void)state;
	ical_event_key(1, 42, "u1@ordinatus", a);
	assert_int_equal(strlen(a), 52);
	for(i = 0; a[i]; i++)
		assert_true((a[i] >= 'a' && a[i] <= 'v') || (a[i] >= '0' && a[i] <= '9'));
	ical_event_key(1, 42, "u1@ordinatus", b);
	assert_string_equal(a, b);
	ical_event_key(2, 42, "u1@ordinatus", b);
	assert_string_not_equal(a, b);
	ical_event_key(1, 43, "u1@ordinatus", b);
	assert_string_not_equal(a, b);
	ical_event_key(1, 42, "u2@ordinatus", b);
	assert_string_not_equal(a, b);
}

/* payload - a calendar payload (new reference) */
static json_t *payload(const char *start, const char *end, const char *tz)
{
	json_t *p = json_pack("{s:s, s:i, s:i, s:s, s:i, s:s, s:s, s:s, s:s, s:{s:s, s:s}}",
	                      "action", "create", "org_id", 1, "booking_id", 42, "uid",
	                      "u1@ordinatus", "sequence", 2, "start", start, "end", end, "summary",
	                      "Private yoga with Cleo", "description", "line one\nline two",
	                      "customer", "name", "Cleo", "email", "cleo@example.test");

	assert_non_null(p);
	if(tz)
		json_object_set_new(p, "timezone", json_string(tz));
	return p;
}

/* local times with the zone's offset on that date */
static void test_event_times(void **state)
{
	static const struct {
		const char *start, *end, *tz, *want_start, *want_end, *want_tz;
	} cases[] = {
	        {"2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z", "Europe/Berlin",
	         "2026-12-02T10:00:00+01:00", "2026-12-02T11:00:00+01:00", "Europe/Berlin"},
	        {"2026-07-01T09:00:00Z", "2026-07-01T10:30:00Z", "Europe/Berlin",
	         "2026-07-01T11:00:00+02:00", "2026-07-01T12:30:00+02:00", "Europe/Berlin"},
	        /* across the autumn change: 00:30Z is 02:30+02:00, 01:30Z is 02:30+01:00 */
	        {"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "Europe/Berlin",
	         "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "Europe/Berlin"},
	        {"2026-12-02T15:00:00Z", "2026-12-02T16:00:00Z", "America/New_York",
	         "2026-12-02T10:00:00-05:00", "2026-12-02T11:00:00-05:00", "America/New_York"},
	        {"2026-12-02T15:00:00Z", "2026-12-02T16:00:00Z", "Asia/Kolkata",
	         "2026-12-02T20:30:00+05:30", "2026-12-02T21:30:00+05:30", "Asia/Kolkata"},
	        /* no zone, or an unknown one: UTC */
	        {"2026-12-02T15:00:00Z", "2026-12-02T16:00:00Z", NULL, "2026-12-02T15:00:00+00:00",
	         "2026-12-02T16:00:00+00:00", "UTC"},
	        {"2026-12-02T15:00:00Z", "2026-12-02T16:00:00Z", "Mars/Olympus",
	         "2026-12-02T15:00:00+00:00", "2026-12-02T16:00:00+00:00", "UTC"},
	};
	struct gw_err err = {0};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = payload(cases[i].start, cases[i].end, cases[i].tz), *ev = NULL;
		const json_t *s, *e;

		assert_int_equal(gcal_event_body(p, NULL, &ev, &err), GW_OK);
		s = json_object_get(ev, "start");
		e = json_object_get(ev, "end");
		assert_string_equal(json_string_value(json_object_get(s, "dateTime")),
		                    cases[i].want_start);
		assert_string_equal(json_string_value(json_object_get(e, "dateTime")),
		                    cases[i].want_end);
		assert_string_equal(json_string_value(json_object_get(s, "timeZone")),
		                    cases[i].want_tz);
		json_decref(ev);
		json_decref(p);
	}
}

/* the rest of the resource: id only for an insert, the attendee, private properties */
static void test_event_fields(void **state)
{
	json_t *p = payload("2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z", "Europe/Berlin");
	json_t *ev = NULL, *priv;
	struct gw_err err = {0};
	char id[GCAL_EVENT_ID_LEN];

	(void)state;
	ical_event_key(1, 42, "u1@ordinatus", id);
	assert_int_equal(gcal_event_body(p, id, &ev, &err), GW_OK);
	assert_string_equal(json_string_value(json_object_get(ev, "id")), id);
	assert_null(json_object_get(ev, "iCalUID"));
	assert_string_equal(json_string_value(json_object_get(ev, "summary")),
	                    "Private yoga with Cleo");
	assert_string_equal(json_string_value(json_object_get(ev, "description")),
	                    "line one\nline two");
	assert_string_equal(json_string_value(json_object_get(ev, "status")), "confirmed");
	assert_null(json_object_get(ev, "location"));
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(ev, "attendees"), 0), "email")),
	                    "cleo@example.test");
	priv = json_object_get(json_object_get(ev, "extendedProperties"), "private");
	assert_string_equal(json_string_value(json_object_get(priv, "ordinatus_uid")),
	                    "u1@ordinatus");
	assert_string_equal(json_string_value(json_object_get(priv, "ordinatus_booking")), "42");
	assert_string_equal(json_string_value(json_object_get(priv, "ordinatus_sequence")), "2");
	json_decref(ev);
	ev = NULL;
	assert_int_equal(gcal_event_body(p, NULL, &ev, &err), GW_OK);
	assert_null(json_object_get(ev, "id"));
	json_decref(ev);
	json_decref(p);
}

/* unusable payloads are refused naming the field, never sent half-made */
static void test_event_refused(void **state)
{
	static const struct {
		const char *start, *end, *field;
	} cases[] = {
	        {"yesterday", "2026-12-02T10:00:00Z", "start"},
	        {"2026-12-02T09:00:00Z", "2026-12-02T09:00:00Z", "end"},
	        {"2026-12-02T09:00:00Z", "2026-12-02T08:00:00Z", "end"},
	};
	struct gw_err err;
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = payload(cases[i].start, cases[i].end, "UTC"), *ev = NULL;

		memset(&err, 0, sizeof(err));
		assert_int_equal(gcal_event_body(p, NULL, &ev, &err), GW_EINVAL);
		assert_null(ev);
		assert_string_equal(err.field, cases[i].field);
		json_decref(p);
	}
}

/* open: client settings and refresh token are required; close accepts NULL */
static void test_open(void **state)
{
	json_t *c = json_pack("{s:s, s:s}", "client_id", "id", "client_secret", "s");
	void *ctx = (void *)1;

	(void)state;
	assert_int_equal(gcal_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	assert_null(ctx);
	json_object_set_new(c, "refresh_token", json_string("1//rt"));
	assert_int_equal(gcal_provider_ops.open(c, "/nonexistent", &ctx), GW_OK);
	assert_non_null(ctx);
	gcal_provider_ops.close(ctx);
	gcal_provider_ops.close(NULL);
	assert_string_equal(gcal_provider_ops.name, "google");
	json_decref(c);
}

/* freeBusy answers -> blocks: a table of canned answers (the freebusy.query response shape) and
 * the blocks wanted ("" for a refused answer), the range 2026-12-02T00:00Z .. 03T00:00Z */
static void test_busy_parse(void **state)
{
	static const struct {
		const char *name, *answer, *want;
	} cases[] = {
	    {"two blocks",
	     "{\"calendars\": {\"primary\": {\"busy\": ["
	     "{\"start\": \"2026-12-02T10:00:00Z\", \"end\": \"2026-12-02T11:00:00Z\"},"
	     "{\"start\": \"2026-12-02T14:00:00+01:00\", \"end\": \"2026-12-02T14:30:00+01:00\"}"
	     "]}}}",
	     "[[1796205600, 1796209200], [1796216400, 1796218200]]"},
	    {"none", "{\"calendars\": {\"primary\": {\"busy\": []}}}", "[]"},
	    {"no busy member", "{\"calendars\": {\"primary\": {}}}", "[]"},
	    {"clipped to the range",
	     "{\"calendars\": {\"primary\": {\"busy\": ["
	     "{\"start\": \"2026-12-01T23:00:00Z\", \"end\": \"2026-12-02T01:00:00Z\"},"
	     "{\"start\": \"2026-12-03T00:00:00Z\", \"end\": \"2026-12-03T01:00:00Z\"}]}}}",
	     "[[1796169600, 1796173200]]"},
	    {"calendar errors",
	     "{\"calendars\": {\"primary\": {\"errors\": [{\"domain\": \"global\","
	     " \"reason\": \"notFound\"}], \"busy\": []}}}",
	     ""},
	    {"another calendar", "{\"calendars\": {\"x@example.com\": {\"busy\": []}}}", ""},
	    {"bad time",
	     "{\"calendars\": {\"primary\": {\"busy\": [{\"start\": \"soon\","
	     " \"end\": \"2026-12-02T11:00:00Z\"}]}}}",
	     ""},
	    {"busy not a list", "{\"calendars\": {\"primary\": {\"busy\": 5}}}", ""},
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *answer = json_loads(cases[i].answer, 0, NULL), *blocks = NULL;
		char why[200];
		gw_rc rc;

		assert_non_null(answer);
		rc = gcal_busy_parse(answer, "primary", 1796169600, 1796256000, &blocks, why,
		                     sizeof(why));
		if(!cases[i].want[0]) {
			if(rc == GW_OK)
				fail_msg("%s: accepted", cases[i].name);
			assert_null(blocks);
			assert_true(why[0]);
		} else {
			json_t *want = json_loads(cases[i].want, 0, NULL);
			if(rc != GW_OK || !json_equal(blocks, want))
				fail_msg("%s: rc %d, %s", cases[i].name, rc,
				         blocks ? json_dumps(blocks, JSON_COMPACT) : why);
			json_decref(want);
		}
		json_decref(blocks);
		json_decref(answer);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_event_id),     cmocka_unit_test(test_event_times),
	        cmocka_unit_test(test_event_fields), cmocka_unit_test(test_event_refused),
	        cmocka_unit_test(test_open),         cmocka_unit_test(test_busy_parse),
	};

	int failed;

	tz_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests_name("gcal", tests, NULL, NULL);
	curl_global_cleanup();
	return failed;
}
