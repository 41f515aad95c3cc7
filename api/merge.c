/*
 * api/merge — RFC 7386 merge patch, FieldsV1 field sets, server-side apply.
 *
 * Apply is a three-step merge over plain JSON, so that it stays pure and can
 * run inside the store's write transaction:
 *   1. set: every leaf the applied object sets is written into a copy of the
 *      live object (objects merge key by key; arrays and scalars replace);
 *   2. prune: every field the manager's previous field set held, that the
 *      new set no longer holds and that no other manager holds, is removed —
 *      recursively, so a dropped nested object goes with all its fields;
 *   3. record: the manager's managedFields entry gets the new set.
 * The entry's time changes only when the object or the set changed, which
 * is what makes a re-apply of the same manifest produce an object equal to
 * the live one: the server compares and writes nothing.
 *
 * Field sets are Kubernetes' FieldsV1 shape without its "." markers: a key
 * "f:name" maps to {} for a leaf (the field and its whole value) or to the
 * set of its children. A field may be held by several managers; it is
 * removed only when none holds it any more. status and server-set metadata
 * (uid, resourceVersion, generation, timestamps, managedFields) never enter
 * a field set and are never touched by apply.
 */
#include "api/merge.h"

#include "api/kind.h"
#include "api/validate.h"

#include "common/util.h"

json_t *api_merge_patch(json_t *target, json_t *patch)
{
	if (!json_is_object(patch))
		return patch ? json_deep_copy(patch) : json_null();
	json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
	const char *k;
	json_t *v;
	json_object_foreach(patch, k, v)
	{
		if (json_is_null(v)) {
			json_object_del(out, k);
			continue;
		}
		json_object_set_new(out, k, api_merge_patch(json_object_get(out, k), v));
	}
	return out;
}

static const char *const server_meta[] = {
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
};

static bool is_server_meta(const char *k)
{
	for (size_t i = 0; i < ARRAY_SIZE(server_meta); i++)
		if (streq(k, server_meta[i]))
			return true;
	return false;
}

/* Top-level keys apply never sets or records. */
static bool skip_top(const char *k)
{
	return streq(k, "apiVersion") || streq(k, "kind") || streq(k, "status");
}

static json_t *fieldset_rec(json_t *obj, int depth, bool in_meta)
{
	json_t *set = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		if (json_is_null(v) || (depth == 0 && skip_top(k)) ||
		    (in_meta && is_server_meta(k)))
			continue;
		json_t *child = json_is_object(v) && json_object_size(v) > 0
		                    ? fieldset_rec(v, depth + 1, depth == 0 && streq(k, "metadata"))
		                    : json_object();
		_cleanup_free_ char *fk = xasprintf("f:%s", k);
		json_object_set_new(set, fk, child);
	}
	return set;
}

json_t *api_fieldset_of(json_t *obj)
{
	return fieldset_rec(obj, 0, false);
}

/* Step 1: writes the leaves of src into dst (an object). */
static void set_fields(json_t *dst, json_t *src, int depth, bool in_meta)
{
	const char *k;
	json_t *v;
	json_object_foreach(src, k, v)
	{
		if (json_is_null(v) || (depth == 0 && skip_top(k)) ||
		    (in_meta && is_server_meta(k)))
			continue;
		json_t *cur = json_object_get(dst, k);
		if (json_is_object(v)) {
			if (!json_is_object(cur)) {
				cur = json_object();
				json_object_set_new(dst, k, cur);
			}
			set_fields(cur, v, depth + 1, depth == 0 && streq(k, "metadata"));
		} else {
			json_object_set_new(dst, k, json_deep_copy(v));
		}
	}
}

/* Is key fk held (as a leaf or beneath) by any of the others' nodes? */
static bool others_hold(json_t *const *others, size_t n, const char *fk)
{
	for (size_t i = 0; i < n; i++)
		if (others[i] && json_object_get(others[i], fk))
			return true;
	return false;
}

/* Step 2 at one level: dst is the result's object, prev and cur the
 * manager's old and new sets at this level (cur may be NULL), others the
 * other managers' sets at this level (entries may be NULL). An object
 * field is pruned child by child; it goes itself when nobody sets it any
 * more and nothing is left in it. */
