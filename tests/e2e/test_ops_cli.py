"""test_ops_cli.py -- the commands of an operator (issue 14): `ingen validate`
checks every prerequisite with one line each and exits 4 on a failure (no
database configured, a database that does not answer, a schema out of date, a
model endpoint that does not answer, the port in use), `--config-only` skips
them; `ingen status`, `ingen reload` and `ingen stop` find a running server
by the record of its state directory (or --pidfile), report it, reload it
(waiting for the new generation, or failing when the reload is refused) and
stop it (waiting for its exit); with no server they exit 3.  A chat on a
server with no database configured says so."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, INGEN, SRCDIR, clean_env, free_port, request, slack  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=240)
pg = PgCluster(t)
sim = Sim(t, api_key="ops-key", rules=[{"match": "[400]", "fault": "400"}]).start()
work = tempfile.mkdtemp(prefix="ingen-ops-")
state = os.path.join(work, "state")
flows = os.path.join(work, "flows")
os.makedirs(flows)
port = free_port()
BASE = {
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_KEY": "ops-key",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
    "INGENIOUS_WEB_CONFIGURATION__IP_ADDRESS": "127.0.0.1",
    "INGENIOUS_WEB_CONFIGURATION__PORT": str(port),
    "INGENIOUS_SERVER__STATE_DIR": state,
    "INGENIOUS_FLOW_PATH": flows,
}


def ingen(args, extra=None, drop=(), timeout=60):
    env = clean_env(dict(BASE, **(extra or {})))
    for k in drop:
        env.pop(k, None)
    for k in [k for k in env if k.startswith("PG")]:
        env.pop(k)
    r = subprocess.run([INGEN] + args, cwd=work, env=env, capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def line(out, what):
    for l in out.splitlines():
        if l.split(" ", 1)[-1].lstrip().startswith(what + ":"):
            return l
    return ""


# ---- ingen validate ----------------------------------------------------------
rc, out, err = ingen(["validate"])
t.ok(rc == 0 and line(out, "database").startswith("ok ") and "schema current" in out
     and line(out, "model gpt-4o").startswith("ok ") and line(out, "port").startswith("ok ")
     and line(out, "flows").startswith("ok ") and "every check passed" in out,
     "validate: every prerequisite ok, one line each, exit 0", out + err)
t.ok("ops-key" not in out + err and "password" not in out + err,
     "validate prints no key and no password", out + err)

rc, out, err = ingen(["validate"], drop=["INGENIOUS_CHAT_HISTORY__DATABASE_URL"],
                     extra={"PGHOST": ""})
t.ok(rc == 4 and line(out, "database").startswith("FAIL") and "none is configured" in out
     and "ingen db init-local" in out and "1 check failed" in out,
     "validate with no database configured: FAIL naming what to set, exit 4", out + err)

rc, out, err = ingen(["validate"], extra={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": "host=/nonexistent-dir dbname=x user=y",
    "INGENIOUS_CHAT_HISTORY__CONNECT_TIMEOUT": "2"})
t.ok(rc == 4 and line(out, "database").startswith("FAIL") and "/nonexistent-dir" in out,
     "validate with a database that does not answer: FAIL with libpq's reason", out + err)

pg.sql("CREATE DATABASE stale", role="superuser")
rc, out, err = ingen(["validate"], extra={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app", dbname="stale")})
t.ok(rc == 4 and line(out, "database").startswith("FAIL") and "ingen db migrate" in out,
     "validate with a schema out of date: FAIL saying to run ingen db migrate", out + err)

dead = free_port()
rc, out, err = ingen(["validate"], extra={
    "INGENIOUS_MODELS__0__BASE_URL": "http://127.0.0.1:%d/openai" % dead})
t.ok(rc == 4 and line(out, "model gpt-4o").startswith("FAIL") and "not reachable" in out
     and "127.0.0.1:%d" % dead in out,
     "validate with a model endpoint that does not answer: FAIL naming it", out + err)

holder = socket.socket()
holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
holder.bind(("127.0.0.1", port))
holder.listen(1)
rc, out, err = ingen(["validate"])
t.ok(rc == 4 and line(out, "port").startswith("FAIL") and "is in use" in out,
     "validate with the port in use: FAIL, exit 4", out + err)
rc, out, err = ingen(["validate", "--config-only"])
t.ok(rc == 0 and "configuration is valid" in out and "port" not in out,
     "validate --config-only checks the configuration and the flows only", out + err)
holder.close()

rc, out, err = ingen(["validate"], extra={"INGENIOUS_SERVER__WORKERS": "many"})
t.ok(rc == 2 and "INGENIOUS_SERVER__WORKERS" in err and "database" not in out,
     "an invalid configuration still exits 2, before the checks", out + err)

# ---- status, reload, stop with no server --------------------------------------
for cmd in ("status", "reload", "stop"):
    rc, out, err = ingen([cmd])
    t.ok(rc == 3 and "no server is running" in err,
         "ingen %s with no server: exit 3, says so" % cmd, out + err)
rc, out, err = ingen(["stop", "--timeout", "zero"])
t.eq(rc, 2, "ingen stop --timeout zero: a usage error")
rc, out, err = ingen(["status", "--now"])
t.eq(rc, 2, "ingen status --now: a usage error")

# ---- a running server ----------------------------------------------------------
srv = Server(t, workers=2, cwd=work, port=port, env=BASE).start(timeout=slack(20))
runfile = os.path.join(state, "ingen.run")
rec = open(runfile).read() if os.path.exists(runfile) else ""
t.ok("pid %d\n" % srv.pid in rec and "listen 127.0.0.1:%d\n" % port in rec and "started " in rec,
     "the master keeps pid, address and start time in <state_dir>/ingen.run", rec)
st, _, b = request(port, "POST", "/api/v1/chat",
                   {"user_prompt": "hello", "conversation_flow": "classification-agent"})
t.eq(st, 200, "a chat turn")
rc, out, err = ingen(["status"])
t.ok(rc == 0 and "running: pid %d" % srv.pid in out and "generation: 1" in out
     and "workers: 2 ready" in out and "database: ok" in out and "uptime:" in out
     and "model: 1 calls" in out,
     "ingen status: pid, uptime, generation, workers, model calls, database", out + err)
rc, out, err = ingen(["status", "--pidfile", srv.pidfile])
t.ok(rc == 0 and "running: pid %d (%s)" % (srv.pid, srv.pidfile) in out,
     "ingen status --pidfile: the same server by its pid file", out + err)

# ---- /metrics: errors of the model and the database, and what the docs use ----
def metric(text, name):
    for l in text.splitlines():
        if l.startswith(name + " "):
            return float(l.split()[1])
    return None


st, _, b = request(port, "POST", "/api/v1/chat",
                   {"user_prompt": "[400] refuse this", "conversation_flow": "classification-agent"})
pg.sql("REVOKE INSERT ON messages FROM ingenious_app", role="owner")
st2, _, _ = request(port, "POST", "/api/v1/chat",
                    {"user_prompt": "saved nowhere", "conversation_flow": "classification-agent"})
pg.sql("GRANT INSERT ON messages TO ingenious_app", role="owner")
time.sleep(0.5)   # the sweep copies the pool's counters (every 250 ms)
m = request(port, "GET", "/metrics")[2].decode()
t.ok(st == 502 and (metric(m, "ingenious_llm_errors_total") or 0) >= 1,
     "an upstream 400 counts in ingenious_llm_errors_total", m[-400:])
t.ok(st2 == 500 and (metric(m, "ingenious_db_errors_total") or 0) >= 1,
     "a statement the database refuses counts in ingenious_db_errors_total")
def by_labels(text, name):
    out = {}
    for l in text.splitlines():
        m = re.match(name + r'\{flow="([^"]*)",agent="([^"]*)",model="([^"]*)"\} (\d+)$', l)
        if m:
            out[m.group(1, 2, 3)] = int(m.group(4))
    return out


calls_by = by_labels(m, "ingenious_model_calls_total")
errors_by = by_labels(m, "ingenious_model_errors_total")
t.ok(any(k[0] == "classification_agent" and k[2] == "gpt-4o" and v >= 3
         for k, v in calls_by.items()) and sum(calls_by.values()) == metric(m, "ingenious_llm_calls_total"),
     "model calls by flow, agent and model add up to ingenious_llm_calls_total", calls_by)
t.ok(sum(errors_by.values()) == metric(m, "ingenious_llm_errors_total") >= 1,
     "and the failed ones by flow, agent and model", errors_by)
for name in ("ingenious_db_pool_waits_total", "ingenious_db_pool_wait_seconds_total",
             "ingenious_db_pool_timeouts_total", "ingenious_login_throttled_total"):
    t.ok(metric(m, name) is not None, "/metrics has %s" % name)
# every metric the shipped dashboard and alert rules use is one the server exports
names = set(re.findall(r"^(ingenious_[a-z_]+)", m, re.M))
names |= {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
for doc in ("etc/grafana-dashboard.json", "etc/prometheus-alerts.yml"):
    text = open(os.path.join(SRCDIR, doc)).read()
    if doc.endswith(".json"):
        dash = json.loads(text)
        t.ok(dash.get("panels") and all(p.get("targets") for p in dash["panels"]
                                        if p.get("type") != "row"),
             "%s is a Grafana dashboard with a query on every panel" % doc)
    used = {re.sub(r"_(bucket|sum|count)$", "", u)
            for u in re.findall(r"\b(ingenious_[a-z_]+)", text)}
    missing = sorted(used - names)
    t.ok(used and not missing, "every metric %s uses is exported (%d used)" % (doc, len(used)),
         missing)

rc, out, err = ingen(["reload"])
t.ok(rc == 0 and "reloaded: generation 2 is serving" in out,
     "ingen reload waits for the new generation", out + err)
time.sleep(1.0)   # the old workers drain and exit
m2 = request(port, "GET", "/metrics")[2].decode()
t.eq(by_labels(m2, "ingenious_model_calls_total"), calls_by,
     "the counters by flow, agent and model outlive the workers that counted them")
with open(os.path.join(flows, "broken.flow"), "w") as f:
    f.write("name = \"broken\"\nagents = ( {\n")   # not even libconfig
rc, out, err = ingen(["reload"], timeout=90)
t.ok(rc == 1 and "refused" in err and "generation 2 keeps serving" in err,
     "a reload refused (a broken flow file): exit 1, the old generation keeps serving",
     out + err)
os.unlink(os.path.join(flows, "broken.flow"))

rc, out, err = ingen(["stop"])
t.ok(rc == 0 and "stopped: pid %d" % srv.pid in out, "ingen stop waits for the exit", out + err)
t.ok(srv.proc.wait(10) == 0, "the master exited with 0")
t.ok(not os.path.exists(runfile), "and removed its record")
rc, out, err = ingen(["status"])
t.eq(rc, 3, "ingen status after the stop: exit 3")

# ---- a server with no database configured ------------------------------------
nodb = Server(t, workers=1, port=port, env=dict(
    {k: v for k, v in BASE.items() if k != "INGENIOUS_CHAT_HISTORY__DATABASE_URL"},
    PGHOST="/nonexistent-socket-dir")).start(timeout=slack(20))
st, _, b = request(port, "POST", "/api/v1/chat",
                   {"user_prompt": "hello", "conversation_flow": "classification-agent"})
t.ok(st == 503 and b"none is configured" not in b,
     "with PGHOST naming nothing: the usual 503 (a database is configured)", b)
nodb.stop()
env2 = {k: v for k, v in BASE.items() if k != "INGENIOUS_CHAT_HISTORY__DATABASE_URL"}
nodb = Server(t, workers=1, port=port, env=env2)
nodb.env.pop("PGHOST", None)
for k in [k for k in nodb.env if k.startswith("PG")]:
    nodb.env.pop(k)
nodb.start(timeout=slack(20))
st, _, b = request(port, "POST", "/api/v1/chat",
                   {"user_prompt": "hello", "conversation_flow": "classification-agent"})
body = json.loads(b) if b.startswith(b"{") else {}
t.ok(st == 503 and "none is configured" in body.get("detail", ""),
     "no database configured at all: the chat's 503 says none is configured", b)
t.ok(nodb.wait_log("no chat-history database is configured", timeout=5),
     "and the start logs it as a configuration problem, naming what to do")
nodb.stop()
t.done()
