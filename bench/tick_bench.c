/*
 * tick_bench.c - the cost of a scheduler tick against 10,000 and 1,000,000 bookings spread
 * over a year: a tick that finds nothing due, and a tick that finds 1,000 reminders due.
 *
 * Usage: tick_bench [DIR]   (default: a temp folder, removed at the end)
 * Prints one line per measurement and the ratios the targets are stated in.
 * The data is written with plain SQL (it is a measuring tool, not part of the gateway); the
 * tick itself is the gateway's own sched_tick() on the gateway's store.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "gateway/scheduler/scheduler.h"
#include "store/store.h"
#include "common/tz.h"

#define TRAINERS 1000
#define DUE 1000
#define DUE_RUNS 5 /* due ticks timed, each on the same 1,000 reminders */
#define T0 1796112000 /* 2026-12-01T08:00:00Z: "now" of the ticks */

/* exec - run SQL or die */
static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if(sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "tick_bench: %s: %s\n", sql, msg);
		exit(1);
	}
}

/* populate - n bookings over a year around T0, none near T0 + 24 h / + 1 h (idle), with
 * the past ones completed */
static void populate(const char *path, long n)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	sqlite3 *db;
	sqlite3_stmt *ins;
	char sql[512];
	long i;

	if(store_open(path, true, &st, &err)) {
		fprintf(stderr, "tick_bench: %s\n", err.message);
		exit(1);
	}
	store_close(st);
	if(sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN");
	exec(db, "INSERT INTO orgs(id, name, timezone, settings, created_at) VALUES(1, 'Bench',"
	         " 'UTC', '{\"reminder_hours\":[24,1]}', 0)");
	for(i = 1; i <= TRAINERS; i++) {
		snprintf(sql, sizeof(sql),
		         "INSERT INTO users(id, org_id, email, name, roles, skills, token_hash,"
		         " created_at) VALUES(%ld, 1, 't%ld@bench.test', 'T%ld', 4, '[]', 'h%ld', 0)",
		         i, i, i, i);
		exec(db, sql);
	}
	exec(db, "INSERT INTO requests(id, org_id, customer_name, customer_email, status,"
	         " created_at, updated_at) VALUES(1, 1, 'C', 'c@bench.test', 'booked', 0, 0)");
	if(sqlite3_prepare_v2(db,
	                      "INSERT INTO bookings(org_id, request_id, trainer_id, status, start_at,"
	                      " end_at, length_minutes, uid, confirmed_at, created_at, updated_at)"
	                      " VALUES(1, 1, ?1, ?2, ?3, ?3 + 3600, 60, 'u', 0, 0, 0)",
	                      -1, &ins, NULL) != SQLITE_OK)
		exit(1);
	for(i = 0; i < n; i++) {
		/* slot i of trainer (i % TRAINERS): one-hour bookings, one every 2 hours per trainer,
		 * half a year before and after T0, skipping T0 - 1 d .. T0 + 3 d */
		long k = i / TRAINERS;
		long per = n / TRAINERS;
		long long start = (long long)T0 - 183LL * 86400 + k * (366LL * 86400 / (per + 1));
		start -= start % 1800;
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, i % TRAINERS + 1);
		/* near T0 they were cancelled, so the idle tick has nothing due */
		sqlite3_bind_text(ins, 2,
		                  start > T0 - 86400 && start < T0 + 3 * 86400
		                      ? "cancelled"
		                      : (start < T0 ? "completed" : "confirmed"),
		                  -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 3, start);
		if(sqlite3_step(ins) != SQLITE_DONE) {
			fprintf(stderr, "tick_bench: insert: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
	}
	sqlite3_finalize(ins);
	exec(db, "COMMIT; ANALYZE;");
	sqlite3_close(db);
}

/* add_due - DUE confirmed bookings starting exactly 24 h after T0 */
static void add_due(const char *path)
{
	sqlite3 *db;
	char sql[512];
	int i;

	if(sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	exec(db, "BEGIN");
	for(i = 0; i < DUE; i++) {
		snprintf(sql, sizeof(sql),
		         "INSERT INTO bookings(org_id, request_id, trainer_id, status, start_at, end_at,"
		         " length_minutes, uid, confirmed_at, created_at, updated_at) VALUES(1, 1, %d,"
		         " 'confirmed', %lld, %lld, 60, 'due%d', 0, 0, 0)",
		         i % TRAINERS + 1, (long long)T0 + 86400 + (i / TRAINERS) * 3600,
		         (long long)T0 + 86400 + (i / TRAINERS) * 3600 + 3600, i);
		exec(db, sql);
	}
	exec(db, "COMMIT");
	sqlite3_close(db);
}

/* undo_due - forget the reminders a due tick enqueued (rows, messages, dedupe keys), so that
 * the next tick at T0 finds the same 1,000 due again, and checkpoint */
static void undo_due(const char *path)
{
	sqlite3 *db;

	if(sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	exec(db, "BEGIN;"
	         " DELETE FROM outbox_messages WHERE outbox_id IN"
	         "  (SELECT id FROM outbox WHERE kind = 'reminder');"
	         " DELETE FROM dedupe_keys WHERE outbox_id IN"
	         "  (SELECT id FROM outbox WHERE kind = 'reminder');"
	         " DELETE FROM outbox WHERE kind = 'reminder';"
	         " COMMIT;"
	         /* and the WAL copied back, as the gateway's checkpoint thread does every 500 ms
	          * (the store's own connections never checkpoint) */
	         " PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_close(db);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* time_tick - best of reps ticks at T0 in microseconds; *found: reminders of the first */
static double time_tick(const char *path, int reps, long long *found)
{
	struct lc_env env = {.public_url = "http://127.0.0.1:8080"};
	struct store *st = NULL;
	struct gw_err err = {0};
	double best = 1e18;
	int r;

	if(store_open(path, false, &st, &err))
		exit(1);
	*found = -1;
	for(r = 0; r < reps; r++) {
		json_t *res = NULL;
		int64_t a = clock_mono_ms(), b;
		struct timespec t1, t2;
		double us;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		if(sched_tick(st, &env, T0, &res, &err)) {
			fprintf(stderr, "tick_bench: tick failed: %s %s\n", err.message, err.cause);
			exit(1);
		}
		clock_gettime(CLOCK_MONOTONIC, &t2);
		b = clock_mono_ms();
		(void)a;
		(void)b;
		us = (double)(t2.tv_sec - t1.tv_sec) * 1e6 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e3;
		if(*found < 0)
			*found = json_integer_value(json_object_get(res, "reminders"));
		if(us < best)
			best = us;
		json_decref(res);
	}
	store_close(st);
	return best;
}

/* run - build a data set of n bookings and measure both ticks */
static void run(const char *dir, long n, double *idle, double *due)
{
	char path[512];
	long long found;

	snprintf(path, sizeof(path), "%s/bench-%ld.db", dir, n);
	unlink(path);
	populate(path, n);
	*idle = time_tick(path, 20, &found);
	printf("bookings=%-8ld idle tick: %9.1f us (reminders found: %lld)\n", n, *idle, found);
	add_due(path);
	{
		/* DUE_RUNS due ticks, each on a store just opened and with the same reminders due
		 * (undo_due between): the median, beside the first and the spread */
		double t[DUE_RUNS], first;
		int r;

		for(r = 0; r < DUE_RUNS; r++) {
			if(r)
				undo_due(path);
			t[r] = time_tick(path, 1, &found);
			if(found != DUE) {
				fprintf(stderr, "tick_bench: expected %d reminders, got %lld\n", DUE,
				        found);
				exit(1);
			}
		}
		first = t[0];
		qsort(t, DUE_RUNS, sizeof(t[0]), cmp_double);
		*due = t[DUE_RUNS / 2];
		printf("bookings=%-8ld due tick:  %9.1f us, the median of %d (first %.1f, %.1f to"
		       " %.1f; reminders enqueued: %lld)\n",
		       n, *due, DUE_RUNS, first, t[0], t[DUE_RUNS - 1], found);
	}
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/ordinatus-tickbench-XXXXXX", cmd[600];
	const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
	double idle_s, due_s, idle_l, due_l;

	if(!dir)
		return 1;
	tz_init();
	run(dir, 10000, &idle_s, &due_s);
	run(dir, 1000000, &idle_l, &due_l);
	printf("idle tick 1M / 10k: %.2fx (target <= 2x); idle tick at 1M: %.2f ms (target < 20 ms)\n",
	       idle_l / idle_s, idle_l / 1000);
	printf("1,000 due at 1M: %.1f ms (target < 100 ms); at 10k: %.1f ms\n", due_l / 1000,
	       due_s / 1000);
	if(argc <= 1) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if(system(cmd) != 0)
			return 1;
	}
	return 0;
}
