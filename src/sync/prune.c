/*
 * prune — the pure part of pruning an apply set: from the live objects
 * that carry the set's label and the keys the manifests (still) define,
 * the ordered list of what to delete.
 *
 * Why the order: apply creates Namespaces first, because everything else
 * may live in them; a prune goes the other way, so that no object is left
 * pointing into a Namespace that is already Terminating. Deployments go
 * before Tasks so that a Deployment's controller is not busy replacing
 * Tasks that a later step would remove anyway.
 *
 * Why the Namespace guard: deleting a Namespace deletes everything in it
 * (the gc controller empties it). A set that once created Namespace "shop"
 * must not, when "shop" leaves the manifests, take down objects someone
 * else put there — another set's, or hand-made ones. Objects owned by what
 * the plan deletes (a Deployment's Tasks) do not hold a Namespace back:
 * they go with their owner anyway.
 */
#include "sync/prune.h"

#include <stdlib.h>

#include "api/meta.h"
#include "common/util.h"

int prune_rank(const struct api_kind *k)
{
	if (streq(k->kind, "Deployment"))
		return 0;
	if (streq(k->kind, "Task"))
		return 1;
	if (streq(k->kind, "Namespace"))
		return 4;
	if (streq(k->kind, "Node"))
		return 3;
	return k->namespaced ? 2 : 3;
}

static const char *ns_or_empty(const char *ns)
{
	return ns ? ns : "";
}

bool prune_key_find(const struct prune_key *keys, size_t n, const struct api_kind *k,
                    const char *ns, const char *name)
{
	const char *want = k->namespaced ? ns_or_empty(ns) : "";
	for (size_t i = 0; i < n; i++) {
		if (keys[i].kind != k || !streq(keys[i].name, name))
			continue;
		if (!k->namespaced || streq(ns_or_empty(keys[i].ns), want))
			return true;
	}
	return false;
}

static int cmp_item(const void *pa, const void *pb)
{
	const struct prune_item *a = pa, *b = pb;
	int ra = prune_rank(a->kind), rb = prune_rank(b->kind);
	if (ra != rb)
		return ra < rb ? -1 : 1;
	int c = strcmp(a->kind->kind, b->kind->kind);
	if (c)
		return c;
	c = strcmp(ns_or_empty(a->ns), ns_or_empty(b->ns));
	return c ? c : strcmp(a->name, b->name);
}

void prune_plan_build(struct prune_plan *p, json_t *live, const struct prune_key *keep,
                      size_t n_keep)
{
	size_t i;
	json_t *obj;
	json_array_foreach(live, i, obj)
	{
		const struct api_kind *k = api_kind_by_kind(api_obj_kind(obj));
		const char *name = api_obj_name(obj);
		if (!k || !name)
			continue;
		const char *ns = k->namespaced ? api_obj_namespace(obj) : NULL;
		if (json_object_get(api_obj_meta(obj), "deletionTimestamp"))
			continue; /* already on its way */
		if (prune_key_find(keep, n_keep, k, ns, name))
			continue;
		p->items = xrealloc(p->items, (p->n + 1) * sizeof(*p->items));
		struct prune_item *it = &p->items[p->n++];
		*it = (struct prune_item){
		    .kind = k, .obj = obj, .ns = ns, .name = name, .uid = api_obj_uid(obj)};
		if (streq(k->kind, "Namespace") && streq(name, "default")) {
			it->action = PRUNE_KEEP;
			it->reason = xstrdup("the namespace \"default\" is never deleted");
		}
	}
	if (p->n > 1)
		qsort(p->items, p->n, sizeof(*p->items), cmp_item);
}

const char **prune_plan_namespaces(const struct prune_plan *p, size_t *n)
{
	const char **v = xcalloc(p->n + 1, sizeof(*v));
	*n = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].action == PRUNE_DELETE &&
		    streq(p->items[i].kind->kind, "Namespace"))
			v[(*n)++] = p->items[i].name;
	return v;
}

/* Is the object with this uid deleted by the plan? */
static bool plan_deletes_uid(const struct prune_plan *p, const char *uid)
{
	if (!uid)
		return false;
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].action == PRUNE_DELETE && streq(p->items[i].uid, uid))
			return true;
	return false;
}

