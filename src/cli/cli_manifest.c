/*
 * cli_manifest: the CLI's side of manifests/manifest — loading, validation
 * and duplicate checks happen there (shared with keel_sync and `keel
 * lint`); here their diagnostics are printed, one compiler-style line each
 * on stderr ("FILE:LINE:COL: what"), and a server's field errors are
 * printed at the document's lines.
 */
#include "cli/cli_internal.h"

#include <stdarg.h>

#include "common/kerr.h"
#include "common/util.h"

void cli_print_diags(const struct manifest_set *m, size_t from)
{
	for (size_t i = from; i < m->n_diags; i++) {
		_cleanup_free_ char *line = manifest_diag_format(&m->diags[i]);
		fprintf(stderr, "%s\n", line);
	}
}

size_t cli_manifests_load(const struct cli_strv *paths, bool recursive, bool check,
                          struct manifest_set *m)
{
	size_t from = m->n_diags;
	struct manifest_load_opts o = {.recursive = recursive, .check_envelope = check};
	size_t errors = manifest_set_load(m, paths->v, paths->n, &o);
	cli_print_diags(m, from);
	return errors;
}

size_t cli_validate_docs(struct manifest_set *m, const char *flag_ns)
{
	size_t from = m->n_diags;
	size_t errors = manifest_set_validate(m, flag_ns);
	cli_print_diags(m, from);
	return errors;
}

size_t cli_check_duplicates(struct manifest_set *m, const char *flag_ns)
{
	size_t from = m->n_diags;
	size_t errors = manifest_set_check_duplicates(m, flag_ns);
	cli_print_diags(m, from);
	return errors;
}

void cli_doc_error(const struct manifest_doc *d, const char *path, const char *fmt, ...)
{
	_cleanup_free_ char *where = manifest_doc_where(d, path);
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", where, msg);
}

void cli_doc_report_causes(const struct manifest_doc *d, const struct kerr *err)
{
	size_t i;
	json_t *c;
	json_array_foreach(err ? err->causes : NULL, i, c)
	{
		const char *field = json_string_value(json_object_get(c, "field"));
		const char *msg = json_string_value(json_object_get(c, "message"));
		if (!msg)
			msg = json_string_value(json_object_get(c, "reason"));
		if (field && *field && !strstartswith(msg, field))
			cli_doc_error(d, field, "%s: %s", field, msg ? msg : "invalid");
		else
			cli_doc_error(d, field, "%s", msg ? msg : "invalid");
	}
}
