/*
 * log.c - JSON-lines log writer.
 *
 * Entry points: log_event(), log_quiet(). Threading: safe; each line is one write(2).
 */
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "timefmt.h"

static int quiet_info;

/* log_quiet - suppress info lines */
void log_quiet(int quiet)
{
	quiet_info = quiet;
}

/* log_event - write one JSON line to stderr */
void log_event(const char *level, const char *event, json_t *fields)
{
	json_t *line = fields && json_is_object(fields) ? fields : json_object();
	char ts[TIMEFMT_LEN];
	char *text;
	size_t len;

	if(fields && line != fields)
		json_decref(fields);
	if(!line)
		return;
	if(quiet_info && strcmp(level, "info") == 0) {
		json_decref(line);
		return;
	}
	timefmt_rfc3339(clock_now(), ts);
	json_object_set_new(line, "ts", json_string(ts));
	json_object_set_new(line, "level", json_string(level));
	json_object_set_new(line, "event", json_string(event));
	text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(line);
	if(!text)
		return;
	len = strlen(text);
	text[len] = '\n'; /* replaces the NUL: the buffer is ours and written by length */
	if(write(STDERR_FILENO, text, len + 1) < 0) {
		/* nothing useful to do when stderr is gone */
	}
	free(text);
}
