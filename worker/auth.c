/*
 * auth.c -- who is calling: the gate of protected routes, password checks,
 * the per-worker cache of successful checks, the bound on password hashes
 * running at once, and the login throttle's policy.
 *
 * It owns the success cache and the hash slots (process memory, one mutex
 * each) and the exact 401 and 429 answers.  It runs on flow threads only: a
 * password check costs one scrypt (~100 ms of CPU, 32 MiB) and may read the
 * users table.  A slowed-down attempt is not slept on here: it is deferred
 * to the event loop's timer (xchg_defer).  It must never log a password, a
 * token or an Authorization value, and never tell an unknown user from a
 * wrong password, by body or by time.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/basic.h"
#include "lib/crypto.h"
#include "lib/db.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "lib/throttle.h"
#include "lib/xmalloc.h"
#include "worker/auth.h"
#include "worker/exchange.h"
#include "lib/http.h"
#include "worker/worker.h"

#define AUTH_LOG_USER_MAX 64    /* characters of a user name in a log line */
#define AUTH_HASH_WARN_EVERY 10 /* seconds between two "saturated" warnings */

/* ---- the success cache ------------------------------------------------ */

struct auth_cache_entry {
	unsigned char digest[CRYPTO_SHA256_LEN];
	int64_t expires;              /* monotonic seconds; 0 = empty */
};

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	bool usable;                  /* false if no random key could be drawn */
	unsigned char key[CRYPTO_SHA256_LEN];
	struct auth_cache_entry slot[AUTH_CACHE_SLOTS];
} auth_cache = { PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, false, { 0 }, { { { 0 }, 0 } } };

/* Runs once per process, in a worker (after fork), on first use. */
static void
auth_cache_init(void)
{
	struct err e;

	err_clear(&e);
	auth_cache.usable = crypto_random(auth_cache.key, sizeof(auth_cache.key), &e) == 0;
	if (!auth_cache.usable)
		log_error("authenticating", "password cache disabled: %s", e.msg);
}


/*
 * HMAC(key, user \0 password \0 stored hash): the stored hash is part of the
 * key so a changed password invalidates what was remembered.  Returns -1 if
 * the cache is unusable.
 */
static int
auth_cache_digest(const char *user, const char *password, const char *stored,
    unsigned char out[CRYPTO_SHA256_LEN])
{
	size_t ul = strlen(user), pl = strlen(password), sl = strlen(stored);
	size_t n = ul + 1 + pl + 1 + sl;
	struct err e;
	char *msg;
	int rc;

	pthread_once(&auth_cache.once, auth_cache_init);
	if (!auth_cache.usable)
		return -1;
	msg = xmalloc(n);
	memcpy(msg, user, ul);
	msg[ul] = '\0';
	memcpy(msg + ul + 1, password, pl);
	msg[ul + 1 + pl] = '\0';
	memcpy(msg + ul + 1 + pl + 1, stored, sl);
	rc = crypto_hmac_sha256(auth_cache.key, sizeof(auth_cache.key), msg, n,
	    out, &e);
	crypto_cleanse(msg, n);
	free(msg);
	return rc;
}

static size_t
auth_cache_index(const unsigned char d[CRYPTO_SHA256_LEN])
{
	return (((size_t)d[0] << 8) | d[1]) % AUTH_CACHE_SLOTS;
}

static bool
auth_cache_hit(const unsigned char d[CRYPTO_SHA256_LEN])
{
	struct auth_cache_entry *s = &auth_cache.slot[auth_cache_index(d)];
	bool hit;

	pthread_mutex_lock(&auth_cache.lock);
	hit = s->expires > clock_now_s() &&
	    crypto_memeq(s->digest, d, CRYPTO_SHA256_LEN);
	pthread_mutex_unlock(&auth_cache.lock);
	return hit;
}

/* Remember a success; a collision simply replaces the older entry. */
static void
auth_cache_put(const unsigned char d[CRYPTO_SHA256_LEN])
{
	struct auth_cache_entry *s = &auth_cache.slot[auth_cache_index(d)];

	pthread_mutex_lock(&auth_cache.lock);
	memcpy(s->digest, d, CRYPTO_SHA256_LEN);
	s->expires = clock_now_s() + AUTH_CACHE_TTL;
	pthread_mutex_unlock(&auth_cache.lock);
}

