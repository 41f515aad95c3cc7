/* Unit tests for controllers/gc_plan.c: the garbage collector's plan for
 * a snapshot of objects (owners, dependents, finalizers, Terminating
 * namespaces) and Event expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/util.h"
#include "controllers/gc.h"

/* obj(kind, ns or NULL, name, uid, extra-metadata JSON or NULL) */
static json_t *obj(const char *kind, const char *ns, const char *name, const char *uid,
                   const char *meta)
{
	json_t *m = meta ? json_loads(meta, 0, NULL) : json_object();
	assert_non_null(m);
	json_object_set_new(m, "name", json_string(name));
	json_object_set_new(m, "uid", json_string(uid));
	if (ns)
		json_object_set_new(m, "namespace", json_string(ns));
	return json_pack("{s:s, s:s, s:o}", "apiVersion", "keel/v1", "kind", kind, "metadata", m);
}

#define OWNED_BY(uid)                                                                              \
	"{\"ownerReferences\":[{\"apiVersion\":\"keel/"                                            \
	"v1\",\"kind\":\"Task\",\"name\":\"o\",\"uid\":\"" uid "\"}]}"
#define DELETING(fin)                                                                              \
	"{\"deletionTimestamp\":\"2026-01-01T00:00:00Z\",\"finalizers\":[\"" fin "\"]}"

static const char *op_of(json_t *plan, size_t i)
{
	return json_string_value(json_object_get(json_array_get(plan, i), "op"));
}
static const char *name_of(json_t *plan, size_t i)
{
	return json_string_value(json_object_get(json_array_get(plan, i), "name"));
}

static void test_owner_gone_deletes_dependents(void **state)
{
	(void)state;
	/* owner u1 was deleted (Background): not in the snapshot */
	json_t *objs = json_pack("[o,o,o]", obj("Task", "default", "a", "ua", OWNED_BY("u1")),
	                         obj("Task", "default", "b", "ub", OWNED_BY("u2")),
	                         obj("Task", "default", "o2", "u2", NULL));
	json_t *plan = gc_plan(objs);
	assert_int_equal(json_array_size(plan), 1); /* b's owner o2 exists: nothing for b */
	assert_string_equal(op_of(plan, 0), "delete");
	assert_string_equal(name_of(plan, 0), "a");
	json_t *a = json_array_get(plan, 0);
	assert_string_equal(json_string_value(json_object_get(a, "namespace")), "default");
	assert_string_equal(json_string_value(json_object_get(a, "kind")), "Task");
	/* the absent owner is to be confirmed through the API before deleting */
	json_t *v = json_object_get(a, "verify");
	assert_int_equal(json_array_size(v), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "uid")), "u1");
	json_decref(plan);
	json_decref(objs);
}

static void test_some_owners_left_only_drops_references(void **state)
{
	(void)state;
	json_t *d =
	    obj("Task", "default", "d", "ud",
	        "{\"ownerReferences\":["
	        "{\"apiVersion\":\"keel/v1\",\"kind\":\"Task\",\"name\":\"x\",\"uid\":\"gone\"},"
	        "{\"apiVersion\":\"keel/v1\",\"kind\":\"Task\",\"name\":\"y\",\"uid\":\"uy\"}]}");
	json_t *objs = json_pack("[o,o]", d, obj("Task", "default", "y", "uy", NULL));
	json_t *plan = gc_plan(objs);
	assert_int_equal(json_array_size(plan), 1);
	assert_string_equal(op_of(plan, 0), "unown");
	json_t *owners = json_object_get(json_array_get(plan, 0), "owners");
	assert_int_equal(json_array_size(owners), 1);
	assert_string_equal(json_string_value(json_array_get(owners, 0)), "gone");
	json_decref(plan);
	json_decref(objs);
}

static void test_orphan_removes_references_then_finalizer(void **state)
{
	(void)state;
	json_t *objs =
	    json_pack("[o,o,o]", obj("Deployment", "default", "web", "uw", DELETING("orphan")),
	              obj("Task", "default", "web-1", "t1", OWNED_BY("uw")),
	              obj("Task", "default", "web-2", "t2", OWNED_BY("uw")));
	json_t *plan = gc_plan(objs);
	/* dependents first; the finalizer stays while they still reference it */
	assert_int_equal(json_array_size(plan), 2);
	assert_string_equal(op_of(plan, 0), "unown");
	assert_string_equal(name_of(plan, 0), "web-1");
	assert_string_equal(op_of(plan, 1), "unown");
	assert_string_equal(name_of(plan, 1), "web-2");
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(json_array_get(plan, 0), "owners"), 0)),
	                    "uw");
	json_decref(plan);
	json_decref(objs);
	/* after the references are gone: the finalizer goes */
	objs = json_pack("[o,o]", obj("Deployment", "default", "web", "uw", DELETING("orphan")),
	                 obj("Task", "default", "web-1", "t1", NULL));
	plan = gc_plan(objs);
	assert_int_equal(json_array_size(plan), 1);
	assert_string_equal(op_of(plan, 0), "unfinalize");
	assert_string_equal(name_of(plan, 0), "web");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(plan, 0), "finalizer")), "orphan");
	json_decref(plan);
	json_decref(objs);
}

