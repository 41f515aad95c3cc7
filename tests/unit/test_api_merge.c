/* Unit tests for api/merge: RFC 7386 merge patch, field sets, and
 * server-side apply with several managers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/kind.h"
#include "api/merge.h"
#include "api/validate.h"
#include "common/util.h"

static json_t *J(const char *text)
{
	char *s = xstrdup(text);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t je;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
	if (!j)
		fail_msg("bad test JSON: %s: %s", je.text, s);
	free(s);
	return j;
}

static void assert_json(json_t *got, const char *want_text)
{
	json_t *want = J(want_text);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		fail_msg("got  %s\nwant %s", g, w);
	}
	json_decref(want);
}

/* The RFC 7386 appendix A table. */
static void test_merge_patch_rfc(void **state)
{
	(void)state;
	static const char *const rows[][3] = {
	    {"{'a':'b'}", "{'a':'c'}", "{'a':'c'}"},
	    {"{'a':'b'}", "{'b':'c'}", "{'a':'b','b':'c'}"},
	    {"{'a':'b'}", "{'a':null}", "{}"},
	    {"{'a':'b','b':'c'}", "{'a':null}", "{'b':'c'}"},
	    {"{'a':['b']}", "{'a':'c'}", "{'a':'c'}"},
	    {"{'a':'c'}", "{'a':['b']}", "{'a':['b']}"},
	    {"{'a':{'b':'c'}}", "{'a':{'b':'d','c':null}}", "{'a':{'b':'d'}}"},
	    {"{'a':[{'b':'c'}]}", "{'a':[1]}", "{'a':[1]}"},
	    {"['a','b']", "['c','d']", "['c','d']"},
	    {"{'a':'b'}", "['c']", "['c']"},
	    {"{'a':'foo'}", "null", "null"},
	    {"{'a':'foo'}", "'bar'", "'bar'"},
	    {"{'e':null}", "{'a':1}", "{'e':null,'a':1}"},
	    {"[1,2]", "{'a':'b','c':null}", "{'a':'b'}"},
	    {"{}", "{'a':{'bb':{'ccc':null}}}", "{'a':{'bb':{}}}"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		json_t *t = J(rows[i][0]), *p = J(rows[i][1]);
		json_t *before = json_deep_copy(t);
		json_t *r = api_merge_patch(t, p);
		assert_json(r, rows[i][2]);
		assert_true(json_equal(t, before)); /* target is borrowed, not changed */
		json_decref(r);
		json_decref(t);
		json_decref(p);
		json_decref(before);
	}
}

static void test_fieldset(void **state)
{
	(void)state;
	json_t *o = J(
	    "{'apiVersion':'keel/v1','kind':'Task','metadata':{'name':'web','namespace':'default',"
	    "'uid':'u','resourceVersion':'3','labels':{'app':'web'},'managedFields':[]},"
	    "'spec':{'image':'x','args':['a','b'],'resources':{},'nodeName':null},'status':{'phase'"
	    ":'Running'}}");
	json_t *fs = api_fieldset_of(o);
	assert_json(fs, "{'f:metadata':{'f:name':{},'f:namespace':{},'f:labels':{'f:app':{}}},"
	                "'f:spec':{'f:image':{},'f:args':{},'f:resources':{}}}");
	json_decref(fs);
	json_decref(o);
}

#define MANIFEST_V1                                                                                \
	"{'apiVersion':'keel/"                                                                     \
	"v1','kind':'Deployment','metadata':{'name':'web','labels':{'app':'web'}},"                \
	"'spec':{'replicas':3,'template':{'metadata':{'labels':{'app':'web'}},"                    \
	"'spec':{'image':'nginx:1','args':['-g','daemon off;'],"                                   \
	"'resources':{'limits':{'cpu':'1','memory':'128Mi'}}}}}}"

static const char *entry_time(json_t *obj, const char *manager)
{
	size_t i;
	json_t *e;
	json_array_foreach(
	    json_object_get(json_object_get(obj, "metadata"), "managedFields"), i,
	    e) if (streq(json_string_value(json_object_get(e, "manager")),
	                 manager)) return json_string_value(json_object_get(e, "time"));
	return NULL;
}

static json_t *spec_of(json_t *o)
{
	return json_object_get(o, "spec");
}

static void test_apply_create_and_reapply(void **state)
{
	(void)state;
	json_t *m = J(MANIFEST_V1);
	json_t *live = api_apply(NULL, m, "keel-apply", "2024-05-01T00:00:00Z");
	/* Created: the manifest plus a managedFields entry. */
	json_t *mf = json_object_get(json_object_get(live, "metadata"), "managedFields");
	assert_int_equal(json_array_size(mf), 1);
	json_t *e = json_array_get(mf, 0);
	assert_string_equal(json_string_value(json_object_get(e, "manager")), "keel-apply");
	assert_string_equal(json_string_value(json_object_get(e, "operation")), "Apply");
	assert_string_equal(json_string_value(json_object_get(e, "fieldsType")), "FieldsV1");
	assert_string_equal(entry_time(live, "keel-apply"), "2024-05-01T00:00:00Z");
	json_t *without = json_deep_copy(live);
	json_object_del(json_object_get(without, "metadata"), "managedFields");
	assert_true(json_equal(without, m));
	json_decref(without);

	/* The server adds uid, resourceVersion and defaults; re-applying the same
	 * manifest later gives an equal object: nothing to write. */
	json_object_set_new(json_object_get(live, "metadata"), "uid", json_string("u-1"));
	json_object_set_new(json_object_get(live, "metadata"), "resourceVersion", json_string("7"));
	json_object_set_new(spec_of(live), "revisionHistoryLimit", json_integer(10));
	json_t *again = api_apply(live, m, "keel-apply", "2024-05-02T00:00:00Z");
	assert_true(api_json_equal(again, live));
	assert_string_equal(entry_time(again, "keel-apply"), "2024-05-01T00:00:00Z");
	json_t *third = api_apply(again, m, "keel-apply", "2024-05-03T00:00:00Z");
	assert_true(api_json_equal(third, live));
	json_decref(third);
	json_decref(again);
	json_decref(live);
	json_decref(m);
}

/* A default filled inside an atomic array (ports[].protocol) must not make a
 * re-apply look like a change: the server defaults after apply, so apply has
 * to compare the defaulted result with the live object. Found when
 * re-applying examples/web a second later said "configured". */
static void test_apply_reapply_with_defaults_in_arrays(void **state)
{
	(void)state;
	const struct api_kind *k = api_kind_by_kind("Task");
	json_t *m = J("{'apiVersion': 'keel/v1', 'kind': 'Task', 'metadata': {'name': 'w', "
	              "'namespace': 'default'}, 'spec': {'image': 'busybox', "
	              "'ports': [{'name': 'http', 'containerPort': 8080}]}}");
	json_t *live = api_apply(NULL, m, "keel-apply", "2024-05-01T00:00:00Z");
	api_default(k, live);
	json_t *port = json_array_get(json_object_get(spec_of(live), "ports"), 0);
	assert_string_equal(json_string_value(json_object_get(port, "protocol")), "TCP");
	json_t *again = api_apply(live, m, "keel-apply", "2024-05-01T00:00:01Z");
	api_default(k, again);
	assert_true(api_json_equal(again, live));
	assert_string_equal(entry_time(again, "keel-apply"), "2024-05-01T00:00:00Z");
	json_decref(again);
	json_decref(live);
	json_decref(m);
}

static void test_apply_drops_and_keeps(void **state)
{
	(void)state;
	json_t *m1 = J(MANIFEST_V1);
	json_t *live = api_apply(NULL, m1, "keel-apply", "T1");
	/* Others write: a controller's status, a merge patch adding an annotation
	 * and a nodeSelector that the manifest never set. */
	json_object_set_new(live, "status", J("{'replicas':3,'readyReplicas':2}"));
	json_object_set_new(json_object_get(live, "metadata"), "annotations",
	                    J("{'note':'by hand'}"));
	json_object_set_new(json_object_get(json_object_get(spec_of(live), "template"), "spec"),
	                    "nodeSelector", J("{'disk':'ssd'}"));

	/* v2 drops the labels, args and the whole resources block, and changes the image. */
	json_t *m2 = J("{'apiVersion':'keel/v1','kind':'Deployment','metadata':{'name':'web'},"
	               "'spec':{'replicas':3,'template':{'metadata':{'labels':{'app':'web'}},"
	               "'spec':{'image':'nginx:2'}}}}");
	json_t *r = api_apply(live, m2, "keel-apply", "T2");
	assert_json(json_object_get(r, "status"), "{'replicas':3,'readyReplicas':2}");
	assert_json(json_object_get(json_object_get(r, "metadata"), "annotations"),
	            "{'note':'by hand'}");
	assert_null(json_object_get(json_object_get(r, "metadata"), "labels"));
	json_t *tspec = json_object_get(json_object_get(spec_of(r), "template"), "spec");
	assert_json(tspec, "{'image':'nginx:2','nodeSelector':{'disk':'ssd'}}");
	assert_string_equal(entry_time(r, "keel-apply"), "T2");
	/* A status in the manifest is ignored. */
	json_t *m3 = json_deep_copy(m2);
	json_object_set_new(m3, "status", J("{'replicas':99}"));
	json_t *r3 = api_apply(r, m3, "keel-apply", "T3");
	assert_true(api_json_equal(r3, r));
	json_decref(r3);
	json_decref(m3);
	json_decref(r);
	json_decref(m2);
	json_decref(live);
	json_decref(m1);
}

static void test_apply_arrays_atomic(void **state)
{
	(void)state;
	json_t *m1 =
	    J("{'kind':'Task','metadata':{'name':'t'},'spec':{'image':'x','args':['a','b'],"
	      "'env':[{'name':'A','value':'1'},{'name':'B','value':'2'}]}}");
	json_t *m2 = J("{'kind':'Task','metadata':{'name':'t'},'spec':{'image':'x','args':['a'],"
	               "'env':[{'name':'B','value':'3'}]}}");
	json_t *live = api_apply(NULL, m1, "keel-apply", "T1");
	json_t *r = api_apply(live, m2, "keel-apply", "T2");
	assert_json(spec_of(r), "{'image':'x','args':['a'],'env':[{'name':'B','value':'3'}]}");
	/* Same field set, new values: the entry's time moves. */
	assert_string_equal(entry_time(r, "keel-apply"), "T2");
	json_decref(r);
	json_decref(live);
	json_decref(m1);
	json_decref(m2);
}

static void test_apply_two_managers(void **state)
{
	(void)state;
	json_t *a1 = J("{'kind':'Deployment','metadata':{'name':'web','labels':{'app':'web'}},"
	               "'spec':{'replicas':2,'paused':false}}");
	json_t *b1 = J("{'kind':'Deployment','metadata':{'name':'web','labels':{'team':'x'}},"
	               "'spec':{'minReadySeconds':5,'paused':false}}");
	json_t *l1 = api_apply(NULL, a1, "alice", "T1");
	json_t *l2 = api_apply(l1, b1, "bob", "T2");
	assert_json(json_object_get(json_object_get(l2, "metadata"), "labels"),
	            "{'app':'web','team':'x'}");
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(l2, "metadata"), "managedFields")), 2);
	assert_string_equal(entry_time(l2, "alice"),
	                    "T1"); /* bob's apply does not touch alice's entry */

	/* alice drops paused and labels.app; bob still holds paused, nobody holds app. */
	json_t *a2 = J("{'kind':'Deployment','metadata':{'name':'web'},'spec':{'replicas':2}}");
	json_t *l3 = api_apply(l2, a2, "alice", "T3");
	assert_json(spec_of(l3), "{'replicas':2,'paused':false,'minReadySeconds':5}");
	assert_json(json_object_get(json_object_get(l3, "metadata"), "labels"), "{'team':'x'}");
	assert_string_equal(entry_time(l3, "bob"), "T2");
	assert_string_equal(entry_time(l3, "alice"), "T3");

	/* bob drops everything but the name: paused goes now, and the empty
	 * labels object goes with its last label. */
	json_t *b2 = J("{'kind':'Deployment','metadata':{'name':'web'}}");
	json_t *l4 = api_apply(l3, b2, "bob", "T4");
	assert_json(spec_of(l4), "{'replicas':2}");
	assert_null(json_object_get(json_object_get(l4, "metadata"), "labels"));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(l4, "metadata"), "name")), "web");

	json_t *objs[] = {a1, b1, l1, l2, a2, l3, b2, l4};
	for (size_t i = 0; i < ARRAY_SIZE(objs); i++)
		json_decref(objs[i]);
}

