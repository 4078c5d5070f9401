/*
 * db_kb.c -- the local knowledge base in PostgreSQL: the pool's search and
 * count for the request path (lib/db.h), and the sessions' add, list,
 * remove and search for `ingen kb` and the server's indexer (lib/db_kb.h).
 *
 * It owns the SQL of kb_sources and kb_chunks (sql/007_knowledge_base.sql)
 * and the cap on what a query may send.  It never reads a file, never cuts
 * text into chunks (lib/kb.c does), and on the pool side never puts a
 * query or a server message into an error message: the pool's failures go
 * through db_fail like every other call's.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/db_int.h"
#include "lib/db_kb.h"
#include "lib/db_session.h"
#include "lib/kb.h"

/* SQLSTATE undefined_object: regconfig's input of an unknown name */
#define DB_SQLSTATE_UNDEFINED_OBJECT "42704"

/* The search, the same for the pool and the sessions. */
#define DB_KB_SEARCH_SQL \
	"SELECT source, chunk, rank, snippet, content" \
	" FROM ingenious_kb_search($1::regconfig, $2, $3::integer)"

static const struct db_stmt_def db_stmt_kb_search = {
	DB_STMT_KB_SEARCH, "ing_kb_search", 3, DB_KB_SEARCH_SQL
};

static const struct db_stmt_def db_stmt_kb_count = {
	DB_STMT_KB_COUNT, "ing_kb_count", 0, "SELECT count(*) FROM kb_chunks"
};

/* ------------------------------------------------------------------ */
/* What a search sends                                                 */
/* ------------------------------------------------------------------ */

/*
 * The query as sent: at most DB_KB_QUERY_MAX bytes, cut before the word
 * that crosses the limit (or on a character boundary when the first 4 KiB
 * hold no white space), valid UTF-8 (else 400: PostgreSQL would refuse it with a
 * 500-class error).  *k is top_k capped to DB_KB_TOP_K_MAX.  Returns 1 to
 * search, 0 when there is nothing to search (top_k < 1), -1 with `e` set.
 */
static int
db_kb_prepare_query(const char *tsconfig, const char *query, int top_k,
    struct arena *a, const char **sent, int *k, struct err *e)
{
	size_t n = strlen(query), cut;

	if (tsconfig == NULL || tsconfig[0] == '\0')
		return err_set(e, 400, "no text-search configuration given "
		    "(kb.text_search_config)");
	if (top_k < 1)
		return 0;
	*k = top_k > DB_KB_TOP_K_MAX ? DB_KB_TOP_K_MAX : top_k;
	cut = kb_utf8_prefix(query, n, DB_KB_QUERY_MAX);
	/* a word cut in two would be a lexeme of its own that matches
	 * nothing: end at the white space before it, if there is one */
	if (cut < n && query[cut] != ' ' && query[cut] != '\t' &&
	    query[cut] != '\n') {
		size_t w = cut;

		while (w > 0 && query[w - 1] != ' ' && query[w - 1] != '\t' &&
		    query[w - 1] != '\n')
			w--;
		if (w > 0)
			cut = w;
	}
	if (!kb_utf8_valid(query, cut, NULL))
		return err_set(e, 400, "the query is not valid UTF-8");
	*sent = cut == n ? query : arena_strndup(a, query, cut);
	return 1;
}

static int
db_kb_unknown_config(const char *tsconfig, struct err *e)
{
	return err_set(e, 400, "unknown text-search configuration \"%.64s\" "
	    "(kb.text_search_config; see \\dF in psql)", tsconfig);
}

