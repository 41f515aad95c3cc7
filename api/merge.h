/*
 * api/merge — the JSON merges behind PATCH and server-side apply. Pure.
 *
 * Server-side apply keeps, per field manager, the set of fields its last
 * apply set, in metadata.managedFields as Kubernetes does:
 *   [{"manager": "keel-apply", "operation": "Apply", "time": T,
 *     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
 * Objects are merged key by key; arrays and scalars are atomic leaves.
 * Applying A over live L with previous field set P:
 *   - every field A sets is set to A's value;
 *   - every field in P that A no longer sets, and that no other manager's set
 *     holds, is removed from L;
 *   - every other field of L (status, fields other writers set) is kept.
 * Applying the same A twice yields an equal object, so the server can see
 * that nothing changed and write nothing.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

/* RFC 7386 JSON merge patch: a new reference (target and patch borrowed);
 * null in patch removes a key. */
json_t *api_merge_patch(json_t *target, json_t *patch);

/* The FieldsV1 set of every leaf path in obj ({"f:a": {"f:b": {}}}).
 * Owned. metadata.{name,namespace} are included; server-set metadata is not. */
json_t *api_fieldset_of(json_t *obj);

/* Server-side apply. live may be NULL (create). applied's "status",
 * server-set metadata and null values are ignored (status belongs to the
 * /status subresource); apiVersion and kind are copied from applied.
 * A manager's entry keeps its old "time" when neither the object nor its
 * field set changed, so applying the same manifest twice gives an object
 * equal to the live one. "Changed" is judged on the result as the server
 * stores it, i.e. after api_default() (a default inside an atomic array,
 * such as ports[].protocol, is not a change). Fields may be held by several managers (a second
 * applier setting a field does not take it from the first); a field is
 * removed only when no manager's set holds it. manager names the applier
 * ("keel-apply" by default). now is an RFC 3339 time for managedFields.
 * Returns a new object (owned) with managedFields updated for manager.
 * live and applied are borrowed. */
json_t *api_apply(json_t *live, json_t *applied, const char *manager, const char *now);

/* Records a non-apply write (PUT, merge patch, `keel scale`) in obj's
 * managedFields, as Kubernetes does for "Update" operations: the fields
 * that differ between old (the live object before the write; may be NULL)
 * and obj (the object about to be stored; modified in place) are added to
 * manager's "Update" entry (time now) and taken out of every other
 * manager's set; removed fields leave every set; a manager left with an
 * empty set is dropped. Afterwards, an applier that stops setting a field
 * someone else changed since no longer removes it (it is not its field any
 * more), while re-applying a manifest that still sets it puts its value
 * back. Nothing changes when old and obj are equal (ignoring
 * managedFields), so a no-op write stays a no-op. obj's managedFields are
 * taken as they are: copy old's into obj first if the write replaced them.
 * Borrowed arguments. */
void api_managed_update(json_t *obj, json_t *old, const char *manager, const char *now);

/* Deep equality ignoring the keys jansson orders differently: json_equal.
 * Two NULLs are equal; NULL and a value are not. */
bool api_json_equal(json_t *a, json_t *b);

/* Whether obj's "spec" differs between old_obj and new_obj (an absent spec
 * equals an absent spec): the rule for bumping metadata.generation. */
bool api_spec_changed(json_t *old_obj, json_t *new_obj);
