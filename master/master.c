/*
 * master.c -- the supervisor (nginx master cycle, the PostgreSQL postmaster).
 *
 * It owns the process table, the signal flags, the listening socket and the
 * configuration generations.  Signal handlers only set flags; the loop does
 * the work, one process_* function per signal.  It never opens a database
 * or HTTP client handle, never reads a request and never runs a flow.
 *
 * A generation is everything a worker is forked with: the configuration,
 * the JWT key ring and password hash, the flow registry, and (until it
 * serves) its prepared log destination.  Reload is build-new, validate,
 * swap (nginx cycles, PgBouncer load_config): the new generation is built
 * and checked completely; on any problem the old one keeps serving.  Its
 * workers start next to the old ones, and only once they accept does it
 * become the current generation, and the old workers are told to retire
 * (SIGHUP: drain politely).  Until then the old generation stays whole, so a
 * worker of it that dies is replaced with its own configuration; when the
 * new generation cannot serve (no worker ready in time, or a fatal exit) it
 * is abandoned and the old one never noticed.
 *
 * The knowledge-base directory (kb.directory) is indexed at start and on
 * each SIGHUP by a short-lived child (master_kb_index), never by the
 * master: the child closes the listening socket, connects to PostgreSQL
 * after the fork as the server's role, runs lib/kbindex.c (the code of
 * `ingen kb add DIR`) and exits; the master reaps it like a worker.  One
 * runs at a time; a SIGHUP during a run asks for one more run after it.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flows/registry.h"
#include "lib/clock.h"
#include "lib/crypto.h"
#include "lib/kbindex.h"
#include "lib/keys.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/runfile.h"
#include "lib/scoreboard.h"
#include "lib/throttle.h"
#include "lib/xmalloc.h"
#include "master/listen.h"
#include "master/master.h"
#include "master/notify.h"

#define MASTER_TICK_MS          100
#define MASTER_CRASH_WINDOW_MS  10000   /* docs/reliability.md P1: 5 crashes in 10 s */
#define MASTER_CRASH_LIMIT      5
#define MASTER_BACKOFF_FIRST_MS 1000
#define MASTER_BACKOFF_MAX_MS   30000
#define MASTER_READY_WAIT_MS    10000   /* new generation must come up in this */

static volatile sig_atomic_t sig_child, sig_hup, sig_term, sig_quit, sig_usr1;

struct master_worker {
	pid_t pid;                      /* 0 = free entry */
	int slot;
	uint32_t generation;
	bool retiring;                  /* told to drain (old generation) */
	bool killed_by_watchdog;
	int64_t started_ms;
};

/* What the workers of one generation are forked with; immutable once built
 * (the log target only moves from prepared to committed). */
struct master_gen {
	uint32_t id;
	struct config *cfg;
	struct keys keys;               /* JWT ring */
	char auth_hash[CRYPTO_PASSWORD_HASH_MAX];  /* of the configured password */
	struct registry *flows;
	struct log_target log;          /* prepared on reload, committed once serving */
	bool log_pending;               /* `log` still waits for its commit */
};

struct master {
	struct master_gen *cur;         /* the generation serving */
	struct master_gen *next;        /* starting after SIGHUP, else NULL */
	uint32_t last_generation;       /* ids are never reused */
	const struct config_overrides *ov;
	int listen_fd;
	char listen_desc[96];
	struct scoreboard *sb;
	struct throttle *throttle;      /* failed logins, shared with every worker */
	struct master_worker w[SB_MAX_SLOTS];
	int64_t crashes[MASTER_CRASH_LIMIT + 1];  /* ring of recent crash times */
	int crash_next;
	int64_t backoff_ms;
	int64_t respawn_not_before;
	int64_t reload_started_ms;      /* when `next` was built */
	bool started;                   /* first generation reported ready */
	bool stopping;
	bool stop_graceful;
	int64_t stop_deadline;
	int exit_code;
	int64_t last_watchdog_ping;
	pid_t kb_pid;                   /* the knowledge-base indexer, 0 = none */
	bool kb_again;                  /* a SIGHUP came while it ran */
};

