/*
 * llm.h -- the Azure OpenAI (and OpenAI-compatible) chat-completions client.
 *
 * Every flow reaches a language model through this one client.  A worker
 * creates one struct llm_client after the fork and shares it between its flow
 * threads: the client holds a curl share (connection cache, DNS cache, TLS
 * sessions) and a cache of Entra ID / managed-identity tokens, both locked.
 * A call (llm_chat) is synchronous and runs on the calling flow thread; it
 * retries per docs/reliability.md U2 and maps upstream failures to the statuses of
 * U3.  Each calling thread keeps one curl easy handle from its first call
 * on, reset and detached from the share between calls, and freed when the
 * thread exits (a main thread keeps it until the process ends).  Reply memory lives in a caller-supplied arena.  Only lib/llm* and lib/azsearch.c include
 * <curl/curl.h> (lib/llm_parts.h shares its parts); this header does not,
 * so flows never see curl.
 *
 * Secrets (API keys, client secrets, access tokens) never reach a log line or
 * an error message.
 */
#ifndef INGEN_LLM_H
#define INGEN_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/err.h"

/* The exact default messages of the reference (the Python product's API). */
#define LLM_MSG_CONTENT_FILTER \
	"The users prompt violates the content filter, please start a new conversation."
#define LLM_MSG_TOKEN_LIMIT \
	"This chat has exceeded the token limit, please start a new conversation."

/* A call stopped by llm_request.cancelled (nginx's "client closed
 * request"). */
#define LLM_STATUS_CANCELLED 499
#define LLM_MSG_CANCELLED "the client went away"

/* Upper bound of attempts recorded in a reply (1 + retries). */
#define LLM_MAX_ATTEMPTS 8

/* Defaults used when the configuration leaves a value at 0. */
#define LLM_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define LLM_DEFAULT_TIMEOUT_MS         60000
#define LLM_DEFAULT_MAX_RESPONSE_BYTES (8 * 1024 * 1024)
#define LLM_DEFAULT_MAX_RETRIES        2
#define LLM_BACKOFF_BASE_MS            200
#define LLM_BACKOFF_CAP_MS             8000

struct llm_client;

/* A tool call, as the model asked for it or as it is sent back in history. */
struct llm_tool_call {
	const char *id;
	const char *name;
	const char *arguments;      /* JSON text exactly as the model wrote it */
};

/* One chat message.  `role` is "system", "user", "assistant" or "tool". */
struct llm_message {
	const char *role;
	const char *content;        /* NULL allowed for an assistant with tool calls */
	const char *name;           /* optional participant name */
	const struct llm_tool_call *tool_calls;  /* assistant messages only */
	size_t n_tool_calls;
	const char *tool_call_id;   /* tool messages: the call this answers */
};

/* A function the model may call. */
struct llm_tool {
	const char *name;
	const char *description;    /* may be NULL */
	const char *parameters;     /* JSON schema text; NULL = an empty object schema */
};

/*
 * What one upstream attempt cost, handed to llm_request.on_usage.  Strings
 * are valid during the callback only.  `billed` is true when the upstream
 * reported usage; a row with billed == false records a call that failed in
 * the end (status and retries filled, tokens 0) so errors show in the data.
 */
struct llm_usage {
	const char *model;          /* the configured model name */
	const char *deployment;     /* the configured deployment ("" for openai) */
	long prompt_tokens;
	long completion_tokens;
	long total_tokens;
	long latency_ms;            /* since the call began: retries and waits included */
	int http_status;            /* upstream status; 0 = no HTTP response */
	int retries;                /* retries made before this attempt */
	bool billed;
	bool final;                 /* the last report of this llm_chat call */
	/* a billed final report of a call that answered: the answer (content
	 * and tool calls, in the call's arena); NULL/0 otherwise */
	const char *content;
	const struct llm_tool_call *tool_calls;
	size_t n_tool_calls;
	int64_t time_ms;            /* wall clock, ms since the epoch */
};

typedef void (*llm_delta_fn)(void *arg, const char *text, size_t len);
typedef void (*llm_usage_fn)(void *arg, const struct llm_usage *u);

/*
 * One chat-completions call.  Zero-initialize, then fill what is needed.
 * Everything pointed to must stay valid for the duration of llm_chat.
 */
struct llm_request {
	const struct config_model *model;  /* NULL: cfg->models[model_index] */
	int model_index;
	const struct llm_message *messages;
	size_t n_messages;
	const struct llm_tool *tools;
	size_t n_tools;
	const char *tool_choice;    /* NULL (upstream default), "auto", "none", "required" */
	bool json_response;         /* response_format {"type":"json_object"} */
	bool has_temperature;
	double temperature;
	int max_tokens;             /* 0 = not sent */
	bool stream;                /* server-sent events; deltas go to on_delta */
	llm_delta_fn on_delta;      /* content fragments while streaming; may be NULL */
	void *delta_arg;
	llm_usage_fn on_usage;      /* usage rows (see struct llm_usage); may be NULL */
	void *usage_arg;
	int64_t deadline_ms;        /* absolute, clock_now_ms() time base; 0 = none */
	/* polled while the call waits (about every 100 ms and on each piece of
	 * data): true stops the call at once, which then fails with 499 "the
	 * client went away"; NULL = never */
	bool (*cancelled)(void *arg);
	void *cancel_arg;
	/* called (on the calling thread, with cancel_arg) with a function that
	 * wakes the call at once -- wake(h) may be called from any thread until
	 * set_waker is called again -- when the call starts, and with NULL when
	 * it ends; whoever cancels calls it so that `cancelled` is looked at now
	 * rather than at the next poll; NULL = polling only */
	void (*set_waker)(void *arg, void (*wake)(void *h), void *h);
	const char *const *extra_headers;  /* "Name: value" lines (tracing, tests) */
	size_t n_extra_headers;
};

