/*
 * db_chat.c -- the statements of the request path: a chat turn's save, the
 * llm_usage rows, idempotency keys, reading a thread, feedback.
 *
 * It owns the SQL of those calls and the shape of their results; it runs
 * every statement through db_run and db_exec (lib/db_pool.c), so the pool
 * decides what a failure means.  It never opens a connection itself, never
 * logs a prompt, a reply or any other message content, and never commits
 * half a turn: a turn is one statement (sql/004_save_turn.sql).
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/db_int.h"
#include "lib/log.h"
#include "lib/uuid.h"

/* Connection waits a usage row may spend before it is given up (and logged). */
#define DB_USAGE_ATTEMPTS 3

/* The columns of ingenious_save_turn()'s result row. */
#define DB_SAVE_TURN_COLUMNS 8

/* A bigint in decimal: an optional sign and 19 digits. */
#define DB_INT64_DIGITS 20

/* ------------------------------------------------------------------ */
/* Statements                                                          */
/* ------------------------------------------------------------------ */

static const struct db_stmt_def db_stmt_idem_get = {
	DB_STMT_IDEM_GET, "ing_idem_get", 2,
	"SELECT status, response, request_hash, thread_id, message_id"
	" FROM idempotency_keys WHERE owner = $1 AND key = $2"
};

/* A claim: status 102 (DB_IDEMPOTENCY_PENDING), the token as body. */
static const struct db_stmt_def db_stmt_idem_claim = {
	DB_STMT_IDEM_CLAIM, "ing_idem_claim", 3,
	"INSERT INTO idempotency_keys (owner, key, status, response)"
	" VALUES ($1, $2, 102, $3)"
	" ON CONFLICT (owner, key) DO NOTHING"
};

static const struct db_stmt_def db_stmt_idem_release = {
	DB_STMT_IDEM_RELEASE, "ing_idem_release", 3,
	"DELETE FROM idempotency_keys"
	" WHERE owner = $1 AND key = $2 AND status = 102 AND response = $3"
};

static const struct db_stmt_def db_stmt_idem_expire = {
	DB_STMT_IDEM_EXPIRE, "ing_idem_expire", 3,
	"DELETE FROM idempotency_keys"
	" WHERE owner = $1 AND key = $2 AND status = 102"
	" AND created_at < now() - $3::integer * interval '1 millisecond'"
};

/*
 * The parameters of ingenious_save_turn() (sql/004_save_turn.sql), named,
 * in the order of its signature: the statement reads this struct as its
 * array of values (union db_save_turn_values).  Every field is text, NULL
 * for SQL NULL; the arrays are array literals (db_array_literal), one
 * element per message of the turn, in thread order.
 */
struct db_save_turn_params {
	const char *thread_id;              /* $1  text */
	const char *owner;                  /* $2  text */
	const char *enforce_owner;          /* $3  boolean */
	const char *flow;                   /* $4  text */
	const char *user_id;                /* $5  text, of every message */
	const char *message_ids;            /* $6  uuid[] */
	const char *roles;                  /* $7  text[] */
	const char *agent_names;            /* $8  text[] */
	const char *contents;               /* $9  text[] */
	const char *tool_calls;             /* $10 jsonb[] */
	const char *tool_call_ids;          /* $11 text[] */
	const char *tool_call_functions;    /* $12 jsonb[] */
	const char *content_filter_results; /* $13 jsonb[] */
	const char *reply_id;               /* $14 uuid: the assistant message */
	const char *memory_summary;         /* $15 text */
	const char *usage_ids;              /* $16 bigint[]: llm_usage rows to link */
	const char *idempotency_key;        /* $17 text */
	const char *request_hash;           /* $18 text */
	const char *reply_status;           /* $19 smallint */
	const char *reply_body;             /* $20 text */
	const char *claim;                  /* $21 text: the claim's token */
	const char *usage;                  /* $22 jsonb: db_turn.usage_json */
};

#define DB_SAVE_TURN_NPARAMS \
	((int)(sizeof(struct db_save_turn_params) / sizeof(const char *)))

/* The named parameters and the positional array libpq takes, one storage. */
union db_save_turn_values {
	struct db_save_turn_params named;
	const char *positional[DB_SAVE_TURN_NPARAMS];
};

_Static_assert(sizeof(struct db_save_turn_params) ==
    DB_SAVE_TURN_NPARAMS * sizeof(const char *),
    "struct db_save_turn_params must be an array of pointers without padding");

/* The whole turn with its usage rows, one statement in its own implicit
 * transaction (sql/006_one_commit_turn.sql): its result arrives after the
 * commit. */
static const struct db_stmt_def db_stmt_save_turn = {
	DB_STMT_SAVE_TURN, "ing_commit_turn", DB_SAVE_TURN_NPARAMS,
	"SELECT outcome, first_seq, new_thread, replay_status, replay_response,"
	" replay_request_hash, replay_thread_id, replay_message_id"
	" FROM ingenious_commit_turn($1, $2, $3::boolean, $4, $5, $6::uuid[],"
	" $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::text[],"
	" $12::jsonb[], $13::jsonb[], $14::uuid, $15, $16::bigint[], $17, $18,"
	" $19::smallint, $20, $21, $22::jsonb)"
};

