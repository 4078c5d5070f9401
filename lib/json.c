/*
 * json.c -- the strict JSON validator in front of cJSON, and the accessors
 * handlers use to read request bodies.
 *
 * It owns the rules for what JSON text the server accepts.  It never lets
 * cJSON see text the validator has not accepted, never keeps state between
 * calls, and never frees a tree itself: trees die with their arena.
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"

enum json_scan {
	JSON_SCAN_VALUE,            /* a value must follow */
	JSON_SCAN_MEMBER,           /* a member name must follow */
	JSON_SCAN_AFTER,            /* a value ended */
};

#define JSON_IN_ARRAY  0
#define JSON_IN_OBJECT 1

static enum json_error
json_fail_kind(struct err *e, enum json_error kind, const char *what,
    size_t off)
{
	err_set(e, 400, "invalid JSON: %s at byte %zu", what, off);
	return kind;
}

/* Text that is not one JSON document (the common failure). */
static enum json_error
json_fail(struct err *e, const char *what, size_t off)
{
	return json_fail_kind(e, JSON_ERROR_SYNTAX, what, off);
}

/* Bytes or escapes that are not text. */
static enum json_error
json_fail_encoding(struct err *e, const char *what, size_t off)
{
	return json_fail_kind(e, JSON_ERROR_ENCODING, what, off);
}

