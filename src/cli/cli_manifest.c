/*
 * cli_manifest: turning -f arguments into documents. Every file is read and
 * parsed before anything is sent, so that `apply` can refuse the whole set
 * when one document is wrong, and every message names FILE:LINE:COL —
 * including errors the server reports for a field, mapped back through the
 * positions manifests/yaml records for each field path.
 *
 * Directories: the files directly in it (or, recursively, below it) whose
 * names end in .yaml, .yml or .json, in name order so that applies are
 * reproducible; names starting with '.' (editor swap files, .git) are
 * skipped. A file named explicitly is read whatever its name.
 */
#include "cli/cli_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "manifests/yaml.h"

#define MANIFEST_MAX_BYTES (64u * 1024 * 1024)

static bool manifest_name(const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.')
		return false;
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct file_list {
	char **v;
	size_t n;
};

static void file_list_push(struct file_list *l, char *path)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = path;
}

static size_t walk_dir(const char *dir, bool recursive, struct file_list *out)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "error: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	struct file_list names = {0};
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			file_list_push(&names, xstrdup(e->d_name));
	closedir(d);
	qsort(names.v, names.n, sizeof(*names.v), cmp_str);
	size_t errors = 0;
	for (size_t i = 0; i < names.n; i++) {
		char *path =
		    xasprintf("%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names.v[i]);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (recursive)
				errors += walk_dir(path, recursive, out);
			free(path);
		} else if (manifest_name(names.v[i])) {
			file_list_push(out, path);
		} else {
			free(path);
		}
		free(names.v[i]);
	}
	free(names.v);
	return errors;
}

static size_t expand_paths(const struct cli_strv *paths, bool recursive, struct file_list *out)
{
	size_t errors = 0;
	for (size_t i = 0; i < paths->n; i++) {
		const char *p = paths->v[i];
		struct stat st;
		if (streq(p, "-")) {
			file_list_push(out, xstrdup("-"));
		} else if (stat(p, &st) < 0) {
			fprintf(stderr, "error: the path \"%s\" does not exist\n", p);
			errors++;
		} else if (S_ISDIR(st.st_mode)) {
			size_t before = out->n;
			errors += walk_dir(p, recursive, out);
			if (out->n == before)
				fprintf(stderr, "warning: %s: no *.yaml, *.yml or *.json files%s\n",
				        p, recursive ? "" : " (use -R for subdirectories)");
		} else {
			file_list_push(out, xstrdup(p));
		}
	}
	return errors;
}

static void add_doc(struct cli_manifests *m, struct yaml_stream *s, size_t i)
{
	m->docs = xrealloc(m->docs, (m->n_docs + 1) * sizeof(*m->docs));
	m->docs[m->n_docs++] = (struct cli_doc){
	    .obj = s->docs[i].value, .ydoc = &s->docs[i], .file = s->name, .kind = NULL};
}

static size_t parse_file(const char *path, struct cli_manifests *m)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (file_read_all(path, MANIFEST_MAX_BYTES, &buf, &len, &err) < 0) {
		fprintf(stderr, "error: %s\n", kerr_msg(&err));
		return 1;
	}
	struct yaml_stream *s = NULL;
	const char *name = streq(path, "-") ? "<stdin>" : path;
	if (yaml_stream_parse(name, buf, len, NULL, &s, &err) < 0) {
		fprintf(stderr, "%s\n", kerr_msg(&err));
		return 1;
	}
	for (size_t i = 0; i < s->n_warnings; i++)
		fprintf(stderr, "%s:%d:%d: warning: %s\n", s->name, s->warnings[i].line,
		        s->warnings[i].col, s->warnings[i].msg);
	m->streams = xrealloc(m->streams, (m->n_streams + 1) * sizeof(*m->streams));
	m->streams[m->n_streams++] = s;
	for (size_t i = 0; i < s->n_docs; i++)
		add_doc(m, s, i);
	return 0;
}

char *cli_doc_where(const struct cli_doc *d, const char *path)
{
	int line = d->ydoc ? d->ydoc->line : 0, col = d->ydoc ? d->ydoc->col : 0;
	if (d->ydoc && path)
		yaml_doc_position(d->ydoc, path, &line, &col);
	return xasprintf("%s:%d:%d", d->file, line, col);
}

void cli_doc_error(const struct cli_doc *d, const char *path, const char *fmt, ...)
{
	_cleanup_free_ char *where = cli_doc_where(d, path);
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", where, msg);
}

