/*
 * test_json.c -- unit tests of lib/json.c: the strict validator (depth,
 * UTF-8, NUL, \u0000, surrogates, trailing data, number and literal
 * grammar), the kind of each failure (what routes map to 400 or 422),
 * the arena-owned trees, the accessors and their 422 messages, compact
 * printing, and cutting UTF-8 text on character boundaries.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"
#include "tests/unit/tap.h"

static struct arena *arena;

static void
expect_reject(const char *name, const char *s, size_t n, const char *why)
{
	struct err e;
	cJSON *j;

	err_clear(&e);
	j = json_parse(arena, s, n, JSON_DEFAULT_MAX_DEPTH, &e);
	ok(j == NULL && e.status == 400 && strstr(e.msg, why) != NULL,
	    "%s rejected (%s)", name, why);
	if (j != NULL || strstr(e.msg, why) == NULL)
		printf("#   got %s status %d msg \"%s\"\n", j ? "a tree" : "NULL",
		    e.status, e.msg);
}

#define REJECT(name, lit, why) expect_reject(name, lit, sizeof(lit) - 1, why)

static cJSON *
accept(const char *name, const char *s, size_t n)
{
	struct err e;
	cJSON *j;

	err_clear(&e);
	j = json_parse(arena, s, n, JSON_DEFAULT_MAX_DEPTH, &e);
	ok(j != NULL, "%s accepted", name);
	if (j == NULL)
		printf("#   %s\n", e.msg);
	return j;
}

#define ACCEPT(name, lit) accept(name, lit, sizeof(lit) - 1)

static char *
nested(int depth, char open, char close, const char *inner)
{
	size_t il = strlen(inner);
	char *s = malloc((size_t)depth * 2 + il + 1);
	int i;

	for (i = 0; i < depth; i++)
		s[i] = open;
	memcpy(s + depth, inner, il);
	for (i = 0; i < depth; i++)
		s[(size_t)depth + il + (size_t)i] = close;
	s[(size_t)depth * 2 + il] = '\0';
	return s;
}

static void
test_depth(void)
{
	struct err e;
	char *s;
	struct buf b = BUF_INIT;
	int i;

	s = nested(64, '[', ']', "1");
	ok(json_parse(arena, s, strlen(s), 64, &e) != NULL, "64 nested arrays ok");
	free(s);
	s = nested(65, '[', ']', "1");
	ok(json_parse(arena, s, strlen(s), 64, &e) == NULL && e.status == 400 &&
	    strstr(e.msg, "nesting deeper than 64") != NULL,
	    "65 nested arrays rejected: %s", e.msg);
	free(s);

	for (i = 0; i < 64; i++)
		buf_puts(&b, "{\"a\":");
	buf_puts(&b, "null");
	for (i = 0; i < 64; i++)
		buf_putc(&b, '}');
	ok(json_parse(arena, buf_rptr(&b), buf_rlen(&b), 64, &e) != NULL,
	    "64 nested objects ok");
	buf_reset(&b);
	for (i = 0; i < 65; i++)
		buf_puts(&b, "{\"a\":");
	buf_puts(&b, "null");
	for (i = 0; i < 65; i++)
		buf_putc(&b, '}');
	ok(json_parse(arena, buf_rptr(&b), buf_rlen(&b), 64, &e) == NULL,
	    "65 nested objects rejected");
	buf_reset(&b);
	/* depth is nesting, not the number of containers */
	buf_putc(&b, '[');
	for (i = 0; i < 1000; i++)
		buf_puts(&b, i ? ",[[]]" : "[[]]");
	buf_putc(&b, ']');
	ok(json_parse(arena, buf_rptr(&b), buf_rlen(&b), 3, &e) != NULL,
	    "1000 siblings of depth 3 ok with max_depth 3");
	buf_free(&b);

	/* cJSON's own limit is 1000; deeper requests are clamped to it */
	s = nested(5000, '[', ']', "");
	ok(json_parse(arena, s, strlen(s), 100000, &e) == NULL,
	    "5000 levels rejected even with a huge max_depth");
	free(s);
	s = nested(1000, '[', ']', "");
	ok(json_parse(arena, s, strlen(s), 1000, &e) != NULL,
	    "1000 levels allowed when asked for");
	free(s);
	s = nested(10, '[', ']', "");
	ok(json_parse(arena, s, strlen(s), 0, &e) != NULL,
	    "max_depth 0 means the default");
	free(s);
}

