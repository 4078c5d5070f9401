/*
 * auth.h -- authenticating requests in a worker: HTTP Basic and Bearer JWT
 * for protected routes, the password check behind Basic and the login
 * route, the login throttle, and the answers the reference words exactly.
 *
 * Users are the configured one (web_configuration.authentication.username
 * and password; its scrypt hash is computed once by the master and
 * inherited) and the enabled rows of the users table.  The configured user
 * wins when both have the same name.  Every password check costs one scrypt
 * whatever the outcome (unknown user: crypto_password_dummy_verify), except
 * a repeat of credentials that verified in this process within
 * AUTH_CACHE_TTL seconds, which costs one HMAC (failures are never cached;
 * the stored hash is part of the cache key, so `ingen user passwd` takes
 * effect at once and a disabled user is refused before the cache is looked
 * at).  Attempts are counted per client address, per (address, user) and
 * per user name in the shared throttle (lib/throttle.h), before any
 * hashing; a success takes its own attempt back.  An address or a pair at
 * login_max_failures is refused (429); a user at that many failures from
 * all addresses is slowed down (the exchange is deferred on the event loop,
 * not slept on a thread) and refused only at THROTTLE_LOCK_FAILURES, so
 * that failing on purpose cannot lock a user out.  At most
 * password_hash_concurrency hashes run at once per worker; a few more wait
 * (AUTH_HASH_QUEUE_PER_SLOT per slot, AUTH_HASH_WAIT_MS at most), the rest
 * get 503.
 *
 * Everything here may block (scrypt, the users table): flow threads only,
 * never the event loop.  Passwords, tokens and Authorization values never
 * reach a log line or an error body; failures are logged at info with the
 * user name and the client address.
 */
#ifndef INGEN_AUTH_H
#define INGEN_AUTH_H

#include <stddef.h>

#include "lib/err.h"
#include "lib/jwt.h"
#include "worker/exchange.h"

#define AUTH_CACHE_SLOTS 1024     /* successful checks remembered per worker */
#define AUTH_CACHE_TTL   300      /* seconds a remembered success stays valid */
#define AUTH_HASH_WAIT_MS 1000    /* longest wait for a hash slot */
#define AUTH_HASH_QUEUE_PER_SLOT 4  /* checks that may wait, per slot */

/* The reference's bodies (the Python product's API). */
#define AUTH_MSG_REQUIRED   "Authentication required"
#define AUTH_MSG_INCORRECT  "Incorrect username or password"
#define AUTH_MSG_FORMAT     "Invalid authentication format"
#define AUTH_MSG_DISABLED   "Authentication is disabled. JWT login not available."
#define AUTH_MSG_THROTTLED  "Too many failed login attempts. Try again later."

/* What a credential check found. */
enum auth_result {
	AUTH_OK = 0,           /* the user is who they say */
	AUTH_BAD,              /* wrong password, unknown or disabled user, bad token */
	AUTH_THROTTLED,        /* too many failures for this user or address */
	AUTH_UNAVAILABLE,      /* the users table cannot be read: 503 */
	AUTH_BUSY,             /* no hash slot came in time: 503 */
	AUTH_DEFERRED,         /* slowed down: the exchange runs again later */
};

/*
 * The gate of every protected route, called by the flow thread before the
 * handler when authentication is enabled.  Accepts exactly one
 * Authorization header: "Bearer <access token>" (case-insensitive scheme)
 * or "Basic <base64 user:password>".  Returns 0 with x->user set (in
 * x->arena) when the request may proceed.  Otherwise sets the response and
 * returns -1: 401 {"detail":"Authentication required"} (no header, two
 * headers, another scheme, any token that fails jwt_verify as an access
 * token, or whose user no longer exists or is disabled), 401 {"detail":
 * "Incorrect username or password"} (Basic with wrong credentials), 401
 * {"detail":"Invalid authentication format"} (undecodable Basic), each
 * with WWW-Authenticate: Bearer; 429 with Retry-After when throttled; 503
 * when the users table is unreachable or no hash slot came in time.  A
 * Basic attempt that is slowed down returns -1 with no response and the
 * exchange deferred (xchg_defer): it is run again, gate first.  Flow threads
 * only; this is the worker's xchg_gate.
 */
int auth_request(struct http_exchange *x) ING_WUR;

/*
 * Check user/password for Basic and for the login route: the throttle first
 * (AUTH_THROTTLED without hashing; *retry_after gets the seconds to wait);
 * on the first run of the exchange, a user past the strict limit is slowed
 * down: AUTH_DEFERRED, with xchg_defer called (the caller returns without a
 * response; the second run goes on at once).  Then the configured user or
 * the users table, the success cache, a hash slot (AUTH_BUSY when none came
 * in time), the attempt counted on every key, one scrypt.  A success takes
 * the attempt back from the address and clears the user's and the pair's
 * counts (not the address's); a failure stays counted and is logged at
 * info.  AUTH_UNAVAILABLE sets `e` (503).  Flow threads only.
 */
enum auth_result auth_password(struct http_exchange *x, const char *user,
    const char *password, long *retry_after, struct err *e);

/*
 * Whether `sub` (from a verified token) is still a user: the configured
 * one, or an enabled row of the users table.  AUTH_OK, AUTH_BAD, or
 * AUTH_UNAVAILABLE with `e` set.  Flow threads only.
 */
enum auth_result auth_subject(struct http_exchange *x, const char *sub,
    struct err *e);

/*
 * If the Authorization value `value` uses the Bearer scheme, point *token
 * and *len at its token (surrounding blanks excluded) and return 1; else
 * return 0.  Pure.
 */
int auth_bearer_token(const char *value, const char **token, size_t *len);

/* 429 {"detail":"Too many failed login attempts. Try again later."} with
 * Retry-After: retry_after (at least 1). */
void auth_reply_throttled(struct http_exchange *x, long retry_after);

/* 401 {"detail":"<detail>"} with WWW-Authenticate: Bearer. */
void auth_reply_unauthorized(struct http_exchange *x, const char *detail);

/* 503 with Retry-After: no hash slot came in time. */
void auth_reply_busy(struct http_exchange *x);

/* 503 for a users table that cannot be read, with the pool's Retry-After. */
void auth_reply_unavailable(struct http_exchange *x, const struct err *e);

#endif
