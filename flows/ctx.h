/*
 * ctx.h -- the server side of a flow's context (struct ing_ctx): the one
 * constructor a turn calls before it runs a flow, the table of services
 * through which the context reaches the world (the language model, usage
 * records, the clock, the log), and what the turn reads afterwards (tokens
 * spent, usage rows to link, the failure).  The server's services live in
 * worker/turn.c; a test gives scripted ones (tests/flows/), so a flow runs
 * alone, with no socket and no database.  Flows never include this header;
 * they see only flows/flow.h.
 */
#ifndef INGEN_CTX_H
#define INGEN_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "flows/flow.h"

struct arena;
struct config;
struct cJSON;
struct err;

/* What one upstream attempt cost, as the model service reports it.
 * Strings are valid during the report only. */
struct ctx_usage {
	const char *model;          /* the configured model name */
	const char *deployment;     /* "" when the API has none */
	long prompt_tokens, completion_tokens, total_tokens;
	long latency_ms;
	int http_status;            /* 0 = no HTTP response */
	int retries;                /* retries made before this attempt */
	bool billed;                /* the upstream reported usage */
	const struct ing_prompt *prompt;  /* the call's template, or NULL (set by the context) */
	/* the transcript of a billed final report: what was sent and what came
	 * back (set by the model service), or NULL/0 */
	const struct ctx_message *messages;
	size_t n_messages;
	const char *content;
	const struct ctx_tool_call *tool_calls;
	size_t n_tool_calls;
};

/* A tool call, as the model asked for it or as the context sends it back. */
struct ctx_tool_call {
	const char *id;
	const char *name;
	const char *arguments;      /* JSON text exactly as the model wrote it */
};

/* One message as the context sends it: a flow's (role, content, name) or a
 * tool round's (an assistant's tool calls, a tool's result). */
struct ctx_message {
	const char *role;           /* "system", "user", "assistant", "tool" */
	const char *content;        /* NULL for an assistant that only called tools */
	const char *name;
	const struct ctx_tool_call *tool_calls;  /* assistant */
	size_t n_tool_calls;
	const char *tool_call_id;   /* tool: the call this answers */
};

/* A tool offered to the model (what the model sees of a struct ing_tool). */
struct ctx_tool_def {
	const char *name;
	const char *description;    /* may be NULL */
	const char *parameters;     /* JSON schema text; NULL = no arguments */
};

/* One language-model call, as the context asks the model service for it. */
struct ctx_llm_call {
	const char *agent;          /* for accounting and logs */
	const char *model;          /* a configured model's name or role; NULL: "chat" */
	const struct ctx_message *messages;   /* the whole conversation, system first */
	size_t n_messages;
	const struct ctx_tool_def *tools;
	size_t n_tools;
	bool has_temperature;
	double temperature;
	int max_tokens;             /* 0 = the model's default */
	bool json_response;         /* ask for a JSON object */
	bool stream;                /* hand content to on_delta as it comes */
	int64_t deadline_ms;        /* the services' clock; 0 = none */
	/* called on the calling thread; `arg` is the context's */
	void (*on_delta)(void *arg, const char *text, size_t len);
	void (*on_usage)(void *arg, const struct ctx_usage *u);
	/* polled while the call waits: true stops it (the call then fails with
	 * 499); NULL = never */
	bool (*cancelled)(void *arg);
	void *arg;
};

/* What a model call answered (content and/or tool calls), or, on failure,
 * how long the client should wait (a 503's retry_after_s; 0 = not said). */
struct ctx_llm_result {
	const char *content;        /* NULL = empty; lives in the arena given */
	const struct ctx_tool_call *tool_calls;  /* the model asked for these */
	size_t n_tool_calls;
	const char *model;          /* the configured model that answered */
	int retry_after_s;
};

/* Who a turn is for: the identity its usage rows carry, and where its
 * partial output goes. */
struct ctx_turn {
	const char *request_id;
	const char *user_id;
	const char *thread_id;
	const char *flow;           /* the normalized flow name */
	const struct ing_chat_request *request;  /* what the flow runs on (templates' `request`) */
	/* streaming: partial output (NULL when the client does not stream);
	 * returns -1 once the client is gone */
	int (*emit)(void *arg, const char *text);
	/* streaming: one event frame {"event": type, "data": json} (NULL when
	 * the client does not stream); -1 once the client is gone */
	int (*event)(void *arg, const char *type, const char *json);
	/* streaming: a status chunk (chunk_type "status") every client sees
	 * (NULL when the client does not stream); -1 once the client is gone */
	int (*progress)(void *arg, const char *text);
	void *emit_arg;
	/* the request body as parsed (ing_request_param), or NULL */
	const struct cJSON *body;
};

/* What a statement returned, as the SQL service reports it (memory in the
 * arena given). */
struct ctx_sql_rows {
	int n_cols;
	const char **col_names;
	bool *col_numeric;
	int n_rows;
	const char ***rows;         /* NULL for SQL NULL */
	bool rows_truncated, bytes_truncated;
};

/*
 * The SQL agent's database (worker/services_sql.c: lib/sqlguard.c and
 * lib/db_sqlagent.c).  query: one statement through the guard (when on)
 * and the agent's role; 0, or -1 with e set (400 refused or an SQL error,
 * the message is for the model: "SQL Error: ..."; 503, 504, 500).
 * describe: the schema as prompt text, its first table and that table's
 * columns joined by ", ".  Thread-safe.
 */
struct ctx_sql_service {
	int (*query)(void *arg, const char *sql, struct arena *a,
	    struct ctx_sql_rows *out, struct err *e);
	int (*describe)(void *arg, struct arena *a, const char **text,
	    const char **table, const char **columns, struct err *e);
};

