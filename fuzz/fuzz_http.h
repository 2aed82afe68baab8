/*
 * fuzz_http.h - what the HTTP harnesses (fuzz_route.c: bodies, fuzz_query.c: query strings)
 * share: the real route table and handlers over a real store in a temporary folder, called the
 * way gateway/http/http.c's handle() calls them, without a socket.
 *
 * The fixture, made through the handlers themselves under a fixed test clock (2026-12-01 08:00
 * UTC, so a run does not depend on the date): organisation 1 (Europe/Berlin) with an org admin,
 * a trainer (user 3, skill "python", available every day), a kiosk and a session type;
 * Google provider settings; organisation 2 with a trainer; request 1 booked and confirmed (booking
 * 1, its manage link), request 2 completed with its survey link, request 3 new. The scheduling,
 * manage and survey tokens are read back from the emails in the outbox, as a customer would get
 * them. Inputs change the fixture (a valid body is a real transition): it is made again every
 * FUZZ_HTTP_RESET inputs so a long run keeps reaching the validators of every state.
 *
 * libmicrohttpd's MHD_lookup_connection_value is defined here: the handlers' query and header
 * look-ups read the input's query string instead of a connection (the definition in the
 * program wins over the shared library's). This header is for those two harnesses only: it
 * defines functions and file-local state.
 *
 * Threading: one thread (libFuzzer's).
 */
#ifndef FUZZ_HTTP_H
#define FUZZ_HTTP_H

#include <ctype.h>
#include <microhttpd.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/jsonv.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "common/tz.h"
#include "gateway/http/http.h"
#include "gateway/http/http_routes.h"
#include "store/store.h"

#define FUZZ_HTTP_RESET 256
#define FUZZ_NOW        1796112000 /* 2026-12-01T08:00:00Z */
#define FUZZ_QUERY_MAX  16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum fuzz_role { AS_ANON, AS_PLATFORM, AS_ADMIN, AS_TRAINER, AS_KIOSK, AS_FOREIGN, AS_NROLES };

static struct {
	char dir[64];
	char db[128];
	struct store *st;
	struct http_config cfg;
	unsigned char key[CRYPTO_KEY_LEN];
	struct store_user user[AS_NROLES];
	char sched_token[128], manage_token[128], survey_token[128];
	unsigned inputs;
	/* the query string of the call being made: MHD_lookup_connection_value reads it */
	char *qk[FUZZ_QUERY_MAX], *qv[FUZZ_QUERY_MAX];
	size_t nq;
	struct gw_err last_err; /* of the last call, for FUZZ_HTTP_SHOW */
} fz;

/* MHD_lookup_connection_value - the current call's query arguments; no headers */
const char *MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                                        const char *key)
{
	size_t i;

	(void)connection;
	if(kind != MHD_GET_ARGUMENT_KIND || !key)
		return NULL;
	for(i = 0; i < fz.nq; i++) {
		if(strcmp(fz.qk[i], key) == 0)
			return fz.qv[i];
	}
	return NULL;
}

