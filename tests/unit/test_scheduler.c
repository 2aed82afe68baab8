/*
 * test_scheduler.c - the scheduler's window arithmetic at its edges, and proof that every query
 * a tick makes is an index range (EXPLAIN QUERY PLAN shows no full scan of bookings).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/scheduler/scheduler.h"
#include "store/store.h"
#include "common/timefmt.h"

struct window_case {
	const char *what;
	const char *now;
	const char *start;
	const char *confirmed;
	int offset_min, tick_min;
	bool due;
};

static const struct window_case cases[] = {
    /* 1 h reminder, 15 min tick, session at 10:00: the point is 09:00 */
    {"exactly on the upper edge", "2026-12-10T08:45:00Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 60, 15, true},
    {"one second before the upper edge", "2026-12-10T08:44:59Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 60, 15, false},
    {"exactly on the point", "2026-12-10T09:00:00Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 60, 15, true},
    {"one second inside the lower edge", "2026-12-10T09:14:59Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 60, 15, true},
    {"exactly on the lower edge (excluded)", "2026-12-10T09:15:00Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 60, 15, false},
    {"one second past the lower edge", "2026-12-10T09:15:01Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 60, 15, false},
    /* offset 0: at the start, never after it */
    {"offset 0 one second before the start", "2026-12-10T09:59:59Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 0, 15, true},
    {"offset 0 at the start", "2026-12-10T10:00:00Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 0, 15, false},
    /* a week ahead */
    {"168 h on the point", "2026-12-03T10:00:00Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 168 * 60, 15, true},
    {"168 h a tick and a second early", "2026-12-03T09:44:59Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 168 * 60, 15, false},
    /* no retroactive reminders: confirmed after the point */
    {"confirmed one second after the point", "2026-12-10T09:05:00Z", "2026-12-10T10:00:00Z",
     "2026-12-10T09:00:01Z", 60, 15, false},
    {"confirmed exactly at the point", "2026-12-10T09:05:00Z", "2026-12-10T10:00:00Z",
     "2026-12-10T09:00:00Z", 60, 15, true},
    {"booked 2 h ahead: no 24 h reminder", "2026-12-10T08:00:00Z", "2026-12-10T10:00:00Z",
     "2026-12-10T08:00:00Z", 24 * 60, 15, false},
    {"booked 2 h ahead: the 1 h reminder", "2026-12-10T08:55:00Z", "2026-12-10T10:00:00Z",
     "2026-12-10T08:00:00Z", 60, 15, true},
    /* Europe/Berlin goes to summer time at 2026-03-29T01:00Z: "24 hours before" is 24 elapsed
     * hours, so the point of a 10:00Z (12:00 CEST) session is 2026-03-28T10:00Z (11:00 CET) */
    {"DST between reminder and session: on the point", "2026-03-28T10:00:00Z",
     "2026-03-29T10:00:00Z", "2026-03-01T00:00:00Z", 24 * 60, 15, true},
    {"DST: one local hour later is not the point", "2026-03-28T11:00:00Z",
     "2026-03-29T10:00:00Z", "2026-03-01T00:00:00Z", 24 * 60, 15, false},
    /* a longer tick widens the window */
    {"60 min tick reaches 59 min early", "2026-12-10T08:01:00Z", "2026-12-10T10:00:00Z",
     "2026-12-01T00:00:00Z", 60, 60, true},
};

/* at - parse an RFC 3339 literal of the table */
static time_t at(const char *s)
{
	time_t t = 0;

	assert_int_equal(timefmt_parse(s, &t), GW_OK);
	return t;
}

/* test_windows - every edge case of the table */
static void test_windows(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct window_case *c = &cases[i];
		bool got = sched_reminder_due(at(c->start), at(c->confirmed), c->offset_min,
		                              c->tick_min, at(c->now));
		if(got != c->due)
			fail_msg("%s: got %d, want %d", c->what, got, c->due);
	}
}

/* test_plans - no query of a tick scans the bookings table */
static void test_plans(void **state)
{
	char dir[] = "/tmp/ordinatus-sched-XXXXXX", path[128];
	struct store *st = NULL;
	struct gw_err err = {0};
	json_t *plans = NULL, *line;
	size_t i;
	int searches = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	assert_int_equal(store_open(path, true, &st, &err), GW_OK);
	assert_int_equal(store_sched_explain(st, &plans), GW_OK);
	assert_true(json_array_size(plans) >= 3);
	json_array_foreach(plans, i, line) {
		const char *s = json_string_value(line);
		if(strncmp(s, "SCAN bookings", 13) == 0 || strstr(s, "SCAN bookings"))
			fail_msg("full scan in a tick query: %s", s);
		if(strstr(s, "SEARCH bookings USING") && strstr(s, "INDEX"))
			searches++;
	}
	assert_int_equal(searches, 3);
	json_decref(plans);
	store_close(st);
	snprintf(path, sizeof(path), "%s/t.db", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/t.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/t.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_windows),
	    cmocka_unit_test(test_plans),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
