/*
 * store_writer — store_update() and the one writer thread behind it, which
 * does group commit.
 *
 * A caller queues a request (key, callback) on its own stack and sleeps on
 * its own condition variable. The writer takes whatever is queued at that
 * moment (up to max_batch; it never waits to gather more, so a lone write
 * costs one commit and no timer), runs every callback in ONE LMDB write
 * transaction — each sees the changes of those before it — appends the log,
 * compacts a bounded slice of old log entries, writes the meta counters and
 * commits once. While one batch is being flushed the next one queues up,
 * which is where the batching comes from under load.
 *
 * Pipelined durability. An LMDB commit is two flushes: the data pages, then
 * the meta page that makes them the current state (the order is what keeps
 * the file consistent on a crash). The env is opened MDB_NOMETASYNC, so
 * mdb_txn_commit flushes the data pages (fdatasync) and then only writes the
 * meta page. LMDB's docs: this "maintains database integrity, but a system
 * crash may undo the last committed transaction" — the meta page is made
 * durable by the next commit's data flush or by mdb_env_sync(). Integrity
 * holds because LMDB never reuses the pages of the last two snapshots: a
 * commit's data pages can only overwrite pages freed two commits back, and
 * the meta page of the commit before it was written (in this thread) before
 * this commit's data flush began, so it is on disk by then.
 *
 * So a committed batch is not yet acknowledged: the writer hands it to the
 * sync thread and goes on with the next batch at once, and the sync thread
 * answers it only once a flush that began after its meta page was written
 * has returned — either the writer's next data flush (s->covered: the commit
 * with sequence k covers every commit before it) or its own mdb_env_sync(),
 * which runs while the writer flushes the next batch's data. Only then does
 * it publish the revision, call the commit hook for each change in revision
 * order (watchers never see a change a crash could undo) and wake the
 * callers: a 2xx still means on disk. Batches are answered in commit order.
 * What is visible before that: a read transaction may see a committed batch
 * up to one flush before it is durable (a power loss could then undo what a
 * reader saw, never what a writer was told was written; a kill -9 undoes
 * nothing, the page cache has the meta page). If that flush fails, the
 * outcome on disk is unknown: the batch's callers get -EIO and the store
 * refuses every later write (-EIO) until it is reopened, which recovers
 * whatever the disk holds.
 *
 * Failure: a commit that fails fails the whole batch and leaves the revision
 * as it was. When it fails for lack of space (MDB_MAP_FULL, or MDB_TXN_FULL
 * for a huge batch), the batch is re-run one request per transaction, so
 * only the writes that do not fit get -ENOSPC; a callback may therefore run
 * more than once for one store_update (only the last run's result counts).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "store/store.h"
#include "store/store_internal.h"

/* ---- the caller's side -------------------------------------------------------------- */

/* Appends q to the queue and wakes the writer; the caller holds s->lock. */
static void enqueue_locked(struct store *s, struct store_req *q)
{
	if (s->tail)
		s->tail->next = q;
	else
		s->head = q;
	s->tail = q;
	s->queued++;
	pthread_cond_signal(&s->queue_cond);
}

