/*
 * migrate.c -- schema files: loading (built in or from a directory),
 * SHA-256 checksums, the comparison with schema_migrations, and applying
 * what is pending.  It decides *what* to run; lib/db_session.c runs it.  It never
 * edits a file and never applies anything while a recorded file changed.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/crypto.h"
#include "lib/db_session.h"
#include "lib/log.h"
#include "lib/migrate.h"
#include "lib/xmalloc.h"

#define MIGRATE_MAX_FILES     1000
#define MIGRATE_MAX_FILE_SIZE (16 * 1024 * 1024)

const char *
migrate_state_name(enum migrate_state s)
{
	switch (s) {
	case MIGRATE_APPLIED: return "applied";
	case MIGRATE_PENDING: return "pending";
	case MIGRATE_CHANGED: return "CHANGED";
	case MIGRATE_MISSING: return "MISSING";
	}
	return "?";
}

/* The checksum of a schema file: its sha-256 as 64 hex digits. */
static int
migrate_sha256(const void *p, size_t n, char out[65], struct err *e)
{
	return crypto_sha256_hex(p, n, out, e);
}

/* The version of a file name "NNN_something.sql", or -1 if it is not one. */
static int
migrate_version_of(const char *name)
{
	size_t len = strlen(name);
	long v = 0;
	const char *p;

	if (len < 6 || strcmp(name + len - 4, ".sql") != 0)
		return -1;
	for (p = name; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > 1000000)
			return -1;
	}
	if (p == name || *p != '_' || v <= 0)
		return -1;
	return (int)v;
}

