/*
 * test_sse.c -- unit tests of lib/sse.c: line endings in every split, BOM,
 * comments, multi-line data, event types, the size cap, callback stop.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/sse.h"
#include "tests/unit/tap.h"

struct collected {
	struct buf all;         /* "event|data\n" per event */
	int n;
	int stop_after;         /* return -1 after this many events (0 = never) */
};

static int
collect(void *arg, const struct sse_event *ev)
{
	struct collected *c = arg;

	buf_printf(&c->all, "%s|", ev->event);
	buf_append(&c->all, ev->data, ev->data_len);
	buf_putc(&c->all, '\n');
	c->n++;
	if (c->stop_after > 0 && c->n >= c->stop_after)
		return -1;
	return 0;
}

/* Feed `in` split at every position (and byte by byte); all must agree. */
static int
feed_all_splits(const char *in, size_t max_event, const char *want, int want_n)
{
	size_t len = strlen(in), cut, i;
	int good = 1;

	for (cut = 0; cut <= len; cut++) {
		struct sse_parser p;
		struct collected c = { BUF_INIT, 0, 0 };
		struct err e;

		sse_init(&p, max_event);
		if (sse_feed(&p, in, cut, collect, &c, &e) != 0 ||
		    sse_feed(&p, in + cut, len - cut, collect, &c, &e) != 0)
			good = 0;
		if (c.n != want_n || strcmp(buf_cstr(&c.all), want) != 0)
			good = 0;
		sse_free(&p);
		buf_free(&c.all);
	}
	{
		struct sse_parser p;
		struct collected c = { BUF_INIT, 0, 0 };
		struct err e;

		sse_init(&p, max_event);
		for (i = 0; i < len; i++)
			if (sse_feed(&p, in + i, 1, collect, &c, &e) != 0)
				good = 0;
		if (c.n != want_n || strcmp(buf_cstr(&c.all), want) != 0)
			good = 0;
		sse_free(&p);
		buf_free(&c.all);
	}
	return good;
}

int
main(void)
{
	struct sse_parser p;
	struct collected c = { BUF_INIT, 0, 0 };
	struct err e;
	char *big;

	ok(feed_all_splits("data: {\"a\":1}\n\ndata: [DONE]\n\n", 0,
	    "|{\"a\":1}\n|[DONE]\n", 2), "LF frames in any split");
	ok(feed_all_splits("data: x\r\n\r\ndata: y\r\n\r\n", 0,
	    "|x\n|y\n", 2), "CRLF frames in any split");
	ok(feed_all_splits("data: x\r\rdata: y\r\r", 0, "|x\n|y\n", 2),
	    "CR-only frames in any split");
	ok(feed_all_splits("\xEF\xBB\xBF" "data: bom\n\n", 0, "|bom\n", 1),
	    "a leading BOM is skipped");
	ok(feed_all_splits("\xEF\xBB" "data: x\n\n", 0, "", 0),
	    "a partial BOM makes a bogus field name, not a crash");
	ok(feed_all_splits(": keep-alive\n\ndata: a\n: note\ndata: b\n\n", 0,
	    "|a\nb\n", 1), "comments ignored, data lines joined by LF");
	ok(feed_all_splits("event: usage\ndata: 1\n\ndata: 2\n\n", 0,
	    "usage|1\n|2\n", 2), "event type applies to one event only");
	ok(feed_all_splits("data:nospace\n\ndata:  two\n\n", 0,
	    "|nospace\n| two\n", 2), "only one leading space is stripped");
	ok(feed_all_splits("data\n\n", 0, "|\n", 1),
	    "a field without colon is a field with an empty value");
	ok(feed_all_splits("id: 7\nretry: 10\nfoo: bar\n\n", 0, "", 0),
	    "an event without data is not dispatched");
	ok(feed_all_splits("data: a\n", 0, "", 0),
	    "an unterminated event is not dispatched");

	sse_init(&p, 0);
	ok(sse_feed(&p, "data: a\n", 8, collect, &c, &e) == 0 && sse_pending(&p),
	    "pending after an unterminated event");
	ok(sse_feed(&p, "\n", 1, collect, &c, &e) == 0 && !sse_pending(&p),
	    "nothing pending after the blank line");
	sse_free(&p);
	buf_free(&c.all);

	/* the cap */
	big = malloc(300);
	memset(big, 'x', 300);
	memcpy(big, "data: ", 6);
	sse_init(&p, 100);
	memset(&c, 0, sizeof(c));
	err_clear(&e);
	ok(sse_feed(&p, big, 300, collect, &c, &e) == -1 && e.status == 502,
	    "an event over max_event is an error (502)");
	ok(sse_feed(&p, "\n\n", 2, collect, &c, &e) == -1,
	    "the parser refuses input after an error");
	sse_free(&p);
	free(big);

	/* data accumulated across lines counts against the cap too */
	sse_init(&p, 20);
	err_clear(&e);
	ok(sse_feed(&p, "data: 0123456789\ndata: 0123456789\n", 34, collect,
	    &c, &e) == -1, "joined data over max_event is an error");
	sse_free(&p);

	/* a callback that stops */
	sse_init(&p, 0);
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	err_clear(&e);
	ok(sse_feed(&p, "data: 1\n\ndata: 2\n\n", 18, collect, &c, &e) == -1 &&
	    c.n == 1 && e.status == 0,
	    "a callback returning -1 stops the feed, e untouched");
	sse_free(&p);
	buf_free(&c.all);

	return tap_done();
}
