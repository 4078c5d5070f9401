/*
 * config_env.c -- the environment-like sources of the configuration: the
 * process environment (INGENIOUS_SECTION__KEY, the alias variables, list
 * entries INGENIOUS_MODELS__<i>__X), a `.env` file read the way
 * python-dotenv reads it, NAME_FILE values, and the JSON forms of groups and
 * lists (INGENIOUS_MODELS='[...]').
 *
 * It turns variables into settings of the loader (lib/config_int.h); it
 * never decides precedence between sources (lib/config.c does), never calls
 * getenv() (the environment is an array it is given), and never echoes a
 * value it could not parse.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lib/buf.h"
#include "lib/config_int.h"
#include "lib/xmalloc.h"

/*
 * Read a whole small file (NAME_FILE values, .env).  Returns 0 and a NUL-
 * terminated heap copy, or -1 with errno set (EFBIG when over the cap).
 */
static int
read_small_file(const char *path, char **out, size_t *lenp)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t r;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		buf_append(&b, chunk, (size_t)r);
		if (b.len > CONFIG_VALUE_FILE_MAX) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	*lenp = b.len;
	*out = xmalloc(b.len + 1);
	if (b.len)
		memcpy(*out, b.data, b.len);
	(*out)[b.len] = '\0';
	buf_free(&b);
	return 0;
fail:
	saved = errno;
	close(fd);
	buf_free(&b);
	errno = saved;
	return -1;
}

