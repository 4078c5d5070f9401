/*
 * throttle.c -- the shared table of failed login attempts (see throttle.h
 * for its structure and bounds).
 *
 * It owns the segment's layout and its locking.  A critical section only
 * reads and writes the THROTTLE_WAYS entries of one set: no system call, no
 * allocation, no logging, so a lock is held for well under a microsecond.
 * It must never block on anything but a set's mutex and never log a key.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/crypto.h"
#include "lib/throttle.h"

#define THROTTLE_KEYLEN 32

struct throttle_entry {
	uint64_t tag;                 /* 0 = empty */
	int64_t window_end;           /* seconds; the window is open while now < it */
	uint32_t failures;
};

struct throttle_set {
	pthread_mutex_t lock;         /* process-shared, robust */
	struct throttle_entry way[THROTTLE_WAYS];
};

struct throttle {
	unsigned char key[THROTTLE_KEYLEN];
	struct throttle_set set[THROTTLE_SETS];
};

struct throttle *
throttle_create(struct err *e)
{
	struct throttle *t;
	pthread_mutexattr_t ma;
	size_t i;
	int rc;

	t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED) {
		err_set(e, 500, "could not map the login throttle segment: %s",
		    strerror(errno));
		return NULL;
	}
	memset(t, 0, sizeof(*t));
	if (crypto_random(t->key, sizeof(t->key), e) != 0)
		goto fail;
	if ((rc = pthread_mutexattr_init(&ma)) != 0) {
		err_set(e, 500, "could not make the login throttle locks: %s",
		    strerror(rc));
		goto fail;
	}
	if ((rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED)) != 0 ||
	    (rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST)) != 0) {
		pthread_mutexattr_destroy(&ma);
		err_set(e, 500, "could not make the login throttle locks: %s",
		    strerror(rc));
		goto fail;
	}
	for (i = 0; i < THROTTLE_SETS; i++)
		pthread_mutex_init(&t->set[i].lock, &ma);
	pthread_mutexattr_destroy(&ma);
	return t;

fail:
	munmap(t, sizeof(*t));
	return NULL;
}

void
throttle_destroy(struct throttle *t)
{
	if (t != NULL)
		munmap(t, sizeof(*t));
}

/*
 * The set and tag of a key.  HMAC-SHA256 cannot fail with a valid key except
 * on a broken OpenSSL; then every key lands in set 0 with tag 1, which still
 * throttles (too eagerly) rather than letting attempts through.
 */
static struct throttle_set *
throttle_locate(struct throttle *t, enum throttle_kind kind, const void *key,
    size_t len, uint64_t *tag)
{
	unsigned char msg_kind = (unsigned char)kind;
	unsigned char d1[CRYPTO_SHA256_LEN], d2[CRYPTO_SHA256_LEN];
	uint64_t h = 0, g = 0;
	struct err e;
	int i;

	/* HMAC(k, kind || key) without copying the key: chain two MACs */
	if (crypto_hmac_sha256(t->key, sizeof(t->key), &msg_kind, 1, d1, &e) != 0 ||
	    crypto_hmac_sha256(d1, sizeof(d1), len ? key : "", len, d2, &e) != 0) {
		*tag = 1;
		return &t->set[0];
	}
	for (i = 0; i < 8; i++) {
		h = (h << 8) | d2[i];
		g = (g << 8) | d2[8 + i];
	}
	*tag = g != 0 ? g : 1;
	return &t->set[h % THROTTLE_SETS];
}

