/*
 * auth.c -- who is calling: the gate of protected routes, password checks,
 * the per-worker cache of successful checks, and the login throttle's use.
 *
 * It owns the success cache (process memory, one mutex) and the exact 401
 * and 429 answers.  It runs on flow threads only: a password check costs one
 * scrypt (~100 ms of CPU) and may read the users table.  It must never log
 * a password, a token or an Authorization value, and never tell an unknown
 * user from a wrong password, by body or by time.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

static int64_t
auth_mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
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
	hit = s->expires > auth_mono_seconds() &&
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
	s->expires = auth_mono_seconds() + AUTH_CACHE_TTL;
	pthread_mutex_unlock(&auth_cache.lock);
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

	xchg_detail(x, 429, AUTH_MSG_THROTTLED);
	snprintf(ra, sizeof(ra), "%ld", retry_after > 0 ? retry_after : 1);
	xchg_header(x, "Retry-After", ra);
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

enum auth_result
auth_password(struct http_exchange *x, const char *user, const char *password,
    long *retry_after, struct err *e)
{
	const struct config *cfg = x->cfg;
	struct throttle *t = x->w->throttle;
	unsigned char digest[CRYPTO_SHA256_LEN];
	bool cacheable = false, good = false;
	const char *stored;
	struct err ve;
	int64_t now = auth_mono_seconds();
	long ra_user, ra_addr;
	enum auth_result r;

	*retry_after = 0;
	/* refused before any hashing: a throttled client costs nothing */
	if (t != NULL) {
		ra_addr = throttle_check(t, THROTTLE_ADDR, x->peer, strlen(x->peer),
		    cfg->web.authentication.login_max_failures, now);
		ra_user = throttle_check(t, THROTTLE_USER, user, strlen(user),
		    cfg->web.authentication.login_max_failures, now);
		*retry_after = ra_addr > ra_user ? ra_addr : ra_user;
		if (*retry_after > 0) {
			auth_log_failure(x, user, "too many failed logins, refused");
			return AUTH_THROTTLED;
		}
	}

	if ((r = auth_lookup(x, user, &stored, e)) != AUTH_OK)
		return r;
	if (stored != NULL) {
		cacheable = auth_cache_digest(user, password, stored, digest) == 0;
		if (cacheable && auth_cache_hit(digest))
			return AUTH_OK;
		err_clear(&ve);
		good = crypto_password_verify(password, stored, &ve) == 0;
		if (!good && ve.status != 401)
			log_error("authenticating", "the stored password hash of user \"%.*s\" cannot be used: %s",
			    AUTH_LOG_USER_MAX, user, ve.msg);
	} else {
		/* unknown or disabled: the same time as a wrong password */
		crypto_password_dummy_verify(password);
	}

	if (good) {
		if (cacheable)
			auth_cache_put(digest);
		if (t != NULL)
			throttle_clear(t, THROTTLE_USER, user, strlen(user));
		return AUTH_OK;
	}
	if (t != NULL) {
		int window = cfg->web.authentication.login_window_seconds;

		(void)throttle_fail(t, THROTTLE_ADDR, x->peer, strlen(x->peer), window, now);
		(void)throttle_fail(t, THROTTLE_USER, user, strlen(user), window, now);
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
