/*
 * test_lc.c - the request lifecycle (gateway/lifecycle/lc.h): the guard table (state x action x
 * role), then intake, the claim and the session-type change against a real store in a temp
 * folder: which trainers get a new_request row and under which dedupe key, invalid bodies
 * refused with the field named and nothing written, exactly one trainer winning a claim, and
 * the losers' unsent emails expiring with it.
 *
 * No dispatch workers are started: lc.c's dispatch_wake() then wakes nobody, and every outbox
 * row stays where the lifecycle put it. The clock is the test clock, frozen at T0.
 *
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "gateway/lifecycle/lc.h"
#include "gateway/templates/tpl.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define T0 ((time_t)1780000000)

#define CHECK(cond, ...)                                                                       \
	do {                                                                                       \
		if(!(cond))                                                                            \
			fail_msg(__VA_ARGS__);                                                             \
	} while(0)

#define CHECK_RC(got, want, name)                                                              \
	CHECK((got) == (want), "%s: rc %s, want %s", (name), gw_rc_name(got), gw_rc_name(want))

/* ---- the guard table: pure ---- */

enum { A_TRAINER, A_TRAINER2, A_ADMIN, A_ADMIN_TRAINER, A_KIOSK, A_PLATFORM, A_COUNT };

static const struct lc_actor guard_actors[A_COUNT] = {
    [A_TRAINER] = {10, 1, ROLE_TRAINER},
    [A_TRAINER2] = {11, 1, ROLE_TRAINER},
    [A_ADMIN] = {12, 1, ROLE_ORG_ADMIN},
    [A_ADMIN_TRAINER] = {13, 1, ROLE_ORG_ADMIN | ROLE_TRAINER},
    [A_KIOSK] = {14, 1, ROLE_KIOSK},
    [A_PLATFORM] = {15, 0, ROLE_PLATFORM_ADMIN},
};

struct guard_case {
	enum lc_action action;
	const char *status;
	int actor;       /* A_* */
	int64_t claimer; /* user id, 0: none */
	gw_rc rc;
};

static const struct guard_case guard_cases[] = {
    /* claim: the trainer role, on a new request */
    {LC_CLAIM, "new", A_TRAINER, 0, GW_OK},
    {LC_CLAIM, "new", A_ADMIN_TRAINER, 0, GW_OK},
    {LC_CLAIM, "claimed", A_TRAINER2, 10, GW_ECLAIMED},
    {LC_CLAIM, "claimed", A_TRAINER, 10, GW_ECLAIMED},
    {LC_CLAIM, "scheduling", A_TRAINER2, 10, GW_ECLAIMED},
    {LC_CLAIM, "booked", A_TRAINER2, 10, GW_ECLAIMED},
    {LC_CLAIM, "cancelled", A_TRAINER, 0, GW_ECLAIMED},
    {LC_CLAIM, "closed", A_TRAINER, 10, GW_ECLAIMED},
    {LC_CLAIM, "new", A_ADMIN, 0, GW_EFORBIDDEN},
    {LC_CLAIM, "claimed", A_ADMIN, 10, GW_EFORBIDDEN},
    {LC_CLAIM, "new", A_KIOSK, 0, GW_EFORBIDDEN},
    {LC_CLAIM, "new", A_PLATFORM, 0, GW_EFORBIDDEN},
    /* change the session type: only the claimer, only while claimed */
    {LC_CHANGE_SESSION_TYPE, "claimed", A_TRAINER, 10, GW_OK},
    {LC_CHANGE_SESSION_TYPE, "claimed", A_ADMIN_TRAINER, 13, GW_OK},
    {LC_CHANGE_SESSION_TYPE, "claimed", A_TRAINER2, 10, GW_EFORBIDDEN},
    {LC_CHANGE_SESSION_TYPE, "claimed", A_ADMIN, 10, GW_EFORBIDDEN},
    {LC_CHANGE_SESSION_TYPE, "claimed", A_ADMIN_TRAINER, 10, GW_EFORBIDDEN},
    {LC_CHANGE_SESSION_TYPE, "claimed", A_KIOSK, 10, GW_EFORBIDDEN},
    {LC_CHANGE_SESSION_TYPE, "new", A_TRAINER, 0, GW_EFORBIDDEN},
    {LC_CHANGE_SESSION_TYPE, "scheduling", A_TRAINER, 10, GW_ESTATE},
    {LC_CHANGE_SESSION_TYPE, "booked", A_TRAINER, 10, GW_ESTATE},
    {LC_CHANGE_SESSION_TYPE, "cancelled", A_TRAINER, 10, GW_ESTATE},
    /* cancel a request: an org admin, or the claiming trainer; only while new, claimed or
     * scheduling; another trainer is refused whatever the state */
    {LC_CANCEL_REQUEST, "new", A_ADMIN, 0, GW_OK},
    {LC_CANCEL_REQUEST, "claimed", A_ADMIN, 10, GW_OK},
    {LC_CANCEL_REQUEST, "scheduling", A_ADMIN, 10, GW_OK},
    {LC_CANCEL_REQUEST, "scheduling", A_PLATFORM, 10, GW_OK},
    {LC_CANCEL_REQUEST, "claimed", A_TRAINER, 10, GW_OK},
    {LC_CANCEL_REQUEST, "scheduling", A_TRAINER, 10, GW_OK},
    {LC_CANCEL_REQUEST, "claimed", A_ADMIN_TRAINER, 10, GW_OK},
    {LC_CANCEL_REQUEST, "booked", A_ADMIN, 10, GW_ESTATE},
    {LC_CANCEL_REQUEST, "closed", A_ADMIN, 10, GW_ESTATE},
    {LC_CANCEL_REQUEST, "cancelled", A_ADMIN, 0, GW_ESTATE},
    {LC_CANCEL_REQUEST, "booked", A_TRAINER, 10, GW_ESTATE},
    {LC_CANCEL_REQUEST, "claimed", A_TRAINER2, 10, GW_EFORBIDDEN},
    {LC_CANCEL_REQUEST, "booked", A_TRAINER2, 10, GW_EFORBIDDEN},
    {LC_CANCEL_REQUEST, "new", A_TRAINER, 0, GW_EFORBIDDEN},
    {LC_CANCEL_REQUEST, "claimed", A_KIOSK, 10, GW_EFORBIDDEN},
};

