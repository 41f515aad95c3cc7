/*
 * cli_apply: `keel apply`. Phases, so that a bad document never leaves
 * half a set applied: (1) read and parse every file, (2) validate every
 * document locally with the same api_validate the server runs, and stop
 * with nothing written if any fails, (3) a server-side dry run of every
 * document (the server knows more: sizes, namespaces, a full store), again
 * stopping with nothing written if any fails, (4) server-side apply,
 * Namespaces first (the rest may live in them), then the rest in file
 * order, and (5) with --prune, deleting the apply set's objects that the
 * manifests no longer define (src/sync/applyset.h), in reverse dependency
 * order — only when every object applied.
 *
 * With an apply set (--prune or --set), the objects of every set are
 * listed once before phase 3: an object whose live label names another
 * set fails phase 3 (it is not sent; --overwrite-set moves it instead),
 * and the same list gives phase 5 the set's objects.
 *
 * A document in a Namespace the same apply creates cannot be dry-run (the
 * namespace does not exist yet); it is checked only locally. Errors the
 * server still reports in phase 4 for one object (a conflict that raced
 * in) are printed at that document's file:line and the others go on; the
 * exit code then is 1. A full store (507) or an unreachable server stops
 * at once. The mechanism is keel_sync's (manifests/manifest.h for 1-2,
 * sync/applyset.h for 3-5); this file is flags and printing.
 */
#include "cli/cli_internal.h"

#include <errno.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "sync/applyset.h"

struct apply_flags {
	struct cli_strv files;
	bool recursive;
	bool dry_run;
	bool wait;
	const char *timeout;
	const char *field_manager;
	const char *ns;
	bool prune;
	const char *set;
	bool allow_empty;
	bool overwrite_set;
};

static void print_failure(const char *prefix, const struct applyset_event *ev)
{
	if (ev->err->code == ENOSPC)
		fprintf(stderr,
		        "%serror: the server's store is full (507 Insufficient Storage): %s\n",
		        prefix, kerr_msg(ev->err));
	else if (ev->http_code >= 400)
		fprintf(stderr, "%sError from server (%s): %s\n", prefix,
		        ev->reason ? ev->reason : "Unknown", kerr_msg(ev->err));
	else
		fprintf(stderr, "%serror: %s\n", prefix, kerr_msg(ev->err));
}

void cli_print_applyset_event(const struct applyset_event *ev, bool quiet)
{
	_cleanup_free_ char *ref = xasprintf("%s/%s", ev->kind->singular, ev->name);
	const char *dry = ev->dry_run ? " (dry run)" : "";
	switch (ev->type) {
	case APPLYSET_APPLIED:
		if (quiet)
			break;
		if (ev->unchecked)
			printf("%s created (dry run; namespace \"%s\" does not exist yet, so the "
			       "server could not check it)",
			       ref, ev->ns);
		else
			printf("%s %s%s", ref, client_apply_result_name(ev->result), dry);
		if (ev->other_set)
			printf(" (moved from apply set \"%s\")", ev->other_set);
		putchar('\n');
		break;
	case APPLYSET_APPLY_FAILED: {
		_cleanup_free_ char *where = manifest_doc_where(ev->doc, NULL);
		_cleanup_free_ char *prefix = xasprintf("%s: ", where);
		if (ev->other_set) {
			fprintf(stderr, "%serror: %s\n", prefix, kerr_msg(ev->err));
			break;
		}
		print_failure(prefix, ev);
		cli_doc_report_causes(ev->doc, ev->err);
		break;
	}
	case APPLYSET_PRUNED:
		if (!quiet)
			printf("%s pruned%s\n", ref, dry);
		break;
	case APPLYSET_PRUNE_FAILED: {
		_cleanup_free_ char *prefix = xasprintf("%s: not pruned: ", ref);
		print_failure(prefix, ev);
		break;
	}
	case APPLYSET_PRUNE_KEPT:
		fprintf(stderr, "warning: %s not pruned: %s\n", ref, ev->reason);
		break;
	}
	fflush(stdout);
}

static void report_loud(void *ud, const struct applyset_event *ev)
{
	(void)ud;
	cli_print_applyset_event(ev, false);
}

static void report_quiet(void *ud, const struct applyset_event *ev)
{
	(void)ud;
	cli_print_applyset_event(ev, true);
}

