/* Unit tests for the agent's usage rule (agent_usage.h: when a Task's
 * status.usage is written again) and the port variables every runtime
 * gives a Task (runtime.h: rt_port_env). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "agent/agent_usage.h"
#include "agent/runtime.h"
#include "common/util.h"

#define MI (1 << 20)

static void test_usage_changed(void **state)
{
	(void)state;
	/* nothing written yet, or a value that becomes known or unknown */
	assert_true(agent_usage_changed(-1, -1, 0, 0));
	assert_true(agent_usage_changed(-1, 10 * MI, 5, 10 * MI));
	assert_true(agent_usage_changed(5, 10 * MI, -1, 10 * MI));
	assert_false(agent_usage_changed(-1, -1, -1, -1));
	/* an idle task jitters below the floors: 10m CPU, 1Mi memory */
	assert_false(agent_usage_changed(3, 300 * 1024, 0, 900 * 1024));
	assert_false(agent_usage_changed(0, 0, 9, MI - 1));
	assert_true(agent_usage_changed(0, 0, 10, 0));
	assert_true(agent_usage_changed(0, 0, 0, MI));
	/* a busy one moves by its relative threshold: 20% CPU, 10% memory */
	assert_false(agent_usage_changed(1000, 500 * MI, 1199, 549 * MI));
	assert_true(agent_usage_changed(1000, 500 * MI, 1200, 500 * MI));
	assert_true(agent_usage_changed(1000, 500 * MI, 800, 500 * MI));
	assert_true(agent_usage_changed(1000, 500 * MI, 1000, 450 * MI));
}

static json_t *env_of(const char *spec_json, const int *host)
{
	json_t *spec = json_loads(spec_json, 0, NULL);
	assert_non_null(spec);
	json_t *env = json_array();
	rt_port_env(spec, host, env);
	json_decref(spec);
	return env;
}

static void expect_env(json_t *env, const char *const *want)
{
	size_t n = 0;
	while (want[n])
		n++;
	if (json_array_size(env) != n) {
		char *s = json_dumps(env, 0);
		fail_msg("env %s, want %zu entries", s, n);
	}
	for (size_t i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_array_get(env, i)), want[i]);
	json_decref(env);
}

static void test_port_env(void **state)
{
	(void)state;
	const char *spec = "{\"ports\":[{\"name\":\"http\",\"containerPort\":8080},"
	                   "{\"name\":\"admin-api\",\"containerPort\":9000},"
	                   "{\"containerPort\":53,\"protocol\":\"UDP\"}]}";
	/* in a container: the containerPorts */
	const char *in_container[] = {"KEEL_PORT_HTTP=8080",      "KEEL_PORT_8080=8080", "PORT=8080",
	                              "KEEL_PORT_ADMIN_API=9000", "KEEL_PORT_9000=9000",
	                              "KEEL_PORT_53=53",          NULL};
	expect_env(env_of(spec, NULL), in_container);
	/* as a host process: the host ports picked for it */
	const int host[] = {30001, 30002, 30003};
	const char *on_host[] = {"KEEL_PORT_HTTP=30001",      "KEEL_PORT_8080=30001", "PORT=30001",
	                         "KEEL_PORT_ADMIN_API=30002", "KEEL_PORT_9000=30002",
	                         "KEEL_PORT_53=30003",        NULL};
	expect_env(env_of(spec, host), on_host);
	/* spec.env's own PORT wins; no ports, no variables */
	const char *own[] = {"KEEL_PORT_8080=30001", NULL};
	expect_env(env_of("{\"env\":[{\"name\":\"PORT\",\"value\":\"1\"}],"
	                  "\"ports\":[{\"containerPort\":8080}]}",
	                  host),
	           own);
	const char *none[] = {NULL};
	expect_env(env_of("{}", NULL), none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_usage_changed),
	    cmocka_unit_test(test_port_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
