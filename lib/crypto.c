/*
 * crypto.c -- random bytes, SHA-256, HMAC, constant-time comparison and
 * scrypt password hashes, on OpenSSL 3.
 *
 * Owns the stored password hash format (see crypto.h) and its bounds.  It
 * never logs, never puts a password, key or derived key into an error
 * message, and wipes derived keys from the stack before returning.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "lib/b64.h"
#include "lib/crypto.h"
#include "lib/hex.h"

#define CRYPTO_SALT_LEN      16
#define CRYPTO_DK_LEN        32
#define CRYPTO_SALT_MIN      8
#define CRYPTO_SALT_MAX      64
#define CRYPTO_DK_MIN        16
#define CRYPTO_DK_MAX        64
#define CRYPTO_SCRYPT_LN_MIN 10
#define CRYPTO_SCRYPT_LN_MAX 20
#define CRYPTO_SCRYPT_R_MAX  32
#define CRYPTO_SCRYPT_P_MAX  16
/* scrypt needs about 128 * r * N bytes; refuse stored hashes asking more. */
#define CRYPTO_SCRYPT_MEM_MAX ((uint64_t)256 * 1024 * 1024)

static const char crypto_scrypt_prefix[] = "$scrypt$";

/* The first queued OpenSSL error as text (never contains key material). */
static const char *
crypto_ssl_error(char *buf, size_t len)
{
	unsigned long code = ERR_get_error();

	ERR_clear_error();
	if (code == 0)
		return "unknown error";
	ERR_error_string_n(code, buf, len);
	return buf;
}

int
crypto_random(void *buf, size_t n, struct err *e)
{
	char ebuf[256];

	if (n > INT32_MAX)
		return err_set(e, 500, "could not generate random bytes: request too large");
	if (RAND_bytes(buf, (int)n) != 1)
		return err_set(e, 500, "could not generate random bytes: %s",
		    crypto_ssl_error(ebuf, sizeof(ebuf)));
	return 0;
}

int
crypto_sha256(const void *p, size_t n, unsigned char out[CRYPTO_SHA256_LEN],
    struct err *e)
{
	char ebuf[256];

	if (EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL) != 1)
		return err_set(e, 500, "could not compute sha-256: %s",
		    crypto_ssl_error(ebuf, sizeof(ebuf)));
	return 0;
}

int
crypto_sha256_hex(const void *p, size_t n,
    char out[CRYPTO_SHA256_HEX_LEN + 1], struct err *e)
{
	unsigned char md[CRYPTO_SHA256_LEN];

	if (crypto_sha256(p, n, md, e) < 0)
		return -1;
	hex_encode(md, sizeof(md), out);
	return 0;
}

int
crypto_hmac_sha256(const void *key, size_t keylen, const void *msg,
    size_t msglen, unsigned char out[CRYPTO_SHA256_LEN], struct err *e)
{
	unsigned int outlen = 0;
	char ebuf[256];

	if (keylen == 0 || keylen > INT32_MAX)
		return err_set(e, 500, "could not compute hmac: invalid key length");
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) == NULL
	    || outlen != CRYPTO_SHA256_LEN)
		return err_set(e, 500, "could not compute hmac: %s",
		    crypto_ssl_error(ebuf, sizeof(ebuf)));
	return 0;
}

int
crypto_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int
crypto_streq(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char da[CRYPTO_SHA256_LEN], db[CRYPTO_SHA256_LEN];
	int same;

	/*
	 * Comparing digests makes the comparison time independent of the
	 * contents and of the length of the common prefix; both digests are
	 * always computed so a length mismatch does not return early either.
	 */
	if (crypto_sha256(a, alen, da, NULL) < 0 ||
	    crypto_sha256(b, blen, db, NULL) < 0)
		return 0;
	same = CRYPTO_memcmp(da, db, sizeof(da)) == 0;
	return same & (alen == blen);
}

void
crypto_cleanse(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

/* scrypt(pw, salt) -> dk with N = 2^ln. */
static int
crypto_scrypt(const char *pw, const unsigned char *salt, size_t saltlen,
    unsigned ln, unsigned r, unsigned p, unsigned char *dk, size_t dklen,
    struct err *e)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[7], *q = params;
	uint64_t n = (uint64_t)1 << ln;
	uint64_t maxmem = CRYPTO_SCRYPT_MEM_MAX + 1024 * 1024;
	uint32_t r32 = r, p32 = p;
	char ebuf[256];
	int rc = -1;

	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL);
	if (kdf == NULL) {
		err_set(e, 500, "could not fetch scrypt: %s",
		    crypto_ssl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	kctx = EVP_KDF_CTX_new(kdf);
	if (kctx == NULL) {
		err_set(e, 500, "could not create scrypt context: %s",
		    crypto_ssl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	/* OSSL_PARAM wants non-const pointers; OpenSSL only reads them. */
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    (void *)(uintptr_t)pw, strlen(pw));
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)(uintptr_t)salt, saltlen);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, dk, dklen, params) != 1) {
		err_set(e, 500, "could not derive scrypt key: %s",
		    crypto_ssl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	rc = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

int
crypto_password_hash(const char *pw, char *out, size_t outlen, struct err *e)
{
	unsigned char salt[CRYPTO_SALT_LEN], dk[CRYPTO_DK_LEN];
	char salt64[CRYPTO_SALT_LEN * 2], dk64[CRYPTO_DK_LEN * 2];
	int n, rc = -1;

	if (crypto_random(salt, sizeof(salt), e) < 0)
		return -1;
	if (crypto_scrypt(pw, salt, sizeof(salt), CRYPTO_SCRYPT_LN,
	    CRYPTO_SCRYPT_R, CRYPTO_SCRYPT_P, dk, sizeof(dk), e) < 0)
		goto out;
	b64_encode(salt, sizeof(salt), salt64);
	b64_encode(dk, sizeof(dk), dk64);
	n = snprintf(out, outlen, "%sln=%d,r=%d,p=%d$%s$%s",
	    crypto_scrypt_prefix, CRYPTO_SCRYPT_LN, CRYPTO_SCRYPT_R,
	    CRYPTO_SCRYPT_P, salt64, dk64);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen > 0)
			out[0] = '\0';
		err_set(e, 500, "could not hash password: output buffer too small");
		goto out;
	}
	rc = 0;
out:
	crypto_cleanse(dk, sizeof(dk));
	crypto_cleanse(dk64, sizeof(dk64));
	return rc;
}

