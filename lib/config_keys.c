/*
 * config_keys.c -- THE table of configuration keys (PgBouncer bouncer_params,
 * Redis static_configs): every key's name, type, default, bounds and flags,
 * and where it lands in struct config; the lists of groups; the alias
 * variables of the reference; the INGENIOUS_* names that are not keys.
 *
 * It owns that data and nothing else: no code reads a source or a value
 * here (lib/config.c does).  To add a key: a field in struct config
 * (lib/config.h), a line here, its documentation in etc/ingenious.conf
 * (tests/unit/test_config_doc fails until it is there).
 */
#include "autoconfig.h"

#include <limits.h>
#include <stddef.h>

#include "lib/config_int.h"

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
 * Flags (lib/config_int.h): KEY_SECRET, KEY_RESTART (a reload keeps the
 * old value), KEY_UNUSED (stored, read by nothing yet); the scope UNUSED is
 * for the Python product's keys that have no field at all.
 */
const struct config_key config_keys[] = {
	K_STR("profile", UNUSED, "default", 0),

	/* web_configuration */
	K_STR("web_configuration.ip_address", C_STR(web.ip_address),
	    "127.0.0.1", KEY_RESTART),
	K_INT("web_configuration.port", C_INT(web.port), "8000", 1, 65535,
	    KEY_RESTART),
	K_STR("web_configuration.type", C_STR(web.type), "fastapi", KEY_UNUSED),
	K_BOOL("web_configuration.asynchronous", C_BOOL(web.asynchronous),
	    "false", KEY_UNUSED),
	K_BOOL("web_configuration.enable_streaming",
	    C_BOOL(web.enable_streaming), "true", 0),
	K_INT("web_configuration.streaming_chunk_size",
	    C_INT(web.streaming_chunk_size), "100", 1, 1048576, 0),
	K_INT("web_configuration.streaming_delay_ms",
	    C_INT(web.streaming_delay_ms), "50", 0, 60000, KEY_UNUSED),
	K_STR("web_configuration.cors_allowed_origins",
	    C_STR(web.cors_allowed_origins), "", KEY_UNUSED),
	K_BOOL("web_configuration.authentication.enable",
	    C_BOOL(web.authentication.enable), "false", 0),
	K_STR("web_configuration.authentication.username",
	    C_STR(web.authentication.username), "admin", 0),
	K_STR("web_configuration.authentication.password",
	    C_STR(web.authentication.password), "", KEY_SECRET),
	K_STR("web_configuration.authentication.type",
	    C_STR(web.authentication.type), "basic", KEY_UNUSED),
	K_BOOL("web_configuration.authentication.enable_global_middleware",
	    C_BOOL(web.authentication.enable_global_middleware), "false",
	    KEY_UNUSED),
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
	K_INT("web_configuration.authentication.password_hash_concurrency",
	    C_INT(web.authentication.password_hash_concurrency), "2", 1, 1024, 0),
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
	K_INT("server.overload_delay_ms", C_INT(server.overload_delay_ms), "1000",
	    0, 60000, 0),
	K_INT("server.db_wait_limit_ms", C_INT(server.db_wait_limit_ms), "2500",
	    0, 600000, 0),
	K_INT("server.thread_stack_kb", C_INT(server.thread_stack_kb), "256",
	    64, 65536, 0),
	K_BOOL("server.malloc_thread_cache", C_BOOL(server.malloc_thread_cache),
	    "false", 0),
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
	K_INT("server.max_prompt_bytes", C_INT(server.max_prompt_bytes), "262144",
	    1, INT_MAX, 0),
	K_BOOL("server.api_docs", C_BOOL(server.api_docs), "true", 0),
	K_BOOL("server.console", C_BOOL(server.console), "true", 0),
	K_INT("server.retry_after", C_INT(server.retry_after), "1", 0, 3600, 0),
	K_STR("server.pidfile", C_STR(server.pidfile), "", KEY_RESTART),
	K_STR("server.state_dir", C_STR(server.state_dir), "./.ingenious",
	    KEY_RESTART),
	K_INT("server.usage_journal_slots", C_INT(server.usage_journal_slots),
	    "8192", 0, 1048576, 0),
	K_STR("server.user", C_STR(server.user), "", KEY_RESTART),
	K_STR("server.flow_path", C_STR(server.flow_path),
	    "./ingenious_extensions/flows", 0),
	K_BOOL("server.metrics_loopback_only",
	    C_BOOL(server.metrics_loopback_only), "true", 0),

	/* logging */
	K_ENUM("logging.root_log_level", C_STR(logging.root_log_level), "info",
	    v_log_level, KEY_UNUSED),
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
	    "./tmp/high_level_logs.db", KEY_UNUSED),
	K_STR("chat_history.database_connection_string",
	    C_STR(chat_history.database_connection_string), "",
	    KEY_SECRET | KEY_UNUSED),
	K_STR("chat_history.database_name", C_STR(chat_history.database_name),
	    "", KEY_UNUSED),
	K_STR("chat_history.memory_path", C_STR(chat_history.memory_path),
	    "./tmp", 0),
	K_INT("chat_history.pool_size", C_INT(chat_history.pool_size), "4",
	    1, 1000, 0),
	K_INT("chat_history.connect_timeout",
	    C_INT(chat_history.connect_timeout), "5", 1, 3600, 0),
	K_INT("chat_history.statement_timeout_ms",
	    C_INT(chat_history.statement_timeout_ms), "10000", 0, INT_MAX, 0),
	K_INT("chat_history.history_limit", C_INT(chat_history.history_limit),
	    "5", 0, 10000, 0),

	/* models[i] */
	K_STR("models.*.model", M_STR(model), "", 0),
	K_ENUM("models.*.api_type", M_STR(api_type), "rest", v_api_type, 0),
	K_STR("models.*.api_version", M_STR(api_version), "2024-12-01-preview",
	    0),
	K_STR("models.*.deployment", M_STR(deployment), "", 0),
	K_STR("models.*.api_key", M_STR(api_key), "", KEY_SECRET),
	K_STR("models.*.base_url", M_STR(base_url), "", 0),
	K_ENUM("models.*.authentication_method", M_STR(authentication_method),
	    "token", v_auth_method, 0),
	K_STR("models.*.client_id", M_STR(client_id), "", 0),
	K_STR("models.*.client_secret", M_STR(client_secret), "", KEY_SECRET),
	K_STR("models.*.tenant_id", M_STR(tenant_id), "", 0),
	K_ENUM("models.*.role", M_STR(role), "chat", v_role, 0),
	K_STR("models.*.endpoint", M_STR(endpoint), "", KEY_UNUSED),

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

	/* azure_identity: ours, the Azure SDK's AZURE_* variables (aliases) */
	K_STR("azure_identity.client_id", C_STR(azure_identity.client_id), "",
	    0),
	K_STR("azure_identity.client_secret",
	    C_STR(azure_identity.client_secret), "", KEY_SECRET),
	K_STR("azure_identity.tenant_id", C_STR(azure_identity.tenant_id), "",
	    0),
	K_STR("azure_identity.authority_host",
	    C_STR(azure_identity.authority_host), "", 0),

	/* azure_search_services[i] */
	K_STR("azure_search_services.*.service", S_STR(service), "", 0),
	K_STR("azure_search_services.*.endpoint", S_STR(endpoint), "", 0),
	K_STR("azure_search_services.*.key", S_STR(key), "",
	    KEY_SECRET),
	K_STR("azure_search_services.*.index_name", S_STR(index_name), "", 0),
	K_STR("azure_search_services.*.client_id", S_STR(client_id), "", 0),
	K_STR("azure_search_services.*.client_secret", S_STR(client_secret), "",
	    KEY_SECRET),
	K_STR("azure_search_services.*.tenant_id", S_STR(tenant_id), "", 0),
	K_ENUM("azure_search_services.*.authentication_method",
	    S_STR(authentication_method), "token", v_auth_method, 0),
	K_STR("azure_search_services.*.semantic_configuration",
	    S_STR(semantic_configuration), "", 0),

	/* chat_service */
	K_ENUM("chat_service.type", C_STR(chat_service.type), "multi_agent",
	    v_chat_service, 0),
	K_BOOL("chat_service.enable_builtin_workflows",
	    C_BOOL(chat_service.enable_builtin_workflows), "true", 0),

	/* flows: the limits of every turn */
	K_INT("flows.max_llm_calls", C_INT(flows.max_llm_calls), "25", 1, 10000, 0),
	K_INT("flows.max_tool_iterations", C_INT(flows.max_tool_iterations), "10",
	    1, 1000, 0),
	K_INT("flows.turn_timeout_ms", C_INT(flows.turn_timeout_ms), "300000",
	    100, 86400000, 0),
	K_INT("flows.max_turn_tokens", C_INT(flows.max_turn_tokens), "1000000",
	    0, INT_MAX, 0),
	K_INT("flows.max_parallel", C_INT(flows.max_parallel), "8", 1, 256, 0),

	/* local_sql_db: the reference's three (unused: SQLite), and the older
	 * names of three sql_agent keys */
	K_STR("local_sql_db.database_path", C_STR(local_sql_db.database_path),
	    "/tmp/sample_sql_db", KEY_UNUSED),
	K_STR("local_sql_db.sample_csv_path",
	    C_STR(local_sql_db.sample_csv_path), "", KEY_UNUSED),
	K_STR("local_sql_db.sample_database_name",
	    C_STR(local_sql_db.sample_database_name), "sample_sql_db",
	    KEY_UNUSED),
	K_STR("local_sql_db.database_url", C_STR(local_sql_db.database_url), "",
	    KEY_SECRET),
	K_INT("local_sql_db.statement_timeout_ms",
	    C_INT(local_sql_db.statement_timeout_ms), "5000", 1, INT_MAX, 0),
	K_INT("local_sql_db.max_rows", C_INT(local_sql_db.max_rows), "100",
	    1, 1000000, 0),

	/* sql_agent: ours, the SQL agent's database and limits */
	K_STR("sql_agent.database_url", C_STR(sql_agent.database_url), "",
	    KEY_SECRET),
	K_STR("sql_agent.schema", C_STR(sql_agent.schema), "agent_data", 0),
	K_INT("sql_agent.statement_timeout_ms",
	    C_INT(sql_agent.statement_timeout_ms), "5000", 1, 600000, 0),
	K_INT("sql_agent.lock_timeout_ms", C_INT(sql_agent.lock_timeout_ms),
	    "1000", 1, 600000, 0),
	K_INT("sql_agent.max_rows", C_INT(sql_agent.max_rows), "100",
	    1, 1000000, 0),
	K_INT("sql_agent.max_bytes", C_INT(sql_agent.max_bytes), "65536",
	    1024, 67108864, 0),
	K_STR("sql_agent.work_mem", C_STR(sql_agent.work_mem), "4MB", 0),
	K_STR("sql_agent.temp_file_limit", C_STR(sql_agent.temp_file_limit),
	    "16MB", 0),
	K_INT("sql_agent.connect_timeout", C_INT(sql_agent.connect_timeout), "5",
	    2, 3600, 0),
	K_INT("sql_agent.pool_size", C_INT(sql_agent.pool_size), "2", 1, 64, 0),
	K_BOOL("sql_agent.guard", C_BOOL(sql_agent.guard), "true", 0),

	/* file_storage: revisions (prompt templates) and data */
	K_BOOL("file_storage.revisions.enable", UNUSED, "true", 0),
	K_ENUM("file_storage.revisions.storage_type",
	    C_STR(file_storage.storage_type), "local", v_storage, KEY_UNUSED),
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
	K_STR("file_storage.data.path", C_STR(file_storage.data_path), "./",
	    KEY_UNUSED),
	K_BOOL("file_storage.data.add_sub_folders", UNUSED, "true", 0),
	K_STR("file_storage.data.url", UNUSED, "", 0),
	K_STR("file_storage.data.client_id", UNUSED, "", 0),
	K_STR("file_storage.data.token", UNUSED, "", KEY_SECRET),
	K_ENUM("file_storage.data.authentication_method", UNUSED,
	    "default_credential", v_auth_method, 0),

	/* kb: ours (the reference's KB_* variables); the knowledge-base-agent
	 * and ing_kb_search (flows/kbsearch.c) */
	K_ENUM("kb.policy", C_STR(kb.policy), "azure_only", v_kb_policy, 0),
	K_ENUM("kb.mode", C_STR(kb.mode), "direct", v_kb_mode, 0),
	K_INT("kb.topk_direct", C_INT(kb.topk_direct), "3", 1, 1000, 0),
	K_INT("kb.topk_assist", C_INT(kb.topk_assist), "5", 1, 1000, 0),
	K_BOOL("kb.fallback_on_empty", C_BOOL(kb.fallback_on_empty), "false", 0),
	K_INT("kb.azure_snippet_cap", C_INT(kb.azure_snippet_cap), "0", 0,
	    1000000, 0),
	K_STR("kb.azure_default_index", C_STR(kb.azure_default_index), "", 0),
	/* read by `ingen kb` and the server's indexer (lib/kbindex.c) */
	K_STR("kb.directory", C_STR(kb.directory), "", 0),
	K_STR("kb.text_search_config", C_STR(kb.text_search_config), "english",
	    0),
	K_INT("kb.chunk_max_chars", C_INT(kb.chunk_max_chars), "2000", 200,
	    100000, 0),

	/* accepted for compatibility with the Python product, unused */
	K_BOOL("tool_service.enable", UNUSED, "false", 0),
	K_BOOL("receiver_configuration.enable", UNUSED, "false", 0),
	K_STR("receiver_configuration.api_url", UNUSED, "", 0),
	K_STR("receiver_configuration.api_key", UNUSED, "DevApiKey",
	    KEY_SECRET),
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

