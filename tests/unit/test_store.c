/*
 * test_store.c - the SQLite store (store/store.h) against real database files in a temp folder:
 * opening and migrating (fresh, reopened, absent, newer than the binary, not a database),
 * organisations and users (duplicate e-mails, token lookup), skill matching of trainers, the
 * conditional claim, and the outbox (dedupe, leasing with expiring leases, finishing each
 * outcome, lost leases, admin retry, expiring a request's rows), and the instants the store
 * stamps itself (created_at and the like) coming from the one clock, clock_now().
 *
 * Every case is a row of a table. Row state is read back through a second, independent SQLite
 * connection ("peek"), so what is checked is what was committed.
 *
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "store/store.h"

#define T0 ((time_t)1780000000) /* 2026-05-28T20:26:40Z: every `now` below is T0 + n */

#define CHECK(cond, ...)                                                                       \
	do {                                                                                       \
		if(!(cond))                                                                            \
			fail_msg(__VA_ARGS__);                                                             \
	} while(0)

#define CHECK_RC(got, want, name)                                                              \
	CHECK((got) == (want), "%s: rc %s, want %s", (name), gw_rc_name(got), gw_rc_name(want))

static char tmp_dir[64];
static int db_seq;

/* fixture - one fresh database per test */
struct fixture {
	char path[128];
	struct store *st;
	sqlite3 *peek; /* independent connection to read what was committed */
	int64_t org1, org2;
};

/* new_path - a database path not used before in this run */
static void new_path(char *buf, size_t n)
{
	snprintf(buf, n, "%s/db%d.sqlite", tmp_dir, ++db_seq);
}

/* peek_open - a plain SQLite connection to path */
static sqlite3 *peek_open(const char *path)
{
	sqlite3 *db = NULL;

	if(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		fail_msg("cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* q_int - first column of the first row of sql with ?1 bound to a (when sql has it) */
static int64_t q_int(sqlite3 *db, const char *sql, int64_t a)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	if(sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	if(sqlite3_bind_parameter_count(s) >= 1)
		sqlite3_bind_int64(s, 1, a);
	if(sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		fail_msg("no row for %s", sql);
	}
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* q_exec - run sql on the peek connection */
static void q_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if(sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		print_error("%s: %s\n", sql, msg ? msg : "?");
		sqlite3_free(msg);
		fail();
	}
}

/* an outbox row as committed */
struct row {
	char status[16];
	int attempts;
	int64_t next_at, lease_exp, sent_at;
	char owner[32];
	char last_error[128];
	char provider[32];
	char payload[128];
};

/* row_get - read outbox row id through the peek connection */
static void row_get(sqlite3 *db, int64_t id, struct row *r)
{
	sqlite3_stmt *s = NULL;

	if(sqlite3_prepare_v2(db, "SELECT status, attempts, next_attempt_at,"
	                          " ifnull(lease_expires_at, 0), ifnull(sent_at, 0),"
	                          " ifnull(lease_owner, ''), ifnull(last_error, ''),"
	                          " ifnull(provider, ''), payload FROM outbox WHERE id = ?1",
	                      -1, &s, NULL) != SQLITE_OK)
		fail_msg("prepare: %s", sqlite3_errmsg(db));
	sqlite3_bind_int64(s, 1, id);
	if(sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		fail_msg("outbox row %lld is missing", (long long)id);
	}
	memset(r, 0, sizeof(*r));
	snprintf(r->status, sizeof(r->status), "%s", sqlite3_column_text(s, 0));
	r->attempts = sqlite3_column_int(s, 1);
	r->next_at = sqlite3_column_int64(s, 2);
	r->lease_exp = sqlite3_column_int64(s, 3);
	r->sent_at = sqlite3_column_int64(s, 4);
	snprintf(r->owner, sizeof(r->owner), "%s", sqlite3_column_text(s, 5));
	snprintf(r->last_error, sizeof(r->last_error), "%s", sqlite3_column_text(s, 6));
	snprintf(r->provider, sizeof(r->provider), "%s", sqlite3_column_text(s, 7));
	snprintf(r->payload, sizeof(r->payload), "%s", sqlite3_column_text(s, 8));
	sqlite3_finalize(s);
}

/* rm_entry - nftw callback removing one entry */
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
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_store.XXXXXX");
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct gw_err err = {0};

	if(!f)
		return -1;
	new_path(f->path, sizeof(f->path));
	if(store_open(f->path, true, &f->st, &err) != GW_OK ||
	   store_org_create(f->st, "Acme", "Europe/Berlin", &f->org1) != GW_OK ||
	   store_org_create(f->st, "Other", "UTC", &f->org2) != GW_OK) {
		print_error("setup: %s\n", err.message);
		store_close(f->st);
		free(f);
		return -1;
	}
	f->peek = peek_open(f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	sqlite3_close(f->peek);
	free(f);
	return 0;
}

/* ---- open and migrate ---- */

enum prep { P_NONE, P_CURRENT, P_NEWER, P_GARBAGE };

struct open_case {
	const char *name;
	enum prep prep;
	bool create;
	gw_rc rc;
	bool any_error; /* rc is "some error" rather than one code */
};

static const struct open_case open_cases[] = {
    {"fresh file with create: schema made", P_NONE, true, GW_OK, false},
    {"absent file without create: refused, not created", P_NONE, false, GW_EIO, false},
    {"reopen a current database: idempotent", P_CURRENT, false, GW_OK, false},
    {"reopen a current database with create: idempotent", P_CURRENT, true, GW_OK, false},
    {"schema newer than the binary: refused", P_NEWER, true, GW_EVERSION, false},
    {"a file that is not a database: refused", P_GARBAGE, true, GW_OK, true},
};

/* prepare - make the file a case starts from */
static void prepare(const char *path, enum prep prep)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	int64_t org;
	sqlite3 *db;
	FILE *fp;
	char sql[128];

	switch(prep) {
	case P_NONE:
		break;
	case P_CURRENT:
	case P_NEWER:
		assert_int_equal(store_open(path, true, &st, &err), GW_OK);
		assert_int_equal(store_org_create(st, "Kept", "UTC", &org), GW_OK);
		store_close(st);
		if(prep == P_NEWER) {
			db = peek_open(path);
			snprintf(sql, sizeof(sql),
			         "INSERT INTO schema_migrations(version, applied_at) VALUES(%d, 0)",
			         STORE_SCHEMA_VERSION + 1);
			q_exec(db, sql);
			sqlite3_close(db);
		}
		break;
	case P_GARBAGE:
		fp = fopen(path, "w");
		assert_non_null(fp);
		for(org = 0; org < 200; org++)
			fputs("this is not an SQLite database, it is a text file\n", fp);
		fclose(fp);
		break;
	}
}

static void test_open_table(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(open_cases); i++) {
		const struct open_case *c = &open_cases[i];
		struct store *st = (struct store *)&i; /* must be reset to NULL on failure */
		struct gw_err err = {0};
		char path[128];
		int version = -1;
		gw_rc rc;
		sqlite3 *db;

		print_message("case: %s\n", c->name);
		new_path(path, sizeof(path));
		prepare(path, c->prep);
		rc = store_open(path, c->create, &st, &err);
		if(c->any_error) {
			CHECK(rc != GW_OK, "%s: opened", c->name);
		} else {
			CHECK_RC(rc, c->rc, c->name);
		}
		if(rc != GW_OK) {
			CHECK(st == NULL, "%s: *out not NULL on failure", c->name);
			CHECK(err.message[0] != '\0', "%s: no error message", c->name);
			if(c->prep == P_NONE)
				CHECK(access(path, F_OK) != 0, "%s: the file was created", c->name);
			if(c->prep == P_NEWER) {
				/* refused without touching it: the newer binary's data is intact */
				db = peek_open(path);
				CHECK(q_int(db, "SELECT max(version) FROM schema_migrations", 0) ==
				          STORE_SCHEMA_VERSION + 1,
				      "%s: version row changed", c->name);
				CHECK(q_int(db, "SELECT count(*) FROM orgs WHERE name = 'Kept'", 0) == 1,
				      "%s: data changed", c->name);
				sqlite3_close(db);
			}
			continue;
		}
		assert_int_equal(store_schema_version(st, &version), GW_OK);
		CHECK(version == STORE_SCHEMA_VERSION, "%s: version %d, want %d", c->name, version,
		      STORE_SCHEMA_VERSION);
		store_close(st);
		db = peek_open(path);
		/* each migration recorded exactly once, however often the file was opened */
		CHECK(q_int(db, "SELECT count(*) FROM schema_migrations", 0) == STORE_SCHEMA_VERSION,
		      "%s: migrations recorded %lld times", c->name,
		      (long long)q_int(db, "SELECT count(*) FROM schema_migrations", 0));
		CHECK(q_int(db,
		            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
		            " ('orgs', 'users', 'session_types', 'requests', 'bookings', 'outbox',"
		            " 'dedupe_keys', 'delivery_attempts', 'provider_configs')",
		            0) == 9,
		      "%s: tables missing", c->name);
		if(c->prep == P_CURRENT)
			CHECK(q_int(db, "SELECT count(*) FROM orgs WHERE name = 'Kept'", 0) == 1,
			      "%s: data lost on reopen", c->name);
		sqlite3_close(db);
	}
}

/* ---- organisations and users ---- */

static void test_org(void **state)
{
	struct fixture *f = *state;
	json_t *o = NULL;

	assert_int_equal(store_org_get(f->st, f->org1, &o), GW_OK);
	assert_int_equal(json_integer_value(json_object_get(o, "id")), f->org1);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "Acme");
	assert_string_equal(json_string_value(json_object_get(o, "timezone")), "Europe/Berlin");
	json_decref(o);
	o = (json_t *)state;
	assert_int_equal(store_org_get(f->st, f->org2 + 100, &o), GW_ENOTFOUND);
	assert_null(o);
}