static void test_apply_nested_drop(void **state)
{
	(void)state;
	json_t *m1 = J("{'kind':'Task','metadata':{'name':'t'},'spec':{'image':'x','healthCheck':{"
	               "'httpGet':{'path':'/h','port':80},'periodSeconds':5}}}");
	json_t *live = api_apply(NULL, m1, "keel-apply", "T1");
	/* The server defaulted a field inside the block (nobody's field). */
	json_object_set_new(json_object_get(spec_of(live), "healthCheck"), "timeoutSeconds",
	                    json_integer(1));
	json_t *m2 = J("{'kind':'Task','metadata':{'name':'t'},'spec':{'image':'x'}}");
	json_t *r = api_apply(live, m2, "keel-apply", "T2");
	/* Our fields went; the defaulted one is not ours, so the block stays with it. */
	assert_json(spec_of(r), "{'image':'x','healthCheck':{'timeoutSeconds':1}}");
	json_decref(r);

	/* Without foreign fields the whole block goes. */
	json_t *clean = api_apply(NULL, m1, "keel-apply", "T1");
	r = api_apply(clean, m2, "keel-apply", "T2");
	assert_json(spec_of(r), "{'image':'x'}");
	/* A scalar changed into an object and back. */
	json_t *m3 = J("{'kind':'Task','metadata':{'name':'t'},'spec':{'image':{'name':'x'}}}");
	json_t *r3 = api_apply(r, m3, "keel-apply", "T3");
	assert_json(spec_of(r3), "{'image':{'name':'x'}}");
	json_t *r4 = api_apply(r3, m2, "keel-apply", "T4");
	assert_json(spec_of(r4), "{'image':'x'}");
	json_t *objs[] = {m1, live, m2, r, clean, m3, r3, r4};
	for (size_t i = 0; i < ARRAY_SIZE(objs); i++)
		json_decref(objs[i]);
}

