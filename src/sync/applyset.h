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
 * the whole bookkeeping. Once per pass, every kind keel knows is listed
 * across all namespaces with the existence selector
 * labelSelector=keel/apply-set (struct applyset_live), and that one list
 * serves two purposes:
 *
 *  - ownership: an object whose live label names another set is not
 *    applied (an error for that object, nothing sent for it) unless the
 *    caller asks to move it (overwrite_set), as kubectl's ApplySet refuses
 *    another set's objects; an object that exists without the label is
 *    adopted (applying it labels it), as kubectl does;
 *  - prune: the objects whose label names this set are the candidates.
 *
 * So an object with another set's label is never pruned, nor relabelled
 * without overwrite_set; one without the label is never pruned unless a
 * set adopts it by applying it. Kubernetes' ApplySet keeps a parent object
 * listing the kinds and namespaces in use, because a Kubernetes cluster has
 * hundreds of kinds; keel has five, and listing them is cheaper than
 * keeping a parent object right.
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
 * absolute by name — not resolving symlinks, so that a root swapped
 * by symlink (git-sync's current -> wt-A, then -> wt-B) keeps its name;
 * ".", ".." and doubled slashes folded as written, a relative path
 * joined to $PWD when that is the current directory (else getcwd()) —
 * lower-cased, other characters than [a-z0-9._-]
 * turned into '-', at most 40 characters (a file loses its .yaml/.yml/.json
 * suffix), and HASH the first 8 hex digits of the FNV-1a 64-bit hash of
 * the absolute path. So `keel apply -f ./gitops --prune` and `keel sync
 * /srv/repo/gitops` agree on one machine, and two directories that share
 * a name ("manifests") never prune each other's objects. Owned, or NULL
 * with err (ENOENT...) when the path does not exist. */
char *applyset_default_name(const char *path, struct kerr *err);

/* The identity of a document (kind set; its namespace as
 * manifest_set_validate put it): strings borrowed from the document. */
struct prune_key applyset_doc_key(const struct manifest_doc *d);

/* Puts metadata.labels["keel/apply-set"] = set into every document of m
 * that has a kind. A document that already carries that label with
 * another value is an error (a diagnostic at the label) and is marked
 * invalid. Returns the number of errors added. */
size_t applyset_label_docs(struct manifest_set *m, const char *set);

/* ---- what the cluster holds of apply sets ---- */

/* Every live object that carries the label APPLYSET_LABEL, whatever its
 * value, indexed by identity. */
struct applyset_live {
	json_t *objs;  /* owned: array of the objects, each with its "kind" */
	json_t *index; /* owned: "KIND\nNS\nNAME" -> the object (ns "" when
	                  cluster-scoped); objects without a known kind or name
	                  are left out */
};

/* Lists every kind, all namespaces, with the selector "keel/apply-set"
 * (the label exists), into *out (zeroed by the caller; free it with
 * applyset_live_free). One list per kind, paged. Returns 0, or the -errno
 * of a failed list with err set ("listing tasks: ..."); *out untouched. */
int applyset_live_list(struct client *c, struct applyset_live *out, struct kerr *err);

/* Builds *out from objs (an array of objects, each with its "kind";
 * stolen). Pure: what applyset_live_list does after listing. */
void applyset_live_init(struct applyset_live *out, json_t *objs);

void applyset_live_free(struct applyset_live *l); /* accepts NULL and a zeroed one */

/* The apply set the live object key belongs to: its label's value,
 * borrowed from l; NULL when l holds no such object (it does not exist,
 * or carries no set label) or l is NULL. */
const char *applyset_live_owner(const struct applyset_live *l, const struct prune_key *key);

/* The objects of l whose label is set: a new array (references taken). */
json_t *applyset_live_members(const struct applyset_live *l, const char *set);

/* The ownership check of applying key in set. Returns
 *   0        the object is not in another set (absent, unlabelled — it is
 *            then adopted — or already in set);
 *   1        it is in another set and overwrite is true: applying moves it;
 *   -EEXIST  it is in another set: err says so, naming both sets and the
 *            ways out ("task/shared belongs to apply set \"a\", not
 *            \"b\": delete it from \"a\" first, or give --overwrite-set to
 *            move it to \"b\"").
 * In both last cases *other (may be NULL) is the other set, borrowed from
 * l. Pure. */
int applyset_check_owner(const struct applyset_live *l, const struct prune_key *key,
                         const char *set, bool overwrite, const char **other, struct kerr *err);

struct applyset_opts {
	const char *field_manager; /* NULL: CLIENT_DEFAULT_FIELD_MANAGER */
	bool dry_run;              /* ask the server (dryRun=All), write nothing */
	/* The set being applied, and what the cluster holds of sets
	 * (borrowed): with both, each document goes through
	 * applyset_check_owner first. NULL: no check (plain apply). */
	const char *set;
	const struct applyset_live *live;
	bool overwrite_set; /* move objects of other sets into this one */
};

enum applyset_event_type {
	APPLYSET_APPLIED,      /* result, dry_run, unchecked, other_set (moved) */
	APPLYSET_APPLY_FAILED, /* err, http_code, reason; other_set (not sent) */
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
	/* APPLIED: the object was moved from this other set (overwrite_set);
	 * APPLY_FAILED: its live object belongs to this other set, so nothing
	 * was sent for it (err says so; http_code 0). Else NULL. */
	const char *other_set;
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
	size_t failed;                         /* apply failures, conflicts included */
	size_t conflicts;                      /* of those: objects of another set */
	size_t moved;                          /* applied, moved from another set */
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
 * each. With o->set and o->live, a document whose live object is in
 * another set is reported as failed (other_set) and not sent, unless
 * o->overwrite_set. Stops at the first fatal error (counts->fatal). With
 * o->dry_run an object in a Namespace that the same set creates (and that
 * does not exist yet) is reported as created, unchecked. */
void applyset_apply(struct client *c, struct manifest_set *m, const size_t *order, size_t n,
                    const struct applyset_opts *o, applyset_report_fn fn, void *ud,
                    struct applyset_counts *counts);

/* Builds *plan (zeroed by the caller) from the objects of live whose
 * label is set (applyset_live_members) and keep, with the Namespace guard
 * of prune.h (which lists the planned Namespaces' contents). The plan
 * borrows from live: free the plan first. Returns 0, or -errno of a failed
 * list with err set (nothing planned). */
int applyset_plan_prune(struct client *c, const struct applyset_live *live, const char *set,
                        const struct prune_key *keep, size_t n_keep, struct prune_plan *plan,
                        struct kerr *err);

/* Deletes the plan's PRUNE_DELETE items in order (Background propagation;
 * nothing with o->dry_run, which only reports), reporting each, and
 * reports its PRUNE_KEEP items. An object already gone counts as pruned.
 * Stops at the first fatal error. Adds to *counts. */
void applyset_prune(struct client *c, const struct prune_plan *plan, const struct applyset_opts *o,
                    applyset_report_fn fn, void *ud, struct applyset_counts *counts);
