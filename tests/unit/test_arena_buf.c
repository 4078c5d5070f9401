/*
 * test_arena_buf.c -- unit tests of lib/arena.c and lib/buf.c: alignment,
 * growth, big blocks, cleanups in reverse order, sprintf; buffer append,
 * consume, compaction, JSON escaping, empty buffers.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "tests/unit/tap.h"

static char order[8];
static int norder;

static void
note(void *p)
{
	order[norder++] = *(const char *)p;
}

int
main(void)
{
	struct arena *a = arena_create(64);
	struct buf b = BUF_INIT;
	char *p, *big, *s;
	int i, aligned = 1;
	static char c1 = '1', c2 = '2', c3 = '3';

	for (i = 0; i < 1000; i++) {
		p = arena_alloc(a, (size_t)(i % 37) + 1);
		if ((uintptr_t)p % 16 != 0)
			aligned = 0;
		memset(p, 0xab, (size_t)(i % 37) + 1);
	}
	ok(aligned, "arena: every allocation is 16-byte aligned across block growth");
	big = arena_alloc(a, 1 << 20);
	memset(big, 1, 1 << 20);
	ok(big != NULL, "arena: a 1 MiB allocation gets its own block");
	p = arena_zalloc(a, 100);
	for (i = 0; i < 100 && p[i] == 0; i++)
		;
	is_int(i, 100, "arena_zalloc zeroes");
	s = arena_sprintf(a, "%s-%d-%s", "x", 42, "y");
	is_str(s, "x-42-y", "arena_sprintf");
	is_str(arena_strndup(a, "abcdef", 3), "abc", "arena_strndup");
	ok(arena_strdup(a, NULL) == NULL, "arena_strdup(NULL) is NULL");
	ok(arena_used(a) >= (1 << 20), "arena_used counts what was handed out");
	arena_cleanup(a, note, &c1);
	arena_cleanup(a, note, &c2);
	arena_cleanup(a, note, &c3);
	arena_destroy(a);
	order[norder] = '\0';
	is_str(order, "321", "cleanups run newest first");
	arena_destroy(NULL);
	ok(1, "arena_destroy(NULL) is a no-op");

	ok(buf_rptr(&b) != NULL && buf_rlen(&b) == 0, "an empty buffer has a valid read pointer");
	buf_puts(&b, "hello ");
	buf_printf(&b, "%s %d", "world", 7);
	is_str(buf_cstr(&b), "hello world 7", "append and printf");
	buf_consume(&b, 6);
	is_str(buf_cstr(&b), "world 7", "consume advances the read side");
	for (i = 0; i < 10000; i++)
		buf_putc(&b, 'x');
	is_int((long long)buf_rlen(&b), 7 + 10000, "growth keeps the unread bytes");
	buf_consume(&b, buf_rlen(&b));
	is_int((long long)buf_rlen(&b), 0, "consuming everything empties it");
	buf_reset(&b);
	buf_json_escape(&b, "a\"b\\c\n\x01\x7f", 8);
	is_str(buf_cstr(&b), "a\\\"b\\\\c\\n\\u0001\\u007f", "JSON escaping of quotes, controls and DEL");
	buf_reset(&b);
	buf_json_string(&b, NULL);
	buf_putc(&b, ' ');
	buf_json_string(&b, "ü");
	is_str(buf_cstr(&b), "null \"ü\"", "buf_json_string: null and UTF-8 kept");
	buf_free(&b);
	ok(b.data == NULL && b.len == 0, "buf_free resets");
	return tap_done();
}
