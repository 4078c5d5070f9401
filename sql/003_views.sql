-- 003_views.sql -- views for DBAs and BI tools over llm_usage.
--
-- Each view has the same measures: calls, prompt / completion / total
-- tokens, errors (calls whose last attempt was not a 2xx, or got no
-- response), and the median and 95th percentile of latency in milliseconds.
-- Days are UTC.  docs/dba.md shows how to query them.  The views run with
-- the rights of their owner, so ingenious_readonly needs SELECT on the views
-- only; the application and the SQL agent get nothing here.

CREATE VIEW usage_by_day AS
SELECT (u.created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS calls,
       sum(u.prompt_tokens) AS prompt_tokens,
       sum(u.completion_tokens) AS completion_tokens,
       sum(u.total_tokens) AS total_tokens,
       count(*) FILTER (WHERE u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299) AS errors,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p50_latency_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p95_latency_ms
  FROM llm_usage u
 GROUP BY 1;
COMMENT ON VIEW usage_by_day IS 'LLM calls, tokens, errors and latency per UTC day.';
COMMENT ON COLUMN usage_by_day.day IS 'UTC date of the calls.';

CREATE VIEW usage_by_user AS
SELECT u.user_id,
       count(*) AS calls,
       sum(u.prompt_tokens) AS prompt_tokens,
       sum(u.completion_tokens) AS completion_tokens,
       sum(u.total_tokens) AS total_tokens,
       count(*) FILTER (WHERE u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299) AS errors,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p50_latency_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p95_latency_ms,
       min(u.created_at) AS first_call,
       max(u.created_at) AS last_call
  FROM llm_usage u
 GROUP BY u.user_id;
COMMENT ON VIEW usage_by_user IS 'LLM calls, tokens, errors and latency per user, all time (filter llm_usage by created_at for a period).';
COMMENT ON COLUMN usage_by_user.user_id IS 'User the calls were made for.';
COMMENT ON COLUMN usage_by_user.first_call IS 'First call of the user.';
COMMENT ON COLUMN usage_by_user.last_call IS 'Last call of the user.';

CREATE VIEW usage_by_flow AS
SELECT u.flow,
       count(*) AS calls,
       sum(u.prompt_tokens) AS prompt_tokens,
       sum(u.completion_tokens) AS completion_tokens,
       sum(u.total_tokens) AS total_tokens,
       count(*) FILTER (WHERE u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299) AS errors,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p50_latency_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p95_latency_ms,
       count(DISTINCT u.thread_id) AS threads
  FROM llm_usage u
 GROUP BY u.flow;
COMMENT ON VIEW usage_by_flow IS 'LLM calls, tokens, errors and latency per conversation flow.';
COMMENT ON COLUMN usage_by_flow.flow IS 'Conversation flow.';
COMMENT ON COLUMN usage_by_flow.threads IS 'Distinct threads that made calls.';

CREATE VIEW usage_by_model AS
SELECT u.model,
       u.deployment,
       count(*) AS calls,
       sum(u.prompt_tokens) AS prompt_tokens,
       sum(u.completion_tokens) AS completion_tokens,
       sum(u.total_tokens) AS total_tokens,
       count(*) FILTER (WHERE u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299) AS errors,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p50_latency_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p95_latency_ms,
       sum(u.retries) AS retries
  FROM llm_usage u
 GROUP BY u.model, u.deployment;
COMMENT ON VIEW usage_by_model IS 'LLM calls, tokens, errors, retries and latency per model and deployment.';
COMMENT ON COLUMN usage_by_model.model IS 'Model name.';
COMMENT ON COLUMN usage_by_model.deployment IS 'Azure OpenAI deployment.';
COMMENT ON COLUMN usage_by_model.retries IS 'Retried attempts (429, 5xx, connection errors).';

CREATE VIEW usage_by_thread AS
SELECT u.thread_id,
       t.owner,
       t.flow,
       (SELECT count(*) FROM messages m WHERE m.thread_id = u.thread_id) AS messages,
       count(*) AS calls,
       sum(u.prompt_tokens) AS prompt_tokens,
       sum(u.completion_tokens) AS completion_tokens,
       sum(u.total_tokens) AS total_tokens,
       count(*) FILTER (WHERE u.http_status IS NULL OR u.http_status NOT BETWEEN 200 AND 299) AS errors,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p50_latency_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY u.latency_ms)::numeric, 1) AS p95_latency_ms,
       count(*) FILTER (WHERE u.message_id IS NULL) AS unlinked_calls,
       min(u.created_at) AS first_call,
       max(u.created_at) AS last_call
  FROM llm_usage u
  LEFT JOIN threads t ON t.id = u.thread_id
 WHERE u.thread_id IS NOT NULL
 GROUP BY u.thread_id, t.owner, t.flow;
COMMENT ON VIEW usage_by_thread IS 'LLM calls, tokens, errors and latency per thread; owner and flow are NULL for a thread whose turns all failed.';
COMMENT ON COLUMN usage_by_thread.thread_id IS 'Thread id.';
COMMENT ON COLUMN usage_by_thread.owner IS 'Owner of the thread.';
COMMENT ON COLUMN usage_by_thread.flow IS 'Flow of the thread.';
COMMENT ON COLUMN usage_by_thread.messages IS 'Messages stored in the thread.';
COMMENT ON COLUMN usage_by_thread.unlinked_calls IS 'Calls of turns that failed (billed, no message stored).';
COMMENT ON COLUMN usage_by_thread.first_call IS 'First call in the thread.';
COMMENT ON COLUMN usage_by_thread.last_call IS 'Last call in the thread.';

-- The measures mean the same in every view.
DO $measures$
DECLARE
	v text;
BEGIN
	FOREACH v IN ARRAY ARRAY['usage_by_day', 'usage_by_user', 'usage_by_flow',
	    'usage_by_model', 'usage_by_thread'] LOOP
		EXECUTE format('COMMENT ON COLUMN %I.calls IS %L', v, 'LLM calls (rows of llm_usage).');
		EXECUTE format('COMMENT ON COLUMN %I.prompt_tokens IS %L', v, 'Sum of prompt tokens.');
		EXECUTE format('COMMENT ON COLUMN %I.completion_tokens IS %L', v, 'Sum of completion tokens.');
		EXECUTE format('COMMENT ON COLUMN %I.total_tokens IS %L', v, 'Sum of total tokens.');
		EXECUTE format('COMMENT ON COLUMN %I.errors IS %L', v,
		    'Calls whose last attempt got no response or a non-2xx status.');
		EXECUTE format('COMMENT ON COLUMN %I.p50_latency_ms IS %L', v,
		    'Median latency in milliseconds (interpolated).');
		EXECUTE format('COMMENT ON COLUMN %I.p95_latency_ms IS %L', v,
		    '95th percentile latency in milliseconds (interpolated).');
	END LOOP;
END
$measures$;

GRANT SELECT ON usage_by_day, usage_by_user, usage_by_flow, usage_by_model, usage_by_thread
    TO ingenious_readonly;
