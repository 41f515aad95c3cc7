/* Unit tests for the pure parts of keel up, keel top and keel completion
 * (src/cli/cli_up.c, cli_top.c, cli_completion.c): which runtime keel up
 * picks and why, what it does with a user's config file, the arithmetic and
 * formatting of keel top, and the completion script generated from the
 * commands' own help. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli_internal.h"
#include "common/kerr.h"
#include "common/util.h"

static void expect_runtime(const char *flag, bool answers, const char *want, const char *why_part)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	const char *rt = NULL;
	_cleanup_free_ char *why = NULL;
	assert_int_equal(cli_up_runtime(flag, NULL, answers, &rt, &why, &err), 0);
	assert_string_equal(rt, want);
	if (!strstr(why, why_part))
		fail_msg("why \"%s\" lacks \"%s\"", why, why_part);
}

static void test_runtime_choice(void **state)
{
	(void)state;
	/* by default: docker when an engine answers, else process; it says why */
	expect_runtime(NULL, true, "docker", "a Docker engine answers on /var/run/docker.sock");
	expect_runtime("", false, "process", "no Docker engine answers on /var/run/docker.sock");
	expect_runtime(NULL, false, "process", "the command must exist on this machine");
	/* a flag wins; process never needs an engine */
	expect_runtime("process", true, "process", "--runtime process was given");
	expect_runtime("docker", true, "docker", "--runtime docker was given");

	_cleanup_kerr_ struct kerr err = KERR_INIT;
	const char *rt = "untouched";
	char *why = NULL;
	assert_int_equal(cli_up_runtime("docker", "/run/other.sock", false, &rt, &why, &err),
	                 -ECONNREFUSED);
	assert_string_equal(err.msg, "--runtime docker: no Docker engine answers on "
	                             "/run/other.sock (start dockerd, or use --runtime process)");
	assert_string_equal(rt, "untouched");
	assert_null(why);
	kerr_clear(&err);
	assert_int_equal(cli_up_runtime("podman", NULL, true, &rt, &why, &err), -EINVAL);
	assert_string_equal(err.msg, "--runtime: unknown runtime \"podman\" (docker or process)");
}

static void test_config_rule(void **state)
{
	(void)state;
	const char *url = "http://127.0.0.1:7700";
	assert_int_equal(cli_up_config_action(NULL, url), CLI_UP_CONFIG_WRITE);
	/* written by keel up before (for this or another server): refreshed */
	assert_int_equal(
	    cli_up_config_action("{\"server\": \"http://127.0.0.1:9\", \"writtenBy\": \"keel up\"}", url),
	    CLI_UP_CONFIG_WRITE);
	/* the user's own: left alone, whether it names this server or another */
	assert_int_equal(cli_up_config_action("{\"server\": \"http://127.0.0.1:7700\", \"token\": \"t\"}",
	                                      url),
	                 CLI_UP_CONFIG_SAME);
	assert_int_equal(cli_up_config_action("{\"server\": \"https://prod:7700\"}", url),
	                 CLI_UP_CONFIG_OTHER);
	/* something that is not even JSON is not ours to overwrite either */
	assert_int_equal(cli_up_config_action("server=prod\n", url), CLI_UP_CONFIG_OTHER);
	assert_int_equal(cli_up_config_action("{\"writtenBy\": \"me\"}", url), CLI_UP_CONFIG_OTHER);
}

