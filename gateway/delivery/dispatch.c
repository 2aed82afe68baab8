/*
 * dispatch.c - the delivery engine: per-class worker pools that lease, send and record.
 *
 * Entry points: dispatch_start(), dispatch_stop(), dispatch_wake(), dispatch_backoff(),
 * dispatch_metrics() (dispatch_metrics.c).
 *
 * Each provider class ("email", "calendar", "zoho") has its own fixed pool of workers, so the
 * concurrency towards one kind of far side is bounded (email: one SMTP connection per worker)
 * and a slow calendar API never holds up email. A worker:
 *   1. leases up to `batch` due rows of its class in one transaction;
 *   2. sends them one by one through the organisation's provider (struct provider_ops), whose
 *      context it keeps open between batches (an SMTP connection is reused across messages);
 *   3. records every result, with its attempt row, and leases the next batch, in one
 *      transaction (store_outbox_cycle): one commit per batch.
 * A calendar row whose trainer's grant was revoked (invalid_grant), and every later calendar row
 * of that trainer while the connection needs reconnecting, is held (status 'held', not retried)
 * rather than dead: the result hook marks the connection needs_reconnect and enqueues the
 * trainer's one calendar_reconnect email, rendered here, in the transaction that records the
 * row; a reconnect (PUT calendar or the OAuth callback) makes the held rows due at once.
 * Rules applied at send time: a row past its deadline is expired; a reminder whose booking is
 * no longer confirmed, or whose sequence is not the booking's (it was rescheduled), is skipped
 * (docs/design.md; Cal.com's "Reminder still shows up for cancelled events"); a close reminder of a
 * booking that is no longer confirmed likewise. A batch stops at half the lease: the rest goes
 * back untried, so a slow far side never lets a lease run out under a live worker; so do the
 * bulk rows of a batch (new_request fan-outs) when new rows arrived meanwhile (dispatch_wake),
 * so that an urgent email waits for one message per worker, not for a batch. When a send
 * to an organisation's provider fails slowly (a timeout: the server is unreachable), the rest of
 * that organisation's rows in the batch are not tried but recorded as failed with it, as an MTA
 * defers the mail of a dead destination.
 *
 * Leases: the owner is "host:pid:class:index:start_ms". A worker never takes over a lease of
 * its own process (the test clock may jump past a lease under a live worker); at start the
 * leases of dead processes of this host (kill -9) are given back at once instead of waiting
 * for them to expire.
 *
 * Threading: the workers share the wake-up condition, the stop flag, the metrics counters
 * (atomics) and one writer connection (under write_lock). Each owns a reading connection and its
 * provider contexts.
 *
 * Throughput (bench/smtp_throughput.sh): the cost per message is libcurl's (the message was
 * rendered at enqueue; four SMTP round trips without pipelining) plus the store's: two row
 * updates in SQLite (lease and finish), an attempt row and the message's row read and deleted;
 * see the bench for the figures.
 */
#include "dispatch.h"
#include "dispatch_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/rand.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/provider.h"
#include "gateway/templates/tpl.h"
#include "common/rest.h"
#include "providers/google/gcal.h"
#include "providers/ical/caldav.h"
#include "providers/outlook/graph.h"
#include "providers/zoho/zoho.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define MAX_WORKERS   80
#define CONNS_DEFAULT 8    /* max_connections of SMTP settings without it (and the maildir) */
#define CONNS_MAX     64   /* its upper bound (API.md) */
#define GROW_EVERY_MS 2000 /* how often the email pool looks for a larger max_connections */
#define CTX_CACHE    8
#define IDLE_MAX_MS  2000 /* an idle worker looks again at least this often (other processes) */
#define LISTEN_WAIT_MS 250 /* the listener's wait, so that it sees a stop this soon */
#define SLOW_FAIL_MS 5000 /* a transient failure this slow means the far side is unreachable */
#define DETAIL_LEN   512
#define FAR_SIDE_MAX 300  /* bytes of a provider's words kept on the row (controls replaced) */

static const int schedule[] = {0, 5, 300, 1800, 7200, 18000, 36000, 36000};

enum pclass { PC_EMAIL, PC_CALENDAR, PC_ZOHO, PC_COUNT };
static const char *const pclass_names[PC_COUNT] = {"email", "calendar", "zoho"};

/* ---- shared state ---- */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
/* The workers' write transactions (lease, finish) go through one connection, wst, taking turns
 * on write_lock: SQLite allows one writer anyway, and a writer that finds the database locked
 * sleeps in SQLite's busy handler (1, 2, 5, 10 ms...) where a mutex hands over at once. One
 * connection also keeps its page cache (WAL drops a connection's cache whenever another one
 * committed). The workers' own connections only read. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store *wst; /* under write_lock */
static unsigned long wake_gen;
static int running; /* workers not yet finished; under wake_lock */
static atomic_int stopping;
static struct dispatch_config config;
static char self_prefix[300]; /* "host:pid:": the owners of this process's leases */
static char journal_dir[PATH_MAX]; /* DATA/outbox-journal, or "" (no data folder: none) */

struct ctx_entry {
	int64_t org;
	int64_t user; /* calendar contexts: the trainer whose connection it is; 0 for email */
	char *config_text; /* the stored config it was opened with (sealed secrets): cache key */
	const struct provider_ops *ops;
	void *ctx;
	unsigned long checked; /* batch number in which the stored config was last compared */
};

struct worker {
	pthread_t thread;
	int index;
	enum pclass pc;
	int done; /* under wake_lock */
	char owner[400];
	struct store *st;
	struct ctx_entry cache[CTX_CACHE];
	int ncache, evict;
	unsigned long batch_no;
	int64_t send_us; /* the worker's recent time per send (a moving average), 0: none yet */
	int jfd; /* the sent journal (email workers), or -1; its file is mapped at jmap */
	char *jmap; /* MAP_SHARED, jsize bytes, or NULL; jpos bytes of it are lines */
	size_t jsize, jpos;
	struct log_buf lb; /* its delivery lines not yet written (log_result) */
	bool keep_journal; /* stopping with results the database could not take: left for the next start */
	bool wake_after;   /* rows left to worker 0's probe in this batch: wake it once recorded */
};

/* The pools: workers[] grows while the engine runs (grow_email_pool) under pool_lock. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct worker *workers[MAX_WORKERS];
static int nworkers;
static int nemail;          /* email workers started; under pool_lock */
static char pool_host[256]; /* this host's name, for the owners of workers started later */

/* dispatch_backoff - the retry schedule */
int dispatch_backoff(int attempts, double rnd)
{
	double base;

	if(attempts < 1)
		attempts = 1;
	if((size_t)attempts >= GW_ARRAY_LEN(schedule))
		return -1;
	base = schedule[attempts];
	return (int)(base + base * 0.2 * (rnd - 0.5));
}

/* dispatch_wake - wake idle workers */
void dispatch_wake(void)
{
	pthread_mutex_lock(&wake_lock);
	wake_gen++;
	pthread_cond_broadcast(&wake_cond);
	pthread_mutex_unlock(&wake_lock);
}

/* rnd01 - a random number in [0, 1) */
static double rnd01(void)
{
	unsigned int x = 0;

	if(RAND_bytes((unsigned char *)&x, sizeof(x)) != 1)
		return 0.5;
	return (double)x / 4294967296.0;
}

static gw_rc open_secrets(json_t *cfg)
{
	const char *key;
	json_t *v;
	gw_rc rc = GW_OK;

	json_object_foreach(cfg, key, v)
	{
		if(json_is_object(v)) {
			rc = open_secrets(v);
			if(rc)
				return rc;
		} else if(json_is_string(v) && strncmp(json_string_value(v), "sealed:", 7) == 0) {
			char *plain = NULL;
			rc = crypto_open(config.master_key, json_string_value(v) + 7, &plain);
			if(rc)
				return rc;
			json_object_set_new(cfg, key, json_string(plain));
			free(plain);
		}
	}
	return GW_OK;
}

/* ctx_clear - close a cache slot's context and empty it */
static void ctx_clear(struct ctx_entry *e)
{
	if(e->ops)
		e->ops->close(e->ctx);
	free(e->config_text);
	memset(e, 0, sizeof(*e));
}

/* provider_for - the worker's email context for org: the stored config is read once per batch,
 * and the context reopened only when it changed */
static gw_rc provider_for(struct worker *w, int64_t org, struct ctx_entry **out, char *detail,
                          size_t dlen)
{
	json_t *cfg = NULL;
	char *text = NULL;
	const struct provider_ops *ops;
	struct ctx_entry *e = NULL;
	gw_rc rc;
	int i;

	*out = NULL;
	for(i = 0; i < w->ncache; i++) {
		if(w->cache[i].org == org && w->cache[i].user == 0 && w->cache[i].ops) {
			e = &w->cache[i];
			break;
		}
	}
	if(e && e->checked == w->batch_no) {
		*out = e;
		return GW_OK;
	}
	rc = store_provider_get(w->st, org, "smtp", &cfg);
	if(rc == GW_ENOTFOUND) {
		ops = &smtp_maildir_ops;
		text = strdup("maildir");
		rc = GW_OK;
	} else if(rc) {
		snprintf(detail, dlen, "cannot read the provider settings: %s", gw_rc_name(rc));
		return rc;
	} else {
		ops = &smtp_provider_ops;
		text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	}
	if(!text) {
		rc = GW_ENOMEM;
		snprintf(detail, dlen, "out of memory");
		goto out;
	}
	if(e && strcmp(e->config_text, text) == 0) {
		e->checked = w->batch_no;
		*out = e;
		goto out;
	}
	if(!e) {
		if(w->ncache < CTX_CACHE) {
			e = &w->cache[w->ncache++];
		} else {
			e = &w->cache[w->evict];
			w->evict = (w->evict + 1) % CTX_CACHE;
		}
	}
	ctx_clear(e);
	if(cfg) {
		rc = open_secrets(cfg);
		if(rc) {
			snprintf(detail, dlen,
			         "cannot decrypt the provider secrets (wrong master key?)");
			goto out;
		}
	}
	if(cfg && config.allow_outbound)
		json_object_set_new(cfg, "allow_outbound", json_deep_copy(config.allow_outbound));
	rc = ops->open(cfg, config.data_dir, &e->ctx);
	if(rc && json_object_get(cfg, "ca_file")) {
		/* settings stored by an older release: a path on the host is the operator's */
		snprintf(detail, dlen, "the SMTP settings name a ca_file, which is no longer read: "
		                       "PUT providers/smtp again with ca_pem (the certificates)");
		e->ctx = NULL;
		goto out;
	} else if(rc) {
		snprintf(detail, dlen, "cannot open provider %s: %s (check its settings)",
		         ops->name, gw_rc_name(rc));
		e->ctx = NULL;
		goto out;
	}
	e->org = org;
	e->ops = ops;
	e->config_text = text;
	e->checked = w->batch_no;
	text = NULL;
	*out = e;
out:
	free(text);
	json_decref(cfg);
	return rc;
}

/* What calendar_for found for a calendar row. */
enum cal_found {
	CAL_OK,        /* *out is the trainer's provider context */
	CAL_NONE,      /* the trainer has no calendar connected: nothing to call */
	CAL_RECONNECT, /* the connection needs reconnecting: nothing to call until it is */
	CAL_ERROR,     /* settings missing or unreadable: try again later */
};

/* The calendar providers, chosen by the name on the trainer's connection: the ops, the
 * organisation's provider settings they need (NULL: the connection holds everything) and the
 * config key the connection's sealed secret is handed over in. */
