/* Unit tests for controllers/rollout: maxSurge/maxUnavailable resolution,
 * the steps of rolling updates (including a whole rollout simulated step by
 * step, checking the bounds at every step), scale-down order, the template
 * hash and the revision history. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/util.h"
#include "controllers/rollout.h"

static json_t *J(const char *text)
{
	char *s = xstrdup(text);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t je;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
	if (!j)
		fail_msg("bad test JSON: %s: %s", je.text, s);
	free(s);
	return j;
}

static long iop(const char *v, long total, bool up)
{
	json_t *j = J(v);
	long out = -999;
	struct kerr err = KERR_INIT;
	int r = rollout_int_or_percent(j, total, up, &out, &err);
	json_decref(j);
	kerr_clear(&err);
	return r < 0 ? r : out;
}

static void test_int_or_percent(void **state)
{
	(void)state;
	assert_int_equal(iop("'25%'", 10, true), 3);  /* 2.5 up */
	assert_int_equal(iop("'25%'", 10, false), 2); /* 2.5 down */
	assert_int_equal(iop("'25%'", 1, true), 1);
	assert_int_equal(iop("'25%'", 1, false), 0);
	assert_int_equal(iop("'100%'", 7, false), 7);
	assert_int_equal(iop("'0%'", 7, true), 0);
	assert_int_equal(iop("2", 10, true), 2);
	assert_int_equal(iop("null", 10, true), 0);
	assert_int_equal(iop("-1", 10, true), -EINVAL);
	assert_int_equal(iop("'25'", 10, true), -EINVAL);
	assert_int_equal(iop("'x%'", 10, true), -EINVAL);
	assert_int_equal(iop("true", 10, true), -EINVAL);

	struct kerr err = KERR_INIT;
	long out = 42;
	json_t *j = J("'abc'");
	assert_int_equal(rollout_int_or_percent(j, 4, true, &out, &err), -EINVAL);
	assert_int_equal(out, 42); /* untouched on failure */
	assert_non_null(strstr(kerr_msg(&err), "\"abc\""));
	json_decref(j);
	kerr_clear(&err);
}

static int limits(long replicas, const char *s, const char *u, long *surge, long *unav)
{
	json_t *js = s ? J(s) : NULL, *ju = u ? J(u) : NULL;
	struct kerr err = KERR_INIT;
	int r = rollout_limits(replicas, js, ju, surge, unav, &err);
	if (r < 0)
		assert_non_null(strstr(kerr_msg(&err), "may not both be 0"));
	json_decref(js);
	json_decref(ju);
	kerr_clear(&err);
	return r;
}

static void test_limits(void **state)
{
	(void)state;
	long s, u;
	/* defaults 25%/25% of 10: surge ceil(2.5) = 3, unavailable floor(2.5) = 2 */
	assert_int_equal(limits(10, NULL, NULL, &s, &u), 0);
	assert_int_equal(s, 3);
	assert_int_equal(u, 2);
	/* of 1: surge ceil(0.25) = 1, unavailable floor(0.25) = 0 */
	assert_int_equal(limits(1, NULL, NULL, &s, &u), 0);
	assert_int_equal(s, 1);
	assert_int_equal(u, 0);
	/* surge 0 and 25% of 3 = 0.75 -> 0: both 0 by rounding, unavailable becomes 1 */
	assert_int_equal(limits(3, "0", "'25%'", &s, &u), 0);
	assert_int_equal(s, 0);
	assert_int_equal(u, 1);
	/* explicitly both zero: invalid */
	assert_int_equal(limits(3, "0", "0", &s, &u), -EINVAL);
	assert_int_equal(limits(3, "'0%'", "0", &s, &u), -EINVAL);
	/* unavailable is capped at replicas */
	assert_int_equal(limits(2, "1", "5", &s, &u), 0);
	assert_int_equal(u, 2);
}

static struct rollout_step plan(long replicas, long nt, long nr, long ot, long orr, long s, long u)
{
	struct rollout_counts c = {replicas, nt, nr, ot, orr};
	struct rollout_step st;
	rollout_plan(&c, s, u, &st);
	return st;
}

static void test_plan_scaling(void **state)
{
	(void)state;
	/* a new Deployment of 6 */
	struct rollout_step st = plan(6, 0, 0, 0, 0, 2, 1);
	assert_int_equal(st.create, 6);
	assert_int_equal(st.delete_new, 0);
	/* 6 -> 9 */
	st = plan(9, 6, 6, 0, 0, 3, 2);
	assert_int_equal(st.create, 3);
	/* 9 -> 2 */
	st = plan(2, 9, 9, 0, 0, 1, 0);
	assert_int_equal(st.create, 0);
	assert_int_equal(st.delete_new, 7);
	/* steady */
	st = plan(3, 3, 3, 0, 0, 1, 0);
	assert_int_equal(st.create + st.delete_new + st.delete_old_ready + st.delete_old_unready,
	                 0);
}

