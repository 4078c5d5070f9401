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
 * modify a config that a running thread can read.  Only lib/config.c
 * includes <libconfig.h>.
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
			bool metrics_require_auth;
		} authentication;
	} web;

	/* server: the process model, limits and deadlines (ours, not the reference's) */
	struct {
		int workers;                  /* 0 = number of CPUs */
		int flow_threads;             /* per worker */
		int flow_queue;               /* queued requests per worker before 503 */
		int thread_stack_kb;
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
		int retry_after;              /* seconds in Retry-After of a 503 */
		char *pidfile;
		char *state_dir;              /* key file, local cluster state */
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
	} logging;

	/* chat_history */
	struct {
		char *database_type;          /* "postgresql" (sqlite/azuresql accepted, mapped) */
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

	struct config_search *search;
	size_t n_search;

	struct {
		char *type;                   /* multi_agent */
	} chat_service;

	struct {
		char *database_path;
		char *sample_csv_path;
		char *sample_database_name;
		char *database_url;           /* the SQL agent's role connection */
		int statement_timeout_ms;
		int max_rows;
	} local_sql_db;

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
	} kb;
};

/* Command-line values that beat every other source.  NULL / -1 = not given. */
struct config_overrides {
	const char *config_file;      /* --config */
	const char *host;             /* --host */
	int port;                     /* --port, -1 if absent */
	int workers;                  /* --workers, -1 if absent */
	const char *pidfile;          /* --pidfile */
};

/* A list of problems found while loading: every problem, one line each. */
struct config_problems {
	char **lines;
	size_t n;
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

void config_free(struct config *cfg);
void config_problems_free(struct config_problems *p);

/*
 * The key table, for documentation tests and `ingen config`: calls fn once
 * per key with its dotted name ("web_configuration.port", list entries as
 * "models.*.api_key"), its environment name, a printable default, and whether
 * it is a secret.
 */
void config_keys_foreach(void (*fn)(void *arg, const char *name,
    const char *env_name, const char *default_text, bool secret), void *arg);

/* Number of CPUs, used for workers = 0. */
int config_ncpus(void);

#endif
