/* Unit tests for src/server/router: URL paths to routes, allowed methods,
 * query parameters and continue tokens. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/util.h"
#include "server/router.h"

static struct srv_route parse_ok(const char *path)
{
	struct srv_route r = {0};
	struct kerr err = KERR_INIT;
	int rc = srv_route_parse(path, &r, &err);
	if (rc != 0)
		fail_msg("%s: %s", path, kerr_msg(&err));
	kerr_clear(&err);
	return r;
}

static char *parse_err(const char *path)
{
	struct srv_route r = {0};
	struct kerr err = KERR_INIT;
	assert_int_equal(srv_route_parse(path, &r, &err), -ENOENT);
	assert_int_equal(err.code, ENOENT);
	assert_null(r.kind);
	char *msg = xstrdup(kerr_msg(&err));
	kerr_clear(&err);
	return msg;
}

static void test_fixed_routes(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("/healthz").type, SRV_ROUTE_HEALTHZ);
	assert_int_equal(parse_ok("/readyz").type, SRV_ROUTE_READYZ);
	assert_int_equal(parse_ok("/version").type, SRV_ROUTE_VERSION);
	assert_int_equal(parse_ok("/metrics/").type, SRV_ROUTE_METRICS);
	assert_int_equal(parse_ok("/apis").type, SRV_ROUTE_APIS);
	assert_int_equal(parse_ok("/apis/keel").type, SRV_ROUTE_GROUP);
	assert_int_equal(parse_ok("/apis/keel/v1/").type, SRV_ROUTE_RESOURCES);
}

static void test_resource_routes(void **state)
{
	(void)state;
	struct srv_route r = parse_ok("/apis/keel/v1/namespaces/default/tasks");
	assert_int_equal(r.type, SRV_ROUTE_COLLECTION);
	assert_string_equal(r.kind->plural, "tasks");
	assert_string_equal(r.ns, "default");
	assert_null(r.name);
	srv_route_clear(&r);

	r = parse_ok("/apis/keel/v1/tasks");
	assert_int_equal(r.type, SRV_ROUTE_COLLECTION);
	assert_null(r.ns);
	srv_route_clear(&r);

	r = parse_ok("/apis/keel/v1/namespaces/prod/deployments/web/status");
	assert_int_equal(r.type, SRV_ROUTE_ITEM);
	assert_string_equal(r.kind->kind, "Deployment");
	assert_string_equal(r.ns, "prod");
	assert_string_equal(r.name, "web");
	assert_int_equal(r.sub, SRV_SUB_STATUS);
	srv_route_clear(&r);

	r = parse_ok("/apis/keel/v1/namespaces/default/tasks/web/binding");
	assert_int_equal(r.sub, SRV_SUB_BINDING);
	srv_route_clear(&r);

	r = parse_ok("/apis/keel/v1/nodes/n1/logkey");
	assert_int_equal(r.type, SRV_ROUTE_ITEM);
	assert_string_equal(r.name, "n1");
	assert_int_equal(r.sub, SRV_SUB_LOGKEY);
	assert_true(srv_route_allows(&r, SRV_GET));
	assert_false(srv_route_allows(&r, SRV_PUT));
	srv_route_clear(&r);

	r = parse_ok("/apis/keel/v1/nodes/n1");
	assert_int_equal(r.type, SRV_ROUTE_ITEM);
	assert_null(r.ns);
	assert_string_equal(r.name, "n1");
	srv_route_clear(&r);

	/* a Namespace item, and its status: "status" is not a plural */
	r = parse_ok("/apis/keel/v1/namespaces/shop");
	assert_int_equal(r.type, SRV_ROUTE_ITEM);
	assert_string_equal(r.kind->plural, "namespaces");
	assert_string_equal(r.name, "shop");
	srv_route_clear(&r);
	r = parse_ok("/apis/keel/v1/namespaces/shop/status");
	assert_int_equal(r.sub, SRV_SUB_STATUS);
	assert_string_equal(r.name, "shop");
	assert_null(r.ns);
	srv_route_clear(&r);
}

