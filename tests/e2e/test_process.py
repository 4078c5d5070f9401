"""test_process.py -- the process model of `ingen serve` (docs/reliability.md P1-P4):
start time, kill -9 of a worker under load, SIGHUP under load, SIGHUP with a
broken configuration, SIGTERM drain, SIGQUIT, recycling, the crash-loop
backoff, the fatal exit code, the watchdog, workers dying with the master,
SIGUSR1 log reopening, the systemd notify protocol and socket activation."""
import json
import shutil
import tempfile
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, Load, request, raw, status_of, INGEN, clean_env, free_port, slack  # noqa: E402

t = Tap(timeout=240)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def wait_for(cond, timeout=5, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


# ---- start time ------------------------------------------------------------
t0 = time.time()
srv = Server(t, workers=2).start()
took = time.time() - t0
t.ok(took < slack(1.0), "the server starts in well under a second (%.0f ms)" % (took * 1000))
t.eq(len(srv.workers()), 2, "two workers forked")
with open(srv.pidfile) as f:
    t.eq(int(f.read().strip()), srv.pid, "the pid file holds the master's pid")

# ---- kill -9 of a worker under load ----------------------------------------
load = Load(srv.port, threads=6).start()
time.sleep(0.5)
victim = srv.workers()[0]
os.kill(victim, signal.SIGKILL)
t_kill = time.time()
replaced = wait_for(lambda: len([p for p in srv.workers() if p != victim]) == 2, timeout=3)
took = time.time() - t_kill
t.ok(replaced and took < 1.0, "a killed worker is replaced within 1 s (%.0f ms)" % (took * 1000))
time.sleep(0.5)
load.stop()
# requests in flight on the victim's connections may fail; nothing else
t.ok(len(load.failures) <= 6, "only the victim's in-flight requests fail (%d failures of %d)"
     % (len(load.failures), load.ok + len(load.failures)), "\n".join(load.failures[:10]))
t.ok(load.ok > 100, "load kept being served (%d ok)" % load.ok)
m = srv.metrics()
t.ok(m.get("ingenious_worker_restarts_total") == 1 and m.get("ingenious_worker_crashes_total") == 1,
     "metrics count the restart and the crash")
t.ok(srv.wait_log("was terminated by signal 9"), "the crash is logged with its signal")

# ---- SIGHUP under load: zero failed requests, a new generation ------------
old = set(srv.workers())
load = Load(srv.port, threads=6).start()
time.sleep(0.5)
srv.signal(signal.SIGHUP)
ok = wait_for(lambda: srv.metrics().get("ingenious_config_generation") == 2, timeout=5)
t.ok(ok, "generation 2 visible in /metrics after SIGHUP")
gone = wait_for(lambda: not (old & set(srv.workers())), timeout=10)
t.ok(gone, "old workers drained and exited")
time.sleep(0.5)
load.stop()
t.eq(load.failures[:5], [], "zero failed requests during the reload (%d ok)" % load.ok)
m = srv.metrics()
t.eq(m.get('ingenious_workers{state="ready"}'), 2.0, "two ready workers after the reload")
t.eq(m.get("ingenious_reloads_total"), 1.0, "reload counted")
t.ok(any('generation="2"' in k for k in m), "workers of generation 2 listed in /metrics")

# ---- SIGHUP with a broken configuration keeps the old generation ----------
conf = os.path.join(srv.dir, "ingenious.conf")
with open(conf, "w") as f:
    f.write("server = { workers = \"many\"; no_such_key = 1; };\n")
before = set(srv.workers())
load = Load(srv.port, threads=4).start()
srv.signal(signal.SIGHUP)
t.ok(srv.wait_log("keeping generation 2"), "a broken config on reload is refused and logged")
time.sleep(0.5)
load.stop()
t.eq(set(srv.workers()), before, "the old workers keep serving")
t.eq(load.failures[:5], [], "no request failed while the reload was refused")
t.ok(srv.log_lines("no_such_key") and srv.log_lines("server.workers"),
     "every problem of the broken file is logged")
m = srv.metrics()
t.eq((m.get("ingenious_config_generation"), m.get("ingenious_reload_failures_total")), (2.0, 1.0),
     "generation unchanged, failure counted")

# ---- SIGHUP with a log file that cannot be opened keeps the old generation -
with open(conf, "w") as f:
    f.write('logging = { file = "/nonexistent-ingen-dir/ingen.log"; };\n')
srv.signal(signal.SIGHUP)
t.ok(srv.wait_log("could not open log file"), "a log file that cannot be opened fails the reload")
line = (srv.log_lines("could not open log file") or [""])[0]
t.ok("/nonexistent-ingen-dir/ingen.log" in line and "keeping generation 2" in line,
     "... logged with the path, the reason and the generation kept", line)
time.sleep(0.5)
t.eq(set(srv.workers()), before, "the old workers keep serving")
m = srv.metrics()
t.eq((m.get("ingenious_config_generation"), m.get("ingenious_reload_failures_total")), (2.0, 2.0),
     "generation unchanged, failure counted")

# ---- a new generation that cannot start is abandoned, the old one stays whole
# (its workers exit with the fatal code: a malformed database_url)
with open(conf, "w") as f:
    f.write('chat_history = { database_url = "not a conninfo"; };\n')
srv.signal(signal.SIGHUP)
t.ok(srv.wait_log("of generation 3 exited with the fatal code"),
     "a fatal exit of the starting generation is noticed")
t.ok(srv.log_lines("keeping generation 2"), "the reload is abandoned, generation 2 kept")
t.ok(wait_for(lambda: set(srv.workers()) == before, 3), "the old workers keep serving")
t.ok(srv.proc.poll() is None and request(srv.port, "GET", "/api/v1/health")[0] == 200,
     "the server keeps running (it used to stop on the fatal code)")
os.unlink(conf)
victim = sorted(before)[0]
os.kill(victim, signal.SIGKILL)
t.ok(wait_for(lambda: len([p for p in srv.workers() if p != victim]) == 2, timeout=3),
     "an old worker killed after the abandoned reload is replaced")


def worker_info():
    m = srv.metrics()
    return [k for k in m if k.startswith("ingenious_worker_info")]


t.ok(wait_for(lambda: len(worker_info()) == 2 and all('state="ready"' in k for k in worker_info()), 5),
     "two ready workers")
t.ok(all('generation="2"' in k for k in worker_info()),
     "the replacement belongs to generation 2, with its configuration", worker_info())
t.eq(srv.metrics().get("ingenious_reload_failures_total"), 3.0, "the abandoned reload is counted")

# ---- SIGUSR1 reopens the log file -------------------------------------------
srv.stop()
logdir = os.path.join(os.path.dirname(srv.dir) if False else "/tmp", "ingen-e2e-log-%d" % os.getpid())
os.makedirs(logdir, exist_ok=True)
logfile = os.path.join(logdir, "ingen.log")
srv = Server(t, workers=1, env={"INGENIOUS_LOGGING__FILE": logfile}).start(wait=False)
t.ok(wait_for(lambda: os.path.exists(logfile) and "serving on" in open(logfile).read(), 5),
     "logging.file receives the log")
os.rename(logfile, logfile + ".1")
srv.signal(signal.SIGUSR1)
time.sleep(0.3)
request(srv.port, "GET", "/api/v1/health")
t.ok(wait_for(lambda: os.path.exists(logfile), 3), "SIGUSR1: the log file is reopened (recreated)")
srv.stop()
for f in os.listdir(logdir):
    os.unlink(os.path.join(logdir, f))
os.rmdir(logdir)

# ---- SIGHUP with a changed restart-only key: a warning, the old value kept -
srv = Server(t, workers=1, env={"INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE": "true",
                                "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD": "pw"})
del srv.env["INGENIOUS_SERVER__STATE_DIR"]
sd1, sd2 = os.path.join(srv.dir, "state1"), os.path.join(srv.dir, "state2")
conf = os.path.join(srv.dir, "ingenious.conf")
with open(conf, "w") as f:
    f.write('server = { state_dir = "%s"; };\n' % sd1)
srv.start()
t.ok(os.path.exists(os.path.join(sd1, "jwt.key")), "the key file is made under state_dir")
with open(conf, "w") as f:
    f.write('server = { state_dir = "%s"; };\n' % sd2)
srv.signal(signal.SIGHUP)
t.ok(wait_for(lambda: srv.metrics().get("ingenious_config_generation") == 2, 5),
     "the reload itself succeeds")
line = (srv.log_lines("cannot be changed without restarting the server") or [""])[0]
t.ok("server.state_dir" in line and sd1 in line and sd2 in line and "level=warning" in line,
     "a changed state_dir is named in a warning with the kept and the refused value", line)
t.ok(not os.path.exists(sd2), "the new generation keeps the old state_dir (nothing under the new one)")
srv.stop()

# ---- SIGTERM drain: in-flight requests complete, new connections refused ---
srv = Server(t, workers=1).start()
s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
s.sendall(b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
time.sleep(0.2)
srv.signal(signal.SIGTERM)
time.sleep(0.3)
refused = False
try:
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=1)
    c.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    refused = c.recv(100) == b""
    c.close()
except OSError:
    refused = True
t.ok(refused, "after SIGTERM new connections are refused")
s.sendall(b"world")
resp = s.recv(4096)
t.eq(status_of(resp), 405, "the in-flight request completes during the drain")
t.ok(b"connection: close" in resp.lower(), "and its connection is closed after it")
s.close()
t.eq(srv.wait_exit(10), 0, "the master exits 0 after the drain")
t.ok(not os.path.exists(srv.pidfile), "the pid file is removed")

# ---- SIGTERM twice / SIGQUIT: stop now ------------------------------------
srv = Server(t, workers=1).start()
s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
s.sendall(b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhel")
time.sleep(0.2)
srv.signal(signal.SIGTERM)
time.sleep(0.2)
srv.signal(signal.SIGTERM)
t0 = time.time()
code = srv.wait_exit(5)
t.ok(code is not None and time.time() - t0 < 2, "a second SIGTERM stops at once")
s.close()
srv = Server(t, workers=2).start()
workers = srv.workers()
srv.signal(signal.SIGQUIT)
code = srv.wait_exit(3)
t.ok(code is not None, "SIGQUIT stops at once")
t.ok(wait_for(lambda: not any(alive(p) for p in workers), 2), "no worker survives SIGQUIT")

# ---- workers die with the master ------------------------------------------
srv = Server(t, workers=2).start()
workers = srv.workers()
os.kill(srv.pid, signal.SIGKILL)
srv.proc.wait(5)
t.ok(wait_for(lambda: not any(alive(p) for p in workers), 3), "workers exit when the master dies")
srv.proc = None

# ---- recycling after max_requests ----------------------------------------
srv = Server(t, workers=1, env={"INGENIOUS_SERVER__MAX_REQUESTS": "40",
                                "INGENIOUS_SERVER__MAX_REQUESTS_JITTER": "10"}).start()
first = srv.workers()
load = Load(srv.port, threads=3).start()
recycled = wait_for(lambda: srv.workers() and srv.workers() != first, timeout=10)
time.sleep(0.5)
load.stop()
t.ok(recycled, "the worker is recycled after max_requests")
t.eq(load.failures[:5], [], "no request fails across recycling (%d ok)" % load.ok)
t.ok(srv.wait_log("recycling"), "recycling is logged")
t.eq(srv.metrics().get("ingenious_worker_crashes_total"), 0.0, "recycling is not a crash")
srv.stop()

# ---- crash loop backoff -----------------------------------------------------
srv = Server(t, workers=1, env={"INGENIOUS_TEST_FAULT": "worker_start_crash"},
             expect_alert=True).start(wait=False)
t.ok(srv.wait_log("crash loop", timeout=8), "a crash loop is detected and logged as an alert")
t.ok(any("level=alert" in l for l in srv.log_lines("crash loop")), "the crash loop line is an alert")
n1 = len(srv.log_lines("was terminated by signal"))
time.sleep(2.5)
n2 = len(srv.log_lines("was terminated by signal"))
t.ok(n2 - n1 <= 3, "respawning backs off (%d crashes in 2.5 s after the alert)" % (n2 - n1))
t.ok(srv.proc.poll() is None, "the master keeps running during a crash loop")
srv.stop()

# ---- the fatal exit code stops the server ---------------------------------
srv = Server(t, workers=2, env={"INGENIOUS_TEST_FAULT": "worker_start_fatal"},
             expect_alert=True).start(wait=False)
code = srv.wait_exit(10)
t.eq(code, 1, "a worker's fatal exit stops the server with exit code 1")
t.ok(srv.log_lines("fatal code"), "the fatal exit is logged")
srv.proc = None

# ---- watchdog: a stuck worker is killed and replaced -----------------------
srv = Server(t, workers=1, env={"INGENIOUS_TEST_FAULT": "worker_hang",
                                "INGENIOUS_SERVER__WORKER_TIMEOUT": "2",
                                "INGENIOUS_LLM__TIMEOUT_MS": "1000"}).start()
first = srv.workers()
t.ok(srv.wait_log("has not reported", timeout=8), "the watchdog notices a stalled heartbeat")
t.ok(wait_for(lambda: srv.workers() and srv.workers() != first, 3), "the stuck worker is replaced")
srv.stop()

# ---- systemd notify protocol ------------------------------------------------
sockdir = "/tmp/ingen-notify-%d" % os.getpid()
os.makedirs(sockdir, exist_ok=True)
path = os.path.join(sockdir, "notify.sock")
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(path)
ns.settimeout(0.2)
msgs = []


def collect(until, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            msgs.append(ns.recv(4096).decode())
        except socket.timeout:
            pass
        if any(until in m for m in msgs):
            return True
    return False


srv = Server(t, workers=1, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}).start(wait=False)
t.ok(collect("READY=1"), "READY=1 sent when the workers are up")
t.ok(any("STATUS=" in m for m in msgs), "STATUS= sent")
t.ok(any("MAINPID=%d" % srv.pid in m for m in msgs), "MAINPID names the master")
msgs.clear()
t.ok(collect("WATCHDOG=1", 2), "WATCHDOG=1 sent")
# at half the interval (200 ms): about ten in two seconds, not one, not a flood
msgs.clear()
t_end = time.time() + 2.0
while time.time() < t_end:
    collect("never-sent", timeout=max(0.0, t_end - time.time()))
pings = sum(m.count("WATCHDOG=1") for m in msgs)
t.ok(4 <= pings <= 14, "WATCHDOG=1 at half the WATCHDOG_USEC interval: %d pings in 2 s "
     "(400 ms interval)" % pings)
msgs.clear()
srv.signal(signal.SIGHUP)
t.ok(collect("RELOADING=1"), "RELOADING=1 on SIGHUP")
t.ok(collect("READY=1"), "READY=1 again when the new generation serves")
msgs.clear()
srv.signal(signal.SIGTERM)
t.ok(collect("STOPPING=1"), "STOPPING=1 on SIGTERM")
srv.wait_exit(10)
srv.proc = None
# without WATCHDOG_USEC the watchdog is off: no ping at all
srv = Server(t, workers=1, env={"NOTIFY_SOCKET": path}).start(wait=False)
t.ok(collect("READY=1"), "READY=1 without a watchdog")
msgs.clear()
collect("WATCHDOG=1", 1.5)
t.ok(not any("WATCHDOG=1" in m for m in msgs), "no WATCHDOG=1 when WATCHDOG_USEC is not set")
srv.signal(signal.SIGTERM)
srv.wait_exit(10)
srv.proc = None
ns.close()
os.unlink(path)
os.rmdir(sockdir)

# ---- socket activation (LISTEN_FDS) ----------------------------------------
port = free_port()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(16)
os.dup2(ls.fileno(), 3)
ls.close()
srv = Server(t, workers=1, env={"LISTEN_FDS": "1"}, port=free_port())
srv.pass_fds = (3,)
# LISTEN_PID must be the server's pid: set it in a tiny exec wrapper
real = INGEN
try:
    import ingen
    wrapper = os.path.join(srv.dir, "activate.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nLISTEN_PID=$$ exec "%s" "$@"\n' % real)
    os.chmod(wrapper, 0o755)
    ingen.INGEN = wrapper
    srv.start()
finally:
    ingen.INGEN = real
os.close(3)
st, _, _ = request(port, "GET", "/api/v1/health")
t.eq(st, 200, "serves on the socket passed by systemd")
t.ok(srv.log_lines("127.0.0.1:%d" % port), "the adopted socket is named in the log")
srv.stop()

# ---- slow chats in flight survive a reload and complete during a drain -----
import threading  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

pg = PgCluster(t)
sim = Sim(t, api_key="drain-key", latency_ms=1500).start()
chat_env = {
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_KEY": "drain-key",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
}


def chats(port, n, results):
    def one(i):
        try:
            st, _, body = request(port, "POST", "/api/v1/chat", timeout=20, body={
                "user_prompt": "slow question %d" % i, "conversation_flow": "classification-agent"})
            results.append(st)
        except Exception as exc:
            results.append(repr(exc))
    ths = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in ths:
        th.start()
    return ths


srv = Server(t, workers=1, env=chat_env).start()
results = []
ths = chats(srv.port, 10, results)
time.sleep(0.4)
srv.signal(signal.SIGHUP)
for th in ths:
    th.join(20)
t.eq(results, [200] * 10, "ten slow chats in flight across a reload all succeed")
results = []
ths = chats(srv.port, 10, results)
time.sleep(0.4)
srv.signal(signal.SIGTERM)
for th in ths:
    th.join(20)
t.eq(results, [200] * 10, "ten slow chats in flight complete during the SIGTERM drain")
t.eq(srv.wait_exit(10), 0, "then the master exits 0")
t.eq(pg.value("SELECT count(*) FROM messages"), "40", "every acknowledged turn is stored")
srv.proc = None

# a pid file in a folder that does not exist yet: the master makes the folder
pdir = tempfile.mkdtemp(prefix="ingen-pid-")
t.at_exit(lambda: shutil.rmtree(pdir, ignore_errors=True))
pfile = os.path.join(pdir, "run", "ingen.pid")
ps = Server(t, workers=1, args=["--pidfile", pfile]).start()
t.ok(os.path.isfile(pfile) and open(pfile).read().strip() == str(ps.pid),
     "a pid file's missing folder is created, and the file holds the master's pid")
ps.stop()

t.done()
