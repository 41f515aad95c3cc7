/*
 * manifests/manifest — turning paths into checked documents. Every file is
 * read and parsed before anything is sent, so that `apply` can refuse the
 * whole set when one document is wrong and `sync` can tell which file is
 * broken; every problem is recorded with FILE:LINE:COL — including errors
 * a server reports for a field, mapped back through the positions
 * manifests/yaml keeps for each field path.
 *
 * Problems are collected, not printed (library code does not print): the
 * CLI prints them as compiler-style lines, `keel lint -o json` as objects,
 * `keel sync` as log lines. Diagnostics keep the order they were found in,
 * which is the order the CLI printed them in before this module existed:
 * per file its YAML warnings (or its one YAML error), then envelope errors,
 * then validation causes, then duplicates.
 */
#include "manifests/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/meta.h"
#include "api/validate.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "manifests/yaml.h"


bool manifest_name_default(const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.')
		return false;
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

/* ---- diagnostics ---- */

/* msg with the control characters a manifest's strings can carry into it
 * escaped (\n, \t, \r, \xNN; the C1 controls U+0080-U+009F as \uNNNN):
 * a diagnostic is one line, and a file's bytes never drive the terminal.
 * Takes msg; owned. */
static char *one_line(char *msg)
{
	const unsigned char *u = (const unsigned char *)msg;
	size_t i = 0;
	while (u[i] >= 0x20 && u[i] != 0x7f && !(u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f))
		i++;
	if (!u[i])
		return msg;
	struct sbuf b = SBUF_INIT;
	sbuf_append(&b, msg, i);
	for (; u[i]; i++) {
		if (u[i] == '\n')
			sbuf_puts(&b, "\\n");
		else if (u[i] == '\t')
			sbuf_puts(&b, "\\t");
		else if (u[i] == '\r')
			sbuf_puts(&b, "\\r");
		else if (u[i] < 0x20 || u[i] == 0x7f)
			sbuf_printf(&b, "\\x%02X", u[i]);
		else if (u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)
			sbuf_printf(&b, "\\u%04X", u[++i]);
		else
			sbuf_putc(&b, (char)u[i]);
	}
	free(msg);
	return sbuf_take(&b);
}

static void diag_addv(struct manifest_set *s, enum manifest_severity sev, const char *file,
                      size_t file_i, int line, int col, const char *field, const char *fmt,
                      va_list ap)
{
	s->diags = xrealloc(s->diags, (s->n_diags + 1) * sizeof(*s->diags));
	s->diags[s->n_diags++] = (struct manifest_diag){
	    .severity = sev,
	    .file = file ? xstrdup(file) : NULL,
	    .file_i = file_i,
	    .line = line,
	    .col = col,
	    .field = field && *field ? xstrdup(field) : NULL,
	    .message = one_line(xvasprintf(fmt, ap)),
	};
	if (sev == MANIFEST_ERROR) {
		s->n_errors++;
		if (file_i != MANIFEST_NO_FILE && file_i < s->n_files)
			s->files[file_i].n_errors++;
	} else {
		s->n_warnings++;
	}
}

void manifest_diag_add(struct manifest_set *s, enum manifest_severity sev, const char *file,
                       size_t file_i, int line, int col, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_addv(s, sev, file, file_i, line, col, field, fmt, ap);
	va_end(ap);
}

static void doc_position(const struct manifest_doc *d, const char *path, int *line, int *col)
{
	*line = d->ydoc ? d->ydoc->line : 0;
	*col = d->ydoc ? d->ydoc->col : 0;
	if (d->ydoc && path)
		yaml_doc_position(d->ydoc, path, line, col);
}

char *manifest_doc_where(const struct manifest_doc *d, const char *path)
{
	int line, col;
	doc_position(d, path, &line, &col);
	return xasprintf("%s:%d:%d", d->file, line, col);
}

void manifest_doc_error(struct manifest_set *s, const struct manifest_doc *d, const char *path,
                        const char *fmt, ...)
{
	int line, col;
	doc_position(d, path, &line, &col);
	va_list ap;
	va_start(ap, fmt);
	diag_addv(s, MANIFEST_ERROR, d->file, d->file_i, line, col, path, fmt, ap);
	va_end(ap);
}

size_t manifest_doc_causes(struct manifest_set *s, const struct manifest_doc *d,
                           const struct kerr *err)
{
	size_t i, n = 0;
	json_t *c;
	json_array_foreach(err ? err->causes : NULL, i, c)
	{
		const char *field = json_string_value(json_object_get(c, "field"));
		const char *msg = json_string_value(json_object_get(c, "message"));
		if (!msg)
			msg = json_string_value(json_object_get(c, "reason"));
		if (field && *field && !strstartswith(msg, field))
			manifest_doc_error(s, d, field, "%s: %s", field, msg ? msg : "invalid");
		else
			manifest_doc_error(s, d, field, "%s", msg ? msg : "invalid");
		n++;
	}
	return n;
}

char *manifest_obj_ref(const struct api_kind *k, json_t *obj)
{
	const char *name = api_obj_name(obj);
	return xasprintf("%s/%s", k ? k->singular : "object", name ? name : "");
}

char *manifest_diag_format(const struct manifest_diag *d)
{
	const char *warn = d->severity == MANIFEST_WARNING ? "warning: " : "";
	if (d->file && d->line > 0)
		return xasprintf("%s:%d:%d: %s%s", d->file, d->line, d->col, warn, d->message);
	return xasprintf("%s%s",
	                 d->severity == MANIFEST_WARNING ? "warning: " : "error: ", d->message);
}

char *manifest_diag_format_bare(const struct manifest_diag *d)
{
	if (d->file && d->line > 0)
		return xasprintf("%s:%d:%d: %s", d->file, d->line, d->col, d->message);
	return xstrdup(d->message);
}

json_t *manifest_diag_json(const struct manifest_diag *d)
{
	return json_pack("{s:s?, s:i, s:i, s:s?, s:s, s:s}", "file", d->file, "line", d->line,
	                 "column", d->col, "field", d->field, "severity",
	                 d->severity == MANIFEST_WARNING ? "warning" : "error", "message",
	                 d->message);
}

/* ---- finding files ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct file_list {
	char **v;
	bool *named; /* given on the command line, not found in a directory */
	size_t n;
};

