/*
 * keys.h -- the ring of JWT signing keys (HS256 secrets) and the key file.
 *
 * The master loads the ring before forking (keys_load) and hands a copy to
 * every worker (a struct keys is plain memory with no pointers, so fork or a
 * struct copy is enough).  On SIGHUP it loads a new ring and calls
 * keys_rotate(old, new, now, keys_retire_delay(cfg)) so that tokens signed
 * with the previous key keep verifying until they have all expired.  A ring
 * is immutable once built; readers need no lock.
 *
 * Where the key comes from:
 *  1. web_configuration.authentication.jwt_secret_key (or its _FILE), when not
 *     empty: its bytes are the secret (at least 32), and its kid is the first
 *     8 hex digits of SHA-256(secret), so several servers sharing the secret
 *     agree on the kid.
 *  2. otherwise the key file: authentication.jwt_key_file, or
 *     <server.state_dir>/jwt.key.  If it does not exist it is created (mode
 *     0600, its directory 0700 when missing) with 32 random bytes; it is
 *     written to a temporary file and hard-linked into place, so servers
 *     starting together never read a half-written file and all end up with
 *     the same key.  An existing key file that group or others can access,
 *     that is not a regular file, or that holds a key shorter than 32 bytes is
 *     refused with a message naming the file.
 *
 * Key file format (ASCII, one key per line, newest last):
 *
 *     # comment lines and blank lines are ignored
 *     <kid>:<hex secret>[:<retire after, unix seconds>]
 *     <hex secret>
 *
 * <kid> is 1..32 characters of [A-Za-z0-9_-]; a line with only a hex secret
 * gets the derived kid (first 8 hex digits of SHA-256 of the secret bytes),
 * so `openssl rand -hex 32 > jwt.key` makes a valid file.  The secret is at
 * least 32 bytes (64 hex digits) and at most KEYS_SECRET_MAX bytes.  The last
 * line is the current signing key and carries no retire time; earlier lines
 * are previous keys, used only to verify, until their retire time (or for as
 * long as they stay in the file when they have none).  keys_file_rotate()
 * appends a new key and stamps the retire time on the previous ones, so a
 * rotation written by one server is picked up by every server sharing the
 * file at its next start or SIGHUP.
 *
 * Nothing here logs a secret, and no error message contains key material.
 */
#ifndef INGEN_KEYS_H
#define INGEN_KEYS_H

#include <stddef.h>
#include <time.h>

#include "lib/config.h"
#include "lib/err.h"

#define KEYS_MAX            16        /* keys in one ring */
#define KEYS_KID_MAX        32        /* characters of a kid */
#define KEYS_SECRET_MIN     32        /* bytes */
#define KEYS_SECRET_MAX     256       /* bytes */
#define KEYS_FILE_MAX       (64 * 1024)
#define KEYS_FILE_NAME      "jwt.key" /* under server.state_dir */
/* The clock leeway jwt_verify allows; a retired key must outlive it. */
#define KEYS_CLOCK_LEEWAY   60

struct keys_key {
	char kid[KEYS_KID_MAX + 1];
	unsigned char secret[KEYS_SECRET_MAX];
	size_t secret_len;
	/* 0: valid while in the ring; else not used to verify after this time */
	time_t retire_after;
};

/* key[0] is the current (signing) key; key[1..n-1] verify only. */
struct keys {
	struct keys_key key[KEYS_MAX];
	size_t n;
};

/*
 * Build a ring from the configuration as described above (creating the key
 * file if needed); a jwt_algorithm other than "HS256" (or empty) is refused.
 * `out` is overwritten.  Returns 0, or -1 with `e` set
 * (status 500) and `out` empty: "jwt_secret_key must be at least 32 bytes",
 * "key file \"...\" is accessible by group or others (mode 0640); chmod 600
 * it", and so on.  Does file I/O: the master and the CLI only.
 */
int keys_load(const struct config *cfg, struct keys *out, struct err *e) ING_WUR;

/*
 * The key file path this configuration uses: jwt_key_file when not empty,
 * else <state_dir>/jwt.key, else NULL (no state_dir).  The caller frees it.
 */
char *keys_file_path(const struct config *cfg);

/*
 * Build a ring from a key file (creating it if missing).  As keys_load, for
 * the key file case only.
 */
int keys_load_file(const char *path, struct keys *out, struct err *e) ING_WUR;

/*
 * Append a key to the ring; the first key added becomes the current one.
 * kid must be 1..KEYS_KID_MAX characters of [A-Za-z0-9_-] and not already in
 * the ring; len must be in [KEYS_SECRET_MIN, KEYS_SECRET_MAX].  Returns 0 or
 * -1 with `e` set (full ring, bad kid, duplicate, short secret).
 */
int keys_add(struct keys *ring, const char *kid, const void *secret,
    size_t len, time_t retire_after, struct err *e) ING_WUR;

/*
 * The kid of a secret: the first 8 hex digits of SHA-256(secret), into out
 * (at least 9 bytes).  Returns 0 or -1 with `e` set.
 */
int keys_derive_kid(const void *secret, size_t len, char *out, struct err *e) ING_WUR;

/*
 * After a reload: carry the keys of `old` that `ring` lacks (compared by
 * kid) into `ring` as verify-only keys, so tokens they signed stay valid.
 * A carried key keeps its own retire time if it has one, else it retires at
 * now + keep_s; keys already retired at `now` are dropped.  When the ring
 * fills up the oldest keys are the ones left out.  Pure; never fails.
 */
void keys_rotate(const struct keys *old, struct keys *ring, time_t now, long keep_s);

/*
 * How long a replaced key must keep verifying: the longest token lifetime
 * this configuration issues (access or refresh) plus KEYS_CLOCK_LEEWAY.
 */
long keys_retire_delay(const struct config *cfg);

/* The signing key, or NULL for an empty ring. */
const struct keys_key *keys_current(const struct keys *ring);

/*
 * The key with this kid (kidlen bytes, not necessarily NUL-terminated) that
 * may verify at `now`, or NULL when the kid is unknown or retired.  Pure
 * lookup: no I/O, so an attacker-chosen kid can never reach the file system.
 */
const struct keys_key *keys_find(const struct keys *ring, const char *kid,
    size_t kidlen, time_t now);

/* Wipe every secret and empty the ring. */
void keys_clear(struct keys *ring);

/*
 * Rotate the key file at `path` (for `ingen` and operators): every previous
 * key without a retire time gets now + keep_s, keys retired before `now` are
 * dropped, and a new random 32-byte key is appended as the current one.  The
 * file is rewritten atomically (0600 temporary file, fsync, rename), created
 * if missing.  Run it on one server; the others pick the new key up on
 * SIGHUP.  Returns 0 or -1 with `e` set.
 */
int keys_file_rotate(const char *path, time_t now, long keep_s, struct err *e) ING_WUR;

#endif
