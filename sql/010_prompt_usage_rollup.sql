-- 010_prompt_usage_rollup.sql -- the calls of each prompt template version
-- summed by the rollup of 009, so that the web console's "which turns used
-- which version" (GET /api/v1/prompts/usage) stays fast at tens of millions
-- of usage rows.  prompt_usage_rollup holds the sums of the templated
-- llm_usage rows with id <= usage_rollup_state.rolled_to, moved forward by
-- usage_rollup_apply() in the same transaction as usage_rollup; a reader
-- adds the rows after rolled_to (prompt_usage_live).  The partial index on
-- prompt_hash gains the id, so that the newest calls of a version (its
-- recent threads) and the rows after rolled_to are read from the index.
-- The turn's own statements are untouched (bench/turn.sql stays what the
-- server does); the index has one entry per templated call, as before.

CREATE TABLE prompt_usage_rollup (
	prompt_hash      text        NOT NULL,
	prompt_revision  text        NOT NULL,
	prompt_file      text        NOT NULL,
	user_id          text        NOT NULL,
	calls            bigint      NOT NULL,
	errors           bigint      NOT NULL,
	total_tokens     bigint      NOT NULL,
	first_used       timestamptz NOT NULL,
	last_used        timestamptz NOT NULL,
	PRIMARY KEY (prompt_hash, prompt_revision, prompt_file, user_id)
);
COMMENT ON TABLE prompt_usage_rollup IS
	'The templated llm_usage rows with id <= usage_rollup_state.rolled_to, summed per template version (prompt_hash), revision, file and user; read through prompt_usage_live.';