static int update_wait(struct store *s, struct store_req *q, struct kerr *err)
{
	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		return kerr_set(err, ESHUTDOWN, "store is closing; %s not written", q->key);
	}
	s->inflight++;
	enqueue_locked(s, q);
	while (!q->done)
		pthread_cond_wait(&q->cond, &s->lock);
	if (--s->inflight == 0)
		pthread_cond_broadcast(&s->idle_cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* What store_update and store_update_async refuse before queueing. */
static int update_check(struct store *s, const char *key, store_mutate_fn fn, struct kerr *err)
{
	if (!fn)
		return kerr_set(err, EINVAL, "store: update of %s without a callback",
		                key ? key : "");
	int r = store_check_key(s, key, err);
	if (r < 0)
		return r;
	if (pthread_equal(pthread_self(), s->writer) || pthread_equal(pthread_self(), s->syncer))
		return kerr_set(err, EDEADLK,
		                "store: update of %s from a mutate callback or commit hook", key);
	return 0;
}

int store_update(struct store *s, const char *key, store_mutate_fn fn, void *ctx, json_t **result,
                 uint64_t *rev, struct kerr *err)
{
	if (s->etcd)
		return store_etcd_update(s->etcd, key, fn, ctx, result, rev, err);
	int r = update_check(s, key, fn, err);
	if (r < 0)
		return r;
	struct store_req q = {.key = key, .fn = fn, .ctx = ctx};
	pthread_cond_init(&q.cond, NULL);
	r = update_wait(s, &q, err);
	pthread_cond_destroy(&q.cond);
	if (r < 0)
		return r;
	if (q.rc < 0) {
		if (err)
			kerr_move(err, &q.err);
		kerr_clear(&q.err);
		json_decref(q.stored);
		return q.rc;
	}
	/* The hook may keep the stored object (it is then immutable); the
	 * caller gets its own copy to do with as it likes. */
	if (result)
		*result = q.shared ? json_deep_copy(q.stored) : json_incref(q.stored);
	json_decref(q.stored);
	free(q.text);
	if (rev)
		*rev = q.rev;
	return q.rc;
}

int store_update_async(struct store *s, const char *key, store_mutate_fn fn, void *ctx,
                       store_done_fn done, void *done_ctx, struct kerr *err)
{
	if (s->etcd)
		return store_etcd_update_async(s->etcd, key, fn, ctx, done, done_ctx, err);
	int r = update_check(s, key, fn, err);
	if (r < 0)
		return r;
	if (!done)
		return kerr_set(err, EINVAL,
		                "store: asynchronous update of %s without a done callback", key);
	struct store_req *q = xcalloc(1, sizeof *q);
	q->key = q->key_owned = xstrdup(key);
	q->fn = fn;
	q->ctx = ctx;
	q->on_done = done;
	q->done_ctx = done_ctx;
	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		r = kerr_set(err, ESHUTDOWN, "store is closing; %s not written", key);
		free(q->key_owned);
		free(q);
		return r;
	}
	enqueue_locked(s, q); /* the writer drains the queue before store_close returns */
	pthread_mutex_unlock(&s->lock);
	return 0;
}

struct batch {
	struct store *s;
	MDB_txn *txn;
	uint64_t rev;       /* revision after the changes applied so far */
	uint64_t compacted; /* highest revision deleted from the log */
	size_t bytes;       /* bytes written so far */
	size_t changes;
};

/* ---- compaction ----------------------------------------------------------------------- */

/* Deletes log entries with revision <= upto, oldest first, at most max of
 * them, and advances b->compacted. With need > 0 it stops as soon as need
 * more pages fit the quota (*fits then says whether they do). */
static int log_trim(struct batch *b, uint64_t upto, unsigned max, uint64_t need, bool *fits,
                    struct kerr *err)
{
	struct store *s = b->s;
	MDB_cursor *c;
	int rc = mdb_cursor_open(b->txn, s->log, &c), r = 0;
	if (rc)
		return store_mdb_error(s, rc, err, "store: compact change log");
	MDB_val k, v;
	for (unsigned n = 0; n < max; n++) {
		uint64_t used;
		if (need && (r = store_used_pages(s, b->txn, &used, err)) < 0)
			break;
		if (need && used + need <= s->quota_pages) {
			*fits = true;
			break;
		}
		if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)))
			break;
		uint64_t rev = k.mv_size == 8 ? store_unbe64(k.mv_data) : 0;
		if (rev > upto)
			break;
		if ((rc = mdb_cursor_del(c, 0)))
			break;
		b->compacted = rev > b->compacted ? rev : b->compacted;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_error(s, rc, err, "store: compact change log");
	return r;
}

/* The regular compaction: keep `history` revisions, a bounded slice at a time. */
static int compact_log(struct batch *b, struct kerr *err)
{
	uint64_t h = b->s->history;
	if (b->rev <= h || b->rev - h <= b->compacted)
		return 0;
	return log_trim(b, b->rev - h, STORE_COMPACT_PER_BATCH, 0, NULL, err);
}

/* Before a write of len bytes (object + log entry): within the quota? If
 * not, history goes first — the oldest log entries are compacted early
 * (watchers that far behind get -ERANGE and relist) — and only when the
 * objects themselves fill the quota does the write fail. Returns 0 (room),
 * 1 (no room: q->rc is -ENOSPC) or <0 (the transaction failed). */
static int ensure_room(struct batch *b, struct store_req *q, size_t len, struct kerr *err)
{
	struct store *s = b->s;
	uint64_t need = 2 * (len / s->psize + 1) + 8, used; /* + pages the trees may split into */
	int r = store_used_pages(s, b->txn, &used, err);
	if (r < 0)
		return r;
	if (used + need <= s->quota_pages)
		return 0;
	bool fits = false;
	if ((r = log_trim(b, b->rev, STORE_TRIM_MAX, need, &fits, err)) < 0)
		return r;
	if (fits)
		return 0;
	q->rc = store_full_error(s, &q->err);
	return 1;
}

