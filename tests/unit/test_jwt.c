/*
 * test_jwt.c -- issuing and verifying tokens, and every way a forged,
 * altered, stale or malformed token must be refused.  Hostile tokens are
 * built by hand here, signed with the real key wherever that makes the
 * header or payload under test the only defect.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/b64.h"
#include "lib/crypto.h"
#include "lib/jwt.h"
#include "lib/keys.h"
#include "tests/unit/tap.h"

#define NOW ((time_t)1700000000)

static const char secret1[] = "0123456789abcdef0123456789abcdef-one";
static const char secret2[] = "0123456789abcdef0123456789abcdef-two";

static struct keys ring;        /* kid "k1", secret1 */

static char tok[JWT_TOKEN_MAX * 10];

/* b64url(header) "." b64url(payload) "." b64url(HMAC(key)) into tok. */
static const char *
craft(const char *header, const char *payload, const char *key)
{
	unsigned char mac[CRYPTO_SHA256_LEN];
	size_t o;

	o = b64url_encode(header, strlen(header), tok);
	tok[o++] = '.';
	o += b64url_encode(payload, strlen(payload), tok + o);
	if (key != NULL &&
	    crypto_hmac_sha256(key, strlen(key), tok, o, mac, NULL) < 0)
		abort();
	tok[o++] = '.';
	if (key != NULL)
		o += b64url_encode(mac, sizeof(mac), tok + o);
	tok[o] = '\0';
	return tok;
}

/* A payload valid at NOW, for crafted tokens. */
static char good_payload[256];

#define GOOD_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"

static int
verify_s(const char *t, const char *type, struct jwt_claims *c, struct err *e)
{
	return jwt_verify(&ring, t, strlen(t), type, NOW, c, e);
}

/* 1 if the token is rejected with status 401; prints why on failure. */
static int
rejected(const char *t)
{
	struct err e;

	err_clear(&e);
	if (verify_s(t, NULL, NULL, &e) == 0) {
		printf("# unexpectedly accepted\n");
		return 0;
	}
	if (e.status != 401) {
		printf("# status %d: %s\n", e.status, e.msg);
		return 0;
	}
	return 1;
}

static int
accepted(const char *t)
{
	struct err e;

	if (verify_s(t, NULL, NULL, &e) < 0) {
		printf("# rejected: %s\n", e.msg);
		return 0;
	}
	return 1;
}

