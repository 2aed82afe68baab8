/*
 * store_calendar.c - the trainers' calendar connections (migration 5), the OAuth 2.0
 * authorization requests in flight (migration 6) and the calendar result hook of a finished
 * delivery (store_outbox.c calls store_calendar_hook inside its transaction).
 *
 * A revoked grant (docs/design.md, "Providers beyond email"): the hook marks the connection
 * needs_reconnect with the reason and enqueues the trainer's one calendar_reconnect email in the
 * same transaction; the row that found it, and every later calendar row of that trainer, is
 * 'held' (never leased) until store_calendar_put connects the calendar again, which makes them
 * due at once.
 *
 * Entry points: store_calendar_put(), store_calendar_delete(), store_calendar_get(),
 * store_calendar_list(), store_calendar_counts(), store_oauth_state_put(),
 * store_oauth_state_take(), store_calendar_ref(), store_calendar_hook(),
 * store_calendar_hold_check().
 * Threading: one connection per thread.
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

/* release_held - the trainer's held calendar rows due now, oldest first (their created_at is at
 * or before now on any clock, and keeps their order) */
static gw_rc release_held(struct store *st, int64_t org, int64_t user, time_t now)
{
	struct db_stmt *h = store_stmt(
	        st, "UPDATE outbox SET status = 'pending', next_attempt_at = CASE WHEN ?3 < created_at THEN ?3 ELSE created_at END"
	            " WHERE org_id = ?1 AND status = 'held' AND provider_class = 'calendar'"
	            " AND booking_id IN (SELECT id FROM bookings WHERE trainer_id = ?2)");

	if(!h)
		return GW_EDB;
	db_bind_int64(h, 1, org);
	db_bind_int64(h, 2, user);
	db_bind_int64(h, 3, now);
	return store_step_done(st, h);
}

/* store_calendar_put - replace the user's connection with a new one (a new id) */
gw_rc store_calendar_put(struct store *st, int64_t org, int64_t user, const char *provider,
                         const char *calendar_id, const char *secret, time_t now)
{
	struct db_stmt *d = store_stmt(st, "DELETE FROM calendar_connections WHERE user_id = ?1");
	struct db_stmt *s = store_stmt(
	        st, "INSERT INTO calendar_connections(org_id, user_id, provider, calendar_id,"
	            " secret, status, connected_at, updated_at)"
	            " SELECT ?1, ?2, ?3, ?4, ?5, 'connected', ?6, ?6"
	            " FROM users WHERE id = ?2 AND org_id = ?1");
	gw_rc rc;

	if(!d || !s)
		return GW_EDB;
	db_bind_int64(d, 1, user);
	if((rc = store_step_done(st, d)))
		return rc;
	db_bind_int64(s, 1, org);
	db_bind_int64(s, 2, user);
	db_bind_text(s, 3, provider, -1);
	db_bind_text(s, 4, calendar_id, -1);
	db_bind_text(s, 5, secret, -1);
	db_bind_int64(s, 6, now);
	if((rc = store_step_done(st, s)))
		return rc;
	if(db_changes(st) != 1)
		return GW_ENOTFOUND;
	/* the rows held while the grant was revoked go out now */
	return release_held(st, org, user, now);
}

/* store_calendar_delete - remove the user's connection; rows held for it are due at once (and
 * finished as skipped: there is no calendar to write to any more) */
gw_rc store_calendar_delete(struct store *st, int64_t org, int64_t user, time_t now)
{
	struct db_stmt *s = store_stmt(st, "DELETE FROM calendar_connections"
	                                 " WHERE user_id = ?1 AND org_id = ?2");
	gw_rc rc;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, user);
	db_bind_int64(s, 2, org);
	if((rc = store_step_done(st, s)))
		return rc;
	if(db_changes(st) != 1)
		return GW_ENOTFOUND;
	return release_held(st, org, user, now);
}

