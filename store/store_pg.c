/*
 * store_pg.c - the PostgreSQL backend of store_db.h, on libpq: one connection per thread,
 * each statement prepared once per connection (server-side, named), text parameters and
 * results.
 *
 * What SQLite's single writer gives, PostgreSQL gets from the database itself: a write
 * transaction (begin) takes a transaction-level advisory lock, so that the checks made inside
 * it hold until its commit, as with BEGIN IMMEDIATE; a write statement outside a transaction
 * runs in one of its own. Races between gateways are decided by constraints and conditional
 * updates (the slot_taken exclusion constraint, the dedupe keys' primary key).
 *
 * A lost connection (the server restarted, the network dropped) makes the call DB_DOWN, which
 * the API answers as 503 unavailable. The next call reconnects, at most once per backoff
 * interval (doubling from 100 ms up to 5 s); every statement is prepared again on the new
 * connection. The URL's password never reaches a message: errors name the host and database.
 *
 * Entry points: db_pg_ops, db_backend().
 */
#include "store_db.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* the advisory lock every write transaction holds: one writer at a time across gateways */
#define PG_WRITE_LOCK 0x4f72645772LL /* "OrdWr" */

#define PG_MAX_PARAMS 64
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000

/* type oids (catalog/pg_type.dat) */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_NUMERIC 1700

struct db_conn {
	const struct db_ops *ops;
	PGconn *pg;
	char *where;    /* the URL, to reconnect */
	unsigned gen;   /* bumped by each reconnect: statements prepared before it are gone */
	unsigned names; /* statement names given on this connection */
	int64_t changes;
	int64_t next_try_ms; /* no reconnect before this (monotonic ms) */
	int backoff_ms;
	bool in_txn;   /* begin() ran and no commit or rollback since */
	char listening[32]; /* the channel this connection LISTENs on ("" none): again after a reconnect */
	char err[512]; /* the last error, without the URL */
};

struct db_stmt {
	const struct db_ops *ops;
	struct db_conn *c;
	char *sql;       /* with $N parameters */
	int nparams;     /* the highest $N */
	bool write;      /* INSERT, UPDATE, DELETE: its own transaction outside one */
	unsigned gen;    /* the connection generation it was prepared on (0: not prepared) */
	char name[24];   /* its server-side name */
	Oid types[PG_MAX_PARAMS];      /* as prepared */
	Oid bound[PG_MAX_PARAMS];      /* as bound now (0 for NULL) */
	char *vals[PG_MAX_PARAMS];     /* owned copies, NULL for NULL */
	PGresult *res;   /* the current result, NULL before the first step */
	int row, nrows;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* set_err - the connection's error text, first line only (libpq's carry a DETAIL) */
static void set_err(struct db_conn *c, const char *msg)
{
	size_t n;

	snprintf(c->err, sizeof(c->err), "%s", msg ? msg : "unknown error");
	n = strcspn(c->err, "\n");
	c->err[n] = '\0';
}