static void
test_issue_verify(void)
{
	char a[JWT_TOKEN_MAX + 1], r[JWT_TOKEN_MAX + 1];
	struct jwt_claims c;
	struct err e;

	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 3600, NOW, a, sizeof(a), &e) == 0,
	    "issue an access token");
	ok(jwt_issue(&ring, "alice", JWT_TYPE_REFRESH, 7 * 86400, NOW, r, sizeof(r), &e) == 0,
	    "issue a refresh token");
	ok(verify_s(a, JWT_TYPE_ACCESS, &c, &e) == 0, "access token verifies as access");
	is_str(c.sub, "alice", "sub");
	is_str(c.type, "access", "type");
	is_str(c.kid, "k1", "kid");
	is_int(c.iat, NOW, "iat");
	is_int(c.exp, NOW + 3600, "exp");
	is_int(strlen(c.jti), 22, "jti is 16 random bytes");
	ok(verify_s(r, JWT_TYPE_REFRESH, &c, &e) == 0 && c.exp == NOW + 7 * 86400,
	    "refresh token verifies as refresh");
	ok(verify_s(r, JWT_TYPE_ACCESS, &c, &e) < 0, "refresh token used as access is rejected");
	is_str(e.msg, "invalid token: wrong token type", "with its reason");
	ok(verify_s(a, JWT_TYPE_REFRESH, &c, &e) < 0, "access token used as refresh is rejected");
	ok(verify_s(a, NULL, &c, &e) == 0, "no expected type accepts any type");
	{
		char a2[JWT_TOKEN_MAX + 1];
		struct jwt_claims c2;

		ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 3600, NOW, a2, sizeof(a2), &e) == 0 &&
		    strcmp(a, a2) != 0 && verify_s(a2, NULL, &c2, &e) == 0 &&
		    strcmp(c.jti, c2.jti) != 0, "two tokens issued at once differ by jti");
	}
	/* The header is exactly the documented one. */
	{
		char h[128];
		size_t n;
		const char *dot = strchr(a, '.');

		ok(b64url_decode(a, (size_t)(dot - a), h, sizeof(h) - 1, &n, &e) == 0, "header decodes");
		h[n] = '\0';
		is_str(h, GOOD_HEADER, "header is {alg HS256, typ JWT, kid}");
	}
	/* A subject that needs JSON escaping survives. */
	ok(jwt_issue(&ring, "a\"b\\c\xc3\xa9", JWT_TYPE_ACCESS, 60, NOW, a, sizeof(a), &e) == 0 &&
	    verify_s(a, NULL, &c, &e) == 0 && strcmp(c.sub, "a\"b\\c\xc3\xa9") == 0,
	    "a subject with quotes, backslash and UTF-8 round trips");

	/* Refusals at issue time. */
	ok(jwt_issue(&ring, "", JWT_TYPE_ACCESS, 60, NOW, a, sizeof(a), &e) < 0, "issue refuses an empty sub");
	ok(jwt_issue(&ring, "\xff\xfe", JWT_TYPE_ACCESS, 60, NOW, a, sizeof(a), &e) < 0, "issue refuses a non-UTF-8 sub");
	ok(jwt_issue(&ring, "a\nb", JWT_TYPE_ACCESS, 60, NOW, a, sizeof(a), &e) == 0, "a control byte is escaped");
	ok(jwt_issue(&ring, "alice", "Access", 60, NOW, a, sizeof(a), &e) < 0, "issue refuses an odd type");
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 0, NOW, a, sizeof(a), &e) < 0, "issue refuses lifetime 0");
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 60, NOW, a, 40, &e) < 0 && a[0] == '\0',
	    "issue refuses a small buffer");
	{
		char longsub[JWT_SUB_MAX + 2];

		memset(longsub, 'x', sizeof(longsub) - 1);
		longsub[sizeof(longsub) - 1] = '\0';
		ok(jwt_issue(&ring, longsub, JWT_TYPE_ACCESS, 60, NOW, a, sizeof(a), &e) < 0,
		    "issue refuses a subject over %d bytes", JWT_SUB_MAX);
		longsub[JWT_SUB_MAX] = '\0';
		ok(jwt_issue(&ring, longsub, JWT_TYPE_ACCESS, 60, NOW, a, sizeof(a), &e) == 0 &&
		    verify_s(a, NULL, &c, &e) == 0 && strlen(c.sub) == JWT_SUB_MAX,
		    "a subject of exactly %d bytes round trips", JWT_SUB_MAX);
	}
}

static void
test_empty_ring(void)
{
	struct keys empty;
	char a[JWT_TOKEN_MAX + 1];
	struct err e;

	memset(&empty, 0, sizeof(empty));
	ok(jwt_issue(&empty, "alice", JWT_TYPE_ACCESS, 60, NOW, a, sizeof(a), &e) < 0,
	    "a ring without keys refuses to issue");
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 60, NOW, a, sizeof(a), &e) == 0 &&
	    jwt_verify(&empty, a, strlen(a), NULL, NOW, NULL, &e) < 0 && e.status == 401,
	    "a ring without keys refuses to verify");
	ok(keys_add(&empty, "k1", "", 0, 0, &e) < 0, "an empty key cannot enter a ring");
	ok(keys_add(&empty, "k1", secret1, 31, 0, &e) < 0, "a 31-byte key cannot enter a ring");
}

