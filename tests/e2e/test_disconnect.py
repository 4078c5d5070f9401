"""test_disconnect.py -- a client that goes away stops the upstream calls of
its turn (docs/reliability.md, "Client disconnect"): the connection is watched
while its request is with a flow thread, the exchange is told, and lib/llm.c
stops the call within a poll interval (499 "the client went away").  Shown on
POST /api/v1/chat and /api/v1/chat/stream with the simulator hanging, on a
stream that drips and is dropped after its first content frame, and on a
client that half-closes: with pipelined requests (served, in order) and
without (the client is gone, as nginx decides).  The proof that the call
stopped is its llm_usage row (status, latency well under the hang and the
LLM timeout) and the server's log lines; the worker then serves the next
turn, the same process."""
import json
import os
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Server, Tap, request, slack  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=150)

KEY = "disconnect-sim-key-81c2"
FLOW = "classification-agent"
LLM_TIMEOUT_MS = 20000          # far above what a stopped call may take
HANG_MS = 15000                 # the simulator holds a hung request this long
STOP_S = slack(2.0)             # a stopped call ends within this after the close
RULES = [
    {"match": "[hang]", "fault": "hang;ms=%d" % HANG_MS},
    # 9 KiB of frames at 1000 bytes/s: about 10 s to the end of the stream
    {"match": "[drip]", "fault": "drip;bps=1000"},
    {"match": "[slow]", "fault": "none;latency-ms=300"},
]

pg = PgCluster(t)
sim = Sim(t, api_key=KEY, rules=RULES, max_seconds=200, args=["--quiet"]).start()
srv = Server(t, workers=1, env={
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_TYPE": "rest",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_LLM__TIMEOUT_MS": str(LLM_TIMEOUT_MS),
    "INGENIOUS_LLM__MAX_RETRIES": "0",
}).start()
seq = [0]


def new_rid(name):
    seq[0] += 1
    return "disc-%s-%d-%d" % (name, os.getpid(), seq[0])


