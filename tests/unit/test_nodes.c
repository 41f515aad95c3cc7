/* Unit tests for the pure part of controllers/nodes.c: the liveness
 * verdict, when a node was last heard from and since when the controller
 * could hear it (a store outage or a new leadership term is not counted
 * against a node), the Ready=Unknown condition,
 * which Tasks are lost with their node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/util.h"
#include "controllers/nodes.h"

static void test_judge(void **state)
{
	(void)state;
	/* grace 40 s, eviction 60 s: Unknown from 40 s of silence, lost from 100 s */
	assert_int_equal(nodes_judge(1000000, 1000000 + 39999, 40000, 60000), NODES_ALIVE);
	assert_int_equal(nodes_judge(1000000, 1000000 + 40000, 40000, 60000), NODES_UNKNOWN);
	assert_int_equal(nodes_judge(1000000, 1000000 + 99999, 40000, 60000), NODES_UNKNOWN);
	assert_int_equal(nodes_judge(1000000, 1000000 + 100000, 40000, 60000), NODES_EVICT);
	/* a renewal "in the future" (clock skew) is alive */
	assert_int_equal(nodes_judge(2000000, 1000000, 40000, 60000), NODES_ALIVE);
}

static void test_last_heard(void **state)
{
	(void)state;
	json_t *node =
	    json_pack("{s:{s:s, s:s}, s:{s:s}}", "metadata", "name", "n1", "creationTimestamp",
	              "2026-01-01T10:00:00Z", "status", "heartbeatTime", "2026-01-01T10:05:00Z");
	int64_t created = time_parse_rfc3339("2026-01-01T10:00:00Z");
	int64_t beat = time_parse_rfc3339("2026-01-01T10:05:00Z");
	/* the lease is the latest news */
	assert_int_equal(nodes_last_heard(node, beat + 30, created), beat + 30);
	/* no lease (the server restarted): a grace period from the controller's start */
	assert_int_equal(nodes_last_heard(node, 0, beat + 600), beat + 600);
	/* an old lease and an older controller: the status heartbeat counts */
	assert_int_equal(nodes_last_heard(node, created + 1, created), beat);
	json_decref(node);
	/* a Node made by hand just now gets its grace period from its creation */
	node = json_pack("{s:{s:s}}", "metadata", "creationTimestamp", "2026-01-01T11:00:00Z");
	assert_int_equal(nodes_last_heard(node, 0, created),
	                 time_parse_rfc3339("2026-01-01T11:00:00Z"));
	json_decref(node);
}

/* The time the controller could observe: its start, its leadership
 * term's start, the store coming back after failed polls; the latest. */
static void test_observed_since(void **state)
{
	(void)state;
	assert_int_equal(nodes_observed_since(1000, 0, 0), 1000);
	assert_int_equal(nodes_observed_since(1000, 1500, 0), 1500);
	assert_int_equal(nodes_observed_since(1000, 1500, 1400), 1500);
	assert_int_equal(nodes_observed_since(1000, 1500, 1700), 1700);
	assert_int_equal(nodes_observed_since(1000, 900, 0), 1000); /* led before this start */
}

/* An etcd quorum loss of 10 minutes (grace 40 s, eviction 60 s): every
 * lease stops at t0; the controller loses leadership, and wins it again
 * at t0 + 600 when the store is back. Judged from then, a node is alive,
 * and becomes Unknown only if it then stays silent for the grace period;
 * its Tasks are lost only after grace + eviction of silence since then. */
static void test_outage_not_counted(void **state)
{
	(void)state;
	const int64_t t0 = time_parse_rfc3339("2026-01-01T10:00:00Z");
	const long grace = 40000, evict = 60000;
	json_t *node = json_pack("{s:{s:s}}", "metadata", "creationTimestamp",
	                         "2026-01-01T09:00:00Z");
	int64_t start = t0 - 3600, back = t0 + 600;
	/* before the fix: judged on the old lease, lost the moment quorum returns */
	int64_t naive = nodes_last_heard(node, t0, start);
	assert_int_equal(nodes_judge((naive + 1) * 1000, (back + 1) * 1000, grace, evict),
	                 NODES_EVICT);
	/* a new leadership term at back */
	int64_t since = nodes_observed_since(start, back, 0);
	int64_t heard = nodes_last_heard(node, t0, since);
	assert_int_equal(heard, back);
	assert_int_equal(nodes_judge((heard + 1) * 1000, (back + 1) * 1000, grace, evict),
	                 NODES_ALIVE);
	assert_int_equal(nodes_judge((heard + 1) * 1000, (back + 39) * 1000, grace, evict),
	                 NODES_ALIVE);
	/* the agent really is dead: Unknown after the grace, lost after both */
	assert_int_equal(nodes_judge((heard + 1) * 1000, (back + 41) * 1000, grace, evict),
	                 NODES_UNKNOWN);
	assert_int_equal(nodes_judge((heard + 1) * 1000, (back + 101) * 1000, grace, evict),
	                 NODES_EVICT);
	/* the same leader kept its lease, but its polls failed until back */
	since = nodes_observed_since(start, start, back);
	assert_int_equal(nodes_last_heard(node, t0, since), back);
	/* a renewal after the store is back is the latest news */
	assert_int_equal(nodes_last_heard(node, back + 5, since), back + 5);
	json_decref(node);
}

