/*
 * dispatch.h - the delivery engine: workers lease due outbox rows, send each through the
 * provider the organisation has configured (struct provider_ops), and record the result with
 * its attempt, in batches.
 *
 * Backoff (DESIGN.md): now, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h with +-10% jitter; a
 * provider's Retry-After wins; a permanent failure or the end of the schedule dead-letters the
 * row. A row past its deadline is expired, not sent.
 *
 * Threading: dispatch_start() starts the workers; each has its own store connection and
 * provider contexts. dispatch_wake() is safe from any thread.
 */
#ifndef DISPATCH_H
#define DISPATCH_H

#include <stdint.h>
#include <time.h>

#include "crypto.h"
#include "gw.h"

struct dispatch_config {
	const char *db_path;  /* borrowed for the engine's life */
	const char *data_dir; /* borrowed */
	const unsigned char *master_key; /* CRYPTO_KEY_LEN bytes, borrowed */
	int workers;          /* >= 1 */
	int batch;            /* rows leased at once per worker */
	int lease_secs;       /* how long a lease holds */
};

/* dispatch_start - start the workers. */
gw_rc dispatch_start(const struct dispatch_config *cfg, struct gw_err *err);

/* dispatch_stop - stop leasing, let in-flight sends finish, give back unstarted leases, join. */
void dispatch_stop(void);

/* dispatch_wake - new rows are due: wake an idle worker now (no polling delay). */
void dispatch_wake(void);

/* dispatch_backoff - seconds to wait before attempt number attempts + 1 after attempts failed
 * tries, with jitter from rnd (0..1); -1 when the schedule is exhausted (dead-letter). */
int dispatch_backoff(int attempts, double rnd);

#endif
