/*
 * store_core.c - connection, pragmas, migrations, transactions, the statement cache.
 *
 * Entry points: store_open(), store_close(), store_schema_version(), store_begin(),
 * store_commit(), store_rollback(), store_errmsg(), and the internal helpers of store_int.h.
 * The engine is the backend's (store_db.h): nothing here knows which one it is, beyond which
 * list of migrations it takes.
 * Threading: a struct store belongs to one thread at a time.
 */
#include "store_int.h"
#include "store_pg_schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/timefmt.h"

/* Numbered migrations, each a NULL-terminated list of statements (kept apart so no literal
 * passes the 4095 characters C requires compilers to take). Each runs once, in order, in one
 * transaction, and is recorded in schema_migrations. Never edit a released step: add one. */
static const char *const m1[] = {
    /* 1: the foundation schema */
    "CREATE TABLE orgs("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " timezone TEXT NOT NULL,"
    " settings TEXT NOT NULL DEFAULT '{}',"
    " created_at INTEGER NOT NULL);",
    "CREATE TABLE users("
    " id INTEGER PRIMARY KEY,"
    " org_id INTEGER REFERENCES orgs(id),"
    " email TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " roles INTEGER NOT NULL,"
    " skills TEXT NOT NULL DEFAULT '[]',"
    " timezone TEXT NOT NULL DEFAULT 'UTC',"
    " notify_on_confirm INTEGER NOT NULL DEFAULT 0,"
    " active INTEGER NOT NULL DEFAULT 1,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " availability TEXT NOT NULL DEFAULT '{\"weekly\":[],\"blackouts\":[]}',"
    " created_at INTEGER NOT NULL);",
    "CREATE UNIQUE INDEX users_org_email ON users(ifnull(org_id, 0), email);",
    "CREATE TABLE session_types("
    " id INTEGER PRIMARY KEY,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " name TEXT NOT NULL,"
    " skills TEXT NOT NULL DEFAULT '[]',"
    " lengths TEXT NOT NULL,"
    " price_cents INTEGER NOT NULL,"
    " currency TEXT NOT NULL,"
    " step_minutes INTEGER NOT NULL DEFAULT 30,"
    " created_at INTEGER NOT NULL);",
    "CREATE INDEX session_types_org ON session_types(org_id);",
    "CREATE TABLE requests("
    " id INTEGER PRIMARY KEY,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " customer_name TEXT NOT NULL,"
    " customer_email TEXT NOT NULL,"
    " customer_phone TEXT,"
    " session_type_id INTEGER REFERENCES session_types(id),"
    " skills TEXT NOT NULL DEFAULT '[]',"
    " answers TEXT NOT NULL DEFAULT '{}',"
    " status TEXT NOT NULL DEFAULT 'new',"
    " trainer_id INTEGER REFERENCES users(id),"
    " claimed_at INTEGER,"
    " link_version INTEGER NOT NULL DEFAULT 0,"
    " link_token_hash TEXT UNIQUE,"
    " link_sent_at INTEGER,"
    " link_expires_at INTEGER,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);",
    "CREATE INDEX requests_org_status ON requests(org_id, status, id);",
    "CREATE INDEX requests_trainer ON requests(trainer_id, status);",
    "CREATE TABLE bookings("
    " id INTEGER PRIMARY KEY,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " request_id INTEGER NOT NULL REFERENCES requests(id),"
    " trainer_id INTEGER NOT NULL REFERENCES users(id),"
    " status TEXT NOT NULL,"
    " start_at INTEGER NOT NULL,"
    " end_at INTEGER NOT NULL,"
    " length_minutes INTEGER NOT NULL,"
    " sequence INTEGER NOT NULL DEFAULT 0,"
    " uid TEXT NOT NULL,"
    " payment_reference TEXT,"
    " paid_at INTEGER,"
    " confirmed_at INTEGER,"
    " completed_at INTEGER,"
    " completed_by TEXT,"
    " customer_no_show INTEGER NOT NULL DEFAULT 0,"
    " trainer_no_show INTEGER NOT NULL DEFAULT 0,"
    " no_show_marked_by TEXT,"
    " no_show_marked_at INTEGER,"
    " no_show_note TEXT,"
    " cancelled_at INTEGER,"
    " cancel_reason TEXT,"
    " session_link TEXT,"
    " calendar_event_id TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);",
    "CREATE INDEX bookings_status_start ON bookings(status, start_at);",
    "CREATE INDEX bookings_status_end ON bookings(status, end_at);",
    "CREATE INDEX bookings_trainer_start ON bookings(trainer_id, start_at);",
    "CREATE INDEX bookings_request ON bookings(request_id);",
    "CREATE TABLE outbox("
    " id INTEGER PRIMARY KEY,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " kind TEXT NOT NULL,"
    " provider_class TEXT NOT NULL,"
    " provider TEXT,"
    " dedupe_key TEXT NOT NULL,"
    " request_id INTEGER,"
    " booking_id INTEGER,"
    " payload TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'pending',"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at INTEGER NOT NULL,"
    " deadline_at INTEGER,"
    " lease_owner TEXT,"
    " lease_expires_at INTEGER,"
    " last_error TEXT,"
    " created_at INTEGER NOT NULL,"
    " sent_at INTEGER);",
    "CREATE INDEX outbox_due ON outbox(status, next_attempt_at);",
    "CREATE INDEX outbox_lease ON outbox(status, lease_expires_at);",
    "CREATE INDEX outbox_booking ON outbox(booking_id);",
    "CREATE INDEX outbox_request ON outbox(request_id);",
    "CREATE INDEX outbox_org ON outbox(org_id, status, id);",
    "CREATE TABLE dedupe_keys("
    " org_id INTEGER NOT NULL,"
    " key TEXT NOT NULL,"
    " outbox_id INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY(org_id, key)) WITHOUT ROWID;",
    "CREATE TABLE delivery_attempts("
    " id INTEGER PRIMARY KEY,"
    " outbox_id INTEGER NOT NULL REFERENCES outbox(id),"
    " attempt INTEGER NOT NULL,"
    " provider TEXT,"
    " started_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL,"
    " outcome TEXT NOT NULL,"
    " detail TEXT);",
    "CREATE INDEX delivery_attempts_outbox ON delivery_attempts(outbox_id);",
    "CREATE TABLE provider_configs("
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " name TEXT NOT NULL,"
    " config TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(org_id, name));",
    NULL,
};

