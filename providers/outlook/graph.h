/*
 * graph.h - the Microsoft Graph (Outlook) calendar provider (Graph v1.0 events over the shared
 * REST client, common/rest.h): a trainer's booking as an event in their Outlook calendar.
 *
 * Config (secrets already opened by the dispatcher), borrowed during open():
 *   tenant, client_id, client_secret, token_url, api_base: the organisation's outlook provider
 *   settings (token_url defaults to https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token,
 *   tenant to "common", api_base to https://graph.microsoft.com/v1.0);
 *   calendar_id ("" or absent: the user's default calendar), refresh_token: the trainer's
 *   connection; connect_timeout, timeout: seconds, optional (10 and 30).
 *
 * Payload: the calendar outbox row (providers/google/gcal.h describes it), plus what the
 * dispatcher found on the booking: "stored": {"event_id": Graph's id of the event or null, ...}.
 *
 * Result: res->out = {"event_id": Graph's id} when the event was written (the dispatcher stores
 * it on the booking for the next update or delete). An invalid_grant (or interaction_required)
 * from the token endpoint is PROVIDER_AUTH_REVOKED; see graph.c for every other outcome.
 *
 * Threading: a context belongs to one worker thread. curl_global_init() must have run.
 */
#ifndef GRAPH_H
#define GRAPH_H

#include <jansson.h>
#include <time.h>

#include "common/gw.h"
#include "common/provider.h"

/* graph_busy_parse - append to blocks (borrowed array) the busy blocks of one calendarView page
 * (borrowed; times in UTC, as Prefer: outlook.timezone="UTC" asks) as [start, end] pairs
 * clipped to [from, to): showAs "free", isCancelled and the gateway's own events (its
 * transactionId) left out. GW_EINVAL with why filled on a malformed page. */
gw_rc graph_busy_parse(const json_t *page, time_t from, time_t to, json_t *blocks, char *why,
                       size_t n);

#define GRAPH_EVENT_ID_MAX 500 /* longer ids than this are not stored (Graph's are ~150) */

/* graph_event_body - the event resource for payload (borrowed): subject, body (text: the
 * description, which names the customer), start and end as dateTimeTimeZone in UTC, location,
 * showAs busy, no attendees; transaction_id as "transactionId" when not NULL (create). *out: new
 * reference. GW_EINVAL names the payload field at fault in err. */
gw_rc graph_event_body(const json_t *payload, const char *transaction_id, json_t **out,
                       struct gw_err *err);

/* The Microsoft Graph provider ("outlook"). */
extern const struct provider_ops graph_provider_ops;

#endif
