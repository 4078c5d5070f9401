/*
 * templated.c -- a test plugin whose system prompt is a template of a
 * revision (tests/e2e/test_prompt_versions.py): it renders
 * <revision>/system_prompt.jinja with the request and a variable of its own,
 * passes the rendering as the call's prompt (so the usage row records the
 * revision and the hash), and answers "<rendered prompt> || <model answer>"
 * so the test sees which text the model got.  The revision is the user's
 * topic (default "r1"); a failed rendering fails the turn with its status.
 */
#include <string.h>

#include <ingenious/flow.h>

static int
templated_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	struct ing_prompt p;
	struct ing_message m[2];
	struct ing_llm_options opt = { .agent = "templated_agent", .prompt = &p };
	const char *rev = req->topic != NULL ? req->topic : "r1";
	const char *answer;

	if (ing_prompt_render(ctx, rev, "system_prompt.jinja",
	    "{\"shop\":\"Bike World\",\"items\":[\"helmet\",\"lock\"]}", &p) != 0)
		return -1;
	m[0] = (struct ing_message){ "system", p.text, NULL };
	m[1] = (struct ing_message){ "user", req->user_prompt, NULL };
	if (ing_llm_chat(ctx, &opt, m, 2, &answer) != 0)
		return -1;
	reply->agent_response = ing_sprintf(ctx, "%s || %s", p.text, answer);
	return 0;
}

static const struct ing_flow templated_flow = {
	.name = "templated",
	.description = "A system prompt from a template (a test plugin)",
	.category = "Test",
	.run = templated_run,
};

ING_FLOW_MODULE("templated", "1.0.0", &templated_flow);
