"""test_serve_schema.py -- `ingen serve` checks the database schema at start
(issue 3 item 1): an out-of-date schema stops the start with a message naming
the command to run; --migrate applies what is pending first; an unreachable
database does not stop the start (the server is not ready until it answers)."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, SRCDIR, request  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402

t = Tap(timeout=200)

# a cluster migrated with only the first two schema files
old_sql = tempfile.mkdtemp(prefix="ingen-oldsql-")
t.at_exit(lambda: shutil.rmtree(old_sql, ignore_errors=True))
files = sorted(f for f in os.listdir(os.path.join(SRCDIR, "sql")) if f.endswith(".sql"))
for f in files[:-1]:
    shutil.copy(os.path.join(SRCDIR, "sql", f), old_sql)
pg = PgCluster(t, sql_dir=old_sql)
state = os.path.dirname(pg.dir)   # <state_dir>/pg is the cluster

srv = Server(t, workers=1, env={"INGENIOUS_SERVER__STATE_DIR": state})
srv.start(wait=False)
code = srv.wait_exit(30)
t.eq(code, 1, "an out-of-date schema stops the start (exit 1)")
t.ok(srv.log_lines("ingen db migrate"), "the message names the command to run", srv.log()[-2000:])
srv.proc = None

srv = Server(t, workers=1, env={"INGENIOUS_SERVER__STATE_DIR": state}, args=["--migrate"])
srv.start(timeout=30)
t.ok(srv.log_lines("applied 1 schema file"), "--migrate applies the pending file first")
st, _, body = request(srv.port, "GET", "/api/v1/ready")
t.eq(st, 200, "then the server is ready")
srv.stop()

# nothing reachable: the server starts anyway and is not ready
srv = Server(t, workers=1, env={"INGENIOUS_CHAT_HISTORY__DATABASE_URL":
                                "host=/nonexistent-dir dbname=x connect_timeout=1"})
srv.start(timeout=15)
t.ok(srv.log_lines("database unavailable at start"), "an unreachable database is logged at start")
st, hdr, _ = request(srv.port, "GET", "/api/v1/ready")
t.eq(st, 503, "and the server serves, not ready")
srv.stop()
check_sanitizers(t)
t.done()
