/*
 * store_int.h - internals shared by the store's files; not for other components.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include "store.h"
#include "store_db.h"

/* Room for every statement the store has (about 85 today) with headroom: a connection that
 * prepares one more than this fails that query (GW_EDB), so keep it well above the count. */
#define STORE_STMT_CACHE 256

struct store {
	const struct db_ops *ops; /* the backend (store_db.h) */
	struct db_conn *db;       /* owned */
	struct {
		const char *sql;       /* static string: cache key by address */
		struct db_stmt *stmt; /* owned */
	} cache[STORE_STMT_CACHE];
	int ncache;
	bool enqueued; /* this transaction added outbox rows: tell the other gateways at commit */
	struct {
		char cls[16];     /* provider class, "" unused */
		int64_t after[2]; /* per priority: the lease's organisations start after this one */
	} lease_turn[4];          /* store_outbox.c: they take turns beyond LEASE_ORGS_MAX */
};

/* store_wal_vfs - the name of the SQLite VFS the store opens databases with (store_wal.c: the
 * default one with a commit's WAL writes coalesced), NULL (SQLite's default) when it could not
 * be registered. Static string. */
const char *store_wal_vfs(void);

/* store_wal_counts - write calls made to the WAL files of that VFS, and the frames that went
 * through its buffer, since the process started (tests/unit/test_db.c) */
void store_wal_counts(long *calls, long *frames);

/* store_stmt - a prepared, reset statement for the static SQL text sql (cached per
 * connection); NULL on a prepare error. Borrowed until the store closes. */
struct db_stmt *store_stmt(struct store *st, const char *sql);

/* store_stmt_d - store_stmt for a statement with a text per dialect */
struct db_stmt *store_stmt_d(struct store *st, const struct db_sql *q);

/* the connection's last write: rows it changed, the id it inserted, its error text */
static inline int64_t db_changes(struct store *st)
{
	return st->ops->changes(st->db);
}

static inline int64_t db_last_id(struct store *st)
{
	return st->ops->last_id(st->db);
}

static inline const char *db_errmsg(struct store *st)
{
	return st->ops->errmsg(st->db);
}

/* store_row_fn - one row of a statement as JSON (new reference; NULL on out-of-memory) */
typedef json_t *(*store_row_fn)(struct db_stmt *s);

/* store_collect - step the bound statement s to its end, each row through row into a new
 * array (*out, new reference); resets s. GW_EDB when a step fails. */
gw_rc store_collect(struct db_stmt *s, store_row_fn row, json_t **out);

/* store_one - step the bound statement s once: its row through row into *out (new reference);
 * resets s. GW_ENOTFOUND without a row, GW_EDB when the step fails. */
gw_rc store_one(struct db_stmt *s, store_row_fn row, json_t **out);

/* store_write_rc - the result of a write step r: GW_OK, GW_ESLOT for the overlap trigger of
 * migration 2, or store_rc's mapping */
gw_rc store_write_rc(struct store *st, int r);

/* store_step_done - step the bound write statement s to its end and reset it: GW_OK, or
 * store_write_rc's mapping of the failure */
gw_rc store_step_done(struct store *st, struct db_stmt *s);

/* store_cond_update - step the bound conditional UPDATE s (one row when its condition holds):
 * GW_OK when it changed the row; otherwise step the bound existence query e: miss_rc when the
 * row exists (its state forbade the change), GW_ENOTFOUND when it does not. Resets both. */
gw_rc store_cond_update(struct store *st, struct db_stmt *s, struct db_stmt *e, gw_rc miss_rc);

/* store_calendar_hook - apply a calendar result (r's cal_* fields) inside the finishing
 * transaction (store_calendar.c) */
gw_rc store_calendar_hook(struct store *st, const struct store_result *r, time_t now);

/* store_calendar_hold_check - a row just held (STORE_HELD) goes back to pending, due now, when
 * its trainer has no connection that needs reconnecting (store_calendar.c) */
gw_rc store_calendar_hold_check(struct store *st, int64_t outbox_id, time_t now);

/* store_outbox_announce - tell the workers of every gateway on the database that rows were
 * enqueued (store_wait_enqueued), once per transaction; engines with one process: nothing */
void store_outbox_announce(struct store *st);

/* store_rc - map a backend result (enum db_rc) to gw_rc */
gw_rc store_rc(int src);

/* store_fail - a step that failed (not DB_ROW or DB_DONE) as gw_rc: what store_rc says, never
 * GW_OK (GW_EDB then) */
static inline gw_rc store_fail(int r)
{
	gw_rc rc = store_rc(r);

	return rc ? rc : GW_EDB;
}

/* store_col_json - column i parsed as JSON text (new reference; JSON null when unparsable) */
json_t *store_col_json(struct db_stmt *s, int i);

/* store_col_time - integer epoch column i as an RFC 3339 JSON string, or JSON null */
json_t *store_col_time(struct db_stmt *s, int i);

/* store_col_text - text column i as a JSON string, or JSON null */
json_t *store_col_text(struct db_stmt *s, int i);

/* store_bind_json - bind a JSON value as compact text */
int store_bind_json(struct db_stmt *s, int i, const json_t *v);

/* store_bind_text - bind text or NULL */
int store_bind_text(struct db_stmt *s, int i, const char *v);

/* store_bind_id - bind an id, 0 as NULL */
int store_bind_id(struct db_stmt *s, int i, int64_t v);

#endif
