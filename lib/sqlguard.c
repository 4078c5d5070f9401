/*
 * sqlguard.c -- the SQL agent's statement guard (lib/sqlguard.h): parse the
 * model's SQL with PostgreSQL's grammar (libpg_query's JSON parse tree,
 * read with cJSON) and accept one read-only SELECT over the agent's schema.
 *
 * It owns the allow-lists (node types, functions, types) and the wording of
 * every refusal.  It never connects to a database and never trusts itself:
 * lib/db_sqlagent.c runs what it accepts as a least-privilege role in a
 * READ ONLY transaction with caps, as if there were no guard.
 *
 * How the tree is walked: every object of the JSON tree is visited.  A key
 * that starts with an upper-case letter is a node type ({"FuncCall": {..}})
 * and must be on the node allow-list; some nodes are inline, without their
 * type (a set operation's larg, a SELECT's intoClause), so relations,
 * function calls and type names are also recognized by their fields
 * ("relname", "funcname", "typemod"), wherever they appear.  Anything not
 * known to be harmless is refused: a new node type of a later parser is
 * refused until someone adds it here.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <pg_query.h>

#include "lib/sqlguard.h"

/* One pass over a parse tree. */
struct guard {
	const char *schema;
	struct err *e;
};

/*
 * Node types a read-only SELECT is made of.  Not here, so refused: every
 * other statement, IntoClause, LockingClause, ParamRef, RangeTableSample,
 * RangeTableFunc, XmlExpr, XmlSerialize, ColumnDef (column definition lists
 * of functions in FROM), and whatever a later parser adds.
 */
static const char *const guard_nodes[] = {
	"SelectStmt", "ResTarget", "ColumnRef", "String", "Integer", "Float",
	"Boolean", "BitString", "A_Const", "A_Star", "A_Expr", "A_Indirection",
	"A_Indices", "A_ArrayExpr", "BoolExpr", "NullTest", "BooleanTest",
	"CaseExpr", "CaseWhen", "CoalesceExpr", "MinMaxExpr", "SQLValueFunction",
	"SubLink", "TypeCast", "TypeName", "CollateClause", "RowExpr", "FuncCall",
	"WindowDef", "SortBy", "GroupingSet", "GroupingFunc", "RangeVar",
	"RangeSubselect", "RangeFunction", "JoinExpr", "Alias", "WithClause",
	"CommonTableExpr", "CTESearchClause", "CTECycleClause", "List",
	NULL
};

/*
 * Functions the agent's queries may call (unqualified or pg_catalog.name):
 * aggregates, window functions, arithmetic, text, date and time, and what
 * the grammar turns SQL syntax into (EXTRACT, SUBSTRING ... FROM, TRIM,
 * POSITION, OVERLAY, LIKE ... ESCAPE, SIMILAR TO, AT TIME ZONE).  None has
 * a side effect, reads a file, the catalog or a setting, sleeps, or
 * amplifies its input (no repeat, lpad, rpad, generate_series).
 * docs/sql-agent.md lists them.
 */
static const char *const guard_functions[] = {
	/* aggregates */
	"count", "sum", "avg", "min", "max", "stddev", "stddev_pop",
	"stddev_samp", "variance", "var_pop", "var_samp", "percentile_cont",
	"percentile_disc", "mode", "corr", "covar_pop", "covar_samp",
	"regr_slope", "regr_intercept", "regr_r2", "regr_count", "bool_and",
	"bool_or", "every", "array_agg", "string_agg",
	/* window functions */
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
	"lag", "lead", "first_value", "last_value", "nth_value",
	/* arithmetic */
	"abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt",
	"cbrt", "power", "pow", "exp", "ln", "log", "log10", "mod", "div",
	"width_bucket", "pi", "degrees", "radians",
	/* text */
	"lower", "upper", "initcap", "length", "char_length",
	"character_length", "octet_length", "substring", "substr", "left",
	"right", "btrim", "ltrim", "rtrim", "position", "strpos", "replace",
	"concat", "concat_ws", "split_part", "starts_with", "reverse",
	"overlay", "translate", "like_escape", "similar_to_escape",
	"similar_escape", "to_char", "to_number", "to_date", "to_timestamp",
	/* date and time */
	"now", "date_trunc", "date_part", "extract", "age", "make_date",
	"make_time", "make_interval", "justify_days", "justify_hours",
	"justify_interval", "isfinite", "timezone", "date_bin",
	/* arrays, conditionals */
	"cardinality", "array_length", "unnest", "num_nulls", "num_nonnulls",
	NULL
};

