/*
 * scaffold.h -- the files `ingen init` writes: the folder cli/scaffold/ of
 * the source tree, compiled into the binary by build-aux/embed.sh (the
 * generated scaffold_files.c), so that `ingen init` needs no data folder.
 */
#ifndef INGEN_SCAFFOLD_H
#define INGEN_SCAFFOLD_H

#include <stddef.h>

struct scaffold_file {
	const char *path;               /* relative: "ingenious_extensions/..." */
	const unsigned char *data;
	size_t len;
};

/* Every file, in the order of cli/local.mk (a folder's files after it). */
extern const struct scaffold_file scaffold_files[];
extern const size_t scaffold_n_files;

#endif
