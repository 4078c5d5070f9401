/*
 * crypto.h -- the few cryptographic primitives the server uses, from OpenSSL 3.
 *
 * Random bytes, SHA-256, HMAC-SHA256, constant-time comparison and password
 * hashing.  Every function is safe from any thread (OpenSSL 3 needs no
 * locking callbacks) and in a forked child (OpenSSL reseeds its DRBG after
 * fork).  Password hashing is deliberately slow (~50-100 ms and 32 MiB with
 * the default parameters): call it on a flow thread or in the CLI, never on
 * an event-loop thread.  Nothing here logs; secrets and passwords never enter
 * an error message.
 *
 * Stored password hash format (self-describing, one line of ASCII):
 *
 *     $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>
 *
 * <salt> and <hash> are standard, padded base64 (the strict decoder of
 * lib/b64.h); hashes written here use ln=15, r=8, p=1, a 16-byte random salt
 * and a 32-byte derived key, e.g.
 * "$scrypt$ln=15,r=8,p=1$3q2+7w3q2+7w3q2+7w3q2w==$<44 characters>".
 * Verification accepts other parameters within bounds (ln 10..20, r 1..32,
 * p 1..16, at most 256 MiB of scrypt memory, salt 8..64 bytes, hash 16..64
 * bytes) so that the cost can be raised later without invalidating users.
 */
#ifndef INGEN_CRYPTO_H
#define INGEN_CRYPTO_H

#include <stddef.h>

#include "lib/err.h"

#define CRYPTO_SHA256_LEN        32
#define CRYPTO_SHA256_HEX_LEN    64    /* without the NUL */
#define CRYPTO_PASSWORD_HASH_MAX 192   /* a buffer that holds any hash we write, with NUL */

/* Default cost of new password hashes: N = 2^15, r = 8, p = 1 (32 MiB). */
#define CRYPTO_SCRYPT_LN 15
#define CRYPTO_SCRYPT_R  8
#define CRYPTO_SCRYPT_P  1

/*
 * Fill buf with n bytes from the OpenSSL DRBG (RAND_bytes).  Returns 0, or
 * -1 with `e` set (status 500) if the generator is not seeded or failed.
 */
int crypto_random(void *buf, size_t n, struct err *e) ING_WUR;

/* SHA-256 of n bytes into out (32 bytes).  Returns 0 or -1 with `e` set. */
int crypto_sha256(const void *p, size_t n, unsigned char out[CRYPTO_SHA256_LEN],
    struct err *e) ING_WUR;

/*
 * SHA-256 of n bytes as 64 lower-case hex digits and a NUL into out (65
 * bytes).  Returns 0 or -1 with `e` set.
 */
int crypto_sha256_hex(const void *p, size_t n,
    char out[CRYPTO_SHA256_HEX_LEN + 1], struct err *e) ING_WUR;

/*
 * HMAC-SHA256 of msg under key into out (32 bytes).  keylen must be > 0.
 * Returns 0 or -1 with `e` set (status 500).
 */
int crypto_hmac_sha256(const void *key, size_t keylen, const void *msg,
    size_t msglen, unsigned char out[CRYPTO_SHA256_LEN], struct err *e) ING_WUR;

/*
 * 1 if the n bytes at a and b are equal, else 0, in time that depends only on
 * n (CRYPTO_memcmp).
 */
int crypto_memeq(const void *a, const void *b, size_t n);

/*
 * 1 if the byte strings a (alen bytes) and b (blen bytes) are equal, else 0.
 * The time taken does not depend on where they differ; only the lengths may
 * show (both are hashed with SHA-256 and the digests compared with
 * CRYPTO_memcmp).  For comparing a presented credential with the configured
 * one.  Returns 0 if hashing fails.
 */
int crypto_streq(const void *a, size_t alen, const void *b, size_t blen);

/* Overwrite n bytes at p with zeros in a way the compiler keeps. */
void crypto_cleanse(void *p, size_t n);

/*
 * Hash the NUL-terminated password pw with scrypt (default parameters above)
 * and a fresh random salt, and write the self-describing string into out
 * (outlen bytes, CRYPTO_PASSWORD_HASH_MAX is always enough).  Slow: flow
 * threads and the CLI only.  Returns 0, or -1 with `e` set (status 500).
 */
int crypto_password_hash(const char *pw, char *out, size_t outlen,
    struct err *e) ING_WUR;

/*
 * Check the NUL-terminated password pw against a stored hash written by
 * crypto_password_hash.  The derived key is compared in constant time.
 * Returns 0 when the password matches.  Otherwise returns -1 with `e` set:
 * status 401 and "password does not match" for a wrong password, status 500
 * for a stored hash that cannot be used (malformed, parameters out of
 * bounds) or a KDF failure.  A caller must treat every -1 as "not
 * authenticated"; the status tells it whether to log an error.  Slow: flow
 * threads and the CLI only.
 */
int crypto_password_verify(const char *pw, const char *stored,
    struct err *e) ING_WUR;

/*
 * Burn the time of one crypto_password_verify with default parameters on a
 * built-in dummy hash, and forget the result.  Call it for an unknown user,
 * so that "no such user" costs the same time as "wrong password".
 */
void crypto_password_dummy_verify(const char *pw);

#endif