static const char *const action_names[] = {"claim", "change session type", "cancel request"};

static void test_guard_table(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(guard_cases); i++) {
		const struct guard_case *c = &guard_cases[i];
		const struct lc_actor *a = &guard_actors[c->actor];
		gw_rc rc = lc_request_guard(c->action, c->status, a, c->claimer);

		CHECK(rc == c->rc, "%s on '%s' by user %lld (roles %d, claimer %lld): rc %s, want %s",
		      action_names[c->action], c->status, (long long)a->user_id, a->roles,
		      (long long)c->claimer, gw_rc_name(rc), gw_rc_name(c->rc));
	}
}

/* the "actions" a request answer carries for the pages: the same table, plus the link rule */
struct actions_case {
	const char *status;
	int actor;       /* A_* */
	int64_t claimer; /* user id, 0: none */
	const char *want; /* comma-separated */
};

static const struct actions_case actions_cases[] = {
    {"new", A_TRAINER, 0, "claim"},
    {"new", A_ADMIN, 0, "cancel"},
    {"new", A_ADMIN_TRAINER, 0, "claim,cancel"},
    {"new", A_KIOSK, 0, ""},
    {"claimed", A_TRAINER, 10, "session-type,scheduling-link,cancel"},
    {"claimed", A_TRAINER2, 10, ""},
    {"claimed", A_ADMIN, 10, "cancel"},
    {"scheduling", A_TRAINER, 10, "scheduling-link,cancel"},
    {"booked", A_TRAINER, 10, ""},
    {"booked", A_ADMIN, 10, ""},
    {"cancelled", A_TRAINER, 10, ""},
};

static void test_request_actions(void **state)
{
	size_t i, j;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(actions_cases); i++) {
		const struct actions_case *c = &actions_cases[i];
		json_t *req = json_pack("{s:s, s:o}", "status", c->status, "trainer_id",
		                        c->claimer ? json_integer(c->claimer) : json_null());
		json_t *got = lc_request_actions(req, &guard_actors[c->actor]);
		char joined[200] = "";

		CHECK(got != NULL, "case %zu: no list", i);
		for(j = 0; j < json_array_size(got); j++) {
			if(j)
				strncat(joined, ",", sizeof(joined) - strlen(joined) - 1);
			strncat(joined, json_string_value(json_array_get(got, j)),
			        sizeof(joined) - strlen(joined) - 1);
		}
		CHECK(strcmp(joined, c->want) == 0,
		      "case %zu ('%s', actor %d): got \"%s\", want \"%s\"", i, c->status, c->actor,
		      joined, c->want);
		json_decref(got);
		json_decref(req);
	}
}

/* ---- against a store ---- */

static char tmp_dir[64];
static int db_seq;

enum { U_T1, U_T2, U_T3, U_ADMIN, U_OTHER_ORG_T, U_COUNT };

struct user_def {
	const char *email;
	int org; /* 1 or 2 */
	int roles;
	const char *skills;
};

/* three trainers in org 1, an admin with every skill but no trainer role, one trainer elsewhere */
static const struct user_def user_defs[U_COUNT] = {
    [U_T1] = {"t1@x.test", 1, ROLE_TRAINER, "[\"pilates\", \"yoga\"]"},
    [U_T2] = {"t2@x.test", 1, ROLE_TRAINER, "[\"yoga\"]"},
    [U_T3] = {"t3@x.test", 1, ROLE_TRAINER, "[\"boxing\"]"},
    [U_ADMIN] = {"admin@x.test", 1, ROLE_ORG_ADMIN, "[\"boxing\", \"pilates\", \"yoga\"]"},
    [U_OTHER_ORG_T] = {"t9@x.test", 2, ROLE_TRAINER, "[\"boxing\", \"pilates\", \"yoga\"]"},
};

