/*
 * routes_usage.c -- GET /api/v1/usage: calls, errors, tokens and latency of
 * the model calls summed by day, user, flow, model or agent over the last
 * N days, for charts (the web console) and scripts.  It reads usage_live
 * (sql/009_usage_rollup.sql) and moves the rollup forward first when it is
 * older than ROUTES_USAGE_ROLLUP_MS, so the read stays small at tens of
 * millions of rows.  With authentication on, the administrator sees every
 * user (and may pick one with ?user_id=), another user only their own.
 * Flow-thread handler.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/db.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/worker.h"

#define ROUTES_USAGE_ROLLUP_MS 10000   /* the rollup may lag this much */
#define ROUTES_USAGE_DAYS      30      /* ?days= by default */
#define ROUTES_USAGE_DAYS_MAX  3660
#define ROUTES_USAGE_HINT "GET /api/v1/usage?by=day|user|flow|model|agent" \
	"&days=1..3660[&user_id=NAME]"

void
routes_usage_rollup(struct http_exchange *x)
{
	static int64_t rolled_ms;   /* the worker's last rollup (atomic) */
	struct err e;
	int64_t now = clock_now_ms();
	int64_t last = __atomic_load_n(&rolled_ms, __ATOMIC_RELAXED);

	err_clear(&e);
	/* one flow thread of the worker rolls up; the others read at once */
	if (now - last >= ROUTES_USAGE_ROLLUP_MS &&
	    __atomic_compare_exchange_n(&rolled_ms, &last, now, false,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		/* a failed rollup only means a longer tail to sum */
		long left = db_usage_rollup(x->w->db, &e);

		if (left < 0) {
			log_warn("reading usage", "could not roll up usage: %s", e.msg);
			__atomic_store_n(&rolled_ms, last, __ATOMIC_RELAXED);
		} else if (left > 0) {
			/* a large backlog goes a step per read until it is done */
			__atomic_store_n(&rolled_ms, last, __ATOMIC_RELAXED);
		}
	}
}

void
routes_usage(struct http_exchange *x)
{
	const char *by_s = routes_query(x, "by"), *user;
	struct db_usage_row *rows = NULL;
	struct buf b = BUF_INIT;
	struct err e;
	char msg[160];
	int by, n, i;
	long days;

	by = by_s == NULL ? DB_USAGE_BY_DAY : db_usage_by_parse(by_s);
	if (by < 0) {
		snprintf(msg, sizeof(msg), "by must be day, user, flow, model or agent (%s)",
		    ROUTES_USAGE_HINT);
		xchg_detail(x, 400, msg);
		return;
	}
	if (!routes_query_int(x, "days", 1, ROUTES_USAGE_DAYS_MAX, ROUTES_USAGE_DAYS, &days) ||
	    !routes_query_user(x, "Only the administrator may read another user's usage",
	    &user))
		return;
	routes_usage_rollup(x);
	err_clear(&e);
	n = db_usage_summary(x->w->db, (enum db_usage_by)by, (int)days, user, x->arena,
	    &rows, &e);
	if (n < 0) {
		routes_db_error(x, &e, "could not read usage");
		return;
	}
	buf_puts(&b, "{\"by\":");
	buf_json_string(&b, db_usage_by_name((enum db_usage_by)by));
	buf_printf(&b, ",\"days\":%ld,\"user_id\":", days);
	buf_json_string(&b, user);
	buf_puts(&b, ",\"rows\":[");
	for (i = 0; i < n; i++) {
		const struct db_usage_row *r = &rows[i];

		if (i > 0)
			buf_putc(&b, ',');
		buf_puts(&b, "{\"key\":");
		buf_json_string(&b, r->key);
		buf_printf(&b, ",\"calls\":%lld,\"errors\":%lld,\"prompt_tokens\":%lld,"
		    "\"completion_tokens\":%lld,\"total_tokens\":%lld,"
		    "\"latency_ms_mean\":%lld,\"latency_ms_max\":%lld}",
		    r->calls, r->errors, r->prompt_tokens, r->completion_tokens,
		    r->total_tokens, r->latency_ms_mean, r->latency_ms_max);
	}
	buf_puts(&b, "]}");
	xchg_reply(x, 200, "application/json", b.data, b.len);
	buf_free(&b);
}
