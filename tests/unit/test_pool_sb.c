/*
 * test_pool_sb.c -- unit tests of worker/pool.c (every job runs, a full
 * queue refuses at once, destroy drains) and lib/scoreboard.c (slots,
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
	struct scoreboard *sb;
	struct err e;
	int i, accepted = 0, refused = 0, s0, s1;

	err_clear(&e);
	p = pool_create(4, 1000, 64, &e);
	ok(p != NULL, "pool with 4 threads and 64 KiB stacks");
	for (i = 0; i < 1000; i++)
		if (pool_submit(p, job_count, NULL) != 0)
			usleep(1000);
	pool_destroy(p);
	is_int(counter, 1000, "every queued job ran before destroy returned");

	counter = 0;
	pthread_mutex_lock(&gate);
	p = pool_create(2, 3, 64, &e);
	for (i = 0; i < 10; i++) {
		if (pool_submit(p, job_wait_gate, NULL) == 0)
			accepted++;
		else
			refused++;
	}
	/* 2 running (blocked on the gate) + 3 queued; the rest refused at once */
	ok(accepted >= 3 && accepted <= 5 && refused == 10 - accepted,
	    "a full queue refuses at once (%d accepted, %d refused)", accepted, refused);
	pthread_mutex_unlock(&gate);
	pool_destroy(p);
	is_int(counter, accepted, "the accepted jobs ran");

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
