/*
 * manifests/yaml — YAML manifests to JSON values (libyaml + jansson), and
 * JSON values back to YAML for `keel get -o yaml`.
 *
 * YAML 1.2 core schema: only true/false are booleans, null/~/empty are null,
 * 0755 is the decimal 755, 0o755 octal, 0x1F hex, .inf/.nan floats.
 * Plain scalars that YAML 1.1 tools (kubectl) would read differently — yes,
 * no, on, off, y, n (any case), 0755-style leading-zero numbers, sexagesimal
 * 1:30 — stay strings/numbers per 1.2 and produce a warning naming file,
 * line and column. Quoted scalars are always strings.
 *
 * Multi-document streams: each non-empty document is one value; empty
 * documents are skipped. Anchors, aliases and `<<` merge keys work; aliases
 * are expanded with a bound on the total number of nodes produced (alias
 * bombs), nesting depth is bounded, duplicate mapping keys are an error, a
 * UTF-8 BOM and CRLF line ends are accepted. Non-string mapping keys are
 * converted to their string form.
 *
 * Choices (see manifests/yaml.c for why):
 *  - Tags: !!str, !!int, !!float, !!bool, !!null, !!map, !!seq, !!merge and
 *    the non-specific "!" are honoured; any other tag (!!binary,
 *    !!timestamp, local tags such as !Ref) is an error naming the tag.
 *  - A mapping key is its scalar's source text (`1: x` -> "1", `~: y` ->
 *    "~"); duplicates are compared on that text; collections as keys, and
 *    keys containing NUL, are errors. 1.1 warnings apply to keys too (`on:`).
 *  - `<<` merges at its place in the mapping; explicit keys win, and in
 *    `<<: [*a, *b]` the earlier source wins.
 *  - .inf/.nan and numbers beyond int64/double are errors (JSON cannot
 *    hold them), suggesting quotes.
 *  - A document whose root is null (`--- ~`) counts as empty. Anchors are
 *    per document. %YAML directives do not change the schema.
 *  - At most 1000 warnings are kept; the last one then says so.
 *
 * Every error message starts "NAME:LINE:COL: " (1-based), e.g.
 *   "web.yaml:7:5: duplicate key \"image\" (first at line 5)".
 *
 * Positions: each document records where every value starts, keyed by the
 * field path of api/meta.h ("spec.template.spec.env[0].name"), so a field
 * error from the server can be shown at its line. A mapping entry is shown
 * at its key; a merged key at its `<<`; aliased content at the alias. Best
 * effort for pathological input: paths over 1 KiB, and entries past a 16 MiB
 * budget per document, are not recorded (lookups fall back to a parent).
 *
 * Thread-safe (no global state).
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct kerr;

/* A field left 0 takes its default. */
struct yaml_limits {
	size_t max_depth;       /* nesting depth; default 100 */
	size_t max_nodes;       /* nodes after alias expansion; default 1,000,000.
	                           Counted over the whole stream, merges included;
	                           a scalar weighs 1 + length/64 nodes, so aliases
	                           to a long string are bounded too */
	size_t max_doc_bytes;   /* one document's source; default 3 MiB (counted
	                           in characters, as libyaml's marks are) */
};

struct yaml_warning {
	int line, col;
	char *msg; /* owned; without the NAME:LINE:COL prefix */
};

struct yaml_doc {
	json_t *value;     /* owned */
	int line, col;     /* where the document's content begins */
	json_t *positions; /* owned: {"spec.replicas": [line, col], ...}; "" is the root */
};

struct yaml_stream {
	char *name; /* owned: the name messages use (a path, or "<stdin>") */
	struct yaml_doc *docs;
	size_t n_docs;
	struct yaml_warning *warnings;
	size_t n_warnings;
};

/* Parses buf[0..len) as a YAML stream. lim may be NULL for defaults.
 * Returns 0 and an owned stream, or -EINVAL (syntax, duplicate key, bad
 * alias), -E2BIG (a limit hit) with "NAME:LINE:COL: what" in err->msg.
 * *out is untouched on failure. */
int yaml_stream_parse(const char *name, const char *buf, size_t len,
                      const struct yaml_limits *lim, struct yaml_stream **out, struct kerr *err);
void yaml_stream_free(struct yaml_stream *s);

/* The position of path in doc, or of its longest recorded prefix (so an
 * error about a missing field points at its parent). Returns 0, or -ENOENT
 * if not even the root is known. */
int yaml_doc_position(const struct yaml_doc *doc, const char *path, int *line, int *col);

/* JSON value -> block-style YAML text, keys in object order, strings quoted
 * when a YAML 1.2 (or 1.1) reader would take them for something else.
 * Owned; never NULL. Re-parsing the text yields an equal value. */
char *yaml_emit(json_t *value);
