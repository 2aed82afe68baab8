/*
 * store_outbox.c - the durable outbox: enqueue with dedupe, lease, finish, retry, list.
 *
 * Entry points: store_outbox_enqueue(), store_outbox_enqueue_set(), store_outbox_lease(),
 * store_outbox_lease_class(), store_outbox_cycle(), store_leases_free(), store_outbox_finish(),
 * store_outbox_release(), store_outbox_list(), store_outbox_retry(), store_outbox_next_due(),
 * store_outbox_lease_owners(), store_outbox_booking_state(), store_outbox_depth(),
 * store_outbox_counts(), store_outbox_tune().
 * Threading: one connection per thread. Lease and finish work on a whole batch in one
 * transaction, and store_outbox_cycle() does both in one (docs/design.md: batch where the design
 * allows).
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define ENQUEUE_SQL                                                                   \
	"INSERT INTO outbox(org_id, kind, provider_class, dedupe_key, request_id, booking_id," \
	" payload, status, next_attempt_at, deadline_at, created_at, body_id, priority,"      \
	" rcpt)"                                                                              \
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10, ?11, ?12, ?13)"

/* put_message - the row's message (outbox_messages); DB_DONE when written */
static int put_message(struct store *st, int64_t row, const char *message)
{
	struct db_stmt *m = store_stmt(st, "INSERT INTO outbox_messages(outbox_id, message)"
	                                 " VALUES(?1, ?2)");
	int r;

	if(!m)
		return DB_ERROR;
	db_bind_int64(m, 1, row);
	db_bind_text(m, 2, message, -1);
	r = db_step(m);
	db_reset(m);
	db_clear(m);
	return r;
}

/* store_outbox_enqueue - insert unless the dedupe key exists */
gw_rc store_outbox_enqueue(struct store *st, const struct store_effect *e, time_t now,
                           bool *inserted, int64_t *id)
{
	/* SQLite: two statements, not three: the row first (its id from last_insert_rowid:
	 * RETURNING costs SQLite an ephemeral table, and a fan-out of 10,000 rows 190 ms of CPU
	 * instead of 120), then its dedupe key naming it; a key that exists already (rare: a
	 * repeated tick, a racing request) undoes the row, inside the caller's transaction.
	 * PostgreSQL: one statement takes the key (with the row's id drawn first) and inserts the
	 * row only when the key was new, answering (id, 1), or (0, 1) for a key that existed: one
	 * round trip per row instead of three. */
	static const struct db_sql q = {{
	    ENQUEUE_SQL,
	    "WITH k AS (INSERT INTO dedupe_keys(org_id, key, outbox_id, created_at)"
	    "  VALUES(?1, ?4, nextval(pg_get_serial_sequence('outbox', 'id')), ?10)"
	    "  ON CONFLICT DO NOTHING RETURNING outbox_id),"
	    " o AS (INSERT INTO outbox(id, org_id, kind, provider_class, dedupe_key, request_id,"
	    "  booking_id, payload, status, next_attempt_at, deadline_at, created_at, body_id,"
	    "  priority, rcpt) SELECT outbox_id, ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8,"
	    "  ?9, ?10, ?11, ?12, ?13 FROM k RETURNING id)"
	    " SELECT coalesce((SELECT id FROM o), 0), 1",
	}};
	struct db_stmt *s = store_stmt_d(st, &q);
	struct db_stmt *d = store_stmt(st, "INSERT INTO dedupe_keys(org_id, key, outbox_id,"
	                                 " created_at) VALUES(?1, ?2, ?3, ?4)"
	                                 " ON CONFLICT DO NOTHING");
	struct db_stmt *x = store_stmt(st, "DELETE FROM outbox WHERE id = ?1");
	int64_t row;
	bool keyed;
	int r;

	*inserted = false;
	if(id)
		*id = 0;
	if(!d || !s || !x)
		return GW_EDB;
	db_bind_int64(s, 1, e->org_id);
	db_bind_text(s, 2, e->kind, -1);
	db_bind_text(s, 3, e->provider_class, -1);
	db_bind_text(s, 4, e->dedupe_key, -1);
	store_bind_id(s, 5, e->request_id);
	store_bind_id(s, 6, e->booking_id);
	db_bind_text(s, 7, e->payload, -1);
	db_bind_int64(s, 8, e->not_before > now ? e->not_before : now);
	if(e->deadline > 0)
		db_bind_int64(s, 9, e->deadline);
	db_bind_int64(s, 10, now);
	store_bind_id(s, 11, e->body_id);
	db_bind_int64(s, 12, store_outbox_priority(e->kind));
	store_bind_text(s, 13, e->message ? e->rcpt : NULL);
	r = db_step(s);
	row = r == DB_ROW ? db_col_int64(s, 0) : 0;
	keyed = r == DB_ROW && db_col_int(s, 1) != 0;
	db_reset(s);
	db_clear(s); /* the borrowed texts must not outlive the call */
	if(r != DB_ROW && r != DB_DONE)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	if(keyed) {
		if(row == 0)
			return GW_OK; /* the key exists: enqueueing it again is a no-op */
		goto inserted;
	}
	row = db_last_id(st);
	db_bind_int64(d, 1, e->org_id);
	db_bind_text(d, 2, e->dedupe_key, -1);
	db_bind_int64(d, 3, row);
	db_bind_int64(d, 4, now);
	r = db_step(d);
	db_reset(d);
	db_clear(d);
	if(r != DB_DONE)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	if(db_changes(st) == 0) {
		/* the key exists: enqueueing it again is a no-op */
		db_bind_int64(x, 1, row);
		r = db_step(x);
		db_reset(x);
		return r == DB_DONE ? GW_OK : (store_rc(r) ? store_rc(r) : GW_EDB);
	}
inserted:
	if(e->message && (r = put_message(st, row, e->message)) != DB_DONE)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	if(id)
		*id = row;
	*inserted = true;
	st->enqueued = true;
	if(!st->ops->in_txn(st->db))
		store_outbox_announce(st);
	return GW_OK;
}

