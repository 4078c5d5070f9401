/*
 * test_config.c -- the configuration loader: precedence of the sources,
 * environment names (nesting, case, lists, aliases, _FILE), .env parsing,
 * every validation rule, and that no secret reaches a problem line.
 * Works in a private mkdtemp directory that it removes; never reads the
 * process environment (every load gets its own env array).
 */
#include "autoconfig.h"

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/xmalloc.h"
#include "tests/unit/tap.h"

static char tmpdir[] = "/tmp/test_config.XXXXXX";

/* Write `text` to tmpdir/name; returns the path (caller frees). */
static char *
put_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *fp = fopen(path, "w");

	if (fp == NULL) {
		printf("Bail out! could not write %s\n", path);
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
	return path;
}

static void
drop_file(const char *name)
{
	char *path = xasprintf("%s/%s", tmpdir, name);

	unlink(path);
	free(path);
}

/* Load with the given variables (copied: config_load takes char *const *),
 * .env looked for in tmpdir. */
static struct config *
load_ov(const char *const *vars, const struct config_overrides *ov,
    struct config_problems *p)
{
	struct config *cfg;
	char **env;
	size_t i, n = 0;

	while (vars && vars[n])
		n++;
	env = xcalloc(n + 1, sizeof(*env));
	for (i = 0; i < n; i++)
		env[i] = xstrdup(vars[i]);
	cfg = config_load(ov, env, tmpdir, p);
	for (i = 0; i < n; i++)
		free(env[i]);
	free(env);
	return cfg;
}

/* config_file NULL = search, "" = no file. */
static struct config *
load(const char *const *vars, const char *config_file,
    struct config_problems *p)
{
	struct config_overrides ov = CONFIG_OVERRIDES_INIT;

	ov.config_file = config_file;
	return load_ov(vars, &ov, p);
}

/* Show the problems and warnings of a load, once a check has failed
 * since the last call. */
static void
diag_problems(const struct config_problems *p)
{
	static int shown;
	size_t i;

	if (tap_failed == shown)
		return;
	shown = tap_failed;

	for (i = 0; i < p->n; i++)
		printf("#   problem: %s\n", p->lines[i]);
	for (i = 0; i < p->n_warnings; i++)
		printf("#   warning: %s\n", p->warnings[i]);
}

static bool
has_line(const struct config_problems *p, const char *line)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->lines[i], line) == 0)
			return true;
	return false;
}

static bool
has_sub(char **lines, size_t n, const char *sub)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strstr(lines[i], sub) != NULL)
			return true;
	return false;
}

/* Expect a failed load with exactly one problem line `want`. */
static void
expect_problem(const char *const *vars, const char *config_file,
    const char *want, const char *name)
{
	struct config_problems p;
	struct config *cfg = load(vars, config_file, &p);

	ok(cfg == NULL && p.n == 1 && has_line(&p, want), "%s", name);
	if (cfg != NULL || p.n != 1 || !has_line(&p, want)) {
		printf("#   want: %s\n", want);
		diag_problems(&p);
	}
	config_free(cfg);
	config_problems_free(&p);
}

static void
test_defaults(void)
{
	struct config_problems p;
	struct config *cfg = load(NULL, "", &p);

	ok(cfg != NULL && p.n == 0 && p.n_warnings == 0,
	    "defaults alone load, no problem, no warning");
	if (cfg == NULL) {
		diag_problems(&p);
		config_problems_free(&p);
		return;
	}
	is_str(cfg->web.ip_address, "127.0.0.1", "ip_address binds loopback");
	is_int(cfg->web.port, 8000, "port 8000");
	is_int(cfg->server.workers, 0, "workers 0 (= CPUs)");
	is_int(cfg->server.flow_threads, 0, "flow_threads 0 (from memory)");
	is_int(cfg->server.worker_timeout, 90, "worker_timeout 90");
	is_int(cfg->server.max_body_size, 1048576, "max_body_size 1 MiB");
	ok(cfg->server.metrics_loopback_only, "metrics_loopback_only true");
	is_str(cfg->server.state_dir, "./.ingenious", "state_dir");
	is_str(cfg->web.authentication.jwt_key_file, "./.ingenious/jwt.key",
	    "empty jwt_key_file becomes <state_dir>/jwt.key");
	is_str(cfg->web.authentication.username, "admin", "username admin");
	is_str(cfg->web.authentication.jwt_algorithm, "HS256", "HS256");
	is_int(cfg->web.authentication.jwt_access_token_expire_minutes, 1440,
	    "access token 1440 min");
	is_str(cfg->chat_history.database_type, "postgresql", "postgresql");
	is_int(cfg->chat_history.history_limit, 5, "history_limit 5");
	is_int(cfg->llm.timeout_ms, 60000, "llm timeout 60 s");
	ok(cfg->llm.verify_tls, "verify_tls true");
	is_str(cfg->logging.format, "logfmt", "logfmt");
	is_str(cfg->kb.policy, "azure_only", "kb policy azure_only");
	is_int(cfg->kb.topk_assist, 5, "topk_assist 5");
	is_str(cfg->file_storage.revisions_path, "./", "revisions path ./");
	ok(cfg->n_models == 0 && cfg->models == NULL, "no model by default");
	ok(cfg->source_file == NULL, "no source file");
	is_int(cfg->server.max_requests_jitter, 0, "jitter 0 without recycling");
	config_free(cfg);
	config_problems_free(&p);
}

