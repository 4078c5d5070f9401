/*
 * kb.c -- the pure part of the local knowledge base (kb.h): the file
 * filter, the text check (UTF-8 and NUL), the chunker and the source
 * names.
 *
 * It owns what a chunk is.  It never reads a file, never touches the
 * database and allocates only in the caller's arena, so the same cut is
 * made by `ingen kb add`, by the server's indexing of kb.directory, and by
 * the unit test.
 */
#include "autoconfig.h"

#include <string.h>
#include <strings.h>

#include "lib/arena.h"
#include "lib/kb.h"

bool
kb_file_accepted(const char *name)
{
	size_t n = strlen(name);

	return (n > 3 && strcasecmp(name + n - 3, ".md") == 0) ||
	    (n > 4 && strcasecmp(name + n - 4, ".txt") == 0);
}

/*
 * Length of the valid UTF-8 sequence at p[0..n), or 0 when it is invalid
 * (RFC 3629 table 4: the second byte's range excludes overlongs and
 * surrogates).
 */
static size_t
kb_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;        /* overlong below U+0800 */
		else if (c == 0xED)
			hi = 0x9F;        /* U+D800..U+DFFF: surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;        /* overlong below U+10000 */
		else if (c == 0xF4)
			hi = 0x8F;        /* above U+10FFFF */
	} else {
		return 0;             /* continuation byte, C0, C1, F5..FF */
	}
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

bool
kb_utf8_valid(const char *s, size_t n, size_t *offset)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, len;

	while (i < n) {
		if ((len = kb_utf8_seq(p + i, n - i)) == 0) {
			if (offset != NULL)
				*offset = i;
			return false;
		}
		i += len;
	}
	return true;
}

enum kb_text
kb_text_check(const char *s, size_t n, size_t *offset)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, len;

	while (i < n) {
		if (p[i] == '\0') {
			if (offset != NULL)
				*offset = i;
			return KB_TEXT_BINARY;
		}
		if ((len = kb_utf8_seq(p + i, n - i)) == 0) {
			if (offset != NULL)
				*offset = i;
			return KB_TEXT_BAD_UTF8;
		}
		i += len;
	}
	return KB_TEXT_OK;
}

size_t
kb_utf8_prefix(const char *s, size_t n, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;

	if (n <= max)
		return n;
	/* step back over continuation bytes to the start of the character
	 * that would be cut */
	while (max > 0 && (p[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* White space as the chunker sees it: ASCII only (a no-break space is
 * part of the text). */
static bool
kb_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	    c == '\r';
}

static bool
kb_char_start(char c)
{
	return ((unsigned char)c & 0xC0) != 0x80;
}

static size_t
kb_chars(const char *p, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (kb_char_start(p[i]))
			k++;
	return k;
}

/* The growing array of chunks of one call. */
struct kb_out {
	struct arena *a;
	struct kb_chunk *v;
	size_t n, cap;
};

/* Append p[0..n) trimmed, unless it is empty then. */
static void
kb_emit(struct kb_out *o, const char *p, size_t n)
{
	struct kb_chunk *nv;

	while (n > 0 && kb_space(*p)) {
		p++;
		n--;
	}
	while (n > 0 && kb_space(p[n - 1]))
		n--;
	if (n == 0)
		return;
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 16;
		nv = arena_alloc(o->a, o->cap * sizeof(*nv));
		if (o->n > 0)
			memcpy(nv, o->v, o->n * sizeof(*nv));
		o->v = nv;
	}
	o->v[o->n].text = arena_strndup(o->a, p, n);
	o->v[o->n].len = n;
	o->v[o->n].chars = kb_chars(p, n);
	o->n++;
}

/*
 * Emit one paragraph p[0..n) (trimmed), cut into pieces of at most max
 * characters: after the last sentence end within the limit, else at the
 * last white space within it, else at the limit itself.
 */
static void
kb_split_paragraph(struct kb_out *o, const char *p, size_t n, size_t max)
{
	size_t i, k, cut, sentence, space;

	for (;;) {
		while (n > 0 && kb_space(*p)) {
			p++;
			n--;
		}
		if (n == 0)
			return;
		if (kb_chars(p, n) <= max) {
			kb_emit(o, p, n);
			return;
		}
		/* k = characters of p[0..i) */
		sentence = space = 0;
		for (i = 0, k = 0; i < n && k < max; i++) {
			if (!kb_char_start(p[i]))
				continue;
			if ((p[i] == '.' || p[i] == '!' || p[i] == '?') &&
			    i + 1 < n && kb_space(p[i + 1]))
				sentence = i + 1;          /* keeps k + 1 <= max */
			else if (kb_space(p[i]) && k > 0)
				space = i;
			k++;
		}
		/* i: the byte after `max` characters (a character boundary,
		 * since the loop stops on the start of the next one) */
		while (i < n && !kb_char_start(p[i]))
			i++;
		cut = sentence > 0 ? sentence : space > 0 ? space : i;
		kb_emit(o, p, cut);
		p += cut;
		n -= cut;
	}
}

/* Is p[0..n) a blank line (only white space)? */
static bool
kb_blank(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!kb_space(p[i]))
			return false;
	return true;
}

void
kb_chunk_text(const char *text, size_t n, int max_chars, struct arena *a,
    struct kb_chunk **out, size_t *nout)
{
	struct kb_out o = { a, NULL, 0, 0 };
	size_t max = max_chars < KB_CHUNK_MIN_CHARS ? KB_CHUNK_MIN_CHARS :
	    (size_t)max_chars;
	char *t;
	size_t i, m = 0, line, para = 0, end = 0;
	bool in_para = false;

	/* a leading byte-order mark is not text */
	if (n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
		text += 3;
		n -= 3;
	}
	/* CRLF and lone CR as LF, into a copy the chunks point into */
	t = arena_alloc(a, n + 1);
	for (i = 0; i < n; i++) {
		if (text[i] == '\r') {
			if (i + 1 < n && text[i + 1] == '\n')
				continue;
			t[m++] = '\n';
		} else {
			t[m++] = text[i];
		}
	}
	t[m] = '\0';

	/* paragraphs: runs of non-blank lines; [para, end) is the current one */
	for (line = 0; line <= m; ) {
		const char *nl = memchr(t + line, '\n', m - line);
		size_t next = nl != NULL ? (size_t)(nl - t) + 1 : m + 1;
		size_t len = (nl != NULL ? (size_t)(nl - t) : m) - line;

		if (kb_blank(t + line, len)) {
			if (in_para)
				kb_split_paragraph(&o, t + para, end - para, max);
			in_para = false;
		} else {
			if (!in_para)
				para = line;
			in_para = true;
			end = line + len;
		}
		line = next;
	}
	if (in_para)
		kb_split_paragraph(&o, t + para, end - para, max);
	*out = o.v;
	*nout = o.n;
}

char *
kb_source_normalize(const char *path, struct arena *a)
{
	size_t n = strlen(path), i = 0, m = 0;
	char *s = arena_alloc(a, n + 2);
	bool abs = n > 0 && path[0] == '/';

	if (abs)
		s[m++] = '/';
	while (i < n) {
		size_t j;

		while (i < n && path[i] == '/')
			i++;
		for (j = i; j < n && path[j] != '/'; j++)
			;
		if (j == i)
			break;
		if (!(j - i == 1 && path[i] == '.')) {
			if (m > 0 && s[m - 1] != '/')
				s[m++] = '/';
			memcpy(s + m, path + i, j - i);
			m += j - i;
		}
		i = j;
	}
	if (m == 0)
		s[m++] = '.';
	s[m] = '\0';
	return s;
}
