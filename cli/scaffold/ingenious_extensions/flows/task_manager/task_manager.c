/*
 * task_manager.c -- the task manager of the custom workflow guide, as a
 * flow in C: one agent ("task_manager_agent") answers the user's request
 * with the request in its system prompt; a request to add a task gets a
 * note appended; the thread's memory summary names the interaction.
 *
 * It sees only <ingenious/flow.h>.  Build it with `make` (task_manager.so),
 * test it with `make check` (ingen flow test against tests/replies.json),
 * and a running server loads it on SIGHUP.
 */
#define _GNU_SOURCE             /* strcasestr, a GNU extension of <string.h> */
#include <string.h>

#include <ingenious/flow.h>

static int
task_manager_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	struct ing_message m[2] = {
		{ "system", ing_sprintf(ctx, "You are a helpful task management "
		    "assistant.\n\n"
		    "You can help users:\n"
		    "1. Add new tasks\n"
		    "2. List existing tasks\n"
		    "3. Complete tasks\n"
		    "4. Delete tasks\n\n"
		    "User request: %s", req->user_prompt), NULL },
		{ "user", req->user_prompt, NULL },
	};
	struct ing_llm_options opt = { .agent = "task_manager_agent" };
	const char *answer;

	if (ing_llm_chat(ctx, &opt, m, 2, &answer) != 0)
		return -1;      /* the turn fails with the model's error */
	/* your business logic goes here */
	if (strcasestr(req->user_prompt, "add task") != NULL)
		answer = ing_sprintf(ctx, "%s\n\n✅ Task functionality would be "
		    "implemented here!", answer);
	reply->agent_response = answer;
	reply->memory_summary = ing_sprintf(ctx, "Task management "
	    "interaction: %.50s...", req->user_prompt);
	return 0;
}

static const struct ing_flow task_manager = {
	.name = "task_manager",
	.description = "Adds, lists, completes and deletes tasks (one agent)",
	.category = "Custom",
	.requires = "a chat model",
	.run = task_manager_run,
};

ING_FLOW_MODULE("task_manager", "1.0.0", &task_manager);
