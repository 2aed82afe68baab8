/*
 * log.c - JSON-lines log writer.
 *
 * Entry points: log_event(), log_members(), log_buf_members(), log_buf_flush(), log_enabled(),
 * log_set_level(), log_quiet().
 * Threading: safe; each line is one write(2); the level is an atomic.
 */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "timefmt.h"

const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static atomic_int min_level = 1; /* info */

/* level_of - index of a level name; unknown names count as error (always written) */
static int level_of(const char *level)
{
	int i;

	for(i = 0; log_levels[i]; i++)
		if(strcmp(log_levels[i], level) == 0)
			return i;
	return 3;
}

/* log_set_level - the lowest level written */
int log_set_level(const char *level)
{
	int i;

	for(i = 0; log_levels[i]; i++) {
		if(strcmp(log_levels[i], level) == 0) {
			atomic_store(&min_level, i);
			return 0;
		}
	}
	return -1;
}

/* log_quiet - suppress info lines */
void log_quiet(int quiet)
{
	atomic_store(&min_level, quiet ? 2 : 1);
}

/* log_enabled - is level written */
bool log_enabled(const char *level)
{
	return level_of(level) >= atomic_load(&min_level);
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
	if(!log_enabled(level)) {
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

/* log_members - write one line of preformatted members (no json_t: a hot path's line): a
 * log_buf of one line, written at once */
void log_members(const char *level, const char *event, const char *members)
{
	struct log_buf lb;

	lb.n = 0;
	lb.ts[0] = '\0';
	lb.ts_at = 0;
	log_buf_members(&lb, level, event, members);
	log_buf_flush(&lb);
}

/* log_buf_flush - write what lb holds and empty it */
void log_buf_flush(struct log_buf *lb)
{
	if(lb->n > 0 && write(STDERR_FILENO, lb->b, lb->n) < 0) {
		/* nothing useful to do when stderr is gone */
	}
	lb->n = 0;
}

/* log_buf_members - one line into lb (the timestamp formatted once a second) */
void log_buf_members(struct log_buf *lb, const char *level, const char *event,
                     const char *members)
{
	char line[1024];
	time_t now;
	int n;

	if(!log_enabled(level))
		return;
	now = clock_now();
	if(lb->ts_at != (long long)now || !lb->ts[0]) {
		char ts[TIMEFMT_LEN];

		timefmt_rfc3339(now, ts);
		snprintf(lb->ts, sizeof(lb->ts), "%s", ts);
		lb->ts_at = (long long)now;
	}
	n = snprintf(line, sizeof(line), "{\"event\":\"%s\",\"level\":\"%s\",%s,\"ts\":\"%s\"}\n",
	             event, level, members, lb->ts);
	if(n <= 0 || (size_t)n >= sizeof(line))
		return; /* callers keep their lines short; a longer one is not cut into bad JSON */
	if(lb->n + (size_t)n > sizeof(lb->b))
		log_buf_flush(lb);
	if(lb->n == 0)
		lb->first_ms = clock_mono_ms();
	memcpy(lb->b + lb->n, line, (size_t)n);
	lb->n += (size_t)n;
}
