/*
 * store — keel's object store: LMDB in a data directory, with etcd's
 * semantics so another backend (etcd) can later sit behind the same calls.
 *
 *  - One global 64-bit revision, +1 for every committed change.
 *  - Objects are JSON, keyed by "PLURAL/NAMESPACE/NAME" (cluster-scoped kinds
 *    use an empty namespace: "nodes//n1"). The store sets
 *    metadata.resourceVersion (decimal string) to the revision of the change.
 *  - Every change is appended to a change log keyed by revision; the log
 *    keeps a bounded window (options.history) and records the compacted
 *    revision; reading changes below it fails with -ERANGE.
 *  - Writes are read-modify-write callbacks run on the single writer thread
 *    inside one LMDB write transaction (so compare-and-swap and server-side
 *    apply are atomic). Concurrent writes are grouped: many callbacks share
 *    one transaction and one fsync (group commit); each caller returns only
 *    after its change is durable. No MDB_NOSYNC.
 *  - The data directory is locked (flock on DIR/LOCK); a second server on the
 *    same directory fails with -EBUSY naming the holder's pid.
 *
 * Threading: every function may be called from any thread, concurrently.
 * Results are owned by the caller unless said otherwise.
 *
 * Errors: -ENOENT not found; -ENOSPC the map is full (reads keep working);
 * -EBUSY directory locked; -ERANGE revision compacted; -EIO disk error;
 * plus whatever a mutate callback returns (its err is passed through).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kerr;
struct store;

struct store_options {
	size_t map_size;      /* LMDB map size in bytes (the store's quota); default 8 GiB */
	uint64_t history;     /* change-log revisions kept before compaction; default 100,000 */
	unsigned max_batch;   /* most writes grouped in one transaction; default 256 */
};

enum store_event_type { STORE_ADDED, STORE_MODIFIED, STORE_DELETED };

/* A committed change, as handed to the commit hook and store_changes(). */
struct store_event {
	enum store_event_type type;
	uint64_t rev;
	const char *key; /* borrowed for the duration of the callback */
	json_t *object;  /* borrowed: the new object, or the last one for DELETED
	                    (its resourceVersion is rev) */
};

/* Opens (creating if needed) the store in dir. opt may be NULL. */
int store_open(const char *dir, const struct store_options *opt, struct store **out, struct kerr *err);
/* Waits for queued writes, closes LMDB, releases the lock. Accepts NULL. */
void store_close(struct store *s);

/* Current (last committed) and compacted revisions. */
uint64_t store_revision(struct store *s);
uint64_t store_compacted(struct store *s);

/* Key helpers: owned "PLURAL/NS/NAME"; ns may be NULL for cluster-scoped. */
char *store_key(const char *plural, const char *ns, const char *name);

/* Reads one object. *out owned. -ENOENT if absent. */
int store_get(struct store *s, const char *key, json_t **out, struct kerr *err);

/* Lists objects whose key starts with prefix ("tasks/" or "tasks/default/"),
 * in key order, starting after the key `after` (NULL: from the start), at
 * most limit (0: no limit). *items: owned JSON array. *rev: the revision the
 * list was read at (one consistent snapshot). *next: owned key of the last
 * item returned when more remain (for `continue`), else NULL. filter may be
 * NULL; when given, only objects for which it returns true are returned and
 * counted toward limit. */
typedef bool (*store_filter_fn)(void *ctx, json_t *obj);
int store_list(struct store *s, const char *prefix, const char *after, size_t limit,
               store_filter_fn filter, void *ctx,
               json_t **items, uint64_t *rev, char **next, struct kerr *err);

/* A write. Called on the writer thread inside the write transaction with the
 * current object (borrowed; NULL if absent) and the revision this change
 * would get. It must be quick and touch nothing shared. It returns:
 *   STORE_WRITE  with *next an owned new object to store (the store sets its
 *                metadata.resourceVersion to rev);
 *   STORE_DELETE to delete the key (must exist);
 *   STORE_NOOP   to change nothing (no revision, no event);
 *   <0           a -errno with err filled: nothing is written.
 * Changes of other callers in the same batch are visible to later callbacks. */
enum { STORE_NOOP = 0, STORE_WRITE = 1, STORE_DELETE = 2 };
typedef int (*store_mutate_fn)(void *ctx, json_t *current, uint64_t rev, json_t **next, struct kerr *err);

/* Runs fn for key and waits until the result is durable. On success returns
 * STORE_WRITE/STORE_DELETE/STORE_NOOP; *result (if non-NULL) gets an owned
 * reference to the object as stored (for DELETE: the deleted object; for
 * NOOP: the current object, or NULL); *rev (if non-NULL) the revision of the
 * change (for NOOP: the current store revision). */
int store_update(struct store *s, const char *key, store_mutate_fn fn, void *ctx,
                 json_t **result, uint64_t *rev, struct kerr *err);

/* Called on the writer thread after each batch is durable, once per change
 * in revision order. Set before concurrent use; one hook. The hook must not
 * call back into store write functions. */
typedef void (*store_commit_hook)(void *ctx, const struct store_event *ev);
void store_set_commit_hook(struct store *s, store_commit_hook hook, void *ctx);

/* Replays the change log: calls fn for each change with revision > after,
 * in order, up to and including the current revision at the call. Returns 0,
 * -ERANGE if after < store_compacted() (the caller must relist), or fn's
 * non-zero return value (which stops the replay). */
typedef int (*store_event_fn)(void *ctx, const struct store_event *ev);
int store_changes(struct store *s, uint64_t after, store_event_fn fn, void *ctx, struct kerr *err);

/* Statistics for /metrics. */
struct store_stats {
	uint64_t revision, compacted;
	uint64_t commits;     /* LMDB write transactions committed */
	uint64_t writes;      /* changes committed */
	uint64_t map_size, map_used; /* bytes */
};
void store_get_stats(struct store *s, struct store_stats *st);
