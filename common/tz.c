/*
 * tz.c - IANA time zone conversions through libical.
 *
 * Entry points: tz_init(), tz_valid(), tz_local_to_utc(), tz_utc_to_local(), tz_format().
 * Threading: libical fills its zone cache lazily and without locks, so every lookup here goes
 * through one mutex; tz_init() warms the list from the main thread.
 */
#include "tz.h"

#include <libical/ical.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const day_names[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char *const month_names[12] = {"January", "February", "March",     "April",
                                             "May",     "June",     "July",      "August",
                                             "September", "October", "November", "December"};

/* zone - the libical zone for tzid, or NULL; call with tz_lock held */
static icaltimezone *zone(const char *tzid)
{
	if(!tzid || !*tzid || strlen(tzid) > 64)
		return NULL;
	if(strcmp(tzid, "UTC") == 0 || strcmp(tzid, "Etc/UTC") == 0)
		return icaltimezone_get_utc_timezone();
	return icaltimezone_get_builtin_timezone(tzid);
}

/* wall_at - local wall clock of instant t in z, as seconds since 1970-01-01 00:00 local */
static time_t wall_at(time_t t, icaltimezone *z)
{
	return icaltime_as_timet(icaltime_from_timet_with_zone(t, 0, z));
}

/* tz_init - load the zone list once */
void tz_init(void)
{
	pthread_mutex_lock(&tz_lock);
	(void)icaltimezone_get_builtin_timezones();
	(void)icaltimezone_get_utc_timezone();
	pthread_mutex_unlock(&tz_lock);
}

/* tz_valid - is tzid a known zone */
bool tz_valid(const char *tzid)
{
	bool ok;

	pthread_mutex_lock(&tz_lock);
	ok = zone(tzid) != NULL;
	pthread_mutex_unlock(&tz_lock);
	return ok;
}

/* tz_local_to_utc - local wall time to UTC instant */
gw_rc tz_local_to_utc(const char *tzid, int y, int m, int d, int h, int mi, time_t *out)
{
	gw_rc rc = GW_OK;
	icaltimezone *z;
	struct icaltimetype tt = icaltime_null_time();
	time_t t, wall, got, alt;

	pthread_mutex_lock(&tz_lock);
	z = zone(tzid);
	if(!z) {
		rc = GW_EINVAL;
		goto out;
	}
	tt.year = y;
	tt.month = m;
	tt.day = d;
	tt.hour = h;
	tt.minute = mi;
	tt.second = 0;
	tt.is_date = 0;
	tt = icaltime_normalize(tt);
	t = icaltime_as_timet_with_zone(tt, z);
	/* RFC 5545 3.3.5: a wall time skipped by a change is read with the offset from before the
	 * gap, which moves it forward (02:30 on a spring-forward night is 03:30), and a wall time
	 * that occurs twice means the first occurrence. libical 3.0 reads both with the offset
	 * from after the change, so check by converting back. */
	wall = icaltime_as_timet(tt); /* the fields read as if UTC: wall-clock seconds */
	got = wall_at(t, z);
	if(got != wall) {
		alt = wall - (got - t);
		if(alt > t)
			t = alt;
	} else {
		/* the offset a day earlier, before any change that could repeat this hour */
		alt = wall - (wall_at(t - 86400, z) - (t - 86400));
		if(alt < t && wall_at(alt, z) == wall)
			t = alt;
	}
	*out = t;
out:
	pthread_mutex_unlock(&tz_lock);
	return rc;
}

/* tz_utc_to_local - UTC instant to local broken-down time */
gw_rc tz_utc_to_local(const char *tzid, time_t t, struct tm *out)
{
	gw_rc rc = GW_OK;
	icaltimezone *z;
	struct icaltimetype tt;

	pthread_mutex_lock(&tz_lock);
	z = zone(tzid);
	if(!z) {
		rc = GW_EINVAL;
		goto out;
	}
	tt = icaltime_from_timet_with_zone(t, 0, icaltimezone_get_utc_timezone());
	icaltimezone_convert_time(&tt, icaltimezone_get_utc_timezone(), z);
	memset(out, 0, sizeof(*out));
	out->tm_year = tt.year - 1900;
	out->tm_mon = tt.month - 1;
	out->tm_mday = tt.day;
	out->tm_hour = tt.hour;
	out->tm_min = tt.minute;
	out->tm_sec = tt.second;
	out->tm_wday = icaltime_day_of_week(tt) - 1; /* libical: 1 = Sunday */
	out->tm_yday = icaltime_day_of_year(tt) - 1;
out:
	pthread_mutex_unlock(&tz_lock);
	return rc;
}

/* tz_format - human local time for emails */
gw_rc tz_format(const char *tzid, time_t t, char *buf, size_t n)
{
	struct tm tm;
	gw_rc rc = tz_utc_to_local(tzid, t, &tm);

	if(rc)
		return rc;
	snprintf(buf, n, "%s %d %s %d, %02d:%02d (%s)", day_names[tm.tm_wday], tm.tm_mday,
	         month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tzid);
	return GW_OK;
}
