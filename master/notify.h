/*
 * notify.h -- the systemd notification protocol (sd_notify(3)), without
 * libsystemd: datagrams "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...",
 * "WATCHDOG=1" to the socket named by $NOTIFY_SOCKET (a path, or an abstract
 * name starting with '@').  Master only.
 */
#ifndef INGEN_NOTIFY_H
#define INGEN_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

/* Read NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID.  Returns true when a
 * notify socket is configured.  Unsets nothing: workers never notify. */
bool notify_init(void);

/* Send one message ("READY=1\nSTATUS=serving").  No-op without a socket.
 * Failures are logged at debug and otherwise ignored: systemd may be gone. */
void notify_send(const char *fmt, ...) ING_PRINTF(1, 2);

/* Watchdog interval in ms requested by systemd, or 0. */
int64_t notify_watchdog_ms(void);

#endif
