/*
 * config.c -- the one key table, and the loader that fills a struct config
 * from it: defaults, the libconfig file, `.env`, the environment, then the
 * command line (see config.h for the precedence rules).
 *
 * It owns every configuration key, its type, default, bounds and flags, and
 * every validation rule of the configuration.  It never logs (problems are
 * returned as lines), never keeps mutable global state, never calls getenv()
 * when an environment array is given, and never writes a secret value into
 * a problem line.  It is the only file that includes <libconfig.h>.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libconfig.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/xmalloc.h"

extern char **environ;

#ifndef INGEN_SYSCONFDIR
#define INGEN_SYSCONFDIR "/etc"
#endif

#define ENV_PREFIX         "INGENIOUS_"
#define ENV_PREFIX_LEN     (sizeof(ENV_PREFIX) - 1)
#define VALUE_FILE_MAX     (1024 * 1024)    /* NAME_FILE and .env size cap */
#define QUOTED_VALUE_MAX   64               /* echoed bytes of a bad value */
#define MASKED_SECRET      "********"

enum key_type {
	KEY_STRING,
	KEY_INT,
	KEY_BOOL,
	KEY_ENUM,
};

/* Where a key lands: struct config, an entry of a list, or nowhere. */
enum key_scope {
	SCOPE_MAIN,
	SCOPE_MODEL,                  /* struct config_model, list "models" */
	SCOPE_SEARCH,                 /* struct config_search */
	SCOPE_UNUSED,                 /* accepted for compatibility, no effect */
};

#define KEY_SECRET   0x01         /* never echoed, masked in dumps */
#define KEY_RESTART  0x02         /* a reload cannot change it */

struct config_key {
	const char *name;             /* dotted, lower case; lists "models.*.x" */
	enum key_type type;
	enum key_scope scope;
	size_t offset;                /* into the struct of the scope */
	const char *def;              /* default, as text */
	long long min, max;           /* KEY_INT */
	const char *const *values;    /* KEY_ENUM, NULL-terminated */
	unsigned flags;
};

/*
 * FIELD() is offsetof() that fails to compile when the member does not
 * have the type the table entry claims, so a table entry can never write an
 * int into a char * (or the reverse).
 */
#define FIELD(S, f, T)  _Generic(((S *)0)->f, T: offsetof(S, f))
#define C_STR(f)        SCOPE_MAIN, FIELD(struct config, f, char *)
#define C_INT(f)        SCOPE_MAIN, FIELD(struct config, f, int)
#define C_BOOL(f)       SCOPE_MAIN, FIELD(struct config, f, bool)
#define M_STR(f)        SCOPE_MODEL, FIELD(struct config_model, f, char *)
#define S_STR(f)        SCOPE_SEARCH, FIELD(struct config_search, f, char *)
#define UNUSED          SCOPE_UNUSED, 0

#define K_STR(n, w, d, fl)            { n, KEY_STRING, w, d, 0, 0, NULL, fl }
#define K_INT(n, w, d, lo, hi, fl)    { n, KEY_INT, w, d, lo, hi, NULL, fl }
#define K_BOOL(n, w, d, fl)           { n, KEY_BOOL, w, d, 0, 0, NULL, fl }
#define K_ENUM(n, w, d, v, fl)        { n, KEY_ENUM, w, d, 0, 0, v, fl }

static const char *const v_log_level[] = {
	"debug", "info", "warning", "error", "critical", NULL };
static const char *const v_log_format[] = { "logfmt", "json", NULL };
static const char *const v_db_type[] = {
	"postgresql", "sqlite", "azuresql", "cosmos", NULL };
static const char *const v_api_type[] = { "rest", "azure", "openai", NULL };
static const char *const v_auth_method[] = {
	"token", "msi", "client_id_and_secret", "default_credential", NULL };
static const char *const v_role[] = { "chat", "embedding", NULL };
static const char *const v_storage[] = { "local", "azure", NULL };
static const char *const v_kb_policy[] = {
	"azure_only", "prefer_azure", "prefer_local", "local_only", NULL };
static const char *const v_kb_mode[] = { "direct", "assist", NULL };
static const char *const v_jwt_alg[] = { "HS256", NULL };
static const char *const v_chat_service[] = { "multi_agent", NULL };
static const char *const v_cache_backend[] = { "memory", "redis", NULL };

/*
 * THE table.  Order is documentation order (etc/ingenious.conf follows it).
 * Reference sections keep their names; ours are server, llm and kb.
 */
