/*
 * test_auth.c - sign-in links and sessions: the store's queries (store/store_auth.c, migration
 * 11), the lifecycle around them (gateway/lifecycle/lc_auth.c) and the sign_in email
 * (gateway/templates/tpl_auth.c), against real database files in a temp folder.
 *
 * Who may sign in (table), a link used once and only before its end (table of steps, two
 * connections), sessions live until their end and no longer, the trigger that ends sessions on
 * deactivation or loss of the roles (table), the purge of old links, lc_sign_in writing a link
 * and its email for a trainer and nothing for anyone else, lc_login opening one session, and
 * the email's headers and link. What is checked is read back through a second SQLite
 * connection ("peek"): what was committed.
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
#include <unistd.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "gateway/lifecycle/lc_auth.h"
#include "gateway/templates/tpl_auth.h"
#include "store/store.h"

#define T0 ((time_t)1796115600) /* 2026-12-01T09:00:00Z: every `now` below is T0 + n */

#define CHECK(cond, ...)                                                                       \
	do {                                                                                       \
		if(!(cond))                                                                            \
			fail_msg(__VA_ARGS__);                                                             \
	} while(0)

#define CHECK_RC(got, want, name)                                                              \
	CHECK((got) == (want), "%s: rc %s, want %s", (name), gw_rc_name(got), gw_rc_name(want))

static char tmp_dir[64];
static int db_seq;

/* users of the fixture, by index */
enum { ANA, OLGA, DESK, GONE, OTHER, NUSERS };
static const struct {
	const char *email;
	int roles;
	int other_org;
	int inactive;
} fx_users[NUSERS] = {
    [ANA] = {"ana@example.com", ROLE_TRAINER, 0, 0},
    [OLGA] = {"olga@example.com", ROLE_ORG_ADMIN, 0, 0},
    [DESK] = {"desk@example.com", ROLE_KIOSK, 0, 0},
    [GONE] = {"gone@example.com", ROLE_TRAINER, 0, 1},
    [OTHER] = {"otto@example.com", ROLE_TRAINER | ROLE_ORG_ADMIN, 1, 0},
};

struct fixture {
	char path[128];
	struct store *st;
	sqlite3 *peek;
	int64_t org1, org2;
	int64_t user[NUSERS];
};

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
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_auth.XXXXXX");
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	clock_set_test(-1);
	return nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* q_int - first column of the first row of sql, ?1 bound to a when sql has it */
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