static void file_list_push(struct file_list *l, char *path, bool named)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->named = xrealloc(l->named, (l->n + 1) * sizeof(*l->named));
	l->named[l->n] = named;
	l->v[l->n++] = path;
}

static bool accepted(const struct manifest_load_opts *o, const char *name)
{
	return o->accept ? o->accept(name) : manifest_name_default(name);
}

static size_t walk_dir(struct manifest_set *s, const char *dir, const struct manifest_load_opts *o,
                       struct file_list *out)
{
	DIR *d = opendir(dir);
	if (!d) {
		manifest_diag_add(s, MANIFEST_ERROR, dir, MANIFEST_NO_FILE, 0, 0, NULL, "%s: %s",
		                  dir, strerror(errno));
		return 1;
	}
	struct file_list names = {0};
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			file_list_push(&names, xstrdup(e->d_name), false);
	closedir(d);
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(*names.v), cmp_str);
	size_t errors = 0;
	for (size_t i = 0; i < names.n; i++) {
		char *path =
		    xasprintf("%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names.v[i]);
		struct stat st, lst;
		bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
		bool is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
		if (is_dir) {
			/* not through symlinks, as kubectl -R and the sync watch: a
			 * link to a parent would never end */
			if (o->recursive && !is_link)
				errors += walk_dir(s, path, o, out);
			free(path);
		} else if (accepted(o, names.v[i])) {
			file_list_push(out, path, false);
		} else {
			free(path);
		}
		free(names.v[i]);
	}
	free(names.v);
	free(names.named);
	return errors;
}

