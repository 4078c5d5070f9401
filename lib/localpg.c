/*
 * localpg.c -- the private PostgreSQL cluster of a project directory:
 * initdb, configuration (unix socket only), start, stop, and the generated
 * credentials.
 *
 * It runs PostgreSQL's own programs (initdb, pg_ctl) in forked children,
 * as the `postgres` OS user when called as root, with a minimal
 * environment, no inherited descriptors and a hard time limit each.  It
 * never prints a password; passwords live only in DIR/credentials and
 * DIR/database_url (0600).  SQL goes through a session of the database
 * layer (lib/db_session.h); the format of the connection strings and the
 * reading of the credentials are lib/dburl.c's.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/db_session.h"
#include "lib/dburl.h"
#include "lib/localpg.h"
#include "lib/log.h"
#include "lib/migrate.h"
#include "lib/xmalloc.h"

#define LOCALPG_SOCKET_NAME     "/.s.PGSQL." DBURL_LOCAL_PORT ".lock"
#define LOCALPG_SOCKET_MAX      107    /* sun_path is 108 bytes with the NUL */
#define LOCALPG_INITDB_TIMEOUT  180
#define LOCALPG_START_TIMEOUT   30
#define LOCALPG_STOP_TIMEOUT    60
#define LOCALPG_DEFAULT_BINDIR  "/usr/lib/postgresql/15/bin"
#define LOCALPG_STATUS_TIMEOUT  10     /* pg_ctl status, seconds */
#define LOCALPG_SPAWN_SLACK     10     /* what pg_ctl may take beyond its own -t */
#define LOCALPG_CONNECT_TIMEOUT 10     /* bootstrap and migration sessions, seconds */
#define LOCALPG_POLL_MS         20     /* how often a child's exit is checked */
#define LOCALPG_MAX_FD          65536  /* highest descriptor a child closes */
#define LOCALPG_EXIT_NOACCESS   125    /* child: the cluster user cannot reach DIR */
#define LOCALPG_EXIT_NOSWITCH   126    /* child: could not become the cluster user */
#define LOCALPG_EXIT_NOEXEC     127    /* child: could not run the program */
#define LOCALPG_MAX_ARGS        24

/* Everything about one cluster directory. */
struct localpg {
	char *dir;                 /* absolute */
	char *data, *run, *log, *credentials, *database_url;
	char bindir[PATH_MAX];
	bool drop;                 /* run PostgreSQL as another user */
	uid_t uid;
	gid_t gid;
	char user[64];
	char passwords[DBURL_ROLES][DBURL_PASSWORD_LEN + 1];
};

static void
localpg_free(struct localpg *pg)
{
	free(pg->dir);
	free(pg->data);
	free(pg->run);
	free(pg->log);
	free(pg->credentials);
	free(pg->database_url);
	memset(pg->passwords, 0, sizeof(pg->passwords));
}

static bool
localpg_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Find initdb and pg_ctl: $INGEN_PG_BINDIR, `pg_config --bindir`, then
 * the Debian location of PostgreSQL 15. */
static int
localpg_find_bindir(struct localpg *pg, struct err *e)
{
	const char *env = getenv("INGEN_PG_BINDIR");
	char line[PATH_MAX], probe[PATH_MAX + 16];
	FILE *f;
	size_t n;

	if (env != NULL && env[0] != '\0') {
		snprintf(probe, sizeof(probe), "%s/initdb", env);
		if (access(probe, X_OK) != 0)
			return err_set(e, 500, "INGEN_PG_BINDIR=%s holds no initdb", env);
		snprintf(pg->bindir, sizeof(pg->bindir), "%s", env);
		return 0;
	}
	f = popen("pg_config --bindir 2>/dev/null", "r");
	if (f != NULL) {
		if (fgets(line, sizeof(line), f) != NULL) {
			n = strcspn(line, "\r\n");
			line[n] = '\0';
			snprintf(probe, sizeof(probe), "%s/initdb", line);
			if (n > 0 && access(probe, X_OK) == 0) {
				snprintf(pg->bindir, sizeof(pg->bindir), "%s", line);
				pclose(f);
				return 0;
			}
		}
		pclose(f);
	}
	if (access(LOCALPG_DEFAULT_BINDIR "/initdb", X_OK) == 0) {
		snprintf(pg->bindir, sizeof(pg->bindir), "%s", LOCALPG_DEFAULT_BINDIR);
		return 0;
	}
	return err_set(e, 500, "could not find the PostgreSQL server programs "
	    "(initdb): install postgresql, or set INGEN_PG_BINDIR");
}

