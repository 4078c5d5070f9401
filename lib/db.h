/*
 * db.h -- the PostgreSQL layer, as the server uses it: a pool of
 * connections and calls by purpose.  Only the layer's own files
 * (lib/db_*.c, see lib/db_int.h) include <libpq-fe.h>.
 *
 * The *pool* serves a worker process: a few connections per worker, opened
 * lazily after the fork, shared by the flow threads, with prepared
 * statements, connect_timeout, TCP keepalives, statement_timeout, and a
 * backoff when the database is down (callers then fail at once with 503
 * instead of each waiting for a connect timeout).  Its API is by purpose
 * (save a turn, read a thread, record usage, ...), never raw SQL, so no
 * handler sees libpq.  The command line's sessions (migrations, the local
 * cluster's bootstrap) are in lib/db_session.h.
 *
 * Errors: -1 / DB_ERROR with `e` set to 503 ("database unavailable" or
 * "database busy": the caller answers with Retry-After: db_retry_after()),
 * 400 where a function says so, or 500.  Which failures are 503 is decided
 * in one place, db_failure_classify, for every statement of every call.
 * Error messages never carry SQL text, server messages that may contain
 * data, or the connection string (which may hold a password); the libpq
 * error is logged at error level without any of those.  Memory returned to
 * the caller lives in the caller's arena.
 *
 * Durability (docs/reliability.md D2, D3): db_save_turn writes a whole turn in one
 * transaction or nothing, with the usage rows of its model calls
 * (db_turn.usage_json: one commit per turn, sql/006_one_commit_turn.sql);
 * the calls of a turn that does not commit are written alone, unlinked
 * (db_record_usage_json); db_record_usage commits one call's row at once,
 * for callers that cannot hold it (the turn then links it by id).  Failed
 * turns leave their usage rows with message_id NULL (docs/dba.md).
 */
#ifndef INGEN_DB_H
#define INGEN_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct arena;
struct config;
struct db_pool;

/* Outcomes of the pool's calls; each function lists the ones it returns. */
enum db_status {
	DB_ERROR = -1,         /* `e` is set (503 database unavailable, or 500) */
	DB_OK = 0,
	DB_NOT_FOUND,          /* no such row (message, user, idempotency key) */
	DB_NOT_OWNER,          /* the thread belongs to another owner: answer 404 */
	DB_USER_MISMATCH,      /* feedback: the stored user_id differs */
	DB_REPLAYED,           /* save_turn: the idempotency key was used before */
	DB_EXISTS,             /* user_add: the username is taken */
};

/*
 * What a failed statement means, whatever the route that ran it.  The
 * connection-class failures end the connection: the pool closes it (and its
 * idle siblings) and the caller answers 503 with Retry-After.
 */
enum db_failure {
	DB_FAILURE_UNAVAILABLE = 0, /* no SQLSTATE (libpq's own error: the server
	                             * closed the socket, a send failed), class 08
	                             * (connection exception), 57P01..57P05 (the
	                             * server shuts down, crashed, is starting,
	                             * dropped the database, idle timeout), or a
	                             * connection whose status is bad: 503 */
	DB_FAILURE_BUSY,            /* class 53 (resources), 57014 (statement
	                             * timeout), 40001, 40P01 (serialization,
	                             * deadlock), 55P03 (lock timeout): 503 */
	DB_FAILURE_SCHEMA,          /* 42P01, 42703, 42883 (no such table, column,
	                             * function): 500, run `ingen db migrate` */
	DB_FAILURE_PERMISSION,      /* 42501: 500, check the role's grants */
	DB_FAILURE_VALUE,           /* classes 22, 23 (data exception, integrity
	                             * violation): 500 unless the call knows better */
	DB_FAILURE_OTHER,           /* anything else: 500 */
};

/* Classify a failure by its SQLSTATE (NULL or "" when libpq reported none)
 * and whether the connection is still usable.  Pure; any thread. */
enum db_failure db_failure_classify(const char *sqlstate, bool connection_ok);

/* The HTTP status a failure gives: 503 for DB_FAILURE_UNAVAILABLE and
 * DB_FAILURE_BUSY, else 500.  Pure; any thread. */
int db_failure_status(enum db_failure f);

/* Length of a UUID string with its NUL. */
#define DB_UUID_LEN 37

/* Most messages one turn may write, and the largest history page. */
#define DB_TURN_MAX_MESSAGES 64
#define DB_HISTORY_MAX 1000

