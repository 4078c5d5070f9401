-- 007_knowledge_base.sql -- the local knowledge base (issue 11): sources
-- (one row per file given to `ingen kb add`, or found in kb.directory by
-- the server) and their chunks, full-text indexed with the text-search
-- configuration of kb.text_search_config.  Forward-only, applied in one
-- transaction by `ingen db migrate`.
--
-- It replaces kb_documents of 001_schema.sql, which nothing ever wrote (no
-- command loaded it) and which fixed the configuration to 'english' inside
-- its generated column: the table is dropped, not migrated.  A database
-- where a DBA loaded rows into it by hand keeps them nowhere; load the
-- files again with `ingen kb add`.
--
-- Configuration.  Each chunk stores the configuration it was indexed with
-- (kb_chunks.ts_config) and its tsvector is generated from (ts_config,
-- content).  A search names the configuration of the caller's
-- kb.text_search_config and looks only at chunks indexed with it, so a
-- query is never parsed with one dictionary and matched against lexemes of
-- another.  When the key changes, `ingen kb add` (and the server's indexing
-- of kb.directory) re-indexes every file it is given: a file whose bytes
-- are unchanged but whose stored configuration differs counts as changed.
--
-- Who writes: `ingen kb` connects as the owner role (like `ingen db
-- migrate`); the server's indexing of kb.directory at start and on SIGHUP
-- runs in a child of the master connected as ingenious_app, which therefore
-- gets INSERT, UPDATE and DELETE on both tables below (no DDL, nothing on
-- other tables).  The request path only reads (ingenious_kb_search).

DROP TABLE kb_documents;

