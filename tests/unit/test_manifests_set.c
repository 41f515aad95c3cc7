/* Unit tests for manifests/manifest: reading a tree of manifest files into
 * one set, with every problem a diagnostic at FILE:LINE:COL attributed to
 * its file (what `keel sync` uses to leave a broken file's objects alone),
 * validation as the server does it, duplicates, apply order, and the text
 * and JSON forms of a diagnostic (`keel lint`). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/meta.h"
#include "common/util.h"
#include "manifests/manifest.h"

static char *root;

static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", root, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	_cleanup_free_ char *cmd = xasprintf("mkdir -p '%s'", path);
	assert_int_equal(system(cmd), 0);
	*slash = '/';
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0644, NULL), 0);
}

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("KEEL_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0755);
	root = xasprintf("%s/keel-mset-XXXXXX", base);
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	_cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(root);
	root = NULL;
	return 0;
}

#define TASK(name) "apiVersion: keel/v1\nkind: Task\nmetadata: {name: " name "}\nspec: {image: x}\n"
#define NS(name)   "apiVersion: keel/v1\nkind: Namespace\nmetadata: {name: " name "}\n"

static bool only_yaml(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && strcmp(name + n - 5, ".yaml") == 0;
}

static void test_walk(void **state)
{
	(void)state;
	put("b.yaml", TASK("b"));
	put("a.yml", TASK("a"));
	put("c.json",
	    "{\"apiVersion\":\"keel/v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"c\"}}");
	put(".hidden.yaml", TASK("hidden"));
	put("notes.txt", "not a manifest");
	put("sub/d.yaml", TASK("d"));
	put(".git/e.yaml", TASK("e"));
	const char *paths[] = {root};
	struct manifest_set m = {0};
	struct manifest_load_opts flat = {.check_envelope = true};
	assert_int_equal(manifest_set_load(&m, paths, 1, &flat), 0);
	assert_int_equal(m.n_files, 3); /* a.yml b.yaml c.json, sorted; no sub/ */
	assert_true(strstr(m.files[0].path, "/a.yml") != NULL);
	assert_true(strstr(m.files[2].path, "/c.json") != NULL);
	manifest_set_free(&m);

	struct manifest_load_opts rec = {.recursive = true, .accept = only_yaml};
	assert_int_equal(manifest_set_load(&m, paths, 1, &rec), 0);
	assert_int_equal(m.n_files, 2); /* b.yaml sub/d.yaml; never .git or dotfiles */
	assert_true(strstr(m.files[1].path, "/sub/d.yaml") != NULL);
	assert_int_equal(m.n_docs, 2);
	assert_null(m.docs[0].kind); /* envelope not checked */
	manifest_set_free(&m);
	assert_int_equal(m.n_files, 0);
}

