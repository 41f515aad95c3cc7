/* Unit tests for yaml_emit: kubectl's layout, quoting, numbers, literal
 * blocks, and the round trip yaml_stream_parse(yaml_emit(v)) == v. */
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

static void assert_emits(json_t *v, const char *want)
{
	char *got = yaml_emit(v);
	if (strcmp(got, want) != 0)
		fail_msg("emitted:\n%s\nwant:\n%s", got, want);
	free(got);
	json_decref(v);
}

/* v (borrowed) survives emit -> parse unchanged, with no 1.1 warnings. */
static void assert_round_trip(json_t *v)
{
	_cleanup_free_ char *text = yaml_emit(v);
	struct yaml_stream *s = NULL;
	struct kerr err = KERR_INIT;
	if (yaml_stream_parse("rt", text, strlen(text), NULL, &s, &err) < 0)
		fail_msg("re-parse failed: %s\n%s", kerr_msg(&err), text);
	assert_int_equal(s->n_docs, 1);
	if (!json_equal(s->docs[0].value, v)) {
		_cleanup_free_ char *a = json_dumps(v, JSON_ENCODE_ANY);
		_cleanup_free_ char *b = json_dumps(s->docs[0].value, JSON_ENCODE_ANY);
		fail_msg("round trip changed %s into %s via:\n%s", a, b, text);
	}
	if (s->n_warnings)
		fail_msg("emitted text draws a warning: %s\n%s", s->warnings[0].msg, text);
	yaml_stream_free(s);
}

static void test_layout(void **state)
{
	(void)state;
	json_t *v = json_loads(
	    "{\"apiVersion\":\"v1\",\"kind\":\"Deployment\","
	    "\"metadata\":{\"name\":\"web\",\"labels\":{\"app.kubernetes.io/name\":\"web\"}},"
	    "\"spec\":{\"replicas\":3,\"paused\":false,\"selector\":{},"
	    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.25\","
	    "\"args\":[\"-c\",\"run\"],\"ports\":[{\"containerPort\":80}],\"env\":[]}]}},"
	    "\"matrix\":[[1,2],[],[{\"a\":null}]]}}",
	    0, NULL);
	assert_non_null(v);
	assert_emits(v, "apiVersion: v1\n"
	                "kind: Deployment\n"
	                "metadata:\n"
	                "  name: web\n"
	                "  labels:\n"
	                "    app.kubernetes.io/name: web\n"
	                "spec:\n"
	                "  replicas: 3\n"
	                "  paused: false\n"
	                "  selector: {}\n"
	                "  template:\n"
	                "    spec:\n"
	                "      containers:\n"
	                "      - name: app\n"
	                "        image: nginx:1.25\n"
	                "        args:\n"
	                "        - \"-c\"\n"
	                "        - run\n"
	                "        ports:\n"
	                "        - containerPort: 80\n"
	                "        env: []\n"
	                "  matrix:\n"
	                "  - - 1\n"
	                "    - 2\n"
	                "  - []\n"
	                "  - - a: null\n");
	assert_emits(json_object(), "{}\n");
	assert_emits(json_array(), "[]\n");
	assert_emits(json_string("hello"), "hello\n");
	assert_emits(json_integer(-5), "-5\n");
	assert_emits(json_null(), "null\n");
	assert_emits(json_pack("[s,b,n]", "x", 1), "- x\n- true\n- null\n");
	char *s = yaml_emit(NULL);
	assert_string_equal(s, "null\n");
	free(s);
}

