/*
 * clock.h -- the one monotonic clock of the project.  Deadlines, timeouts,
 * heartbeats, latencies and backoffs are all measured on CLOCK_MONOTONIC,
 * which never jumps with the wall clock; wall time (timestamps in logs, JWT
 * iat/exp, database rows) is not this module's business.  Any thread and
 * any process may call these functions; the values of two processes of one
 * machine are comparable (the scoreboard's heartbeats rely on it).
 */
#ifndef INGEN_CLOCK_H
#define INGEN_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t clock_now_ms(void);

/* Microseconds of CLOCK_MONOTONIC. */
int64_t clock_now_us(void);

/* Whole seconds of CLOCK_MONOTONIC. */
int64_t clock_now_s(void);

/* The CLOCK_MONOTONIC instant `ms` milliseconds from now, as the absolute
 * timespec that pthread_cond_timedwait() takes on a condition variable
 * whose clock is CLOCK_MONOTONIC (pthread_condattr_setclock). */
void clock_abs_after(struct timespec *ts, int64_t ms);

#endif
