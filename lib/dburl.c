/*
 * dburl.c -- the connection string of a role: from the configuration, the
 * libpq environment, or the files of the local cluster, whose connection
 * strings and credentials format it defines.
 *
 * It owns the role names, the reading of DIR/database_url and
 * DIR/credentials, and the order of the sources.  It never connects, never
 * writes a file (lib/localpg.c does), and never logs what it reads: the
 * strings hold passwords, and every buffer that held one is wiped.
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/config.h"
#include "lib/dburl.h"
#include "lib/xmalloc.h"

/* Longest line of DIR/credentials, and of DIR/database_url. */
#define DBURL_LINE_MAX 1024
#define DBURL_FILE_MAX 8192
#define DBURL_KEY_MAX 64

static const char *const dburl_role_names[DBURL_ROLES] = {
	[DBURL_ROLE_APP] = "ingenious_app",
	[DBURL_ROLE_OWNER] = "ingenious_owner",
	[DBURL_ROLE_READONLY] = "ingenious_readonly",
	[DBURL_ROLE_SQLAGENT] = "ingenious_sqlagent",
	[DBURL_ROLE_SUPERUSER] = "postgres",
};

/* keys of DIR/credentials: "<key>_password" and "<key>_url" */
static const char *const dburl_role_keys[DBURL_ROLES] = {
	[DBURL_ROLE_APP] = "app",
	[DBURL_ROLE_OWNER] = "owner",
	[DBURL_ROLE_READONLY] = "readonly",
	[DBURL_ROLE_SQLAGENT] = "sqlagent",
	[DBURL_ROLE_SUPERUSER] = "superuser",
};

const char *
dburl_role_name(enum dburl_role role)
{
	return dburl_role_names[role];
}

const char *
dburl_role_key(enum dburl_role role)
{
	return dburl_role_keys[role];
}

static bool
dburl_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Quote a conninfo value: 'it''s' style with backslashes (libpq rules). */
static char *
dburl_quote(const char *s)
{
	size_t n = strlen(s), i, k = 0;
	char *q = xmalloc(2 * n + 3);

	q[k++] = '\'';
	for (i = 0; i < n; i++) {
		if (s[i] == '\'' || s[i] == '\\')
			q[k++] = '\\';
		q[k++] = s[i];
	}
	q[k++] = '\'';
	q[k] = '\0';
	return q;
}

char *
dburl_build(const char *socket_dir, enum dburl_role role, const char *password)
{
	char *host = dburl_quote(socket_dir);
	char *url;

	url = xasprintf("host=%s port=%s dbname=%s user=%s password=%s", host,
	    DBURL_LOCAL_PORT, role == DBURL_ROLE_SUPERUSER ? "postgres" :
	    DBURL_LOCAL_DBNAME, dburl_role_names[role], password);
	free(host);
	return url;
}

int
dburl_read_passwords(const char *path,
    char pw[DBURL_ROLES][DBURL_PASSWORD_LEN + 1], struct err *e)
{
	char line[DBURL_LINE_MAX], key[DBURL_KEY_MAX];
	bool seen[DBURL_ROLES] = { false };
	const char *val;
	size_t n;
	FILE *f;
	int r;

	f = fopen(path, "re");
	if (f == NULL)
		return err_set(e, errno == ENOENT ? 404 : 500, "could not open %s: %s",
		    path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		n = strcspn(line, "\r\n");
		line[n] = '\0';
		for (r = 0; r < DBURL_ROLES; r++) {
			snprintf(key, sizeof(key), "%s_password=", dburl_role_keys[r]);
			if (strncmp(line, key, strlen(key)) != 0)
				continue;
			val = line + strlen(key);
			if (strlen(val) != DBURL_PASSWORD_LEN)
				break;
			memcpy(pw[r], val, DBURL_PASSWORD_LEN + 1);
			seen[r] = true;
		}
	}
	memset(line, 0, sizeof(line));
	fclose(f);
	for (r = 0; r < DBURL_ROLES; r++)
		if (!seen[r])
			return err_set(e, 500, "%s lacks %s_password", path,
			    dburl_role_keys[r]);
	return 0;
}

