"""bench/inflight.py -- how many upstream calls a server holds open while a bench load runs.

Owns: nothing but its own sampling; reads /proc and runs `ss`, never signals anything.

usage: inflight.py --pidfile F --port P [--after S] [--interval S]
Samples every --interval seconds (default 0.25) until SIGTERM, then prints one line:
  INFLIGHT peak=.. mean=.. last=.. samples=..
each sample being the number of ESTABLISHED TCP connections owned by the
process tree rooted at the pid in F (the server's master) whose REMOTE port is
P (the upstream: the fake Azure or the simulator).  peak is over every sample,
mean and last over the samples taken --after seconds or more after the start
(the measured window).  A pooled keep-alive connection that is idle counts as
well, so the figure is an upper bound of the calls in flight unless the pool
was emptied before the load (slow.sh reads it that way only where it was).
"""
import argparse
import os
import signal
import subprocess
import time

ap = argparse.ArgumentParser()
ap.add_argument("--pidfile", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--after", type=float, default=0.0)
ap.add_argument("--interval", type=float, default=0.25)
a = ap.parse_args()

ESTABLISHED = "01"


def root():
    try:
        with open(a.pidfile) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def tree(r):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                kids.setdefault(int(st[st.rindex(")") + 2:].split()[1]), []).append(int(d))
            except (OSError, ValueError):
                pass
    seen, todo = set(), [r] if r else []
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(kids.get(p, []))
    return seen


def socket_inodes(pids):
    out = set()
    for p in pids:
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                t = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:["):
                out.add(t[8:-1])
    return out


def count(inodes):
    # ss asks the kernel (sock_diag) for the sockets to that port only: cheaper
    # than reading /proc/net/tcp, which lists every socket of the machine
    try:
        out = subprocess.run(["ss", "-Htne", "state", "established", f"( dport = :{a.port} )"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    n = 0
    for line in out.splitlines():
        for f in line.split():
            if f.startswith("ino:") and f[4:] in inodes:
                n += 1
                break
    return n


stop = False


def _stop(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)

t0 = time.monotonic()
peak, late = 0, []
while not stop:
    n = count(socket_inodes(tree(root())))
    peak = max(peak, n)
    if time.monotonic() - t0 >= a.after:
        late.append(n)
    time.sleep(a.interval)
mean = sum(late) / len(late) if late else 0.0
print(f"INFLIGHT peak={peak} mean={mean:.0f} last={late[-1] if late else 0} samples={len(late)}",
      flush=True)
