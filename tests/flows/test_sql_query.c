/*
 * test_sql_query.c -- ing_sql_query and ing_sql_schema (flows/sqlquery.c)
 * against a scripted SQL service: the reference's tool texts written as
 * Python prints them (None, numbers bare, both quote styles, escapes, the
 * first 10 of several rows, a cut result), failures as "SQL Error: ...",
 * and no SQL service at all.
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/err.h"
#include "tests/unit/tap.h"

static int n_rows = 1;
static bool cut;

static int
s_query(void *arg, const char *sql, struct arena *a, struct ctx_sql_rows *out,
    struct err *e)
{
	static const char *names[] = { "name", "score", "note" };
	static bool numeric[] = { false, true, false };
	int i;

	(void)arg;
	if (strstr(sql, "DROP") != NULL)
		return err_set(e, 400, "refused: the statement drops a table (DropStmt); "
		    "only a single SELECT is allowed");
	if (strstr(sql, "bad") != NULL)
		return err_set(e, 400, "SQL Error: column \"bad\" does not exist");
	out->n_cols = 3;
	out->col_names = names;
	out->col_numeric = numeric;
	out->n_rows = n_rows;
	out->rows = arena_zalloc(a, (size_t)(n_rows ? n_rows : 1) * sizeof(*out->rows));
	for (i = 0; i < n_rows; i++) {
		out->rows[i] = arena_zalloc(a, 3 * sizeof(**out->rows));
		out->rows[i][0] = i == 0 ? "master's degree" : arena_sprintf(a, "r%d", i);
		out->rows[i][1] = i == 0 ? "65.14" : "1";
		out->rows[i][2] = i == 0 ? NULL : i == 1 ? "it's \"quoted\"\n\\" : "tab\there";
	}
	out->bytes_truncated = cut;
	return 0;
}

static int
s_describe(void *arg, struct arena *a, const char **text, const char **table,
    const char **columns, struct err *e)
{
	(void)arg;
	(void)e;
	*text = arena_strdup(a, "t(name text, score numeric, note text)");
	*table = "t";
	*columns = "name, score, note";
	return 0;
}

static const struct ctx_sql_service sql = { .query = s_query, .describe = s_describe };
static const struct ctx_services with_sql = { .sql = &sql };
static const struct ctx_services without_sql = { .sql = NULL };

int
main(void)
{
	struct arena *a = arena_create(0);
	struct config cfg;
	struct ing_ctx ctx;
	struct ing_sql_result r;
	const struct ctx_turn who = { .request_id = "r", .flow = "f" };
	const char *text, *table, *cols;
	int status;

	memset(&cfg, 0, sizeof(cfg));
	ctx_init(&ctx, a, &cfg, &with_sql, &who);
	is_int(ing_sql_query(&ctx, "SELECT 1", &r), 0, "a statement runs");
	is_str(r.text, "{'name': \"master's degree\", 'score': 65.14, 'note': None}",
	    "one row: a dict, a quote inside -> double quotes, a number bare, NULL None");
	is_int((long)r.n_rows, 1, "... one row copied");
	ok(r.rows[0][2] == NULL && strcmp(r.columns[1], "score") == 0 && r.numeric[1],
	    "... with its columns, NULL and the numeric flag");
	n_rows = 3;
	(void)ing_sql_query(&ctx, "SELECT 1", &r);
	is_str(r.text, "[{'name': \"master's degree\", 'score': 65.14, 'note': None}, "
	    "{'name': 'r1', 'score': 1, 'note': 'it\\'s \"quoted\"\\n\\\\'}, "
	    "{'name': 'r2', 'score': 1, 'note': 'tab\\there'}]",
	    "several rows: a list; both quotes, a newline, a backslash, a tab as repr()");
	n_rows = 12;
	(void)ing_sql_query(&ctx, "SELECT 1", &r);
	ok(strstr(r.text, "'r9'") != NULL && strstr(r.text, "'r10'") == NULL,
	    "twelve rows: the first 10 in the text");
	is_int((long)r.n_rows, 12, "... all 12 in the result");
	n_rows = 0;
	(void)ing_sql_query(&ctx, "SELECT 1", &r);
	is_str(r.text, "No results found.", "no row: the reference's text");
	n_rows = 1;
	cut = true;
	(void)ing_sql_query(&ctx, "SELECT 1", &r);
	ok(strstr(r.text, "(the result was cut at sql_agent.max_bytes)") != NULL,
	    "a cut result says so");
	cut = false;
	is_int(ing_sql_query(&ctx, "DROP TABLE t", &r), -1, "a refusal fails the call");
	is_str(r.text, "SQL Error: refused: the statement drops a table (DropStmt); "
	    "only a single SELECT is allowed", "... with the guard's reason as SQL Error");
	(void)ing_last_error(&ctx, &status);
	is_int(status, 400, "... 400 for the turn if the flow gives up");
	(void)ing_sql_query(&ctx, "SELECT bad", &r);
	is_str(r.text, "SQL Error: column \"bad\" does not exist",
	    "an SQL error keeps its prefix once");
	is_int(ing_sql_query(&ctx, "", &r), -1, "an empty query fails");
	is_int(ing_sql_schema(&ctx, &text, &table, &cols), 0, "the schema is described");
	ok(strcmp(table, "t") == 0 && strcmp(cols, "name, score, note") == 0 &&
	    strstr(text, "score numeric") != NULL, "... table, columns, text");

	ctx_init(&ctx, a, &cfg, &without_sql, &who);
	is_int(ing_sql_query(&ctx, "SELECT 1", &r), -1, "no SQL service: fails");
	(void)ing_last_error(&ctx, &status);
	is_int(status, 503, "... with 503");
	is_int(ing_sql_schema(&ctx, &text, &table, &cols), -1, "... and so does describe");
	arena_destroy(a);
	return tap_done();
}