COMMENT ON COLUMN prompt_usage_rollup.prompt_hash IS 'SHA-256 of the template version (llm_usage.prompt_hash).';
COMMENT ON COLUMN prompt_usage_rollup.prompt_revision IS 'Revision of the template ('''' = none).';
COMMENT ON COLUMN prompt_usage_rollup.prompt_file IS 'File of the template in its revision ('''' = none).';
COMMENT ON COLUMN prompt_usage_rollup.user_id IS 'User the calls were made for ('''' = none).';
COMMENT ON COLUMN prompt_usage_rollup.calls IS 'LLM calls summed.';
COMMENT ON COLUMN prompt_usage_rollup.errors IS 'Calls whose last attempt was not a 2xx, or got no response.';
COMMENT ON COLUMN prompt_usage_rollup.total_tokens IS 'Sum of total_tokens.';
COMMENT ON COLUMN prompt_usage_rollup.first_used IS 'The first call''s created_at.';
COMMENT ON COLUMN prompt_usage_rollup.last_used IS 'The last call''s created_at.';

DROP INDEX llm_usage_prompt_hash_idx;
CREATE INDEX llm_usage_prompt_hash_idx ON llm_usage (prompt_hash, id) WHERE prompt_hash IS NOT NULL;
COMMENT ON INDEX llm_usage_prompt_hash_idx IS
	'Which answers a given template version produced, newest last (partial: templated calls only).';

-- the rows the rollup has already summed
INSERT INTO prompt_usage_rollup
SELECT u.prompt_hash, coalesce(u.prompt_revision, ''), coalesce(u.prompt_file, ''),
       coalesce(u.user_id, ''), count(*),
       count(*) FILTER (WHERE u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299),
       sum(u.total_tokens), min(u.created_at), max(u.created_at)
  FROM llm_usage u, usage_rollup_state s
 WHERE s.id = 1 AND u.id <= s.rolled_to AND u.prompt_hash IS NOT NULL
 GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE FUNCTION usage_rollup_apply() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	st usage_rollup_state%ROWTYPE;
	upto bigint;
BEGIN
	SELECT * INTO st FROM usage_rollup_state WHERE id = 1 FOR UPDATE;
	IF st.marked IS NULL OR st.marked <= st.rolled_to THEN
		UPDATE usage_rollup_state SET marked = NULL, rolled_at = now() WHERE id = 1;
		RETURN 0;
	END IF;
	-- at most a million rows a call (about a second): a first rollup of a
	-- large table goes in steps, each within a statement timeout
	upto := least(st.marked, st.rolled_to + 1000000);
	INSERT INTO usage_rollup AS r
	SELECT (u.created_at AT TIME ZONE 'UTC')::date,
	       coalesce(u.user_id, ''), coalesce(u.flow, ''), coalesce(u.agent_name, ''),
	       coalesce(u.model, ''),
	       count(*),
	       count(*) FILTER (WHERE u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299),
	       sum(u.prompt_tokens), sum(u.completion_tokens), sum(u.total_tokens),
	       sum(u.latency_ms), max(u.latency_ms)
	  FROM llm_usage u
	 WHERE u.id > st.rolled_to AND u.id <= upto
	 GROUP BY 1, 2, 3, 4, 5
	ON CONFLICT (day, user_id, flow, agent_name, model) DO UPDATE SET
	       calls = r.calls + EXCLUDED.calls,
	       errors = r.errors + EXCLUDED.errors,
	       prompt_tokens = r.prompt_tokens + EXCLUDED.prompt_tokens,
	       completion_tokens = r.completion_tokens + EXCLUDED.completion_tokens,
	       total_tokens = r.total_tokens + EXCLUDED.total_tokens,
	       latency_ms_sum = r.latency_ms_sum + EXCLUDED.latency_ms_sum,
	       latency_ms_max = greatest(r.latency_ms_max, EXCLUDED.latency_ms_max);
	INSERT INTO prompt_usage_rollup AS p
	SELECT u.prompt_hash, coalesce(u.prompt_revision, ''), coalesce(u.prompt_file, ''),
	       coalesce(u.user_id, ''), count(*),
	       count(*) FILTER (WHERE u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299),
	       sum(u.total_tokens), min(u.created_at), max(u.created_at)
	  FROM llm_usage u
	 WHERE u.id > st.rolled_to AND u.id <= upto AND u.prompt_hash IS NOT NULL
	 GROUP BY 1, 2, 3, 4
	ON CONFLICT (prompt_hash, prompt_revision, prompt_file, user_id) DO UPDATE SET
	       calls = p.calls + EXCLUDED.calls,
	       errors = p.errors + EXCLUDED.errors,
	       total_tokens = p.total_tokens + EXCLUDED.total_tokens,
	       first_used = least(p.first_used, EXCLUDED.first_used),
	       last_used = greatest(p.last_used, EXCLUDED.last_used);
	UPDATE usage_rollup_state
	   SET rolled_to = upto,
	       marked = CASE WHEN upto < st.marked THEN st.marked END,
	       rolled_at = now()
	 WHERE id = 1;
	RETURN st.marked - upto;
END;
$$;
COMMENT ON FUNCTION usage_rollup_apply() IS
	'Step 2 of a rollup (its own transaction), returning the ids left to the mark (0: caught up): sums the llm_usage rows in (rolled_to, marked], a million at most, into usage_rollup and prompt_usage_rollup and moves rolled_to past them (marked stays while rows up to it remain).';

-- what a reader sums: the rollup and the templated rows after it
CREATE VIEW prompt_usage_live AS
SELECT p.prompt_hash, p.prompt_revision, p.prompt_file, p.user_id, p.calls, p.errors,
       p.total_tokens, p.first_used, p.last_used
  FROM prompt_usage_rollup p
UNION ALL
SELECT u.prompt_hash, coalesce(u.prompt_revision, ''), coalesce(u.prompt_file, ''),
       coalesce(u.user_id, ''), 1,
       CASE WHEN u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299 THEN 1 ELSE 0 END,
       u.total_tokens, u.created_at, u.created_at
  FROM llm_usage u
 WHERE u.prompt_hash IS NOT NULL
   AND u.id > (SELECT rolled_to FROM usage_rollup_state WHERE id = 1);
COMMENT ON VIEW prompt_usage_live IS
	'prompt_usage_rollup plus the templated llm_usage rows not rolled up yet, one row each: sum it grouped by prompt_hash.';
COMMENT ON COLUMN prompt_usage_live.prompt_hash IS 'SHA-256 of the template version.';
COMMENT ON COLUMN prompt_usage_live.prompt_revision IS 'Revision of the template ('''' = none).';
COMMENT ON COLUMN prompt_usage_live.prompt_file IS 'File of the template ('''' = none).';
COMMENT ON COLUMN prompt_usage_live.user_id IS 'User the calls were made for ('''' = none).';
COMMENT ON COLUMN prompt_usage_live.calls IS 'LLM calls.';
COMMENT ON COLUMN prompt_usage_live.errors IS 'Calls whose last attempt was not a 2xx, or got no response.';
COMMENT ON COLUMN prompt_usage_live.total_tokens IS 'Sum of total_tokens.';
COMMENT ON COLUMN prompt_usage_live.first_used IS 'The first call''s created_at.';
COMMENT ON COLUMN prompt_usage_live.last_used IS 'The last call''s created_at.';

GRANT SELECT, INSERT, UPDATE ON prompt_usage_rollup TO ingenious_app;
GRANT SELECT ON prompt_usage_rollup, prompt_usage_live TO ingenious_readonly;
GRANT SELECT ON prompt_usage_live TO ingenious_app;