/* Usage rows of a turn that did not commit, or of a dead worker's journal:
 * written unlinked, each row skipped if it is there already. */
static const struct db_stmt_def db_stmt_usage_record = {
	DB_STMT_USAGE_RECORD, "ing_usage_record", 1,
	"SELECT ingenious_record_usage($1::jsonb)"
};

static const struct db_stmt_def db_stmt_usage_insert = {
	DB_STMT_USAGE_INSERT, "ing_usage_insert", 17,
	"INSERT INTO llm_usage (request_id, user_id, thread_id, flow,"
	" agent_name, model, deployment, prompt_tokens, completion_tokens,"
	" total_tokens, latency_ms, http_status, retries, prompt_revision,"
	" prompt_file, prompt_hash, transcript)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer, $9::integer,"
	" $10::integer, $11::integer, $12::smallint, $13::smallint, $14, $15,"
	" $16, $17::jsonb)"
	" RETURNING id"
};

/* One statement, one snapshot: the owner, the newest memory summary and
 * the last $2 messages (a thread without messages gives one row of NULL
 * message columns; an unknown thread gives none). */
static const struct db_stmt_def db_stmt_thread_messages = {
	DB_STMT_THREAD_MESSAGES, "ing_thread_messages", 2,
	"SELECT t.owner,"
	" (SELECT s.content FROM memory_summaries s"
	"   LEFT JOIN messages sm ON sm.id = s.message_id"
	"  WHERE s.thread_id = t.id"
	"  ORDER BY s.created_at DESC, sm.seq DESC NULLS LAST LIMIT 1),"
	" m.id, m.seq, m.user_id, m.role, m.agent_name, m.content,"
	" m.tool_calls, m.tool_call_id, m.tool_call_function,"
	" m.content_filter_results, m.positive_feedback,"
	" to_char(m.created_at AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT ")"
	" FROM threads t"
	" LEFT JOIN LATERAL (SELECT * FROM messages WHERE thread_id = t.id"
	"   ORDER BY seq DESC LIMIT $2::integer) m ON true"
	" WHERE t.id = $1 ORDER BY m.seq"
};

/* The console's list of threads (db_thread_list): of one owner through
 * threads_owner_updated_idx, of every owner through threads_updated_idx
 * (sql/011_turn_cost.sql). */
#define DB_THREAD_LIST_SQL(where) \
	"SELECT t.id, t.owner, t.flow, t.last_seq," \
	" to_char(t.created_at AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT ")," \
	" to_char(t.updated_at AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT ")," \
	" coalesce((SELECT left(m.content, 120) FROM messages m" \
	"   WHERE m.thread_id = t.id AND m.seq = 1), '')" \
	" FROM threads t " where \
	" ORDER BY t.updated_at DESC, t.id LIMIT $1::integer"

static const struct db_stmt_def db_stmt_thread_list = {
	DB_STMT_THREAD_LIST, "ing_thread_list", 2,
	DB_THREAD_LIST_SQL("WHERE t.owner = $2")
};

static const struct db_stmt_def db_stmt_thread_list_all = {
	DB_STMT_THREAD_LIST_ALL, "ing_thread_list_all", 1,
	DB_THREAD_LIST_SQL("")
};

static const struct db_stmt_def db_stmt_feedback_find = {
	DB_STMT_FEEDBACK_FIND, "ing_feedback_find", 2,
	"SELECT coalesce(m.user_id, ''), t.owner FROM messages m"
	" JOIN threads t ON t.id = m.thread_id"
	" WHERE m.id = $1::uuid AND m.thread_id = $2"
};

static const struct db_stmt_def db_stmt_feedback_set = {
	DB_STMT_FEEDBACK_SET, "ing_feedback_set", 3,
	"UPDATE messages SET positive_feedback = $3::boolean"
	" WHERE id = $1::uuid AND thread_id = $2"
};

void
db_new_uuid(char out[DB_UUID_LEN])
{
	uuid_v4(out);
}

/* ------------------------------------------------------------------ */
/* Turns                                                               */
/* ------------------------------------------------------------------ */

/*
 * A turn is ONE statement, the call of ingenious_save_turn()
 * (sql/004_save_turn.sql), sent outside any explicit transaction: the
 * statement's implicit transaction is the turn's, so every row of it
 * commits together or none does, and PQexecPrepared returns only after the
 * server has committed it (the ReadyForQuery that follows the commit), so
 * the 2xx still goes out after COMMIT.  The function does what nine round
 * trips did before (BEGIN, claim and key, thread insert, thread lock and
 * seq allocation, one insert per message, summary, usage link, COMMIT), in
 * the same order and under the same row lock.  Its outcomes: saved;
 * replayed (the key was there: nothing written, the stored reply returned,
 * read with a snapshot taken after the wait for its holder); replay_missing
 * (the key row vanished: read it once more in a new transaction); SQLSTATE
 * DB_SQLSTATE_NOT_OWNER (raised, so the whole turn is rolled back).
 */
#define DB_SQLSTATE_NOT_OWNER "IG404"

struct db_turn_job {
	const struct db_turn *t;
	struct arena *a;
	struct db_turn_result *out;
	const char *thread_id;
	const char **ids;
	const char *reply_id;
	union db_save_turn_values params;
	char reply_status[DB_INT_TEXT];
};

/* The columns of messages a turn writes, one array each, in thread order. */
struct db_turn_columns {
	const char *id[DB_TURN_MAX_MESSAGES];
	const char *role[DB_TURN_MAX_MESSAGES];
	const char *agent_name[DB_TURN_MAX_MESSAGES];
	const char *content[DB_TURN_MAX_MESSAGES];
	const char *tool_calls[DB_TURN_MAX_MESSAGES];
	const char *tool_call_id[DB_TURN_MAX_MESSAGES];
	const char *tool_call_function[DB_TURN_MAX_MESSAGES];
	const char *content_filter_results[DB_TURN_MAX_MESSAGES];
};

static enum db_status
db_replay_fetch(struct db_call *call, const char *owner, const char *key,
    struct arena *a, struct db_idempotent *out, struct err *e)
{
	const char *v[2] = { owner, key };
	PGresult *res = db_exec(call, &db_stmt_idem_get, v, e);

	if (res == NULL)
		return DB_ERROR;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return DB_NOT_FOUND;
	}
	out->status = atoi(PQgetvalue(res, 0, 0));
	out->body = db_val(res, 0, 1, a);
	out->request_hash = db_val(res, 0, 2, a);
	out->thread_id = db_val(res, 0, 3, a);
	out->message_id = db_val(res, 0, 4, a);
	PQclear(res);
	return DB_OK;
}

