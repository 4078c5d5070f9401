/*
 * test_sqlguard.c -- the SQL agent's statement guard (lib/sqlguard.c): every
 * attack of issue 12 is refused with a reason that names what was refused,
 * and the useful queries over the agent's schema are accepted.  No
 * database: the guard is pure (the database's own refusals of the same
 * attacks are tests/e2e/test_sqlagent.py).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/sqlguard.h"
#include "lib/xmalloc.h"
#include "tests/unit/tap.h"

#define SCHEMA "agent_data"

/* sql is refused, with a 400 whose reason contains `why`. */
static void
refused(const char *sql, const char *why, const char *name)
{
	struct err e = { 0 };
	int rc = sqlguard_check(sql, SCHEMA, &e);

	ok(rc == -1 && e.status == 400 && strncmp(e.msg, "refused: ", 9) == 0 &&
	    strstr(e.msg, why) != NULL, "refused: %s", name);
	if (!(rc == -1 && strstr(e.msg, why) != NULL))
		printf("#   sql: %s\n#   got: rc %d status %d msg %s\n#   want: %s\n",
		    sql, rc, e.status, e.msg, why);
}

static void
accepted(const char *sql, const char *name)
{
	struct err e = { 0 };
	int rc = sqlguard_check(sql, SCHEMA, &e);

	ok(rc == 0, "accepted: %s", name);
	if (rc != 0)
		printf("#   sql: %s\n#   got: %s\n", sql, e.msg);
}

