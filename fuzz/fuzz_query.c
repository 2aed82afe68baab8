/*
 * fuzz_query.c - libFuzzer harness for query strings: the GET routes that read one (list
 * filters, the payout report's range, the schedule view's from, the OAuth connect and
 * callback) and the others beside them, through the real handlers (fuzz/fuzz_http.h), as each
 * role.
 *
 * Input: byte 0 chooses the route (routes[] below, modulo), byte 1 the role (enum fuzz_role,
 * modulo), the rest is the query string ("status=new&trainer_id=3"), split and
 * percent-decoded as libmicrohttpd does. Beyond "no crash, no leak": every refusal has an HTTP
 * status from the one table, a GET changes no booking or request state (the list of the org's
 * requests and bookings is the same before and after), and a 2xx list is a JSON array.
 *
 * Built two ways: with clang -fsanitize=fuzzer (make fuzz) to search, and with fuzz/replay.c
 * (make check) to replay the committed corpus under ASan+UBSan.
 */
#include "fuzz_http.h"

static const struct {
	const char *method, *path;
	bool list; /* a 200 answer is a JSON array */
} routes[] = {
        {"GET", "/v1/orgs/1/requests", true},
        {"GET", "/v1/orgs/1/outbox", true},
        {"GET", "/v1/orgs/1/bookings", true},
        {"GET", "/v1/orgs/1/reports/payouts", true},
        {"GET", "/v1/schedule/{S}", false},
        {"GET", "/v1/orgs/1/users/3/calendar/connect", false},
        {"GET", "/oauth/callback", false},
        {"GET", "/v1/orgs/1/users/3/availability", false},
        {"GET", "/v1/manage/{M}", false},
        {"GET", "/v1/survey/{V}", false},
        {"GET", "/v1/orgs/1/customers/cara@example.org/bookings", true},
        {"GET", "/v1/orgs/1/requests/1", false},
        {"GET", "/v1/orgs/1/bookings/2/effects", true},
        {"GET", "/v1/orgs/1/users", true},
        {"GET", "/v1/orgs/1/calendar-connections", true},
        {"GET", "/metrics", false},
};

/* state_of - the organisation's requests and bookings as the admin lists them (new reference) */
static json_t *state_of(void)
{
	json_t *a = NULL, *b = NULL, *s;

	query_clear();
	call("GET", "/v1/orgs/1/requests", AS_ADMIN, NULL, 0, &a);
	call("GET", "/v1/orgs/1/bookings", AS_ADMIN, NULL, 0, &b);
	s = json_pack("{s:o*, s:o*}", "requests", a, "bookings", b);
	if(!s)
		abort();
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[512];
	json_t *before, *after, *out = NULL;
	int status, i;
	enum fuzz_role role;

	if(size < 2 || size > HTTP_URI_MAX)
		return 0;
	fixture_ready();
	i = data[0] % (int)GW_ARRAY_LEN(routes);
	role = (enum fuzz_role)(data[1] % AS_NROLES);
	path_fill(routes[i].path, path, sizeof(path));
	before = state_of();
	query_set((const char *)data + 2, size - 2);
	status = call(routes[i].method, path, role, NULL, 0, &out);
	if(getenv("FUZZ_HTTP_SHOW")) /* to see what a saved input reaches */
		fprintf(stderr, "%s %s as %d: %d %s %s\n", routes[i].method, path, (int)role,
		        status, fz.last_err.field, fz.last_err.message);
	if(status == 200 && routes[i].list && !json_is_array(out))
		abort();
	json_decref(out);
	after = state_of();
	if(!json_equal(before, after))
		abort();
	json_decref(before);
	json_decref(after);
	query_clear();
	return 0;
}
