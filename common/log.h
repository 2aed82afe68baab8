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

/* log_levels - the level names, lowest first, NULL-terminated (for gw_enum_check). */
extern const char *const log_levels[];

/* log_event - write one line; fields is a JSON object or NULL and is consumed (stolen). */
void log_event(const char *level, const char *event, json_t *fields);

/* log_members - write one line whose other fields are members, JSON object members the caller
 * has formatted ("\"id\":7,\"kind\":\"x\""): for a hot path, where building a json_t per
 * line costs more than the work it reports. The caller guarantees valid, escaped JSON. */
void log_members(const char *level, const char *event, const char *members);

/* log_enabled - would a line of this level be written (skip building fields when not). */
bool log_enabled(const char *level);

/* log_set_level - drop lines below level (one of log_levels); -1 for an unknown name. */
int log_set_level(const char *level);

/* log_quiet - suppress "info" lines (tests and CLI commands that print JSON on stdout). */
void log_quiet(int quiet);

#endif
