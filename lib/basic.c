/*
 * basic.c -- HTTP Basic credentials: scheme match, strict base64, split.
 *
 * Owns the rules for what a well-formed Basic value is.  It never compares
 * credentials, never logs, and never puts any part of the value into an
 * error message.
 */
#include "autoconfig.h"

#include <string.h>
#include <strings.h>

#include "lib/b64.h"
#include "lib/basic.h"

#define BASIC_SCHEME     "Basic"
#define BASIC_SCHEME_LEN (sizeof(BASIC_SCHEME) - 1)

/*
 * 1 if s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), else 0.
 */
static int
basic_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, len, k;
	unsigned c, cp, min;

	while (i < n) {
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4; cp = c & 0x07; min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

enum basic_result
basic_decode(const char *header_value, struct arena *a, char **user,
    char **password, struct err *e)
{
	const char *p = header_value, *end;
	char *text, *colon;
	size_t n, len;

	if (p == NULL || strncasecmp(p, BASIC_SCHEME, BASIC_SCHEME_LEN) != 0)
		return BASIC_OTHER_SCHEME;
	p += BASIC_SCHEME_LEN;
	if (*p != '\0' && *p != ' ')
		return BASIC_OTHER_SCHEME;    /* "Basically", "Basic\tx", ... */
	while (*p == ' ')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	len = (size_t)(end - p);
	if (len == 0) {
		err_set(e, 401, "invalid basic credentials: empty");
		return BASIC_MALFORMED;
	}
	text = arena_alloc(a, b64_decoded_max(len) + 1);
	if (b64_decode(p, len, text, b64_decoded_max(len), &n, e) < 0) {
		err_prefix(e, "invalid basic credentials");
		if (e != NULL)
			e->status = 401;
		return BASIC_MALFORMED;
	}
	text[n] = '\0';
	if (memchr(text, '\0', n) != NULL) {
		err_set(e, 401, "invalid basic credentials: NUL byte");
		return BASIC_MALFORMED;
	}
	if (!basic_utf8_valid((const unsigned char *)text, n)) {
		err_set(e, 401, "invalid basic credentials: not valid UTF-8");
		return BASIC_MALFORMED;
	}
	colon = strchr(text, ':');
	if (colon == NULL) {
		err_set(e, 401, "invalid basic credentials: no ':' separator");
		return BASIC_MALFORMED;
	}
	*colon = '\0';
	*user = text;
	*password = colon + 1;
	return BASIC_OK;
}
