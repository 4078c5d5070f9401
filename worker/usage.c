/*
 * usage.c -- a worker's llm_usage rows between the model call and the
 * database (see usage.h): the turn's held rows, the journal that covers a
 * crash, and the sweeper thread that writes deferred rows and dead workers'
 * journals.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/ujournal.h"
#include "lib/xmalloc.h"
#include "worker/usage.h"
#include "worker/worker.h"

#define USAGE_SWEEP_FIRST_MS  1000    /* the first look, soon after start */
#define USAGE_SWEEP_MS        10000   /* then every ten seconds */
#define USAGE_REPLAY_BATCH    200     /* rows per statement when replaying */
#define USAGE_DEFERRED_MAX    1000    /* deferred rows tried per sweep */
#define USAGE_SWEEPER_STACK   (256 * 1024)

static int64_t
usage_realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the turn's rows ---------------------------------------------------- */

void
usage_turn_init(struct usage_turn *ut)
{
	memset(ut, 0, sizeof(*ut));
	pthread_mutex_init(&ut->lock, NULL);
}

void
usage_turn_destroy(struct usage_turn *ut)
{
	size_t i;

	for (i = 0; i < ut->n; i++)
		free(ut->held[i].json);
	free(ut->held);
	pthread_mutex_destroy(&ut->lock);
	memset(ut, 0, sizeof(*ut));
}

int
usage_turn_hold(struct worker *w, struct usage_turn *ut,
    const struct db_usage *u, int64_t *id)
{
	struct db_usage row = *u;
	struct buf b = BUF_INIT;
	struct err e;
	char *json;
	int slot = -1;

	*id = 0;
	row.finished_us = usage_realtime_us();
	if (w->usage_journal != NULL) {
		/* the journal's copy has no transcript: it is for billing */
		db_usage_json(&b, &row, false);
		slot = uj_put(w->usage_journal, buf_rptr(&b), buf_rlen(&b));
		if (slot >= 0 && row.transcript != NULL) {
			buf_reset(&b);
			db_usage_json(&b, &row, true);
		}
	}
	if (slot < 0) {
		/* no journal, or no room in it: commit the row now, as before 006 */
		buf_free(&b);
		err_clear(&e);
		return db_record_usage(w->db, u, id, &e);
	}
	json = xstrdup(buf_cstr(&b));
	buf_free(&b);
	pthread_mutex_lock(&ut->lock);
	if (ut->n == ut->cap) {
		ut->cap = ut->cap ? ut->cap * 2 : 4;
		ut->held = xrealloc(ut->held, ut->cap * sizeof(*ut->held));
	}
	ut->held[ut->n].json = json;
	ut->held[ut->n].slot = slot;
	ut->n++;
	pthread_mutex_unlock(&ut->lock);
	return 0;
}

