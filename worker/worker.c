/*
 * worker.c -- a worker process: post-fork initialisation and the event loop.
 *
 * It owns the epoll instance, the signal and wake-up descriptors, the flow
 * thread pool and the worker's scoreboard slot.  It closes what belongs to
 * the master, opens its own resources after the fork (never inherits a
 * database or HTTP client handle), and exits when told to, when recycled,
 * or when the master goes away.  It never reads the master's process table.
 */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "flows/registry.h"
#include "lib/clock.h"
#include "lib/db.h"
#include "lib/db_sqlagent.h"
#include "lib/kbindex.h"
#include "lib/llm.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/scoreboard.h"
#include "lib/uuid.h"
#include "worker/auth.h"
#include "worker/conn.h"
#include "worker/exchange.h"
#include "worker/pool.h"
#include "worker/routes.h"
#include "worker/usage.h"
#include "worker/worker.h"

#define WORKER_TICK_MS     250     /* deadline sweeps and heartbeat */
#define WORKER_TRIM_HANDLES 64     /* idle upstream handles freed per tick, at most */
#define WORKER_PAUSE_RECHECK_MS 5  /* a paused worker's accept-balance check */
#define WORKER_MAX_EVENTS  256

static enum conn_tag worker_eventfd_tag = CONN_TAG_EVENTFD;
static enum conn_tag worker_signalfd_tag = CONN_TAG_SIGNALFD;

/* Give the exchanges that flow threads handed back to their connections. */
static void
worker_take_done(struct worker *w)
{
	struct http_exchange *x, *next;

	for (x = xchg_take_done(&w->xq); x != NULL; x = next) {
		next = x->next_done;
		conn_on_exchange(x);   /* may free x */
	}
}

/* Returns false when the worker must stop now. */
static bool
worker_on_signal(struct worker *w)
{
	struct signalfd_siginfo si;
	struct err e;

	while (read(w->signalfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (w->draining && !w->graceful) {
				log_info("stopping", "second stop signal, closing now");
				return false;
			}
			log_info("stopping", "draining %d connections", w->n_conns);
			conn_drain(w, false);
			break;
		case SIGHUP:
			/* the master retires this generation: drain politely */
			log_info("retiring", "new generation is up, draining");
			conn_drain(w, true);
			break;
		case SIGQUIT:
			return false;
		case SIGUSR1:
			if (log_reopen(&e) != 0)
				log_error("reopening logs", "%s", e.msg);
			break;
		default:
			break;
		}
	}
	return true;
}

/*
 * The flow threads' limits from the configuration.  server.flow_threads 0
 * (the default) derives the maximum from memory and the open-file limit, so
 * that turns in flight are bounded by what the machine holds rather than by
 * a thread count chosen in advance (pool_auto_max_threads).
 */
static void
worker_pool_limits(const struct config *cfg, struct pool_limits *lim)
{
	int workers = config_workers(cfg);
	struct rlimit rl;
	long nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ?
	    (long)rl.rlim_cur : 0;

	memset(lim, 0, sizeof(*lim));
	lim->max_threads = cfg->server.flow_threads > 0 ? cfg->server.flow_threads :
	    pool_auto_max_threads(workers, nofile);
	lim->min_threads = cfg->server.flow_threads_min < lim->max_threads ?
	    cfg->server.flow_threads_min : lim->max_threads;
	lim->queue = cfg->server.flow_queue;
	lim->stack_kb = cfg->server.thread_stack_kb;
	lim->idle_ms = cfg->server.flow_thread_idle_s * 1000;
}

