/*
 * runfile.h -- the record a running master keeps in its state directory
 * (<server.state_dir>/ingen.run): its pid, the address it listens on and
 * when it started, so that `ingen status`, `ingen reload` and `ingen stop`
 * find it from the same configuration, without a pid file configured.
 *
 * The master writes it once at start and removes it at exit (only when it
 * still names it: a second master on the same state directory replaces it).
 * The format is lines of "key value": pid, listen, started (Unix seconds).
 * It holds no secret.
 */
#ifndef INGEN_RUNFILE_H
#define INGEN_RUNFILE_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

#define RUNFILE_NAME "ingen.run"

struct runfile {
	pid_t pid;
	char listen[128];     /* "127.0.0.1:8000", "[::1]:8000" as written */
	int64_t started;      /* Unix seconds */
};

/* "<state_dir>/ingen.run" into out; -1 when state_dir is empty or too long. */
int runfile_path(const char *state_dir, char *out, size_t n);

/* Write it atomically (a temporary file renamed).  Returns 0 or -1 with e. */
int runfile_write(const char *path, const struct runfile *rf, struct err *e)
    ING_WUR;

/*
 * Read it.  Returns 0, or -1 with e (status 404 when the file does not
 * exist, 500 when it cannot be read or makes no sense).
 */
int runfile_read(const char *path, struct runfile *rf, struct err *e) ING_WUR;

/* Read a plain pid file (one number).  Same returns as runfile_read. */
int runfile_read_pid(const char *path, pid_t *pid, struct err *e) ING_WUR;

/* Remove it if it still names `pid`. */
void runfile_remove(const char *path, pid_t pid);

#endif
