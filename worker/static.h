/*
 * static.h -- the static files the server serves, compiled into the binary
 * by build-aux/embed.sh (the API document docs/openapi.json, and the
 * page of /docs that renders it), so the server needs no data directory.
 */
#ifndef INGEN_STATIC_H
#define INGEN_STATIC_H

#include <stddef.h>

struct static_file {
	const char *name;              /* as served: "openapi.json", "docs.js" */
	const unsigned char *data;     /* NUL-terminated, len bytes before it */
	size_t len;
};

extern const struct static_file static_files[];
extern const size_t static_n_files;

/* The file of that name, or NULL. */
const struct static_file *static_find(const char *name);

#endif
