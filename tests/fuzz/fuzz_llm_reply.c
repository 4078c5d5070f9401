/*
 * fuzz_llm_reply.c -- libFuzzer target for the chat-completions reply
 * parsers (lib/llm_reply.c): a complete reply, an error body, and the same
 * bytes cut into streamed chunks at newlines.
 *
 * Besides "no crash": a parsed reply has content, tool calls or a
 * content_filter finish; every tool call has an id, a name and arguments;
 * token counts are never negative; every failure is a 502.  The input is
 * copied to a buffer of exactly its size so ASan catches any read past it.
 * Built only by `make check` when clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/err.h"
#include "lib/llm_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t delta_bytes;

static void
on_delta(void *arg, const char *text, size_t len)
{
	(void)arg;
	if (len == 0 || strlen(text) != len)
		abort();
	delta_bytes += len;
}

static void
check_reply(const struct llm_reply *r)
{
	size_t i;

	if (r->prompt_tokens < 0 || r->completion_tokens < 0 ||
	    r->total_tokens < 0)
		abort();
	for (i = 0; i < r->n_tool_calls; i++)
		if (r->tool_calls[i].id == NULL || r->tool_calls[i].name == NULL ||
		    r->tool_calls[i].arguments == NULL)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_create(0);
	char *copy = malloc(size ? size : 1);
	struct llm_reply r;
	struct llm_reply_stream s;
	struct err e;
	char *filter, *code;
	size_t start, i;
	int rc;

	memcpy(copy, data, size);

	memset(&r, 0, sizeof(r));
	rc = llm_reply_parse(copy, size, a, &r, &e);
	if (rc != 0 && e.status != 502)
		abort();
	if (rc == 0) {
		check_reply(&r);
		if (r.content == NULL && r.n_tool_calls == 0 &&
		    (r.finish_reason == NULL ||
		    strcmp(r.finish_reason, "content_filter") != 0))
			abort();
	}

	(void)llm_reply_classify_error(copy, size, a, &filter, &code);
	if (code != NULL && strlen(code) > 64)
		abort();

	/* the same bytes as a stream: one chunk per line */
	memset(&r, 0, sizeof(r));
	llm_reply_stream_init(&s, 4096);
	delta_bytes = 0;
	rc = 0;
	for (start = 0, i = 0; i <= size && rc == 0; i++) {
		if (i == size || copy[i] == '\n') {
			if (i > start)
				rc = llm_reply_stream_chunk(&s, copy + start,
				    i - start, a, &r, on_delta, NULL, &e);
			start = i + 1;
		}
	}
	if (rc != 0 && e.status != 502)
		abort();
	if (delta_bytes > 4096)
		abort();
	if (rc == 0 && llm_reply_stream_finish(&s, a, &r, &e) == 0)
		check_reply(&r);
	llm_reply_stream_free(&s);

	free(copy);
	arena_destroy(a);
	return 0;
}