static void
throttle_lock(struct throttle_set *s)
{
	/* the previous owner died inside a few stores: the entries are usable */
	if (pthread_mutex_lock(&s->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&s->lock);
}

static void
throttle_unlock(struct throttle_set *s)
{
	pthread_mutex_unlock(&s->lock);
}

/* The entry with `tag` whose window is still open, or NULL.  Under lock. */
static struct throttle_entry *
throttle_find(struct throttle_set *s, uint64_t tag, int64_t now_s)
{
	int i;

	for (i = 0; i < THROTTLE_WAYS; i++)
		if (s->way[i].tag == tag) {
			if (now_s >= s->way[i].window_end) {
				s->way[i].tag = 0;   /* window over: forget it */
				return NULL;
			}
			return &s->way[i];
		}
	return NULL;
}

/* A slot for a new key: empty or expired, else the weakest entry. */
static struct throttle_entry *
throttle_victim(struct throttle_set *s, int64_t now_s)
{
	struct throttle_entry *v = &s->way[0], *w;
	int i;

	for (i = 0; i < THROTTLE_WAYS; i++) {
		w = &s->way[i];
		if (w->tag == 0 || now_s >= w->window_end)
			return w;
		if (w->failures < v->failures ||
		    (w->failures == v->failures && w->window_end < v->window_end))
			v = w;
	}
	return v;
}

long
throttle_check(struct throttle *t, enum throttle_kind kind, const void *key,
    size_t len, int max_failures, int64_t now_s)
{
	struct throttle_set *s;
	struct throttle_entry *en;
	uint64_t tag;
	long wait = 0;

	s = throttle_locate(t, kind, key, len, &tag);
	throttle_lock(s);
	en = throttle_find(s, tag, now_s);
	if (en != NULL && max_failures > 0 && en->failures >= (uint32_t)max_failures)
		wait = (long)(en->window_end - now_s);
	throttle_unlock(s);
	return wait;   /* throttle_find returned an open window: >= 1 */
}

long
throttle_take(struct throttle *t, enum throttle_kind kind, const void *key,
    size_t len, int max_failures, int window_s, int64_t now_s, unsigned *count)
{
	struct throttle_set *s;
	struct throttle_entry *en;
	uint64_t tag;
	long wait = 0;

	s = throttle_locate(t, kind, key, len, &tag);
	throttle_lock(s);
	en = throttle_find(s, tag, now_s);
	if (en != NULL && max_failures > 0 && en->failures >= (uint32_t)max_failures) {
		wait = (long)(en->window_end - now_s);   /* open window: >= 1 */
		goto out;
	}
	if (en == NULL) {
		en = throttle_victim(s, now_s);
		en->tag = tag;
		en->failures = 0;
		en->window_end = now_s + (window_s > 0 ? window_s : 1);
	}
	if (en->failures < UINT32_MAX)
		en->failures++;
	if (count != NULL)
		*count = en->failures;
out:
	throttle_unlock(s);
	return wait;
}

void
throttle_forgive(struct throttle *t, enum throttle_kind kind, const void *key,
    size_t len, int64_t now_s)
{
	struct throttle_set *s;
	struct throttle_entry *en;
	uint64_t tag;

	s = throttle_locate(t, kind, key, len, &tag);
	throttle_lock(s);
	en = throttle_find(s, tag, now_s);
	if (en != NULL && en->failures > 0)
		en->failures--;
	throttle_unlock(s);
}

void
throttle_clear(struct throttle *t, enum throttle_kind kind, const void *key,
    size_t len)
{
	struct throttle_set *s;
	uint64_t tag;
	int i;

	s = throttle_locate(t, kind, key, len, &tag);
	throttle_lock(s);
	for (i = 0; i < THROTTLE_WAYS; i++)
		if (s->way[i].tag == tag)
			s->way[i].tag = 0;
	throttle_unlock(s);
}

unsigned
throttle_failures(struct throttle *t, enum throttle_kind kind, const void *key,
    size_t len, int64_t now_s)
{
	struct throttle_set *s;
	struct throttle_entry *en;
	uint64_t tag;
	unsigned n;

	s = throttle_locate(t, kind, key, len, &tag);
	throttle_lock(s);
	en = throttle_find(s, tag, now_s);
	n = en != NULL ? en->failures : 0;
	throttle_unlock(s);
	return n;
}

int
throttle_delay_ms(unsigned failures, int free_failures)
{
	uint64_t steps;

	if (free_failures < 0)
		free_failures = 0;
	if (failures < (unsigned)free_failures)
		return 0;
	steps = (uint64_t)(failures - (unsigned)free_failures) + 1;
	if (steps >= THROTTLE_DELAY_MAX_MS / THROTTLE_DELAY_STEP_MS)
		return THROTTLE_DELAY_MAX_MS;
	return (int)(steps * THROTTLE_DELAY_STEP_MS);
}
