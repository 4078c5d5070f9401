/*
 * err.h -- the error value every fallible function fills in.
 *
 * A caller owns a struct err (usually on its stack) and passes a pointer
 * down; the callee that fails writes a PostgreSQL-style message (lower case,
 * no trailing period, "could not X: why") and the HTTP status a client should
 * see.  Functions return 0 on success and -1 on failure; the struct is only
 * meaningful after a -1.  Never put a secret in an error message.
 */
#ifndef INGEN_ERR_H
#define INGEN_ERR_H

#include <stdarg.h>

#define ERR_MSG_MAX 512

#if defined(__GNUC__)
#define ING_WUR __attribute__((warn_unused_result))
#define ING_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ING_NORETURN __attribute__((noreturn))
#else
#define ING_WUR
#define ING_PRINTF(f, a)
#define ING_NORETURN
#endif

struct err {
	int status;             /* HTTP status for the client; 0 = not set */
	char msg[ERR_MSG_MAX];  /* human-readable, safe to log and to show */
};

/* Set status and message (printf-style).  Always returns -1 so callers can
 * write `return err_set(e, 400, "...")`.  `e` may be NULL (then a no-op). */
int err_set(struct err *e, int status, const char *fmt, ...) ING_PRINTF(3, 4);

/* Same as err_set with a va_list. */
int err_vset(struct err *e, int status, const char *fmt, va_list ap) ING_PRINTF(3, 0);

/* Prefix the existing message: "while X: <old message>".  Returns -1. */
int err_prefix(struct err *e, const char *fmt, ...) ING_PRINTF(2, 3);

/* Reset to "no error". */
void err_clear(struct err *e);

#endif
