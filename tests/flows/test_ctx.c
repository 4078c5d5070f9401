/*
 * test_ctx.c -- the flow context of flows/ctx.c run alone against a
 * scripted model service: the tool loop (results back to the model, an
 * unknown tool, a tool that fails the turn, the round limit), the limits of
 * a turn (model calls, token budget, deadline), parallel calls (every call
 * answered and accounted under its agent, calls really at once, the first
 * failure stopping the others or not), the model chosen by name, the
 * events of a streaming client, and a client that went away.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"
#include "tests/unit/tap.h"

#define MAX_CALLS 64
#define MAX_ROWS 64

/* Everything the scripted services saw, under `lock` (parallel calls). */
struct world {
	pthread_mutex_t lock;
	int calls;
	int in_flight, max_in_flight;
	/* what each call was sent */
	char agent[MAX_CALLS][32];
	char model[MAX_CALLS][32];
	size_t n_messages[MAX_CALLS];
	size_t n_tools[MAX_CALLS];
	char last_role[MAX_CALLS][16];
	char last_content[MAX_CALLS][256];
	char last_tool_call_id[MAX_CALLS][32];
	/* usage rows */
	char row_agent[MAX_ROWS][32];
	long row_tokens[MAX_ROWS];
	int n_rows;
	/* the script */
	int tool_rounds;                /* answer with a tool call this many times */
	const char *tool_name;
	const char *fail_agent;         /* this agent's call fails with 503 */
	bool slow;                      /* calls wait ~50 ms (parallel overlap) */
	bool block_until_cancelled;     /* others wait for cancellation */
	long tokens_per_call;
	int64_t now;
	bool gone;
	struct buf events;
};

static struct world world;
static struct config cfg;

static void
world_reset(void)
{
	buf_free(&world.events);
	memset(&world, 0, sizeof(world));
	world.lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	world.events = (struct buf)BUF_INIT;
	world.tokens_per_call = 10;
	world.now = 1000;
	world.tool_name = "get_weather";
}

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
scripted_llm_chat(void *arg, const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	struct world *w = arg;
	const struct ctx_message *last = &call->messages[call->n_messages - 1];
	struct ctx_usage u = {
		.model = "gpt-test", .deployment = "", .latency_ms = 1,
		.http_status = 200, .billed = true,
	};
	bool tool_round, fail;
	int k, i;

	pthread_mutex_lock(&w->lock);
	k = w->calls++;
	if (k < MAX_CALLS) {
		snprintf(w->agent[k], sizeof(w->agent[k]), "%s", call->agent);
		snprintf(w->model[k], sizeof(w->model[k]), "%s",
		    call->model ? call->model : "(default)");
		w->n_messages[k] = call->n_messages;
		w->n_tools[k] = call->n_tools;
		snprintf(w->last_role[k], sizeof(w->last_role[k]), "%s", last->role);
		snprintf(w->last_content[k], sizeof(w->last_content[k]), "%s",
		    last->content ? last->content : "(null)");
		snprintf(w->last_tool_call_id[k], sizeof(w->last_tool_call_id[k]),
		    "%s", last->tool_call_id ? last->tool_call_id : "");
	}
	w->in_flight++;
	if (w->in_flight > w->max_in_flight)
		w->max_in_flight = w->in_flight;
	tool_round = call->n_tools > 0 && w->tool_rounds > 0;
	if (tool_round)
		w->tool_rounds--;
	fail = w->fail_agent != NULL && strcmp(call->agent, w->fail_agent) == 0;
	pthread_mutex_unlock(&w->lock);

	if (w->slow)
		nap_ms(50);
	if (w->block_until_cancelled && !fail) {
		for (i = 0; i < 400 && !call->cancelled(call->arg); i++)
			nap_ms(5);
		if (call->cancelled(call->arg)) {
			pthread_mutex_lock(&w->lock);
			w->in_flight--;
			pthread_mutex_unlock(&w->lock);
			return err_set(e, 499, "the client went away");
		}
	}
	u.prompt_tokens = w->tokens_per_call / 2;
	u.completion_tokens = w->tokens_per_call - u.prompt_tokens;
	u.total_tokens = w->tokens_per_call;
	call->on_usage(call->arg, &u);
	pthread_mutex_lock(&w->lock);
	w->in_flight--;
	pthread_mutex_unlock(&w->lock);
	if (fail)
		return err_set(e, 503, "the model is overloaded");
	if (tool_round) {
		struct ctx_tool_call *tc = arena_zalloc(a, sizeof(*tc));

		tc->id = arena_sprintf(a, "call_%d", k);
		tc->name = w->tool_name;
		tc->arguments = "{\"city\":\"Sydney\"}";
		out->tool_calls = tc;
		out->n_tool_calls = 1;
		return 0;
	}
	out->content = arena_sprintf(a, "answer of %s to %s", call->agent,
	    last->content ? last->content : "(null)");
	out->model = "gpt-test";
	return 0;
}

