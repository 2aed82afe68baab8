/*
 * dispatch.c - dispatch workers: lease, send, record.
 *
 * Entry points: dispatch_start(), dispatch_stop(), dispatch_wake(), dispatch_backoff().
 * Threading: a fixed pool of worker threads; each owns one store connection and a small cache
 * of provider contexts keyed by organisation (so an SMTP connection is reused across messages).
 * The only shared state is the wake-up condition and the stop flag.
 */
#include "dispatch.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "provider.h"
#include "smtp.h"
#include "store.h"

#define MAX_WORKERS 16
#define CTX_CACHE 8

static const int schedule[] = {0, 5, 300, 1800, 7200, 18000, 36000, 36000};

static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static unsigned long wake_gen;
static atomic_int stopping;
static pthread_t threads[MAX_WORKERS];
static int nthreads;
static struct dispatch_config config;

struct ctx_entry {
	int64_t org;
	char *config_text; /* the stored config it was opened with (sealed secrets): cache key */
	const struct provider_ops *ops;
	void *ctx;
};

struct worker {
	int index;
	char owner[64];
	struct store *st;
	struct ctx_entry cache[CTX_CACHE];
	int ncache;
};

/* dispatch_backoff - the retry schedule */
int dispatch_backoff(int attempts, double rnd)
{
	double base;

	if(attempts < 1)
		attempts = 1;
	if((size_t)attempts >= GW_ARRAY_LEN(schedule))
		return -1;
	base = schedule[attempts];
	return (int)(base + base * 0.2 * (rnd - 0.5));
}

/* dispatch_wake - wake idle workers */
void dispatch_wake(void)
{
	pthread_mutex_lock(&wake_lock);
	wake_gen++;
	pthread_cond_broadcast(&wake_cond);
	pthread_mutex_unlock(&wake_lock);
}

/* rnd01 - a random number in [0, 1) */
static double rnd01(void)
{
	unsigned int x = 0;

	if(RAND_bytes((unsigned char *)&x, sizeof(x)) != 1)
		return 0.5;
	return (double)x / 4294967296.0;
}

/* open_secrets - decrypt every "sealed:" string of a stored config in place */
static gw_rc open_secrets(json_t *cfg)
{
	const char *key;
	json_t *v;
	gw_rc rc = GW_OK;

	json_object_foreach(cfg, key, v) {
		if(json_is_object(v)) {
			rc = open_secrets(v);
			if(rc)
				return rc;
		} else if(json_is_string(v) && strncmp(json_string_value(v), "sealed:", 7) == 0) {
			char *plain = NULL;
			rc = crypto_open(config.master_key, json_string_value(v) + 7, &plain);
			if(rc)
				return rc;
			json_object_set_new(cfg, key, json_string(plain));
			free(plain);
		}
	}
	return GW_OK;
}

/* provider_for - the worker's context for (org, provider class); opens or reopens on change */
static gw_rc provider_for(struct worker *w, int64_t org, const char *pclass,
                          struct ctx_entry **out, char *detail, size_t dlen)
{
	json_t *cfg = NULL;
	char *text = NULL;
	const struct provider_ops *ops;
	struct ctx_entry *e = NULL;
	gw_rc rc;
	int i;

