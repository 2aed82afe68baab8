/*
 * test_caldav.c - the CalDAV provider's pure parts (providers/ical/caldav.c): the calendar object
 * resource made from a calendar payload (RFC 4791 4.1: one VCALENDAR without METHOD, one VEVENT
 * with the booking's UID and SEQUENCE, UTC times, the trainer as ORGANIZER, no ATTENDEE), what
 * is refused, and open()'s required settings. Its HTTP side is tested against a real Radicale
 * by tests/integration/test_caldav.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/tz.h"
#include "providers/ical/caldav.h"

#define NOW ((time_t)1796025600) /* 2026-11-30T08:00:00Z */

/* payload - a calendar payload (new reference) */
static json_t *payload(void)
{
	json_t *p = json_pack("{s:s, s:i, s:i, s:s, s:i, s:s, s:s, s:s, s:s, s:{s:s, s:s}, "
	                      "s:{s:s, s:s}}",
	                      "action", "update", "org_id", 1, "booking_id", 42, "uid",
	                      "u1@ordinatus", "sequence", 3, "start", "2026-12-02T09:00:00Z", "end",
	                      "2026-12-02T10:00:00Z", "summary", "Private yoga with Cleo",
	                      "description", "Private yoga with Cleo <cleo@example.test>",
	                      "customer", "name", "Cleo", "email", "cleo@example.test", "trainer",
	                      "name", "Tia Trainer", "email", "tia@by.test");

	assert_non_null(p);
	return p;
}

/* the object: no METHOD, the booking's UID, SEQUENCE and times, organizer, no attendee */
static void test_object(void **state)
{
	json_t *p = payload();
	struct gw_err err = {0};
	char *ics = NULL;

	(void)state;
	assert_int_equal(caldav_object(p, NOW, &ics, &err), GW_OK);
	assert_non_null(ics);
	assert_non_null(strstr(ics, "BEGIN:VCALENDAR\r\n"));
	assert_null(strstr(ics, "METHOD"));
	assert_non_null(strstr(ics, "\r\nUID:u1@ordinatus\r\n"));
	assert_non_null(strstr(ics, "\r\nSEQUENCE:3\r\n"));
	assert_non_null(strstr(ics, "\r\nDTSTART:20261202T090000Z\r\n"));
	assert_non_null(strstr(ics, "\r\nDTEND:20261202T100000Z\r\n"));
	assert_non_null(strstr(ics, "\r\nDTSTAMP:20261130T080000Z\r\n"));
	assert_non_null(strstr(ics, "mailto:tia@by.test"));
	assert_null(strstr(ics, "ATTENDEE"));
	assert_non_null(strstr(ics, "cleo@example.test")); /* in the description */
	free(ics);
	json_decref(p);
}

/* unusable payloads are refused naming the field */
static void test_refused(void **state)
{
	static const struct {
		const char *key, *field;
		int kind; /* 0 delete the key, 1 set a bad string, 2 set -1 */
	} cases[] = {
	        {"start", "start", 1}, {"end", "end", 0},         {"sequence", "sequence", 2},
	        {"uid", "uid", 0},     {"summary", "summary", 0},
	};
	struct gw_err err;
	char *ics = NULL;
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		json_t *p = payload();

		if(cases[i].kind == 0)
			json_object_del(p, cases[i].key);
		else if(cases[i].kind == 1)
			json_object_set_new(p, cases[i].key, json_string("tomorrow"));
		else
			json_object_set_new(p, cases[i].key, json_integer(-1));
		memset(&err, 0, sizeof(err));
		assert_int_equal(caldav_object(p, NOW, &ics, &err), GW_EINVAL);
		assert_null(ics);
		assert_string_equal(err.field, cases[i].field);
		json_decref(p);
	}
}