static void
test_attacks(void)
{
	/* the statements of the list */
	refused("DROP TABLE students_performance", "drops objects (DropStmt)",
	    "DROP TABLE");
	refused("DELETE FROM students_performance",
	    "the statement deletes rows (DeleteStmt); only a single SELECT is allowed",
	    "DELETE");
	refused("UPDATE students_performance SET math_score = 0",
	    "updates rows (UpdateStmt)", "UPDATE");
	refused("INSERT INTO students_performance VALUES ('x','y','z',1,2,3)",
	    "inserts rows (InsertStmt)", "INSERT");
	refused("TRUNCATE students_performance", "(TruncateStmt)", "TRUNCATE");
	refused("SELECT 1; DROP TABLE students_performance",
	    "2 statements; only a single SELECT is allowed", "';'-chained statements");
	refused("SELECT 1; SELECT 2", "2 statements", "two SELECTs chained");
	refused("WITH gone AS (DELETE FROM students_performance RETURNING *) "
	    "SELECT count(*) FROM gone",
	    "the WITH query gone is not a SELECT (DeleteStmt)", "data-modifying CTE");
	refused("WITH u AS (UPDATE students_performance SET lunch = 'x' RETURNING 1) "
	    "SELECT 1", "(UpdateStmt)", "UPDATE in a CTE");
	refused("SELECT * INTO stolen FROM students_performance",
	    "SELECT INTO creates a table", "SELECT ... INTO");
	refused("SELECT * FROM students_performance FOR UPDATE",
	    "FOR UPDATE / FOR SHARE locks rows", "SELECT ... FOR UPDATE");
	refused("SELECT * FROM students_performance FOR SHARE SKIP LOCKED",
	    "locks rows", "SELECT ... FOR SHARE");
	refused("SELECT a FROM (SELECT 1 AS a FOR UPDATE) s", "locks rows",
	    "FOR UPDATE in a subquery");
	refused("SELECT 1 UNION SELECT 2 INTO t2", "SELECT INTO", "INTO in a set operation");

	/* reads outside the schema */
	refused("SELECT * FROM public.messages",
	    "relation public.messages is outside schema agent_data", "public.messages");
	refused("SELECT username, password_hash FROM public.users",
	    "relation public.users is outside schema agent_data", "public.users");
	refused("SELECT * FROM public.llm_usage",
	    "relation public.llm_usage is outside schema agent_data", "public.llm_usage");
	refused("SELECT rolpassword FROM pg_authid",
	    "relation pg_authid is a system catalog (pg_catalog)", "pg_authid");
	refused("SELECT * FROM pg_catalog.pg_authid",
	    "relation pg_catalog.pg_authid is outside schema agent_data",
	    "pg_catalog.pg_authid");
	refused("SELECT passwd FROM pg_shadow", "relation pg_shadow is a system catalog",
	    "pg_shadow");
	refused("SELECT * FROM \"pg_catalog\".\"pg_authid\"",
	    "relation pg_catalog.pg_authid is outside", "quoted \"pg_catalog\".\"pg_authid\"");
	refused("SELECT * FROM U&\"pg_\\0061uthid\"", "relation pg_authid is a system catalog",
	    "unicode escape U&\"pg_\\0061uthid\"");
	refused("SELECT * FROM information_schema.tables",
	    "relation information_schema.tables is outside", "information_schema");
	refused("SELECT * FROM ingenious.agent_data.students_performance",
	    "names a database", "a three-part name");
	refused("SELECT * FROM students_performance s JOIN public.threads t ON true",
	    "public.threads is outside", "a join with a chat table");
	refused("SELECT (SELECT count(*) FROM public.messages)", "public.messages",
	    "a scalar subquery on a chat table");
	refused("SELECT * FROM students_performance WHERE EXISTS "
	    "(SELECT 1 FROM pg_stat_activity)", "pg_stat_activity is a system catalog",
	    "pg_stat_activity in EXISTS");
	refused("WITH x AS (SELECT * FROM public.users) SELECT * FROM x",
	    "public.users is outside", "a CTE that reads users");

	/* functions */
	refused("SELECT pg_read_file('/etc/passwd')", "function pg_read_file is not allowed",
	    "pg_read_file('/etc/passwd')");
	refused("SELECT pg_sleep(600)", "function pg_sleep is not allowed", "pg_sleep(600)");
	refused("SELECT pg_catalog.pg_sleep(600)", "function pg_sleep is not allowed",
	    "pg_catalog.pg_sleep(600)");
	refused("SELECT \"pg_sleep\"(1)", "function pg_sleep is not allowed",
	    "quoted \"pg_sleep\"");
	refused("SELECT set_config('role', 'ingenious_app', false)",
	    "function set_config is not allowed", "set_config('role', ...)");
	refused("SELECT current_setting('data_directory')",
	    "function current_setting is not allowed", "current_setting");
	refused("SELECT lo_import('/etc/passwd')", "function lo_import is not allowed",
	    "lo_import");
	refused("SELECT lo_export(1, '/tmp/x')", "function lo_export is not allowed",
	    "lo_export");
	refused("SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)",
	    "function dblink is not allowed", "dblink");
	refused("SELECT dblink_exec('host=evil', 'drop table x')",
	    "function dblink_exec is not allowed", "dblink_exec");
	refused("SELECT pg_terminate_backend(1)", "function pg_terminate_backend is not allowed",
	    "pg_terminate_backend");
	refused("SELECT query_to_xml('select * from public.users', true, true, '')",
	    "function query_to_xml is not allowed", "query_to_xml");
	refused("SELECT pg_ls_dir('.')", "function pg_ls_dir is not allowed", "pg_ls_dir");
	refused("SELECT repeat('x', 100000000)", "function repeat is not allowed",
	    "a 100 MB string (repeat)");
	refused("SELECT count(*) FROM generate_series(1, 1000000) a, generate_series(1, 1000) b",
	    "function generate_series is not allowed", "a cartesian product of 10^9 rows");
	refused("SELECT public.f(1)", "function public.f is outside pg_catalog",
	    "a function of schema public");
	refused("SELECT agent_data.f(1)", "function agent_data.f is outside pg_catalog",
	    "a function of the agent's schema");
	refused("SELECT txid_current()", "function txid_current is not allowed", "txid_current");
	refused("SELECT nextval('s')", "function nextval is not allowed", "nextval");
	refused("SELECT 'pg_authid'::regclass::oid", "a cast to type regclass is not allowed",
	    "a cast to regclass");
	refused("SELECT CAST(1 AS public.evil)", "type public.evil is outside pg_catalog",
	    "a cast to a type of schema public");
	refused("SELECT CURRENT_USER", "CURRENT_USER is not allowed", "CURRENT_USER");
	refused("SELECT session_user", "SESSION_USER is not allowed", "SESSION_USER");
	refused("SELECT 1 OPERATOR(public.+) 2", "operator public.+ is outside pg_catalog",
	    "an operator of schema public");
	refused("SELECT xmlparse(document '<a/>')", "XML functions are not allowed", "XML");
	refused("SELECT * FROM students_performance TABLESAMPLE SYSTEM (10)",
	    "TABLESAMPLE is not allowed", "TABLESAMPLE");
	refused("SELECT $1", "parameters ($1) are not allowed", "a parameter");

	/* other statements of the list */
	refused("COPY (SELECT 1) TO PROGRAM 'id'", "copies data (COPY) (CopyStmt)",
	    "COPY ... TO PROGRAM");
	refused("COPY students_performance FROM '/etc/passwd'", "(CopyStmt)", "COPY FROM");
	refused("SET ROLE ingenious_app",
	    "changes a setting or the role (SET / RESET) (VariableSetStmt)", "SET ROLE");
	refused("RESET SESSION AUTHORIZATION", "(VariableSetStmt)",
	    "RESET SESSION AUTHORIZATION");
	refused("SET SESSION AUTHORIZATION postgres", "(VariableSetStmt)",
	    "SET SESSION AUTHORIZATION");
	refused("SET statement_timeout = 0", "(VariableSetStmt)", "SET statement_timeout");
	refused("BEGIN", "controls the transaction", "BEGIN");
	refused("COMMIT", "controls the transaction", "COMMIT");
	refused("EXPLAIN ANALYZE DELETE FROM students_performance", "(ExplainStmt)",
	    "EXPLAIN ANALYZE DELETE");
	refused("DO $$ BEGIN PERFORM pg_sleep(1); END $$", "(DoStmt)", "DO");
	refused("CREATE TABLE t (a int)", "creates a table", "CREATE TABLE");
	refused("CREATE TABLE t AS SELECT 1", "creates a table", "CREATE TABLE AS");
	refused("GRANT ALL ON students_performance TO PUBLIC", "(GrantStmt)", "GRANT");
	refused("ALTER ROLE ingenious_sqlagent SUPERUSER", "(AlterRoleStmt)", "ALTER ROLE");
	refused("LOAD 'evil'", "(LoadStmt)", "LOAD");
	refused("CALL p()", "(CallStmt)", "CALL");
	refused("VACUUM students_performance", "(VacuumStmt)", "VACUUM");
	refused("LISTEN x", "(ListenStmt)", "LISTEN");
	refused("MERGE INTO students_performance t USING students_performance s "
	    "ON false WHEN NOT MATCHED THEN INSERT VALUES ('a','b','c',1,2,3)",
	    "(MergeStmt)", "MERGE");

	/* comments and quoting tricks */
	refused("SELECT 1 /* harmless */; DELETE FROM students_performance -- bye",
	    "2 statements", "a comment before a second statement");
	refused("SELECT 1 -- x\n; DROP TABLE students_performance", "2 statements",
	    "a line comment, then a second statement");
	refused("/* SELECT 1 */ DELETE FROM students_performance", "deletes rows",
	    "a DELETE behind a comment that looks like a SELECT");
	refused("SELECT 1 /* unterminated", "does not parse", "an unterminated comment");
	refused("SELECT 'it''s'; DROP TABLE x", "2 statements", "a quote then a chain");
	refused("SELECT $q$;$q$; DROP TABLE x", "2 statements", "dollar quoting then a chain");
	refused("SELECT U&'\\0041'; SELECT 1", "2 statements", "a unicode escape then a chain");
	refused("", "no statement", "the empty string");
	refused(";;", "no statement", "only semicolons");
	refused("-- just a comment", "no statement", "only a comment");
	refused("SELEC 1", "does not parse: syntax error", "a typo");
}

