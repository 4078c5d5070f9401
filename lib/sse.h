/*
 * sse.h -- a server-sent events parser (WHATWG HTML "event stream
 * interpretation"), used by the Azure OpenAI client to read streamed chat
 * completions.
 *
 * Pure code: no sockets, no clock, no global state.  Bytes are fed in any
 * split (a CR LF pair may straddle two calls); each complete event is handed
 * to a callback.  Lines may end in CR LF, LF or CR; a leading UTF-8 BOM is
 * skipped; comment lines (":...") and unknown fields are ignored; an event is
 * dispatched at a blank line only when it has data.  A parser belongs to one
 * thread at a time.  It never allocates more than `max_event` bytes for one
 * event (line plus data): a longer event is an error, not a growing buffer.
 */
#ifndef INGEN_SSE_H
#define INGEN_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

/* One dispatched event.  Strings are NUL-terminated and valid only during the
 * callback.  `event` is "" when the stream gave no "event:" field. */
struct sse_event {
	const char *event;
	const char *data;       /* the data lines joined by "\n" */
	size_t data_len;
	const char *id;         /* last event id seen, "" when none */
};

/* Called once per event; return 0 to go on, -1 to stop (the callback fills
 * the struct err it was given through its own argument). */
typedef int (*sse_event_fn)(void *arg, const struct sse_event *ev);

struct sse_parser {
	struct buf line;        /* the current, unterminated line */
	struct buf data;        /* data of the current event */
	struct buf event;       /* event type of the current event */
	struct buf id;          /* last event id (persists across events) */
	size_t max_event;
	bool saw_cr;            /* previous byte ended a line with CR */
	bool bom_checked;       /* the first bytes were checked for a BOM */
	bool has_data;          /* a data field was seen in the current event */
	bool stopped;           /* the callback returned -1 or a limit was hit */
};

/* Default cap of one event, line included. */
#define SSE_DEFAULT_MAX_EVENT (1024 * 1024)

/* Prepare `p`; max_event = 0 means SSE_DEFAULT_MAX_EVENT. */
void sse_init(struct sse_parser *p, size_t max_event);

/*
 * Feed in[0..len).  Calls fn(arg, ev) for each complete event.  Returns 0,
 * or -1 when the callback returned -1 (its error stands; `e` is not touched)
 * or an event exceeded max_event (then `e` is set, status 502).  After -1 the
 * parser refuses further input.
 */
int sse_feed(struct sse_parser *p, const char *in, size_t len,
    sse_event_fn fn, void *arg, struct err *e) ING_WUR;

/* True when bytes of an event are buffered that no blank line has closed
 * yet: at end of stream they are discarded, as the standard says, and a
 * client may treat that as a truncated stream. */
bool sse_pending(const struct sse_parser *p);

/* Release the buffers.  The parser may be sse_init()ed again. */
void sse_free(struct sse_parser *p);

#endif
