/*
 * dispatch_metrics.c - the delivery engine's Prometheus metrics: outcome counters by kind and
 * provider, the attempt latency histogram, and the outbox's rows, depth and oldest due age and
 * the calendar connections by provider and status, as the store reports them.
 *
 * Entry points: dispatch_metrics(); for the engine, dispatch_count_outcome() and
 * dispatch_count_latency() (dispatch_int.h).
 * Threading: the counters are atomics, bumped by every worker and read by any HTTP thread; the
 * outbox's counts are kept under counts_lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "dispatch.h"
#include "dispatch_int.h"
#include "gateway/templates/tpl.h"

/* ---- metrics: kinds and providers are fixed lists; anything else counts as "other" ---- */
static const char *const kind_names[] = {
        "new_request",  "scheduling_link", "confirmation", "trainer_confirmation",
        "reminder",     "close_reminder",  "survey",       "no_show",
        "cancellation", "request_received", "unmatched_request", "calendar_reconnect", "calendar",
        "zoho_session", "session_link", "sign_in", "test_email",
        "other",
};
#define NKINDS GW_ARRAY_LEN(kind_names)
static const char *const provider_names[] = {"maildir", "smtp", "google", "outlook",
                                             "caldav",  "zoho", "none"};
#define NPROVIDERS GW_ARRAY_LEN(provider_names)
enum mo { MO_SENT, MO_FAILED, MO_DEAD, MO_EXPIRED, MO_SKIPPED, MO_HELD, MO_COUNT };
static const char *const mo_names[MO_COUNT] = {"sent",    "failed",  "dead",
                                               "expired", "skipped", "held"};
static const char *const mo_help[MO_COUNT] = {
        "Effects delivered, by kind and provider.",
        "Attempts that failed and will be retried, by kind and provider.",
        "Effects dead-lettered (permanent failure or end of the schedule), by kind and provider.",
        "Effects past their deadline before they could be sent, by kind.",
        "Effects skipped at send time (booking no longer confirmed or rescheduled), by kind.",
        "Calendar effects held until the trainer reconnects a revoked calendar, by kind.",
};
/* attempt latency histogram buckets, seconds (Prometheus "le" upper bounds) */
static const double lat_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NLAT GW_ARRAY_LEN(lat_le)

static _Atomic long long outcome_count[NKINDS][NPROVIDERS][MO_COUNT];
static _Atomic long long lat_count[NPROVIDERS][NLAT + 1]; /* per bucket, not cumulative */
static _Atomic long long lat_sum_us[NPROVIDERS];

/* name_index - index of s in names (n entries), or the last entry ("other", "none") */
static size_t name_index(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for(i = 0; s && i + 1 < n; i++)
		if(strcmp(names[i], s) == 0)
			return i;
	return n - 1;
}

/* dispatch_count_outcome - one result into the metrics counters */
void dispatch_count_outcome(const char *kind, const char *provider, enum store_outcome o)
{
	size_t k = name_index(kind_names, NKINDS, kind);
	size_t p = name_index(provider_names, NPROVIDERS, provider);
	enum mo m;

	switch(o) {
	case STORE_SENT:
		m = MO_SENT;
		break;
	case STORE_RETRY:
		m = MO_FAILED;
		break;
	case STORE_DEAD:
		m = MO_DEAD;
		break;
	case STORE_EXPIRED:
		m = MO_EXPIRED;
		break;
	case STORE_SKIPPED:
		m = MO_SKIPPED;
		break;
	case STORE_HELD:
		m = MO_HELD;
		break;
	case STORE_DEFER:
	default:
		return; /* not tried: nothing happened */
	}
	atomic_fetch_add(&outcome_count[k][p][m], 1);
}

/* dispatch_count_latency - one provider call into the latency histogram */
void dispatch_count_latency(const char *provider, int64_t us)
{
	size_t p = name_index(provider_names, NPROVIDERS, provider), b;

	for(b = 0; b < NLAT && (double)us > lat_le[b] * 1e6; b++)
		;
	atomic_fetch_add(&lat_count[p][b], 1);
	atomic_fetch_add(&lat_sum_us[p], us);
}

/* ---- the outbox's rows by status, kind and class ----
 * store_outbox_counts reads every row of the outbox (about a microsecond a row: a second at a
 * million rows), and /metrics needs no token. So the counts are kept and shared: they are
 * counted again only once COUNT_SPACING times as long as their last count took has gone by
 * since it ended, which holds the counting to under 2% of one core however often /metrics is
 * asked (at a few thousand rows a count takes a few milliseconds and the counts are fresh;
 * at a million, about a minute old at most). ordinatus_outbox_rows_age_seconds says how old
 * the counts served are; the depth, the oldest due row and the counters are read afresh. */
