/*
 * store_db.h - the store's database backends: one table of operations per engine (SQLite in
 * store_sqlite.c, PostgreSQL in store_pg.c), as curl's TLS backends. The store's files speak
 * only to these functions; nothing else in the store knows which engine it runs on.
 *
 * A statement is prepared once per connection from a static SQL text with `?` or `?N`
 * parameters (1-based), bound, stepped row by row, and reset. Values are 64-bit integers,
 * text or NULL; a column's type is what the engine gives back (booleans read as 0 or 1).
 * Threading: a connection and its statements belong to one thread at a time.
 */
#ifndef STORE_DB_H
#define STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* results of a step or call (their own numbers: no engine's codes leak past its backend) */
enum db_rc {
	DB_OK = 0,
	DB_ERROR,      /* anything else: a bug in a statement, a corrupt database */
	DB_BUSY,       /* locked past the busy wait, or a serialization failure: try again */
	DB_NOMEM,      /* allocation failed */
	DB_IOERR,      /* the disk failed */
	DB_FULL,       /* the disk is full */
	DB_CONSTRAINT, /* a unique, foreign-key, not-null or check constraint */
	DB_SLOT,       /* the held-time constraint (slot_taken): two held bookings overlap */
	DB_DOWN,       /* the server cannot be reached (PostgreSQL): the call did not happen */
	DB_ROW = 100,  /* a step has a row */
	DB_DONE = 101, /* a step has finished */
};

/* a column's type */
enum db_type {
	DB_NULL = 0,
	DB_INTEGER,
	DB_TEXT,
};

/* which SQL text of a struct db_sql a backend takes */
enum db_dialect {
	DB_SQLITE = 0,
	DB_POSTGRES = 1,
};

struct db_conn; /* a backend's connection (its first member is its const struct db_ops *) */
struct db_stmt; /* a backend's statement (its first member is its const struct db_ops *) */

struct db_ops {
	const char *name;        /* "sqlite", "postgresql" */
	enum db_dialect dialect; /* which text of a struct db_sql it runs */
	/* open - connect to where (a path, a URL); create: a missing SQLite file may be made.
	 * On failure NULL, with why in msg (no password in it). */
	struct db_conn *(*open)(const char *where, bool create, char *msg, size_t msglen);
	void (*close)(struct db_conn *c);
	/* exec - SQL text with no parameters and no rows (one statement or several) */
	int (*exec)(struct db_conn *c, const char *sql);
	struct db_stmt *(*prepare)(struct db_conn *c, const char *sql);
	void (*finalize)(struct db_stmt *s);
	int (*bind_int64)(struct db_stmt *s, int i, int64_t v);
	int (*bind_text)(struct db_stmt *s, int i, const char *v, int len); /* copied */
	int (*bind_null)(struct db_stmt *s, int i, int type); /* type: what a value there is */
	int (*step)(struct db_stmt *s);
	void (*reset)(struct db_stmt *s);
	void (*clear)(struct db_stmt *s);
	int (*col_type)(struct db_stmt *s, int i);
	int64_t (*col_int64)(struct db_stmt *s, int i);
	const char *(*col_text)(struct db_stmt *s, int i); /* NULL for NULL; valid until step */
	int64_t (*changes)(struct db_conn *c);             /* rows the last write changed */
	int64_t (*last_id)(struct db_conn *c);             /* id of the last row inserted */
	const char *(*errmsg)(struct db_conn *c);
	int (*begin)(struct db_conn *c);   /* a write transaction: the checks in it hold */
	int (*commit)(struct db_conn *c);
	void (*rollback)(struct db_conn *c); /* no transaction open is fine */
	bool (*in_txn)(struct db_conn *c);
	/* optional (NULL when the engine has no such thing) */
	int (*checkpoint)(struct db_conn *c, int restart_frames); /* SQLite's WAL */
	int (*tune_worker)(struct db_conn *c);                     /* a dispatch worker's settings */
	/* a lock named key shared by every process on the database, held by this connection
	 * until unlock or its end: wait for it, or only try (*held) */
	int (*lock)(struct db_conn *c, int64_t key, bool wait, bool *held);
	void (*unlock)(struct db_conn *c, int64_t key);
	/* news between processes: notify (sent at the commit of the transaction it is in, or
	 * now without one), listen on this connection, wait up to ms for news (*got) */
	int (*notify)(struct db_conn *c, const char *channel);
	int (*listen)(struct db_conn *c, const char *channel);
	int (*wait)(struct db_conn *c, int ms, bool *got);
	bool (*down)(struct db_conn *c); /* the server cannot be reached now */
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_pg_ops;

/* db_backend - the backend for a database location: a postgresql:// or postgres:// URL is
 * PostgreSQL, anything else a SQLite path */
const struct db_ops *db_backend(const char *where);

/* db_pg_translate - the SQL text with its `?` and `?N` parameters as PostgreSQL's `$N`
 * (outside quoted text and names), *n the highest N; NULL when out of memory (caller frees) */
char *db_pg_translate(const char *sql, int *n);

/* a statement with a text per dialect, for the few the two engines cannot share */
struct db_sql {
	const char *sql[2]; /* [DB_SQLITE], [DB_POSTGRES] */
};

/* every backend statement and connection starts with its ops */
struct db_head {
	const struct db_ops *ops;
};

static inline const struct db_ops *db_ops_of(const void *p)
{
	return ((const struct db_head *)p)->ops;
}

static inline int db_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	return db_ops_of(s)->bind_int64(s, i, v);
}

static inline int db_bind_text(struct db_stmt *s, int i, const char *v, int len)
{
	return db_ops_of(s)->bind_text(s, i, v, len);
}

/* db_bind_null - NULL where a value of type (DB_INTEGER, DB_TEXT) goes: PostgreSQL needs the
 * type where the statement alone does not tell it (`?1 IS NULL OR ...`) */
static inline int db_bind_null(struct db_stmt *s, int i, int type)
{
	return db_ops_of(s)->bind_null(s, i, type);
}

static inline int db_step(struct db_stmt *s)
{
	return db_ops_of(s)->step(s);
}

static inline void db_reset(struct db_stmt *s)
{
	db_ops_of(s)->reset(s);
}

static inline void db_clear(struct db_stmt *s)
{
	db_ops_of(s)->clear(s);
}

static inline int db_col_type(struct db_stmt *s, int i)
{
	return db_ops_of(s)->col_type(s, i);
}

static inline int64_t db_col_int64(struct db_stmt *s, int i)
{
	return db_ops_of(s)->col_int64(s, i);
}

static inline int db_col_int(struct db_stmt *s, int i)
{
	return (int)db_ops_of(s)->col_int64(s, i);
}

static inline const char *db_col_text(struct db_stmt *s, int i)
{
	return db_ops_of(s)->col_text(s, i);
}

#endif
