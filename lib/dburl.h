/*
 * dburl.h -- where a process finds its database: the connection string of
 * a role, from chat_history.database_url, the libpq environment, the files
 * of the local cluster (DIR/database_url, DIR/credentials), or libpq's
 * defaults.
 *
 * It reads the configuration, the environment and those two files; it never
 * connects, runs no program and knows nothing of libpq, so the pool
 * (lib/db_pool.c), the migrator and the local cluster (lib/localpg.c) can
 * all depend on it without a cycle.  It also defines what the local
 * cluster's connection strings look like, which lib/localpg.c writes into
 * those files.  Every string it returns may hold a password: never log it,
 * wipe it before freeing.
 */
#ifndef INGEN_DBURL_H
#define INGEN_DBURL_H

#include "lib/err.h"

struct config;

/* The roles of the local cluster (sql/002_roles.sql). */
enum dburl_role {
	DBURL_ROLE_APP = 0,         /* ingenious_app: the server */
	DBURL_ROLE_OWNER,           /* ingenious_owner: owns the schema, migrates */
	DBURL_ROLE_READONLY,        /* ingenious_readonly: DBAs, BI */
	DBURL_ROLE_SQLAGENT,        /* ingenious_sqlagent: the SQL agent */
	DBURL_ROLE_SUPERUSER,       /* postgres: bootstrap only */
	DBURL_ROLES
};

/* The database the local cluster serves, its port (the unix socket's name),
 * and the length of its generated passwords. */
#define DBURL_LOCAL_DBNAME "ingenious"
#define DBURL_LOCAL_PORT "5432"
#define DBURL_PASSWORD_LEN 32

/* The PostgreSQL name of a role ("ingenious_app"), and its key in
 * DIR/credentials ("app": lines app_password= and app_url=).  Static
 * strings; any thread. */
const char *dburl_role_name(enum dburl_role role);
const char *dburl_role_key(enum dburl_role role);

/*
 * The key/value connection string of `role` on the local cluster whose
 * socket is in socket_dir: host, port, dbname (postgres for the superuser,
 * else DBURL_LOCAL_DBNAME), user and password, quoted as libpq wants.  Heap;
 * the caller wipes and frees it.
 */
char *dburl_build(const char *socket_dir, enum dburl_role role,
    const char *password);

/*
 * Read the passwords of every role from a credentials file into pw (each
 * DBURL_PASSWORD_LEN characters and a NUL).  Returns 0, or -1 with `e` set
 * (404 when the file does not exist, 500 when it lacks a role).
 */
int dburl_read_passwords(const char *path,
    char pw[DBURL_ROLES][DBURL_PASSWORD_LEN + 1], struct err *e) ING_WUR;

/*
 * The connection string of `role` for the local cluster in dir, built from
 * DIR/credentials and the directory's real path (so it follows a moved
 * directory), into *out (heap, the caller frees; it holds a password).
 * Returns 0, or -1 when dir holds no initialized cluster.
 */
int dburl_local(const char *dir, enum dburl_role role, char **out,
    struct err *e) ING_WUR;

/*
 * The default directory of the local cluster, <server.state_dir>/pg, into
 * *out (heap).  Returns 0, or -1 when state_dir is not set.
 */
int dburl_local_dir(const struct config *cfg, char **out, struct err *e) ING_WUR;

/*
 * Where `role` (DBURL_ROLE_APP for the server, DBURL_ROLE_OWNER for
 * migrations) connects, in this order: chat_history.database_url (also
 * INGENIOUS_CHAT_HISTORY__DATABASE_URL), else the libpq environment (PGHOST,
 * PGHOSTADDR, PGPORT, PGDATABASE or PGSERVICE set: *out = ""), else the
 * local cluster <state_dir>/pg, else libpq's defaults (*out = "").  *out is
 * heap (the caller frees; may hold a password), *source a static
 * description for logs.  Returns 0 or -1.  Any process; reads one file.
 */
int dburl_resolve(const struct config *cfg, enum dburl_role role,
    char **out, const char **source, struct err *e) ING_WUR;

#endif
