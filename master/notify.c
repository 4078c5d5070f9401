/*
 * notify.c -- sd_notify over a unix datagram socket.  It owns one socket
 * descriptor; it never blocks (MSG_DONTWAIT) and never fails the caller.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "master/notify.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
static int64_t notify_wd_ms;

bool
notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *wd = getenv("WATCHDOG_USEC");
	const char *wdpid = getenv("WATCHDOG_PID");
	size_t len;

	if (wd != NULL && (wdpid == NULL || atol(wdpid) == (long)getpid()))
		notify_wd_ms = atoll(wd) / 1000;
	if (path == NULL || path[0] == '\0')
		return false;
	len = strlen(path);
	if (len >= sizeof(notify_addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
		log_warn("notifying systemd", "ignoring invalid NOTIFY_SOCKET");
		return false;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, len);
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0';   /* abstract namespace */
	notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd < 0) {
		log_warn("notifying systemd", "could not create socket: %s",
		    strerror(errno));
		return false;
	}
	return true;
}

void
notify_send(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if (sendto(notify_fd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1,
	    MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
	    notify_addrlen) < 0)
		log_debug("notifying systemd", "could not send: %s", strerror(errno));
}

int64_t
notify_watchdog_ms(void)
{
	return notify_wd_ms;
}
