/*
 * api/validate — strict validation and defaulting of keel objects.
 *
 * Validation is schema-driven: each kind has a static table of its fields,
 * and an unknown field is an error naming its path and the closest known
 * field ("spec.replica: unknown field, did you mean spec.replicas?").
 * A string where a boolean belongs that YAML 1.1 would have read as one
 * ("yes", "no", "on", "off", "y", "n") is rejected with a hint to write
 * true/false. Every problem found becomes one cause in err->causes
 * ({"field", "reason", "message"}); err->msg summarises them
 * (`Task "web" is invalid: spec.image: Required value`).
 * Pure, thread-safe, no I/O.
 */
#pragma once

#include <jansson.h>

#include "api/kind.h"

struct kerr;

/* Validates a whole object as a client submits it (create, replace, apply).
 * Server-set metadata (uid, resourceVersion, generation, creationTimestamp,
 * deletionTimestamp, managedFields) is accepted and ignored here. status, if
 * present, is validated too. Returns 0 or -EINVAL with causes. */
int api_validate(const struct api_kind *k, json_t *obj, struct kerr *err);

/* Validates a status object (the value of "status") written through the
 * /status subresource. */
int api_validate_status(const struct api_kind *k, json_t *status, struct kerr *err);

/* Fills defaults in place: metadata.namespace "default" for namespaced
 * kinds when absent; Task restartPolicy Always; Deployment replicas 1,
 * strategy 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds 600,
 * selector from template labels when absent; and so on. Only absent fields
 * are filled, so defaulting twice changes nothing. */
void api_default(const struct api_kind *k, json_t *obj);
