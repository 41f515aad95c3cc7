/* Unit tests for api/selector: every label-selector operator (including
 * != and notin on objects without the key), parse errors, LabelSelector
 * JSON, and field selectors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/selector.h"
#include "common/kerr.h"
#include "common/util.h"

static json_t *labels_web;  /* app=web, tier=frontend, env=prod */
static json_t *labels_db;   /* app=db, env=dev */
static json_t *labels_none; /* {} */

static int setup(void **state)
{
	(void)state;
	labels_web = json_pack("{s:s, s:s, s:s}", "app", "web", "tier", "frontend", "env", "prod");
	labels_db = json_pack("{s:s, s:s}", "app", "db", "env", "dev");
	labels_none = json_object();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	json_decref(labels_web);
	json_decref(labels_db);
	json_decref(labels_none);
	return 0;
}

/* Bit mask of which of web, db, none, NULL match s. */
static int matches(const char *s)
{
	struct api_selector *sel = NULL;
	struct kerr err = KERR_INIT;
	if (api_selector_parse(s, &sel, &err) < 0)
		fail_msg("%s: %s", s, kerr_msg(&err));
	int m = (api_selector_match(sel, labels_web) ? 1 : 0) |
	        (api_selector_match(sel, labels_db) ? 2 : 0) |
	        (api_selector_match(sel, labels_none) ? 4 : 0) |
	        (api_selector_match(sel, NULL) ? 8 : 0);
	api_selector_free(sel);
	return m;
}

static void test_operators(void **state)
{
	(void)state;
	assert_int_equal(matches(""), 15);
	assert_int_equal(matches("   "), 15);
	assert_int_equal(matches("app=web"), 1);
	assert_int_equal(matches("app==web"), 1);
	assert_int_equal(matches("app!=web"), 2 | 4 | 8); /* lacking the key matches != */
	assert_int_equal(matches("tier!=frontend"), 2 | 4 | 8);
	assert_int_equal(matches("app in (web,db)"), 1 | 2);
	assert_int_equal(matches("app in (web)"), 1);
	assert_int_equal(matches("app notin (web)"), 2 | 4 | 8); /* lacking the key matches notin */
	assert_int_equal(matches("tier notin (frontend,backend)"), 2 | 4 | 8);
	assert_int_equal(matches("tier"), 1);
	assert_int_equal(matches("!tier"), 2 | 4 | 8);
	assert_int_equal(matches("app=web,env=prod"), 1);
	assert_int_equal(matches("app=web,env=dev"), 0);
	assert_int_equal(matches("env,!tier"), 2);
	assert_int_equal(matches("app="), 0); /* equals the empty value */
	assert_int_equal(matches("app!="), 15);
	assert_int_equal(matches("app in (web,)"), 1); /* "" is a value too */
}

static void test_whitespace(void **state)
{
	(void)state;
	assert_int_equal(matches("  app = web , env == prod "), 1);
	assert_int_equal(matches("app in(web, db)"), 1 | 2);
	assert_int_equal(matches("app in ( web , db )"), 1 | 2);
	assert_int_equal(matches("app notin(db)"), 1 | 4 | 8);
	assert_int_equal(matches("! tier"), 2 | 4 | 8);
	assert_int_equal(matches("\tapp\t!=\tweb"), 2 | 4 | 8);
}

