/*
 * ctx.h -- the server side of a flow's context (struct ing_ctx): the one
 * constructor a turn calls before it runs a flow, the table of services
 * through which the context reaches the world (the language model, usage
 * records, the clock, the log), and what the turn reads afterwards (tokens
 * spent, usage rows to link, the failure).  The server's services live in
 * worker/turn.c; a test gives scripted ones (tests/flows/), so a flow runs
 * alone, with no socket and no database.  Flows never include this header;
 * they see only flows/flow.h.
 */
#ifndef INGEN_CTX_H
#define INGEN_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flows/flow.h"

struct arena;
struct config;
struct err;

/* What one upstream attempt cost, as the model service reports it.
 * Strings are valid during the report only. */
struct ctx_usage {
	const char *model;          /* the configured model name */
	const char *deployment;     /* "" when the API has none */
	long prompt_tokens, completion_tokens, total_tokens;
	long latency_ms;
	int http_status;            /* 0 = no HTTP response */
	int retries;                /* retries made before this attempt */
	bool billed;                /* the upstream reported usage */
};

/* One language-model call, as the context asks the model service for it. */
struct ctx_llm_call {
	const char *agent;          /* for accounting and logs */
	const struct ing_message *messages;   /* the whole conversation, system first */
	size_t n_messages;
	bool has_temperature;
	double temperature;
	int max_tokens;             /* 0 = the model's default */
	bool json_response;         /* ask for a JSON object */
	bool stream;                /* hand content to on_delta as it comes */
	int64_t deadline_ms;        /* the services' clock; 0 = none */
	/* called on the calling thread; `arg` is the context's */
	void (*on_delta)(void *arg, const char *text, size_t len);
	void (*on_usage)(void *arg, const struct ctx_usage *u);
	void *arg;
};

/* What a model call answered (content), or, on failure, how long the client
 * should wait (a 503's retry_after_s; 0 = not said). */
struct ctx_llm_result {
	const char *content;        /* NULL = empty; lives in the arena given */
	int retry_after_s;
};

/* Who a turn is for: the identity its usage rows carry, and where its
 * partial output goes. */
struct ctx_turn {
	const char *request_id;
	const char *user_id;
	const char *thread_id;
	const char *flow;           /* the normalized flow name */
	/* streaming: partial output (NULL when the client does not stream);
	 * returns -1 once the client is gone */
	int (*emit)(void *arg, const char *text);
	void *emit_arg;
};

/* Reserved for later issues (knowledge base, SQL, prompt templates): their
 * slots in struct ctx_services stay NULL until then. */
struct ctx_kb_service;
struct ctx_sql_service;
struct ctx_template_service;

/*
 * The services a context reaches.  Every function gets `arg` first and may
 * be called from the flow's thread only, during the flow's run.
 */
struct ctx_services {
	void *arg;
	/* The language model: 0 with out->content set (memory in `a`), or -1
	 * with e set (the HTTP status for the client and a message safe to show)
	 * and out->retry_after_s.  Reports each attempt's cost through
	 * call->on_usage before it returns.  NULL: no model (a 503). */
	int (*llm_chat)(void *arg, const struct ctx_llm_call *call,
	    struct arena *a, struct ctx_llm_result *out, struct err *e);
	/* Record one attempt's cost for the turn `who` (metrics, a usage row):
	 * 0 with *id set to the row to link to the reply, -1 when no row was
	 * stored (the service logged why).  NULL: nothing is recorded. */
	int (*record_usage)(void *arg, const struct ctx_turn *who,
	    const char *agent, const struct ctx_usage *u, int64_t *id);
	/* Monotonic milliseconds: the time base of deadlines.  NULL: no
	 * deadline. */
	int64_t (*clock_ms)(void *arg);
	/* One log line from the flow, at an ING_LOG_* level, with the action
	 * under way.  NULL: dropped. */
	void (*log)(void *arg, int level, const char *action, const char *msg);
	const struct ctx_kb_service *kb;            /* NULL (reserved) */
	const struct ctx_sql_service *sql;          /* NULL (reserved) */
	const struct ctx_template_service *templates;  /* NULL (reserved) */
};

struct ing_ctx {
	struct arena *arena;
	const struct config *cfg;
	const struct ctx_services *svc;
	struct ctx_turn turn;
	int64_t deadline_ms;            /* svc->clock_ms base; 0 = none */

	/* accounting, read by the turn after the flow */
	long prompt_tokens, completion_tokens, total_tokens;
	int llm_calls;
	int64_t *usage_ids;
	size_t n_usage_ids, cap_usage_ids;

	/* the failure, when run returned -1 */
	int err_status;
	int retry_after;                /* seconds, for a 503 */
	char err_msg[512];
};

/*
 * Build the context of one flow run: memory in `a`, the configuration
 * `cfg`, the services `svc` and the turn `who` (copied), which must all
 * outlive the run.  The language-model deadline is the services' clock now
 * plus cfg->llm.timeout_ms.  The only writer of a context's fields besides
 * the functions of flow.h.
 */
void ctx_init(struct ing_ctx *ctx, struct arena *a, const struct config *cfg,
    const struct ctx_services *svc, const struct ctx_turn *who);

#endif