static void
master_signal(int signo)
{
	int saved = errno;

	switch (signo) {
	case SIGCHLD: sig_child = 1; break;
	case SIGHUP: sig_hup = 1; break;
	case SIGTERM:
	case SIGINT: sig_term++; break;
	case SIGQUIT: sig_quit = 1; break;
	case SIGUSR1: sig_usr1 = 1; break;
	}
	errno = saved;
}

static void
master_install_signals(sigset_t *blocked, sigset_t *waitmask)
{
	struct sigaction sa;
	int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1 };
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(blocked);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(blocked, sigs[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	/* signals are delivered only inside ppoll(), so the loop never races */
	sigprocmask(SIG_BLOCK, blocked, waitmask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigdelset(waitmask, sigs[i]);
}

/* ---- the process table ------------------------------------------------ */

static int
master_count(const struct master *m, uint32_t generation, bool include_retiring)
{
	int i, n = 0;

	for (i = 0; i < SB_MAX_SLOTS; i++)
		if (m->w[i].pid != 0 && m->w[i].generation == generation &&
		    (include_retiring || !m->w[i].retiring))
			n++;
	return n;
}

static int
master_live(const struct master *m)
{
	int i, n = 0;

	for (i = 0; i < SB_MAX_SLOTS; i++)
		if (m->w[i].pid != 0)
			n++;
	return n;
}

/* Is the worker of this table entry one that its generation still wants? */
static bool
master_wanted(const struct master *m, const struct master_worker *mw)
{
	return !mw->retiring && (mw->generation == m->cur->id ||
	    (m->next != NULL && mw->generation == m->next->id));
}

static int
master_spawn(struct master *m, struct master_gen *g)
{
	struct proc_worker_start ws;
	pid_t pid;
	int slot, code;

	slot = sb_slot_claim(m->sb, -1, g->id);
	if (slot < 0) {
		log_error("starting worker", "no free scoreboard slot (%d in use)",
		    SB_MAX_SLOTS);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("starting worker", "could not fork: %s", strerror(errno));
		sb_slot_release(m->sb, slot);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		memset(&ws, 0, sizeof(ws));
		ws.cfg = g->cfg;
		ws.listen_fd = m->listen_fd;
		ws.sb = m->sb;
		ws.slot = slot;
		ws.generation = g->id;
		ws.master_pid = getppid();
		ws.keys = &g->keys;
		ws.auth_password_hash = g->auth_hash;
		ws.throttle = m->throttle;
		ws.flows = g->flows;
		/* a worker logs where its generation logs; the file a starting
		 * generation prepared is not the business of the old one's */
		if (m->next != NULL && g == m->next && g->log_pending)
			log_commit(&g->log);
		else if (m->next != NULL && m->next->log_pending)
			log_discard(&m->next->log);
		m->sb->slots[slot].pid = getpid();
		/* the worker installs its own signal handling */
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		code = proc_worker_main(&ws);
		_exit(code);
	}
	m->sb->slots[slot].pid = pid;
	m->w[slot].pid = pid;
	m->w[slot].slot = slot;
	m->w[slot].generation = g->id;
	m->w[slot].retiring = false;
	m->w[slot].killed_by_watchdog = false;
	m->w[slot].started_ms = clock_now_ms();
	log_debug("starting worker", "started worker pid %d in slot %d", (int)pid, slot);
	return 0;
}

/*
 * Index the knowledge-base directory of `cfg` in a child (the master never
 * opens a database handle): the child drops what belongs to the master,
 * runs kbindex_server_main and exits with its code.  While one runs, a new
 * request is remembered and served when it exits (process_sigchld).
 */
static void
master_kb_index(struct master *m, const struct config *cfg)
{
	sigset_t none;
	pid_t pid;

	if (m->kb_pid != 0) {
		m->kb_again = true;
		log_info("indexing the knowledge base", "the indexer pid %d is still "
		    "running; indexing again when it is done", (int)m->kb_pid);
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_error("indexing the knowledge base", "could not fork: %s",
		    strerror(errno));
		return;
	}
	if (pid == 0) {
		/* named apart from the workers in ps, top and /proc/PID/comm */
		prctl(PR_SET_NAME, "ingen-kbindex");
		/* the socket is the workers' business; the master's signals are
		 * not the indexer's: SIGTERM ends it at once (its transaction
		 * rolls back), and so does the master's death */
		if (m->listen_fd >= 0)
			close(m->listen_fd);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGUSR1, SIG_IGN);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(PROC_EXIT_OK);
		log_set_role("kb-indexer");
		_exit(kbindex_server_main(cfg));
	}
	m->kb_pid = pid;
	log_debug("indexing the knowledge base", "started the indexer pid %d",
	    (int)pid);
}

/* The indexer `pid` exited with `status`. */
static void
master_kb_reaped(struct master *m, pid_t pid, int status)
{
	m->kb_pid = 0;
	if (WIFSIGNALED(status) && !m->stopping)
		log_error("indexing the knowledge base", "the indexer pid %d was "
		    "terminated by signal %d (%s)", (int)pid, WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != PROC_EXIT_OK)
		log_warn("indexing the knowledge base", "the indexer pid %d exited "
		    "with code %d (its log lines say why)", (int)pid,
		    WEXITSTATUS(status));
	if (m->kb_again && !m->stopping) {
		m->kb_again = false;
		master_kb_index(m, m->next != NULL ? m->next->cfg : m->cur->cfg);
	}
}

static void
master_fill_gen(struct master *m, struct master_gen *g)
{
	int want = config_workers(g->cfg);

	while (master_count(m, g->id, false) < want)
		if (master_spawn(m, g) != 0)
			break;
}

/* Start workers until the current generation, and the one starting after
 * a reload, have enough. */
static void
master_fill(struct master *m)
{
	int64_t now = clock_now_ms();

	if (m->stopping || now < m->respawn_not_before)
		return;
	master_fill_gen(m, m->cur);
	if (m->next != NULL)
		master_fill_gen(m, m->next);
}

static void
master_signal_generation(struct master *m, uint32_t generation, int signo,
    bool mark_retiring)
{
	int i;

	for (i = 0; i < SB_MAX_SLOTS; i++) {
		struct master_worker *mw = &m->w[i];

		if (mw->pid == 0 || (generation != 0 && mw->generation != generation))
			continue;
		if (mark_retiring)
			mw->retiring = true;
		kill(mw->pid, signo);
	}
}

static void
master_signal_all(struct master *m, int signo)
{
	int i;

	for (i = 0; i < SB_MAX_SLOTS; i++)
		if (m->w[i].pid != 0)
			kill(m->w[i].pid, signo);
}

/* ---- authentication material ------------------------------------------ */

/*
 * The JWT key ring (loaded, or the key file created) and the scrypt hash of
 * the configured password for `cfg`, into *keys and hash; both empty when
 * authentication is off.  The hash is reused from the previous generation
 * when the password did not change.  File I/O and ~100 ms of scrypt, once
 * per start or reload, so that workers fork with everything ready and share
 * one hash.  Returns 0, or -1 with `e` set and *keys empty.
 */
static int
master_load_auth(const struct config *cfg, const struct config *old_cfg,
    const char *old_hash, struct keys *keys, char *hash, size_t hashlen,
    struct err *e)
{
	const char *pw = cfg->web.authentication.password;

	keys_clear(keys);
	hash[0] = '\0';
	if (!cfg->web.authentication.enable)
		return 0;
	if (keys_load(cfg, keys, e) != 0)
		return err_prefix(e, "could not load the jwt signing keys");
	if (old_cfg != NULL && old_cfg->web.authentication.enable &&
	    old_hash[0] != '\0' &&
	    strcmp(old_cfg->web.authentication.password, pw) == 0) {
		snprintf(hash, hashlen, "%s", old_hash);
		return 0;
	}
	if (crypto_password_hash(pw, hash, hashlen, e) != 0) {
		keys_clear(keys);
		return err_prefix(e, "could not hash the configured password");
	}
	return 0;
}

static void
master_log_keys(const struct keys *keys)
{
	const struct keys_key *k = keys_current(keys);

	if (k != NULL)
		log_info("loading keys", "jwt signing key id %s, %zu key(s) accepted",
		    k->kid, keys->n);
}

/* ---- generations ------------------------------------------------------ */

static int
master_log_prepare(const struct config *cfg, struct log_target *t,
    struct err *e)
{
	int fmt = log_format_parse(cfg->logging.format);
	int lvl = log_level_parse(cfg->logging.log_level);

	/* the table admits only values these parse; the fallbacks are moot */
	return log_prepare(t, fmt < 0 ? LOG_FORMAT_LOGFMT : (enum log_format)fmt,
	    lvl < 0 ? LOG_LEVEL_INFO : (enum log_level)lvl, cfg->logging.file, e);
}

static void
master_gen_free(struct master_gen *g)
{
	if (g == NULL)
		return;
	keys_clear(&g->keys);
	crypto_cleanse(g->auth_hash, sizeof(g->auth_hash));
	registry_free(g->flows);
	if (g->log_pending)
		log_discard(&g->log);
	config_free(g->cfg);
	free(g);
}

/*
 * Build generation `id` from cfg (taken: freed on failure too).  `old` is
 * the generation serving, NULL at start: its password hash is reused when
 * the password did not change, its keys keep verifying the tokens they
 * signed, and the log destination is prepared here (at start it is set up
 * already).  Everything that can fail is done here, before any worker of
 * the generation exists.  Returns the generation, or NULL with `e` set.
 */
static struct master_gen *
master_gen_build(struct config *cfg, const struct master_gen *old,
    uint32_t id, struct err *e)
{
	struct master_gen *g = xcalloc(1, sizeof(*g));
	long keep_s;

	g->id = id;
	g->cfg = cfg;
	g->log = (struct log_target)LOG_TARGET_INIT;
	if (master_load_auth(cfg, old != NULL ? old->cfg : NULL,
	    old != NULL ? old->auth_hash : "", &g->keys, g->auth_hash,
	    sizeof(g->auth_hash), e) != 0)
		goto fail;
	g->flows = registry_build(cfg, e);
	registry_log_report(registry_last_report());
	if (g->flows == NULL)
		goto fail;
	if (old != NULL) {
		if (master_log_prepare(cfg, &g->log, e) != 0)
			goto fail;
		g->log_pending = true;
		/* tokens signed with a replaced key stay valid until they expire */
		keep_s = keys_retire_delay(old->cfg);
		if (keys_retire_delay(cfg) > keep_s)
			keep_s = keys_retire_delay(cfg);
		if (g->keys.n > 0)
			keys_rotate(&old->keys, &g->keys, time(NULL), keep_s);
	}
	return g;
fail:
	master_gen_free(g);
	return NULL;
}

/* ---- signals ---------------------------------------------------------- */

static void
master_note_crash(struct master *m, int64_t now)
{
	int i, recent = 0;

	m->crashes[m->crash_next] = now;
	m->crash_next = (m->crash_next + 1) % (MASTER_CRASH_LIMIT + 1);
	for (i = 0; i <= MASTER_CRASH_LIMIT; i++)
		if (m->crashes[i] != 0 && now - m->crashes[i] <= MASTER_CRASH_WINDOW_MS)
			recent++;
	if (recent > MASTER_CRASH_LIMIT) {
		m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : MASTER_BACKOFF_FIRST_MS;
		if (m->backoff_ms > MASTER_BACKOFF_MAX_MS)
			m->backoff_ms = MASTER_BACKOFF_MAX_MS;
		m->respawn_not_before = now + m->backoff_ms;
		log_alert("supervising workers",
		    "crash loop: %d worker crashes in %d s, delaying respawn by %lld ms",
		    recent, MASTER_CRASH_WINDOW_MS / 1000, (long long)m->backoff_ms);
	} else if (recent <= 1) {
		m->backoff_ms = 0;
	}
}

static void
master_begin_stop(struct master *m, bool graceful, int exit_code)
{
	if (m->stopping && (graceful || !m->stop_graceful))
		return;
	if (!m->stopping)
		notify_send("STOPPING=1\nSTATUS=stopping");
	m->stopping = true;
	m->stop_graceful = graceful;
	if (exit_code != 0)
		m->exit_code = exit_code;
	m->stop_deadline = clock_now_ms() +
	    (graceful ? (int64_t)m->cur->cfg->server.shutdown_timeout * 1000 + 2000 : 0);
	/* new connections are refused from now on */
	if (m->listen_fd >= 0) {
		close(m->listen_fd);
		m->listen_fd = -1;
	}
	/* the indexer's work is redone at the next start: stop it now */
	if (m->kb_pid != 0)
		kill(m->kb_pid, SIGTERM);
	if (graceful) {
		log_info("stopping", "graceful stop: draining %d workers", master_live(m));
		master_signal_all(m, SIGTERM);
	} else {
		log_info("stopping", "immediate stop");
		master_signal_all(m, SIGKILL);
	}
}

/* why: the first line of the reason, kept for GET /api/v1/admin/reload */
static void
master_reload_failed(struct master *m, const char *why)
{
	sb_reload_error_set(m->sb, why);
	sb_add(&m->sb->reload_failures, 1);
	notify_send("READY=1\nSTATUS=serving (reload failed, generation %u)",
	    m->cur->id);
}

/* The starting generation cannot serve: its workers go, the current one
 * keeps serving as if no reload had been asked for. */
static void
master_abandon_reload(struct master *m, const char *why)
{
	master_signal_generation(m, m->next->id, SIGKILL, true);
	master_gen_free(m->next);
	m->next = NULL;
	master_reload_failed(m, why);
}

static void
process_sigchld(struct master *m)
{
	int status, i;
	pid_t pid;
	int64_t now = clock_now_ms();

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct master_worker *mw = NULL;
		bool planned, wanted;

		if (pid == m->kb_pid) {
			master_kb_reaped(m, pid, status);
			continue;
		}
		for (i = 0; i < SB_MAX_SLOTS; i++)
			if (m->w[i].pid == pid) {
				mw = &m->w[i];
				break;
			}
		if (mw == NULL)
			continue;
		sb_slot_release(m->sb, mw->slot);
		mw->pid = 0;
		wanted = master_wanted(m, mw);
		planned = WIFEXITED(status) && WEXITSTATUS(status) == PROC_EXIT_OK &&
		    !mw->killed_by_watchdog;

		if (WIFEXITED(status) && WEXITSTATUS(status) == PROC_EXIT_FATAL &&
		    m->next != NULL && mw->generation == m->next->id && !m->stopping) {
			log_error("reloading",
			    "worker pid %d of generation %u exited with the fatal code %d, "
			    "keeping generation %u", (int)pid, m->next->id,
			    PROC_EXIT_FATAL, m->cur->id);
			master_abandon_reload(m, "a worker of the new generation exited with "
			    "the fatal code (its log line says why)");
			continue;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == PROC_EXIT_FATAL &&
		    mw->generation == m->cur->id) {
			log_alert("supervising workers",
			    "worker pid %d exited with the fatal code %d, stopping the server",
			    (int)pid, PROC_EXIT_FATAL);
			master_begin_stop(m, true, PROC_EXIT_MASTER_FATAL);
			continue;
		}
		if (m->stopping || !wanted) {
			log_debug("supervising workers", "worker pid %d exited", (int)pid);
			continue;
		}
		if (planned) {
			log_info("supervising workers",
			    "worker pid %d exited (recycled), replacing it", (int)pid);
		} else {
			sb_add(&m->sb->worker_crashes, 1);
			if (WIFSIGNALED(status))
				log_error("supervising workers",
				    "worker pid %d was terminated by signal %d (%s)", (int)pid,
				    WTERMSIG(status), strsignal(WTERMSIG(status)));
			else
				log_error("supervising workers",
				    "worker pid %d exited with code %d", (int)pid,
				    WEXITSTATUS(status));
			master_note_crash(m, now);
		}
		sb_add(&m->sb->worker_restarts, 1);
	}
	master_fill(m);
}

