/* Unit tests for the pure parts of src/cli: the flag parser, kubectl-style
 * tables and per-kind columns, the unified line diff, kind resolution with
 * "did you mean" hints, and the command dispatcher's usage errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "common/kerr.h"
#include "common/util.h"

/* Runs fn with stderr redirected to a buffer; returns what it printed. */
static char *capture_stderr(int (*fn)(void *), void *ud, int *ret)
{
	fflush(stderr);
	char path[] = "/tmp/keel-cli-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	*ret = fn(ud);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	char *text = NULL;
	assert_int_equal(file_read_all(path, 1 << 20, &text, NULL, NULL), 0);
	close(fd);
	unlink(path);
	return text;
}

/* ---- flags ---- */

struct flags {
	bool all, rec, dry;
	const char *ns, *out;
	struct cli_strv files;
	long limit;
};

static int parse(struct flags *f, struct cli_strv *pos, bool *help, struct kerr *err, int argc,
                 char **argv)
{
	const struct cli_opt opts[] = {
	    {"all-namespaces", 'A', CLI_OPT_BOOL, &f->all, NULL, ""},
	    {"recursive", 'R', CLI_OPT_BOOL, &f->rec, NULL, ""},
	    {"dry-run", 0, CLI_OPT_BOOL, &f->dry, NULL, ""},
	    {"namespace", 'n', CLI_OPT_STRING, &f->ns, "NS", ""},
	    {"output", 'o', CLI_OPT_STRING, &f->out, "FORMAT", ""},
	    {"filename", 'f', CLI_OPT_LIST, &f->files, "PATH", ""},
	    {"limit", 0, CLI_OPT_INT, &f->limit, "N", ""},
	};
	return cli_args_parse("get", opts, ARRAY_SIZE(opts), argc, argv, pos, help, err);
}

static void test_args_forms(void **state)
{
	(void)state;
	char *argv[] = {"tasks",    "-n",         "prod",     "web",        "--output=json",
	                "-fa.yaml", "--filename", "-",        "-AR",        "--dry-run=server",
	                "--limit",  "5",          "--server", "http://x:1", "--",
	                "-notaflag"};
	struct flags f = {0};
	struct cli_strv pos = {0};
	bool help = true;
	struct kerr err = KERR_INIT;
	assert_int_equal(parse(&f, &pos, &help, &err, ARRAY_SIZE(argv), argv), 0);
	assert_false(help);
	assert_string_equal(f.ns, "prod");
	assert_string_equal(f.out, "json");
	assert_int_equal(f.files.n, 2);
	assert_string_equal(f.files.v[0], "a.yaml");
	assert_string_equal(f.files.v[1], "-");
	assert_true(f.all);
	assert_true(f.rec);
	assert_true(f.dry);
	assert_int_equal(f.limit, 5);
	assert_string_equal(cli_globals.server, "http://x:1");
	assert_int_equal(pos.n, 3);
	assert_string_equal(pos.v[0], "tasks");
	assert_string_equal(pos.v[1], "web");
	assert_string_equal(pos.v[2], "-notaflag");
	cli_strv_free(&pos);
	cli_strv_free(&f.files);
	cli_globals.server = NULL;
}

static void test_args_errors(void **state)
{
	(void)state;
	struct flags f = {0};
	struct cli_strv pos = {0};
	bool help = false;
	struct kerr err = KERR_INIT;
	char *a1[] = {"--namespcae", "x"};
	assert_int_equal(parse(&f, &pos, &help, &err, 2, a1), -EINVAL);
	assert_string_equal(
	    err.msg,
	    "unknown flag \"--namespcae\" for \"keel get\"; did you mean \"--namespace\"?");
	kerr_clear(&err);
	char *a2[] = {"-z"};
	assert_int_equal(parse(&f, &pos, &help, &err, 1, a2), -EINVAL);
	assert_string_equal(err.msg, "unknown flag \"-z\" for \"keel get\"");
	kerr_clear(&err);
	char *a3[] = {"-n"};
	assert_int_equal(parse(&f, &pos, &help, &err, 1, a3), -EINVAL);
	assert_non_null(strstr(err.msg, "needs a value"));
	kerr_clear(&err);
	char *a4[] = {"--limit", "ten"};
	assert_int_equal(parse(&f, &pos, &help, &err, 2, a4), -EINVAL);
	assert_non_null(strstr(err.msg, "non-negative integer"));
	kerr_clear(&err);
	char *a5[] = {"--all-namespaces=maybe"};
	assert_int_equal(parse(&f, &pos, &help, &err, 1, a5), -EINVAL);
	assert_non_null(strstr(err.msg, "true or false"));
	kerr_clear(&err);
	char *a6[] = {"tasks", "--help"};
	assert_int_equal(parse(&f, &pos, &help, &err, 2, a6), 0);
	assert_true(help);
	cli_strv_free(&pos);
}

