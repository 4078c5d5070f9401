-- bench/turn-cte.sql -- a what-if, NOT what the server does: the same rows as
-- bench/turn.sql (one usage row, a new thread, 2 messages, a memory summary,
-- the usage link), with db_save_turn's transaction written as ONE plain
-- statement of data-modifying CTEs instead of the server's call of
-- ingenious_save_turn() (both: 2 round trips and 2 commits per turn; before
-- sql/004_save_turn.sql the server made 9 round trips).
--
-- Owns: nothing but this script.  Run it like turn.sql (same -D variables):
--   pgbench -n -M prepared -f bench/turn-cte.sql -D prompt=... ... ingenious_c
-- It measures what the database would do without the function's overhead
-- (bench/README.md).  The thread upsert both creates a new thread and locks
-- and advances an existing one; its WHERE makes a thread of another owner
-- return no row, so nothing else is written.  It has no idempotency key:
-- a key that must be rolled back when the thread turns out to be foreign is
-- what the server's function raises an error for.

\set t1 random(0, 4611686018427387903)
\set t2 random(0, 4611686018427387903)
\set q1 random(0, 4611686018427387903)
\set q2 random(0, 4611686018427387903)
\set u1 random(0, 4611686018427387903)
\set u2 random(0, 4611686018427387903)
\set r1 random(0, 4611686018427387903)
\set r2 random(0, 4611686018427387903)
INSERT INTO llm_usage (request_id, user_id, thread_id, flow, agent_name, model, deployment, prompt_tokens, completion_tokens, total_tokens, latency_ms, http_status, retries) VALUES ((lpad(to_hex(:q1::bigint), 16, '0') || lpad(to_hex(:q2::bigint), 16, '0'))::uuid::text, :user_id, (lpad(to_hex(:t1::bigint), 16, '0') || lpad(to_hex(:t2::bigint), 16, '0'))::uuid::text, :flow, :flow, :model, :deployment, 57::integer, 78::integer, 135::integer, :latency_ms::integer, 200::smallint, 0::smallint) RETURNING id
\gset usage_
WITH th AS (INSERT INTO threads AS t (id, owner, flow, last_seq) VALUES ((lpad(to_hex(:t1::bigint), 16, '0') || lpad(to_hex(:t2::bigint), 16, '0'))::uuid::text, :user_id, :flow, 2) ON CONFLICT (id) DO UPDATE SET last_seq = t.last_seq + 2, updated_at = greatest(t.updated_at, now()) WHERE t.owner = :user_id RETURNING id, owner, last_seq, updated_at),
m AS (INSERT INTO messages (id, thread_id, seq, user_id, role, agent_name, content, created_at) SELECT (lpad(to_hex(:u1::bigint), 16, '0') || lpad(to_hex(:u2::bigint), 16, '0'))::uuid, th.id, th.last_seq - 1, :user_id, 'user', NULL, :prompt, th.updated_at FROM th UNION ALL SELECT (lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid, th.id, th.last_seq, :user_id, 'assistant', :flow, :reply, th.updated_at FROM th),
s AS (INSERT INTO memory_summaries (thread_id, message_id, user_id, content, created_at) SELECT th.id, (lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid, :user_id, :summary, th.updated_at FROM th),
u AS (UPDATE llm_usage SET message_id = (lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid, thread_id = (SELECT id FROM th) WHERE id = ANY (ARRAY[:usage_id::bigint]) AND message_id IS NULL AND EXISTS (SELECT 1 FROM th))
SELECT owner, last_seq FROM th;
