/*
 * llm.c -- a test plugin (tests/e2e/test_plugins.py): one flow that asks
 * the configured model through ing_llm_chat and answers "model said: ..."
 * (the simulator's reply), under its own agent name.
 */
#include <ingenious/flow.h>

static int
llm_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	struct ing_message m[2] = {
		{ "system", "You are a test plugin.", NULL },
		{ "user", req->user_prompt, NULL },
	};
	struct ing_llm_options opt = { .agent = "plugin_llm_agent" };
	const char *answer;

	if (ing_llm_chat(ctx, &opt, m, 2, &answer) != 0)
		return -1;
	reply->agent_response = ing_sprintf(ctx, "model said: %s", answer);
	return 0;
}

static const struct ing_flow llm_flow = {
	.name = "llm_echo",
	.description = "Asks the model",
	.run = llm_run,
};

ING_FLOW_MODULE("llm_module", "0.1", &llm_flow);