/* mkdir -p with mode for the last component. */
static int
localpg_mkdirs(const char *path, mode_t mode, struct err *e)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return err_set(e, 500, "path too long: %s", path);
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return err_set(e, 500, "could not create directory %s: %s", buf,
			    strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return err_set(e, 500, "could not create directory %s: %s", buf,
		    strerror(errno));
	return 0;
}

/* Resolve dir, decide who runs PostgreSQL, find its programs. */
static int
localpg_open(struct localpg *pg, const char *dir, bool create, struct err *e)
{
	const char *name;
	struct passwd *pw;
	char real[PATH_MAX];

	memset(pg, 0, sizeof(*pg));
	if (dir == NULL || dir[0] == '\0')
		return err_set(e, 500, "no directory given for the local cluster");
	/* refuse a too long socket path before creating anything */
	real[0] = '\0';
	if (dir[0] == '/')
		snprintf(real, sizeof(real), "%s", dir);
	else if (getcwd(real, sizeof(real)) != NULL)
		snprintf(real + strlen(real), sizeof(real) - strlen(real), "/%s", dir);
	if (strlen(real) + strlen("/run" LOCALPG_SOCKET_NAME) > LOCALPG_SOCKET_MAX)
		return err_set(e, 500, "the socket path %s/run/.s.PGSQL.%s would be "
		    "longer than %d bytes: choose a shorter directory", real,
		    DBURL_LOCAL_PORT, LOCALPG_SOCKET_MAX);
	if (create && localpg_mkdirs(dir, 0755, e) < 0)
		return -1;
	if (realpath(dir, real) == NULL) {
		if (errno == ENOENT && !create)
			return err_set(e, 404, "no local cluster in %s: run `ingen db "
			    "init-local %s`", dir, dir);
		return err_set(e, 500, "could not resolve %s: %s", dir, strerror(errno));
	}
	pg->dir = xstrdup(real);
	pg->data = xasprintf("%s/data", real);
	pg->run = xasprintf("%s/run", real);
	pg->log = xasprintf("%s/log", real);
	pg->credentials = xasprintf("%s/credentials", real);
	pg->database_url = xasprintf("%s/database_url", real);

	if (strpbrk(pg->dir, "'\\\n") != NULL) {
		err_set(e, 500, "the directory %s contains a quote, a backslash or "
		    "a newline: choose another one", pg->dir);
		goto fail;
	}
	if (strlen(pg->run) + strlen(LOCALPG_SOCKET_NAME) > LOCALPG_SOCKET_MAX) {
		err_set(e, 500, "the socket path %s/.s.PGSQL.%s would be longer than "
		    "%d bytes: choose a shorter directory", pg->run, DBURL_LOCAL_PORT,
		    LOCALPG_SOCKET_MAX);
		goto fail;
	}
	if (geteuid() == 0) {
		name = getenv("INGEN_PG_USER");
		if (name == NULL || name[0] == '\0')
			name = "postgres";
		pw = getpwnam(name);
		if (pw == NULL) {
			err_set(e, 500, "PostgreSQL cannot run as root and there is no "
			    "user %s to run it as: install postgresql, set INGEN_PG_USER, "
			    "or run as an unprivileged user", name);
			goto fail;
		}
		if (pw->pw_uid == 0) {
			err_set(e, 500, "INGEN_PG_USER %s is root: PostgreSQL refuses to "
			    "run as root", name);
			goto fail;
		}
		pg->drop = true;
		pg->uid = pw->pw_uid;
		pg->gid = pw->pw_gid;
		snprintf(pg->user, sizeof(pg->user), "%s", pw->pw_name);
	} else {
		pg->uid = geteuid();
		pg->gid = getegid();
	}
	if (localpg_find_bindir(pg, e) < 0)
		goto fail;
	return 0;
fail:
	localpg_free(pg);
	return -1;
}

