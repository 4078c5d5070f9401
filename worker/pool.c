/*
 * pool.c -- the elastic pool of flow threads with a bounded ring of jobs.
 * It owns its threads and its queue; it knows nothing of HTTP.  Threads
 * block only on the queue's condition variable or inside the jobs they run.
 * Threads are detached: an idle one above the minimum exits by itself, and
 * pool_destroy() waits for the count of live threads to reach zero.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/xmalloc.h"
#include "worker/pool.h"

/* pool_auto_max_threads: an eighth of physical memory for turns in flight,
 * 256 KiB each (a touched stack, the request arena, the reply buffers and
 * the kernel's socket buffers of the client and the upstream), between 64
 * and 4,096 threads per worker; a turn holds four descriptors (the client,
 * the upstream connection and the wake-up socketpair of its thread's curl
 * handle, measured: 7,048 open at 1,990 turns in flight), and
 * POOL_AUTO_FD_RESERVE stay for the database pool, logs and listeners. */
#define POOL_AUTO_MEMORY_SHARE  8
#define POOL_AUTO_BYTES_PER_TURN (256L * 1024)
#define POOL_AUTO_MIN           64
#define POOL_AUTO_MAX           4096
#define POOL_AUTO_FD_RESERVE    64
#define POOL_AUTO_FD_PER_TURN   4

struct pool_job {
	void (*fn)(void *);
	void *arg;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;      /* a job was queued, or stopping */
	pthread_cond_t gone;          /* a thread exited (for destroy) */
	struct pool_job *ring;
	size_t cap, head, count;
	struct pool_limits lim;
	pthread_attr_t attr;
	int nthreads;                 /* alive */
	int idle;                     /* waiting on `nonempty` */
	int busy;                     /* running a job */
	bool stopping;
	uint64_t spawned, retired, spawn_failures;
};

static void *pool_thread(void *arg);

/* Start one thread; called with the lock held.  Signals are the event
 * loop's business: a flow thread blocks them all, whoever creates it. */
static int
pool_spawn(struct pool *p)
{
	sigset_t all, old;
	pthread_t t;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&t, &p->attr, pool_thread, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		p->spawn_failures++;
		return rc;
	}
	p->nthreads++;
	p->spawned++;
	return 0;
}


static void *
pool_thread(void *arg)
{
	struct pool *p = arg;
	struct pool_job job;
	struct timespec until;
	int rc;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		rc = 0;
		if (p->count == 0 && !p->stopping) {
			clock_abs_after(&until, p->lim.idle_ms);
			p->idle++;
			while (p->count == 0 && !p->stopping && rc != ETIMEDOUT)
				rc = pthread_cond_timedwait(&p->nonempty, &p->lock, &until);
			p->idle--;
		}
		if (p->count == 0) {
			/* stopping, or idle for idle_ms above the minimum: leave */
			if (p->stopping || (rc == ETIMEDOUT && p->nthreads > p->lim.min_threads))
				break;
			continue;
		}
		job = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		p->busy++;
		pthread_mutex_unlock(&p->lock);
		job.fn(job.arg);
		pthread_mutex_lock(&p->lock);
		p->busy--;
	}
	p->nthreads--;
	if (!p->stopping)
		p->retired++;
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *
pool_create(const struct pool_limits *lim, struct err *e)
{
	struct pool *p;
	pthread_condattr_t ca;
	int i, rc;

	if (lim->min_threads < 1 || lim->max_threads < lim->min_threads ||
	    lim->queue < 0 || lim->stack_kb < 16 || lim->idle_ms < 1) {
		err_set(e, 500, "invalid flow thread limits: min %d, max %d, queue %d, "
		    "stack %d KiB, idle %d ms", lim->min_threads, lim->max_threads,
		    lim->queue, lim->stack_kb, lim->idle_ms);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->lim = *lim;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->nonempty, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->gone, NULL);
	/* jobs wait in the ring for a thread being started, too */
	p->cap = (size_t)lim->max_threads + (size_t)lim->queue;
	p->ring = xcalloc(p->cap, sizeof(*p->ring));
	pthread_attr_init(&p->attr);
	pthread_attr_setstacksize(&p->attr, (size_t)lim->stack_kb * 1024);
	pthread_attr_setdetachstate(&p->attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < lim->min_threads; i++) {
		if ((rc = pool_spawn(p)) != 0) {
			pthread_mutex_unlock(&p->lock);
			err_set(e, 500, "could not start flow thread %d of %d: %s",
			    i + 1, lim->min_threads, strerror(rc));
			pool_destroy(p);
			return NULL;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return p;
}

int
pool_submit(struct pool *p, void (*fn)(void *), void *arg)
{
	bool wake;

	pthread_mutex_lock(&p->lock);
	if (p->stopping ||
	    (size_t)p->busy + p->count >= (size_t)p->lim.max_threads + (size_t)p->lim.queue ||
	    p->count == p->cap) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	p->ring[(p->head + p->count) % p->cap] = (struct pool_job){ fn, arg };
	p->count++;
	/* every waiting job beyond the idle threads gets a thread of its own */
	if (p->count > (size_t)p->idle && p->nthreads < p->lim.max_threads)
		(void)pool_spawn(p);
	wake = p->idle > 0;
	pthread_mutex_unlock(&p->lock);
	/* after the unlock, so the woken thread does not sleep again on the
	 * lock; the pool outlives every submit, so its cv does too */
	if (wake)
		pthread_cond_signal(&p->nonempty);
	return 0;
}

void
pool_stats(struct pool *p, struct pool_stats *st)
{
	pthread_mutex_lock(&p->lock);
	st->threads = p->nthreads;
	st->busy = p->busy;
	st->queued = p->count;
	st->max_threads = p->lim.max_threads;
	st->queue_cap = (size_t)p->lim.queue;
	st->spawned = p->spawned;
	st->retired = p->retired;
	st->spawn_failures = p->spawn_failures;
	pthread_mutex_unlock(&p->lock);
}

int
pool_auto_max_threads(int workers, long nofile)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	long long mem = pages > 0 && psize > 0 ? (long long)pages * psize : 0;
	long long n;

	if (workers < 1)
		workers = 1;
	n = mem / POOL_AUTO_MEMORY_SHARE / POOL_AUTO_BYTES_PER_TURN / workers;
	if (nofile > 0) {
		long long by_fd = (nofile - POOL_AUTO_FD_RESERVE) / POOL_AUTO_FD_PER_TURN;

		if (n > by_fd)
			n = by_fd;
	}
	if (n > POOL_AUTO_MAX)
		n = POOL_AUTO_MAX;
	if (n < POOL_AUTO_MIN)
		n = POOL_AUTO_MIN;
	return (int)n;
}

void
pool_destroy(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->nonempty);
	while (p->nthreads > 0)
		pthread_cond_wait(&p->gone, &p->lock);
	pthread_mutex_unlock(&p->lock);
	pthread_attr_destroy(&p->attr);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->nonempty);
	pthread_cond_destroy(&p->gone);
	free(p->ring);
	free(p);
}
