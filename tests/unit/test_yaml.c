/* Unit tests for manifests/yaml: core schema, 1.1 warnings, multi-document
 * streams, anchors and merge keys, limits, error messages, positions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "manifests/yaml.h"

/* Parses text expecting success and exactly one document. */
static struct yaml_stream *parse_ok(const char *text)
{
	struct yaml_stream *s = NULL;
	struct kerr err = KERR_INIT;
	int r = yaml_stream_parse("t.yaml", text, strlen(text), NULL, &s, &err);
	if (r < 0)
		fail_msg("unexpected error: %s", kerr_msg(&err));
	kerr_clear(&err);
	return s;
}

static json_t *doc0(struct yaml_stream *s)
{
	assert_true(s->n_docs >= 1);
	return s->docs[0].value;
}

/* Parses text expecting failure with code; returns the owned message. */
static char *parse_err_lim(const char *text, size_t len, const struct yaml_limits *lim, int code)
{
	struct yaml_stream *s = (struct yaml_stream *)0x1;
	struct kerr err = KERR_INIT;
	int r = yaml_stream_parse("t.yaml", text, len, lim, &s, &err);
	if (r >= 0)
		fail_msg("expected an error for: %.80s", text);
	assert_int_equal(r, -code);
	assert_int_equal(err.code, code);
	assert_ptr_equal(s, (struct yaml_stream *)0x1); /* untouched on failure */
	return err.msg;
}

static char *parse_err(const char *text, int code)
{
	return parse_err_lim(text, strlen(text), NULL, code);
}

#define assert_err(text, code, expected)                                                           \
	do {                                                                                       \
		char *m_ = parse_err(text, code);                                                  \
		assert_string_equal(m_, expected);                                                 \
		free(m_);                                                                          \
	} while (0)

static json_t *get(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (!v)
		fail_msg("missing key %s", k);
	return v;
}

/* ---- core schema ---- */

static void test_core_schema(void **state)
{
	(void)state;
	struct yaml_stream *s = parse_ok("a: yes\n"
	                                 "b: 0755\n"
	                                 "c: 0o755\n"
	                                 "d: 0x1F\n"
	                                 "e: 1e3\n"
	                                 "f: ~\n"
	                                 "g: \"true\"\n"
	                                 "h: True\n"
	                                 "i: FALSE\n"
	                                 "j: NULL\n"
	                                 "k:\n"
	                                 "l: -1.5\n"
	                                 "m: .5\n"
	                                 "plus: +12\n"
	                                 "o: 1_000\n"
	                                 "p: tRUE\n"
	                                 "q: 'yes'\n"
	                                 "r: -9223372036854775808\n"
	                                 "s: 1.\n"
	                                 "t: 0\n"
	                                 "u: 0x7FFFFFFFFFFFFFFF\n"
	                                 "v: -0x1F\n");
	json_t *d = doc0(s);
	assert_string_equal(json_string_value(get(d, "a")), "yes");
	assert_int_equal(json_integer_value(get(d, "b")), 755);
	assert_true(json_is_integer(get(d, "b")));
	assert_int_equal(json_integer_value(get(d, "c")), 493);
	assert_int_equal(json_integer_value(get(d, "d")), 31);
	assert_true(json_is_real(get(d, "e")));
	assert_true(json_real_value(get(d, "e")) == 1000.0);
	assert_true(json_is_null(get(d, "f")));
	assert_string_equal(json_string_value(get(d, "g")), "true");
	assert_true(json_is_true(get(d, "h")));
	assert_true(json_is_false(get(d, "i")));
	assert_true(json_is_null(get(d, "j")));
	assert_true(json_is_null(get(d, "k")));
	assert_true(json_real_value(get(d, "l")) == -1.5);
	assert_true(json_real_value(get(d, "m")) == 0.5);
	assert_int_equal(json_integer_value(get(d, "plus")), 12);
	assert_string_equal(json_string_value(get(d, "o")), "1_000");
	assert_string_equal(json_string_value(get(d, "p")), "tRUE");
	assert_string_equal(json_string_value(get(d, "q")), "yes");
	assert_true(json_integer_value(get(d, "r")) == INT64_MIN);
	assert_true(json_real_value(get(d, "s")) == 1.0);
	assert_int_equal(json_integer_value(get(d, "t")), 0);
	assert_true(json_integer_value(get(d, "u")) == INT64_MAX);
	assert_string_equal(json_string_value(get(d, "v")), "-0x1F");

	/* warnings: yes (line 1) and 0755 (line 2) only; quoted 'yes' is silent */
	assert_int_equal(s->n_warnings, 2);
	assert_int_equal(s->warnings[0].line, 1);
	assert_int_equal(s->warnings[0].col, 4);
	assert_string_equal(s->warnings[0].msg,
	                    "\"yes\" is a string in YAML 1.2 but a boolean in YAML 1.1 "
	                    "(kubectl); quote it, or write true/false");
	assert_int_equal(s->warnings[1].line, 2);
	assert_string_equal(
	    s->warnings[1].msg,
	    "0755 is the decimal 755 in YAML 1.2 but octal in YAML 1.1; write 0o755 for octal");
	yaml_stream_free(s);
}

