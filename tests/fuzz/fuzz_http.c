/*
 * fuzz_http.c -- libFuzzer target for the request-head parser.
 *
 * Each input is parsed whole, then again fed in pieces whose sizes come from
 * the input itself, and the two runs must agree (result, status, consumed
 * length, method, path, host, field count).  After a DONE the rest of the buffer
 * is parsed as a pipelined request.  It also checks the parser's promises:
 * consumed never exceeds the input, every header is NUL-terminated inside
 * the arena copy.  Built only by `make check` when clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/err.h"
#include "lib/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits so the fuzzer reaches 414 and 431 with short inputs. */
static const struct http_limits fuzz_limits = { 256, 512, 12, 64, 256 };

struct fuzz_outcome {
	enum http_parse_result r;
	int status;
	size_t consumed;
	enum http_method method;
	size_t n_headers;
	int64_t content_length;
	char path[300];
	char host[300];
};

static void
fuzz_record(struct fuzz_outcome *o, enum http_parse_result r,
    const struct err *e, size_t consumed, const struct http_request *req)
{
	size_t i;

	memset(o, 0, sizeof(*o));
	o->r = r;
	if (r == HTTP_PARSE_ERROR)
		o->status = e->status;
	if (r != HTTP_PARSE_DONE)
		return;
	o->consumed = consumed;
	o->method = req->method;
	o->n_headers = req->n_headers;
	o->content_length = req->content_length;
	strncpy(o->path, req->path, sizeof(o->path) - 1);
	if (req->host != NULL) {
		/* the request's host is its Host field, one of them */
		const char *h = http_header_get(req, "host");

		if (h == NULL || strcmp(h, req->host) != 0)
			abort();
		strncpy(o->host, req->host, sizeof(o->host) - 1);
	} else if (http_header_get(req, "host") != NULL) {
		abort();
	}
	/* touch every string: ASan catches one that is not terminated */
	for (i = 0; i < req->n_headers; i++)
		if (strlen(req->headers[i].name) != req->headers[i].name_len ||
		    strlen(req->headers[i].value) != req->headers[i].value_len)
			abort();
	(void)http_header_get(req, "host");
}

/* Parse data[0..size) in pieces: piece k has 1 + (seed byte k) % 7 bytes. */
static enum http_parse_result
fuzz_split(const char *data, size_t size, struct arena *a,
    struct http_request *req, size_t *consumed, struct err *e)
{
	struct http_head_state st;
	enum http_parse_result r = HTTP_PARSE_INCOMPLETE;
	size_t len = 0, k = 0;

	http_head_state_init(&st);
	while (len < size) {
		len += 1 + (size_t)((unsigned char)data[k++ % size] % 7);
		if (len > size)
			len = size;
		r = http_parse_head(&st, data, len, &fuzz_limits, a, req,
		    consumed, e);
		if (r != HTTP_PARSE_INCOMPLETE)
			return r;
		if (st.scanned > len)
			abort();
	}
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct arena *a = arena_create(0);
	struct http_head_state st;
	struct http_request req;
	struct fuzz_outcome whole, split;
	struct err e;
	size_t consumed = 0, c2 = 0;
	enum http_parse_result r;

	err_clear(&e);
	http_head_state_init(&st);
	r = http_parse_head(&st, s, size, &fuzz_limits, a, &req, &consumed, &e);
	if (consumed > size)
		abort();
	fuzz_record(&whole, r, &e, consumed, &req);

	err_clear(&e);
	r = fuzz_split(s, size, a, &req, &c2, &e);
	fuzz_record(&split, r, &e, c2, &req);
	if (whole.r != split.r || whole.status != split.status ||
	    whole.consumed != split.consumed || whole.method != split.method ||
	    whole.n_headers != split.n_headers ||
	    whole.content_length != split.content_length ||
	    strcmp(whole.path, split.path) != 0 ||
	    strcmp(whole.host, split.host) != 0)
		abort();

	/* a pipelined request after the first one */
	if (whole.r == HTTP_PARSE_DONE && consumed < size) {
		size_t c3 = 0;

		err_clear(&e);
		r = http_parse_head(&st, s + consumed, size - consumed,
		    &fuzz_limits, a, &req, &c3, &e);
		if (r == HTTP_PARSE_DONE && c3 > size - consumed)
			abort();
	}
	arena_destroy(a);
	return 0;
}
