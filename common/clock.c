/*
 * clock.c - real time, or a frozen test instant.
 *
 * Entry points: clock_now(), clock_now_ms(), clock_mono_ms(), clock_mono_us(),
 * clock_set_test(), clock_is_test().
 * Threading: the test instant is one atomic; readers never lock.
 */
#include "clock.h"

#include <stdatomic.h>

static _Atomic int64_t test_now = -1;

/* clock_now - current time in seconds */
time_t clock_now(void)
{
	int64_t t = atomic_load(&test_now);
	struct timespec ts;

	if(t >= 0)
		return (time_t)t;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

/* clock_now_ms - current time in milliseconds */
int64_t clock_now_ms(void)
{
	int64_t t = atomic_load(&test_now);
	struct timespec ts;

	if(t >= 0)
		return t * 1000;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* clock_mono_us - monotonic microseconds */
int64_t clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* clock_mono_ms - monotonic milliseconds */
int64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* clock_set_test - freeze the clock, or release it with t < 0 */
void clock_set_test(time_t t)
{
	atomic_store(&test_now, t < 0 ? -1 : (int64_t)t);
}

/* clock_is_test - is a test instant set */
bool clock_is_test(void)
{
	return atomic_load(&test_now) >= 0;
}
