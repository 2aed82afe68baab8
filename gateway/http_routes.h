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
#include <stdint.h>

#include "http.h"

struct http_route {
	const char *method;
	const char *pattern;
	const char *name; /* metrics label */
	http_handler handler;
	bool takes_body;
};

/* http_route_find - the route for method and path; fills r's path parameters. NULL when none;
 * *method_mismatch when the path exists for another method. */
const struct http_route *http_route_find(const char *method, const char *path,
                                         struct http_req *r, bool *method_mismatch);

/* http_routes_count - count one answered request (metrics). */
void http_routes_count(const struct http_route *route, int status, int64_t ms);

/* http_routes_metrics - append Prometheus text of the HTTP counters to buf (see tpl_buf). */
struct tpl_buf;
void http_routes_metrics(struct tpl_buf *buf);

#endif