static void
test_precedence(void)
{
	struct config_problems p;
	struct config_overrides ov = CONFIG_OVERRIDES_INIT;
	struct config *cfg;
	char *conf, *envcfg;
	const char *file_only[] = { NULL, NULL };
	const char *env_too[] = { NULL,
		"INGENIOUS_WEB_CONFIGURATION__PORT=8003", NULL };

	conf = put_file("prec.conf",
	    "web_configuration: { port = 8001; };\n"
	    "server: { workers = 2; flow_threads = 8; };\n"
	    "logging: { log_level = \"warning\"; };\n");
	envcfg = xasprintf("INGENIOUS_CONFIG=%s", conf);
	file_only[0] = env_too[0] = envcfg;

	cfg = load(file_only, NULL, &p);
	ok(cfg && cfg->web.port == 8001 && cfg->server.workers == 2,
	    "file (via $INGENIOUS_CONFIG) beats defaults");
	ok(cfg && cfg->source_file && strstr(cfg->source_file, "prec.conf"),
	    "source_file names the file");
	config_free(cfg);
	config_problems_free(&p);

	free(put_file(".env",
	    "INGENIOUS_WEB_CONFIGURATION__PORT=8002\n"
	    "INGENIOUS_SERVER__WORKERS=3\n"));
	cfg = load(file_only, NULL, &p);
	ok(cfg && cfg->web.port == 8002 && cfg->server.workers == 3 &&
	    cfg->server.flow_threads == 8, ".env beats the file, file stays "
	    "for keys .env lacks");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(env_too, NULL, &p);
	ok(cfg && cfg->web.port == 8003 && cfg->server.workers == 3,
	    "environment beats .env for the same name only");
	is_str(cfg ? cfg->logging.log_level : NULL, "warning",
	    "file value kept when nothing overrides it");
	config_free(cfg);
	config_problems_free(&p);

	ov.port = 8004;
	ov.workers = 5;
	ov.host = "0.0.0.0";
	ov.pidfile = "/run/x.pid";
	cfg = load_ov(env_too, &ov, &p);
	ok(cfg && cfg->web.port == 8004 && cfg->server.workers == 5,
	    "command line beats everything");
	is_str(cfg ? cfg->web.ip_address : NULL, "0.0.0.0", "--host");
	is_str(cfg ? cfg->server.pidfile : NULL, "/run/x.pid", "--pidfile");
	config_free(cfg);
	config_problems_free(&p);

	ov.port = 0;
	ov.workers = -1;
	ov.host = ov.pidfile = NULL;
	cfg = load_ov(env_too, &ov, &p);
	ok(cfg == NULL && has_line(&p, "--port: value 0 is out of range "
	    "(1..65535)"), "a bad --port is reported as such");
	config_free(cfg);
	config_problems_free(&p);

	/* ./ingenious.conf (dotenv_dir) is found without being named */
	drop_file(".env");
	free(put_file("ingenious.conf", "server: { flow_queue = 7; };\n"));
	cfg = load(NULL, NULL, &p);
	ok(cfg && cfg->server.flow_queue == 7, "<dir>/ingenious.conf is found");
	config_free(cfg);
	config_problems_free(&p);
	drop_file("ingenious.conf");

	/* INGENIOUS_CONFIG in .env names the file when the environment doesn't */
	{
		char *dotenv = xasprintf("INGENIOUS_CONFIG=%s\n", conf);

		free(put_file(".env", dotenv));
		cfg = load(NULL, NULL, &p);
		ok(cfg && cfg->web.port == 8001, "INGENIOUS_CONFIG from .env");
		config_free(cfg);
		config_problems_free(&p);
		free(dotenv);
		drop_file(".env");
	}

	free(conf);
	free(envcfg);
}

