/*
 * Fuzz target for api/quantity: parsing must never crash, never leave the
 * output set on failure, and format -> parse must give the value back.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/quantity.h"
#include "common/kerr.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1024)
		return 0;
	char *in = xstrndup((const char *)data, size);
	int64_t v = -42;
	struct kerr err = KERR_INIT;
	int r = api_quantity_parse(in, &v, &err);
	if (r < 0) {
		if (v != -42 || (r != -EINVAL && r != -ERANGE) || !err.msg)
			abort();
	} else {
		if (v < 0)
			abort();
		char *cpu = api_quantity_format_cpu(v);
		int64_t back = -1;
		if (api_quantity_parse(cpu, &back, NULL) != 0 || back != v)
			abort();
		free(cpu);
		int64_t bytes = v / 1000;
		char *mem = api_quantity_format_bytes(bytes);
		if (api_quantity_parse(mem, &back, NULL) != 0 || back != bytes * 1000)
			abort();
		free(mem);
	}
	kerr_clear(&err);
	json_t *s = json_string(in);
	if (s) {
		int64_t m;
		api_quantity_memory(s, &m, NULL);
		json_decref(s);
	}
	free(in);
	return 0;
}