static void
test_limits(void)
{
	char *big = xmalloc(SQLGUARD_MAX_LEN + 64);
	char *deep;
	size_t i, n = 0;

	strcpy(big, "SELECT '");
	memset(big + 8, 'x', SQLGUARD_MAX_LEN);
	strcpy(big + 8 + SQLGUARD_MAX_LEN, "'");
	refused(big, "bytes, over the limit of 65536", "a statement over 64 KiB");
	free(big);

	/* deeper than the walk goes: refused, never a crash */
	deep = xmalloc(20000);
	n = 0;
	n += (size_t)sprintf(deep, "SELECT ");
	for (i = 0; i < 3000; i++) {
		memcpy(deep + n, "abs(", 4);
		n += 4;
	}
	deep[n++] = '1';
	for (i = 0; i < 3000; i++)
		deep[n++] = ')';
	deep[n] = '\0';
	{
		struct err e = { 0 };

		ok(sqlguard_check(deep, SCHEMA, &e) == -1 && e.status == 400 &&
		    strncmp(e.msg, "refused: ", 9) == 0,
		    "3000 nested calls: refused, not a crash (%s)", e.msg);
	}
	free(deep);
}

static void
test_useful(void)
{
	accepted("SELECT parental_education, AVG(math_score) FROM students_performance "
	    "GROUP BY parental_education", "averages by group");
	accepted("SELECT COUNT(*) FROM students_performance", "a count");
	accepted("select count(*) from agent_data.students_performance",
	    "a count, schema-qualified, lower case");
	accepted("SELECT test_prep_course, ROUND(AVG(reading_score)::numeric, 2) AS r, "
	    "MIN(writing_score), MAX(writing_score), stddev(math_score) "
	    "FROM students_performance GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC LIMIT 5",
	    "aggregates, a cast, HAVING, ORDER BY, LIMIT");
	accepted("SELECT a.lunch, b.lunch FROM students_performance a "
	    "JOIN agent_data.students_performance b ON a.math_score = b.math_score",
	    "a join within the schema");
	accepted("WITH g AS (SELECT lunch, avg(math_score) m FROM students_performance GROUP BY lunch) "
	    "SELECT * FROM g WHERE m > 50", "a read-only CTE");
	accepted("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
	    "SELECT i FROM n", "a recursive CTE");
	accepted("SELECT CASE WHEN math_score >= 70 THEN 'pass' ELSE 'fail' END AS r, count(*) "
	    "FROM students_performance GROUP BY 1", "CASE");
	accepted("SELECT * FROM students_performance WHERE math_score > "
	    "(SELECT avg(math_score) FROM students_performance)", "a scalar subquery");
	accepted("SELECT * FROM students_performance WHERE parental_education IN "
	    "(SELECT parental_education FROM students_performance WHERE lunch = 'standard')",
	    "IN (subquery)");
	accepted("SELECT lunch FROM students_performance UNION SELECT test_prep_course "
	    "FROM students_performance EXCEPT SELECT 'x'", "UNION and EXCEPT");
	accepted("VALUES (1, 'a'), (2, 'b')", "VALUES");
	accepted("TABLE students_performance", "TABLE t");
	accepted("SELECT lower(lunch), upper(test_prep_course), length(parental_education), "
	    "substring(lunch from 1 for 3), trim(lunch), coalesce(NULL, 1), nullif(1, 2), "
	    "greatest(math_score, reading_score), least(1, 2), abs(-1) FROM students_performance",
	    "string and conditional functions");
	accepted("SELECT date_trunc('day', now()), extract(year from current_date), "
	    "CURRENT_TIMESTAMP, now() - interval '30 days'", "date and time");
	accepted("SELECT parental_education, rank() OVER (ORDER BY avg(math_score) DESC) "
	    "FROM students_performance GROUP BY 1", "a window function");
	accepted("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY math_score) "
	    "FROM students_performance", "percentile_cont WITHIN GROUP");
	accepted("SELECT count(*) FILTER (WHERE lunch = 'standard') FROM students_performance",
	    "an aggregate FILTER");
	accepted("SELECT * FROM students_performance WHERE lunch LIKE 'free%' "
	    "AND parental_education ILIKE '%college%' AND math_score BETWEEN 40 AND 80 "
	    "AND writing_score IS NOT NULL", "LIKE, ILIKE, BETWEEN, IS NOT NULL");
	accepted("SELECT 1;", "a trailing semicolon");
	accepted("SELECT 1 -- a comment", "a trailing comment");
	accepted("SELECT string_agg(DISTINCT lunch, ', ' ORDER BY lunch) FROM students_performance",
	    "string_agg DISTINCT ORDER BY");
	accepted("SELECT math_score::text, CAST(reading_score AS double precision), "
	    "'2024-01-01'::date FROM students_performance", "casts to built-in types");
	accepted("SELECT s.* FROM students_performance AS s ORDER BY s.math_score DESC NULLS LAST "
	    "OFFSET 1 FETCH FIRST 3 ROWS ONLY", "OFFSET / FETCH FIRST");
	accepted("SELECT * FROM (SELECT lunch, count(*) c FROM students_performance GROUP BY lunch) t "
	    "WHERE c > 1", "a subquery in FROM");
	accepted("SELECT 'DROP TABLE x; DELETE FROM y' AS s", "SQL words inside a string");
	accepted("SELECT pg_catalog.lower('A')", "pg_catalog.lower (allow-listed)");
	ok(sqlguard_function_allowed("avg") && !sqlguard_function_allowed("pg_sleep") &&
	    !sqlguard_function_allowed(NULL), "sqlguard_function_allowed");
}

/* The schema argument decides which schema is the agent's. */
static void
test_other_schema(void)
{
	struct err e = { 0 };

	ok(sqlguard_check("SELECT * FROM sales.orders", "sales", &e) == 0,
	    "schema sales: sales.orders accepted");
	ok(sqlguard_check("SELECT * FROM agent_data.students_performance", "sales", &e) == -1 &&
	    strstr(e.msg, "outside schema sales") != NULL,
	    "schema sales: agent_data is refused (%s)", e.msg);
}

int
main(void)
{
	test_attacks();
	test_limits();
	test_useful();
	test_other_schema();
	return tap_done();
}
