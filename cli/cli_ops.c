/*
 * cli_ops.c -- the commands of an operator: the prerequisite checks of
 * `ingen validate` (database reachable and its schema current, every model's
 * endpoint reachable, the port free), and `ingen status`, `ingen reload`,
 * `ingen stop`, which find a running master by the record it keeps in its
 * state directory (lib/runfile.h) or by a pid file, signal it, and read its
 * state from its own routes (/metrics, /api/v1/ready) on loopback.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/b64.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/dburl.h"
#include "lib/llm.h"
#include "lib/migrate.h"
#include "lib/runfile.h"
#include "lib/xmalloc.h"
#include "cli/cli.h"

#define CLI_OPS_EXIT_OK          0
#define CLI_OPS_EXIT_FAILURE     1
#define CLI_OPS_EXIT_USAGE       2
#define CLI_OPS_EXIT_NOT_RUNNING 3   /* as LSB's `status` */
#define CLI_OPS_EXIT_CHECKS      4   /* validate: a prerequisite failed */
#define CLI_OPS_PROBE_S          10  /* a model endpoint's reachability */
#define CLI_OPS_HTTP_MS          5000
#define CLI_OPS_HTTP_MAX         (4 << 20)

/* ---- ingen validate: the prerequisites ------------------------------------ */

static int cli_ops_failed;

