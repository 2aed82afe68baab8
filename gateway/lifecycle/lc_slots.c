/*
 * lc_slots.c - free slots of a trainer from weekly availability in the trainer's time zone, less
 * blackouts and bookings that hold the trainer.
 *
 * How: for each local date between from and to, each window of that weekday is turned into a
 * UTC interval by converting its local start and its local end separately (common/tz), so 09:00
 * stays 09:00 local on both sides of a daylight-saving change and a window that spans a change
 * is an hour shorter or longer in real time. A window edge that falls into a skipped hour is
 * moved to the change itself, the first instant at or after that wall time. Blackouts and busy
 * ranges are merged once into a sorted list of disjoint intervals; each window then sweeps it
 * with one cursor while it steps through its start times (O(1) amortised per start time, never
 * O(slots * ranges)). Total: O(R log R + S log S) for R ranges and S slots, plus a few
 * time zone lookups per window and day; the final sort also drops the repeats that overlapping
 * windows produce.
 *
 * Entry point: lc_slots_compute().
 * Threading: reentrant; time zone lookups go through common/tz, which serialises libical.
 */
#include "lc_slots.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/tz.h"

_Static_assert(sizeof(time_t) >= 8, "slot arithmetic needs a 64-bit time_t");

#define SECS_PER_DAY 86400

/* Latest instant accepted: 9999-12-31T23:59:59Z. */
#define LC_MAX_TIME ((time_t)253402300799)

/* slot_buf - growing output array (v from malloc) */
struct slot_buf {
	struct lc_slot *v;
	size_t n, cap;
};

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant) */
static long days_from_civil(long y, int m, int d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153L * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* civil_from_days - the date of a day number (inverse of days_from_civil) */
static void civil_from_days(long z, int *y, int *m, int *d)
{
	long era, doe, yoe, doy, mp, yy;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yy + (*m <= 2));
}

/* weekday - 0 = Sunday .. 6 = Saturday of a day number (1970-01-01 was a Thursday) */
static int weekday(long days)
{
	long w = (days + 4) % 7;

	return (int)(w < 0 ? w + 7 : w);
}

/* local_wall - the local wall clock of instant t in tzid, as seconds of a day-numbered clock */
static gw_rc local_wall(const char *tzid, time_t t, time_t *wall)
{
	struct tm tm;
	gw_rc rc = tz_utc_to_local(tzid, t, &tm);

	if(rc)
		return rc;
	*wall = (time_t)days_from_civil(tm.tm_year + 1900L, tm.tm_mon + 1, tm.tm_mday) * SECS_PER_DAY +
	        tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return GW_OK;
}

/* tz_failed - name the cause: tzid passed tz_valid(), so only libical gets here */
static void tz_failed(struct gw_err *err)
{
	gw_err_set(err, GW_EINVAL, "timezone", "time zone conversion failed");
}

/* local_day - day number of the local date of instant t in tzid */
static gw_rc local_day(const char *tzid, time_t t, long *day, struct gw_err *err)
{
	struct tm tm;
	gw_rc rc = tz_utc_to_local(tzid, t, &tm);

	if(rc) {
		tz_failed(err);
		return rc;
	}
	*day = days_from_civil(tm.tm_year + 1900L, tm.tm_mon + 1, tm.tm_mday);
	return GW_OK;
}

/* window_edge - UTC instant of minute min (0..1440) of local day `day` in tzid. A wall time that
 * a change skipped maps to the change itself: cost O(1) lookups, O(log gap) when skipped. */
static gw_rc window_edge(const char *tzid, long day, int min, time_t *out, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	time_t want = (time_t)day * SECS_PER_DAY + (time_t)min * 60;
	time_t t, w, g, lo, hi, mid;
	int y, m, d;

	civil_from_days(day, &y, &m, &d);
	rc = tz_local_to_utc(tzid, y, m, d, min / 60, min % 60, &t); /* 1440 is 24:00, normalised */
	if(rc)
		goto out;
	rc = local_wall(tzid, t, &w);
	if(rc)
		goto out;
	*out = t;
	if(w == want)
		goto out;
	/* Skipped: the change lies between the readings with the offsets before and after it,
	 * which are `g` apart. Find the first instant whose wall clock is past want. */
	g = w - want;
	if(g > 0) {
		lo = t - g;
		hi = t;
	} else {
		lo = t;
		hi = t - g;
	}
	rc = local_wall(tzid, lo, &w);
	if(rc || w > want)
		goto out; /* not the shape of a gap: keep what tz said */
	rc = local_wall(tzid, hi, &w);
	if(rc || w <= want)
		goto out;
	while(hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		rc = local_wall(tzid, mid, &w);
		if(rc)
			goto out;
		if(w > want)
			hi = mid;
		else
			lo = mid;
	}
	*out = hi;
out:
	if(rc)
		tz_failed(err);
	return rc;
}