/* hash_of - the SHA-256 hex of token */
static void hash_of(const char *token, char out[CRYPTO_HASH_HEX])
{
	crypto_sha256_hex(token, strlen(token), out);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct gw_err err = {0};
	size_t i;

	if(!f)
		return -1;
	clock_set_test(T0);
	snprintf(f->path, sizeof(f->path), "%s/db%d.sqlite", tmp_dir, ++db_seq);
	if(store_open(f->path, true, &f->st, &err) != GW_OK ||
	   store_org_create(f->st, "Riverside Fitness", "Europe/Berlin", &f->org1) != GW_OK ||
	   store_org_create(f->st, "Other", "UTC", &f->org2) != GW_OK) {
		print_error("setup: %s\n", err.message);
		return -1;
	}
	for(i = 0; i < NUSERS; i++) {
		char tok[32], hash[CRYPTO_HASH_HEX];
		struct store_user_new nu = {fx_users[i].email, "Ann Example", "Europe/Berlin",
		                            fx_users[i].roles, NULL, false, hash};

		snprintf(tok, sizeof(tok), "ord_user_%zu", i);
		hash_of(tok, hash);
		if(store_user_create(f->st, fx_users[i].other_org ? f->org2 : f->org1, &nu,
		                     &f->user[i]) != GW_OK)
			return -1;
	}
	f->peek = NULL;
	if(sqlite3_open_v2(f->path, &f->peek, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(f->peek, 5000);
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "UPDATE users SET active = 0 WHERE id = %lld",
		         (long long)f->user[GONE]);
		if(sqlite3_exec(f->peek, sql, NULL, NULL, NULL) != SQLITE_OK)
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	sqlite3_close(f->peek);
	free(f);
	clock_set_test(-1);
	return 0;
}

/* who may sign in: an active trainer or org admin of that organisation, address in any case */
static const struct signer_case {
	const char *name;
	const char *email;
	int org2;   /* ask in the second organisation */
	int who;    /* the user found, or -1 */
} signer_cases[] = {
    {"trainer", "ana@example.com", 0, ANA},
    {"trainer, address in capitals", "ANA@Example.COM", 0, ANA},
    {"org admin", "olga@example.com", 0, OLGA},
    {"kiosk: uses its token", "desk@example.com", 0, -1},
    {"deactivated trainer", "gone@example.com", 0, -1},
    {"trainer of the other organisation, asked in this one", "otto@example.com", 0, -1},
    {"trainer asked in another organisation", "ana@example.com", 1, -1},
    {"the other organisation's own trainer", "otto@example.com", 1, OTHER},
    {"unknown address", "nobody@example.com", 0, -1},
    {"a prefix of an address", "ana@example.co", 0, -1},
};

static void test_signer(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(signer_cases); i++) {
		const struct signer_case *c = &signer_cases[i];
		json_t *u = NULL;
		gw_rc rc = store_auth_signer(f->st, c->org2 ? f->org2 : f->org1, c->email,
		                             ROLE_TRAINER | ROLE_ORG_ADMIN, &u);

		print_message("signer case: %s\n", c->name);
		CHECK_RC(rc, c->who < 0 ? GW_ENOTFOUND : GW_OK, c->name);
		if(c->who >= 0)
			CHECK(json_integer_value(json_object_get(u, "id")) == f->user[c->who],
			      "%s: user %lld", c->name,
			      (long long)json_integer_value(json_object_get(u, "id")));
		else
			CHECK(u == NULL, "%s: no user", c->name);
		json_decref(u);
	}
}

/* a link's life: steps on two connections, in order */
static const struct link_step {
	const char *name;
	const char *token; /* the link's token (made at T0 unless made_at) */
	time_t at;         /* T0 + at */
	int second_conn;   /* take on the peek's own store connection */
	gw_rc rc;
} link_steps[] = {
    {"unknown token", "nope", 1, 0, GW_ENOTFOUND},
    {"fresh link", "link-a", 1, 0, GW_OK},
    {"the same link again", "link-a", 2, 0, GW_EEXPIRED},
    {"the same link from another connection", "link-a", 2, 1, GW_EEXPIRED},
    {"a second link, one second before its end", "link-b", 899, 1, GW_OK},
    {"a third link at its end", "link-c", 900, 0, GW_EEXPIRED},
    {"the third link, expired, from another connection", "link-c", 901, 1, GW_EEXPIRED},
    {"a link of a user deactivated after it was sent", "link-gone", 10, 0, GW_EEXPIRED},
};