/* Types a value may be cast to (the last name of a TypeName, unqualified
 * or in pg_catalog).  No reg* types: they read the catalog. */
static const char *const guard_types[] = {
	"int2", "int4", "int8", "smallint", "integer", "int", "bigint",
	"numeric", "decimal", "float4", "float8", "real", "text", "varchar",
	"bpchar", "char", "bool", "boolean", "date", "time", "timetz",
	"timestamp", "timestamptz", "interval",
	NULL
};

/* The date and time SQLValueFunctions (CURRENT_DATE, LOCALTIMESTAMP ...);
 * CURRENT_USER, SESSION_USER, CURRENT_ROLE, CURRENT_CATALOG and
 * CURRENT_SCHEMA are refused: they describe the session, not the data. */
static const char *const guard_svf[] = {
	"SVFOP_CURRENT_DATE", "SVFOP_CURRENT_TIME", "SVFOP_CURRENT_TIME_N",
	"SVFOP_CURRENT_TIMESTAMP", "SVFOP_CURRENT_TIMESTAMP_N",
	"SVFOP_LOCALTIME", "SVFOP_LOCALTIME_N", "SVFOP_LOCALTIMESTAMP",
	"SVFOP_LOCALTIMESTAMP_N",
	NULL
};

/* What a refused statement type does, for the reason. */
static const struct {
	const char *node;
	const char *does;
} guard_stmt_words[] = {
	{ "DeleteStmt", "deletes rows" },
	{ "UpdateStmt", "updates rows" },
	{ "InsertStmt", "inserts rows" },
	{ "MergeStmt", "merges rows" },
	{ "DropStmt", "drops objects" },
	{ "TruncateStmt", "empties tables (TRUNCATE)" },
	{ "CopyStmt", "copies data (COPY)" },
	{ "VariableSetStmt", "changes a setting or the role (SET / RESET)" },
	{ "VariableShowStmt", "shows a setting (SHOW)" },
	{ "TransactionStmt", "controls the transaction" },
	{ "CreateStmt", "creates a table" },
	{ "CreateTableAsStmt", "creates a table" },
	{ "AlterTableStmt", "alters a table" },
	{ "GrantStmt", "grants or revokes privileges" },
	{ "GrantRoleStmt", "grants or revokes a role" },
	{ "ExplainStmt", "explains a plan (EXPLAIN ANALYZE runs its statement)" },
	{ "DoStmt", "runs procedural code (DO)" },
	{ "CallStmt", "calls a procedure (CALL)" },
	{ "LockStmt", "locks a table" },
	{ "VacuumStmt", "vacuums or analyzes tables" },
	{ "CreateFunctionStmt", "creates a function" },
	{ "CreateRoleStmt", "creates a role" },
	{ "AlterRoleStmt", "alters a role" },
	{ "PrepareStmt", "prepares a statement" },
	{ "ExecuteStmt", "executes a prepared statement" },
	{ "DeclareCursorStmt", "declares a cursor" },
	{ "ListenStmt", "listens for notifications" },
	{ "NotifyStmt", "sends a notification" },
	{ "LoadStmt", "loads a shared library (LOAD)" },
	{ "DiscardStmt", "discards session state" },
	{ "CreateExtensionStmt", "creates an extension" },
	{ NULL, NULL }
};

static bool
guard_in(const char *const *list, const char *name)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

bool
sqlguard_function_allowed(const char *name)
{
	return name != NULL && guard_in(guard_functions, name);
}

/* The sval of a {"String": {"sval": ...}} list element ("" if absent). */
static const char *
guard_sval(const cJSON *item)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(item, "String");
	const cJSON *v = s ? cJSON_GetObjectItemCaseSensitive(s, "sval") : NULL;

	return cJSON_IsString(v) ? v->valuestring : "";
}