/*
 * Parse "<name>=<decimal>" at *pp, the value in [min, max], no sign and no
 * leading zero.  Advances *pp past the digits.
 */
static int
crypto_parse_param(const char **pp, const char *name, unsigned min,
    unsigned max, unsigned *out)
{
	const char *p = *pp;
	size_t nl = strlen(name);
	unsigned v = 0;
	int digits = 0;

	if (strncmp(p, name, nl) != 0 || p[nl] != '=')
		return -1;
	p += nl + 1;
	if (*p == '0')
		return -1;
	while (*p >= '0' && *p <= '9') {
		if (++digits > 4)
			return -1;
		v = v * 10 + (unsigned)(*p++ - '0');
	}
	if (digits == 0 || v < min || v > max)
		return -1;
	*out = v;
	*pp = p;
	return 0;
}

int
crypto_password_verify(const char *pw, const char *stored, struct err *e)
{
	unsigned char salt[CRYPTO_SALT_MAX], want[CRYPTO_DK_MAX], got[CRYPTO_DK_MAX];
	size_t saltlen, wantlen;
	unsigned ln, r, p;
	const char *s = stored, *dollar;
	int rc = -1;

	if (strncmp(s, crypto_scrypt_prefix, sizeof(crypto_scrypt_prefix) - 1) != 0)
		return err_set(e, 500, "invalid password hash: unknown scheme");
	s += sizeof(crypto_scrypt_prefix) - 1;
	if (crypto_parse_param(&s, "ln", CRYPTO_SCRYPT_LN_MIN, CRYPTO_SCRYPT_LN_MAX, &ln) < 0
	    || *s++ != ','
	    || crypto_parse_param(&s, "r", 1, CRYPTO_SCRYPT_R_MAX, &r) < 0
	    || *s++ != ','
	    || crypto_parse_param(&s, "p", 1, CRYPTO_SCRYPT_P_MAX, &p) < 0
	    || *s++ != '$')
		return err_set(e, 500, "invalid password hash: bad parameters");
	if ((uint64_t)128 * r * ((uint64_t)1 << ln) > CRYPTO_SCRYPT_MEM_MAX)
		return err_set(e, 500, "invalid password hash: parameters need too much memory");
	dollar = strchr(s, '$');
	if (dollar == NULL)
		return err_set(e, 500, "invalid password hash: missing hash");
	if (b64_decode(s, (size_t)(dollar - s), salt, sizeof(salt), &saltlen, NULL) < 0
	    || saltlen < CRYPTO_SALT_MIN)
		return err_set(e, 500, "invalid password hash: bad salt");
	s = dollar + 1;
	if (b64_decode(s, strlen(s), want, sizeof(want), &wantlen, NULL) < 0
	    || wantlen < CRYPTO_DK_MIN)
		return err_set(e, 500, "invalid password hash: bad derived key");

	if (crypto_scrypt(pw, salt, saltlen, ln, r, p, got, wantlen, e) < 0)
		goto out;
	if (CRYPTO_memcmp(got, want, wantlen) != 0) {
		err_set(e, 401, "password does not match");
		goto out;
	}
	rc = 0;
out:
	crypto_cleanse(got, sizeof(got));
	crypto_cleanse(want, sizeof(want));
	return rc;
}

void
crypto_password_dummy_verify(const char *pw)
{
	/*
	 * A well-formed hash with the default parameters, an all-zero salt and
	 * an all-zero key: verifying against it walks exactly the path of a
	 * real verification (parse, decode, derive, compare) and never matches
	 * in practice.  Built from the same constants so a change of the
	 * default cost changes the dummy too.
	 */
	char dummy[CRYPTO_PASSWORD_HASH_MAX];
	unsigned char zero[CRYPTO_DK_LEN] = { 0 };
	char salt64[CRYPTO_SALT_LEN * 2], dk64[CRYPTO_DK_LEN * 2];

	b64_encode(zero, CRYPTO_SALT_LEN, salt64);
	b64_encode(zero, CRYPTO_DK_LEN, dk64);
	snprintf(dummy, sizeof(dummy), "%sln=%d,r=%d,p=%d$%s$%s",
	    crypto_scrypt_prefix, CRYPTO_SCRYPT_LN, CRYPTO_SCRYPT_R,
	    CRYPTO_SCRYPT_P, salt64, dk64);
	(void)!crypto_password_verify(pw, dummy, NULL);
}