struct fixture {
	char path[128];
	struct store *st;
	int64_t org1, org2;
	int64_t user[U_COUNT];
	int64_t st_yoga;  /* org 1 session type with skills ["yoga"] */
	int64_t st_other; /* org 2's session type */
	struct lc_env env;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	clock_set_test(T0);
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_lc.XXXXXX");
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	clock_set_test(-1);
	return nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static json_t *load(const char *txt)
{
	json_error_t e;
	json_t *v = json_loads(txt, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);

	if(!v)
		fail_msg("bad JSON in a table: %s: %s", txt, e.text);
	return v;
}

static int64_t make_session_type(struct store *st, int64_t org, const char *name,
                                 const char *skills)
{
	json_t *sk = load(skills), *lengths = load("[60, 90]");
	struct store_session_type_new t = {name, "EUR", sk, lengths, 5000, 30};
	int64_t id = 0;

	assert_int_equal(store_session_type_create(st, org, &t, &id), GW_OK);
	json_decref(sk);
	json_decref(lengths);
	return id;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct gw_err err = {0};
	char hash[CRYPTO_HASH_HEX];
	size_t i;

	if(!f)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/db%d.sqlite", tmp_dir, ++db_seq);
	f->env.public_url = "https://book.example.test";
	if(store_open(f->path, true, &f->st, &err) != GW_OK ||
	   store_org_create(f->st, "Acme Fitness", "Europe/Berlin", &f->org1) != GW_OK ||
	   store_org_create(f->st, "Other Gym", "UTC", &f->org2) != GW_OK) {
		print_error("setup: %s\n", err.message);
		store_close(f->st);
		free(f);
		return -1;
	}
	for(i = 0; i < U_COUNT; i++) {
		const struct user_def *d = &user_defs[i];
		json_t *sk = load(d->skills);
		struct store_user_new nu = {d->email, d->email, "Europe/Berlin", d->roles, sk, false,
		                            hash};

		crypto_sha256_hex(d->email, strlen(d->email), hash);
		assert_int_equal(store_user_create(f->st, d->org == 1 ? f->org1 : f->org2, &nu,
		                                   &f->user[i]),
		                 GW_OK);
		json_decref(sk);
	}
	f->st_yoga = make_session_type(f->st, f->org1, "Yoga 1:1", "[\"yoga\"]");
	f->st_other = make_session_type(f->st, f->org2, "Elsewhere", "[]");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	free(f);
	return 0;
}

/* actor - the lc_actor of fixture user u */
static struct lc_actor actor(const struct fixture *f, int u)
{
	struct lc_actor a = {f->user[u], user_defs[u].org == 1 ? f->org1 : f->org2,
	                     user_defs[u].roles, false};
	return a;
}

/* n_requests - requests in both organisations */
static size_t n_requests(struct fixture *f)
{
	json_t *l1 = NULL, *l2 = NULL;
	size_t n;

	assert_int_equal(store_request_list(f->st, f->org1, NULL, 0, &l1), GW_OK);
	assert_int_equal(store_request_list(f->st, f->org2, NULL, 0, &l2), GW_OK);
	n = json_array_size(l1) + json_array_size(l2);
	json_decref(l1);
	json_decref(l2);
	return n;
}

/* outbox - every outbox row (new reference) */
static json_t *outbox(struct fixture *f)
{
	json_t *l = NULL;

	assert_int_equal(store_outbox_list(f->st, 0, NULL, 10000, &l), GW_OK);
	return l;
}

/* row_by_key - the outbox row with dedupe key key in list, or NULL (borrowed) */
static json_t *row_by_key(json_t *list, const char *key)
{
	json_t *r;
	size_t i;

	json_array_foreach(list, i, r) {
		if(strcmp(json_string_value(json_object_get(r, "dedupe_key")), key) == 0)
			return r;
	}
	return NULL;
}

/* intake - run lc_intake on body text; the request id on success */
static gw_rc intake(struct fixture *f, const char *body_txt, int64_t *id, int *matched,
                    struct gw_err *err)
{
	json_t *body = load(body_txt), *out = (json_t *)f;
	gw_rc rc;

