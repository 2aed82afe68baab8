/*
 * store_booking.c - bookings, scheduling links, availability, notes, surveys and reports.
 *
 * Entry points: store_request_link_set(), store_request_by_link(), store_request_set_status(),
 * store_user_availability*(), store_user_feed_set(), store_user_by_feed(),
 * store_booking_create(), store_booking_get(), store_booking_transition(),
 * store_booking_list(), store_booking_busy(), store_booking_effects(),
 * store_outbox_skip_booking(), store_note_*(), store_survey_*(), store_report_payouts(),
 * store_manage_token_add(), store_manage_lookup().
 * Threading: one connection per thread.
 *
 * Two bookings of one trainer never overlap: the triggers of migration 2 refuse it inside the
 * writing transaction (SQLITE_CONSTRAINT_TRIGGER "slot_taken"), so a check-then-insert race
 * between two connections cannot let both through: SQLite serialises the writers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* opt_int - JSON integer or null from a nullable column */
static json_t *opt_int(struct db_stmt *s, int i)
{
	return db_col_type(s, i) == DB_NULL ? json_null()
	                                                : json_integer(db_col_int64(s, i));
}

/* store_request_link_set - a new scheduling link */
gw_rc store_request_link_set(struct store *st, int64_t org, int64_t id, int64_t trainer,
                             const char *token_hash, time_t now, time_t expires_at,
                             int *version)
{
	struct db_stmt *s = store_stmt(
	    st, "UPDATE requests SET status = 'scheduling', link_version = link_version + 1,"
	        " link_token_hash = ?4, link_sent_at = ?5, link_expires_at = ?6, updated_at = ?5"
	        " WHERE id = ?1 AND org_id = ?2 AND trainer_id = ?3"
	        " AND status IN ('claimed', 'scheduling') RETURNING link_version");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, org);
	db_bind_int64(s, 3, trainer);
	db_bind_text(s, 4, token_hash, -1);
	db_bind_int64(s, 5, now);
	db_bind_int64(s, 6, expires_at);
	r = db_step(s);
	if(r == DB_ROW)
		*version = db_col_int(s, 0);
	db_reset(s);
	if(r == DB_ROW)
		return GW_OK;
	return r == DB_DONE ? GW_ESTATE : store_write_rc(st, r);
}

/* row_request_by_link - the row of store_request_by_link */
static json_t *row_request_by_link(struct db_stmt *s)
{
	return json_pack("{s:I, s:I, s:o, s:I, s:o, s:{s:I, s:o, s:o, s:o, s:o},"
	                 " s:{s:o, s:o}, s:i}",
	                 "id", (json_int_t)db_col_int64(s, 0), "org_id",
	                 (json_int_t)db_col_int64(s, 1), "status", store_col_text(s, 2),
	                 "link_expires_at", (json_int_t)db_col_int64(s, 3),
	                 "session_type_id", opt_int(s, 4), "trainer", "id",
	                 (json_int_t)db_col_int64(s, 5), "name", store_col_text(s, 6),
	                 "email", store_col_text(s, 7), "timezone", store_col_text(s, 8),
	                 "availability", store_col_json(s, 9), "customer", "name",
	                 store_col_text(s, 10), "email", store_col_text(s, 11), "link_version",
	                 db_col_int(s, 12));
}

/* store_request_by_link - the request behind a link token */
gw_rc store_request_by_link(struct store *st, const char *token_hash, json_t **out)
{
	struct db_stmt *s = store_stmt(
	    st, "SELECT r.id, r.org_id, r.status, r.link_expires_at, r.session_type_id,"
	        " u.id, u.name, u.email, u.timezone, u.availability, r.customer_name,"
	        " r.customer_email, r.link_version"
	        " FROM requests r JOIN users u ON u.id = r.trainer_id WHERE r.link_token_hash = ?1");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, token_hash, -1);
	return store_one(s, row_request_by_link, out);
}

/* store_request_set_status - conditional status change */
gw_rc store_request_set_status(struct store *st, int64_t id, const char *from, const char *to,
                               time_t now)
{
	struct db_stmt *s = store_stmt(st, "UPDATE requests SET status = ?3, updated_at = ?4"
	                                 " WHERE id = ?1 AND status = ?2");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_text(s, 2, from, -1);
	db_bind_text(s, 3, to, -1);
	db_bind_int64(s, 4, now);
	r = db_step(s);
	db_reset(s);
	if(r != DB_DONE)
		return store_write_rc(st, r);
	return db_changes(st) == 1 ? GW_OK : GW_ESTATE;
}

