"""test_failover.py -- PostgreSQL failover under a running server (issue 14):
a primary (the project's private cluster) and a streaming standby made with
pg_basebackup, synchronous replication on; the server's database URL names
both (host=A,B target_session_attrs=read-write).  Chats run under load; the
primary is stopped (immediate, as a crash) and the standby promoted: during
the switch chats get 503 with Retry-After, then succeed on the new primary
without a restart of the server, and every acknowledged turn (every 200) is
on the new primary (docs/dba.md, "A standby and failover")."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, slack  # noqa: E402
from pgcluster import PSQL, PgCluster, pg_env  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=300)
BIN = "/usr/lib/postgresql/15/bin"
ROOT = os.geteuid() == 0


def as_pg(cmd, **kw):
    """Run a PostgreSQL program as the cluster's OS user."""
    if ROOT:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=pg_env(kw.pop("env", {})),
                          timeout=kw.pop("timeout", 120), **kw)


pg = PgCluster(t)
sim = Sim(t, api_key="fo-key", args=["--quiet", "--latency-ms", "20"]).start()
sb = os.path.join(pg.tmp, "standby")
sb_data, sb_run = os.path.join(sb, "data"), os.path.join(sb, "run")
os.makedirs(sb_run)
os.chmod(sb, 0o700)
if ROOT:
    subprocess.run(["chown", "-R", "postgres:postgres", sb], check=True)
TOKEN = r"%s=('(?:[^'\\]|\\.)*'|\S+)"


def conninfo(url, key):
    m = re.search(TOKEN % key, url)
    v = m.group(1) if m else ""
    return v[1:-1].replace("\\'", "'").replace("\\\\", "\\") if v.startswith("'") else v


def with_host(url, host):
    return re.sub(TOKEN % "host", lambda m: "host='%s'" % host, url, count=1)


su = pg.url("superuser")
su_pw = conninfo(su, "password")
primary_host = conninfo(su, "host")

# ---- the standby ----------------------------------------------------------------
r = as_pg([BIN + "/pg_basebackup", "-h", primary_host, "-U", "postgres", "-D", sb_data,
           "-R", "-X", "stream", "-c", "fast"], env={"PGPASSWORD": su_pw})
t.ok(r.returncode == 0, "pg_basebackup makes a standby of the primary", r.stderr[-600:])
with open(os.path.join(sb_data, "postgresql.auto.conf"), "a") as f:
    f.write("unix_socket_directories = '%s'\nprimary_conninfo = 'host=%s user=postgres "
            "password=%s application_name=standby1'\nhot_standby = on\n"
            % (sb_run, primary_host, su_pw))
if ROOT:
    subprocess.run(["chown", "postgres:postgres", os.path.join(sb_data, "postgresql.auto.conf")],
                   check=True)
r = as_pg([BIN + "/pg_ctl", "-D", sb_data, "-l", os.path.join(sb, "log"), "-w", "-t", "60",
           "start"])
t.ok(r.returncode == 0, "the standby starts", r.stdout + r.stderr)


def stop_standby():
    if os.path.exists(os.path.join(sb_data, "postmaster.pid")):
        as_pg([BIN + "/pg_ctl", "-D", sb_data, "-m", "immediate", "-w", "stop"])


t.at_exit(stop_standby)


def sb_sql(sql, role_url=None):
    url = with_host(role_url or pg.url("owner"), sb_run)
    r = subprocess.run([PSQL, "-X", "-A", "-t", "-q", "-d", url, "-c", sql],
                       capture_output=True, text=True, env=pg_env(), timeout=30)
    return r.stdout.strip() if r.returncode == 0 else None


# synchronous replication: a commit returns once the standby has it
pg.sql("ALTER SYSTEM SET synchronous_standby_names = 'standby1'", role="superuser")
pg.sql("SELECT pg_reload_conf()", role="superuser")
deadline = time.time() + 30
state = None
while time.time() < deadline:
    rows = pg.sql("SELECT state, sync_state FROM pg_stat_replication", role="superuser")
    state = rows[0] if rows else None
    if state == ["streaming", "sync"]:
        break
    time.sleep(0.2)
t.eq(state, ["streaming", "sync"], "the standby streams, synchronously")
t.eq(sb_sql("SELECT pg_is_in_recovery()"), "t", "the standby is read-only (in recovery)")

# ---- the server, with both hosts in its URL ---------------------------------------
app = pg.url("app")
url = with_host(app, "%s,%s" % (primary_host, sb_run))
if "port=" in url:
    url = re.sub(r"port='?(\d+)'?", r"port=\1,\1", url)
url += " target_session_attrs=read-write"
srv = Server(t, workers=2, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": url,
    "INGENIOUS_CHAT_HISTORY__CONNECT_TIMEOUT": "2",
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_KEY": "fo-key",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
    "INGENIOUS_LOGGING__ACCESS_LOG": "false",
}).start(timeout=slack(20))


def chat(text):
    try:
        st, h, b = request(srv.port, "POST", "/api/v1/chat",
                           {"user_prompt": text, "conversation_flow": "classification-agent"},
                           timeout=30)
    except OSError as ex:
        return -1, {}, str(ex).encode()
    return st, h, b


st, _, b = chat("before the failover")
t.eq(st, 200, "a chat on the primary")

results = []
lock = threading.Lock()
running = True


def loader(k):
    i = 0
    while running:
        st, h, b = chat("turn %d-%d" % (k, i))
        with lock:
            results.append((time.time(), st, h.get("retry-after"),
                            json.loads(b).get("message_id") if st == 200 else b[:200]))
        i += 1
        if st != 200:
            time.sleep(0.05)


ths = [threading.Thread(target=loader, args=(k,)) for k in range(6)]
for th in ths:
    th.start()
time.sleep(1.5)
t_crash = time.time()
t.ok(pg.stop_immediate(), "the primary is stopped (immediate: a crash)")
time.sleep(1.0)
r = as_pg([BIN + "/pg_ctl", "-D", sb_data, "-w", "promote"])
t_promote = time.time()
t.ok(r.returncode == 0, "the standby is promoted", r.stdout + r.stderr)
# chats succeed again on the new primary, without a restart
ok_after = False
deadline = time.time() + 40
while time.time() < deadline and not ok_after:
    time.sleep(0.5)
    with lock:
        ok_after = any(ts > t_promote + 0.1 and st == 200 for ts, st, _, _ in results)
time.sleep(1.0)
running = False
for th in ths:
    th.join(60)

during = [(st, ra) for ts, st, ra, _ in results if t_crash <= ts]
bad = [x for x in results if x[1] not in (200, 503)]
no_ra = [x for x in results if x[1] == 503 and not (x[2] or "").isdigit()]
acked = [m for _, st, _, m in results if st == 200]
t.ok(ok_after, "chats succeed on the new primary, with no restart of the server (%d answered "
     "in all)" % len(acked))
t.ok(not bad, "every chat answered 200 or 503, nothing else (%d during the switch)" % len(during),
     bad[:5])
t.ok(not no_ra, "every 503 carries Retry-After", no_ra[:3])
t.ok(any(st == 503 for st, _ in during), "some chats got 503 during the switch")
ids = ",".join("'%s'" % m for m in acked)
found = sb_sql("SELECT count(*) FROM messages WHERE id IN (%s)" % ids) if acked else "0"
t.eq(found, str(len(acked)), "every acknowledged turn is on the new primary (synchronous "
     "replication)")
t.eq(sb_sql("SELECT pg_is_in_recovery()"), "f", "the new primary takes writes")
srv.stop()
t.done()
