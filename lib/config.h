/*
 * config.h -- the one configuration of the server, built from one key table.
 *
 * Sources, lowest to highest precedence: built-in defaults, the libconfig
 * file, a `.env` file in the working directory, the process environment
 * (INGENIOUS_SECTION__KEY, nested with "__"; lists as INGENIOUS_MODELS__0__X
 * or as JSON INGENIOUS_MODELS='[...]'), then command-line overrides.  A
 * `<KEY>_FILE` variable names a file whose contents are the value (secrets).
 *
 * A struct config is immutable once config_load() returned it: a reload
 * builds a new one, validates it, and swaps (nginx cycles).  Nothing may
 * modify a config that a running thread can read.  The table is
 * lib/config_keys.c; only lib/config_file.c includes <libconfig.h>.
 *
 * The file: `--config` (config_overrides.config_file), else
 * $INGENIOUS_CONFIG (from the environment, else from `.env`), else
 * `<dir>/ingenious.conf`, else `$(sysconfdir)/ingenious/ingenious.conf`,
 * else `/etc/ingenious/ingenious.conf` (the last three only when they
 * exist; a named file that is missing is an error; an empty name means "no
 * file").  `<dir>` is `dotenv_dir` of config_load(), the working directory
 * by default.  Unknown keys in the file are errors; unknown INGENIOUS_*
 * variables are only warnings (pydantic-settings ignores them).
 *
 * Environment names are INGENIOUS_ + the dotted key upper-cased with "." ->
 * "__", matched case-insensitively.  List entries: INGENIOUS_MODELS__<i>__X;
 * indices that name an entry of the list built so far (file, or a JSON
 * form) override its fields, larger ones are appended in numeric order
 * with the gaps closed.  INGENIOUS_MODELS='[...]' (JSON) replaces the list
 * from lower sources.  A group may also be given as JSON
 * (INGENIOUS_WEB_CONFIGURATION='{"port":8001}'), overridden by the nested
 * names.  A `.env` value applies only when the real environment lacks the
 * same name.  Aliases of the reference (KB_POLICY, KB_MODE, KB_TOPK_DIRECT,
 * KB_TOPK_ASSIST, INGENIOUS_FLOW_PATH, JWT_SECRET_KEY,
 * INGENIOUS_JWT_SECRET_KEY, INGENIOUS_JWT_ALGORITHM, WEB_PORT) and of the
 * Azure SDK (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID,
 * AZURE_AUTHORITY_HOST) lose against the canonical name in the same source.
 * No other module reads a configuration variable from the environment.  `NAME_FILE=path` (any name above)
 * reads the value from that file, one trailing newline stripped.
 */
#ifndef INGEN_CONFIG_H
#define INGEN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

/* One entry of `models` (reference: INGENIOUS_MODELS__<i>__<FIELD>). */
struct config_model {
	char *model;
	char *api_type;               /* "rest"/"azure" (Azure) or "openai" */
	char *api_version;
	char *deployment;
	char *api_key;                /* secret */
	char *base_url;
	char *authentication_method;  /* token, msi, client_id_and_secret, default_credential */
	char *client_id;
	char *client_secret;          /* secret */
	char *tenant_id;
	char *role;                   /* chat or embedding */
	char *endpoint;
};

/* One entry of `azure_search_services`. */
struct config_search {
	char *service;
	char *endpoint;
	char *key;                    /* secret */
	char *index_name;
	char *client_id;
	char *client_secret;          /* secret */
	char *tenant_id;
	char *authentication_method;
	char *semantic_configuration; /* "" = plain full-text search */
};

struct config {
	/* where this configuration came from, for messages and reload */
	char *source_file;            /* NULL when no file was read */

