/*
 * llm_reply.h -- the pure half of the Azure OpenAI client: build a
 * chat-completions request body, parse a reply, assemble a streamed reply
 * from its chunks, and classify an error body (content filter, context
 * length).
 *
 * No sockets, no clock, no curl: the fuzzer and the unit tests drive these
 * functions directly.  Every string it returns lives in the arena it is
 * given; inputs are never modified.
 */
#ifndef INGEN_LLM_REPLY_H
#define INGEN_LLM_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/llm.h"

/* What an upstream error body says, beyond its status. */
enum llm_reply_error_kind {
	LLM_REPLY_ERROR_OTHER = 0,
	LLM_REPLY_ERROR_CONTENT_FILTER,     /* code "content_filter" */
	LLM_REPLY_ERROR_CONTEXT_LENGTH,     /* "context_length_exceeded" or the message */
};

/*
 * Append the JSON body of `req` to `out`.  `model_name` is sent as "model"
 * (OpenAI-compatible servers need it; Azure ignores it); NULL omits it.
 * Returns 0, or -1 with `e` set (status 500) when the request is unusable:
 * no messages, a message without a role, a tool without a name, or tool
 * parameters that are not a JSON object.
 */
int llm_reply_build_body(const struct llm_request *req, const char *model_name,
    struct buf *out, struct err *e) ING_WUR;

/*
 * Parse a complete (non-streamed) chat-completions reply body[0..len) into
 * `r` (strings in `a`; the fields it does not find are left as they were).
 * Returns 0, or -1 with `e` set (502) when the body is not JSON, has no
 * choices, or a choice has neither content nor tool calls nor a
 * finish_reason of "content_filter".
 */
int llm_reply_parse(const char *body, size_t len, struct arena *a,
    struct llm_reply *r, struct err *e) ING_WUR;

/* Accumulates a streamed reply across chunks. */
struct llm_reply_stream {
	struct buf content;
	bool has_content;
	struct llm_reply_stream_call {
		struct buf id;
		struct buf name;
		struct buf arguments;
	} *calls;
	size_t n_calls;
	size_t cap_calls;
	size_t max_bytes;       /* cap of everything accumulated */
	size_t total_bytes;
	bool done;              /* "[DONE]" was seen */
	bool saw_chunk;
};

/* Prepare `s`; `max_bytes` caps the accumulated text (0 = 8 MiB). */
void llm_reply_stream_init(struct llm_reply_stream *s, size_t max_bytes);

/* Release the buffers of `s`. */
void llm_reply_stream_free(struct llm_reply_stream *s);

/*
 * Take one event's data (a JSON chunk or "[DONE]").  A content fragment is
 * appended and passed to on_delta(delta_arg, text, len) when on_delta is not
 * NULL (text valid during the callback only).  Usage, finish_reason, filter
 * results, id and model go straight into `r` (strings in `a`).  Returns 0, or
 * -1 with `e` set (502) for a chunk that is not JSON, data after "[DONE]", a
 * tool call index out of range, or the cap exceeded.
 */
int llm_reply_stream_chunk(struct llm_reply_stream *s, const char *data,
    size_t len, struct arena *a, struct llm_reply *r, llm_delta_fn on_delta,
    void *delta_arg, struct err *e) ING_WUR;

/*
 * Move the accumulated content and tool calls into `r` (arena copies).
 * Returns 0, or -1 with `e` set (502) when no "[DONE]" was seen or nothing
 * at all arrived.
 */
int llm_reply_stream_finish(struct llm_reply_stream *s, struct arena *a,
    struct llm_reply *r, struct err *e) ING_WUR;

/*
 * Classify an upstream error body (any status).  When `filter_json` is not
 * NULL and the body carries innererror.content_filter_result, its JSON text
 * is stored there (in `a`).  When `code` is not NULL, the error code (at
 * most 64 bytes, printable ASCII only) is stored there, or NULL.
 */
enum llm_reply_error_kind llm_reply_classify_error(const char *body,
    size_t len, struct arena *a, char **filter_json, char **code);

#endif