struct user_case {
	const char *name;
	int org;           /* 1, 2 or 0 (platform admin) */
	const char *email;
	const char *token;
	int roles;
	gw_rc rc;
};

/* in order: each row sees the users the rows above it made */
static const struct user_case user_cases[] = {
    {"first user", 1, "Ann@Example.com", "tok-ann", ROLE_TRAINER, GW_OK},
    {"same e-mail, same org", 1, "Ann@Example.com", "tok-ann2", ROLE_TRAINER, GW_EEXISTS},
    {"same e-mail in other case, same org", 1, "ann@example.COM", "tok-ann3", ROLE_ORG_ADMIN,
     GW_EEXISTS},
    {"same e-mail, another org", 2, "ann@example.com", "tok-ann4", ROLE_TRAINER, GW_OK},
    {"same e-mail, platform admin", 0, "ann@example.com", "tok-root", ROLE_PLATFORM_ADMIN,
     GW_OK},
    {"two platform admins with one e-mail", 0, "ANN@example.com", "tok-root2",
     ROLE_PLATFORM_ADMIN, GW_EEXISTS},
    {"another user, same org", 1, "bob@example.com", "tok-bob", ROLE_ORG_ADMIN | ROLE_TRAINER,
     GW_OK},
};

/* org_of - the fixture's org for a table's 0/1/2 */
static int64_t org_of(const struct fixture *f, int which)
{
	return which == 1 ? f->org1 : which == 2 ? f->org2 : 0;
}

struct token_case {
	const char *name;
	const char *token; /* hashed as the API does */
	gw_rc rc;
	const char *email; /* expected user (case-insensitive) */
	int org;
	int roles;
};

static const struct token_case token_cases[] = {
    {"right token", "tok-ann", GW_OK, "ann@example.com", 1, ROLE_TRAINER},
    {"right token, other org's user", "tok-ann4", GW_OK, "ann@example.com", 2, ROLE_TRAINER},
    {"platform admin", "tok-root", GW_OK, "ann@example.com", 0, ROLE_PLATFORM_ADMIN},
    {"two roles", "tok-bob", GW_OK, "bob@example.com", 1, ROLE_ORG_ADMIN | ROLE_TRAINER},
    {"wrong token", "tok-nobody", GW_EUNAUTH, NULL, 0, 0},
    {"refused duplicate's token", "tok-ann2", GW_EUNAUTH, NULL, 0, 0},
    {"empty token", "", GW_EUNAUTH, NULL, 0, 0},
};

static void test_users(void **state)
{
	struct fixture *f = *state;
	int64_t ids[GW_ARRAY_LEN(user_cases)] = {0};
	char hash[CRYPTO_HASH_HEX];
	struct store_user u;
	json_t *skills = json_pack("[s, s]", "pilates", "yoga");
	json_t *o = NULL, *roles;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(user_cases); i++) {
		const struct user_case *c = &user_cases[i];
		struct store_user_new nu = {c->email, "Ann Example", "Europe/Berlin", c->roles, skills,
		                            true, hash};
		gw_rc rc;

		print_message("user case: %s\n", c->name);
		crypto_sha256_hex(c->token, strlen(c->token), hash);
		rc = store_user_create(f->st, org_of(f, c->org), &nu, &ids[i]);
		CHECK_RC(rc, c->rc, c->name);
	}
	/* the user as the API shows it: no token, roles by name */
	assert_int_equal(store_user_get(f->st, f->org1, ids[0], &o), GW_OK);
	CHECK(strcasecmp(json_string_value(json_object_get(o, "email")), "ann@example.com") == 0,
	      "email %s", json_string_value(json_object_get(o, "email")));
	assert_string_equal(json_string_value(json_object_get(o, "name")), "Ann Example");
	assert_string_equal(json_string_value(json_object_get(o, "timezone")), "Europe/Berlin");
	roles = json_pack("[s]", "trainer");
	assert_true(json_equal(json_object_get(o, "roles"), roles));
	json_decref(roles);
	assert_true(json_equal(json_object_get(o, "skills"), skills));
	assert_true(json_is_true(json_object_get(o, "active")));
	assert_true(json_is_true(json_object_get(o, "notify_on_confirm")));
	assert_null(json_object_get(o, "token"));
	assert_null(json_object_get(o, "token_hash"));
	json_decref(o);
	/* scoped by organisation */
	assert_int_equal(store_user_get(f->st, f->org2, ids[0], &o), GW_ENOTFOUND);
	assert_null(o);

	for(i = 0; i < GW_ARRAY_LEN(token_cases); i++) {
		const struct token_case *c = &token_cases[i];
		gw_rc rc;

		print_message("token case: %s\n", c->name);
		crypto_sha256_hex(c->token, strlen(c->token), hash);
		memset(&u, 0x5a, sizeof(u));
		rc = store_user_by_token(f->st, hash, &u);
		CHECK_RC(rc, c->rc, c->name);
		if(rc)
			continue;
		CHECK(strcasecmp(u.email, c->email) == 0, "%s: email %s", c->name, u.email);
		CHECK(u.org_id == org_of(f, c->org), "%s: org %lld", c->name, (long long)u.org_id);
		CHECK(u.roles == c->roles, "%s: roles %d", c->name, u.roles);
		assert_string_equal(u.name, "Ann Example");
		assert_string_equal(u.timezone, "Europe/Berlin");
	}

	/* a deactivated user's token stops working */
	{
		json_t *patch = json_pack("{s:b}", "active", 0);
		assert_int_equal(store_user_update(f->st, f->org1, ids[0], patch), GW_OK);
		json_decref(patch);
		crypto_sha256_hex("tok-ann", 7, hash);
		assert_int_equal(store_user_by_token(f->st, hash, &u), GW_EUNAUTH);
	}
	json_decref(skills);
}

/* ---- trainers matching skills ---- */

struct trainer_def {
	const char *email;
	int org;
	int roles;
	const char *skills; /* JSON */
	bool active;
};

enum { U_ALL, U_YOGA, U_INACTIVE, U_ADMIN, U_BOTH, U_KIOSK, U_NONE, U_OTHER_ORG, U_COUNT };

static const struct trainer_def trainer_defs[U_COUNT] = {
    [U_ALL] = {"all@x.test", 1, ROLE_TRAINER, "[\"boxing\", \"pilates\", \"yoga\"]", true},
    [U_YOGA] = {"yoga@x.test", 1, ROLE_TRAINER, "[\"yoga\"]", true},
    [U_INACTIVE] = {"gone@x.test", 1, ROLE_TRAINER, "[\"pilates\", \"yoga\", \"boxing\"]",
                    false},
    [U_ADMIN] = {"admin@x.test", 1, ROLE_ORG_ADMIN, "[\"boxing\", \"pilates\", \"yoga\"]", true},
    [U_BOTH] = {"both@x.test", 1, ROLE_ORG_ADMIN | ROLE_TRAINER, "[\"pilates\", \"yoga\"]",
                true},
    [U_KIOSK] = {"kiosk@x.test", 1, ROLE_KIOSK, "[\"yoga\"]", true},
    [U_NONE] = {"none@x.test", 1, ROLE_TRAINER, "[]", true},
    [U_OTHER_ORG] = {"other@x.test", 2, ROLE_TRAINER, "[\"boxing\", \"pilates\", \"yoga\"]",
                     true},
};

#define B(u) (1u << (u))

struct match_case {
	const char *skills; /* JSON array asked for */
	unsigned want;      /* bit set of U_* */
};

static const struct match_case match_cases[] = {
    {"[]", B(U_ALL) | B(U_YOGA) | B(U_BOTH) | B(U_NONE)},
    {"[\"yoga\"]", B(U_ALL) | B(U_YOGA) | B(U_BOTH)},
    {"[\"pilates\", \"yoga\"]", B(U_ALL) | B(U_BOTH)},
    {"[\"yoga\", \"pilates\"]", B(U_ALL) | B(U_BOTH)},
    {"[\"boxing\"]", B(U_ALL)},
    {"[\"boxing\", \"pilates\", \"yoga\"]", B(U_ALL)},
    {"[\"chess\"]", 0},
    {"[\"yoga\", \"chess\"]", 0},
};