static void test_plan_rolling_first_step(void **state)
{
	(void)state;
	/* replicas 4, surge 1, unavailable 1, 4 old ready:
	 * create min(4+1-4, 4-0) = 1; old may go: total 4 - minAvailable 3 - new unready 0 = 1,
	 * ready ones while ready stays >= 3: 4 - 3 = 1 */
	struct rollout_step st = plan(4, 0, 0, 4, 4, 1, 1);
	assert_int_equal(st.create, 1);
	assert_int_equal(st.delete_old_ready, 1);
	assert_int_equal(st.delete_old_unready, 0);
	/* next: 1 new not ready yet, 3 old ready: total 4, create min(5-4, 3) = 1;
	 * max down 4 - 3 - 1 = 0: nothing old goes */
	st = plan(4, 1, 0, 3, 3, 1, 1);
	assert_int_equal(st.create, 1);
	assert_int_equal(st.delete_old_ready + st.delete_old_unready, 0);
	/* old unready Tasks go first: 4 old, 2 ready: max down 4 - 3 - 0 = 1 -> one unready;
	 * ready ones: 2 ready - 3 < 0 -> none */
	st = plan(4, 0, 0, 4, 2, 1, 1);
	assert_int_equal(st.delete_old_unready, 1);
	assert_int_equal(st.delete_old_ready, 0);
	/* scaled down in the middle of a rollout: replicas 2 (surge 1, unav 0), 2 new ready,
	 * 8 old ready: max down 10 - 2 - 0 = 8, ready 10 - 2 = 8 */
	st = plan(2, 2, 2, 8, 8, 1, 0);
	assert_int_equal(st.delete_old_ready, 8);
	assert_int_equal(st.create, 0);
}

/* A whole rollout, simulated: created Tasks become ready one step later,
 * deletions take effect at once. At every moment the ready count must stay
 * >= replicas - unavailable and the total <= replicas + surge. */
static void simulate(long replicas, long s, long u)
{
	long nt = 0, nr = 0, ot = replicas, orr = replicas;
	int steps = 0;
	for (;;) {
		struct rollout_counts c = {replicas, nt, nr, ot, orr};
		if (rollout_complete(&c))
			break;
		assert_true(++steps < 100);
		struct rollout_step st;
		rollout_plan(&c, s, u, &st);
		nr = nt; /* what was created last step is ready now */
		nt += st.create;
		ot -= st.delete_old_ready + st.delete_old_unready;
		orr -= st.delete_old_ready;
		assert_true(nt + ot <= replicas + s);
		assert_true(nr + orr >= replicas - u);
		if (st.create == 0 && st.delete_old_ready == 0 && st.delete_old_unready == 0)
			nr = nt; /* nothing to do but wait for readiness */
	}
	assert_int_equal(nt, replicas);
	assert_int_equal(ot, 0);
}

static void test_plan_whole_rollout(void **state)
{
	(void)state;
	simulate(6, 2, 1);  /* 25%/25% of 6 */
	simulate(3, 1, 0);  /* 25%/25% of 3: surge only */
	simulate(3, 0, 1);  /* unavailability only */
	simulate(10, 3, 2); /* 25%/25% of 10 */
	simulate(1, 1, 0);
	simulate(5, 5, 5);
}

static void test_plan_recreate(void **state)
{
	(void)state;
	struct rollout_counts c = {3, 0, 0, 3, 2};
	struct rollout_step st;
	rollout_plan_recreate(&c, &st);
	assert_int_equal(st.delete_old_ready, 2);
	assert_int_equal(st.delete_old_unready, 1);
	assert_int_equal(st.create, 0);
	c = (struct rollout_counts){3, 0, 0, 0, 0};
	rollout_plan_recreate(&c, &st);
	assert_int_equal(st.create, 3);
}

static void test_victim_order(void **state)
{
	(void)state;
	struct rollout_victim v[] = {
	    {.name = "run-old", .scheduled = true, .phase_rank = 2, .ready = true, .created = 100},
	    {.name = "run-new", .scheduled = true, .phase_rank = 2, .ready = true, .created = 200},
	    {.name = "pending", .scheduled = false, .phase_rank = 0, .ready = false, .created = 50},
	    {.name = "sched", .scheduled = true, .phase_rank = 1, .ready = false, .created = 10},
	    {.name = "run-unready",
	     .scheduled = true,
	     .phase_rank = 2,
	     .ready = false,
	     .created = 1},
	};
	qsort(v, ARRAY_SIZE(v), sizeof(v[0]), rollout_victim_cmp);
	const char *want[] = {"pending", "sched", "run-unready", "run-new", "run-old"};
	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		assert_string_equal(v[i].name, want[i]);
	assert_int_equal(rollout_phase_rank("Running"), 2);
	assert_int_equal(rollout_phase_rank("Scheduled"), 1);
	assert_int_equal(rollout_phase_rank(NULL), 0);
}

