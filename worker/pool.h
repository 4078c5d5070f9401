/*
 * pool.h -- the worker's flow threads: a fixed set of threads and a bounded
 * queue of jobs.  Everything that blocks (flows, libpq, libcurl, password
 * hashing, prompt files) runs here, never on the event loop.
 *
 * pool_submit() is called by the event-loop thread only; it never blocks: a
 * full queue is reported at once so the loop can answer 503 with
 * Retry-After.  Jobs run in FIFO order.
 */
#ifndef INGEN_POOL_H
#define INGEN_POOL_H

#include <stddef.h>

#include "lib/err.h"

struct pool;

/* Start `threads` threads with `stack_kb` KiB stacks and room for `queue`
 * waiting jobs.  NULL with `e` set if a thread cannot be created. */
struct pool *pool_create(int threads, int queue, int stack_kb, struct err *e);

/* Queue fn(arg).  Returns 0, or -1 when the queue is full (nothing queued). */
int pool_submit(struct pool *p, void (*fn)(void *), void *arg) ING_WUR;

/* Let the queued jobs finish, then join the threads and free the pool. */
void pool_destroy(struct pool *p);

#endif
