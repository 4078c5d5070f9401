"""test_sqlagent.py -- the SQL agent's lower layers against a real PostgreSQL
(issue 12, docs/reliability.md S1): the statement guard (lib/sqlguard.c) and
the execution as ingenious_sqlagent (lib/db_sqlagent.c), driven by
tests/probe/sql_probe on a private cluster made by `ingen db init-local`
(sql/008_sql_agent.sql applied).

Every attack of the issue runs twice: with the guard on (refused by the
guard, the database never sees it) and with the test-only switch
sql_agent.guard=false (the role, the READ ONLY transaction and the cursor
must refuse it alone).  After each pass the database is unchanged (row
counts and an md5 of every row of the agent's table and of the chat tables
messages, users, llm_usage, threads) and no secret of outside the schema
appears in any answer.  Then: pg_sleep(600) ends at statement_timeout, a
cartesian product of about 10^9 rows stops at the row cap at once, big
strings stop at the byte cap (or are refused), averages by group give the
seven seed rows' numbers, the schema's description for the prompt, many
threads on one handle, the local-cluster default connection, and a
superuser connection refused."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import BUILDDIR, Tap  # noqa: E402
from pgcluster import PgCluster, check_sanitizers, note_sanitizer, pg_env  # noqa: E402

SQL_PROBE = os.path.join(BUILDDIR, "tests", "probe", "sql_probe")
PWNED = "/tmp/ingen-sqlagent-pwned-%d" % os.getpid()

tap = Tap(timeout=400)
pg = PgCluster(tap)

# secrets outside the agent's schema: none of them may appear in an answer
pg.sql("INSERT INTO threads (id, owner, flow) VALUES ('t-sql', 'bob', 'sql-manipulation-agent');"
       "INSERT INTO messages (thread_id, seq, user_id, role, content) "
       "VALUES ('t-sql', 1, 'bob', 'user', 'secret prompt 7f3a');"
       "INSERT INTO users (username, password_hash) VALUES ('carol', '$scrypt$hash-9c1e');"
       "INSERT INTO llm_usage (user_id, flow, model, total_tokens) "
       "VALUES ('bob', 'usage-flow-5d2b', 'm', 3);")
SECRETS = ("secret prompt 7f3a", "$scrypt$hash-9c1e", "usage-flow-5d2b", "SCRAM-SHA-256",
           "root:x:0:0", pg.password("app"), pg.password("owner"), pg.password("sqlagent"))


def snapshot():
    """Row counts and md5 of every row of the agent's and the chat tables,
    and the relations of schema agent_data."""
    out = {}
    for t in ("agent_data.students_performance", "public.messages", "public.users",
              "public.llm_usage", "public.threads"):
        out[t] = pg.sql("SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                        "FROM %s x" % t, role="superuser", dbname="ingenious")[0]
    out["relations"] = pg.sql("SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class c "
                              "JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE nspname IN ('agent_data', 'public')",
                              role="superuser", dbname="ingenious")
    out["roles"] = pg.sql("SELECT string_agg(rolname || rolsuper::text, ',' ORDER BY rolname) "
                          "FROM pg_roles WHERE rolname LIKE 'ingenious%'", role="superuser")
    return out


def probe_env(extra=None):
    env = pg_env({"INGENIOUS_SQL_AGENT__DATABASE_URL": pg.url("sqlagent")})
    env.update(extra or {})
    return env


def probe(args, env=None, stdin=None, timeout=120):
    r = subprocess.run([SQL_PROBE] + args, capture_output=True, text=True,
                       input=stdin, timeout=timeout, env=env or probe_env())
    note_sanitizer(r.stderr, "sql_probe " + args[0])
    return r


def repl(statements, env=None, timeout=200):
    """Run statements on one handle; one parsed answer per statement."""
    r = probe(["repl"], env=env, timeout=timeout,
              stdin="".join(json.dumps(s) + "\n" for s in statements))
    answers = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    if len(answers) != len(statements):
        tap.diag("repl: %d answers for %d statements, rc %d, stderr %s" %
                 (len(answers), len(statements), r.returncode, r.stderr[-2000:]))
    return answers, r


def run(sql, env=None, timeout=60):
    r = probe(["run", sql], env=env, timeout=timeout)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"ok": None, "stdout": r.stdout, "stderr": r.stderr[-2000:]}


# (name, statement, words of the guard's reason)
ATTACKS = [
    ("DROP TABLE", "DROP TABLE students_performance", "drops objects"),
    ("DELETE", "DELETE FROM students_performance", "deletes rows"),
    ("UPDATE", "UPDATE students_performance SET math_score = 0", "updates rows"),
    ("INSERT", "INSERT INTO students_performance VALUES ('x', 'y', 'z', 1, 2, 3)",
     "inserts rows"),
    ("TRUNCATE", "TRUNCATE students_performance", "TruncateStmt"),
    (";-chained DROP", "SELECT 1; DROP TABLE students_performance", "2 statements"),
    (";-chained DELETE after a comment",
     "SELECT 1 /* ; */; DELETE FROM students_performance -- x", "2 statements"),
    ("data-modifying CTE",
     "WITH g AS (DELETE FROM students_performance RETURNING *) SELECT * FROM g",
     "is not a SELECT (DeleteStmt)"),
    ("SELECT ... INTO", "SELECT * INTO agent_data.stolen FROM students_performance",
     "SELECT INTO"),
    ("SELECT ... FOR UPDATE", "SELECT * FROM students_performance FOR UPDATE", "locks rows"),
    ("read public.messages", "SELECT content FROM public.messages",
     "relation public.messages is outside schema agent_data"),
    ("read messages unqualified", "SELECT content FROM messages", None),
    ("read public.users", "SELECT username, password_hash FROM public.users",
     "public.users is outside"),
    ("read public.llm_usage", "SELECT * FROM public.llm_usage", "public.llm_usage is outside"),
    ("read pg_authid", "SELECT rolname, rolpassword FROM pg_authid",
     "relation pg_authid is a system catalog"),
    ("read \"pg_catalog\".\"pg_authid\"", "SELECT * FROM \"pg_catalog\".\"pg_authid\"",
     "pg_catalog.pg_authid is outside"),
    ("read pg_authid by unicode escape", "SELECT * FROM U&\"pg_\\0061uthid\"",
     "pg_authid is a system catalog"),
    ("read pg_shadow", "SELECT usename, passwd FROM pg_shadow", "pg_shadow is a system catalog"),
    ("pg_read_file('/etc/passwd')", "SELECT pg_read_file('/etc/passwd')",
     "function pg_read_file is not allowed"),
    ("COPY ... TO PROGRAM", "COPY (SELECT 1) TO PROGRAM 'touch %s'" % PWNED, "(COPY)"),
    ("set_config('role', ...)", "SELECT set_config('role', 'ingenious_app', false)",
     "function set_config is not allowed"),
    ("set_config then a chat table",
     "SELECT set_config('search_path', 'public', true), (SELECT count(*) FROM messages)",
     "function set_config is not allowed"),
    ("set_config('transaction_read_only', 'off')",
     "SELECT set_config('transaction_read_only', 'off', true)",
     "function set_config is not allowed"),
    ("SET ROLE", "SET ROLE ingenious_app", "VariableSetStmt"),
    ("RESET SESSION AUTHORIZATION", "RESET SESSION AUTHORIZATION", "VariableSetStmt"),
    ("lo_import", "SELECT lo_import('/etc/passwd')", "function lo_import is not allowed"),
    ("dblink", "SELECT * FROM dblink('dbname=ingenious', 'SELECT content FROM messages') "
     "AS t(c text)", "function dblink is not allowed"),
    ("dblink_exec", "SELECT dblink_exec('dbname=ingenious', "
     "'DROP TABLE agent_data.students_performance')", "function dblink_exec is not allowed"),
    ("CREATE TABLE", "CREATE TABLE agent_data.x (a int)", "creates a table"),
    ("GRANT", "GRANT ALL ON students_performance TO PUBLIC", "GrantStmt"),
    ("BEGIN READ WRITE", "BEGIN READ WRITE", "controls the transaction"),
]

before = snapshot()
tap.ok(before["agent_data.students_performance"][0] == "7",
       "sql/008 loaded the reference's seven rows", before)

# --- pass 1: the guard on
answers, r = repl([sql for _, sql, _ in ATTACKS])
for (name, sql, words), a in zip(ATTACKS, answers):
    if words is None:
        # the guard cannot know that an unqualified name is not the
        # schema's: the database answers (no such relation there)
        tap.ok(a.get("ok") is False and a.get("refused_by") == "database" and
               a.get("status") == 400 and a["msg"].startswith("SQL Error: "),
               "guard on: %s passes the guard, the database refuses it" % name, a)
        continue
    tap.ok(a.get("ok") is False and a.get("refused_by") == "guard" and a.get("status") == 400
           and words in a.get("msg", ""), "guard on: %s refused by the guard" % name, a)
tap.ok(len(answers) == len(ATTACKS), "guard on: every attack answered")
out = r.stdout
tap.ok(not any(s and s in out for s in SECRETS), "guard on: no secret in any answer")
tap.eq(snapshot(), before, "guard on: the database is unchanged")

# --- pass 2: the guard off, the database alone
off = probe_env({"INGENIOUS_SQL_AGENT__GUARD": "false"})
answers, r = repl([sql for _, sql, _ in ATTACKS], env=off)
for (name, sql, words), a in zip(ATTACKS, answers):
    tap.ok(a.get("ok") is False and a.get("refused_by") == "database" and
           a.get("status") == 400 and a.get("msg", "").startswith("SQL Error: ") and
           "\n" not in a["msg"],
           "guard off: %s refused by the database (%s)" % (name, a.get("msg")), a)
tap.ok(len(answers) == len(ATTACKS), "guard off: every attack answered")
tap.ok("sql_agent.guard is false" in r.stderr and "test-only" in r.stderr,
       "guard off: the test-only switch is warned about", r.stderr[-500:])
out = r.stdout
tap.ok(not any(s and s in out for s in SECRETS), "guard off: no secret in any answer")
tap.eq(snapshot(), before, "guard off: the database is unchanged")
tap.ok(not os.path.exists(PWNED), "guard off: COPY TO PROGRAM ran nothing")

# a setting changed by one statement does not outlive its transaction
answers, r = repl(["SELECT set_config('search_path', 'public', false), "
                   "set_config('statement_timeout', '0', false)",
                   "SELECT current_setting('search_path'), current_setting('statement_timeout')"],
                  env=off)
tap.eq([a.get("rows") for a in answers], [[["public", "0"]], [["agent_data", "5s"]]],
       "guard off: set_config in one statement is rolled back before the next")

# --- time, rows and bytes
a = run("SELECT pg_sleep(600)", env=off, timeout=60)
tap.ok(a.get("status") == 504 and "sql_agent.statement_timeout_ms (5000 ms)" in a.get("msg", "")
       and 4500 <= a.get("ms", 0) <= 9000,
       "guard off: pg_sleep(600) ends at statement_timeout (5 s) with a 504", a)
a = run("SELECT set_config('statement_timeout', '0', true), pg_sleep(600)", env=off, timeout=60)
tap.ok(a.get("status") == 504 and a.get("ms", 0) <= 9000,
       "guard off: set_config cannot lift the timeout of its own statement", a)
a = run("SELECT pg_sleep(600)")
tap.ok(a.get("refused_by") == "guard" and a.get("ms", 1e9) < 1000,
       "guard on: pg_sleep(600) refused at once", a)

ELEVEN = ", ".join("students_performance t%d" % i for i in range(11))
a = run("SELECT t0.math_score FROM " + ELEVEN)      # 7^11 = 1.98e9 rows
tap.ok(a.get("ok") is True and len(a["rows"]) == 100 and a["rows_truncated"] is True and
       a["ms"] < 3000, "guard on: a cartesian product of 2*10^9 rows stops at the row "
       "cap (100) at once", {k: a.get(k) for k in ("ok", "rows_truncated", "ms", "msg")})
a = run("SELECT a FROM generate_series(1, 1000000) a, generate_series(1, 1000) b", env=off)
tap.ok(a.get("ok") is True and len(a["rows"]) == 100 and a["rows_truncated"] is True and
       a["ms"] < 3000, "guard off: 10^9 generated rows stop at the row cap at once",
       {k: a.get(k) for k in ("ok", "rows_truncated", "ms", "msg")})

a = run("SELECT repeat('x', 100000000)", env=off, timeout=60)
tap.ok(a.get("ms", 1e9) < 9000 and
       ((a.get("ok") is True and a["bytes_truncated"] and not a["rows"]) or
        (a.get("ok") is False and a.get("status") in (400, 504))),
       "guard off: a 100 MB string stops at the byte cap or is refused",
       {k: a.get(k) for k in ("ok", "bytes_truncated", "status", "msg", "ms")})
a = run("SELECT repeat('x', 100000000)")
tap.ok(a.get("refused_by") == "guard" and "function repeat is not allowed" in a.get("msg", ""),
       "guard on: repeat() is refused", a)
a = run("SELECT repeat('x', 1000000)", env=off)
tap.ok(a.get("ok") is True and a["bytes_truncated"] is True and a["rows"] == [],
       "guard off: a 1 MB value is cut at the byte cap (65536): no row returned", a)
small = probe_env({"INGENIOUS_SQL_AGENT__MAX_BYTES": "2048"})
a = run("SELECT t0.* FROM students_performance t0, students_performance t1, "
        "students_performance t2", env=small)
kept = sum(len(v or "") for row in a.get("rows", []) for v in row)
tap.ok(a.get("ok") is True and a["bytes_truncated"] is True and 0 < len(a["rows"]) < 100 and
       kept <= 2048, "guard on: max_bytes 2048 keeps the rows that fit (%d rows, %d bytes)" %
       (len(a.get("rows", [])), kept), a.get("msg"))
big = "SELECT '" + "x" * 70000 + "'"
a = run(big, env=off)
tap.ok(a.get("status") == 400 and "over the limit of 65536" in a.get("msg", ""),
       "guard off: a statement over 64 KiB is refused before it is sent", a.get("msg"))

tap.eq(snapshot(), before, "after the caps: the database is unchanged")

# --- the useful cases
a = run("SELECT parental_education, AVG(math_score) AS avg_math, COUNT(*) AS n "
        "FROM students_performance GROUP BY parental_education ORDER BY parental_education")
got = {row[0]: (round(float(row[1]), 4), int(row[2])) for row in a.get("rows", [])}
tap.eq(got, {"associate's degree": (47.0, 1), "bachelor's degree": (72.0, 1),
             "high school": (51.0, 2), "master's degree": (90.0, 1),
             "some college": (72.5, 2)},
       "averages by group over the seven seed rows")
tap.eq((a.get("cols"), a.get("numeric")), (["parental_education", "avg_math", "n"],
                                          [False, True, True]),
       "column names, and which are numeric (printed unquoted)")
a = run("SELECT count(*) FROM students_performance WHERE test_prep_course = 'completed'")
tap.eq(a.get("rows"), [["2"]], "a count")
a = run("WITH s AS (SELECT lunch, avg(reading_score) r FROM students_performance GROUP BY lunch) "
        "SELECT lunch, round(r, 2) FROM s ORDER BY lunch")
tap.eq(a.get("rows"), [["free/reduced", "60.33"], ["standard", "83.75"]], "a CTE with round()")
a = run("SELECT NULL::text AS nothing, 1.5::float8 AS f")
tap.eq((a.get("rows"), a.get("numeric")), ([[None, "1.5"]], [False, True]),
       "SQL NULL comes back as null; float8 is numeric")
a = run("SELECT * FROM students_performance WHERE math_score > 1000")
tap.ok(a.get("ok") is True and a["rows"] == [] and len(a["cols"]) == 6,
       "no rows: the columns still come back", a)
a = run("SELECT nosuchcolumn FROM students_performance")
tap.ok(a.get("status") == 400 and a.get("msg") == "SQL Error: column \"nosuchcolumn\" does not "
       "exist", "an SQL error: the server's primary message only", a)

# --- the description for the prompt
r = probe(["describe"])
d = json.loads(r.stdout) if r.stdout.strip() else {}
text = d.get("text") or ""
tap.ok(d.get("first_table") == "students_performance" and
       text.startswith("students_performance(parental_education text -- Highest education") and
       "math_score integer -- Math exam score, 0..100." in text and
       "-- Exam scores of students" in text, "describe: columns, types and comments", d)
tap.ok("messages" not in text and "pg_" not in text, "describe: nothing outside the schema")
pg.sql("CREATE SCHEMA wide; CREATE TABLE wide.t (%s); GRANT USAGE ON SCHEMA wide TO "
       "ingenious_sqlagent; GRANT SELECT ON wide.t TO ingenious_sqlagent" %
       ", ".join("column_number_%d integer" % i for i in range(200)), role="superuser",
       dbname="ingenious")
r = probe(["describe"], env=probe_env({"INGENIOUS_SQL_AGENT__MAX_BYTES": "1024",
                                       "INGENIOUS_SQL_AGENT__SCHEMA": "wide"}))
d = json.loads(r.stdout) if r.stdout.strip() else {}
tap.ok(d.get("first_table") == "t" and len(d.get("text", "")) < 1200 and
       "cut at sql_agent.max_bytes" in d.get("text", ""),
       "describe: a wide schema is cut at max_bytes", d)
pg.sql("DROP SCHEMA wide CASCADE", role="superuser", dbname="ingenious")

# --- many flow threads on one handle (pool_size 2)
r = probe(["concurrent", "24", "SELECT count(*) FROM students_performance"])
tap.eq(json.loads(r.stdout or "{}").get("ok"), 24, "24 threads at once on one handle all succeed")

# --- the default connection: the local cluster's ingenious_sqlagent
local = pg_env({"INGENIOUS_SERVER__STATE_DIR": pg.tmp, "INGENIOUS_SQL_AGENT__GUARD": "false"})
a = run("SELECT current_user, count(*) FROM students_performance GROUP BY 1", env=local)
tap.eq(a.get("rows"), [["ingenious_sqlagent", "7"]],
       "sql_agent.database_url empty: the local cluster as ingenious_sqlagent "
       "(CURRENT_USER is the guard's to refuse)")
nowhere = pg_env({"INGENIOUS_SERVER__STATE_DIR": os.path.join(pg.tmp, "none")})
a = run("SELECT 1", env=nowhere)
tap.ok(a.get("status") == 500 and "set sql_agent.database_url" in a.get("msg", ""),
       "no database configured: a 500 that says what to set", a)
a = run("SELECT 1", env=pg_env({"INGENIOUS_SQL_AGENT__DATABASE_URL": pg.url("superuser")}))
tap.ok(a.get("status") == 500 and "superuser" in a.get("msg", ""),
       "a superuser connection is refused", a)
r = probe(["run", "SELECT 1"], env=pg_env({"INGENIOUS_SQL_AGENT__DATABASE_URL": pg.url("app")}))
tap.ok(r.stdout.startswith('{"ok":true'), "a non-superuser role connects (the DBA's choice)",
       r.stdout)
tap.ok("the SQL agent's role may write" in r.stderr and "public." in r.stderr,
       "a role that may write tables is warned about", r.stderr[-500:])
r = probe(["run", "SELECT 1"])
tap.ok("may write" not in r.stderr, "ingenious_sqlagent may write nothing: no warning",
       r.stderr[-500:])
tap.ok("temp_file_limit" not in r.stderr, "the role carries temp_file_limit 16MB: no warning",
       r.stderr[-500:])
tap.eq(pg.value("SHOW temp_file_limit", role="sqlagent"), "16MB",
       "init-local gave ingenious_sqlagent temp_file_limit 16MB")
r = probe(["run", "SELECT 1"], env=probe_env({"INGENIOUS_SQL_AGENT__TEMP_FILE_LIMIT": "32MB"}))
tap.ok(r.stdout.startswith('{"ok":true') and "could not set temp_file_limit to 32MB" in r.stderr
       and "ALTER ROLE" in r.stderr, "another temp_file_limit: the statement runs, and the "
       "log says what a superuser must run", r.stdout + r.stderr[-500:])


class Repl:
    """One sql_probe process (one handle) driven statement by statement."""

    def __init__(self, env):
        self.proc = subprocess.Popen([SQL_PROBE, "repl"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)

    def run(self, sql, timeout=30):
        import select
        self.proc.stdin.write(json.dumps(sql) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return {"ok": None, "msg": "no answer within %ss" % timeout}
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"ok": None, "msg": "sql_probe exited"}

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        note_sanitizer(self.proc.stderr.read(), "sql_probe repl")


# --- the database goes away and comes back: 503 at once, then service again
COUNT = "SELECT count(*) FROM students_performance"
rp = Repl(probe_env())
tap.eq(rp.run(COUNT).get("rows"), [["7"]], "outage: a handle that works")
tap.ok(pg.stop_immediate(), "outage: the cluster is stopped (immediate)")
t0 = time.time()
a = rp.run(COUNT)
tap.ok(a.get("status") == 503 and a.get("msg") == "the SQL agent's database is unavailable"
       and time.time() - t0 < 7, "outage: the broken connection gives 503", a)
t0 = time.time()
a = rp.run(COUNT)
tap.ok(a.get("status") == 503 and time.time() - t0 < 2, "outage: the next call fails at once "
       "(%.2f s)" % (time.time() - t0), a)
pg.start()
time.sleep(1.2)
a = rp.run(COUNT)
tap.eq(a.get("rows"), [["7"]], "outage: service comes back with the database, no restart")
rp.close()
r = probe(["run", "SELECT 1"], env=pg_env({"INGENIOUS_SQL_AGENT__DATABASE_URL":
                                            pg.url("sqlagent").replace("password=",
                                                                       "password=wrong")}))
tap.ok(pg.password("sqlagent") not in r.stdout + r.stderr and "unavailable" in r.stdout,
       "a failed connection says unavailable and prints no password", r.stdout + r.stderr[-300:])

r = probe(["repl"], env=probe_env({"INGENIOUS_SQL_AGENT__WORK_MEM": "1kB"}),
          stdin=json.dumps(COUNT) + "\n" + json.dumps(COUNT) + "\n")
answers = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
tap.ok(len(answers) == 2 and all(x.get("status") == 500 and "could not apply the SQL agent's "
       "settings (sql_agent.*)" in x.get("msg", "") and "work_mem" in x.get("msg", "")
                                for x in answers),
       "a work_mem PostgreSQL refuses: a 500 naming the settings, again on the same "
       "connection (its transaction was rolled back)", answers)

tap.eq(snapshot(), before, "at the end: the database is unchanged")
check_sanitizers(tap)
tap.done()