/* A RangeVar (wrapped or inline): a relation of the agent's schema. */
static int
guard_relation(struct guard *g, const cJSON *rv)
{
	const cJSON *cat = cJSON_GetObjectItemCaseSensitive(rv, "catalogname");
	const cJSON *sch = cJSON_GetObjectItemCaseSensitive(rv, "schemaname");
	const cJSON *rel = cJSON_GetObjectItemCaseSensitive(rv, "relname");
	const char *name = cJSON_IsString(rel) ? rel->valuestring : "";

	if (cJSON_IsString(cat))
		return err_set(g->e, 400, "refused: relation %.100s.%.100s.%.100s "
		    "names a database; only tables of schema %.100s are allowed",
		    cat->valuestring, cJSON_IsString(sch) ? sch->valuestring : "",
		    name, g->schema);
	if (cJSON_IsString(sch)) {
		if (strcmp(sch->valuestring, g->schema) == 0)
			return 0;
		return err_set(g->e, 400, "refused: relation %.100s.%.100s is "
		    "outside schema %.100s", sch->valuestring, name, g->schema);
	}
	/* Unqualified names resolve in pg_catalog first (implicitly on every
	 * search_path), and every relation there is called pg_something. */
	if (strncmp(name, "pg_", 3) == 0)
		return err_set(g->e, 400, "refused: relation %.100s is a system "
		    "catalog (pg_catalog), outside schema %.100s", name, g->schema);
	return 0;
}

/* A FuncCall: on the allow-list, unqualified or in pg_catalog. */
static int
guard_function(struct guard *g, const cJSON *fc)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(fc, "funcname");
	int n = cJSON_GetArraySize(names);
	const char *schema = NULL, *name;

	if (n == 1) {
		name = guard_sval(cJSON_GetArrayItem(names, 0));
	} else if (n == 2) {
		schema = guard_sval(cJSON_GetArrayItem(names, 0));
		name = guard_sval(cJSON_GetArrayItem(names, 1));
	} else {
		return err_set(g->e, 400, "refused: a function name with %d parts "
		    "is not allowed", n);
	}
	if (schema != NULL && strcmp(schema, "pg_catalog") != 0)
		return err_set(g->e, 400, "refused: function %.100s.%.100s is "
		    "outside pg_catalog; only the built-in functions of the "
		    "allow-list are allowed", schema, name);
	if (!guard_in(guard_functions, name))
		return err_set(g->e, 400, "refused: function %.100s is not "
		    "allowed", name);
	return 0;
}

/* A TypeName (of a cast): a built-in scalar type. */
static int
guard_type(struct guard *g, const cJSON *tn)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(tn, "names");
	int n = cJSON_GetArraySize(names), i;
	const char *name;

	if (n < 1)
		return err_set(g->e, 400, "refused: a type without a name");
	for (i = 0; i < n - 1; i++)
		if (strcmp(guard_sval(cJSON_GetArrayItem(names, i)),
		    "pg_catalog") != 0)
			return err_set(g->e, 400, "refused: type %.100s.%.100s is "
			    "outside pg_catalog", guard_sval(cJSON_GetArrayItem(names, i)),
			    guard_sval(cJSON_GetArrayItem(names, n - 1)));
	name = guard_sval(cJSON_GetArrayItem(names, n - 1));
	if (!guard_in(guard_types, name))
		return err_set(g->e, 400, "refused: a cast to type %.100s is not "
		    "allowed (numbers, text, booleans, dates and times only)", name);
	return 0;
}

/* An operator name of an A_Expr: unqualified or in pg_catalog. */
static int
guard_operator(struct guard *g, const cJSON *ax)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(ax, "name");
	int n = cJSON_GetArraySize(names);

	if (n > 1 && strcmp(guard_sval(cJSON_GetArrayItem(names, 0)),
	    "pg_catalog") != 0)
		return err_set(g->e, 400, "refused: operator %.100s.%.100s is "
		    "outside pg_catalog", guard_sval(cJSON_GetArrayItem(names, 0)),
		    guard_sval(cJSON_GetArrayItem(names, n - 1)));
	return 0;
}

