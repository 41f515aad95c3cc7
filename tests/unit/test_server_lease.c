/* Unit tests for the rule of one lease renewal (src/server/lease.c,
 * srv_lease_next): who may take a lease, when it expires, the
 * resourceVersion precondition, and what acquireTime/leaseTransitions
 * record. Times are injected (unix microseconds). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "server/lease.h"

#define T0 1700000000000000LL /* 2023-11-14T22:13:20Z */
#define S  1000000LL

static json_t *spec(json_t *l)
{
	return json_object_get(l, "spec");
}

static const char *str(json_t *l, const char *f)
{
	return json_string_value(json_object_get(spec(l), f));
}

/* next as the store would keep it: with a resourceVersion */
static json_t *stored(json_t *next, const char *rv)
{
	json_object_set_new(json_object_get(next, "metadata"), "resourceVersion", json_string(rv));
	return next;
}

static void test_create_renew_keep_acquire(void **st)
{
	(void)st;
	struct kerr err = KERR_INIT;
	struct srv_lease_req a = {.holder = "a", .duration_s = 3};
	json_t *l = NULL;
	assert_int_equal(srv_lease_next(NULL, "keel-tasks", &a, T0 + 250000, &l, &err), 0);
	assert_string_equal(str(l, "holderIdentity"), "a");
	assert_string_equal(str(l, "renewTime"), "2023-11-14T22:13:20.250000Z");
	assert_string_equal(str(l, "acquireTime"), "2023-11-14T22:13:20.250000Z");
	assert_int_equal(json_integer_value(json_object_get(spec(l), "leaseDurationSeconds")), 3);
	assert_null(json_object_get(json_object_get(l, "metadata"), "resourceVersion"));
	assert_non_null(json_object_get(json_object_get(l, "metadata"), "uid"));
	assert_true(srv_lease_expiry_us(l) == T0 + 250000 + 3 * S);
	stored(l, "5");
	json_t *l2 = NULL;
	assert_int_equal(srv_lease_next(l, "keel-tasks", &a, T0 + 2 * S, &l2, &err), 0);
	assert_string_equal(str(l2, "renewTime"), "2023-11-14T22:13:22.000000Z");
	assert_string_equal(str(l2, "acquireTime"), "2023-11-14T22:13:20.250000Z");
	assert_int_equal(json_integer_value(json_object_get(spec(l2), "leaseTransitions")), 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(l2, "metadata"), "uid")),
	    json_string_value(json_object_get(json_object_get(l, "metadata"), "uid")));
	json_decref(l);
	json_decref(l2);
}

static void test_held_until_expiry(void **st)
{
	(void)st;
	struct kerr err = KERR_INIT;
	struct srv_lease_req a = {.holder = "a", .duration_s = 3},
	                     b = {.holder = "b", .duration_s = 3};
	json_t *l = NULL, *n = NULL;
	assert_int_equal(srv_lease_next(NULL, "n1", &a, T0, &l, &err), 0);
	stored(l, "7");
	/* 2.999999 s later: still a's, to the microsecond */
	assert_int_equal(srv_lease_next(l, "n1", &b, T0 + 3 * S - 1, &n, &err), -EBUSY);
	assert_null(n);
	assert_string_equal(err.msg, "lease n1 is held by a (renewed 2s ago, expires in 1s); not "
	                             "granted to b");
	kerr_clear(&err);
	/* expired: b takes it, a new acquireTime, one transition */
	assert_int_equal(srv_lease_next(l, "n1", &b, T0 + 3 * S, &n, &err), 0);
	assert_string_equal(str(n, "holderIdentity"), "b");
	assert_string_equal(str(n, "acquireTime"), "2023-11-14T22:13:23.000000Z");
	assert_int_equal(json_integer_value(json_object_get(spec(n), "leaseTransitions")), 1);
	json_decref(n);
	json_decref(l);
}

static void test_precondition_and_release(void **st)
{
	(void)st;
	struct kerr err = KERR_INIT;
	struct srv_lease_req a = {.holder = "a", .duration_s = 15};
	json_t *l = NULL, *n = NULL;
	assert_int_equal(srv_lease_next(NULL, "keel-gc", &a, T0, &l, &err), 0);
	stored(l, "9");
	/* a stale version is refused even for the holder itself */
	struct srv_lease_req stale = {.holder = "a", .duration_s = 15, .want_rv = 8};
	assert_int_equal(srv_lease_next(l, "keel-gc", &stale, T0 + S, &n, &err), -ESTALE);
	assert_null(n);
	kerr_clear(&err);
	/* a precondition on an absent lease cannot hold */
	assert_int_equal(srv_lease_next(NULL, "keel-gc", &stale, T0, &n, &err), -ESTALE);
	kerr_clear(&err);
	/* release: empty holder at the held version; the lease is then free */
	struct srv_lease_req rel = {.holder = "", .duration_s = 1, .want_rv = 9};
	assert_int_equal(srv_lease_next(l, "keel-gc", &rel, T0 + S, &n, &err), 0);
	assert_string_equal(str(n, "holderIdentity"), "");
	stored(n, "10");
	json_t *m = NULL;
	struct srv_lease_req b = {.holder = "b", .duration_s = 15};
	assert_int_equal(srv_lease_next(n, "keel-gc", &b, T0 + S + 1, &m, &err), 0);
	assert_string_equal(str(m, "holderIdentity"), "b");
	json_decref(m);
	json_decref(n);
	json_decref(l);
}

static void test_parse_us(void **st)
{
	(void)st;
	assert_true(srv_lease_parse_us("2023-11-14T22:13:20Z") == T0);
	assert_true(srv_lease_parse_us("2023-11-14T22:13:20.5Z") == T0 + 500000);
	assert_true(srv_lease_parse_us("2023-11-14T22:13:20.000001Z") == T0 + 1);
	assert_true(srv_lease_parse_us("yesterday") == -1);
	assert_true(srv_lease_parse_us(NULL) == -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_renew_keep_acquire),
	    cmocka_unit_test(test_held_until_expiry),
	    cmocka_unit_test(test_precondition_and_release),
	    cmocka_unit_test(test_parse_us),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
