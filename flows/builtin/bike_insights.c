/*
 * bike_insights.c -- the built-in "bike-insights" flow (reference §5.4): a
 * month of bike sales in `user_prompt` (JSON: revision_id, identifier,
 * stores) read by four agents.  customer_sentiment_agent (the payload as a
 * JSON block) and fiscal_analysis_agent (the sales as CSV) run in
 * parallel; their answers are relayed to `summary`, which also sees the
 * thread's earlier outputs; bike_lookup_agent then prices the bikes of the
 * summary with the tool get_bike_price.  Each agent's system prompt is the
 * template <agent>_prompt.jinja of the payload's revision.  The reply is
 * the reference's: message_id = the identifier, agent_response = the list
 * of agent chats as JSON, memory_summary "", and the summary as the
 * turn's `output` message, which later turns of the thread see.
 *
 * It sees only <ingenious/flow.h> and cJSON (a built-in links with the
 * server, which has it).  Every cJSON tree it makes is freed before it
 * returns: the payload is copied into the turn's memory once validated,
 * and the tool reads only that copy.
 *
 * Where it departs from the reference, on purpose (docs/flows.md):
 * - the relay lists the sentiment answer first, then the fiscal one (the
 *   reference relays them in the order they happened to finish);
 * - the sentiment agent gets the payload as the client sent it (the
 *   reference re-serializes it), the CSV ends its rows with "\n" (not
 *   Python's "\r\n");
 * - get_bike_price answers the price of the payload's stock bike that the
 *   ticker names (the reference answers a random number), or tells the
 *   model it does not know the bike;
 * - a missing template is an empty system prompt, as the reference's local
 *   storage; any other template failure (a bad revision name, a template
 *   error, templates not configured) fails the turn before any model call;
 * - every agent asks for the model named "gpt-4.1-nano", as the
 *   reference's agents; without one the turn fails with 500 naming the
 *   configured models (the reference's "Model gpt-4.1-nano not found");
 * - a chat's content is the answer as the model gave it (the reference
 *   appends "\n\n"), and its two token counts are 0: the flow API does not
 *   tell a flow what one call cost (the call's usage row has it).
 */
#include "autoconfig.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "flows/builtin/builtin.h"
#include "flows/flow.h"

#define BIKE_MODEL "gpt-4.1-nano"
#define BIKE_SOURCE "default"           /* the reference's topic source */
#define BIKE_MAX_ERRORS 10              /* validation errors listed */

#define BIKE_MSG_JSON "bike-insights workflow requires JSON-formatted data. " \
	"Please provide a valid JSON string with fields: revision_id, " \
	"identifier, stores. Example: {\"revision_id\": \"test-v1\", " \
	"\"identifier\": \"test-001\", \"stores\": [...]}\nJSON parsing error: "
#define BIKE_MSG_FIELDS "bike-insights workflow requires the following " \
	"fields in JSON data: "
#define BIKE_MSG_SCHEMA "bike-insights workflow data validation failed. " \
	"Please ensure your JSON data matches the expected schema for bike " \
	"sales data. Validation error: "

enum bike_agent_id {
	BIKE_SENTIMENT,
	BIKE_FISCAL,
	BIKE_SUMMARY,
	BIKE_LOOKUP,
	BIKE_N_AGENTS
};

static const char *const bike_agent_names[BIKE_N_AGENTS] = {
	"customer_sentiment_agent", "fiscal_analysis_agent", "summary",
	"bike_lookup_agent",
};

/* A bike of the payload's stock, for the price tool. */
struct bike {
	const char *brand, *model;
	long year;
	double price;
};

/* The payload, validated and copied into the turn's memory. */
struct bike_payload {
	const char *revision_id, *identifier;
	const char *csv;                /* the sales table, header and rows */
	struct bike *stock;
	size_t n_stock;
};

/* One agent's chat, as the reply lists it. */
struct bike_chat {
	struct ing_prompt prompt;       /* text "" when the template is missing */
	bool has_prompt;
	const char *user;               /* the user message sent */
	const char *answer;
	const char *tool_messages;      /* the tool results it got, or NULL */
	double start, end;              /* seconds since the epoch */
};

