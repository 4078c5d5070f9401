/*
 * test_crypto.c -- SHA-256, HMAC, constant-time comparison, random bytes and
 * scrypt password hashes (round trip, wrong password, altered stored hash,
 * malformed stored hashes, and the timing of the unknown-user dummy).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/crypto.h"
#include "tests/unit/tap.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
test_digests(void)
{
	unsigned char mac[CRYPTO_SHA256_LEN];
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	struct err e;
	size_t i;

	ok(crypto_sha256_hex("abc", 3, hex, &e) == 0, "sha256 of abc");
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "sha256 of abc matches FIPS 180-2");
	ok(crypto_sha256_hex("", 0, hex, &e) == 0, "sha256 of nothing");
	is_str(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "sha256 of the empty string");

	/* RFC 4231 test case 2. */
	ok(crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac, &e) == 0,
	    "hmac-sha256 computes");
	for (i = 0; i < sizeof(mac); i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	is_str(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	    "hmac-sha256 matches RFC 4231 case 2");
	ok(crypto_hmac_sha256("", 0, "x", 1, mac, &e) < 0, "hmac refuses an empty key");
}

static void
test_compare_random(void)
{
	unsigned char a[32], b[32], zero[32] = { 0 };
	struct err e;

	ok(crypto_memeq("abcd", "abcd", 4), "memeq equal");
	ok(!crypto_memeq("abcd", "abce", 4), "memeq last byte differs");
	ok(!crypto_memeq("xbcd", "abcd", 4), "memeq first byte differs");
	ok(crypto_streq("secret", 6, "secret", 6), "streq equal");
	ok(!crypto_streq("secret", 6, "secreT", 6), "streq differs");
	ok(!crypto_streq("secret", 6, "secret!", 7), "streq prefix is not equal");
	ok(!crypto_streq("", 0, "a", 1), "streq empty vs one byte");
	ok(crypto_streq("", 0, "", 0), "streq empty vs empty");

	ok(crypto_random(a, sizeof(a), &e) == 0 && crypto_random(b, sizeof(b), &e) == 0,
	    "random bytes");
	ok(memcmp(a, b, sizeof(a)) != 0, "two random draws differ");
	ok(memcmp(a, zero, sizeof(a)) != 0, "random draw is not all zero");
}

/* Replace the first occurrence of `from` in s by `to` (same length). */
static int
patch(char *s, const char *from, const char *to)
{
	char *p = strstr(s, from);

	if (p == NULL || strlen(from) != strlen(to))
		return -1;
	memcpy(p, to, strlen(to));
	return 0;
}