/* The value of NAME_FILE: the file's contents less one trailing newline. */
static int
read_value_file(struct config_loader *ld, const char *path, const char *label,
    char **out)
{
	char tmp[128];
	size_t len;
	char *s;

	if (read_small_file(path, &s, &len) == -1) {
		config_ld_problem(ld, label, NULL, "could not read \"%s\": %s",
		    path, config_errstr(errno, tmp, sizeof(tmp)));
		return -1;
	}
	if (memchr(s, '\0', len) != NULL) {
		config_ld_problem(ld, label, NULL,
		    "could not use \"%s\": it holds a NUL " "byte", path);
		free(s);
		return -1;
	}
	if (len > 0 && s[len - 1] == '\n') {
		s[--len] = '\0';
		if (len > 0 && s[len - 1] == '\r')
			s[--len] = '\0';
	}
	*out = s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON forms                                                          */

static void
json_apply_value(struct config_loader *ld, const struct config_key *k,
    char *base, const char **srcp, const cJSON *j, const char *label,
    const char *what)
{
	char tmp[32];
	const char *text;

	if (cJSON_IsString(j) && j->valuestring != NULL) {
		text = j->valuestring;
	} else if (cJSON_IsBool(j) && k->type == KEY_BOOL) {
		text = cJSON_IsTrue(j) ? "true" : "false";
	} else if (cJSON_IsNumber(j) &&
	    (k->type == KEY_INT || k->type == KEY_BOOL)) {
		double d = j->valuedouble;

		if (!(d > -9e18 && d < 9e18) || (double)(long long)d != d) {
			config_ld_problem(ld, label, what,
			    "expected an integer");
			return;
		}
		snprintf(tmp, sizeof(tmp), "%lld", (long long)d);
		text = tmp;
	} else {
		config_ld_problem(ld, label, what, "expected %s",
		    config_key_type_expect(k->type));
		return;
	}
	config_ld_set(ld, k, base, srcp, text, label, what);
}

/* One JSON object into entry `pos` of list li. */
static void
json_apply_entry(struct config_loader *ld, size_t li, size_t pos,
    const cJSON *obj, const char *label)
{
	const struct config_list *d = &config_lists[li];
	const cJSON *m;

	if (!cJSON_IsObject(obj)) {
		config_ld_problem(ld, label, NULL,
		    "%s.%zu: expected a JSON object", d->name, pos);
		return;
	}
	cJSON_ArrayForEach(m, obj) {
		char *name = xasprintf("%s.*.%s", d->name, m->string);
		char *what = xasprintf("%s.%zu.%.64s", d->name, pos, m->string);
		const struct config_key *k = config_key_find(name);

		if (k == NULL || k->scope != d->scope) {
			config_ld_warning(ld, label, NULL,
			    "unknown key \"%s\", ignored", what);
		} else {
			const char **srcp;
			char *base = config_list_entry(ld, li, pos, k, &srcp);

			json_apply_value(ld, k, base, srcp, m, label, what);
		}
		free(name);
		free(what);
	}
}

/* A JSON array replaces list li. */
static void
json_apply_list(struct config_loader *ld, size_t li, const cJSON *arr,
    const char *label)
{
	const cJSON *e;
	size_t i = 0;

	if (!cJSON_IsArray(arr)) {
		config_ld_problem(ld, label, NULL,
		    "expected a JSON array of objects");
		return;
	}
	config_list_resize(ld, li, 0);
	config_list_resize(ld, li, (size_t)cJSON_GetArraySize(arr));
	cJSON_ArrayForEach(e, arr)
		json_apply_entry(ld, li, i++, e, label);
}

/* A JSON object sets the keys of group `prefix`. */
static void
json_apply_group(struct config_loader *ld, const char *prefix, const cJSON *obj,
    const char *label)
{
	const cJSON *m;

	if (!cJSON_IsObject(obj)) {
		config_ld_problem(ld, label, NULL, "expected a JSON object");
		return;
	}
	cJSON_ArrayForEach(m, obj) {
		char *name = xasprintf("%s.%.64s", prefix, m->string);
		const struct config_key *k = config_key_find(name);

		if (k != NULL && (k->scope == SCOPE_MAIN ||
		    k->scope == SCOPE_UNUSED))
			json_apply_value(ld, k, (char *)ld->cfg,
			    &ld->src[config_key_index(k)], m, label, name);
		else if (cJSON_IsObject(m) && config_group_exists(name))
			json_apply_group(ld, name, m, label);
		else
			config_ld_warning(ld, label, NULL,
			    "unknown key \"%s\", ignored", name);
		free(name);
	}
}

/* Parse a variable's JSON value; a parse error never echoes the value. */
static cJSON *
json_parse_value(struct config_loader *ld, const char *value, const char *label)
{
	cJSON *j = cJSON_Parse(value);

	if (j == NULL)
		config_ld_problem(ld, label, NULL, "invalid JSON");
	return j;
}

/* ------------------------------------------------------------------ */
/* Environment-like sources: .env and the environment                  */

enum item_kind {
	ITEM_ALIAS,
	ITEM_GROUP_JSON,              /* INGENIOUS_WEB_CONFIGURATION='{...}' */
	ITEM_LIST_JSON,               /* INGENIOUS_MODELS='[...]' */
	ITEM_INDEXED,                 /* INGENIOUS_MODELS__3='{...}' or __3__X */
	ITEM_KEY,
};

struct env_item {
	enum item_kind kind;
	int rank;                     /* ordering within a kind */
	const struct config_key *key; /* ALIAS, KEY, INDEXED field; NULL = JSON */
	size_t list;
	unsigned long index;
	size_t pos;                   /* INDEXED: position once mapped */
	char *group;                  /* GROUP_JSON */
	char *value;
	const char *label;
	size_t order;
};

/* Split a lower-cased name at every "__"; returns the segment count. */
static size_t
split_dunder(char *s, char **segs, size_t max)
{
	size_t n = 0;
	char *p;

	for (;;) {
		if (n == max)
			return max + 1;
		segs[n++] = s;
		p = strstr(s, "__");
		if (p == NULL)
			return n;
		*p = '\0';
		s = p + 2;
	}
}

static bool
all_digits(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return i > 0 && i <= 9;
}

/*
 * What an environment name means.  Returns 1 and fills `it` (allocating
 * only then), 0 for an unknown INGENIOUS_* name, -1 for a name that is not
 * ours or is known and not a key (INGENIOUS_CONFIG).
 */
static int
env_classify(const char *name, struct env_item *it)
{
	char *low, *segs[8];
	const struct config_key *k;
	size_t i, n;
	int li, r = 0;

	for (i = 0; i < config_n_aliases; i++)
		if (strcasecmp(name, config_aliases[i].env) == 0) {
			it->kind = ITEM_ALIAS;
			it->rank = (int)i;
			it->key = config_key_find(config_aliases[i].key);
			return 1;
		}
	if (strncasecmp(name, CONFIG_ENV_PREFIX, CONFIG_ENV_PREFIX_LEN) != 0)
		return -1;
	for (i = 0; config_env_known[i]; i++)
		if (strcasecmp(name, config_env_known[i]) == 0)
			return -1;

	low = xstrdup(name + CONFIG_ENV_PREFIX_LEN);
	for (i = 0; low[i]; i++)
		low[i] = (char)tolower((unsigned char)low[i]);
	n = split_dunder(low, segs, sizeof(segs) / sizeof(segs[0]));
	if (n > sizeof(segs) / sizeof(segs[0]))
		goto out;
	for (i = 0; i < n; i++)
		if (segs[i][0] == '\0')
			goto out;

	li = config_list_find(segs[0]);
	if (li >= 0) {
		it->list = (size_t)li;
		if (n == 1) {
			it->kind = ITEM_LIST_JSON;
			r = 1;
			goto out;
		}
		if (!all_digits(segs[1]))
			goto out;
		it->index = strtoul(segs[1], NULL, 10);
		it->kind = ITEM_INDEXED;
		it->rank = li * 2;
		it->key = NULL;
		if (n == 2) {
			r = 1;                /* a JSON object for one entry */
			goto out;
		}
		{
			struct buf b = BUF_INIT;

			buf_printf(&b, "%s.*", config_lists[li].name);
			for (i = 2; i < n; i++)
				buf_printf(&b, ".%s", segs[i]);
			k = config_key_find(buf_cstr(&b));
			buf_free(&b);
		}
		if (k == NULL || k->scope != config_lists[li].scope)
			goto out;
		it->key = k;
		it->rank = li * 2 + 1;    /* after the entry JSON forms */
		r = 1;
		goto out;
	}

	{
		struct buf b = BUF_INIT;

		for (i = 0; i < n; i++)
			buf_printf(&b, "%s%s", i ? "." : "", segs[i]);
		k = config_key_find(buf_cstr(&b));
		if (k != NULL && (k->scope == SCOPE_MAIN ||
		    k->scope == SCOPE_UNUSED)) {
			it->kind = ITEM_KEY;
			it->key = k;
			r = 1;
		} else if (config_group_exists(buf_cstr(&b))) {
			it->kind = ITEM_GROUP_JSON;
			it->group = xstrdup(buf_cstr(&b));
			r = 1;
		}
		buf_free(&b);
	}
out:
	free(low);
	return r;
}

static bool
has_suffix_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcasecmp(s + n - m, suffix) == 0;
}

