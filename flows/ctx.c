/*
 * ctx.c -- the functions of <ingenious/flow.h>: the only way a flow reaches
 * the language model, the usage records and the client's stream.  It owns
 * the per-turn accounting; it never writes a chat message (the route does,
 * in one transaction, after the flow).
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/db.h"
#include "lib/llm.h"
#include "lib/log.h"
#include "lib/scoreboard.h"

void
ctx_init(struct ing_ctx *ctx, struct arena *a, const struct config *cfg)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->arena = a;
	ctx->cfg = cfg;
}

struct ctx_usage_arg {
	struct ing_ctx *ctx;
	const char *agent;
};

/* One upstream attempt's cost: committed at once (RELIABILITY D2). */
static void
ctx_on_usage(void *arg, const struct llm_usage *u)
{
	struct ctx_usage_arg *ua = arg;
	struct ing_ctx *ctx = ua->ctx;
	struct db_usage row;
	struct err e;
	int64_t id = 0;

	if (u->billed) {
		ctx->prompt_tokens += u->prompt_tokens;
		ctx->completion_tokens += u->completion_tokens;
		ctx->total_tokens += u->total_tokens;
		if (ctx->slot != NULL)
			sb_add(&ctx->slot->c.llm_tokens, (uint64_t)u->total_tokens);
	}
	if (ctx->slot != NULL)
		sb_add(&ctx->slot->c.llm_calls, 1);
	if (ctx->db == NULL)
		return;
	memset(&row, 0, sizeof(row));
	row.request_id = ctx->request_id;
	row.user_id = ctx->user_id;
	row.thread_id = ctx->thread_id;
	row.flow = ctx->flow;
	row.agent_name = ua->agent;
	row.model = u->model;
	row.deployment = u->deployment;
	row.prompt_tokens = (int)u->prompt_tokens;
	row.completion_tokens = (int)u->completion_tokens;
	row.total_tokens = (int)u->total_tokens;
	row.latency_ms = (int)u->latency_ms;
	row.http_status = u->http_status;
	row.retries = u->retries;
	err_clear(&e);
	if (db_record_usage(ctx->db, &row, &id, &e) != 0)
		return;   /* db_record_usage logged the call for reconciliation */
	if (ctx->n_usage_ids == ctx->cap_usage_ids) {
		size_t ncap = ctx->cap_usage_ids ? ctx->cap_usage_ids * 2 : 8;
		int64_t *n = arena_alloc(ctx->arena, ncap * sizeof(*n));

		if (ctx->n_usage_ids)
			memcpy(n, ctx->usage_ids, ctx->n_usage_ids * sizeof(*n));
		ctx->usage_ids = n;
		ctx->cap_usage_ids = ncap;
	}
	ctx->usage_ids[ctx->n_usage_ids++] = id;
}

struct ctx_delta_arg {
	struct ing_ctx *ctx;
	bool gone;
};

static void
ctx_on_delta(void *arg, const char *text, size_t len)
{
	struct ctx_delta_arg *da = arg;
	char *piece;

	if (da->gone || len == 0)
		return;
	piece = arena_strndup(da->ctx->arena, text, len);
	if (ing_emit(da->ctx, piece) != 0)
		da->gone = true;
}

int
ing_llm_chat(struct ing_ctx *ctx, const struct ing_llm_options *opt,
    const struct ing_message *messages, size_t n, const char **reply)
{
	struct ctx_usage_arg ua = { ctx, opt && opt->agent ? opt->agent : ctx->flow };
	struct ctx_delta_arg da = { ctx, false };
	struct llm_message *msgs;
	struct llm_request req;
	struct llm_reply rep;
	struct err e;
	size_t i;
	int idx;

	*reply = NULL;
	idx = llm_model_find(ctx->cfg, "chat");
	if (idx < 0 || ctx->llm == NULL)
		return ing_error(ctx, 503, "no language model is configured "
		    "(set INGENIOUS_MODELS__0__MODEL, ..._BASE_URL, ..._API_KEY)");
	msgs = arena_zalloc(ctx->arena, (n ? n : 1) * sizeof(*msgs));
	for (i = 0; i < n; i++) {
		msgs[i].role = messages[i].role;
		msgs[i].content = messages[i].content;
		msgs[i].name = messages[i].name;
	}
	memset(&req, 0, sizeof(req));
	req.model_index = idx;
	req.messages = msgs;
	req.n_messages = n;
	req.on_usage = ctx_on_usage;
	req.usage_arg = &ua;
	req.deadline_ms = ctx->deadline_ms;
	if (opt != NULL) {
		req.has_temperature = opt->has_temperature != 0;
		req.temperature = opt->temperature;
		req.max_tokens = opt->max_tokens;
		req.json_response = opt->json_response != 0;
		if (opt->stream && ctx->emit != NULL) {
			req.stream = true;
			req.on_delta = ctx_on_delta;
			req.delta_arg = &da;
		}
	}
	memset(&rep, 0, sizeof(rep));
	err_clear(&e);
	ctx->llm_calls++;
	if (llm_chat(ctx->llm, &req, ctx->arena, &rep, &e) != 0) {
		ctx->retry_after = rep.retry_after_s;
		return ing_error(ctx, e.status ? e.status : 502, "%s", e.msg);
	}
	*reply = rep.content != NULL ? rep.content : "";
	return 0;
}

const char *
ing_last_error(struct ing_ctx *ctx, int *status)
{
	if (status != NULL)
		*status = ctx->err_status;
	return ctx->err_msg;
}

int
ing_error(struct ing_ctx *ctx, int status, const char *fmt, ...)
{
	va_list ap;

	ctx->err_status = status;
	va_start(ap, fmt);
	vsnprintf(ctx->err_msg, sizeof(ctx->err_msg), fmt, ap);
	va_end(ap);
	return -1;
}

int
ing_emit(struct ing_ctx *ctx, const char *text)
{
	if (ctx->emit == NULL || text == NULL || text[0] == '\0')
		return 0;
	return ctx->emit(ctx->emit_arg, text);
}

void *
ing_alloc(struct ing_ctx *ctx, size_t size)
{
	return arena_zalloc(ctx->arena, size);
}

char *
ing_strdup(struct ing_ctx *ctx, const char *s)
{
	return arena_strdup(ctx->arena, s);
}

char *
ing_sprintf(struct ing_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = arena_vsprintf(ctx->arena, fmt, ap);
	va_end(ap);
	return s;
}

void
ing_log(struct ing_ctx *ctx, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	char action[96];

	if (level < 0)
		level = 0;
	if (level > 3)
		level = 3;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(action, sizeof(action), "running flow %s", ctx->flow ? ctx->flow : "?");
	log_emit((enum log_level)level, action, NULL, 0, "%s", msg);
}
