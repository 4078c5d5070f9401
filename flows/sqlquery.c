/*
 * sqlquery.c -- ing_sql_query and ing_sql_schema: the flow API's side of
 * the SQL agent's database (docs/sql-agent.md) on top of the context's SQL
 * service (flows/ctx.h; the guard and the least-privilege execution live
 * behind it, in worker/services_sql.c), and the text the reference's
 * execute_sql_tool gives the model for a result:
 *   no row          "No results found."
 *   one row         str(dict): {'column': value, ...}
 *   several rows    str(list) of the first 10 rows: [{...}, {...}]
 *   a failure       "SQL Error: <why>"
 * written the way Python prints them (strings quoted as repr() does,
 * numbers bare, NULL as None), so a model prompted for the original reads
 * the same thing.  A statement runs in a scratch arena; the result is
 * copied into the turn's memory under the context's lock.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"

#define SQLQ_ROW_PREVIEW 10     /* the reference's ROW_PREVIEW_LIMIT */
#define SQLQ_NO_RESULTS "No results found."
#define SQLQ_ERROR "SQL Error: "

/* s as Python's repr() of a str: single quotes unless s has a single quote
 * and no double quote; backslash, the quote, \n \r \t escaped, other
 * control characters as \xNN; everything else (UTF-8 included) as it is. */
static void
sqlq_repr(struct buf *b, const char *s)
{
	char q = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';
	const unsigned char *p;

	buf_putc(b, q);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\\' || *p == (unsigned char)q) {
			buf_putc(b, '\\');
			buf_putc(b, (char)*p);
		} else if (*p == '\n') {
			buf_puts(b, "\\n");
		} else if (*p == '\r') {
			buf_puts(b, "\\r");
		} else if (*p == '\t') {
			buf_puts(b, "\\t");
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_printf(b, "\\x%02x", *p);
		} else {
			buf_putc(b, (char)*p);
		}
	}
	buf_putc(b, q);
}

static void
sqlq_row(struct buf *b, const struct ctx_sql_rows *r, int row)
{
	const char *v;
	int c;

	buf_putc(b, '{');
	for (c = 0; c < r->n_cols; c++) {
		if (c > 0)
			buf_puts(b, ", ");
		sqlq_repr(b, r->col_names[c] != NULL ? r->col_names[c] : "?column?");
		buf_puts(b, ": ");
		v = r->rows[row][c];
		if (v == NULL)
			buf_puts(b, "None");
		else if (r->col_numeric != NULL && r->col_numeric[c])
			buf_puts(b, v);
		else
			sqlq_repr(b, v);
	}
	buf_putc(b, '}');
}

/* The reference's text for a result. */
static void
sqlq_text(struct buf *b, const struct ctx_sql_rows *r)
{
	int i, n;

	if (r->n_rows == 0) {
		buf_puts(b, SQLQ_NO_RESULTS);
		return;
	}
	if (r->n_rows == 1) {
		sqlq_row(b, r, 0);
	} else {
		n = r->n_rows < SQLQ_ROW_PREVIEW ? r->n_rows : SQLQ_ROW_PREVIEW;
		buf_putc(b, '[');
		for (i = 0; i < n; i++) {
			if (i > 0)
				buf_puts(b, ", ");
			sqlq_row(b, r, i);
		}
		buf_putc(b, ']');
	}
	/* ours: a cut result says so, so the model does not take it for all */
	if (r->bytes_truncated)
		buf_puts(b, " (the result was cut at sql_agent.max_bytes)");
}

/* Copy the rows into the turn's memory. */
static void
sqlq_publish(struct ing_ctx *ctx, const struct ctx_sql_rows *r,
    struct ing_sql_result *out)
{
	const char **cols;
	const char ***rows;
	int *numeric;
	int i, c;

