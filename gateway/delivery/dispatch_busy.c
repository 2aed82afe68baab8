/*
 * dispatch_busy.c - the busy times of the trainers' connected calendars, pulled in the
 * background into the store (docs/design.md: "Busy times of a connected calendar are pulled in
 * the background into the store and removed from the offered slots; no customer request waits
 * on an outside API").
 *
 * One thread (started by serve, not under --test-clock) fetches every connected calendar's
 * next DISPATCH_BUSY_DAYS days every BUSY_INTERVAL seconds, and a trainer's at once when
 * dispatch_busy_wake() names them (a scheduling link was sent). Each fetch goes through the
 * provider table's busy operation (struct provider_ops); a success replaces the connection's
 * blocks in one transaction, a failure keeps them and records the error on the connection
 * (shown as busy_error on the user's calendar member).
 *
 * Entry points: dispatch_busy_refresh(), dispatch_busy_start(), dispatch_busy_wake(),
 * dispatch_busy_stop().
 * Threading: dispatch_busy_refresh runs on the caller's store connection; the thread has its
 * own. The wake queue is under wake_lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/provider.h"
#include "dispatch.h"
#include "store/store.h"

#define BUSY_INTERVAL 600 /* seconds between two fetches of every calendar */
#define WAKE_MAX      64  /* trainers waiting for a fetch; more wait for the next round */

static pthread_t thread;
static bool started;
static atomic_int stop_flag;
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static int64_t waiting[WAKE_MAX]; /* under wake_lock */
static int nwaiting;              /* under wake_lock */
static char *db_path_copy;

/* fetch_one - fetch one connection's busy times and record the outcome; true on success */
static bool fetch_one(struct store *st, const json_t *target, time_t now)
{
	int64_t conn = json_integer_value(json_object_get(target, "id"));
	int64_t org = json_integer_value(json_object_get(target, "org_id"));
	int64_t user = json_integer_value(json_object_get(target, "user_id"));
	struct provider_result res = {.outcome = PROVIDER_TRANSIENT, .retry_after = -1};
	const struct provider_ops *ops = NULL;
	json_t *blocks = NULL;
	void *ctx = NULL;
	char detail[600];
	bool ok = false;
	gw_rc rc;

	rc = dispatch_calendar_open(st, org, user, &ops, &ctx, detail, sizeof(detail));
	if(rc == GW_OK) {
		ops->busy(ctx, now, now + (time_t)DISPATCH_BUSY_DAYS * 86400, &blocks, &res);
		ops->close(ctx);
		snprintf(detail, sizeof(detail), "%s", res.detail);
		json_decref(res.out);
	}
	if(rc == GW_OK && res.outcome == PROVIDER_SENT && blocks) {
		if((rc = store_begin(st)) == GW_OK) {
			rc = store_busy_replace(st, conn, blocks, now);
			if(rc == GW_OK)
				rc = store_commit(st);
			else
				store_rollback(st);
		}
		ok = rc == GW_OK || rc == GW_ENOTFOUND; /* not found: replaced meanwhile */
		if(!ok)
			snprintf(detail, sizeof(detail), "cannot store the busy times: %s",
			         gw_rc_name(rc));
	}
	if(!ok) {
		/* the last known blocks stay in force; the connection says why they are old */
		if(store_busy_failed(st, conn, detail, now))
			log_event("error", "busy_record_failed", json_pack("{s:I}", "connection",
			                                                   (json_int_t)conn));
		log_event("warn", "busy_fetch_failed",
		          json_pack("{s:I, s:I, s:s}", "connection", (json_int_t)conn, "user",
		                    (json_int_t)user, "detail", detail));
	}
	json_decref(blocks);
	return ok;
}

/* dispatch_busy_refresh - one round over user's connection, or all of them */
gw_rc dispatch_busy_refresh(struct store *st, int64_t user, json_t **out)
{
	json_t *targets = NULL, *t;
	long long fetched = 0, failed = 0;
	time_t now = clock_now();
	size_t i;
	gw_rc rc;

	if(out)
		*out = NULL;
	if((rc = store_busy_targets(st, user, &targets)))
		return rc;
	json_array_foreach(targets, i, t)
	{
		if(atomic_load(&stop_flag))
			break;
		if(fetch_one(st, t, now))
			fetched++;
		else
			failed++;
	}
	json_decref(targets);
	if(out) {
		*out = json_pack("{s:I, s:I}", "fetched", (json_int_t)fetched, "failed",
		                 (json_int_t)failed);
		if(!*out)
			return GW_ENOMEM;
	}
	return GW_OK;
}

/* busy_main - a round every BUSY_INTERVAL, woken trainers in between */
static void *busy_main(void *arg)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	struct timespec next;

	(void)arg;
	if(store_open(db_path_copy, false, &st, &err)) {
		log_event("error", "busy_open_failed", json_pack("{s:s}", "error", err.message));
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &next); /* the first round at once */
	while(!atomic_load(&stop_flag)) {
		int64_t users[WAKE_MAX];
		struct timespec now;
		int n, k;

		clock_gettime(CLOCK_REALTIME, &now);
		if(now.tv_sec >= next.tv_sec) {
			dispatch_busy_refresh(st, 0, NULL);
			clock_gettime(CLOCK_REALTIME, &next);
			next.tv_sec += BUSY_INTERVAL;
		}
		/* monotonic: a step of the wall clock neither stretches nor cuts the wait */
		pthread_mutex_lock(&wake_lock);
		while(!atomic_load(&stop_flag) && nwaiting == 0) {
			if(pthread_cond_timedwait(&wake_cond, &wake_lock, &next) != 0)
				break;
		}
		n = nwaiting;
		memcpy(users, waiting, sizeof(users[0]) * (size_t)n);
		nwaiting = 0;
		pthread_mutex_unlock(&wake_lock);
		for(k = 0; k < n && !atomic_load(&stop_flag); k++)
			dispatch_busy_refresh(st, users[k], NULL);
	}
	store_close(st);
	return NULL;
}

/* dispatch_busy_wake - queue user for a fetch */
void dispatch_busy_wake(int64_t user)
{
	int k;

	pthread_mutex_lock(&wake_lock);
	for(k = 0; k < nwaiting && waiting[k] != user; k++)
		;
	if(k == nwaiting && nwaiting < WAKE_MAX)
		waiting[nwaiting++] = user;
	pthread_cond_signal(&wake_cond);
	pthread_mutex_unlock(&wake_lock);
}

/* dispatch_busy_start - start the thread */
gw_rc dispatch_busy_start(const char *db_path, struct gw_err *err)
{
	db_path_copy = strdup(db_path);
	if(!db_path_copy)
		return gw_err_set(err, GW_ENOMEM, "", "out of memory");
	atomic_store(&stop_flag, 0);
	if(pthread_create(&thread, NULL, busy_main, NULL) != 0)
		return gw_err_set(err, GW_EIO, "", "cannot start the busy-time fetch");
	started = true;
	return GW_OK;
}

/* dispatch_busy_stop - stop the thread; a fetch in flight ends within the provider timeout */
void dispatch_busy_stop(void)
{
	if(started) {
		pthread_mutex_lock(&wake_lock);
		atomic_store(&stop_flag, 1);
		pthread_cond_broadcast(&wake_cond);
		pthread_mutex_unlock(&wake_lock);
		pthread_join(thread, NULL);
		started = false;
	}
	free(db_path_copy);
	db_path_copy = NULL;
}