/* "[row,row,...]" of rows [from, n) into the arena; NULL when none. */
static char *
usage_rows_json(struct usage_turn *ut, size_t from, struct arena *a)
{
	struct buf b = BUF_INIT;
	char *out;
	size_t i;

	if (from >= ut->n)
		return NULL;
	buf_putc(&b, '[');
	for (i = from; i < ut->n; i++) {
		if (i > from)
			buf_putc(&b, ',');
		buf_puts(&b, ut->held[i].json);
	}
	buf_putc(&b, ']');
	out = a != NULL ? arena_strdup(a, buf_cstr(&b)) : xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

const char *
usage_turn_json(struct usage_turn *ut, struct arena *a)
{
	const char *out;

	pthread_mutex_lock(&ut->lock);
	out = usage_rows_json(ut, ut->committed, a);
	pthread_mutex_unlock(&ut->lock);
	return out;
}

void
usage_turn_committed(struct worker *w, struct usage_turn *ut)
{
	size_t i;

	pthread_mutex_lock(&ut->lock);
	for (i = ut->committed; i < ut->n; i++)
		uj_drop(w->usage_journal, ut->held[i].slot);
	ut->committed = ut->n;
	pthread_mutex_unlock(&ut->lock);
}

void
usage_turn_settle(struct worker *w, struct usage_turn *ut)
{
	struct err e;
	char *json;
	size_t i, n;
	int written = 0;

	pthread_mutex_lock(&ut->lock);
	n = ut->n - ut->committed;
	json = usage_rows_json(ut, ut->committed, NULL);
	pthread_mutex_unlock(&ut->lock);
	if (json == NULL)
		return;
	err_clear(&e);
	if (db_record_usage_json(w->db, json, &written, &e) == 0) {
		usage_turn_committed(w, ut);
	} else {
		/* in the journal still: the sweeper tries again */
		pthread_mutex_lock(&ut->lock);
		for (i = ut->committed; i < ut->n; i++)
			uj_defer(w->usage_journal, ut->held[i].slot);
		ut->committed = ut->n;
		pthread_mutex_unlock(&ut->lock);
		log_warn("recording llm usage", "%zu llm usage rows deferred (%s): "
		    "written when the database takes them", n, e.msg);
	}
	free(json);
}

/* ---- the sweeper -------------------------------------------------------- */

/* A journal's records as one JSON array, without any unreadable one. */
static char *
usage_batch_json(const char *const *recs, const size_t *lens, size_t n,
    size_t *kept)
{
	struct buf b = BUF_INIT;
	struct err e;
	char *out;
	size_t i;

	*kept = 0;
	buf_putc(&b, '[');
	for (i = 0; i < n; i++) {
		err_clear(&e);
		if (lens[i] < 2 || recs[i][0] != '{' ||
		    json_validate(recs[i], lens[i], 4, &e) != 0) {
			log_error("replaying usage journals", "dropped an unreadable "
			    "llm usage record of %zu bytes", lens[i]);
			continue;
		}
		if (*kept > 0)
			buf_putc(&b, ',');
		buf_append(&b, recs[i], lens[i]);
		(*kept)++;
	}
	buf_putc(&b, ']');
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* uj_recover's callback: one batch of a dead worker's rows. */
static int
usage_replay(void *arg, const char *const *recs, const size_t *lens, size_t n)
{
	struct worker *w = arg;
	struct err e;
	size_t kept;
	char *json = usage_batch_json(recs, lens, n, &kept);
	int written = 0, rc = 0;

	if (kept > 0) {
		err_clear(&e);
		rc = db_record_usage_json(w->db, json, &written, &e);
		if (rc != 0)
			log_warn("replaying usage journals", "could not write %zu llm "
			    "usage rows left by a stopped worker (%s): trying again later",
			    kept, e.msg);
		else
			log_info("replaying usage journals", "wrote %d of %zu llm usage "
			    "rows left by a stopped worker (the others were stored already)",
			    written, kept);
	}
	free(json);
	return rc;
}

/* uj_deferred's callback: one of this worker's deferred rows. */
static int
usage_write_deferred(void *arg, const char *rec, size_t len)
{
	struct worker *w = arg;
	const char *recs[1] = { rec };
	const size_t lens[1] = { len };
	struct err e;
	size_t kept;
	char *json = usage_batch_json(recs, lens, 1, &kept);
	int rc = 0;

	if (kept > 0) {
		err_clear(&e);
		rc = db_record_usage_json(w->db, json, NULL, &e);
	}
	free(json);
	return rc;
}

static void *
usage_sweeper(void *arg)
{
	struct worker *w = arg;
	struct timespec ts;
	struct err e;
	size_t freed;
	int64_t ms = USAGE_SWEEP_FIRST_MS;

	for (;;) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		ms = USAGE_SWEEP_MS;
		err_clear(&e);
		if (uj_recover(w->usage_dir, w->usage_journal, USAGE_REPLAY_BATCH,
		    usage_replay, w, &e) < 0)
			log_warn("replaying usage journals", "%s", e.msg);
		if (w->usage_journal == NULL)
			continue;
		freed = uj_deferred(w->usage_journal, USAGE_DEFERRED_MAX,
		    usage_write_deferred, w);
		if (freed > 0)
			log_info("recording llm usage", "wrote %zu deferred llm usage rows",
			    freed);
	}
	return NULL;
}

int
usage_start(struct worker *w, struct err *e)
{
	const char *dir = w->cfg->server.state_dir;
	size_t dl = dir != NULL ? strlen(dir) : 0;
	pthread_attr_t attr;
	pthread_t t;
	struct err je;
	int rc;

	w->usage_journal = NULL;
	if (dl == 0) {
		log_warn("starting worker", "server.state_dir is empty: no usage journal, "
		    "each llm call's row is committed at once");
		return 0;
	}
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	w->usage_dir = xasprintf("%.*s/%s", (int)dl, dir, UJ_DIR_NAME);
	if (w->cfg->server.usage_journal_slots > 0) {
		err_clear(&je);
		w->usage_journal = uj_open(w->usage_dir,
		    (size_t)w->cfg->server.usage_journal_slots, &je);
		if (w->usage_journal == NULL)
			log_warn("starting worker", "%s: each llm call's row is committed "
			    "at once", je.msg);
	}
	/* the sweeper runs even without a journal of our own: dead workers'
	 * journals still need writing */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, USAGE_SWEEPER_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, usage_sweeper, w);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return err_set(e, 500, "could not start the usage sweeper: %s",
		    strerror(rc));
	return 0;
}

void
usage_stop(struct worker *w)
{
	if (w->usage_journal != NULL)
		uj_release(w->usage_journal);
}