/* Lengths the schema accepts (db_save_turn answers 400 beyond them). */
#define DB_THREAD_ID_MAX 128
#define DB_OWNER_MAX 256
#define DB_FLOW_MAX 128
#define DB_IDEMPOTENCY_KEY_MAX 255

/* ------------------------------------------------------------------ */
/* The pool (worker processes, and CLI commands that share its calls)  */
/* ------------------------------------------------------------------ */

/*
 * Create a pool for this process from cfg->chat_history (pool_size,
 * connect_timeout, statement_timeout_ms) and the connection settings found
 * by dburl_resolve(): database_url, else the libpq environment (PGHOST
 * ...), else the local cluster under server.state_dir, else libpq's
 * defaults.  Opens no connection (the first call does), so it succeeds while
 * the database is down.  Call it after fork, never before: connections are
 * never inherited.  Returns NULL with `e` set only for an unusable
 * configuration (e.g. a connection string that does not parse).  The pool
 * copies what it needs; cfg may be freed afterwards.
 */
struct db_pool *db_pool_create(const struct config *cfg, struct err *e) ING_WUR;

/* Close every connection and free the pool.  No call may be running.  NULL
 * is allowed. */
void db_pool_destroy(struct db_pool *p);

/* Where the pool's connection settings came from, for a log line at start:
 * "chat_history.database_url", "libpq environment", "local cluster <dir>",
 * or "libpq defaults".  Never the settings themselves. */
const char *db_pool_source(const struct db_pool *p);

/*
 * True if the database answers.  Cheap enough for /api/v1/ready: it uses the
 * last known state and pings (on an idle connection, or by connecting) at
 * most once a second; while the database is known down it answers false
 * without waiting.  Any thread; may block up to connect_timeout when it is
 * the one thread that probes.
 */
bool db_ready(struct db_pool *p);

/* Seconds a client should wait before retrying after a 503 from this pool
 * (the time to the next reconnection attempt, at least 1).  Any thread. */
int db_retry_after(struct db_pool *p);

/*
 * How long a call that asked for a connection now would wait for it, in ms:
 * the threads queued for one times the average time a call holds a
 * connection, over the pool's size (0 while nobody waits).  An estimate,
 * read without the pool's lock: the event loop may call it for every
 * request it admits.  Any thread.
 */
int64_t db_pool_wait_estimate_ms(const struct db_pool *p);

/* How long the oldest thread in the pool's queue has waited so far, in ms
 * (0: nobody waits).  The queue is FIFO, so this is the longest wait of the
 * moment; it grows without bound when the database stalls.  Lock-free. */
int64_t db_pool_oldest_wait_ms(const struct db_pool *p);

/* Calls per second the pool could serve at its average hold time (its size
 * over the hold; 0 before it has measured one).  Holds grow when the
 * client's threads wait for a CPU, so under load this is a floor of what
 * the database does: compare with db_pool_calls_done over time.  Lock-free. */
double db_pool_capacity(const struct db_pool *p);

/* Calls that have given their connection back since the pool was made. */
uint64_t db_pool_calls_done(const struct db_pool *p);

/* What the pool has counted since it was made, for /metrics.  Lock-free. */
struct db_pool_stats {
	uint64_t errors;          /* statements or connections that failed */
	uint64_t waits;           /* calls that queued for a connection */
	uint64_t wait_us;         /* ... and the time they queued, in all */
	uint64_t timeouts;        /* calls that found no connection in time */
};
void db_pool_stats(const struct db_pool *p, struct db_pool_stats *out);

/* A message as stored: the input of db_save_turn and the rows returned by
 * the readers.  JSON columns are JSON text (NULL when absent).  Strings the
 * pool returns live in the caller's arena. */
struct db_message {
	const char *id;                     /* UUID; NULL in input = generate */
	const char *thread_id;              /* output only */
	int seq;                            /* output only: 1-based, gap-free */
	const char *user_id;                /* output only (input: db_turn.user_id) */
	const char *role;                   /* user, assistant, tool, output, ... */
	const char *agent_name;             /* NULL for the user */
	const char *content;                /* NULL in input = "" */
	const char *tool_calls;             /* JSON array */
	const char *tool_call_id;
	const char *tool_call_function;     /* JSON */
	const char *content_filter_results; /* JSON */
	int positive_feedback;              /* output only: 1, 0, or -1 = none */
	const char *created_at;             /* output only: "YYYY-MM-DDTHH:MM:SS.ffffff", UTC */
};