static void test_warnings_11(void **state)
{
	(void)state;
	struct yaml_stream *s = parse_ok("on:\n"
	                                 "  - push\n"
	                                 "x: [No, OFF, y, N, Yes]\n"
	                                 "t: 1:30\n"
	                                 "u: 190:20:30\n"
	                                 "v: 007\n"
	                                 "w: 0800\n"
	                                 "z: \"1:30\"\n");
	json_t *d = doc0(s);
	assert_non_null(json_object_get(d, "on"));
	assert_string_equal(json_string_value(get(d, "t")), "1:30");
	assert_int_equal(json_integer_value(get(d, "v")), 7);
	assert_int_equal(json_integer_value(get(d, "w")), 800);
	/* on (key), No OFF y N Yes, 1:30, 190:20:30; not 007 (same value), 0800, or quoted */
	assert_int_equal(s->n_warnings, 8);
	assert_int_equal(s->warnings[0].line, 1);
	assert_int_equal(s->warnings[0].col, 1);
	assert_true(strstartswith(s->warnings[0].msg, "\"on\" is a string in YAML 1.2"));
	assert_int_equal(s->warnings[3].line, 3);
	assert_int_equal(s->warnings[3].col, 14);
	assert_true(strstartswith(s->warnings[3].msg, "\"y\" is a string"));
	assert_string_equal(s->warnings[6].msg,
	                    "1:30 is a string in YAML 1.2 but the number 90 in YAML 1.1; quote it");
	assert_int_equal(s->warnings[6].line, 4);
	assert_string_equal(
	    s->warnings[7].msg,
	    "190:20:30 is a string in YAML 1.2 but the number 685230 in YAML 1.1; quote it");
	yaml_stream_free(s);
}

