/*
 * lc_fanout.c - the background thread that enqueues the rest of large fan-outs: an intake
 * enqueues the new_request rows of its first trainers (up to 1,000) and records the rest
 * (store_fanout_put); this thread runs lc_fanout_step (lc.c), one chunk per transaction, until
 * none is left. Each chunk's rows carry their dedupe keys, so a chunk repeated after a crash
 * or by a second gateway on the same database enqueues nothing twice.
 *
 * Entry points: lc_fanout_start(), lc_fanout_wake(), lc_fanout_stop().
 * Threading: one thread with its own store connection; wake and stop from any thread.
 */
#include "lc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

/* a fan-out recorded by another gateway on the same database is picked up within this */
#define FANOUT_POLL_SECS 5

static pthread_t thread;
static bool started;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static atomic_int stop_flag, wake_flag;
static char *db_path_copy, *public_url_copy;

/* fanout_main - step while there is work; wait for a wake, a stop or the poll */
static void *fanout_main(void *arg)
{
	struct lc_env env = {0};
	struct store *st = NULL;
	struct gw_err err = {0};

	(void)arg;
	env.public_url = public_url_copy;
	if(store_open(db_path_copy, false, &st, &err)) {
		log_event("error", "fanout_open_failed", json_pack("{s:s}", "error", err.message));
		return NULL;
	}
	while(!atomic_load(&stop_flag)) {
		struct timespec ts;
		bool more = true, failed = false;
		int secs = FANOUT_POLL_SECS;
		int64_t after = 0; /* past the fan-outs that failed in this round */

		atomic_store(&wake_flag, 0);
		while(more && !atomic_load(&stop_flag)) {
			int64_t t0 = clock_mono_ms(), took, request = 0;
			gw_rc rc;

			memset(&err, 0, sizeof(err));
			rc = lc_fanout_step(st, &env, after, &request, &more, &err);
			/* the write lock half the time at most: between two chunks as long a pause
			 * as the chunk took (at most 100 ms), for the leases and intakes waiting on
			 * it (PostgreSQL: one writer at a time across gateways) */
			took = clock_mono_ms() - t0;
			if(!rc && more && took > 0) {
				struct timespec d = {0, (long)(took > 100 ? 100 : took) * 1000000L};

				nanosleep(&d, NULL);
			}
			if(rc) {
				log_event("error", "fanout_failed",
				          json_pack("{s:I, s:s, s:s, s:s}", "request_id",
				                    (json_int_t)request, "error", gw_rc_name(rc),
				                    "message", err.message, "cause", err.cause));
				failed = true;
				/* one that fails (its organisation's settings broken, say) does not hold
				 * up the newer ones: they go on, it is tried again in the next round;
				 * without a fan-out to blame (the database), the round ends */
				if(!request)
					break;
				after = request;
				more = true;
			}
		}
		if(failed)
			secs = 1; /* a busy or failing database: try again soon, not in a loop */
		/* CLOCK_REALTIME with pthread_cond_timedwait, as every wait (see dispatch.c) */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += secs;
		pthread_mutex_lock(&lock);
		while(!atomic_load(&stop_flag) && (failed || !atomic_load(&wake_flag))) {
			if(pthread_cond_timedwait(&cond, &lock, &ts) != 0)
				break;
		}
		pthread_mutex_unlock(&lock);
	}
	store_close(st);
	return NULL;
}

/* lc_fanout_start - start the thread */
gw_rc lc_fanout_start(const char *db_path, const char *public_url, struct gw_err *err)
{
	db_path_copy = strdup(db_path);
	public_url_copy = strdup(public_url);
	if(!db_path_copy || !public_url_copy)
		return gw_err_set(err, GW_ENOMEM, "", "out of memory");
	atomic_store(&stop_flag, 0);
	atomic_store(&wake_flag, 1);
	if(pthread_create(&thread, NULL, fanout_main, NULL) != 0)
		return gw_err_set(err, GW_EIO, "", "cannot start the fan-out thread");
	started = true;
	return GW_OK;
}

/* lc_fanout_wake - an intake recorded the rest of a fan-out */
void lc_fanout_wake(void)
{
	pthread_mutex_lock(&lock);
	atomic_store(&wake_flag, 1);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* lc_fanout_stop - stop the thread (a chunk under way is finished first) */
void lc_fanout_stop(void)
{
	if(started) {
		pthread_mutex_lock(&lock);
		atomic_store(&stop_flag, 1);
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		pthread_join(thread, NULL);
		started = false;
	}
	free(db_path_copy);
	free(public_url_copy);
	db_path_copy = public_url_copy = NULL;
}
