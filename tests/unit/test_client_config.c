/* Unit tests for src/client config resolution, paths and query encoding:
 * the order flags > env > config file > default, with temporary HOME and
 * XDG directories. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "client/client.h"
#include "common/kerr.h"
#include "common/util.h"

static char tmpdir[256];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void mkdir_p(const char *path)
{
	_cleanup_free_ char *cmd = xasprintf("mkdir -p '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("KEEL_TEST_TMP");
	mkdir_p(base ? base : "/tmp");
	snprintf(tmpdir, sizeof(tmpdir), "%s/clientcfg.XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(tmpdir));
	static const char *const vars[] = {"KEEL_SERVER",   "KEEL_TOKEN", "KEEL_CONFIG",
	                                   "KEEL_DATA_DIR", "KEEL_CA",    "XDG_CONFIG_HOME",
	                                   "XDG_DATA_HOME"};
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
		unsetenv(vars[i]);
	_cleanup_free_ char *home = xasprintf("%s/home", tmpdir);
	mkdir_p(home);
	setenv("HOME", home, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	_cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_defaults(void **state)
{
	(void)state;
	struct client_config cfg = {0};
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://127.0.0.1:7700");
	assert_string_equal(cfg.server_from, "default");
	assert_null(cfg.token);
	assert_null(cfg.config_file);
	client_config_clear(&cfg);
}

static void test_data_dir_rules(void **state)
{
	(void)state;
	setenv("KEEL_DATA_DIR", "/srv/keel", 1);
	_cleanup_free_ char *d1 = client_default_data_dir();
	assert_string_equal(d1, "/srv/keel");
	unsetenv("KEEL_DATA_DIR");
	setenv("XDG_DATA_HOME", "/x/data", 1);
	_cleanup_free_ char *d2 = client_default_data_dir();
	_cleanup_free_ char *home = xasprintf("%s/.local/share/keel", getenv("HOME"));
	unsetenv("XDG_DATA_HOME");
	_cleanup_free_ char *d3 = client_default_data_dir();
	if (geteuid() == 0) { /* root: the system directory, whatever XDG says */
		assert_string_equal(d2, "/var/lib/keel");
		assert_string_equal(d3, "/var/lib/keel");
	} else {
		assert_string_equal(d2, "/x/data/keel");
		assert_string_equal(d3, home);
	}
}

/* The server's DATA/config is the last resort; the user's config wins. */
static void test_file_order(void **state)
{
	(void)state;
	_cleanup_free_ char *data = xasprintf("%s/data", tmpdir);
	mkdir_p(data);
	_cleanup_free_ char *dcfg = xasprintf("%s/config", data);
	write_file(dcfg, "{\"server\":\"http://data:1\",\"token\":\"dtok\"}");
	setenv("KEEL_DATA_DIR", data, 1);
	struct client_config cfg = {0};
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://data:1");
	assert_string_equal(cfg.token, "dtok");
	assert_string_equal(cfg.config_file, dcfg);
	client_config_clear(&cfg);

	_cleanup_free_ char *xdg = xasprintf("%s/xdg", tmpdir);
	_cleanup_free_ char *xdgk = xasprintf("%s/keel", xdg);
	mkdir_p(xdgk);
	_cleanup_free_ char *ucfg = xasprintf("%s/config", xdgk);
	write_file(ucfg, "{\"server\":\"http://user:2\"}");
	setenv("XDG_CONFIG_HOME", xdg, 1);
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://user:2");
	assert_null(cfg.token); /* the first file found is the one used */
	assert_string_equal(cfg.config_file, ucfg);
	client_config_clear(&cfg);

	/* ~/.config/keel/config when XDG_CONFIG_HOME is unset */
	unsetenv("XDG_CONFIG_HOME");
	_cleanup_free_ char *hk = xasprintf("%s/.config/keel", getenv("HOME"));
	mkdir_p(hk);
	_cleanup_free_ char *hcfg = xasprintf("%s/config", hk);
	write_file(hcfg, "{\"token\":\"htok\"}");
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://127.0.0.1:7700");
	assert_string_equal(cfg.token, "htok");
	assert_string_equal(cfg.token_from, "config");
	client_config_clear(&cfg);
}