static void test_tags(void **state)
{
	(void)state;
	struct yaml_stream *s = parse_ok("a: !!str 123\n"
	                                 "b: !!int \"42\"\n"
	                                 "c: !!float 1\n"
	                                 "d: !!bool true\n"
	                                 "e: !!null\n"
	                                 "f: ! 12\n"
	                                 "g: !!str yes\n"
	                                 "h: !!map {x: 1}\n"
	                                 "i: !!seq [1]\n"
	                                 "!!str k: v\n");
	json_t *d = doc0(s);
	assert_string_equal(json_string_value(get(d, "a")), "123");
	assert_int_equal(json_integer_value(get(d, "b")), 42);
	assert_true(json_is_real(get(d, "c")) && json_real_value(get(d, "c")) == 1.0);
	assert_true(json_is_true(get(d, "d")));
	assert_true(json_is_null(get(d, "e")));
	assert_string_equal(json_string_value(get(d, "f")), "12");
	assert_string_equal(json_string_value(get(d, "g")), "yes");
	assert_int_equal(json_object_size(get(d, "h")), 1);
	assert_int_equal(json_array_size(get(d, "i")), 1);
	assert_string_equal(json_string_value(get(d, "k")), "v");
	assert_int_equal(s->n_warnings, 0); /* tagged scalars are not guessed at */
	yaml_stream_free(s);

	assert_err(
	    "a: 1\nb: !!binary aGVsbG8=\n", EINVAL,
	    "t.yaml:2:4: unsupported tag !!binary on a scalar (keel understands !!str, !!int, "
	    "!!float, !!bool, !!null, !!map, !!seq and !!merge)");
	assert_err("x: !Ref foo\n", EINVAL,
	           "t.yaml:1:4: unsupported tag !Ref on a scalar (keel understands !!str, !!int, "
	           "!!float, !!bool, !!null, !!map, !!seq and !!merge)");
	assert_err(
	    "x: !!map [1]\n", EINVAL,
	    "t.yaml:1:4: unsupported tag !!map on a sequence (keel understands !!str, !!int, "
	    "!!float, !!bool, !!null, !!map, !!seq and !!merge)");
	assert_err("x: !!int abc\n", EINVAL,
	           "t.yaml:1:4: \"abc\" is not a valid !!int (decimal, 0o octal or 0x hex)");
	assert_err("x: !!bool yes\n", EINVAL,
	           "t.yaml:1:4: \"yes\" is not a valid !!bool (true or false)");
}

static void test_number_errors(void **state)
{
	(void)state;
	assert_err(
	    "a: 1\nreplicas: 99999999999999999999\n", EINVAL,
	    "t.yaml:2:11: \"99999999999999999999\" is out of range for a 64-bit integer; quote it "
	    "if you mean a string");
	assert_err(
	    "a: 9223372036854775808\n", EINVAL,
	    "t.yaml:1:4: \"9223372036854775808\" is out of range for a 64-bit integer; quote it "
	    "if you mean a string");
	assert_err(
	    "a: 0x8000000000000000\n", EINVAL,
	    "t.yaml:1:4: \"0x8000000000000000\" is out of range for a 64-bit integer; quote it "
	    "if you mean a string");
	assert_err(
	    "- .inf\n", EINVAL,
	    "t.yaml:1:3: \".inf\" is a float JSON cannot represent (infinity or NaN); quote it if "
	    "you mean a string");
	assert_err(
	    "- -.Inf\n", EINVAL,
	    "t.yaml:1:3: \"-.Inf\" is a float JSON cannot represent (infinity or NaN); quote it if "
	    "you mean a string");
	assert_err(
	    "- .NaN\n", EINVAL,
	    "t.yaml:1:3: \".NaN\" is a float JSON cannot represent (infinity or NaN); quote it if "
	    "you mean a string");
	assert_err("a: 1e999\n", EINVAL,
	           "t.yaml:1:4: \"1e999\" is out of range for a 64-bit float; quote it if you mean "
	           "a string");
	struct yaml_stream *s = parse_ok("a: '.inf'\nb: .infinity\nc: 1e-400\n"
	                                 "99999999999999999999: big key\n.nan: nan key\n");
	assert_string_equal(json_string_value(get(doc0(s), "99999999999999999999")), "big key");
	assert_string_equal(json_string_value(get(doc0(s), ".nan")), "nan key");
	assert_string_equal(json_string_value(get(doc0(s), "a")), ".inf");
	assert_string_equal(json_string_value(get(doc0(s), "b")), ".infinity");
	assert_true(json_is_real(get(doc0(s), "c")));
	yaml_stream_free(s);
}

/* ---- streams ---- */

