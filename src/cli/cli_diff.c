/*
 * cli_diff: `keel diff`. The server is the only one who knows what an
 * apply would do (defaulting, the merge with fields other managers own), so
 * each document is sent as a dry-run apply and the answer is compared with
 * the live object, both as YAML, with the fields that change on every
 * write (managedFields, resourceVersion, generation) left out. Exit status
 * as diff(1) and kubectl diff: 0 same, 1 different, 2 (>1) trouble.
 * An object in a Namespace the same manifests create (and that does not
 * exist yet) cannot be dry-run; it is shown as written, wholly added.
 * With --prune (or --set), the documents carry the apply set's label as
 * `apply --prune` would send them, and with --prune each object apply
 * would prune is shown as wholly removed (live against nothing). The
 * objects of every apply set are listed once, as apply does: a document
 * whose live object belongs to another set is the error apply would print
 * (unless --overwrite-set), and since apply would then not prune, neither
 * does the prune part show anything when a document failed.
 */
#include "cli/cli_internal.h"

#include <errno.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "manifests/yaml.h"
#include "sync/applyset.h"

#define DIFF_ERROR 2

struct diff_flags {
	struct cli_strv files;
	bool recursive;
	const char *ns;
	const char *field_manager;
	bool prune;
	const char *set;
	bool overwrite_set;
};

static int print_diff(const struct api_kind *k, const char *ns, const char *name, json_t *live,
                      json_t *merged);

static char *normalized_yaml(json_t *obj)
{
	if (!obj)
		return xstrdup("");
	_cleanup_json_ json_t *c = json_deep_copy(obj);
	json_t *meta = json_object_get(c, "metadata");
	json_object_del(meta, "managedFields");
	json_object_del(meta, "resourceVersion");
	json_object_del(meta, "generation");
	return yaml_emit(c);
}

/* True when err is the server's "namespace not found" for ns and the
 * manifests define that Namespace: the object would be created in it. */
static bool in_new_namespace(const struct manifest_set *m, const char *ns, const struct kerr *err)
{
	if (!ns || err->code != ENOENT)
		return false;
	_cleanup_free_ char *want = xasprintf("namespaces \"%s\" not found", ns);
	if (!streq(err->msg, want))
		return false;
	for (size_t i = 0; i < m->n_docs; i++)
		if (m->docs[i].kind && streq(m->docs[i].kind->kind, "Namespace") &&
		    streq(api_obj_name(m->docs[i].obj), ns))
			return true;
	return false;
}

/* Returns 0 same, 1 different, <0 error (printed). With set, sets holds
 * the objects of every apply set. */
static int diff_one(struct client *c, const struct manifest_set *m, const struct manifest_doc *d,
                    const struct diff_flags *f, const char *set, const struct applyset_live *sets)
{
	const char *ns = api_obj_namespace(d->obj);
	const char *name = api_obj_name(d->obj);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *live = NULL, *merged = NULL;
	_cleanup_free_ char *where = manifest_doc_where(d, NULL);
	_cleanup_free_ char *prefix = xasprintf("%s: ", where);
	if (set) {
		struct prune_key key = applyset_doc_key(d);
		if (applyset_check_owner(sets, &key, set, f->overwrite_set, NULL, &err) < 0) {
			fprintf(stderr, "%serror: %s\n", prefix, kerr_msg(&err));
			return -err.code;
		}
	}
	int r = client_get(c, d->kind, ns, name, &live, &err);
	if (r < 0 && r != -ENOENT) {
		cli_report(&err, prefix);
		return r;
	}
	kerr_clear(&err);
	struct client_query q = {.dry_run = true, .field_manager = f->field_manager};
	r = client_apply(c, d->kind, ns, d->obj, &q, &merged, NULL, &err);
	if (r < 0 && in_new_namespace(m, ns, &err)) {
		fprintf(stderr,
		        "%snote: namespace \"%s\" does not exist yet (the manifests create it), so "
		        "the server could not compute this object; shown as written\n",
		        prefix, ns);
		merged = json_incref(d->obj);
		r = 0;
	}
	if (r < 0) {
		cli_report(&err, prefix);
		cli_doc_report_causes(d, &err);
		return r;
	}
	return print_diff(d->kind, ns, name, live, merged);
}

/* Prints the diff of live against merged (NULL: absent); 1 when they
 * differ, else 0. */
static int print_diff(const struct api_kind *k, const char *ns, const char *name, json_t *live,
                      json_t *merged)
{
	_cleanup_free_ char *a = normalized_yaml(live);
	_cleanup_free_ char *b = normalized_yaml(merged);
	_cleanup_free_ char *id = k->namespaced ? xasprintf("%s/%s/%s", k->plural, ns, name)
	                                        : xasprintf("%s/%s", k->plural, name);
	_cleanup_free_ char *la = xasprintf("live/%s", id);
	_cleanup_free_ char *lb = xasprintf("merged/%s", id);
	_cleanup_sbuf_ struct sbuf out = SBUF_INIT;
	if (!cli_diff_text(a, b, la, lb, &out))
		return 0;
	fputs(out.data, stdout);
	fflush(stdout);
	return 1;
}

/* What apply --prune would delete, each shown wholly removed. Returns 0
 * nothing, 1 something, <0 an error (printed). */
