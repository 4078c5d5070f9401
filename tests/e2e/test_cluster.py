"""test_cluster.py -- several servers on one PostgreSQL behind a real nginx
(issue 14): three `ingen serve` on their own ports and state directories,
one database, one JWT secret, nginx (Debian's nginx-light) balancing them
round robin.  A token issued by one is accepted by the others; a thread
started through the balancer continues on each server; the usage rows of all
add up to the calls made; a SIGHUP of one server while chats run through the
balancer loses nothing (every 200 has its rows).  The login throttle is per
server (README, "Several servers"): shown here as well, so that a change is
seen."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, free_port, request, slack  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402
from authkit import basic, bearer  # noqa: E402

t = Tap(timeout=300)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
if not os.path.exists(NGINX):
    print("1..0 # SKIP nginx is not installed (Debian's nginx-light)")
    sys.exit(0)

AUTH = "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"
SECRET = "a-cluster-test-secret-of-more-than-32-bytes-0123456789"
PASSWORD = "cluster-pw"
pg = PgCluster(t)
sim = Sim(t, api_key="cl-key", args=["--quiet", "--latency-ms", "30"]).start()
env = {
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_KEY": "cl-key",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
    AUTH + "ENABLE": "true",
    AUTH + "PASSWORD": PASSWORD,
    AUTH + "JWT_SECRET_KEY": SECRET,
    AUTH + "LOGIN_MAX_FAILURES": "3",
    "INGENIOUS_LOGGING__ACCESS_LOG": "false",
}
servers = [Server(t, workers=2, env=env).start(timeout=slack(20)) for _ in range(3)]
ports = [s.port for s in servers]

# ---- nginx in front ----------------------------------------------------------
ndir = tempfile.mkdtemp(prefix="ingen-nginx-")
os.chmod(ndir, 0o755)
lb = free_port()
conf = os.path.join(ndir, "nginx.conf")
with open(conf, "w") as f:
    f.write("""
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    upstream ingenious {
        %(servers)s
        keepalive 16;
    }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://ingenious;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-ID $request_id;
            proxy_buffering off;
            proxy_read_timeout 120s;
            proxy_next_upstream error timeout;
        }
    }
}
""" % {"d": ndir, "port": lb,
       "servers": "\n        ".join("server 127.0.0.1:%d;" % p for p in ports)})
nginx = subprocess.Popen([NGINX, "-c", conf, "-p", ndir], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)


def stop_nginx():
    if nginx.poll() is None:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
    shutil.rmtree(ndir, ignore_errors=True)


t.at_exit(stop_nginx)
deadline = time.time() + 10
up = False
while time.time() < deadline and not up:
    try:
        st, _, _ = request(lb, "GET", "/api/v1/health", timeout=2)
        up = st == 200
    except OSError:
        time.sleep(0.1)
t.ok(up, "nginx balances the three servers (health through it)")
ADMIN = basic("admin", PASSWORD)


def chat(port, text, thread_id=None, headers=None, timeout=30):
    body = {"user_prompt": text, "conversation_flow": "classification-agent"}
    if thread_id:
        body["thread_id"] = thread_id
    st, h, b = request(port, "POST", "/api/v1/chat", body, headers or ADMIN, timeout=timeout)
    return st, (json.loads(b) if st == 200 else b)


# ---- one secret: a token of one server is good on every server ----------------
st, _, b = request(ports[0], "POST", "/api/v1/auth/login",
                   {"username": "admin", "password": PASSWORD})
tok = json.loads(b).get("access_token", "") if st == 200 else ""
t.ok(st == 200 and tok, "login on the first server", b)
for i, p in enumerate(ports):
    st, _, b = request(p, "GET", "/api/v1/auth/verify", None, bearer(tok))
    t.ok(st == 200 and json.loads(b).get("valid") is True,
         "the first server's token is accepted by server %d" % (i + 1), b)
st, _, b = request(ports[2], "POST", "/api/v1/auth/refresh",
                   {"refresh_token": json.loads(request(ports[1], "POST", "/api/v1/auth/login",
                                                        {"username": "admin",
                                                         "password": PASSWORD})[2])
                    ["refresh_token"]})
t.eq(st, 200, "a refresh token of the second server is refreshed by the third")

# ---- a thread goes on, whichever server answers -----------------------------
st, r = chat(lb, "first question through the balancer", headers=bearer(tok))
tid = r.get("thread_id", "") if st == 200 else ""
t.ok(st == 200 and tid, "a thread started through nginx", r)
for i, p in enumerate(ports):
    st, r = chat(p, "follow-up %d on server %d" % (i, i + 1), tid, bearer(tok))
    t.ok(st == 200 and r.get("thread_id") == tid, "the thread goes on on server %d" % (i + 1), r)
n_msgs = int(pg.value("SELECT count(*) FROM messages WHERE thread_id = '%s'" % tid))
t.eq(n_msgs, 8, "the thread holds the four turns of the three servers, in one order")
seqs = [int(x[0]) for x in pg.sql("SELECT seq FROM messages WHERE thread_id = '%s' ORDER BY seq"
                                  % tid)]
t.eq(seqs, list(range(seqs[0], seqs[0] + 8)) if seqs else [], "gap-free seq across servers")
st, _, b = request(ports[2], "GET", "/api/v1/conversations/%s?limit=100" % tid, None, ADMIN)
t.ok(st == 200 and len(json.loads(b)) == 8, "the third server reads the whole thread", b[:300])

# ---- usage adds up, and a SIGHUP under load loses nothing ---------------------
calls0 = sum(s.metrics().get("ingenious_llm_calls_total", 0) for s in servers)
rows0 = int(pg.value("SELECT count(*) FROM llm_usage"))
results = []
lock = threading.Lock()
stop = time.time() + 4.0


def loader(k):
    i = 0
    while time.time() < stop:
        try:
            st, r = chat(lb, "load %d-%d" % (k, i), headers=bearer(tok))
        except OSError as ex:
            st, r = -1, str(ex)
        with lock:
            results.append((st, r.get("message_id") if st == 200 else r))
        i += 1


ths = [threading.Thread(target=loader, args=(k,)) for k in range(12)]
for th in ths:
    th.start()
time.sleep(1.0)
servers[1].signal(signal.SIGHUP)
reloaded = servers[1].wait_log("generation 2 is serving", timeout=slack(15))
for th in ths:
    th.join(60)
ok = [r for r in results if r[0] == 200]
t.ok(reloaded, "the second server reloaded under load")
t.ok(len(ok) > 20 and len(ok) == len(results),
     "every chat through nginx while one server reloaded answered 200 (%d of %d)"
     % (len(ok), len(results)), [r for r in results if r[0] != 200][:5])
mids = [r[1] for r in ok]
stored = int(pg.value("SELECT count(*) FROM messages WHERE id IN (%s)" %
                      ",".join("'%s'" % m for m in mids))) if mids else 0
t.eq(stored, len(mids), "every answered turn's message is stored")
time.sleep(0.3)
calls = sum(s.metrics().get("ingenious_llm_calls_total", 0) for s in servers) - calls0
rows = int(pg.value("SELECT count(*) FROM llm_usage")) - rows0
t.ok(rows == len(ok) and calls == len(ok),
     "usage rows of all servers add up: %d rows, %d model calls counted by the three, "
     "%d turns" % (rows, calls, len(ok)))
per = [s.metrics().get("ingenious_llm_calls_total", 0) for s in servers]
t.ok(all(c > 0 for c in per), "each server took its share (%s)" % per)

# ---- the login throttle is per server (documented) --------------------------
for _ in range(4):
    request(ports[0], "POST", "/api/v1/auth/login", {"username": "admin", "password": "bad"})
st0, _, _ = request(ports[0], "POST", "/api/v1/auth/login",
                    {"username": "admin", "password": "bad"})
st1, _, _ = request(ports[1], "POST", "/api/v1/auth/login",
                    {"username": "admin", "password": "bad"})
t.ok(st0 == 429 and st1 == 401,
     "the throttle counts per server: 429 on the one guessed at, 401 on another (%d, %d)"
     % (st0, st1))

stop_nginx()
for s in servers:
    s.stop()
t.done()