	out->n_cols = (size_t)r->n_cols;
	out->n_rows = (size_t)r->n_rows;
	out->rows_truncated = r->rows_truncated;
	out->bytes_truncated = r->bytes_truncated;
	if (r->n_cols <= 0)
		return;
	cols = ing_alloc(ctx, (size_t)r->n_cols * sizeof(*cols));
	numeric = ing_alloc(ctx, (size_t)r->n_cols * sizeof(*numeric));
	for (c = 0; c < r->n_cols; c++) {
		cols[c] = ing_strdup(ctx, r->col_names[c] != NULL ? r->col_names[c] : "");
		numeric[c] = r->col_numeric != NULL && r->col_numeric[c];
	}
	out->columns = cols;
	out->numeric = numeric;
	if (r->n_rows <= 0)
		return;
	rows = ing_alloc(ctx, (size_t)r->n_rows * sizeof(*rows));
	for (i = 0; i < r->n_rows; i++) {
		rows[i] = ing_alloc(ctx, (size_t)r->n_cols * sizeof(**rows));
		for (c = 0; c < r->n_cols; c++)
			rows[i][c] = r->rows[i][c] != NULL ?
			    ing_strdup(ctx, r->rows[i][c]) : NULL;
	}
	out->rows = (const char *const *const *)rows;
}

int
ing_sql_query(struct ing_ctx *ctx, const char *sql, struct ing_sql_result *out)
{
	const struct ctx_sql_service *svc = ctx->svc->sql;
	struct ctx_sql_rows rows;
	struct arena *scratch;
	struct buf b = BUF_INIT;
	struct err e;
	int rc;

	memset(out, 0, sizeof(*out));
	if (svc == NULL) {
		out->text = SQLQ_ERROR "this server has no SQL database service";
		return ing_error(ctx, 503, "%s", out->text);
	}
	if (sql == NULL || sql[0] == '\0') {
		out->text = SQLQ_ERROR "the query is empty";
		return ing_error(ctx, 400, "%s", out->text);
	}
	scratch = arena_create(0);
	memset(&rows, 0, sizeof(rows));
	err_clear(&e);
	rc = svc->query(ctx->svc->arg, sql, scratch, &rows, &e);
	if (rc != 0) {
		/* the service's messages for an SQL error already carry the prefix */
		if (strncmp(e.msg, SQLQ_ERROR, strlen(SQLQ_ERROR)) == 0)
			out->text = ing_strdup(ctx, e.msg);
		else
			out->text = ing_sprintf(ctx, SQLQ_ERROR "%s", e.msg);
		arena_destroy(scratch);
		ing_log(ctx, ING_LOG_WARNING, "statement refused or failed (%d): %s",
		    e.status, out->text);
		return ing_error(ctx, e.status != 0 ? e.status : 500, "%s", out->text);
	}
	sqlq_text(&b, &rows);
	sqlq_publish(ctx, &rows, out);
	out->text = ing_strdup(ctx, buf_cstr(&b));
	buf_free(&b);
	arena_destroy(scratch);
	return 0;
}

int
ing_sql_schema(struct ing_ctx *ctx, const char **text, const char **table,
    const char **columns)
{
	const struct ctx_sql_service *svc = ctx->svc->sql;
	const char *t = NULL, *tb = NULL, *cols = NULL;
	struct arena *scratch;
	struct err e;

	*text = *table = *columns = NULL;
	if (svc == NULL)
		return ing_error(ctx, 503, "this server has no SQL database service");
	scratch = arena_create(0);
	err_clear(&e);
	if (svc->describe(ctx->svc->arg, scratch, &t, &tb, &cols, &e) != 0) {
		arena_destroy(scratch);
		return ing_error(ctx, e.status != 0 ? e.status : 500,
		    "could not describe the SQL agent's schema: %s", e.msg);
	}
	*text = ing_strdup(ctx, t != NULL ? t : "");
	*table = tb != NULL ? ing_strdup(ctx, tb) : NULL;
	*columns = ing_strdup(ctx, cols != NULL ? cols : "");
	arena_destroy(scratch);
	return 0;
}
