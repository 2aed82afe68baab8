/*
 * store_sqlite.c - the SQLite backend of store_db.h: one connection per thread (WAL mode,
 * synchronous=NORMAL), BEGIN IMMEDIATE for writers, which SQLite serialises.
 *
 * Entry points: db_sqlite_ops, store_global_init(), store_backup().
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct db_conn {
	const struct db_ops *ops;
	sqlite3 *db;
};

struct db_stmt {
	const struct db_ops *ops;
	sqlite3_stmt *s;
	sqlite3 *db;
};

/* rc - a SQLite result code as enum db_rc */
static int rc(sqlite3 *db, int r)
{
	switch(r & 0xff) {
	case SQLITE_OK:
		return DB_OK;
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_DONE:
		return DB_DONE;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DB_BUSY;
	case SQLITE_NOMEM:
		return DB_NOMEM;
	case SQLITE_CONSTRAINT:
		/* migration 2's trigger RAISE(ABORT, 'slot_taken') */
		if(r == SQLITE_CONSTRAINT_TRIGGER && db && strstr(sqlite3_errmsg(db), "slot_taken"))
			return DB_SLOT;
		return DB_CONSTRAINT;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		return DB_IOERR;
	case SQLITE_FULL:
		return DB_FULL;
	default:
		return DB_ERROR;
	}
}

/* private_files - the database and its -wal and -shm files readable by the owner only. SQLite
 * creates the -wal and -shm with the database file's mode (os_unix.c findCreateFileMode), and
 * the database with 0644 less the umask: files made by an older release, or under a wider
 * umask, are narrowed here on every open. A file that is not there is not an error. */
static void private_files(const char *path)
{
	static const char *const ext[] = {"", "-wal", "-shm"};
	char p[4096];
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(ext); i++) {
		if((size_t)snprintf(p, sizeof(p), "%s%s", path, ext[i]) >= sizeof(p))
			return;
		(void)chmod(p, 0600);
	}
}

static struct db_conn *sq_open(const char *where, bool create, char *msg, size_t msglen)
{
	struct db_conn *c = calloc(1, sizeof(*c));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int r;

