/*
 * err.c -- filling in struct err.  Pure; safe from any thread.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "lib/err.h"

int
err_vset(struct err *e, int status, const char *fmt, va_list ap)
{
	if (e == NULL)
		return -1;
	e->status = status;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return -1;
}

int
err_set(struct err *e, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(e, status, fmt, ap);
	va_end(ap);
	return -1;
}

int
err_prefix(struct err *e, const char *fmt, ...)
{
	char head[ERR_MSG_MAX];
	size_t hl, ol;
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head) - 2, fmt, ap);
	va_end(ap);
	strcat(head, ": ");
	hl = strlen(head);
	ol = strlen(e->msg);
	if (hl + ol >= sizeof(e->msg))
		ol = sizeof(e->msg) - 1 - hl;
	memmove(e->msg + hl, e->msg, ol);
	memcpy(e->msg, head, hl);
	e->msg[hl + ol] = '\0';
	return -1;
}

void
err_clear(struct err *e)
{
	e->status = 0;
	e->msg[0] = '\0';
}