	*out = NULL;
	if(strcmp(pclass, "email") != 0) {
		snprintf(detail, dlen, "no provider for %s effects yet", pclass);
		return GW_ECONFIG;
	}
	rc = store_provider_get(w->st, org, "smtp", &cfg);
	if(rc == GW_ENOTFOUND) {
		ops = &smtp_maildir_ops;
		text = strdup("maildir");
		rc = GW_OK;
	} else if(rc) {
		snprintf(detail, dlen, "cannot read the provider settings");
		return rc;
	} else {
		ops = &smtp_provider_ops;
		text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	}
	if(!text) {
		rc = GW_ENOMEM;
		goto out;
	}
	for(i = 0; i < w->ncache; i++) {
		if(w->cache[i].org == org) {
			e = &w->cache[i];
			break;
		}
	}
	if(e && strcmp(e->config_text, text) == 0) {
		*out = e;
		goto out;
	}
	if(!e) {
		if(w->ncache < CTX_CACHE) {
			e = &w->cache[w->ncache++];
		} else {
			e = &w->cache[rand() % CTX_CACHE];
		}
	}
	if(e->ops)
		e->ops->close(e->ctx);
	free(e->config_text);
	memset(e, 0, sizeof(*e));
	if(cfg) {
		rc = open_secrets(cfg);
		if(rc) {
			snprintf(detail, dlen, "cannot decrypt the provider secrets (wrong master key?)");
			goto fail;
		}
	}
	rc = ops->open(cfg, config.data_dir, &e->ctx);
	if(rc) {
		snprintf(detail, dlen, "cannot open provider %s: %s", ops->name, gw_rc_name(rc));
		goto fail;
	}
	e->org = org;
	e->ops = ops;
	e->config_text = text;
	text = NULL;
	*out = e;
	goto out;
fail:
	/* leave the slot empty but valid */
	e->org = 0;
	e->ops = NULL;
	e->ctx = NULL;
	e->config_text = strdup("");
out:
	free(text);
	json_decref(cfg);
	return rc;
}

/* deliver - send one leased row and fill its result */
static void deliver(struct worker *w, const struct store_lease *l, struct store_result *r,
                    char *detail, size_t dlen)
{
	struct provider_result pres = {0};
	struct ctx_entry *e = NULL;
	json_t *payload = NULL;
	time_t now = clock_now();
	int wait;

	r->id = l->id;
	r->detail = NULL;
	r->provider = NULL;
	r->started_ms = clock_now_ms();
	detail[0] = '\0';
	if(l->deadline > 0 && now >= l->deadline) {
		r->outcome = STORE_EXPIRED;
		snprintf(detail, dlen, "deadline passed before it could be sent");
		r->detail = detail;
		goto done;
	}
	/* Calendar and Zoho Assist rows are recorded with their dedupe keys; until a calendar
	 * provider is connected for the trainer, or Zoho Assist for the organisation, there is
	 * nothing to call: say so on the row instead of retrying for days. */
	if(strcmp(l->provider_class, "calendar") == 0) {
		r->outcome = STORE_SKIPPED;
		snprintf(detail, dlen, "the trainer has no calendar connected");
		r->detail = detail;
		goto done;
	}
	if(strcmp(l->provider_class, "zoho") == 0) {
		r->outcome = STORE_DEAD;
		snprintf(detail, dlen, "no Zoho Assist provider is configured for this organisation");
		r->detail = detail;
		goto done;
	}
	payload = json_loads(l->payload, 0, NULL);
	if(!payload) {
		r->outcome = STORE_DEAD;
		snprintf(detail, dlen, "stored payload is not JSON");
		r->detail = detail;
		goto done;
	}
	if(provider_for(w, l->org_id, l->provider_class, &e, detail, dlen)) {
		pres.outcome = PROVIDER_TRANSIENT;
		pres.retry_after = -1;
	} else {
		r->provider = e->ops->name;
		pres.retry_after = -1;
		e->ops->send(e->ctx, l->kind, payload, &pres);
		snprintf(detail, dlen, "%s", pres.detail);
	}
	r->detail = detail[0] ? detail : NULL;
	switch(pres.outcome) {
	case PROVIDER_SENT:
		r->outcome = STORE_SENT;
		break;
	case PROVIDER_PERMANENT:
	case PROVIDER_AUTH_REVOKED:
		r->outcome = STORE_DEAD;
		break;
	case PROVIDER_TRANSIENT:
	case PROVIDER_AUTH:
		wait = dispatch_backoff(l->attempts + 1, rnd01());
		if(wait < 0) {
			r->outcome = STORE_DEAD;
			break;
		}
		if(pres.retry_after >= 0)
			wait = pres.retry_after;
		r->outcome = STORE_RETRY;
		r->next_attempt_at = now + wait;
		break;
	}
done:
	r->finished_ms = clock_now_ms();
	json_decref(pres.out);
	json_decref(payload);
}

