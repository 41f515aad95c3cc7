/*
 * cli_lint: `keel lint -f PATH`, offline validation for CI (what
 * kubeconform is for Kubernetes). No server is contacted: the manifests
 * are read, parsed and validated with the code `keel apply` and the server
 * use (manifests/manifest.h over api/validate), and every problem is
 * printed at FILE:LINE:COL with its field path — or, with -o json, as a
 * JSON array of {file, line, column, field, severity, message}. YAML 1.1
 * look-alikes are warnings; anything else is an error, and any error
 * makes the exit status 1. Directories are read recursively (a GitOps
 * repository is a tree), skipping names that start with '.'.
 */
#include "cli/cli_internal.h"

#include "common/util.h"

struct lint_flags {
	struct cli_strv files;
	const char *output;
	bool recursive; /* accepted for symmetry with apply; directories always recurse */
};

static void print_text(const struct manifest_set *m)
{
	for (size_t i = 0; i < m->n_diags; i++) {
		_cleanup_free_ char *line = manifest_diag_format(&m->diags[i]);
		printf("%s\n", line);
	}
	printf("%zu file%s, %zu document%s: %zu error%s, %zu warning%s\n", m->n_files,
	       m->n_files == 1 ? "" : "s", m->n_docs, m->n_docs == 1 ? "" : "s", m->n_errors,
	       m->n_errors == 1 ? "" : "s", m->n_warnings, m->n_warnings == 1 ? "" : "s");
}

static void print_json(const struct manifest_set *m)
{
	_cleanup_json_ json_t *a = json_array();
	for (size_t i = 0; i < m->n_diags; i++)
		json_array_append_new(a, manifest_diag_json(&m->diags[i]));
	_cleanup_free_ char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s ? s : "[]");
}

static int run_lint(const struct lint_flags *f, const struct cli_strv *pos)
{
	if (pos->n > 0) {
		fprintf(stderr, "error: unexpected argument \"%s\"; manifests are given with -f\n",
		        pos->v[0]);
		return CLI_USAGE;
	}
	if (f->files.n == 0) {
		fprintf(stderr,
		        "error: must specify -f PATH (a file, a directory or - for stdin)\n");
		return CLI_USAGE;
	}
	bool json = false;
	if (f->output && !(json = streq(f->output, "json")) && !streq(f->output, "text")) {
		fprintf(stderr, "error: -o must be text or json, not \"%s\"\n", f->output);
		return CLI_USAGE;
	}
	struct manifest_set m = {0};
	struct manifest_load_opts o = {.recursive = true, .check_envelope = true};
	manifest_set_load(&m, f->files.v, f->files.n, &o);
	manifest_set_validate(&m, NULL);
	manifest_set_check_duplicates(&m, NULL);
	if (json)
		print_json(&m);
	else
		print_text(&m);
	int code = m.n_errors > 0 ? CLI_FAIL : CLI_OK;
	manifest_set_free(&m);
	return code;
}

int cli_cmd_lint(int argc, char **argv)
{
	struct lint_flags f = {0};
	const struct cli_opt opts[] = {
	    {"filename", 'f', CLI_OPT_LIST, &f.files, "PATH",
	     "manifest file, directory (read recursively), or - for stdin (repeatable)"},
	    {"output", 'o', CLI_OPT_STRING, &f.output, "FORMAT",
	     "text (FILE:LINE:COL: message lines) or json"},
	    {"recursive", 'R', CLI_OPT_BOOL, &f.recursive, NULL,
	     "accepted for symmetry with apply (directories are always read recursively)"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("lint", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_lint(&f, &pos);
	cli_strv_free(&pos);
	cli_strv_free(&f.files);
	return code;
}