static void test_multi_doc(void **state)
{
	(void)state;
	const char *text = "---\n"
	                   "---\n"
	                   "# only a comment\n"
	                   "---\n"
	                   "a: 1\n"
	                   "---\n"
	                   "~\n"
	                   "--- null\n"
	                   "---\n"
	                   "- x\n"
	                   "---\n"
	                   "plain string\n"
	                   "...\n"
	                   "---\n"
	                   "b: 2\n"
	                   "...\n";
	struct yaml_stream *s = parse_ok(text);
	assert_string_equal(s->name, "t.yaml");
	assert_int_equal(s->n_docs, 4);
	assert_int_equal(json_integer_value(get(s->docs[0].value, "a")), 1);
	assert_int_equal(s->docs[0].line, 5);
	assert_int_equal(s->docs[0].col, 1);
	assert_string_equal(json_string_value(json_array_get(s->docs[1].value, 0)), "x");
	assert_int_equal(s->docs[1].line, 10);
	assert_string_equal(json_string_value(s->docs[2].value), "plain string");
	assert_int_equal(json_integer_value(get(s->docs[3].value, "b")), 2);
	assert_int_equal(s->docs[3].line, 15);
	yaml_stream_free(s);

	s = parse_ok("");
	assert_int_equal(s->n_docs, 0);
	yaml_stream_free(s);
	s = parse_ok("# nothing here\n\n");
	assert_int_equal(s->n_docs, 0);
	yaml_stream_free(s);
	/* anchors do not cross documents */
	assert_err(
	    "a: &x 1\n---\nb: *x\n", EINVAL,
	    "t.yaml:3:4: unknown alias *x (an anchor &x must come earlier in the same document)");
}

/* ---- anchors, aliases, merge keys ---- */

static void test_anchors_and_merge(void **state)
{
	(void)state;
	struct yaml_stream *s = parse_ok("defaults: &d {a: 1, b: 2}\n"
	                                 "over: &o\n"
	                                 "  b: 3\n"
	                                 "  c: 4\n"
	                                 "copy: *d\n"
	                                 "m:\n"
	                                 "  <<: [*d, *o]\n"
	                                 "  c: 5\n"
	                                 "m2:\n"
	                                 "  a: 9\n"
	                                 "  <<: *d\n"
	                                 "m3:\n"
	                                 "  <<: {z: 1}\n"
	                                 "  \"<<\": literal\n"
	                                 "name: &n web\n"
	                                 "again: *n\n"
	                                 "*n : keyed\n");
	json_t *d = doc0(s);
	json_t *m = get(d, "m");
	assert_int_equal(json_object_size(m), 3);
	assert_int_equal(json_integer_value(get(m, "a")), 1);
	assert_int_equal(json_integer_value(get(m, "b")), 2); /* the earlier source wins */
	assert_int_equal(json_integer_value(get(m, "c")), 5); /* explicit wins */
	assert_null(json_object_get(m, "<<"));
	/* merged keys sit where the << was, in order */
	void *it = json_object_iter(m);
	assert_string_equal(json_object_iter_key(it), "a");
	it = json_object_iter_next(m, it);
	assert_string_equal(json_object_iter_key(it), "b");
	json_t *m2 = get(d, "m2");
	assert_int_equal(json_integer_value(get(m2, "a")), 9);
	assert_int_equal(json_integer_value(get(m2, "b")), 2);
	json_t *m3 = get(d, "m3");
	assert_string_equal(json_string_value(get(m3, "<<")), "literal");
	assert_int_equal(json_integer_value(get(m3, "z")), 1);
	assert_string_equal(json_string_value(get(d, "again")), "web");
	assert_string_equal(json_string_value(get(d, "web")), "keyed");
	/* aliases are copies: editing one leaves the other alone */
	assert_true(json_equal(get(d, "copy"), get(d, "defaults")));
	json_object_set_new(get(d, "copy"), "a", json_integer(100));
	assert_int_equal(json_integer_value(get(get(d, "defaults"), "a")), 1);
	/* positions: a merged key points at its << line */
	int line = 0, col = 0;
	assert_int_equal(yaml_doc_position(&s->docs[0], "m.a", &line, &col), 0);
	assert_int_equal(line, 7);
	assert_int_equal(yaml_doc_position(&s->docs[0], "m.c", &line, &col), 0);
	assert_int_equal(line, 8);
	yaml_stream_free(s);

	assert_err("base: &b {a: 1}\nm:\n  <<: 1\n", EINVAL,
	           "t.yaml:3:3: the value of a merge key \"<<\" must be a mapping or a sequence of "
	           "mappings");
	assert_err("m:\n  <<: [{a: 1}, [2]]\n", EINVAL,
	           "t.yaml:2:3: the value of a merge key \"<<\" must be a mapping or a sequence of "
	           "mappings");
	assert_err("m:\n  <<: {a: 1}\n  <<: {b: 1}\n", EINVAL,
	           "t.yaml:3:3: duplicate merge key \"<<\" in one mapping");
	assert_err("m:\n  <<: {a: 1}\n  a: 2\n  a: 3\n", EINVAL,
	           "t.yaml:4:3: duplicate key \"a\" (first at line 3)");
	assert_err("a: *nope\n", EINVAL,
	           "t.yaml:1:4: unknown alias *nope (an anchor &nope must come earlier in the same "
	           "document)");
	assert_err(
	    "a: &x [1, *x]\n", EINVAL,
	    "t.yaml:1:11: alias *x refers to a collection that contains it (recursive alias)");
	assert_err("a: &x {k: v}\n*x : 1\n", EINVAL,
	           "t.yaml:2:1: alias *x is a collection and cannot be a mapping key");
}