static void test_trainers_matching(void **state)
{
	struct fixture *f = *state;
	int64_t ids[U_COUNT];
	char hash[CRYPTO_HASH_HEX];
	size_t i, j, k;

	for(i = 0; i < U_COUNT; i++) {
		const struct trainer_def *d = &trainer_defs[i];
		json_t *sk = json_loads(d->skills, 0, NULL);
		struct store_user_new nu = {d->email, d->email, "UTC", d->roles, sk, false, hash};

		crypto_sha256_hex(d->email, strlen(d->email), hash);
		assert_int_equal(store_user_create(f->st, org_of(f, d->org), &nu, &ids[i]), GW_OK);
		json_decref(sk);
		if(!d->active) {
			json_t *patch = json_pack("{s:b}", "active", 0);
			assert_int_equal(store_user_update(f->st, f->org1, ids[i], patch), GW_OK);
			json_decref(patch);
		}
	}
	for(i = 0; i < GW_ARRAY_LEN(match_cases); i++) {
		const struct match_case *c = &match_cases[i];
		json_t *sk = json_loads(c->skills, 0, NULL), *list = NULL, *t;
		unsigned got = 0;

		print_message("case: skills %s\n", c->skills);
		assert_int_equal(store_trainers_matching(f->st, f->org1, sk, &list), GW_OK);
		json_array_foreach(list, j, t) {
			int64_t id = json_integer_value(json_object_get(t, "id"));
			for(k = 0; k < U_COUNT && ids[k] != id; k++)
				;
			CHECK(k < U_COUNT, "%s: unknown id %lld", c->skills, (long long)id);
			CHECK(!(got & B(k)), "%s: %s listed twice", c->skills, trainer_defs[k].email);
			CHECK(json_is_string(json_object_get(t, "email")) &&
			          json_is_string(json_object_get(t, "name")) &&
			          json_is_string(json_object_get(t, "timezone")),
			      "%s: trainer without email/name/timezone", c->skills);
			got |= B(k);
		}
		for(k = 0; k < U_COUNT; k++) {
			CHECK((got & B(k)) == (c->want & B(k)), "%s: %s %s", c->skills,
			      trainer_defs[k].email, (got & B(k)) ? "matched, should not" : "not matched");
		}
		json_decref(list);
		json_decref(sk);
	}
}

/* ---- the claim ---- */

enum { R_MINE, R_MINE2, R_OTHER_ORG, R_UNKNOWN };

struct claim_case {
	const char *name;
	int req;     /* R_* */
	int trainer; /* 0 or 1: which of two trainers */
	gw_rc rc;
};

/* in order */
static const struct claim_case claim_cases[] = {
    {"first claim wins", R_MINE, 0, GW_OK},
    {"second trainer loses", R_MINE, 1, GW_ECLAIMED},
    {"the winner again: no longer new", R_MINE, 0, GW_ECLAIMED},
    {"another request is still open", R_MINE2, 1, GW_OK},
    {"unknown request", R_UNKNOWN, 0, GW_ENOTFOUND},
    {"another organisation's request", R_OTHER_ORG, 0, GW_ENOTFOUND},
};

static int64_t make_request(struct fixture *f, int64_t org, const char *email)
{
	json_t *skills = json_array(), *answers = json_object();
	struct store_request_new r = {"Carla Customer", email, NULL, 0, skills, answers};
	int64_t id = 0;

	assert_int_equal(store_request_create(f->st, org, &r, T0, &id), GW_OK);
	assert_true(id > 0);
	json_decref(skills);
	json_decref(answers);
	return id;
}

static void test_request_claim(void **state)
{
	struct fixture *f = *state;
	int64_t req[4], tr[2];
	char hash[CRYPTO_HASH_HEX];
	json_t *r = NULL;
	size_t i;

	for(i = 0; i < 2; i++) {
		const char *email = i ? "t2@x.test" : "t1@x.test";
		struct store_user_new nu = {email, email, "UTC", ROLE_TRAINER, NULL, false, hash};
		crypto_sha256_hex(email, strlen(email), hash);
		assert_int_equal(store_user_create(f->st, f->org1, &nu, &tr[i]), GW_OK);
	}
	req[R_MINE] = make_request(f, f->org1, "c1@x.test");
	req[R_MINE2] = make_request(f, f->org1, "c2@x.test");
	req[R_OTHER_ORG] = make_request(f, f->org2, "c3@x.test");
	req[R_UNKNOWN] = req[R_OTHER_ORG] + 1000;

	for(i = 0; i < GW_ARRAY_LEN(claim_cases); i++) {
		const struct claim_case *c = &claim_cases[i];

		print_message("case: %s\n", c->name);
		CHECK_RC(store_request_claim(f->st, f->org1, req[c->req], tr[c->trainer],
		                             T0 + (time_t)i),
		         c->rc, c->name);
	}
	/* the winner holds it */
	assert_int_equal(store_request_get(f->st, f->org1, req[R_MINE], &r), GW_OK);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "claimed");
	assert_int_equal(json_integer_value(json_object_get(r, "trainer_id")), tr[0]);
	json_decref(r);
	assert_int_equal(store_request_get(f->st, f->org1, req[R_MINE2], &r), GW_OK);
	assert_int_equal(json_integer_value(json_object_get(r, "trainer_id")), tr[1]);
	json_decref(r);
	/* another organisation's request was not touched */
	assert_int_equal(store_request_get(f->st, f->org2, req[R_OTHER_ORG], &r), GW_OK);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "new");
	assert_true(json_is_null(json_object_get(r, "trainer_id")));
	json_decref(r);
}

/* ---- outbox ---- */

/* enqueue - one email effect; returns the row id (0 when deduped) */
static int64_t enqueue(struct fixture *f, int64_t org, const char *key, int64_t request,
                       time_t not_before, time_t now, const char *payload, bool *inserted)
{
	struct store_effect e = {org, "new_request", "email", key, request, 0, payload,
	                         not_before, 0, 0, NULL, NULL};
	bool ins = false;
	int64_t id = -1;

	assert_int_equal(store_outbox_enqueue(f->st, &e, now, &ins, &id), GW_OK);
	if(inserted)
		*inserted = ins;
	return id;
}

static void test_outbox_dedupe(void **state)
{
	struct fixture *f = *state;
	bool ins = false;
	int64_t a, b;
	struct row r;

	a = enqueue(f, f->org1, "new_request:1:2", 1, 0, T0, "{\"v\":1}", &ins);
	assert_true(ins);
	assert_true(a > 0);
	/* the same key again (a second tick, a double click): a no-op */
	b = enqueue(f, f->org1, "new_request:1:2", 1, 0, T0 + 5, "{\"v\":2}", &ins);
	assert_false(ins);
	assert_int_equal(b, 0);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox", 0), 1);
	row_get(f->peek, a, &r);
	assert_string_equal(r.payload, "{\"v\":1}"); /* what was recorded first is what is sent */

	/* a key written in a transaction that rolls back is not taken */
	assert_int_equal(store_begin(f->st), GW_OK);
	enqueue(f, f->org1, "new_request:1:3", 1, 0, T0, "{}", &ins);
	assert_true(ins);
	store_rollback(f->st);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox", 0), 1);
	enqueue(f, f->org1, "new_request:1:3", 1, 0, T0, "{}", &ins);
	assert_true(ins);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox", 0), 2);
}

enum { X_A, X_B, X_C, X_COUNT }; /* A and C due at T0, B due at T0 + 100 */

struct lease_step {
	const char *owner;
	time_t at; /* offset from T0 */
	int max;
	unsigned want; /* bit set of X_*, in this order (due time, then id) */
	int nwant;
};

/* in order; leases are 60 s */
static const struct lease_step lease_steps[] = {
    {"w0", 0, 1, B(X_A), 1},           /* max honoured */
    {"w1", 0, 10, B(X_C), 1},          /* B is not due; A is held by w0 */
    {"w2", 30, 10, 0, 0},              /* both held */
    {"w2", 59, 10, 0, 0},              /* one second before the leases run out */
    {"w2", 60, 10, B(X_A) | B(X_C), 2}, /* lease holders died: taken over */
    {"w3", 100, 10, B(X_B), 1},        /* B is due; A and C are w2's until 120 */
    {"w1", 119, 10, 0, 0},
    {"w1", 120, 10, B(X_A) | B(X_C), 2},
};