	rc = lc_intake(f->st, &f->env, f->org1, body, &out, err);
	json_decref(body);
	if(rc) {
		CHECK(out == NULL, "*out not NULL after %s", gw_rc_name(rc));
		return rc;
	}
	assert_non_null(out);
	assert_string_equal(json_string_value(json_object_get(out, "status")), "new");
	*id = json_integer_value(json_object_get(out, "id"));
	*matched = (int)json_integer_value(json_object_get(out, "matched_trainers"));
	json_decref(out);
	return rc;
}

#define CUST "\"customer\": {\"name\": \"Carla Customer\", \"email\": \"carla@example.com\"}"
#define B(u) (1u << (u))

struct intake_case {
	const char *name;
	const char *body;
	bool yoga_type;       /* add "session_type_id": the org's yoga session type */
	unsigned trainers;    /* bit set of U_*: who gets a new_request email */
	const char *skills;   /* the request's effective skills */
};

static const struct intake_case intake_cases[] = {
    {"yoga: two of three trainers match", "{" CUST ", \"skills\": [\"yoga\"]}", false,
     B(U_T1) | B(U_T2), "[\"yoga\"]"},
    {"skills are normalised before matching", "{" CUST ", \"skills\": [\"YOGA\", \"Pilates\"]}",
     false, B(U_T1), "[\"pilates\", \"yoga\"]"},
    {"skills of the session type when none are given", "{" CUST "}", true, B(U_T1) | B(U_T2),
     "[\"yoga\"]"},
    {"boxing: one trainer", "{" CUST ", \"skills\": [\"boxing\"], \"answers\": {\"goal\":"
                            " \"fitness\\nand fun\", \"age\": 40, \"first\": true}}",
     false, B(U_T3), "[\"boxing\"]"},
    {"no skills at all: every trainer", "{" CUST ", \"skills\": []}", false,
     B(U_T1) | B(U_T2) | B(U_T3), "[]"},
    {"nobody has chess: a request and no email", "{" CUST ", \"skills\": [\"chess\"]}", false, 0,
     "[\"chess\"]"},
};

static void test_intake_table(void **state)
{
	struct fixture *f = *state;
	size_t i, u;

	for(i = 0; i < GW_ARRAY_LEN(intake_cases); i++) {
		const struct intake_case *c = &intake_cases[i];
		json_t *body = load(c->body), *out = NULL, *rows, *req = NULL, *want_skills;
		struct gw_err err = {0};
		size_t nreq = n_requests(f), nrows, nmine = 0, nwant = 0;
		int64_t id;
		gw_rc rc;
		json_t *r;

		print_message("case: %s\n", c->name);
		rows = outbox(f);
		nrows = json_array_size(rows);
		json_decref(rows);
		if(c->yoga_type)
			json_object_set_new(body, "session_type_id", json_integer(f->st_yoga));
		rc = lc_intake(f->st, &f->env, f->org1, body, &out, &err);
		CHECK_RC(rc, GW_OK, c->name);
		id = json_integer_value(json_object_get(out, "id"));
		CHECK(id > 0, "%s: id", c->name);
		for(u = 0; u < U_COUNT; u++)
			nwant += (c->trainers & B(u)) != 0;
		CHECK((size_t)json_integer_value(json_object_get(out, "matched_trainers")) == nwant,
		      "%s: matched_trainers %lld, want %zu", c->name,
		      (long long)json_integer_value(json_object_get(out, "matched_trainers")), nwant);
		assert_string_equal(json_string_value(json_object_get(out, "status")), "new");

		/* one request, one row per matching trainer under its key, the customer's
		 * request_received, and with no trainer one unmatched_request to the org admin */
		CHECK(n_requests(f) == nreq + 1, "%s: %zu requests written", c->name,
		      n_requests(f) - nreq);
		rows = outbox(f);
		CHECK(json_array_size(rows) == nrows + nwant + 1 + (nwant == 0),
		      "%s: %zu outbox rows written, want %zu", c->name,
		      json_array_size(rows) - nrows, nwant + 1 + (nwant == 0));
		{
			char key[96];
			snprintf(key, sizeof(key), "request_received:%lld", (long long)id);
			r = row_by_key(rows, key);
			CHECK(r != NULL, "%s: no row %s", c->name, key);
			assert_string_equal(json_string_value(json_object_get(r, "kind")),
			                    "request_received");
			assert_int_equal(json_integer_value(json_object_get(r, "request_id")), id);
			snprintf(key, sizeof(key), "unmatched_request:%lld:%lld", (long long)id,
			         (long long)f->user[U_ADMIN]);
			r = row_by_key(rows, key);
			CHECK((r != NULL) == (nwant == 0), "%s: row %s %s", c->name, key,
			      r ? "written with trainers matching" : "missing");
		}
		for(u = 0; u < U_COUNT; u++) {
			char key[96];
			snprintf(key, sizeof(key), "new_request:%lld:%lld", (long long)id,
			         (long long)f->user[u]);
			r = row_by_key(rows, key);
			if(!(c->trainers & B(u))) {
				CHECK(r == NULL, "%s: %s got an email", c->name, user_defs[u].email);
				continue;
			}
			CHECK(r != NULL, "%s: no row %s for %s", c->name, key, user_defs[u].email);
			assert_string_equal(json_string_value(json_object_get(r, "kind")), "new_request");
			assert_string_equal(json_string_value(json_object_get(r, "provider_class")),
			                    "email");
			assert_string_equal(json_string_value(json_object_get(r, "status")), "pending");
			assert_int_equal(json_integer_value(json_object_get(r, "request_id")), id);
			assert_int_equal(json_integer_value(json_object_get(r, "org_id")), f->org1);
			nmine++;
		}
		CHECK(nmine == nwant, "%s: rows", c->name);

		/* the request as stored */
		assert_int_equal(store_request_get(f->st, f->org1, id, &req), GW_OK);
		assert_string_equal(json_string_value(json_object_get(req, "status")), "new");
		assert_string_equal(json_string_value(json_object_get(json_object_get(req, "customer"),
		                                                      "email")),
		                    "carla@example.com");
		want_skills = load(c->skills);
		CHECK(json_equal(json_object_get(req, "skills"), want_skills), "%s: skills", c->name);
		json_decref(want_skills);
		json_decref(req);
		json_decref(rows);
		json_decref(out);
		json_decref(body);
	}
}

struct bad_case {
	const char *name;
	const char *body;
	bool other_type; /* add "session_type_id": the other organisation's session type */
	const char *field;
};

static const struct bad_case bad_cases[] = {
    {"no customer", "{\"skills\": [\"yoga\"]}", false, "customer"},
    {"customer not an object", "{\"customer\": \"Carla\"}", false, "customer"},
    {"customer without name", "{\"customer\": {\"email\": \"carla@example.com\"}}", false,
     "customer.name"},
    {"customer without email", "{\"customer\": {\"name\": \"Carla\"}}", false, "customer.email"},
    {"bad email", "{\"customer\": {\"name\": \"Carla\", \"email\": \"carla.example.com\"}}",
     false, "customer.email"},
    {"email with a header injected",
     "{\"customer\": {\"name\": \"Carla\", \"email\": \"c@example.com\\r\\nBcc: x@evil.test\"}}",
     false, "customer.email"},
    {"name with a newline",
     "{\"customer\": {\"name\": \"Carla\\nBcc: x@evil.test\", \"email\": \"c@example.com\"}}",
     false, "customer.name"},
    {"empty name", "{\"customer\": {\"name\": \"\", \"email\": \"c@example.com\"}}", false,
     "customer.name"},
    {"phone with a newline",
     "{\"customer\": {\"name\": \"Carla\", \"email\": \"c@example.com\", \"phone\": \"1\\n2\"}}",
     false, "customer.phone"},
    {"unknown customer field",
     "{\"customer\": {\"name\": \"Carla\", \"email\": \"c@example.com\", \"fax\": \"1\"}}", false,
     "customer.fax"},
    {"unknown field", "{" CUST ", \"colour\": \"red\"}", false, "colour"},
    {"skills not strings", "{" CUST ", \"skills\": [1, 2]}", false, "skills"},
    {"skills not an array", "{" CUST ", \"skills\": \"yoga\"}", false, "skills"},
    {"skill with bad characters", "{" CUST ", \"skills\": [\"<b>yoga</b>\"]}", false, "skills"},
    {"session_type_id of another organisation", "{" CUST "}", true, "session_type_id"},
    {"session_type_id that does not exist", "{" CUST ", \"session_type_id\": 999999}", false,
     "session_type_id"},
    {"session_type_id zero", "{" CUST ", \"session_type_id\": 0}", false, "session_type_id"},
    {"session_type_id as a string", "{" CUST ", \"session_type_id\": \"1\"}", false,
     "session_type_id"},
    {"answers not an object", "{" CUST ", \"answers\": [\"a\"]}", false, "answers"},
    {"answer nested", "{" CUST ", \"answers\": {\"q\": {\"a\": 1}}}", false, "answers"},
    {"answer with a control character", "{" CUST ", \"answers\": {\"q\": \"a\\u0001b\"}}",
     false, "answers"},
};

static void test_intake_invalid(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		json_t *body = load(c->body), *out = (json_t *)f, *rows;
		struct gw_err err = {0};
		size_t nreq = n_requests(f), nrows;
		gw_rc rc;

		print_message("case: %s\n", c->name);
		rows = outbox(f);
		nrows = json_array_size(rows);
		json_decref(rows);
		if(c->other_type)
			json_object_set_new(body, "session_type_id", json_integer(f->st_other));
		rc = lc_intake(f->st, &f->env, f->org1, body, &out, &err);
		CHECK(rc == GW_EINVAL, "%s: rc %s, want invalid_field", c->name, gw_rc_name(rc));
		CHECK(strcmp(err.field, c->field) == 0, "%s: field '%s', want '%s'", c->name, err.field,
		      c->field);
		CHECK(err.message[0] != '\0', "%s: no message", c->name);
		CHECK(out == NULL, "%s: *out set", c->name);
		CHECK(n_requests(f) == nreq, "%s: a request was written", c->name);
		rows = outbox(f);
		CHECK(json_array_size(rows) == nrows, "%s: outbox rows were written", c->name);
		json_decref(rows);
		json_decref(body);
	}
	/* a store that is usable afterwards: no transaction was left open */
	{
		int64_t id = 0;
		int matched = -1;
		struct gw_err err = {0};
		assert_int_equal(intake(f, "{" CUST ", \"skills\": [\"yoga\"]}", &id, &matched, &err),
		                 GW_OK);
		assert_int_equal(matched, 2);
	}
}