static void test_alias_bomb(void **state)
{
	(void)state;
	const char *lol =
	    "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
	    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
	    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	char *m = parse_err(lol, E2BIG);
	/* 10 + 9*10 + ... passes a million nodes in the "g" line */
	assert_true(strstartswith(m, "t.yaml:7:"));
	assert_non_null(
	    strstr(m, "more than 1000000 nodes after expanding aliases (an alias bomb?)"));
	free(m);

	/* merge keys count too */
	struct yaml_limits lim = {.max_nodes = 50};
	const char *merge =
	    "a: &a {k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}\n"
	    "b: {<<: *a}\n"
	    "c: {<<: *a}\n"
	    "d: {<<: *a}\n";
	m = parse_err_lim(merge, strlen(merge), &lim, E2BIG);
	assert_string_equal(
	    m, "t.yaml:3:9: more than 50 nodes after expanding aliases (an alias bomb?)");
	free(m);

	/* without aliases the message does not cry wolf */
	struct yaml_limits lim3 = {.max_nodes = 5};
	assert_string_equal((m = parse_err_lim("[1, 2, 3, 4, 5]", 15, &lim3, E2BIG)),
	                    "t.yaml:1:14: more than 5 nodes");
	free(m);

	/* aliases to one long string: its length weighs in */
	struct sbuf b = SBUF_INIT;
	sbuf_puts(&b, "s: &s \"");
	for (int i = 0; i < 64 * 1024; i++)
		sbuf_putc(&b, 'x');
	sbuf_puts(&b, "\"\nl:\n");
	for (int i = 0; i < 100; i++)
		sbuf_puts(&b, "- *s\n");
	struct yaml_limits lim2 = {.max_nodes = 10000};
	m = parse_err_lim(b.data, b.len, &lim2, E2BIG);
	assert_string_equal(
	    m, "t.yaml:11:3: more than 10000 nodes after expanding aliases (an alias bomb?)");
	free(m);
	sbuf_free(&b);
}

static void test_depth_and_size(void **state)
{
	(void)state;
	struct sbuf b = SBUF_INIT;
	for (int i = 0; i < 200; i++)
		sbuf_putc(&b, '[');
	for (int i = 0; i < 200; i++)
		sbuf_putc(&b, ']');
	char *m = parse_err(b.data, E2BIG);
	assert_string_equal(m, "t.yaml:1:101: nesting deeper than 100 levels");
	free(m);
	sbuf_free(&b);

	struct yaml_limits lim = {.max_depth = 3};
	const char *ok = "a:\n  b:\n    - 1\n";
	struct yaml_stream *s = NULL;
	assert_int_equal(yaml_stream_parse("t.yaml", ok, strlen(ok), &lim, &s, NULL), 0);
	yaml_stream_free(s);
	const char *deep = "a:\n  b:\n    - c: 1\n";
	m = parse_err_lim(deep, strlen(deep), &lim, E2BIG);
	assert_string_equal(m, "t.yaml:3:7: nesting deeper than 3 levels");
	free(m);
	/* an alias cannot smuggle depth in */
	const char *al = "x: &x [[1]]\ny:\n  z: *x\n";
	m = parse_err_lim(al, strlen(al), &lim, E2BIG);
	assert_string_equal(m, "t.yaml:3:6: alias *x nests deeper than 3 levels");
	free(m);

	/* document size, per document */
	struct yaml_limits small = {.max_doc_bytes = 40};
	const char *two = "a: 1234567890\nb: 1234567890\n---\nc: 1234567890\nd: 1234567890\n";
	assert_int_equal(yaml_stream_parse("t.yaml", two, strlen(two), &small, &s, NULL), 0);
	assert_int_equal(s->n_docs, 2);
	yaml_stream_free(s);
	const char *big = "a: 1234567890\nb: 1234567890\nc: 1234567890\nd: 1234567890\n";
	m = parse_err_lim(big, strlen(big), &small, E2BIG);
	assert_string_equal(m, "t.yaml:3:4: document larger than 40 bytes");
	free(m);
}

