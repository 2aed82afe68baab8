/*
 * netguard.h - the outbound guard: which addresses the gateway's clients (SMTP, the REST
 * providers, the OAuth token calls) may connect to.
 *
 * An organisation admin is a tenant, not the operator: the host and URLs of its provider
 * settings must not reach the operator's own network (docs/design.md "Security"). By default
 * only public addresses are allowed; the operator adds ranges with `serve --allow-outbound CIDR`.
 * The check runs on the address libcurl is about to connect to, after DNS (every address of a
 * name is checked, so a name that resolves to 127.0.0.1 is refused like the literal), through
 * CURLOPT_OPENSOCKETFUNCTION: a refused address never sees a SYN, so an open port and a closed
 * one give the same answer, NETGUARD_REFUSED.
 *
 * Threading: a struct netguard belongs to the one CURL handle it is installed on.
 */
#ifndef NETGUARD_H
#define NETGUARD_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>

#include "gw.h"

#define NETGUARD_MAX     32 /* --allow-outbound ranges */
#define NETGUARD_REFUSED "the address is not allowed for outbound connections"

struct netguard_cidr {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network, host bits cleared (4 bytes used for AF_INET) */
	int prefix;             /* 0..32 or 0..128 */
};

struct netguard {
	struct netguard_cidr allow[NETGUARD_MAX]; /* what the operator allows beyond public */
	int nallow;
	/* of the transfer in progress (netguard_curl resets them) */
	int refused; /* addresses refused */
	int opened;  /* sockets opened */
};

/* netguard_cidr_parse - "a.b.c.d/n", "v6::/n" or a bare address (/32, /128). GW_EINVAL for
 * anything else. Host bits are cleared. */
gw_rc netguard_cidr_parse(const char *s, struct netguard_cidr *out);

/* netguard_public - is addr (4 bytes for AF_INET, 16 for AF_INET6) a public unicast address?
 * Refused: this network 0/8, RFC 1918, CGNAT 100.64/10, loopback, link-local, IETF 192.0.0/24,
 * documentation and benchmarking ranges, 6to4 relay 192.88.99/24, multicast, 240/4 and
 * broadcast; IPv6 outside 2000::/3 (::, ::1, ULA fc00::/7, link-local fe80::/10, multicast),
 * 2001::/23 (Teredo, ORCHID, benchmarking), 2001:db8::/32, 3fff::/20; IPv4-mapped ::ffff:0:0/96,
 * NAT64 64:ff9b::/96 and 6to4 2002::/16 by the IPv4 address they embed. */
bool netguard_public(int family, const unsigned char *addr);

/* netguard_allowed - may a connection go to this address: public, or in the allow list (an
 * IPv4-mapped IPv6 address also matches IPv4 ranges). */
bool netguard_allowed(const struct netguard *g, int family, const unsigned char *addr);

/* netguard_from_json - fill g's allow list from a JSON array of CIDR strings (a provider
 * config's "allow_outbound", which the dispatcher sets from --allow-outbound); NULL or absent
 * is an empty list. GW_ECONFIG for anything else. */
gw_rc netguard_from_json(const json_t *list, struct netguard *g);

/* netguard_curl - install the guard on h (CURLOPT_OPENSOCKETFUNCTION, and no proxy from the
 * environment: a proxy would connect on our behalf where the guard cannot see) and reset its
 * counters. g is borrowed for as long as h may connect. Call again after curl_easy_reset(). */
CURLcode netguard_curl(struct netguard *g, CURL *h);

/* netguard_blocked - did the last transfer fail only because the guard refused every address
 * it was offered? */
bool netguard_blocked(const struct netguard *g);

#endif
