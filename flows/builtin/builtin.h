/*
 * builtin.h -- the flows compiled into the server, one file each.
 */
#ifndef INGEN_BUILTIN_H
#define INGEN_BUILTIN_H

#include "flows/flow.h"

extern const struct ing_flow flow_classification_agent;
extern const struct ing_flow flow_bike_insights;
extern const struct ing_flow flow_knowledge_base_agent;
extern const struct ing_flow flow_sql_manipulation_agent;

/* The thread's last 10 messages, 100 characters each, as the reference's
 * knowledge-base and SQL flows show them ("Previous conversation:\n...\n\n"),
 * or "" for a new thread (flows/builtin/memory.c). */
const char *builtin_memory_context(struct ing_ctx *ctx,
    const struct ing_chat_request *req);

#endif
