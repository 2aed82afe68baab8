/*
 * test_ical.c - ical_build(): tables of events rendered, checked line by line (CRLF, 75-octet
 * folding), parsed back with libical's own parser and with Debian's python3-icalendar (an
 * independent reader), and every property compared with what went in. A second table holds
 * inputs that must be refused.
 *
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "providers/ical/ical.h"
#include "common/tz.h"

#define PYTHON "/usr/bin/python3"

/* Instants used below, with their RFC 5545 UTC forms. */
#define T_STAMP ((time_t)1795178096) /* 20261120T123456Z */
#define T_START ((time_t)1796115600) /* 20261201T090000Z */
#define T_END ((time_t)1796121000)   /* 20261201T103000Z */
#define T_START2 ((time_t)1799190900) /* 20270105T231500Z */
#define T_END2 ((time_t)1799196300)   /* 20270106T004500Z */

/* EV - one event, every member spelled out (positional, so no initializer overrides) */
#define EV(uid, seq, start, end, summary, desc, loc, oemail, oname, aemail, aname, cancelled) \
	{                                                                                     \
		(uid), (seq), (start), (end), T_STAMP, (summary), (desc), (loc), (oemail),    \
		    (oname), (aemail), (aname), (cancelled)                                   \
	}

#define LONG_TEXT                                                                          \
	"Bring: laptop, charger; notes.\nSecond line with a backslash \\ and \"quotes\".\n" \
	"Ünïcödé über alles — naïve café, 日本語のテキスト, Ελληνικά, emoji 🎉🎉🎉, "        \
	"and a long tail so that this value is folded several times: lorem ipsum dolor "    \
	"sit amet, consectetur."

struct ok_case {
	const char *name;
	const char *method;
	size_t n;
	struct ical_event ev[2];
	const char *dtstart_z[2];  /* expected DTSTART text */
	const char *dtend_z[2];    /* expected DTEND text */
	const char *summary_rt[2]; /* summary as read back, when it differs (CRLF becomes LF) */
};

static const struct ok_case ok_cases[] = {
    {"request, plain", "REQUEST", 1,
     {EV("b-1@ordinatus.test", 0, T_START, T_END, "Yoga 90 min", "Room 2", "Studio A",
         "trainer@example.org", "Tina Trainer", "carl@example.com", "Carl Customer", 0)},
     {"20261201T090000Z"}, {"20261201T103000Z"}, {NULL}},
    {"request, hostile user text", "REQUEST", 1,
     {EV("b-2@ordinatus.test", 3, T_START, T_END, "Coaching, 1:1; \"deep\" work\nline 2 \\ end",
         LONG_TEXT, "https://assist.zoho.eu/join?id=1,2;3", "trainer@example.org",
         "Smith, Tina: Coach; \"T\" Ünal", "c.o'neil+tag@example.co.uk",
         "Ça va, Zoë; 山田 太郎", 0)},
     {"20261201T090000Z"}, {"20261201T103000Z"}, {NULL}},
    {"request, CRLF in text becomes LF", "REQUEST", 1,
     {EV("b-3@ordinatus.test", 1, T_START, T_END, "a\r\nb\tc", NULL, NULL,
         "trainer@example.org", NULL, "carl@example.com", NULL, 0)},
     {"20261201T090000Z"}, {"20261201T103000Z"}, {"a\nb\tc"}},
    {"cancel implies CANCELLED", "CANCEL", 1,
     {EV("b-1@ordinatus.test", 1, T_START, T_END, "Yoga 90 min", NULL, NULL,
         "trainer@example.org", "Tina Trainer", "carl@example.com", "Carl Customer", 0)},
     {"20261201T090000Z"}, {"20261201T103000Z"}, {NULL}},
    {"feed, two events, no method, no attendee", NULL, 2,
     {EV("b-4@ordinatus.test", 0, T_START, T_END, "Morning", NULL, NULL,
         "trainer@example.org", "Tina", NULL, NULL, 0),
      EV("b-5@ordinatus.test", 7, T_START2, T_END2, "Late, across midnight", "x", "",
         "trainer@example.org", "", NULL, NULL, 1)},
     {"20261201T090000Z", "20270105T231500Z"},
     {"20261201T103000Z", "20270106T004500Z"},
     {NULL, NULL}},
    {"publish, empty feed", "PUBLISH", 0, {{.uid = NULL}}, {NULL}, {NULL}, {NULL}},
};

