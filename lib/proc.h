/*
 * proc.h -- the contract between the master and its workers: exit codes,
 * the worker entry point, and what a worker is handed at fork.
 *
 * Exit codes are a protocol (httpd APEXIT_CHILDFATAL): the master reads them
 * to decide between "respawn", "respawn with backoff" and "stop the server".
 * The master calls proc_worker_main() in the child right after fork(); it is
 * implemented in worker/worker.c, so master/ never includes worker/.
 */
#ifndef INGEN_PROC_H
#define INGEN_PROC_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/config.h"

/* A worker finished normally (drained after SIGTERM, recycled after
 * max_requests, or its master went away): respawn if still wanted. */
#define PROC_EXIT_OK        0
/* Unexpected failure: respawn, counting toward the crash-loop backoff. */
#define PROC_EXIT_CRASH     1
/* The worker can never start with this configuration (for example a flow
 * that cannot load, a listen socket that is gone): do not respawn.  A
 * worker of a generation that is still starting after a reload: the master
 * abandons the reload and the old generation keeps serving.  Otherwise the
 * master stops the server and exits with PROC_EXIT_MASTER_FATAL. */
#define PROC_EXIT_FATAL     70
/* The master's own exit code after a worker's fatal exit or a failed start. */
#define PROC_EXIT_MASTER_FATAL 1
/* Invalid configuration or usage (every problem printed, one per line). */
#define PROC_EXIT_CONFIG    2

struct scoreboard;
struct keys;
struct throttle;
struct registry;

/* What a worker gets from the master at fork. */
struct proc_worker_start {
	const struct config *cfg;   /* the generation's immutable config */
	int listen_fd;              /* shared, non-blocking listening socket */
	struct scoreboard *sb;      /* shared memory, this worker writes `slot` only */
	int slot;
	uint32_t generation;
	pid_t master_pid;
	/* authentication (empty ring and "" when it is off); the ring and the
	 * hash are the master's memory, the worker's copy made by fork */
	const struct keys *keys;    /* the generation's JWT key ring */
	const char *auth_password_hash;  /* scrypt hash of the configured password */
	struct throttle *throttle;  /* shared memory: failed logins of every worker */
	struct registry *flows;     /* the generation's flows (the master's, copied
	                             * by fork): the worker loads its plugins into
	                             * its copy, then only reads it */
};

/* Run a worker until it must exit; returns the exit code (PROC_EXIT_*).
 * Called once, in a freshly forked child of the master. */
int proc_worker_main(const struct proc_worker_start *ws);

#endif
