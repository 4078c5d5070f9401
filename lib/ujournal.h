/*
 * ujournal.h -- the usage journal: a worker's llm_usage rows that are not in
 * PostgreSQL yet, kept in a file that outlives the worker.
 *
 * A model call's row waits for its turn's one transaction
 * (sql/006_one_commit_turn.sql); meanwhile it sits in a slot of a file under
 * <server.state_dir>/usage-journal/, mapped MAP_SHARED.  A store into the
 * mapping is in the kernel's page cache at once, so a worker that dies (a
 * plugin's SIGSEGV, SIGKILL, the OOM killer) leaves its rows behind without
 * a write(2) or fsync(2) on the turn's path; only a crash of the machine
 * loses them, as it loses the turns in flight.  The owner holds
 * flock(LOCK_EX) on its file for its whole life; a file that nobody holds is
 * an orphan, and uj_recover hands its rows to a replay callback, then
 * removes it.
 *
 * A record is an opaque byte string of 1..UJ_RECORD_MAX bytes (the server
 * stores the JSON of db_usage_json).  A slot is FREE, HELD (its turn is in
 * flight) or DEFERRED (its turn ended but the row could not be written; the
 * owner tries again, see uj_deferred).  A slot's bytes are written before its
 * state, so a crash in the middle of uj_put leaves a FREE slot, never a torn
 * record.  Every function is thread-safe.
 */
#ifndef INGEN_UJOURNAL_H
#define INGEN_UJOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define UJ_SLOT_SIZE   2048
#define UJ_RECORD_MAX  (UJ_SLOT_SIZE - 8)
#define UJ_MAX_SLOTS   1048576
#define UJ_DIR_NAME    "usage-journal"

struct uj;

/*
 * Create this process's journal of `slots` slots (1..UJ_MAX_SLOTS) in
 * `dir` (created, mode 0700, with its parent, if missing): a file
 * usage-<pid>-<random>.uj of slots * UJ_SLOT_SIZE bytes plus a header, its
 * blocks reserved with posix_fallocate (so a full disk fails here, never as
 * SIGBUS on a store later), locked, mapped.  Returns NULL with `e` set.
 */
struct uj *uj_open(const char *dir, size_t slots, struct err *e);

/* Hold a record: its slot number, or -1 when every slot is taken or the
 * record is empty or longer than UJ_RECORD_MAX (the caller then writes the
 * row at once). */
int uj_put(struct uj *j, const void *rec, size_t len);

/* The row of `slot` is in the database (or given up): free the slot. */
void uj_drop(struct uj *j, int slot);

/* The row of `slot` could not be written: keep it for uj_deferred. */
void uj_defer(struct uj *j, int slot);

/*
 * Call fn for each DEFERRED slot (at most `max` of them, oldest deferral
 * first), outside the journal's lock; fn returns 0 when the row is written
 * (the slot is then freed) and -1 to keep it.  Returns how many were freed.
 */
size_t uj_deferred(struct uj *j, size_t max,
    int (*fn)(void *arg, const char *rec, size_t len), void *arg);

/* Slots in use (HELD or DEFERRED), and DEFERRED ones, for /metrics. */
void uj_counts(struct uj *j, size_t *in_use, size_t *deferred);

/* Unmap and unlock; the file is removed when no slot is in use, else left
 * for another process's uj_recover.  j may be NULL. */
void uj_close(struct uj *j);

/* At the exit of a process whose threads may still use the journal: remove
 * the file when no slot is in use, else leave it (logged); the mapping and
 * the lock go with the process.  j may be NULL. */
void uj_release(struct uj *j);

/*
 * Replay the orphans of `dir`: every usage-*.uj that no live process holds
 * (`self`, this process's own journal, may be NULL, is skipped).  For each,
 * replay(arg, recs, lens, n) receives its HELD and DEFERRED records in
 * batches of at most `batch`; when every batch returned 0 the file is
 * removed, else it is left for the next call.  A file that is not a journal
 * (bad header, wrong size) is renamed to *.bad and reported.  Returns the
 * number of records replayed, or -1 with `e` set when `dir` cannot be read
 * (a missing dir is 0).
 */
long uj_recover(const char *dir, const struct uj *self, size_t batch,
    int (*replay)(void *arg, const char *const *recs, const size_t *lens,
        size_t n),
    void *arg, struct err *e);

#endif