/* row_user_availability - the row of store_user_availability */
static json_t *row_user_availability(struct db_stmt *s)
{
	return store_col_json(s, 0);
}

/* store_user_availability - the stored availability object */
gw_rc store_user_availability(struct store *st, int64_t org, int64_t user, json_t **out)
{
	struct db_stmt *s =
	    store_stmt(st, "SELECT availability FROM users WHERE id = ?1 AND org_id = ?2");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, user);
	db_bind_int64(s, 2, org);
	return store_one(s, row_user_availability, out);
}

/* store_user_availability_put - replace the availability */
gw_rc store_user_availability_put(struct store *st, int64_t org, int64_t user,
                                  const json_t *availability)
{
	struct db_stmt *s =
	    store_stmt(st, "UPDATE users SET availability = ?3 WHERE id = ?1 AND org_id = ?2");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, user);
	db_bind_int64(s, 2, org);
	store_bind_json(s, 3, availability);
	r = db_step(s);
	db_reset(s);
	if(r != DB_DONE)
		return store_write_rc(st, r);
	return db_changes(st) == 1 ? GW_OK : GW_ENOTFOUND;
}

/* store_user_feed_set - replace the feed token */
gw_rc store_user_feed_set(struct store *st, int64_t org, int64_t user, const char *token_hash)
{
	struct db_stmt *s =
	    store_stmt(st, "UPDATE users SET feed_token_hash = ?3 WHERE id = ?1 AND org_id = ?2");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, user);
	db_bind_int64(s, 2, org);
	db_bind_text(s, 3, token_hash, -1);
	r = db_step(s);
	db_reset(s);
	if(r != DB_DONE)
		return store_write_rc(st, r);
	return db_changes(st) == 1 ? GW_OK : GW_ENOTFOUND;
}

/* row_user_by_feed - the row of store_user_by_feed */
static json_t *row_user_by_feed(struct db_stmt *s)
{
	return json_pack("{s:I, s:I, s:o, s:o, s:o}", "id", (json_int_t)db_col_int64(s, 0),
	                 "org_id", (json_int_t)db_col_int64(s, 1), "name",
	                 store_col_text(s, 2), "email", store_col_text(s, 3), "timezone",
	                 store_col_text(s, 4));
}

/* store_user_by_feed - the trainer of a feed token */
gw_rc store_user_by_feed(struct store *st, const char *token_hash, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT id, org_id, name, email, timezone FROM users"
	                                 " WHERE feed_token_hash = ?1 AND active = 1");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, token_hash, -1);
	return store_one(s, row_user_by_feed, out);
}

/* store_booking_create - insert a held booking */
gw_rc store_booking_create(struct store *st, const struct store_booking_new *b, time_t now,
                           int64_t *id)
{
	struct db_stmt *s = store_stmt(
	    st, "INSERT INTO bookings(org_id, request_id, trainer_id, status, start_at, end_at,"
	        " length_minutes, sequence, uid, price_cents, currency, hold_expires_at, created_at,"
	        " updated_at) VALUES(?1, ?2, ?3, 'pending_payment', ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10,"
	        " ?11, ?11)");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, b->org_id);
	db_bind_int64(s, 2, b->request_id);
	db_bind_int64(s, 3, b->trainer_id);
	db_bind_int64(s, 4, b->start);
	db_bind_int64(s, 5, b->end);
	db_bind_int64(s, 6, b->length_minutes);
	db_bind_text(s, 7, b->uid, -1);
	db_bind_int64(s, 8, b->price_cents);
	db_bind_text(s, 9, b->currency, -1);
	if(b->hold_expires_at)
		db_bind_int64(s, 10, b->hold_expires_at);
	db_bind_int64(s, 11, now);
	r = db_step(s);
	db_reset(s);
	if(r != DB_DONE)
		return store_write_rc(st, r);
	*id = db_last_id(st);
	return GW_OK;
}

