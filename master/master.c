/*
 * master.c -- the supervisor (nginx master cycle, the PostgreSQL postmaster).
 *
 * It owns the process table, the signal flags, the listening socket and the
 * configuration generations.  Signal handlers only set flags; the loop does
 * the work, one process_* function per signal.  It never opens a database
 * or HTTP client handle and never reads a request.
 *
 * Reload is build-new, validate, swap: a new configuration is loaded and
 * checked completely; on any problem the old generation keeps serving.  New
 * workers start first; the old ones are told to retire (SIGHUP: drain
 * politely) only once the new ones accept.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/keys.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/scoreboard.h"
#include "lib/throttle.h"
#include "lib/xmalloc.h"
#include "master/listen.h"
#include "master/master.h"
#include "master/notify.h"

#define MASTER_TICK_MS          100
#define MASTER_CRASH_WINDOW_MS  10000   /* RELIABILITY P1: 5 crashes in 10 s */
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

struct master {
	struct config *cfg;             /* current generation */
	const struct config_overrides *ov;
	uint32_t generation;
	int listen_fd;
	char listen_desc[96];
	struct scoreboard *sb;
	struct throttle *throttle;      /* failed logins, shared with every worker */
	struct keys keys;               /* JWT ring of the current generation */
	char auth_hash[CRYPTO_PASSWORD_HASH_MAX];  /* of the configured password */
	struct master_worker w[SB_MAX_SLOTS];
	int64_t crashes[MASTER_CRASH_LIMIT + 1];  /* ring of recent crash times */
	int crash_next;
	int64_t backoff_ms;
	int64_t respawn_not_before;
	bool pending_reload;            /* new generation starting up */
	int64_t reload_started_ms;
	bool started;                   /* first generation reported ready */
	bool stopping;
	bool stop_graceful;
	int64_t stop_deadline;
	int exit_code;
	int64_t last_watchdog_ping;
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

static int
master_workers_wanted(const struct config *cfg)
{
	return config_workers(cfg);
}

static int
master_spawn(struct master *m)
{
	struct proc_worker_start ws;
	pid_t pid;
	int slot, code;

	slot = sb_slot_claim(m->sb, -1, m->generation);
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
		ws.cfg = m->cfg;
		ws.listen_fd = m->listen_fd;
		ws.sb = m->sb;
		ws.slot = slot;
		ws.generation = m->generation;
		ws.master_pid = getppid();
		ws.keys = &m->keys;
		ws.auth_password_hash = m->auth_hash;
		ws.throttle = m->throttle;
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
	m->w[slot].generation = m->generation;
	m->w[slot].retiring = false;
	m->w[slot].killed_by_watchdog = false;
	m->w[slot].started_ms = sb_now_ms();
	log_debug("starting worker", "started worker pid %d in slot %d", (int)pid, slot);
	return 0;
}

/* Start workers of the current generation until there are enough. */
static void
master_fill(struct master *m)
{
	int64_t now = sb_now_ms();
	int want = master_workers_wanted(m->cfg);

	if (m->stopping || now < m->respawn_not_before)
		return;
	while (master_count(m, m->generation, false) < want)
		if (master_spawn(m) != 0)
			break;
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
	m->stop_deadline = sb_now_ms() +
	    (graceful ? (int64_t)m->cfg->server.shutdown_timeout * 1000 + 2000 : 0);
	/* new connections are refused from now on */
	if (m->listen_fd >= 0) {
		close(m->listen_fd);
		m->listen_fd = -1;
	}
	if (graceful) {
		log_info("stopping", "graceful stop: draining %d workers", master_live(m));
		master_signal_all(m, SIGTERM);
	} else {
		log_info("stopping", "immediate stop");
		master_signal_all(m, SIGKILL);
	}
}

static void
process_sigchld(struct master *m)
{
	int status, i;
	pid_t pid;
	int64_t now = sb_now_ms();

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct master_worker *mw = NULL;
		bool planned, current;

		for (i = 0; i < SB_MAX_SLOTS; i++)
			if (m->w[i].pid == pid) {
				mw = &m->w[i];
				break;
			}
		if (mw == NULL)
			continue;
		sb_slot_release(m->sb, mw->slot);
		mw->pid = 0;
		current = mw->generation == m->generation && !mw->retiring;
		planned = WIFEXITED(status) && WEXITSTATUS(status) == PROC_EXIT_OK &&
		    !mw->killed_by_watchdog;

		if (WIFEXITED(status) && WEXITSTATUS(status) == PROC_EXIT_FATAL) {
			log_alert("supervising workers",
			    "worker pid %d exited with the fatal code %d, stopping the server",
			    (int)pid, PROC_EXIT_FATAL);
			master_begin_stop(m, true, PROC_EXIT_MASTER_FATAL);
			continue;
		}
		if (m->stopping || !current) {
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
	struct keys nkeys;
	char nhash[CRYPTO_PASSWORD_HASH_MAX];
	struct err e;
	size_t i;
	long keep_s;
	int nfd = -1;

	if (m->stopping)
		return;
	if (m->pending_reload) {
		log_warn("reloading", "a reload is already in progress, ignoring SIGHUP");
		return;
	}
	memset(&probs, 0, sizeof(probs));
	notify_send("RELOADING=1\nSTATUS=reloading configuration");
	log_info("reloading", "reloading configuration");
	/* restart-only keys keep their running values, with a warning each */
	ncfg = config_reload(m->cfg, m->ov, NULL, NULL, &probs);
	if (ncfg == NULL) {
		for (i = 0; i < probs.n; i++)
			log_error("reloading", "%s", probs.lines[i]);
		log_error("reloading", "configuration has %zu problem(s), keeping generation %u",
		    probs.n, m->generation);
		config_problems_free(&probs);
		sb_add(&m->sb->reload_failures, 1);
		notify_send("READY=1\nSTATUS=serving (reload failed, generation %u)",
		    m->generation);
		return;
	}
	for (i = 0; i < probs.n_warnings; i++)
		log_warn("reloading", "%s", probs.warnings[i]);
	config_problems_free(&probs);
	/* keys and the password hash are part of the generation: same rule */
	err_clear(&e);
	if (master_load_auth(ncfg, m->cfg, m->auth_hash, &nkeys, nhash,
	    sizeof(nhash), &e) != 0) {
		log_error("reloading", "%s; keeping generation %u", e.msg,
		    m->generation);
		config_free(ncfg);
		sb_add(&m->sb->reload_failures, 1);
		notify_send("READY=1\nSTATUS=serving (reload failed, generation %u)",
		    m->generation);
		return;
	}
	/* the listen address cannot change under systemd or while bound */
	if (strcmp(ncfg->web.ip_address, m->cfg->web.ip_address) != 0 ||
	    ncfg->web.port != m->cfg->web.port) {
		err_clear(&e);
		nfd = listen_open(ncfg->web.ip_address, ncfg->web.port, &e);
		if (nfd < 0) {
			log_error("reloading", "%s; keeping generation %u", e.msg,
			    m->generation);
			config_free(ncfg);
			keys_clear(&nkeys);
			sb_add(&m->sb->reload_failures, 1);
			notify_send("READY=1\nSTATUS=serving (reload failed)");
			return;
		}
	}
	/* tokens signed with a replaced key stay valid until they expire */
	keep_s = keys_retire_delay(m->cfg);
	if (keys_retire_delay(ncfg) > keep_s)
		keep_s = keys_retire_delay(ncfg);
	if (nkeys.n > 0)
		keys_rotate(&m->keys, &nkeys, time(NULL), keep_s);
	keys_clear(&m->keys);
	m->keys = nkeys;
	keys_clear(&nkeys);
	memcpy(m->auth_hash, nhash, sizeof(m->auth_hash));
	crypto_cleanse(nhash, sizeof(nhash));
	master_log_keys(&m->keys);
	config_free(m->cfg);
	m->cfg = ncfg;
	if (nfd >= 0) {
		close(m->listen_fd);
		m->listen_fd = nfd;
		listen_describe(nfd, m->listen_desc, sizeof(m->listen_desc));
		log_info("reloading", "now listening on %s", m->listen_desc);
	}
	(void)!log_configure(log_format_parse(ncfg->logging.format) < 0 ? LOG_FORMAT_LOGFMT :
	    (enum log_format)log_format_parse(ncfg->logging.format),
	    log_level_parse(ncfg->logging.log_level) < 0 ? LOG_LEVEL_INFO :
	    (enum log_level)log_level_parse(ncfg->logging.log_level),
	    ncfg->logging.file, &e);
	m->generation++;
	__atomic_store_n(&m->sb->generation, m->generation, __ATOMIC_RELAXED);
	m->pending_reload = true;
	m->reload_started_ms = sb_now_ms();
	m->respawn_not_before = 0;
	log_info("reloading", "starting generation %u with %d workers", m->generation,
	    master_workers_wanted(ncfg));
	master_fill(m);
}

/* Once the new generation accepts, retire the old one. */
static void
master_check_reload(struct master *m)
{
	int i, ready = 0, want = master_workers_wanted(m->cfg);
	int64_t now = sb_now_ms();

	for (i = 0; i < SB_MAX_SLOTS; i++)
		if (m->w[i].pid != 0 && m->w[i].generation == m->generation &&
		    sb_get_state(&m->sb->slots[m->w[i].slot]) == SB_STATE_READY)
			ready++;
	if (ready < want && now - m->reload_started_ms < MASTER_READY_WAIT_MS)
		return;
	if (ready == 0) {
		/* the new generation cannot serve: keep the old one */
		log_error("reloading", "no worker of generation %u became ready, keeping the old workers",
		    m->generation);
		master_signal_generation(m, m->generation, SIGKILL, true);
		sb_add(&m->sb->reload_failures, 1);
		m->pending_reload = false;
		return;
	}
	for (i = 0; i < SB_MAX_SLOTS; i++)
		if (m->w[i].pid != 0 && m->w[i].generation != m->generation &&
		    !m->w[i].retiring) {
			m->w[i].retiring = true;
			kill(m->w[i].pid, SIGHUP);
		}
	m->pending_reload = false;
	sb_add(&m->sb->reloads, 1);
	log_info("reloading", "generation %u is serving, old workers are draining",
	    m->generation);
	notify_send("READY=1\nSTATUS=serving generation %u on %s", m->generation,
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
	if (ready < master_workers_wanted(m->cfg))
		return;
	m->started = true;
	log_info("starting", "serving on %s with %d workers", m->listen_desc, ready);
	notify_send("READY=1\nSTATUS=serving generation %u on %s\nMAINPID=%d",
	    m->generation, m->listen_desc, (int)getpid());
}

static void
master_watchdog(struct master *m, int64_t now)
{
	int64_t limit = (int64_t)m->cfg->server.worker_timeout * 1000;
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
		    m->cfg->server.worker_timeout);
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

int
master_run(struct config *cfg, const struct config_overrides *ov)
{
	struct master m;
	sigset_t blocked, waitmask;
	struct timespec tick = { 0, MASTER_TICK_MS * 1000000L };
	struct err e;
	char *pidfile = NULL;   /* a copy: reloads free the config it came from */
	int code;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.ov = ov;
	m.generation = 1;
	m.listen_fd = -1;
	log_set_role("master");
	notify_init();
	master_install_signals(&blocked, &waitmask);

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
	/* after dropping privileges, so the key file belongs to the server's user */
	err_clear(&e);
	if (master_load_auth(cfg, NULL, "", &m.keys, m.auth_hash,
	    sizeof(m.auth_hash), &e) != 0) {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	master_log_keys(&m.keys);
	if ((m.throttle = throttle_create(&e)) == NULL) {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	if (cfg->server.pidfile != NULL && cfg->server.pidfile[0] != '\0')
		pidfile = xstrdup(cfg->server.pidfile);
	if (pidfile != NULL && master_write_pidfile(pidfile, &e) != 0) {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	if ((m.sb = sb_create(&e)) == NULL) {
		log_error("starting", "%s", e.msg);
		return PROC_EXIT_MASTER_FATAL;
	}
	m.sb->generation = m.generation;
	log_info("starting", "master pid %d, listening on %s, starting %d workers",
	    (int)getpid(), m.listen_desc, master_workers_wanted(cfg));
	master_fill(&m);

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
		now = sb_now_ms();
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
		if (m.pending_reload)
			master_check_reload(&m);
		master_watchdog(&m, now);
	}
	code = m.exit_code;
	if (pidfile != NULL)
		unlink(pidfile);
	free(pidfile);
	log_info("stopping", "master exiting with code %d", code);
	sb_destroy(m.sb);
	throttle_destroy(m.throttle);
	keys_clear(&m.keys);
	crypto_cleanse(m.auth_hash, sizeof(m.auth_hash));
	config_free(m.cfg);
	return code;
}