/* ---- hash slots ------------------------------------------------------- */

/*
 * At most password_hash_concurrency scrypt checks run at once in this
 * worker, and at most AUTH_HASH_QUEUE_PER_SLOT times as many wait for a
 * slot, each for AUTH_HASH_WAIT_MS at most; the others are refused at once.
 * So a flood of logins costs a bounded amount of memory (the slots x 32 MiB)
 * and holds a bounded number of flow threads, whatever the flood's size.
 */
static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	pthread_cond_t freed;         /* on CLOCK_MONOTONIC */
	int running, waiting;
	int64_t warned_s;             /* last saturation warning */
} auth_hash = { PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER };

static void
auth_hash_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&auth_hash.freed, &ca);
	pthread_condattr_destroy(&ca);
}

/* A hash slot, waiting for one if the queue has room; false if none came. */
static bool
auth_hash_acquire(const struct config *cfg)
{
	int limit = cfg->web.authentication.password_hash_concurrency;
	struct timespec until;
	bool got = false, warn = false;
	int running, waiting;

	pthread_once(&auth_hash.once, auth_hash_init);
	if (limit < 1)
		limit = 1;
	clock_abs_after(&until, AUTH_HASH_WAIT_MS);
	pthread_mutex_lock(&auth_hash.lock);
	/* newcomers queue behind waiters, so that a wait stays bounded */
	if (auth_hash.running < limit && auth_hash.waiting == 0) {
		got = true;
	} else if (auth_hash.waiting < limit * AUTH_HASH_QUEUE_PER_SLOT) {
		auth_hash.waiting++;
		while (auth_hash.running >= limit &&
		    pthread_cond_timedwait(&auth_hash.freed, &auth_hash.lock,
		    &until) != ETIMEDOUT)
			;
		auth_hash.waiting--;
		got = auth_hash.running < limit;
	}
	if (got) {
		auth_hash.running++;
	} else if (until.tv_sec - auth_hash.warned_s >= AUTH_HASH_WARN_EVERY) {
		auth_hash.warned_s = until.tv_sec;
		warn = true;
	}
	running = auth_hash.running;
	waiting = auth_hash.waiting;
	pthread_mutex_unlock(&auth_hash.lock);
	if (warn)
		log_warn("authenticating", "password checks saturated (%d running, "
		    "%d waiting), answering 503", running, waiting);
	return got;
}

static void
auth_hash_release(void)
{
	pthread_mutex_lock(&auth_hash.lock);
	auth_hash.running--;
	pthread_cond_signal(&auth_hash.freed);
	pthread_mutex_unlock(&auth_hash.lock);
}

/* ---- answers ---------------------------------------------------------- */

void
auth_reply_unauthorized(struct http_exchange *x, const char *detail)
{
	xchg_detail(x, 401, detail);
	xchg_header(x, "WWW-Authenticate", "Bearer");
}

void
auth_reply_throttled(struct http_exchange *x, long retry_after)
{
	char ra[24];

	if (x->w->slot != NULL)
		sb_add(&x->w->slot->c.login_throttled, 1);
	xchg_detail(x, 429, AUTH_MSG_THROTTLED);
	snprintf(ra, sizeof(ra), "%ld", retry_after > 0 ? retry_after : 1);
	xchg_header(x, "Retry-After", ra);
}

void
auth_reply_busy(struct http_exchange *x)
{
	xchg_error(x, 503, "too many password checks at once, retry later");
}

void
auth_reply_unavailable(struct http_exchange *x, const struct err *e)
{
	if (e->status != 503) {
		xchg_error(x, 500, "could not check the credentials");
		return;
	}
	xchg_error_retry(x, 503, "user database unavailable, retry later",
	    db_retry_after(x->w->db));
}

/* ---- users ------------------------------------------------------------ */