static void test_conditions_unknown(void **state)
{
	(void)state;
	json_t *conds = json_pack("[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]", "type", "Ready",
	                          "status", "True", "reason", "AgentReady", "lastHeartbeatTime",
	                          "2026-01-01T10:00:00Z", "type", "ResourceLimitsEnforced",
	                          "status", "False", "reason", "NoCgroupLimits", "message", "m");
	json_t *out = nodes_conditions_unknown(conds, "2026-01-01T10:01:00Z");
	assert_non_null(out);
	assert_int_equal(json_array_size(out), 2);
	json_t *r = json_array_get(out, 0);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "Unknown");
	assert_string_equal(json_string_value(json_object_get(r, "reason")), "NodeStatusUnknown");
	assert_string_equal(json_string_value(json_object_get(r, "message")),
	                    "keel agent stopped renewing its lease");
	assert_string_equal(json_string_value(json_object_get(r, "lastTransitionTime")),
	                    "2026-01-01T10:01:00Z");
	/* kept: the last heartbeat, and the other condition as it was */
	assert_string_equal(json_string_value(json_object_get(r, "lastHeartbeatTime")),
	                    "2026-01-01T10:00:00Z");
	assert_true(json_equal(json_array_get(out, 1), json_array_get(conds, 1)));
	/* the input is untouched */
	assert_string_equal(json_string_value(json_object_get(json_array_get(conds, 0), "status")),
	                    "True");
	/* already Unknown: nothing to write */
	assert_null(nodes_conditions_unknown(out, "2026-01-01T10:02:00Z"));
	json_decref(out);
	json_decref(conds);
	/* no conditions at all: a Ready=Unknown one */
	out = nodes_conditions_unknown(NULL, "2026-01-01T10:01:00Z");
	assert_int_equal(json_array_size(out), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "type")),
	                    "Ready");
	json_t *node = json_pack("{s:{s:O}}", "status", "conditions", out);
	assert_string_equal(nodes_ready_status(node), "Unknown");
	json_decref(node);
	json_decref(out);
}

static void test_task_evictable(void **state)
{
	(void)state;
	const char *phases[] = {"Pending", "Scheduled", "Running", "Succeeded", "Failed"};
	bool want[] = {true, true, true, false, false};
	for (size_t i = 0; i < ARRAY_SIZE(phases); i++) {
		json_t *t = json_pack("{s:{s:s}}", "status", "phase", phases[i]);
		assert_int_equal(nodes_task_evictable(t), want[i]);
		json_decref(t);
	}
	json_t *t = json_pack("{s:{}}", "spec"); /* no status yet */
	assert_true(nodes_task_evictable(t));
	json_decref(t);
}

static json_t *task_on(const char *name, const char *node, const char *phase)
{
	json_t *t = json_pack("{s:{s:s, s:s}, s:{}, s:{}}", "metadata", "name", name, "namespace",
	                      "default", "spec", "status");
	if (node)
		json_object_set_new(json_object_get(t, "spec"), "nodeName", json_string(node));
	if (phase)
		json_object_set_new(json_object_get(t, "status"), "phase", json_string(phase));
	return t;
}

/* Tasks bound to a Node that does not exist are lost once they have been
 * so for the grace period (a Task bound just before its Node registers is
 * not); the others are forgotten. */
static void test_orphans(void **state)
{
	(void)state;
	json_t *nodes = json_pack("{s:b}", "n1", 1);
	json_t *tasks = json_pack("[o, o, o, o, o]", task_on("on-n1", "n1", "Running"),
	                          task_on("on-gone", "gone", "Running"),
	                          task_on("done-on-gone", "gone", "Succeeded"),
	                          task_on("unbound", NULL, "Pending"),
	                          task_on("pending-on-m3", "m3", NULL));
	json_t *seen = json_object();
	json_t *due = nodes_orphans(seen, tasks, nodes, 1000, 10000);
	assert_int_equal(json_array_size(due), 0);
	assert_int_equal(json_object_size(seen), 2); /* on-gone, pending-on-m3 */
	assert_int_equal(json_integer_value(json_object_get(seen, "default/on-gone")), 1000);
	json_decref(due);
	/* 9.999 s later: still in the grace period */
	due = nodes_orphans(seen, tasks, nodes, 10999, 10000);
	assert_int_equal(json_array_size(due), 0);
	json_decref(due);
	/* m3 registers meanwhile: its Task is no longer an orphan */
	json_object_set_new(nodes, "m3", json_true());
	due = nodes_orphans(seen, tasks, nodes, 11000, 10000);
	assert_int_equal(json_array_size(due), 1);
	assert_string_equal(json_string_value(json_array_get(due, 0)), "default/on-gone");
	assert_int_equal(json_object_size(seen), 1);
	json_decref(due);
	/* m3 goes away again: a new grace period from now */
	json_object_del(nodes, "m3");
	due = nodes_orphans(seen, tasks, nodes, 12000, 10000);
	assert_int_equal(json_array_size(due), 1);
	assert_int_equal(json_integer_value(json_object_get(seen, "default/pending-on-m3")), 12000);
	json_decref(due);
	/* once marked Failed, a Task is forgotten */
	json_object_set_new(json_object_get(json_array_get(tasks, 1), "status"), "phase",
	                    json_string("Failed"));
	due = nodes_orphans(seen, tasks, nodes, 13000, 10000);
	assert_int_equal(json_array_size(due), 0);
	assert_null(json_object_get(seen, "default/on-gone"));
	json_decref(due);
	json_decref(seen);
	json_decref(tasks);
	json_decref(nodes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_judge),
	    cmocka_unit_test(test_last_heard),
	    cmocka_unit_test(test_observed_since),
	    cmocka_unit_test(test_outage_not_counted),
	    cmocka_unit_test(test_conditions_unknown),
	    cmocka_unit_test(test_task_evictable),
	    cmocka_unit_test(test_orphans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
