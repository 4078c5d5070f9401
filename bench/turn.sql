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
-- What the server does per turn (lib/db_chat.c, worker/usage.c, worker/turn.c):
--   ONE statement in its own implicit transaction, the call of
--   ingenious_commit_turn() (sql/006_one_commit_turn.sql): the turn of
--   ingenious_save_turn() (sql/004_save_turn.sql: the thread created or
--   locked and advanced, the user and assistant messages, the memory
--   summary) and the LLM call's llm_usage row, linked to the reply, which
--   the server held (and journaled) until then.  The server passes the
--   message columns as array literals ($6::uuid[] ...) and the usage rows as
--   a JSON array ($22::jsonb, db_usage_json); here the same values are built
--   from pgbench's variables.  One commit and one round trip per turn, as the
--   server's.  (Until issue 15 the usage row was its own INSERT and commit
--   before the turn, and the turn updated it to link it: two commits.)
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

-- the turn with its usage row (db_save_turn -> db_turn_work, DB_STMT_SAVE_TURN): no
-- idempotency key, ownership not enforced (no authentication), as in bench/chat.sh's loads
SELECT outcome, first_seq, new_thread, replay_status, replay_response, replay_request_hash, replay_thread_id, replay_message_id FROM ingenious_commit_turn((lpad(to_hex(:t1::bigint), 16, '0') || lpad(to_hex(:t2::bigint), 16, '0'))::uuid::text, :user_id, false::boolean, :flow, :user_id, ARRAY[(lpad(to_hex(:u1::bigint), 16, '0') || lpad(to_hex(:u2::bigint), 16, '0'))::uuid, (lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid]::uuid[], '{"user","assistant"}'::text[], ARRAY[NULL, :flow]::text[], ARRAY[:prompt, :reply]::text[], '{NULL,NULL}'::jsonb[], '{NULL,NULL}'::text[], '{NULL,NULL}'::jsonb[], '{NULL,NULL}'::jsonb[], (lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid, :summary, NULL::bigint[], NULL, NULL, NULL::smallint, NULL, NULL, ('[{"request_id":"' || (lpad(to_hex(:q1::bigint), 16, '0') || lpad(to_hex(:q2::bigint), 16, '0'))::uuid::text || '","user_id":"' || :user_id || '","thread_id":"' || (lpad(to_hex(:t1::bigint), 16, '0') || lpad(to_hex(:t2::bigint), 16, '0'))::uuid::text || '","flow":"' || :flow || '","agent_name":"' || :flow || '","model":"' || :model || '","deployment":"' || :deployment || '","prompt_tokens":57,"completion_tokens":78,"total_tokens":135,"latency_ms":' || :latency_ms || ',"http_status":200,"retries":0,"created_at":"2026-12-02T15:20:00.123456Z"}]')::jsonb);
