#!/bin/sh
# bench/login_flood.sh -- a login flood against one worker (issue 8, defect f):
# its peak memory, and whether health, token checks and chats keep answering.
#
#   bench/login_flood.sh [--duration S] [--flooders N] [--addresses N]
#                        [--hash-concurrency N]
#
# A benchmark, not a test: it prints numbers and a verdict, it asserts
# nothing.  It starts, all on 127.0.0.1 and stopped by their pids at the end:
# a private PostgreSQL cluster (`ingen db init-local`), the Azure OpenAI
# simulator, and `ingen serve --workers 1` with authentication on (access log
# off).  Then, for --duration seconds (default 15, at most 120), --flooders
# threads (default 64) post logins as fast as they are answered, each from
# the next of --addresses loopback source addresses (127.4.x.y, default 2000,
# so that no address reaches the per-address throttle) for a user that does
# not exist (a fresh name each time: every attempt costs a full scrypt, 32
# MiB).  Meanwhile a probe, every 250 ms, calls GET /api/v1/health (on the
# event loop), GET /api/v1/auth/verify with a Bearer token (a flow thread,
# no hashing) and POST /api/v1/chat with that token (a flow thread, the
# simulator, the database), and the worker's VmHWM / VmRSS are read from
# /proc.  It prints the flood's answers by status, the probe's statuses and
# latencies (median, max) before and during the flood, and the worker's
# peak RSS against the target (300 MB).
#
# --hash-concurrency sets web_configuration.authentication.password_hash_
# concurrency (default: the server's, 2); a value as high as the flow threads
# (64) shows the memory the flood took before that bound existed.
#
# Needs python3 and a build ($INGEN, default _build/ingen, with
# ingen-azure-sim beside it); reuses the end-to-end harness (tests/e2e/lib).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
INGEN=${INGEN:-$top/_build/ingen}
DUR=15 FLOODERS=64 ADDRESSES=2000 HASHES=
usage() {
	echo "usage: $0 [--duration S] [--flooders N] [--addresses N] [--hash-concurrency N]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || usage
	case $1 in
	--duration) DUR=$2;;
	--flooders) FLOODERS=$2;;
	--addresses) ADDRESSES=$2;;
	--hash-concurrency) HASHES=$2;;
	*) usage;;
	esac
	shift 2
done
command -v python3 >/dev/null || { echo "bench: python3 not found" >&2; exit 1; }
[ -x "$INGEN" ] || { echo "bench: $INGEN not built (run ./check.sh or make)" >&2; exit 1; }
builddir=$(cd "$(dirname "$INGEN")" && pwd)
[ -x "$builddir/ingen-azure-sim" ] || { echo "bench: $builddir/ingen-azure-sim not built" >&2; exit 1; }

INGEN_SRCDIR=$top INGEN_BUILDDIR=$builddir PYTHONDONTWRITEBYTECODE=1 \
BENCH_DURATION=$DUR BENCH_FLOODERS=$FLOODERS BENCH_ADDRESSES=$ADDRESSES \
BENCH_HASHES=$HASHES exec python3 - <<'EOF'
import http.client
import json
import os
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["INGEN_SRCDIR"], "tests", "e2e", "lib"))
from ingen import Server  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

DUR = max(1, min(int(os.environ["BENCH_DURATION"]), 120))
FLOODERS = max(1, int(os.environ["BENCH_FLOODERS"]))
ADDRESSES = max(1, min(int(os.environ["BENCH_ADDRESSES"]), 250 * 250))
HASHES = os.environ["BENCH_HASHES"]
TARGET_KB = 300 * 1024
KEY = "login-flood-sim-key"
PW = "login-flood-admin-password"


class Run:
    """What the harness expects of a TAP producer, for a benchmark: the
    cleanups run at the end, a report of the server's log only if bad."""

    def __init__(self, limit):
        self.cleanups = []
        signal.signal(signal.SIGALRM, self._timeout)
        signal.alarm(limit)

    def _timeout(self, signo, frame):
        print("bench: time limit reached, stopping", file=sys.stderr)
        self.done()
        sys.exit(1)

    def ok(self, cond, name, diag=None):
        if not cond:
            print("bench: %s%s" % (name, ("\n" + str(diag)) if diag else ""), file=sys.stderr)

    def at_exit(self, fn):
        self.cleanups.append(fn)

    def done(self):
        while self.cleanups:
            try:
                self.cleanups.pop()()
            except Exception as e:  # keep stopping the others
                print("bench: cleanup: %s" % e, file=sys.stderr)


