-- 005_prompts.sql -- which prompt produced which answer (issue 10): every
-- model call whose system prompt was rendered from a template records the
-- template's revision, file and content hash, and the call's transcript
-- (what was sent, what came back), in its llm_usage row.  Forward-only,
-- applied in one transaction by `ingen db migrate`.

ALTER TABLE llm_usage
	ADD COLUMN prompt_revision text,
	ADD COLUMN prompt_file     text,
	ADD COLUMN prompt_hash     text CHECK (prompt_hash ~ '^[0-9a-f]{64}$'),
	ADD COLUMN transcript      jsonb;

COMMENT ON COLUMN llm_usage.prompt_revision IS
	'Revision id of the prompt template the call''s system prompt was rendered from (templates/prompts/<revision>/); NULL when the flow gave no template.';
COMMENT ON COLUMN llm_usage.prompt_file IS
	'File name of that template within its revision.';
COMMENT ON COLUMN llm_usage.prompt_hash IS
	'SHA-256 (hex) of the template''s content as rendered: the version kept under .versions/<file>/<hash> of the revision folder.';
COMMENT ON COLUMN llm_usage.transcript IS
	'For a templated call''s billed attempt: {"messages": [{"role","content",...}], "response": text, "tool_calls": [...]} -- what the agent was sent and answered.';

CREATE INDEX llm_usage_prompt_hash_idx ON llm_usage (prompt_hash) WHERE prompt_hash IS NOT NULL;
COMMENT ON INDEX llm_usage_prompt_hash_idx IS
	'Which answers a given template version produced (partial: templated calls only).';