static void
test_alg(void)
{
	char hdr[128], sigless[JWT_TOKEN_MAX];
	int mask, i, all_none = 1;

	/* "none" in all 16 capitalisations, unsigned and with a real HMAC. */
	for (mask = 0; mask < 16; mask++) {
		char name[5] = "none";

		for (i = 0; i < 4; i++)
			if (mask & (1 << i))
				name[i] = (char)(name[i] - 'a' + 'A');
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"k1\"}", name);
		strcpy(sigless, craft(hdr, good_payload, NULL));
		if (!rejected(sigless)) {
			printf("# alg %s with an empty signature accepted\n", name);
			all_none = 0;
		}
		if (!rejected(craft(hdr, good_payload, secret1))) {
			printf("# alg %s with a valid HMAC accepted\n", name);
			all_none = 0;
		}
		/* Also without a kid, the classic form. */
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", name);
		if (!rejected(craft(hdr, good_payload, NULL)))
			all_none = 0;
	}
	ok(all_none, "alg none in all 16 capitalisations is rejected, signed or not");

	{
		static const char *const algs[] = {
			"\"HS512\"", "\"HS384\"", "\"RS256\"", "\"ES256\"", "\"PS256\"", "\"hs256\"",
			"\"HS256 \"", "\" HS256\"", "\"HS2560\"", "\"\"", "null", "256", "[\"HS256\"]",
			"{\"alg\":\"HS256\"}", "true",
		};
		size_t k;

		for (k = 0; k < sizeof(algs) / sizeof(algs[0]); k++) {
			snprintf(hdr, sizeof(hdr), "{\"alg\":%s,\"typ\":\"JWT\",\"kid\":\"k1\"}", algs[k]);
			ok(rejected(craft(hdr, good_payload, secret1)), "alg %s is rejected", algs[k]);
		}
	}
	ok(rejected(craft("{\"typ\":\"JWT\",\"kid\":\"k1\"}", good_payload, secret1)),
	    "a header without alg is rejected");
	ok(rejected(craft("{\"alg\":\"HS256\",\"alg\":\"none\",\"kid\":\"k1\"}", good_payload, secret1)),
	    "a header with alg twice is rejected");
	ok(rejected(craft("{\"alg\":\"none\",\"alg\":\"HS256\",\"kid\":\"k1\"}", good_payload, secret1)),
	    "a header with alg twice (HS256 last) is rejected");
	ok(accepted(craft(GOOD_HEADER, good_payload, secret1)), "the crafted baseline token is accepted");
	ok(accepted(craft("{\"alg\":\"HS256\",\"kid\":\"k1\"}", good_payload, secret1)),
	    "typ is optional");
	ok(rejected(craft("{\"alg\":\"HS256\",\"typ\":\"JWS\",\"kid\":\"k1\"}", good_payload, secret1)),
	    "typ other than JWT is rejected");
}

static void
test_key_headers(void)
{
	static const char *const extra[] = {
		"\"jku\":\"https://evil.example/jwks.json\"",
		"\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}",
		"\"x5u\":\"https://evil.example/cert.pem\"",
		"\"x5c\":[\"MIIB\"]",
		"\"x5t\":\"abc\"",
		"\"x5t#S256\":\"abc\"",
		"\"crit\":[\"exp\"]",
	};
	char hdr[256];
	size_t i;

	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\",%s}", extra[i]);
		ok(rejected(craft(hdr, good_payload, secret1)), "a header with %.*s is rejected",
		    (int)(strchr(extra[i], ':') - extra[i]), extra[i]);
	}
	ok(rejected(craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"nope\"}", good_payload, secret1)),
	    "unknown kid is rejected");
	ok(accepted(craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", good_payload, secret1)),
	    "no kid (a PyJWT token with the shared secret): the current key verifies it");
	ok(rejected(craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", good_payload, secret2)),
	    "no kid signed with another secret is rejected");
	ok(rejected(craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"\"}", good_payload, secret1)),
	    "an empty kid is rejected");
	ok(rejected(craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":1}", good_payload, secret1)),
	    "numeric kid is rejected");
	ok(rejected(craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"../../etc/passwd\"}", good_payload, secret1)),
	    "a path as kid is just an unknown kid");
	ok(rejected(craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"K1\"}", good_payload, secret1)),
	    "kid is case-sensitive");
}

