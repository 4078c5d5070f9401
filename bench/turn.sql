-- bench/turn.sql -- pgbench script: the writes of ONE chat turn of `ingen serve`,
-- statement for statement as lib/db.c commits them for POST /api/v1/chat
-- without a thread_id (classification-agent: one LLM call, a new thread).
--
-- Owns: nothing but this script; bench/chat.sh runs it with
--   pgbench -n -M prepared -f bench/turn.sql -D prompt=... -D reply=...
--           -D summary=... -D user_id=... -D flow=... -D model=...
--           -D deployment=... -D latency_ms=...
-- so every value travels as a text parameter of a prepared statement, as it
-- does from the server (db_exec: PQprepare once per connection, then
-- PQexecPrepared).  Must never do more or less than the server does per turn:
-- if lib/db.c changes its statements, this file changes with them.
--
-- What the server does per turn (lib/db.c, flows/ctx.c, worker/routes_chat.c):
--   1. db_record_usage: INSERT INTO llm_usage ... RETURNING id, in autocommit
--      (its own transaction and commit, before the turn).
--   2. db_save_turn: ONE statement in its own implicit transaction, the call
--      of ingenious_save_turn() (sql/004_save_turn.sql), which creates the
--      thread (or locks and advances it), inserts the user and assistant
--      messages, the memory summary, and links the usage row.  The server
--      passes the message columns as array literals ($6::uuid[] ...); here
--      the arrays are built from pgbench's variables, the same values.
-- Two commits and two round trips per turn, as the server's.
--
-- Ids are random UUIDs like the server's (db_new_uuid), built from pgbench
-- random numbers inside the statements, so no extra round trip is spent on
-- them; thread_id is the UUID's text form, as the server stores it.

\set t1 random(0, 4611686018427387903)
\set t2 random(0, 4611686018427387903)
\set q1 random(0, 4611686018427387903)
\set q2 random(0, 4611686018427387903)
\set u1 random(0, 4611686018427387903)
\set u2 random(0, 4611686018427387903)
\set r1 random(0, 4611686018427387903)
\set r2 random(0, 4611686018427387903)

-- 1. the LLM call's usage row (db_record_usage, DB_STMT_USAGE_INSERT)
INSERT INTO llm_usage (request_id, user_id, thread_id, flow, agent_name, model, deployment, prompt_tokens, completion_tokens, total_tokens, latency_ms, http_status, retries) VALUES ((lpad(to_hex(:q1::bigint), 16, '0') || lpad(to_hex(:q2::bigint), 16, '0'))::uuid::text, :user_id, (lpad(to_hex(:t1::bigint), 16, '0') || lpad(to_hex(:t2::bigint), 16, '0'))::uuid::text, :flow, :flow, :model, :deployment, 57::integer, 78::integer, 135::integer, :latency_ms::integer, 200::smallint, 0::smallint) RETURNING id
\gset usage_

-- 2. the turn (db_save_turn -> db_turn_work, DB_STMT_SAVE_TURN): no idempotency key,
-- ownership not enforced (no authentication), as in bench/chat.sh's chat loads
SELECT outcome, first_seq, new_thread, replay_status, replay_response, replay_request_hash, replay_thread_id, replay_message_id FROM ingenious_save_turn((lpad(to_hex(:t1::bigint), 16, '0') || lpad(to_hex(:t2::bigint), 16, '0'))::uuid::text, :user_id, false::boolean, :flow, :user_id, ARRAY[(lpad(to_hex(:u1::bigint), 16, '0') || lpad(to_hex(:u2::bigint), 16, '0'))::uuid, (lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid]::uuid[], '{"user","assistant"}'::text[], ARRAY[NULL, :flow]::text[], ARRAY[:prompt, :reply]::text[], '{NULL,NULL}'::jsonb[], '{NULL,NULL}'::text[], '{NULL,NULL}'::jsonb[], '{NULL,NULL}'::jsonb[], (lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid, :summary, ARRAY[:usage_id::bigint]::bigint[], NULL, NULL, NULL::smallint, NULL, NULL);
