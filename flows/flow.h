/*
 * flow.h -- the public API of a conversation flow (installed as
 * <ingenious/flow.h>).  A flow is a name, a description and a run function;
 * it reaches the world only through the context it is given: language-model
 * calls (token accounting is automatic), the thread's history and memory,
 * streaming of partial output, logging, and memory that lives as long as the
 * request.  A flow never includes another header of the project.
 *
 * A flow's run function is called on a flow thread of a worker, once per
 * chat turn, possibly on several threads at once: it must keep no mutable
 * global state.  It returns 0 with `reply` filled, or the value of
 * ing_error() (-1) to fail the turn with an HTTP status and a message.
 *
 * Everything a flow receives and everything it allocates with ing_alloc /
 * ing_strdup / ing_sprintf lives until the response is sent; nothing needs
 * to be freed.
 */
#ifndef INGENIOUS_FLOW_H
#define INGENIOUS_FLOW_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when this header changes incompatibly; a plugin built against
 * another ABI is refused at load. */
#define ING_FLOW_ABI 1

struct ing_ctx;

/* One message of a conversation. */
struct ing_message {
	const char *role;       /* "system", "user", "assistant" */
	const char *content;
	const char *name;       /* agent name, or NULL */
};

/* The request, as the API consumer sent it and as the server completed it. */
struct ing_chat_request {
	const char *user_prompt;
	const char *conversation_flow;  /* normalized: lower case, '_' */
	const char *thread_id;          /* always set (generated for a new thread) */
	const char *user_id;            /* "unspecified_user" when absent */
	const char *user_name;          /* may be NULL */
	const char *topic;              /* may be NULL */
	const char *event_type;         /* may be NULL */
	const char *thread_memory;      /* "no existing context." for a new thread */
	const struct ing_message *history;  /* the thread's last messages, oldest first */
	size_t n_history;
};

/* What a flow returns.  Unset fields stay NULL. */
struct ing_chat_reply {
	const char *agent_response;     /* required */
	const char *agent_name;         /* stored with the answer; default: the flow's name */
	const char *memory_summary;
	const char *followup_questions; /* a JSON object as text, or NULL for {} */
	const char *topic;
	const char *event_type;
};

struct ing_flow {
	int abi;                        /* ING_FLOW_ABI */
	const char *name;               /* "classification_agent" */
	const char *description;
	const char *category;           /* for /api/v1/workflows */
	int (*run)(struct ing_ctx *ctx, const struct ing_chat_request *req,
	    struct ing_chat_reply *reply);
};

/* Options of one language-model call; zero means "the default". */
struct ing_llm_options {
	const char *agent;              /* agent name for accounting and logs */
	double temperature;
	int has_temperature;
	int max_tokens;
	int json_response;              /* ask for a JSON object */
	int stream;                     /* stream the answer to the client as it comes */
};

/*
 * Ask the language model.  `messages` is the whole conversation to send
 * (system first).  On success returns 0 and *reply points to the answer.
 * On failure returns -1 and the turn fails with the mapped status (406
 * content filter, 413 context length, 502/503/504 upstream) unless the flow
 * handles it; ing_last_error() says what happened.  Usage is recorded.
 */
int ing_llm_chat(struct ing_ctx *ctx, const struct ing_llm_options *opt,
    const struct ing_message *messages, size_t n, const char **reply);

/* The message and HTTP status of the last failure in this context. */
const char *ing_last_error(struct ing_ctx *ctx, int *status);

/* Fail the turn with `status` and a message for the client.  Returns -1. */
int ing_error(struct ing_ctx *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Send partial output to a streaming client (no-op otherwise).  Returns -1
 * when the client went away. */
int ing_emit(struct ing_ctx *ctx, const char *text);

/* Request-lifetime memory. */
void *ing_alloc(struct ing_ctx *ctx, size_t size);
char *ing_strdup(struct ing_ctx *ctx, const char *s);
char *ing_sprintf(struct ing_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The levels of ing_log.  The numbers are part of the ABI. */
enum ing_log_level {
	ING_LOG_DEBUG = 0,
	ING_LOG_INFO = 1,
	ING_LOG_WARNING = 2,
	ING_LOG_ERROR = 3,
};

/* Log a line with the request id at an ING_LOG_* level (a level outside
 * the range is clamped to it). */
void ing_log(struct ing_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
