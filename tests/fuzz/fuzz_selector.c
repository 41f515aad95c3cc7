/*
 * Fuzz target for api/selector: label and field selector parsing, matching
 * and the format -> parse round trip. The input is split at the first NUL:
 * before it the selector, after it a label set "k=v;k=v" to match against.
 * The same text is parsed as a field selector: a refusal has a message, and
 * a selector that is exactly `metadata.name=V` or `spec.nodeName=V` (what
 * api_fieldsel_equals reports, for the server's index) matches exactly the
 * objects whose field holds V — so this target covers field selectors too.
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

/* When sel is exactly `path=V` (what the server uses an index for), an
 * object whose path holds V matches and one whose path holds another value
 * does not: the index and the match agree. */
static void check_fieldsel_equals(const struct api_fieldsel *fs, const char *path)
{
	const char *v = api_fieldsel_equals(fs, path);
	if (!v)
		return;
	json_t *obj = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s}}", "kind", "Task", "metadata",
	                        "name", "web-1", "namespace", "web", "spec", "image", "i",
	                        "nodeName", "n1");
	json_t *field = json_object_get(obj, strncmp(path, "spec.", 5) ? "metadata" : "spec");
	const char *key = strchr(path, '.') + 1;
	json_object_set_new(field, key, json_string_nocheck(v));
	if (!api_fieldsel_match(fs, obj))
		abort();
	char *other = xasprintf("%sx", v);
	json_object_set_new(field, key, json_string_nocheck(other));
	if (api_fieldsel_match(fs, obj))
		abort();
	free(other);
	json_decref(obj);
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
		json_decref(obj);
		check_fieldsel_equals(fs, "metadata.name");
		check_fieldsel_equals(fs, "spec.nodeName");
		api_fieldsel_free(fs);
	} else if (!err.msg) {
		abort();
	}
	kerr_clear(&err);
	json_decref(labels);
	free(in);
	return 0;
}