static const char *const m2[] = {
    /* 2: the booking lifecycle: notes, surveys, feeds, prices, holds, and no overlapping
     * holds of one trainer, enforced by the store itself (a trigger checks inside the writing
     * transaction, so two racing inserts cannot both pass) */
    "ALTER TABLE bookings ADD COLUMN price_cents INTEGER NOT NULL DEFAULT 0;",
    "ALTER TABLE bookings ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR';",
    "ALTER TABLE bookings ADD COLUMN hold_expires_at INTEGER;",
    "ALTER TABLE bookings ADD COLUMN completion_note TEXT;",
    "ALTER TABLE bookings ADD COLUMN checked_in_at INTEGER;",
    "ALTER TABLE users ADD COLUMN feed_token_hash TEXT;",
    "CREATE UNIQUE INDEX users_feed ON users(feed_token_hash);",
    "CREATE INDEX requests_customer ON requests(org_id, customer_email);",
    "CREATE INDEX bookings_org_start ON bookings(org_id, start_at);",
    "CREATE TABLE booking_notes("
    " id INTEGER PRIMARY KEY,"
    " booking_id INTEGER NOT NULL REFERENCES bookings(id),"
    " author_id INTEGER NOT NULL REFERENCES users(id),"
    " body TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);",
    "CREATE INDEX booking_notes_booking ON booking_notes(booking_id, author_id);",
    "CREATE TABLE surveys("
    " booking_id INTEGER PRIMARY KEY REFERENCES bookings(id),"
    " org_id INTEGER NOT NULL,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " rating INTEGER,"
    " comment TEXT,"
    " answered_at INTEGER,"
    " created_at INTEGER NOT NULL);",
    /* a booking lasts at most a day (lengths are at most 720 minutes), so only bookings that
     * start within a day before the new one can overlap it: a bounded index range however
     * long the trainer's history is */
    "CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings"
    " WHEN NEW.status IN ('pending_payment', 'confirmed') AND EXISTS (SELECT 1 FROM bookings b"
    "  WHERE b.trainer_id = NEW.trainer_id AND b.status IN ('pending_payment', 'confirmed')"
    "  AND b.start_at < NEW.end_at AND b.start_at > NEW.start_at - 86400"
    "  AND b.end_at > NEW.start_at)"
    " BEGIN SELECT RAISE(ABORT, 'slot_taken'); END;",
    "CREATE TRIGGER bookings_no_overlap_update BEFORE UPDATE OF start_at, end_at, status"
    " ON bookings"
    " WHEN NEW.status IN ('pending_payment', 'confirmed') AND EXISTS (SELECT 1 FROM bookings b"
    "  WHERE b.trainer_id = NEW.trainer_id AND b.id != NEW.id"
    "  AND b.status IN ('pending_payment', 'confirmed')"
    "  AND b.start_at < NEW.end_at AND b.start_at > NEW.start_at - 86400"
    "  AND b.end_at > NEW.start_at)"
    " BEGIN SELECT RAISE(ABORT, 'slot_taken'); END;",
    NULL,
};