static const struct cal_provider {
	const char *name;
	const struct provider_ops *ops;
	const char *settings; /* store_provider_get name, or NULL */
	const char *secret;   /* config key of the connection's secret */
} cal_providers[] = {
        {"google", &gcal_provider_ops, "google", "refresh_token"},
        {"outlook", &graph_provider_ops, "outlook", "refresh_token"},
        {"caldav", &caldav_provider_ops, NULL, "credentials"},
};

/* cal_provider_of - the table entry of a connection's provider name, or NULL */
static const struct cal_provider *cal_provider_of(const char *name)
{
	size_t i;

	for(i = 0; name && i < GW_ARRAY_LEN(cal_providers); i++)
		if(strcmp(cal_providers[i].name, name) == 0)
			return &cal_providers[i];
	return NULL;
}

/* cache_slot - the worker's cache entry for (org, user), or a free or evicted one (emptied) */
static struct ctx_entry *cache_slot(struct worker *w, int64_t org, int64_t user, bool *found)
{
	struct ctx_entry *e;
	int i;

	*found = false;
	for(i = 0; i < w->ncache; i++) {
		if(w->cache[i].org == org && w->cache[i].user == user && w->cache[i].ops) {
			*found = true;
			return &w->cache[i];
		}
	}
	if(w->ncache < CTX_CACHE) {
		e = &w->cache[w->ncache++];
	} else {
		e = &w->cache[w->evict];
		w->evict = (w->evict + 1) % CTX_CACHE;
	}
	ctx_clear(e);
	return e;
}

/* calendar_for - the provider context of a calendar row: chosen now (docs/design.md rule 6)
 * from the trainer's connection and the organisation's client settings (secrets opened as
 * provider_for does). *conn_id: the connection's id, for the result hook. The stored settings
 * are compared once per batch and the context reopened only when they changed, so the access
 * token it holds lives as long as the connection. */
static enum cal_found calendar_for(struct worker *w, const struct store_lease *l,
                                   const json_t *payload, struct ctx_entry **out,
                                   int64_t *conn_id, char *detail, size_t dlen)
{
	json_t *conn = NULL, *cfg = NULL;
	int64_t user = json_integer_value(json_object_get(payload, "trainer_id"));
	const struct cal_provider *cp;
	enum cal_found found = CAL_ERROR;
	struct ctx_entry *e;
	char *text = NULL;
	bool cached;
	gw_rc rc;

	*out = NULL;
	*conn_id = 0;
	rc = store_calendar_get(w->st, l->org_id, user, &conn);
	if(rc == GW_ENOTFOUND) {
		snprintf(detail, dlen, "the trainer has no calendar connected");
		return CAL_NONE;
	}
	if(rc) {
		snprintf(detail, dlen, "cannot read the calendar connection: %s", gw_rc_name(rc));
		return CAL_ERROR;
	}
	*conn_id = json_integer_value(json_object_get(conn, "id"));
	if(strcmp(json_string_value(json_object_get(conn, "status")), "connected") != 0) {
		const char *why = json_string_value(json_object_get(conn, "last_error"));
		snprintf(detail, dlen,
		         "held: the trainer's calendar needs reconnecting (%.300s); it goes out "
		         "once the calendar is connected again",
		         why ? why : "the grant was refused");
		found = CAL_RECONNECT;
		goto out;
	}
	cp = cal_provider_of(json_string_value(json_object_get(conn, "provider")));
	if(!cp) {
		snprintf(detail, dlen, "the calendar connection names an unknown provider %.40s",
		         json_string_value(json_object_get(conn, "provider")));
		goto out;
	}
	rc = cp->settings ? store_provider_get(w->st, l->org_id, cp->settings, &cfg) : GW_OK;
	if(rc == GW_OK && !cp->settings && !(cfg = json_object()))
		rc = GW_ENOMEM;
	if(rc == GW_ENOTFOUND) {
		snprintf(detail, dlen,
		         "the organisation has no %s provider settings (client_id, "
		         "client_secret): PUT /v1/orgs/{org}/providers/%s",
		         cp->name, cp->settings);
		goto out;
	}
	if(rc) {
		snprintf(detail, dlen, "cannot read the provider settings: %s", gw_rc_name(rc));
		goto out;
	}
	json_object_set(cfg, "calendar_id", json_object_get(conn, "calendar_id"));
	json_object_set(cfg, cp->secret, json_object_get(conn, "secret"));
	json_object_set(cfg, "connection", json_object_get(conn, "id"));
	text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	if(!text) {
		snprintf(detail, dlen, "out of memory");
		goto out;
	}
	e = cache_slot(w, l->org_id, user, &cached);
	if(cached && (e->checked == w->batch_no || strcmp(e->config_text, text) == 0)) {
		e->checked = w->batch_no;
		*out = e;
		found = CAL_OK;
		goto out;
	}
	ctx_clear(e);
	if(open_secrets(cfg)) {
		snprintf(detail, dlen, "cannot decrypt the calendar secrets (wrong master key?)");
		goto out;
	}
	if(config.allow_outbound)
		json_object_set_new(cfg, "allow_outbound", json_deep_copy(config.allow_outbound));
	rc = cp->ops->open(cfg, config.data_dir, &e->ctx);
	if(rc) {
		snprintf(detail, dlen, "cannot open provider %s: %s (check its settings)", cp->name,
		         gw_rc_name(rc));
		e->ctx = NULL;
		goto out;
	}
	e->org = l->org_id;
	e->user = user;
	e->ops = cp->ops;
	e->config_text = text;
	e->checked = w->batch_no;
	text = NULL;
	*out = e;
	found = CAL_OK;
out:
	free(text);
	json_decref(cfg);
	json_decref(conn);
	return found;
}

/* dispatch_calendar_open - a fresh provider context of user's connected calendar, built as
 * calendar_for builds one (the busy-time fetch, dispatch_busy.c, has no worker cache) */
gw_rc dispatch_calendar_open(struct store *st, int64_t org, int64_t user,
                             const struct provider_ops **ops, void **ctx, char *detail,
                             size_t dlen)
{
	json_t *conn = NULL, *cfg = NULL;
	const struct cal_provider *cp;
	gw_rc rc;

	*ops = NULL;
	*ctx = NULL;
	detail[0] = '\0';
	if((rc = store_calendar_get(st, org, user, &conn))) {
		snprintf(detail, dlen, "cannot read the calendar connection: %s", gw_rc_name(rc));
		return rc;
	}
	cp = cal_provider_of(json_string_value(json_object_get(conn, "provider")));
	if(!cp || !cp->ops->busy) {
		snprintf(detail, dlen, "the calendar connection names an unknown provider");
		rc = GW_ECONFIG;
		goto out;
	}
	rc = cp->settings ? store_provider_get(st, org, cp->settings, &cfg) : GW_OK;
	if(rc == GW_OK && !cp->settings && !(cfg = json_object()))
		rc = GW_ENOMEM;
	if(rc) {
		snprintf(detail, dlen, "cannot read the organisation's %s provider settings: %s",
		         cp->name, gw_rc_name(rc));
		goto out;
	}
	json_object_set(cfg, "calendar_id", json_object_get(conn, "calendar_id"));
	json_object_set(cfg, cp->secret, json_object_get(conn, "secret"));
	json_object_set(cfg, "connection", json_object_get(conn, "id"));
	if((rc = open_secrets(cfg))) {
		snprintf(detail, dlen, "cannot decrypt the calendar secrets (wrong master key?)");
		goto out;
	}
	/* the busy-time fetch goes out through the same outbound guard as every delivery */
	if(config.allow_outbound)
		json_object_set_new(cfg, "allow_outbound", json_deep_copy(config.allow_outbound));
	if((rc = cp->ops->open(cfg, config.data_dir, ctx))) {
		snprintf(detail, dlen, "cannot open provider %s: %s (check its settings)", cp->name,
		         gw_rc_name(rc));
		*ctx = NULL;
		goto out;
	}
	*ops = cp->ops;
out:
	json_decref(cfg);
	json_decref(conn);
	return rc;
}

/* reconnect_email - the calendar_reconnect email (payload JSON text, malloc'd) to the trainer of
 * calendar row l whose grant, connection conn_id of provider, was just refused with reason; NULL
 * when it cannot be made (logged: the connection is marked all the same) */
static char *reconnect_email(struct worker *w, const struct store_lease *l, const json_t *payload,
                             int64_t conn_id, const char *provider, const char *reason)
{
	int64_t user = json_integer_value(json_object_get(payload, "trainer_id"));
	json_t *trainer = NULL, *orgj = NULL, *install = NULL, *url = NULL, *email = NULL;
	struct tpl_env env = {0};
	char key[64], *text = NULL;
	gw_rc rc;

	snprintf(key, sizeof(key), "calendar_reconnect:%lld", (long long)conn_id);
	if((rc = store_user_get(w->st, l->org_id, user, &trainer)) ||
	   (rc = store_org_get(w->st, l->org_id, &orgj)))
		goto out;
	/* both recorded by `serve` at start; an installation without them has other troubles */
	store_meta_get(w->st, "install_id", &install);
	store_meta_get(w->st, "public_url", &url);
	env.org_id = l->org_id;
	env.org_name = json_string_value(json_object_get(orgj, "name"));
	env.org_timezone = json_string_value(json_object_get(orgj, "timezone"));
	env.install_id = json_is_string(install) ? json_string_value(install) : "ordinatus";
	env.public_url = json_is_string(url) ? json_string_value(url) : "http://127.0.0.1:8080";
	env.now = clock_now();
	if((rc = tpl_calendar_reconnect(&env, key, trainer, provider, reason, &email)))
		goto out;
	text = json_dumps(email, JSON_COMPACT | JSON_SORT_KEYS);
	rc = text ? GW_OK : GW_ENOMEM;
out:
	if(rc)
		log_event("error", "calendar_reconnect_email_failed",
		          json_pack("{s:I, s:I, s:s}", "outbox_id", (json_int_t)l->id, "connection",
		                    (json_int_t)conn_id, "error", gw_rc_name(rc)));
	json_decref(email);
	json_decref(url);
	json_decref(install);
	json_decref(orgj);
	json_decref(trainer);
	return text;
}

/* What zoho_for found for a Zoho Assist row. */
enum zoho_found {
	ZOHO_OK,    /* *out is the organisation's Zoho context */
	ZOHO_NONE,  /* no Zoho provider configured: nothing to call */
	ZOHO_ERROR, /* settings unreadable or unusable: try again later */
};

/* zoho_for - the worker's Zoho Assist context for org, opened from the stored settings
 * (secrets opened) and reopened only when they changed, so its access token lives as long as
 * the settings */