#define BOOKING_COLS                                                                           \
	"b.id, b.request_id, b.trainer_id, b.status, b.start_at, b.end_at, b.length_minutes,"      \
	" b.sequence, b.session_link, b.customer_no_show, b.trainer_no_show, b.no_show_marked_by," \
	" b.no_show_marked_at, b.completed_at, b.completed_by, b.uid, b.price_cents, b.currency,"  \
	" b.paid_at, b.payment_reference, b.org_id, r.customer_name, r.customer_email, u.name,"    \
	" u.email, u.timezone, u.notify_on_confirm, t.name, b.cancel_reason, b.confirmed_at,"      \
	" b.cancelled_at, b.no_show_note, b.completion_note, b.checked_in_at, b.hold_expires_at,"  \
	" b.created_at, b.session_join_url"
#define BOOKING_FROM                                                                           \
	" FROM bookings b JOIN requests r ON r.id = b.request_id JOIN users u ON u.id = b.trainer_id" \
	" LEFT JOIN session_types t ON t.id = r.session_type_id"

/* by_json - completed_by / no_show_marked_by: a user id as a number, or "system" */
static json_t *by_json(struct db_stmt *s, int i)
{
	const char *v = db_col_text(s, i);
	char *end;
	long long id;

	if(!v)
		return json_null();
	id = strtoll(v, &end, 10);
	return *end ? json_string(v) : json_integer(id);
}

/* booking_json - a booking row as the API shows it */
static json_t *booking_json(struct db_stmt *s)
{
	json_t *b = json_pack(
	    "{s:I, s:I, s:I, s:o, s:o, s:o, s:i, s:i, s:o, s:b, s:b, s:o, s:o, s:o, s:o}", "id",
	    (json_int_t)db_col_int64(s, 0), "request_id",
	    (json_int_t)db_col_int64(s, 1), "trainer_id",
	    (json_int_t)db_col_int64(s, 2), "status", store_col_text(s, 3), "start",
	    store_col_time(s, 4), "end", store_col_time(s, 5), "length_minutes",
	    db_col_int(s, 6), "sequence", db_col_int(s, 7), "session_link",
	    store_col_text(s, 8), "customer_no_show", db_col_int(s, 9), "trainer_no_show",
	    db_col_int(s, 10), "no_show_marked_by", by_json(s, 11), "no_show_marked_at",
	    store_col_time(s, 12), "completed_at", store_col_time(s, 13), "completed_by",
	    by_json(s, 14));

	if(!b)
		return NULL;
	json_object_set_new(b, "uid", store_col_text(s, 15));
	json_object_set_new(b, "price_cents", json_integer(db_col_int64(s, 16)));
	json_object_set_new(b, "currency", store_col_text(s, 17));
	json_object_set_new(b, "paid_at", store_col_time(s, 18));
	json_object_set_new(b, "payment_reference", store_col_text(s, 19));
	json_object_set_new(b, "org_id", json_integer(db_col_int64(s, 20)));
	json_object_set_new(b, "customer",
	                    json_pack("{s:o, s:o}", "name", store_col_text(s, 21), "email",
	                              store_col_text(s, 22)));
	json_object_set_new(b, "trainer",
	                    json_pack("{s:I, s:o, s:o, s:o, s:b}", "id",
	                              (json_int_t)db_col_int64(s, 2), "name",
	                              store_col_text(s, 23), "email", store_col_text(s, 24),
	                              "timezone", store_col_text(s, 25), "notify_on_confirm",
	                              db_col_int(s, 26)));
	json_object_set_new(b, "session_type",
	                    db_col_type(s, 27) == DB_NULL
	                        ? json_null()
	                        : json_pack("{s:o, s:I, s:o}", "name", store_col_text(s, 27),
	                                    "price_cents", (json_int_t)db_col_int64(s, 16),
	                                    "currency", store_col_text(s, 17)));
	json_object_set_new(b, "cancel_reason", store_col_text(s, 28));
	json_object_set_new(b, "confirmed_at", store_col_time(s, 29));
	json_object_set_new(b, "cancelled_at", store_col_time(s, 30));
	json_object_set_new(b, "no_show_note", store_col_text(s, 31));
	json_object_set_new(b, "completion_note", store_col_text(s, 32));
	json_object_set_new(b, "checked_in_at", store_col_time(s, 33));
	json_object_set_new(b, "hold_expires_at", store_col_time(s, 34));
	json_object_set_new(b, "created_at", store_col_time(s, 35));
	json_object_set_new(b, "session_join_url", store_col_text(s, 36));
	return b;
}

