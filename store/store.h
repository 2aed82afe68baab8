/*
 * store.h - the SQLite store: schema, migrations and every query (docs/design.md rule 4: all SQL
 * lives in store/). Prepared statements only; user text is always bound, never spliced.
 *
 * One struct store is one SQLite connection (WAL mode). It belongs to one thread at a time:
 * each HTTP thread, dispatch worker and the scheduler open their own. Writers use
 * store_begin() (BEGIN IMMEDIATE); SQLite serialises them; busy waits are bounded.
 *
 * Reads return JSON objects (jansson, new references: caller decrefs) shaped as the API shows
 * them, so the HTTP layer does not need to know columns.
 */
#ifndef STORE_H
#define STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/gw.h"

struct store; /* opaque */

#define STORE_SCHEMA_VERSION 20

/* roles, stored as a bit set */
enum {
	ROLE_PLATFORM_ADMIN = 1,
	ROLE_ORG_ADMIN = 2,
	ROLE_TRAINER = 4,
	ROLE_KIOSK = 8,
};

/* store_global_init - process-wide SQLite settings; call once before any store_open and before
 * threads start. Connections are never shared between threads, so SQLite's own mutexes and
 * its global memory statistics (one lock per allocation) are turned off. */
void store_global_init(void);

/* store_sqlite_coalesce_wal - whether SQLite databases opened from now on write a commit's WAL
 * frames in one call (the default, store_wal.c) or each frame in two, as SQLite does itself
 * (bench/smtp_bench's baseline). */
void store_sqlite_coalesce_wal(bool on);

/* store_backup - a consistent copy of the database at path into to (which must not exist: it
 * is created 0600 with O_EXCL, never overwritten), with SQLite's online backup API, while
 * gateways read and write it: the copy is one read transaction's snapshot (WAL: writers go on
 * meanwhile). The copy is checked (PRAGMA quick_check). *pages: pages copied. A failed copy is
 * removed. The key file is not part of it: restoring needs the same DATA/master.key. */
gw_rc store_backup(const char *path, const char *to, int *pages, struct gw_err *err);

/* store_open - open (creating if asked) the database at path and apply pragmas. The schema is
 * migrated to STORE_SCHEMA_VERSION; a database newer than this binary is GW_EVERSION.
 * *out: caller destroys with store_close(). */
gw_rc store_open(const char *path, bool create, struct store **out, struct gw_err *err);

/* store_close - close; accepts NULL. */
void store_close(struct store *st);

/* store_schema_version - the version recorded in the database. */
gw_rc store_schema_version(struct store *st, int *version);

/* Transactions: store_begin is BEGIN IMMEDIATE (the write lock is taken now, so the checks made
 * inside the transaction hold until commit). store_rollback accepts "no transaction". */
gw_rc store_begin(struct store *st);
gw_rc store_commit(struct store *st);
void store_rollback(struct store *st);

/* Several gateways on one database (PostgreSQL):
 * store_tick_lock - the scheduler's lock, one tick at a time across every gateway (an advisory
 * lock, released by store_tick_unlock or when the connection ends); wait: block until free,
 * else *held says whether it was taken. With SQLite (one process) it is always held.
 * store_listen - this connection is told of outbox rows any gateway commits
 * (store_wait_enqueued: up to ms, *got). GW_EINVAL where the engine has one process only
 * (SQLite: its own enqueues wake its workers). */
gw_rc store_tick_lock(struct store *st, bool wait, bool *held);
void store_tick_unlock(struct store *st);
gw_rc store_listen(struct store *st);
gw_rc store_wait_enqueued(struct store *st, int ms, bool *got);

/* store_unavailable - this connection's database cannot be reached now (a PostgreSQL server
 * restarting or away); the next call tries again. Never true for SQLite. */
bool store_unavailable(struct store *st);

/* store_errmsg - the last SQLite error text of this connection (borrowed until next call). */
const char *store_errmsg(struct store *st);

/* ---- organisations ---- */
gw_rc store_org_create(struct store *st, const char *name, const char *tz, int64_t *id);
/* store_org_get - {id, name, timezone}; GW_ENOTFOUND when absent. */
gw_rc store_org_get(struct store *st, int64_t org, json_t **out);
/* store_org_settings - the stored settings object (only what was set; defaults are the
 * gateway's). *out new reference. */
gw_rc store_org_settings(struct store *st, int64_t org, json_t **out);
gw_rc store_org_settings_put(struct store *st, int64_t org, const json_t *settings);

/* ---- users ---- */
struct store_user {
	int64_t id;
	int64_t org_id; /* 0 for a platform admin */
	int roles;
	char email[256];
	char name[256];
	char timezone[65];
};

struct store_user_new {
	const char *email, *name, *timezone;
	int roles;
	const json_t *skills; /* array of strings */
	bool notify_on_confirm;
	const char *token_hash; /* hex SHA-256 of the API token */
};

/* store_user_create - GW_EEXISTS when the e-mail is taken in the organisation. org 0 makes a
 * platform admin. */
gw_rc store_user_create(struct store *st, int64_t org, const struct store_user_new *u,
                        int64_t *id);
