/*
 * test_ratelimit.c - the token buckets (common/ratelimit.h) and the client's address behind
 * trusted proxies (common/netaddr.h). Tables of steps on a made-up monotonic clock with the
 * answers worked out by hand: burst, refill, Retry-After, keys and kinds apart, and eviction
 * keeping the table at its fixed size under a flood of addresses; CIDR parsing and the
 * right-most untrusted X-Forwarded-For address.
 *
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

#include "common/netaddr.h"
#include "common/ratelimit.h"

#define CHECK(cond, ...)                       \
	do {                                   \
		if(!(cond))                    \
			fail_msg(__VA_ARGS__); \
	} while(0)

/* ---- token buckets ---- */

struct step {
	int64_t at_ms;
	enum rl_kind kind;
	const char *key;
	gw_rc want;
	unsigned retry; /* the Retry-After of a GW_ERATE */
};

struct bucket_case {
	const char *name;
	unsigned per_minute, burst;
	struct step steps[16];
	size_t nsteps;
};

#define OKAT(t, k)                                \
	{                                         \
		t, RL_INTAKE_ADDRESS, k, GW_OK, 0 \
	}
#define NOAT(t, k, s)                                \
	{                                            \
		t, RL_INTAKE_ADDRESS, k, GW_ERATE, s \
	}

static const struct bucket_case bucket_cases[] = {
        /* 5 a minute: a burst of 5, then one every 12 s; the refused one waits the rest of 12 s */
        {"burst then refuse",
         5,
         5,
         {OKAT(0, "a"), OKAT(1, "a"), OKAT(2, "a"), OKAT(3, "a"), OKAT(4, "a"), NOAT(5, "a", 12),
          NOAT(6000, "a", 6), NOAT(11001, "a", 1), OKAT(12010, "a"), NOAT(12020, "a", 12)},
         10},
        /* a refused request takes nothing: waiting out Retry-After is enough */
        {"refused ones cost nothing",
         60,
         1,
         {OKAT(0, "a"), NOAT(100, "a", 1), NOAT(500, "a", 1), NOAT(900, "a", 1), OKAT(1001, "a")},
         5},
        /* the bucket never holds more than burst, however long it was left alone */
        {"refill caps at the burst",
         60,
         2,
         {OKAT(0, "a"), OKAT(0, "a"), NOAT(0, "a", 1), OKAT(3600000, "a"), OKAT(3600000, "a"),
          NOAT(3600000, "a", 1)},
         6},
        /* 1 a minute: Retry-After counts whole seconds up, never 0 */
        {"slow rate, whole seconds",
         1,
         1,
         {OKAT(0, "a"), NOAT(0, "a", 60), NOAT(59500, "a", 1), OKAT(60001, "a")},
         4},
        /* keys and kinds are separate buckets */
        {"keys and kinds apart",
         60,
         1,
         {OKAT(0, "a"),
          NOAT(0, "a", 1),
          OKAT(0, "b"),
          {0, RL_INTAKE_ORG, "a", GW_OK, 0},
          {0, RL_TOKEN_ROUTE, "a", GW_OK, 0},
          {0, RL_TOKEN_ROUTE, "a", GW_ERATE, 1}},
         6},
        /* a clock read that goes back (another thread's earlier reading) refills nothing */
        {"time going back", 60, 1, {OKAT(5000, "a"), NOAT(4000, "a", 1), OKAT(6001, "a")}, 3},
        /* keys longer than the slot are told apart by their hash */
        {"long keys",
         60,
         1,
         {OKAT(0, "someone-with-a-very-long-address-indeed@a-rather-long-domain.example.test"),
          OKAT(0, "someone-with-a-very-long-address-indeed@a-rather-long-domain.example.tesu"),
          NOAT(0, "someone-with-a-very-long-address-indeed@a-rather-long-domain.example.test", 1)},
         3},
};

