/*
 * gc — garbage collection, as Kubernetes' garbage collector and namespace
 * controller do it: dependents follow their owners (metadata.ownerReferences,
 * matched by uid), deletion finalizers are honoured, and a Terminating
 * Namespace is emptied before it goes. This header is the pure part: a
 * plan computed from a snapshot of every object, so that the decisions are
 * unit-tested without a server (controllers/gc.c carries them out, after
 * confirming through the API what the snapshot may show late).
 *
 * The rules (owner O, dependent D with an ownerReference to O's uid):
 *   - O is absent from the snapshot (deleted with the default Background
 *     policy): D is deleted when none of its owners exists any more; when
 *     some still exist, only the references to the absent ones are removed.
 *     These are "verify" actions: the executor first reads each absent
 *     owner through the API (an informer may lag) and does nothing when it
 *     does exist with that uid.
 *   - O has a deletionTimestamp and the finalizer "orphan": the reference
 *     to O is removed from D; once no object references O any more, the
 *     finalizer is removed (and the server deletes O).
 *   - O has a deletionTimestamp and the finalizer "foregroundDeletion": D
 *     is deleted; once no object references O, the finalizer is removed.
 *   - A Namespace with a deletionTimestamp and the finalizer
 *     "keel/namespace": every object in it is deleted; once none is left,
 *     the finalizer is removed.
 *   - An object that already has a deletionTimestamp is never deleted
 *     again (its own finalizers are pending).
 *
 * Threading: pure functions, thread-safe.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

#define GC_FINALIZER_ORPHAN     "orphan"
#define GC_FINALIZER_FOREGROUND "foregroundDeletion"
#define GC_FINALIZER_NAMESPACE  "keel/namespace"

/* The plan for a snapshot.
 *
 * objects: a JSON array of objects of any kinds (borrowed), each with
 * "kind" and metadata (name, namespace, uid, resourceVersion, ...).
 *
 * Returns a new JSON array of actions (owned), in a stable order (the
 * order of objects), each an object:
 *   {"op": "delete", "kind", "namespace"?, "name", "uid",
 *    "verify": [ownerReference...]}    -- verify: absent owners to confirm
 *   {"op": "unown", "kind", "namespace"?, "name", "uid",
 *    "owners": [uid...], "verify": [ownerReference...]}
 *                                      -- remove these ownerReferences
 *   {"op": "unfinalize", "kind", "namespace"?, "name", "uid",
 *    "finalizer": F}                   -- remove finalizer F
 * "namespace" is absent for cluster-scoped objects. Objects without a
 * kind, name or uid are skipped. */
json_t *gc_plan(json_t *objects);

/* Events older than ttl_s seconds at now (unix seconds): a new JSON array
 * (owned) of the events of the array `events` (borrowed) whose
 * lastTimestamp (else firstTimestamp, else metadata.creationTimestamp) is
 * before now - ttl_s. Events with no readable time are kept. */
json_t *gc_expired_events(json_t *events, int64_t now, int64_t ttl_s);
