/* Unit tests for intern (the informers' hash-consing): equal subtrees
 * become one json_t, unequal ones never do (type, key, key order, string
 * length), the result is equal to its input and serializes the same, and
 * sweeping frees exactly what nobody holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controllers/intern.h"

static json_t *load(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, JSON_ALLOW_NUL, &e);
	assert_non_null(v);
	return v;
}

static json_t *task(const char *name, const char *shard)
{
	char buf[1024];
	snprintf(buf, sizeof buf,
	         "{\"apiVersion\":\"keel/v1\",\"kind\":\"Task\",\"metadata\":{\"name\":\"%s\","
	         "\"namespace\":\"mem\",\"labels\":{\"app\":\"mem\",\"shard\":\"%s\"},"
	         "\"generation\":1},\"spec\":{\"image\":\"sim\",\"command\":[\"sleep\",\"3600\"],"
	         "\"resources\":{\"requests\":{\"cpu\":\"10m\",\"memory\":\"8Mi\"}},"
	         "\"restartPolicy\":\"Always\",\"ok\":true,\"x\":null,\"f\":0.5},"
	         "\"status\":{\"phase\":\"Pending\"}}",
	         name, shard);
	return load(buf);
}

static void same_dump(json_t *a, json_t *b)
{
	char *x = json_dumps(a, JSON_COMPACT), *y = json_dumps(b, JSON_COMPACT);
	assert_string_equal(x, y);
	free(x);
	free(y);
}

static void test_shares_equal_subtrees(void **state)
{
	(void)state;
	struct intern *t = intern_new();
	json_t *a = task("a", "1"), *b = task("b", "1"), *c = task("c", "2");
	json_t *ia = intern_tree(t, a), *ib = intern_tree(t, b), *ic = intern_tree(t, c);
	assert_true(json_equal(ia, a));
	same_dump(ia, a);
	same_dump(ic, c);
	assert_ptr_not_equal(ia, ib);
	assert_ptr_equal(json_object_get(ia, "spec"), json_object_get(ib, "spec"));
	assert_ptr_equal(json_object_get(ia, "spec"), json_object_get(ic, "spec"));
	assert_ptr_equal(json_object_get(ia, "status"), json_object_get(ic, "status"));
	json_t *ma = json_object_get(ia, "metadata"), *mb = json_object_get(ib, "metadata"),
	       *mc = json_object_get(ic, "metadata");
	assert_ptr_equal(json_object_get(ma, "labels"), json_object_get(mb, "labels"));
	assert_ptr_not_equal(json_object_get(ma, "labels"), json_object_get(mc, "labels"));
	assert_ptr_equal(json_object_get(ma, "namespace"), json_object_get(mc, "namespace"));
	/* the same object again is the same pointer */
	json_t *ia2 = intern_tree(t, a);
	assert_ptr_equal(ia, ia2);
	json_decref(ia2);
	json_decref(ia);
	json_decref(ib);
	json_decref(ic);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	intern_free(t);
}

