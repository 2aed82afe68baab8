/*
 * test_graph.c - the Microsoft Graph provider's pure parts (providers/outlook/graph.c): the event
 * resource made from a calendar payload (UTC dateTimeTimeZone, subject, text body naming the
 * customer, location, the transactionId only on a create, no attendees: Graph would invite
 * them), what is refused, and open()'s required settings. Its HTTP side is tested against
 * tests/helpers/fake_graph.py by tests/integration/test_outlook.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <curl/curl.h>

#include "common/tz.h"
#include "providers/ical/ical.h"
#include "providers/outlook/graph.h"

/* payload - a calendar payload (new reference) */
static json_t *payload(const char *start, const char *end)
{
	json_t *p = json_pack(
	        "{s:s, s:i, s:i, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "action",
	        "create", "org_id", 1, "booking_id", 42, "uid", "u1@ordinatus", "sequence", 2,
	        "start", start, "end", end, "summary", "Private yoga with Cleo", "description",
	        "Private yoga with Cleo <cleo@example.test>\nDelivery: online.", "timezone",
	        "Europe/Berlin", "customer", "name", "Cleo", "email", "cleo@example.test");

	assert_non_null(p);
	return p;
}

/* times: UTC wall clock with timeZone UTC, whatever the trainer's zone (and across DST) */
static void test_event_times(void **state)
{
	static const struct {
		const char *start, *end, *want_start, *want_end;
	} cases[] = {
	        {"2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z", "2026-12-02T09:00:00",
	         "2026-12-02T10:00:00"},
	        {"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T00:30:00",
	         "2026-10-25T01:30:00"},
	        {"2026-12-31T23:30:00Z", "2027-01-01T00:30:00Z", "2026-12-31T23:30:00",
	         "2027-01-01T00:30:00"},
	};
	struct gw_err err = {0};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = payload(cases[i].start, cases[i].end), *ev = NULL;
		const json_t *s, *e;

		assert_int_equal(graph_event_body(p, NULL, &ev, &err), GW_OK);
		s = json_object_get(ev, "start");
		e = json_object_get(ev, "end");
		assert_string_equal(json_string_value(json_object_get(s, "dateTime")),
		                    cases[i].want_start);
		assert_string_equal(json_string_value(json_object_get(e, "dateTime")),
		                    cases[i].want_end);
		assert_string_equal(json_string_value(json_object_get(s, "timeZone")), "UTC");
		assert_string_equal(json_string_value(json_object_get(e, "timeZone")), "UTC");
		json_decref(ev);
		json_decref(p);
	}
}

/* the rest: subject, text body, location, transactionId on create only, no attendees */
static void test_event_fields(void **state)
{
	json_t *p = payload("2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z");
	json_t *ev = NULL, *body;
	struct gw_err err = {0};
	char key[ICAL_EVENT_KEY_LEN];

	(void)state;
	ical_event_key(1, 42, "u1@ordinatus", key);
	assert_int_equal(graph_event_body(p, key, &ev, &err), GW_OK);
	assert_string_equal(json_string_value(json_object_get(ev, "transactionId")), key);
	assert_string_equal(json_string_value(json_object_get(ev, "subject")),
	                    "Private yoga with Cleo");
	body = json_object_get(ev, "body");
	assert_string_equal(json_string_value(json_object_get(body, "contentType")), "text");
	assert_non_null(
	        strstr(json_string_value(json_object_get(body, "content")), "cleo@example.test"));
	assert_string_equal(json_string_value(json_object_get(ev, "showAs")), "busy");
	assert_null(json_object_get(ev, "attendees"));
	assert_null(json_object_get(ev, "location"));
	assert_null(json_object_get(ev, "id"));
	json_decref(ev);
	ev = NULL;
	json_object_set_new(p, "location", json_string("https://meet.example.test/r/1"));
	assert_int_equal(graph_event_body(p, NULL, &ev, &err), GW_OK);
	assert_null(json_object_get(ev, "transactionId"));
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(ev, "location"), "displayName")),
	        "https://meet.example.test/r/1");
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
	        {"2026-12-02T09:00:00Z", "soon", "end"},
	};
	struct gw_err err;
	json_t *p, *ev = NULL;
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		p = payload(cases[i].start, cases[i].end);
		memset(&err, 0, sizeof(err));
		assert_int_equal(graph_event_body(p, NULL, &ev, &err), GW_EINVAL);
		assert_null(ev);
		assert_string_equal(err.field, cases[i].field);
		json_decref(p);
	}
	p = payload("2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z");
	json_object_del(p, "summary");
	memset(&err, 0, sizeof(err));
	assert_int_equal(graph_event_body(p, NULL, &ev, &err), GW_EINVAL);
	assert_string_equal(err.field, "summary");
	json_decref(p);
}

