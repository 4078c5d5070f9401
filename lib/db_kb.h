/*
 * db_kb.h -- the local knowledge base, as the command line and the
 * server's indexer use it: one session (lib/db_session.h) stores a file's
 * chunks, lists the sources, removes one, searches.  The request path
 * searches through the pool instead (db_kb_search and db_kb_count in
 * lib/db.h).  The schema is sql/007_knowledge_base.sql.
 *
 * Errors as lib/db_session.h: 0 / -1 with `e` set (503 when the database
 * cannot be reached or the connection is lost, 400 for an unknown
 * text-search configuration, else 500), with the server's text for the
 * operator's terminal.  Memory returned lives in the caller's arena.
 */
#ifndef INGEN_DB_KB_H
#define INGEN_DB_KB_H

#include <stddef.h>

#include "lib/db.h"
#include "lib/err.h"

struct arena;
struct db_session;

/* One file to store: its normalized source name, the SHA-256 of its bytes
 * (64 hex digits), its size and its chunks (UTF-8, in order). */
struct db_kb_file {
	const char *source;
	const char *checksum;
	long long bytes;
	const char *tsconfig;          /* kb.text_search_config */
	const char *const *chunks;
	size_t n_chunks;
};

/* What db_kb_put did. */
enum db_kb_put {
	DB_KB_ADDED = 0,               /* a new source */
	DB_KB_REPLACED,                /* its checksum or configuration changed */
	DB_KB_UNCHANGED,               /* same checksum and configuration: nothing written */
};

/*
 * Store one file in ONE transaction: lock its kb_sources row (or insert
 * it); when the stored checksum and configuration equal the file's, write
 * nothing (DB_KB_UNCHANGED); else delete its chunks, insert the new ones
 * and update the row (DB_KB_REPLACED), or insert everything for a new
 * source (DB_KB_ADDED).  Two writers of one source serialize on the row.
 * Returns 0 with *what set, or -1 (nothing of the file is then stored;
 * 400 for an unknown configuration).
 */
int db_kb_put(struct db_session *s, const struct db_kb_file *f,
    enum db_kb_put *what, struct err *e) ING_WUR;

/* A row of kb_sources. */
struct db_kb_source {
	const char *source;
	int chunks;
	long long bytes;
	const char *tsconfig;
	const char *added_at;          /* "YYYY-MM-DD HH:MM:SS", UTC */
	const char *updated_at;
};

/* Every source, by name.  Returns 0 or -1. */
int db_kb_sources(struct db_session *s, struct arena *a,
    struct db_kb_source **out, size_t *n, struct err *e) ING_WUR;

/* Remove a source and its chunks.  Returns DB_OK, DB_NOT_FOUND or
 * DB_ERROR. */
enum db_status db_kb_remove(struct db_session *s, const char *source,
    int *chunks, struct err *e) ING_WUR;

/* The search of db_kb_search (same statement, same query cap, same
 * outcomes) on a session, for `ingen kb search`. */
int db_kb_session_search(struct db_session *s, const char *tsconfig,
    const char *query, int top_k, struct arena *a, struct db_kb_hit **hits,
    struct err *e) ING_WUR;

#endif
