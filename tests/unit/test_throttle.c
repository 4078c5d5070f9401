/*
 * test_throttle.c -- the shared login-failure table (lib/throttle.c):
 * windows, Retry-After, kinds kept apart, eviction that spares hot keys,
 * counting from two processes at once, attempts counted before they are
 * checked so that concurrent ones never pass the limit, taking an attempt
 * back, the slow-down policy past the strict limit, and a process killed
 * while it holds a lock.  Drives time itself; never sleeps on the clock.
 */
#include "autoconfig.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/throttle.h"
#include "tests/unit/tap.h"

#define HAMMER 20000
#define RACERS 8                   /* processes taking one key at its limit */
#define RACE_LIMIT 10

/* Count one attempt with no limit; the count after it. */
static unsigned
throttle_fail(struct throttle *t, enum throttle_kind kind, const void *key,
    size_t len, int window_s, int64_t now_s)
{
	unsigned n = 0;

	(void)throttle_take(t, kind, key, len, 0, window_s, now_s, &n);
	return n;
}

static void
hammer(struct throttle *t, const char *key, int n)
{
	int i;

	for (i = 0; i < n; i++)
		(void)throttle_fail(t, THROTTLE_USER, key, strlen(key), 3600, 1000);
}

int
main(void)
{
	struct throttle *t;
	struct err e;
	char key[64];
	pid_t a, b, racer[RACERS];
	int st, i, all_exited, passed;
	unsigned n;
	long ra;

	alarm(60);   /* a deadlock must fail the test, not hang it */
	err_clear(&e);
	t = throttle_create(&e);
	if (!ok(t != NULL, "throttle_create maps a segment")) {
		printf("#   %s\n", e.msg);
		return tap_done();
	}

	/* ---- a window ---------------------------------------------------- */
	is_int(throttle_check(t, THROTTLE_USER, "alice", 5, 3, 100), 0,
	    "an unknown key may try");
	is_int(throttle_fail(t, THROTTLE_USER, "alice", 5, 900, 100), 1,
	    "the first failure opens a window");
	is_int(throttle_fail(t, THROTTLE_USER, "alice", 5, 900, 110), 2, "second failure");
	is_int(throttle_check(t, THROTTLE_USER, "alice", 5, 3, 120), 0,
	    "below the limit: allowed");
	is_int(throttle_fail(t, THROTTLE_USER, "alice", 5, 900, 130), 3, "third failure");
	is_int(throttle_check(t, THROTTLE_USER, "alice", 5, 3, 130), 870,
	    "at the limit: refused until the window (opened at 100) ends");
	is_int(throttle_check(t, THROTTLE_USER, "alice", 5, 3, 999), 1,
	    "one second before the end: Retry-After 1");
	is_int(throttle_check(t, THROTTLE_USER, "alice", 5, 4, 130), 0,
	    "a higher limit lets it through");
	is_int(throttle_check(t, THROTTLE_USER, "alice", 5, 3, 1000), 0,
	    "the window is over: allowed again");
	is_int(throttle_failures(t, THROTTLE_USER, "alice", 5, 1000), 0,
	    "and the count is forgotten");
	is_int(throttle_fail(t, THROTTLE_USER, "alice", 5, 900, 1000), 1,
	    "a failure after the window opens a new one");

	/* ---- kinds and keys are separate --------------------------------- */
	(void)throttle_fail(t, THROTTLE_ADDR, "10.0.0.1", 8, 900, 100);
	is_int(throttle_failures(t, THROTTLE_USER, "10.0.0.1", 8, 100), 0,
	    "a user name never shares an address's counter");
	is_int(throttle_failures(t, THROTTLE_ADDR, "10.0.0.1", 8, 100), 1,
	    "the address has its own");
	is_int(throttle_failures(t, THROTTLE_USER, "alicE", 5, 1000), 0,
	    "keys are compared exactly");
	throttle_clear(t, THROTTLE_USER, "alice", 5);
	is_int(throttle_failures(t, THROTTLE_USER, "alice", 5, 1000), 0,
	    "throttle_clear forgets a key");
	is_int(throttle_failures(t, THROTTLE_ADDR, "10.0.0.1", 8, 100), 1,
	    "and only that key");
	is_int(throttle_fail(t, THROTTLE_USER, "", 0, 900, 100), 1,
	    "an empty key is a key like another");

	/* ---- counted before the check, taken back on success ------------ */
	n = 0;
	is_int(throttle_take(t, THROTTLE_ADDR, "10.0.0.9", 8, 2, 60, 100, &n), 0,
	    "throttle_take below the limit: allowed");
	is_int(n, 1, "and counted at once (before any hashing)");
	is_int(throttle_take(t, THROTTLE_ADDR, "10.0.0.9", 8, 2, 60, 101, &n), 0,
	    "a second attempt in flight is allowed");
	is_int(n, 2, "and counted");
	n = 99;
	ra = throttle_take(t, THROTTLE_ADDR, "10.0.0.9", 8, 2, 60, 102, &n);
	is_int(ra, 58, "a third attempt while two are in flight is refused");
	ok(n == 99 && throttle_failures(t, THROTTLE_ADDR, "10.0.0.9", 8, 102) == 2,
	    "and not counted");
	throttle_forgive(t, THROTTLE_ADDR, "10.0.0.9", 8, 103);
	is_int(throttle_failures(t, THROTTLE_ADDR, "10.0.0.9", 8, 103), 1,
	    "throttle_forgive takes one attempt back (it succeeded)");
	is_int(throttle_take(t, THROTTLE_ADDR, "10.0.0.9", 8, 2, 60, 104, NULL), 0,
	    "so the next one is allowed");
	is_int(throttle_check(t, THROTTLE_ADDR, "10.0.0.9", 8, 2, 104), 56,
	    "and the window is the one opened by the first attempt");
	throttle_forgive(t, THROTTLE_ADDR, "nobody", 6, 104);
	is_int(throttle_failures(t, THROTTLE_ADDR, "nobody", 6, 104), 0,
	    "forgiving a key without a window does nothing");
	(void)throttle_take(t, THROTTLE_PAIR, "10.0.0.9\0alice", 14, 0, 60, 100, NULL);
	ok(throttle_failures(t, THROTTLE_PAIR, "10.0.0.9\0alice", 14, 100) == 1 &&
	    throttle_failures(t, THROTTLE_USER, "10.0.0.9\0alice", 14, 100) == 0 &&
	    throttle_failures(t, THROTTLE_ADDR, "10.0.0.9\0alice", 14, 100) == 0,
	    "a (user, address) pair has a counter of its own kind");

	/* ---- the slow-down past the strict limit ---------------------------- */
	is_int(throttle_delay_ms(0, 10), 0, "no failures: no delay");
	is_int(throttle_delay_ms(9, 10), 0, "below the strict limit: no delay");
	is_int(throttle_delay_ms(10, 10), THROTTLE_DELAY_STEP_MS,
	    "at the limit: one step");
	is_int(throttle_delay_ms(12, 10), 3 * THROTTLE_DELAY_STEP_MS,
	    "and one more step per failure");
	ok(throttle_delay_ms(15, 10) > throttle_delay_ms(14, 10),
	    "the delay grows with the failures");
	is_int(throttle_delay_ms(THROTTLE_LOCK_FAILURES - 1, 10),
	    THROTTLE_DELAY_MAX_MS, "up to its bound, before the lock");
	is_int(throttle_delay_ms(UINT32_MAX, 10), THROTTLE_DELAY_MAX_MS,
	    "a huge count is bounded too");
	is_int(throttle_delay_ms(1, 0), 2 * THROTTLE_DELAY_STEP_MS,
	    "no free failures: every failure counts");

	/* ---- eviction spares keys close to their limit ------------------- */
	for (i = 0; i < 9; i++)
		(void)throttle_fail(t, THROTTLE_USER, "victim", 6, 900, 2000);
	for (i = 0; i < 4 * THROTTLE_SETS * THROTTLE_WAYS; i++) {
		snprintf(key, sizeof(key), "spray-%d", i);
		(void)throttle_fail(t, THROTTLE_USER, key, strlen(key), 900, 2000);
	}
	is_int(throttle_failures(t, THROTTLE_USER, "victim", 6, 2000), 9,
	    "32768 one-off names do not evict a key with 9 failures");
	is_int(throttle_check(t, THROTTLE_USER, "victim", 6, 9, 2000), 900,
	    "which stays refused");

	/* ---- two processes hammer one bucket ----------------------------- */
	fflush(stdout);
	if ((a = fork()) == 0) {
		hammer(t, "shared", HAMMER);
		_exit(0);
	}
	if ((b = fork()) == 0) {
		hammer(t, "shared", HAMMER);
		_exit(0);
	}
	waitpid(a, &st, 0);
	waitpid(b, &st, 0);
	is_int(throttle_failures(t, THROTTLE_USER, "shared", 6, 1000), 2 * HAMMER,
	    "two processes counting one key lose no update (%d each)", HAMMER);

	/* ---- processes racing at a limit never pass it -------------------- */
	fflush(stdout);
	for (i = 0; i < RACERS; i++) {
		if ((racer[i] = fork()) == 0) {
			int k, got = 0;

			for (k = 0; k < RACE_LIMIT; k++)
				if (throttle_take(t, THROTTLE_ADDR, "race", 4, RACE_LIMIT,
				    900, 1000, NULL) == 0)
					got++;
			_exit(got);
		}
	}
	passed = 0;
	for (i = 0; i < RACERS; i++) {
		waitpid(racer[i], &st, 0);
		if (WIFEXITED(st))
			passed += WEXITSTATUS(st);
	}
	is_int(passed, RACE_LIMIT, "%d processes taking one key %d times each: "
	    "exactly the limit (%d) got through", RACERS, RACE_LIMIT, RACE_LIMIT);

	/* ---- a process killed while it may hold a lock ------------------- */
	all_exited = 1;
	for (i = 0; i < 20; i++) {
		fflush(stdout);
		if ((a = fork()) == 0) {
			for (;;)
				hammer(t, "killed", 1000);
		}
		usleep(2000 + i * 500);
		kill(a, SIGKILL);
		if (waitpid(a, &st, 0) != a || !WIFSIGNALED(st))
			all_exited = 0;
	}
	ok(all_exited, "20 hammering children were killed mid-flight");
	n = throttle_failures(t, THROTTLE_USER, "killed", 6, 1000);
	ok(n > 0, "their failures were counted (%u)", n);
	is_int(throttle_fail(t, THROTTLE_USER, "killed", 6, 3600, 1000), n + 1,
	    "the bucket still works after its lockers died (robust mutex)");
	is_int(throttle_fail(t, THROTTLE_USER, "shared", 6, 3600, 1000),
	    2 * HAMMER + 1, "and so does every other one");

	throttle_destroy(t);
	return tap_done();
}
