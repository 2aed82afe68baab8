/*
 * timefmt.c - RFC 3339 (section 5.6) formatting and parsing in UTC.
 *
 * Entry points: timefmt_rfc3339(), timefmt_parse(). Threading: reentrant (gmtime_r, timegm).
 */
#include "timefmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* timefmt_rfc3339 - format an instant */
void timefmt_rfc3339(time_t t, char buf[TIMEFMT_LEN])
{
	struct tm tm;

	if(!gmtime_r(&t, &tm)) {
		snprintf(buf, TIMEFMT_LEN, "1970-01-01T00:00:00Z");
		return;
	}
	strftime(buf, TIMEFMT_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* digits - read n decimal digits at s into *v; 0 on success */
static int digits(const char *s, int n, int *v)
{
	int i, x = 0;

	for(i = 0; i < n; i++) {
		if(!isdigit((unsigned char)s[i]))
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if(m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

/* timefmt_parse - parse an RFC 3339 date-time */
gw_rc timefmt_parse(const char *s, time_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	struct tm tm;
	const char *p;
	time_t t;

	if(!s || strlen(s) < 20 || strlen(s) > 40)
		return GW_EINVAL;
	if(digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	   digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
	   s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
		return GW_EINVAL;
	if(y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	   h > 23 || mi > 59 || sec > 60)
		return GW_EINVAL;
	p = s + 19;
	if(*p == '.') {
		p++;
		if(!isdigit((unsigned char)*p))
			return GW_EINVAL;
		while(isdigit((unsigned char)*p))
			p++;
	}
	if(*p == 'Z' || *p == 'z') {
		p++;
	} else if(*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if(digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
		   om > 59)
			return GW_EINVAL;
		p += 6;
	} else {
		return GW_EINVAL;
	}
	if(*p)
		return GW_EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec == 60 ? 59 : sec;
	t = timegm(&tm);
	t -= sign * (oh * 3600 + om * 60);
	*out = t;
	return GW_OK;
}