/* The rows of DB_KB_SEARCH_SQL as hits. */
static int
db_kb_hits(PGresult *res, struct arena *a, struct db_kb_hit **hits)
{
	int r, rows = PQntuples(res);
	struct db_kb_hit *h;

	*hits = NULL;
	if (rows == 0)
		return 0;
	h = arena_zalloc(a, (size_t)rows * sizeof(*h));
	for (r = 0; r < rows; r++) {
		h[r].source = db_val(res, r, 0, a);
		h[r].chunk = atoi(PQgetvalue(res, r, 1));
		h[r].rank = strtod(PQgetvalue(res, r, 2), NULL);
		h[r].snippet = db_val(res, r, 3, a);
		h[r].content = db_val(res, r, 4, a);
	}
	*hits = h;
	return rows;
}

/* ------------------------------------------------------------------ */
/* The pool: the request path                                          */
/* ------------------------------------------------------------------ */

struct db_kb_job {
	const char *v[3];
	struct arena *a;
	struct db_kb_hit **hits;
	int n;
	long count;
};

static enum db_status
db_kb_search_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_kb_job *j = arg;
	PGresult *res;
	bool unknown;

	res = db_exec_quiet(call, &db_stmt_kb_search, j->v,
	    DB_SQLSTATE_UNDEFINED_OBJECT, &unknown, e);
	if (res == NULL) {
		if (unknown)
			db_kb_unknown_config(j->v[0], e);
		return DB_ERROR;
	}
	j->n = db_kb_hits(res, j->a, j->hits);
	PQclear(res);
	return DB_OK;
}

int
db_kb_search(struct db_pool *p, const char *tsconfig, const char *query,
    int top_k, struct arena *a, struct db_kb_hit **hits, struct err *e)
{
	struct db_kb_job j;
	char k[DB_INT_TEXT];
	int topk = 0, rc;

	*hits = NULL;
	memset(&j, 0, sizeof(j));
	if ((rc = db_kb_prepare_query(tsconfig, query, top_k, a, &j.v[1], &topk,
	    e)) <= 0)
		return rc;
	snprintf(k, sizeof(k), "%d", topk);
	j.v[0] = tsconfig;
	j.v[2] = k;
	j.a = a;
	j.hits = hits;
	if (db_run(p, "while searching the knowledge base", db_kb_search_work,
	    &j, e) != DB_OK)
		return -1;
	return j.n;
}

static enum db_status
db_kb_count_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_kb_job *j = arg;
	PGresult *res = db_exec(call, &db_stmt_kb_count, NULL, e);

	if (res == NULL)
		return DB_ERROR;
	j->count = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return DB_OK;
}