static void test_outbox_lease(void **state)
{
	struct fixture *f = *state;
	int64_t id[X_COUNT];
	size_t i;
	int j, k;

	id[X_A] = enqueue(f, f->org1, "k:a", 7, 0, T0, "{\"row\":\"a\"}", NULL);
	id[X_B] = enqueue(f, f->org1, "k:b", 7, T0 + 100, T0, "{\"row\":\"b\"}", NULL);
	id[X_C] = enqueue(f, f->org1, "k:c", 7, T0 - 50, T0, "{\"row\":\"c\"}", NULL);

	for(i = 0; i < GW_ARRAY_LEN(lease_steps); i++) {
		const struct lease_step *s = &lease_steps[i];
		struct store_lease *l = NULL;
		int n = -1;
		unsigned got = 0;

		print_message("step %zu: %s at T0+%lld\n", i, s->owner, (long long)s->at);
		assert_int_equal(store_outbox_lease(f->st, s->owner, T0 + s->at, 60, s->max, &l, &n),
		                 GW_OK);
		CHECK(n == s->nwant, "step %zu: leased %d rows, want %d", i, n, s->nwant);
		for(j = 0; j < n; j++) {
			struct row r;
			for(k = 0; k < X_COUNT && id[k] != l[j].id; k++)
				;
			CHECK(k < X_COUNT && (s->want & B(k)) && !(got & B(k)),
			      "step %zu: leased row %lld unexpectedly", i, (long long)l[j].id);
			got |= B(k);
			/* what the worker gets is the recorded row */
			assert_string_equal(l[j].kind, "new_request");
			assert_string_equal(l[j].provider_class, "email");
			assert_int_equal(l[j].org_id, f->org1);
			assert_int_equal(l[j].request_id, 7);
			assert_int_equal(l[j].attempts, 0);
			assert_non_null(
			    strstr(l[j].payload, k == X_A ? "\"a\"" : k == X_B ? "\"b\"" : "\"c\""));
			row_get(f->peek, l[j].id, &r);
			assert_string_equal(r.status, "leased");
			assert_string_equal(r.owner, s->owner);
			assert_int_equal(r.lease_exp, T0 + s->at + 60);
		}
		store_leases_free(l, n);
	}
}

/* store_outbox_due_upto: pending rows due at the instant, of every organisation, counted up to
 * the limit; a row not yet due, or leased, does not count */
static void test_outbox_due_upto(void **state)
{
	struct fixture *f = *state;
	struct store_lease *l = NULL;
	int n = -1, got = -1;

	assert_int_equal(store_outbox_due_upto(f->st, T0, 10, &n), GW_OK);
	assert_int_equal(n, 0);
	enqueue(f, f->org1, "d:1", 7, 0, T0, "{}", NULL);
	enqueue(f, f->org1, "d:2", 7, T0 - 5, T0, "{}", NULL);
	enqueue(f, f->org2, "d:3", 8, 0, T0, "{}", NULL);
	enqueue(f, f->org1, "d:4", 7, T0 + 100, T0, "{}", NULL); /* not yet due */
	assert_int_equal(store_outbox_due_upto(f->st, T0, 10, &n), GW_OK);
	assert_int_equal(n, 3);
	assert_int_equal(store_outbox_due_upto(f->st, T0, 2, &n), GW_OK);
	assert_int_equal(n, 2); /* the limit */
	assert_int_equal(store_outbox_due_upto(f->st, T0 + 100, 10, &n), GW_OK);
	assert_int_equal(n, 4);
	assert_int_equal(store_outbox_lease(f->st, "w", T0, 60, 1, &l, &got), GW_OK);
	assert_int_equal(got, 1);
	store_leases_free(l, got);
	assert_int_equal(store_outbox_due_upto(f->st, T0, 10, &n), GW_OK);
	assert_int_equal(n, 2); /* the leased row is taken */
}

/* ---- delivery order: urgent first, organisations take turns ---- */

struct order_row {
	int org;          /* 1 or 2 */
	const char *kind; /* its priority comes from the kind */
	time_t due;       /* offset from T0 */
	const char *tag;  /* in the payload */
};

struct order_case {
	const char *name;
	struct order_row rows[12];
	int max;          /* batch */
	const char *want; /* tags leased, in order, space-separated */
};

#define NR "new_request"
static const struct order_case order_cases[] = {
    {"urgent before bulk, whatever came first",
     {{1, NR, 0, "b1"}, {1, NR, 0, "b2"}, {1, "reminder", 5, "r"}, {1, "sign_in", 9, "s"}},
     4, "r s b1 b2"},
    {"within a priority, due order",
     {{1, NR, 3, "b3"}, {1, NR, 1, "b1"}, {1, NR, 2, "b2"}}, 3, "b1 b2 b3"},
    {"a fan-out of one organisation shares the batch with another's",
     {{1, NR, 0, "a1"}, {1, NR, 0, "a2"}, {1, NR, 0, "a3"}, {1, NR, 0, "a4"}, {1, NR, 0, "a5"},
      {1, NR, 0, "a6"}, {2, NR, 9, "o1"}, {2, NR, 9, "o2"}},
     4, "a1 o1 a2 o2"},
    {"a small queue's room goes to the other organisation",
     {{1, NR, 0, "a1"}, {1, NR, 0, "a2"}, {1, NR, 0, "a3"}, {1, NR, 0, "a4"}, {2, NR, 9, "o1"}},
     4, "a1 o1 a2 a3"},
    {"urgent of both organisations, then bulk",
     {{1, NR, 0, "a1"}, {1, NR, 0, "a2"}, {2, "confirmation", 9, "oc"},
      {1, "scheduling_link", 8, "as"}, {2, "survey", 1, "os"}},
     5, "as oc a1 os a2"},
    {"rows not yet due wait, urgent or not",
     {{1, "reminder", 100, "later"}, {1, NR, 0, "b1"}, {2, NR, 100, "o-later"}}, 4, "b1"},
};

static void test_outbox_order(void **state)
{
	struct fixture *f = *state;
	size_t i, j;

	for(i = 0; i < GW_ARRAY_LEN(order_cases); i++) {
		const struct order_case *c = &order_cases[i];
		struct store_lease *l = NULL;
		char got[200] = "", key[64], payload[64];
		int n = 0, k;

		print_message("case: %s\n", c->name);
		for(j = 0; j < GW_ARRAY_LEN(c->rows) && c->rows[j].kind; j++) {
			const struct order_row *r = &c->rows[j];
			struct store_effect e = {0};
			bool ins;

			snprintf(key, sizeof(key), "order:%zu:%zu", i, j);
			snprintf(payload, sizeof(payload), "{\"tag\":\"%s\"}", r->tag);
			e.org_id = r->org == 1 ? f->org1 : f->org2;
			e.kind = r->kind;
			e.provider_class = "email";
			e.dedupe_key = key;
			e.payload = payload;
			e.not_before = T0 + r->due;
			assert_int_equal(store_outbox_enqueue(f->st, &e, T0, &ins, NULL), GW_OK);
		}
		assert_int_equal(store_outbox_lease_class(f->st, "w", "email", NULL, T0 + 10, 60,
		                                          c->max, &l, &n),
		                 GW_OK);
		for(k = 0; k < n; k++) {
			json_t *p = json_loads(l[k].payload, 0, NULL);
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? " " : "",
			         json_string_value(json_object_get(p, "tag")));
			json_decref(p);
		}
		CHECK(strcmp(got, c->want) == 0, "%s: leased \"%s\", want \"%s\"", c->name, got,
		      c->want);
		store_leases_free(l, n);
		/* the next case starts from an empty queue */
		assert_int_equal(sqlite3_exec(f->peek, "UPDATE outbox SET status = 'sent'", NULL,
		                              NULL, NULL),
		                 SQLITE_OK);
	}
}
#undef NR

/* ---- the sent journal of a dead worker ---- */

static void test_outbox_journal(void **state)
{
	struct fixture *f = *state;
	struct store_lease *l = NULL;
	struct store_journal_entry j[3] = {{0}};
	int64_t a, b, c;
	int n = 0, recorded = -1;
	struct row r;

	a = enqueue(f, f->org1, "j:a", 0, 0, T0, "{}", NULL);
	b = enqueue(f, f->org1, "j:b", 0, 0, T0, "{}", NULL);
	c = enqueue(f, f->org1, "j:c", 0, 0, T0, "{}", NULL);
	assert_int_equal(store_outbox_lease(f->st, "dead:1", T0, 60, 3, &l, &n), GW_OK);
	assert_int_equal(n, 3);
	store_leases_free(l, n);
	/* c was taken over by another worker since (its lease ran out): not the dead one's */
	assert_int_equal(sqlite3_exec(f->peek, "UPDATE outbox SET lease_owner = 'other:2'"
	                                       " WHERE dedupe_key = 'j:c'", NULL, NULL, NULL),
	                 SQLITE_OK);
	j[0].id = a;
	snprintf(j[0].provider, sizeof(j[0].provider), "smtp");
	j[0].started_ms = 1000;
	j[0].finished_ms = 1005;
	j[1].id = c;
	j[2].id = a; /* a line twice: recorded once */
	assert_int_equal(store_outbox_journal_sent(f->st, "dead:1", j, 3, T0 + 5, &recorded),
	                 GW_OK);
	assert_int_equal(recorded, 1);
	row_get(f->peek, a, &r);
	assert_string_equal(r.status, "sent");
	assert_int_equal(r.attempts, 1);
	assert_string_equal(r.provider, "smtp");
	assert_int_equal(r.sent_at, T0 + 5);
	row_get(f->peek, b, &r);
	assert_string_equal(r.status, "leased"); /* not in the journal: given back later */
	row_get(f->peek, c, &r);
	assert_string_equal(r.status, "leased");
	assert_string_equal(r.owner, "other:2");
}

