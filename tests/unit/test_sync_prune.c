/* Unit tests for the pure parts of apply sets: prune planning (which of the
 * set's live objects go, in which order, and when a Namespace must stay)
 * from src/sync/prune.c, and from src/sync/applyset.c the set name rules,
 * the default name of a path, the labelling of documents, and the index of
 * the live objects of every set with the ownership check built on it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/kind.h"
#include "api/meta.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "manifests/manifest.h"
#include "sync/applyset.h"
#include "sync/prune.h"

/* A live object: KIND NS/NAME with uid "u-NAME" (ns NULL: cluster-scoped). */
static json_t *obj(const char *kind, const char *ns, const char *name)
{
	_cleanup_free_ char *uid = xasprintf("u-%s", name);
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "keel/v1", "kind", kind,
	                      "metadata", "name", name, "uid", uid);
	if (ns)
		json_object_set_new(json_object_get(o, "metadata"), "namespace", json_string(ns));
	return o;
}

static const struct api_kind *K(const char *kind)
{
	return api_kind_by_kind(kind);
}

/* "kind/ns/name" of each item with its action, joined by spaces. */
static char *plan_str(const struct prune_plan *p)
{
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	sbuf_puts(&b, "");
	for (size_t i = 0; i < p->n; i++)
		sbuf_printf(&b, "%s%s%s/%s%s%s", i ? " " : "",
		            p->items[i].action == PRUNE_KEEP ? "!" : "", p->items[i].kind->singular,
		            p->items[i].ns ? p->items[i].ns : "", p->items[i].ns ? "/" : "",
		            p->items[i].name);
	return sbuf_take(&b);
}

static void test_order_and_keep(void **state)
{
	(void)state;
	_cleanup_json_ json_t *live = json_array();
	json_array_append_new(live, obj("Namespace", NULL, "shop"));
	json_array_append_new(live, obj("Task", "shop", "b"));
	json_array_append_new(live, obj("Deployment", "shop", "web"));
	json_array_append_new(live, obj("Task", "default", "z"));
	json_array_append_new(live, obj("Task", "shop", "a"));
	json_array_append_new(live, obj("Node", NULL, "n1"));
	json_array_append_new(live, obj("Namespace", NULL, "batch"));
	json_array_append_new(live, obj("Task", "shop", "kept"));
	struct prune_key keep[] = {{K("Task"), "shop", "kept"}, {K("Namespace"), "", "batch"}};
	struct prune_plan p = {0};
	prune_plan_build(&p, live, keep, ARRAY_SIZE(keep));
	_cleanup_free_ char *s = plan_str(&p);
	/* Deployments, then Tasks (by namespace, name), Nodes, Namespaces last */
	assert_string_equal(
	    s, "deployment/shop/web task/default/z task/shop/a task/shop/b node/n1 namespace/shop");
	assert_int_equal(prune_plan_deletions(&p), 6);
	prune_plan_free(&p);
	assert_int_equal(p.n, 0);
}

static void test_keys_match_kind_namespace_name(void **state)
{
	(void)state;
	struct prune_key keys[] = {{K("Task"), "shop", "a"}, {K("Namespace"), NULL, "shop"}};
	assert_true(prune_key_find(keys, 2, K("Task"), "shop", "a"));
	assert_false(prune_key_find(keys, 2, K("Task"), "default", "a"));
	assert_false(prune_key_find(keys, 2, K("Deployment"), "shop", "a"));
	assert_false(prune_key_find(keys, 2, K("Task"), "shop", "b"));
	/* cluster-scoped: the namespace does not matter, NULL and "" are one */
	assert_true(prune_key_find(keys, 2, K("Namespace"), "", "shop"));
	assert_true(prune_key_find(keys, 2, K("Namespace"), NULL, "shop"));
	assert_false(prune_key_find(NULL, 0, K("Task"), "shop", "a"));
}