static bool
json_is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Length of the well-formed UTF-8 sequence at p[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t
json_utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c < 0xf0) {
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		return n >= 3 && p[1] >= lo && p[1] <= hi &&
		    (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c < 0xf5) {
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		return n >= 4 && p[1] >= lo && p[1] <= hi &&
		    (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

size_t
json_utf8_prefix(const char *s, size_t len, size_t max_chars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, chars, n;

	for (chars = 0; chars < max_chars && i < len; chars++) {
		n = json_utf8_len(p + i, len - i);
		i += n > 0 ? n : 1;
	}
	return i;
}

/* Four hex digits at p (the caller checked there are four bytes), or -1. */
static long
json_hex4(const unsigned char *p)
{
	long v = 0;
	int k;

	for (k = 0; k < 4; k++) {
		unsigned char c = p[k];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* Why an unexpected byte at p[i] is unexpected. */
static enum json_error
json_fail_unexpected(struct err *e, const unsigned char *p, size_t n,
    size_t i)
{
	if (i >= n)
		return json_fail(e, "unexpected end of input", i);
	if (p[i] == '\0')
		return json_fail_encoding(e, "NUL byte", i);
	if (p[i] >= 0x80 && json_utf8_len(p + i, n - i) == 0)
		return json_fail_encoding(e, "invalid UTF-8", i);
	return json_fail(e, "unexpected character", i);
}

/* A string starting at the quote p[*ip]; on success *ip is past its end. */
static enum json_error
json_scan_string(const unsigned char *p, size_t n, size_t *ip, struct err *e)
{
	size_t i = *ip + 1, len;
	long cp, lo;

	for (;;) {
		unsigned char c;

		/* the common case: plain ASCII */
		while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' &&
		    p[i] != '\\')
			i++;
		if (i >= n)
			return json_fail(e, "unterminated string", i);
		c = p[i];
		if (c == '"')
			break;
		if (c == '\0')
			return json_fail_encoding(e, "NUL byte", i);
		if (c < 0x20)
			return json_fail(e, "control character in string", i);
		if (c >= 0x80) {
			if ((len = json_utf8_len(p + i, n - i)) == 0)
				return json_fail_encoding(e, "invalid UTF-8", i);
			i += len;
			continue;
		}
		/* a backslash */
		if (i + 1 >= n)
			return json_fail(e, "unterminated string", i);
		switch (p[i + 1]) {
		case '"': case '\\': case '/': case 'b':
		case 'f': case 'n': case 'r': case 't':
			i += 2;
			continue;
		case 'u':
			break;
		default:
			return json_fail(e, "invalid escape", i);
		}
		if (n - i < 6 || (cp = json_hex4(p + i + 2)) < 0)
			return json_fail(e, "invalid \\u escape", i);
		if (cp == 0)
			return json_fail_encoding(e, "\\u0000 escape not allowed", i);
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return json_fail_encoding(e, "lone surrogate escape", i);
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (n - i < 12 || p[i + 6] != '\\' || p[i + 7] != 'u' ||
			    (lo = json_hex4(p + i + 8)) < 0xdc00 || lo > 0xdfff)
				return json_fail_encoding(e, "lone surrogate escape", i);
			i += 12;
		} else {
			i += 6;
		}
	}
	*ip = i + 1;
	return JSON_OK;
}

static bool
json_is_digit(const unsigned char *p, size_t n, size_t i)
{
	return i < n && p[i] >= '0' && p[i] <= '9';
}

/* A number starting at p[*ip] (a '-' or a digit). */
static enum json_error
json_scan_number(const unsigned char *p, size_t n, size_t *ip, struct err *e)
{
	size_t i = *ip, start = i;

	if (p[i] == '-')
		i++;
	if (i < n && p[i] == '0') {
		i++;
	} else if (json_is_digit(p, n, i)) {
		while (json_is_digit(p, n, i))
			i++;
	} else {
		return json_fail(e, "invalid number", start);
	}
	if (i < n && p[i] == '.') {
		i++;
		if (!json_is_digit(p, n, i))
			return json_fail(e, "invalid number", start);
		while (json_is_digit(p, n, i))
			i++;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (!json_is_digit(p, n, i))
			return json_fail(e, "invalid number", start);
		while (json_is_digit(p, n, i))
			i++;
	}
	if (i - start > JSON_MAX_NUMBER_LEN)
		return json_fail(e, "number too long", start);
	*ip = i;
	return JSON_OK;
}

/* json_validate, telling what kind of failure it found. */
static enum json_error
json_check(const char *s, size_t n, int max_depth, struct err *e)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char stack[JSON_MAX_DEPTH_CAP];
	enum json_scan state = JSON_SCAN_VALUE;
	enum json_error k;
	size_t i = 0, depth = 0, limit;

	if (max_depth <= 0)
		max_depth = JSON_DEFAULT_MAX_DEPTH;
	limit = (size_t)max_depth > sizeof(stack) ? sizeof(stack) :
	    (size_t)max_depth;

	for (;;) {
		while (i < n && json_is_ws(p[i]))
			i++;
		switch (state) {
		case JSON_SCAN_VALUE:
			if (i >= n)
				return json_fail(e, depth == 0 && i == 0 ?
				    "empty document" : "unexpected end of input",
				    i);
			switch (p[i]) {
			case '{':
			case '[':
				if (depth >= limit) {
					err_set(e, 400, "invalid JSON: nesting "
					    "deeper than %zu levels at byte %zu",
					    limit, i);
					return JSON_ERROR_DEPTH;
				}
				stack[depth++] = p[i] == '{' ? JSON_IN_OBJECT :
				    JSON_IN_ARRAY;
				i++;
				while (i < n && json_is_ws(p[i]))
					i++;
				if (i < n && p[i] == (stack[depth - 1] ==
				    JSON_IN_OBJECT ? '}' : ']')) {
					depth--;
					i++;
					state = JSON_SCAN_AFTER;
				} else if (stack[depth - 1] == JSON_IN_OBJECT) {
					state = JSON_SCAN_MEMBER;
				}
				continue;
			case '"':
				if ((k = json_scan_string(p, n, &i, e)) != JSON_OK)
					return k;
				break;
			case 't':
				if (n - i < 4 || memcmp(p + i, "true", 4) != 0)
					return json_fail(e, "invalid literal", i);
				i += 4;
				break;
			case 'f':
				if (n - i < 5 || memcmp(p + i, "false", 5) != 0)
					return json_fail(e, "invalid literal", i);
				i += 5;
				break;
			case 'n':
				if (n - i < 4 || memcmp(p + i, "null", 4) != 0)
					return json_fail(e, "invalid literal", i);
				i += 4;
				break;
			default:
				if (p[i] == '-' || (p[i] >= '0' && p[i] <= '9')) {
					if ((k = json_scan_number(p, n, &i,
					    e)) != JSON_OK)
						return k;
					break;
				}
				return json_fail_unexpected(e, p, n, i);
			}
			state = JSON_SCAN_AFTER;
			continue;
		case JSON_SCAN_MEMBER:
			if (i >= n || p[i] != '"') {
				if (i < n && (p[i] == '\0' || p[i] >= 0x80))
					return json_fail_unexpected(e, p, n, i);
				return json_fail(e, i >= n ?
				    "unexpected end of input" :
				    "expected a member name", i);
			}
			if ((k = json_scan_string(p, n, &i, e)) != JSON_OK)
				return k;
			while (i < n && json_is_ws(p[i]))
				i++;
			if (i >= n || p[i] != ':') {
				if (i < n && (p[i] == '\0' || p[i] >= 0x80))
					return json_fail_unexpected(e, p, n, i);
				return json_fail(e, i >= n ?
				    "unexpected end of input" : "expected ':'", i);
			}
			i++;
			state = JSON_SCAN_VALUE;
			continue;
		case JSON_SCAN_AFTER:
			if (depth == 0) {
				if (i < n) {
					if (p[i] == '\0' || p[i] >= 0x80)
						return json_fail_unexpected(e, p,
						    n, i);
					return json_fail(e,
					    "unexpected data after the document", i);
				}
				return JSON_OK;
			}
			if (i >= n)
				return json_fail(e, "unexpected end of input", i);
			if (p[i] == ',') {
				i++;
				state = stack[depth - 1] == JSON_IN_OBJECT ?
				    JSON_SCAN_MEMBER : JSON_SCAN_VALUE;
				continue;
			}
			if (p[i] == (stack[depth - 1] == JSON_IN_OBJECT ?
			    '}' : ']')) {
				depth--;
				i++;
				continue;
			}
			if (p[i] == '\0' || p[i] >= 0x80)
				return json_fail_unexpected(e, p, n, i);
			return json_fail(e, stack[depth - 1] == JSON_IN_OBJECT ?
			    "expected ',' or '}'" : "expected ',' or ']'", i);
		}
	}
}

int
json_validate(const char *s, size_t n, int max_depth, struct err *e)
{
	return json_check(s, n, max_depth, e) == JSON_OK ? 0 : -1;
}

static void
json_delete_cb(void *p)
{
	cJSON_Delete(p);
}

enum json_error
json_read(struct arena *a, const char *s, size_t n, int max_depth,
    cJSON **out, struct err *e)
{
	const char *end = NULL;
	enum json_error k;
	cJSON *root;

	*out = NULL;
	if ((k = json_check(s, n, max_depth, e)) != JSON_OK)
		return k;
	root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
	if (root == NULL) {
		/* the validator accepted it: only exhaustion gets here */
		err_set(e, 400, "invalid JSON: could not build the document");
		return JSON_ERROR_SYNTAX;
	}
	arena_cleanup(a, json_delete_cb, root);
	/* the validator guarantees only whitespace can follow */
	while (end != NULL && end < s + n && json_is_ws((unsigned char)*end))
		end++;
	if (end != s + n) {
		err_set(e, 400, "invalid JSON: unexpected data after the document");
		return JSON_ERROR_SYNTAX;
	}
	*out = root;
	return JSON_OK;
}

cJSON *
json_parse(struct arena *a, const char *s, size_t n, int max_depth,
    struct err *e)
{
	cJSON *root;

	return json_read(a, s, n, max_depth, &root, e) == JSON_OK ? root : NULL;
}

cJSON *
json_adopt(struct arena *a, cJSON *item)
{
	if (item != NULL)
		arena_cleanup(a, json_delete_cb, item);
	return item;
}

/* cJSON prints with malloc: NULL means memory is exhausted (xmalloc rule). */
static char *
json_print_raw(const cJSON *item)
{
	static const char msg[] =
	    "level=fatal msg=\"out of memory while printing JSON\"\n";
	char *text = cJSON_PrintUnformatted(item);

	if (text == NULL) {
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		abort();
	}
	return text;
}

char *
json_print(struct arena *a, const cJSON *item)
{
	char *text, *copy;

	if (item == NULL)
		return arena_strdup(a, "null");
	text = json_print_raw(item);
	copy = arena_strdup(a, text);
	cJSON_free(text);
	return copy;
}

void
json_append(struct buf *out, const cJSON *item)
{
	char *text;

	if (item == NULL) {
		buf_puts(out, "null");
		return;
	}
	text = json_print_raw(item);
	buf_puts(out, text);
	cJSON_free(text);
}

/*
 * The member named `key`; with duplicate names the last one wins, as in
 * Python's json module, so a body means what it meant to the original.
 */
static const cJSON *
json_member(const cJSON *obj, const char *key)
{
	const cJSON *it, *found = NULL;

	if (!cJSON_IsObject(obj))
		return NULL;
	for (it = obj->child; it != NULL; it = it->next)
		if (it->string != NULL && strcmp(it->string, key) == 0)
			found = it;
	return found;
}

static enum json_get
json_type_error(const char *key, struct err *e)
{
	err_set(e, 422, "Field '%s' has an incorrect data type.", key);
	return JSON_GET_ERROR;
}

static enum json_get
json_lookup(const cJSON *obj, const char *key, bool required,
    const cJSON **item, struct err *e)
{
	const cJSON *it = json_member(obj, key);

	if (it == NULL) {
		if (!required)
			return JSON_GET_ABSENT;
		err_set(e, 422, "Required field '%s' is missing from your "
		    "request.", key);
		return JSON_GET_ERROR;
	}
	if (cJSON_IsNull(it)) {
		if (!required)
			return JSON_GET_NULL;
		return json_type_error(key, e);
	}
	*item = it;
	return JSON_GET_FOUND;
}

enum json_get
json_get_string(const cJSON *obj, const char *key, bool required,
    const char **out, struct err *e)
{
	const cJSON *it = NULL;
	enum json_get r = json_lookup(obj, key, required, &it, e);

	if (r != JSON_GET_FOUND)
		return r;
	if (!cJSON_IsString(it) || it->valuestring == NULL)
		return json_type_error(key, e);
	*out = it->valuestring;
	return JSON_GET_FOUND;
}

enum json_get
json_get_bool(const cJSON *obj, const char *key, bool required, bool *out,
    struct err *e)
{
	const cJSON *it = NULL;
	enum json_get r = json_lookup(obj, key, required, &it, e);

	if (r != JSON_GET_FOUND)
		return r;
	if (!cJSON_IsBool(it))
		return json_type_error(key, e);
	*out = cJSON_IsTrue(it);
	return JSON_GET_FOUND;
}

enum json_get
json_get_int(const cJSON *obj, const char *key, bool required, int64_t *out,
    struct err *e)
{
	const cJSON *it = NULL;
	enum json_get r = json_lookup(obj, key, required, &it, e);
	double d;

	if (r != JSON_GET_FOUND)
		return r;
	if (!cJSON_IsNumber(it))
		return json_type_error(key, e);
	d = it->valuedouble;
	/* 2^63 is exact in a double; the cast is defined below it */
	if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) ||
	    (double)(int64_t)d != d)
		return json_type_error(key, e);
	*out = (int64_t)d;
	return JSON_GET_FOUND;
}

enum json_get
json_get_number(const cJSON *obj, const char *key, bool required,
    double *out, struct err *e)
{
	const cJSON *it = NULL;
	enum json_get r = json_lookup(obj, key, required, &it, e);

	if (r != JSON_GET_FOUND)
		return r;
	if (!cJSON_IsNumber(it))
		return json_type_error(key, e);
	*out = it->valuedouble;
	return JSON_GET_FOUND;
}

enum json_get
json_get_object(const cJSON *obj, const char *key, bool required,
    const cJSON **out, struct err *e)
{
	const cJSON *it = NULL;
	enum json_get r = json_lookup(obj, key, required, &it, e);

	if (r != JSON_GET_FOUND)
		return r;
	if (!cJSON_IsObject(it))
		return json_type_error(key, e);
	*out = it;
	return JSON_GET_FOUND;
}

enum json_get
json_get_array(const cJSON *obj, const char *key, bool required,
    const cJSON **out, struct err *e)
{
	const cJSON *it = NULL;
	enum json_get r = json_lookup(obj, key, required, &it, e);

	if (r != JSON_GET_FOUND)
		return r;
	if (!cJSON_IsArray(it))
		return json_type_error(key, e);
	*out = it;
	return JSON_GET_FOUND;
}