static enum zoho_found zoho_for(struct worker *w, int64_t org, struct ctx_entry **out,
                                char *detail, size_t dlen)
{
	enum zoho_found found = ZOHO_ERROR;
	struct ctx_entry *e;
	json_t *cfg = NULL;
	char *text = NULL;
	bool cached;
	gw_rc rc;

	*out = NULL;
	rc = store_provider_get(w->st, org, "zoho", &cfg);
	if(rc == GW_ENOTFOUND) {
		snprintf(detail, dlen, "no Zoho Assist provider is configured for this organisation");
		return ZOHO_NONE;
	}
	if(rc) {
		snprintf(detail, dlen, "cannot read the provider settings: %s", gw_rc_name(rc));
		return ZOHO_ERROR;
	}
	text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	if(!text) {
		snprintf(detail, dlen, "out of memory");
		goto out;
	}
	e = cache_slot(w, org, 0, &cached);
	if(cached && (e->checked == w->batch_no || strcmp(e->config_text, text) == 0)) {
		e->checked = w->batch_no;
		*out = e;
		found = ZOHO_OK;
		goto out;
	}
	ctx_clear(e);
	if(open_secrets(cfg)) {
		snprintf(detail, dlen, "cannot decrypt the Zoho secrets (wrong master key?)");
		goto out;
	}
	if(config.allow_outbound)
		json_object_set_new(cfg, "allow_outbound", json_deep_copy(config.allow_outbound));
	if((rc = zoho_provider_ops.open(cfg, config.data_dir, &e->ctx))) {
		snprintf(detail, dlen, "cannot open provider zoho: %s (check its settings)",
		         gw_rc_name(rc));
		e->ctx = NULL;
		goto out;
	}
	e->org = org;
	e->ops = &zoho_provider_ops;
	e->config_text = text;
	e->checked = w->batch_no;
	text = NULL;
	*out = e;
	found = ZOHO_OK;
out:
	free(text);
	json_decref(cfg);
	return found;
}

/* session_link_email - the customer's session_link email (payload JSON text, malloc'd) for
 * Zoho row l whose session has join_url; NULL when it cannot be made (logged: the session is
 * stored all the same) */
static char *session_link_email(struct worker *w, const struct store_lease *l, const char *key,
                                const char *join_url)
{
	json_t *b = NULL, *orgj = NULL, *install = NULL, *url = NULL, *email = NULL, *ctx = NULL;
	struct tpl_env env = {0};
	char *text = NULL;
	gw_rc rc;

	if((rc = store_booking_get(w->st, l->org_id, l->booking_id, &b)) ||
	   (rc = store_org_get(w->st, l->org_id, &orgj)))
		goto out;
	store_meta_get(w->st, "install_id", &install);
	store_meta_get(w->st, "public_url", &url);
	env.org_id = l->org_id;
	env.org_name = json_string_value(json_object_get(orgj, "name"));
	env.org_timezone = json_string_value(json_object_get(orgj, "timezone"));
	env.install_id = json_is_string(install) ? json_string_value(install) : "ordinatus";
	env.public_url = json_is_string(url) ? json_string_value(url) : "http://127.0.0.1:8080";
	env.now = clock_now();
	ctx = json_pack("{s:O, s:O, s:O, s:O, s:s}", "booking", b, "customer",
	                json_object_get(b, "customer"), "trainer", json_object_get(b, "trainer"),
	                "session_type", json_object_get(b, "session_type"), "join_url", join_url);
	if(!ctx) {
		rc = GW_ENOMEM;
		goto out;
	}
	if((rc = tpl_booking(&env, "session_link", key, ctx, &email)))
		goto out;
	text = json_dumps(email, JSON_COMPACT | JSON_SORT_KEYS);
	rc = text ? GW_OK : GW_ENOMEM;
out:
	if(rc)
		log_event("error", "session_link_email_failed",
		          json_pack("{s:I, s:s}", "outbox_id", (json_int_t)l->id, "error",
		                    gw_rc_name(rc)));
	json_decref(ctx);
	json_decref(email);
	json_decref(url);
	json_decref(install);
	json_decref(orgj);
	json_decref(b);
	return text;
}

/* zoho_result - the Zoho result hook of a sent row: the session (id, technician URL, join
 * URL) for the booking and the customer's session_link email, or the session cleared */
static void zoho_result(struct worker *w, const struct store_lease *l, const json_t *payload,
                        const json_t *out, struct store_result *r)
{
	const char *sid = json_string_value(json_object_get(out, "session_id"));
	const char *join = json_string_value(json_object_get(out, "customer_url"));

	if(!l->booking_id)
		return;
	if(json_is_true(json_object_get(out, "deleted"))) {
		r->zoho_hook = 2;
		return;
	}
	if(!sid || !join)
		return;
	r->zoho_hook = 1;
	snprintf(r->zoho_session_id, sizeof(r->zoho_session_id), "%s", sid);
	snprintf(r->zoho_tech_url, sizeof(r->zoho_tech_url), "%s",
	         json_string_value(json_object_get(out, "technician_url")));
	snprintf(r->zoho_join_url, sizeof(r->zoho_join_url), "%s", join);
	snprintf(r->zoho_email_key, sizeof(r->zoho_email_key), "session_link:%lld:%lld",
	         (long long)l->booking_id,
	         (long long)json_integer_value(json_object_get(payload, "sequence")));
	r->zoho_email = session_link_email(w, l, r->zoho_email_key, join);
}

/* row_sequence - the booking sequence a reminder was made for: the payload's "sequence", else
 * the last field of its dedupe key "reminder:{booking}:{offset}:{sequence}"; -1 if neither */
static int row_sequence(const struct store_lease *l, const json_t *payload)
{
	const json_t *v = json_object_get(payload, "sequence");
	const char *colon;
	char *end;
	long seq;

	if(json_is_integer(v))
		return (int)json_integer_value(v);
	if(strncmp(l->dedupe_key, "reminder:", 9) != 0)
		return -1;
	colon = strrchr(l->dedupe_key, ':');
	if(!colon || !colon[1])
		return -1;
	seq = strtol(colon + 1, &end, 10);
	return *end || seq < 0 ? -1 : (int)seq;
}

/* skip_check - the docs/design.md skip rule: true (with the reason in detail) when a reminder or
 * close reminder is worthless now. A store error is not a reason to skip: *err set instead. */
static bool skip_check(struct worker *w, const struct store_lease *l, const json_t *payload,
                       char *detail, size_t dlen, gw_rc *err)
{
	char status[32];
	int seq = 0, want;
	gw_rc rc;

	*err = GW_OK;
	if(!l->booking_id ||
	   (strcmp(l->kind, "reminder") != 0 && strcmp(l->kind, "close_reminder") != 0))
		return false;
	rc = store_outbox_booking_state(w->st, l->booking_id, status, sizeof(status), &seq);
	if(rc == GW_ENOTFOUND) {
		snprintf(detail, dlen, "the booking no longer exists");
		return true;
	}
	if(rc) {
		*err = rc;
		return false;
	}
	if(strcmp(status, "confirmed") != 0) {
		snprintf(detail, dlen, "the booking is %s, no longer confirmed: not sent", status);
		return true;
	}
	want = strcmp(l->kind, "reminder") == 0 ? row_sequence(l, payload) : -1;
	if(want >= 0 && want != seq) {
		snprintf(detail, dlen,
		         "the booking was rescheduled (sequence %d, reminder for %d): not sent",
		         seq, want);
		return true;
	}
	return false;
}

/* outcome_of - the row's result for a provider's classified result */
static void outcome_of(const struct store_lease *l, const struct provider_result *pres, time_t now,
                       struct store_result *r)
{
	int wait;

	switch(pres->outcome) {
	case PROVIDER_SENT:
		r->outcome = STORE_SENT;
		return;
	case PROVIDER_PERMANENT:
	case PROVIDER_AUTH_REVOKED:
		r->outcome = STORE_DEAD;
		return;
	case PROVIDER_TRANSIENT:
	case PROVIDER_AUTH:
		break;
	}
	wait = dispatch_backoff(l->attempts + 1, rnd01());
	if(wait < 0) {
		r->outcome = STORE_DEAD;
		return;
	}
	/* the far side knows best when it can take the message again */
	if(pres->retry_after >= 0)
		wait = pres->retry_after;
	r->outcome = STORE_RETRY;
	r->next_attempt_at = now + wait;
}

/* retry_later - the row's result for a failure before any provider call (the detail says
 * what): transient, on the backoff schedule */
static void retry_later(const struct store_lease *l, time_t now, struct store_result *r)
{
	const struct provider_result pres = {.outcome = PROVIDER_TRANSIENT, .retry_after = -1};

	outcome_of(l, &pres, now, r);
}

/* attach_stored - what an earlier delivery left on the row's booking (an event id, an ETag, a
 * session id: get reads it) as the payload's "stored", for the provider, which never reads the
 * store. false with detail filled when it cannot be read. */
static bool attach_stored(struct worker *w, const struct store_lease *l, json_t *payload,
                          gw_rc (*get)(struct store *, int64_t, json_t **), const char *what,
                          char *detail, size_t dlen)
{
	json_t *ref = NULL;
	gw_rc rc = l->booking_id ? get(w->st, l->booking_id, &ref) : GW_ENOTFOUND;

	if(rc == GW_OK)
		json_object_set_new(payload, "stored", ref);
	else if(rc != GW_ENOTFOUND)
		snprintf(detail, dlen, "cannot read the booking's %s: %s", what, gw_rc_name(rc));
	return rc == GW_OK || rc == GW_ENOTFOUND;
}

/* The far side's failure, not the message's (deliver's *slow_fail): the server is down or
 * unreachable (a transient failure after SLOW_FAIL_MS or more, or for the server's sake), or it
 * refused the settings (provider_result.unreachable on a permanent failure) */
enum { SLOW_NONE, SLOW_DOWN, SLOW_REFUSED };

/* slow_kind - which of those a result is; t0: how long the send took, in ms */
static int slow_kind(const struct store_result *r, const struct provider_result *pres, int64_t t0)
{
	if((r->outcome == STORE_RETRY && (t0 >= SLOW_FAIL_MS || pres->unreachable)) ||
	   (r->outcome == STORE_DEAD && pres->unreachable))
		return pres->outcome == PROVIDER_PERMANENT ? SLOW_REFUSED : SLOW_DOWN;
	return SLOW_NONE;
}

/* deliver_message - deliver() for an email row whose message was rendered at enqueue: the
 * skip rule, the provider, the message (a fan-out row's fills put in its body's), sent */
static void deliver_message(struct worker *w, const struct store_lease *l, struct store_result *r,
                            char *detail, size_t dlen, int *slow_fail)
{
	struct provider_result pres;
	struct ctx_entry *e = NULL;
	time_t now = clock_now();
	char *whole = NULL;
	const char *msg = l->message;
	size_t len;
	int64_t t0;
	gw_rc rc;

	memset(&pres, 0, sizeof(pres));
	if(skip_check(w, l, NULL, detail, dlen, &rc)) {
		r->outcome = STORE_SKIPPED;
		return;
	}
	if(rc) {
		r->outcome = STORE_DEFER;
		r->next_attempt_at = now + 5;
		r->provider = NULL;
		return;
	}
	if(provider_for(w, l->org_id, &e, detail, dlen)) {
		retry_later(l, now, r);
		return;
	}
	r->provider = e->ops->name;
	if(l->body_id) {
		rc = l->body_message ? smtp_mime_expand(l->body_message, l->message, &whole, &len)
		                     : GW_EINVAL;
		if(rc == GW_ENOMEM) {
			snprintf(detail, dlen, "out of memory");
			retry_later(l, now, r);
			return;
		}
		if(rc) {
			r->outcome = STORE_DEAD;
			snprintf(detail, dlen, "the stored message or its fan-out body is damaged");
			return;
		}
		msg = whole;
	} else {
		len = strlen(msg);
	}
	pres.retry_after = -1;
	t0 = clock_mono_ms();
	if(e->ops->send_message)
		e->ops->send_message(e->ctx, l->rcpt, msg, len, &pres);
	else
		provider_set(&pres, PROVIDER_PERMANENT, -1, e->ops->name,
		             "this provider cannot send an email");
	t0 = clock_mono_ms() - t0;
	free(whole);
	dispatch_count_latency(e->ops->name, t0 * 1000);
	rest_clean(pres.detail, strlen(pres.detail), FAR_SIDE_MAX, detail, dlen);
	outcome_of(l, &pres, now, r);
	*slow_fail = slow_kind(r, &pres, t0);
	json_decref(pres.out);
}