/*
 * A text that grows, in malloc'd memory: the turn's memory cannot give
 * anything back, so a text built by appending there would cost the square
 * of its length (a payload of many sales).  Out of memory aborts, as
 * everywhere in a worker.
 */
struct bike_text {
	char *p;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3)))
bike_text_printf(struct bike_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (t->len + (size_t)n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;

		while (t->len + (size_t)n + 1 > cap)
			cap *= 2;
		if ((t->p = realloc(t->p, cap)) == NULL)
			abort();
		t->cap = cap;
	}
	va_start(ap, fmt);
	(void)vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* The text, moved into the turn's memory. */
static const char *
bike_text_done(struct ing_ctx *ctx, struct bike_text *t)
{
	const char *s = ing_strdup(ctx, t->p != NULL ? t->p : "");

	free(t->p);
	memset(t, 0, sizeof(*t));
	return s;
}

/* The validation of the payload: the errors found, in the reference's
 * (pydantic's) shape: "<location>\n  <message>"; the CSV of the sales. */
struct bike_check {
	struct ing_ctx *ctx;
	const char *text;
	int n;
	struct bike_text csv;           /* rows, without the header */
};

static double
bike_now(void)
{
	struct timespec ts;

	if (timespec_get(&ts, TIME_UTC) != TIME_UTC)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- validation ------------------------------------------------------ */

static void
check_fail(struct bike_check *chk, const char *loc, const char *msg)
{
	if (chk->n++ < BIKE_MAX_ERRORS)
		chk->text = ing_sprintf(chk->ctx, "%s\n%s\n  %s", chk->text, loc, msg);
}

static const char *
check_loc(struct bike_check *chk, const char *loc, const char *key)
{
	return loc[0] == '\0' ? key : ing_sprintf(chk->ctx, "%s.%s", loc, key);
}

static const cJSON *
check_field(struct bike_check *chk, const cJSON *obj, const char *loc,
    const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL)
		check_fail(chk, check_loc(chk, loc, key), "Field required");
	return v;
}

static const char *
check_string(struct bike_check *chk, const cJSON *obj, const char *loc,
    const char *key)
{
	const cJSON *v = check_field(chk, obj, loc, key);

	if (v == NULL)
		return NULL;
	if (!cJSON_IsString(v)) {
		check_fail(chk, check_loc(chk, loc, key),
		    "Input should be a valid string");
		return NULL;
	}
	return ing_strdup(chk->ctx, v->valuestring);
}

static bool
check_number(struct bike_check *chk, const cJSON *obj, const char *loc,
    const char *key, double *out)
{
	const cJSON *v = check_field(chk, obj, loc, key);

	if (v == NULL)
		return false;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
		check_fail(chk, check_loc(chk, loc, key),
		    "Input should be a valid number");
		return false;
	}
	*out = v->valuedouble;
	return true;
}

static bool
check_integer(struct bike_check *chk, const cJSON *obj, const char *loc,
    const char *key, long *out)
{
	const cJSON *v = check_field(chk, obj, loc, key);

	if (v == NULL)
		return false;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    fabs(v->valuedouble) > 9e15) {
		check_fail(chk, check_loc(chk, loc, key),
		    "Input should be a valid integer");
		return false;
	}
	if (v->valuedouble != floor(v->valuedouble)) {
		check_fail(chk, check_loc(chk, loc, key), "Input should be a "
		    "valid integer, got a number with a fractional part");
		return false;
	}
	*out = (long)v->valuedouble;
	return true;
}

static const cJSON *
check_object(struct bike_check *chk, const cJSON *v, const char *loc,
    const char *model)
{
	if (!cJSON_IsObject(v)) {
		check_fail(chk, loc, ing_sprintf(chk->ctx, "Input should be a "
		    "valid dictionary or instance of %s", model));
		return NULL;
	}
	return v;
}

