/*
 * gc — the garbage collector controller: carries out gc_plan (gc.h) and
 * expires old Events.
 *
 * It keeps an informer on every kind, and any change anywhere queues the
 * single key "sweep": one reconcile computes the plan over the whole
 * cached snapshot and acts. A sweep is linear in the number of objects,
 * and the work queue folds a burst of changes into one sweep, so this
 * stays cheap without per-object bookkeeping, and is trivially
 * level-triggered: whatever was missed is seen by the next sweep.
 *
 * Caches may lag each other (the Task informer may see a new dependent
 * before the Deployment informer sees its owner), so nothing is deleted
 * on the cache's word alone: before acting, the executor reads the object
 * through the API (it must still be the same uid, not already being
 * deleted), reads each owner the plan believes gone (a live owner with
 * that uid cancels the step), and writes with the live resourceVersion as
 * a precondition. A conflict is an error: the sweep is retried with
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

#define SWEEP_KEY    "sweep"
#define MAX_KINDS    8
#define LAG_RETRY_MS 1000

struct gc {
	struct controller_env *env;
	struct informer *infs[MAX_KINDS];
	struct informer *events;
	size_t n;
};

static void on_add(void *ctx, json_t *obj)
{
	(void)obj;
	controller_enqueue(ctx, SWEEP_KEY);
}

static void on_update(void *ctx, json_t *old_obj, json_t *new_obj)
{
	(void)old_obj;
	on_add(ctx, new_obj);
}

static int gc_setup(struct controller_env *env, void **state, struct kerr *err)
{
	struct gc *g = xcalloc(1, sizeof(*g));
	g->env = env;
	struct informer_handlers h = {
	    .on_add = on_add, .on_update = on_update, .on_delete = on_add, .ctx = env};
	for (size_t i = 0; i < api_kind_count() && g->n < MAX_KINDS; i++) {
		const struct api_kind *k = api_kind_at(i);
		if (controller_informer(env, k, NULL, NULL, &h, &g->infs[g->n], err) < 0) {
			free(g);
			return -EINVAL;
		}
		if (streq(k->plural, "events"))
			g->events = g->infs[g->n];
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

static int gc_reconcile(void *state, struct client *c, const char *key, struct kerr *err)
{
	struct gc *g = state;
	if (!streq(key, SWEEP_KEY))
		return 0;
	_cleanup_json_ json_t *objs = snapshot(g);
	_cleanup_json_ json_t *plan = gc_plan(objs);
	int ret = 0, lagged = 0;
	size_t i;
	json_t *a;
	json_array_foreach(plan, i, a)
	{
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
	while (controller_sleep(g->env, every)) {
		if (g->events)
			expire_events(g, c, ttl);
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