static int
scripted_record_usage(void *arg, const struct ctx_turn *who, const char *agent,
    const struct ctx_usage *u, int64_t *id)
{
	struct world *w = arg;

	(void)who;
	pthread_mutex_lock(&w->lock);
	if (w->n_rows < MAX_ROWS) {
		snprintf(w->row_agent[w->n_rows], sizeof(w->row_agent[0]), "%s", agent);
		w->row_tokens[w->n_rows] = u->total_tokens;
	}
	*id = ++w->n_rows;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static int64_t
scripted_clock(void *arg)
{
	return ((struct world *)arg)->now;
}

static bool
scripted_gone(void *arg)
{
	return ((struct world *)arg)->gone;
}

static int
scripted_event(void *arg, const char *type, const char *json)
{
	(void)arg;
	buf_printf(&world.events, "%s %s\n", type, json);
	return 0;
}

static const struct ctx_services services = {
	.arg = &world,
	.llm_chat = scripted_llm_chat,
	.record_usage = scripted_record_usage,
	.clock_ms = scripted_clock,
	.client_gone = scripted_gone,
};

static void
new_ctx(struct ing_ctx *ctx, struct arena *a, bool events)
{
	struct ctx_turn who = {
		.request_id = "req-1", .user_id = "u", .thread_id = "t",
		.flow = "test_flow",
	};

	if (events)
		who.event = scripted_event;
	ctx_init(ctx, a, &cfg, &services, &who);
}

static const struct ing_message conv[] = {
	{ "system", "You are a weather bot.", NULL },
	{ "user", "Weather in Sydney?", NULL },
};

/* ---- tools ---------------------------------------------------------------- */

static int tool_calls_seen;
static char tool_args_seen[128];

static int
weather_tool(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	tool_calls_seen++;
	snprintf(tool_args_seen, sizeof(tool_args_seen), "%s", arguments);
	*result = ing_sprintf(ctx, "sunny, 25C (%s)", (const char *)arg);
	return 0;
}

static int
aborting_tool(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	(void)arg;
	(void)arguments;
	(void)result;
	ing_error(ctx, 422, "the tool refused: no such city");
	return ING_TOOL_ABORT;
}

static void
test_tool_loop(struct arena *a)
{
	static char from_tool[] = "from the tool";  /* -Wwrite-strings: not a literal */
	struct ing_tool tools[] = {
		{ .name = "get_weather", .description = "The weather of a city",
		  .parameters = "{\"type\":\"object\",\"properties\":{\"city\":"
		      "{\"type\":\"string\"}}}", .call = weather_tool,
		  .arg = from_tool },
	};
	struct ing_llm_options opt = { .agent = "weather_agent", .tools = tools,
	    .n_tools = 1 };
	struct ing_ctx ctx;
	const char *reply = NULL;
	int status;

	world_reset();
	world.tool_rounds = 1;
	tool_calls_seen = 0;
	new_ctx(&ctx, a, true);
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), 0, "tool loop: the call succeeds");
	is_int(world.calls, 2, "tool loop: the model is asked twice");
	is_int(tool_calls_seen, 1, "tool loop: the tool ran once");
	is_str(tool_args_seen, "{\"city\":\"Sydney\"}", "tool loop: with the model's arguments");
	is_int((long)world.n_tools[0], 1, "tool loop: the tool is offered");
	is_int((long)world.n_messages[1], 4, "tool loop: the second call carries the "
	    "assistant's tool call and the result");
	is_str(world.last_role[1], "tool", "tool loop: the last message is the tool's");
	is_str(world.last_content[1], "sunny, 25C (from the tool)", "tool loop: its result");
	is_str(world.last_tool_call_id[1], "call_0", "tool loop: it answers the call's id");
	is_str(reply, "answer of weather_agent to sunny, 25C (from the tool)",
	    "tool loop: the final answer");
	is_int(world.n_rows, 2, "tool loop: a usage row per model call");
	is_str(world.row_agent[1], "weather_agent", "tool loop: under the agent's name");
	is_int(ctx.total_tokens, 20, "tool loop: tokens of both calls");
	ok(strstr(buf_cstr(&world.events), "agent_start {\"agent\":\"weather_agent\"") != NULL,
	    "events: agent_start");
	ok(strstr(buf_cstr(&world.events), "tool_call {\"agent\":\"weather_agent\","
	    "\"tool\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Sydney\\\"}\"}") != NULL,
	    "events: tool_call with the arguments");
	ok(strstr(buf_cstr(&world.events), "tool_result {\"agent\":\"weather_agent\","
	    "\"tool\":\"get_weather\",\"result\":\"sunny, 25C (from the tool)\"}") != NULL,
	    "events: tool_result");
	ok(strstr(buf_cstr(&world.events), "agent_end {\"agent\":\"weather_agent\","
	    "\"prompt_tokens\":10,\"completion_tokens\":10,\"total_tokens\":20,\"ok\":true}") != NULL,
	    "events: agent_end with the agent's usage");

	/* a tool the flow does not offer: the model is told, and goes on */
	world_reset();
	world.tool_rounds = 1;
	world.tool_name = "launch_rocket";
	tool_calls_seen = 0;
	new_ctx(&ctx, a, false);
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), 0, "unknown tool: the call succeeds");
	is_int(tool_calls_seen, 0, "unknown tool: no callback ran");
	is_str(world.last_content[1], "error: there is no tool \"launch_rocket\"; the "
	    "tools are: get_weather", "unknown tool: the model gets the list");

	/* a model that never stops asking */
	world_reset();
	world.tool_rounds = 1000;
	new_ctx(&ctx, a, false);
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), -1, "tool rounds: the call fails");
	ok(strstr(ing_last_error(&ctx, &status), "flows.max_tool_iterations") != NULL,
	    "tool rounds: the message names the key (%s)", ctx.err_msg);
	is_int(status, 500, "tool rounds: status 500");
	is_int(world.calls, cfg.flows.max_tool_iterations + 1,
	    "tool rounds: the model was asked limit + 1 times");
	is_int(world.n_rows, world.calls, "tool rounds: every call spent stays recorded");

	/* a tool that fails the turn */
	world_reset();
	world.tool_rounds = 1;
	tools[0].call = aborting_tool;
	new_ctx(&ctx, a, false);
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), -1, "aborting tool: the call fails");
	is_str(ing_last_error(&ctx, &status), "the tool refused: no such city",
	    "aborting tool: the tool's message");
	is_int(status, 422, "aborting tool: the tool's status");
	is_int(world.calls, 1, "aborting tool: the model is not asked again");
}

