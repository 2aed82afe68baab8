/*
 * lc_slots.h - free slots of a trainer: weekly availability in the trainer's IANA time zone,
 * less blackouts and bookings that hold the trainer. Pure function: no store, no clock.
 *
 * Threading: reentrant (time zone lookups go through common/tz).
 */
#ifndef LC_SLOTS_H
#define LC_SLOTS_H

#include <stddef.h>
#include <time.h>

#include "common/gw.h"

struct lc_window {
	int wday;      /* 0 = Sunday .. 6 = Saturday, in the trainer's zone */
	int start_min; /* minutes after local midnight, 0..1439 */
	int end_min;   /* minutes after local midnight, start_min < end_min <= 1440 */
};

struct lc_range {
	time_t start, end; /* UTC, half open [start, end) */
};

struct lc_slot {
	time_t start, end;
	int length_min;
};

/* lc_slots_compute - every slot [s, s + len) with s on the step grid of a window (counted from
 * the window's local start), for each length in lengths, that lies inside one window, starts at
 * or after from, ends by to, and overlaps no blackout and no busy range. Sorted by start, then
 * length. A 09:00 window stays 09:00 local on both sides of a daylight-saving change.
 * *out is malloc'd (caller frees; NULL when *nout is 0). */
gw_rc lc_slots_compute(const char *tzid, const struct lc_window *weekly, size_t nweekly,
                       const struct lc_range *blackouts, size_t nblackouts,
                       const struct lc_range *busy, size_t nbusy, const int *lengths,
                       size_t nlengths, int step_min, time_t from, time_t to,
                       struct lc_slot **out, size_t *nout, struct gw_err *err);

/* Longest [from, to) lc_slots_compute accepts, in days. */
#define LC_SLOTS_MAX_DAYS 366

/* lc_slots_compute errors: GW_EINVAL with err->field "timezone" (unknown zone), "weekly" (wday
 * outside 0..6, start_min outside 0..1439, end_min over 1440, start_min >= end_min), "lengths"
 * (none, or one <= 0), "step" (step_min <= 0), "from"/"to" (outside 1970..9999, or to - from over
 * LC_SLOTS_MAX_DAYS), "blackouts"/"busy" (NULL with a count); GW_ENOMEM. from >= to or no
 * windows is no slots, not an error; an empty or inverted blackout or busy range blocks
 * nothing. A window edge inside a skipped hour maps to the change itself (02:00-04:00 on a
 * spring-forward night is 03:00-04:00 local); overlapping windows yield each slot once.
 * Cost: O(R log R + S log S) for R ranges and S slots; the day loop does a few tz lookups per
 * window. */

#endif