/* One chat turn, written by db_save_turn in one transaction. */
struct db_turn {
	const char *thread_id;      /* NULL: a new thread with a generated UUID */
	const char *owner;          /* required: threads.owner of a new thread, idempotency scope */
	bool enforce_owner;         /* an existing thread of another owner -> DB_NOT_OWNER */
	const char *flow;           /* required: threads.flow of a new thread */
	const char *user_id;        /* messages.user_id of every message (may be NULL) */
	const struct db_message *messages;  /* in thread order (user first), 1..DB_TURN_MAX_MESSAGES */
	size_t n_messages;
	size_t reply_index;         /* the assistant message: its id is the reply's message_id */
	const char *memory_summary; /* NULL or "" = none */
	const int64_t *usage_ids;   /* rows of db_record_usage to link to the reply */
	size_t n_usage_ids;
	const char *usage_json;     /* rows to insert with the turn, linked to the
	                             * reply: a JSON array of db_usage_json
	                             * objects, or NULL */
	const char *idempotency_key;  /* NULL = none */
	const char *request_hash;     /* stored with the key (may be NULL) */
	int reply_status;             /* stored with the key */
	const char *reply_body;       /* stored with the key; required with a key */
	const char *idempotency_claim;  /* token of db_idempotency_claim: the claim
	                                 * is replaced by the reply (NULL = none) */
};

/* What db_save_turn did (DB_OK) or found (DB_REPLAYED). */
struct db_turn_result {
	const char *thread_id;      /* the thread (generated when t->thread_id was NULL) */
	const char **message_ids;   /* one per t->messages, generated ones included */
	size_t n_message_ids;
	const char *reply_id;       /* message_ids[t->reply_index] */
	int first_seq;              /* seq of t->messages[0] */
	bool new_thread;            /* this turn created the thread */
	/* DB_REPLAYED: the stored reply of the first turn with that key */
	int replay_status;
	const char *replay_body;
	const char *replay_request_hash;
};

/*
 * Write a turn in ONE transaction: store the idempotency key (a key already
 * stored for this owner -> roll back, fill the replay fields, DB_REPLAYED),
 * create the thread if it is new, check ownership (DB_NOT_OWNER, nothing
 * written), take the thread's row lock and allocate n gap-free sequence
 * numbers, insert the messages, the memory summary, and link the usage rows
 * to the reply.  Concurrent turns on one thread are serialized by the row
 * lock, so each turn's messages are contiguous and no seq is skipped or
 * repeated.  Only DB_OK means committed.  Callers that store a reply body
 * must know the ids in it beforehand: set every message id and the thread
 * id themselves (db_new_uuid).  Returns DB_OK, DB_REPLAYED, DB_NOT_OWNER or
 * DB_ERROR: 400 for a thread id, owner, flow or key beyond the DB_*_MAX
 * lengths; 503/500 otherwise (a broken connection during COMMIT leaves the
 * outcome unknown: 503, and a retry with the same key replays it if it
 * committed).
 * Any thread.
 */
enum db_status db_save_turn(struct db_pool *p, const struct db_turn *t,
    struct arena *a, struct db_turn_result *out, struct err *e) ING_WUR;

/* Write a new random UUID (version 4, lower case) into out.  Any thread. */
void db_new_uuid(char out[DB_UUID_LEN]);

/* One LLM call, as db_record_usage stores it. */
struct db_usage {
	const char *request_id;
	const char *user_id;
	const char *thread_id;
	const char *flow;
	const char *agent_name;
	const char *model;
	const char *deployment;
	int prompt_tokens;
	int completion_tokens;
	int total_tokens;
	int latency_ms;
	int http_status;            /* 0 = no response (connect error, timeout) */
	int retries;
	/* the prompt template of the call, or all NULL (sql/005_prompts.sql) */
	const char *prompt_revision;
	const char *prompt_file;
	const char *prompt_hash;
	const char *transcript;     /* JSON text, or NULL */
	int64_t finished_us;        /* when the call finished, microseconds since
	                             * the epoch (0 = the time of the insert) */
};

/*
 * Append u as one JSON object whose keys are llm_usage's column names (the
 * form ingenious_commit_turn and ingenious_record_usage read); the
 * transcript only when with_transcript.  NULL strings are omitted.  Any
 * thread.
 */
struct buf;
void db_usage_json(struct buf *b, const struct db_usage *u, bool with_transcript);