static void
test_env_names(void)
{
	struct config_problems p;
	struct config *cfg;
	const char *nested[] = {
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE=true",
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD=pw",
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__USERNAME=alice",
		"INGENIOUS_FILE_STORAGE__REVISIONS__PATH=/srv/prompts",
		NULL };
	const char *mixed[] = {
		"ingenious_web_configuration__port=9000",
		"Ingenious_Server__Flow_Threads=9",
		"INGENIOUS_LOGGING__LOG_LEVEL=DEBUG",
		"INGENIOUS_CHAT_HISTORY__DATABASE_TYPE=PostgreSQL",
		"INGENIOUS_WEB_CONFIGURATION__ENABLE_STREAMING=off",
		NULL };
	const char *unknown[] = {
		"INGENIOUS_WEB_CONFIGURATION__PROT=1",
		"INGENIOUS_CONFIG=",
		"INGENIOUS_WORKING_DIR=/tmp",
		"PATH=/usr/bin",
		"AZURE_OPENAI_API_KEY=not-ours",
		NULL };
	const char *group_json[] = {
		"INGENIOUS_WEB_CONFIGURATION={\"port\": 8100, \"authentication\": "
		    "{\"username\": \"bob\"}}",
		"INGENIOUS_WEB_CONFIGURATION__PORT=8101",
		NULL };

	cfg = load(nested, "", &p);
	ok(cfg && cfg->web.authentication.enable, "nested "
	    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE");
	is_str(cfg ? cfg->web.authentication.username : NULL, "alice",
	    "nested username");
	is_str(cfg ? cfg->file_storage.revisions_path : NULL, "/srv/prompts",
	    "file_storage.revisions.path -> revisions_path");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(mixed, "", &p);
	ok(cfg && cfg->web.port == 9000 && cfg->server.flow_threads == 9,
	    "environment names are case-insensitive");
	is_str(cfg ? cfg->logging.log_level : NULL, "debug",
	    "enum values are case-insensitive, stored canonical");
	is_str(cfg ? cfg->chat_history.database_type : NULL, "postgresql",
	    "PostgreSQL -> postgresql");
	ok(cfg && !cfg->web.enable_streaming, "\"off\" is a boolean");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(unknown, "", &p);
	ok(cfg != NULL && p.n == 0, "unknown INGENIOUS_ variable is no error");
	ok(p.n_warnings == 1 && has_sub(p.warnings, p.n_warnings,
	    "INGENIOUS_WEB_CONFIGURATION__PROT: unknown variable"),
	    "... but a warning, and INGENIOUS_CONFIG, INGENIOUS_WORKING_DIR and "
	    "foreign names are not");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(group_json, "", &p);
	ok(cfg && cfg->web.port == 8101, "nested name beats the group JSON");
	is_str(cfg ? cfg->web.authentication.username : NULL, "bob",
	    "group JSON sets nested groups");
	config_free(cfg);
	config_problems_free(&p);
}

static void
test_aliases(void)
{
	struct config_problems p;
	struct config *cfg;
	const char *kb[] = { "KB_POLICY=local_only", "KB_MODE=assist",
		"KB_TOPK_DIRECT=7", "KB_TOPK_ASSIST=9",
		"INGENIOUS_FLOW_PATH=/opt/flows", "WEB_PORT=8200", NULL };
	const char *jwt1[] = { "JWT_SECRET_KEY=legacy",
		"INGENIOUS_JWT_SECRET_KEY=mid", NULL };
	const char *jwt2[] = { "INGENIOUS_JWT_SECRET_KEY=mid",
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__JWT_SECRET_KEY=real",
		"JWT_SECRET_KEY=legacy", NULL };
	const char *port[] = { "INGENIOUS_WEB_CONFIGURATION__PORT=8300",
		"WEB_PORT=8200", NULL };

	cfg = load(kb, "", &p);
	ok(cfg && strcmp(cfg->kb.policy, "local_only") == 0 &&
	    strcmp(cfg->kb.mode, "assist") == 0 && cfg->kb.topk_direct == 7 &&
	    cfg->kb.topk_assist == 9, "KB_POLICY, KB_MODE, KB_TOPK_* map to kb.*");
	is_str(cfg ? cfg->server.flow_path : NULL, "/opt/flows",
	    "INGENIOUS_FLOW_PATH");
	ok(cfg && cfg->web.port == 8200, "WEB_PORT");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(jwt1, "", &p);
	is_str(cfg ? cfg->web.authentication.jwt_secret_key : NULL, "mid",
	    "INGENIOUS_JWT_SECRET_KEY beats JWT_SECRET_KEY");
	config_free(cfg);
	config_problems_free(&p);
	cfg = load(jwt2, "", &p);
	is_str(cfg ? cfg->web.authentication.jwt_secret_key : NULL, "real",
	    "the nested name beats both aliases");
	config_free(cfg);
	config_problems_free(&p);
	cfg = load(port, "", &p);
	ok(cfg && cfg->web.port == 8300, "nested port beats WEB_PORT");
	config_free(cfg);
	config_problems_free(&p);

	{
		const char *azure[] = { "AZURE_CLIENT_ID=app-1",
			"AZURE_CLIENT_SECRET=s3cret", "AZURE_TENANT_ID=t-1",
			"AZURE_AUTHORITY_HOST=https://login.example",
			"INGENIOUS_AZURE_IDENTITY__TENANT_ID=t-2", NULL };

		cfg = load(azure, "", &p);
		ok(cfg && p.n == 0 && p.n_warnings == 0 &&
		    strcmp(cfg->azure_identity.client_id, "app-1") == 0 &&
		    strcmp(cfg->azure_identity.client_secret, "s3cret") == 0 &&
		    strcmp(cfg->azure_identity.authority_host,
		    "https://login.example") == 0,
		    "AZURE_CLIENT_ID, _SECRET, AZURE_AUTHORITY_HOST land in "
		    "azure_identity.*");
		is_str(cfg ? cfg->azure_identity.tenant_id : NULL, "t-2",
		    "the nested name beats AZURE_TENANT_ID");
		diag_problems(&p);
		config_free(cfg);
		config_problems_free(&p);
	}

	{
		const char *bad[] = { "KB_POLICY=sometimes", NULL };

		expect_problem(bad, "", "KB_POLICY: invalid value \"sometimes\" "
		    "(expected one of: azure_only, prefer_azure, prefer_local, "
		    "local_only)", "a bad alias value is named by its variable");
	}
}

static void
test_lists(void)
{
	struct config_problems p;
	struct config *cfg;
	const char *json[] = {
		"INGENIOUS_MODELS=[{\"model\": \"gpt-4o\", \"api_key\": \"k0\", "
		    "\"base_url\": \"https://a.openai.azure.com/\"}, "
		    "{\"model\": \"emb\", \"role\": \"embedding\"}]",
		NULL };
	const char *sparse[] = {
		"INGENIOUS_MODELS__5__MODEL=second",
		"INGENIOUS_MODELS__2__MODEL=first",
		"INGENIOUS_MODELS__2__API_KEY=k2",
		"INGENIOUS_MODELS__10__MODEL=third",
		NULL };
	const char *merge[] = {
		"INGENIOUS_MODELS__1__API_KEY=zz",
		"INGENIOUS_MODELS=[{\"model\": \"a\"}, {\"model\": \"b\", "
		    "\"api_key\": \"old\"}]",
		"INGENIOUS_MODELS__7__MODEL=c",
		NULL };
	const char *entry_json[] = {
		"INGENIOUS_MODELS__3__API_KEY=k3",
		"INGENIOUS_MODELS__3={\"model\": \"j\", \"api_key\": \"old\"}",
		NULL };
	const char *search[] = {
		"INGENIOUS_AZURE_SEARCH_SERVICES__0__ENDPOINT=https://s.search."
		    "windows.net",
		"INGENIOUS_AZURE_SEARCH_SERVICES__0__KEY=sk",
		"INGENIOUS_AZURE_SEARCH_SERVICES__0__INDEX_NAME=idx",
		NULL };

	cfg = load(json, "", &p);
	ok(cfg && cfg->n_models == 2, "JSON list form: two models");
	if (cfg && cfg->n_models == 2) {
		is_str(cfg->models[0].model, "gpt-4o", "JSON model 0");
		is_str(cfg->models[0].api_key, "k0", "JSON api_key 0");
		is_str(cfg->models[0].api_version, "2024-12-01-preview",
		    "missing fields take the defaults");
		is_str(cfg->models[0].authentication_method, "token",
		    "authentication_method defaults to token");
		is_str(cfg->models[1].role, "embedding", "JSON role 1");
	}
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(sparse, "", &p);
	ok(cfg && cfg->n_models == 3, "sparse indices 2, 5, 10 -> 3 entries");
	if (cfg && cfg->n_models == 3) {
		is_str(cfg->models[0].model, "first", "index 2 -> entry 0");
		is_str(cfg->models[0].api_key, "k2", "its fields merge");
		is_str(cfg->models[1].model, "second", "index 5 -> entry 1");
		is_str(cfg->models[2].model, "third",
		    "index 10 -> entry 2 (numeric, not string, order)");
	}
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(merge, "", &p);
	ok(cfg && cfg->n_models == 3, "JSON + indexed: 2 + 1 appended");
	if (cfg && cfg->n_models == 3) {
		is_str(cfg->models[1].model, "b", "JSON field kept");
		is_str(cfg->models[1].api_key, "zz",
		    "indexed field overrides the JSON entry at that index");
		is_str(cfg->models[2].model, "c", "a new index is appended");
	}
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(entry_json, "", &p);
	ok(cfg && cfg->n_models == 1 && strcmp(cfg->models[0].model, "j") == 0 &&
	    strcmp(cfg->models[0].api_key, "k3") == 0,
	    "one entry as JSON (INGENIOUS_MODELS__3), its fields override it");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(search, "", &p);
	ok(cfg && cfg->n_search == 1 && strcmp(cfg->search[0].key, "sk") == 0 &&
	    strcmp(cfg->search[0].index_name, "idx") == 0,
	    "azure_search_services indexed form");
	config_free(cfg);
	config_problems_free(&p);

	/* a file list, whose entry 0 the environment completes */
	{
		char *conf = put_file("list.conf",
		    "models = (\n"
		    "  { model = \"m0\"; base_url = \"https://r.openai.azure.com/\"; },\n"
		    "  { model = \"m1\"; api_type = \"azure\"; }\n"
		    ");\n");
		const char *env[] = { "INGENIOUS_MODELS__0__API_KEY=from-env",
			NULL };

		cfg = load(env, conf, &p);
		ok(cfg && cfg->n_models == 2, "file list of two groups");
		if (cfg && cfg->n_models == 2) {
			is_str(cfg->models[0].api_key, "from-env",
			    "env index 0 fills the file's entry 0");
			is_str(cfg->models[0].base_url,
			    "https://r.openai.azure.com/", "file field kept");
			is_str(cfg->models[1].api_type, "azure", "entry 1");
		}
		diag_problems(&p);
		config_free(cfg);
		config_problems_free(&p);
		free(conf);
	}

	/* JSON in a higher source replaces the file's list */
	{
		char *conf = put_file("list2.conf",
		    "models = ( { model = \"m0\"; }, { model = \"m1\"; } );\n");
		const char *env[] = { "INGENIOUS_MODELS=[{\"model\": \"only\"}]",
			NULL };

		cfg = load(env, conf, &p);
		ok(cfg && cfg->n_models == 1 &&
		    strcmp(cfg->models[0].model, "only") == 0,
		    "the JSON form replaces a lower source's list");
		config_free(cfg);
		config_problems_free(&p);
		free(conf);
	}
}

static void
test_secret_files(void)
{
	struct config_problems p;
	struct config *cfg;
	char *pw = put_file("pw", "s3cret\n");
	char *key = put_file("key", "line1\nline2\n\n");
	char *v1 = xasprintf("INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"
	    "PASSWORD_FILE=%s", pw);
	char *v2 = xasprintf("ingenious_models__0__api_key_file=%s", key);
	char *v3 = xasprintf("JWT_SECRET_KEY_FILE=%s", pw);
	const char *env[] = { v1, v2, v3,
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE=1",
		"INGENIOUS_MODELS__0__MODEL=m", NULL };
	const char *missing[] = {
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD_FILE="
		    "/nonexistent/pw", NULL };
	const char *both[] = { v1,
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD=x", NULL };

	cfg = load(env, "", &p);
	is_str(cfg ? cfg->web.authentication.password : NULL, "s3cret",
	    "NAME_FILE reads the value, one trailing newline stripped");
	is_str(cfg && cfg->n_models ? cfg->models[0].api_key : NULL,
	    "line1\nline2\n", "only one newline is stripped; list key _FILE, "
	    "lower-case name");
	is_str(cfg ? cfg->web.authentication.jwt_secret_key : NULL, "s3cret",
	    "an alias takes _FILE too");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);

	expect_problem(missing, "", "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION"
	    "__PASSWORD_FILE: could not read \"/nonexistent/pw\": No such file "
	    "or directory", "an unreadable _FILE is an error");
	cfg = load(both, "", &p);
	ok(cfg == NULL && p.n == 1 && strstr(p.lines[0], "is set too"),
	    "NAME and NAME_FILE together are an error");
	config_free(cfg);
	config_problems_free(&p);

	free(v1);
	free(v2);
	free(v3);
	free(pw);
	free(key);
}

static void
test_value_errors(void)
{
	const char *bad_int[] = { "INGENIOUS_WEB_CONFIGURATION__PORT=abc", NULL };
	const char *range[] = { "INGENIOUS_WEB_CONFIGURATION__PORT=70000", NULL };
	const char *bad_bool[] = {
		"INGENIOUS_WEB_CONFIGURATION__ENABLE_STREAMING=maybe", NULL };
	const char *bad_enum[] = { "INGENIOUS_LOGGING__FORMAT=xml", NULL };
	const char *bad_alg[] = {
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__JWT_ALGORITHM=RS256",
		NULL };
	const char *bad_json[] = { "INGENIOUS_MODELS=[{\"model\": ", NULL };
	char *conf;

	expect_problem(bad_int, "", "INGENIOUS_WEB_CONFIGURATION__PORT: "
	    "invalid integer \"abc\"", "bad integer, named by its variable");
	expect_problem(range, "", "INGENIOUS_WEB_CONFIGURATION__PORT: value "
	    "70000 is out of range (1..65535)", "out of range");
	expect_problem(bad_bool, "", "INGENIOUS_WEB_CONFIGURATION__ENABLE_"
	    "STREAMING: invalid boolean \"maybe\" (expected true or false)",
	    "bad boolean");
	expect_problem(bad_enum, "", "INGENIOUS_LOGGING__FORMAT: invalid value "
	    "\"xml\" (expected one of: logfmt, json)", "bad enum value");
	expect_problem(bad_alg, "", "INGENIOUS_WEB_CONFIGURATION__"
	    "AUTHENTICATION__JWT_ALGORITHM: invalid value \"RS256\" (expected "
	    "one of: HS256)", "jwt_algorithm must be HS256");
	expect_problem(bad_json, "", "INGENIOUS_MODELS: invalid JSON",
	    "bad JSON list");

	conf = put_file("unknown.conf",
	    "# a comment\n"
	    "web_configuration:\n"
	    "{\n"
	    "  port = 8001;\n"
	    "  prot = 8002;\n"
	    "};\n");
	{
		char *want = xasprintf("%s:5: unknown key "
		    "\"web_configuration.prot\"", conf);

		expect_problem(NULL, conf, want, "unknown file key: file:line");
		free(want);
	}
	free(conf);

	conf = put_file("types.conf",
	    "web_configuration: { port = \"80x\"; ip_address = 5; };\n"
	    "server: { workers = 2.5; };\n"
	    "models = { model = \"x\"; };\n"
	    "nosuch: { a = 1; };\n"
	    "llm: { verify_tls = \"yes\"; };\n");
	{
		struct config_problems p;
		struct config *cfg = load(NULL, conf, &p);
		char *l1 = xasprintf("%s:1: web_configuration.port: invalid "
		    "integer \"80x\"", conf);
		char *l2 = xasprintf("%s:1: web_configuration.ip_address: "
		    "expected a string (in double quotes)", conf);
		char *l3 = xasprintf("%s:2: server.workers: expected an integer",
		    conf);
		char *l5 = xasprintf("%s:4: unknown key \"nosuch\"", conf);

		ok(cfg == NULL && p.n == 5, "file type errors: 5 problems");
		ok(has_line(&p, l1), "a string where an integer belongs");
		ok(has_line(&p, l2), "an integer where a string belongs");
		ok(has_line(&p, l3), "a float where an integer belongs");
		ok(has_sub(p.lines, p.n, "models: expected a list of groups"),
		    "a group where a list belongs");
		ok(has_line(&p, l5), "an unknown group");
		diag_problems(&p);
		config_free(cfg);
		config_problems_free(&p);
		free(l1);
		free(l2);
		free(l3);
		free(l5);
	}
	free(conf);

	conf = put_file("syntax.conf", "server: {\n workers = ;\n};\n");
	{
		struct config_problems p;
		struct config *cfg = load(NULL, conf, &p);
		char *want = xasprintf("%s:2: syntax error", conf);

		ok(cfg == NULL && p.n == 1 && has_line(&p, want),
		    "a syntax error names file and line");
		diag_problems(&p);
		config_free(cfg);
		config_problems_free(&p);
		free(want);
	}
	free(conf);

	expect_problem(NULL, "/nonexistent/ingenious.conf",
	    "could not open configuration file \"/nonexistent/ingenious.conf\": "
	    "No such file or directory", "a named missing file is an error");
}

static void
test_many_problems(void)
{
	struct config_problems p;
	struct config *cfg;
	char *conf = put_file("many.conf",
	    "web_configuration: { prot = 1; };\n"
	    "server: { wokers = 2; };\n");
	const char *env[] = {
		"INGENIOUS_WEB_CONFIGURATION__PORT=abc",
		"INGENIOUS_SERVER__FLOW_THREADS=-1",
		"INGENIOUS_LOGGING__LOG_LEVEL=loud",
		"INGENIOUS_LLM__VERIFY_TLS=perhaps",
		"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE=true",
		"INGENIOUS_CHAT_HISTORY__DATABASE_TYPE=cosmos",
		"INGENIOUS_SERVER__WORKER_TIMEOUT=30",
		"INGENIOUS_MODELS__0__BASE_URL=ftp://x",
		NULL };

	cfg = load(env, conf, &p);
	ok(cfg == NULL, "many problems: load fails");
	is_int(p.n, 11, "every problem is reported at once, one line each");
	ok(has_line(&p, "Web authentication is enabled but no password is set. "
	    "Set INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD."),
	    "auth without password: the exact message");
	ok(has_line(&p, "INGENIOUS_SERVER__WORKER_TIMEOUT: server.worker_timeout "
	    "(30 s) must be longer than llm.timeout_ms (60000 ms)"),
	    "worker_timeout must exceed the LLM timeout");
	ok(has_sub(p.lines, p.n, "INGENIOUS_CHAT_HISTORY__DATABASE_TYPE: "
	    "chat_history.database_type \"cosmos\" is not supported"),
	    "database_type other than postgresql is rejected clearly");
	ok(has_line(&p, "INGENIOUS_MODELS__0__BASE_URL: models.0.base_url: "
	    "must start with http:// or https://"), "base_url scheme");
	ok(has_line(&p, "INGENIOUS_MODELS__0__BASE_URL: models.0.model: a model "
	    "name is required"), "a model needs a name");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);
	free(conf);
}