/* store_user_by_token - the active user whose token hashes to token_hash; GW_EUNAUTH if none. */
gw_rc store_user_by_token(struct store *st, const char *token_hash, struct store_user *out);
/* store_user_get - user as the API shows it (no token); GW_ENOTFOUND. */
gw_rc store_user_get(struct store *st, int64_t org, int64_t id, json_t **out);
gw_rc store_user_list(struct store *st, int64_t org, json_t **out);
/* store_user_update - apply the fields present in patch (already validated: name, roles (int),
 * skills, timezone, notify_on_confirm, active); GW_ENOTFOUND. */
gw_rc store_user_update(struct store *st, int64_t org, int64_t id, const json_t *patch);
/* store_org_admins - active org admins of org. *out: array of {id, email, name, timezone}. */
gw_rc store_org_admins(struct store *st, int64_t org, json_t **out);
/* store_trainers_matching - active trainers of org whose skills hold every skill of skills.
 * *out: array of {id, email, name, timezone}. */
gw_rc store_trainers_matching(struct store *st, int64_t org, const json_t *skills,
                              json_t **out);
/* store_trainers_each - the trainers of store_trainers_matching with ids in (after, upto]
 * (upto 0: no upper bound), in id order, at most limit of them (0: no limit), handed to fn one
 * at a time as they are read (strings borrowed for the call; no JSON per trainer: an intake
 * matching 10,000 trainers). fn may write on st (not to users). A non-zero rc of fn stops and
 * is returned. *count: trainers handed over; *last: the id of the last one (after if none). */
typedef gw_rc (*store_trainer_fn)(void *arg, int64_t id, const char *email, const char *name);
gw_rc store_trainers_each(struct store *st, int64_t org, const json_t *skills, int64_t after,
                          int64_t upto, size_t limit, store_trainer_fn fn, void *arg,
                          size_t *count, int64_t *last);
/* store_trainers_count - how many trainers of store_trainers_matching have ids above after
 * (*count), and the largest of those ids (*max_id, 0 for none) */
gw_rc store_trainers_count(struct store *st, int64_t org, const json_t *skills, int64_t after,
                           size_t *count, int64_t *max_id);

/* ---- session types ---- */
struct store_session_type_new {
	const char *name, *currency;
	const json_t *skills, *lengths;
	int64_t price_cents;
	int step_minutes;
};
gw_rc store_session_type_create(struct store *st, int64_t org,
                                const struct store_session_type_new *s, int64_t *id);
/* store_session_type_get - {id, name, skills, lengths, price_cents, currency, step_minutes} */
gw_rc store_session_type_get(struct store *st, int64_t org, int64_t id, json_t **out);
gw_rc store_session_type_list(struct store *st, int64_t org, json_t **out);

/* ---- requests ---- */
struct store_request_new {
	const char *customer_name, *customer_email, *customer_phone;
	int64_t session_type_id; /* 0: none */
	const json_t *skills;    /* effective skills used for matching */
	const json_t *answers;   /* object */
};
gw_rc store_request_create(struct store *st, int64_t org, const struct store_request_new *r,
                           time_t now, int64_t *id);
/* store_request_get - the request as the API shows it; GW_ENOTFOUND. */
gw_rc store_request_get(struct store *st, int64_t org, int64_t id, json_t **out);
/* store_request_list - requests of org. status may be NULL (all). trainer > 0 limits the list
 * to unclaimed requests whose skills the trainer holds, and the trainer's own. */
gw_rc store_request_list(struct store *st, int64_t org, const char *status, int64_t trainer,
                         json_t **out);
/* store_request_claim - the one conditional UPDATE that decides a claim: status new -> claimed.
 * GW_OK when this trainer won; GW_ECLAIMED when the request is no longer new; GW_ENOTFOUND. */
gw_rc store_request_claim(struct store *st, int64_t org, int64_t id, int64_t trainer,
                          time_t now);
/* store_request_set_session_type - while claimed by trainer; GW_ESTATE otherwise. */
gw_rc store_request_set_session_type(struct store *st, int64_t org, int64_t id,
                                     int64_t trainer, int64_t session_type_id, time_t now);
/* store_request_cancel - status new|claimed|scheduling -> cancelled, with cancelled_at and the
 * reason (may be NULL), in one conditional UPDATE. GW_ESTATE in any other status;
 * GW_ENOTFOUND. */
gw_rc store_request_cancel(struct store *st, int64_t org, int64_t id, const char *reason,
                           time_t now);
/* store_trainer_matches - does the trainer (active, trainer role) hold every skill of the
 * request? */
gw_rc store_trainer_matches(struct store *st, int64_t org, int64_t request, int64_t trainer,
                            bool *match);

