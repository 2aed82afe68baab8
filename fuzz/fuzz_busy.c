/*
 * fuzz_busy.c - libFuzzer harness for the busy-time parsers of the calendar providers: the
 * input is handed to the CalDAV multistatus + iCalendar parser as it came, and, when it is
 * JSON, to Google's freeBusy and Graph's calendarView parsers. Whatever the answer, they must
 * not crash, and every block they give back must lie inside the range asked for (start < end).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/google/gcal.h"
#include "providers/ical/caldav.h"
#include "providers/outlook/graph.h"

#define FROM ((time_t)1796169600) /* 2026-12-02T00:00:00Z */
#define TO   ((time_t)1796256000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - every block inside [FROM, TO) and not empty */
static void check(const json_t *blocks)
{
	const json_t *b;
	size_t i;

	json_array_foreach(blocks, i, b)
	{
		json_int_t s = json_integer_value(json_array_get(b, 0));
		json_int_t e = json_integer_value(json_array_get(b, 1));
		if(s < FROM || e > TO || s >= e)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *blocks = json_array(), *answer, *g = NULL;
	char why[300];

	if(!blocks)
		return 0;
	if(caldav_busy_parse((const char *)data, size, FROM, TO, blocks, why, sizeof(why)) ==
	   GW_OK)
		check(blocks);
	json_array_clear(blocks);
	answer = json_loadb((const char *)data, size, 0, NULL);
	if(answer) {
		if(gcal_busy_parse(answer, "primary", FROM, TO, &g, why, sizeof(why)) == GW_OK)
			check(g);
		if(graph_busy_parse(answer, FROM, TO, blocks, why, sizeof(why)) == GW_OK)
			check(blocks);
	}
	json_decref(g);
	json_decref(answer);
	json_decref(blocks);
	return 0;
}