static void
process_sighup(struct master *m)
{
	struct config_problems probs;
	struct config *ncfg;
	struct master_gen *g;
	struct err e;
	size_t i;

	if (m->stopping)
		return;
	if (m->next != NULL) {
		log_warn("reloading", "a reload is already in progress, ignoring SIGHUP");
		return;
	}
	memset(&probs, 0, sizeof(probs));
	notify_send("RELOADING=1\nSTATUS=reloading configuration");
	log_info("reloading", "reloading configuration");
	/* restart-only keys keep their running values, with a warning each */
	ncfg = config_reload(m->cur->cfg, m->ov, NULL, NULL, &probs);
	for (i = 0; i < probs.n_warnings; i++)
		log_warn("reloading", "%s", probs.warnings[i]);
	if (ncfg == NULL) {
		for (i = 0; i < probs.n; i++)
			log_error("reloading", "%s", probs.lines[i]);
		log_error("reloading", "configuration has %zu problem(s), keeping generation %u",
		    probs.n, m->cur->id);
		master_reload_failed(m, probs.n > 0 ? probs.lines[0] :
		    "the configuration has problems");
		config_problems_free(&probs);
		/* files dropped into kb.directory are still indexed */
		master_kb_index(m, m->cur->cfg);
		return;
	}
	config_problems_free(&probs);
	/* keys, password hash, flows and log file are part of the generation */
	err_clear(&e);
	g = master_gen_build(ncfg, m->cur, m->last_generation + 1, &e);
	if (g == NULL) {
		log_error("reloading", "%s; keeping generation %u", e.msg, m->cur->id);
		master_reload_failed(m, e.msg);
		master_kb_index(m, m->cur->cfg);
		return;
	}
	master_log_keys(&g->keys);
	m->last_generation = g->id;
	m->next = g;
	m->reload_started_ms = clock_now_ms();
	m->respawn_not_before = 0;
	log_info("reloading", "starting generation %u with %d workers", g->id,
	    config_workers(g->cfg));
	master_fill(m);
	master_kb_index(m, g->cfg);
}