	/* web_configuration */
	struct {
		char *ip_address;
		int port;
		char *type;
		bool asynchronous;
		bool enable_streaming;
		int streaming_chunk_size;
		int streaming_delay_ms;
		char *cors_allowed_origins;
		struct {
			bool enable;
			char *username;
			char *password;           /* secret */
			char *type;
			bool enable_global_middleware;
			char *jwt_secret_key;     /* secret */
			char *jwt_algorithm;
			int jwt_access_token_expire_minutes;
			int jwt_refresh_token_expire_days;
			char *jwt_key_file;       /* 0600 file of the master, default under state_dir */
			int login_max_failures;   /* failures before 429 */
			int login_window_seconds;
			int password_hash_concurrency;  /* scrypt checks at once, per worker */
			bool metrics_require_auth;
		} authentication;
	} web;

	/* server: the process model, limits and deadlines (ours, not the reference's) */
	struct {
		int workers;                  /* 0 = number of CPUs */
		int flow_threads;             /* most flow threads per worker; 0 = from memory */
		int flow_threads_min;         /* started at once and kept */
		int flow_thread_idle_s;       /* an idle thread above the minimum exits */
		int flow_queue;               /* queued requests per worker before 503 */
		int overload_delay_ms;        /* a 503 of overload is held this long */
		int db_wait_limit_ms;         /* refuse turns past this database wait */
		int thread_stack_kb;
		bool malloc_thread_cache;     /* keep glibc's tcache (master/memtune.h) */
		int max_connections;          /* per worker */
		int max_requests;             /* recycle a worker after this many; 0 = never */
		int max_requests_jitter;
		int worker_timeout;           /* seconds without heartbeat -> kill */
		int shutdown_timeout;         /* seconds to drain on stop/reload */
		int header_timeout;           /* seconds to receive a full header section */
		int body_timeout;             /* seconds allowed between body bytes */
		int body_min_rate;            /* bytes/s a body must keep up */
		int keepalive_timeout;        /* idle seconds between requests */
		int write_timeout;            /* seconds a blocked write may wait */
		int max_request_line;         /* bytes, 414 above */
		int max_header_size;          /* bytes, 431 above */
		int max_headers;              /* fields, 431 above */
		int max_body_size;            /* bytes, 413 above */
		int max_json_depth;
		int max_prompt_bytes;         /* a chat's user_prompt, 413 above */
		bool api_docs;                /* GET /openapi.json and /docs */
		bool console;                 /* the web console at /console/ */
		int retry_after;              /* seconds in Retry-After of a 503 */
		char *pidfile;
		char *state_dir;              /* key file, local cluster state */
		int usage_journal_slots;      /* per worker; 0 = each call's row committed at once */
		char *user;                   /* drop privileges to this user */
		char *flow_path;              /* INGENIOUS_FLOW_PATH */
		bool metrics_loopback_only;
	} server;

	/* logging (reference keys + ours) */
	struct {
		char *root_log_level;
		char *log_level;
		char *format;                 /* logfmt or json */
		char *file;                   /* "" = stderr */
		bool access_log;              /* one line per request (default true) */
	} logging;

	/* chat_history */
	struct {
		char *database_type;          /* "postgresql"; sqlite/azuresql/cosmos parse but are rejected */
		char *database_url;           /* libpq URI or key/value string; secret inside */
		char *database_path;
		char *database_connection_string;
		char *database_name;
		char *memory_path;
		int pool_size;                /* connections per worker */
		int connect_timeout;          /* seconds */
		int statement_timeout_ms;
		int history_limit;            /* messages given to a flow */
	} chat_history;

	/* the Azure OpenAI client */
	struct config_model *models;
	size_t n_models;
	struct {
		int connect_timeout_ms;
		int timeout_ms;               /* total per call */
		int max_retries;
		int max_response_bytes;
		bool verify_tls;
		char *ca_file;
		char *token_endpoint;         /* Entra ID authority override (tests) */
		char *imds_endpoint;          /* managed identity endpoint override (tests) */
	} llm;

	/* the Azure SDK's environment credential (AZURE_CLIENT_ID ...), for
	 * authentication_method "default_credential"; ours */
	struct {
		char *client_id;
		char *client_secret;          /* secret */
		char *tenant_id;
		char *authority_host;         /* Entra ID authority, "" = public cloud */
	} azure_identity;

