/*
 * flow.h -- the public API of a conversation flow (installed as
 * <ingenious/flow.h>; `pkg-config --cflags ingenious`).  ABI 2.2.
 *
 * A flow is a name, a description and a run function.  It reaches the world
 * only through the context it is given: language-model calls (with tools
 * and in parallel; token accounting per agent is automatic), the thread's
 * history and memory, the knowledge base, stream events for a streaming client, logging, and
 * memory that lives as long as the request.  A flow never includes another
 * header of the project.
 *
 * A flow's run function is called on a flow thread of a worker, once per
 * chat turn, possibly on several threads at once: it must keep no mutable
 * global state.  It returns 0 with `reply` filled, or the value of
 * ing_error() (-1) to fail the turn with an HTTP status and a message.
 *
 * Everything a flow receives and everything it allocates with ing_alloc /
 * ing_strdup / ing_sprintf lives until the response is sent; nothing needs
 * to be freed.
 *
 * The server holds every turn to limits (etc/ingenious.conf, group
 * `flows`): model calls per turn, tool rounds per call, a deadline and a
 * token budget.  A call past a limit fails with a message naming the limit
 * and its key; the tokens already spent stay recorded.
 *
 * A plugin is a shared object `<name>.so` (or `<name>/<name>.so`) on the
 * flow path (INGENIOUS_FLOW_PATH, colon-separated) that exports one
 * descriptor, written with ING_FLOW_MODULE().  The server checks the
 * descriptor's magic, ABI and build signature before it calls anything in
 * the file, and loads new, changed and removed files on SIGHUP.
 *
 * A complete flow (the seed guide's task manager; build it with
 *   cc -shared -fPIC -o task_manager.so task_manager.c \
 *       $(pkg-config --cflags --libs ingenious)):
 *
 *	#define _GNU_SOURCE             // strcasestr
 *	#include <string.h>
 *	#include <ingenious/flow.h>
 *
 *	static int
 *	task_manager_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
 *	    struct ing_chat_reply *reply)
 *	{
 *		struct ing_message m[2] = {
 *			{ "system", ing_sprintf(ctx, "You are a helpful task "
 *			    "management assistant.\n\nUser request: %s",
 *			    req->user_prompt), NULL },
 *			{ "user", req->user_prompt, NULL },
 *		};
 *		struct ing_llm_options opt = { .agent = "task_manager_agent" };
 *		const char *answer;
 *
 *		if (ing_llm_chat(ctx, &opt, m, 2, &answer) != 0)
 *			return -1;              // the turn fails with the model's error
 *		if (strcasestr(req->user_prompt, "add task") != NULL)
 *			answer = ing_sprintf(ctx, "%s\n\n✅ Task functionality "
 *			    "would be implemented here!", answer);
 *		reply->agent_response = answer;
 *		reply->memory_summary = ing_sprintf(ctx, "Task management "
 *		    "interaction: %.50s...", req->user_prompt);
 *		return 0;
 *	}
 *
 *	static const struct ing_flow task_manager = {
 *		.name = "task_manager",
 *		.description = "Adds, lists and completes tasks",
 *		.category = "Custom",
 *		.requires = "a chat model",
 *		.run = task_manager_run,
 *	};
 *
 *	ING_FLOW_MODULE("task_manager", "1.0.0", &task_manager);
 */
#ifndef INGENIOUS_FLOW_H
#define INGENIOUS_FLOW_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The ABI.  The major changes when a plugin built against the old header
 * would break (a struct a plugin allocates changes, a function changes its
 * meaning); the minor grows when functions are added.  A plugin is loaded
 * when its major equals the server's and its minor is not newer.
 */
#define ING_FLOW_ABI_MAJOR 2
#define ING_FLOW_ABI_MINOR 2   /* 2.1: prompt templates (ing_prompt_render);
                                * 2.2: the knowledge base (ing_kb_search),
                                * the SQL database (ing_sql_query),
                                * ing_request_param, ing_emit_progress */
#define ING_FLOW_MAGIC 0x464c4f57u          /* "FLOW" */
#define ING_FLOW_MODULE_SYMBOL "ing_flow_module"

struct ing_ctx;

/* One message of a conversation.  Arrays of it are allocated by flows: it
 * never grows. */
struct ing_message {
	const char *role;       /* "system", "user", "assistant" */
	const char *content;
	const char *name;       /* agent name, or NULL */
};

/* The request, as the API consumer sent it and as the server completed it.
 * Allocated by the server; later minors may add fields at the end. */
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