/*
 * A one-dimensional array literal of the n strings of v, for a text[],
 * uuid[] or jsonb[] parameter: every element double-quoted with " and \
 * escaped, so any text survives (commas, braces, blanks, quotes), and a NULL
 * pointer as NULL.  Lives in `a`.
 */
static const char *
db_array_literal(struct arena *a, const char *const *v, size_t n)
{
	const char *q;
	size_t i, len = 2;
	char *s, *w;

	for (i = 0; i < n; i++) {
		len += 1;                       /* the comma */
		if (v[i] == NULL) {
			len += 4;
			continue;
		}
		len += 2;
		for (q = v[i]; *q != '\0'; q++)
			len += (*q == '"' || *q == '\\') ? 2 : 1;
	}
	s = w = arena_alloc(a, len + 1);
	*w++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*w++ = ',';
		if (v[i] == NULL) {
			memcpy(w, "NULL", 4);
			w += 4;
			continue;
		}
		*w++ = '"';
		for (q = v[i]; *q != '\0'; q++) {
			if (*q == '"' || *q == '\\')
				*w++ = '\\';
			*w++ = *q;
		}
		*w++ = '"';
	}
	*w++ = '}';
	*w = '\0';
	return s;
}

static enum db_status
db_turn_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_turn_job *j = arg;
	const struct db_turn *t = j->t;
	struct db_idempotent idem;
	PGresult *res;
	const char *outcome;
	bool not_owner;
	enum db_status rc;

	res = db_exec_quiet(call, &db_stmt_save_turn, j->params.positional,
	    DB_SQLSTATE_NOT_OWNER, &not_owner, e);
	if (res == NULL)
		return not_owner ? DB_NOT_OWNER : DB_ERROR;
	if (PQstatus(call->c->pg) != CONNECTION_OK) {
		/* the reply came, the connection went: the outcome is unknown,
		 * and a retry with the same key replays it if it committed */
		PQclear(res);
		call->broken = true;
		log_error(call->action, "could not save the turn: connection lost "
		    "after the reply");
		return err_set(e, 503, "database unavailable"), DB_ERROR;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != DB_SAVE_TURN_COLUMNS ||
	    PQgetisnull(res, 0, 0) ||
	    PQtransactionStatus(call->c->pg) != PQTRANS_IDLE) {
		PQclear(res);
		log_error(call->action, "could not save the turn: unexpected reply "
		    "of ingenious_commit_turn");
		return err_set(e, 500, "database error"), DB_ERROR;
	}
	outcome = PQgetvalue(res, 0, 0);
	if (strcmp(outcome, "saved") == 0) {
		j->out->thread_id = j->thread_id;
		j->out->message_ids = j->ids;
		j->out->n_message_ids = t->n_messages;
		j->out->reply_id = j->reply_id;
		j->out->first_seq = atoi(PQgetvalue(res, 0, 1));
		j->out->new_thread = PQgetvalue(res, 0, 2)[0] == 't';
		PQclear(res);
		return DB_OK;
	}
	memset(&idem, 0, sizeof(idem));
	if (strcmp(outcome, "replayed") == 0) {
		idem.status = atoi(PQgetvalue(res, 0, 3));
		idem.body = db_val(res, 0, 4, j->a);
		idem.request_hash = db_val(res, 0, 5, j->a);
		idem.thread_id = db_val(res, 0, 6, j->a);
		idem.message_id = db_val(res, 0, 7, j->a);
		PQclear(res);
	} else {
		/* replay_missing: purged after the conflict, or not yet
		 * visible; a look in a new transaction decides */
		PQclear(res);
		rc = db_replay_fetch(call, t->owner, t->idempotency_key, j->a,
		    &idem, e);
		if (rc == DB_ERROR)
			return DB_ERROR;
		if (rc == DB_NOT_FOUND) {
			/* purged between the two statements: a retry will do */
			return err_set(e, 503, "database busy"), DB_ERROR;
		}
	}
	j->out->replay_status = idem.status;
	j->out->replay_body = idem.body;
	j->out->replay_request_hash = idem.request_hash;
	j->out->thread_id = idem.thread_id;
	j->out->reply_id = idem.message_id;
	return DB_REPLAYED;
}

