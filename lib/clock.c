/*
 * clock.c -- CLOCK_MONOTONIC in the units the project uses.  It owns no
 * state and never reads the wall clock.
 */
#include "autoconfig.h"

#include "lib/clock.h"

#define CLOCK_NS_PER_S  1000000000L

int64_t
clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

void
clock_abs_after(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= CLOCK_NS_PER_S) {
		ts->tv_sec++;
		ts->tv_nsec -= CLOCK_NS_PER_S;
	}
}