/* deliver - send one leased row and fill its result; *slow_fail (slow_kind) when it failed
 * transiently after SLOW_FAIL_MS or more, or for the server's or its settings' sake
 * (provider_result.unreachable): the far side is down, or refuses everyone */
static void deliver(struct worker *w, const struct store_lease *l, struct store_result *r,
                    char *detail, size_t dlen, int *slow_fail)
{
	struct provider_result pres;
	struct ctx_entry *e = NULL;
	json_t *payload = NULL;
	time_t now = clock_now();
	int64_t t0, conn_id = 0;
	gw_rc rc;

	memset(&pres, 0, sizeof(pres));
	*slow_fail = SLOW_NONE;
	r->id = l->id;
	r->attempt = l->attempts + 1;
	r->hold_try = false;
	r->detail = NULL;
	r->cal_event_id[0] = '\0';
	r->cal_etag[0] = '\0';
	r->cal_conn_id = 0;
	r->cal_revoked = false;
	r->cal_reconnect = NULL;
	r->zoho_hook = 0;
	r->zoho_session_id[0] = r->zoho_tech_url[0] = r->zoho_join_url[0] = '\0';
	r->zoho_email_key[0] = '\0';
	r->zoho_email = NULL;
	r->redacted = NULL;
	/* "none" until a provider is chosen: the one name the row, its attempts, the effects list
	 * and the metrics give a row that no provider handled (a calendar row without a connected
	 * calendar, an expired reminder) */
	r->provider = "none";
	r->started_ms = clock_now_ms();
	detail[0] = '\0';
	if(l->deadline > 0 && now >= l->deadline) {
		r->outcome = STORE_EXPIRED;
		snprintf(detail, dlen, "deadline passed before it could be sent");
		goto done;
	}
	/* rendered at enqueue: no JSON on the way out */
	if(w->pc == PC_EMAIL && l->message) {
		deliver_message(w, l, r, detail, dlen, slow_fail);
		goto done;
	}
	payload = json_loads(l->payload, 0, NULL);
	if(!payload) {
		r->outcome = STORE_DEAD;
		snprintf(detail, dlen, "stored payload is not JSON");
		goto done;
	}
	if(skip_check(w, l, payload, detail, dlen, &rc)) {
		r->outcome = STORE_SKIPPED;
		goto done;
	}
	if(rc) {
		/* cannot tell whether it is still wanted: try again soon, not counted as an attempt
		 */
		r->outcome = STORE_DEFER;
		r->next_attempt_at = now + 5;
		r->provider = NULL;
		goto done;
	}
	/* A calendar row goes through the trainer's own connection. Without one there is nothing
	 * to call: skipped, saying so, instead of retrying for days. */
	if(w->pc == PC_CALENDAR) {
		switch(calendar_for(w, l, payload, &e, &conn_id, detail, dlen)) {
		case CAL_NONE:
			r->outcome = STORE_SKIPPED;
			goto done;
		case CAL_RECONNECT:
			/* held, not dead: it goes out when the trainer reconnects */
			r->outcome = STORE_HELD;
			goto done;
		case CAL_ERROR:
			retry_later(l, now, r);
			goto done;
		case CAL_OK:
			break;
		}
		/* what the last delivery left on the booking (Graph's event id, a CalDAV ETag) */
		if(!attach_stored(w, l, payload, store_calendar_ref, "event", detail, dlen)) {
			retry_later(l, now, r);
			goto done;
		}
		goto send;
	}
	/* A Zoho Assist row goes through the organisation's Zoho provider, with the session id the
	 * booking holds (providers never read the store) */
	if(w->pc == PC_ZOHO) {
		switch(zoho_for(w, l->org_id, &e, detail, dlen)) {
		case ZOHO_NONE:
			/* dead, with the reason, so an admin can retry it once one is configured */
			r->outcome = STORE_DEAD;
			goto done;
		case ZOHO_ERROR:
			retry_later(l, now, r);
			goto done;
		case ZOHO_OK:
			break;
		}
		if(!attach_stored(w, l, payload, store_zoho_ref, "session", detail, dlen)) {
			retry_later(l, now, r);
			goto done;
		}
		goto send;
	}
	if(provider_for(w, l->org_id, &e, detail, dlen)) {
		retry_later(l, now, r);
		goto done;
	}
send:
	r->provider = e->ops->name;
	pres.retry_after = -1;
	t0 = clock_mono_ms();
	e->ops->send(e->ctx, l->kind, payload, &pres);
	t0 = clock_mono_ms() - t0;
	dispatch_count_latency(e->ops->name, t0 * 1000);
	/* the far side's words: bounded, controls replaced, before a log line or the row */
	rest_clean(pres.detail, strlen(pres.detail), FAR_SIDE_MAX, detail, dlen);
	outcome_of(l, &pres, now, r);
	/* the result hook (docs/design.md rule 3): the provider returned it, the store writes it
	 * in the transaction that finishes the row */
	if(pres.outcome == PROVIDER_SENT &&
	   json_is_string(json_object_get(pres.out, "event_id")))
		snprintf(r->cal_event_id, sizeof(r->cal_event_id), "%s",
		         json_string_value(json_object_get(pres.out, "event_id")));
	if(r->cal_event_id[0] && json_is_string(json_object_get(pres.out, "etag")))
		snprintf(r->cal_etag, sizeof(r->cal_etag), "%s",
		         json_string_value(json_object_get(pres.out, "etag")));
	if(pres.outcome == PROVIDER_AUTH_REVOKED && conn_id > 0) {
		/* docs/design.md: a revoked grant turns the connection needs_reconnect, holds its
		 * rows and tells the trainer once (the store's result hook, in the finishing
		 * transaction) */
		r->outcome = STORE_HELD;
		r->cal_conn_id = conn_id;
		r->cal_revoked = true;
		r->cal_reconnect = reconnect_email(w, l, payload, conn_id, e->ops->name, detail);
	}
	if(w->pc == PC_ZOHO && pres.outcome == PROVIDER_SENT)
		zoho_result(w, l, payload, pres.out, r);
	*slow_fail = slow_kind(r, &pres, t0);
done:
	r->detail = detail[0] ? detail : NULL;
	r->finished_ms = clock_now_ms();
	json_decref(pres.out);
	json_decref(payload);
}

