/*
 * test_basic.c -- decoding Basic Authorization values: the good ones, the
 * malformed ones (401 "Invalid authentication format" upstairs) and the
 * ones that are not Basic at all.
 */
#include "autoconfig.h"

#include <string.h>

#include "lib/arena.h"
#include "lib/b64.h"
#include "lib/basic.h"
#include "tests/unit/tap.h"

static struct arena *a;
static char *user, *pw;

/* "Basic " + base64 of n raw bytes. */
static const char *
basic_of(const char *raw, size_t n)
{
	static char buf[1024];

	strcpy(buf, "Basic ");
	b64_encode(raw, n, buf + 6);
	return buf;
}

static enum basic_result
dec(const char *value, struct err *e)
{
	user = pw = NULL;
	err_clear(e);
	return basic_decode(value, a, &user, &pw, e);
}

static void
test_good(void)
{
	struct err e;

	is_int(dec("Basic YWRtaW46c2VjdXJlX3Bhc3N3b3Jk", &e), BASIC_OK, "the guide's admin:secure_password");
	is_str(user, "admin", "user");
	is_str(pw, "secure_password", "password");
	is_int(dec(basic_of("u:p:q", 5), &e), BASIC_OK, "a password containing ':'");
	is_str(user, "u", "splits at the first ':' (user)");
	is_str(pw, "p:q", "splits at the first ':' (password)");
	is_int(dec(basic_of(":pw", 3), &e), BASIC_OK, "an empty user name decodes");
	is_str(user, "", "to the empty user");
	is_str(pw, "pw", "and its password");
	is_int(dec(basic_of("u:", 2), &e), BASIC_OK, "an empty password decodes");
	is_str(pw, "", "to the empty password");
	is_int(dec(basic_of(":", 1), &e), BASIC_OK, "\":\" alone decodes");
	is_int(dec(basic_of("jos\xc3\xa9:p\xc3\xa4ss", 11), &e), BASIC_OK, "UTF-8 credentials decode");
	is_str(user, "jos\xc3\xa9", "UTF-8 user");
	is_int(dec("basic YWRtaW46c2VjdXJlX3Bhc3N3b3Jk", &e), BASIC_OK, "the scheme is case-insensitive");
	is_int(dec("BASIC YWRtaW46c2VjdXJlX3Bhc3N3b3Jk", &e), BASIC_OK, "upper-case scheme");
	is_int(dec("Basic    YWRtaW46c2VjdXJlX3Bhc3N3b3Jk", &e), BASIC_OK, "several spaces after the scheme");
	is_int(dec("Basic YWRtaW46c2VjdXJlX3Bhc3N3b3Jk \t", &e), BASIC_OK, "trailing whitespace");
	is_str(pw, "secure_password", "is not part of the password");
}

static void
test_malformed(void)
{
	struct err e;

	is_int(dec(basic_of("adminpassword", 13), &e), BASIC_MALFORMED, "no colon is malformed");
	is_int(e.status, 401, "status 401");
	ok(strstr(e.msg, "adminpassword") == NULL, "the message does not echo the credentials");
	is_int(dec("Basic !!!!", &e), BASIC_MALFORMED, "bad base64 is malformed");
	is_int(dec("Basic YWRtaW46cGFzcw", &e), BASIC_MALFORMED, "base64 without its padding is malformed");
	is_int(dec("Basic YWRtaW46cGFzcw=", &e), BASIC_MALFORMED, "base64 with short padding is malformed");
	is_int(dec("Basic YWRt aW46cGFzcw==", &e), BASIC_MALFORMED, "a space inside the base64 is malformed");
	is_int(dec("Basic YWRtaW46cGFzcx==", &e), BASIC_MALFORMED, "non-canonical base64 is malformed");
	is_int(dec("Basic YWRtaW46cGFzcw-_", &e), BASIC_MALFORMED, "base64url characters are malformed");
	is_int(dec(basic_of("ad\0min:pw", 9), &e), BASIC_MALFORMED, "a NUL byte in the user is malformed");
	is_int(dec(basic_of("admin:p\0w", 9), &e), BASIC_MALFORMED, "a NUL byte in the password is malformed");
	is_int(dec(basic_of("\xff:pw", 4), &e), BASIC_MALFORMED, "invalid UTF-8 is malformed");
	is_int(dec(basic_of("\xc0\xaf:pw", 5), &e), BASIC_MALFORMED, "overlong UTF-8 is malformed");
	is_int(dec(basic_of("\xed\xa0\x80:pw", 6), &e), BASIC_MALFORMED, "a UTF-8 surrogate is malformed");
	is_int(dec("Basic", &e), BASIC_MALFORMED, "\"Basic\" without credentials is malformed");
	is_int(dec("Basic ", &e), BASIC_MALFORMED, "\"Basic \" without credentials is malformed");
	is_int(dec("Basic    ", &e), BASIC_MALFORMED, "\"Basic\" and spaces is malformed");
	is_int(dec("Basic ====", &e), BASIC_MALFORMED, "only padding is malformed");
	is_int(dec(basic_of("", 0), &e), BASIC_MALFORMED, "empty decoded text is malformed");
}

static void
test_other(void)
{
	struct err e;

	is_int(dec("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", &e), BASIC_OTHER_SCHEME, "Bearer is another scheme");
	is_int(e.status, 0, "and sets no error");
	ok(user == NULL && pw == NULL, "nor any output");
	is_int(dec("", &e), BASIC_OTHER_SCHEME, "an empty value is another scheme");
	is_int(dec(NULL, &e), BASIC_OTHER_SCHEME, "no value is another scheme");
	is_int(dec("Digest username=\"a\"", &e), BASIC_OTHER_SCHEME, "Digest is another scheme");
	is_int(dec("Basically YWRtaW46cGFzcw==", &e), BASIC_OTHER_SCHEME, "\"Basically\" is another scheme");
	is_int(dec("Basic\tYWRtaW46cGFzcw==", &e), BASIC_OTHER_SCHEME, "a tab is not the scheme separator");
	is_int(dec("Bas", &e), BASIC_OTHER_SCHEME, "a prefix of Basic is another scheme");
	is_int(dec(" Basic YWRtaW46cGFzcw==", &e), BASIC_OTHER_SCHEME, "leading space is not Basic");
}

int
main(void)
{
	a = arena_create(0);
	test_good();
	test_malformed();
	test_other();
	arena_destroy(a);
	return tap_done();
}