static void test_route_errors(void **state)
{
	(void)state;
	char *m = parse_err("/apis/keel/v1/namespaces/default/taks");
	assert_string_equal(m,
	                    "the server doesn't have a resource type \"taks\"; known: deployments, "
	                    "events, namespaces, nodes, tasks; did you mean tasks?");
	free(m);
	m = parse_err("/apis/keel/v1/deploy");
	assert_non_null(strstr(m, "did you mean deployments?"));
	free(m);
	m = parse_err("/apis/keel/v1/zzzzzzzzz");
	assert_null(strstr(m, "did you mean"));
	free(m);
	m = parse_err("/apis/keel/v1/tasks/web");
	assert_non_null(strstr(m, "namespaced"));
	free(m);
	m = parse_err("/apis/keel/v1/namespaces/default/nodes");
	assert_non_null(strstr(m, "cluster-scoped"));
	free(m);
	m = parse_err("/apis/keel/v1/namespaces/default/tasks/t/logkey");
	assert_non_null(strstr(m, "no subresource \"logkey\""));
	free(m);
	m = parse_err("/apis/keel/v1/namespaces/default/events/e/status");
	assert_non_null(strstr(m, "no subresource \"status\""));
	free(m);
	m = parse_err("/apis/keel/v1/nodes/n1/binding");
	free(m);
	m = parse_err("/apis/apps/v1/deployments");
	assert_non_null(strstr(m, "API group \"apps\""));
	free(m);
	m = parse_err("/apis/keel/v2/tasks");
	free(m);
	m = parse_err("/");
	free(m);
	m = parse_err("/api/v1/pods");
	free(m);
	m = parse_err("/apis/keel/v1/namespaces/default/tasks/web/status/extra");
	free(m);
	m = parse_err("/a/b/c/d/e/f/g/h/i/j");
	free(m);
}

static void test_methods(void **state)
{
	(void)state;
	assert_int_equal(srv_method_parse("PATCH"), SRV_PATCH);
	assert_int_equal(srv_method_parse("get"), SRV_OTHER);
	struct srv_route r = parse_ok("/apis/keel/v1/namespaces/default/tasks");
	assert_true(srv_route_allows(&r, SRV_GET));
	assert_true(srv_route_allows(&r, SRV_HEAD));
	assert_true(srv_route_allows(&r, SRV_POST));
	assert_false(srv_route_allows(&r, SRV_DELETE));
	assert_string_equal(srv_route_allow_header(&r), "GET, HEAD, POST");
	srv_route_clear(&r);
	r = parse_ok("/apis/keel/v1/tasks"); /* all namespaces: no create */
	assert_false(srv_route_allows(&r, SRV_POST));
	srv_route_clear(&r);
	r = parse_ok("/apis/keel/v1/nodes"); /* cluster-scoped: create here */
	assert_true(srv_route_allows(&r, SRV_POST));
	srv_route_clear(&r);
	r = parse_ok("/apis/keel/v1/namespaces/default/tasks/web/status");
	assert_true(srv_route_allows(&r, SRV_PUT));
	assert_false(srv_route_allows(&r, SRV_DELETE));
	srv_route_clear(&r);
	r = parse_ok("/apis/keel/v1/namespaces/default/tasks/web/binding");
	assert_true(srv_route_allows(&r, SRV_POST));
	assert_false(srv_route_allows(&r, SRV_GET));
	srv_route_clear(&r);
	r = parse_ok("/version");
	assert_false(srv_route_allows(&r, SRV_POST));
}

