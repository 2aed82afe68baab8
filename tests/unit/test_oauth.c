/*
 * test_oauth.c - the OAuth 2.0 client pieces (common/oauth.h) and the store's authorization
 * requests in flight (store_oauth_state_put/_take): the PKCE S256 challenge against RFC 7636
 * appendix B's test vector, fresh verifiers, the authorization URL's encoding, and a state's
 * life (good until it expires, taken once, expired at its 10 minutes, bound to its user).
 *
 * Tables of cases; the store cases run against a real database file in a temp folder.
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crypto.h"
#include "common/oauth.h"
#include "store/store.h"

#define T0 ((time_t)1796025600) /* 2026-11-30T08:00:00Z */

/* ---- PKCE ---- */

struct pkce_case {
	const char *name, *verifier, *challenge;
};

static const struct pkce_case pkce_cases[] = {
        /* RFC 7636 appendix B */
        {"rfc7636 appendix B", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
         "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
        /* base64url of SHA-256(""), no padding */
        {"empty", "", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
};

static void test_pkce_challenge(void **state)
{
	char out[OAUTH_CHALLENGE_LEN];
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(pkce_cases) / sizeof(pkce_cases[0]); i++) {
		print_message("pkce case: %s\n", pkce_cases[i].name);
		oauth_pkce_challenge(pkce_cases[i].verifier, out);
		assert_string_equal(out, pkce_cases[i].challenge);
	}
}

static void test_pkce_verifier(void **state)
{
	char a[OAUTH_VERIFIER_LEN], b[OAUTH_VERIFIER_LEN];
	size_t i;

	(void)state;
	assert_int_equal(oauth_pkce_verifier(a), GW_OK);
	assert_int_equal(oauth_pkce_verifier(b), GW_OK);
	/* RFC 7636 4.1: 43..128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~" */
	assert_int_equal(strlen(a), 43);
	for(i = 0; a[i]; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                       "0123456789-._~",
		                       a[i]));
	assert_string_not_equal(a, b);
}

struct url_case {
	const char *name, *base;
	const char *params[7];
	const char *want;
};

static const struct url_case url_cases[] = {
        {"plain base",
         "https://a.test/auth",
         {"scope", "x y", "state", "s_1-", NULL},
         "https://a.test/auth?scope=x%20y&state=s_1-"},
        {"base with a query",
         "https://a.test/auth?tenant=1",
         {"redirect_uri", "http://127.0.0.1:8080/oauth/callback", NULL},
         "https://a.test/auth?tenant=1&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2F"
         "callback"},
        {"no parameters", "https://a.test/auth", {NULL}, "https://a.test/auth"},
};

static void test_authorize_url(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		char *url = NULL;

		print_message("url case: %s\n", url_cases[i].name);
		assert_int_equal(oauth_authorize_url(url_cases[i].base, url_cases[i].params, &url),
		                 GW_OK);
		assert_string_equal(url, url_cases[i].want);
		free(url);
	}
}

/* ---- the state's life in the store ---- */

struct state_case {
	const char *name;
	const char *hash; /* the state taken */
	time_t at;        /* when */
	gw_rc rc;
};

/* two states are put at T0 (expiring T0 + 600): "a" and "b"; "old" at T0 - 700 (expired
 * T0 - 100, purged by the later puts). Then, in order: */
static const struct state_case state_cases[] = {
        {"a, 599 s later: good", "a", T0 + 599, GW_OK},
        {"a again: used", "a", T0 + 599, GW_ENOTFOUND},
        {"unknown", "zzz", T0 + 1, GW_ENOTFOUND},
        {"b at 600 s: expired", "b", T0 + 600, GW_EEXPIRED},
        {"b again: gone", "b", T0 + 1, GW_ENOTFOUND},
        {"old: purged by the put", "old", T0 - 200, GW_ENOTFOUND},
};

static void test_state_expiry(void **state)
{
	char dir[] = "/tmp/test_oauth.XXXXXX", path[128], hash[CRYPTO_HASH_HEX];
	struct store *st = NULL;
	struct gw_err err = {0};
	struct store_user_new nu = {"tia@a.test", "Tia", "UTC", 4, NULL, false, hash};
	int64_t org = 0, other = 0, user = 0;
	json_t *skills = json_array(), *got = NULL;
	size_t i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db.sqlite", dir);
	assert_int_equal(store_open(path, true, &st, &err), GW_OK);
	assert_int_equal(store_org_create(st, "Acme", "UTC", &org), GW_OK);
	assert_int_equal(store_org_create(st, "Other", "UTC", &other), GW_OK);
	nu.skills = skills;
	crypto_sha256_hex("tok", 3, hash);
	assert_int_equal(store_user_create(st, org, &nu, &user), GW_OK);
	assert_int_equal(store_oauth_state_put(st, "old", org, user, "google", "sealed:v0",
	                                       T0 - 700, T0 - 100),
	                 GW_OK);
	assert_int_equal(
	        store_oauth_state_put(st, "a", org, user, "google", "sealed:v1", T0, T0 + 600),
	        GW_OK);
	assert_int_equal(
	        store_oauth_state_put(st, "b", org, user, "outlook", "sealed:v2", T0, T0 + 600),
	        GW_OK);
	/* a state is bound to a user of the organisation */
	assert_int_equal(
	        store_oauth_state_put(st, "c", other, user, "google", "sealed:v3", T0, T0 + 600),
	        GW_ENOTFOUND);
	for(i = 0; i < sizeof(state_cases) / sizeof(state_cases[0]); i++) {
		const struct state_case *c = &state_cases[i];
		gw_rc rc;

		print_message("state case: %s\n", c->name);
		rc = store_oauth_state_take(st, c->hash, c->at, &got);
		if(rc != c->rc)
			fail_msg("%s: rc %s, want %s", c->name, gw_rc_name(rc), gw_rc_name(c->rc));
		if(rc == GW_OK) {
			assert_int_equal(json_integer_value(json_object_get(got, "org_id")), org);
			assert_int_equal(json_integer_value(json_object_get(got, "user_id")), user);
			assert_string_equal(json_string_value(json_object_get(got, "provider")),
			                    "google");
			assert_string_equal(json_string_value(json_object_get(got, "verifier")),
			                    "sealed:v1");
		} else {
			assert_null(got);
		}
		json_decref(got);
		got = NULL;
	}
	json_decref(skills);
	store_close(st);
	unlink(path);
	snprintf(path, sizeof(path), "%s/db.sqlite-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/db.sqlite-shm", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pkce_challenge),
	        cmocka_unit_test(test_pkce_verifier),
	        cmocka_unit_test(test_authorize_url),
	        cmocka_unit_test(test_state_expiry),
	};

	return cmocka_run_group_tests_name("oauth", tests, NULL, NULL);
}
