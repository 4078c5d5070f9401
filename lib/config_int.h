/*
 * config_int.h -- private to lib/config*.c: the key table's types, the
 * loader that the parsers of the sources fill, and the functions they
 * share.  Nothing outside lib/config*.c includes it.
 *
 *   config_keys.c   the table (keys, lists, aliases), nothing else
 *   config.c        keys and values, the loader, validation, introspection
 *   config_env.c    the environment, `.env`, NAME_FILE and the JSON forms
 *   config_file.c   the libconfig file (the only includer of <libconfig.h>)
 */
#ifndef INGEN_CONFIG_INT_H
#define INGEN_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/config.h"

#define CONFIG_ENV_PREFIX     "INGENIOUS_"
#define CONFIG_ENV_PREFIX_LEN (sizeof(CONFIG_ENV_PREFIX) - 1)
#define CONFIG_MASKED_SECRET  "********"
#define CONFIG_VALUE_FILE_MAX (1024 * 1024)  /* NAME_FILE and .env size cap */

enum key_type {
	KEY_STRING,
	KEY_INT,
	KEY_BOOL,
	KEY_ENUM,
};

/* Where a key lands: struct config, an entry of a list, or nowhere. */
enum key_scope {
	SCOPE_MAIN,
	SCOPE_MODEL,                  /* struct config_model, list "models" */
	SCOPE_SEARCH,                 /* struct config_search */
	SCOPE_UNUSED,                 /* the Python product's, never ours: no field */
};

#define KEY_SECRET   0x01         /* never echoed, masked in dumps */
#define KEY_RESTART  0x02         /* a reload keeps the old value and warns */
/* Stored in struct config, but nothing reads it yet (the feature is not
 * built): accepted for compatibility, a value other than the default is
 * warned about at load.  etc/ingenious.conf marks it "(unused)". */
#define KEY_UNUSED   0x04

struct config_key {
	const char *name;             /* dotted, lower case; lists "models.*.x" */
	enum key_type type;
	enum key_scope scope;
	size_t offset;                /* into the struct of the scope */
	const char *def;              /* default, as text */
	long long min, max;           /* KEY_INT */
	const char *const *values;    /* KEY_ENUM, NULL-terminated */
	unsigned flags;
};

/* The lists of groups, and the scope of their entries' keys. */
struct config_list {
	const char *name;
	enum key_scope scope;
	size_t elem_size;
};

/* A variable of the reference that sets a key under another name. */
struct config_alias {
	const char *env;
	const char *key;
};

#define CONFIG_N_LISTS 2

/* config_keys.c: THE table, in documentation order, and its companions. */
extern const struct config_key config_keys[];
extern const size_t config_n_keys;
extern const struct config_list config_lists[CONFIG_N_LISTS];
extern const struct config_alias config_aliases[];
extern const size_t config_n_aliases;
extern const char *const config_env_known[];    /* NULL-terminated */

/* Everything one config_load() call builds, shared by the parsers. */
struct config_loader {
	struct config *cfg;
	struct config_problems *pr;
	char **strs;                  /* labels and names, freed at the end */
	size_t n_strs, cap_strs;
	const char **src;             /* config_n_keys: the source of a main key */
	const char **lsrc[CONFIG_N_LISTS];  /* per entry, config_n_keys sources */
};

/* One variable of an environment-like source. */
struct config_env_var {
	const char *name;
	const char *value;
	const char *label;            /* for messages: the name, or "file:line: name" */
};

/* The variables of a `.env` file. */
struct config_dotenv {
	struct config_env_var *vars;
	size_t n, cap;
};

/* ---- config.c: keys, values, the loader's helpers ---------------------- */

/* The key of that dotted name (case-insensitive), or NULL. */
const struct config_key *config_key_find(const char *name);
/* Its position in config_keys. */
size_t config_key_index(const struct config_key *k);
/* Is `name` a group of the table ("web_configuration.authentication")? */
bool config_group_exists(const char *name);
/* The index of the list of that name in config_lists, or -1. */
int config_list_find(const char *name);
/* What a value of type t looks like, for "expected ..." messages. */
const char *config_key_type_expect(enum key_type t);
/* "models.*.x" with "*" replaced by index (a copy; index < 0: unchanged). */
char *config_name_with_index(const char *name, int index);
/* strerror_r, with a better text for EFBIG (a file over the size cap). */
const char *config_errstr(int errnum, char *tmp, size_t len);

/* The entries of list li of cfg and their number. */
char *config_list_base(const struct config *cfg, size_t li, size_t *n);
/* Resize list li to n entries; new entries hold the defaults. */
void config_list_resize(struct config_loader *ld, size_t li, size_t n);
/* Entry `pos` of list li, and in *srcp the slot recording who set k in it. */
char *config_list_entry(struct config_loader *ld, size_t li, size_t pos,
    const struct config_key *k, const char ***srcp);

/* Keep s (heap) until the load ends; returns s. */
const char *config_ld_keep(struct config_loader *ld, char *s);
/* A problem (fatal) or a warning line "<label>: <what>: <message>". */
void config_ld_problem(struct config_loader *ld, const char *label,
    const char *what, const char *fmt, ...) ING_PRINTF(4, 5);
void config_ld_warning(struct config_loader *ld, const char *label,
    const char *what, const char *fmt, ...) ING_PRINTF(4, 5);
/*
 * Set key k (stored under base) from `text`, given by source `label`;
 * `what` names the key when the label does not.  Records the source in
 * *srcp (may be NULL).  A bad value is a problem line; returns -1.
 */
int config_ld_set(struct config_loader *ld, const struct config_key *k,
    char *base, const char **srcp, const char *text, const char *label,
    const char *what);
/* Set a main-scope (or unused) key. */
int config_ld_set_main(struct config_loader *ld, const struct config_key *k,
    const char *text, const char *label, const char *what);

/* ---- config_env.c: the environment and .env ------------------------------ */

/* The variables of `env` that may concern us (INGENIOUS_*, the aliases and
 * their _FILE forms); values point into env.  Free the array. */
struct config_env_var *config_env_collect(struct config_loader *ld,
    char *const *env, size_t *np);
/* Read `<dir>/.env` (dir NULL = ".") into de; a missing file is no error. */
void config_dotenv_load(struct config_loader *ld, const char *dir,
    struct config_dotenv *de);
/* Does vars hold `name` (case-insensitive)? */
bool config_env_has(const struct config_env_var *vars, size_t n,
    const char *name);
/* Apply one environment-like source (see config.h for the rules). */
void config_env_apply(struct config_loader *ld,
    const struct config_env_var *vars, size_t n);

/* ---- config_file.c: the libconfig file ------------------------------------ */

/* Parse the file at path and apply every setting; problems as lines.  Sets
 * cfg->source_file on success. */
void config_file_load(struct config_loader *ld, const char *path);

#endif