/* One passage, as a knowledge base service found it (memory in the arena
 * given). */
struct ctx_kb_hit {
	const char *source;         /* local: the file; Azure: the document id */
	int chunk;                  /* local: the chunk's position; Azure: -1 */
	const char *title;          /* Azure: the title, or NULL */
	const char *content;
	const char *snippet;        /* or NULL */
	double score;
};

/* Whether the Azure AI Search service is set up (ctx_kb_service.azure_state). */
enum ctx_azure_state {
	CTX_AZURE_OK = 0,
	CTX_AZURE_NOT_CONFIGURED,   /* no azure_search_services[0], no endpoint or
	                             * no credentials (or the reference's mock key) */
	CTX_AZURE_INCOMPLETE,       /* part of it is missing: `*missing` names it */
};

/*
 * The knowledge bases (flows/kbsearch.c puts the policy on top): the local
 * one in PostgreSQL and the Azure AI Search service.  The searches return
 * the number of hits (0..top_k, best first) in *hits, or -1 with e set
 * (503 unavailable or busy, 502 an upstream error, 504 a timeout, 400 a bad
 * setting).  Thread-safe.
 */
struct ctx_kb_service {
	int (*local_search)(void *arg, const char *query, int top_k,
	    struct arena *a, struct ctx_kb_hit **hits, struct err *e);
	/* the chunks stored in the local knowledge base */
	int (*local_count)(void *arg, long *chunks, struct err *e);
	/* the folder the server indexes (kb.directory, resolved) */
	const char *(*local_directory)(void *arg);
	enum ctx_azure_state (*azure_state)(void *arg, const char **index,
	    const char **missing);
	/* the preflight: the index's document count */
	int (*azure_count)(void *arg, long *count, struct err *e);
	int (*azure_search)(void *arg, const char *query, int top_k,
	    struct arena *a, struct ctx_kb_hit **hits, struct err *e);
};

/*
 * Prompt templates: render <revision>/<file> with `vars` (a cJSON object,
 * built by the context: request, agents and the flow's own) into *text (in
 * a), with the template's hash; 0, or -1 with e set (400, 404, 500).
 */
struct ctx_template_service {
	int (*render)(void *arg, const char *revision, const char *file,
	    const struct cJSON *vars, struct arena *a, const char **text,
	    char hash[65], struct err *e);
};

/*
 * The services a context reaches.  Every function gets `arg` first and is
 * called during the flow's run, from the flow's thread or, for the calls of
 * ing_llm_parallel, from several threads at once: they must be
 * thread-safe.
 */
struct ctx_services {
	void *arg;
	/* The language model: 0 with out->content set (memory in `a`), or -1
	 * with e set (the HTTP status for the client and a message safe to show)
	 * and out->retry_after_s.  Reports each attempt's cost through
	 * call->on_usage before it returns.  NULL: no model (a 503). */
	int (*llm_chat)(void *arg, const struct ctx_llm_call *call,
	    struct arena *a, struct ctx_llm_result *out, struct err *e);
	/* Record one attempt's cost for the turn `who` (metrics, a usage row):
	 * 0 with *id set to the row to link to the reply, -1 when no row was
	 * stored (the service logged why).  NULL: nothing is recorded. */
	int (*record_usage)(void *arg, const struct ctx_turn *who,
	    const char *agent, const struct ctx_usage *u, int64_t *id);
	/* Monotonic milliseconds: the time base of deadlines.  NULL: no
	 * deadline. */
	int64_t (*clock_ms)(void *arg);
	/* One log line from the flow, at an ING_LOG_* level, with the action
	 * under way.  NULL: dropped. */
	void (*log)(void *arg, int level, const char *action, const char *msg);
	/* True once the turn's client went away (its upstream calls stop).
	 * Any thread of the turn.  NULL: never. */
	bool (*client_gone)(void *arg);
	const struct ctx_kb_service *kb;            /* NULL: no knowledge base (503) */
	const struct ctx_sql_service *sql;          /* NULL: no SQL database (503) */
	const struct ctx_template_service *templates;  /* NULL: no templates (503) */
};

struct ing_ctx {
	struct arena *arena;
	const struct config *cfg;
	const struct ctx_services *svc;
	struct ctx_turn turn;
	int64_t deadline_ms;            /* svc->clock_ms base; 0 = none */

	/* guards everything below, the arena and the turn's emit/event while
	 * parallel calls run (always taken: uncontended otherwise) */
	pthread_mutex_t lock;

	/* accounting, read by the turn after the flow */
	long prompt_tokens, completion_tokens, total_tokens;
	int llm_calls;
	int64_t *usage_ids;
	size_t n_usage_ids, cap_usage_ids;

	/* the answers of this turn's agent calls, for templates' `agents` */
	struct ctx_answer {
		const char *agent, *text;
	} *answers;
	size_t n_answers, cap_answers;

	/* the failure, when run returned -1 */
	int err_status;
	int retry_after;                /* seconds, for a 503 */
	char err_msg[512];
};

/*
 * Build the context of one flow run: memory in `a`, the configuration
 * `cfg`, the services `svc` and the turn `who` (copied), which must all
 * outlive the run.  The turn's deadline is the services' clock now plus
 * cfg->flows.turn_timeout_ms; each model call also ends by
 * cfg->llm.timeout_ms.  The only writer of a context's fields besides the
 * functions of flow.h.  A context needs no freeing.
 */
void ctx_init(struct ing_ctx *ctx, struct arena *a, const struct config *cfg,
    const struct ctx_services *svc, const struct ctx_turn *who);

#endif