static void test_errors_per_file(void **state)
{
	(void)state;
	put("1-good.yaml", NS("shop") "---\n" TASK("t"));
	put("2-syntax.yaml", "apiVersion: keel/v1\nkind: [\n");
	put("3-invalid.yaml",
	    "apiVersion: keel/v1\nkind: Task\nmetadata: {name: v}\nspec:\n  imag: x\n");
	put("4-kind.yaml", "apiVersion: keel/v1\nkind: Tsak\nmetadata: {name: k}\n");
	put("5-warn.yaml", TASK("w") "  # comment\n"
	                             "---\napiVersion: keel/v1\nkind: Node\n"
	                             "metadata: {name: n1}\nspec: {unschedulable: no}\n");
	const char *paths[] = {root, "/nonexistent/x"};
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.recursive = true, .check_envelope = true};
	size_t load_errors = manifest_set_load(&m, paths, 2, &o);
	assert_int_equal(load_errors, 3); /* missing path, syntax, unknown kind */
	size_t v = manifest_set_validate(&m, NULL);
	assert_int_equal(v, 3); /* spec.imag, spec.image required, unschedulable "no" */
	assert_int_equal(m.n_errors, 6);
	assert_int_equal(m.n_warnings, 1); /* the plain "no" */
	assert_int_equal(m.n_files, 5);
	assert_int_equal(m.files[0].n_errors, 0);
	assert_int_equal(m.files[1].n_errors, 1);
	assert_null(m.files[1].stream);
	assert_int_equal(m.files[2].n_errors, 2);
	assert_int_equal(m.files[3].n_errors, 1);
	assert_int_equal(m.files[4].n_errors, 1);
	/* the missing path: no file, no position */
	assert_int_equal(m.diags[0].file_i, MANIFEST_NO_FILE);
	assert_int_equal(m.diags[0].line, 0);
	_cleanup_free_ char *t0 = manifest_diag_format(&m.diags[0]);
	assert_string_equal(t0, "error: the path \"/nonexistent/x\" does not exist");
	/* the YAML error has its position split out of the parser's message */
	const struct manifest_diag *syn = NULL, *imag = NULL, *warn = NULL;
	for (size_t i = 0; i < m.n_diags; i++) {
		if (m.diags[i].file_i == 1)
			syn = &m.diags[i];
		if (m.diags[i].field && streq(m.diags[i].field, "spec.imag"))
			imag = &m.diags[i];
		if (m.diags[i].severity == MANIFEST_WARNING)
			warn = &m.diags[i];
	}
	if (!syn || !imag || !warn) /* (a return gcc sees, for -Wnull-dereference) */
		fail_msg("missing diagnostics: syntax %p, spec.imag %p, warning %p", (void *)syn,
		         (void *)imag, (void *)warn);
	if (!syn || !imag || !warn)
		return;
	assert_int_equal(syn->line, 3);
	assert_false(strstartswith(syn->message, syn->file));
	assert_int_equal(imag->line, 5);
	assert_int_equal(imag->col, 3);
	_cleanup_free_ char *ti = manifest_diag_format(imag);
	_cleanup_free_ char *want = xasprintf(
	    "%s/3-invalid.yaml:5:3: spec.imag: unknown field, did you mean spec.image?", root);
	assert_string_equal(ti, want);
	assert_non_null(warn);
	_cleanup_free_ char *tw = manifest_diag_format(warn);
	assert_non_null(strstr(tw, ": warning: \"no\" is a string"));
	_cleanup_json_ json_t *j = manifest_diag_json(imag);
	assert_string_equal(json_string_value(json_object_get(j, "severity")), "error");
	assert_string_equal(json_string_value(json_object_get(j, "field")), "spec.imag");
	assert_int_equal(json_integer_value(json_object_get(j, "line")), 5);
	assert_int_equal(json_integer_value(json_object_get(j, "column")), 3);
	_cleanup_json_ json_t *jw = manifest_diag_json(warn);
	assert_true(json_is_null(json_object_get(jw, "field")));
	manifest_set_free(&m);
}

static void test_duplicates_and_order(void **state)
{
	(void)state;
	put("a.yaml", TASK("t") "---\n" TASK("u"));
	put("b.yaml", "apiVersion: keel/v1\nkind: Task\nmetadata: {name: t, namespace: default}\n"
	              "spec: {image: busybox}\n---\n" NS("z") "---\n" TASK("other"));
	const char *paths[] = {root};
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.check_envelope = true};
	assert_int_equal(manifest_set_load(&m, paths, 1, &o), 0);
	assert_int_equal(manifest_set_validate(&m, NULL), 0);
	/* an error at both places, each naming the other: neither copy wins */
	assert_int_equal(manifest_set_check_duplicates(&m, NULL), 2);
	assert_true(m.docs[0].invalid);
	assert_true(m.docs[2].invalid);
	assert_false(m.docs[1].invalid);
	assert_int_equal(m.files[0].n_errors, 1);
	assert_int_equal(m.files[1].n_errors, 1);
	_cleanup_free_ char *at_b =
	    xasprintf("task/t: defined twice (also at %s/b.yaml:1:1)", root);
	_cleanup_free_ char *at_a =
	    xasprintf("task/t: defined twice (also at %s/a.yaml:1:1)", root);
	assert_string_equal(m.diags[0].message, at_b);
	assert_string_equal(m.diags[0].file, m.files[0].path);
	assert_string_equal(m.diags[1].message, at_a);
	assert_string_equal(manifest_doc_namespace(&m.docs[0], NULL), "default");
	assert_string_equal(manifest_doc_namespace(&m.docs[3], NULL), "");
	size_t n = 0;
	_cleanup_free_ size_t *order = manifest_set_apply_order(&m, &n);
	assert_int_equal(n, 5);
	assert_int_equal(order[0], 3); /* the Namespace first */
	assert_int_equal(order[1], 0);
	assert_int_equal(order[4], 4);
	manifest_set_free(&m);
}