/* What a flow returns.  Unset fields stay NULL.  Allocated by the server. */
struct ing_chat_reply {
	const char *agent_response;     /* required */
	const char *agent_name;         /* stored with the answer; default: the flow's name */
	const char *memory_summary;
	const char *followup_questions; /* a JSON object as text, or NULL for {} */
	const char *topic;
	const char *event_type;
	/* 2.1 */
	const char *message_id;         /* the response's message_id (bike-insights: the
	                                 * payload's identifier); NULL: the stored answer's id */
	const char *output;             /* stored after the answer as a message of role
	                                 * "output", which later turns see in their history */
	long token_count;               /* the response's token_count; 0: the tokens the
	                                 * turn spent (prompt + completion) */
};

/* One flow.  Defined by the plugin as a static constant. */
struct ing_flow {
	const char *name;               /* "task_manager": lower case, '_' for '-' */
	const char *description;        /* one line, for listings */
	const char *category;           /* for /api/v1/workflows; NULL: "Custom" */
	const char *requires;           /* what it needs, for listings; NULL: "a chat model" */
	int (*run)(struct ing_ctx *ctx, const struct ing_chat_request *req,
	    struct ing_chat_reply *reply);
	void *reserved[4];              /* zero */
};

/* The build of a plugin, compared with the server's at load. */
struct ing_build_signature {
	unsigned char pointer_size, long_size, int_size, size_t_size, double_size;
	unsigned char little_endian;
	unsigned char reserved[2];
};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ING_FLOW_LITTLE_ENDIAN 0
#else
#define ING_FLOW_LITTLE_ENDIAN 1
#endif

#define ING_BUILD_SIGNATURE { sizeof(void *), sizeof(long), sizeof(int), \
	sizeof(size_t), sizeof(double), ING_FLOW_LITTLE_ENDIAN, { 0, 0 } }

/* The one symbol a plugin exports (ING_FLOW_MODULE writes it). */
struct ing_flow_module {
	unsigned int magic;                     /* ING_FLOW_MAGIC */
	unsigned short abi_major, abi_minor;    /* ING_FLOW_ABI_* of its build */
	struct ing_build_signature signature;
	const char *name;                       /* the module, for messages */
	const char *version;                    /* the module's own version */
	const struct ing_flow *const *flows;    /* NULL-terminated */
	void *reserved[4];
};

#if defined(__GNUC__)
#define ING_FLOW_EXPORT __attribute__((visibility("default")))
#else
#define ING_FLOW_EXPORT
#endif

/* Declare the plugin: its name, its version and its flows (one or more
 * `const struct ing_flow *`).  Once per shared object. */
#define ING_FLOW_MODULE(modname, modversion, ...)                          \
	static const struct ing_flow *const ing_flow_module_flows__[] =     \
	    { __VA_ARGS__, NULL };                                          \
	ING_FLOW_EXPORT const struct ing_flow_module ing_flow_module = {    \
		ING_FLOW_MAGIC, ING_FLOW_ABI_MAJOR, ING_FLOW_ABI_MINOR,        \
		ING_BUILD_SIGNATURE, modname, modversion,                      \
		ing_flow_module_flows__, { 0, 0, 0, 0 }                        \
	}

/* ---- tools ---------------------------------------------------------------- */

/*
 * A tool the model may call.  `parameters` is the JSON schema of its
 * arguments (an object schema, as text).  `call` runs on the flow's
 * thread with the arguments as the model wrote them (JSON text, not
 * validated against the schema: check what you use); it returns 0 with
 * *result set to the text the model gets back, or -1 with *result set to
 * an error text, which the model gets back as the result too (so it can
 * correct itself).  A call that fails the turn calls ing_error() and
 * returns ING_TOOL_ABORT.
 */
#define ING_TOOL_ABORT (-2)

struct ing_tool {
	const char *name;               /* [a-zA-Z0-9_-]{1,64} */
	const char *description;
	const char *parameters;         /* JSON schema; NULL: no arguments */
	int (*call)(struct ing_ctx *ctx, void *arg, const char *arguments,
	    const char **result);
	void *arg;
	void *reserved[2];              /* zero */
};

/* ---- language-model calls ------------------------------------------------ */

/* A rendered prompt template (ing_prompt_render): its text, and which
 * version of which template it came from. */
struct ing_prompt {
	const char *text;
	const char *revision;           /* the revision id */
	const char *file;               /* the template's file name */
	const char *hash;               /* SHA-256 (hex) of the template's content */
};

/* Options of one language-model call; zero means "the default".  Write it
 * with designated initializers, so the reserved fields stay zero. */
struct ing_llm_options {
	const char *agent;              /* agent name for accounting and logs; NULL: the flow's */
	const char *model;              /* a configured model's name or role; NULL: role "chat" */
	double temperature;
	int has_temperature;
	int max_tokens;
	int json_response;              /* ask for a JSON object */
	int stream;                     /* stream the answer to the client as it comes */
	const struct ing_tool *tools;   /* offered to the model; the context runs the loop */
	size_t n_tools;
	/* 2.1: the template the system prompt was rendered from; its revision
	 * and hash are recorded with the call's usage rows (NULL: none) */
	const struct ing_prompt *prompt;
	void *reserved[3];              /* zero */
};

