/*
 * llmcall.c -- a flow context's model call carried to lib/llm and back
 * (flows/llmcall.h).  It only adapts types: it calls no model, records
 * nothing and keeps no state.
 */
#include "autoconfig.h"

#include <stddef.h>
#include <string.h>

#include "flows/llmcall.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"

/* The tool calls go back and forth without a copy: the two structs are the
 * same three strings. */
_Static_assert(sizeof(struct ctx_tool_call) == sizeof(struct llm_tool_call) &&
    offsetof(struct ctx_tool_call, id) == offsetof(struct llm_tool_call, id) &&
    offsetof(struct ctx_tool_call, name) == offsetof(struct llm_tool_call, name) &&
    offsetof(struct ctx_tool_call, arguments) ==
    offsetof(struct llm_tool_call, arguments),
    "struct ctx_tool_call and struct llm_tool_call differ");

int
llmcall_model(const struct config *cfg, const char *want, const char *no_model,
    struct err *e)
{
	struct buf b = BUF_INIT;
	size_t i;
	int idx;

	if (want != NULL)
		for (i = 0; i < cfg->n_models; i++)
			if (cfg->models[i].model != NULL &&
			    strcmp(cfg->models[i].model, want) == 0)
				return (int)i;
	if ((idx = llm_model_find(cfg, want != NULL ? want : "chat")) >= 0)
		return idx;
	if (cfg->n_models == 0 || want == NULL)
		return err_set(e, 503, "%s", no_model);
	for (i = 0; i < cfg->n_models; i++)
		buf_printf(&b, "%s%s", i ? ", " : "",
		    cfg->models[i].model ? cfg->models[i].model : "?");
	err_set(e, 500, "no configured model is named or has the role \"%.64s\" "
	    "(models: %s)", want, buf_cstr(&b));
	buf_free(&b);
	return -1;
}

void
llmcall_request(const struct ctx_llm_call *call, int model, struct arena *a,
    struct llm_request *req)
{
	struct llm_message *msgs;
	struct llm_tool *tools = NULL;
	size_t i, n = call->n_messages;

	msgs = arena_zalloc(a, (n ? n : 1) * sizeof(*msgs));
	for (i = 0; i < n; i++) {
		const struct ctx_message *m = &call->messages[i];

		msgs[i].role = m->role;
		msgs[i].content = m->content;
		msgs[i].name = m->name;
		msgs[i].tool_calls = (const struct llm_tool_call *)m->tool_calls;
		msgs[i].n_tool_calls = m->n_tool_calls;
		msgs[i].tool_call_id = m->tool_call_id;
	}
	if (call->n_tools > 0) {
		tools = arena_zalloc(a, call->n_tools * sizeof(*tools));
		for (i = 0; i < call->n_tools; i++) {
			tools[i].name = call->tools[i].name;
			tools[i].description = call->tools[i].description;
			tools[i].parameters = call->tools[i].parameters;
		}
	}
	memset(req, 0, sizeof(*req));
	req->model_index = model;
	req->messages = msgs;
	req->n_messages = n;
	req->tools = tools;
	req->n_tools = call->n_tools;
	req->has_temperature = call->has_temperature;
	req->temperature = call->temperature;
	req->max_tokens = call->max_tokens;
	req->json_response = call->json_response;
	req->deadline_ms = call->deadline_ms;
	if (call->stream) {
		req->stream = true;
		req->on_delta = call->on_delta;
		req->delta_arg = call->arg;
	}
}

void
llmcall_result(const struct config *cfg, int model, const struct llm_reply *rep,
    struct ctx_llm_result *out)
{
	out->content = rep->content;
	out->model = cfg->models[model].model;
	out->tool_calls = (const struct ctx_tool_call *)rep->tool_calls;
	out->n_tool_calls = rep->n_tool_calls;
}

void
llmcall_usage(const struct ctx_llm_call *call, const struct llm_usage *u,
    struct ctx_usage *cu)
{
	memset(cu, 0, sizeof(*cu));
	cu->model = u->model;
	cu->deployment = u->deployment;
	cu->prompt_tokens = u->prompt_tokens;
	cu->completion_tokens = u->completion_tokens;
	cu->total_tokens = u->total_tokens;
	cu->latency_ms = u->latency_ms;
	cu->http_status = u->http_status;
	cu->retries = u->retries;
	cu->billed = u->billed;
	if (u->billed && u->final) {
		cu->messages = call->messages;
		cu->n_messages = call->n_messages;
		cu->content = u->content;
		cu->tool_calls = (const struct ctx_tool_call *)u->tool_calls;
		cu->n_tool_calls = u->n_tool_calls;
	}
}