static const struct config_key config_keys[] = {
	K_STR("profile", UNUSED, "default", 0),

	/* web_configuration */
	K_STR("web_configuration.ip_address", C_STR(web.ip_address),
	    "127.0.0.1", KEY_RESTART),
	K_INT("web_configuration.port", C_INT(web.port), "8000", 1, 65535,
	    KEY_RESTART),
	K_STR("web_configuration.type", C_STR(web.type), "fastapi", 0),
	K_BOOL("web_configuration.asynchronous", C_BOOL(web.asynchronous),
	    "false", 0),
	K_BOOL("web_configuration.enable_streaming",
	    C_BOOL(web.enable_streaming), "true", 0),
	K_INT("web_configuration.streaming_chunk_size",
	    C_INT(web.streaming_chunk_size), "100", 1, 1048576, 0),
	K_INT("web_configuration.streaming_delay_ms",
	    C_INT(web.streaming_delay_ms), "50", 0, 60000, 0),
	K_STR("web_configuration.cors_allowed_origins",
	    C_STR(web.cors_allowed_origins), "", 0),
	K_BOOL("web_configuration.authentication.enable",
	    C_BOOL(web.authentication.enable), "false", 0),
	K_STR("web_configuration.authentication.username",
	    C_STR(web.authentication.username), "admin", 0),
	K_STR("web_configuration.authentication.password",
	    C_STR(web.authentication.password), "", KEY_SECRET),
	K_STR("web_configuration.authentication.type",
	    C_STR(web.authentication.type), "basic", 0),
	K_BOOL("web_configuration.authentication.enable_global_middleware",
	    C_BOOL(web.authentication.enable_global_middleware), "false", 0),
	K_STR("web_configuration.authentication.jwt_secret_key",
	    C_STR(web.authentication.jwt_secret_key), "", KEY_SECRET),
	K_ENUM("web_configuration.authentication.jwt_algorithm",
	    C_STR(web.authentication.jwt_algorithm), "HS256", v_jwt_alg, 0),
	K_INT("web_configuration.authentication.jwt_access_token_expire_minutes",
	    C_INT(web.authentication.jwt_access_token_expire_minutes), "1440",
	    1, 525600, 0),
	K_INT("web_configuration.authentication.jwt_refresh_token_expire_days",
	    C_INT(web.authentication.jwt_refresh_token_expire_days), "7",
	    1, 3650, 0),
	K_STR("web_configuration.authentication.jwt_key_file",
	    C_STR(web.authentication.jwt_key_file), "", 0),
	K_INT("web_configuration.authentication.login_max_failures",
	    C_INT(web.authentication.login_max_failures), "10", 1, 1000000, 0),
	K_INT("web_configuration.authentication.login_window_seconds",
	    C_INT(web.authentication.login_window_seconds), "900", 1, 86400, 0),
	K_BOOL("web_configuration.authentication.metrics_require_auth",
	    C_BOOL(web.authentication.metrics_require_auth), "false", 0),

	/* server: ours */
	K_INT("server.workers", C_INT(server.workers), "0", 0, 1024, 0),
	K_INT("server.flow_threads", C_INT(server.flow_threads), "0",
	    0, 65536, 0),
	K_INT("server.flow_threads_min", C_INT(server.flow_threads_min), "8",
	    1, 65536, 0),
	K_INT("server.flow_thread_idle_s", C_INT(server.flow_thread_idle_s), "60",
	    1, 86400, 0),
	K_INT("server.flow_queue", C_INT(server.flow_queue), "1024",
	    1, 1048576, 0),
	K_INT("server.thread_stack_kb", C_INT(server.thread_stack_kb), "256",
	    64, 65536, 0),
	K_INT("server.max_connections", C_INT(server.max_connections), "10000",
	    1, 1048576, 0),
	K_INT("server.max_requests", C_INT(server.max_requests), "0",
	    0, INT_MAX, 0),
	K_INT("server.max_requests_jitter", C_INT(server.max_requests_jitter),
	    "0", 0, INT_MAX, 0),
	K_INT("server.worker_timeout", C_INT(server.worker_timeout), "90",
	    1, 86400, 0),
	K_INT("server.shutdown_timeout", C_INT(server.shutdown_timeout), "30",
	    0, 86400, 0),
	K_INT("server.header_timeout", C_INT(server.header_timeout), "10",
	    1, 3600, 0),
	K_INT("server.body_timeout", C_INT(server.body_timeout), "10",
	    1, 3600, 0),
	K_INT("server.body_min_rate", C_INT(server.body_min_rate), "1024",
	    0, INT_MAX, 0),
	K_INT("server.keepalive_timeout", C_INT(server.keepalive_timeout), "5",
	    0, 3600, 0),
	K_INT("server.write_timeout", C_INT(server.write_timeout), "30",
	    1, 3600, 0),
	K_INT("server.max_request_line", C_INT(server.max_request_line), "8192",
	    256, 1048576, 0),
	K_INT("server.max_header_size", C_INT(server.max_header_size), "16384",
	    1024, 16777216, 0),
	K_INT("server.max_headers", C_INT(server.max_headers), "100",
	    1, 10000, 0),
	K_INT("server.max_body_size", C_INT(server.max_body_size), "1048576",
	    1, INT_MAX, 0),
	K_INT("server.max_json_depth", C_INT(server.max_json_depth), "64",
	    1, 10000, 0),
	K_INT("server.retry_after", C_INT(server.retry_after), "1", 0, 3600, 0),
	K_STR("server.pidfile", C_STR(server.pidfile), "", KEY_RESTART),
	K_STR("server.state_dir", C_STR(server.state_dir), "./.ingenious",
	    KEY_RESTART),
	K_STR("server.user", C_STR(server.user), "", KEY_RESTART),
	K_STR("server.flow_path", C_STR(server.flow_path), "", 0),
	K_BOOL("server.metrics_loopback_only",
	    C_BOOL(server.metrics_loopback_only), "true", 0),

	/* logging */
	K_ENUM("logging.root_log_level", C_STR(logging.root_log_level), "info",
	    v_log_level, 0),
	K_ENUM("logging.log_level", C_STR(logging.log_level), "info",
	    v_log_level, 0),
	K_ENUM("logging.format", C_STR(logging.format), "logfmt",
	    v_log_format, 0),
	K_STR("logging.file", C_STR(logging.file), "", 0),
	K_BOOL("logging.access_log", C_BOOL(logging.access_log), "true", 0),

	/* chat_history */
	K_ENUM("chat_history.database_type", C_STR(chat_history.database_type),
	    "postgresql", v_db_type, 0),
	K_STR("chat_history.database_url", C_STR(chat_history.database_url), "",
	    KEY_SECRET),
	K_STR("chat_history.database_path", C_STR(chat_history.database_path),
	    "./tmp/high_level_logs.db", 0),
	K_STR("chat_history.database_connection_string",
	    C_STR(chat_history.database_connection_string), "", KEY_SECRET),
	K_STR("chat_history.database_name", C_STR(chat_history.database_name),
	    "", 0),
	K_STR("chat_history.memory_path", C_STR(chat_history.memory_path),
	    "./tmp", 0),
	K_INT("chat_history.pool_size", C_INT(chat_history.pool_size), "4",
	    1, 1000, 0),
	K_INT("chat_history.connect_timeout", C_INT(chat_history.connect_timeout),
	    "5", 1, 3600, 0),
	K_INT("chat_history.statement_timeout_ms",
	    C_INT(chat_history.statement_timeout_ms), "10000", 0, INT_MAX, 0),
	K_INT("chat_history.history_limit", C_INT(chat_history.history_limit),
	    "5", 0, 10000, 0),

	/* models[i] */
	K_STR("models.*.model", M_STR(model), "", 0),
	K_ENUM("models.*.api_type", M_STR(api_type), "rest", v_api_type, 0),
	K_STR("models.*.api_version", M_STR(api_version), "2024-12-01-preview", 0),
	K_STR("models.*.deployment", M_STR(deployment), "", 0),
	K_STR("models.*.api_key", M_STR(api_key), "", KEY_SECRET),
	K_STR("models.*.base_url", M_STR(base_url), "", 0),
	K_ENUM("models.*.authentication_method", M_STR(authentication_method),
	    "token", v_auth_method, 0),
	K_STR("models.*.client_id", M_STR(client_id), "", 0),
	K_STR("models.*.client_secret", M_STR(client_secret), "", KEY_SECRET),
	K_STR("models.*.tenant_id", M_STR(tenant_id), "", 0),
	K_ENUM("models.*.role", M_STR(role), "chat", v_role, 0),
	K_STR("models.*.endpoint", M_STR(endpoint), "", 0),

	/* llm: ours, the Azure OpenAI client */
	K_INT("llm.connect_timeout_ms", C_INT(llm.connect_timeout_ms), "5000",
	    1, 600000, 0),
	K_INT("llm.timeout_ms", C_INT(llm.timeout_ms), "60000", 1, 3600000, 0),
	K_INT("llm.max_retries", C_INT(llm.max_retries), "2", 0, 10, 0),
	K_INT("llm.max_response_bytes", C_INT(llm.max_response_bytes),
	    "8388608", 1024, INT_MAX, 0),
	K_BOOL("llm.verify_tls", C_BOOL(llm.verify_tls), "true", 0),
	K_STR("llm.ca_file", C_STR(llm.ca_file), "", 0),
	K_STR("llm.token_endpoint", C_STR(llm.token_endpoint), "", 0),
	K_STR("llm.imds_endpoint", C_STR(llm.imds_endpoint), "", 0),

	/* azure_search_services[i] */
	K_STR("azure_search_services.*.service", S_STR(service), "", 0),
	K_STR("azure_search_services.*.endpoint", S_STR(endpoint), "", 0),
	K_STR("azure_search_services.*.key", S_STR(key), "", KEY_SECRET),
	K_STR("azure_search_services.*.index_name", S_STR(index_name), "", 0),
	K_STR("azure_search_services.*.client_id", S_STR(client_id), "", 0),
	K_STR("azure_search_services.*.client_secret", S_STR(client_secret), "",
	    KEY_SECRET),
	K_STR("azure_search_services.*.tenant_id", S_STR(tenant_id), "", 0),
	K_ENUM("azure_search_services.*.authentication_method",
	    S_STR(authentication_method), "token", v_auth_method, 0),

	/* chat_service */
	K_ENUM("chat_service.type", C_STR(chat_service.type), "multi_agent",
	    v_chat_service, 0),

	/* local_sql_db: the reference's three, plus the SQL agent's limits */
	K_STR("local_sql_db.database_path", C_STR(local_sql_db.database_path),
	    "/tmp/sample_sql_db", 0),
	K_STR("local_sql_db.sample_csv_path", C_STR(local_sql_db.sample_csv_path),
	    "", 0),
	K_STR("local_sql_db.sample_database_name",
	    C_STR(local_sql_db.sample_database_name), "sample_sql_db", 0),
	K_STR("local_sql_db.database_url", C_STR(local_sql_db.database_url), "",
	    KEY_SECRET),
	K_INT("local_sql_db.statement_timeout_ms",
	    C_INT(local_sql_db.statement_timeout_ms), "5000", 1, INT_MAX, 0),
	K_INT("local_sql_db.max_rows", C_INT(local_sql_db.max_rows), "100",
	    1, 1000000, 0),

	/* file_storage: revisions (prompt templates) and data */
	K_BOOL("file_storage.revisions.enable", UNUSED, "true", 0),
	K_ENUM("file_storage.revisions.storage_type", C_STR(file_storage.storage_type),
	    "local", v_storage, 0),
	K_STR("file_storage.revisions.container_name", UNUSED, "", 0),
	K_STR("file_storage.revisions.path", C_STR(file_storage.revisions_path),
	    "./", 0),
	K_BOOL("file_storage.revisions.add_sub_folders", UNUSED, "true", 0),
	K_STR("file_storage.revisions.url", UNUSED, "", 0),
	K_STR("file_storage.revisions.client_id", UNUSED, "", 0),
	K_STR("file_storage.revisions.token", UNUSED, "", KEY_SECRET),
	K_ENUM("file_storage.revisions.authentication_method", UNUSED,
	    "default_credential", v_auth_method, 0),
	K_BOOL("file_storage.data.enable", UNUSED, "true", 0),
	K_ENUM("file_storage.data.storage_type", UNUSED, "local", v_storage, 0),
	K_STR("file_storage.data.container_name", UNUSED, "", 0),
	K_STR("file_storage.data.path", C_STR(file_storage.data_path), "./", 0),
	K_BOOL("file_storage.data.add_sub_folders", UNUSED, "true", 0),
	K_STR("file_storage.data.url", UNUSED, "", 0),
	K_STR("file_storage.data.client_id", UNUSED, "", 0),
	K_STR("file_storage.data.token", UNUSED, "", KEY_SECRET),
	K_ENUM("file_storage.data.authentication_method", UNUSED,
	    "default_credential", v_auth_method, 0),

	/* kb: ours (the reference's KB_* variables) */
	K_ENUM("kb.policy", C_STR(kb.policy), "azure_only", v_kb_policy, 0),
	K_ENUM("kb.mode", C_STR(kb.mode), "direct", v_kb_mode, 0),
	K_INT("kb.topk_direct", C_INT(kb.topk_direct), "3", 1, 1000, 0),
	K_INT("kb.topk_assist", C_INT(kb.topk_assist), "5", 1, 1000, 0),

	/* accepted for compatibility with the Python product, unused */
	K_BOOL("tool_service.enable", UNUSED, "false", 0),
	K_BOOL("receiver_configuration.enable", UNUSED, "false", 0),
	K_STR("receiver_configuration.api_url", UNUSED, "", 0),
	K_STR("receiver_configuration.api_key", UNUSED, "DevApiKey", KEY_SECRET),
	K_BOOL("cache.enabled", UNUSED, "false", 0),
	K_ENUM("cache.backend", UNUSED, "memory", v_cache_backend, 0),
	K_STR("cache.redis_url", UNUSED, "redis://localhost:6379", KEY_SECRET),
	K_INT("cache.default_ttl", UNUSED, "300", 0, INT_MAX, 0),
	K_INT("cache.max_size", UNUSED, "1000", 0, INT_MAX, 0),
	K_STR("cosmos_service.uri", UNUSED, "", 0),
	K_STR("cosmos_service.database_name", UNUSED, "ingenious-db", 0),
	K_STR("cosmos_service.api_key", UNUSED, "", KEY_SECRET),
	K_STR("cosmos_service.client_id", UNUSED, "", 0),
	K_STR("cosmos_service.client_secret", UNUSED, "", KEY_SECRET),
	K_STR("cosmos_service.tenant_id", UNUSED, "", 0),
	K_ENUM("cosmos_service.authentication_method", UNUSED,
	    "default_credential", v_auth_method, 0),
	K_STR("azure_sql_services.database_name", UNUSED, "", 0),
	K_STR("azure_sql_services.table_name", UNUSED, "", 0),
	K_STR("azure_sql_services.database_connection_string", UNUSED, "",
	    KEY_SECRET),
};

