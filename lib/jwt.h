/*
 * jwt.h -- issuing and verifying the server's JSON Web Tokens (RFC 7519).
 *
 * One profile only: compact JWS, HS256, header {"alg":"HS256","typ":"JWT",
 * "kid":...}, claims sub, type ("access" or "refresh"), iat, exp and a
 * random jti.  Verification trusts nothing in the token before the signature
 * has been checked with a key the ring already holds: the algorithm is fixed
 * (the header can only confirm it), key-location headers (jku, jwk, x5u,
 * x5c, x5t, crit) are refused, and an unknown kid is refused without any
 * I/O.  Pure: no allocation that outlives a call, no logging, safe from any
 * thread.  The token is a bearer credential: it never appears in an error
 * message.
 */
#ifndef INGEN_JWT_H
#define INGEN_JWT_H

#include <stddef.h>
#include <time.h>

#include "lib/err.h"
#include "lib/keys.h"

#define JWT_TOKEN_MAX      8192              /* bytes; longer tokens are rejected */
#define JWT_LEEWAY_SECONDS KEYS_CLOCK_LEEWAY /* clock skew allowed on exp, iat, nbf */
#define JWT_SUB_MAX        255               /* bytes of a subject (user name) */
#define JWT_TYPE_MAX       15
#define JWT_JTI_MAX        31

#define JWT_TYPE_ACCESS  "access"
#define JWT_TYPE_REFRESH "refresh"

/* What a verified token says.  Strings are NUL-terminated copies. */
struct jwt_claims {
	char sub[JWT_SUB_MAX + 1];
	char type[JWT_TYPE_MAX + 1];
	char jti[JWT_JTI_MAX + 1];     /* "" if the token had none */
	char kid[KEYS_KID_MAX + 1];
	long long iat;
	long long exp;
};

/*
 * Sign a token for `sub` (1..JWT_SUB_MAX bytes of UTF-8) of the given type
 * (1..JWT_TYPE_MAX lower-case letters, normally JWT_TYPE_ACCESS or
 * JWT_TYPE_REFRESH), valid from `now` for `lifetime_s` seconds (> 0), with
 * the ring's current key.  Writes the NUL-terminated token into out
 * (outlen bytes; JWT_TOKEN_MAX + 1 is always enough).  Returns 0, or -1 with
 * `e` set (status 500): empty ring, invalid argument, buffer too small.
 */
int jwt_issue(const struct keys *ring, const char *sub, const char *type,
    long lifetime_s, time_t now, char *out, size_t outlen, struct err *e)
    ING_WUR;

/*
 * Verify the `len` bytes at `token` (no NUL needed) at time `now` and, when
 * `expected_type` is not NULL, that its type claim equals it.  Every rule:
 * 1..JWT_TOKEN_MAX bytes; exactly three segments; strict base64url without
 * padding; a header that is a JSON object with alg exactly "HS256", a kid the
 * ring knows and has not retired (no kid at all: the current key, for tokens
 * minted with the shared secret by other issuers), typ absent or "JWT", no jku, jwk, x5u, x5c,
 * x5t, x5t#S256 or crit member, no duplicate member; an HMAC-SHA256 signature
 * of exactly 32 bytes that matches (compared in constant time); a payload
 * that is a JSON object without duplicate members whose exp and iat are
 * numbers (nbf too when present), with exp + leeway >= now, iat - leeway <=
 * now, nbf - leeway <= now, iat <= exp, and a non-empty string sub of at
 * most JWT_SUB_MAX bytes.  On success fills *out (may be NULL) and returns 0.
 * On failure returns -1 with `e` set to status 401 and a message naming the
 * rule ("token expired", "unknown key id", ...), meant for a debug log; the
 * HTTP layer answers every failure with the same 401 body.
 */
int jwt_verify(const struct keys *ring, const char *token, size_t len,
    const char *expected_type, time_t now, struct jwt_claims *out,
    struct err *e) ING_WUR;

#endif
