/*
 * ctx.h -- the server side of a flow's context (struct ing_ctx): what a
 * chat route sets up before it runs a flow, and what it reads afterwards
 * (tokens spent, usage rows to link, the failure).  Flows never include this
 * header; they see only flows/flow.h.
 */
#ifndef INGEN_CTX_H
#define INGEN_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flows/flow.h"

struct arena;
struct config;
struct db_pool;
struct llm_client;
struct sb_slot;

struct ing_ctx {
	struct arena *arena;
	const struct config *cfg;
	struct llm_client *llm;
	struct db_pool *db;             /* usage rows; may be NULL */
	struct sb_slot *slot;           /* token metrics; may be NULL */
	const char *request_id;
	const char *user_id;
	const char *thread_id;
	const char *flow;
	int64_t deadline_ms;            /* llm_clock_ms() base; 0 = none */

	/* streaming: called with partial output (flow thread) */
	int (*emit)(void *arg, const char *text);
	void *emit_arg;

	/* accounting, read by the route after the flow */
	long prompt_tokens, completion_tokens, total_tokens;
	int llm_calls;
	int64_t *usage_ids;
	size_t n_usage_ids, cap_usage_ids;

	/* the failure, when run returned -1 */
	int err_status;
	int retry_after;                /* seconds, for a 503 */
	char err_msg[512];
};

/* Zero the context and bind it to a request. */
void ctx_init(struct ing_ctx *ctx, struct arena *a, const struct config *cfg);

#endif