int
dburl_local(const char *dir, enum dburl_role role, char **out, struct err *e)
{
	char pw[DBURL_ROLES][DBURL_PASSWORD_LEN + 1];
	char real[PATH_MAX];
	char *credentials, *run;
	int rc;

	*out = NULL;
	if ((int)role < 0 || role >= DBURL_ROLES)
		return err_set(e, 500, "no such role");
	if (realpath(dir, real) == NULL)
		return err_set(e, 404, "no local cluster in %s: %s", dir, strerror(errno));
	credentials = xasprintf("%s/credentials", real);
	run = xasprintf("%s/run", real);
	rc = dburl_read_passwords(credentials, pw, e);
	if (rc == 0)
		*out = dburl_build(run, role, pw[role]);
	memset(pw, 0, sizeof(pw));
	free(run);
	free(credentials);
	return rc;
}

int
dburl_local_dir(const struct config *cfg, char **out, struct err *e)
{
	*out = NULL;
	if (cfg == NULL || cfg->server.state_dir == NULL ||
	    cfg->server.state_dir[0] == '\0')
		return err_set(e, 500, "server.state_dir is not set: give the "
		    "directory of the local cluster");
	*out = xasprintf("%s/pg", cfg->server.state_dir);
	return 0;
}

/* Read a small file into a heap string without its trailing newline. */
static int
dburl_read_small(const char *path, char **out, struct err *e)
{
	char buf[DBURL_FILE_MAX];
	size_t n;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL)
		return err_set(e, errno == ENOENT ? 404 : 500, "could not open %s: %s",
		    path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	*out = xstrdup(buf);
	memset(buf, 0, sizeof(buf));
	return 0;
}

/* The application's URL of the local cluster in <server.state_dir>/pg, or
 * *out = NULL when there is no cluster there.  Returns 0, or -1 when the
 * cluster exists but its database_url cannot be read. */
static int
dburl_local_app(const struct config *cfg, char **out, struct err *e)
{
	char *path;
	int rc = 0;

	*out = NULL;
	if (cfg == NULL || cfg->server.state_dir == NULL ||
	    cfg->server.state_dir[0] == '\0')
		return 0;
	path = xasprintf("%s/pg/database_url", cfg->server.state_dir);
	if (dburl_exists(path)) {
		rc = dburl_read_small(path, out, e);
		if (rc == 0 && (*out)[0] == '\0') {
			free(*out);
			*out = NULL;
			rc = err_set(e, 500, "%s is empty", path);
		}
	}
	free(path);
	return rc;
}

int
dburl_resolve(const struct config *cfg, enum dburl_role role, char **out,
    const char **source, struct err *e)
{
	static const char *const libpq_env[] = {
		"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE", NULL
	};
	const char *v;
	char *path, *dir;
	size_t i;
	int rc;

	*out = NULL;
	if (cfg != NULL && cfg->chat_history.database_url != NULL &&
	    cfg->chat_history.database_url[0] != '\0') {
		*out = xstrdup(cfg->chat_history.database_url);
		*source = "chat_history.database_url";
		return 0;
	}
	for (i = 0; libpq_env[i] != NULL; i++) {
		v = getenv(libpq_env[i]);
		if (v != NULL && v[0] != '\0') {
			*out = xstrdup("");
			*source = "libpq environment";
			return 0;
		}
	}
	if (role == DBURL_ROLE_APP) {
		if (dburl_local_app(cfg, out, e) < 0)
			return -1;
		if (*out != NULL) {
			*source = "local cluster (server.state_dir/pg)";
			return 0;
		}
	} else if (cfg != NULL && cfg->server.state_dir != NULL &&
	    cfg->server.state_dir[0] != '\0') {
		path = xasprintf("%s/pg/credentials", cfg->server.state_dir);
		if (dburl_exists(path)) {
			dir = xasprintf("%s/pg", cfg->server.state_dir);
			rc = dburl_local(dir, role, out, e);
			free(dir);
			free(path);
			if (rc < 0)
				return -1;
			*source = "local cluster (server.state_dir/pg)";
			return 0;
		}
		free(path);
	}
	*out = xstrdup("");
	*source = "libpq defaults";
	return 0;
}