/* ---- connections: a lease for connection number i skips organisations allowing i or fewer */

static void test_outbox_slots(void **state)
{
	struct fixture *f = *state;
	static const struct {
		int index;
		int skip; /* the organisation the lease leaves (its server is down): 1, 2 or 0 */
		int want; /* rows leased: bit 0 org1's, bit 1 org2's */
	} cases[] = {{0, 0, 3}, {1, 0, 3}, {2, 0, 2}, {7, 0, 2}, {8, 0, 0},
	             {0, 1, 2}, {0, 2, 1}, {2, 2, 0}};
	json_t *cfg = json_pack("{s:s, s:i}", "host", "mx.example.test", "max_connections", 2);
	int max = 0;
	size_t i;

	assert_int_equal(store_provider_put(f->st, f->org1, "smtp", cfg), GW_OK);
	json_decref(cfg);
	assert_int_equal(store_outbox_max_connections(f->st, "smtp", 8, &max), GW_OK);
	assert_int_equal(max, 2);
	for(i = 0; i < GW_ARRAY_LEN(cases); i++) {
		int64_t skip = cases[i].skip == 1 ? f->org1 : f->org2;
		struct store_slot slot = {.index = cases[i].index, .provider = "smtp", .def = 8,
		                          .skip = &skip, .nskip = cases[i].skip ? 1 : 0};
		struct store_lease *l = NULL;
		char k1[32], k2[32];
		int n = 0, got = 0, j;

		snprintf(k1, sizeof(k1), "slot:%zu:1", i);
		snprintf(k2, sizeof(k2), "slot:%zu:2", i);
		enqueue(f, f->org1, k1, 0, 0, T0, "{}", NULL);
		enqueue(f, f->org2, k2, 0, 0, T0, "{}", NULL); /* no settings: 8 */
		assert_int_equal(store_outbox_cycle(f->st, "w", NULL, 0, T0, "email", NULL, 60, 10, &l,
		                                    &n, &slot),
		                 GW_OK);
		for(j = 0; j < n; j++)
			got |= l[j].org_id == f->org1 ? 1 : 2;
		CHECK(got == cases[i].want, "connection %d, org %d left: leased the rows of %d, want %d",
		      cases[i].index, cases[i].skip, got, cases[i].want);
		store_leases_free(l, n);
		assert_int_equal(sqlite3_exec(f->peek, "UPDATE outbox SET status = 'sent'", NULL,
		                              NULL, NULL),
		                 SQLITE_OK);
	}
}

/* ---- a server that is down: the organisation's due email rows wait to the hold's end ---- */

static void test_outbox_email_hold(void **state)
{
	struct fixture *f = *state;
	int64_t due[5], later, other, leased;
	struct store_lease *l = NULL;
	struct row r;
	char key[32];
	int i, n = -1, m = 0, total = 0;

	for(i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "hold:%d", i);
		due[i] = enqueue(f, f->org1, key, 0, 0, T0, "{}", NULL);
	}
	later = enqueue(f, f->org1, "hold:later", 0, T0 + 100, T0, "{}", NULL); /* a reminder */
	other = enqueue(f, f->org2, "hold:other", 0, 0, T0, "{}", NULL);
	leased = enqueue(f, f->org1, "hold:leased", 0, 0, T0, "{}", NULL);
	assert_int_equal(sqlite3_exec(f->peek, "UPDATE outbox SET status = 'leased',"
	                                       " lease_owner = 'w:1' WHERE dedupe_key = 'hold:leased'",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	/* in chunks of 2: 2, 2, 1, then none */
	do {
		assert_int_equal(store_outbox_email_hold(f->st, f->org1, T0 + 1, T0 + 6,
		                                         "not tried: down", 2, &n),
		                 GW_OK);
		CHECK(n <= 2, "a chunk of %d rows, at most 2", n);
		total += n;
	} while(n == 2 && ++m < 10);
	assert_int_equal(total, 5);
	assert_int_equal(n, 1);
	for(i = 0; i < 5; i++) {
		row_get(f->peek, due[i], &r);
		assert_string_equal(r.status, "pending");
		assert_int_equal(r.next_at, T0 + 6);
		assert_string_equal(r.last_error, "not tried: down");
		assert_int_equal(r.attempts, 0);
	}
	row_get(f->peek, later, &r); /* due after the failure: keeps its time, no words */
	assert_int_equal(r.next_at, T0 + 100);
	assert_string_equal(r.last_error, "");
	row_get(f->peek, other, &r); /* another organisation's */
	assert_int_equal(r.next_at, T0);
	assert_string_equal(r.last_error, "");
	row_get(f->peek, leased, &r); /* in a worker's hands */
	assert_string_equal(r.status, "leased");
	assert_string_equal(r.last_error, "");
	/* before the hold's end only the other organisation's row is due */
	assert_int_equal(store_outbox_cycle(f->st, "w:2", NULL, 0, T0 + 5, "email", NULL, 60, 10,
	                                    &l, &m, NULL),
	                 GW_OK);
	assert_int_equal(m, 1);
	assert_int_equal(l[0].id, other);
	store_leases_free(l, m);
	/* the saved settings make them due at once */
	assert_int_equal(store_outbox_email_due(f->st, f->org1, &n), GW_OK);
	assert_int_equal(n, 5);
}

/* ---- the dead rows an administrator lists to retry, among everything sent ---- */

static void test_outbox_list_dead(void **state)
{
	struct fixture *f = *state;
	int64_t id[40];
	json_t *l = NULL;
	char key[32];
	bool gone = true;
	int i;

	/* 40 rows, alternately of org1 and org2: sent, but 5, 15, 25 (org2) and 10, 30 (org1) dead */
	for(i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "dead:%d", i);
		id[i] = enqueue(f, i % 2 ? f->org2 : f->org1, key, 0, 0, T0, "{}", NULL);
	}
	assert_int_equal(sqlite3_exec(f->peek,
	                              "UPDATE outbox SET status = 'sent' WHERE dedupe_key LIKE 'dead:%';"
	                              " UPDATE outbox SET status = 'dead', last_error = 'SMTP 550'"
	                              " WHERE dedupe_key IN ('dead:5', 'dead:15', 'dead:25',"
	                              " 'dead:10', 'dead:30')",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	/* one organisation's, newest first; the limit holds */
	assert_int_equal(store_outbox_list(f->st, f->org2, "dead", 100, &l), GW_OK);
	assert_int_equal(json_array_size(l), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "id")), id[25]);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 2), "id")), id[5]);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "status")),
	                    "dead");
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "last_error")),
	                    "SMTP 550");
	json_decref(l);
	assert_int_equal(store_outbox_list(f->st, f->org1, "dead", 1, &l), GW_OK);
	assert_int_equal(json_array_size(l), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "id")), id[30]);
	json_decref(l);
	/* every organisation's (the platform's list), newest first */
	assert_int_equal(store_outbox_list(f->st, 0, "dead", 100, &l), GW_OK);
	assert_int_equal(json_array_size(l), 5);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "id")), id[30]);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 4), "id")), id[5]);
	json_decref(l);
	/* a retried row leaves the list; the other statuses list as before */
	assert_int_equal(store_outbox_retry(f->st, f->org2, id[15], &gone), GW_OK);
	assert_int_equal(store_outbox_list(f->st, f->org2, "dead", 100, &l), GW_OK);
	assert_int_equal(json_array_size(l), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 1), "id")), id[5]);
	json_decref(l);
	assert_int_equal(store_outbox_list(f->st, f->org1, "sent", 100, &l), GW_OK);
	assert_int_equal(json_array_size(l), 18);
	json_decref(l);
	assert_int_equal(store_outbox_list(f->st, f->org2, "pending", 100, &l), GW_OK);
	assert_int_equal(json_array_size(l), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "id")), id[15]);
	json_decref(l);
}

/* ---- more organisations than one lease lists: they still take turns ---- */

