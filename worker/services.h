/*
 * services.h -- the server's implementation of the flow services
 * (flows/ctx.h): what a flow's context reaches when it runs in a worker.
 */
#ifndef INGEN_SERVICES_H
#define INGEN_SERVICES_H

#include "flows/ctx.h"
#include "worker/exchange.h"

/*
 * Fill `svc` with the worker's services for a turn on exchange `x`: the
 * language model through the worker's llm client, usage counted on the
 * worker's scoreboard slot and stored as llm_usage rows, clock_now_ms, and
 * the server log, prompt templates, the knowledge bases (services_kb) and
 * the SQL agent's database (services_sql).
 * `x` must outlive every use of `svc`.  Flow thread.
 */
void services_init(struct ctx_services *svc, struct http_exchange *x);

/* The knowledge bases (worker/services_kb.c): the local one through the
 * worker's database pool, Azure AI Search with azure_search_services[0].
 * Its `arg` is the turn's exchange. */
extern const struct ctx_kb_service services_kb;

/* The SQL agent's database (worker/services_sql.c): the statement guard,
 * then the worker's db_sqlagent handle.  Its `arg` is the turn's exchange. */
extern const struct ctx_sql_service services_sql;

#endif
