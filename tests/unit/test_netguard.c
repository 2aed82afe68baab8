/*
 * test_netguard.c - the outbound guard's address classifier and allow list (common/netguard.c):
 * tables of IPv4 and IPv6 addresses with the verdict of the IANA special-purpose registries,
 * CIDR parsing (good and bad), and the allow list's matching (IPv4-mapped addresses included).
 * No network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/netguard.h"

struct addr_case {
	const char *addr;
	bool is_public;
};

static const struct addr_case v4_cases[] = {
        {"8.8.8.8", true},          {"1.1.1.1", true},          {"93.184.216.34", true},
        {"0.0.0.0", false},         {"0.1.2.3", false},         {"10.0.0.1", false},
        {"10.255.255.255", false},  {"11.0.0.1", true},         {"100.63.255.255", true},
        {"100.64.0.1", false}, /* CGNAT */
        {"100.127.255.255", false}, {"100.128.0.0", true},      {"127.0.0.1", false},
        {"127.255.255.254", false}, {"169.254.169.254", false}, /* cloud metadata */
        {"172.15.255.255", true},   {"172.16.0.1", false},      {"172.31.255.255", false},
        {"172.32.0.0", true},       {"192.0.0.8", false},       {"192.0.2.1", false},
        {"192.88.99.1", false},     {"192.167.255.255", true},  {"192.168.1.1", false},
        {"192.169.0.0", true},      {"198.18.0.1", false},      {"198.19.255.255", false},
        {"198.20.0.0", true},       {"198.51.100.7", false},    {"203.0.113.9", false},
        {"223.255.255.255", true},  {"224.0.0.1", false},       {"239.255.255.250", false},
        {"240.0.0.1", false},       {"255.255.255.255", false},
};

static const struct addr_case v6_cases[] = {
        {"2001:4860:4860::8888", true},
        {"2606:4700:4700::1111", true},
        {"2a00:1450:4001:82a::200e", true},
        {"::", false},
        {"::1", false},
        {"::127.0.0.1", false},      /* IPv4-compatible (deprecated) */
        {"::ffff:127.0.0.1", false}, /* IPv4-mapped loopback */
        {"::ffff:10.1.2.3", false},
        {"::ffff:169.254.169.254", false},
        {"::ffff:8.8.8.8", true},
        {"64:ff9b::10.0.0.1", false}, /* NAT64 of a private address */
        {"64:ff9b::8.8.8.8", true},
        {"64:ff9b:1::1", false},
        {"100::1", false},
        {"2001::1", false}, /* Teredo */
        {"2001:db8::1", false},
        {"2001:10::1", false},        /* ORCHID */
        {"2002:7f00:1::1", false},    /* 6to4 of 127.0.0.1 */
        {"2002:c000:0204::1", false}, /* 6to4 of 192.0.2.4, TEST-NET-1 */
        {"2002:0808:0808::1", true},  /* 6to4 of 8.8.8.8 */
        {"3fff::1", false},
        {"fc00::1", false},
        {"fd12:3456:789a::1", false},
        {"fe80::1", false},
        {"febf::1", false},
        {"fec0::1", false},
        {"ff02::1", false},
        {"4000::1", false},
};

/* expect - the verdict for one address of family */
static void expect(int family, const struct addr_case *c, bool want)
{
	unsigned char a[16];

	if(inet_pton(family, c->addr, a) != 1)
		fail_msg("test table: %s does not parse", c->addr);
	if(netguard_public(family, a) != want)
		fail_msg("%s: public %d, want %d", c->addr, !want, want);
}

static void test_v4(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(v4_cases) / sizeof(v4_cases[0]); i++)
		expect(AF_INET, &v4_cases[i], v4_cases[i].is_public);
}

static void test_v6(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(v6_cases) / sizeof(v6_cases[0]); i++)
		expect(AF_INET6, &v6_cases[i], v6_cases[i].is_public);
	assert_false(netguard_public(AF_UNIX, (const unsigned char *)"\0\0\0\0"));
}

struct cidr_case {
	const char *text;
	bool ok;
	int family, prefix;
	const char *network; /* after the host bits are cleared */
};

