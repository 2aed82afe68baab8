/*
 * store_request.c - customer requests: intake, lists, the claim, the session-type change.
 *
 * Entry points: store_request_create(), store_request_get(), store_request_list(),
 * store_request_claim(), store_request_set_session_type(), store_trainer_matches(),
 * store_request_cancel().
 * Threading: one connection per thread.
 */
#include <string.h>

#include "store_int.h"

/* store_request_create - insert a new request */
gw_rc store_request_create(struct store *st, int64_t org, const struct store_request_new *r,
                           time_t now, int64_t *id)
{
	struct db_stmt *s = store_stmt(
	    st, "INSERT INTO requests(org_id, customer_name, customer_email, customer_phone,"
	        " session_type_id, skills, answers, status, created_at, updated_at)"
	        " VALUES(?1, ?2, lower(?3), ?4, ?5, ?6, ?7, 'new', ?8, ?8)");
	int x;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	db_bind_text(s, 2, r->customer_name, -1);
	db_bind_text(s, 3, r->customer_email, -1);
	store_bind_text(s, 4, r->customer_phone);
	store_bind_id(s, 5, r->session_type_id);
	store_bind_json(s, 6, r->skills);
	store_bind_json(s, 7, r->answers);
	db_bind_int64(s, 8, now);
	x = db_step(s);
	db_reset(s);
	if(x != DB_DONE)
		return store_rc(x) ? store_rc(x) : GW_EDB;
	*id = db_last_id(st);
	return GW_OK;
}

#define REQUEST_COLS                                                                           \
	"r.id, r.status, r.customer_name, r.customer_email, r.customer_phone, r.session_type_id,"  \
	" r.skills, r.answers, r.trainer_id, r.claimed_at, r.link_sent_at, r.link_expires_at,"     \
	" r.created_at, t.name, t.lengths, t.price_cents, t.currency, u.name, r.cancelled_at,"     \
	" r.cancel_reason"
#define REQUEST_FROM                                                                           \
	" FROM requests r LEFT JOIN session_types t ON t.id = r.session_type_id"                   \
	" LEFT JOIN users u ON u.id = r.trainer_id"

/* request_json - a request row as the API shows it */
static json_t *request_json(struct db_stmt *s)
{
	json_t *st_obj = json_null(), *trainer = json_null();

	if(db_col_type(s, 5) != DB_NULL)
		st_obj = json_pack("{s:I, s:o, s:o, s:I, s:o}", "id",
		                   (json_int_t)db_col_int64(s, 5), "name",
		                   store_col_text(s, 13), "lengths", store_col_json(s, 14),
		                   "price_cents", (json_int_t)db_col_int64(s, 15), "currency",
		                   store_col_text(s, 16));
	if(db_col_type(s, 8) != DB_NULL)
		trainer = json_pack("{s:I, s:o}", "id", (json_int_t)db_col_int64(s, 8), "name",
		                    store_col_text(s, 17));
	json_t *req = json_pack(
	    "{s:I, s:o, s:{s:o, s:o, s:o}, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
	    (json_int_t)db_col_int64(s, 0), "status", store_col_text(s, 1), "customer",
	    "name", store_col_text(s, 2), "email", store_col_text(s, 3), "phone",
	    store_col_text(s, 4), "session_type_id",
	    db_col_type(s, 5) == DB_NULL ? json_null()
	                                             : json_integer(db_col_int64(s, 5)),
	    "session_type", st_obj ? st_obj : json_null(), "skills", store_col_json(s, 6),
	    "answers", store_col_json(s, 7), "trainer_id",
	    db_col_type(s, 8) == DB_NULL ? json_null()
	                                             : json_integer(db_col_int64(s, 8)),
	    "trainer", trainer ? trainer : json_null(), "claimed_at", store_col_time(s, 9),
	    "link_sent_at", store_col_time(s, 10), "link_expires_at", store_col_time(s, 11),
	    "created_at", store_col_time(s, 12));

	if(req && (json_object_set_new(req, "cancelled_at", store_col_time(s, 18)) ||
	           json_object_set_new(req, "cancel_reason", store_col_text(s, 19)))) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/* store_request_get - one request */
gw_rc store_request_get(struct store *st, int64_t org, int64_t id, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT " REQUEST_COLS REQUEST_FROM
	                                 " WHERE r.id = ?1 AND r.org_id = ?2");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, org);
	return store_one(s, request_json, out);
}

/* store_request_list - requests of org, optionally of one status, optionally as a trainer sees
 * them (unclaimed matching ones and their own) */
