/*
 * manifests/yaml — YAML streams to jansson values, with source positions.
 *
 * Built on libyaml's event parser rather than its document loader: events
 * let us build the JSON value in one pass with an explicit stack (no
 * recursion, so nesting depth is a checked limit rather than a crash), count
 * every node as it is produced (an alias adds the size of what it expands to,
 * which is how "billion laughs" documents are stopped before they allocate),
 * and record each value's line and column under its API field path as we go.
 *
 * Decisions a reader may look for:
 *  - Scalars: untagged plain scalars follow the YAML 1.2 core schema
 *    (yaml_scalar.c); quoted and block scalars are strings. The tags !!str,
 *    !!int, !!float, !!bool, !!null, !!map, !!seq, !!merge and the
 *    non-specific "!" are honoured; any other tag (!!binary, !!timestamp,
 *    local tags like !Ref) is an error naming the tag, because a manifest
 *    the API cannot represent should fail loudly, not half-apply.
 *  - Mapping keys are the key's source text, whatever it resolves to
 *    (`1: x` has the key "1", `~: y` the key "~"); duplicates are found on
 *    that text. Collections as keys are errors.
 *  - Aliases are deep copies, so a caller may edit one place of a document
 *    without changing another. An anchor must be defined earlier in the same
 *    document; one naming its own enclosing collection is "recursive".
 *  - `<<` merges a mapping, or a sequence of mappings, into the mapping that
 *    holds it, at the place of the `<<` entry: keys written explicitly in the
 *    mapping win (before or after the `<<`), and earlier sources in a merge
 *    sequence win over later ones. Merged keys point at the `<<` line.
 *  - max_nodes counts the whole stream (aliases expanded, merges included);
 *    max_doc_bytes is measured in characters, as libyaml counts its marks.
 *  - Positions are best effort: paths longer than 1 KiB and anything past a
 *    16 MiB-per-document budget are not recorded (yaml_doc_position then
 *    answers with the nearest recorded parent). Aliased content is recorded
 *    at the alias only.
 *  - At most 1000 warnings are kept per stream; the last one says so.
 */
#include "manifests/yaml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "manifests/yaml_scalar.h"

#define DEFAULT_MAX_DEPTH     100
#define DEFAULT_MAX_NODES     1000000
#define DEFAULT_MAX_DOC_BYTES (3u << 20)
#define MAX_PATH_LEN          1024
#define POS_BUDGET            (16u << 20)
#define POS_ENTRY_COST        96 /* rough bytes per recorded position beyond its path */
#define MAX_WARNINGS          1000
#define CORE_TAG              "tag:yaml.org,2002:"

struct anchor {
	json_t *value; /* owned */
	size_t nodes;  /* nodes an alias to it adds */
	size_t height; /* nesting levels it adds: 0 for a scalar */
	char *text;    /* owned source text of a scalar (for use as a key); else NULL */
	size_t text_len;
};

struct frame {
	bool is_map;
	json_t *v;     /* owned container */
	char *path;    /* owned; NULL when positions are not recorded below */
	int line, col; /* where the collection starts */
	size_t index;  /* sequences: the next item's index */
	char *key;     /* mappings: owned pending key, NULL while expecting one */
	size_t key_len;
	int key_line, key_col;
	bool key_merge; /* the pending key is `<<` */
	bool had_merge;
	json_t *merged; /* owned: keys that came from `<<` and may be overridden */
	char *anchor;   /* owned: registered when the collection ends */
	size_t nodes_at_start;
	size_t height;
};

struct parser {
	const char *name, *buf;
	size_t len;
	struct yaml_limits lim;
	yaml_parser_t yp;
	struct frame *stack;
	size_t depth, cap;
	json_t *anchor_ix; /* name -> index into anchors[] */
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	size_t nodes;
	bool aliased; /* an alias was expanded: says so when max_nodes is hit */
	bool in_doc;
	size_t doc_start;
	json_t *positions;
	size_t pos_bytes;
	json_t *root;
	int root_line, root_col;
	struct yaml_stream *s;
	struct kerr *err;
};