static bool
auth_is_configured_user(const struct http_exchange *x, const char *user)
{
	const char *cu = x->cfg->web.authentication.username;

	return crypto_streq(user, strlen(user), cu, strlen(cu));
}

/*
 * The stored hash of `user`: the configured user's, a users-table row's, or
 * NULL for an unknown or disabled user.  AUTH_UNAVAILABLE when the table
 * cannot be read.
 */
static enum auth_result
auth_lookup(struct http_exchange *x, const char *user, const char **stored,
    struct err *e)
{
	struct db_user u;

	*stored = NULL;
	if (auth_is_configured_user(x, user)) {
		const char *h = x->w->auth_password_hash;

		*stored = h != NULL && h[0] != '\0' ? h : NULL;
		return AUTH_OK;
	}
	if (!db_user_name_valid(user))
		return AUTH_OK;   /* cannot be in the table: unknown */
	switch (db_user_get(x->w->db, user, x->arena, &u, e)) {
	case DB_OK:
		if (!u.disabled)
			*stored = u.password_hash;
		return AUTH_OK;
	case DB_NOT_FOUND:
		return AUTH_OK;
	default:
		return AUTH_UNAVAILABLE;
	}
}

enum auth_result
auth_subject(struct http_exchange *x, const char *sub, struct err *e)
{
	const char *stored;
	enum auth_result r;

	if ((r = auth_lookup(x, sub, &stored, e)) != AUTH_OK)
		return r;
	return stored != NULL ? AUTH_OK : AUTH_BAD;
}

/* ---- passwords -------------------------------------------------------- */

static void
auth_log_failure(const struct http_exchange *x, const char *user,
    const char *what)
{
	struct log_field f[2];
	char name[AUTH_LOG_USER_MAX + 1];
	const char *shown = name;

	snprintf(name, sizeof(name), "%.*s", AUTH_LOG_USER_MAX, user);
	f[0] = LOG_STR("user", shown);
	f[1] = LOG_STR("client", x->peer);
	log_emit(LOG_LEVEL_INFO, "authenticating", f, 2, "%s", what);
}

/* The throttle's keys of one attempt: address, (address, user), user. */
struct auth_keys {
	const char *addr, *pair, *user;
	size_t addr_len, pair_len, user_len;
	int strict;                   /* login_max_failures */
	int lock;                     /* refuse the user at this many */
	int window;
};

static void
auth_keys_init(struct auth_keys *k, struct http_exchange *x, const char *user)
{
	const struct config *cfg = x->cfg;
	char *pair;

	k->addr = x->peer;
	k->addr_len = strlen(x->peer);
	k->user = user;
	k->user_len = strlen(user);
	k->pair_len = k->addr_len + 1 + k->user_len;
	pair = arena_alloc(x->arena, k->pair_len);
	memcpy(pair, k->addr, k->addr_len);
	pair[k->addr_len] = '\0';
	memcpy(pair + k->addr_len + 1, user, k->user_len);
	k->pair = pair;
	k->strict = cfg->web.authentication.login_max_failures;
	k->lock = k->strict > THROTTLE_LOCK_FAILURES ? k->strict :
	    THROTTLE_LOCK_FAILURES;
	k->window = cfg->web.authentication.login_window_seconds;
}

/* Seconds until the attempt may be made (0: now), counting nothing. */
static long
auth_throttle_check(struct throttle *t, const struct auth_keys *k, int64_t now)
{
	long ra, worst;

	worst = throttle_check(t, THROTTLE_ADDR, k->addr, k->addr_len, k->strict, now);
	ra = throttle_check(t, THROTTLE_PAIR, k->pair, k->pair_len, k->strict, now);
	worst = ra > worst ? ra : worst;
	ra = throttle_check(t, THROTTLE_USER, k->user, k->user_len, k->lock, now);
	return ra > worst ? ra : worst;
}

/*
 * Count the attempt on all three keys before it is hashed, or on none:
 * returns 0, or the seconds to wait when one of them is at its limit (the
 * keys counted already are taken back).
 */