static const char *const m3[] = {
    /* 3: the scheduler's index ranges: every query a tick makes is a range of one of these
     * (per organisation, by status, by start or end), never a scan of all bookings */
    "CREATE INDEX bookings_org_status_start ON bookings(org_id, status, start_at);",
    "CREATE INDEX bookings_org_status_end ON bookings(org_id, status, end_at);",
    "CREATE INDEX bookings_status_hold ON bookings(status, hold_expires_at);",
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    NULL,
};

static const char *const m4[] = {
    /* 4: cancelled requests keep when and why; the customer's own links to a booking. Every
     * email that carries a manage link mints its own token (a reminder is rendered long after
     * the confirmation, and only hashes are kept), so a booking has one row per link sent;
     * each works for the booking's whole life, a reschedule included */
    "ALTER TABLE requests ADD COLUMN cancelled_at INTEGER;",
    "ALTER TABLE requests ADD COLUMN cancel_reason TEXT;",
    "CREATE TABLE manage_tokens("
    " token_hash TEXT PRIMARY KEY,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " booking_id INTEGER NOT NULL REFERENCES bookings(id),"
    " created_at INTEGER NOT NULL) WITHOUT ROWID;",
    "CREATE INDEX manage_tokens_booking ON manage_tokens(booking_id);",
    NULL,
};

static const char *const m5[] = {
    /* 5: calendar connections, one per user. The refresh token is stored sealed (the
     * dispatcher opens it); a reconnect replaces the row, so its id names one grant and a
     * delivery that failed with an old grant cannot mark a newer one (store_result.cal_conn_id) */
    "CREATE TABLE calendar_connections("
    " id INTEGER PRIMARY KEY,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " user_id INTEGER NOT NULL UNIQUE REFERENCES users(id),"
    " provider TEXT NOT NULL,"
    " calendar_id TEXT NOT NULL,"
    " secret TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'connected',"
    " last_error TEXT,"
    " connected_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);",
    NULL,
};

static const char *const m6[] = {
    /* 6: the OAuth 2.0 authorization requests in flight (RFC 6749 4.1, RFC 7636): one row per
     * state, stored as its SHA-256 and taken (deleted) by the callback that presents it, so a
     * state works once; the PKCE code_verifier is sealed (it is sent in the token exchange).
     * Rows past expires_at are purged whenever a new one is made. A calendar row held for a
     * connection that needs reconnecting has status 'held' (no schema change: status is text);
     * the index finds a trainer's held rows when the calendar is connected again */
    "CREATE TABLE oauth_states("
    " state_hash TEXT PRIMARY KEY,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " provider TEXT NOT NULL,"
    " verifier TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL) WITHOUT ROWID;",
    "CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);",
    NULL,
};

static const char *const m7[] = {
    /* 7: what a CalDAV server answered the last write of a booking's event with (its ETag),
     * for the If-Match of the next one (RFC 4791 5.3.4); NULL for other providers and after a
     * delete */
    "ALTER TABLE bookings ADD COLUMN calendar_etag TEXT;",
    NULL,
};


static const char *const m8[] = {
    /* 8: what an email payload still holds (store_outbox_redact): NULL everything rendered,
     * 'redacted' the link tokens dropped once it was sent, 'pruned' the rendered text dropped
     * after the retention. The dedupe_keys rows are never touched. */
    "ALTER TABLE outbox ADD COLUMN payload_state TEXT;",
    "CREATE INDEX outbox_unredacted ON outbox(status) WHERE payload_state IS NULL;",
    "CREATE INDEX outbox_redacted ON outbox(payload_state, sent_at)"
    " WHERE payload_state = 'redacted';",
    NULL,
};

static const char *const m9[] = {
    /* 9: the busy times of each calendar connection, pulled in the background
     * (gateway/delivery/dispatch_busy.c) and replaced whole per fetch; a reconnect (a new
     * connection row) or a disconnect drops them with the connection. busy_fetched_at is the
     * last fetch that succeeded; busy_error and busy_error_at the last that failed, NULL again
     * after a success (the blocks of the last success stay in force meanwhile) */
    "CREATE TABLE calendar_busy("
    " connection_id INTEGER NOT NULL REFERENCES calendar_connections(id) ON DELETE CASCADE,"
    " start_at INTEGER NOT NULL,"
    " end_at INTEGER NOT NULL);",
    "CREATE INDEX calendar_busy_conn ON calendar_busy(connection_id, start_at);",
    "ALTER TABLE calendar_connections ADD COLUMN busy_fetched_at INTEGER;",
    "ALTER TABLE calendar_connections ADD COLUMN busy_error TEXT;",
    "ALTER TABLE calendar_connections ADD COLUMN busy_error_at INTEGER;",
    NULL,
};

