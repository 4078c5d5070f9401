"""bench/soak.py -- a soak of `ingen serve` (issue 15; a benchmark, not a test):
mixed traffic for a long time, a SIGHUP every minute, and at the end the
checks that nothing leaked and nothing was lost.  Run it through bench/soak.sh.

The server runs with its default configuration (2 workers) and authentication
on (Basic and JWT), against a private PostgreSQL cluster (`ingen db
init-local`) and the project's simulator at --latency-ms, all started and
stopped here with the e2e harness (tests/e2e/lib: Server, PgCluster, Sim).
--threads client threads, each on its own keep-alive connection, pick one of:
  30 % chat without thread_id          15 % streamed chat (/api/v1/chat/stream)
  25 % chat on one of its own threads  15 % history read of one of its threads
  15 % bad requests: malformed JSON (422, as the reference), a field of the wrong type (422),
       an unknown flow (404), no token (401): each must get its status
with the JWT of the last login; one more thread logs in every 2 s (the token
then used by all), with a wrong password every tenth time (401), and sends a
chat with Basic credentials every fifth time (password checks are bounded by
web_configuration.authentication.password_hash_concurrency, so one thread).
Every 5 s the RSS and open descriptors of the master and of each worker are
sampled (to --samples CSV).  At the end (the load stopped, connections closed):
  - no error: every request got the status its kind expects (no 5xx, no
    connection error, no timeout);
  - every acknowledged turn's two messages are in the database, every turn's
    usage row is there and linked;
  - the server's RSS is flat: the peak of the last minute is within 5 % of the
    peak of the second minute (the first is warm-up), for the master alone
    and for the whole server (a generation of workers lives one minute: each
    SIGHUP starts fresh ones);
  - no descriptor leak: idle descriptors of the master, and of each worker
    (idle, after the load), the same as before the load.
Prints TAP lines ("ok N - ...") and a summary line per minute.
"""
import argparse
import base64
import csv
import json
import os
import random
import signal
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e", "lib"))
from ingen import Server, Tap  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402
import http.client  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--duration", type=int, default=600)
ap.add_argument("--threads", type=int, default=16)
ap.add_argument("--latency-ms", type=int, default=50)
ap.add_argument("--sighup-every", type=int, default=60)
ap.add_argument("--samples", default=None)
args = ap.parse_args()

t = Tap(timeout=args.duration + 600)
KEY = "soak-key"
USER, PASSWORD = "soak", "soak-password-123"
BASIC = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()

pg = PgCluster(t)
sim = Sim(t, api_key=KEY, max_seconds=args.duration + 500, args=["--quiet"],
          latency_ms=args.latency_ms).start()
srv = Server(t, workers=2, env={
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_TYPE": "rest",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_LOGGING__ACCESS_LOG": "false",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE": "true",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__USERNAME": USER,
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD": PASSWORD,
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__LOGIN_MAX_FAILURES": "1000000",
}).start()


# ---- processes: RSS and descriptors ---------------------------------------------------
def proc_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except (FileNotFoundError, ProcessLookupError):
        return -1


def proc_fd_kinds(pid):
    """(descriptors that are not sockets, sockets) of a process."""
    files = socks = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:"):
                socks += 1
            else:
                files += 1
    except (FileNotFoundError, ProcessLookupError):
        return -1, -1
    return files, socks