static void
test_encoding(void)
{
	cJSON *j;

	REJECT("overlong NUL C0 80", "\"\xc0\x80\"", "invalid UTF-8");
	REJECT("overlong C1 BF", "\"\xc1\xbf\"", "invalid UTF-8");
	REJECT("overlong 3-byte E0 80 AF", "\"\xe0\x80\xaf\"", "invalid UTF-8");
	REJECT("overlong 4-byte F0 80 80 AF", "\"\xf0\x80\x80\xaf\"",
	    "invalid UTF-8");
	REJECT("surrogate ED A0 80", "\"\xed\xa0\x80\"", "invalid UTF-8");
	REJECT("surrogate ED BF BF", "\"\xed\xbf\xbf\"", "invalid UTF-8");
	REJECT("above U+10FFFF F4 90 80 80", "\"\xf4\x90\x80\x80\"",
	    "invalid UTF-8");
	REJECT("F5 lead byte", "\"\xf5\x80\x80\x80\"", "invalid UTF-8");
	REJECT("FF byte", "\"\xff\"", "invalid UTF-8");
	REJECT("lone continuation", "\"a\x80z\"", "invalid UTF-8");
	REJECT("truncated sequence", "\"\xe2\x82\"", "invalid UTF-8");
	REJECT("truncated at end", "\"\xe2\x82", "invalid UTF-8");
	REJECT("bad continuation", "\"\xc3\x28\"", "invalid UTF-8");
	REJECT("invalid UTF-8 outside a string", "[1,\xff]", "invalid UTF-8");
	REJECT("BOM", "\xef\xbb\xbf{}", "unexpected character");
	REJECT("raw NUL in string", "{\"a\":\"x\0y\"}", "NUL byte");
	REJECT("raw NUL outside", "{\"a\":1}\0", "NUL byte");
	REJECT("raw NUL between tokens", "[1,\0 2]", "NUL byte");
	REJECT("\\u0000 escape", "{\"a\":\"x\\u0000y\"}", "\\u0000");
	REJECT("\\u0000 in a key", "{\"a\\u0000\":1}", "\\u0000");
	REJECT("lone high surrogate", "\"\\ud800\"", "lone surrogate");
	REJECT("high then letter", "\"\\ud800\\u0041\"", "lone surrogate");
	REJECT("high then high", "\"\\ud800\\ud800\"", "lone surrogate");
	REJECT("lone low surrogate", "\"\\udc00x\"", "lone surrogate");
	REJECT("control char in string", "\"a\nb\"", "control character");
	REJECT("tab in string", "\"a\tb\"", "control character");

	j = ACCEPT("valid unicode", "{\"s\":\"h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c "
	    "\xf0\x9f\x98\x80 \\u00e9\\ud83d\\ude00 \xf4\x8f\xbf\xbf\"}");
	if (j != NULL)
		is_str(cJSON_GetObjectItemCaseSensitive(j, "s")->valuestring,
		    "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80 "
		    "\xc3\xa9\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
		    "unicode text and escapes decoded");
	j = ACCEPT("all simple escapes", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\"");
	if (j != NULL)
		is_str(j->valuestring, "\"\\/\b\f\n\r\t\x01", "escapes decoded");
	ACCEPT("U+EFFF E0..EF range", "\"\xee\xbf\xbf \xe0\xa0\x80 \xed\x9f\xbf\"");
}