/* wait_for_work - sleep until woken, stopped or IDLE_MAX_MS passed */
static void wait_for_work(unsigned long seen)
{
	struct timespec ts;

	/* pthread_cond_timedwait on CLOCK_REALTIME (the deadlines of every wait in the
	 * gateway): a wall-clock step can stretch or cut one idle wait, which the caller's
	 * loop survives; pthread_cond_clockwait on the monotonic clock would be immune, but
	 * libfaketime does not intercept it, and make check-dates runs the gateway under it */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += IDLE_MAX_MS / 1000;
	ts.tv_nsec += (long)(IDLE_MAX_MS % 1000) * 1000000L;
	if(ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&wake_lock);
	while(wake_gen == seen && !atomic_load(&stopping)) {
		if(pthread_cond_timedwait(&wake_cond, &wake_lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&wake_lock);
}

/* plain_word - s needs no JSON escaping: letters, digits, '_', '-' and '.', at most 64 */
static bool plain_word(const char *s)
{
	size_t i;

	for(i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if(i >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		                (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return i > 0;
}

/* log_result - one line per delivery outcome (info when it went out or was not wanted any
 * more, warn when it failed); nothing for a row given back untried. The common line (sent)
 * waits in the worker's log_buf while sends are quick: written with the next lines, when the
 * buffer is full, once it is LOG_HOLD_MS old, after a send of LOG_SLOW_MS or more (the next
 * one may be as slow), and at the end of the batch. Any other line goes at once, after what
 * waits. */
#define LOG_HOLD_MS 100
#define LOG_SLOW_MS 2
static void log_result(struct worker *w, const struct store_lease *l,
                       const struct store_result *r, int64_t ms)
{
	static const char *const names[] = {
	        [STORE_SENT] = "sent",       [STORE_RETRY] = "retry",
	        [STORE_DEAD] = "dead",       [STORE_EXPIRED] = "expired",
	        [STORE_SKIPPED] = "skipped", [STORE_DEFER] = "deferred",
	        [STORE_HELD] = "held",
	};
	const char *level = r->outcome == STORE_RETRY || r->outcome == STORE_DEAD ||
	                                    r->outcome == STORE_HELD
	                            ? "warn"
	                            : "info";
	json_t *f;

	if(r->outcome == STORE_DEFER || !log_enabled(level))
		return;
	if(r->outcome == STORE_SENT && plain_word(l->kind) &&
	   plain_word(r->provider ? r->provider : "none")) {
		/* the common line, a few thousand a second at full speed: formatted directly */
		char m[300];

		snprintf(m, sizeof(m),
		         "\"attempt\":%d,\"kind\":\"%s\",\"ms\":%lld,\"outbox_id\":%lld,"
		         "\"outcome\":\"sent\",\"provider\":\"%s\"",
		         l->attempts + 1, l->kind, (long long)ms, (long long)l->id,
		         r->provider ? r->provider : "none");
		log_buf_members(&w->lb, level, "delivery", m);
		if(ms >= LOG_SLOW_MS || clock_mono_ms() - w->lb.first_ms >= LOG_HOLD_MS)
			log_buf_flush(&w->lb);
		return;
	}
	log_buf_flush(&w->lb);
	f = json_pack("{s:I, s:s, s:s, s:s, s:i, s:I}", "outbox_id", (json_int_t)l->id, "kind",
	              l->kind, "provider", r->provider ? r->provider : "none", "outcome",
	              names[r->outcome], "attempt", l->attempts + 1, "ms", (json_int_t)ms);
	if(f && r->outcome != STORE_SENT)
		json_object_set_new(f, "detail", json_string(r->detail ? r->detail : ""));
	log_event(level, "delivery", f);
}

/* ---- the sent journal ----
 * Between the server's 250 and the commit that records a batch, a kill -9 would lose what was
 * sent, and the rows would go out again: up to a batch per worker. So each email worker
 * notes "id provider started_ms finished_ms" in its own file DATA/outbox-journal/{owner}.log
 * as soon as a send returns sent, before its next message, and empties the file once the batch
 * is committed. The file is mapped shared (mmap, one line of JOURNAL_LINE bytes at most per row
 * of a batch): a line is a copy into the page cache, no system call, and it outlives the
 * process as a write(2) would. A line's newline is stored last, so a line cut short by the kill
 * has none and is not taken. The next dispatch_start of this host reads the journals of dead
 * processes and records their rows sent before it gives their leases back: after a kill only
 * the message whose reply was in flight can go out twice, one per connection. A power loss can
 * lose the journal's last writes (nothing is synced) and, with synchronous=NORMAL, every commit
 * since the WAL was last synced (checkpoint_main, every CHECKPOINT_MS): then whatever was sent
 * in that last half second or so goes out twice, with its Message-ID. */
#define JOURNAL_LINE 128

/* journal_path - the journal file of owner into buf */
static void journal_path(const char *owner, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s.log", journal_dir, owner);
}

/* journal_open - the worker's journal, empty and mapped (email workers with a data folder);
 * without one (a failure is logged) the worker sends as before, with no journal */
static void journal_open(struct worker *w)
{
	char path[PATH_MAX + 512];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *m;

	w->jfd = -1;
	w->jmap = NULL;
	w->jpos = 0;
	if(!journal_dir[0] || w->pc != PC_EMAIL)
		return;
	journal_path(w->owner, path, sizeof(path));
	w->jsize = ((size_t)config.batch * JOURNAL_LINE + page - 1) / page * page;
	w->jfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if(w->jfd < 0 || ftruncate(w->jfd, (off_t)w->jsize) != 0 ||
	   (m = mmap(NULL, w->jsize, PROT_READ | PROT_WRITE, MAP_SHARED, w->jfd, 0)) ==
	           MAP_FAILED) {
		log_event("warn", "dispatch_journal_unavailable",
		          json_pack("{s:s, s:s}", "path", path, "error", strerror(errno)));
		if(w->jfd >= 0) {
			close(w->jfd);
			unlink(path);
		}
		w->jfd = -1;
		return;
	}
	w->jmap = m;
}

/* journal_note - a sent row, noted before the worker's next message */
static void journal_note(struct worker *w, const struct store_lease *l,
                         const struct store_result *r)
{
	char line[JOURNAL_LINE];
	int n;

	if(!w->jmap || r->outcome != STORE_SENT)
		return;
	n = snprintf(line, sizeof(line), "%lld %.15s %lld %lld\n", (long long)l->id,
	             r->provider ? r->provider : "", (long long)r->started_ms,
	             (long long)r->finished_ms);
	if(n <= 1 || n >= (int)sizeof(line) || w->jpos + (size_t)n > w->jsize)
		return; /* cannot happen: a batch's lines fit (journal_open) */
	memcpy(w->jmap + w->jpos, line, (size_t)n - 1);
	/* the newline after the rest of the line: a kill between them leaves a line cut short
	 * (the kill stops the thread between two of its stores, which reach the page in order) */
	atomic_signal_fence(memory_order_release);
	w->jmap[w->jpos + (size_t)n - 1] = '\n';
	w->jpos += (size_t)n;
}

/* journal_reset - the batch is recorded: the journal starts afresh (from its first byte, so a
 * kill while it is cleared leaves nothing readable) */
static void journal_reset(struct worker *w)
{
	if(!w->jmap)
		return;
	memset(w->jmap, 0, w->jpos);
	w->jpos = 0;
}

/* journal_unmap - the mapping and the file descriptor go; the file stays */
static void journal_unmap(struct worker *w)
{
	if(w->jmap)
		munmap(w->jmap, w->jsize);
	w->jmap = NULL;
	if(w->jfd >= 0)
		close(w->jfd);
	w->jfd = -1;
}

/* journal_close - a worker that stops cleanly: every row it had is recorded or given back */
static void journal_close(struct worker *w)
{
	char path[PATH_MAX + 512];

	if(w->jfd < 0)
		return;
	journal_unmap(w);
	journal_path(w->owner, path, sizeof(path));
	unlink(path);
}

/* journal_replay_file - record the sent rows of one dead owner's journal; 0 when done */
static int journal_replay_file(struct store *st, const char *path, const char *owner)
{
	struct store_journal_entry *j = NULL;
	FILE *f = fopen(path, "re");
	char line[256];
	int n = 0, cap = 0, recorded = 0, bad = 0;
	gw_rc rc;

	if(!f)
		return -1;
	/* the lines, then the zeros of the rest of the mapped file (or of a cleared journal) */
	while(fgets(line, sizeof(line), f) && line[0] != '\0') {
		struct store_journal_entry e = {0};
		long long id, t0, t1;
		char prov[16] = "";

		/* a line cut short by the kill has no newline: never sent as far as we know */
		if(!strchr(line, '\n') ||
		   sscanf(line, "%lld %15s %lld %lld", &id, prov, &t0, &t1) != 4 || id <= 0) {
			bad++;
			continue;
		}
		if(n == cap) {
			struct store_journal_entry *nj;
			cap = cap ? cap * 2 : 64;
			nj = realloc(j, (size_t)cap * sizeof(*j));
			if(!nj) {
				free(j);
				fclose(f);
				return -1;
			}
			j = nj;
		}
		e.id = id;
		snprintf(e.provider, sizeof(e.provider), "%s", prov);
		e.started_ms = t0;
		e.finished_ms = t1;
		j[n++] = e;
	}
	fclose(f);
	rc = n ? store_outbox_journal_sent(st, owner, j, n, clock_now(), &recorded) : GW_OK;
	free(j);
	if(rc) {
		log_event("error", "dispatch_journal_replay_failed",
		          json_pack("{s:s, s:s, s:s}", "owner", owner, "error", gw_rc_name(rc),
		                    "cause", store_errmsg(st)));
		return -1;
	}
	log_event("info", "dispatch_journal_replayed",
	          json_pack("{s:s, s:i, s:i, s:i}", "owner", owner, "lines", n, "recorded_sent",
	                    recorded, "unreadable_lines", bad));
	return 0;
}

static bool owner_dead(const char *owner, const char *host);

/* journal_replay - at start, before the dead leases are given back: what the dead processes
 * of this host sent is recorded as sent, and their journals removed */
static void journal_replay(const char *host)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	struct dirent *de;
	DIR *d;

	if(!journal_dir[0])
		return;
	if(mkdir(journal_dir, 0700) != 0 && errno != EEXIST) {
		log_event("warn", "dispatch_journal_unavailable",
		          json_pack("{s:s, s:s}", "path", journal_dir, "error", strerror(errno)));
		journal_dir[0] = '\0';
		return;
	}
	d = opendir(journal_dir);
	if(!d)
		return;
	if(store_open(config.db_path, false, &st, &err)) {
		closedir(d);
		return;
	}
	while((de = readdir(d)) != NULL) {
		char owner[400], path[PATH_MAX + 512];
		size_t len = strlen(de->d_name);

		if(len <= 4 || strcmp(de->d_name + len - 4, ".log") != 0 ||
		   len - 4 >= sizeof(owner))
			continue;
		memcpy(owner, de->d_name, len - 4);
		owner[len - 4] = '\0';
		if(!owner_dead(owner, host))
			continue;
		snprintf(path, sizeof(path), "%s/%s", journal_dir, de->d_name);
		if(journal_replay_file(st, path, owner) == 0)
			unlink(path);
	}
	closedir(d);
	store_close(st);
}

/* Lease size: a worker leases about LEASE_SPAN_MS of its own sending (its recent time per
 * send), never more than the configured batch. Against a near server that is the batch; against
 * a far one (5 ms a round trip: 20 ms a message) about ten rows. So the end of a burst finds
 * every worker with little left, instead of some with a whole batch while the others have
 * nothing (measured with 32 connections and 5 ms: three workers idle for the last 0.7 s of a
 * 2.9 s burst), and the workers' commits spread out instead of queueing on the write lock
 * together at each batch's end. */
#define LEASE_SPAN_MS 200

/* note_send_time - one send's time into the worker's moving average (1/8 weight) */
static void note_send_time(struct worker *w, int64_t us)
{
	if(us < 0)
		us = 0;
	w->send_us = w->send_us ? w->send_us + (us - w->send_us) / 8 : us;
}

/* pool_size - the workers of a class */
static int pool_size(enum pclass pc)
{
	int n;

	if(pc != PC_EMAIL)
		return pc == PC_CALENDAR ? config.calendar_workers : config.zoho_workers;
	pthread_mutex_lock(&pool_lock);
	n = nemail;
	pthread_mutex_unlock(&pool_lock);
	return n;
}

#define LEASE_FIRST 4 /* a worker's first lease, before it knows its time per send */
#define LEASE_COUNT_US 100000 /* a lease of this much sending or more asks what is due */

/* lease_size - how many rows the worker leases next: LEASE_SPAN_MS of its sending, and when
 * fewer rows are due than the class's workers would take so, its share of them (read on the
 * worker's own connection, outside the write lock; rows of other classes counted too, which
 * only makes a share larger) */
static int lease_size(struct worker *w)
{
	int64_t n = w->send_us > 0 ? (int64_t)LEASE_SPAN_MS * 1000 / w->send_us : LEASE_FIRST;
	int pool = pool_size(w->pc), due = 0;

	if(n > config.batch)
		n = config.batch;
	if(n < 1)
		n = 1;
	/* the count only where the tail would be long: a batch of a near server is gone in
	 * milliseconds */
	if(pool > 1 && n > 1 && n * w->send_us >= LEASE_COUNT_US &&
	   store_outbox_due_upto(w->st, clock_now(), (int)n * pool, &due) ==
	           GW_OK &&
	   due < n * pool)
		n = due / pool + 1;
	return (int)n;
}

/* ---- a server that is down ----
 * When an organisation's SMTP server fails for its own sake (provider_result.unreachable: no
 * address, no connection, no TLS handshake, a greeting that is not SMTP, a 421), refuses its
 * settings (credentials refused, AUTH or TLS required), or a send fails after SLOW_FAIL_MS, its
 * other email rows are not tried one by one against it: each would fail the same way, a warn
 * line and an attempt apiece, and move on in its retry schedule (a fan-out of 20,000 rows
 * behind an SMTP restart of a few seconds would all wait 5 minutes for a second try,
 * dispatch_backoff; behind a mistyped password every one would be dead). They are deferred
 * instead, not counted as attempts, with the server's words, to the end of a hold of
 * DOWN_FIRST_S seconds that doubles each time the row tried after it (the probe) fails again,
 * DOWN_MAX_S at most; a row sent ends it. An MTA keeps a dead destination's mail queued the
 * same way. The probe's own failure says nothing about its
 * message either: it is deferred to the hold's end too, its words kept, no attempt counted
 * (its attempt row is written, outcome "deferred"), so that an outage of any length uses up no
 * row's retry schedule; but a row older than the whole
 * schedule (down_give_up) is counted as before and so goes dead in the end, rather than wait
 * for ever on a server that never comes back. The hold is this process's (another gateway on
 * the same database, or this one restarted, learns it by its own probe, made by one worker as
 * the rows' recorded failure tells it: down_probe) and the project's clock's (the test clock when
 * one is set); DOWN_SLOTS organisations at once, the one whose hold ends first makes way. A
 * hold is of the settings it failed with: new SMTP settings end it (in every process, as each
 * compares them), and the PUT makes the organisation's waiting emails due at once
 * (store_outbox_email_due, http_providers.c). Settings the server refused (a password it
 * rejects, AUTH or TLS it requires) are held longer: from DOWN_REFUSED_FIRST_S, doubling to
 * DOWN_REFUSED_MAX_S (an MTA's longest backoff), as each probe is a failed login, and a mail
 * service locks an account after a few of those (six tries in the first hour, then one an
 * hour, where a server that is down is probed every 5 minutes); the right settings saved
 * send everything at once as before. */
#define DOWN_FIRST_S         5
#define DOWN_MAX_S           300
#define DOWN_REFUSED_FIRST_S 60
#define DOWN_REFUSED_MAX_S   3600
#define DOWN_SLOTS   64
static struct down {
	int64_t org;  /* 0: a free slot */
	uint64_t cfg; /* settings_hash of the settings the server failed with */
	time_t until;
	int streak; /* holds in a row: the next is DOWN_FIRST_S << streak */
	unsigned long gen; /* wake_gen when down_queue last moved the organisation's due rows */
	bool adopt; /* new settings saved here, not tried yet: cfg taken from the first failure */
	char detail[DETAIL_LEN];
} downs[DOWN_SLOTS]; /* under down_lock */
static pthread_mutex_t down_lock = PTHREAD_MUTEX_INITIALIZER;
/* organisations whose slot a message sent here ended lately (the last UP_SLOTS, under
 * down_lock): their rows that failed before are no probe any more (down_probe) */
#define UP_SLOTS 64
static int64_t ups[UP_SLOTS];
static unsigned nups;
static atomic_int ndown; /* slots in use: none, no lock taken on the way of every message */

/* down_find - org's slot, or NULL (under down_lock) */
static struct down *down_find(int64_t org)
{
	int i;

	for(i = 0; i < DOWN_SLOTS; i++)
		if(downs[i].org == org)
			return &downs[i];
	return NULL;
}

/* down_slot - org's slot, else a free one, else the one whose hold ends first, made org's
 * (under down_lock) */
static struct down *down_slot(int64_t org)
{
	struct down *slot = down_find(org);
	int i;

	if(slot)
		return slot;
	for(i = 0; i < DOWN_SLOTS && (!slot || slot->org); i++)
		if(!downs[i].org || !slot || downs[i].until < slot->until)
			slot = &downs[i];
	if(!slot->org)
		atomic_fetch_add(&ndown, 1);
	memset(slot, 0, sizeof(*slot));
	slot->org = org;
	return slot;
}

/* down_adopt - a slot of settings saved here takes cfg, the settings whose send failed */
static void down_adopt(struct down *d, uint64_t cfg)
{
	if(d && d->adopt) {
		d->cfg = cfg;
		d->adopt = false;
	}
}

/* settings_hash - FNV-1a of org's stored SMTP settings as the worker's context holds them (0:
 * none could be read) */
static uint64_t settings_hash(struct worker *w, int64_t org)
{
	struct ctx_entry *e = NULL;
	char scratch[DETAIL_LEN];
	uint64_t h = 14695981039346656037ULL;
	const unsigned char *p;

	if(provider_for(w, org, &e, scratch, sizeof(scratch)) || !e || !e->config_text)
		return 0;
	for(p = (const unsigned char *)e->config_text; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

/* down_until - the end of org's hold when it is held at now with settings cfg (its words into
 * detail), else 0; a hold of other settings ends here */
static time_t down_until(int64_t org, uint64_t cfg, time_t now, char *detail, size_t n)
{
	struct down *d;
	time_t until = 0;

	pthread_mutex_lock(&down_lock);
	d = down_find(org);
	if(d && d->adopt) {
		/* settings saved here, not tried yet: as a hold that has ended (the first send
		 * that fails makes it a hold of the settings it read, down_note) */
	} else if(d && d->cfg != cfg) {
		memset(d, 0, sizeof(*d));
		atomic_fetch_sub(&ndown, 1);
	} else if(d && now < d->until) {
		until = d->until;
		snprintf(detail, n, "%s", d->detail);
	}
	pthread_mutex_unlock(&down_lock);
	return until;
}

static void down_queue(int64_t org, time_t until, const char *detail, int64_t budget_end);

/* down_held - the organisations held at now with the settings the worker reads for them, into
 * orgs (room for DOWN_SLOTS): the lease leaves their rows, which wait untried at the hold's end
 * (down_queue, run again here for rows that came in since); how many. A hold of other settings
 * ends here. Once a hold has ended, the probe is email worker 0's (connection 0, which every
 * organisation's max_connections admits): the other workers leave the organisation's rows to
 * it until one is sent (down_clear) or new settings come, so that a probe round is one try,
 * not one a worker (against settings the server refuses, each try is a failed login). */
static bool down_still(int64_t org)
{
	bool still;

	pthread_mutex_lock(&down_lock);
	still = down_find(org) != NULL;
	pthread_mutex_unlock(&down_lock);
	return still;
}

static int down_held(struct worker *w, time_t now, int64_t *orgs)
{
	struct {
		int64_t org;
		uint64_t cfg;
		unsigned long gen;
		bool ended;
	} held[DOWN_SLOTS];
	unsigned long gen;
	int i, n = 0, kept = 0;

	if(atomic_load(&ndown) == 0)
		return 0;
	pthread_mutex_lock(&wake_lock);
	gen = wake_gen;
	pthread_mutex_unlock(&wake_lock);
	pthread_mutex_lock(&down_lock);
	for(i = 0; i < DOWN_SLOTS; i++)
		if(downs[i].org && (now < downs[i].until || w->index > 0)) {
			held[n].org = downs[i].org;
			held[n].cfg = downs[i].cfg;
			held[n].gen = downs[i].gen;
			held[n].ended = now >= downs[i].until;
			n++;
		}
	pthread_mutex_unlock(&down_lock);
	/* the settings compared outside the lock (they may be read from the store) */
	for(i = 0; i < n; i++) {
		char detail[DETAIL_LEN];
		time_t until = down_until(held[i].org, settings_hash(w, held[i].org), now, detail,
		                          sizeof(detail));

		if(until == 0) {
			/* ended, left to worker 0's probe (unless the settings changed meanwhile) */
			if(held[i].ended && down_still(held[i].org))
				orgs[kept++] = held[i].org;
			continue;
		}
		orgs[kept++] = held[i].org;
		/* rows came in since the hold moved the queue (a fan-out's rest, a sign-in link):
		 * they wait with the others, words and all, rather than due and never leased */
		if(held[i].gen != gen)
			down_queue(held[i].org, until, detail, clock_mono_ms() + 1000);
	}
	return kept;
}

/* down_give_up - seconds the retry schedule spans: a row older than this is counted when its
 * server fails */
static time_t down_give_up(void)
{
	time_t sum = 0;
	size_t i;

	for(i = 0; i < GW_ARRAY_LEN(schedule); i++)
		sum += schedule[i];
	return sum;
}

/* down_note - org's server failed at now (refused: it refused the settings): a hold begins,
 * longer than the last when this was the probe after one (a failure of a send begun before the
 * hold leaves it as it is); the hold's end, *fresh whether this began it */
static time_t down_note(int64_t org, uint64_t cfg, time_t now, const char *detail, bool refused,
                        bool *fresh)
{
	struct down *d;
	int i, hold, first = refused ? DOWN_REFUSED_FIRST_S : DOWN_FIRST_S;
	int most = refused ? DOWN_REFUSED_MAX_S : DOWN_MAX_S;
	time_t until;

	*fresh = false;
	pthread_mutex_lock(&down_lock);
	d = down_find(org);
	down_adopt(d, cfg);
	if(d && d->cfg != cfg)
		d->streak = 0; /* other settings failed: a first hold */
	else if(d && now < d->until) {
		until = d->until;
		pthread_mutex_unlock(&down_lock);
		return until;
	}
	*fresh = true;
	if(!d)
		d = down_slot(org);
	d->cfg = cfg;
	hold = d->streak < 10 ? first << d->streak : most;
	if(hold > most)
		hold = most;
	d->streak++;
	d->until = now + hold;
	snprintf(d->detail, sizeof(d->detail), "%s", detail);
	i = d->streak;
	until = d->until;
	pthread_mutex_unlock(&down_lock);
	log_event("warn", "dispatch_server_down",
	          json_pack("{s:I, s:i, s:i, s:s}", "org_id", (json_int_t)org, "hold_secs", hold,
	                    "holds_in_a_row", i, "detail", detail));
	return until;
}

/* down_queue - org is held until until: its email rows due now wait to the hold's end, with
 * the server's words, in chunks of DOWN_CHUNK rows (a transaction each, so that other workers
 * record between them), until budget_end (the caller's lease); what is left is moved by the
 * next down_held, or deferred as leased */
#define DOWN_CHUNK 500
static void down_queue(int64_t org, time_t until, const char *detail, int64_t budget_end)
{
	char words[DETAIL_LEN];
	struct down *d;
	unsigned long gen;
	int n = 0, total = 0;
	gw_rc rc;

	snprintf(words, sizeof(words), "not tried: the server failed moments ago (%.400s)",
	         detail);
	/* what came in up to here is covered (down_held moves what comes in later) */
	pthread_mutex_lock(&wake_lock);
	gen = wake_gen;
	pthread_mutex_unlock(&wake_lock);
	pthread_mutex_lock(&down_lock);
	if((d = down_find(org)) != NULL)
		d->gen = gen;
	pthread_mutex_unlock(&down_lock);
	do {
		pthread_mutex_lock(&write_lock);
		rc = store_outbox_email_hold(wst, org, clock_now(), until, words, DOWN_CHUNK, &n);
		pthread_mutex_unlock(&write_lock);
		total += rc ? 0 : n;
	} while(!rc && n == DOWN_CHUNK && !atomic_load(&stopping) &&
	        clock_mono_ms() < budget_end);
	if(!rc && n == DOWN_CHUNK) {
		/* rows left, out of time: the next down_held goes on (after a refusal they wait
		 * due, left by the leases, for the hold's end) */
		pthread_mutex_lock(&down_lock);
		if((d = down_find(org)) != NULL)
			d->gen = gen - 1;
		pthread_mutex_unlock(&down_lock);
	}
	if(rc)
		log_event("warn", "dispatch_hold_failed",
		          json_pack("{s:I, s:s, s:s}", "org_id", (json_int_t)org, "error",
		                    gw_rc_name(rc), "cause", store_errmsg(wst)));
	else if(total > 0)
		log_event("info", "dispatch_server_down_queue",
		          json_pack("{s:I, s:i}", "org_id", (json_int_t)org, "rows", total));
}

/* up_known - org's server took a message here since its rows failed (under down_lock) */
static bool up_known(int64_t org)
{
	int i;

	for(i = 0; i < UP_SLOTS; i++)
		if(ups[i] == org)
			return true;
	return false;
}

/* down_clear - org's server took a message: no hold, and the workers that left its rows to the
 * probe woken (they may be idle) */
static void down_clear(int64_t org)
{
	struct down *d;
	bool found = false, was = false;

	if(atomic_load(&ndown) == 0)
		return;
	pthread_mutex_lock(&down_lock);
	d = down_find(org);
	if(d) {
		found = true;
		was = d->streak > 0; /* a hold, not settings saved here and tried at last */
		memset(d, 0, sizeof(*d));
		atomic_fetch_sub(&ndown, 1);
		if(!up_known(org))
			ups[nups++ % UP_SLOTS] = org;
	}
	pthread_mutex_unlock(&down_lock);
	if(was)
		log_event("info", "dispatch_server_up",
		          json_pack("{s:I}", "org_id", (json_int_t)org));
	if(found)
		dispatch_wake();
}

/* dispatch_settings_changed - new settings: no hold on the organisation's server, and the
 * settings tried first by one email worker (down_held: as after a hold), so that a mistyped
 * password costs one failed login, not one a connection; the first message sent lets every
 * worker take the organisation's rows */
void dispatch_settings_changed(int64_t org)
{
	struct down *d;

	down_clear(org);
	pthread_mutex_lock(&down_lock);
	d = down_slot(org);
	d->adopt = true; /* until 0: an ended hold, of the settings of the first send to fail */
	pthread_mutex_unlock(&down_lock);
	dispatch_wake();
}

/* down_probe - whether email worker w leaves row l, untried, to worker 0, the organisation's
 * probe: when settings saved here are not tried yet or a hold has ended (down_held keeps the
 * other workers' leases off such an organisation, and this the rows they leased before), and
 * when l failed before (a refused login, a server that was down) and this process knows
 * nothing of the organisation's server yet: the gateway was restarted during a hold, or
 * another gateway on the same database held the rows. Such a row makes the organisation's
 * slot (as if settings were saved here), so that a round of tries after a restart is one
 * login, not one a connection; the first message sent lets every worker take its rows
 * again (down_clear), and the organisation's other rows that failed before are then sent as
 * any (up_known). An active hold is down_until's. */
static bool down_probe(struct worker *w, const struct store_lease *l, time_t now)
{
	struct down *d;
	bool leave;

	if(!l->failed_before && atomic_load(&ndown) == 0)
		return false;
	pthread_mutex_lock(&down_lock);
	d = down_find(l->org_id);
	if(!d && l->failed_before && !up_known(l->org_id)) {
		d = down_slot(l->org_id);
		d->adopt = true;
	}
	leave = d && w->index > 0 && (d->adopt || now >= d->until);
	pthread_mutex_unlock(&down_lock);
	return leave;
}

/* run_batch - send n leased rows, filling res (recorded by record_and_lease) */
static void run_batch(struct worker *w, struct store_lease *leases, int n, struct store_result *res,
                      char (*details)[DETAIL_LEN])
{
	int64_t budget_end = clock_mono_ms() + (int64_t)config.lease_secs * 500;
	int64_t down_org = -1; /* an organisation whose server failed slowly in this batch */
	const char *down_detail = "", *down_provider = "none";
	unsigned long gen0, gen;
	time_t held;
	bool give_way = false;
	int i;

	w->batch_no++;
	pthread_mutex_lock(&wake_lock);
	gen0 = wake_gen;
	pthread_mutex_unlock(&wake_lock);
	for(i = 0; i < n; i++) {
		struct store_lease *l = &leases[i];
		struct store_result *r = &res[i];
		int slow = SLOW_NONE;
		int64_t t0 = clock_mono_ms(), t0us = clock_mono_us();

		if(l->priority > 0 && !give_way) {
			/* bulk rows give way when new rows came in since the lease (an urgent one
			 * may be among them): the rest goes back untried, in its place, and the
			 * next lease (at once) takes what is most urgent */
			pthread_mutex_lock(&wake_lock);
			gen = wake_gen;
			pthread_mutex_unlock(&wake_lock);
			give_way = gen != gen0;
		}
		if(atomic_load(&stopping) || clock_mono_ms() >= budget_end || give_way) {
			/* On stop (or at half the lease), what was leased but not started goes back
			 * untouched; a send already begun is finished and recorded. */
			memset(r, 0, sizeof(*r));
			r->id = l->id;
			r->outcome = STORE_DEFER;
			r->next_attempt_at = l->next_attempt_at;
			continue;
		}
		if(w->pc == PC_EMAIL && down_probe(w, l, clock_now())) {
			/* worker 0 tries the organisation's server first: back untried, in its place */
			memset(r, 0, sizeof(*r));
			r->id = l->id;
			r->outcome = STORE_DEFER;
			r->next_attempt_at = l->next_attempt_at;
			w->wake_after = true;
			continue;
		}
		if(w->pc == PC_EMAIL && atomic_load(&ndown) > 0 &&
		   (held = down_until(l->org_id, settings_hash(w, l->org_id), clock_now(),
		                      details[i], DETAIL_LEN)) > 0) {
			/* the organisation's server is down: deferred, not tried, not counted */
			char words[DETAIL_LEN];

			snprintf(words, sizeof(words), "%s", details[i]);
			memset(r, 0, sizeof(*r));
			r->id = l->id;
			r->outcome = STORE_DEFER;
			r->next_attempt_at = held;
			r->started_ms = r->finished_ms = clock_now_ms();
			snprintf(details[i], DETAIL_LEN, "not tried: the server failed moments ago (%.400s)",
			         words);
			r->detail = details[i];
		} else if(l->org_id == down_org) {
			struct provider_result pres = {.outcome = PROVIDER_TRANSIENT,
			                               .retry_after = -1};

			memset(r, 0, sizeof(*r));
			r->id = l->id;
			r->attempt = l->attempts + 1;
			r->provider = down_provider;
			r->started_ms = r->finished_ms = clock_now_ms();
			snprintf(details[i], DETAIL_LEN,
			         "not tried: the server failed moments ago (%s)", down_detail);
			r->detail = details[i];
			outcome_of(l, &pres, clock_now(), r);
		} else {
			deliver(w, l, r, details[i], DETAIL_LEN, &slow);
			note_send_time(w, clock_mono_us() - t0us);
			if(slow && w->pc == PC_EMAIL) {
				bool fresh;
				time_t t = clock_now(), until = down_note(
				        l->org_id, settings_hash(w, l->org_id), t, details[i],
				        slow == SLOW_REFUSED, &fresh);

				/* the server's failure, not this message's: not counted (nor dead
				 * when the settings are refused), back at the hold's end; a row
				 * older than the schedule: as before */
				if((r->outcome == STORE_RETRY || r->outcome == STORE_DEAD) &&
				   t - l->created_at < down_give_up()) {
					r->outcome = STORE_DEFER;
					r->next_attempt_at = until;
					r->hold_try = true; /* its attempt row, uncounted */
					r->attempt = l->attempts;
				}
				if(fresh)
					down_queue(l->org_id, until, details[i], budget_end);
			} else if(slow) {
				down_org = l->org_id;
				down_detail = details[i];
				down_provider = r->provider;
			} else if(w->pc == PC_EMAIL && r->outcome == STORE_SENT) {
				down_clear(l->org_id);
			}
		}
		/* a sent (or skipped) email's payload loses its link tokens as it is recorded (the
		 * message, which holds them too, is deleted then), rather than at the next tick's
		 * retention pass, which redacts 3,200 rows a tick at most. Left to that pass: an
		 * expired row (an admin may still retry it until then, as before), and a fan-out
		 * row whose body was put together here (no message rendered at enqueue: what is
		 * stored is its fills) */
		if(w->pc == PC_EMAIL && l->payload && (!l->body_id || l->message) &&
		   (r->outcome == STORE_SENT || r->outcome == STORE_SKIPPED))
			r->redacted = tpl_redact_text(l->payload);
		journal_note(w, l, r);
		dispatch_count_outcome(l->kind, r->provider ? r->provider : "none", r->outcome);
		log_result(w, l, r, clock_mono_ms() - t0);
	}
	log_buf_flush(&w->lb);
}

/* record_and_lease - record a sent batch (n results; 0: none) and, unless stopping, lease the
 * next one in the same transaction. When the database cannot be reached (PostgreSQL away) it
 * is GW_EUNAVAIL with the journal kept: the caller records the same results again once the
 * database is back (a worker that stops first leaves its journal for the next start to
 * record). When the results cannot be recorded for another reason the worker's rows go back
 * to pending (sent again later: at-least-once), so no row stays leased by a live worker. */
static gw_rc record_and_lease(struct worker *w, const struct store_result *res, int n,
                              struct store_lease **next, int *m)
{
	bool more = !atomic_load(&stopping);
	/* email worker number i is connection number i to each organisation's server: it
	 * takes the rows of organisations whose max_connections is above i */
	struct store_slot slot = {.index = w->index, .provider = "smtp", .def = CONNS_DEFAULT};
	int64_t skip[DOWN_SLOTS];
	gw_rc rc;
	int tries = 0;

	*next = NULL;
	*m = 0;
	if(w->pc == PC_EMAIL && more) {
		/* the rows of an organisation whose server is down wait for the hold's end */
		slot.skip = skip;
		slot.nskip = down_held(w, clock_now(), skip);
	}
	pthread_mutex_lock(&write_lock);
	do {
		rc = store_outbox_cycle(wst, w->owner, res, n, clock_now(), pclass_names[w->pc],
		                        self_prefix, config.lease_secs, more ? lease_size(w) : 0,
		                        more ? next : NULL, m, w->pc == PC_EMAIL ? &slot : NULL);
	} while(rc == GW_EBUSY && ++tries < 3);
	if(rc) {
		log_event("error", n ? "dispatch_finish_failed" : "dispatch_lease_failed",
		          json_pack("{s:s, s:s}", "error", gw_rc_name(rc), "cause",
		                    store_errmsg(wst)));
		if(n && store_unavailable(wst)) {
			pthread_mutex_unlock(&write_lock);
			return GW_EUNAVAIL;
		}
		if(n)
			store_outbox_release(wst, w->owner);
	}
	pthread_mutex_unlock(&write_lock);
	if(n)
		journal_reset(w); /* recorded (or given back): nothing in it is unrecorded now */
	return rc;
}

static gw_rc start_worker(enum pclass pc, int index, const char *host, struct gw_err *err);

/* email_pool_size - how many email workers the settings ask for: the largest max_connections
 * (CONNS_DEFAULT for settings without it and for organisations on the maildir), at least
 * serve --workers, at most CONNS_MAX */
static int email_pool_size(struct store *st)
{
	int n = CONNS_DEFAULT;

	if(store_outbox_max_connections(st, "smtp", CONNS_DEFAULT, &n))
		n = CONNS_DEFAULT;
	if(n < CONNS_DEFAULT)
		n = CONNS_DEFAULT;
	if(n < config.workers)
		n = config.workers;
	return n > CONNS_MAX ? CONNS_MAX : n;
}

/* grow_email_pool - start the email workers a raised max_connections asks for (never stops
 * any: a lowered one leaves the workers above it idle, as their leases skip the
 * organisation) */
static void grow_email_pool(struct store *st)
{
	struct gw_err err = {0};
	int want = email_pool_size(st);

	pthread_mutex_lock(&pool_lock);
	while(nemail < want && !atomic_load(&stopping) &&
	      start_worker(PC_EMAIL, nemail, pool_host, &err) == GW_OK)
		;
	pthread_mutex_unlock(&pool_lock);
}

/* worker_main - lease, send, record, until stopped */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct store_lease *leases = NULL;
	struct store_result *res = NULL;
	char(*details)[DETAIL_LEN] = NULL;
	struct gw_err err = {0};
	int64_t grown_at;
	int n = 0, i;

	if(store_open(config.db_path, false, &w->st, &err)) {
		log_event("error", "dispatch_open_failed",
		          json_pack("{s:i, s:s}", "worker", w->index, "error", err.message));
		goto out;
	}
	journal_open(w);
	/* the first look at once: a database whose organisations ask for more connections than
	 * --workers gets them from the start, not GROW_EVERY_MS later */
	grown_at = clock_mono_ms() - GROW_EVERY_MS;
	res = calloc((size_t)config.batch, sizeof(*res));
	details = calloc((size_t)config.batch, sizeof(*details));
	if(!res || !details)
		goto out;
	while(!atomic_load(&stopping)) {
		struct store_lease *next = NULL;
		unsigned long seen;
		int m = 0;

		pthread_mutex_lock(&wake_lock);
		seen = wake_gen;
		pthread_mutex_unlock(&wake_lock);
		if(w->pc == PC_EMAIL && w->index == 0 &&
		   clock_mono_ms() - grown_at >= GROW_EVERY_MS) {
			grow_email_pool(w->st);
			grown_at = clock_mono_ms();
		}
		if(n == 0 && (record_and_lease(w, NULL, 0, &leases, &n) || n == 0)) {
			wait_for_work(seen);
			continue;
		}
		/* send the batch, then record it and take the next in one transaction */
		run_batch(w, leases, n, res, details);
		for(int wait_ms = 100; record_and_lease(w, res, n, &next, &m) == GW_EUNAVAIL;
		    wait_ms = wait_ms < 2000 ? wait_ms * 2 : 2000) {
			struct timespec d = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};

			if(atomic_load(&stopping)) {
				w->keep_journal = true; /* the next start records what it holds */
				break;
			}
			nanosleep(&d, NULL);
		}
		if(w->wake_after) {
			w->wake_after = false;
			dispatch_wake(); /* worker 0 may be idle: the rows left to it are due */
		}
		for(i = 0; i < n; i++) {
			free(res[i].cal_reconnect);
			res[i].cal_reconnect = NULL;
			free(res[i].zoho_email);
			res[i].zoho_email = NULL;
			free(res[i].redacted);
			res[i].redacted = NULL;
		}
		store_leases_free(leases, n);
		leases = next;
		n = m;
	}
	store_leases_free(leases, n); /* leased, not started: given back below */
	/* anything still leased by this worker (a failed finish) goes back */
	pthread_mutex_lock(&write_lock);
	store_outbox_release(wst, w->owner);
	pthread_mutex_unlock(&write_lock);
	if(!w->keep_journal)
		journal_close(w);
out:
	journal_unmap(w);
	for(i = 0; i < w->ncache; i++)
		ctx_clear(&w->cache[i]);
	free(res);
	free(details);
	store_close(w->st);
	w->st = NULL;
	pthread_mutex_lock(&wake_lock);
	w->done = 1;
	running--;
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&wake_lock);
	return NULL;
}

/* ---- the checkpoint thread ----
 * No connection checkpoints on commit (store_open): this thread, on a connection of its own,
 * copies the WAL back into the database every CHECKPOINT_MS (a passive checkpoint: it waits for
 * no reader and no writer), so that neither a request nor a worker recording its batch pays for
 * it while others wait on the write lock. */
#define CHECKPOINT_MS 500
#define TRIM_EVERY    20 /* rounds: 10 s */
static pthread_t ckpt_thread;
static int ckpt_running; /* under wake_lock */

/* checkpoint_main - checkpoint until stopped */
static void *checkpoint_main(void *arg)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	struct timespec ts;
	unsigned rounds = 0;

	(void)arg;
	if(store_open(config.db_path, false, &st, &err))
		return NULL;
	pthread_mutex_lock(&wake_lock);
	while(!atomic_load(&stopping)) {
		pthread_mutex_unlock(&wake_lock);
		if(store_checkpoint(st))
			log_event("warn", "dispatch_checkpoint_failed",
			          json_pack("{s:s}", "cause", store_errmsg(st)));
		/* glibc keeps what the HTTP threads and workers freed in their own arenas; under
		 * steady traffic each arena's high-water mark creeps up with the answers (bench/soak.sh
		 * saw +30 % in 10 minutes with no leak). Every TRIM_EVERY rounds the free pages go
		 * back to the system; it costs well under a millisecond of this thread. */
		if(++rounds % TRIM_EVERY == 0)
			(void)malloc_trim(0);
		/* CLOCK_REALTIME deadlines, as every wait here (wait_for_work says why) */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)CHECKPOINT_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&wake_lock);
		if(!atomic_load(&stopping))
			pthread_cond_timedwait(&done_cond, &wake_lock, &ts);
	}
	pthread_mutex_unlock(&wake_lock);
	store_checkpoint(st);
	store_close(st);
	return NULL;
}

