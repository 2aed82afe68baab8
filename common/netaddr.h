/*
 * netaddr.h - IPv4 ranges (CIDR) and the client's address behind trusted proxies
 * (serve --trust-proxy CIDR and X-Forwarded-For).
 *
 * Addresses are uint32_t in host byte order. Threading: reentrant.
 */
#ifndef NETADDR_H
#define NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/gw.h"

#define NETADDR_LEN 16 /* "255.255.255.255" and its NUL */

struct cidr4 {
	uint32_t net;  /* the network, already masked */
	uint32_t mask; /* prefix bits set */
};

/* netaddr_parse - a dotted quad ("192.0.2.1") into *addr; GW_EINVAL for anything else. */
gw_rc netaddr_parse(const char *s, uint32_t *addr);

/* netaddr_format - *addr as a dotted quad into buf (NETADDR_LEN bytes). */
void netaddr_format(uint32_t addr, char buf[NETADDR_LEN]);

/* cidr4_parse - "A.B.C.D/N" (N 0..32; host bits must be 0) or a bare address (/32) into *out;
 * GW_EINVAL with a message in err (may be NULL). */
gw_rc cidr4_parse(const char *s, struct cidr4 *out, struct gw_err *err);

/* cidr4_contains - is addr inside one of the n ranges? */
bool cidr4_contains(const struct cidr4 *ranges, size_t n, uint32_t addr);

/* netaddr_client - the client's address: the peer itself unless the peer is inside one of the
 * n trusted ranges; then the right-most address of the X-Forwarded-For values (xff: nxff header
 * values in the order received, each a comma-separated list) that is not inside a trusted range.
 * A value that is not an IPv4 address ends the walk at the last address read (it was written by
 * whoever is left of a trusted proxy, so it proves nothing); a list of trusted proxies only gives
 * its left-most one. */
uint32_t netaddr_client(uint32_t peer, const char *const *xff, size_t nxff,
                        const struct cidr4 *trusted, size_t n);

#endif
