/*
 * sim.h -- the Azure OpenAI simulator (ingen-azure-sim): shared state of its
 * three parts, the server (sim_main.c: sockets, HTTP framing, routing, token
 * endpoints, counters), the chat-completions model (sim_chat.c: rules,
 * tokenizer, replies, streaming, faults) and Azure AI Search (sim_search.c).
 *
 * A test tool that ships with the project: it serves loopback only, never
 * calls out, and keeps everything in memory.  Replies are deterministic
 * functions of the request so tests can assert on them.
 */
#ifndef INGEN_SIM_H
#define INGEN_SIM_H

#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http.h"

#define SIM_MAX_KEY_TIMES   64      /* attempt times kept per x-sim-key */
#define SIM_DEFAULT_TTL     3599    /* seconds an issued token lives */
#define SIM_DEFAULT_CONTEXT 128000  /* tokens of the simulated context window */
#define SIM_DEFAULT_MODEL   "gpt-4o-2024-08-06"

/* What a fault does (docs/simulator.md lists them). */
enum sim_fault_kind {
	SIM_FAULT_NONE = 0,
	SIM_FAULT_STATUS,           /* an error status with Azure's body */
	SIM_FAULT_HANG,             /* read the request, never answer */
	SIM_FAULT_DRIP,             /* the normal reply, `bps` bytes per second */
	SIM_FAULT_MALFORMED,        /* 200 with a body that is not JSON */
	SIM_FAULT_TRUNCATED,        /* 200, Content-Length promises more than is sent */
	SIM_FAULT_OVERSIZED,        /* 200 with a valid, huge body */
	SIM_FAULT_CF_PROMPT,        /* 400 content_filter on the prompt */
	SIM_FAULT_CF_COMPLETION,    /* 200, finish_reason content_filter */
	SIM_FAULT_CONTEXT,          /* 400 context_length_exceeded */
	SIM_FAULT_RESET,            /* close the connection without a reply */
};

struct sim_fault {
	enum sim_fault_kind kind;
	int status;                 /* SIM_FAULT_STATUS */
	long retry_after_ms;        /* -1 = no retry-after-ms header */
	long retry_after_s;         /* -1 = no Retry-After header */
	long times;                 /* fail the first `times` attempts of a key; 0 = always */
	long bps;                   /* drip rate */
	long bytes;                 /* oversized size */
	long latency_ms;            /* extra delay before answering */
	long hang_ms;               /* how long a hang lasts at most */
};

/* One rule of the rules file. */
struct sim_rule {
	char *match;                /* case-insensitive substring, or NULL */
	bool has_regex;
	regex_t regex;
	char *system;               /* substring of the system message, or NULL */
	char *deployment;           /* only this deployment, or NULL */
	char *tool;                 /* call this tool ... */
	char *arguments;            /* ... with these arguments (JSON text) */
	char *content;              /* or answer this */
	char *final;                /* after the tool result ("{tool_result}" expands) */
	char *fault;                /* or fail like this (fault spec) */
};

/* A document of the search index. */
struct sim_doc {
	cJSON *json;                /* the whole document as loaded */
	const char *index;          /* its index, or NULL = every index */
	const char *id;
	const char *title;
	const char *content;
	const char *category;
};

struct sim_counter {
	struct sim_counter *next;
	char *name;
	long n;
	double times[SIM_MAX_KEY_TIMES];    /* seconds since start */
	int n_times;
};

struct sim_token {
	struct sim_token *next;
	char *token;
	int64_t expires_ms;         /* monotonic */
};

struct sim {
	/* options */
	const char *host;
	int port;
	const char *rules_file;
	const char *docs_file;
	long latency_ms;
	const char *api_key;        /* NULL = no key check */
	const char *search_key;     /* NULL = api_key */
	const char *client_secret;  /* NULL = any secret is accepted */
	const char *model_name;
	long token_ttl;
	long context_limit;
	bool quiet;

