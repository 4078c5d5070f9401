/*
 * arena.c -- bump allocation in chained blocks, with a cleanup list.
 * An arena never frees single allocations; it is meant to die with its
 * request.  Large allocations get a block of their own.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/xmalloc.h"

#define ARENA_ALIGN        16
#define ARENA_DEFAULT_SIZE 4096

struct arena_block {
	struct arena_block *next;
	size_t size;
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena_cleanup {
	struct arena_cleanup *next;
	void (*fn)(void *);
	void *data;
};

struct arena {
	struct arena_block *head;     /* current block, others chained behind */
	struct arena_cleanup *cleanups;
	size_t block_size;
	size_t total;
};

static struct arena_block *
arena_block_new(size_t size)
{
	struct arena_block *b = xmalloc(sizeof(*b) + size);

	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

struct arena *
arena_create(size_t first_block)
{
	struct arena *a = xcalloc(1, sizeof(*a));

	a->block_size = first_block ? first_block : ARENA_DEFAULT_SIZE;
	a->head = arena_block_new(a->block_size);
	return a;
}

void
arena_destroy(struct arena *a)
{
	struct arena_cleanup *c;
	struct arena_block *b, *next;

	if (a == NULL)
		return;
	/* cleanups first: they may still read arena memory */
	while ((c = a->cleanups) != NULL) {
		a->cleanups = c->next;
		c->fn(c->data);
	}
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

void *
arena_alloc(struct arena *a, size_t size)
{
	struct arena_block *b = a->head, *nb;
	size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

	if (need == 0)
		need = ARENA_ALIGN;
	a->total += need;
	if (b->size - b->used >= need) {
		void *p = b->data + b->used;
		b->used += need;
		return p;
	}
	if (need > a->block_size / 4) {
		/* a big one gets its own block behind the current one */
		nb = arena_block_new(need);
		nb->used = need;
		nb->next = b->next;
		b->next = nb;
		return nb->data;
	}
	if (a->block_size < 64 * 1024)
		a->block_size *= 2;
	nb = arena_block_new(a->block_size);
	nb->next = b;
	a->head = nb;
	nb->used = need;
	return nb->data;
}

void *
arena_zalloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);

	memset(p, 0, size);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *
arena_vsprintf(struct arena *a, const char *fmt, va_list ap)
{
	va_list ap2;
	char *p;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		n = 0;
	p = arena_alloc(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *
arena_sprintf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = arena_vsprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void
arena_cleanup(struct arena *a, void (*fn)(void *), void *data)
{
	struct arena_cleanup *c = arena_alloc(a, sizeof(*c));

	c->fn = fn;
	c->data = data;
	c->next = a->cleanups;
	a->cleanups = c;
}

size_t
arena_used(const struct arena *a)
{
	return a->total;
}
