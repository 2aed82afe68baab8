/*
 * test_lc_slots.c - lc_slots_compute(): a table of availability cases with the slots worked out
 * by hand (UTC, Europe/Berlin and America/New_York across their 2026 daylight-saving changes,
 * Asia/Kolkata, blackouts, busy bookings, several lengths, steps, clipping), a table of inputs
 * that must be refused, a cross-check against a brute-force reference on a 14-day calendar with
 * a few hundred busy ranges, and the RFC 5545 3.3.5 rules of tz_local_to_utc() the slots rely on.
 *
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/lifecycle/lc_slots.h"
#include "common/tz.h"

#define MAX_WIN 8
#define MAX_RANGES 8
#define MAX_LENS 4
#define MAX_WANT 24

/* A slot as written in the tables: "2026-03-28T23:00Z" and a length in minutes. */
struct want_slot {
	const char *start;
	int len;
};

struct range_txt {
	const char *start, *end;
};

struct ok_case {
	const char *name;
	const char *tz;
	struct lc_window win[MAX_WIN];
	size_t nwin;
	struct range_txt blackouts[MAX_RANGES];
	size_t nblackouts;
	struct range_txt busy[MAX_RANGES];
	size_t nbusy;
	int lens[MAX_LENS];
	size_t nlens;
	int step;
	const char *from, *to;
	long count;                  /* -1: want is every slot; else the total, want = first, last */
	struct want_slot want[MAX_WANT];
};

#define W(d, sh, sm, eh, em) {(d), (sh) * 60 + (sm), (eh) * 60 + (em)}
#define EVERY_DAY(sh, sm, eh, em)                                                          \
	W(0, sh, sm, eh, em), W(1, sh, sm, eh, em), W(2, sh, sm, eh, em), W(3, sh, sm, eh, em), \
	    W(4, sh, sm, eh, em), W(5, sh, sm, eh, em), W(6, sh, sm, eh, em)
#define NO_RANGES {{NULL, NULL}}, 0

/*
 * Dates used: 2026-06-01 is a Monday. Europe/Berlin moves from CET (+01) to CEST (+02) at
 * 2026-03-29T01:00Z (02:00 local becomes 03:00) and back at 2026-10-25T01:00Z (03:00 local
 * becomes 02:00). America/New_York moves from EST (-05) to EDT (-04) at 2026-03-08T07:00Z and
 * back at 2026-11-01T06:00Z. Both changes are on Sundays.
 */