static size_t expand_paths(struct manifest_set *s, const char *const *paths, size_t n,
                           const struct manifest_load_opts *o, struct file_list *out)
{
	size_t errors = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = paths[i];
		struct stat st;
		if (streq(p, "-")) {
			file_list_push(out, xstrdup("-"), true);
		} else if (stat(p, &st) < 0) {
			manifest_diag_add(s, MANIFEST_ERROR, p, MANIFEST_NO_FILE, 0, 0, NULL,
			                  "the path \"%s\" does not exist", p);
			errors++;
		} else if (S_ISDIR(st.st_mode)) {
			size_t before = out->n, bad = walk_dir(s, p, o, out);
			errors += bad;
			if (out->n == before && bad == 0)
				manifest_diag_add(
				    s, MANIFEST_WARNING, p, MANIFEST_NO_FILE, 0, 0, NULL,
				    "%s: no %s files%s", p,
				    o->accept_desc ? o->accept_desc : "*.yaml, *.yml or *.json",
				    o->recursive ? "" : " (use -R for subdirectories)");
		} else {
			file_list_push(out, xstrdup(p), true);
		}
	}
	return errors;
}

/* ---- parsing ---- */

/* yaml_stream_parse's messages start "NAME:LINE:COL: "; split them so the
 * diagnostic has its position as numbers. */
static void add_yaml_error(struct manifest_set *s, size_t fi, const char *name, const char *msg)
{
	size_t n = strlen(name);
	int line = 0, col = 0, used = 0;
	if (strncmp(msg, name, n) == 0 && msg[n] == ':' &&
	    sscanf(msg + n, ":%d:%d: %n", &line, &col, &used) == 2 && used > 0) {
		manifest_diag_add(s, MANIFEST_ERROR, name, fi, line, col, NULL, "%s",
		                  msg + n + used);
		return;
	}
	manifest_diag_add(s, MANIFEST_ERROR, name, fi, 0, 0, NULL, "%s", msg);
}

static const char *file_type_name(mode_t m)
{
	return S_ISFIFO(m)    ? "a FIFO"
	       : S_ISSOCK(m)  ? "a socket"
	       : S_ISCHR(m)   ? "a character device"
	       : S_ISBLK(m)   ? "a block device"
	       : S_ISDIR(m)   ? "a directory"
	                      : "not a file";
}

static int too_big(const char *path, long long size, struct kerr *err)
{
	return kerr_set(err, E2BIG,
	                "%s: larger than the %u MiB limit of a manifest file (%lld bytes); not read",
	                path, MANIFEST_MAX_FILE_BYTES >> 20, size);
}

/* Reads fd to its end into *out (NUL-terminated), at most
 * MANIFEST_MAX_FILE_BYTES: a file that grew past it since it was stat'ed
 * is refused too. */
static int read_fd(int fd, const char *path, char **out, size_t *len, struct kerr *err)
{
	int r = fd_read_all(fd, path, MANIFEST_MAX_FILE_BYTES, out, len, err);
	return r == -E2BIG ? too_big(path, (long long)*len, err) : r;
}

/* Reads one manifest file. Only regular files are opened, and then with
 * O_NONBLOCK: a FIFO, socket or device found in a tree (or reached through
 * a *.yaml symlink) is an error at its path, never a read that blocks
 * forever or returns endless zeros; the fstat after the open catches a
 * file replaced by one meanwhile. A file over the limit is refused by its
 * size before any read. special_ok: a path named on the command line that
 * is not a regular file (stdin, `-f <(cmd)`) is read as a stream, up to
 * the limit, as the user asked. */
static int read_manifest(const char *path, bool special_ok, char **out, size_t *len,
                         struct kerr *err)
{
	struct stat st;
	if (streq(path, "-") ? fstat(STDIN_FILENO, &st) < 0 : stat(path, &st) < 0)
		return kerr_set(err, errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !(special_ok && !S_ISDIR(st.st_mode)))
		return kerr_set(err, EINVAL, "%s: not a regular file (%s); not read", path,
		                file_type_name(st.st_mode));
	if (S_ISREG(st.st_mode) && st.st_size > (off_t)MANIFEST_MAX_FILE_BYTES)
		return too_big(path, (long long)st.st_size, err);
	if (streq(path, "-")) {
		_cleanup_close_ int fd = dup(STDIN_FILENO);
		if (fd < 0)
			return kerr_set(err, errno, "%s: %s", path, strerror(errno));
		return read_fd(fd, path, out, len, err);
	}
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | (S_ISREG(st.st_mode) ? O_NONBLOCK : 0);
	_cleanup_close_ int fd = open(path, flags);
	if (fd < 0)
		return kerr_set(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return kerr_set(err, errno, "%s: %s", path, strerror(errno));
	if (flags & O_NONBLOCK) {
		if (!S_ISREG(st.st_mode))
			return kerr_set(err, EINVAL, "%s: not a regular file (%s); not read", path,
			                file_type_name(st.st_mode));
		if (st.st_size > (off_t)MANIFEST_MAX_FILE_BYTES)
			return too_big(path, (long long)st.st_size, err);
	}
	return read_fd(fd, path, out, len, err);
}

/* The target of path when path is a symlink that leads nowhere; NULL
 * otherwise. Owned. */
static char *dangling_target(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR) ||
	    lstat(path, &st) < 0 || !S_ISLNK(st.st_mode))
		return NULL;
	char buf[4096];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

