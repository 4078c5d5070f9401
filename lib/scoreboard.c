/*
 * scoreboard.c -- creating the shared segment and the slot bookkeeping.
 * The segment is anonymous shared memory inherited over fork(); nothing
 * here takes a lock: every field has a single writer.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/scoreboard.h"

#define SB_MAGIC 0x494e4745u   /* "INGE" */

const double sb_latency_bounds_ms[SB_LAT_BUCKETS] = {
	1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
	-1 /* +Inf */
};

struct scoreboard *
sb_create(struct err *e)
{
	struct scoreboard *sb;

	sb = mmap(NULL, sizeof(*sb), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sb == MAP_FAILED) {
		err_set(e, 500, "could not map the scoreboard: %s", strerror(errno));
		return NULL;
	}
	memset(sb, 0, sizeof(*sb));
	sb->magic = SB_MAGIC;
	sb->master_started_ms = clock_now_ms();
	return sb;
}

void
sb_destroy(struct scoreboard *sb)
{
	if (sb != NULL)
		munmap(sb, sizeof(*sb));
}


int
sb_slot_claim(struct scoreboard *sb, pid_t pid, uint32_t generation)
{
	int i;

	for (i = 0; i < SB_MAX_SLOTS; i++) {
		struct sb_slot *s = &sb->slots[i];

		if (sb_get_state(s) != SB_STATE_EMPTY || s->pid != 0)
			continue;
		memset(s, 0, sizeof(*s));
		s->pid = pid;
		s->generation = generation;
		s->started_ms = clock_now_ms();
		s->heartbeat_ms = s->started_ms;
		sb_set_state(s, SB_STATE_STARTING);
		return i;
	}
	return -1;
}

static bool
sb_llm_is(const struct sb_llm *l, const char *flow, const char *agent,
    const char *model)
{
	return strncmp(l->flow, flow, SB_LLM_NAME - 1) == 0 &&
	    strncmp(l->agent, agent, SB_LLM_NAME - 1) == 0 &&
	    strncmp(l->model, model, SB_LLM_NAME - 1) == 0;
}

