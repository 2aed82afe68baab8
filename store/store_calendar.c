/*
 * store_calendar.c - the trainers' calendar connections (migration 4) and the calendar result
 * hook of a finished delivery (store_outbox.c calls store_calendar_hook inside its transaction).
 *
 * Entry points: store_calendar_put(), store_calendar_delete(), store_calendar_get(),
 * store_calendar_ref(), store_calendar_hook(). Threading: one connection per thread.
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

/* step_done - run a write statement to completion */
static gw_rc step_done(struct store *st, sqlite3_stmt *s)
{
	int r = sqlite3_step(s);

	sqlite3_reset(s);
	return r == SQLITE_DONE ? GW_OK : store_write_rc(st, r);
}

/* store_calendar_put - replace the user's connection with a new one (a new id) */
gw_rc store_calendar_put(struct store *st, int64_t org, int64_t user, const char *provider,
                         const char *calendar_id, const char *secret, time_t now)
{
	sqlite3_stmt *d = store_stmt(st, "DELETE FROM calendar_connections WHERE user_id = ?1");
	sqlite3_stmt *s = store_stmt(
	        st, "INSERT INTO calendar_connections(org_id, user_id, provider, calendar_id,"
	            " secret, status, connected_at, updated_at)"
	            " SELECT ?1, ?2, ?3, ?4, ?5, 'connected', ?6, ?6"
	            " FROM users WHERE id = ?2 AND org_id = ?1");
	gw_rc rc;

	if(!d || !s)
		return GW_EDB;
	sqlite3_bind_int64(d, 1, user);
	if((rc = step_done(st, d)))
		return rc;
	sqlite3_bind_int64(s, 1, org);
	sqlite3_bind_int64(s, 2, user);
	sqlite3_bind_text(s, 3, provider, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, calendar_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, secret, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 6, now);
	if((rc = step_done(st, s)))
		return rc;
	return sqlite3_changes(st->db) == 1 ? GW_OK : GW_ENOTFOUND;
}

/* store_calendar_delete - remove the user's connection */
gw_rc store_calendar_delete(struct store *st, int64_t org, int64_t user)
{
	sqlite3_stmt *s = store_stmt(st, "DELETE FROM calendar_connections"
	                                 " WHERE user_id = ?1 AND org_id = ?2");
	gw_rc rc;

	if(!s)
		return GW_EDB;
	sqlite3_bind_int64(s, 1, user);
	sqlite3_bind_int64(s, 2, org);
	if((rc = step_done(st, s)))
		return rc;
	return sqlite3_changes(st->db) == 1 ? GW_OK : GW_ENOTFOUND;
}

/* row_calendar - the row of store_calendar_get */
static json_t *row_calendar(sqlite3_stmt *s)
{
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:I}", "id",
	                 (json_int_t)sqlite3_column_int64(s, 0), "provider", store_col_text(s, 1),
	                 "calendar_id", store_col_text(s, 2), "secret", store_col_text(s, 3),
	                 "status", store_col_text(s, 4), "last_error", store_col_text(s, 5),
	                 "connected_at", (json_int_t)sqlite3_column_int64(s, 6));
}

/* store_calendar_get - the connection with its sealed secret */
gw_rc store_calendar_get(struct store *st, int64_t org, int64_t user, json_t **out)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT id, provider, calendar_id, secret, status,"
	                                 " last_error, connected_at FROM calendar_connections"
	                                 " WHERE user_id = ?1 AND org_id = ?2");

	*out = NULL;
	if(!s)
		return GW_EDB;
	sqlite3_bind_int64(s, 1, user);
	sqlite3_bind_int64(s, 2, org);
	return store_one(s, row_calendar, out);
}

/* row_ref - the row of store_calendar_ref */
static json_t *row_ref(sqlite3_stmt *s)
{
	return json_pack("{s:o, s:o}", "event_id", store_col_text(s, 0), "etag",
	                 store_col_text(s, 1));
}

/* store_calendar_ref - the booking's stored event id and ETag */
gw_rc store_calendar_ref(struct store *st, int64_t booking, json_t **out)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT calendar_event_id, calendar_etag FROM bookings"
	                                 " WHERE id = ?1");

	*out = NULL;
	if(!s)
		return GW_EDB;
	sqlite3_bind_int64(s, 1, booking);
	return store_one(s, row_ref, out);
}

/* store_calendar_hook - what a finished calendar delivery leaves behind */
gw_rc store_calendar_hook(struct store *st, const struct store_result *r, time_t now)
{
	sqlite3_stmt *e =
	        store_stmt(st, "UPDATE bookings SET calendar_event_id = ?2, calendar_etag = ?3"
	                       " WHERE id = (SELECT booking_id FROM outbox WHERE id = ?1)");
	sqlite3_stmt *c = store_stmt(st, "UPDATE calendar_connections SET status = ?2,"
	                                 " last_error = ?3, updated_at = ?4 WHERE id = ?1");
	gw_rc rc;

	if(!e || !c)
		return GW_EDB;
	if(r->cal_event_id[0]) {
		sqlite3_bind_int64(e, 1, r->id);
		sqlite3_bind_text(e, 2, r->cal_event_id, -1, SQLITE_TRANSIENT);
		store_bind_text(e, 3, r->cal_etag[0] ? r->cal_etag : NULL);
		if((rc = step_done(st, e)))
			return rc;
	}
	if(r->cal_conn_id > 0 && r->cal_revoked) {
		sqlite3_bind_int64(c, 1, r->cal_conn_id);
		sqlite3_bind_text(c, 2, "needs_reconnect", -1, SQLITE_STATIC);
		store_bind_text(c, 3, r->detail);
		sqlite3_bind_int64(c, 4, now);
		if((rc = step_done(st, c)))
			return rc;
	}
	return GW_OK;
}