static void
test_wrong_key_and_tampering(void)
{
	char a[JWT_TOKEN_MAX + 1], t[JWT_TOKEN_MAX + 1];
	struct keys other;
	struct err e;
	size_t i, n, bad = 0;

	memset(&other, 0, sizeof(other));
	if (keys_add(&other, "k1", secret2, strlen(secret2), 0, &e) < 0)
		abort();
	ok(jwt_issue(&other, "alice", JWT_TYPE_ACCESS, 3600, NOW, a, sizeof(a), &e) == 0, "issue with another key, same kid");
	ok(rejected(a), "a token signed with the wrong key is rejected");
	ok(verify_s(a, NULL, NULL, &e) < 0 && strcmp(e.msg, "invalid token: bad signature") == 0,
	    "with reason bad signature");

	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 3600, NOW, a, sizeof(a), &e) == 0, "issue a good token");
	n = strlen(a);
	/* Change every single character, one at a time, to another base64url one. */
	for (i = 0; i < n; i++) {
		if (a[i] == '.')
			continue;
		strcpy(t, a);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		if (!rejected(t)) {
			printf("# change at offset %zu accepted\n", i);
			bad++;
		}
	}
	is_int(bad, 0, "changing any one character of header, payload or signature is rejected");

	/* Flip one decoded byte in each segment and re-encode (no re-signing). */
	{
		const char *d1 = strchr(a, '.'), *d2 = strchr(d1 + 1, '.');
		char dec[JWT_TOKEN_MAX], enc[JWT_TOKEN_MAX];
		const char *segs[3] = { a, d1 + 1, d2 + 1 };
		size_t lens[3] = { (size_t)(d1 - a), (size_t)(d2 - d1 - 1), n - (size_t)(d2 + 1 - a) };
		int s;

		for (s = 0; s < 3; s++) {
			size_t dn, o = 0;
			int k;

			if (b64url_decode(segs[s], lens[s], dec, sizeof(dec), &dn, &e) < 0)
				abort();
			dec[dn / 2] ^= 0x01;
			for (k = 0; k < 3; k++) {
				if (k > 0)
					t[o++] = '.';
				if (k == s) {
					size_t el = b64url_encode(dec, dn, enc);

					memcpy(t + o, enc, el);
					o += el;
				} else {
					memcpy(t + o, segs[k], lens[k]);
					o += lens[k];
				}
			}
			t[o] = '\0';
			ok(rejected(t), "one flipped bit in the %s is rejected",
			    s == 0 ? "header" : s == 1 ? "payload" : "signature");
		}
	}
	/* A payload changed in a meaningful way and not re-signed. */
	{
		char p[256];

		snprintf(p, sizeof(p), "{\"sub\":\"admin\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld}",
		    (long long)NOW, (long long)NOW + 3600);
		craft(GOOD_HEADER, p, secret1);
		strcpy(t, tok);
		craft(GOOD_HEADER, good_payload, secret1);
		/* Splice the admin payload in front of alice's signature. */
		{
			char *sig_t = strrchr(t, '.'), *sig_g = strrchr(tok, '.');

			strcpy(sig_t, sig_g);
		}
		ok(rejected(t), "a swapped payload with another token's signature is rejected");
	}
	/* Signature of wrong length (one byte more / less). */
	{
		unsigned char mac[CRYPTO_SHA256_LEN + 1];
		char *dot;

		craft(GOOD_HEADER, good_payload, secret1);
		dot = strrchr(tok, '.');
		memset(mac, 0, sizeof(mac));
		b64url_encode(mac, sizeof(mac), dot + 1);
		ok(rejected(tok), "a 33-byte signature is rejected");
		b64url_encode(mac, sizeof(mac) - 2, dot + 1);
		ok(rejected(tok), "a 31-byte signature is rejected");
		dot[1] = '\0';
		ok(rejected(tok), "an empty signature is rejected");
	}
}