struct dump {
	int n, leaked, masked;
};

static void
dump_value(void *arg, const char *name, const char *value, bool secret)
{
	struct dump *d = arg;

	(void)name;
	d->n++;
	if (strstr(value, "SECRETXYZ") != NULL || strcmp(value, "pw1") == 0)
		d->leaked++;
	if (secret && strcmp(value, "********") == 0)
		d->masked++;
}

static void
test_secrets_hidden(void)
{
	struct config_problems p;
	struct config *cfg;
	const char *env[] = {
		"INGENIOUS_MODELS=[{\"model\": \"m\", \"api_key\": "
		    "\"placeholder-SECRETXYZ\", \"client_secret\": 12345}, "
		    "{\"model\": \"n\", \"base_url\": \"https://PLACEHOLDER.x/\"}]",
		"INGENIOUS_AZURE_SEARCH_SERVICES=[{\"key\": \"SECRETXYZ\"",
		"INGENIOUS_CHAT_HISTORY__DATABASE_URL=postgresql://u:SECRETXYZ@h/db",
		NULL };
	size_t i;
	bool clean = true;

	cfg = load(env, "", &p);
	ok(cfg == NULL && p.n == 4, "placeholder api_key, placeholder base_url, "
	    "numeric secret, bad JSON holding a secret: 4 problems");
	ok(has_line(&p, "INGENIOUS_MODELS: models.0.api_key: a placeholder is "
	    "not an API key"), "placeholder api_key rejected");
	ok(has_line(&p, "INGENIOUS_MODELS: models.1.base_url: a placeholder is "
	    "not a URL"), "placeholder base_url rejected");
	ok(has_line(&p, "INGENIOUS_MODELS: models.0.client_secret: expected a "
	    "string"), "type error on a secret without its value");
	for (i = 0; i < p.n; i++)
		if (strstr(p.lines[i], "SECRETXYZ") || strstr(p.lines[i], "12345"))
			clean = false;
	for (i = 0; i < p.n_warnings; i++)
		if (strstr(p.warnings[i], "SECRETXYZ"))
			clean = false;
	ok(clean, "no secret value in any problem or warning line");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);

	/* the dump masks secrets */
	{
		const char *env2[] = {
			"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD=pw1",
			"INGENIOUS_MODELS__0__MODEL=m",
			"INGENIOUS_MODELS__0__API_KEY=SECRETXYZ", NULL };
		struct dump d = { 0, 0, 0 };

		cfg = load(env2, "", &p);
		if (cfg)
			config_foreach_value(cfg, dump_value, &d);
		ok(cfg && d.n > 50 && d.leaked == 0 && d.masked == 2,
		    "config_foreach_value masks the two secrets set");
		config_free(cfg);
		config_problems_free(&p);
	}
}

