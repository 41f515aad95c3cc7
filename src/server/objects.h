/*
 * server/objects — the pure object transforms behind the write verbs:
 * checking an object against its URL, stripping what clients may not set,
 * carrying server-owned fields over from the live object, and the
 * generation rule. No I/O, thread-safe; objects are modified in place
 * where the prototype says so.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/kind.h"

struct kerr;

/* Checks body against the URL: apiVersion and kind must be keel/v1 and
 * k->kind when present (filled in when absent); metadata.name must equal
 * name when name is non-NULL and the body sets one (filled in when absent);
 * for namespaced kinds metadata.namespace must equal ns when set (filled in
 * when absent); for cluster-scoped kinds a namespace is removed, as
 * Kubernetes does. Modifies body. Returns 0 or -EBADMSG naming the
 * mismatch. */
int srv_obj_check_identity(const struct api_kind *k, json_t *body, const char *ns, const char *name,
                           struct kerr *err);

/* Removes the metadata fields only the server sets (uid, resourceVersion,
 * generation, creationTimestamp, deletionTimestamp, managedFields).
 * Modifies obj. */
void srv_obj_strip_server_fields(json_t *obj);

/* Makes next carry live's server-owned metadata (the fields above, except
 * managedFields unless with_managed) and, for kinds with a status
 * subresource, live's status. Modifies next. */
void srv_obj_carry_from_live(const struct api_kind *k, json_t *next, json_t *live,
                             bool with_managed);

/* Sets next's generation: live's, plus one when spec differs. */
void srv_obj_set_generation(json_t *next, json_t *live);

/* Sets uid (a fresh UUID), creationTimestamp (now) and generation 1. */
void srv_obj_init_created(json_t *obj);

/* The status a new object starts with: a Namespace is Active and a Task
 * Pending (as a Namespace and a Pod in Kubernetes); other kinds start
 * without one. Modifies obj. */
void srv_obj_init_status(const struct api_kind *k, json_t *obj);

/* metadata.resourceVersion of obj as given by a client: 0 when absent;
 * -EBADMSG when present but not a decimal string. */
int srv_obj_client_rv(json_t *obj, uint64_t *rv, struct kerr *err);

/* -E2BIG when obj serialises to more than max bytes. */
int srv_obj_check_size(json_t *obj, size_t max, struct kerr *err);
/* The -E2BIG of srv_obj_check_size for an object of n bytes serialised. */
int srv_obj_size_error(size_t n, size_t max, struct kerr *err);

/* Whether live is being deleted (deletionTimestamp set) and next has no
 * finalizers left: then the write is a delete. */
bool srv_obj_finalized(json_t *live, json_t *next);

/* Kubernetes' conflict message, for a stale resourceVersion. */
#define SRV_CONFLICT_MSG                                                                           \
	"the object has been modified; please apply your changes to the latest version and try "   \
	"again"
