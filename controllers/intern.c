/*
 * intern — hash-consing for the informers' caches (see intern.h).
 *
 * Bottom-up: a node's children are interned first, so two arrays or
 * objects are equal exactly when their keys are equal and their children
 * are the same pointers; hashing and comparing a node therefore costs its
 * own width, never its depth. A node that is already known costs no
 * allocation at all: the children are looked up, the parent is found by
 * their pointers, and only what is new is built.
 *
 * The table is open addressing (linear probing, at most half full) of
 * (hash, value); a sweep drops the values whose only holder is the table
 * — repeatedly, since freeing a parent can leave its children unheld —
 * and rehashes the survivors. true/false/null are jansson's singletons and
 * are never in the table.
 */
#include "controllers/intern.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define MIN_CAP       1024
#define SWEEP_AT_LEAST 4096

struct slot {
	uint64_t hash;
	json_t *v; /* NULL: empty */
};

struct intern {
	struct slot *slots;
	size_t cap, count;
	size_t sweep_at; /* sweep when count reaches this */
};

struct intern *intern_new(void)
{
	struct intern *t = xcalloc(1, sizeof *t);
	t->cap = MIN_CAP;
	t->slots = xcalloc(t->cap, sizeof *t->slots);
	t->sweep_at = SWEEP_AT_LEAST;
	return t;
}

void intern_free(struct intern *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->cap; i++)
		json_decref(t->slots[i].v);
	free(t->slots);
	free(t);
}

size_t intern_count(const struct intern *t)
{
	return t->count;
}

/* ---- hashing ---------------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
	uint64_t f = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		f = (f ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return mix(h, f ^ n);
}

static uint64_t hash_ptr(uint64_t h, const json_t *p)
{
	return mix(h, (uint64_t)(uintptr_t)p >> 4);
}

/* ---- the table ---------------------------------------------------------------- */

static void put(struct slot *slots, size_t cap, uint64_t hash, json_t *v)
{
	size_t i = hash & (cap - 1);
	while (slots[i].v)
		i = (i + 1) & (cap - 1);
	slots[i].hash = hash;
	slots[i].v = v;
}

static void rehash(struct intern *t, size_t cap)
{
	struct slot *slots = xcalloc(cap, sizeof *slots);
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].v)
			put(slots, cap, t->slots[i].hash, t->slots[i].v);
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
}

/* Takes the caller's reference to v. */
static void insert(struct intern *t, uint64_t hash, json_t *v)
{
	if (2 * (t->count + 1) > t->cap)
		rehash(t, 2 * t->cap);
	put(t->slots, t->cap, hash, json_incref(v));
	t->count++;
}

static size_t refs(json_t *v)
{
	return __atomic_load_n(&v->refcount, __ATOMIC_ACQUIRE);
}

size_t intern_sweep(struct intern *t)
{
	size_t dropped = 0, pass;
	do {
		pass = 0;
		for (size_t i = 0; i < t->cap; i++) {
			json_t *v = t->slots[i].v;
			if (v && refs(v) == 1) {
				t->slots[i].v = NULL;
				json_decref(v); /* may leave its children unheld: another pass */
				pass++;
			}
		}
		dropped += pass;
	} while (pass);
	t->count -= dropped;
	size_t cap = MIN_CAP;
	while (cap < 2 * t->count)
		cap *= 2;
	rehash(t, cap < t->cap ? cap : t->cap);
	t->sweep_at = 2 * t->count > SWEEP_AT_LEAST ? 2 * t->count : SWEEP_AT_LEAST;
	return dropped;
}

/* ---- leaves -------------------------------------------------------------------- */

static bool same_leaf(json_t *a, json_t *b)
{
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
	case JSON_INTEGER:
		return json_integer_value(a) == json_integer_value(b);
	case JSON_REAL: {
		double x = json_real_value(a), y = json_real_value(b);
		return memcmp(&x, &y, sizeof x) == 0;
	}
	default:
		return false;
	}
}