static const cJSON *
check_list(struct bike_check *chk, const cJSON *obj, const char *loc,
    const char *key)
{
	const cJSON *v = check_field(chk, obj, loc, key);

	if (v != NULL && !cJSON_IsArray(v)) {
		check_fail(chk, check_loc(chk, loc, key), "Input should be a valid list");
		return NULL;
	}
	return v;
}

/* One CSV field, quoted as Python's csv module does (QUOTE_MINIMAL). */
static const char *
csv_field(struct ing_ctx *ctx, const char *s)
{
	size_t n = 0, i, j;
	char *q;

	if (strpbrk(s, ",\"\r\n") == NULL)
		return s;
	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '"' ? 2 : 1;
	q = ing_alloc(ctx, n + 3);
	q[0] = '"';
	for (i = 0, j = 1; s[i] != '\0'; i++) {
		if (s[i] == '"')
			q[j++] = '"';
		q[j++] = s[i];
	}
	q[j++] = '"';
	q[j] = '\0';
	return q;
}

static void
check_sale(struct bike_check *chk, const cJSON *sale, const char *loc,
    const char *store, const char *location)
{
	const char *code, *date, *month;
	const cJSON *review;
	long qty = 0, year = 0;
	double rating;
	bool ok;

	if (check_object(chk, sale, loc, "RootModel_BikeSale") == NULL)
		return;
	code = check_string(chk, sale, loc, "product_code");
	ok = check_integer(chk, sale, loc, "quantity_sold", &qty);
	date = check_string(chk, sale, loc, "sale_date");
	ok &= check_integer(chk, sale, loc, "year", &year);
	month = check_string(chk, sale, loc, "month");
	review = check_field(chk, sale, loc, "customer_review");
	if (review != NULL) {
		const char *rloc = check_loc(chk, loc, "customer_review");

		if (check_object(chk, review, rloc, "RootModel_CustomerReview") != NULL) {
			(void)check_number(chk, review, rloc, "rating", &rating);
			(void)check_string(chk, review, rloc, "comment");
		}
	}
	if (ok && code != NULL && date != NULL && month != NULL &&
	    store != NULL && location != NULL)
		bike_text_printf(&chk->csv, "%s,%ld,%s,%ld,%s,%s,%s\n",
		    csv_field(chk->ctx, code), qty, csv_field(chk->ctx, date), year,
		    csv_field(chk->ctx, month), csv_field(chk->ctx, store),
		    csv_field(chk->ctx, location));
}

/* A stock item: the bike is one of the reference's three kinds (mountain:
 * suspension; road: frame_material; electric: battery_capacity and
 * motor_power). */
static void
check_stock(struct bike_check *chk, const cJSON *item, const char *loc,
    struct bike_payload *p)
{
	const cJSON *bike, *susp, *frame, *battery, *motor;
	const char *bloc = check_loc(chk, loc, "bike");
	struct bike b = { 0 };
	long qty;
	int before = chk->n;

	if (check_object(chk, item, loc, "RootModel_BikeStock") == NULL)
		return;
	bike = check_field(chk, item, loc, "bike");
	(void)check_integer(chk, item, loc, "quantity", &qty);
	if (bike == NULL || check_object(chk, bike, bloc, "RootModel_Bike") == NULL)
		return;
	b.brand = check_string(chk, bike, bloc, "brand");
	b.model = check_string(chk, bike, bloc, "model");
	(void)check_integer(chk, bike, bloc, "year", &b.year);
	(void)check_number(chk, bike, bloc, "price", &b.price);
	susp = cJSON_GetObjectItemCaseSensitive(bike, "suspension");
	frame = cJSON_GetObjectItemCaseSensitive(bike, "frame_material");
	battery = cJSON_GetObjectItemCaseSensitive(bike, "battery_capacity");
	motor = cJSON_GetObjectItemCaseSensitive(bike, "motor_power");
	if (!cJSON_IsString(susp) && !cJSON_IsString(frame) &&
	    !(cJSON_IsNumber(battery) && cJSON_IsNumber(motor)))
		check_fail(chk, bloc, "Input should be a mountain bike (suspension), "
		    "a road bike (frame_material) or an electric bike "
		    "(battery_capacity and motor_power)");
	if (chk->n == before)
		p->stock[p->n_stock++] = b;
}