struct claim_step {
	const char *name;
	int user;     /* U_* */
	int request;  /* 0: the yoga request, 1: the other org's, 2: no such request */
	gw_rc rc;
	const char *message; /* of a GW_ECLAIMED */
};

#define LOST_CLAIM "This request has already been claimed by another trainer."
#define OWN_CLAIM  "You have already claimed this request; it is yours."

/* in order */
static const struct claim_step claim_steps[] = {
    {"org admin without the trainer role", U_ADMIN, 0, GW_EFORBIDDEN, NULL},
    {"trainer whose skills do not match", U_T3, 0, GW_EFORBIDDEN, NULL},
    {"unknown request", U_T1, 2, GW_ENOTFOUND, NULL},
    {"another organisation's request", U_T1, 1, GW_ENOTFOUND, NULL},
    {"trainer A claims", U_T1, 0, GW_OK, NULL},
    {"trainer B is too late", U_T2, 0, GW_ECLAIMED, LOST_CLAIM},
    {"trainer A again: still 409, but told it is theirs", U_T1, 0, GW_ECLAIMED, OWN_CLAIM},
};

static void test_claim(void **state)
{
	struct fixture *f = *state;
	int64_t req[3], other_req;
	int matched;
	struct gw_err err = {0};
	json_t *rows, *r, *got = NULL;
	char key[96];
	size_t i;

	assert_int_equal(intake(f, "{" CUST ", \"skills\": [\"yoga\"]}", &req[0], &matched, &err),
	                 GW_OK);
	assert_int_equal(matched, 2);
	assert_int_equal(intake(f, "{" CUST ", \"skills\": [\"yoga\"]}", &other_req, &matched, &err),
	                 GW_OK);
	{
		/* a request in the other organisation */
		json_t *body = load("{" CUST "}"), *out = NULL;
		assert_int_equal(lc_intake(f->st, &f->env, f->org2, body, &out, &err), GW_OK);
		req[1] = json_integer_value(json_object_get(out, "id"));
		json_decref(out);
		json_decref(body);
	}
	req[2] = req[1] + 1000;

	for(i = 0; i < GW_ARRAY_LEN(claim_steps); i++) {
		const struct claim_step *s = &claim_steps[i];
		struct lc_actor a = actor(f, s->user);
		json_t *out = (json_t *)f;
		gw_rc rc;

		print_message("step: %s\n", s->name);
		memset(&err, 0, sizeof(err));
		rc = lc_claim(f->st, f->org1, req[s->request], &a, &out, &err);
		CHECK_RC(rc, s->rc, s->name);
		if(rc) {
			CHECK(out == NULL, "%s: *out set", s->name);
			if(rc == GW_ECLAIMED)
				assert_string_equal(err.message, s->message);
			continue;
		}
		assert_string_equal(json_string_value(json_object_get(out, "status")), "claimed");
		assert_int_equal(json_integer_value(json_object_get(out, "trainer_id")), a.user_id);
		json_decref(out);
	}

	/* the request stays with trainer A */
	assert_int_equal(store_request_get(f->st, f->org1, req[0], &got), GW_OK);
	assert_string_equal(json_string_value(json_object_get(got, "status")), "claimed");
	assert_int_equal(json_integer_value(json_object_get(got, "trainer_id")), f->user[U_T1]);
	json_decref(got);

	/* trainer B's unsent "new request" email is worthless now: expired, never sent */
	rows = outbox(f);
	snprintf(key, sizeof(key), "new_request:%lld:%lld", (long long)req[0],
	         (long long)f->user[U_T2]);
	r = row_by_key(rows, key);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "expired");
	/* another open request's emails are untouched */
	snprintf(key, sizeof(key), "new_request:%lld:%lld", (long long)other_req,
	         (long long)f->user[U_T2]);
	r = row_by_key(rows, key);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "pending");
	snprintf(key, sizeof(key), "new_request:%lld:%lld", (long long)other_req,
	         (long long)f->user[U_T1]);
	r = row_by_key(rows, key);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "pending");
	json_decref(rows);
}

