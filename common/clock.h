/*
 * clock.h - the one clock (docs/design.md rule 5). No code calls time() directly.
 *
 * A test clock (serve --test-clock) freezes the clock at a set instant until it is set again.
 * Threading: every call is safe from any thread (atomics).
 */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* clock_now - seconds since the epoch, UTC: the test clock when one is set. */
time_t clock_now(void);

/* clock_now_ms - milliseconds since the epoch (test clock in whole seconds). */
int64_t clock_now_ms(void);

/* clock_mono_us - monotonic microseconds (a duration's finer measure); never the test clock. */
int64_t clock_mono_us(void);

/* clock_mono_ms - monotonic milliseconds for timeouts and latency; never the test clock. */
int64_t clock_mono_ms(void);

/* clock_set_test - freeze the clock at t (t < 0 returns to real time). */
void clock_set_test(time_t t);

/* clock_is_test - true while a test clock is set. */
bool clock_is_test(void);

#endif
