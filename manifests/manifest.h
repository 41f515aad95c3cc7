/*
 * manifests/manifest — a set of manifest files read from paths, checked
 * offline, with every problem recorded as a diagnostic at FILE:LINE:COL.
 *
 * This is what `keel apply`, `keel diff`, `keel delete -f`, `keel lint` and
 * `keel sync` share before anything is sent to a server: expanding paths
 * (files, directories, "-" for stdin), parsing each file (manifests/yaml),
 * checking each document's envelope (apiVersion keel/v1, a known kind,
 * metadata.name), validating it as the server does (api_default on a copy,
 * then api_validate), finding
 * objects defined twice, and ordering the documents for apply. Nothing here
 * prints: problems become `struct manifest_diag` entries, in the order they
 * were found, which callers print (manifest_diag_format) or serialise
 * (`keel lint -o json`).
 *
 * Directories: the files in them (recursively below them with
 * opts.recursive) accepted by opts.accept — by default names ending in
 * .yaml, .yml or .json — in name order, so that applies are reproducible.
 * Names starting with '.' (editor swap files, .git) are skipped, files and
 * directories alike; symbolic links to directories below a directory given
 * are not followed (links to files are). A file named explicitly is read
 * whatever its name.
 *
 * A dangling *.yaml symlink in a directory is a warning ("PATH: skipped:
 * dangling symlink to TARGET"), its file marked skipped: a link whose
 * target is being replaced, or gone, is not a broken manifest.
 *
 * Only regular files are read from a directory (a *.yaml symlink counts
 * as what it points to): a FIFO, socket or device is an error at its path
 * and is never opened in a way that could block (so a stray FIFO cannot
 * hang apply, lint or sync). A file over MANIFEST_MAX_FILE_BYTES is an
 * error, refused by its size before it is read.
 *
 * Ownership: the set owns its streams, documents and diagnostics; a
 * document's obj and ydoc are borrowed from its file's stream and live as
 * long as the set. Not thread-safe (one set, one thread); sets are
 * independent of each other.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/kind.h"

struct yaml_doc;
struct yaml_stream;

enum manifest_severity { MANIFEST_ERROR = 0, MANIFEST_WARNING = 1 };

#define MANIFEST_NO_FILE ((size_t)-1)

struct manifest_diag {
	enum manifest_severity severity;
	char *file;    /* owned; the file as named ("-" reads as "<stdin>"); NULL when none */
	size_t file_i; /* index into set->files, or MANIFEST_NO_FILE */
	int line, col; /* 1-based; 0 when the problem has no position (an unreadable file) */
	char *field;   /* owned; the field path (api/meta.h syntax), or NULL */
	char *message; /* owned; one line, without the FILE:LINE:COL prefix. Errors
	                  without a position name their file or path themselves */
};

struct manifest_file {
	char *path;                 /* owned; as given or found ("dir/web.yaml") */
	struct yaml_stream *stream; /* owned; NULL when the file could not be read or parsed */
	size_t n_errors;            /* error diagnostics about this file */
	bool skipped; /* a dangling symlink found in a directory: not read, and a
	                 warning, not an error (what it held is unknown, not bad) */
};

struct manifest_doc {
	json_t *obj;                 /* borrowed from its stream */
	const struct yaml_doc *ydoc; /* positions; borrowed from its stream */
	const char *file;            /* the stream's name (borrowed) */
	size_t file_i;               /* index into set->files */
	const struct api_kind *kind; /* NULL when its envelope is not valid (reported) */
	bool invalid;                /* failed manifest_set_validate (reported) */
};

struct manifest_set {
	struct manifest_file *files;
	size_t n_files;
	struct manifest_doc *docs;
	size_t n_docs;
	struct manifest_diag *diags;
	size_t n_diags;
	size_t n_errors;   /* diagnostics with MANIFEST_ERROR */
	size_t n_warnings; /* diagnostics with MANIFEST_WARNING */
};

struct manifest_load_opts {
	bool recursive;      /* walk subdirectories of directories given */
	bool check_envelope; /* check apiVersion/kind/metadata.name (sets doc->kind) */
	/* Which names found in a directory are manifests (base name; names
	 * starting with '.' never reach it). NULL: *.yaml, *.yml, *.json. */
	bool (*accept)(const char *name);
	/* How the accepted suffixes are named in the "no manifests in DIR"
	 * warning; NULL: "*.yaml, *.yml or *.json". */
	const char *accept_desc;
	/* Refuse a path named in paths that is not a regular file or a
	 * directory, as files found in directories always are (keel sync:
	 * a pipe would block every pass). Without it a named FIFO or device
	 * is read as a stream, as stdin is (`keel apply -f <(cmd)`). */
	bool regular_only;
};

/* The largest manifest file read (the largest request body, and the
 * largest YAML document, the server takes). Larger files are refused by
 * their size, before they are read. */
#define MANIFEST_MAX_FILE_BYTES (3u << 20)