static void
check_store(struct bike_check *chk, const cJSON *store, const char *loc,
    struct bike_payload *p)
{
	const cJSON *sales, *stock, *it;
	const char *name, *location;
	int i;

	if (check_object(chk, store, loc, "RootModel_Store") == NULL)
		return;
	name = check_string(chk, store, loc, "name");
	location = check_string(chk, store, loc, "location");
	sales = check_list(chk, store, loc, "bike_sales");
	stock = check_list(chk, store, loc, "bike_stock");
	i = 0;
	cJSON_ArrayForEach(it, sales)
		check_sale(chk, it, ing_sprintf(chk->ctx, "%s.bike_sales.%d", loc, i++),
		    name, location);
	i = 0;
	cJSON_ArrayForEach(it, stock)
		check_stock(chk, it, ing_sprintf(chk->ctx, "%s.bike_stock.%d", loc, i++), p);
}

/* A key as Python's repr() writes a str. */
static void
py_repr(struct bike_text *t, const char *s)
{
	char q = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';

	bike_text_printf(t, "%c", q);
	for (; *s != '\0'; s++) {
		if (*s == q || *s == '\\')
			bike_text_printf(t, "\\%c", *s);
		else if (*s == '\n')
			bike_text_printf(t, "\\n");
		else
			bike_text_printf(t, "%c", *s);
	}
	bike_text_printf(t, "%c", q);
}

/* The line, column and offset of a position in a text, as Python's json
 * module reports them. */
static const char *
json_position(struct ing_ctx *ctx, const char *text, const char *at)
{
	const char *s, *line_start = text;
	int line = 1;

	if (at == NULL || at < text)
		at = text;
	for (s = text; s < at && *s != '\0'; s++)
		if (*s == '\n') {
			line++;
			line_start = s + 1;
		}
	return ing_sprintf(ctx, "Invalid JSON: line %d column %d (char %ld)",
	    line, (int)(s - line_start) + 1, (long)(s - text));
}

/*
 * Parse and validate the payload into *p (the turn's memory), with the
 * reference's three 400 messages.  Returns 0, or -1 with the turn's error
 * set.
 */
static int
bike_payload_read(struct ing_ctx *ctx, const char *text, struct bike_payload *p)
{
	static const char *const required[] = { "revision_id", "identifier", "stores" };
	struct bike_check chk = { .ctx = ctx, .text = "" };
	struct bike_text keys = { 0 };
	const char *end = NULL, *missing = "";
	const cJSON *stores, *it;
	cJSON *root;
	size_t i, n_stock = 0;
	int k, rc = -1;

	root = cJSON_ParseWithOpts(text, &end, 1);
	if (root == NULL)
		return ing_error(ctx, 400, "%s%s", BIKE_MSG_JSON,
		    json_position(ctx, text, end));
	if (!cJSON_IsObject(root)) {
		ing_error(ctx, 400, "%sthe data is not a JSON object", BIKE_MSG_JSON);
		goto out;
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (cJSON_GetObjectItemCaseSensitive(root, required[i]) == NULL)
			missing = ing_sprintf(ctx, "%s%s%s", missing,
			    missing[0] != '\0' ? ", " : "", required[i]);
	if (missing[0] != '\0') {
		cJSON_ArrayForEach(it, root) {
			if (keys.len > 0)
				bike_text_printf(&keys, ", ");
			py_repr(&keys, it->string);
		}
		ing_error(ctx, 400, "%s%s. Current data contains: [%s]. Please "
		    "include all required fields: revision_id, identifier, stores",
		    BIKE_MSG_FIELDS, missing, bike_text_done(ctx, &keys));
		goto out;
	}

	memset(p, 0, sizeof(*p));
	p->revision_id = check_string(&chk, root, "", "revision_id");
	p->identifier = check_string(&chk, root, "", "identifier");
	stores = check_list(&chk, root, "", "stores");
	cJSON_ArrayForEach(it, stores) {
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "bike_stock");

		n_stock += (size_t)cJSON_GetArraySize(st);
	}
	p->stock = ing_alloc(ctx, (n_stock + 1) * sizeof(*p->stock));
	k = 0;
	cJSON_ArrayForEach(it, stores)
		check_store(&chk, it, ing_sprintf(ctx, "stores.%d", k++), p);
	if (chk.n > 0) {
		ing_error(ctx, 400, "%s%d validation error%s for RootModel%s%s",
		    BIKE_MSG_SCHEMA, chk.n, chk.n == 1 ? "" : "s", chk.text,
		    chk.n > BIKE_MAX_ERRORS ? "\n  ..." : "");
		goto out;
	}
	p->csv = ing_sprintf(ctx, "## Sales\n``` csv\nproduct_code,quantity_sold,"
	    "sale_date,year,month,store_name,location\n%s\n```",
	    bike_text_done(ctx, &chk.csv));
	rc = 0;
out:
	free(chk.csv.p);
	cJSON_Delete(root);
	return rc;
}

