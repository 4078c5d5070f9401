/*
 * test_kb.c -- the pure part of the knowledge base (lib/kb.c): the file
 * filter, the UTF-8 and NUL checks, the chunker (blank lines, CRLF, long
 * paragraphs, sentences and words longer than the limit, multibyte
 * characters at the cut, empty text) and source names.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/kb.h"
#include "tests/unit/tap.h"

static struct kb_chunk *
chunk(struct arena *a, const char *text, int max, size_t *n)
{
	struct kb_chunk *c;

	kb_chunk_text(text, strlen(text), max, a, &c, n);
	return c;
}

/* Every chunk is within max characters, trimmed, non-empty, valid UTF-8. */
static int
all_sane(const struct kb_chunk *c, size_t n, size_t max)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (c[i].len == 0 || c[i].chars > max ||
		    !kb_utf8_valid(c[i].text, c[i].len, NULL) ||
		    c[i].text[0] == ' ' || c[i].text[c[i].len - 1] == ' ' ||
		    strlen(c[i].text) != c[i].len)
			return 0;
	}
	return 1;
}

static void
test_filter(void)
{
	ok(kb_file_accepted("a.md"), ".md accepted");
	ok(kb_file_accepted("dir/NOTES.TXT"), ".TXT accepted (case-insensitive)");
	ok(kb_file_accepted("x.Md"), ".Md accepted");
	ok(!kb_file_accepted("a.json"), ".json refused");
	ok(!kb_file_accepted("md"), "a bare md refused");
	ok(!kb_file_accepted(".md"), "a name that is only .md refused");
	ok(!kb_file_accepted("a.md.bak"), "a.md.bak refused");
}

static void
test_utf8(void)
{
	size_t off = 99;

	ok(kb_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, NULL),
	    "2-, 3- and 4-byte characters are valid");
	ok(!kb_utf8_valid("ab\xc0\xaf", 4, &off) && off == 2,
	    "overlong C0 AF refused at offset 2");
	ok(!kb_utf8_valid("\xe0\x80\xaf", 3, &off) && off == 0, "overlong E0 80 AF refused");
	ok(!kb_utf8_valid("\xf0\x80\x80\xaf", 4, &off), "overlong F0 80 80 AF refused");
	ok(!kb_utf8_valid("x\xed\xa0\x80", 4, &off) && off == 1,
	    "surrogate U+D800 refused at offset 1");
	ok(!kb_utf8_valid("\xf4\x90\x80\x80", 4, &off), "above U+10FFFF refused");
	ok(!kb_utf8_valid("\xf5\x80\x80\x80", 4, &off), "F5 lead byte refused");
	ok(!kb_utf8_valid("abc\x80", 4, &off) && off == 3, "a lone continuation byte refused");
	ok(!kb_utf8_valid("caf\xc3", 4, &off) && off == 3, "a sequence cut by the end refused");
	ok(!kb_utf8_valid("caf\xe9 ok", 7, &off) && off == 3, "Latin-1 e-acute refused at 3");
	ok(kb_utf8_valid("\xed\x9f\xbf\xee\x80\x80", 6, NULL), "U+D7FF and U+E000 valid");

	is_int(kb_text_check("hello\n", 6, &off), KB_TEXT_OK, "text is ok");
	is_int(kb_text_check("he\0llo", 6, &off), KB_TEXT_BINARY, "a NUL is binary");
	is_int(off, 2, "at offset 2");
	is_int(kb_text_check("\xff\0", 2, &off), KB_TEXT_BAD_UTF8, "bad UTF-8 before a NUL");
	is_int(off, 0, "at offset 0");
	is_int(kb_text_check("", 0, &off), KB_TEXT_OK, "an empty file is text");

	is_int(kb_utf8_prefix("ab\xc3\xa9", 4, 3), 2, "prefix does not cut a 2-byte char");
	is_int(kb_utf8_prefix("\xe2\x82\xac\xe2\x82\xac", 6, 5), 3,
	    "prefix does not cut a 3-byte char");
	is_int(kb_utf8_prefix("abc", 3, 10), 3, "a short text is whole");
}

