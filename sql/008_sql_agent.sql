-- 008_sql_agent.sql -- the SQL agent's sample data: the reference's
-- students_performance table (its columns and seven rows) in the schema
-- agent_data, which sql/002_roles.sql created for the agent, and the
-- grants that let ingenious_sqlagent read it and nothing else.
--
-- The role itself is made by 002 (NOLOGIN when a migration creates it; a
-- DBA gives it LOGIN and a password, `ingen db init-local` does both and
-- writes the password into DIR/credentials).  A DBA who points the agent at
-- another schema or database grants the same way (docs/sql-agent.md).
--
-- What ingenious_sqlagent may do after this file:
--   USAGE on schema agent_data, SELECT on its tables (the default
--   privileges of 002 cover tables added later by the owner), CONNECT on
--   the database; nothing on schema public (002 revoked PUBLIC's USAGE),
--   no TEMPORARY, no CREATE anywhere, no EXECUTE on the ingenious_*
--   functions (004, 006 revoked them from PUBLIC).

CREATE TABLE agent_data.students_performance (
	parental_education text,
	lunch text,
	test_prep_course text,
	math_score integer,
	reading_score integer,
	writing_score integer
);

COMMENT ON TABLE agent_data.students_performance IS
	'Exam scores of students (the sample of the sql-manipulation-agent): one row per student, scores 0..100.';
COMMENT ON COLUMN agent_data.students_performance.parental_education IS
	'Highest education of the student''s parents: high school, some college, associate''s degree, bachelor''s degree, master''s degree.';
COMMENT ON COLUMN agent_data.students_performance.lunch IS
	'Lunch plan: standard or free/reduced.';
COMMENT ON COLUMN agent_data.students_performance.test_prep_course IS
	'Test preparation course: completed or none.';
COMMENT ON COLUMN agent_data.students_performance.math_score IS
	'Math exam score, 0..100.';
COMMENT ON COLUMN agent_data.students_performance.reading_score IS
	'Reading exam score, 0..100.';
COMMENT ON COLUMN agent_data.students_performance.writing_score IS
	'Writing exam score, 0..100.';

-- the reference's seven rows, in its order
INSERT INTO agent_data.students_performance
	(parental_education, lunch, test_prep_course, math_score, reading_score, writing_score)
VALUES
	('bachelor''s degree', 'standard', 'none', 72, 72, 74),
	('some college', 'standard', 'completed', 69, 90, 88),
	('master''s degree', 'standard', 'none', 90, 95, 93),
	('associate''s degree', 'free/reduced', 'none', 47, 57, 44),
	('some college', 'standard', 'none', 76, 78, 75),
	('high school', 'free/reduced', 'completed', 64, 64, 67),
	('high school', 'free/reduced', 'none', 38, 60, 50);

-- Explicit grants (the default privileges of 002 would give the same):
-- the agent and the DBAs read, nobody writes but the owner.
REVOKE ALL ON agent_data.students_performance FROM PUBLIC;
GRANT SELECT ON agent_data.students_performance TO ingenious_sqlagent, ingenious_readonly;

-- Nobody but the owner and the granted roles sees the schema.
REVOKE ALL ON SCHEMA agent_data FROM PUBLIC;
GRANT USAGE ON SCHEMA agent_data TO ingenious_sqlagent, ingenious_readonly;