/* A directory owned by the cluster's user. */
static int
localpg_own_dir(struct localpg *pg, const char *path, mode_t mode, struct err *e)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return err_set(e, 500, "could not create directory %s: %s", path,
		    strerror(errno));
	if (pg->drop && chown(path, pg->uid, pg->gid) < 0)
		return err_set(e, 500, "could not give %s to %s: %s", path, pg->user,
		    strerror(errno));
	if (chmod(path, mode) < 0)
		return err_set(e, 500, "could not set the mode of %s: %s", path,
		    strerror(errno));
	return 0;
}

/* The last non-empty line of a log file, for an error message. */
static const char *
localpg_log_tail(const char *path, char *buf, size_t size)
{
	char chunk[4096];
	ssize_t n;
	char *end, *start;
	int fd;

	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return buf;
	if (lseek(fd, 0, SEEK_END) > (off_t)sizeof(chunk) - 1)
		lseek(fd, -(off_t)(sizeof(chunk) - 1), SEEK_END);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, chunk, sizeof(chunk) - 1);
	close(fd);
	if (n <= 0)
		return buf;
	chunk[n] = '\0';
	end = chunk + n;
	while (end > chunk && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		*--end = '\0';
	start = strrchr(chunk, '\n');
	start = start != NULL ? start + 1 : chunk;
	n = (ssize_t)strlen(start);
	if ((size_t)n >= size)
		n = (ssize_t)size - 1;
	memcpy(buf, start, (size_t)n);
	buf[n] = '\0';
	return buf;
}

/*
 * Run argv[0] with argv in a child: as the cluster's user, stdin from
 * /dev/null, stdout and stderr appended to logpath, no other descriptor, a
 * minimal environment, at most timeout_s seconds.  Returns the exit code,
 * or -1 with `e` set when it could not run or was killed.
 */