/* ---- errors and positions ---- */

static int fail(struct parser *p, int code, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct parser *p, int code, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	return kerr_set(p->err, code, "%s:%d:%d: %s", p->name, line, col, msg);
}

/* Length of the line break at b[i..len), 0 if none; libyaml's breaks. */
static size_t break_len(const unsigned char *b, size_t i, size_t len)
{
	if (b[i] == '\n')
		return 1;
	if (b[i] == '\r')
		return (i + 1 < len && b[i + 1] == '\n') ? 2 : 1;
	if (b[i] == 0xC2 && i + 1 < len && b[i + 1] == 0x85)
		return 2;
	if (b[i] == 0xE2 && i + 2 < len && b[i + 1] == 0x80 &&
	    (b[i + 2] == 0xA8 || b[i + 2] == 0xA9))
		return 3;
	return 0;
}

/* Walks the buffer to (line0, col0) in libyaml's 0-based character marks, or
 * to byte offset stop; returns the byte offset reached and fills line/col. */
static size_t walk(const struct parser *p, size_t line0, size_t col0, size_t stop, int *line,
                   int *col)
{
	const unsigned char *b = (const unsigned char *)p->buf;
	size_t i = (p->len >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0, l = 0, c = 0;
	while (i < p->len && i < stop && !(l == line0 && c == col0)) {
		size_t bl = break_len(b, i, p->len);
		if (bl) {
			i += bl, l++, c = 0;
			continue;
		}
		i++, c++;
		while (i < p->len && (b[i] & 0xC0) == 0x80)
			i++;
	}
	*line = (int)l + 1;
	*col = (int)c + 1;
	return i;
}

static int libyaml_error(struct parser *p)
{
	yaml_parser_t *y = &p->yp;
	if (y->error == YAML_MEMORY_ERROR)
		abort(); /* out of memory, as xmalloc does */
	const char *problem = y->problem ? y->problem : "invalid YAML";
	int line, col;
	if (y->error == YAML_READER_ERROR) {
		walk(p, SIZE_MAX, SIZE_MAX, y->problem_offset, &line, &col);
		if (y->problem_value != -1)
			return fail(p, EINVAL, line, col,
			            "%s (0x%02X); manifests must be UTF-8 text", problem,
			            (unsigned)y->problem_value);
		return fail(p, EINVAL, line, col, "%s", problem);
	}
	line = (int)y->problem_mark.line + 1;
	col = (int)y->problem_mark.column + 1;
	int l2, c2;
	size_t at = walk(p, y->problem_mark.line, y->problem_mark.column, SIZE_MAX, &l2, &c2);
	bool tab = at < p->len && p->buf[at] == '\t' && !strstr(problem, "tab");
	const char *hint =
	    tab ? " (a tab: YAML does not allow tabs for indentation; use spaces)" : "";
	if (!y->context)
		return fail(p, EINVAL, line, col, "%s%s", problem, hint);
	if (y->context_mark.line == y->problem_mark.line &&
	    y->context_mark.column == y->problem_mark.column)
		return fail(p, EINVAL, line, col, "%s %s%s", problem, y->context, hint);
	return fail(p, EINVAL, line, col, "%s %s at line %zu, column %zu%s", problem, y->context,
	            y->context_mark.line + 1, y->context_mark.column + 1, hint);
}

static void record(struct parser *p, const char *path, int line, int col)
{
	if (!path)
		return;
	size_t cost = strlen(path) + POS_ENTRY_COST;
	if (p->pos_bytes + cost > POS_BUDGET)
		return;
	p->pos_bytes += cost;
	json_t *pos = json_array();
	json_array_append_new(pos, json_integer(line));
	json_array_append_new(pos, json_integer(col));
	json_object_set_new(p->positions, path, pos);
}

static struct frame *top(struct parser *p)
{
	return p->depth ? &p->stack[p->depth - 1] : NULL;
}

static bool expecting_key(struct parser *p)
{
	struct frame *f = top(p);
	return f && f->is_map && !f->key;
}

/* Path of the node about to be added to the top frame; owned or NULL. */
static char *child_path(struct parser *p)
{
	struct frame *f = top(p);
	if (!f)
		return xstrdup("");
	if (!f->path || strlen(f->path) > MAX_PATH_LEN || (f->is_map && f->key_merge))
		return NULL;
	return f->is_map ? api_path_key(f->path, f->key) : api_path_index(f->path, f->index);
}

/* A value node starts at mark: records its position (a mapping entry is
 * shown at its key) and returns its path (owned or NULL). */
static char *node_begin(struct parser *p, yaml_mark_t mark)
{
	struct frame *f = top(p);
	int line = (int)mark.line + 1, col = (int)mark.column + 1;
	if (f && f->is_map)
		line = f->key_line, col = f->key_col;
	if (!f)
		p->root_line = line, p->root_col = col;
	char *path = child_path(p);
	record(p, path, line, col);
	return path;
}

/* A scalar weighs one node per started 64 bytes beyond the first node, so
 * that aliases to one long string cannot multiply memory unseen. */
static size_t scalar_cost(size_t len)
{
	return 1 + len / 64;
}

static int count_nodes(struct parser *p, size_t n, yaml_mark_t mark)
{
	if (n > p->lim.max_nodes || p->nodes > p->lim.max_nodes - n)
		return fail(p, E2BIG, (int)mark.line + 1, (int)mark.column + 1,
		            "more than %zu nodes%s", p->lim.max_nodes,
		            p->aliased ? " after expanding aliases (an alias bomb?)" : "");
	p->nodes += n;
	return 0;
}

static void add_warning(struct parser *p, yaml_mark_t mark, char *msg)
{
	struct yaml_stream *s = p->s;
	if (s->n_warnings > MAX_WARNINGS) {
		free(msg);
		return;
	}
	if (s->n_warnings == MAX_WARNINGS) {
		free(msg);
		msg = xasprintf("more than %d warnings; the rest are not shown", MAX_WARNINGS);
	}
	s->warnings = xrealloc(s->warnings, (s->n_warnings + 1) * sizeof *s->warnings);
	s->warnings[s->n_warnings++] = (struct yaml_warning){
	    .line = (int)mark.line + 1, .col = (int)mark.column + 1, .msg = msg};
}

/* ---- anchors ---- */

static void anchors_clear(struct parser *p)
{
	for (size_t i = 0; i < p->n_anchors; i++) {
		json_decref(p->anchors[i].value);
		free(p->anchors[i].text);
	}
	p->n_anchors = 0;
	json_object_clear(p->anchor_ix);
}

/* Registers name -> value (a reference is taken); text is copied. */
static void anchor_set(struct parser *p, const char *name, json_t *value, size_t nodes,
                       size_t height, const char *text, size_t text_len)
{
	json_t *ix = json_object_get(p->anchor_ix, name);
	struct anchor *a;
	if (ix) {
		a = &p->anchors[json_integer_value(ix)];
		json_decref(a->value);
		free(a->text);
	} else {
		if (p->n_anchors == p->cap_anchors) {
			p->cap_anchors = p->cap_anchors ? 2 * p->cap_anchors : 16;
			p->anchors = xrealloc(p->anchors, p->cap_anchors * sizeof *p->anchors);
		}
		json_object_set_new(p->anchor_ix, name, json_integer((json_int_t)p->n_anchors));
		a = &p->anchors[p->n_anchors++];
	}
	*a = (struct anchor){.value = json_incref(value), .nodes = nodes, .height = height};
	if (text) {
		a->text = xmalloc(text_len + 1);
		memcpy(a->text, text, text_len);
		a->text[text_len] = '\0';
		a->text_len = text_len;
	}
}

static const struct anchor *anchor_get(struct parser *p, const char *name)
{
	json_t *ix = json_object_get(p->anchor_ix, name);
	return ix ? &p->anchors[json_integer_value(ix)] : NULL;
}

/* ---- building values ---- */

/* Takes the pending key of a mapping frame, checking for duplicates. */
static int set_key(struct parser *p, const char *text, size_t len, bool merge, yaml_mark_t mark)
{
	struct frame *f = top(p);
	int line = (int)mark.line + 1, col = (int)mark.column + 1;
	if (memchr(text, '\0', len)) /* jansson and field paths treat keys as C strings */
		return fail(p, EINVAL, line, col,
		            "a mapping key cannot contain a NUL character (\\0)");
	if (merge && f->had_merge)
		return fail(p, EINVAL, line, col, "duplicate merge key \"<<\" in one mapping");
	if (!merge && json_object_getn(f->v, text, len) &&
	    !(f->merged && json_object_getn(f->merged, text, len))) {
		_cleanup_free_ char *k = xstrndup(text, len);
		_cleanup_free_ char *path = f->path ? api_path_key(f->path, k) : NULL;
		json_t *first = path ? json_object_get(p->positions, path) : NULL;
		const char *more = len > 80 ? "..." : "";
		if (first)
			return fail(p, EINVAL, line, col,
			            "duplicate key \"%.80s%s\" (first at line %d)", k, more,
			            (int)json_integer_value(json_array_get(first, 0)));
		return fail(p, EINVAL, line, col, "duplicate key \"%.80s%s\"", k, more);
	}
	f->key = xmalloc(len + 1);
	memcpy(f->key, text, len);
	f->key[len] = '\0';
	f->key_len = len;
	f->key_line = line;
	f->key_col = col;
	f->key_merge = merge;
	f->had_merge |= merge;
	return 0;
}

static int merge_one(struct parser *p, struct frame *f, json_t *src)
{
	const char *k;
	size_t klen;
	json_t *v;
	if (!json_is_object(src))
		return fail(
		    p, EINVAL, f->key_line, f->key_col,
		    "the value of a merge key \"<<\" must be a mapping or a sequence of mappings");
	if (!f->merged)
		f->merged = json_object();
	json_object_keylen_foreach(src, k, klen, v)
	{
		if (json_object_getn(f->v, k, klen))
			continue; /* explicit keys, and earlier merge sources, win */
		json_object_setn(f->v, k, klen, v);
		json_object_setn_new(f->merged, k, klen, json_true());
		_cleanup_free_ char *path =
		    f->path && strlen(f->path) <= MAX_PATH_LEN ? api_path_key(f->path, k) : NULL;
		record(p, path, f->key_line, f->key_col);
	}
	return 0;
}

static int merge_value(struct parser *p, struct frame *f, json_t *value)
{
	if (!json_is_array(value))
		return merge_one(p, f, value);
	size_t i;
	json_t *item;
	json_array_foreach(value, i, item)
	{
		int r = merge_one(p, f, item);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Adds a finished value (owned; taken even on failure) to the top frame, or
 * makes it the document root. height is its nesting (0 for scalars). */
static int add_value(struct parser *p, json_t *value, size_t height)
{
	_cleanup_json_ json_t *v = value;
	struct frame *f = top(p);
	int r = 0;
	if (!f) {
		p->root = TAKE_PTR(v);
		return 0;
	}
	if (height + 1 > f->height)
		f->height = height + 1;
	if (!f->is_map) {
		json_array_append_new(f->v, TAKE_PTR(v));
		f->index++;
		return 0;
	}
	if (f->key_merge) {
		r = merge_value(p, f, v);
	} else {
		json_object_setn_new(f->v, f->key, f->key_len, TAKE_PTR(v));
		if (f->merged)
			json_object_deln(f->merged, f->key, f->key_len);
	}
	free(f->key);
	f->key = NULL;
	f->key_merge = false;
	return r;
}

/* ---- tags ---- */

/* Shows "tag:yaml.org,2002:binary" as the "!!binary" a user wrote. */
static int bad_tag(struct parser *p, const char *tag, yaml_mark_t mark, const char *what)
{
	bool core = strstartswith(tag, CORE_TAG);
	return fail(
	    p, EINVAL, (int)mark.line + 1, (int)mark.column + 1,
	    "unsupported tag %s%.80s on %s (keel understands !!str, !!int, !!float, !!bool, "
	    "!!null, !!map, !!seq and !!merge)",
	    core ? "!!" : "", core ? tag + strlen(CORE_TAG) : tag, what);
}

/* The short core tag of a scalar ("str", "int", ..., "merge"), NULL for an
 * untagged one; *bad set when the tag is not one we honour. */
static const char *scalar_tag(const char *tag, bool *bad)
{
	static const char *const known[] = {"str", "int", "float", "bool", "null", "merge"};
	*bad = false;
	if (!tag)
		return NULL;
	if (streq(tag, "!"))
		return "str";
	for (size_t i = 0; strstartswith(tag, CORE_TAG) && i < ARRAY_SIZE(known); i++)
		if (streq(tag + strlen(CORE_TAG), known[i]))
			return known[i];
	*bad = true;
	return NULL;
}

/* ---- events ---- */

/* Resolves a scalar event. For a key (is_key), whose text is what counts,
 * an untagged plain scalar no number can hold (99999999999999999999, .inf)
 * is just a string. */
static int scalar_value(struct parser *p, const yaml_event_t *ev, const char *tag, bool is_key,
                        json_t **out)
{
	const char *text = (const char *)ev->data.scalar.value, *why = NULL;
	size_t len = ev->data.scalar.length;
	yaml_mark_t m = ev->start_mark;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
	int r;
	if (tag && streq(tag, "merge"))
		return fail(p, EINVAL, (int)m.line + 1, (int)m.column + 1,
		            "!!merge is only valid on a key");
	if (plain) {
		r = yaml_scalar_resolve(text, len, out, &why);
		if (r < 0 && is_key)
			r = yaml_scalar_resolve_tagged("str", text, len, out, &why);
	} else
		r = yaml_scalar_resolve_tagged(tag ? tag : "str", text, len, out, &why);
	if (r < 0) {
		const char *advice = r == -EINVAL ? "" : "; quote it if you mean a string";
		if (len > 64 || memchr(text, '\0', len))
			return fail(p, EINVAL, (int)m.line + 1, (int)m.column + 1,
			            "a %zu-byte scalar %s%s", len, why, advice);
		return fail(p, EINVAL, (int)m.line + 1, (int)m.column + 1, "\"%.*s\" %s%s",
		            (int)len, text, why, advice);
	}
	if (plain) {
		char *w = yaml_scalar_warning_11(text, len);
		if (w)
			add_warning(p, m, w);
	}
	return 0;
}

static int on_scalar(struct parser *p, const yaml_event_t *ev)
{
	const char *text = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *anchor = (const char *)ev->data.scalar.anchor;
	bool bad;
	const char *tag = scalar_tag((const char *)ev->data.scalar.tag, &bad);
	if (bad)
		return bad_tag(p, (const char *)ev->data.scalar.tag, ev->start_mark, "a scalar");
	size_t cost = scalar_cost(len);
	int r = count_nodes(p, cost, ev->start_mark);
	if (r < 0)
		return r;
	if (expecting_key(p)) {
		bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
		bool merge =
		    (plain && len == 2 && memcmp(text, "<<", 2) == 0) || streq(tag, "merge");
		_cleanup_json_ json_t *check = NULL;
		if (!merge &&
		    (r = scalar_value(p, ev, tag, true, &check)) < 0) /* validates, and warns */
			return r;
		if (anchor)
			anchor_set(p, anchor, check ? check : json_null(), cost, 0, text, len);
		return set_key(p, text, len, merge, ev->start_mark);
	}
	json_t *value = NULL;
	if ((r = scalar_value(p, ev, tag, false, &value)) < 0)
		return r;
	if (anchor)
		anchor_set(p, anchor, value, cost, 0, text, len);
	free(node_begin(p, ev->start_mark));
	return add_value(p, value, 0);
}

static int on_alias(struct parser *p, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	yaml_mark_t m = ev->start_mark;
	int line = (int)m.line + 1, col = (int)m.column + 1, r;
	const struct anchor *a = anchor_get(p, name);
	if (!a) {
		for (size_t i = 0; i < p->depth; i++)
			if (streq(p->stack[i].anchor, name))
				return fail(p, EINVAL, line, col,
				            "alias *%.80s refers to a collection that contains it "
				            "(recursive alias)",
				            name);
		return fail(p, EINVAL, line, col,
		            "unknown alias *%.80s (an anchor &%.80s must come earlier in the same "
		            "document)",
		            name, name);
	}
	p->aliased = true;
	if ((r = count_nodes(p, a->nodes, m)) < 0)
		return r;
	if (p->depth + a->height > p->lim.max_depth)
		return fail(p, E2BIG, line, col, "alias *%.80s nests deeper than %zu levels", name,
		            p->lim.max_depth);
	if (expecting_key(p)) {
		if (!a->text)
			return fail(p, EINVAL, line, col,
			            "alias *%.80s is a collection and cannot be a mapping key",
			            name);
		return set_key(p, a->text, a->text_len, false, m);
	}
	free(node_begin(p, m));
	return add_value(p, json_deep_copy(a->value), a->height);
}

static int on_start(struct parser *p, const yaml_event_t *ev, bool is_map)
{
	yaml_mark_t m = ev->start_mark;
	int line = (int)m.line + 1, col = (int)m.column + 1, r;
	const char *tag =
	    (const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
	const char *anchor =
	    (const char *)(is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
	const char *what = is_map ? "a mapping" : "a sequence";
	if (tag && !streq(tag, "!") && !streq(tag, is_map ? CORE_TAG "map" : CORE_TAG "seq"))
		return bad_tag(p, tag, m, what);
	if (expecting_key(p))
		return fail(p, EINVAL, line, col,
		            "%s cannot be a mapping key; keys must be scalars", what);
	if (p->depth + 1 > p->lim.max_depth)
		return fail(p, E2BIG, line, col, "nesting deeper than %zu levels",
		            p->lim.max_depth);
	if ((r = count_nodes(p, 1, m)) < 0)
		return r;
	char *path = node_begin(p, m);
	if (p->depth == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->stack = xrealloc(p->stack, p->cap * sizeof *p->stack);
	}
	p->stack[p->depth++] = (struct frame){
	    .is_map = is_map,
	    .v = is_map ? json_object() : json_array(),
	    .path = path,
	    .line = line,
	    .col = col,
	    .anchor = anchor ? xstrdup(anchor) : NULL,
	    .nodes_at_start = p->nodes,
	    .height = 1,
	};
	return 0;
}

static void frame_free(struct frame *f)
{
	json_decref(f->v);
	json_decref(f->merged);
	free(f->path);
	free(f->key);
	free(f->anchor);
}

static int on_end(struct parser *p)
{
	struct frame f = p->stack[--p->depth];
	json_t *v = TAKE_PTR(f.v);
	if (f.anchor)
		anchor_set(p, f.anchor, v, p->nodes - f.nodes_at_start + 1, f.height, NULL, 0);
	size_t height = f.height;
	frame_free(&f);
	return add_value(p, v, height);
}

static void on_doc_start(struct parser *p, const yaml_event_t *ev)
{
	p->in_doc = true;
	p->doc_start = ev->start_mark.index;
	p->positions = json_object();
	p->pos_bytes = 0;
}

static void on_doc_end(struct parser *p)
{
	struct yaml_stream *s = p->s;
	p->in_doc = false;
	anchors_clear(p);
	if (!p->root || json_is_null(p->root)) { /* empty documents are skipped */
		json_decref(TAKE_PTR(p->root));
		json_decref(TAKE_PTR(p->positions));
		return;
	}
	s->docs = xrealloc(s->docs, (s->n_docs + 1) * sizeof *s->docs);
	s->docs[s->n_docs++] = (struct yaml_doc){
	    .value = TAKE_PTR(p->root),
	    .line = p->root_line,
	    .col = p->root_col,
	    .positions = TAKE_PTR(p->positions),
	};
}

static int on_event(struct parser *p, const yaml_event_t *ev)
{
	if (p->in_doc && ev->end_mark.index - p->doc_start > p->lim.max_doc_bytes)
		return fail(p, E2BIG, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
		            "document larger than %zu bytes", p->lim.max_doc_bytes);
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		on_doc_start(p, ev);
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		on_doc_end(p);
		return 0;
	case YAML_SCALAR_EVENT:
		return on_scalar(p, ev);
	case YAML_ALIAS_EVENT:
		return on_alias(p, ev);
	case YAML_MAPPING_START_EVENT:
		return on_start(p, ev, true);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(p, ev, false);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		return on_end(p);
	default:
		return 0;
	}
}

/* ---- public ---- */

static void parser_free(struct parser *p)
{
	while (p->depth)
		frame_free(&p->stack[--p->depth]);
	free(p->stack);
	anchors_clear(p);
	free(p->anchors);
	json_decref(p->anchor_ix);
	json_decref(p->positions);
	json_decref(p->root);
	yaml_stream_free(p->s);
	yaml_parser_delete(&p->yp);
}

int yaml_stream_parse(const char *name, const char *buf, size_t len, const struct yaml_limits *lim,
                      struct yaml_stream **out, struct kerr *err)
{
	struct parser p = {.name = name ? name : "<input>",
	                   .buf = buf ? buf : "",
	                   .len = buf ? len : 0,
	                   .err = err};
	p.lim = (struct yaml_limits){DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES, DEFAULT_MAX_DOC_BYTES};
	if (lim && lim->max_depth)
		p.lim.max_depth = lim->max_depth;
	if (lim && lim->max_nodes)
		p.lim.max_nodes = lim->max_nodes;
	if (lim && lim->max_doc_bytes)
		p.lim.max_doc_bytes = lim->max_doc_bytes;
	if (!yaml_parser_initialize(&p.yp))
		abort();
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)p.buf, p.len);
	p.anchor_ix = json_object();
	p.s = xcalloc(1, sizeof *p.s);
	p.s->name = xstrdup(p.name);
	int r = 0;
	for (bool done = false; !done && r == 0;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p.yp, &ev)) {
			r = libyaml_error(&p);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = on_event(&p, &ev);
		yaml_event_delete(&ev);
	}
	if (r == 0)
		*out = TAKE_PTR(p.s);
	parser_free(&p);
	return r;
}

void yaml_stream_free(struct yaml_stream *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_docs; i++) {
		json_decref(s->docs[i].value);
		json_decref(s->docs[i].positions);
	}
	for (size_t i = 0; i < s->n_warnings; i++)
		free(s->warnings[i].msg);
	free(s->docs);
	free(s->warnings);
	free(s->name);
	free(s);
}

int yaml_doc_position(const struct yaml_doc *doc, const char *path, int *line, int *col)
{
	if (!doc || !doc->positions)
		return -ENOENT;
	_cleanup_free_ char *p = xstrdup(path ? path : "");
	size_t full = strlen(p);
	for (size_t n = full;; n--) {
		/* try p[0..n) where a segment ends: the end, before '.' or '[', the root */
		if (n == full || n == 0 || p[n] == '.' || p[n] == '[') {
			char c = p[n];
			p[n] = '\0';
			json_t *pos = json_object_get(doc->positions, p);
			p[n] = c;
			if (json_is_array(pos)) {
				*line = (int)json_integer_value(json_array_get(pos, 0));
				*col = (int)json_integer_value(json_array_get(pos, 1));
				return 0;
			}
		}
		if (n == 0)
			return -ENOENT;
	}
}
