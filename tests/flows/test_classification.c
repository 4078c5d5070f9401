/*
 * test_classification.c -- the built-in classification flow
 * (flows/builtin/classification_agent.c) run alone: its context
 * (flows/ctx.c) is built with scripted services, so the language model is
 * a script of replies given here, usage rows and log lines are kept in
 * memory, and there is no socket, no database and no server.  It checks
 * the reply, the messages the flow sent, its streamed output, the token
 * accounting per agent, and upstream failures mapped to their statuses.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/builtin/builtin.h"
#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"
#include "tests/unit/tap.h"

#define MAX_ATTEMPTS 4
#define MAX_ROWS 16
#define MAX_SENT 4
#define TIMEOUT_MS 2500
#define NOW_MS 1000

/* One attempt of the scripted upstream. */
struct attempt {
	long prompt_tokens, completion_tokens;
	int http_status;
	bool billed;
};

/* What the model answers to one call: attempts, then content or a failure. */
struct script {
	struct attempt attempts[MAX_ATTEMPTS];
	int n_attempts;
	const char *content;            /* the answer, when status is 0 */
	int status;                     /* a failure: e->status (0 = success) */
	const char *error;
	int retry_after_s;
	const char *const *deltas;      /* streamed pieces, NULL-terminated */
};

struct row {
	char agent[64], flow[64], thread_id[64], request_id[64];
	long total_tokens;
	int http_status;
	bool billed;
};

/* Everything the scripted services saw. */
struct world {
	const struct script *script;
	int calls;
	/* the messages of the last call, copied */
	char *roles[MAX_SENT], *contents[MAX_SENT];
	size_t n_sent;
	char agent[64];
	bool stream;
	int64_t deadline_ms;
	struct row rows[MAX_ROWS];
	int n_rows;
	struct buf emitted;             /* what the client received */
	int emit_budget;                /* pieces before the client goes away; -1 = no limit */
	int log_level;
	char log_action[128], log_msg[256];
};

static void
world_reset(struct world *w, const struct script *s)
{
	size_t i;

	for (i = 0; i < w->n_sent; i++) {
		free(w->roles[i]);
		free(w->contents[i]);
	}
	buf_free(&w->emitted);
	memset(w, 0, sizeof(*w));
	w->emitted = (struct buf)BUF_INIT;
	w->script = s;
	w->emit_budget = -1;
	w->log_level = -1;
}

static int
scripted_llm_chat(void *arg, const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	struct world *w = arg;
	const struct script *s = w->script;
	const char *const *d;
	size_t i;
	int k;

	w->calls++;
	for (i = 0; i < call->n_messages && i < MAX_SENT; i++) {
		w->roles[i] = strdup(call->messages[i].role);
		w->contents[i] = strdup(call->messages[i].content);
	}
	w->n_sent = i;
	snprintf(w->agent, sizeof(w->agent), "%s", call->agent);
	w->stream = call->stream;
	w->deadline_ms = call->deadline_ms;
	for (k = 0; k < s->n_attempts; k++) {
		const struct attempt *at = &s->attempts[k];
		struct ctx_usage u = {
			.model = "gpt-test", .deployment = "",
			.prompt_tokens = at->prompt_tokens,
			.completion_tokens = at->completion_tokens,
			.total_tokens = at->prompt_tokens + at->completion_tokens,
			.latency_ms = 5, .http_status = at->http_status,
			.retries = k, .billed = at->billed,
		};

		call->on_usage(call->arg, &u);
	}
	if (call->stream && s->deltas != NULL)
		for (d = s->deltas; *d != NULL; d++)
			call->on_delta(call->arg, *d, strlen(*d));
	if (s->status != 0) {
		out->retry_after_s = s->retry_after_s;
		return err_set(e, s->status, "%s", s->error);
	}
	out->content = arena_strdup(a, s->content);
	return 0;
}

static int
scripted_record_usage(void *arg, const struct ctx_turn *who, const char *agent,
    const struct ctx_usage *u, int64_t *id)
{
	struct world *w = arg;
	struct row *r;

	if (w->n_rows == MAX_ROWS)
		return -1;
	r = &w->rows[w->n_rows];
	snprintf(r->agent, sizeof(r->agent), "%s", agent);
	snprintf(r->flow, sizeof(r->flow), "%s", who->flow);
	snprintf(r->thread_id, sizeof(r->thread_id), "%s", who->thread_id);
	snprintf(r->request_id, sizeof(r->request_id), "%s", who->request_id);
	r->total_tokens = u->billed ? u->total_tokens : 0;
	r->http_status = u->http_status;
	r->billed = u->billed;
	*id = 100 + w->n_rows++;
	return 0;
}