/* test_buckets - every table step gives the expected answer */
static void test_buckets(void **state)
{
	size_t i, j;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(bucket_cases); i++) {
		const struct bucket_case *bc = &bucket_cases[i];
		struct rl_table *t = rl_create(1024);

		CHECK(t != NULL, "rl_create");
		for(j = 0; j < bc->nsteps; j++) {
			const struct step *s = &bc->steps[j];
			unsigned retry = 0;
			gw_rc rc = rl_take(t, s->kind, s->key, bc->per_minute, bc->burst, s->at_ms,
			                   &retry);

			CHECK(rc == s->want, "%s, step %zu: rc %s, want %s", bc->name, j,
			      gw_rc_name(rc), gw_rc_name(s->want));
			if(rc == GW_ERATE)
				CHECK(retry == s->retry, "%s, step %zu: Retry-After %u, want %u",
				      bc->name, j, retry, s->retry);
		}
		rl_free(t);
	}
}

/* test_eviction - a flood of addresses never grows the table, and the newest keys are kept */
static void test_eviction(void **state)
{
	struct rl_table *t = rl_create(256);
	size_t used = 0, slots = 0, i;
	uint64_t evicted = 0;
	char key[32];

	(void)state;
	CHECK(t != NULL, "rl_create");
	for(i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "10.%zu.%zu.%zu", (i >> 16) & 255, (i >> 8) & 255,
		         i & 255);
		CHECK(rl_take(t, RL_TOKEN_ROUTE, key, 1, 1, (int64_t)i, NULL) == GW_OK,
		      "a new address has a full bucket (%s)", key);
	}
	rl_stats(t, &used, &slots, &evicted);
	CHECK(slots == 256, "the table keeps its %zu slots", slots);
	CHECK(used <= slots, "in use %zu of %zu", used, slots);
	CHECK(evicted >= 100000 - slots, "evictions %llu", (unsigned long long)evicted);
	/* the last address is still there (least recently used go first): refused now */
	CHECK(rl_take(t, RL_TOKEN_ROUTE, key, 1, 1, 100000, NULL) == GW_ERATE,
	      "the most recent key survives the flood");
	rl_free(t);
}

/* ---- CIDR ---- */

struct cidr_case {
	const char *in;
	gw_rc rc;
	uint32_t net, mask;
};

static const struct cidr_case cidr_cases[] = {
        {"127.0.0.0/8", GW_OK, 0x7f000000u, 0xff000000u},
        {"10.0.0.0/8", GW_OK, 0x0a000000u, 0xff000000u},
        {"192.0.2.7", GW_OK, 0xc0000207u, 0xffffffffu},
        {"192.0.2.7/32", GW_OK, 0xc0000207u, 0xffffffffu},
        {"0.0.0.0/0", GW_OK, 0, 0},
        {"172.16.0.0/12", GW_OK, 0xac100000u, 0xfff00000u},
        {"10.0.0.1/8", GW_EINVAL, 0, 0}, /* host bits set */
        {"10.0.0.0/33", GW_EINVAL, 0, 0},
        {"10.0.0.0/", GW_EINVAL, 0, 0},
        {"10.0.0.0/-1", GW_EINVAL, 0, 0},
        {"10.0.0.0/8x", GW_EINVAL, 0, 0},
        {"10.0.0/8", GW_EINVAL, 0, 0},
        {"010.0.0.0/8", GW_EINVAL, 0, 0},
        {"::1/128", GW_EINVAL, 0, 0},
        {"", GW_EINVAL, 0, 0},
        {"/8", GW_EINVAL, 0, 0},
        {"example.com/8", GW_EINVAL, 0, 0},
};

