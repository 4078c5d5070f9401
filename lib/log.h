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
 * log_configure(), log_commit() and log_set_role() are called by a process
 * before it starts threads (the master has none); log_emit() may then be
 * called from any thread.
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

#define LOG_PATH_MAX 1024

/*
 * A destination opened but not yet in use, so that a reload can fail
 * before it swaps anything (nginx opens the files of a new cycle before it
 * switches to it).  Prepare, then either commit or discard; the struct may
 * be copied into a child by fork(), which commits or discards its copy.
 */
struct log_target {
	enum log_format fmt;
	enum log_level min;
	int fd;                       /* the open file; -1 = standard error */
	char path[LOG_PATH_MAX];      /* "" = standard error */
};

#define LOG_TARGET_INIT { LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, -1, "" }

/*
 * Open and check a destination: format, minimum level, and a file (NULL,
 * "" or "-" = standard error), opened for appending and created 0640.
 * Changes nothing in the running log.  Returns 0, or -1 with `e` set ("could
 * not open log file ...") and *t holding nothing to discard.
 */
int log_prepare(struct log_target *t, enum log_format fmt,
    enum log_level min, const char *path, struct err *e) ING_WUR;

/* Make a prepared target this process's log (the previous file is
 * closed); *t is left holding nothing.  Cannot fail. */
void log_commit(struct log_target *t);

/* Close what a prepared, uncommitted target holds (nothing after a
 * commit or a failed prepare); *t is left holding nothing. */
void log_discard(struct log_target *t);

/* log_prepare() then log_commit(): set format, minimum level, and
 * destination.  Returns -1 with `e` set if the file cannot be opened, and
 * the running log unchanged. */
int log_configure(enum log_format fmt, enum log_level min, const char *path,
    struct err *e) ING_WUR;

/* Reopen the log file (SIGUSR1, after rotation).  No-op for stderr. */
int log_reopen(struct err *e);

/* Process-wide role shown in every line, e.g. "master", "worker.2". */
void log_set_role(const char *role);

/* Thread-local request id shown in every line of this thread; NULL clears. */
void log_set_request_id(const char *id);

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
