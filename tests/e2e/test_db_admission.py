"""test_db_admission.py -- chat turns are refused at admission while the
database is saturated (server.db_wait_limit_ms, issue 17): with one
chat-history connection held behind a table lock and turns queued for it, the
next turns get 503 "the database is saturated" with Retry-After, held like an
overload 503, without a model call (nothing billed); the turns admitted before
complete once the lock goes, every one stored; /metrics counts the refusals;
a turn after the queue drained is admitted again.  With the key at 0 nothing
is refused."""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Server, Tap, request  # noqa: E402
from pgcluster import PSQL, PgCluster, pg_env  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=180)
KEY = "db-admission-key-7d21"
HOLD_MS = 200            # server.overload_delay_ms: how long a refusal is held
WAVE = 6

pg = PgCluster(t)
# every model call takes 300 ms: a wave's turns are all admitted before the
# first of them reaches the database
sim = Sim(t, api_key=KEY, max_seconds=170, args=["--quiet", "--latency-ms", "300"]).start()


def model_calls():
    return sim.stats()["chat"]


def server(limit_ms):
    return Server(t, workers=1, env={
        "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
        "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
        "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
        "INGENIOUS_MODELS__0__API_KEY": KEY,
        "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
        "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
        "INGENIOUS_CHAT_HISTORY__POOL_SIZE": "1",
        "INGENIOUS_CHAT_HISTORY__CONNECT_TIMEOUT": "10",
        "INGENIOUS_SERVER__DB_WAIT_LIMIT_MS": str(limit_ms),
        "INGENIOUS_SERVER__OVERLOAD_DELAY_MS": str(HOLD_MS),
        "INGENIOUS_LOGGING__ACCESS_LOG": "false",
    }).start()


def chat(port, text, out, i):
    t0 = time.time()
    try:
        st, h, b = request(port, "POST", "/api/v1/chat",
                           {"user_prompt": text, "conversation_flow": "classification-agent"},
                           timeout=60)
    except Exception as ex:  # noqa: BLE001 -- recorded and reported by the test
        st, h, b = -1, {}, str(ex).encode()
    out[i] = (st, h, b, time.time() - t0)


def wave(port, tag, n):
    out = [None] * n
    ths = [threading.Thread(target=chat, args=(port, "%s %d" % (tag, i), out, i)) for i in range(n)]
    for th in ths:
        th.start()
    return ths, out


class Lock:
    """A psql session holding an exclusive lock on messages until release()."""

    def __init__(self):
        self.p = subprocess.Popen([PSQL, "-X", "-q", "-A", "-t", "-d", pg.url("owner")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=pg_env())
        self.p.stdin.write("BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
        self.p.stdin.flush()
        self.ok = self.p.stdout.readline().strip() == "locked"

    def release(self):
        self.p.stdin.write("COMMIT;\n\\q\n")
        self.p.stdin.flush()
        self.p.wait(10)


def metric(port, name):
    st, _, b = request(port, "GET", "/metrics")
    for line in b.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_for(cond, timeout=10, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


# ---- the limit on (1 ms): refused while turns queue for the one connection --
srv = server(1)
st, _, b = request(srv.port, "POST", "/api/v1/chat",
                   {"user_prompt": "warm up", "conversation_flow": "classification-agent"})
t.eq(st, 200, "a first turn is admitted and answered")
calls0 = model_calls()
stored0 = int(pg.value("SELECT count(*) FROM messages"))

lock = Lock()
t.ok(lock.ok, "a session holds an exclusive lock on messages")
ths1, out1 = wave(srv.port, "queued", WAVE)
# the first turn of the wave holds the connection (waiting on the lock), the others queue
t.ok(wait_for(lambda: (metric(srv.port, "ingenious_db_wait_estimate_seconds") or 0) > 0),
     "/metrics shows a database wait while turns queue")
# a new turn would reach the database after the model's 300 ms: refused once
# the queue has not moved for longer than that (plus the 1 ms limit)
time.sleep(0.6)
ths2, out2 = wave(srv.port, "refused", WAVE)
for th in ths2:
    th.join(30)
refused = [o for o in out2 if o and o[0] == 503]
t.eq(len(refused), WAVE, "every turn of the second wave is refused with 503 (%s)"
     % [o[0] if o else None for o in out2])
if refused:
    st, h, b, took = refused[0]
    body = json.loads(b)
    t.ok("database is saturated" in body.get("detail", ""), "the refusal says why: %s" % body.get("detail"))
    t.ok(body.get("request_id"), "with the request id")
    t.ok(h.get("retry-after", "").isdigit(), "with Retry-After (%s)" % h.get("retry-after"))
    t.ok(min(o[3] for o in refused) >= HOLD_MS / 1000.0 * 0.9,
         "held for overload_delay_ms before it is written (%.0f ms)" % (min(o[3] for o in refused) * 1000))
t.eq(model_calls() - calls0, WAVE, "no model call for a refused turn (only the first wave's)")
lock.release()
for th in ths1:
    th.join(60)
t.eq([o[0] if o else None for o in out1], [200] * WAVE,
     "the turns admitted before complete once the lock goes")
t.eq(int(pg.value("SELECT count(*) FROM messages")) - stored0, 2 * WAVE,
     "each of them stored (two messages a turn), none of the refused")
t.eq(metric(srv.port, "ingenious_turn_db_rejections_total"), float(WAVE),
     "/metrics counts the refusals")
t.ok(wait_for(lambda: metric(srv.port, "ingenious_db_wait_estimate_seconds") == 0.0),
     "the wait estimate is back to 0")
st, _, _ = request(srv.port, "POST", "/api/v1/chat",
                   {"user_prompt": "after", "conversation_flow": "classification-agent"})
t.eq(st, 200, "a turn after the queue drained is admitted")
srv.stop()

# ---- the limit off (0): the same situation admits every turn ---------------
srv = server(0)
request(srv.port, "POST", "/api/v1/chat", {"user_prompt": "warm", "conversation_flow": "classification-agent"})
lock = Lock()
ths1, out1 = wave(srv.port, "queued", WAVE)
time.sleep(0.3)
ths2, out2 = wave(srv.port, "admitted", WAVE)
time.sleep(0.3)
lock.release()
for th in ths1 + ths2:
    th.join(60)
t.eq([o[0] if o else None for o in out1 + out2], [200] * (2 * WAVE),
     "db_wait_limit_ms = 0: every turn admitted and answered")
t.eq(metric(srv.port, "ingenious_turn_db_rejections_total"), 0.0, "none refused")
srv.stop()
t.done()