static int diff_prune(struct client *c, const struct manifest_set *m, const char *set,
                      const struct applyset_live *sets)
{
	struct prune_key *keys = xcalloc(m->n_docs + 1, sizeof(*keys));
	size_t n = 0;
	for (size_t i = 0; i < m->n_docs; i++)
		if (m->docs[i].kind)
			keys[n++] = applyset_doc_key(&m->docs[i]);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct prune_plan plan = {0};
	int r = applyset_plan_prune(c, sets, set, keys, n, &plan, &err);
	free(keys);
	if (r < 0) {
		cli_report(&err, "error: cannot list the apply set: ");
		return r;
	}
	int differs = 0;
	for (size_t i = 0; i < plan.n; i++) {
		const struct prune_item *it = &plan.items[i];
		if (it->action == PRUNE_KEEP) {
			fprintf(stderr, "warning: %s/%s would not be pruned: %s\n",
			        it->kind->singular, it->name, it->reason);
			continue;
		}
		differs |= print_diff(it->kind, it->ns, it->name, it->obj, NULL);
	}
	prune_plan_free(&plan);
	return differs;
}

/* Diffs every document, then with --prune what apply would prune.
 * Returns the exit code. */
static int diff_all(struct client *c, const struct manifest_set *m, const struct diff_flags *f,
                    const char *set, struct applyset_live *sets)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (set && applyset_live_list(c, sets, &err) < 0) {
		cli_report(&err, "error: cannot list the objects of apply sets: ");
		return DIFF_ERROR;
	}
	int code = CLI_OK;
	size_t failed = 0;
	for (size_t i = 0; i < m->n_docs; i++) {
		int r = diff_one(c, m, &m->docs[i], f, set, sets);
		if (r < 0) {
			code = DIFF_ERROR;
			failed++;
			if (r == -ECONNREFUSED || r == -EACCES || r == -EHOSTUNREACH)
				return code;
		} else if (r > 0 && code == CLI_OK) {
			code = CLI_FAIL;
		}
	}
	if (!f->prune)
		return code;
	if (failed > 0) {
		fprintf(stderr,
		        "error: not showing what apply --prune would prune: %zu document%s failed, "
		        "and apply does not prune apply set \"%s\" then\n",
		        failed, failed == 1 ? "" : "s", set);
		return code;
	}
	int r = diff_prune(c, m, set, sets);
	if (r < 0)
		code = DIFF_ERROR;
	else if (r > 0 && code == CLI_OK)
		code = CLI_FAIL;
	return code;
}

static int run_diff(const struct diff_flags *f, const struct cli_strv *pos)
{
	if (pos->n > 0 || f->files.n == 0) {
		fprintf(stderr,
		        "error: usage: keel diff -f PATH [-f PATH...] [-R] [--prune] [--set NAME] "
		        "[--overwrite-set]\n");
		return CLI_USAGE;
	}
	if (f->overwrite_set && !f->prune && !f->set) {
		fprintf(stderr, "error: --overwrite-set only makes sense with --prune or --set\n");
		return CLI_USAGE;
	}
	int code = CLI_OK;
	_cleanup_free_ char *set = NULL;
	if ((f->prune || f->set) && !(set = cli_applyset_name(f->set, &f->files, &code)))
		return code == CLI_USAGE ? CLI_USAGE : DIFF_ERROR;
	struct manifest_set m = {0};
	size_t errors = cli_manifests_load(&f->files, f->recursive, true, &m);
	if (set) {
		size_t from = m.n_diags;
		errors += applyset_label_docs(&m, set);
		cli_print_diags(&m, from);
	}
	errors += cli_validate_docs(&m, f->ns);
	errors += cli_check_duplicates(&m, f->ns);
	if (errors > 0) {
		fprintf(stderr, "error: %zu error%s in the manifests\n", errors,
		        errors == 1 ? "" : "s");
		manifest_set_free(&m);
		return DIFF_ERROR;
	}
	struct client *c = cli_client();
	struct applyset_live sets = {0};
	code = c ? diff_all(c, &m, f, set, &sets) : DIFF_ERROR;
	applyset_live_free(&sets);
	manifest_set_free(&m);
	return code;
}

int cli_cmd_diff(int argc, char **argv)
{
	struct diff_flags f = {0};
	const struct cli_opt opts[] = {
	    {"filename", 'f', CLI_OPT_LIST, &f.files, "PATH",
	     "manifest file, directory, or - for stdin (repeatable)"},
	    {"recursive", 'R', CLI_OPT_BOOL, &f.recursive, NULL, "read directories recursively"},
	    {"namespace", 'n', CLI_OPT_STRING, &f.ns, "NS",
	     "namespace for documents that name none"},
	    {"field-manager", 0, CLI_OPT_STRING, &f.field_manager, "NAME",
	     "field manager name (default " CLIENT_DEFAULT_FIELD_MANAGER ")"},
	    {"prune", 0, CLI_OPT_BOOL, &f.prune, NULL,
	     "also show the objects apply --prune would delete"},
	    {"set", 0, CLI_OPT_STRING, &f.set, "NAME",
	     "apply set name, as given to apply (default: from the path)"},
	    {"overwrite-set", 0, CLI_OPT_BOOL, &f.overwrite_set, NULL,
	     "as given to apply: objects of another apply set would move into this one"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("diff", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_diff(&f, &pos);
	cli_strv_free(&pos);
	cli_strv_free(&f.files);
	return code;
}