/* row_calendar - the row of store_calendar_get */
static json_t *row_calendar(struct db_stmt *s)
{
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:I}", "id",
	                 (json_int_t)db_col_int64(s, 0), "provider", store_col_text(s, 1),
	                 "calendar_id", store_col_text(s, 2), "secret", store_col_text(s, 3),
	                 "status", store_col_text(s, 4), "last_error", store_col_text(s, 5),
	                 "connected_at", (json_int_t)db_col_int64(s, 6));
}

/* store_calendar_get - the connection with its sealed secret */
gw_rc store_calendar_get(struct store *st, int64_t org, int64_t user, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT id, provider, calendar_id, secret, status,"
	                                 " last_error, connected_at FROM calendar_connections"
	                                 " WHERE user_id = ?1 AND org_id = ?2");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, user);
	db_bind_int64(s, 2, org);
	return store_one(s, row_calendar, out);
}

/* row_list - a row of store_calendar_list */
static json_t *row_list(struct db_stmt *s)
{
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "user_id",
	                 (json_int_t)db_col_int64(s, 0), "user_name", store_col_text(s, 1),
	                 "provider", store_col_text(s, 2), "calendar_id", store_col_text(s, 3),
	                 "status", store_col_text(s, 4), "last_error", store_col_text(s, 5),
	                 "connected_at", store_col_time(s, 6));
}

/* store_calendar_list - the organisation's connections, by user */
gw_rc store_calendar_list(struct store *st, int64_t org, json_t **out)
{
	struct db_stmt *s = store_stmt(
	        st, "SELECT c.user_id, u.name, c.provider, c.calendar_id, c.status, c.last_error,"
	            " c.connected_at FROM calendar_connections c JOIN users u ON u.id = c.user_id"
	            " WHERE c.org_id = ?1 ORDER BY c.user_id");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	return store_collect(s, row_list, out);
}

/* store_calendar_counts - connections by provider and status */
gw_rc store_calendar_counts(struct store *st, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT provider, status, count(*) FROM"
	                                 " calendar_connections GROUP BY provider, status");
	json_t *o = json_object();
	char key[80];
	int r;

	*out = NULL;
	if(!s || !o) {
		json_decref(o);
		return s ? GW_ENOMEM : GW_EDB;
	}
	while((r = db_step(s)) == DB_ROW) {
		snprintf(key, sizeof(key), "%s|%s", db_col_text(s, 0),
		         db_col_text(s, 1));
		json_object_set_new(o, key, json_integer(db_col_int64(s, 2)));
	}
	db_reset(s);
	if(r != DB_DONE) {
		json_decref(o);
		return GW_EDB;
	}
	*out = o;
	return GW_OK;
}

/* store_oauth_state_put - one authorization request in flight */
gw_rc store_oauth_state_put(struct store *st, const char *state_hash, int64_t org, int64_t user,
                            const char *provider, const char *sealed_verifier, time_t now,
                            time_t expires_at)
{
	struct db_stmt *p = store_stmt(st, "DELETE FROM oauth_states WHERE expires_at <= ?1");
	struct db_stmt *s = store_stmt(
	        st, "INSERT INTO oauth_states(state_hash, org_id, user_id, provider, verifier,"
	            " created_at, expires_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7"
	            " FROM users WHERE id = ?3 AND org_id = ?2");
	gw_rc rc;

	if(!p || !s)
		return GW_EDB;
	db_bind_int64(p, 1, now);
	if((rc = store_step_done(st, p)))
		return rc;
	db_bind_text(s, 1, state_hash, -1);
	db_bind_int64(s, 2, org);
	db_bind_int64(s, 3, user);
	db_bind_text(s, 4, provider, -1);
	db_bind_text(s, 5, sealed_verifier, -1);
	db_bind_int64(s, 6, now);
	db_bind_int64(s, 7, expires_at);
	if((rc = store_step_done(st, s)))
		return rc;
	return db_changes(st) == 1 ? GW_OK : GW_ENOTFOUND;
}