/* ---- scalars: block, flow ---- */

static void test_block_scalars(void **state)
{
	(void)state;
	struct yaml_stream *s = parse_ok("lit: |\n"
	                                 "  line 1\n"
	                                 "    indented\n"
	                                 "  line 3\n"
	                                 "\n"
	                                 "strip: |-\n"
	                                 "  a\n"
	                                 "  b\n"
	                                 "\n"
	                                 "keep: |+\n"
	                                 "  a\n"
	                                 "\n"
	                                 "\n"
	                                 "fold: >\n"
	                                 "  one\n"
	                                 "  two\n"
	                                 "\n"
	                                 "  three\n"
	                                 "foldstrip: >-\n"
	                                 "  x\n"
	                                 "  y\n"
	                                 "ind: |2\n"
	                                 "    four spaces\n"
	                                 "last: end\n");
	json_t *d = doc0(s);
	assert_string_equal(json_string_value(get(d, "lit")), "line 1\n  indented\nline 3\n");
	assert_string_equal(json_string_value(get(d, "strip")), "a\nb");
	assert_string_equal(json_string_value(get(d, "keep")), "a\n\n\n");
	assert_string_equal(json_string_value(get(d, "fold")), "one two\nthree\n");
	assert_string_equal(json_string_value(get(d, "foldstrip")), "x y");
	assert_string_equal(json_string_value(get(d, "ind")), "  four spaces\n");
	int line, col;
	assert_int_equal(yaml_doc_position(&s->docs[0], "last", &line, &col), 0);
	assert_int_equal(line, 24);
	yaml_stream_free(s);
}

static void test_flow_and_keys(void **state)
{
	(void)state;
	struct yaml_stream *s =
	    parse_ok("{a: [1, 2, {b: c}], d: \"e\", 1: x, true: y, ~: z, 0x1F: h, "
	             "'': empty}\n");
	json_t *d = doc0(s);
	_cleanup_json_ json_t *want =
	    json_pack("{s:[i,i,{s:s}],s:s,s:s,s:s,s:s,s:s,s:s}", "a", 1, 2, "b", "c", "d", "e", "1",
	              "x", "true", "y", "~", "z", "0x1F", "h", "", "empty");
	assert_true(json_equal(d, want));
	yaml_stream_free(s);

	assert_err("? [a, b]\n: 1\n", EINVAL,
	           "t.yaml:1:3: a sequence cannot be a mapping key; keys must be scalars");
	assert_err("{a: 1}: 2\n", EINVAL,
	           "t.yaml:1:1: a mapping cannot be a mapping key; keys must be scalars");
	/* keys compare after conversion to text */
	assert_err("1: a\n\"1\": b\n", EINVAL, "t.yaml:2:1: duplicate key \"1\" (first at line 1)");
}

/* ---- errors ---- */

static void test_duplicate_key(void **state)
{
	(void)state;
	assert_err("apiVersion: v1\n"
	           "kind: Task\n"
	           "spec:\n"
	           "  containers:\n"
	           "  - image: nginx\n"
	           "    name: web\n"
	           "    image: redis\n",
	           EINVAL, "t.yaml:7:5: duplicate key \"image\" (first at line 5)");
	/* same key in different mappings is fine */
	struct yaml_stream *s = parse_ok("a: {name: x}\nb: {name: y}\n");
	yaml_stream_free(s);
}