static void expect_fmt(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

static void test_formatting(void **state)
{
	(void)state;
	expect_fmt(cli_fmt_cpu(0), "0m");
	expect_fmt(cli_fmt_cpu(250), "250m");
	expect_fmt(cli_fmt_cpu(1500), "1500m");
	expect_fmt(cli_fmt_cpu(2000), "2");
	expect_fmt(cli_fmt_mem(512), "512");
	expect_fmt(cli_fmt_mem(900 * 1024), "900Ki");
	expect_fmt(cli_fmt_mem(32 << 20), "32Mi");
	expect_fmt(cli_fmt_mem((int64_t)3 << 29), "1.5Gi");
	expect_fmt(cli_fmt_mem((int64_t)24 << 30), "24Gi");
	expect_fmt(cli_fmt_mem(25275965440LL), "24Gi"); /* 23.54Gi: no decimal from 10 up */
	expect_fmt(cli_fmt_mem(1075838976), "1Gi");     /* 1.002Gi rounds to a whole */
	expect_fmt(cli_top_cell(300, 2000, true), "300m (15%)");
	expect_fmt(cli_top_cell(96 << 20, (int64_t)24 << 30, false), "96Mi (0%)");
	expect_fmt(cli_top_cell(1, 3, true), "1m (33%)");
	expect_fmt(cli_top_cell(2, 3, true), "2m (67%)"); /* rounded, not truncated */
	expect_fmt(cli_top_cell(-1, 2000, true), "-");
	expect_fmt(cli_top_cell(4000, 0, true), "4000m");
	expect_fmt(cli_top_cell(1000, 2000, true), "1000m (50%)"); /* not "1": a column of m */
}

static void test_top_node_sum(void **state)
{
	(void)state;
	json_t *node = json_loads(
	    "{\"metadata\":{\"name\":\"n1\"},\"status\":{\"capacity\":{\"cpu\":\"4\","
	    "\"memory\":\"8Gi\"},\"allocatable\":{\"cpu\":\"3500m\",\"memory\":\"7Gi\"},"
	    "\"usage\":{\"cpu\":\"120m\",\"memory\":\"300Mi\"}}}",
	    0, NULL);
	json_t *tasks = json_loads(
	    "[{\"spec\":{\"nodeName\":\"n1\",\"resources\":{\"requests\":{\"cpu\":\"500m\","
	    "\"memory\":\"1Gi\"}}},\"status\":{\"phase\":\"Running\"}},"
	    /* a Task without requests counts, with nothing */
	    "{\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"phase\":\"Pending\"}},"
	    /* cpu as a YAML number */
	    "{\"spec\":{\"nodeName\":\"n1\",\"resources\":{\"requests\":{\"cpu\":1}}}},"
	    /* ended Tasks hold nothing, as the scheduler counts */
	    "{\"spec\":{\"nodeName\":\"n1\",\"resources\":{\"requests\":{\"cpu\":\"2\"}}},"
	    "\"status\":{\"phase\":\"Succeeded\"}},"
	    "{\"spec\":{\"nodeName\":\"n1\",\"resources\":{\"requests\":{\"cpu\":\"2\"}}},"
	    "\"status\":{\"phase\":\"Failed\"}},"
	    /* other nodes' and unbound Tasks are not n1's */
	    "{\"spec\":{\"nodeName\":\"n2\",\"resources\":{\"requests\":{\"cpu\":\"2\"}}}},"
	    "{\"spec\":{\"resources\":{\"requests\":{\"cpu\":\"2\"}}}}]",
	    0, NULL);
	assert_non_null(node);
	assert_non_null(tasks);
	struct cli_top_node s;
	cli_top_node_sum(node, tasks, &s);
	assert_int_equal(s.cap_cpu, 3500); /* allocatable, not capacity */
	assert_int_equal(s.cap_mem, (int64_t)7 << 30);
	assert_int_equal(s.used_cpu, 120);
	assert_int_equal(s.used_mem, 300 << 20);
	assert_int_equal(s.req_cpu, 1500);
	assert_int_equal(s.req_mem, 1 << 30);
	assert_int_equal(s.tasks, 3);

	/* no allocatable: capacity; no usage reported yet: unknown */
	json_t *bare = json_loads("{\"metadata\":{\"name\":\"n2\"},\"status\":{\"capacity\":{"
	                          "\"cpu\":\"2\",\"memory\":\"1Gi\"}}}",
	                          0, NULL);
	cli_top_node_sum(bare, tasks, &s);
	assert_int_equal(s.cap_cpu, 2000);
	assert_int_equal(s.used_cpu, -1);
	assert_int_equal(s.used_mem, -1);
	assert_int_equal(s.req_cpu, 2000);
	assert_int_equal(s.tasks, 1);
	json_decref(bare);
	json_decref(node);
	json_decref(tasks);
}

static char *completion(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	cli_completion_bash(f);
	fclose(f);
	return text;
}

/* The value of the shell variable NAME='...' in script. Owned. */
static char *var(const char *script, const char *name)
{
	_cleanup_free_ char *key = xasprintf("\n%s='", name);
	const char *p = strstr(script, key);
	if (!p)
		fail_msg("no %s in the completion script", name);
	p += strlen(key);
	return xstrndup(p, strcspn(p, "'"));
}

static void expect_words(const char *script, const char *name, const char *const *words)
{
	_cleanup_free_ char *v = var(script, name);
	_cleanup_free_ char *padded = xasprintf(" %s ", v);
	for (size_t i = 0; words[i]; i++) {
		_cleanup_free_ char *w = xasprintf(" %s ", words[i]);
		if (!strstr(padded, w))
			fail_msg("%s lacks %s: %s", name, words[i], v);
	}
}

static void test_completion(void **state)
{
	(void)state;
	_cleanup_free_ char *s = completion();
	assert_true(strstartswith(s, "# bash completion for keel"));
	assert_non_null(strstr(s, "\ncomplete -F _keel keel\n"));
	/* every command, the daemons too */
	const char *cmds[] = {"apply", "get",  "describe", "delete", "logs", "scale", "rollout",
	                      "top",   "up",   "completion", "server", "agent", "controller",
	                      "help",  NULL};
	expect_words(s, "_keel_commands", cmds);
	/* each command's flags come from its own help, short and long */
	const char *up[] = {"-f", "--filename", "--data-dir", "--listen", "--runtime", "--name",
	                    "--stop-tasks-on-exit", "--no-user-config", "--server", NULL};
	expect_words(s, "_keel_flags_up", up);
	const char *get[] = {"-o", "--output", "-A", "--all-namespaces", "-w", "--watch", NULL};
	expect_words(s, "_keel_flags_get", get);
	const char *scale[] = {"--replicas", "-n", NULL};
	expect_words(s, "_keel_flags_scale", scale);
	const char *undo[] = {"--to-revision", NULL};
	expect_words(s, "_keel_flags_rollout_undo", undo);
	const char *agent[] = {"--runtime", "--simulate", "--stop-tasks-on-exit", NULL};
	expect_words(s, "_keel_flags_agent", agent);
	const char *server[] = {"--data-dir", "--controllers", "--scheduler", NULL};
	expect_words(s, "_keel_flags_server", server);
	/* no word twice, and nothing from the examples */
	_cleanup_free_ char *g = var(s, "_keel_flags_get");
	assert_null(strstr(g, "--namespace --namespace"));
	assert_null(strstr(g, "keel"));
	/* generating it printed no help on stdout (it went to memory) */
	assert_ptr_equal(cli_help_file(), stdout);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_runtime_choice), cmocka_unit_test(test_config_rule),
	    cmocka_unit_test(test_formatting),     cmocka_unit_test(test_top_node_sum),
	    cmocka_unit_test(test_completion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
