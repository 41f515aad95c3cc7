/* Unit tests: `keel agent` flags (src/agent/agent_opts.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent_opts.h"
#include "common/kerr.h"

static int parse(struct agent_opts *o, struct kerr *err, int argc, char **argv)
{
	agent_opts_init(o);
	return agent_opts_parse(o, argc, argv, err);
}

static void test_defaults_and_values(void **state)
{
	(void)state;
	struct agent_opts o;
	struct kerr err = KERR_INIT;
	char *argv[] = {"agent",
	                "--runtime",
	                "sim",
	                "--simulate=1000",
	                "--name",
	                "sim",
	                "--cpus",
	                "500m",
	                "--memory",
	                "8Gi",
	                "--backoff-base",
	                "200ms",
	                "--backoff-max",
	                "2s",
	                "--labels",
	                "zone=a,disk=ssd"};
	assert_int_equal(parse(&o, &err, 16, argv), 0);
	assert_int_equal(o.runtime, AGENT_RT_SIM);
	assert_int_equal(o.simulate, 1000);
	assert_string_equal(o.name, "sim");
	assert_int_equal(o.cpus_milli, 500);
	assert_int_equal(o.memory_bytes, 8LL << 30);
	assert_int_equal(o.backoff_base_ms, 200);
	assert_int_equal(o.backoff_max_ms, 2000);
	assert_int_equal(o.backoff_reset_ms, 600000);
	assert_int_equal(o.heartbeat_ms, 10000);
	assert_string_equal(o.log_listen, "127.0.0.1:0");
	agent_opts_free(&o);
}

static void expect_error(const char *flag, const char *value, const char *needle)
{
	struct agent_opts o;
	struct kerr err = KERR_INIT;
	char *argv[] = {"agent", (char *)flag, (char *)value};
	assert_int_equal(parse(&o, &err, value ? 3 : 2, argv), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), needle));
	kerr_clear(&err);
	agent_opts_free(&o);
}

static void test_bad_values_name_the_flag(void **state)
{
	(void)state;
	expect_error("--runtime", "podman", "--runtime: unknown runtime \"podman\"");
	expect_error("--backoff-base", "ten", "--backoff-base: invalid duration \"ten\"");
	expect_error("--cpus", "lots", "--cpus: invalid CPU quantity");
	expect_error("--memory", "-1", "--memory: invalid memory quantity");
	expect_error("--name", "Node_1", "--name: invalid node name");
	expect_error("--labels", "zone", "--labels: invalid label \"zone\"");
	expect_error("--log-listen", "localhost", "--log-listen: invalid address");
	expect_error("--sim-fail-fraction", "2", "--sim-fail-fraction: invalid fraction");
	expect_error("--simulate", "5", "--simulate needs --runtime sim");
	expect_error("--heartbeat", "1s",
	             "unknown flag \"--heartbeat\" for \"keel agent\"; did you mean "
	             "\"--heartbeat-interval\"?");
	expect_error("--zzzzzzzz", "1s",
	             "unknown flag \"--zzzzzzzz\" for \"keel agent\" (see keel agent --help)");
	expect_error("--token", NULL, "flag --token needs a value");
}

/* The log server is plain HTTP: off loopback only with --insecure-listen. */
static void test_log_listen_off_loopback(void **state)
{
	(void)state;
	expect_error("--log-listen", "0.0.0.0:7701",
	             "--log-listen 0.0.0.0:7701 is not a loopback address");
	expect_error("--log-listen", ":7701", "give --insecure-listen to serve it there anyway");
	expect_error("--log-listen", "10.1.2.3:0", "--log-listen 10.1.2.3:0 is not a loopback");
	struct agent_opts o;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	char *ok[] = {"agent", "--log-listen", "127.0.0.2:7701"};
	assert_int_equal(parse(&o, &err, 3, ok), 0);
	assert_false(o.insecure_listen);
	agent_opts_free(&o);
	char *anyway[] = {"agent", "--log-listen", "0.0.0.0:7701", "--insecure-listen"};
	assert_int_equal(parse(&o, &err, 4, anyway), 0);
	assert_true(o.insecure_listen);
	assert_string_equal(o.log_listen, "0.0.0.0:7701");
	agent_opts_free(&o);
}

static void test_durations(void **state)
{
	(void)state;
	int64_t ms = 0;
	assert_int_equal(agent_parse_duration_ms("1.5s", &ms, NULL), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(agent_parse_duration_ms("5m", &ms, NULL), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(agent_parse_duration_ms("10", &ms, NULL), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(agent_parse_duration_ms("", &ms, NULL), -EINVAL);
	assert_int_equal(agent_parse_duration_ms("-1s", &ms, NULL), -EINVAL);
	assert_int_equal(agent_parse_duration_ms("3d", &ms, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_and_values),
	    cmocka_unit_test(test_bad_values_name_the_flag),
	    cmocka_unit_test(test_log_listen_off_loopback),
	    cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
