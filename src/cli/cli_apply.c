/*
 * cli_apply: `keel apply`. Three phases, so that a bad document never
 * leaves half a set applied: (1) read and parse every file, (2) validate
 * every document locally with the same api_validate the server runs, and
 * stop with nothing written if any fails, (3) a server-side dry run of
 * every document (the server knows more: sizes, namespaces, a full store),
 * again stopping with nothing written if any fails, (4) server-side apply,
 * Namespaces first (the rest may live in them), then the rest in file order.
 * A document in a Namespace the same apply creates cannot be dry-run (the
 * namespace does not exist yet); it is checked only locally. Errors the
 * server still reports in phase 4 for one object (a conflict that raced
 * in) are printed at that document's file:line and the others go on; the
 * exit code then is 1. A full store (507) or an unreachable server stops
 * at once.
 */
#include "cli/cli_internal.h"

#include <errno.h>

#include "api/meta.h"
#include "api/validate.h"
#include "common/kerr.h"
#include "common/util.h"

struct apply_flags {
	struct cli_strv files;
	bool recursive;
	bool dry_run;
	bool wait;
	const char *timeout;
	const char *field_manager;
	const char *ns;
};

/* Puts -n's namespace into namespaced documents that have none; refuses a
 * document whose own namespace differs. Cluster-scoped kinds are left. */
static int set_namespace(struct cli_doc *d, const char *flag_ns)
{
	if (!d->kind->namespaced)
		return 0;
	json_t *meta = json_object_get(d->obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	if (ns && flag_ns && !streq(ns, flag_ns)) {
		cli_doc_error(
		    d, "metadata.namespace",
		    "the namespace from the manifest (\"%s\") does not match the namespace "
		    "given with -n (\"%s\")",
		    ns, flag_ns);
		return -EINVAL;
	}
	if (!ns && json_is_object(meta))
		json_object_set_new(meta, "namespace", json_string(flag_ns ? flag_ns : "default"));
	return 0;
}

static void path_cut(struct sbuf *path, size_t len)
{
	path->len = len;
	path->data[len] = '\0';
}

/* Prints an error for every string in v (at path) holding a NUL: the
 * server refuses them, and C code downstream would cut them short. */
static size_t check_nul(const struct cli_doc *d, json_t *v, struct sbuf *path)
{
	size_t errors = 0, len = path->len, i;
	const char *key;
	json_t *e;
	if (json_is_string(v) && memchr(json_string_value(v), 0, json_string_length(v))) {
		cli_doc_error(d, path->data, "%s: a string must not contain a NUL character",
		              path->data);
		return 1;
	}
	json_object_foreach(v, key, e)
	{
		sbuf_printf(path, "%s%s", len ? "." : "", key);
		errors += check_nul(d, e, path);
		path_cut(path, len);
	}
	json_array_foreach(v, i, e)
	{
		sbuf_printf(path, "[%zu]", i);
		errors += check_nul(d, e, path);
		path_cut(path, len);
	}
	return errors;
}

size_t cli_validate_docs(struct cli_manifests *m, const char *flag_ns)
{
	size_t bad = 0;
	for (size_t i = 0; i < m->n_docs; i++) {
		struct cli_doc *d = &m->docs[i];
		if (!d->kind)
			continue; /* its envelope error is already reported */
		if (set_namespace(d, flag_ns) < 0) {
			bad++;
			continue;
		}
		_cleanup_sbuf_ struct sbuf path = SBUF_INIT;
		sbuf_puts(&path, "");
		size_t nul = check_nul(d, d->obj, &path);
		if (nul > 0) {
			bad += nul;
			continue;
		}
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (api_validate(d->kind, d->obj, &err) < 0) {
			size_t n = err.causes ? json_array_size(err.causes) : 0;
			bad += n > 0 ? n : 1;
			if (n > 0)
				cli_doc_report_causes(d, &err);
			else
				cli_doc_error(d, NULL, "%s", kerr_msg(&err));
		}
	}
	return bad;
}

/* The order objects are written in: Namespaces, then the rest, each in
 * file order. Owned array of indexes into m->docs. */
size_t *cli_apply_order(const struct cli_manifests *m)
{
	size_t *order = xcalloc(m->n_docs + 1, sizeof(*order));
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < m->n_docs; i++) {
			bool is_ns = streq(m->docs[i].kind->kind, "Namespace");
			if ((pass == 0) == is_ns)
				order[n++] = i;
		}
	return order;
}

/* Namespaces a dry run would create: their objects cannot be checked by
 * the server (the namespace does not exist), but they would be created. */
struct dry_namespaces {
	struct cli_strv names; /* borrowed from the documents */
};

