/* Unit tests: agent restart backoff (src/agent/backoff.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/backoff.h"

static void test_defaults_double_to_cap(void **state)
{
	(void)state;
	struct backoff b = {10000, 300000, 600000};
	assert_int_equal(backoff_delay_ms(&b, 0), 0);
	assert_int_equal(backoff_delay_ms(&b, 1), 10000);
	assert_int_equal(backoff_delay_ms(&b, 2), 20000);
	assert_int_equal(backoff_delay_ms(&b, 3), 40000);
	assert_int_equal(backoff_delay_ms(&b, 4), 80000);
	assert_int_equal(backoff_delay_ms(&b, 5), 160000);
	assert_int_equal(backoff_delay_ms(&b, 6), 300000); /* 320 s capped at 5 min */
	assert_int_equal(backoff_delay_ms(&b, 7), 300000);
	assert_int_equal(backoff_delay_ms(&b, 4000000000u), 300000);
}

static void test_short_test_settings(void **state)
{
	(void)state;
	struct backoff b = {200, 2000, 10000};
	int64_t want[] = {200, 400, 800, 1600, 2000, 2000};
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(backoff_delay_ms(&b, i + 1), want[i]);
}

static void test_huge_cap_does_not_overflow(void **state)
{
	(void)state;
	struct backoff b = {1, INT64_MAX, INT64_MAX};
	int64_t prev = 0;
	for (unsigned i = 1; i < 200; i++) {
		int64_t d = backoff_delay_ms(&b, i);
		assert_true(d >= prev);
		assert_true(d > 0);
		prev = d;
	}
}

static void test_reset_after_clean_run(void **state)
{
	(void)state;
	struct backoff b = {10000, 300000, 600000};
	assert_int_equal(backoff_after_run(&b, 0, 5), 1);
	assert_int_equal(backoff_after_run(&b, 3, 599999), 4);
	assert_int_equal(backoff_after_run(&b, 5, 600000), 1);
	assert_int_equal(backoff_delay_ms(&b, backoff_after_run(&b, 5, 700000)), 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_double_to_cap),
	    cmocka_unit_test(test_short_test_settings),
	    cmocka_unit_test(test_huge_cap_does_not_overflow),
	    cmocka_unit_test(test_reset_after_clean_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
