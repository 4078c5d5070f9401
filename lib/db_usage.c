/*
 * db_usage.c -- usage summed for charts (sql/009_usage_rollup.sql): moving
 * the rollup forward, and the summaries by day, user, flow, model and agent
 * read from usage_live (the rollup plus the rows after it).  Pool calls;
 * the turn's own statements are not touched.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/db_int.h"

static const struct db_stmt_def db_stmt_usage_mark = {
	DB_STMT_USAGE_MARK, "ing_usage_mark", 0, "SELECT usage_rollup_mark()"
};

static const struct db_stmt_def db_stmt_usage_apply = {
	DB_STMT_USAGE_APPLY, "ing_usage_apply", 0, "SELECT usage_rollup_apply()"
};

/* $1: days back (0 = today only), $2: one user or NULL */
#define DB_USAGE_SQL(key, order) \
	"SELECT " key ", sum(calls), sum(errors), sum(prompt_tokens)," \
	" sum(completion_tokens), sum(total_tokens)," \
	" (sum(latency_ms_sum) / nullif(sum(calls), 0))::bigint, max(latency_ms_max)" \
	" FROM usage_live" \
	" WHERE day >= (now() AT TIME ZONE 'UTC')::date - $1::int" \
	" AND ($2::text IS NULL OR user_id = $2)" \
	" GROUP BY 1 ORDER BY " order " LIMIT 1000"

static const struct db_stmt_def db_stmt_usage_by[DB_USAGE_BY_N] = {
	{ DB_STMT_USAGE_BY_DAY, "ing_usage_by_day", 2,
	  DB_USAGE_SQL("to_char(day, 'YYYY-MM-DD')", "1 DESC") },
	{ DB_STMT_USAGE_BY_USER, "ing_usage_by_user", 2,
	  DB_USAGE_SQL("user_id", "6 DESC, 1") },
	{ DB_STMT_USAGE_BY_FLOW, "ing_usage_by_flow", 2,
	  DB_USAGE_SQL("flow", "6 DESC, 1") },
	{ DB_STMT_USAGE_BY_MODEL, "ing_usage_by_model", 2,
	  DB_USAGE_SQL("model", "6 DESC, 1") },
	{ DB_STMT_USAGE_BY_AGENT, "ing_usage_by_agent", 2,
	  DB_USAGE_SQL("agent_name", "6 DESC, 1") },
};

static const char *const db_usage_names[DB_USAGE_BY_N] = {
	"day", "user", "flow", "model", "agent"
};

const char *
db_usage_by_name(enum db_usage_by by)
{
	return (int)by >= 0 && by < DB_USAGE_BY_N ? db_usage_names[by] : NULL;
}

int
db_usage_by_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < DB_USAGE_BY_N; i++)
		if (strcmp(s, db_usage_names[i]) == 0)
			return i;
	return -1;
}

struct db_usage_job {
	const struct db_stmt_def *st;
	const char *v[2];
	struct arena *a;
	struct db_usage_row *rows;
	int n;
	long written;
};

static enum db_status
db_usage_one(struct db_call *call, void *arg, struct err *e)
{
	struct db_usage_job *j = arg;
	PGresult *res = db_exec(call, j->st, NULL, e);

	if (res == NULL)
		return DB_ERROR;
	j->written = PQntuples(res) > 0 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return DB_OK;
}

long
db_usage_rollup(struct db_pool *p, struct err *e)
{
	struct db_usage_job j;

	/* two db_run calls: the mark commits (its lock ends) before the apply */
	memset(&j, 0, sizeof(j));
	j.st = &db_stmt_usage_mark;
	if (db_run(p, "while rolling up usage", db_usage_one, &j, e) != DB_OK)
		return -1;
	j.st = &db_stmt_usage_apply;
	if (db_run(p, "while rolling up usage", db_usage_one, &j, e) != DB_OK)
		return -1;
	return j.written;
}

static long long
db_usage_ll(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? 0 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static enum db_status
db_usage_summary_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_usage_job *j = arg;
	PGresult *res = db_exec(call, j->st, j->v, e);
	int r, n;

	if (res == NULL)
		return DB_ERROR;
	n = PQntuples(res);
	j->rows = n > 0 ? arena_zalloc(j->a, sizeof(*j->rows) * (size_t)n) : NULL;
	for (r = 0; r < n; r++) {
		struct db_usage_row *u = &j->rows[r];
		const char *k = db_val(res, r, 0, j->a);

		u->key = k != NULL ? k : "";
		u->calls = db_usage_ll(res, r, 1);
		u->errors = db_usage_ll(res, r, 2);
		u->prompt_tokens = db_usage_ll(res, r, 3);
		u->completion_tokens = db_usage_ll(res, r, 4);
		u->total_tokens = db_usage_ll(res, r, 5);
		u->latency_ms_mean = db_usage_ll(res, r, 6);
		u->latency_ms_max = db_usage_ll(res, r, 7);
	}
	j->n = n;
	PQclear(res);
	return DB_OK;
}

int
db_usage_summary(struct db_pool *p, enum db_usage_by by, int days,
    const char *user, struct arena *a, struct db_usage_row **rows,
    struct err *e)
{
	struct db_usage_job j;
	char d[DB_INT_TEXT];