	struct config_search *search;
	size_t n_search;

	struct {
		char *type;                   /* multi_agent */
		bool enable_builtin_workflows;  /* false: only custom flows answer */
	} chat_service;

	/* flows: the limits every turn runs under (ours) */
	struct {
		int max_llm_calls;            /* model calls per turn */
		int max_tool_iterations;      /* model -> tools -> model rounds per agent call */
		int turn_timeout_ms;          /* a turn's deadline, from the flow's start */
		int max_turn_tokens;          /* tokens a turn may spend; 0 = no budget */
		int max_parallel;             /* model calls of one turn at once */
	} flows;

	struct {
		char *database_path;
		char *sample_csv_path;
		char *sample_database_name;
		char *database_url;           /* older name of sql_agent.database_url */
		int statement_timeout_ms;     /* older name of sql_agent.statement_timeout_ms */
		int max_rows;                 /* older name of sql_agent.max_rows */
	} local_sql_db;

	/* sql_agent: where and how the SQL agent's statements run
	 * (lib/db_sqlagent.c, docs/sql-agent.md); ours */
	struct {
		char *database_url;           /* secret; "" = the local cluster's
		                               * ingenious_sqlagent role */
		char *schema;                 /* the one schema it may read */
		int statement_timeout_ms;
		int lock_timeout_ms;
		int max_rows;                 /* rows returned, more = truncated */
		int max_bytes;                /* bytes of values returned */
		char *work_mem;               /* SET LOCAL work_mem */
		char *temp_file_limit;        /* SET LOCAL temp_file_limit */
		int connect_timeout;          /* seconds */
		int pool_size;                /* connections per process */
		bool guard;                   /* false: test-only, no statement guard */
	} sql_agent;

	struct {
		char *revisions_path;
		char *data_path;
		char *storage_type;
	} file_storage;

	struct {
		char *policy;                 /* KB_POLICY */
		char *mode;                   /* KB_MODE */
		int topk_direct;
		int topk_assist;
		bool fallback_on_empty;       /* KB_FALLBACK_ON_EMPTY */
		int azure_snippet_cap;        /* KB_AZURE_SNIPPET_CAP, 0 = none */
		char *azure_default_index;    /* AZURE_SEARCH_DEFAULT_INDEX */
		char *directory;              /* "" = <memory_path>/knowledge_base */
		char *text_search_config;     /* english, simple, ... */
		int chunk_max_chars;
	} kb;
};

/* Command-line values that beat every other source.  NULL / -1 = not given. */
struct config_overrides {
	const char *config_file;      /* --config; "" = read no file */
	const char *host;             /* --host */
	int port;                     /* --port, -1 if absent */
	int workers;                  /* --workers, -1 if absent */
	const char *pidfile;          /* --pidfile */
};

/* Nothing overridden (port and workers -1, not 0). */
#define CONFIG_OVERRIDES_INIT { NULL, NULL, -1, -1, NULL }

/*
 * A list of problems found while loading: every problem, one line each.
 * `warnings` are not fatal (an unknown INGENIOUS_* variable, a key accepted
 * for compatibility that has no effect): the caller logs them as warnings,
 * on success as well as on failure.  No line ever holds a secret value.
 */
struct config_problems {
	char **lines;
	size_t n;
	char **warnings;
	size_t n_warnings;
};

/*
 * Build a configuration from every source.  On success returns a new config
 * (free with config_free).  On failure returns NULL and fills `problems` with
 * one line per problem (file syntax, unknown key, bad value, out of range,
 * missing required value); the caller prints them and exits with 2 (or keeps
 * the old generation on reload).  `env` is the environment to read (NULL =
 * the process environment); `dotenv_dir` is where `.env` is looked for
 * (NULL = the working directory).  Thread-safe: touches no global state.
 */
struct config *config_load(const struct config_overrides *ov,
    char *const *env, const char *dotenv_dir, struct config_problems *problems);