static void
test_syntax(void)
{
	cJSON *j;

	REJECT("empty", "", "empty document");
	REJECT("only whitespace", "  \n", "unexpected end");
	REJECT("trailing garbage", "{\"a\":1} x", "after the document");
	REJECT("two documents", "{}{}", "after the document");
	REJECT("two numbers", "1 2", "after the document");
	REJECT("trailing comma in array", "[1,]", "unexpected character");
	REJECT("trailing comma in object", "{\"a\":1,}", "member name");
	REJECT("missing colon", "{\"a\" 1}", "expected ':'");
	REJECT("missing comma", "[1 2]", "expected ','");
	REJECT("unquoted key", "{a:1}", "member name");
	REJECT("single quotes", "['a']", "unexpected character");
	REJECT("unterminated string", "\"abc", "unterminated");
	REJECT("unterminated array", "[1,2", "unexpected end");
	REJECT("unterminated object", "{\"a\":", "unexpected end");
	REJECT("mismatched bracket", "[1}", "expected ','");
	REJECT("leading zero", "01", "after the document");
	REJECT("leading zero in array", "[01]", "expected ','");
	REJECT("plus sign", "+1", "unexpected character");
	REJECT("bare minus", "-", "invalid number");
	REJECT("trailing dot", "1.", "invalid number");
	REJECT("leading dot", ".5", "unexpected character");
	REJECT("empty exponent", "1e", "invalid number");
	REJECT("exponent sign only", "1e+", "invalid number");
	REJECT("hex number", "0x10", "after the document");
	REJECT("NaN", "NaN", "unexpected character");
	REJECT("Infinity", "[Infinity]", "unexpected character");
	REJECT("long number", "1234567890123456789012345678901234567890"
	    "123456789012345678901234567890", "number too long");
	REJECT("bad literal", "tru", "invalid literal");
	REJECT("capital literal", "True", "unexpected character");
	REJECT("bad escape", "\"\\x\"", "invalid escape");
	REJECT("short \\u", "\"\\u12\"", "invalid \\u escape");
	REJECT("comment", "{} // c", "after the document");

	j = ACCEPT("numbers", " [0, -0, 1.5, -2.25e+3, 1E-2, 123456789] ");
	if (j != NULL)
		ok(cJSON_GetArraySize(j) == 6 &&
		    cJSON_GetArrayItem(j, 3)->valuedouble == -2250.0,
		    "numbers read back");
	j = ACCEPT("scalar string", "\"x\"");
	ok(j != NULL && cJSON_IsString(j), "a scalar document is allowed");
	ACCEPT("literals", "[true,false,null]");
	ACCEPT("empty containers", "{\"a\":[],\"b\":{},\"c\":[{}]}");
	ACCEPT("whitespace everywhere", "\t{ \"a\" :\r\n[ 1 , 2 ] }\n");
	/* n bytes, not up to a NUL: the caller's buffer need not end in one */
	j = accept("length-bounded input", "[1,2]garbage", 5);
	ok(j != NULL && cJSON_GetArraySize(j) == 2, "only n bytes are parsed");
}