static void test_bom_crlf(void **state)
{
	(void)state;
	struct yaml_stream *s = parse_ok("\xEF\xBB\xBF"
	                                 "a: 1\n");
	assert_int_equal(json_integer_value(get(doc0(s), "a")), 1);
	int line, col;
	assert_int_equal(yaml_doc_position(&s->docs[0], "a", &line, &col), 0);
	assert_int_equal(line, 1);
	assert_int_equal(col, 1);
	yaml_stream_free(s);

	s = parse_ok("a: 1\r\nb: |\r\n  x\r\n  y\r\nc: 'two\r\n  lines'\r\nd: 2\r\n");
	json_t *d = doc0(s);
	assert_int_equal(json_integer_value(get(d, "a")), 1);
	assert_string_equal(json_string_value(get(d, "b")), "x\ny\n");
	assert_string_equal(json_string_value(get(d, "c")), "two lines");
	assert_int_equal(yaml_doc_position(&s->docs[0], "d", &line, &col), 0);
	assert_int_equal(line, 7);
	yaml_stream_free(s);

	/* an error after a BOM and CRLFs is still at the right line */
	assert_err("\xEF\xBB\xBF"
	           "a: 1\r\nb: 2\r\nb: 3\r\n",
	           EINVAL, "t.yaml:3:1: duplicate key \"b\" (first at line 2)");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	assert_err(
	    "apiVersion: v1\nspec:\n\treplicas: 1\n", EINVAL,
	    "t.yaml:3:1: found character that cannot start any token while scanning for the next "
	    "token (a tab: YAML does not allow tabs for indentation; use spaces)");
	assert_err("a:\n  b: 1\n\tc: 2\n", EINVAL,
	           "t.yaml:3:1: found a tab character that violates indentation while scanning a "
	           "plain scalar at line 2, column 6");
	char *m = parse_err("a: 1\nb: \"abc\nc: 2\n", EINVAL);
	assert_string_equal(
	    m, "t.yaml:4:1: found unexpected end of stream while scanning a quoted scalar at "
	       "line 2, column 4");
	free(m);
	assert_err("a: 1\n b: 2\n", EINVAL,
	           "t.yaml:2:3: mapping values are not allowed in this context");
	assert_err(
	    "a: [1, 2\nb: 3\n", EINVAL,
	    "t.yaml:2:2: did not find expected ',' or ']' while parsing a flow sequence at line 1, "
	    "column 4");
	assert_err("a: 1\nb: \xff\n", EINVAL,
	           "t.yaml:2:4: invalid leading UTF-8 octet (0xFF); manifests must be UTF-8 text");
	const char nul[] = "a: 1\nb: x\0y\n";
	m = parse_err_lim(nul, sizeof nul - 1, NULL, EINVAL);
	assert_string_equal(
	    m,
	    "t.yaml:2:5: control characters are not allowed (0x00); manifests must be UTF-8 text");
	free(m);
	assert_err("ok: 1\n\"a\\0b\": 2\n", EINVAL,
	           "t.yaml:2:1: a mapping key cannot contain a NUL character (\\0)");
	/* a NULL name and a NULL err are fine */
	struct yaml_stream *s = NULL;
	assert_int_equal(yaml_stream_parse(NULL, "a: [", 4, NULL, &s, NULL), -EINVAL);
	assert_null(s);
}

/* ---- positions ---- */

static const char *const pod = "apiVersion: v1\n"                  /* 1 */
                               "kind: Deployment\n"                /* 2 */
                               "metadata:\n"                       /* 3 */
                               "  name: web\n"                     /* 4 */
                               "  labels:\n"                       /* 5 */
                               "    app.kubernetes.io/name: web\n" /* 6 */
                               "spec:\n"                           /* 7 */
                               "  replicas: 3\n"                   /* 8 */
                               "  template:\n"                     /* 9 */
                               "    spec:\n"                       /* 10 */
                               "      containers:\n"               /* 11 */
                               "      - name: app\n"               /* 12 */
                               "        image: nginx\n"            /* 13 */
                               "        env:\n"                    /* 14 */
                               "          - name: A\n"             /* 15 */
                               "            value: \"1\"\n"        /* 16 */
                               "      -   name: side\n"            /* 17 */
                               "          args: [a, b]\n";         /* 18 */

