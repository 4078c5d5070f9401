"""test_chat_db_outage.py -- RELIABILITY D1 and D2 through the real server
(issue 3): PostgreSQL stopped under a load of chat turns, and absent when
the server starts.

  * the cluster stops while chats run: during the outage every chat gets
    503 with Retry-After, fast (never 500, never a hang beyond the connect
    timeout); /api/v1/ready answers 503; when the cluster is back service
    returns without restarting the server or a worker; every 200's
    message_id is in the messages table afterwards and every thread's seq
    has no gap
  * the cluster is stopped in immediate mode (SIGQUIT to the postmaster:
    each backend sends a WARNING and quits, the pools' idle connections
    fail their next statement with libpq's own error, no SQLSTATE) between
    bursts of chats, GET /conversations and feedback PUTs: every answer of
    every route is 200 or 503 with Retry-After, never 500 (issue 8, defect
    a: such a failure was a 500)
  * the cluster is down when the server starts (found through
    server.state_dir, the quick start's path): the server serves, /ready
    503 and chats 503; the cluster starts; /ready turns 200 and chats work,
    without a restart
"""
import http.client
import json
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Server, Tap, request  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=170)

KEY = "chat-db-outage-key-41c2"
FLOW = "classification-agent"
CONNECT_TIMEOUT = 2         # INGENIOUS_CHAT_HISTORY__CONNECT_TIMEOUT, seconds
SLACK = 1.0                 # what a turn may take besides waiting for the database
LOADERS = 6

pg = PgCluster(t)
sim = Sim(t, api_key=KEY, max_seconds=200, args=["--quiet"]).start()


def server_env(**over):
    env = {"INGENIOUS_MODELS__0__MODEL": "gpt-4o",
           "INGENIOUS_MODELS__0__API_TYPE": "rest",
           "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
           "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
           "INGENIOUS_MODELS__0__API_KEY": KEY,
           "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
           "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
           "INGENIOUS_CHAT_HISTORY__CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
           "INGENIOUS_LLM__TIMEOUT_MS": "3000"}
    env.update(over)
    return env


def q(s):
    return "'" + s.replace("'", "''") + "'"


def jbody(b):
    try:
        return json.loads(b)
    except ValueError:
        return None


def ready(port):
    st, h, b = request(port, "GET", "/api/v1/ready", timeout=CONNECT_TIMEOUT + 5)
    return st, h, jbody(b) or {}


