/*
 * dispatch_int.h - what the delivery engine's files share among themselves, not for others.
 */
#ifndef DISPATCH_INT_H
#define DISPATCH_INT_H

#include <stdint.h>

#include "store/store.h"

/* dispatch_count_outcome - one result (kind, provider borrowed) into the metrics counters */
void dispatch_count_outcome(const char *kind, const char *provider, enum store_outcome o);

/* dispatch_count_latency - one provider call of us microseconds into the latency histogram */
void dispatch_count_latency(const char *provider, int64_t us);

#endif