#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* The lists of groups, and the scope of their entries' keys. */
struct list_desc {
	const char *name;
	enum key_scope scope;
	size_t elem_size;
};

static const struct list_desc config_lists[] = {
	{ "models", SCOPE_MODEL, sizeof(struct config_model) },
	{ "azure_search_services", SCOPE_SEARCH, sizeof(struct config_search) },
};

#define N_LISTS (sizeof(config_lists) / sizeof(config_lists[0]))

/*
 * Variables of the reference that set a key under another name.  Within one
 * source an alias loses against the canonical name, and a later alias of the
 * same key beats an earlier one (INGENIOUS_JWT_SECRET_KEY > JWT_SECRET_KEY).
 */
static const struct {
	const char *env;
	const char *key;
} config_aliases[] = {
	{ "KB_POLICY", "kb.policy" },
	{ "KB_MODE", "kb.mode" },
	{ "KB_TOPK_DIRECT", "kb.topk_direct" },
	{ "KB_TOPK_ASSIST", "kb.topk_assist" },
	{ "INGENIOUS_FLOW_PATH", "server.flow_path" },
	{ "WEB_PORT", "web_configuration.port" },
	{ "JWT_SECRET_KEY", "web_configuration.authentication.jwt_secret_key" },
	{ "INGENIOUS_JWT_SECRET_KEY",
	    "web_configuration.authentication.jwt_secret_key" },
	{ "INGENIOUS_JWT_ALGORITHM",
	    "web_configuration.authentication.jwt_algorithm" },
};

#define N_ALIASES (sizeof(config_aliases) / sizeof(config_aliases[0]))

/* INGENIOUS_* variables that are not keys and are no mistake either. */
static const char *const config_env_known[] = {
	"INGENIOUS_CONFIG",           /* the file, read by config_load */
	"INGENIOUS_WORKING_DIR",      /* the reference's, set by its CLI */
	"INGENIOUS_PROJECT_PATH",
	"INGENIOUS_PROFILE_PATH",
	"INGENIOUS_DIAGNOSTICS_ENABLED",
	NULL
};

/* ------------------------------------------------------------------ */
/* Keys and values                                                     */

static const struct config_key *
key_find(const char *name)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++)
		if (strcasecmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static size_t
key_index(const struct config_key *k)
{
	return (size_t)(k - config_keys);
}

/* Is `name` a group of the table ("web_configuration.authentication")? */
static bool
group_exists(const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < N_KEYS; i++)
		if (strncasecmp(config_keys[i].name, name, n) == 0 &&
		    config_keys[i].name[n] == '.')
			return true;
	return false;
}

static int
list_find(const char *name)
{
	size_t i;

	for (i = 0; i < N_LISTS; i++)
		if (strcasecmp(config_lists[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const char *
key_type_name(enum key_type t)
{
	switch (t) {
	case KEY_STRING:
		return "string";
	case KEY_INT:
		return "int";
	case KEY_BOOL:
		return "bool";
	case KEY_ENUM:
		return "enum";
	}
	return "?";
}

/* What a value of type t looks like, for "expected ..." messages. */
static const char *
key_type_expect(enum key_type t)
{
	switch (t) {
	case KEY_STRING:
	case KEY_ENUM:
		return "a string";
	case KEY_INT:
		return "an integer";
	case KEY_BOOL:
		return "a boolean";
	}
	return "a value";
}

/* "INGENIOUS_" + upper-cased name, "." -> "__", "*" -> "<i>". */
static void
key_env_name(const char *name, struct buf *b)
{
	const char *p;

	buf_reset(b);
	buf_puts(b, ENV_PREFIX);
	for (p = name; *p; p++) {
		if (*p == '.')
			buf_puts(b, "__");
		else if (*p == '*')
			buf_puts(b, "<i>");
		else
			buf_putc(b, (char)toupper((unsigned char)*p));
	}
	buf_cstr(b);
}

union key_value {
	long long i;
	bool b;
	const char *s;
};

/* Append `s` for a message: quoted, at most QUOTED_VALUE_MAX bytes, control
 * characters escaped (a value must not forge a log line). */
static void
quote_value(struct buf *b, const char *s)
{
	size_t i;

	buf_putc(b, '"');
	for (i = 0; s[i] != '\0' && i < QUOTED_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			buf_printf(b, "\\x%02x", c);
		else
			buf_putc(b, (char)c);
	}
	if (s[i] != '\0')
		buf_puts(b, "...");
	buf_putc(b, '"');
}

static int
parse_int(const char *s, long long *out)
{
	char *end;
	long long v;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno == ERANGE)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* The spellings pydantic accepts for a boolean. */
static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "true", "t", "yes", "y", "on",
		NULL };
	static const char *const no[] = { "0", "false", "f", "no", "n", "off",
		NULL };
	char word[8];
	size_t i, n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(word))
		return -1;
	memcpy(word, s, n);
	word[n] = '\0';
	for (i = 0; yes[i]; i++)
		if (strcasecmp(word, yes[i]) == 0) {
			*out = true;
			return 0;
		}
	for (i = 0; no[i]; i++)
		if (strcasecmp(word, no[i]) == 0) {
			*out = false;
			return 0;
		}
	return -1;
}

/*
 * Parse `text` as a value of k.  On failure append to `why` a message that
 * echoes the value only when k is not a secret, and return -1.
 */
static int
key_parse(const struct config_key *k, const char *text, union key_value *v,
    struct buf *why)
{
	bool secret = (k->flags & KEY_SECRET) != 0;
	size_t i;

	switch (k->type) {
	case KEY_STRING:
		v->s = text;
		return 0;
	case KEY_INT:
		if (parse_int(text, &v->i) == -1) {
			buf_puts(why, "invalid integer");
			if (!secret) {
				buf_putc(why, ' ');
				quote_value(why, text);
			}
			return -1;
		}
		if (v->i < k->min || v->i > k->max) {
			if (secret)
				buf_puts(why, "value is out of range");
			else
				buf_printf(why, "value %lld is out of range", v->i);
			buf_printf(why, " (%lld..%lld)", k->min, k->max);
			return -1;
		}
		return 0;
	case KEY_BOOL:
		if (parse_bool(text, &v->b) == -1) {
			buf_puts(why, "invalid boolean");
			if (!secret) {
				buf_putc(why, ' ');
				quote_value(why, text);
			}
			buf_puts(why, " (expected true or false)");
			return -1;
		}
		return 0;
	case KEY_ENUM:
		for (i = 0; k->values[i]; i++)
			if (strcasecmp(text, k->values[i]) == 0) {
				v->s = k->values[i];      /* canonical spelling */
				return 0;
			}
		buf_puts(why, "invalid value");
		if (!secret) {
			buf_putc(why, ' ');
			quote_value(why, text);
		}
		buf_puts(why, " (expected one of:");
		for (i = 0; k->values[i]; i++)
			buf_printf(why, "%s %s", i ? "," : "", k->values[i]);
		buf_putc(why, ')');
		return -1;
	}
	return -1;
}

/* Store a parsed value at base + k->offset (nothing for unused keys). */
static void
key_store(const struct config_key *k, char *base, const union key_value *v)
{
	void *dst;

	if (base == NULL || k->scope == SCOPE_UNUSED)
		return;
	dst = base + k->offset;
	switch (k->type) {
	case KEY_STRING:
	case KEY_ENUM: {
		char **sp = dst;

		free(*sp);
		*sp = xstrdup(v->s);
		break;
	}
	case KEY_INT:
		*(int *)dst = (int)v->i;
		break;
	case KEY_BOOL:
		*(bool *)dst = v->b;
		break;
	}
}

/* The value of k at base + offset, as text (a secret masked if asked). */
static void
key_format(const struct config_key *k, const char *base, bool mask,
    struct buf *b)
{
	const void *src = base + k->offset;

	buf_reset(b);
	switch (k->type) {
	case KEY_STRING:
	case KEY_ENUM: {
		const char *s = *(char *const *)src;

		if (s == NULL)
			s = "";
		buf_puts(b, mask && (k->flags & KEY_SECRET) && *s ?
		    MASKED_SECRET : s);
		break;
	}
	case KEY_INT:
		buf_printf(b, "%d", *(const int *)src);
		break;
	case KEY_BOOL:
		buf_puts(b, *(const bool *)src ? "true" : "false");
		break;
	}
	buf_cstr(b);
}

/* Defaults of every key of `scope` into base (a zeroed struct). */
static void
scope_init(enum key_scope scope, char *base)
{
	struct buf why = BUF_INIT;
	union key_value v;
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->scope != scope)
			continue;
		/* the table's defaults are valid: test_config checks them */
		if (key_parse(k, k->def, &v, &why) == 0)
			key_store(k, base, &v);
	}
	buf_free(&why);
}

