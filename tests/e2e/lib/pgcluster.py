"""pgcluster.py -- a private PostgreSQL cluster for the end-to-end tests.

The cluster is made by `ingen db init-local DIR`, the code path of the quick
start: initdb with generated passwords, a unix socket in DIR/run and no TCP,
the roles and the database, the migrations.  When the tests run as root,
PostgreSQL runs as the `postgres` OS user (ingen switches user itself);
otherwise as the current user.  DIR lives under a fresh temporary directory
with a short path (unix socket paths are limited to 107 bytes) that is
removed, cluster stopped first, when the test finishes.

    from pgcluster import PgCluster
    pg = PgCluster(tap)                    # stopped and removed at tap.done()
    pg.url("app"), pg.url("owner"), pg.url("readonly"), pg.url("sqlagent")
    pg.sql("SELECT 1", role="readonly")    # rows as lists of strings
    pg.probe(["save-turn", "--owner", "bob"])   # tests/db_probe, parsed JSON
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from ingen import BUILDDIR, INGEN, SANITIZER_MARKS, SRCDIR, clean_env

DB_PROBE = os.path.join(BUILDDIR, "tests", "probe", "db_probe")
ROLES = ("app", "owner", "readonly", "sqlagent", "superuser")
PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"


SANITIZER_REPORTS = []


def note_sanitizer(text, what):
    """Remember a sanitizer report found in a program's stderr."""
    if any(m in (text or "") for m in SANITIZER_MARKS):
        SANITIZER_REPORTS.append("%s:\n%s" % (what, text[-3000:]))


def check_sanitizers(tap, only_failure=False):
    """One TAP line: no ingen or db_probe run printed a sanitizer report
    (with only_failure, the line is printed only when one did).  A report is
    counted once: the next check sees only the reports after this one."""
    if only_failure and not SANITIZER_REPORTS:
        return
    tap.ok(not SANITIZER_REPORTS, "no sanitizer report from ingen or db_probe",
           "\n".join(SANITIZER_REPORTS))
    del SANITIZER_REPORTS[:]