/* store_booking_get - one booking */
gw_rc store_booking_get(struct store *st, int64_t org, int64_t id, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT " BOOKING_COLS BOOKING_FROM
	                                 " WHERE b.id = ?1 AND (?2 = 0 OR b.org_id = ?2)");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, org);
	return store_one(s, booking_json, out);
}

/* bind_time - epoch or NULL (0) */
static void bind_time(struct db_stmt *s, int i, time_t t)
{
	if(t)
		db_bind_int64(s, i, t);
	else
		db_bind_null(s, i, DB_INTEGER);
}

/* store_booking_transition - the conditional UPDATE of a booking */
gw_rc store_booking_transition(struct store *st, int64_t org, int64_t id, const char *from,
                               const struct store_booking_set *set, time_t now)
{
	struct db_stmt *s = store_stmt(
	    st, "UPDATE bookings SET status = coalesce(?4, status),"
	        " start_at = coalesce(?5, start_at), end_at = coalesce(?6, end_at),"
	        " sequence = sequence + ?7,"
	        " paid_at = coalesce(?8, paid_at), payment_reference = coalesce(?9, payment_reference),"
	        " confirmed_at = coalesce(?10, confirmed_at),"
	        " completed_at = CASE WHEN ?13 != 0 THEN NULL ELSE coalesce(?11, completed_at) END,"
	        " completed_by = CASE WHEN ?13 != 0 THEN NULL ELSE coalesce(?12, completed_by) END,"
	        " completion_note = CASE WHEN ?13 != 0 THEN NULL ELSE coalesce(?14, completion_note) END,"
	        " customer_no_show = CASE WHEN ?15 > customer_no_show THEN ?15 ELSE customer_no_show END,"
	        " trainer_no_show = CASE WHEN ?16 > trainer_no_show THEN ?16 ELSE trainer_no_show END,"
	        " no_show_marked_by = coalesce(?17, no_show_marked_by),"
	        " no_show_marked_at = coalesce(?18, no_show_marked_at),"
	        " no_show_note = coalesce(?19, no_show_note),"
	        " cancelled_at = coalesce(?20, cancelled_at),"
	        " cancel_reason = coalesce(?21, cancel_reason),"
	        " checked_in_at = coalesce(?22, checked_in_at),"
	        " session_link = coalesce(?23, session_link), updated_at = ?24"
	        " WHERE id = ?1 AND org_id = ?2 AND (?3 IS NULL OR status = ?3)");
	struct db_stmt *e = store_stmt(st, "SELECT 1 FROM bookings WHERE id = ?1 AND org_id = ?2");

	if(!s || !e)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, org);
	store_bind_text(s, 3, from);
	store_bind_text(s, 4, set->status);
	bind_time(s, 5, set->start);
	bind_time(s, 6, set->end);
	db_bind_int64(s, 7, set->bump_sequence ? 1 : 0);
	bind_time(s, 8, set->paid_at);
	store_bind_text(s, 9, set->payment_reference);
	bind_time(s, 10, set->confirmed_at);
	bind_time(s, 11, set->completed_at);
	store_bind_text(s, 12, set->completed_by);
	db_bind_int64(s, 13, set->clear_completion ? 1 : 0);
	store_bind_text(s, 14, set->completion_note);
	db_bind_int64(s, 15, set->customer_no_show ? 1 : 0);
	db_bind_int64(s, 16, set->trainer_no_show ? 1 : 0);
	store_bind_text(s, 17, set->no_show_marked_by);
	bind_time(s, 18, set->no_show_marked_at);
	store_bind_text(s, 19, set->no_show_note);
	bind_time(s, 20, set->cancelled_at);
	store_bind_text(s, 21, set->cancel_reason);
	bind_time(s, 22, set->checked_in_at);
	store_bind_text(s, 23, set->session_link);
	db_bind_int64(s, 24, now);
	db_bind_int64(e, 1, id);
	db_bind_int64(e, 2, org);
	return store_cond_update(st, s, e, GW_ESTATE);
}

#define BOOKING_WHERE                                                                          \
	" WHERE b.org_id = ?1 AND (?2 IS NULL OR b.status = ?2)"                                    \
	" AND (?3 IS NULL OR b.trainer_id = ?3)"                                                    \
	" AND (?4 = 0 OR (b.status = 'confirmed' AND b.end_at <= ?5))"                              \
	" AND (?6 IS NULL OR r.customer_email = lower(?6))"                                         \
	" AND (?7 IS NULL OR b.start_at >= ?7) AND (?8 IS NULL OR b.start_at < ?8)"