/* Once the new generation accepts, it becomes the current one and the old
 * one retires; if it never does, it is abandoned. */
static void
master_check_reload(struct master *m)
{
	struct master_gen *g = m->next, *old = m->cur;
	int i, ready = 0, want = config_workers(g->cfg);
	int64_t now = clock_now_ms();

	for (i = 0; i < SB_MAX_SLOTS; i++)
		if (m->w[i].pid != 0 && m->w[i].generation == g->id &&
		    sb_get_state(&m->sb->slots[m->w[i].slot]) == SB_STATE_READY)
			ready++;
	if (ready < want && now - m->reload_started_ms < MASTER_READY_WAIT_MS)
		return;
	if (ready == 0) {
		log_error("reloading", "no worker of generation %u became ready, "
		    "keeping generation %u", g->id, old->id);
		master_abandon_reload(m, "no worker of the new generation became ready");
		return;
	}
	for (i = 0; i < SB_MAX_SLOTS; i++)
		if (m->w[i].pid != 0 && m->w[i].generation != g->id &&
		    !m->w[i].retiring) {
			m->w[i].retiring = true;
			kill(m->w[i].pid, SIGHUP);
		}
	/* the swap: from here on the master logs where the new generation does */
	if (g->log_pending) {
		log_commit(&g->log);
		g->log_pending = false;
	}
	m->cur = g;
	m->next = NULL;
	master_gen_free(old);
	__atomic_store_n(&m->sb->generation, g->id, __ATOMIC_RELAXED);
	sb_add(&m->sb->reloads, 1);
	log_info("reloading", "generation %u is serving, old workers are draining",
	    g->id);
	notify_send("READY=1\nSTATUS=serving generation %u on %s", g->id,
	    m->listen_desc);
}