def wait_idle_workers(n=2, seconds=40):
    """The pids of n workers of the newest generation, once the old ones left."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        w = srv.workers()
        if len(w) == n:
            return w
        time.sleep(0.2)
    return srv.workers()


# ---- the load -------------------------------------------------------------------------
KINDS = [("chat", 30), ("chat_thread", 25), ("stream", 15), ("history", 15), ("bad", 15)]
BAD = [("POST", "/api/v1/chat", "{not json", 422),   # the reference's malformed-JSON body
       ("POST", "/api/v1/chat", json.dumps({"user_prompt": 5,
                                            "conversation_flow": "classification-agent"}), 422),
       ("POST", "/api/v1/chat", json.dumps({"user_prompt": "hi",
                                            "conversation_flow": "no-such-flow"}), 404),
       ("GET", "/api/v1/conversations/x", None, 401)]   # sent without a token
lock = threading.Lock()
counts = {}          # kind -> [ok, failed]
failures = []        # (kind, what), the first few
acked = []           # (thread_id, message_id) of every 2xx turn
stop = threading.Event()


token = [""]


def login_once(password):
    """(status, body) of one login on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        c.request("POST", "/api/v1/auth/login", body=json.dumps(
            {"username": USER, "password": password}), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def logins():
    """Logins every 2 s: the token for everyone; a wrong password, a Basic chat."""
    k = 0
    while not stop.wait(2.0):
        k += 1
        try:
            if k % 10 == 0:
                st, b = login_once("wrong-password")
                note("login_wrong", st == 401, "%d %s" % (st, b[:200]))
                continue
            st, b = login_once(PASSWORD)
            ok = st == 200
            if ok:
                token[0] = json.loads(b)["access_token"]
            note("login", ok, "%d %s" % (st, b[:200]))
            if k % 5 == 0:
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
                c.request("POST", "/api/v1/chat", body=json.dumps(
                    {"user_prompt": "Soak turn with Basic credentials",
                     "conversation_flow": "classification-agent"}),
                    headers={"Authorization": BASIC, "Content-Type": "application/json"})
                r = c.getresponse()
                raw = r.read()
                c.close()
                good = r.status == 200
                if good:
                    bb = json.loads(raw)
                    with lock:
                        acked.append((bb["thread_id"], bb["message_id"]))
                note("basic_chat", good, "%d %s" % (r.status, raw[:200]))
        except (OSError, http.client.HTTPException, ValueError, KeyError) as ex:
            note("login", False, str(ex))


def note(kind, good, what=None):
    with lock:
        c = counts.setdefault(kind, [0, 0])
        c[0 if good else 1] += 1
        if not good and len(failures) < 20:
            failures.append((kind, what))


def pick():
    r = random.uniform(0, 100)
    for k, w in KINDS:
        if r < w:
            return k
        r -= w
    return KINDS[-1][0]


def client(n):
    conn = None
    threads = []
    rnd = random.Random(n)
    while not stop.is_set():
        kind = pick()
        hdr = {"Authorization": "Bearer " + token[0], "Content-Type": "application/json"}
        expect = 200
        if kind in ("chat", "chat_thread", "stream"):
            body = {"user_prompt": "Soak turn %d of client %d" % (rnd.randrange(10 ** 6), n),
                    "conversation_flow": "classification-agent"}
            if kind == "chat_thread" or (kind == "stream" and threads and rnd.random() < 0.5):
                if not threads or rnd.random() < 0.1:
                    threads.append("soak-%d-%s" % (n, uuid.uuid4()))
                body["thread_id"] = rnd.choice(threads)
            method, path, data = "POST", ("/api/v1/chat/stream" if kind == "stream"
                                          else "/api/v1/chat"), json.dumps(body)
        elif kind == "history":
            if not threads:
                continue
            method, path, data = "GET", "/api/v1/conversations/%s" % rnd.choice(threads), None
        else:
            method, path, data, expect = rnd.choice(BAD)
            if expect == 401:
                hdr = {}
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            conn.request(method, path, body=data, headers=hdr)
            r = conn.getresponse()
            raw = r.read()
            status = r.status
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as ex:
            # a keep-alive connection the server closed (a worker draining
            # after SIGHUP) is retried once on a fresh one by real clients;
            # count only what fails on a fresh connection
            if conn is not None:
                conn.close()
                conn = None
            try:
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
                conn.request(method, path, body=data, headers=hdr)
                r = conn.getresponse()
                raw = r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as ex2:
                note(kind, False, "%s %s: %s / %s" % (method, path, ex, ex2))
                conn = None
                continue
        if status != expect:
            note(kind, False, "%s %s: %d %s" % (method, path, status, raw[:200]))
            continue
        good = True
        if kind in ("chat", "chat_thread"):
            try:
                b = json.loads(raw)
                with lock:
                    acked.append((b["thread_id"], b["message_id"]))
            except (ValueError, KeyError):
                good = False
        elif kind == "stream":
            # acknowledged by its final frame (sent after the COMMIT), no error frame
            good = False
            for part in raw.decode(errors="replace").split("\n\n"):
                if not part.startswith("data: "):
                    continue
                try:
                    f = json.loads(part[6:])
                except ValueError:
                    good = False
                    break
                if f.get("error") is not None:
                    good = False
                    break
                d = f.get("data") or {}
                if d.get("is_final"):
                    good = True
                    with lock:
                        acked.append((d["thread_id"], d["message_id"]))
        note(kind, good, None if good else "%s %s: %s" % (method, path, raw[:200]))
    if conn is not None:
        conn.close()


# ---- before the load --------------------------------------------------------------------
time.sleep(1)
w0 = wait_idle_workers()
fd_master0 = proc_fds(srv.pid)
fd_workers0 = sorted(proc_fd_kinds(p) for p in w0)
t.diag("idle before the load: master %d fds, %d kB; workers %s fds, %s kB"
       % (fd_master0, proc_rss_kb(srv.pid), fd_workers0, [proc_rss_kb(p) for p in w0]))

samples = []          # (t, master_kb, workers_kb_total, n_workers, master_fds)
st, b = login_once(PASSWORD)
t.ok(st == 200, "the first login gives a token", b)
token[0] = json.loads(b)["access_token"]
clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.threads)]
clients.append(threading.Thread(target=logins, daemon=True))
t0 = time.time()
for c in clients:
    c.start()