static void test_queries(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	bool b = false;
	assert_int_equal(srv_query_bool("watch", "1", &b, &err), 0);
	assert_true(b);
	assert_int_equal(srv_query_bool("watch", "false", &b, &err), 0);
	assert_false(b);
	assert_int_equal(srv_query_bool("watch", NULL, &b, &err), 0);
	assert_false(b);
	assert_int_equal(srv_query_bool("watch", "yes", &b, &err), -EBADMSG);
	assert_string_equal(err.msg, "invalid value for watch: \"yes\" (want true, false, 1 or 0)");
	uint64_t v = 7;
	assert_int_equal(srv_query_u64("limit", "0", &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(srv_query_u64("limit", "18446744073709551615", &v, &err), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(srv_query_u64("limit", "18446744073709551616", &v, &err), -EBADMSG);
	assert_int_equal(srv_query_u64("limit", "-1", &v, &err), -EBADMSG);
	assert_int_equal(srv_query_u64("limit", "", &v, &err), -EBADMSG);
	assert_int_equal(srv_query_u64("limit", "12a", &v, &err), -EBADMSG);
	assert_true(v == UINT64_MAX); /* untouched on failure */
	bool dry = false;
	assert_int_equal(srv_query_dry_run("All", &dry, &err), 0);
	assert_true(dry);
	assert_int_equal(srv_query_dry_run("all", &dry, &err), -EBADMSG);
	kerr_clear(&err);
}

static void test_continue_tokens(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	const char *keys[] = {"tasks/default/a", "tasks/default/ab", "tasks/default/abc", "t/",
	                      "nodes//n-1"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		char *tok = srv_continue_encode(keys[i]);
		assert_null(strchr(tok, '/'));
		assert_null(strchr(tok, '='));
		char *back = NULL;
		assert_int_equal(srv_continue_decode(tok, "", &back, &err), 0);
		assert_string_equal(back, keys[i]);
		free(back);
		free(tok);
	}
	char *tok = srv_continue_encode("tasks/default/web");
	char *key = NULL;
	assert_int_equal(srv_continue_decode(tok, "deployments/", &key, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "does not belong"));
	assert_null(key);
	free(tok);
	assert_int_equal(srv_continue_decode("not a token!", "", &key, &err), -EBADMSG);
	assert_int_equal(srv_continue_decode("", "", &key, &err), -EBADMSG);
	assert_int_equal(srv_continue_decode("A", "", &key, &err), -EBADMSG);
	assert_int_equal(srv_continue_decode("AAAA", "", &key, &err), -EBADMSG); /* NUL bytes */
	kerr_clear(&err);
}

static void url_check_err(const char *uri, int code, const char *want)
{
	struct kerr err = KERR_INIT;
	assert_int_equal(srv_url_check(uri, &err), -code);
	if (!strstr(kerr_msg(&err), want))
		fail_msg("%s: message \"%s\" lacks \"%s\"", uri, kerr_msg(&err), want);
	kerr_clear(&err);
}

static void test_url_check(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	assert_int_equal(srv_url_check("/apis/keel/v1/namespaces/default/tasks", &err), 0);
	assert_int_equal(srv_url_check("/x/%C3%A9?a=%C3%A9&b=1+2&c&%zz=%4", &err), 0);
	assert_int_equal(srv_url_check("/x/a%2500b?q=%2500", &err), 0); /* a literal "%00" */
	url_check_err("/t/victim%00junk", EBADMSG, "invalid %00 in the URL (path segment \"victim%00junk\")");
	url_check_err("/t?labelSelector=app%3Dx%00junk", EBADMSG,
	              "invalid %00 in the URL (query parameter \"labelSelector\")");
	url_check_err("/t?a%00=1", EBADMSG, "invalid %00");
	url_check_err("/t/%ff?x=%00", EBADMSG, "invalid %00"); /* NUL wins over UTF-8 */
	url_check_err("/t/%ff", EILSEQ, "segment \"%ff\": not valid UTF-8");
	url_check_err("/t/%C0%80", EILSEQ, "not valid UTF-8"); /* overlong NUL */
	url_check_err("/t/%ED%A0%80", EILSEQ, "not valid UTF-8"); /* surrogate */
	url_check_err("/t?limit=%ff", EBADMSG, "query parameter \"limit\": not valid UTF-8");
	url_check_err("/t?a=1&watch=%e2%82", EBADMSG, "\"watch\": not valid UTF-8");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixed_routes), cmocka_unit_test(test_resource_routes),
	    cmocka_unit_test(test_route_errors), cmocka_unit_test(test_methods),
	    cmocka_unit_test(test_queries),      cmocka_unit_test(test_continue_tokens),
	    cmocka_unit_test(test_url_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