static void test_outbox_many_orgs(void **state)
{
	struct fixture *f = *state;
	enum { ORGS = 300, ROWS = 2, BATCH = 64, LEASES = (ORGS + BATCH - 1) / BATCH };
	static int64_t org_ids[ORGS];
	static bool served[ORGS];
	int i, k, n, nserved = 0;

	for(i = 0; i < ORGS; i++) {
		char name[32], key[32];

		snprintf(name, sizeof(name), "Org %d", i);
		assert_int_equal(store_org_create(f->st, name, "UTC", &org_ids[i]), GW_OK);
		for(k = 0; k < ROWS; k++) {
			snprintf(key, sizeof(key), "many:%d:%d", i, k);
			enqueue(f, org_ids[i], key, 0, 0, T0, "{}", NULL);
		}
	}
	/* every organisation has its turn within ORGS / BATCH leases, the ones past the first
	 * LEASE_ORGS_MAX (256) listed included */
	for(k = 0; k < LEASES; k++) {
		struct store_lease *l = NULL;

		n = 0;
		assert_int_equal(store_outbox_lease_class(f->st, "w", "email", NULL, T0, 60, BATCH,
		                                          &l, &n),
		                 GW_OK);
		for(i = 0; i < n; i++) {
			int o = (int)(l[i].org_id - org_ids[0]);
			if(o >= 0 && o < ORGS && !served[o]) {
				served[o] = true;
				nserved++;
			}
		}
		store_leases_free(l, n);
	}
	CHECK(nserved == ORGS, "%d of %d organisations served in %d leases of %d", nserved, ORGS,
	      LEASES, BATCH);
}

struct finish_case {
	const char *name;
	enum store_outcome outcome;
	time_t next_at;       /* STORE_RETRY: offset from the case's now, past every later case */
	const char *detail;
	bool other_owner;     /* finished by a worker that does not hold the lease */
	const char *status;   /* after */
	int attempts;         /* after */
	int attempt_rows;     /* delivery_attempts rows after */
	const char *last_error;
};

static const struct finish_case finish_cases[] = {
    {"sent", STORE_SENT, 0, "250 2.0.0 OK", false, "sent", 1, 1, ""},
    {"transient failure: retry later", STORE_RETRY, 500000, "451 4.3.0 try later", false,
     "pending", 1, 1, "451 4.3.0 try later"},
    {"permanent failure: dead letter", STORE_DEAD, 0, "550 5.1.1 no such user", false, "dead",
     1, 1, "550 5.1.1 no such user"},
    {"past its deadline: expired, never tried", STORE_EXPIRED, 0, "deadline passed", false,
     "expired", 0, 0, "deadline passed"},
    {"skipped, never tried", STORE_SKIPPED, 0, "booking cancelled", false, "skipped", 0, 0,
     "booking cancelled"},
    {"lease lost: another owner's result is ignored", STORE_SENT, 0, "250 OK", true, "leased", 0,
     0, ""},
};

static void test_outbox_finish(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(finish_cases); i++) {
		const struct finish_case *c = &finish_cases[i];
		struct store_result res = {0};
		struct store_lease *l = NULL;
		char key[32];
		int64_t id;
		int n = 0;
		struct row before, after;
		time_t now = T0 + 1000 * (time_t)i; /* each case leases only its own row */

		print_message("case: %s\n", c->name);
		snprintf(key, sizeof(key), "finish:%zu", i);
		id = enqueue(f, f->org1, key, 0, 0, now, "{}", NULL);
		assert_int_equal(store_outbox_lease(f->st, "w1", now, 60, 10, &l, &n), GW_OK);
		assert_int_equal(n, 1);
		assert_int_equal(l[0].id, id);
		store_leases_free(l, n);
		row_get(f->peek, id, &before);

		res.id = id;
		res.outcome = c->outcome;
		res.next_attempt_at = c->outcome == STORE_RETRY ? now + c->next_at : 0;
		res.provider = "maildir";
		res.detail = c->detail;
		res.started_ms = (int64_t)now * 1000;
		res.finished_ms = (int64_t)now * 1000 + 20;
		assert_int_equal(store_outbox_finish(f->st, c->other_owner ? "w2" : "w1", &res, 1,
		                                     now + 1),
		                 GW_OK);
		row_get(f->peek, id, &after);
		CHECK(strcmp(after.status, c->status) == 0, "%s: status %s, want %s", c->name,
		      after.status, c->status);
		CHECK(after.attempts == c->attempts, "%s: attempts %d, want %d", c->name,
		      after.attempts, c->attempts);
		CHECK(q_int(f->peek, "SELECT count(*) FROM delivery_attempts WHERE outbox_id = ?1", id) ==
		          c->attempt_rows,
		      "%s: attempt rows", c->name);
		CHECK(strcmp(after.last_error, c->last_error) == 0, "%s: last_error '%s', want '%s'",
		      c->name, after.last_error, c->last_error);
		if(c->other_owner) {
			/* nothing changed: still the holder's */
			assert_string_equal(after.owner, "w1");
			assert_int_equal(after.lease_exp, before.lease_exp);
			assert_int_equal(after.sent_at, 0);
			continue;
		}
		assert_string_equal(after.owner, "");
		assert_string_equal(after.provider, "maildir");
		if(c->outcome == STORE_SENT)
			assert_int_equal(after.sent_at, now + 1);
		else
			assert_int_equal(after.sent_at, 0);
		if(c->outcome == STORE_RETRY)
			assert_int_equal(after.next_at, now + c->next_at);
	}
}

/* a retried row comes back at its next_attempt_at, its attempts counted, and a lost lease
 * does not keep the real holder from finishing */