static void test_precedence(void **state)
{
	(void)state;
	_cleanup_free_ char *f1 = xasprintf("%s/one", tmpdir);
	_cleanup_free_ char *f2 = xasprintf("%s/two", tmpdir);
	write_file(f1, "{\"server\":\"http://one:1\",\"token\":\"t1\"}");
	write_file(f2, "{\"server\":\"http://two:2\",\"token\":\"t2\"}");
	setenv("KEEL_CONFIG", f1, 1);
	struct client_config cfg = {0};
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://one:1");
	client_config_clear(&cfg);
	/* --config beats KEEL_CONFIG */
	assert_int_equal(client_config_resolve(NULL, NULL, f2, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://two:2");
	assert_string_equal(cfg.token, "t2");
	client_config_clear(&cfg);
	/* env beats the file, field by field */
	setenv("KEEL_TOKEN", "envtok", 1);
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://one:1");
	assert_string_equal(cfg.token, "envtok");
	assert_string_equal(cfg.token_from, "env");
	client_config_clear(&cfg);
	/* flags beat env; empty flags count as unset */
	setenv("KEEL_SERVER", "http://env:3", 1);
	assert_int_equal(client_config_resolve("http://flag:4", "", NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://flag:4");
	assert_string_equal(cfg.server_from, "flag");
	assert_string_equal(cfg.token, "envtok");
	client_config_clear(&cfg);
	assert_int_equal(client_config_resolve(NULL, "flagtok", NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://env:3");
	assert_string_equal(cfg.token, "flagtok");
	client_config_clear(&cfg);
}

/* The CA file: --ca, then KEEL_CA, then the config's "ca", which is
 * relative to the config file's directory when relative. */
static void test_ca(void **state)
{
	(void)state;
	_cleanup_free_ char *f = xasprintf("%s/cfg", tmpdir);
	write_file(f, "{\"server\":\"https://one:1\",\"ca\":\"tls/ca.crt\"}");
	setenv("KEEL_CONFIG", f, 1);
	struct client_config cfg = {0};
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	_cleanup_free_ char *rel = xasprintf("%s/tls/ca.crt", tmpdir);
	assert_string_equal(cfg.ca, rel);
	assert_string_equal(cfg.ca_from, "config");
	client_config_clear(&cfg);
	write_file(f, "{\"server\":\"https://one:1\",\"ca\":\"/etc/keel/ca.pem\"}");
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.ca, "/etc/keel/ca.pem");
	client_config_clear(&cfg);
	setenv("KEEL_CA", "/env/ca.pem", 1);
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.ca, "/env/ca.pem");
	assert_string_equal(cfg.ca_from, "env");
	client_config_clear(&cfg);
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, "flag.pem", &cfg, NULL), 0);
	assert_string_equal(cfg.ca, "flag.pem"); /* a flag is relative to the working directory */
	assert_string_equal(cfg.ca_from, "flag");
	client_config_clear(&cfg);
	unsetenv("KEEL_CA");
	write_file(f, "{\"ca\": 5}");
	struct kerr err = KERR_INIT;
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"ca\" must be a string"));
	kerr_clear(&err);
	write_file(f, "{}");
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, NULL), 0);
	assert_null(cfg.ca);
	assert_null(cfg.ca_from);
	client_config_clear(&cfg);
}

static void test_bad_files(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct client_config cfg = {0};
	_cleanup_free_ char *missing = xasprintf("%s/nope", tmpdir);
	setenv("KEEL_CONFIG", missing, 1);
	assert_int_equal(client_config_resolve(NULL, NULL, NULL, NULL, &cfg, &err), -ENOENT);
	assert_non_null(strstr(err.msg, missing));
	assert_non_null(strstr(err.msg, "KEEL_CONFIG"));
	assert_null(cfg.server); /* untouched */
	kerr_clear(&err);

	_cleanup_free_ char *bad = xasprintf("%s/bad", tmpdir);
	write_file(bad, "{\"server\": ");
	assert_int_equal(client_config_resolve(NULL, NULL, bad, NULL, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, bad));
	kerr_clear(&err);

	write_file(bad, "[1,2]");
	assert_int_equal(client_config_resolve(NULL, NULL, bad, NULL, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "JSON object"));
	kerr_clear(&err);

	write_file(bad, "{\"token\": 42}");
	assert_int_equal(client_config_resolve(NULL, NULL, bad, NULL, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"token\" must be a string"));
	kerr_clear(&err);
}

