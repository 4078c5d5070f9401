/*
 * pool.h -- the worker's flow threads: an elastic set of threads and a
 * bounded queue of jobs.  Everything that blocks (flows, libpq, libcurl,
 * password hashing, prompt files) runs here, never on the event loop.
 *
 * The pool starts `min_threads` threads and grows on demand, one thread per
 * job that finds no idle thread, up to `max_threads`; a thread idle for
 * `idle_ms` exits while more than `min_threads` remain.  So the number of
 * turns in flight is bounded by `max_threads` (derived from memory by
 * default, see pool_auto_max_threads) and not by a thread count fixed in
 * advance, and an idle worker costs only its minimum threads.
 *
 * pool_submit() is called by the event-loop thread only; it never blocks: a
 * job that finds every thread busy at the maximum and the queue full is
 * refused at once, so the loop can answer 503 with Retry-After.  Jobs run
 * in FIFO order.
 */
#ifndef INGEN_POOL_H
#define INGEN_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct pool;

struct pool_limits {
	int min_threads;     /* started at once and kept (>= 1) */
	int max_threads;     /* grown up to (>= min_threads) */
	int queue;           /* jobs that may wait when max_threads are busy (>= 0) */
	int stack_kb;        /* stack of each thread */
	int idle_ms;         /* an idle thread above min_threads exits after this */
};

/* What the pool holds now, for /metrics (a consistent snapshot). */
struct pool_stats {
	int threads;         /* alive */
	int busy;            /* running a job */
	size_t queued;       /* accepted, not started */
	int max_threads;
	size_t queue_cap;
	uint64_t spawned;    /* threads started since creation */
	uint64_t retired;    /* threads that exited when idle */
	uint64_t spawn_failures;  /* pthread_create refused (the pool stays smaller) */
};

/* Start the pool's minimum threads.  NULL with `e` set if one cannot be
 * created or the limits are inconsistent.  Call from the event-loop thread
 * (threads are created with every signal blocked). */
struct pool *pool_create(const struct pool_limits *lim, struct err *e);

/* Queue fn(arg), starting a thread when none is idle and the maximum is not
 * reached.  Returns 0, or -1 when the pool is at its maximum with a full
 * queue, or stopping (nothing queued).  A thread that cannot be created is
 * counted in spawn_failures and the job waits for a running thread. */
int pool_submit(struct pool *p, void (*fn)(void *), void *arg) ING_WUR;

/* Fill *st.  Any thread may call it. */
void pool_stats(struct pool *p, struct pool_stats *st);

/* The default maximum of flow threads per worker when `server.flow_threads`
 * is 0: a share of the machine's memory (POOL_AUTO_MEMORY_SHARE of physical
 * memory, POOL_AUTO_BYTES_PER_TURN each) divided among `workers`, clamped
 * to [POOL_AUTO_MIN, POOL_AUTO_MAX] and to what the open-file limit `nofile`
 * allows (each turn holds four descriptors). */
int pool_auto_max_threads(int workers, long nofile);

/* Let the queued jobs finish, wait for every thread to exit, free the pool. */
void pool_destroy(struct pool *p);

#endif
