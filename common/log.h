/*
 * log.h - JSON-lines logging to stderr: {"ts":..., "level":..., "event":..., fields...}.
 * Never pass secrets (tokens, passwords, keys) in fields.
 * Threading: one line per call, written with a single write(2) so lines never interleave.
 */
#ifndef LOG_H
#define LOG_H

#include <jansson.h>

/* log_event - write one line; fields is a JSON object or NULL and is consumed (stolen). */
void log_event(const char *level, const char *event, json_t *fields);

/* log_quiet - suppress "info" lines (tests and CLI commands that print JSON on stdout). */
void log_quiet(int quiet);

#endif
