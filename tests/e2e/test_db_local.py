"""test_db_local.py -- the embedded default database: `ingen db init-local`
with no argument makes <server.state_dir>/pg, is idempotent, and is what the
server's pool and `ingen db status` use when no database is configured (a
configured database_url or the libpq environment wins); stop-local and
start-local; a socket path that would be too long is refused; and, when the
tests run as root, the unprivileged path (the cluster made by a non-root
user running ingen) works too."""
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Tap  # noqa: E402
from pgcluster import DB_PROBE, INGEN, PSQL, check_sanitizers, ingen_db, note_sanitizer, \
    pg_env  # noqa: E402

tap = Tap(timeout=300)
top = tempfile.mkdtemp(prefix="ingen-local-", dir="/tmp")
os.chmod(top, 0o755)
state = os.path.join(top, "state")
pgdir = os.path.join(state, "pg")
env = pg_env({"INGENIOUS_SERVER__STATE_DIR": state})


def cleanup():
    if os.path.isdir(os.path.join(pgdir, "data")):
        ingen_db(["stop-local", pgdir], timeout=90)
    shutil.rmtree(top, ignore_errors=True)


tap.at_exit(cleanup)


def db(args, extra_env=None, timeout=180):
    e = dict(env)
    e.update(extra_env or {})
    return ingen_db(args, timeout=timeout, env=e, cwd=top)


def probe(args, extra_env=None, opts=None):
    e = dict(env)
    e.update(extra_env or {})
    r = subprocess.run([DB_PROBE, "--state-dir", state] + list(opts or []) + list(args),
                       capture_output=True, text=True, timeout=60, env=e, cwd=top)
    note_sanitizer(r.stderr, "db_probe " + args[0])
    return json.loads(r.stdout.strip().splitlines()[-1])


def connects(url):
    return subprocess.run([PSQL, "-X", "-A", "-t", "-d", url, "-c", "SELECT 1"],
                          capture_output=True, text=True, timeout=30, env=pg_env()).returncode == 0


# --- init-local with no DIR uses <server.state_dir>/pg
r = db(["init-local"])
tap.eq(r.returncode, 0, "init-local with no DIR exits 0")
tap.ok(os.path.exists(os.path.join(pgdir, "data", "PG_VERSION")),
       "the cluster is in <server.state_dir>/pg", r.stdout + r.stderr)
tap.ok(os.path.exists(os.path.join(pgdir, "run", ".s.PGSQL.5432")), "its socket is in DIR/run")
r = db(["init-local"])
tap.ok(r.returncode == 0 and "0 migrations applied" in r.stderr,
       "init-local again is idempotent (starts, applies nothing)", r.stderr)

# --- with nothing configured, the server and `ingen db` use it
r = db(["status"])
tap.ok(r.returncode == 0 and "connected as ingenious_owner" in r.stdout,
       "db status with no --database-url inspects the local cluster as its owner", r.stdout + r.stderr)
p = probe(["source"])
tap.eq(p["source"], "local cluster (server.state_dir/pg)",
       "the pool uses the local cluster when no database is configured")
tap.eq(probe(["ready"])["ready"], True, "and it is ready")
tap.eq(probe(["save-turn", "--owner", "bob"])["status"], "ok", "and saves turns")
r = db(["url", "--role", "readonly"])
tap.ok(r.returncode == 0 and "user=ingenious_readonly" in r.stdout and connects(r.stdout.strip()),
       "db url --role readonly prints a working connection string")

# --- a configured database wins over the local cluster
bogus = "host=/nonexistent/socket/dir dbname=nothing user=nobody"
r = db(["status"], {"INGENIOUS_CHAT_HISTORY__DATABASE_URL": bogus})
tap.ok(r.returncode == 1 and "could not connect" in r.stderr,
       "INGENIOUS_CHAT_HISTORY__DATABASE_URL is used instead", r.stdout + r.stderr)
tap.eq(probe(["source"], {"INGENIOUS_CHAT_HISTORY__DATABASE_URL": bogus},
             ["--url", bogus])["source"], "chat_history.database_url",
       "the pool reports where its settings came from")
tap.eq(probe(["source"], {"PGHOST": "/nonexistent"})["source"], "libpq environment",
       "PGHOST beats the local cluster")
p = probe(["ready"], {"PGHOST": "/nonexistent"})
tap.eq(p["ready"], False, "and a pool pointed at nothing is not ready")

# --- stop and start
r = db(["stop-local"])
tap.eq(r.returncode, 0, "stop-local exits 0")
url = open(os.path.join(pgdir, "database_url")).read().strip()
tap.ok(not connects(url), "nothing answers after stop-local")
tap.ok(not os.path.exists(os.path.join(pgdir, "run", ".s.PGSQL.5432")), "the socket is gone")
tap.eq(db(["stop-local"]).returncode, 0, "stop-local of a stopped cluster is a no-op")
r = db(["start-local"])
tap.ok(r.returncode == 0 and connects(url), "start-local brings it back", r.stdout + r.stderr)
r = db(["start-local", os.path.join(top, "nothing-here")])
tap.ok(r.returncode == 1 and "no local cluster" in r.stderr, "start-local of an empty dir fails",
       r.stderr)

# --- a socket path that cannot work is refused before anything is created
longdir = os.path.join(top, "x" * 90, "pg")
r = db(["init-local", longdir])
tap.ok(r.returncode == 1 and "socket path" in r.stderr, "a too long socket path is refused",
       r.stderr)
tap.ok(not os.path.exists(longdir), "and nothing was created")

# --- as root, the unprivileged path works too (as the postgres user)
if os.geteuid() == 0 and os.access(INGEN, os.X_OK):
    pw = pwd.getpwnam("postgres")
    udir = os.path.join(top, "user")
    os.mkdir(udir)
    os.chown(udir, pw.pw_uid, pw.pw_gid)
    upg = os.path.join(udir, "pg")
    cmd = ["runuser", "-u", "postgres", "--", INGEN, "db"]
    r = subprocess.run(cmd + ["init-local", upg], capture_output=True, text=True, timeout=180,
                       env=pg_env(), cwd=udir)
    tap.ok(r.returncode == 0, "a non-root user creates its own cluster", r.stdout + r.stderr)
    if r.returncode == 0:
        tap.eq(pwd.getpwuid(os.stat(os.path.join(upg, "credentials")).st_uid).pw_name,
               "postgres", "owned by that user, credentials included")
        uurl = open(os.path.join(upg, "database_url")).read().strip()
        tap.ok(connects(uurl), "and it serves")
    r = subprocess.run(cmd + ["stop-local", upg], capture_output=True, text=True, timeout=90,
                       env=pg_env(), cwd=udir)
    tap.eq(r.returncode, 0, "the user stops it")
else:
    tap.ok(True, "# SKIP not root: the tests already ran the unprivileged path")

check_sanitizers(tap)
tap.done()