static int
localpg_spawn(struct localpg *pg, const char *const argv[], const char *logpath,
    int timeout_s, struct err *e)
{
	static const char *const env[] = { "PATH=/usr/local/bin:/usr/bin:/bin",
	    "LC_ALL=C", "TZ=UTC", NULL };
	char *av[LOCALPG_MAX_ARGS + 1], *envp[8];
	char home[PATH_MAX + 8];
	struct timespec pause = { 0, LOCALPG_POLL_MS * 1000L * 1000L };
	time_t deadline;
	pid_t pid, w;
	long maxfd;
	int status, fd, i;

	snprintf(home, sizeof(home), "HOME=%s", pg->dir);
	pid = fork();
	if (pid < 0)
		return err_set(e, 500, "could not fork: %s", strerror(errno));
	if (pid == 0) {
		if (pg->drop && (initgroups(pg->user, pg->gid) < 0 ||
		    setgid(pg->gid) < 0 || setuid(pg->uid) < 0))
			_exit(LOCALPG_EXIT_NOSWITCH);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 0);
			if (fd > 0)
				close(fd);
		}
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd < 0)
			fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
		maxfd = sysconf(_SC_OPEN_MAX);
		if (maxfd < 0 || maxfd > LOCALPG_MAX_FD)
			maxfd = LOCALPG_MAX_FD;
		for (i = 3; i < maxfd; i++)
			close(i);
		if (access(pg->data, R_OK | W_OK | X_OK) < 0) {
			dprintf(2, "ingen: the user running PostgreSQL cannot use %s: %s\n",
			    pg->data, strerror(errno));
			_exit(LOCALPG_EXIT_NOACCESS);
		}
		if (chdir(pg->data) < 0 && chdir("/") < 0)
			_exit(LOCALPG_EXIT_NOSWITCH);
		/* execve wants writable strings; this child owns its heap */
		for (i = 0; i < LOCALPG_MAX_ARGS && argv[i] != NULL; i++)
			av[i] = xstrdup(argv[i]);
		av[i] = NULL;
		for (i = 0; env[i] != NULL; i++)
			envp[i] = xstrdup(env[i]);
		envp[i++] = home;
		envp[i] = NULL;
		execve(av[0], av, envp);
		dprintf(2, "ingen: could not run %s: %s\n", argv[0], strerror(errno));
		_exit(LOCALPG_EXIT_NOEXEC);
	}

	deadline = time(NULL) + timeout_s;
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return err_set(e, 500, "could not wait for %s: %s", argv[0],
			    strerror(errno));
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return err_set(e, 500, "%s did not finish within %d s (see %s)",
			    argv[0], timeout_s, logpath);
		}
		nanosleep(&pause, NULL);
	}
	if (!WIFEXITED(status))
		return err_set(e, 500, "%s died of signal %d (see %s)", argv[0],
		    WTERMSIG(status), logpath);
	if (WEXITSTATUS(status) == LOCALPG_EXIT_NOSWITCH)
		return err_set(e, 500, "could not switch to user %s to run %s",
		    pg->user, argv[0]);
	if (WEXITSTATUS(status) == LOCALPG_EXIT_NOACCESS)
		return err_set(e, 500, "user %s cannot use %s: every parent "
		    "directory must be searchable by it (chmod o+x)",
		    pg->drop ? pg->user : "running PostgreSQL", pg->data);
	return WEXITSTATUS(status);
}

/* Write a 0600 file atomically (write a temporary, rename). */
static int
localpg_write_private(const char *path, const char *text, struct err *e)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text), off = 0;
	ssize_t w;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, 500, "could not create %s: %s", tmp, strerror(errno));
	while (off < len) {
		w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			close(fd);
			unlink(tmp);
			return err_set(e, 500, "could not write %s: %s", tmp, strerror(errno));
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		unlink(tmp);
		return err_set(e, 500, "could not write %s: %s", tmp, strerror(errno));
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return err_set(e, 500, "could not rename %s: %s", tmp, strerror(errno));
	}
	return 0;
}