void cli_doc_report_causes(const struct cli_doc *d, const struct kerr *err)
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

/* apiVersion keel/v1, a known kind, metadata.name. */
static size_t check_envelope(struct cli_doc *d)
{
	if (!json_is_object(d->obj)) {
		cli_doc_error(d, NULL,
		              "a manifest must be a mapping with apiVersion, kind and metadata");
		return 1;
	}
	json_t *av = json_object_get(d->obj, "apiVersion");
	json_t *kind = json_object_get(d->obj, "kind");
	size_t errors = 0;
	if (!json_is_string(av)) {
		cli_doc_error(d, av ? "apiVersion" : NULL,
		              "apiVersion: Required value: must be \"%s\"", API_GROUP_VERSION);
		errors++;
	} else if (!streq(json_string_value(av), API_GROUP_VERSION)) {
		cli_doc_error(d, "apiVersion",
		              "apiVersion: Unsupported value: \"%s\": must be \"%s\"",
		              json_string_value(av), API_GROUP_VERSION);
		errors++;
	}
	if (!json_is_string(kind)) {
		cli_doc_error(d, kind ? "kind" : NULL, "kind: Required value");
		return errors + 1;
	}
	d->kind = api_kind_by_kind(json_string_value(kind));
	if (!d->kind) {
		const struct api_kind *guess = api_kind_resolve(json_string_value(kind));
		const char *sugg = api_kind_suggest(json_string_value(kind));
		const struct api_kind *sk = guess ? guess : sugg ? api_kind_by_plural(sugg) : NULL;
		if (sk)
			cli_doc_error(d, "kind", "kind: unknown kind \"%s\", did you mean \"%s\"?",
			              json_string_value(kind), sk->kind);
		else
			cli_doc_error(d, "kind",
			              "kind: unknown kind \"%s\" (known: Deployment, Event, "
			              "Namespace, Node, Task)",
			              json_string_value(kind));
		return errors + 1;
	}
	const char *name = api_obj_name(d->obj);
	if (!name || !*name) {
		cli_doc_error(d, "metadata", "metadata.name: Required value");
		errors++;
	}
	return errors;
}

size_t cli_manifests_load(const struct cli_strv *paths, bool recursive, bool check,
                          struct cli_manifests *m)
{
	struct file_list files = {0};
	size_t errors = expand_paths(paths, recursive, &files);
	for (size_t i = 0; i < files.n; i++) {
		errors += parse_file(files.v[i], m);
		free(files.v[i]);
	}
	free(files.v);
	for (size_t i = 0; check && i < m->n_docs; i++) {
		size_t bad = check_envelope(&m->docs[i]);
		if (bad)
			m->docs[i].kind = NULL; /* reported once; later checks skip it */
		errors += bad;
	}
	return errors;
}

static const char *doc_namespace(const struct cli_doc *d, const char *flag_ns)
{
	if (!d->kind->namespaced)
		return "";
	const char *ns = api_obj_namespace(d->obj);
	return ns ? ns : flag_ns ? flag_ns : "default";
}

static bool same_object(const struct cli_doc *a, const struct cli_doc *b, const char *flag_ns)
{
	return a->kind == b->kind && streq(api_obj_name(a->obj), api_obj_name(b->obj)) &&
	       streq(doc_namespace(a, flag_ns), doc_namespace(b, flag_ns));
}

size_t cli_check_duplicates(const struct cli_manifests *m, const char *flag_ns)
{
	size_t errors = 0;
	for (size_t i = 1; i < m->n_docs; i++) {
		const struct cli_doc *d = &m->docs[i];
		if (!d->kind)
			continue;
		for (size_t j = 0; j < i; j++) {
			if (!m->docs[j].kind || !same_object(&m->docs[j], d, flag_ns))
				continue;
			_cleanup_free_ char *first = cli_doc_where(&m->docs[j], NULL);
			_cleanup_free_ char *ref = cli_obj_ref(d->kind, d->obj);
			cli_doc_error(d, NULL, "%s: defined twice (first at %s)", ref, first);
			errors++;
			break;
		}
	}
	return errors;
}

void cli_manifests_free(struct cli_manifests *m)
{
	for (size_t i = 0; i < m->n_streams; i++)
		yaml_stream_free(m->streams[i]);
	free(m->streams);
	free(m->docs);
	memset(m, 0, sizeof(*m));
}