static int
worker_setup(struct worker *w, const struct proc_worker_start *ws, struct err *e)
{
	struct pool_limits lim;
	struct epoll_event ev;
	sigset_t mask;
	char role[32];

	memset(w, 0, sizeof(*w));
	w->cfg = ws->cfg;
	w->sb = ws->sb;
	w->slot_index = ws->slot;
	w->slot = &ws->sb->slots[ws->slot];
	w->generation = ws->generation;
	w->master_pid = ws->master_pid;
	w->listen_fd = ws->listen_fd;
	w->keys = ws->keys;
	w->auth_password_hash = ws->auth_password_hash;
	w->throttle = ws->throttle;
	w->flows = ws->flows;
	/* the gate runs before every protected handler, on its flow thread */
	w->gate = w->cfg->web.authentication.enable ? auth_request : NULL;
	w->listen_tag = CONN_TAG_LISTEN;
	w->epfd = w->eventfd = w->signalfd = -1;

	snprintf(role, sizeof(role), "worker.%d", ws->slot);
	log_set_role(role);
	uuid_reseed_after_fork();

	/* die with the master; check for the race where it died already */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != ws->master_pid)
		return err_set(e, 0, "master process is gone");

	/* SIGPIPE can never kill a worker; the rest arrive through signalfd */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
		return err_set(e, 0, "could not block signals: %s", strerror(errno));
	/* the master's handlers must not run here */
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, NULL, NULL);

	if ((w->signalfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return err_set(e, 0, "could not create signalfd: %s", strerror(errno));
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return err_set(e, 0, "could not create epoll: %s", strerror(errno));
	if ((w->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return err_set(e, 0, "could not create eventfd: %s", strerror(errno));
	xchg_queue_init(&w->xq, w->eventfd);

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &worker_eventfd_tag;
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->eventfd, &ev);
	ev.data.ptr = &worker_signalfd_tag;
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->signalfd, &ev);

	if (routes_check(e) != 0) {
		w->fatal = true;   /* a bad route table never gets better */
		return -1;
	}
	/* plugin code runs from here on, never in the master; a plugin that
	 * cannot load fails the start of this generation (docs/flows.md) */
	if (registry_load_plugins(ws->flows, e) != 0) {
		w->fatal = true;
		return -1;
	}
	/* connections to PostgreSQL and Azure are opened here, never inherited */
	llm_global_init();
	if ((w->llm = llm_client_create(w->cfg, e)) == NULL)
		return -1;
	if ((w->db = db_pool_create(w->cfg, e)) == NULL) {
		w->fatal = true;   /* a configuration that can never connect */
		return -1;
	}
	log_debug("starting worker", "chat history from %s", db_pool_source(w->db));
	/* the SQL agent's own connections (never the pool's): a bad
	 * sql_agent.database_url costs the SQL flows, not the server */
	{
		struct err se;

		err_clear(&se);
		if ((w->sqlagent = db_sqlagent_open(w->cfg, &se)) == NULL)
			log_error("starting worker", "the SQL agent's database is "
			    "not usable: %s", se.msg);
	}
	w->kb_dir = kbindex_server_dir(w->cfg);
	if (usage_start(w, e) != 0)
		return -1;

	worker_pool_limits(w->cfg, &lim);
	if ((w->pool = pool_create(&lim, e)) == NULL)
		return -1;

	if (w->cfg->server.max_requests > 0) {
		uint64_t jitter = (uint64_t)w->cfg->server.max_requests_jitter;

		w->recycle_after = (uint64_t)w->cfg->server.max_requests +
		    (jitter ? uuid_rand64() % (jitter + 1) : 0);
	}

	/* start accepting last: everything above must be ready first */
	ev.events = EPOLLIN;
	ev.data.ptr = &w->listen_tag;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listen_fd, &ev) != 0)
		return err_set(e, 0, "could not watch the listening socket: %s",
		    strerror(errno));
	w->accepting = true;
	sb_set_i(&w->slot->accepting, 1);
	w->ready = true;
	return 0;
}

/* The flow threads' gauges in this worker's slot, for /metrics and for
 * the other workers' accept balance (conn_accept_fair). */
static void
worker_publish_pool(struct worker *w)
{
	struct pool_stats st;

	pool_stats(w->pool, &st);
	sb_set_i(&w->slot->flow_threads, st.threads);
	sb_set_i(&w->slot->flow_threads_busy, st.busy);
	sb_set_i(&w->slot->flow_queued, (int64_t)st.queued);
	sb_set_i(&w->slot->flow_limit, (int64_t)st.max_threads + (int64_t)st.queue_cap);
	sb_set_i(&w->slot->upstream_idle, (int64_t)llm_handles_idle());
}

