/*
 * test_rest.c - the shared REST client (common/rest.c) against a real local HTTP/1.1 server:
 * tests/helpers/rest_server.py on 127.0.0.1, started once for the binary with posix_spawn
 * and stopped by its pid (SIGTERM + waitpid). The server answers from the query string
 * (status, Retry-After, delay, body, a dropped connection) and by default echoes the request
 * as JSON, so each case checks what went over the wire and what the client made of the answer.
 * Nothing leaves 127.0.0.1. Run from the repository root (make unit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/rest.h"

extern char **environ;

#define PYTHON    "/usr/bin/python3"
#define SERVER_PY "tests/helpers/rest_server.py"

static struct {
	pid_t pid;
	int port;
	char base[64]; /* "http://127.0.0.1:PORT" */
} srv;

/* spawn_argv - posix_spawn's argv type; it does not write to the strings */
static char *const *spawn_argv(const char *const *argv)
{
	return (char *const *)(uintptr_t)argv;
}

/* group_setup - start the server and read its port from the first line of its stdout */
static int group_setup(void **state)
{
	const char *argv[] = {PYTHON, SERVER_PY, NULL};
	posix_spawn_file_actions_t fa;
	struct pollfd pfd;
	char line[32] = "";
	size_t used = 0;
	int fds[2], rc;

	(void)state;
	if(pipe2(fds, O_CLOEXEC) != 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawn(&srv.pid, PYTHON, &fa, NULL, spawn_argv(argv), environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if(rc != 0)
		return -1;
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while(used < sizeof(line) - 1 && !memchr(line, '\n', used)) {
		ssize_t n;

		if(poll(&pfd, 1, 20000) <= 0)
			break;
		n = read(fds[0], line + used, sizeof(line) - 1 - used);
		if(n <= 0)
			break;
		used += (size_t)n;
	}
	close(fds[0]);
	line[used] = '\0';
	srv.port = (int)strtol(line, NULL, 10);
	if(srv.port <= 0 || srv.port > 65535)
		return -1;
	snprintf(srv.base, sizeof(srv.base), "http://127.0.0.1:%d", srv.port);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

/* group_teardown - SIGTERM to the server's pid, then reap it */
static int group_teardown(void **state)
{
	int status;

	(void)state;
	if(srv.pid > 0) {
		kill(srv.pid, SIGTERM);
		while(waitpid(srv.pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	curl_global_cleanup();
	return 0;
}

/* loopback: the test server's range, which the outbound guard refuses unless allowed */
static struct netguard loopback;

/* client - a client with short timeouts that may reach the test server */
static struct rest *client(long timeout_ms)
{
	struct rest_opts o = {2000, timeout_ms, NULL, &loopback};
	struct rest *r = NULL;

	if(loopback.nallow == 0) {
		assert_int_equal(netguard_cidr_parse("127.0.0.0/8", &loopback.allow[0]), GW_OK);
		loopback.nallow = 1;
	}
	assert_int_equal(rest_create(&o, &r), GW_OK);
	assert_non_null(r);
	return r;
}

/* url - the server's URL for path (with its query) */
static const char *url(const char *path)
{
	static char buf[4200];

	snprintf(buf, sizeof(buf), "%s%s", srv.base, path);
	return buf;
}

/* echo_str - a string member of the echo, or "" */
static const char *echo_str(const struct rest_res *res, const char *a, const char *b)
{
	const json_t *v = json_object_get(res->json, a);

	if(b)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : "";
}

/* a GET: status, the parsed JSON answer, what was sent */
static void test_get_json(void **state)
{
	struct rest *r = client(5000);
	struct rest_req q = {.method = "GET", .url = url("/calendars/primary/events?x=1")};
	struct rest_res res;

	(void)state;
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_int_equal(res.status, 200);
	assert_non_null(res.json);
	assert_string_equal(echo_str(&res, "method", NULL), "GET");
	assert_string_equal(echo_str(&res, "path", NULL), "/calendars/primary/events");
	assert_string_equal(echo_str(&res, "headers", "accept"), "application/json");
	assert_string_equal(echo_str(&res, "headers", "authorization"), "");
	assert_string_equal(res.detail, "");
	assert_int_equal(res.retry_after, -1);
	rest_res_free(&res);
	rest_destroy(r);
}

/* every method with a JSON body, the bearer token and extra headers */
static void test_methods_and_headers(void **state)
{
	static const char *const methods[] = {"POST", "PATCH", "PUT", "DELETE", "PROPFIND"};
	static const char *const extra[] = {"If-Match: \"etag-1\"", "X-Test: yes", NULL};
	struct rest *r = client(5000);
	json_t *body = json_pack("{s:s, s:i}", "summary", "Yoga with Cleo", "n", 3);
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(methods); i++) {
		struct rest_req q = {.method = methods[i],
		                     .url = url("/e"),
		                     .bearer = "tok-123",
		                     .json = body,
		                     .headers = extra};
		struct rest_res res;
		json_t *sent;

		assert_int_equal(rest_call(r, &q, &res), GW_OK);
		assert_int_equal(res.status, 200);
		assert_string_equal(echo_str(&res, "method", NULL), methods[i]);
		assert_string_equal(echo_str(&res, "headers", "authorization"), "Bearer tok-123");
		assert_string_equal(echo_str(&res, "headers", "content-type"), "application/json");
		assert_string_equal(echo_str(&res, "headers", "if-match"), "\"etag-1\"");
		assert_string_equal(echo_str(&res, "headers", "x-test"), "yes");
		sent = json_loads(echo_str(&res, "body", NULL), 0, NULL);
		assert_true(json_equal(sent, body));
		json_decref(sent);
		rest_res_free(&res);
	}
	json_decref(body);
	rest_destroy(r);
}

/* a raw body (CalDAV's iCalendar PUT) goes with its own Content-Type */
static void test_raw_body(void **state)
{
	struct rest *r = client(5000);
	const char *ics = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n";
	struct rest_req q = {.method = "PUT",
	                     .url = url("/dav/uid.ics"),
	                     .body = ics,
	                     .body_len = strlen(ics),
	                     .content_type = "text/calendar"};
	struct rest_res res;

	(void)state;
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_string_equal(echo_str(&res, "headers", "content-type"), "text/calendar");
	assert_string_equal(echo_str(&res, "body", NULL), ics);
	rest_res_free(&res);
	rest_destroy(r);
}

/* a form POST (OAuth token endpoint): fields escaped, decoded back by the server */
static void test_form_post(void **state)
{
	static const char *const fields[] = {"grant_type",
	                                     "refresh_token",
	                                     "refresh_token",
	                                     "1//a+b/c=d&e f",
	                                     "client_id",
	                                     "id.apps",
	                                     NULL};
	struct rest *r = client(5000);
	struct rest_res res;

	(void)state;
	assert_int_equal(rest_form_post(r, url("/token"), fields, &res), GW_OK);
	assert_int_equal(res.status, 200);
	assert_string_equal(echo_str(&res, "method", NULL), "POST");
	assert_string_equal(echo_str(&res, "headers", "content-type"),
	                    "application/x-www-form-urlencoded");
	assert_string_equal(echo_str(&res, "form", "grant_type"), "refresh_token");
	assert_string_equal(echo_str(&res, "form", "refresh_token"), "1//a+b/c=d&e f");
	assert_string_equal(echo_str(&res, "form", "client_id"), "id.apps");
	rest_res_free(&res);
	rest_destroy(r);
}

/* an error answer: the status, and the far side's body in the detail, cleaned and bounded */
static void test_error_detail(void **state)
{
	struct rest *r = client(5000);
	struct rest_req q = {.method = "POST", .url = NULL};
	struct rest_res res;
	char path[3000], big[2000];
	size_t i;

	(void)state;
	/* {"error":\n\t{"code":409,"message":"dup id"}} : JSON with white space between tokens */
	q.url = url(
	        "/e?status=409&raw=%7B%22error%22%3A%0A%09%7B%22code%22%3A409%2C%22message%22%3A"
	        "%22dup%20id%22%7D%7D");
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_int_equal(res.status, 409);
	assert_non_null(res.json);
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(res.json, "error"), "code")),
	        409);
	assert_string_equal(res.detail,
	                    "HTTP 409: {\"error\": {\"code\":409,\"message\":\"dup id\"}}");
	rest_res_free(&res);

	/* control characters and bytes outside ASCII never reach the detail */
	q.url = url("/e?status=400&ctype=text/plain&raw=bad%0D%0AX-Injected:%201%01%C3%A9");
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_string_equal(res.detail, "HTTP 400: bad X-Injected: 1???");
	rest_res_free(&res);

	/* a long body is cut to REST_ERRBODY_MAX bytes */
	for(i = 0; i < sizeof(big) - 1; i++)
		big[i] = 'a' + (char)(i % 26);
	big[sizeof(big) - 1] = '\0';
	snprintf(path, sizeof(path), "/e?status=500&ctype=text/plain&raw=%s", big);
	q.url = url(path);
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_int_equal(res.status, 500);
	assert_null(res.json); /* text/plain is not parsed */
	assert_int_equal(strlen(res.detail), strlen("HTTP 500: ") + REST_ERRBODY_MAX);
	assert_int_equal(strncmp(res.detail, "HTTP 500: abcdef", 16), 0);
	rest_res_free(&res);
	rest_destroy(r);
}

/* Retry-After as seconds and as an HTTP-date, from the server */
static void test_retry_after_header(void **state)
{
	struct rest *r = client(5000);
	struct rest_req q = {.method = "GET"};
	struct rest_res res;

	(void)state;
	q.url = url("/e?status=429&retry_after=7");
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_int_equal(res.status, 429);
	assert_int_equal(res.retry_after, 7);
	rest_res_free(&res);
	q.url = url("/e?status=503&retry_after=http-date%2B120");
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_int_equal(res.status, 503);
	assert_in_range(res.retry_after, 115, 121);
	rest_res_free(&res);
	rest_destroy(r);
}

/* rest_retry_after - the parser's table */
static void test_retry_after_parse(void **state)
{
	static const struct {
		const char *in;
		time_t now;
		int want;
	} cases[] = {
	        {"0", 0, 0},
	        {"120", 0, 120},
	        {" 30 ", 0, 30},
	        {"99999999999", 0, 86400},
	        {"Sun, 06 Nov 1994 08:49:37 GMT", 1000000000, 0}, /* in the past */
	        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 90, 90},
	        {"Thu, 01 Jan 1970 00:10:00 GMT", 0, 600},
	        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777 - 60, 60}, /* RFC 850 form */
	        {"Sat, 01 Jan 2100 00:00:00 GMT", 0, 86400},            /* capped at a day */
	        {"12abc", 0, -1},
	        {"", 0, -1},
	        {"soon", 0, -1},
	        {"-5", 0, -1},
	};
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cases); i++)
		assert_int_equal(rest_retry_after(cases[i].in, cases[i].now), cases[i].want);
	assert_int_equal(rest_retry_after(NULL, 0), -1);
}

