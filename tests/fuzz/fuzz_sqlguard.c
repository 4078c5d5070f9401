/*
 * fuzz_sqlguard.c -- libFuzzer target for the SQL agent's statement guard
 * (lib/sqlguard.c).
 *
 * Random and mutated SQL never crashes the guard; every refusal is a 400
 * whose message starts "refused: "; and whatever it accepts is, read again
 * by sqlguard_shape (a plain look at the parse tree, not the guard's walk),
 * exactly one SelectStmt with no data-modifying node, no INTO and no
 * locking clause.  The input is copied to a NUL-terminated buffer (the
 * guard takes C strings; an embedded NUL ends the statement, as it would
 * for libpq).  Built only by `make check` when clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/sqlguard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sqlguard_shape shape;
	struct err e;
	char *sql;
	int rc;

	if (size > SQLGUARD_MAX_LEN + 16)
		return 0;
	sql = malloc(size + 1);
	memcpy(sql, data, size);
	sql[size] = '\0';
	err_clear(&e);
	rc = sqlguard_check(sql, "agent_data", &e);
	if (rc != 0 && (rc != -1 || e.status != 400 ||
	    strncmp(e.msg, "refused: ", 9) != 0))
		abort();
	if (rc == 0) {
		sqlguard_shape(sql, &shape);
		if (shape.n_statements != 1 ||
		    strcmp(shape.first_type, "SelectStmt") != 0 || shape.writes)
			abort();
	}
	free(sql);
	return 0;
}