/* ---- the earlier outputs of the thread ---------------------------------- */

/* A string as Python's json.dumps writes it (ensure_ascii: every
 * character beyond ASCII as \uXXXX, in UTF-16). */
static const char *
py_json_string(struct ing_ctx *ctx, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, j = 0;
	char *out = ing_alloc(ctx, n * 12 + 3);

	out[j++] = '"';
	while (u[i] != '\0') {
		unsigned long cp = u[i];
		int extra = 0, k;

		if (cp == '"' || cp == '\\') {
			out[j++] = '\\';
			out[j++] = (char)cp;
			i++;
			continue;
		}
		if (cp == '\n' || cp == '\r' || cp == '\t' || cp == '\b' || cp == '\f') {
			out[j++] = '\\';
			out[j++] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : cp == '\t' ? 't' :
			    cp == '\b' ? 'b' : 'f';
			i++;
			continue;
		}
		if (cp < 0x20 || cp == 0x7f) {
			j += (size_t)sprintf(out + j, "\\u%04lx", cp);
			i++;
			continue;
		}
		if (cp < 0x80) {
			out[j++] = (char)cp;
			i++;
			continue;
		}
		if ((cp & 0xe0) == 0xc0) {
			cp &= 0x1f;
			extra = 1;
		} else if ((cp & 0xf0) == 0xe0) {
			cp &= 0x0f;
			extra = 2;
		} else if ((cp & 0xf8) == 0xf0) {
			cp &= 0x07;
			extra = 3;
		} else {
			cp = 0xfffd;    /* not UTF-8: the replacement character */
		}
		for (k = 1; k <= extra; k++) {
			if ((u[i + (size_t)k] & 0xc0) != 0x80) {
				cp = 0xfffd;
				extra = k - 1;
				break;
			}
			cp = (cp << 6) | (u[i + (size_t)k] & 0x3f);
		}
		i += (size_t)extra + 1;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			j += (size_t)sprintf(out + j, "\\u%04lx\\u%04lx",
			    0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
		} else {
			j += (size_t)sprintf(out + j, "\\u%04lx", cp);
		}
	}
	out[j++] = '"';
	out[j] = '\0';
	return out;
}

/* The reference's appendix to the summary's message: the thread's earlier
 * `output` messages, after an empty string, as a JSON list. */
static const char *
bike_history(struct ing_ctx *ctx, const struct ing_chat_request *req)
{
	struct bike_text t = { 0 };
	size_t i;

	bike_text_printf(&t, "# Chat History \n\n``` json\n\n \" [\"\"");
	for (i = 0; i < req->n_history; i++)
		if (req->history[i].role != NULL && req->history[i].content != NULL &&
		    strcmp(req->history[i].role, "output") == 0)
			bike_text_printf(&t, ", %s",
			    py_json_string(ctx, req->history[i].content));
	bike_text_printf(&t, "]");
	return bike_text_done(ctx, &t);
}

/* ---- the price tool ----------------------------------------------------- */

