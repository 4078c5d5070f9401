"""bench/hostmon.py -- how much of the machine OTHER work used while a bench load ran.

Owns: nothing but its own sampling; reads /proc only, never signals anything.

usage: hostmon.py --tree NAME=PIDFILE | --tree NAME=pid:PID ... [--interval S]
Samples every --interval seconds (default 0.2) until SIGTERM, then prints one line:
  HOSTMON host_busy_pct=.. ours_pct=.. others_pct=.. steal_pct=.. NAME_cpu_s=.. ...
host_busy_pct: user+nice+system CPU of the whole machine (interrupt time left out)
over the window, in % of all cores (100 = every core busy); NAME_cpu_s: user+system
CPU seconds of the process tree rooted at that pid (a process belongs to the first
tree listed that holds it); ours_pct: all trees together, in % of all cores;
others_pct: host_busy_pct - ours_pct, i.e. what other people's builds and tests took
from the run.  Processes of our trees that exit between two samples lose at most one
interval of CPU, which shows up as "others", so others_pct is an upper bound.
"""
import argparse
import os
import signal
import time

ap = argparse.ArgumentParser()
ap.add_argument("--tree", action="append", default=[])
ap.add_argument("--interval", type=float, default=0.2)
a = ap.parse_args()


def ppid_map():
    m = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                m[int(d)] = int(st[st.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    return m


TREES = [t.split("=", 1) for t in a.tree]


def root(spec):
    if spec.startswith("pid:"):
        return int(spec[4:])
    try:
        with open(spec) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def subtree(rs, pm):
    kids = {}
    for p, pp in pm.items():
        kids.setdefault(pp, []).append(p)
    seen, todo = set(), list(rs)
    while todo:
        p = todo.pop()
        if p in seen or p not in pm:
            continue
        seen.add(p)
        todo.extend(kids.get(p, []))
    return seen


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        fields = st[st.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


def host():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])
    busy = v[0] + v[1] + v[2]
    steal = v[7] if len(v) > 7 else 0
    return total, busy, steal


stop = False


def _stop(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)

# a process already running at the first sample counts from there; one that
# starts later (wrk, pgbench, a backend) counts from zero
first, last, owner = {}, {}, {}
h0 = host()
initial = True
while True:
    pm = ppid_map()
    for name, spec in TREES:
        r = root(spec)
        for p in subtree([r] if r else [], pm):
            t = cpu_ticks(p)
            if t is None:
                continue
            owner.setdefault(p, name)
            first.setdefault(p, t if initial else 0)
            last[p] = t
    initial = False
    if stop:
        break
    time.sleep(a.interval)
h1 = host()
dt = max(h1[0] - h0[0], 1)
busy = 100.0 * (h1[1] - h0[1]) / dt
ours = 100.0 * sum(last[p] - first[p] for p in last) / dt
per = {name: 0 for name, _ in TREES}
for p in last:
    per[owner[p]] += last[p] - first[p]
tick = os.sysconf("SC_CLK_TCK")
print(f"HOSTMON host_busy_pct={busy:.0f} ours_pct={ours:.0f} others_pct={max(busy - ours, 0):.0f} "
      f"steal_pct={100.0 * (h1[2] - h0[2]) / dt:.1f} "
      + " ".join(f"{n}_cpu_s={v / tick:.2f}" for n, v in per.items()), flush=True)
