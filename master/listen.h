/*
 * listen.h -- the listening socket: bound by the master before it forks, or
 * received from systemd socket activation ($LISTEN_FDS).  Master only.
 */
#ifndef INGEN_LISTEN_H
#define INGEN_LISTEN_H

#include "lib/err.h"

/* Bind and listen on host:port (IPv4 or IPv6 literal, or a name resolved
 * once).  Returns a non-blocking descriptor, or -1 with `e` set. */
int listen_open(const char *host, int port, struct err *e) ING_WUR;

/* The first socket passed by systemd when $LISTEN_PID is ours and
 * $LISTEN_FDS >= 1; -1 (e unset) when there is none, -1 with `e` set when
 * the passed descriptor is unusable.  Clears the LISTEN_* variables. */
int listen_from_systemd(struct err *e) ING_WUR;

/* "host:port" of a bound socket, for logs. */
void listen_describe(int fd, char *out, size_t n);

#endif
