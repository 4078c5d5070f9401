/*
 * routes_chat.c -- POST /api/v1/chat and POST /api/v1/chat/stream: read and
 * check the ChatRequest (the Python product's API), then hand it to the
 * turn (worker/turn.c), which runs it and replies as JSON or as a stream.
 * It never runs a flow or touches the database itself.  Flow-thread
 * handlers.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "lib/db.h"
#include "lib/json.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/turn.h"

#define CHAT_MSG_MALFORMED "JSON parsing failed. Your request contains malformed JSON."
#define CHAT_HINT_MALFORMED "Check your JSON syntax: quotes, commas and brackets. " \
	"For a JSON payload inside user_prompt, escape it as a string or send the " \
	"body from a file (curl -d @file.json)."
#define CHAT_HINT_OBJECT "Send a JSON object with 'user_prompt' and 'conversation_flow'."
/* streaming switched off: the reference says nothing, so say which key */
#define CHAT_MSG_NO_STREAMING "streaming is disabled " \
	"(web_configuration.enable_streaming is false)"

/* Parse and check the body; false when a response was set. */
static bool
chat_parse(struct http_exchange *x, struct turn_request *cr)
{
	const cJSON *root, *obj;
	struct err e;
	bool b;
	enum json_get g;
	char msg[96];

	memset(cr, 0, sizeof(*cr));
	cr->memory_record = true;
	if (!routes_read_json_object(x, CHAT_MSG_MALFORMED, CHAT_HINT_MALFORMED,
	    CHAT_HINT_OBJECT, &root))
		return false;
	err_clear(&e);
#define CHAT_FIELD(getter, key, req, out) \
	if ((g = getter(root, key, req, out, &e)) == JSON_GET_ERROR) { \
		xchg_validation_error(x, e.msg, strstr(e.msg, "missing") ? \
		    "Add the missing '" key "' field to your request body and ensure both " \
		    "'user_prompt' and 'conversation_flow' are provided." : \
		    "Check the type of '" key "' in your request body."); \
		return false; \
	}
	CHAT_FIELD(json_get_string, "user_prompt", true, &cr->user_prompt)
	CHAT_FIELD(json_get_string, "conversation_flow", true, &cr->conversation_flow)
	CHAT_FIELD(json_get_string, "thread_id", false, &cr->thread_id)
	CHAT_FIELD(json_get_string, "user_id", false, &cr->user_id)
	CHAT_FIELD(json_get_string, "user_name", false, &cr->user_name)
	CHAT_FIELD(json_get_string, "topic", false, &cr->topic)
	CHAT_FIELD(json_get_string, "event_type", false, &cr->event_type)
	CHAT_FIELD(json_get_string, "thread_memory", false, &(const char *){ NULL })
	CHAT_FIELD(json_get_bool, "stream", false, &b)
	b = true;
	CHAT_FIELD(json_get_bool, "memory_record", false, &b)
	cr->memory_record = b;
	b = false;
	CHAT_FIELD(json_get_bool, "stream_events", false, &b)
	cr->stream_events = b;
	CHAT_FIELD(json_get_object, "thread_chat_history", false, &obj)
#undef CHAT_FIELD
	cr->body = root;
	/* nothing to ask: refused before the model is called and billed */
	if (cr->user_prompt[strspn(cr->user_prompt, " \t\r\n")] == '\0') {
		xchg_validation_error(x, "user_prompt is empty",
		    "Put the question or instruction for the flow in 'user_prompt'.");
		return false;
	}
	if (strlen(cr->user_prompt) > (size_t)x->cfg->server.max_prompt_bytes) {
		snprintf(msg, sizeof(msg), "user_prompt is longer than %d bytes "
		    "(server.max_prompt_bytes)", x->cfg->server.max_prompt_bytes);
		xchg_detail(x, 413, msg);
		return false;
	}
	if (cr->conversation_flow[0] == '\0') {
		xchg_detail(x, 400, "conversation_flow not set");
		return false;
	}
	if (cr->user_id == NULL || cr->user_id[0] == '\0')
		cr->user_id = "unspecified_user";
	if (cr->thread_id != NULL && cr->thread_id[0] == '\0')
		cr->thread_id = NULL;
	/* what the database would refuse only after the flow spent its tokens */
	if (cr->thread_id != NULL && strlen(cr->thread_id) > DB_THREAD_ID_MAX) {
		snprintf(msg, sizeof(msg), "thread_id is longer than %d characters",
		    DB_THREAD_ID_MAX);
		xchg_detail(x, 400, msg);
		return false;
	}
	if (x->user == NULL && strlen(cr->user_id) > DB_OWNER_MAX) {
		snprintf(msg, sizeof(msg), "user_id is longer than %d characters",
		    DB_OWNER_MAX);
		xchg_detail(x, 400, msg);
		return false;
	}
	return true;
}

void
routes_chat(struct http_exchange *x)
{
	struct turn_request cr;

	if (chat_parse(x, &cr))
		turn_run(x, &cr, TURN_REPLY_JSON);
}

void
routes_chat_stream(struct http_exchange *x)
{
	struct turn_request cr;

	if (!x->cfg->web.enable_streaming) {
		xchg_error(x, 400, CHAT_MSG_NO_STREAMING);
		return;
	}
	if (chat_parse(x, &cr))
		turn_run(x, &cr, TURN_REPLY_STREAM);
}