/* ---- limits ----------------------------------------------------------------- */

static void
test_limits(struct arena *a)
{
	struct ing_llm_options opt = { .agent = "a1" };
	struct ing_ctx ctx;
	const char *reply;
	int i, rc = 0, status;

	world_reset();
	cfg.flows.max_llm_calls = 3;
	new_ctx(&ctx, a, false);
	for (i = 0; i < 4 && rc == 0; i++)
		rc = ing_llm_chat(&ctx, &opt, conv, 2, &reply);
	is_int(i, 4, "call limit: the fourth call fails");
	is_int(world.calls, 3, "call limit: three reached the model");
	ok(strstr(ing_last_error(&ctx, &status), "limit of 3 language-model calls "
	    "(flows.max_llm_calls)") != NULL, "call limit: the message (%s)", ctx.err_msg);
	is_int(ctx.total_tokens, 30, "call limit: the spent tokens stay counted");
	cfg.flows.max_llm_calls = 25;

	world_reset();
	cfg.flows.max_turn_tokens = 15;
	new_ctx(&ctx, a, false);
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), 0, "budget: 0 of 15 spent, the call runs");
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), 0, "budget: 10 of 15 spent, the call runs");
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), -1, "budget: 20 of 15 spent, refused");
	ok(strstr(ing_last_error(&ctx, &status), "spent 20 tokens, its budget is 15 "
	    "(flows.max_turn_tokens)") != NULL, "budget: the message (%s)", ctx.err_msg);
	is_int(world.n_rows, 2, "budget: two rows recorded");
	cfg.flows.max_turn_tokens = 0;

	world_reset();
	new_ctx(&ctx, a, false);
	world.now += cfg.flows.turn_timeout_ms;
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), -1, "deadline: refused");
	ok(strstr(ing_last_error(&ctx, &status), "flows.turn_timeout_ms") != NULL,
	    "deadline: the message names the key (%s)", ctx.err_msg);
	is_int(status, 504, "deadline: status 504");
	is_int(world.calls, 0, "deadline: the model was not asked");
	is_int(ing_cancelled(&ctx), 1, "deadline: ing_cancelled says so");

	world_reset();
	new_ctx(&ctx, a, false);
	is_int(ing_cancelled(&ctx), 0, "a live turn is not cancelled");
	world.gone = true;
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), -1, "client gone: refused");
	is_str(ing_last_error(&ctx, &status), "the client went away", "client gone: the message");
	is_int(status, 499, "client gone: status 499");
	is_int(ing_cancelled(&ctx), 1, "client gone: ing_cancelled says so");
}

