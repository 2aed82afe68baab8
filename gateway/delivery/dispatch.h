/*
 * dispatch.h - the delivery engine: per provider class, a fixed pool of workers leases due
 * outbox rows, sends each through the provider the organisation has configured (struct
 * provider_ops), and records the results with their attempts, in batches (one lease and one
 * finish transaction per batch).
 *
 * Backoff (docs/design.md): now, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h with +-10% jitter; a
 * provider's Retry-After wins; a permanent failure or the end of the schedule dead-letters the
 * row. A row past its deadline is expired, and a reminder whose booking is no longer confirmed
 * (or was rescheduled) is skipped, not sent.
 *
 * Threading: dispatch_start() starts the workers; each has its own provider contexts and
 * reading connection, and their lease and finish transactions take turns on one writer
 * connection. dispatch_wake() and dispatch_metrics() are safe from any thread.
 */
#ifndef DISPATCH_H
#define DISPATCH_H

#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "common/crypto.h"
#include <jansson.h>

#include "common/gw.h"

struct store;
struct tpl_buf;

struct dispatch_config {
	const char *db_path;             /* borrowed for the engine's life */
	const char *data_dir;            /* borrowed */
	const unsigned char *master_key; /* CRYPTO_KEY_LEN bytes, borrowed */
	int workers;          /* email workers (>= 1): at most this many SMTP connections */
	int calendar_workers; /* calendar workers; 0: 2 */
	int zoho_workers;     /* Zoho Assist workers; 0: 1 */
	int batch;            /* rows leased at once per worker */
	int lease_secs;       /* how long a lease holds; a batch stops at half of it */
	int drain_secs;       /* how long dispatch_stop() waits for sends in flight; 0: 20 */
	const json_t *allow_outbound; /* serve --allow-outbound: array of CIDR strings given to
	                               * every provider as config "allow_outbound", or NULL;
	                               * borrowed for the engine's life */
};

/* dispatch_start - give back the leases of this host's dead processes (a kill -9 leaves its
 * rows leased), then start the workers. */
gw_rc dispatch_start(const struct dispatch_config *cfg, struct gw_err *err);

/* dispatch_stop - stop leasing, let in-flight sends finish (at most drain_secs), give back the
 * leases not started, join. A worker still stuck in a send after drain_secs is left behind:
 * its rows stay leased and the next dispatch_start() of this host gives them back. */
void dispatch_stop(void);

/* dispatch_wake - new rows are due: wake the idle workers now (no polling delay). */
void dispatch_wake(void);

/* dispatch_settings_changed - org's SMTP settings were saved or removed: a hold on its server
 * (a server found down) ends, and idle workers look again */
void dispatch_settings_changed(int64_t org);

/* dispatch_backoff - seconds to wait before attempt number attempts + 1 after attempts failed
 * tries, with jitter from rnd (0..1); -1 when the schedule is exhausted (dead-letter). */
int dispatch_backoff(int attempts, double rnd);

/* dispatch_metrics - append the delivery metrics in Prometheus text format to buf: effects
 * enqueued by kind and class (from the store: it survives restarts), rows by status, pending
 * depth, age of the oldest due row, and this process's sent/failed/dead/expired/skipped
 * counters by kind and provider and its attempt latency histogram. st is the caller's
 * connection (borrowed). */
gw_rc dispatch_metrics(struct tpl_buf *buf, struct store *st);

struct provider_ops;
/* dispatch_calendar_open - a provider context for the calendar user has connected (the
 * organisation's client settings and the connection's secret, unsealed here): *ctx is the
 * caller's, closed with (*ops)->close. detail: why not, no secrets. Needs dispatch_start's
 * configuration (the master key). */
gw_rc dispatch_calendar_open(struct store *st, int64_t org, int64_t user,
                             const struct provider_ops **ops, void **ctx, char *detail,
                             size_t dlen);

/* ---- busy times (dispatch_busy.c) ---- */
/* dispatch_busy_refresh - fetch the busy times of user's connected calendar (0: every
 * connected calendar), the next DISPATCH_BUSY_DAYS days, on st; each connection's list is
 * replaced in one transaction, a failure records its error and keeps the last list. Makes
 * outside calls: never from a customer's request (the background thread; POST
 * /v1/test/busy-refresh under --test-clock). *out (may be NULL): {"fetched", "failed"}. */
#define DISPATCH_BUSY_DAYS 14
gw_rc dispatch_busy_refresh(struct store *st, int64_t user, json_t **out);
/* dispatch_busy_start - the background thread: every connected calendar every 10 minutes,
 * and a trainer's at once on dispatch_busy_wake. Its own store connection on db_path. */
gw_rc dispatch_busy_start(const char *db_path, struct gw_err *err);
/* dispatch_busy_wake - ask the thread for user's calendar now (returns at once). */
void dispatch_busy_wake(int64_t user);
/* dispatch_busy_stop - stop and join the thread (no-op when not started). */
void dispatch_busy_stop(void);

#endif
