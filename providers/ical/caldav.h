/*
 * caldav.h - the CalDAV calendar provider (RFC 4791 over the shared REST client, common/rest.h):
 * a trainer's booking as a calendar object resource {url}/{uid}.ics in their own calendar
 * collection, built by ical.c.
 *
 * Config (the secret already opened by the dispatcher), borrowed during open():
 *   calendar_id: the calendar collection's URL (http or https);
 *   credentials: the connection's secret, {"username": ..., "password": ...} as JSON text;
 *   connect_timeout, timeout: seconds, optional (10 and 30).
 *
 * Payload: the calendar outbox row (providers/google/gcal.h describes it), plus what the
 * dispatcher found on the booking: "stored": {"event_id", "etag": the ETag the server gave the
 * last write, or null}.
 *
 * Result: res->out = {"event_id": "{uid}.ics" (the resource's name, percent-encoded), "etag":
 * the new ETag or absent} when the resource was written; {"event_id"} alone when it was
 * deleted. A 401 is PROVIDER_AUTH_REVOKED: the username or password no longer works, and the
 * trainer must connect again. See caldav.c for every other outcome.
 *
 * Threading: a context belongs to one worker thread. curl_global_init() must have run.
 */
#ifndef CALDAV_H
#define CALDAV_H

#include <jansson.h>
#include <time.h>

#include "common/gw.h"
#include "common/provider.h"

/* caldav_object - the calendar object resource of payload (borrowed): one VCALENDAR without
 * METHOD (RFC 4791 4.1) holding one VEVENT with the booking's UID and SEQUENCE, its UTC times,
 * summary, description (which names the customer), location, DTSTAMP now, and the trainer as
 * ORGANIZER; no ATTENDEE. *out: malloc'd text, caller frees. GW_EINVAL names the field in err. */
gw_rc caldav_object(const json_t *payload, time_t now, char **out, struct gw_err *err);

/* The CalDAV provider ("caldav"). */
extern const struct provider_ops caldav_provider_ops;

/* caldav_busy_parse - append to blocks (borrowed array) the busy blocks in [from, to) of a
 * calendar-query 207 multistatus (xml, len bytes, borrowed): every calendar-data parsed with
 * libical, recurring events expanded, cancelled, transparent and the gateway's own events left
 * out. GW_EINVAL with why filled when it is not a multistatus or a calendar-data is broken. */
gw_rc caldav_busy_parse(const char *xml, size_t len, time_t from, time_t to, json_t *blocks,
                        char *why, size_t n);

#endif