/* Lower-case letters and digits of s, for loose matching. */
static const char *
bike_key(struct ing_ctx *ctx, const char *s)
{
	char *k = ing_alloc(ctx, strlen(s) + 1), *o = k;

	for (; *s != '\0'; s++)
		if (isalnum((unsigned char)*s))
			*o++ = (char)tolower((unsigned char)*s);
	*o = '\0';
	return k;
}

/*
 * The stock bike a ticker names: its model ("Marlin 7"), else its brand and
 * year ("MB-TREK-2021-XC", the payload's product codes), else its brand
 * when only one bike of the stock has it.  NULL when none.
 */
static const struct bike *
bike_find(struct ing_ctx *ctx, const struct bike_payload *p, const char *ticker)
{
	const char *t = bike_key(ctx, ticker);
	const struct bike *by_brand = NULL;
	size_t i, n_brand = 0;

	if (t[0] == '\0')
		return NULL;
	for (i = 0; i < p->n_stock; i++)
		if (strstr(t, bike_key(ctx, p->stock[i].model)) != NULL)
			return &p->stock[i];
	for (i = 0; i < p->n_stock; i++) {
		const struct bike *b = &p->stock[i];

		if (strstr(t, bike_key(ctx, b->brand)) == NULL)
			continue;
		if (strstr(t, ing_sprintf(ctx, "%ld", b->year)) != NULL)
			return b;
		by_brand = b;
		n_brand++;
	}
	return n_brand == 1 ? by_brand : NULL;
}

struct bike_tool_arg {
	const struct bike_payload *payload;
	struct bike_chat *chat;         /* where the results are noted */
};

static int
bike_price_call(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	struct bike_tool_arg *ta = arg;
	const struct bike *b = NULL;
	const char *ticker = NULL;
	const cJSON *t;
	cJSON *args;
	int rc = -1;

	args = cJSON_Parse(arguments != NULL ? arguments : "");
	t = cJSON_GetObjectItemCaseSensitive(args, "ticker");
	if (cJSON_IsString(t))
		ticker = ing_strdup(ctx, t->valuestring);
	cJSON_Delete(args);
	if (ticker == NULL) {
		*result = "get_bike_price needs the argument ticker: the bike's "
		    "product code or model";
	} else if ((b = bike_find(ctx, ta->payload, ticker)) == NULL) {
		*result = ing_sprintf(ctx, "unknown bike \"%s\": no bike in the "
		    "stock of this data matches it", ticker);
	} else {
		*result = ing_sprintf(ctx, "%.2f", b->price);
		rc = 0;
	}
	ta->chat->tool_messages = ing_sprintf(ctx, "%s%s\n\n",
	    ta->chat->tool_messages != NULL ? ta->chat->tool_messages : "", *result);
	return rc;
}

/* ---- the agents --------------------------------------------------------- */

/* Render the system prompts of the four agents (a missing template: an
 * empty prompt).  0, or -1 with the turn's error set. */
static int
bike_prompts(struct ing_ctx *ctx, const char *revision, struct bike_chat *chats)
{
	int i, status;

	for (i = 0; i < BIKE_N_AGENTS; i++) {
		const char *file = ing_sprintf(ctx, "%s_prompt.jinja", bike_agent_names[i]);

		if (ing_prompt_render(ctx, revision, file, NULL, &chats[i].prompt) == 0) {
			chats[i].has_prompt = true;
			continue;
		}
		status = 0;
		(void)ing_last_error(ctx, &status);
		if (status != 404)
			return -1;
		ing_log(ctx, ING_LOG_WARNING, "no template %s in revision %s: "
		    "agent %s runs with an empty system prompt", file, revision,
		    bike_agent_names[i]);
		memset(&chats[i].prompt, 0, sizeof(chats[i].prompt));
		chats[i].prompt.text = "";
	}
	return 0;
}

/* The messages of one agent: its system prompt (when it is not empty: the
 * reference sends an empty one), then the user message. */