static void test_foreground_deletes_dependents_first(void **state)
{
	(void)state;
	json_t *objs = json_pack(
	    "[o,o]", obj("Deployment", "default", "web", "uw", DELETING("foregroundDeletion")),
	    obj("Task", "default", "web-1", "t1", OWNED_BY("uw")));
	json_t *plan = gc_plan(objs);
	assert_int_equal(json_array_size(plan), 1);
	assert_string_equal(op_of(plan, 0), "delete");
	assert_string_equal(name_of(plan, 0), "web-1");
	assert_int_equal(json_array_size(json_object_get(json_array_get(plan, 0), "verify")), 0);
	json_decref(plan);
	json_decref(objs);
	/* a dependent still being deleted (its own finalizer) holds the owner */
	objs = json_pack(
	    "[o,o]", obj("Deployment", "default", "web", "uw", DELETING("foregroundDeletion")),
	    obj("Task", "default", "web-1", "t1",
	        "{\"deletionTimestamp\":\"2026-01-01T00:00:00Z\",\"finalizers\":[\"x/y\"],"
	        "\"ownerReferences\":[{\"apiVersion\":\"keel/v1\",\"kind\":\"Deployment\","
	        "\"name\":\"web\",\"uid\":\"uw\"}]}"));
	plan = gc_plan(objs);
	assert_int_equal(json_array_size(plan), 0);
	json_decref(plan);
	json_decref(objs);
}

static void test_terminating_namespace(void **state)
{
	(void)state;
	json_t *objs = json_pack(
	    "[o,o,o,o]", obj("Namespace", NULL, "shop", "ns1", DELETING("keel/namespace")),
	    obj("Task", "shop", "a", "ua", NULL), obj("Event", "shop", "a.1", "ue", NULL),
	    obj("Task", "default", "b", "ub", NULL));
	json_t *plan = gc_plan(objs);
	assert_int_equal(json_array_size(plan), 2);
	assert_string_equal(op_of(plan, 0), "delete");
	assert_string_equal(name_of(plan, 0), "a");
	assert_string_equal(op_of(plan, 1), "delete");
	assert_string_equal(name_of(plan, 1), "a.1");
	json_decref(plan);
	json_decref(objs);
	/* emptied: the finalizer goes (cluster-scoped: no namespace member) */
	objs = json_pack("[o,o]", obj("Namespace", NULL, "shop", "ns1", DELETING("keel/namespace")),
	                 obj("Task", "default", "b", "ub", NULL));
	plan = gc_plan(objs);
	assert_int_equal(json_array_size(plan), 1);
	assert_string_equal(op_of(plan, 0), "unfinalize");
	assert_string_equal(name_of(plan, 0), "shop");
	assert_null(json_object_get(json_array_get(plan, 0), "namespace"));
	json_decref(plan);
	json_decref(objs);
}

static void test_custom_finalizer_and_plain_objects_left_alone(void **state)
{
	(void)state;
	json_t *objs =
	    json_pack("[o,o,o]", obj("Task", "default", "held", "uh", DELETING("example.com/hold")),
	              obj("Task", "default", "plain", "up", NULL),
	              json_pack("{s:s}", "kind", "Task")); /* no metadata: skipped */
	json_t *plan = gc_plan(objs);
	assert_int_equal(json_array_size(plan), 0);
	json_decref(plan);
	json_decref(objs);
}

static void test_expired_events(void **state)
{
	(void)state;
	int64_t now = time_parse_rfc3339("2026-01-01T12:00:00Z");
	json_t *evs = json_pack(
	    "[{s:{s:s}, s:s}, {s:{s:s}, s:s}, {s:{s:s, s:s}}, {s:{s:s}}]", "metadata", "name",
	    "old", "lastTimestamp", "2026-01-01T10:59:59Z", "metadata", "name", "recent",
	    "lastTimestamp", "2026-01-01T11:30:00Z", "metadata", "name", "created-old",
	    "creationTimestamp", "2026-01-01T09:00:00Z", "metadata", "name", "no-time");
	json_t *out = gc_expired_events(evs, now, 3600);
	assert_int_equal(json_array_size(out), 2);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_array_get(out, 0), "metadata"), "name")),
	                    "old");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_array_get(out, 1), "metadata"), "name")),
	                    "created-old");
	json_decref(out);
	json_decref(evs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_owner_gone_deletes_dependents),
	    cmocka_unit_test(test_some_owners_left_only_drops_references),
	    cmocka_unit_test(test_orphan_removes_references_then_finalizer),
	    cmocka_unit_test(test_foreground_deletes_dependents_first),
	    cmocka_unit_test(test_terminating_namespace),
	    cmocka_unit_test(test_custom_finalizer_and_plain_objects_left_alone),
	    cmocka_unit_test(test_expired_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