static void
scope_free(enum key_scope scope, char *base)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->scope == scope &&
		    (k->type == KEY_STRING || k->type == KEY_ENUM))
			free(*(char **)(void *)(base + k->offset));
	}
}

/* The entries of list li and their number. */
static char *
list_base(const struct config *cfg, size_t li, size_t *n)
{
	if (config_lists[li].scope == SCOPE_MODEL) {
		*n = cfg->n_models;
		return (char *)cfg->models;
	}
	*n = cfg->n_search;
	return (char *)cfg->search;
}

static void
list_store(struct config *cfg, size_t li, char *base, size_t n)
{
	if (config_lists[li].scope == SCOPE_MODEL) {
		cfg->models = (struct config_model *)(void *)base;
		cfg->n_models = n;
	} else {
		cfg->search = (struct config_search *)(void *)base;
		cfg->n_search = n;
	}
}

/* ------------------------------------------------------------------ */
/* The loader                                                          */

struct loader {
	struct config *cfg;
	struct config_problems *pr;
	char **strs;                  /* labels and names, freed at the end */
	size_t n_strs, cap_strs;
	const char *src[N_KEYS];      /* the source that set a main key */
	const char **lsrc[N_LISTS];   /* per entry, N_KEYS sources */
};

static const char *
ld_keep(struct loader *ld, char *s)
{
	if (ld->n_strs == ld->cap_strs) {
		ld->cap_strs = ld->cap_strs ? ld->cap_strs * 2 : 32;
		ld->strs = xrealloc(ld->strs, ld->cap_strs * sizeof(*ld->strs));
	}
	ld->strs[ld->n_strs++] = s;
	return s;
}

static void
lines_add(char ***lines, size_t *n, char *line)
{
	*lines = xrealloc(*lines, (*n + 1) * sizeof(**lines));
	(*lines)[(*n)++] = line;
}

/* "<label>: <what>: <message>", either prefix left out when NULL. */
static char *
msg_build(const char *label, const char *what, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	if (label)
		buf_printf(&b, "%s: ", label);
	if (what)
		buf_printf(&b, "%s: ", what);
	buf_vprintf(&b, fmt, ap);
	return buf_cstr(&b);
}

static void ING_PRINTF(4, 5)
ld_problem(struct loader *ld, const char *label, const char *what,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lines_add(&ld->pr->lines, &ld->pr->n, msg_build(label, what, fmt, ap));
	va_end(ap);
}

static void ING_PRINTF(4, 5)
ld_warning(struct loader *ld, const char *label, const char *what,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lines_add(&ld->pr->warnings, &ld->pr->n_warnings,
	    msg_build(label, what, fmt, ap));
	va_end(ap);
}

/* Resize list li to n entries; new entries hold the defaults. */
static void
list_resize(struct loader *ld, size_t li, size_t n)
{
	const struct list_desc *d = &config_lists[li];
	size_t i, old;
	char *base = list_base(ld->cfg, li, &old);

	for (i = n; i < old; i++)
		scope_free(d->scope, base + i * d->elem_size);
	if (n == 0) {
		free(base);
		base = NULL;
	} else {
		base = xrealloc(base, n * d->elem_size);
		ld->lsrc[li] = xrealloc(ld->lsrc[li],
		    n * N_KEYS * sizeof(*ld->lsrc[li]));
	}
	for (i = old; i < n; i++) {
		memset(base + i * d->elem_size, 0, d->elem_size);
		scope_init(d->scope, base + i * d->elem_size);
		memset(&ld->lsrc[li][i * N_KEYS], 0,
		    N_KEYS * sizeof(*ld->lsrc[li]));
	}
	list_store(ld->cfg, li, base, n);
}

/* Entry `pos` of list li, and the slot that records who set key k in it. */
static char *
list_entry(struct loader *ld, size_t li, size_t pos,
    const struct config_key *k, const char ***srcp)
{
	size_t n;
	char *base = list_base(ld->cfg, li, &n);

	*srcp = &ld->lsrc[li][pos * N_KEYS + key_index(k)];
	return base + pos * config_lists[li].elem_size;
}

/*
 * Set key k (stored under base) from `text`, given by source `label`;
 * `what` names the key when the label does not.  Records the source in
 * *srcp.  A bad value is a problem line; returns -1.
 */
static int
ld_set(struct loader *ld, const struct config_key *k, char *base,
    const char **srcp, const char *text, const char *label, const char *what)
{
	struct buf why = BUF_INIT;
	union key_value v;

	if (key_parse(k, text, &v, &why) == -1) {
		ld_problem(ld, label, what, "%s", buf_cstr(&why));
		buf_free(&why);
		return -1;
	}
	buf_free(&why);
	key_store(k, base, &v);
	if (srcp)
		*srcp = label;
	if (k->scope == SCOPE_UNUSED)
		ld_warning(ld, label, what ? what : k->name,
		    "accepted for compatibility, has no effect");
	return 0;
}

/* Set a main-scope (or unused) key. */
static int
ld_set_main(struct loader *ld, const struct config_key *k, const char *text,
    const char *label, const char *what)
{
	return ld_set(ld, k, (char *)ld->cfg, &ld->src[key_index(k)], text,
	    label, what);
}

/*
 * Read a whole small file (NAME_FILE values, .env).  Returns 0 and a NUL-
 * terminated heap copy, or -1 with errno set (EFBIG when over the cap).
 */
static int
read_small_file(const char *path, char **out, size_t *lenp)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t r;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		buf_append(&b, chunk, (size_t)r);
		if (b.len > VALUE_FILE_MAX) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	*lenp = b.len;
	*out = xmalloc(b.len + 1);
	if (b.len)
		memcpy(*out, b.data, b.len);
	(*out)[b.len] = '\0';
	buf_free(&b);
	return 0;
fail:
	saved = errno;
	close(fd);
	buf_free(&b);
	errno = saved;
	return -1;
}

static const char *
errstr(int errnum, char *tmp, size_t len)
{
	if (errnum == EFBIG)
		return "file is larger than 1 MiB";
	return strerror_r(errnum, tmp, len);
}

