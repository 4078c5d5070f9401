"""test_db_outage.py -- RELIABILITY D1 for the database pool (lib/db_pool.c),
in one long-lived process (tests/db_probe repl): while the database is down,
calls fail fast with 503 and a Retry-After, readiness says no; when it comes
back the same pool serves again without being recreated; a pool created
while the database is absent becomes ready later; a restart while idle costs
no failed call; statement_timeout bounds a blocked statement; the password
never reaches a log line. Issue 8, defect a: a connection whose server quit
in immediate mode fails its next statement with no SQLSTATE while libpq
still calls it CONNECTION_OK; that is "database unavailable" (503,
Retry-After) on every call, never a 500; and db_failure_classify, the one
rule behind it, case by case."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Tap  # noqa: E402
from pgcluster import DB_PROBE, PSQL, PgCluster, check_sanitizers, pg_env  # noqa: E402

CONNECT_TIMEOUT = 3

tap = Tap(timeout=300)
pg = PgCluster(tap)
db = pg.repl("app", opts=["--pool", "3", "--connect-timeout", str(CONNECT_TIMEOUT)])
tap.at_exit(db.close)


def wait_ready(repl, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if repl.cmd(["ready"])["ready"]:
            return True
        time.sleep(0.1)
    return False


r = db.cmd(["ready"])
tap.eq(r["ready"], True, "ready while the database is up")
r = db.cmd(["save-turn", "--owner", "bob"])
tap.eq(r["status"], "ok", "a turn is saved")
T = r["thread_id"]

# --- the database goes down
pg.stop()
r = db.cmd(["save-turn", "--thread", T, "--owner", "bob"])
tap.ok(r["status"] == "error" and r["http"] == 503, "a turn while down fails with 503", r)
tap.ok(r["ms"] < CONNECT_TIMEOUT * 1000, "within the connect timeout (%.0f ms)" % r["ms"])
tap.ok(r.get("retry_after", 0) >= 1, "with a Retry-After of at least 1 s", r)
tap.eq(r.get("error"), "database unavailable", "and a message without details")
times = []
for _ in range(5):
    r = db.cmd(["save-turn", "--thread", T, "--owner", "bob"])
    times.append((r["status"], r.get("http"), r["ms"]))
tap.ok(all(s == "error" and h == 503 for s, h, _ in times), "every call while down is a 503",
       times)
tap.ok(max(ms for _, _, ms in times) < 1000, "and fails fast (%s ms)" %
       ", ".join("%.1f" % ms for _, _, ms in times))
r = db.cmd(["ready"])
tap.ok(r["ready"] is False and r["ms"] < CONNECT_TIMEOUT * 1000,
       "not ready while down (%.1f ms)" % r["ms"])
u = db.cmd(["usage", "--user", "bob", "--model", "gpt-4o", "--prompt", "7", "--completion", "3"])
tap.ok(u["status"] == "error" and u["http"] == 503, "recording usage while down is a 503", u)

# --- the database comes back: the same pool serves again
pg.start()
tap.ok(wait_ready(db), "ready again after the restart, same process and pool")
r = db.cmd(["save-turn", "--thread", T, "--owner", "bob"])
tap.eq(r["status"], "ok", "turns are saved again")
tap.eq(r.get("first_seq"), 3, "the thread continues without a gap")

# --- a restart while idle costs no failed call (stale connections are retried)
pg.stop()
pg.start()
r = db.cmd(["save-turn", "--thread", T, "--owner", "bob"])
tap.eq(r["status"], "ok", "the first call after an idle restart succeeds", )
r = db.cmd(["messages", "--thread", T, "--limit", "100"])
tap.eq([m["seq"] for m in r["messages"]], [1, 2, 3, 4, 5, 6], "every turn is there, in order")

# --- a pool created while the database is absent
pg.stop()
late = pg.repl("app", opts=["--pool", "2", "--connect-timeout", str(CONNECT_TIMEOUT)])
tap.at_exit(late.close)
r = late.cmd(["ready"])
tap.eq(r["ready"], False, "a pool created with the database down is not ready")
r = late.cmd(["history", "--thread", T])
tap.ok(r["status"] == "error" and r["http"] == 503, "its calls are 503", r)
pg.start()
tap.ok(wait_ready(late), "it becomes ready when the database starts")
r = late.cmd(["history", "--thread", T, "--limit", "100"])
tap.ok(r["status"] == "ok" and len(r["messages"]) == 6, "and reads the thread", r.get("status"))

# --- statement_timeout bounds a statement blocked by a lock
short = pg.repl("app", opts=["--pool", "1", "--statement-timeout", "500"])
tap.at_exit(short.close)
tap.ok(wait_ready(short), "a pool with a 500 ms statement timeout")
locker = subprocess.Popen(
    [PSQL, "-X", "-q", "-d", pg.url("owner"), "-c",
     "BEGIN; LOCK TABLE threads IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=pg_env())
tap.at_exit(lambda: locker.poll() is None and (locker.kill(), locker.wait()))
deadline = time.time() + 10
while time.time() < deadline:
    n = pg.value("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                 "WHERE c.relname = 'threads' AND l.mode = 'AccessExclusiveLock' AND l.granted",
                 role="superuser", dbname="ingenious")
    if n == "1":
        break
    time.sleep(0.05)
tap.eq(n, "1", "another session holds a lock on threads")
r = short.cmd(["save-turn", "--thread", T, "--owner", "bob"])
tap.ok(r["status"] == "error" and r["http"] == 503 and r["ms"] < 3000,
       "a blocked turn gives up after the statement timeout with 503 (%.0f ms)" % r["ms"], r)
locker.wait(20)
r = short.cmd(["save-turn", "--thread", T, "--owner", "bob"])
tap.eq(r["status"], "ok", "the same connection works once the lock is gone")

# --- immediate shutdown: each backend sends a WARNING and quits; the next
# statement on a pooled connection fails with libpq's own error (a failed
# send: no SQLSTATE) while PQstatus still says CONNECTION_OK
imm = pg.repl("app", opts=["--pool", "1", "--connect-timeout", str(CONNECT_TIMEOUT)])
tap.at_exit(imm.close)
tap.ok(wait_ready(imm), "a one-connection pool for the immediate shutdown")
r = imm.cmd(["save-turn", "--thread", T, "--owner", "bob"])
M = r.get("reply_id")
calls = [("a thread read", ["history", "--thread", T], "ok"),
         ("a turn", ["save-turn", "--thread", T, "--owner", "bob"], "ok"),
         ("feedback", ["feedback", "--message", M, "--thread", T, "--user", "-",
                       "--positive", "true"], "ok"),
         ("a user lookup", ["user-get", "--name", "nobody"], "not_found"),
         ("a usage row", ["usage", "--user", "bob", "--model", "gpt-4o", "--prompt", "1"],
          "ok")]
for name, cmd, want in calls:
    tap.ok(wait_ready(imm), "immediate: ready before %s" % name)
    r = imm.cmd(cmd)
    tap.eq(r["status"], want, "immediate: %s works, its connection stays idle in the pool"
           % name)
    tap.ok(pg.stop_immediate(), "immediate: the postmaster quit on SIGQUIT")
    r = imm.cmd(cmd)
    tap.ok(r["status"] == "error" and r.get("http") == 503 and
           r.get("error") == "database unavailable" and r.get("retry_after", 0) >= 1,
           "immediate: %s on the dead connection is a 503 with Retry-After, not a 500"
           % name, r)
    pg.start()
tap.ok(wait_ready(imm), "immediate: the pool serves again after the restart")
imm.close()
tap.ok("no message" not in imm.stderr(),
       "immediate: no failure was logged as an error without a message",
       [l for l in imm.stderr().splitlines() if "no message" in l][:3])


# --- db_failure_classify, the one rule: (SQLSTATE, connection usable) -> class
def classify(state, bad=False):
    args = [DB_PROBE, "classify", state if state is not None else "-"]
    if bad:
        args.append("bad")
    r = subprocess.run(args, capture_output=True, text=True, timeout=10, env=pg_env())
    return json.loads(r.stdout)


cases = [(None, False, "unavailable", 503), ("", False, "unavailable", 503),
         ("08006", False, "unavailable", 503), ("08P01", False, "unavailable", 503),
         ("57P01", False, "unavailable", 503), ("57P02", False, "unavailable", 503),
         ("57P03", False, "unavailable", 503), ("23505", True, "unavailable", 503),
         ("XX000", True, "unavailable", 503),
         ("53300", False, "busy", 503), ("57014", False, "busy", 503),
         ("40001", False, "busy", 503), ("40P01", False, "busy", 503),
         ("55P03", False, "busy", 503),
         ("42P01", False, "schema", 500), ("42703", False, "schema", 500),
         ("42883", False, "schema", 500), ("42501", False, "permission", 500),
         ("22001", False, "value", 500), ("23505", False, "value", 500),
         ("XX000", False, "other", 500), ("42601", False, "other", 500)]
got = [(s, b, classify(s, b)) for s, b, _, _ in cases]
tap.eq([(s, b, g.get("failure"), g.get("http")) for s, b, g in got],
       [(s, b, f, h) for s, b, f, h in cases],
       "db_failure_classify: no SQLSTATE, 08xxx, 57P0x or a bad connection is "
       "unavailable (503); busy 503; the rest 500")

# --- logs: the outage was logged, the password never
db.close()
late.close()
short.close()
logs = db.stderr() + late.stderr() + short.stderr() + imm.stderr()
tap.ok("database unavailable" in logs and "database available again" in logs,
       "the outage and the recovery were logged", logs[-3000:])
tap.ok(all(pg.password(r) not in logs for r in ("app", "owner", "superuser")),
       "no password in any log line")
tap.ok("password=" not in logs, "no connection string in any log line")

check_sanitizers(tap)
tap.done()