static void test_hash(void **state)
{
	(void)state;
	json_t *a =
	    J("{'metadata':{'labels':{'app':'web'}},'spec':{'image':'nginx:1','args':['a']}}");
	json_t *b =
	    J("{'spec':{'args':['a'],'image':'nginx:1'},'metadata':{'labels':{'app':'web'}}}");
	json_t *c =
	    J("{'metadata':{'labels':{'app':'web'}},'spec':{'image':'nginx:2','args':['a']}}");
	char ha[ROLLOUT_HASH_LEN + 1], hb[ROLLOUT_HASH_LEN + 1], hc[ROLLOUT_HASH_LEN + 1];
	rollout_template_hash(a, ha);
	rollout_template_hash(b, hb);
	rollout_template_hash(c, hc);
	assert_string_equal(ha, hb); /* key order does not matter */
	assert_string_not_equal(ha, hc);
	assert_int_equal(strlen(ha), ROLLOUT_HASH_LEN);
	assert_int_equal(strspn(ha, "bcdfghjklmnpqrstvwxz2456789"), ROLLOUT_HASH_LEN);
	char s1[ROLLOUT_SUFFIX_LEN + 1], s2[ROLLOUT_SUFFIX_LEN + 1];
	rollout_name_suffix(12345, s1);
	rollout_name_suffix(12346, s2);
	assert_int_equal(strlen(s1), ROLLOUT_SUFFIX_LEN);
	assert_string_not_equal(s1, s2);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void test_history(void **state)
{
	(void)state;
	json_t *t1 = J("{'spec':{'image':'v1'}}"), *t2 = J("{'spec':{'image':'v2'}}"),
	       *t3 = J("{'spec':{'image':'v3'}}");
	json_t *h = rollout_history_parse(NULL);
	bool ch;
	assert_int_equal(rollout_history_record(h, "h1", t1, 2, &ch), 1);
	assert_true(ch);
	assert_int_equal(rollout_history_record(h, "h1", t1, 2, &ch), 1);
	assert_false(ch);
	assert_int_equal(rollout_history_record(h, "h2", t2, 2, &ch), 2);
	assert_int_equal(rollout_history_record(h, "h3", t3, 2, &ch), 3);
	/* the one before the current is revision 2 */
	json_t *prev = rollout_history_find(h, 0);
	assert_int_equal(json_integer_value(json_object_get(prev, "revision")), 2);
	/* undo to revision 1: it becomes revision 4, and 1 is gone */
	assert_int_equal(rollout_history_record(h, "h1", t1, 2, &ch), 4);
	assert_true(ch);
	assert_int_equal(json_array_size(h), 3);
	assert_null(rollout_history_find(h, 1));
	assert_string_equal(json_string_value(json_object_get(rollout_history_find(h, 4), "hash")),
	                    "h1");
	/* limit 1: only one old entry is kept */
	assert_int_equal(rollout_history_record(h, "h1", t1, 1, &ch), 4);
	assert_true(ch);
	assert_int_equal(json_array_size(h), 2);
	assert_non_null(rollout_history_find(h, 3));
	assert_null(rollout_history_find(h, 2));

	/* round trip through the annotation text; junk entries are dropped, order restored */
	char *text = json_dumps(h, JSON_COMPACT);
	json_t *h2 = rollout_history_parse(text);
	assert_true(json_equal(h, h2));
	json_t *h3 = rollout_history_parse("[{\"revision\":2,\"hash\":\"b\",\"template\":{}},"
	                                   "{\"revision\":1,\"hash\":\"a\",\"template\":{}},"
	                                   "{\"revision\":0,\"hash\":\"z\",\"template\":{}},7]");
	assert_int_equal(json_array_size(h3), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(h3, 0), "revision")), 1);
	json_t *h4 = rollout_history_parse("not json");
	assert_int_equal(json_array_size(h4), 0);
	free(text);
	json_decref(h);
	json_decref(h2);
	json_decref(h3);
	json_decref(h4);
	json_decref(t1);
	json_decref(t2);
	json_decref(t3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_int_or_percent),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_plan_scaling),
	    cmocka_unit_test(test_plan_rolling_first_step),
	    cmocka_unit_test(test_plan_whole_rollout),
	    cmocka_unit_test(test_plan_recreate),
	    cmocka_unit_test(test_victim_order),
	    cmocka_unit_test(test_hash),
	    cmocka_unit_test(test_history),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
