/*
 * cli_delete: `keel delete KIND NAME...` and `keel delete -f PATH`. With
 * manifests, objects go in the reverse of apply's order — other kinds in
 * reverse file order first, Namespaces last — so nothing is left pointing
 * into a namespace that is already gone. Deleting by manifest needs only
 * kind, name and namespace of each document, so documents are not
 * validated beyond that: a manifest that no longer validates can still be
 * deleted. The same object named twice (kind, namespace, name) is an
 * error, as for apply and diff: one of the two places is surely a mistake.
 */
#include "cli/cli_internal.h"

#include <errno.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"

struct delete_flags {
	struct cli_strv files;
	bool recursive;
	const char *ns;
	bool ignore_not_found;
	bool dry_run;
	const char *cascade;
	const char *propagation;
};

static int parse_cascade(struct delete_flags *f)
{
	static const struct {
		const char *flag, *policy;
	} t[] = {{"background", "Background"},
	         {"true", "Background"},
	         {"orphan", "Orphan"},
	         {"false", "Orphan"},
	         {"foreground", "Foreground"}};
	if (!f->cascade)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (streq(f->cascade, t[i].flag)) {
			f->propagation = t[i].policy;
			return 0;
		}
	fprintf(stderr, "error: --cascade must be background, orphan or foreground, not \"%s\"\n",
	        f->cascade);
	return -EINVAL;
}

/* Returns 0, 1 (not found and ignored), or -errno after printing. */
static int delete_one(struct client *c, const struct delete_flags *f, const struct api_kind *k,
                      const char *ns, const char *name, const char *where, struct kerr *err)
{
	struct client_query q = {.dry_run = f->dry_run, .propagation = f->propagation};
	int r = client_delete(c, k, ns, name, &q, NULL, err);
	if (r == -ENOENT && f->ignore_not_found)
		return 1;
	if (r < 0) {
		_cleanup_free_ char *prefix = where ? xasprintf("%s: ", where) : NULL;
		cli_report(err, prefix);
		return r;
	}
	printf("%s/%s deleted%s\n", k->singular, name, f->dry_run ? " (dry run)" : "");
	fflush(stdout);
	return 0;
}

static int delete_names(struct client *c, const struct delete_flags *f, const struct cli_strv *pos)
{
	const struct api_kind *k = cli_kind(pos->v[0]);
	if (!k)
		return CLI_USAGE;
	if (pos->n < 2) {
		fprintf(stderr, "error: keel delete %s needs at least one NAME (or use -f PATH)\n",
		        pos->v[0]);
		return CLI_USAGE;
	}
	int code = CLI_OK;
	const char *ns = f->ns ? f->ns : "default";
	for (size_t i = 1; i < pos->n; i++) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (delete_one(c, f, k, ns, pos->v[i], NULL, &err) < 0) {
			code = CLI_FAIL;
			if (cli_error_is_fatal(&err))
				break;
		}
	}
	return code;
}

static int delete_files(struct client *c, const struct delete_flags *f)
{
	struct manifest_set m = {0};
	size_t errors = cli_manifests_load(&f->files, f->recursive, true, &m);
	if (errors + cli_check_duplicates(&m, f->ns) > 0) {
		manifest_set_free(&m);
		fprintf(stderr, "error: the manifests have errors; nothing was deleted\n");
		return CLI_FAIL;
	}
	size_t n = 0;
	_cleanup_free_ size_t *order = manifest_set_apply_order(&m, &n);
	int code = CLI_OK;
	for (size_t i = n; i-- > 0;) {
		const struct manifest_doc *d = &m.docs[order[i]];
		const char *ns = api_obj_namespace(d->obj);
		if (ns && f->ns && !streq(ns, f->ns)) {
			cli_doc_error(
			    d, "metadata.namespace",
			    "the namespace from the manifest (\"%s\") does not match -n (\"%s\")",
			    ns, f->ns);
			code = CLI_FAIL;
			continue;
		}
		if (!ns)
			ns = f->ns ? f->ns : "default";
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		_cleanup_free_ char *where = manifest_doc_where(d, NULL);
		if (delete_one(c, f, d->kind, ns, api_obj_name(d->obj), where, &err) < 0) {
			code = CLI_FAIL;
			if (cli_error_is_fatal(&err))
				break;
		}
	}
	manifest_set_free(&m);
	return code;
}

static int run_delete(struct delete_flags *f, const struct cli_strv *pos)
{
	if (parse_cascade(f) < 0)
		return CLI_USAGE;
	if (f->files.n > 0 && pos->n > 0) {
		fprintf(stderr, "error: give either KIND NAME... or -f PATH, not both\n");
		return CLI_USAGE;
	}
	if (f->files.n == 0 && pos->n == 0) {
		fprintf(stderr, "error: you must specify KIND NAME... or -f PATH\n");
		return CLI_USAGE;
	}
	if (pos->n > 0 && !api_kind_resolve(pos->v[0]))
		return cli_kind(pos->v[0]) ? CLI_FAIL : CLI_USAGE;
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	return f->files.n > 0 ? delete_files(c, f) : delete_names(c, f, pos);
}

int cli_cmd_delete(int argc, char **argv)
{
	struct delete_flags f = {0};
	const struct cli_opt opts[] = {
	    {"filename", 'f', CLI_OPT_LIST, &f.files, "PATH",
	     "delete the objects of these manifests (repeatable; - for stdin)"},
	    {"recursive", 'R', CLI_OPT_BOOL, &f.recursive, NULL, "read directories recursively"},
	    {"namespace", 'n', CLI_OPT_STRING, &f.ns, "NS", "namespace (default \"default\")"},
	    {"ignore-not-found", 0, CLI_OPT_BOOL, &f.ignore_not_found, NULL,
	     "treat a missing object as deleted"},
	    {"cascade", 0, CLI_OPT_STRING, &f.cascade, "MODE",
	     "background|orphan|foreground: what happens to dependents"},
	    {"dry-run", 0, CLI_OPT_BOOL, &f.dry_run, NULL, "let the server check, delete nothing"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("delete", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_delete(&f, &pos);
	cli_strv_free(&pos);
	cli_strv_free(&f.files);
	return code;
}