/*
 * Write the usage rows of `json` (a JSON array of db_usage_json objects) in
 * one statement, unlinked, skipping each row that is already stored (same
 * thread, request, agent and finish time), so that writing the rows of a
 * turn whose COMMIT had an unknown outcome, or replaying a journal twice,
 * never stores a call twice.  A 503 (database busy) is tried again like
 * db_record_usage.  *inserted (may be NULL) receives the number of rows
 * written.  Returns 0 or -1 with `e` set (503 database unavailable or
 * busy, 500 otherwise).  Nothing is logged but libpq's error.  Any thread.
 */
int db_record_usage_json(struct db_pool *p, const char *json, int *inserted,
    struct err *e) ING_WUR;

/*
 * Insert one llm_usage row and commit it at once (autocommit), so a billed
 * call is recorded even if its turn fails later.  *id_out (may be NULL)
 * receives the row id for db_turn.usage_ids.  On failure the call's user,
 * model and token counts are logged at error level, so billing can be
 * reconciled from the log.  Returns 0 or -1.  Any thread.
 */
int db_record_usage(struct db_pool *p, const struct db_usage *u,
    int64_t *id_out, struct err *e) ING_WUR;

/* A stored reply of an idempotent turn. */
struct db_idempotent {
	int status;
	const char *body;
	const char *request_hash;   /* may be NULL */
	const char *thread_id;
	const char *message_id;
};

/* The status of a claimed key whose turn is still running (HTTP 102
 * Processing); its stored body is the claim's token, never a reply. */
#define DB_IDEMPOTENCY_PENDING 102

/*
 * Look up the reply stored for (owner, key).  Returns DB_OK (out filled;
 * status DB_IDEMPOTENCY_PENDING: a turn holds a claim and has not finished),
 * DB_NOT_FOUND or DB_ERROR.  Any thread.
 */
enum db_status db_idempotency_get(struct db_pool *p, const char *owner,
    const char *key, struct arena *a, struct db_idempotent *out,
    struct err *e) ING_WUR;

/*
 * Claim (owner, key) for a turn about to run, so that a concurrent retry
 * with the same key waits for it instead of running the turn (and its LLM
 * calls) a second time.  The claim is a committed row with status
 * DB_IDEMPOTENCY_PENDING that carries `token` (a fresh UUID of the caller).
 * A claim older than stale_ms is taken over: its holder died or hung.
 * Returns DB_OK (claimed: the caller runs the turn, then either saves it
 * with db_turn.idempotency_claim = token, or calls db_idempotency_release),
 * DB_EXISTS (another request holds the key or has finished: read it with
 * db_idempotency_get) or DB_ERROR.  Any thread.
 */
enum db_status db_idempotency_claim(struct db_pool *p, const char *owner,
    const char *key, const char *token, int stale_ms, struct err *e) ING_WUR;

/*
 * Drop the claim `token` holds on (owner, key), when its turn failed or
 * stored nothing, so that a retry runs the turn again.  A claim that was
 * already replaced by a reply, or taken over, is left alone.  Returns 0 or
 * -1 (the claim then expires after the claimant's stale_ms).  Any thread.
 */
int db_idempotency_release(struct db_pool *p, const char *owner,
    const char *key, const char *token, struct err *e) ING_WUR;

/*
 * The last `limit` messages of a thread (1..DB_HISTORY_MAX), oldest first,
 * for GET /conversations.  owner NULL skips the ownership check; else a
 * thread of another owner gives DB_NOT_OWNER and no data.  An unknown thread
 * gives DB_OK with *n = 0 (as the reference returns []).  Returns DB_OK,
 * DB_NOT_OWNER or DB_ERROR.  Any thread.
 */
enum db_status db_thread_messages(struct db_pool *p, const char *thread_id,
    const char *owner, int limit, struct arena *a, struct db_message **out,
    size_t *n, struct err *e) ING_WUR;

/* What a flow is given about its thread. */
struct db_history {
	struct db_message *messages;   /* the last `limit`, oldest first */
	size_t n;
	const char *memory;            /* newest memory summary, NULL if none */
	bool exists;                   /* the thread has been stored before */
};

/*
 * The thread's recent messages and newest memory summary, for a flow's
 * context, read in one snapshot.  Ownership as db_thread_messages.  Returns
 * DB_OK, DB_NOT_OWNER or DB_ERROR.  Any thread.
 */
enum db_status db_thread_history(struct db_pool *p, const char *thread_id,
    const char *owner, int limit, struct arena *a, struct db_history *out,
    struct err *e) ING_WUR;

