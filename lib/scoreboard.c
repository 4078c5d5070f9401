/*
 * scoreboard.c -- creating the shared segment and the slot bookkeeping.
 * The segment is anonymous shared memory inherited over fork(); nothing
 * here takes a lock: every field has a single writer.
 */
#include "autoconfig.h"

#include <errno.h>
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
