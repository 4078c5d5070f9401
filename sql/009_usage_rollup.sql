-- 009_usage_rollup.sql -- llm_usage summed per UTC day, user, flow, agent
-- and model, kept up to date incrementally, so that charts of usage (the
-- web console, GET /api/v1/usage) stay fast at tens of millions of rows.
--
-- usage_rollup holds the sums of every llm_usage row with id <= rolled_to
-- (usage_rollup_state).  usage_rollup_advance() moves rolled_to forward in
-- two steps, each in its own transaction (two statements in autocommit):
--   1. usage_rollup_mark(): LOCK llm_usage IN SHARE ROW EXCLUSIVE MODE waits
--      for the transactions that are inserting rows to end, and keeps new
--      ones out while it reads the identity's last value: every id up to it
--      is then committed or rolled back, never still in flight.  The lock is
--      held only for that read (new inserts wait for it, a few ms).
--   2. usage_rollup_apply(): sums the rows in (rolled_to, marked] into
--      usage_rollup and moves rolled_to, in one transaction; a million rows
--      at most a call (about a second), so that a first rollup of a large
--      table goes in steps (measured: 10 M rows summed in 13 s at once).
-- A reader adds the rows after rolled_to on the fly (usage_live), a few
-- seconds' worth when the rollup runs every few seconds.  The turn's own
-- statements are untouched (bench/turn.sql stays what the server does).

