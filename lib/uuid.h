/*
 * uuid.h -- random (version 4) UUIDs and request ids, fast enough for every
 * request.  Each thread keeps its own generator, seeded from getrandom(2);
 * uuid_reseed_after_fork() makes every thread of a new process reseed so a
 * forked worker never repeats its parent's sequence.
 */
#ifndef INGEN_UUID_H
#define INGEN_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 37   /* 36 characters and the NUL */

/* Write a new lower-case UUIDv4 string into out. Any thread. */
void uuid_v4(char out[UUID_STR_LEN]);

/* Uniform 64 random bits from the thread's generator (not for secrets). */
uint64_t uuid_rand64(void);

/* Call in the child right after fork(). */
void uuid_reseed_after_fork(void);

/* True if s is a canonical UUID string (any version, either case). */
bool uuid_valid(const char *s);

#endif
