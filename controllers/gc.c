/*
 * gc — the garbage collector controller: carries out gc_plan (gc.h) and
 * expires old Events.
 *
 * It keeps an informer on every kind, each indexed by uid, by owner uid
 * and by namespace (informer_add_index), and works per change, not per
 * sweep: the key is one object ("Kind:namespace/name"), and a change
 * queues only the objects whose plan it can change — the object itself
 * when it is added or its ownerReferences, finalizers or deletionTimestamp
 * move; its dependents when it goes or starts being deleted; its owners
 * and its Namespace when it goes (their finalizers wait for it) or a relist
 * shows it replaced (a new uid under its name); every object of a
 * Namespace that starts terminating. A status write queues nothing.
 * reconcile(key) runs gc_plan over the object's neighbourhood —
 * the object, its owners, one referrer, its Namespace, one object of a
 * Namespace — and keeps the actions about that object, so the rules stay
 * those of the pure, unit-tested gc_plan while the work per change stays
 * proportional to the change (a sweep of everything per change made a
 * 10,000-Task rollout quadratic). A full sweep ("sweep") still runs at
 * start and every SWEEP_EVERY_MS, as a level-triggered safety net.
 *
 * Caches may lag each other (the Task informer may see a new dependent
 * before the Deployment informer sees its owner), so nothing is deleted
 * on the cache's word alone: before acting, the executor reads the object
 * through the API (it must still be the same uid, not already being
 * deleted), reads each owner the plan believes gone (a live owner with
 * that uid cancels the step), and writes with the live resourceVersion as
 * a precondition. A conflict is an error: the key is retried with
 * backoff.
 *
 * Event expiry runs on the loop thread: every few seconds, the cached
 * Events whose lastTimestamp is older than --event-ttl are deleted.
 */
#include "controllers/gc.h"

#include <errno.h>
#include <string.h>

#include "api/kind.h"
#include "api/meta.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "controllers/controller.h"

#define SWEEP_KEY      "sweep"
#define SWEEP_EVERY_MS (10 * 60 * 1000)
#define MAX_KINDS      8
#define LAG_RETRY_MS   1000

struct gc {
	struct controller_env *env;
	struct informer *infs[MAX_KINDS];
	const struct api_kind *kinds[MAX_KINDS];
	struct informer *events, *namespaces;
	size_t n;
};

static struct informer *informer_of(struct gc *g, const char *kind)
{
	for (size_t i = 0; kind && i < g->n; i++)
		if (streq(g->kinds[i]->kind, kind))
			return g->infs[i];
	return NULL;
}

/* "Kind:namespace/name" (or "Kind:name"). Owned. */
static char *object_key(json_t *obj)
{
	_cleanup_free_ char *k = informer_key(obj);
	return xasprintf("%s:%s", api_obj_kind(obj) ? api_obj_kind(obj) : "", k);
}

static void enqueue_obj(struct gc *g, json_t *obj)
{
	_cleanup_free_ char *k = object_key(obj);
	controller_enqueue(g->env, k);
}

/* Queues every cached object whose index name holds value. */
static void enqueue_indexed(struct gc *g, const char *name, const char *value)
{
	for (size_t i = 0; value && i < g->n; i++) {
		_cleanup_json_ json_t *objs = informer_by_index(g->infs[i], name, value);
		size_t j;
		json_t *o;
		json_array_foreach(objs, j, o) enqueue_obj(g, o);
	}
}

/* The cached objects one ownerReference names (by uid, in its kind's
 * informer): a new array, or NULL when gc does not watch that kind or the
 * reference has no uid. */
static json_t *owner_objects(struct gc *g, json_t *ref)
{
	struct informer *inf = informer_of(g, json_string_value(json_object_get(ref, "kind")));
	const char *uid = json_string_value(json_object_get(ref, "uid"));
	return inf && uid ? informer_by_index(inf, INFORMER_INDEX_UID, uid) : NULL;
}

static void enqueue_owners(struct gc *g, json_t *obj)
{
	size_t i;
	json_t *ref;
	json_array_foreach(json_object_get(api_obj_meta(obj), "ownerReferences"), i, ref)
	{
		_cleanup_json_ json_t *os = owner_objects(g, ref);
		size_t j;
		json_t *o;
		json_array_foreach(os, j, o) enqueue_obj(g, o);
	}
}