next_hup = t0 + args.sighup_every
next_sample = t0
next_report = t0 + 60
hups = 0
out = open(args.samples, "w", newline="") if args.samples else None
wr = csv.writer(out) if out else None
if wr:
    wr.writerow(["seconds", "master_rss_kb", "workers_rss_kb", "workers", "master_fds",
                 "worker_fds", "turns_acked"])
while time.time() - t0 < args.duration:
    now = time.time()
    if now >= next_sample:
        ws = srv.workers()
        mk = proc_rss_kb(srv.pid)
        wk = sum(proc_rss_kb(p) for p in ws)
        samples.append((now - t0, mk, wk, len(ws), proc_fds(srv.pid)))
        if wr:
            wr.writerow([round(now - t0, 1), mk, wk, len(ws), proc_fds(srv.pid),
                         " ".join(str(proc_fds(p)) for p in ws), len(acked)])
            out.flush()
        next_sample += 5
    if now >= next_hup:
        os.kill(srv.pid, signal.SIGHUP)
        hups += 1
        next_hup += args.sighup_every
    if now >= next_report:
        with lock:
            summary = " ".join("%s=%d/%d" % (k, v[0], v[1]) for k, v in sorted(counts.items()))
        last = samples[-1]
        t.diag("%4.0f s: ok/failed %s; rss master %d kB, server %d kB; reloads %d"
               % (now - t0, summary, last[1], last[1] + last[2], hups))
        next_report += 60
    time.sleep(0.2)
stop.set()
for c in clients:
    c.join(60)
elapsed = time.time() - t0
if out:
    out.close()

# ---- the checks ----------------------------------------------------------------------------
with lock:
    total_ok = sum(v[0] for v in counts.values())
    total_bad = sum(v[1] for v in counts.values())
t.diag("%d requests in %.0f s (%.0f/s), %d reloads: %s" % (
    total_ok + total_bad, elapsed, (total_ok + total_bad) / elapsed, hups,
    " ".join("%s=%d/%d" % (k, v[0], v[1]) for k, v in sorted(counts.items()))))
