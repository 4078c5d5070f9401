/*
 * fuzz_basic.c -- libFuzzer target for Basic credentials (lib/basic.c) and
 * the strict base64 decoders under it (lib/b64.c).
 *
 * Checks besides "no crash": whatever basic_decode accepts re-encodes to
 * exactly the credentials it was given (one accepted spelling per value),
 * a malformed value always says 401; and for both base64 alphabets, any
 * input the decoder accepts re-encodes to itself byte for byte (the decoder
 * is strict: no padding games, no whitespace, no stray trailing bits).
 * Built only by `make check` when clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/arena.h"
#include "lib/b64.h"
#include "lib/basic.h"
#include "lib/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_b64(const char *s, size_t n, int url)
{
	size_t cap = b64_decoded_max(n), got;
	unsigned char *out = malloc(cap ? cap : 1);
	char *back;
	struct err e;
	int r;

	r = url ? b64url_decode(s, n, out, cap, &got, &e)
	    : b64_decode(s, n, out, cap, &got, &e);
	if (r == 0) {
		back = malloc((url ? b64url_encoded_len(got) : b64_encoded_len(got)) + 1);
		if (url)
			b64url_encode(out, got, back);
		else
			b64_encode(out, got, back);
		if (strlen(back) != n || memcmp(back, s, n) != 0)
			abort();
		free(back);
	} else if (e.status != 400) {
		abort();
	}
	free(out);
}

static void
fuzz_basic(const char *value)
{
	struct arena *a = arena_create(0);
	char *user = NULL, *pw = NULL, *plain, *enc;
	const char *cred, *end;
	size_t ul, pl;
	struct err e;

	err_clear(&e);
	switch (basic_decode(value, a, &user, &pw, &e)) {
	case BASIC_OK:
		if (user == NULL || pw == NULL)
			abort();
		/* The credentials after "Basic" and spaces, before trailing OWS. */
		cred = value + 5;
		while (*cred == ' ')
			cred++;
		end = cred + strlen(cred);
		while (end > cred && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		ul = strlen(user);
		pl = strlen(pw);
		if (memchr(user, ':', ul) != NULL)
			abort();
		plain = malloc(ul + pl + 2);
		memcpy(plain, user, ul);
		plain[ul] = ':';
		memcpy(plain + ul + 1, pw, pl + 1);
		enc = malloc(b64_encoded_len(ul + pl + 1) + 1);
		b64_encode(plain, ul + pl + 1, enc);
		if (strlen(enc) != (size_t)(end - cred) || memcmp(enc, cred, strlen(enc)) != 0)
			abort();
		free(enc);
		free(plain);
		break;
	case BASIC_MALFORMED:
		if (e.status != 401 || strncasecmp(value, "Basic", 5) != 0)
			abort();
		break;
	case BASIC_OTHER_SCHEME:
		if (e.status != 0 || user != NULL)
			abort();
		break;
	default:
		abort();
	}
	arena_destroy(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	char *value = malloc(size + sizeof("Basic "));

	memcpy(copy, data, size);
	fuzz_b64(copy, size, 0);
	fuzz_b64(copy, size, 1);

	/* As an Authorization value, and as the credentials after "Basic ". */
	memcpy(value, data, size);
	value[size] = '\0';
	fuzz_basic(value);
	memcpy(value, "Basic ", 6);
	memcpy(value + 6, data, size);
	value[size + 6] = '\0';
	fuzz_basic(value);
	free(value);
	free(copy);
	return 0;
}