/* The value of NAME_FILE: the file's contents less one trailing newline. */
static int
read_value_file(struct loader *ld, const char *path, const char *label,
    char **out)
{
	char tmp[128];
	size_t len;
	char *s;

	if (read_small_file(path, &s, &len) == -1) {
		ld_problem(ld, label, NULL, "could not read \"%s\": %s", path,
		    errstr(errno, tmp, sizeof(tmp)));
		return -1;
	}
	if (memchr(s, '\0', len) != NULL) {
		ld_problem(ld, label, NULL, "could not use \"%s\": it holds a NUL "
		    "byte", path);
		free(s);
		return -1;
	}
	if (len > 0 && s[len - 1] == '\n') {
		s[--len] = '\0';
		if (len > 0 && s[len - 1] == '\r')
			s[--len] = '\0';
	}
	*out = s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON forms                                                          */

static void
json_apply_value(struct loader *ld, const struct config_key *k, char *base,
    const char **srcp, const cJSON *j, const char *label, const char *what)
{
	char tmp[32];
	const char *text;

	if (cJSON_IsString(j) && j->valuestring != NULL) {
		text = j->valuestring;
	} else if (cJSON_IsBool(j) && k->type == KEY_BOOL) {
		text = cJSON_IsTrue(j) ? "true" : "false";
	} else if (cJSON_IsNumber(j) &&
	    (k->type == KEY_INT || k->type == KEY_BOOL)) {
		double d = j->valuedouble;

		if (!(d > -9e18 && d < 9e18) || (double)(long long)d != d) {
			ld_problem(ld, label, what, "expected an integer");
			return;
		}
		snprintf(tmp, sizeof(tmp), "%lld", (long long)d);
		text = tmp;
	} else {
		ld_problem(ld, label, what, "expected %s",
		    key_type_expect(k->type));
		return;
	}
	ld_set(ld, k, base, srcp, text, label, what);
}

/* One JSON object into entry `pos` of list li. */
static void
json_apply_entry(struct loader *ld, size_t li, size_t pos, const cJSON *obj,
    const char *label)
{
	const struct list_desc *d = &config_lists[li];
	const cJSON *m;

	if (!cJSON_IsObject(obj)) {
		ld_problem(ld, label, NULL, "%s.%zu: expected a JSON object",
		    d->name, pos);
		return;
	}
	cJSON_ArrayForEach(m, obj) {
		char *name = xasprintf("%s.*.%s", d->name, m->string);
		char *what = xasprintf("%s.%zu.%.64s", d->name, pos, m->string);
		const struct config_key *k = key_find(name);

		if (k == NULL || k->scope != d->scope) {
			ld_warning(ld, label, NULL, "unknown key \"%s\", ignored",
			    what);
		} else {
			const char **srcp;
			char *base = list_entry(ld, li, pos, k, &srcp);

			json_apply_value(ld, k, base, srcp, m, label, what);
		}
		free(name);
		free(what);
	}
}

/* A JSON array replaces list li. */
static void
json_apply_list(struct loader *ld, size_t li, const cJSON *arr,
    const char *label)
{
	const cJSON *e;
	size_t i = 0;

	if (!cJSON_IsArray(arr)) {
		ld_problem(ld, label, NULL, "expected a JSON array of objects");
		return;
	}
	list_resize(ld, li, 0);
	list_resize(ld, li, (size_t)cJSON_GetArraySize(arr));
	cJSON_ArrayForEach(e, arr)
		json_apply_entry(ld, li, i++, e, label);
}

/* A JSON object sets the keys of group `prefix`. */
static void
json_apply_group(struct loader *ld, const char *prefix, const cJSON *obj,
    const char *label)
{
	const cJSON *m;

	if (!cJSON_IsObject(obj)) {
		ld_problem(ld, label, NULL, "expected a JSON object");
		return;
	}
	cJSON_ArrayForEach(m, obj) {
		char *name = xasprintf("%s.%.64s", prefix, m->string);
		const struct config_key *k = key_find(name);

		if (k != NULL && (k->scope == SCOPE_MAIN ||
		    k->scope == SCOPE_UNUSED))
			json_apply_value(ld, k, (char *)ld->cfg,
			    &ld->src[key_index(k)], m, label, name);
		else if (cJSON_IsObject(m) && group_exists(name))
			json_apply_group(ld, name, m, label);
		else
			ld_warning(ld, label, NULL, "unknown key \"%s\", ignored",
			    name);
		free(name);
	}
}

/* Parse a variable's JSON value; a parse error never echoes the value. */
static cJSON *
json_parse_value(struct loader *ld, const char *value, const char *label)
{
	cJSON *j = cJSON_Parse(value);

	if (j == NULL)
		ld_problem(ld, label, NULL, "invalid JSON");
	return j;
}

/* ------------------------------------------------------------------ */
/* Environment-like sources: .env and the environment                  */

struct env_var {
	const char *name;
	const char *value;
	const char *label;
};

enum item_kind {
	ITEM_ALIAS,
	ITEM_GROUP_JSON,              /* INGENIOUS_WEB_CONFIGURATION='{...}' */
	ITEM_LIST_JSON,               /* INGENIOUS_MODELS='[...]' */
	ITEM_INDEXED,                 /* INGENIOUS_MODELS__3='{...}' or __3__X */
	ITEM_KEY,
};

struct env_item {
	enum item_kind kind;
	int rank;                     /* ordering within a kind */
	const struct config_key *key; /* ALIAS, KEY, INDEXED field; NULL = JSON */
	size_t list;
	unsigned long index;
	size_t pos;                   /* INDEXED: position once mapped */
	char *group;                  /* GROUP_JSON */
	char *value;
	const char *label;
	size_t order;
};

/* Split a lower-cased name at every "__"; returns the segment count. */
static size_t
split_dunder(char *s, char **segs, size_t max)
{
	size_t n = 0;
	char *p;

	for (;;) {
		if (n == max)
			return max + 1;
		segs[n++] = s;
		p = strstr(s, "__");
		if (p == NULL)
			return n;
		*p = '\0';
		s = p + 2;
	}
}

static bool
all_digits(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return i > 0 && i <= 9;
}

/*
 * What an environment name means.  Returns 1 and fills `it` (allocating
 * only then), 0 for an unknown INGENIOUS_* name, -1 for a name that is not
 * ours or is known and not a key (INGENIOUS_CONFIG).
 */
static int
env_classify(const char *name, struct env_item *it)
{
	char *low, *segs[8];
	const struct config_key *k;
	size_t i, n;
	int li, r = 0;

	for (i = 0; i < N_ALIASES; i++)
		if (strcasecmp(name, config_aliases[i].env) == 0) {
			it->kind = ITEM_ALIAS;
			it->rank = (int)i;
			it->key = key_find(config_aliases[i].key);
			return 1;
		}
	if (strncasecmp(name, ENV_PREFIX, ENV_PREFIX_LEN) != 0)
		return -1;
	for (i = 0; config_env_known[i]; i++)
		if (strcasecmp(name, config_env_known[i]) == 0)
			return -1;

	low = xstrdup(name + ENV_PREFIX_LEN);
	for (i = 0; low[i]; i++)
		low[i] = (char)tolower((unsigned char)low[i]);
	n = split_dunder(low, segs, sizeof(segs) / sizeof(segs[0]));
	if (n > sizeof(segs) / sizeof(segs[0]))
		goto out;
	for (i = 0; i < n; i++)
		if (segs[i][0] == '\0')
			goto out;

	li = list_find(segs[0]);
	if (li >= 0) {
		it->list = (size_t)li;
		if (n == 1) {
			it->kind = ITEM_LIST_JSON;
			r = 1;
			goto out;
		}
		if (!all_digits(segs[1]))
			goto out;
		it->index = strtoul(segs[1], NULL, 10);
		it->kind = ITEM_INDEXED;
		it->rank = li * 2;
		it->key = NULL;
		if (n == 2) {
			r = 1;                /* a JSON object for one entry */
			goto out;
		}
		{
			struct buf b = BUF_INIT;

			buf_printf(&b, "%s.*", config_lists[li].name);
			for (i = 2; i < n; i++)
				buf_printf(&b, ".%s", segs[i]);
			k = key_find(buf_cstr(&b));
			buf_free(&b);
		}
		if (k == NULL || k->scope != config_lists[li].scope)
			goto out;
		it->key = k;
		it->rank = li * 2 + 1;    /* after the entry JSON forms */
		r = 1;
		goto out;
	}

	{
		struct buf b = BUF_INIT;

		for (i = 0; i < n; i++)
			buf_printf(&b, "%s%s", i ? "." : "", segs[i]);
		k = key_find(buf_cstr(&b));
		if (k != NULL && (k->scope == SCOPE_MAIN ||
		    k->scope == SCOPE_UNUSED)) {
			it->kind = ITEM_KEY;
			it->key = k;
			r = 1;
		} else if (group_exists(buf_cstr(&b))) {
			it->kind = ITEM_GROUP_JSON;
			it->group = xstrdup(buf_cstr(&b));
			r = 1;
		}
		buf_free(&b);
	}
out:
	free(low);
	return r;
}

static bool
has_suffix_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcasecmp(s + n - m, suffix) == 0;
}

static bool
vars_have(const struct env_var *vars, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(vars[i].name, name) == 0)
			return true;
	return false;
}