static void test_skips_terminating_unknown_and_default(void **state)
{
	(void)state;
	_cleanup_json_ json_t *live = json_array();
	json_t *going = obj("Task", "shop", "going");
	json_object_set_new(json_object_get(going, "metadata"), "deletionTimestamp",
	                    json_string("2026-12-03T10:00:00Z"));
	json_array_append_new(live, going);
	json_array_append_new(live, obj("Gadget", "shop", "x"));
	json_array_append_new(live, json_pack("{s:s}", "kind", "Task")); /* no name */
	json_array_append_new(live, obj("Namespace", NULL, "default"));
	struct prune_plan p = {0};
	prune_plan_build(&p, live, NULL, 0);
	_cleanup_free_ char *s = plan_str(&p);
	assert_string_equal(s, "!namespace/default");
	assert_non_null(strstr(p.items[0].reason, "never deleted"));
	assert_int_equal(prune_plan_deletions(&p), 0);
	prune_plan_free(&p);
}

static void test_namespace_guard(void **state)
{
	(void)state;
	_cleanup_json_ json_t *live = json_array();
	json_array_append_new(live, obj("Namespace", NULL, "shop"));
	json_array_append_new(live, obj("Namespace", NULL, "batch"));
	json_array_append_new(live, obj("Deployment", "shop", "web"));
	struct prune_plan p = {0};
	prune_plan_build(&p, live, NULL, 0);
	size_t n = 0;
	_cleanup_free_ const char **nss = prune_plan_namespaces(&p, &n);
	assert_int_equal(n, 2);
	assert_string_equal(nss[0], "batch");
	assert_string_equal(nss[1], "shop");

	/* What the namespaces hold: the planned Deployment, a Task it owns, an
	 * Event, and in batch a hand-made Task. */
	_cleanup_json_ json_t *contents = json_array();
	json_array_append_new(contents, obj("Deployment", "shop", "web"));
	json_t *owned = obj("Task", "shop", "web-abc12");
	json_object_set_new(
	    json_object_get(owned, "metadata"), "ownerReferences",
	    json_pack("[{s:s, s:s, s:s}]", "kind", "Deployment", "name", "web", "uid", "u-web"));
	json_array_append_new(contents, owned);
	json_array_append_new(contents, obj("Event", "shop", "web.1"));
	json_array_append_new(contents, obj("Task", "batch", "manual"));
	json_array_append_new(contents, obj("Task", "batch", "manual2"));
	prune_plan_guard_namespaces(&p, contents, "s1");
	_cleanup_free_ char *s = plan_str(&p);
	assert_string_equal(s, "deployment/shop/web !namespace/batch namespace/shop");
	assert_string_equal(p.items[1].reason,
	                    "it still holds task/manual, which is in no apply set");
	assert_int_equal(prune_plan_deletions(&p), 2);
	prune_plan_free(&p);
}

static json_t *labelled(const char *kind, const char *ns, const char *name, const char *set)
{
	json_t *o = obj(kind, ns, name);
	json_object_set_new(json_object_get(o, "metadata"), "labels",
	                    json_pack("{s:s}", "keel/apply-set", set));
	return o;
}

/* What a Namespace still holds is named for what it is: an object the
 * manifests still define (the set's own, kept), another set's, or none's;
 * an object being deleted holds nothing back. */
static void test_namespace_guard_reasons(void **state)
{
	(void)state;
	const char *cases[][3] = {
	    {"s1", "shop", "it still holds deployment/storefront, which the manifests still "
	                   "define (in this apply set, \"s1\"); it keeps the namespace"},
	    {"s2", "shop", "it still holds deployment/storefront, which belongs to apply set "
	                   "\"s2\""},
	};
	for (size_t i = 0; i < 2; i++) {
		_cleanup_json_ json_t *live = json_array();
		json_array_append_new(live, obj("Namespace", NULL, "shop"));
		struct prune_plan p = {0};
		prune_plan_build(&p, live, NULL, 0);
		_cleanup_json_ json_t *contents = json_array();
		json_array_append_new(contents,
		                      labelled("Deployment", "shop", "storefront", cases[i][0]));
		prune_plan_guard_namespaces(&p, contents, "s1");
		assert_int_equal(p.items[0].action, PRUNE_KEEP);
		assert_string_equal(p.items[0].reason, cases[i][2]);
		prune_plan_free(&p);
	}
	_cleanup_json_ json_t *live = json_array();
	json_array_append_new(live, obj("Namespace", NULL, "shop"));
	struct prune_plan p = {0};
	prune_plan_build(&p, live, NULL, 0);
	_cleanup_json_ json_t *contents = json_array();
	json_t *going = obj("Task", "shop", "old");
	json_object_set_new(json_object_get(going, "metadata"), "deletionTimestamp",
	                    json_string("2024-01-01T00:00:00Z"));
	json_array_append_new(contents, going);
	prune_plan_guard_namespaces(&p, contents, "s1");
	assert_int_equal(p.items[0].action, PRUNE_DELETE);
	prune_plan_free(&p);
}