static void test_validation_sees_defaults(void **state)
{
	(void)state;
	/* progressDeadlineSeconds defaults to 600, which must exceed
	 * minReadySeconds: the server refuses this, so must the offline check */
	put("d.yaml", "apiVersion: keel/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
	              "  minReadySeconds: 700\n  template:\n    metadata: {labels: {app: d}}\n"
	              "    spec: {image: x}\n");
	const char *paths[] = {root};
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.check_envelope = true};
	assert_int_equal(manifest_set_load(&m, paths, 1, &o), 0);
	assert_int_equal(manifest_set_validate(&m, NULL), 1);
	/* and the document itself is not defaulted */
	assert_null(json_object_get(json_object_get(m.docs[0].obj, "spec"), "replicas"));
	manifest_set_free(&m);
}

/* Files that are not regular files are refused at their path without being
 * opened in a blocking way (a FIFO nobody writes to would hang the load),
 * and a file over the size limit is refused by its size. */
static void test_special_files(void **state)
{
	(void)state;
	put("a.yaml", NS("ok"));
	_cleanup_free_ char *fifo = xasprintf("%s/pipe.yaml", root);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	_cleanup_free_ char *zero = xasprintf("%s/zero.yaml", root);
	assert_int_equal(symlink("/dev/zero", zero), 0);
	_cleanup_free_ char *big = xasprintf("%s/big.yaml", root);
	FILE *f = fopen(big, "we");
	assert_non_null(f);
	assert_int_equal(fseek(f, MANIFEST_MAX_FILE_BYTES, SEEK_SET), 0);
	assert_int_equal(fputc('#', f), '#');
	fclose(f);
	const char *paths[] = {root};
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.recursive = true, .check_envelope = true};
	assert_int_equal(manifest_set_load(&m, paths, 1, &o), 3);
	assert_int_equal(m.n_files, 4); /* a big pipe zero */
	assert_int_equal(m.n_docs, 1);
	assert_int_equal(m.files[0].n_errors, 0);
	for (size_t i = 1; i < 4; i++) {
		assert_int_equal(m.files[i].n_errors, 1);
		assert_null(m.files[i].stream);
	}
	assert_string_equal(m.diags[0].file, big);
	assert_non_null(strstr(m.diags[0].message, "larger than the 3 MiB limit"));
	assert_non_null(strstr(m.diags[1].message, "not a regular file (a FIFO)"));
	assert_non_null(strstr(m.diags[2].message, "not a regular file (a character device)"));
	manifest_set_free(&m);
}

static bool owned_by_b(void *ud, const struct manifest_doc *d)
{
	(void)ud;
	return strstr(d->file, "/b.yaml") != NULL;
}

/* keel sync: the file that defined an object before keeps it; a new copy
 * elsewhere is the error. With no owner (or two), both are errors. */
