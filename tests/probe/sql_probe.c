/*
 * sql_probe.c -- a driver of the SQL agent's lower layers for the end-to-end
 * tests (tests/e2e/test_sqlagent.py): the statement guard (lib/sqlguard.h)
 * and the execution as the agent's role (lib/db_sqlagent.h), configured
 * exactly as the server is (config_load: the environment,
 * INGENIOUS_SQL_AGENT__*), against a real PostgreSQL.  One JSON object per
 * line on stdout.
 *
 *   sql_probe run SQL          the guard when sql_agent.guard is true, then
 *                              db_sqlagent_run: {"ok", "refused_by"
 *                              ("guard"|"database"), "status", "msg",
 *                              "cols", "numeric", "rows", "rows_truncated",
 *                              "bytes_truncated", "ms"}
 *   sql_probe repl             one SQL statement per line on stdin (JSON
 *                              strings), each answered like `run`; one
 *                              handle for the whole session
 *   sql_probe describe         db_sqlagent_describe: {"text", "first_table"}
 *   sql_probe concurrent N SQL N threads run SQL at once on one handle:
 *                              {"ok": count, "failed": count, "first_error"}
 *
 * It is a test tool: it never fakes a result, it reports what the layers did.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/db_sqlagent.h"
#include "lib/log.h"
#include "lib/sqlguard.h"
#include "lib/xmalloc.h"

#define PROBE_MAX_THREADS 64
#define PROBE_LINE_MAX (1 << 20)

static struct db_sqlagent *probe_sa;

static double
probe_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
probe_print(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	printf("%s\n", s);
	fflush(stdout);
	free(s);
	cJSON_Delete(o);
}

/* The guard (when on), then the database; the outcome as JSON. */
static cJSON *
probe_run(const char *sql)
{
	struct arena *a = arena_create(0);
	struct db_sql_result r;
	struct timespec t0;
	struct err e = { 0 };
	cJSON *o = cJSON_CreateObject(), *rows, *row, *cols, *num;
	int i, c;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (db_sqlagent_guard(probe_sa) &&
	    sqlguard_check(sql, db_sqlagent_schema(probe_sa), &e) < 0) {
		cJSON_AddFalseToObject(o, "ok");
		cJSON_AddStringToObject(o, "refused_by", "guard");
		cJSON_AddNumberToObject(o, "status", e.status);
		cJSON_AddStringToObject(o, "msg", e.msg);
	} else if (db_sqlagent_run(probe_sa, sql, a, &r, &e) < 0) {
		cJSON_AddFalseToObject(o, "ok");
		cJSON_AddStringToObject(o, "refused_by", "database");
		cJSON_AddNumberToObject(o, "status", e.status);
		cJSON_AddStringToObject(o, "msg", e.msg);
	} else {
		cJSON_AddTrueToObject(o, "ok");
		cols = cJSON_AddArrayToObject(o, "cols");
		num = cJSON_AddArrayToObject(o, "numeric");
		for (c = 0; c < r.n_cols; c++) {
			cJSON_AddItemToArray(cols, cJSON_CreateString(r.col_names[c]));
			cJSON_AddItemToArray(num, cJSON_CreateBool(r.col_numeric[c]));
		}
		rows = cJSON_AddArrayToObject(o, "rows");
		for (i = 0; i < r.n_rows; i++) {
			row = cJSON_CreateArray();
			for (c = 0; c < r.n_cols; c++)
				cJSON_AddItemToArray(row, r.rows[i][c] ?
				    cJSON_CreateString(r.rows[i][c]) : cJSON_CreateNull());
			cJSON_AddItemToArray(rows, row);
		}
		cJSON_AddBoolToObject(o, "rows_truncated", r.rows_truncated);
		cJSON_AddBoolToObject(o, "bytes_truncated", r.bytes_truncated);
	}
	cJSON_AddNumberToObject(o, "ms", probe_ms(&t0));
	arena_destroy(a);
	return o;
}

struct probe_job {
	pthread_t t;
	const char *sql;
	bool ok;
	char msg[ERR_MSG_MAX];
};

