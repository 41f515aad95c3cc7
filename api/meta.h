/*
 * api/meta — object metadata: names, labels, field paths and accessors for
 * the Kubernetes envelope. Pure functions, thread-safe, no I/O.
 *
 * Field paths name a place in an object the way Kubernetes' field errors do:
 * "spec.template.spec.env[0].name"; a map key that is not an identifier
 * ([A-Za-z_][A-Za-z0-9_-]*) is bracketed: "metadata.labels[app.kubernetes.io/name]".
 * manifests/yaml records source positions under the same paths, so an error
 * the server reports for a field can be shown at its file:line.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct kerr;

/* Path building; results are owned (free()). parent may be NULL or "". */
char *api_path_key(const char *parent, const char *key);
char *api_path_index(const char *parent, size_t index);

/* DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
bool api_is_dns1123_label(const char *s);
/* DNS-1123 subdomain: labels joined by '.', at most 253 characters. */
bool api_is_dns1123_subdomain(const char *s);
/* Label key: [prefix/]name, prefix a DNS-1123 subdomain (<=253), name
 * <=63 of [A-Za-z0-9._-] starting and ending alphanumeric. */
bool api_is_label_key(const char *s);
/* Label value: empty, or <=63 of [A-Za-z0-9._-] starting and ending alphanumeric. */
bool api_is_label_value(const char *s);

/* Borrowed accessors; NULL (or 0) when absent or of the wrong type
 * (api_obj_rv() also gives 0 for a resourceVersion that is not decimal). */
json_t *api_obj_meta(json_t *obj);
const char *api_obj_name(json_t *obj);
const char *api_obj_namespace(json_t *obj);
const char *api_obj_kind(json_t *obj);
const char *api_obj_uid(json_t *obj);
json_t *api_obj_labels(json_t *obj);
/* metadata.resourceVersion is a decimal string, as in Kubernetes. */
uint64_t api_obj_rv(json_t *obj);
int64_t api_obj_generation(json_t *obj);
/* Borrowed value at a dotted path ("spec.nodeName", "status.phase"), or NULL.
 * Brackets name a key with dots or an array index, as api_path_key() and
 * api_path_index() write them: "metadata.labels[app.kubernetes.io/name]",
 * "spec.env[0].name". */
json_t *api_obj_get_path(json_t *obj, const char *dotted);