/* rest_escape and rest_clean */
static void test_escape_clean(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(rest_escape("a@b.example", buf, sizeof(buf)), GW_OK);
	assert_string_equal(buf, "a%40b.example");
	assert_int_equal(rest_escape("x/y z~_-", buf, sizeof(buf)), GW_OK);
	assert_string_equal(buf, "x%2Fy%20z~_-");
	assert_int_equal(rest_escape("////////", buf, 10), GW_EINVAL);
	rest_clean("a\r\n\x01 b\xc3\xa9", 8, 100, buf, sizeof(buf));
	assert_string_equal(buf, "a ? b??");
	rest_clean("abcdef", 6, 3, buf, sizeof(buf));
	assert_string_equal(buf, "abc");
}

/* the whole call is bounded: a server slower than the timeout fails it */
static void test_timeout(void **state)
{
	struct rest *r = client(500);
	struct rest_req q = {.method = "GET", .url = url("/e?delay=3")};
	struct rest_res res;

	(void)state;
	assert_int_equal(rest_call(r, &q, &res), GW_EIO);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.curl_code, CURLE_OPERATION_TIMEDOUT);
	assert_non_null(strstr(res.detail, "curl error 28"));
	rest_res_free(&res);
	rest_destroy(r);
}

/* no answer at all: a dropped connection, and nobody listening */
static void test_no_answer(void **state)
{
	struct rest *r = client(5000);
	struct rest_req q = {.method = "POST", .url = url("/e?close=1")};
	struct rest_res res;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char refused[64];
	int fd;

	(void)state;
	assert_int_equal(rest_call(r, &q, &res), GW_EIO);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.curl_code, CURLE_GOT_NOTHING);
	rest_res_free(&res);

	/* a port that was free a moment ago */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(refused, sizeof(refused), "http://127.0.0.1:%d/e", ntohs(sa.sin_port));
	q.url = refused;
	assert_int_equal(rest_call(r, &q, &res), GW_EIO);
	assert_int_equal(res.curl_code, CURLE_COULDNT_CONNECT);
	assert_non_null(strstr(res.detail, "curl error 7"));
	rest_res_free(&res);
	rest_destroy(r);
}

