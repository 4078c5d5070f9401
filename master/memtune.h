/*
 * memtune.h -- the C library's malloc tuned for thousands of flow threads.
 *
 * glibc keeps, per thread, a cache of freed small blocks (tcache: up to 7
 * blocks of each of 64 sizes).  A worker holds one flow thread per turn in
 * flight, so that cache costs ~11 KiB per turn (measured: 4,000 turns in
 * flight at a 5 s upstream, 279 MB with it off against ~323 MB with it on,
 * and no measurable change of turns/s at a 0 ms upstream).  It can only be
 * turned off by the GLIBC_TUNABLES environment variable, which the dynamic
 * loader reads when the program starts; `ingen serve` therefore executes
 * itself again once with glibc.malloc.tcache_count=0 added, unless
 * server.malloc_thread_cache is true or GLIBC_TUNABLES already sets it.
 * The original GLIBC_TUNABLES is restored after the second start, so the
 * programs the server runs (pg_ctl, postgres, make) do not inherit it.
 */
#ifndef INGEN_MEMTUNE_H
#define INGEN_MEMTUNE_H

#include <stdbool.h>

/*
 * Call first thing in `ingen serve`, before any descriptor is opened.  On
 * the first start it re-executes the program (same pid, argv and
 * environment plus the tunable) and does not return; on the second start,
 * or when not needed, or when the re-execution fails (reported on stderr),
 * it returns.  thread_cache: keep glibc's per-thread cache.
 */
void memtune_apply(bool thread_cache, char **argv);

/* Was the per-thread cache turned off for this process (for the log)? */
bool memtune_active(void);

#endif
