/*
 * sql_manipulation_agent.c -- the built-in "sql-manipulation-agent" flow
 * (reference §5.3): a question in plain language answered from the SQL
 * agent's schema.  The agent "sql_assistant" has one tool,
 * "execute_sql_tool(query)", and writes the answer from what its queries
 * returned (usually two model calls).  It sees only <ingenious/flow.h>
 * (and cJSON for the tool's arguments); every statement goes through
 * ing_sql_query, so through the guard on PostgreSQL's grammar and the
 * least-privilege role in a READ ONLY transaction (docs/sql-agent.md).
 * Unlike the original, the model never runs a statement that writes, and
 * never reads outside the agent's schema.
 *
 * A streaming client gets the reference's status chunks: "Preparing
 * database and context...", "Generating SQL response...", and "Executing
 * SQL query..." before each statement.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "flows/builtin/builtin.h"
#include "flows/flow.h"

#define SQL_AGENT "sql_assistant"
#define SQL_DATABASE "PostgreSQL database"   /* the reference: "SQLite database" */

static const char sql_tool_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"query\":{\"type\":\"string\",\"description\":\"One SQL SELECT statement.\"}},"
    "\"required\":[\"query\"]}";

static const char *
sql_system(struct ing_ctx *ctx, const char *memory, const char *table,
    const char *columns, const char *schema)
{
	const char *s = ing_sprintf(ctx,
	    "You are a SQL expert that helps write and execute SQL queries on data "
	    "stored in " SQL_DATABASE ".\n"
	    "%s"
	    "IMPORTANT: If there is previous conversation context above, you MUST:\n"
	    "- Reference it when answering follow-up questions\n"
	    "- Use information from previous queries to inform new queries\n"
	    "- Maintain context about what data has already been discussed\n"
	    "- Resolve pronouns like \"it\", \"that\" using previous context when "
	    "possible\n"
	    "Tasks:\n"
	    "- Write SQL queries to answer user questions about the data\n"
	    "- Use the 'execute_sql_tool' to run queries\n"
	    "- Format responses based on result size:\n"
	    "  - Single Row: {column_name: value, ...}\n"
	    "  - Multiple Rows: list of row dictionaries\n"
	    "The target table '%s' has columns: %s.\n"
	    "Use \"SELECT ... FROM %s\" queries. Do NOT modify schema or table "
	    "names.\n"
	    "When composing summary statistics, use functions like AVG(), COUNT(), "
	    "etc.\n"
	    "When the user asks what columns are available, list them without "
	    "running a query.\n"
	    "Example queries aligned to this schema:\n"
	    "- SELECT * FROM %s LIMIT 5;\n"
	    "- SELECT AVG(math_score) AS avg_math FROM %s;\n"
	    "- SELECT COUNT(*) AS cnt FROM %s WHERE lunch = 'standard';\n",
	    memory, table, columns, table, table, table, table);

	/* ours: a schema of several tables is shown whole (only SELECTs over
	 * it are ever run) */
	if (schema != NULL && strchr(schema, '\n') != NULL)
		s = ing_sprintf(ctx, "%sThe tables you may read, with their columns "
		    "and comments:\n%s\n", s, schema);
	return s;
}

/* execute_sql_tool(query): the reference's text for what the statement
 * returned, or "SQL Error: ..." (a refusal of the guard too), so the model
 * can correct its query. */
static int
sql_tool_call(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	struct ing_sql_result r;
	const cJSON *q;
	cJSON *args;
	const char *query;

	(void)arg;
	args = cJSON_Parse(arguments != NULL ? arguments : "");
	q = cJSON_GetObjectItemCaseSensitive(args, "query");
	if (!cJSON_IsString(q) || q->valuestring[0] == '\0') {
		cJSON_Delete(args);
		*result = "SQL Error: execute_sql_tool needs the argument query "
		    "(one SQL SELECT statement as a string)";
		return -1;
	}
	query = ing_strdup(ctx, q->valuestring);
	cJSON_Delete(args);
	(void)ing_emit_progress(ctx, "Executing SQL query...");
	(void)ing_sql_query(ctx, query, &r);
	*result = r.text;
	return 0;
}

static int
sql_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	const char *memory = builtin_memory_context(ctx, req);
	const char *schema, *table, *columns, *answer;
	struct ing_message msgs[2];
	struct ing_tool tool = {
		.name = "execute_sql_tool",
		.parameters = sql_tool_schema,
		.call = sql_tool_call,
	};
	struct ing_llm_options opt = {
		.agent = SQL_AGENT,
		.stream = 1,
		.tools = &tool,
		.n_tools = 1,
	};

	(void)ing_emit_progress(ctx, "Preparing database and context...");
	if (ing_sql_schema(ctx, &schema, &table, &columns) != 0)
		return -1;
	if (table == NULL)
		return ing_error(ctx, 503, "the SQL agent's schema has no table it "
		    "may read (sql_agent.schema; docs/sql-agent.md)");
	tool.description = ing_sprintf(ctx, "Execute SQL query on " SQL_DATABASE
	    " with table '%s' and columns: %s", table, columns);
	msgs[0] = (struct ing_message){ "system",
	    sql_system(ctx, memory, table, columns, schema), NULL };
	msgs[1] = (struct ing_message){ "user", ing_sprintf(ctx, "Context: SQL "
	    "Expert Assistant for analyzing data.\n\nUser question: %s",
	    req->user_prompt), NULL };
	(void)ing_emit_progress(ctx, "Generating SQL response...");
	if (ing_llm_chat(ctx, &opt, msgs, 2, &answer) != 0)
		return -1;
	if (answer == NULL || answer[0] == '\0')
		answer = "No response generated";
	reply->agent_response = answer;
	reply->agent_name = SQL_AGENT;
	reply->memory_summary = answer;
	return 0;
}

const struct ing_flow flow_sql_manipulation_agent = {
	.name = "sql_manipulation_agent",
	.description = "Answers questions in plain language from a PostgreSQL "
	    "schema: a model writes SELECTs that run through a guard on "
	    "PostgreSQL's grammar as a read-only role (sql_agent.*)",
	.category = "Core",
	.requires = "a chat model and the SQL agent's database (sql_agent.*)",
	.run = sql_run,
};
