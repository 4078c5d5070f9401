/*
 * b64.h -- base64 (RFC 4648 section 4) and base64url (section 5), strict.
 *
 * This module owns the encoding alphabets and the one strict decoder used for
 * every untrusted input: JWT segments, Basic credentials, stored password
 * hashes.  Decoding never "repairs" input: it rejects characters outside the
 * alphabet (whitespace included), misplaced or missing padding, and encodings
 * whose unused trailing bits are not zero, so each byte string has exactly one
 * accepted encoding.  Pure code: no allocation, no I/O, safe from any thread.
 * It must never log: its inputs may be credentials.
 */
#ifndef INGEN_B64_H
#define INGEN_B64_H

#include <stddef.h>

#include "lib/err.h"

/* Length (without the NUL) of the standard, padded encoding of n bytes. */
size_t b64_encoded_len(size_t n);

/* Length (without the NUL) of the base64url, unpadded encoding of n bytes. */
size_t b64url_encoded_len(size_t n);

/* Upper bound of the bytes decoded from n characters (either alphabet). */
size_t b64_decoded_max(size_t n);

/*
 * Encode n bytes of `in` into `out`, which must hold b64_encoded_len(n) + 1
 * (or b64url_encoded_len(n) + 1) bytes.  Writes a NUL terminator and returns
 * the length written without it.  b64_encode uses the standard alphabet with
 * `=` padding; b64url_encode the URL-safe alphabet without padding (JWT).
 */
size_t b64_encode(const void *in, size_t n, char *out);
size_t b64url_encode(const void *in, size_t n, char *out);

/*
 * Decode n characters of standard base64; the length must be a multiple of 4
 * with `=` padding only at the end (so padding is required).  The empty
 * string decodes to zero bytes.  `out` holds `outcap` bytes; the decoded
 * length goes to *outlen.  Returns 0, or -1 with `e` set (status 400) on any
 * invalid input or when `out` is too small.  `in` need not be NUL-terminated.
 */
int b64_decode(const char *in, size_t n, void *out, size_t outcap,
    size_t *outlen, struct err *e) ING_WUR;

/*
 * Decode n characters of base64url without padding (JWT segments): `=` is
 * rejected like any other character outside the alphabet, as is a length of
 * 4k+1.  Same contract as b64_decode otherwise.
 */
int b64url_decode(const char *in, size_t n, void *out, size_t outcap,
    size_t *outlen, struct err *e) ING_WUR;

#endif
