/*
 * informer — a local, always-current cache of one kind, as client-go's
 * informers are: it lists (one consistent snapshot), then watches from the
 * list's resourceVersion, and relists when the watch answers 410 Gone or
 * the connection drops for good. Handlers hear every add, update and
 * delete, in revision order, on the informer's own thread.
 *
 * Threading: informer_get/informer_list/informer_synced may be called from
 * any thread (the cache is behind a lock). Handlers run on the informer's
 * thread and must be quick (typically: put a key on a work queue).
 *
 * Ownership: objects handed to handlers are borrowed for the call;
 * informer_get and informer_list return new references. Cached objects are
 * shared — with every caller, and (see "Sharing") between objects — so
 * they are read-only: copy (json_deep_copy) before changing one.
 *
 * Sharing: one informer may serve several consumers (the controllers of a
 * process share one informer per kind and selectors, as client-go's shared
 * informer factory does: one cache, one watch stream), each adding its own
 * handler set before the informer starts. And the cache interns what its
 * objects have in common: equal leaves (strings, numbers) and equal
 * subtrees (the spec a Deployment's Tasks share, their labels, a status
 * such as {"phase":"Running"}) are one json_t held by every object that
 * has it, so that the cache costs what is unique to each object.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/kind.h"
#include "client/client.h"

struct kerr;
struct informer;

struct informer_handlers {
	void (*on_add)(void *ctx, json_t *obj);
	void (*on_update)(void *ctx, json_t *old_obj, json_t *new_obj);
	void (*on_delete)(void *ctx, json_t *obj);
	void *ctx;
};

struct informer_opts {
	struct client_opts client;     /* server, token, ...; the informer makes its own clients */
	const struct api_kind *kind;
	const char *ns;                /* NULL: every namespace */
	const char *label_selector;    /* NULL: all */
	const char *field_selector;    /* NULL: all */
	long resync_ms;                /* >0: call on_update(obj, obj) for every cached
	                                  object this often (level-triggered safety net) */
};

#define INFORMER_MAX_HANDLERS 8

/* Creates an informer (not started). Strings are copied. h (copied) may be
 * NULL: no handlers yet (informer_add_handlers). */
int informer_new(const struct informer_opts *o, const struct informer_handlers *h,
                 struct informer **out, struct kerr *err);
/* Adds one more handler set (copied), told after the ones added before
 * it, on the informer's thread. Only before informer_start. Errors:
 * -EBUSY (already started), -ENOSPC (INFORMER_MAX_HANDLERS sets). */
int informer_add_handlers(struct informer *inf, const struct informer_handlers *h,
                          struct kerr *err);
/* True when inf watches kind with exactly these namespace and selectors
 * (NULL and "" are the same: all), i.e. may serve that consumer too. */
bool informer_matches(struct informer *inf, const struct api_kind *kind, const char *ns,
                      const char *label_selector, const char *field_selector);
/* Starts its thread: list, then watch, forever, with backoff on errors. */
int informer_start(struct informer *inf, struct kerr *err);
/* Waits until the first list has been loaded into the cache (and its adds
 * delivered). Returns 0, or -ETIMEDOUT. */
int informer_wait_synced(struct informer *inf, long timeout_ms);
bool informer_synced(struct informer *inf);
/* Stops the thread (ends the watch) and joins it. */
void informer_stop(struct informer *inf);
/* Asks the informer's thread to stop without waiting for it (so that many
 * informers wind down in parallel); informer_stop then joins it. */
void informer_request_stop(struct informer *inf);
/* Stops if needed and frees. Accepts NULL. */
void informer_free(struct informer *inf);

/* Key of an object: "NAMESPACE/NAME", or "NAME" for cluster-scoped kinds. Owned. */
char *informer_key(json_t *obj);
/* The cached object for key (new reference), or NULL. */
json_t *informer_get(struct informer *inf, const char *key);
/* A JSON array of (new references to) every cached object for which
 * match(ctx, obj) is true (match NULL: all). Owned. */
json_t *informer_list(struct informer *inf, bool (*match)(void *ctx, json_t *obj), void *ctx);
/* The revision the cache reflects. */
uint64_t informer_revision(struct informer *inf);

/* ---- indexes ----------------------------------------------------------
 *
 * As client-go's Indexer: a named index maps each value an index function
 * gives for an object (its owners' uids, its namespace, ...) to the keys
 * of the cached objects that give it, kept up to date with the cache
 * (under its lock, before handlers run), so a controller finds "the Tasks
 * of this Deployment" in time proportional to their number instead of by
 * scanning (or relisting) every object of the kind. */

/* The index values of obj (borrowed): a new JSON array of strings, or
 * NULL for none. Called with the informer's lock held: must not call back
 * into the informer. */
typedef json_t *(*informer_index_fn)(json_t *obj);

/* Adds index name (copied) computed by fn. Idempotent per name (a second
 * add with the same name keeps the first), and may be called before or
 * after informer_start: the index is built from the current cache. */
void informer_add_index(struct informer *inf, const char *name, informer_index_fn fn);
/* A JSON array of (new references to) the cached objects whose index name
 * holds value, in no particular order; empty when none (or no such
 * index). Owned. */
json_t *informer_by_index(struct informer *inf, const char *name, const char *value);
/* Whether at least one cached object's index name holds value. */
bool informer_index_has(struct informer *inf, const char *name, const char *value);

/* Index functions for the common indexes: */
json_t *informer_index_owner_uids(json_t *obj); /* metadata.ownerReferences[].uid */
json_t *informer_index_namespace(json_t *obj);  /* metadata.namespace */
json_t *informer_index_uid(json_t *obj);        /* metadata.uid */
#define INFORMER_INDEX_OWNER     "owner"
#define INFORMER_INDEX_NAMESPACE "namespace"
#define INFORMER_INDEX_UID       "uid"