static void
test_dotenv(void)
{
	struct config_problems p;
	struct config *cfg;

	free(put_file(".env",
	    "# a comment\n"
	    "\n"
	    "export INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__USERNAME=eve\n"
	    "INGENIOUS_SERVER__STATE_DIR = '/var/lib/ingen # not a comment'\n"
	    "INGENIOUS_SERVER__USER=\"svc\\\"x\" # a comment\n"
	    "INGENIOUS_SERVER__FLOW_PATH=/a:/b   # trailing comment\n"
	    "INGENIOUS_SERVER__PIDFILE=/run/a#b\n"
	    "INGENIOUS_MODELS='[\n"
	    "  {\"model\": \"multi-line\"}\n"
	    "]'\n"
	    "INGENIOUS_LLM__CA_FILE=\"line\\nbreak\"\n"
	    "  INGENIOUS_LOGGING__FILE=   /var/log/i.log   \r\n"
	    "BARE_NAME\n"
	    "KB_MODE=assist\n"));
	cfg = load(NULL, "", &p);
	ok(cfg != NULL, ".env loads");
	diag_problems(&p);
	if (cfg) {
		is_str(cfg->web.authentication.username, "eve", "export prefix");
		is_str(cfg->server.state_dir, "/var/lib/ingen # not a comment",
		    "single quotes are literal, spaces around =");
		is_str(cfg->server.user, "svc\"x", "double quotes with escape, "
		    "comment after the quote");
		is_str(cfg->server.flow_path, "/a:/b", "inline comment stripped");
		is_str(cfg->server.pidfile, "/run/a#b", "# inside a word is kept");
		ok(cfg->n_models == 1 && strcmp(cfg->models[0].model,
		    "multi-line") == 0, "a quoted value spans lines");
		is_str(cfg->llm.ca_file, "line\nbreak", "\\n in double quotes");
		is_str(cfg->logging.file, "/var/log/i.log", "blanks and CR trimmed");
		is_str(cfg->kb.mode, "assist", "an alias in .env");
	}
	config_free(cfg);
	config_problems_free(&p);

	free(put_file(".env",
	    "INGENIOUS_SERVER__USER=ok\n"
	    "not a valid line\n"
	    "INGENIOUS_SERVER__PIDFILE=\"unterminated\n"));
	cfg = load(NULL, "", &p);
	{
		char *l1 = xasprintf("%s/.env:2: invalid line (expected NAME=VALUE)",
		    tmpdir);
		char *l2 = xasprintf("%s/.env:3: unterminated quoted value", tmpdir);

		ok(cfg == NULL && p.n == 2 && has_line(&p, l1) && has_line(&p, l2),
		    ".env syntax errors name the file and line");
		diag_problems(&p);
		free(l1);
		free(l2);
	}
	config_free(cfg);
	config_problems_free(&p);

	free(put_file(".env", "INGENIOUS_SERVER__FLOW_THREADS=lots\n"));
	cfg = load(NULL, "", &p);
	{
		char *want = xasprintf("%s/.env:1: INGENIOUS_SERVER__FLOW_THREADS: "
		    "invalid integer \"lots\"", tmpdir);

		ok(cfg == NULL && has_line(&p, want),
		    "a bad .env value names file, line and variable");
		diag_problems(&p);
		free(want);
	}
	config_free(cfg);
	config_problems_free(&p);
	drop_file(".env");
}

