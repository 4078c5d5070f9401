/*
 * log.h -- one line per event, logfmt or JSON.
 *
 * Every line carries: ts, level, role ("master", "worker.3", "cli"), pid,
 * req (the request id of the calling thread, when one is set), action (what
 * was under way, "while calling azure openai"), msg, and optional extra
 * fields.  A line is written with one write(2) so lines of concurrent threads
 * and processes never interleave.  Callers must never pass secrets, prompts or
 * Authorization headers at a level above debug.
 *
 * log_configure() and log_set_role() are called by a process before it starts
 * threads; log_emit() may then be called from any thread.
 */
#ifndef INGEN_LOG_H
#define INGEN_LOG_H

#include <stddef.h>

#include "lib/err.h"

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_ALERT,    /* the operator must look: crash loop, fatal exit */
};

enum log_format {
	LOG_FORMAT_LOGFMT = 0,
	LOG_FORMAT_JSON,
};

/* An extra field: a string (sval != NULL) or an integer. */
struct log_field {
	const char *key;
	const char *sval;
	long long ival;
};

#define LOG_STR(k, v) ((struct log_field){ (k), (v) ? (v) : "", 0 })
#define LOG_INT(k, v) ((struct log_field){ (k), NULL, (long long)(v) })

/* Parse "debug|info|warning|error|critical|alert"; -1 if unknown. */
int log_level_parse(const char *s);
/* Parse "logfmt|json"; -1 if unknown. */
int log_format_parse(const char *s);

/* Set format, minimum level, and destination (NULL or "" or "-" = stderr).
 * Returns -1 with `e` set if the file cannot be opened. */
int log_configure(enum log_format fmt, enum log_level min, const char *path,
    struct err *e) ING_WUR;

/* Reopen the log file (SIGUSR1, after rotation).  No-op for stderr. */
int log_reopen(struct err *e);

/* Process-wide role shown in every line, e.g. "master", "worker.2". */
void log_set_role(const char *role);

/* Thread-local request id shown in every line of this thread; NULL clears. */
void log_set_request_id(const char *id);
const char *log_request_id(void);

/* True if a line at `level` would be written. */
int log_enabled(enum log_level level);

/* Write one line.  `action` may be NULL.  `fields` may be NULL when n = 0. */
void log_emit(enum log_level level, const char *action,
    const struct log_field *fields, size_t nfields, const char *fmt, ...)
    ING_PRINTF(5, 6);

#define log_debug(action, ...) log_emit(LOG_LEVEL_DEBUG, (action), NULL, 0, __VA_ARGS__)
#define log_info(action, ...)  log_emit(LOG_LEVEL_INFO, (action), NULL, 0, __VA_ARGS__)
#define log_warn(action, ...)  log_emit(LOG_LEVEL_WARNING, (action), NULL, 0, __VA_ARGS__)
#define log_error(action, ...) log_emit(LOG_LEVEL_ERROR, (action), NULL, 0, __VA_ARGS__)
#define log_alert(action, ...) log_emit(LOG_LEVEL_ALERT, (action), NULL, 0, __VA_ARGS__)

#endif