/* ---- tables ---- */

static void test_table_layout(void **state)
{
	(void)state;
	struct cli_table *t = cli_table_new(3);
	const char *h[] = {"NAME", "STATUS", "AGE"};
	const char *r1[] = {"web-1", "Running", "5m"};
	const char *r2[] = {"a", NULL, "10d"};
	const char *r3[] = {"multi\nline", "x\ty", "1s"};
	cli_table_add(t, h);
	cli_table_add(t, r1);
	cli_table_add(t, r2);
	cli_table_add(t, r3);
	struct sbuf out = SBUF_INIT;
	cli_table_render(t, &out);
	assert_string_equal(out.data, "NAME         STATUS    AGE\n"
	                              "web-1        Running   5m\n"
	                              "a            <none>    10d\n"
	                              "multi line   x y       1s\n");
	/* a watch row wider than before grows its column */
	const char *r4[] = {"a-much-longer-name", "Pending", "0s"};
	cli_table_add(t, r4);
	sbuf_reset(&out);
	cli_table_render_row(t, 4, &out);
	assert_string_equal(out.data, "a-much-longer-name   Pending   0s\n");
	sbuf_free(&out);
	cli_table_free(t);
}

static char *render_rows(const char *kind, bool wide, bool ns_col, const char *json)
{
	const struct api_kind *k = api_kind_by_kind(kind);
	assert_non_null(k);
	json_t *obj = json_loads(json, 0, NULL);
	assert_non_null(obj);
	struct cli_table *t = cli_print_table_new(k, wide, ns_col);
	int64_t now = time_parse_rfc3339("2026-01-01T00:10:00Z");
	cli_print_row(k, obj, wide, ns_col, now, t);
	struct sbuf out = SBUF_INIT;
	cli_table_render(t, &out);
	cli_table_free(t);
	json_decref(obj);
	return sbuf_take(&out);
}