/* ---- outbox ---- */
struct store_effect {
	int64_t org_id;
	const char *kind;           /* "new_request", ... */
	const char *provider_class; /* "email", "calendar", "zoho" */
	const char *dedupe_key;
	int64_t request_id, booking_id; /* 0: none */
	const char *payload;            /* JSON text, rendered at enqueue time; with body_id: a JSON
	                                 * object of placeholder -> string, what this row's copy of the
	                                 * body has in place of each placeholder */
	time_t not_before;          /* first attempt at */
	time_t deadline;            /* 0: none; past it the row expires unsent */
	int64_t body_id;            /* 0: payload is the whole payload; else store_outbox_body */
	/* email rows: the message as it will be sent (RFC 5322 bytes, smtp_mime_build), or with
	 * body_id this row's fills of the body's message (smtp_mime_fills); NULL: none (the
	 * sender builds it from payload: rows queued before schema 14). Kept in outbox_messages,
	 * deleted once the row is sent, expired or skipped (or, dead, redacted), as the payload's
	 * secrets are. */
	const char *message;
	const char *rcpt; /* email rows with a message: the envelope recipient (the To address) */
};

/* store_outbox_body - store a payload shared by many rows (a fan-out: rendered once), JSON
 * text whose string values may hold placeholders; *id names it in store_effect.body_id. A
 * leased row of the body gets the body with every placeholder of its own payload replaced by
 * its text (JSON-escaped). Placeholders must not occur in the body otherwise (make them
 * random). Call inside the transaction that enqueues the rows. */
gw_rc store_outbox_body(struct store *st, int64_t org, const char *payload,
                        const char *message, time_t now, int64_t *id);

/* The rest of a large fan-out (m16, gateway/lifecycle/lc_fanout.c): the intake enqueued the
 * rows of the trainers up to after_id; those above it up to last_id are still to come. */
struct store_fanout {
	int64_t request_id, org_id;
	int64_t body_id;  /* 0: no shared body yet */
	char token[64];   /* the intake's placeholder token */
	bool templated;   /* the body has a message template */
	int64_t after_id, last_id;
};
/* store_fanout_put - record (or move on) the rest of a fan-out, keyed by its request */
gw_rc store_fanout_put(struct store *st, const struct store_fanout *f, time_t now);
/* store_fanout_next - the oldest rest of a fan-out of a request id above after (0: any;
 * *found false: none) */
gw_rc store_fanout_next(struct store *st, int64_t after, struct store_fanout *f, bool *found);
/* store_fanout_done - the request's fan-out is complete (or no longer wanted) */
gw_rc store_fanout_done(struct store *st, int64_t request_id);
/* store_fanout_pending - how many fan-outs are not yet wholly enqueued */
gw_rc store_fanout_pending(struct store *st, int64_t *count);
/* store_outbox_expand - body with every key of fills (JSON object text of string values)
 * replaced by its value JSON-escaped: what the lease hands over for a row of a body. *out
 * malloc'd: caller frees. GW_EINVAL when fills is not such an object. */
gw_rc store_outbox_expand(const char *body, const char *fills, char **out);

/* store_outbox_enqueue - insert the effect unless its dedupe key exists (then a no-op with
 * *inserted false). Call inside a transaction with the state change that causes it. */
gw_rc store_outbox_enqueue(struct store *st, const struct store_effect *e, time_t now,
                           bool *inserted, int64_t *id);
/* store_outbox_enqueue_set - store_outbox_enqueue for each of n effects, in that order (a
 * fan-out's slice): on PostgreSQL in one statement, one round trip for them all; on SQLite
 * one at a time. *inserted (may be NULL): how many were new. Borrows e for the call. */
gw_rc store_outbox_enqueue_set(struct store *st, const struct store_effect *e, int n, time_t now,
                               int *inserted);

struct store_lease {
	int64_t id, org_id, booking_id, request_id;
	char kind[32];
	char provider_class[16];
	char *payload; /* malloc'd: freed by store_leases_free */
	int attempts;  /* attempts made before this one */
	time_t deadline;
	time_t created_at;
	time_t next_attempt_at; /* when it was due */
	char dedupe_key[160];   /* truncated past 159 bytes (keys are short) */
	int64_t body_id;        /* a fan-out row: payload is its body expanded (0: none) */
	int priority;           /* store_outbox_priority of its kind */
	/* store_effect.message and .rcpt as enqueued (malloc'd or NULL); with body_id and a
	 * message, body_message is the body's message (malloc'd) and payload is left as the
	 * row's fills: the sender needs the message only */
	char *message, *rcpt, *body_message;
	bool failed_before; /* its last_error is set: a try of it failed, or a hold deferred it */
};

/* store_outbox_priority - the delivery priority of a kind: 0 urgent (sign-in links, scheduling
 * links, confirmations, reminders, cancellations, session links, ...: everything a person
 * waits for), 1 bulk (new_request, unmatched_request, survey). A lease takes urgent rows
 * first, and organisations take turns within a priority. */
int store_outbox_priority(const char *kind);

/* store_outbox_lease - lease up to max due rows (pending and due, or leased with an expired
 * lease) for owner until now + lease_secs, in one transaction. *out malloc'd array. */
gw_rc store_outbox_lease(struct store *st, const char *owner, time_t now, int lease_secs,
                         int max, struct store_lease **out, int *n);
void store_leases_free(struct store_lease *l, int n);

