/*
 * dispatch_metrics.c - the delivery engine's Prometheus metrics: outcome counters by kind and
 * provider, the attempt latency histogram, and the outbox's rows, depth and oldest due age and
 * the calendar connections by provider and status, as the store reports them.
 *
 * Entry points: dispatch_metrics(); for the engine, dispatch_count_outcome() and
 * dispatch_count_latency() (dispatch_int.h).
 * Threading: the counters are atomics, bumped by every worker and read by any HTTP thread.
 */
#include <stdatomic.h>
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

/* open_secrets - decrypt every "sealed:" string of a stored config in place */
/* metric_counts - enqueued totals and rows by status, from the store */
static gw_rc metric_counts(struct tpl_buf *b, struct store *st)
{
	json_t *counts = NULL, *enq = NULL, *v;
	const char *key;
	gw_rc rc;

	rc = store_outbox_counts(st, &counts);
	if(rc)
		return rc;
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