bool
config_env_has(const struct config_env_var *vars, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(vars[i].name, name) == 0)
			return true;
	return false;
}

static int
item_cmp(const void *a, const void *b)
{
	const struct env_item *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
ulong_cmp(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Map the indices of the INDEXED items of list li to positions: an index
 * inside the list built so far names that entry; larger ones are appended
 * in numeric order, gaps closed.  Grows the list to fit.
 */
static void
index_map(struct config_loader *ld, size_t li, struct env_item *items, size_t n)
{
	unsigned long *idx;
	size_t i, j, m = 0, len, fresh = 0;

	config_list_base(ld->cfg, li, &len);
	idx = xmalloc((n ? n : 1) * sizeof(*idx));
	for (i = 0; i < n; i++)
		if (items[i].kind == ITEM_INDEXED && items[i].list == li)
			idx[m++] = items[i].index;
	if (m == 0) {
		free(idx);
		return;
	}
	qsort(idx, m, sizeof(*idx), ulong_cmp);
	for (i = 0, j = 0; i < m; i++)        /* unique */
		if (j == 0 || idx[j - 1] != idx[i])
			idx[j++] = idx[i];
	m = j;
	for (i = 0; i < m; i++)
		if (idx[i] >= len)
			fresh++;
	for (i = 0; i < n; i++) {
		if (items[i].kind != ITEM_INDEXED || items[i].list != li)
			continue;
		if (items[i].index < len) {
			items[i].pos = items[i].index;
			continue;
		}
		for (j = 0; j < m; j++)
			if (idx[j] == items[i].index)
				break;
		/* idx is sorted: the ones below `len` come first */
		items[i].pos = len + (j - (m - fresh));
	}
	if (fresh > 0)
		config_list_resize(ld, li, len + fresh);
	free(idx);
}

static void
item_apply(struct config_loader *ld, struct env_item *it)
{
	cJSON *j;

	switch (it->kind) {
	case ITEM_ALIAS:
	case ITEM_KEY:
		config_ld_set_main(ld, it->key, it->value, it->label, NULL);
		break;
	case ITEM_GROUP_JSON:
		if ((j = json_parse_value(ld, it->value, it->label)) != NULL) {
			json_apply_group(ld, it->group, j, it->label);
			cJSON_Delete(j);
		}
		break;
	case ITEM_LIST_JSON:
		if ((j = json_parse_value(ld, it->value, it->label)) != NULL) {
			json_apply_list(ld, it->list, j, it->label);
			cJSON_Delete(j);
		}
		break;
	case ITEM_INDEXED:
		if (it->key == NULL) {
			j = json_parse_value(ld, it->value, it->label);
			if (j != NULL) {
				json_apply_entry(ld, it->list, it->pos, j,
				    it->label);
				cJSON_Delete(j);
			}
		} else {
			const char **srcp;
			char *base = config_list_entry(ld, it->list, it->pos,
			    it->key, &srcp);

			config_ld_set(ld, it->key, base, srcp, it->value,
			    it->label, NULL);
		}
		break;
	}
}

/*
 * Apply one environment-like source.  Within it: aliases, group JSON, list
 * JSON, indexed list entries, then the canonical names, so that the more
 * specific name wins whatever the order of the variables.
 */
void
config_env_apply(struct config_loader *ld, const struct config_env_var *vars,
    size_t n)
{
	struct env_item *items = xcalloc(n ? n : 1, sizeof(*items));
	size_t i, ni = 0;
	bool mapped = false;

	for (i = 0; i < n; i++) {
		const struct config_env_var *v = &vars[i];
		struct env_item it;
		char *base = NULL;
		bool from_file = false;
		int r;

		memset(&it, 0, sizeof(it));
		r = env_classify(v->name, &it);
		if (r != 1 && has_suffix_ci(v->name, "_FILE")) {
			base = xstrndup(v->name, strlen(v->name) - 5);
			if (env_classify(base, &it) == 1) {
				r = 1;
				from_file = true;
			}
		}
		if (r == 0 && strncasecmp(v->name, CONFIG_ENV_PREFIX,
		    CONFIG_ENV_PREFIX_LEN) == 0)
			config_ld_warning(ld, v->label, NULL,
			    "unknown variable, ignored");
		if (r != 1)
			goto skip;
		if (from_file) {
			if (config_env_has(vars, n, base)) {
				config_ld_problem(ld, v->label, NULL,
				    "%s is set too; set only one of them",
				    base);
				goto skip;
			}
			if (read_value_file(ld, v->value, v->label,
			    &it.value) == -1)
				goto skip;
		} else {
			it.value = xstrdup(v->value);
		}
		it.label = v->label;
		it.order = i;
		items[ni++] = it;
		free(base);
		continue;
skip:
		free(base);
		free(it.group);
	}

	qsort(items, ni, sizeof(*items), item_cmp);
	for (i = 0; i < ni; i++) {
		if (items[i].kind == ITEM_INDEXED && !mapped) {
			size_t li;

			for (li = 0; li < CONFIG_N_LISTS; li++)
				index_map(ld, li, items, ni);
			mapped = true;
		}
		item_apply(ld, &items[i]);
	}
	for (i = 0; i < ni; i++) {
		free(items[i].value);
		free(items[i].group);
	}
	free(items);
}

/* Is `name` (not NUL-terminated, `len` bytes) one we may read? */
static bool
env_name_relevant(const char *name, size_t len)
{
	size_t i, m;

	if (len >= CONFIG_ENV_PREFIX_LEN && strncasecmp(name, CONFIG_ENV_PREFIX,
	    CONFIG_ENV_PREFIX_LEN) == 0)
		return true;
	for (i = 0; i < config_n_aliases; i++) {
		m = strlen(config_aliases[i].env);
		if ((len == m || (len == m + 5 &&
		    strncasecmp(name + m, "_FILE", 5) == 0)) &&
		    strncasecmp(name, config_aliases[i].env, m) == 0)
			return true;
	}
	return false;
}

/* The relevant variables of an environment array. */
struct config_env_var *
config_env_collect(struct config_loader *ld, char *const *env, size_t *np)
{
	struct config_env_var *vars = NULL;
	size_t n = 0, cap = 0;

	for (; env && *env; env++) {
		const char *eq = strchr(*env, '=');
		const char *name;

		if (eq == NULL || eq == *env ||
		    !env_name_relevant(*env, (size_t)(eq - *env)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			vars = xrealloc(vars, cap * sizeof(*vars));
		}
		name = config_ld_keep(ld, xstrndup(*env, (size_t)(eq - *env)));
		vars[n].name = name;
		vars[n].value = eq + 1;
		vars[n].label = name;
		n++;
	}
	*np = n;
	return vars;
}

/* ------------------------------------------------------------------ */
/* .env                                                                */

static void
dotenv_add(struct config_loader *ld, struct config_dotenv *de, const char *path,
    int line, char *name, char *value)
{
	if (de->n == de->cap) {
		de->cap = de->cap ? de->cap * 2 : 16;
		de->vars = xrealloc(de->vars, de->cap * sizeof(*de->vars));
	}
	de->vars[de->n].name = config_ld_keep(ld, name);
	de->vars[de->n].value = config_ld_keep(ld, value);
	de->vars[de->n].label = config_ld_keep(ld, xasprintf("%s:%d: %s", path,
	    line, name));
	de->n++;
}

static void
skip_blanks(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\r')
		(*p)++;
}

static void
skip_line(const char **p)
{
	while (**p != '\0' && **p != '\n')
		(*p)++;
}

/*
 * Parse .env text the way python-dotenv does: KEY=VALUE lines, `export `
 * allowed, `#` comments (inline ones after whitespace), single quotes
 * literal, double quotes with backslash escapes, quoted values may span
 * lines, no expansion.  Bad lines are problems; a bare KEY is ignored.
 */
static void
dotenv_parse(struct config_loader *ld, const char *path, const char *text,
    struct config_dotenv *de)
{
	const char *p = text;
	int line = 1;

	while (*p != '\0') {
		const char *key;
		struct buf val = BUF_INIT;
		int start = line;
		size_t klen;

		skip_blanks(&p);
		if (*p == '\n') {
			p++;
			line++;
			continue;
		}
		if (*p == '#' || *p == '\0') {
			skip_line(&p);
			continue;
		}
		if (strncmp(p, "export",
		    6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
			p += 6;
			skip_blanks(&p);
		}
		key = p;
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '.' ||
		    *p == '-')
			p++;
		klen = (size_t)(p - key);
		skip_blanks(&p);
		if (klen == 0 || (*p != '=' && *p != '\n' && *p != '\0' &&
		    *p != '#')) {
			config_ld_problem(ld, NULL, NULL,
			    "%s:%d: invalid line (expected " "NAME=VALUE)",
			    path, line);
			skip_line(&p);
			continue;
		}
		if (*p != '=') {
			skip_line(&p);        /* a bare name sets nothing */
			continue;
		}
		p++;
		skip_blanks(&p);
		if (*p == '\'' || *p == '"') {
			char q = *p++;

			while (*p != '\0' && *p != q) {
				if (*p == '\\' && p[1] != '\0' && (q == '"' ||
				    p[1] == '\'' || p[1] == '\\')) {
					static const char from[] = "nrtabfv\"'\\";
					static const char to[] = "\n\r\t\a\b\f\v\"'\\";
					const char *f = strchr(from, p[1]);

					if (f != NULL && p[1] != '\0') {
						buf_putc(&val, to[f - from]);
						p += 2;
						continue;
					}
				}
				if (*p == '\n')
					line++;
				buf_putc(&val, *p++);
			}
			if (*p != q) {
				config_ld_problem(ld, NULL, NULL,
				    "%s:%d: unterminated " "quoted value", path,
				    start);
				buf_free(&val);
				break;
			}
			p++;
			skip_blanks(&p);
			if (*p == '#')
				skip_line(&p);
			if (*p != '\n' && *p != '\0') {
				config_ld_problem(ld, NULL, NULL,
				    "%s:%d: unexpected text "
				    "after the closing quote", path, line);
				skip_line(&p);
				buf_free(&val);
				continue;
			}
		} else {
			const char *v = p, *end, *c;

			skip_line(&p);
			end = p;
			/* an inline comment starts at whitespace + '#' */
			for (c = v; c < end; c++)
				if (*c == '#' && c > v &&
				    (c[-1] == ' ' || c[-1] == '\t')) {
					end = c;
					break;
				}
			while (end > v && isspace((unsigned char)end[-1]))
				end--;
			buf_append(&val, v, (size_t)(end - v));
		}
		dotenv_add(ld, de, path, start, xstrndup(key, klen),
		    xstrdup(buf_cstr(&val)));
		buf_free(&val);
	}
}

void
config_dotenv_load(struct config_loader *ld, const char *dir,
    struct config_dotenv *de)
{
	char tmp[128];
	const char *path;
	char *text;
	size_t len;

	path = config_ld_keep(ld, xasprintf("%s/.env", dir ? dir : "."));
	if (read_small_file(path, &text, &len) == -1) {
		if (errno != ENOENT)
			config_ld_problem(ld, NULL, NULL,
			    "could not read \"%s\": %s", path,
			    config_errstr(errno, tmp, sizeof(tmp)));
		return;
	}
	if (memchr(text, '\0', len) != NULL)
		config_ld_problem(ld, NULL, NULL,
		    "could not use \"%s\": it holds a NUL " "byte", path);
	else
		dotenv_parse(ld, path, text, de);
	free(text);
}