static const char *const m10[] = {
    /* 10: the booking's Zoho Assist scheduled session (providers/zoho): its schedule_id, for
     * the later update and delete, and the customer's join URL (customer_url), which the
     * session_link email and every later reminder carry; session_link holds the technician
     * URL (the trainer's "Open in Zoho Assist") */
    "ALTER TABLE bookings ADD COLUMN zoho_session_id TEXT;",
    "ALTER TABLE bookings ADD COLUMN session_join_url TEXT;",
    NULL,
};

static const char *const m11[] = {
    /* 11: sign-in by emailed link and browser sessions (store_auth.c). A link is stored as the
     * SHA-256 of its token, valid until expires_at and used once (used_at set by one
     * conditional UPDATE); used and expired links stay a day so that a second try says "expired"
     * rather than "unknown", then are purged. A session is stored as the SHA-256 of its cookie
     * value with its CSRF token (sent to the page in JSON, so not a secret of the same kind),
     * valid until expires_at. Deactivating a user, or taking away both roles that may sign in
     * (org_admin 2, trainer 4), ends their sessions and unused links in the same statement. */
    "CREATE TABLE sign_in_links("
    " id INTEGER PRIMARY KEY,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " used_at INTEGER);",
    "CREATE INDEX sign_in_links_expiry ON sign_in_links(expires_at);",
    "CREATE INDEX sign_in_links_user ON sign_in_links(user_id);",
    "CREATE TABLE sessions("
    " id INTEGER PRIMARY KEY,"
    " session_hash TEXT NOT NULL UNIQUE,"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " csrf_token TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL);",
    "CREATE INDEX sessions_user ON sessions(user_id);",
    "CREATE INDEX sessions_expiry ON sessions(expires_at);",
    "CREATE TRIGGER users_end_sessions AFTER UPDATE OF active, roles ON users"
    " WHEN NEW.active = 0 OR (NEW.roles & 6) = 0"
    " BEGIN"
    " DELETE FROM sessions WHERE user_id = NEW.id;"
    " DELETE FROM sign_in_links WHERE user_id = NEW.id AND used_at IS NULL;"
    " END;",
    NULL,
};

static const char *const m12[] = {
    /* 12: the fan-out (gateway/lifecycle lc_intake): one rendered body per intake in
     * outbox_bodies, and each trainer's row holding only what differs (payload: an object of
     * placeholder -> text, expanded by the lease; body_id names the body). The lease and
     * booking indexes become partial: a fresh row (pending, no booking) costs them nothing. */
    "CREATE TABLE outbox_bodies("
    " id INTEGER PRIMARY KEY,"
    " org_id INTEGER NOT NULL REFERENCES orgs(id),"
    " payload TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);",
    "ALTER TABLE outbox ADD COLUMN body_id INTEGER;", /* outbox_bodies(id); no foreign key:
                                                     * a check per fan-out row */
    "DROP INDEX outbox_lease;",
    "CREATE INDEX outbox_lease ON outbox(lease_expires_at) WHERE status = 'leased';",
    "DROP INDEX outbox_booking;",
    "CREATE INDEX outbox_booking ON outbox(booking_id) WHERE booking_id IS NOT NULL;",
    NULL,
};

static const char *const m13[] = {
    /* 13: delivery order (store_outbox_priority: 0 urgent, 1 bulk) and the queue index the
     * lease reads by class, priority and organisation, in due order (store_outbox.c) */
    "ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;",
    "UPDATE outbox SET priority = 1"
    " WHERE kind IN ('new_request', 'unmatched_request', 'survey');",
    "CREATE INDEX outbox_queue ON outbox(provider_class, priority, org_id, next_attempt_at)"
    " WHERE status = 'pending';",
    NULL,
};

/* 14: email rows carry the message as it will be sent, rendered at enqueue (RFC 5322 bytes,
 * smtp_mime_build), in a table of its own: written once, read by the lease, deleted once the
 * row is sent (the outbox row, rewritten at every change of state, stays small); rcpt is the
 * envelope recipient. A fan-out's body carries the message of a recipient made of marks, and
 * each of its rows the fills (smtp/smtp.h). The send path reads no JSON. */
#define M14_COMMON                                                                           \
	"ALTER TABLE outbox ADD COLUMN rcpt TEXT;",                                          \
	    "ALTER TABLE outbox_bodies ADD COLUMN message TEXT;"
