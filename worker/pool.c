/*
 * pool.c -- fixed thread pool with a bounded ring of jobs.  It owns its
 * threads and queue; it knows nothing of HTTP.  Threads block only on the
 * queue's condition variable or inside the jobs they run.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "worker/pool.h"

struct pool_job {
	void (*fn)(void *);
	void *arg;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct pool_job *ring;
	size_t cap, head, count;
	bool stopping;
	pthread_t *threads;
	int nthreads;
};

static void *
pool_thread(void *arg)
{
	struct pool *p = arg;
	struct pool_job job;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->nonempty, &p->lock);
		if (p->count == 0 && p->stopping) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		job = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		pthread_mutex_unlock(&p->lock);
		job.fn(job.arg);
	}
}

struct pool *
pool_create(int threads, int queue, int stack_kb, struct err *e)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	pthread_attr_t attr;
	sigset_t all, old;
	int i, rc;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->nonempty, NULL);
	p->cap = (size_t)(queue > 0 ? queue : 1);
	p->ring = xcalloc(p->cap, sizeof(*p->ring));
	p->threads = xcalloc((size_t)threads, sizeof(*p->threads));
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, (size_t)stack_kb * 1024);
	/* signals are the event loop's business: flow threads block them all */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < threads; i++) {
		rc = pthread_create(&p->threads[i], &attr, pool_thread, p);
		if (rc != 0) {
			err_set(e, 500, "could not start flow thread %d of %d: %s",
			    i + 1, threads, strerror(rc));
			break;
		}
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (p->nthreads < threads) {
		pool_destroy(p);
		return NULL;
	}
	return p;
}

int
pool_submit(struct pool *p, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&p->lock);
	if (p->count == p->cap || p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	p->ring[(p->head + p->count) % p->cap] = (struct pool_job){ fn, arg };
	p->count++;
	pthread_cond_signal(&p->nonempty);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void
pool_destroy(struct pool *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->nonempty);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->nonempty);
	free(p->ring);
	free(p->threads);
	free(p);
}
