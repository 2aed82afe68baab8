/*
 * log.h - JSON-lines logging to stderr: {"ts":..., "level":..., "event":..., fields...}.
 * Never pass secrets (tokens, passwords, keys, raw request paths that hold tokens) in fields.
 * Levels, lowest first: debug, info, warn, error; lines below the set level are dropped.
 * Threading: one line per call, written with a single write(2) so lines never interleave; the
 * level is set once at start.
 */
#ifndef LOG_H
#define LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* log_levels - the level names, lowest first, NULL-terminated (for gw_enum_check). */
extern const char *const log_levels[];

/* log_event - write one line; fields is a JSON object or NULL and is consumed (stolen). */
void log_event(const char *level, const char *event, json_t *fields);

/* log_members - write one line whose other fields are members, JSON object members the caller
 * has formatted ("\"id\":7,\"kind\":\"x\""): for a hot path, where building a json_t per
 * line costs more than the work it reports. The caller guarantees valid, escaped JSON. */
void log_members(const char *level, const char *event, const char *members);

/* A few lines of one thread kept for one write(2): a hot path (a worker's delivery lines at
 * thousands a second) pays one system call per group instead of one per line. Lines stay
 * whole: a group is written before it would pass LOG_BUF_MAX bytes (PIPE_BUF, so a write to
 * a pipe is not cut between other threads' lines). The caller owns the struct (zeroed before
 * first use) and flushes it; a line waits at most until the caller's next log_buf_members or
 * log_buf_flush. */
#define LOG_BUF_MAX 4096
struct log_buf {
	char b[LOG_BUF_MAX];
	size_t n;
	int64_t first_ms; /* clock_mono_ms() of the oldest line kept */
	long long ts_at;    /* the second ts was formatted for, or 0 */
	char ts[32];
};

/* log_buf_members - log_members into lb; writes lb first when the line would not fit */
void log_buf_members(struct log_buf *lb, const char *level, const char *event,
                     const char *members);

/* log_buf_flush - write what lb holds (one write(2)) and empty it */
void log_buf_flush(struct log_buf *lb);

/* log_enabled - would a line of this level be written (skip building fields when not). */
bool log_enabled(const char *level);

/* log_set_level - drop lines below level (one of log_levels); -1 for an unknown name. */
int log_set_level(const char *level);

/* log_quiet - suppress "info" lines (tests and CLI commands that print JSON on stdout). */
void log_quiet(int quiet);

#endif
