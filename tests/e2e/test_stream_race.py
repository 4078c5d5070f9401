"""test_stream_race.py -- many short streamed turns at once must never stall the
event loop.  A stream that finished while the loop was taking its last frames
(its hand-back found the frames' notification still pending and queued
nothing) used to be freed while still on the loop's list of running
exchanges; the next exchange allocated at that address closed the list into
a cycle and the loop spun in conn_sweep_flows forever (found by
bench/soak.sh: both workers at 100 % CPU, no answer, killed by the watchdog
90 s later).  Here one worker serves streams from 24 clients for a while;
/api/v1/health must answer quickly throughout and after, the worker's main
thread must go idle when the load stops, and every streamed turn must end
with its final frame."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Server, Tap, request  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=150)
KEY = "stream-race-key"
LOAD_S = 12
pg = PgCluster(t)
sim = Sim(t, api_key=KEY, max_seconds=140, args=["--quiet"], latency_ms=5).start()
srv = Server(t, workers=1, env={
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_TYPE": "rest",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_LOGGING__ACCESS_LOG": "false",
    # small frames: many hand-backs per turn, the window of the race
    "INGENIOUS_WEB_CONFIGURATION__STREAMING_CHUNK_SIZE": "4",
}).start()
worker = srv.workers()[0]
stop = threading.Event()
lock = threading.Lock()
res = {"final": 0, "bad": 0, "what": []}


def streamer():
    import http.client
    while not stop.is_set():
        try:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
            c.request("POST", "/api/v1/chat/stream", body=json.dumps(
                {"user_prompt": "race", "conversation_flow": "classification-agent"}),
                headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read().decode(errors="replace")
            c.close()
            final = r.status == 200 and '"is_final":true' in body.replace(" ", "")
        except OSError as ex:
            final, body = False, str(ex)
        with lock:
            if final:
                res["final"] += 1
            else:
                res["bad"] += 1
                if len(res["what"]) < 5:
                    res["what"].append(body[:300])


def main_ticks(pid):
    with open("/proc/%d/task/%d/stat" % (pid, pid)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])      # utime + stime of the main thread


ths = [threading.Thread(target=streamer, daemon=True) for _ in range(24)]
for th in ths:
    th.start()
slowest = 0.0
t0 = time.time()
while time.time() - t0 < LOAD_S:
    a = time.time()
    try:
        st, _, _ = request(srv.port, "GET", "/api/v1/health", timeout=5)
    except OSError:
        st = 0
    slowest = max(slowest, time.time() - a if st == 200 else 99)
    time.sleep(0.25)
stop.set()
for th in ths:
    th.join(30)
t.ok(res["final"] > 100, "the streams were served (%d ended with their final frame)"
     % res["final"])
t.eq(res["bad"], 0, "every stream ended with its final frame")
t.ok(slowest < 2.0, "the event loop answered /health throughout (slowest %.2f s)" % slowest)
if slowest >= 2.0:
    t.diag("the loop stalled: not waiting for idle ticks")
time.sleep(1.0)
a = main_ticks(worker)
time.sleep(2.0)
b = main_ticks(worker)
t.ok(b - a < 50, "the worker's event loop is idle once the load stops (%d ticks in 2 s)"
     % (b - a))
try:
    st, _, _ = request(srv.port, "GET", "/api/v1/health", timeout=5)
except OSError:
    st = 0
t.eq(st, 200, "and answers")
t.eq(srv.workers(), [worker], "the same worker, never replaced")
check_sanitizers(t)
t.done()
