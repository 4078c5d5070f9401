/*
 * b64.c -- strict base64 and base64url codecs.
 *
 * Owns the two alphabets and their reverse mapping.  It never allocates,
 * never logs (its inputs are often credentials), and never accepts more than
 * one encoding of the same bytes: no whitespace, no stray padding, no
 * non-zero trailing bits.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <string.h>

#include "lib/b64.h"

static const char b64_std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#define B64_INVALID 0xff

/* The value (0..63) of character c in the given alphabet, or B64_INVALID. */
static unsigned char
b64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return (unsigned char)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (unsigned char)(c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (unsigned char)(c - '0' + 52);
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return B64_INVALID;
}

size_t
b64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

size_t
b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t
b64_decoded_max(size_t n)
{
	return n / 4 * 3 + 3;
}

static size_t
b64_encode_with(const unsigned char *in, size_t n, char *out,
    const char *alphabet, int pad)
{
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

size_t
b64_encode(const void *in, size_t n, char *out)
{
	return b64_encode_with(in, n, out, b64_std_alphabet, 1);
}

size_t
b64url_encode(const void *in, size_t n, char *out)
{
	return b64_encode_with(in, n, out, b64_url_alphabet, 0);
}

/*
 * Decode `n` alphabet characters (padding already stripped by the caller).
 * n % 4 must not be 1; the bits of the last character that do not make a
 * whole byte must be zero.
 */
static int
b64_decode_core(int url, const char *in, size_t n,
    unsigned char *out, size_t outcap, size_t *outlen, struct err *e)
{
	size_t i, o = 0, rem = n % 4, need;
	unsigned char c[4];
	uint32_t v;
	int k;

	if (rem == 1)
		return err_set(e, 400, "invalid base64: truncated input");
	need = n / 4 * 3 + (rem == 0 ? 0 : rem - 1);
	if (need > outcap)
		return err_set(e, 400, "invalid base64: decoded data too long");

	for (i = 0; i < n; i += 4) {
		size_t len = n - i < 4 ? n - i : 4;

		for (k = 0; k < (int)len; k++) {
			c[k] = b64_value((unsigned char)in[i + k], url);
			if (c[k] == B64_INVALID)
				return err_set(e, 400,
				    "invalid base64: unexpected character at offset %zu",
				    i + (size_t)k);
		}
		if (len == 4) {
			v = (uint32_t)c[0] << 18 | (uint32_t)c[1] << 12 |
			    (uint32_t)c[2] << 6 | c[3];
			out[o++] = (unsigned char)(v >> 16);
			out[o++] = (unsigned char)(v >> 8);
			out[o++] = (unsigned char)v;
		} else if (len == 3) {
			if (c[2] & 0x03)
				return err_set(e, 400,
				    "invalid base64: non-zero trailing bits");
			v = (uint32_t)c[0] << 18 | (uint32_t)c[1] << 12 |
			    (uint32_t)c[2] << 6;
			out[o++] = (unsigned char)(v >> 16);
			out[o++] = (unsigned char)(v >> 8);
		} else {
			if (c[1] & 0x0f)
				return err_set(e, 400,
				    "invalid base64: non-zero trailing bits");
			v = (uint32_t)c[0] << 18 | (uint32_t)c[1] << 12;
			out[o++] = (unsigned char)(v >> 16);
		}
	}
	*outlen = o;
	return 0;
}

int
b64_decode(const char *in, size_t n, void *out, size_t outcap,
    size_t *outlen, struct err *e)
{
	size_t body = n;

	if (n % 4 != 0)
		return err_set(e, 400,
		    "invalid base64: length is not a multiple of 4");
	/*
	 * At most two '=' and only at the very end; any other '=' is outside
	 * the alphabet and the core rejects it.
	 */
	if (body > 0 && in[body - 1] == '=')
		body--;
	if (body > 0 && in[body - 1] == '=')
		body--;
	return b64_decode_core(0, in, body, out, outcap, outlen, e);
}

int
b64url_decode(const char *in, size_t n, void *out, size_t outcap,
    size_t *outlen, struct err *e)
{
	return b64_decode_core(1, in, n, out, outcap, outlen, e);
}