const size_t config_n_keys = sizeof(config_keys) / sizeof(config_keys[0]);

const struct config_list config_lists[CONFIG_N_LISTS] = {
	{ "models", SCOPE_MODEL, sizeof(struct config_model) },
	{ "azure_search_services", SCOPE_SEARCH, sizeof(struct config_search) },
};

_Static_assert(sizeof(config_lists) / sizeof(config_lists[0]) == CONFIG_N_LISTS,
    "CONFIG_N_LISTS counts config_lists");

/*
 * Variables of the reference that set a key under another name.  Within one
 * source an alias loses against the canonical name, and a later alias of the
 * same key beats an earlier one (INGENIOUS_JWT_SECRET_KEY > JWT_SECRET_KEY).
 */
const struct config_alias config_aliases[] = {
	{ "KB_POLICY", "kb.policy" },
	{ "KB_MODE", "kb.mode" },
	{ "KB_TOPK_DIRECT", "kb.topk_direct" },
	{ "KB_TOPK_ASSIST", "kb.topk_assist" },
	{ "KB_FALLBACK_ON_EMPTY", "kb.fallback_on_empty" },
	{ "KB_AZURE_SNIPPET_CAP", "kb.azure_snippet_cap" },
	{ "AZURE_SEARCH_DEFAULT_INDEX", "kb.azure_default_index" },
	{ "INGENIOUS_FLOW_PATH", "server.flow_path" },
	{ "WEB_PORT", "web_configuration.port" },
	{ "JWT_SECRET_KEY", "web_configuration.authentication.jwt_secret_key" },
	{ "INGENIOUS_JWT_SECRET_KEY",
	    "web_configuration.authentication.jwt_secret_key" },
	{ "INGENIOUS_JWT_ALGORITHM",
	    "web_configuration.authentication.jwt_algorithm" },
	/* the Azure SDK's EnvironmentCredential */
	{ "AZURE_CLIENT_ID", "azure_identity.client_id" },
	{ "AZURE_CLIENT_SECRET", "azure_identity.client_secret" },
	{ "AZURE_TENANT_ID", "azure_identity.tenant_id" },
	{ "AZURE_AUTHORITY_HOST", "azure_identity.authority_host" },
};

const size_t config_n_aliases =
    sizeof(config_aliases) / sizeof(config_aliases[0]);

/* INGENIOUS_* variables that are not keys and are no mistake either. */
const char *const config_env_known[] = {
	"INGENIOUS_CONFIG",           /* the file, read by config_load */
	"INGENIOUS_WORKING_DIR",      /* the reference's, set by its CLI */
	"INGENIOUS_PROJECT_PATH",
	"INGENIOUS_PROFILE_PATH",
	"INGENIOUS_DIAGNOSTICS_ENABLED",
	NULL
};
