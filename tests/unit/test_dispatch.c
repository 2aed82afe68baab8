/*
 * test_dispatch.c - the delivery engine (gateway/delivery/dispatch.c) and the outbox queries it relies
 * on (store_outbox_lease_class, store_outbox_cycle, STORE_DEFER), against real database files
 * in a temp folder and the maildir provider (no network).
 *
 * Cases are rows of tables: the backoff schedule; what the engine does with each kind of row
 * (sent; reminders of confirmed, cancelled, rescheduled and deleted bookings; close reminders;
 * a deadline passed; calendar and Zoho rows without a provider); the leases a start gives back
 * (a dead process of this host: yes; a live one or another host's: no); a worker never takes
 * over its own process's lease when the clock jumps; a deferred row; finish and lease in one
 * transaction; stop leaves nothing leased; the metrics text.
 *
 * The clock is the test clock (clock_set_test), so every "now" is fixed. Row state is read back
 * through a second, plain SQLite connection. Entry point: main(). Threading: the engine runs its
 * worker threads; the test waits for the rows it expects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "gateway/delivery/dispatch.h"
#include "gateway/delivery/dispatch_int.h"
#include "common/log.h"
#include "store/store.h"
#include "gateway/templates/tpl.h"

#define T0 ((time_t)1796112000) /* 2026-12-01T08:00:00Z */

#define CHECK(cond, ...)                       \
	do {                                   \
		if(!(cond))                    \
			fail_msg(__VA_ARGS__); \
	} while(0)

static char tmp_dir[64];
static int seq_no;
static unsigned char master_key[CRYPTO_KEY_LEN];

