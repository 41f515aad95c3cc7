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
 * Every error message starts "NAME:LINE:COL: " (1-based), e.g.
 *   "web.yaml:7:5: duplicate key \"image\" (first at line 5)".
 *
 * Positions: each document records where every value starts, keyed by the
 * field path of api/meta.h ("spec.template.spec.env[0].name"), so a field
 * error from the server can be shown at its line.
 *
 * Thread-safe (no global state).
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct kerr;

struct yaml_limits {
	size_t max_depth;       /* nesting depth; default 100 */
	size_t max_nodes;       /* nodes after alias expansion; default 1,000,000 */
	size_t max_doc_bytes;   /* one document's source; default 3 MiB */
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