/* ---- applying one request inside the batch transaction --------------------------------- */

static const char *const event_names[] = {
    [STORE_ADDED] = "ADDED", [STORE_MODIFIED] = "MODIFIED", [STORE_DELETED] = "DELETED"};

/* Appends {"type":T,"key":K,"object":OBJ} at revision b->rev + 1; the object
 * text is spliced in rather than serialised a second time. */
static int put_log(struct batch *b, const char *key, enum store_event_type t, const char *obj,
                   size_t len, struct kerr *err)
{
	_cleanup_json_ json_t *jkey = json_string(key); /* UTF-8 checked by store_check_key */
	_cleanup_free_ char *ekey = json_dumps(jkey, JSON_ENCODE_ANY);
	_cleanup_sbuf_ struct sbuf e = SBUF_INIT;
	sbuf_printf(&e, "{\"type\":\"%s\",\"key\":%s,\"object\":", event_names[t], ekey);
	sbuf_append(&e, obj, len);
	sbuf_putc(&e, '}');
	unsigned char kb[8];
	store_be64(b->rev + 1, kb);
	MDB_val k = {8, kb}, v = {e.len, e.data};
	int rc = mdb_put(b->txn, b->s->log, &k, &v, MDB_APPEND);
	if (rc)
		return store_mdb_error(b->s, rc, err, "store: append change log for %s", key);
	b->bytes += e.len;
	return 0;
}

/* Sets metadata.resourceVersion of obj to rev; -EINVAL if obj is no object. */
static int set_rv(json_t *obj, uint64_t rev, const char *key, struct kerr *err)
{
	if (!json_is_object(obj))
		return kerr_set(err, EINVAL, "store: new value for %s is not a JSON object", key);
	json_t *md = json_object_get(obj, "metadata");
	if (!md)
		json_object_set_new(obj, "metadata", md = json_object());
	if (!json_is_object(md))
		return kerr_set(err, EINVAL, "store: metadata of %s is not a JSON object", key);
	char buf[24];
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)rev);
	json_object_set_new(md, "resourceVersion", json_string(buf));
	return 0;
}

/* Serialises obj within max bytes. *text owned; *len is set also when the
 * object is too large (-E2BIG), for the caller's message: this is the one
 * place the object's size is measured on its way to the store. */
static int serialise(json_t *obj, const char *key, size_t max, char **text, size_t *len,
                     struct kerr *err)
{
	char *t = json_dumps(obj, JSON_COMPACT);
	if (!t)
		return kerr_set(err, EINVAL, "store: cannot serialise %s", key);
	size_t n = strlen(t);
	*len = n;
	if (n > max) {
		free(t);
		return kerr_set(err, E2BIG,
		                "object %s is %zu bytes serialised; the limit is %zu bytes", key, n,
		                max);
	}
	*text = t;
	return 0;
}

/* Stores obj (owned) at q->key. Request errors land in q; returns <0 only
 * when the transaction itself failed. */
static int do_write(struct batch *b, struct store_req *q, bool existed, json_t *obj,
                    struct kerr *err)
{
	_cleanup_json_ json_t *o = obj;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = set_rv(o, b->rev + 1, q->key, &q->err);
	if (r >= 0)
		r = serialise(o, q->key, b->s->max_object, &text, &len, &q->err);
	if (r < 0) {
		q->rc = r;
		q->size = r == -E2BIG ? len : 0;
		return 0;
	}
	if ((r = ensure_room(b, q, len, err)) != 0)
		return r < 0 ? r : 0;
	MDB_val k = {strlen(q->key), (void *)q->key}, v = {len, text};
	int rc = mdb_put(b->txn, b->s->objects, &k, &v, 0);
	if (rc)
		return store_mdb_error(b->s, rc, err, "store: write %s", q->key);
	q->type = existed ? STORE_MODIFIED : STORE_ADDED;
	if ((r = put_log(b, q->key, q->type, text, len, err)) < 0)
		return r;
	b->bytes += len;
	b->changes++;
	q->rev = ++b->rev;
	q->rc = STORE_WRITE;
	q->stored = TAKE_PTR(o);
	q->text = TAKE_PTR(text);
	q->text_len = q->size = len;
	return 0;
}

