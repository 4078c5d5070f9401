/*
 * runfile.c -- the running master's record in its state directory
 * (lib/runfile.h): written by the master, read by `ingen status`,
 * `ingen reload` and `ingen stop`.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/runfile.h"

#define RUNFILE_MAX 1024    /* bytes: the record is three short lines */

int
runfile_path(const char *state_dir, char *out, size_t n)
{
	int len;

	if (state_dir == NULL || state_dir[0] == '\0')
		return -1;
	len = snprintf(out, n, "%s/%s", state_dir, RUNFILE_NAME);
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

int
runfile_write(const char *path, const struct runfile *rf, struct err *e)
{
	char tmp[4096], buf[256];
	int fd, n;

	n = snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)rf->pid);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return err_set(e, 500, "the path \"%s\" is too long", path);
	n = snprintf(buf, sizeof(buf), "pid %d\nlisten %s\nstarted %lld\n",
	    (int)rf->pid, rf->listen, (long long)rf->started);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		/* the state directory of a first start: made as the others do, 0700 */
		char dir[4096], *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
			*slash = '\0';
			(void)mkdir(dir, 0700);
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return err_set(e, 500, "could not write \"%s\": %s", tmp, strerror(errno));
	if (write(fd, buf, (size_t)n) != n) {
		err_set(e, 500, "could not write \"%s\": %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		err_set(e, 500, "could not rename \"%s\" to \"%s\": %s", tmp, path,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The file's bytes, NUL-terminated, into buf. */
static int
runfile_slurp(const char *path, char *buf, size_t cap, struct err *e)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno == ENOENT ? 404 : 500, "could not read \"%s\": %s",
		    path, strerror(errno));
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return err_set(e, 500, "could not read \"%s\": %s", path, strerror(errno));
	buf[n] = '\0';
	return 0;
}

static int
runfile_parse_pid(const char *s, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || v <= 1 || v > 0x3fffffff)
		return -1;
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	if (*end != '\0')
		return -1;
	*pid = (pid_t)v;
	return 0;
}

int
runfile_read(const char *path, struct runfile *rf, struct err *e)
{
	char buf[RUNFILE_MAX], *line, *save = NULL, *sp;

	memset(rf, 0, sizeof(*rf));
	if (runfile_slurp(path, buf, sizeof(buf), e) != 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((sp = strchr(line, ' ')) == NULL)
			continue;
		*sp++ = '\0';
		if (strcmp(line, "pid") == 0) {
			if (runfile_parse_pid(sp, &rf->pid) != 0)
				rf->pid = 0;
		} else if (strcmp(line, "listen") == 0) {
			snprintf(rf->listen, sizeof(rf->listen), "%s", sp);
		} else if (strcmp(line, "started") == 0) {
			rf->started = strtoll(sp, NULL, 10);
		}
	}
	if (rf->pid == 0)
		return err_set(e, 500, "\"%s\" names no pid", path);
	return 0;
}

int
runfile_read_pid(const char *path, pid_t *pid, struct err *e)
{
	char buf[64];

	if (runfile_slurp(path, buf, sizeof(buf), e) != 0)
		return -1;
	if (runfile_parse_pid(buf, pid) != 0)
		return err_set(e, 500, "\"%s\" does not hold a pid", path);
	return 0;
}

void
runfile_remove(const char *path, pid_t pid)
{
	struct runfile rf;
	struct err e;

	if (runfile_read(path, &rf, &e) == 0 && rf.pid == pid)
		unlink(path);
}
