/*
 * ctx.c -- the functions of <ingenious/flow.h>: the only way a flow reaches
 * the language model, the usage records, the log and the client's stream,
 * each through the table of services the context was built with.  It owns
 * the per-turn accounting; it never calls a client library or the database
 * itself, and never writes a chat message (the turn does, in one
 * transaction, after the flow).
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/err.h"

#define CTX_USAGE_IDS_FIRST 8       /* usage rows a turn links, before it grows */
#define CTX_LOG_MAX 1024            /* one flow log line */
#define CTX_ACTION_MAX 96

void
ctx_init(struct ing_ctx *ctx, struct arena *a, const struct config *cfg,
    const struct ctx_services *svc, const struct ctx_turn *who)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->arena = a;
	ctx->cfg = cfg;
	ctx->svc = svc;
	ctx->turn = *who;
	if (svc->clock_ms != NULL)
		ctx->deadline_ms = svc->clock_ms(svc->arg) + cfg->llm.timeout_ms;
}

/* One ing_llm_chat call, as its callbacks see it. */
struct ctx_call {
	struct ing_ctx *ctx;
	const char *agent;
	bool gone;                      /* the streaming client went away */
};

/* One upstream attempt's cost: counted here, recorded at once by the
 * services (RELIABILITY D2). */
static void
ctx_on_usage(void *arg, const struct ctx_usage *u)
{
	struct ctx_call *c = arg;
	struct ing_ctx *ctx = c->ctx;
	const struct ctx_services *svc = ctx->svc;
	int64_t id = 0;

	if (u->billed) {
		ctx->prompt_tokens += u->prompt_tokens;
		ctx->completion_tokens += u->completion_tokens;
		ctx->total_tokens += u->total_tokens;
	}
	if (svc->record_usage == NULL ||
	    svc->record_usage(svc->arg, &ctx->turn, c->agent, u, &id) != 0)
		return;
	if (ctx->n_usage_ids == ctx->cap_usage_ids) {
		size_t ncap = ctx->cap_usage_ids ? ctx->cap_usage_ids * 2 :
		    CTX_USAGE_IDS_FIRST;
		int64_t *n = arena_alloc(ctx->arena, ncap * sizeof(*n));

		if (ctx->n_usage_ids)
			memcpy(n, ctx->usage_ids, ctx->n_usage_ids * sizeof(*n));
		ctx->usage_ids = n;
		ctx->cap_usage_ids = ncap;
	}
	ctx->usage_ids[ctx->n_usage_ids++] = id;
}

/* Content while the model streams: on to the client until it goes away. */
static void
ctx_on_delta(void *arg, const char *text, size_t len)
{
	struct ctx_call *c = arg;
	char *piece;

	if (c->gone || len == 0)
		return;
	piece = arena_strndup(c->ctx->arena, text, len);
	if (ing_emit(c->ctx, piece) != 0)
		c->gone = true;
}

int
ing_llm_chat(struct ing_ctx *ctx, const struct ing_llm_options *opt,
    const struct ing_message *messages, size_t n, const char **reply)
{
	const struct ctx_services *svc = ctx->svc;
	struct ctx_call c = {
		ctx, opt && opt->agent ? opt->agent : ctx->turn.flow, false
	};
	struct ctx_llm_call call;
	struct ctx_llm_result res;
	struct err e;

	*reply = NULL;
	if (svc->llm_chat == NULL)
		return ing_error(ctx, 503, "no language model is configured");
	memset(&call, 0, sizeof(call));
	call.agent = c.agent;
	call.messages = messages;
	call.n_messages = n;
	call.deadline_ms = ctx->deadline_ms;
	call.on_delta = ctx_on_delta;
	call.on_usage = ctx_on_usage;
	call.arg = &c;
	if (opt != NULL) {
		call.has_temperature = opt->has_temperature != 0;
		call.temperature = opt->temperature;
		call.max_tokens = opt->max_tokens;
		call.json_response = opt->json_response != 0;
		call.stream = opt->stream && ctx->turn.emit != NULL;
	}
	memset(&res, 0, sizeof(res));
	err_clear(&e);
	ctx->llm_calls++;
	if (svc->llm_chat(svc->arg, &call, ctx->arena, &res, &e) != 0) {
		ctx->retry_after = res.retry_after_s;
		return ing_error(ctx, e.status ? e.status : 502, "%s", e.msg);
	}
	*reply = res.content != NULL ? res.content : "";
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
	if (ctx->turn.emit == NULL || text == NULL || text[0] == '\0')
		return 0;
	return ctx->turn.emit(ctx->turn.emit_arg, text);
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
	char msg[CTX_LOG_MAX];
	char action[CTX_ACTION_MAX];
	va_list ap;

	if (ctx->svc->log == NULL)
		return;
	if (level < ING_LOG_DEBUG)
		level = ING_LOG_DEBUG;
	if (level > ING_LOG_ERROR)
		level = ING_LOG_ERROR;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(action, sizeof(action), "running flow %s",
	    ctx->turn.flow ? ctx->turn.flow : "?");
	ctx->svc->log(ctx->svc->arg, level, action, msg);
}
