/*
 * timefmt.h - RFC 3339 instants in UTC ("2026-12-01T09:00:00Z").
 * Threading: reentrant.
 */
#ifndef TIMEFMT_H
#define TIMEFMT_H

#include <time.h>

#include "gw.h"

#define TIMEFMT_LEN 32 /* buffer size for timefmt_rfc3339 */
/* the words every error about a time field uses: what is wanted, with an example */
#define TIMEFMT_WANTED "an RFC 3339 time with a zone, such as 2026-12-02T08:00:00Z"

/* timefmt_rfc3339 - format t as "YYYY-MM-DDTHH:MM:SSZ" into buf (TIMEFMT_LEN bytes). */
void timefmt_rfc3339(time_t t, char buf[TIMEFMT_LEN]);

/* timefmt_parse - parse an RFC 3339 date-time ("Z" or a numeric offset, optional fraction,
 * which is dropped) into *out. GW_EINVAL on anything else, including impossible dates. */
gw_rc timefmt_parse(const char *s, time_t *out);

#endif