static void prune(json_t *dst, json_t *prev, json_t *cur, json_t *const *others, size_t n)
{
	const char *fk;
	json_t *pchild;
	json_object_foreach(prev, fk, pchild)
	{
		if (!strstartswith(fk, "f:"))
			continue;
		const char *k = fk + 2;
		json_t *cchild = cur ? json_object_get(cur, fk) : NULL;
		json_t *val = json_object_get(dst, k);
		if (!val)
			continue;
		bool held = cchild || others_hold(others, n, fk);
		if (json_object_size(pchild) == 0 || !json_is_object(val)) {
			/* A leaf we set as {} that others have filled since is theirs. */
			bool filled = json_is_object(val) && json_object_size(val) > 0;
			if (!held && !filled)
				json_object_del(dst, k);
			continue;
		}
		json_t **sub = xcalloc(n ? n : 1, sizeof *sub);
		for (size_t i = 0; i < n; i++)
			sub[i] = others[i] ? json_object_get(others[i], fk) : NULL;
		prune(val, pchild, cchild, sub, n);
		free(sub);
		if (!held && json_object_size(val) == 0)
			json_object_del(dst, k);
	}
}

static json_t *managed_fields(json_t *obj)
{
	json_t *mf = json_object_get(json_object_get(obj, "metadata"), "managedFields");
	return json_is_array(mf) ? mf : NULL;
}

static bool is_entry_of(json_t *e, const char *manager)
{
	const char *op = json_string_value(json_object_get(e, "operation"));
	return streq(json_string_value(json_object_get(e, "manager")), manager) &&
	       (!op || streq(op, "Apply"));
}

/* The object without metadata.managedFields, for comparison. Owned. */
static json_t *without_managed(json_t *obj)
{
	json_t *c = json_deep_copy(obj);
	json_object_del(json_object_get(c, "metadata"), "managedFields");
	return c;
}

static json_t *new_entry(const char *manager, const char *now, json_t *set)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "manager", manager, "operation", "Apply",
	                 "apiVersion", "keel/v1", "time", now ? now : "", "fieldsType", "FieldsV1",
	                 "fieldsV1", set);
}

/* Step 3: result's managedFields = live's, with manager's entry replaced. */
static void record(json_t *result, json_t *live, json_t *set, const char *manager, const char *now)
{
	json_t *old_mf = managed_fields(live);
	json_t *mine = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(old_mf, i, e) if (is_entry_of(e, manager)) mine = e;
	bool same_set = mine && json_equal(json_object_get(mine, "fieldsV1"), set);
	_cleanup_json_ json_t *a = live ? without_managed(live) : NULL;
	_cleanup_json_ json_t *b = without_managed(result);
	/* The live object carries the server's defaults, some inside atomic
	 * arrays the manifest just replaced (ports[].protocol): compare both as
	 * the server stores them, defaulted, or every re-apply would look like
	 * a change. Defaulting is idempotent, so a defaulted live is unchanged. */
	const struct api_kind *k = api_kind_by_kind(json_string_value(json_object_get(result, "kind")));
	if (k && a)
		api_default(k, a);
	if (k)
		api_default(k, b);
	bool same_obj = a && json_equal(a, b);
	json_t *mf = json_array();
	json_array_foreach(old_mf, i, e)
	{
		if (e != mine)
			json_array_append(mf, e);
		else if (same_set && same_obj)
			json_array_append(mf, e);
		else
			json_array_append_new(mf, new_entry(manager, now, set));
	}
	if (!mine)
		json_array_append_new(mf, new_entry(manager, now, set));
	json_t *meta = json_object_get(result, "metadata");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(result, "metadata", meta);
	}
	json_object_set_new(meta, "managedFields", mf);
}

json_t *api_apply(json_t *live, json_t *applied, const char *manager, const char *now)
{
	if (!manager || !*manager)
		manager = "keel-apply";
	json_t *result = json_is_object(live) ? json_deep_copy(live) : json_object();
	/* apiVersion and kind come from the manifest, status never does. */
	const char *keys[] = {"apiVersion", "kind"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(applied, keys[i]);
		if (json_is_string(v))
			json_object_set(result, keys[i], v);
	}
	_cleanup_json_ json_t *set = api_fieldset_of(applied);
	set_fields(result, applied, 0, false);

	json_t *prev = NULL;
	json_t *mf = managed_fields(live);
	size_t n = json_array_size(mf), i;
	json_t **others = xcalloc(n ? n : 1, sizeof *others);
	size_t no = 0;
	json_t *e;
	json_array_foreach(mf, i, e)
	{
		json_t *fs = json_object_get(e, "fieldsV1");
		if (is_entry_of(e, manager))
			prev = fs;
		else if (json_is_object(fs))
			others[no++] = fs;
	}
	if (json_is_object(prev))
		prune(result, prev, set, others, no);
	free(others);
	record(result, live, set, manager, now);
	return result;
}

/* ---- recording updates (PUT, merge patch) ---- */

/* The leaves that differ between old and cur: changed ones (present in cur)
 * into *chg, removed ones into *rem. Both are field sets. */
