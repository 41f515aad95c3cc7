/*
 * api/kind — the table of keel's kinds (API group "keel", version "v1").
 * Static data; thread-safe; nothing here is owned by the caller.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define API_GROUP "keel"
#define API_VERSION "v1"
#define API_GROUP_VERSION "keel/v1"

struct api_kind {
	const char *kind;               /* "Deployment" */
	const char *list_kind;          /* "DeploymentList" */
	const char *plural;             /* "deployments": the URL segment */
	const char *singular;           /* "deployment" */
	const char *const *short_names; /* NULL-terminated, e.g. {"deploy", NULL} */
	bool namespaced;                /* false for Node and Namespace */
	bool has_status;                /* has a /status subresource */
};

size_t api_kind_count(void);
/* i < api_kind_count(); returns a static entry. */
const struct api_kind *api_kind_at(size_t i);
/* Exact match on `kind` ("Task"); NULL if unknown. */
const struct api_kind *api_kind_by_kind(const char *kind);
/* Exact match on `plural` ("tasks"); NULL if unknown. */
const struct api_kind *api_kind_by_plural(const char *plural);
/* What a CLI user may type: kind, plural, singular or short name, any case
 * ("Task", "tasks", "task", "deploy", "ns"). NULL if unknown. */
const struct api_kind *api_kind_resolve(const char *name);
/* Lease (keel/v1, cluster-scoped, /apis/keel/v1/leases): node heartbeats
 * and the controllers' leader leases. Deliberately not in the table that
 * api_kind_count, _at, _by_kind, _by_plural and _resolve walk: its API is its own (PUT renews
 * or acquires, GET reads or lists; no create, patch, delete or watch), so
 * discovery, the watch hub, gc and apply do not see it. Static. */
const struct api_kind *api_kind_lease(void);
/* The controller whose leader Lease is named name ("keel-tasks" ->
 * "tasks", static), or NULL: such names are no Node's (validation) and no
 * node token's lease, so that node leases and leader leases, which share
 * the Lease names, never collide. */
const char *api_lease_reserved_for(const char *name);
/* The plural closest to a mistyped name ("deploymnets" -> "deployments"),
 * or NULL if none is close. Static string. */
const char *api_kind_suggest(const char *name);