def chat_bytes(prompt, rid, stream=False):
    body = json.dumps({"user_prompt": prompt, "conversation_flow": FLOW,
                       "user_id": "alice", "thread_id": str(uuid.uuid4())}).encode()
    return (b"POST /api/v1/chat%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\nX-Request-ID: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (b"/stream" if stream else b"", rid.encode(), len(body), body))


def usage(rid):
    """(http_status, latency_ms) of each llm_usage row of a request."""
    rows = pg.sql("SELECT coalesce(http_status, 0), latency_ms FROM llm_usage "
                  "WHERE request_id = '%s' ORDER BY id" % rid, role="readonly")
    return [(int(a), int(b)) for a, b in rows]


def wait_usage(rid, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        u = usage(rid)
        if u:
            return u
        time.sleep(0.05)
    return usage(rid)


def access_status(rid):
    """The status of the request's access log line, or None."""
    for line in srv.log_lines("request completed"):
        if rid in line:
            for f in line.split():
                if f.startswith("status="):
                    return int(f[7:])
    return None


def drop_after(data, seconds, shut_wr=False):
    """Send a request, wait, then close (or half-close and read): the time of
    the close, and what was read."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(data)
    time.sleep(seconds)
    got = b""
    if shut_wr:
        s.shutdown(socket.SHUT_WR)
        closed = time.time()
        s.settimeout(STOP_S + 3)
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
        except (socket.timeout, ConnectionResetError):
            pass
    else:
        closed = time.time()
    s.close()
    return closed, got


def stopped(name, rid, closed, want_status, since_request, upstream_s=HANG_MS // 1000):
    """The turn's call ended soon after the client left, not at the hang's end."""
    u = wait_usage(rid, STOP_S + 2)
    ended = time.time()
    t.ok(len(u) == 1 and u[0][0] == want_status,
         "%s: the call has its usage row (status %d)" % (name, want_status), u)
    lat = u[0][1] / 1000.0 if u else 99
    t.ok(lat < since_request + STOP_S,
         "%s: the upstream call stopped %.2fs after it began (the client left at %.2fs; "
         "the upstream would have taken %d s)" % (name, lat, since_request, upstream_s),
         u)
    t.ok(ended - closed < STOP_S + 1.5, "%s: its row was there %.2fs after the close"
         % (name, ended - closed))
    t.ok(srv.wait_log("the client went away", timeout=3) and
         any(rid in l for l in srv.log_lines("stopped after")),
         "%s: the server logged the call as stopped, with the request id" % name)
    t.ok(srv.wait_log(rid, timeout=2) and wait_for(lambda: access_status(rid) == 499),
         "%s: the access log line says 499" % name, srv.log_lines(rid))


def wait_for(cond, timeout=3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def next_turn_ok(name, pid):
    rid = new_rid("next")
    st, _, b = request(srv.port, "POST", "/api/v1/chat",
                       {"user_prompt": "Hello again, which bike", "conversation_flow": FLOW,
                        "user_id": "alice"}, headers={"X-Request-ID": rid}, timeout=15)
    t.ok(st == 200 and "agent_response" in json.loads(b) and srv.workers() == [pid],
         "%s: the same worker serves the next turn" % name, (st, b[:200]))


pid = srv.workers()[0]

# ---- POST /api/v1/chat, the upstream hangs, the client closes after 0.5 s --------------
rid = new_rid("json")
closed, _ = drop_after(chat_bytes("Please help [hang] with my order", rid), 0.5)
stopped("chat", rid, closed, 0, 0.5)
next_turn_ok("chat", pid)

# ---- the same on /api/v1/chat/stream (no frame has gone out yet) -----------------------
rid = new_rid("stream")
closed, _ = drop_after(chat_bytes("Please help [hang] with my order", rid, stream=True), 0.5)
stopped("stream, before a frame", rid, closed, 0, 0.5)
next_turn_ok("stream, before a frame", pid)

# ---- a stream that drips: the client reads the first content frame and leaves ---------
rid = new_rid("drip")
s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
t0 = time.time()
s.sendall(chat_bytes("Please stream [drip] this answer to me", rid, stream=True))
got = b""
while b'"chunk_type":"content"' not in got and time.time() - t0 < 10:
    b = s.recv(65536)
    if not b:
        break
    got += b
first = time.time() - t0
t.ok(got.startswith(b"HTTP/1.1 200") and b'"chunk_type":"content"' in got,
     "drip: the client got the head and a content frame (%.2fs)" % first, got[:300])
s.close()
stopped("stream, mid-stream", rid, time.time(), 200, first, upstream_s=9)
next_turn_ok("stream, mid-stream", pid)

# ---- half-close: pipelined requests, then SHUT_WR: both are answered, in order ----------
r1, r2 = new_rid("pipe1"), new_rid("pipe2")
_, got = drop_after(chat_bytes("Please help [slow] one", r1) + chat_bytes("Please help [slow] two", r2),
                    0.05, shut_wr=True)
t.ok(got.count(b"HTTP/1.1 200") == 2 and got.find(r1.encode()) < got.find(r2.encode()),
     "half-close after two pipelined requests: both answered, in order",
     got[:400])
t.eq((access_status(r1), access_status(r2)), (200, 200), "half-close: both logged 200")

# ---- half-close with nothing more to read: the client is gone (nginx's choice) ----------
rid = new_rid("halfclose")
t0 = time.time()
closed, got = drop_after(chat_bytes("Please help [hang] with my order", rid), 0.3, shut_wr=True)
t.eq(got, b"", "a half-close with no pipelined request: no response, the connection closed")
stopped("half-close", rid, closed, 0, 0.3)
next_turn_ok("half-close", pid)

srv.stop()
check_sanitizers(t)
t.done()
