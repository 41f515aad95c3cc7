/*
 * Tests of the sim runtime's bookkeeping: list() per node and for all
 * nodes, starts that drop attempts older than N-1 of the same Task only,
 * remove, and find (stop, stats, exec, inspect) after removals have moved
 * containers around — the indexes by id, node and Task uid must agree
 * with the containers after every change.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/runtime.h"
#include "common/kerr.h"
#include "common/util.h"

static char *start(struct runtime *rt, const char *uid, const char *node, unsigned attempt)
{
	_cleanup_json_ json_t *spec =
	    json_pack("{s:s, s:{s:{s:s, s:s}}}", "image", "sim", "resources", "requests", "cpu",
	              "50m", "memory", "32Mi");
	_cleanup_free_ char *name = xasprintf("t-%s", uid);
	struct rt_task t = {
	    .uid = uid, .ns = "ns", .name = name, .node = node, .spec = spec, .attempt = attempt};
	char *id = NULL;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	assert_int_equal(rt->ops->start(rt, &t, &id, &err), 0);
	return id;
}

/* The number of containers list() shows for node (NULL: all); with uid,
 * how many of them belong to that Task. */
static size_t count(struct runtime *rt, const char *node, const char *uid, size_t *of_uid)
{
	struct rt_status *st = NULL;
	size_t n = 0;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	assert_int_equal(rt->ops->list(rt, node, &st, &n, &err), 0);
	if (of_uid) {
		*of_uid = 0;
		for (size_t i = 0; i < n; i++)
			*of_uid += streq(st[i].task_uid, uid);
	}
	rt_status_array_free(st, n);
	return n;
}

static struct runtime *new_sim(void)
{
	struct rt_sim_options o = {.start_delay_ms = 0};
	struct runtime *rt = NULL;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	assert_int_equal(rt_sim_new(&o, &rt, &err), 0);
	return rt;
}

static void test_list_by_node(void **state)
{
	(void)state;
	struct runtime *rt = new_sim();
	char *ids[30];
	for (int i = 0; i < 30; i++) {
		char uid[16], node[16];
		snprintf(uid, sizeof uid, "u%d", i);
		snprintf(node, sizeof node, "n%d", i % 3);
		ids[i] = start(rt, uid, node, 0);
	}
	assert_int_equal(count(rt, NULL, NULL, NULL), 30);
	assert_int_equal(count(rt, "n0", NULL, NULL), 10);
	assert_int_equal(count(rt, "n1", NULL, NULL), 10);
	assert_int_equal(count(rt, "nope", NULL, NULL), 0);
	/* removals move the last container into the hole: every index must
	 * follow */
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	for (int i = 0; i < 30; i += 2)
		assert_int_equal(rt->ops->remove(rt, ids[i], &err), 0);
	assert_int_equal(rt->ops->remove(rt, ids[0], &err), -ENOENT);
	kerr_clear(&err);
	assert_int_equal(count(rt, NULL, NULL, NULL), 15);
	assert_int_equal(count(rt, "n0", NULL, NULL) + count(rt, "n1", NULL, NULL) +
	                     count(rt, "n2", NULL, NULL),
	                 15);
	for (int i = 1; i < 30; i += 2) {
		struct rt_status st;
		assert_int_equal(rt->ops->inspect(rt, ids[i], &st, &err), 0);
		char uid[16];
		snprintf(uid, sizeof uid, "u%d", i);
		assert_string_equal(st.task_uid, uid);
		assert_string_equal(st.id, ids[i]);
		rt_status_clear(&st);
		struct rt_stats stats = {0};
		assert_int_equal(rt->ops->stats(rt, ids[i], &stats, &err), 0);
		assert_int_equal(stats.cpu_millicores, 50);
		assert_int_equal(rt->ops->stop(rt, ids[i], 0, &err), 0);
		assert_int_equal(rt->ops->inspect(rt, ids[i], &st, &err), 0);
		assert_int_equal(st.state, RT_EXITED);
		rt_status_clear(&st);
	}
	for (int i = 0; i < 30; i++)
		free(ids[i]);
	runtime_free(rt);
}

static void test_start_keeps_previous_attempt(void **state)
{
	(void)state;
	struct runtime *rt = new_sim();
	char *other = start(rt, "other", "n0", 0);
	char *a0 = start(rt, "u", "n0", 0);
	char *a1 = start(rt, "u", "n0", 1);
	size_t mine = 0;
	assert_int_equal(count(rt, "n0", "u", &mine), 3);
	assert_int_equal(mine, 2);
	char *a2 = start(rt, "u", "n0", 2); /* attempt 0 goes, 1 stays */
	assert_int_equal(count(rt, "n0", "u", &mine), 3);
	assert_int_equal(mine, 2);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct rt_status st;
	assert_int_equal(rt->ops->inspect(rt, a0, &st, &err), -ENOENT);
	kerr_clear(&err);
	assert_int_equal(rt->ops->inspect(rt, a1, &st, &err), 0);
	rt_status_clear(&st);
	assert_int_equal(rt->ops->inspect(rt, other, &st, &err), 0);
	assert_string_equal(st.task_uid, "other");
	rt_status_clear(&st);
	char *a4 = start(rt, "u", "n0", 4); /* 1 and 2 both older than 3 */
	assert_int_equal(count(rt, NULL, "u", &mine), 2);
	assert_int_equal(mine, 1);
	assert_int_equal(rt->ops->remove(rt, a4, &err), 0);
	assert_int_equal(rt->ops->remove(rt, other, &err), 0);
	assert_int_equal(count(rt, NULL, NULL, NULL), 0);
	assert_int_equal(count(rt, "n0", NULL, NULL), 0);
	free(other), free(a0), free(a1), free(a2), free(a4);
	runtime_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_by_node),
	    cmocka_unit_test(test_start_keeps_previous_attempt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
