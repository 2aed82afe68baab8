/*
 * store_sched.c - the scheduler's queries. Each is one range of an index of migration 3, so an
 * idle tick costs a few index seeks however many bookings there are (issue: 1M bookings).
 *
 * Entry points: store_sched_orgs(), store_sched_starting(), store_sched_ended(),
 * store_sched_expired_holds(), store_sched_explain(). Threading: one connection per thread.
 */
#include <string.h>

#include "store_int.h"

#define Q_STARTING                                                                             \
	"SELECT id, start_at, coalesce(confirmed_at, 0), sequence FROM bookings"                    \
	" WHERE org_id = ?1 AND status = 'confirmed' AND start_at > ?2 AND start_at <= ?3"       \
	" ORDER BY start_at"
#define Q_ENDED                                                                                \
	"SELECT id, end_at FROM bookings WHERE org_id = ?1 AND status = 'confirmed'"              \
	" AND end_at <= ?2 ORDER BY end_at LIMIT ?3"
#define Q_HOLDS                                                                                \
	"SELECT id, org_id FROM bookings WHERE status = 'pending_payment'"                        \
	" AND hold_expires_at <= ?1 ORDER BY hold_expires_at LIMIT ?2"

/* rows_of - run a prepared statement and collect rows of n integer columns */
static gw_rc rows_of(struct db_stmt *s, int ncol, json_t **out)
{
	json_t *list = json_array();
	int r, i;

	*out = NULL;
	if(!list)
		return GW_ENOMEM;
	while((r = db_step(s)) == DB_ROW) {
		json_t *row = json_array();
		for(i = 0; row && i < ncol; i++)
			json_array_append_new(row, json_integer(db_col_int64(s, i)));
		json_array_append_new(list, row);
	}
	db_reset(s);
	if(r != DB_DONE) {
		json_decref(list);
		return GW_EDB;
	}
	*out = list;
	return GW_OK;
}

/* row_sched_orgs - one row of store_sched_orgs */
static json_t *row_sched_orgs(struct db_stmt *s)
{
	return json_pack("{s:I, s:o}", "id", (json_int_t)db_col_int64(s, 0), "settings",
	                 store_col_json(s, 1));
}

/* store_sched_orgs - every organisation with its stored settings */
gw_rc store_sched_orgs(struct store *st, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT id, settings FROM orgs ORDER BY id");

	*out = NULL;
	if(!s)
		return GW_EDB;
	return store_collect(s, row_sched_orgs, out);
}

/* store_sched_starting - confirmed bookings starting in (lo, hi] */
gw_rc store_sched_starting(struct store *st, int64_t org, time_t lo, time_t hi, json_t **out)
{
	struct db_stmt *s = store_stmt(st, Q_STARTING);

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	db_bind_int64(s, 2, lo);
	db_bind_int64(s, 3, hi);
	return rows_of(s, 4, out);
}

/* store_sched_ended - confirmed bookings that ended by hi */
gw_rc store_sched_ended(struct store *st, int64_t org, time_t hi, int limit, json_t **out)
{
	struct db_stmt *s = store_stmt(st, Q_ENDED);

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	db_bind_int64(s, 2, hi);
	db_bind_int64(s, 3, limit);
	return rows_of(s, 2, out);
}

/* store_sched_expired_holds - held bookings whose link expired */
gw_rc store_sched_expired_holds(struct store *st, time_t now, int limit, json_t **out)
{
	struct db_stmt *s = store_stmt(st, Q_HOLDS);

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, now);
	db_bind_int64(s, 2, limit);
	return rows_of(s, 2, out);
}

/* store_sched_explain - query plans of the scheduler's queries */
gw_rc store_sched_explain(struct store *st, json_t **out)
{
	static const char *const queries[] = {
	    "EXPLAIN QUERY PLAN " Q_STARTING,
	    "EXPLAIN QUERY PLAN " Q_ENDED,
	    "EXPLAIN QUERY PLAN " Q_HOLDS,
	};
	json_t *list = json_array();
	size_t i;
	int r;

	*out = NULL;
	if(!list)
		return GW_ENOMEM;
	for(i = 0; i < GW_ARRAY_LEN(queries); i++) {
		struct db_stmt *s = store_stmt(st, queries[i]);
		if(!s) {
			json_decref(list);
			return GW_EDB;
		}
		while((r = db_step(s)) == DB_ROW)
			json_array_append_new(list, json_string(db_col_text(s, 3)));
		db_reset(s);
	}
	*out = list;
	return GW_OK;
}

/* row_meta_get - the row of store_meta_get */
static json_t *row_meta_get(struct db_stmt *s)
{
	return store_col_text(s, 0);
}

/* store_meta_get - a value of the meta table (new reference string), GW_ENOTFOUND */
gw_rc store_meta_get(struct store *st, const char *key, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT value FROM meta WHERE key = ?1");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, key, -1);
	return store_one(s, row_meta_get, out);
}

/* store_meta_put - set a value of the meta table */
gw_rc store_meta_put(struct store *st, const char *key, const char *value)
{
	struct db_stmt *s = store_stmt(st, "INSERT INTO meta(key, value) VALUES(?1, ?2)"
	                                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, key, -1);
	db_bind_text(s, 2, value, -1);
	r = db_step(s);
	db_reset(s);
	return r == DB_DONE ? GW_OK : GW_EDB;
}