/* row_state - the row of store_oauth_state_take (column 4, expires_at, is read apart) */
static json_t *row_state(struct db_stmt *s)
{
	return json_pack("{s:I, s:I, s:o, s:o, s:I}", "org_id",
	                 (json_int_t)db_col_int64(s, 0), "user_id",
	                 (json_int_t)db_col_int64(s, 1), "provider", store_col_text(s, 2),
	                 "verifier", store_col_text(s, 3), "expires_at",
	                 (json_int_t)db_col_int64(s, 4));
}

/* store_oauth_state_take - the state, once */
gw_rc store_oauth_state_take(struct store *st, const char *state_hash, time_t now, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "DELETE FROM oauth_states WHERE state_hash = ?1"
	                                 " RETURNING org_id, user_id, provider, verifier, expires_at");
	json_t *row = NULL;
	gw_rc rc;

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, state_hash, -1);
	rc = store_one(s, row_state, &row);
	if(rc)
		return rc;
	if(json_integer_value(json_object_get(row, "expires_at")) <= (json_int_t)now) {
		json_decref(row);
		return GW_EEXPIRED;
	}
	json_object_del(row, "expires_at");
	*out = row;
	return GW_OK;
}

/* reconnect_email - the trainer's calendar_reconnect email, once per connection (its dedupe key
 * names the connection, and a reconnect makes a new one) */
static gw_rc reconnect_email(struct store *st, int64_t org, const struct store_result *r,
                             time_t now)
{
	struct store_effect e = {0};
	char key[64];
	bool inserted;

	snprintf(key, sizeof(key), "calendar_reconnect:%lld", (long long)r->cal_conn_id);
	e.org_id = org;
	e.kind = "calendar_reconnect";
	e.provider_class = "email";
	e.dedupe_key = key;
	e.payload = r->cal_reconnect;
	e.not_before = now;
	return store_outbox_enqueue(st, &e, now, &inserted, NULL);
}

/* row_ref - the row of store_calendar_ref */
static json_t *row_ref(struct db_stmt *s)
{
	return json_pack("{s:o, s:o}", "event_id", store_col_text(s, 0), "etag",
	                 store_col_text(s, 1));
}

/* store_calendar_ref - the booking's stored event id and ETag */
gw_rc store_calendar_ref(struct store *st, int64_t booking, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT calendar_event_id, calendar_etag FROM bookings"
	                                 " WHERE id = ?1");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, booking);
	return store_one(s, row_ref, out);
}

/* store_calendar_hook - what a finished calendar delivery leaves behind */
gw_rc store_calendar_hook(struct store *st, const struct store_result *r, time_t now)
{
	struct db_stmt *e =
	        store_stmt(st, "UPDATE bookings SET calendar_event_id = ?2, calendar_etag = ?3"
	                       " WHERE id = (SELECT booking_id FROM outbox WHERE id = ?1)");
	struct db_stmt *c = store_stmt(st, "UPDATE calendar_connections SET status = ?2,"
	                                 " last_error = ?3, updated_at = ?4 WHERE id = ?1"
	                                 " RETURNING org_id");
	int64_t org = 0;
	gw_rc rc;
	int x;

	if(!e || !c)
		return GW_EDB;
	if(r->cal_event_id[0]) {
		db_bind_int64(e, 1, r->id);
		db_bind_text(e, 2, r->cal_event_id, -1);
		store_bind_text(e, 3, r->cal_etag[0] ? r->cal_etag : NULL);
		if((rc = store_step_done(st, e)))
			return rc;
	}
	if(r->cal_conn_id > 0 && r->cal_revoked) {
		db_bind_int64(c, 1, r->cal_conn_id);
		db_bind_text(c, 2, "needs_reconnect", -1);
		store_bind_text(c, 3, r->detail);
		db_bind_int64(c, 4, now);
		x = db_step(c);
		if(x == DB_ROW)
			org = db_col_int64(c, 0);
		while(x == DB_ROW)
			x = db_step(c);
		db_reset(c);
		if(x != DB_DONE)
			return store_write_rc(st, x);
		/* the connection still exists (not disconnected or replaced meanwhile): tell the
		 * trainer, in this transaction */
		if(org > 0 && r->cal_reconnect && (rc = reconnect_email(st, org, r, now)))
			return rc;
	}
	return GW_OK;
}

