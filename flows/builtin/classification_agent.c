/*
 * classification_agent.c -- the built-in "classification-agent" flow: one
 * language-model call that sorts a message into payload_type_1 (product
 * questions), payload_type_2 (purchase, pricing, availability),
 * payload_type_3 (support and complaints) or undefined, and answers it
 * (reference §5.1).  It sees only <ingenious/flow.h>.
 *
 * Unlike the original, an upstream failure is not hidden behind a canned
 * answer with 200: the turn fails with the mapped status (docs/reliability.md U3),
 * so a client never mistakes an outage for a classification.
 */
#include "autoconfig.h"

#include <string.h>

#include "flows/flow.h"

static const char classification_system[] =
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
classification_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	struct ing_llm_options opt = { .agent = "classification_agent" };
	struct ing_message msgs[2];
	const char *answer, *user;
	size_t plen;

	if (req->n_history > 0)
		user = ing_sprintf(ctx, "Previous conversation:\n%s\n\n%s",
		    req->thread_memory, req->user_prompt);
	else
		user = req->user_prompt;
	msgs[0] = (struct ing_message){ "system", classification_system, NULL };
	msgs[1] = (struct ing_message){ "user", user, NULL };
	opt.stream = 1;
	if (ing_llm_chat(ctx, &opt, msgs, 2, &answer) != 0)
		return -1;
	plen = strlen(req->user_prompt);
	reply->agent_response = answer;
	reply->agent_name = "classification_agent";
	reply->memory_summary = ing_sprintf(ctx, "Classified message: %.*s...",
	    (int)(plen < 50 ? plen : 50), req->user_prompt);
	return 0;
}

const struct ing_flow flow_classification_agent = {
	.name = "classification_agent",
	.description = "Classifies a customer message into one of three payload "
	    "types and answers it (one language-model call)",
	.category = "Core",
	.run = classification_run,
};