static void test_paths(void **state)
{
	(void)state;
	const struct api_kind *task = api_kind_by_kind("Task");
	const struct api_kind *node = api_kind_by_kind("Node");
	assert_non_null(task);
	assert_non_null(node);
	_cleanup_free_ char *p1 = client_path(task, "default", "web", NULL);
	assert_string_equal(p1, "/apis/keel/v1/namespaces/default/tasks/web");
	_cleanup_free_ char *p2 = client_path(task, NULL, NULL, NULL);
	assert_string_equal(p2, "/apis/keel/v1/tasks");
	_cleanup_free_ char *p3 = client_path(task, "prod", "web", "status");
	assert_string_equal(p3, "/apis/keel/v1/namespaces/prod/tasks/web/status");
	_cleanup_free_ char *p4 = client_path(node, "ignored", "n1", "status");
	assert_string_equal(p4, "/apis/keel/v1/nodes/n1/status");
	_cleanup_free_ char *p5 = client_path(task, "default", "a b/c", NULL);
	assert_string_equal(p5, "/apis/keel/v1/namespaces/default/tasks/a%20b%2Fc");
}

static void test_query(void **state)
{
	(void)state;
	_cleanup_free_ char *q0 = client_query_encode(NULL);
	assert_string_equal(q0, "");
	struct client_query q = {.label_selector = "app=web,tier in (a,b)",
	                         .field_selector = "status.phase=Running",
	                         .limit = 50,
	                         .continue_token = "abc",
	                         .dry_run = true,
	                         .field_manager = "me",
	                         .resource_version = "42",
	                         .watch = true,
	                         .timeout_seconds = 5,
	                         .propagation = "Orphan"};
	_cleanup_free_ char *s = client_query_encode(&q);
	assert_string_equal(s, "?watch=1&labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29"
	                       "&fieldSelector=status.phase%3DRunning&limit=50&continue=abc"
	                       "&resourceVersion=42&timeoutSeconds=5&dryRun=All&fieldManager=me"
	                       "&propagationPolicy=Orphan");
	struct client_query empty = {0};
	_cleanup_free_ char *e = client_query_encode(&empty);
	assert_string_equal(e, "");
}

static void test_new_rejects_bad_url(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct client *c = NULL;
	struct client_opts o = {.server = "127.0.0.1:7700"};
	assert_int_equal(client_new(&o, &c, &err), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(err.msg, "http://"));
	kerr_clear(&err);
	o.server = "http://127.0.0.1:7700/";
	assert_int_equal(client_new(&o, &c, &err), 0);
	assert_string_equal(client_server(c), "http://127.0.0.1:7700");
	client_free(c);
	assert_string_equal(client_apply_result_name(CLIENT_APPLY_UNCHANGED), "unchanged");
}

/* A server list: blanks around entries and trailing '/' go; the order
 * stays; every bad entry is named. */
