/*
 * fuzz_route.c - libFuzzer harness for request bodies, route by route: every route of the
 * route table that takes a body, called through the real handler (fuzz/fuzz_http.h) with the
 * input as its body, as each role. The handlers' own validation (jv_* getters, the intake,
 * availability, provider settings, booking actions, check-in, settings PATCH) meets the bytes
 * exactly as it would behind libmicrohttpd.
 *
 * Input: byte 0 chooses the route (routes[] below, modulo), byte 1 the role (enum fuzz_role,
 * modulo), the rest is the body. Beyond "no crash, no leak": every refusal has an HTTP status
 * from the one table (fuzz_http.h call()), and every path here is one the table has.
 *
 * Built two ways: with clang -fsanitize=fuzzer (make fuzz) to search, and with fuzz/replay.c
 * (make check) to replay the committed corpus under ASan+UBSan.
 */
#include "fuzz_http.h"

/* the routes with a body, with the fixture's ids and tokens ({S} scheduling, {M} manage,
 * {V} survey) */
static const struct {
	const char *method, *path;
} routes[] = {
        {"POST", "/v1/orgs"},
        {"POST", "/v1/orgs/1/users"},
        {"PATCH", "/v1/orgs/1/users/3"},
        {"PATCH", "/v1/orgs/1/settings"},
        {"POST", "/v1/orgs/1/session-types"},
        {"POST", "/v1/orgs/1/requests"},
        {"PATCH", "/v1/orgs/1/requests/3"},
        {"POST", "/v1/orgs/1/requests/3/cancel"},
        {"PUT", "/v1/test/clock"},
        {"POST", "/v1/test/tick"},
        {"PUT", "/v1/orgs/1/users/3/availability"},
        {"PUT", "/v1/orgs/1/users/3/calendar"},
        {"POST", "/v1/orgs/1/requests/1/scheduling-link"},
        {"POST", "/v1/schedule/{S}/booking"},
        {"POST", "/v1/schedule/{S}/payment"},
        {"POST", "/v1/manage/{M}/cancel"},
        {"POST", "/v1/manage/{M}/reschedule"},
        {"POST", "/v1/orgs/1/bookings/2/notes"},
        {"POST", "/v1/orgs/1/bookings/2/complete"},
        {"POST", "/v1/orgs/1/bookings/2/no-show"},
        {"POST", "/v1/orgs/1/bookings/2/cancel"},
        {"POST", "/v1/orgs/1/bookings/2/reschedule"},
        {"POST", "/v1/orgs/1/bookings/1/undo-complete"},
        {"POST", "/v1/orgs/1/checkin"},
        {"PUT", "/v1/orgs/1/providers/smtp"},
        {"PUT", "/v1/orgs/1/providers/google"},
        {"PUT", "/v1/orgs/1/providers/outlook"},
        {"PUT", "/v1/orgs/1/providers/zoho"},
        {"POST", "/v1/survey/{V}"},
        {"POST", "/v1/auth/sign-in"},
        {"POST", "/v1/auth/login"},
        {"POST", "/v1/orgs/1/providers/smtp/test"},
        {"POST", "/v1/test/busy-refresh"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[512];
	int status, i;
	enum fuzz_role role;

	if(size < 2 || size > HTTP_BODY_MAX + 2)
		return 0;
	fixture_ready();
	i = data[0] % (int)GW_ARRAY_LEN(routes);
	role = (enum fuzz_role)(data[1] % AS_NROLES);
	path_fill(routes[i].path, path, sizeof(path));
	query_clear();
	status = call(routes[i].method, path, role, (const char *)data + 2, size - 2, NULL);
	if(getenv("FUZZ_HTTP_SHOW")) /* to see what a saved input reaches */
		fprintf(stderr, "%s %s as %d: %d %s %s\n", routes[i].method, path, (int)role,
		        status, fz.last_err.field, fz.last_err.message);
	if(status == 404 || status == 405) {
		/* the route itself must exist: a 404 is the handler's (an id of another
		 * organisation), never a path the table lacks */
		struct http_req r;
		char allow[64];

		memset(&r, 0, sizeof(r));
		if(!http_route_find(routes[i].method, path, &r, allow, sizeof(allow)))
			abort();
	}
	return 0;
}