	if(!c) {
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	c->ops = &db_sqlite_ops;
	r = sqlite3_open_v2(where, &c->db, flags, store_wal_vfs()); /* store_wal.c */
	private_files(where);
	if(r != SQLITE_OK) {
		snprintf(msg, msglen, "cannot open the database %s: %s", where,
		         c->db ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, 10000);
	/* wal_autocheckpoint=0: a commit never copies the WAL back into the database (which took
	 * an intake's fan-out of 10,000 rows from 5 to 20-50 ms, and stalled every dispatch worker
	 * waiting to record its batch); the dispatcher's checkpoint thread does it instead
	 * (store_checkpoint), off every request's and every send's path. cache_spill=OFF: a big
	 * transaction (an intake's fan-out) keeps its dirty pages in memory until its commit
	 * instead of spilling them into the WAL, however small the cache; so cache_size can stay
	 * at 8 MB per connection: with 32 MB (one connection per HTTP thread and per worker, each
	 * filling its cache with what it read) bench/soak.sh held 130-165 MB of RSS, with 8 MB
	 * 51-65 MB under the same traffic, and the fan-out of 10,000 rows takes as long. */
	if(sqlite3_exec(c->db,
	                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	                " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
	                " PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-8192;"
	                " PRAGMA cache_spill=OFF; PRAGMA secure_delete=FAST;",
	                NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(msg, msglen, "cannot set up the database %s: %s", where,
		         sqlite3_errmsg(c->db));
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	private_files(where); /* the -wal and -shm exist now */
	return c;
}

static void sq_close(struct db_conn *c)
{
	if(!c)
		return;
	sqlite3_close(c->db);
	free(c);
}

static int sq_exec(struct db_conn *c, const char *sql)
{
	return rc(c->db, sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

static struct db_stmt *sq_prepare(struct db_conn *c, const char *sql)
{
	struct db_stmt *s = calloc(1, sizeof(*s));

	if(!s)
		return NULL;
	s->ops = &db_sqlite_ops;
	s->db = c->db;
	if(sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->s, NULL) !=
	   SQLITE_OK) {
		free(s);
		return NULL;
	}
	return s;
}

static void sq_finalize(struct db_stmt *s)
{
	if(!s)
		return;
	sqlite3_finalize(s->s);
	free(s);
}

static int sq_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	return rc(s->db, sqlite3_bind_int64(s->s, i, v));
}

static int sq_bind_text(struct db_stmt *s, int i, const char *v, int len)
{
	return rc(s->db, sqlite3_bind_text(s->s, i, v, len, SQLITE_TRANSIENT));
}

static int sq_bind_null(struct db_stmt *s, int i, int type)
{
	(void)type; /* SQLite's values carry their own types */
	return rc(s->db, sqlite3_bind_null(s->s, i));
}

static int sq_step(struct db_stmt *s)
{
	return rc(s->db, sqlite3_step(s->s));
}

static void sq_reset(struct db_stmt *s)
{
	sqlite3_reset(s->s);
}

static void sq_clear(struct db_stmt *s)
{
	sqlite3_clear_bindings(s->s);
}

static int sq_col_type(struct db_stmt *s, int i)
{
	switch(sqlite3_column_type(s->s, i)) {
	case SQLITE_NULL:
		return DB_NULL;
	case SQLITE_INTEGER:
		return DB_INTEGER;
	default:
		return DB_TEXT;
	}
}

static int64_t sq_col_int64(struct db_stmt *s, int i)
{
	return sqlite3_column_int64(s->s, i);
}

static const char *sq_col_text(struct db_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s->s, i);
}

static int64_t sq_changes(struct db_conn *c)
{
	return sqlite3_changes(c->db);
}

static int64_t sq_last_id(struct db_conn *c)
{
	return sqlite3_last_insert_rowid(c->db);
}

static const char *sq_errmsg(struct db_conn *c)
{
	return sqlite3_errmsg(c->db);
}

static int sq_begin(struct db_conn *c)
{
	/* IMMEDIATE: the write lock now, so that what the transaction checks holds until commit */
	return sq_exec(c, "BEGIN IMMEDIATE");
}

static int sq_commit(struct db_conn *c)
{
	return sq_exec(c, "COMMIT");
}

static void sq_rollback(struct db_conn *c)
{
	if(!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static bool sq_in_txn(struct db_conn *c)
{
	return !sqlite3_get_autocommit(c->db);
}

/* sq_checkpoint - a passive checkpoint; a RESTART one once restart_frames frames are in the
 * WAL (it waits for the readers of old snapshots, so that the next writer starts the log from
 * its beginning again). A busy database is not a failure: the next checkpoint goes on. */
static int sq_checkpoint(struct db_conn *c, int restart_frames)
{
	int log = 0, r = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
	                                           NULL);

	if(r == SQLITE_OK && log >= restart_frames)
		r = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	return r == SQLITE_BUSY ? DB_OK : rc(c->db, r);
}

static int sq_tune_worker(struct db_conn *c)
{
	/* In WAL mode a connection drops its page cache whenever another connection committed,
	 * and the workers commit all the time: every lease would read its pages again with
	 * pread(). Mapped, those reads are memory loads from the OS page cache. */
	return sq_exec(c, "PRAGMA mmap_size = 268435456; PRAGMA cache_size = -8192;");
}

/* store_global_init - process-wide SQLite settings */
void store_global_init(void)
{
	/* each connection belongs to one thread at a time (store.h): no serialising mutexes, and
	 * no global allocation statistics, whose mutex every malloc of every thread would take */
	sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_initialize();
}

/* store_backup - sqlite3_backup_init/step/finish (sqlite.org/backup.html) */
gw_rc store_backup(const char *path, const char *to, int *pages, struct gw_err *err)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b = NULL;
	sqlite3_stmt *q = NULL;
	gw_rc rc = GW_OK;
	int fd, r, tries = 0;
	bool made = false;

	*pages = 0;
	if(db_backend(path) != &db_sqlite_ops)
		return gw_err_set(err, GW_EINVAL, "db",
		                  "a PostgreSQL database is backed up with pg_dump, not ordinatus backup");
	/* claim the name first: an existing file (or a link) is never written through */
	fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if(fd < 0)
		return gw_err_set(err, GW_EINVAL, "to", "cannot create %s: %s%s", to, strerror(errno),
		                  errno == EEXIST ? " (a backup never overwrites a file)" : "");
	made = true;
	close(fd);
	r = sqlite3_open_v2(path, &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if(r != SQLITE_OK) {
		rc = gw_err_set(err, GW_EIO, "", "cannot open the database %s: %s", path,
		                src ? sqlite3_errmsg(src) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(src, 10000);
	r = sqlite3_open_v2(to, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if(r != SQLITE_OK) {
		rc = gw_err_set(err, GW_EIO, "", "cannot open %s: %s", to,
		                dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	b = sqlite3_backup_init(dst, "main", src, "main");
	if(!b) {
		rc = gw_err_set(err, GW_EIO, "", "cannot start the backup: %s", sqlite3_errmsg(dst));
		goto out;
	}
	/* every page in one step: one read transaction, so one consistent snapshot. A writer
	 * holding the lock makes it SQLITE_BUSY: wait and go on (at most about 30 s). */
	for(;;) {
		r = sqlite3_backup_step(b, -1);
		if(r == SQLITE_DONE)
			break;
		if((r == SQLITE_BUSY || r == SQLITE_LOCKED) && ++tries < 600) {
			sqlite3_sleep(50);
			continue;
		}
		rc = gw_err_set(err, GW_EIO, "", "the backup failed: %s", sqlite3_errstr(r));
		goto out;
	}
	*pages = sqlite3_backup_pagecount(b);
	r = sqlite3_backup_finish(b);
	b = NULL;
	if(r != SQLITE_OK) {
		rc = gw_err_set(err, GW_EIO, "", "the backup failed: %s", sqlite3_errstr(r));
		goto out;
	}
	r = sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &q, NULL);
	if(r != SQLITE_OK || sqlite3_step(q) != SQLITE_ROW ||
	   strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0) {
		rc = gw_err_set(err, GW_EIO, "", "the copy does not pass quick_check");
		goto out;
	}
out:
	sqlite3_finalize(q);
	if(b)
		sqlite3_backup_finish(b);
	sqlite3_close(dst);
	sqlite3_close(src);
	if(made) {
		private_files(to);
		if(rc) {
			char p[4096];

			unlink(to);
			if((size_t)snprintf(p, sizeof(p), "%s-wal", to) < sizeof(p))
				unlink(p);
			if((size_t)snprintf(p, sizeof(p), "%s-shm", to) < sizeof(p))
				unlink(p);
		}
	}
	return rc;
}


const struct db_ops db_sqlite_ops = {
    .name = "sqlite",
    .dialect = DB_SQLITE,
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .bind_int64 = sq_bind_int64,
    .bind_text = sq_bind_text,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .reset = sq_reset,
    .clear = sq_clear,
    .col_type = sq_col_type,
    .col_int64 = sq_col_int64,
    .col_text = sq_col_text,
    .changes = sq_changes,
    .last_id = sq_last_id,
    .errmsg = sq_errmsg,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .in_txn = sq_in_txn,
    .checkpoint = sq_checkpoint,
    .tune_worker = sq_tune_worker,
};
