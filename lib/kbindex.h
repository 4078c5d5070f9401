/*
 * kbindex.h -- filling the local knowledge base from files: read each
 * file, refuse what is not text, cut it (lib/kb.h) and store it in one
 * transaction (lib/db_kb.h).  The one code path of `ingen kb add FILE|DIR`
 * and of the server's indexing of kb.directory at start and on SIGHUP
 * (kbindex_server_main, run in a short-lived child of the master).
 *
 * Blocking: it reads files and talks to PostgreSQL synchronously.  Never
 * call it from an event loop or from the master itself.
 */
#ifndef INGEN_KBINDEX_H
#define INGEN_KBINDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

struct config;
struct db_session;

/* The largest file indexed; a larger one is refused. */
#define KBINDEX_FILE_MAX (64L * 1024 * 1024)

/* What happened to one path. */
enum kbindex_event {
	KBINDEX_ADDED = 0,         /* a new source: `chunks` stored */
	KBINDEX_REPLACED,          /* a changed file: its chunks replaced */
	KBINDEX_UNCHANGED,         /* same bytes and configuration: nothing written */
	KBINDEX_SKIPPED,           /* in a directory, not .md or .txt (or hidden) */
	KBINDEX_REFUSED,           /* binary, not UTF-8, unreadable, too large,
	                            * not .md/.txt when named: `why` says which */
};

/* Counts of one run. */
struct kbindex_stats {
	int added, replaced, unchanged, skipped, refused;
	long chunks;               /* stored by this run */
};

/* Told about every path: source (normalized), chunks (ADDED, REPLACED),
 * why (SKIPPED, REFUSED: "not UTF-8: invalid byte sequence at byte offset
 * 12"). */
typedef void (*kbindex_report_fn)(void *arg, enum kbindex_event ev,
    const char *source, size_t chunks, const char *why);

/* What to index with. */
struct kbindex_opts {
	const char *tsconfig;      /* kb.text_search_config */
	int chunk_max_chars;       /* kb.chunk_max_chars */
	kbindex_report_fn report;
	void *arg;
};

/*
 * Index each path: a file as it is (refused unless .md or .txt), a
 * directory's .md and .txt files recursively, in byte order of their paths,
 * others skipped (entries whose names begin with '.' and symbolic links to
 * directories are skipped too).  A file's source is its path as given,
 * normalized (kb_source_normalize).  A refused file is reported and
 * counted and the run goes on; a database error stops it.  Returns 0, or
 * -1 with `e` set when the database failed (what was committed before
 * stays).
 */
int kbindex_paths(struct db_session *s, const char *const *paths, size_t n,
    const struct kbindex_opts *o, struct kbindex_stats *st, struct err *e) ING_WUR;

/*
 * The directory the server indexes: kb.directory, or
 * <chat_history.memory_path>/knowledge_base when it is "".  Heap; the
 * caller frees.
 */
char *kbindex_server_dir(const struct config *cfg);

/*
 * The server's indexing of kbindex_server_dir(cfg), as a process of its
 * own (forked by the master at start and on each SIGHUP): a missing
 * directory is one info line; otherwise it connects as the server's role
 * (dburl_resolve DBURL_ROLE_APP), indexes the directory like `ingen kb add
 * DIR`, logs one line per added, replaced or refused file and a summary,
 * and returns the exit code: 0, or 1 when the database failed (logged).
 */
int kbindex_server_main(const struct config *cfg);

#endif
