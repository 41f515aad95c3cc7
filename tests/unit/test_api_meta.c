/* Unit tests for api/meta: DNS-1123 names, label rules, paths, accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/meta.h"
#include "common/util.h"

static void test_dns1123(void **state)
{
	(void)state;
	assert_true(api_is_dns1123_label("web"));
	assert_true(api_is_dns1123_label("web-1"));
	assert_true(api_is_dns1123_label("1web"));
	assert_true(api_is_dns1123_label("a"));
	assert_false(api_is_dns1123_label(""));
	assert_false(api_is_dns1123_label("Web"));
	assert_false(api_is_dns1123_label("web-"));
	assert_false(api_is_dns1123_label("-web"));
	assert_false(api_is_dns1123_label("web.1"));
	assert_false(api_is_dns1123_label("web_1"));
	assert_false(api_is_dns1123_label(NULL));
	char s63[64], s64[65];
	memset(s63, 'a', 63);
	s63[63] = '\0';
	memset(s64, 'a', 64);
	s64[64] = '\0';
	assert_true(api_is_dns1123_label(s63));
	assert_false(api_is_dns1123_label(s64));

	assert_true(api_is_dns1123_subdomain("web"));
	assert_true(api_is_dns1123_subdomain("node-1.example.com"));
	assert_false(api_is_dns1123_subdomain("node-1..example"));
	assert_false(api_is_dns1123_subdomain(".web"));
	assert_false(api_is_dns1123_subdomain("web."));
	assert_false(api_is_dns1123_subdomain("Node1"));
	assert_false(api_is_dns1123_subdomain(""));
	char big[260];
	memset(big, 'a', 254);
	big[254] = '\0';
	assert_false(api_is_dns1123_subdomain(big));
}

static void test_labels(void **state)
{
	(void)state;
	assert_true(api_is_label_key("app"));
	assert_true(api_is_label_key("App_Name.v2"));
	assert_true(api_is_label_key("app.kubernetes.io/name"));
	assert_true(api_is_label_key("keel.dev/template-hash"));
	assert_false(api_is_label_key(""));
	assert_false(api_is_label_key("/name"));
	assert_false(api_is_label_key("example.com/"));
	assert_false(api_is_label_key("a/b/c"));
	assert_false(api_is_label_key("Example.com/name")); /* prefix is a DNS subdomain */
	assert_false(api_is_label_key("-app"));
	assert_false(api_is_label_key("app-"));
	assert_false(api_is_label_key("my app"));

	assert_true(api_is_label_value(""));
	assert_true(api_is_label_value("web"));
	assert_true(api_is_label_value("v1.2_3-x"));
	assert_false(api_is_label_value("-web"));
	assert_false(api_is_label_value("a/b"));
	assert_false(api_is_label_value("with space"));
	char v64[65];
	memset(v64, 'x', 64);
	v64[64] = '\0';
	assert_false(api_is_label_value(v64));
}

static void test_paths(void **state)
{
	(void)state;
	char *p = api_path_key(NULL, "spec");
	assert_string_equal(p, "spec");
	char *q = api_path_key(p, "env");
	assert_string_equal(q, "spec.env");
	char *r = api_path_index(q, 0);
	assert_string_equal(r, "spec.env[0]");
	char *s = api_path_key("metadata.labels", "app.kubernetes.io/name");
	assert_string_equal(s, "metadata.labels[app.kubernetes.io/name]");
	char *t = api_path_key("", "x");
	assert_string_equal(t, "x");
	free(p);
	free(q);
	free(r);
	free(s);
	free(t);
}

static void test_accessors(void **state)
{
	(void)state;
	json_t *o =
	    json_loads("{\"kind\":\"Task\",\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\","
	               "\"uid\":\"u1\",\"resourceVersion\":\"42\",\"generation\":3,"
	               "\"labels\":{\"app\":\"web\",\"a.b/c\":\"d\"}},"
	               "\"spec\":{\"nodeName\":\"n1\",\"env\":[{\"name\":\"X\"}]},"
	               "\"status\":{\"phase\":\"Running\"}}",
	               0, NULL);
	assert_non_null(o);
	assert_string_equal(api_obj_name(o), "web");
	assert_string_equal(api_obj_namespace(o), "prod");
	assert_string_equal(api_obj_kind(o), "Task");
	assert_string_equal(api_obj_uid(o), "u1");
	assert_int_equal(api_obj_rv(o), 42);
	assert_int_equal(api_obj_generation(o), 3);
	assert_int_equal(json_object_size(api_obj_labels(o)), 2);
	assert_string_equal(json_string_value(api_obj_get_path(o, "spec.nodeName")), "n1");
	assert_string_equal(json_string_value(api_obj_get_path(o, "status.phase")), "Running");
	assert_string_equal(json_string_value(api_obj_get_path(o, "spec.env[0].name")), "X");
	assert_string_equal(json_string_value(api_obj_get_path(o, "metadata.labels[a.b/c]")), "d");
	assert_null(api_obj_get_path(o, "spec.missing"));
	assert_null(api_obj_get_path(o, "spec..nodeName"));
	assert_null(api_obj_get_path(o, ""));
	json_decref(o);
	json_t *bad = json_loads("{\"metadata\":{\"resourceVersion\":\"12x\"}}", 0, NULL);
	assert_int_equal(api_obj_rv(bad), 0);
	assert_null(api_obj_name(bad));
	assert_null(api_obj_labels(bad));
	json_decref(bad);
	assert_null(api_obj_name(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dns1123),
	    cmocka_unit_test(test_labels),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_accessors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