/* hexval - one hex digit, or -1 */
static int hexval(char c)
{
	if(c >= '0' && c <= '9')
		return c - '0';
	if(c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if(c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* unescape - percent and '+' decoding in place, as libmicrohttpd does for arguments */
static void unescape(char *s)
{
	char *w = s;

	for(; *s; s++) {
		if(*s == '+') {
			*w++ = ' ';
		} else if(*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*w++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* query_clear - forget the current query */
static void query_clear(void)
{
	size_t i;

	for(i = 0; i < fz.nq; i++) {
		free(fz.qk[i]);
		free(fz.qv[i]);
	}
	fz.nq = 0;
}

/* query_set - split q (n bytes, "a=1&b=2") into the current query; the first of a key wins,
 * as with libmicrohttpd's look-up */
static inline void query_set(const char *q, size_t n)
{
	size_t i = 0;

	query_clear();
	while(i < n && fz.nq < FUZZ_QUERY_MAX) {
		const char *amp = memchr(q + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - q) : n;
		const char *eq = memchr(q + i, '=', end - i);
		size_t klen = eq ? (size_t)(eq - (q + i)) : end - i;
		char *k = strndup(q + i, klen);
		char *v = eq ? strndup(eq + 1, end - (size_t)(eq + 1 - q)) : strdup("");

		if(!k || !v || memchr(q + i, '\0', end - i)) {
			free(k);
			free(v);
		} else {
			unescape(k);
			unescape(v);
			fz.qk[fz.nq] = k;
			fz.qv[fz.nq] = v;
			fz.nq++;
		}
		i = end + 1;
	}
}

/* call - one request as handle() makes it: route, actor, body parse, handler; the status it
 * would answer, *out (new reference, may be NULL) its JSON. A refusal must name a result code
 * with an HTTP status: anything else aborts. */
static int call(const char *method, const char *path, enum fuzz_role role, const char *body,
                size_t len, json_t **out)
{
	struct http_req r;
	const struct http_route *route;
	json_t *res = NULL;
	char allow[64];
	gw_rc rc = GW_OK;
	int status;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = path;
	r.cfg = &fz.cfg;
	r.status = 200;
	r.st = fz.st;
	snprintf(r.client, sizeof(r.client), "127.0.0.1");
	if(out)
		*out = NULL;
	route = http_route_find(method, path, &r, allow, sizeof(allow));
	if(!route)
		return allow[0] ? 405 : 404;
	if(role != AS_ANON && fz.user[role].id) {
		r.authed = true;
		r.user = fz.user[role];
		r.actor.user_id = r.user.id;
		r.actor.org_id = r.user.org_id;
		r.actor.roles = r.user.roles;
	}
	if(route->body == HTTP_BODY_REQUIRED || (route->body == HTTP_BODY_OPTIONAL && len > 0))
		rc = jv_parse(body ? body : "", len, &r.body, &r.err);
	if(!rc)
		rc = route->handler(&r, &res);
	if(rc) {
		status = http_status(rc);
		if(status < 400 || status > 599 || !gw_rc_name(rc))
			abort();
		json_decref(res);
		res = NULL;
	} else {
		status = r.status;
	}
	fz.last_err = r.err;
	json_decref(r.body);
	free(r.text);
	free(r.location);
	if(out)
		*out = res;
	else
		json_decref(res);
	return status;
}

/* call_json - call with a body built by json_pack-like text; aborts unless the status is want */
static json_t *call_json(const char *method, const char *path, enum fuzz_role role,
                         const char *body, int want)
{
	json_t *out = NULL;
	int status = call(method, path, role, body, body ? strlen(body) : 0, &out);

	if(status != want) {
		fprintf(stderr, "fuzz_http: fixture %s %s answered %d, not %d\n", method, path,
		        status, want);
		abort();
	}
	return out;
}

/* user_of - the store user behind a token the API returned */
static void user_of(json_t *created, struct store_user *u)
{
	const char *token = json_string_value(json_object_get(created, "token"));
	char hash[CRYPTO_HASH_HEX];

	if(!token)
		abort();
	crypto_sha256_hex(token, strlen(token), hash);
	if(store_user_by_token(fz.st, hash, u))
		abort();
	json_decref(created);
}

/* token_in_outbox - the token after marker ("/s/") in the newest email of kind, into buf */
static void token_in_outbox(const char *kind, const char *marker, char *buf, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	const char *text, *p;
	size_t i = 0;

	buf[0] = '\0';
	if(sqlite3_open_v2(fz.db, &db, SQLITE_OPEN_READONLY, NULL) ||
	   sqlite3_prepare_v2(db, "SELECT payload FROM outbox WHERE kind = ? ORDER BY id DESC", -1,
	                      &q, NULL) ||
	   sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC) || sqlite3_step(q) != SQLITE_ROW)
		abort();
	text = (const char *)sqlite3_column_text(q, 0);
	p = text ? strstr(text, marker) : NULL;
	if(!p)
		abort();
	for(p += strlen(marker);
	    i + 1 < n && (isalnum((unsigned char)*p) || *p == '_' || *p == '-'); p++)
		buf[i++] = *p;
	buf[i] = '\0';
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* book_request - request id through the customer's steps to a confirmed booking */
static void book_request(int64_t request)
{
	char path[256], body[256];
	json_t *view, *slot;

	snprintf(path, sizeof(path), "/v1/orgs/1/requests/%lld/claim", (long long)request);
	json_decref(call_json("POST", path, AS_TRAINER, NULL, 200));
	snprintf(path, sizeof(path), "/v1/orgs/1/requests/%lld/scheduling-link",
	         (long long)request);
	json_decref(call_json("POST", path, AS_TRAINER, NULL, 200));
	token_in_outbox("scheduling_link", "/s/", fz.sched_token, sizeof(fz.sched_token));
	snprintf(path, sizeof(path), "/v1/schedule/%s", fz.sched_token);
	view = call_json("GET", path, AS_ANON, NULL, 200);
	/* a day or more ahead: past the customers' change cutoff */
	slot = json_array_get(json_object_get(view, "slots"), 150 + 5 * (size_t)request);
	if(!slot)
		abort();
	snprintf(body, sizeof(body), "{\"start\": \"%s\", \"length_minutes\": 60}",
	         json_string_value(json_object_get(slot, "start")));
	if(getenv("FUZZ_HTTP_SHOW"))
		fprintf(stderr, "fixture: request %lld books %s of %zu slots\n", (long long)request,
		        json_string_value(json_object_get(slot, "start")),
		        json_array_size(json_object_get(view, "slots")));
	json_decref(view);
	snprintf(path, sizeof(path), "/v1/schedule/%s/booking", fz.sched_token);
	json_decref(call_json("POST", path, AS_ANON, body, 201));
	snprintf(path, sizeof(path), "/v1/schedule/%s/payment", fz.sched_token);
	json_decref(call_json("POST", path, AS_ANON, "{\"reference\": \"PAY-1\"}", 200));
}

/* fixture_make - a fresh folder, store and fixture (see the header comment) */
static void fixture_make(void)
{
	static const char *const intake =
	        "{\"customer\": {\"name\": \"Cara Customer\", \"email\": \"cara@example.org\"},"
	        " \"session_type_id\": 1, \"skills\": [\"python\"]}";
	struct store_user_new pa = {0};
	struct gw_err err = {0};
	char token[64], hash[CRYPTO_HASH_HEX];
	int64_t id;

	snprintf(fz.dir, sizeof(fz.dir), "/tmp/fuzz_http.XXXXXX");
	if(!mkdtemp(fz.dir))
		abort();
	snprintf(fz.db, sizeof(fz.db), "%s/ordinatus.db", fz.dir);
	if(store_open(fz.db, true, &fz.st, &err))
		abort();
	memset(fz.user, 0, sizeof(fz.user));
	clock_set_test(FUZZ_NOW);
	if(crypto_token("ord_", token, sizeof(token)))
		abort();
	crypto_sha256_hex(token, strlen(token), hash);
	pa.email = "platform-admin@ordinatus.localhost";
	pa.name = "Platform admin";
	pa.roles = ROLE_PLATFORM_ADMIN;
	pa.timezone = "UTC";
	pa.token_hash = hash;
	if(store_user_create(fz.st, 0, &pa, &id) ||
	   store_user_by_token(fz.st, hash, &fz.user[AS_PLATFORM]))
		abort();
	json_decref(call_json("POST", "/v1/orgs", AS_PLATFORM,
	                      "{\"name\": \"Acme\", \"timezone\": \"Europe/Berlin\"}", 201));
	json_decref(call_json("POST", "/v1/orgs", AS_PLATFORM,
	                      "{\"name\": \"Other\", \"timezone\": \"UTC\"}", 201));
	user_of(call_json("POST", "/v1/orgs/1/users", AS_PLATFORM,
	                  "{\"email\": \"admin@acme.example\", \"name\": \"Ada Admin\","
	                  " \"roles\": [\"org_admin\"]}",
	                  201),
	        &fz.user[AS_ADMIN]);
	user_of(call_json("POST", "/v1/orgs/1/users", AS_PLATFORM,
	                  "{\"email\": \"tom@acme.example\", \"name\": \"Tom Trainer\","
	                  " \"roles\": [\"trainer\"], \"skills\": [\"python\"],"
	                  " \"timezone\": \"Europe/Berlin\"}",
	                  201),
	        &fz.user[AS_TRAINER]);
	user_of(call_json("POST", "/v1/orgs/1/users", AS_PLATFORM,
	                  "{\"email\": \"desk@acme.example\", \"name\": \"Front Desk\","
	                  " \"roles\": [\"kiosk\"]}",
	                  201),
	        &fz.user[AS_KIOSK]);
	user_of(call_json("POST", "/v1/orgs/2/users", AS_PLATFORM,
	                  "{\"email\": \"olga@other.example\", \"name\": \"Olga Other\","
	                  " \"roles\": [\"trainer\", \"org_admin\"], \"skills\": [\"python\"]}",
	                  201),
	        &fz.user[AS_FOREIGN]);
	json_decref(call_json("POST", "/v1/orgs/1/session-types", AS_ADMIN,
	                      "{\"name\": \"Python 1:1\", \"skills\": [\"python\"],"
	                      " \"lengths\": [60, 90], \"price_cents\": 5000,"
	                      " \"currency\": \"EUR\"}",
	                      201));
	json_decref(call_json("PUT", "/v1/orgs/1/providers/google", AS_ADMIN,
	                      "{\"client_id\": \"cid\", \"client_secret\": \"secret\"}", 200));
	json_decref(call_json("PUT", "/v1/orgs/1/users/3/availability", AS_TRAINER,
	                      "{\"weekly\": [{\"day\": \"mon\", \"start\": \"08:00\", \"end\": "
	                      "\"20:00\"}, {\"day\": \"tue\", \"start\": \"08:00\", \"end\": "
	                      "\"20:00\"}, {\"day\": \"wed\", \"start\": \"08:00\", \"end\": "
	                      "\"20:00\"}, {\"day\": \"thu\", \"start\": \"08:00\", \"end\": "
	                      "\"20:00\"}, {\"day\": \"fri\", \"start\": \"08:00\", \"end\": "
	                      "\"20:00\"}]}",
	                      200));
	json_decref(call_json("POST", "/v1/orgs/1/requests", AS_ANON, intake, 201));
	json_decref(call_json("POST", "/v1/orgs/1/requests", AS_ANON, intake, 201));
	json_decref(call_json("POST", "/v1/orgs/1/requests", AS_ANON, intake, 201));
	/* request 2: booked, paid, confirmed and completed: its survey link */
	book_request(2);
	json_decref(
	        call_json("POST", "/v1/orgs/1/bookings/1/confirm-payment", AS_TRAINER, NULL, 200));
	json_decref(call_json("POST", "/v1/orgs/1/bookings/1/complete", AS_ADMIN, NULL, 200));
	token_in_outbox("survey", "/survey/", fz.survey_token, sizeof(fz.survey_token));
	/* request 1: booked, paid and confirmed (booking 2): its manage link; its scheduling link
	 * stays the last one sent */
	book_request(1);
	json_decref(
	        call_json("POST", "/v1/orgs/1/bookings/2/confirm-payment", AS_TRAINER, NULL, 200));
	token_in_outbox("confirmation", "/b/", fz.manage_token, sizeof(fz.manage_token));
}

/* fixture_drop - close the store and remove its folder */
static void fixture_drop(void)
{
	static const char *const files[] = {"ordinatus.db", "ordinatus.db-wal", "ordinatus.db-shm",
	                                    NULL};
	char path[160];
	size_t i;

	store_close(fz.st);
	fz.st = NULL;
	for(i = 0; files[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", fz.dir, files[i]);
		unlink(path);
	}
	rmdir(fz.dir);
}

/* fixture_cleanup - at exit: no folder left behind */
static void fixture_cleanup(void)
{
	query_clear();
	if(fz.st)
		fixture_drop();
}

/* fixture_ready - the fixture for the next input: made on the first, again every
 * FUZZ_HTTP_RESET */
static void fixture_ready(void)
{
	static bool once;

	if(!once) {
		once = true;
		tz_init();
		store_global_init();
		log_quiet(1);
		memset(fz.key, 7, sizeof(fz.key));
		fz.cfg.listen = "127.0.0.1:1";
		fz.cfg.listen_fd = -1;
		fz.cfg.public_url = "http://127.0.0.1:1";
		fz.cfg.master_key = fz.key;
		fz.cfg.test_clock = true;
		fz.cfg.threads = 1;
		atexit(fixture_cleanup);
	}
	if(fz.st && fz.inputs % FUZZ_HTTP_RESET == 0)
		fixture_drop();
	if(!fz.st) {
		fixture_make();
		fz.cfg.db_path = fz.db;
		fz.cfg.data_dir = fz.dir;
	}
	fz.inputs++;
	/* an input may have moved the test clock */
	clock_set_test(FUZZ_NOW);
}

/* path_fill - the path template t with {S}, {M} and {V} replaced by the fixture's
 * scheduling, manage and survey tokens */
static void path_fill(const char *t, char *buf, size_t n)
{
	size_t w = 0;

	for(; *t && w + 1 < n; t++) {
		const char *tok = NULL;

		if(t[0] == '{' && t[1] && t[2] == '}') {
			tok = t[1] == 'S'   ? fz.sched_token
			      : t[1] == 'M' ? fz.manage_token
			      : t[1] == 'V' ? fz.survey_token
			                    : NULL;
		}
		if(tok) {
			w += (size_t)snprintf(buf + w, n - w, "%s", tok);
			if(w >= n)
				w = n - 1;
			t += 2;
		} else {
			buf[w++] = *t;
		}
	}
	buf[w] = '\0';
}

#endif
