/*
 * test_llm_handles.c -- unit tests of the curl handles lib/llm.c keeps
 * between calls: one list per process, the pair given back last taken
 * first, pairs moving between threads, and the trim of the long idle ones.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/llm.h"
#include "lib/llm_parts.h"
#include "tests/unit/tap.h"

#define THREADS 8
#define ROUNDS  200

static void *
churn(void *arg)
{
	long bad = 0;
	int i;

	(void)arg;
	for (i = 0; i < ROUNDS; i++) {
		struct llm_handles *h = llm_handles_take();

		if (h == NULL || h->easy == NULL || h->multi == NULL ||
		    h->next != NULL || h->prev != NULL)
			bad++;
		if (h != NULL)
			llm_handles_give_back(h);
	}
	return (void *)bad;
}

static void *
take_one(void *arg)
{
	return llm_handles_take() == arg ? arg : NULL;
}

int
main(void)
{
	struct llm_handles *a, *b, *c;
	pthread_t t[THREADS];
	void *rv;
	long bad = 0;
	size_t n;
	int i;

	llm_global_init();
	is_int(llm_handles_idle(), 0, "no pair is kept before a call");

	a = llm_handles_take();
	b = llm_handles_take();
	ok(a != NULL && b != NULL && a != b && a->easy != b->easy,
	    "two calls at once get two pairs");
	llm_handles_give_back(a);
	llm_handles_give_back(b);
	is_int(llm_handles_idle(), 2, "both are kept after their calls");
	c = llm_handles_take();
	ok(c == b, "the pair given back last is taken first (its connection is the warmest)");
	llm_handles_give_back(c);

	/* a pair given back by one thread is taken by another */
	ok(pthread_create(&t[0], NULL, take_one, b) == 0 &&
	    pthread_join(t[0], &rv) == 0 && rv == b,
	    "another thread takes the pair this one gave back");
	llm_handles_give_back(b);

	for (i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, churn, NULL) != 0)
			bad++;
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], &rv);
		bad += (long)rv;
	}
	is_int(bad, 0, "%d threads taking and giving back %d times: always a whole, unlinked pair",
	    THREADS, ROUNDS);
	n = llm_handles_idle();
	ok(n >= 2 && n <= THREADS + 1, "as many pairs kept as calls ran at once (%zu)", n);
	/* three at once, so that at least three are kept for the trims below */
	a = llm_handles_take();
	b = llm_handles_take();
	c = llm_handles_take();
	llm_handles_give_back(a);
	llm_handles_give_back(b);
	llm_handles_give_back(c);
	if (n < 3)
		n = 3;
	is_int(llm_handles_idle(), n, "%zu kept", n);

	is_int(llm_handles_trim(60000, SIZE_MAX), 0, "none idle for a minute: none freed");
	is_int(llm_handles_idle(), n, "all still kept");
	usleep(20000);
	a = llm_handles_take();
	llm_handles_give_back(a);   /* fresh again: the trim below keeps it */
	is_int(llm_handles_trim(10, 1), 1, "at most max are freed at once");
	n--;
	is_int(llm_handles_trim(10, SIZE_MAX), n - 1,
	    "the pairs idle for 10 ms are freed, the fresh one stays");
	is_int(llm_handles_idle(), 1, "one kept");
	c = llm_handles_take();
	ok(c == a, "and it is the one taken next");
	llm_handles_give_back(c);
	is_int(llm_handles_trim(0, SIZE_MAX), 1, "trim(0) frees every idle pair");
	is_int(llm_handles_idle(), 0, "none kept");
	a = llm_handles_take();
	ok(a != NULL && a->easy != NULL, "after a trim a call gets a new pair");
	llm_handles_give_back(a);
	llm_handles_trim(0, SIZE_MAX);
	return tap_done();
}