static void
test_passwords(void)
{
	char h1[CRYPTO_PASSWORD_HASH_MAX], h2[CRYPTO_PASSWORD_HASH_MAX], t[CRYPTO_PASSWORD_HASH_MAX];
	char small[40];
	struct err e;
	char *last;

	ok(crypto_password_hash("correct horse", h1, sizeof(h1), &e) == 0, "hash a password");
	ok(strncmp(h1, "$scrypt$ln=15,r=8,p=1$", 22) == 0, "hash is self-describing: %s", h1);
	ok(crypto_password_hash("correct horse", h2, sizeof(h2), &e) == 0, "hash it again");
	ok(strcmp(h1, h2) != 0, "two hashes of one password differ (random salt)");
	ok(crypto_password_verify("correct horse", h1, &e) == 0, "round trip verifies");
	ok(crypto_password_verify("correct horse", h2, &e) == 0, "second hash verifies");

	ok(crypto_password_verify("correct horsE", h1, &e) < 0, "wrong password rejected");
	is_int(e.status, 401, "wrong password is status 401");
	is_str(e.msg, "password does not match", "wrong password message");
	ok(crypto_password_verify("", h1, &e) < 0, "empty password rejected");
	ok(crypto_password_verify("correct horse ", h1, &e) < 0, "password with extra byte rejected");

	/* Changing any cost parameter changes the derived key: rejected. */
	strcpy(t, h1);
	ok(patch(t, "ln=15", "ln=14") == 0 && crypto_password_verify("correct horse", t, &e) < 0
	    && e.status == 401, "stored hash with ln changed is rejected");
	strcpy(t, h1);
	ok(patch(t, "r=8", "r=7") == 0 && crypto_password_verify("correct horse", t, &e) < 0
	    && e.status == 401, "stored hash with r changed is rejected");
	strcpy(t, h1);
	ok(patch(t, "p=1", "p=2") == 0 && crypto_password_verify("correct horse", t, &e) < 0
	    && e.status == 401, "stored hash with p changed is rejected");
	/* Flip a character of the stored key (keeping it valid base64). */
	strcpy(t, h1);
	last = strrchr(t, '$') + 1;
	last[0] = last[0] == 'A' ? 'B' : 'A';
	ok(crypto_password_verify("correct horse", t, &e) < 0 && e.status == 401,
	    "stored hash with one key character changed is rejected");
	/* And of the salt. */
	strcpy(t, h1);
	last = strchr(t + 22, '$');
	t[22] = t[22] == 'A' ? 'B' : 'A';
	ok(last != NULL && crypto_password_verify("correct horse", t, &e) < 0 && e.status == 401,
	    "stored hash with one salt character changed is rejected");

	/* Unusable stored hashes are errors (500), never a match. */
	{
		static const char *const bad[] = {
			"",
			"correct horse",
			"$pbkdf2-sha256$i=600000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==",
			"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$",
			"$scrypt$ln=15,r=8$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=015,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=5,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=99,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=20,r=32,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=15,r=-8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=15,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
			"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ",
		};
		size_t i;
		int all = 1;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (crypto_password_verify("correct horse", bad[i], &e) == 0 || e.status != 500) {
				all = 0;
				printf("# accepted or wrong status for \"%s\": %s\n", bad[i], e.msg);
			}
		}
		ok(all, "%zu malformed stored hashes are rejected with status 500",
		    sizeof(bad) / sizeof(bad[0]));
	}

	ok(crypto_password_hash("", t, sizeof(t), &e) == 0 && crypto_password_verify("", t, &e) == 0,
	    "the empty password hashes and verifies");
	ok(crypto_password_verify("x", t, &e) < 0, "and only it");
	ok(crypto_password_hash("p\xc3\xa4ssw\xc3\xb6rd:with:colons", t, sizeof(t), &e) == 0 &&
	    crypto_password_verify("p\xc3\xa4ssw\xc3\xb6rd:with:colons", t, &e) == 0,
	    "a UTF-8 password with colons round trips");
	ok(crypto_password_hash("pw", small, sizeof(small), &e) < 0, "too small an output buffer is refused");
	is_str(small, "", "and leaves an empty string");
}

/*
 * The dummy verification for unknown users must cost what a real (failing)
 * verification costs.  Measured as the fastest of interleaved runs, which is
 * robust against a loaded machine: at least 5 runs, and more (up to 40) while
 * the two minimums still disagree, since a parallel test run or a sanitizer
 * build can slow any single run twofold.  The bound is loose on purpose.
 */
static void
test_dummy_timing(void)
{
	char h[CRYPTO_PASSWORD_HASH_MAX];
	double real_min = 1e9, dummy_min = 1e9, t0, dt, ratio = 0;
	struct err e;
	int i;

	if (crypto_password_hash("the real password", h, sizeof(h), &e) < 0) {
		ok(0, "hash for timing: %s", e.msg);
		return;
	}
	for (i = 0; i < 40; i++) {
		t0 = now_s();
		if (crypto_password_verify("a wrong password", h, &e) == 0)
			ok(0, "wrong password verified");
		dt = now_s() - t0;
		if (dt < real_min)
			real_min = dt;
		t0 = now_s();
		crypto_password_dummy_verify("a wrong password");
		dt = now_s() - t0;
		if (dt < dummy_min)
			dummy_min = dt;
		ratio = dummy_min / real_min;
		if (i >= 4 && ratio > 0.67 && ratio < 1.5)
			break;
	}
	printf("# real verify %.1f ms, dummy verify %.1f ms (fastest of %d)\n",
	    real_min * 1e3, dummy_min * 1e3, i < 40 ? i + 1 : 40);
	ok(real_min > 0.005, "a verification is deliberately slow (%.1f ms)", real_min * 1e3);
	ok(ratio > 0.67 && ratio < 1.5, "dummy verify costs about a real verify (ratio %.2f)", ratio);
}

int
main(void)
{
	test_digests();
	test_compare_random();
	test_passwords();
	test_dummy_timing();
	return tap_done();
}
