-- 006_one_commit_turn.sql -- a chat turn in ONE commit: the llm_usage rows
-- of the turn's model calls are inserted by the turn's own transaction,
-- already linked to the reply, instead of being committed one by one while
-- the flow runs and updated afterwards (which cost a commit per call and
-- rewrote every index entry of every usage row).
--
-- The server (lib/db_chat.c) holds each call's row in memory and in its
-- usage journal (lib/ujournal.c: a file under server.state_dir that outlives
-- a crash of the worker) until the turn ends, then:
--   * the turn commits: ingenious_commit_turn() below writes the turn and
--     its usage rows in one statement, one transaction;
--   * the turn fails, or does not record its messages (memory_record false),
--     or a retry with the same Idempotency-Key won: ingenious_record_usage()
--     writes the rows alone, unlinked;
--   * the worker died with rows in its journal: another worker replays them
--     with ingenious_record_usage().
-- ingenious_record_usage() skips a row that is already there (same thread,
-- request, agent and finishing time: the llm_usage_thread_idx lookup), so a
-- replay after a turn that did commit, or a retry after a connection broke
-- during COMMIT, never writes a call twice.
--
-- The rows travel as one jsonb array of objects whose keys are llm_usage's
-- column names (request_id, user_id, thread_id, flow, agent_name, model,
-- deployment, prompt_tokens, completion_tokens, total_tokens, latency_ms,
-- http_status, retries, prompt_revision, prompt_file, prompt_hash,
-- transcript, created_at); a missing key is NULL (0 for the counters).
--
-- Indexes and keys, measured (bench/README.md, issue 15): every foreign key
-- is a trigger and a lookup per row, every index an insertion.
--   * llm_usage.message_id loses its foreign key: usage is the billing
--     ledger, it outlives a thread a DBA deletes (the link then points at a
--     message that is gone; usage_by_thread still finds the rows).  Its
--     partial index stays, for the usage of one message.
--   * memory_summaries.message_id loses its foreign key and its index: a
--     summary goes with its thread (ON DELETE CASCADE on thread_id), and no
--     query looks a summary up by message.
--   * llm_usage's btree on created_at becomes a BRIN index: rows arrive in
--     time order, so usage_by_day and time ranges read block ranges.
--   The indexes by user, flow, model and thread serve the DBA views' filtered
--   queries and the replay check below, and stay.
--
-- Forward-only: ingenious_save_turn() of 004 stays as it was, so a server of
-- the previous release keeps working against this schema during an upgrade.
-- SECURITY INVOKER, executable by ingenious_app only, like 004's function.

CREATE OR REPLACE FUNCTION ingenious_record_usage(p_usage jsonb,
                                                  p_message_id uuid DEFAULT NULL,
                                                  p_skip_stored boolean DEFAULT true)
RETURNS integer
LANGUAGE sql
VOLATILE
SECURITY INVOKER
AS $fn$
	WITH ins AS (
		INSERT INTO llm_usage (request_id, user_id, thread_id, message_id, flow,
		                       agent_name, model, deployment, prompt_tokens,
		                       completion_tokens, total_tokens, latency_ms,
		                       http_status, retries, prompt_revision, prompt_file,
		                       prompt_hash, transcript, created_at)
		SELECT u.request_id, u.user_id, u.thread_id, p_message_id, u.flow,
		       u.agent_name, u.model, u.deployment, coalesce(u.prompt_tokens, 0),
		       coalesce(u.completion_tokens, 0), coalesce(u.total_tokens, 0),
		       greatest(coalesce(u.latency_ms, 0), 0), u.http_status,
		       greatest(coalesce(u.retries, 0), 0)::smallint, u.prompt_revision,
		       u.prompt_file, u.prompt_hash, u.transcript,
		       coalesce(u.created_at, now())
		  FROM jsonb_to_recordset(coalesce(p_usage, '[]'::jsonb)) AS u(
		       request_id text, user_id text, thread_id text, flow text,
		       agent_name text, model text, deployment text,
		       prompt_tokens integer, completion_tokens integer,
		       total_tokens integer, latency_ms integer, http_status smallint,
		       retries integer, prompt_revision text, prompt_file text,
		       prompt_hash text, transcript jsonb, created_at timestamptz)
		 WHERE NOT p_skip_stored OR NOT EXISTS (
		       SELECT 1 FROM llm_usage x
		        WHERE x.thread_id = u.thread_id
		          AND x.request_id IS NOT DISTINCT FROM u.request_id
		          AND x.agent_name IS NOT DISTINCT FROM u.agent_name
		          AND x.created_at = u.created_at)
		RETURNING 1)
	SELECT count(*)::integer FROM ins
$fn$;

COMMENT ON FUNCTION ingenious_record_usage(jsonb, uuid, boolean) IS
	'Inserts the llm_usage rows of p_usage (a jsonb array of objects keyed by column name), linked to p_message_id (NULL: unlinked), skipping (unless p_skip_stored is false) any row already stored for the same thread, request, agent and created_at; returns how many it inserted.  Used for the calls of a turn that did not commit and by the replay of a worker''s usage journal (lib/db_chat.c).  SECURITY INVOKER; only ingenious_app may execute it.';