static bool owned_by_plan(const struct prune_plan *p, json_t *obj)
{
	size_t i;
	json_t *ref;
	json_array_foreach(json_object_get(api_obj_meta(obj), "ownerReferences"), i, ref)
	{
		if (plan_deletes_uid(p, json_string_value(json_object_get(ref, "uid"))))
			return true;
	}
	return false;
}

static struct prune_item *planned_namespace(struct prune_plan *p, const char *ns)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].action == PRUNE_DELETE &&
		    streq(p->items[i].kind->kind, "Namespace") && streq(p->items[i].name, ns))
			return &p->items[i];
	return NULL;
}

/* Why obj holds its Namespace, and how telling that is: 0 the set's own
 * object, which the manifests still define (the usual case: the Namespace
 * left the manifests, its objects did not), 1 another set's, 2 an object
 * of no set, 3 one owned by something else (a Deployment's Task). The
 * warning names the most telling holder. */
static int holder_reason(json_t *obj, const char *ref, const char *set, char **reason)
{
	json_t *labels = json_object_get(api_obj_meta(obj), "labels");
	const char *in = json_string_value(json_object_get(labels, PRUNE_SET_LABEL));
	json_t *owner = json_array_get(json_object_get(api_obj_meta(obj), "ownerReferences"), 0);
	if (in && set && streq(in, set)) {
		*reason = xasprintf("it still holds %s, which the manifests still define (in this "
		                    "apply set, \"%s\"); it keeps the namespace",
		                    ref, set);
		return 0;
	}
	if (in) {
		*reason = xasprintf("it still holds %s, which belongs to apply set \"%s\"", ref, in);
		return 1;
	}
	if (!owner) {
		*reason = xasprintf("it still holds %s, which is in no apply set", ref);
		return 2;
	}
	const struct api_kind *ok = api_kind_by_kind(json_string_value(json_object_get(owner, "kind")));
	const char *on = json_string_value(json_object_get(owner, "name"));
	*reason = xasprintf("it still holds %s, which is in no apply set (owned by %s/%s)", ref,
	                    ok ? ok->singular : "object", on ? on : "");
	return 3;
}

/* A Namespace this guard turned into PRUNE_KEEP (its reason may yet be
 * replaced by a more telling one); not "default", kept for its own sake. */
static struct prune_item *kept_namespace(struct prune_plan *p, const char *ns)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].action == PRUNE_KEEP && p->items[i].guarded &&
		    streq(p->items[i].kind->kind, "Namespace") && streq(p->items[i].name, ns))
			return &p->items[i];
	return NULL;
}

void prune_plan_guard_namespaces(struct prune_plan *p, json_t *contents, const char *set)
{
	size_t i;
	json_t *obj;
	_cleanup_free_ int *rank = xcalloc(p->n + 1, sizeof(*rank));
	json_array_foreach(contents, i, obj)
	{
		const struct api_kind *k = api_kind_by_kind(api_obj_kind(obj));
		if (!k || !k->namespaced || streq(k->kind, "Event"))
			continue;
		if (json_object_get(api_obj_meta(obj), "deletionTimestamp"))
			continue; /* on its way out: it holds nothing back */
		struct prune_item *ns = planned_namespace(p, api_obj_namespace(obj));
		if (!ns && !(ns = kept_namespace(p, api_obj_namespace(obj))))
			continue;
		if (plan_deletes_uid(p, api_obj_uid(obj)) || owned_by_plan(p, obj))
			continue;
		_cleanup_free_ char *ref = xasprintf("%s/%s", k->singular, api_obj_name(obj));
		char *reason = NULL;
		int r = holder_reason(obj, ref, set, &reason);
		size_t at = (size_t)(ns - p->items);
		if (ns->action == PRUNE_KEEP && rank[at] <= r) {
			free(reason);
			continue;
		}
		ns->action = PRUNE_KEEP;
		ns->guarded = true;
		free(ns->reason);
		ns->reason = reason;
		rank[at] = r;
	}
}

size_t prune_plan_deletions(const struct prune_plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->items[i].action == PRUNE_DELETE;
	return n;
}

void prune_plan_free(struct prune_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i].reason);
	free(p->items);
	p->items = NULL;
	p->n = 0;
}