struct bad_case {
	const char *name;
	const char *method;
	struct ical_event ev;
	const char *field;
};

static const struct bad_case bad_cases[] = {
    {"organizer name with CRLF", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina\r\nX-EVIL:1",
        "c@example.com", "Carl", 0),
     "organizer_name"},
    {"attendee name with LF", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", "c@example.com",
        "Carl\nATTENDEE:mailto:x@y", 0),
     "attendee_name"},
    {"attendee name with CR", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", "c@example.com",
        "Carl\r", 0),
     "attendee_name"},
    {"attendee name with RFC 6868 escape", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", "c@example.com",
        "Carl^nBad", 0),
     "attendee_name"},
    {"attendee email with CRLF", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina",
        "c@example.com\r\nX-EVIL:1", "Carl", 0),
     "attendee_email"},
    {"organizer email with LF", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@exa\nmple.org", "Tina", "c@example.com",
        "Carl", 0),
     "organizer_email"},
    {"organizer email missing", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, NULL, "Tina", "c@example.com", "Carl", 0),
     "organizer_email"},
    {"attendee email without @", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", "carl.example.com",
        "Carl", 0),
     "attendee_email"},
    {"attendee email with space", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", "c arl@example.com",
        "Carl", 0),
     "attendee_email"},
    {"no uid", "REQUEST",
     EV(NULL, 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "uid"},
    {"uid with LF", "REQUEST",
     EV("u\n", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "uid"},
    {"negative sequence", "REQUEST",
     EV("u", -1, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "sequence"},
    {"end before start", "REQUEST",
     EV("u", 0, T_END, T_START, "s", NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "start"},
    {"empty event", "REQUEST",
     EV("u", 0, T_START, T_START, "s", NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "start"},
    {"no summary", "REQUEST",
     EV("u", 0, T_START, T_END, NULL, NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "summary"},
    {"summary not UTF-8", "REQUEST",
     EV("u", 0, T_START, T_END, "caf\xe9", NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "summary"},
    {"summary with control character", "REQUEST",
     EV("u", 0, T_START, T_END, "a\x01", NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "summary"},
    {"description with overlong UTF-8", "REQUEST",
     EV("u", 0, T_START, T_END, "s", "\xc0\xaf", NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "description"},
    {"location with DEL", "REQUEST",
     EV("u", 0, T_START, T_END, "s", NULL, "a\x7f", "t@example.org", "Tina", NULL, NULL, 0),
     "location"},
    {"unknown method", "REPLY",
     EV("u", 0, T_START, T_END, "s", NULL, NULL, "t@example.org", "Tina", NULL, NULL, 0),
     "method"},
};

/* check_lines - CRLF line ends only, no physical line over 75 octets (RFC 5545 3.1) */
static void check_lines(const char *text)
{
	const char *line = text;
	size_t len = strlen(text);

	assert_true(len > 2);
	assert_memory_equal(text + len - 2, "\r\n", 2);
	while(*line) {
		const char *eol = strstr(line, "\r\n");

		assert_non_null(eol);
		assert_null(memchr(line, '\n', (size_t)(eol - line)));
		assert_null(memchr(line, '\r', (size_t)(eol - line)));
		assert_true(eol - line <= 75);
		line = eol + 2;
	}
}

/* unfold - text with RFC 5545 3.1 folds removed; caller frees */
static char *unfold(const char *text)
{
	char *u = malloc(strlen(text) + 1);
	char *w = u;

	assert_non_null(u);
	while(*text) {
		if(text[0] == '\r' && text[1] == '\n' && (text[2] == ' ' || text[2] == '\t'))
			text += 3;
		else
			*w++ = *text++;
	}
	*w = '\0';
	return u;
}

/* contains_line - does unfolded text hold the whole content line want */
static int contains_line(const char *unfolded, const char *want)
{
	size_t n = strlen(want);
	const char *p;

	for(p = strstr(unfolded, want); p; p = strstr(p + 1, want))
		if((p == unfolded || p[-1] == '\n') && p[n] == '\r' && p[n + 1] == '\n')
			return 1;
	return 0;
}

/* param_text - text of the first parameter of kind k on p, or NULL */
static const char *param_cn(icalproperty *p)
{
	icalparameter *a = icalproperty_get_first_parameter(p, ICAL_CN_PARAMETER);

	return a ? icalparameter_get_cn(a) : NULL;
}

/* check_time - a parsed DATE-TIME property is UTC and the instant we wrote */
static void check_time(icalproperty *p, struct icaltimetype tt, time_t want)
{
	assert_non_null(p);
	assert_true(icaltime_is_utc(tt));
	assert_false(tt.is_date);
	assert_int_equal(icaltime_as_timet(tt), want);
}

/* check_event - every property of one parsed VEVENT against its input */
static void check_event(icalcomponent *ve, const struct ical_event *ev, const char *method,
                        const char *summary_rt)
{
	icalproperty *p;
	char want[320];
	int cancelled = ev->cancelled || (method && strcmp(method, "CANCEL") == 0);

	p = icalcomponent_get_first_property(ve, ICAL_UID_PROPERTY);
	assert_non_null(p);
	assert_string_equal(icalproperty_get_uid(p), ev->uid);
	p = icalcomponent_get_first_property(ve, ICAL_SEQUENCE_PROPERTY);
	assert_non_null(p);
	assert_int_equal(icalproperty_get_sequence(p), ev->sequence);
	p = icalcomponent_get_first_property(ve, ICAL_DTSTAMP_PROPERTY);
	check_time(p, icalproperty_get_dtstamp(p), ev->dtstamp);
	p = icalcomponent_get_first_property(ve, ICAL_DTSTART_PROPERTY);
	check_time(p, icalproperty_get_dtstart(p), ev->start);
	p = icalcomponent_get_first_property(ve, ICAL_DTEND_PROPERTY);
	check_time(p, icalproperty_get_dtend(p), ev->end);

	p = icalcomponent_get_first_property(ve, ICAL_SUMMARY_PROPERTY);
	assert_non_null(p);
	assert_string_equal(icalproperty_get_summary(p), summary_rt ? summary_rt : ev->summary);
	p = icalcomponent_get_first_property(ve, ICAL_DESCRIPTION_PROPERTY);
	if(ev->description) {
		assert_non_null(p);
		assert_string_equal(icalproperty_get_description(p), ev->description);
	} else {
		assert_null(p);
	}
	p = icalcomponent_get_first_property(ve, ICAL_LOCATION_PROPERTY);
	if(ev->location && *ev->location) {
		assert_non_null(p);
		assert_string_equal(icalproperty_get_location(p), ev->location);
	} else {
		assert_null(p);
	}

	p = icalcomponent_get_first_property(ve, ICAL_ORGANIZER_PROPERTY);
	assert_non_null(p);
	snprintf(want, sizeof(want), "mailto:%s", ev->organizer_email);
	assert_string_equal(icalproperty_get_organizer(p), want);
	if(ev->organizer_name && *ev->organizer_name) {
		assert_non_null(param_cn(p));
		assert_string_equal(param_cn(p), ev->organizer_name);
	} else {
		assert_null(param_cn(p));
	}

	p = icalcomponent_get_first_property(ve, ICAL_ATTENDEE_PROPERTY);
	if(ev->attendee_email) {
		icalparameter *a;

		assert_non_null(p);
		snprintf(want, sizeof(want), "mailto:%s", ev->attendee_email);
		assert_string_equal(icalproperty_get_attendee(p), want);
		if(ev->attendee_name) {
			assert_non_null(param_cn(p));
			assert_string_equal(param_cn(p), ev->attendee_name);
		}
		a = icalproperty_get_first_parameter(p, ICAL_ROLE_PARAMETER);
		assert_non_null(a);
		assert_int_equal(icalparameter_get_role(a), ICAL_ROLE_REQPARTICIPANT);
		a = icalproperty_get_first_parameter(p, ICAL_PARTSTAT_PARAMETER);
		assert_non_null(a);
		assert_int_equal(icalparameter_get_partstat(a), ICAL_PARTSTAT_NEEDSACTION);
		a = icalproperty_get_first_parameter(p, ICAL_RSVP_PARAMETER);
		assert_non_null(a);
		assert_int_equal(icalparameter_get_rsvp(a), ICAL_RSVP_FALSE);
		assert_null(icalcomponent_get_next_property(ve, ICAL_ATTENDEE_PROPERTY));
	} else {
		assert_null(p);
	}

	p = icalcomponent_get_first_property(ve, ICAL_STATUS_PROPERTY);
	assert_non_null(p);
	assert_int_equal(icalproperty_get_status(p),
	                 cancelled ? ICAL_STATUS_CANCELLED : ICAL_STATUS_CONFIRMED);
}

/* check_libical - parse text back with libical and compare everything */
static void check_libical(const struct ok_case *c, const char *text)
{
	icalcomponent *cal = icalparser_parse_string(text);
	icalcomponent *ve;
	icalproperty *p;
	size_t i;

	assert_non_null(cal);
	assert_int_equal(icalcomponent_isa(cal), ICAL_VCALENDAR_COMPONENT);
	p = icalcomponent_get_first_property(cal, ICAL_PRODID_PROPERTY);
	assert_non_null(p);
	assert_string_equal(icalproperty_get_prodid(p), "-//Ordinatus//Gateway//EN");
	p = icalcomponent_get_first_property(cal, ICAL_VERSION_PROPERTY);
	assert_non_null(p);
	assert_string_equal(icalproperty_get_version(p), "2.0");
	p = icalcomponent_get_first_property(cal, ICAL_CALSCALE_PROPERTY);
	assert_non_null(p);
	assert_string_equal(icalproperty_get_calscale(p), "GREGORIAN");
	p = icalcomponent_get_first_property(cal, ICAL_METHOD_PROPERTY);
	if(c->method) {
		assert_non_null(p);
		assert_string_equal(icalproperty_method_to_string(icalproperty_get_method(p)),
		                    c->method);
	} else {
		assert_null(p);
	}
	assert_int_equal(icalcomponent_count_components(cal, ICAL_VEVENT_COMPONENT), c->n);
	assert_int_equal(icalcomponent_count_components(cal, ICAL_ANY_COMPONENT), c->n);
	ve = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
	for(i = 0; i < c->n; i++) {
		assert_non_null(ve);
		check_event(ve, &c->ev[i], c->method, c->summary_rt[i]);
		ve = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT);
	}
	icalcomponent_free(cal);
}

/* Reads the file named in argv[1] with python3-icalendar and prints one JSON object; exit 3
 * when the module is missing. No single quotes: it travels inside '...' on a shell line. */
static const char py_script[] =
    "import sys, json\n"
    "try:\n"
    "    import icalendar\n"
    "except ImportError:\n"
    "    sys.exit(3)\n"
    "cal = icalendar.Calendar.from_ical(open(sys.argv[1], \"rb\").read())\n"
    "def s(v):\n"
    "    return None if v is None else str(v)\n"
    "out = {\"method\": s(cal.get(\"METHOD\")), \"version\": s(cal.get(\"VERSION\")),\n"
    "       \"prodid\": s(cal.get(\"PRODID\")), \"events\": []}\n"
    "for ev in cal.walk(\"VEVENT\"):\n"
    "    org = ev.get(\"ORGANIZER\")\n"
    "    att = ev.get(\"ATTENDEE\")\n"
    "    out[\"events\"].append({\n"
    "        \"uid\": s(ev.get(\"UID\")), \"sequence\": int(ev.get(\"SEQUENCE\")),\n"
    "        \"dtstart\": ev[\"DTSTART\"].to_ical().decode(),\n"
    "        \"dtend\": ev[\"DTEND\"].to_ical().decode(),\n"
    "        \"summary\": s(ev.get(\"SUMMARY\")), \"description\": s(ev.get(\"DESCRIPTION\")),\n"
    "        \"status\": s(ev.get(\"STATUS\")), \"organizer\": s(org),\n"
    "        \"attendee\": s(att),\n"
    "        \"attendee_cn\": s(att.params.get(\"CN\")) if att is not None else None})\n"
    "print(json.dumps(out))\n";

/* run_python - python3-icalendar's reading of text as JSON (new reference), or NULL to skip */
static json_t *run_python(const char *text)
{
	char path[] = "/tmp/test_ical_XXXXXX";
	char cmd[4096];
	char buf[65536];
	size_t got = 0, r;
	int fd, status;
	FILE *f;
	json_t *j;
	json_error_t jerr;

	if(access(PYTHON, X_OK) != 0)
		return NULL;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_true((size_t)snprintf(cmd, sizeof(cmd), "%s -c '%s' %s", PYTHON, py_script, path) <
	            sizeof(cmd));
	f = popen(cmd, "r");
	assert_non_null(f);
	while((r = fread(buf + got, 1, sizeof(buf) - 1 - got, f)) > 0)
		got += r;
	buf[got] = '\0';
	status = pclose(f);
	unlink(path);
	assert_true(WIFEXITED(status));
	if(WEXITSTATUS(status) == 3)
		return NULL;
	assert_int_equal(WEXITSTATUS(status), 0);
	j = json_loads(buf, 0, &jerr);
	if(!j)
		fail_msg("python output is not JSON: %s", buf);
	return j;
}

/* jstr - string member of o, or NULL when absent or null */
static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* check_python - what python3-icalendar reads matches the input */
static int check_python(const struct ok_case *c, const char *text)
{
	json_t *j = run_python(text);
	json_t *evs;
	char want[320];
	size_t i;

	if(!j)
		return 0;
	if(c->method) {
		assert_non_null(jstr(j, "method"));
		assert_string_equal(jstr(j, "method"), c->method);
	} else {
		assert_null(jstr(j, "method"));
	}
	assert_string_equal(jstr(j, "version"), "2.0");
	assert_string_equal(jstr(j, "prodid"), "-//Ordinatus//Gateway//EN");
	evs = json_object_get(j, "events");
	assert_int_equal(json_array_size(evs), c->n);
	for(i = 0; i < c->n; i++) {
		const json_t *e = json_array_get(evs, i);
		const struct ical_event *ev = &c->ev[i];
		const char *dtstart = jstr(e, "dtstart");
		int cancelled = ev->cancelled || (c->method && strcmp(c->method, "CANCEL") == 0);

		assert_string_equal(jstr(e, "uid"), ev->uid);
		assert_int_equal(json_integer_value(json_object_get(e, "sequence")), ev->sequence);
		assert_non_null(dtstart);
		assert_int_equal(dtstart[strlen(dtstart) - 1], 'Z');
		assert_string_equal(dtstart, c->dtstart_z[i]);
		assert_string_equal(jstr(e, "dtend"), c->dtend_z[i]);
		assert_string_equal(jstr(e, "summary"),
		                    c->summary_rt[i] ? c->summary_rt[i] : ev->summary);
		if(ev->description)
			assert_string_equal(jstr(e, "description"), ev->description);
		assert_string_equal(jstr(e, "status"), cancelled ? "CANCELLED" : "CONFIRMED");
		snprintf(want, sizeof(want), "mailto:%s", ev->organizer_email);
		assert_string_equal(jstr(e, "organizer"), want);
		if(ev->attendee_email) {
			snprintf(want, sizeof(want), "mailto:%s", ev->attendee_email);
			assert_string_equal(jstr(e, "attendee"), want);
			/* python3-icalendar 4 does not decode RFC 6868, so only plain names compare */
			if(ev->attendee_name && !strchr(ev->attendee_name, '"'))
				assert_string_equal(jstr(e, "attendee_cn"), ev->attendee_name);
		} else {
			assert_null(jstr(e, "attendee"));
		}
	}
	json_decref(j);
	return 1;
}

/* test_build_ok - every table case renders, parses back, and matches in both readers */
static void test_build_ok(void **state)
{
	size_t i;
	int python_ran = 0;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(ok_cases); i++) {
		const struct ok_case *c = &ok_cases[i];
		struct gw_err err = {.field = ""};
		char *text = NULL;
		char *u;
		char want[64];
		size_t k;

		print_message("case: %s\n", c->name);
		assert_int_equal(ical_build(c->ev, c->n, c->method, &text, &err), GW_OK);
		assert_non_null(text);
		check_lines(text);
		u = unfold(text);
		assert_true(strncmp(u, "BEGIN:VCALENDAR\r\n", 17) == 0);
		assert_true(contains_line(u, "PRODID:-//Ordinatus//Gateway//EN"));
		assert_true(contains_line(u, "VERSION:2.0"));
		assert_true(contains_line(u, "CALSCALE:GREGORIAN"));
		if(c->method) {
			snprintf(want, sizeof(want), "METHOD:%s", c->method);
			assert_true(contains_line(u, want));
		} else {
			assert_null(strstr(u, "METHOD:"));
		}
		for(k = 0; k < c->n; k++) {
			snprintf(want, sizeof(want), "DTSTART:%s", c->dtstart_z[k]);
			assert_true(contains_line(u, want));
			snprintf(want, sizeof(want), "DTEND:%s", c->dtend_z[k]);
			assert_true(contains_line(u, want));
		}
		if(c->n)
			assert_true(contains_line(u, "DTSTAMP:20261120T123456Z"));
		free(u);
		check_libical(c, text);
		python_ran += check_python(c, text);
		free(text);
	}
	if(!python_ran)
		print_message("python3-icalendar not available: cross-check skipped\n");
}

/* test_build_bad - refused inputs: GW_EINVAL, the field named, nothing returned */
static void test_build_bad(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct gw_err err = {.field = ""};
		char *text = (char *)&err; /* must be reset to NULL */

		print_message("case: %s\n", c->name);
		assert_int_equal(ical_build(&c->ev, 1, c->method, &text, &err), GW_EINVAL);
		assert_null(text);
		assert_string_equal(err.field, c->field);
		assert_true(err.message[0] != '\0');
	}
}

/* test_validators - the exported name and address checks */
static void test_validators(void **state)
{
	static const struct {
		const char *s;
		int name_ok, email_ok;
	} cases[] = {
	    {"a@b.c", 1, 1},
	    {"first.last+tag@sub.example.org", 1, 1},
	    {"o'neil@example.ie", 1, 1},
	    {"Zoë Ünal", 1, 0},
	    {"Smith, \"Bob\"", 1, 0},
	    {"x^y", 1, 0},
	    {"x^^y", 0, 0},
	    {"x^'y", 0, 0},
	    {"", 0, 0},
	    {"a\rb@c", 0, 0},
	    {"a\nb", 0, 0},
	    {"tab\there", 0, 0},
	    {"@b.c", 1, 0},
	    {"a@", 1, 0},
	    {"a@b@c", 1, 0},
	    {"<a@b.c>", 1, 0},
	    {"a,b@c.d", 1, 0},
	    {"\xff", 0, 0},
	    {"\xed\xa0\x80", 0, 0}, /* UTF-16 surrogate */
	};
	size_t i;

	(void)state;
	assert_false(ical_name_ok(NULL));
	assert_false(ical_email_ok(NULL));
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		print_message("case: %zu\n", i);
		assert_int_equal(ical_name_ok(cases[i].s), cases[i].name_ok);
		assert_int_equal(ical_email_ok(cases[i].s), cases[i].email_ok);
	}
}

/* test_args - argument errors */
static void test_args(void **state)
{
	struct gw_err err = {.field = ""};
	char *text = NULL;

	(void)state;
	assert_int_equal(ical_build(NULL, 1, "REQUEST", &text, &err), GW_EINVAL);
	assert_null(text);
	assert_int_equal(ical_build(NULL, 0, "REQUEST", NULL, &err), GW_EINVAL);
	assert_int_equal(ical_build(NULL, 0, NULL, &text, NULL), GW_OK); /* NULL err is allowed */
	assert_non_null(text);
	free(text);
}

/* teardown_all - drop libical's process-wide caches so LeakSanitizer sees only our memory */
static int teardown_all(void **state)
{
	(void)state;
	icaltimezone_free_builtin_timezones();
	icalmemory_free_ring();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_ok),
	    cmocka_unit_test(test_build_bad),
	    cmocka_unit_test(test_validators),
	    cmocka_unit_test(test_args),
	};

	tz_init();
	return cmocka_run_group_tests_name("ical", tests, NULL, teardown_all);
}
