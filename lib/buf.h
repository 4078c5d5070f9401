/*
 * buf.h -- a growable byte buffer with a read cursor.
 *
 * Used for connection input/output and for building bodies.  Data lives in
 * [data + off, data + len); buf_consume() advances `off` and compacts lazily.
 * The buffer owns its heap memory; buf_free() releases it.  Not thread-safe.
 */
#ifndef INGEN_BUF_H
#define INGEN_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "lib/err.h"

struct buf {
	char *data;
	size_t off;    /* start of unread bytes */
	size_t len;    /* end of valid bytes */
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0, 0 }

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);                 /* empty it, keep memory */
void buf_reserve(struct buf *b, size_t extra);  /* room for `extra` more */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) ING_PRINTF(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) ING_PRINTF(2, 0);
/* Append s as the inside of a JSON string (quotes not included). */
void buf_json_escape(struct buf *b, const char *s, size_t n);
/* Append "s" as a complete JSON string, or null when s is NULL. */
void buf_json_string(struct buf *b, const char *s);
void buf_consume(struct buf *b, size_t n);      /* drop n unread bytes */
/* Unread bytes and their count. */
static inline char *buf_rptr(const struct buf *b)
{
	static char buf_empty[1];   /* an unwritten buffer has no data pointer */

	return b->data != NULL ? b->data + b->off : buf_empty;
}
static inline size_t buf_rlen(const struct buf *b) { return b->len - b->off; }
/* NUL-terminate the contents (not counted in len) and return them. */
char *buf_cstr(struct buf *b);

#endif