gw_rc store_request_list(struct store *st, int64_t org, const char *status, int64_t trainer,
                         json_t **out)
{
	static const struct db_sql q = {{
	            "SELECT " REQUEST_COLS REQUEST_FROM
	            " WHERE r.org_id = ?1 AND (?2 IS NULL OR r.status = ?2)"
	            " AND (?3 IS NULL OR r.trainer_id = ?3 OR (r.status = 'new' AND NOT EXISTS"
	            "  (SELECT 1 FROM json_each(r.skills) k WHERE k.value NOT IN"
	            "   (SELECT value FROM users x, json_each(x.skills) WHERE x.id = ?3))))"
	            " ORDER BY r.id DESC LIMIT 500",
	            "SELECT " REQUEST_COLS REQUEST_FROM
	            " WHERE r.org_id = ?1 AND (?2 IS NULL OR r.status = ?2)"
	            " AND (?3 IS NULL OR r.trainer_id = ?3 OR (r.status = 'new' AND NOT EXISTS"
	            "  (SELECT 1 FROM jsonb_array_elements_text(r.skills::jsonb) k(value)"
	            "   WHERE k.value NOT IN (SELECT j.value FROM users x,"
	            "   jsonb_array_elements_text(x.skills::jsonb) j(value) WHERE x.id = ?3))))"
	            " ORDER BY r.id DESC LIMIT 500",
	}};
	struct db_stmt *s = store_stmt_d(st, &q);

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	store_bind_text(s, 2, status);
	store_bind_id(s, 3, trainer);
	return store_collect(s, request_json, out);
}

/* request_exists - the bound existence query of request id in org */
static struct db_stmt *request_exists(struct store *st, int64_t org, int64_t id)
{
	struct db_stmt *s = store_stmt(st, "SELECT 1 FROM requests WHERE id = ?1 AND org_id = ?2");

	if(s) {
		db_bind_int64(s, 1, id);
		db_bind_int64(s, 2, org);
	}
	return s;
}

/* store_request_claim - the conditional UPDATE: exactly one trainer wins */
gw_rc store_request_claim(struct store *st, int64_t org, int64_t id, int64_t trainer,
                          time_t now)
{
	struct db_stmt *s = store_stmt(st, "UPDATE requests SET status = 'claimed', trainer_id = ?3,"
	                                 " claimed_at = ?4, updated_at = ?4"
	                                 " WHERE id = ?1 AND org_id = ?2 AND status = 'new'");
	struct db_stmt *e;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, org);
	db_bind_int64(s, 3, trainer);
	db_bind_int64(s, 4, now);
	e = request_exists(st, org, id);
	return e ? store_cond_update(st, s, e, GW_ECLAIMED) : GW_EDB;
}

/* store_request_set_session_type - change the session type while claimed by trainer */
gw_rc store_request_set_session_type(struct store *st, int64_t org, int64_t id,
                                     int64_t trainer, int64_t session_type_id, time_t now)
{
	struct db_stmt *s = store_stmt(
	    st, "UPDATE requests SET session_type_id = ?4, updated_at = ?5"
	        " WHERE id = ?1 AND org_id = ?2 AND trainer_id = ?3 AND status = 'claimed'");
	struct db_stmt *e;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, org);
	db_bind_int64(s, 3, trainer);
	db_bind_int64(s, 4, session_type_id);
	db_bind_int64(s, 5, now);
	e = request_exists(st, org, id);
	return e ? store_cond_update(st, s, e, GW_ESTATE) : GW_EDB;
}

/* store_trainer_matches - does the trainer hold every skill of the request */
gw_rc store_trainer_matches(struct store *st, int64_t org, int64_t request, int64_t trainer,
                            bool *match)
{
	static const struct db_sql q = {{
	    "SELECT NOT EXISTS (SELECT 1 FROM json_each(r.skills) k WHERE k.value NOT IN"
	    "  (SELECT value FROM json_each(u.skills))) AND (u.roles & 4) != 0 AND u.active = 1"
	    " FROM requests r, users u"
	    " WHERE r.id = ?1 AND r.org_id = ?2 AND u.id = ?3 AND u.org_id = ?2",
	    "SELECT NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.skills::jsonb) k(value)"
	    "  WHERE k.value NOT IN (SELECT j.value FROM jsonb_array_elements_text(u.skills::jsonb)"
	    "  j(value))) AND (u.roles & 4) != 0 AND u.active = 1"
	    " FROM requests r, users u"
	    " WHERE r.id = ?1 AND r.org_id = ?2 AND u.id = ?3 AND u.org_id = ?2",
	}};
	struct db_stmt *s = store_stmt_d(st, &q);
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, request);
	db_bind_int64(s, 2, org);
	db_bind_int64(s, 3, trainer);
	r = db_step(s);
	*match = r == DB_ROW && db_col_int(s, 0);
	db_reset(s);
	if(r == DB_DONE)
		return GW_ENOTFOUND;
	return r == DB_ROW ? GW_OK : store_fail(r);
}

/* store_request_cancel - the conditional UPDATE of a cancel: new, claimed or scheduling */
gw_rc store_request_cancel(struct store *st, int64_t org, int64_t id, const char *reason,
                           time_t now)
{
	struct db_stmt *s = store_stmt(
	    st, "UPDATE requests SET status = 'cancelled', cancelled_at = ?3, cancel_reason = ?4,"
	        " updated_at = ?3 WHERE id = ?1 AND org_id = ?2"
	        " AND status IN ('new', 'claimed', 'scheduling')");
	struct db_stmt *e;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, org);
	db_bind_int64(s, 3, now);
	store_bind_text(s, 4, reason);
	e = request_exists(st, org, id);
	return e ? store_cond_update(st, s, e, GW_ESTATE) : GW_EDB;
}