static int64_t
scripted_clock_ms(void *arg)
{
	(void)arg;
	return NOW_MS;
}

static void
scripted_log(void *arg, int level, const char *action, const char *msg)
{
	struct world *w = arg;

	w->log_level = level;
	snprintf(w->log_action, sizeof(w->log_action), "%s", action);
	snprintf(w->log_msg, sizeof(w->log_msg), "%s", msg);
}

static int
scripted_emit(void *arg, const char *text)
{
	struct world *w = arg;

	if (w->emit_budget == 0)
		return -1;
	if (w->emit_budget > 0)
		w->emit_budget--;
	buf_puts(&w->emitted, text);
	return 0;
}

static struct world world;
static struct config cfg;
static const struct ctx_services services = {
	.arg = &world,
	.llm_chat = scripted_llm_chat,
	.record_usage = scripted_record_usage,
	.clock_ms = scripted_clock_ms,
	.log = scripted_log,
};

/* Run the flow once on a fresh context; returns what run returned. */
static int
run_flow(struct arena *a, const struct ctx_services *svc, bool stream,
    const struct ing_chat_request *req, struct ing_ctx *ctx,
    struct ing_chat_reply *reply)
{
	const struct ctx_turn who = {
		.request_id = "req-1",
		.user_id = "alice",
		.thread_id = req->thread_id,
		.flow = "classification_agent",
		.emit = stream ? scripted_emit : NULL,
		.emit_arg = &world,
	};

	ctx_init(ctx, a, &cfg, svc, &who);
	memset(reply, 0, sizeof(*reply));
	return flow_classification_agent.run(ctx, req, reply);
}

static const char answer[] = "Category: payload_type_2\n"
    "Explanation: the customer asks about a price.\n"
    "Response: The Trail 500 costs 1200 euros.";

static const char *
system_prompt_line(const char *s)
{
	return strstr(s, "You are a classification agent") == s ? s : NULL;
}

static void
test_reply_and_messages(struct arena *a)
{
	const struct script s = {
		.attempts = { { 120, 30, 200, true } }, .n_attempts = 1,
		.content = answer,
	};
	const struct ing_chat_request req = {
		.user_prompt = "How much is the Trail 500 in the shop this week, with the winter discount?",
		.conversation_flow = "classification_agent", .thread_id = "t-1",
		.user_id = "alice", .thread_memory = "no existing context.",
	};
	struct ing_ctx ctx;
	struct ing_chat_reply reply;

	world_reset(&world, &s);
	is_int(run_flow(a, &services, false, &req, &ctx, &reply), 0, "the flow succeeds");
	is_int(world.calls, 1, "one language-model call");
	is_str(reply.agent_response, answer, "the reply is the model's answer");
	is_str(reply.agent_name, "classification_agent", "the agent name");
	is_str(reply.memory_summary,
	    "Classified message: How much is the Trail 500 in the shop this week, w...",
	    "the memory summary: the first 50 characters of the prompt");
	ok(reply.followup_questions == NULL && reply.topic == NULL &&
	    reply.event_type == NULL, "no follow-up questions, topic or event type");
	is_int(world.n_sent, 2, "two messages sent");
	is_str(world.roles[0], "system", "first the system prompt");
	ok(world.contents[0] != NULL && system_prompt_line(world.contents[0]) != NULL &&
	    strstr(world.contents[0], "payload_type_3: support") != NULL,
	    "the classification instructions");
	is_str(world.roles[1], "user", "then the user message");
	is_str(world.contents[1], req.user_prompt, "a new thread: the prompt as sent");
	is_str(world.agent, "classification_agent", "the call is accounted to the agent");
	ok(!world.stream, "nothing streams without a streaming client");
	is_int(world.deadline_ms, NOW_MS + TIMEOUT_MS,
	    "the call's deadline: the services' clock plus llm.timeout_ms (sooner than the turn's)");
	/* accounting */
	is_int(ctx.prompt_tokens, 120, "prompt tokens counted");
	is_int(ctx.completion_tokens, 30, "completion tokens counted");
	is_int(ctx.total_tokens, 150, "total tokens counted");
	is_int(ctx.llm_calls, 1, "one call counted");
	is_int(world.n_rows, 1, "one usage row");
	is_str(world.rows[0].agent, "classification_agent", "the row names the agent");
	ok(strcmp(world.rows[0].flow, "classification_agent") == 0 &&
	    strcmp(world.rows[0].thread_id, "t-1") == 0 &&
	    strcmp(world.rows[0].request_id, "req-1") == 0,
	    "and the turn: flow, thread, request");
	ok(ctx.n_usage_ids == 1 && ctx.usage_ids[0] == 100,
	    "the row's id is kept to link to the reply");
}