static long
auth_throttle_take(struct throttle *t, const struct auth_keys *k, int64_t now)
{
	long ra;

	if ((ra = throttle_take(t, THROTTLE_ADDR, k->addr, k->addr_len,
	    k->strict, k->window, now, NULL)) > 0)
		return ra;
	if ((ra = throttle_take(t, THROTTLE_PAIR, k->pair, k->pair_len,
	    k->strict, k->window, now, NULL)) > 0)
		goto undo_addr;
	if ((ra = throttle_take(t, THROTTLE_USER, k->user, k->user_len,
	    k->lock, k->window, now, NULL)) > 0)
		goto undo_pair;
	return 0;

undo_pair:
	throttle_forgive(t, THROTTLE_PAIR, k->pair, k->pair_len, now);
undo_addr:
	throttle_forgive(t, THROTTLE_ADDR, k->addr, k->addr_len, now);
	return ra;
}

/*
 * The slow-down of an attempt on a user with many failures from all
 * addresses: logged, then the exchange is deferred on the loop, on the first
 * run only (the second run goes on at once).  True when deferred.
 */
static bool
auth_slow_down(struct http_exchange *x, struct throttle *t,
    const struct auth_keys *k, int64_t now)
{
	struct log_field f[3];
	char name[AUTH_LOG_USER_MAX + 1];
	const char *shown = name;
	int delay;

	if (x->runs > 1)
		return false;
	delay = throttle_delay_ms(throttle_failures(t, THROTTLE_USER, k->user,
	    k->user_len, now), k->strict);
	if (delay == 0)
		return false;
	snprintf(name, sizeof(name), "%.*s", AUTH_LOG_USER_MAX, k->user);
	f[0] = LOG_STR("user", shown);
	f[1] = LOG_STR("client", x->peer);
	f[2] = LOG_INT("delay_ms", delay);
	log_emit(LOG_LEVEL_INFO, "authenticating", f, 3,
	    "many failed logins for this user, attempt slowed down");
	xchg_defer(x, delay);
	return true;
}

/*
 * The password was right: the user's and the pair's failures are over; the
 * address keeps its own (an attacker holding one account cannot reset its
 * address), only this attempt, when it was counted, is taken back.
 */
static void
auth_succeeded(struct throttle *t, const struct auth_keys *k, bool counted,
    int64_t now)
{
	if (t == NULL)
		return;
	if (counted)
		throttle_forgive(t, THROTTLE_ADDR, k->addr, k->addr_len, now);
	throttle_clear(t, THROTTLE_PAIR, k->pair, k->pair_len);
	throttle_clear(t, THROTTLE_USER, k->user, k->user_len);
}

enum auth_result
auth_password(struct http_exchange *x, const char *user, const char *password,
    long *retry_after, struct err *e)
{
	struct throttle *t = x->w->throttle;
	unsigned char digest[CRYPTO_SHA256_LEN];
	bool cacheable = false, good = false;
	struct auth_keys k;
	const char *stored;
	struct err ve;
	int64_t now = clock_now_s();
	enum auth_result r;

	*retry_after = 0;
	auth_keys_init(&k, x, user);
	if (t != NULL) {
		/* refused before any hashing: a throttled client costs nothing */
		if ((*retry_after = auth_throttle_check(t, &k, now)) > 0) {
			auth_log_failure(x, user, "too many failed logins, refused");
			return AUTH_THROTTLED;
		}
		if (auth_slow_down(x, t, &k, now))
			return AUTH_DEFERRED;
	}

	if ((r = auth_lookup(x, user, &stored, e)) != AUTH_OK)
		return r;
	if (stored != NULL) {
		cacheable = auth_cache_digest(user, password, stored, digest) == 0;
		if (cacheable && auth_cache_hit(digest)) {
			/* a success like any other, counted nowhere: it ends a run of
			 * failures as the hashed one below does */
			auth_succeeded(t, &k, false, now);
			return AUTH_OK;
		}
	}

	if (!auth_hash_acquire(x->cfg))
		return AUTH_BUSY;
	/* counted before hashing: concurrent attempts cannot pass the limits */
	now = clock_now_s();
	if (t != NULL && (*retry_after = auth_throttle_take(t, &k, now)) > 0) {
		auth_hash_release();
		auth_log_failure(x, user, "too many failed logins, refused");
		return AUTH_THROTTLED;
	}
	if (stored != NULL) {
		err_clear(&ve);
		good = crypto_password_verify(password, stored, &ve) == 0;
		if (!good && ve.status != 401)
			log_error("authenticating", "the stored password hash of user \"%.*s\" cannot be used: %s",
			    AUTH_LOG_USER_MAX, user, ve.msg);
	} else {
		/* unknown or disabled: the same time as a wrong password */
		crypto_password_dummy_verify(password);
	}
	auth_hash_release();

	if (good) {
		if (cacheable)
			auth_cache_put(digest);
		auth_succeeded(t, &k, true, now);
		return AUTH_OK;
	}
	auth_log_failure(x, user, "authentication failed");
	return AUTH_BAD;
}

