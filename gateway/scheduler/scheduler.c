/*
 * scheduler.c - the scheduler tick and its thread.
 *
 * Entry points: sched_reminder_due(), sched_tick(), sched_start(), sched_stop().
 * Threading: sched_tick runs on the caller's connection (an HTTP thread for POST
 * /v1/test/tick, the CLI for `ordinatus tick`, or the scheduler thread with its own).
 */
#include "scheduler.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "gateway/delivery/dispatch.h"
#include "common/log.h"
#include "gateway/lifecycle/settings.h"
#include "common/timefmt.h"
#include "gateway/templates/tpl.h"

#define TICK_LIMIT 5000 /* rows of one kind handled per tick; the next tick takes the rest */

struct counts {
	long long reminders, close_reminders, auto_completed, auto_cancelled, holds_released;
	int redact_rounds; /* batches of store_outbox_redact: at most 50 (3200 rows) a tick */
};

/* sched_reminder_due - the reminder window rule */
bool sched_reminder_due(time_t start, time_t confirmed_at, int offset_min, int tick_min,
                        time_t now)
{
	time_t point = start - (time_t)offset_min * 60;
	time_t tick = (time_t)tick_min * 60;

	return point > now - tick && point <= now + tick && confirmed_at <= point && now < start;
}

/* tick_reminders - reminders of one organisation */
static gw_rc tick_reminders(struct store *st, const struct lc_env *env, int64_t org,
                            const json_t *settings, time_t now, struct counts *c,
                            struct gw_err *err)
{
	int tick = (int)json_integer_value(json_object_get(settings, "tick_minutes"));
	const json_t *hours = json_object_get(settings, "reminder_hours"), *h, *row;
	json_t *rows = NULL;
	size_t i, j;
	gw_rc rc = GW_OK;

	json_array_foreach(hours, i, h) {
		int off = (int)json_integer_value(h) * 60;
		time_t centre = now + (time_t)off * 60;

		rc = store_sched_starting(st, org, centre - (time_t)tick * 60, centre + (time_t)tick * 60,
		                          &rows);
		if(rc)
			return rc;
		json_array_foreach(rows, j, row) {
			int64_t id = json_integer_value(json_array_get(row, 0));
			time_t start = (time_t)json_integer_value(json_array_get(row, 1));
			time_t confirmed = (time_t)json_integer_value(json_array_get(row, 2));
			long long seq = json_integer_value(json_array_get(row, 3));
			char key[96];
			json_t *extra;
			bool ins = false;

			if(!sched_reminder_due(start, confirmed, off, tick, now))
				continue;
			snprintf(key, sizeof(key), "reminder:%lld:%d:%lld", (long long)id, off, seq);
			extra = json_pack("{s:I, s:I}", "hours_before", json_integer_value(h), "sequence",
			                  (json_int_t)seq);
			/* due at its point (a tick may find it up to one tick early), worthless once the
			 * session has started: that is its deadline */
			rc = lc_booking_notify(st, env, org, id, "reminder", key, extra,
			                       start - (time_t)off * 60, start, &ins, err);
			json_decref(extra);
			if(rc)
				break;
			c->reminders += ins;
		}
		json_decref(rows);
		rows = NULL;
		if(rc)
			return rc;
	}
	return GW_OK;
}

/* tick_completion - auto-close and close reminders of one organisation */
static gw_rc tick_completion(struct store *st, const struct lc_env *env, int64_t org,
                             const json_t *settings, time_t now, struct counts *c,
                             struct gw_err *err)
{
	const char *policy = json_string_value(json_object_get(settings, "completion_policy"));
	long long after = json_integer_value(json_object_get(settings, "auto_close_after_minutes"));
	long long remind = json_integer_value(json_object_get(settings,
	                                                      "close_reminder_after_minutes"));
	bool complete = strcmp(json_string_value(json_object_get(settings, "auto_close_action")),
	                       "complete") == 0;
	json_t *rows = NULL, *row;
	size_t i;
	gw_rc rc = GW_OK;