static void
test_derived(void)
{
	struct config_problems p;
	struct config *cfg;
	const char *auto_jitter[] = { "INGENIOUS_SERVER__MAX_REQUESTS=1000",
		"INGENIOUS_SERVER__STATE_DIR=/var/lib/ingenious", NULL };
	const char *set_jitter[] = { "INGENIOUS_SERVER__MAX_REQUESTS=1000",
		"INGENIOUS_SERVER__MAX_REQUESTS_JITTER=0", NULL };
	const char *compat[] = { "INGENIOUS_CACHE__ENABLED=true",
		"INGENIOUS_PROFILE=dev", NULL };

	cfg = load(auto_jitter, "", &p);
	ok(cfg && cfg->server.max_requests_jitter == 100,
	    "jitter defaults to 10%% of max_requests");
	is_str(cfg ? cfg->web.authentication.jwt_key_file : NULL,
	    "/var/lib/ingenious/jwt.key", "jwt_key_file follows state_dir");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(set_jitter, "", &p);
	ok(cfg && cfg->server.max_requests_jitter == 0,
	    "an explicit jitter of 0 stays 0");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(compat, "", &p);
	ok(cfg != NULL && p.n_warnings == 2 && has_sub(p.warnings, p.n_warnings,
	    "cache.enabled: accepted for compatibility, has no effect"),
	    "compatibility keys load with a warning each");
	config_free(cfg);
	config_problems_free(&p);
}

/* Keys that nothing reads yet: a value other than the default is named in
 * a warning (never with a secret's value); the default is silent. */
static void
test_unused(void)
{
	struct config_problems p;
	struct config *cfg;
	const char *set[] = { "INGENIOUS_WEB_CONFIGURATION__STREAMING_DELAY_MS=10",
		"INGENIOUS_CHAT_HISTORY__DATABASE_CONNECTION_STRING=Server=h;Pwd=SECRETXYZ",
		"INGENIOUS_MODELS__0__MODEL=m", "INGENIOUS_MODELS__0__ENDPOINT=e",
		NULL };
	const char *defaults[] = { "INGENIOUS_WEB_CONFIGURATION__STREAMING_DELAY_MS=50",
		"INGENIOUS_SERVER__FLOW_PATH=", NULL };

	cfg = load(set, "", &p);
	ok(cfg != NULL && p.n == 0 && p.n_warnings == 3,
	    "unused keys set: the load succeeds with three warnings");
	ok(has_sub(p.warnings, p.n_warnings, "INGENIOUS_WEB_CONFIGURATION__"
	    "STREAMING_DELAY_MS: web_configuration.streaming_delay_ms: accepted "
	    "for compatibility, not used yet: the value has no effect"),
	    "the warning names the variable and the key");
	ok(has_sub(p.warnings, p.n_warnings, "models.0.endpoint: accepted for "
	    "compatibility, not used yet"), "a list entry's key, with its index");
	ok(has_sub(p.warnings, p.n_warnings, "chat_history.database_connection_string: "
	    "accepted") && !has_sub(p.warnings, p.n_warnings, "SECRETXYZ"),
	    "a secret's warning names it without its value");
	is_int(cfg ? cfg->web.streaming_delay_ms : -1, 10,
	    "the value is still stored for the code that will read it");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(defaults, "", &p);
	ok(cfg != NULL && p.n == 0 && p.n_warnings == 0,
	    "an unused key set to its default: no warning");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);
}