static void test_quoting(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain", "plain"},
	    {"hello world", "hello world"},
	    {"nginx:1.25", "nginx:1.25"},
	    {"http://x.io/a#b", "http://x.io/a#b"},
	    {"caf\xC3\xA9", "caf\xC3\xA9"},
	    {"", "\"\""},
	    {"yes", "\"yes\""},
	    {"No", "\"No\""},
	    {"on", "\"on\""},
	    {"Y", "\"Y\""},
	    {"true", "\"true\""},
	    {"False", "\"False\""},
	    {"null", "\"null\""},
	    {"~", "\"~\""},
	    {"0755", "\"0755\""},
	    {"0o755", "\"0o755\""},
	    {"0x1F", "\"0x1F\""},
	    {"1:30", "\"1:30\""},
	    {"12", "\"12\""},
	    {"-1.5", "\"-1.5\""},
	    {"1e3", "\"1e3\""},
	    {"1_000", "\"1_000\""},
	    {".inf", "\".inf\""},
	    {"-.INF", "\"-.INF\""},
	    {".NaN", "\".NaN\""},
	    {"1.2.3", "\"1.2.3\""},
	    {"a: b", "\"a: b\""},
	    {"key:", "\"key:\""},
	    {"a #b", "\"a #b\""},
	    {" lead", "\" lead\""},
	    {"trail ", "\"trail \""},
	    {"-x", "\"-x\""},
	    {"- x", "\"- x\""},
	    {"?x", "\"?x\""},
	    {":x", "\":x\""},
	    {"[a]", "\"[a]\""},
	    {"{a}", "\"{a}\""},
	    {"#c", "\"#c\""},
	    {"&a", "\"&a\""},
	    {"*a", "\"*a\""},
	    {"!t", "\"!t\""},
	    {"|x", "\"|x\""},
	    {">x", "\">x\""},
	    {"'q'", "\"'q'\""},
	    {"\"dq\"", "\"\\\"dq\\\"\""},
	    {"%p", "\"%p\""},
	    {"@x", "\"@x\""},
	    {"`x", "\"`x\""},
	    {"...", "\"...\""},
	    {"<<", "\"<<\""},
	    {"tab\there", "\"tab\\there\""},
	    {"back\\slash", "back\\slash"},
	    {"cr\r", "\"cr\\r\""},
	    {"bell\x07", "\"bell\\x07\""},
	    {"del\x7F", "\"del\\x7F\""},
	    {"nel\xC2\x85", "\"nel\\N\""},
	    {"ls\xE2\x80\xA8", "\"ls\\L\""},
	    {"bom\xEF\xBB\xBF", "\"bom\\uFEFF\""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *v = json_pack("{ss}", "v", cases[i].in);
		char *want = xasprintf("v: %s\n", cases[i].out);
		char *got = yaml_emit(v);
		if (strcmp(got, want) != 0)
			fail_msg("%s: emitted %s want %s", cases[i].in, got, want);
		assert_round_trip(v);
		free(got);
		free(want);
		json_decref(v);
	}
	/* keys follow the same rules */
	assert_emits(json_pack("{si,si,si,si}", "on", 1, "1", 2, "a b", 3, "", 4),
	             "\"on\": 1\n\"1\": 2\na b: 3\n\"\": 4\n");
	/* a NUL inside a string; the parser refuses NUL in keys (jansson's
	 * lookups stop at NUL), so the emitter need only escape it */
	json_t *nul = json_pack("{so}", "k", json_stringn("a\0b", 3));
	assert_emits(json_incref(nul), "k: \"a\\0b\"\n");
	assert_round_trip(nul);
	json_decref(nul);
	json_t *nulkey = json_object();
	json_object_setn_new(nulkey, "k\0y", 3, json_true());
	assert_emits(nulkey, "\"k\\0y\": true\n");
}

static void test_numbers(void **state)
{
	(void)state;
	assert_emits(json_pack("[f,f,f,f,f,f,f,I,I]", 1000.0, 0.1, 1e20, 1.5e-7, -0.0,
	                       0.30000000000000004, 2.5, (json_int_t)INT64_MAX,
	                       (json_int_t)INT64_MIN),
	             "- 1000.0\n- 0.1\n- 1.0e+20\n- 1.5e-07\n- -0.0\n- 0.30000000000000004\n- 2.5\n"
	             "- 9223372036854775807\n- -9223372036854775808\n");
	static const double reals[] = {1.0 / 3, 5e-324, 1.7976931348623157e308, 123456789.125, -2.0,
	                               1e-5,    100.0};
	for (size_t i = 0; i < ARRAY_SIZE(reals); i++) {
		json_t *v = json_pack("{sf}", "r", reals[i]);
		assert_round_trip(v);
		json_decref(v);
	}
}

static void test_literal_blocks(void **state)
{
	(void)state;
	assert_emits(json_pack("{ss}", "script", "#!/bin/sh\necho hi\n  indented\n"),
	             "script: |\n  #!/bin/sh\n  echo hi\n    indented\n");
	assert_emits(json_pack("{ss}", "s", "a\nb"), "s: |-\n  a\n  b\n");
	assert_emits(json_pack("{ss}", "s", "a\n\nb\n\n\n"), "s: |+\n  a\n\n  b\n\n\n");
	assert_emits(json_pack("[s]", "x\ny\n"), "- |\n  x\n  y\n");
	assert_emits(json_pack("{s{ss}}", "data", "f", "k: v\n"), "data:\n  f: |\n    k: v\n");
	assert_emits(json_string("root\ntext\n"), "|\n  root\n  text\n");
	/* not safe as a literal: quoted with \n */
	assert_emits(json_pack("{ss}", "s", "trailing \nspace"), "s: \"trailing \\nspace\"\n");
	assert_emits(json_pack("{ss}", "s", " lead\nx"), "s: \" lead\\nx\"\n");
	assert_emits(json_pack("{ss}", "s", "\nfirst empty"), "s: \"\\nfirst empty\"\n");
	assert_emits(json_pack("{ss}", "s", "tab\t\nx"), "s: \"tab\\t\\nx\"\n");
}

