/* Unit tests for api/quantity: parsing to milli-units, errors, formatting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/quantity.h"
#include "common/kerr.h"
#include "common/util.h"

static int64_t q(const char *s)
{
	int64_t v = -1;
	struct kerr err = KERR_INIT;
	int r = api_quantity_parse(s, &v, &err);
	if (r < 0)
		fail_msg("%s: %s", s, kerr_msg(&err));
	kerr_clear(&err);
	return v;
}

static void test_parse(void **state)
{
	(void)state;
	assert_int_equal(q("250m"), 250);
	assert_int_equal(q("1"), 1000);
	assert_int_equal(q("2"), 2000);
	assert_int_equal(q("1.5"), 1500);
	assert_int_equal(q("0.5"), 500);
	assert_int_equal(q(".5"), 500);
	assert_int_equal(q("5."), 5000);
	assert_int_equal(q("+3"), 3000);
	assert_int_equal(q("0"), 0);
	assert_int_equal(q("0m"), 0);
	assert_int_equal(q("128Mi"), 134217728000LL);
	assert_int_equal(q("1Ki"), 1024000);
	assert_int_equal(q("0.5Gi"), 536870912000LL);
	assert_int_equal(q("1G"), 1000000000000LL);
	assert_int_equal(q("1k"), 1000000);
	assert_int_equal(q("1M"), 1000000000LL);
	assert_int_equal(q("1e3"), 1000000);
	assert_int_equal(q("1E3"), 1000000);
	assert_int_equal(q("1e-3"), 1);
	assert_int_equal(q("1.5e+2"), 150000);
	assert_int_equal(q("1m"), 1);
	assert_int_equal(q("1u"), 1); /* below a milli-unit rounds up, as MilliValue() does */
	assert_int_equal(q("1n"), 1);
	assert_int_equal(q("1500u"), 2);
	assert_int_equal(q("0.0001"), 1);
	assert_int_equal(q("007"), 7000);
}

static void expect_error(const char *s, int code, const char *msg_part)
{
	int64_t v = 12345;
	struct kerr err = KERR_INIT;
	assert_int_equal(api_quantity_parse(s, &v, &err), -code);
	assert_int_equal(v, 12345); /* untouched on failure */
	if (!strstr(kerr_msg(&err), msg_part))
		fail_msg("%s: message \"%s\" lacks \"%s\"", s, kerr_msg(&err), msg_part);
	kerr_clear(&err);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("12x", EINVAL, "invalid quantity \"12x\"");
	expect_error("12x", EINVAL, "unknown suffix \"x\"");
	expect_error("", EINVAL, "invalid quantity \"\"");
	expect_error("-1", EINVAL, "must not be negative");
	expect_error("m", EINVAL, "must start with a number");
	expect_error(".", EINVAL, "must start with a number");
	expect_error("1.2.3", EINVAL, "unknown suffix \".3\"");
	expect_error("512MB", EINVAL, "write Mi for powers of 1024 or M for powers of 1000");
	expect_error("1gi", EINVAL, "did you mean \"Gi\"?");
	expect_error("1 Gi", EINVAL, "unknown suffix \" Gi\"");
	expect_error("1e", EINVAL, "unknown suffix \"e\"");
	expect_error("1e3x", EINVAL, "malformed exponent");
	expect_error("1Mii", EINVAL, "unknown suffix");
	assert_int_equal(api_quantity_parse("12x", &(int64_t){0}, NULL), -EINVAL);
}

static void test_range(void **state)
{
	(void)state;
	expect_error("1E", ERANGE, "too large"); /* 10^18 units is 10^21 milli-units */
	expect_error("8Ei", ERANGE, "too large");
	expect_error("99999999999999999999", ERANGE, "too large");
	expect_error("1e100000", ERANGE, "too large");
	assert_int_equal(q("9223372036854775807m"), INT64_MAX);
	expect_error("9223372036854775808m", ERANGE, "too large");
	assert_int_equal(q("1e-100000"), 1);
	assert_int_equal(q("0e100000"), 0);
	assert_int_equal(q("1Pi"), 1125899906842624000LL);
	assert_int_equal(q("0.000000000000000000000000000001"), 1);
	assert_int_equal(q("1.00000000000000000000000000001"), 1001);
}

static void test_json(void **state)
{
	(void)state;
	int64_t v = 0;
	json_t *n = json_integer(2);
	assert_int_equal(api_quantity_from_json(n, &v, NULL), 0);
	assert_int_equal(v, 2000);
	json_decref(n);
	json_t *r = json_real(0.25);
	assert_int_equal(api_quantity_from_json(r, &v, NULL), 0);
	assert_int_equal(v, 250);
	json_decref(r);
	json_t *s = json_string("100Mi");
	assert_int_equal(api_quantity_memory(s, &v, NULL), 0);
	assert_int_equal(v, 104857600);
	json_decref(s);
	json_t *c = json_string("500m");
	assert_int_equal(api_quantity_cpu(c, &v, NULL), 0);
	assert_int_equal(v, 500);
	json_decref(c);
	json_t *m = json_string("1500m"); /* 1.5 bytes rounds up */
	assert_int_equal(api_quantity_memory(m, &v, NULL), 0);
	assert_int_equal(v, 2);
	json_decref(m);
	struct kerr err = KERR_INIT;
	json_t *b = json_true();
	assert_int_equal(api_quantity_from_json(b, &v, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "must be a quantity"));
	kerr_clear(&err);
	json_t *neg = json_integer(-3);
	assert_int_equal(api_quantity_from_json(neg, &v, &err), -EINVAL);
	json_decref(neg);
	kerr_clear(&err);
	json_t *big = json_integer(INT64_MAX / 100);
	assert_int_equal(api_quantity_from_json(big, &v, &err), -ERANGE);
	json_decref(big);
	kerr_clear(&err);
}

static void check_fmt(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

static void test_format(void **state)
{
	(void)state;
	check_fmt(api_quantity_format_cpu(250), "250m");
	check_fmt(api_quantity_format_cpu(2000), "2");
	check_fmt(api_quantity_format_cpu(1500), "1500m");
	check_fmt(api_quantity_format_cpu(0), "0");
	check_fmt(api_quantity_format_bytes(134217728), "128Mi");
	check_fmt(api_quantity_format_bytes(1000), "1000");
	check_fmt(api_quantity_format_bytes(1024), "1Ki");
	check_fmt(api_quantity_format_bytes(1536), "1536");
	check_fmt(api_quantity_format_bytes(1073741824), "1Gi");
	check_fmt(api_quantity_format_bytes(3LL << 40), "3Ti");
	check_fmt(api_quantity_format_bytes(0), "0");
	/* What the formatter writes, the parser reads back. */
	int64_t v;
	char *s = api_quantity_format_bytes(5LL << 30);
	assert_int_equal(api_quantity_parse(s, &v, NULL), 0);
	assert_int_equal(v / 1000, 5LL << 30);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),  cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_range),  cmocka_unit_test(test_json),
	    cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