static int
item_cmp(const void *a, const void *b)
{
	const struct env_item *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
ulong_cmp(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Map the indices of the INDEXED items of list li to positions: an index
 * inside the list built so far names that entry; larger ones are appended
 * in numeric order, gaps closed.  Grows the list to fit.
 */
static void
index_map(struct loader *ld, size_t li, struct env_item *items, size_t n)
{
	unsigned long *idx;
	size_t i, j, m = 0, len, fresh = 0;

	list_base(ld->cfg, li, &len);
	idx = xmalloc((n ? n : 1) * sizeof(*idx));
	for (i = 0; i < n; i++)
		if (items[i].kind == ITEM_INDEXED && items[i].list == li)
			idx[m++] = items[i].index;
	if (m == 0) {
		free(idx);
		return;
	}
	qsort(idx, m, sizeof(*idx), ulong_cmp);
	for (i = 0, j = 0; i < m; i++)        /* unique */
		if (j == 0 || idx[j - 1] != idx[i])
			idx[j++] = idx[i];
	m = j;
	for (i = 0; i < m; i++)
		if (idx[i] >= len)
			fresh++;
	for (i = 0; i < n; i++) {
		if (items[i].kind != ITEM_INDEXED || items[i].list != li)
			continue;
		if (items[i].index < len) {
			items[i].pos = items[i].index;
			continue;
		}
		for (j = 0; j < m; j++)
			if (idx[j] == items[i].index)
				break;
		/* idx is sorted: the ones below `len` come first */
		items[i].pos = len + (j - (m - fresh));
	}
	if (fresh > 0)
		list_resize(ld, li, len + fresh);
	free(idx);
}

static void
item_apply(struct loader *ld, struct env_item *it)
{
	cJSON *j;

	switch (it->kind) {
	case ITEM_ALIAS:
	case ITEM_KEY:
		ld_set_main(ld, it->key, it->value, it->label, NULL);
		break;
	case ITEM_GROUP_JSON:
		if ((j = json_parse_value(ld, it->value, it->label)) != NULL) {
			json_apply_group(ld, it->group, j, it->label);
			cJSON_Delete(j);
		}
		break;
	case ITEM_LIST_JSON:
		if ((j = json_parse_value(ld, it->value, it->label)) != NULL) {
			json_apply_list(ld, it->list, j, it->label);
			cJSON_Delete(j);
		}
		break;
	case ITEM_INDEXED:
		if (it->key == NULL) {
			j = json_parse_value(ld, it->value, it->label);
			if (j != NULL) {
				json_apply_entry(ld, it->list, it->pos, j,
				    it->label);
				cJSON_Delete(j);
			}
		} else {
			const char **srcp;
			char *base = list_entry(ld, it->list, it->pos, it->key,
			    &srcp);

			ld_set(ld, it->key, base, srcp, it->value, it->label,
			    NULL);
		}
		break;
	}
}

/*
 * Apply one environment-like source.  Within it: aliases, group JSON, list
 * JSON, indexed list entries, then the canonical names, so that the more
 * specific name wins whatever the order of the variables.
 */
static void
apply_vars(struct loader *ld, const struct env_var *vars, size_t n)
{
	struct env_item *items = xcalloc(n ? n : 1, sizeof(*items));
	size_t i, ni = 0;
	bool mapped = false;

	for (i = 0; i < n; i++) {
		const struct env_var *v = &vars[i];
		struct env_item it;
		char *base = NULL;
		bool from_file = false;
		int r;

		memset(&it, 0, sizeof(it));
		r = env_classify(v->name, &it);
		if (r != 1 && has_suffix_ci(v->name, "_FILE")) {
			base = xstrndup(v->name, strlen(v->name) - 5);
			if (env_classify(base, &it) == 1) {
				r = 1;
				from_file = true;
			}
		}
		if (r == 0 && strncasecmp(v->name, ENV_PREFIX,
		    ENV_PREFIX_LEN) == 0)
			ld_warning(ld, v->label, NULL,
			    "unknown variable, ignored");
		if (r != 1)
			goto skip;
		if (from_file) {
			if (vars_have(vars, n, base)) {
				ld_problem(ld, v->label, NULL,
				    "%s is set too; set only one of them", base);
				goto skip;
			}
			if (read_value_file(ld, v->value, v->label,
			    &it.value) == -1)
				goto skip;
		} else {
			it.value = xstrdup(v->value);
		}
		it.label = v->label;
		it.order = i;
		items[ni++] = it;
		free(base);
		continue;
skip:
		free(base);
		free(it.group);
	}

	qsort(items, ni, sizeof(*items), item_cmp);
	for (i = 0; i < ni; i++) {
		if (items[i].kind == ITEM_INDEXED && !mapped) {
			size_t li;

			for (li = 0; li < N_LISTS; li++)
				index_map(ld, li, items, ni);
			mapped = true;
		}
		item_apply(ld, &items[i]);
	}
	for (i = 0; i < ni; i++) {
		free(items[i].value);
		free(items[i].group);
	}
	free(items);
}

/* Is `name` (not NUL-terminated, `len` bytes) one we may read? */
static bool
env_name_relevant(const char *name, size_t len)
{
	size_t i, m;

	if (len >= ENV_PREFIX_LEN &&
	    strncasecmp(name, ENV_PREFIX, ENV_PREFIX_LEN) == 0)
		return true;
	for (i = 0; i < N_ALIASES; i++) {
		m = strlen(config_aliases[i].env);
		if ((len == m || (len == m + 5 &&
		    strncasecmp(name + m, "_FILE", 5) == 0)) &&
		    strncasecmp(name, config_aliases[i].env, m) == 0)
			return true;
	}
	return false;
}

/* The relevant variables of an environment array. */
static struct env_var *
env_collect(struct loader *ld, char *const *env, size_t *np)
{
	struct env_var *vars = NULL;
	size_t n = 0, cap = 0;

	for (; env && *env; env++) {
		const char *eq = strchr(*env, '=');
		const char *name;

		if (eq == NULL || eq == *env ||
		    !env_name_relevant(*env, (size_t)(eq - *env)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			vars = xrealloc(vars, cap * sizeof(*vars));
		}
		name = ld_keep(ld, xstrndup(*env, (size_t)(eq - *env)));
		vars[n].name = name;
		vars[n].value = eq + 1;
		vars[n].label = name;
		n++;
	}
	*np = n;
	return vars;
}

/* ------------------------------------------------------------------ */
/* .env                                                                */

struct dotenv {
	struct env_var *vars;
	size_t n, cap;
};

static void
dotenv_add(struct loader *ld, struct dotenv *de, const char *path,
    int line, char *name, char *value)
{
	if (de->n == de->cap) {
		de->cap = de->cap ? de->cap * 2 : 16;
		de->vars = xrealloc(de->vars, de->cap * sizeof(*de->vars));
	}
	de->vars[de->n].name = ld_keep(ld, name);
	de->vars[de->n].value = ld_keep(ld, value);
	de->vars[de->n].label = ld_keep(ld, xasprintf("%s:%d: %s", path, line,
	    name));
	de->n++;
}

static void
skip_blanks(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\r')
		(*p)++;
}

static void
skip_line(const char **p)
{
	while (**p != '\0' && **p != '\n')
		(*p)++;
}

/*
 * Parse .env text the way python-dotenv does: KEY=VALUE lines, `export `
 * allowed, `#` comments (inline ones after whitespace), single quotes
 * literal, double quotes with backslash escapes, quoted values may span
 * lines, no expansion.  Bad lines are problems; a bare KEY is ignored.
 */
static void
dotenv_parse(struct loader *ld, const char *path, const char *text,
    struct dotenv *de)
{
	const char *p = text;
	int line = 1;

	while (*p != '\0') {
		const char *key;
		struct buf val = BUF_INIT;
		int start = line;
		size_t klen;

		skip_blanks(&p);
		if (*p == '\n') {
			p++;
			line++;
			continue;
		}
		if (*p == '#' || *p == '\0') {
			skip_line(&p);
			continue;
		}
		if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
			p += 6;
			skip_blanks(&p);
		}
		key = p;
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '.' ||
		    *p == '-')
			p++;
		klen = (size_t)(p - key);
		skip_blanks(&p);
		if (klen == 0 || (*p != '=' && *p != '\n' && *p != '\0' &&
		    *p != '#')) {
			ld_problem(ld, NULL, NULL, "%s:%d: invalid line (expected "
			    "NAME=VALUE)", path, line);
			skip_line(&p);
			continue;
		}
		if (*p != '=') {
			skip_line(&p);        /* a bare name sets nothing */
			continue;
		}
		p++;
		skip_blanks(&p);
		if (*p == '\'' || *p == '"') {
			char q = *p++;

			while (*p != '\0' && *p != q) {
				if (*p == '\\' && p[1] != '\0' && (q == '"' ||
				    p[1] == '\'' || p[1] == '\\')) {
					static const char from[] = "nrtabfv\"'\\";
					static const char to[] = "\n\r\t\a\b\f\v\"'\\";
					const char *f = strchr(from, p[1]);

					if (f != NULL && p[1] != '\0') {
						buf_putc(&val, to[f - from]);
						p += 2;
						continue;
					}
				}
				if (*p == '\n')
					line++;
				buf_putc(&val, *p++);
			}
			if (*p != q) {
				ld_problem(ld, NULL, NULL, "%s:%d: unterminated "
				    "quoted value", path, start);
				buf_free(&val);
				break;
			}
			p++;
			skip_blanks(&p);
			if (*p == '#')
				skip_line(&p);
			if (*p != '\n' && *p != '\0') {
				ld_problem(ld, NULL, NULL, "%s:%d: unexpected text "
				    "after the closing quote", path, line);
				skip_line(&p);
				buf_free(&val);
				continue;
			}
		} else {
			const char *v = p, *end, *c;

			skip_line(&p);
			end = p;
			/* an inline comment starts at whitespace + '#' */
			for (c = v; c < end; c++)
				if (*c == '#' && c > v &&
				    (c[-1] == ' ' || c[-1] == '\t')) {
					end = c;
					break;
				}
			while (end > v && isspace((unsigned char)end[-1]))
				end--;
			buf_append(&val, v, (size_t)(end - v));
		}
		dotenv_add(ld, de, path, start, xstrndup(key, klen),
		    xstrdup(buf_cstr(&val)));
		buf_free(&val);
	}
}

static void
dotenv_load(struct loader *ld, const char *dir, struct dotenv *de)
{
	char tmp[128];
	const char *path;
	char *text;
	size_t len;

	path = ld_keep(ld, xasprintf("%s/.env", dir ? dir : "."));
	if (read_small_file(path, &text, &len) == -1) {
		if (errno != ENOENT)
			ld_problem(ld, NULL, NULL, "could not read \"%s\": %s",
			    path, errstr(errno, tmp, sizeof(tmp)));
		return;
	}
	if (memchr(text, '\0', len) != NULL)
		ld_problem(ld, NULL, NULL, "could not use \"%s\": it holds a NUL "
		    "byte", path);
	else
		dotenv_parse(ld, path, text, de);
	free(text);
}

/* ------------------------------------------------------------------ */
/* The libconfig file                                                  */

typedef bool (*walk_fn)(void *arg, const char *name, int index,
    const config_setting_t *s);

/*
 * Visit every member of group g with its dotted name; descend into groups
 * and into lists of groups (as "name.*", with the element index) when fn
 * says so.
 */
static void
walk_group(const config_setting_t *g, struct buf *path, int index,
    walk_fn fn, void *arg)
{
	int i, j, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g,
		    (unsigned)i);
		size_t mark = path->len;
		bool descend;

		if (s == NULL || config_setting_name(s) == NULL)
			continue;
		if (mark)
			buf_putc(path, '.');
		buf_puts(path, config_setting_name(s));
		descend = fn(arg, buf_cstr(path), index, s);
		if (descend && config_setting_is_group(s)) {
			walk_group(s, path, index, fn, arg);
		} else if (descend && config_setting_type(s) == CONFIG_TYPE_LIST) {
			buf_puts(path, ".*");
			for (j = 0; j < config_setting_length(s); j++) {
				const config_setting_t *e =
				    config_setting_get_elem(s, (unsigned)j);

				if (e && config_setting_is_group(e))
					walk_group(e, path, j, fn, arg);
			}
		}
		path->len = mark;
		buf_cstr(path);
	}
}

