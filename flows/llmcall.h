/*
 * llmcall.h -- one model call of the flow context (struct ctx_llm_call)
 * carried to lib/llm and back: the configured model it names, the
 * llm_request it becomes, and the reply and usage reports it gets.  The
 * server's model service (worker/services.c) and `ingen flow test`
 * (cli/cli_flow.c) both go through it, so a flow's call means the same in
 * both; each adds only its own callbacks (usage records, cancellation).
 */
#ifndef INGEN_LLMCALL_H
#define INGEN_LLMCALL_H

#include "flows/ctx.h"
#include "lib/llm.h"

struct arena;
struct config;
struct err;

/*
 * The configured model named `want`, else the one of that role ("chat"
 * when NULL): its index, or -1 with e set -- 503 with `no_model` when no
 * model is configured at all (or none has the chat role), 500 naming the
 * configured models when `want` matches none.
 */
int llmcall_model(const struct config *cfg, const char *want,
    const char *no_model, struct err *e);

/* Fill req (zeroed here) from call for model `model`: messages, tools,
 * options, the deadline and streaming (deltas to call->on_delta).  Memory
 * in a.  The caller sets on_usage, cancelled and set_waker. */
void llmcall_request(const struct ctx_llm_call *call, int model,
    struct arena *a, struct llm_request *req);

/* The reply as the context wants it: content, tool calls, the configured
 * model's name. */
void llmcall_result(const struct config *cfg, int model,
    const struct llm_reply *rep, struct ctx_llm_result *out);

/* One attempt's report as the context wants it; a billed final one also
 * carries the call's transcript (what was sent, what came back). */
void llmcall_usage(const struct ctx_llm_call *call, const struct llm_usage *u,
    struct ctx_usage *cu);

#endif
