/*
 * db_users.c -- the users table: add, read, change the password, disable,
 * list.
 *
 * It owns the SQL of those calls and runs it through db_run and db_exec
 * (lib/db_pool.c), so a failure means what it means everywhere else.  It
 * never checks or logs a password or a hash: it stores what the caller
 * hashed (lib/crypto.c) and returns it.
 */
#include "autoconfig.h"

#include <string.h>

#include "lib/arena.h"
#include "lib/db_int.h"

/* SQLSTATE check_violation: the CHECK on users.username */
#define DB_SQLSTATE_CHECK_VIOLATION "23514"

static const struct db_stmt_def db_stmt_user_add = {
	DB_STMT_USER_ADD, "ing_user_add", 2,
	"INSERT INTO users (username, password_hash) VALUES ($1, $2)"
	" ON CONFLICT (username) DO NOTHING"
};

static const struct db_stmt_def db_stmt_user_get = {
	DB_STMT_USER_GET, "ing_user_get", 1,
	"SELECT username, password_hash,"
	" to_char(created_at AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT "),"
	" disabled FROM users WHERE username = $1"
};

static const struct db_stmt_def db_stmt_user_set_password = {
	DB_STMT_USER_SET_PASSWORD, "ing_user_set_password", 2,
	"UPDATE users SET password_hash = $2, updated_at = now()"
	" WHERE username = $1"
};

static const struct db_stmt_def db_stmt_user_disable = {
	DB_STMT_USER_DISABLE, "ing_user_disable", 2,
	"UPDATE users SET disabled = $2::boolean, updated_at = now()"
	" WHERE username = $1"
};

static const struct db_stmt_def db_stmt_user_list = {
	DB_STMT_USER_LIST, "ing_user_list", 0,
	"SELECT username, NULL,"
	" to_char(created_at AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT "),"
	" disabled FROM users ORDER BY username"
};

struct db_user_job {
	const struct db_stmt_def *st;
	const char *v[2];
	struct arena *a;
	struct db_user *one;
	struct db_user **many;
	size_t *n;
};

static enum db_status
db_user_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_user_job *j = arg;
	struct db_user *u;
	PGresult *res;
	int r, rows;

	res = db_exec(call, j->st, j->v, e);
	if (res == NULL) {
		if (j->st == &db_stmt_user_add &&
		    strcmp(call->sqlstate, DB_SQLSTATE_CHECK_VIOLATION) == 0)
			err_set(e, 400, "invalid username: use 1 to %d of "
			    "A-Z a-z 0-9 . _ @ -", DB_USER_NAME_MAX);
		return DB_ERROR;
	}
	switch (j->st->slot) {
	case DB_STMT_USER_ADD:
		r = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : DB_EXISTS;
		PQclear(res);
		return r;
	case DB_STMT_USER_SET_PASSWORD:
	case DB_STMT_USER_DISABLE:
		r = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : DB_NOT_FOUND;
		PQclear(res);
		return r;
	default:
		break;
	}
	rows = PQntuples(res);
	if (j->one != NULL && rows == 0) {
		PQclear(res);
		return DB_NOT_FOUND;
	}
	if (j->many != NULL)
		*j->many = arena_zalloc(j->a, (size_t)(rows > 0 ? rows : 1) * sizeof(*u));
	for (r = 0; r < rows; r++) {
		u = j->one != NULL ? j->one : &(*j->many)[r];
		u->username = db_val(res, r, 0, j->a);
		u->password_hash = db_val(res, r, 1, j->a);
		u->created_at = db_val(res, r, 2, j->a);
		u->disabled = db_bool(res, r, 3) == 1;
		if (j->one != NULL)
			break;
	}
	if (j->n != NULL)
		*j->n = (size_t)rows;
	PQclear(res);
	return DB_OK;
}

bool
db_user_name_valid(const char *name)
{
	size_t n;

	for (n = 0; name[n] != '\0'; n++) {
		char c = name[n];

		if (n >= DB_USER_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
		    c == '-'))
			return false;
	}
	return n > 0;
}

enum db_status
db_user_add(struct db_pool *p, const char *username, const char *password_hash,
    struct err *e)
{
	struct db_user_job j = { &db_stmt_user_add, { username, password_hash },
	    NULL, NULL, NULL, NULL };

	return db_run(p, "while adding a user", db_user_work, &j, e);
}

enum db_status
db_user_get(struct db_pool *p, const char *username, struct arena *a,
    struct db_user *out, struct err *e)
{
	struct db_user_job j = { &db_stmt_user_get, { username, NULL }, a, out,
	    NULL, NULL };

	memset(out, 0, sizeof(*out));
	return db_run(p, "while reading a user", db_user_work, &j, e);
}

enum db_status
db_user_set_password(struct db_pool *p, const char *username,
    const char *password_hash, struct err *e)
{
	struct db_user_job j = { &db_stmt_user_set_password,
	    { username, password_hash }, NULL, NULL, NULL, NULL };

	return db_run(p, "while changing a password", db_user_work, &j, e);
}

enum db_status
db_user_disable(struct db_pool *p, const char *username, bool disabled,
    struct err *e)
{
	struct db_user_job j = { &db_stmt_user_disable,
	    { username, disabled ? "true" : "false" }, NULL, NULL, NULL, NULL };

	return db_run(p, "while disabling a user", db_user_work, &j, e);
}

int
db_user_list(struct db_pool *p, struct arena *a, struct db_user **out,
    size_t *n, struct err *e)
{
	struct db_user_job j = { &db_stmt_user_list, { NULL, NULL }, a, NULL,
	    out, n };

	*out = NULL;
	*n = 0;
	return db_run(p, "while listing users", db_user_work, &j, e) == DB_OK ?
	    0 : -1;
}