#define COUNT_SPACING 50

static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *counts_kept;       /* the last counts (owned), NULL before the first */
static int64_t counts_at_ms;      /* clock_mono_ms when they were counted (the count's end) */
static int64_t counts_took_ms;    /* how long that count took */

/* dispatch_counts_due - counted again once COUNT_SPACING times the count's time went by */
bool dispatch_counts_due(int64_t now_ms, int64_t at_ms, int64_t took_ms)
{
	return now_ms - at_ms >= COUNT_SPACING * took_ms;
}

/* outbox_counts - the counts to serve (a new reference) and their age in seconds: the kept
 * ones, or new ones when those are due (one thread counts; the others wait for its result) */
static gw_rc outbox_counts(struct store *st, json_t **out, int64_t *age_s)
{
	int64_t t0;
	json_t *fresh = NULL;
	gw_rc rc = GW_OK;

	pthread_mutex_lock(&counts_lock);
	t0 = clock_mono_ms();
	if(!counts_kept || dispatch_counts_due(t0, counts_at_ms, counts_took_ms)) {
		rc = store_outbox_counts(st, &fresh);
		if(rc == GW_OK) {
			json_decref(counts_kept);
			counts_kept = fresh;
			counts_at_ms = clock_mono_ms();
			counts_took_ms = counts_at_ms - t0;
		} else if(counts_kept) {
			/* a count that failed (the database busy): the kept ones, their age saying
			 * how old; counted again at the next scrape */
			rc = GW_OK;
		}
	}
	if(rc == GW_OK) {
		*out = json_incref(counts_kept);
		*age_s = (clock_mono_ms() - counts_at_ms) / 1000;
	}
	pthread_mutex_unlock(&counts_lock);
	return rc;
}

/* metric_counts - enqueued totals and rows by status, from the store */
static gw_rc metric_counts(struct tpl_buf *b, struct store *st)
{
	json_t *counts = NULL, *enq = NULL, *v;
	const char *key;
	int64_t age = 0;
	gw_rc rc;

	rc = outbox_counts(st, &counts, &age);
	if(rc)
		return rc;
	tpl_buf_addf(b,
	             "# HELP ordinatus_outbox_rows_age_seconds How long ago the outbox rows "
	             "below were counted (a large outbox is counted again less often).\n"
	             "# TYPE ordinatus_outbox_rows_age_seconds gauge\n"
	             "ordinatus_outbox_rows_age_seconds %lld\n",
	             (long long)age);
	enq = json_object();
	if(!enq) {
		json_decref(counts);
		return GW_ENOMEM;
	}
	tpl_buf_add(b, "# HELP ordinatus_outbox_rows Outbox rows by status, kind and provider "
	               "class.\n# TYPE ordinatus_outbox_rows gauge\n");
	json_object_foreach(counts, key, v)
	{
		/* key: "status|kind|class" as the store reports it */
		char status[32] = "", kind[32] = "", pclass[32] = "", kc[80];
		json_int_t n = json_integer_value(v);

		if(sscanf(key, "%31[^|]|%31[^|]|%31s", status, kind, pclass) != 3)
			continue;
		tpl_buf_addf(b,
		             "ordinatus_outbox_rows{status=\"%s\",kind=\"%s\",class=\"%s\"} %lld\n",
		             status, kind, pclass, (long long)n);
		snprintf(kc, sizeof(kc), "%s|%s", kind, pclass);
		json_object_set_new(enq, kc,
		                    json_integer(json_integer_value(json_object_get(enq, kc)) + n));
	}
	tpl_buf_add(b, "# HELP ordinatus_effects_enqueued_total Effects enqueued, by kind and "
	               "provider class (the provider is chosen at send time).\n"
	               "# TYPE ordinatus_effects_enqueued_total counter\n");
	json_object_foreach(enq, key, v)
	{
		char kind[32] = "", pclass[32] = "";

		if(sscanf(key, "%31[^|]|%31s", kind, pclass) == 2)
			tpl_buf_addf(
			        b,
			        "ordinatus_effects_enqueued_total{kind=\"%s\",class=\"%s\"} %lld\n",
			        kind, pclass, (long long)json_integer_value(v));
	}
	json_decref(enq);
	json_decref(counts);
	return GW_OK;
}

/* metric_connections - the trainers' calendar connections by provider and status, from the
 * store (a needs_reconnect count above 0 means trainers whose bookings are held) */