static bool deleting(json_t *obj)
{
	return json_object_get(api_obj_meta(obj), "deletionTimestamp") != NULL;
}

/* An object that starts being deleted (or whose finalizers move): its
 * dependents follow it, and a Namespace's objects are emptied out. */
static void enqueue_dependents(struct gc *g, json_t *obj)
{
	enqueue_indexed(g, INFORMER_INDEX_OWNER, api_obj_uid(obj));
	if (streq(api_obj_kind(obj), "Namespace"))
		enqueue_indexed(g, INFORMER_INDEX_NAMESPACE, api_obj_name(obj));
}

static void on_add(void *ctx, json_t *obj)
{
	struct gc *g = ctx;
	enqueue_obj(g, obj);
	if (deleting(obj))
		enqueue_dependents(g, obj);
}

static bool meta_moved(json_t *a, json_t *b, const char *key)
{
	return !json_equal(json_object_get(api_obj_meta(a), key),
	                   json_object_get(api_obj_meta(b), key));
}

static void on_delete(void *ctx, json_t *obj);

static void on_update(void *ctx, json_t *old_obj, json_t *new_obj)
{
	struct gc *g = ctx;
	if (!streq(api_obj_uid(old_obj), api_obj_uid(new_obj))) {
		/* deleted and made again under the same name while the informer
		 * was away (its relist shows one update): the old one is gone */
		on_delete(ctx, old_obj);
		on_add(ctx, new_obj);
		return;
	}
	bool refs = meta_moved(old_obj, new_obj, "ownerReferences");
	bool fin = meta_moved(old_obj, new_obj, "finalizers") ||
	           meta_moved(old_obj, new_obj, "deletionTimestamp");
	if (old_obj == new_obj) /* a resync: look again at everything */
		refs = fin = true;
	if (refs || fin)
		enqueue_obj(g, new_obj);
	if (refs)
		enqueue_owners(g, old_obj); /* it may no longer hold an owner's finalizer */
	if (fin && deleting(new_obj))
		enqueue_dependents(g, new_obj);
}

static void on_delete(void *ctx, json_t *obj)
{
	struct gc *g = ctx;
	enqueue_indexed(g, INFORMER_INDEX_OWNER, api_obj_uid(obj)); /* now dangling */
	enqueue_owners(g, obj);
	const char *ns = api_obj_namespace(obj);
	if (ns && g->namespaces) {
		_cleanup_json_ json_t *n = informer_get(g->namespaces, ns);
		if (n)
			enqueue_obj(g, n);
	}
}

static int gc_setup(struct controller_env *env, void **state, struct kerr *err)
{
	struct gc *g = xcalloc(1, sizeof(*g));
	g->env = env;
	struct informer_handlers h = {
	    .on_add = on_add, .on_update = on_update, .on_delete = on_delete, .ctx = g};
	for (size_t i = 0; i < api_kind_count() && g->n < MAX_KINDS; i++) {
		const struct api_kind *k = api_kind_at(i);
		if (controller_informer(env, k, NULL, NULL, &h, &g->infs[g->n], err) < 0) {
			free(g);
			return -EINVAL;
		}
		informer_add_index(g->infs[g->n], INFORMER_INDEX_UID, informer_index_uid);
		informer_add_index(g->infs[g->n], INFORMER_INDEX_OWNER, informer_index_owner_uids);
		if (k->namespaced)
			informer_add_index(g->infs[g->n], INFORMER_INDEX_NAMESPACE,
			                   informer_index_namespace);
		if (streq(k->plural, "events"))
			g->events = g->infs[g->n];
		if (streq(k->kind, "Namespace"))
			g->namespaces = g->infs[g->n];
		g->kinds[g->n] = k;
		g->n++;
	}
	*state = g;
	return 0;
}

static void gc_teardown(void *state)
{
	free(state);
}

/* ---- executing one action ---- */

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The live object of action a (*out), or NULL when it is gone or was
 * replaced by another object of the same name (another uid). */