static size_t
bike_messages(struct bike_chat *c, struct ing_message m[2])
{
	size_t n = 0;

	if (c->prompt.text[0] != '\0')
		m[n++] = (struct ing_message){ "system", c->prompt.text, NULL };
	m[n++] = (struct ing_message){ "user", c->user, NULL };
	return n;
}

static struct ing_llm_options
bike_options(struct bike_chat *chats, enum bike_agent_id id)
{
	return (struct ing_llm_options){
		.agent = bike_agent_names[id],
		.model = BIKE_MODEL,
		.prompt = chats[id].has_prompt ? &chats[id].prompt : NULL,
	};
}

/* The reply's agent_response: the reference's AgentChat records, in the
 * order the agents ran. */
static const char *
bike_agent_chats(struct ing_ctx *ctx, const struct bike_payload *p,
    const struct bike_chat *chats)
{
	cJSON *list = cJSON_CreateArray();
	const char *out;
	char *text;
	int i;

	for (i = 0; i < BIKE_N_AGENTS; i++) {
		const struct bike_chat *c = &chats[i];
		cJSON *o = cJSON_CreateObject(), *resp, *msg;
		const char *user = c->tool_messages == NULL ? c->user :
		    ing_sprintf(ctx, "%s\n\n---\n\n# Tool Messages\n\n%s", c->user,
		    c->tool_messages);

		cJSON_AddItemToArray(list, o);
		cJSON_AddStringToObject(o, "chat_name", bike_agent_names[i]);
		cJSON_AddStringToObject(o, "target_agent_name", bike_agent_names[i]);
		cJSON_AddStringToObject(o, "source_agent_name", BIKE_SOURCE);
		cJSON_AddStringToObject(o, "user_message", user);
		cJSON_AddStringToObject(o, "system_prompt", c->prompt.text);
		cJSON_AddStringToObject(o, "identifier", p->identifier);
		resp = cJSON_AddObjectToObject(o, "chat_response");
		msg = cJSON_AddObjectToObject(resp, "chat_message");
		cJSON_AddStringToObject(msg, "source", BIKE_SOURCE);
		cJSON_AddNullToObject(msg, "models_usage");
		cJSON_AddObjectToObject(msg, "metadata");
		cJSON_AddStringToObject(msg, "content", c->answer);
		cJSON_AddStringToObject(msg, "type", "TextMessage");
		cJSON_AddNullToObject(resp, "inner_messages");
		/* the flow API does not tell a flow what one call cost (the
		 * usage rows and the turn's token_count have it) */
		cJSON_AddNumberToObject(o, "completion_tokens", 0);
		cJSON_AddNumberToObject(o, "prompt_tokens", 0);
		cJSON_AddNumberToObject(o, "start_time", c->start);
		cJSON_AddNumberToObject(o, "end_time", c->end);
		if (c->has_prompt) {
			cJSON_AddStringToObject(o, "prompt_revision", c->prompt.revision);
			cJSON_AddStringToObject(o, "prompt_hash", c->prompt.hash);
		}
	}
	text = cJSON_PrintUnformatted(list);
	out = text != NULL ? ing_strdup(ctx, text) : NULL;
	cJSON_free(text);
	cJSON_Delete(list);
	if (out == NULL)
		ing_error(ctx, 500, "could not write the agent chats: out of memory");
	return out;
}

