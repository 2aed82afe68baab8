/*
 * store_core.c - connection, pragmas, migrations, transactions, the statement cache.
 *
 * Entry points: store_open(), store_close(), store_schema_version(), store_begin(),
 * store_commit(), store_rollback(), store_errmsg(), and the internal helpers of store_int.h.
 * Threading: a struct store belongs to one thread at a time.
 */
#include "store_int.h"

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

static const char *const *const migrations[] = {m1, m2, m3, m4, m5, m6, m7, m8, m9,
                                                 m10, m11};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must count the migrations");

/* store_rc - map a SQLite result code */
gw_rc store_rc(int src)
{
	switch(src & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return GW_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return GW_EBUSY;
	case SQLITE_NOMEM:
		return GW_ENOMEM;
	case SQLITE_CONSTRAINT:
		return GW_EEXISTS;
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
		return GW_EIO;
	default:
		return GW_EDB;
	}
}

/* store_stmt - cached prepared statement */
sqlite3_stmt *store_stmt(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int i;

	for(i = 0; i < st->ncache; i++) {
		if(st->cache[i].sql == sql) {
			s = st->cache[i].stmt;
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			return s;
		}
	}
	if(sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
		return NULL;
	if(st->ncache < STORE_STMT_CACHE) {
		st->cache[st->ncache].sql = sql;
		st->cache[st->ncache].stmt = s;
		st->ncache++;
	} else {
		/* the cache is sized for every statement the store has; overflowing it is a bug */
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

/* store_collect - every row of a statement into an array */
gw_rc store_collect(sqlite3_stmt *s, store_row_fn row, json_t **out)
{
	json_t *list = json_array();
	int r;

	*out = NULL;
	if(!list) {
		sqlite3_reset(s);
		return GW_ENOMEM;
	}
	while((r = sqlite3_step(s)) == SQLITE_ROW) {
		if(json_array_append_new(list, row(s))) {
			r = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(s);
	if(r != SQLITE_DONE) {
		json_decref(list);
		return r == SQLITE_NOMEM ? GW_ENOMEM : GW_EDB;
	}
	*out = list;
	return GW_OK;
}

/* store_write_rc - result of a write step */
gw_rc store_write_rc(struct store *st, int r)
{
	if(r == SQLITE_DONE || r == SQLITE_ROW)
		return GW_OK;
	if((r & 0xff) == SQLITE_CONSTRAINT && strstr(sqlite3_errmsg(st->db), "slot_taken"))
		return GW_ESLOT;
	return store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_cond_update - a conditional UPDATE and, when it missed, why */
gw_rc store_cond_update(struct store *st, sqlite3_stmt *s, sqlite3_stmt *e, gw_rc miss_rc)
{
	int r = sqlite3_step(s);

	sqlite3_reset(s);
	if(r != SQLITE_DONE) {
		sqlite3_reset(e);
		return store_write_rc(st, r);
	}
	if(sqlite3_changes(st->db) == 1) {
		sqlite3_reset(e);
		return GW_OK;
	}
	r = sqlite3_step(e);
	sqlite3_reset(e);
	if(r == SQLITE_ROW)
		return miss_rc;
	return r == SQLITE_DONE ? GW_ENOTFOUND : GW_EDB;
}

/* store_one - the one row of a statement */
gw_rc store_one(sqlite3_stmt *s, store_row_fn row, json_t **out)
{
	int r = sqlite3_step(s);

	*out = r == SQLITE_ROW ? row(s) : NULL;
	sqlite3_reset(s);
	if(r == SQLITE_DONE)
		return GW_ENOTFOUND;
	if(r != SQLITE_ROW)
		return GW_EDB;
	return *out ? GW_OK : GW_ENOMEM;
}

/* store_col_json - JSON text column */
json_t *store_col_json(sqlite3_stmt *s, int i)
{
	const char *txt = (const char *)sqlite3_column_text(s, i);
	json_t *v = txt ? json_loads(txt, JSON_DECODE_ANY, NULL) : NULL;

	return v ? v : json_null();
}

/* store_col_time - epoch column as RFC 3339 */
json_t *store_col_time(sqlite3_stmt *s, int i)
{
	char buf[TIMEFMT_LEN];

	if(sqlite3_column_type(s, i) == SQLITE_NULL)
		return json_null();
	timefmt_rfc3339((time_t)sqlite3_column_int64(s, i), buf);
	return json_string(buf);
}

/* store_col_text - text column */
json_t *store_col_text(sqlite3_stmt *s, int i)
{
	const char *txt = (const char *)sqlite3_column_text(s, i);

	return txt ? json_string(txt) : json_null();
}

/* store_bind_json - bind JSON as text */
int store_bind_json(sqlite3_stmt *s, int i, const json_t *v)
{
	char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	int r;

	if(!txt)
		return SQLITE_NOMEM;
	r = sqlite3_bind_text(s, i, txt, -1, free);
	return r;
}

/* store_bind_text - text or NULL */
int store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

/* store_bind_id - id or NULL */
int store_bind_id(sqlite3_stmt *s, int i, int64_t v)
{
	return v > 0 ? sqlite3_bind_int64(s, i, v) : sqlite3_bind_null(s, i);
}

/* exec - run SQL text without results */
static gw_rc exec(struct store *st, const char *sql, struct gw_err *err)
{
	char *msg = NULL;
	int r = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

	if(r != SQLITE_OK) {
		gw_err_set(err, store_rc(r), "", "database error");
		gw_err_cause(err, "sqlite %d: %s", sqlite3_extended_errcode(st->db),
		             msg ? msg : "?");
		sqlite3_free(msg);
		return store_rc(r) ? store_rc(r) : GW_EDB;
	}
	return GW_OK;
}

/* store_schema_version - recorded schema version */
gw_rc store_schema_version(struct store *st, int *version)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT ifnull(max(version), 0) FROM schema_migrations");

	if(!s)
		return GW_EDB;
	if(sqlite3_step(s) != SQLITE_ROW)
		return GW_EDB;
	*version = sqlite3_column_int(s, 0);
	sqlite3_reset(s);
	return GW_OK;
}

/* migrate - bring the schema up to STORE_SCHEMA_VERSION */
static gw_rc migrate(struct store *st, struct gw_err *err)
{
	gw_rc rc = GW_OK;
	int have = 0, v, i;
	sqlite3_stmt *s;

	rc = exec(st, "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY,"
	              " applied_at INTEGER NOT NULL)",
	          err);
	if(rc)
		return rc;
	rc = store_schema_version(st, &have);
	if(rc)
		return gw_err_set(err, rc, "", "cannot read the schema version");
	if(have > (int)GW_ARRAY_LEN(migrations))
		return gw_err_set(err, GW_EVERSION, "",
		                  "the database has schema version %d, newer than this binary's %d: "
		                  "run a newer ordinatus",
		                  have, (int)GW_ARRAY_LEN(migrations));
	for(v = have + 1; v <= (int)GW_ARRAY_LEN(migrations); v++) {
		rc = exec(st, "BEGIN IMMEDIATE", err);
		if(rc)
			return rc;
		for(i = 0; migrations[v - 1][i]; i++) {
			rc = exec(st, migrations[v - 1][i], err);
			if(rc)
				goto fail;
		}
		s = store_stmt(st, "INSERT INTO schema_migrations(version, applied_at)"
		                   " VALUES(?1, ?2)");
		if(!s) {
			rc = GW_EDB;
			goto fail;
		}
		sqlite3_bind_int(s, 1, v);
		sqlite3_bind_int64(s, 2, clock_now());
		if(sqlite3_step(s) != SQLITE_DONE) {
			rc = GW_EDB;
			goto fail;
		}
		rc = exec(st, "COMMIT", err);
		if(rc)
			goto fail;
	}
	return GW_OK;
fail:
	exec(st, "ROLLBACK", NULL);
	return rc;
}

/* store_global_init - process-wide SQLite settings */
void store_global_init(void)
{
	/* each connection belongs to one thread at a time (store.h): no serialising mutexes, and
	 * no global allocation statistics, whose mutex every malloc of every thread would take */
	sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_initialize();
}

/* store_open - open a connection and migrate */
/* private_files - the database and its -wal and -shm files readable by the owner only. SQLite
 * creates the -wal and -shm with the database file's mode (os_unix.c findCreateFileMode), and
 * the database with 0644 less the umask: files made by an older release, or under a wider
 * umask, are narrowed here on every open. A file that is not there is not an error. */
static void private_files(const char *path)
{
	static const char *const ext[] = {"", "-wal", "-shm"};
	char p[4096];
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(ext); i++) {
		if((size_t)snprintf(p, sizeof(p), "%s%s", path, ext[i]) >= sizeof(p))
			return;
		(void)chmod(p, 0600);
	}
}

/* WAL sizes, in pages, at which a commit checkpoints (docs/design.md "Threads"). SQLite's own
 * automatic checkpoint (PASSIVE, from 1000 pages) copies the log back but rewinds it only when
 * no reader is using it, which under steady traffic never happens: the soak (bench/soak.sh)
 * grew the -wal to 944 MB in 8 minutes while every read slowed down (sqlite.org/wal.html,
 * "Checkpoint starvation"). Past STORE_WAL_RESTART_PAGES a commit asks for a RESTART
 * checkpoint instead: it waits (the busy timeout) for the readers of old snapshots, which are
 * short here, so that the next writer starts the log from its beginning again. */
#define STORE_WAL_PASSIVE_PAGES 1000
#define STORE_WAL_RESTART_PAGES 8000 /* about 32 MB with 4 KiB pages */

/* wal_hook - sqlite3_wal_hook: after a commit (its write lock released), checkpoint as above.
 * A checkpoint that cannot finish now (busy) is left to a later commit. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)arg;
	if(pages >= STORE_WAL_RESTART_PAGES)
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	else if(pages >= STORE_WAL_PASSIVE_PAGES)
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

gw_rc store_open(const char *path, bool create, struct store **out, struct gw_err *err)
{
	struct store *st = NULL;
	gw_rc rc = GW_OK;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int r;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if(!st)
		return GW_ENOMEM;
	r = sqlite3_open_v2(path, &st->db, flags, NULL);
	private_files(path);
	if(r != SQLITE_OK) {
		rc = gw_err_set(err, GW_EIO, "", "cannot open the database %s: %s", path,
		                st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, 10000);
	sqlite3_wal_hook(st->db, wal_hook, NULL); /* replaces the automatic checkpoint */
	rc = exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	              " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
	          err);
	if(rc)
		goto out;
	rc = migrate(st, err);
	if(rc)
		goto out;
	private_files(path); /* the -wal and -shm exist now */
	*out = st;
	st = NULL;
out:
	store_close(st);
	return rc;
}

/* store_backup - sqlite3_backup_init/step/finish (sqlite.org/backup.html) */
gw_rc store_backup(const char *path, const char *to, int *pages, struct gw_err *err)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b = NULL;
	sqlite3_stmt *q = NULL;
	gw_rc rc = GW_OK;
	int fd, r, tries = 0;
	bool made = false;

	*pages = 0;
	/* claim the name first: an existing file (or a link) is never written through */
	fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if(fd < 0)
		return gw_err_set(err, GW_EINVAL, "to", "cannot create %s: %s%s", to, strerror(errno),
		                  errno == EEXIST ? " (a backup never overwrites a file)" : "");
	made = true;
	close(fd);
	r = sqlite3_open_v2(path, &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if(r != SQLITE_OK) {
		rc = gw_err_set(err, GW_EIO, "", "cannot open the database %s: %s", path,
		                src ? sqlite3_errmsg(src) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(src, 10000);
	r = sqlite3_open_v2(to, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if(r != SQLITE_OK) {
		rc = gw_err_set(err, GW_EIO, "", "cannot open %s: %s", to,
		                dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	b = sqlite3_backup_init(dst, "main", src, "main");
	if(!b) {
		rc = gw_err_set(err, GW_EIO, "", "cannot start the backup: %s", sqlite3_errmsg(dst));
		goto out;
	}
	/* every page in one step: one read transaction, so one consistent snapshot. A writer
	 * holding the lock makes it SQLITE_BUSY: wait and go on (at most about 30 s). */
	for(;;) {
		r = sqlite3_backup_step(b, -1);
		if(r == SQLITE_DONE)
			break;
		if((r == SQLITE_BUSY || r == SQLITE_LOCKED) && ++tries < 600) {
			sqlite3_sleep(50);
			continue;
		}
		rc = gw_err_set(err, GW_EIO, "", "the backup failed: %s", sqlite3_errstr(r));
		goto out;
	}
	*pages = sqlite3_backup_pagecount(b);
	r = sqlite3_backup_finish(b);
	b = NULL;
	if(r != SQLITE_OK) {
		rc = gw_err_set(err, GW_EIO, "", "the backup failed: %s", sqlite3_errstr(r));
		goto out;
	}
	r = sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &q, NULL);
	if(r != SQLITE_OK || sqlite3_step(q) != SQLITE_ROW ||
	   strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0) {
		rc = gw_err_set(err, GW_EIO, "", "the copy does not pass quick_check");
		goto out;
	}
out:
	sqlite3_finalize(q);
	if(b)
		sqlite3_backup_finish(b);
	sqlite3_close(dst);
	sqlite3_close(src);
	if(made) {
		private_files(to);
		if(rc) {
			char p[4096];

			unlink(to);
			if((size_t)snprintf(p, sizeof(p), "%s-wal", to) < sizeof(p))
				unlink(p);
			if((size_t)snprintf(p, sizeof(p), "%s-shm", to) < sizeof(p))
				unlink(p);
		}
	}
	return rc;
}

/* store_close - close a connection */
void store_close(struct store *st)
{
	int i;

	if(!st)
		return;
	for(i = 0; i < st->ncache; i++)
		sqlite3_finalize(st->cache[i].stmt);
	sqlite3_close(st->db);
	free(st);
}

/* store_begin - BEGIN IMMEDIATE */
gw_rc store_begin(struct store *st)
{
	sqlite3_stmt *s = store_stmt(st, "BEGIN IMMEDIATE");
	int r;

	if(!s)
		return GW_EDB;
	r = sqlite3_step(s);
	sqlite3_reset(s);
	return r == SQLITE_DONE ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_commit - COMMIT */
gw_rc store_commit(struct store *st)
{
	sqlite3_stmt *s = store_stmt(st, "COMMIT");
	int r;

	if(!s)
		return GW_EDB;
	r = sqlite3_step(s);
	sqlite3_reset(s);
	if(r != SQLITE_DONE) {
		store_rollback(st);
		return store_rc(r) ? store_rc(r) : GW_EDB;
	}
	return GW_OK;
}

/* store_rollback - ROLLBACK if a transaction is open */
void store_rollback(struct store *st)
{
	sqlite3_stmt *s;

	if(sqlite3_get_autocommit(st->db))
		return;
	s = store_stmt(st, "ROLLBACK");
	if(s) {
		sqlite3_step(s);
		sqlite3_reset(s);
	}
}

/* store_errmsg - last SQLite error text */
const char *store_errmsg(struct store *st)
{
	return sqlite3_errmsg(st->db);
}