/* ---- the gate --------------------------------------------------------- */

int
auth_bearer_token(const char *value, const char **token, size_t *len)
{
	const char *p = value, *end;

	if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
		return 0;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*token = p;
	*len = (size_t)(end - p);
	return 1;
}

static int
auth_by_bearer(struct http_exchange *x, const char *token, size_t len)
{
	struct jwt_claims claims;
	struct err e;

	err_clear(&e);
	if (x->w->keys == NULL || len == 0 ||
	    jwt_verify(x->w->keys, token, len, JWT_TYPE_ACCESS, time(NULL),
	    &claims, &e) != 0) {
		/* the reason names a rule, never the token */
		log_debug("authenticating", "bearer token refused: %s",
		    e.msg[0] ? e.msg : "no token");
		auth_reply_unauthorized(x, AUTH_MSG_REQUIRED);
		return -1;
	}
	switch (auth_subject(x, claims.sub, &e)) {
	case AUTH_OK:
		x->user = arena_strdup(x->arena, claims.sub);
		return 0;
	case AUTH_UNAVAILABLE:
		auth_reply_unavailable(x, &e);
		return -1;
	default:
		auth_log_failure(x, claims.sub, "token of an unknown or disabled user refused");
		auth_reply_unauthorized(x, AUTH_MSG_REQUIRED);
		return -1;
	}
}

static int
auth_by_basic(struct http_exchange *x, const char *user, char *password)
{
	struct err e;
	long retry_after;
	enum auth_result r;

	err_clear(&e);
	r = auth_password(x, user, password, &retry_after, &e);
	crypto_cleanse(password, strlen(password));
	switch (r) {
	case AUTH_OK:
		x->user = user;
		return 0;
	case AUTH_THROTTLED:
		auth_reply_throttled(x, retry_after);
		return -1;
	case AUTH_DEFERRED:
		return -1;   /* runs again from the loop's timer */
	case AUTH_BUSY:
		auth_reply_busy(x);
		return -1;
	case AUTH_UNAVAILABLE:
		auth_reply_unavailable(x, &e);
		return -1;
	case AUTH_BAD:
	default:
		auth_reply_unauthorized(x, AUTH_MSG_INCORRECT);
		return -1;
	}
}

int
auth_request(struct http_exchange *x)
{
	const char *value, *token;
	char *user = NULL, *password = NULL;
	size_t len;
	struct err e;

	value = xchg_header_in(x, "Authorization");
	if (value == NULL || http_header_count(&x->req, "Authorization") != 1) {
		auth_reply_unauthorized(x, AUTH_MSG_REQUIRED);
		return -1;
	}
	if (auth_bearer_token(value, &token, &len))
		return auth_by_bearer(x, token, len);
	err_clear(&e);
	switch (basic_decode(value, x->arena, &user, &password, &e)) {
	case BASIC_OK:
		return auth_by_basic(x, user, password);
	case BASIC_MALFORMED:
		log_debug("authenticating", "basic credentials refused: %s", e.msg);
		auth_reply_unauthorized(x, AUTH_MSG_FORMAT);
		return -1;
	case BASIC_OTHER_SCHEME:
	default:
		auth_reply_unauthorized(x, AUTH_MSG_REQUIRED);
		return -1;
	}
}