/* The SQL agent's keys (issue 12): the older local_sql_db names, the
 * test-only guard switch, Azure SQL, and values that reach SET LOCAL. */
static void
test_sql_agent(void)
{
	struct config_problems p;
	struct config *cfg;
	const char *old[] = {
		"INGENIOUS_LOCAL_SQL_DB__DATABASE_URL=postgresql://u:SECRETXYZ@h/d",
		"INGENIOUS_LOCAL_SQL_DB__MAX_ROWS=7", NULL };
	const char *both[] = {
		"INGENIOUS_LOCAL_SQL_DB__MAX_ROWS=7",
		"INGENIOUS_SQL_AGENT__MAX_ROWS=9", NULL };
	const char *off[] = { "INGENIOUS_SQL_AGENT__GUARD=false",
		"INGENIOUS_AZURE_SQL_SERVICES__DATABASE_CONNECTION_STRING="
		"Driver={ODBC Driver 18};Pwd=SECRETXYZ", NULL };
	const char *bad[] = { "INGENIOUS_SQL_AGENT__SCHEMA=public; DROP",
		"INGENIOUS_SQL_AGENT__WORK_MEM=4MB'; RESET ROLE; --",
		"INGENIOUS_SQL_AGENT__TEMP_FILE_LIMIT=lots", NULL };

	cfg = load(NULL, "", &p);
	ok(cfg != NULL && strcmp(cfg->sql_agent.schema, "agent_data") == 0 &&
	    cfg->sql_agent.statement_timeout_ms == 5000 &&
	    cfg->sql_agent.max_rows == 100 && cfg->sql_agent.guard &&
	    strcmp(cfg->sql_agent.work_mem, "4MB") == 0 &&
	    strcmp(cfg->sql_agent.temp_file_limit, "16MB") == 0 &&
	    cfg->sql_agent.database_url[0] == '\0',
	    "sql_agent defaults: agent_data, 5000 ms, 100 rows, guard on, 4MB, 16MB");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(old, "", &p);
	ok(cfg != NULL && p.n_warnings == 0 &&
	    strcmp(cfg->sql_agent.database_url, "postgresql://u:SECRETXYZ@h/d") == 0 &&
	    cfg->sql_agent.max_rows == 7,
	    "local_sql_db.database_url and max_rows set the sql_agent keys");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(both, "", &p);
	ok(cfg != NULL && cfg->sql_agent.max_rows == 9,
	    "sql_agent.max_rows wins over local_sql_db.max_rows");
	config_free(cfg);
	config_problems_free(&p);

	cfg = load(off, "", &p);
	ok(cfg != NULL && has_sub(p.warnings, p.n_warnings, "sql_agent.guard is "
	    "false") && has_sub(p.warnings, p.n_warnings, "test-only"),
	    "guard = false loads, with a warning that says test-only");
	ok(has_sub(p.warnings, p.n_warnings, "this server speaks PostgreSQL only") &&
	    !has_sub(p.warnings, p.n_warnings, "SECRETXYZ"),
	    "azure_sql_services.database_connection_string: PostgreSQL only, value hidden");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);

	{
		const char *pub[] = { "INGENIOUS_SQL_AGENT__SCHEMA=public", NULL };

		cfg = load(pub, "", &p);
		ok(cfg != NULL && has_sub(p.warnings, p.n_warnings, "is the chat "
		    "history's schema"), "schema public on the local cluster: a warning");
		diag_problems(&p);
		config_free(cfg);
		config_problems_free(&p);
	}

	cfg = load(bad, "", &p);
	ok(cfg == NULL && p.n == 3 &&
	    has_sub(p.lines, p.n, "sql_agent.schema") &&
	    has_sub(p.lines, p.n, "sql_agent.work_mem") &&
	    has_sub(p.lines, p.n, "sql_agent.temp_file_limit"),
	    "a schema, work_mem or temp_file_limit that would need quoting is refused");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);
}

static void
test_restart_keys(void)
{
	struct config_problems p;
	const char *a[] = { "INGENIOUS_SERVER__FLOW_THREADS=4",
		"INGENIOUS_SERVER__STATE_DIR=/srv/a", NULL };
	const char *b[] = { "INGENIOUS_WEB_CONFIGURATION__PORT=9001",
		"INGENIOUS_SERVER__USER=nobody",
		"INGENIOUS_SERVER__STATE_DIR=/srv/b",
		"INGENIOUS_SERVER__FLOW_THREADS=8", NULL };
	struct config_overrides ov = CONFIG_OVERRIDES_INIT;
	struct config *c1 = load(a, "", &p), *c2 = NULL;
	char **env;
	size_t i, n = 0;

	ov.config_file = "";

	config_problems_free(&p);
	while (b[n])
		n++;
	env = xcalloc(n + 1, sizeof(*env));
	for (i = 0; i < n; i++)
		env[i] = xstrdup(b[i]);
	if (c1 != NULL)
		c2 = config_reload(c1, &ov, env, tmpdir, &p);
	ok(c2 != NULL && p.n == 0 && p.n_warnings == 3,
	    "a reload that changes port, user and state_dir loads, with three "
	    "warnings");
	ok(c2 && c2->web.port == 8000 && strcmp(c2->server.user, "") == 0 &&
	    strcmp(c2->server.state_dir, "/srv/a") == 0,
	    "... and keeps the running values of the restart-only keys");
	is_str(c2 ? c2->web.authentication.jwt_key_file : NULL,
	    "/srv/a/jwt.key", "the key file still follows the kept state_dir");
	ok(c2 && c2->server.flow_threads == 8, "flow_threads changes on reload");
	ok(has_sub(p.warnings, p.n_warnings, "INGENIOUS_SERVER__STATE_DIR: "
	    "server.state_dir: cannot be changed without restarting the server: "
	    "keeping \"/srv/a\", not \"/srv/b\""),
	    "the warning names the key, the source and both values");
	ok(has_sub(p.warnings, p.n_warnings, "web_configuration.port: cannot be "
	    "changed without restarting the server: keeping \"8000\", not "
	    "\"9001\""), "the port too");
	diag_problems(&p);
	config_problems_free(&p);
	config_free(c2);
	for (i = 0; i < n; i++)
		free(env[i]);
	free(env);

	/* the same sources again: nothing to keep, nothing to say */
	env = xcalloc(3, sizeof(*env));
	env[0] = xstrdup(a[0]);
	env[1] = xstrdup(a[1]);
	c2 = c1 ? config_reload(c1, &ov, env, tmpdir, &p) : NULL;
	ok(c2 != NULL && p.n == 0 && p.n_warnings == 0,
	    "no change, no restart warning");
	config_problems_free(&p);
	config_free(c2);
	free(env[0]);
	free(env[1]);
	free(env);
	config_free(c1);
}

