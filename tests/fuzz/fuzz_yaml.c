/*
 * Fuzz target for manifests/yaml: any bytes, parsed with small limits, must
 * give either a stream or an error "NAME:LINE:COL: ..." (never a crash, a
 * leak or a hang), and every document must survive yaml_emit: re-parsing
 * the emitted text yields one equal document, without YAML 1.1 warnings, and
 * emitting that again gives the same text. Input that is JSON is also
 * emitted directly, to reach strings and shapes the parser would refuse.
 * A broken property aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kerr.h"
#include "common/util.h"
#include "manifests/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const char *text)
{
	if (!ok) {
		fprintf(stderr, "fuzz_yaml: %s\n--- emitted ---\n%s\n", what, text ? text : "");
		abort();
	}
}

/* The emitter alone, on values the parser might never build: yaml_emit(v)
 * must read back as v. */
static void emit_round_trip(json_t *v)
{
	_cleanup_free_ char *text = yaml_emit(v);
	struct yaml_limits big = {
	    .max_depth = 4096, .max_nodes = SIZE_MAX, .max_doc_bytes = SIZE_MAX};
	struct yaml_stream *s = NULL;
	struct kerr err = KERR_INIT;
	if (yaml_stream_parse("emitted", text, strlen(text), &big, &s, &err) < 0) {
		fprintf(stderr, "fuzz_yaml: %s\n", kerr_msg(&err));
		check(false, "emitted YAML does not parse", text);
	}
	check(s->n_docs == (json_is_null(v) ? 0 : 1), "emitted YAML is not one document", text);
	check(json_is_null(v) || json_equal(s->docs[0].value, v), "round trip changed the value",
	      text);
	check(s->n_warnings == 0, "emitted YAML draws YAML 1.1 warnings", text);
	yaml_stream_free(s);
}

static bool has_nul_key(json_t *v)
{
	const char *k;
	size_t klen, i;
	json_t *c;
	if (json_is_object(v)) {
		json_object_keylen_foreach(v, k, klen, c)
		{
			if (strlen(k) != klen || has_nul_key(c))
				return true;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
		{
			if (has_nul_key(c))
				return true;
		}
	}
	return false;
}

static void round_trip(const struct yaml_doc *doc)
{
	int line, col;
	check(yaml_doc_position(doc, "", &line, &col) == 0 && line >= 1 && col >= 1,
	      "no root position", NULL);
	_cleanup_free_ char *text = yaml_emit(doc->value);
	struct yaml_limits big = {
	    .max_depth = 1000, .max_nodes = SIZE_MAX, .max_doc_bytes = SIZE_MAX};
	struct yaml_stream *s = NULL;
	struct kerr err = KERR_INIT;
	if (yaml_stream_parse("emitted", text, strlen(text), &big, &s, &err) < 0) {
		fprintf(stderr, "fuzz_yaml: %s\n", kerr_msg(&err));
		check(false, "emitted YAML does not parse", text);
	}
	check(s->n_docs == 1, "emitted YAML is not one document", text);
	check(json_equal(s->docs[0].value, doc->value), "round trip changed the value", text);
	check(s->n_warnings == 0, "emitted YAML draws YAML 1.1 warnings", text);
	_cleanup_free_ char *again = yaml_emit(s->docs[0].value);
	check(strcmp(text, again) == 0, "emitting twice differs", text);
	yaml_stream_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yaml_limits lim = {.max_depth = 24, .max_nodes = 20000, .max_doc_bytes = 64 * 1024};
	struct yaml_stream *s = NULL;
	struct kerr err = KERR_INIT;
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (j && !has_nul_key(j)) /* the parser refuses NUL in keys, by design */
		emit_round_trip(j);
	json_decref(j);
	int r = yaml_stream_parse("fuzz", (const char *)data, size, &lim, &s, &err);
	if (r < 0) {
		check(r == -EINVAL || r == -E2BIG, "unexpected error code", err.msg);
		check(err.msg && strstartswith(err.msg, "fuzz:"), "error without a position",
		      err.msg);
		check(s == NULL, "*out written on failure", NULL);
		kerr_clear(&err);
		return 0;
	}
	for (size_t i = 0; i < s->n_warnings; i++)
		check(s->warnings[i].msg && s->warnings[i].line >= 1, "bad warning", NULL);
	for (size_t i = 0; i < s->n_docs; i++) {
		check(s->docs[i].value && !json_is_null(s->docs[i].value), "null document returned",
		      NULL);
		round_trip(&s->docs[i]);
	}
	yaml_stream_free(s);
	return 0;
}