/*
 * The outcome of a call.  Filled as far as known also when llm_chat fails
 * (attempts, statuses, retry_after_s, content_filter_results of a filtered
 * completion).  Strings and arrays live in the arena given to llm_chat.
 */
struct llm_reply {
	char *id;
	char *content;              /* NULL when the model only called tools */
	struct llm_tool_call *tool_calls;
	size_t n_tool_calls;
	char *finish_reason;        /* "stop", "length", "tool_calls", "content_filter" */
	char *content_filter_results;  /* JSON text of choices[0], NULL if absent */
	char *prompt_filter_results;   /* JSON text, NULL if absent */
	bool has_usage;
	long prompt_tokens;
	long completion_tokens;
	long total_tokens;
	char *model;                /* as the upstream reported it */
	const char *deployment;     /* as configured */
	int http_status;            /* of the last attempt; 0 = no response */
	int attempts;               /* upstream attempts made, >= 1 */
	int64_t attempt_start_ms[LLM_MAX_ATTEMPTS];   /* clock_now_ms() times */
	int attempt_status[LLM_MAX_ATTEMPTS];
	long latency_ms;            /* whole call, retries and waits included */
	int retry_after_s;          /* with a 503 failure: seconds to tell the client */
};


/*
 * Global libcurl initialization; call once per process before any thread
 * starts (the worker's post-fork init, a test's main).  Idempotent.
 */
void llm_global_init(void);

/*
 * The process keeps the curl handles of finished calls, with their
 * connections to the upstream, for the next calls.  llm_handles_trim frees
 * at most `max` of those idle for idle_ms or more, the longest idle first
 * (closing their connections), and returns how many; the worker calls it
 * each tick with server.flow_thread_idle_s and a small max, so that the
 * handles of a past peak go over a few seconds, not in one long tick of its
 * event loop.  llm_handles_idle counts the kept ones.  Any thread.
 */
size_t llm_handles_trim(int64_t idle_ms, size_t max);
size_t llm_handles_idle(void);

/*
 * Create a worker's client for `cfg`, which must outlive it.  Call after the
 * fork, before the flow threads use it; then any thread may call llm_chat
 * concurrently.  Returns NULL with `e` set when curl cannot be set up.
 */
struct llm_client *llm_client_create(const struct config *cfg, struct err *e)
    ING_WUR;

/* Release the client.  No call may be in flight.  NULL is allowed. */
void llm_client_destroy(struct llm_client *c);

/*
 * Index of the first model whose role is `role` ("chat", "embedding"; NULL
 * or "" = any role, an empty role counts as "chat"), or -1.
 */
int llm_model_find(const struct config *cfg, const char *role);

/*
 * Run one chat-completions call with retries.  On success returns 0 and
 * fills `reply` (memory in `a`).  On failure returns -1 with e->status:
 *   406  content filter (prompt or completion), message LLM_MSG_CONTENT_FILTER
 *   413  context length exceeded, message LLM_MSG_TOKEN_LIMIT
 *   502  upstream 5xx after retries, 4xx other than the above (401/403 name
 *        an authentication problem), malformed, truncated or oversized reply,
 *        connection failure
 *   503  upstream 429 after the retry budget, or a Retry-After that does not
 *        fit before the deadline; reply->retry_after_s says how long to wait
 *   504  the call's time budget or the deadline ran out
 *   499  (LLM_STATUS_CANCELLED) req->cancelled said stop, before an
 *        attempt, while the upstream answers or during a retry's wait;
 *        message LLM_MSG_CANCELLED; never retried; the attempt under way
 *        reports its usage row as any failed call does (billed tokens if
 *        the upstream had reported them, else unbilled with the status
 *        seen so far, 0 when no response had begun)
 *   500  a bad request (no model, no messages)
 * `reply` is filled as far as known either way.  req->on_usage is called on
 * this thread for every billed attempt and once more for a failed call.
 * Thread-safe; blocks up to the deadline, or until req->cancelled returns
 * true (looked at about every 100 ms and on each piece of data).  Reuses
 * the calling thread's curl handles (created at the thread's first call,
 * freed at its exit).
 */
int llm_chat(struct llm_client *c, const struct llm_request *req,
    struct arena *a, struct llm_reply *reply, struct err *e) ING_WUR;

/*
 * Is the model's endpoint reachable?  An HTTP GET of the origin of its
 * base_url (scheme, host and port: no path, no key, no token), within
 * timeout_s seconds, with llm.verify_tls and llm.ca_file.  Returns the HTTP
 * status it answered (any status means reachable: Azure answers 404 there),
 * or -1 with `e` saying why not (no base_url, DNS, connection, TLS).  For
 * `ingen validate`; not thread-safe against llm_global_init.
 */
int llm_probe(const struct config *cfg, const struct config_model *m,
    int timeout_s, struct err *e) ING_WUR;

/*
 * Forget the cached tokens (all models).  For tests and for a worker that
 * learned its credentials were rotated.  Thread-safe.
 */
void llm_client_forget_tokens(struct llm_client *c);

#endif
