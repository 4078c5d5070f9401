/*
 * usage.h -- the llm_usage rows of a worker's turns, from the model call to
 * the database (docs/reliability.md D2, sql/006_one_commit_turn.sql).
 *
 * Each billed (or failed) model call of a turn produces one row.  The row is
 * held by the turn (struct usage_turn), and journaled (lib/ujournal.h) so
 * that a crash of the worker does not lose it, until the turn ends:
 *   - the turn commits: its rows went into the turn's own transaction
 *     (usage_turn_json, then usage_turn_committed);
 *   - it does not (failure, memory_record false, a replayed key): the rows
 *     are written alone, unlinked (usage_turn_settle); if the database
 *     cannot take them, they stay in the journal as deferred rows and this
 *     worker's sweeper writes them later.
 * The sweeper (a thread of its own, started by usage_start) also writes the
 * rows that dead workers left in their journals.  Without a journal
 * (server.usage_journal_slots = 0, or it could not be created) or when it is
 * full, a row is committed at once, as each call's row used to be.
 */
#ifndef INGEN_WORKER_USAGE_H
#define INGEN_WORKER_USAGE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct arena;
struct db_usage;
struct worker;

/* A held row. */
struct usage_held {
	char *json;      /* db_usage_json with the transcript (malloc'd) */
	int slot;        /* its journal slot */
};

/* The rows of one turn; lives in the turn, on the flow thread's stack. */
struct usage_turn {
	pthread_mutex_t lock;     /* parallel model calls add rows at once */
	struct usage_held *held;
	size_t n, cap;
	size_t committed;         /* rows [0, committed) are in the database */
};

/* Open this worker's journal (or log why it runs without one) and start
 * the sweeper.  Returns 0; -1 with `e` set only if the thread cannot start. */
int usage_start(struct worker *w, struct err *e);

/* At the worker's exit (flow threads may still run): the journal file is
 * removed if it holds no row, else left for another worker to replay. */
void usage_stop(struct worker *w);

void usage_turn_init(struct usage_turn *ut);
void usage_turn_destroy(struct usage_turn *ut);

/*
 * Take the row of one model call: held by the turn (*id = 0) or, without
 * room in the journal, committed at once (*id = its llm_usage id, for
 * db_turn.usage_ids).  Returns 0, or -1 when the row could not be committed
 * at once (db_record_usage logged it for reconciliation).
 */
int usage_turn_hold(struct worker *w, struct usage_turn *ut,
    const struct db_usage *u, int64_t *id);

/* The held rows as a JSON array for db_turn.usage_json (NULL when none). */
const char *usage_turn_json(struct usage_turn *ut, struct arena *a);

/* The turn's transaction committed with usage_turn_json's rows. */
void usage_turn_committed(struct worker *w, struct usage_turn *ut);

/* The turn is over: write the rows that did not go in with it. */
void usage_turn_settle(struct worker *w, struct usage_turn *ut);

#endif