def pg_env(extra=None):
    """An environment with no libpq or INGENIOUS_* variable leaking in."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("PG")}
    env.update(extra or {})
    return env


def ingen_db(args, timeout=120, env=None, cwd=None):
    """Run `ingen db ARGS` (or `db_probe cli ARGS` when ingen is not built)."""
    if os.access(INGEN, os.X_OK):
        cmd = [INGEN, "db"] + list(args)
    else:
        cmd = [DB_PROBE, "cli", "db"] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=env or pg_env(), cwd=cwd)
    note_sanitizer(r.stderr, "ingen db " + " ".join(args[:1]))
    return r


class SqlError(Exception):
    pass


class PgCluster:
    def __init__(self, tap=None, sql_dir=None, timeout=180):
        # /tmp keeps the socket path short; 0755 so that the postgres user
        # (when we are root) can reach DIR inside it
        self.tmp = tempfile.mkdtemp(prefix="ingen-pg-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self.dir = os.path.join(self.tmp, "pg")
        self.removed = False
        self.tap = tap
        if tap is not None:
            tap.at_exit(self.remove)
        args = ["init-local", self.dir]
        if sql_dir:
            args += ["--sql-dir", sql_dir]
        t0 = time.time()
        r = ingen_db(args, timeout=timeout)
        self.init_seconds = time.time() - t0
        self.init_result = r
        if r.returncode != 0:
            out = r.stdout + r.stderr
            self.remove()
            raise RuntimeError("ingen db init-local failed (%d):\n%s" % (r.returncode, out))
        self.urls = self.read_credentials()

    def read_credentials(self):
        urls = {}
        with open(os.path.join(self.dir, "credentials")) as f:
            for line in f:
                key, sep, val = line.rstrip("\n").partition("=")
                if sep and key.endswith("_url"):
                    urls[key[:-4]] = val
        return urls

    def password(self, role):
        with open(os.path.join(self.dir, "credentials")) as f:
            for line in f:
                if line.startswith(role + "_password="):
                    return line.rstrip("\n").split("=", 1)[1]
        return None

    def url(self, role="app", dbname=None):
        u = self.urls[role]
        if dbname is not None:
            u = u.replace("dbname=ingenious", "dbname=" + dbname).replace(
                "dbname=postgres", "dbname=" + dbname)
        return u

    def psql(self, sql, role="owner", dbname=None, timeout=60):
        """Run sql with psql; returns the CompletedProcess (never raises)."""
        return subprocess.run(
            [PSQL, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
             "-F", "|", "-d", self.url(role, dbname), "-c", sql],
            capture_output=True, text=True, timeout=timeout, env=pg_env())

    def sql(self, sql, role="owner", dbname=None, timeout=60):
        """Rows of the last statement as lists of strings; SqlError on failure."""
        r = self.psql(sql, role, dbname, timeout)
        if r.returncode != 0:
            raise SqlError(r.stderr.strip())
        return [line.split("|") for line in r.stdout.splitlines() if line != ""]

    def value(self, sql, role="owner", dbname=None):
        rows = self.sql(sql, role, dbname)
        return rows[0][0] if rows else None

    def create_database(self, name):
        """An empty database owned by the owner role (for migrations from empty)."""
        self.sql('CREATE DATABASE "%s" OWNER ingenious_owner' % name, role="superuser")
        return self.url("owner", name)

    def ingen_db(self, args, timeout=120, env=None):
        return ingen_db(args, timeout=timeout, env=env)

    def stop(self):
        r = ingen_db(["stop-local", self.dir], timeout=90)
        if r.returncode != 0:
            raise RuntimeError("stop-local failed: %s" % (r.stdout + r.stderr))

    def stop_immediate(self, seconds=30):
        """pg_ctl stop -m immediate as the postmaster sees it (SIGQUIT): the
        backends quit mid-statement, each with a WARNING and no goodbye.
        True once this cluster's postmaster has exited."""
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            pid = int(f.readline())
        os.kill(pid, signal.SIGQUIT)
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.02)
        return False

    def start(self):
        r = ingen_db(["start-local", self.dir], timeout=90)
        if r.returncode != 0:
            raise RuntimeError("start-local failed: %s" % (r.stdout + r.stderr))

    def probe(self, args, role="app", url=None, opts=None, timeout=120):
        """Run tests/db_probe once; returns (parsed JSON, stderr)."""
        cmd = [DB_PROBE, "--url", url if url is not None else self.url(role)]
        cmd += list(opts or []) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=pg_env())
        note_sanitizer(r.stderr, "db_probe " + " ".join(args[:1]))
        try:
            return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr
        except (ValueError, IndexError):
            raise RuntimeError("db_probe %r printed %r (stderr %r)" % (args, r.stdout, r.stderr))

    def repl(self, role="app", url=None, opts=None):
        return ProbeRepl([DB_PROBE, "--url", url if url is not None else self.url(role)]
                         + list(opts or []) + ["repl"])

    def remove(self):
        if self.removed:
            return
        self.removed = True
        if os.path.isdir(os.path.join(self.dir, "data")):
            try:
                r = ingen_db(["stop-local", self.dir], timeout=90)
                stopped = r.returncode == 0
            except subprocess.TimeoutExpired:
                stopped = False
            if not stopped:
                self._kill_postmaster()
        shutil.rmtree(self.tmp, ignore_errors=True)
        # a report that the script did not check for still fails it
        if self.tap is not None:
            check_sanitizers(self.tap, only_failure=True)

    def _kill_postmaster(self):
        """Last resort: the pid of *this* cluster's postmaster, from its pid file."""
        try:
            with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
                pid = int(f.readline())
            os.kill(pid, 9)
        except (OSError, ValueError):
            pass


class ProbeRepl:
    """One db_probe process (one pool) driven command by command."""

    def __init__(self, cmd):
        self.errf = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errf, text=True, env=pg_env())

    def cmd(self, args, timeout=60):
        import select
        self.proc.stdin.write(json.dumps(list(args)) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError("db_probe did not answer %r within %ss" % (args, timeout))
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("db_probe exited (%s): %s" % (self.proc.poll(), self.stderr()))
        return json.loads(line)

    def stderr(self):
        self.errf.seek(0)
        return self.errf.read()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('["quit"]\n')
                self.proc.stdin.close()
                self.proc.wait(10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
            note_sanitizer(self.stderr(), "db_probe repl")
