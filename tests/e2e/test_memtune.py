"""test_memtune.py -- `ingen serve` executes itself once more with glibc's
per-thread malloc cache off (master/memtune.h): same pid, the tunable in the
environment it was started with, and it serves; not when
server.malloc_thread_cache is true or GLIBC_TUNABLES already sets
tcache_count.  The restoring of the environment is tests/unit/test_memtune.c."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request  # noqa: E402

t = Tap(timeout=60)


def start_env(pid):
    """The environment the process was (last) executed with."""
    with open("/proc/%d/environ" % pid, "rb") as f:
        items = f.read().split(b"\0")
    env = {}
    for it in items:
        if b"=" in it:
            k, v = it.split(b"=", 1)
            env[k.decode()] = v.decode(errors="replace")
    return env


def case(name, env, expect_exec, tunables=None):
    srv = Server(t, workers=1, env=env).start()
    with open(srv.pidfile) as f:
        t.eq(int(f.read().strip()), srv.pid, "%s: the master keeps the pid it was started with" % name)
    e = start_env(srv.pid)
    if expect_exec:
        t.ok("INGEN_MEMTUNE_ORIGINAL" in e, "%s: executed again with the mark" % name)
        if tunables is None:
            # (the dynamic loader parses GLIBC_TUNABLES in place: past the
            # first tunable, what /proc shows is cut at the first ':')
            t.eq(e.get("GLIBC_TUNABLES"), "glibc.malloc.tcache_count=0",
                 "%s: with glibc.malloc.tcache_count=0" % name)
        else:
            t.eq(e.get("INGEN_MEMTUNE_ORIGINAL"), "=" + tunables,
                 "%s: the user's GLIBC_TUNABLES kept for restoring" % name)
    else:
        t.ok("INGEN_MEMTUNE_ORIGINAL" not in e, "%s: not executed again" % name)
        t.eq(e.get("GLIBC_TUNABLES"), tunables, "%s: GLIBC_TUNABLES as given" % name)
    st, _, _ = request(srv.port, "GET", "/api/v1/health")
    t.eq(st, 200, "%s: serves" % name)
    srv.stop()


case("default", {}, True)
case("with other tunables", {"GLIBC_TUNABLES": "glibc.malloc.check=0"}, True,
     tunables="glibc.malloc.check=0")
case("malloc_thread_cache = true", {"INGENIOUS_SERVER__MALLOC_THREAD_CACHE": "true"}, False)
case("the user's tcache_count", {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=2"}, False,
     tunables="glibc.malloc.tcache_count=2")
t.done()