static void diff_sets(json_t *old, json_t *cur, json_t *chg, json_t *rem, int depth, bool in_meta)
{
	const char *k;
	json_t *v;
	json_object_foreach(cur, k, v)
	{
		if (json_is_null(v) || (depth == 0 && skip_top(k)) ||
		    (in_meta && is_server_meta(k)))
			continue;
		json_t *o = json_object_get(old, k);
		if (o && json_equal(o, v))
			continue;
		_cleanup_free_ char *fk = xasprintf("f:%s", k);
		if (json_is_object(v) && json_is_object(o) && json_object_size(v) > 0) {
			json_t *c = json_object(), *r = json_object();
			diff_sets(o, v, c, r, depth + 1, depth == 0 && streq(k, "metadata"));
			json_object_set_new(chg, fk, c);
			if (json_object_size(r))
				json_object_set_new(rem, fk, r);
			else
				json_decref(r);
		} else {
			json_object_set_new(chg, fk,
			                    fieldset_rec(json_is_object(v) ? v : NULL, depth + 1,
			                                 depth == 0 && streq(k, "metadata")));
		}
	}
	json_object_foreach(old, k, v)
	{
		if (json_is_null(v) || (depth == 0 && skip_top(k)) ||
		    (in_meta && is_server_meta(k)))
			continue;
		json_t *c = json_object_get(cur, k);
		if (!c || json_is_null(c)) {
			_cleanup_free_ char *fk = xasprintf("f:%s", k);
			json_object_set_new(rem, fk, json_object());
		}
	}
}

/* Removes from set every field named in take (a leaf in take takes the
 * whole subtree). Drops children left empty by the removal. */
static void subtract(json_t *set, json_t *take)
{
	const char *fk;
	json_t *t;
	json_object_foreach(take, fk, t)
	{
		json_t *mine = json_object_get(set, fk);
		if (!mine)
			continue;
		if (json_object_size(t) == 0) {
			json_object_del(set, fk);
		} else if (json_object_size(mine) > 0) {
			subtract(mine, t);
			if (json_object_size(mine) == 0)
				json_object_del(set, fk);
		}
	}
}

static void set_union(json_t *a, json_t *b)
{
	const char *fk;
	json_t *v;
	json_object_foreach(b, fk, v)
	{
		json_t *cur = json_object_get(a, fk);
		if (!cur)
			json_object_set_new(a, fk, json_deep_copy(v));
		else
			set_union(cur, v);
	}
}

void api_managed_update(json_t *obj, json_t *old, const char *manager, const char *now)
{
	if (!json_is_object(obj))
		return;
	if (!manager || !*manager)
		manager = "keel";
	_cleanup_json_ json_t *chg = json_object();
	_cleanup_json_ json_t *rem = json_object();
	diff_sets(json_is_object(old) ? old : NULL, obj, chg, rem, 0, false);
	json_t *mf = managed_fields(obj);
	if (json_object_size(chg) == 0 && json_object_size(rem) == 0)
		return;
	json_t *out = json_array();
	json_t *mine = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(mf, i, e)
	{
		json_t *c = json_deep_copy(e);
		json_t *fs = json_object_get(c, "fieldsV1");
		const char *op = json_string_value(json_object_get(c, "operation"));
		bool is_mine = streq(json_string_value(json_object_get(c, "manager")), manager) &&
		               streq(op, "Update");
		if (json_is_object(fs)) {
			subtract(fs, rem);
			if (!is_mine)
				subtract(fs, chg);
		}
		if (is_mine)
			mine = c;
		if (!is_mine && json_is_object(fs) && json_object_size(fs) == 0)
			json_decref(c); /* a manager left with nothing is forgotten */
		else
			json_array_append_new(out, c);
	}
	if (!mine) {
		mine = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "manager", manager, "operation",
		                 "Update", "apiVersion", "keel/v1", "time", "", "fieldsType",
		                 "FieldsV1", "fieldsV1");
		json_array_append_new(out, mine);
	}
	json_t *fs = json_object_get(mine, "fieldsV1");
	if (!json_is_object(fs)) {
		fs = json_object();
		json_object_set_new(mine, "fieldsV1", fs);
	}
	set_union(fs, chg);
	json_object_set_new(mine, "time", json_string(now ? now : ""));
	json_t *meta = json_object_get(obj, "metadata");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(obj, "metadata", meta);
	}
	json_object_set_new(meta, "managedFields", out);
}

bool api_json_equal(json_t *a, json_t *b)
{
	if (!a || !b)
		return a == b;
	return json_equal(a, b);
}

bool api_spec_changed(json_t *old_obj, json_t *new_obj)
{
	return !api_json_equal(json_object_get(old_obj, "spec"), json_object_get(new_obj, "spec"));
}