/* store_outbox_body - one shared body of a fan-out */
gw_rc store_outbox_body(struct store *st, int64_t org, const char *payload, const char *message,
                        time_t now, int64_t *id)
{
	struct db_stmt *s = store_stmt(st, "INSERT INTO outbox_bodies(org_id, payload, created_at,"
	                                 " message) VALUES(?1, ?2, ?3, ?4) RETURNING id");
	int r;

	*id = 0;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	db_bind_text(s, 2, payload, -1);
	db_bind_int64(s, 3, now);
	store_bind_text(s, 4, message);
	r = db_step(s);
	if(r == DB_ROW)
		*id = db_col_int64(s, 0);
	db_reset(s);
	return r == DB_ROW ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_fanout_put - insert or move on the rest of a fan-out */
gw_rc store_fanout_put(struct store *st, const struct store_fanout *f, time_t now)
{
	struct db_stmt *s = store_stmt(
	    st, "INSERT INTO outbox_fanouts(request_id, org_id, body_id, token, templated, after_id,"
	        " last_id, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	        " ON CONFLICT(request_id) DO UPDATE SET body_id = excluded.body_id,"
	        " token = excluded.token, templated = excluded.templated,"
	        " after_id = excluded.after_id, last_id = excluded.last_id");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, f->request_id);
	db_bind_int64(s, 2, f->org_id);
	store_bind_id(s, 3, f->body_id);
	db_bind_text(s, 4, f->token, -1);
	db_bind_int64(s, 5, f->templated ? 1 : 0);
	db_bind_int64(s, 6, f->after_id);
	db_bind_int64(s, 7, f->last_id);
	db_bind_int64(s, 8, now);
	r = db_step(s);
	db_reset(s);
	db_clear(s);
	return r == DB_DONE ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_fanout_next - the oldest rest of a fan-out whose request id is above after (request
 * ids grow with time: the oldest request first) */
gw_rc store_fanout_next(struct store *st, int64_t after, struct store_fanout *f, bool *found)
{
	struct db_stmt *s = store_stmt(st, "SELECT request_id, org_id, coalesce(body_id, 0), token,"
	                                 " templated, after_id, last_id FROM outbox_fanouts"
	                                 " WHERE request_id > ?1 ORDER BY request_id LIMIT 1");
	int r;

	memset(f, 0, sizeof(*f));
	*found = false;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, after);
	r = db_step(s);
	if(r == DB_ROW) {
		f->request_id = db_col_int64(s, 0);
		f->org_id = db_col_int64(s, 1);
		f->body_id = db_col_int64(s, 2);
		snprintf(f->token, sizeof(f->token), "%s", db_col_text(s, 3) ? db_col_text(s, 3) : "");
		f->templated = db_col_int64(s, 4) != 0;
		f->after_id = db_col_int64(s, 5);
		f->last_id = db_col_int64(s, 6);
		*found = true;
	}
	db_reset(s);
	return r == DB_ROW || r == DB_DONE ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_fanout_done - drop the rest of a fan-out */
gw_rc store_fanout_done(struct store *st, int64_t request_id)
{
	struct db_stmt *s = store_stmt(st, "DELETE FROM outbox_fanouts WHERE request_id = ?1");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, request_id);
	r = db_step(s);
	db_reset(s);
	return r == DB_DONE ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_fanout_pending - fan-outs not yet wholly enqueued */
gw_rc store_fanout_pending(struct store *st, int64_t *count)
{
	struct db_stmt *s = store_stmt(st, "SELECT count(*) FROM outbox_fanouts");
	int r;

	*count = 0;
	if(!s)
		return GW_EDB;
	r = db_step(s);
	if(r == DB_ROW)
		*count = db_col_int64(s, 0);
	db_reset(s);
	return r == DB_ROW ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_outbox_expand - a body with one row's fills in place of its placeholders */
gw_rc store_outbox_expand(const char *body, const char *fills, char **out)
{
	json_t *f = json_loads(fills, 0, NULL), *v;
	const char *key, *p, *hit;
	char *enc = NULL;
	size_t cap = strlen(body) + 1, len = 0, klen, vlen;
	char *buf = NULL, *nb;
	gw_rc rc = GW_OK;

	*out = NULL;
	if(!json_is_object(f)) {
		rc = GW_EINVAL;
		goto out;
	}
	buf = malloc(cap);
	if(!buf) {
		rc = GW_ENOMEM;
		goto out;
	}
	memcpy(buf, body, cap);
	len = cap - 1;
	json_object_foreach(f, key, v)
	{
		char *res;
		size_t rlen = 0, rcap;

		klen = strlen(key);
		if(!json_is_string(v) || klen < 8) {
			rc = GW_EINVAL;
			goto out;
		}
		if(!strstr(buf, key))
			continue;
		/* the value as it stands inside a JSON string: jansson's encoding, quotes cut */
		enc = json_dumps(v, JSON_ENCODE_ANY);
		if(!enc) {
			rc = GW_ENOMEM;
			goto out;
		}
		vlen = strlen(enc) - 2;
		rcap = len + 1 + (vlen > klen ? (vlen - klen) * 8 : 0);
		res = malloc(rcap);
		if(!res) {
			rc = GW_ENOMEM;
			goto out;
		}
		for(p = buf; (hit = strstr(p, key)) != NULL; p = hit + klen) {
			size_t pre = (size_t)(hit - p);

			if(rlen + pre + vlen + 1 > rcap) {
				rcap = (rlen + pre + vlen + 1) * 2;
				nb = realloc(res, rcap);
				if(!nb) {
					free(res);
					rc = GW_ENOMEM;
					goto out;
				}
				res = nb;
			}
			memcpy(res + rlen, p, pre);
			memcpy(res + rlen + pre, enc + 1, vlen);
			rlen += pre + vlen;
		}
		if(rlen + strlen(p) + 1 > rcap) {
			rcap = rlen + strlen(p) + 1;
			nb = realloc(res, rcap);
			if(!nb) {
				free(res);
				rc = GW_ENOMEM;
				goto out;
			}
			res = nb;
		}
		memcpy(res + rlen, p, strlen(p) + 1);
		rlen += strlen(p);
		free(buf);
		buf = res;
		len = rlen;
		free(enc);
		enc = NULL;
	}
	*out = buf;
	buf = NULL;
out:
	free(enc);
	free(buf);
	json_decref(f);
	return rc;
}

/* store_leases_free - free a lease array */
void store_leases_free(struct store_lease *l, int n)
{
	int i;

	if(!l)
		return;
	for(i = 0; i < n; i++) {
		free(l[i].payload);
		free(l[i].message);
		free(l[i].rcpt);
		free(l[i].body_message);
	}
	free(l);
}

/* Which rows go first (docs/design.md, README "Delivery order"): every kind is urgent (0)
 * but these, bulk (1): the fan-out to trainers, the admins' unmatched-request notice and the
 * satisfaction survey. A bulk row is leased only when no urgent row of its class is due. */
static const char *const bulk_kinds[] = {"new_request", "unmatched_request", "survey", NULL};

/* store_outbox_priority - 0 urgent, 1 bulk */
int store_outbox_priority(const char *kind)
{
	int i;

	for(i = 0; kind && bulk_kinds[i]; i++)
		if(strcmp(kind, bulk_kinds[i]) == 0)
			return 1;
	return 0;
}

#define LEASE_PRIORITIES 2
#define LEASE_ORGS_MAX   256 /* organisations served per priority in one lease */

/* The lease (all inside the caller's transaction), with the partial index
 * outbox_queue(provider_class, priority, org_id, next_attempt_at) WHERE status = 'pending':
 *   1. leased rows whose lease ran out because their worker died (outbox_lease), oldest first,
 *      unless the owner is one of the caller's own live workers;
 *   2. then per priority, urgent first: the organisations with pending rows of the class (a
 *      skip-scan of the index: one seek per organisation; at most LEASE_ORGS_MAX, starting
 *      after where the last lease's turn ended and wrapping round), and from each, in due
 *      order, an equal share of the room left (rounds until the batch is full or every
 *      organisation is out of due rows): a 10,000-row fan-out of one organisation takes no
 *      more of a batch than another organisation's one email;
 *   3. one UPDATE of the chosen ids, RETURNING the rows, put in batch order: urgent first,
 *      then each organisation's first row, each one's second, ... (organisations take turns
 *      within the batch as well, so that a worker sending it in order serves them alike).
 * Cost: O(organisations with pending rows of the class + batch) index seeks, whatever the
 * backlog (bench/fanout.sh queues 10,000 rows). */
#define LEASE_STALE_WHERE                                               \
	" WHERE status = 'leased' AND lease_expires_at <= ?1"           \
	" AND (?2 IS NULL OR provider_class = ?2)"                      \
	" AND (?3 IS NULL OR substr(lease_owner, 1, length(?3)) <> ?3)" \
	" ORDER BY lease_expires_at, id LIMIT ?4"
/* SQLite's planner is told the index; PostgreSQL's picks it itself */
static const struct db_sql lease_stale_sql = {{
    "SELECT id FROM outbox INDEXED BY outbox_lease" LEASE_STALE_WHERE,
    "SELECT id FROM outbox" LEASE_STALE_WHERE,
}};
#define LEASE_CLASSES_SQL                                                          \
	"WITH RECURSIVE c(cls) AS (SELECT (SELECT min(provider_class) FROM outbox" \
	"  WHERE status = 'pending')"                                              \
	" UNION ALL SELECT (SELECT min(provider_class) FROM outbox"                \
	"  WHERE status = 'pending' AND provider_class > c.cls) FROM c"            \
	"  WHERE c.cls IS NOT NULL)"                                               \
	" SELECT cls FROM c WHERE cls IS NOT NULL LIMIT 16"
#define LEASE_ORGS_SQL                                                               \
	"WITH RECURSIVE o(org) AS (SELECT (SELECT min(org_id) FROM outbox"           \
	"  WHERE status = 'pending' AND provider_class = ?1 AND priority = ?2"       \
	"  AND org_id > ?4 AND org_id <= ?5)"                                        \
	" UNION ALL SELECT (SELECT min(org_id) FROM outbox WHERE status = 'pending'" \
	"  AND provider_class = ?1 AND priority = ?2 AND org_id > o.org"             \
	"  AND org_id <= ?5) FROM o WHERE o.org IS NOT NULL)"                        \
	" SELECT org FROM o WHERE org IS NOT NULL LIMIT ?3"
#define LEASE_ORG_ROWS_SQL                                                \
	"SELECT id, next_attempt_at FROM outbox WHERE status = 'pending'" \
	" AND provider_class = ?1 AND priority = ?2 AND org_id = ?3"      \
	" AND next_attempt_at <= ?4 AND (next_attempt_at, id) > (?5, ?6)" \
	" ORDER BY next_attempt_at, id LIMIT ?7"
#define LEASE_SET "UPDATE outbox SET status = 'leased', lease_owner = ?1, lease_expires_at = ?2"
/* the lease writes, then reads back what it took with the messages, in one statement each:
 * RETURNING would have SQLite build an ephemeral table of every row, and a SELECT per row would
 * fetch the messages. What this worker took is what now carries its owner and expiry (on
 * PostgreSQL a row locked by another gateway is skipped, and not read back). */
static const struct db_sql lease_sql = {{
    LEASE_SET " WHERE id IN (SELECT value FROM json_each(?3))",
    /* FOR UPDATE SKIP LOCKED: a row another gateway's transaction holds is left to it */
    LEASE_SET " WHERE id IN (SELECT id FROM outbox WHERE id IN"
              " (SELECT value::bigint FROM jsonb_array_elements_text(?3::jsonb))"
              " AND status IN ('pending', 'leased') FOR UPDATE SKIP LOCKED)",
}};
#define LEASED_SELECT                                                                      \
	"SELECT o.id, o.org_id, coalesce(o.booking_id, 0), coalesce(o.request_id, 0), o.kind," \
	" o.provider_class, o.payload, o.attempts, coalesce(o.deadline_at, 0), o.created_at," \
	" o.next_attempt_at, o.dedupe_key, o.body_id, o.priority, o.rcpt, m.message,"        \
	" CASE WHEN o.last_error IS NULL THEN 0 ELSE 1 END"                                   \
	" FROM outbox o LEFT JOIN outbox_messages m ON m.outbox_id = o.id WHERE o.id IN"
#define LEASED_WHERE " AND o.status = 'leased' AND o.lease_owner = ?1 AND o.lease_expires_at = ?2"
static const struct db_sql leased_sql = {{
    LEASED_SELECT " (SELECT value FROM json_each(?3))" LEASED_WHERE,
    LEASED_SELECT " (SELECT value::bigint FROM jsonb_array_elements_text(?3::jsonb))"
                  LEASED_WHERE,
}};

/* A row chosen for the lease, and where it goes in the batch: by priority (-1: a dead
 * worker's), then its rank in its organisation's queue, then the organisation's turn. */
struct lease_pick {
	int64_t id;
	int prio, rank, turn;
};

/* pick_cmp - qsort order of struct lease_pick */
static int pick_cmp(const void *a, const void *b)
{
	const struct lease_pick *x = a, *y = b;

	if(x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	if(x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return (x->turn > y->turn) - (x->turn < y->turn);
}

/* One organisation's queue during a lease: where its next row starts. */
struct lease_org {
	int64_t org;
	int64_t at, id; /* the last row taken: (next_attempt_at, id) */
	int taken;
	bool more;
};

/* pick_org_rows - up to q more due rows of one organisation's queue into ids */
static gw_rc pick_org_rows(struct store *st, const char *cls, int prio, struct lease_org *o,
                           int turn, time_t now, int q, struct lease_pick *ids, int *nids)
{
	struct db_stmt *s = store_stmt(st, LEASE_ORG_ROWS_SQL);
	int r, got = 0;

	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, cls, -1);
	db_bind_int64(s, 2, prio);
	db_bind_int64(s, 3, o->org);
	db_bind_int64(s, 4, now);
	db_bind_int64(s, 5, o->at);
	db_bind_int64(s, 6, o->id);
	db_bind_int64(s, 7, q);
	while((r = db_step(s)) == DB_ROW) {
		o->id = db_col_int64(s, 0);
		o->at = db_col_int64(s, 1);
		ids[*nids].id = o->id;
		ids[*nids].prio = prio;
		ids[*nids].rank = o->taken + got;
		ids[*nids].turn = turn;
		(*nids)++;
		got++;
	}
	db_reset(s);
	db_clear(s);
	if(r != DB_DONE)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	o->taken += got;
	o->more = got == q;
	return GW_OK;
}

/* a provider config's max_connections when it is a whole number (as json_extract gives an
 * INTEGER only for one), else NULL */
#define PG_MAX_CONNECTIONS                                                      \
	"CASE WHEN (config::jsonb ->> 'max_connections') ~ '^-?[0-9]{1,9}$'"    \
	" AND jsonb_typeof(config::jsonb -> 'max_connections') = 'number'"      \
	" THEN (config::jsonb ->> 'max_connections')::bigint END"

/* org_connections - the max_connections of org's settings slot->provider (slot->def) */
static gw_rc org_connections(struct store *st, int64_t org, const struct store_slot *slot, int *cap)
{
	static const struct db_sql q = {{
	    "SELECT json_extract(config, '$.max_connections')"
	    " FROM provider_configs WHERE org_id = ?1 AND name = ?2",
	    "SELECT " PG_MAX_CONNECTIONS " FROM provider_configs WHERE org_id = ?1 AND name = ?2",
	}};
	struct db_stmt *s = store_stmt_d(st, &q);
	int r;

	*cap = slot->def;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	db_bind_text(s, 2, slot->provider, -1);
	r = db_step(s);
	if(r == DB_ROW && db_col_type(s, 0) == DB_INTEGER)
		*cap = db_col_int(s, 0);
	db_reset(s);
	db_clear(s);
	return r == DB_ROW || r == DB_DONE ? GW_OK : (store_rc(r) ? store_rc(r) : GW_EDB);
}

/* store_outbox_max_connections - the largest max_connections of a provider's settings */
gw_rc store_outbox_max_connections(struct store *st, const char *provider, int def, int *out)
{
	static const struct db_sql q = {{
	    "SELECT max(coalesce(json_extract(config, '$.max_connections'), ?2))"
	    " FROM provider_configs WHERE name = ?1",
	    "SELECT max(coalesce(" PG_MAX_CONNECTIONS ", ?2)) FROM provider_configs WHERE name = ?1",
	}};
	struct db_stmt *s = store_stmt_d(st, &q);
	int r;

	*out = def;
	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, provider, -1);
	db_bind_int64(s, 2, def);
	r = db_step(s);
	if(r == DB_ROW && db_col_type(s, 0) == DB_INTEGER)
		*out = db_col_int(s, 0);
	db_reset(s);
	db_clear(s);
	return r == DB_ROW ? GW_OK : (store_rc(r) ? store_rc(r) : GW_EDB);
}

/* pick_class - the ids of up to max due pending rows of class cls into ids, urgent first and
 * organisations taking turns (ids has room for max) */
static gw_rc pick_class(struct store *st, const char *cls, const struct store_slot *slot,
                        time_t now, int max, struct lease_pick *ids, int *nids)
{
	struct lease_org *orgs = NULL;
	struct db_stmt *s;
	gw_rc rc = GW_OK;
	int prio, norgs, i, r, round, full_at;
	int64_t *turn = NULL;

	/* the class's place in the turns (a class not seen yet takes a free slot, else the
	 * last: it then shares it, which only makes the turns less even) */
	for(i = 0; i < (int)GW_ARRAY_LEN(st->lease_turn) && !turn; i++) {
		if(!st->lease_turn[i].cls[0])
			snprintf(st->lease_turn[i].cls, sizeof(st->lease_turn[i].cls), "%s", cls);
		if(strcmp(st->lease_turn[i].cls, cls) == 0)
			turn = st->lease_turn[i].after;
	}
	if(!turn)
		turn = st->lease_turn[GW_ARRAY_LEN(st->lease_turn) - 1].after;
	orgs = calloc(LEASE_ORGS_MAX, sizeof(*orgs));
	if(!orgs)
		return GW_ENOMEM;
	for(prio = 0; prio < LEASE_PRIORITIES && *nids < max; prio++) {
		int active;

		/* at most LEASE_ORGS_MAX organisations per lease: those after the last one the
		 * previous lease reached, then from the start again (wrapping round), so that past
		 * that many every organisation still gets its turn */
		int64_t after = turn[prio], lo[2] = {after, INT64_MIN};
		int64_t hi[2] = {INT64_MAX, after};
		int pass;

		norgs = 0;
		for(pass = 0; pass < 2 && norgs < LEASE_ORGS_MAX; pass++) {
			if(pass == 1 && after == INT64_MIN)
				break;
			s = store_stmt(st, LEASE_ORGS_SQL);
			if(!s) {
				rc = GW_EDB;
				goto out;
			}
			db_bind_text(s, 1, cls, -1);
			db_bind_int64(s, 2, prio);
			db_bind_int64(s, 3, LEASE_ORGS_MAX - norgs);
			db_bind_int64(s, 4, lo[pass]);
			db_bind_int64(s, 5, hi[pass]);
			while((r = db_step(s)) == DB_ROW) {
				memset(&orgs[norgs], 0, sizeof(orgs[norgs]));
				orgs[norgs].org = db_col_int64(s, 0);
				orgs[norgs].at = INT64_MIN;
				orgs[norgs].more = true;
				norgs++;
			}
			db_reset(s);
			db_clear(s);
			if(r != DB_DONE) {
				rc = store_rc(r) ? store_rc(r) : GW_EDB;
				goto out;
			}
		}
		full_at = -1;
		/* an organisation that allows no more connections than the caller's number is
		 * served by the other connections */
		active = norgs;
		for(i = 0; slot && i < norgs; i++) {
			int cap, k;

			for(k = 0; k < slot->nskip && slot->skip[k] != orgs[i].org; k++)
				;
			if(k < slot->nskip) {
				orgs[i].more = false;
				active--;
				continue;
			}
			rc = org_connections(st, orgs[i].org, slot, &cap);
			if(rc)
				goto out;
			if(cap <= slot->index) {
				orgs[i].more = false;
				active--;
			}
		}
		/* rounds: each organisation still holding due rows gets an equal share of what is
		 * left; one that has fewer drops out, and the next round shares its room */
		round = 0;
		while(active > 0 && *nids < max) {
			int q = (max - *nids + active - 1) / active;

			for(i = 0; i < norgs && *nids < max; i++) {
				if(!orgs[i].more)
					continue;
				if(q > max - *nids)
					q = max - *nids;
				rc = pick_org_rows(st, cls, prio, &orgs[i], i, now, q, ids, nids);
				if(rc)
					goto out;
				if(!orgs[i].more)
					active--;
				if(round == 0 && *nids >= max && full_at < 0)
					full_at = i;
			}
			round++;
		}
		/* where the next lease starts: after the last organisation served when the batch
		 * filled before every one had its turn, after the last one listed when there were
		 * more than could be listed, else at the beginning */
		if(full_at >= 0 && full_at < norgs - 1)
			turn[prio] = orgs[full_at].org;
		else if(norgs == LEASE_ORGS_MAX)
			turn[prio] = orgs[norgs - 1].org;
		else
			turn[prio] = INT64_MIN;
	}
out:
	free(orgs);
	return rc;
}

/* lease_order - where a leased row goes in the batch: its position in the chosen ids */
static int lease_order(const struct lease_pick *ids, int n, int64_t id)
{
	int i;

	for(i = 0; i < n; i++)
		if(ids[i].id == id)
			return i;
	return n;
}

/* lease_cmp_pos - qsort by the position lease_rows stored in attempts' place */
struct lease_pos {
	int pos;
	struct store_lease l;
};
static int lease_cmp_pos(const void *a, const void *b)
{
	const struct lease_pos *x = a, *y = b;

	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* body_text - the shared body of a fan-out row, its payload and its message (one read per body
 * and lease: *cache_id, *cache and *cache_msg hold the last one, malloc'd or NULL, freed by the
 * caller) */
static gw_rc body_text(struct store *st, int64_t body, int64_t *cache_id, char **cache,
                       char **cache_msg)
{
	struct db_stmt *s =
	        store_stmt(st, "SELECT payload, message FROM outbox_bodies WHERE id = ?1");
	gw_rc rc = GW_OK;
	int r;

	if(*cache && *cache_id == body)
		return GW_OK;
	if(!s)
		return GW_EDB;
	free(*cache);
	free(*cache_msg);
	*cache = *cache_msg = NULL;
	db_bind_int64(s, 1, body);
	r = db_step(s);
	if(r == DB_ROW) {
		*cache = strdup(db_col_text(s, 0));
		*cache_msg = db_col_text(s, 1) ? strdup(db_col_text(s, 1)) : NULL;
		*cache_id = body;
		if(!*cache || (db_col_text(s, 1) && !*cache_msg))
			rc = GW_ENOMEM;
	} else {
		rc = r == DB_DONE ? GW_ENOTFOUND : (store_rc(r) ? store_rc(r) : GW_EDB);
	}
	db_reset(s);
	return rc;
}

/* lease_stmt - the lease's UPDATE or its read-back, bound: owner, expiry and the ids (a JSON
 * array) are ?1, ?2 and ?3 of both */
static struct db_stmt *lease_stmt(struct store *st, const struct db_sql *sql, const char *owner,
                                  time_t expires, const char *ids)
{
	struct db_stmt *s = store_stmt_d(st, sql);

	if(s) {
		db_bind_text(s, 1, owner, -1);
		db_bind_int64(s, 2, expires);
		db_bind_text(s, 3, ids, -1);
	}
	return s;
}

/* lease_rows - the lease inside the caller's transaction; l has room for max */
static gw_rc lease_rows(struct store *st, const char *owner, const char *pclass, const char *self,
                        const struct store_slot *slot, time_t now, int lease_secs, int max,
                        struct store_lease *l, int *got)
{
	struct db_stmt *s;
	struct id_list {
		struct lease_pick *v;
		int n;
	} ids = {NULL, 0};
	struct lease_pos *sorted = NULL;
	char classes[16][16];
	int nclasses = 0, c, r, i;
	int64_t body_id = 0;
	char *body = NULL, *body_msg = NULL, *list = NULL;
	size_t cap, used;
	gw_rc rc = GW_OK;

	*got = 0;
	ids.v = calloc((size_t)max, sizeof(*ids.v));
	if(!ids.v)
		return GW_ENOMEM;
	/* 1. leases of dead workers */
	s = store_stmt_d(st, &lease_stale_sql);
	if(!s) {
		rc = GW_EDB;
		goto out;
	}
	db_bind_int64(s, 1, now);
	store_bind_text(s, 2, pclass);
	store_bind_text(s, 3, self);
	db_bind_int64(s, 4, max);
	while((r = db_step(s)) == DB_ROW) {
		ids.v[ids.n].id = db_col_int64(s, 0);
		ids.v[ids.n].prio = -1;
		ids.v[ids.n].rank = ids.n;
		ids.n++;
	}
	db_reset(s);
	db_clear(s);
	if(r != DB_DONE) {
		rc = store_rc(r) ? store_rc(r) : GW_EDB;
		goto out;
	}
	/* 2. due rows, by priority and organisation, of the class (or of every class) */
	if(pclass) {
		snprintf(classes[0], sizeof(classes[0]), "%s", pclass);
		nclasses = 1;
	} else {
		s = store_stmt(st, LEASE_CLASSES_SQL);
		if(!s) {
			rc = GW_EDB;
			goto out;
		}
		while((r = db_step(s)) == DB_ROW && nclasses < 16)
			snprintf(classes[nclasses++], sizeof(classes[0]), "%s",
			         db_col_text(s, 0));
		db_reset(s);
		if(r != DB_DONE && r != DB_ROW) {
			rc = store_rc(r) ? store_rc(r) : GW_EDB;
			goto out;
		}
	}
	for(c = 0; c < nclasses && ids.n < max; c++) {
		rc = pick_class(st, classes[c], slot, now, max, ids.v, &ids.n);
		if(rc)
			goto out;
	}
	if(ids.n == 0)
		goto out;
	qsort(ids.v, (size_t)ids.n, sizeof(*ids.v), pick_cmp);
	/* 3. lease them: the ids as a JSON array for json_each */
	cap = (size_t)ids.n * 21 + 3;
	list = malloc(cap);
	if(!list) {
		rc = GW_ENOMEM;
		goto out;
	}
	used = 0;
	list[used++] = '[';
	for(i = 0; i < ids.n; i++)
		used += (size_t)snprintf(list + used, cap - used, "%s%lld", i ? "," : "",
		                         (long long)ids.v[i].id);
	list[used++] = ']';
	list[used] = '\0';
	s = lease_stmt(st, &lease_sql, owner, now + lease_secs, list);
	if(!s) {
		rc = GW_EDB;
		goto out;
	}
	r = db_step(s);
	db_reset(s);
	db_clear(s);
	if(r != DB_DONE) {
		rc = store_rc(r) ? store_rc(r) : GW_EDB;
		goto out;
	}
	s = lease_stmt(st, &leased_sql, owner, now + lease_secs, list);
	if(!s) {
		rc = GW_EDB;
		goto out;
	}
	while((r = db_step(s)) == DB_ROW && *got < max) {
		struct store_lease *x = &l[*got];
		x->id = db_col_int64(s, 0);
		x->org_id = db_col_int64(s, 1);
		x->booking_id = db_col_int64(s, 2);
		x->request_id = db_col_int64(s, 3);
		snprintf(x->kind, sizeof(x->kind), "%s", db_col_text(s, 4));
		snprintf(x->provider_class, sizeof(x->provider_class), "%s",
		         db_col_text(s, 5));
		x->payload = strdup(db_col_text(s, 6));
		x->attempts = db_col_int(s, 7);
		x->deadline = (time_t)db_col_int64(s, 8);
		x->created_at = (time_t)db_col_int64(s, 9);
		x->next_attempt_at = (time_t)db_col_int64(s, 10);
		snprintf(x->dedupe_key, sizeof(x->dedupe_key), "%s", db_col_text(s, 11));
		x->body_id = db_col_int64(s, 12);
		x->priority = db_col_int(s, 13);
		x->rcpt = db_col_text(s, 14) ? strdup(db_col_text(s, 14)) : NULL;
		/* the message rendered at enqueue (an email row with a recipient), or NULL */
		x->message = x->rcpt && db_col_text(s, 15) ? strdup(db_col_text(s, 15)) : NULL;
		x->body_message = NULL;
		x->failed_before = db_col_int(s, 16) != 0;
		(*got)++;
		if(!x->payload || (db_col_text(s, 14) && !x->rcpt) ||
		   (x->rcpt && db_col_text(s, 15) && !x->message)) {
			rc = GW_ENOMEM;
			break;
		}
	}
	db_reset(s);
	db_clear(s);
	if(!rc && r != DB_DONE && r != DB_ROW)
		rc = store_rc(r) ? store_rc(r) : GW_EDB;
	if(rc)
		goto out;
	/* the rows come in no set order: back into the order chosen above */
	sorted = calloc((size_t)*got, sizeof(*sorted));
	if(!sorted) {
		rc = GW_ENOMEM;
		goto out;
	}
	for(i = 0; i < *got; i++) {
		sorted[i].pos = lease_order(ids.v, ids.n, l[i].id);
		sorted[i].l = l[i];
	}
	qsort(sorted, (size_t)*got, sizeof(*sorted), lease_cmp_pos);
	for(i = 0; i < *got; i++)
		l[i] = sorted[i].l;
	/* a fan-out row's body with its own fills */
	for(i = 0; !rc && i < *got; i++) {
		struct store_lease *x = &l[i];
		char *whole = NULL;

		if(!x->body_id)
			continue;
		rc = body_text(st, x->body_id, &body_id, &body, &body_msg);
		if(!rc && x->message) {
			/* rendered at enqueue: the sender puts the fills in the body's message, and
			 * the JSON payload stays the fills (nothing reads it on the way out) */
			if(!body_msg)
				continue; /* damaged: the sender refuses it (dead) */
			x->body_message = strdup(body_msg);
			if(!x->body_message)
				rc = GW_ENOMEM;
			continue;
		}
		if(!rc)
			rc = store_outbox_expand(body, x->payload, &whole);
		if(rc == GW_EINVAL || rc == GW_ENOTFOUND) {
			/* a damaged row: handed over as it is; the provider refuses it (dead) */
			rc = GW_OK;
			continue;
		}
		if(rc)
			break;
		free(x->payload);
		x->payload = whole;
	}
out:
	free(sorted);
	free(list);
	free(body);
	free(body_msg);
	free(ids.v);
	return rc;
}

static const char *const outcome_status[] = {
        [STORE_SENT] = "sent",       [STORE_RETRY] = "pending",   [STORE_DEAD] = "dead",
        [STORE_EXPIRED] = "expired", [STORE_SKIPPED] = "skipped", [STORE_DEFER] = "pending",
        [STORE_HELD] = "held",
};
static const char *const outcome_name[] = {
        [STORE_SENT] = "sent",       [STORE_RETRY] = "failed",    [STORE_DEAD] = "dead",
        [STORE_EXPIRED] = "expired", [STORE_SKIPPED] = "skipped", [STORE_DEFER] = "deferred",
        [STORE_HELD] = "held",
};

/* tried - whether a result counts as an attempt: an expired, skipped or deferred row was never
 * tried; a held one only when its send found the grant revoked */
static int tried(const struct store_result *x)
{
	return x->outcome != STORE_EXPIRED && x->outcome != STORE_SKIPPED &&
	       x->outcome != STORE_DEFER && (x->outcome != STORE_HELD || x->cal_revoked);
}

/* finish_hooks - what a recorded result leaves beside its row: the calendar and Zoho result
 * hooks, and a just-held row's check */
static gw_rc finish_hooks(struct store *st, const struct store_result *x, time_t now)
{
	gw_rc rc = GW_OK;

	if(x->cal_event_id[0] || x->cal_revoked)
		rc = store_calendar_hook(st, x, now);
	if(!rc && x->zoho_hook)
		rc = store_zoho_hook(st, x, now);
	if(!rc && x->outcome == STORE_HELD)
		rc = store_calendar_hold_check(st, x->id, now);
	return rc;
}

/* The whole batch in one statement on PostgreSQL, where each statement is a round trip to the
 * server: the rows still leased by owner take their results, their attempt rows are written
 * and the messages of the finished ones deleted, as finish_rows does row by row; the ids it
 * changed come back (a row whose lease was lost to another gateway is not among them, and its
 * result is not recorded). Each worker's finish held the write lock for 3 statements a row
 * before: 96 round trips a batch of 32. */
static const char finish_set_sql[] =
        "WITH v AS (SELECT * FROM jsonb_to_recordset(?3::jsonb) AS x(id bigint, st text,"
        " tried int, rec int, nx bigint, err text, prov text, t0 bigint, t1 bigint,"
        " oc text, red text)),"
        " u AS (UPDATE outbox o SET status = v.st, lease_owner = NULL, lease_expires_at = NULL,"
        " attempts = o.attempts + v.tried, next_attempt_at = coalesce(v.nx, o.next_attempt_at),"
        " payload = coalesce(v.red, o.payload), payload_state = CASE WHEN v.red IS NULL"
        " THEN o.payload_state ELSE 'redacted' END,"
        " last_error = CASE WHEN v.st = 'sent' THEN o.last_error"
        " ELSE coalesce(v.err, o.last_error) END, provider = coalesce(v.prov, o.provider),"
        " sent_at = CASE WHEN v.st = 'sent' THEN ?2 ELSE o.sent_at END FROM v"
        " WHERE o.id = v.id AND o.status = 'leased' AND o.lease_owner = ?1"
        " RETURNING o.id, o.attempts),"
        " a AS (INSERT INTO delivery_attempts(outbox_id, attempt, provider, started_ms,"
        " finished_ms, outcome, detail) SELECT u.id, u.attempts, v.prov, v.t0, v.t1, v.oc, v.err"
        " FROM u JOIN v ON v.id = u.id WHERE v.tried = 1 OR v.rec = 1),"
        " d AS (DELETE FROM outbox_messages WHERE outbox_id IN (SELECT u.id FROM u JOIN v"
        " ON v.id = u.id WHERE v.st IN ('sent', 'expired', 'skipped')))"
        " SELECT id FROM u";

/* opt_string - a JSON string of s, null for NULL; NULL when s is not UTF-8 (*bad set) */
static json_t *opt_string(const char *s, bool *bad)
{
	json_t *j = s ? json_string(s) : json_null();

	if(!j)
		*bad = true;
	return j;
}

/* set_text - the rows of a set statement (a JSON array, taken over) as its parameter's text;
 * rc is what building the array gave, kept when not GW_OK. *text malloc'd: caller frees. */
static gw_rc set_text(json_t *list, gw_rc rc, char **text)
{
	if(!list)
		rc = GW_ENOMEM;
	if(!rc && !(*text = json_dumps(list, JSON_COMPACT)))
		rc = GW_ENOMEM;
	json_decref(list);
	return rc;
}

/* finish_set - finish_rows in one statement (PostgreSQL); GW_EINVAL, with nothing written,
 * when a result cannot go into JSON (a detail that is not UTF-8): the caller goes row by row */
static gw_rc finish_set(struct store *st, const char *owner, const struct store_result *r, int n,
                        time_t now)
{
	json_t *list = json_array();
	struct db_stmt *s;
	bool *done = NULL, bad = false;
	char *text = NULL;
	gw_rc rc = GW_OK;
	int i, x;

	for(i = 0; list && !bad && i < n; i++) {
		const struct store_result *e = &r[i];
		json_t *o = json_object();
		bool nx = e->outcome == STORE_RETRY || e->outcome == STORE_DEFER;

		if(!o || json_array_append_new(list, o) ||
		   json_object_set_new(o, "id", json_integer(e->id)) ||
		   json_object_set_new(o, "st", json_string(outcome_status[e->outcome])) ||
		   json_object_set_new(o, "tried", json_integer(tried(e))) ||
		   json_object_set_new(o, "rec", json_integer(e->hold_try)) ||
		   json_object_set_new(o, "nx", nx ? json_integer(e->next_attempt_at) : json_null()) ||
		   json_object_set_new(o, "err", opt_string(e->detail, &bad)) ||
		   json_object_set_new(o, "prov", opt_string(e->provider, &bad)) ||
		   json_object_set_new(o, "t0", json_integer(e->started_ms)) ||
		   json_object_set_new(o, "t1", json_integer(e->finished_ms)) ||
		   json_object_set_new(o, "oc", json_string(outcome_name[e->outcome])) ||
		   json_object_set_new(o, "red", opt_string(e->redacted, &bad))) {
			rc = bad ? GW_EINVAL : GW_ENOMEM;
			break;
		}
	}
	rc = set_text(list, rc, &text);
	if(!rc && !(done = calloc((size_t)n, sizeof(*done))))
		rc = GW_ENOMEM;
	if(rc)
		goto out;
	if(!(s = store_stmt(st, finish_set_sql))) {
		rc = GW_EDB;
		goto out;
	}
	db_bind_text(s, 1, owner, -1);
	db_bind_int64(s, 2, now);
	db_bind_text(s, 3, text, -1);
	while((x = db_step(s)) == DB_ROW) {
		int64_t id = db_col_int64(s, 0);

		for(i = 0; i < n; i++)
			if(r[i].id == id)
				done[i] = true;
	}
	db_reset(s);
	db_clear(s);
	if(x != DB_DONE) {
		rc = store_rc(x) ? store_rc(x) : GW_EDB;
		goto out;
	}
	/* the hooks of the rows recorded; the others' leases were lost: their results stand */
	for(i = 0; i < n && !rc; i++)
		if(done[i])
			rc = finish_hooks(st, &r[i], now);
out:
	free(text);
	free(done);
	return rc;
}

/* A set of rows in one statement on PostgreSQL (a fan-out's slice: a round trip for all of
 * them instead of two a row): each row's dedupe key is taken with an id drawn for it, in the
 * set's order, and only the rows whose key was new are inserted, with their messages, as
 * store_outbox_enqueue does one at a time. DISTINCT ON: a key twice in one set counts once. */
static const char enqueue_set_sql[] =
        "WITH i AS (SELECT DISTINCT ON (x.org_id, x.dedupe_key) x.* FROM"
        " jsonb_to_recordset(?1::jsonb) AS x(n bigint, org_id bigint, kind text,"
        " provider_class text, dedupe_key text, request_id bigint, booking_id bigint,"
        " payload text, next_attempt_at bigint, deadline_at bigint, created_at bigint,"
        " body_id bigint, priority bigint, rcpt text, message text)"
        " ORDER BY x.org_id, x.dedupe_key, x.n),"
        " k AS (INSERT INTO dedupe_keys(org_id, key, outbox_id, created_at)"
        " SELECT org_id, dedupe_key, nextval(pg_get_serial_sequence('outbox', 'id')),"
        " created_at FROM (SELECT * FROM i ORDER BY n) j ON CONFLICT DO NOTHING"
        " RETURNING org_id, key, outbox_id),"
        " o AS (INSERT INTO outbox(id, org_id, kind, provider_class, dedupe_key, request_id,"
        " booking_id, payload, status, next_attempt_at, deadline_at, created_at, body_id,"
        " priority, rcpt) SELECT k.outbox_id, i.org_id, i.kind, i.provider_class,"
        " i.dedupe_key, i.request_id, i.booking_id, i.payload, 'pending', i.next_attempt_at,"
        " i.deadline_at, i.created_at, i.body_id, i.priority, i.rcpt FROM k JOIN i"
        " ON i.org_id = k.org_id AND i.dedupe_key = k.key RETURNING id),"
        " m AS (INSERT INTO outbox_messages(outbox_id, message) SELECT k.outbox_id, i.message"
        " FROM k JOIN i ON i.org_id = k.org_id AND i.dedupe_key = k.key"
        " WHERE i.message IS NOT NULL)"
        " SELECT count(*) FROM o";

/* opt_id - an id as JSON, null for 0 */
static json_t *opt_id(int64_t v)
{
	return v ? json_integer(v) : json_null();
}

/* enqueue_set - store_outbox_enqueue_set in one statement (PostgreSQL); GW_EINVAL, with
 * nothing written, when a row cannot go into JSON (text that is not UTF-8): the caller goes
 * one row at a time */
static gw_rc enqueue_set(struct store *st, const struct store_effect *e, int n, time_t now,
                         int *inserted)
{
	json_t *list = json_array();
	struct db_stmt *s;
	bool bad = false;
	char *text = NULL;
	gw_rc rc = GW_OK;
	int i, x;

	for(i = 0; list && !bad && i < n; i++) {
		const struct store_effect *f = &e[i];
		json_t *o = json_object();

		if(!o || json_array_append_new(list, o) ||
		   json_object_set_new(o, "n", json_integer(i)) ||
		   json_object_set_new(o, "org_id", json_integer(f->org_id)) ||
		   json_object_set_new(o, "kind", opt_string(f->kind, &bad)) ||
		   json_object_set_new(o, "provider_class", opt_string(f->provider_class, &bad)) ||
		   json_object_set_new(o, "dedupe_key", opt_string(f->dedupe_key, &bad)) ||
		   json_object_set_new(o, "request_id", opt_id(f->request_id)) ||
		   json_object_set_new(o, "booking_id", opt_id(f->booking_id)) ||
		   json_object_set_new(o, "payload", opt_string(f->payload, &bad)) ||
		   json_object_set_new(o, "next_attempt_at",
		                       json_integer(f->not_before > now ? f->not_before : now)) ||
		   json_object_set_new(o, "deadline_at", opt_id(f->deadline > 0 ? f->deadline : 0)) ||
		   json_object_set_new(o, "created_at", json_integer(now)) ||
		   json_object_set_new(o, "body_id", opt_id(f->body_id)) ||
		   json_object_set_new(o, "priority", json_integer(store_outbox_priority(f->kind))) ||
		   json_object_set_new(o, "rcpt", opt_string(f->message ? f->rcpt : NULL, &bad)) ||
		   json_object_set_new(o, "message", opt_string(f->message, &bad))) {
			rc = bad ? GW_EINVAL : GW_ENOMEM;
			break;
		}
	}
	rc = set_text(list, rc, &text);
	if(rc)
		goto out;
	if(!(s = store_stmt(st, enqueue_set_sql))) {
		rc = GW_EDB;
		goto out;
	}
	db_bind_text(s, 1, text, -1);
	x = db_step(s);
	if(x == DB_ROW)
		*inserted = db_col_int(s, 0);
	db_reset(s);
	db_clear(s);
	if(x != DB_ROW)
		rc = store_rc(x) ? store_rc(x) : GW_EDB;
out:
	free(text);
	return rc;
}

/* store_outbox_enqueue_set - store_outbox_enqueue for each of n effects */
gw_rc store_outbox_enqueue_set(struct store *st, const struct store_effect *e, int n, time_t now,
                               int *inserted)
{
	gw_rc rc = GW_OK;
	int i, got = 0;
	bool ins;

	if(inserted)
		*inserted = 0;
	if(n <= 0)
		return GW_OK;
	if(st->ops->dialect == DB_POSTGRES && n > 1) {
		rc = enqueue_set(st, e, n, now, &got);
		if(rc != GW_EINVAL) {
			if(!rc && got > 0) {
				st->enqueued = true;
				if(!st->ops->in_txn(st->db))
					store_outbox_announce(st);
			}
			if(inserted)
				*inserted = got;
			return rc;
		}
		rc = GW_OK;
	}
	for(i = 0; i < n && !rc; i++) {
		rc = store_outbox_enqueue(st, &e[i], now, &ins, NULL);
		got += !rc && ins;
	}
	if(inserted)
		*inserted = got;
	return rc;
}

/* finish_rows - record results, with their attempt rows, inside the caller's transaction */
static gw_rc finish_rows(struct store *st, const char *owner, const struct store_result *r, int n,
                         time_t now)
{
	struct db_stmt *u = store_stmt(
	        st, "UPDATE outbox SET status = ?3, lease_owner = NULL, lease_expires_at = NULL,"
	            " attempts = attempts + ?4, next_attempt_at = coalesce(?5, next_attempt_at),"
	            " last_error = CASE WHEN ?3 = 'sent' THEN last_error"
	            " ELSE coalesce(?6, last_error) END,"
	            " provider = coalesce(?7, provider), sent_at = CASE WHEN ?3 = 'sent' THEN ?8 ELSE"
	            " sent_at END, payload = coalesce(?9, payload), payload_state = CASE WHEN ?9"
	            " IS NULL THEN payload_state ELSE 'redacted' END"
	            " WHERE id = ?1 AND status = 'leased' AND lease_owner = ?2");
	/* the attempt number read back by the INSERT, not by RETURNING on the UPDATE: SQLite
	 * builds an ephemeral table for RETURNING, a few microseconds a row at full speed */
	struct db_stmt *a = store_stmt(
	        st, "INSERT INTO delivery_attempts(outbox_id, attempt, provider, started_ms,"
	            " finished_ms, outcome, detail) SELECT ?1, attempts, ?2, ?3, ?4, ?5, ?6"
	            " FROM outbox WHERE id = ?1");
	/* the same with the number the dispatcher knew (the lease's attempts + 1): no read */
	struct db_stmt *av = store_stmt(
	        st, "INSERT INTO delivery_attempts(outbox_id, attempt, provider, started_ms,"
	            " finished_ms, outcome, detail) VALUES(?1, ?7, ?2, ?3, ?4, ?5, ?6)");
	struct db_stmt *dm = store_stmt(st, "DELETE FROM outbox_messages WHERE outbox_id = ?1");
	struct db_stmt *ins;
	gw_rc rc = GW_OK;
	int i, x;

	if(!u || !a || !av || !dm)
		return GW_EDB;
	if(st->ops->dialect == DB_POSTGRES && (rc = finish_set(st, owner, r, n, now)) != GW_EINVAL)
		return rc;
	rc = GW_OK;
	for(i = 0; i < n; i++) {
		int was_tried = tried(&r[i]);

		db_reset(u);
		db_clear(u);
		db_bind_int64(u, 1, r[i].id);
		db_bind_text(u, 2, owner, -1);
		db_bind_text(u, 3, outcome_status[r[i].outcome], -1);
		db_bind_int64(u, 4, was_tried);
		if(r[i].outcome == STORE_RETRY || r[i].outcome == STORE_DEFER)
			db_bind_int64(u, 5, r[i].next_attempt_at);
		store_bind_text(u, 6, r[i].detail);
		store_bind_text(u, 7, r[i].provider);
		db_bind_int64(u, 8, now);
		store_bind_text(u, 9, r[i].redacted);
		x = db_step(u);
		db_reset(u);
		if(x != DB_DONE) {
			rc = store_rc(x) ? store_rc(x) : GW_EDB;
			break;
		}
		if(db_changes(st) == 0)
			continue; /* the lease was lost to another worker: its result stands */
		/* a finished email's message goes (it holds the link tokens): what stays is the
		 * payload, redacted by the next store_outbox_redact */
		if(r[i].outcome == STORE_SENT || r[i].outcome == STORE_EXPIRED ||
		   r[i].outcome == STORE_SKIPPED) {
			db_bind_int64(dm, 1, r[i].id);
			x = db_step(dm);
			db_reset(dm);
			if(x != DB_DONE) {
				rc = store_rc(x) ? store_rc(x) : GW_EDB;
				break;
			}
		}
		if((rc = finish_hooks(st, &r[i], now)))
			break;
		if(!was_tried && !r[i].hold_try)
			continue;
		ins = r[i].attempt > 0 ? av : a;
		db_reset(ins);
		db_clear(ins);
		db_bind_int64(ins, 1, r[i].id);
		store_bind_text(ins, 2, r[i].provider);
		db_bind_int64(ins, 3, r[i].started_ms);
		db_bind_int64(ins, 4, r[i].finished_ms);
		db_bind_text(ins, 5, outcome_name[r[i].outcome], -1);
		store_bind_text(ins, 6, r[i].detail);
		if(ins == av)
			db_bind_int64(ins, 7, r[i].attempt);
		x = db_step(ins);
		db_reset(ins);
		if(x != DB_DONE) {
			rc = store_rc(x) ? store_rc(x) : GW_EDB;
			break;
		}
	}
	db_reset(u);
	return rc;
}

/* store_outbox_lease - lease a batch of due rows in one transaction */
gw_rc store_outbox_lease(struct store *st, const char *owner, time_t now, int lease_secs, int max,
                         struct store_lease **out, int *n)
{
	return store_outbox_cycle(st, owner, NULL, 0, now, NULL, NULL, lease_secs, max, out, n,
	                          NULL);
}

/* store_outbox_lease_class - lease a batch of due rows of one provider class */
gw_rc store_outbox_lease_class(struct store *st, const char *owner, const char *pclass,
                               const char *self, time_t now, int lease_secs, int max,
                               struct store_lease **out, int *n)
{
	return store_outbox_cycle(st, owner, NULL, 0, now, pclass, self, lease_secs, max, out, n,
	                          NULL);
}

/* store_outbox_finish - record a batch of results in one transaction */
gw_rc store_outbox_finish(struct store *st, const char *owner, const struct store_result *r, int n,
                          time_t now)
{
	return store_outbox_cycle(st, owner, r, n, now, NULL, NULL, 0, 0, NULL, NULL, NULL);
}

/* store_outbox_cycle - finish one batch and lease the next in one transaction */
gw_rc store_outbox_cycle(struct store *st, const char *owner, const struct store_result *r, int n,
                         time_t now, const char *pclass, const char *self, int lease_secs, int max,
                         struct store_lease **out, int *m, const struct store_slot *slot)
{
	struct store_lease *l = NULL;
	int got = 0;
	gw_rc rc;

	if(out)
		*out = NULL;
	if(m)
		*m = 0;
	if(out && max > 0) {
		l = calloc((size_t)max, sizeof(*l));
		if(!l)
			return GW_ENOMEM;
	}
	rc = store_begin(st);
	if(rc)
		goto out;
	if(n > 0)
		rc = finish_rows(st, owner, r, n, now);
	if(!rc && l)
		rc = lease_rows(st, owner, pclass, self, slot, now, lease_secs, max, l, &got);
	if(rc) {
		store_rollback(st);
		goto out;
	}
	rc = store_commit(st);
	if(rc)
		goto out;
	if(out && got > 0) {
		*out = l; /* with no row, *out stays NULL */
		*m = got;
		l = NULL;
	}
out:
	store_leases_free(l, got);
	return rc;
}

/* store_outbox_release - hand leased rows back for shutdown */
gw_rc store_outbox_release(struct store *st, const char *owner)
{
	struct db_stmt *s = store_stmt(st, "UPDATE outbox SET status = 'pending', lease_owner = NULL,"
	                                 " lease_expires_at = NULL"
	                                 " WHERE status = 'leased' AND lease_owner = ?1");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_text(s, 1, owner, -1);
	r = db_step(s);
	db_reset(s);
	return r == DB_DONE ? GW_OK : GW_EDB;
}

/* store_outbox_list - deliveries, newest first */
gw_rc store_outbox_list(struct store *st, int64_t org, const char *status, int limit, json_t **out)
{
	/* one organisation's: newest first along outbox_org (org_id, id), so that a small
	 * organisation's list does not read past every other one's rows; every organisation's
	 * (org 0, the platform) along the table itself. The dead ones (what an administrator
	 * looks for among everything sent) along outbox_dead: the status is written in the text,
	 * as a partial index is only taken for the terms of its own WHERE (SQLite is told it). */
#define LIST_COLS                                                                          \
	"SELECT id, org_id, kind, provider_class, provider, dedupe_key, status, attempts," \
	" last_error, created_at, sent_at, next_attempt_at, request_id, booking_id FROM outbox"
#define LIST_SQL(WHERE)                                                      \
	LIST_COLS " WHERE " WHERE "(?2 IS NULL OR status = ?2) ORDER BY id DESC" \
	          " LIMIT ?3"
#define DEAD_SQL(WHERE)                                                                  \
	{{LIST_COLS " INDEXED BY outbox_dead WHERE " WHERE "status = 'dead' AND ?2 = 'dead'" \
	            " ORDER BY id DESC LIMIT ?3",                                            \
	  LIST_COLS " WHERE " WHERE "status = 'dead' AND ?2 = 'dead' ORDER BY id DESC LIMIT ?3"}}
	static const struct db_sql dead_org = DEAD_SQL("org_id = ?1 AND "),
	                           dead_all = DEAD_SQL("?1 = 0 AND ");
	bool dead = status && strcmp(status, "dead") == 0;
	struct db_stmt *s = dead  ? store_stmt_d(st, org ? &dead_org : &dead_all)
	                    : org ? store_stmt(st, LIST_SQL("org_id = ?1 AND "))
	                          : store_stmt(st, LIST_SQL("?1 = 0 AND "));
#undef DEAD_SQL
#undef LIST_SQL
#undef LIST_COLS
	json_t *list = json_array();
	int r;

	*out = NULL;
	if(!s || !list) {
		json_decref(list);
		return s ? GW_ENOMEM : GW_EDB;
	}
	db_bind_int64(s, 1, org);
	store_bind_text(s, 2, status);
	db_bind_int64(s, 3, limit);
	while((r = db_step(s)) == DB_ROW) {
		json_t *row = json_pack(
		        "{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:o, s:o}",
		        "id", (json_int_t)db_col_int64(s, 0), "org_id",
		        (json_int_t)db_col_int64(s, 1), "kind", store_col_text(s, 2),
		        "provider_class", store_col_text(s, 3), "provider", store_col_text(s, 4),
		        "dedupe_key", store_col_text(s, 5), "status", store_col_text(s, 6),
		        "attempts", db_col_int(s, 7), "last_error", store_col_text(s, 8),
		        "created_at", store_col_time(s, 9), "sent_at", store_col_time(s, 10),
		        "next_attempt_at", store_col_time(s, 11), "request_id",
		        db_col_type(s, 12) == DB_NULL
		                ? json_null()
		                : json_integer(db_col_int64(s, 12)),
		        "booking_id",
		        db_col_type(s, 13) == DB_NULL
		                ? json_null()
		                : json_integer(db_col_int64(s, 13)));
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

const char *const store_outbox_states[] = {"pending", "leased",  "sent", "dead",
                                           "skipped", "expired", "held", NULL};

/* store_outbox_email_due - org's failed-and-waiting email rows due at once */
gw_rc store_outbox_email_due(struct store *st, int64_t org, int *n)
{
	/* due since enqueued, as store_outbox_retry makes a row; through outbox_queue (the
	 * organisation's pending rows of each priority, not its whole history) */
	struct db_stmt *s = store_stmt(
	        st, "UPDATE outbox SET next_attempt_at = created_at WHERE status = 'pending'"
	            " AND provider_class = 'email' AND priority IN (0, 1) AND org_id = ?1"
	            " AND last_error IS NOT NULL AND next_attempt_at > created_at");
	int r;

	if(n)
		*n = 0;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, org);
	r = db_step(s);
	db_reset(s);
	if(r != DB_DONE)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	if(n)
		*n = db_changes(st);
	return GW_OK;
}

/* store_outbox_email_hold - up to max of org's email rows due at now wait to until, untried */
gw_rc store_outbox_email_hold(struct store *st, int64_t org, time_t now, time_t until,
                              const char *detail, int max, int *n)
{
	/* through outbox_queue: the organisation's due rows of each priority, the range a row
	 * leaves once moved to until, so that each chunk reads only rows it moves. A row leased
	 * meanwhile (by another gateway) keeps its lease: status is read again by the UPDATE. */
	struct db_stmt *s = store_stmt(
	        st, "UPDATE outbox SET next_attempt_at = ?3, last_error = ?4 WHERE id IN"
	            " (SELECT id FROM outbox WHERE status = 'pending' AND provider_class = 'email'"
	            " AND priority IN (0, 1) AND org_id = ?1 AND next_attempt_at <= ?2 LIMIT ?5)"
	            " AND status = 'pending' AND next_attempt_at <= ?2");
	gw_rc rc;
	int r;

	*n = 0;
	if(!s)
		return GW_EDB;
	if((rc = store_begin(st)))
		return rc;
	db_bind_int64(s, 1, org);
	db_bind_int64(s, 2, now);
	db_bind_int64(s, 3, until);
	db_bind_text(s, 4, detail, -1);
	db_bind_int64(s, 5, max);
	r = db_step(s);
	db_reset(s);
	db_clear(s);
	if(r != DB_DONE) {
		store_rollback(st);
		return store_rc(r) ? store_rc(r) : GW_EDB;
	}
	*n = db_changes(st);
	return store_commit(st);
}

/* store_outbox_retry - a dead or expired row back to pending */
gw_rc store_outbox_retry(struct store *st, int64_t org, int64_t id, bool *gone)
{
	struct db_stmt *s = store_stmt(
	        /* a retried row starts the backoff schedule afresh (delivery_attempts keeps every
	         * earlier try): one more transient failure must not dead-letter it at once. It is
	         * due as soon as possible, whatever clock the caller keeps: due since it was
	         * enqueued, which no running gateway's clock (a test clock included) is before, and
	         * so ahead of rows whose turn came later. A row whose content the retention took
	         * (store_outbox_redact: its links and message are gone) is not sent again: what
	         * would go out is not what was meant. */
	        st, "UPDATE outbox SET status = 'pending', next_attempt_at = created_at,"
	            " deadline_at = NULL, attempts = 0"
	            " WHERE id = ?1 AND (?2 = 0 OR org_id = ?2) AND status IN ('dead', 'expired')"
	            " AND payload_state IS NULL");
	struct db_stmt *e = store_stmt(st, "SELECT 1 FROM outbox WHERE id = ?1 AND (?2 = 0 OR"
	                                 " org_id = ?2)");
	struct db_stmt *g = store_stmt(st, "SELECT 1 FROM outbox WHERE id = ?1 AND (?2 = 0 OR"
	                                 " org_id = ?2) AND status IN ('dead', 'expired')"
	                                 " AND payload_state IS NOT NULL");
	gw_rc rc;
	int r;

	if(gone)
		*gone = false;
	if(!s || !e || !g)
		return GW_EDB;
	db_bind_int64(s, 1, id);
	db_bind_int64(s, 2, org);
	db_bind_int64(e, 1, id);
	db_bind_int64(e, 2, org);
	rc = store_cond_update(st, s, e, GW_ESTATE);
	if(rc != GW_ESTATE || !gone)
		return rc;
	db_bind_int64(g, 1, id);
	db_bind_int64(g, 2, org);
	r = db_step(g);
	db_reset(g);
	if(r != DB_ROW && r != DB_DONE)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	*gone = r == DB_ROW;
	return rc;
}

/* store_outbox_next_due - earliest pending next_attempt_at */
gw_rc store_outbox_next_due(struct store *st, time_t *at)
{
	struct db_stmt *s = store_stmt(st, "SELECT min(next_attempt_at) FROM outbox"
	                                 " WHERE status = 'pending'");
	int r;

	*at = 0;
	if(!s)
		return GW_EDB;
	r = db_step(s);
	if(r == DB_ROW && db_col_type(s, 0) != DB_NULL)
		*at = (time_t)db_col_int64(s, 0);
	db_reset(s);
	return r == DB_ROW ? GW_OK : GW_EDB;
}

/* store_outbox_expire_request - expire pending rows of one kind for a request */
gw_rc store_outbox_expire_request(struct store *st, int64_t request, const char *kind)
{
	struct db_stmt *s =
	        store_stmt(st, "UPDATE outbox SET status = 'expired',"
	                       " last_error = 'request no longer open'"
	                       " WHERE request_id = ?1 AND kind = ?2 AND status = 'pending'");
	int r;

	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, request);
	db_bind_text(s, 2, kind, -1);
	r = db_step(s);
	db_reset(s);
	return r == DB_DONE ? GW_OK : GW_EDB;
}

/* store_outbox_counts - row counts by status, kind and class */
gw_rc store_outbox_counts(struct store *st, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT status, kind, provider_class, count(*) FROM outbox"
	                                 " GROUP BY status, kind, provider_class");
	json_t *obj = json_object();
	char key[128];
	int r;

	*out = NULL;
	if(!s || !obj) {
		json_decref(obj);
		return s ? GW_ENOMEM : GW_EDB;
	}
	while((r = db_step(s)) == DB_ROW) {
		snprintf(key, sizeof(key), "%s|%s|%s", db_col_text(s, 0),
		         db_col_text(s, 1), db_col_text(s, 2));
		json_object_set_new(obj, key, json_integer(db_col_int64(s, 3)));
	}
	db_reset(s);
	if(r != DB_DONE) {
		json_decref(obj);
		return GW_EDB;
	}
	*out = obj;
	return GW_OK;
}

/* store_outbox_lease_owners - distinct owners of leased rows */
gw_rc store_outbox_lease_owners(struct store *st, json_t **out)
{
	struct db_stmt *s = store_stmt(st, "SELECT DISTINCT lease_owner FROM outbox"
	                                 " WHERE status = 'leased' AND lease_owner IS NOT NULL");
	json_t *list = json_array();
	int r;

	*out = NULL;
	if(!s || !list) {
		json_decref(list);
		return s ? GW_ENOMEM : GW_EDB;
	}
	while((r = db_step(s)) == DB_ROW)
		json_array_append_new(list, store_col_text(s, 0));
	db_reset(s);
	if(r != DB_DONE) {
		json_decref(list);
		return store_rc(r) ? store_rc(r) : GW_EDB;
	}
	*out = list;
	return GW_OK;
}

/* store_outbox_booking_state - status and sequence of a booking */
gw_rc store_outbox_booking_state(struct store *st, int64_t booking, char *status, size_t n,
                                 int *sequence)
{
	struct db_stmt *s = store_stmt(st, "SELECT status, sequence FROM bookings WHERE id = ?1");
	gw_rc rc = GW_OK;
	int r;

	if(n)
		status[0] = '\0';
	*sequence = 0;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, booking);
	r = db_step(s);
	if(r == DB_ROW) {
		snprintf(status, n, "%s", db_col_text(s, 0));
		*sequence = db_col_int(s, 1);
	} else if(r == DB_DONE) {
		rc = GW_ENOTFOUND;
	} else {
		rc = store_rc(r) ? store_rc(r) : GW_EDB;
	}
	db_reset(s);
	return rc;
}

/* store_outbox_depth - queue depth and the oldest due row */
gw_rc store_outbox_depth(struct store *st, time_t now, int64_t *pending, time_t *oldest_due)
{
	/* the pending rows are outbox_due (partial: pending, by next_attempt_at), the leased ones
	 * outbox_lease (partial: leased); the oldest due row a range of outbox_due */
	struct db_stmt *c = store_stmt(st, "SELECT (SELECT count(*) FROM outbox"
	                                 " WHERE status = 'pending') + (SELECT count(*)"
	                                 " FROM outbox WHERE status = 'leased')");
	struct db_stmt *m = store_stmt(st, "SELECT min(next_attempt_at) FROM outbox"
	                                 " WHERE status = 'pending' AND next_attempt_at <= ?1");
	int r;

	*pending = 0;
	*oldest_due = 0;
	if(!c || !m)
		return GW_EDB;
	r = db_step(c);
	if(r == DB_ROW)
		*pending = db_col_int64(c, 0);
	db_reset(c);
	if(r != DB_ROW)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	db_bind_int64(m, 1, now);
	r = db_step(m);
	if(r == DB_ROW && db_col_type(m, 0) != DB_NULL)
		*oldest_due = (time_t)db_col_int64(m, 0);
	db_reset(m);
	return r == DB_ROW ? GW_OK : (store_rc(r) ? store_rc(r) : GW_EDB);
}

/* store_outbox_due_upto - due rows, of every class, counted up to limit: at most limit entries
 * of the outbox_due index (pending rows by next_attempt_at; a count of one class would read the
 * table row of every entry) */
gw_rc store_outbox_due_upto(struct store *st, time_t now, int limit, int *n)
{
	struct db_stmt *s = store_stmt(st, "SELECT count(*) FROM (SELECT 1 FROM outbox"
	                                   " WHERE status = 'pending' AND next_attempt_at <= ?1"
	                                   " LIMIT ?2) AS due");
	int r;

	*n = 0;
	if(!s)
		return GW_EDB;
	db_bind_int64(s, 1, now);
	db_bind_int64(s, 2, limit);
	r = db_step(s);
	if(r == DB_ROW)
		*n = db_col_int(s, 0);
	db_reset(s);
	db_clear(s);
	return r == DB_ROW ? GW_OK : (store_rc(r) ? store_rc(r) : GW_EDB);
}

/* store_outbox_tune - a dispatch worker's connection settings (the backend's own) */
gw_rc store_outbox_tune(struct store *st)
{
	int r = st->ops->tune_worker ? st->ops->tune_worker(st->db) : DB_OK;

	return r == DB_OK ? GW_OK : store_rc(r) ? store_rc(r) : GW_EDB;
}

/* store_outbox_journal_sent - rows a dead worker sent but did not record */
gw_rc store_outbox_journal_sent(struct store *st, const char *owner,
                                const struct store_journal_entry *j, int n, time_t now,
                                int *recorded)
{
	struct db_stmt *u = store_stmt(
	        st,
	        "UPDATE outbox SET status = 'sent', lease_owner = NULL, lease_expires_at = NULL,"
	        " attempts = attempts + 1, provider = coalesce(?3, provider), sent_at = ?4"
	        " WHERE id = ?1 AND status = 'leased' AND lease_owner = ?2 RETURNING attempts");
	struct db_stmt *a = store_stmt(
	        st, "INSERT INTO delivery_attempts(outbox_id, attempt, provider, started_ms,"
	            " finished_ms, outcome, detail) VALUES(?1, ?2, ?3, ?4, ?5, 'sent',"
	            " 'recorded at restart from the sent journal of a worker that died')");
	gw_rc rc;
	int i, x;

	*recorded = 0;
	if(!u || !a)
		return GW_EDB;
	rc = store_begin(st);
	if(rc)
		return rc;
	for(i = 0; i < n; i++) {
		int attempt;

		db_reset(u);
		db_bind_int64(u, 1, j[i].id);
		db_bind_text(u, 2, owner, -1);
		store_bind_text(u, 3, j[i].provider[0] ? j[i].provider : NULL);
		db_bind_int64(u, 4, now);
		x = db_step(u);
		if(x == DB_DONE)
			continue; /* recorded already, or no longer this owner's */
		if(x != DB_ROW) {
			rc = store_rc(x) ? store_rc(x) : GW_EDB;
			break;
		}
		attempt = db_col_int(u, 0);
		db_reset(u);
		db_reset(a);
		db_bind_int64(a, 1, j[i].id);
		db_bind_int64(a, 2, attempt);
		store_bind_text(a, 3, j[i].provider[0] ? j[i].provider : NULL);
		db_bind_int64(a, 4, j[i].started_ms);
		db_bind_int64(a, 5, j[i].finished_ms);
		x = db_step(a);
		db_reset(a);
		if(x != DB_DONE) {
			rc = store_rc(x) ? store_rc(x) : GW_EDB;
			break;
		}
		(*recorded)++;
	}
	db_reset(u);
	db_clear(u);
	db_clear(a);
	if(rc) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st);
}

