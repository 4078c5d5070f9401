/*
 * test_throttle.c -- the shared login-failure table (lib/throttle.c):
 * windows, Retry-After, kinds kept apart, eviction that spares hot keys,
 * counting from two processes at once, and a process killed while it holds
 * a lock.  Drives time itself; never sleeps on the clock.
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
	pid_t a, b;
	int st, i, all_exited;
	unsigned n;

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