static int
migrate_cmp(const void *a, const void *b)
{
	const struct migrate_file *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* Read a whole file into the arena, NUL-terminated. */
static int
migrate_read(const char *path, struct arena *a, char **out, size_t *len,
    struct err *e)
{
	struct stat st;
	ssize_t r;
	size_t got = 0;
	char *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, 500, "could not open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MIGRATE_MAX_FILE_SIZE) {
		close(fd);
		return err_set(e, 500, "could not read %s: not a regular file "
		    "under 16 MiB", path);
	}
	buf = arena_alloc(a, (size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			return err_set(e, 500, "could not read %s: %s", path,
			    r < 0 ? strerror(errno) : "file shrank");
		}
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	if (strlen(buf) != got)
		return err_set(e, 500, "could not read %s: it contains a NUL byte", path);
	*out = buf;
	*len = got;
	return 0;
}

int
migrate_load(const char *sql_dir, struct arena *a, struct migrate_file **files,
    size_t *n, const char **source, struct err *e)
{
	struct migrate_file *f;
	struct dirent *de;
	DIR *d;
	char *path, *text = NULL;
	size_t i, count = 0;
	int v;

	*files = NULL;
	*n = 0;
	if (sql_dir == NULL || sql_dir[0] == '\0')
		sql_dir = getenv("INGEN_SQL_DIR");
	f = arena_zalloc(a, MIGRATE_MAX_FILES * sizeof(*f));

	if (sql_dir == NULL || sql_dir[0] == '\0') {
		*source = "built-in";
		for (i = 0; i < migrate_embedded_n_files; i++) {
			v = migrate_version_of(migrate_embedded_files[i].name);
			if (v < 0)
				continue;
			f[count].version = v;
			f[count].name = migrate_embedded_files[i].name;
			f[count].sql = (const char *)migrate_embedded_files[i].data;
			f[count].len = migrate_embedded_files[i].len;
			if (migrate_sha256(f[count].sql, f[count].len, f[count].checksum, e) < 0)
				return -1;
			count++;
		}
	} else {
		*source = arena_strdup(a, sql_dir);
		d = opendir(sql_dir);
		if (d == NULL)
			return err_set(e, 500, "could not open schema directory %s: %s",
			    sql_dir, strerror(errno));
		while ((de = readdir(d)) != NULL) {
			v = migrate_version_of(de->d_name);
			if (v < 0)
				continue;
			if (count == MIGRATE_MAX_FILES) {
				closedir(d);
				return err_set(e, 500, "too many schema files in %s", sql_dir);
			}
			path = arena_sprintf(a, "%s/%s", sql_dir, de->d_name);
			if (migrate_read(path, a, &text, &f[count].len, e) < 0) {
				closedir(d);
				return -1;
			}
			f[count].version = v;
			f[count].name = arena_strdup(a, de->d_name);
			f[count].sql = text;
			if (migrate_sha256(text, f[count].len, f[count].checksum, e) < 0) {
				closedir(d);
				return -1;
			}
			count++;
		}
		closedir(d);
	}
	qsort(f, count, sizeof(*f), migrate_cmp);
	for (i = 1; i < count; i++)
		if (f[i].version == f[i - 1].version)
			return err_set(e, 500, "schema files %s and %s have the same "
			    "number", f[i - 1].name, f[i].name);
	*files = f;
	*n = count;
	return 0;
}

/* Merge files and applied rows (both sorted by version) into a plan. */
static void
migrate_plan_build(const struct migrate_file *files, size_t nf,
    const struct db_migration *rows, size_t nr, struct arena *a,
    struct migrate_plan *out)
{
	struct migrate_entry *en;
	size_t i = 0, j = 0, k = 0;

	en = arena_zalloc(a, (nf + nr + 1) * sizeof(*en));
	while (i < nf || j < nr) {
		if (j >= nr || (i < nf && files[i].version < rows[j].version)) {
			en[k].version = files[i].version;
			en[k].name = files[i].name;
			en[k].file_checksum = files[i].checksum;
			en[k].state = MIGRATE_PENDING;
			out->n_pending++;
			i++;
		} else if (i >= nf || rows[j].version < files[i].version) {
			en[k].version = rows[j].version;
			en[k].name = rows[j].name;
			en[k].db_checksum = rows[j].checksum;
			en[k].applied_at = rows[j].applied_at;
			en[k].state = MIGRATE_MISSING;
			out->n_missing++;
			j++;
		} else {
			en[k].version = files[i].version;
			en[k].name = files[i].name;
			en[k].file_checksum = files[i].checksum;
			en[k].db_checksum = rows[j].checksum;
			en[k].applied_at = rows[j].applied_at;
			if (strcmp(files[i].checksum, rows[j].checksum) == 0) {
				en[k].state = MIGRATE_APPLIED;
				out->n_applied++;
			} else {
				en[k].state = MIGRATE_CHANGED;
				out->n_changed++;
			}
			i++;
			j++;
		}
		k++;
	}
	out->entries = en;
	out->n = k;
	out->db_version = nr > 0 ? rows[nr - 1].version : 0;
	out->files_version = nf > 0 ? files[nf - 1].version : 0;
}

/* Load the files, read schema_migrations through s, build the plan. */
static int
migrate_plan_session(struct db_session *s, const char *sql_dir, struct arena *a,
    struct migrate_plan *out, struct migrate_file **files, size_t *nf,
    struct err *e)
{
	struct db_migration *rows;
	size_t nr;

	memset(out, 0, sizeof(*out));
	if (migrate_load(sql_dir, a, files, nf, &out->source, e) < 0)
		return -1;
	if (db_migrations_applied(s, a, &rows, &nr, e) < 0)
		return -1;
	migrate_plan_build(*files, *nf, rows, nr, a, out);
	out->db_user = arena_strdup(a, db_session_user(s));
	return 0;
}

int
migrate_status(const char *conninfo, int connect_timeout, const char *sql_dir,
    struct arena *a, struct migrate_plan *out, struct err *e)
{
	struct migrate_file *files;
	struct db_session *s;
	size_t nf;
	int rc;

	memset(out, 0, sizeof(*out));
	s = db_session_open(conninfo, connect_timeout, e);
	if (s == NULL)
		return -1;
	rc = migrate_plan_session(s, sql_dir, a, out, &files, &nf, e);
	db_session_close(s);
	return rc;
}

int
migrate_apply(const char *conninfo, int connect_timeout, const char *sql_dir,
    struct arena *a, struct migrate_plan *out,
    void (*progress)(void *arg, const struct migrate_entry *entry), void *arg,
    struct err *e)
{
	struct migrate_plan plan;
	struct migrate_file *files;
	struct db_session *s;
	size_t nf, i, k;
	int applied = 0;

	s = db_session_open(conninfo, connect_timeout, e);
	if (s == NULL)
		return -1;
	/* Lock first: a second migrator waits here, then sees our work. */
	if (db_migrations_lock(s, e) < 0 ||
	    migrate_plan_session(s, sql_dir, a, &plan, &files, &nf, e) < 0)
		goto fail;
	if (out != NULL)
		*out = plan;
	if (plan.n_changed > 0) {
		for (k = 0; k < plan.n; k++)
			if (plan.entries[k].state == MIGRATE_CHANGED)
				break;
		err_set(e, 409, "schema file %s changed after it was applied "
		    "(recorded sha256 %.12s..., file %.12s...): restore it and put "
		    "the change in a new numbered file", plan.entries[k].name,
		    plan.entries[k].db_checksum, plan.entries[k].file_checksum);
		goto fail;
	}
	for (k = 0; k < plan.n; k++) {
		if (plan.entries[k].state != MIGRATE_PENDING)
			continue;
		for (i = 0; i < nf && files[i].version != plan.entries[k].version; i++)
			;
		log_info("while migrating", "applying %s as %s", files[i].name,
		    db_session_user(s));
		if (db_migration_apply(s, files[i].version, files[i].name,
		    files[i].checksum, files[i].sql, e) < 0)
			goto fail;
		applied++;
		if (progress != NULL)
			progress(arg, &plan.entries[k]);
	}
	db_session_close(s);
	return applied;
fail:
	db_session_close(s);
	return -1;
}

int
migrate_check(const char *conninfo, int connect_timeout, const char *sql_dir,
    struct err *e)
{
	struct migrate_plan plan;
	struct arena *a;
	size_t k;
	int rc = -1;

	a = arena_create(0);
	if (migrate_status(conninfo, connect_timeout, sql_dir, a, &plan, e) < 0)
		goto out;
	if (plan.n_changed > 0) {
		for (k = 0; k < plan.n && plan.entries[k].state != MIGRATE_CHANGED; k++)
			;
		err_set(e, 500, "database schema does not match this server: %s "
		    "changed after it was applied (see `ingen db status`)",
		    plan.entries[k].name);
		goto out;
	}
	if (plan.n_pending > 0) {
		err_set(e, 500, "database schema is out of date (version %d, this "
		    "server needs %d, %zu file%s pending): run `ingen db migrate`",
		    plan.db_version, plan.files_version, plan.n_pending,
		    plan.n_pending == 1 ? "" : "s");
		goto out;
	}
	if (plan.n_missing > 0)
		log_warn("while checking the database schema", "the database has %zu "
		    "migration%s this server does not know (version %d, server %d)",
		    plan.n_missing, plan.n_missing == 1 ? "" : "s", plan.db_version,
		    plan.files_version);
	rc = 0;
out:
	arena_destroy(a);
	return rc;
}
