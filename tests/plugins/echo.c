/*
 * echo.c -- a test plugin (tests/e2e/test_plugins.py): one flow that
 * answers "<prefix>: <prompt>" without a model call, and crashes its
 * worker on the prompt "crash".  Built by the test with
 *   cc -shared -fPIC [-DFLOW_NAME=\"x\"] [-DECHO_PREFIX=\"y\"] ...
 * so that one source gives the flow under another name (a duplicate, a
 * replaced built-in) or with another answer (a plugin changed on SIGHUP).
 */
#include <string.h>

#include <ingenious/flow.h>

#ifndef FLOW_NAME
#define FLOW_NAME "echo"
#endif
#ifndef ECHO_PREFIX
#define ECHO_PREFIX "echo"
#endif

/* A pointer the compiler cannot see is NULL: storing through it is a real
 * segmentation fault (raise() would not do: flow threads block signals). */
static int *volatile echo_nowhere;

static int
echo_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	if (strcmp(req->user_prompt, "crash") == 0)
		*echo_nowhere = 1;      /* a plugin that crashes on one prompt */
	if (strcmp(req->user_prompt, "fail") == 0)
		return ing_error(ctx, 422, "echo refuses to echo \"fail\"");
	reply->agent_response = ing_sprintf(ctx, "%s: %s", ECHO_PREFIX,
	    req->user_prompt);
	reply->memory_summary = ing_sprintf(ctx, "echoed %.20s", req->user_prompt);
	ing_log(ctx, ING_LOG_INFO, "echoed %zu bytes", strlen(req->user_prompt));
	return 0;
}

static const struct ing_flow echo_flow = {
	.name = FLOW_NAME,
	.description = "Answers the prompt back, prefixed",
	.category = "Test",
	.requires = "nothing",
	.run = echo_run,
};

ING_FLOW_MODULE("echo_module", "1.2.3", &echo_flow);