static void test_apply_merge_patched_field(void **state)
{
	(void)state;
	/* A manifest without replicas; `keel scale` sets replicas by merge patch. */
	json_t *m = J("{'kind':'Deployment','metadata':{'name':'web'},'spec':{'paused':false}}");
	json_t *live = api_apply(NULL, m, "keel-apply", "T1");
	json_t *patch = J("{'spec':{'replicas':7}}");
	json_t *scaled = api_merge_patch(live, patch);
	json_t *r = api_apply(scaled, m, "keel-apply", "T2");
	assert_json(spec_of(r), "{'paused':false,'replicas':7}");
	assert_true(api_json_equal(r, scaled)); /* nothing to write */
	assert_string_equal(entry_time(r, "keel-apply"), "T1");
	json_t *objs[] = {m, live, patch, scaled, r};
	for (size_t i = 0; i < ARRAY_SIZE(objs); i++)
		json_decref(objs[i]);
}

static void test_apply_null_and_default_manager(void **state)
{
	(void)state;
	json_t *m =
	    J("{'kind':'Task','metadata':{'name':'t'},'spec':{'image':'x','command':null}}");
	json_t *r = api_apply(NULL, m, NULL, "T1");
	assert_json(spec_of(r), "{'image':'x'}");
	assert_non_null(entry_time(r, "keel-apply"));
	json_decref(r);
	json_decref(m);
}

