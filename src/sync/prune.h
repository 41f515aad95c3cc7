/*
 * prune — planning the prune of an apply set: which of the live objects
 * that carry the set's label are no longer in the manifests, and in what
 * order they go. Pure: no I/O, no client; applyset.c lists and deletes.
 *
 * Rules (see prune.c for why):
 *  - An object is deleted when it carries the set's label (the caller
 *    lists by label selector), is not among the keys to keep (what the
 *    manifests define now, plus what a momentarily broken file defined the
 *    last time it was good), and is not being deleted already
 *    (metadata.deletionTimestamp set: it is on its way).
 *  - Order: the reverse of apply's dependency order — Deployments, then
 *    Tasks, then the other namespaced kinds, then Nodes, then Namespaces
 *    last; by namespace and name within a kind, so that plans are
 *    reproducible.
 *  - The Namespace "default" is never deleted (the server refuses it).
 *  - A Namespace is kept when it still holds an object that the plan does
 *    not delete and that is not owned (ownerReferences) by one the plan
 *    deletes: deleting the Namespace would take that object with it, and
 *    a prune must never touch objects of other sets or of no set. Events
 *    are not counted (they expire on their own).
 *
 * Ownership: the plan borrows the live objects (keep them alive as long as
 * the plan); strings in prune_key are borrowed.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/kind.h"

/* An object by identity. ns is "" (or NULL) for cluster-scoped kinds. */
struct prune_key {
	const struct api_kind *kind;
	const char *ns;
	const char *name;
};

enum prune_action {
	PRUNE_DELETE = 0,
	PRUNE_KEEP, /* a Namespace that cannot go: reason says why */
};

struct prune_item {
	const struct api_kind *kind;
	json_t *obj;                 /* borrowed: the live object */
	const char *ns, *name, *uid; /* borrowed from obj; ns NULL for cluster-scoped */
	enum prune_action action;
	char *reason; /* owned; for PRUNE_KEEP */
	bool guarded; /* a Namespace kept by prune_plan_guard_namespaces */
};

/* The label naming an object's apply set (APPLYSET_LABEL of sync/applyset.h). */
#define PRUNE_SET_LABEL "keel/apply-set"

struct prune_plan {
	struct prune_item *items; /* deletion order */
	size_t n;
};

/* Where a kind goes in a prune: lower first. Deployment 0, Task 1, other
 * namespaced kinds 2, Node 3, Namespace 4. */
int prune_rank(const struct api_kind *k);

/* Builds the plan into p (zeroed by the caller): live is an array of
 * objects, each with its "kind" (those of unknown kinds are skipped);
 * keep the keys of objects that stay. Namespaces planned start as
 * PRUNE_DELETE ("default": PRUNE_KEEP). */
void prune_plan_build(struct prune_plan *p, json_t *live, const struct prune_key *keep,
                      size_t n_keep);

/* The Namespaces the plan would delete, borrowed names, in plan order;
 * *n set. Owned array (free()). */
const char **prune_plan_namespaces(const struct prune_plan *p, size_t *n);

/* contents: every object (with its "kind") found in the Namespaces of
 * prune_plan_namespaces(). Turns a planned Namespace into PRUNE_KEEP when
 * it holds an object the plan does not delete, that no object the plan
 * deletes owns, and that is not being deleted already; the reason names
 * the most telling such object and what it is: one the manifests of set
 * still define ("it still holds deployment/web, which the manifests still
 * define (in this apply set, "s1"); it keeps the namespace"), another
 * set's ("..., which belongs to apply set "s2""), one of no set ("...,
 * which is in no apply set"), one owned by something else ("... (owned by
 * deployment/web)"), in that order. Events are ignored. set may be NULL. */
void prune_plan_guard_namespaces(struct prune_plan *p, json_t *contents, const char *set);

/* Items with PRUNE_DELETE. */
size_t prune_plan_deletions(const struct prune_plan *p);

void prune_plan_free(struct prune_plan *p);

/* Is (k, ns, name) among keys[0..n)? ns NULL and "" are the same. */
bool prune_key_find(const struct prune_key *keys, size_t n, const struct api_kind *k,
                    const char *ns, const char *name);
