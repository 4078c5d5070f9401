"""test_db_roles.py -- what each role of sql/002_roles.sql may do, checked by
connecting as it: the read-only role cannot write, the application role has
its DML and no DDL, the SQL agent's role reads its own schema and nothing of
the chat tables.  Also: the local cluster listens on no TCP port and keeps
its credentials private."""
import os
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Tap  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402

tap = Tap(timeout=240)
pg = PgCluster(tap)


def denied(sql, role, name, words=("permission denied",)):
    r = pg.psql(sql, role=role)
    tap.ok(r.returncode != 0 and any(w in r.stderr for w in words), name,
           "rc %d stdout %r stderr %r" % (r.returncode, r.stdout, r.stderr))


def allowed(sql, role, name):
    r = pg.psql(sql, role=role)
    tap.ok(r.returncode == 0, name, r.stderr)
    return r.stdout


# some data, as the owner
pg.sql("INSERT INTO threads (id, owner, flow) VALUES ('t-roles', 'bob', 'classification_agent');"
       "INSERT INTO messages (thread_id, seq, user_id, role, content) "
       "VALUES ('t-roles', 1, 'bob', 'user', 'secret prompt');"
       "INSERT INTO users (username, password_hash) VALUES ('carol', '$scrypt$x');"
       "INSERT INTO llm_usage (user_id, flow, model, total_tokens) VALUES ('bob', 'f', 'm', 3);")

# --- no role of the server is a superuser or may create roles or databases
rows = pg.sql("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
              "WHERE rolname LIKE 'ingenious%' ORDER BY rolname")
tap.eq(rows, [[n, "f", "f", "f"] for n in ("ingenious_app", "ingenious_owner",
                                          "ingenious_readonly", "ingenious_sqlagent")],
       "the four roles exist, none superuser, createrole or createdb")

# --- ingenious_readonly: reads, never writes
allowed("SELECT count(*) FROM messages", "readonly", "readonly can SELECT messages")
allowed("SELECT * FROM usage_by_day", "readonly", "readonly can SELECT the DBA views")
allowed("SELECT username, disabled FROM users", "readonly", "readonly can list users")
denied("SELECT password_hash FROM users", "readonly", "readonly cannot read password hashes")
denied("INSERT INTO threads (id, owner, flow) VALUES ('x', 'y', 'z')", "readonly",
       "readonly cannot INSERT")
denied("UPDATE messages SET content = 'changed'", "readonly", "readonly cannot UPDATE")
denied("DELETE FROM llm_usage", "readonly", "readonly cannot DELETE")
denied("CREATE TABLE ro_table (a int)", "readonly", "readonly cannot CREATE TABLE")

# --- ingenious_app: the DML the server needs, no DDL, no DROP
allowed("INSERT INTO threads (id, owner, flow) VALUES ('t-app', 'bob', 'f')", "app",
        "app can INSERT a thread")
allowed("UPDATE threads SET last_seq = last_seq + 1 WHERE id = 't-app'", "app",
        "app can UPDATE a thread")
allowed("INSERT INTO llm_usage (user_id, total_tokens) VALUES ('bob', 5) RETURNING id", "app",
        "app can INSERT usage (identity column)")
allowed("SELECT version FROM schema_migrations", "app", "app can read schema_migrations")
denied("DROP TABLE messages", "app", "app cannot DROP TABLE", ("must be owner",))
denied("CREATE TABLE app_table (a int)", "app", "app cannot CREATE TABLE")
denied("ALTER TABLE messages ADD COLUMN x int", "app", "app cannot ALTER TABLE",
       ("must be owner",))
denied("TRUNCATE messages", "app", "app cannot TRUNCATE")
denied("DELETE FROM llm_usage", "app", "app cannot delete usage rows (billing)")
denied("DELETE FROM schema_migrations", "app", "app cannot touch schema_migrations")
denied("CREATE SCHEMA app_schema", "app", "app cannot CREATE SCHEMA")
denied("CREATE TEMP TABLE app_tmp (a int)", "app", "app cannot create temporary tables")

# --- the turn function of sql/004_save_turn.sql: the app's alone, run with the caller's rights
SAVE_TURN = ("ingenious_save_turn(text, text, boolean, text, text, uuid[], text[], text[], "
             "text[], jsonb[], text[], jsonb[], jsonb[], uuid, text, bigint[], text, text, "
             "smallint, text, text)")