static void test_link_once(void **state)
{
	struct fixture *f = *state;
	const char *made[] = {"link-a", "link-b", "link-c"};
	char hash[CRYPTO_HASH_HEX], sql[160];
	struct store *st2 = NULL;
	struct gw_err err = {0};
	int64_t id = 0, user;
	size_t i;

	assert_int_equal(store_open(f->path, false, &st2, &err), GW_OK);
	for(i = 0; i < GW_ARRAY_LEN(made); i++) {
		hash_of(made[i], hash);
		assert_int_equal(store_auth_link_add(f->st, f->org1, f->user[ANA], hash, T0, T0 + 900,
		                                     &id),
		                 GW_OK);
	}
	hash_of("link-gone", hash);
	assert_int_equal(store_auth_link_add(f->st, f->org1, f->user[OLGA], hash, T0, T0 + 900, &id),
	                 GW_OK);
	/* deactivating Olga by hand, without the trigger's help: the take checks it too */
	snprintf(sql, sizeof(sql), "DROP TRIGGER users_end_sessions; UPDATE users SET active = 0"
	                           " WHERE id = %lld", (long long)f->user[OLGA]);
	assert_int_equal(sqlite3_exec(f->peek, sql, NULL, NULL, NULL), SQLITE_OK);
	for(i = 0; i < GW_ARRAY_LEN(link_steps); i++) {
		const struct link_step *c = &link_steps[i];
		gw_rc rc;

		print_message("link step: %s\n", c->name);
		hash_of(c->token, hash);
		user = -1;
		rc = store_auth_link_take(c->second_conn ? st2 : f->st, hash, T0 + c->at, &user);
		CHECK_RC(rc, c->rc, c->name);
		CHECK(rc != GW_OK || user == f->user[ANA], "%s: user %lld", c->name, (long long)user);
		CHECK(rc == GW_OK || user == 0, "%s: no user on a miss", c->name);
	}
	CHECK(q_int(f->peek, "SELECT count(*) FROM sign_in_links WHERE used_at IS NOT NULL", 0) == 2,
	      "two links used");
	store_close(st2);
}

static void test_link_purge(void **state)
{
	struct fixture *f = *state;
	char hash[CRYPTO_HASH_HEX];
	int64_t id;

	hash_of("old", hash);
	assert_int_equal(store_auth_link_add(f->st, f->org1, f->user[ANA], hash, T0, T0 + 900, &id),
	                 GW_OK);
	hash_of("new", hash);
	/* a day after the old link's end it is still kept (so a retry says "expired") ... */
	assert_int_equal(store_auth_link_add(f->st, f->org1, f->user[ANA], hash, T0 + 900 + 86400,
	                                     T0 + 1800 + 86400, &id),
	                 GW_OK);
	CHECK(q_int(f->peek, "SELECT count(*) FROM sign_in_links", 0) == 2, "both kept");
	/* ... and purged by the next link made after that */
	hash_of("newer", hash);
	assert_int_equal(store_auth_link_add(f->st, f->org1, f->user[ANA], hash, T0 + 901 + 86400,
	                                     T0 + 1801 + 86400, &id),
	                 GW_OK);
	CHECK(q_int(f->peek, "SELECT count(*) FROM sign_in_links", 0) == 2, "the old one purged");
	hash_of("old", hash);
	CHECK(store_auth_link_take(f->st, hash, T0 + 902 + 86400, &id) == GW_ENOTFOUND,
	      "a purged link is unknown");
}

static void test_session(void **state)
{
	struct fixture *f = *state;
	char hash[CRYPTO_HASH_HEX], csrf[CRYPTO_TOKEN_LEN];
	struct store_user u;

	hash_of("cookie-1", hash);
	assert_int_equal(store_session_create(f->st, f->user[ANA], hash, "csrf-1", T0, T0 + 100),
	                 GW_OK);
	assert_int_equal(store_session_user(f->st, hash, T0 + 99, &u, csrf, sizeof(csrf)), GW_OK);
	assert_int_equal(u.id, f->user[ANA]);
	assert_int_equal(u.org_id, f->org1);
	assert_int_equal(u.roles, ROLE_TRAINER);
	assert_string_equal(u.email, "ana@example.com");
	assert_string_equal(csrf, "csrf-1");
	CHECK(store_session_user(f->st, hash, T0 + 100, &u, csrf, sizeof(csrf)) == GW_EUNAUTH,
	      "a session ends at expires_at");
	hash_of("cookie-2", hash);
	CHECK(store_session_user(f->st, hash, T0, &u, csrf, sizeof(csrf)) == GW_EUNAUTH,
	      "an unknown cookie");
	/* a new session purges the ended ones */
	assert_int_equal(store_session_create(f->st, f->user[ANA], hash, "csrf-2", T0 + 100,
	                                      T0 + 200),
	                 GW_OK);
	CHECK(q_int(f->peek, "SELECT count(*) FROM sessions", 0) == 1, "the ended session purged");
	assert_int_equal(store_session_end(f->st, hash), GW_OK);
	CHECK(store_session_user(f->st, hash, T0 + 101, &u, csrf, sizeof(csrf)) == GW_EUNAUTH,
	      "an ended session");
	assert_int_equal(store_session_end(f->st, hash), GW_OK);
	CHECK(q_int(f->peek, "SELECT count(*) FROM sessions", 0) == 0, "no session left");
}

