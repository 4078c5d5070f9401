/*
 * revisions.h -- the prompt templates of the revisions, on disk:
 * <file_storage.revisions.path>/templates/prompts/<revision_id>/<file>,
 * as the reference lays them out, with every version of a file kept.
 *
 * Names: a revision id and a file name are each one path component of at
 * most 128 bytes, printable ASCII letters, digits, '.', '_' and '-', not
 * starting with '.'; a file name ends in ".md" or ".jinja".  Anything else
 * (.., '/', '\', NUL, absolute paths, encoded slashes once decoded) is
 * refused with 400 and nothing is read or written.  A folder or file that
 * is a symbolic link pointing outside the templates folder is refused too
 * (files are opened with O_NOFOLLOW below a realpath-checked folder).
 *
 * Versions: an update never rewrites a file in place.  It writes the new
 * content to a temporary file in the same folder, fsyncs it, renames it
 * over the file, and keeps a copy under
 * <revision folder>/.versions/<file>/<sha256 hex>, so every content a file
 * ever had stays readable by its hash.  The hash of a content is the
 * SHA-256 of its bytes, lower-case hex.
 */
#ifndef INGEN_REVISIONS_H
#define INGEN_REVISIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/crypto.h"
#include "lib/err.h"

struct arena;
struct config;

#define REV_NAME_MAX 128
#define REV_FILE_MAX (1024 * 1024)      /* bytes of one template */
#define REV_HASH_LEN CRYPTO_SHA256_HEX_LEN

/* 0 when `name` is a valid revision id (file = false) or template file name
 * (file = true); -1 with e set (400, the reason) otherwise. */
int rev_name_check(const char *name, bool file, struct err *e);

/* The folder <revisions path>/templates/prompts, as a path in `a`. */
const char *rev_root(const struct config *cfg, struct arena *a);

/*
 * The revision ids (sorted) and, for one revision, its template files
 * (sorted).  0 with *names (in a) and *n set; a missing folder gives 0
 * names, not an error; -1 with e set on a bad name or an I/O error.
 */
int rev_list(const struct config *cfg, struct arena *a, const char ***names,
    size_t *n, struct err *e);
int rev_files(const struct config *cfg, const char *revision, struct arena *a,
    const char ***names, size_t *n, struct err *e);

/*
 * Read a template: 0 with *text (NUL-terminated, in a), *len and hash set;
 * -1 with e set: 400 a bad name, 404 no such file, 413 larger than
 * REV_FILE_MAX, 500 I/O.
 */
int rev_read(const struct config *cfg, const char *revision, const char *file,
    struct arena *a, const char **text, size_t *len,
    char hash[REV_HASH_LEN + 1], struct err *e);

/* Write a new version of a template (the folder of the revision must
 * exist): 0 with hash set, -1 with e set (400, 404 no such revision, 413,
 * 500).  Atomic: a reader sees the old or the new content, never a mix. */
int rev_write(const struct config *cfg, const char *revision, const char *file,
    const char *text, size_t len, char hash[REV_HASH_LEN + 1], struct err *e);

/* Create an empty revision folder (409 when it exists), or a copy of the
 * templates of revision `from` when it is not NULL (404 when it does not
 * exist).  0, or -1 with e set. */
int rev_create(const struct config *cfg, const char *revision, const char *from,
    struct err *e);

/* One kept version of a file. */
struct rev_version {
	char hash[REV_HASH_LEN + 1];
	time_t mtime;                   /* when it was written */
	size_t size;
};

/* The kept versions of a file, newest first: 0 with *v (in a) and *n. */
int rev_versions(const struct config *cfg, const char *revision,
    const char *file, struct arena *a, struct rev_version **v, size_t *n,
    struct err *e);

/* The content a file had with that hash (a kept version): as rev_read. */
int rev_read_version(const struct config *cfg, const char *revision,
    const char *file, const char *hash, struct arena *a, const char **text,
    size_t *len, struct err *e);

#endif
