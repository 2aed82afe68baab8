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

#include "gw.h"

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

#endif
