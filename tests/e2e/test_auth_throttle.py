"""test_auth_throttle.py -- the login throttle (RELIABILITY A2): failed
logins and failed Basic attempts counted per user name and per client
address across all workers of a server, 429 with Retry-After and the same
body for existing and unknown users, refused before any hashing, kept
across a reload; a success clears the user's count but not the address's;
the window ends on time.

Client addresses other than 127.0.0.1 are made by binding the client
socket to 127.0.0.2, 127.0.0.3 ... (all of 127/8 is loopback on Linux)."""
import http.client
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from authkit import basic, worker_conns, send  # noqa: E402

t = Tap(timeout=240)

THROTTLED = b'{"detail":"Too many failed login attempts. Try again later."}'
INCORRECT = b'{"detail":"Incorrect username or password"}'
AUTH = "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"


def login_body(user, password):
    return {"username": user, "password": password}


def attempt(srv, conn, user, password, how):
    """One credential check by login or by Basic on a protected route."""
    if how == "login":
        return send(srv, conn, "POST", "/api/v1/auth/login", login_body(user, password))
    return send(srv, conn, "GET", "/api/v1/auth/verify", headers=basic(user, password))


def fresh(srv, source="127.0.0.1"):
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10,
                                      source_address=(source, 0))


def is_429(resp, name, max_wait):
    st, h, b, _ = resp
    ra = h.get("retry-after", "")
    ok = st == 429 and b == THROTTLED and ra.isdigit() and 1 <= int(ra) <= max_wait
    t.ok(ok, name, "status %s, body %r, Retry-After %r" % (st, b, ra))
    return int(ra) if ra.isdigit() else None


# ---- a server with the default limits (10 failures in 900 s) ------------------------------
pg = PgCluster(t)
srv = Server(t, workers=2, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    AUTH + "ENABLE": "true", AUTH + "PASSWORD": "the-admin-password",
}).start(timeout=20)

conns = worker_conns(srv)
pids = sorted(conns)
t.ok(len(pids) == 2, "connections pinned to both workers (%s)" % pids)
served = {p: 0 for p in pids}
statuses = []
hashed = []
first = time.time()
for i in range(10):
    pid = pids[i % len(pids)]
    st, h, b, by = attempt(srv, conns[pid], "admin", "wrong-%d" % i, "login" if i % 3 else "basic")
    statuses.append((st, b == INCORRECT))
    hashed.append(float(h.get("x-processing-time", "0s")[:-1]))
    if by is not None:
        served[by] = served.get(by, 0) + 1
t.eq(statuses, [(401, True)] * 10, "10 wrong passwords (login and Basic): ten 401s")
t.ok(len(pids) == 2 and all(served[p] == 5 for p in pids),
     "the failures were spread over both workers (%s)" % served)
r = attempt(srv, conns[pids[0]], "admin", "the-admin-password", "login")
ra = is_429(r, "the 11th attempt, with the right password, is refused: 429 + Retry-After", 900)
elapsed = time.time() - first
t.ok(ra is not None and 900 - elapsed - 2 <= ra <= 900,
     "Retry-After counts down the 900 s window opened by the first failure "
     "(%s, %.1f s later)" % (ra, elapsed))
took = float(r[1].get("x-processing-time", "9s")[:-1])
typical = sorted(hashed)[len(hashed) // 2]
t.ok(took < typical / 4, "a throttled attempt is refused before hashing (%.1f ms, a failed "
     "check takes %.1f ms)" % (took * 1000, typical * 1000))
is_429(attempt(srv, conns[pids[-1]], "admin", "the-admin-password", "basic"),
       "Basic on the other worker is refused as well", 900)
hc = fresh(srv)
hc.request("GET", "/api/v1/health")
t.eq(hc.getresponse().status, 200, "routes that need no credentials still answer")
hc.close()

# per address: any user from this address is refused now
is_429(attempt(srv, fresh(srv), "ghost", "whatever", "login"),
       "another (unknown) user from the same address: 429 (per address)", 900)
# per user: admin is refused from any address; others from a new address are not
is_429(attempt(srv, fresh(srv, "127.0.0.2"), "admin", "the-admin-password", "login"),
       "admin from another address: 429 (per user)", 900)
st, _, b, _ = attempt(srv, fresh(srv, "127.0.0.2"), "someone", "wrong", "login")
t.eq((st, b), (401, INCORRECT), "another user from another address is not throttled")

# an unknown user, from a fresh address, spread over both workers: same body
c3 = worker_conns(srv, source="127.0.0.3")
p3 = sorted(c3)
statuses = []
for i in range(10):
    st, _, b, _ = attempt(srv, c3[p3[i % len(p3)]], "no-such-user", "guess-%d" % i,
                          "basic" if i % 2 else "login")
    statuses.append(st)
t.eq(statuses, [401] * 10, "10 failures of an unknown user: ten 401s")
r_unknown = attempt(srv, c3[p3[0]], "no-such-user", "guess-10", "login")
is_429(r_unknown, "then 429 for the unknown user", 900)
r_known = attempt(srv, fresh(srv, "127.0.0.4"), "admin", "x", "login")
t.eq(r_unknown[2], r_known[2], "the same 429 body for an existing and an unknown user")
t.eq(sorted(r_unknown[1]), sorted(r_known[1]), "and the same header names")

# the counters live in the master's segment: a reload keeps them
srv.signal(signal.SIGHUP)
t.ok(srv.wait_log("generation 2 is serving", timeout=15), "reloaded (generation 2)")
is_429(attempt(srv, fresh(srv, "127.0.0.5"), "admin", "the-admin-password", "login"),
       "the new generation's workers still refuse admin", 900)
t.eq(attempt(srv, fresh(srv, "127.0.0.5"), "admin", "the-admin-password", "basic")[0], 429,
     "by Basic too")

lines = srv.log_lines("too many failed logins, refused")
t.ok(lines and all("level=info" in l and "user=" in l and "client=" in l for l in lines),
     "refusals are logged at info with user and client", "\n".join(lines[:3]))
t.ok("the-admin-password" not in srv.log(), "no password in the log")
srv.stop()

# ---- a short window: success clears the user's count, not the address's ------------------
srv2 = Server(t, workers=2, env={
    AUTH + "ENABLE": "true", AUTH + "PASSWORD": "pw2",
    AUTH + "LOGIN_MAX_FAILURES": "3", AUTH + "LOGIN_WINDOW_SECONDS": "8",
}).start(timeout=20)
c = fresh(srv2)
for i in range(2):
    attempt(srv2, c, "admin", "bad", "login")
st, _, _, _ = attempt(srv2, c, "admin", "pw2", "login")
t.eq(st, 200, "two failures, then the right password: 200")
st, _, _, _ = attempt(srv2, c, "admin", "bad", "basic")
t.eq(st, 401, "a third failure from this address (the first for admin since the success)")
is_429(attempt(srv2, c, "admin", "pw2", "login"),
       "the address reached 3 (a success does not reset it): 429", 8)
st, _, _, _ = attempt(srv2, fresh(srv2, "127.0.0.2"), "admin", "pw2", "login")
t.eq(st, 200, "admin from another address: 200 (the success reset admin's own count)")
r = attempt(srv2, fresh(srv2), "admin", "pw2", "login")
ra = is_429(r, "still refused from the throttled address", 8)
time.sleep((ra or 8) + 0.3)
st, _, b, _ = attempt(srv2, fresh(srv2), "admin", "pw2", "login")
t.ok(st == 200 and b"access_token" in b, "after Retry-After seconds the window is over: 200")
t.done()
