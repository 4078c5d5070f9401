/*
 * ctx.c -- the functions of <ingenious/flow.h>: the only way a flow reaches
 * the language model, the usage records, the log and the client's stream,
 * each through the table of services the context was built with.  It owns
 * the per-turn accounting, the limits of a turn (model calls, tool rounds,
 * the deadline, the token budget), the tool loop and the parallel calls;
 * it never calls a client library or the database itself, and never writes
 * a chat message (the turn does, in one transaction, after the flow).
 *
 * Threads: a flow runs on one flow thread, but ing_llm_parallel runs calls
 * on helper threads, whose usage reports, tool callbacks, events and
 * allocations reach the same context; ctx->lock guards the context's
 * fields, its arena and the turn's emit/event functions.  Each model call
 * builds its messages in an arena of its own and copies its answer into
 * the turn's arena at the end.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/json.h"

#define CTX_USAGE_IDS_FIRST 8       /* usage rows a turn links, before it grows */
#define CTX_LOG_MAX 1024            /* one flow log line */
#define CTX_ACTION_MAX 96
#define CTX_CALL_ARENA 8192         /* first block of one call's arena */
#define CTX_EVENT_TEXT_MAX 2000     /* characters of a tool's arguments or result in an event */
#define CTX_PARALLEL_STACK (512 * 1024)

#define CTX_MSG_GONE "the client went away"
#define CTX_MSG_STOPPED "stopped: another parallel call failed"

void
ctx_init(struct ing_ctx *ctx, struct arena *a, const struct config *cfg,
    const struct ctx_services *svc, const struct ctx_turn *who)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->arena = a;
	ctx->cfg = cfg;
	ctx->svc = svc;
	ctx->turn = *who;
	ctx->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	if (svc->clock_ms != NULL)
		ctx->deadline_ms = svc->clock_ms(svc->arg) + cfg->flows.turn_timeout_ms;
}

/* A group of parallel calls: the first failure may stop the others. */
struct ctx_group {
	bool fail_fast;
	bool stop;                      /* under ctx->lock */
};

/*
 * One model call (with its tool loop), as its callbacks see it.  A call's
 * failure is kept here (status, msg), not in the context, so parallel
 * calls do not overwrite each other; the caller hands it on.
 */
struct ctx_call {
	struct ing_ctx *ctx;
	const struct ing_llm_options *opt;
	const char *agent;
	struct arena *a;                /* this call's memory */
	struct ctx_group *group;        /* NULL outside ing_llm_parallel */
	bool gone;                      /* the streaming client went away */
	bool aborted;                   /* a tool asked to fail the turn */
	long tokens;                    /* billed to this call, for agent_end */
	long prompt_tokens, completion_tokens;
	int status;
	int retry_after;
	char msg[512];
};