/* A thread as GET /api/v1/conversations lists it (db_thread_list). */
struct db_thread_summary {
	const char *id, *owner, *flow;
	const char *created_at, *updated_at;  /* UTC, DB_TIMESTAMP_FORMAT */
	const char *preview;                  /* the first message's first 120
	                                       * characters ("" none) */
	int messages;                         /* threads.last_seq */
};
#define DB_THREAD_LIST_MAX 200

/*
 * The `limit` (1..DB_THREAD_LIST_MAX) most recently updated threads, of one
 * owner (owner not NULL: threads_owner_updated_idx) or of every owner,
 * newest first.  Returns how many (in *out, from a), or -1 with e set.
 * Any thread.
 */
int db_thread_list(struct db_pool *p, const char *owner, int limit,
    struct arena *a, struct db_thread_summary **out, struct err *e) ING_WUR;

/*
 * Set a message's feedback (positive: 1 true, 0 false, -1 clear), the
 * reference's logic (§1.6): the message is found by (message_id, thread_id)
 * -> else DB_NOT_FOUND ("Message <id> not found."); its stored user_id must
 * equal user_id, NULL and "" comparing equal -> else DB_USER_MISMATCH ("User
 * ID does not match message feedback request.").  The route checks the path
 * id against the body id itself.  owner non-NULL: a message of another
 * owner's thread gives DB_NOT_OWNER before any other check.  Returns DB_OK,
 * DB_NOT_FOUND, DB_USER_MISMATCH, DB_NOT_OWNER or DB_ERROR.  Any thread.
 */
enum db_status db_feedback(struct db_pool *p, const char *message_id,
    const char *thread_id, const char *user_id, const char *owner,
    int positive, struct err *e) ING_WUR;

/* A user of the users table; password_hash is NULL in db_user_list. */
struct db_user {
	const char *username;
	const char *password_hash;
	const char *created_at;       /* "YYYY-MM-DDTHH:MM:SS.ffffff", UTC */
	bool disabled;
};

/* Longest username the users table holds. */
#define DB_USER_NAME_MAX 128

/* True if the users table can hold `name` (its CHECK: 1..DB_USER_NAME_MAX of
 * [A-Za-z0-9._@-]).  Pure; any thread. */
bool db_user_name_valid(const char *name);

/* Add a user.  Returns DB_OK, DB_EXISTS, or DB_ERROR (400 for a username the
 * schema refuses: 1..128 of [A-Za-z0-9._@-]). */
enum db_status db_user_add(struct db_pool *p, const char *username,
    const char *password_hash, struct err *e) ING_WUR;

/* Fetch a user.  Returns DB_OK, DB_NOT_FOUND or DB_ERROR. */
enum db_status db_user_get(struct db_pool *p, const char *username,
    struct arena *a, struct db_user *out, struct err *e) ING_WUR;

/* Replace a user's password hash.  Returns DB_OK, DB_NOT_FOUND or DB_ERROR. */
enum db_status db_user_set_password(struct db_pool *p, const char *username,
    const char *password_hash, struct err *e) ING_WUR;

/* Disable (or re-enable) a user.  Returns DB_OK, DB_NOT_FOUND or DB_ERROR. */
enum db_status db_user_disable(struct db_pool *p, const char *username,
    bool disabled, struct err *e) ING_WUR;

/* Every user, by name, without hashes.  Returns 0 or -1. */
int db_user_list(struct db_pool *p, struct arena *a, struct db_user **out,
    size_t *n, struct err *e) ING_WUR;

/* ------------------------------------------------------------------ */
/* The local knowledge base (lib/db_kb.c, sql/007_knowledge_base.sql)  */
/* ------------------------------------------------------------------ */

/* The most bytes of a query sent to the database: a longer query is cut
 * before the word that crosses the limit (at the limit, on a UTF-8
 * character boundary, when there is no white space before it):
 * websearch_to_tsquery of a megabyte would hold a connection for nothing,
 * and the first 4 KiB carry the question. */
#define DB_KB_QUERY_MAX 4096

/* The most hits one search returns, whatever top_k asks for. */
#define DB_KB_TOP_K_MAX 1000

/* One chunk found by db_kb_search, in the caller's arena. */
struct db_kb_hit {
	const char *source;   /* as stored (kb_sources.source) */
	int chunk;            /* 0-based position */
	double rank;          /* ts_rank_cd */
	const char *snippet;  /* ts_headline, plain text, no markup */
	const char *content;  /* the whole chunk */
};