static const struct ok_case ok_cases[] = {
    {"UTC, plain working week",
     "UTC",
     {W(1, 9, 0, 12, 0), W(2, 9, 0, 12, 0), W(3, 9, 0, 12, 0), W(4, 9, 0, 12, 0),
      W(5, 9, 0, 12, 0)},
     5, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-05-31T00:00Z", "2026-06-08T00:00Z", -1,
     {{"2026-06-01T09:00Z", 60}, {"2026-06-01T10:00Z", 60}, {"2026-06-01T11:00Z", 60},
      {"2026-06-02T09:00Z", 60}, {"2026-06-02T10:00Z", 60}, {"2026-06-02T11:00Z", 60},
      {"2026-06-03T09:00Z", 60}, {"2026-06-03T10:00Z", 60}, {"2026-06-03T11:00Z", 60},
      {"2026-06-04T09:00Z", 60}, {"2026-06-04T10:00Z", 60}, {"2026-06-04T11:00Z", 60},
      {"2026-06-05T09:00Z", 60}, {"2026-06-05T10:00Z", 60}, {"2026-06-05T11:00Z", 60}}},
    {"Berlin, 09:00 local across the spring change",
     "Europe/Berlin", {EVERY_DAY(9, 0, 10, 0)}, 7, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-03-28T00:00Z", "2026-03-31T00:00Z", -1,
     {{"2026-03-28T08:00Z", 60}, {"2026-03-29T07:00Z", 60}, {"2026-03-30T07:00Z", 60}}},
    {"Berlin, window across the spring change is 5 h",
     "Europe/Berlin", {W(0, 0, 0, 6, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-03-28T00:00Z", "2026-03-30T00:00Z", -1,
     {{"2026-03-28T23:00Z", 60}, {"2026-03-29T00:00Z", 60}, {"2026-03-29T01:00Z", 60},
      {"2026-03-29T02:00Z", 60}, {"2026-03-29T03:00Z", 60}}},
    {"Berlin, window edges in the skipped hour",
     "Europe/Berlin", {W(0, 2, 0, 4, 0), W(0, 2, 15, 2, 45), W(0, 2, 30, 3, 30)}, 3,
     NO_RANGES, NO_RANGES, {30}, 1, 30,
     "2026-03-28T00:00Z", "2026-03-30T00:00Z", -1,
     /* 02:00-04:00 is 03:00-04:00 CEST; 02:15-02:45 does not exist; 02:30-03:30 is
      * 03:00-03:30 CEST and repeats the first slot */
     {{"2026-03-29T01:00Z", 30}, {"2026-03-29T01:30Z", 30}}},
    {"Berlin, whole spring-forward day is 23 slots",
     "Europe/Berlin", {W(0, 0, 0, 24, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-03-28T00:00Z", "2026-03-30T00:00Z", 23,
     {{"2026-03-28T23:00Z", 60}, {"2026-03-29T21:00Z", 60}}},
    {"Berlin, 09:00 local across the autumn change",
     "Europe/Berlin", {EVERY_DAY(9, 0, 10, 0)}, 7, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-10-24T00:00Z", "2026-10-27T00:00Z", -1,
     {{"2026-10-24T07:00Z", 60}, {"2026-10-25T08:00Z", 60}, {"2026-10-26T08:00Z", 60}}},
    {"Berlin, window across the autumn change is 7 h",
     "Europe/Berlin", {W(0, 0, 0, 6, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-10-24T00:00Z", "2026-10-26T00:00Z", -1,
     {{"2026-10-24T22:00Z", 60}, {"2026-10-24T23:00Z", 60}, {"2026-10-25T00:00Z", 60},
      {"2026-10-25T01:00Z", 60}, {"2026-10-25T02:00Z", 60}, {"2026-10-25T03:00Z", 60},
      {"2026-10-25T04:00Z", 60}}},
    {"Berlin, whole fall-back day is 25 slots",
     "Europe/Berlin", {W(0, 0, 0, 24, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-10-24T00:00Z", "2026-10-26T00:00Z", 25,
     {{"2026-10-24T22:00Z", 60}, {"2026-10-25T22:00Z", 60}}},
    {"New York, 09:00 local across the spring change",
     "America/New_York", {EVERY_DAY(9, 0, 10, 0)}, 7, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-03-07T00:00Z", "2026-03-10T00:00Z", -1,
     {{"2026-03-07T14:00Z", 60}, {"2026-03-08T13:00Z", 60}, {"2026-03-09T13:00Z", 60}}},
    {"New York, window across the spring change is 3 h",
     "America/New_York", {W(0, 0, 0, 4, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-03-07T00:00Z", "2026-03-10T00:00Z", -1,
     {{"2026-03-08T05:00Z", 60}, {"2026-03-08T06:00Z", 60}, {"2026-03-08T07:00Z", 60}}},
    {"New York, 09:00 local across the autumn change",
     "America/New_York", {EVERY_DAY(9, 0, 10, 0)}, 7, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-10-31T00:00Z", "2026-11-03T00:00Z", -1,
     {{"2026-10-31T13:00Z", 60}, {"2026-11-01T14:00Z", 60}, {"2026-11-02T14:00Z", 60}}},
    {"New York, window across the autumn change is 5 h",
     "America/New_York", {W(0, 0, 0, 4, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-10-31T00:00Z", "2026-11-03T00:00Z", -1,
     {{"2026-11-01T04:00Z", 60}, {"2026-11-01T05:00Z", 60}, {"2026-11-01T06:00Z", 60},
      {"2026-11-01T07:00Z", 60}, {"2026-11-01T08:00Z", 60}}},
    {"Kolkata, half-hour offset",
     "Asia/Kolkata", {W(1, 9, 0, 10, 0)}, 1, NO_RANGES, NO_RANGES, {30}, 1, 30,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T03:30Z", 30}, {"2026-06-01T04:00Z", 30}}},
    {"blackouts remove slots; one ending at the window start removes none",
     "UTC", {W(1, 9, 0, 13, 0), W(2, 9, 0, 13, 0)}, 2,
     {{"2026-06-01T10:30Z", "2026-06-01T11:30Z"},
      {"2026-06-01T08:00Z", "2026-06-01T09:00Z"},
      {"2026-06-02T00:00Z", "2026-06-03T00:00Z"}},
     3, NO_RANGES, {60}, 1, 60,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T09:00Z", 60}, {"2026-06-01T12:00Z", 60}}},
    {"busy removes overlapping slots, not adjacent ones",
     "UTC", {W(1, 9, 0, 13, 0)}, 1, NO_RANGES,
     {{"2026-06-01T10:00Z", "2026-06-01T11:00Z"}}, 1, {60}, 1, 30,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T09:00Z", 60}, {"2026-06-01T11:00Z", 60}, {"2026-06-01T11:30Z", 60},
      {"2026-06-01T12:00Z", 60}}},
    {"busy and blackouts together, overlapping and unsorted, empty range ignored",
     "UTC", {W(1, 9, 0, 17, 0)}, 1,
     {{"2026-06-01T15:00Z", "2026-06-01T16:00Z"}, {"2026-06-01T12:00Z", "2026-06-01T11:00Z"}},
     2,
     {{"2026-06-01T13:30Z", "2026-06-01T15:30Z"}, {"2026-06-01T10:00Z", "2026-06-01T10:30Z"},
      {"2026-06-01T10:15Z", "2026-06-01T11:00Z"}},
     3, {60}, 1, 60,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T09:00Z", 60}, {"2026-06-01T11:00Z", 60}, {"2026-06-01T12:00Z", 60},
      {"2026-06-01T16:00Z", 60}}},
    {"several lengths, unsorted and repeated; a booking blocks only the longer one",
     "UTC", {W(1, 9, 0, 12, 0)}, 1, NO_RANGES,
     {{"2026-06-01T10:00Z", "2026-06-01T10:30Z"}}, 1, {90, 60, 60}, 3, 30,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T09:00Z", 60}, {"2026-06-01T10:30Z", 60}, {"2026-06-01T10:30Z", 90},
      {"2026-06-01T11:00Z", 60}}},
    {"several lengths, free window",
     "UTC", {W(1, 9, 0, 11, 0)}, 1, NO_RANGES, NO_RANGES, {60, 90}, 2, 30,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T09:00Z", 60}, {"2026-06-01T09:00Z", 90}, {"2026-06-01T09:30Z", 60},
      {"2026-06-01T09:30Z", 90}, {"2026-06-01T10:00Z", 60}}},
    {"step shorter than the length",
     "UTC", {W(1, 9, 0, 10, 30)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 15,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T09:00Z", 60}, {"2026-06-01T09:15Z", 60}, {"2026-06-01T09:30Z", 60}}},
    {"step longer than the length",
     "UTC", {W(1, 9, 0, 10, 30)}, 1, NO_RANGES, NO_RANGES, {30}, 1, 45,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T09:00Z", 30}, {"2026-06-01T09:45Z", 30}}},
    {"from and to clip; the grid stays on the window start",
     "UTC", {W(1, 9, 0, 13, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-06-01T09:30Z", "2026-06-01T12:30Z", -1,
     {{"2026-06-01T10:00Z", 60}, {"2026-06-01T11:00Z", 60}}},
    {"from is inclusive, to is an inclusive end",
     "UTC", {W(1, 9, 0, 13, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-06-01T10:00Z", "2026-06-01T12:00Z", -1,
     {{"2026-06-01T10:00Z", 60}, {"2026-06-01T11:00Z", 60}}},
    {"overlapping windows give each slot once",
     "UTC", {W(1, 9, 0, 11, 0), W(1, 10, 0, 12, 0)}, 2, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T09:00Z", 60}, {"2026-06-01T10:00Z", 60}, {"2026-06-01T11:00Z", 60}}},
    {"window to midnight; a slot never spans two windows",
     "UTC", {W(1, 22, 0, 24, 0), W(2, 0, 0, 1, 0)}, 2, NO_RANGES, NO_RANGES, {120}, 1, 60,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1,
     {{"2026-06-01T22:00Z", 120}}},
    {"length longer than every window",
     "UTC", {W(1, 9, 0, 10, 0)}, 1, NO_RANGES, NO_RANGES, {61}, 1, 1,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1, {{NULL, 0}}},
    {"empty range from == to",
     "UTC", {W(1, 9, 0, 10, 0)}, 1, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-06-01T09:00Z", "2026-06-01T09:00Z", -1, {{NULL, 0}}},
    {"no windows",
     "UTC", {W(1, 9, 0, 10, 0)}, 0, NO_RANGES, NO_RANGES, {60}, 1, 60,
     "2026-05-31T00:00Z", "2026-06-07T00:00Z", -1, {{NULL, 0}}},
};

struct bad_case {
	const char *name;
	const char *tz;
	struct lc_window win;
	int len;
	size_t nlens;
	int step;
	const char *from, *to;
	const char *field;
};

static const struct bad_case bad_cases[] = {
    {"unknown zone", "Mars/Olympus_Mons", W(1, 9, 0, 10, 0), 60, 1, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "timezone"},
    {"no zone", NULL, W(1, 9, 0, 10, 0), 60, 1, 60, "2026-06-01T00:00Z", "2026-06-02T00:00Z",
     "timezone"},
    {"empty zone", "", W(1, 9, 0, 10, 0), 60, 1, 60, "2026-06-01T00:00Z", "2026-06-02T00:00Z",
     "timezone"},
    {"wday 7", "UTC", W(7, 9, 0, 10, 0), 60, 1, 60, "2026-06-01T00:00Z", "2026-06-02T00:00Z",
     "weekly"},
    {"wday -1", "UTC", W(-1, 9, 0, 10, 0), 60, 1, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "weekly"},
    {"start after end", "UTC", W(1, 10, 0, 9, 0), 60, 1, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "weekly"},
    {"start equals end", "UTC", W(1, 9, 0, 9, 0), 60, 1, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "weekly"},
    {"negative start", "UTC", {1, -60, 60}, 60, 1, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "weekly"},
    {"end past midnight", "UTC", {1, 600, 1441}, 60, 1, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "weekly"},
    {"start at midnight of the next day", "UTC", {1, 1440, 1440}, 60, 1, 60,
     "2026-06-01T00:00Z", "2026-06-02T00:00Z", "weekly"},
    {"zero length", "UTC", W(1, 9, 0, 10, 0), 0, 1, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "lengths"},
    {"negative length", "UTC", W(1, 9, 0, 10, 0), -30, 1, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "lengths"},
    {"no lengths", "UTC", W(1, 9, 0, 10, 0), 60, 0, 60, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "lengths"},
    {"zero step", "UTC", W(1, 9, 0, 10, 0), 60, 1, 0, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "step"},
    {"negative step", "UTC", W(1, 9, 0, 10, 0), 60, 1, -15, "2026-06-01T00:00Z",
     "2026-06-02T00:00Z", "step"},
    {"range over a year", "UTC", W(1, 9, 0, 10, 0), 60, 1, 60, "2026-01-01T00:00Z",
     "2027-01-03T00:00Z", "to"},
    {"from before 1970", "UTC", W(1, 9, 0, 10, 0), 60, 1, 60, "1969-12-31T00:00Z",
     "1970-01-02T00:00Z", "from"},
};

/* days_from_civil - days since 1970-01-01 (H. Hinnant), for the expected values */
static long days_from_civil(long y, int m, int d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153L * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* civil_from_days - the date of a day number (inverse of days_from_civil) */
static void civil_from_days(long z, int *y, int *m, int *d)
{
	long era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* ts - instant of "YYYY-MM-DDTHH:MMZ" */
static time_t ts(const char *s)
{
	int y, mo, d, h, mi;
	char z;

	assert_non_null(s);
	assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d%c", &y, &mo, &d, &h, &mi, &z), 6);
	assert_int_equal(z, 'Z');
	return (time_t)days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

/* fmt - "YYYY-MM-DDTHH:MMZ" of t into buf, for failure messages */
static const char *fmt(time_t t, char *buf, size_t n)
{
	struct tm tm;

	if(tz_utc_to_local("UTC", t, &tm) != GW_OK)
		return "?";
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min);
	return buf;
}

/* to_ranges - table ranges as lc_range */
static void to_ranges(const struct range_txt *in, size_t n, struct lc_range *out)
{
	size_t i;

	for(i = 0; i < n; i++) {
		out[i].start = ts(in[i].start);
		out[i].end = ts(in[i].end);
	}
}

/* check_slot - one computed slot against its expectation */
static void check_slot(const struct lc_slot *got, const struct want_slot *want, size_t i)
{
	char a[64], b[64];
	time_t s = ts(want->start);

	if(got->start != s || got->length_min != want->len)
		fail_msg("slot %zu: got %s/%d, want %s/%d", i, fmt(got->start, a, sizeof(a)),
		         got->length_min, fmt(s, b, sizeof(b)), want->len);
	assert_int_equal(got->end - got->start, (time_t)want->len * 60);
}

/* test_cases - every ok case gives exactly its slots */
static void test_cases(void **state)
{
	size_t i, k;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(ok_cases); i++) {
		const struct ok_case *c = &ok_cases[i];
		struct lc_range blackouts[MAX_RANGES], busy[MAX_RANGES];
		struct lc_slot *slots = NULL;
		size_t n = 99, nwant = 0;
		struct gw_err err = {.field = ""};
		char a[64];

		print_message("case: %s\n", c->name);
		to_ranges(c->blackouts, c->nblackouts, blackouts);
		to_ranges(c->busy, c->nbusy, busy);
		assert_int_equal(lc_slots_compute(c->tz, c->win, c->nwin, blackouts, c->nblackouts,
		                                  busy, c->nbusy, c->lens, c->nlens, c->step,
		                                  ts(c->from), ts(c->to), &slots, &n, &err),
		                 GW_OK);
		while(nwant < MAX_WANT && c->want[nwant].start)
			nwant++;
		if(c->count < 0) {
			if(n != nwant) {
				for(k = 0; k < n; k++)
					print_message("  got %s/%d\n", fmt(slots[k].start, a, sizeof(a)),
					              slots[k].length_min);
				fail_msg("got %zu slots, want %zu", n, nwant);
			}
			for(k = 0; k < n; k++)
				check_slot(&slots[k], &c->want[k], k);
		} else {
			assert_int_equal(n, (size_t)c->count);
			check_slot(&slots[0], &c->want[0], 0);
			check_slot(&slots[n - 1], &c->want[1], n - 1);
			for(k = 1; k < n; k++)
				assert_true(slots[k].start == slots[k - 1].end); /* back to back */
		}
		if(n == 0)
			assert_null(slots);
		free(slots);
	}
}

/* test_invalid - refused inputs: GW_EINVAL, the field named, nothing returned */
static void test_invalid(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct lc_slot *slots = (struct lc_slot *)&i; /* must come back NULL */
		size_t n = 99;
		struct gw_err err = {.field = ""};

		print_message("case: %s\n", c->name);
		assert_int_equal(lc_slots_compute(c->tz, &c->win, 1, NULL, 0, NULL, 0, &c->len,
		                                  c->nlens, c->step, ts(c->from), ts(c->to), &slots,
		                                  &n, &err),
		                 GW_EINVAL);
		assert_null(slots);
		assert_int_equal(n, 0);
		assert_string_equal(err.field, c->field);
		assert_true(err.message[0] != '\0');
	}
}

/* test_null_lists - a count without its array is refused; NULL err is allowed */
static void test_null_lists(void **state)
{
	static const struct lc_window win = W(1, 9, 0, 10, 0);
	static const int len = 60;
	struct lc_slot *slots = NULL;
	size_t n = 0;
	struct gw_err err = {.field = ""};
	time_t from = ts("2026-06-01T00:00Z"), to = ts("2026-06-02T00:00Z");

	(void)state;
	assert_int_equal(lc_slots_compute("UTC", NULL, 1, NULL, 0, NULL, 0, &len, 1, 60, from, to,
	                                  &slots, &n, &err),
	                 GW_EINVAL);
	assert_string_equal(err.field, "weekly");
	assert_int_equal(lc_slots_compute("UTC", &win, 1, NULL, 2, NULL, 0, &len, 1, 60, from, to,
	                                  &slots, &n, &err),
	                 GW_EINVAL);
	assert_string_equal(err.field, "blackouts");
	assert_int_equal(lc_slots_compute("UTC", &win, 1, NULL, 0, NULL, 3, &len, 1, 60, from, to,
	                                  &slots, &n, &err),
	                 GW_EINVAL);
	assert_string_equal(err.field, "busy");
	assert_int_equal(lc_slots_compute("UTC", &win, 1, NULL, 0, NULL, 0, NULL, 1, 60, from, to,
	                                  &slots, &n, NULL),
	                 GW_EINVAL);
	assert_int_equal(lc_slots_compute("UTC", &win, 1, NULL, 0, NULL, 0, &len, 1, 60, from, to,
	                                  &slots, &n, NULL),
	                 GW_OK);
	assert_int_equal(n, 1);
	free(slots);
}

/* rng - a fixed linear congruential sequence, so the big case is the same on every run */
static unsigned rng(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

/* overlaps_any - brute force: does [s, e) meet any range */
static int overlaps_any(const struct lc_range *r, size_t n, time_t s, time_t e)
{
	size_t i;

	for(i = 0; i < n; i++)
		if(r[i].start < r[i].end && r[i].start < e && s < r[i].end)
			return 1;
	return 0;
}

/* cmp_ref - reference order: start, then length */
static int cmp_ref(const void *a, const void *b)
{
	const struct lc_slot *x = a, *y = b;

	if(x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->length_min > y->length_min) - (x->length_min < y->length_min);
}

/* test_reference - 14 days in Berlin across the spring change, 3 windows a day, 3 lengths,
 * step 15, 300 busy ranges and 20 blackouts: equal to an O(slots x ranges) reference */
static void test_reference(void **state)
{
	enum { NBUSY = 300, NBLACK = 20, NWIN = 21 };
	static const int lens[] = {30, 60, 90};
	const char *tz = "Europe/Berlin";
	struct lc_window win[NWIN];
	struct lc_range busy[NBUSY], black[NBLACK];
	struct lc_slot *got = NULL, *ref = NULL;
	size_t ngot = 0, nref = 0, cap = 0, i, j, k;
	time_t from = ts("2026-03-22T10:10Z"), to = ts("2026-04-05T10:10Z");
	long d0 = days_from_civil(2026, 3, 21);
	unsigned seed = 42;
	struct gw_err err = {.field = ""};
	struct timespec t0, t1;

	(void)state;
	for(i = 0; i < 7; i++) {
		win[3 * i] = (struct lc_window){(int)i, 8 * 60, 12 * 60};
		win[3 * i + 1] = (struct lc_window){(int)i, 13 * 60 + 15, 18 * 60};
		win[3 * i + 2] = (struct lc_window){(int)i, 17 * 60, 21 * 60 + 40}; /* overlaps */
	}
	for(i = 0; i < NBUSY; i++) {
		busy[i].start = from - 86400 + (time_t)(rng(&seed) % (16 * 96)) * 900 +
		                (time_t)(rng(&seed) % 4) * 60;
		busy[i].end = busy[i].start + 900 + (time_t)(rng(&seed) % 4) * 900;
	}
	for(i = 0; i < NBLACK; i++) {
		black[i].start = from + (time_t)(rng(&seed) % (14 * 24)) * 3600;
		black[i].end = black[i].start + (time_t)(rng(&seed) % 5) * 3600; /* some empty */
	}

	/* reference: every window of every local day, converted on its own, every grid point */
	for(long day = d0; day <= d0 + 16; day++) {
		int y, m, d, wd = (int)((day + 4) % 7);

		civil_from_days(day, &y, &m, &d);
		for(i = 0; i < NWIN; i++) {
			time_t ws, we, s;

			if(win[i].wday != wd)
				continue;
			assert_int_equal(tz_local_to_utc(tz, y, m, d, win[i].start_min / 60,
			                                 win[i].start_min % 60, &ws),
			                 GW_OK);
			assert_int_equal(tz_local_to_utc(tz, y, m, d, win[i].end_min / 60,
			                                 win[i].end_min % 60, &we),
			                 GW_OK);
			for(s = ws; s < we; s += 15 * 60) {
				for(j = 0; j < GW_ARRAY_LEN(lens); j++) {
					time_t e = s + lens[j] * 60;

					if(s < from || e > to || e > we || overlaps_any(busy, NBUSY, s, e) ||
					   overlaps_any(black, NBLACK, s, e))
						continue;
					if(nref == cap) {
						cap = cap ? cap * 2 : 256;
						ref = realloc(ref, cap * sizeof(*ref));
						assert_non_null(ref);
					}
					ref[nref++] = (struct lc_slot){s, e, lens[j]};
				}
			}
		}
	}
	qsort(ref, nref, sizeof(*ref), cmp_ref);
	for(i = 0, k = 0; i < nref; i++)
		if(k == 0 || cmp_ref(&ref[i], &ref[k - 1]) != 0)
			ref[k++] = ref[i];
	nref = k;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(lc_slots_compute(tz, win, NWIN, black, NBLACK, busy, NBUSY, lens,
	                                  GW_ARRAY_LEN(lens), 15, from, to, &got, &ngot, &err),
	                 GW_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("reference case: %zu slots in %ld us\n", ngot,
	              (long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
	assert_true(nref > 100); /* the ranges left plenty free: the case tests something */
	assert_int_equal(ngot, nref);
	for(i = 0; i < ngot; i++) {
		assert_int_equal(got[i].start, ref[i].start);
		assert_int_equal(got[i].end, ref[i].end);
		assert_int_equal(got[i].length_min, ref[i].length_min);
	}
	free(got);
	free(ref);
}

/* test_tz_rules - tz_local_to_utc: skipped wall times move forward, repeated ones mean the
 * first occurrence (RFC 5545 3.3.5), 24:00 is the next midnight */
static void test_tz_rules(void **state)
{
	static const struct {
		const char *tz;
		int y, m, d, h, mi;
		const char *want;
	} cases[] = {
	    {"Europe/Berlin", 2026, 3, 29, 1, 59, "2026-03-29T00:59Z"},
	    {"Europe/Berlin", 2026, 3, 29, 2, 0, "2026-03-29T01:00Z"},  /* skipped: 03:00 CEST */
	    {"Europe/Berlin", 2026, 3, 29, 2, 30, "2026-03-29T01:30Z"}, /* skipped: 03:30 CEST */
	    {"Europe/Berlin", 2026, 3, 29, 3, 0, "2026-03-29T01:00Z"},
	    {"Europe/Berlin", 2026, 10, 25, 2, 30, "2026-10-25T00:30Z"}, /* twice: CEST first */
	    {"Europe/Berlin", 2026, 10, 25, 3, 0, "2026-10-25T02:00Z"},
	    {"Europe/Berlin", 2026, 10, 25, 24, 0, "2026-10-25T23:00Z"},
	    {"America/New_York", 2026, 3, 8, 2, 30, "2026-03-08T07:30Z"}, /* skipped: 03:30 EDT */
	    {"America/New_York", 2026, 11, 1, 1, 30, "2026-11-01T05:30Z"}, /* twice: EDT first */
	    {"America/New_York", 2026, 11, 1, 2, 0, "2026-11-01T07:00Z"},
	    {"UTC", 2026, 6, 1, 9, 0, "2026-06-01T09:00Z"},
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		time_t t = 0;
		char a[64];

		print_message("case: %s %04d-%02d-%02d %02d:%02d\n", cases[i].tz, cases[i].y,
		              cases[i].m, cases[i].d, cases[i].h, cases[i].mi);
		assert_int_equal(tz_local_to_utc(cases[i].tz, cases[i].y, cases[i].m, cases[i].d,
		                                 cases[i].h, cases[i].mi, &t),
		                 GW_OK);
		if(t != ts(cases[i].want))
			fail_msg("got %s, want %s", fmt(t, a, sizeof(a)), cases[i].want);
	}
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
	    cmocka_unit_test(test_tz_rules),   cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_invalid),    cmocka_unit_test(test_null_lists),
	    cmocka_unit_test(test_reference),
	};

	tz_init();
	return cmocka_run_group_tests_name("lc_slots", tests, NULL, teardown_all);
}
