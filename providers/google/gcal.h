/*
 * gcal.h - the Google Calendar provider (Calendar API v3 over the shared REST client,
 * common/rest.h): a trainer's booking as an event in their own calendar.
 *
 * Config (secrets already opened by the dispatcher), borrowed during open():
 *   client_id, client_secret, token_url, api_base: the organisation's google provider settings;
 *   calendar_id, refresh_token: the trainer's connection;
 *   connect_timeout, timeout: seconds, optional (10 and 30).
 *
 * Payload (the calendar outbox row, rendered at enqueue time by gateway/lifecycle/lc_booking.c):
 *   { "action": "create" | "update" | "delete", "org_id", "booking_id", "uid", "sequence",
 *     "start", "end" (RFC 3339 UTC), "timezone" (the trainer's IANA zone), "summary",
 *     "description", "location" (session link or null), "customer": {name, email},
 *     "trainer": {id, name, email, timezone} }
 *
 * Result: res->out = {"event_id": ...} when the event was written or removed. An
 * invalid_grant from the token endpoint is PROVIDER_AUTH_REVOKED (the dispatcher marks the
 * connection needs_reconnect); see gcal.c for every other outcome.
 *
 * Threading: a context belongs to one worker thread. curl_global_init() must have run.
 */
#ifndef GCAL_H
#define GCAL_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "common/gw.h"
#include "common/provider.h"
#include "providers/ical/ical.h"

/* The event id of a booking is ical_event_key() (providers/ical/ical.h): chosen before any call,
 * so that a repeated insert is recognised (409). */
#define GCAL_EVENT_ID_LEN ICAL_EVENT_KEY_LEN

/* gcal_event_body - the Events resource for payload (borrowed): summary, description, location,
 * start and end as RFC 3339 local times with the trainer's timeZone, the customer as attendee,
 * status confirmed, and the booking's UID, id and sequence in extendedProperties.private.
 * event_id is included as "id" when not NULL (insert). *out: new reference. GW_EINVAL names the
 * payload field at fault in err. */
gw_rc gcal_event_body(const json_t *payload, const char *event_id, json_t **out,
                      struct gw_err *err);

/* gcal_busy_parse - the busy blocks of calendar (its id as sent) in a freebusy.query answer
 * (borrowed), clipped to [from, to): *blocks a new array of [start, end] pairs. GW_EINVAL with
 * why filled when the answer names no such calendar, reports errors for it or is malformed. */
gw_rc gcal_busy_parse(const json_t *answer, const char *calendar, time_t from, time_t to,
                      json_t **blocks, char *why, size_t n);

/* The Google Calendar provider ("google"). */
extern const struct provider_ops gcal_provider_ops;

#endif