static size_t parse_file(struct manifest_set *s, char *path, bool special_ok, bool found_in_dir)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	s->files = xrealloc(s->files, (s->n_files + 1) * sizeof(*s->files));
	size_t fi = s->n_files++;
	s->files[fi] = (struct manifest_file){.path = path};
	const char *name = streq(path, "-") ? "<stdin>" : path;
	_cleanup_free_ char *target = found_in_dir ? dangling_target(path) : NULL;
	if (target) {
		s->files[fi].skipped = true;
		manifest_diag_add(s, MANIFEST_WARNING, name, fi, 0, 0, NULL,
		                  "%s: skipped: dangling symlink to %s", name, target);
		return 0;
	}
	if (read_manifest(path, special_ok, &buf, &len, &err) < 0) {
		manifest_diag_add(s, MANIFEST_ERROR, name, fi, 0, 0, NULL, "%s", kerr_msg(&err));
		return 1;
	}
	struct yaml_stream *st = NULL;
	if (yaml_stream_parse(name, buf, len, NULL, &st, &err) < 0) {
		add_yaml_error(s, fi, name, kerr_msg(&err));
		return 1;
	}
	s->files[fi].stream = st;
	for (size_t i = 0; i < st->n_warnings; i++)
		manifest_diag_add(s, MANIFEST_WARNING, st->name, fi, st->warnings[i].line,
		                  st->warnings[i].col, NULL, "%s", st->warnings[i].msg);
	for (size_t i = 0; i < st->n_docs; i++) {
		s->docs = xrealloc(s->docs, (s->n_docs + 1) * sizeof(*s->docs));
		s->docs[s->n_docs++] = (struct manifest_doc){
		    .obj = st->docs[i].value, .ydoc = &st->docs[i], .file = st->name, .file_i = fi};
	}
	return 0;
}

/* apiVersion keel/v1, a known kind, metadata.name. */
static size_t check_envelope(struct manifest_set *s, struct manifest_doc *d)
{
	if (!json_is_object(d->obj)) {
		manifest_doc_error(
		    s, d, NULL, "a manifest must be a mapping with apiVersion, kind and metadata");
		return 1;
	}
	json_t *av = json_object_get(d->obj, "apiVersion");
	json_t *kind = json_object_get(d->obj, "kind");
	size_t errors = 0;
	if (!json_is_string(av)) {
		manifest_doc_error(s, d, av ? "apiVersion" : NULL,
		                   "apiVersion: Required value: must be \"%s\"", API_GROUP_VERSION);
		errors++;
	} else if (!streq(json_string_value(av), API_GROUP_VERSION)) {
		manifest_doc_error(s, d, "apiVersion",
		                   "apiVersion: Unsupported value: \"%s\": must be \"%s\"",
		                   json_string_value(av), API_GROUP_VERSION);
		errors++;
	}
	if (!json_is_string(kind)) {
		manifest_doc_error(s, d, kind ? "kind" : NULL, "kind: Required value");
		return errors + 1;
	}
	d->kind = api_kind_by_kind(json_string_value(kind));
	if (!d->kind) {
		const struct api_kind *guess = api_kind_resolve(json_string_value(kind));
		const char *sugg = api_kind_suggest(json_string_value(kind));
		const struct api_kind *sk = guess ? guess : sugg ? api_kind_by_plural(sugg) : NULL;
		if (sk)
			manifest_doc_error(s, d, "kind",
			                   "kind: unknown kind \"%s\", did you mean \"%s\"?",
			                   json_string_value(kind), sk->kind);
		else
			manifest_doc_error(s, d, "kind",
			                   "kind: unknown kind \"%s\" (known: Deployment, Event, "
			                   "Namespace, Node, Task)",
			                   json_string_value(kind));
		return errors + 1;
	}
	const char *name = api_obj_name(d->obj);
	if (!name || !*name) {
		manifest_doc_error(s, d, "metadata", "metadata.name: Required value");
		errors++;
	}
	return errors;
}

