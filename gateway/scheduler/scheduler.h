/*
 * scheduler.h - the scheduler: a pure function of (database, now). Reminders, close reminders,
 * auto-close and the release of expired payment holds. Running a tick twice, concurrently
 * (two processes), or after a restart never doubles anything: every email has its dedupe key,
 * and every state change is a conditional UPDATE.
 *
 * Windows: a reminder of offset H hours for a booking starting at S is due at the tick "now"
 * when its point P = S - H h lies within one tick of now (now - tick < P <= now + tick), the
 * booking was confirmed at or before P, and the session has not started. It is enqueued to go
 * out at P (not before) with the start as its deadline. So a reminder goes at P or at most one
 * tick late, a booking confirmed after P never gets it (no retroactive
 * reminders), and a daemon that was down for longer than a tick misses the windows that passed
 * meanwhile (documented: no retroactive sends). Auto-close and hold release have no window:
 * they catch up on the first tick after a downtime.
 *
 * Threading: sched_tick uses the caller's store connection; sched_start runs a thread.
 */
#ifndef SCHED_H
#define SCHED_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "common/gw.h"
#include "gateway/lifecycle/lc.h"
#include "store/store.h"

/* sched_reminder_due - the window rule above (pure). offset and tick in minutes. */
bool sched_reminder_due(time_t start, time_t confirmed_at, int offset_min, int tick_min,
                        time_t now);

/* sched_tick - one tick at now, in one transaction. *out: {"at", "reminders",
 * "close_reminders", "auto_completed", "auto_cancelled", "holds_released"} counting only what
 * this tick did (new reference). */
gw_rc sched_tick(struct store *st, const struct lc_env *env, time_t now, json_t **out,
                 struct gw_err *err);

/* sched_start - a thread that ticks every tick_minutes (the smallest of the organisations'),
 * first at start-up. Not started under the test clock (ticks then run on demand). */
gw_rc sched_start(const char *db_path, const char *public_url, struct gw_err *err);

/* sched_stop - stop and join the thread (no-op when not started). */
void sched_stop(void);

#endif
