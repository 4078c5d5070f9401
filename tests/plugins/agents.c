/*
 * agents.c -- a test plugin that uses the flow API 2.0 the way a multi-agent
 * flow does (tests/e2e/test_flow_agents.py): three agents asked in parallel
 * (ing_llm_parallel, each accounted under its own name), then one agent with
 * a tool (the context's tool loop: the simulator's rule asks for
 * get_bike_price, the callback answers, the simulator's "final" text uses
 * the result), a status line, and a reply that joins the four answers.  On
 * the prompt "limit" it calls the model until flows.max_llm_calls stops it.
 */
#include <string.h>

#include <ingenious/flow.h>

static int
get_bike_price(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	(void)arg;
	if (strstr(arguments, "\"red\"") == NULL) {
		*result = "error: the argument bike must be \"red\"";
		return -1;
	}
	*result = ing_strdup(ctx, "1299 AUD");
	return 0;
}

static const struct ing_tool tools[] = {
	{ .name = "get_bike_price", .description = "The price of a bike",
	  .parameters = "{\"type\":\"object\",\"properties\":{\"bike\":"
	      "{\"type\":\"string\"}},\"required\":[\"bike\"]}",
	  .call = get_bike_price },
};

static int
agents_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	static const char *const names[3] = { "customer_sentiment_agent",
	    "fiscal_analysis_agent", "bike_lookup_agent" };
	struct ing_llm_call calls[3];
	struct ing_message m[3][2];
	struct ing_message pm[2];
	struct ing_llm_options opt = { .agent = "price_agent", .tools = tools,
	    .n_tools = 1 };
	const char *price;
	int i;

	if (strcmp(req->user_prompt, "limit") == 0) {
		struct ing_message lm[1] = { { "user", "again", NULL } };
		const char *r;

		for (i = 0; i < 1000; i++)
			if (ing_llm_chat(ctx, &(struct ing_llm_options){ .agent = "looper" },
			    lm, 1, &r) != 0)
				return -1;
		reply->agent_response = "the limit never came";
		return 0;
	}
	memset(calls, 0, sizeof(calls));
	for (i = 0; i < 3; i++) {
		m[i][0] = (struct ing_message){ "system",
		    ing_sprintf(ctx, "You are the %s.", names[i]), NULL };
		m[i][1] = (struct ing_message){ "user",
		    ing_sprintf(ctx, "%s: %s", names[i], req->user_prompt), NULL };
		calls[i].options.agent = names[i];
		calls[i].messages = m[i];
		calls[i].n_messages = 2;
	}
	if (ing_llm_parallel(ctx, calls, 3, ING_PARALLEL_ALL) != 0)
		return -1;
	ing_emit_status(ctx, "three agents answered; asking for the price");
	pm[0] = (struct ing_message){ "system", "You look up prices.", NULL };
	pm[1] = (struct ing_message){ "user", "what is the price of the red bike?", NULL };
	if (ing_llm_chat(ctx, &opt, pm, 2, &price) != 0)
		return -1;
	reply->agent_response = ing_sprintf(ctx, "[%s] [%s] [%s] [%s]",
	    calls[0].reply, calls[1].reply, calls[2].reply, price);
	reply->agent_name = "summary_agent";
	reply->memory_summary = "four agents";
	return 0;
}

static const struct ing_flow agents_flow = {
	.name = "agents",
	.description = "Parallel agents and a tool (a test plugin)",
	.category = "Test",
	.run = agents_run,
};

ING_FLOW_MODULE("agents", "1.0.0", &agents_flow);