static pthread_t listen_thread;
static int listen_running; /* under wake_lock */

/* listen_main - wake the workers when another gateway on the database enqueues (PostgreSQL's
 * LISTEN/NOTIFY), instead of their idle poll; with SQLite there is no other gateway, and the
 * thread ends at once */
static void *listen_main(void *arg)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	bool got;

	(void)arg;
	if(store_open(config.db_path, false, &st, &err))
		return NULL;
	if(store_listen(st) == GW_EINVAL) {
		store_close(st);
		return NULL;
	}
	while(!atomic_load(&stopping)) {
		if(store_wait_enqueued(st, LISTEN_WAIT_MS, &got) != GW_OK) {
			/* the database is away: the connection comes back (and listens again) on a
			 * later call; meanwhile the idle poll covers */
			struct timespec d = {0, LISTEN_WAIT_MS * 1000000L};

			nanosleep(&d, NULL);
			continue;
		}
		if(got)
			dispatch_wake();
	}
	store_close(st);
	return NULL;
}

/* owner_dead - is the owner of a lease a process of this host that no longer runs? */
static bool owner_dead(const char *owner, const char *host)
{
	char h[256] = "";
	long pid = 0;
	int colons = 0;
	const char *p;

	for(p = owner; *p; p++)
		colons += *p == ':';
	if(colons >= 4) {
		/* "host:pid:class:index:start_ms" */
		if(sscanf(owner, "%255[^:]:%ld:", h, &pid) != 2 || strcmp(h, host) != 0)
			return false;
	} else if(colons == 2) {
		/* the first release's "pid:index:start_ms": one process per database, this host */
		if(sscanf(owner, "%ld:", &pid) != 1)
			return false;
	} else {
		return false;
	}
	if(pid <= 0)
		return false;
	if(pid == (long)getpid())
		return true; /* a former process that had our pid: our workers have not started */
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* reclaim_dead_leases - give back the rows leased by dead processes of this host */
static void reclaim_dead_leases(const char *host)
{
	struct store *st = NULL;
	struct gw_err err = {0};
	json_t *owners = NULL, *o;
	size_t i;

	if(store_open(config.db_path, false, &st, &err))
		return;
	if(store_outbox_lease_owners(st, &owners) == GW_OK) {
		json_array_foreach(owners, i, o)
		{
			const char *owner = json_string_value(o);
			if(owner && owner_dead(owner, host) &&
			   store_outbox_release(st, owner) == GW_OK)
				log_event("info", "dispatch_leases_reclaimed",
				          json_pack("{s:s}", "owner", owner));
		}
	}
	json_decref(owners);
	store_close(st);
}

/* start_worker - one worker thread of class pc */
static gw_rc start_worker(enum pclass pc, int index, const char *host, struct gw_err *err)
{
	struct worker *w;

	if(nworkers >= MAX_WORKERS)
		return GW_OK;
	w = calloc(1, sizeof(*w));
	if(!w)
		return gw_err_set(err, GW_ENOMEM, "", "out of memory");
	w->index = index;
	w->pc = pc;
	w->jfd = -1;
	snprintf(w->owner, sizeof(w->owner), "%s:%ld:%s:%d:%lld", host, (long)getpid(),
	         pclass_names[pc], index, (long long)clock_mono_ms());
	pthread_mutex_lock(&wake_lock);
	running++;
	pthread_mutex_unlock(&wake_lock);
	if(pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		pthread_mutex_lock(&wake_lock);
		running--;
		pthread_mutex_unlock(&wake_lock);
		free(w);
		return gw_err_set(err, GW_EIO, "", "cannot start a dispatch worker");
	}
	workers[nworkers++] = w;
	if(pc == PC_EMAIL)
		nemail++;
	return GW_OK;
}

/* dispatch_start - reclaim dead leases, start the worker pools */
gw_rc dispatch_start(const struct dispatch_config *cfg, struct gw_err *err)
{
	char host[256];
	int counts[PC_COUNT], c, i;
	gw_rc rc;

	config = *cfg;
	if(config.workers < 1)
		config.workers = 1;
	if(config.calendar_workers < 1)
		config.calendar_workers = 2;
	if(config.zoho_workers < 1)
		config.zoho_workers = 1;
	if(config.batch < 1)
		config.batch = 16;
	if(config.lease_secs < 5)
		config.lease_secs = 60;
	if(config.drain_secs < 1)
		config.drain_secs = 20;
	if(gethostname(host, sizeof(host)) != 0 || !host[0] || strchr(host, ':'))
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(self_prefix, sizeof(self_prefix), "%s:%ld:", host, (long)getpid());
	atomic_store(&stopping, 0);
	journal_dir[0] = '\0';
	if(config.data_dir && config.data_dir[0])
		snprintf(journal_dir, sizeof(journal_dir), "%s/outbox-journal", config.data_dir);
	journal_replay(host); /* first: their sent rows must not go back to pending */
	reclaim_dead_leases(host);
	if(store_open(config.db_path, false, &wst, err))
		return err->message[0] ? GW_EDB
		                       : gw_err_set(err, GW_EDB, "", "cannot open the store");
	if(store_outbox_tune(wst))
		log_event("warn", "dispatch_tune_failed",
		          json_pack("{s:s}", "cause", store_errmsg(wst)));
	snprintf(pool_host, sizeof(pool_host), "%s", host);
	nemail = 0;
	counts[PC_EMAIL] = email_pool_size(wst);
	counts[PC_CALENDAR] = config.calendar_workers;
	counts[PC_ZOHO] = config.zoho_workers;
	pthread_mutex_lock(&pool_lock);
	for(c = 0; c < PC_COUNT; c++) {
		for(i = 0; i < counts[c]; i++) {
			rc = start_worker((enum pclass)c, i, host, err);
			if(rc) {
				pthread_mutex_unlock(&pool_lock);
				dispatch_stop();
				return rc;
			}
		}
	}
	pthread_mutex_unlock(&pool_lock);
	if(pthread_create(&ckpt_thread, NULL, checkpoint_main, NULL) == 0) {
		pthread_mutex_lock(&wake_lock);
		ckpt_running = 1;
		pthread_mutex_unlock(&wake_lock);
	}
	if(pthread_create(&listen_thread, NULL, listen_main, NULL) == 0) {
		pthread_mutex_lock(&wake_lock);
		listen_running = 1;
		pthread_mutex_unlock(&wake_lock);
	}
	log_event("info", "dispatch_started",
	          json_pack("{s:i, s:i, s:i, s:i}", "email_workers", counts[PC_EMAIL],
	                    "calendar_workers", counts[PC_CALENDAR], "zoho_workers",
	                    counts[PC_ZOHO], "batch", config.batch));
	return GW_OK;
}

/* dispatch_stop - drain (bounded) and join */
void dispatch_stop(void)
{
	struct timespec ts;
	int i, left;

	atomic_store(&stopping, 1);
	dispatch_wake();
	pthread_mutex_lock(&wake_lock);
	pthread_cond_broadcast(&done_cond); /* the checkpoint thread waits on it */
	pthread_mutex_unlock(&wake_lock);
	if(ckpt_running) {
		pthread_join(ckpt_thread, NULL);
		ckpt_running = 0;
	}
	if(listen_running) {
		pthread_join(listen_thread, NULL);
		listen_running = 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += config.drain_secs > 0 ? config.drain_secs : 20;
	pthread_mutex_lock(&wake_lock);
	while(running > 0) {
		if(pthread_cond_timedwait(&done_cond, &wake_lock, &ts) != 0)
			break;
	}
	left = running;
	pthread_mutex_unlock(&wake_lock);
	if(left > 0)
		log_event("warn", "dispatch_drain_timeout",
		          json_pack("{s:i, s:s}", "workers_still_sending", left, "message",
		                    "their rows stay leased until the next start gives them back"));
	pthread_mutex_lock(&pool_lock); /* no worker starts now: stopping is set */
	for(i = 0; i < nworkers; i++) {
		int done;

		pthread_mutex_lock(&wake_lock);
		done = workers[i]->done;
		pthread_mutex_unlock(&wake_lock);
		if(!done) {
			pthread_detach(workers[i]->thread);
			continue; /* still in a send: left behind (the process is exiting) */
		}
		pthread_join(workers[i]->thread, NULL);
		free(workers[i]);
	}
	nworkers = 0;
	nemail = 0;
	pthread_mutex_unlock(&pool_lock);
	if(left == 0) {
		/* a worker left behind may still finish its batch through it: then it stays open */
		store_close(wst);
		wst = NULL;
	}
}