/* store_calendar_hold_check - a row just held whose trainer has no connection that needs
 * reconnecting any more (a reconnect or a disconnect committed while the row was being tried)
 * is made due at once instead: nothing stays held for a connection that is gone */
gw_rc store_calendar_hold_check(struct store *st, int64_t outbox_id, time_t now)
{
	struct db_stmt *s = store_stmt(
	        st, "UPDATE outbox SET status = 'pending', next_attempt_at = CASE WHEN ?2 < created_at THEN ?2 ELSE created_at END"
	            " WHERE id = ?1 AND status = 'held' AND NOT EXISTS (SELECT 1 FROM bookings b"
	            " JOIN calendar_connections c ON c.user_id = b.trainer_id"
	            " WHERE b.id = outbox.booking_id AND c.status = 'needs_reconnect')");

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, outbox_id);
	db_bind_int64(s, 2, now);
	return store_step_done(st, s);
}

/* row_zoho - the row of store_zoho_ref */
static json_t *row_zoho(struct db_stmt *s)
{
	return json_pack("{s:o}", "session_id", store_col_text(s, 0));
}

/* store_zoho_ref - the booking's Zoho Assist schedule_id */
gw_rc store_zoho_ref(struct store *st, int64_t booking, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT zoho_session_id FROM bookings WHERE id = ?1");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, booking);
	return store_one(s, row_zoho, out);
}

/* store_zoho_hook - a Zoho Assist session written (its id and both URLs on the booking, and
 * the customer's session_link email enqueued, in this transaction: docs/design.md rule 3) or
 * deleted (all three cleared) */
gw_rc store_zoho_hook(struct store *st, const struct store_result *r, time_t now)
{
	struct db_stmt *u = store_stmt(st, "UPDATE bookings SET zoho_session_id = ?2,"
	                                 " session_link = ?3, session_join_url = ?4, updated_at = ?5"
	                                 " WHERE id = (SELECT booking_id FROM outbox WHERE id = ?1)"
	                                 " RETURNING org_id, id");
	struct store_effect e = {0};
	int64_t org = 0, booking = 0;
	bool inserted;
	int x;

	if(!u)
		return GW_EDB;
	db_bind_int64(u, 1, r->id);
	if(r->zoho_hook == 1) {
		db_bind_text(u, 2, r->zoho_session_id, -1);
		store_bind_text(u, 3, r->zoho_tech_url[0] ? r->zoho_tech_url : NULL);
		store_bind_text(u, 4, r->zoho_join_url[0] ? r->zoho_join_url : NULL);
	} else {
		db_bind_null(u, 2, DB_TEXT);
		db_bind_null(u, 3, DB_TEXT);
		db_bind_null(u, 4, DB_TEXT);
	}
	db_bind_int64(u, 5, now);
	x = db_step(u);
	if(x == DB_ROW) {
		org = db_col_int64(u, 0);
		booking = db_col_int64(u, 1);
	}
	while(x == DB_ROW)
		x = db_step(u);
	db_reset(u);
	db_clear(u);
	if(x != DB_DONE)
		return store_write_rc(st, x);
	if(org <= 0 || r->zoho_hook != 1 || !r->zoho_email || !r->zoho_email_key[0])
		return GW_OK;
	e.org_id = org;
	e.kind = "session_link";
	e.provider_class = "email";
	e.dedupe_key = r->zoho_email_key;
	e.booking_id = booking;
	e.payload = r->zoho_email;
	e.not_before = now;
	return store_outbox_enqueue(st, &e, now, &inserted, NULL);
}
