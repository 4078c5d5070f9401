/*
 * plugin_flow.c -- the flow bench/plugin.sh loads as a C plugin: the same
 * work as the built-in classification flow (its system prompt, one streamed
 * model call, the same memory summary), so that the two flows differ only in
 * where they come from.  Built by bench/plugin.sh with
 * `pkg-config --cflags ingenious`.
 */
#include <string.h>

#include <ingenious/flow.h>

/* the built-in flow's prompt (flows/builtin/classification_agent.c), word for word */
static const char bench_system[] =
"You are a classification agent for a bike shop's customer messages.\n"
"Classify the message into exactly one category:\n"
"- payload_type_1: questions about products, their features and specifications\n"
"- payload_type_2: purchases, pricing and availability\n"
"- payload_type_3: support, problems and complaints\n"
"- undefined: anything else\n"
"Then answer the customer helpfully.  Reply in exactly this format:\n"
"Category: <category>\n"
"Explanation: <one sentence>\n"
"Response: <your answer to the customer>";

static int
bench_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	struct ing_llm_options opt = { .agent = "classification_agent", .stream = 1 };
	struct ing_message msgs[2] = {
		{ "system", bench_system, NULL },
		{ "user", req->user_prompt, NULL },
	};
	const char *answer;
	size_t plen = strlen(req->user_prompt);

	if (ing_llm_chat(ctx, &opt, msgs, 2, &answer) != 0)
		return -1;
	reply->agent_response = answer;
	reply->agent_name = "classification_agent";
	reply->memory_summary = ing_sprintf(ctx, "Classified message: %.*s...",
	    (int)(plen < 50 ? plen : 50), req->user_prompt);
	return 0;
}

static const struct ing_flow bench_flow = {
	.name = "bench_classification",
	.description = "The classification flow, as a C plugin (bench/plugin.sh)",
	.category = "Benchmark",
	.run = bench_run,
};

ING_FLOW_MODULE("bench_classification", "1.0.0", &bench_flow);