	char **indexes;             /* the index names of an object documents file */
	size_t n_indexes;
	struct sim_rule *rules;
	size_t n_rules;
	struct sim_doc *docs;
	size_t n_docs;
	cJSON *docs_root;

	/* everything below is guarded by `lock` */
	pthread_mutex_t lock;
	int64_t start_ms;
	struct sim_counter *paths;
	struct sim_counter *keys;
	struct sim_token *tokens;
	long tokens_entra;
	long tokens_imds;
	long chat_requests;
	long stream_requests;
	long search_requests;
	long search_count_requests;
	cJSON *search_last;         /* what the last search or $count asked for */
	char *search_fault;         /* fault of every search call (POST /sim/search-fault) */
	long search_fault_hits;     /* search calls that met it, for its times=N */
	long auth_failures;
	long connections;           /* accepted since start or reset */
	uint64_t token_seq;
};

/* A connection as the handlers see it. */
struct sim_conn {
	int fd;
	struct sim *sim;
	bool close;                 /* close after this response */
};

/* What a handler got. */
struct sim_req {
	struct http_request *http;
	const char *path;           /* decoded path, fault prefix removed */
	const char *fault_spec;     /* from the header or the path prefix, or NULL */
	const char *body;
	size_t body_len;
	struct arena *arena;
};

/* ---- sim_main.c -------------------------------------------------------- */

void sim_sleep_ms(long ms);

/* Write all bytes; -1 when the peer is gone. */
int sim_write_all(int fd, const void *p, size_t n);

/* Send a complete response (head + body) with optional extra fields. */
int sim_respond(struct sim_conn *c, int status, const char *ctype,
    const char *body, size_t len, const struct http_header *extra,
    size_t n_extra);

/* Send a JSON error body {"error":{"code":...,"message":...}}. */
int sim_respond_error(struct sim_conn *c, int status, const char *code,
    const char *message);

/* Count an attempt for `key` (x-sim-key); returns the count including it. */
long sim_count_key(struct sim *s, const char *key);

/*
 * Check the API key or bearer token of a request (when --api-key is set).
 * Returns 0 when allowed; otherwise sends Azure's 401 and returns -1.
 */
int sim_check_auth(struct sim_conn *c, const struct sim_req *r,
    const char *key, bool bearer_key_ok);

/* ---- sim_chat.c -------------------------------------------------------- */

/* Parse a fault spec "kind[;k=v]*" into f.  Returns 0 or -1 with e set. */
int sim_fault_parse(const char *spec, struct sim_fault *f, struct err *e);

/* Load the rules file (a JSON list).  Returns 0 or -1 with e set. */
int sim_rules_load(struct sim *s, const char *path, struct err *e);

/* Hold the connection without answering, until the peer closes it or
 * max_ms pass (the hang fault). */
void sim_hang(struct sim_conn *c, long max_ms);

/* Tokens of a text by the simulator's tokenizer (docs/simulator.md). */
long sim_tokens(const char *s);

/* Serve POST .../chat/completions; `azure` selects the Azure reply shape. */
void sim_chat(struct sim_conn *c, const struct sim_req *r, bool azure,
    const char *deployment);

/* ---- sim_search.c ------------------------------------------------------ */

/* Load the documents file (a JSON list).  Returns 0 or -1 with e set. */
int sim_docs_load(struct sim *s, const char *path, struct err *e);

/* Serve POST /indexes/{index}/docs/search. */
void sim_search(struct sim_conn *c, const struct sim_req *r,
    const char *index);

/* Serve GET /indexes/{index}/docs/$count (text/plain, like Azure). */
void sim_search_count(struct sim_conn *c, const struct sim_req *r,
    const char *index);

/* Serve POST /sim/search-fault: the body (a fault spec; empty clears it)
 * becomes the fault of every later search and $count call. */
void sim_search_set_fault(struct sim_conn *c, const struct sim_req *r);

#endif
