/*
 * crash.c -- a test plugin for tests/e2e/test_usage_journal.py: a flow that
 * asks the configured model (agent "crash_agent"), then
 *   "crash ..."  aborts the worker (a plugin's crash after a billed call),
 *   "fail ..."   fails the turn with 502 (a flow error after a billed call),
 *   "twice ..."  asks the model a second time (agent "crash_agent_2"),
 *   otherwise    answers "model said: <the model's reply>".
 * The llm_usage row of the call must be stored in every case.
 *
 *   cc -shared -fPIC -o crash.so crash.c -I<dir holding ingenious/flow.h>
 */
#include <stdlib.h>
#include <string.h>

#include <ingenious/flow.h>

static int
crash_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	struct ing_message m[2] = {
		{ "system", "You are a test plugin.", NULL },
		{ "user", req->user_prompt, NULL },
	};
	struct ing_llm_options opt = { .agent = "crash_agent" };
	const char *answer;

	if (ing_llm_chat(ctx, &opt, m, 2, &answer) != 0)
		return -1;
	if (strncmp(req->user_prompt, "crash", 5) == 0)
		abort();
	if (strncmp(req->user_prompt, "twice", 5) == 0) {
		opt.agent = "crash_agent_2";
		if (ing_llm_chat(ctx, &opt, m, 2, &answer) != 0)
			return -1;
	}
	if (strncmp(req->user_prompt, "fail", 4) == 0)
		return ing_error(ctx, 502, "crash test: failing after the model call");
	reply->agent_response = ing_sprintf(ctx, "model said: %s", answer);
	return 0;
}

static const struct ing_flow crash_flow = {
	.name = "crash_after_call",
	.description = "Asks the model, then crashes or fails on request",
	.category = "Test",
	.requires = "a model",
	.run = crash_run,
};

ING_FLOW_MODULE("crash", "1.0.0", &crash_flow);
