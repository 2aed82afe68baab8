/*
 * ical.h - iCalendar objects (RFC 5545) and iTIP methods (RFC 5546) built with libical.
 *
 * Threading: reentrant.
 */
#ifndef ICAL_H
#define ICAL_H

#include <stddef.h>
#include <time.h>

#include "gw.h"

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

#endif