/* Deletes q->key, whose current object is cur (owned). */
static int do_delete(struct batch *b, struct store_req *q, json_t *cur, struct kerr *err)
{
	_cleanup_json_ json_t *o = cur;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = 0;
	if (!o)
		r = kerr_set(&q->err, ENOENT, "%s not found", q->key);
	if (r >= 0)
		r = set_rv(o, b->rev + 1, q->key, &q->err);
	if (r >= 0)
		r = serialise(o, q->key, STORE_MAX_OBJECT, &text, &len, &q->err);
	if (r < 0) {
		q->rc = r;
		return 0;
	}
	MDB_val k = {strlen(q->key), (void *)q->key};
	int rc = mdb_del(b->txn, b->s->objects, &k, NULL);
	if (rc)
		return store_mdb_error(b->s, rc, err, "store: delete %s", q->key);
	q->type = STORE_DELETED;
	if ((r = put_log(b, q->key, q->type, text, len, err)) < 0)
		return r;
	b->changes++;
	q->rev = ++b->rev;
	q->rc = STORE_DELETE;
	q->stored = TAKE_PTR(o);
	return 0;
}

static void req_reset(struct store_req *q)
{
	q->rc = 0;
	kerr_clear(&q->err);
	json_decref(q->stored);
	q->stored = NULL;
	free(q->text);
	q->text = NULL;
	q->text_len = 0;
	q->size = 0;
	q->shared = false;
}

/* Runs q's callback on the current object and applies what it returns. */
static int apply_one(struct batch *b, struct store_req *q, struct kerr *err)
{
	json_t *cur = NULL;
	int r = store_txn_get(b->s, b->txn, q->key, &cur, &q->err);
	if (r < 0 && r != -ENOENT) {
		q->rc = r;
		return 0;
	}
	kerr_clear(&q->err);
	json_t *next = NULL;
	int act = q->fn(q->ctx, cur, b->rev + 1, &next, &q->err);
	if (act != STORE_WRITE)
		json_decref(TAKE_PTR(next));
	switch (act) {
	case STORE_WRITE: {
		if (!next) {
			json_decref(cur);
			q->rc =
			    kerr_set(&q->err, EINVAL, "store: write of %s without a value", q->key);
			return 0;
		}
		bool existed = cur != NULL;
		json_decref(cur); /* next is the callback's own reference */
		return do_write(b, q, existed, next, err);
	}
	case STORE_DELETE:
		return do_delete(b, q, cur, err);
	case STORE_NOOP:
		q->rc = STORE_NOOP;
		q->stored = cur;
		q->rev = b->rev;
		return 0;
	default:
		json_decref(cur);
		if (act > 0)
			q->rc =
			    kerr_set(&q->err, EINVAL, "store: update of %s: bad callback result %d",
			             q->key, act);
		else if (q->err.code == 0)
			q->rc = kerr_set(&q->err, -act, "update of %s failed: %s", q->key,
			                 strerror(-act));
		else
			q->rc = act;
		return 0;
	}
}

/* ---- one batch --------------------------------------------------------------------------- */

/* Applies reqs[0..n) in one transaction and commits it. *ndone: how many
 * were run (fewer than n when the batch reached STORE_BATCH_BYTES); *dirty:
 * whether the commit wrote anything (then it needs a meta flush, and its
 * data flush covered the commits before it). Returns <0 when the
 * transaction failed: then nothing of it was written. */
static int batch_txn(struct store *s, struct store_req **reqs, size_t n, bool compact,
                     size_t *ndone, bool *dirty, struct kerr *err)
{
	*dirty = false;
	if (s->broken)
		return kerr_set(err, EIO,
		                "store: an earlier flush failed; writes are refused until the "
		                "server restarts");
	struct batch b = {.s = s, .rev = s->wrev, .compacted = s->wcompacted};
	const uint64_t rev0 = b.rev, compacted0 = b.compacted;
	int rc = mdb_txn_begin(s->env, NULL, 0, &b.txn);
	if (rc)
		return store_mdb_error(s, rc, err, "store: begin write");
	int r = 0;
	size_t i = 0;
	for (; i < n && r == 0; i++) {
		if (i > 0 && b.bytes >= STORE_BATCH_BYTES)
			break;
		req_reset(reqs[i]);
		r = apply_one(&b, reqs[i], err);
	}
	*ndone = i;
	if (r == 0 && compact)
		r = compact_log(&b, err);
	if (r == 0 && b.rev != rev0)
		r = store_meta_put(s, b.txn, "revision", b.rev, err);
	if (r == 0 && b.compacted != compacted0)
		r = store_meta_put(s, b.txn, "compacted", b.compacted, err);
	if (r < 0) {
		mdb_txn_abort(b.txn);
		return r;
	}
	rc = mdb_txn_commit(b.txn); /* data flushed, meta page written (not flushed) */
	if (rc)
		return store_mdb_error(s, rc, err, "store: commit");
	if (b.rev != rev0 || b.compacted != compacted0) {
		s->wrev = b.rev;
		s->wcompacted = b.compacted;
		*dirty = true;
		atomic_fetch_add(&s->commits, 1);
		atomic_fetch_add(&s->writes, b.changes);
	}
	return 0;
}

