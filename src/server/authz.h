/*
 * server/authz — who may do what: the decision for one request, given the
 * caller's token (its name and role), the route and the method. Pure: no
 * I/O, no locks, thread-safe. http.c asks before a handler runs.
 *
 * Roles (the token file's third field, or `keel token create --role`):
 *   admin   everything.
 *   viewer  reads only: GET/HEAD of discovery, /version, /metrics, every
 *           kind (list, get, watch) and leases. Not task logs (a program's
 *           output is where secrets leak: only admins read it) and not
 *           the token list, nor a node's log key (nodes/NAME/logkey).
 *   node    the token's name is its node's name. Reads what an agent
 *           reads: tasks, nodes, namespaces, leases, discovery, /version,
 *           and its own Node's log key (nodes/ITSNAME/logkey), no other.
 *           Writes only its own Node (create, apply, update, status; once
 *           created, not its spec: unschedulable and taints are the
 *           admins', server/verbs.c refuses a change with 403), its
 *           own lease, and the status subresource of Tasks whose
 *           spec.nodeName is its name. A Task's nodeName cannot change
 *           once set (api_validate_update), so checking the stored Task
 *           before the write cannot race with a rebinding; a Task with no
 *           nodeName is no node's.
 *
 * Some node decisions need what the route does not carry: the name in a
 * create's body, or the stored Task's nodeName. srv_authz_decide then
 * answers NEED_BODY_NAME or NEED_TASK_NODE, and the caller asks again
 * with that field filled.
 */
#pragma once

#include "server/router.h"

struct srv_authz_req {
	const char *user; /* the token's NAME */
	const char *role; /* "admin", "viewer" or "node" */
	enum srv_method method;
	const struct srv_route *route; /* borrowed */
	const char *body_name;         /* metadata.name of a create's body; NULL: not known yet */
	const char *task_node;         /* the stored Task's spec.nodeName, "" when unbound;
	                                  NULL: not known yet */
};

enum srv_authz_result {
	SRV_AUTHZ_ALLOW,
	SRV_AUTHZ_DENY,           /* *msg says why (owned) */
	SRV_AUTHZ_NEED_BODY_NAME, /* ask again with body_name */
	SRV_AUTHZ_NEED_TASK_NODE, /* ask again with task_node */
};

/* Decides q. On DENY, *msg is an owned message for a 403 Status, as
 * Kubernetes words it: `user "alice" (role viewer) cannot create tasks in
 * namespace "default": viewers may only read`. *msg is untouched
 * otherwise. */
enum srv_authz_result srv_authz_decide(const struct srv_authz_req *q, char **msg);