t.ok(total_bad == 0 and total_ok > 0, "no error: every request got the status its kind expects "
     "(%d requests)" % total_ok, "\n".join("%s: %s" % f for f in failures))
t.ok(all(counts.get(k, [0])[0] > 0 for k in [k for k, _ in KINDS] +
        (["login", "basic_chat", "login_wrong"] if elapsed > 25 else [])),
     "every kind of request was made", counts)

ids = {}
for tid, mid in acked:
    ids[mid] = tid
found = 0
if ids:
    mids = list(ids)
    for i in range(0, len(mids), 2000):
        chunk = ",".join("'%s'" % m for m in mids[i:i + 2000])
        found += int(pg.value("SELECT count(*) FROM messages WHERE role = 'assistant' AND "
                              "id IN (%s)" % chunk, role="readonly"))
t.ok(found == len(ids) and len(ids) > 0,
     "every acknowledged turn's reply is stored (%d of %d)" % (found, len(ids)))
row = pg.sql("SELECT (SELECT count(*) FROM messages WHERE role = 'assistant'), "
             "(SELECT count(*) FROM messages WHERE role = 'user'), "
             "(SELECT count(*) FROM llm_usage), "
             "(SELECT count(*) FROM llm_usage u JOIN messages m ON m.id = u.message_id)",
             role="readonly")[0]
replies, questions, usage_rows, linked = (int(x) for x in row)
t.ok(replies == questions and linked == replies and usage_rows >= replies,
     "each stored turn has its question, its reply and its linked usage row "
     "(%d replies, %d questions, %d usage rows, %d linked)"
     % (replies, questions, usage_rows, linked))


end = samples[-1][0] if samples else 0
if end >= 180:
    m2 = max(s[1] for s in samples if 60 <= s[0] < 120)
    mN = max(s[1] for s in samples if s[0] >= end - 60)
    s2 = max(s[1] + s[2] for s in samples if 60 <= s[0] < 120)
    sN = max(s[1] + s[2] for s in samples if s[0] >= end - 60)
    t.ok(mN <= m2 * 1.05, "the master's RSS is flat: %d kB in the second minute, %d kB in the "
         "last (%+.1f %%)" % (m2, mN, 100.0 * (mN - m2) / m2))
    t.ok(sN <= s2 * 1.05, "the server's RSS is flat: peak %d kB in the second minute, %d kB in "
         "the last (%+.1f %%)" % (s2, sN, 100.0 * (sN - s2) / s2))
else:
    t.diag("shorter than 3 minutes: no RSS trend")

time.sleep(7)     # keep-alive connections close (keepalive_timeout 5 s)
w1 = wait_idle_workers()
fd_master1 = proc_fds(srv.pid)
fd_workers1 = sorted(proc_fd_kinds(p) for p in w1)
t.ok(fd_master1 == fd_master0, "the master's descriptors: %d before, %d after"
     % (fd_master0, fd_master1))
# a worker keeps its database connections (chat_history.pool_size, 4) and
# some idle upstream connections (libcurl's cache) open: sockets may be more
# than before the load, within that bound; every other descriptor is the same
SOCKET_BOUND = 4 + 4 * args.threads
t.ok([f for f, _ in fd_workers1] == [f for f, _ in fd_workers0],
     "an idle worker's descriptors other than sockets: %s before, %s after"
     % ([f for f, _ in fd_workers0], [f for f, _ in fd_workers1]))
t.ok(all(0 <= k <= SOCKET_BOUND for _, k in fd_workers1),
     "an idle worker's sockets: %s before, %s after (database and upstream connections "
     "kept, at most %d)" % ([k for _, k in fd_workers0], [k for _, k in fd_workers1],
                            SOCKET_BOUND))
t.ok(not srv.log_lines("has not reported"), "no worker stopped reporting",
     "\n".join(srv.log_lines("has not reported")[:5]))
t.ok(not srv.log_lines("level=error"), "no error in the server's log",
     "\n".join(srv.log_lines("level=error")[:20]))
t.done()
