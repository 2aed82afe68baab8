/*
 * zoho.h - the Zoho Assist provider: a confirmed booking as a scheduled remote support session
 * (Zoho Assist REST API v2 over the shared REST client, common/rest.h). An organisation-level
 * provider: one set of credentials (the org's connected app and refresh token) per organisation.
 *
 * Config (secrets already opened by the dispatcher), borrowed during open():
 *   client_id, client_secret, refresh_token: the organisation's zoho provider settings;
 *   accounts_url: the data centre's Zoho Accounts server (https://accounts.zoho.com, .eu, .in,
 *   .com.au, .jp, .com.cn), default the US one; api_base: the Assist server of the same data
 *   centre (https://assist.zoho.com, assist.zoho.eu...), with or without its "/api/v2";
 *   department_id: optional, sent when set; connect_timeout, timeout: seconds (10 and 30).
 *
 * Payload (the zoho_session row, rendered at enqueue time by gateway/lifecycle/lc_booking.c):
 *   { "action": "create" | "update" | "delete", "org_id", "booking_id", "sequence",
 *     "start", "end" (RFC 3339 UTC), "timezone" (the trainer's IANA zone), "title",
 *     "customer": {name, email}, "stored": {"session_id"} (added by the dispatcher) }
 *
 * Result: res->out = {"session_id", "technician_url", "customer_url"} after a create or update,
 * {"deleted": true} after a delete.
 *
 * Threading: a context belongs to one worker thread. curl_global_init() must have run.
 */
#ifndef ZOHO_H
#define ZOHO_H

#include <jansson.h>

#include "common/gw.h"
#include "common/provider.h"

/* zoho_session_body - the Schedule Session request JSON of payload (borrowed): mode SCHEDULE,
 * title, customer_email, schedule_time and schedule_upto (ms since the epoch), utc_offset and
 * time_zone of the payload's zone at the start, reminder 0, and department_id when not NULL.
 * *out: new reference. GW_EINVAL names the payload field at fault in err. */
gw_rc zoho_session_body(const json_t *payload, const char *department_id, json_t **out,
                        struct gw_err *err);

/* zoho_session_parse - the schedule_id, technician_url and customer_url of a Schedule Session
 * answer (borrowed) as {"session_id", "technician_url", "customer_url"} (new reference), or
 * GW_EINVAL when it has no usable schedule_id or URL. */
gw_rc zoho_session_parse(const json_t *answer, json_t **out);

/* zoho_token_error - what the token endpoint's answer means when it carries no access token:
 * PROVIDER_PERMANENT for a refused grant or client (invalid_code, invalid_grant,
 * invalid_client...), PROVIDER_TRANSIENT for Zoho's throttling ("Access Denied" with too many
 * requests), 429 and 5xx. status: the HTTP status; answer borrowed (may be NULL). */
enum provider_outcome zoho_token_error(long status, const json_t *answer);

/* The Zoho Assist provider ("zoho"). */
extern const struct provider_ops zoho_provider_ops;

#endif