static int
ctx_call_fail(struct ctx_call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
ctx_call_fail(struct ctx_call *c, int status, const char *fmt, ...)
{
	va_list ap;

	c->status = status;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- events ---------------------------------------------------------------- */

/* One event frame for a streaming client; `json` is the data object. */
static void
ctx_event(struct ing_ctx *ctx, const char *type, const char *json)
{
	if (ctx->turn.event == NULL)
		return;
	pthread_mutex_lock(&ctx->lock);
	(void)ctx->turn.event(ctx->turn.emit_arg, type, json);
	pthread_mutex_unlock(&ctx->lock);
}

/* {"agent": ..., <more>} as the data of an event; buf_free after. */
static void
ctx_event_head(struct buf *b, const char *agent)
{
	buf_puts(b, "{\"agent\":");
	buf_json_string(b, agent);
}

/* ,"key":"text" with at most CTX_EVENT_TEXT_MAX characters of the text,
 * never a UTF-8 sequence cut in two. */
static void
ctx_event_text(struct buf *b, const char *key, const char *text)
{
	size_t len = text != NULL ? strlen(text) : 0;
	size_t n = len > CTX_EVENT_TEXT_MAX ?
	    json_utf8_prefix(text, len, CTX_EVENT_TEXT_MAX) : len;
	char *cut;

	buf_printf(b, ",\"%s\":", key);
	if (n < len) {
		cut = strndup(text, n);
		buf_json_string(b, cut);
		free(cut);
	} else {
		buf_json_string(b, text != NULL ? text : "");
	}
}

/* ---- the model services' callbacks ----------------------------------------- */

/* One upstream attempt's cost: counted here, recorded at once by the
 * services (docs/reliability.md D2). */
static void
ctx_on_usage(void *arg, const struct ctx_usage *u)
{
	struct ctx_call *c = arg;
	struct ing_ctx *ctx = c->ctx;
	const struct ctx_services *svc = ctx->svc;
	struct ctx_usage cu = *u;
	int64_t id = 0;

	/* the call's template goes with each of its rows */
	cu.prompt = c->opt != NULL ? c->opt->prompt : NULL;
	u = &cu;
	if (u->billed) {
		c->tokens += u->total_tokens;
		c->prompt_tokens += u->prompt_tokens;
		c->completion_tokens += u->completion_tokens;
		pthread_mutex_lock(&ctx->lock);
		ctx->prompt_tokens += u->prompt_tokens;
		ctx->completion_tokens += u->completion_tokens;
		ctx->total_tokens += u->total_tokens;
		pthread_mutex_unlock(&ctx->lock);
	}
	if (svc->record_usage == NULL ||
	    svc->record_usage(svc->arg, &ctx->turn, c->agent, u, &id) != 0)
		return;
	pthread_mutex_lock(&ctx->lock);
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
	pthread_mutex_unlock(&ctx->lock);
}

/* Content while the model streams: on to the client until it goes away. */
static void
ctx_on_delta(void *arg, const char *text, size_t len)
{
	struct ctx_call *c = arg;
	char *piece;

	if (c->gone || len == 0)
		return;
	piece = arena_strndup(c->a, text, len);
	if (ing_emit(c->ctx, piece) != 0)
		c->gone = true;
}

/* Polled by the model service while a call waits. */
static bool
ctx_call_cancelled(void *arg)
{
	struct ctx_call *c = arg;
	struct ing_ctx *ctx = c->ctx;
	bool stop = false;

	if (c->gone)
		return true;
	if (c->group != NULL) {
		pthread_mutex_lock(&ctx->lock);
		stop = c->group->stop;
		pthread_mutex_unlock(&ctx->lock);
	}
	return stop || (ctx->svc->client_gone != NULL &&
	    ctx->svc->client_gone(ctx->svc->arg));
}

/* True when c is a parallel call that another one's failure stopped. */
static bool
ctx_group_stopped(struct ctx_call *c)
{
	bool stop;

	if (c->group == NULL)
		return false;
	pthread_mutex_lock(&c->ctx->lock);
	stop = c->group->stop;
	pthread_mutex_unlock(&c->ctx->lock);
	return stop;
}

/* ---- limits ----------------------------------------------------------------- */

/* Check the turn's limits before one more model call, and count it. */
static int
ctx_admit(struct ctx_call *c)
{
	struct ing_ctx *ctx = c->ctx;
	const struct config *cfg = ctx->cfg;
	int calls;
	long spent;

	if (ctx_call_cancelled(c))
		return ctx_call_fail(c, 499, ctx_group_stopped(c) ?
		    CTX_MSG_STOPPED : CTX_MSG_GONE);
	if (ctx->deadline_ms > 0 && ctx->svc->clock_ms != NULL &&
	    ctx->svc->clock_ms(ctx->svc->arg) >= ctx->deadline_ms)
		return ctx_call_fail(c, 504, "the turn passed its deadline of %d ms "
		    "(flows.turn_timeout_ms)", cfg->flows.turn_timeout_ms);
	pthread_mutex_lock(&ctx->lock);
	calls = ctx->llm_calls;
	spent = ctx->total_tokens;
	if (calls < cfg->flows.max_llm_calls &&
	    (cfg->flows.max_turn_tokens <= 0 || spent < cfg->flows.max_turn_tokens))
		ctx->llm_calls++;
	pthread_mutex_unlock(&ctx->lock);
	if (calls >= cfg->flows.max_llm_calls)
		return ctx_call_fail(c, 500, "the turn reached its limit of %d "
		    "language-model calls (flows.max_llm_calls)",
		    cfg->flows.max_llm_calls);
	if (cfg->flows.max_turn_tokens > 0 && spent >= cfg->flows.max_turn_tokens)
		return ctx_call_fail(c, 500, "the turn spent %ld tokens, its budget "
		    "is %d (flows.max_turn_tokens)", spent,
		    cfg->flows.max_turn_tokens);
	return 0;
}

/* The deadline of one call: the turn's, or sooner by llm.timeout_ms. */
static int64_t
ctx_call_deadline(struct ing_ctx *ctx)
{
	int64_t d = ctx->deadline_ms, now;

	if (ctx->svc->clock_ms == NULL)
		return d;
	now = ctx->svc->clock_ms(ctx->svc->arg);
	if (ctx->cfg->llm.timeout_ms > 0 &&
	    (d == 0 || now + ctx->cfg->llm.timeout_ms < d))
		d = now + ctx->cfg->llm.timeout_ms;
	return d;
}

/* ---- one call and its tool loop ------------------------------------------ */

static const struct ing_tool *
ctx_tool_find(const struct ing_llm_options *opt, const char *name)
{
	size_t i;

	for (i = 0; i < opt->n_tools; i++)
		if (opt->tools[i].name != NULL && name != NULL &&
		    strcmp(opt->tools[i].name, name) == 0)
			return &opt->tools[i];
	return NULL;
}

/* Run one tool call; the result text for the model, or NULL when the tool
 * failed the turn (c->aborted). */
static const char *
ctx_tool_run(struct ctx_call *c, const struct ctx_tool_call *tc)
{
	const struct ing_tool *t = ctx_tool_find(c->opt, tc->name);
	const char *result = NULL;
	struct buf b = BUF_INIT;
	size_t i;
	int rc;

	ctx_event_head(&b, c->agent);
	ctx_event_text(&b, "tool", tc->name);
	ctx_event_text(&b, "arguments", tc->arguments);
	buf_putc(&b, '}');
	ctx_event(c->ctx, "tool_call", buf_cstr(&b));
	buf_reset(&b);
	if (t == NULL || t->call == NULL) {
		buf_printf(&b, "error: there is no tool \"%s\"; the tools are:",
		    tc->name ? tc->name : "");
		for (i = 0; i < c->opt->n_tools; i++)
			buf_printf(&b, " %s", c->opt->tools[i].name);
		result = arena_strndup(c->a, b.data, b.len);
	} else {
		rc = t->call(c->ctx, t->arg, tc->arguments ? tc->arguments : "{}",
		    &result);
		if (rc == ING_TOOL_ABORT) {
			c->aborted = true;
			buf_free(&b);
			return NULL;
		}
		if (result == NULL)
			result = rc == 0 ? "" : "error: the tool failed";
	}
	buf_reset(&b);
	ctx_event_head(&b, c->agent);
	ctx_event_text(&b, "tool", tc->name);
	ctx_event_text(&b, "result", result);
	buf_putc(&b, '}');
	ctx_event(c->ctx, "tool_result", buf_cstr(&b));
	buf_free(&b);
	return result;
}

/*
 * The call c with `messages`: the model, then for every round of tool calls
 * the tools and the model again, up to flows.max_tool_iterations rounds.
 * 0 with *reply set (in c->a), or -1 with c's failure set.
 */
static int
ctx_call_run(struct ctx_call *c, const struct ing_message *messages, size_t n,
    const char **reply)
{
	struct ing_ctx *ctx = c->ctx;
	const struct ctx_services *svc = ctx->svc;
	const struct ing_llm_options *opt = c->opt;
	struct ctx_message *msgs;
	struct ctx_tool_def *defs = NULL;
	struct ctx_llm_call call;
	struct ctx_llm_result res;
	size_t i, nmsg = n, cap, j;
	int rounds = 0;
	struct err e;

	*reply = NULL;
	if (svc->llm_chat == NULL)
		return ctx_call_fail(c, 503, "no language model is configured");
	cap = n + 8;
	msgs = arena_zalloc(c->a, cap * sizeof(*msgs));
	for (i = 0; i < n; i++) {
		msgs[i].role = messages[i].role;
		msgs[i].content = messages[i].content;
		msgs[i].name = messages[i].name;
	}
	if (opt != NULL && opt->n_tools > 0) {
		defs = arena_zalloc(c->a, opt->n_tools * sizeof(*defs));
		for (i = 0; i < opt->n_tools; i++) {
			defs[i].name = opt->tools[i].name;
			defs[i].description = opt->tools[i].description;
			defs[i].parameters = opt->tools[i].parameters;
		}
	}
	for (;;) {
		if (ctx_admit(c) != 0)
			return -1;
		memset(&call, 0, sizeof(call));
		call.agent = c->agent;
		call.messages = msgs;
		call.n_messages = nmsg;
		call.tools = defs;
		call.n_tools = defs != NULL ? opt->n_tools : 0;
		call.deadline_ms = ctx_call_deadline(ctx);
		call.on_delta = ctx_on_delta;
		call.on_usage = ctx_on_usage;
		call.cancelled = ctx_call_cancelled;
		call.arg = c;
		if (opt != NULL) {
			call.model = opt->model;
			call.has_temperature = opt->has_temperature != 0;
			call.temperature = opt->temperature;
			call.max_tokens = opt->max_tokens;
			call.json_response = opt->json_response != 0;
			call.stream = opt->stream && c->group == NULL &&
			    ctx->turn.emit != NULL;
		}
		memset(&res, 0, sizeof(res));
		err_clear(&e);
		if (svc->llm_chat(svc->arg, &call, c->a, &res, &e) != 0) {
			c->retry_after = res.retry_after_s;
			if (ctx_group_stopped(c))
				return ctx_call_fail(c, 499, CTX_MSG_STOPPED);
			return ctx_call_fail(c, e.status ? e.status : 502, "%s", e.msg);
		}
		if (res.n_tool_calls == 0 || defs == NULL) {
			*reply = res.content != NULL ? res.content : "";
			return 0;
		}
		if (++rounds > ctx->cfg->flows.max_tool_iterations)
			return ctx_call_fail(c, 500, "agent \"%s\" asked for tools "
			    "more than %d times in one call "
			    "(flows.max_tool_iterations)", c->agent,
			    ctx->cfg->flows.max_tool_iterations);
		/* the assistant's tool calls, then one result per call */
		if (nmsg + 1 + res.n_tool_calls > cap) {
			size_t ncap = (nmsg + 1 + res.n_tool_calls) * 2;
			struct ctx_message *nm = arena_zalloc(c->a, ncap * sizeof(*nm));

			memcpy(nm, msgs, nmsg * sizeof(*nm));
			msgs = nm;
			cap = ncap;
		}
		msgs[nmsg].role = "assistant";
		msgs[nmsg].content = res.content;
		msgs[nmsg].tool_calls = res.tool_calls;
		msgs[nmsg].n_tool_calls = res.n_tool_calls;
		nmsg++;
		for (j = 0; j < res.n_tool_calls; j++) {
			const char *out = ctx_tool_run(c, &res.tool_calls[j]);

			if (out == NULL)
				return -1;      /* the tool set the turn's failure */
			msgs[nmsg].role = "tool";
			msgs[nmsg].content = out;
			msgs[nmsg].tool_call_id = res.tool_calls[j].id;
			nmsg++;
		}
	}
}

/* agent_start / agent_end around one call. */
static void
ctx_agent_event(struct ctx_call *c, bool end, int rc)
{
	struct buf b = BUF_INIT;

	if (c->ctx->turn.event == NULL)
		return;
	ctx_event_head(&b, c->agent);
	if (!end) {
		buf_puts(&b, ",\"model\":");
		buf_json_string(&b, c->opt && c->opt->model ? c->opt->model : "chat");
	} else {
		buf_printf(&b, ",\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
		    "\"total_tokens\":%ld,\"ok\":%s", c->prompt_tokens,
		    c->completion_tokens, c->tokens, rc == 0 ? "true" : "false");
	}
	buf_putc(&b, '}');
	ctx_event(c->ctx, end ? "agent_end" : "agent_start", buf_cstr(&b));
	buf_free(&b);
}

/* Keep an agent's answer for later templates (`agents.<name>`; the last
 * answer of an agent wins).  Under ctx->lock. */
static void
ctx_answer_add(struct ing_ctx *ctx, const char *agent, const char *text)
{
	size_t i;

	for (i = 0; i < ctx->n_answers; i++)
		if (strcmp(ctx->answers[i].agent, agent) == 0) {
			ctx->answers[i].text = text;
			return;
		}
	if (ctx->n_answers == ctx->cap_answers) {
		size_t ncap = ctx->cap_answers ? ctx->cap_answers * 2 : 8;
		struct ctx_answer *n = arena_alloc(ctx->arena, ncap * sizeof(*n));

		if (ctx->n_answers)
			memcpy(n, ctx->answers, ctx->n_answers * sizeof(*n));
		ctx->answers = n;
		ctx->cap_answers = ncap;
	}
	ctx->answers[ctx->n_answers].agent = arena_strdup(ctx->arena, agent);
	ctx->answers[ctx->n_answers].text = text;
	ctx->n_answers++;
}

/* Hand a call's failure to the context (its error, as ing_error). */
static void
ctx_call_to_ctx(struct ctx_call *c)
{
	struct ing_ctx *ctx = c->ctx;

	if (c->aborted)
		return;         /* the tool called ing_error already */
	pthread_mutex_lock(&ctx->lock);
	ctx->retry_after = c->retry_after;
	ctx->err_status = c->status;
	snprintf(ctx->err_msg, sizeof(ctx->err_msg), "%s", c->msg);
	pthread_mutex_unlock(&ctx->lock);
}

int
ing_llm_chat(struct ing_ctx *ctx, const struct ing_llm_options *opt,
    const struct ing_message *messages, size_t n, const char **reply)
{
	struct ctx_call c;
	const char *out;
	int rc;

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.opt = opt;
	c.agent = opt && opt->agent ? opt->agent : ctx->turn.flow;
	/* the messages and the tool rounds in the turn's arena: a single
	 * call runs on the flow's thread, and its answer stays there */
	c.a = ctx->arena;
	*reply = NULL;
	ctx_agent_event(&c, false, 0);
	rc = ctx_call_run(&c, messages, n, &out);
	ctx_agent_event(&c, true, rc);
	if (rc != 0) {
		ctx_call_to_ctx(&c);
		return -1;
	}
	pthread_mutex_lock(&ctx->lock);
	ctx_answer_add(ctx, c.agent, out);
	pthread_mutex_unlock(&ctx->lock);
	*reply = out;
	return 0;
}

/* ---- parallel calls ------------------------------------------------------- */

struct ctx_parallel {
	struct ing_ctx *ctx;
	struct ing_llm_call *calls;
	size_t n;
	size_t next;                    /* under ctx->lock */
	struct ctx_group group;
	struct ctx_call *first_failure; /* under ctx->lock */
	struct ctx_call *state;         /* one per call */
};

/* Take calls off the list and run them until none is left. */
static void *
ctx_parallel_worker(void *arg)
{
	struct ctx_parallel *p = arg;
	struct ing_ctx *ctx = p->ctx;

	for (;;) {
		struct ing_llm_call *lc;
		struct ctx_call *c;
		const char *out = NULL;
		size_t i;
		int rc;

		pthread_mutex_lock(&ctx->lock);
		i = p->next < p->n ? p->next++ : p->n;
		pthread_mutex_unlock(&ctx->lock);
		if (i >= p->n)
			return NULL;
		lc = &p->calls[i];
		c = &p->state[i];
		c->ctx = ctx;
		c->opt = &lc->options;
		c->agent = lc->options.agent ? lc->options.agent : ctx->turn.flow;
		c->group = &p->group;
		c->a = arena_create(CTX_CALL_ARENA);
		ctx_agent_event(c, false, 0);
		rc = ctx_call_run(c, lc->messages, lc->n_messages, &out);
		ctx_agent_event(c, true, rc);
		pthread_mutex_lock(&ctx->lock);
		if (rc == 0) {
			lc->reply = arena_strdup(ctx->arena, out);
			ctx_answer_add(ctx, c->agent, lc->reply);
		} else {
			lc->status = c->aborted ? ctx->err_status : c->status;
			lc->error = arena_strdup(ctx->arena,
			    c->aborted ? ctx->err_msg : c->msg);
			if (p->first_failure == NULL)
				p->first_failure = c;
			if (p->group.fail_fast)
				p->group.stop = true;
		}
		pthread_mutex_unlock(&ctx->lock);
		arena_destroy(c->a);
		c->a = NULL;
	}
}

int
ing_llm_parallel(struct ing_ctx *ctx, struct ing_llm_call *calls, size_t n,
    int mode)
{
	struct ctx_parallel p;
	pthread_t *threads;
	pthread_attr_t attr;
	size_t i, nthreads, started = 0;
	int max = ctx->cfg->flows.max_parallel;

	if (n == 0)
		return 0;
	memset(&p, 0, sizeof(p));
	p.ctx = ctx;
	p.calls = calls;
	p.n = n;
	p.group.fail_fast = mode == ING_PARALLEL_FAIL_FAST;
	for (i = 0; i < n; i++) {
		calls[i].reply = NULL;
		calls[i].status = 0;
		calls[i].error = NULL;
	}
	pthread_mutex_lock(&ctx->lock);
	p.state = arena_zalloc(ctx->arena, n * sizeof(*p.state));
	pthread_mutex_unlock(&ctx->lock);
	nthreads = n < (size_t)(max > 0 ? max : 1) ? n : (size_t)max;
	/* this thread is one of them: nthreads - 1 helpers */
	threads = nthreads > 1 ? calloc(nthreads - 1, sizeof(*threads)) : NULL;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CTX_PARALLEL_STACK);
	for (i = 0; threads != NULL && i + 1 < nthreads; i++) {
		if (pthread_create(&threads[i], &attr, ctx_parallel_worker, &p) != 0)
			break;      /* fewer threads: the calls still all run */
		started++;
	}
	pthread_attr_destroy(&attr);
	(void)ctx_parallel_worker(&p);
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	if (p.first_failure == NULL)
		return 0;
	ctx_call_to_ctx(p.first_failure);
	return -1;
}

/* ---- prompt templates ---------------------------------------------------- */

static void
ctx_json_str(cJSON *o, const char *key, const char *v)
{
	if (v != NULL)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

/* The variables of a template: request, agents, then the flow's own. */
static cJSON *
ctx_template_vars(struct ing_ctx *ctx, const char *vars_json, struct err *e)
{
	const struct ing_chat_request *r = ctx->turn.request;
	cJSON *vars = cJSON_CreateObject(), *req, *agents, *own, *it;
	size_t i;

	req = cJSON_AddObjectToObject(vars, "request");
	if (r != NULL) {
		ctx_json_str(req, "user_prompt", r->user_prompt);
		ctx_json_str(req, "conversation_flow", r->conversation_flow);
		ctx_json_str(req, "thread_id", r->thread_id);
		ctx_json_str(req, "user_id", r->user_id);
		ctx_json_str(req, "user_name", r->user_name);
		ctx_json_str(req, "topic", r->topic);
		ctx_json_str(req, "event_type", r->event_type);
		ctx_json_str(req, "thread_memory", r->thread_memory);
	}
	agents = cJSON_AddObjectToObject(vars, "agents");
	pthread_mutex_lock(&ctx->lock);
	for (i = 0; i < ctx->n_answers; i++)
		ctx_json_str(agents, ctx->answers[i].agent, ctx->answers[i].text);
	pthread_mutex_unlock(&ctx->lock);
	if (vars_json == NULL)
		return vars;
	own = cJSON_Parse(vars_json);
	if (own == NULL || !cJSON_IsObject(own)) {
		cJSON_Delete(own);
		cJSON_Delete(vars);
		err_set(e, 500, "ing_prompt_render: vars_json is not a JSON object");
		return NULL;
	}
	while ((it = own->child) != NULL) {
		cJSON_DetachItemViaPointer(own, it);
		cJSON_DeleteItemFromObjectCaseSensitive(vars, it->string);
		cJSON_AddItemToObject(vars, it->string, it);
	}
	cJSON_Delete(own);
	return vars;
}

int
ing_prompt_render(struct ing_ctx *ctx, const char *revision, const char *file,
    const char *vars_json, struct ing_prompt *out)
{
	const struct ctx_template_service *t = ctx->svc->templates;
	struct arena *scratch;
	char hash[65];
	const char *text = NULL;
	struct err e;
	cJSON *vars;
	int rc;

	memset(out, 0, sizeof(*out));
	if (t == NULL || t->render == NULL)
		return ing_error(ctx, 503, "prompt templates are not available");
	if (revision == NULL || file == NULL)
		return ing_error(ctx, 400, "ing_prompt_render needs a revision and a file");
	err_clear(&e);
	if ((vars = ctx_template_vars(ctx, vars_json, &e)) == NULL)
		return ing_error(ctx, e.status, "%s", e.msg);
	hash[0] = '\0';
	/* rendered (file read included) in an arena of its own, outside the
	 * lock, so parallel calls' renders and callbacks do not wait on disk;
	 * only the result is copied into the turn's arena */
	scratch = arena_create(CTX_CALL_ARENA);
	rc = t->render(ctx->svc->arg, revision, file, vars, scratch, &text,
	    hash, &e);
	if (rc == 0) {
		pthread_mutex_lock(&ctx->lock);
		out->text = arena_strdup(ctx->arena, text);
		out->revision = arena_strdup(ctx->arena, revision);
		out->file = arena_strdup(ctx->arena, file);
		out->hash = arena_strdup(ctx->arena, hash);
		pthread_mutex_unlock(&ctx->lock);
	}
	arena_destroy(scratch);
	cJSON_Delete(vars);
	if (rc != 0)
		return ing_error(ctx, e.status ? e.status : 500, "%s", e.msg);
	return 0;
}

/* ---- the turn ---------------------------------------------------------- */

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

	pthread_mutex_lock(&ctx->lock);
	ctx->err_status = status;
	va_start(ap, fmt);
	vsnprintf(ctx->err_msg, sizeof(ctx->err_msg), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&ctx->lock);
	return -1;
}

void
ing_turn_usage(struct ing_ctx *ctx, long *prompt_tokens, long *completion_tokens,
    long *total_tokens)
{
	pthread_mutex_lock(&ctx->lock);
	if (prompt_tokens != NULL)
		*prompt_tokens = ctx->prompt_tokens;
	if (completion_tokens != NULL)
		*completion_tokens = ctx->completion_tokens;
	if (total_tokens != NULL)
		*total_tokens = ctx->total_tokens;
	pthread_mutex_unlock(&ctx->lock);
}

const char *
ing_request_id(struct ing_ctx *ctx)
{
	return ctx->turn.request_id != NULL ? ctx->turn.request_id : "";
}

const char *
ing_request_param(struct ing_ctx *ctx, const char *name)
{
	const cJSON *v = NULL, *params;
	char *text;
	const char *out;

	if (name == NULL || !cJSON_IsObject(ctx->turn.body))
		return NULL;
	v = cJSON_GetObjectItemCaseSensitive(ctx->turn.body, name);
	if (v == NULL) {
		params = cJSON_GetObjectItemCaseSensitive(ctx->turn.body,
		    "parameters");
		if (cJSON_IsObject(params))
			v = cJSON_GetObjectItemCaseSensitive(params, name);
	}
	if (v == NULL)
		return NULL;
	if (cJSON_IsString(v))
		return ing_strdup(ctx, v->valuestring);
	if ((text = cJSON_PrintUnformatted(v)) == NULL)
		return NULL;
	out = ing_strdup(ctx, text);
	cJSON_free(text);
	return out;
}

int
ing_cancelled(struct ing_ctx *ctx)
{
	const struct ctx_services *svc = ctx->svc;

	if (svc->client_gone != NULL && svc->client_gone(svc->arg))
		return 1;
	if (ctx->deadline_ms > 0 && svc->clock_ms != NULL &&
	    svc->clock_ms(svc->arg) >= ctx->deadline_ms)
		return 1;
	return 0;
}

/* ---- streaming ------------------------------------------------------- */

int
ing_emit(struct ing_ctx *ctx, const char *text)
{
	int rc;

	if (ctx->turn.emit == NULL || text == NULL || text[0] == '\0')
		return 0;
	pthread_mutex_lock(&ctx->lock);
	rc = ctx->turn.emit(ctx->turn.emit_arg, text);
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

int
ing_emit_status(struct ing_ctx *ctx, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	char msg[CTX_LOG_MAX];
	va_list ap;
	int rc = 0;

	if (ctx->turn.event == NULL)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_puts(&b, "{\"message\":");
	buf_json_string(&b, msg);
	buf_putc(&b, '}');
	pthread_mutex_lock(&ctx->lock);
	rc = ctx->turn.event(ctx->turn.emit_arg, "status", buf_cstr(&b));
	pthread_mutex_unlock(&ctx->lock);
	buf_free(&b);
	return rc;
}

int
ing_emit_progress(struct ing_ctx *ctx, const char *text)
{
	int rc;

	if (ctx->turn.progress == NULL || text == NULL || text[0] == '\0')
		return 0;
	pthread_mutex_lock(&ctx->lock);
	rc = ctx->turn.progress(ctx->turn.emit_arg, text);
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

/* ---- memory and logging -------------------------------------------------- */

void *
ing_alloc(struct ing_ctx *ctx, size_t size)
{
	void *p;

	pthread_mutex_lock(&ctx->lock);
	p = arena_zalloc(ctx->arena, size);
	pthread_mutex_unlock(&ctx->lock);
	return p;
}

char *
ing_strdup(struct ing_ctx *ctx, const char *s)
{
	char *p;

	pthread_mutex_lock(&ctx->lock);
	p = arena_strdup(ctx->arena, s);
	pthread_mutex_unlock(&ctx->lock);
	return p;
}

char *
ing_sprintf(struct ing_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	pthread_mutex_lock(&ctx->lock);
	s = arena_vsprintf(ctx->arena, fmt, ap);
	pthread_mutex_unlock(&ctx->lock);
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