static const char *const m14[] = {
    "CREATE TABLE outbox_messages(outbox_id INTEGER PRIMARY KEY, message TEXT NOT NULL);",
    M14_COMMON,
    NULL,
};
static const char *const pg_m14[] = {
    "CREATE TABLE outbox_messages(outbox_id BIGINT PRIMARY KEY, message TEXT NOT NULL);",
    M14_COMMON,
    NULL,
};

/* 15: the redaction pass's index holds finished email rows only (it had every row without a
 * payload_state, keyed by status): a row's lease and its finish no longer rewrite it, one
 * b-tree change per row instead of five (store_outbox_redact names the same terms). ORs, not
 * IN: SQLite evaluates an IN list of a partial index's WHERE through an ephemeral table, built
 * anew at every UPDATE of a row. */
static const char *const m15[] = {
    "DROP INDEX outbox_unredacted;",
    "CREATE INDEX outbox_unredacted ON outbox(id) WHERE payload_state IS NULL"
    " AND provider_class = 'email' AND (status = 'sent' OR status = 'expired'"
    " OR status = 'skipped' OR status = 'dead');",
    NULL,
};

#define M16_FANOUTS(ID)                                                                     \
	"CREATE TABLE outbox_fanouts("                                                      \
	" request_id " ID " PRIMARY KEY,"                                                   \
	" org_id " ID " NOT NULL REFERENCES orgs(id),"                                      \
	" body_id " ID ","                                                                  \
	" token TEXT NOT NULL,"                                                             \
	" templated " ID " NOT NULL,"                                                       \
	" after_id " ID " NOT NULL,"                                                        \
	" last_id " ID " NOT NULL,"                                                         \
	" created_at " ID " NOT NULL);"

static const char *const m16[] = {
    /* 16: the rest of a large fan-out (lc_fanout.c): the intake enqueues the new_request
     * rows of the first trainers itself and leaves here where it stopped (after_id) and the
     * last trainer it matched (last_id); the background step enqueues the others in chunks,
     * each its own transaction, and drops the row when done or when the request is no longer
     * new. token: the intake's placeholder token, body_id its shared body (NULL until a
     * trainer with a name was read), templated whether the body has a message template. */
    M16_FANOUTS("INTEGER"),
    NULL,
};

static const char *const pg_m16[] = {
    M16_FANOUTS("BIGINT"),
    NULL,
};

static const char *const m17[] = {
    /* 17: the fan-out rows of each shared body, so that the retention pass drops a body once
     * every row of it is pruned (store_outbox_redact); partial: other rows cost it nothing */
    "CREATE INDEX outbox_body ON outbox(body_id) WHERE body_id IS NOT NULL;",
    NULL,
};

static const char *const m18[] = {
    /* 18: the due and organisation indexes stop moving with every change of state. outbox_due
     * held every row by (status, next_attempt_at) and outbox_org by (org_id, status, id), so a
     * lease and its finish each moved a row in both (four b-tree changes each); now outbox_due
     * holds pending rows only (the lease drops the entry, the finish touches nothing), and
     * outbox_org holds (org_id, id), written once: a store-alone cycle costs about a fifth
     * less (bench/smtp_throughput.sh). The one reader of a status within an organisation,
     * the rows held for a revoked calendar, has a partial index of its own. */
    "DROP INDEX outbox_due;",
    "CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE status = 'pending';",
    "DROP INDEX outbox_org;",
    "CREATE INDEX outbox_org ON outbox(org_id, id);",
    "CREATE INDEX outbox_held ON outbox(org_id) WHERE status = 'held';",
    NULL,
};

/* 19: the lease reads an organisation's queue in (next_attempt_at, id) order from where its last
 * row was (LEASE_ORG_ROWS_SQL); with id in the queue index PostgreSQL seeks that place, where
 * without it (its b-tree has no rowid) it read and sorted every due row of the organisation at
 * every lease: 0.7 ms a lease at 4,000 queued rows, growing with the backlog. SQLite's index
 * held the rowid already. On PostgreSQL a message is compressed with lz4 rather than pglz
 * when TOAST compresses it (several times less CPU to write and to read; new values only). */
#define M19_QUEUE                                                                                \
	"DROP INDEX outbox_queue;",                                                              \
	    "CREATE INDEX outbox_queue ON outbox(provider_class, priority, org_id, next_attempt_at," \
	    " id) WHERE status = 'pending';"
static const char *const m19[] = {M19_QUEUE, NULL};
static const char *const pg_m19[] = {
    M19_QUEUE,
    "ALTER TABLE outbox_messages ALTER COLUMN message SET COMPRESSION lz4;",
    "ALTER TABLE outbox_bodies ALTER COLUMN message SET COMPRESSION lz4;",
    NULL,
};