/*
 * Ask the language model.  `messages` is the whole conversation to send
 * (system first).  On success returns 0 and *reply points to the answer.
 * With tools, the context runs the loop: the model's tool calls go to the
 * tools' callbacks and their results back to the model, until it answers
 * (at most flows.max_tool_iterations rounds).  On failure returns -1 and
 * the turn fails with the mapped status (406 content filter, 413 context
 * length, 502/503/504 upstream, 500/504 a limit) unless the flow handles
 * it; ing_last_error() says what happened.  Every attempt's usage is
 * recorded under the agent's name.
 */
int ing_llm_chat(struct ing_ctx *ctx, const struct ing_llm_options *opt,
    const struct ing_message *messages, size_t n, const char **reply);

/* One call of ing_llm_parallel: inputs, then what it answered. */
struct ing_llm_call {
	struct ing_llm_options options; /* options.agent names it in accounting */
	const struct ing_message *messages;
	size_t n_messages;
	const char *reply;              /* out: the answer, or NULL */
	int status;                     /* out: 0, or the HTTP status of its failure */
	const char *error;              /* out: NULL, or its failure */
	void *reserved[2];              /* zero */
};

#define ING_PARALLEL_ALL 0          /* wait for every call */
#define ING_PARALLEL_FAIL_FAST 1    /* the first failure stops the others */

/*
 * Run n model calls at once (at most flows.max_parallel at a time) and wait
 * for them.  Returns 0 when every call answered; -1 when one failed (the
 * first failure is the context's error, as with ing_llm_chat; with
 * ING_PARALLEL_FAIL_FAST the calls still running are stopped and say so).
 * Streaming is off for parallel calls.  Tool callbacks of parallel calls
 * run on several threads at once.
 */
int ing_llm_parallel(struct ing_ctx *ctx, struct ing_llm_call *calls,
    size_t n, int mode);

/* ---- prompt templates (2.1) ------------------------------------------------ */

/*
 * Render the template <file_storage.revisions.path>/templates/prompts/
 * <revision>/<file> (the Jinja subset of docs/templates.md: {{ a.b }},
 * {{ x | default("y") }}, {% if %}, {% for %}, comments).  Its variables:
 * `request` (user_prompt, thread_id, user_id, user_name, topic, event_type,
 * thread_memory, conversation_flow), `agents` (the answers of this turn's
 * earlier model calls, by agent name), and the members of `vars_json` (a
 * JSON object as text; NULL = none).  0 with *out filled (in the turn's
 * memory), or -1 with the context's error set: 404 no such template, 400 a
 * bad name or a template error ("file:line:col: ..."), 500 I/O.  Pass
 * `out` as ing_llm_options.prompt of the call it prompts, so the usage rows
 * record which version of which template produced the answer.
 */
int ing_prompt_render(struct ing_ctx *ctx, const char *revision,
    const char *file, const char *vars_json, struct ing_prompt *out);

/* ---- the knowledge base (2.2) ------------------------------------------- */

/* One passage found. */
struct ing_kb_hit {
	const char *source;     /* local: the file and chunk ("guide.md#3");
	                         * Azure: the document's title, else its id */
	const char *content;    /* the passage (Azure: capped by kb.azure_snippet_cap) */
	const char *snippet;    /* the matching words in context, or NULL */
	double score;           /* higher is better; comparable within one result */
};

/* What one search found, and the text the reference's flow shows for it. */
struct ing_kb_result {
	const char *backend;    /* who answered: "Azure AI Search" or "local PostgreSQL" */
	const struct ing_kb_hit *hits;
	size_t n_hits;
	int top_k;              /* the number of passages asked for */
	/* "Found relevant information from <Azure AI Search|PostgreSQL>:\n\n"
	 * and the passages; "No relevant information found in <...> for query:
	 * <query>"; or a local knowledge base's "Error: ..." text (empty, no
	 * folder) */
	const char *text;
	void *reserved[4];      /* zero */
};

/* The mode a search serves, for its default number of passages. */
#define ING_KB_DIRECT 0     /* kb.topk_direct (KB_TOPK_DIRECT, 3) */
#define ING_KB_ASSIST 1     /* kb.topk_assist (KB_TOPK_ASSIST, 5) */

/*
 * Search the knowledge base (docs/knowledge-base.md) under kb.policy
 * (KB_POLICY): Azure AI Search, the local knowledge base in PostgreSQL
 * (`ingen kb add`), or one then the other.  `top_k` > 0 is the number of
 * passages; 0 takes the request's kb_top_k, top_k or search_top_k (in the
 * body or its "parameters"), else the key of `mode`.  Returns 0 with *out
 * filled, also when nothing was found; -1 when the policy allows no
 * answer: Azure required but not configured or failing (503, 502, 504,
 * the message names the reason: policy, not_configured, incomplete_config,
 * preflight_failed, provider_failed), or the database unavailable (503).
 * The turn fails with that error unless the flow handles it.
 */
