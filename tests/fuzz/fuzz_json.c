/*
 * fuzz_json.c -- libFuzzer target for the strict JSON input.
 *
 * Whatever json_parse accepts must be printable, and its compact print must
 * be accepted again; json_validate and json_parse must agree.  The input is
 * copied to a buffer of exactly its size so ASan catches any read past n.
 * Built only by `make check` when clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/err.h"
#include "lib/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_create(0);
	char *copy = malloc(size ? size : 1);
	const char *s;
	bool valid;
	struct err e;
	cJSON *j;

	memcpy(copy, data, size);
	err_clear(&e);
	valid = json_validate(copy, size, 16, &e) == 0;
	j = json_parse(a, copy, size, 16, &e);
	if (valid != (j != NULL))
		abort();
	if (j == NULL && e.status != 400)
		abort();
	if (j != NULL) {
		const char *str = NULL;
		int64_t iv;

		s = json_print(a, j);
		if (json_parse(a, s, strlen(s), 16, &e) == NULL)
			abort();
		(void)json_get_string(j, "a", false, &str, &e);
		(void)json_get_int(j, "b", false, &iv, &e);
	}
	free(copy);
	arena_destroy(a);
	return 0;
}
