/*
 * test_hex.c -- unit tests of lib/hex.c: hex digits in both cases, hex
 * strings (odd length, too long, bad digit), the encoder and the
 * percent-escape step that every percent-decoder of the project uses.
 * Links the module itself.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "tests/unit/tap.h"
#include "lib/hex.h"

static void
test_digit(void)
{
	static const char digits[] = "0123456789abcdefABCDEF";
	int c, bad = 0, good = 1;
	size_t i;

	for (i = 0; i < sizeof(digits) - 1; i++) {
		int want = i < 16 ? (int)i : (int)i - 6;

		if (hex_digit((unsigned char)digits[i]) != want)
			good = 0;
	}
	ok(good, "0-9, a-f and A-F have their values");
	for (c = 0; c < 256; c++)
		if (strchr(digits, c) == NULL || c == 0)
			bad += hex_digit((unsigned char)c) != -1;
	is_int(bad, 0, "every other byte (NUL, 'g', 'G', 0x80 ...) is -1");
}

static void
test_decode_encode(void)
{
	unsigned char out[4];
	char hex[9];
	size_t n = 99;

	ok(hex_decode("00fFa5", 6, out, sizeof(out), &n) == 0 && n == 3 &&
	    out[0] == 0 && out[1] == 0xff && out[2] == 0xa5,
	    "decode mixed case");
	ok(hex_decode("", 0, out, sizeof(out), &n) == 0 && n == 0,
	    "decode empty");
	ok(hex_decode("abc", 3, out, sizeof(out), &n) == -1, "odd length");
	ok(hex_decode("0011223344", 10, out, sizeof(out), &n) == -1,
	    "more than cap bytes");
	ok(hex_decode("00112233", 8, out, sizeof(out), &n) == 0 && n == 4,
	    "exactly cap bytes");
	ok(hex_decode("0g", 2, out, sizeof(out), &n) == -1, "non-hex digit");
	ok(hex_decode("0 ", 2, out, sizeof(out), &n) == -1, "space");
	ok(hex_decode("+1", 2, out, sizeof(out), &n) == -1, "sign");
	hex_encode((const unsigned char *)"\x00\xff\xa5\x10", 4, hex);
	is_str(hex, "00ffa510", "encode: lower case, NUL-terminated");
	ok(hex_decode(hex, 8, out, sizeof(out), &n) == 0 && n == 4 &&
	    memcmp(out, "\x00\xff\xa5\x10", 4) == 0, "round trip");
}

static void
test_percent(void)
{
	static const char s[] = "a%41%7e%7E+%";
	size_t i = 0;
	int c;

	c = hex_percent_octet(s, sizeof(s) - 1, &i);
	ok(c == 'a' && i == 1, "a plain byte is itself");
	c = hex_percent_octet(s, sizeof(s) - 1, &i);
	ok(c == 'A' && i == 4, "%%41 is 'A', three bytes");
	c = hex_percent_octet(s, sizeof(s) - 1, &i);
	ok(c == '~' && i == 7, "lower-case escape");
	c = hex_percent_octet(s, sizeof(s) - 1, &i);
	ok(c == '~' && i == 10, "upper-case escape");
	c = hex_percent_octet(s, sizeof(s) - 1, &i);
	ok(c == '+' && i == 11, "'+' is kept");
	c = hex_percent_octet(s, sizeof(s) - 1, &i);
	ok(c == -1 && i == 11, "a lone '%%' at the end is malformed, i kept");

	i = 0;
	ok(hex_percent_octet("%4", 2, &i) == -1 && i == 0, "truncated escape");
	i = 0;
	ok(hex_percent_octet("%41", 2, &i) == -1 && i == 0,
	    "an escape cut by n is malformed");
	i = 0;
	ok(hex_percent_octet("%zz", 3, &i) == -1, "non-hex escape");
	i = 0;
	ok(hex_percent_octet("%-1", 3, &i) == -1, "sign in an escape");
	i = 0;
	ok(hex_percent_octet("%00", 3, &i) == 0 && i == 3,
	    "%%00 decodes to 0 (the caller decides)");
	i = 0;
	ok(hex_percent_octet("%ff", 3, &i) == 0xff, "%%ff is 255, not -1");
	i = 0;
	ok(hex_percent_octet("\xe9", 1, &i) == 0xe9, "a high byte is positive");
}

int
main(void)
{
	test_digit();
	test_decode_encode();
	test_percent();
	return tap_done();
}