static bool dry_run_new_namespace(const struct dry_namespaces *dn, const char *ns,
                                  const struct kerr *err)
{
	if (!ns || err->code != ENOENT)
		return false;
	_cleanup_free_ char *want = xasprintf("namespaces \"%s\" not found", ns);
	if (!streq(err->msg, want))
		return false;
	for (size_t i = 0; i < dn->names.n; i++)
		if (streq(dn->names.v[i], ns))
			return true;
	return false;
}

/* Applies one document (a dry run when dry; prints nothing on success
 * when quiet); returns 0, or -errno after printing why. */
static int apply_one(struct client *c, const struct cli_doc *d, const struct apply_flags *f,
                     bool dry, bool quiet, struct dry_namespaces *dn, struct kerr *err)
{
	struct client_query q = {.dry_run = dry, .field_manager = f->field_manager};
	enum client_apply_result res = CLIENT_APPLY_UNKNOWN;
	const char *ns = api_obj_namespace(d->obj);
	_cleanup_free_ char *ref = cli_obj_ref(d->kind, d->obj);
	int r = client_apply(c, d->kind, ns, d->obj, &q, NULL, &res, err);
	if (r < 0 && dry && dry_run_new_namespace(dn, ns, err)) {
		if (!quiet)
			printf("%s created (dry run; namespace \"%s\" does not exist yet, so the "
			       "server could not check it)\n",
			       ref, ns);
		return 0;
	}
	if (r < 0) {
		_cleanup_free_ char *where = cli_doc_where(d, NULL);
		_cleanup_free_ char *prefix = xasprintf("%s: ", where);
		if (err->code == ENOSPC)
			fprintf(stderr, "%serror: the server's store is full (507 Insufficient "
			        "Storage): %s\n", prefix, kerr_msg(err));
		else
			cli_report(err, prefix);
		cli_doc_report_causes(d, err);
		return r;
	}
	if (dry && res == CLIENT_APPLY_CREATED && streq(d->kind->kind, "Namespace"))
		cli_strv_push(&dn->names, api_obj_name(d->obj));
	if (!quiet)
		printf("%s %s%s\n", ref,
		       res == CLIENT_APPLY_UNKNOWN ? "configured" : client_apply_result_name(res),
		       dry ? " (dry run)" : "");
	return 0;
}

/* Errors after which the remaining documents would fail the same way. */
static bool stop_after(const struct kerr *err)
{
	return cli_error_is_fatal(err) || err->code == ENOSPC;
}

/* One pass over every document in apply order; returns the number that
 * failed (stopping at a fatal one). */
static size_t apply_pass(struct client *c, struct cli_manifests *m, const struct apply_flags *f,
                         bool dry, bool quiet)
{
	_cleanup_free_ size_t *order = cli_apply_order(m);
	struct dry_namespaces dn = {{0}};
	size_t failed = 0;
	for (size_t i = 0; i < m->n_docs; i++) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (apply_one(c, &m->docs[order[i]], f, dry, quiet, &dn, &err) < 0) {
			failed++;
			if (stop_after(&err))
				break;
		}
		fflush(stdout);
	}
	cli_strv_free(&dn.names);
	return failed;
}

static int apply_all(struct cli_manifests *m, const struct apply_flags *f)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	if (!f->dry_run) {
		size_t failed = apply_pass(c, m, f, true, true);
		if (failed > 0) {
			fprintf(stderr,
			        "error: the server rejected %zu document%s in a dry run; nothing "
			        "was applied\n",
			        failed, failed == 1 ? "" : "s");
			return CLI_FAIL;
		}
	}
	return apply_pass(c, m, f, f->dry_run, false) > 0 ? CLI_FAIL : CLI_OK;
}

static int run_apply(const struct apply_flags *f, const struct cli_strv *pos)
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
	struct cli_manifests m = {0};
	int code;
	size_t errors = cli_manifests_load(&f->files, f->recursive, true, &m);
	errors += cli_validate_docs(&m, f->ns);
	errors += cli_check_duplicates(&m, f->ns);
	if (errors > 0) {
		fprintf(stderr, "error: %zu error%s in the manifests; nothing was applied\n",
		        errors, errors == 1 ? "" : "s");
		code = CLI_FAIL;
	} else if (m.n_docs == 0) {
		fprintf(stderr, "error: no objects passed to apply\n");
		code = CLI_FAIL;
	} else {
		code = apply_all(&m, f);
		if (code == CLI_OK && f->wait && !f->dry_run)
			code = cli_wait_applied(&m, f->timeout ? cli_duration_ms(f->timeout) : 300000);
	}
	cli_manifests_free(&m);
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
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("apply", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_apply(&f, &pos);
	cli_strv_free(&pos);
	cli_strv_free(&f.files);
	return code;
}
