/*
 * kb.h -- the pure part of the local knowledge base: which files are
 * accepted, whether their bytes are text (UTF-8, no NUL), how a text is
 * cut into chunks, and how a source path is normalized.  No I/O, no
 * database, no allocation but in the caller's arena: any thread, and the
 * unit test (tests/unit/test_kb.c) links it alone.  Reading files and
 * storing chunks is lib/kbindex.c; the schema is sql/007_knowledge_base.sql.
 */
#ifndef INGEN_KB_H
#define INGEN_KB_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

/* The smallest chunk limit the chunker honours (kb.chunk_max_chars has a
 * higher lower bound in lib/config_keys.c); smaller limits are raised. */
#define KB_CHUNK_MIN_CHARS 16

/* What kb_text_check found. */
enum kb_text {
	KB_TEXT_OK = 0,
	KB_TEXT_BINARY,        /* a NUL byte */
	KB_TEXT_BAD_UTF8,      /* an invalid, overlong, surrogate or out-of-range
	                        * sequence, or one cut short by the end */
};

/* One chunk: NUL-terminated, trimmed, never empty; in the caller's arena. */
struct kb_chunk {
	const char *text;
	size_t len;            /* bytes */
	size_t chars;          /* UTF-8 characters */
};

/*
 * True if `name` (a file name or path) ends in ".md" or ".txt", in any
 * case.  Pure.
 */
bool kb_file_accepted(const char *name);

/*
 * Check that p[0..n) is text: no NUL byte and valid UTF-8 (RFC 3629: no
 * overlong forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF).
 * On a problem *offset (may be NULL) receives the byte offset of the NUL
 * or of the first byte of the bad sequence; a NUL is reported even when
 * bad UTF-8 comes before it only if it comes first.  Pure.
 */
enum kb_text kb_text_check(const char *p, size_t n, size_t *offset);

/* True if p[0..n) is valid UTF-8 (NUL bytes allowed).  Pure. */
bool kb_utf8_valid(const char *p, size_t n, size_t *offset);

/*
 * The longest prefix of p[0..n) of at most max bytes that ends on a
 * character boundary (p must be valid UTF-8).  Pure.
 */
size_t kb_utf8_prefix(const char *p, size_t n, size_t max);

/*
 * Cut a text (valid UTF-8, n bytes; a leading byte-order mark is skipped;
 * CRLF and CR line ends are read as LF) into chunks of at most max_chars
 * characters where the text allows:
 *   - paragraphs are separated by one or more blank lines (empty or only
 *     white space), trimmed; the lines inside keep their LF;
 *   - a paragraph longer than max_chars is cut after the last sentence end
 *     ('.', '!' or '?' followed by white space) that keeps the piece within
 *     the limit; a piece with no such end is cut at the last white space
 *     within the limit, and as a last resort at the limit, on a character
 *     boundary (never inside a character);
 *   - every piece is trimmed and none is empty.
 * *out receives an array of *n chunks in the arena (NULL and 0 for a text
 * of only white space).  max_chars below KB_CHUNK_MIN_CHARS is raised to
 * it.  Pure.
 */
void kb_chunk_text(const char *text, size_t n, int max_chars, struct arena *a,
    struct kb_chunk **out, size_t *nout);

/*
 * The source name of a path as the knowledge base stores it: "./" parts,
 * repeated slashes and a trailing slash removed ("./docs//a.md" ->
 * "docs/a.md", "/srv/kb/" -> "/srv/kb"); "." stays "." .  No file system
 * access (".." is kept: it cannot be removed without one).  Arena memory.
 */
char *kb_source_normalize(const char *path, struct arena *a);

#endif
