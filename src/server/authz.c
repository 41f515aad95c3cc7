/*
 * server/authz — the role table of authz.h as code.
 *
 * Each role is one function that returns NULL to allow and a reason to
 * deny; the sentence around the reason ("user X (role R) cannot VERB
 * RESOURCE ...") is built once, from the route, so every denial names the
 * caller, the verb, the resource and why, the way Kubernetes' RBAC
 * messages do. Anything a role does not list is denied: a new route or
 * kind is closed to viewers and nodes until someone opens it here.
 */
#include "server/authz.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/util.h"

static bool is_read(enum srv_method m)
{
	return m == SRV_GET || m == SRV_HEAD;
}

static const char *verb(const struct srv_authz_req *q)
{
	const struct srv_route *rt = q->route;
	switch (q->method) {
	case SRV_GET:
	case SRV_HEAD:
		return rt->type == SRV_ROUTE_COLLECTION || (rt->type != SRV_ROUTE_ITEM && !rt->name)
		           ? "list"
		           : "get";
	case SRV_POST:
		return "create";
	case SRV_PUT:
		return "update";
	case SRV_PATCH:
		return "patch";
	case SRV_DELETE:
		return "delete";
	default:
		return "access";
	}
}

/* "tasks", "tasks/status", "leases", "tokens", "/metrics". */
static void resource(const struct srv_authz_req *q, struct sbuf *b)
{
	const struct srv_route *rt = q->route;
	static const char *const subs[] = {"", "/status", "/binding", "/log", "/logkey"};
	switch (rt->type) {
	case SRV_ROUTE_COLLECTION:
	case SRV_ROUTE_ITEM:
		sbuf_printf(b, "%s%s", rt->kind->plural, subs[rt->sub]);
		break;
	case SRV_ROUTE_LEASE:
		sbuf_puts(b, "leases");
		break;
	case SRV_ROUTE_TOKEN:
		sbuf_puts(b, "tokens");
		break;
	case SRV_ROUTE_METRICS:
		sbuf_puts(b, "/metrics");
		break;
	case SRV_ROUTE_VERSION:
		sbuf_puts(b, "/version");
		break;
	default:
		sbuf_puts(b, "the API's discovery documents");
		break;
	}
	const char *name = rt->name ? rt->name : q->body_name;
	if (name && *name)
		sbuf_printf(b, " \"%s\"", name);
	if (rt->ns)
		sbuf_printf(b, " in namespace \"%s\"", rt->ns);
}

static char *deny(const struct srv_authz_req *q, const char *why)
{
	struct sbuf b = SBUF_INIT;
	sbuf_printf(&b, "user \"%s\" (role %s) cannot %s ", q->user, q->role, verb(q));
	resource(q, &b);
	sbuf_printf(&b, ": %s", why);
	return sbuf_take(&b);
}

static bool kind_is(const struct srv_route *rt, const char *plural)
{
	return rt->kind && streq(rt->kind->plural, plural);
}

static const char *viewer(const struct srv_authz_req *q)
{
	const struct srv_route *rt = q->route;
	if (!is_read(q->method))
		return "viewers may only read";
	if (rt->type == SRV_ROUTE_TOKEN)
		return "only admins see the API tokens";
	if (rt->sub == SRV_SUB_LOG && (rt->type == SRV_ROUTE_ITEM))
		return "a task's output may hold secrets: only admins read task logs";
	if (rt->sub == SRV_SUB_LOGKEY)
		return "only admins and the node itself read a log key";
	return NULL;
}

static const char *node_read(const struct srv_authz_req *q)
{
	const struct srv_route *rt = q->route;
	switch (rt->type) {
	case SRV_ROUTE_HEALTHZ:
	case SRV_ROUTE_READYZ:
	case SRV_ROUTE_VERSION:
	case SRV_ROUTE_APIS:
	case SRV_ROUTE_GROUP:
	case SRV_ROUTE_RESOURCES:
	case SRV_ROUTE_LEASE:
		return NULL;
	case SRV_ROUTE_COLLECTION:
	case SRV_ROUTE_ITEM:
		if (rt->sub == SRV_SUB_LOG)
			return "a task's output may hold secrets: only admins read task logs";
		if (rt->sub == SRV_SUB_LOGKEY)
			return streq(rt->name, q->user) ? NULL
			                                : "a node reads only its own log key";
		if (kind_is(rt, "tasks") || kind_is(rt, "nodes") || kind_is(rt, "namespaces"))
			return NULL;
		break;
	default:
		break;
	}
	return "a node reads only tasks, nodes, namespaces, leases and discovery";
}

/* Writes to nodes: only its own. */
static const char *node_write_node(const struct srv_authz_req *q, enum srv_authz_result *need)
{
	const struct srv_route *rt = q->route;
	const char *name = rt->name;
	if (rt->type == SRV_ROUTE_COLLECTION) {
		if (!q->body_name) {
			*need = SRV_AUTHZ_NEED_BODY_NAME;
			return NULL;
		}
		name = q->body_name;
	}
	if (q->method == SRV_DELETE)
		return "a node may not delete objects";
	if (streq(name, q->user))
		return NULL;
	return "a node may write only its own Node";
}

static const char *node_write_task(const struct srv_authz_req *q, enum srv_authz_result *need)
{
	const struct srv_route *rt = q->route;
	if (q->method == SRV_DELETE)
		return "a node may not delete objects";
	if (rt->type != SRV_ROUTE_ITEM)
		return "a node may write only the status of the Tasks bound to it";
	if (rt->sub == SRV_SUB_BINDING)
		return "only the scheduler binds Tasks to nodes";
	if (rt->sub != SRV_SUB_STATUS)
		return "a node may write only the status of its Tasks, not their spec or metadata";
	if (!q->task_node) {
		*need = SRV_AUTHZ_NEED_TASK_NODE;
		return NULL;
	}
	if (streq(q->task_node, q->user))
		return NULL;
	if (!*q->task_node)
		return "the task is not bound to a node";
	return "the task is bound to another node";
}

static const char *node(const struct srv_authz_req *q, enum srv_authz_result *need)
{
	const struct srv_route *rt = q->route;
	if (is_read(q->method))
		return node_read(q);
	if (rt->type == SRV_ROUTE_LEASE)
		return streq(rt->name, q->user) ? NULL : "a node may renew only its own lease";
	if (kind_is(rt, "nodes") &&
	    (rt->type == SRV_ROUTE_COLLECTION || rt->type == SRV_ROUTE_ITEM))
		return node_write_node(q, need);
	if (kind_is(rt, "tasks") &&
	    (rt->type == SRV_ROUTE_COLLECTION || rt->type == SRV_ROUTE_ITEM))
		return node_write_task(q, need);
	if (q->method == SRV_DELETE)
		return "a node may not delete objects";
	return "a node may write only its own Node, its lease and the status of its Tasks";
}

enum srv_authz_result srv_authz_decide(const struct srv_authz_req *q, char **msg)
{
	enum srv_authz_result need = SRV_AUTHZ_ALLOW;
	const char *why;
	if (streq(q->role, "admin"))
		return SRV_AUTHZ_ALLOW;
	if (streq(q->role, "viewer"))
		why = viewer(q);
	else if (streq(q->role, "node"))
		why = node(q, &need);
	else
		why = "unknown role";
	if (!why)
		return need;
	*msg = deny(q, why);
	return SRV_AUTHZ_DENY;
}
