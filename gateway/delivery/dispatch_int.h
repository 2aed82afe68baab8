/*
 * dispatch_int.h - what the delivery engine's files share among themselves, not for others.
 */
#ifndef DISPATCH_INT_H
#define DISPATCH_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* dispatch_count_outcome - one result (kind, provider borrowed) into the metrics counters */
void dispatch_count_outcome(const char *kind, const char *provider, enum store_outcome o);

/* dispatch_count_latency - one provider call of us microseconds into the latency histogram */
void dispatch_count_latency(const char *provider, int64_t us);

/* dispatch_counts_due - whether the outbox's counts for /metrics, counted at at_ms (monotonic)
 * in took_ms, are to be counted again at now_ms: once 50 times as long as the count took has
 * gone by since it ended (dispatch_metrics.c) */
bool dispatch_counts_due(int64_t now_ms, int64_t at_ms, int64_t took_ms);

#endif