static void test_ranks(void **state)
{
	(void)state;
	assert_true(prune_rank(K("Deployment")) < prune_rank(K("Task")));
	assert_true(prune_rank(K("Task")) < prune_rank(K("Event")));
	assert_true(prune_rank(K("Event")) < prune_rank(K("Node")));
	assert_true(prune_rank(K("Node")) < prune_rank(K("Namespace")));
}

/* ---- applyset ---- */

static void test_name_check(void **state)
{
	(void)state;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	assert_int_equal(applyset_name_check("prod", NULL), 0);
	assert_int_equal(applyset_name_check("web.v2_a-b", NULL), 0);
	assert_int_equal(applyset_name_check("", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "label value"));
	assert_int_equal(applyset_name_check(NULL, NULL), -EINVAL);
	assert_int_equal(applyset_name_check("-x", NULL), -EINVAL);
	assert_int_equal(applyset_name_check("a/b", NULL), -EINVAL);
	assert_int_equal(applyset_name_check("with space", NULL), -EINVAL);
	char long_name[65];
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_int_equal(applyset_name_check(long_name, NULL), -EINVAL);
	long_name[63] = '\0';
	assert_int_equal(applyset_name_check(long_name, NULL), 0);
}

static char *tmp_dir(const char *leaf)
{
	const char *base = getenv("KEEL_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0755);
	char *root = xasprintf("%s/keel-prune-XXXXXX", base);
	assert_non_null(mkdtemp(root));
	char *dir = xasprintf("%s/%s", root, leaf);
	assert_int_equal(mkdir(dir, 0755), 0);
	free(root);
	return dir;
}

static void test_default_name(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = tmp_dir("My GitOps_Repo.d");
	_cleanup_free_ char *name = applyset_default_name(dir, NULL);
	assert_non_null(name);
	/* base lower-cased, odd characters to '-', then 8 hex digits */
	assert_true(strstartswith(name, "my-gitops_repo.d-"));
	assert_int_equal(strlen(name), strlen("my-gitops_repo.d-") + 8);
	assert_int_equal(applyset_name_check(name, NULL), 0);
	/* the same directory by another spelling has the same name */
	_cleanup_free_ char *again_path = xasprintf("%s/./", dir);
	_cleanup_free_ char *again = applyset_default_name(again_path, NULL);
	assert_string_equal(again, name);
	/* a file loses its suffix; a long base is cut at 40 */
	_cleanup_free_ char *file = xasprintf("%s/web.yaml", dir);
	assert_int_equal(file_write_atomic(file, "x", 1, 0644, NULL), 0);
	_cleanup_free_ char *fname = applyset_default_name(file, NULL);
	assert_true(strstartswith(fname, "web-"));
	assert_string_not_equal(fname + 4, name + strlen("my-gitops_repo.d-"));
	_cleanup_free_ char *longdir =
	    xasprintf("%s/%s", dir, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(mkdir(longdir, 0755), 0);
	_cleanup_free_ char *lname = applyset_default_name(longdir, NULL);
	assert_int_equal(strlen(lname), 40 + 1 + 8);
	assert_int_equal(applyset_name_check(lname, NULL), 0);
	/* symlinks are not resolved: a git-sync style root (current -> wt-a,
	 * swapped to wt-b) keeps its name across the swap */
	_cleanup_free_ char *wta = xasprintf("%s/wt-a", dir);
	_cleanup_free_ char *wtb = xasprintf("%s/wt-b", dir);
	_cleanup_free_ char *cur = xasprintf("%s/current", dir);
	assert_int_equal(mkdir(wta, 0755), 0);
	assert_int_equal(mkdir(wtb, 0755), 0);
	assert_int_equal(symlink("wt-a", cur), 0);
	_cleanup_free_ char *n_a = applyset_default_name(cur, NULL);
	assert_true(strstartswith(n_a, "current-"));
	assert_int_equal(unlink(cur), 0);
	assert_int_equal(symlink("wt-b", cur), 0);
	_cleanup_free_ char *n_b = applyset_default_name(cur, NULL);
	assert_string_equal(n_a, n_b);
	/* "..", "." and doubled slashes are folded by name, as the path reads */
	_cleanup_free_ char *dotted = xasprintf("%s//wt-a/../current/", dir);
	_cleanup_free_ char *n_dot = applyset_default_name(dotted, NULL);
	assert_string_equal(n_dot, n_a);
	unlink(cur);
	rmdir(wta);
	rmdir(wtb);
	/* a path that does not exist */
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_free_ char *missing = xasprintf("%s/nope", dir);
	assert_null(applyset_default_name(missing, &err));
	assert_int_equal(err.code, ENOENT);
	unlink(file);
	rmdir(longdir);
	rmdir(dir);
}

static void test_label_docs(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = tmp_dir("m");
	_cleanup_free_ char *file = xasprintf("%s/a.yaml", dir);
	const char *text =
	    "apiVersion: keel/v1\nkind: Task\nmetadata: {name: a}\nspec: {image: x}\n"
	    "---\napiVersion: keel/v1\nkind: Task\nmetadata:\n  name: b\n"
	    "  labels: {keel/apply-set: other, app: b}\nspec: {image: x}\n"
	    "---\napiVersion: keel/v1\nkind: Namespace\nmetadata:\n  name: ns1\n"
	    "  labels: {keel/apply-set: mine}\n";
	assert_int_equal(file_write_atomic(file, text, strlen(text), 0644, NULL), 0);
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.check_envelope = true};
	const char *paths[] = {dir};
	assert_int_equal(manifest_set_load(&m, paths, 1, &o), 0);
	assert_int_equal(m.n_docs, 3);
	assert_int_equal(m.n_diags, 0);
	assert_int_equal(applyset_label_docs(&m, "mine"), 1);
	json_t *la = api_obj_labels(m.docs[0].obj);
	assert_string_equal(json_string_value(json_object_get(la, APPLYSET_LABEL)), "mine");
	assert_true(m.docs[1].invalid);
	assert_string_equal(m.diags[0].file, file);
	assert_int_equal(m.diags[0].line, 10);
	assert_non_null(strstr(m.diags[0].message, "apply set \"other\""));
	assert_false(m.docs[2].invalid);
	struct prune_key k = applyset_doc_key(&m.docs[2]);
	assert_string_equal(k.ns, "");
	assert_string_equal(k.name, "ns1");
	manifest_set_validate(&m, NULL);
	k = applyset_doc_key(&m.docs[0]);
	assert_string_equal(k.ns, "default");
	manifest_set_free(&m);
	unlink(file);
	rmdir(dir);
}

/* A live object of set (NULL: with other labels only). */
static json_t *in_set(const char *kind, const char *ns, const char *name, const char *set)
{
	json_t *o = obj(kind, ns, name);
	json_t *labels = json_pack("{s:s}", "app", name);
	if (set)
		json_object_set_new(labels, APPLYSET_LABEL, json_string(set));
	json_object_set_new(json_object_get(o, "metadata"), "labels", labels);
	return o;
}

static void test_live_owner(void **state)
{
	(void)state;
	json_t *objs = json_array();
	json_array_append_new(objs, in_set("Task", "default", "shared", "a"));
	json_array_append_new(objs, in_set("Task", "shop", "shared", "b"));
	json_array_append_new(objs, in_set("Namespace", NULL, "shop", "a"));
	json_array_append_new(objs, in_set("Task", "default", "plain", NULL));
	json_array_append_new(objs, in_set("Gadget", "default", "x", "a")); /* unknown kind */
	struct applyset_live l = {0};
	applyset_live_init(&l, objs);
	struct prune_key shared = {K("Task"), "default", "shared"};
	struct prune_key shop_shared = {K("Task"), "shop", "shared"};
	struct prune_key ns = {K("Namespace"), "", "shop"};
	struct prune_key ns_null = {K("Namespace"), NULL, "shop"};
	struct prune_key dep = {K("Deployment"), "default", "shared"};
	struct prune_key plain = {K("Task"), "default", "plain"};
	struct prune_key absent = {K("Task"), "default", "nope"};
	assert_string_equal(applyset_live_owner(&l, &shared), "a");
	assert_string_equal(applyset_live_owner(&l, &shop_shared), "b");
	/* cluster-scoped: "" and NULL are the same namespace */
	assert_string_equal(applyset_live_owner(&l, &ns), "a");
	assert_string_equal(applyset_live_owner(&l, &ns_null), "a");
	/* the kind is part of the identity */
	assert_null(applyset_live_owner(&l, &dep));
	assert_null(applyset_live_owner(&l, &plain));
	assert_null(applyset_live_owner(&l, &absent));
	assert_null(applyset_live_owner(NULL, &shared));

	/* the members of a set, for the prune: by label, whatever the kind */
	_cleanup_json_ json_t *a = applyset_live_members(&l, "a");
	assert_int_equal(json_array_size(a), 3);
	_cleanup_json_ json_t *none = applyset_live_members(&l, "zzz");
	assert_int_equal(json_array_size(none), 0);
	struct prune_plan p = {0};
	struct prune_key keep[] = {{K("Namespace"), "", "shop"}};
	prune_plan_build(&p, a, keep, ARRAY_SIZE(keep));
	_cleanup_free_ char *plan = plan_str(&p);
	assert_string_equal(plan, "task/default/shared"); /* not b's task/shop/shared */
	prune_plan_free(&p);
	applyset_live_free(&l);
	assert_null(l.objs);
	applyset_live_free(&l);
	applyset_live_free(NULL);
}

static void test_check_owner(void **state)
{
	(void)state;
	json_t *objs = json_array();
	json_array_append_new(objs, in_set("Task", "default", "shared", "a-1234abcd"));
	json_array_append_new(objs, in_set("Task", "default", "mine", "b-5678abcd"));
	struct applyset_live l = {0};
	applyset_live_init(&l, objs);
	struct prune_key shared = {K("Task"), "default", "shared"};
	struct prune_key mine = {K("Task"), "default", "mine"};
	struct prune_key unlabelled = {K("Task"), "default", "new"};
	const char *other = NULL;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	/* ours, or not in any set (adopted): fine, nothing said */
	assert_int_equal(applyset_check_owner(&l, &mine, "b-5678abcd", false, &other, &err), 0);
	assert_int_equal(applyset_check_owner(&l, &unlabelled, "b-5678abcd", false, &other, &err),
	                 0);
	assert_null(other);
	assert_null(err.msg);
	/* another set's: refused, naming both sets and the ways out */
	assert_int_equal(applyset_check_owner(&l, &shared, "b-5678abcd", false, &other, &err),
	                 -EEXIST);
	assert_string_equal(other, "a-1234abcd");
	assert_int_equal(err.code, EEXIST);
	assert_string_equal(err.msg, "task/shared belongs to apply set \"a-1234abcd\", not "
	                             "\"b-5678abcd\": delete it from \"a-1234abcd\" first, or "
	                             "give --overwrite-set to move it to \"b-5678abcd\"");
	/* with overwrite: moved, and which set it leaves is said */
	other = NULL;
	assert_int_equal(applyset_check_owner(&l, &shared, "b-5678abcd", true, &other, NULL), 1);
	assert_string_equal(other, "a-1234abcd");
	/* without a list (plain apply), nothing is checked */
	assert_int_equal(applyset_check_owner(NULL, &shared, "b-5678abcd", false, NULL, NULL), 0);
	applyset_live_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_keep),
	    cmocka_unit_test(test_keys_match_kind_namespace_name),
	    cmocka_unit_test(test_skips_terminating_unknown_and_default),
	    cmocka_unit_test(test_namespace_guard),
	    cmocka_unit_test(test_namespace_guard_reasons),
	    cmocka_unit_test(test_ranks),
	    cmocka_unit_test(test_name_check),
	    cmocka_unit_test(test_default_name),
	    cmocka_unit_test(test_label_docs),
	    cmocka_unit_test(test_live_owner),
	    cmocka_unit_test(test_check_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