static void req_fail(struct store_req *q, const struct kerr *err)
{
	req_reset(q);
	q->rc = kerr_set(&q->err, err->code ? err->code : EIO, "%s", kerr_msg(err));
}

/* Hands an asynchronous request its outcome, then frees it. */
static void answer_async(struct store_req *q)
{
	bool ok = q->rc >= 0;
	struct store_result res = {.rc = q->rc,
	                           .err = &q->err,
	                           .object = ok ? q->stored : NULL,
	                           .text = ok && q->rc == STORE_WRITE ? q->text : NULL,
	                           .text_len = ok && q->rc == STORE_WRITE ? q->text_len : 0,
	                           .rev = q->rev,
	                           .size = q->rc == STORE_WRITE || q->rc == -E2BIG ? q->size : 0};
	q->on_done(q->done_ctx, &res);
	req_reset(q);
	free(q->key_owned);
	free(q);
}

/* Calls the commit hook for every change of reqs[0..n) (they are in
 * revision order), then answers their callers: wakes the waiting ones,
 * calls the done callbacks of the asynchronous ones. */
static void finish(struct store *s, struct store_req **reqs, size_t n)
{
	pthread_mutex_lock(&s->lock);
	store_commit_hook hook = s->hook;
	void *hook_ctx = s->hook_ctx;
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; hook && i < n; i++) {
		struct store_req *q = reqs[i];
		if (q->rc != STORE_WRITE && q->rc != STORE_DELETE)
			continue;
		struct store_event ev = {q->type, q->rev, q->key, q->stored};
		hook(hook_ctx, &ev);
		q->shared = true;
	}
	/* The asynchronous ones are gathered at the front of reqs (the batch
	 * array is the writer's own) before the lock is released: a waiting
	 * caller's request may be gone the moment we unlock. */
	size_t nasync = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->on_done) {
			reqs[nasync++] = reqs[i];
			continue;
		}
		reqs[i]->done = true; /* the caller may free it once we unlock */
		pthread_cond_signal(&reqs[i]->cond);
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < nasync; i++)
		answer_async(reqs[i]);
}

/* ---- the sync thread ------------------------------------------------------------------ */

/* One batch's requests on their way from the writer to the sync thread. */
struct store_pending {
	struct store_pending *next;
	uint64_t seq;            /* commit sequence; 0: nothing written */
	uint64_t rev, compacted; /* the state to publish once it is durable */
	size_t n;
	struct store_req *reqs[];
};

/* The writer hands reqs[0..n) (answered or failed) to the sync thread; a
 * dirty commit gets the next sequence and covers the ones before it. */
static void hand_over(struct store *s, struct store_req **reqs, size_t n, bool dirty)
{
	struct store_pending *p = xmalloc(sizeof *p + n * sizeof *reqs);
	p->next = NULL;
	p->seq = dirty ? ++s->wseq : 0;
	p->rev = s->wrev;
	p->compacted = s->wcompacted;
	p->n = n;
	memcpy(p->reqs, reqs, n * sizeof *reqs);
	pthread_mutex_lock(&s->lock);
	if (dirty && s->covered < p->seq - 1)
		s->covered = p->seq - 1;
	if (s->pend_tail)
		s->pend_tail->next = p;
	else
		s->pend_head = p;
	s->pend_tail = p;
	s->handed++;
	pthread_cond_signal(&s->sync_cond);
	pthread_mutex_unlock(&s->lock);
}