/* store_booking_list - bookings of org by filter */
gw_rc store_booking_list(struct store *st, int64_t org, const struct store_booking_filter *f,
                         json_t **out)
{
	/* two statements so each keeps its order; both constant text */
	struct db_stmt *s = store_stmt(st, f->newest_first
	                       ? "SELECT " BOOKING_COLS BOOKING_FROM BOOKING_WHERE
	                         " ORDER BY b.start_at DESC, b.id DESC LIMIT 1000"
	                       : "SELECT " BOOKING_COLS BOOKING_FROM BOOKING_WHERE
	                         " ORDER BY b.start_at, b.id LIMIT 1000");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	store_bind_text(s, 2, f->status);
	store_bind_id(s, 3, f->trainer_id);
	db_bind_int64(s, 4, f->awaiting_completion ? 1 : 0);
	db_bind_int64(s, 5, f->now);
	store_bind_text(s, 6, f->customer_email);
	bind_time(s, 7, f->start_from);
	bind_time(s, 8, f->start_to);
	return store_collect(s, booking_json, out);
}

/* row_booking_busy - one row of store_booking_busy */
static json_t *row_booking_busy(struct db_stmt *s)
{
	return json_pack("[I, I]", (json_int_t)db_col_int64(s, 0),
	                 (json_int_t)db_col_int64(s, 1));
}

/* store_booking_busy - held ranges of a trainer */
gw_rc store_booking_busy(struct store *st, int64_t trainer, time_t from, time_t to,
                         int64_t except, json_t **out)
{
	struct db_stmt *s = store_stmt(
	    st, "SELECT start_at, end_at FROM bookings WHERE trainer_id = ?1"
	        " AND status IN ('pending_payment', 'confirmed') AND start_at < ?3"
	        " AND start_at > ?2 - 86400 AND end_at > ?2 AND id != ?4"
	        " ORDER BY start_at");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, trainer);
	db_bind_int64(s, 2, from);
	db_bind_int64(s, 3, to);
	db_bind_int64(s, 4, except);
	return store_collect(s, row_booking_busy, out);
}

/* row_booking_effects - one row of store_booking_effects */
static json_t *row_booking_effects(struct db_stmt *s)
{
	/* provider: the one that handled the row ("none" when none could; null until tried), as
	 * in the outbox list and the metrics; provider_class: email, calendar or zoho */
	return json_pack("{s:I, s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:o}", "id",
	                 (json_int_t)db_col_int64(s, 0), "kind", store_col_text(s, 1),
	                 "provider", store_col_text(s, 2), "status", store_col_text(s, 3),
	                 "attempts", db_col_int(s, 4), "last_error", store_col_text(s, 5),
	                 "created_at", store_col_time(s, 6), "sent_at", store_col_time(s, 7),
	                 "dedupe_key", store_col_text(s, 8), "provider_class",
	                 store_col_text(s, 9));
}

/* store_booking_effects - outbox rows of a booking */
gw_rc store_booking_effects(struct store *st, int64_t org, int64_t booking, json_t **out)
{
	struct db_stmt *s = store_stmt(
	    st, "SELECT id, kind, provider, status, attempts, last_error, created_at, sent_at,"
	        " dedupe_key, provider_class FROM outbox WHERE booking_id = ?1 AND org_id = ?2"
	        " ORDER BY id");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, booking);
	db_bind_int64(s, 2, org);
	return store_collect(s, row_booking_effects, out);
}

/* store_outbox_skip_booking - pending rows of some kinds become skipped */
gw_rc store_outbox_skip_booking(struct store *st, int64_t booking, const char *const *kinds,
                                const char *reason)
{
	struct db_stmt *s = store_stmt(st, "UPDATE outbox SET status = 'skipped', last_error = ?3"
	                                 " WHERE booking_id = ?1 AND kind = ?2 AND status = 'pending'");
	int r, i;

	if(!s)
		return GW_EDB;
	for(i = 0; kinds[i]; i++) {
		db_reset(s);
		db_bind_int64(s, 1, booking);
		db_bind_text(s, 2, kinds[i], -1);
		db_bind_text(s, 3, reason, -1);
		r = db_step(s);
		db_reset(s);
		if(r != DB_DONE)
			return store_write_rc(st, r);
	}
	return GW_OK;
}