/* what a user update does to the user's sessions (the trigger of migration 11) */
static const struct patch_case {
	const char *name;
	const char *patch; /* JSON */
	int ends;          /* the sessions end */
} patch_cases[] = {
    {"rename", "{\"name\": \"Ana L\"}", 0},
    {"roles still hold trainer", "{\"roles\": 6}", 0},
    {"active true again", "{\"active\": true}", 0},
    {"roles down to kiosk", "{\"roles\": 8}", 1},
    {"deactivated", "{\"active\": false}", 1},
};

static void test_user_update_ends_sessions(void **state)
{
	struct fixture *f = *state;
	char hash[CRYPTO_HASH_HEX], cookie[32], token[32];
	int64_t id;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(patch_cases); i++) {
		const struct patch_case *c = &patch_cases[i];
		json_t *patch = json_loads(c->patch, 0, NULL);
		int64_t left;

		print_message("update case: %s\n", c->name);
		assert_non_null(patch);
		/* back to an active trainer with one session and one unused link */
		assert_int_equal(sqlite3_exec(f->peek, "UPDATE users SET active = 1, roles = 4"
		                                       " WHERE email = 'ana@example.com';"
		                                       " DELETE FROM sessions;"
		                                       " DELETE FROM sign_in_links;",
		                              NULL, NULL, NULL),
		                 SQLITE_OK);
		snprintf(cookie, sizeof(cookie), "cookie-%zu", i);
		hash_of(cookie, hash);
		assert_int_equal(store_session_create(f->st, f->user[ANA], hash, "c", T0, T0 + 3600),
		                 GW_OK);
		snprintf(token, sizeof(token), "link-%zu", i);
		hash_of(token, hash);
		assert_int_equal(store_auth_link_add(f->st, f->org1, f->user[ANA], hash, T0, T0 + 900,
		                                     &id),
		                 GW_OK);
		assert_int_equal(store_user_update(f->st, f->org1, f->user[ANA], patch), GW_OK);
		left = q_int(f->peek, "SELECT count(*) FROM sessions WHERE user_id = ?1", f->user[ANA]);
		CHECK(left == (c->ends ? 0 : 1), "%s: %lld sessions left", c->name, (long long)left);
		left = q_int(f->peek, "SELECT count(*) FROM sign_in_links WHERE user_id = ?1",
		             f->user[ANA]);
		CHECK(left == (c->ends ? 0 : 1), "%s: %lld links left", c->name, (long long)left);
		json_decref(patch);
	}
}