CREATE TABLE usage_rollup (
	day                date    NOT NULL,
	user_id            text    NOT NULL,
	flow               text    NOT NULL,
	agent_name         text    NOT NULL,
	model              text    NOT NULL,
	calls              bigint  NOT NULL,
	errors             bigint  NOT NULL,
	prompt_tokens      bigint  NOT NULL,
	completion_tokens  bigint  NOT NULL,
	total_tokens       bigint  NOT NULL,
	latency_ms_sum     bigint  NOT NULL,
	latency_ms_max     integer NOT NULL,
	PRIMARY KEY (day, user_id, flow, agent_name, model)
);
COMMENT ON TABLE usage_rollup IS
	'llm_usage summed per UTC day, user, flow, agent and model, for the rows with id <= usage_rollup_state.rolled_to (NULL texts stored as '''').';
COMMENT ON COLUMN usage_rollup.errors IS 'Calls whose last attempt was not a 2xx, or got no response.';
COMMENT ON COLUMN usage_rollup.latency_ms_sum IS 'Sum of latency_ms: the mean is latency_ms_sum / calls.';

CREATE TABLE usage_rollup_state (
	id         integer     PRIMARY KEY CHECK (id = 1),
	rolled_to  bigint      NOT NULL,
	marked     bigint,
	rolled_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE usage_rollup_state IS
	'How far usage_rollup goes: every llm_usage id <= rolled_to is summed; marked is the next point usage_rollup_mark made safe.';
INSERT INTO usage_rollup_state (id, rolled_to) VALUES (1, 0);

-- step 1: a point up to which no insert is in flight
CREATE FUNCTION usage_rollup_mark() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	last_id bigint;
BEGIN
	LOCK TABLE llm_usage IN SHARE ROW EXCLUSIVE MODE;
	SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('llm_usage', 'id')), 0)
	  INTO last_id;
	UPDATE usage_rollup_state SET marked = last_id WHERE id = 1;
	RETURN last_id;
END;
$$;
COMMENT ON FUNCTION usage_rollup_mark() IS
	'Step 1 of a rollup (its own transaction): waits for the transactions inserting llm_usage rows, records the identity''s last value as usage_rollup_state.marked.';

-- step 2: sum the rows up to the mark
CREATE FUNCTION usage_rollup_apply() RETURNS bigint
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
	UPDATE usage_rollup_state
	   SET rolled_to = upto,
	       marked = CASE WHEN upto < st.marked THEN st.marked END,
	       rolled_at = now()
	 WHERE id = 1;
	RETURN st.marked - upto;
END;
$$;
COMMENT ON FUNCTION usage_rollup_apply() IS
	'Step 2 of a rollup (its own transaction), returning the ids left to the mark (0: caught up): sums the llm_usage rows in (rolled_to, marked], a million at most, into usage_rollup and moves rolled_to past them (marked stays while rows up to it remain).';

-- what a reader sums: the rollup and the rows after it
CREATE VIEW usage_live AS
SELECT r.day, r.user_id, r.flow, r.agent_name, r.model, r.calls, r.errors, r.prompt_tokens,
       r.completion_tokens, r.total_tokens, r.latency_ms_sum, r.latency_ms_max
  FROM usage_rollup r
UNION ALL
SELECT (u.created_at AT TIME ZONE 'UTC')::date, coalesce(u.user_id, ''), coalesce(u.flow, ''),
       coalesce(u.agent_name, ''), coalesce(u.model, ''), 1,
       CASE WHEN u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299 THEN 1 ELSE 0 END,
       u.prompt_tokens, u.completion_tokens, u.total_tokens, u.latency_ms, u.latency_ms
  FROM llm_usage u
 WHERE u.id > (SELECT rolled_to FROM usage_rollup_state WHERE id = 1);
COMMENT ON VIEW usage_live IS
	'usage_rollup plus the llm_usage rows not rolled up yet, one row each: sum it grouped by what a chart needs.';

COMMENT ON COLUMN usage_rollup.day IS 'UTC date of the calls.';
COMMENT ON COLUMN usage_rollup.user_id IS 'User the calls were made for ('''' = none).';
COMMENT ON COLUMN usage_rollup.flow IS 'Conversation flow ('''' = none).';
COMMENT ON COLUMN usage_rollup.agent_name IS 'Agent of the flow ('''' = none).';
COMMENT ON COLUMN usage_rollup.model IS 'Model name ('''' = none).';
COMMENT ON COLUMN usage_rollup.calls IS 'LLM calls summed.';
COMMENT ON COLUMN usage_rollup.prompt_tokens IS 'Sum of prompt_tokens.';
COMMENT ON COLUMN usage_rollup.completion_tokens IS 'Sum of completion_tokens.';
COMMENT ON COLUMN usage_rollup.total_tokens IS 'Sum of total_tokens.';
COMMENT ON COLUMN usage_rollup.latency_ms_max IS 'Largest latency_ms.';
COMMENT ON COLUMN usage_rollup_state.id IS 'Always 1: one row.';
COMMENT ON COLUMN usage_rollup_state.rolled_to IS 'Every llm_usage id up to this one is summed in usage_rollup.';
COMMENT ON COLUMN usage_rollup_state.marked IS 'The point usage_rollup_mark made safe and usage_rollup_apply has not reached yet; NULL when caught up.';
COMMENT ON COLUMN usage_rollup_state.rolled_at IS 'When the rollup last moved.';
COMMENT ON COLUMN usage_live.day IS 'UTC date of the calls.';
COMMENT ON COLUMN usage_live.user_id IS 'User ('''' = none).';
COMMENT ON COLUMN usage_live.flow IS 'Flow ('''' = none).';
COMMENT ON COLUMN usage_live.agent_name IS 'Agent ('''' = none).';
COMMENT ON COLUMN usage_live.model IS 'Model ('''' = none).';
COMMENT ON COLUMN usage_live.calls IS 'Calls (1 for a row of the tail).';
COMMENT ON COLUMN usage_live.errors IS 'Calls whose last attempt was not a 2xx, or got no response.';
COMMENT ON COLUMN usage_live.prompt_tokens IS 'Prompt tokens.';
COMMENT ON COLUMN usage_live.completion_tokens IS 'Completion tokens.';
COMMENT ON COLUMN usage_live.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN usage_live.latency_ms_sum IS 'Sum of latency_ms.';
COMMENT ON COLUMN usage_live.latency_ms_max IS 'Largest latency_ms.';

GRANT SELECT, INSERT, UPDATE ON usage_rollup, usage_rollup_state TO ingenious_app;
GRANT SELECT ON usage_rollup, usage_rollup_state, usage_live TO ingenious_readonly;
GRANT SELECT ON usage_live TO ingenious_app;
GRANT EXECUTE ON FUNCTION usage_rollup_mark(), usage_rollup_apply() TO ingenious_app;
GRANT SELECT ON SEQUENCE llm_usage_id_seq TO ingenious_app;
