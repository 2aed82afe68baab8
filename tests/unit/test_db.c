/*
 * test_db.c - the store's backend layer (store/store_db.h): which backend a location picks,
 * PostgreSQL's parameter translation (the store's `?` and `?N` texts as `$N`), and the SQLite
 * backend's own results (types of columns, rows changed, the id inserted, a trigger named
 * slot_taken as DB_SLOT, a unique index as DB_CONSTRAINT, transactions).
 *
 * PostgreSQL itself is exercised by the integration suite, which runs on both backends.
 *
 * Entry point: main(). Threading: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store_db.h"
#include "store/store_int.h"

/* the backend by location: a URL of either scheme is PostgreSQL, everything else a path */
static void test_backend_choice(void **state)
{
	static const struct {
		const char *where;
		const struct db_ops *want;
	} rows[] = {
	    {"postgresql://u@127.0.0.1:5432/db", &db_pg_ops},
	    {"postgres://u:pw@db.example/x", &db_pg_ops},
	    {"/var/lib/ordinatus/ordinatus.db", &db_sqlite_ops},
	    {"var/ordinatus.db", &db_sqlite_ops},
	    {"postgresql:/not-a-url", &db_sqlite_ops},
	    {"", &db_sqlite_ops},
	    {NULL, &db_sqlite_ops},
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if(db_backend(rows[i].where) != rows[i].want)
			fail_msg("%s: the %s backend", rows[i].where ? rows[i].where : "NULL",
			         db_backend(rows[i].where)->name);
	assert_int_equal(db_sqlite_ops.dialect, DB_SQLITE);
	assert_int_equal(db_pg_ops.dialect, DB_POSTGRES);
}

/* ? and ?N as $N; quoted text and names are left alone; the highest number is counted */
static void test_pg_translate(void **state)
{
	static const struct {
		const char *in, *out;
		int n;
	} rows[] = {
	    {"SELECT 1", "SELECT 1", 0},
	    {"SELECT ? + ?", "SELECT $1 + $2", 2},
	    {"UPDATE t SET a = ?2 WHERE id = ?1", "UPDATE t SET a = $2 WHERE id = $1", 2},
	    {"SELECT ?1, ?1, ?12", "SELECT $1, $1, $12", 12},
	    {"SELECT '?' || ?", "SELECT '?' || $1", 1},
	    {"SELECT 'it''s ?' , ?3", "SELECT 'it''s ?' , $3", 3},
	    {"SELECT \"a?b\" FROM t WHERE x = ?", "SELECT \"a?b\" FROM t WHERE x = $1", 1},
	    {"SELECT json_extract(c, '$.max_connections') WHERE o = ?1",
	     "SELECT json_extract(c, '$.max_connections') WHERE o = $1", 1},
	    {"(?2 IS NULL OR s = ?2) LIMIT ?3", "($2 IS NULL OR s = $2) LIMIT $3", 3},
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int n = -1;
		char *got = db_pg_translate(rows[i].in, &n);

		assert_non_null(got);
		if(strcmp(got, rows[i].out) != 0 || n != rows[i].n)
			fail_msg("%s: got \"%s\" (%d), want \"%s\" (%d)", rows[i].in, got, n,
			         rows[i].out, rows[i].n);
		free(got);
	}
}

struct fixture {
	char dir[64], path[96];
	struct db_conn *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char msg[256] = "";

	if(!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ordinatus-db-XXXXXX");
	if(!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	f->c = db_sqlite_ops.open(f->path, true, msg, sizeof(msg));
	if(!f->c) {
		fprintf(stderr, "open: %s\n", msg);
		return -1;
	}
	if(db_sqlite_ops.exec(f->c, "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT UNIQUE,"
	                            " n INTEGER, s INTEGER, e INTEGER);"
	                            "CREATE TRIGGER t_overlap BEFORE INSERT ON t WHEN EXISTS"
	                            " (SELECT 1 FROM t WHERE NEW.s < e AND s < NEW.e)"
	                            " BEGIN SELECT RAISE(ABORT, 'slot_taken'); END;") != DB_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[128];

	db_sqlite_ops.close(f->c);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* insert: RETURNING, changes, last id; constraint results by kind; column types */
static void test_sqlite_results(void **state)
{
	struct fixture *f = *state;
	const struct db_ops *o = &db_sqlite_ops;
	struct db_stmt *ins = o->prepare(f->c, "INSERT INTO t(k, n, s, e) VALUES(?1, ?2, ?3, ?4)"
	                                       " RETURNING id");
	struct db_stmt *sel = o->prepare(f->c, "SELECT id, k, n, n IS NULL, ?1 FROM t WHERE k = ?2");

	assert_non_null(ins);
	assert_non_null(sel);
	assert_int_equal(db_bind_text(ins, 1, "a", -1), DB_OK);
	db_bind_int64(ins, 2, 7);
	db_bind_int64(ins, 3, 100);
	db_bind_int64(ins, 4, 200);
	assert_int_equal(db_step(ins), DB_ROW);
	assert_int_equal(db_col_int64(ins, 0), 1);
	db_reset(ins);
	assert_int_equal(o->changes(f->c), 1);
	assert_int_equal(o->last_id(f->c), 1);
	/* the same key: a unique constraint; an overlapping range: the trigger's slot_taken */
	db_bind_int64(ins, 3, 300);
	db_bind_int64(ins, 4, 400);
	assert_int_equal(db_step(ins), DB_CONSTRAINT);
	db_reset(ins);
	db_bind_text(ins, 1, "b", -1);
	db_bind_int64(ins, 3, 150);
	db_bind_int64(ins, 4, 250);
	assert_int_equal(db_step(ins), DB_SLOT);
	db_reset(ins);
	/* NULL of a type, then read back: NULL, integer, text, a boolean as 0/1 */
	db_clear(ins);
	db_bind_text(ins, 1, "c", -1);
	db_bind_null(ins, 2, DB_INTEGER);
	db_bind_int64(ins, 3, 500);
	db_bind_int64(ins, 4, 600);
	assert_int_equal(db_step(ins), DB_ROW);
	db_reset(ins);
	db_bind_text(sel, 1, "x", -1);
	db_bind_text(sel, 2, "c", -1);
	assert_int_equal(db_step(sel), DB_ROW);
	assert_int_equal(db_col_type(sel, 0), DB_INTEGER);
	assert_int_equal(db_col_type(sel, 1), DB_TEXT);
	assert_string_equal(db_col_text(sel, 1), "c");
	assert_int_equal(db_col_type(sel, 2), DB_NULL);
	assert_null(db_col_text(sel, 2));
	assert_int_equal(db_col_int(sel, 3), 1);
	assert_string_equal(db_col_text(sel, 4), "x");
	assert_int_equal(db_step(sel), DB_DONE);
	db_reset(sel);
	o->finalize(ins);
	o->finalize(sel);
}

/* a write transaction: rolled back, nothing of it stays; committed, it does */
static void test_sqlite_transactions(void **state)
{
	struct fixture *f = *state;
	const struct db_ops *o = &db_sqlite_ops;
	struct db_stmt *cnt = o->prepare(f->c, "SELECT count(*) FROM t");

	assert_false(o->in_txn(f->c));
	assert_int_equal(o->begin(f->c), DB_OK);
	assert_true(o->in_txn(f->c));
	assert_int_equal(o->exec(f->c, "INSERT INTO t(k, s, e) VALUES('r', 1, 2)"), DB_OK);
	o->rollback(f->c);
	assert_false(o->in_txn(f->c));
	o->rollback(f->c); /* none open: fine */
	assert_int_equal(db_step(cnt), DB_ROW);
	assert_int_equal(db_col_int64(cnt, 0), 0);
	db_reset(cnt);
	assert_int_equal(o->begin(f->c), DB_OK);
	assert_int_equal(o->exec(f->c, "INSERT INTO t(k, s, e) VALUES('r', 1, 2)"), DB_OK);
	assert_int_equal(o->commit(f->c), DB_OK);
	assert_int_equal(db_step(cnt), DB_ROW);
	assert_int_equal(db_col_int64(cnt, 0), 1);
	db_reset(cnt);
	o->finalize(cnt);
	/* SQLite has one process per database: no cross-process lock or news of its own */
	assert_null(o->lock);
	assert_null(o->listen);
	assert_non_null(db_pg_ops.lock);
	assert_non_null(db_pg_ops.listen);
}

/* count - rows of t on connection c */
static int64_t count(struct db_conn *c)
{
	struct db_stmt *s = db_sqlite_ops.prepare(c, "SELECT count(*) FROM t");
	int64_t n = -1;

	if(s && db_step(s) == DB_ROW)
		n = db_col_int64(s, 0);
	db_sqlite_ops.finalize(s);
	return n;
}

/* fill - n rows of about 2 KB in one transaction on c; commit or roll back */
static void fill(struct db_conn *c, int first, int n, bool commit)
{
	struct db_stmt *ins = db_sqlite_ops.prepare(
	        c, "INSERT INTO t(k, n, s, e) VALUES(printf('%2000d', ?1), 2000, ?1 * 10,"
	           " ?1 * 10 + 1)");
	int i;

	assert_non_null(ins);
	assert_int_equal(db_sqlite_ops.begin(c), DB_OK);
	for(i = first; i < first + n; i++) {
		db_bind_int64(ins, 1, i);
		assert_int_equal(db_step(ins), DB_DONE);
		db_reset(ins);
	}
	db_sqlite_ops.finalize(ins);
	if(commit)
		assert_int_equal(db_sqlite_ops.commit(c), DB_OK);
	else
		db_sqlite_ops.rollback(c);
}

/* store_wal.c: a commit's frames go to the WAL in a few writes, not two a frame, and what
 * another connection then reads is all of it: a commit larger than the buffer, a rollback that
 * leaves nothing, and commits of a process killed right after them (kill -9: nothing is
 * closed or flushed at exit) all read back whole */
static void test_sqlite_wal_coalesced(void **state)
{
	struct fixture *f = *state;
	char msg[256] = "";
	struct db_conn *b = db_sqlite_ops.open(f->path, false, msg, sizeof(msg));
	struct db_stmt *q;
	long calls0, frames0, calls, frames;
	pid_t pid;
	int status = 0, i;

	assert_non_null(store_wal_vfs());
	assert_non_null(b);
	assert_int_equal(count(b), 0);
	store_wal_counts(&calls0, &frames0);
	fill(f->c, 1, 400, true); /* about 200 pages: more than one buffer */
	store_wal_counts(&calls, &frames);
	assert_true(frames - frames0 >= 150);
	assert_true(calls - calls0 < (frames - frames0) / 4);
	assert_int_equal(count(b), 400);
	/* uncommitted: nothing visible; rolled back: nothing stays */
	assert_int_equal(db_sqlite_ops.begin(f->c), DB_OK);
	assert_int_equal(db_sqlite_ops.exec(f->c, "DELETE FROM t WHERE id <= 100"), DB_OK);
	assert_int_equal(count(b), 400);
	db_sqlite_ops.rollback(f->c);
	fill(f->c, 1000, 400, false);
	assert_int_equal(count(b), 400);
	assert_int_equal(count(f->c), 400);
	/* another process commits 30 small transactions and a large one, and is killed (this
	 * process's connections closed first: SQLite's unix VFS shares its lock bookkeeping
	 * between the connections of a process, which a child would inherit) */
	db_sqlite_ops.close(b);
	db_sqlite_ops.close(f->c);
	pid = fork();
	assert_true(pid >= 0);
	if(pid == 0) {
		struct db_conn *c = db_sqlite_ops.open(f->path, false, msg, sizeof(msg));

		if(!c)
			_exit(2);
		for(i = 0; i < 30; i++)
			fill(c, 2000 + i, 1, true);
		fill(c, 3000, 300, true);
		raise(SIGKILL);
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	f->c = db_sqlite_ops.open(f->path, false, msg, sizeof(msg));
	b = db_sqlite_ops.open(f->path, false, msg, sizeof(msg));
	assert_non_null(f->c);
	assert_non_null(b);
	assert_int_equal(count(b), 730);
	q = db_sqlite_ops.prepare(b, "SELECT sum(n) FROM t");
	assert_non_null(q);
	assert_int_equal(db_step(q), DB_ROW);
	assert_int_equal(db_col_int64(q, 0), 730 * 2000);
	db_sqlite_ops.finalize(q);
	q = db_sqlite_ops.prepare(b, "PRAGMA integrity_check");
	assert_non_null(q);
	assert_int_equal(db_step(q), DB_ROW);
	assert_string_equal(db_col_text(q, 0), "ok");
	db_sqlite_ops.finalize(q);
	db_sqlite_ops.close(b);
}

/* a PostgreSQL URL that cannot be reached: NULL, and the message names no password */
static void test_pg_unreachable(void **state)
{
	char msg[512] = "";
	struct db_conn *c;

	(void)state;
	/* port 1 on loopback: refused at once, no network beyond this machine */
	c = db_pg_ops.open("postgresql://ordinatus:s3cret-pw@127.0.0.1:1/x?connect_timeout=2",
	                   false, msg, sizeof(msg));
	assert_null(c);
	assert_non_null(strstr(msg, "127.0.0.1"));
	assert_null(strstr(msg, "s3cret-pw"));
	c = db_pg_ops.open("postgresql://[::1", false, msg, sizeof(msg));
	assert_null(c);
	assert_null(strstr(msg, "::1:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backend_choice),
	    cmocka_unit_test(test_pg_translate),
	    cmocka_unit_test_setup_teardown(test_sqlite_results, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sqlite_transactions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sqlite_wal_coalesced, setup, teardown),
	    cmocka_unit_test(test_pg_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