	*rows = NULL;
	if ((int)by < 0 || by >= DB_USAGE_BY_N)
		return err_set(e, 400, "unknown grouping");
	memset(&j, 0, sizeof(j));
	snprintf(d, sizeof(d), "%d", days > 0 ? days - 1 : 0);
	j.st = &db_stmt_usage_by[by];
	j.v[0] = d;
	j.v[1] = user;
	j.a = a;
	if (db_run(p, "while reading usage", db_usage_summary_work, &j, e) != DB_OK)
		return -1;
	*rows = j.rows;
	return j.n;
}

/* $1: the versions' hashes (a text[] literal), $2 revision, $3 file, $4 one
 * user or NULL.  The sums come from prompt_usage_live (the rollup by
 * primary key, the rows after it by llm_usage_prompt_hash_idx); the recent
 * threads are those of the version's last DB_PROMPT_USAGE_SCAN calls, read
 * newest first from the same index (bounded whatever the user filter). */
#define DB_PROMPT_USAGE_SCAN "200"
#define DB_PROMPT_USE_WHERE(t) \
	" " t ".prompt_revision = $2 AND " t ".prompt_file = $3" \
	" AND ($4::text IS NULL OR " t ".user_id = $4)"

static const struct db_stmt_def db_stmt_prompt_usage = {
	DB_STMT_PROMPT_USAGE, "ing_prompt_usage", 4,
	"SELECT h.hash, s.calls, s.errors, s.tokens,"
	" to_char(s.first_used AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT "),"
	" to_char(s.last_used AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT "),"
	" coalesce((SELECT json_agg(r.thread_id ORDER BY r.last DESC)::text FROM"
	"   (SELECT v.thread_id, max(v.id) AS last FROM"
	"     (SELECT thread_id, id, prompt_revision, prompt_file, user_id FROM llm_usage"
	"       WHERE prompt_hash = h.hash ORDER BY id DESC LIMIT " DB_PROMPT_USAGE_SCAN ") v"
	"     WHERE v.thread_id IS NOT NULL AND" DB_PROMPT_USE_WHERE("v")
	"     GROUP BY v.thread_id ORDER BY 2 DESC LIMIT 5) r), '[]')"
	" FROM unnest($1::text[]) AS h(hash)"
	" CROSS JOIN LATERAL (SELECT sum(p.calls) AS calls, sum(p.errors) AS errors,"
	"   sum(p.total_tokens) AS tokens, min(p.first_used) AS first_used,"
	"   max(p.last_used) AS last_used FROM prompt_usage_live p"
	"   WHERE p.prompt_hash = h.hash AND" DB_PROMPT_USE_WHERE("p") ") s"
	" WHERE s.calls IS NOT NULL"
};

struct db_prompt_usage_job {
	const char *v[4];
	struct arena *a;
	struct db_prompt_use *rows;
	int n;
};

static enum db_status
db_prompt_usage_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_prompt_usage_job *j = arg;
	PGresult *res = db_exec(call, &db_stmt_prompt_usage, j->v, e);
	int r;

	if (res == NULL)
		return DB_ERROR;
	j->n = PQntuples(res);
	j->rows = j->n > 0 ? arena_zalloc(j->a, sizeof(*j->rows) * (size_t)j->n) : NULL;
	for (r = 0; r < j->n; r++) {
		struct db_prompt_use *u = &j->rows[r];

		u->hash = db_val(res, r, 0, j->a);
		u->calls = db_usage_ll(res, r, 1);
		u->errors = db_usage_ll(res, r, 2);
		u->total_tokens = db_usage_ll(res, r, 3);
		u->first_used = db_val(res, r, 4, j->a);
		u->last_used = db_val(res, r, 5, j->a);
		u->threads_json = db_val(res, r, 6, j->a);
	}
	PQclear(res);
	return DB_OK;
}

int
db_prompt_usage(struct db_pool *p, const char *revision, const char *file,
    const char *const *hashes, size_t n, const char *user, struct arena *a,
    struct db_prompt_use **out, struct err *e)
{
	struct db_prompt_usage_job j;
	char *lit, *w;
	size_t i, k;

	*out = NULL;
	if (n == 0)
		return 0;
	if (n > DB_PROMPT_USAGE_HASHES)
		n = DB_PROMPT_USAGE_HASHES;
	/* "{h1,h2,...}": hex digits need no quoting */
	lit = w = arena_alloc(a, n * 65 + 3);
	*w++ = '{';
	for (i = 0; i < n; i++) {
		for (k = 0; hashes[i][k] != '\0'; k++)
			if (k >= 64 || !((hashes[i][k] >= '0' && hashes[i][k] <= '9') ||
			    (hashes[i][k] >= 'a' && hashes[i][k] <= 'f')))
				return err_set(e, 400, "a prompt version hash is 64 "
				    "lower-case hex digits");
		if (k != 64)
			return err_set(e, 400, "a prompt version hash is 64 lower-case "
			    "hex digits");
		if (i > 0)
			*w++ = ',';
		memcpy(w, hashes[i], 64);
		w += 64;
	}
	*w++ = '}';
	*w = '\0';
	memset(&j, 0, sizeof(j));
	j.v[0] = lit;
	j.v[1] = revision;
	j.v[2] = file;
	j.v[3] = user;
	j.a = a;
	if (db_run(p, "while reading a prompt's usage", db_prompt_usage_work, &j,
	    e) != DB_OK)
		return -1;
	*out = j.rows;
	return j.n;
}
