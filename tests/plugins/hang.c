/*
 * hang.c -- a plugin flow that never returns, for tests/e2e/test_hung_flow.py:
 * on the prompt "hang" it blocks its flow thread for good (a C plugin stuck
 * in a blocking call that ignores ing_cancelled), on "hang after a frame"
 * it first sends the content "working on it" to a streaming client, on any
 * other prompt it answers "ok" at once without calling a model.  The server must answer
 * the stuck turn at its deadline and its worker must recover
 * (docs/reliability.md, "A flow that never returns").
 *
 *   cc -shared -fPIC -o hang.so hang.c -I<dir holding ingenious/flow.h>
 */
#include <string.h>
#include <time.h>

#include <ingenious/flow.h>

static int
hang_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	if (strcmp(req->user_prompt, "hang") == 0 ||
	    strcmp(req->user_prompt, "hang after a frame") == 0) {
		struct timespec ts = { 3600, 0 };

		if (req->user_prompt[4] != '\0')
			(void)ing_emit(ctx, "working on it");
		ing_log(ctx, ING_LOG_INFO, "hang: blocking this thread for good");
		for (;;)
			nanosleep(&ts, NULL);   /* never looks at ing_cancelled */
	}
	reply->agent_response = "ok";
	reply->memory_summary = ing_sprintf(ctx, "hang test: %.40s",
	    req->user_prompt);
	return 0;
}

static const struct ing_flow hang_flow = {
	.name = "hang",
	.description = "Never returns on the prompt \"hang\"; answers \"ok\" otherwise",
	.category = "Test",
	.requires = "nothing",
	.run = hang_run,
};

ING_FLOW_MODULE("hang", "1.0.0", &hang_flow);
