-- 011_turn_cost.sql -- what a chat turn costs PostgreSQL, cut again (issue 15),
-- and an index for the console's list of every owner's threads.
--
-- ingenious_record_usage() was LANGUAGE sql.  PostgreSQL 15 keeps no plan for
-- a SQL function called from plpgsql: every call fetched its body, parsed,
-- analysed and planned the INSERT again.  perf on the backends running
-- bench/turn.sql put fmgr_sql at 45 % of a turn's database CPU.  The same
-- statement in a plpgsql function keeps its plan for the session; pgbench of
-- bench/turn.sql, 8 clients, interleaved: 0.78-0.88 -> 0.48-0.55 ms of
-- database CPU per turn (bench/README.md).  The signature, the result and
-- what it writes are unchanged.
--
-- threads_updated_idx serves GET /api/v1/conversations for the administrator
-- (every owner, newest updated first: db_thread_list), which read the whole
-- table and sorted it (0.77 s at a million threads).  Every turn inserts or
-- updates its thread, and that update was never HOT (updated_at is in
-- threads_owner_updated_idx), so the new index costs one more index entry per
-- turn: within the noise of the same pgbench runs.  Building it locks the
-- threads table against writes while it runs (docs/dba.md).

CREATE OR REPLACE FUNCTION ingenious_record_usage(p_usage jsonb,
                                                  p_message_id uuid DEFAULT NULL,
                                                  p_skip_stored boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
AS $fn$
#variable_conflict error
DECLARE
	v_n integer;
BEGIN
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
	          AND x.created_at = u.created_at);
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$fn$;

COMMENT ON FUNCTION ingenious_record_usage(jsonb, uuid, boolean) IS
	'Inserts the llm_usage rows of p_usage (a jsonb array of objects keyed by column name), linked to p_message_id (NULL: unlinked), skipping (unless p_skip_stored is false) any row already stored for the same thread, request, agent and created_at; returns how many it inserted.  Used by ingenious_commit_turn() and, for the calls of a turn that did not commit and the replay of a worker''s usage journal, by lib/db_chat.c.  plpgsql since 011 (its plans are kept per session).  SECURITY INVOKER; only ingenious_app may execute it.';
REVOKE ALL ON FUNCTION ingenious_record_usage(jsonb, uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingenious_record_usage(jsonb, uuid, boolean) TO ingenious_app;

CREATE INDEX IF NOT EXISTS threads_updated_idx ON threads (updated_at DESC, id);
COMMENT ON INDEX threads_updated_idx IS
	'Every owner''s threads, newest updated first (GET /api/v1/conversations for the administrator).';