/*
 * More of config_load's contract: it first resets *problems (without
 * freeing it), so free it with config_problems_free after every call.  `ov`
 * may be NULL.  After loading, server.max_requests_jitter is 10% of
 * max_requests when max_requests > 0 and no source set the jitter, and an
 * empty web.authentication.jwt_key_file becomes "<state_dir>/jwt.key".
 * server.workers stays 0 when so configured: see config_workers().
 */

/* Free a config from config_load (NULL is fine). */
void config_free(struct config *cfg);
/* Free the lines of `p` and reset it to empty (the struct itself is the
 * caller's). */
void config_problems_free(struct config_problems *p);

/*
 * The key table, for documentation tests and `ingen config`: calls fn once
 * per key with its dotted name ("web_configuration.port", list entries as
 * "models.*.api_key"), its environment name ("INGENIOUS_WEB_CONFIGURATION__
 * PORT", list entries as "INGENIOUS_MODELS__<i>__API_KEY"), a printable
 * default, and whether it is a secret.  Any thread.
 */
void config_keys_foreach(void (*fn)(void *arg, const char *name,
    const char *env_name, const char *default_text, bool secret), void *arg);

/* One key of the table, in more detail than config_keys_foreach gives. */
struct config_key_info {
	const char *name;             /* "server.workers", "models.*.api_key" */
	const char *env_name;         /* "INGENIOUS_MODELS__<i>__API_KEY" */
	const char *default_text;     /* "8000", "true", "" */
	const char *type;             /* "string", "int", "bool" or "enum" */
	const char *const *values;    /* enum: the allowed values, NULL-terminated */
	long long min, max;           /* int: the bounds */
	bool secret;                  /* never shown, never in a message */
	bool reloadable;              /* false: a change needs a restart */
	bool unused;                  /* accepted for compatibility, no effect
	                               * (yet): nothing reads it */
};

/* Call fn once per key of the table, in table order.  The pointers live as
 * long as the call.  Any thread. */
void config_keys_describe(void (*fn)(void *arg,
    const struct config_key_info *key), void *arg);

/* Call fn once per alias variable (KB_POLICY ...) with the dotted key it
 * sets.  Any thread. */
void config_aliases_foreach(void (*fn)(void *arg, const char *env_name,
    const char *key), void *arg);

/*
 * The effective values of `cfg`, for `ingen config` and diagnostics: fn is
 * called once per used key ("models.0.api_key" for list entries) with the
 * value as text; a non-empty secret is given as "********", never in clear.
 */
void config_foreach_value(const struct config *cfg, void (*fn)(void *arg,
    const char *name, const char *value, bool secret), void *arg);

/*
 * For a reload (SIGHUP): config_load, except that a key that cannot change
 * without a restart (the listen address and port, pidfile, user,
 * state_dir: "(restart)" in etc/ingenious.conf) keeps its value in
 * `old_cfg`, the running generation, and each one that a source changed
 * gets a warning line naming the key and both values (never a secret's
 * value).  Values derived from a kept key (jwt_key_file under state_dir)
 * follow the kept value.  `old_cfg` is only read.  Same contract as
 * config_load otherwise.
 */
struct config *config_reload(const struct config *old_cfg,
    const struct config_overrides *ov, char *const *env,
    const char *dotenv_dir, struct config_problems *problems);

/*
 * Walk a libconfig file and call fn for every scalar setting with its
 * dotted name as in the table ("models.*.api_key" inside a list of
 * groups), its line and its value as text (strings unquoted, integers in
 * decimal, booleans true/false).  Names are not checked against the table.
 * For the documentation test and `ingen config`.  Returns -1 with `e` set
 * when the file cannot be read or parsed.
 */
int config_file_walk(const char *path, void (*fn)(void *arg,
    const char *name, int line, const char *value), void *arg,
    struct err *e) ING_WUR;

/* The number of worker processes cfg asks for: server.workers, or when it
 * is 0 the number of CPUs this process may run on (at least 1).  Any
 * thread. */
int config_workers(const struct config *cfg);

#endif