/* an answer over REST_BODY_MAX fails the call instead of filling memory */
static void test_body_limit(void **state)
{
	struct rest *r = client(5000);
	struct rest_req q = {.method = "GET"};
	struct rest_res res;
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "/e?ctype=text/plain&big=%d", REST_BODY_MAX + 1);
	q.url = url(path);
	assert_int_equal(rest_call(r, &q, &res), GW_EIO);
	assert_non_null(strstr(res.detail, "longer than"));
	rest_res_free(&res);
	snprintf(path, sizeof(path), "/e?ctype=text/plain&big=%d", 100000);
	q.url = url(path);
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_int_equal(res.body_len, 100000);
	rest_res_free(&res);
	rest_destroy(r);
}

/* one handle, one connection: the second call comes from the same client port */
static void test_connection_reuse(void **state)
{
	struct rest *r = client(5000);
	struct rest_req q = {.method = "GET", .url = url("/e")};
	struct rest_req p = {.method = "POST", .url = url("/e?status=201"), .json = NULL};
	struct rest_res a, b, c;
	json_t *j = json_pack("{s:i}", "n", 1);
	long connects = -1;

	(void)state;
	p.json = j;
	assert_int_equal(rest_call(r, &q, &a), GW_OK);
	assert_int_equal(rest_call(r, &p, &b), GW_OK);
	assert_int_equal(b.status, 201);
	assert_int_equal(rest_call(r, &q, &c), GW_OK);
	assert_int_equal(json_integer_value(json_object_get(a.json, "peer_port")),
	                 json_integer_value(json_object_get(b.json, "peer_port")));
	assert_int_equal(json_integer_value(json_object_get(b.json, "peer_port")),
	                 json_integer_value(json_object_get(c.json, "peer_port")));
	/* and the GET after a POST has no body of its own */
	assert_string_equal(echo_str(&c, "method", NULL), "GET");
	assert_string_equal(echo_str(&c, "body", NULL), "");
	(void)connects;
	rest_res_free(&a);
	rest_res_free(&b);
	rest_res_free(&c);
	json_decref(j);
	rest_destroy(r);
}

