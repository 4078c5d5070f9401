-- 004_save_turn.sql -- ingenious_save_turn(): the whole write of one chat
-- turn in one call, so the server saves a turn in ONE round trip instead of
-- nine (BEGIN, key, thread insert, thread lock, each message, summary, usage
-- link, COMMIT).
--
-- The server (lib/db.c, db_save_turn) calls it once, as a single statement
-- outside any explicit transaction, so the statement's implicit transaction
-- is the turn's transaction: the reply reaches the server only after that
-- transaction has committed, and an error anywhere rolls back all of it.
-- What it does, in this order (the order of the statements it replaces):
--   1. with an idempotency key: drop the caller's claim (status 102, the
--      claim token as response) and insert the key with the reply; a key
--      already there (a retry won the race, or the claim was taken over)
--      writes nothing and returns the stored row: outcome 'replayed'
--      ('replay_missing' if it was purged meanwhile);
--   2. create the thread, or take its row lock and advance last_seq by the
--      number of messages (concurrent turns of one thread queue on this
--      lock, so seq stays gap-free, duplicate-free and each turn's messages
--      adjacent); a thread of another owner, when the caller enforces
--      ownership, raises SQLSTATE IG404 so NOTHING of the turn remains;
--   3. insert the messages with seq last_seq - n + 1 .. last_seq and the
--      thread's updated_at as created_at, the memory summary, and link the
--      turn's llm_usage rows to the reply message.
--
-- SECURITY INVOKER: it runs with the caller's rights (ingenious_app's DML of
-- 002_roles.sql) and resolves the tables through the caller's search_path,
-- exactly like the statements it replaces.  Only ingenious_app may call it.
-- Forward-only like every schema file; CREATE OR REPLACE and the grants make
-- running it again harmless.