enum db_status
db_save_turn(struct db_pool *p, const struct db_turn *t, struct arena *a,
    struct db_turn_result *out, struct err *e)
{
	struct db_turn_job j;
	struct db_turn_columns *col;
	struct db_save_turn_params *sp;
	const struct db_message *m;
	char uuid[DB_UUID_LEN];
	size_t i, len, cap;
	char *s;

	memset(out, 0, sizeof(*out));
	if (t->owner == NULL || t->owner[0] == '\0' || t->flow == NULL ||
	    t->flow[0] == '\0')
		return err_set(e, 500, "could not save the turn: owner and flow "
		    "are required"), DB_ERROR;
	/* the limits of sql/001_schema.sql, as client errors */
	if (t->thread_id != NULL &&
	    (t->thread_id[0] == '\0' || strlen(t->thread_id) > DB_THREAD_ID_MAX))
		return err_set(e, 400, "thread_id must be 1 to %d characters",
		    DB_THREAD_ID_MAX), DB_ERROR;
	if (strlen(t->owner) > DB_OWNER_MAX || strlen(t->flow) > DB_FLOW_MAX)
		return err_set(e, 400, "user or flow name too long"), DB_ERROR;
	if (t->idempotency_key != NULL && (t->idempotency_key[0] == '\0' ||
	    strlen(t->idempotency_key) > DB_IDEMPOTENCY_KEY_MAX))
		return err_set(e, 400, "Idempotency-Key must be 1 to %d characters",
		    DB_IDEMPOTENCY_KEY_MAX), DB_ERROR;
	if (t->n_messages == 0 || t->n_messages > DB_TURN_MAX_MESSAGES ||
	    t->reply_index >= t->n_messages)
		return err_set(e, 500, "could not save the turn: %zu messages, "
		    "reply %zu", t->n_messages, t->reply_index), DB_ERROR;
	if (t->idempotency_key != NULL && t->reply_body == NULL)
		return err_set(e, 500, "could not save the turn: an idempotency "
		    "key needs the reply body"), DB_ERROR;
	if (t->idempotency_claim != NULL && t->idempotency_key == NULL)
		return err_set(e, 500, "could not save the turn: a claim "
		    "needs its idempotency key"), DB_ERROR;
	for (i = 0; i < t->n_messages; i++) {
		if (t->messages[i].role == NULL)
			return err_set(e, 500, "could not save the turn: message %zu "
			    "has no role", i), DB_ERROR;
		if (t->messages[i].id != NULL && !uuid_valid(t->messages[i].id))
			return err_set(e, 500, "could not save the turn: message %zu "
			    "id is not a uuid", i), DB_ERROR;
	}

	/* Every id is fixed here, before the first attempt: if db_run retries
	 * on a fresh connection after the first one broke, a turn that did
	 * commit cannot be written twice (messages.id is the primary key; with
	 * a key, the retry replays it). */
	memset(&j, 0, sizeof(j));
	j.t = t;
	j.a = a;
	j.out = out;
	if (t->thread_id != NULL) {
		j.thread_id = t->thread_id;
	} else {
		db_new_uuid(uuid);
		j.thread_id = arena_strdup(a, uuid);
	}
	j.ids = arena_alloc(a, t->n_messages * sizeof(*j.ids));
	/* in the arena: 8 x DB_TURN_MAX_MESSAGES pointers would be 4 KiB of
	 * every flow thread's stack */
	col = arena_alloc(a, sizeof(*col));
	for (i = 0; i < t->n_messages; i++) {
		m = &t->messages[i];
		if (m->id != NULL) {
			j.ids[i] = m->id;
		} else {
			db_new_uuid(uuid);
			j.ids[i] = arena_strdup(a, uuid);
		}
		col->id[i] = j.ids[i];
		col->role[i] = m->role;
		col->agent_name[i] = m->agent_name;
		col->content[i] = m->content != NULL ? m->content : "";
		col->tool_calls[i] = m->tool_calls;
		col->tool_call_id[i] = m->tool_call_id;
		col->tool_call_function[i] = m->tool_call_function;
		col->content_filter_results[i] = m->content_filter_results;
	}
	j.reply_id = j.ids[t->reply_index];