static json_t *intern_leaf(struct intern *t, json_t *v)
{
	uint64_t h = (uint64_t)json_typeof(v);
	switch (json_typeof(v)) {
	case JSON_STRING:
		h = hash_bytes(h, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		h = mix(h, (uint64_t)json_integer_value(v));
		break;
	default: {
		double x = json_real_value(v);
		uint64_t bits;
		memcpy(&bits, &x, sizeof bits);
		h = mix(h, bits);
	}
	}
	for (size_t i = h & (t->cap - 1); t->slots[i].v; i = (i + 1) & (t->cap - 1))
		if (t->slots[i].hash == h && same_leaf(t->slots[i].v, v))
			return json_incref(t->slots[i].v);
	json_t *n = json_typeof(v) == JSON_STRING ? json_stringn_nocheck(json_string_value(v),
	                                                                 json_string_length(v))
	            : json_typeof(v) == JSON_INTEGER ? json_integer(json_integer_value(v))
	                                             : json_real(json_real_value(v));
	insert(t, h, n);
	return n;
}

/* ---- arrays and objects ---------------------------------------------------------- */

/* c (an interned array/object) has exactly keys (NULL for arrays) and kids, in order. */
static bool same_node(json_t *c, json_t *v, json_t **kids, size_t n)
{
	if (json_typeof(c) != json_typeof(v))
		return false;
	if (json_is_array(c)) {
		if (json_array_size(c) != n)
			return false;
		for (size_t i = 0; i < n; i++)
			if (json_array_get(c, i) != kids[i])
				return false;
		return true;
	}
	if (json_object_size(c) != n)
		return false;
	void *ic = json_object_iter(c), *iv = json_object_iter(v);
	for (size_t i = 0; i < n; i++, ic = json_object_iter_next(c, ic),
	            iv = json_object_iter_next(v, iv)) {
		if (json_object_iter_value(ic) != kids[i] ||
		    !streq(json_object_iter_key(ic), json_object_iter_key(iv)))
			return false;
	}
	return true;
}

static json_t *intern_node(struct intern *t, json_t *v)
{
	size_t n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
	json_t *one[8];
	json_t **kids = n <= 8 ? one : xcalloc(n, sizeof *kids);
	uint64_t h = (uint64_t)json_typeof(v);
	if (json_is_array(v)) {
		for (size_t i = 0; i < n; i++) {
			kids[i] = intern_tree(t, json_array_get(v, i));
			h = hash_ptr(h, kids[i]);
		}
	} else {
		size_t i = 0;
		const char *key;
		json_t *m;
		json_object_foreach(v, key, m)
		{
			kids[i] = intern_tree(t, m);
			h = hash_ptr(hash_bytes(h, key, strlen(key)), kids[i++]);
		}
	}
	json_t *found = NULL;
	for (size_t i = h & (t->cap - 1); t->slots[i].v && !found; i = (i + 1) & (t->cap - 1))
		if (t->slots[i].hash == h && same_node(t->slots[i].v, v, kids, n))
			found = json_incref(t->slots[i].v);
	if (found) {
		for (size_t i = 0; i < n; i++)
			json_decref(kids[i]);
	} else if (json_is_array(v)) {
		found = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(found, kids[i]);
		insert(t, h, found);
	} else {
		found = json_object();
		size_t i = 0;
		const char *key;
		json_t *m;
		json_object_foreach(v, key, m)
		{
			(void)m;
			json_object_set_new_nocheck(found, key, kids[i++]);
		}
		insert(t, h, found);
	}
	if (kids != one)
		free(kids);
	return found;
}

json_t *intern_tree(struct intern *t, json_t *v)
{
	if (!v)
		return NULL;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (t->count >= t->sweep_at)
			intern_sweep(t);
		return intern_node(t, v);
	case JSON_STRING:
	case JSON_INTEGER:
	case JSON_REAL:
		return intern_leaf(t, v);
	default:
		return json_incref(v); /* true, false, null: jansson's singletons */
	}
}

/* The members of an object's metadata that no other object has. */
static bool own_meta(const char *key)
{
	return streq(key, "uid") || streq(key, "resourceVersion");
}

/* A fresh copy of object v (same key order) whose members are interned;
 * at the top (meta false), "metadata" is such a copy too, and in it the
 * own_meta members are copied outside the table. */
static json_t *shallow(struct intern *t, json_t *v, bool meta)
{
	json_t *out = json_object();
	const char *key;
	json_t *m;
	json_object_foreach(v, key, m)
	{
		json_t *c;
		if (!meta && json_is_object(m) && streq(key, "metadata"))
			c = shallow(t, m, true);
		else if (meta && own_meta(key))
			c = json_deep_copy(m);
		else
			c = intern_tree(t, m);
		json_object_set_new_nocheck(out, key, c);
	}
	return out;
}

json_t *intern_object(struct intern *t, json_t *obj)
{
	if (!json_is_object(obj))
		return intern_tree(t, obj);
	if (t->count >= t->sweep_at)
		intern_sweep(t);
	return shallow(t, obj, false);
}