static void assert_pos(const struct yaml_doc *d, const char *path, int line, int col)
{
	int l = -1, c = -1;
	if (yaml_doc_position(d, path, &l, &c) < 0)
		fail_msg("no position for %s", path);
	if (l != line || c != col)
		fail_msg("%s at %d:%d, want %d:%d", path, l, c, line, col);
}

static void test_positions(void **state)
{
	(void)state;
	struct yaml_stream *s = parse_ok(pod);
	const struct yaml_doc *d = &s->docs[0];
	assert_pos(d, "", 1, 1);
	assert_pos(d, "kind", 2, 1);
	assert_pos(d, "metadata.name", 4, 3);
	assert_pos(d, "metadata.labels", 5, 3);
	assert_pos(d, "metadata.labels[app.kubernetes.io/name]", 6, 5);
	assert_pos(d, "spec.replicas", 8, 3);
	assert_pos(d, "spec.template.spec.containers", 11, 7);
	assert_pos(d, "spec.template.spec.containers[0]", 12, 9);
	assert_pos(d, "spec.template.spec.containers[0].image", 13, 9);
	assert_pos(d, "spec.template.spec.containers[0].env[0].name", 15, 13);
	assert_pos(d, "spec.template.spec.containers[0].env[0].value", 16, 13);
	assert_pos(d, "spec.template.spec.containers[1]", 17, 11);
	assert_pos(d, "spec.template.spec.containers[1].args", 18, 11);
	assert_pos(d, "spec.template.spec.containers[1].args[1]", 18, 21);
	/* prefix fallback: a missing field is shown at its parent */
	assert_pos(d, "spec.template.spec.containers[0].resources.limits.cpu", 12, 9);
	assert_pos(d, "spec.template.spec.containers[7]", 11, 7);
	assert_pos(d, "spec.strategy", 7, 1);
	assert_pos(d, "status", 1, 1);
	assert_pos(d, "metadata.labels[other]", 5, 3);
	assert_pos(d, NULL, 1, 1);
	json_t *v = d->value;
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(v, "metadata"), "labels"),
	                        "app.kubernetes.io/name")),
	                    "web");
	yaml_stream_free(s);

	struct yaml_doc none = {0};
	int l, c;
	assert_int_equal(yaml_doc_position(&none, "a", &l, &c), -ENOENT);
	_cleanup_json_ json_t *empty = json_object();
	struct yaml_doc nothing = {.positions = empty};
	assert_int_equal(yaml_doc_position(&nothing, "a.b", &l, &c), -ENOENT);

	/* a sequence root, and a second document's own positions */
	s = parse_ok("a: 1\n---\n- x\n- y: 2\n");
	assert_int_equal(s->n_docs, 2);
	assert_pos(&s->docs[1], "", 3, 1);
	assert_pos(&s->docs[1], "[1].y", 4, 3);
	assert_pos(&s->docs[1], "[1]", 4, 3);
	assert_pos(&s->docs[1], "[0]", 3, 3);
	yaml_stream_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_core_schema),   cmocka_unit_test(test_warnings_11),
	    cmocka_unit_test(test_tags),          cmocka_unit_test(test_number_errors),
	    cmocka_unit_test(test_multi_doc),     cmocka_unit_test(test_anchors_and_merge),
	    cmocka_unit_test(test_alias_bomb),    cmocka_unit_test(test_depth_and_size),
	    cmocka_unit_test(test_block_scalars), cmocka_unit_test(test_flow_and_keys),
	    cmocka_unit_test(test_duplicate_key), cmocka_unit_test(test_bom_crlf),
	    cmocka_unit_test(test_syntax_errors), cmocka_unit_test(test_positions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