static gw_rc metric_connections(struct tpl_buf *b, struct store *st)
{
	json_t *counts = NULL, *v;
	const char *key;
	gw_rc rc = store_calendar_counts(st, &counts);

	if(rc)
		return rc;
	tpl_buf_add(b, "# HELP ordinatus_calendar_connections Trainers' calendar connections by "
	               "provider and status.\n# TYPE ordinatus_calendar_connections gauge\n");
	json_object_foreach(counts, key, v)
	{
		char provider[32] = "", status[32] = "";

		if(sscanf(key, "%31[^|]|%31s", provider, status) == 2)
			tpl_buf_addf(b,
			             "ordinatus_calendar_connections{provider=\"%s\",status=\"%s\"} "
			             "%lld\n",
			             provider, status, (long long)json_integer_value(v));
	}
	json_decref(counts);
	return GW_OK;
}

/* dispatch_metrics - Prometheus text of the delivery engine */
gw_rc dispatch_metrics(struct tpl_buf *b, struct store *st)
{
	time_t now = clock_now(), oldest = 0;
	int64_t pending = 0, fanouts = 0;
	size_t k, p, m, i;
	gw_rc rc;

	rc = metric_counts(b, st);
	if(rc)
		return rc;
	rc = metric_connections(b, st);
	if(rc)
		return rc;
	rc = store_outbox_depth(st, now, &pending, &oldest);
	if(rc)
		return rc;
	rc = store_fanout_pending(st, &fanouts);
	if(rc)
		return rc;
	tpl_buf_addf(b,
	             "# HELP ordinatus_fanouts_pending Fan-outs whose other trainers' new_request "
	             "rows are still to be enqueued (the background fan-out).\n"
	             "# TYPE ordinatus_fanouts_pending gauge\n"
	             "ordinatus_fanouts_pending %lld\n",
	             (long long)fanouts);
	tpl_buf_addf(b,
	             "# HELP ordinatus_outbox_pending Rows waiting to be sent (pending or "
	             "leased).\n# TYPE ordinatus_outbox_pending gauge\n"
	             "ordinatus_outbox_pending %lld\n",
	             (long long)pending);
	tpl_buf_addf(b,
	             "# HELP ordinatus_outbox_oldest_due_age_seconds How long the oldest due "
	             "row has waited since it became due (0: none is waiting).\n"
	             "# TYPE ordinatus_outbox_oldest_due_age_seconds gauge\n"
	             "ordinatus_outbox_oldest_due_age_seconds %lld\n",
	             (long long)(oldest > 0 && now > oldest ? now - oldest : 0));
	for(m = 0; m < MO_COUNT; m++) {
		tpl_buf_addf(b,
		             "# HELP ordinatus_effects_%s_total %s\n"
		             "# TYPE ordinatus_effects_%s_total counter\n",
		             mo_names[m], mo_help[m], mo_names[m]);
		for(k = 0; k < NKINDS; k++) {
			for(p = 0; p < NPROVIDERS; p++) {
				long long n = atomic_load(&outcome_count[k][p][m]);

				if(!n)
					continue;
				tpl_buf_addf(b, "ordinatus_effects_%s_total", mo_names[m]);
				tpl_buf_addf(b, "{kind=\"%s\",provider=\"%s\"} %lld\n",
				             kind_names[k], provider_names[p], n);
			}
		}
	}
	tpl_buf_add(b, "# HELP ordinatus_delivery_attempt_seconds Time one provider call took, by "
	               "provider.\n# TYPE ordinatus_delivery_attempt_seconds histogram\n");
	for(p = 0; p < NPROVIDERS; p++) {
		long long cum = 0, total = 0, snap[NLAT + 1];

		/* one read of each bucket, so the cumulative counts and the total agree */
		for(i = 0; i <= NLAT; i++) {
			snap[i] = atomic_load(&lat_count[p][i]);
			total += snap[i];
		}
		if(!total)
			continue;
		for(i = 0; i < NLAT; i++) {
			cum += snap[i];
			tpl_buf_addf(b,
			             "ordinatus_delivery_attempt_seconds_bucket{provider=\"%s\","
			             "le=\"%g\"} %lld\n",
			             provider_names[p], lat_le[i], cum);
		}
		tpl_buf_addf(
		        b,
		        "ordinatus_delivery_attempt_seconds_bucket{provider=\"%s\",le=\"+Inf\"} "
		        "%lld\n"
		        "ordinatus_delivery_attempt_seconds_sum{provider=\"%s\"} %.6f\n"
		        "ordinatus_delivery_attempt_seconds_count{provider=\"%s\"} %lld\n",
		        provider_names[p], total, provider_names[p],
		        (double)atomic_load(&lat_sum_us[p]) / 1e6, provider_names[p], total);
	}
	return GW_OK;
}
