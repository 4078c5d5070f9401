/*
 * test_b64.c -- the strict base64 and base64url codecs: RFC 4648 vectors,
 * round trips, and every kind of non-canonical input they must refuse.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "lib/b64.h"
#include "tests/unit/tap.h"

/* Decode a NUL-terminated string; returns decoded length or -1. */
static long
dec(int url, const char *s, char *out, size_t cap)
{
	struct err e;
	size_t n = 0;
	int r;

	r = url ? b64url_decode(s, strlen(s), out, cap, &n, &e)
	    : b64_decode(s, strlen(s), out, cap, &n, &e);
	return r < 0 ? -1 : (long)n;
}

/* s with control and non-ASCII bytes as \xNN, for test names (one line). */
static const char *
show(const char *s)
{
	static char buf[4][128];
	static int k;
	char *o;

	k = (k + 1) % 4;
	o = buf[k];
	for (; *s != '\0' && o < buf[k] + sizeof(buf[k]) - 5; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	return buf[k];
}

static void
test_vectors(void)
{
	static const struct { const char *plain, *std, *url; } v[] = {
		{ "", "", "" },
		{ "f", "Zg==", "Zg" },
		{ "fo", "Zm8=", "Zm8" },
		{ "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg==", "Zm9vYg" },
		{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	};
	char out[64], dbuf[64];
	size_t i, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = b64_encode(v[i].plain, strlen(v[i].plain), out);
		is_str(out, v[i].std, "std encode \"%s\"", v[i].plain);
		is_int(n, b64_encoded_len(strlen(v[i].plain)), "std encoded length \"%s\"", v[i].plain);
		n = b64url_encode(v[i].plain, strlen(v[i].plain), out);
		is_str(out, v[i].url, "url encode \"%s\"", v[i].plain);
		is_int(n, b64url_encoded_len(strlen(v[i].plain)), "url encoded length \"%s\"", v[i].plain);
		is_int(dec(0, v[i].std, dbuf, sizeof(dbuf)), strlen(v[i].plain), "std decode \"%s\"", v[i].std);
		ok(memcmp(dbuf, v[i].plain, strlen(v[i].plain)) == 0, "std decode bytes \"%s\"", v[i].std);
		is_int(dec(1, v[i].url, dbuf, sizeof(dbuf)), strlen(v[i].plain), "url decode \"%s\"", v[i].url);
		ok(memcmp(dbuf, v[i].plain, strlen(v[i].plain)) == 0, "url decode bytes \"%s\"", v[i].url);
	}
	/* The two alphabets differ in exactly two characters. */
	b64_encode("\xfb\xff\xbf", 3, out);
	is_str(out, "+/+/", "std alphabet uses + and /");
	b64url_encode("\xfb\xff\xbf", 3, out);
	is_str(out, "-_-_", "url alphabet uses - and _");
}

static void
test_round_trip(void)
{
	unsigned char in[300], back[300];
	char enc[512];
	size_t len, n;
	struct err e;
	int bad_std = 0, bad_url = 0;

	srand(12345);
	for (len = 0; len < sizeof(in); len++) {
		size_t i;

		for (i = 0; i < len; i++)
			in[i] = (unsigned char)rand();
		b64_encode(in, len, enc);
		if (b64_decode(enc, strlen(enc), back, sizeof(back), &n, &e) < 0 ||
		    n != len || memcmp(in, back, len) != 0)
			bad_std++;
		b64url_encode(in, len, enc);
		if (b64url_decode(enc, strlen(enc), back, sizeof(back), &n, &e) < 0 ||
		    n != len || memcmp(in, back, len) != 0)
			bad_url++;
	}
	is_int(bad_std, 0, "std round trip of 0..299 random bytes");
	is_int(bad_url, 0, "url round trip of 0..299 random bytes");
}

static void
test_rejects(void)
{
	static const char *const std_bad[] = {
		"Zg",           /* padding required */
		"Zg=",          /* length not a multiple of 4 */
		"Zg===",
		"Z===",
		"====",
		"=Zg=",         /* padding in front */
		"Z=g=",         /* padding inside */
		"Zg==Zg==",     /* padding in the middle */
		"Zh==",         /* non-zero trailing bits (canonical: Zg==) */
		"Zm9=",         /* non-zero trailing bits (canonical: Zm8=) */
		"Zm9v YmFy",    /* whitespace */
		"Zm9v\nYmFy",
		" Zm9v",
		"Zm9v-_A=",     /* url alphabet in std */
		"Zm9v*mFy",
		"Zm9vYmF\x80",
	};
	static const char *const url_bad[] = {
		"Zg==",         /* padding is not base64url-JWT */
		"Zg=",
		"Zm8=",
		"Z",            /* 4k+1 characters */
		"Zm9vY",
		"Zh",           /* non-zero trailing bits */
		"Zm9",
		"Zm9v+/",       /* std alphabet in url */
		"Zm9v YmFy",
		"Zm9v.YmFy",
	};
	char out[64];
	size_t i, n;
	struct err e;

	for (i = 0; i < sizeof(std_bad) / sizeof(std_bad[0]); i++)
		is_int(dec(0, std_bad[i], out, sizeof(out)), -1, "std rejects \"%s\"", show(std_bad[i]));
	for (i = 0; i < sizeof(url_bad) / sizeof(url_bad[0]); i++)
		is_int(dec(1, url_bad[i], out, sizeof(out)), -1, "url rejects \"%s\"", show(url_bad[i]));

	/* An embedded NUL is outside the alphabet, even with an explicit length. */
	ok(b64_decode("Zm\0v", 4, out, sizeof(out), &n, &e) < 0, "std rejects an embedded NUL");
	ok(b64url_decode("Zm\0v", 4, out, sizeof(out), &n, &e) < 0, "url rejects an embedded NUL");
	is_int(e.status, 400, "decoding errors carry status 400");

	/* Output capacity is honoured exactly. */
	ok(b64_decode("Zm9vYmFy", 8, out, 6, &n, &e) == 0 && n == 6, "std decodes into an exact-size buffer");
	ok(b64_decode("Zm9vYmFy", 8, out, 5, &n, &e) < 0, "std refuses a buffer one byte short");
	ok(b64url_decode("Zm9vYmE", 7, out, 5, &n, &e) == 0 && n == 5, "url decodes into an exact-size buffer");
	ok(b64url_decode("Zm9vYmE", 7, out, 4, &n, &e) < 0, "url refuses a buffer one byte short");
	ok(b64_decoded_max(8) >= 6 && b64_decoded_max(7) >= 5, "b64_decoded_max is an upper bound");
}

int
main(void)
{
	test_vectors();
	test_round_trip();
	test_rejects();
	return tap_done();
}