	if(strcmp(policy, "trainer_must_close") == 0)
		return GW_OK;
	/* auto-close first: what has passed its close time is closed, not reminded */
	rc = store_sched_ended(st, org, now - after * 60, TICK_LIMIT, &rows);
	if(rc)
		return rc;
	json_array_foreach(rows, i, row) {
		rc = lc_booking_system(st, env, org, json_integer_value(json_array_get(row, 0)),
		                       complete ? LC_SYS_COMPLETE : LC_SYS_CANCEL, err);
		if(rc == GW_ESTATE) {
			rc = GW_OK;
			continue;
		}
		if(rc)
			break;
		if(complete)
			c->auto_completed++;
		else
			c->auto_cancelled++;
	}
	json_decref(rows);
	rows = NULL;
	if(rc || strcmp(policy, "reminder_then_auto_close") != 0)
		return rc;
	rc = store_sched_ended(st, org, now - remind * 60, TICK_LIMIT, &rows);
	if(rc)
		return rc;
	json_array_foreach(rows, i, row) {
		int64_t id = json_integer_value(json_array_get(row, 0));
		time_t end = (time_t)json_integer_value(json_array_get(row, 1));
		char key[64], url[600];
		json_t *extra;
		bool ins = false;

		snprintf(key, sizeof(key), "close_reminder:%lld", (long long)id);
		snprintf(url, sizeof(url), "%s/bookings/%lld", env->public_url, (long long)id);
		extra = json_pack("{s:s}", "complete_url", url);
		rc = lc_booking_notify(st, env, org, id, "close_reminder", key, extra, 0,
		                       end + after * 60, &ins, err);
		json_decref(extra);
		if(rc)
			break;
		c->close_reminders += ins;
	}
	json_decref(rows);
	return rc;
}

/* retention_secs - serve --retention-days, recorded in meta by the serving gateway (so that
 * `ordinatus tick` keeps the same), else STORE_RETENTION_DAYS */
static time_t retention_secs(struct store *st)
{
	json_t *v = NULL;
	long long days = STORE_RETENTION_DAYS;

	if(store_meta_get(st, "retention_days", &v) == GW_OK && json_is_string(v)) {
		char *end;
		long long d = strtoll(json_string_value(v), &end, 10);

		if(!*end && d >= 1 && d <= 3650)
			days = d;
	}
	json_decref(v);
	return (time_t)(days * 86400);
}

/* sched_tick - one tick */
gw_rc sched_tick(struct store *st, const struct lc_env *env, time_t now, json_t **out,
                 struct gw_err *err)
{
	struct counts c = {0};
	json_t *orgs = NULL, *o, *holds = NULL, *row;
	char at[TIMEFMT_LEN];
	size_t i;
	gw_rc rc;

	*out = NULL;
	if((rc = store_begin(st)))
		return rc;
	if((rc = store_sched_orgs(st, &orgs)))
		goto fail;
	json_array_foreach(orgs, i, o) {
		int64_t org = json_integer_value(json_object_get(o, "id"));
		json_t *settings = settings_effective(json_object_get(o, "settings"));
		if(!settings) {
			rc = GW_ENOMEM;
			goto fail;
		}
		rc = tick_reminders(st, env, org, settings, now, &c, err);
		if(!rc)
			rc = tick_completion(st, env, org, settings, now, &c, err);
		json_decref(settings);
		if(rc)
			goto fail;
	}
	if((rc = store_sched_expired_holds(st, now, TICK_LIMIT, &holds)))
		goto fail;
	json_array_foreach(holds, i, row) {
		rc = lc_booking_system(st, env, json_integer_value(json_array_get(row, 1)),
		                       json_integer_value(json_array_get(row, 0)), LC_SYS_RELEASE_HOLD,
		                       err);
		if(rc == GW_ESTATE) {
			rc = GW_OK;
			continue;
		}
		if(rc)
			goto fail;
		c.holds_released++;
	}
	/* sent emails lose their link tokens now, and their rendered text after the retention
	 * (docs/design.md "Security"); the dedupe keys stay */
	{
		time_t keep = retention_secs(st);
		int redacted, pruned;

		do {
			rc = store_outbox_redact(st, now, keep, 64, tpl_redact, &redacted, &pruned);
		} while(!rc && (redacted == 64 || pruned == 64) && ++c.redact_rounds < 50);
		if(rc)
			goto fail;
	}
	if((rc = store_commit(st)))
		goto done;
	if(c.reminders || c.close_reminders || c.auto_completed || c.auto_cancelled ||
	   c.holds_released)
		dispatch_wake();
	timefmt_rfc3339(now, at);
	*out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "at", at, "reminders",
	                 (json_int_t)c.reminders, "close_reminders", (json_int_t)c.close_reminders,
	                 "auto_completed", (json_int_t)c.auto_completed, "auto_cancelled",
	                 (json_int_t)c.auto_cancelled, "holds_released",
	                 (json_int_t)c.holds_released);
	rc = *out ? GW_OK : GW_ENOMEM;
	goto done;