	sp = &j.params.named;
	sp->thread_id = j.thread_id;
	sp->owner = t->owner;
	sp->enforce_owner = t->enforce_owner ? "true" : "false";
	sp->flow = t->flow;
	sp->user_id = t->user_id;
	sp->message_ids = db_array_literal(a, col->id, t->n_messages);
	sp->roles = db_array_literal(a, col->role, t->n_messages);
	sp->agent_names = db_array_literal(a, col->agent_name, t->n_messages);
	sp->contents = db_array_literal(a, col->content, t->n_messages);
	sp->tool_calls = db_array_literal(a, col->tool_calls, t->n_messages);
	sp->tool_call_ids = db_array_literal(a, col->tool_call_id, t->n_messages);
	sp->tool_call_functions = db_array_literal(a, col->tool_call_function,
	    t->n_messages);
	sp->content_filter_results = db_array_literal(a,
	    col->content_filter_results, t->n_messages);
	sp->reply_id = j.reply_id;
	sp->memory_summary = t->memory_summary != NULL &&
	    t->memory_summary[0] != '\0' ? t->memory_summary : NULL;
	sp->usage_ids = NULL;
	if (t->n_usage_ids > 0) {
		/* "{1,2,3}": each id and its comma, the braces and the NUL */
		cap = t->n_usage_ids * (DB_INT64_DIGITS + 1) + sizeof("{}");
		s = arena_alloc(a, cap);
		len = 0;
		s[len++] = '{';
		for (i = 0; i < t->n_usage_ids; i++)
			len += (size_t)snprintf(s + len, cap - len, "%s%" PRId64,
			    i > 0 ? "," : "", t->usage_ids[i]);
		s[len++] = '}';
		s[len] = '\0';
		sp->usage_ids = s;
	}
	sp->idempotency_key = t->idempotency_key;
	sp->request_hash = t->idempotency_key != NULL ? t->request_hash : NULL;
	snprintf(j.reply_status, sizeof(j.reply_status), "%d", t->reply_status);
	sp->reply_status = t->idempotency_key != NULL ? j.reply_status : NULL;
	sp->reply_body = t->idempotency_key != NULL ? t->reply_body : NULL;
	sp->claim = t->idempotency_claim;
	sp->usage = t->usage_json;
	return db_run(p, "while saving a chat turn", db_turn_work, &j, e);
}

/* ------------------------------------------------------------------ */
/* Usage                                                               */
/* ------------------------------------------------------------------ */

struct db_usage_job {
	const struct db_usage *u;
	int64_t id;
};

static enum db_status
db_usage_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_usage_job *j = arg;
	const struct db_usage *u = j->u;
	char num[6][DB_INT_TEXT];
	const char *v[17];
	PGresult *res;

	snprintf(num[0], sizeof(num[0]), "%d", u->prompt_tokens);
	snprintf(num[1], sizeof(num[1]), "%d", u->completion_tokens);
	snprintf(num[2], sizeof(num[2]), "%d", u->total_tokens);
	snprintf(num[3], sizeof(num[3]), "%d", u->latency_ms < 0 ? 0 : u->latency_ms);
	snprintf(num[4], sizeof(num[4]), "%d", u->http_status);
	snprintf(num[5], sizeof(num[5]), "%d", u->retries < 0 ? 0 : u->retries);
	v[0] = u->request_id;
	v[1] = u->user_id;
	v[2] = u->thread_id;
	v[3] = u->flow;
	v[4] = u->agent_name;
	v[5] = u->model;
	v[6] = u->deployment;
	v[7] = num[0];
	v[8] = num[1];
	v[9] = num[2];
	v[10] = num[3];
	v[11] = u->http_status > 0 ? num[4] : NULL;
	v[12] = num[5];
	v[13] = u->prompt_revision;
	v[14] = u->prompt_file;
	v[15] = u->prompt_hash;
	v[16] = u->transcript;
	res = db_exec(call, &db_stmt_usage_insert, v, e);
	if (res == NULL)
		return DB_ERROR;
	j->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return DB_OK;
}

int
db_record_usage(struct db_pool *p, const struct db_usage *u, int64_t *id_out,
    struct err *e)
{
	struct db_usage_job j = { u, 0 };
	struct log_field f[7];
	enum db_status ds;
	int attempt;