static json_t *entry_set(json_t *obj, const char *manager)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "managedFields"), i,
	                   e) if (streq(json_string_value(json_object_get(e, "manager")),
	                                manager)) return json_object_get(e, "fieldsV1");
	return NULL;
}

static void test_managed_update(void **state)
{
	(void)state;
	json_t *m = J(
	    "{'kind':'Deployment','metadata':{'name':'web'},'spec':{'replicas':3,'paused':false}}");
	json_t *live = api_apply(NULL, m, "keel-apply", "T1");
	/* keel scale: a merge patch recorded as an Update by keel-scale. */
	json_t *patch = J("{'spec':{'replicas':5}}");
	json_t *scaled = api_merge_patch(live, patch);
	api_managed_update(scaled, live, "keel-scale", "T2");
	assert_json(entry_set(scaled, "keel-scale"), "{'f:spec':{'f:replicas':{}}}");
	assert_json(entry_set(scaled, "keel-apply"),
	            "{'f:metadata':{'f:name':{}},'f:spec':{'f:paused':{}}}");
	assert_string_equal(entry_time(scaled, "keel-scale"), "T2");

	/* The manifest stops setting replicas: the scaled value stays. */
	json_t *m2 = J("{'kind':'Deployment','metadata':{'name':'web'},'spec':{'paused':false}}");
	json_t *r2 = api_apply(scaled, m2, "keel-apply", "T3");
	assert_json(spec_of(r2), "{'replicas':5,'paused':false}");
	/* A manifest that still sets replicas puts its value back. */
	json_t *r3 = api_apply(scaled, m, "keel-apply", "T3");
	assert_json(spec_of(r3), "{'replicas':3,'paused':false}");

	/* A no-op write records nothing. */
	json_t *same = json_deep_copy(scaled);
	api_managed_update(same, scaled, "keel-scale", "T9");
	assert_true(json_equal(same, scaled));
	/* Removing a field takes it out of every set; an emptied manager goes. */
	json_t *unpatch = J("{'spec':{'replicas':null}}");
	json_t *unscaled = api_merge_patch(scaled, unpatch);
	json_decref(unpatch);
	api_managed_update(unscaled, scaled, "someone", "T4");
	assert_null(entry_set(unscaled, "keel-scale"));
	assert_non_null(entry_set(unscaled, "keel-apply"));
	/* On create (old NULL) every field is the writer's; server metadata is not. */
	json_t *created =
	    J("{'kind':'Task','metadata':{'name':'t','uid':'u'},'spec':{'image':'x'}}");
	api_managed_update(created, NULL, NULL, "T5");
	assert_json(entry_set(created, "keel"),
	            "{'f:metadata':{'f:name':{}},'f:spec':{'f:image':{}}}");
	json_t *objs[] = {m, live, patch, scaled, m2, r2, r3, same, unscaled, created};
	for (size_t i = 0; i < ARRAY_SIZE(objs); i++)
		json_decref(objs[i]);
}

