/*
 * test_pool_sb.c -- unit tests of worker/pool.c (every job runs, a full
 * queue refuses at once, the pool grows on demand to its maximum and shrinks
 * back to its minimum when idle, destroy drains) and lib/scoreboard.c (slots,
 * counters, status buckets, folding a released slot into `retired`).
 */
#include "autoconfig.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "lib/scoreboard.h"
#include "tests/unit/tap.h"
#include "worker/pool.h"

static int counter;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

static void
job_count(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	counter++;
	pthread_mutex_unlock(&lock);
}

static void
job_wait_gate(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate);
	pthread_mutex_unlock(&gate);
	job_count(NULL);
}

int
main(void)
{
	struct pool *p;
	struct pool_stats st;
	struct scoreboard *sb;
	struct err e;
	int i, accepted = 0, refused = 0, s0, s1;

	err_clear(&e);
	p = pool_create(&(struct pool_limits){ .min_threads = 4, .max_threads = 4,
	    .queue = 1000, .stack_kb = 64, .idle_ms = 1000 }, &e);
	ok(p != NULL, "pool with 4 threads and 64 KiB stacks");
	for (i = 0; i < 1000; i++)
		if (pool_submit(p, job_count, NULL) != 0)
			usleep(1000);
	pool_destroy(p);
	is_int(counter, 1000, "every queued job ran before destroy returned");

	counter = 0;
	pthread_mutex_lock(&gate);
	p = pool_create(&(struct pool_limits){ .min_threads = 2, .max_threads = 2,
	    .queue = 3, .stack_kb = 64, .idle_ms = 1000 }, &e);
	for (i = 0; i < 10; i++) {
		if (pool_submit(p, job_wait_gate, NULL) == 0)
			accepted++;
		else
			refused++;
	}
	/* 2 running (blocked on the gate) + 3 queued; the rest refused at once */
	is_int(accepted, 5, "2 running and 3 queued are accepted");
	is_int(refused, 5, "the rest is refused at once");
	pthread_mutex_unlock(&gate);
	pool_destroy(p);
	is_int(counter, accepted, "the accepted jobs ran");

	/* elastic: 1 thread at start, grown to 50 by 50 blocked jobs, the 51st
	 * queued, the 53rd refused; back to 1 thread once idle */
	counter = 0;
	accepted = refused = 0;
	pthread_mutex_lock(&gate);
	p = pool_create(&(struct pool_limits){ .min_threads = 1, .max_threads = 50,
	    .queue = 2, .stack_kb = 64, .idle_ms = 100 }, &e);
	ok(p != NULL, "elastic pool: 1 to 50 threads, queue 2, idle 100 ms");
	pool_stats(p, &st);
	is_int(st.threads, 1, "it starts its minimum only");
	for (i = 0; i < 53; i++) {
		if (pool_submit(p, job_wait_gate, NULL) == 0)
			accepted++;
		else
			refused++;
	}
	is_int(accepted, 52, "50 running and 2 queued are accepted");
	is_int(refused, 1, "the one beyond the maximum and the queue is refused");
	for (i = 0; i < 200; i++) {
		pool_stats(p, &st);
		if (st.busy == 50)
			break;
		usleep(10000);
	}
	is_int(st.threads, 50, "it grew to its maximum on demand");
	is_int(st.busy, 50, "every thread is running a job");
	is_int((int)st.queued, 2, "two jobs wait");
	pthread_mutex_unlock(&gate);
	for (i = 0; i < 300; i++) {
		pool_stats(p, &st);
		if (st.threads == 1)
			break;
		usleep(10000);
	}
	is_int(counter, 52, "every accepted job ran");
	is_int(st.threads, 1, "idle threads above the minimum exited");
	is_int((int)st.retired, 49, "49 threads retired");
	ok(st.spawn_failures == 0, "no thread creation failed");
	is_int(pool_submit(p, job_count, NULL), 0, "a job after the shrink is accepted");
	pool_destroy(p);
	is_int(counter, 53, "and it ran before destroy returned");

	ok(pool_auto_max_threads(2, 20000) >= 64 && pool_auto_max_threads(2, 20000) <= 4096,
	    "the automatic maximum is within its bounds (%d)", pool_auto_max_threads(2, 20000));
	is_int(pool_auto_max_threads(1, 2048), (2048 - 64) / 4,
	    "it leaves four descriptors per turn under the open-file limit");
	err_clear(&e);
	ok(pool_create(&(struct pool_limits){ .min_threads = 5, .max_threads = 4,
	    .queue = 1, .stack_kb = 64, .idle_ms = 1 }, &e) == NULL && e.msg[0] != '\0',
	    "inconsistent limits are refused: %s", e.msg);

	sb = sb_create(&e);
	ok(sb != NULL, "scoreboard mapped");
	s0 = sb_slot_claim(sb, 100, 1);
	s1 = sb_slot_claim(sb, 101, 1);
	ok(s0 >= 0 && s1 >= 0 && s0 != s1, "two slots claimed");
	is_int(sb_get_state(&sb->slots[s0]), SB_STATE_STARTING, "a new slot is starting");
	sb_count_request(&sb->slots[s0], 1, 200, 3000);
	sb_count_request(&sb->slots[s0], 1, 200, 70000000);
	sb_count_request(&sb->slots[s0], 1, 599, 100);
	is_int((long long)sb->slots[s0].c.requests[1][SB_STATUS_200], 2, "200s counted");
	is_int((long long)sb->slots[s0].c.requests[1][SB_STATUS_OTHER], 1, "an unusual status is 'other'");
	is_int((long long)sb->slots[s0].c.latency_bucket[1][SB_LAT_BUCKETS - 1], 1, "70 s lands in +Inf");
	is_int((long long)sb->slots[s0].c.latency_bucket[1][1], 1, "3 ms lands in le=5ms");
	is_int((long long)sb->slots[s0].served, 3, "served counts requests");
	sb_slot_release(sb, s0);
	is_int((long long)sb->retired.requests[1][SB_STATUS_200], 2, "a released slot's counters are kept in retired");
	is_int(sb_get_state(&sb->slots[s0]), SB_STATE_EMPTY, "the slot is free again");
	is_int(sb_slot_claim(sb, 102, 2), s0, "and reused");
	is_int((long long)sb->slots[s0].c.requests[1][SB_STATUS_200], 0, "with fresh counters");
	is_int(sb_status_code(sb_status_index(431)), 431, "status index round trip");
	sb_destroy(sb);
	return tap_done();
}