/* A random password of letters and digits from getrandom(2). */
static int
localpg_password(char out[DBURL_PASSWORD_LEN + 1], struct err *e)
{
	static const char alnum[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r[64];
	size_t i = 0, k = 0;

	while (i < DBURL_PASSWORD_LEN) {
		if (k == 0 || k == sizeof(r)) {
			if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
				return err_set(e, 500, "could not get random bytes: %s",
				    strerror(errno));
			k = 0;
		}
		/* 248 = 4 * 62: reject above it so every character is equally likely */
		if (r[k] < 248)
			out[i++] = alnum[r[k] % 62];
		k++;
	}
	out[i] = '\0';
	memset(r, 0, sizeof(r));
	return 0;
}

/* The connection string of `role` on this cluster (heap, holds a password). */
static char *
localpg_build_url(const struct localpg *pg, enum dburl_role role)
{
	return dburl_build(pg->run, role, pg->passwords[role]);
}

/* Write DIR/credentials and DIR/database_url from pg->passwords. */
static int
localpg_store_credentials(struct localpg *pg, struct err *e)
{
	struct buf b = BUF_INIT;
	char *url;
	int r, rc;

	buf_puts(&b, "# ingen db init-local: passwords and connection strings of "
	    "the local cluster's roles.\n# Private (0600): never copy it into a "
	    "log or a ticket.\n");
	for (r = 0; r < DBURL_ROLES; r++)
		buf_printf(&b, "%s_password=%s\n", dburl_role_key((enum dburl_role)r),
		    pg->passwords[r]);
	for (r = 0; r < DBURL_ROLES; r++) {
		url = localpg_build_url(pg, (enum dburl_role)r);
		buf_printf(&b, "%s_url=%s\n", dburl_role_key((enum dburl_role)r), url);
		memset(url, 0, strlen(url));
		free(url);
	}
	rc = localpg_write_private(pg->credentials, buf_cstr(&b), e);
	if (rc == 0) {
		buf_reset(&b);
		url = localpg_build_url(pg, DBURL_ROLE_APP);
		buf_printf(&b, "%s\n", url);
		memset(url, 0, strlen(url));
		free(url);
		rc = localpg_write_private(pg->database_url, buf_cstr(&b), e);
	}
	/* buf may have moved while growing; wipe what it holds now */
	if (b.data != NULL)
		memset(b.data, 0, b.cap);
	buf_free(&b);
	return rc;
}

static int
localpg_initdb(struct localpg *pg, struct err *e)
{
	char initdb[PATH_MAX + 16], pwopt[PATH_MAX + 16], logpath[PATH_MAX];
	char pwfile[PATH_MAX], conf[PATH_MAX], tail[300];
	char *settings;
	const char *argv[16];
	int r, fd, rc, n = 0;
	FILE *f;

	for (r = 0; r < DBURL_ROLES; r++)
		if (localpg_password(pg->passwords[r], e) < 0)
			return -1;
	if (localpg_own_dir(pg, pg->data, 0700, e) < 0 ||
	    localpg_own_dir(pg, pg->run, 0755, e) < 0 ||
	    localpg_own_dir(pg, pg->log, 0750, e) < 0)
		return -1;
	/* The credentials first: a cluster never exists without them. */
	if (localpg_store_credentials(pg, e) < 0)
		return -1;

	/* initdb reads the superuser's password from a file it can read */
	snprintf(pwfile, sizeof(pwfile), "%s/.initdb-pw", pg->run);
	unlink(pwfile);
	fd = open(pwfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, 500, "could not create %s: %s", pwfile, strerror(errno));
	if (dprintf(fd, "%s\n", pg->passwords[DBURL_ROLE_SUPERUSER]) < 0 ||
	    (pg->drop && fchown(fd, pg->uid, pg->gid) < 0)) {
		close(fd);
		unlink(pwfile);
		return err_set(e, 500, "could not write %s: %s", pwfile, strerror(errno));
	}
	close(fd);

	snprintf(initdb, sizeof(initdb), "%s/initdb", pg->bindir);
	snprintf(pwopt, sizeof(pwopt), "--pwfile=%s", pwfile);
	snprintf(logpath, sizeof(logpath), "%s/initdb.log", pg->log);
	argv[n++] = initdb;
	argv[n++] = "-D";
	argv[n++] = pg->data;
	argv[n++] = "-U";
	argv[n++] = "postgres";
	argv[n++] = pwopt;
	argv[n++] = "--auth-local=scram-sha-256";
	argv[n++] = "--auth-host=reject";
	argv[n++] = "-E";
	argv[n++] = "UTF8";
	argv[n++] = "--no-locale";
	argv[n++] = "--no-instructions";
	argv[n] = NULL;
	log_info("while creating the local database", "initdb %s as %s", pg->data,
	    pg->drop ? pg->user : "the current user");
	rc = localpg_spawn(pg, argv, logpath, LOCALPG_INITDB_TIMEOUT, e);
	unlink(pwfile);
	if (rc < 0)
		return -1;
	if (rc != 0)
		return err_set(e, 500, "initdb failed with status %d: %s (see %s)", rc,
		    localpg_log_tail(logpath, tail, sizeof(tail)), logpath);

	/* Only a unix socket in DIR/run; no TCP listener at all.  (A quote
	 * in the path was refused by localpg_open.) */
	settings = xasprintf(
	    "\n# Added by `ingen db init-local`: a private cluster reachable only\n"
	    "# through the unix socket below.\n"
	    "listen_addresses = ''\n"
	    "port = %s\n"
	    "unix_socket_directories = '%s'\n"
	    "unix_socket_permissions = 0777\n"
	    "max_connections = 100\n"
	    "password_encryption = 'scram-sha-256'\n"
	    "timezone = 'UTC'\n"
	    "log_timezone = 'UTC'\n"
	    "log_line_prefix = '%%m [%%p] %%q%%u@%%d '\n"
	    "log_connections = off\n",
	    DBURL_LOCAL_PORT, pg->run);
	snprintf(conf, sizeof(conf), "%s/postgresql.conf", pg->data);
	f = fopen(conf, "ae");
	if (f == NULL) {
		free(settings);
		return err_set(e, 500, "could not open %s: %s", conf, strerror(errno));
	}
	rc = fputs(settings, f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	free(settings);
	if (rc < 0)
		return err_set(e, 500, "could not write %s: %s", conf, strerror(errno));
	return 0;
}

/* pg_ctl status: 0 running, 3 stopped, 4 no data directory. */
static int
localpg_pgctl_status(struct localpg *pg, struct err *e)
{
	char pgctl[PATH_MAX + 16], logpath[PATH_MAX];
	const char *argv[] = { pgctl, "status", "-D", pg->data, NULL };

	snprintf(pgctl, sizeof(pgctl), "%s/pg_ctl", pg->bindir);
	snprintf(logpath, sizeof(logpath), "%s/pg_ctl.log", pg->log);
	return localpg_spawn(pg, argv, logpath, LOCALPG_STATUS_TIMEOUT, e);
}

static int
localpg_do_start(struct localpg *pg, struct err *e)
{
	char pgctl[PATH_MAX + 16], logpath[PATH_MAX], serverlog[PATH_MAX];
	char timeout[16], tail[300];
	const char *argv[] = { pgctl, "start", "-D", pg->data, "-l", serverlog,
	    "-w", "-t", timeout, "-s", NULL };
	int rc;

	rc = localpg_pgctl_status(pg, e);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return 0;
	snprintf(pgctl, sizeof(pgctl), "%s/pg_ctl", pg->bindir);
	snprintf(logpath, sizeof(logpath), "%s/pg_ctl.log", pg->log);
	snprintf(serverlog, sizeof(serverlog), "%s/postgresql.log", pg->log);
	snprintf(timeout, sizeof(timeout), "%d", LOCALPG_START_TIMEOUT);
	log_info("while starting the local database", "starting PostgreSQL in %s",
	    pg->dir);
	rc = localpg_spawn(pg, argv, logpath, LOCALPG_START_TIMEOUT + LOCALPG_SPAWN_SLACK, e);
	if (rc < 0)
		return -1;
	if (rc != 0)
		return err_set(e, 500, "could not start PostgreSQL in %s: %s (see %s)",
		    pg->dir, localpg_log_tail(serverlog, tail, sizeof(tail)), serverlog);
	return 0;
}

int
localpg_start(const char *dir, struct err *e)
{
	struct localpg pg;
	int rc;

	if (localpg_open(&pg, dir, false, e) < 0)
		return -1;
	if (!localpg_exists(pg.data)) {
		err_set(e, 404, "no local cluster in %s: run `ingen db init-local %s`",
		    pg.dir, dir);
		localpg_free(&pg);
		return -1;
	}
	rc = localpg_do_start(&pg, e);
	localpg_free(&pg);
	return rc;
}

int
localpg_stop(const char *dir, struct err *e)
{
	struct localpg pg;
	char pgctl[PATH_MAX + 16], logpath[PATH_MAX], timeout[16];
	const char *argv[] = { pgctl, "stop", "-D", NULL, "-m", "fast", "-w",
	    "-t", timeout, "-s", NULL };
	int rc;

	if (localpg_open(&pg, dir, false, e) < 0)
		return -1;
	argv[3] = pg.data;
	if (!localpg_exists(pg.data)) {
		err_set(e, 404, "no local cluster in %s", pg.dir);
		localpg_free(&pg);
		return -1;
	}
	rc = localpg_pgctl_status(&pg, e);
	if (rc != 0) {
		localpg_free(&pg);
		return rc < 0 ? -1 : 0;     /* stopped, or no cluster: nothing to do */
	}
	snprintf(pgctl, sizeof(pgctl), "%s/pg_ctl", pg.bindir);
	snprintf(logpath, sizeof(logpath), "%s/pg_ctl.log", pg.log);
	snprintf(timeout, sizeof(timeout), "%d", LOCALPG_STOP_TIMEOUT);
	log_info("while stopping the local database", "stopping PostgreSQL in %s",
	    pg.dir);
	rc = localpg_spawn(&pg, argv, logpath, LOCALPG_STOP_TIMEOUT + LOCALPG_SPAWN_SLACK, e);
	if (rc > 0)
		err_set(e, 500, "pg_ctl stop failed with status %d (see %s)", rc, logpath);
	localpg_free(&pg);
	return rc == 0 ? 0 : -1;
}

int
localpg_init(const char *dir, const char *sql_dir, struct err *e)
{
	struct localpg pg;
	struct db_session *s;
	struct db_local_setup setup;
	struct arena *a = NULL;
	char version[PATH_MAX];
	char *url = NULL;
	int rc = -1, applied;

	if (localpg_open(&pg, dir, true, e) < 0)
		return -1;
	snprintf(version, sizeof(version), "%s/PG_VERSION", pg.data);
	if (localpg_exists(version)) {
		if (dburl_read_passwords(pg.credentials, pg.passwords, e) < 0) {
			err_prefix(e, "the cluster in %s exists but its credentials "
			    "do not", pg.dir);
			goto out;
		}
		/* rewrite them: the URLs follow the directory if it moved */
		if (localpg_store_credentials(&pg, e) < 0)
			goto out;
	} else if (localpg_initdb(&pg, e) < 0) {
		goto out;
	}
	if (localpg_do_start(&pg, e) < 0)
		goto out;

	url = localpg_build_url(&pg, DBURL_ROLE_SUPERUSER);
	s = db_session_open(url, LOCALPG_CONNECT_TIMEOUT, e);
	memset(url, 0, strlen(url));
	free(url);
	url = NULL;
	if (s == NULL)
		goto out;
	setup.dbname = DBURL_LOCAL_DBNAME;
	setup.owner.name = dburl_role_name(DBURL_ROLE_OWNER);
	setup.owner.password = pg.passwords[DBURL_ROLE_OWNER];
	setup.app.name = dburl_role_name(DBURL_ROLE_APP);
	setup.app.password = pg.passwords[DBURL_ROLE_APP];
	setup.readonly.name = dburl_role_name(DBURL_ROLE_READONLY);
	setup.readonly.password = pg.passwords[DBURL_ROLE_READONLY];
	setup.sqlagent.name = dburl_role_name(DBURL_ROLE_SQLAGENT);
	setup.sqlagent.password = pg.passwords[DBURL_ROLE_SQLAGENT];
	rc = db_local_bootstrap(s, &setup, e);
	db_session_close(s);
	if (rc < 0)
		goto out;
	rc = -1;

	url = localpg_build_url(&pg, DBURL_ROLE_OWNER);
	a = arena_create(0);
	applied = migrate_apply(url, LOCALPG_CONNECT_TIMEOUT, sql_dir, a, NULL, NULL, NULL, e);
	if (applied < 0)
		goto out;
	log_info("while creating the local database", "local cluster ready in %s "
	    "(%d migration%s applied)", pg.dir, applied, applied == 1 ? "" : "s");
	rc = 0;
out:
	if (url != NULL) {
		memset(url, 0, strlen(url));
		free(url);
	}
	arena_destroy(a);
	localpg_free(&pg);
	return rc;
}