/* The first key of a node object: its type ("" if none). */
static const char *
guard_node_type(const cJSON *node)
{
	return node != NULL && node->child != NULL && node->child->string ?
	    node->child->string : "";
}

static int guard_walk(struct guard *g, const cJSON *j, int depth);

/* A node {"Type": body}: checks of that type, then its body. */
static int
guard_node(struct guard *g, const char *type, const cJSON *body, int depth)
{
	const cJSON *q, *name, *op;

	if (!guard_in(guard_nodes, type)) {
		if (strcmp(type, "IntoClause") == 0)
			return err_set(g->e, 400, "refused: SELECT INTO creates a "
			    "table; only a plain SELECT is allowed");
		if (strcmp(type, "LockingClause") == 0)
			return err_set(g->e, 400, "refused: FOR UPDATE / FOR SHARE "
			    "locks rows; only a plain SELECT is allowed");
		if (strcmp(type, "ParamRef") == 0)
			return err_set(g->e, 400, "refused: parameters ($1) are not "
			    "allowed; write the values into the query");
		if (strncmp(type, "Xml", 3) == 0 || strcmp(type, "RangeTableFunc") == 0)
			return err_set(g->e, 400, "refused: XML functions are not "
			    "allowed (%.64s)", type);
		if (strcmp(type, "RangeTableSample") == 0)
			return err_set(g->e, 400, "refused: TABLESAMPLE is not allowed");
		return err_set(g->e, 400, "refused: %.64s is not allowed in the "
		    "agent's queries", type);
	}
	if (strcmp(type, "CommonTableExpr") == 0) {
		q = cJSON_GetObjectItemCaseSensitive(body, "ctequery");
		name = cJSON_GetObjectItemCaseSensitive(body, "ctename");
		if (strcmp(guard_node_type(q), "SelectStmt") != 0)
			return err_set(g->e, 400, "refused: the WITH query %.100s is "
			    "not a SELECT (%.64s); only read-only CTEs are allowed",
			    cJSON_IsString(name) ? name->valuestring : "?",
			    guard_node_type(q));
	} else if (strcmp(type, "SQLValueFunction") == 0) {
		op = cJSON_GetObjectItemCaseSensitive(body, "op");
		if (!cJSON_IsString(op) || !guard_in(guard_svf, op->valuestring))
			return err_set(g->e, 400, "refused: %.64s is not allowed "
			    "(only CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP, "
			    "LOCALTIME, LOCALTIMESTAMP)",
			    cJSON_IsString(op) ? op->valuestring + (strncmp(
			    op->valuestring, "SVFOP_", 6) == 0 ? 6 : 0) : "?");
	} else if (strcmp(type, "A_Expr") == 0) {
		if (guard_operator(g, body) < 0)
			return -1;
	}
	return guard_walk(g, body, depth + 1);
}

static int
guard_walk(struct guard *g, const cJSON *j, int depth)
{
	const cJSON *c;

	if (depth > SQLGUARD_MAX_DEPTH)
		return err_set(g->e, 400, "refused: the statement is nested more "
		    "than %d levels deep", SQLGUARD_MAX_DEPTH);
	if (cJSON_IsArray(j)) {
		cJSON_ArrayForEach(c, j)
			if (guard_walk(g, c, depth + 1) < 0)
				return -1;
		return 0;
	}
	if (!cJSON_IsObject(j))
		return 0;
	/* inline structures, recognized by their fields */
	if (cJSON_GetObjectItemCaseSensitive(j, "relname") != NULL &&
	    guard_relation(g, j) < 0)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(j, "funcname") != NULL &&
	    guard_function(g, j) < 0)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(j, "names") != NULL &&
	    cJSON_GetObjectItemCaseSensitive(j, "typemod") != NULL &&
	    guard_type(g, j) < 0)
		return -1;
	cJSON_ArrayForEach(c, j) {
		const char *k = c->string ? c->string : "";

		if (strcmp(k, "intoClause") == 0)
			return guard_node(g, "IntoClause", c, depth);
		if (strcmp(k, "lockingClause") == 0)
			return guard_node(g, "LockingClause", c, depth);
		if (strcmp(k, "typeName") == 0 && guard_type(g, c) < 0)
			return -1;
		if (k[0] >= 'A' && k[0] <= 'Z') {
			if (guard_node(g, k, c, depth) < 0)
				return -1;
		} else if (guard_walk(g, c, depth + 1) < 0) {
			return -1;
		}
	}
	return 0;
}

