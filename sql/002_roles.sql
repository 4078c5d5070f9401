-- 002_roles.sql -- the three roles of Ingenious and what each may do.
--
--   ingenious_app       the server and `ingen user`/`ingen kb`: DML on the
--                       tables it writes, nothing else (no DDL, no DROP)
--   ingenious_readonly  DBAs and BI tools: SELECT on every table and view,
--                       except users.password_hash
--   ingenious_sqlagent  the SQL agent's generated queries: SELECT on schema
--                       agent_data only; no access to the chat tables
--
-- Roles are cluster-wide.  A role that already exists is left as it is (a
-- DBA may create them beforehand, with LOGIN and a password); one created
-- here is NOLOGIN, and the DBA enables it with
--   ALTER ROLE ingenious_app LOGIN PASSWORD '...';
-- `ingen db init-local` creates all of them with generated passwords.
-- Creating a missing role needs CREATEROLE; granting needs only ownership
-- of the objects, which the migrating role has.

DO $roles$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['ingenious_app', 'ingenious_readonly', 'ingenious_sqlagent'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			BEGIN
				EXECUTE format('CREATE ROLE %I NOLOGIN', r);
			EXCEPTION WHEN insufficient_privilege THEN
				RAISE EXCEPTION 'role % does not exist and % may not create it', r, current_user
				    USING HINT = 'create the roles ingenious_app, ingenious_readonly and ingenious_sqlagent as a superuser first (docs/dba.md)';
			END;
		END IF;
	END LOOP;
END
$roles$;

-- Nobody but the owner and the granted roles sees the chat tables: PUBLIC
-- (every role of the cluster, including ingenious_sqlagent) loses the
-- default USAGE on schema public and the right to create temporary tables.
-- Revoking is a no-op with a warning when the migrating role does not own
-- the database; the grants below are what matters then.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
DO $db$
BEGIN
	EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
	EXECUTE format('GRANT CONNECT ON DATABASE %I TO ingenious_app, ingenious_readonly, ingenious_sqlagent',
	    current_database());
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'not the owner of database %: grant CONNECT to the ingenious roles yourself', current_database();
END
$db$;

GRANT USAGE ON SCHEMA public TO ingenious_app, ingenious_readonly;

-- The application: exactly the statements of lib/db.c.
GRANT SELECT, INSERT, UPDATE, DELETE ON threads TO ingenious_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON messages TO ingenious_app;
GRANT SELECT, INSERT, DELETE ON memory_summaries TO ingenious_app;
GRANT SELECT, INSERT, UPDATE ON llm_usage TO ingenious_app;
GRANT SELECT, INSERT, UPDATE ON users TO ingenious_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON kb_documents TO ingenious_app;
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO ingenious_app;
GRANT SELECT ON schema_migrations TO ingenious_app;

-- DBAs and BI: read everything but password hashes.
GRANT SELECT ON threads, messages, memory_summaries, llm_usage, kb_documents,
    idempotency_keys, schema_migrations TO ingenious_readonly;
GRANT SELECT (username, created_at, updated_at, disabled) ON users TO ingenious_readonly;

-- The SQL agent's data lives in its own schema; the role reads that and
-- nothing else, in read-only transactions with a short statement timeout
-- (set on the role when this migration may alter it).
CREATE SCHEMA agent_data;
COMMENT ON SCHEMA agent_data IS
	'Data the sql-manipulation-agent may query: readable by ingenious_sqlagent and ingenious_readonly, nothing else is.';
GRANT USAGE ON SCHEMA agent_data TO ingenious_sqlagent, ingenious_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA agent_data GRANT SELECT ON TABLES TO ingenious_sqlagent, ingenious_readonly;

DO $agent$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s
	                 JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
	                WHERE r.rolname = 'ingenious_sqlagent' AND s.setdatabase = 0
	                  AND 'default_transaction_read_only=on' = ANY (s.setconfig)) THEN
		ALTER ROLE ingenious_sqlagent SET default_transaction_read_only = on;
		ALTER ROLE ingenious_sqlagent SET statement_timeout = '5s';
		ALTER ROLE ingenious_sqlagent SET search_path = agent_data;
	END IF;
EXCEPTION WHEN insufficient_privilege THEN
	RAISE WARNING 'cannot alter role ingenious_sqlagent: a superuser must run ALTER ROLE ingenious_sqlagent SET default_transaction_read_only = on (and statement_timeout, search_path; docs/dba.md)';
END
$agent$;

-- Future tables of later migrations must be granted explicitly, like above;
-- readonly gets SELECT on them by default as a safety net.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ingenious_readonly;
