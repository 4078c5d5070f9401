/*
 * basic.h -- decoding an HTTP Basic Authorization value (RFC 7617).
 *
 * Pure parsing of untrusted input: no I/O, no logging (the value is a
 * password), safe from any thread on distinct arenas.  Deciding whether the
 * credentials are right is the caller's job (crypto_streq or
 * crypto_password_verify); this module only says what the client sent.
 */
#ifndef INGEN_BASIC_H
#define INGEN_BASIC_H

#include "lib/arena.h"
#include "lib/err.h"

/* The outcomes a caller must tell apart. */
enum basic_result {
	BASIC_OK = 0,           /* *user and *password set */
	BASIC_OTHER_SCHEME,     /* not Basic at all (Bearer, empty, unknown): nothing set */
	BASIC_MALFORMED,        /* Basic, but undecodable: e set (status 401) */
};

/*
 * Decode the value of an Authorization header.  The scheme name "Basic" is
 * matched case-insensitively (RFC 9110 section 11.1) and must be followed by
 * one or more spaces and the credentials; "Basic" alone is malformed.
 * Trailing spaces and tabs are ignored.  The credentials must be strict
 * standard base64 with its padding (lib/b64.h); the decoded text must be
 * valid UTF-8 without NUL bytes and contain a ':'.  It is split at the first
 * ':' so the user name cannot contain one and the password may (and may be
 * empty, as may the user name).  On BASIC_OK, *user and *password are
 * NUL-terminated strings in `a`.  On BASIC_MALFORMED `e` says why (for a
 * debug log); the HTTP answer is 401 {"detail":"Invalid authentication
 * format"}.  BASIC_OTHER_SCHEME leaves `e` untouched.
 */
enum basic_result basic_decode(const char *header_value, struct arena *a,
    char **user, char **password, struct err *e) ING_WUR;

#endif