static void test_outbox_retry_cycle(void **state)
{
	struct fixture *f = *state;
	struct store_result res = {0};
	struct store_lease *l = NULL;
	int64_t id;
	int n = 0;
	struct row r;

	id = enqueue(f, f->org1, "cycle", 0, 0, T0, "{}", NULL);
	assert_int_equal(store_outbox_lease(f->st, "w1", T0, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 1);
	store_leases_free(l, n);
	res.id = id;
	res.outcome = STORE_RETRY;
	res.next_attempt_at = T0 + 300;
	res.detail = "421 busy";
	assert_int_equal(store_outbox_finish(f->st, "w1", &res, 1, T0 + 1), GW_OK);

	/* a second result for a row that is no longer leased changes nothing */
	res.outcome = STORE_DEAD;
	assert_int_equal(store_outbox_finish(f->st, "w1", &res, 1, T0 + 2), GW_OK);
	row_get(f->peek, id, &r);
	assert_string_equal(r.status, "pending");
	assert_int_equal(r.attempts, 1);

	assert_int_equal(store_outbox_lease(f->st, "w2", T0 + 299, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 0);
	store_leases_free(l, n);
	assert_int_equal(store_outbox_lease(f->st, "w2", T0 + 300, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 1);
	assert_int_equal(l[0].id, id);
	assert_int_equal(l[0].attempts, 1);
	store_leases_free(l, n);

	/* w1 lost it to w2: w1's late result is ignored, w2's counts */
	res.outcome = STORE_SENT;
	res.detail = NULL;
	assert_int_equal(store_outbox_finish(f->st, "w1", &res, 1, T0 + 301), GW_OK);
	row_get(f->peek, id, &r);
	assert_string_equal(r.status, "leased");
	assert_string_equal(r.owner, "w2");
	/* w2 names the try's number as the dispatcher does (its lease's attempts + 1): the attempt
	 * row takes it without reading the outbox row (w1's above was read from the row) */
	res.attempt = 2;
	assert_int_equal(store_outbox_finish(f->st, "w2", &res, 1, T0 + 302), GW_OK);
	row_get(f->peek, id, &r);
	assert_string_equal(r.status, "sent");
	assert_int_equal(r.attempts, 2);
	assert_int_equal(q_int(f->peek, "SELECT min(attempt) FROM delivery_attempts"
	                                " WHERE outbox_id = ?1",
	                       id),
	                 1);
	assert_int_equal(r.sent_at, T0 + 302);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM delivery_attempts WHERE outbox_id = ?1",
	                       id),
	                 2);
	assert_int_equal(q_int(f->peek, "SELECT max(attempt) FROM delivery_attempts"
	                                " WHERE outbox_id = ?1",
	                       id),
	                 2);
	/* a sent row is never leased again */
	assert_int_equal(store_outbox_lease(f->st, "w3", T0 + 100000, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 0);
	store_leases_free(l, n);
}

/* rows in the states an admin may try to retry */
enum { S_DEAD, S_EXPIRED, S_SENT, S_PENDING, S_LEASED, S_OTHER_DEAD, S_COUNT };

struct retry_case {
	const char *name;
	int row;   /* S_*, or -1: an id that does not exist */
	int org;   /* 1, 2 or 0 (CLI: any) */
	gw_rc rc;
	const char *status; /* after */
};

/* in order */
static const struct retry_case retry_cases[] = {
    {"dead row", S_DEAD, 1, GW_OK, "pending"},
    {"expired row", S_EXPIRED, 1, GW_OK, "pending"},
    {"sent row", S_SENT, 1, GW_ESTATE, "sent"},
    {"pending row", S_PENDING, 1, GW_ESTATE, "pending"},
    {"leased row", S_LEASED, 1, GW_ESTATE, "leased"},
    {"another organisation's dead row", S_OTHER_DEAD, 1, GW_ENOTFOUND, "dead"},
    {"the same row from the CLI (any org)", S_OTHER_DEAD, 0, GW_OK, "pending"},
    {"the dead row again: now pending", S_DEAD, 1, GW_ESTATE, "pending"},
    {"no such row", -1, 1, GW_ENOTFOUND, NULL},
};

static void test_outbox_retry(void **state)
{
	struct fixture *f = *state;
	static const enum store_outcome how[S_COUNT] = {
	    [S_DEAD] = STORE_DEAD, [S_EXPIRED] = STORE_EXPIRED, [S_SENT] = STORE_SENT,
	    [S_OTHER_DEAD] = STORE_DEAD};
	int64_t id[S_COUNT];
	struct store_lease *l = NULL;
	struct store_result res[S_COUNT];
	int n = 0, nres = 0, i;
	size_t c;

	for(i = 0; i < S_COUNT; i++) {
		char key[32];
		snprintf(key, sizeof(key), "retry:%d", i);
		id[i] = enqueue(f, i == S_OTHER_DEAD ? f->org2 : f->org1, key, 0,
		                i == S_PENDING ? T0 + 100 : 0, T0, "{}", NULL);
	}
	/* lease everything due, then finish all but the one that stays leased, in one batch */
	assert_int_equal(store_outbox_lease(f->st, "w1", T0, 10000, 10, &l, &n), GW_OK);
	assert_int_equal(n, S_COUNT - 1);
	store_leases_free(l, n);
	memset(res, 0, sizeof(res));
	for(i = 0; i < S_COUNT; i++) {
		if(i == S_PENDING || i == S_LEASED)
			continue;
		res[nres].id = id[i];
		res[nres].outcome = how[i];
		res[nres].detail = "x";
		nres++;
	}
	assert_int_equal(store_outbox_finish(f->st, "w1", res, nres, T0 + 1), GW_OK);

	for(c = 0; c < GW_ARRAY_LEN(retry_cases); c++) {
		const struct retry_case *k = &retry_cases[c];
		int64_t rid = k->row < 0 ? id[S_COUNT - 1] + 1000 : id[k->row];
		struct row r;

		print_message("case: %s\n", k->name);
		CHECK_RC(store_outbox_retry(f->st, org_of(f, k->org), rid, NULL), k->rc, k->name);
		if(!k->status)
			continue;
		row_get(f->peek, rid, &r);
		CHECK(strcmp(r.status, k->status) == 0, "%s: status %s, want %s", k->name, r.status,
		      k->status);
		if(k->rc == GW_OK) {
			/* due since it was enqueued (T0): a caller on any clock sees it due */
			CHECK(r.next_at == T0, "%s: due at T0+%lld, want T0", k->name,
			      (long long)(r.next_at - T0));
			/* the backoff schedule starts afresh; the attempts table keeps the history */
			CHECK(r.attempts == 0, "%s: attempts %d after a retry, want 0", k->name,
			      r.attempts);
		}
	}
	/* retried rows are leased again at once (and the pending one, due since T0 + 100), by a
	 * worker whose clock is far behind the time of the retry; the leased one is still held */
	assert_int_equal(store_outbox_lease(f->st, "w9", T0 + 100, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 4);
	store_leases_free(l, n);
}

/* a message rendered at enqueue: leased with its row, kept through a retry, gone once sent;
 * a duplicate key writes no message; a dead row's goes with the redaction */
static void test_outbox_message(void **state)
{
	struct fixture *f = *state;
	struct store_effect e = {f->org1, "scheduling_link", "email", "msg:1", 0, 0, "{}", 0, 0, 0,
	                         "Message-ID: <a@b>\r\n\r\nhello /s/tok\r\n", "cleo@x.test"};
	struct store_effect plain = {f->org1, "scheduling_link", "email", "msg:2", 0, 0, "{}", 0, 0,
	                             0, NULL, NULL};
	struct store_result res = {0};
	struct store_lease *l = NULL;
	int64_t id, id2, again;
	int n = 0, i, redacted, pruned;
	bool ins;

	assert_int_equal(store_outbox_enqueue(f->st, &e, T0, &ins, &id), GW_OK);
	assert_true(ins);
	e.message = "another";
	assert_int_equal(store_outbox_enqueue(f->st, &e, T0, &ins, &again), GW_OK);
	assert_false(ins);
	assert_int_equal(store_outbox_enqueue(f->st, &plain, T0, &ins, &id2), GW_OK);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_messages", 0), 1);
	assert_int_equal(store_outbox_lease(f->st, "w1", T0, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 2);
	for(i = 0; i < n; i++) {
		if(l[i].id == id) {
			assert_string_equal(l[i].message, "Message-ID: <a@b>\r\n\r\nhello /s/tok\r\n");
			assert_string_equal(l[i].rcpt, "cleo@x.test");
		} else {
			assert_null(l[i].message);
			assert_null(l[i].rcpt);
		}
	}
	store_leases_free(l, n);
	res.id = id;
	res.outcome = STORE_RETRY;
	res.next_attempt_at = T0 + 5;
	assert_int_equal(store_outbox_finish(f->st, "w1", &res, 1, T0 + 1), GW_OK);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_messages WHERE outbox_id = ?1",
	                       id),
	                 1);
	assert_int_equal(store_outbox_lease(f->st, "w1", T0 + 5, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 1);
	assert_non_null(l[0].message);
	store_leases_free(l, n);
	res.outcome = STORE_SENT;
	assert_int_equal(store_outbox_finish(f->st, "w1", &res, 1, T0 + 6), GW_OK);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_messages", 0), 0);

	/* dead: the message stays for a retry, until the retention pass redacts the row */
	e.dedupe_key = "msg:3";
	e.message = "dead one";
	assert_int_equal(store_outbox_enqueue(f->st, &e, T0 + 10, &ins, &id), GW_OK);
	assert_int_equal(store_outbox_lease(f->st, "w1", T0 + 10, 60, 10, &l, &n), GW_OK);
	store_leases_free(l, n);
	res.id = id;
	res.outcome = STORE_DEAD;
	assert_int_equal(store_outbox_finish(f->st, "w1", &res, 1, T0 + 11), GW_OK);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_messages", 0), 1);
	assert_int_equal(store_begin(f->st), GW_OK);
	assert_int_equal(store_outbox_redact(f->st, T0 + 100000, 3600, 64, strdup, &redacted,
	                                     &pruned),
	                 GW_OK);
	assert_int_equal(store_commit(f->st), GW_OK);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_messages", 0), 0);
}

/* a finished email's payload redacted as it is recorded (store_result.redacted): the retention
 * pass finds nothing left to do for it; a result without one is left to that pass */
static void test_outbox_redacted_at_finish(void **state)
{
	struct fixture *f = *state;
	struct store_effect e = {f->org1, "scheduling_link", "email", "red:1", 0, 0,
	                         "{\"text\":\"https://b.example/s/AbCdEfGhIjKlMnOpQrSt\"}", 0, 0,
	                         0, "Message-ID: <r@b>\r\n\r\n/s/AbCdEfGhIjKlMnOpQrSt\r\n",
	                         "cleo@x.test"};
	struct store_result res[2];
	struct store_lease *l = NULL;
	char red[] = "{\"text\":\"https://b.example/s/redacted\"}";
	int64_t id1, id2;
	int n = 0, i, redacted = -1, pruned;
	bool ins;

	assert_int_equal(store_outbox_enqueue(f->st, &e, T0, &ins, &id1), GW_OK);
	e.dedupe_key = "red:2";
	assert_int_equal(store_outbox_enqueue(f->st, &e, T0, &ins, &id2), GW_OK);
	assert_int_equal(store_outbox_lease(f->st, "w1", T0, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 2);
	store_leases_free(l, n);
	memset(res, 0, sizeof(res));
	for(i = 0; i < 2; i++) {
		res[i].id = i ? id2 : id1;
		res[i].outcome = STORE_SENT;
		res[i].attempt = 1;
	}
	res[0].redacted = red;
	assert_int_equal(store_outbox_finish(f->st, "w1", res, 2, T0 + 1), GW_OK);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox WHERE id = ?1 AND payload ="
	                                " '{\"text\":\"https://b.example/s/redacted\"}' AND"
	                                " payload_state = 'redacted' AND status = 'sent'",
	                       id1),
	                 1);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox WHERE id = ?1 AND payload LIKE"
	                                " '%AbCdEf%' AND payload_state IS NULL AND status = 'sent'",
	                       id2),
	                 1);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_messages", 0), 0);
	/* the pass redacts only the other one */
	assert_int_equal(store_begin(f->st), GW_OK);
	assert_int_equal(store_outbox_redact(f->st, T0 + 2, 3600, 64, strdup, &redacted, &pruned),
	                 GW_OK);
	assert_int_equal(store_commit(f->st), GW_OK);
	assert_int_equal(redacted, 1);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox WHERE payload_state ="
	                                " 'redacted'", 0),
	                 2);
}

/* a fan-out's shared body stays while a row of it is not yet pruned, and goes with the last
 * one's payload (the retention pass) */
