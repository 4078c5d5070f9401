/*
 * sse.c -- the event-stream parser.  It owns only its buffers; it never
 * touches a socket, a clock or a log, so the fuzzer can drive it directly.
 */
#include "autoconfig.h"

#include <string.h>

#include "lib/sse.h"

static const char sse_bom[] = "\xEF\xBB\xBF";

void
sse_init(struct sse_parser *p, size_t max_event)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->line);
	buf_init(&p->data);
	buf_init(&p->event);
	buf_init(&p->id);
	p->max_event = max_event ? max_event : SSE_DEFAULT_MAX_EVENT;
}

void
sse_free(struct sse_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->data);
	buf_free(&p->event);
	buf_free(&p->id);
}

bool
sse_pending(const struct sse_parser *p)
{
	return buf_rlen(&p->line) > 0 || p->has_data;
}

static int
sse_dispatch(struct sse_parser *p, sse_event_fn fn, void *arg)
{
	struct sse_event ev;
	int rc;

	if (!p->has_data) {
		/* a blank line without data only resets the event type */
		buf_reset(&p->event);
		return 0;
	}
	/* the standard drops the last LF of the joined data */
	if (buf_rlen(&p->data) > 0)
		p->data.len--;
	ev.data = buf_cstr(&p->data);
	ev.data_len = buf_rlen(&p->data);
	ev.event = buf_cstr(&p->event);
	ev.id = buf_cstr(&p->id);
	rc = fn(arg, &ev);
	buf_reset(&p->data);
	buf_reset(&p->event);
	p->has_data = false;
	return rc;
}

/* Interpret one complete line (without its terminator). */
static int
sse_line(struct sse_parser *p, const char *s, size_t n, sse_event_fn fn,
    void *arg)
{
	const char *colon, *value;
	size_t name_len, value_len;

	if (n == 0)
		return sse_dispatch(p, fn, arg);
	if (s[0] == ':')
		return 0;                       /* comment */
	colon = memchr(s, ':', n);
	if (colon != NULL) {
		name_len = (size_t)(colon - s);
		value = colon + 1;
		value_len = n - name_len - 1;
		if (value_len > 0 && value[0] == ' ') {
			value++;
			value_len--;
		}
	} else {
		name_len = n;
		value = s + n;
		value_len = 0;
	}
	if (name_len == 4 && memcmp(s, "data", 4) == 0) {
		buf_append(&p->data, value, value_len);
		buf_putc(&p->data, '\n');
		p->has_data = true;
	} else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
		buf_reset(&p->event);
		buf_append(&p->event, value, value_len);
	} else if (name_len == 2 && memcmp(s, "id", 2) == 0) {
		/* an id containing NUL is ignored, per the standard */
		if (memchr(value, '\0', value_len) == NULL) {
			buf_reset(&p->id);
			buf_append(&p->id, value, value_len);
		}
	}
	/* "retry" and unknown fields: nothing for a one-shot client to do */
	return 0;
}

int
sse_feed(struct sse_parser *p, const char *in, size_t len, sse_event_fn fn,
    void *arg, struct err *e)
{
	size_t i = 0, start;

	if (p->stopped)
		return err_set(e, 502, "could not read event stream: parser stopped");

	/* skip a BOM at the very start, even when it arrives split */
	while (!p->bom_checked && i < len) {
		size_t have = buf_rlen(&p->line);

		if (in[i] == sse_bom[have]) {
			buf_putc(&p->line, in[i++]);
			if (have + 1 == 3) {
				buf_reset(&p->line);
				p->bom_checked = true;
			}
			continue;
		}
		/* not a BOM: the bytes held so far are ordinary line bytes */
		p->bom_checked = true;
	}

	while (i < len) {
		if (p->saw_cr) {
			p->saw_cr = false;
			if (in[i] == '\n') {
				i++;
				continue;
			}
		}
		start = i;
		while (i < len && in[i] != '\n' && in[i] != '\r')
			i++;
		buf_append(&p->line, in + start, i - start);
		if (buf_rlen(&p->line) + buf_rlen(&p->data) > p->max_event) {
			p->stopped = true;
			return err_set(e, 502, "could not read event stream: "
			    "event larger than %zu bytes", p->max_event);
		}
		if (i == len)
			break;                  /* line continues in the next call */
		if (in[i] == '\r')
			p->saw_cr = true;
		i++;
		if (sse_line(p, buf_cstr(&p->line), buf_rlen(&p->line), fn,
		    arg) != 0) {
			p->stopped = true;
			return -1;
		}
		buf_reset(&p->line);
	}
	return 0;
}
