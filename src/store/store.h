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
 *    one transaction (group commit); each caller returns only after its
 *    change is durable. No MDB_NOSYNC; MDB_NOMETASYNC with the meta page's
 *    flush pipelined behind the next commit (store_writer.c).
 *  - The data directory is locked (flock on DIR/LOCK); a second server on the
 *    same directory fails with -EBUSY naming the holder's pid.
 *
 *  - Space: options.map_size is a quota. Writes that store objects stop at
 *    it; before refusing one, the oldest change-log entries are compacted
 *    early (watchers that far behind get -ERANGE and relist), so -ENOSPC
 *    means the live objects fill the quota. LMDB's map is the quota plus a
 *    reserve (1/8, at least 8 MiB; address space, not disk) that deletes may
 *    use, because LMDB needs free pages even to delete. Should even a
 *    delete fail (-ENOSPC), restart with a larger map_size: LMDB grows the
 *    map of an existing store on open.
 *
 * Threading: every function may be called from any thread, concurrently,
 * except store_close() and store_update() from inside a mutate callback or
 * the commit hook (store_update() refuses with -EDEADLK; store_close() would
 * deadlock). Results are owned by the caller unless said otherwise.
 *
 * Errors: -ENOENT not found; -ENOSPC the map is full (reads keep working);
 * -EBUSY directory locked; -ERANGE revision compacted; -EIO disk error or
 * corrupt data (the message names the key); -EINVAL a bad key (empty,
 * longer than LMDB's 511 bytes, not UTF-8) or a bad callback result;
 * -E2BIG an object over 1.5 MiB (or options.max_object) serialised; -ESHUTDOWN the store is
 * closing; plus whatever a mutate callback returns (its err is passed
 * through). Every error fills err with a one-line message.
 *
 * The etcd backend (options.etcd_endpoints; store_etcd.h) keeps these
 * semantics with etcd's revisions: resourceVersion = mod_revision; revisions
 * increase but are not contiguous (etcd counts every key); store_revision()
 * is the last change under the prefix that its watch delivered (another
 * server's too); history and compaction are etcd's (compacted to revision -
 * history as the head moves); several servers may share one prefix, each
 * seeing all changes through its commit hook. A data directory given is
 * only locked (DIR/LOCK, one server per directory, as with LMDB): the
 * server keeps its own files there. -EIO also means the cluster is unreachable (naming the
 * endpoints), -ENOSPC etcd's quota, -E2BIG etcd's request limit,
 * -EBUSY a write that lost 64 compare-and-swaps in a row. A member that
 * stalls (answers TCP, sends nothing) costs a call at most 3 s and the
 * watch 2-3 s before they move to the next endpoint; the commit hook may
 * get STORE_RESYNC (below). Each writing open leaves up to 32 small marker
 * keys PREFIX".w/ID/N" (the workers' write tokens) under the prefix.
 *
 * On disk (DIR): data.mdb and lock.mdb (LMDB), LOCK (flock + pid). Named
 * databases: "objects" (key -> JSON), "log" (8-byte big-endian revision ->
 * {"type":"ADDED|MODIFIED|DELETED","key":K,"object":{...}}) and "meta"
 * (revision, compacted, format = 1).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kerr;
struct store;

/* A zero field takes its default. */
struct store_options {
	size_t map_size;    /* LMDB map size in bytes (the store's quota); default 8 GiB */
	uint64_t history;   /* change-log revisions kept before compaction; default 100,000 */
	unsigned max_batch; /* most writes grouped in one transaction; default 256 */
	size_t max_object;  /* largest serialised object a write may store (as stored:
	                       compact, with its resourceVersion); 0 or more than the
	                       store's own limit (1.5 MiB): that limit */
	const char *etcd_endpoints; /* NULL/"": LMDB in dir; else "http://H:P,http://H:P2":
	                               the etcd backend (store_etcd.h), dir only locked */
	const char *etcd_prefix;    /* key prefix in etcd, ending in '/'; default "/keel/" */
};

/* STORE_RESYNC is no change but a gap, handed to the commit hook only (never
 * by store_changes, never by LMDB): the etcd backend's watch lost changes
 * (etcd compacted revisions it had not delivered yet, while its stream was
 * down), so whoever follows the hook has missed some and must start over
 * (the server ends every live watch with 410 Gone; clients relist).
 * rev is the revision the store carries on from (store_compacted() is at
 * least it: resumes from before it get -ERANGE); key is "" and object NULL. */
enum store_event_type { STORE_ADDED, STORE_MODIFIED, STORE_DELETED, STORE_RESYNC };

/* A committed change, as handed to the commit hook and store_changes(). */
struct store_event {
	enum store_event_type type;
	uint64_t rev;
	const char *key; /* borrowed for the duration of the callback */
	json_t *object;  /* borrowed: the new object, or the last one for DELETED
	                    (its resourceVersion is rev) */
};

/* Opens (creating if needed) the store in dir. opt may be NULL. dir and its
 * missing parents are created with mode 0700. Starts the writer and sync threads.
 * Errors: -EBUSY "data directory DIR is in use by another keel server (pid
 * N)"; -ENOTDIR; -EINVAL (no dir, map_size under 64 KiB); -EIO (not a keel
 * store of format 1, or LMDB could not open it); other -errno from the
 * file system. *out is untouched on failure.
 * With opt->etcd_endpoints: dir may be NULL, else it is created and locked
 * (-EBUSY as above) and nothing else is kept in it; starts the watch
 * thread and 32 worker threads; -EINVAL names a bad endpoint or prefix,
 * -EIO an unreachable cluster. */
int store_open(const char *dir, const struct store_options *opt, struct store **out,
               struct kerr *err);
/* Waits for queued writes, closes LMDB, releases the lock. Accepts NULL.
 * Calls racing with it are safe: an update already queued is drained
 * (committed and answered), one arriving after close began gets
 * -ESHUTDOWN; reads keep working until the writer has drained, then get
 * -ESHUTDOWN; store_close returns once every call in flight has returned.
 * No call may START after store_close has returned (s is freed). */
void store_close(struct store *s);

/* Current (last committed) and compacted revisions. The compacted revision
 * is the highest one deleted from the log: store_changes(after) works for
 * every after >= it. */
uint64_t store_revision(struct store *s);
uint64_t store_compacted(struct store *s);

/* Key helpers: owned "PLURAL/NS/NAME"; ns may be NULL for cluster-scoped. */
char *store_key(const char *plural, const char *ns, const char *name);

/* Reads one object. *out owned. -ENOENT "KEY not found" if absent. */
int store_get(struct store *s, const char *key, json_t **out, struct kerr *err);
/* store_get without the parse: *text (owned, NUL-terminated) is the object's
 * JSON text as stored, *len its length. For checks that can mostly be
 * answered from the text itself. */
int store_get_text(struct store *s, const char *key, char **text, size_t *len, struct kerr *err);

/* Lists objects whose key starts with prefix ("tasks/" or "tasks/default/"),
 * in key order, starting after the key `after` (NULL: from the start), at
 * most limit (0: no limit). *items: owned JSON array. *rev: the revision the
 * list was read at (one consistent snapshot). *next: owned key of the last
 * item returned when more remain (for `continue`), else NULL. filter may be
 * NULL; when given, only objects for which it returns true are returned and
 * counted toward limit (obj is borrowed; filter runs inside the read
 * transaction, so keep it quick). prefix NULL or "" lists everything.
 * A continuation is given when more KEYS remain under the prefix, whether or
 * not they pass the filter (as Kubernetes does): the next page may be
 * empty. Continuing from `after` reads the state current at that call (not
 * the first page's snapshot) and works whatever has been compacted. */
typedef bool (*store_filter_fn)(void *ctx, json_t *obj);
int store_list(struct store *s, const char *prefix, const char *after, size_t limit,
               store_filter_fn filter, void *ctx, json_t **items, uint64_t *rev, char **next,
               struct kerr *err);

/* A write. Called on the writer thread inside the write transaction with the
 * current object (borrowed; NULL if absent) and the revision this change
 * would get. It must be quick and touch nothing shared. It returns:
 *   STORE_WRITE  with *next an owned new object to store (the store sets its
 *                metadata.resourceVersion to rev);
 *   STORE_DELETE to delete the key (must exist);
 *   STORE_NOOP   to change nothing (no revision, no event);
 *   <0           a -errno with err filled: nothing is written.
 * Changes of other callers in the same batch are visible to later callbacks.
 * current is a fresh parse, owned by the store: the callback may modify it
 * and return json_incref(current) as *next. *next is taken over by the store
 * (it sets metadata.resourceVersion, creating metadata if absent); it must
 * be a JSON object. The callback may run more than once for one
 * store_update (when a batch is retried one request per transaction after
 * running out of space); only the last run's result counts, so it must not
 * have side effects. It must not call store_update or store_close. */
enum { STORE_NOOP = 0, STORE_WRITE = 1, STORE_DELETE = 2 };
typedef int (*store_mutate_fn)(void *ctx, json_t *current, uint64_t rev, json_t **next,
                               struct kerr *err);

/* Runs fn for key and waits until the result is durable. On success returns
 * STORE_WRITE/STORE_DELETE/STORE_NOOP; *result (if non-NULL) gets an owned
 * reference to the object as stored (for DELETE: the deleted object; for
 * NOOP: the current object, or NULL); *rev (if non-NULL) the revision of the
 * change (for NOOP: the current store revision). The caller's *result is its
 * own (a copy if the commit hook was handed the stored object). Blocks
 * until the batch holding the change is durable (fsynced); a lone write is
 * committed at once, without waiting to gather a batch. Returns <0 with err
 * filled (see Errors) and nothing written; when a commit fails, every
 * request of its batch fails and the revision is unchanged. */
int store_update(struct store *s, const char *key, store_mutate_fn fn, void *ctx, json_t **result,
                 uint64_t *rev, struct kerr *err);

/* The outcome of an asynchronous update, handed to its done callback. */
struct store_result {
	int rc;           /* STORE_WRITE/STORE_DELETE/STORE_NOOP, or -errno */
	struct kerr *err; /* filled when rc < 0; the callback may kerr_move it */
	json_t *object;   /* borrowed, as store_update's *result (NULL for a NOOP on an
	                     absent key, and on failure); it may be shared with the
	                     commit hook, so a callback that keeps it (json_incref)
	                     must treat it as immutable */
	const char *text; /* borrowed: for STORE_WRITE, object's JSON text exactly as
	                     stored (compact, with its resourceVersion); else NULL */
	size_t text_len;
	uint64_t rev; /* as store_update's *rev */
	size_t size;  /* STORE_WRITE: text_len; -E2BIG: the refused object's
	                 serialised size; else 0 */
};
typedef void (*store_done_fn)(void *ctx, const struct store_result *res);

/* store_update without the wait: queues the update and returns at once.
 * Returns 0 when it is queued: done is then called exactly once, on the
 * store's sync thread, after the batch holding the change is durable and after
 * the commit hook has seen it (or when the update failed); the result and
 * everything in it are borrowed for the call. done must be quick and must
 * not call store_update, store_update_async or store_close (it may hand
 * the result to another thread, e.g. resume a suspended connection).
 * ctx must stay valid until done has run; key is copied. Returns <0 with
 * err filled when nothing was queued (done is never called): -EINVAL (no
 * callback, bad key), -EDEADLK (called on the writer or sync thread), -ESHUTDOWN
 * (the store is closing). store_close drains queued async updates (their
 * done runs) before it returns. */
int store_update_async(struct store *s, const char *key, store_mutate_fn fn, void *ctx,
                       store_done_fn done, void *done_ctx, struct kerr *err);

/* Called on the sync thread after each batch is durable, once per change
 * in revision order, before the writers are answered. Set before concurrent
 * use; one hook. The hook must not call back into store write functions; it
 * may read (store_get etc.). ev->object is borrowed; the hook may keep a
 * reference (json_incref) but must then treat it as immutable.
 * For watches: register for hook events first, then store_changes(N), and
 * drop hook events with rev <= the last replayed one — the log is visible
 * before the hook runs (reads see a commit up to one flush before it is
 * durable, store_writer.c), so replay-then-subscribe could miss a change. */
typedef void (*store_commit_hook)(void *ctx, const struct store_event *ev);
void store_set_commit_hook(struct store *s, store_commit_hook hook, void *ctx);

/* Replays the change log: calls fn for each change with revision > after,
 * in order, up to and including the current revision at the call. Returns 0,
 * -ERANGE if after < store_compacted() (the caller must relist; message
 * "revision N has been compacted (oldest available: M)", M being the
 * smallest after accepted), or fn's non-zero return value (which stops the
 * replay). ev and its contents are borrowed for the call; fn runs inside
 * one read transaction, so it should be quick (copy, do not block). */
typedef int (*store_event_fn)(void *ctx, const struct store_event *ev);
int store_changes(struct store *s, uint64_t after, store_event_fn fn, void *ctx, struct kerr *err);

/* Statistics for /metrics. */
struct store_stats {
	uint64_t revision, compacted;
	uint64_t commits;            /* LMDB write transactions committed */
	uint64_t writes;             /* changes committed */
	uint64_t map_size, map_used; /* bytes: the quota, and the pages in use by
	                                live data and history (free pages excluded) */
	uint64_t queued;             /* writes waiting for the writer thread */
};
void store_get_stats(struct store *s, struct store_stats *st);

/* etcd backend: the server's health probe tells the store whether any
 * endpoint is healthy. why non-NULL (copied): none is, and every call that
 * would wait for etcd fails at once with -EHOSTUNREACH "etcd: no healthy
 * endpoint (WHY)" (a read already waiting on etcd ends too; a write whose
 * txn may have reached etcd is answered with an error saying its outcome
 * is unknown, never acknowledged). NULL: back to normal. No-op on LMDB. */
void store_set_unreachable(struct store *s, const char *why);