/* 20: the dead rows of each organisation, newest first: what an administrator lists to retry
 * (GET .../outbox?status=dead, store_outbox_list). Along outbox_org that list read every row
 * the organisation ever sent to find its few dead ones; partial, it costs a row nothing until
 * it goes dead, and a retry takes it out. */
static const char *const m20[] = {
    "CREATE INDEX outbox_dead ON outbox(org_id, id) WHERE status = 'dead';",
    NULL,
};

static const char *const *const migrations[] = {m1,  m2,  m3,  m4,  m5,  m6,  m7,
                                                 m8,  m9,  m10, m11, m12, m13, m14,
                                                 m15, m16, m17, m18, m19, m20};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must count the migrations");

/* PostgreSQL's: the schema at version 13 in one step (store_pg_schema.c), recorded as versions
 * 1 to 13; each later migration has a step in both lists (one text where both engines take
 * it). */
static const char *const pg_none[] = {NULL};
static const char *const *const pg_migrations[] = {
    pg_none, pg_none, pg_none, pg_none, pg_none, pg_none, pg_none, pg_none, pg_none, pg_none,
    pg_none, pg_none, store_pg_schema, pg_m14, m15, pg_m16, m17, m18, pg_m19, m20};
_Static_assert(sizeof(pg_migrations) / sizeof(pg_migrations[0]) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must count PostgreSQL's migrations too");
_Static_assert(STORE_PG_SCHEMA_VERSION <= STORE_SCHEMA_VERSION,
               "store_pg_schema.c builds a schema newer than the migrations");

/* store_rc - map a backend result (enum db_rc) */
gw_rc store_rc(int src)
{
	switch(src) {
	case DB_OK:
	case DB_DONE:
	case DB_ROW:
		return GW_OK;
	case DB_BUSY:
		return GW_EBUSY;
	case DB_NOMEM:
		return GW_ENOMEM;
	case DB_CONSTRAINT:
		return GW_EEXISTS;
	case DB_SLOT:
		return GW_ESLOT;
	case DB_IOERR:
	case DB_FULL:
		return GW_EIO;
	case DB_DOWN:
		return GW_EUNAVAIL;
	default:
		return GW_EDB;
	}
}

/* store_stmt - cached prepared statement */
struct db_stmt *store_stmt(struct store *st, const char *sql)
{
	struct db_stmt *s = NULL;
	int i;

	for(i = 0; i < st->ncache; i++) {
		if(st->cache[i].sql == sql) {
			s = st->cache[i].stmt;
			db_reset(s);
			db_clear(s);
			return s;
		}
	}
	/* the cache is sized for every statement the store has; overflowing it is a bug */
	if(st->ncache >= STORE_STMT_CACHE)
		return NULL;
	s = st->ops->prepare(st->db, sql);
	if(!s)
		return NULL;
	st->cache[st->ncache].sql = sql;
	st->cache[st->ncache].stmt = s;
	st->ncache++;
	return s;
}

/* store_stmt_d - the text of this backend's dialect */
struct db_stmt *store_stmt_d(struct store *st, const struct db_sql *q)
{
	return store_stmt(st, q->sql[st->ops->dialect]);
}

/* store_collect - every row of a statement into an array */
gw_rc store_collect(struct db_stmt *s, store_row_fn row, json_t **out)
{
	json_t *list = json_array();
	int r;

	*out = NULL;
	if(!list) {
		db_reset(s);
		return GW_ENOMEM;
	}
	while((r = db_step(s)) == DB_ROW) {
		if(json_array_append_new(list, row(s))) {
			r = DB_NOMEM;
			break;
		}
	}
	db_reset(s);
	if(r != DB_DONE) {
		json_decref(list);
		return store_rc(r) ? store_rc(r) : GW_EDB;
	}
	*out = list;
	return GW_OK;
}

/* store_write_rc - result of a write step */
gw_rc store_write_rc(struct store *st, int r)
{
	(void)st;
	if(r == DB_DONE || r == DB_ROW)
		return GW_OK;
	return store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_step_done - a write statement run to its end */
gw_rc store_step_done(struct store *st, struct db_stmt *s)
{
	int r = db_step(s);

	db_reset(s);
	return r == DB_DONE ? GW_OK : store_write_rc(st, r);
}

/* store_cond_update - a conditional UPDATE and, when it missed, why */
gw_rc store_cond_update(struct store *st, struct db_stmt *s, struct db_stmt *e, gw_rc miss_rc)
{
	int r = db_step(s);

	db_reset(s);
	if(r != DB_DONE) {
		db_reset(e);
		return store_write_rc(st, r);
	}
	if(db_changes(st) == 1) {
		db_reset(e);
		return GW_OK;
	}
	r = db_step(e);
	db_reset(e);
	if(r == DB_ROW)
		return miss_rc;
	return r == DB_DONE ? GW_ENOTFOUND : store_write_rc(st, r);
}

/* store_one - the one row of a statement */
gw_rc store_one(struct db_stmt *s, store_row_fn row, json_t **out)
{
	int r = db_step(s);

	*out = r == DB_ROW ? row(s) : NULL;
	db_reset(s);
	if(r == DB_DONE)
		return GW_ENOTFOUND;
	if(r != DB_ROW)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	return *out ? GW_OK : GW_ENOMEM;
}

/* store_col_json - JSON text column */
json_t *store_col_json(struct db_stmt *s, int i)
{
	const char *txt = db_col_text(s, i);
	json_t *v = txt ? json_loads(txt, JSON_DECODE_ANY, NULL) : NULL;

	return v ? v : json_null();
}

/* store_col_time - epoch column as RFC 3339 */
json_t *store_col_time(struct db_stmt *s, int i)
{
	char buf[TIMEFMT_LEN];

	if(db_col_type(s, i) == DB_NULL)
		return json_null();
	timefmt_rfc3339((time_t)db_col_int64(s, i), buf);
	return json_string(buf);
}

/* store_col_text - text column */
json_t *store_col_text(struct db_stmt *s, int i)
{
	const char *txt = db_col_text(s, i);

	return txt ? json_string(txt) : json_null();
}

/* store_bind_json - bind JSON as text */
int store_bind_json(struct db_stmt *s, int i, const json_t *v)
{
	char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	int r;

	if(!txt)
		return DB_NOMEM;
	r = db_bind_text(s, i, txt, -1);
	free(txt);
	return r;
}

/* store_bind_text - text or NULL */
int store_bind_text(struct db_stmt *s, int i, const char *v)
{
	return v ? db_bind_text(s, i, v, -1) : db_bind_null(s, i, DB_TEXT);
}

/* store_bind_id - id or NULL */
int store_bind_id(struct db_stmt *s, int i, int64_t v)
{
	return v > 0 ? db_bind_int64(s, i, v) : db_bind_null(s, i, DB_INTEGER);
}

/* exec - run SQL text without results */
static gw_rc exec(struct store *st, const char *sql, struct gw_err *err)
{
	int r = st->ops->exec(st->db, sql);

	if(r != DB_OK) {
		gw_err_set(err, store_rc(r) ? store_rc(r) : GW_EDB, "", "database error");
		gw_err_cause(err, "%s: %s", st->ops->name, db_errmsg(st));
		return store_rc(r) ? store_rc(r) : GW_EDB;
	}
	return GW_OK;
}

/* store_schema_version - recorded schema version */
gw_rc store_schema_version(struct store *st, int *version)
{
	struct db_stmt *s = store_stmt(st, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	int r;

	if(!s)
		return GW_EDB;
	r = db_step(s);
	if(r != DB_ROW) {
		db_reset(s);
		return store_rc(r) ? store_rc(r) : GW_EDB;
	}
	*version = db_col_int(s, 0);
	db_reset(s);
	return GW_OK;
}

/* migrate - bring the schema up to STORE_SCHEMA_VERSION */
static gw_rc migrate(struct store *st, struct gw_err *err)
{
	const char *const *const *steps =
	        st->ops->dialect == DB_POSTGRES ? pg_migrations : migrations;
	gw_rc rc = GW_OK;
	int have = 0, v, i, r;
	struct db_stmt *s;

	rc = exec(st, "CREATE TABLE IF NOT EXISTS schema_migrations(version BIGINT PRIMARY KEY,"
	              " applied_at BIGINT NOT NULL)",
	          err);
	if(rc)
		return rc;
	rc = store_schema_version(st, &have);
	if(rc)
		return gw_err_set(err, rc, "", "cannot read the schema version");
	if(have > STORE_SCHEMA_VERSION)
		return gw_err_set(err, GW_EVERSION, "",
		                  "the database has schema version %d, newer than this binary's %d: "
		                  "run a newer ordinatus",
		                  have, STORE_SCHEMA_VERSION);
	for(v = have + 1; v <= STORE_SCHEMA_VERSION; v++) {
		r = st->ops->begin(st->db);
		if(r != DB_OK)
			return gw_err_set(err, store_rc(r) ? store_rc(r) : GW_EDB, "",
			                  "cannot start migration %d: %s", v, db_errmsg(st));
		/* a second process migrating at the same time waits on the lock, then finds the
		 * step done */
		rc = store_schema_version(st, &have);
		if(rc)
			goto fail;
		if(have >= v) {
			st->ops->rollback(st->db);
			continue;
		}
		for(i = 0; steps[v - 1][i]; i++) {
			rc = exec(st, steps[v - 1][i], err);
			if(rc)
				goto fail;
		}
		s = store_stmt(st, "INSERT INTO schema_migrations(version, applied_at)"
		                   " VALUES(?1, ?2)");
		if(!s) {
			rc = GW_EDB;
			goto fail;
		}
		db_bind_int64(s, 1, v);
		db_bind_int64(s, 2, clock_now());
		r = db_step(s);
		db_reset(s);
		if(r != DB_DONE) {
			rc = store_rc(r) ? store_rc(r) : GW_EDB;
			goto fail;
		}
		r = st->ops->commit(st->db);
		if(r != DB_OK) {
			rc = store_rc(r) ? store_rc(r) : GW_EDB;
			goto fail;
		}
	}
	return GW_OK;
fail:
	st->ops->rollback(st->db);
	return rc;
}

/* store_open - open a connection and migrate */
gw_rc store_open(const char *path, bool create, struct store **out, struct gw_err *err)
{
	struct store *st = NULL;
	gw_rc rc = GW_OK;
	char msg[512] = "";

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if(!st)
		return GW_ENOMEM;
	st->ops = db_backend(path);
	st->db = st->ops->open(path, create, msg, sizeof(msg));
	if(!st->db) {
		rc = gw_err_set(err, st->ops->dialect == DB_POSTGRES ? GW_EUNAVAIL : GW_EIO, "", "%s",
		                msg);
		goto out;
	}
	rc = migrate(st, err);
	if(rc)
		goto out;
	*out = st;
	st = NULL;
out:
	store_close(st);
	return rc;
}

/* store_close - close a connection */
void store_close(struct store *st)
{
	int i;

	if(!st)
		return;
	for(i = 0; i < st->ncache; i++)
		st->ops->finalize(st->cache[i].stmt);
	if(st->db)
		st->ops->close(st->db);
	free(st);
}

/* store_begin - a write transaction (SQLite: BEGIN IMMEDIATE) */
gw_rc store_begin(struct store *st)
{
	int r = st->ops->begin(st->db);

	return r == DB_OK ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* the channel of store_outbox_announce */
#define STORE_OUTBOX_CHANNEL "ordinatus_outbox"

/* store_outbox_announce - NOTIFY, delivered at the commit */
void store_outbox_announce(struct store *st)
{
	st->enqueued = false;
	if(st->ops->notify)
		(void)st->ops->notify(st->db, STORE_OUTBOX_CHANNEL);
}

/* store_listen - LISTEN on this connection */
gw_rc store_listen(struct store *st)
{
	int r;

	if(!st->ops->listen)
		return GW_EINVAL;
	r = st->ops->listen(st->db, STORE_OUTBOX_CHANNEL);
	return r == DB_OK ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_wait_enqueued - news of store_outbox_announce, up to ms */
gw_rc store_wait_enqueued(struct store *st, int ms, bool *got)
{
	int r;

	*got = false;
	if(!st->ops->wait)
		return GW_EINVAL;
	r = st->ops->wait(st->db, ms, got);
	return r == DB_OK ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_unavailable - the backend's down() */
bool store_unavailable(struct store *st)
{
	return st->ops->down && st->ops->down(st->db);
}

/* the scheduler's lock key */
#define STORE_TICK_LOCK 0x4f72645469LL /* "OrdTi" */

/* store_tick_lock - the scheduler's lock across processes */
gw_rc store_tick_lock(struct store *st, bool wait, bool *held)
{
	int r;

	*held = true;
	if(!st->ops->lock)
		return GW_OK; /* one process per database: the tick is its scheduler's alone */
	r = st->ops->lock(st->db, STORE_TICK_LOCK, wait, held);
	if(r != DB_OK)
		*held = false;
	return r == DB_OK ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_tick_unlock - let the next tick in */
void store_tick_unlock(struct store *st)
{
	if(st->ops->unlock)
		st->ops->unlock(st->db, STORE_TICK_LOCK);
}

/* store_commit - COMMIT (with the announcement of new outbox rows); a failed commit rolls back */
gw_rc store_commit(struct store *st)
{
	int r;

	if(st->enqueued)
		store_outbox_announce(st);
	r = st->ops->commit(st->db);

	if(r != DB_OK) {
		store_rollback(st);
		return store_rc(r) ? store_rc(r) : GW_EDB;
	}
	return GW_OK;
}

/* store_rollback - ROLLBACK if a transaction is open */
void store_rollback(struct store *st)
{
	st->enqueued = false;
	st->ops->rollback(st->db);
}

/* store_errmsg - last error text of the connection */
const char *store_errmsg(struct store *st)
{
	return db_errmsg(st);
}
