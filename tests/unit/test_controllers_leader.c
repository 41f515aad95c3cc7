/* Unit tests for the elector's state machine (controllers/leader.c,
 * leader_fsm_*), with the monotonic clock injected: acquiring a free or
 * expired lease, renewing, standing by while another renews, losing on a
 * missed renew deadline (before anyone else could take the lease), being
 * refused, and taking a released lease at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "controllers/leader.h"

#define D 3000 /* the lease duration, ms */

static struct leader_record rec(const char *holder, uint64_t rv)
{
	return (struct leader_record){.exists = true, .holder = holder, .rv = rv, .duration_ms = D};
}

static void test_acquire_absent_and_renew(void **st)
{
	(void)st;
	struct leader_fsm f;
	leader_fsm_init(&f, D);
	struct leader_record none = {0};
	assert_true(leader_fsm_should_try(&f, &none, "me", 1000));
	assert_false(leader_fsm_held(&f, 1000));
	assert_true(leader_fsm_won(&f, 1000)); /* became leader */
	assert_true(leader_fsm_held(&f, 1000));
	/* renew deadline: 2D/3 after the SEND of the last successful write */
	assert_true(leader_fsm_held(&f, 2999));
	assert_false(leader_fsm_held(&f, 3000));
	assert_int_equal(leader_fsm_next_ms(&f, false, 1000), D / 3);
	struct leader_record mine = rec("me", 5);
	assert_true(leader_fsm_should_try(&f, &mine, "me", 2000));
	assert_false(leader_fsm_won(&f, 2000)); /* a renewal, not a new term */
	assert_true(leader_fsm_held(&f, 3999));
	assert_false(leader_fsm_expire(&f, 3999));
}

static void test_lose_on_missed_deadline(void **st)
{
	(void)st;
	struct leader_fsm f;
	leader_fsm_init(&f, D);
	leader_fsm_won(&f, 0);
	/* renewals fail (server unreachable): retry every D/10, and wake at
	 * the deadline at the latest */
	assert_int_equal(leader_fsm_next_ms(&f, true, 100), D / 10);
	assert_int_equal(leader_fsm_next_ms(&f, true, 1950), 50);
	assert_false(leader_fsm_expire(&f, 1999));
	assert_true(leader_fsm_expire(&f, 2000)); /* lost: stop the controller */
	assert_false(leader_fsm_held(&f, 2000));
	assert_false(leader_fsm_expire(&f, 2100)); /* said once */
}

static void test_standby_waits_for_expiry(void **st)
{
	(void)st;
	struct leader_fsm f;
	leader_fsm_init(&f, D);
	struct leader_record r1 = rec("other", 10);
	assert_false(leader_fsm_should_try(&f, &r1, "me", 0));
	assert_false(leader_fsm_should_try(&f, &r1, "me", 2999));
	/* the other renews (a new version): the wait starts over */
	struct leader_record r2 = rec("other", 11);
	assert_false(leader_fsm_should_try(&f, &r2, "me", 2999));
	assert_false(leader_fsm_should_try(&f, &r2, "me", 5998));
	assert_int_equal(leader_fsm_next_ms(&f, false, 5998), D / 10);
	/* no change for D on our own clock: expired, try */
	assert_true(leader_fsm_should_try(&f, &r2, "me", 5999));
	/* someone else got there first: refused, still not leading */
	assert_false(leader_fsm_refused(&f));
	assert_false(leader_fsm_held(&f, 6000));
}

static void test_refused_while_leading_and_released(void **st)
{
	(void)st;
	struct leader_fsm f;
	leader_fsm_init(&f, D);
	leader_fsm_won(&f, 0);
	assert_true(leader_fsm_refused(&f)); /* lost at once */
	assert_false(leader_fsm_held(&f, 1));
	/* a released lease (empty holder) is taken without waiting */
	struct leader_record rel = rec("", 20);
	assert_true(leader_fsm_should_try(&f, &rel, "me", 2));
	/* so is our own, e.g. after a restart with the same identity */
	struct leader_record mine = rec("me", 21);
	assert_true(leader_fsm_should_try(&f, &mine, "me", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_acquire_absent_and_renew),
	    cmocka_unit_test(test_lose_on_missed_deadline),
	    cmocka_unit_test(test_standby_waits_for_expiry),
	    cmocka_unit_test(test_refused_while_leading_and_released),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
