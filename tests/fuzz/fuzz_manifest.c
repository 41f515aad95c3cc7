/*
 * Fuzz target for manifests/manifest, the loader `keel apply`, `keel lint`
 * and `keel sync` share: the input is one manifest file (in a memfd, read
 * through its /proc/self/fd path as a file named on the command line),
 * loaded with envelope checks, validated (with -n "fuzz" when byte 0 is odd),
 * checked for duplicates and put in apply order. Properties, a broken one
 * aborts:
 *   - every diagnostic with a position is at FILE:LINE:COL of this file,
 *     with a line within the file, and prints as "FILE:LINE:COL: ...";
 *   - every diagnostic has a one-line message; the error count matches;
 *   - a document that passes every check is valid for the server
 *     (api_default + api_validate on a copy accept it);
 *   - the apply order lists each document with a kind once, Namespaces
 *     first.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/validate.h"
#include "common/kerr.h"
#include "common/util.h"
#include "manifests/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const char *detail)
{
	if (!ok) {
		fprintf(stderr, "fuzz_manifest: %s (%s)\n", what, detail ? detail : "");
		abort();
	}
}

static int memfd = -1;

static void check_diag(const struct manifest_diag *d, const char *path, int lines)
{
	check(d->message && *d->message && !strchr(d->message, '\n'),
	      "a diagnostic without a one-line message", d->message);
	_cleanup_free_ char *line = manifest_diag_format(d);
	check(line && *line, "manifest_diag_format", NULL);
	_cleanup_json_ json_t *j = manifest_diag_json(d);
	check(json_is_string(json_object_get(j, "message")), "manifest_diag_json", line);
	if (d->line == 0)
		return;
	check(d->file && streq(d->file, path), "a diagnostic at another file", line);
	check(d->line >= 1 && d->line <= lines && d->col >= 1, "a position outside the file", line);
	_cleanup_free_ char *want = xasprintf("%s:%d:%d: ", path, d->line, d->col);
	check(strstartswith(line, want), "a diagnostic not printed as FILE:LINE:COL", line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	if (memfd < 0)
		memfd = memfd_create("fuzz_manifest", MFD_CLOEXEC);
	check(memfd >= 0 && ftruncate(memfd, 0) == 0 && pwrite(memfd, data, size, 0) == (ssize_t)size,
	      "memfd", NULL);
	_cleanup_free_ char *path = xasprintf("/proc/self/fd/%d", memfd);
	/* an upper bound of the lines libyaml counts: it breaks lines at CR,
	 * LF, NEL (C2 85), LS and PS (E2 80 A8/A9) */
	int lines = 2;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 || data[i] == 0xa8 ||
		         data[i] == 0xa9;
	const char *flag_ns = size && (data[0] & 1) ? "fuzz" : NULL;

	struct manifest_set s = {0};
	struct manifest_load_opts o = {.check_envelope = true};
	const char *paths[] = {path};
	size_t errors = manifest_set_load(&s, paths, 1, &o);
	errors += manifest_set_validate(&s, flag_ns);
	errors += manifest_set_check_duplicates(&s, flag_ns);
	check(s.n_files == 1, "one file named, another count loaded", NULL);
	check(errors <= s.n_errors, "more errors returned than recorded", NULL);
	size_t n_err = 0;
	for (size_t i = 0; i < s.n_diags; i++) {
		check_diag(&s.diags[i], path, lines);
		n_err += s.diags[i].severity == MANIFEST_ERROR;
	}
	check(n_err == s.n_errors && s.n_diags == s.n_errors + s.n_warnings,
	      "the error count does not match the diagnostics", NULL);
	for (size_t i = 0; i < s.n_docs; i++) {
		const struct manifest_doc *d = &s.docs[i];
		if (!d->kind || d->invalid)
			continue;
		_cleanup_json_ json_t *copy = json_deep_copy(d->obj);
		api_default(d->kind, copy);
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		check(api_validate(d->kind, copy, &err) == 0, "a valid document the server refuses",
		      err.msg);
		_cleanup_free_ char *where = manifest_doc_where(d, "metadata.name");
		check(strstartswith(where, path), "manifest_doc_where", where);
	}
	size_t n = 0;
	_cleanup_free_ size_t *order = manifest_set_apply_order(&s, &n);
	bool seen_other = false;
	size_t with_kind = 0;
	for (size_t i = 0; i < s.n_docs; i++)
		with_kind += s.docs[i].kind != NULL;
	check(n == with_kind, "the apply order misses a document", NULL);
	for (size_t i = 0; i < n; i++) {
		check(order[i] < s.n_docs && s.docs[order[i]].kind, "a bad index in the apply order",
		      NULL);
		for (size_t j = 0; j < i; j++)
			check(order[j] != order[i], "a document twice in the apply order", NULL);
		bool is_ns = streq(s.docs[order[i]].kind->kind, "Namespace");
		check(!(is_ns && seen_other), "a Namespace after another kind in the apply order",
		      NULL);
		seen_other |= !is_ns;
	}
	manifest_set_free(&s);
	return 0;
}