static const struct cidr_case cidr_cases[] = {
        {"127.0.0.0/8", true, AF_INET, 8, "127.0.0.0"},
        {"10.1.2.3/8", true, AF_INET, 8, "10.0.0.0"},
        {"192.168.1.77/30", true, AF_INET, 30, "192.168.1.76"},
        {"0.0.0.0/0", true, AF_INET, 0, "0.0.0.0"},
        {"203.0.113.5", true, AF_INET, 32, "203.0.113.5"},
        {"fd00::/8", true, AF_INET6, 8, "fd00::"},
        {"fd12:3456::1/33", true, AF_INET6, 33, "fd12:3456::"},
        {"::1", true, AF_INET6, 128, "::1"},
        {"::/0", true, AF_INET6, 0, "::"},
        {"127.0.0.0/33", false, 0, 0, NULL},
        {"fd00::/129", false, 0, 0, NULL},
        {"127.0.0.0/", false, 0, 0, NULL},
        {"127.0.0.0/-1", false, 0, 0, NULL},
        {"127.0.0.0/08", false, 0, 0, NULL},
        {"127.0.0.0/8x", false, 0, 0, NULL},
        {"127.0.0/8", false, 0, 0, NULL},
        {"localhost/8", false, 0, 0, NULL},
        {"", false, 0, 0, NULL},
        {"/8", false, 0, 0, NULL},
        {"1.2.3.4 /8", false, 0, 0, NULL},
        {"999.0.0.0/8", false, 0, 0, NULL},
};

static void test_cidr_parse(void **state)
{
	struct netguard_cidr c;
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(cidr_cases) / sizeof(cidr_cases[0]); i++) {
		const struct cidr_case *t = &cidr_cases[i];
		gw_rc rc = netguard_cidr_parse(t->text, &c);
		unsigned char want[16] = {0};

		if((rc == GW_OK) != t->ok)
			fail_msg("%s: rc %d", t->text, rc);
		if(!t->ok)
			continue;
		assert_int_equal(c.family, t->family);
		assert_int_equal(c.prefix, t->prefix);
		assert_int_equal(inet_pton(t->family, t->network, want), 1);
		if(memcmp(c.addr, want, t->family == AF_INET ? 4 : 16) != 0)
			fail_msg("%s: network differs from %s", t->text, t->network);
	}
	assert_int_equal(netguard_cidr_parse(NULL, &c), GW_EINVAL);
}

struct allow_case {
	int family;
	const char *addr;
	bool allowed;
};

static void test_allow_list(void **state)
{
	static const struct allow_case cases[] = {
	        {AF_INET, "127.0.0.1", true},         /* 127.0.0.0/8 */
	        {AF_INET6, "::ffff:127.0.0.1", true}, /* mapped: matches the IPv4 range */
	        {AF_INET, "10.0.0.5", false},
	        {AF_INET, "10.20.30.40", true}, /* 10.20.0.0/16 */
	        {AF_INET, "8.8.8.8", true},     /* public */
	        {AF_INET6, "fd00:1::2", true},  /* fd00:1::/32 */
	        {AF_INET6, "fd00:2::2", false},
	        {AF_INET6, "::1", false},
	        {AF_INET6, "2001:4860:4860::8888", true},
	        {AF_INET, "169.254.169.254", false},
	};
	struct netguard g;
	json_t *list = json_pack("[s, s, s]", "127.0.0.0/8", "10.20.0.0/16", "fd00:1::/32");
	unsigned char a[16];
	size_t i;

	(void)state;
	assert_int_equal(netguard_from_json(list, &g), GW_OK);
	assert_int_equal(g.nallow, 3);
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(inet_pton(cases[i].family, cases[i].addr, a), 1);
		if(netguard_allowed(&g, cases[i].family, a) != cases[i].allowed)
			fail_msg("%s: allowed %d", cases[i].addr, !cases[i].allowed);
	}
	json_decref(list);
	/* without a list: public only */
	assert_int_equal(netguard_from_json(NULL, &g), GW_OK);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", a), 1);
	assert_false(netguard_allowed(&g, AF_INET, a));
	assert_false(netguard_allowed(NULL, AF_INET, a));
	/* what is not a list of CIDRs */
	list = json_pack("[s]", "10.0.0.0/40");
	assert_int_equal(netguard_from_json(list, &g), GW_ECONFIG);
	json_decref(list);
	list = json_pack("[i]", 10);
	assert_int_equal(netguard_from_json(list, &g), GW_ECONFIG);
	json_decref(list);
	list = json_string("10.0.0.0/8");
	assert_int_equal(netguard_from_json(list, &g), GW_ECONFIG);
	json_decref(list);
	list = json_array();
	for(i = 0; i <= NETGUARD_MAX; i++)
		json_array_append_new(list, json_string("10.0.0.0/8"));
	assert_int_equal(netguard_from_json(list, &g), GW_ECONFIG);
	json_decref(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v4),
	        cmocka_unit_test(test_v6),
	        cmocka_unit_test(test_cidr_parse),
	        cmocka_unit_test(test_allow_list),
	};

	return cmocka_run_group_tests_name("netguard", tests, NULL, NULL);
}
