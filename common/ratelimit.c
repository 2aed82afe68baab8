/*
 * ratelimit.c - token buckets in a fixed table (see ratelimit.h).
 *
 * Entry points: rl_create(), rl_free(), rl_take(), rl_stats().
 * Layout: RL_SHARDS shards, each a mutex and an array of slots. A key hashes (FNV-1a, 64 bits)
 * to a shard and a home slot; it lives in one of the RL_PROBE slots from there. Keys up to
 * RL_KEY_MAX - 1 bytes are compared in full, longer ones by their first bytes and the hash.
 * Threading: each shard's slots are read and written under its mutex only.
 */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_SHARDS  16
#define RL_PROBE   8
#define RL_KEY_MAX 64

struct rl_slot {
	bool used;
	int kind;
	uint64_t hash;
	char key[RL_KEY_MAX];
	double tokens;   /* after the refill at last_ms */
	int64_t last_ms; /* last use: the LRU order of the probe window */
};

struct rl_shard {
	pthread_mutex_t lock;
	struct rl_slot *slots;
	size_t used;
	uint64_t evictions;
};

struct rl_table {
	size_t per_shard;
	struct rl_shard shard[RL_SHARDS];
};

/* rl_create - allocate the shards */
struct rl_table *rl_create(size_t slots)
{
	struct rl_table *t = calloc(1, sizeof(*t));
	size_t i;

	if(!t)
		return NULL;
	if(slots < 64)
		slots = 64;
	t->per_shard = (slots + RL_SHARDS - 1) / RL_SHARDS;
	if(t->per_shard < RL_PROBE)
		t->per_shard = RL_PROBE;
	for(i = 0; i < RL_SHARDS; i++) {
		t->shard[i].slots = calloc(t->per_shard, sizeof(struct rl_slot));
		if(!t->shard[i].slots || pthread_mutex_init(&t->shard[i].lock, NULL) != 0) {
			free(t->shard[i].slots);
			t->shard[i].slots = NULL;
			rl_free(t);
			return NULL;
		}
	}
	return t;
}

/* rl_free - free the shards */
void rl_free(struct rl_table *t)
{
	size_t i;

	if(!t)
		return;
	for(i = 0; i < RL_SHARDS; i++) {
		if(t->shard[i].slots) {
			pthread_mutex_destroy(&t->shard[i].lock);
			free(t->shard[i].slots);
		}
	}
	free(t);
}

/* hash_key - FNV-1a over the kind and the key */
static uint64_t hash_key(int kind, const char *key)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p = (const unsigned char *)key;

	h = (h ^ (uint64_t)(kind + 1)) * 1099511628211ULL;
	for(; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	/* a final mix, so that the shard (low bits) and the home slot (high bits) both vary */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* find_slot - the key's slot in its probe window, a free one, or the least recently used */
static struct rl_slot *find_slot(struct rl_table *t, struct rl_shard *s, int kind, const char *key,
                                 uint64_t h, bool *fresh)
{
	struct rl_slot *free_slot = NULL, *oldest = NULL;
	size_t home = (size_t)(h >> 32) % t->per_shard, i;

	*fresh = false;
	for(i = 0; i < RL_PROBE; i++) {
		struct rl_slot *e = &s->slots[(home + i) % t->per_shard];

		if(!e->used) {
			if(!free_slot)
				free_slot = e;
			continue;
		}
		if(e->hash == h && e->kind == kind && strncmp(e->key, key, RL_KEY_MAX - 1) == 0)
			return e;
		if(!oldest || e->last_ms < oldest->last_ms)
			oldest = e;
	}
	*fresh = true;
	if(free_slot) {
		s->used++;
		return free_slot;
	}
	s->evictions++;
	return oldest;
}

/* rl_take - refill, then take one token or say when one will be there */
gw_rc rl_take(struct rl_table *t, enum rl_kind kind, const char *key, unsigned per_minute,
              unsigned burst, int64_t now_ms, unsigned *retry_after_s)
{
	uint64_t h = hash_key((int)kind, key);
	struct rl_shard *s = &t->shard[h % RL_SHARDS];
	double rate, cap = burst ? (double)burst : 1.0;
	struct rl_slot *e;
	bool fresh;
	gw_rc rc = GW_OK;

	if(!per_minute)
		per_minute = 1;
	rate = (double)per_minute / 60000.0; /* tokens per millisecond */
	pthread_mutex_lock(&s->lock);
	e = find_slot(t, s, (int)kind, key, h, &fresh);
	if(fresh) {
		e->used = true;
		e->kind = (int)kind;
		e->hash = h;
		snprintf(e->key, sizeof(e->key), "%s",
		         key); /* longer keys: cut, the hash decides */
		e->tokens = cap;
	} else if(now_ms > e->last_ms) {
		e->tokens += (double)(now_ms - e->last_ms) * rate;
	}
	if(e->tokens > cap)
		e->tokens = cap;
	if(now_ms > e->last_ms || fresh)
		e->last_ms = now_ms;
	if(e->tokens >= 1.0) {
		e->tokens -= 1.0;
	} else {
		/* whole seconds until the bucket holds one token again, never 0 */
		double secs = ceil((1.0 - e->tokens) / rate / 1000.0 - 1e-9);

		if(retry_after_s)
			*retry_after_s = secs < 1.0 ? 1u : (unsigned)secs;
		rc = GW_ERATE;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* rl_stats - sum the shards */
void rl_stats(struct rl_table *t, size_t *used, size_t *slots, uint64_t *evictions)
{
	size_t i, u = 0;
	uint64_t ev = 0;

	for(i = 0; i < RL_SHARDS; i++) {
		pthread_mutex_lock(&t->shard[i].lock);
		u += t->shard[i].used;
		ev += t->shard[i].evictions;
		pthread_mutex_unlock(&t->shard[i].lock);
	}
	if(used)
		*used = u;
	if(slots)
		*slots = t->per_shard * RL_SHARDS;
	if(evictions)
		*evictions = ev;
}