CREATE OR REPLACE FUNCTION ingenious_commit_turn(
	p_thread_id              text,
	p_owner                  text,
	p_enforce_owner          boolean,
	p_flow                   text,
	p_user_id                text,
	p_message_ids            uuid[],
	p_roles                  text[],
	p_agent_names            text[],
	p_contents               text[],
	p_tool_calls             jsonb[],
	p_tool_call_ids          text[],
	p_tool_call_functions    jsonb[],
	p_content_filter_results jsonb[],
	p_reply_id               uuid,
	p_memory_summary         text,
	p_usage_ids              bigint[],
	p_idempotency_key        text,
	p_request_hash           text,
	p_reply_status           smallint,
	p_reply_body             text,
	p_claim                  text,
	p_usage                  jsonb,
	OUT outcome              text,
	OUT first_seq            integer,
	OUT new_thread           boolean,
	OUT replay_status        smallint,
	OUT replay_response      text,
	OUT replay_request_hash  text,
	OUT replay_thread_id     text,
	OUT replay_message_id    uuid)
RETURNS record
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
AS $fn$
#variable_conflict error
BEGIN
	SELECT s.outcome, s.first_seq, s.new_thread, s.replay_status,
	       s.replay_response, s.replay_request_hash, s.replay_thread_id,
	       s.replay_message_id
	  INTO outcome, first_seq, new_thread, replay_status, replay_response,
	       replay_request_hash, replay_thread_id, replay_message_id
	  FROM ingenious_save_turn(p_thread_id, p_owner, p_enforce_owner, p_flow,
	       p_user_id, p_message_ids, p_roles, p_agent_names, p_contents,
	       p_tool_calls, p_tool_call_ids, p_tool_call_functions,
	       p_content_filter_results, p_reply_id, p_memory_summary, p_usage_ids,
	       p_idempotency_key, p_request_hash, p_reply_status, p_reply_body,
	       p_claim) s;
	IF p_usage IS NULL OR jsonb_array_length(p_usage) = 0 THEN
		RETURN;
	END IF;
	IF outcome = 'saved' THEN
		-- fresh rows of this transaction: nothing to skip
		PERFORM ingenious_record_usage(p_usage, p_reply_id, false);
	ELSE
		-- a retry with the same key won: our calls were billed all the same
		PERFORM ingenious_record_usage(p_usage, NULL);
	END IF;
END
$fn$;

COMMENT ON FUNCTION ingenious_commit_turn(text, text, boolean, text, text, uuid[], text[],
    text[], text[], jsonb[], text[], jsonb[], jsonb[], uuid, text, bigint[], text, text,
    smallint, text, text, jsonb) IS
	'Writes one chat turn with its usage rows in one transaction (lib/db_chat.c db_save_turn): everything ingenious_save_turn() does, then the llm_usage rows of p_usage linked to the reply (outcome saved), or recorded unlinked (outcome replayed or replay_missing: a retry with the same key won).  SECURITY INVOKER; only ingenious_app may execute it.';

REVOKE ALL ON FUNCTION ingenious_record_usage(jsonb, uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingenious_record_usage(jsonb, uuid, boolean) TO ingenious_app;
REVOKE ALL ON FUNCTION ingenious_commit_turn(text, text, boolean, text, text, uuid[], text[],
    text[], text[], jsonb[], text[], jsonb[], jsonb[], uuid, text, bigint[], text, text,
    smallint, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingenious_commit_turn(text, text, boolean, text, text, uuid[], text[],
    text[], text[], jsonb[], text[], jsonb[], jsonb[], uuid, text, bigint[], text, text,
    smallint, text, text, jsonb) TO ingenious_app;

-- the keys and indexes of the header
ALTER TABLE llm_usage DROP CONSTRAINT IF EXISTS llm_usage_message_id_fkey;
ALTER TABLE memory_summaries DROP CONSTRAINT IF EXISTS memory_summaries_message_id_fkey;
DROP INDEX IF EXISTS memory_summaries_message_idx;
DROP INDEX IF EXISTS llm_usage_created_idx;
CREATE INDEX llm_usage_created_brin ON llm_usage USING brin (created_at);
COMMENT ON INDEX llm_usage_created_brin IS
	'usage_by_day and time-range queries: rows arrive in time order, so block ranges suffice (replaced a btree in 006).';

COMMENT ON TABLE llm_usage IS
	'One row per LLM call.  A committed turn writes its calls'' rows in its own transaction, linked to its reply (message_id); the calls of a turn that fails are written alone with message_id NULL; a worker that dies leaves them in its usage journal, replayed by another worker (docs/dba.md).';
COMMENT ON COLUMN llm_usage.message_id IS 'Assistant message of the committed turn (no foreign key since 006: the row outlives a deleted thread); NULL for the calls of a turn that failed, was not recorded (memory_record false), or was answered by an earlier turn with the same Idempotency-Key.';
COMMENT ON COLUMN llm_usage.created_at IS 'When the call finished (the worker''s clock).';
COMMENT ON COLUMN memory_summaries.message_id IS 'Assistant message of the turn that returned the summary (no foreign key since 006: the summary goes with its thread).';