char *cli_applyset_name(const char *flag_set, const struct cli_strv *files, int *code)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	*code = CLI_USAGE;
	if (flag_set) {
		if (applyset_name_check(flag_set, &err) < 0) {
			fprintf(stderr, "error: --set: %s\n", kerr_msg(&err));
			return NULL;
		}
		return xstrdup(flag_set);
	}
	if (files->n != 1 || streq(files->v[0], "-")) {
		fprintf(stderr, "error: with %s, name the apply set with --set NAME\n",
		        files->n == 1 ? "stdin (-f -)" : "more than one -f");
		return NULL;
	}
	char *name = applyset_default_name(files->v[0], &err);
	if (!name) {
		fprintf(stderr, "error: %s\n", kerr_msg(&err));
		*code = CLI_FAIL;
	}
	return name;
}

/* The keys of every document, for the prune plan. Owned; strings borrowed. */
static struct prune_key *doc_keys(const struct manifest_set *m, size_t *n)
{
	struct prune_key *keys = xcalloc(m->n_docs + 1, sizeof(*keys));
	*n = 0;
	for (size_t i = 0; i < m->n_docs; i++)
		if (m->docs[i].kind)
			keys[(*n)++] = applyset_doc_key(&m->docs[i]);
	return keys;
}

static int prune(struct client *c, const struct manifest_set *m, const char *set,
                 const struct applyset_opts *o)
{
	size_t n_keys = 0;
	_cleanup_free_ struct prune_key *keys = doc_keys(m, &n_keys);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct prune_plan plan = {0};
	if (applyset_plan_prune(c, o->live, set, keys, n_keys, &plan, &err) < 0) {
		cli_report(&err, "error: cannot prune: ");
		return CLI_FAIL;
	}
	struct applyset_counts counts = {0};
	applyset_prune(c, &plan, o, report_loud, NULL, &counts);
	prune_plan_free(&plan);
	return counts.prune_failed > 0 ? CLI_FAIL : CLI_OK;
}

/* "error: the server rejected 1 document in a dry run and 1 object
 * belongs to another apply set; nothing was applied" */
static void print_dry_failures(const struct applyset_counts *dry)
{
	size_t rejected = dry->failed - dry->conflicts;
	_cleanup_free_ char *a = rejected
	                             ? xasprintf("the server rejected %zu document%s in a dry run",
	                                         rejected, rejected == 1 ? "" : "s")
	                             : xstrdup("");
	_cleanup_free_ char *b =
	    dry->conflicts ? xasprintf("%zu object%s to another apply set", dry->conflicts,
	                               dry->conflicts == 1 ? " belongs" : "s belong")
	                   : xstrdup("");
	fprintf(stderr, "error: %s%s%s; nothing was applied\n", a, *a && *b ? " and " : "", b);
}

static int apply_set(struct client *c, struct manifest_set *m, const struct apply_flags *f,
                     const char *set, struct applyset_opts *o)
{
	size_t n = 0;
	_cleanup_free_ size_t *order = manifest_set_apply_order(m, &n);
	if (!f->dry_run && n > 0) {
		struct applyset_counts dry = {0};
		applyset_apply(c, m, order, n, o, report_quiet, NULL, &dry);
		if (dry.failed > 0) {
			print_dry_failures(&dry);
			return CLI_FAIL;
		}
	}
	o->dry_run = f->dry_run;
	struct applyset_counts counts = {0};
	applyset_apply(c, m, order, n, o, report_loud, NULL, &counts);
	if (counts.failed > 0) {
		if (set)
			fprintf(stderr,
			        "error: %zu object%s failed to apply; apply set \"%s\" was not "
			        "pruned\n",
			        counts.failed, counts.failed == 1 ? "" : "s", set);
		return CLI_FAIL;
	}
	return f->prune ? prune(c, m, set, o) : CLI_OK;
}

static int apply_all(struct manifest_set *m, const struct apply_flags *f, const char *set)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	struct applyset_live live = {0};
	if (set) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (applyset_live_list(c, &live, &err) < 0) {
			cli_report(&err, "error: cannot list the objects of apply sets: ");
			return CLI_FAIL;
		}
	}
	struct applyset_opts o = {.field_manager = f->field_manager,
	                          .dry_run = true,
	                          .set = set,
	                          .live = set ? &live : NULL,
	                          .overwrite_set = f->overwrite_set};
	int code = apply_set(c, m, f, set, &o);
	applyset_live_free(&live);
	return code;
}