/* store_note_add - a private note */
gw_rc store_note_add(struct store *st, int64_t booking, int64_t author, const char *body,
                     time_t now, int64_t *id)
{
	struct db_stmt *s = store_stmt(st, "INSERT INTO booking_notes(booking_id, author_id, body,"
	                                 " created_at) VALUES(?1, ?2, ?3, ?4)");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, booking);
	db_bind_int64(s, 2, author);
	db_bind_text(s, 3, body, -1);
	db_bind_int64(s, 4, now);
	r = db_step(s);
	db_reset(s);
	if(r != DB_DONE)
		return store_write_rc(st, r);
	*id = db_last_id(st);
	return GW_OK;
}

/* row_note_list - one row of store_note_list */
static json_t *row_note_list(struct db_stmt *s)
{
	return json_pack("{s:I, s:o, s:o}", "id", (json_int_t)db_col_int64(s, 0), "body",
	                 store_col_text(s, 1), "created_at", store_col_time(s, 2));
}

/* store_note_list - the author's notes on a booking */
gw_rc store_note_list(struct store *st, int64_t booking, int64_t author, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT id, body, created_at FROM booking_notes"
	                                 " WHERE booking_id = ?1 AND author_id = ?2 ORDER BY id");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, booking);
	db_bind_int64(s, 2, author);
	return store_collect(s, row_note_list, out);
}

/* store_survey_create - a survey token for a booking */
gw_rc store_survey_create(struct store *st, int64_t org, int64_t booking,
                          const char *token_hash, time_t now)
{
	struct db_stmt *s = store_stmt(st, "INSERT INTO surveys(booking_id, org_id,"
	                                 " token_hash, created_at) VALUES(?1, ?2, ?3, ?4)"
	                                 " ON CONFLICT DO NOTHING");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, booking);
	db_bind_int64(s, 2, org);
	db_bind_text(s, 3, token_hash, -1);
	db_bind_int64(s, 4, now);
	r = db_step(s);
	db_reset(s);
	if(r != DB_DONE)
		return store_write_rc(st, r);
	return db_changes(st) == 1 ? GW_OK : GW_EEXISTS;
}

/* row_survey_get - the row of store_survey_get */
static json_t *row_survey_get(struct db_stmt *s)
{
	return json_pack("{s:I, s:I, s:b, s:o, s:o, s:{s:o}, s:o, s:o, s:o}", "booking_id",
	                 (json_int_t)db_col_int64(s, 0), "org_id",
	                 (json_int_t)db_col_int64(s, 1), "answered",
	                 db_col_int(s, 2), "rating", opt_int(s, 3), "comment",
	                 store_col_text(s, 4), "trainer", "name", store_col_text(s, 5),
	                 "session_type", store_col_text(s, 6), "start", store_col_time(s, 7),
	                 "organisation", store_col_text(s, 8));
}

/* store_survey_get - a survey by token */
gw_rc store_survey_get(struct store *st, const char *token_hash, json_t **out)
{
	struct db_stmt *s = store_stmt(
	    st, "SELECT v.booking_id, v.org_id, v.answered_at IS NOT NULL, v.rating, v.comment,"
	        " u.name, t.name, b.start_at, o.name FROM surveys v"
	        " JOIN bookings b ON b.id = v.booking_id JOIN users u ON u.id = b.trainer_id"
	        " JOIN requests r ON r.id = b.request_id JOIN orgs o ON o.id = v.org_id"
	        " LEFT JOIN session_types t ON t.id = r.session_type_id WHERE v.token_hash = ?1");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, token_hash, -1);
	return store_one(s, row_survey_get, out);
}

/* store_survey_answer - answer once */
gw_rc store_survey_answer(struct store *st, const char *token_hash, int rating,
                          const char *comment, time_t now)
{
	struct db_stmt *s = store_stmt(st, "UPDATE surveys SET rating = ?2, comment = ?3,"
	                                 " answered_at = ?4 WHERE token_hash = ?1"
	                                 " AND answered_at IS NULL");
	struct db_stmt *e = store_stmt(st, "SELECT 1 FROM surveys WHERE token_hash = ?1");

	if(!s || !e)
		return GW_EDB;
	db_bind_text(s, 1, token_hash, -1);
	db_bind_int64(s, 2, rating);
	store_bind_text(s, 3, comment);
	db_bind_int64(s, 4, now);
	db_bind_text(e, 1, token_hash, -1);
	return store_cond_update(st, s, e, GW_ESTATE);
}

