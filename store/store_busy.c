/*
 * store_busy.c - the busy times of the trainers' connected calendars (migration 8): the list
 * the background fetch replaces whole, the fetch's outcome on the connection, and the ranges
 * the slot computation leaves out (docs/design.md: busy times are pulled in the background into
 * the store; no customer request waits on an outside API).
 *
 * Entry points: store_busy_targets(), store_busy_replace(), store_busy_failed(),
 * store_busy_ranges().
 * Threading: one connection per thread.
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

/* row_target - a row of store_busy_targets */
static json_t *row_target(struct db_stmt *s)
{
	return json_pack("{s:I, s:I, s:I}", "id", (json_int_t)db_col_int64(s, 0), "org_id",
	                 (json_int_t)db_col_int64(s, 1), "user_id",
	                 (json_int_t)db_col_int64(s, 2));
}

/* store_busy_targets - the connections to fetch (user 0: all) */
gw_rc store_busy_targets(struct store *st, int64_t user, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT id, org_id, user_id FROM calendar_connections"
	                                 " WHERE status = 'connected' AND (?1 = 0 OR user_id = ?1)"
	                                 " ORDER BY id");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, user);
	return store_collect(s, row_target, out);
}

/* store_busy_replace - the new list, in the caller's transaction. O(blocks). */
gw_rc store_busy_replace(struct store *st, int64_t conn, const json_t *blocks, time_t now)
{
	struct db_stmt *u = store_stmt(st, "UPDATE calendar_connections SET busy_fetched_at = ?2,"
	                                 " busy_error = NULL, busy_error_at = NULL WHERE id = ?1");
	struct db_stmt *d = store_stmt(st, "DELETE FROM calendar_busy WHERE connection_id = ?1");
	struct db_stmt *i = store_stmt(st, "INSERT INTO calendar_busy(connection_id, start_at, end_at)"
	                                 " VALUES (?1, ?2, ?3)");
	const json_t *b;
	size_t k;
	gw_rc rc;

	if(!u || !d || !i)
		return GW_EDB;
	db_bind_int64(u, 1, conn);
	db_bind_int64(u, 2, now);
	if((rc = store_step_done(st, u)))
		return rc;
	if(db_changes(st) != 1)
		return GW_ENOTFOUND; /* disconnected or replaced while the fetch ran */
	db_bind_int64(d, 1, conn);
	if((rc = store_step_done(st, d)))
		return rc;
	json_array_foreach(blocks, k, b)
	{
		db_bind_int64(i, 1, conn);
		db_bind_int64(i, 2, json_integer_value(json_array_get(b, 0)));
		db_bind_int64(i, 3, json_integer_value(json_array_get(b, 1)));
		if((rc = store_step_done(st, i)))
			return rc;
	}
	return GW_OK;
}

/* store_busy_failed - record why the fetch failed; the blocks stay */
gw_rc store_busy_failed(struct store *st, int64_t conn, const char *error, time_t now)
{
	struct db_stmt *u = store_stmt(st, "UPDATE calendar_connections SET busy_error = ?2,"
	                                 " busy_error_at = ?3 WHERE id = ?1");

	if(!u)
		return GW_EDB;
	db_bind_int64(u, 1, conn);
	store_bind_text(u, 2, error);
	db_bind_int64(u, 3, now);
	return store_step_done(st, u);
}

/* row_range - a row of store_busy_ranges */
static json_t *row_range(struct db_stmt *s)
{
	return json_pack("[I, I]", (json_int_t)db_col_int64(s, 0),
	                 (json_int_t)db_col_int64(s, 1));
}

/* store_busy_ranges - the trainer's calendar busy blocks in [from, to) */
gw_rc store_busy_ranges(struct store *st, int64_t trainer, time_t from, time_t to,
                        json_t **out)
{
	struct db_stmt *s = store_stmt(
	    st, "SELECT b.start_at, b.end_at FROM calendar_busy b"
	        " JOIN calendar_connections c ON c.id = b.connection_id"
	        " WHERE c.user_id = ?1 AND b.start_at < ?3 AND b.end_at > ?2"
	        " AND NOT EXISTS (SELECT 1 FROM bookings k WHERE k.trainer_id = ?1"
	        " AND k.start_at = b.start_at AND k.end_at = b.end_at"
	        " AND k.calendar_event_id IS NOT NULL)"
	        " ORDER BY b.start_at");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, trainer);
	db_bind_int64(s, 2, from);
	db_bind_int64(s, 3, to);
	return store_collect(s, row_range, out);
}
