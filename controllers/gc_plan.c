/*
 * gc_plan — the garbage collector's decisions as a pure function of one
 * snapshot of every object (see gc.h for the rules). It follows
 * Kubernetes' attemptToDelete: an owner is "solid" when it exists and is
 * not waiting for its dependents (foreground deletion), "dangling" when it
 * is absent, "waiting" when it is being deleted in the foreground; a
 * dependent with no solid owner left is deleted, one with some keeps only
 * the references to those. Owners that orphan lose their references
 * whatever else holds. Two passes over the array: indexes first, then one
 * action list in the order of the objects, so a plan is reproducible.
 */
#include "controllers/gc.h"

#include <stdbool.h>
#include <string.h>

#include "api/meta.h"
#include "common/util.h"

static bool deleting(json_t *obj)
{
	return json_is_string(json_object_get(api_obj_meta(obj), "deletionTimestamp"));
}

static bool has_finalizer(json_t *obj, const char *f)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(api_obj_meta(obj), "finalizers"), i, v)
	{
		if (streq(json_string_value(v), f))
			return true;
	}
	return false;
}

static bool usable(json_t *obj)
{
	return api_obj_kind(obj) && api_obj_name(obj) && api_obj_uid(obj);
}

static json_t *action(json_t *obj, const char *op)
{
	json_t *a = json_pack("{s:s, s:s, s:s, s:s}", "op", op, "kind", api_obj_kind(obj), "name",
	                      api_obj_name(obj), "uid", api_obj_uid(obj));
	const char *ns = api_obj_namespace(obj);
	if (ns)
		json_object_set_new(a, "namespace", json_string(ns));
	return a;
}

struct index {
	json_t *by_uid;    /* uid -> object (borrowed values) */
	json_t *referrers; /* uid -> number of objects referencing it */
	json_t *terminate; /* namespace name -> true: being emptied */
	json_t *populated; /* namespace name -> true: still holds objects */
};

static void index_build(struct index *ix, json_t *objects)
{
	ix->by_uid = json_object();
	ix->referrers = json_object();
	ix->terminate = json_object();
	ix->populated = json_object();
	size_t i;
	json_t *o;
	json_array_foreach(objects, i, o)
	{
		if (!usable(o))
			continue;
		json_object_set(ix->by_uid, api_obj_uid(o), o);
		if (api_obj_namespace(o))
			json_object_set_new(ix->populated, api_obj_namespace(o), json_true());
		if (streq(api_obj_kind(o), "Namespace") && deleting(o) &&
		    has_finalizer(o, GC_FINALIZER_NAMESPACE))
			json_object_set_new(ix->terminate, api_obj_name(o), json_true());
		size_t j;
		json_t *ref;
		json_array_foreach(json_object_get(api_obj_meta(o), "ownerReferences"), j, ref)
		{
			const char *uid = json_string_value(json_object_get(ref, "uid"));
			if (!uid)
				continue;
			json_int_t n = json_integer_value(json_object_get(ix->referrers, uid));
			json_object_set_new(ix->referrers, uid, json_integer(n + 1));
		}
	}
}

static void index_clear(struct index *ix)
{
	json_decref(ix->by_uid);
	json_decref(ix->referrers);
	json_decref(ix->terminate);
	json_decref(ix->populated);
}

/* The actions for dependent d from its ownerReferences. */
static void plan_dependent(struct index *ix, json_t *d, json_t *out)
{
	_cleanup_json_ json_t *dangling = json_array(); /* ownerReferences */
	_cleanup_json_ json_t *drop = json_array();   /* uids to remove when solid owners remain */
	_cleanup_json_ json_t *orphan = json_array(); /* uids of orphaning owners */
	size_t solid = 0, i;
	json_t *ref;
	json_array_foreach(json_object_get(api_obj_meta(d), "ownerReferences"), i, ref)
	{
		json_t *uid = json_object_get(ref, "uid");
		if (!json_is_string(uid))
			continue;
		json_t *o = json_object_get(ix->by_uid, json_string_value(uid));
		if (!o) {
			json_array_append(dangling, ref);
			json_array_append(drop, uid);
		} else if (deleting(o) && has_finalizer(o, GC_FINALIZER_FOREGROUND)) {
			json_array_append(drop, uid);
		} else {
			solid++;
			if (deleting(o) && has_finalizer(o, GC_FINALIZER_ORPHAN))
				json_array_append(orphan, uid);
		}
	}
	if (json_array_size(drop) > 0 && solid == 0) {
		if (!deleting(d)) {
			json_t *a = action(d, "delete");
			json_object_set(a, "verify", dangling);
			json_array_append_new(out, a);
		}
		return;
	}
	json_array_extend(drop, orphan);
	if (json_array_size(drop) == 0)
		return;
	json_t *a = action(d, "unown");
	json_object_set(a, "owners", drop);
	json_object_set(a, "verify", dangling);
	json_array_append_new(out, a);
}

static void plan_finalizers(struct index *ix, json_t *o, json_t *out)
{
	if (!deleting(o))
		return;
	bool referenced = json_integer_value(json_object_get(ix->referrers, api_obj_uid(o))) > 0;
	const char *fs[] = {GC_FINALIZER_ORPHAN, GC_FINALIZER_FOREGROUND};
	for (size_t i = 0; i < ARRAY_SIZE(fs); i++) {
		if (!referenced && has_finalizer(o, fs[i])) {
			json_t *a = action(o, "unfinalize");
			json_object_set_new(a, "finalizer", json_string(fs[i]));
			json_array_append_new(out, a);
		}
	}
	if (streq(api_obj_kind(o), "Namespace") && has_finalizer(o, GC_FINALIZER_NAMESPACE) &&
	    !json_object_get(ix->populated, api_obj_name(o))) {
		json_t *a = action(o, "unfinalize");
		json_object_set_new(a, "finalizer", json_string(GC_FINALIZER_NAMESPACE));
		json_array_append_new(out, a);
	}
}

json_t *gc_plan(json_t *objects)
{
	struct index ix;
	index_build(&ix, objects);
	json_t *out = json_array();
	size_t i;
	json_t *o;
	json_array_foreach(objects, i, o)
	{
		if (!usable(o))
			continue;
		const char *ns = api_obj_namespace(o);
		if (ns && json_object_get(ix.terminate, ns)) {
			if (!deleting(o)) {
				json_t *a = action(o, "delete");
				json_object_set_new(a, "verify", json_array());
				json_array_append_new(out, a);
			}
			continue;
		}
		plan_dependent(&ix, o, out);
	}
	json_array_foreach(objects, i, o)
	{
		if (usable(o))
			plan_finalizers(&ix, o, out);
	}
	index_clear(&ix);
	return out;
}

static int64_t event_time(json_t *ev)
{
	const char *keys[] = {"lastTimestamp", "firstTimestamp"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *s = json_string_value(json_object_get(ev, keys[i]));
		int64_t t = s ? time_parse_rfc3339(s) : -1;
		if (t > 0)
			return t;
	}
	const char *c = json_string_value(json_object_get(api_obj_meta(ev), "creationTimestamp"));
	return c ? time_parse_rfc3339(c) : -1;
}

json_t *gc_expired_events(json_t *events, int64_t now, int64_t ttl_s)
{
	json_t *out = json_array();
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev)
	{
		int64_t t = event_time(ev);
		if (t > 0 && t < now - ttl_s)
			json_array_append(out, ev);
	}
	return out;
}
