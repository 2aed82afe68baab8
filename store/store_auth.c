/*
 * store_auth.c - sign-in links and browser sessions (migration 11).
 *
 * A sign-in link and a session cookie are random tokens of which only the SHA-256 hex is
 * stored (docs/design.md "Security"). A link is used by one conditional UPDATE, so two racing
 * logins with the same link cannot both win. The trigger of migration 11 ends a user's
 * sessions when the user is deactivated.
 *
 * Entry points: store_auth_signer(), store_auth_link_add(), store_auth_link_take(),
 * store_session_create(), store_session_user(), store_session_end().
 * Threading: one connection per thread.
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

/* how long a used or expired link is kept, so that trying it again says "expired" */
#define LINK_KEEP_SECS 86400

/* row_signer - the row of store_auth_signer */
static json_t *row_signer(struct db_stmt *s)
{
	return json_pack("{s:I, s:I, s:o, s:o}", "id", (json_int_t)db_col_int64(s, 0),
	                 "org_id", (json_int_t)db_col_int64(s, 1), "email",
	                 store_col_text(s, 2), "name", store_col_text(s, 3));
}

/* store_auth_signer - the user a sign-in request names, if it may sign in. The organisation
 * narrows the rows to a few through users_org_email before lower() is applied. */
gw_rc store_auth_signer(struct store *st, int64_t org, const char *email, int roles, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT id, org_id, email, name FROM users"
	                                 " WHERE org_id = ?1 AND lower(email) = lower(?2)"
	                                 " AND active = 1 AND (roles & ?3) != 0"
	                                 " ORDER BY id LIMIT 1");

	*out = NULL;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	db_bind_text(s, 2, email, -1);
	db_bind_int64(s, 3, roles);
	return store_one(s, row_signer, out);
}

/* store_auth_link_add - record one link */
gw_rc store_auth_link_add(struct store *st, int64_t org, int64_t user, const char *token_hash,
                          time_t now, time_t expires_at, int64_t *id)
{
	struct db_stmt *p = store_stmt(st, "DELETE FROM sign_in_links WHERE expires_at < ?1");
	struct db_stmt *s = store_stmt(st, "INSERT INTO sign_in_links(token_hash, org_id, user_id,"
	                                 " created_at, expires_at) VALUES(?1, ?2, ?3, ?4, ?5)");
	gw_rc rc;

	if(!p || !s)
		return GW_EDB;
	db_bind_int64(p, 1, (int64_t)now - LINK_KEEP_SECS);
	if((rc = store_step_done(st, p)))
		return rc;
	db_bind_text(s, 1, token_hash, -1);
	db_bind_int64(s, 2, org);
	db_bind_int64(s, 3, user);
	db_bind_int64(s, 4, now);
	db_bind_int64(s, 5, expires_at);
	if((rc = store_step_done(st, s)))
		return rc;
	*id = db_last_id(st);
	return GW_OK;
}

/* store_auth_link_take - use a link once */
gw_rc store_auth_link_take(struct store *st, const char *token_hash, time_t now, int64_t *user)
{
	struct db_stmt *s =
	        store_stmt(st, "UPDATE sign_in_links SET used_at = ?2"
	                       " WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2"
	                       " AND user_id IN (SELECT id FROM users WHERE active = 1)"
	                       " RETURNING user_id");
	struct db_stmt *e = store_stmt(st, "SELECT 1 FROM sign_in_links WHERE token_hash = ?1");
	int r;

	*user = 0;
	if(!s || !e)
		return GW_EDB;
	db_bind_text(s, 1, token_hash, -1);
	db_bind_int64(s, 2, now);
	r = db_step(s);
	if(r == DB_ROW)
		*user = db_col_int64(s, 0);
	/* RETURNING: the UPDATE completes on the reset that follows its one row */
	if(r == DB_ROW)
		r = db_step(s);
	db_reset(s);
	if(r != DB_DONE)
		return store_write_rc(st, r);
	if(*user)
		return GW_OK;
	db_bind_text(e, 1, token_hash, -1);
	r = db_step(e);
	db_reset(e);
	if(r == DB_ROW)
		return GW_EEXPIRED;
	return r == DB_DONE ? GW_ENOTFOUND : store_fail(r);
}

/* store_session_create - insert one session */
gw_rc store_session_create(struct store *st, int64_t user, const char *session_hash,
                           const char *csrf, time_t now, time_t expires_at)
{
	struct db_stmt *p = store_stmt(st, "DELETE FROM sessions WHERE expires_at <= ?1");
	struct db_stmt *s = store_stmt(st, "INSERT INTO sessions(session_hash, user_id, csrf_token,"
	                                 " created_at, expires_at) VALUES(?1, ?2, ?3, ?4, ?5)");
	gw_rc rc;

	if(!p || !s)
		return GW_EDB;
	db_bind_int64(p, 1, now);
	if((rc = store_step_done(st, p)))
		return rc;
	db_bind_text(s, 1, session_hash, -1);
	db_bind_int64(s, 2, user);
	db_bind_text(s, 3, csrf, -1);
	db_bind_int64(s, 4, now);
	db_bind_int64(s, 5, expires_at);
	return store_step_done(st, s);
}

/* store_session_user - authenticate a session cookie: one indexed lookup, like a bearer token */
gw_rc store_session_user(struct store *st, const char *session_hash, time_t now,
                         struct store_user *out, char *csrf, size_t n)
{
	struct db_stmt *s = store_stmt(
	        st, "SELECT u.id, coalesce(u.org_id, 0), u.roles, u.email, u.name, u.timezone,"
	            " s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id"
	            " WHERE s.session_hash = ?1 AND s.expires_at > ?2 AND u.active = 1");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, session_hash, -1);
	db_bind_int64(s, 2, now);
	r = db_step(s);
	if(r == DB_ROW) {
		memset(out, 0, sizeof(*out));
		out->id = db_col_int64(s, 0);
		out->org_id = db_col_int64(s, 1);
		out->roles = db_col_int(s, 2);
		snprintf(out->email, sizeof(out->email), "%s", db_col_text(s, 3));
		snprintf(out->name, sizeof(out->name), "%s", db_col_text(s, 4));
		snprintf(out->timezone, sizeof(out->timezone), "%s", db_col_text(s, 5));
		snprintf(csrf, n, "%s", db_col_text(s, 6));
	}
	db_reset(s);
	if(r == DB_DONE)
		return GW_EUNAUTH;
	return r == DB_ROW ? GW_OK : store_fail(r);
}

/* store_session_end - sign out */
gw_rc store_session_end(struct store *st, const char *session_hash)
{
	struct db_stmt *s = store_stmt(st, "DELETE FROM sessions WHERE session_hash = ?1");

	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, session_hash, -1);
	return store_step_done(st, s);
}
