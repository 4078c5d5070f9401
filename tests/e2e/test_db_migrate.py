"""test_db_migrate.py -- `ingen db migrate|status` against a real PostgreSQL:
migrations from empty, a re-run is a no-op, a changed file is flagged and
blocks migrating, a failing file leaves nothing behind, concurrent migrators
apply each file once, the server's start check, and every table and column
carries a comment."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import SRCDIR, Tap  # noqa: E402
from pgcluster import INGEN, PgCluster, check_sanitizers, ingen_db, note_sanitizer, \
    pg_env  # noqa: E402

SQL_DIR = os.path.join(SRCDIR, "sql")
FILES = sorted(f for f in os.listdir(SQL_DIR) if f[:3].isdigit() and f.endswith(".sql"))

tap = Tap(timeout=300)
pg = PgCluster(tap)
tap.ok(True, "ingen db init-local made a cluster in %.1f s" % pg.init_seconds)

# --- the cluster made by init-local is migrated
r = ingen_db(["status", "--database-url", pg.url("owner")])
tap.eq(r.returncode, 0, "status of the init-local cluster exits 0")
for f in FILES:
    tap.ok(any(f in l and " applied " in l for l in r.stdout.splitlines()),
           "status lists %s as applied" % f, r.stdout)

# --- migrations from an empty database
fresh = pg.create_database("fresh")
r = ingen_db(["status", "-d", fresh])
tap.eq(r.returncode, 4, "status of an empty database exits 4")
tap.ok(sum(1 for l in r.stdout.splitlines() if l.endswith(".sql pending") or
           (".sql " in l and l.rstrip().endswith("pending"))) == len(FILES),
       "every file is pending on an empty database", r.stdout)
r = ingen_db(["migrate", "-d", fresh])
tap.eq(r.returncode, 0, "migrate from empty exits 0")
tap.eq([l for l in r.stdout.splitlines() if l.startswith("applied ")],
       ["applied " + f for f in FILES], "migrate applied every file in order")
rows = pg.sql("SELECT version, name, checksum FROM schema_migrations ORDER BY version",
              dbname="fresh")
want = []
for f in FILES:
    with open(os.path.join(SQL_DIR, f), "rb") as fh:
        want.append([str(int(f[:3])), f, hashlib.sha256(fh.read()).hexdigest()])
tap.eq(rows, want, "schema_migrations records each file with its sha256")
tap.eq(pg.value("SELECT applied_by FROM schema_migrations WHERE version = 1", dbname="fresh"),
       "ingenious_owner", "applied by the owner role")
tap.eq(pg.value("SELECT tableowner FROM pg_tables WHERE tablename = 'messages'",
                dbname="fresh"), "ingenious_owner", "the schema belongs to the migrating role")

# --- a re-run is a no-op
before = pg.sql("SELECT version, applied_at FROM schema_migrations ORDER BY version",
                dbname="fresh")
r = ingen_db(["migrate", "-d", fresh])
tap.eq(r.returncode, 0, "second migrate exits 0")
tap.ok("nothing to do" in r.stdout, "second migrate has nothing to do", r.stdout)
tap.eq(pg.sql("SELECT version, applied_at FROM schema_migrations ORDER BY version",
              dbname="fresh"), before, "second migrate changed no row")
r = ingen_db(["status", "-d", fresh])
tap.eq(r.returncode, 0, "status after migrate exits 0")

# --- a file edited after it was applied is flagged, and blocks migrate
work = tempfile.mkdtemp(prefix="ingen-sql-")
tap.at_exit(lambda: shutil.rmtree(work, ignore_errors=True))
changed = os.path.join(work, "changed")
shutil.copytree(SQL_DIR, changed)
with open(os.path.join(changed, FILES[1]), "a") as f:
    f.write("\n-- an edit after the fact\n")
with open(os.path.join(changed, "099_later.sql"), "w") as f:
    f.write("CREATE TABLE later (a int);\n")
r = ingen_db(["status", "-d", fresh, "--sql-dir", changed])
tap.eq(r.returncode, 4, "status with a changed file exits 4")
tap.ok(any(FILES[1] in l and "CHANGED" in l for l in r.stdout.splitlines()),
       "status flags %s as CHANGED" % FILES[1], r.stdout)
tap.ok(all("CHANGED" not in l for l in r.stdout.splitlines() if FILES[0] in l),
       "status does not flag the unchanged files", r.stdout)
r = ingen_db(["migrate", "-d", fresh, "--sql-dir", changed])
tap.eq(r.returncode, 4, "migrate refuses with a changed file (exit 4)")
tap.ok(FILES[1] in r.stderr and "new numbered file" in r.stderr,
       "migrate names the changed file and what to do", r.stderr)
tap.eq(pg.value("SELECT to_regclass('later') IS NULL", dbname="fresh"), "t",
       "nothing pending was applied past a changed file")
r = ingen_db(["status", "-d", fresh], env=pg_env({"INGEN_SQL_DIR": changed}))
tap.ok(r.returncode == 4 and "CHANGED" in r.stdout, "INGEN_SQL_DIR selects the files too",
       r.stdout + r.stderr)

# --- a new file is pending, then applied
newer = os.path.join(work, "newer")
shutil.copytree(SQL_DIR, newer)
with open(os.path.join(newer, "090_extra.sql"), "w") as f:
    f.write("CREATE TABLE extra_things (a int);\nCOMMENT ON TABLE extra_things IS 'test';\n"
            "COMMENT ON COLUMN extra_things.a IS 'test';\n")
r = ingen_db(["status", "-d", fresh, "--sql-dir", newer])
tap.ok(r.returncode == 4 and any("090_extra.sql" in l and "pending" in l
                                 for l in r.stdout.splitlines()),
       "a new file is listed as pending", r.stdout)
chk, _ = pg.probe(["check", "--sql-dir", newer], url=pg.url("app", "fresh"))
tap.ok(chk["status"] == "error" and "ingen db migrate" in chk.get("error", ""),
       "the server's start check names the command to run", chk)
chk, _ = pg.probe(["check"], url=pg.url("app", "fresh"))
tap.eq(chk["status"], "ok", "the start check passes on a current schema (as the app role)")
r = ingen_db(["migrate", "-d", fresh, "--sql-dir", newer])
tap.ok(r.returncode == 0 and "applied 090_extra.sql" in r.stdout, "migrate applies the new file",
       r.stdout + r.stderr)

# --- a failing file leaves nothing behind
bad = os.path.join(work, "bad")
shutil.copytree(newer, bad)
with open(os.path.join(bad, "091_bad.sql"), "w") as f:
    f.write("CREATE TABLE half_done (a int);\nINSERT INTO half_done VALUES (1);\n"
            "SELECT no_such_function();\n")
r = ingen_db(["migrate", "-d", fresh, "--sql-dir", bad])
tap.eq(r.returncode, 1, "a failing file makes migrate exit 1")
tap.ok("091_bad.sql" in r.stderr and "line 3" in r.stderr and "no_such_function" in r.stderr,
       "the error names the file, the line and the problem", r.stderr)
tap.eq(pg.value("SELECT to_regclass('half_done') IS NULL", dbname="fresh"), "t",
       "the failing file's first statements were rolled back")
tap.eq(pg.value("SELECT count(*) FROM schema_migrations WHERE version = 91", dbname="fresh"),
       "0", "the failing file is not recorded")

# --- concurrent migrators: each file is applied exactly once
race = pg.create_database("race")
procs = [subprocess.Popen([INGEN, "db", "migrate", "-d", race], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=pg_env())
         for _ in range(3)]
outs = [p.communicate(timeout=120) for p in procs]
for o in outs:
    note_sanitizer(o[1], "concurrent ingen db migrate")
tap.ok(all(p.returncode == 0 for p in procs), "three concurrent migrators all succeed",
       "\n".join(o[0] + o[1] for o in outs))
applied = sum(1 for o in outs for l in o[0].splitlines() if l.startswith("applied "))
tap.eq(applied, len(FILES), "together they applied each file once")
tap.eq(pg.value("SELECT count(*) FROM schema_migrations", dbname="race"), str(len(FILES)),
       "schema_migrations has one row per file")

# --- the start check on an empty database
pg.sql('CREATE DATABASE "empty"', role="superuser")
chk, _ = pg.probe(["check"], url=pg.url("owner", "empty"))
tap.ok(chk["status"] == "error" and "out of date" in chk.get("error", "") and
       "ingen db migrate" in chk.get("error", ""), "an empty database is reported out of date", chk)

# --- a DBA reads the schema from \d+: every table, view and column is commented
missing = pg.sql("""
SELECT c.relname || coalesce('.' || a.attname, '')
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')
   AND c.relname NOT IN ('extra_things')
   AND ((a.attname IS NULL AND obj_description(c.oid, 'pg_class') IS NULL)
        OR (a.attname IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))
""")
tables = pg.sql("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') "
                "AND obj_description(c.oid, 'pg_class') IS NOT NULL")
tap.eq(missing, [], "every table, view and column in public has a comment")
tap.ok(int(tables[0][0]) >= 13, "tables and views are commented (%s)" % tables[0][0])
desc = pg.psql("\\d+ messages")
tap.ok("gap-free" in desc.stdout, "\\d+ messages shows the column comments", desc.stdout)

check_sanitizers(tap)
tap.done()