fail:
	store_rollback(st);
done:
	json_decref(orgs);
	json_decref(holds);
	return rc;
}

/* ---- the thread ---- */

static pthread_t thread;
static bool started;
static atomic_int stop_flag;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static char *db_path_copy, *public_url_copy;

/* interval_minutes - the smallest tick_minutes of every organisation (15 with none) */
static int interval_minutes(struct store *st)
{
	json_t *orgs = NULL, *o;
	size_t i;
	int best = 15;

	if(store_sched_orgs(st, &orgs))
		return best;
	json_array_foreach(orgs, i, o) {
		json_t *s = settings_effective(json_object_get(o, "settings"));
		int t = (int)json_integer_value(json_object_get(s, "tick_minutes"));
		if(i == 0 || (t > 0 && t < best))
			best = t > 0 ? t : best;
		json_decref(s);
	}
	json_decref(orgs);
	return best;
}

/* sched_main - tick, sleep, repeat */
static void *sched_main(void *arg)
{
	struct lc_env env = {.public_url = public_url_copy};
	struct store *st = NULL;
	struct gw_err err = {0};

	(void)arg;
	if(store_open(db_path_copy, false, &st, &err)) {
		log_event("error", "sched_open_failed", json_pack("{s:s}", "error", err.message));
		return NULL;
	}
	while(!atomic_load(&stop_flag)) {
		json_t *res = NULL;
		struct timespec ts;
		bool held = false;
		gw_rc rc;

		memset(&err, 0, sizeof(err));
		/* several gateways on one database: the one holding the tick lock ticks, the others
		 * skip this round (a tick is one transaction under the write lock as well, and its
		 * dedupe keys make a doubled one harmless: the lock saves the work) */
		rc = store_tick_lock(st, false, &held);
		if(!rc && held) {
			rc = sched_tick(st, &env, clock_now(), &res, &err);
			store_tick_unlock(st);
		}
		if(rc)
			log_event("error", "tick_failed",
			          json_pack("{s:s, s:s, s:s}", "error", gw_rc_name(rc), "message",
			                    err.message, "cause", err.cause));
		else if(held)
			log_event("info", "tick", res);
		else
			log_event("debug", "tick_skipped",
			          json_pack("{s:s}", "reason", "another gateway holds the tick lock"));
		res = NULL;
		/* CLOCK_REALTIME with pthread_cond_timedwait, as every wait (see dispatch.c) */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 60 * interval_minutes(st);
		pthread_mutex_lock(&stop_lock);
		while(!atomic_load(&stop_flag)) {
			if(pthread_cond_timedwait(&stop_cond, &stop_lock, &ts) != 0)
				break;
		}
		pthread_mutex_unlock(&stop_lock);
	}
	store_close(st);
	return NULL;
}

/* sched_start - start the thread */
gw_rc sched_start(const char *db_path, const char *public_url, struct gw_err *err)
{
	db_path_copy = strdup(db_path);
	public_url_copy = strdup(public_url);
	if(!db_path_copy || !public_url_copy)
		return gw_err_set(err, GW_ENOMEM, "", "out of memory");
	atomic_store(&stop_flag, 0);
	if(pthread_create(&thread, NULL, sched_main, NULL) != 0)
		return gw_err_set(err, GW_EIO, "", "cannot start the scheduler");
	started = true;
	return GW_OK;
}

/* sched_stop - stop the thread */
void sched_stop(void)
{
	if(started) {
		pthread_mutex_lock(&stop_lock);
		atomic_store(&stop_flag, 1);
		pthread_cond_broadcast(&stop_cond);
		pthread_mutex_unlock(&stop_lock);
		pthread_join(thread, NULL);
		started = false;
	}
	free(db_path_copy);
	free(public_url_copy);
	db_path_copy = public_url_copy = NULL;
}