static void test_round_trip(void **state)
{
	(void)state;
	static const char *const docs[] = {
	    "{\"a\":{\"b\":{\"c\":[1,[2,[3,{}]],{\"d\":[]}]}}}",
	    "[[[[]]],[{}],[{\"x\":[{\"y\":\"z\"}]}]]",
	    "{\"multi\":\"line one\\nline "
	    "two\\n\",\"keep\":\"a\\n\\n\",\"strip\":\"a\\nb\",\"e\":\"\"}",
	    "{\"list\":[\"a\\nb\\n\",\"c\\n\\n\",{\"k\":\"v\\nw\"}],\"z\":\"end\"}",
	    "{\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00\",\"ctl\":"
	    "\"\\u0001\\u001f\\u0085\\u2029\\ufeff\\uffff\"}",
	    "{\"- a\":1,\"? b\":2,\": c\":3,\"#d\":4,\"yes\":5,\"0755\":6,\"a: b\":7,\" "
	    "x\":8,\"\\n\":9}",
	    "{\"n\":null,\"t\":true,\"f\":false,\"i\":-0,\"r\":1.5,\"big\":9007199254740993}",
	    "[\"---\",\"...\",\"--- x\",\"- "
	    "\",\"-\",\"?\",\":\",\"a:\",\"%TAG\",\"!!str\",\"&x\",\"*x\"]",
	    "[\"0\",\"-0\",\"+1\",\".5\",\"1.\",\"0o7\",\"0x0\",\"1e+3\",\"0b11\",\"1:2:3\",\"190:"
	    "20:30.15\"]",
	    "[\"null\",\"Null\",\"NULL\",\"~\",\"True\",\"TRUE\",\"oN\",\"yEs\",\"n\",\"=\",\"<<"
	    "\"]",
	    "\"top-level string\"",
	    "\"yes\"",
	    "\"\"",
	    "\"multi\\nline root\\n\"",
	    "false",
	    "0.5",
	    "{\"a\":\"x #y\",\"b\":\"x# y\",\"c\":\"x:y\",\"d\":\"x "
	    ":y\",\"e\":\"x,y\",\"f\":\"[x]y\",\"g\":\"x]\"}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		json_error_t je;
		json_t *v = json_loads(docs[i], JSON_DECODE_ANY, &je);
		if (!v)
			fail_msg("bad test JSON %zu: %s", i, je.text);
		assert_round_trip(v);
		json_decref(v);
	}
}

static void test_long_key(void **state)
{
	(void)state;
	struct sbuf k = SBUF_INIT;
	for (int i = 0; i < 1500; i++)
		sbuf_putc(&k, (char)('a' + i % 26));
	json_t *v = json_object();
	json_object_set_new(v, k.data, json_pack("{si}", "x", 1));
	json_object_set_new(v, "short", json_pack("[i]", 1));
	sbuf_putc(&k, 'Z');
	json_object_set_new(v, k.data, json_pack("[i,i]", 1, 2));
	sbuf_putc(&k, 'Y');
	json_object_set_new(v, k.data, json_string("s"));
	_cleanup_free_ char *text = yaml_emit(v);
	assert_true(strstartswith(text, "? abcdefghijklmnopqrstuvwxyz"));
	assert_round_trip(v);
	json_t *a = json_pack("[o]", json_incref(v));
	assert_round_trip(a);
	json_decref(a);
	json_decref(v);
	sbuf_free(&k);
}

/* Emitting what the parser produced from an input and re-parsing it gives
 * the same documents (the fuzzer checks this on random input). */
static void test_parse_emit_parse(void **state)
{
	(void)state;
	const char *src = "base: &b {image: nginx, ports: [80, 443]}\n"
	                  "web:\n"
	                  "  <<: *b\n"
	                  "  cmd: |\n"
	                  "    echo \"hi\"\n"
	                  "    exit 0\n"
	                  "  flags: [yes, 'no', 0755, 1:30, ~, '', .5]\n"
	                  "  folded: >\n"
	                  "    a\n"
	                  "    b\n"
	                  "  \"quoted key\": \"\\t\\u00e9\"\n"
	                  "  1: one\n";
	struct yaml_stream *s = NULL;
	assert_int_equal(yaml_stream_parse("p", src, strlen(src), NULL, &s, NULL), 0);
	assert_round_trip(s->docs[0].value);
	yaml_stream_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout),           cmocka_unit_test(test_quoting),
	    cmocka_unit_test(test_numbers),          cmocka_unit_test(test_literal_blocks),
	    cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_long_key),
	    cmocka_unit_test(test_parse_emit_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