struct patch_step {
	const char *name;
	int user;
	const char *body;
	int type; /* 0: none, 1: the org's yoga type, 2: the other org's type */
	gw_rc rc;
	const char *field;
};

/* in order; the request is claimed by trainer A first */
static const struct patch_step patch_steps[] = {
    {"another trainer", U_T2, "{}", 1, GW_EFORBIDDEN, ""},
    {"org admin", U_ADMIN, "{}", 1, GW_EFORBIDDEN, ""},
    {"session type of another organisation", U_T1, "{}", 2, GW_EINVAL, "session_type_id"},
    {"no session type", U_T1, "{}", 0, GW_EINVAL, "session_type_id"},
    {"unknown field", U_T1, "{\"price\": 1}", 1, GW_EINVAL, "price"},
    {"the claimer", U_T1, "{}", 1, GW_OK, ""},
};

static void test_request_patch(void **state)
{
	struct fixture *f = *state;
	struct lc_actor a = actor(f, U_T1);
	struct gw_err err = {0};
	int64_t id;
	int matched;
	json_t *out = NULL;
	size_t i;

	assert_int_equal(intake(f, "{" CUST ", \"skills\": [\"yoga\"]}", &id, &matched, &err),
	                 GW_OK);
	assert_int_equal(lc_claim(f->st, f->org1, id, &a, &out, &err), GW_OK);
	json_decref(out);

	for(i = 0; i < GW_ARRAY_LEN(patch_steps); i++) {
		const struct patch_step *s = &patch_steps[i];
		struct lc_actor who = actor(f, s->user);
		json_t *body = load(s->body), *req = NULL;
		gw_rc rc;

		print_message("step: %s\n", s->name);
		if(s->type)
			json_object_set_new(body, "session_type_id",
			                    json_integer(s->type == 1 ? f->st_yoga : f->st_other));
		memset(&err, 0, sizeof(err));
		out = (json_t *)f;
		rc = lc_request_patch(f->st, f->org1, id, &who, body, &out, &err);
		CHECK_RC(rc, s->rc, s->name);
		assert_int_equal(store_request_get(f->st, f->org1, id, &req), GW_OK);
		if(rc) {
			CHECK(out == NULL, "%s: *out set", s->name);
			if(rc == GW_EINVAL)
				CHECK(strcmp(err.field, s->field) == 0, "%s: field '%s'", s->name, err.field);
			CHECK(json_is_null(json_object_get(req, "session_type_id")),
			      "%s: session type changed", s->name);
		} else {
			assert_int_equal(json_integer_value(json_object_get(out, "session_type_id")),
			                 f->st_yoga);
			assert_int_equal(json_integer_value(json_object_get(req, "session_type_id")),
			                 f->st_yoga);
			json_decref(out);
		}
		json_decref(req);
		json_decref(body);
	}
}

/* ---- the fan-out: rendered once, each row expanded by the lease ---- */

/* trainer names that the fills must carry through JSON and HTML escaping unchanged */
static const char *const fanout_names[] = {
    "Tia Trainer",
    "Zo\xc3\xab <b>&amp; \"Quote\" 'o'",
    "Back\\slash / tab\tend",
    "Line\nbreak",
    "",
};

/* canon - a message with its quoted-printable soft breaks and escapes decoded and its MIME
 * boundaries named alike: two renderings of one email compare equal however their lines were
 * broken. Also checks every line ends with CRLF and has at most 78 characters. */