/* fixture - a fresh data folder and database per test */
struct fixture {
	char data[128];
	char db[160];
	struct store *st;
	sqlite3 *peek;
	int64_t org, trainer, request;
	int next_hour; /* bookings of the trainer must not overlap */
};

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* q_int - first column of the first row of sql, ?1 bound to a when sql has it */
static int64_t q_int(sqlite3 *db, const char *sql, int64_t a)
{
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	if(sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	if(sqlite3_bind_parameter_count(s) >= 1)
		sqlite3_bind_int64(s, 1, a);
	if(sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* q_text - first column of row id of outbox as text into buf */
static void q_text(sqlite3 *db, const char *col, int64_t id, char *buf, size_t n)
{
	char sql[160];
	sqlite3_stmt *s = NULL;

	snprintf(sql, sizeof(sql), "SELECT ifnull(%s, '') FROM outbox WHERE id = ?1", col);
	buf[0] = '\0';
	if(sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
	sqlite3_bind_int64(s, 1, id);
	if(sqlite3_step(s) == SQLITE_ROW)
		snprintf(buf, n, "%s", sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
}

/* wait_until - poll sql (one integer) until it equals want, at most 10 s */
static int64_t wait_until(sqlite3 *db, const char *sql, int64_t want)
{
	int64_t v = -1;
	int i;

	for(i = 0; i < 1000; i++) {
		v = q_int(db, sql, 0);
		if(v == want)
			break;
		usleep(10000);
	}
	return v;
}

/* maildir_count - messages delivered to DATA/maildir/new */
static int maildir_count(const char *data)
{
	char path[256];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "%s/maildir/new", data);
	d = opendir(path);
	if(!d)
		return 0;
	while((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* email_payload - a real email payload (tpl_email) as JSON text; extra (may be NULL) merged */
static char *email_payload(int64_t org, const char *kind, const char *key, json_t *extra)
{
	struct tpl_env env = {0};
	json_t *p = NULL;
	char *text;

	env.org_id = org;
	env.org_name = "Test Org";
	env.org_timezone = "UTC";
	env.install_id = "unit";
	env.public_url = "http://127.0.0.1:1";
	env.now = T0;
	assert_int_equal(tpl_email(&env, kind, key, "cleo@example.test", "Cleo", "Hello", "text",
	                           "<p>html</p>", &p),
	                 GW_OK);
	if(extra)
		json_object_update(p, extra);
	text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(p);
	json_decref(extra);
	assert_non_null(text);
	return text;
}

/* enqueue - one outbox row; payload NULL: a real email of kind */
static int64_t enqueue(struct fixture *f, const char *kind, const char *pclass, const char *key,
                       int64_t booking, time_t deadline, const char *payload)
{
	struct store_effect e = {0};
	char *own = payload ? NULL : email_payload(f->org, kind, key, NULL);
	bool ins = false;
	int64_t id = 0;

	e.org_id = f->org;
	e.kind = kind;
	e.provider_class = pclass;
	e.dedupe_key = key;
	e.booking_id = booking;
	e.request_id = f->request;
	e.payload = payload ? payload : own;
	e.deadline = deadline;
	assert_int_equal(store_outbox_enqueue(f->st, &e, T0, &ins, &id), GW_OK);
	assert_true(ins);
	free(own);
	return id;
}

enum bstate { B_NONE, B_CONFIRMED, B_CANCELLED, B_RESCHEDULED, B_COMPLETED, B_GONE };

/* make_booking - a booking of the trainer in state st (B_GONE: an id that does not exist) */
static int64_t make_booking(struct fixture *f, enum bstate bs)
{
	struct store_booking_new b = {0};
	struct store_booking_set set;
	char uid[64];
	int64_t id = 0;

	if(bs == B_NONE)
		return 0;
	if(bs == B_GONE)
		return 987654;
	snprintf(uid, sizeof(uid), "uid-%d@unit", ++seq_no);
	b.org_id = f->org;
	b.request_id = f->request;
	b.trainer_id = f->trainer;
	b.start = T0 + 86400 + 7200 * (time_t)f->next_hour++;
	b.end = b.start + 3600;
	b.length_minutes = 60;
	b.currency = "EUR";
	b.uid = uid;
	assert_int_equal(store_booking_create(f->st, &b, T0, &id), GW_OK);
	memset(&set, 0, sizeof(set));
	set.status = "confirmed";
	set.confirmed_at = T0;
	assert_int_equal(store_booking_transition(f->st, f->org, id, "pending_payment", &set, T0),
	                 GW_OK);
	memset(&set, 0, sizeof(set));
	switch(bs) {
	case B_CANCELLED:
		set.status = "cancelled";
		set.cancelled_at = T0;
		break;
	case B_RESCHEDULED:
		set.start = b.start + 1800;
		set.end = b.end + 1800;
		set.bump_sequence = 1;
		break;
	case B_COMPLETED:
		set.status = "completed";
		set.completed_at = T0;
		set.completed_by = "system";
		break;
	default:
		return id;
	}
	assert_int_equal(store_booking_transition(f->st, f->org, id, "confirmed", &set, T0), GW_OK);
	return id;
}

/* start_engine - the dispatcher on the fixture's folder */
static void start_engine(struct fixture *f)
{
	struct dispatch_config dc = {0};
	struct gw_err err = {0};

	dc.db_path = f->db;
	dc.data_dir = f->data;
	dc.master_key = master_key;
	dc.workers = 2;
	dc.batch = 4;
	dc.lease_secs = 60;
	assert_int_equal(dispatch_start(&dc, &err), GW_OK);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct gw_err err = {0};
	json_t *skills = json_array(), *answers = json_object();
	struct store_request_new r = {"Cleo Customer", "cleo@example.test", NULL, 0, skills,
	                              answers};
	struct store_user_new nu = {"tia@unit.test", "Tia", "UTC", ROLE_TRAINER,
	                            skills,          false, "00"};

	assert_non_null(f);
	clock_set_test(T0);
	snprintf(f->data, sizeof(f->data), "%s/d%d", tmp_dir, ++seq_no);
	assert_int_equal(mkdir(f->data, 0700), 0);
	snprintf(f->db, sizeof(f->db), "%s/ordinatus.db", f->data);
	assert_int_equal(store_open(f->db, true, &f->st, &err), GW_OK);
	assert_int_equal(store_org_create(f->st, "Test Org", "UTC", &f->org), GW_OK);
	assert_int_equal(store_user_create(f->st, f->org, &nu, &f->trainer), GW_OK);
	assert_int_equal(store_request_create(f->st, f->org, &r, T0, &f->request), GW_OK);
	json_decref(skills);
	json_decref(answers);
	assert_int_equal(sqlite3_open_v2(f->db, &f->peek, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(f->peek, 5000);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sqlite3_close(f->peek);
	store_close(f->st);
	free(f);
	clock_set_test(-1);
	return 0;
}

/* ---- the backoff schedule ---- */

static const struct {
	int attempts;
	double rnd;
	int lo, hi; /* inclusive; -1, -1: dead-letter */
} backoff_cases[] = {
        {0, 0.5, 5, 5},         {1, 0.0, 4, 5},         {1, 0.5, 5, 5},
        {1, 0.999, 5, 5},       {2, 0.5, 300, 300},     {2, 0.0, 270, 270},
        {2, 0.999, 329, 330},   {3, 0.5, 1800, 1800},   {4, 0.5, 7200, 7200},
        {5, 0.5, 18000, 18000}, {6, 0.5, 36000, 36000}, {7, 0.5, 36000, 36000},
        {8, 0.5, -1, -1},       {20, 0.5, -1, -1},
};

static void test_backoff(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(backoff_cases); i++) {
		int got = dispatch_backoff(backoff_cases[i].attempts, backoff_cases[i].rnd);
		CHECK(got >= backoff_cases[i].lo && got <= backoff_cases[i].hi,
		      "backoff(%d, %.3f) = %d, want %d..%d", backoff_cases[i].attempts,
		      backoff_cases[i].rnd, got, backoff_cases[i].lo, backoff_cases[i].hi);
	}
}

/* ---- how often /metrics counts the outbox again ---- */

/* a count that took took_ms is counted again once 50 times that has gone by since it ended: a
 * count of a few milliseconds is fresh at every scrape, one of a second waits 50 s */
static const struct {
	int64_t now, at, took;
	bool due;
} counts_cases[] = {
        {1000, 1000, 0, true},      {1000, 1000, 1, false},     {1049, 1000, 1, false},
        {1050, 1000, 1, true},      {50999, 2000, 1000, false}, {52000, 2000, 1000, true},
        {10000, 9990, 0, true},     {9000, 8000, 20, true},     {8999, 8000, 20, false},
};

static void test_counts_spacing(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < GW_ARRAY_LEN(counts_cases); i++)
		CHECK(dispatch_counts_due(counts_cases[i].now, counts_cases[i].at,
		                          counts_cases[i].took) == counts_cases[i].due,
		      "counted at %lld in %lld ms: due at %lld should be %d",
		      (long long)counts_cases[i].at, (long long)counts_cases[i].took,
		      (long long)counts_cases[i].now, counts_cases[i].due);
}

/* ---- what the engine does with each kind of row ---- */

struct row_case {
	const char *name;
	const char *kind;
	const char *pclass;
	enum bstate booking;
	int key_seq;            /* reminder: the sequence in its dedupe key */
	int payload_seq;        /* >= 0: "sequence" in the payload too */
	time_t deadline;        /* 0: none, else absolute */
	const char *status;     /* after */
	int attempts;           /* after */
	const char *error_part; /* in last_error, or NULL */
};

static const struct row_case row_cases[] = {
        {"an email is sent", "new_request", "email", B_NONE, 0, -1, 0, "sent", 1, NULL},
        {"reminder of a confirmed booking", "reminder", "email", B_CONFIRMED, 0, -1, 0, "sent", 1,
         NULL},
        {"reminder of a cancelled booking: skipped", "reminder", "email", B_CANCELLED, 0, -1, 0,
         "skipped", 0, "no longer confirmed"},
        {"reminder made before a reschedule: skipped", "reminder", "email", B_RESCHEDULED, 0, -1, 0,
         "skipped", 0, "rescheduled"},
        {"reminder made after the reschedule: sent", "reminder", "email", B_RESCHEDULED, 1, -1, 0,
         "sent", 1, NULL},
        {"the payload's sequence wins over the key's", "reminder", "email", B_RESCHEDULED, 1, 0, 0,
         "skipped", 0, "rescheduled"},
        {"reminder of a booking that is gone: skipped", "reminder", "email", B_GONE, 0, -1, 0,
         "skipped", 0, "no longer exists"},
        {"close reminder of a completed booking: skipped", "close_reminder", "email", B_COMPLETED,
         0, -1, 0, "skipped", 0, "no longer confirmed"},
        {"close reminder of a confirmed booking: sent", "close_reminder", "email", B_CONFIRMED, 0,
         -1, 0, "sent", 1, NULL},
        {"a confirmation of a cancelled booking is not a reminder: sent", "confirmation", "email",
         B_CANCELLED, 0, -1, 0, "sent", 1, NULL},
        {"past its deadline: expired, never tried", "reminder", "email", B_CONFIRMED, 0, -1,
         T0 - 60, "expired", 0, "deadline"},
        {"a calendar row without a calendar: skipped", "calendar", "calendar", B_CONFIRMED, 0, -1,
         0, "skipped", 0, "no calendar"},
        {"a Zoho row without Zoho Assist: dead, the reason on its attempt", "zoho_session", "zoho",
         B_CONFIRMED, 0, -1, 0, "dead", 1, "Zoho"},
};

static void test_rows(void **state)
{
	struct fixture *f = *state;
	int64_t ids[GW_ARRAY_LEN(row_cases)];
	struct tpl_buf b = {0};
	int sent = 0;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(row_cases); i++) {
		const struct row_case *c = &row_cases[i];
		int64_t booking = make_booking(f, c->booking);
		char key[96], *payload = NULL;

		if(strcmp(c->kind, "reminder") == 0)
			snprintf(key, sizeof(key), "reminder:%lld:1440:%d", (long long)booking,
			         c->key_seq);
		else
			snprintf(key, sizeof(key), "%s:%zu", c->kind, i);
		if(strcmp(c->pclass, "email") != 0)
			payload = strdup("{\"booking_id\": 1}");
		else if(c->payload_seq >= 0)
			payload = email_payload(f->org, c->kind, key,
			                        json_pack("{s:i}", "sequence", c->payload_seq));
		ids[i] = enqueue(f, c->kind, c->pclass, key, booking, c->deadline, payload);
		free(payload);
		sent += strcmp(c->status, "sent") == 0;
	}
	start_engine(f);
	CHECK(wait_until(f->peek,
	                 "SELECT count(*) FROM outbox WHERE status IN ('pending', "
	                 "'leased')",
	                 0) == 0,
	      "the engine did not finish the rows");
	dispatch_stop();
	for(i = 0; i < GW_ARRAY_LEN(row_cases); i++) {
		const struct row_case *c = &row_cases[i];
		char status[32], err[512];

		print_message("case: %s\n", c->name);
		q_text(f->peek, "status", ids[i], status, sizeof(status));
		q_text(f->peek, "last_error", ids[i], err, sizeof(err));
		CHECK(strcmp(status, c->status) == 0, "%s: status %s, want %s (%s)", c->name,
		      status, c->status, err);
		CHECK(q_int(f->peek, "SELECT attempts FROM outbox WHERE id = ?1", ids[i]) ==
		              c->attempts,
		      "%s: attempts", c->name);
		CHECK(q_int(f->peek, "SELECT count(*) FROM delivery_attempts WHERE outbox_id = ?1",
		            ids[i]) == c->attempts,
		      "%s: attempt rows", c->name);
		CHECK(!c->error_part || strstr(err, c->error_part),
		      "%s: last_error '%s' lacks '%s'", c->name, err, c->error_part);
	}
	CHECK(maildir_count(f->data) == sent, "maildir holds %d messages, want %d",
	      maildir_count(f->data), sent);

	/* the metrics of what just happened */
	assert_int_equal(dispatch_metrics(&b, f->st), GW_OK);
	assert_non_null(b.p);
	CHECK(strstr(b.p, "ordinatus_effects_sent_total{kind=\"reminder\",provider=\"maildir\"}"),
	      "metrics: sent reminders");
	CHECK(strstr(b.p, "ordinatus_effects_skipped_total{kind=\"reminder\",provider=\"none\"}"),
	      "metrics: skipped reminders");
	CHECK(strstr(b.p, "ordinatus_effects_dead_total{kind=\"zoho_session\",provider=\"none\"}"),
	      "metrics: dead Zoho row");
	CHECK(strstr(b.p, "ordinatus_delivery_attempt_seconds_bucket{provider=\"maildir\","
	                  "le=\"+Inf\"}"),
	      "metrics: latency histogram");
	CHECK(strstr(b.p, "ordinatus_outbox_pending 0\n"), "metrics: nothing pending");
	CHECK(strstr(b.p, "ordinatus_outbox_rows_age_seconds 0\n"),
	      "metrics: the outbox's rows were just counted");
	CHECK(strstr(b.p,
	             "ordinatus_effects_enqueued_total{kind=\"reminder\",class=\"email\"} 7\n"),
	      "metrics: enqueued reminders: %s", b.p);
	tpl_buf_free(&b);
}

/* ---- the leases a start gives back ---- */

static void test_reclaim(void **state)
{
	struct fixture *f = *state;
	char host[256], dead[320], live[320], other[320], owner[320];
	struct store_lease *l = NULL;
	int64_t ids[3];
	long pid = 4194000;
	int n = 0, i;

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	while(kill((pid_t)pid, 0) == 0 || errno != ESRCH)
		pid--; /* a pid no process has */
	snprintf(dead, sizeof(dead), "%s:%ld:email:0:1", host, pid);
	snprintf(live, sizeof(live), "%s:%ld:email:0:1", host, (long)getppid());
	snprintf(other, sizeof(other), "another-host.example:%ld:email:0:1", pid);
	for(i = 0; i < 3; i++) {
		char key[32];
		snprintf(key, sizeof(key), "r:%d", i);
		ids[i] = enqueue(f, "new_request", "email", key, 0, 0, NULL);
		snprintf(owner, sizeof(owner), "%s", i == 0 ? dead : i == 1 ? live : other);
		assert_int_equal(
		        store_outbox_lease_class(f->st, owner, "email", NULL, T0, 3600, 1, &l, &n),
		        GW_OK);
		assert_int_equal(n, 1);
		assert_int_equal(l[0].id, ids[i]);
		store_leases_free(l, n);
	}
	start_engine(f);
	CHECK(wait_until(f->peek, "SELECT count(*) FROM outbox WHERE status = 'sent'", 1) == 1,
	      "the dead process's row was not given back and sent");
	usleep(200000);
	dispatch_stop();
	CHECK(q_int(f->peek, "SELECT count(*) FROM outbox WHERE status = 'sent' AND id = ?1",
	            ids[0]) == 1,
	      "a dead process's lease is given back at start");
	CHECK(q_int(f->peek, "SELECT count(*) FROM outbox WHERE status = 'leased' AND id = ?1",
	            ids[1]) == 1,
	      "a live process's lease is kept");
	CHECK(q_int(f->peek, "SELECT count(*) FROM outbox WHERE status = 'leased' AND id = ?1",
	            ids[2]) == 1,
	      "another host's lease is kept until it expires");
}

/* ---- leases of one's own process, deferred rows, one transaction for finish and lease ---- */

static void test_lease_rules(void **state)
{
	struct fixture *f = *state;
	struct store_lease *l = NULL, *next = NULL;
	struct store_result r;
	int64_t a, b;
	int n = 0, m = 0;
	char err[128];

	a = enqueue(f, "new_request", "email", "k:a", 0, 0, NULL);
	b = enqueue(f, "calendar", "calendar", "k:b", 0, 0, "{}");
	/* the class filter */
	assert_int_equal(store_outbox_lease_class(f->st, "h:1:email:0:1", "email", "h:1:", T0, 60,
	                                          10, &l, &n),
	                 GW_OK);
	assert_int_equal(n, 1);
	assert_int_equal(l[0].id, a);
	assert_string_equal(l[0].dedupe_key, "k:a");
	assert_int_equal(l[0].next_attempt_at, T0);
	store_leases_free(l, n);
	/* the clock jumps past the lease: this process's other workers leave it alone... */
	assert_int_equal(store_outbox_lease_class(f->st, "h:1:email:1:1", "email",
	                                          "h:1:", T0 + 3600, 60, 10, &l, &n),
	                 GW_OK);
	assert_int_equal(n, 0);
	store_leases_free(l, n);
	/* ...another process takes it over */
	assert_int_equal(store_outbox_lease_class(f->st, "h:2:email:0:1", "email",
	                                          "h:2:", T0 + 3600, 60, 10, &l, &n),
	                 GW_OK);
	assert_int_equal(n, 1);
	store_leases_free(l, n);
	/* deferred: pending again at the given time, no attempt, no error */
	memset(&r, 0, sizeof(r));
	r.id = a;
	r.outcome = STORE_DEFER;
	r.next_attempt_at = T0 + 10;
	assert_int_equal(store_outbox_finish(f->st, "h:2:email:0:1", &r, 1, T0 + 3600), GW_OK);
	q_text(f->peek, "status", a, err, sizeof(err));
	assert_string_equal(err, "pending");
	assert_int_equal(q_int(f->peek, "SELECT attempts FROM outbox WHERE id = ?1", a), 0);
	assert_int_equal(q_int(f->peek, "SELECT next_attempt_at FROM outbox WHERE id = ?1", a),
	                 T0 + 10);
	assert_int_equal(q_int(f->peek, "SELECT count(*) FROM delivery_attempts", 0), 0);
	/* finish one batch and lease the next in one transaction */
	assert_int_equal(store_outbox_lease_class(f->st, "w", NULL, NULL, T0 + 20, 60, 1, &l, &n),
	                 GW_OK);
	assert_int_equal(n, 1);
	memset(&r, 0, sizeof(r));
	r.id = l[0].id;
	r.outcome = STORE_SENT;
	r.provider = "maildir";
	assert_int_equal(
	        store_outbox_cycle(f->st, "w", &r, 1, T0 + 20, NULL, NULL, 60, 5, &next, &m, NULL),
	        GW_OK);
	assert_int_equal(m, 1);
	assert_int_equal(next[0].id, l[0].id == a ? b : a);
	q_text(f->peek, "status", l[0].id, err, sizeof(err));
	assert_string_equal(err, "sent");
	store_leases_free(l, n);
	store_leases_free(next, m);
}

/* ---- stop: in-flight sends finish, what was not started goes back ---- */

static void test_stop(void **state)
{
	struct fixture *f = *state;
	int i;

	for(i = 0; i < 200; i++) {
		char key[32];
		snprintf(key, sizeof(key), "s:%d", i);
		enqueue(f, "new_request", "email", key, 0, 0, NULL);
	}
	start_engine(f);
	usleep(20000);
	dispatch_stop();
	CHECK(q_int(f->peek, "SELECT count(*) FROM outbox WHERE status = 'leased'", 0) == 0,
	      "a row stayed leased after stop");
	CHECK(q_int(f->peek, "SELECT count(*) FROM outbox WHERE status = 'sent'", 0) ==
	              maildir_count(f->data),
	      "what is marked sent is what was delivered");
	CHECK(q_int(f->peek,
	            "SELECT count(*) FROM outbox WHERE status = 'pending' AND attempts > 0",
	            0) == 0,
	      "a row given back at stop counts no attempt");
	/* and a restart sends the rest */
	start_engine(f);
	CHECK(wait_until(f->peek, "SELECT count(*) FROM outbox WHERE status = 'sent'", 200) == 200,
	      "the rest is sent after a restart");
	dispatch_stop();
	CHECK(maildir_count(f->data) == 200, "each message delivered once: %d",
	      maildir_count(f->data));
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/ordinatus-dispatch-XXXXXX");
	if(!mkdtemp(tmp_dir))
		return -1;
	memset(master_key, 7, sizeof(master_key));
	log_quiet(1);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_backoff),
	        cmocka_unit_test(test_counts_spacing),
	        cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reclaim, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lease_rules, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