int
db_kb_count(struct db_pool *p, long *chunks, struct err *e)
{
	struct db_kb_job j;

	memset(&j, 0, sizeof(j));
	*chunks = 0;
	if (db_run(p, "while counting the knowledge base", db_kb_count_work, &j,
	    e) != DB_OK)
		return -1;
	*chunks = j.count;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sessions: `ingen kb` and the server's indexer                       */
/* ------------------------------------------------------------------ */

/*
 * Run sql with values on the session.  On failure `e` gets "could not
 * <what>: <server message>" (503 when the database is gone, 400 for an
 * unknown configuration, else 500) and NULL is returned.
 */
static PGresult *
db_kb_sexec(struct db_session *s, const char *sql, int n,
    const char *const *values, const char *what, const char *tsconfig,
    struct err *e)
{
	PGresult *res = PQexecParams(s->pg, sql, n, NULL, values, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	const char *state;
	char line[DB_LINE_MAX];

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (tsconfig != NULL && state != NULL &&
	    strcmp(state, DB_SQLSTATE_UNDEFINED_OBJECT) == 0)
		db_kb_unknown_config(tsconfig, e);
	else
		err_set(e, db_failure_of(res, s->pg) == DB_FAILURE_UNAVAILABLE ?
		    503 : 500, "could not %s: %s", what,
		    db_first_line(PQresultErrorMessage(res), line, sizeof(line)));
	PQclear(res);
	return NULL;
}

static int
db_kb_scmd(struct db_session *s, const char *sql, const char *what,
    struct err *e)
{
	PGresult *res = db_kb_sexec(s, sql, 0, NULL, what, NULL, e);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* The chunks as a text[] literal: {"a","b\"c"}. */
static void
db_kb_array(struct buf *b, const char *const *v, size_t n)
{
	size_t i;
	const char *p;

	buf_putc(b, '{');
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		buf_putc(b, '"');
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(b, '\\');
			buf_putc(b, *p);
		}
		buf_putc(b, '"');
	}
	buf_putc(b, '}');
}

int
db_kb_put(struct db_session *s, const struct db_kb_file *f,
    enum db_kb_put *what, struct err *e)
{
	char bytes[32], chunks[DB_INT_TEXT];
	const char *v[5];
	const char *id_v[3];
	char *id = NULL;
	struct buf arr;
	PGresult *res = NULL;
	bool same = false, found = false;
	int attempt, rc = -1;

	snprintf(bytes, sizeof(bytes), "%lld", f->bytes);
	snprintf(chunks, sizeof(chunks), "%zu", f->n_chunks);
	buf_init(&arr);
	if (db_kb_scmd(s, "BEGIN", "start a transaction", e) < 0)
		goto out;

	/* the row, locked; a new source is inserted, and one that another
	 * writer inserted meanwhile is read again (READ COMMITTED sees it) */
	for (attempt = 0; attempt < 2 && !found; attempt++) {
		v[0] = f->source;
		v[1] = f->checksum;
		v[2] = f->tsconfig;
		res = db_kb_sexec(s, "SELECT id, checksum = $2 AND ts_config = $3::regconfig"
		    " FROM kb_sources WHERE source = $1 FOR UPDATE", 3, v,
		    "read kb_sources", f->tsconfig, e);
		if (res == NULL)
			goto fail;
		if (PQntuples(res) == 1) {
			id = strdup(PQgetvalue(res, 0, 0));
			same = PQgetvalue(res, 0, 1)[0] == 't';
			found = true;
			*what = same ? DB_KB_UNCHANGED : DB_KB_REPLACED;
			break;
		}
		PQclear(res);
		v[2] = bytes;
		v[3] = chunks;
		v[4] = f->tsconfig;
		res = db_kb_sexec(s, "INSERT INTO kb_sources"
		    " (source, checksum, bytes, chunks, ts_config)"
		    " VALUES ($1, $2, $3::bigint, $4::integer, $5::regconfig)"
		    " ON CONFLICT (source) DO NOTHING RETURNING id", 5, v,
		    "insert into kb_sources", f->tsconfig, e);
		if (res == NULL)
			goto fail;
		if (PQntuples(res) == 1) {
			id = strdup(PQgetvalue(res, 0, 0));
			found = true;
			*what = DB_KB_ADDED;
			break;
		}
		PQclear(res);
		res = NULL;
	}
	PQclear(res);
	res = NULL;
	if (!found) {
		err_set(e, 500, "could not insert into kb_sources: the row of "
		    "\"%.200s\" changed twice while adding it", f->source);
		goto fail;
	}
	if (same) {
		/* nothing to write; end the transaction (and the row lock) */
		if (db_kb_scmd(s, "ROLLBACK", "end the transaction", e) < 0)
			goto out;
		rc = 0;
		goto out;
	}
	if (*what == DB_KB_REPLACED) {
		id_v[0] = id;
		res = db_kb_sexec(s, "DELETE FROM kb_chunks WHERE source_id = $1::bigint",
		    1, id_v, "delete the old chunks", NULL, e);
		if (res == NULL)
			goto fail;
		PQclear(res);
		v[0] = id;
		v[1] = f->checksum;
		v[2] = bytes;
		v[3] = chunks;
		v[4] = f->tsconfig;
		res = db_kb_sexec(s, "UPDATE kb_sources SET checksum = $2,"
		    " bytes = $3::bigint, chunks = $4::integer,"
		    " ts_config = $5::regconfig, updated_at = now()"
		    " WHERE id = $1::bigint", 5, v, "update kb_sources",
		    f->tsconfig, e);
		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	if (f->n_chunks > 0) {
		db_kb_array(&arr, f->chunks, f->n_chunks);
		id_v[0] = id;
		id_v[1] = buf_cstr(&arr);
		id_v[2] = f->tsconfig;
		res = db_kb_sexec(s, "INSERT INTO kb_chunks"
		    " (source_id, position, content, ts_config)"
		    " SELECT $1::bigint, t.o - 1, t.c, $3::regconfig"
		    " FROM unnest($2::text[]) WITH ORDINALITY AS t(c, o)", 3, id_v,
		    "insert into kb_chunks", f->tsconfig, e);
		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	res = NULL;
	if (db_kb_scmd(s, "COMMIT", "commit", e) < 0)
		goto out;
	rc = 0;
	goto out;
fail:
	if (PQstatus(s->pg) == CONNECTION_OK)
		PQclear(PQexec(s->pg, "ROLLBACK"));
out:
	free(id);
	buf_free(&arr);
	return rc;
}

int
db_kb_sources(struct db_session *s, struct arena *a,
    struct db_kb_source **out, size_t *n, struct err *e)
{
	PGresult *res;
	int r, rows;

	*out = NULL;
	*n = 0;
	res = db_kb_sexec(s, "SELECT source, chunks, bytes, ts_config::text,"
	    " to_char(added_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
	    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
	    " FROM kb_sources ORDER BY source", 0, NULL, "read kb_sources", NULL,
	    e);
	if (res == NULL)
		return -1;
	rows = PQntuples(res);
	*out = arena_zalloc(a, (size_t)(rows > 0 ? rows : 1) * sizeof(**out));
	for (r = 0; r < rows; r++) {
		(*out)[r].source = db_val(res, r, 0, a);
		(*out)[r].chunks = atoi(PQgetvalue(res, r, 1));
		(*out)[r].bytes = strtoll(PQgetvalue(res, r, 2), NULL, 10);
		(*out)[r].tsconfig = db_val(res, r, 3, a);
		(*out)[r].added_at = db_val(res, r, 4, a);
		(*out)[r].updated_at = db_val(res, r, 5, a);
	}
	*n = (size_t)rows;
	PQclear(res);
	return 0;
}

enum db_status
db_kb_remove(struct db_session *s, const char *source, int *chunks,
    struct err *e)
{
	const char *v[1] = { source };
	PGresult *res;
	enum db_status st = DB_NOT_FOUND;

	*chunks = 0;
	res = db_kb_sexec(s, "DELETE FROM kb_sources WHERE source = $1"
	    " RETURNING chunks", 1, v, "delete from kb_sources", NULL, e);
	if (res == NULL)
		return DB_ERROR;
	if (PQntuples(res) == 1) {
		*chunks = atoi(PQgetvalue(res, 0, 0));
		st = DB_OK;
	}
	PQclear(res);
	return st;
}

int
db_kb_session_search(struct db_session *s, const char *tsconfig,
    const char *query, int top_k, struct arena *a, struct db_kb_hit **hits,
    struct err *e)
{
	const char *v[3];
	char k[DB_INT_TEXT];
	PGresult *res;
	int topk = 0, rc;

	*hits = NULL;
	if ((rc = db_kb_prepare_query(tsconfig, query, top_k, a, &v[1], &topk,
	    e)) <= 0)
		return rc;
	snprintf(k, sizeof(k), "%d", topk);
	v[0] = tsconfig;
	v[2] = k;
	res = db_kb_sexec(s, DB_KB_SEARCH_SQL, 3, v, "search the knowledge base",
	    tsconfig, e);
	if (res == NULL)
		return -1;
	rc = db_kb_hits(res, a, hits);
	PQclear(res);
	return rc;
}
