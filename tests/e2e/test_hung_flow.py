"""test_hung_flow.py -- a flow that never returns (docs/reliability.md, "A flow
that never returns"): tests/plugins/hang.c, built here and loaded from the
flow path, blocks its thread for good on the prompt "hang".  The turn gets
its 504 from the event loop at its deadline (flows.turn_timeout_ms plus the
3 s grace), a stream that had begun gets an error frame and ends, the other
turns during and after are served, the stuck threads are counted
(ingenious_flow_stuck), and the worker, once a thread has been stuck for
server.worker_timeout, retires as after max_requests: the master replaces
it (a new pid), no request fails, and every acknowledged turn is stored."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import SRCDIR, Server, Tap, request, slack  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402

t = Tap(timeout=120)

TURN_TIMEOUT_MS = 1500
GRACE_S = 3.0                   # XCHG_DEADLINE_GRACE_MS
DEADLINE_S = TURN_TIMEOUT_MS / 1000.0 + GRACE_S
WORKER_TIMEOUT_S = 3            # server.worker_timeout: stuck this long -> retire
DETAIL = "the flow did not finish within its deadline (flows.turn_timeout_ms = %d)" \
    % TURN_TIMEOUT_MS

# ---- build the plugin against the source tree's flows/flow.h -------------------------
work = tempfile.mkdtemp(prefix="ingen-hang-")
t.at_exit(lambda: shutil.rmtree(work, ignore_errors=True))
inc = os.path.join(work, "include", "ingenious")
os.makedirs(inc)
shutil.copy(os.path.join(SRCDIR, "flows", "flow.h"), inc)
flows = os.path.join(work, "flows")
os.makedirs(flows)
cc = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-Wall", "-Werror",
                     "-I", os.path.join(work, "include"), "-o", os.path.join(flows, "hang.so"),
                     os.path.join(SRCDIR, "tests", "plugins", "hang.c")],
                    capture_output=True, text=True, timeout=60)
t.ok(cc.returncode == 0, "tests/plugins/hang.c builds as a plugin", cc.stderr)

pg = PgCluster(t)
srv = Server(t, workers=1, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_SERVER__FLOW_PATH": flows,
    "INGENIOUS_FLOWS__TURN_TIMEOUT_MS": str(TURN_TIMEOUT_MS),
    "INGENIOUS_SERVER__WORKER_TIMEOUT": str(WORKER_TIMEOUT_S),
    "INGENIOUS_LLM__TIMEOUT_MS": "2000",     # below worker_timeout, as the config requires
    "INGENIOUS_SERVER__SHUTDOWN_TIMEOUT": "10",
}).start()
first_pid = srv.workers()[0]


def chat(prompt, stream=False, timeout=30):
    """(status, body, seconds, thread id)."""
    tid = str(uuid.uuid4())
    t0 = time.time()
    st, _, b = request(srv.port, "POST", "/api/v1/chat/stream" if stream else "/api/v1/chat",
                       {"user_prompt": prompt, "conversation_flow": "hang", "thread_id": tid,
                        "user_id": "alice"}, timeout=timeout)
    return st, b, time.time() - t0, tid


def stored(tid):
    return [tuple(r) for r in pg.sql("SELECT role, content FROM messages WHERE thread_id = '%s' "
                                     "ORDER BY seq" % tid, role="readonly")]


st, b, _, tid = chat("hello")
t.ok(st == 200 and json.loads(b)["agent_response"] == "ok", "the plugin flow answers", b)

# ---- load from the start to the end: every turn must succeed --------------------------
stop = threading.Event()
acked, failed = [], []


def load():
    n = 0
    while not stop.is_set():
        n += 1
        try:
            st, b, _, tid = chat("ping %d" % n, timeout=30)
            (acked if st == 200 else failed).append((st, b[:200], tid))
        except Exception as e:  # noqa: BLE001 -- a failure to count, not to raise
            failed.append((0, repr(e), None))
        time.sleep(0.05)


loader = threading.Thread(target=load)
loader.start()

# ---- the stuck turns: one JSON, one stream that has sent a frame ----------------------
res = {}


def stuck(key, prompt, stream):
    res[key] = chat(prompt, stream=stream, timeout=DEADLINE_S + 15)


hangs = [threading.Thread(target=stuck, args=("json", "hang", False)),
         threading.Thread(target=stuck, args=("stream", "hang after a frame", True))]
for h in hangs:
    h.start()
for h in hangs:
    h.join()

st, b, secs, tid = res["json"]
t.ok(st == 504 and json.loads(b)["detail"] == DETAIL and "request_id" in json.loads(b),
     "the hung turn gets 504 with the deadline's detail", b)
t.ok(DEADLINE_S - 0.1 <= secs < DEADLINE_S + slack(2.0),
     "at its deadline: turn_timeout_ms + grace = %.1f s (%.2fs)" % (DEADLINE_S, secs))
t.eq(stored(tid), [], "the hung turn stored no message")

st, b, secs, _ = res["stream"]
frames = [json.loads(p[6:]) for p in b.decode().split("\n\n") if p.startswith("data: ")]
t.ok(st == 200 and len(frames) >= 2 and frames[0]["data"]["content"] == "working on it"
     and frames[-1] == {"event": "error", "data": None, "error": DETAIL},
     "the stream that had begun: its frame, then an error frame naming the deadline, "
     "then its end", b[-400:])
t.ok(DEADLINE_S - 0.1 <= secs < DEADLINE_S + slack(2.0),
     "the stream ended at its deadline (%.2fs)" % secs)

# the worker retires WORKER_TIMEOUT_S after the deadline: there is time to look
t.eq(srv.metrics().get("ingenious_flow_stuck"), 2.0,
     "ingenious_flow_stuck counts the two stuck threads")
t.ok(srv.workers() == [first_pid] and not srv.log_lines("retiring this worker"),
     "the worker keeps serving until a thread has been stuck for server.worker_timeout")

# ---- the worker retires and is replaced -------------------------------------------------
deadline = time.time() + WORKER_TIMEOUT_S + slack(15)
while time.time() < deadline and (srv.workers() in ([first_pid], []) or
                                  len(srv.workers()) != 1):
    time.sleep(0.1)
new = srv.workers()
t.ok(len(new) == 1 and new[0] != first_pid,
     "the worker with stuck threads was replaced (pid %d -> %s)" % (first_pid, new))
t.ok(srv.wait_log("retiring this worker", timeout=1),
     "it said why it retired", srv.log_lines("retiring"))
t.ok(srv.wait_log("exited (recycled), replacing it", timeout=3),
     "the master replaced it as a planned exit, not a crash", srv.log_lines("supervising"))
time.sleep(1.0)                  # turns on the new worker, under the load
stop.set()
loader.join(30)

m = srv.metrics()
t.eq((m.get("ingenious_flow_stuck"), m.get("ingenious_worker_crashes_total")), (0.0, 0.0),
     "after the replacement: nothing stuck, no crash counted")
t.ok(not failed and len(acked) >= 10,
     "no turn failed while the threads were stuck and the worker was replaced "
     "(%d served)" % len(acked), failed[:5])
missing = [tid for _, _, tid in acked if len(stored(tid)) != 2]
t.eq(missing, [], "every acknowledged turn is stored (%d turns)" % len(acked))
st, b, _, _ = chat("after")
t.ok(st == 200 and json.loads(b)["agent_response"] == "ok", "the new worker serves the flow")

srv.stop()
check_sanitizers(t)
t.done()
