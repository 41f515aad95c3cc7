/* Unit tests for api/kind: the kind table, resolution, suggestions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/kind.h"
#include "common/util.h"

static void test_table(void **state)
{
	(void)state;
	assert_int_equal(api_kind_count(), 5);
	for (size_t i = 0; i < api_kind_count(); i++) {
		const struct api_kind *k = api_kind_at(i);
		assert_non_null(k);
		assert_ptr_equal(api_kind_by_kind(k->kind), k);
		assert_ptr_equal(api_kind_by_plural(k->plural), k);
	}
	assert_null(api_kind_at(api_kind_count()));
	const struct api_kind *ev = api_kind_by_kind("Event");
	assert_true(ev->namespaced);
	assert_false(ev->has_status);
	assert_false(api_kind_by_kind("Node")->namespaced);
	assert_false(api_kind_by_kind("Namespace")->namespaced);
	assert_true(api_kind_by_kind("Task")->has_status);
	assert_string_equal(api_kind_by_kind("Deployment")->list_kind, "DeploymentList");
	assert_null(api_kind_by_kind("task")); /* exact match only */
	assert_null(api_kind_by_plural("Tasks"));
	assert_null(api_kind_by_kind(NULL));
}

static void test_resolve(void **state)
{
	(void)state;
	assert_string_equal(api_kind_resolve("tasks")->kind, "Task");
	assert_string_equal(api_kind_resolve("task")->kind, "Task");
	assert_string_equal(api_kind_resolve("TASK")->kind, "Task");
	assert_string_equal(api_kind_resolve("tk")->kind, "Task");
	assert_string_equal(api_kind_resolve("deploy")->kind, "Deployment");
	assert_string_equal(api_kind_resolve("Deployments")->kind, "Deployment");
	assert_string_equal(api_kind_resolve("ns")->kind, "Namespace");
	assert_string_equal(api_kind_resolve("no")->kind, "Node");
	assert_string_equal(api_kind_resolve("ev")->kind, "Event");
	assert_null(api_kind_resolve("pods"));
	assert_null(api_kind_resolve(""));
	assert_null(api_kind_resolve(NULL));
}

static void test_suggest(void **state)
{
	(void)state;
	assert_string_equal(api_kind_suggest("taks"), "tasks");
	assert_string_equal(api_kind_suggest("deploymnets"), "deployments");
	assert_string_equal(api_kind_suggest("Nodse"), "nodes");
	assert_string_equal(api_kind_suggest("namespce"), "namespaces");
	assert_null(api_kind_suggest("zzzzzzzz"));
	assert_null(api_kind_suggest(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_suggest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
