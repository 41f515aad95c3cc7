/* Unit tests for the pure parts of src/server: flags (durations, sizes,
 * listen addresses), token files, object transforms and metrics text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/kind.h"
#include "api/meta.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/objects.h"
#include "server/opts.h"
#include "server/verbs.h"
#include "store/store.h"

static void test_durations(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	int64_t ms = -1;
	assert_int_equal(srv_parse_duration_ms("15s", &ms, &err), 0);
	assert_int_equal(ms, 15000);
	assert_int_equal(srv_parse_duration_ms("500ms", &ms, &err), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(srv_parse_duration_ms("1.5s", &ms, &err), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(srv_parse_duration_ms("2m", &ms, &err), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(srv_parse_duration_ms("3", &ms, &err), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(srv_parse_duration_ms("1x", &ms, &err), -EINVAL);
	assert_string_equal(err.msg, "invalid duration \"1x\" (examples: 15s, 500ms, 2m)");
	assert_int_equal(srv_parse_duration_ms("-1s", &ms, &err), -EINVAL);
	assert_int_equal(srv_parse_duration_ms("", &ms, &err), -EINVAL);
	assert_int_equal(srv_parse_duration_ms("s", &ms, &err), -EINVAL);
	assert_int_equal(ms, 3000);
	kerr_clear(&err);
}

static void test_sizes(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	size_t b = 0;
	assert_int_equal(srv_parse_size("64Mi", &b, &err), 0);
	assert_int_equal(b, 64u << 20);
	assert_int_equal(srv_parse_size("8Gi", &b, &err), 0);
	assert_true(b == (size_t)8 << 30);
	assert_int_equal(srv_parse_size("1G", &b, &err), 0);
	assert_int_equal(b, 1000000000);
	assert_int_equal(srv_parse_size("4096", &b, &err), 0);
	assert_int_equal(b, 4096);
	assert_int_equal(srv_parse_size("1.5Ki", &b, &err), 0);
	assert_int_equal(b, 1536);
	assert_int_equal(srv_parse_size("lots", &b, &err), -EINVAL);
	assert_int_equal(srv_parse_size("1Qi", &b, &err), -EINVAL);
	assert_int_equal(srv_parse_size("99999999Ti", &b, &err), -ERANGE);
	assert_int_equal(b, 1536);
	kerr_clear(&err);
}

static void test_listen(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	char *h = NULL;
	unsigned p = 1;
	assert_int_equal(srv_parse_listen("0.0.0.0:8080", &h, &p, &err), 0);
	assert_string_equal(h, "0.0.0.0");
	assert_int_equal(p, 8080);
	free(h);
	assert_int_equal(srv_parse_listen("[::1]:0", &h, &p, &err), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(p, 0);
	free(h);
	assert_int_equal(srv_parse_listen(":7700", &h, &p, &err), 0);
	assert_string_equal(h, "127.0.0.1");
	free(h);
	h = NULL;
	assert_int_equal(srv_parse_listen("localhost", &h, &p, &err), -EINVAL);
	assert_int_equal(srv_parse_listen("a:70000", &h, &p, &err), -EINVAL);
	assert_int_equal(srv_parse_listen("a:", &h, &p, &err), -EINVAL);
	assert_int_equal(srv_parse_listen("a:1x", &h, &p, &err), -EINVAL);
	assert_null(h);
	kerr_clear(&err);
}

static void test_flags(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct srv_opts o;
	srv_opts_init(&o);
	char *argv[] = {
	    "server", "--data-dir",          "/tmp/x", "--listen=127.0.0.1:0",   "--threads",
	    "8",      "--bookmark-interval", "1s",     "--store-max-bytes=64Mi", "--history",
	    "5",      "--log-format",        "json",   "--max-watchers",         "3",
	    NULL};
	assert_int_equal(srv_opts_parse(&o, 15, argv, &err), 0);
	assert_string_equal(o.data_dir, "/tmp/x");
	assert_int_equal(o.listen_port, 0);
	assert_int_equal(o.threads, 8);
	assert_int_equal(o.bookmark_ms, 1000);
	assert_int_equal(o.store_max_bytes, 64u << 20);
	assert_int_equal(o.history, 5);
	assert_true(o.log_json);
	assert_int_equal(o.max_watchers, 3);
	char *size[] = {"server", "--store-size", "2Gi"}; /* --store-max-bytes is its alias */
	assert_int_equal(srv_opts_parse(&o, 3, size, &err), 0);
	assert_int_equal(o.store_max_bytes, (size_t)2 << 30);
	char *small[] = {"server", "--store-size", "100Ki"};
	assert_int_equal(srv_opts_parse(&o, 3, small, &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "--store-size: store size \"100Ki\" is too small (at least 256Ki)");
	kerr_clear(&err);
	char *bad1[] = {"server", "--bogus", "1"};
	assert_int_equal(srv_opts_parse(&o, 3, bad1, &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "unknown flag \"--bogus\" for \"keel server\" (see keel server --help)");
	kerr_clear(&err);
	char *typo[] = {"server", "--data-dri", "/tmp/x"};
	assert_int_equal(srv_opts_parse(&o, 3, typo, &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "unknown flag \"--data-dri\" for \"keel server\"; did you mean \"--data-dir\"?");
	kerr_clear(&err);
	char *bad2[] = {"server", "--threads"};
	assert_int_equal(srv_opts_parse(&o, 2, bad2, &err), -EINVAL);
	assert_string_equal(err.msg, "flag --threads needs a value");
	char *bad3[] = {"server", "--threads", "0"};
	assert_int_equal(srv_opts_parse(&o, 3, bad3, &err), -EINVAL);
	assert_string_equal(err.msg, "--threads: invalid number \"0\" (want 1..256)");
	char *bad4[] = {"server", "--log-level", "loud"};
	assert_int_equal(srv_opts_parse(&o, 3, bad4, &err), -EINVAL);
	char *bad5[] = {"server", "extra"};
	assert_int_equal(srv_opts_parse(&o, 2, bad5, &err), -EINVAL);
	char *help[] = {"server", "--help"};
	assert_int_equal(srv_opts_parse(&o, 2, help, &err), 0);
	assert_true(o.help);
	assert_non_null(strstr(srv_opts_usage(), "Example"));
	srv_opts_free(&o);
	kerr_clear(&err);
}

/* One --store/--etcd-* command line: 0 and o filled, or -EINVAL and err. */
static int parse_store(struct srv_opts *o, struct kerr *err, int argc, char **argv)
{
	srv_opts_free(o);
	srv_opts_init(o);
	kerr_clear(err);
	return srv_opts_parse(o, argc, argv, err);
}

static void test_store_flags(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct srv_opts o;
	srv_opts_init(&o);
	char *def[] = {"server"};
	assert_int_equal(parse_store(&o, &err, 1, def), 0);
	assert_int_equal(o.store_backend, SRV_STORE_LMDB);
	assert_null(o.etcd_endpoints);
	assert_string_equal(o.etcd_prefix, "/keel/");
	char *ok[] = {"server",
	              "--store",
	              "etcd",
	              "--etcd-endpoints",
	              "http://127.0.0.1:2379/,http://[::1]:2380,http://etcd-2.local:4001",
	              "--etcd-prefix=/prod",
	              "--etcd-wait",
	              "500ms"};
	assert_int_equal(parse_store(&o, &err, 8, ok), 0);
	assert_int_equal(o.store_backend, SRV_STORE_ETCD);
	assert_string_equal(o.etcd_endpoints,
	                    "http://127.0.0.1:2379,http://[::1]:2380,http://etcd-2.local:4001");
	assert_string_equal(o.etcd_prefix, "/prod/");
	assert_int_equal(o.etcd_wait_ms, 500);
	static const struct {
		const char *eps, *msg;
	} bad[] = {
	    {"127.0.0.1:2379", "entry 1 \"127.0.0.1:2379\": want http://HOST:PORT"},
	    {"http://a:1,,http://b:2", "entry 2 is empty (want http://HOST:PORT[,...])"},
	    {"http://a:1,http://b", "entry 2 \"http://b\": no port (want http://HOST:PORT)"},
	    {"http://a:0", "entry 1 \"http://a:0\": bad port (want 1-65535, no path)"},
	    {"http://a:2379/v3", "entry 1 \"http://a:2379/v3\": bad port (want 1-65535, no path)"},
	    {"http://us er:1",
	     "entry 1 \"http://us er:1\": bad host (want http://HOST:PORT, no path)"},
	    {"https://a:2379", "entry 1 \"https://a:2379\": https is not supported yet (no client "
	                       "TLS to etcd): use http://"},
	    {"", "no endpoint (want http://HOST:PORT[,...])"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = {"server", "--store", "etcd", "--etcd-endpoints",
		                (char *)bad[i].eps};
		assert_int_equal(parse_store(&o, &err, 5, argv), -EINVAL);
		_cleanup_free_ char *want = xasprintf("--etcd-endpoints: %s", bad[i].msg);
		assert_string_equal(err.msg, want);
	}
	char *noeps[] = {"server", "--store", "etcd"};
	assert_int_equal(parse_store(&o, &err, 3, noeps), -EINVAL);
	assert_string_equal(err.msg, "--store etcd needs --etcd-endpoints http://HOST:PORT[,...]");
	char *lmdb[] = {"server", "--etcd-endpoints=http://a:1"};
	assert_int_equal(parse_store(&o, &err, 2, lmdb), -EINVAL);
	assert_string_equal(err.msg, "--etcd-endpoints needs --store etcd (the store is lmdb)");
	char *which[] = {"server", "--store", "mysql"};
	assert_int_equal(parse_store(&o, &err, 3, which), -EINVAL);
	assert_string_equal(err.msg, "--store: invalid store \"mysql\" (lmdb or etcd)");
	char *prefix[] = {"server",     "--store",       "etcd", "--etcd-endpoints",
	                  "http://a:1", "--etcd-prefix", "keel"};
	assert_int_equal(parse_store(&o, &err, 7, prefix), -EINVAL);
	assert_string_equal(err.msg,
	                    "--etcd-prefix: prefix \"keel\" must start with / (e.g. /keel/)");
	srv_opts_free(&o);
	kerr_clear(&err);
}

static void test_limit_flags(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct srv_opts o;
	srv_opts_init(&o);
	/* the defaults --help shows */
	assert_int_equal(o.max_body, 3u << 20);
	assert_int_equal(o.max_object, 3u << 19);
	assert_int_equal(o.max_watchers_per_client, 2000);
	assert_int_equal(o.max_connections, 0); /* = max_watchers + 1024 at startup */
	assert_int_equal(o.max_header_bytes, 64u << 10);
	assert_int_equal(o.request_timeout_ms, 30000);
	assert_int_equal(o.idle_timeout_ms, 300000);
	assert_non_null(strstr(srv_opts_usage(), "--max-watchers-per-client N"));
	assert_non_null(strstr(srv_opts_usage(), "--request-timeout DUR      time to receive a "
	                                         "connection's first request\n"));
	assert_non_null(strstr(srv_opts_usage(), "--idle-timeout DUR         close a kept-alive "
	                                         "connection"));
	char *argv[] = {"server",
	                "--max-body=10Ki",
	                "--max-object",
	                "2Ki",
	                "--max-watchers-per-client=7",
	                "--max-connections=9",
	                "--max-header-bytes=4Ki",
	                "--request-timeout=1500ms",
	                "--idle-timeout=2m",
	                NULL};
	assert_int_equal(srv_opts_parse(&o, 9, argv, &err), 0);
	assert_int_equal(o.max_body, 10240);
	assert_int_equal(o.max_object, 2048);
	assert_int_equal(o.max_watchers_per_client, 7);
	assert_int_equal(o.max_connections, 9);
	assert_int_equal(o.max_header_bytes, 4096);
	assert_int_equal(o.request_timeout_ms, 1500);
	assert_int_equal(o.idle_timeout_ms, 120000);
	char *small[] = {"server", "--max-body", "10"};
	assert_int_equal(srv_opts_parse(&o, 3, small, &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "--max-body: size \"10\" is out of range (1024 to 1073741824 bytes)");
	kerr_clear(&err);
	char *zero[] = {"server", "--max-connections", "0"};
	assert_int_equal(srv_opts_parse(&o, 3, zero, &err), -EINVAL);
	assert_string_equal(err.msg, "--max-connections: invalid number \"0\" (want 1..1000000)");
	kerr_clear(&err);
	char *quick[] = {"server", "--request-timeout", "10ms"};
	assert_int_equal(srv_opts_parse(&o, 3, quick, &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "--request-timeout: duration \"10ms\" is too short (at least 100ms)");
	kerr_clear(&err);
	char *frac[] = {"server", "--idle-timeout", "1500ms"};
	assert_int_equal(srv_opts_parse(&o, 3, frac, &err), -EINVAL);
	assert_string_equal(err.msg, "--idle-timeout: duration \"1500ms\" must be whole seconds");
	kerr_clear(&err);
	srv_opts_free(&o);
}

static void test_format_values(void **state)
{
	(void)state;
	static const struct {
		size_t bytes;
		const char *text;
	} sizes[] = {{0, "0"},
	             {1000, "1000"},
	             {1024, "1Ki"},
	             {3u << 20, "3Mi"},
	             {3u << 19, "1536Ki"},
	             {1025, "1025"},
	             {(size_t)1 << 30, "1Gi"},
	             {(size_t)5 << 40, "5Ti"}};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		char *s = srv_format_size(sizes[i].bytes);
		assert_string_equal(s, sizes[i].text);
		free(s);
	}
	char *d = srv_format_duration(30000);
	assert_string_equal(d, "30s");
	free(d);
	d = srv_format_duration(1500);
	assert_string_equal(d, "1500ms");
	free(d);
}

static void test_limit_counters(void **state)
{
	(void)state;
	struct srv_metrics *m = srv_metrics_new();
	srv_metrics_limit(m, SRV_LIMIT_BODY);
	srv_metrics_limit(m, SRV_LIMIT_BODY);
	srv_metrics_limit(m, SRV_LIMIT_WATCHES_PER_CLIENT);
	srv_metrics_limit(m, SRV_LIMIT_NONE);  /* ignored */
	srv_metrics_limit(m, SRV_LIMIT_COUNT); /* ignored */
	srv_metrics_limit(NULL, SRV_LIMIT_BODY);
	assert_int_equal(srv_metrics_limit_count(m, SRV_LIMIT_BODY), 2);
	assert_string_equal(srv_limit_name(SRV_LIMIT_REQUEST_TIME), "request_time");
	struct sbuf b = SBUF_INIT;
	srv_metrics_render(m, NULL, 0, &b);
	assert_non_null(strstr(b.data, "# TYPE keel_limit_rejections_total counter\n"));
	assert_non_null(strstr(b.data, "keel_limit_rejections_total{limit=\"body\"} 2\n"));
	assert_non_null(
	    strstr(b.data, "keel_limit_rejections_total{limit=\"watches_per_client\"} 1\n"));
	/* every limit has its series, zeros too */
	for (int l = SRV_LIMIT_NONE + 1; l < SRV_LIMIT_COUNT; l++) {
		char line[96];
		snprintf(line, sizeof line, "keel_limit_rejections_total{limit=\"%s\"} ",
		         srv_limit_name((enum srv_limit)l));
		assert_non_null(strstr(b.data, line));
	}
	assert_null(strstr(b.data, "limit=\"\""));
	sbuf_free(&b);
	srv_metrics_free(m);
}

static void test_default_data_dir(void **state)
{
	(void)state;
	setenv("KEEL_DATA_DIR", "/srv/keel", 1);
	char *d = srv_default_data_dir();
	assert_string_equal(d, "/srv/keel");
	free(d);
	unsetenv("KEEL_DATA_DIR");
	d = srv_default_data_dir();
	if (geteuid() == 0)
		assert_string_equal(d, "/var/lib/keel");
	else
		assert_non_null(strstr(d, "/keel"));
	free(d);
}

static void test_token_file(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct srv_auth *a = NULL;
	assert_int_equal(
	    srv_auth_parse("t", "# comment\n\n s3cret , alice \nnodetok,n1,node\r\n", &a, &err), 0);
	assert_int_equal(srv_auth_count(a), 2);
	assert_string_equal(srv_auth_admin(a), "s3cret");
	struct srv_ident id = {0};
	assert_true(srv_auth_check(a, "Bearer s3cret", &id));
	assert_string_equal(id.name, "alice");
	assert_string_equal(id.role, "admin");
	srv_ident_clear(&id);
	assert_true(srv_auth_check(a, "bearer nodetok", &id));
	assert_string_equal(id.role, "node");
	srv_ident_clear(&id);
	assert_false(srv_auth_check(a, "Bearer s3cre", &id));
	assert_false(srv_auth_check(a, "Bearer s3crett", &id));
	assert_false(srv_auth_check(a, "Basic s3cret", &id));
	assert_false(srv_auth_check(a, "Bearer ", &id));
	assert_false(srv_auth_check(a, NULL, &id));
	assert_null(id.name);
	srv_auth_free(a);
	a = NULL;
	assert_int_equal(srv_auth_parse("t", "tok,alice,root\n", &a, &err), -EINVAL);
	assert_string_equal(err.msg, "t:1: unknown role \"root\" (admin, viewer or node)");
	assert_int_equal(srv_auth_parse("t", "a,x\na,y\n", &a, &err), -EINVAL);
	assert_string_equal(err.msg, "t:2: duplicate token (also given for x)");
	assert_int_equal(srv_auth_parse("t", "justtoken\n", &a, &err), -EINVAL);
	assert_int_equal(srv_auth_parse("t", ",name\n", &a, &err), -EINVAL);
	assert_int_equal(srv_auth_parse("t", "a,b,c,d\n", &a, &err), -EINVAL);
	assert_int_equal(srv_auth_parse("t", "# only comments\n", &a, &err), -EINVAL);
	assert_null(a);
	kerr_clear(&err);
}

/* What a fresh-eyes test found in token files: a BOM, a non-ASCII token,
 * names that would break a log line, DATA/tokens' own format, roleless
 * lines and loose modes going unmentioned. */
static void test_token_file_checks(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct srv_auth *a = NULL;
	assert_int_equal(srv_auth_parse("t", "\xEF\xBB\xBFtok,alice,viewer\n", &a, &err), 0);
	struct srv_ident id = {0};
	assert_true(srv_auth_check(a, "Bearer tok", &id));
	assert_string_equal(id.name, "alice");
	srv_ident_clear(&id);
	assert_int_equal(srv_auth_nwarnings(a), 0);
	srv_auth_free(a);
	a = NULL;
	assert_int_equal(srv_auth_parse("t", "ok,b,node\nt\xC3\xA9,alice\n", &a, &err), -EINVAL);
	assert_string_equal(err.msg, "t:2: non-ASCII character in the token");
	assert_int_equal(srv_auth_parse("t", "tok,al\x1bice\n", &a, &err), -EINVAL);
	assert_string_equal(err.msg, "t:1: the name holds a control character (a name may not "
	                             "hold control characters, '\"' or '\\')");
	assert_int_equal(srv_auth_parse("t", "tok,al\"ice\n", &a, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t:1: the name holds a '\"'"));
	assert_int_equal(srv_auth_parse("t", "tok,a\\b\n", &a, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "t:1: the name holds a '\\'"));
	assert_int_equal(srv_auth_parse("t", "tok,a\302\205b\n", &a, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "a control character"));
	assert_int_equal(srv_auth_parse("t", "tok,a\377b\n", &a, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not UTF-8"));
	/* keel's own identities (the in-process controllers) are not for token files */
	assert_int_equal(srv_auth_parse("t", "ok,b\ntok,system:controllers,admin\n", &a, &err),
	                 -EINVAL);
	assert_string_equal(err.msg, "t:2: the name \"system:controllers\" is reserved (names "
	                             "starting with \"system:\" are keel's own)");
	assert_null(a);
	/* what Kubernetes token files allow: spaces inside, UTF-8 */
	assert_int_equal(srv_auth_parse("t", "tok,Jane Do\xC3\xA9,viewer\nt2,bob\n", &a, &err), 0);
	assert_true(srv_auth_check(a, "Bearer tok", &id));
	assert_string_equal(id.name, "Jane Do\xC3\xA9");
	srv_ident_clear(&id);
	assert_int_equal(srv_auth_nwarnings(a), 1);
	assert_string_equal(srv_auth_warning(a, 0), "t:2: no role for \"bob\": it gets admin "
	                                            "(give ROLE admin, viewer or node to choose)");
	assert_null(srv_auth_warning(a, 1));
	srv_auth_free(a);
	a = NULL;

	char dir[] = "/tmp/keel-test-auth-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/tokens.csv", dir);
	assert_int_equal(file_write_atomic(path, "tok,alice,admin\n", 16, 0644, &err), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(srv_auth_load(path, &a, &err), 0);
	assert_int_equal(srv_auth_nwarnings(a), 1);
	char *want = xasprintf("token file %s is accessible by others than its owner (mode 0644): "
	                       "chmod 600 it",
	                       path);
	assert_string_equal(srv_auth_warning(a, 0), want);
	free(want);
	srv_auth_free(a);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(srv_auth_load(path, &a, &err), 0);
	assert_int_equal(srv_auth_nwarnings(a), 0);
	srv_auth_free(a);
	a = NULL;
	unlink(path);
	free(path);

	/* DATA/tokens has a format of its own */
	path = xasprintf("%s/tokens", dir);
	assert_int_equal(file_write_atomic(path, "justahash\n", 10, 0600, &err), 0);
	assert_int_equal(srv_auth_admin_token(dir, &a, &err), -EINVAL);
	char *want2 =
	    xasprintf("%s:1: want HASH,NAME,ROLE (DATA/tokens is written by the server)", path);
	assert_string_equal(err.msg, want2);
	free(want2);
	assert_null(a);
	unlink(path);
	free(path);
	path = xasprintf("%s/admin.token", dir);
	unlink(path);
	free(path);
	rmdir(dir);
	kerr_clear(&err);
}

static void test_admin_token_file(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	char dir[] = "/tmp/keel-test-auth-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct srv_auth *a = NULL, *b = NULL;
	assert_int_equal(srv_auth_admin_token(dir, &a, &err), 0);
	assert_int_equal(strlen(srv_auth_admin(a)), 64);
	assert_int_equal(srv_auth_admin_token(dir, &b, &err), 0);
	assert_string_equal(srv_auth_admin(a), srv_auth_admin(b)); /* reused */
	char *path = xasprintf("%s/admin.token", dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	unlink(path);
	free(path);
	rmdir(dir);
	srv_auth_free(a);
	srv_auth_free(b);
	kerr_clear(&err);
}

static json_t *parse(const char *s)
{
	json_error_t je;
	json_t *v = json_loads(s, 0, &je);
	if (!v)
		fail_msg("%s: %s", s, je.text);
	return v;
}

static void test_identity(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	const struct api_kind *task = api_kind_by_plural("tasks"),
	                      *node = api_kind_by_plural("nodes");
	json_t *o = parse("{\"metadata\":{}}");
	assert_int_equal(srv_obj_check_identity(task, o, "default", "web", &err), 0);
	assert_string_equal(api_obj_kind(o), "Task");
	assert_string_equal(api_obj_name(o), "web");
	assert_string_equal(api_obj_namespace(o), "default");
	json_decref(o);
	o = parse("{\"kind\":\"Node\",\"metadata\":{\"name\":\"web\"}}");
	assert_int_equal(srv_obj_check_identity(task, o, "default", NULL, &err), -EBADMSG);
	assert_string_equal(err.msg, "kind \"Node\" does not match the URL (want \"Task\")");
	json_decref(o);
	o = parse("{\"apiVersion\":\"apps/v1\"}");
	assert_int_equal(srv_obj_check_identity(task, o, "default", NULL, &err), -EBADMSG);
	json_decref(o);
	o = parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"}}");
	assert_int_equal(srv_obj_check_identity(task, o, "default", NULL, &err), -EBADMSG);
	assert_int_equal(srv_obj_check_identity(task, o, "x", "b", &err), -EBADMSG);
	json_decref(o);
	o = parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"}}");
	assert_int_equal(srv_obj_check_identity(node, o, NULL, "a", &err), 0);
	assert_null(api_obj_namespace(o)); /* cluster-scoped: dropped */
	json_decref(o);
	o = parse("{\"metadata\":[]}");
	assert_int_equal(srv_obj_check_identity(task, o, "default", NULL, &err), -EBADMSG);
	json_decref(o);
	kerr_clear(&err);
}

/* A YAML apply body may spell a NUL ("\0", "\x00", "\u0000"), which JSON
 * bodies cannot: the server must refuse it as it refuses one in JSON, or it
 * stores an object the store cannot read back (every list of the kind then
 * fails with 500 "corrupt data"). Found by fuzz_json. */
static void test_apply_body_nul(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	json_t *o = NULL;
	const char *ok = "apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: web\nspec:\n"
	                 "  image: busybox\n";
	assert_int_equal(srv_apply_body_parse(ok, strlen(ok), true, &o, &err), 0);
	assert_string_equal(json_string_value(api_obj_get_path(o, "spec.image")), "busybox");
	json_decref(o);
	o = NULL;
	const char *bad = "apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: web\nspec:\n"
	                  "  image: busybox\n  args: [\"a\", \"x\\0y\"]\n";
	assert_int_equal(srv_apply_body_parse(bad, strlen(bad), true, &o, &err), -EBADMSG);
	assert_null(o);
	assert_string_equal(err.msg, "request body:7:15: spec.args[1]: a string must not contain "
	                             "a NUL character");
	const char *key = "apiVersion: keel/v1\nkind: Task\nmetadata:\n  name: web\n  labels:\n"
	                  "    \"a.b/c\": \"\\u0000\"\n";
	assert_int_equal(srv_apply_body_parse(key, strlen(key), true, &o, &err), -EBADMSG);
	assert_null(o);
	assert_string_equal(err.msg, "request body:6:5: metadata.labels[a.b/c]: a string must not "
	                             "contain a NUL character");
	const char *json = "{\"kind\":\"Task\",\"spec\":{\"image\":\"a\\u0000b\"}}";
	assert_int_equal(srv_apply_body_parse(json, strlen(json), true, &o, &err), -EBADMSG);
	assert_null(o);
	kerr_clear(&err);
}

static void test_server_fields_and_generation(void **state)
{
	(void)state;
	const struct api_kind *task = api_kind_by_plural("tasks");
	json_t *live =
	    parse("{\"metadata\":{\"name\":\"w\",\"uid\":\"u1\",\"resourceVersion\":\"7\","
	          "\"generation\":3,\"creationTimestamp\":\"2026-01-01T00:00:00Z\","
	          "\"managedFields\":[1]},\"spec\":{\"image\":\"a\"},\"status\":{\"phase\":"
	          "\"Running\"}}");
	json_t *next =
	    parse("{\"metadata\":{\"name\":\"w\",\"uid\":\"forged\",\"labels\":{\"x\":\"1\"}},"
	          "\"spec\":{\"image\":\"a\"},\"status\":{\"phase\":\"Failed\"}}");
	srv_obj_strip_server_fields(next);
	assert_null(api_obj_uid(next));
	srv_obj_carry_from_live(task, next, live, true);
	assert_string_equal(api_obj_uid(next), "u1");
	assert_int_equal(api_obj_rv(next), 7);
	assert_string_equal(json_string_value(api_obj_get_path(next, "status.phase")), "Running");
	assert_non_null(json_object_get(api_obj_meta(next), "managedFields"));
	srv_obj_set_generation(next, live);
	assert_int_equal(api_obj_generation(next), 3); /* labels only */
	json_object_set_new(json_object_get(next, "spec"), "image", json_string("b"));
	srv_obj_set_generation(next, live);
	assert_int_equal(api_obj_generation(next), 4);
	json_decref(next);

	next = json_object();
	srv_obj_init_created(next);
	assert_int_equal(api_obj_generation(next), 1);
	assert_int_equal(strlen(api_obj_uid(next)), 36);
	assert_true(time_parse_rfc3339(json_string_value(
	                api_obj_get_path(next, "metadata.creationTimestamp"))) > 0);
	json_decref(next);
	json_decref(live);
}

static void test_rv_size_finalized(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	uint64_t rv = 9;
	json_t *o = parse("{\"metadata\":{\"resourceVersion\":\"42\"}}");
	assert_int_equal(srv_obj_client_rv(o, &rv, &err), 0);
	assert_int_equal(rv, 42);
	json_decref(o);
	o = parse("{\"metadata\":{\"resourceVersion\":\"4x\"}}");
	assert_int_equal(srv_obj_client_rv(o, &rv, &err), -EBADMSG);
	json_decref(o);
	o = parse("{\"metadata\":{\"resourceVersion\":5}}");
	assert_int_equal(srv_obj_client_rv(o, &rv, &err), -EBADMSG);
	json_decref(o);
	o = parse("{\"metadata\":{}}");
	assert_int_equal(srv_obj_client_rv(o, &rv, &err), 0);
	assert_int_equal(rv, 0);
	assert_int_equal(srv_obj_check_size(o, 100, &err), 0);
	assert_int_equal(srv_obj_check_size(o, 5, &err), -E2BIG);
	json_decref(o);
	json_t *live = parse("{\"metadata\":{\"deletionTimestamp\":\"t\",\"finalizers\":[\"a\"]}}");
	json_t *n1 = parse("{\"metadata\":{\"finalizers\":[\"a\"]}}");
	json_t *n2 = parse("{\"metadata\":{\"finalizers\":[]}}");
	assert_false(srv_obj_finalized(live, n1));
	assert_true(srv_obj_finalized(live, n2));
	assert_false(srv_obj_finalized(n1, n2)); /* not being deleted */
	json_decref(live);
	json_decref(n1);
	json_decref(n2);
	kerr_clear(&err);
}

static void test_metrics_text(void **state)
{
	(void)state;
	struct srv_metrics *m = srv_metrics_new();
	srv_metrics_observe(m, SRV_GET, 200, 2000000, false);  /* 2 ms */
	srv_metrics_observe(m, SRV_GET, 200, 20000000, false); /* 20 ms */
	srv_metrics_observe(m, SRV_POST, 409, 1000, false);
	srv_metrics_observe(m, SRV_GET, 200, 30000000000, true); /* a watch: count only */
	struct store_stats st = {.revision = 12, .compacted = 3, .commits = 5, .writes = 11};
	struct sbuf b = SBUF_INIT;
	srv_metrics_render(m, &st, 7, &b);
	assert_non_null(
	    strstr(b.data, "keel_http_requests_total{method=\"GET\",code=\"200\"} 3\n"));
	assert_non_null(
	    strstr(b.data, "keel_http_requests_total{method=\"POST\",code=\"409\"} 1\n"));
	assert_non_null(strstr(
	    b.data, "keel_http_request_duration_seconds_bucket{method=\"GET\",le=\"0.001\"} 0\n"));
	assert_non_null(strstr(
	    b.data, "keel_http_request_duration_seconds_bucket{method=\"GET\",le=\"0.0025\"} 1\n"));
	assert_non_null(strstr(
	    b.data, "keel_http_request_duration_seconds_bucket{method=\"GET\",le=\"0.025\"} 2\n"));
	assert_non_null(strstr(
	    b.data, "keel_http_request_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 2\n"));
	assert_non_null(
	    strstr(b.data, "keel_http_request_duration_seconds_count{method=\"GET\"} 2\n"));
	assert_non_null(
	    strstr(b.data, "keel_http_request_duration_seconds_sum{method=\"GET\"} 0.022000000\n"));
	assert_non_null(strstr(b.data, "keel_store_revision 12\n"));
	assert_non_null(strstr(b.data, "keel_store_compacted_revision 3\n"));
	assert_non_null(strstr(b.data, "keel_store_commits_total 5\n"));
	assert_non_null(strstr(b.data, "keel_store_writes_total 11\n"));
	assert_non_null(strstr(b.data, "keel_watchers 7\n"));
	assert_non_null(strstr(b.data, "# TYPE keel_http_request_duration_seconds histogram\n"));
	sbuf_free(&b);
	srv_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_listen),
	    cmocka_unit_test(test_flags),
	    cmocka_unit_test(test_store_flags),
	    cmocka_unit_test(test_limit_flags),
	    cmocka_unit_test(test_format_values),
	    cmocka_unit_test(test_limit_counters),
	    cmocka_unit_test(test_default_data_dir),
	    cmocka_unit_test(test_token_file),
	    cmocka_unit_test(test_token_file_checks),
	    cmocka_unit_test(test_admin_token_file),
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_apply_body_nul),
	    cmocka_unit_test(test_server_fields_and_generation),
	    cmocka_unit_test(test_rv_size_finalized),
	    cmocka_unit_test(test_metrics_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
