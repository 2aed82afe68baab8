/*
 * netguard.c - the outbound guard (netguard.h): an address classifier, the operator's allow
 * list, and the libcurl hook that applies them to every connection.
 *
 * Entry points: netguard_cidr_parse(), netguard_public(), netguard_allowed(),
 * netguard_from_json(), netguard_curl(), netguard_blocked().
 *
 * The hook is CURLOPT_OPENSOCKETFUNCTION (libcurl 7.17.1 and later; this build has 7.88.1):
 * "The callback gets the resolved peer address as the address argument and is allowed to
 * modify the address or refuse to connect completely ... If CURL_SOCKET_BAD is returned by the
 * callback then libcurl treats it as a failed connection and tries to connect a different IP
 * address" (https://curl.se/libcurl/c/CURLOPT_OPENSOCKETFUNCTION.html). It runs before
 * connect(2) on every address DNS gave, so it checks the address actually connected to, and a
 * refused one is never touched. CURLOPT_PREREQFUNCTION (7.80.0) names the connected IP too, but
 * only after the TCP (and TLS) handshake: too late to keep a port scan from working.
 *
 * Ranges: IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and updates), the
 * entries that are not "Globally Reachable".
 *
 * Threading: no shared state; a struct netguard belongs to one CURL handle.
 */
#include "netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct range {
	unsigned char addr[16];
	int prefix;
};

/* IPv4 ranges that are never public */
static const struct range v4_denied[] = {
        {{0, 0, 0, 0}, 8},       /* "this network", RFC 791 */
        {{10, 0, 0, 0}, 8},      /* private, RFC 1918 */
        {{100, 64, 0, 0}, 10},   /* shared address space (CGNAT), RFC 6598 */
        {{127, 0, 0, 0}, 8},     /* loopback, RFC 1122 */
        {{169, 254, 0, 0}, 16},  /* link-local, RFC 3927 (cloud metadata lives here) */
        {{172, 16, 0, 0}, 12},   /* private, RFC 1918 */
        {{192, 0, 0, 0}, 24},    /* IETF protocol assignments, RFC 6890 */
        {{192, 0, 2, 0}, 24},    /* TEST-NET-1, RFC 5737 */
        {{192, 88, 99, 0}, 24},  /* 6to4 relay anycast, RFC 7526 */
        {{192, 168, 0, 0}, 16},  /* private, RFC 1918 */
        {{198, 18, 0, 0}, 15},   /* benchmarking, RFC 2544 */
        {{198, 51, 100, 0}, 24}, /* TEST-NET-2, RFC 5737 */
        {{203, 0, 113, 0}, 24},  /* TEST-NET-3, RFC 5737 */
        {{224, 0, 0, 0}, 4},     /* multicast, RFC 5771 */
        {{240, 0, 0, 0}, 4},     /* reserved, RFC 1112; 255.255.255.255 broadcast within */
};

/* IPv6 ranges inside 2000::/3 that are not public */
static const struct range v6_denied[] = {
        {{0x20, 0x01, 0x00, 0x00}, 23}, /* IETF protocol assignments, RFC 2928 */
        {{0x20, 0x01, 0x0d, 0xb8}, 32}, /* documentation, RFC 3849 */
        {{0x3f, 0xff, 0x00, 0x00}, 20}, /* documentation, RFC 9637 */
};

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

/* prefix_match - do the first prefix bits of a and b agree? */
static bool prefix_match(const unsigned char *a, const unsigned char *b, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;

	if(full && memcmp(a, b, (size_t)full) != 0)
		return false;
	if(rest) {
		unsigned char m = (unsigned char)(0xff << (8 - rest));
		if((a[full] & m) != (b[full] & m))
			return false;
	}
	return true;
}

/* in_ranges - is addr in one of the n ranges? */
static bool in_ranges(const unsigned char *addr, const struct range *r, size_t n)
{
	size_t i;

	for(i = 0; i < n; i++)
		if(prefix_match(addr, r[i].addr, r[i].prefix))
			return true;
	return false;
}