/* STORE_DEFER: not tried (the worker stopped short of it): back to pending at next_attempt_at,
 * no attempt counted, last_error kept. STORE_HELD: a calendar row whose trainer's connection
 * needs reconnecting: status 'held', never leased, until store_calendar_put (a reconnect) makes
 * the trainer's held rows due at once; an attempt is counted only for the send that found the
 * grant revoked (cal_revoked). */
enum store_outcome {
	STORE_SENT,
	STORE_RETRY,
	STORE_DEAD,
	STORE_EXPIRED,
	STORE_SKIPPED,
	STORE_DEFER,
	STORE_HELD,
};

struct store_result {
	int64_t id;
	enum store_outcome outcome;
	time_t next_attempt_at; /* STORE_RETRY */
	const char *provider;   /* which provider tried */
	const char *detail;     /* provider's words, or NULL */
	int64_t started_ms, finished_ms;
	int attempt; /* the try's number (its lease's attempts + 1); 0: read from the row */
	/* STORE_DEFER of a try that found the server down (dispatch.c): not counted, the row's
	 * attempts unchanged, but the try has its attempt row (outcome "deferred", numbered as
	 * the tries counted so far) like every other try */
	bool hold_try;
	/* the calendar result hook (docs/design.md rule 3), applied in the finishing transaction:
	 * the event id the provider chose or was given (Graph's ids are about 150 characters),
	 * stored on the booking ("" none) with cal_etag (a CalDAV ETag, "" none: stored as NULL);
	 * and a revoked grant (cal_revoked) marks connection cal_conn_id needs_reconnect with
	 * detail as the reason */
	char cal_event_id[512];
	char cal_etag[256];
	int64_t cal_conn_id;
	bool cal_revoked;
	/* with cal_revoked: the calendar_reconnect email to the trainer (payload JSON text),
	 * enqueued in the same transaction with the dedupe key
	 * "calendar_reconnect:{cal_conn_id}": one email per connection and revocation. NULL: none.
	 * malloc'd by the dispatcher, which frees it once the result is recorded */
	char *cal_reconnect;
	/* the Zoho Assist result hook (store_zoho_hook), applied in the finishing transaction:
	 * zoho_hook 1 stores the session (id, technician URL as session_link, customer join URL)
	 * on the booking and enqueues zoho_email (payload JSON text, malloc'd by the dispatcher,
	 * NULL: none) with dedupe key zoho_email_key; 2 clears them (the session was deleted);
	 * 0 nothing */
	int zoho_hook;
	char zoho_session_id[128];
	char zoho_tech_url[1024];
	char zoho_join_url[1024];
	char zoho_email_key[96];
	char *zoho_email;
	/* an email row sent or skipped: its payload without the link tokens
	 * (tpl_redact_text), stored in the finishing transaction with payload_state 'redacted',
	 * as store_outbox_redact would at the next tick. NULL: left to that pass. malloc'd by the
	 * dispatcher, which frees it once the result is recorded */
	char *redacted;
};

/* store_outbox_finish - record results of leased rows owned by owner, each with its attempt row,
 * in one transaction. A row whose lease was lost (owner changed) is left alone. */
gw_rc store_outbox_finish(struct store *st, const char *owner, const struct store_result *r,
                          int n, time_t now);

/* store_outbox_release - give leased rows of owner back (pending, due now): for shutdown. */
gw_rc store_outbox_release(struct store *st, const char *owner);

/* store_outbox_states - the statuses an outbox row can have, NULL-terminated (list filters). */
extern const char *const store_outbox_states[];

/* store_outbox_list - deliveries of org (org 0: all), newest first, status may be NULL. */
gw_rc store_outbox_list(struct store *st, int64_t org, const char *status, int limit,
                        json_t **out);
/* store_outbox_email_due - org's email rows waiting after a failure (pending, with a last
 * error: each was due before) due at once, whatever clock the caller keeps, as after new SMTP
 * settings; *n how many (NULL: not wanted). Rows never tried keep their time (a reminder waits
 * for its point). */
gw_rc store_outbox_email_due(struct store *st, int64_t org, int *n);

/* store_outbox_email_hold - up to max of org's email rows due at now (pending) wait to until,
 * not tried and not counted, detail their last error, in one transaction: the organisation's
 * SMTP server is down (gateway/delivery/dispatch.c). A row due after now keeps its time. *n how
 * many (max: call again for the next ones). */
gw_rc store_outbox_email_hold(struct store *st, int64_t org, time_t now, time_t until,
                              const char *detail, int max, int *n);

/* store_outbox_retry - a dead (or expired) row back to pending, due as soon as possible on any
 * clock (since it was enqueued), with a fresh backoff schedule. GW_ESTATE if it is not dead, or
 * if its content is gone (redacted or pruned past the retention: *gone true; gone may be NULL);
 * GW_ENOTFOUND. org 0: any organisation (CLI). */
gw_rc store_outbox_retry(struct store *st, int64_t org, int64_t id, bool *gone);
/* store_outbox_next_due - the earliest next_attempt_at of a pending row, or 0 when none. */
gw_rc store_outbox_next_due(struct store *st, time_t *at);

/* store_outbox_lease_class - store_outbox_lease for rows of provider_class pclass only (NULL:
 * any), never taking over a lease whose owner begins with self (NULL: any owner): the live
 * workers of one process keep their rows even when the (test) clock jumps past their lease. */
