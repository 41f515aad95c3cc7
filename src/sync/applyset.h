/*
 * applyset — applying a manifest set through the API client as one apply
 * set, and pruning what the set no longer defines. Shared by `keel apply
 * --prune`, `keel diff --prune`, `keel sync` and (later) `keel up -f DIR`.
 *
 * An apply set is named (a label value, see applyset_name_check); every
 * object applied in it carries the label
 *
 *     keel/apply-set: NAME
 *
 * set by the applier itself (so it is a field of the manifest's field
 * manager: re-applying puts it back if someone removes it). That label is
 * the whole bookkeeping: to find the set's objects, every kind keel knows
 * is listed with labelSelector=keel/apply-set=NAME across all namespaces.
 * Objects without the label, or with another set's, are never listed and
 * so never touched. Kubernetes' ApplySet keeps a parent object listing the
 * kinds and namespaces in use, because a Kubernetes cluster has hundreds
 * of kinds; keel has five, and listing them is cheaper than keeping a
 * parent object right.
 *
 * Nothing here prints: what happens is reported one event at a time
 * through a callback (struct applyset_event), which the CLI turns into
 * "task/web created" lines and `keel sync` into log lines.
 *
 * Threading: like the client it is given — one thread per client.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "client/client.h"
#include "sync/prune.h"

struct kerr;
struct manifest_set;
struct manifest_doc;

#define APPLYSET_LABEL "keel/apply-set"

/* Checks a set name (`--set NAME`): it must be a label value — 1 to 63
 * characters of [A-Za-z0-9._-], beginning and ending with a letter or
 * digit. Returns 0, or -EINVAL with a message saying so. */
int applyset_name_check(const char *name, struct kerr *err);

/* The default name of the set of a path (a directory or a file):
 * "BASE-HASH", where BASE is the last component of the path made
 * absolute (realpath), lower-cased, other characters than [a-z0-9._-]
 * turned into '-', at most 40 characters (a file loses its .yaml/.yml/.json
 * suffix), and HASH the first 8 hex digits of the FNV-1a 64-bit hash of
 * the absolute path. So `keel apply -f ./gitops --prune` and `keel sync
 * /srv/repo/gitops` agree on one machine, and two directories that share
 * a name ("manifests") never prune each other's objects. Owned, or NULL
 * with err (ENOENT...) when the path cannot be resolved. */
char *applyset_default_name(const char *path, struct kerr *err);

/* The identity of a document (kind set; its namespace as
 * manifest_set_validate put it): strings borrowed from the document. */
struct prune_key applyset_doc_key(const struct manifest_doc *d);

/* Puts metadata.labels["keel/apply-set"] = set into every document of m
 * that has a kind. A document that already carries that label with
 * another value is an error (a diagnostic at the label) and is marked
 * invalid. Returns the number of errors added. */
size_t applyset_label_docs(struct manifest_set *m, const char *set);

struct applyset_opts {
	const char *field_manager; /* NULL: CLIENT_DEFAULT_FIELD_MANAGER */
	bool dry_run;              /* ask the server (dryRun=All), write nothing */
};

enum applyset_event_type {
	APPLYSET_APPLIED,      /* result, dry_run, unchecked */
	APPLYSET_APPLY_FAILED, /* err, http_code, reason */
	APPLYSET_PRUNED,       /* dry_run */
	APPLYSET_PRUNE_FAILED, /* err, http_code, reason */
	APPLYSET_PRUNE_KEPT,   /* a Namespace left in place; reason says why */
};

struct applyset_event {
	enum applyset_event_type type;
	const struct api_kind *kind;
	const char *ns; /* NULL for cluster-scoped kinds */
	const char *name;
	const struct manifest_doc *doc; /* apply events: the document; else NULL */
	enum client_apply_result result;
	bool dry_run;
	/* A dry run of an object in a Namespace the same set creates: the
	 * Namespace does not exist yet, so the server could not check it; it
	 * would be created. */
	bool unchecked;
	const struct kerr *err; /* failures */
	int http_code;          /* failures: the HTTP status (0: no answer) */
	const char *reason;     /* failures: Status.reason ("NotFound"), or NULL when
	                           the server did not answer; PRUNE_KEEP: why */
};

/* Called once per event; ev and everything it points to are borrowed for
 * the call. */
typedef void (*applyset_report_fn)(void *ud, const struct applyset_event *ev);

struct applyset_counts {
	size_t created, configured, unchanged; /* applied */
	size_t failed;                         /* apply failures */
	size_t pruned, prune_failed, kept;
	bool fatal; /* stopped early: the server cannot be reached, refused the
	               token, or its store is full */
};

/* True for errors after which further requests would fail the same way:
 * the server cannot be reached (ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT,
 * EPROTO), the token is refused (EACCES). ENOSPC (a full store) stops
 * applies but not deletes. */
bool applyset_error_is_fatal(const struct kerr *err);

/* Applies (server-side apply) m->docs[order[i]] for i < n, skipping
 * documents without a kind or marked invalid; adds to *counts and reports
 * each. Stops at the first fatal error (counts->fatal). With o->dry_run an
 * object in a Namespace that the same set creates (and that does not
 * exist yet) is reported as created, unchecked. */
void applyset_apply(struct client *c, struct manifest_set *m, const size_t *order, size_t n,
                    const struct applyset_opts *o, applyset_report_fn fn, void *ud,
                    struct applyset_counts *counts);

/* Lists the set's live objects (every kind, every namespace, by label
 * selector) into *live (a new array of objects, each with its "kind") and
 * builds *plan (zeroed by the caller) from them and keep, with the
 * Namespace guard of prune.h (which lists the planned Namespaces'
 * contents). The plan borrows from *live: free the plan, then json_decref
 * *live. Returns 0, or -errno of a failed list with err set (nothing
 * planned). */
int applyset_plan_prune(struct client *c, const char *set, const struct prune_key *keep,
                        size_t n_keep, json_t **live, struct prune_plan *plan, struct kerr *err);

/* Deletes the plan's PRUNE_DELETE items in order (Background propagation;
 * nothing with o->dry_run, which only reports), reporting each, and
 * reports its PRUNE_KEEP items. An object already gone counts as pruned.
 * Stops at the first fatal error. Adds to *counts. */
void applyset_prune(struct client *c, const struct prune_plan *plan, const struct applyset_opts *o,
                    applyset_report_fn fn, void *ud, struct applyset_counts *counts);