static void
master_check_startup(struct master *m)
{
	int i, ready = 0;

	for (i = 0; i < SB_MAX_SLOTS; i++)
		if (m->w[i].pid != 0 &&
		    sb_get_state(&m->sb->slots[m->w[i].slot]) == SB_STATE_READY)
			ready++;
	if (ready < config_workers(m->cur->cfg))
		return;
	m->started = true;
	log_info("starting", "serving on %s with %d workers", m->listen_desc, ready);
	notify_send("READY=1\nSTATUS=serving generation %u on %s\nMAINPID=%d",
	    m->cur->id, m->listen_desc, (int)getpid());
}

static void
master_watchdog(struct master *m, int64_t now)
{
	int64_t limit = (int64_t)m->cur->cfg->server.worker_timeout * 1000;
	int i;

	for (i = 0; i < SB_MAX_SLOTS; i++) {
		struct master_worker *mw = &m->w[i];
		struct sb_slot *s;

		if (mw->pid == 0 || mw->killed_by_watchdog)
			continue;
		s = &m->sb->slots[mw->slot];
		if (now - sb_get_i(&s->heartbeat_ms) <= limit)
			continue;
		log_error("supervising workers",
		    "worker pid %d has not reported for %lld ms (worker_timeout %d s), killing it",
		    (int)mw->pid, (long long)(now - sb_get_i(&s->heartbeat_ms)),
		    m->cur->cfg->server.worker_timeout);
		mw->killed_by_watchdog = true;
		sb_add(&m->sb->watchdog_kills, 1);
		kill(mw->pid, SIGKILL);
	}
	if (notify_watchdog_ms() > 0 &&
	    now - m->last_watchdog_ping >= notify_watchdog_ms() / 2) {
		m->last_watchdog_ping = now;
		notify_send("WATCHDOG=1");
	}
}