gw_rc store_outbox_lease_class(struct store *st, const char *owner, const char *pclass,
                               const char *self, time_t now, int lease_secs, int max,
                               struct store_lease **out, int *n);
/* A lease for connection number index (0-based) to an organisation's server: only the rows of
 * organisations whose provider settings `provider` allow more connections than index
 * (max_connections, def when unset or when the organisation has no such settings). */
struct store_slot {
	int index;
	const char *provider; /* provider_configs name, e.g. "smtp" */
	int def;
	const int64_t *skip; /* organisations whose rows this lease leaves (nskip of them) */
	int nskip;
};

/* store_outbox_max_connections - the largest max_connections of every organisation's
 * settings `provider` (def for settings without it); def when there are none. */
gw_rc store_outbox_max_connections(struct store *st, const char *provider, int def, int *out);

/* store_outbox_cycle - store_outbox_finish of r (n results; n may be 0) and then
 * store_outbox_lease_class of up to max rows (out NULL or max 0: none), in ONE transaction: a
 * worker that records a batch and takes the next pays for one commit, and the index pages both
 * touch are written once. */
gw_rc store_outbox_cycle(struct store *st, const char *owner, const struct store_result *r, int n,
                         time_t now, const char *pclass, const char *self, int lease_secs, int max,
                         struct store_lease **out, int *m, const struct store_slot *slot);
/* store_outbox_lease_owners - JSON array (new reference) of the distinct owners of leased rows. */
gw_rc store_outbox_lease_owners(struct store *st, json_t **out);
/* store_outbox_booking_state - a booking's status (copied into status, n bytes) and sequence,
 * for the dispatcher's skip rule. GW_ENOTFOUND when the booking is gone. */
gw_rc store_outbox_booking_state(struct store *st, int64_t booking, char *status, size_t n,
                                 int *sequence);
/* store_outbox_due_upto - how many rows are due at now (every class), counted up to limit
 * (its cost: at most limit index entries). */
gw_rc store_outbox_due_upto(struct store *st, time_t now, int limit, int *n);

/* store_outbox_depth - pending (and leased) rows, and the next_attempt_at of the oldest row that
 * is due at now (0 when none is due): the queue's depth and lag, for metrics. */
gw_rc store_outbox_depth(struct store *st, time_t now, int64_t *pending, time_t *oldest_due);
/* store_outbox_tune - pragmas for a connection that leases and finishes all day (a dispatch
 * worker's): memory-mapped reads and a larger page cache. */
gw_rc store_outbox_tune(struct store *st);
/* One line of a dispatch worker's sent journal: a row its server accepted (250 after DATA). */
struct store_journal_entry {
	int64_t id;
	char provider[16]; /* "" when unknown */
	int64_t started_ms, finished_ms;
};

/* store_outbox_journal_sent - in one transaction: each of the n rows still leased by owner
 * (a worker of a process that died) becomes sent, with its attempt row; rows recorded since,
 * or leased by someone else now, are left alone. *recorded counts the rows changed. */
gw_rc store_outbox_journal_sent(struct store *st, const char *owner,
                                const struct store_journal_entry *j, int n, time_t now,
                                int *recorded);

/* store_checkpoint - copy what the WAL holds back into the database as far as no reader needs
 * it (SQLITE_CHECKPOINT_PASSIVE: never waits for readers or writers). Connections of
 * store_open do not checkpoint on commit (a commit that did would hold the write lock while it
 * copies and syncs): the dispatcher's checkpoint thread calls this twice a second. */
gw_rc store_checkpoint(struct store *st);

/* ---- Zoho Assist sessions (store_calendar.c) ---- */
/* store_zoho_ref - {"session_id": text|null} of the booking's Zoho Assist session (new
 * reference). GW_ENOTFOUND when the booking is gone. */
gw_rc store_zoho_ref(struct store *st, int64_t booking, json_t **out);
/* store_zoho_hook - what a finished Zoho Assist delivery leaves behind (see zoho_hook); inside
 * the caller's transaction (store_outbox_finish). */
gw_rc store_zoho_hook(struct store *st, const struct store_result *r, time_t now);

/* ---- calendar connections (store_calendar.c) ---- */
/* store_calendar_put - connect user's calendar (replacing any connection, which gets a new id):
 * provider, calendar_id and the sealed secret (the refresh token), status "connected". The
 * trainer's held calendar rows (STORE_HELD) become due at once, in the same statement group:
 * call it inside the caller's transaction, then wake the dispatcher.
 * GW_ENOTFOUND when the user is not in org. */
gw_rc store_calendar_put(struct store *st, int64_t org, int64_t user, const char *provider,
                         const char *calendar_id, const char *secret, time_t now);
/* store_calendar_delete - disconnect; the trainer's held calendar rows become due at once
 * (then skipped: no calendar). GW_ENOTFOUND when nothing is connected. */
gw_rc store_calendar_delete(struct store *st, int64_t org, int64_t user, time_t now);
/* store_calendar_get - {id, provider, calendar_id, secret (sealed), status, last_error,
 * connected_at (epoch)} for the dispatcher; GW_ENOTFOUND. The API's users never show it: they
 * carry "calendar" without the secret. */
