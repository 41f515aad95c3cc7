/* Unit tests for src/common: kerr, sbuf, edit distance, time helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/sbuf.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kerr_prefix_and_causes),
		cmocka_unit_test(test_sbuf),
		cmocka_unit_test(test_closest),
		cmocka_unit_test(test_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