/* Reads and parses every path into s (zeroed by the caller, or holding
 * earlier loads: files and documents are appended). Problems become
 * diagnostics: a path that does not exist, an unreadable directory or
 * file, a file that is not a regular file or is too large, a YAML error (one per file: parsing stops there), YAML 1.1
 * warnings, and with opts->check_envelope each document's envelope errors.
 * A directory with no manifest file gets a warning. Returns the number of
 * error diagnostics added (0: all good). */
size_t manifest_set_load(struct manifest_set *s, const char *const *paths, size_t n_paths,
                         const struct manifest_load_opts *opts);

/* Frees everything in s and zeroes it. Accepts a zeroed set. */
void manifest_set_free(struct manifest_set *s);

/* The namespace a document lands in: "" for a cluster-scoped kind, its
 * metadata.namespace, else flag_ns, else "default". d->kind must be set.
 * Borrowed. */
const char *manifest_doc_namespace(const struct manifest_doc *d, const char *flag_ns);

/* For each document with a kind: puts flag_ns (or "default") into
 * namespaced documents that name no namespace — a document whose own
 * namespace differs from a non-NULL flag_ns is an error — refuses strings
 * holding a NUL character, and runs api_validate, recording every cause at
 * its field's FILE:LINE:COL. Failing documents get invalid = true.
 * Returns the number of error diagnostics added. */
size_t manifest_set_validate(struct manifest_set *s, const char *flag_ns);

/* Records "KIND/NAME: defined twice (also at FILE:LINE:COL)" ("defined N
 * times" for more) at *every* document naming the same object (kind,
 * namespace, name) as another, naming the first other place; all of them
 * get invalid = true. No copy wins: which one is meant is for the user to
 * say, and taking the first in name order would let a stray new file
 * rewrite the object. Documents without a kind are skipped. Returns the
 * number of error diagnostics added. */
size_t manifest_set_check_duplicates(struct manifest_set *s, const char *flag_ns);

/* Does document d own its object (keel sync: d's file defined it in the
 * last good pass)? */
typedef bool (*manifest_owner_fn)(void *ud, const struct manifest_doc *d);

/* manifest_set_check_duplicates, except that when exactly one of the
 * copies of an object is owned (owns returns true for it), that one is
 * left valid and each other copy gets "KIND/NAME: already defined at
 * FILE:LINE:COL, the file that defined it before; this copy is not
 * applied". owns may be NULL (nothing owned). */
size_t manifest_set_check_duplicates_owned(struct manifest_set *s, const char *flag_ns,
                                           manifest_owner_fn owns, void *ud);

/* Indexes into s->docs of the documents with a kind, in apply order:
 * Namespaces first, then the rest, each in file order. Owned, with *n set
 * to the count. Deleting goes in the reverse order. */
size_t *manifest_set_apply_order(const struct manifest_set *s, size_t *n);

/* ---- diagnostics ---- */

/* Appends a diagnostic. file may be NULL; field may be NULL. */
void manifest_diag_add(struct manifest_set *s, enum manifest_severity sev, const char *file,
                       size_t file_i, int line, int col, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Appends an error about document d at field path (its start when path is
 * NULL or has no recorded position; the nearest recorded parent else). */
void manifest_doc_error(struct manifest_set *s, const struct manifest_doc *d, const char *path,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Appends one error per cause of a failed validation or of a server's
 * Status (err->causes: {"field", "message"|"reason"}), each at its field's
 * position in d; returns how many were added (0 when err has no causes). */
struct kerr;
size_t manifest_doc_causes(struct manifest_set *s, const struct manifest_doc *d,
                           const struct kerr *err);

/* "FILE:LINE:COL" of field path in d (the document's start when path is
 * NULL or unknown). Owned. */
char *manifest_doc_where(const struct manifest_doc *d, const char *path);

/* "KIND/NAME" as kubectl prints it ("deployment/web"), lower-case
 * singular. Owned. */
char *manifest_obj_ref(const struct api_kind *k, json_t *obj);

/* The line a terminal shows: "FILE:LINE:COL: MESSAGE" for an error,
 * "FILE:LINE:COL: warning: MESSAGE" for a warning, and "error: MESSAGE" /
 * "warning: MESSAGE" for a diagnostic without a position. Owned. */
char *manifest_diag_format(const struct manifest_diag *d);

/* The same line without the severity word, for a log that shows the level
 * itself: "FILE:LINE:COL: MESSAGE", or "MESSAGE" without a position. Owned. */
char *manifest_diag_format_bare(const struct manifest_diag *d);

/* {"file", "line", "column", "field", "severity": "error"|"warning",
 * "message"} (field null when none; line/column 0 when unknown). New
 * reference. */
json_t *manifest_diag_json(const struct manifest_diag *d);

/* The default for manifest_load_opts.accept: *.yaml, *.yml, *.json, not
 * starting with '.'. */
bool manifest_name_default(const char *name);
