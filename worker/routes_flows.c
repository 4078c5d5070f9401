/*
 * routes_flows.c -- GET /api/v1/workflows and GET
 * /api/v1/workflow-status/{name}: the flows of the worker's generation as
 * the reference lists them (flows/catalog.c says what each needs and
 * whether the configuration gives it).  They only read the registry and
 * the configuration; they never run a flow and never show a file path.
 * Flow-thread handlers (behind the authentication gate).
 */
#include "autoconfig.h"

#include "flows/catalog.h"
#include "flows/registry.h"
#include "lib/buf.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/worker.h"

void
routes_workflows(struct http_exchange *x)
{
	struct buf b = BUF_INIT;

	catalog_list_json(&b, x->cfg, x->w->flows, 0);
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

void
routes_workflow_status(struct http_exchange *x)
{
	const struct registry *reg = x->w->flows;
	const char *name = xchg_param(x, "name");
	const struct registry_info *info = registry_info_find(reg, name);
	struct catalog_entry *ent;
	struct buf b = BUF_INIT;

	if (info == NULL) {
		/* the reference means 404 here (and answers 500) */
		catalog_unknown(&b, reg, name);
		xchg_detail(x, 404, buf_cstr(&b));
		buf_free(&b);
		return;
	}
	ent = arena_alloc(x->arena, sizeof(*ent));
	catalog_describe(x->cfg, info, ent);
	catalog_entry_json(&b, ent, 0);
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}