static int
bike_insights_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	static const char price_schema[] = "{\"type\":\"object\",\"properties\":"
	    "{\"ticker\":{\"type\":\"string\",\"description\":\"The bike's product "
	    "code or model\"},\"date\":{\"type\":\"string\",\"description\":"
	    "\"Date in YYYY/MM/DD\"}},\"required\":[\"ticker\",\"date\"]}";
	struct bike_chat chats[BIKE_N_AGENTS];
	struct ing_message m[BIKE_N_AGENTS][2];
	struct ing_llm_call calls[2];
	struct bike_payload p;
	struct bike_tool_arg ta;
	struct ing_tool price_tool;
	struct ing_llm_options opt;
	size_t n;
	int i;

	if (bike_payload_read(ctx, req->user_prompt != NULL ? req->user_prompt : "",
	    &p) != 0)
		return -1;
	memset(chats, 0, sizeof(chats));
	if (bike_prompts(ctx, p.revision_id, chats) != 0)
		return -1;

	/* 1. sentiment and figures, at once */
	ing_emit_status(ctx, "Analysing customer sentiment and sales figures...");
	chats[BIKE_SENTIMENT].user = ing_sprintf(ctx, "```json\n%s\n```",
	    req->user_prompt);
	chats[BIKE_FISCAL].user = p.csv;
	memset(calls, 0, sizeof(calls));
	for (i = 0; i < 2; i++) {
		calls[i].options = bike_options(chats, (enum bike_agent_id)i);
		calls[i].n_messages = bike_messages(&chats[i], m[i]);
		calls[i].messages = m[i];
		chats[i].start = bike_now();
	}
	if (ing_llm_parallel(ctx, calls, 2, ING_PARALLEL_FAIL_FAST) != 0)
		return -1;
	for (i = 0; i < 2; i++) {
		chats[i].answer = calls[i].reply != NULL ? calls[i].reply : "";
		chats[i].end = bike_now();
	}

	/* 2. the relay of both to the summary, with the thread's outputs */
	ing_emit_status(ctx, "Summarising the analyses...");
	chats[BIKE_SUMMARY].user = ing_sprintf(ctx, "## %s\n%s\n\n## %s\n%s\n\n%s",
	    bike_agent_names[BIKE_SENTIMENT], chats[BIKE_SENTIMENT].answer,
	    bike_agent_names[BIKE_FISCAL], chats[BIKE_FISCAL].answer,
	    bike_history(ctx, req));
	n = bike_messages(&chats[BIKE_SUMMARY], m[BIKE_SUMMARY]);
	opt = bike_options(chats, BIKE_SUMMARY);
	chats[BIKE_SUMMARY].start = bike_now();
	if (ing_llm_chat(ctx, &opt, m[BIKE_SUMMARY], n,
	    &chats[BIKE_SUMMARY].answer) != 0)
		return -1;
	chats[BIKE_SUMMARY].end = bike_now();

	/* 3. the prices of the bikes the summary names */
	ing_emit_status(ctx, "Looking up bike prices...");
	chats[BIKE_LOOKUP].user = chats[BIKE_SUMMARY].answer;
	ta = (struct bike_tool_arg){ .payload = &p, .chat = &chats[BIKE_LOOKUP] };
	price_tool = (struct ing_tool){
		.name = "get_bike_price",
		.description = "Get the bike price.",
		.parameters = price_schema,
		.call = bike_price_call,
		.arg = &ta,
	};
	n = bike_messages(&chats[BIKE_LOOKUP], m[BIKE_LOOKUP]);
	opt = bike_options(chats, BIKE_LOOKUP);
	opt.tools = &price_tool;
	opt.n_tools = 1;
	chats[BIKE_LOOKUP].start = bike_now();
	if (ing_llm_chat(ctx, &opt, m[BIKE_LOOKUP], n,
	    &chats[BIKE_LOOKUP].answer) != 0)
		return -1;
	chats[BIKE_LOOKUP].end = bike_now();

	reply->agent_response = bike_agent_chats(ctx, &p, chats);
	if (reply->agent_response == NULL)
		return -1;
	reply->agent_name = "bike_insights";
	reply->message_id = p.identifier;
	reply->memory_summary = "";
	reply->output = chats[BIKE_SUMMARY].answer;
	/* the reference's token_count: the prompt tokens of every call */
	ing_turn_usage(ctx, &reply->token_count, NULL, NULL);
	return 0;
}

const struct ing_flow flow_bike_insights = {
	.name = "bike_insights",
	.description = "Analyses a month of bike sales: customer sentiment and "
	    "sales figures in parallel, a summary report, and bike prices "
	    "(four or five language-model calls)",
	.category = "Core",
	.requires = "a chat model named gpt-4.1-nano and the prompt templates "
	    "of the payload's revision",
	.run = bike_insights_run,
};