gw_rc store_calendar_get(struct store *st, int64_t org, int64_t user, json_t **out);
/* store_calendar_list - every connection of org's users, for its admins: [{user_id, user_name,
 * provider, calendar_id, status, last_error, connected_at (RFC 3339)}], never the secret.
 * *out new reference. */
gw_rc store_calendar_list(struct store *st, int64_t org, json_t **out);
/* store_calendar_counts - {"provider|status": n} over every connection (metrics). */
gw_rc store_calendar_counts(struct store *st, json_t **out);

/* ---- busy times of connected calendars (store_busy.c, migration 8) ---- */
/* store_busy_targets - every connection with status "connected": [{id, org_id, user_id}],
 * ordered by id. For the background fetch. */
gw_rc store_busy_targets(struct store *st, int64_t user, json_t **out);
/* store_busy_replace - the connection's busy blocks become blocks (borrowed: [[start, end]]),
 * busy_fetched_at now, busy_error cleared. Run it inside store_begin/commit: the old list goes
 * and the new one comes in one transaction. A connection that is gone is GW_ENOTFOUND. */
gw_rc store_busy_replace(struct store *st, int64_t conn, const json_t *blocks, time_t now);
/* store_busy_failed - a fetch failed: the blocks stay, busy_error (no secrets) is recorded. */
gw_rc store_busy_failed(struct store *st, int64_t conn, const char *error, time_t now);
/* store_busy_ranges - the busy blocks of trainer's connected calendar overlapping [from, to):
 * [[start, end]] ordered by start. A block that is exactly one of the trainer's own bookings
 * with a calendar event (the gateway's event, which freeBusy cannot name) is left out. */
gw_rc store_busy_ranges(struct store *st, int64_t trainer, time_t from, time_t to,
                        json_t **out);

/* ---- OAuth 2.0 authorization requests in flight (store_calendar.c, migration 6) ---- */
/* store_oauth_state_put - record a state (its SHA-256 hex) bound to org, user and provider,
 * with the sealed PKCE code_verifier, valid until expires_at; states that expired before now
 * are purged first. Inside the caller's transaction. GW_ENOTFOUND when the user is not in org. */
gw_rc store_oauth_state_put(struct store *st, const char *state_hash, int64_t org, int64_t user,
                            const char *provider, const char *sealed_verifier, time_t now,
                            time_t expires_at);
/* store_oauth_state_take - take (delete: a state works once) the state whose hash is
 * state_hash. *out {org_id, user_id, provider, verifier (sealed)}, new reference. GW_ENOTFOUND
 * for an unknown or used state; GW_EEXPIRED when it expired at or before now (taken all the
 * same, *out NULL). Inside the caller's transaction. */
gw_rc store_oauth_state_take(struct store *st, const char *state_hash, time_t now,
                             json_t **out);
/* store_calendar_ref - what the last calendar delivery of a booking left on it, for the next
 * one: {"event_id": the provider's id or null, "etag": the CalDAV ETag or null}; GW_ENOTFOUND
 * when there is no such booking. */
gw_rc store_calendar_ref(struct store *st, int64_t booking, json_t **out);

/* ---- providers ---- */
/* store_provider_get - the stored config (secrets sealed) of name for org; GW_ENOTFOUND. */
gw_rc store_provider_get(struct store *st, int64_t org, const char *name, json_t **out);
gw_rc store_provider_put(struct store *st, int64_t org, const char *name, const json_t *cfg);
gw_rc store_provider_delete(struct store *st, int64_t org, const char *name);
/* store_provider_list - {name: config} of org. */
gw_rc store_provider_list(struct store *st, int64_t org, json_t **out);

/* store_outbox_expire - pending rows of kind for request become 'expired' (their deadline,
 * e.g. "until the request is claimed", has passed). Inside the transaction that causes it. */
gw_rc store_outbox_expire_request(struct store *st, int64_t request, const char *kind);

/* store_outbox_counts - {"status|kind|class": n} over every organisation (metrics). */
gw_rc store_outbox_counts(struct store *st, json_t **out);

/* ---- scheduling links ---- */
/* store_request_link_set - a new link for the claiming trainer: link_version + 1, the token
 * hash replaced (the old token stops working), status claimed|scheduling -> scheduling.
 * GW_ESTATE in any other status or for another trainer. *version: the new link version. */
gw_rc store_request_link_set(struct store *st, int64_t org, int64_t id, int64_t trainer,
                             const char *token_hash, time_t now, time_t expires_at,
                             int *version);
/* store_request_by_link - the request a link token hashes to, with org_id, link_expires_at
 * (epoch) and trainer: {id, name, email, timezone, availability}; GW_ENOTFOUND. */
gw_rc store_request_by_link(struct store *st, const char *token_hash, json_t **out);
/* store_request_set_status - from (comma-free single status) -> to; GW_ESTATE when not in from */
gw_rc store_request_set_status(struct store *st, int64_t id, const char *from, const char *to,
                               time_t now);