static void
test_accessors(void)
{
	static const char doc[] = "{\"s\":\"text\",\"n\":null,\"i\":42,"
	    "\"f\":1.5,\"big\":1e300,\"whole\":3.0,\"b\":true,\"o\":{\"x\":1},"
	    "\"a\":[1,2],\"dup\":1,\"dup\":\"last\",\"Case\":1,\"neg\":-7}";
	cJSON *j = ACCEPT("accessor document", doc);
	const char *s = NULL;
	const cJSON *item = NULL;
	int64_t iv = 0;
	double dv = 0;
	bool bv = false;
	struct err e;

	if (j == NULL)
		return;
	ok(json_get_string(j, "s", true, &s, &e) == JSON_GET_FOUND, "string found");
	is_str(s, "text", "string value");
	ok(json_get_string(j, "missing", true, &s, &e) == JSON_GET_ERROR &&
	    e.status == 422, "required and absent: error");
	is_str(e.msg, "Required field 'missing' is missing from your request.",
	    "missing message");
	ok(json_get_string(j, "n", true, &s, &e) == JSON_GET_ERROR &&
	    e.status == 422, "required and null: error");
	is_str(e.msg, "Field 'n' has an incorrect data type.", "null message");
	ok(json_get_string(j, "i", true, &s, &e) == JSON_GET_ERROR &&
	    e.status == 422, "wrong type: error");
	is_str(e.msg, "Field 'i' has an incorrect data type.", "type message");
	ok(json_get_string(j, "i", false, &s, &e) == JSON_GET_ERROR,
	    "wrong type is an error even when optional");
	s = "untouched";
	ok(json_get_string(j, "missing", false, &s, &e) == JSON_GET_ABSENT,
	    "optional and absent");
	ok(json_get_string(j, "n", false, &s, &e) == JSON_GET_NULL,
	    "optional and null");
	is_str(s, "untouched", "out untouched when absent or null");
	ok(json_get_string(j, "dup", true, &s, &e) == JSON_GET_FOUND,
	    "duplicate member");
	is_str(s, "last", "the last duplicate wins (as in Python)");
	ok(json_get_int(j, "case", false, &iv, &e) == JSON_GET_ABSENT,
	    "member names are case-sensitive");
	ok(json_get_string(NULL, "s", false, &s, &e) == JSON_GET_ABSENT,
	    "NULL object: absent");
	ok(json_get_string(cJSON_GetObjectItemCaseSensitive(j, "a"), "s", true,
	    &s, &e) == JSON_GET_ERROR, "array is not an object: required fails");

	ok(json_get_int(j, "i", true, &iv, &e) == JSON_GET_FOUND && iv == 42,
	    "int");
	ok(json_get_int(j, "neg", true, &iv, &e) == JSON_GET_FOUND && iv == -7,
	    "negative int");
	ok(json_get_int(j, "whole", true, &iv, &e) == JSON_GET_FOUND && iv == 3,
	    "3.0 is an integer");
	ok(json_get_int(j, "f", true, &iv, &e) == JSON_GET_ERROR &&
	    e.status == 422, "1.5 is not an integer");
	ok(json_get_int(j, "big", true, &iv, &e) == JSON_GET_ERROR,
	    "1e300 is out of range");
	ok(json_get_int(j, "s", true, &iv, &e) == JSON_GET_ERROR,
	    "string is not an integer");
	ok(json_get_number(j, "f", true, &dv, &e) == JSON_GET_FOUND && dv == 1.5,
	    "number");
	ok(json_get_bool(j, "b", true, &bv, &e) == JSON_GET_FOUND && bv,
	    "bool");
	ok(json_get_bool(j, "i", true, &bv, &e) == JSON_GET_ERROR,
	    "42 is not a bool");
	ok(json_get_object(j, "o", true, &item, &e) == JSON_GET_FOUND &&
	    cJSON_IsObject(item), "object");
	ok(json_get_object(j, "a", true, &item, &e) == JSON_GET_ERROR,
	    "array is not an object");
	ok(json_get_array(j, "a", true, &item, &e) == JSON_GET_FOUND &&
	    cJSON_GetArraySize(item) == 2, "array");
	ok(json_get_array(j, "o", false, &item, &e) == JSON_GET_ERROR,
	    "object is not an array");
}

static void
test_print(void)
{
	cJSON *j = ACCEPT("printable", "{ \"a\" : [1, 2.5, \"x\\ny\"], \"b\": {} }");
	cJSON *built;
	struct buf b = BUF_INIT;

	if (j != NULL)
		is_str(json_print(arena, j), "{\"a\":[1,2.5,\"x\\ny\"],\"b\":{}}",
		    "compact print");
	is_str(json_print(arena, NULL), "null", "NULL prints as null");
	built = json_adopt(arena, cJSON_CreateObject());
	cJSON_AddStringToObject(built, "detail", "Not Found");
	json_append(&b, built);
	is_str(buf_cstr(&b), "{\"detail\":\"Not Found\"}",
	    "adopted tree appended to a buffer");
	buf_free(&b);
	ok(json_adopt(arena, NULL) == NULL, "adopting NULL is harmless");
}

/* The kind json_read reports for s: what routes_read_json_object maps. */
static void
expect_kind(const char *name, const char *s, size_t n, int max_depth,
    enum json_error want)
{
	struct err e;
	cJSON *j = (cJSON *)1;
	enum json_error k;

	err_clear(&e);
	k = json_read(arena, s, n, max_depth, &j, &e);
	ok(k == want && (k == JSON_OK) == (j != NULL) &&
	    (k == JSON_OK || e.status == 400), "%s: kind %d", name, (int)want);
	if (k != want)
		printf("#   got kind %d (%s)\n", (int)k, e.msg);
}