static void
test_etc_conf(void)
{
	struct config_problems p;
	struct config *cfg;
	const char *srcdir = getenv("INGEN_SRCDIR");
	char *path = xasprintf("%s/etc/ingenious.conf", srcdir ? srcdir : ".");

	cfg = load(NULL, path, &p);
	ok(cfg != NULL && p.n == 0 && p.n_warnings == 0,
	    "etc/ingenious.conf loads as shipped");
	diag_problems(&p);
	config_free(cfg);
	config_problems_free(&p);
	free(path);
}

struct table_check {
	int restart, secret, unused;
	bool port_ok;
};

static void
describe_key(void *arg, const struct config_key_info *k)
{
	struct table_check *tc = arg;

	if (!k->reloadable)
		tc->restart++;
	if (k->secret)
		tc->secret++;
	if (k->unused)
		tc->unused++;
	if (strcmp(k->name, "web_configuration.port") == 0)
		tc->port_ok = strcmp(k->type, "int") == 0 && k->min == 1 &&
		    k->max == 65535 && !k->reloadable && !k->secret &&
		    strcmp(k->env_name, "INGENIOUS_WEB_CONFIGURATION__PORT") == 0;
}

/* Every default of the table parses and is what a default load holds. */
struct defaults {
	char **names, **values;
	size_t n;
};

static void
collect_value(void *arg, const char *name, const char *value, bool secret)
{
	struct defaults *d = arg;

	(void)secret;
	d->names = xrealloc(d->names, (d->n + 1) * sizeof(*d->names));
	d->values = xrealloc(d->values, (d->n + 1) * sizeof(*d->values));
	d->names[d->n] = xstrdup(name);
	d->values[d->n] = xstrdup(value);
	d->n++;
}

static void
compare_default(void *arg, const char *name, const char *env_name,
    const char *default_text, bool secret)
{
	struct defaults *d = arg;
	char *indexed = NULL;
	const char *star = strstr(name, ".*.");
	size_t i;

	(void)env_name;
	(void)secret;
	if (strcmp(name, "web_configuration.authentication.jwt_key_file") == 0)
		return;               /* derived from state_dir */
	if (star != NULL)
		indexed = xasprintf("%.*s.0.%s", (int)(star - name), name,
		    star + 3);
	for (i = 0; i < d->n; i++)
		if (strcmp(d->names[i], indexed ? indexed : name) == 0)
			break;
	if (i == d->n) {
		/* unused keys land nowhere and are not dumped */
		free(indexed);
		return;
	}
	if (strcmp(name, "models.*.model") != 0 &&
	    strcmp(name, "azure_search_services.*.service") != 0 &&
	    strcmp(d->values[i], default_text) != 0) {
		ok(0, "default of %s: table \"%s\", loaded \"%s\"", name,
		    default_text, d->values[i]);
	}
	free(indexed);
}

static void
test_table(void)
{
	struct config_problems p;
	struct table_check tc;
	struct defaults d = { NULL, NULL, 0 };
	const char *one_each[] = { "INGENIOUS_MODELS__0__MODEL=m",
		"INGENIOUS_AZURE_SEARCH_SERVICES__0__SERVICE=s", NULL };
	struct config *cfg = load(one_each, "", &p);
	int before = tap_failed;
	size_t i;

	memset(&tc, 0, sizeof(tc));
	config_keys_describe(describe_key, &tc);
	ok(tc.port_ok, "describe: port is an int 1..65535, needs a restart");
	is_int(tc.restart, 5, "five keys need a restart");
	ok(tc.secret >= 15, "secrets are flagged (%d)", tc.secret);
	ok(tc.unused >= 30, "compatibility keys are flagged unused (%d)",
	    tc.unused);

	if (cfg == NULL) {
		ok(0, "a load with one model and one search service");
		config_problems_free(&p);
		return;
	}
	config_foreach_value(cfg, collect_value, &d);
	config_keys_foreach(compare_default, &d);
	ok(tap_failed == before, "every default of the table parses and is "
	    "the loaded value (%zu values)", d.n);
	for (i = 0; i < d.n; i++) {
		free(d.names[i]);
		free(d.values[i]);
	}
	free(d.names);
	free(d.values);
	config_free(cfg);
	config_problems_free(&p);
}

static void
test_workers(void)
{
	struct config_problems p;
	const char *three[] = { "INGENIOUS_SERVER__WORKERS=3", NULL };
	struct config *cfg = load(NULL, "", &p);

	ok(cfg && cfg->server.workers == 0 && config_workers(cfg) >= 1,
	    "workers 0: one per CPU, at least 1 (%d)",
	    cfg ? config_workers(cfg) : 0);
	config_free(cfg);
	config_problems_free(&p);
	cfg = load(three, "", &p);
	ok(cfg && config_workers(cfg) == 3, "workers 3: three");
	config_free(cfg);
	config_problems_free(&p);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	test_defaults();
	test_table();
	test_precedence();
	test_env_names();
	test_aliases();
	test_lists();
	test_secret_files();
	test_value_errors();
	test_many_problems();
	test_secrets_hidden();
	test_dotenv();
	test_derived();
	test_unused();
	test_sql_agent();
	test_restart_keys();
	test_etc_conf();
	test_workers();
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