/* row_report_payouts - one row of store_report_payouts */
static json_t *row_report_payouts(struct db_stmt *s)
{
	return json_pack("{s:I, s:o, s:I, s:I, s:I, s:I, s:o}", "trainer_id",
	                 (json_int_t)db_col_int64(s, 0), "name", store_col_text(s, 1),
	                 "completed", (json_int_t)db_col_int64(s, 2), "revenue_cents",
	                 (json_int_t)db_col_int64(s, 3), "customer_no_shows",
	                 (json_int_t)db_col_int64(s, 4), "trainer_no_shows",
	                 (json_int_t)db_col_int64(s, 5), "currency", store_col_text(s, 6));
}

/* store_report_payouts - per-trainer figures */
gw_rc store_report_payouts(struct store *st, int64_t org, time_t from, time_t to,
                           json_t **out)
{
	struct db_stmt *s = store_stmt(
	    st, "SELECT b.trainer_id, u.name,"
	        " sum(CASE WHEN b.status = 'completed' THEN 1 ELSE 0 END),"
	        " sum(CASE WHEN b.status = 'completed' THEN b.price_cents ELSE 0 END),"
	        " sum(CASE WHEN b.status = 'no_show' AND b.customer_no_show != 0 THEN 1 ELSE 0 END),"
	        " sum(CASE WHEN b.status = 'no_show' AND b.trainer_no_show != 0 THEN 1 ELSE 0 END),"
	        " min(b.currency)"
	        " FROM bookings b JOIN users u ON u.id = b.trainer_id"
	        " WHERE b.org_id = ?1 AND b.start_at >= ?2 AND b.start_at < ?3"
	        " AND b.status IN ('completed', 'no_show')"
	        " GROUP BY b.trainer_id, u.name ORDER BY b.trainer_id");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	db_bind_int64(s, 2, from);
	db_bind_int64(s, 3, to);
	return store_collect(s, row_report_payouts, out);
}

/* row_booking_list_for_request - one row of store_booking_list_for_request */
static json_t *row_booking_list_for_request(struct db_stmt *s)
{
	return json_pack("{s:I, s:o, s:o, s:o, s:o}", "booking_id",
	                 (json_int_t)db_col_int64(s, 0), "status", store_col_text(s, 1),
	                 "start", store_col_time(s, 2), "end", store_col_time(s, 3), "paid_at",
	                 store_col_time(s, 4));
}

/* store_booking_list_for_request - bookings made through a request's links */
gw_rc store_booking_list_for_request(struct store *st, int64_t request, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT id, status, start_at, end_at, paid_at FROM bookings"
	                                 " WHERE request_id = ?1 ORDER BY id DESC");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, request);
	return store_collect(s, row_booking_list_for_request, out);
}

/* store_manage_token_add - one manage link of a booking */
gw_rc store_manage_token_add(struct store *st, int64_t org, int64_t booking,
                             const char *token_hash, time_t now)
{
	struct db_stmt *s = store_stmt(st, "INSERT INTO manage_tokens(token_hash, org_id, booking_id,"
	                                 " created_at) VALUES(?1, ?2, ?3, ?4)");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, token_hash, -1);
	db_bind_int64(s, 2, org);
	db_bind_int64(s, 3, booking);
	db_bind_int64(s, 4, now);
	r = db_step(s);
	db_reset(s);
	return store_write_rc(st, r);
}

/* store_manage_lookup - the booking of a manage token */
gw_rc store_manage_lookup(struct store *st, const char *token_hash, int64_t *org,
                          int64_t *booking)
{
	struct db_stmt *s = store_stmt(st, "SELECT org_id, booking_id FROM manage_tokens"
	                                 " WHERE token_hash = ?1");
	int r;

	*org = 0;
	*booking = 0;
	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, token_hash, -1);
	r = db_step(s);
	if(r == DB_ROW) {
		*org = db_col_int64(s, 0);
		*booking = db_col_int64(s, 1);
	}
	db_reset(s);
	if(r == DB_ROW)
		return GW_OK;
	return r == DB_DONE ? GW_ENOTFOUND : store_fail(r);
}
