/*
 * memtune.c -- re-execute `ingen serve` once with glibc's per-thread malloc
 * cache off (see memtune.h for why and what it measured).
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/xmalloc.h"
#include "master/memtune.h"

#define MEMTUNE_TUNABLE   "glibc.malloc.tcache_count"
#define MEMTUNE_SETTING   MEMTUNE_TUNABLE "=0"
/* set by the first start for the second: "-" (GLIBC_TUNABLES was unset) or
 * "=" followed by its original value */
#define MEMTUNE_MARK      "INGEN_MEMTUNE_ORIGINAL"

static bool memtune_on;

bool
memtune_active(void)
{
	return memtune_on;
}

/* The second start: put GLIBC_TUNABLES back as the user had it. */
static void
memtune_restore(const char *mark)
{
	if (mark[0] == '=')
		setenv("GLIBC_TUNABLES", mark + 1, 1);
	else
		unsetenv("GLIBC_TUNABLES");
	unsetenv(MEMTUNE_MARK);
	memtune_on = true;
}

void
memtune_apply(bool thread_cache, char **argv)
{
	const char *mark = getenv(MEMTUNE_MARK), *cur, *preload;
	char *tunables, *saved;

	if (mark != NULL) {
		memtune_restore(mark);
		return;
	}
	cur = getenv("GLIBC_TUNABLES");
	preload = getenv("LD_PRELOAD");
	/* the user's own choice wins; under valgrind an exec would leave it */
	if (thread_cache || (cur != NULL && strstr(cur, MEMTUNE_TUNABLE) != NULL) ||
	    (preload != NULL && strstr(preload, "vgpreload") != NULL))
		return;
	if (cur != NULL && cur[0] != '\0') {
		tunables = xasprintf("%s:%s", cur, MEMTUNE_SETTING);
		saved = xasprintf("=%s", cur);
	} else {
		tunables = xstrdup(MEMTUNE_SETTING);
		saved = xstrdup("-");
	}
	if (setenv("GLIBC_TUNABLES", tunables, 1) != 0 ||
	    setenv(MEMTUNE_MARK, saved, 1) != 0) {
		fprintf(stderr, "ingen: could not set GLIBC_TUNABLES (%s); glibc's "
		    "per-thread malloc cache stays on\n", strerror(errno));
	} else {
		execv("/proc/self/exe", argv);
		fprintf(stderr, "ingen: could not re-execute /proc/self/exe with "
		    "%s (%s); glibc's per-thread malloc cache stays on "
		    "(server.malloc_thread_cache)\n", MEMTUNE_SETTING, strerror(errno));
	}
	/* not re-executed: leave the environment as it was */
	if (cur != NULL)
		setenv("GLIBC_TUNABLES", cur, 1);
	else
		unsetenv("GLIBC_TUNABLES");
	unsetenv(MEMTUNE_MARK);
	free(tunables);
	free(saved);
}