/* open: client settings and refresh token are required; close accepts NULL */
static void test_open(void **state)
{
	json_t *c = json_pack("{s:s, s:s}", "client_id", "id", "client_secret", "s");
	void *ctx = (void *)1;

	(void)state;
	assert_int_equal(graph_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	assert_null(ctx);
	json_object_set_new(c, "refresh_token", json_string("M.C5-rt"));
	json_object_set_new(c, "calendar_id", json_string("AAMkAD=="));
	assert_int_equal(graph_provider_ops.open(c, "/nonexistent", &ctx), GW_OK);
	assert_non_null(ctx);
	graph_provider_ops.close(ctx);
	graph_provider_ops.close(NULL);
	assert_string_equal(graph_provider_ops.name, "outlook");
	json_decref(c);
}

/* calendarView pages -> blocks: canned pages (the list calendarView response in UTC) and the
 * blocks wanted ("" for a refused page), the range 2026-12-02T00:00Z .. 03T00:00Z */
static void test_busy_parse(void **state)
{
	static const struct {
		const char *name, *page, *want;
	} cases[] = {
	    {"busy, tentative and oof count",
	     "{\"value\": ["
	     "{\"showAs\": \"busy\", \"start\": {\"dateTime\": \"2026-12-02T10:00:00.0000000\","
	     " \"timeZone\": \"UTC\"}, \"end\": {\"dateTime\": \"2026-12-02T11:00:00.0000000\","
	     " \"timeZone\": \"UTC\"}},"
	     "{\"showAs\": \"tentative\", \"start\": {\"dateTime\": \"2026-12-02T12:00:00\","
	     " \"timeZone\": \"UTC\"}, \"end\": {\"dateTime\": \"2026-12-02T12:30:00\","
	     " \"timeZone\": \"UTC\"}},"
	     "{\"showAs\": \"oof\", \"start\": {\"dateTime\": \"2026-12-01T20:00:00\","
	     " \"timeZone\": \"UTC\"}, \"end\": {\"dateTime\": \"2026-12-02T01:00:00\","
	     " \"timeZone\": \"UTC\"}}]}",
	     "[[1796205600, 1796209200], [1796212800, 1796214600], [1796169600, 1796173200]]"},
	    {"free, cancelled and the gateway's own are not busy",
	     "{\"value\": ["
	     "{\"showAs\": \"free\", \"start\": {\"dateTime\": \"2026-12-02T10:00:00\","
	     " \"timeZone\": \"UTC\"}, \"end\": {\"dateTime\": \"2026-12-02T11:00:00\","
	     " \"timeZone\": \"UTC\"}},"
	     "{\"showAs\": \"busy\", \"isCancelled\": true, \"start\": {\"dateTime\":"
	     " \"2026-12-02T10:00:00\", \"timeZone\": \"UTC\"}, \"end\": {\"dateTime\":"
	     " \"2026-12-02T11:00:00\", \"timeZone\": \"UTC\"}},"
	     "{\"showAs\": \"busy\", \"transactionId\":"
	     " \"0123456789abcdefghijklmnopqrstuv0123456789abcdefghij\", \"start\": {\"dateTime\":"
	     " \"2026-12-02T10:00:00\", \"timeZone\": \"UTC\"}, \"end\": {\"dateTime\":"
	     " \"2026-12-02T11:00:00\", \"timeZone\": \"UTC\"}}]}",
	     "[]"},
	    {"another client's transactionId is busy",
	     "{\"value\": [{\"transactionId\": \"my-app-1\", \"start\": {\"dateTime\":"
	     " \"2026-12-02T10:00:00\", \"timeZone\": \"UTC\"}, \"end\": {\"dateTime\":"
	     " \"2026-12-02T11:00:00\", \"timeZone\": \"UTC\"}}]}",
	     "[[1796205600, 1796209200]]"},
	    {"empty", "{\"value\": []}", "[]"},
	    {"no value", "{\"error\": {}}", ""},
	    {"not UTC",
	     "{\"value\": [{\"start\": {\"dateTime\": \"2026-12-02T10:00:00\", \"timeZone\":"
	     " \"Pacific Standard Time\"}, \"end\": {\"dateTime\": \"2026-12-02T11:00:00\","
	     " \"timeZone\": \"Pacific Standard Time\"}}]}",
	     ""},
	    {"no end", "{\"value\": [{\"start\": {\"dateTime\": \"2026-12-02T10:00:00\"}}]}", ""},
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *page = json_loads(cases[i].page, 0, NULL), *blocks = json_array();
		char why[200];
		gw_rc rc;

		assert_non_null(page);
		rc = graph_busy_parse(page, 1796169600, 1796256000, blocks, why, sizeof(why));
		if(!cases[i].want[0]) {
			if(rc == GW_OK)
				fail_msg("%s: accepted", cases[i].name);
			assert_true(why[0]);
		} else {
			json_t *want = json_loads(cases[i].want, 0, NULL);
			if(rc != GW_OK || !json_equal(blocks, want))
				fail_msg("%s: rc %d, %s", cases[i].name, rc, why);
			json_decref(want);
		}
		json_decref(blocks);
		json_decref(page);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_event_times),
	        cmocka_unit_test(test_event_fields),
	        cmocka_unit_test(test_event_refused),
	        cmocka_unit_test(test_open),
	        cmocka_unit_test(test_busy_parse),
	};
	int failed;

	tz_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests_name("graph", tests, NULL, NULL);
	curl_global_cleanup();
	return failed;
}