static void
worker_loop(struct worker *w)
{
	struct epoll_event events[WORKER_MAX_EVENTS];
	int64_t now, last_sweep = 0;
	int i, n, timeout = WORKER_TICK_MS;

	worker_publish_pool(w);
	sb_set_state(w->slot, SB_STATE_READY);
	log_info("starting worker", "worker ready, generation %u, %lld to %lld flow threads",
	    w->generation, (long long)sb_get_i(&w->slot->flow_threads),
	    (long long)(sb_get_i(&w->slot->flow_limit) - w->cfg->server.flow_queue));
	for (;;) {
		n = epoll_wait(w->epfd, events, WORKER_MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("waiting for events", "epoll_wait: %s", strerror(errno));
			return;
		}
		for (i = 0; i < n; i++) {
			enum conn_tag *tag = events[i].data.ptr;

			switch (*tag) {
			case CONN_TAG_LISTEN:
				if (w->accepting)
					conn_accept(w);
				break;
			case CONN_TAG_EVENTFD:
				worker_take_done(w);
				break;
			case CONN_TAG_SIGNALFD:
				if (!worker_on_signal(w))
					return;
				break;
			case CONN_TAG_CLIENT:
				/* the tag is the first member of struct conn */
				conn_on_event((struct conn *)(void *)tag, events[i].events);
				break;
			}
		}
		conn_reap(w);
		if (!w->accepting)
			conn_accept_update(w);   /* paused: the others may have moved */
		now = clock_now_ms();
		/* deferred exchanges whose wait is over go back to the flow threads */
		xchg_wake_due(&w->xq, now);
		timeout = xchg_next_wake_ms(&w->xq, now, WORKER_TICK_MS);
		/* a worker paused for balance looks again soon: a burst of
		 * connections would otherwise all go to the worker that accepts
		 * (4,000 connects in a quarter of a second: 3,994 / 10) */
		if (!w->accepting && !w->draining && timeout > WORKER_PAUSE_RECHECK_MS)
			timeout = WORKER_PAUSE_RECHECK_MS;
		if (w->hang_at_ms != 0 && now >= w->hang_at_ms)
			for (;;)
				pause();   /* test fault: a stuck event loop */
		sb_set_i(&w->slot->heartbeat_ms, now);
		if (now - last_sweep >= WORKER_TICK_MS) {
			last_sweep = now;
			worker_publish_pool(w);
			/* upstream handles idle as long as a flow thread may be */
			(void)llm_handles_trim((int64_t)w->cfg->server.flow_thread_idle_s * 1000,
			    WORKER_TRIM_HANDLES);
			conn_sweep(w, now);
			if (getppid() != w->master_pid && !w->draining) {
				log_warn("supervising", "master is gone, draining");
				conn_drain(w, false);
			}
		}
		if (w->draining) {
			if (w->n_conns == 0)
				return;
			if (now >= w->drain_deadline_ms) {
				log_warn("stopping", "shutdown_timeout reached, closing %d connections",
				    w->n_conns);
				return;
			}
		}
	}
}

/*
 * Fault injection for the process-model tests (PostgreSQL's injection
 * points in miniature).  INGENIOUS_TEST_FAULT is read once at start and is
 * documented as test-only; an unset variable costs one getenv per worker.
 *   worker_start_fatal   the worker exits with PROC_EXIT_FATAL at start
 *   worker_start_crash   the worker aborts at start (a crash loop)
 *   worker_hang          the event loop stops (heartbeat stops) after 1 s
 */
static const char *
worker_fault(void)
{
	const char *f = getenv("INGENIOUS_TEST_FAULT");

	return f != NULL ? f : "";
}

int
proc_worker_main(const struct proc_worker_start *ws)
{
	struct worker w;
	struct err e;
	const char *fault = worker_fault();

	if (strcmp(fault, "worker_start_fatal") == 0) {
		log_set_role("worker");
		log_error("starting worker", "test fault: exiting with the fatal code");
		return PROC_EXIT_FATAL;
	}
	if (strcmp(fault, "worker_start_crash") == 0)
		abort();
	err_clear(&e);
	if (worker_setup(&w, ws, &e) != 0) {
		log_error("starting worker", "could not start worker: %s", e.msg);
		/* a master that is gone is not a crash */
		if (getppid() != ws->master_pid)
			return PROC_EXIT_OK;
		return w.fatal ? PROC_EXIT_FATAL : PROC_EXIT_CRASH;
	}
	if (strcmp(fault, "worker_hang") == 0)
		w.hang_at_ms = clock_now_ms() + 1000;
	worker_loop(&w);
	/*
	 * Connections still open at this point are closed by exit(); flow
	 * threads may still be inside handlers, so the pool is not joined:
	 * _exit-style teardown is the only safe one with threads running.
	 */
	sb_set_state(w.slot, SB_STATE_DRAINING);
	usage_stop(&w);
	log_info("stopping", "worker exiting, %llu requests served",
	    (unsigned long long)sb_get(&w.slot->served));
#ifdef __SANITIZE_ADDRESS__
	/* the master ends the worker with _exit(), which skips LeakSanitizer:
	 * check here, so that a leak per request shows when a worker drains */
	__lsan_do_leak_check();
#endif
	return PROC_EXIT_OK;
}