size_t manifest_set_load(struct manifest_set *s, const char *const *paths, size_t n_paths,
                         const struct manifest_load_opts *opts)
{
	static const struct manifest_load_opts defaults = {0};
	const struct manifest_load_opts *o = opts ? opts : &defaults;
	size_t errors_before = s->n_errors;
	size_t first_doc = s->n_docs;
	struct file_list files = {0};
	expand_paths(s, paths, n_paths, o, &files);
	for (size_t i = 0; i < files.n; i++)
		parse_file(s, files.v[i], files.named[i] && !o->regular_only, !files.named[i]);
	free(files.v); /* the set owns the paths now */
	free(files.named);
	for (size_t i = first_doc; o->check_envelope && i < s->n_docs; i++) {
		if (check_envelope(s, &s->docs[i]) > 0)
			s->docs[i].kind = NULL; /* reported once; later checks skip it */
	}
	return s->n_errors - errors_before;
}

void manifest_set_free(struct manifest_set *s)
{
	for (size_t i = 0; i < s->n_files; i++) {
		free(s->files[i].path);
		yaml_stream_free(s->files[i].stream);
	}
	for (size_t i = 0; i < s->n_diags; i++) {
		free(s->diags[i].file);
		free(s->diags[i].field);
		free(s->diags[i].message);
	}
	free(s->files);
	free(s->docs);
	free(s->diags);
	memset(s, 0, sizeof(*s));
}

/* ---- validation ---- */

const char *manifest_doc_namespace(const struct manifest_doc *d, const char *flag_ns)
{
	if (!d->kind->namespaced)
		return "";
	const char *ns = api_obj_namespace(d->obj);
	return ns ? ns : flag_ns ? flag_ns : "default";
}

/* Puts -n's namespace into namespaced documents that have none; refuses a
 * document whose own namespace differs. Cluster-scoped kinds are left. */
