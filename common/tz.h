/*
 * tz.h - IANA time zones through libical (RFC 5545 VTIMEZONE data from the system zoneinfo).
 *
 * Threading: libical's built-in time zone cache is shared; tz_init() must be called once from the
 * main thread before threads start, after which every call here is safe from any thread.
 */
#ifndef TZ_H
#define TZ_H

#include <stdbool.h>
#include <time.h>

#include "gw.h"

/* tz_init - load libical's zone list once; call before starting threads. */
void tz_init(void);

/* tz_valid - true when tzid names a known IANA zone ("UTC" included). */
bool tz_valid(const char *tzid);

/* tz_local_to_utc - the UTC instant of local wall time y-m-d h:mi:00 in tzid.
 * A wall time skipped by a daylight-saving change maps forward (RFC 5545 3.3.5: 02:30 on a
 * spring-forward day is 03:30 after the change); a repeated one maps to its first occurrence. */
gw_rc tz_local_to_utc(const char *tzid, int y, int m, int d, int h, int mi, time_t *out);

/* tz_utc_to_local - broken-down local time of instant t in tzid (tm_wday set, 0 = Sunday). */
gw_rc tz_utc_to_local(const char *tzid, time_t t, struct tm *out);

/* tz_format - "Tuesday 1 December 2026, 10:00 (Europe/Berlin)" into buf (size n). */
gw_rc tz_format(const char *tzid, time_t t, char *buf, size_t n);

#endif