static int get_live(struct client *c, const struct api_kind *k, json_t *a, json_t **out,
                    struct kerr *err)
{
	json_t *live = NULL;
	int r = client_get(c, k, str(a, "namespace"), str(a, "name"), &live, err);
	if (r == -ENOENT) {
		kerr_clear(err);
		*out = NULL;
		return 0;
	}
	if (r < 0)
		return r;
	if (!streq(api_obj_uid(live), str(a, "uid"))) {
		json_decref(live);
		live = NULL;
	}
	*out = live;
	return 0;
}

/* 1 when the owner ref names an object that exists with its uid (the
 * cache lagged), 0 when it is gone. */
static int owner_exists(struct client *c, json_t *ref, const char *ns, struct kerr *err)
{
	const struct api_kind *k = api_kind_by_kind(str(ref, "kind"));
	if (!k || !str(ref, "name"))
		return 0; /* a kind this server does not have: no such owner */
	_cleanup_json_ json_t *o = NULL;
	int r = client_get(c, k, k->namespaced ? ns : NULL, str(ref, "name"), &o, err);
	if (r == -ENOENT) {
		kerr_clear(err);
		return 0;
	}
	if (r < 0)
		return kerr_prefix(err, "reading owner %s %s", k->kind, str(ref, "name"));
	return streq(api_obj_uid(o), str(ref, "uid"));
}

/* Removes from owners (uids) every verify ref whose owner turned out to
 * exist. Returns how many did, or -errno. */
static int confirm_gone(struct client *c, json_t *a, json_t *owners, struct kerr *err)
{
	int lagging = 0;
	size_t i;
	json_t *ref;
	json_array_foreach(json_object_get(a, "verify"), i, ref)
	{
		int r = owner_exists(c, ref, str(a, "namespace"), err);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		lagging++;
		for (size_t j = 0; owners && j < json_array_size(owners); j++)
			if (streq(json_string_value(json_array_get(owners, j)), str(ref, "uid")))
				json_array_remove(owners, j--);
	}
	return lagging;
}