static void test_helpers(void **state)
{
	(void)state;
	json_t *a = J("{'spec':{'x':1},'metadata':{'labels':{'a':'b'}}}");
	json_t *b = J("{'spec':{'x':1},'metadata':{'labels':{'a':'c'}}}");
	json_t *c = J("{'spec':{'x':2}}");
	json_t *d = J("{}");
	assert_false(api_spec_changed(a, b));
	assert_true(api_spec_changed(a, c));
	assert_true(api_spec_changed(a, d));
	assert_false(api_spec_changed(d, d));
	assert_true(api_json_equal(NULL, NULL));
	assert_false(api_json_equal(a, NULL));
	assert_false(api_json_equal(a, b));
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_patch_rfc),
	    cmocka_unit_test(test_fieldset),
	    cmocka_unit_test(test_apply_create_and_reapply),
	    cmocka_unit_test(test_apply_reapply_with_defaults_in_arrays),
	    cmocka_unit_test(test_apply_drops_and_keeps),
	    cmocka_unit_test(test_apply_arrays_atomic),
	    cmocka_unit_test(test_apply_two_managers),
	    cmocka_unit_test(test_apply_nested_drop),
	    cmocka_unit_test(test_apply_merge_patched_field),
	    cmocka_unit_test(test_apply_null_and_default_manager),
	    cmocka_unit_test(test_managed_update),
	    cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
