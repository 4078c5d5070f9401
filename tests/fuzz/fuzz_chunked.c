/*
 * fuzz_chunked.c -- libFuzzer target for the chunked body decoder.
 *
 * The input is decoded in one call and again in pieces whose sizes come
 * from the input; both must give the same result, status, consumed length
 * and payload.  The decoded size must respect max_body.  Built only by
 * `make check` when clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct http_limits fuzz_limits = { 256, 512, 12, 32, 128 };
#define FUZZ_MAX_BODY 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct http_chunked c;
	struct buf whole = BUF_INIT, split = BUF_INIT;
	struct err e1, e2;
	enum http_parse_result r1, r2 = HTTP_PARSE_INCOMPLETE;
	size_t used1 = 0, used, total = 0, off = 0, k = 0;

	err_clear(&e1);
	err_clear(&e2);
	http_chunked_init(&c);
	r1 = http_chunked_decode(&c, s, size, &whole, FUZZ_MAX_BODY,
	    &fuzz_limits, &used1, &e1);
	if (used1 > size || buf_rlen(&whole) > FUZZ_MAX_BODY)
		abort();
	if (r1 == HTTP_PARSE_INCOMPLETE && used1 != size)
		abort();

	http_chunked_init(&c);
	while (off < size) {
		size_t n = 1 + (size_t)((unsigned char)s[k++ % size] % 5);

		if (n > size - off)
			n = size - off;
		r2 = http_chunked_decode(&c, s + off, n, &split, FUZZ_MAX_BODY,
		    &fuzz_limits, &used, &e2);
		if (used > n)
			abort();
		total += used;
		off += n;
		if (r2 != HTTP_PARSE_INCOMPLETE)
			break;
		if (used != n)
			abort();
	}
	if (size > 0) {
		if (r1 != r2)
			abort();
		if (r1 == HTTP_PARSE_ERROR && e1.status != e2.status)
			abort();
		if (r1 == HTTP_PARSE_DONE && used1 != total)
			abort();
		/* (an empty buf has no data pointer: compare only bytes) */
		if (r1 != HTTP_PARSE_ERROR &&
		    (buf_rlen(&whole) != buf_rlen(&split) ||
		    (buf_rlen(&whole) > 0 && memcmp(whole.data + whole.off,
		    split.data + split.off, buf_rlen(&whole)) != 0)))
			abort();
	}
	buf_free(&whole);
	buf_free(&split);
	return 0;
}
