/*
 * test_memtune.c -- unit tests of master/memtune.c's paths that do not
 * execute the program again: the second start puts GLIBC_TUNABLES back as
 * it was (set or unset) and drops its mark; server.malloc_thread_cache =
 * true, a GLIBC_TUNABLES that sets tcache_count itself, and valgrind leave
 * the environment alone.  The re-execution itself is tests/e2e/test_memtune.py.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "master/memtune.h"
#include "tests/unit/tap.h"

static char argv0[] = "test_memtune";
static char *argv_none[] = { argv0, NULL };

static const char *
env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL ? v : dflt;
}

int
main(void)
{
	/* second start after GLIBC_TUNABLES was set */
	setenv("INGEN_MEMTUNE_ORIGINAL", "=glibc.malloc.check=0", 1);
	setenv("GLIBC_TUNABLES", "glibc.malloc.check=0:glibc.malloc.tcache_count=0", 1);
	ok(!memtune_active(), "not active before");
	memtune_apply(false, argv_none);
	is_str(env_or("GLIBC_TUNABLES", "(unset)"), "glibc.malloc.check=0",
	    "the second start restores the user's GLIBC_TUNABLES");
	is_str(env_or("INGEN_MEMTUNE_ORIGINAL", "(unset)"), "(unset)",
	    "and drops its mark");
	ok(memtune_active(), "and reports the cache off");

	/* second start after GLIBC_TUNABLES was unset */
	setenv("INGEN_MEMTUNE_ORIGINAL", "-", 1);
	setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
	memtune_apply(false, argv_none);
	is_str(env_or("GLIBC_TUNABLES", "(unset)"), "(unset)",
	    "an unset GLIBC_TUNABLES is unset again");
	is_str(env_or("INGEN_MEMTUNE_ORIGINAL", "(unset)"), "(unset)", "mark dropped");

	/* the key keeps the cache: no exec (we would not return), nothing set */
	unsetenv("GLIBC_TUNABLES");
	memtune_apply(true, argv_none);
	is_str(env_or("GLIBC_TUNABLES", "(unset)"), "(unset)",
	    "malloc_thread_cache = true sets nothing");

	/* the user's own tcache_count wins */
	setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=3", 1);
	memtune_apply(false, argv_none);
	is_str(env_or("GLIBC_TUNABLES", "(unset)"), "glibc.malloc.tcache_count=3",
	    "a GLIBC_TUNABLES with tcache_count is left as is");
	is_str(env_or("INGEN_MEMTUNE_ORIGINAL", "(unset)"), "(unset)", "no mark");

	/* under valgrind an exec would leave the tool: not done */
	unsetenv("GLIBC_TUNABLES");
	setenv("LD_PRELOAD", "/usr/libexec/valgrind/vgpreload_core-amd64-linux.so", 1);
	memtune_apply(false, argv_none);
	is_str(env_or("GLIBC_TUNABLES", "(unset)"), "(unset)", "not under valgrind");
	unsetenv("LD_PRELOAD");
	return tap_done();
}