/* test_cidr - parsing and containment */
static void test_cidr(void **state)
{
	struct cidr4 r;
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(cidr_cases); i++) {
		const struct cidr_case *cc = &cidr_cases[i];
		struct gw_err err = {0};
		gw_rc rc = cidr4_parse(cc->in, &r, &err);

		CHECK(rc == cc->rc, "%s: rc %s", cc->in, gw_rc_name(rc));
		if(rc == GW_OK)
			CHECK(r.net == cc->net && r.mask == cc->mask, "%s: %08x/%08x", cc->in,
			      r.net, r.mask);
		else
			CHECK(err.message[0] != '\0', "%s: a message", cc->in);
	}
	CHECK(cidr4_parse("10.0.0.0/8", &r, NULL) == GW_OK, "parse");
	CHECK(cidr4_contains(&r, 1, 0x0a0b0c0du), "10.11.12.13 in 10/8");
	CHECK(!cidr4_contains(&r, 1, 0x0b000000u), "11.0.0.0 not in 10/8");
	CHECK(!cidr4_contains(&r, 0, 0x0a000001u), "no ranges, nothing inside");
}

/* ---- X-Forwarded-For ---- */

struct xff_case {
	const char *name;
	const char *peer;
	const char *xff[3];
	size_t nxff;
	const char *want;
};

static const struct xff_case xff_cases[] = {
        {"untrusted peer: its own address", "198.51.100.9", {"203.0.113.1"}, 1, "198.51.100.9"},
        {"trusted peer, one client", "10.0.0.2", {"203.0.113.1"}, 1, "203.0.113.1"},
        {"trusted peer, no header", "10.0.0.2", {NULL}, 0, "10.0.0.2"},
        {"the right-most untrusted wins", "10.0.0.2", {"1.1.1.1, 203.0.113.1"}, 1, "203.0.113.1"},
        {"trusted hops are skipped",
         "10.0.0.2",
         {"203.0.113.1, 10.0.0.7,10.0.0.8"},
         1,
         "203.0.113.1"},
        {"several headers read as one list",
         "10.0.0.2",
         {"1.1.1.1", "203.0.113.1, 10.9.9.9"},
         2,
         "203.0.113.1"},
        {"blanks and tabs around items", "10.0.0.2", {" 203.0.113.1 \t"}, 1, "203.0.113.1"},
        {"garbage stops at the last trusted hop",
         "10.0.0.2",
         {"1.1.1.1, nonsense, 10.0.0.7"},
         1,
         "10.0.0.7"},
        {"garbage at the right: the peer", "10.0.0.2", {"203.0.113.1, unknown"}, 1, "10.0.0.2"},
        {"an empty item: the peer", "10.0.0.2", {"203.0.113.1,"}, 1, "10.0.0.2"},
        {"IPv6 is not believed", "10.0.0.2", {"2001:db8::1"}, 1, "10.0.0.2"},
        {"only trusted: the left-most", "10.0.0.2", {"10.0.0.5, 10.0.0.6"}, 1, "10.0.0.5"},
        {"an over-long item: the peer", "10.0.0.2", {"203.0.113.1111111"}, 1, "10.0.0.2"},
};

/* test_xff - the client behind trusted proxies */
static void test_xff(void **state)
{
	struct cidr4 trusted[2];
	size_t i;

	(void)state;
	CHECK(cidr4_parse("10.0.0.0/8", &trusted[0], NULL) == GW_OK, "parse");
	CHECK(cidr4_parse("192.168.1.1", &trusted[1], NULL) == GW_OK, "parse");
	for(i = 0; i < GW_ARRAY_LEN(xff_cases); i++) {
		const struct xff_case *xc = &xff_cases[i];
		char got[NETADDR_LEN];
		uint32_t peer, addr;

		CHECK(netaddr_parse(xc->peer, &peer) == GW_OK, "%s: peer", xc->name);
		addr = netaddr_client(peer, xc->xff, xc->nxff, trusted, 2);
		netaddr_format(addr, got);
		CHECK(strcmp(got, xc->want) == 0, "%s: got %s, want %s", xc->name, got, xc->want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_buckets),
	        cmocka_unit_test(test_eviction),
	        cmocka_unit_test(test_cidr),
	        cmocka_unit_test(test_xff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