/* ---- pid file and privileges ------------------------------------------ */

static int
master_write_pidfile(const char *path, struct err *e)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		/* its folder (a /run/ingenious of a fresh boot): made once, 0755 */
		char *dir = xstrdup(path);
		char *slash = strrchr(dir, '/');

		if (slash != NULL && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0755) == 0)
				log_info("starting", "created the pid file's folder %s", dir);
		}
		free(dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return err_set(e, 0, "could not write pid file \"%s\": %s", path,
		    strerror(errno));
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return err_set(e, 0, "could not write pid file \"%s\": %s", path,
		    strerror(errno));
	}
	close(fd);
	return 0;
}

static int
master_drop_privileges(const char *user, struct err *e)
{
	struct passwd *pw;

	if (user == NULL || user[0] == '\0' || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL)
		return err_set(e, 0, "unknown user \"%s\" in server.user", user);
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0)
		return err_set(e, 0, "could not switch to user \"%s\": %s", user,
		    strerror(errno));
	return 0;
}

/* ---- the loop --------------------------------------------------------- */

/*
 * Each turn in flight holds a client socket and an upstream socket, so the
 * soft open-file limit (1024 by default, under systemd too) would cap the
 * server long before memory does: raise it to the hard limit, as nginx's
 * worker_rlimit_nofile does.  The workers inherit it; the flow threads'
 * automatic maximum is derived from it (pool_auto_max_threads).
 */