static void test_duplicates_owner(void **state)
{
	(void)state;
	put("a.yaml", TASK("t"));
	put("b.yaml", TASK("t"));
	const char *paths[] = {root};
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.check_envelope = true};
	assert_int_equal(manifest_set_load(&m, paths, 1, &o), 0);
	assert_int_equal(manifest_set_validate(&m, NULL), 0);
	assert_int_equal(manifest_set_check_duplicates_owned(&m, NULL, owned_by_b, NULL), 1);
	assert_true(m.docs[0].invalid);
	assert_false(m.docs[1].invalid);
	assert_int_equal(m.files[1].n_errors, 0);
	_cleanup_free_ char *want = xasprintf(
	    "task/t: already defined at %s/b.yaml:1:1, the file that defined it before; this "
	    "copy is not applied",
	    root);
	assert_string_equal(m.diags[0].message, want);
	manifest_set_free(&m);
}

/* A dangling symlink found in a tree is a warning, not an error: the file
 * is listed as skipped, with no errors (keel sync keeps what it held). */
static void test_dangling_symlink(void **state)
{
	(void)state;
	put("a.yaml", NS("ok"));
	_cleanup_free_ char *link = xasprintf("%s/b.yaml", root);
	assert_int_equal(symlink("nowhere.yaml", link), 0);
	const char *paths[] = {root};
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.recursive = true, .check_envelope = true};
	assert_int_equal(manifest_set_load(&m, paths, 1, &o), 0);
	assert_int_equal(m.n_files, 2);
	assert_false(m.files[0].skipped);
	assert_true(m.files[1].skipped);
	assert_int_equal(m.files[1].n_errors, 0);
	assert_int_equal(m.n_warnings, 1);
	assert_int_equal(m.diags[0].severity, MANIFEST_WARNING);
	assert_int_equal(m.diags[0].file_i, 1);
	_cleanup_free_ char *msg = xasprintf("%s: skipped: dangling symlink to nowhere.yaml", link);
	assert_string_equal(m.diags[0].message, msg);
	_cleanup_free_ char *text = manifest_diag_format(&m.diags[0]);
	_cleanup_free_ char *want = xasprintf("warning: %s", msg);
	assert_string_equal(text, want);
	/* the log form has no severity word: the logger adds the level */
	_cleanup_free_ char *bare = manifest_diag_format_bare(&m.diags[0]);
	assert_string_equal(bare, want + strlen("warning: "));
	manifest_set_free(&m);
}

/* A diagnostic is one line, whatever the manifest's strings hold: a kind
 * folded over two lines, a tab, an escape sequence (ESC, or the C1 CSI) are
 * shown escaped, never written to the terminal as they are. Found by
 * fuzz_manifest. */
static void test_diag_one_line(void **state)
{
	(void)state;
	put("k.yaml", "apiVersion: keel/v1\nkind: T\tk\n\n  i\nmetadata: {name: k}\n---\n"
	              "apiVersion: keel/v1\nkind: Task\nmetadata: {name: t}\n"
	              "spec: {image: x, restartPolicy: \"\\e[31mred\\u009b\"}\n");
	const char *paths[] = {root};
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.check_envelope = true};
	assert_int_equal(manifest_set_load(&m, paths, 1, &o), 1);
	assert_int_equal(manifest_set_validate(&m, NULL), 1);
	assert_int_equal(m.n_diags, 2);
	assert_string_equal(m.diags[0].message,
	                    "kind: unknown kind \"T\\tk\\ni\" (known: Deployment, Event, Namespace, "
	                    "Node, Task)");
	assert_int_equal(m.diags[0].line, 2);
	assert_string_equal(m.diags[1].field, "spec.restartPolicy");
	assert_non_null(strstr(m.diags[1].message, "\"\\x1B[31mred\\u009B\""));
	for (size_t i = 0; i < m.n_diags; i++) {
		_cleanup_free_ char *line = manifest_diag_format(&m.diags[i]);
		for (const char *p = line; *p; p++)
			assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	}
	manifest_set_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors_per_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicates_and_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_validation_sees_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_special_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicates_owner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dangling_symlink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_diag_one_line, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