	/*
	 * A billed call deserves more patience than a read: when every
	 * connection is busy (503), try again, up to DB_USAGE_ATTEMPTS waits
	 * for a connection.  A database known to be down fails each attempt
	 * at once, so this adds no wait then.
	 */
	for (attempt = 1;; attempt++) {
		ds = db_run(p, "while recording llm usage", db_usage_work, &j, e);
		if (ds == DB_OK || attempt >= DB_USAGE_ATTEMPTS || e == NULL ||
		    e->status != 503)
			break;
	}
	if (ds != DB_OK) {
		/* The row is lost: keep what billing needs in the log. */
		f[0] = LOG_STR("user", u->user_id);
		f[1] = LOG_STR("thread", u->thread_id);
		f[2] = LOG_STR("model", u->model);
		f[3] = LOG_STR("deployment", u->deployment);
		f[4] = LOG_INT("prompt_tokens", u->prompt_tokens);
		f[5] = LOG_INT("completion_tokens", u->completion_tokens);
		f[6] = LOG_INT("total_tokens", u->total_tokens);
		log_emit(LOG_LEVEL_ERROR, "while recording llm usage", f, 7,
		    "llm usage not recorded: %s", e != NULL ? e->msg : "error");
		return -1;
	}
	if (id_out != NULL)
		*id_out = j.id;
	return 0;
}

static void
db_json_str(struct buf *b, bool *first, const char *key, const char *v)
{
	if (v == NULL)
		return;
	buf_printf(b, "%s\"%s\":", *first ? "" : ",", key);
	buf_json_string(b, v);
	*first = false;
}

static void
db_json_int(struct buf *b, bool *first, const char *key, long long v)
{
	buf_printf(b, "%s\"%s\":%lld", *first ? "" : ",", key, v);
	*first = false;
}

void
db_usage_json(struct buf *b, const struct db_usage *u, bool with_transcript)
{
	bool first = true;
	struct tm tm;
	time_t sec;
	char ts[96];

	buf_putc(b, '{');
	db_json_str(b, &first, "request_id", u->request_id);
	db_json_str(b, &first, "user_id", u->user_id);
	db_json_str(b, &first, "thread_id", u->thread_id);
	db_json_str(b, &first, "flow", u->flow);
	db_json_str(b, &first, "agent_name", u->agent_name);
	db_json_str(b, &first, "model", u->model);
	db_json_str(b, &first, "deployment", u->deployment);
	db_json_int(b, &first, "prompt_tokens", u->prompt_tokens < 0 ? 0 : u->prompt_tokens);
	db_json_int(b, &first, "completion_tokens",
	    u->completion_tokens < 0 ? 0 : u->completion_tokens);
	db_json_int(b, &first, "total_tokens", u->total_tokens < 0 ? 0 : u->total_tokens);
	db_json_int(b, &first, "latency_ms", u->latency_ms < 0 ? 0 : u->latency_ms);
	if (u->http_status >= 100 && u->http_status <= 599)
		db_json_int(b, &first, "http_status", u->http_status);
	db_json_int(b, &first, "retries", u->retries < 0 ? 0 : u->retries);
	db_json_str(b, &first, "prompt_revision", u->prompt_revision);
	db_json_str(b, &first, "prompt_file", u->prompt_file);
	db_json_str(b, &first, "prompt_hash", u->prompt_hash);
	if (with_transcript && u->transcript != NULL) {
		/* already JSON text (services_transcript) */
		buf_printf(b, "%s\"transcript\":", first ? "" : ",");
		buf_puts(b, u->transcript);
		first = false;
	}
	if (u->finished_us > 0) {
		sec = (time_t)(u->finished_us / 1000000);
		gmtime_r(&sec, &tm);
		snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (int)(u->finished_us % 1000000));
		db_json_str(b, &first, "created_at", ts);
	}
	buf_putc(b, '}');
}

struct db_usage_json_job {
	const char *json;
	int inserted;
};

static enum db_status
db_usage_json_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_usage_json_job *j = arg;
	const char *v[1] = { j->json };
	PGresult *res;

	res = db_exec(call, &db_stmt_usage_record, v, e);
	if (res == NULL)
		return DB_ERROR;
	j->inserted = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	return DB_OK;
}

int
db_record_usage_json(struct db_pool *p, const char *json, int *inserted,
    struct err *e)
{
	struct db_usage_json_job j = { json, 0 };
	enum db_status ds;
	int attempt;

	/* as patient as db_record_usage: these rows are billed calls too */
	for (attempt = 1;; attempt++) {
		ds = db_run(p, "while recording llm usage", db_usage_json_work, &j, e);
		if (ds == DB_OK || attempt >= DB_USAGE_ATTEMPTS || e == NULL ||
		    e->status != 503)
			break;
	}
	if (ds != DB_OK)
		return -1;
	if (inserted != NULL)
		*inserted = j.inserted;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Idempotency                                                         */
/* ------------------------------------------------------------------ */

struct db_idem_job {
	const char *owner, *key;
	struct arena *a;
	struct db_idempotent *out;
};

static enum db_status
db_idem_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_idem_job *j = arg;