static void
cli_ops_line(bool ok, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cli_ops_line(bool ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("%-5s %s: ", ok ? "ok" : "FAIL", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok)
		cli_ops_failed++;
}

static void
cli_ops_check_database(const struct config *cfg)
{
	const char *source = NULL;
	char *url = NULL;
	struct err e;

	err_clear(&e);
	if (dburl_resolve(cfg, DBURL_ROLE_APP, &url, &source, &e) != 0) {
		cli_ops_line(false, "database", "%s", e.msg);
		return;
	}
	if (migrate_check(url, cfg->chat_history.connect_timeout,
	    getenv("INGEN_SQL_DIR"), &e) == 0) {
		cli_ops_line(true, "database", "reachable (%s), schema current", source);
	} else if (e.status == 503 && strcmp(source, "libpq defaults") == 0) {
		cli_ops_line(false, "database", "none is configured (chat_history."
		    "database_url, the PG* environment, or a local cluster in %s/pg) "
		    "and libpq's defaults do not answer: %s; set "
		    "INGENIOUS_CHAT_HISTORY__DATABASE_URL or run `ingen db init-local`",
		    cfg->server.state_dir, e.msg);
	} else {
		cli_ops_line(false, "database", "%s (%s)", e.msg, source);
	}
	if (url != NULL) {
		explicit_bzero(url, strlen(url));
		free(url);
	}
}

static void
cli_ops_check_models(const struct config *cfg)
{
	char what[160];
	struct err e;
	size_t i;
	int st;

	if (cfg->n_models == 0) {
		cli_ops_line(false, "models", "none configured (INGENIOUS_MODELS__0__MODEL, "
		    "..._BASE_URL, ..._API_KEY, ..._DEPLOYMENT; etc/env.example)");
		return;
	}
	for (i = 0; i < cfg->n_models; i++) {
		const struct config_model *m = &cfg->models[i];

		snprintf(what, sizeof(what), "model %s", m->model != NULL ? m->model : "?");
		err_clear(&e);
		st = llm_probe(cfg, m, CLI_OPS_PROBE_S, &e);
		if (st < 0)
			cli_ops_line(false, what, "not reachable: %s", e.msg);
		else
			cli_ops_line(true, what, "endpoint reachable (HTTP %d)", st);
	}
}

static void
cli_ops_check_port(const struct config *cfg)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int fd, rc, one = 1, err = 0;
	bool bound = false;

	if (getenv("LISTEN_FDS") != NULL) {
		cli_ops_line(true, "port", "the socket comes from systemd (LISTEN_FDS)");
		return;
	}
	snprintf(port, sizeof(port), "%d", cfg->web.port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(cfg->web.ip_address, port, &hints, &res);
	if (rc != 0) {
		cli_ops_line(false, "port", "web_configuration.ip_address \"%s\": %s",
		    cfg->web.ip_address, gai_strerror(rc));
		return;
	}
	for (ai = res; ai != NULL && !bound; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			bound = true;
		else
			err = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (bound)
		cli_ops_line(true, "port", "%s:%d is free", cfg->web.ip_address, cfg->web.port);
	else if (err == EADDRINUSE)
		cli_ops_line(false, "port", "%s:%d is in use (web_configuration.port; "
		    "a server running already? see `ingen status`)", cfg->web.ip_address,
		    cfg->web.port);
	else
		cli_ops_line(false, "port", "cannot listen on %s:%d: %s%s",
		    cfg->web.ip_address, cfg->web.port, strerror(err),
		    err == EACCES ? " (a port below 1024 needs CAP_NET_BIND_SERVICE)" : "");
}

int
cli_validate_checks(const struct config *cfg)
{
	cli_ops_failed = 0;
	cli_ops_check_database(cfg);
	cli_ops_check_models(cfg);
	cli_ops_check_port(cfg);
	if (cli_ops_failed > 0) {
		printf("%d check%s failed\n", cli_ops_failed, cli_ops_failed == 1 ? "" : "s");
		return CLI_OPS_EXIT_CHECKS;
	}
	printf("every check passed\n");
	return CLI_OPS_EXIT_OK;
}

/* ---- finding the running master ------------------------------------------- */

struct cli_ops_target {
	struct config *cfg;
	char where[4200];          /* the file it was found by */
	struct runfile rf;
	bool from_runfile;
};

static const char cli_ops_usage_fmt[] =
"Usage: ingen %s [-c FILE] [--pidfile FILE]%s\n"
"\n"
"%s"
"\n"
"The server is found by the record its master keeps in its state directory\n"
"(<server.state_dir>/ingen.run: pid, address, start time), or by the pid file\n"
"given with --pidfile (or server.pidfile), with the address then taken from\n"
"the configuration (web_configuration.ip_address and port).\n"
"\n"
"Options:\n"
"  -c, --config FILE   configuration file (for server.state_dir, server.pidfile,\n"
"                      the address, and the credentials /metrics may need)\n"
"      --pidfile FILE  the master's pid file instead of the state directory's record\n"
"%s"
"  -h, --help          this help\n"
"\n"
"Exit codes: %s\n";

static void
cli_ops_usage(FILE *f, const char *cmd)
{
	if (strcmp(cmd, "status") == 0)
		fprintf(f, cli_ops_usage_fmt, cmd, "",
		    "Is a server running?  Its pid, address, uptime, configuration generation,\n"
		    "workers, requests and tokens served, and whether its database answers.\n",
		    "",
		    "0 running, 1 running but not answering, 2 usage or configuration,\n"
		    "3 not running.");
	else if (strcmp(cmd, "reload") == 0)
		fprintf(f, cli_ops_usage_fmt, cmd, " [--timeout S]",
		    "Reload a running server (SIGHUP to its master) and wait until the new\n"
		    "configuration generation serves, or the reload is refused (the old one\n"
		    "keeps serving; the server's log says why).  For systemd's ExecReload.\n",
		    "      --timeout S     seconds to wait for the reload (default 60)\n",
		    "0 reloaded, 1 refused or not seen within the timeout, 2 usage or\n"
		    "configuration, 3 not running.");
	else
		fprintf(f, cli_ops_usage_fmt, cmd, " [--now] [--timeout S]",
		    "Stop a running server: SIGTERM to its master, which drains the requests in\n"
		    "flight (server.shutdown_timeout), and wait until it has exited.\n",
		    "      --now           stop at once (SIGQUIT): requests in flight are cut\n"
		    "      --timeout S     seconds to wait (default server.shutdown_timeout + 10)\n",
		    "0 stopped, 1 still running after the timeout, 2 usage or configuration,\n"
		    "3 not running.");
}

/* Has pid exited (gone, or a zombie its parent has not reaped yet)? */
static bool
cli_ops_gone(pid_t pid)
{
	char path[64], buf[512], *paren;
	FILE *f;
	size_t n;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) S ...": the state after the last parenthesis */
	paren = strrchr(buf, ')');
	return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

/* Is pid a live `ingen` process (not a pid reused by another program)? */
static bool
cli_ops_alive(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;
	size_t n;
	const char *base;

	if (cli_ops_gone(pid))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return true;   /* no /proc: trust the signal */
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* argv[0]: ingen, /usr/bin/ingen, .../_build/ingen */
	base = strrchr(buf, '/');
	base = base != NULL ? base + 1 : buf;
	return strncmp(base, "ingen", 5) == 0;
}

/*
 * Load the configuration and find the master.  Returns 0, or the exit code
 * (2 configuration, 3 not running) with the reason printed.
 */
static int
cli_ops_find(const char *cmd, const char *config_file, const char *pidfile,
    struct cli_ops_target *t)
{
	struct err e;
	int rc;

	memset(t, 0, sizeof(*t));
	if ((t->cfg = cli_config_load_file(config_file)) == NULL)
		return CLI_OPS_EXIT_USAGE;
	if (pidfile == NULL && t->cfg->server.pidfile != NULL &&
	    t->cfg->server.pidfile[0] != '\0')
		pidfile = t->cfg->server.pidfile;
	err_clear(&e);
	if (pidfile != NULL) {
		snprintf(t->where, sizeof(t->where), "%s", pidfile);
		rc = runfile_read_pid(pidfile, &t->rf.pid, &e);
		snprintf(t->rf.listen, sizeof(t->rf.listen), "%s:%d",
		    t->cfg->web.ip_address, t->cfg->web.port);
	} else {
		if (runfile_path(t->cfg->server.state_dir, t->where, sizeof(t->where)) != 0) {
			fprintf(stderr, "ingen %s: no server.state_dir and no pid file: "
			    "give --pidfile\n", cmd);
			return CLI_OPS_EXIT_USAGE;
		}
		rc = runfile_read(t->where, &t->rf, &e);
		t->from_runfile = true;
	}
	if (rc != 0) {
		if (e.status == 404)
			fprintf(stderr, "ingen %s: no server is running (no %s)\n", cmd, t->where);
		else
			fprintf(stderr, "ingen %s: %s\n", cmd, e.msg);
		return e.status == 404 ? CLI_OPS_EXIT_NOT_RUNNING : CLI_OPS_EXIT_FAILURE;
	}
	if (!cli_ops_alive(t->rf.pid)) {
		fprintf(stderr, "ingen %s: no server is running (pid %d of %s has exited)\n",
		    cmd, (int)t->rf.pid, t->where);
		return CLI_OPS_EXIT_NOT_RUNNING;
	}
	return 0;
}

/*
 * GET path from the master's address (an address of all interfaces is
 * reached on loopback), with Basic credentials when the configuration has
 * them.  Returns the HTTP status with the body in *body (malloc'd), or -1
 * with the reason in why.
 */
static int
cli_ops_get(const struct cli_ops_target *t, const char *path, char **body,
    char *why, size_t whysize)
{
	char host[128], *colon, port[16], req[1024], auth[512] = "";
	struct addrinfo hints, *res = NULL;
	struct pollfd pfd;
	size_t len = 0, cap = 65536;
	char *buf;
	ssize_t n;
	int fd = -1, rc, status = -1;
	int64_t deadline = clock_now_ms() + CLI_OPS_HTTP_MS;

	*body = NULL;
	snprintf(host, sizeof(host), "%s", t->rf.listen);
	if ((colon = strrchr(host, ':')) == NULL) {
		snprintf(why, whysize, "no port in the address \"%s\"", t->rf.listen);
		return -1;
	}
	*colon = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(host, "::") == 0)
		snprintf(host, sizeof(host), "::1");
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(why, whysize, "address %s:%s: %s", host, port, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		snprintf(why, whysize, "could not connect to %s:%s: %s", host, port,
		    strerror(errno));
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(res);
	if (t->cfg->web.authentication.enable &&
	    t->cfg->web.authentication.username != NULL &&
	    t->cfg->web.authentication.password != NULL) {
		char cred[300], b64[420];
		int cn = snprintf(cred, sizeof(cred), "%s:%s",
		    t->cfg->web.authentication.username,
		    t->cfg->web.authentication.password);

		if (cn > 0 && (size_t)cn < sizeof(cred) &&
		    b64_encoded_len((size_t)cn) < sizeof(b64)) {
			b64_encode(cred, (size_t)cn, b64);
			snprintf(auth, sizeof(auth), "Authorization: Basic %s\r\n", b64);
		}
		explicit_bzero(cred, sizeof(cred));
		explicit_bzero(b64, sizeof(b64));
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n%s"
	    "Connection: close\r\nUser-Agent: ingen-cli\r\n\r\n", path, host, auth);
	explicit_bzero(auth, sizeof(auth));
	if (write(fd, req, (size_t)n) != n) {
		snprintf(why, whysize, "could not send the request: %s", strerror(errno));
		explicit_bzero(req, sizeof(req));
		close(fd);
		return -1;
	}
	explicit_bzero(req, sizeof(req));
	buf = xmalloc(cap);
	for (;;) {
		int64_t left = deadline - clock_now_ms();

		pfd.fd = fd;
		pfd.events = POLLIN;
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			snprintf(why, whysize, "no answer within %d ms", CLI_OPS_HTTP_MS);
			goto fail;
		}
		if (len + 1 >= cap) {
			if (cap >= CLI_OPS_HTTP_MAX) {
				snprintf(why, whysize, "an answer larger than %d bytes",
				    CLI_OPS_HTTP_MAX);
				goto fail;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, whysize, "could not read the answer: %s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		snprintf(why, whysize, "not an HTTP answer");
		free(buf);
		return -1;
	}
	{
		char *sep = strstr(buf, "\r\n\r\n");

		*body = xstrdup(sep != NULL ? sep + 4 : "");
	}
	free(buf);
	return status;
fail:
	close(fd);
	free(buf);
	return -1;
}

/* A metric's value (the first line named exactly `name`, or with labels
 * when `name` holds them), or -1. */
static double
cli_ops_metric(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

/* Sum of every sample of a labelled metric (name{...} value). */
static double
cli_ops_metric_sum(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p = text, *sp;
	double sum = 0;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, n) == 0 && p[n] == '{' &&
		    (sp = strchr(p, ' ')) != NULL)
			sum += strtod(sp + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return sum;
}

/* ---- ingen status, reload, stop ------------------------------------------ */

static void
cli_ops_uptime(int64_t started, char *out, size_t n)
{
	int64_t s = (int64_t)time(NULL) - started;

	if (started <= 0 || s < 0) {
		snprintf(out, n, "unknown");
		return;
	}
	if (s >= 86400)
		snprintf(out, n, "%lldd %lldh %lldm", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600), (long long)(s % 3600 / 60));
	else if (s >= 3600)
		snprintf(out, n, "%lldh %lldm %llds", (long long)(s / 3600),
		    (long long)(s % 3600 / 60), (long long)(s % 60));
	else
		snprintf(out, n, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
}

static int
cli_ops_status(struct cli_ops_target *t)
{
	char why[256], up[64], stamp[32];
	char *metrics = NULL, *ready = NULL;
	int st, rst;
	time_t st_t = (time_t)t->rf.started;
	struct tm tm;

	printf("running: pid %d (%s), listening on %s\n", (int)t->rf.pid, t->where,
	    t->rf.listen);
	if (t->rf.started > 0 && gmtime_r(&st_t, &tm) != NULL) {
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		cli_ops_uptime(t->rf.started, up, sizeof(up));
		printf("uptime: %s (since %s)\n", up, stamp);
	}
	st = cli_ops_get(t, "/metrics", &metrics, why, sizeof(why));
	if (st != 200) {
		if (st < 0)
			printf("not answering: /metrics: %s\n", why);
		else
			printf("not answering: /metrics answered %d%s\n", st,
			    st == 401 || st == 403 ? " (metrics_require_auth or "
			    "server.metrics_loopback_only: run it on the server's host "
			    "with its configuration)" : "");
		free(metrics);
		return CLI_OPS_EXIT_FAILURE;
	}
	printf("generation: %.0f (reloads %.0f, refused %.0f)\n",
	    cli_ops_metric(metrics, "ingenious_config_generation"),
	    cli_ops_metric(metrics, "ingenious_reloads_total"),
	    cli_ops_metric(metrics, "ingenious_reload_failures_total"));
	printf("workers: %.0f ready, %.0f starting, %.0f draining (restarts %.0f, "
	    "crashes %.0f)\n",
	    cli_ops_metric(metrics, "ingenious_workers{state=\"ready\"}"),
	    cli_ops_metric(metrics, "ingenious_workers{state=\"starting\"}"),
	    cli_ops_metric(metrics, "ingenious_workers{state=\"draining\"}"),
	    cli_ops_metric(metrics, "ingenious_worker_restarts_total"),
	    cli_ops_metric(metrics, "ingenious_worker_crashes_total"));
	printf("requests: %.0f answered, %.0f in flight, %.0f connections open\n",
	    cli_ops_metric_sum(metrics, "ingenious_http_requests_total"),
	    cli_ops_metric(metrics, "ingenious_http_requests_in_flight"),
	    cli_ops_metric(metrics, "ingenious_http_connections"));
	printf("model: %.0f calls, %.0f tokens\n",
	    cli_ops_metric(metrics, "ingenious_llm_calls_total"),
	    cli_ops_metric(metrics, "ingenious_llm_tokens_total"));
	free(metrics);
	rst = cli_ops_get(t, "/api/v1/ready", &ready, why, sizeof(why));
	if (rst < 0)
		printf("database: unknown (/api/v1/ready: %s)\n", why);
	else
		printf("database: %s\n", ready != NULL &&
		    strstr(ready, "\"database\":\"ok\"") != NULL ? "ok" : "unavailable");
	free(ready);
	return CLI_OPS_EXIT_OK;
}

/* The generation serving and the refused reloads, from /metrics; -1 when
 * the server does not answer. */
static int
cli_ops_generation(const struct cli_ops_target *t, double *gen, double *refused,
    char *why, size_t whysize)
{
	char *m = NULL;
	int st = cli_ops_get(t, "/metrics", &m, why, whysize);

	if (st != 200) {
		if (st > 0)
			snprintf(why, whysize, "/metrics answered %d", st);
		free(m);
		return -1;
	}
	*gen = cli_ops_metric(m, "ingenious_config_generation");
	*refused = cli_ops_metric(m, "ingenious_reload_failures_total");
	free(m);
	return 0;
}

static void
cli_ops_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
cli_ops_reload(struct cli_ops_target *t, int timeout_s)
{
	double gen0 = 0, refused0 = 0, gen, refused;
	char why[256];
	bool watch;
	int64_t deadline;

	watch = cli_ops_generation(t, &gen0, &refused0, why, sizeof(why)) == 0;
	if (kill(t->rf.pid, SIGHUP) != 0) {
		fprintf(stderr, "ingen reload: could not signal pid %d: %s\n",
		    (int)t->rf.pid, strerror(errno));
		return CLI_OPS_EXIT_FAILURE;
	}
	if (!watch) {
		printf("sent SIGHUP to pid %d; could not watch the reload (%s)\n",
		    (int)t->rf.pid, why);
		return CLI_OPS_EXIT_FAILURE;
	}
	deadline = clock_now_ms() + (int64_t)timeout_s * 1000;
	while (clock_now_ms() < deadline) {
		cli_ops_sleep_ms(100);
		if (cli_ops_generation(t, &gen, &refused, why, sizeof(why)) != 0)
			continue;
		if (gen > gen0) {
			printf("reloaded: generation %.0f is serving (pid %d)\n", gen,
			    (int)t->rf.pid);
			return CLI_OPS_EXIT_OK;
		}
		if (refused > refused0) {
			fprintf(stderr, "ingen reload: the reload was refused; generation "
			    "%.0f keeps serving (the server's log says why; `ingen "
			    "validate` shows the problems)\n", gen0);
			return CLI_OPS_EXIT_FAILURE;
		}
	}
	fprintf(stderr, "ingen reload: no new generation within %d s (still %.0f)\n",
	    timeout_s, gen0);
	return CLI_OPS_EXIT_FAILURE;
}

static int
cli_ops_stop(struct cli_ops_target *t, bool now, int timeout_s)
{
	int64_t deadline = clock_now_ms() + (int64_t)timeout_s * 1000;

	if (kill(t->rf.pid, now ? SIGQUIT : SIGTERM) != 0) {
		fprintf(stderr, "ingen stop: could not signal pid %d: %s\n",
		    (int)t->rf.pid, strerror(errno));
		return CLI_OPS_EXIT_FAILURE;
	}
	while (clock_now_ms() < deadline) {
		if (cli_ops_gone(t->rf.pid)) {
			printf("stopped: pid %d\n", (int)t->rf.pid);
			return CLI_OPS_EXIT_OK;
		}
		cli_ops_sleep_ms(50);
	}
	fprintf(stderr, "ingen stop: pid %d still running after %d s (`ingen stop "
	    "--now` stops it at once)\n", (int)t->rf.pid, timeout_s);
	return CLI_OPS_EXIT_FAILURE;
}

int
cli_ops_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "timeout", required_argument, NULL, 't' },
		{ "now", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0], *config_file = NULL, *pidfile = NULL;
	struct cli_ops_target t;
	bool now = false;
	int c, timeout_s = -1, rc;
	char *end;
	long v;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_file = optarg;
			break;
		case 'P':
			pidfile = optarg;
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (strcmp(cmd, "status") == 0 || *optarg == '\0' || *end != '\0' ||
			    v < 1 || v > 86400) {
				fprintf(stderr, "ingen %s: --timeout: invalid \"%s\" (1-86400 s)\n",
				    cmd, optarg);
				return CLI_OPS_EXIT_USAGE;
			}
			timeout_s = (int)v;
			break;
		case 'n':
			if (strcmp(cmd, "stop") != 0) {
				fprintf(stderr, "ingen %s: --now is an option of ingen stop\n", cmd);
				return CLI_OPS_EXIT_USAGE;
			}
			now = true;
			break;
		case 'h':
			cli_ops_usage(stdout, cmd);
			return CLI_OPS_EXIT_OK;
		default:
			cli_ops_usage(stderr, cmd);
			return CLI_OPS_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ingen %s: unexpected argument \"%s\"\n\n", cmd, argv[optind]);
		cli_ops_usage(stderr, cmd);
		return CLI_OPS_EXIT_USAGE;
	}
	if ((rc = cli_ops_find(cmd, config_file, pidfile, &t)) != 0) {
		if (t.cfg != NULL)
			config_free(t.cfg);
		return rc;
	}
	if (strcmp(cmd, "status") == 0)
		rc = cli_ops_status(&t);
	else if (strcmp(cmd, "reload") == 0)
		rc = cli_ops_reload(&t, timeout_s > 0 ? timeout_s : 60);
	else
		rc = cli_ops_stop(&t, now, timeout_s > 0 ? timeout_s :
		    t.cfg->server.shutdown_timeout + 10);
	config_free(t.cfg);
	return rc;
}