/* open: url and credentials are required; close accepts NULL */
static void test_open(void **state)
{
	json_t *c = json_pack("{s:s}", "calendar_id", "https://dav.example.test/tia/cal/");
	void *ctx = (void *)1;

	(void)state;
	assert_int_equal(caldav_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	assert_null(ctx);
	json_object_set_new(c, "credentials", json_string("{\"username\": \"tia\"}"));
	assert_int_equal(caldav_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	json_object_set_new(c, "credentials",
	                    json_string("{\"username\": \"tia\", \"password\": \"pw\"}"));
	json_object_set_new(c, "calendar_id", json_string("ftp://dav.example.test/"));
	assert_int_equal(caldav_provider_ops.open(c, "/nonexistent", &ctx), GW_ECONFIG);
	json_object_set_new(c, "calendar_id", json_string("https://dav.example.test/tia/cal/"));
	assert_int_equal(caldav_provider_ops.open(c, "/nonexistent", &ctx), GW_OK);
	assert_non_null(ctx);
	caldav_provider_ops.close(ctx);
	caldav_provider_ops.close(NULL);
	assert_string_equal(caldav_provider_ops.name, "caldav");
	json_decref(c);
}

#define MS_HEAD                                                                               \
	"<?xml version=\"1.0\"?><D:multistatus xmlns:D=\"DAV:\" "                                 \
	"xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:response><D:href>/a.ics</D:href><D:propstat>" \
	"<D:prop><C:calendar-data>"
#define MS_TAIL "</C:calendar-data></D:prop></D:propstat></D:response></D:multistatus>"
#define VC(ev)                                                                                \
	"BEGIN:VCALENDAR&#13;\nVERSION:2.0&#13;\nPRODID:-//t//t//EN&#13;\n" ev "END:VCALENDAR&#13;\n"
#define VE(uid, dts, dte, more)                                                               \
	"BEGIN:VEVENT&#13;\nUID:" uid "&#13;\nDTSTAMP:20261130T080000Z&#13;\nDTSTART:" dts           \
	"&#13;\nDTEND:" dte "&#13;\n" more "END:VEVENT&#13;\n"

/* calendar-query multistatus + iCalendar -> blocks: canned 207 answers as Radicale and others
 * send them (the C: prefix, &#13; for CR, CDATA), the range 2026-12-02T00:00Z .. 03T00:00Z;
 * "" for a refused answer */
static void test_busy_parse(void **state)
{
	static const struct {
		const char *name, *xml, *want;
	} cases[] = {
	    {"one event", MS_HEAD VC(VE("a@x", "20261202T100000Z", "20261202T110000Z", "")) MS_TAIL,
	     "[[1796205600, 1796209200]]"},
	    {"daily, three times from Tuesday: Wednesday's instance",
	     MS_HEAD VC(VE("r@x", "20261201T080000Z", "20261201T083000Z",
	                   "RRULE:FREQ=DAILY;COUNT=3&#13;\n")) MS_TAIL,
	     "[[1796198400, 1796200200]]"},
	    {"daily with Wednesday excluded",
	     MS_HEAD VC(VE("r@x", "20261201T080000Z", "20261201T083000Z",
	                   "RRULE:FREQ=DAILY;COUNT=3&#13;\nEXDATE:20261202T080000Z&#13;\n")) MS_TAIL,
	     "[]"},
	    {"an override moves Wednesday's instance",
	     MS_HEAD VC(VE("r@x", "20261201T080000Z", "20261201T083000Z",
	                   "RRULE:FREQ=DAILY;COUNT=3&#13;\n")
	                VE("r@x", "20261202T120000Z", "20261202T123000Z",
	                   "RECURRENCE-ID:20261202T080000Z&#13;\n")) MS_TAIL,
	     "[[1796212800, 1796214600]]"},
	    {"transparent, cancelled and the gateway's own are not busy",
	     MS_HEAD VC(VE("t@x", "20261202T100000Z", "20261202T110000Z", "TRANSP:TRANSPARENT&#13;\n")
	                VE("c@x", "20261202T100000Z", "20261202T110000Z", "STATUS:CANCELLED&#13;\n")
	                VE("abc@ordinatus", "20261202T100000Z", "20261202T110000Z", "")) MS_TAIL,
	     "[]"},
	    {"clipped, in a zone, another prefix and CDATA",
	     "<multistatus xmlns=\"DAV:\"><response><propstat><prop>"
	     "<cal:calendar-data xmlns:cal=\"urn:ietf:params:xml:ns:caldav\"><![CDATA["
	     "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:z@x\r\n"
	     "DTSTAMP:20261130T080000Z\r\nDTSTART;TZID=Europe/Berlin:20261202T003000\r\n"
	     "DTEND;TZID=Europe/Berlin:20261202T020000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	     "]]></cal:calendar-data></prop></propstat></response></multistatus>",
	     "[[1796169600, 1796173200]]"},
	    {"empty multistatus", "<D:multistatus xmlns:D=\"DAV:\"></D:multistatus>", "[]"},
	    {"not a multistatus", "<html>no</html>", ""},
	    {"not closed", MS_HEAD "BEGIN:VCALENDAR", ""},
	    {"not iCalendar", MS_HEAD "hello" MS_TAIL, ""},
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *blocks = json_array();
		char why[300];
		gw_rc rc;

		rc = caldav_busy_parse(cases[i].xml, strlen(cases[i].xml), 1796169600, 1796256000,
		                       blocks, why, sizeof(why));
		if(!cases[i].want[0]) {
			if(rc == GW_OK)
				fail_msg("%s: accepted", cases[i].name);
			assert_true(why[0]);
		} else {
			json_t *want = json_loads(cases[i].want, 0, NULL);
			char *got = json_dumps(blocks, JSON_COMPACT);
			if(rc != GW_OK || !json_equal(blocks, want))
				fail_msg("%s: rc %d, %s %s", cases[i].name, rc, got, why);
			free(got);
			json_decref(want);
		}
		json_decref(blocks);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_object),
	        cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_open),
	        cmocka_unit_test(test_busy_parse),
	};
	int failed;

	tz_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests_name("caldav", tests, NULL, NULL);
	curl_global_cleanup();
	return failed;
}
