/*
 * turn.h -- one chat turn, from a parsed ChatRequest to the reply: prepare
 * (find the flow, claim the Idempotency-Key, load the thread's history and
 * memory), run the flow, save the turn, reply.  The chat routes parse the
 * body and call turn_run; how the turn answers (one JSON document, or an
 * SSE stream) is chosen once, by `how`.
 */
#ifndef INGEN_TURN_H
#define INGEN_TURN_H

#include <stdbool.h>

#include "worker/exchange.h"

/* A ChatRequest as the route checked it (the Python product's API).
 * The strings live in the exchange's arena. */
struct cJSON;

struct turn_request {
	const char *user_prompt;
	const char *conversation_flow;  /* as sent: not yet normalized */
	const char *thread_id;          /* NULL: a new thread */
	const char *user_id;            /* "unspecified_user" when absent */
	const char *user_name;          /* NULL when absent, as the next three */
	const char *topic;
	const char *event_type;
	bool memory_record;             /* save the turn (default true) */
	bool stream_events;             /* ours: agent/tool/status frames in a stream */
	const struct cJSON *body;       /* the parsed body (a flow's own parameters) */
};

/* How a turn answers. */
enum turn_reply {
	TURN_REPLY_JSON,        /* one ChatResponse; honours Idempotency-Key */
	TURN_REPLY_STREAM,      /* SSE frames: content, final, done (or error) */
};

/*
 * Run one turn of `req` on the exchange and set its response: 2xx only once
 * the turn is stored (docs/reliability.md D2).  Errors before the flow runs are
 * plain HTTP errors in both modes; after that a stream reports them in an
 * error frame.  Flow thread only: it blocks on the database and the
 * language model, and streams through xchg_stream_*.
 */
void turn_run(struct http_exchange *x, const struct turn_request *req,
    enum turn_reply how);

#endif
