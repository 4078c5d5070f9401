"""test_http.py -- HTTP/1.1 behaviour of the real server (docs/reliability.md H1-H3):
keep-alive, pipelining in order, bodies, Expect, HEAD, the request-target
forms, Host and chunk extension grammar, limits and deadlines with their
status codes, JSON error bodies, X-Request-ID, the operator
routes, and 500 slowloris connections not delaying a normal request."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, raw, status_of  # noqa: E402

t = Tap(timeout=150)
srv = Server(t, workers=2, env={
    "INGENIOUS_SERVER__HEADER_TIMEOUT": "2",
    "INGENIOUS_SERVER__BODY_TIMEOUT": "2",
    "INGENIOUS_SERVER__KEEPALIVE_TIMEOUT": "2",
    "INGENIOUS_SERVER__MAX_BODY_SIZE": "4096",
}).start()
port = srv.port

# ---- the operator routes --------------------------------------------------
st, hdr, body = request(port, "GET", "/api/v1/health")
t.eq(st, 200, "health answers 200")
doc = json.loads(body)
t.eq(sorted(doc.keys()), sorted(["status", "timestamp", "response_time_ms", "components",
                                 "version", "uptime"]), "health has the reference's keys")
t.eq((doc["status"], doc["components"], doc["version"], doc["uptime"]),
     ("healthy", {"configuration": "ok", "profile": "ok"}, "1.0.0", "available"),
     "health body values as the reference")
t.ok("T" in doc["timestamp"] and not doc["timestamp"].endswith("Z"), "health timestamp is naive ISO")
t.eq(hdr.get("content-type"), "application/json", "health is JSON")
rid = hdr.get("x-request-id", "")
t.ok(len(rid) == 36 and rid.count("-") == 4, "a request id is generated (uuid)")
t.ok(hdr.get("x-processing-time", "").endswith("s"), "X-Processing-Time header")

st, hdr, body = request(port, "GET", "/api/v1/health", headers={"X-Request-ID": "abc-123.x"})
t.eq(hdr.get("x-request-id"), "abc-123.x", "a sane X-Request-ID is kept")
st, hdr, body = request(port, "GET", "/api/v1/health", headers={"X-Request-ID": "bad id\"<>"})
t.ok(hdr.get("x-request-id") != "bad id\"<>" and len(hdr.get("x-request-id", "")) == 36,
     "an insane X-Request-ID is replaced")

# no database is configured here: the worker serves, but is not ready
st, hdr, body = request(port, "GET", "/api/v1/ready")
doc = json.loads(body)
t.eq((st, doc["status"], doc["components"]["database"]), (503, "not ready", "unavailable"),
     "ready answers 503 while the database is unavailable")
t.ok(int(hdr.get("retry-after", "0")) >= 1, "not ready carries Retry-After")

st, hdr, body = request(port, "GET", "/metrics")
text = body.decode()
t.eq(st, 200, "metrics answers 200 on loopback")
t.ok(hdr.get("content-type", "").startswith("text/plain; version=0.0.4"), "metrics content type")
t.ok('ingenious_http_requests_total{route="/api/v1/health",status="200"}' in text,
     "metrics count requests by route and status", text[:2000])
t.ok('ingenious_http_request_duration_seconds_bucket{route="/api/v1/health",le="+Inf"}' in text,
     "metrics have a latency histogram")
for name in ("ingenious_http_requests_in_flight", "ingenious_worker_restarts_total",
             "ingenious_flow_queue_rejections_total", "ingenious_config_generation"):
    t.ok(name in text, "metrics expose %s" % name)

# ---- 404, 405, HEAD ---------------------------------------------------------
st, hdr, body = request(port, "GET", "/nope")
t.eq((st, body), (404, b'{"detail":"Not Found"}'), "unknown route: 404 with the reference body")
st, hdr, body = request(port, "GET", "/api/v1/health/")
t.eq(st, 404, "trailing slash is another path")
st, hdr, body = request(port, "DELETE", "/api/v1/health")
t.eq((st, body), (405, b'{"detail":"Method Not Allowed"}'), "wrong method: 405 with the reference body")
t.ok("GET" in hdr.get("allow", ""), "405 carries Allow")
st, hdr, body = request(port, "HEAD", "/api/v1/health")
t.eq((st, body), (200, b""), "HEAD: status without a body")
t.ok(int(hdr.get("content-length", "0")) > 0, "HEAD: Content-Length of the GET body")

# ---- keep-alive and pipelining ---------------------------------------------
s = socket.create_connection(("127.0.0.1", port), timeout=5)
reqs = b"".join(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-%d\r\n\r\n" % i
                for i in range(10))
s.sendall(reqs + b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-last\r\n\r\n")
data = b""
deadline = time.time() + 5
while data.count(b"HTTP/1.1 ") < 11 and time.time() < deadline:
    data += s.recv(65536)
ids = [l.split(b": ")[1].strip() for l in data.split(b"\r\n") if l.lower().startswith(b"x-request-id")]
t.eq(ids, [b"pipe-%d" % i for i in range(10)] + [b"pipe-last"], "pipelined requests answered in order")
t.eq(data.count(b"HTTP/1.1 200"), 10, "pipelined: ten 200s")
s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
more = s.recv(65536)
t.eq(status_of(more), 200, "the connection stays open after a pipelined batch")
s.close()

resp = raw(port, b"GET /api/v1/health HTTP/1.0\r\n\r\n")
t.ok(resp.startswith(b"HTTP/1.1 200") and b"connection: close" in resp.lower(),
     "HTTP/1.0 without keep-alive: answered and closed")

# ---- bodies ---------------------------------------------------------------
resp = raw(port, b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
           b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
t.ok(resp.count(b"HTTP/1.1 405") == 1 and resp.count(b"HTTP/1.1 200") == 1,
     "Content-Length body consumed, the next request is parsed", resp[:400])
resp = raw(port, b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
           b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
t.ok(resp.count(b"HTTP/1.1 405") == 1 and resp.count(b"HTTP/1.1 200") == 1,
     "chunked body with extension and trailer consumed, next request parsed", resp[:400])

s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
first = s.recv(4096)
t.ok(first.startswith(b"HTTP/1.1 100 Continue"), "Expect: 100-continue gets 100 first", first)
s.sendall(b"abcd")
final = s.recv(4096)
t.eq(status_of(final), 405, "then the final response")
s.close()

resp = raw(port, b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
           b"Expect: 100-continue\r\n\r\n")
t.ok(status_of(resp) == 413 and b"100 Continue" not in resp,
     "too large with Expect: 413 before any 100, decided from Content-Length")
t.ok(b'"detail"' in resp, "413 has a JSON body")

# ---- framing errors close the connection (H1) -----------------------------
cases = [
    ("Content-Length with Transfer-Encoding", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("duplicate Content-Length", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
    ("invalid Content-Length", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ("unknown transfer coding", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    ("obs-fold", b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("space before colon", b"GET /api/v1/health HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("bare LF", b"GET /api/v1/health HTTP/1.1\nHost: x\n\n", 400),
    ("bare CR", b"GET /api/v1/health HTTP/1.1\r\nHost: x\rY\r\n\r\n", 400),
    ("invalid name character", b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX(y): 1\r\n\r\n", 400),
    ("chunk size overflow", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", 400),
    ("chunk extension over 1 KiB", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"a" * 2000 + b"\r\nx\r\n0\r\n\r\n", 400),
    ("missing Host", b"GET /api/v1/health HTTP/1.1\r\n\r\n", 400),
    ("HTTP/2.0 request line", b"GET /api/v1/health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    # RFC 9112 7.1.1: a token must follow ';' (issue 8 defect b)
    ("empty chunk extension", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk extension of whitespace", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5; \r\nhello\r\n0\r\n\r\n", 400),
    ("chunk extension without a name", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk extension without a value", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n", 400),
    ("unterminated quoted chunk extension", b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n", 400),
    # RFC 9112 3.2: one valid Host (issue 8 defect c)
    ("invalid Host", b"GET /api/v1/health HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("Host with a bad port", b"GET /api/v1/health HTTP/1.1\r\nHost: x:8o\r\n\r\n", 400),
    ("Host with a bad IP literal", b"GET /api/v1/health HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400),
    ("two Host fields", b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", 400),
    ("invalid Host in HTTP/1.0", b"GET /api/v1/health HTTP/1.0\r\nHost: a/b\r\nConnection: keep-alive\r\n\r\n", 400),
    # RFC 9112 3.2.2-3.2.4: the other target forms (issue 8 defect h)
    ("absolute-form with another scheme", b"GET ftp://x/api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("absolute-form with userinfo", b"GET http://u@x/api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("absolute-form without Host", b"GET http://x/api/v1/health HTTP/1.1\r\n\r\n", 400),
    ("asterisk-form for GET", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("CONNECT in authority-form", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 501),
]
for name, req, want in cases:
    t0 = time.time()
    resp = raw(port, req + b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    took = time.time() - t0
    t.eq(status_of(resp), want, "%s: %d" % (name, want))
    t.eq(resp.count(b"HTTP/1.1 "), 1, "%s: nothing pipelined after it is processed" % name)
    t.ok(b"connection: close" in resp.lower() and b'"detail"' in resp, "%s: JSON body and close" % name)
    # keepalive_timeout is 2 s: a close before 1.5 s is the server's decision
    t.ok(took < 1.5, "%s: the server closes the connection at once (%.1fs)" % (name, took))

# ---- what the parser accepts (issue 8 defects b, c, h) -----------------------
for ext in (b'5;a="x"', b"5;a=b;c", b'5 ; a = "v\\"w" ; b'):
    resp = raw(port, b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + ext + b"\r\nhello\r\n0\r\n\r\n"
               b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    t.ok(resp.count(b"HTTP/1.1 405") == 1 and resp.count(b"HTTP/1.1 200") == 1,
         "chunk extension %r accepted, the next request parsed" % ext.decode(), resp[:300])

for host in (b"[::1]:8000", b"127.0.0.1:%d" % port, b"Example.org", b"h:", b""):
    resp = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    t.eq(status_of(resp), 200, "Host %r accepted" % host.decode())


def health_body(resp):
    return json.loads(resp.split(b"\r\n\r\n", 1)[1])


resp = raw(port, b"GET http://host/api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
t.eq(status_of(resp), 200, "absolute-form: 200")
t.eq(health_body(resp).get("status") if status_of(resp) == 200 else None, "healthy",
     "absolute-form: the health body")
resp = raw(port, b"GET HTTPS://[::1]:8000/api/v1/health?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET http://127.0.0.1/api/v1/nope HTTP/1.1\r\nHost: x\r\n\r\n"
           b"HEAD http://h/api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
t.eq([status_of(b"HTTP/1.1 " + r) for r in resp.split(b"HTTP/1.1 ")[1:]], [200, 404, 200],
     "absolute-form: https, IP literal, query, pipelined, routed on the path")
resp = raw(port, b"GET http://h/api/v1/health HTTP/1.0\r\n\r\n")
t.eq(status_of(resp), 200, "absolute-form in HTTP/1.0 without Host: 200")
resp = raw(port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
allow = [l for l in resp.split(b"\r\n") if l.lower().startswith(b"allow:")]
t.eq(status_of(resp), 405, "OPTIONS *: 405, the server implements no OPTIONS")
t.ok(allow and b"GET" in allow[0] and b"POST" in allow[0], "OPTIONS *: Allow lists the server's methods",
     resp[:300])

# ---- limits (H2) ---------------------------------------------------------
resp = raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
t.eq(status_of(resp), 414, "request line over 8 KiB: 414")
resp = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 17000 + b"\r\n\r\n")
t.eq(status_of(resp), 431, "header section over 16 KiB: 431")
resp = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n" +
           b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n")
t.eq(status_of(resp), 431, "more than 100 header fields: 431")
resp = raw(port, b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
t.eq(status_of(resp), 413, "body over max_body_size: 413 from Content-Length")
t.ok(b"the limit is 4096 bytes (server.max_body_size)" in resp,
     "the 413 names the limit and its key", resp[-200:])
resp = raw(port, b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"".join(b"400\r\n" + b"z" * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n")
t.eq(status_of(resp), 413, "chunked body over max_body_size: 413")
t.ok(b"the limit is 4096 bytes (server.max_body_size)" in resp,
     "the chunked body's 413 names the limit and its key too", resp[-200:])

# header deadline: a head that never completes
t0 = time.time()
resp = raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n", timeout=6)
took = time.time() - t0
t.eq(status_of(resp), 408, "incomplete head: 408 after header_timeout")
t.ok(1.5 <= took <= 4.5, "header deadline enforced in time (%.1fs)" % took)
# body deadline: a body that stops
t0 = time.time()
resp = raw(port, b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", timeout=6)
took = time.time() - t0
t.eq(status_of(resp), 408, "stalled body: 408 after body_timeout (%.1fs)" % took)
# keep-alive idle close
s = socket.create_connection(("127.0.0.1", port), timeout=6)
s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(4096)
t0 = time.time()
got = s.recv(4096)
took = time.time() - t0
t.ok(got == b"" and 1.5 <= took <= 4.5, "idle keep-alive connection closed after keepalive_timeout (%.1fs)" % took)
s.close()

# ---- slowloris: 500 connections dribbling bytes do not delay a request ------
slow = []
for i in range(500):
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.setblocking(False)
        slow.append(c)
    except OSError as exc:
        t.diag("could not open slow connection %d: %r" % (i, exc))
        break
t.ok(len(slow) == 500, "500 slow connections open")
prefix = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
lat = []
for rnd in range(8):
    for c in slow:
        try:
            c.send(prefix[rnd:rnd + 1])
        except OSError:
            pass
    t0 = time.time()
    st, _, _ = request(port, "GET", "/api/v1/health", timeout=5)
    lat.append(time.time() - t0)
    time.sleep(0.1)
t.ok(max(lat) < 0.5, "a normal request stays fast beside 500 slow clients (max %.0f ms)" % (max(lat) * 1000))
m = srv.metrics()
t.ok(m.get("ingenious_http_connections", 0) >= 500, "metrics see the open connections")
t.eq(m.get("ingenious_http_requests_in_flight", -1), 0.0, "slow connections hold no flow thread")
for c in slow:
    c.close()

t.done()