static int set_namespace(struct manifest_set *s, struct manifest_doc *d, const char *flag_ns)
{
	if (!d->kind->namespaced)
		return 0;
	json_t *meta = json_object_get(d->obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	if (ns && flag_ns && !streq(ns, flag_ns)) {
		manifest_doc_error(
		    s, d, "metadata.namespace",
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

/* An error for every string in v (at path) holding a NUL: the server
 * refuses them, and C code downstream would cut them short. */
static size_t check_nul(struct manifest_set *s, const struct manifest_doc *d, json_t *v,
                        struct sbuf *path)
{
	size_t errors = 0, len = path->len, i;
	const char *key;
	json_t *e;
	if (json_is_string(v) && memchr(json_string_value(v), 0, json_string_length(v))) {
		manifest_doc_error(s, d, path->data,
		                   "%s: a string must not contain a NUL character", path->data);
		return 1;
	}
	json_object_foreach(v, key, e)
	{
		sbuf_printf(path, "%s%s", len ? "." : "", key);
		errors += check_nul(s, d, e, path);
		path_cut(path, len);
	}
	json_array_foreach(v, i, e)
	{
		sbuf_printf(path, "[%zu]", i);
		errors += check_nul(s, d, e, path);
		path_cut(path, len);
	}
	return errors;
}

static size_t validate_doc(struct manifest_set *s, struct manifest_doc *d, const char *flag_ns)
{
	if (set_namespace(s, d, flag_ns) < 0)
		return 1;
	_cleanup_sbuf_ struct sbuf path = SBUF_INIT;
	sbuf_puts(&path, "");
	size_t nul = check_nul(s, d, d->obj, &path);
	if (nul > 0)
		return nul;
	/* As the server does: defaults first (on a copy: the defaults are the
	 * server's to fill, not fields the manifest owns), then validation, so
	 * that rules across fields see what will be stored. */
	_cleanup_json_ json_t *copy = json_deep_copy(d->obj);
	api_default(d->kind, copy);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (api_validate(d->kind, copy, &err) == 0)
		return 0;
	size_t n = manifest_doc_causes(s, d, &err);
	if (n == 0) {
		manifest_doc_error(s, d, NULL, "%s", kerr_msg(&err));
		n = 1;
	}
	return n;
}

size_t manifest_set_validate(struct manifest_set *s, const char *flag_ns)
{
	size_t bad = 0;
	for (size_t i = 0; i < s->n_docs; i++) {
		struct manifest_doc *d = &s->docs[i];
		if (!d->kind)
			continue; /* its envelope error is already reported */
		size_t n = validate_doc(s, d, flag_ns);
		if (n > 0)
			d->invalid = true;
		bad += n;
	}
	return bad;
}

static bool same_object(const struct manifest_doc *a, const struct manifest_doc *b,
                        const char *flag_ns)
{
	return a->kind == b->kind && streq(api_obj_name(a->obj), api_obj_name(b->obj)) &&
	       streq(manifest_doc_namespace(a, flag_ns), manifest_doc_namespace(b, flag_ns));
}

/* Of the documents naming the same object as docs[i], the first other one
 * (*other), how many there are in all (*copies, i included) and how many
 * the owner callback claims (*owners, with the last in *owner). */
struct dup_group {
	size_t other, owner, copies, owners;
};

static struct dup_group dup_group_of(const struct manifest_set *s, size_t i, const char *flag_ns,
                                     manifest_owner_fn owns, void *ud)
{
	struct dup_group g = {.other = MANIFEST_NO_FILE, .owner = MANIFEST_NO_FILE};
	for (size_t j = 0; j < s->n_docs; j++) {
		const struct manifest_doc *o = &s->docs[j];
		if (!o->kind || !api_obj_name(o->obj) || !same_object(o, &s->docs[i], flag_ns))
			continue;
		g.copies++;
		if (j != i && g.other == MANIFEST_NO_FILE)
			g.other = j;
		if (owns && owns(ud, o)) {
			g.owners++;
			g.owner = j;
		}
	}
	return g;
}

size_t manifest_set_check_duplicates_owned(struct manifest_set *s, const char *flag_ns,
                                           manifest_owner_fn owns, void *ud)
{
	size_t errors = 0;
	for (size_t i = 0; i < s->n_docs; i++) {
		struct manifest_doc *d = &s->docs[i];
		if (!d->kind || !api_obj_name(d->obj))
			continue;
		struct dup_group g = dup_group_of(s, i, flag_ns, owns, ud);
		if (g.copies < 2 || (g.owners == 1 && g.owner == i))
			continue;
		_cleanup_free_ char *ref = manifest_obj_ref(d->kind, d->obj);
		if (g.owners == 1) {
			_cleanup_free_ char *at = manifest_doc_where(&s->docs[g.owner], NULL);
			manifest_doc_error(s, d, NULL,
			                   "%s: already defined at %s, the file that defined it "
			                   "before; this copy is not applied",
			                   ref, at);
		} else {
			_cleanup_free_ char *at = manifest_doc_where(&s->docs[g.other], NULL);
			_cleanup_free_ char *times =
			    g.copies == 2 ? xstrdup("twice") : xasprintf("%zu times", g.copies);
			manifest_doc_error(s, d, NULL, "%s: defined %s (also at %s)", ref, times,
			                   at);
		}
		d->invalid = true;
		errors++;
	}
	return errors;
}

size_t manifest_set_check_duplicates(struct manifest_set *s, const char *flag_ns)
{
	return manifest_set_check_duplicates_owned(s, flag_ns, NULL, NULL);
}

size_t *manifest_set_apply_order(const struct manifest_set *s, size_t *n)
{
	size_t *order = xcalloc(s->n_docs + 1, sizeof(*order));
	size_t k = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < s->n_docs; i++) {
			if (!s->docs[i].kind)
				continue;
			bool is_ns = streq(s->docs[i].kind->kind, "Namespace");
			if ((pass == 0) == is_ns)
				order[k++] = i;
		}
	*n = k;
	return order;
}
