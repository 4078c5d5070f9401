/*
 * uuid.c -- xoshiro256** per thread, seeded from getrandom(2).  Not a
 * cryptographic generator: request ids and row ids only, never keys.
 */
#include "autoconfig.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/uuid.h"

static unsigned uuid_epoch;                 /* bumped after fork */
static _Thread_local unsigned uuid_seeded_epoch;
static _Thread_local bool uuid_seeded;
static _Thread_local uint64_t uuid_s[4];

static inline uint64_t
uuid_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static void
uuid_seed(void)
{
	struct timespec ts;
	size_t i;

	if (getrandom(uuid_s, sizeof(uuid_s), 0) != (ssize_t)sizeof(uuid_s)) {
		/* getrandom cannot fail for 32 bytes after boot; be safe anyway */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uuid_s[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		uuid_s[1] = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ull;
		uuid_s[2] = (uint64_t)(uintptr_t)&ts;
		uuid_s[3] = 0x2545f4914f6cdd1dull;
	}
	for (i = 0; i < 4; i++)
		if (uuid_s[i] == 0)
			uuid_s[i] = 0x9e3779b97f4a7c15ull + i;
	uuid_seeded = true;
	uuid_seeded_epoch = __atomic_load_n(&uuid_epoch, __ATOMIC_RELAXED);
}

uint64_t
uuid_rand64(void)
{
	uint64_t result, t;

	if (!uuid_seeded ||
	    uuid_seeded_epoch != __atomic_load_n(&uuid_epoch, __ATOMIC_RELAXED))
		uuid_seed();
	result = uuid_rotl(uuid_s[1] * 5, 7) * 9;
	t = uuid_s[1] << 17;
	uuid_s[2] ^= uuid_s[0];
	uuid_s[3] ^= uuid_s[1];
	uuid_s[1] ^= uuid_s[2];
	uuid_s[0] ^= uuid_s[3];
	uuid_s[2] ^= t;
	uuid_s[3] = uuid_rotl(uuid_s[3], 45);
	return result;
}

void
uuid_reseed_after_fork(void)
{
	__atomic_add_fetch(&uuid_epoch, 1, __ATOMIC_RELAXED);
	uuid_seeded = false;
}

void
uuid_v4(char out[UUID_STR_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	uint64_t r0 = uuid_rand64(), r1 = uuid_rand64();
	int i, o = 0;

	memcpy(b, &r0, 8);
	memcpy(b + 8, &r1, 8);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

bool
uuid_valid(const char *s)
{
	int i;

	for (i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return s[36] == '\0';
}
