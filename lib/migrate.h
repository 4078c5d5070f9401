/*
 * migrate.h -- the schema files of sql/ and their application.
 *
 * Files are named NNN_name.sql, numbered and forward-only: each is applied
 * once, in one transaction, and recorded in schema_migrations with its
 * SHA-256.  A file whose checksum differs from the recorded one is CHANGED
 * (someone edited an applied file); migrations then refuse to run until a
 * human decides.  The files are compiled into the binary (sql/embedded.c,
 * generated at build time), so an installed server needs no data directory;
 * a directory given with --sql-dir or $INGEN_SQL_DIR replaces them.
 *
 * migrate.c owns file loading, checksums and the plan; a session of the
 * database layer (lib/db_session.h) runs the SQL.
 * Used by `ingen db migrate|status`, localpg_init, and the server at start
 * (migrate_check).  Nothing here runs on a request path.
 */
#ifndef INGEN_MIGRATE_H
#define INGEN_MIGRATE_H

#include <stddef.h>

#include "lib/err.h"

struct arena;

/* A schema file compiled into the binary (generated sql/embedded.c). */
struct migrate_embedded {
	const char *name;              /* "001_schema.sql" */
	const unsigned char *data;     /* the file's bytes, NUL after the end */
	size_t len;
};
extern const struct migrate_embedded migrate_embedded_files[];
extern const size_t migrate_embedded_n_files;

/* A schema file to apply. */
struct migrate_file {
	int version;                   /* the number NNN */
	const char *name;
	const char *sql;               /* NUL-terminated */
	size_t len;
	char checksum[65];             /* SHA-256 of the bytes, hex */
};

enum migrate_state {
	MIGRATE_APPLIED = 0,           /* recorded, same checksum */
	MIGRATE_PENDING,               /* not recorded yet */
	MIGRATE_CHANGED,               /* recorded with another checksum */
	MIGRATE_MISSING,               /* recorded, but no such file here */
};

/* One line of `ingen db status`. */
struct migrate_entry {
	int version;
	const char *name;
	enum migrate_state state;
	const char *file_checksum;     /* NULL when MISSING */
	const char *db_checksum;       /* NULL when PENDING */
	const char *applied_at;        /* NULL when PENDING */
};

/* The comparison of the files with a database. */
struct migrate_plan {
	struct migrate_entry *entries; /* by version */
	size_t n;
	size_t n_applied, n_pending, n_changed, n_missing;
	int db_version;                /* highest applied version, 0 = none */
	int files_version;             /* highest file version */
	const char *source;            /* "built-in" or the directory read */
	const char *db_user;           /* role connected as */
};

/* Name of a state as `ingen db status` prints it ("applied", "pending",
 * "CHANGED", "MISSING"). */
const char *migrate_state_name(enum migrate_state s);

/*
 * Load the schema files: from sql_dir if not NULL, else from $INGEN_SQL_DIR
 * if set, else the built-in ones.  Files not named NNN_*.sql are ignored;
 * two files with one number are an error.  Everything lives in `a`.  Sets
 * *source to "built-in" or the directory.  Returns 0 or -1.
 */
int migrate_load(const char *sql_dir, struct arena *a, struct migrate_file **files,
    size_t *n, const char **source, struct err *e) ING_WUR;

/*
 * Compare the files with the database at conninfo (read-only: creates
 * nothing, takes no lock).  Returns 0 with *out filled, or -1.
 */
int migrate_status(const char *conninfo, int connect_timeout, const char *sql_dir,
    struct arena *a, struct migrate_plan *out, struct err *e) ING_WUR;

/*
 * Apply every pending file in order, each in its own transaction, holding
 * the migrator's advisory lock (a concurrent migrator waits, then finds
 * nothing to do).  Refuses (status 409) when a file is CHANGED.  After each
 * file, progress(arg, entry) is called if not NULL.  *out (may be NULL)
 * receives the plan as it was before applying.  Re-running applies nothing.
 * Returns the number of files applied, or -1 (files applied before the
 * failing one stay applied).
 */
int migrate_apply(const char *conninfo, int connect_timeout, const char *sql_dir,
    struct arena *a, struct migrate_plan *out,
    void (*progress)(void *arg, const struct migrate_entry *entry), void *arg,
    struct err *e) ING_WUR;

/*
 * For the server at start: is the database's schema what this binary
 * needs?  Returns 0 when every file is applied and unchanged (a database
 * ahead of the binary, with versions it does not know, is accepted and
 * logged as a warning); -1 otherwise, with `e` saying what to do, e.g.
 * "database schema is out of date (version 2, this server needs 3): run
 * `ingen db migrate`", or 503 when the database cannot be reached.  Uses a
 * short session of its own; works with the application role.
 */
int migrate_check(const char *conninfo, int connect_timeout, const char *sql_dir,
    struct err *e) ING_WUR;

#endif