/* The WAL size, in frames, past which the checkpoint restarts the log. A PASSIVE checkpoint
 * copies the log back but the log rewinds only when no reader is using it, which under steady
 * traffic never happens: the soak (bench/soak.sh) grew the -wal to 944 MB in 8 minutes while
 * every read slowed down (sqlite.org/wal.html, "Checkpoint starvation"). Past this size a
 * RESTART checkpoint waits (the busy timeout) for the readers of old snapshots, which are short
 * here, so that the next writer starts the log from its beginning again. */
#define STORE_WAL_RESTART_PAGES 8000 /* about 32 MB with 4 KiB pages */

/* store_checkpoint - a passive checkpoint of the WAL; a RESTART one once the log has grown
 * past STORE_WAL_RESTART_PAGES (engines without a WAL of this kind: nothing to do) */
gw_rc store_checkpoint(struct store *st)
{
	int r = st->ops->checkpoint ? st->ops->checkpoint(st->db, STORE_WAL_RESTART_PAGES) : DB_OK;

	return r == DB_OK ? GW_OK : (store_rc(r) ? store_rc(r) : GW_EDB);
}

/* store_outbox_redact - drop the secrets of finished email payloads, then the payloads */
gw_rc store_outbox_redact(struct store *st, time_t now, time_t keep_secs, int limit,
                          store_redact_fn redact, int *redacted, int *pruned)
{
	/* the terms of outbox_unredacted's WHERE, and SQLite told to take it: without statistics
	 * it would read the table instead */
#define REDACT_SQL(from)                                                                     \
	"SELECT id, payload FROM " from " WHERE payload_state IS NULL"                       \
	" AND provider_class = 'email' AND (status = 'sent' OR status = 'expired'"            \
	" OR status = 'skipped' OR status = 'dead')"                                          \
	" AND (status <> 'dead' OR created_at <= ?1) ORDER BY id LIMIT ?2"
	static const struct db_sql redact_sql = {{
	    REDACT_SQL("outbox INDEXED BY outbox_unredacted"),
	    REDACT_SQL("outbox"),
	}};
#undef REDACT_SQL
	struct db_stmt *q = store_stmt_d(st, &redact_sql);
	struct db_stmt *u = store_stmt(
	        st, "UPDATE outbox SET payload = ?2, payload_state = 'redacted' WHERE id = ?1");
	struct db_stmt *m = store_stmt(st, "DELETE FROM outbox_messages WHERE outbox_id = ?1");
	struct db_stmt *p = store_stmt(
	        st, "UPDATE outbox SET payload = '{\"pruned\": true}', payload_state = 'pruned'"
	            " WHERE id IN (SELECT id FROM outbox WHERE payload_state = 'redacted'"
	            " AND coalesce(sent_at, created_at) <= ?1 ORDER BY id LIMIT ?2)");
	struct db_stmt *b = store_stmt(
	        st, "DELETE FROM outbox_bodies WHERE id IN (SELECT d.id FROM outbox_bodies d"
	            " WHERE d.created_at <= ?1 AND NOT EXISTS (SELECT 1 FROM outbox o"
	            " WHERE o.body_id = d.id AND (o.payload_state IS NULL"
	            " OR o.payload_state <> 'pruned')) AND NOT EXISTS (SELECT 1 FROM outbox_fanouts f"
	            " WHERE f.body_id = d.id) ORDER BY d.id LIMIT ?2)");
	int64_t ids[64];
	char *texts[64];
	int n = 0, i, r;
	gw_rc rc = GW_OK;

	*redacted = 0;
	*pruned = 0;
	if(!q || !u || !p || !m || !b)
		return GW_EDB;
	if(limit > 64)
		limit = 64;
	db_bind_int64(q, 1, (int64_t)(now - keep_secs));
	db_bind_int64(q, 2, limit);
	while((r = db_step(q)) == DB_ROW) {
		const char *text = db_col_text(q, 1);

		ids[n] = db_col_int64(q, 0);
		texts[n] = text ? redact(text) : NULL;
		if(!texts[n]) {
			rc = GW_ENOMEM;
			break;
		}
		n++;
	}
	db_reset(q);
	if(!rc && r != DB_DONE)
		rc = store_rc(r) ? store_rc(r) : GW_EDB;
	for(i = 0; i < n; i++) {
		if(!rc) {
			db_reset(u);
			db_bind_int64(u, 1, ids[i]);
			db_bind_text(u, 2, texts[i], -1);
			r = db_step(u);
			db_reset(u);
			if(r == DB_DONE) {
				/* a dead row's message goes with its secrets (a sent one's went) */
				db_bind_int64(m, 1, ids[i]);
				r = db_step(m);
				db_reset(m);
			}
			if(r != DB_DONE)
				rc = store_rc(r) ? store_rc(r) : GW_EDB;
			else
				(*redacted)++;
		}
		free(texts[i]);
	}
	if(rc)
		return rc;
	db_bind_int64(p, 1, (int64_t)(now - keep_secs));
	db_bind_int64(p, 2, limit);
	r = db_step(p);
	db_reset(p);
	if(r != DB_DONE)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	*pruned = db_changes(st);
	/* a fan-out's shared body (the request as every trainer read it) goes with the last of
	 * its rows' payloads: past the retention, no row of it left unpruned, no rest of its
	 * fan-out still to enqueue */
	db_bind_int64(b, 1, (int64_t)(now - keep_secs));
	db_bind_int64(b, 2, limit);
	r = db_step(b);
	db_reset(b);
	if(r != DB_DONE)
		return store_rc(r) ? store_rc(r) : GW_EDB;
	return GW_OK;
}
