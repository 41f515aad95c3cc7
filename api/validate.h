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
 *
 * Causes. "field" is the path (api/meta.h syntax), "message" the problem
 * without the path, "reason" one of Kubernetes' field error types:
 *   FieldValueRequired     "Required value"
 *   FieldValueInvalid      "Invalid value: V: why"   (formats, ranges, cross-field rules)
 *   FieldValueTypeInvalid  "must be an integer, got the string \"3\""
 *   FieldValueNotSupported "Unsupported value: \"x\": supported values: ..."
 *   FieldValueDuplicate    "Duplicate value: \"PORT\""
 *   FieldValueForbidden    "Forbidden: ..."
 *   FieldValueTooLong / FieldValueTooMany  size limits
 *   FieldValueUnknown      "unknown field, did you mean spec.replicas?" (keel's own:
 *                          Kubernetes has no cause type for strict-decoding errors)
 * err->msg is `KIND "NAME" is invalid: ` followed by up to ten
 * "field: message" pairs joined by "; ", then ", and N more". At most 100
 * causes are kept. null counts as absent everywhere (YAML `key:`).
 *
 * What is accepted (the tables in api/schema.c are the reference):
 *   every kind: apiVersion "keel/v1", kind, metadata {name (DNS-1123
 *     subdomain; label for Namespace), namespace (label; forbidden on Node
 *     and Namespace), labels (<= 64, Kubernetes key/value rules),
 *     annotations (keys as label keys, <= 256 KiB in all), uid,
 *     resourceVersion, generation, creationTimestamp, deletionTimestamp,
 *     deletionGracePeriodSeconds, ownerReferences [{apiVersion, kind, name,
 *     uid, controller, blockOwnerDeletion}] (one controller at most),
 *     finalizers [qualified names], managedFields [objects]}. No generateName.
 *   Task: spec {image*, command, args, env [{name*, value}] (unique names),
 *     resources {requests, limits: {cpu, memory}} (requests <= limits),
 *     restartPolicy Always|OnFailure|Never, nodeSelector, nodeName, ports
 *     [{name, containerPort* 1-65535, hostPort, protocol TCP|UDP}],
 *     healthCheck {httpGet {path, port*} | exec {command*}, periodSeconds,
 *     timeoutSeconds, failureThreshold, initialDelaySeconds},
 *     terminationGracePeriodSeconds}; status {phase Pending|Scheduled|
 *     Running|Succeeded|Failed, reason, message, nodeName, containerID,
 *     restartCount, startedAt, finishedAt, exitCode, ready, lastState
 *     {exitCode, reason, message, startedAt, finishedAt, output},
 *     hostIP, ports [{name, containerPort*, hostPort, protocol}] (where
 *     each port is published), usage {cpu, memory} (observed),
 *     conditions}.
 *   Deployment: spec {replicas 0-100000, selector {matchLabels,
 *     matchExpressions [{key, operator In|NotIn|Exists|DoesNotExist,
 *     values}]} (must select the template's labels), template* {metadata*
 *     {labels* (non-empty), annotations}, spec* TaskSpec}, strategy {type
 *     RollingUpdate|Recreate, rollingUpdate {maxSurge, maxUnavailable: int
 *     or "N%"; not both 0}}, revisionHistoryLimit, progressDeadlineSeconds
 *     (> minReadySeconds), minReadySeconds, paused}; status
 *     {observedGeneration, replicas, readyReplicas, updatedReplicas,
 *     availableReplicas, unavailableReplicas, collisionCount, conditions}.
 *   Node: spec {unschedulable, taints [{key*, value, effect* NoSchedule|
 *     PreferNoSchedule|NoExecute}]}; status {capacity, allocatable, usage:
 *     {cpu, memory} quantities, conditions, address, heartbeatTime,
 *     nodeInfo {runtime, runtimeVersion, keelVersion, os, arch, hostname,
 *     kernelVersion}, logEndpoint (http(s) URL)}.
 *   Namespace: spec {finalizers}; status {phase Active|Terminating}.
 *   Event (no spec, no status): involvedObject* {kind*, name*, namespace,
 *     uid, apiVersion, resourceVersion, fieldPath}, reason* (<= 128),
 *     message* (<= 4096), type Normal|Warning, count >= 1, firstTimestamp,
 *     lastTimestamp, source {component, host}, reportingComponent,
 *     reportingInstance, action.
 *   A condition: {type*, status* True|False|Unknown, reason, message,
 *     lastUpdateTime, lastTransitionTime, lastHeartbeatTime,
 *     observedGeneration}. Times are RFC 3339 UTC strings.
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
 * /status subresource; causes are named "status.…". NULL or JSON null is
 * valid (no status). -EINVAL "Event has no status" for kinds without one. */
int api_validate_status(const struct api_kind *k, json_t *status, struct kerr *err);

/* The rules of an update, beyond those of api_validate(): what may not
 * change once the object exists. live is the stored object, next the one
 * that would replace it (both borrowed, next validated and defaulted).
 *   Task: spec.nodeName may be set when empty, never changed once set
 *     ("field is immutable once set"; the scheduler's binding and a
 *     manifest that pins a Task both set it once).
 *   Deployment: spec.selector may not change ("field is immutable", as
 *     Kubernetes' apps/v1 has it): Tasks of the old selector would no
 *     longer be counted, and would keep running.
 * Returns 0, or -EINVAL with err and its causes filled as api_validate()
 * does (reason FieldValueInvalid). */
int api_validate_update(const struct api_kind *k, json_t *live, json_t *next, struct kerr *err);

/* Fills defaults in place: metadata.namespace "default" for namespaced
 * kinds when absent; Task restartPolicy Always; Deployment replicas 1,
 * strategy 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds 600,
 * selector from template labels when absent; and so on. Only absent fields
 * are filled, so defaulting twice changes nothing.
 * The full list: TaskSpec (a Task's spec and a Deployment's template spec):
 *   restartPolicy Always, terminationGracePeriodSeconds 30, ports[].protocol
 *   TCP, resources.requests.X = resources.limits.X when only the limit is
 *   set, healthCheck periodSeconds 10, timeoutSeconds 1, failureThreshold 3,
 *   initialDelaySeconds 0, httpGet.path "/".
 * Deployment: replicas 1, revisionHistoryLimit 10, progressDeadlineSeconds
 *   600, minReadySeconds 0, selector {matchLabels: template labels},
 *   strategy.type RollingUpdate and, for RollingUpdate, maxSurge and
 *   maxUnavailable "25%".
 * Event: type Normal, count 1.
 * A field holding the wrong JSON type is left alone for api_validate() to
 * report. Call api_default() before api_validate(). */
void api_default(const struct api_kind *k, json_t *obj);