	return db_replay_fetch(call, j->owner, j->key, j->a, j->out, e);
}

enum db_status
db_idempotency_get(struct db_pool *p, const char *owner, const char *key,
    struct arena *a, struct db_idempotent *out, struct err *e)
{
	struct db_idem_job j = { owner, key, a, out };

	memset(out, 0, sizeof(*out));
	return db_run(p, "while looking up an idempotency key", db_idem_work, &j, e);
}

struct db_claim_job {
	const char *owner, *key, *token;
	int stale_ms;
};

/* One autocommitted INSERT, so that every other worker sees the claim at
 * once; a stale claim is deleted and the INSERT tried once more. */
static enum db_status
db_claim_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_claim_job *j = arg;
	const char *v[3] = { j->owner, j->key, j->token };
	const char *x[3] = { j->owner, j->key, NULL };
	char ms[DB_INT_TEXT];
	PGresult *res;
	bool done;
	int attempt;

	snprintf(ms, sizeof(ms), "%d", j->stale_ms < 0 ? 0 : j->stale_ms);
	x[2] = ms;
	for (attempt = 0; attempt < 2; attempt++) {
		res = db_exec(call, &db_stmt_idem_claim, v, e);
		if (res == NULL)
			return DB_ERROR;
		done = strcmp(PQcmdTuples(res), "1") == 0;
		PQclear(res);
		if (done)
			return DB_OK;
		if (attempt > 0)
			break;
		res = db_exec(call, &db_stmt_idem_expire, x, e);
		if (res == NULL)
			return DB_ERROR;
		done = strcmp(PQcmdTuples(res), "1") == 0;
		PQclear(res);
		if (!done)
			break;
		log_warn(call->action, "took over an idempotency key whose turn "
		    "did not finish");
	}
	return DB_EXISTS;
}

enum db_status
db_idempotency_claim(struct db_pool *p, const char *owner, const char *key,
    const char *token, int stale_ms, struct err *e)
{
	struct db_claim_job j = { owner, key, token, stale_ms };

	if (key == NULL || key[0] == '\0' || strlen(key) > DB_IDEMPOTENCY_KEY_MAX)
		return err_set(e, 400, "Idempotency-Key must be 1 to %d characters",
		    DB_IDEMPOTENCY_KEY_MAX), DB_ERROR;
	return db_run(p, "while claiming an idempotency key", db_claim_work, &j, e);
}

static enum db_status
db_release_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_claim_job *j = arg;
	const char *v[3] = { j->owner, j->key, j->token };
	PGresult *res = db_exec(call, &db_stmt_idem_release, v, e);

	if (res == NULL)
		return DB_ERROR;
	PQclear(res);
	return DB_OK;
}

int
db_idempotency_release(struct db_pool *p, const char *owner, const char *key,
    const char *token, struct err *e)
{
	struct db_claim_job j = { owner, key, token, 0 };

	return db_run(p, "while releasing an idempotency key", db_release_work,
	    &j, e) == DB_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Reading threads                                                     */
/* ------------------------------------------------------------------ */

struct db_thread_job {
	const char *thread_id, *owner;
	int limit;
	struct arena *a;
	struct db_history *out;
};

static enum db_status
db_thread_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_thread_job *j = arg;
	struct db_message *m;
	char lim[DB_INT_TEXT];
	const char *v[2] = { j->thread_id, lim };
	PGresult *res;
	int rows, r;

	snprintf(lim, sizeof(lim), "%d", j->limit);
	res = db_exec(call, &db_stmt_thread_messages, v, e);
	if (res == NULL)
		return DB_ERROR;
	rows = PQntuples(res);
	if (rows == 0) {
		PQclear(res);
		return DB_OK;
	}
	if (j->owner != NULL && strcmp(PQgetvalue(res, 0, 0), j->owner) != 0) {
		PQclear(res);
		return DB_NOT_OWNER;
	}
	j->out->exists = true;
	j->out->memory = db_val(res, 0, 1, j->a);
	j->out->messages = arena_zalloc(j->a, (size_t)rows * sizeof(*m));
	for (r = 0; r < rows; r++) {
		if (PQgetisnull(res, r, 2))
			continue;     /* the thread has no message yet */
		m = &j->out->messages[j->out->n++];
		m->id = db_val(res, r, 2, j->a);
		m->thread_id = arena_strdup(j->a, j->thread_id);
		m->seq = atoi(PQgetvalue(res, r, 3));
		m->user_id = db_val(res, r, 4, j->a);
		m->role = db_val(res, r, 5, j->a);
		m->agent_name = db_val(res, r, 6, j->a);
		m->content = db_val(res, r, 7, j->a);
		m->tool_calls = db_val(res, r, 8, j->a);
		m->tool_call_id = db_val(res, r, 9, j->a);
		m->tool_call_function = db_val(res, r, 10, j->a);
		m->content_filter_results = db_val(res, r, 11, j->a);
		m->positive_feedback = db_bool(res, r, 12);
		m->created_at = db_val(res, r, 13, j->a);
	}
	PQclear(res);
	return DB_OK;
}

