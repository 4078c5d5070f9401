/*
 * routes.h -- the server's route table and the lookup the event loop uses.
 * routes.c owns the table (method + path pattern -> handler); the handlers
 * live in routes_*.c, one file per area.
 */
#ifndef INGEN_ROUTES_H
#define INGEN_ROUTES_H

#include "lib/err.h"
#include "worker/exchange.h"

enum routes_result {
	ROUTES_FOUND = 0,
	ROUTES_NOT_FOUND,          /* 404 {"detail":"Not Found"} */
	ROUTES_METHOD_NOT_ALLOWED, /* 405 {"detail":"Method Not Allowed"} + Allow */
	ROUTES_BAD_PATH,           /* 400: a parameter that does not decode */
};

/*
 * Match x->req against the table: on ROUTES_FOUND fills x->route,
 * x->route_name and the parameters, and sets *handler and *flags.  On
 * ROUTES_METHOD_NOT_ALLOWED sets *allow to the Allow header value (static or
 * in x->arena).  Event-loop thread.
 */
enum routes_result routes_lookup(struct http_exchange *x, xchg_handler *handler,
    unsigned *flags, const char **allow, struct err *e);

/* Check the table's patterns once at worker start (500 on a bad one). */
int routes_check(struct err *e) ING_WUR;

/* Number of routes and the metrics name of route index i (1-based; 0 is
 * "unmatched").  For /metrics. */
int routes_count(void);
const char *routes_name(int i);

/*
 * The percent-decoded value of ?name= in the request's query, in x->arena;
 * NULL when absent, ROUTES_QUERY_BAD when it does not decode (a malformed
 * escape, a NUL).  Any thread.
 */
extern const char ROUTES_QUERY_BAD[];
const char *routes_query(struct http_exchange *x, const char *name);

/* The reference's 422 message for a body that is not the wanted object. */
#define ROUTES_MSG_INVALID_FORMAT "Invalid request format. Please check your input data."

/* The 503 of a server with no chat-history database configured at all
 * (dburl_resolve fell through to libpq's defaults, which do not answer). */
#define ROUTES_MSG_NO_DB "chat history database unavailable: none is configured " \
	"(chat_history.database_url, the PG* environment or a local cluster in " \
	"server.state_dir/pg) and libpq's defaults do not answer"

struct cJSON;

/*
 * Read the request body as a JSON object: the one classifier of every route
 * that takes JSON.  Returns true with *root set (a tree in x->arena).
 * Otherwise answers and returns false:
 *   400 {"detail":"invalid JSON: ...","request_id":...} for bytes that are
 *       not text (invalid UTF-8, NUL, \u0000, a lone surrogate) and for
 *       nesting past server.max_json_depth (docs/reliability.md H2);
 *   422 envelope (xchg_validation_error) with `syntax_msg` (NULL:
 *       ROUTES_MSG_INVALID_FORMAT) and `syntax_hint` for text that is not
 *       JSON;
 *   422 envelope with ROUTES_MSG_INVALID_FORMAT and `hint` for a JSON value
 *       that is not an object.
 * What the object holds is the route's to check (422 envelopes too).
 */
bool routes_read_json_object(struct http_exchange *x, const char *syntax_msg,
    const char *syntax_hint, const char *hint, const struct cJSON **root);

/* ?name= as an integer from min to max (def when absent) in *out; false
 * after answering 400 "<name> must be an integer from <min> to <max>". */
bool routes_query_int(struct http_exchange *x, const char *name, long min,
    long max, long def, long *out);

/* Whose threads or usage a read is for: ?user_id= (NULL: everyone's; 400
 * when it is empty, longer than DB_OWNER_MAX or not percent-decodable),
 * then the caller's own name when authentication is on and the caller is
 * not the administrator (403 `forbidden` when they named someone else).
 * False after answering. */
bool routes_query_user(struct http_exchange *x, const char *forbidden,
    const char **user);

/* Authentication off, or the caller is web.authentication.username: the
 * administrator, who may write prompts, reload the server and read every
 * user's threads and usage. */
bool routes_is_admin(const struct http_exchange *x);

/* The handlers of routes_ops.c. */
void routes_health(struct http_exchange *x);
void routes_ready(struct http_exchange *x);
void routes_metrics(struct http_exchange *x);

/* routes_chat.c */
void routes_chat(struct http_exchange *x);
void routes_chat_stream(struct http_exchange *x);

/* routes_history.c */
/* A database failure for the client: 503 with the pool's Retry-After, or
 * 500 with `what` (never the database's own message). */
void routes_db_error(struct http_exchange *x, const struct err *e, const char *what);
void routes_conversation(struct http_exchange *x);
void routes_conversations(struct http_exchange *x);
void routes_feedback(struct http_exchange *x);

/* routes_auth.c */
void routes_auth_login(struct http_exchange *x);
void routes_auth_refresh(struct http_exchange *x);
void routes_auth_verify(struct http_exchange *x);

/* routes_flows.c */
void routes_workflows(struct http_exchange *x);
void routes_workflow_status(struct http_exchange *x);

/* routes_prompts.c */
void routes_prompts_revisions(struct http_exchange *x);
void routes_prompts_workflows(struct http_exchange *x);
void routes_prompts_list(struct http_exchange *x);
void routes_prompts_view(struct http_exchange *x);
void routes_prompts_update(struct http_exchange *x);
void routes_prompts_create(struct http_exchange *x);
void routes_prompts_versions(struct http_exchange *x);
void routes_prompts_usage(struct http_exchange *x);
void routes_usage(struct http_exchange *x);       /* routes_usage.c */
/* Move the usage rollup forward when it is older than 10 s (one flow thread
 * of the worker at a time; a failure is logged, the readers sum a longer
 * tail): before a read of usage_live or prompt_usage_live. */
void routes_usage_rollup(struct http_exchange *x);
void routes_diagnostic(struct http_exchange *x);  /* routes_ops.c */
void routes_diagnostic_options(struct http_exchange *x);
/* routes_docs.c: the API document, /docs and the web console's files */
void routes_static(struct http_exchange *x);
void routes_admin_reload(struct http_exchange *x);        /* routes_ops.c */
void routes_admin_reload_status(struct http_exchange *x);

#endif
