/*
 * throttle.h -- counting failed logins across all workers (docs/reliability.md A2).
 *
 * The master creates one shared-memory segment before the first fork
 * (throttle_create); every worker inherits the mapping and counts password
 * checks in it, per user name, per client address and per (user, address)
 * pair, so attempts spread over several workers add up.  The segment
 * outlives reloads: a new generation keeps counting where the old one was.
 *
 * Structure and bounds: a set-associative table of THROTTLE_SETS sets of
 * THROTTLE_WAYS entries (8192 entries, about 240 KiB with the locks).  An
 * entry is a 64-bit tag, a failure count and the end of its window.  A key
 * ("u" + user name, or "a" + address) is hashed with HMAC-SHA256 under a
 * random key drawn when the segment is made, so a client cannot choose
 * which set its keys land in; 64 bits of the digest pick the set and 64
 * more are the tag.  Each set has its own process-shared, robust mutex: a
 * worker killed while holding one cannot wedge the others (the next locker
 * marks the mutex consistent; at worst one entry keeps a half-updated
 * count).  When a set is full, a new key replaces an entry whose window
 * has ended, else the one with the fewest failures (oldest window first),
 * so flooding the table with one-off names evicts other one-off names before
 * a key that is close to its limit.
 *
 * Windows are fixed, not sliding: the first counted attempt opens a window
 * of `window_s` seconds; once `max_failures` are counted within it the key
 * is refused until the window ends.  Times are caller-supplied seconds of a
 * clock shared by the processes (CLOCK_MONOTONIC in the server), so this
 * module has no clock of its own and tests can drive time.
 *
 * An attempt is counted before the password is hashed (throttle_take checks
 * and counts under one lock), so concurrent attempts can never exceed the
 * limit, and taken back when it succeeds (throttle_forgive) or the key is
 * cleared (throttle_clear).  A count is therefore the failures of the window
 * plus the checks in flight.
 *
 * Across addresses a user's key is not refused at the strict limit but
 * slowed down (throttle_delay_ms) and refused only at THROTTLE_LOCK_FAILURES
 * (NIST SP 800-63B section 5.2.2: at most 100 consecutive failures), so that
 * nobody can lock an account out by failing on purpose.  Nothing here logs;
 * keys (user names, addresses) are not secrets but never leave the module.
 */
#ifndef INGEN_THROTTLE_H
#define INGEN_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define THROTTLE_SETS 1024
#define THROTTLE_WAYS 8

/* What a key counts; part of the hashed key, so a user name can never
 * collide with an address. */
enum throttle_kind {
	THROTTLE_USER = 'u',
	THROTTLE_ADDR = 'a',
	THROTTLE_PAIR = 'p',          /* address NUL user */
};

/* A user's failures across addresses at which every attempt on it is
 * refused for the rest of the window. */
#define THROTTLE_LOCK_FAILURES 100
/* The slow-down past the strict limit: one step per failure, at most max. */
#define THROTTLE_DELAY_STEP_MS 100
#define THROTTLE_DELAY_MAX_MS  2000

struct throttle;

/*
 * Map a new shared anonymous segment with an empty table and a fresh random
 * hash key.  Master only, before the first fork; the mapping is inherited.
 * Returns NULL with `e` set (status 500) when mmap, the random generator or
 * the mutex attributes fail.
 */
struct throttle *throttle_create(struct err *e);

/* Unmap the segment (master, at exit).  NULL is allowed. */
void throttle_destroy(struct throttle *t);

/*
 * Seconds until `kind`/`key` (len bytes) may try again at time now_s: 0 when
 * it has had fewer than max_failures failures in its current window (or no
 * window is open), else the seconds left in its window (at least 1).  A
 * window keeps the length it was opened with, even if the configuration
 * changes meanwhile.  Does not
 * count anything.  Any process that inherited the segment, any thread.
 */
long throttle_check(struct throttle *t, enum throttle_kind kind,
    const void *key, size_t len, int max_failures, int64_t now_s);

/*
 * Count one attempt of `kind`/`key` at now_s unless the key is refused.
 * When its open window already holds max_failures or more (max_failures >
 * 0), nothing is counted and the seconds left in the window (at least 1)
 * are returned.  Otherwise the attempt is counted, opening a window of
 * window_s seconds when none is open, *count (if not NULL) gets the count
 * after it, and 0 is returned.  Check and count happen under one lock.
 * Any process, any thread.
 */
long throttle_take(struct throttle *t, enum throttle_kind kind,
    const void *key, size_t len, int max_failures, int window_s,
    int64_t now_s, unsigned *count);

/*
 * Take back one attempt counted by throttle_take (it succeeded, or it was
 * never checked after all); the window stays.  Nothing happens when the key
 * has no open window or a count of 0.  Any process, any thread.
 */
void throttle_forgive(struct throttle *t, enum throttle_kind kind,
    const void *key, size_t len, int64_t now_s);

/*
 * Forget the failures of `kind`/`key` (a user who just proved the
 * password).  Any process, any thread.
 */
void throttle_clear(struct throttle *t, enum throttle_kind kind,
    const void *key, size_t len);

/*
 * Failures of `kind`/`key` in a window still open at now_s (0 when none);
 * for tests and diagnostics.  Any process, any thread.
 */
unsigned throttle_failures(struct throttle *t, enum throttle_kind kind,
    const void *key, size_t len, int64_t now_s);

/*
 * The slow-down of an attempt on a key with `failures` counted in its
 * window, past `free_failures` allowed at full speed: 0 below it, then
 * THROTTLE_DELAY_STEP_MS per failure from the first one at the limit
 * (failures == free_failures: one step), at most THROTTLE_DELAY_MAX_MS.
 * Pure.
 */
int throttle_delay_ms(unsigned failures, int free_failures);

#endif