static void test_server_list_parse(void **state)
{
	(void)state;
	char **v = NULL;
	size_t n = 0;
	assert_int_equal(
	    client_servers_parse(" http://a:1/ ,\thttps://b:2,http://c:3", &v, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "http://a:1");
	assert_string_equal(v[1], "https://b:2");
	assert_string_equal(v[2], "http://c:3");
	assert_null(v[3]);
	client_servers_free(v);
	static const struct {
		const char *list, *msg;
	} bad[] = {
	    {"", "empty server URL"},
	    {"http://a:1,,http://b:2", "entry 2 is empty"},
	    {"http://a:1, ", "entry 2 is empty"},
	    {"http://a:1,b:2", "\"b:2\" (entry 2 of the list): must start with http://"},
	    {"ftp://a", "invalid server URL \"ftp://a\": must start with http://"},
	    {"http://a:1,https://", "\"https://\" (entry 2 of the list): no host"},
	    {"http://a:1,http://b:2,http://a:1/", "http://a:1 is listed twice (entries 1 and 3)"},
	    {"http://1,http://2,http://3,http://4,http://5,http://6,http://7,http://8,http://9,"
	     "http://10,http://11,http://12,http://13,http://14,http://15,http://16,http://17",
	     "17 entries; at most 16"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct kerr err = KERR_INIT;
		v = NULL;
		n = 0;
		if (client_servers_parse(bad[i].list, &v, &n, &err) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i].list);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("\"%s\": got \"%s\", want \"%s\"", bad[i].list, err.msg,
			         bad[i].msg);
		assert_null(v); /* untouched */
		assert_int_equal(n, 0);
		kerr_clear(&err);
	}
}

/* The list from each source, normalised; a bad one names its source; the
 * config file's "servers" array; the flag > env > file order as for one. */
static void test_server_list_sources(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct client_config cfg = {0};
	_cleanup_free_ char *f = xasprintf("%s/cfg", tmpdir);
	write_file(f, "{\"servers\": [\"http://f1:1/\", \"http://f2:2\"]}");
	assert_int_equal(client_config_resolve(NULL, NULL, f, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://f1:1,http://f2:2");
	assert_string_equal(cfg.server_from, "config");
	client_config_clear(&cfg);
	write_file(f, "{\"server\": \"http://f1:1, http://f2:2\"}");
	assert_int_equal(client_config_resolve(NULL, NULL, f, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://f1:1,http://f2:2");
	client_config_clear(&cfg);
	setenv("KEEL_SERVER", "http://e1:1 ,http://e2:2", 1);
	assert_int_equal(client_config_resolve(NULL, NULL, f, NULL, &cfg, NULL), 0);
	assert_string_equal(cfg.server, "http://e1:1,http://e2:2");
	assert_string_equal(cfg.server_from, "env");
	client_config_clear(&cfg);
	assert_int_equal(client_config_resolve("http://x:1,http://y:2", NULL, f, NULL, &cfg, NULL),
	                 0);
	assert_string_equal(cfg.server, "http://x:1,http://y:2");
	assert_string_equal(cfg.server_from, "flag");
	client_config_clear(&cfg);

	assert_int_equal(client_config_resolve("http://x:1,y:2", NULL, f, NULL, &cfg, &err),
	                 -EINVAL);
	assert_non_null(strstr(err.msg, "--server: invalid server URL \"y:2\" (entry 2"));
	assert_null(cfg.server);
	kerr_clear(&err);
	setenv("KEEL_SERVER", "http://e1:1,http://e1:1", 1);
	assert_int_equal(client_config_resolve(NULL, NULL, f, NULL, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "KEEL_SERVER: "));
	assert_non_null(strstr(err.msg, "listed twice"));
	kerr_clear(&err);
	unsetenv("KEEL_SERVER");
	write_file(f, "{\"server\": \"http://f1:1,,http://f2\"}");
	assert_int_equal(client_config_resolve(NULL, NULL, f, NULL, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, f));
	assert_non_null(strstr(err.msg, "entry 2 is empty"));
	kerr_clear(&err);

	static const struct {
		const char *text, *msg;
	} bad[] = {
	    {"{\"server\": \"http://a\", \"servers\": [\"http://b\"]}", "not both"},
	    {"{\"servers\": \"http://a\"}", "non-empty array"},
	    {"{\"servers\": []}", "non-empty array"},
	    {"{\"servers\": [\"http://a\", 7]}", "\"servers\"[1] must be one URL"},
	    {"{\"servers\": [\"http://a,http://b\"]}", "\"servers\"[0] must be one URL"},
	    {"{\"servers\": [\"http://a\", \"nohttp\"]}", "\"nohttp\" (entry 2 of the list)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		write_file(f, bad[i].text);
		assert_int_equal(client_config_resolve(NULL, NULL, f, NULL, &cfg, &err), -EINVAL);
		if (!strstr(err.msg, bad[i].msg) || !strstr(err.msg, f))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].text, err.msg, bad[i].msg);
		kerr_clear(&err);
	}
}

/* A client built from a list reports it; the current server is the first. */
static void test_new_with_list(void **state)
{
	(void)state;
	struct client *c = NULL;
	struct client_opts o = {.server = "http://a:1/, http://b:2"};
	assert_int_equal(client_new(&o, &c, NULL), 0);
	assert_string_equal(client_server(c), "http://a:1");
	assert_string_equal(client_servers(c), "http://a:1,http://b:2");
	assert_int_equal(client_server_count(c), 2);
	client_free(c);
	struct kerr err = KERR_INIT;
	o.server = "http://a:1,ftp://b";
	assert_int_equal(client_new(&o, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"ftp://b\" (entry 2 of the list)"));
	kerr_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_data_dir_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_query),
	    cmocka_unit_test(test_new_rejects_bad_url),
	    cmocka_unit_test(test_server_list_parse),
	    cmocka_unit_test_setup_teardown(test_server_list_sources, setup, teardown),
	    cmocka_unit_test(test_new_with_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