static int act_delete(struct client *c, const struct api_kind *k, json_t *a, json_t *live,
                      struct kerr *err)
{
	if (json_object_get(api_obj_meta(live), "deletionTimestamp"))
		return 0;
	int lag = confirm_gone(c, a, NULL, err);
	if (lag != 0)
		return lag;
	_cleanup_free_ char *path = client_path(k, str(a, "namespace"), str(a, "name"), NULL);
	_cleanup_json_ json_t *body =
	    json_pack("{s:s, s:s, s:s, s:{s:O}}", "kind", "DeleteOptions", "apiVersion", "v1",
	              "propagationPolicy", "Background", "preconditions", "resourceVersion",
	              json_object_get(api_obj_meta(live), "resourceVersion"));
	struct client_response resp = {0};
	int r = client_request(c, "DELETE", path, NULL, body, &resp, err);
	client_response_clear(&resp);
	if (r == -ENOENT) {
		kerr_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	log_info("gc: deleted %s %s%s%s (%s)", k->kind,
	         str(a, "namespace") ? str(a, "namespace") : "", str(a, "namespace") ? "/" : "",
	         str(a, "name"),
	         json_array_size(json_object_get(a, "verify"))
	             ? "its owner is gone"
	             : "its owner or namespace is being deleted");
	return 0;
}

/* Merge-patches metadata.KEY of live to value (NULL: removes it), with the
 * live resourceVersion as a precondition. */
static int patch_meta(struct client *c, const struct api_kind *k, json_t *a, json_t *live,
                      const char *key, json_t *value, struct kerr *err)
{
	_cleanup_json_ json_t *patch =
	    json_pack("{s:{s:O, s:O}}", "metadata", "resourceVersion",
	              json_object_get(api_obj_meta(live), "resourceVersion"), key,
	              value ? value : json_null());
	int r = client_patch(c, k, str(a, "namespace"), str(a, "name"), patch, NULL, NULL, err);
	if (r == -ENOENT) {
		kerr_clear(err);
		return 0;
	}
	return r;
}

static bool in_array(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (streq(json_string_value(v), s)) return true;
	return false;
}

static int act_unown(struct client *c, const struct api_kind *k, json_t *a, json_t *live,
                     struct kerr *err)
{
	_cleanup_json_ json_t *owners = json_deep_copy(json_object_get(a, "owners"));
	int lag = confirm_gone(c, a, owners, err);
	if (lag < 0)
		return lag;
	_cleanup_json_ json_t *keep = json_array();
	json_t *refs = json_object_get(api_obj_meta(live), "ownerReferences");
	size_t i;
	json_t *ref;
	json_array_foreach(refs, i, ref) if (!in_array(owners, str(ref, "uid")))
	    json_array_append(keep, ref);
	if (json_array_size(keep) == json_array_size(refs))
		return lag;
	int r =
	    patch_meta(c, k, a, live, "ownerReferences", json_array_size(keep) ? keep : NULL, err);
	if (r < 0)
		return r;
	log_info("gc: removed %zu ownerReference(s) from %s %s",
	         json_array_size(refs) - json_array_size(keep), k->kind, str(a, "name"));
	return lag;
}

static int act_unfinalize(struct client *c, const struct api_kind *k, json_t *a, json_t *live,
                          struct kerr *err)
{
	_cleanup_json_ json_t *keep = json_array();
	json_t *fin = json_object_get(api_obj_meta(live), "finalizers");
	size_t i;
	json_t *f;
	json_array_foreach(fin, i, f) if (!streq(json_string_value(f), str(a, "finalizer")))
	    json_array_append(keep, f);
	if (json_array_size(keep) == json_array_size(fin))
		return 0;
	int r = patch_meta(c, k, a, live, "finalizers", keep, err);
	if (r < 0)
		return r;
	log_info("gc: removed finalizer %s from %s %s", str(a, "finalizer"), k->kind,
	         str(a, "name"));
	return 0;
}

/* Runs one action. Returns 0 done, > 0 when a cache lagged (look again
 * soon), or -errno. */
static int act(struct client *c, json_t *a, struct kerr *err)
{
	const struct api_kind *k = api_kind_by_kind(str(a, "kind"));
	if (!k)
		return 0;
	_cleanup_json_ json_t *live = NULL;
	int r = get_live(c, k, a, &live, err);
	if (r < 0 || !live)
		return r;
	const char *op = str(a, "op");
	if (streq(op, "delete"))
		r = act_delete(c, k, a, live, err);
	else if (streq(op, "unown"))
		r = act_unown(c, k, a, live, err);
	else
		r = act_unfinalize(c, k, a, live, err);
	if (r < 0)
		kerr_prefix(err, "%s %s %s", op, k->kind, str(a, "name"));
	return r;
}

static json_t *snapshot(struct gc *g)
{
	json_t *all = json_array();
	for (size_t i = 0; i < g->n; i++) {
		_cleanup_json_ json_t *items = informer_list(g->infs[i], NULL, NULL);
		json_array_extend(all, items);
	}
	return all;
}

static void append_first(json_t *to, json_t *from)
{
	if (json_array_size(from) > 0)
		json_array_append(to, json_array_get(from, 0));
}

/* The objects gc_plan needs to decide about obj: obj, its owners, one
 * object referencing it (its finalizers wait for none to be left), its
 * Namespace, and for a Namespace one object in it. New array. */
static json_t *neighbourhood(struct gc *g, json_t *obj)
{
	json_t *snap = json_array();
	json_array_append(snap, obj);
	size_t i;
	json_t *ref;
	json_array_foreach(json_object_get(api_obj_meta(obj), "ownerReferences"), i, ref)
	{
		_cleanup_json_ json_t *os = owner_objects(g, ref);
		append_first(snap, os);
	}
	bool ns_kind = streq(api_obj_kind(obj), "Namespace");
	for (size_t k = 0; k < g->n && (deleting(obj) || ns_kind); k++) {
		if (deleting(obj) &&
		    informer_index_has(g->infs[k], INFORMER_INDEX_OWNER, api_obj_uid(obj))) {
			_cleanup_json_ json_t *rs =
			    informer_by_index(g->infs[k], INFORMER_INDEX_OWNER, api_obj_uid(obj));
			append_first(snap, rs);
		}
		if (ns_kind &&
		    informer_index_has(g->infs[k], INFORMER_INDEX_NAMESPACE, api_obj_name(obj))) {
			_cleanup_json_ json_t *in = informer_by_index(
			    g->infs[k], INFORMER_INDEX_NAMESPACE, api_obj_name(obj));
			append_first(snap, in);
		}
	}
	const char *ns = api_obj_namespace(obj);
	if (ns && g->namespaces) {
		_cleanup_json_ json_t *n = informer_get(g->namespaces, ns);
		if (n)
			json_array_append(snap, n);
	}
	return snap;
}

/* Runs the actions of plan (those about uid only, unless uid is NULL). */
static int run_plan(struct gc *g, struct client *c, json_t *plan, const char *uid, struct kerr *err)
{
	int ret = 0, lagged = 0;
	size_t i;
	json_t *a;
	json_array_foreach(plan, i, a)
	{
		if (uid && !streq(str(a, "uid"), uid))
			continue;
		_cleanup_kerr_ struct kerr e = KERR_INIT;
		int r = act(c, a, &e);
		if (r > 0)
			lagged = 1;
		if (r < 0 && ret == 0) {
			ret = r;
			kerr_move(err, &e);
		}
		if (controller_stopping(g->env))
			break;
	}
	if (ret < 0)
		return ret;
	return lagged ? LAG_RETRY_MS : 0;
}

static int gc_reconcile(void *state, struct client *c, const char *key, struct kerr *err)
{
	struct gc *g = state;
	if (streq(key, SWEEP_KEY)) {
		_cleanup_json_ json_t *objs = snapshot(g);
		_cleanup_json_ json_t *plan = gc_plan(objs);
		return run_plan(g, c, plan, NULL, err);
	}
	const char *colon = strchr(key, ':');
	if (!colon)
		return 0;
	_cleanup_free_ char *kind = xstrndup(key, (size_t)(colon - key));
	struct informer *inf = informer_of(g, kind);
	_cleanup_json_ json_t *obj = inf ? informer_get(inf, colon + 1) : NULL;
	if (!obj || !api_obj_uid(obj))
		return 0; /* gone: what that changes for others was queued on its delete */
	_cleanup_json_ json_t *snap = neighbourhood(g, obj);
	_cleanup_json_ json_t *plan = gc_plan(snap);
	return run_plan(g, c, plan, api_obj_uid(obj), err);
}

/* ---- Event expiry ---- */

static void expire_events(struct gc *g, struct client *c, long ttl_ms)
{
	_cleanup_json_ json_t *evs = informer_list(g->events, NULL, NULL);
	_cleanup_json_ json_t *old = gc_expired_events(evs, time_now_unix(), ttl_ms / 1000);
	size_t i;
	json_t *ev;
	json_array_foreach(old, i, ev)
	{
		const struct api_kind *k = api_kind_by_plural("events");
		_cleanup_free_ char *path =
		    client_path(k, api_obj_namespace(ev), api_obj_name(ev), NULL);
		_cleanup_json_ json_t *body =
		    json_pack("{s:{s:O}}", "preconditions", "resourceVersion",
		              json_object_get(api_obj_meta(ev), "resourceVersion"));
		struct client_response resp = {0};
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		int r = client_request(c, "DELETE", path, NULL, body, &resp, &err);
		client_response_clear(&resp);
		if (r < 0 && r != -ENOENT && r != -ESTALE)
			log_warn("gc: expiring event %s/%s: %s", api_obj_namespace(ev),
			         api_obj_name(ev), kerr_msg(&err));
	}
	if (json_array_size(old))
		log_debug("gc: expired %zu event(s)", json_array_size(old));
}

static void gc_loop(void *state, struct client *c)
{
	struct gc *g = state;
	long ttl = controller_opts(g->env)->event_ttl_ms;
	long every = ttl / 10;
	if (every < 1000)
		every = 1000;
	if (every > 60000)
		every = 60000;
	controller_enqueue(g->env, SWEEP_KEY); /* a first sweep even if nothing changes */
	int64_t last_sweep = time_mono_ms();
	while (controller_sleep(g->env, every)) {
		if (g->events)
			expire_events(g, c, ttl);
		if (time_mono_ms() - last_sweep >= SWEEP_EVERY_MS) {
			controller_enqueue(g->env, SWEEP_KEY);
			last_sweep = time_mono_ms();
		}
	}
}

const struct controller_def controller_gc = {
    .name = "gc",
    .workers = 1,
    .setup = gc_setup,
    .reconcile = gc_reconcile,
    .teardown = gc_teardown,
    .loop = gc_loop,
};