static char *canon(const char *msg)
{
	size_t n = strlen(msg), i, o = 0, col = 0;
	char *out = malloc(n + 1), *b;

	assert_non_null(out);
	for(i = 0; i < n; i++) {
		if(msg[i] == '\n') {
			CHECK(i > 0 && msg[i - 1] == '\r', "a bare LF at byte %zu", i);
			CHECK(col <= 79, "a line of %zu characters before byte %zu", col - 1, i);
			col = 0;
		} else {
			col++;
		}
	}
	for(i = 0; i < n; i++) {
		if(msg[i] == '=' && msg[i + 1] == '\r' && msg[i + 2] == '\n') {
			i += 2;
		} else if(msg[i] == '=' && isxdigit((unsigned char)msg[i + 1]) &&
		          isxdigit((unsigned char)msg[i + 2])) {
			char hex[3] = {msg[i + 1], msg[i + 2], 0};

			out[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[o++] = msg[i];
		}
	}
	out[o] = '\0';
	/* "=_ord_" and 32 hex digits: the same length for every boundary */
	for(b = strstr(out, "=_ord_"); b; b = strstr(b + 6, "=_ord_"))
		memset(b + 6, 'B', strnlen(b + 6, 32));
	return out;
}

/* new_request_rows - the outbox rows of request req */
static int64_t new_request_rows(struct fixture *f, int64_t req)
{
	json_t *list = NULL;
	int64_t n = 0;
	size_t i;

	assert_int_equal(store_outbox_list(f->st, f->org1, NULL, 1000, &list), GW_OK);
	for(i = 0; i < json_array_size(list); i++) {
		json_t *r = json_array_get(list, i);

		if(json_integer_value(json_object_get(r, "request_id")) == req &&
		   strcmp(json_string_value(json_object_get(r, "kind")), "new_request") == 0)
			n++;
	}
	json_decref(list);
	return n;
}

/* fanout_case - an intake matching the trainers of fanout_names (made in reverse order if
 * reversed: the trainer without a name first), fanned out chunk rows at a time (0: all by the
 * intake); the rest enqueued by lc_fanout_step. Every leased row is what tpl_new_request
 * renders for its trainer. claim: the request is claimed before the rest is enqueued, which
 * then never comes. */
static void fanout_case(void **state, size_t chunk, bool reversed, bool claim)
{
	struct fixture *f = *state;
	json_t *skills = load("[\"fanout\"]"), *out = NULL, *request = NULL, *hold = NULL;
	const size_t count = GW_ARRAY_LEN(fanout_names);
	int64_t ids[GW_ARRAY_LEN(fanout_names)], req, pending = -1;
	struct store_lease *l = NULL;
	struct tpl_env tenv;
	struct gw_err err = {0};
	size_t i, found = 0, steps = 0, want_rows;
	bool more = true;
	int n = 0, j;

	for(i = 0; i < count; i++) {
		size_t k = reversed ? count - 1 - i : i;
		struct store_user_new u = {0};
		char email[64], hash[80];

		snprintf(email, sizeof(email), "fan%zu@x.test", k);
		snprintf(hash, sizeof(hash), "fanout-hash-%zu", k);
		u.email = email;
		u.name = fanout_names[k];
		u.timezone = "UTC";
		u.roles = ROLE_TRAINER;
		u.skills = skills;
		u.token_hash = hash;
		assert_int_equal(store_user_create(f->st, f->org1, &u, &ids[k]), GW_OK);
	}
	f->env.fanout_chunk = chunk;
	{
		json_t *body = load("{" CUST ", \"skills\": [\"fanout\"]}");
		CHECK_RC(lc_intake(f->st, &f->env, f->org1, body, &out, &err), GW_OK, "intake");
		json_decref(body);
	}
	req = json_integer_value(json_object_get(out, "id"));
	assert_int_equal(json_integer_value(json_object_get(out, "matched_trainers")),
	                 (json_int_t)count);
	/* the intake enqueued its first chunk and recorded the rest */
	want_rows = chunk && chunk < count ? chunk : count;
	CHECK(new_request_rows(f, req) == (int64_t)want_rows, "intake: %lld rows, want %zu",
	      (long long)new_request_rows(f, req), want_rows);
	assert_int_equal(store_fanout_pending(f->st, &pending), GW_OK);
	CHECK(pending == (chunk && chunk < count ? 1 : 0), "intake: %lld fan-outs left",
	      (long long)pending);
	if(claim) {
		assert_int_equal(store_begin(f->st), GW_OK);
		assert_int_equal(store_request_claim(f->st, f->org1, req, ids[0], T0), GW_OK);
		assert_int_equal(store_commit(f->st), GW_OK);
	}
	while(more) {
		int64_t stepped = 0;

		CHECK_RC(lc_fanout_step(f->st, &f->env, 0, &stepped, &more, &err), GW_OK,
		         "fan-out step");
		CHECK(!more || stepped == req, "the step worked on request %lld, want %lld",
		      (long long)stepped, (long long)req);
		CHECK(++steps <= count + 1, "the fan-out steps do not end");
	}
	assert_int_equal(store_fanout_pending(f->st, &pending), GW_OK);
	CHECK(pending == 0, "%lld fan-outs left after the steps", (long long)pending);
	if(claim) {
		CHECK(new_request_rows(f, req) == (int64_t)want_rows,
		      "claimed: %lld rows, want the intake's %zu only",
		      (long long)new_request_rows(f, req), want_rows);
		goto out;
	}
	CHECK(new_request_rows(f, req) == (int64_t)count, "%lld rows, want %zu",
	      (long long)new_request_rows(f, req), count);
	assert_int_equal(store_request_get(f->st, f->org1, req, &request), GW_OK);
	assert_int_equal(lc_tpl_env(f->st, &f->env, f->org1, &hold, &tenv), GW_OK);
	assert_int_equal(store_outbox_lease(f->st, "test", T0, 60, 100, &l, &n), GW_OK);
	for(j = 0; j < n; j++) {
		json_t *got, *want = NULL, *trainer;
		int64_t tid;

		if(strcmp(l[j].kind, "new_request") != 0 || l[j].request_id != req)
			continue;
		/* what the lease hands over is what tpl_new_request renders for that trainer */
		tid = strtoll(strrchr(l[j].dedupe_key, ':') + 1, NULL, 10);
		for(i = 0; i < GW_ARRAY_LEN(fanout_names) && ids[i] != tid; i++)
			;
		assert_true(i < GW_ARRAY_LEN(fanout_names));
		trainer = json_pack("{s:I, s:o, s:s, s:s}", "id", (json_int_t)tid, "email",
		                    json_sprintf("fan%zu@x.test", i), "name", fanout_names[i],
		                    "timezone", "UTC");
		assert_int_equal(tpl_new_request(&tenv, l[j].dedupe_key, request, trainer, &want),
		                 GW_OK);
		/* a name a header cannot hold has no message: the row is built (and refused) when
		 * sent; every other row has one, the template's with its fills or its own */
		CHECK((l[j].message != NULL) == (strchr(fanout_names[i], '\n') == NULL),
		      "trainer %zu (%s): message %s", i, fanout_names[i],
		      l[j].message ? "rendered" : "missing");
		if(l[j].message) {
			char *whole = NULL, *built = NULL, *a, *b;
			size_t wlen = 0;
			struct gw_err merr = {0};

			if(l[j].body_id) {
				assert_non_null(l[j].body_message);
				assert_int_equal(smtp_mime_expand(l[j].body_message, l[j].message,
				                                  &whole, &wlen),
				                 GW_OK);
			} else {
				whole = strdup(l[j].message);
			}
			assert_int_equal(smtp_mime_build(want, NULL, NULL, &built, NULL, &merr), GW_OK);
			a = canon(whole);
			b = canon(built);
			CHECK(strcmp(a, b) == 0, "trainer %zu (%s): sent\n%s\nrendered alone\n%s", i,
			      fanout_names[i], a, b);
			CHECK(l[j].rcpt && strstr(l[j].rcpt, "@x.test"), "trainer %zu: rcpt %s", i,
			      l[j].rcpt ? l[j].rcpt : "(none)");
			free(a);
			free(b);
			free(whole);
			free(built);
			json_decref(want);
			json_decref(trainer);
			found++;
			continue;
		}
		got = json_loads(l[j].payload, 0, NULL);
		CHECK(got != NULL, "trainer %zu: the leased payload is not JSON: %s", i, l[j].payload);
		CHECK(json_equal(got, want), "trainer %zu (%s): leased %s, rendered %s", i,
		      fanout_names[i], l[j].payload, json_dumps(want, JSON_COMPACT));
		json_decref(got);
		json_decref(want);
		json_decref(trainer);
		found++;
	}
	CHECK(found == GW_ARRAY_LEN(fanout_names), "%zu fan-out rows leased, want %zu", found,
	      GW_ARRAY_LEN(fanout_names));
	store_leases_free(l, n);
out:
	f->env.fanout_chunk = 0;
	json_decref(hold);
	json_decref(request);
	json_decref(out);
	json_decref(skills);
}

static void test_fanout_payloads(void **state)
{
	fanout_case(state, 0, false, false);
}

/* two rows at a time: the rest in two steps, the trainer without a name in the last */
static void test_fanout_chunks(void **state)
{
	fanout_case(state, 2, false, false);
}

/* one at a time, the trainer without a name first: the shared body is made by a later step */
static void test_fanout_body_later(void **state)
{
	fanout_case(state, 1, true, false);
}

/* claimed before the rest was enqueued: the rest never is */
static void test_fanout_claimed(void **state)
{
	fanout_case(state, 2, false, true);
}

/* a step past a request id: the fan-out of a later request goes on while an earlier one is
 * passed over (the background thread passes one that fails) */
static void test_fanout_after(void **state)
{
	struct fixture *f = *state;
	json_t *skills = load("[\"after\"]");
	int64_t req[2], stepped = -1;
	struct gw_err err = {0};
	bool more = false;
	int i;

	for(i = 0; i < 3; i++) {
		struct store_user_new u = {0};
		char email[64], hash[80];
		int64_t id;

		snprintf(email, sizeof(email), "after%d@x.test", i);
		snprintf(hash, sizeof(hash), "after-hash-%d", i);
		u.email = email;
		u.name = "Tam";
		u.timezone = "UTC";
		u.roles = ROLE_TRAINER;
		u.skills = skills;
		u.token_hash = hash;
		assert_int_equal(store_user_create(f->st, f->org1, &u, &id), GW_OK);
	}
	f->env.fanout_chunk = 1;
	for(i = 0; i < 2; i++) {
		json_t *body = load("{" CUST ", \"skills\": [\"after\"]}"), *out = NULL;

		CHECK_RC(lc_intake(f->st, &f->env, f->org1, body, &out, &err), GW_OK, "intake");
		req[i] = json_integer_value(json_object_get(out, "id"));
		json_decref(body);
		json_decref(out);
		assert_int_equal(new_request_rows(f, req[i]), 1);
	}
	/* past the first: the second's next chunk */
	CHECK_RC(lc_fanout_step(f->st, &f->env, req[0], &stepped, &more, &err), GW_OK, "step");
	assert_true(more);
	assert_int_equal(stepped, req[1]);
	assert_int_equal(new_request_rows(f, req[0]), 1);
	assert_int_equal(new_request_rows(f, req[1]), 2);
	/* past both: nothing */
	CHECK_RC(lc_fanout_step(f->st, &f->env, req[1], &stepped, &more, &err), GW_OK, "step");
	assert_false(more);
	/* from the start: the oldest */
	CHECK_RC(lc_fanout_step(f->st, &f->env, 0, &stepped, &more, &err), GW_OK, "step");
	assert_true(more);
	assert_int_equal(stepped, req[0]);
	assert_int_equal(new_request_rows(f, req[0]), 2);
	json_decref(skills);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_guard_table),
	    cmocka_unit_test(test_request_actions),
	    cmocka_unit_test_setup_teardown(test_intake_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intake_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fanout_payloads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fanout_chunks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fanout_body_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fanout_claimed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fanout_after, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_patch, setup, teardown),
	};

	return cmocka_run_group_tests_name("lc", tests, group_setup, group_teardown);
}