tap.eq(pg.sql("SELECT has_function_privilege('ingenious_app', p.oid, 'EXECUTE'), "
              "has_function_privilege('ingenious_readonly', p.oid, 'EXECUTE'), "
              "has_function_privilege('ingenious_sqlagent', p.oid, 'EXECUTE'), "
              "has_function_privilege('public', p.oid, 'EXECUTE'), p.prosecdef, "
              "obj_description(p.oid, 'pg_proc') IS NOT NULL "
              "FROM pg_proc p WHERE p.oid = '%s'::regprocedure" % SAVE_TURN),
       [["t", "f", "f", "f", "f", "t"]],
       "ingenious_save_turn: EXECUTE for the app only, SECURITY INVOKER, commented")
denied("SELECT outcome FROM ingenious_save_turn('t-ro', 'bob', false, 'f', NULL, "
       "'{00000000-0000-4000-8000-000000000001}', '{user}', '{NULL}', '{x}', '{NULL}', "
       "'{NULL}', '{NULL}', '{NULL}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
       "readonly", "readonly cannot call ingenious_save_turn")

# --- ingenious_sqlagent: its schema only, read-only
pg.sql("CREATE TABLE agent_data.bikes (name text, sold int);"
       "INSERT INTO agent_data.bikes VALUES ('roadster', 3);")
out = allowed("SELECT name, sold FROM bikes", "sqlagent",
              "sqlagent reads a table of agent_data (search_path agent_data)")
tap.eq(out.strip(), "roadster|3", "sqlagent sees the agent's rows")
denied("SELECT * FROM public.messages", "sqlagent", "sqlagent cannot SELECT public.messages")
denied("SELECT * FROM messages", "sqlagent", "sqlagent cannot see messages by name",
       ("does not exist", "permission denied"))
denied("SELECT * FROM public.llm_usage", "sqlagent", "sqlagent cannot read usage")
denied("SELECT * FROM public.usage_by_user", "sqlagent", "sqlagent cannot read the DBA views")
denied("INSERT INTO bikes VALUES ('x', 1)", "sqlagent", "sqlagent cannot write its own data",
       ("read-only transaction", "permission denied"))
denied("CREATE TEMP TABLE t (a int)", "sqlagent", "sqlagent cannot create temporary tables",
       ("read-only transaction", "permission denied"))
tap.eq(pg.value("SHOW default_transaction_read_only", role="sqlagent"), "on",
       "sqlagent sessions are read-only by default")
tap.eq(pg.value("SHOW statement_timeout", role="sqlagent"), "5s",
       "sqlagent statements time out after 5 s")

# --- the local cluster: unix socket only, private credentials
tap.eq(pg.value("SELECT current_setting('listen_addresses') = ''", role="superuser"), "t",
       "the cluster listens on no TCP address")
tap.eq(pg.value("SHOW unix_socket_directories", role="superuser"),
       os.path.join(os.path.realpath(pg.dir), "run"), "its socket is in DIR/run")
tap.eq(pg.value("SHOW password_encryption", role="superuser"), "scram-sha-256",
       "passwords are stored as SCRAM verifiers")
for name in ("credentials", "database_url"):
    mode = stat.S_IMODE(os.stat(os.path.join(pg.dir, name)).st_mode)
    tap.eq(oct(mode), oct(0o600), "DIR/%s is 0600" % name)
r = pg.init_result
tap.ok(all(pg.password(role) not in r.stdout + r.stderr
           for role in ("app", "owner", "readonly", "sqlagent", "superuser")),
       "init-local prints no password")
hba = pg.sql("SELECT type, auth_method FROM pg_hba_file_rules ORDER BY line_number",
             role="superuser")
tap.ok(all(m in ("scram-sha-256", "reject") for _, m in hba) and
       all(m == "reject" for t, m in hba if t.startswith("host")),
       "pg_hba: SCRAM on the socket, TCP rejected", hba)
if os.geteuid() == 0:
    st = os.stat(os.path.join(pg.dir, "data"))
    import pwd
    tap.eq(pwd.getpwuid(st.st_uid).pw_name, "postgres",
           "run as root: the cluster belongs to the postgres user")

check_sanitizers(tap)
tap.done()
