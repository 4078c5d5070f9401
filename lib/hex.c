/*
 * hex.c -- hex digits, hex strings and the percent-escape (hex.h).
 *
 * It owns the one table of what a hex digit is, for every decoder of the
 * project (chunk sizes, percent-encoding, key files).  It never allocates
 * and never decides what a decoded byte may be: NUL or '/' policies belong
 * to the callers.
 */
#include "autoconfig.h"

#include <stddef.h>

#include "lib/hex.h"

int
hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *s, size_t n, unsigned char *out, size_t cap,
    size_t *outlen)
{
	size_t i;

	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (i = 0; i < n; i += 2) {
		int hi = hex_digit((unsigned char)s[i]);
		int lo = hex_digit((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	*outlen = n / 2;
	return 0;
}

void
hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int
hex_percent_octet(const char *s, size_t n, size_t *i)
{
	size_t k = *i;
	int hi, lo;

	if (s[k] != '%') {
		*i = k + 1;
		return (unsigned char)s[k];
	}
	if (n - k < 3 || (hi = hex_digit((unsigned char)s[k + 1])) < 0 ||
	    (lo = hex_digit((unsigned char)s[k + 2])) < 0)
		return -1;
	*i = k + 3;
	return hi << 4 | lo;
}
