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

#endif