/* The reason for a top-level statement that is not a SELECT. */
static int
guard_not_select(struct guard *g, const char *type)
{
	size_t i;

	for (i = 0; guard_stmt_words[i].node != NULL; i++)
		if (strcmp(guard_stmt_words[i].node, type) == 0)
			return err_set(g->e, 400, "refused: the statement %s (%s); "
			    "only a single SELECT is allowed", guard_stmt_words[i].does,
			    type);
	return err_set(g->e, 400, "refused: the statement is a %.64s; only a "
	    "single SELECT is allowed", type);
}

int
sqlguard_check(const char *sql, const char *schema, struct err *e)
{
	struct guard g = { schema, e };
	PgQueryParseResult r;
	cJSON *tree = NULL, *stmts, *stmt;
	const char *type;
	size_t len = strlen(sql);
	int n, rc = -1;

	if (len > SQLGUARD_MAX_LEN)
		return err_set(e, 400, "refused: the statement is %zu bytes, over "
		    "the limit of %d", len, SQLGUARD_MAX_LEN);
	r = pg_query_parse(sql);
	if (r.error != NULL) {
		err_set(e, 400, "refused: the statement does not parse: %.300s "
		    "(at character %d)", r.error->message ? r.error->message : "?",
		    r.error->cursorpos);
		goto out;
	}
	tree = cJSON_Parse(r.parse_tree);
	stmts = cJSON_GetObjectItemCaseSensitive(tree, "stmts");
	if (tree == NULL || !cJSON_IsArray(stmts)) {
		err_set(e, 400, "refused: the statement is too complex to check");
		goto out;
	}
	n = cJSON_GetArraySize(stmts);
	if (n == 0) {
		err_set(e, 400, "refused: no statement; send one SELECT");
		goto out;
	}
	if (n > 1) {
		err_set(e, 400, "refused: %d statements; only a single SELECT is "
		    "allowed (no ';' chains)", n);
		goto out;
	}
	stmt = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(stmts, 0), "stmt");
	type = guard_node_type(stmt);
	if (strcmp(type, "SelectStmt") != 0) {
		guard_not_select(&g, type);
		goto out;
	}
	if (guard_walk(&g, stmt, 0) < 0)
		goto out;
	rc = 0;
out:
	cJSON_Delete(tree);
	pg_query_free_parse_result(r);
	return rc;
}

/* `"key":` in the JSON text as a key (not inside a string value, where
 * a quote would be escaped). */
static bool
guard_has_key(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	for (p = strstr(json, pat); p != NULL; p = strstr(p + 1, pat))
		if (p == json || p[-1] != '\\')
			return true;
	return false;
}

void
sqlguard_shape(const char *sql, struct sqlguard_shape *out)
{
	static const char *const writers[] = {
		"DeleteStmt", "UpdateStmt", "InsertStmt", "MergeStmt",
		"intoClause", "IntoClause", "lockingClause", "LockingClause", NULL
	};
	PgQueryParseResult r = pg_query_parse(sql);
	cJSON *tree, *stmts, *stmt;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (r.error != NULL) {
		out->n_statements = -1;
		pg_query_free_parse_result(r);
		return;
	}
	tree = cJSON_Parse(r.parse_tree);
	stmts = cJSON_GetObjectItemCaseSensitive(tree, "stmts");
	out->n_statements = cJSON_GetArraySize(stmts);
	stmt = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(stmts, 0), "stmt");
	snprintf(out->first_type, sizeof(out->first_type), "%s", guard_node_type(stmt));
	for (i = 0; writers[i] != NULL; i++)
		if (guard_has_key(r.parse_tree, writers[i]))
			out->writes = true;
	cJSON_Delete(tree);
	pg_query_free_parse_result(r);
}
