/*
 * knowledge_base_agent.c -- the built-in "knowledge-base-agent" flow
 * (reference §5.2, the KB_MODE / KB_POLICY rewrite): answer a question
 * from the knowledge base.  It sees only <ingenious/flow.h> (and cJSON for
 * the tool's arguments); the policy and the search texts are the
 * context's (ing_kb_search, flows/kbsearch.c).
 *
 * kb.mode (KB_MODE):
 *   direct  (default) no model call: the answer is the context line, the
 *           thread's last messages, the question and what the search found;
 *   assist  the agent "search_assistant" with the tool "search_tool": the
 *           model searches (one call or more) and writes the answer from
 *           what it found (usually two model calls).
 * A streaming client first gets the reference's two status chunks,
 * "Searching knowledge base..." and "Generating response...".
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "flows/builtin/builtin.h"
#include "flows/flow.h"

#define KB_AGENT "search_assistant"

static const char kb_tool_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"search_query\":{\"type\":\"string\",\"description\":\"Query text.\"},"
    "\"topic\":{\"type\":\"string\",\"default\":\"general\","
    "\"description\":\"Optional topic hint.\"}},"
    "\"required\":[\"search_query\"]}";

static const char *
kb_direct_system(struct ing_ctx *ctx, const char *memory)
{
	return ing_sprintf(ctx, "You are a knowledge base search assistant that "
	    "uses Azure AI Search or local PostgreSQL.\n\n%sAlways base your "
	    "responses on knowledge base search results. If nothing is found, "
	    "clearly state that and suggest rephrasing the query. TERMINATE your "
	    "response when the task is complete.", memory);
}

static const char *
kb_assist_system(struct ing_ctx *ctx, const char *memory)
{
	return ing_sprintf(ctx, "You are a knowledge base search assistant that "
	    "can use both Azure AI Search and local PostgreSQL storage.\n%s"
	    "IMPORTANT: If there is previous conversation context above, you MUST:\n"
	    "- Reference it when answering follow-up questions\n"
	    "- Use information from previous searches to inform new searches\n"
	    "- Maintain context about what information has already been discussed\n"
	    "- Answer questions that refer to \"it\", \"that\", \"those\" etc. "
	    "based on previous context\n\n"
	    "Tasks:\n"
	    "- Help users find information by searching the knowledge base\n"
	    "- Use the search_tool to look up information\n"
	    "- Always base your responses on search results from the knowledge base\n"
	    "- Always consider and reference previous conversation when relevant\n"
	    "- If no information is found, clearly state that and suggest "
	    "rephrasing the query\n\n"
	    "Guidelines for search queries:\n"
	    "- Use specific, relevant keywords\n"
	    "- Try different phrasings if initial search doesn't return results\n"
	    "- Focus on topics that are relevant to the knowledge base content\n\n"
	    "Format your responses clearly and cite the knowledge base when "
	    "providing information.\n"
	    "TERMINATE your response when the task is complete.", memory);
}

/* search_tool(search_query, topic="general"): what the search found, as
 * text for the model.  A search the policy forbids fails the turn. */
static int
kb_tool_call(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	struct ing_kb_result r;
	const cJSON *q;
	cJSON *args;
	const char *query;

	(void)arg;
	args = cJSON_Parse(arguments != NULL ? arguments : "");
	q = cJSON_GetObjectItemCaseSensitive(args, "search_query");
	if (!cJSON_IsString(q) || q->valuestring[0] == '\0') {
		cJSON_Delete(args);
		*result = "Error: search_tool needs the argument search_query "
		    "(a non-empty string).";
		return -1;
	}
	query = ing_strdup(ctx, q->valuestring);
	cJSON_Delete(args);
	if (ing_kb_search(ctx, query, 0, ING_KB_ASSIST, &r) != 0)
		return ING_TOOL_ABORT;
	*result = r.text;
	return 0;
}

static int
kb_direct(struct ing_ctx *ctx, const struct ing_chat_request *req,
    const char *memory, struct ing_chat_reply *reply)
{
	struct ing_kb_result r;
	const char *answer, *system;

	if (ing_kb_search(ctx, req->user_prompt, 0, ING_KB_DIRECT, &r) != 0)
		return -1;
	answer = ing_sprintf(ctx, "Context: Knowledge base search assistant using "
	    "%s for finding information.\n\n%sUser question: %s\n\n%s", r.backend,
	    memory, req->user_prompt, r.text != NULL && r.text[0] != '\0' ?
	    r.text : "No response generated");
	system = kb_direct_system(ctx, memory);
	(void)ing_emit(ctx, answer);
	reply->agent_response = answer;
	reply->memory_summary = answer;
	/* no model call, so no tokens spent: the reference's estimate of what
	 * the exchange would cost, four characters a token */
	reply->token_count = (long)((strlen(system) + strlen(req->user_prompt) +
	    strlen(answer)) / 4);
	if (reply->token_count == 0)
		reply->token_count = 1;
	return 0;
}

static int
kb_assist(struct ing_ctx *ctx, const struct ing_chat_request *req,
    const char *memory, struct ing_chat_reply *reply)
{
	const char *backend = ing_kb_backend(ctx);
	struct ing_tool tool = {
		.name = "search_tool",
		.description = ing_sprintf(ctx, "Search for information using %s. "
		    "Use relevant keywords to find relevant information.", backend),
		.parameters = kb_tool_schema,
		.call = kb_tool_call,
	};
	struct ing_llm_options opt = {
		.agent = KB_AGENT,
		.stream = 1,
		.tools = &tool,
		.n_tools = 1,
	};
	struct ing_message msgs[2];
	const char *answer;

	msgs[0] = (struct ing_message){ "system", kb_assist_system(ctx, memory),
	    NULL };
	msgs[1] = (struct ing_message){ "user", ing_sprintf(ctx, "Context: "
	    "Knowledge base search assistant using %s for finding information."
	    "\n\nUser question: %s", backend, req->user_prompt), NULL };
	if (ing_llm_chat(ctx, &opt, msgs, 2, &answer) != 0)
		return -1;
	if (answer == NULL || answer[0] == '\0')
		answer = "No response generated";
	reply->agent_response = answer;
	reply->agent_name = KB_AGENT;
	reply->memory_summary = answer;
	return 0;
}

static int
kb_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	const char *memory = builtin_memory_context(ctx, req);

	(void)ing_emit_progress(ctx, "Searching knowledge base...");
	(void)ing_emit_progress(ctx, "Generating response...");
	if (strcmp(ing_kb_mode(ctx), "assist") == 0)
		return kb_assist(ctx, req, memory, reply);
	return kb_direct(ctx, req, memory, reply);
}

const struct ing_flow flow_knowledge_base_agent = {
	.name = "knowledge_base_agent",
	.description = "Answers from the knowledge base: Azure AI Search or the "
	    "local one in PostgreSQL (KB_POLICY); direct (no model call) or "
	    "assist (a model with a search tool) by KB_MODE",
	.category = "Core",
	.requires = "a knowledge base (ingen kb add, or Azure AI Search); "
	    "assist mode: a chat model",
	.run = kb_run,
};
