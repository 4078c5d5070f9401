/*
 * fuzz_sse.c -- libFuzzer target for the server-sent events parser
 * (lib/sse.c), fed whole and in an input-chosen split.
 *
 * Besides "no crash": both feeds dispatch the same events with the same
 * data, each event's data fits max_event, and every dispatched string is
 * NUL-terminated at its stated length.  The first byte picks the split point
 * and a small max_event so the cap path is reached.  Built only by
 * `make check` when clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	struct buf all;
	size_t max;
};

static int
on_event(void *arg, const struct sse_event *ev)
{
	struct seen *s = arg;

	if (ev->data_len > s->max || ev->data[ev->data_len] != '\0' ||
	    strlen(ev->data) > ev->data_len)
		abort();
	buf_puts(&s->all, ev->event);
	buf_putc(&s->all, '\0');
	buf_append(&s->all, ev->data, ev->data_len);
	buf_putc(&s->all, '\0');
	return 0;
}

static int
run(const char *in, size_t n, size_t cut, size_t max, struct seen *s)
{
	struct sse_parser p;
	struct err e;
	int rc;

	s->max = max;
	sse_init(&p, max);
	rc = sse_feed(&p, in, cut, on_event, s, &e);
	if (rc == 0)
		rc = sse_feed(&p, in + cut, n - cut, on_event, s, &e);
	if (rc != 0 && e.status != 502)
		abort();
	sse_free(&p);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen whole = { BUF_INIT, 0 }, split = { BUF_INIT, 0 };
	size_t max, cut, n;
	char *copy;
	int rc1, rc2;

	if (size < 1)
		return 0;
	max = (data[0] & 0x80) ? 64 : SSE_DEFAULT_MAX_EVENT;
	n = size - 1;
	cut = n ? data[0] % (n + 1) : 0;
	copy = malloc(n ? n : 1);
	memcpy(copy, data + 1, n);
	rc1 = run(copy, n, n, max, &whole);
	rc2 = run(copy, n, cut, max, &split);
	/* with the cap the split may fail at a different event; without, never */
	if (max == SSE_DEFAULT_MAX_EVENT && (rc1 != rc2 ||
	    buf_rlen(&whole.all) != buf_rlen(&split.all) ||
	    memcmp(buf_cstr(&whole.all), buf_cstr(&split.all),
	    buf_rlen(&whole.all)) != 0))
		abort();
	buf_free(&whole.all);
	buf_free(&split.all);
	free(copy);
	return 0;
}