static void expect_error(const char *s, const char *msg)
{
	struct api_selector *sel = (struct api_selector *)0x1;
	struct kerr err = KERR_INIT;
	assert_int_equal(api_selector_parse(s, &sel, &err), -EINVAL);
	assert_ptr_equal(sel, (struct api_selector *)0x1);
	if (!strstr(kerr_msg(&err), msg))
		fail_msg("%s: got \"%s\", want \"%s\"", s, kerr_msg(&err), msg);
	kerr_clear(&err);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("a in (b", "invalid label selector \"a in (b\": missing ')'");
	expect_error("a in b", "expected '(' after \"a in\"");
	expect_error("a in ()", "must not be empty");
	expect_error("a notin ()", "must not be empty");
	expect_error("a b", "expected =, ==, !=, in, notin or ',' after \"a\", found \"b\"");
	expect_error("a=b c", "expected ',' before \"c\"");
	expect_error("a=b,", "trailing ','");
	expect_error(",a", "missing label key before ','");
	expect_error("=b", "unexpected '=' where a label key belongs");
	expect_error("a=b=c", "unexpected '=' in the value of \"a\"");
	expect_error("a=(b)", "unexpected");
	expect_error("-a=b", "invalid label key \"-a\"");
	expect_error("app=we b", "expected ','");
	expect_error("app=-web", "invalid label value \"-web\"");
	expect_error("app in (a b)", "unexpected 'b' in the values of \"app\"");
	expect_error("!app=web", "\"!app\" takes no operator or value");
	expect_error("!", "missing label key");
	expect_error("a)", "unexpected ')'");
	assert_int_equal(api_selector_parse("a in (", &(struct api_selector *){NULL}, NULL),
	                 -EINVAL);
}

static void test_format_roundtrip(void **state)
{
	(void)state;
	const char *in = "app=web, tier in (a,b), env notin (x), !legacy, owner, v!=2";
	struct api_selector *sel = NULL;
	assert_int_equal(api_selector_parse(in, &sel, NULL), 0);
	char *s = api_selector_format(sel);
	assert_string_equal(s, "app=web,tier in (a,b),env notin (x),!legacy,owner,v!=2");
	struct api_selector *again = NULL;
	assert_int_equal(api_selector_parse(s, &again, NULL), 0);
	char *s2 = api_selector_format(again);
	assert_string_equal(s, s2);
	assert_false(api_selector_empty(sel));
	free(s);
	free(s2);
	api_selector_free(sel);
	api_selector_free(again);
	api_selector_free(NULL);
	assert_true(api_selector_empty(NULL));
}

static struct api_selector *from_json(const char *text, struct kerr *err)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	struct api_selector *sel = NULL;
	int r = api_selector_from_json(j, &sel, err);
	json_decref(j);
	return r < 0 ? NULL : sel;
}

static void test_label_selector_json(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct api_selector *sel =
	    from_json("{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"env\","
	              "\"operator\":\"In\","
	              "\"values\":[\"prod\",\"staging\"]},{\"key\":\"legacy\",\"operator\":"
	              "\"DoesNotExist\"}]}",
	              &err);
	assert_non_null(sel);
	assert_true(api_selector_match(sel, labels_web));
	assert_false(api_selector_match(sel, labels_db));
	api_selector_free(sel);
	sel = from_json("{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\","
	                "\"values\":[\"frontend\"]},"
	                "{\"key\":\"env\",\"operator\":\"Exists\"}]}",
	                &err);
	assert_non_null(sel);
	assert_false(api_selector_match(sel, labels_web));
	assert_true(api_selector_match(sel, labels_db));
	assert_false(api_selector_match(sel, labels_none));
	api_selector_free(sel);
	sel = from_json("{}", &err);
	assert_true(api_selector_empty(sel));
	api_selector_free(sel);

	assert_null(from_json("{\"matchLabel\":{}}", &err));
	assert_non_null(strstr(kerr_msg(&err), "matchLabel: unknown field"));
	kerr_clear(&err);
	assert_null(
	    from_json("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", &err));
	assert_non_null(strstr(kerr_msg(&err), "must be non-empty for In"));
	kerr_clear(&err);
	assert_null(from_json(
	    "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}",
	    &err));
	assert_non_null(strstr(kerr_msg(&err), "must be empty for Exists"));
	kerr_clear(&err);
	assert_null(
	    from_json("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Equals\"}]}", &err));
	assert_non_null(
	    strstr(kerr_msg(&err), "operator: must be In, NotIn, Exists or DoesNotExist"));
	kerr_clear(&err);
	assert_null(from_json("{\"matchLabels\":{\"app\":3}}", &err));
	assert_non_null(strstr(kerr_msg(&err), "matchLabels[app]"));
	kerr_clear(&err);
	assert_null(from_json("[]", &err));
	kerr_clear(&err);
	struct api_selector *all = NULL;
	assert_int_equal(api_selector_from_json(NULL, &all, NULL), 0);
	assert_true(api_selector_match(all, labels_db));
	api_selector_free(all);
}

