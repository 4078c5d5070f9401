/*
 * fuzz_jwt.c -- libFuzzer target for JWT verification (lib/jwt.c, with
 * lib/b64.c, lib/keys.c and lib/json.c under it).
 *
 * The first input byte picks a mode, the rest is the data:
 *   0  the data is a token: jwt_verify must not crash, and whatever it
 *      accepts must be genuinely signed: its third segment must be exactly
 *      the base64url HMAC of the first two under the real key (so only the
 *      seed's own valid token, never a mutation of it, can pass);
 *   1  the data is "<header JSON>\n<payload JSON>": the target signs it with
 *      the real key, so the header rules, the payload parser and every claim
 *      check are reached; whatever verifies must satisfy the claim rules;
 *   2  the data is a subject: a token issued for it must verify and give
 *      the subject back exactly.
 * Inputs are copied to buffers of exactly their size so ASan sees any read
 * past the end.  Built only by `make check` when clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/b64.h"
#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/jwt.h"
#include "lib/keys.h"

#define FUZZ_NOW ((time_t)1700000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_secret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
static struct keys fuzz_ring;
static int fuzz_ready;

static void
fuzz_init(void)
{
	struct err e;

	if (fuzz_ready)
		return;
	if (keys_add(&fuzz_ring, "k1", fuzz_secret, strlen(fuzz_secret), 0, &e) < 0)
		abort();
	fuzz_ready = 1;
}

/* Claims that jwt_verify accepted must obey every rule it promises. */
static void
fuzz_check_claims(const struct jwt_claims *c)
{
	if (c->sub[0] == '\0' || strlen(c->sub) > JWT_SUB_MAX)
		abort();
	if (c->exp + JWT_LEEWAY_SECONDS < FUZZ_NOW - 1)
		abort();
	if (c->iat - JWT_LEEWAY_SECONDS > FUZZ_NOW)
		abort();
	if (c->iat > c->exp)
		abort();
	if (strcmp(c->kid, "k1") != 0)
		abort();
}

static void
fuzz_token(const char *t, size_t n)
{
	unsigned char mac[CRYPTO_SHA256_LEN];
	char want[64];
	const char *dot;
	struct jwt_claims c;
	struct err e;

	if (jwt_verify(&fuzz_ring, t, n, NULL, FUZZ_NOW, &c, &e) < 0) {
		if (e.status != 401)
			abort();
		return;
	}
	fuzz_check_claims(&c);
	dot = memrchr(t, '.', n);
	if (dot == NULL)
		abort();
	if (crypto_hmac_sha256(fuzz_secret, strlen(fuzz_secret), t,
	    (size_t)(dot - t), mac, NULL) < 0)
		abort();
	b64url_encode(mac, sizeof(mac), want);
	if (strlen(want) != n - (size_t)(dot + 1 - t) ||
	    memcmp(want, dot + 1, strlen(want)) != 0)
		abort();    /* accepted without the exact signature */
}

static void
fuzz_signed(const char *d, size_t n)
{
	const char *nl = memchr(d, '\n', n);
	size_t hl, pl, o;
	char *tok;
	unsigned char mac[CRYPTO_SHA256_LEN];
	struct jwt_claims c;
	struct err e;

	if (nl == NULL)
		return;
	hl = (size_t)(nl - d);
	pl = n - hl - 1;
	tok = malloc(b64url_encoded_len(hl) + b64url_encoded_len(pl) +
	    b64url_encoded_len(sizeof(mac)) + 3);
	o = b64url_encode(d, hl, tok);
	tok[o++] = '.';
	o += b64url_encode(nl + 1, pl, tok + o);
	if (crypto_hmac_sha256(fuzz_secret, strlen(fuzz_secret), tok, o, mac, NULL) < 0)
		abort();
	tok[o++] = '.';
	o += b64url_encode(mac, sizeof(mac), tok + o);
	if (jwt_verify(&fuzz_ring, tok, o, NULL, FUZZ_NOW, &c, &e) == 0)
		fuzz_check_claims(&c);
	else if (e.status != 401)
		abort();
	if (jwt_verify(&fuzz_ring, tok, o, JWT_TYPE_ACCESS, FUZZ_NOW, &c, &e) == 0) {
		fuzz_check_claims(&c);
		if (strcmp(c.type, JWT_TYPE_ACCESS) != 0)
			abort();
	}
	free(tok);
}

static void
fuzz_round_trip(const char *d, size_t n)
{
	char *sub = malloc(n + 1);
	char tok[JWT_TOKEN_MAX + 1];
	struct jwt_claims c;
	struct err e;

	memcpy(sub, d, n);
	sub[n] = '\0';
	if (jwt_issue(&fuzz_ring, sub, JWT_TYPE_REFRESH, 3600, FUZZ_NOW, tok, sizeof(tok), &e) == 0) {
		if (jwt_verify(&fuzz_ring, tok, strlen(tok), JWT_TYPE_REFRESH, FUZZ_NOW, &c, &e) < 0)
			abort();
		if (strcmp(c.sub, sub) != 0)
			abort();
		if (jwt_verify(&fuzz_ring, tok, strlen(tok), JWT_TYPE_ACCESS, FUZZ_NOW, &c, &e) == 0)
			abort();
	}
	free(sub);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;

	fuzz_init();
	if (size == 0)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		fuzz_token(copy, size - 1);
		break;
	case 1:
		fuzz_signed(copy, size - 1);
		break;
	default:
		fuzz_round_trip(copy, size - 1);
		break;
	}
	free(copy);
	return 0;
}
