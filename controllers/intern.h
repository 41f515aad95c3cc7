/*
 * intern — hash-consing of jansson trees: equal values become one json_t.
 *
 * intern_tree(t, v) returns a tree equal to v (json_equal, and with the
 * same key order) in which every subtree that is equal to one interned
 * before is that very json_t: strings and numbers, and arrays and objects
 * whose members are (recursively) the same. A cache of many similar
 * objects — the Tasks of one Deployment share their spec, labels, owner
 * references and most of their status — then costs what is unique to each
 * object plus one copy of what they share.
 *
 * The price is that interned values are shared by unrelated holders: they
 * must never be changed (json_deep_copy first). Objects are equal here
 * only with their keys in the same order, so that sharing never changes
 * how a value serializes.
 *
 * The table holds one reference to every value it knows; intern_sweep
 * drops those no one else holds any more. intern_tree sweeps by itself
 * when the table has doubled since the last sweep, so the table stays
 * within about twice what the interned trees still use.
 *
 * Threading: a table is used by one thread at a time (the informer's);
 * the trees it returns may be read from any thread (jansson's reference
 * counts are atomic).
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct intern;

/* A new, empty table. */
struct intern *intern_new(void);
/* Frees the table, dropping its references (the trees still held
 * elsewhere stay valid). Accepts NULL. */
void intern_free(struct intern *t);

/* The interned equivalent of v (borrowed; may be v itself or share
 * nothing with it), as a new reference. v NULL gives NULL. */
json_t *intern_tree(struct intern *t, json_t *v);

/* intern_tree for an API object (borrowed) that is unique in its cache:
 * the object itself and its metadata (which hold its name, namespace, uid
 * and resourceVersion) are built fresh, outside the table, since no other
 * object of the cache can share them; everything below is interned. A new
 * reference; a non-object is interned as intern_tree does. */
json_t *intern_object(struct intern *t, json_t *obj);

/* Drops the table's references to values nobody else holds. Returns how
 * many were dropped. */
size_t intern_sweep(struct intern *t);

/* Values the table holds (for tests and metrics). */
size_t intern_count(const struct intern *t);