static void
test_times(void)
{
	char a[JWT_TOKEN_MAX + 1], p[256];
	struct err e;

	/* exp: leeway of 60 s. */
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 100, NOW - 161, a, sizeof(a), &e) == 0 &&
	    rejected(a), "expired 61 s ago (beyond the leeway) is rejected");
	ok(verify_s(a, NULL, NULL, &e) < 0 && strcmp(e.msg, "invalid token: expired") == 0,
	    "with reason expired");
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 100, NOW - 160, a, sizeof(a), &e) == 0 &&
	    accepted(a), "expired exactly 60 s ago is within the leeway");
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 100, NOW - 130, a, sizeof(a), &e) == 0 &&
	    accepted(a), "expired 30 s ago is within the leeway");
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 100, NOW - 100000, a, sizeof(a), &e) == 0 &&
	    rejected(a), "expired a day ago is rejected");

	/* iat in the future. */
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 100, NOW + 61, a, sizeof(a), &e) == 0 &&
	    rejected(a), "iat 61 s in the future is rejected");
	ok(verify_s(a, NULL, NULL, &e) < 0 && strcmp(e.msg, "invalid token: not yet valid") == 0,
	    "with reason not yet valid");
	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 100, NOW + 30, a, sizeof(a), &e) == 0 &&
	    accepted(a), "iat 30 s in the future is within the leeway");

	/* nbf. */
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld}",
	    (long long)NOW, (long long)NOW + 120, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "nbf 120 s in the future is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld}",
	    (long long)NOW, (long long)NOW + 30, (long long)NOW + 3600);
	ok(accepted(craft(GOOD_HEADER, p, secret1)), "nbf 30 s in the future is within the leeway");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"nbf\":\"0\",\"exp\":%lld}",
	    (long long)NOW, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "a string nbf is rejected");

	/* Required and typed claims. */
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld}", (long long)NOW);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "missing exp is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"exp\":\"%lld\"}",
	    (long long)NOW, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "string exp is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"exp\":null}", (long long)NOW);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "null exp is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"exp\":1e400}", (long long)NOW);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "exp 1e400 is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"exp\":99999999999999}", (long long)NOW);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "an absurdly far exp is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"exp\":%lld}", (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "missing iat is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":\"%lld\",\"exp\":%lld}",
	    (long long)NOW, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "string iat is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld}",
	    (long long)NOW, (long long)NOW - 10);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "iat after exp is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld.5,\"exp\":%lld.5}",
	    (long long)NOW, (long long)NOW + 3600);
	ok(accepted(craft(GOOD_HEADER, p, secret1)), "fractional iat and exp are numbers too");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld,\"exp\":%lld}",
	    (long long)NOW, (long long)NOW - 100000, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "a payload with exp twice is rejected");
	snprintf(p, sizeof(p), "{\"type\":\"access\",\"iat\":%lld,\"exp\":%lld}", (long long)NOW, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "missing sub is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld}", (long long)NOW, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "empty sub is rejected");
	snprintf(p, sizeof(p), "{\"sub\":42,\"type\":\"access\",\"iat\":%lld,\"exp\":%lld}", (long long)NOW, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "numeric sub is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"al\\u0000ice\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld}", (long long)NOW, (long long)NOW + 3600);
	ok(rejected(craft(GOOD_HEADER, p, secret1)), "a sub with an escaped NUL is rejected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"iat\":%lld,\"exp\":%lld}", (long long)NOW, (long long)NOW + 3600);
	ok(verify_s(craft(GOOD_HEADER, p, secret1), JWT_TYPE_ACCESS, NULL, &e) < 0,
	    "missing type is rejected when a type is expected");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"type\":\"Access\",\"iat\":%lld,\"exp\":%lld}", (long long)NOW, (long long)NOW + 3600);
	ok(verify_s(craft(GOOD_HEADER, p, secret1), JWT_TYPE_ACCESS, NULL, &e) < 0,
	    "type is compared exactly");
}