static void *
probe_thread(void *arg)
{
	struct probe_job *j = arg;
	struct arena *a = arena_create(0);
	struct db_sql_result r;
	struct err e = { 0 };

	j->ok = db_sqlagent_run(probe_sa, j->sql, a, &r, &e) == 0 && r.n_rows > 0;
	snprintf(j->msg, sizeof(j->msg), "%s", e.msg);
	arena_destroy(a);
	return NULL;
}

static int
usage(void)
{
	fprintf(stderr, "usage: sql_probe run SQL | repl | describe | concurrent N SQL\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct config_overrides ov = CONFIG_OVERRIDES_INIT;
	struct config_problems probs;
	struct config *cfg;
	struct err e = { 0 };
	cJSON *o;
	size_t k;
	int rc = 0;

	if (argc < 2)
		return usage();
	log_set_role("sql-probe");
	memset(&probs, 0, sizeof(probs));
	ov.config_file = "";
	cfg = config_load(&ov, NULL, NULL, &probs);
	if (cfg == NULL) {
		for (k = 0; k < probs.n; k++)
			fprintf(stderr, "sql_probe: %s\n", probs.lines[k]);
		config_problems_free(&probs);
		return 1;
	}
	for (k = 0; k < probs.n_warnings; k++)
		fprintf(stderr, "sql_probe: warning: %s\n", probs.warnings[k]);
	config_problems_free(&probs);
	probe_sa = db_sqlagent_open(cfg, &e);
	if (probe_sa == NULL) {
		fprintf(stderr, "sql_probe: %s\n", e.msg);
		config_free(cfg);
		return 1;
	}

	if (strcmp(argv[1], "run") == 0 && argc == 3) {
		probe_print(probe_run(argv[2]));
	} else if (strcmp(argv[1], "repl") == 0) {
		char *line = xmalloc(PROBE_LINE_MAX);

		while (fgets(line, PROBE_LINE_MAX, stdin) != NULL) {
			cJSON *j = cJSON_Parse(line);

			if (!cJSON_IsString(j)) {
				cJSON_Delete(j);
				o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "error", "not a JSON string");
				probe_print(o);
				continue;
			}
			probe_print(probe_run(j->valuestring));
			cJSON_Delete(j);
		}
		free(line);
	} else if (strcmp(argv[1], "describe") == 0) {
		struct arena *a = arena_create(0);
		const char *text, *first;

		o = cJSON_CreateObject();
		if (db_sqlagent_describe(probe_sa, a, &text, &first, &e) < 0) {
			cJSON_AddFalseToObject(o, "ok");
			cJSON_AddNumberToObject(o, "status", e.status);
			cJSON_AddStringToObject(o, "msg", e.msg);
		} else {
			cJSON_AddTrueToObject(o, "ok");
			cJSON_AddStringToObject(o, "text", text);
			if (first != NULL)
				cJSON_AddStringToObject(o, "first_table", first);
			else
				cJSON_AddNullToObject(o, "first_table");
		}
		probe_print(o);
		arena_destroy(a);
	} else if (strcmp(argv[1], "concurrent") == 0 && argc == 4) {
		struct probe_job jobs[PROBE_MAX_THREADS];
		int n = atoi(argv[2]), i, good = 0;
		const char *first = NULL;

		if (n < 1 || n > PROBE_MAX_THREADS)
			return usage();
		for (i = 0; i < n; i++) {
			memset(&jobs[i], 0, sizeof(jobs[i]));
			jobs[i].sql = argv[3];
			pthread_create(&jobs[i].t, NULL, probe_thread, &jobs[i]);
		}
		for (i = 0; i < n; i++) {
			pthread_join(jobs[i].t, NULL);
			if (jobs[i].ok)
				good++;
			else if (first == NULL)
				first = jobs[i].msg;
		}
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "ok", good);
		cJSON_AddNumberToObject(o, "failed", n - good);
		if (first != NULL)
			cJSON_AddStringToObject(o, "first_error", first);
		probe_print(o);
	} else {
		rc = usage();
	}
	db_sqlagent_close(probe_sa);
	config_free(cfg);
	return rc;
}