static void
test_history(struct arena *a)
{
	const struct script s = {
		.attempts = { { 10, 5, 200, true } }, .n_attempts = 1,
		.content = "Category: undefined",
	};
	const struct ing_message hist[] = {
		{ "user", "Hello", NULL },
		{ "assistant", "Hi, how can I help?", "classification_agent" },
	};
	const struct ing_chat_request req = {
		.user_prompt = "My brakes squeak", .thread_id = "t-2",
		.conversation_flow = "classification_agent", .user_id = "alice",
		.thread_memory = "user: Hello...\nassistant: Hi, how can I help?...",
		.history = hist, .n_history = 2,
	};
	struct ing_ctx ctx;
	struct ing_chat_reply reply;

	world_reset(&world, &s);
	is_int(run_flow(a, &services, false, &req, &ctx, &reply), 0,
	    "a thread with history: the flow succeeds");
	is_str(world.contents[1], "Previous conversation:\n"
	    "user: Hello...\nassistant: Hi, how can I help?...\n\nMy brakes squeak",
	    "the user message carries the thread's memory, then the prompt");
}

static void
test_retries_per_agent(struct arena *a)
{
	/* a throttled attempt, then a billed one: two rows, one agent */
	const struct script s = {
		.attempts = { { 0, 0, 429, false }, { 200, 40, 200, true } },
		.n_attempts = 2, .content = answer,
	};
	const struct ing_chat_request req = {
		.user_prompt = "Do you sell helmets?", .thread_id = "t-3",
		.conversation_flow = "classification_agent", .user_id = "alice",
		.thread_memory = "no existing context.",
	};
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	long agent_tokens = 0;
	int i;

	world_reset(&world, &s);
	is_int(run_flow(a, &services, false, &req, &ctx, &reply), 0,
	    "a retried call: the flow succeeds");
	is_int(world.n_rows, 2, "one usage row per upstream attempt");
	for (i = 0; i < world.n_rows; i++)
		if (strcmp(world.rows[i].agent, "classification_agent") == 0)
			agent_tokens += world.rows[i].total_tokens;
	ok(!world.rows[0].billed && world.rows[0].http_status == 429 &&
	    world.rows[1].billed, "the throttled attempt is recorded unbilled");
	is_int(agent_tokens, 240, "the agent's rows hold the billed tokens");
	is_int(ctx.total_tokens, agent_tokens, "and the turn's total is the agent's");
	ok(ctx.n_usage_ids == 2 && ctx.usage_ids[0] == 100 && ctx.usage_ids[1] == 101,
	    "both rows are linked, in order");
}

static void
test_streaming(struct arena *a)
{
	static const char *const pieces[] = {
		"Category: ", "payload_type_1\n", "Response: ", "Our ", "helmets.", NULL
	};
	const struct script s = {
		.attempts = { { 50, 9, 200, true } }, .n_attempts = 1,
		.content = "Category: payload_type_1\nResponse: Our helmets.",
		.deltas = pieces,
	};
	const struct ing_chat_request req = {
		.user_prompt = "Tell me about your helmets", .thread_id = "t-4",
		.conversation_flow = "classification_agent", .user_id = "alice",
		.thread_memory = "no existing context.",
	};
	struct ing_ctx ctx;
	struct ing_chat_reply reply;

	world_reset(&world, &s);
	is_int(run_flow(a, &services, true, &req, &ctx, &reply), 0,
	    "streaming: the flow succeeds");
	ok(world.stream, "a streaming client: the flow asks the model to stream");
	is_str(buf_cstr(&world.emitted), s.content,
	    "the client receives the pieces, in order");
	is_str(reply.agent_response, s.content, "and the reply is the whole answer");

	world_reset(&world, &s);
	world.emit_budget = 2;
	is_int(run_flow(a, &services, true, &req, &ctx, &reply), 0,
	    "a client that goes away does not fail the flow");
	is_str(buf_cstr(&world.emitted), "Category: payload_type_1\n",
	    "and nothing is emitted after it went away");
	is_int(ctx.total_tokens, 59, "its tokens are still counted");
}