/* ---- availability ---- */
gw_rc store_user_availability(struct store *st, int64_t org, int64_t user, json_t **out);
gw_rc store_user_availability_put(struct store *st, int64_t org, int64_t user,
                                  const json_t *availability);
/* store_user_feed_set - replace the trainer's feed token hash. */
gw_rc store_user_feed_set(struct store *st, int64_t org, int64_t user, const char *token_hash);
/* store_user_by_feed - {id, org_id, name, email, timezone} of the feed token; GW_ENOTFOUND. */
gw_rc store_user_by_feed(struct store *st, const char *token_hash, json_t **out);

/* ---- bookings ---- */
struct store_booking_new {
	int64_t org_id, request_id, trainer_id;
	time_t start, end;
	int length_minutes;
	int64_t price_cents;
	const char *currency;
	const char *uid;
	time_t hold_expires_at;
};
/* store_booking_create - insert a pending_payment booking. GW_ESLOT when it overlaps a held
 * booking of the trainer (the store's own trigger decides, inside the transaction). */
gw_rc store_booking_create(struct store *st, const struct store_booking_new *b, time_t now,
                           int64_t *id);

/* store_booking_get - the booking as the API shows it, plus what effects need:
 * customer {name, email}, trainer {id, name, email, timezone, notify_on_confirm},
 * session_type {name, price_cents, currency} or null, uid, price_cents, currency, paid_at,
 * payment_reference, org_id. GW_ENOTFOUND (org 0: any organisation). */
gw_rc store_booking_get(struct store *st, int64_t org, int64_t id, json_t **out);

/* What a transition sets. Fields left at their zero value are not touched, except where said. */
struct store_booking_set {
	const char *status;          /* new status, or NULL */
	time_t start, end;           /* reschedule: both or neither */
	int bump_sequence;           /* sequence + 1 */
	time_t paid_at;              /* with payment_reference */
	const char *payment_reference;
	time_t confirmed_at;
	time_t completed_at;         /* with completed_by; clear_completion clears both */
	const char *completed_by;    /* user id as text, or "system" */
	const char *completion_note;
	int clear_completion;
	int customer_no_show, trainer_no_show; /* 1 sets the flag */
	const char *no_show_marked_by;
	time_t no_show_marked_at;
	const char *no_show_note;
	time_t cancelled_at;
	const char *cancel_reason;
	time_t checked_in_at;
	const char *session_link;
};
/* store_booking_transition - the one conditional UPDATE of a booking: applies set only when
 * the booking is in status from (NULL: any). GW_ESTATE when it is not; GW_ESLOT when a new time
 * overlaps another held booking; GW_ENOTFOUND. */
gw_rc store_booking_transition(struct store *st, int64_t org, int64_t id, const char *from,
                               const struct store_booking_set *set, time_t now);

struct store_booking_filter {
	const char *status;       /* or NULL */
	int64_t trainer_id;       /* or 0 */
	bool awaiting_completion; /* confirmed and ended before now */
	time_t now;
	const char *customer_email; /* or NULL */
	time_t start_from, start_to; /* 0: open */
	bool newest_first;
};
gw_rc store_booking_list(struct store *st, int64_t org, const struct store_booking_filter *f,
                         json_t **out);

/* store_booking_list_for_request - [{booking_id, status, start, end, paid_at}] of a request,
 * newest first: what the customer's link shows. */
gw_rc store_booking_list_for_request(struct store *st, int64_t request, json_t **out);

/* store_booking_busy - [start, end) of the trainer's held bookings (pending_payment and
 * confirmed) overlapping [from, to), sorted, leaving out booking except (0: none; a booking
 * being moved does not block its own time). *out is a JSON array of [start, end] epochs. */
gw_rc store_booking_busy(struct store *st, int64_t trainer, time_t from, time_t to,
                         int64_t except, json_t **out);

/* store_manage_token_add - record the hash of one manage link of booking. */
gw_rc store_manage_token_add(struct store *st, int64_t org, int64_t booking,
                             const char *token_hash, time_t now);
/* store_manage_lookup - the organisation and booking a manage token hashes to; GW_ENOTFOUND. */
gw_rc store_manage_lookup(struct store *st, const char *token_hash, int64_t *org,
                          int64_t *booking);

/* store_booking_effects - every outbox row of the booking (API "effects" shape). */
gw_rc store_booking_effects(struct store *st, int64_t org, int64_t booking, json_t **out);

/* store_outbox_skip_booking - pending rows of the booking whose kind is in kinds (NULL-ended)
 * become 'skipped' with reason. Inside the transaction that makes them worthless. */
gw_rc store_outbox_skip_booking(struct store *st, int64_t booking, const char *const *kinds,
                                const char *reason);

/* ---- notes, surveys, reports ---- */
gw_rc store_note_add(struct store *st, int64_t booking, int64_t author, const char *body,
                     time_t now, int64_t *id);
gw_rc store_note_list(struct store *st, int64_t booking, int64_t author, json_t **out);
/* store_survey_create - GW_EEXISTS when the booking already has one. */
gw_rc store_survey_create(struct store *st, int64_t org, int64_t booking,
                          const char *token_hash, time_t now);
