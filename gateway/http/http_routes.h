/*
 * http_routes.h - the route table: method, path pattern, handler.
 *
 * Patterns are '/'-separated segments; "{id}" matches a decimal id (1..2^63-1) and fills
 * r->id[] in order, "{s}" matches any non-empty segment (percent-decoded by libmicrohttpd's
 * URL handling is NOT applied to paths, so {s} segments are decoded here) and fills r->str[].
 * Threading: the table is constant; the request counters are atomic.
 */
#ifndef HTTP_ROUTES_H
#define HTTP_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

enum { HTTP_BODY_NONE, HTTP_BODY_REQUIRED, HTTP_BODY_OPTIONAL };

struct http_route {
	const char *method;
	const char *pattern;
	const char *name; /* metrics label */
	http_handler handler;
	int body; /* HTTP_BODY_NONE, HTTP_BODY_REQUIRED or HTTP_BODY_OPTIONAL */
};

/* http_route_find - the route for method and path (HEAD finds the GET route); fills r's path
 * parameters. NULL when none; then allow (n bytes) lists the methods the path has ("" when the
 * path has none: 404, else 405 with that Allow header). */
const struct http_route *http_route_find(const char *method, const char *path,
                                         struct http_req *r, char *allow, size_t n);

/* http_route_at - route i of the table (0, 1, ...), NULL past its end. Borrowed, constant. */
const struct http_route *http_route_at(size_t i);

/* http_routes_count - count one answered request (metrics). */
void http_routes_count(const struct http_route *route, int status, int64_t ms);

/* http_seg - copy string path parameter i (already percent-decoded by libmicrohttpd) into buf;
 * GW_EINVAL when it does not fit. */
gw_rc http_seg(const struct http_req *r, int i, char *buf, size_t n);

/* Handlers of the booking lifecycle (http_booking.c). */
gw_rc http_availability_put(struct http_req *r, json_t **out);
gw_rc http_availability_get(struct http_req *r, json_t **out);
gw_rc http_link_send(struct http_req *r, json_t **out);
gw_rc http_schedule_get(struct http_req *r, json_t **out);
gw_rc http_schedule_book(struct http_req *r, json_t **out);
gw_rc http_schedule_pay(struct http_req *r, json_t **out);
gw_rc http_booking_list(struct http_req *r, json_t **out);
gw_rc http_booking_get(struct http_req *r, json_t **out);
gw_rc http_booking_act(struct http_req *r, json_t **out);
gw_rc http_booking_slots(struct http_req *r, json_t **out);
gw_rc http_test_email(struct http_req *r, json_t **out);
gw_rc http_booking_notes(struct http_req *r, json_t **out);
gw_rc http_booking_effects(struct http_req *r, json_t **out);
gw_rc http_customer_bookings(struct http_req *r, json_t **out);
gw_rc http_checkin(struct http_req *r, json_t **out);
gw_rc http_report_payouts(struct http_req *r, json_t **out);
gw_rc http_survey_get(struct http_req *r, json_t **out);
gw_rc http_survey_answer(struct http_req *r, json_t **out);
gw_rc http_feed_create(struct http_req *r, json_t **out);
gw_rc http_feed_get(struct http_req *r, json_t **out);
gw_rc http_request_cancel(struct http_req *r, json_t **out);
gw_rc http_manage_get(struct http_req *r, json_t **out);
gw_rc http_manage_act(struct http_req *r, json_t **out);

/* Handlers of provider settings (http_providers.c). */
gw_rc http_provider_put(struct http_req *r, json_t **out);
gw_rc http_provider_list(struct http_req *r, json_t **out);
gw_rc http_provider_delete(struct http_req *r, json_t **out);

/* http_url_ok - an absolute https URL (http only on 127.0.0.1 or localhost) without
 * credentials or a fragment, at most 2000 bytes (http_providers.c) */
bool http_url_ok(const char *u);

/* Handlers of calendar connections (http_calendar.c). */
gw_rc http_calendar_put(struct http_req *r, json_t **out);
gw_rc http_calendar_delete(struct http_req *r, json_t **out);
gw_rc http_calendar_list(struct http_req *r, json_t **out);

/* Handlers of the OAuth connect flow (http_oauth.c): 302 answers (r->location). */
gw_rc http_calendar_connect(struct http_req *r, json_t **out);
gw_rc http_oauth_callback(struct http_req *r, json_t **out);

/* Handlers of sign-in and sessions (http_auth.c). */
gw_rc http_auth_sign_in(struct http_req *r, json_t **out);
gw_rc http_auth_login(struct http_req *r, json_t **out);
gw_rc http_auth_session(struct http_req *r, json_t **out);
gw_rc http_auth_sign_out(struct http_req *r, json_t **out);

/* http_auth_cookie - authenticate r by its session cookie, if it sends one: a live session
 * makes r authed (via_cookie, session_hash and csrf set); none, or a stale one, leaves r
 * unauthenticated. GW_OK unless the store fails. */
gw_rc http_auth_cookie(struct http_req *r);

/* http_auth_csrf - a state-changing request authed by its cookie must come from the public
 * URL's origin (when it sends Origin) and carry X-CSRF-Token equal to its session's token:
 * GW_OK, or GW_EFORBIDDEN with the message set. */
gw_rc http_auth_csrf(struct http_req *r);

/* http_routes_metrics - append Prometheus text of the HTTP counters to buf (see tpl_buf). */
struct tpl_buf;
void http_routes_metrics(struct tpl_buf *buf);

#endif
