/*
 * ratelimit.h - a bounded table of token buckets keyed by (limit kind, key): the gateway's rate
 * limits (public intake per address and per organisation, the link routes per address) and any
 * later per-key limit (sign-in per email address).
 *
 * A bucket holds up to burst tokens and gains per_minute tokens a minute; each request takes
 * one. The table has a fixed number of slots chosen at creation: memory never grows with the
 * number of addresses. A key without a slot takes a free one or evicts the least recently used
 * of its probe window (a bucket left alone long enough is full, the same as no bucket at all).
 * Threading: rl_take() is safe from any thread (one mutex per shard).
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/gw.h"

/* The limit kinds: a key counts separately under each. */
enum rl_kind {
	RL_INTAKE_ADDRESS, /* public intake: "ORG/ADDRESS" */
	RL_INTAKE_ORG,     /* public intake: "ORG" */
	RL_TOKEN_ROUTE,    /* schedule, survey, feed and manage links: "ADDRESS" */
	RL_SIGN_IN,        /* reserved for the sign-in: the email address */
	RL_KIND_COUNT
};

struct rl_table;

/* rl_create - a table of about slots buckets (at least 64; rounded up to fill the shards).
 * NULL when out of memory. */
struct rl_table *rl_create(size_t slots);

/* rl_free - destroy the table (NULL is fine). */
void rl_free(struct rl_table *t);

/* rl_take - take one token from the bucket (kind, key) at now_ms (a monotonic clock): GW_OK,
 * or GW_ERATE with *retry_after_s (may be NULL) the whole seconds until a token is there (at
 * least 1). per_minute and burst of 0 count as 1. */
gw_rc rl_take(struct rl_table *t, enum rl_kind kind, const char *key, unsigned per_minute,
              unsigned burst, int64_t now_ms, unsigned *retry_after_s);

/* rl_stats - slots in use and evictions so far (for tests and metrics). */
void rl_stats(struct rl_table *t, size_t *used, size_t *slots, uint64_t *evictions);

#endif
