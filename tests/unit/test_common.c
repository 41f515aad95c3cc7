/* Unit tests for src/common: kerr, sbuf, edit distance, time helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/sha256.h"
#include "common/util.h"

static void test_kerr_prefix_and_causes(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	assert_int_equal(kerr_set(&err, ENOENT, "task %s not found", "web"), -ENOENT);
	assert_int_equal(kerr_prefix(&err, "get"), -ENOENT);
	assert_string_equal(err.msg, "get: task web not found");
	kerr_clear(&err);
	assert_null(err.msg);
	kerr_add_cause(&err, "spec.replicas", "FieldValueInvalid", "must be %s", "an integer");
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(json_array_size(err.causes), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(err.causes, 0), "field")),
	                    "spec.replicas");
	kerr_clear(&err);
	assert_int_equal(kerr_set(NULL, EINVAL, "ignored"), -EINVAL);
}

static void test_sbuf(void **state)
{
	(void)state;
	struct sbuf b = SBUF_INIT;
	for (int i = 0; i < 1000; i++)
		sbuf_printf(&b, "%d,", i);
	assert_int_equal(b.len, strlen(b.data));
	assert_true(strstartswith(b.data, "0,1,2,"));
	char *s = sbuf_take(&b);
	assert_null(b.data);
	free(s);
}

static void test_closest(void **state)
{
	(void)state;
	const char *const words[] = {"replicas", "selector", "template", "strategy"};
	assert_string_equal(str_closest("replica", words, 4), "replicas");
	assert_string_equal(str_closest("tempalte", words, 4), "template");
	assert_null(str_closest("zzzzzzzz", words, 4));
	/* the start of exactly one candidate, too long for a typo */
	const char *flags[] = {"--heartbeat-interval", "--help", "--backoff-base", "--backoff-max"};
	assert_string_equal(str_closest("--heartbeat", flags, 4), "--heartbeat-interval");
	assert_null(str_closest("--backoff", flags, 4)); /* two candidates start so */
	assert_null(str_closest("--h", flags, 4));
	assert_int_equal(str_edit_distance("kitten", "sitting"), 3);
}

static void test_time(void **state)
{
	(void)state;
	char buf[32];
	assert_string_equal(time_rfc3339(buf, sizeof buf, 0), "1970-01-01T00:00:00Z");
	assert_int_equal(time_parse_rfc3339("2026-12-03T08:53:58Z"), 1796288038);
	assert_int_equal(time_parse_rfc3339("2026-12-03T08:53:58.123Z"), 1796288038);
	assert_int_equal(time_parse_rfc3339("yesterday"), -1);
	assert_string_equal(time_age(buf, sizeof buf, 59), "59s");
	assert_string_equal(time_age(buf, sizeof buf, 600), "10m");
}

/* FIPS 180-4 examples, and the padding edges (55, 56 and 64 bytes). */
static void test_sha256(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *hex;
	} v[] = {
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmno"
	     "pqrlmnopqrsmnopqrstnopqrstu",
	     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
	};
	char hex[65];
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		sha256_hex(v[i].in, strlen(v[i].in), hex);
		assert_string_equal(hex, v[i].hex);
	}
	char a64[65];
	memset(a64, 'a', 64);
	a64[64] = '\0';
	sha256_hex(a64, 55, hex);
	assert_string_equal(hex,
	                    "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
	sha256_hex(a64, 56, hex);
	assert_string_equal(hex,
	                    "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
	sha256_hex(a64, 64, hex);
	assert_string_equal(hex,
	                    "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kerr_prefix_and_causes),
	    cmocka_unit_test(test_sbuf),
	    cmocka_unit_test(test_closest),
	    cmocka_unit_test(test_time),
	    cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