#define KIND(name, lit, want) \
	expect_kind(name, lit, sizeof(lit) - 1, JSON_DEFAULT_MAX_DEPTH, want)

static void
test_kinds(void)
{
	char *s;

	KIND("an object", "{\"a\":1}", JSON_OK);
	KIND("a scalar", "1", JSON_OK);
	KIND("a missing brace", "{\"a\":1", JSON_ERROR_SYNTAX);
	KIND("an empty body", "", JSON_ERROR_SYNTAX);
	KIND("trailing data", "{} x", JSON_ERROR_SYNTAX);
	KIND("a bad literal", "[tru]", JSON_ERROR_SYNTAX);
	KIND("a control character", "[\"a\x01\"]", JSON_ERROR_SYNTAX);
	KIND("a bad \\u escape", "[\"\\u12g4\"]", JSON_ERROR_SYNTAX);
	KIND("a long number", "[1234567890123456789012345678901234567890"
	    "123456789012345678901234567890]", JSON_ERROR_SYNTAX);
	KIND("invalid UTF-8 in a string", "{\"a\":\"\xff\xfe\"}",
	    JSON_ERROR_ENCODING);
	KIND("invalid UTF-8 between tokens", "{\"a\":1\xc3}", JSON_ERROR_ENCODING);
	KIND("invalid UTF-8 as a value", "[\xe2\x82]", JSON_ERROR_ENCODING);
	KIND("an overlong sequence", "[\"\xc0\xaf\"]", JSON_ERROR_ENCODING);
	KIND("a NUL byte in a string", "[\"a\0b\"]", JSON_ERROR_ENCODING);
	KIND("a NUL byte after the document", "{}\0", JSON_ERROR_ENCODING);
	KIND("a \\u0000 escape", "[\"\\u0000\"]", JSON_ERROR_ENCODING);
	KIND("a lone low surrogate", "[\"\\udc00\"]", JSON_ERROR_ENCODING);
	KIND("a lone high surrogate", "[\"\\ud800x\"]", JSON_ERROR_ENCODING);
	s = nested(65, '[', ']', "1");
	expect_kind("65 nested arrays", s, strlen(s), 64, JSON_ERROR_DEPTH);
	free(s);
	ok(json_parse(arena, "{\"a\":1\xc3}", 8, 0, &(struct err){ 0 }) == NULL,
	    "json_parse refuses what json_read refuses");
}

static void
test_utf8_prefix(void)
{
	/* e-acute (2 bytes), the euro sign (3), a bicycle (4), then ASCII */
	static const char t[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\xb2" "ab";
	size_t n = sizeof(t) - 1;

	is_int(json_utf8_prefix(t, n, 0), 0, "0 characters: 0 bytes");
	is_int(json_utf8_prefix(t, n, 1), 2, "1 character: the 2-byte e-acute");
	is_int(json_utf8_prefix(t, n, 2), 5, "2 characters: and the 3-byte euro");
	is_int(json_utf8_prefix(t, n, 3), 9, "3 characters: and the 4-byte bicycle");
	is_int(json_utf8_prefix(t, n, 4), 10, "4 characters: and one ASCII letter");
	is_int(json_utf8_prefix(t, n, 100), n, "more characters than the text: all of it");
	is_int(json_utf8_prefix(t + 2, 3, 1), 3, "a 3-byte sequence is never cut");
	is_int(json_utf8_prefix(t, 4, 2), 3, "a truncated sequence counts byte by byte");
	is_int(json_utf8_prefix("\xff\xfe" "a", 3, 2), 2, "a stray byte is one character");
	is_int(json_utf8_prefix("abc", 3, 2), 2, "ASCII: one byte per character");
}

int
main(void)
{
	arena = arena_create(0);
	test_depth();
	test_encoding();
	test_syntax();
	test_accessors();
	test_print();
	test_kinds();
	test_utf8_prefix();
	arena_destroy(arena);   /* frees every tree (leak-checked under ASan) */
	return tap_done();
}
