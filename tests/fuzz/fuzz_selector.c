/*
 * Fuzz target for api/selector: label and field selector parsing, matching
 * and the format -> parse round trip. The input is split at the first NUL:
 * before it the selector, after it a label set "k=v;k=v" to match against.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/selector.h"
#include "common/kerr.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *labels_from(const char *s, size_t len)
{
	json_t *labels = json_object();
	char *copy = xstrndup(s, len);
	char *save = NULL;
	for (char *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(kv, '=');
		if (eq) {
			*eq = '\0';
			json_object_set_new(labels, kv, json_string(eq + 1));
		}
	}
	free(copy);
	return labels;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *in = xstrndup((const char *)data, size);
	size_t n = strlen(in);
	json_t *labels =
	    n < size ? labels_from((const char *)data + n + 1, size - n - 1) : json_object();
	struct api_selector *sel = NULL;
	struct kerr err = KERR_INIT;
	if (api_selector_parse(in, &sel, &err) == 0) {
		bool m = api_selector_match(sel, labels);
		char *s = api_selector_format(sel);
		struct api_selector *again = NULL;
		if (api_selector_parse(s, &again, NULL) != 0)
			abort(); /* what format writes, parse must read */
		if (api_selector_match(again, labels) != m)
			abort();
		api_selector_free(again);
		free(s);
		api_selector_free(sel);
	} else if (!err.msg || !strstr(err.msg, "invalid label selector")) {
		abort();
	}
	kerr_clear(&err);
	struct api_fieldsel *fs = NULL;
	if (api_fieldsel_parse(in, &fs, &err) == 0) {
		json_t *obj = json_pack("{s:O}", "metadata", labels);
		api_fieldsel_match(fs, obj);
		api_fieldsel_equals(fs, "metadata.name");
		json_decref(obj);
		api_fieldsel_free(fs);
	}
	kerr_clear(&err);
	json_decref(labels);
	free(in);
	return 0;
}