int ing_kb_search(struct ing_ctx *ctx, const char *query, int top_k, int mode,
    struct ing_kb_result *out);

/* The backend kb.policy searches first ("Azure AI Search" or "local
 * PostgreSQL"), for a prompt that names it. */
const char *ing_kb_backend(struct ing_ctx *ctx);

/* kb.mode (KB_MODE): "direct" (answer with what the search found, no model
 * call) or "assist" (a model with a search tool). */
const char *ing_kb_mode(struct ing_ctx *ctx);

/* ---- the SQL database (2.2) ---------------------------------------------- */

/* What a statement returned.  Values are text as PostgreSQL prints them;
 * NULL for SQL NULL. */
struct ing_sql_result {
	size_t n_cols;
	const char *const *columns;
	const int *numeric;             /* per column: 1 for numbers (print unquoted) */
	size_t n_rows;
	const char *const *const *rows; /* rows[r][c] */
	int rows_truncated;             /* more rows than sql_agent.max_rows */
	int bytes_truncated;            /* cut at sql_agent.max_bytes */
	/* the reference's tool text: "No results found.", one row as
	 * {'column': value, ...}, several as a list of the first 10 such rows;
	 * on failure "SQL Error: <why>" */
	const char *text;
	void *reserved[4];              /* zero */
};

/*
 * Run one read-only statement on the SQL agent's schema (docs/sql-agent.md):
 * through the statement guard (PostgreSQL's own parser: one SELECT, no
 * function or relation outside the allowed ones) and the least-privilege
 * role in a READ ONLY transaction with its timeouts and caps.  0 with *out
 * filled; -1 with out->text "SQL Error: <why>" (a refusal of the guard, an
 * error of the statement, 504 a timeout, 503 the database unavailable) and
 * ing_last_error() set, which fails the turn only when the flow returns
 * -1: a tool gives out->text back to the model so it can correct itself.
 */
int ing_sql_query(struct ing_ctx *ctx, const char *sql, struct ing_sql_result *out);

/*
 * The schema for a prompt: its tables, one a line, with their columns,
 * types and comments (*text), and the first table's name and its columns
 * joined by ", " (*table, *columns; the reference's one table).  0, or -1
 * with ing_last_error() set (503 the database unavailable, 500 no SQL
 * database configured).
 */
int ing_sql_schema(struct ing_ctx *ctx, const char **text, const char **table,
    const char **columns);

/* ---- the turn ---------------------------------------------------------- */

/* The message and HTTP status of the last failure in this context. */
const char *ing_last_error(struct ing_ctx *ctx, int *status);

/* Fail the turn with `status` and a message for the client.  Returns -1. */
int ing_error(struct ing_ctx *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 2.1: the tokens the turn has spent so far, over all its model calls
 * (each pointer may be NULL). */
void ing_turn_usage(struct ing_ctx *ctx, long *prompt_tokens,
    long *completion_tokens, long *total_tokens);

/* 2.2: a member of the request body the API does not define (a flow's own
 * parameter): the body's top-level member `name`, else the member of its
 * "parameters" object; a string as its text, a number, boolean or null as
 * JSON text, an object or array as compact JSON.  NULL when absent. */
const char *ing_request_param(struct ing_ctx *ctx, const char *name);

/* The request id of the turn (the X-Request-ID the client sees). */
const char *ing_request_id(struct ing_ctx *ctx);

/* 1 when the turn should stop: the client went away or its deadline
 * passed; 0 otherwise.  Long loops of a flow should check it. */
int ing_cancelled(struct ing_ctx *ctx);

/* ---- streaming ------------------------------------------------------- */

/* Send partial answer text to a streaming client (a "content" frame; a
 * no-op otherwise).  Returns -1 when the client went away. */
int ing_emit(struct ing_ctx *ctx, const char *text);

/* Send a status line ({"event":"status"} frame) to a streaming client.
 * The context itself sends agent_start and agent_end (with the agent's
 * usage) around every model call, and tool_call / tool_result. */
int ing_emit_status(struct ing_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 2.2: send a status chunk, as the reference's streaming flows do (a
 * "data" frame with chunk_type "status", which every client sees; the
 * frames of ing_emit_status only reach clients asking for stream_events).
 * A no-op for a JSON client; -1 when the client went away. */
int ing_emit_progress(struct ing_ctx *ctx, const char *text);

/* ---- memory and logging -------------------------------------------------- */

/* Request-lifetime memory (thread-safe within a turn). */
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