CREATE OR REPLACE FUNCTION ingenious_save_turn(
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
DECLARE
	v_n        integer := cardinality(p_message_ids);
	v_released integer := 0;
	v_owner    text;
	v_last     integer;
	v_ts       timestamptz;
BEGIN
	IF v_n IS NULL OR v_n < 1
	   OR cardinality(p_roles) IS DISTINCT FROM v_n
	   OR cardinality(p_agent_names) IS DISTINCT FROM v_n
	   OR cardinality(p_contents) IS DISTINCT FROM v_n
	   OR cardinality(p_tool_calls) IS DISTINCT FROM v_n
	   OR cardinality(p_tool_call_ids) IS DISTINCT FROM v_n
	   OR cardinality(p_tool_call_functions) IS DISTINCT FROM v_n
	   OR cardinality(p_content_filter_results) IS DISTINCT FROM v_n THEN
		RAISE EXCEPTION 'the message arrays of a turn must be non-empty and of equal length'
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;

	-- 1. The key first, so a concurrent turn with the same key waits here
	-- for ours to commit and then finds it.
	IF p_idempotency_key IS NOT NULL THEN
		IF p_claim IS NOT NULL THEN
			-- our claim gives way to the reply, in this transaction
			DELETE FROM idempotency_keys
			 WHERE owner = p_owner AND key = p_idempotency_key
			   AND status = 102 AND response = p_claim;
			GET DIAGNOSTICS v_released = ROW_COUNT;
		END IF;
		INSERT INTO idempotency_keys
		       (owner, key, request_hash, status, response, thread_id, message_id)
		VALUES (p_owner, p_idempotency_key, p_request_hash, p_reply_status,
		        p_reply_body, p_thread_id, p_reply_id)
		ON CONFLICT (owner, key) DO NOTHING;
		IF NOT FOUND THEN
			IF v_released > 0 THEN
				-- cannot happen (our deleted claim blocks every other
				-- inserter), but never commit a released claim alone
				RAISE EXCEPTION 'the idempotency key was taken while its claim was released'
				    USING ERRCODE = 'serialization_failure';
			END IF;
			-- Nothing was written.  A VOLATILE function reads with a new
			-- snapshot per statement, so this sees the turn that holds the
			-- key even if it committed while the INSERT waited for it.
			SELECT k.status, k.response, k.request_hash, k.thread_id, k.message_id
			  INTO replay_status, replay_response, replay_request_hash,
			       replay_thread_id, replay_message_id
			  FROM idempotency_keys k
			 WHERE k.owner = p_owner AND k.key = p_idempotency_key;
			outcome := CASE WHEN FOUND THEN 'replayed' ELSE 'replay_missing' END;
			RETURN;
		END IF;
	END IF;

	-- 2. A new thread starts at last_seq n; an existing one is locked and
	-- advanced.  updated_at never goes backwards, so created_at follows seq.
	INSERT INTO threads (id, owner, flow, last_seq)
	VALUES (p_thread_id, p_owner, p_flow, v_n)
	ON CONFLICT (id) DO NOTHING
	RETURNING threads.owner, threads.last_seq, threads.updated_at
	     INTO v_owner, v_last, v_ts;
	new_thread := FOUND;
	IF NOT new_thread THEN
		UPDATE threads SET last_seq = threads.last_seq + v_n,
		       updated_at = greatest(threads.updated_at, now())
		 WHERE threads.id = p_thread_id
		RETURNING threads.owner, threads.last_seq, threads.updated_at
		     INTO v_owner, v_last, v_ts;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'the thread was deleted while a turn was saved to it'
			    USING ERRCODE = 'serialization_failure';
		END IF;
		IF p_enforce_owner AND v_owner <> p_owner THEN
			-- an error, so the key and the advance above are rolled back
			RAISE EXCEPTION 'the thread belongs to another owner'
			    USING ERRCODE = 'IG404';
		END IF;
	END IF;
	first_seq := v_last - v_n + 1;

	-- 3. The rows of the turn.
	INSERT INTO messages (id, thread_id, seq, user_id, role, agent_name, content,
	                      tool_calls, tool_call_id, tool_call_function,
	                      content_filter_results, created_at)
	SELECT m.id, p_thread_id, first_seq + m.ord::integer - 1, p_user_id, m.role,
	       m.agent_name, m.content, m.tool_calls, m.tool_call_id,
	       m.tool_call_function, m.content_filter_results, v_ts
	  FROM unnest(p_message_ids, p_roles, p_agent_names, p_contents, p_tool_calls,
	              p_tool_call_ids, p_tool_call_functions, p_content_filter_results)
	       WITH ORDINALITY AS m(id, role, agent_name, content, tool_calls,
	                            tool_call_id, tool_call_function,
	                            content_filter_results, ord);

	IF p_memory_summary IS NOT NULL AND p_memory_summary <> '' THEN
		INSERT INTO memory_summaries (thread_id, message_id, user_id, content, created_at)
		VALUES (p_thread_id, p_reply_id, p_user_id, p_memory_summary, v_ts);
	END IF;

	IF cardinality(p_usage_ids) > 0 THEN
		UPDATE llm_usage SET message_id = p_reply_id, thread_id = p_thread_id
		 WHERE id = ANY (p_usage_ids) AND message_id IS NULL;
	END IF;

	outcome := 'saved';
END
$fn$;

COMMENT ON FUNCTION ingenious_save_turn(text, text, boolean, text, text, uuid[], text[],
    text[], text[], jsonb[], text[], jsonb[], jsonb[], uuid, text, bigint[], text, text,
    smallint, text, text) IS
	'Writes one chat turn (lib/db.c db_save_turn): idempotency key (replacing the caller''s claim), thread creation or row lock and last_seq advance, the messages with gap-free seq, the memory summary and the usage link, all in the caller''s one transaction.  outcome saved (first_seq, new_thread), replayed (replay_*: the key was used before, nothing written) or replay_missing; a thread of another owner raises SQLSTATE IG404 when p_enforce_owner.  SECURITY INVOKER; only ingenious_app may execute it.';

-- Functions are executable by PUBLIC by default: only the application calls this one.
REVOKE ALL ON FUNCTION ingenious_save_turn(text, text, boolean, text, text, uuid[], text[],
    text[], text[], jsonb[], text[], jsonb[], jsonb[], uuid, text, bigint[], text, text,
    smallint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingenious_save_turn(text, text, boolean, text, text, uuid[], text[],
    text[], text[], jsonb[], text[], jsonb[], jsonb[], uuid, text, bigint[], text, text,
    smallint, text, text) TO ingenious_app;
