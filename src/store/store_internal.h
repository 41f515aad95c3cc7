/*
 * store_internal — what store.c (open/close, reads) and store_writer.c (the
 * writer thread, group commit, compaction) share. Not a public header: the
 * contract for users is store.h.
 */
#pragma once

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/kerr.h"
#include "store/store.h"
#include "store/store_etcd.h"

/* Largest serialised object the store accepts (the server checks too). */
#define STORE_MAX_OBJECT (1536u * 1024u)
/* A batch stops taking requests once it has written this many bytes, so one
 * transaction stays well below LMDB's dirty-page limit (MDB_TXN_FULL). */
#define STORE_BATCH_BYTES (64u * 1024u * 1024u)
/* Most log entries one batch deletes while compacting, so a batch stays fast;
 * the backlog is worked off by later batches. */
#define STORE_COMPACT_PER_BATCH 1000u
/* Most log entries one write may compact early to stay within the quota. */
#define STORE_TRIM_MAX 100000u
#define STORE_FORMAT   1u

/* One store_update() call, living on the caller's stack, or one
 * store_update_async() call, on the heap and owned by the store (freed by
 * the writer once its done callback has run). The writer fills the outcome
 * fields; `done` and `cond` are guarded by store.lock (sync calls only). */
struct store_req {
	const char *key;
	store_mutate_fn fn;
	void *ctx;
	struct store_req *next; /* queue link */
	store_done_fn on_done;  /* async: called on the writer thread; NULL: sync */
	void *done_ctx;
	char *key_owned; /* async: the copy key points to */

	int rc;          /* STORE_WRITE/DELETE/NOOP or -errno */
	struct kerr err; /* filled when rc < 0 */
	json_t *stored;  /* owned: stored/deleted/current object */
	char *text;      /* owned: stored's JSON text (WRITE only) */
	size_t text_len;
	size_t size;                /* serialised size (also of an object refused with -E2BIG) */
	enum store_event_type type; /* for WRITE/DELETE */
	uint64_t rev;
	bool shared; /* stored was handed to the commit hook */
	bool done;
	pthread_cond_t cond;
};

struct store {
	struct store_etcd *etcd; /* the etcd backend; NULL: LMDB (everything below) */
	char *dir;
	MDB_env *env;
	MDB_dbi objects, log, meta;
	int lock_fd;
	size_t quota;         /* options.map_size: what writes may fill */
	uint64_t quota_pages; /* quota / psize */
	unsigned psize;
	uint64_t history;
	unsigned max_batch;
	size_t max_object; /* options.max_object, at most STORE_MAX_OBJECT */

	pthread_mutex_t lock;
	pthread_cond_t queue_cond; /* the writer waits here for requests */
	pthread_cond_t idle_cond;  /* store_close waits here for inflight == 0 */
	struct store_req *head, *tail;
	bool closing; /* no new updates */
	bool closed;  /* no new calls at all */
	unsigned inflight;
	uint64_t queued; /* requests waiting for the writer */
	pthread_t writer;
	bool writer_running;
	/* The sync thread (store_writer.c): answers committed batches once a
	 * flush covers their meta page. Guarded by lock. */
	pthread_t syncer;
	bool syncer_running;
	bool writer_done;         /* the writer has handed over its last batch */
	bool writer_busy;         /* the writer has taken a batch and not handed it over */
	uint64_t handed;          /* batches the writer has handed over */
	pthread_cond_t sync_cond; /* the sync thread waits here for batches */
	struct store_pending *pend_head, *pend_tail;
	uint64_t covered; /* commits with seq <= covered are durable */
	/* The writer's own view: the last committed (not yet durable) state. */
	uint64_t wrev, wcompacted, wseq;
	_Atomic bool broken; /* a meta flush failed: writes get -EIO */
	store_commit_hook hook;
	void *hook_ctx;

	/* Written by the writer thread only, read by anyone. */
	_Atomic uint64_t revision, compacted, commits, writes;
};

/* The one LMDB code -> errno table; formats "CONTEXT: mdb_strerror" (or the
 * map-full message) into err and returns -errno. */
int store_mdb_error(struct store *s, int rc, struct kerr *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses the JSON text of v (an object at key, or a log entry); -EIO naming
 * key on corruption. *out owned. */
int store_parse(const char *what, const MDB_val *v, json_t **out, struct kerr *err);

/* Reads the object at key in txn: 0 and *out (owned), -ENOENT, or -EIO. */
int store_txn_get(struct store *s, MDB_txn *txn, const char *key, json_t **out, struct kerr *err);

/* Reads a meta counter (absent reads as 0). */
int store_meta_get(struct store *s, MDB_txn *txn, const char *name, uint64_t *out,
                   struct kerr *err);
int store_meta_put(struct store *s, MDB_txn *txn, const char *name, uint64_t v, struct kerr *err);

/* Pages in use in txn's view: every database's branch, leaf and overflow
 * pages (free pages excluded), plus the two meta pages. */
int store_used_pages(struct store *s, MDB_txn *txn, uint64_t *out, struct kerr *err);

/* The error every write that does not fit gets. */
int store_full_error(struct store *s, struct kerr *err);

/* -EINVAL unless key is a usable LMDB key. */
int store_check_key(struct store *s, const char *key, struct kerr *err);

static inline void store_be64(uint64_t v, unsigned char out[8])
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static inline uint64_t store_unbe64(const unsigned char in[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}

/* Counts a public call in `inflight` (store_close waits for it); -ESHUTDOWN
 * once the store is closing (write) or closed (any call). */
int store_enter(struct store *s, bool write, struct kerr *err);
void store_leave(struct store *s);

/* Begins a read-only transaction (one snapshot). */
int store_read_begin(struct store *s, MDB_txn **txn, struct kerr *err);

/* Writer and sync thread entry points (store_writer.c). */
void *store_writer_main(void *arg);
void *store_syncer_main(void *arg);