/* Read and parse a libconfig file into lc; -1 with a message in `why`. */
static int
file_parse(config_t *lc, const char *path, struct buf *why)
{
	char tmp[128];
	FILE *fp;
	int rc;

	fp = fopen(path, "re");
	if (fp == NULL) {
		buf_printf(why, "could not open configuration file \"%s\": %s",
		    path, errstr(errno, tmp, sizeof(tmp)));
		return -1;
	}
	rc = config_read(lc, fp);
	fclose(fp);
	if (rc != CONFIG_TRUE) {
		buf_printf(why, "%s:%d: %s", config_error_file(lc) ?
		    config_error_file(lc) : path, config_error_line(lc),
		    config_error_text(lc) ? config_error_text(lc) : "error");
		return -1;
	}
	return 0;
}

static void
setting_text(const config_setting_t *s, char *tmp, size_t len,
    const char **text)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		*text = config_setting_get_string(s);
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(tmp, len, "%lld", config_setting_get_int64(s));
		*text = tmp;
		break;
	case CONFIG_TYPE_BOOL:
		*text = config_setting_get_bool(s) ? "true" : "false";
		break;
	case CONFIG_TYPE_FLOAT:
		snprintf(tmp, len, "%g", config_setting_get_float(s));
		*text = tmp;
		break;
	default:
		*text = NULL;
	}
	if (*text == NULL)
		*text = "";
}

struct file_ctx {
	struct loader *ld;
	const char *path;
};

/* The dotted name with "*" replaced by the entry index, for messages. */
static char *
name_with_index(const char *name, int index)
{
	const char *star = strstr(name, ".*.");

	if (star == NULL || index < 0)
		return xstrdup(name);
	return xasprintf("%.*s.%d.%s", (int)(star - name), name, index,
	    star + 3);
}

static bool
file_visit(void *arg, const char *name, int index, const config_setting_t *s)
{
	struct file_ctx *fc = arg;
	struct loader *ld = fc->ld;
	const struct config_key *k;
	const char *label, *text;
	char tmp[64], *what;
	int type = config_setting_type(s);
	int li = index < 0 ? list_find(name) : -1;
	bool descend = false;

	label = ld_keep(ld, xasprintf("%s:%u", config_setting_source_file(s) ?
	    config_setting_source_file(s) : fc->path,
	    (unsigned)config_setting_source_line(s)));
	what = name_with_index(name, index);

	if (li >= 0) {
		int i, n = config_setting_length(s);
		bool groups = type == CONFIG_TYPE_LIST;

		for (i = 0; groups && i < n; i++)
			groups = config_setting_is_group(
			    config_setting_get_elem(s, (unsigned)i));
		if (!groups) {
			ld_problem(ld, label, what, "expected a list of groups, "
			    "as in %s = ( { ... }, { ... } );", what);
			goto out;
		}
		list_resize(ld, (size_t)li, 0);
		list_resize(ld, (size_t)li, (size_t)n);
		descend = true;
		goto out;
	}
	if (type == CONFIG_TYPE_GROUP) {
		if (index < 0 && group_exists(name))
			descend = true;
		else
			ld_problem(ld, label, NULL, "unknown key \"%s\"", what);
		goto out;
	}
	k = key_find(name);
	if (k == NULL) {
		ld_problem(ld, label, NULL, "unknown key \"%s\"", what);
		goto out;
	}
	if (type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY) {
		ld_problem(ld, label, what, "expected a single value");
		goto out;
	}
	if ((type != CONFIG_TYPE_STRING && (k->type == KEY_STRING ||
	    k->type == KEY_ENUM)) ||
	    (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64 &&
	    type != CONFIG_TYPE_STRING && k->type == KEY_INT) ||
	    (type != CONFIG_TYPE_BOOL && type != CONFIG_TYPE_INT &&
	    type != CONFIG_TYPE_STRING && k->type == KEY_BOOL)) {
		ld_problem(ld, label, what, "expected %s%s",
		    key_type_expect(k->type), k->type == KEY_STRING ||
		    k->type == KEY_ENUM ? " (in double quotes)" : "");
		goto out;
	}
	setting_text(s, tmp, sizeof(tmp), &text);
	if (k->scope == SCOPE_MAIN || k->scope == SCOPE_UNUSED) {
		ld_set_main(ld, k, text, label, what);
	} else {
		size_t n, l;
		const char **srcp;
		char *base;

		for (l = 0; l < N_LISTS; l++)
			if (config_lists[l].scope == k->scope)
				break;
		list_base(ld->cfg, l, &n);
		if (index < 0 || (size_t)index >= n) {
			ld_problem(ld, label, NULL, "unknown key \"%s\"", what);
			goto out;
		}
		base = list_entry(ld, l, (size_t)index, k, &srcp);
		ld_set(ld, k, base, srcp, text, label, what);
	}
out:
	free(what);
	return descend;
}

static void
file_load(struct loader *ld, const char *path)
{
	struct buf why = BUF_INIT, path_buf = BUF_INIT;
	struct file_ctx fc = { ld, path };
	config_t lc;
	char *dir, *slash;

	config_init(&lc);
	/* @include is relative to the including file, not to the cwd */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		config_set_include_dir(&lc, dir[0] ? dir : "/");
	}
	if (file_parse(&lc, path, &why) == -1) {
		ld_problem(ld, NULL, NULL, "%s", buf_cstr(&why));
	} else {
		walk_group(config_root_setting(&lc), &path_buf, -1, file_visit,
		    &fc);
		ld->cfg->source_file = realpath(path, NULL);
		if (ld->cfg->source_file == NULL)
			ld->cfg->source_file = xstrdup(path);
	}
	config_destroy(&lc);
	free(dir);
	buf_free(&why);
	buf_free(&path_buf);
}

