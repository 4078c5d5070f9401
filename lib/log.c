/*
 * log.c -- the line writer.  It owns the log file descriptor and the format
 * settings of this process, and the prepare/commit steps that change them;
 * it never allocates on the heap while writing a line (lines are built in a
 * stack buffer and truncated if too long).
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define LOG_LINE_MAX 4096

static enum log_format log_fmt = LOG_FORMAT_LOGFMT;
static enum log_level log_min = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;
static char log_path[LOG_PATH_MAX];
static char log_role[32] = "cli";
static _Thread_local char log_req[80];

static const char *const log_level_names[] = {
	"debug", "info", "warning", "error", "alert",
};

int
log_level_parse(const char *s)
{
	if (strcasecmp(s, "debug") == 0) return LOG_LEVEL_DEBUG;
	if (strcasecmp(s, "info") == 0) return LOG_LEVEL_INFO;
	if (strcasecmp(s, "warning") == 0 || strcasecmp(s, "warn") == 0)
		return LOG_LEVEL_WARNING;
	if (strcasecmp(s, "error") == 0) return LOG_LEVEL_ERROR;
	if (strcasecmp(s, "critical") == 0 || strcasecmp(s, "alert") == 0)
		return LOG_LEVEL_ALERT;
	return -1;
}

int
log_format_parse(const char *s)
{
	if (strcasecmp(s, "logfmt") == 0 || strcasecmp(s, "text") == 0)
		return LOG_FORMAT_LOGFMT;
	if (strcasecmp(s, "json") == 0)
		return LOG_FORMAT_JSON;
	return -1;
}

static int
log_open(const char *path, struct err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

	if (fd < 0)
		return err_set(e, 0, "could not open log file \"%s\": %s", path,
		    strerror(errno));
	return fd;
}

int
log_prepare(struct log_target *t, enum log_format fmt, enum log_level min,
    const char *path, struct err *e)
{
	t->fmt = fmt;
	t->min = min;
	t->fd = -1;
	t->path[0] = '\0';
	if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0)
		return 0;
	/* log_reopen() opens the path again: it must be the whole path */
	if (strlen(path) >= sizeof(t->path))
		return err_set(e, 0, "could not open log file: the path is longer "
		    "than %d bytes", LOG_PATH_MAX - 1);
	if ((t->fd = log_open(path, e)) < 0)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s", path);
	return 0;
}

void
log_commit(struct log_target *t)
{
	log_fmt = t->fmt;
	log_min = t->min;
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = t->fd >= 0 ? t->fd : STDERR_FILENO;
	snprintf(log_path, sizeof(log_path), "%s", t->fd >= 0 ? t->path : "");
	t->fd = -1;
	t->path[0] = '\0';
}

void
log_discard(struct log_target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->path[0] = '\0';
}

int
log_configure(enum log_format fmt, enum log_level min, const char *path,
    struct err *e)
{
	struct log_target t;

	if (log_prepare(&t, fmt, min, path, e) != 0)
		return -1;
	log_commit(&t);
	return 0;
}

int
log_reopen(struct err *e)
{
	int fd;

	if (log_path[0] == '\0')
		return 0;
	if ((fd = log_open(log_path, e)) < 0)
		return -1;
	/* dup2 keeps the descriptor number, so other threads never see a gap */
	if (dup2(fd, log_fd) < 0) {
		close(fd);
		return err_set(e, 0, "could not reopen log file: %s", strerror(errno));
	}
	close(fd);
	return 0;
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void
log_set_request_id(const char *id)
{
	if (id == NULL)
		log_req[0] = '\0';
	else
		snprintf(log_req, sizeof(log_req), "%s", id);
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

/* Append to a bounded line; silently truncates. */
struct log_line {
	char buf[LOG_LINE_MAX];
	size_t len;
};

static void
log_put(struct log_line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - 2 - l->len)
		n = sizeof(l->buf) - 2 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
log_puts(struct log_line *l, const char *s)
{
	log_put(l, s, strlen(s));
}

/* A value, quoted and escaped as the format needs. */
static void
log_value(struct log_line *l, const char *v)
{
	int json = log_fmt == LOG_FORMAT_JSON;
	int quote = json || v[0] == '\0' || strpbrk(v, " =\"\\\t\n\r") != NULL;
	const unsigned char *p;
	char esc[8];

	if (quote)
		log_put(l, "\"", 1);
	for (p = (const unsigned char *)v; *p; p++) {
		switch (*p) {
		case '"': log_put(l, "\\\"", 2); break;
		case '\\': log_put(l, "\\\\", 2); break;
		case '\n': log_put(l, "\\n", 2); break;
		case '\r': log_put(l, "\\r", 2); break;
		case '\t': log_put(l, "\\t", 2); break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				log_puts(l, esc);
			} else {
				log_put(l, (const char *)p, 1);
			}
		}
	}
	if (quote)
		log_put(l, "\"", 1);
}

/* `"key":` or ` key=`, with the separator a field after the first needs. */
static void
log_key(struct log_line *l, int *first, const char *k)
{
	if (log_fmt == LOG_FORMAT_JSON) {
		log_puts(l, *first ? "{\"" : ",\"");
		log_puts(l, k);
		log_puts(l, "\":");
	} else {
		if (!*first)
			log_put(l, " ", 1);
		log_puts(l, k);
		log_put(l, "=", 1);
	}
	*first = 0;
}

static void
log_field_str(struct log_line *l, int *first, const char *k, const char *v)
{
	log_key(l, first, k);
	log_value(l, v);
}

static void
log_field_int(struct log_line *l, int *first, const char *k, long long v)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", v);
	log_key(l, first, k);
	log_puts(l, num);
}

void
log_emit(enum log_level level, const char *action,
    const struct log_field *fields, size_t nfields, const char *fmt, ...)
{
	struct log_line l;
	char ts[96], msg[LOG_LINE_MAX / 2];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	size_t i;
	int first = 1, saved_errno = errno;

	if (level < log_min)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (long)(tv.tv_usec / 1000));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	l.len = 0;
	log_field_str(&l, &first, "ts", ts);
	log_field_str(&l, &first, "level", log_level_names[level]);
	log_field_str(&l, &first, "role", log_role);
	log_field_int(&l, &first, "pid", (long long)getpid());
	if (log_req[0])
		log_field_str(&l, &first, "req", log_req);
	if (action != NULL && action[0] != '\0')
		log_field_str(&l, &first, "action", action);
	log_field_str(&l, &first, "msg", msg);
	for (i = 0; i < nfields; i++) {
		if (fields[i].sval != NULL)
			log_field_str(&l, &first, fields[i].key, fields[i].sval);
		else
			log_field_int(&l, &first, fields[i].key, fields[i].ival);
	}
	if (log_fmt == LOG_FORMAT_JSON)
		l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';
	(void)!write(log_fd, l.buf, l.len);
	errno = saved_errno;
}