/* requests the client refuses before sending anything */
static void test_refused_requests(void **state)
{
	static const char *const bad_header[] = {"X-A: 1\r\nX-B: 2", NULL};
	struct rest *r = client(5000);
	struct rest_res res;
	struct rest_req q = {.method = "GET", .url = "ftp://127.0.0.1/x"};

	(void)state;
	assert_int_equal(rest_call(r, &q, &res), GW_EINVAL);
	rest_res_free(&res);
	q.url = url("/e");
	q.method = "get";
	assert_int_equal(rest_call(r, &q, &res), GW_EINVAL);
	rest_res_free(&res);
	q.method = "GET";
	q.headers = bad_header;
	assert_int_equal(rest_call(r, &q, &res), GW_EINVAL);
	rest_res_free(&res);
	q.headers = NULL;
	q.bearer = "a\r\nX-Injected: 1";
	assert_int_equal(rest_call(r, &q, &res), GW_EINVAL);
	rest_res_free(&res);
	rest_destroy(r);
	rest_destroy(NULL);
}

/* the outbound guard: with no allow list the test server (127.0.0.1) and a closed port give
 * the same answer, nothing connected; a name that resolves to loopback is refused after DNS */
static void test_guard(void **state)
{
	struct rest_opts o = {2000, 5000, NULL, NULL};
	struct rest *r = NULL;
	struct rest_req q = {.method = "GET"};
	struct rest_res res;
	char closed[64], named[128];

	(void)state;
	assert_int_equal(rest_create(&o, &r), GW_OK);
	q.url = url("/j");
	assert_int_equal(rest_call(r, &q, &res), GW_EIO);
	assert_int_equal(res.refused, 1);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.detail, NETGUARD_REFUSED);
	rest_res_free(&res);
	snprintf(closed, sizeof(closed), "http://127.0.0.1:1/j");
	q.url = closed;
	assert_int_equal(rest_call(r, &q, &res), GW_EIO);
	assert_string_equal(res.detail, NETGUARD_REFUSED);
	rest_res_free(&res);
	snprintf(named, sizeof(named), "http://localhost:%d/j", srv.port);
	q.url = named;
	assert_int_equal(rest_call(r, &q, &res), GW_EIO);
	assert_string_equal(res.detail, NETGUARD_REFUSED);
	rest_res_free(&res);
	assert_int_equal(rest_form_post(r, url("/j"), (const char *const[]){"a", "b", NULL}, &res),
	                 GW_EIO);
	assert_int_equal(res.refused, 1);
	rest_res_free(&res);
	rest_destroy(r);
	/* the same client allowed loopback reaches it */
	r = client(5000);
	q.url = url("/j");
	assert_int_equal(rest_call(r, &q, &res), GW_OK);
	assert_int_equal(res.refused, 0);
	rest_res_free(&res);
	rest_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_get_json),
	        cmocka_unit_test(test_methods_and_headers),
	        cmocka_unit_test(test_raw_body),
	        cmocka_unit_test(test_form_post),
	        cmocka_unit_test(test_error_detail),
	        cmocka_unit_test(test_retry_after_header),
	        cmocka_unit_test(test_retry_after_parse),
	        cmocka_unit_test(test_escape_clean),
	        cmocka_unit_test(test_timeout),
	        cmocka_unit_test(test_no_answer),
	        cmocka_unit_test(test_body_limit),
	        cmocka_unit_test(test_connection_reuse),
	        cmocka_unit_test(test_refused_requests),
	        cmocka_unit_test(test_guard),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("rest", tests, group_setup, group_teardown);
}