static int check_flags(const struct apply_flags *f, const struct cli_strv *pos)
{
	if (pos->n > 0) {
		fprintf(stderr, "error: unexpected argument \"%s\"; manifests are given with -f\n",
		        pos->v[0]);
		return CLI_USAGE;
	}
	if (f->timeout && cli_duration_ms(f->timeout) <= 0) {
		fprintf(stderr, "error: --timeout \"%s\": not a duration (90s, 5m, 1h)\n",
		        f->timeout);
		return CLI_USAGE;
	}
	if (f->files.n == 0) {
		fprintf(stderr,
		        "error: must specify -f PATH (a file, a directory or - for stdin)\n");
		return CLI_USAGE;
	}
	if (f->allow_empty && !f->prune) {
		fprintf(stderr, "error: --allow-empty only makes sense with --prune\n");
		return CLI_USAGE;
	}
	if (f->overwrite_set && !f->prune && !f->set) {
		fprintf(stderr, "error: --overwrite-set only makes sense with --prune or --set\n");
		return CLI_USAGE;
	}
	return CLI_OK;
}

static int run_apply(const struct apply_flags *f, const struct cli_strv *pos)
{
	int code = check_flags(f, pos);
	if (code != CLI_OK)
		return code;
	_cleanup_free_ char *set = NULL;
	if ((f->prune || f->set) && !(set = cli_applyset_name(f->set, &f->files, &code)))
		return code;
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
		fprintf(stderr, "error: %zu error%s in the manifests; nothing was applied\n",
		        errors, errors == 1 ? "" : "s");
		code = CLI_FAIL;
	} else if (m.n_docs == 0 && f->prune && !f->allow_empty) {
		fprintf(
		    stderr,
		    "error: no objects passed to apply; with --prune that would delete every "
		    "object of apply set \"%s\" (give --allow-empty if that is what you want)\n",
		    set);
		code = CLI_FAIL;
	} else if (m.n_docs == 0 && !f->prune) {
		fprintf(stderr, "error: no objects passed to apply\n");
		code = CLI_FAIL;
	} else {
		code = apply_all(&m, f, set);
		if (code == CLI_OK && f->wait && !f->dry_run)
			code = cli_wait_applied(&m, f->timeout ? cli_duration_ms(f->timeout) : 300000);
	}
	manifest_set_free(&m);
	return code;
}

int cli_cmd_apply(int argc, char **argv)
{
	struct apply_flags f = {0};
	const struct cli_opt opts[] = {
	    {"filename", 'f', CLI_OPT_LIST, &f.files, "PATH",
	     "manifest file, directory, or - for stdin (repeatable)"},
	    {"recursive", 'R', CLI_OPT_BOOL, &f.recursive, NULL, "read directories recursively"},
	    {"dry-run", 0, CLI_OPT_BOOL, &f.dry_run, NULL,
	     "let the server validate and compute, write nothing"},
	    {"wait", 0, CLI_OPT_BOOL, &f.wait, NULL,
	     "then wait until Deployments have rolled out and Tasks run or succeeded"},
	    {"timeout", 0, CLI_OPT_STRING, &f.timeout, "DURATION",
	     "with --wait: give up after this long (default 5m)"},
	    {"field-manager", 0, CLI_OPT_STRING, &f.field_manager, "NAME",
	     "field manager name (default " CLIENT_DEFAULT_FIELD_MANAGER ")"},
	    {"namespace", 'n', CLI_OPT_STRING, &f.ns, "NS",
	     "namespace for documents that name none"},
	    {"prune", 0, CLI_OPT_BOOL, &f.prune, NULL,
	     "delete objects of the apply set that the manifests no longer define"},
	    {"set", 0, CLI_OPT_STRING, &f.set, "NAME",
	     "apply set name (label " APPLYSET_LABEL "; default: from the path)"},
	    {"allow-empty", 0, CLI_OPT_BOOL, &f.allow_empty, NULL,
	     "with --prune, let manifests with no objects prune the whole set"},
	    {"overwrite-set", 0, CLI_OPT_BOOL, &f.overwrite_set, NULL,
	     "move objects that belong to another apply set into this one"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("apply", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_apply(&f, &pos);
	cli_strv_free(&pos);
	cli_strv_free(&f.files);
	return code;
}