/* cmp_range - order ranges by start */
static int cmp_range(const void *a, const void *b)
{
	const struct lc_range *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* cmp_int - ascending ints */
static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* cmp_slot - by start, then length */
static int cmp_slot(const void *a, const void *b)
{
	const struct lc_slot *x = a, *y = b;

	if(x->start != y->start)
		return (x->start > y->start) - (x->start < y->start);
	return (x->length_min > y->length_min) - (x->length_min < y->length_min);
}

/* merge_ranges - blackouts and busy as sorted, disjoint, non-empty intervals (*out from
 * malloc, caller frees). Empty or inverted ranges hold nothing and are dropped. O(R log R). */
static gw_rc merge_ranges(const struct lc_range *a, size_t na, const struct lc_range *b,
                          size_t nb, struct lc_range **out, size_t *nout, struct gw_err *err)
{
	struct lc_range *v;
	size_t i, n = 0, k;

	*out = NULL;
	*nout = 0;
	if(na + nb == 0)
		return GW_OK;
	if(na > SIZE_MAX / sizeof(*v) - nb)
		return gw_err_set(err, GW_ENOMEM, "", "too many ranges");
	v = malloc((na + nb) * sizeof(*v));
	if(!v)
		return gw_err_set(err, GW_ENOMEM, "", "out of memory");
	for(i = 0; i < na; i++)
		if(a[i].start < a[i].end)
			v[n++] = a[i];
	for(i = 0; i < nb; i++)
		if(b[i].start < b[i].end)
			v[n++] = b[i];
	qsort(v, n, sizeof(*v), cmp_range);
	/* Touching intervals merge too: a slot overlaps [a,b) or [b,c) exactly when it overlaps
	 * [a,c), so the test stays exact. */
	for(i = 0, k = 0; i < n; i++) {
		if(k && v[i].start <= v[k - 1].end) {
			if(v[i].end > v[k - 1].end)
				v[k - 1].end = v[i].end;
		} else {
			v[k++] = v[i];
		}
	}
	if(k == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	*nout = k;
	return GW_OK;
}

/* push - append one slot, growing the buffer geometrically */
static gw_rc push(struct slot_buf *b, time_t s, time_t e, int len, struct gw_err *err)
{
	if(b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct lc_slot *v;

		if(cap > SIZE_MAX / sizeof(*v))
			return gw_err_set(err, GW_ENOMEM, "", "too many slots");
		v = realloc(b->v, cap * sizeof(*v));
		if(!v)
			return gw_err_set(err, GW_ENOMEM, "", "out of memory");
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n].start = s;
	b->v[b->n].end = e;
	b->v[b->n].length_min = len;
	b->n++;
	return GW_OK;
}

/* first_ending_after - index of the first blocked interval that ends after t (binary search) */
static size_t first_ending_after(const struct lc_range *r, size_t n, time_t t)
{
	size_t lo = 0, hi = n;

	while(lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if(r[mid].end <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* emit_window - the free slots of one window [ws, we) clipped to [from, to). lens ascending.
 * The cursor `bi` is the first blocked interval ending after the start time: it is the only one
 * that can overlap a slot starting there, and it only moves forward as the start grows. */
static gw_rc emit_window(time_t ws, time_t we, time_t step, const int *lens, size_t nlens,
                         const struct lc_range *blocked, size_t nblocked, time_t from, time_t to,
                         struct slot_buf *buf, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	time_t s = ws;
	time_t hi = we < to ? we : to;
	size_t bi, j;

	if(s < from)
		s = ws + (from - ws + step - 1) / step * step; /* first grid point at or after from */
	bi = first_ending_after(blocked, nblocked, s);
	for(; s + (time_t)lens[0] * 60 <= hi; s += step) {
		while(bi < nblocked && blocked[bi].end <= s)
			bi++;
		for(j = 0; j < nlens; j++) {
			time_t e = s + (time_t)lens[j] * 60;

			/* lengths ascend: once one does not fit or is blocked, no longer one will */
			if(e > hi || (bi < nblocked && blocked[bi].start < e))
				break;
			rc = push(buf, s, e, lens[j], err);
			if(rc)
				return rc;
		}
	}
	return rc;
}

/* check_args - refuse what cannot describe availability */
static gw_rc check_args(const char *tzid, const struct lc_window *weekly, size_t nweekly,
                        const struct lc_range *blackouts, size_t nblackouts,
                        const struct lc_range *busy, size_t nbusy, const int *lengths,
                        size_t nlengths, int step_min, time_t from, time_t to,
                        struct gw_err *err)
{
	size_t i;

	if(!tz_valid(tzid))
		return gw_err_set(err, GW_EINVAL, "timezone", "unknown time zone");
	if(nweekly && !weekly)
		return gw_err_set(err, GW_EINVAL, "weekly", "no weekly windows");
	for(i = 0; i < nweekly; i++) {
		const struct lc_window *w = &weekly[i];

		if(w->wday < 0 || w->wday > 6)
			return gw_err_set(err, GW_EINVAL, "weekly", "window %zu: bad day", i);
		if(w->start_min < 0 || w->start_min > 1439 || w->end_min > 1440 ||
		   w->start_min >= w->end_min)
			return gw_err_set(err, GW_EINVAL, "weekly",
			                  "window %zu: start must be before end, within the day", i);
	}
	if((nblackouts && !blackouts))
		return gw_err_set(err, GW_EINVAL, "blackouts", "no blackouts");
	if(nbusy && !busy)
		return gw_err_set(err, GW_EINVAL, "busy", "no busy ranges");
	if(!nlengths || !lengths)
		return gw_err_set(err, GW_EINVAL, "lengths", "no session lengths");
	for(i = 0; i < nlengths; i++)
		if(lengths[i] <= 0)
			return gw_err_set(err, GW_EINVAL, "lengths", "length %zu is not positive", i);
	if(step_min <= 0)
		return gw_err_set(err, GW_EINVAL, "step", "step is not positive");
	if(from < 0 || from > LC_MAX_TIME)
		return gw_err_set(err, GW_EINVAL, "from", "from out of range");
	if(to < 0 || to > LC_MAX_TIME)
		return gw_err_set(err, GW_EINVAL, "to", "to out of range");
	if(to > from && to - from > (time_t)LC_SLOTS_MAX_DAYS * SECS_PER_DAY)
		return gw_err_set(err, GW_EINVAL, "to", "range longer than %d days",
		                  LC_SLOTS_MAX_DAYS);
	return GW_OK;
}

/* lc_slots_compute - free slots of weekly windows in tzid, less blackouts and busy */
gw_rc lc_slots_compute(const char *tzid, const struct lc_window *weekly, size_t nweekly,
                       const struct lc_range *blackouts, size_t nblackouts,
                       const struct lc_range *busy, size_t nbusy, const int *lengths,
                       size_t nlengths, int step_min, time_t from, time_t to,
                       struct lc_slot **out, size_t *nout, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	struct lc_range *blocked = NULL;
	size_t nblocked = 0;
	int *lens = NULL;
	size_t nlens = 0;
	struct slot_buf buf = {NULL, 0, 0};
	long day, first, last;
	size_t i, k;

	assert(out && nout);
	*out = NULL;
	*nout = 0;
	rc = check_args(tzid, weekly, nweekly, blackouts, nblackouts, busy, nbusy, lengths,
	                nlengths, step_min, from, to, err);
	if(rc)
		goto out;
	if(from >= to || nweekly == 0)
		goto out;

	/* lengths ascending and distinct, so a window can stop at the first that fails */
	lens = malloc(nlengths * sizeof(*lens));
	if(!lens) {
		rc = gw_err_set(err, GW_ENOMEM, "", "out of memory");
		goto out;
	}
	memcpy(lens, lengths, nlengths * sizeof(*lens));
	qsort(lens, nlengths, sizeof(*lens), cmp_int);
	for(i = 0; i < nlengths; i++)
		if(nlens == 0 || lens[i] != lens[nlens - 1])
			lens[nlens++] = lens[i];

	rc = merge_ranges(blackouts, nblackouts, busy, nbusy, &blocked, &nblocked, err);
	if(rc)
		goto out;

	/* Local dates to visit: from the day before from's local date (a window of that day ends
	 * no later than midnight, but zones have moved midnight itself) to to's local date. */
	rc = local_day(tzid, from, &first, err);
	if(rc)
		goto out;
	first--;
	rc = local_day(tzid, to, &last, err);
	if(rc)
		goto out;

	for(day = first; day <= last; day++) {
		int wd = weekday(day);

		for(i = 0; i < nweekly; i++) {
			time_t ws, we;

			if(weekly[i].wday != wd)
				continue;
			rc = window_edge(tzid, day, weekly[i].start_min, &ws, err);
			if(rc)
				goto out;
			rc = window_edge(tzid, day, weekly[i].end_min, &we, err);
			if(rc)
				goto out;
			if(we <= ws || we <= from || ws >= to)
				continue; /* wholly skipped by a change, or outside [from, to) */
			rc = emit_window(ws, we, (time_t)step_min * 60, lens, nlens, blocked, nblocked,
			                 from, to, &buf, err);
			if(rc)
				goto out;
		}
	}

	/* Overlapping windows of one day yield the same slot twice: sort, then keep one. */
	if(buf.n) {
		qsort(buf.v, buf.n, sizeof(*buf.v), cmp_slot);
		for(i = 0, k = 0; i < buf.n; i++)
			if(k == 0 || cmp_slot(&buf.v[i], &buf.v[k - 1]) != 0)
				buf.v[k++] = buf.v[i];
		buf.n = k;
		*out = buf.v;
		*nout = buf.n;
		buf.v = NULL;
	}
out:
	free(buf.v);
	free(blocked);
	free(lens);
	return rc;
}