static void test_outbox_body_pruned(void **state)
{
	struct fixture *f = *state;
	struct store_effect e = {f->org1, "new_request", "email", "b:1", 5, 0, "{\"n\":\"a\"}", 0,
	                         0, 0, NULL, NULL};
	struct store_fanout fo = {.request_id = 999, .org_id = f->org1, .token = "tok",
	                          .after_id = 1, .last_id = 2};
	struct store_result res[2];
	struct store_lease *l = NULL;
	int64_t body = 0, ids[2];
	int n = 0, i, redacted, pruned;
	bool ins;

	assert_int_equal(store_outbox_body(f->st, f->org1, "{\"body\":1}", NULL, T0, &body),
	                 GW_OK);
	e.body_id = body;
	assert_int_equal(store_outbox_enqueue(f->st, &e, T0, &ins, &ids[0]), GW_OK);
	e.dedupe_key = "b:2";
	assert_int_equal(store_outbox_enqueue(f->st, &e, T0, &ins, &ids[1]), GW_OK);
	/* one row sent, one still pending: past the retention the body stays */
	assert_int_equal(store_outbox_lease(f->st, "w1", T0, 60, 1, &l, &n), GW_OK);
	assert_int_equal(n, 1);
	memset(res, 0, sizeof(res));
	res[0].id = l[0].id;
	res[0].outcome = STORE_SENT;
	store_leases_free(l, n);
	assert_int_equal(store_outbox_finish(f->st, "w1", res, 1, T0 + 1), GW_OK);
	for(i = 0; i < 2; i++) {
		assert_int_equal(store_begin(f->st), GW_OK);
		assert_int_equal(store_outbox_redact(f->st, T0 + 100000, 3600, 64, strdup,
		                                     &redacted, &pruned),
		                 GW_OK);
		assert_int_equal(store_commit(f->st), GW_OK);
	}
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_bodies WHERE id = ?1", body),
	                 1);
	/* the other one sent too: once both are pruned, the body goes */
	assert_int_equal(store_outbox_lease(f->st, "w1", T0 + 2, 60, 1, &l, &n), GW_OK);
	assert_int_equal(n, 1);
	res[0].id = l[0].id;
	store_leases_free(l, n);
	assert_int_equal(store_outbox_finish(f->st, "w1", res, 1, T0 + 3), GW_OK);
	assert_int_equal(store_begin(f->st), GW_OK);
	assert_int_equal(store_outbox_redact(f->st, T0 + 3, 3600, 64, strdup, &redacted, &pruned),
	                 GW_OK);
	assert_int_equal(store_commit(f->st), GW_OK);
	/* redacted, not yet past the retention: still there */
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_bodies WHERE id = ?1", body),
	                 1);
	/* every row pruned, but the rest of its fan-out still to enqueue: the body stays */
	fo.body_id = body;
	assert_int_equal(store_fanout_put(f->st, &fo, T0 + 3), GW_OK);
	assert_int_equal(store_begin(f->st), GW_OK);
	assert_int_equal(store_outbox_redact(f->st, T0 + 100000, 3600, 64, strdup, &redacted,
	                                     &pruned),
	                 GW_OK);
	assert_int_equal(store_commit(f->st), GW_OK);
	assert_int_equal(pruned, 1);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_bodies WHERE id = ?1", body),
	                 1);
	/* the fan-out done: the next pass takes the body */
	assert_int_equal(store_fanout_done(f->st, fo.request_id), GW_OK);
	assert_int_equal(store_begin(f->st), GW_OK);
	assert_int_equal(store_outbox_redact(f->st, T0 + 100000, 3600, 64, strdup, &redacted,
	                                     &pruned),
	                 GW_OK);
	assert_int_equal(store_commit(f->st), GW_OK);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox_bodies WHERE id = ?1", body),
	                 0);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM outbox WHERE body_id = ?1", body), 2);
}

static void test_outbox_expire_request(void **state)
{
	struct fixture *f = *state;
	/* not due yet: an urgent kind would otherwise be leased ahead of c */
	struct store_effect other_kind = {f->org1, "scheduling_link", "email", "sl:10:1", 10, 0,
	                                  "{}", T0 + 10, 0, 0, NULL, NULL};
	struct store_lease *l = NULL;
	int64_t a, b, c, d, e = 0;
	bool ins;
	int n = 0;
	struct row r;

	a = enqueue(f, f->org1, "new_request:10:1", 10, T0 + 10, T0, "{}", NULL);
	b = enqueue(f, f->org1, "new_request:10:2", 10, T0 + 10, T0, "{}", NULL);
	c = enqueue(f, f->org1, "new_request:10:3", 10, 0, T0, "{}", NULL); /* being sent now */
	d = enqueue(f, f->org1, "new_request:11:1", 11, T0 + 10, T0, "{}", NULL);
	assert_int_equal(store_outbox_enqueue(f->st, &other_kind, T0, &ins, &e), GW_OK);
	assert_int_equal(store_outbox_lease(f->st, "w1", T0, 60, 1, &l, &n), GW_OK);
	assert_int_equal(n, 1);
	assert_int_equal(l[0].id, c);
	store_leases_free(l, n);

	assert_int_equal(store_outbox_expire_request(f->st, 10, "new_request"), GW_OK);
	row_get(f->peek, a, &r);
	assert_string_equal(r.status, "expired");
	row_get(f->peek, b, &r);
	assert_string_equal(r.status, "expired");
	row_get(f->peek, c, &r);
	assert_string_equal(r.status, "leased"); /* in flight: its worker finishes it */
	row_get(f->peek, d, &r);
	assert_string_equal(r.status, "pending"); /* another request */
	row_get(f->peek, e, &r);
	assert_string_equal(r.status, "pending"); /* another kind */
	/* expired rows are never leased */
	assert_int_equal(store_outbox_lease(f->st, "w2", T0 + 1000, 60, 10, &l, &n), GW_OK);
	assert_int_equal(n, 3); /* c (lease ran out), d, e */
	for(int i = 0; i < n; i++)
		assert_true(l[i].id != a && l[i].id != b);
	store_leases_free(l, n);
}

/* ---- the one clock (DESIGN.md rule 5) ---- */

/* test_created_at_clock - the rows the store stamps itself (migrations, organisations, users,
 * session types, provider configs) take the instant from clock_now(), so under a test clock
 * they carry the test clock's instant, never the wall clock's */
static void test_created_at_clock(void **state)
{
	static const char *const stamps[] = {
	    "SELECT min(applied_at) = ?1 AND max(applied_at) = ?1 FROM schema_migrations",
	    "SELECT created_at = ?1 FROM orgs WHERE name = 'Clocked'",
	    "SELECT created_at = ?1 FROM users WHERE email = 'clocked@example.com'",
	    "SELECT created_at = ?1 FROM session_types WHERE name = 'Clocked type'",
	    "SELECT updated_at = ?1 FROM provider_configs WHERE name = 'smtp'",
	};
	const time_t at = T0 + 4242; /* far from any wall clock this test runs on */
	json_t *skills = json_pack("[s]", "yoga"), *lengths = json_pack("[i]", 60);
	json_t *cfg = json_pack("{s:s}", "host", "127.0.0.1");
	struct store_user_new nu = {"clocked@example.com", "Clocked", "UTC", ROLE_TRAINER, skills,
	                            false, "00"};
	struct store_session_type_new t = {"Clocked type", "EUR", skills, lengths, 1000, 30};
	struct gw_err err = {0};
	struct store *st = NULL;
	int64_t org, id;
	char path[128];
	sqlite3 *db;
	size_t i;

	(void)state;
	clock_set_test(at);
	new_path(path, sizeof(path));
	assert_int_equal(store_open(path, true, &st, &err), GW_OK);
	assert_int_equal(store_org_create(st, "Clocked", "UTC", &org), GW_OK);
	assert_int_equal(store_user_create(st, org, &nu, &id), GW_OK);
	assert_int_equal(store_session_type_create(st, org, &t, &id), GW_OK);
	assert_int_equal(store_provider_put(st, org, "smtp", cfg), GW_OK);
	store_close(st);
	clock_set_test(-1);
	db = peek_open(path);
	for(i = 0; i < GW_ARRAY_LEN(stamps); i++)
		CHECK(q_int(db, stamps[i], at) == 1, "not stamped with the test clock: %s", stamps[i]);
	sqlite3_close(db);
	json_decref(skills);
	json_decref(lengths);
	json_decref(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_table),
	    cmocka_unit_test_setup_teardown(test_org, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_users, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trainers_matching, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_claim, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_dedupe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_lease, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_due_upto, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_journal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_slots, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_email_hold, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_list_dead, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_redacted_at_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_many_orgs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_retry_cycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_retry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_body_pruned, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_expire_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_message, setup, teardown),
	    cmocka_unit_test(test_created_at_clock),
	};

	return cmocka_run_group_tests_name("store", tests, group_setup, group_teardown);
}