void
sb_llm_add(struct sb_counters *c, const char *flow, const char *agent,
    const char *model, uint64_t calls, uint64_t tokens, uint64_t errors)
{
	struct sb_llm *l = NULL;
	uint32_t expect;
	int i;

	flow = flow != NULL ? flow : "";
	agent = agent != NULL ? agent : "";
	model = model != NULL ? model : "";
	for (i = 0; i < SB_LLM_KEYS - 1 && l == NULL; i++) {
		struct sb_llm *e = &c->llm[i];
		uint32_t u = __atomic_load_n(&e->used, __ATOMIC_ACQUIRE);

		if (u == 2 && sb_llm_is(e, flow, agent, model)) {
			l = e;
		} else if (u == 0) {
			expect = 0;
			if (!__atomic_compare_exchange_n(&e->used, &expect, 1, false,
			    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				/* taken meanwhile: look at it again */
				i--;
				while (__atomic_load_n(&e->used, __ATOMIC_ACQUIRE) == 1)
					;
				continue;
			}
			snprintf(e->flow, sizeof(e->flow), "%s", flow);
			snprintf(e->agent, sizeof(e->agent), "%s", agent);
			snprintf(e->model, sizeof(e->model), "%s", model);
			__atomic_store_n(&e->used, 2, __ATOMIC_RELEASE);
			l = e;
		}
	}
	if (l == NULL) {
		/* the table is full: the last entry takes the rest */
		l = &c->llm[SB_LLM_KEYS - 1];
		expect = 0;
		if (__atomic_compare_exchange_n(&l->used, &expect, 1, false,
		    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			snprintf(l->flow, sizeof(l->flow), "other");
			__atomic_store_n(&l->used, 2, __ATOMIC_RELEASE);
		}
	}
	sb_add(&l->calls, calls);
	sb_add(&l->tokens, tokens);
	sb_add(&l->errors, errors);
}

static void
sb_fold(struct sb_counters *dst, const struct sb_counters *src)
{
	int r, k;

	for (r = 0; r < SB_MAX_ROUTES; r++) {
		for (k = 0; k < SB_STATUS_N; k++)
			if (src->requests[r][k])
				sb_add(&dst->requests[r][k], sb_get(&src->requests[r][k]));
		for (k = 0; k < SB_LAT_BUCKETS; k++)
			if (src->latency_bucket[r][k])
				sb_add(&dst->latency_bucket[r][k],
				    sb_get(&src->latency_bucket[r][k]));
		sb_add(&dst->latency_sum_us[r], sb_get(&src->latency_sum_us[r]));
	}
	sb_add(&dst->queue_rejections, sb_get(&src->queue_rejections));
	sb_add(&dst->db_rejections, sb_get(&src->db_rejections));
	sb_add(&dst->admitted, sb_get(&src->admitted));
	sb_add(&dst->accept_pauses, sb_get(&src->accept_pauses));
	sb_add(&dst->connections_accepted, sb_get(&src->connections_accepted));
	sb_add(&dst->llm_tokens, sb_get(&src->llm_tokens));
	sb_add(&dst->llm_calls, sb_get(&src->llm_calls));
	sb_add(&dst->llm_errors, sb_get(&src->llm_errors));
	sb_add(&dst->login_throttled, sb_get(&src->login_throttled));
	sb_add(&dst->db_errors, sb_get(&src->db_errors));
	sb_add(&dst->db_waits, sb_get(&src->db_waits));
	sb_add(&dst->db_wait_us, sb_get(&src->db_wait_us));
	sb_add(&dst->db_timeouts, sb_get(&src->db_timeouts));
	for (k = 0; k < SB_LLM_KEYS; k++)
		if (__atomic_load_n(&src->llm[k].used, __ATOMIC_ACQUIRE) == 2)
			sb_llm_add(dst, src->llm[k].flow, src->llm[k].agent,
			    src->llm[k].model, sb_get(&src->llm[k].calls),
			    sb_get(&src->llm[k].tokens), sb_get(&src->llm[k].errors));
}

void
sb_slot_release(struct scoreboard *sb, int slot)
{
	struct sb_slot *s;

	if (slot < 0 || slot >= SB_MAX_SLOTS)
		return;
	s = &sb->slots[slot];
	sb_fold(&sb->retired, &s->c);
	/* readers skip EMPTY slots, so the counters vanish from the slot and
	 * appear in `retired` without a window where they count twice for long */
	sb_set_state(s, SB_STATE_EMPTY);
	memset(&s->c, 0, sizeof(s->c));
	s->inflight = 0;
	s->connections = 0;
	s->pid = 0;
}

enum sb_status
sb_status_index(int status)
{
	switch (status) {
#define X(c) case c: return SB_STATUS_##c;
	SB_STATUS_CODES
#undef X
	default:
		return SB_STATUS_OTHER;
	}
}

int
sb_status_code(enum sb_status s)
{
	static const int codes[] = {
#define X(c) c,
		SB_STATUS_CODES
#undef X
	};

	return s < SB_STATUS_OTHER ? codes[s] : 0;
}

void
sb_count_request(struct sb_slot *s, int route, int status, uint64_t dur_us)
{
	double ms = (double)dur_us / 1000.0;
	int b;

	if (route < 0 || route >= SB_MAX_ROUTES)
		route = 0;
	sb_add(&s->c.requests[route][sb_status_index(status)], 1);
	for (b = 0; b < SB_LAT_BUCKETS - 1; b++)
		if (ms <= sb_latency_bounds_ms[b])
			break;
	sb_add(&s->c.latency_bucket[route][b], 1);
	sb_add(&s->c.latency_sum_us[route], dur_us);
	sb_add(&s->served, 1);
}

void
sb_reload_error_set(struct scoreboard *sb, const char *why)
{
	__atomic_add_fetch(&sb->reload_error_seq, 1, __ATOMIC_ACQ_REL);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	snprintf(sb->reload_error, sizeof(sb->reload_error), "%s", why != NULL ? why : "");
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sb->reload_error_seq, 1, __ATOMIC_ACQ_REL);
}

void
sb_reload_error(const struct scoreboard *sb, char *out, size_t n)
{
	uint32_t before, after;
	int tries;

	if (n == 0)
		return;
	out[0] = '\0';
	/* the master writes it rarely: a few tries see a whole text */
	for (tries = 0; tries < 100; tries++) {
		before = __atomic_load_n(&sb->reload_error_seq, __ATOMIC_ACQUIRE);
		if (before & 1)
			continue;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		memcpy(out, sb->reload_error, n < sizeof(sb->reload_error) ? n : sizeof(sb->reload_error));
		out[n - 1] = '\0';
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		after = __atomic_load_n(&sb->reload_error_seq, __ATOMIC_ACQUIRE);
		if (after == before)
			return;
	}
	out[0] = '\0';
}