/* The file to read, or NULL; a named file that is missing is an error. */
static const char *
file_choose(struct loader *ld, const struct config_overrides *ov,
    const struct env_var *env, size_t n_env, const struct dotenv *de,
    const char *dir)
{
	static const char *const system_files[] = {
		INGEN_SYSCONFDIR "/ingenious/ingenious.conf",
		"/etc/ingenious/ingenious.conf",
	};
	const char *named = NULL;
	char *local;
	size_t i;

	if (ov != NULL && ov->config_file != NULL)
		named = ov->config_file;
	for (i = 0; named == NULL && i < n_env; i++)
		if (strcasecmp(env[i].name, "INGENIOUS_CONFIG") == 0)
			named = env[i].value;
	for (i = 0; named == NULL && i < de->n; i++)
		if (strcasecmp(de->vars[i].name, "INGENIOUS_CONFIG") == 0)
			named = de->vars[i].value;
	if (named != NULL)
		return named[0] ? named : NULL;

	local = xasprintf("%s/ingenious.conf", dir ? dir : ".");
	if (access(local, F_OK) == 0)
		return ld_keep(ld, local);
	free(local);
	for (i = 0; i < sizeof(system_files) / sizeof(system_files[0]); i++)
		if (access(system_files[i], F_OK) == 0)
			return system_files[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Command line, validation, results                                   */

static void
apply_overrides(struct loader *ld, const struct config_overrides *ov)
{
	char tmp[32];

	if (ov == NULL)
		return;
	if (ov->host != NULL)
		ld_set_main(ld, key_find("web_configuration.ip_address"),
		    ov->host, "--host", NULL);
	if (ov->port != -1) {
		snprintf(tmp, sizeof(tmp), "%d", ov->port);
		ld_set_main(ld, key_find("web_configuration.port"), tmp,
		    "--port", NULL);
	}
	if (ov->workers != -1) {
		snprintf(tmp, sizeof(tmp), "%d", ov->workers);
		ld_set_main(ld, key_find("server.workers"), tmp, "--workers",
		    NULL);
	}
	if (ov->pidfile != NULL)
		ld_set_main(ld, key_find("server.pidfile"), ov->pidfile,
		    "--pidfile", NULL);
}

static const char *
ld_src(const struct loader *ld, const char *name)
{
	return ld->src[key_index(key_find(name))];
}

/* Who set entry `pos` of list li: the source of `field`, else of any. */
static const char *
ld_entry_src(const struct loader *ld, size_t li, size_t pos,
    const char *field)
{
	const char **src = &ld->lsrc[li][pos * N_KEYS];
	const struct config_key *k = field ? key_find(field) : NULL;
	size_t i;

	if (k && src[key_index(k)])
		return src[key_index(k)];
	for (i = 0; i < N_KEYS; i++)
		if (src[i])
			return src[i];
	return NULL;
}

static void
validate(struct loader *ld)
{
	struct config *c = ld->cfg;
	size_t i;

	if (c->web.authentication.enable &&
	    c->web.authentication.password[0] == '\0')
		ld_problem(ld, NULL, NULL, "Web authentication is enabled but no "
		    "password is set. Set "
		    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD.");

	if ((long long)c->server.worker_timeout * 1000 <= c->llm.timeout_ms) {
		const char *src = ld_src(ld, "server.worker_timeout");

		ld_problem(ld, src ? src : ld_src(ld, "llm.timeout_ms"), NULL,
		    "server.worker_timeout (%d s) must be longer than "
		    "llm.timeout_ms (%d ms)", c->server.worker_timeout,
		    c->llm.timeout_ms);
	}

	/* a .env written for the Python product says sqlite: history then
	 * lives in PostgreSQL, which is worth a warning, not a refusal */
	if (strcmp(c->chat_history.database_type, "sqlite") == 0)
		ld_warning(ld, ld_src(ld, "chat_history.database_type"), NULL,
		    "chat_history.database_type \"sqlite\" is served by PostgreSQL "
		    "(chat_history.database_url, or the local cluster when empty)");
	else if (strcmp(c->chat_history.database_type, "postgresql") != 0)
		ld_problem(ld, ld_src(ld, "chat_history.database_type"), NULL,
		    "chat_history.database_type \"%s\" is not supported: only "
		    "\"postgresql\" is implemented (set chat_history.database_url, "
		    "or leave it empty for the local cluster)",
		    c->chat_history.database_type);

	for (i = 0; i < c->n_models; i++) {
		const struct config_model *m = &c->models[i];

		if (m->model[0] == '\0')
			ld_problem(ld, ld_entry_src(ld, 0, i, NULL), NULL,
			    "models.%zu.model: a model name is required", i);
		if (strcasestr(m->api_key, "placeholder") != NULL)
			ld_problem(ld, ld_entry_src(ld, 0, i, "models.*.api_key"),
			    NULL, "models.%zu.api_key: a placeholder is not an "
			    "API key", i);
		if (strcasestr(m->base_url, "placeholder") != NULL)
			ld_problem(ld, ld_entry_src(ld, 0, i, "models.*.base_url"),
			    NULL, "models.%zu.base_url: a placeholder is not a "
			    "URL", i);
		else if (m->base_url[0] != '\0' &&
		    strncasecmp(m->base_url, "http://", 7) != 0 &&
		    strncasecmp(m->base_url, "https://", 8) != 0)
			ld_problem(ld, ld_entry_src(ld, 0, i, "models.*.base_url"),
			    NULL, "models.%zu.base_url: must start with http:// "
			    "or https://", i);
	}
}

/* Values derived from others once every source is in. */
static void
finish(struct loader *ld)
{
	struct config *c = ld->cfg;

	if (c->server.max_requests > 0 && c->server.max_requests_jitter == 0 &&
	    ld_src(ld, "server.max_requests_jitter") == NULL)
		c->server.max_requests_jitter = c->server.max_requests / 10;
	if (c->web.authentication.jwt_key_file[0] == '\0') {
		free(c->web.authentication.jwt_key_file);
		c->web.authentication.jwt_key_file = xasprintf("%s/jwt.key",
		    c->server.state_dir);
	}
}

struct config *
config_load(const struct config_overrides *ov, char *const *env,
    const char *dotenv_dir, struct config_problems *problems)
{
	struct loader ld;
	struct dotenv de = { NULL, 0, 0 };
	struct env_var *evars, *dvars;
	const char *path;
	size_t i, n_env, n_dot = 0;
	struct config *cfg;

	memset(problems, 0, sizeof(*problems));
	memset(&ld, 0, sizeof(ld));
	ld.pr = problems;
	ld.cfg = cfg = xcalloc(1, sizeof(*cfg));
	scope_init(SCOPE_MAIN, (char *)cfg);

	evars = env_collect(&ld, env ? env : environ, &n_env);
	dotenv_load(&ld, dotenv_dir, &de);

	path = file_choose(&ld, ov, evars, n_env, &de, dotenv_dir);
	if (path != NULL)
		file_load(&ld, path);

	/* .env values apply only where the environment is silent */
	dvars = xcalloc(de.n ? de.n : 1, sizeof(*dvars));
	for (i = 0; i < de.n; i++)
		if (!vars_have(evars, n_env, de.vars[i].name))
			dvars[n_dot++] = de.vars[i];
	apply_vars(&ld, dvars, n_dot);
	apply_vars(&ld, evars, n_env);
	apply_overrides(&ld, ov);

	validate(&ld);
	finish(&ld);

	free(dvars);
	free(de.vars);
	free(evars);
	for (i = 0; i < N_LISTS; i++)
		free(ld.lsrc[i]);
	for (i = 0; i < ld.n_strs; i++)
		free(ld.strs[i]);
	free(ld.strs);
	if (problems->n > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t li, i, n;
	char *base;

	if (cfg == NULL)
		return;
	scope_free(SCOPE_MAIN, (char *)cfg);
	for (li = 0; li < N_LISTS; li++) {
		base = list_base(cfg, li, &n);
		for (i = 0; i < n; i++)
			scope_free(config_lists[li].scope,
			    base + i * config_lists[li].elem_size);
		free(base);
	}
	free(cfg->source_file);
	free(cfg);
}

void
config_problems_free(struct config_problems *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++)
		free(p->lines[i]);
	for (i = 0; i < p->n_warnings; i++)
		free(p->warnings[i]);
	free(p->lines);
	free(p->warnings);
	memset(p, 0, sizeof(*p));
}

void
config_keys_foreach(void (*fn)(void *arg, const char *name,
    const char *env_name, const char *default_text, bool secret), void *arg)
{
	struct buf env = BUF_INIT;
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		key_env_name(config_keys[i].name, &env);
		fn(arg, config_keys[i].name, env.data, config_keys[i].def,
		    (config_keys[i].flags & KEY_SECRET) != 0);
	}
	buf_free(&env);
}

void
config_keys_describe(void (*fn)(void *arg, const struct config_key_info *key),
    void *arg)
{
	struct buf env = BUF_INIT;
	struct config_key_info info;
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];

		key_env_name(k->name, &env);
		memset(&info, 0, sizeof(info));
		info.name = k->name;
		info.env_name = env.data;
		info.default_text = k->def;
		info.type = key_type_name(k->type);
		info.values = k->values;
		info.min = k->min;
		info.max = k->max;
		info.secret = (k->flags & KEY_SECRET) != 0;
		info.reloadable = (k->flags & KEY_RESTART) == 0;
		info.unused = k->scope == SCOPE_UNUSED;
		fn(arg, &info);
	}
	buf_free(&env);
}

void
config_aliases_foreach(void (*fn)(void *arg, const char *env_name,
    const char *key), void *arg)
{
	size_t i;

	for (i = 0; i < N_ALIASES; i++)
		fn(arg, config_aliases[i].env, config_aliases[i].key);
}

void
config_foreach_value(const struct config *cfg, void (*fn)(void *arg,
    const char *name, const char *value, bool secret), void *arg)
{
	struct buf val = BUF_INIT;
	size_t i, li, e, n;

	for (i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->scope != SCOPE_MAIN)
			continue;
		key_format(k, (const char *)cfg, true, &val);
		fn(arg, k->name, val.data, (k->flags & KEY_SECRET) != 0);
	}
	for (li = 0; li < N_LISTS; li++) {
		const char *base = list_base(cfg, li, &n);

		for (e = 0; e < n; e++)
			for (i = 0; i < N_KEYS; i++) {
				const struct config_key *k = &config_keys[i];
				char *name;

				if (k->scope != config_lists[li].scope)
					continue;
				key_format(k, base + e * config_lists[li].elem_size,
				    true, &val);
				name = name_with_index(k->name, (int)e);
				fn(arg, name, val.data,
				    (k->flags & KEY_SECRET) != 0);
				free(name);
			}
	}
	buf_free(&val);
}

size_t
config_restart_keys(const struct config *old_cfg,
    const struct config *new_cfg, void (*fn)(void *arg, const char *name),
    void *arg)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	size_t i, n = 0;

	for (i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->scope != SCOPE_MAIN || !(k->flags & KEY_RESTART))
			continue;
		key_format(k, (const char *)old_cfg, false, &a);
		key_format(k, (const char *)new_cfg, false, &b);
		if (strcmp(a.data, b.data) != 0) {
			n++;
			if (fn)
				fn(arg, k->name);
		}
	}
	buf_free(&a);
	buf_free(&b);
	return n;
}

struct walk_ctx {
	void (*fn)(void *arg, const char *name, int line, const char *value);
	void *arg;
};

static bool
walk_visit(void *arg, const char *name, int index, const config_setting_t *s)
{
	struct walk_ctx *w = arg;
	char tmp[64];
	const char *text;
	int type = config_setting_type(s);

	(void)index;
	if (type == CONFIG_TYPE_GROUP || type == CONFIG_TYPE_LIST)
		return true;
	if (type == CONFIG_TYPE_ARRAY)
		return false;
	setting_text(s, tmp, sizeof(tmp), &text);
	w->fn(w->arg, name, (int)config_setting_source_line(s), text);
	return false;
}

int
config_file_walk(const char *path, void (*fn)(void *arg, const char *name,
    int line, const char *value), void *arg, struct err *e)
{
	struct buf why = BUF_INIT, name = BUF_INIT;
	struct walk_ctx w = { fn, arg };
	config_t lc;
	int rc = 0;

	config_init(&lc);
	if (file_parse(&lc, path, &why) == -1) {
		rc = err_set(e, 500, "%s", buf_cstr(&why));
		goto out;
	}
	walk_group(config_root_setting(&lc), &name, -1, walk_visit, &w);
out:
	config_destroy(&lc);
	buf_free(&why);
	buf_free(&name);
	return rc;
}

int
config_ncpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 && n < INT_MAX ? (int)n : 1;
}