def wait_ready(port, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if ready(port)[0] == 200:
            return True
        time.sleep(0.1)
    return False


def retry_after_ok(h):
    v = h.get("retry-after", "")
    return v.isdigit() and int(v) >= 1


class ChatLoad:
    """Closed-loop chat turns from threads over keep-alive connections, most
    on a conversation thread of their own, `fresh` of them starting a new
    thread with every turn; records every outcome with its start time,
    duration, Retry-After and body."""

    def __init__(self, port, n, fresh=2):
        self.port = port
        self.threads_ids = [str(uuid.uuid4()) for _ in range(n - fresh)] + [None] * fresh
        self.results = []          # (start, seconds, status, headers, body, thread_id)
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(tid,), daemon=True)
                        for tid in self.threads_ids]

    def _run(self, tid):
        conn, i = None, 0
        while not self.stop_flag.is_set():
            i += 1
            body = {"user_prompt": "outage turn %d: is my bike ready?" % i,
                    "conversation_flow": FLOW, "user_id": "olga"}
            if tid is not None:
                body["thread_id"] = tid
            body = json.dumps(body)
            t0 = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=CONNECT_TIMEOUT + 10)
                conn.request("POST", "/api/v1/chat", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                res = (t0, time.time() - t0, r.status,
                       {k.lower(): v for k, v in r.getheaders()}, data, tid)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as exc:   # noqa: BLE001 -- a failure to report
                res = (t0, time.time() - t0, 0, {}, repr(exc).encode(), tid)
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.results.append(res)
            if res[2] != 200:
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for th in self.threads:
            th.join(CONNECT_TIMEOUT + 15)
        return self


# ======================================================================================
# 1. the database stops under load, then comes back
# ======================================================================================
srv = Server(t, workers=2, env=server_env(
    INGENIOUS_CHAT_HISTORY__DATABASE_URL=pg.url("app"))).start()
workers_before = sorted(srv.workers())
st, _, r = ready(srv.port)
t.ok(st == 200 and r.get("components", {}).get("database") == "ok",
     "outage: ready before the outage", r)

load = ChatLoad(srv.port, LOADERS).start()
t.at_exit(load.stop)
time.sleep(0.8)
t_stopping = time.time()
pg.stop()
t_down = time.time()
time.sleep(0.3)
outage_ready = [ready(srv.port) for _ in range(3)]
time.sleep(1.2)
t_restart = time.time()
pg.start()
back = wait_ready(srv.port)
t_back = time.time()
# each worker's pool retries on its own backoff (at most 5 s): wait until a
# whole second of turns, on every worker, is served
t_full = None
while time.time() < t_back + 8:
    time.sleep(0.25)
    with load.lock:
        window = [r for r in load.results if r[0] > time.time() - 1.25 and r[0] > t_back]
    if time.time() > t_back + 1 and window and all(r[2] == 200 for r in window):
        t_full = max(t_back, time.time() - 1.25)
        break
load.stop()

res = load.results
statuses = {}
for r in res:
    statuses[r[2]] = statuses.get(r[2], 0) + 1
t.diag("outage: %d turns, statuses %s, down %.2f s, ready again %.2f s and fully served "
       "%.2f s after the start" % (len(res), statuses, t_restart - t_down,
                                   t_back - t_restart, (t_full or time.time()) - t_restart))
before = [r for r in res if r[0] + r[1] < t_stopping]
during = [r for r in res if r[0] > t_down + 0.05 and r[0] + r[1] < t_restart]
after = [r for r in res if t_full is not None and r[0] > t_full]
t.ok(before and all(r[2] == 200 for r in before), "outage: turns before the outage are 200",
     [(r[2], r[4][:100]) for r in before if r[2] != 200][:5])
t.ok(set(statuses) <= {200, 503}, "outage: every answer is 200 or 503 (no 500, no error)",
     sorted({(r[2], r[4][:160]) for r in res if r[2] not in (200, 503)})[:10])
t.ok(len(during) >= LOADERS and all(r[2] == 503 for r in during),
     "outage: chats during the outage get 503 (%d of them)" % len(during),
     [(r[2], r[4][:100]) for r in during if r[2] != 503][:5])
s503 = [r for r in res if r[2] == 503]
t.ok(s503 and all(retry_after_ok(r[3]) for r in s503), "outage: every 503 has a Retry-After",
     [r[3] for r in s503 if not retry_after_ok(r[3])][:3])
t.ok(all((jbody(r[4]) or {}).get("detail") ==
         "chat history database unavailable, retry later" for r in s503),
     "outage: and says the database is unavailable, no details",
     sorted({r[4][:200] for r in s503})[:3])
slowest = max((r[1] for r in s503), default=0)
t.ok(slowest < CONNECT_TIMEOUT + SLACK,
     "outage: no 503 took longer than the connect timeout (slowest %.3f s)" % slowest)
slowest = max((r[1] for r in res), default=0)
t.ok(slowest < CONNECT_TIMEOUT + SLACK, "outage: no turn hung (slowest %.3f s)" % slowest)
t.ok(all(st == 503 and retry_after_ok(h) and r.get("status") == "not ready" and
         r.get("components", {}).get("database") == "unavailable"
         for st, h, r in outage_ready),
     "outage: /api/v1/ready says not ready (503, Retry-After)", outage_ready)
t.ok(back, "outage: ready again after the cluster restarts")
t.ok(t_full is not None and after and all(r[2] == 200 for r in after),
     "outage: within the pools' backoff every turn is 200 again (%d)" % len(after),
     [(r[2], r[4][:100]) for r in after if r[2] != 200][:5])
t.ok(srv.proc.poll() is None and sorted(srv.workers()) == workers_before,
     "outage: same master and workers, no restart", (workers_before, srv.workers()))

acked = [(jbody(r[4]) or {}).get("message_id") for r in res if r[2] == 200]
stored = set(x[0] for x in pg.sql("SELECT id::text FROM messages WHERE role = 'assistant'",
                                  role="readonly"))
missing = [m for m in acked if m not in stored]
t.ok(acked and not missing, "outage: zero acknowledged turns missing (%d acknowledged, "
     "%d stored)" % (len(acked), len(stored)), missing[:5])
t.ok(any(r[2] == 200 and r[5] is None for r in res) and
     any(r[2] == 503 and r[5] is None for r in res),
     "outage: new-thread turns were acknowledged and refused too")
gaps = pg.sql("SELECT thread_id, count(*), min(seq), max(seq) FROM messages "
              "GROUP BY thread_id HAVING min(seq) <> 1 OR max(seq) <> count(*) "
              "OR count(*) % 2 <> 0", role="readonly")
t.ok(not gaps, "outage: every thread's seq is 1..n without a gap, whole turns only", gaps[:3])
srv.stop()

# ======================================================================================
# 2. the database stops in immediate mode under a load of every route
# ======================================================================================
class RouteLoad:
    """Closed-loop requests over keep-alive connections, one thread per
    (kind, make) loader; make(i) gives (method, path, body).  Records every
    outcome as (kind, start, seconds, status, headers, body).  pause() waits
    until no request is in flight, so that the workers' database
    connections sit idle in their pools; resume() lets the loaders go on."""

    def __init__(self, port, loaders):
        self.port = port
        self.results = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.go = threading.Event()
        self.go.set()
        self.in_flight = 0
        self.threads = [threading.Thread(target=self._run, args=l, daemon=True)
                        for l in loaders]

    def pause(self, seconds=10):
        self.go.clear()
        deadline = time.time() + seconds
        while time.time() < deadline:
            with self.lock:
                if self.in_flight == 0:
                    return True
            time.sleep(0.01)
        return False

    def resume(self):
        self.go.set()

    def _run(self, kind, make):
        conn, i = None, 0
        while not self.stop_flag.is_set():
            if not self.go.wait(0.1):
                continue
            with self.lock:
                if not self.go.is_set():
                    continue
                self.in_flight += 1
            i += 1
            method, path, body = make(i)
            t0 = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=CONNECT_TIMEOUT + 10)
                conn.request(method, path, body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                res = (kind, t0, time.time() - t0, r.status,
                       {k.lower(): v for k, v in r.getheaders()}, data)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as exc:   # noqa: BLE001 -- a failure to report
                res = (kind, t0, time.time() - t0, 0, {}, repr(exc).encode())
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.results.append(res)
                self.in_flight -= 1

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def stop(self):
        self.stop_flag.set()
        self.go.set()
        for th in self.threads:
            th.join(CONNECT_TIMEOUT + 15)
        return self


srv = Server(t, workers=2, env=server_env(
    INGENIOUS_CHAT_HISTORY__DATABASE_URL=pg.url("app"),
    INGENIOUS_CHAT_HISTORY__POOL_SIZE="8")).start()
t.ok(wait_ready(srv.port), "immediate: ready before the outage")
seeded = []                 # (thread_id, assistant message_id)
for k in range(4):
    tid = str(uuid.uuid4())
    st, _, b = request(srv.port, "POST", "/api/v1/chat",
                       {"user_prompt": "seed %d: where is my order?" % k,
                        "conversation_flow": FLOW, "thread_id": tid, "user_id": "olga"},
                       timeout=15)
    if st == 200:
        seeded.append((tid, (jbody(b) or {}).get("message_id")))
t.eq(len(seeded), 4, "immediate: four conversations to read and rate")


def get_conversation(k):
    def make(i):
        return "GET", "/api/v1/conversations/%s?limit=20" % seeded[k % len(seeded)][0], None
    return make


def put_feedback(k):
    def make(i):
        tid, mid = seeded[k % len(seeded)]
        return "PUT", "/api/v1/messages/%s/feedback" % mid, json.dumps(
            {"thread_id": tid, "message_id": mid, "user_id": "olga",
             "positive_feedback": i % 2 == 0})
    return make


def post_chat(k):
    def make(i):
        return "POST", "/api/v1/chat", json.dumps(
            {"user_prompt": "immediate %d.%d: is my bike ready?" % (k, i),
             "conversation_flow": FLOW, "thread_id": seeded[k % len(seeded)][0],
             "user_id": "olga"})
    return make


loaders = ([("conversation", get_conversation(k)) for k in range(6)] +
           [("feedback", put_feedback(k)) for k in range(4)] +
           [("chat", post_chat(k)) for k in range(3)])
kinds = sorted({k for k, _ in loaders})
# Each round: load on every route; a moment with no request in flight, so
# that the pools hold idle connections (each one dies with its backend and
# fails its next statement with libpq's own error, no SQLSTATE); the
# immediate stop; the load again, on the dead connections first; the restart.
rounds = []
for rnd in range(3):
    load = RouteLoad(srv.port, loaders).start()
    t.at_exit(load.stop)
    time.sleep(0.6)
    idle = load.pause()
    t_kill = time.time()
    gone = pg.stop_immediate()
    t_down = time.time()
    load.resume()
    time.sleep(1.0)
    t_restart = time.time()
    pg.start()
    back = wait_ready(srv.port)
    time.sleep(0.5)
    load.stop()
    rounds.append((gone and idle, back, t_kill, t_down, t_restart, load.results))

res = [r for rd in rounds for r in rd[5]]
by = {}
for r in res:
    by.setdefault(r[0], {}).setdefault(r[3], 0)
    by[r[0]][r[3]] += 1
t.diag("immediate: %d requests in %d rounds, statuses by route %s" % (len(res), len(rounds), by))
t.ok(all(rd[0] for rd in rounds), "immediate: with idle pools, the postmaster quit on "
     "SIGQUIT every round")
t.ok(all(rd[1] for rd in rounds), "immediate: ready again after every restart")
for kind in kinds:
    mine = [r for r in res if r[0] == kind]
    during = [r for rd in rounds for r in rd[5]
              if r[0] == kind and r[1] > rd[3] + 0.05 and r[1] + r[2] < rd[4]]
    t.ok(set(r[3] for r in mine) <= {200, 503},
         "immediate: every %s answer is 200 or 503, never 500" % kind,
         sorted({(r[3], r[5][:160]) for r in mine if r[3] not in (200, 503)})[:10])
    t.ok(during and all(r[3] == 503 for r in during),
         "immediate: %s requests while down get 503 (%d)" % (kind, len(during)),
         [(r[3], r[5][:100]) for r in during if r[3] != 503][:5])
    s503 = [r for r in mine if r[3] == 503]
    t.ok(s503 and all(retry_after_ok(r[4]) for r in s503),
         "immediate: every %s 503 has a Retry-After (%d)" % (kind, len(s503)),
         [r[4] for r in s503 if not retry_after_ok(r[4])][:3])
    t.ok(any(r[3] == 200 for r in mine), "immediate: %s requests succeed around it" % kind)
t.ok(not srv.log_lines("could not run a statement: no message"),
     "immediate: no failure is logged as a statement error without a message",
     "\n".join(srv.log_lines("no message")[:5]))
srv.stop()

# ======================================================================================
# 3. the database is down when the server starts (found through server.state_dir)
# ======================================================================================
pg.stop()
srv = Server(t, workers=2, env=server_env(
    INGENIOUS_SERVER__STATE_DIR=os.path.dirname(pg.dir)))
t0 = time.time()
srv.start(timeout=CONNECT_TIMEOUT + 15)
t.ok(True, "absent: the server starts with the database down (%.2f s)" % (time.time() - t0))
t.ok(srv.log_lines("database unavailable at start"), "absent: the log says so",
     srv.log()[-1500:])
master, workers = srv.pid, sorted(srv.workers())
st, h, r = ready(srv.port)
t.ok(st == 503 and retry_after_ok(h) and r.get("components", {}).get("database") ==
     "unavailable", "absent: /api/v1/ready is 503 with Retry-After", (st, h, r))
sim.reset()
t0 = time.time()
st, h, b = request(srv.port, "POST", "/api/v1/chat",
                   {"user_prompt": "anyone there?", "conversation_flow": FLOW},
                   timeout=CONNECT_TIMEOUT + 10)
secs = time.time() - t0
t.ok(st == 503 and retry_after_ok(h), "absent: a chat gets 503 with Retry-After", (st, h, b))
t.ok(secs < CONNECT_TIMEOUT + SLACK, "absent: within the connect timeout (%.3f s)" % secs)
t.eq(sim.stats()["chat"], 0, "absent: a turn that cannot be stored spends no LLM call")
pg.start()
t0 = time.time()
t.ok(wait_ready(srv.port), "absent: /ready turns 200 when the cluster starts (%.2f s)"
     % (time.time() - t0))
TID = str(uuid.uuid4())
tries = []
deadline = time.time() + 8      # the other worker's pool may still be in its backoff
while time.time() < deadline:
    st, _, b = request(srv.port, "POST", "/api/v1/chat",
                       {"user_prompt": "anyone there now?", "conversation_flow": FLOW,
                        "thread_id": TID}, timeout=15)
    tries.append(st)
    if st != 503:
        break
    time.sleep(0.2)
t.ok(set(tries) <= {200, 503}, "absent: chats are 200 (or 503 within a pool's backoff)",
     tries)
r = jbody(b) or {}
rows = pg.sql("SELECT seq, role, id::text FROM messages WHERE thread_id = %s ORDER BY seq"
              % q(TID), role="readonly")
t.ok(st == 200 and rows == [["1", "user", rows[0][2] if rows else ""],
                            ["2", "assistant", r.get("message_id")]],
     "absent: then chats work and their rows are stored", (st, b, rows))
t.ok(srv.pid == master and sorted(srv.workers()) == workers and srv.proc.poll() is None,
     "absent: without restarting the server or a worker")
srv.stop()
check_sanitizers(t)
t.done()