run = Run(DUR + 240)
print("setting up: a PostgreSQL cluster, the simulator, ingen serve --workers 1 ...")
pg = PgCluster(run)
sim = Sim(run, api_key=KEY, args=["--quiet"], max_seconds=DUR + 240).start()
AUTH = "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"
env = {
    AUTH + "ENABLE": "true", AUTH + "PASSWORD": PW,
    "INGENIOUS_LOGGING__ACCESS_LOG": "false",
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_TYPE": "rest",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
}
if HASHES:
    env[AUTH + "PASSWORD_HASH_CONCURRENCY"] = HASHES
srv = Server(run, workers=1, env=env).start(timeout=30)
wpid = srv.workers()[0]


def vm(field):
    with open("/proc/%d/status" % wpid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def call(method, path, body=None, headers=None, src=None, timeout=30):
    """(status, seconds) of one request on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout,
                                   source_address=(src, 0) if src else None)
    hdrs = dict(headers or {})
    if body is not None:
        body = json.dumps(body)
        hdrs["Content-Type"] = "application/json"
    t0 = time.time()
    try:
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return r.status, time.time() - t0, data
    except OSError as e:
        return type(e).__name__, time.time() - t0, b""
    finally:
        c.close()


st, _, data = call("POST", "/api/v1/auth/login", {"username": "admin", "password": PW})
if st != 200:
    print("bench: could not log in (%s): %r" % (st, data), file=sys.stderr)
    run.done()
    sys.exit(1)
bearer = {"Authorization": "Bearer " + json.loads(data)["access_token"]}
PROBES = [
    ("health", "GET", "/api/v1/health", None),
    ("token check", "GET", "/api/v1/auth/verify", None),
    ("chat", "POST", "/api/v1/chat",
     {"user_prompt": "Summarise the benefits of event-driven servers in two sentences.",
      "conversation_flow": "classification-agent"}),
]


def probe_round(out):
    for name, method, path, body in PROBES:
        st, s, _ = call(method, path, body, None if name == "health" else bearer)
        out.setdefault(name, []).append((st, s))


def summary(rows):
    sts = {}
    for st, _ in rows:
        sts[st] = sts.get(st, 0) + 1
    secs = [s for _, s in rows]
    return "%s, median %.0f ms, max %.0f ms" % (
        " ".join("%s x%d" % kv for kv in sorted(sts.items(), key=str)),
        statistics.median(secs) * 1000, max(secs) * 1000)


baseline = {}
for _ in range(5):
    probe_round(baseline)
    time.sleep(0.1)
idle_kb = vm("VmHWM")

counts = {}
lock = threading.Lock()
stop_at = time.time() + DUR


def flooder(i):
    n = i
    while time.time() < stop_at:
        a = n % ADDRESSES
        src = "127.4.%d.%d" % (a // 250, 1 + a % 250)
        st, _, _ = call("POST", "/api/v1/auth/login",
                        {"username": "flood-%d" % n, "password": "guess-%d" % n}, src=src)
        with lock:
            counts[st] = counts.get(st, 0) + 1
        n += FLOODERS


print("flooding: %d threads, %d source addresses, %d s" % (FLOODERS, ADDRESSES, DUR))
threads = [threading.Thread(target=flooder, args=(i,), daemon=True) for i in range(FLOODERS)]
t0 = time.time()
for th in threads:
    th.start()
during = {}
peak_kb = rss_max_kb = 0
next_probe = time.time()
while time.time() < stop_at:
    peak_kb = max(peak_kb, vm("VmHWM"))
    rss_max_kb = max(rss_max_kb, vm("VmRSS"))
    if time.time() >= next_probe:
        probe_round(during)
        next_probe = time.time() + 0.25
    time.sleep(0.05)
for th in threads:
    th.join(40)
elapsed = time.time() - t0
peak_kb = max(peak_kb, vm("VmHWM"))
after = {}
probe_round(after)

total = sum(counts.values())
print()
print("RESULT flood logins=%d rate=%.0f/s %s" % (
    total, total / elapsed, " ".join("%s=%d" % kv for kv in sorted(counts.items(), key=str))))
print("RESULT hash_concurrency=%s worker_rss_idle_mb=%.1f worker_rss_peak_mb=%.1f "
      "(VmHWM; the largest VmRSS sampled %.1f) target=300 %s" % (
          HASHES or "2 (default)", idle_kb / 1024.0, peak_kb / 1024.0, rss_max_kb / 1024.0,
          "MET" if peak_kb < TARGET_KB else "MISSED"))
for name, _, _, _ in PROBES:
    print("RESULT probe %-11s before: %s" % (name, summary(baseline[name])))
    print("RESULT probe %-11s during: %s" % (name, summary(during.get(name, [("-", 0)]))))
    print("RESULT probe %-11s after:  %s" % (name, summary(after[name])))
run.done()
EOF