CREATE TABLE kb_sources (
	id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	source      text        NOT NULL UNIQUE CHECK (char_length(source) BETWEEN 1 AND 4096),
	checksum    text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
	bytes       bigint      NOT NULL CHECK (bytes >= 0),
	chunks      integer     NOT NULL CHECK (chunks >= 0),
	ts_config   regconfig   NOT NULL,
	added_at    timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE kb_sources IS
	'Files of the local knowledge base (ingen kb add, and the server''s indexing of kb.directory): one row per file, its chunks in kb_chunks.';
COMMENT ON COLUMN kb_sources.id IS 'Row id.';
COMMENT ON COLUMN kb_sources.source IS 'Path of the file as given to ingen kb add (or found under kb.directory), normalized: no ./ parts, no repeated or trailing slashes.';
COMMENT ON COLUMN kb_sources.checksum IS 'SHA-256 (hex) of the file''s bytes when it was indexed: an unchanged file is not indexed again.';
COMMENT ON COLUMN kb_sources.bytes IS 'Size of the file in bytes.';
COMMENT ON COLUMN kb_sources.chunks IS 'Number of its chunks in kb_chunks (0 for an empty file).';
COMMENT ON COLUMN kb_sources.ts_config IS 'Text-search configuration (kb.text_search_config) its chunks were indexed with.';
COMMENT ON COLUMN kb_sources.added_at IS 'When the file was first indexed.';
COMMENT ON COLUMN kb_sources.updated_at IS 'When its chunks were last replaced (equals added_at until the file changes).';

CREATE TABLE kb_chunks (
	source_id   bigint      NOT NULL REFERENCES kb_sources (id) ON DELETE CASCADE,
	position    integer     NOT NULL CHECK (position >= 0),
	content     text        NOT NULL,
	ts_config   regconfig   NOT NULL,
	tsv         tsvector    GENERATED ALWAYS AS (to_tsvector(ts_config, content)) STORED,
	PRIMARY KEY (source_id, position)
);
COMMENT ON TABLE kb_chunks IS
	'Chunks of the files of kb_sources (paragraphs, long ones split at sentence ends: docs/knowledge-base.md), full-text indexed; replaced all together when their file changes.';
COMMENT ON COLUMN kb_chunks.source_id IS 'The file (kb_sources.id); its chunks go with it.';
COMMENT ON COLUMN kb_chunks.position IS 'Position of the chunk in its file, 0-based.';
COMMENT ON COLUMN kb_chunks.content IS 'Chunk text (UTF-8, trimmed, at most kb.chunk_max_chars characters where the text allows).';
COMMENT ON COLUMN kb_chunks.ts_config IS 'Text-search configuration of tsv; searches look only at chunks of their own configuration.';
COMMENT ON COLUMN kb_chunks.tsv IS 'to_tsvector(ts_config, content), generated; searched with websearch_to_tsquery and ranked with ts_rank_cd.';

CREATE INDEX kb_chunks_tsv_idx ON kb_chunks USING gin (tsv);
COMMENT ON INDEX kb_chunks_tsv_idx IS 'Full-text search over chunks.';

-- The one search of the knowledge base, for the server (lib/db_kb.c
-- db_kb_search) and `ingen kb search` alike.  The best p_limit chunks
-- first, by ts_rank_cd; ts_headline runs only on those.  A query without
-- lexemes (stop words, punctuation, tsquery syntax) gives no rows; the
-- SET clause keeps its "only stop words" NOTICE off the client's
-- connection.  Unknown configurations raise 42704 (undefined_object).
CREATE FUNCTION ingenious_kb_search(p_config regconfig, p_query text, p_limit integer)
RETURNS TABLE (source text, chunk integer, rank real, snippet text, content text)
LANGUAGE sql STABLE
SET client_min_messages = warning
AS $fn$
	-- The chunks with every word (websearch_to_tsquery's AND) first; only
	-- when they are fewer than p_limit, the chunks with some of the words
	-- (an OR of the same lexemes; a query with a NOT stays as written), so
	-- a question phrased in other words than the text still finds its
	-- passage.  That second group is ranked with ts_rank, not ts_rank_cd:
	-- cover density over an OR of words costs ~5 us a chunk against ~0.5
	-- (bench/README.md), and this group can be large.  q is MATERIALIZED:
	-- computed once, not once per row; the
	-- second branch of the UNION ALL never runs when the first filled the
	-- LIMIT.
	WITH q AS MATERIALIZED (
		SELECT w.tsq,
		       CASE WHEN strpos(w.tsq::text, '!') = 0
		            THEN replace(w.tsq::text, ' & ', ' | ')::tsquery
		            ELSE w.tsq END AS anyq
		  FROM (SELECT websearch_to_tsquery(p_config, p_query) AS tsq) w
		 WHERE numnode(w.tsq) > 0
	), best AS (
		SELECT * FROM (
			(SELECT c.source_id, c.position, c.content, 0 AS tier,
			        ts_rank_cd(c.tsv, q.tsq) AS rank
			   FROM q, kb_chunks c
			  WHERE c.tsv @@ q.tsq AND c.ts_config = p_config
			  ORDER BY rank DESC, c.source_id, c.position
			  LIMIT greatest(p_limit, 0))
			UNION ALL
			(SELECT c.source_id, c.position, c.content, 1 AS tier,
			        ts_rank(c.tsv, q.anyq) AS rank
			   FROM q, kb_chunks c
			  WHERE c.tsv @@ q.anyq AND NOT (c.tsv @@ q.tsq) AND c.ts_config = p_config
			  ORDER BY rank DESC, c.source_id, c.position
			  LIMIT greatest(p_limit, 0))
		) u
		 LIMIT greatest(p_limit, 0)
	)
	SELECT s.source, b.position, b.rank,
	       ts_headline(p_config, b.content, q.anyq,
	           'StartSel="", StopSel="", MaxWords=35, MinWords=15, MaxFragments=2, FragmentDelimiter=" ... "'),
	       b.content
	  FROM best b JOIN kb_sources s ON s.id = b.source_id, q
	 ORDER BY b.tier, b.rank DESC, s.source, b.position
$fn$;
COMMENT ON FUNCTION ingenious_kb_search(regconfig, text, integer) IS
	'Search the local knowledge base over the chunks indexed with p_config: the chunks with every word of websearch_to_tsquery(p_config, p_query) first (best first by ts_rank_cd), then, when they are fewer than p_limit, those with some of the words (by ts_rank); at most p_limit rows, with a plain-text ts_headline snippet.';

GRANT SELECT, INSERT, UPDATE, DELETE ON kb_sources, kb_chunks TO ingenious_app;
GRANT SELECT ON kb_sources, kb_chunks TO ingenious_readonly;
REVOKE ALL ON FUNCTION ingenious_kb_search(regconfig, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingenious_kb_search(regconfig, text, integer)
    TO ingenious_app, ingenious_readonly;