/* ---- parallel calls ------------------------------------------------------ */

static void
test_parallel(struct arena *a)
{
	static const char *const agents[] = { "customer_sentiment_agent",
	    "fiscal_analysis_agent", "bike_lookup_agent", "summary_agent" };
	struct ing_llm_call calls[4];
	struct ing_ctx ctx;
	int i, j, status, found;

	world_reset();
	world.slow = true;
	memset(calls, 0, sizeof(calls));
	for (i = 0; i < 4; i++) {
		calls[i].options.agent = agents[i];
		calls[i].messages = conv;
		calls[i].n_messages = 2;
	}
	new_ctx(&ctx, a, false);
	is_int(ing_llm_parallel(&ctx, calls, 4, ING_PARALLEL_ALL), 0, "parallel: all answer");
	for (i = 0; i < 4; i++) {
		char want[128];

		snprintf(want, sizeof(want), "answer of %s to Weather in Sydney?", agents[i]);
		is_str(calls[i].reply, want, "parallel: call %d has its own answer", i);
	}
	ok(world.max_in_flight > 1, "parallel: calls ran at once (%d at most)",
	    world.max_in_flight);
	is_int(world.n_rows, 4, "parallel: a usage row per call");
	for (i = 0; i < 4; i++) {
		for (found = 0, j = 0; j < world.n_rows; j++)
			found += strcmp(world.row_agent[j], agents[i]) == 0;
		is_int(found, 1, "parallel: one row under %s", agents[i]);
	}
	is_int(ctx.total_tokens, 40, "parallel: the turn's tokens add up");
	is_int(ctx.llm_calls, 4, "parallel: four calls counted");

	/* wait for all: one failure, the others answer */
	world_reset();
	world.fail_agent = "fiscal_analysis_agent";
	new_ctx(&ctx, a, false);
	is_int(ing_llm_parallel(&ctx, calls, 4, ING_PARALLEL_ALL), -1,
	    "parallel, all: a failure is reported");
	is_int(calls[1].status, 503, "parallel, all: the failed call's status");
	is_str(calls[1].error, "the model is overloaded", "parallel, all: its message");
	ok(calls[0].reply != NULL && calls[2].reply != NULL && calls[3].reply != NULL,
	    "parallel, all: the others answered");
	is_str(ing_last_error(&ctx, &status), "the model is overloaded",
	    "parallel, all: the context's error is the failure");
	is_int(status, 503, "parallel, all: and its status");

	/* fail fast: the others are stopped */
	world_reset();
	world.fail_agent = "customer_sentiment_agent";
	world.block_until_cancelled = true;
	cfg.flows.max_parallel = 4;
	new_ctx(&ctx, a, false);
	is_int(ing_llm_parallel(&ctx, calls, 4, ING_PARALLEL_FAIL_FAST), -1,
	    "parallel, fail fast: the failure is reported");
	is_int(calls[0].status, 503, "parallel, fail fast: the first failure");
	for (i = 1; i < 4; i++)
		is_str(calls[i].error, "stopped: another parallel call failed",
		    "parallel, fail fast: call %d was stopped", i);
	status = 0;
	ing_last_error(&ctx, &status);
	is_int(status, 503, "parallel, fail fast: the turn fails with the first failure");

	/* one at a time when flows.max_parallel is 1 */
	world_reset();
	world.slow = true;
	cfg.flows.max_parallel = 1;
	new_ctx(&ctx, a, false);
	is_int(ing_llm_parallel(&ctx, calls, 3, ING_PARALLEL_ALL), 0,
	    "max_parallel 1: all answer");
	is_int(world.max_in_flight, 1, "max_parallel 1: one call at a time");
	cfg.flows.max_parallel = 8;
}

