/*
 * netaddr.c - IPv4 ranges and the client's address behind trusted proxies (see netaddr.h).
 *
 * Entry points: netaddr_parse(), netaddr_format(), cidr4_parse(), cidr4_contains(),
 * netaddr_client(). Threading: reentrant.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* netaddr_parse - a dotted quad, nothing else (inet_pton: no octal, no short forms) */
gw_rc netaddr_parse(const char *s, uint32_t *addr)
{
	struct in_addr in;

	if(!s || strlen(s) >= NETADDR_LEN || inet_pton(AF_INET, s, &in) != 1)
		return GW_EINVAL;
	*addr = ntohl(in.s_addr);
	return GW_OK;
}

/* netaddr_format - a dotted quad */
void netaddr_format(uint32_t addr, char buf[NETADDR_LEN])
{
	snprintf(buf, NETADDR_LEN, "%u.%u.%u.%u", (addr >> 24) & 255u, (addr >> 16) & 255u,
	         (addr >> 8) & 255u, addr & 255u);
}

/* cidr4_parse - "A.B.C.D/N" or "A.B.C.D" */
gw_rc cidr4_parse(const char *s, struct cidr4 *out, struct gw_err *err)
{
	char host[NETADDR_LEN];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	uint32_t addr, mask;
	long bits = 32;

	if(hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if(netaddr_parse(host, &addr))
		goto bad;
	if(slash) {
		char *end;

		if(slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 2)
			goto bad;
		bits = strtol(slash + 1, &end, 10);
		if(*end || bits < 0 || bits > 32)
			goto bad;
	}
	mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
	if(addr & ~mask)
		return gw_err_set(
		        err, GW_EINVAL, "trust-proxy",
		        "%s has host bits set: the range is written with its network address "
		        "(for example 10.0.0.0/8)",
		        s);
	out->net = addr;
	out->mask = mask;
	return GW_OK;
bad:
	return gw_err_set(err, GW_EINVAL, "trust-proxy",
	                  "'%s' is not an IPv4 range such as 10.0.0.0/8 or 192.0.2.7", s);
}

/* cidr4_contains - inside one of the ranges */
bool cidr4_contains(const struct cidr4 *ranges, size_t n, uint32_t addr)
{
	size_t i;

	for(i = 0; i < n; i++)
		if((addr & ranges[i].mask) == ranges[i].net)
			return true;
	return false;
}

/* netaddr_client - walk X-Forwarded-For from the right */
uint32_t netaddr_client(uint32_t peer, const char *const *xff, size_t nxff,
                        const struct cidr4 *trusted, size_t n)
{
	uint32_t cur = peer;
	size_t h;

	if(!cidr4_contains(trusted, n, peer))
		return peer;
	for(h = nxff; h-- > 0;) {
		const char *v = xff[h], *end = v + strlen(v);

		while(end > v) {
			const char *start = end, *a, *b;
			char item[NETADDR_LEN];
			uint32_t addr;

			while(start > v && start[-1] != ',')
				start--;
			/* trim blanks around the item */
			for(a = start; a < end && (*a == ' ' || *a == '\t'); a++)
				;
			for(b = end; b > a && (b[-1] == ' ' || b[-1] == '\t'); b--)
				;
			if(b == a || (size_t)(b - a) >= sizeof(item))
				return cur;
			memcpy(item, a, (size_t)(b - a));
			item[b - a] = '\0';
			if(netaddr_parse(item, &addr))
				return cur;
			cur = addr;
			if(!cidr4_contains(trusted, n, addr))
				return addr;
			end = start > v ? start - 1 : v;
		}
	}
	return cur;
}