static void test_kind_columns(void **state)
{
	(void)state;
	_cleanup_free_ char *task =
	    render_rows("Task", true, true,
	                "{\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\","
	                "\"creationTimestamp\":\"2026-01-01T00:05:00Z\"},"
	                "\"spec\":{\"image\":\"nginx\",\"nodeName\":\"n1\"},"
	                "\"status\":{\"phase\":\"Pending\",\"reason\":\"CrashLoopBackOff\","
	                "\"restartCount\":3}}");
	assert_string_equal(
	    task,
	    "NAMESPACE   NAME   READY   STATUS             RESTARTS   AGE   NODE   PORTS    IMAGE\n"
	    "prod        web    0/1     CrashLoopBackOff   3          5m    n1     <none>   nginx\n");
	/* PORTS: where each published port answers, else the declared containerPorts */
	_cleanup_free_ char *ported = render_rows(
	    "Task", true, false,
	    "{\"metadata\":{\"name\":\"web\",\"creationTimestamp\":\"2026-01-01T00:05:00Z\"},"
	    "\"spec\":{\"image\":\"nginx\",\"nodeName\":\"n1\",\"ports\":[{\"containerPort\":8080},"
	    "{\"containerPort\":53,\"protocol\":\"UDP\"}]},"
	    "\"status\":{\"phase\":\"Running\",\"ready\":true,\"hostIP\":\"127.0.0.1\","
	    "\"ports\":[{\"containerPort\":8080,\"hostPort\":30001,\"protocol\":\"TCP\"},"
	    "{\"containerPort\":53,\"hostPort\":30002,\"protocol\":\"UDP\"}]}}");
	assert_non_null(strstr(ported, " 127.0.0.1:30001->8080,127.0.0.1:30002->53/udp "));
	_cleanup_free_ char *declared = render_rows(
	    "Task", true, false,
	    "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"image\":\"nginx\","
	    "\"ports\":[{\"containerPort\":8080}]}}");
	assert_non_null(strstr(declared, " <none>   8080 "));
	_cleanup_free_ char *dep = render_rows(
	    "Deployment", false, false,
	    "{\"metadata\":{\"name\":\"web\",\"creationTimestamp\":\"2026-01-01T00:09:30Z\"},"
	    "\"spec\":{\"replicas\":3},\"status\":{\"readyReplicas\":2,\"updatedReplicas\":3,"
	    "\"availableReplicas\":2}}");
	assert_string_equal(dep, "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n"
	                         "web    2/3     3            2           30s\n");
	_cleanup_free_ char *node =
	    render_rows("Node", false, false,
	                "{\"metadata\":{\"name\":\"n1\"},\"spec\":{\"unschedulable\":true},"
	                "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
	assert_string_equal(node, "NAME   STATUS                     AGE         VERSION\n"
	                          "n1     Ready,SchedulingDisabled   <unknown>   <none>\n");
	_cleanup_free_ char *ev = render_rows(
	    "Event", false, false,
	    "{\"metadata\":{\"name\":\"e1\"},\"type\":\"Warning\",\"reason\":\"FailedScheduling\","
	    "\"lastTimestamp\":\"2026-01-01T00:09:00Z\",\"message\":\"0/3 nodes fit\","
	    "\"involvedObject\":{\"kind\":\"Task\",\"name\":\"web\"}}");
	assert_string_equal(ev,
	                    "LAST SEEN   TYPE      REASON             OBJECT     MESSAGE\n"
	                    "60s         Warning   FailedScheduling   task/web   0/3 nodes fit\n");
	_cleanup_free_ char *ns =
	    render_rows("Namespace", false, false, "{\"metadata\":{\"name\":\"prod\"}}");
	assert_string_equal(ns, "NAME   STATUS   AGE\nprod   Active   <unknown>\n");
}

/* ---- diff ---- */

static void test_diff_text(void **state)
{
	(void)state;
	struct sbuf out = SBUF_INIT;
	assert_false(cli_diff_text("a\nb\n", "a\nb\n", "x", "y", &out));
	assert_null(out.data);
	const char *a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n";
	const char *b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n12\n13\n";
	assert_true(
	    cli_diff_text(a, b, "live/tasks/default/web", "merged/tasks/default/web", &out));
	assert_string_equal(out.data, "--- live/tasks/default/web\n+++ merged/tasks/default/web\n"
	                              "@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
	                              "@@ -10,3 +10,4 @@\n 10\n 11\n 12\n+13\n");
	sbuf_reset(&out);
	/* against nothing: everything added */
	assert_true(cli_diff_text("", "kind: Task\nspec: {}\n", "live", "merged", &out));
	assert_string_equal(out.data,
	                    "--- live\n+++ merged\n@@ -0,0 +1,2 @@\n+kind: Task\n+spec: {}\n");
	sbuf_reset(&out);
	/* close changes share one hunk */
	assert_true(cli_diff_text("a\nb\nc\nd\ne\n", "a\nB\nc\nD\ne\n", "l", "m", &out));
	assert_string_equal(out.data,
	                    "--- l\n+++ m\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n-d\n+D\n e\n");
	sbuf_free(&out);
}

/* ---- kinds and commands ---- */

static int resolve_taks(void *ud)
{
	*(const struct api_kind **)ud = cli_kind("taks");
	return 0;
}

static void test_kind_resolution(void **state)
{
	(void)state;
	assert_string_equal(cli_kind("deploy")->kind, "Deployment");
	assert_string_equal(cli_kind("TASKS")->kind, "Task");
	assert_string_equal(cli_kind("ns")->kind, "Namespace");
	const struct api_kind *k = (void *)1;
	int ret;
	_cleanup_free_ char *msg = capture_stderr(resolve_taks, &k, &ret);
	assert_null(k);
	assert_string_equal(msg, "error: the server doesn't have a resource type \"taks\"; did you "
	                         "mean \"tasks\"?\n");
}

struct argv_box {
	int argc;
	char **argv;
};

static int run_main(void *ud)
{
	struct argv_box *b = ud;
	return cli_main(b->argc, b->argv);
}

static void test_usage_errors(void **state)
{
	(void)state;
	char *a1[] = {"keel", "aply", "-f", "x"};
	struct argv_box b = {4, a1};
	int ret;
	_cleanup_free_ char *m1 = capture_stderr(run_main, &b, &ret);
	assert_int_equal(ret, 2);
	assert_true(
	    strstartswith(m1, "error: unknown command \"aply\"; did you mean \"apply\"?\n"));
	char *a2[] = {"keel", "get", "--bogus"};
	b = (struct argv_box){3, a2};
	_cleanup_free_ char *m2 = capture_stderr(run_main, &b, &ret);
	assert_int_equal(ret, 2);
	assert_true(strstartswith(m2, "error: unknown flag \"--bogus\" for \"keel get\""));
	char *a3[] = {"keel", "get", "taks"};
	b = (struct argv_box){3, a3};
	_cleanup_free_ char *m3 = capture_stderr(run_main, &b, &ret);
	assert_int_equal(ret, 2);
	assert_non_null(strstr(m3, "did you mean \"tasks\"?"));
	char *a4[] = {"keel", "apply"};
	b = (struct argv_box){2, a4};
	_cleanup_free_ char *m4 = capture_stderr(run_main, &b, &ret);
	assert_int_equal(ret, 2);
	assert_non_null(strstr(m4, "-f PATH"));
	char *a5[] = {"keel", "get", "tasks", "-o", "xml"};
	b = (struct argv_box){5, a5};
	_cleanup_free_ char *m5 = capture_stderr(run_main, &b, &ret);
	assert_int_equal(ret, 2);
	assert_non_null(strstr(m5, "unknown output format \"xml\""));
	char *a6[] = {"keel", "delete", "task", "web", "--cascade=sideways"};
	b = (struct argv_box){5, a6};
	_cleanup_free_ char *m6 = capture_stderr(run_main, &b, &ret);
	assert_int_equal(ret, 2);
	assert_non_null(strstr(m6, "--cascade must be"));
}

static void test_token_check(void **state)
{
	(void)state;
	const char *name = NULL;
	assert_null(cli_token_check("node", "worker-1", NULL, &name));
	assert_string_equal(name, "worker-1");
	assert_null(cli_token_check("viewer", NULL, "alice", &name));
	assert_string_equal(name, "alice");
	assert_null(cli_token_check("admin", NULL, "ops", &name));
	assert_string_equal(cli_token_check(NULL, "n1", NULL, &name),
	                    "keel token create needs --role (admin, viewer or node)");
	assert_string_equal(cli_token_check("root", NULL, "x", &name),
	                    "--role must be admin, viewer or node");
	assert_non_null(strstr(cli_token_check("node", NULL, NULL, &name), "needs --node NAME"));
	assert_non_null(strstr(cli_token_check("node", "n1", "bob", &name), "not --user"));
	assert_non_null(strstr(cli_token_check("viewer", "n1", NULL, &name), "use --user"));
	assert_non_null(strstr(cli_token_check("viewer", NULL, NULL, &name), "need --user"));
	assert_non_null(
	    strstr(cli_token_check("node", "Node_1", NULL, &name), "not a valid node name"));
	assert_non_null(strstr(cli_token_check("admin", NULL, "a,b", &name), "not a valid name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args_forms),   cmocka_unit_test(test_args_errors),
	    cmocka_unit_test(test_table_layout), cmocka_unit_test(test_kind_columns),
	    cmocka_unit_test(test_diff_text),    cmocka_unit_test(test_kind_resolution),
	    cmocka_unit_test(test_usage_errors), cmocka_unit_test(test_token_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
