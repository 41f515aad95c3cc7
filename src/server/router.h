/*
 * server/router — URL paths of the keel API to routes, and the small query
 * parameter parsers the handlers share. Pure functions, no I/O, thread-safe.
 *
 * Paths (see /work/notes/http-contract.md and DESIGN.md "API"):
 *   /healthz /readyz /version /metrics
 *   /apis                                   APIGroupList
 *   /apis/keel                              APIGroup
 *   /apis/keel/v1                           APIResourceList
 *   /apis/keel/v1/{plural}                  collection (all namespaces for
 *                                           namespaced kinds)
 *   /apis/keel/v1/{plural}/{name}[/{sub}]   cluster-scoped item
 *   /apis/keel/v1/namespaces/{ns}/{plural}[/{name}[/{sub}]]
 *       sub: status (kinds with one), binding and log (tasks), logkey (nodes)
 *   /apis/keel/v1/leases[/{name}]           node leases (not a kind)
 *   /apis/keel/v1/tokens[/{name}]           minted API tokens (not a kind)
 * "/apis/keel/v1/namespaces/{ns}/status" is the Namespace's status
 * subresource, as in Kubernetes: "status" is not a plural.
 * A trailing slash is ignored.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "api/kind.h"

struct kerr;

enum srv_method { SRV_GET, SRV_POST, SRV_PUT, SRV_PATCH, SRV_DELETE, SRV_HEAD, SRV_OTHER };

enum srv_route_type {
	SRV_ROUTE_HEALTHZ,
	SRV_ROUTE_READYZ,
	SRV_ROUTE_VERSION,
	SRV_ROUTE_METRICS,
	SRV_ROUTE_APIS,       /* /apis */
	SRV_ROUTE_GROUP,      /* /apis/keel */
	SRV_ROUTE_RESOURCES,  /* /apis/keel/v1 */
	SRV_ROUTE_COLLECTION, /* kind, ns (NULL: all namespaces or cluster-scoped) */
	SRV_ROUTE_ITEM,       /* kind, ns (NULL for cluster-scoped), name, sub */
	SRV_ROUTE_LEASE,      /* /apis/keel/v1/leases[/{name}]: Lease objects, in the store
	                         (server/lease.c); kind NULL, name NULL for the list */
	SRV_ROUTE_TOKEN,      /* /apis/keel/v1/tokens[/{name}]: minted API tokens
	                         (server/tokens.c); kind NULL, name NULL for the list */
};

/* SRV_SUB_LOGKEY: GET nodes/{name}/logkey, the key the API server's log
 * relay presents to that node's agent (server/logkey.c). */
enum srv_subresource { SRV_SUB_NONE, SRV_SUB_STATUS, SRV_SUB_BINDING, SRV_SUB_LOG, SRV_SUB_LOGKEY };

struct srv_route {
	enum srv_route_type type;
	const struct api_kind *kind; /* static; NULL for non-resource routes */
	char *ns;                    /* owned; NULL when the URL names none */
	char *name;                  /* owned; items only */
	enum srv_subresource sub;
};

/* "GET" -> SRV_GET, ...; anything unknown -> SRV_OTHER. */
enum srv_method srv_method_parse(const char *method);

/* Parses a URL path (without the query string). Returns 0 and fills *out
 * (release with srv_route_clear), or -ENOENT with a message fit for a 404
 * Status: for an unknown plural it lists the known ones and suggests the
 * closest (`the server doesn't have a resource type "taks"; known: ...;
 * did you mean tasks?`). *out is untouched on failure. */
int srv_route_parse(const char *path, struct srv_route *out, struct kerr *err);
void srv_route_clear(struct srv_route *r);

/* Whether route r answers method m, and the Allow header value listing the
 * methods it does answer (static string). HEAD is allowed wherever GET is. */
bool srv_route_allows(const struct srv_route *r, enum srv_method m);
const char *srv_route_allow_header(const struct srv_route *r);

/* Query values. NULL means absent. Each returns 0 and sets *out, or
 * -EBADMSG naming the parameter and the bad value; *out is untouched on
 * failure (so callers preset defaults). */
int srv_query_bool(const char *name, const char *value, bool *out, struct kerr *err);
int srv_query_u64(const char *name, const char *value, uint64_t *out, struct kerr *err);
/* dryRun: absent -> false, "All" -> true, anything else -> -EBADMSG. */
int srv_query_dry_run(const char *value, bool *out, struct kerr *err);

/* List continuation tokens: an opaque URL-safe encoding of the last key
 * returned. decode checks that the key lies under prefix, so a token from
 * one collection cannot be replayed against another. Returns 0 and an owned
 * key, or -EBADMSG. */
char *srv_continue_encode(const char *key);
int srv_continue_decode(const char *token, const char *prefix, char **key, struct kerr *err);

/* Checks the raw request URI (as the client sent it, before MHD
 * percent-decodes it: MHD hands decoded values over as C strings, so an
 * encoded NUL would silently truncate them). Each path segment and each
 * query key and value is percent-decoded ('+' is a space in the query) and
 * checked. Returns 0 when all are fine; -EBADMSG "invalid %00 in the URL
 * (...)" naming the segment or parameter when one holds a NUL, or when a
 * query key or value is not valid UTF-8; -EILSEQ naming the path segment
 * (in its encoded form) when a path segment is not valid UTF-8 — the
 * caller decides between 404 (no such path) and 400 (a bad name). */
int srv_url_check(const char *uri, struct kerr *err);
