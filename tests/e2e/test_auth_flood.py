"""test_auth_flood.py -- a login flood does not exhaust a worker's memory
(issue 8, defect f).

Every password check is a 32 MiB scrypt, unknown users included.  Before
the fix nothing but the 64 flow threads bounded how many ran at once: 48
concurrent logins from 2,000 loopback addresses (so that no address reaches
the throttle) took one worker past 1.5 GB.  Now at most
password_hash_concurrency (2) hashes run per worker and a few more wait up
to 1 s; the rest get 503 with Retry-After.  The test floods one worker,
reads its peak RSS (VmHWM in /proc/<pid>/status), and checks that every
login got 200, 401 or 503, that health and the right password still answer
during the flood, and that the worker's peak stays under 300 MB.

The flood uses user names that cannot be in the users table (a space), so
each one costs a dummy scrypt without a database."""
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request  # noqa: E402

t = Tap(timeout=120)

AUTH = "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"
FLOODERS = 48
ADDRESSES = 2000
SECONDS = 8
PEAK_LIMIT_KB = 300 * 1024


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def source(n):
    """The n-th flood address: 127.2.x.y, never .0 or .255."""
    n %= ADDRESSES
    return "127.2.%d.%d" % (n // 250, 1 + n % 250)


def login(src, user, password, timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout,
                                   source_address=(src, 0))
    try:
        c.request("POST", "/api/v1/auth/login",
                  body=json.dumps({"username": user, "password": password}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("Retry-After")
    finally:
        c.close()


srv = Server(t, workers=1, env={
    AUTH + "ENABLE": "true", AUTH + "PASSWORD": "flood-admin-pw",
    "INGENIOUS_LOGGING__ACCESS_LOG": "false",
}).start(timeout=20)
pids = srv.workers()
t.eq(len(pids), 1, "one worker")
wpid = pids[0]
st, _ = login("127.0.0.1", "admin", "flood-admin-pw")
t.eq(st, 200, "the right password logs in before the flood")
before_kb = vm_kb(wpid, "VmHWM")
with open("/proc/%d/maps" % wpid) as f:
    sanitized = "libasan" in f.read()

statuses = {}
bad_503 = []
lock = threading.Lock()
stop_at = time.time() + SECONDS


def flooder(i):
    n = i
    while time.time() < stop_at:
        try:
            st, ra = login(source(n), "flood user %d" % n, "guess-%d" % n)
        except OSError as e:
            st, ra = type(e).__name__, None
        with lock:
            statuses[st] = statuses.get(st, 0) + 1
            if st == 503 and not (ra or "").isdigit():
                bad_503.append(ra)
        n += FLOODERS


ths = [threading.Thread(target=flooder, args=(i,)) for i in range(FLOODERS)]
for th in ths:
    th.start()
peak_kb = 0
health = []
admin = []
k = 0
while time.time() < stop_at:
    peak_kb = max(peak_kb, vm_kb(wpid, "VmHWM"))
    t0 = time.time()
    st, _, _ = request(srv.port, "GET", "/api/v1/health")
    health.append((st, time.time() - t0))
    try:
        admin.append(login("127.3.0.%d" % (1 + k % 250), "admin", "flood-admin-pw")[0])
    except OSError as e:
        admin.append(type(e).__name__)
    k += 1
    time.sleep(0.2)
for th in ths:
    th.join()
peak_kb = max(peak_kb, vm_kb(wpid, "VmHWM"))

total = sum(statuses.values())
t.diag("flood: %d logins in %d s, %s; worker VmHWM %d kB before, %d kB after" %
       (total, SECONDS, statuses, before_kb, peak_kb))
t.ok(set(statuses) <= {200, 401, 503}, "every flood login got 200, 401 or 503 (%s)" % statuses)
t.ok(statuses.get(401, 0) > 0, "some were checked: 401 (%d)" % statuses.get(401, 0))
t.ok(statuses.get(503, 0) > 0 and not bad_503,
     "the excess got 503 with Retry-After (%d)" % statuses.get(503, 0), bad_503[:5])
if sanitized:
    # AddressSanitizer keeps freed blocks in quarantine (256 MB by default)
    # and adds shadow memory: the bound of a plain build does not apply
    t.ok(True, "the worker's peak RSS stays under 300 MB # SKIP AddressSanitizer build "
         "(%.1f MB)" % (peak_kb / 1024.0))
else:
    t.ok(peak_kb < PEAK_LIMIT_KB,
         "the worker's peak RSS stays under 300 MB (%.1f MB)" % (peak_kb / 1024.0))
t.ok(health and all(st == 200 for st, _ in health) and max(s for _, s in health) < 1.0,
     "health answered during the flood (%d requests, slowest %.3f s)" %
     (len(health), max(s for _, s in health) if health else -1))
t.ok(admin and set(admin) <= {200, 503},
     "the right password during the flood: 200 or 503, never 401 (%s)" % admin)
t.ok(srv.wait_log("password checks saturated", timeout=2),
     "the saturation is logged (rate-limited)")
st, _ = login("127.0.0.1", "admin", "flood-admin-pw")
t.eq(st, 200, "after the flood the right password logs in")
srv.stop()
t.done()