/* store_survey_get - {booking_id, org_id, answered, rating, comment, trainer{name},
 * session_type, start}; GW_ENOTFOUND. */
gw_rc store_survey_get(struct store *st, const char *token_hash, json_t **out);
/* store_survey_answer - once: GW_ESTATE when already answered. */
gw_rc store_survey_answer(struct store *st, const char *token_hash, int rating,
                          const char *comment, time_t now);
/* store_report_payouts - per trainer {trainer_id, name, completed, revenue_cents, currency,
 * customer_no_shows, trainer_no_shows} for bookings starting in [from, to). */
gw_rc store_report_payouts(struct store *st, int64_t org, time_t from, time_t to,
                           json_t **out);

/* ---- the scheduler's queries (store_sched.c): each one index range ---- */
/* store_sched_orgs - [{id, settings}] of every organisation (stored settings only). */
gw_rc store_sched_orgs(struct store *st, json_t **out);
/* store_sched_starting - [[booking id, start, confirmed_at, sequence], ...] of org's confirmed
 * bookings with start_at in (lo, hi]. */
gw_rc store_sched_starting(struct store *st, int64_t org, time_t lo, time_t hi, json_t **out);
/* store_sched_ended - [[booking id, end], ...] of org's confirmed bookings with end_at <= hi,
 * oldest first, at most limit. */
gw_rc store_sched_ended(struct store *st, int64_t org, time_t hi, int limit, json_t **out);
/* store_sched_expired_holds - [[booking id, org id], ...] of pending_payment bookings whose
 * hold expired at or before now, at most limit. */
gw_rc store_sched_expired_holds(struct store *st, time_t now, int limit, json_t **out);
/* store_sched_explain - the EXPLAIN QUERY PLAN lines of every scheduler query (tests). */
gw_rc store_sched_explain(struct store *st, json_t **out);
/* store_redact_fn - an email payload (JSON text) without its secrets: malloc'd (the store
 * frees it), or NULL when out of memory. */
typedef char *(*store_redact_fn)(const char *payload);

/* store_outbox_redact - inside the caller's transaction: email rows that were sent, expired or
 * skipped, and dead ones created keep_secs or more before now, get their payload through
 * redact (the link tokens dropped: state 'redacted'); redacted rows sent (or created) keep_secs
 * or more before now lose the rendered payload altogether (state 'pruned': {"pruned": true}).
 * At most limit rows of each per call; *redacted and *pruned count them. Then up to limit
 * fan-out bodies created keep_secs or more before now go once every row of theirs is pruned
 * and no rest of their fan-out is left to enqueue. Dedupe keys stay. */
gw_rc store_outbox_redact(struct store *st, time_t now, time_t keep_secs, int limit,
                          store_redact_fn redact, int *redacted, int *pruned);

/* ---- sign-in links and browser sessions (store_auth.c, migration 11) ---- */
/* store_auth_signer - the active user of org whose address is email (compared lower-cased)
 * and who holds one of roles (bits): *out {id, org_id, email, name}, new reference;
 * GW_ENOTFOUND when there is none (unknown address, other organisation, inactive, role). */
gw_rc store_auth_signer(struct store *st, int64_t org, const char *email, int roles,
                        json_t **out);
/* store_auth_link_add - record a sign-in link (the SHA-256 hex of its token) of user in org,
 * valid until expires_at; links that ended a day or more before now are purged first. *id:
 * the link's id (its dedupe key). Inside the caller's transaction. */
gw_rc store_auth_link_add(struct store *st, int64_t org, int64_t user, const char *token_hash,
                          time_t now, time_t expires_at, int64_t *id);
/* store_auth_link_take - use the link once (one conditional UPDATE: of two racing callers
 * exactly one gets GW_OK): *user its user, who must still be active. GW_EEXPIRED when it was
 * used, expired at or before now, or its user was deactivated; GW_ENOTFOUND when unknown. */
gw_rc store_auth_link_take(struct store *st, const char *token_hash, time_t now,
                           int64_t *user);
/* store_session_create - a session of user (the SHA-256 hex of its cookie value) with its CSRF
 * token, until expires_at; sessions that ended before now are purged first. */
gw_rc store_session_create(struct store *st, int64_t user, const char *session_hash,
                           const char *csrf, time_t now, time_t expires_at);
/* store_session_user - the active user of the live (expires_at after now) session whose
 * cookie hashes to session_hash, and its CSRF token (copied into csrf, n bytes); GW_EUNAUTH
 * when there is none. */
gw_rc store_session_user(struct store *st, const char *session_hash, time_t now,
                         struct store_user *out, char *csrf, size_t n);
/* store_session_end - delete the session (no session is fine: GW_OK). */
gw_rc store_session_end(struct store *st, const char *session_hash);

/* store_meta_get / store_meta_put - small settings of the installation (e.g. "public_url"). */
gw_rc store_meta_get(struct store *st, const char *key, json_t **out);
gw_rc store_meta_put(struct store *st, const char *key, const char *value);

/* default days a sent email keeps its rendered payload (serve --retention-days) */
#define STORE_RETENTION_DAYS 30

#endif