void *store_syncer_main(void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->pend_head && !s->writer_done)
			pthread_cond_wait(&s->sync_cond, &s->lock);
		struct store_pending *list = s->pend_head;
		if (!list)
			break; /* the writer is done and everything is answered */
		s->pend_head = s->pend_tail = NULL;
		uint64_t need = 0;
		for (struct store_pending *p = list; p; p = p->next)
			need = p->seq > need ? p->seq : need;
		/* A batch in the writer's hands will flush its data pages after
		 * these meta pages were written: under load that flush makes them
		 * durable anyway, and a flush of our own would only compete with
		 * it for the disk. Our own flush is for when the writer goes idle
		 * (or its batch writes nothing, which flushes nothing: we wait
		 * for one batch of the writer's, not for as long as it is busy). */
		for (uint64_t h0 = s->handed;
		     need > s->covered && s->writer_busy && s->handed == h0;)
			pthread_cond_wait(&s->sync_cond, &s->lock);
		int rc = 0;
		if (need > s->covered) {
			pthread_mutex_unlock(&s->lock);
			rc = mdb_env_sync(s->env, 1); /* overlaps the writer's next flush */
			pthread_mutex_lock(&s->lock);
			if (rc == 0 && need > s->covered)
				s->covered = need;
		}
		pthread_mutex_unlock(&s->lock);
		struct kerr err = KERR_INIT;
		if (rc) {
			s->broken = true; /* read by the writer: a torn state is no worse */
			kerr_set(&err, EIO, "store: flush: %s; the write may or may not be on disk",
			         mdb_strerror(rc));
		}
		while (list) {
			struct store_pending *p = list;
			list = p->next;
			if (rc && p->seq) {
				for (size_t i = 0; i < p->n; i++)
					req_fail(p->reqs[i], &err);
			} else {
				atomic_store(&s->revision, p->rev);
				atomic_store(&s->compacted, p->compacted);
			}
			finish(s, p->reqs, p->n);
			free(p);
		}
		kerr_clear(&err);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the writer thread ------------------------------------------------------------------ */

/* Puts reqs[0..n) back at the head of the queue, in order. */
static void requeue(struct store *s, struct store_req **reqs, size_t n)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = n; i-- > 0;) {
		reqs[i]->next = s->head;
		s->head = reqs[i];
		if (!s->tail)
			s->tail = reqs[i];
	}
	s->queued += n;
	pthread_mutex_unlock(&s->lock);
}

static void run_solo(struct store *s, struct store_req *q)
{
	struct kerr err = KERR_INIT;
	size_t done;
	bool dirty = false;
	if (batch_txn(s, &q, 1, false, &done, &dirty, &err) < 0)
		req_fail(q, &err);
	kerr_clear(&err);
	hand_over(s, &q, 1, dirty);
}

static void run_batch(struct store *s, struct store_req **reqs, size_t n)
{
	struct kerr err = KERR_INIT;
	size_t done = n;
	bool dirty = false;
	int r = batch_txn(s, reqs, n, true, &done, &dirty, &err);
	if (r == 0) {
		if (done < n)
			requeue(s, reqs + done, n - done);
		hand_over(s, reqs, done, dirty);
	} else if (r == -ENOSPC && n > 1) {
		/* Something did not fit: one transaction each, so that only
		 * the writes that do not fit fail. */
		for (size_t i = 0; i < n; i++)
			run_solo(s, reqs[i]);
	} else {
		for (size_t i = 0; i < n; i++)
			req_fail(reqs[i], &err);
		hand_over(s, reqs, n, false);
	}
	kerr_clear(&err);
}

/* Takes what is queued now (at most max_batch); waits only when the queue is
 * empty. Returns 0 once the store is closing and the queue is drained. */
static size_t take_batch(struct store *s, struct store_req **batch)
{
	pthread_mutex_lock(&s->lock);
	if (!s->head) { /* idle: the sync thread flushes what waits for a flush */
		s->writer_busy = false;
		pthread_cond_signal(&s->sync_cond);
	}
	while (!s->head && !s->closing)
		pthread_cond_wait(&s->queue_cond, &s->lock);
	s->writer_busy = s->head != NULL;
	size_t n = 0;
	while (s->head && n < s->max_batch) {
		batch[n++] = s->head;
		s->head = s->head->next;
	}
	if (!s->head)
		s->tail = NULL;
	s->queued -= n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void *store_writer_main(void *arg)
{
	struct store *s = arg;
	struct store_req **batch = xcalloc(s->max_batch, sizeof *batch);
	size_t n;
	while ((n = take_batch(s, batch)) > 0)
		run_batch(s, batch, n);
	free(batch);
	pthread_mutex_lock(&s->lock);
	s->writer_done = true;
	pthread_cond_signal(&s->sync_cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}