/* result_rc - what a failed result means */
static int result_rc(struct db_conn *c, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	set_err(c, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
	if(PQstatus(c->pg) == CONNECTION_BAD || !state)
		return DB_DOWN;
	if(!strcmp(state, "23P01"))
		return DB_SLOT; /* exclusion_violation: the slot_taken constraint */
	if(!strncmp(state, "23", 2))
		return DB_CONSTRAINT;
	if(!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
		return DB_BUSY;
	if(!strcmp(state, "53100"))
		return DB_FULL;
	if(!strcmp(state, "53200"))
		return DB_NOMEM;
	if(!strncmp(state, "08", 2) || !strncmp(state, "57P", 3))
		return DB_DOWN;
	return DB_ERROR;
}

/* connect_now - (re)connect; DB_OK or DB_DOWN */
static int connect_now(struct db_conn *c)
{
	PGresult *res;

	if(c->pg)
		PQfinish(c->pg);
	c->pg = PQconnectdb(c->where);
	c->gen++;
	c->names = 0;
	c->in_txn = false;
	if(!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
		set_err(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return DB_DOWN;
	}
	/* times are epoch integers, text is UTF-8, no notices on stderr */
	res = PQexec(c->pg, "SET client_encoding = 'UTF8'; SET client_min_messages = warning;"
	                    " SET TIME ZONE 'UTC'");
	if(PQresultStatus(res) != PGRES_COMMAND_OK) {
		int r = result_rc(c, res);

		PQclear(res);
		return r == DB_DOWN ? DB_DOWN : r;
	}
	PQclear(res);
	if(c->listening[0]) {
		char sql[64];

		snprintf(sql, sizeof(sql), "LISTEN %s", c->listening);
		res = PQexec(c->pg, sql);
		if(PQresultStatus(res) != PGRES_COMMAND_OK) {
			int r = result_rc(c, res);

			PQclear(res);
			return r;
		}
		PQclear(res);
	}
	c->backoff_ms = 0;
	return DB_OK;
}

/* alive - the connection is usable, reconnecting when it was lost and the backoff allows */
static int alive(struct db_conn *c)
{
	int64_t now;

	if(c->pg && PQstatus(c->pg) == CONNECTION_OK)
		return DB_OK;
	/* a transaction that lost its connection is gone: nothing of it may run on a new one
	 * (without a transaction) before its owner has rolled it back */
	if(c->in_txn) {
		set_err(c, "the connection to the database was lost in a transaction");
		return DB_DOWN;
	}
	now = now_ms();
	if(now < c->next_try_ms) {
		set_err(c, "the database is unreachable (waiting before the next reconnect)");
		return DB_DOWN;
	}
	if(connect_now(c) == DB_OK)
		return DB_OK;
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
	if(c->backoff_ms > PG_BACKOFF_MAX_MS)
		c->backoff_ms = PG_BACKOFF_MAX_MS;
	c->next_try_ms = now + c->backoff_ms;
	return DB_DOWN;
}

/* where_label - host and database of a URL for messages, never its password */
static void where_label(const char *where, char *out, size_t n)
{
	PQconninfoOption *o = PQconninfoParse(where, NULL), *p;
	const char *host = NULL, *port = NULL, *db = NULL;

	for(p = o; p && p->keyword; p++) {
		if(!strcmp(p->keyword, "host"))
			host = p->val;
		else if(!strcmp(p->keyword, "port"))
			port = p->val;
		else if(!strcmp(p->keyword, "dbname"))
			db = p->val;
	}
	snprintf(out, n, "postgresql://%s%s%s/%s", host ? host : "", port ? ":" : "",
	         port ? port : "", db ? db : "");
	PQconninfoFree(o);
}

static struct db_conn *pg_open(const char *where, bool create, char *msg, size_t msglen)
{
	struct db_conn *c = calloc(1, sizeof(*c));
	char label[256];
	char *parse_err = NULL;
	PQconninfoOption *o;

	(void)create; /* the database itself is the operator's: CREATE DATABASE is not ours */
	if(!c || !(c->where = strdup(where))) {
		free(c);
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	c->ops = &db_pg_ops;
	o = PQconninfoParse(where, &parse_err);
	if(!o) {
		snprintf(msg, msglen, "the database URL is not valid: %s",
		         parse_err ? parse_err : "out of memory");
		PQfreemem(parse_err);
		free(c->where);
		free(c);
		return NULL;
	}
	PQconninfoFree(o);
	if(connect_now(c) != DB_OK) {
		where_label(where, label, sizeof(label));
		snprintf(msg, msglen, "cannot connect to the database %s: %s", label, c->err);
		PQfinish(c->pg);
		free(c->where);
		free(c);
		return NULL;
	}
	return c;
}

static void pg_close(struct db_conn *c)
{
	if(!c)
		return;
	PQfinish(c->pg);
	free(c->where);
	free(c);
}

static int pg_exec(struct db_conn *c, const char *sql)
{
	PGresult *res;
	int r;

	if((r = alive(c)) != DB_OK)
		return r;
	res = PQexec(c->pg, sql);
	r = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK
	            ? DB_OK
	            : result_rc(c, res);
	PQclear(res);
	return r;
}

/* db_pg_translate - ? and ?N parameters as $N, outside quoted text; the highest N in *n */
char *db_pg_translate(const char *sql, int *n)
{
	size_t len = strlen(sql);
	char *out = malloc(len * 3 + 1), *o = out;
	const char *p = sql;
	int next = 0;
	char quote = 0;

	*n = 0;
	if(!out)
		return NULL;
	while(*p) {
		if(quote) {
			if(*p == quote)
				quote = 0;
			*o++ = *p++;
		} else if(*p == '\'' || *p == '"') {
			quote = *p;
			*o++ = *p++;
		} else if(*p == '?') {
			int k;

			p++;
			if(*p >= '0' && *p <= '9') {
				for(k = 0; *p >= '0' && *p <= '9' && k < 1000; p++)
					k = k * 10 + (*p - '0');
			} else {
				k = ++next;
			}
			if(k > next)
				next = k;
			if(k > *n)
				*n = k;
			o += sprintf(o, "$%d", k);
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* is_write - an INSERT, UPDATE or DELETE (leading blanks aside), or a WITH holding one (the
 * store's texts are upper case: a data-modifying WITH says INSERT INTO, UPDATE or DELETE FROM) */
static bool is_write(const char *sql)
{
	sql += strspn(sql, " \t\n");
	if(!strncmp(sql, "WITH ", 5))
		return strstr(sql, "INSERT INTO") || strstr(sql, "UPDATE ") || strstr(sql, "DELETE FROM");
	return !strncasecmp(sql, "INSERT", 6) || !strncasecmp(sql, "UPDATE", 6) ||
	       !strncasecmp(sql, "DELETE", 6);
}

static struct db_stmt *pg_prepare(struct db_conn *c, const char *sql)
{
	struct db_stmt *s = calloc(1, sizeof(*s));

	if(!s)
		return NULL;
	s->ops = &db_pg_ops;
	s->c = c;
	s->sql = db_pg_translate(sql, &s->nparams);
	if(!s->sql || s->nparams > PG_MAX_PARAMS) {
		set_err(c, "a statement has more parameters than the backend takes");
		free(s->sql);
		free(s);
		return NULL;
	}
	s->write = is_write(sql);
	return s;
}

static void clear_result(struct db_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->row = s->nrows = 0;
}

static void pg_finalize(struct db_stmt *s)
{
	int i;

	if(!s)
		return;
	clear_result(s);
	for(i = 0; i < PG_MAX_PARAMS; i++)
		free(s->vals[i]);
	free(s->sql);
	free(s);
}

static int set_param(struct db_stmt *s, int i, char *v, Oid type)
{
	if(i < 1 || i > s->nparams) {
		free(v);
		return DB_ERROR;
	}
	free(s->vals[i - 1]);
	s->vals[i - 1] = v;
	s->bound[i - 1] = type;
	return DB_OK;
}

static int pg_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	char buf[24], *d;

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	d = strdup(buf);
	return d ? set_param(s, i, d, OID_INT8) : DB_NOMEM;
}

static int pg_bind_text(struct db_stmt *s, int i, const char *v, int len)
{
	char *d = len < 0 ? strdup(v) : strndup(v, (size_t)len);

	return d ? set_param(s, i, d, OID_TEXT) : DB_NOMEM;
}

static int pg_bind_null(struct db_stmt *s, int i, int type)
{
	return set_param(s, i, NULL, type == DB_INTEGER ? OID_INT8 : type == DB_TEXT ? OID_TEXT : 0);
}

/* prepared - the statement is prepared on this connection with types its bindings fit */
static int prepared(struct db_stmt *s)
{
	PGresult *res;
	bool fits = s->gen == s->c->gen;
	int i, r;

	/* a NULL fits any type; a value needs the type it was prepared with */
	for(i = 0; fits && i < s->nparams; i++)
		if(s->vals[i] && s->bound[i] != s->types[i])
			fits = false;
	if(fits)
		return DB_OK;
	if(s->gen == s->c->gen) { /* another type now: drop the old one first */
		char sql[48];

		snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->name);
		PQclear(PQexec(s->c->pg, sql));
	}
	for(i = 0; i < s->nparams; i++)
		s->types[i] = s->bound[i];
	snprintf(s->name, sizeof(s->name), "s%u", ++s->c->names);
	/* in a transaction, a failed prepare would abort it: a savepoint keeps it (once per
	 * statement and connection) */
	if(s->c->in_txn)
		PQclear(PQexec(s->c->pg, "SAVEPOINT prep"));
	res = PQprepare(s->c->pg, s->name, s->sql, s->nparams, s->types);
	/* a parameter left unbound (NULL) where the text does not tell its type: as SQLite's
	 * untyped NULL would, it takes a number, or else text */
	for(int k = 0; k < 2 && res && PQresultStatus(res) == PGRES_FATAL_ERROR &&
	               PQresultErrorField(res, PG_DIAG_SQLSTATE) &&
	               !strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42P18");
	    k++) {
		PQclear(res);
		if(s->c->in_txn)
			PQclear(PQexec(s->c->pg, "ROLLBACK TO SAVEPOINT prep"));
		for(i = 0; i < s->nparams; i++)
			if(!s->vals[i] && (!s->bound[i] || k == 1))
				s->types[i] = k == 0 ? OID_INT8 : OID_TEXT;
		res = PQprepare(s->c->pg, s->name, s->sql, s->nparams, s->types);
	}
	if(PQresultStatus(res) != PGRES_COMMAND_OK) {
		r = result_rc(s->c, res);
		PQclear(res);
		if(s->c->in_txn)
			PQclear(PQexec(s->c->pg, "ROLLBACK TO SAVEPOINT prep"));
		s->gen = 0;
		return r;
	}
	PQclear(res);
	if(s->c->in_txn)
		PQclear(PQexec(s->c->pg, "RELEASE SAVEPOINT prep"));
	s->gen = s->c->gen;
	return DB_OK;
}

static int begin_write(struct db_conn *c);
static int pg_commit(struct db_conn *c);
static void pg_rollback(struct db_conn *c);

static int run_once(struct db_stmt *s);

/* run - execute the bound statement; DB_ROW with rows, DB_DONE without. A read outside a
 * transaction whose connection died while idle runs once more on a new one (a read is
 * harmless to repeat; a write's first step is its BEGIN, which begin_write repeats). */
static int run(struct db_stmt *s)
{
	int r = run_once(s);

	if(r == DB_DOWN && !s->write && !s->c->in_txn) {
		s->c->next_try_ms = 0;
		r = run_once(s);
	}
	return r;
}

static int run_once(struct db_stmt *s)
{
	const char *vals[PG_MAX_PARAMS];
	bool own_txn = false;
	int i, r;

	if((r = alive(s->c)) != DB_OK)
		return r;
	if(s->write && !s->c->in_txn) {
		if((r = begin_write(s->c)) != DB_OK)
			return r;
		own_txn = true;
	}
	r = prepared(s);
	if(r != DB_OK)
		goto out;
	for(i = 0; i < s->nparams; i++)
		vals[i] = s->vals[i];
	s->res = PQexecPrepared(s->c->pg, s->name, s->nparams, vals, NULL, NULL, 0);
	switch(PQresultStatus(s->res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK: {
		const char *status = PQcmdStatus(s->res);

		if(!strncmp(status, "INSERT", 6) || !strncmp(status, "UPDATE", 6) ||
		   !strncmp(status, "DELETE", 6))
			s->c->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
		s->nrows = PQntuples(s->res);
		s->row = 0;
		r = s->nrows > 0 ? DB_ROW : DB_DONE;
		break;
	}
	default:
		r = result_rc(s->c, s->res);
		clear_result(s);
		break;
	}
out:
	if(own_txn) {
		if(r == DB_ROW || r == DB_DONE) {
			int c = pg_commit(s->c);

			if(c != DB_OK) {
				clear_result(s);
				r = c;
			}
		} else {
			pg_rollback(s->c);
		}
	}
	return r;
}

static int pg_step(struct db_stmt *s)
{
	if(!s->res)
		return run(s);
	if(++s->row < s->nrows)
		return DB_ROW;
	return DB_DONE;
}

static void pg_reset(struct db_stmt *s)
{
	clear_result(s);
}

static void pg_clear(struct db_stmt *s)
{
	int i;

	for(i = 0; i < s->nparams; i++) {
		free(s->vals[i]);
		s->vals[i] = NULL;
		s->bound[i] = 0;
	}
}

static bool has_row(struct db_stmt *s, int i)
{
	return s->res && s->row < s->nrows && i >= 0 && i < PQnfields(s->res);
}

static int pg_col_type(struct db_stmt *s, int i)
{
	if(!has_row(s, i) || PQgetisnull(s->res, s->row, i))
		return DB_NULL;
	switch(PQftype(s->res, i)) {
	case OID_BOOL:
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
		return DB_INTEGER;
	case OID_NUMERIC:
		return strchr(PQgetvalue(s->res, s->row, i), '.') ? DB_TEXT : DB_INTEGER;
	default:
		return DB_TEXT;
	}
}

static int64_t pg_col_int64(struct db_stmt *s, int i)
{
	const char *v;

	if(!has_row(s, i) || PQgetisnull(s->res, s->row, i))
		return 0;
	v = PQgetvalue(s->res, s->row, i);
	if(PQftype(s->res, i) == OID_BOOL)
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static const char *pg_col_text(struct db_stmt *s, int i)
{
	if(!has_row(s, i) || PQgetisnull(s->res, s->row, i))
		return NULL;
	return PQgetvalue(s->res, s->row, i);
}

static int64_t pg_changes(struct db_conn *c)
{
	return c->changes;
}

static int64_t pg_last_id(struct db_conn *c)
{
	PGresult *res;
	int64_t id = 0;

	if(alive(c) != DB_OK)
		return 0;
	res = PQexec(c->pg, "SELECT lastval()");
	if(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return id;
}

static const char *pg_errmsg(struct db_conn *c)
{
	return c->err;
}

/* begin_write - BEGIN and the write lock, in one round trip */
static int begin_write(struct db_conn *c)
{
	char sql[96];
	int r;

	snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%lld)",
	         (long long)PG_WRITE_LOCK);
	r = pg_exec(c, sql);
	if(r == DB_DOWN) {
		/* the connection died while idle (the server restarted): nothing ran, so once
		 * more on a new one at once */
		pg_rollback(c);
		c->next_try_ms = 0;
		r = pg_exec(c, sql);
	}
	if(r == DB_OK)
		c->in_txn = true;
	else
		pg_rollback(c);
	return r;
}

static int pg_begin(struct db_conn *c)
{
	return begin_write(c);
}

/* pg_commit - COMMIT. A transaction in which a statement failed is rolled back by it, with
 * the status "ROLLBACK" and no error: that is a failure here (SQLite would have kept the
 * statements that did not fail; no caller commits after a failure, and none may). */
static int pg_commit(struct db_conn *c)
{
	PGresult *res;
	int r;

	if((r = alive(c)) != DB_OK) {
		c->in_txn = false;
		return r;
	}
	res = PQexec(c->pg, "COMMIT");
	if(PQresultStatus(res) != PGRES_COMMAND_OK) {
		r = result_rc(c, res);
	} else if(strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		set_err(c, "the transaction had failed and was rolled back");
		r = DB_ERROR;
	}
	PQclear(res);
	c->in_txn = false;
	return r;
}

static void pg_rollback(struct db_conn *c)
{
	c->in_txn = false;
	if(c->pg && PQstatus(c->pg) == CONNECTION_OK &&
	   PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		PQclear(PQexec(c->pg, "ROLLBACK"));
}

static bool pg_in_txn(struct db_conn *c)
{
	return c->in_txn;
}

/* pg_lock - a session advisory lock (released at unlock, or when the connection ends) */
static int pg_lock(struct db_conn *c, int64_t key, bool wait, bool *held)
{
	char sql[80];
	PGresult *res;
	int r;

	*held = false;
	if((r = alive(c)) != DB_OK)
		return r;
	snprintf(sql, sizeof(sql), wait ? "SELECT pg_advisory_lock(%lld), true"
	                                : "SELECT 0, pg_try_advisory_lock(%lld)",
	         (long long)key);
	res = PQexec(c->pg, sql);
	if(PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		r = result_rc(c, res);
		PQclear(res);
		return r;
	}
	*held = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return DB_OK;
}

static void pg_unlock(struct db_conn *c, int64_t key)
{
	char sql[64];

	if(!c->pg || PQstatus(c->pg) != CONNECTION_OK)
		return; /* the lock went with the connection */
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", (long long)key);
	PQclear(PQexec(c->pg, sql));
}

/* pg_notify - NOTIFY channel (inside a transaction: at its commit; repeated ones fold) */
static int pg_notify(struct db_conn *c, const char *channel)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "NOTIFY %s", channel);
	return pg_exec(c, sql);
}

static int pg_listen(struct db_conn *c, const char *channel)
{
	char sql[64];

	snprintf(c->listening, sizeof(c->listening), "%s", channel);
	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	return pg_exec(c, sql);
}

/* pg_wait - up to ms for a notification on this connection (poll on its socket) */
static int pg_wait(struct db_conn *c, int ms, bool *got)
{
	struct pollfd p;
	PGnotify *n;
	int r;

	*got = false;
	if((r = alive(c)) != DB_OK)
		return r;
	if(!(n = PQnotifies(c->pg))) {
		p.fd = PQsocket(c->pg);
		p.events = POLLIN;
		p.revents = 0;
		if(p.fd < 0)
			return DB_DOWN;
		if(poll(&p, 1, ms) > 0 && !PQconsumeInput(c->pg)) {
			set_err(c, PQerrorMessage(c->pg));
			return DB_DOWN;
		}
		n = PQnotifies(c->pg);
	}
	while(n) {
		*got = true;
		PQfreemem(n);
		n = PQnotifies(c->pg);
	}
	return PQstatus(c->pg) == CONNECTION_OK ? DB_OK : DB_DOWN;
}

static bool pg_down(struct db_conn *c)
{
	return !c->pg || PQstatus(c->pg) != CONNECTION_OK;
}

const struct db_ops db_pg_ops = {
    .name = "postgresql",
    .dialect = DB_POSTGRES,
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .bind_int64 = pg_bind_int64,
    .bind_text = pg_bind_text,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .reset = pg_reset,
    .clear = pg_clear,
    .col_type = pg_col_type,
    .col_int64 = pg_col_int64,
    .col_text = pg_col_text,
    .changes = pg_changes,
    .last_id = pg_last_id,
    .errmsg = pg_errmsg,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_txn = pg_in_txn,
    .checkpoint = NULL,
    .tune_worker = NULL,
    .lock = pg_lock,
    .unlock = pg_unlock,
    .notify = pg_notify,
    .listen = pg_listen,
    .wait = pg_wait,
    .down = pg_down,
};

/* db_backend - by the location's scheme */
const struct db_ops *db_backend(const char *where)
{
	if(where && (!strncmp(where, "postgresql://", 13) || !strncmp(where, "postgres://", 11)))
		return &db_pg_ops;
	return &db_sqlite_ops;
}