static void
test_failures(struct arena *a)
{
	static const struct {
		const char *name;
		int status;
		const char *msg;
		int retry_after;
	} cases[] = {
		{ "upstream throttling", 503, "azure openai is rate limiting", 7 },
		{ "the content filter", 406, "The users prompt violates the content "
		  "filter, please start a new conversation.", 0 },
		{ "the context length", 413, "This chat has exceeded the token limit", 0 },
		{ "an upstream error", 502, "azure openai answered 500", 0 },
		{ "a timeout", 504, "the language model did not answer in time", 0 },
	};
	const struct ing_chat_request req = {
		.user_prompt = "Where is my order?", .thread_id = "t-5",
		.conversation_flow = "classification_agent", .user_id = "alice",
		.thread_memory = "no existing context.",
	};
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	size_t i;
	int status;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct script s = {
			.attempts = { { 0, 0, cases[i].status, false } }, .n_attempts = 1,
			.status = cases[i].status, .error = cases[i].msg,
			.retry_after_s = cases[i].retry_after,
		};

		world_reset(&world, &s);
		ok(run_flow(a, &services, false, &req, &ctx, &reply) == -1 &&
		    reply.agent_response == NULL, "%s: the flow fails", cases[i].name);
		status = 0;
		is_str(ing_last_error(&ctx, &status), cases[i].msg,
		    "%s: the message for the client", cases[i].name);
		is_int(status, cases[i].status, "%s: status %d", cases[i].name,
		    cases[i].status);
		is_int(ctx.retry_after, cases[i].retry_after, "%s: Retry-After %d",
		    cases[i].name, cases[i].retry_after);
		ok(world.n_rows == 1 && !world.rows[0].billed && ctx.total_tokens == 0,
		    "%s: the failed call leaves an unbilled row and no tokens",
		    cases[i].name);
	}
}

/* A model that fails with no status: the context maps it to 502. */
static int
statusless_llm_chat(void *arg, const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	(void)arg;
	(void)call;
	(void)a;
	(void)out;
	return err_set(e, 0, "connection refused");
}

static void
test_unmapped_and_missing(struct arena *a)
{
	const struct ing_chat_request req = {
		.user_prompt = "Hi", .thread_id = "t-6",
		.conversation_flow = "classification_agent", .user_id = "alice",
		.thread_memory = "no existing context.",
	};
	struct ctx_services svc = services;
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	int status = 0;

	world_reset(&world, NULL);
	svc.llm_chat = statusless_llm_chat;
	is_int(run_flow(a, &svc, false, &req, &ctx, &reply), -1,
	    "a failure without a status fails the flow");
	is_str(ing_last_error(&ctx, &status), "connection refused", "with its message");
	is_int(status, 502, "mapped to 502");

	svc.llm_chat = NULL;
	is_int(run_flow(a, &svc, false, &req, &ctx, &reply), -1,
	    "no model service: the flow fails");
	is_int(ctx.err_status, 503, "with 503");
	ok(svc.kb == NULL && svc.sql == NULL && svc.templates == NULL,
	    "the knowledge base, SQL and template slots are reserved (NULL)");
}

static void
test_log(struct arena *a)
{
	const struct ing_chat_request req = {
		.user_prompt = "Hi", .thread_id = "t-7",
		.conversation_flow = "classification_agent", .user_id = "alice",
		.thread_memory = "no existing context.",
	};
	const struct script s = { .content = "ok" };
	struct ing_ctx ctx;
	struct ing_chat_reply reply;

	world_reset(&world, &s);
	is_int(run_flow(a, &services, false, &req, &ctx, &reply), 0, "a quiet run");
	is_int(world.log_level, -1, "the flow logs nothing by itself");
	ing_log(&ctx, ING_LOG_WARNING, "%d pieces", 3);
	ok(world.log_level == ING_LOG_WARNING && strcmp(world.log_msg, "3 pieces") == 0 &&
	    strcmp(world.log_action, "running flow classification_agent") == 0,
	    "ing_log reaches the log service with its level and the flow's action");
	ing_log(&ctx, 9, "loud");
	is_int(world.log_level, ING_LOG_ERROR, "a level above the range is clamped");
	ing_log(&ctx, -4, "quiet");
	is_int(world.log_level, ING_LOG_DEBUG, "a level below the range is clamped");
	ok(ING_LOG_DEBUG == 0 && ING_LOG_INFO == 1 && ING_LOG_WARNING == 2 &&
	    ING_LOG_ERROR == 3, "the log levels keep their ABI numbers");
}

int
main(void)
{
	struct arena *a = arena_create(0);

	memset(&cfg, 0, sizeof(cfg));
	cfg.llm.timeout_ms = TIMEOUT_MS;
	cfg.flows.turn_timeout_ms = TIMEOUT_MS * 5;
	cfg.flows.max_llm_calls = 25;
	cfg.flows.max_tool_iterations = 10;
	cfg.flows.max_parallel = 8;
	world.emitted = (struct buf)BUF_INIT;
	test_reply_and_messages(a);
	test_history(a);
	test_retries_per_agent(a);
	test_streaming(a);
	test_failures(a);
	test_unmapped_and_missing(a);
	test_log(a);
	world_reset(&world, NULL);
	arena_destroy(a);
	return tap_done();
}