/*
 * Search the local knowledge base with websearch_to_tsquery(tsconfig,
 * query) over the chunks indexed with the configuration tsconfig (the
 * caller's kb.text_search_config; chunks of another configuration are not
 * searched), best first by ts_rank_cd, at most top_k hits (1..
 * DB_KB_TOP_K_MAX; less than 1 gives 0 hits, more is capped) in *hits
 * (arena memory; NULL when there are none).  Only the first
 * DB_KB_QUERY_MAX bytes of the query are used (see there).  Returns the number of hits (0..top_k) or -1 with `e` set:
 * 503 when the database is unavailable or busy (db_failure_classify), 400
 * for an unknown text-search configuration ("unknown text-search
 * configuration \"x\" (kb.text_search_config)") or a query that is not
 * valid UTF-8, 500 otherwise.  A query with no lexemes (only stop words,
 * punctuation or tsquery syntax like "&|!():*") returns 0, no error.  Runs
 * the prepared statement ing_kb_search (the SQL function
 * ingenious_kb_search).  Any thread.
 */
int db_kb_search(struct db_pool *p, const char *tsconfig, const char *query,
    int top_k, struct arena *a, struct db_kb_hit **hits, struct err *e) ING_WUR;

/* The chunks stored in all, of every configuration, into *chunks (to tell
 * "empty knowledge base" from "no match").  Returns 0 or -1 with `e` set
 * (503/500 as above).  Any thread. */
int db_kb_count(struct db_pool *p, long *chunks, struct err *e) ING_WUR;

/* ------------------------------------------------------------------ */
/* Usage for charts (lib/db_usage.c, sql/009_usage_rollup.sql)         */
/* ------------------------------------------------------------------ */

/* What a usage summary is grouped by. */
enum db_usage_by {
	DB_USAGE_BY_DAY = 0,
	DB_USAGE_BY_USER,
	DB_USAGE_BY_FLOW,
	DB_USAGE_BY_MODEL,
	DB_USAGE_BY_AGENT,
	DB_USAGE_BY_N
};

/* The most groups one summary returns (the largest by tokens; days:
 * the most recent). */
#define DB_USAGE_ROWS_MAX 1000

/* One group of a summary, in the caller's arena. */
struct db_usage_row {
	const char *key;          /* "2026-12-03", a user, flow, model or agent ("" = none) */
	long long calls, errors, prompt_tokens, completion_tokens, total_tokens;
	long long latency_ms_mean, latency_ms_max;
};

/* "day", "user", "flow", "model", "agent"; NULL for another value. */
const char *db_usage_by_name(enum db_usage_by by);
int db_usage_by_parse(const char *s);   /* the enum, or -1 */

/*
 * Move the rollup forward (usage_rollup_mark, then usage_rollup_apply, two
 * transactions): the llm_usage rows committed so far are summed into
 * usage_rollup, a million at most.  Returns the ids left to sum (0: caught
 * up), or -1 with e.  Any thread.
 */
long db_usage_rollup(struct db_pool *p, struct err *e) ING_WUR;

/*
 * Usage of the last `days` UTC days (today included) grouped by `by`, of
 * one user or (user NULL) of all, from usage_live: the rollup and the rows
 * after it.  Returns the number of rows (at most DB_USAGE_ROWS_MAX), or -1
 * with e.  Any thread.
 */
int db_usage_summary(struct db_pool *p, enum db_usage_by by, int days,
    const char *user, struct arena *a, struct db_usage_row **rows,
    struct err *e) ING_WUR;

/* The model calls one version of a prompt template made (db_prompt_usage). */
struct db_prompt_use {
	const char *hash;                     /* llm_usage.prompt_hash */
	long long calls, errors, total_tokens;
	const char *first_used, *last_used;   /* UTC, DB_TIMESTAMP_FORMAT */
	const char *threads_json;             /* a JSON array of the 5 threads
	                                       * that used it last, among its last
	                                       * 200 calls ("[]" none) */
};
#define DB_PROMPT_USAGE_HASHES 100

/*
 * The calls of revision/file's versions `hashes` (1..DB_PROMPT_USAGE_HASHES,
 * 64 lower-case hex digits each), of one user or of all (user NULL), from
 * prompt_usage_live (sql/010_prompt_usage_rollup.sql): one row per version
 * used.  Returns how many (in
 * *out), or -1 with e set (400 for a hash that is not hex).  Any thread.
 */
int db_prompt_usage(struct db_pool *p, const char *revision, const char *file,
    const char *const *hashes, size_t n, const char *user, struct arena *a,
    struct db_prompt_use **out, struct err *e) ING_WUR;

#endif
