/*
 * hex.h -- hexadecimal digits: decoding and encoding byte strings, and the
 * one step of percent-decoding (RFC 3986 2.1: '%' HEXDIG HEXDIG).
 *
 * Pure code: no allocation, no state, no locale (ASCII only); safe from any
 * thread.  The users are the HTTP parser (chunk sizes, percent-decoding),
 * the router (percent-encoded path segments) and the key file (hex secrets).
 */
#ifndef INGEN_HEX_H
#define INGEN_HEX_H

#include <stddef.h>

#include "lib/err.h"

/* The value of the hex digit `c` (0-9, a-f, A-F): 0 to 15, or -1. */
int hex_digit(unsigned char c);

/*
 * Decode the n hex digits s[0..n) (either case) into out[0..cap).  Returns
 * 0 and sets *outlen to n / 2; -1 when n is odd, n / 2 > cap, or a character
 * is not a hex digit (out may then be partly written: a caller that decodes
 * a secret wipes it).
 */
int hex_decode(const char *s, size_t n, unsigned char *out, size_t cap,
    size_t *outlen) ING_WUR;

/* Write the n bytes of p as 2n lower-case hex digits and a NUL into
 * out[0..2n]. */
void hex_encode(const unsigned char *p, size_t n, char *out);

/*
 * The octet at s[*i] of the percent-encoded s[0..n), *i < n: a '%' and two
 * hex digits give the octet they encode and advance *i by 3; any other byte
 * is itself and advances *i by 1.  A '%' not followed by two hex digits
 * within n is malformed: -1, *i unchanged.  Returns 0 to 255 otherwise
 * (0 for "%00" and for a raw NUL: rejecting them is the caller's policy).
 * Every percent-decoding of the project is this function in a loop.
 */
int hex_percent_octet(const char *s, size_t n, size_t *i);

#endif