static void test_lc_sign_in(void **state)
{
	struct fixture *f = *state;
	struct lc_env env = {.public_url = "https://book.example.com"};
	const char *nobody[] = {"nobody@example.com", "desk@example.com", "gone@example.com"};
	struct gw_err err = {0};
	struct lc_session s, s2;
	char *payload = NULL, *tok, token[64], key[64];
	sqlite3_stmt *q = NULL;
	bool queued;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(nobody); i++) {
		queued = true;
		CHECK_RC(lc_sign_in(f->st, &env, f->org1, nobody[i], &queued, &err), GW_OK, nobody[i]);
		CHECK(!queued, "%s: nothing queued", nobody[i]);
	}
	CHECK(q_int(f->peek, "SELECT count(*) FROM sign_in_links", 0) == 0, "no link for nobody");
	CHECK(q_int(f->peek, "SELECT count(*) FROM outbox", 0) == 0, "no email for nobody");

	assert_int_equal(lc_sign_in(f->st, &env, f->org1, "Ana@example.com", &queued, &err), GW_OK);
	assert_true(queued);
	CHECK(q_int(f->peek, "SELECT count(*) FROM sign_in_links WHERE user_id = ?1",
	            f->user[ANA]) == 1, "one link for Ana");
	assert_int_equal(sqlite3_prepare_v2(f->peek, "SELECT payload, dedupe_key FROM outbox"
	                                             " WHERE kind = 'sign_in' AND deadline_at = ?1",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	sqlite3_bind_int64(q, 1, T0 + LC_SIGN_IN_SECS);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	payload = strdup((const char *)sqlite3_column_text(q, 0));
	snprintf(key, sizeof(key), "sign_in:%lld:%lld", (long long)f->user[ANA],
	         (long long)q_int(f->peek, "SELECT id FROM sign_in_links", 0));
	assert_string_equal((const char *)sqlite3_column_text(q, 1), key);
	sqlite3_finalize(q);
	assert_non_null(payload);
	tok = strstr(payload, "https://book.example.com/login/");
	assert_non_null(tok);
	tok += strlen("https://book.example.com/login/");
	snprintf(token, sizeof(token), "%.*s", (int)strspn(tok, "abcdefghijklmnopqrstuvwxyz"
	                                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                                        "0123456789-_"),
	         tok);
	assert_int_equal(strlen(token), CRYPTO_TOKEN_LEN - 1);
	free(payload);

	/* the link opens one session, once */
	assert_int_equal(lc_login(f->st, token, &s, &err), GW_OK);
	assert_int_equal(s.user.id, f->user[ANA]);
	assert_int_equal(s.expires_at, T0 + LC_SESSION_SECS);
	assert_int_equal(strlen(s.cookie), CRYPTO_TOKEN_LEN - 1);
	assert_int_equal(strlen(s.csrf), CRYPTO_TOKEN_LEN - 1);
	CHECK(strcmp(s.cookie, s.csrf) != 0, "cookie and CSRF token differ");
	CHECK_RC(lc_login(f->st, token, &s2, &err), GW_EEXPIRED, "the link again");
	CHECK_RC(lc_login(f->st, "unknown", &s2, &err), GW_ENOTFOUND, "an unknown link");
	CHECK(q_int(f->peek, "SELECT count(*) FROM sessions", 0) == 1, "one session");
}

static void test_tpl_sign_in(void **state)
{
	struct tpl_env env = {.org_id = 1, .org_name = "Riverside Fitness",
	                      .org_timezone = "Europe/Berlin", .install_id = "inst",
	                      .public_url = "https://book.example.com", .now = T0};
	json_t *user = json_pack("{s:s, s:s}", "email", "ana@example.com", "name", "Ana <L>");
	json_t *p = NULL;
	const char *text, *html;

	(void)state;
	assert_int_equal(tpl_sign_in(&env, "sign_in:3:9", user,
	                             "https://book.example.com/login/TOKEN", T0 + 900, &p),
	                 GW_OK);
	assert_string_equal(json_string_value(json_object_get(p, "kind")), "sign_in");
	assert_string_equal(json_string_value(json_object_get(p, "subject")),
	                    "Your sign-in link for Riverside Fitness");
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "to"), "address")),
	                    "ana@example.com");
	text = json_string_value(json_object_get(p, "text"));
	html = json_string_value(json_object_get(p, "html"));
	assert_non_null(strstr(text, "https://book.example.com/login/TOKEN"));
	assert_non_null(strstr(text, "15 minutes"));
	assert_non_null(strstr(text, "10:15 (Europe/Berlin)"));
	assert_non_null(strstr(html, "href=\"https://book.example.com/login/TOKEN\""));
	assert_non_null(strstr(html, "Ana &lt;L&gt;"));
	assert_null(strstr(html, "Ana <L>"));
	json_decref(p);
	json_decref(user);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_signer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_purge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_update_ends_sessions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lc_sign_in, setup, teardown),
	    cmocka_unit_test(test_tpl_sign_in),
	};

	return cmocka_run_group_tests_name("auth", tests, group_setup, group_teardown);
}
