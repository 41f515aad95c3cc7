/*
 * Fuzz target for api/merge: RFC 7386 merge patch, field sets, server-side
 * apply and the recording of updates in managedFields. The input is split
 * at NUL bytes into up to three JSON texts: the live object (empty: none,
 * a create), the applied object and a merge patch. Properties, a broken
 * one aborts:
 *   - merge patch: {} is the identity on objects; applying a patch twice
 *     equals applying it once; a non-object patch replaces the target;
 *   - apply: the result holds every field the applied object sets, with
 *     its value; the manager's entry records exactly api_fieldset_of() of
 *     the applied object; applying the same object again (defaulted in
 *     between, as the server stores it) gives an equal object;
 *   - api_managed_update: a write that changes nothing records nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kind.h"
#include "api/merge.h"
#include "api/validate.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, json_t *a, json_t *b)
{
	if (ok)
		return;
	char *sa = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *sb = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	fprintf(stderr, "fuzz_merge: %s\n  %s\n  %s\n", what, sa ? sa : "-", sb ? sb : "-");
	abort();
}

/* Top-level and metadata keys apply leaves alone (api/merge.c). */
static bool skipped(const char *k, int depth, bool in_meta)
{
	static const char *const meta[] = {"uid",
	                                   "resourceVersion",
	                                   "generation",
	                                   "creationTimestamp",
	                                   "deletionTimestamp",
	                                   "deletionGracePeriodSeconds",
	                                   "managedFields",
	                                   "selfLink"};
	if (depth == 0 && (streq(k, "apiVersion") || streq(k, "kind") || streq(k, "status")))
		return true;
	for (size_t i = 0; in_meta && i < ARRAY_SIZE(meta); i++)
		if (streq(k, meta[i]))
			return true;
	return false;
}

/* Does obj hold every non-null leaf of applied, with its value? */
static bool holds(json_t *obj, json_t *applied, int depth, bool in_meta)
{
	const char *k;
	json_t *v;
	json_object_foreach(applied, k, v)
	{
		if (json_is_null(v) || skipped(k, depth, in_meta))
			continue;
		json_t *o = json_object_get(obj, k);
		if (json_is_object(v)) {
			if (!json_is_object(o) ||
			    !holds(o, v, depth + 1, depth == 0 && streq(k, "metadata")))
				return false;
		} else if (!o || !json_equal(o, v)) {
			return false;
		}
	}
	return true;
}

/* The fieldsV1 of manager's last Apply entry in obj's managedFields. */
static json_t *applied_set(json_t *obj, const char *manager)
{
	json_t *mf = json_object_get(json_object_get(obj, "metadata"), "managedFields");
	json_t *set = NULL, *e;
	size_t i;
	json_array_foreach(mf, i, e)
	{
		const char *op = json_string_value(json_object_get(e, "operation"));
		if (streq(json_string_value(json_object_get(e, "manager")), manager) &&
		    (!op || streq(op, "Apply")))
			set = json_object_get(e, "fieldsV1");
	}
	return set;
}

static void check_patch(json_t *target, json_t *patch)
{
	_cleanup_json_ json_t *empty = json_object();
	_cleanup_json_ json_t *same = api_merge_patch(target, empty);
	if (json_is_object(target))
		check(json_equal(same, target), "merge patch {} changed the target", target, same);
	if (!patch)
		return;
	_cleanup_json_ json_t *once = api_merge_patch(target, patch);
	_cleanup_json_ json_t *twice = api_merge_patch(once, patch);
	check(json_equal(once, twice), "merge patch is not idempotent", once, twice);
	if (!json_is_object(patch))
		check(json_equal(once, patch), "a non-object patch did not replace the target", once,
		      patch);
}

static void check_apply(json_t *live, json_t *applied)
{
	const char *m = "fuzz-apply";
	const struct api_kind *k =
	    api_kind_by_kind(json_string_value(json_object_get(applied, "kind")));
	_cleanup_json_ json_t *r1 = api_apply(live, applied, m, "2024-01-01T00:00:00Z");
	check(json_is_object(r1), "apply did not return an object", r1, NULL);
	check(holds(r1, applied, 0, false), "apply lost a field the applied object sets", applied,
	      r1);
	_cleanup_json_ json_t *want = api_fieldset_of(applied);
	check(json_equal(applied_set(r1, m), want), "apply recorded another field set", want, r1);
	if (k)
		api_default(k, r1);
	_cleanup_json_ json_t *r2 = api_apply(r1, applied, m, "2024-01-02T00:00:00Z");
	if (k)
		api_default(k, r2);
	check(json_equal(r1, r2), "applying the same object twice changed it", r1, r2);

	/* a write equal to the live object records nothing */
	_cleanup_json_ json_t *w = json_deep_copy(r1);
	api_managed_update(w, r1, "fuzz-update", "2024-01-03T00:00:00Z");
	check(json_equal(w, r1), "a no-op update changed managedFields", r1, w);
	/* a write of applied over the live object: no crash, and another
	 * apply afterwards still sets every field it sets */
	_cleanup_json_ json_t *u = json_deep_copy(applied);
	api_managed_update(u, live, "fuzz-update", "2024-01-03T00:00:00Z");
	_cleanup_json_ json_t *r3 = api_apply(u, applied, m, "2024-01-04T00:00:00Z");
	check(holds(r3, applied, 0, false), "apply after an update lost a field", applied, r3);
}

static json_t *part(const char *s, size_t n, size_t flags)
{
	return n ? json_loadb(s, n, JSON_REJECT_DUPLICATES | flags, NULL) : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16 * 1024)
		return 0;
	const char *s = (const char *)data, *end = s + size;
	const char *p[3] = {s, NULL, NULL};
	size_t n[3] = {size, 0, 0};
	for (int i = 0; i < 2; i++) {
		const char *nul = memchr(p[i], '\0', (size_t)(end - p[i]));
		if (!nul)
			break;
		n[i] = (size_t)(nul - p[i]);
		p[i + 1] = nul + 1;
		n[i + 1] = (size_t)(end - p[i + 1]);
	}
	_cleanup_json_ json_t *live = part(p[0], n[0], 0);
	_cleanup_json_ json_t *applied = p[1] ? part(p[1], n[1], 0) : NULL;
	_cleanup_json_ json_t *patch = p[2] ? part(p[2], n[2], JSON_DECODE_ANY) : NULL;
	if (live && !json_is_object(live))
		return 0;
	check_patch(live, patch);
	check_patch(applied, patch);
	if (json_is_object(applied))
		check_apply(live, applied);
	else if (live)
		check_apply(NULL, live);
	return 0;
}