static void
test_paragraphs(void)
{
	struct arena *a = arena_create(0);
	struct kb_chunk *c;
	size_t n;

	c = chunk(a, "First line\nsecond line.\n\n\n  \t \nSecond para.\n\nThird", 2000, &n);
	is_int(n, 3, "three paragraphs on blank and white-space-only lines");
	is_str(c[0].text, "First line\nsecond line.", "lines inside a paragraph keep their LF");
	is_str(c[1].text, "Second para.", "second paragraph");
	is_str(c[2].text, "Third", "last paragraph without a newline");

	c = chunk(a, "One.\r\n\r\nTwo\r\nlines\r\n\r\n\r\n", 2000, &n);
	is_int(n, 2, "CRLF: two paragraphs");
	is_str(c[1].text, "Two\nlines", "CRLF read as LF");

	c = chunk(a, "Mac\rstyle\r\rends", 2000, &n);
	is_int(n, 2, "lone CR as line end");

	c = chunk(a, "\xef\xbb\xbfWith a BOM", 2000, &n);
	is_int(n, 1, "BOM: one chunk");
	is_str(c[0].text, "With a BOM", "the byte-order mark is not text");

	c = chunk(a, "   \n\t\n", 2000, &n);
	is_int(n, 0, "only white space: no chunk");
	c = chunk(a, "", 2000, &n);
	is_int(n, 0, "empty text: no chunk");
	ok(c == NULL, "and no array");
	arena_destroy(a);
}

static void
test_long(void)
{
	struct arena *a = arena_create(0);
	struct kb_chunk *c;
	char big[4096];
	size_t n, i, len;

	/* sentences of 30 characters ("Sentence number NN is here ok." ) */
	big[0] = '\0';
	for (i = 0; i < 20; i++) {
		len = strlen(big);
		snprintf(big + len, sizeof(big) - len, "Sentence number %02zu is here ok. ", i);
	}
	c = chunk(a, big, 100, &n);
	ok(n >= 7 && all_sane(c, n, 100), "a long paragraph is cut within 100 characters (%zu)", n);
	ok(c[0].text[c[0].len - 1] == '.', "cut after a sentence end");
	is_int(c[0].chars, 92, "three sentences fit in 100");
	ok(strncmp(c[1].text, "Sentence number 03", 18) == 0, "the next piece starts with the next sentence");

	/* one sentence longer than the limit: cut at white space */
	big[0] = '\0';
	for (i = 0; i < 40; i++)
		strcat(big, "word ");
	c = chunk(a, big, 22, &n);
	ok(all_sane(c, n, 22), "a sentence longer than the limit: pieces within 22");
	is_str(c[0].text, "word word word word", "cut at the last white space within the limit");

	/* no white space at all: cut at the limit */
	memset(big, 'x', 50);
	big[50] = '\0';
	c = chunk(a, big, 16, &n);
	is_int(n, 4, "50 x at 16: four pieces");
	is_int(c[0].len, 16, "cut at the limit");
	is_int(c[3].len, 2, "the rest");

	/* multibyte characters at the cut: 20 x U+20AC (3 bytes each) */
	big[0] = '\0';
	for (i = 0; i < 20; i++)
		strcat(big, "\xe2\x82\xac");
	c = chunk(a, big, 16, &n);
	is_int(n, 2, "20 euro signs at 16 characters: two pieces");
	is_int(c[0].chars, 16, "16 characters in the first");
	is_int(c[0].len, 48, "48 bytes: no character cut");
	ok(all_sane(c, n, 16), "both valid UTF-8");

	/* a 2-byte character across the byte limit: counted as one */
	strcpy(big, "aaaaaaaaaaaaaaa\xc3\xa9\xc3\xa9zz");
	c = chunk(a, big, 16, &n);
	is_int(n, 2, "a character straddling the limit");
	is_int(c[0].len, 17, "first piece: 15 a and one e-acute (17 bytes)");
	is_str(c[1].text, "\xc3\xa9zz", "the rest starts on a character");

	/* '!' and '?' end sentences too; a '.' inside a word does not */
	strcpy(big, "Is it v1.2 or not? Yes it is! And then some more words follow here.");
	c = chunk(a, big, 30, &n);
	is_str(c[0].text, "Is it v1.2 or not? Yes it is!", "cut after '!' and '?', not at v1.2");
	ok(all_sane(c, n, 30), "all within 30");
	arena_destroy(a);
}

static void
test_source(void)
{
	struct arena *a = arena_create(0);

	is_str(kb_source_normalize("./docs//a.md", a), "docs/a.md", "./ and // removed");
	is_str(kb_source_normalize("/srv/kb/", a), "/srv/kb", "trailing slash removed");
	is_str(kb_source_normalize("a/./b/../c.txt", a), "a/b/../c.txt", ".. kept");
	is_str(kb_source_normalize("./", a), ".", "./ is .");
	is_str(kb_source_normalize("//x", a), "/x", "absolute stays absolute");
	arena_destroy(a);
}

int
main(void)
{
	test_filter();
	test_utf8();
	test_paragraphs();
	test_long();
	test_source();
	return tap_done();
}