enum db_status
db_thread_history(struct db_pool *p, const char *thread_id, const char *owner,
    int limit, struct arena *a, struct db_history *out, struct err *e)
{
	struct db_thread_job j = { thread_id, owner, limit, a, out };

	memset(out, 0, sizeof(*out));
	if (thread_id == NULL)
		return err_set(e, 500, "could not read the thread: no thread id"),
		    DB_ERROR;
	if (j.limit <= 0)
		j.limit = 1;
	if (j.limit > DB_HISTORY_MAX)
		j.limit = DB_HISTORY_MAX;
	return db_run(p, "while reading a thread", db_thread_work, &j, e);
}

enum db_status
db_thread_messages(struct db_pool *p, const char *thread_id, const char *owner,
    int limit, struct arena *a, struct db_message **out, size_t *n,
    struct err *e)
{
	struct db_history h;
	enum db_status rc;

	*out = NULL;
	*n = 0;
	rc = db_thread_history(p, thread_id, owner, limit, a, &h, e);
	if (rc == DB_OK) {
		*out = h.messages;
		*n = h.n;
	}
	return rc;
}

struct db_thread_list_job {
	const char *owner;
	int limit, n;
	struct arena *a;
	struct db_thread_summary *out;
};

static enum db_status
db_thread_list_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_thread_list_job *j = arg;
	char lim[DB_INT_TEXT];
	const char *v[2] = { lim, j->owner };
	PGresult *res;
	int r;

	snprintf(lim, sizeof(lim), "%d", j->limit);
	res = db_exec(call, j->owner != NULL ? &db_stmt_thread_list :
	    &db_stmt_thread_list_all, v, e);
	if (res == NULL)
		return DB_ERROR;
	j->n = PQntuples(res);
	j->out = j->n > 0 ? arena_zalloc(j->a, (size_t)j->n * sizeof(*j->out)) : NULL;
	for (r = 0; r < j->n; r++) {
		struct db_thread_summary *t = &j->out[r];

		t->id = db_val(res, r, 0, j->a);
		t->owner = db_val(res, r, 1, j->a);
		t->flow = db_val(res, r, 2, j->a);
		t->messages = atoi(PQgetvalue(res, r, 3));
		t->created_at = db_val(res, r, 4, j->a);
		t->updated_at = db_val(res, r, 5, j->a);
		t->preview = db_val(res, r, 6, j->a);
	}
	PQclear(res);
	return DB_OK;
}

int
db_thread_list(struct db_pool *p, const char *owner, int limit,
    struct arena *a, struct db_thread_summary **out, struct err *e)
{
	struct db_thread_list_job j = { owner, limit, 0, a, NULL };

	*out = NULL;
	if (j.limit < 1)
		j.limit = 1;
	if (j.limit > DB_THREAD_LIST_MAX)
		j.limit = DB_THREAD_LIST_MAX;
	if (db_run(p, "while listing threads", db_thread_list_work, &j, e) != DB_OK)
		return -1;
	*out = j.out;
	return j.n;
}

/* ------------------------------------------------------------------ */
/* Feedback                                                            */
/* ------------------------------------------------------------------ */

struct db_feedback_job {
	const char *message_id, *thread_id, *user_id, *owner;
	int positive;
};

static enum db_status
db_feedback_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_feedback_job *j = arg;
	const char *find[2] = { j->message_id, j->thread_id };
	const char *set[3] = { j->message_id, j->thread_id,
	    j->positive < 0 ? NULL : j->positive ? "true" : "false" };
	PGresult *res;

	res = db_exec(call, &db_stmt_feedback_find, find, e);
	if (res == NULL)
		return DB_ERROR;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return DB_NOT_FOUND;
	}
	if (j->owner != NULL && strcmp(PQgetvalue(res, 0, 1), j->owner) != 0) {
		PQclear(res);
		return DB_NOT_OWNER;
	}
	if (strcmp(PQgetvalue(res, 0, 0), j->user_id != NULL ? j->user_id : "") != 0) {
		PQclear(res);
		return DB_USER_MISMATCH;
	}
	PQclear(res);
	res = db_exec(call, &db_stmt_feedback_set, set, e);
	if (res == NULL)
		return DB_ERROR;
	PQclear(res);
	return DB_OK;
}

enum db_status
db_feedback(struct db_pool *p, const char *message_id, const char *thread_id,
    const char *user_id, const char *owner, int positive, struct err *e)
{
	struct db_feedback_job j = { message_id, thread_id, user_id, owner, positive };

	/* messages.id is a uuid: anything else cannot name a message */
	if (message_id == NULL || thread_id == NULL || !uuid_valid(message_id))
		return DB_NOT_FOUND;
	return db_run(p, "while storing feedback", db_feedback_work, &j, e);
}