/* wait_for_work - sleep until woken or a second has passed */
static void wait_for_work(unsigned long seen)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	pthread_mutex_lock(&wake_lock);
	while(wake_gen == seen && !atomic_load(&stopping)) {
		if(pthread_cond_timedwait(&wake_cond, &wake_lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&wake_lock);
}

/* worker_main - lease, send, record, until stopped */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct store_lease *leases = NULL;
	struct store_result *res = NULL;
	char(*details)[512] = NULL;
	struct gw_err err = {0};
	int n = 0, i;

	if(store_open(config.db_path, false, &w->st, &err)) {
		log_event("error", "dispatch_open_failed",
		          json_pack("{s:i, s:s}", "worker", w->index, "error", err.message));
		return NULL;
	}
	res = calloc((size_t)config.batch, sizeof(*res));
	details = calloc((size_t)config.batch, sizeof(*details));
	if(!res || !details)
		goto out;
	while(!atomic_load(&stopping)) {
		unsigned long seen;
		gw_rc rc;

		pthread_mutex_lock(&wake_lock);
		seen = wake_gen;
		pthread_mutex_unlock(&wake_lock);
		rc = store_outbox_lease(w->st, w->owner, clock_now(), config.lease_secs, config.batch,
		                        &leases, &n);
		if(rc) {
			if(rc != GW_EBUSY)
				log_event("error", "dispatch_lease_failed",
				          json_pack("{s:s, s:s}", "error", gw_rc_name(rc), "cause",
				                    store_errmsg(w->st)));
			wait_for_work(seen);
			continue;
		}
		if(n == 0) {
			wait_for_work(seen);
			continue;
		}
		for(i = 0; i < n; i++) {
			/* On stop, what was leased but not started goes back untouched (released below);
			 * a send already begun is finished and recorded. */
			if(atomic_load(&stopping))
				break;
			deliver(w, &leases[i], &res[i], details[i], sizeof(details[i]));
			if(res[i].outcome != STORE_SENT)
				log_event("warn", "delivery_failed",
				          json_pack("{s:I, s:s, s:s, s:s}", "outbox_id", (json_int_t)leases[i].id,
				                    "kind", leases[i].kind, "outcome",
				                    res[i].outcome == STORE_RETRY ? "retry" : "final",
				                    "detail", res[i].detail ? res[i].detail : ""));
		}
		for(;;) {
			rc = store_outbox_finish(w->st, w->owner, res, i, clock_now());
			if(rc != GW_EBUSY)
				break;
		}
		if(rc)
			log_event("error", "dispatch_finish_failed",
			          json_pack("{s:s, s:s}", "error", gw_rc_name(rc), "cause",
			                    store_errmsg(w->st)));
		store_leases_free(leases, n);
		leases = NULL;
	}
	store_outbox_release(w->st, w->owner);
out:
	for(i = 0; i < w->ncache; i++) {
		if(w->cache[i].ops)
			w->cache[i].ops->close(w->cache[i].ctx);
		free(w->cache[i].config_text);
	}
	free(res);
	free(details);
	store_close(w->st);
	free(w);
	return NULL;
}

/* dispatch_start - start the worker pool */
gw_rc dispatch_start(const struct dispatch_config *cfg, struct gw_err *err)
{
	int i;

	config = *cfg;
	if(config.workers < 1)
		config.workers = 1;
	if(config.workers > MAX_WORKERS)
		config.workers = MAX_WORKERS;
	if(config.batch < 1)
		config.batch = 16;
	if(config.lease_secs < 5)
		config.lease_secs = 60;
	atomic_store(&stopping, 0);
	for(i = 0; i < config.workers; i++) {
		struct worker *w = calloc(1, sizeof(*w));
		if(!w)
			return gw_err_set(err, GW_ENOMEM, "", "out of memory");
		w->index = i;
		snprintf(w->owner, sizeof(w->owner), "%ld:%d:%lld", (long)getpid(), i,
		         (long long)clock_mono_ms());
		if(pthread_create(&threads[i], NULL, worker_main, w) != 0) {
			free(w);
			return gw_err_set(err, GW_EIO, "", "cannot start dispatch worker");
		}
		nthreads++;
	}
	return GW_OK;
}

/* dispatch_stop - drain and join */
void dispatch_stop(void)
{
	int i;

	atomic_store(&stopping, 1);
	dispatch_wake();
	for(i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
}