static int fmatch(const char *s, json_t *obj)
{
	struct api_fieldsel *fs = NULL;
	struct kerr err = KERR_INIT;
	if (api_fieldsel_parse(s, &fs, &err) < 0)
		fail_msg("%s: %s", s, kerr_msg(&err));
	bool m = api_fieldsel_match(fs, obj);
	api_fieldsel_free(fs);
	return m;
}

static void test_field_selectors(void **state)
{
	(void)state;
	json_t *task = json_loads("{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"prod\"},"
	                          "\"spec\":{\"nodeName\":\"n1\",\"replicas\":3,\"paused\":false},"
	                          "\"status\":{\"phase\":\"Running\"}}",
	                          0, NULL);
	json_t *pending = json_loads("{\"metadata\":{\"name\":\"web-2\"},\"spec\":{}}", 0, NULL);
	assert_true(fmatch("spec.nodeName=n1", task));
	assert_true(fmatch("spec.nodeName==n1", task));
	assert_false(fmatch("spec.nodeName!=n1", task));
	assert_true(fmatch("status.phase=Running,metadata.namespace=prod", task));
	assert_false(fmatch("status.phase=Running,metadata.name=web-2", task));
	assert_true(fmatch(" metadata.name = web-1 ", task));
	assert_true(fmatch("spec.replicas=3", task));
	assert_true(fmatch("spec.paused=false", task));
	assert_true(fmatch("", task));
	/* An absent field compares as "": unscheduled tasks. */
	assert_true(fmatch("spec.nodeName=", pending));
	assert_false(fmatch("spec.nodeName=", task));
	assert_true(fmatch("spec.nodeName!=n1", pending));
	assert_true(fmatch("status.phase!=Running", pending));

	struct api_fieldsel *fs = NULL;
	assert_int_equal(api_fieldsel_parse("spec.nodeName=n1", &fs, NULL), 0);
	assert_string_equal(api_fieldsel_equals(fs, "spec.nodeName"), "n1");
	assert_null(api_fieldsel_equals(fs, "status.phase"));
	api_fieldsel_free(fs);
	assert_int_equal(api_fieldsel_parse("spec.nodeName=n1,status.phase=Running", &fs, NULL), 0);
	assert_null(api_fieldsel_equals(fs, "spec.nodeName"));
	api_fieldsel_free(fs);
	assert_int_equal(api_fieldsel_parse("spec.nodeName!=n1", &fs, NULL), 0);
	assert_null(api_fieldsel_equals(fs, "spec.nodeName"));
	api_fieldsel_free(fs);

	struct kerr err = KERR_INIT;
	fs = NULL;
	assert_int_equal(api_fieldsel_parse("spec.nodeName", &fs, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "invalid field selector \"spec.nodeName\""));
	assert_non_null(strstr(kerr_msg(&err), "expected path=value"));
	kerr_clear(&err);
	assert_int_equal(api_fieldsel_parse("=x", &fs, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "missing field path"));
	kerr_clear(&err);
	assert_int_equal(api_fieldsel_parse("a=b,", &fs, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "trailing ','"));
	kerr_clear(&err);
	assert_int_equal(api_fieldsel_parse("a=b,,c=d", &fs, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "empty requirement"));
	kerr_clear(&err);
	assert_int_equal(api_fieldsel_parse("a=b=c", &fs, &err), -EINVAL);
	kerr_clear(&err);
	assert_int_equal(api_fieldsel_parse("spec node=x", &fs, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "invalid field path \"spec node\""));
	kerr_clear(&err);
	assert_null(fs);
	json_decref(task);
	json_decref(pending);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_operators),
	    cmocka_unit_test(test_whitespace),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_format_roundtrip),
	    cmocka_unit_test(test_label_selector_json),
	    cmocka_unit_test(test_field_selectors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