/* embedded_v4 - the IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), or NULL */
static const unsigned char *embedded_v4(const unsigned char *a)
{
	if(memcmp(a, v4_mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
		return a + 12;
	if(a[0] == 0x20 && a[1] == 0x02)
		return a + 2; /* 6to4, RFC 3056: 2002:V4ADDR::/48 */
	return NULL;
}

/* netguard_public - public unicast, per the IANA special-purpose registries */
bool netguard_public(int family, const unsigned char *addr)
{
	const unsigned char *v4;

	if(family == AF_INET)
		return !in_ranges(addr, v4_denied, GW_ARRAY_LEN(v4_denied));
	if(family != AF_INET6)
		return false;
	v4 = embedded_v4(addr);
	if(v4)
		return netguard_public(AF_INET, v4);
	/* global unicast is 2000::/3 (RFC 4291 2.4): ::, ::1, IPv4-compatible, discard 100::/64,
	 * ULA fc00::/7, link-local fe80::/10, site-local fec0::/10 and multicast ff00::/8 are not
	 */
	if((addr[0] & 0xe0) != 0x20)
		return false;
	return !in_ranges(addr, v6_denied, GW_ARRAY_LEN(v6_denied));
}

/* netguard_allowed - public, or in an operator's range */
bool netguard_allowed(const struct netguard *g, int family, const unsigned char *addr)
{
	const unsigned char *v4 = NULL;
	int i;

	if(family != AF_INET && family != AF_INET6)
		return false;
	if(netguard_public(family, addr))
		return true;
	if(family == AF_INET6 && memcmp(addr, v4_mapped, 12) == 0)
		v4 = addr + 12;
	for(i = 0; g && i < g->nallow; i++) {
		const struct netguard_cidr *c = &g->allow[i];

		if(c->family == family && prefix_match(addr, c->addr, c->prefix))
			return true;
		if(v4 && c->family == AF_INET && prefix_match(v4, c->addr, c->prefix))
			return true;
	}
	return false;
}

/* netguard_cidr_parse - address[/prefix] */
gw_rc netguard_cidr_parse(const char *s, struct netguard_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	size_t alen;
	int max, prefix = -1, i;

	memset(out, 0, sizeof(*out));
	if(!s)
		return GW_EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if(alen == 0 || alen >= sizeof(buf))
		return GW_EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if(inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if(inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else
		return GW_EINVAL;
	max = out->family == AF_INET ? 32 : 128;
	if(slash) {
		const char *d = slash + 1;

		/* 1 to 3 digits, no sign, no leading zero but "0" itself */
		if(!*d || strlen(d) > 3 || (d[0] == '0' && d[1]))
			return GW_EINVAL;
		for(prefix = 0; *d; d++) {
			if(*d < '0' || *d > '9')
				return GW_EINVAL;
			prefix = prefix * 10 + (*d - '0');
		}
		if(prefix > max)
			return GW_EINVAL;
	} else {
		prefix = max;
	}
	out->prefix = prefix;
	for(i = 0; i < max / 8; i++) {
		int keep = prefix - i * 8;

		if(keep <= 0)
			out->addr[i] = 0;
		else if(keep < 8)
			out->addr[i] &= (unsigned char)(0xff << (8 - keep));
	}
	return GW_OK;
}

/* netguard_from_json - the allow list from a config's array of CIDR strings */
gw_rc netguard_from_json(const json_t *list, struct netguard *g)
{
	size_t i;
	const json_t *v;

	memset(g, 0, sizeof(*g));
	if(!list || json_is_null(list))
		return GW_OK;
	if(!json_is_array(list) || json_array_size(list) > NETGUARD_MAX)
		return GW_ECONFIG;
	json_array_foreach(list, i, v)
	{
		if(!json_is_string(v) ||
		   netguard_cidr_parse(json_string_value(v), &g->allow[g->nallow]))
			return GW_ECONFIG;
		g->nallow++;
	}
	return GW_OK;
}

/* guard_open - CURLOPT_OPENSOCKETFUNCTION: the socket, or CURL_SOCKET_BAD for a refused
 * address (libcurl then tries the next address of the name, and fails with
 * CURLE_COULDNT_CONNECT when none is left) */
static curl_socket_t guard_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct netguard *g = clientp;
	const unsigned char *ip = NULL;

	if(purpose == CURLSOCKTYPE_IPCXN && a->family == AF_INET &&
	   a->addrlen >= sizeof(struct sockaddr_in))
		ip = (const unsigned char *)&((const struct sockaddr_in *)(void *)&a->addr)
		             ->sin_addr;
	else if(purpose == CURLSOCKTYPE_IPCXN && a->family == AF_INET6 &&
	        a->addrlen >= sizeof(struct sockaddr_in6))
		ip = (const unsigned char *)&((const struct sockaddr_in6 *)(void *)&a->addr)
		             ->sin6_addr;
	if(!ip || !netguard_allowed(g, a->family, ip)) {
		g->refused++;
		return CURL_SOCKET_BAD;
	}
	g->opened++;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* netguard_curl - the hook, and no environment proxy */
CURLcode netguard_curl(struct netguard *g, CURL *h)
{
	CURLcode cc;

	g->refused = 0;
	g->opened = 0;
	cc = curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, guard_open);
	if(!cc)
		cc = curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, g);
	/* "" disables a proxy from http_proxy/ALL_PROXY (CURLOPT_PROXY(3)): the guard would see
	 * only the proxy's address, and the proxy would connect anywhere */
	if(!cc)
		cc = curl_easy_setopt(h, CURLOPT_PROXY, "");
	return cc;
}

/* netguard_blocked - refused something and opened nothing */
bool netguard_blocked(const struct netguard *g)
{
	return g->refused > 0 && g->opened == 0;
}