/* ---- the model by name, status events -------------------------------------- */

static void
test_model_and_status(struct arena *a)
{
	struct ing_llm_options opt = { .agent = "a", .model = "gpt-4o" };
	struct ing_ctx ctx;
	const char *reply;

	world_reset();
	new_ctx(&ctx, a, true);
	is_int(ing_llm_chat(&ctx, &opt, conv, 2, &reply), 0, "by name: the call succeeds");
	is_str(world.model[0], "gpt-4o", "by name: the service is asked for that model");
	is_int(ing_emit_status(&ctx, "looking up %d bikes", 3), 0, "status: sent");
	ok(strstr(buf_cstr(&world.events), "status {\"message\":\"looking up 3 bikes\"}") != NULL,
	    "status: the frame");
	is_str(ing_request_id(&ctx), "req-1", "the request id");

	world_reset();
	new_ctx(&ctx, a, false);
	is_int(ing_emit_status(&ctx, "x"), 0, "status without a stream: a no-op");
	is_int((long)world.events.len, 0, "status without a stream: nothing sent");
}

int
main(void)
{
	struct arena *a = arena_create(0);

	memset(&cfg, 0, sizeof(cfg));
	cfg.llm.timeout_ms = 2500;
	cfg.flows.turn_timeout_ms = 10000;
	cfg.flows.max_llm_calls = 25;
	cfg.flows.max_tool_iterations = 3;
	cfg.flows.max_parallel = 8;
	world.events = (struct buf)BUF_INIT;
	test_tool_loop(a);
	test_limits(a);
	test_parallel(a);
	test_model_and_status(a);
	buf_free(&world.events);
	arena_destroy(a);
	return tap_done();
}