static void
master_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("starting", "could not raise the open-file limit to %llu: %s",
		    (unsigned long long)rl.rlim_max, strerror(errno));
}

int
master_run(struct config *cfg, const struct config_overrides *ov)
{
	struct master m;
	sigset_t blocked, waitmask;
	struct timespec tick = { 0, MASTER_TICK_MS * 1000000L };
	struct err e;
	char *pidfile = NULL;   /* a copy: reloads free the config it came from */
	char runpath[4096] = "";
	struct runfile rf;
	int code;

	memset(&m, 0, sizeof(m));
	m.ov = ov;
	m.listen_fd = -1;
	log_set_role("master");
	notify_init();
	master_install_signals(&blocked, &waitmask);
	master_raise_nofile();

	err_clear(&e);
	m.listen_fd = listen_from_systemd(&e);
	if (m.listen_fd < 0 && e.msg[0] != '\0') {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	if (m.listen_fd < 0) {
		m.listen_fd = listen_open(cfg->web.ip_address, cfg->web.port, &e);
		if (m.listen_fd < 0) {
			log_error("starting", "%s", e.msg);
			return PROC_EXIT_MASTER_FATAL;
		}
	}
	listen_describe(m.listen_fd, m.listen_desc, sizeof(m.listen_desc));
	if (master_drop_privileges(cfg->server.user, &e) != 0) {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	if (cfg->server.pidfile != NULL && cfg->server.pidfile[0] != '\0')
		pidfile = xstrdup(cfg->server.pidfile);
	/* after dropping privileges, so the key file belongs to the server's user */
	err_clear(&e);
	if ((m.cur = master_gen_build(cfg, NULL, 1, &e)) == NULL) {
		log_error("starting", "%s", e.msg);
		free(pidfile);
		return PROC_EXIT_MASTER_FATAL;
	}
	cfg = NULL;                     /* the generation's now */
	m.last_generation = m.cur->id;
	master_log_keys(&m.cur->keys);
	if ((m.throttle = throttle_create(&e)) == NULL) {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	if (pidfile != NULL && master_write_pidfile(pidfile, &e) != 0) {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	/* for ingen status/reload/stop; a server that cannot write it serves */
	memset(&rf, 0, sizeof(rf));
	rf.pid = getpid();
	snprintf(rf.listen, sizeof(rf.listen), "%s", m.listen_desc);
	rf.started = (int64_t)time(NULL);
	if (runfile_path(m.cur->cfg->server.state_dir, runpath, sizeof(runpath)) == 0 &&
	    runfile_write(runpath, &rf, &e) != 0) {
		log_warn("starting", "%s (ingen status and ingen stop will need "
		    "--pidfile)", e.msg);
		runpath[0] = '\0';
	}
	if ((m.sb = sb_create(&e)) == NULL) {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	m.sb->generation = m.cur->id;
	log_info("starting", "master pid %d, listening on %s, starting %d workers",
	    (int)getpid(), m.listen_desc, config_workers(m.cur->cfg));
	master_fill(&m);
	master_kb_index(&m, m.cur->cfg);

	for (;;) {
		int64_t now;

		ppoll(NULL, 0, &tick, &waitmask);
		if (sig_quit) {
			sig_quit = 0;
			master_begin_stop(&m, false, 0);
		}
		if (sig_term) {
			/* a second SIGTERM while draining means: now */
			bool again = m.stopping || sig_term > 1;

			sig_term = 0;
			master_begin_stop(&m, !again, 0);
		}
		if (sig_child) {
			sig_child = 0;
			process_sigchld(&m);
		}
		if (sig_hup) {
			sig_hup = 0;
			process_sighup(&m);
		}
		if (sig_usr1) {
			sig_usr1 = 0;
			if (log_reopen(&e) != 0)
				log_error("reopening logs", "%s", e.msg);
			master_signal_all(&m, SIGUSR1);
		}
		now = clock_now_ms();
		if (m.stopping) {
			if (master_live(&m) == 0)
				break;
			if (now >= m.stop_deadline) {
				if (m.stop_graceful)
					log_warn("stopping", "drain took longer than shutdown_timeout, killing %d workers",
					    master_live(&m));
				master_signal_all(&m, SIGKILL);
				m.stop_deadline = now + 1000;
				m.stop_graceful = false;
			}
			continue;
		}
		master_fill(&m);
		if (!m.started)
			master_check_startup(&m);
		if (m.next != NULL)
			master_check_reload(&m);
		master_watchdog(&m, now);
	}
	code = m.exit_code;
	if (m.kb_pid != 0) {
		/* told to stop by master_begin_stop; SIGTERM's default ends it */
		kill(m.kb_pid, SIGTERM);
		waitpid(m.kb_pid, NULL, 0);
		m.kb_pid = 0;
	}
	if (pidfile != NULL)
		unlink(pidfile);
	free(pidfile);
	if (runpath[0] != '\0')
		runfile_remove(runpath, getpid());
	log_info("stopping", "master exiting with code %d", code);
	sb_destroy(m.sb);
	throttle_destroy(m.throttle);
	master_gen_free(m.next);
	master_gen_free(m.cur);
	return code;
}