static void
test_shape(void)
{
	char a[JWT_TOKEN_MAX + 1], t[JWT_TOKEN_MAX + 16];
	char *big;
	struct err e;
	size_t n;

	ok(jwt_issue(&ring, "alice", JWT_TYPE_ACCESS, 3600, NOW, a, sizeof(a), &e) == 0, "issue a good token");
	n = strlen(a);

	snprintf(t, sizeof(t), "%s.%s", a, strrchr(a, '.') + 1);
	ok(rejected(t), "4 segments are rejected");
	snprintf(t, sizeof(t), "%s.", a);
	ok(rejected(t), "a trailing dot (4 segments) is rejected");
	memcpy(t, a, n + 1);
	*strrchr(t, '.') = '\0';
	ok(rejected(t), "2 segments are rejected");
	memcpy(t, a, (size_t)(strchr(a, '.') - a));
	t[strchr(a, '.') - a] = '\0';
	ok(rejected(t), "1 segment is rejected");
	ok(rejected(""), "the empty string is rejected");
	ok(rejected(".."), "three empty segments are rejected");
	ok(rejected("invalid-token"), "the guide's \"invalid-token\" is rejected");
	ok(jwt_verify(&ring, a, n - 1, NULL, NOW, NULL, &e) < 0, "a token cut short by length is rejected");

	/* Padding: '=' is not part of a JWT segment. */
	snprintf(t, sizeof(t), "%s=", a);
	ok(rejected(t), "a padded signature is rejected");
	{
		/* A header whose encoding is not a multiple of 4, padded. */
		const char *hdr = "{\"alg\":\"HS256\",\"kid\":\"k1\"}";  /* 26 bytes -> 35 chars */
		char h64[64], p64[256], full[512];
		unsigned char mac[CRYPTO_SHA256_LEN];
		char m64[64];
		size_t o;

		b64url_encode(hdr, strlen(hdr), h64);
		strcat(h64, "=");
		b64url_encode(good_payload, strlen(good_payload), p64);
		o = (size_t)snprintf(full, sizeof(full), "%s.%s", h64, p64);
		if (crypto_hmac_sha256(secret1, strlen(secret1), full, o, mac, NULL) < 0)
			abort();
		b64url_encode(mac, sizeof(mac), m64);
		snprintf(full + o, sizeof(full) - o, ".%s", m64);
		ok(strlen(h64) % 4 == 0 && rejected(full),
		    "a padded header is rejected even when the HMAC covers the padding");
	}
	/* Standard-alphabet characters. */
	memcpy(t, a, n + 1);
	t[1] = '+';
	ok(rejected(t), "'+' in a segment is rejected");
	memcpy(t, a, n + 1);
	t[1] = '/';
	ok(rejected(t), "'/' in a segment is rejected");
	memcpy(t, a, n + 1);
	t[1] = ' ';
	ok(rejected(t), "a space in a segment is rejected");
	/* Embedded NUL with an explicit length. */
	memcpy(t, a, n + 1);
	t[5] = '\0';
	ok(jwt_verify(&ring, t, n, NULL, NOW, NULL, &e) < 0, "an embedded NUL is rejected");

	/* Size limit: a valid token near 8 KiB passes, one over 8 KiB does not. */
	{
		char p[JWT_TOKEN_MAX];
		size_t pad;
		int last_ok = -1;

		/* Find padding sizes just under and over the limit. */
		for (pad = 5900; pad < 6300; pad += 1) {
			int len = snprintf(p, sizeof(p),
			    "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld,\"pad\":\"%*s\"}",
			    (long long)NOW, (long long)NOW + 3600, (int)pad, "");
			size_t tl;

			(void)len;
			craft(GOOD_HEADER, p, secret1);
			tl = strlen(tok);
			if (tl <= JWT_TOKEN_MAX)
				last_ok = accepted(tok);
			else {
				ok(last_ok == 1, "a valid token of up to %d bytes is accepted", JWT_TOKEN_MAX);
				ok(rejected(tok), "a valid token of %zu bytes is rejected", tl);
				break;
			}
		}
	}
	big = malloc(64 * 1024 + 1);
	memset(big, 'A', 64 * 1024);
	big[100] = '.';
	big[200] = '.';
	big[64 * 1024] = '\0';
	ok(rejected(big), "a 64 KiB token is rejected");
	memcpy(big, a, n);       /* a valid token followed by junk, 64 KiB */
	ok(jwt_verify(&ring, big, 64 * 1024, NULL, NOW, NULL, &e) < 0 &&
	    strstr(e.msg, "longer than") != NULL, "a 64 KiB token is rejected by size first");
	free(big);

	/* JSON. */
	ok(rejected(craft(GOOD_HEADER, "not json", secret1)), "a non-JSON payload is rejected");
	ok(rejected(craft(GOOD_HEADER, "[1,2,3]", secret1)), "an array payload is rejected");
	ok(rejected(craft(GOOD_HEADER, "\"alice\"", secret1)), "a string payload is rejected");
	ok(rejected(craft(GOOD_HEADER, "", secret1)), "an empty payload is rejected");
	{
		char p[512];

		snprintf(p, sizeof(p), "%s x", good_payload);
		ok(rejected(craft(GOOD_HEADER, p, secret1)), "trailing bytes after the payload are rejected");
		snprintf(p, sizeof(p), "%s\n", good_payload);
		ok(accepted(craft(GOOD_HEADER, p, secret1)), "trailing whitespace after the payload is JSON");
	}
	ok(rejected(craft("not json", good_payload, secret1)), "a non-JSON header is rejected");
	ok(rejected(craft("[\"HS256\"]", good_payload, secret1)), "an array header is rejected");
	ok(rejected(craft("{\"alg\":\"HS256\",\"kid\":\"k1\"} {}", good_payload, secret1)),
	    "a header with two documents is rejected");
	{
		char p[512];

		snprintf(p, sizeof(p), "{\"sub\":\"\xff\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld}",
		    (long long)NOW, (long long)NOW + 3600);
		ok(rejected(craft(GOOD_HEADER, p, secret1)), "invalid UTF-8 in the payload is rejected");
	}
}

int
main(void)
{
	struct err e;

	if (keys_add(&ring, "k1", secret1, strlen(secret1), 0, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		return 1;
	}
	snprintf(good_payload, sizeof(good_payload),
	    "{\"sub\":\"alice\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld}",
	    (long long)NOW, (long long)NOW + 3600);
	test_issue_verify();
	test_empty_ring();
	test_alg();
	test_key_headers();
	test_wrong_key_and_tampering();
	test_times();
	test_shape();
	return tap_done();
}
