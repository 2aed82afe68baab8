/*
 * ical.h - iCalendar objects (RFC 5545) and iTIP methods (RFC 5546) built with libical.
 *
 * Threading: reentrant.
 */
#ifndef ICAL_H
#define ICAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/gw.h"

struct ical_event {
	const char *uid;             /* the booking's UID, stable across reschedules */
	int sequence;                /* the booking's SEQUENCE */
	time_t start, end;           /* written as UTC DTSTART/DTEND */
	time_t dtstamp;              /* DTSTAMP: the clock at render time */
	const char *summary;         /* user text: escaped by libical */
	const char *description;     /* may be NULL */
	const char *location;        /* may be NULL (e.g. a join link) */
	const char *organizer_email; /* the trainer */
	const char *organizer_name;
	const char *attendee_email;  /* the customer; may be NULL in a feed */
	const char *attendee_name;
	int cancelled;               /* STATUS:CANCELLED */
};

/* ical_build - one VCALENDAR with METHOD method ("REQUEST", "CANCEL" or NULL for none) and n
 * VEVENTs. *out is malloc'd text with CRLF line ends: caller frees. */
gw_rc ical_build(const struct ical_event *events, size_t n, const char *method, char **out,
                 struct gw_err *err);

/* ical_build refuses (GW_EINVAL, err->field named after the struct member) an event without a
 * uid, summary or organizer_email, a negative sequence, end <= start, times outside 1970..9999,
 * text that is not UTF-8 or holds control characters (TAB, CR, LF allowed in summary,
 * description and location), and names or addresses that fail the checks below. method may
 * also be "PUBLISH" (a feed); anything else is GW_EINVAL. */

/* ical_name_ok - may s (non-empty) be written as a CN parameter: UTF-8, no control characters
 * (CR/LF would break out of the parameter), no "^n", "^'" or "^^" (libical does not
 * RFC 6868-encode '^'). Lets intake refuse a name before a booking depends on it. */
bool ical_name_ok(const char *s);

/* ical_email_ok - may s follow "mailto:" in ORGANIZER/ATTENDEE: local@domain of printable
 * ASCII without spaces or RFC 5322 specials, at most 254 octets. */
bool ical_email_ok(const char *s);

#define ICAL_EVENT_KEY_LEN 53 /* 52 base32hex characters of a SHA-256, + NUL */

/* ical_event_key - the provider-side key of a booking's calendar event, chosen before any call so
 * that a repeated create is recognised: Google Calendar's event id (a repeated insert is 409) and
 * Microsoft Graph's transactionId (a repeated POST returns the event made the first time).
 * base32hex (RFC 4648 7, lower case, no padding: Google's a-v and 0-9) of
 * SHA-256("ordinatus-gcal:" org ":" booking ":" uid). The booking's UID is in the hash so that
 * two installations with the same row ids never share an event in one calendar; the
 * "ordinatus-gcal" label stays as it was when only Google used it, so the ids of events already
 * written do not change. */
void ical_event_key(int64_t org, int64_t booking, const char *uid, char out[ICAL_EVENT_KEY_LEN]);

#endif