static void test_keeps_unequal_apart(void **state)
{
	(void)state;
	struct intern *t = intern_new();
	const char *docs[] = {
	    "{\"a\":1}",           "{\"a\":1.0}",       "{\"a\":\"1\"}",    "{\"b\":1}",
	    "{\"a\":1,\"b\":2}",   "{\"b\":2,\"a\":1}", "[1,2]",            "[2,1]",
	    "[1]",                 "{\"a\":[1]}",       "{\"a\":{\"a\":1}}", "{\"a\":true}",
	    "{\"a\":false}",       "{\"a\":null}",      "{}",               "[]",
	    "{\"a\":\"x\\u0000y\"}", "{\"a\":\"x\\u0000z\"}", "{\"a\":\"x\"}",  "{\"a\":-1}",
	};
	size_t n = sizeof docs / sizeof *docs;
	json_t *in[32], *out[32];
	for (size_t i = 0; i < n; i++) {
		in[i] = load(docs[i]);
		out[i] = intern_tree(t, in[i]);
		same_dump(out[i], in[i]);
		assert_true(json_equal(out[i], in[i]));
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (i != j)
				assert_ptr_not_equal(out[i], out[j]);
	for (size_t i = 0; i < n; i++) {
		json_t *again = load(docs[i]);
		json_t *o = intern_tree(t, again);
		assert_ptr_equal(o, out[i]);
		json_decref(o);
		json_decref(again);
	}
	for (size_t i = 0; i < n; i++) {
		json_decref(in[i]);
		json_decref(out[i]);
	}
	intern_free(t);
}

static void test_sweep_frees_only_the_unheld(void **state)
{
	(void)state;
	struct intern *t = intern_new();
	json_t *a = task("a", "1"), *b = task("b", "2");
	json_t *ia = intern_tree(t, a), *ib = intern_tree(t, b);
	size_t both = intern_count(t);
	assert_true(both > 0);
	assert_int_equal(intern_sweep(t), 0); /* all held */
	json_decref(ib);
	size_t dropped = intern_sweep(t);
	assert_true(dropped > 0);
	/* what a still uses is kept and still shared with a fresh copy of it */
	json_t *ia2 = intern_tree(t, a);
	assert_ptr_equal(ia, ia2);
	assert_true(json_equal(ia, a));
	json_decref(ia2);
	json_decref(ia);
	intern_sweep(t);
	assert_int_equal(intern_count(t), 0);
	/* a tree may outlive its table */
	json_t *ib2 = intern_tree(t, b);
	intern_free(t);
	assert_true(json_equal(ib2, b));
	json_decref(ib2);
	json_decref(a);
	json_decref(b);
}

/* A cache that replaces its objects (new resourceVersions) keeps a table
 * bounded by what is live: the automatic sweeps drop the old versions. */
static void test_table_stays_bounded(void **state)
{
	(void)state;
	struct intern *t = intern_new();
	json_t *live[100] = {0};
	for (int i = 0; i < 50000; i++) {
		char name[32];
		snprintf(name, sizeof name, "t%d", i);
		json_t *v = task(name, "1");
		json_t *iv = intern_tree(t, v);
		json_decref(v);
		json_decref(live[i % 100]);
		live[i % 100] = iv;
	}
	/* 100 live objects, each with a few unique nodes, plus the shared ones */
	assert_true(intern_count(t) < 10000);
	for (int i = 0; i < 100; i++)
		json_decref(live[i]);
	intern_free(t);
}

/* intern_object: the envelope is the object's own, what is below it shared. */
static void test_object_envelope_is_its_own(void **state)
{
	(void)state;
	struct intern *t = intern_new();
	json_t *a = task("a", "1"), *b = task("b", "1");
	json_object_set_new(json_object_get(a, "metadata"), "uid", json_string("u-1"));
	json_object_set_new(json_object_get(b, "metadata"), "uid", json_string("u-1"));
	json_t *ia = intern_object(t, a), *ib = intern_object(t, b);
	assert_true(json_equal(ia, a));
	same_dump(ia, a);
	same_dump(ib, b);
	json_t *ma = json_object_get(ia, "metadata"), *mb = json_object_get(ib, "metadata");
	assert_ptr_not_equal(ma, mb);
	assert_ptr_not_equal(json_object_get(ma, "uid"), json_object_get(mb, "uid"));
	assert_ptr_equal(json_object_get(ma, "labels"), json_object_get(mb, "labels"));
	assert_ptr_equal(json_object_get(ia, "spec"), json_object_get(ib, "spec"));
	/* the same object twice: two envelopes, one spec */
	json_t *ia2 = intern_object(t, a);
	assert_ptr_not_equal(ia, ia2);
	assert_ptr_equal(json_object_get(ia, "spec"), json_object_get(ia2, "spec"));
	json_t *s = load("[1,\"x\"]"), *is = intern_object(t, s), *is2 = intern_tree(t, s);
	assert_ptr_equal(is, is2);
	json_decref(is);
	json_decref(is2);
	json_decref(s);
	json_decref(ia);
	json_decref(ia2);
	json_decref(ib);
	intern_sweep(t);
	assert_int_equal(intern_count(t), 0);
	json_decref(a);
	json_decref(b);
	intern_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shares_equal_subtrees),
	    cmocka_unit_test(test_keeps_unequal_apart),
	    cmocka_unit_test(test_sweep_frees_only_the_unheld),
	    cmocka_unit_test(test_table_stays_bounded),
	    cmocka_unit_test(test_object_envelope_is_its_own),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
