/*
 * store_etcd_watch — the watch thread, compaction and change replay.
 *
 * One watch stream over the whole prefix (prev_kv, for DELETED's object)
 * from the revision at open: every change under the prefix, this server's
 * and other servers', goes to the commit hook once, in revision order; then
 * store_revision() becomes its revision and the writes committed at or
 * before it are answered. So every store_revision() value is the revision
 * of an event under the prefix (the open marker PREFIX".open" makes the
 * start one too; markers are never handed to the hook, listed or replayed),
 * which is what lets store_changes() replay (after, target] with a watch
 * from after+1 and stop exactly at target.
 *
 * A broken stream is resumed from the last delivered revision + 1 on the
 * next endpoint. If etcd has compacted that revision away meanwhile, the
 * changes in between are lost to the hook: the watch thread then writes a
 * new marker, raises compacted to it (so every resume from before the gap
 * gets -ERANGE and relists), hands the hook a STORE_RESYNC at it (so live
 * followers start over too) and carries on from there.
 *
 * Compaction: after delivering, when the head is more than `history` plus a
 * step (history/16) past the compacted revision, the watch thread compacts
 * etcd to head - history (logical compaction; etcd's own defragmentation is
 * the operator's).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/kerr.h"
#include "common/util.h"
#include "store/store_etcd.h"

#define STALL_MS 2000 /* a stream that delivers nothing it owes for this long moves on */

static void raise_to(_Atomic uint64_t *v, uint64_t to)
{
	uint64_t cur = atomic_load(v);
	while (cur < to && !atomic_compare_exchange_weak(v, &cur, to))
		;
}

static char *prefix_end(struct store_etcd *e)
{
	char *end = xstrdup(e->prefix);
	end[e->plen - 1]++;
	return end;
}

static json_t *watch_request(struct store_etcd *e, uint64_t from)
{
	_cleanup_free_ char *end = prefix_end(e);
	return json_pack("{s:o, s:o, s:o, s:b}", "key", etcd_b64(e->prefix, e->plen), "range_end",
	                 etcd_b64(end, e->plen), "start_revision", etcd_u64_new(from), "prev_kv",
	                 1);
}

/* One watch event as a store event. *obj owned; *key owned (the store key).
 * Returns 1 for a marker (skip it), 0, <0. */
static int decode_event(struct store_etcd *e, json_t *ev, struct store_event *out, char **key,
                        json_t **obj, struct kerr *err)
{
	json_t *kv = json_object_get(ev, "kv");
	size_t klen = 0;
	_cleanup_free_ char *fk = etcd_unb64(json_object_get(kv, "key"), &klen);
	if (!fk)
		return kerr_set(err, EIO, "etcd watch: bad key");
	out->rev = etcd_u64(kv, "mod_revision");
	if (klen < e->plen || memcmp(fk, e->prefix, e->plen) != 0 ||
	    store_etcd_is_marker(e, fk, klen))
		return 1;
	*key = xstrdup(fk + e->plen);
	bool del = streq(json_string_value(json_object_get(ev, "type")), "DELETE");
	int r;
	if (del) {
		json_t *prev = json_object_get(ev, "prev_kv");
		out->type = STORE_DELETED;
		if (prev)
			r = store_etcd_kv_object(prev, *key, obj, NULL, err);
		else /* etcd had no previous value to give: a bare object */
			r = (*obj = json_object(), 0);
		if (r < 0)
			return r;
		store_etcd_set_rv(*obj, out->rev, *key, NULL);
	} else {
		out->type =
		    etcd_u64(kv, "create_revision") == out->rev ? STORE_ADDED : STORE_MODIFIED;
		if ((r = store_etcd_kv_object(kv, *key, obj, NULL, err)) < 0)
			return r;
	}
	out->key = *key;
	out->object = *obj;
	return 0;
}

/* ---- the watch thread ------------------------------------------------------------------------ */

struct watch_state {
	struct store_etcd *e;
	struct etcd_conn aux; /* compaction and markers */
	uint64_t compact_rev; /* etcd said: compacted */
	uint64_t lag_rev;     /* the delivered revision when ... */
	int64_t lag_since;    /* ... the stream was first seen behind e->expect (0: not) */
	struct kerr err;
};

void store_etcd_expect(struct store_etcd *e, uint64_t rev)
{
	raise_to(&e->expect, rev);
}

/* A stalled member (SIGSTOPped, partitioned: the kernel still answers TCP
 * keep-alive) holds the stream open and sends nothing, and every write
 * waits for the watch. Whether the stream owes an event it knows of
 * (e->expect: a txn committed through another member, a marker) and has
 * made no progress towards it for STALL_MS. A false alarm (a slow member)
 * only costs a reconnect: the stream resumes from the last delivered
 * revision + 1. */
static int watch_tick(void *ctx)
{
	struct watch_state *ws = ctx;
	uint64_t rev = atomic_load(&ws->e->revision);
	if (rev >= atomic_load(&ws->e->expect)) {
		ws->lag_since = 0;
		return 0;
	}
	int64_t now = time_mono_ms();
	if (!ws->lag_since || rev != ws->lag_rev) {
		ws->lag_since = now ? now : 1;
		ws->lag_rev = rev;
		return 0;
	}
	return now - ws->lag_since > STALL_MS;
}

static void maybe_compact(struct watch_state *ws, uint64_t head)
{
	struct store_etcd *e = ws->e;
	uint64_t h = e->history;
	uint64_t step = h / 16 ? h / 16 : 1;
	if (head <= h || head - h < atomic_load(&e->compacted) + step)
		return;
	uint64_t to = head - h;
	_cleanup_json_ json_t *req = json_pack("{s:o}", "revision", etcd_u64_new(to)), *resp = NULL;
	struct kerr err = KERR_INIT;
	int r = etcd_call(&e->gw, &ws->aux, "/v3/kv/compaction", req, true, &resp, &err);
	kerr_clear(&err);
	if (r == 0 || r == -ERANGE) /* -ERANGE: someone compacted further already */
		raise_to(&e->compacted, to);
}

static int on_result(void *ctx, json_t *res)
{
	struct watch_state *ws = ctx;
	struct store_etcd *e = ws->e;
	uint64_t crev = etcd_u64(res, "compact_revision");
	if (crev) {
		ws->compact_rev = crev;
		return kerr_set(&ws->err, ERANGE, "etcd compacted revision %llu",
		                (unsigned long long)crev);
	}
	if (json_is_true(json_object_get(res, "canceled")))
		return kerr_set(&ws->err, EIO, "etcd canceled the watch: %s",
		                json_string_value(json_object_get(res, "cancel_reason")) ?: "");
	json_t *events = json_object_get(res, "events");
	if (!json_array_size(events))
		return 0;
	pthread_mutex_lock(&e->lock);
	store_commit_hook hook = e->hook;
	void *hook_ctx = e->hook_ctx;
	pthread_mutex_unlock(&e->lock);
	size_t i;
	json_t *ev;
	uint64_t last = 0;
	json_array_foreach(events, i, ev)
	{
		struct store_event se = {0};
		_cleanup_free_ char *key = NULL;
		_cleanup_json_ json_t *obj = NULL;
		int r = decode_event(e, ev, &se, &key, &obj, &ws->err);
		if (r < 0) { /* a value that is not an object: nothing to hand on; skip it,
			         or the stream would stop at it for ever */
			kerr_clear(&ws->err);
			se.rev = etcd_u64(json_object_get(ev, "kv"), "mod_revision");
			r = 1;
		}
		if (r == 0 && hook)
			hook(hook_ctx, &se);
		last = se.rev > last ? se.rev : last;
	}
	/* Compacted first: a write answered at revision N sees the compaction
	 * N caused (as LMDB's does, in the same transaction). */
	maybe_compact(ws, last);
	raise_to(&e->revision, last);
	store_etcd_complete_through(e, atomic_load(&e->revision));
	return 0;
}

/* The changes since the last delivered revision are gone: see the top. The
 * hook is told (STORE_RESYNC) before the revision moves past the gap. */
static void after_gap(struct watch_state *ws)
{
	struct store_etcd *e = ws->e;
	uint64_t rev = 0;
	struct kerr err = KERR_INIT;
	if (store_etcd_put_marker(e, &ws->aux, &rev, &err) < 0) {
		kerr_clear(&err);
		return; /* etcd is unreachable: try the watch again later */
	}
	raise_to(&e->compacted, rev > ws->compact_rev ? rev : ws->compact_rev);
	pthread_mutex_lock(&e->lock);
	store_commit_hook hook = e->hook;
	void *hook_ctx = e->hook_ctx;
	pthread_mutex_unlock(&e->lock);
	struct store_event se = {.type = STORE_RESYNC, .rev = rev, .key = "", .object = NULL};
	if (hook)
		hook(hook_ctx, &se);
	raise_to(&e->revision, rev);
	store_etcd_complete_through(e, rev);
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

void *store_etcd_watch_main(void *arg)
{
	struct store_etcd *e = arg;
	store_etcd_thread = e;
	struct watch_state ws = {.e = e};
	struct etcd_conn c;
	etcd_conn_init(&c);
	etcd_conn_init(&ws.aux);
	long backoff = 50;
	while (!atomic_load(&e->stop)) {
		_cleanup_json_ json_t *req = watch_request(e, atomic_load(&e->revision) + 1);
		struct kerr err = KERR_INIT;
		uint64_t before = atomic_load(&e->revision);
		ws.lag_since = 0; /* a new stream gets its own deadline */
		int r = etcd_watch(&e->gw, &c, req, on_result, watch_tick, &ws, &err);
		kerr_clear(&err);
		kerr_clear(&ws.err);
		if (atomic_load(&e->stop))
			break;
		if (r == -ERANGE && ws.compact_rev) {
			after_gap(&ws);
			ws.compact_rev = 0;
			continue;
		}
		if (atomic_load(&e->revision) != before || r == -ETIMEDOUT)
			backoff = 50; /* it worked for a while, or the next member may */
		pause_ms(backoff);
		backoff = backoff < 1000 ? backoff * 2 : 1000;
	}
	etcd_conn_free(&c);
	etcd_conn_free(&ws.aux);
	return NULL;
}

/* ---- compacted at open -------------------------------------------------------------------------
 */

/* etcd does not report its compacted revision except to a watch that asks
 * for older ones (and then only after "created", with nothing to say when
 * it is not compacted), but a range at a revision below it fails: the
 * smallest revision a range still reads is it, found by bisection (about
 * log2(revision) small requests, at open only). */
static int range_at(struct store_etcd *e, struct etcd_conn *c, const char *key, uint64_t rev,
                    uint64_t *head, struct kerr *err)
{
	_cleanup_json_ json_t *req =
	    json_pack("{s:o, s:b}", "key", etcd_b64(key, strlen(key)), "count_only", 1);
	if (rev)
		json_object_set_new(req, "revision", etcd_u64_new(rev));
	_cleanup_json_ json_t *resp = NULL;
	int r = etcd_call(&e->gw, c, "/v3/kv/range", req, true, &resp, err);
	if (r == 0 && head)
		*head = etcd_u64(json_object_get(resp, "header"), "revision");
	return r;
}

int store_etcd_probe_compacted(struct store_etcd *e, struct etcd_conn *c, struct kerr *err)
{
	_cleanup_free_ char *k = xasprintf("%s.probe", e->prefix);
	uint64_t head = 0;
	int r = range_at(e, c, k, 0, &head, err);
	if (r < 0)
		return kerr_prefix(err, "store: open etcd at %s", e->gw.list);
	uint64_t lo = 1, hi = head; /* the answer is in [lo, hi]: hi reads */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct kerr e2 = KERR_INIT;
		r = range_at(e, c, k, mid, NULL, &e2);
		if (r == -ERANGE)
			lo = mid + 1;
		else if (r == 0)
			hi = mid;
		else {
			kerr_move(err, &e2);
			return kerr_prefix(err, "store: open etcd at %s", e->gw.list);
		}
		kerr_clear(&e2);
	}
	atomic_store(&e->compacted, lo > 1 ? lo : 0);
	return 0;
}

/* ---- replay
 * -------------------------------------------------------------------------------------- */

struct replay {
	struct store_etcd *e;
	uint64_t after, target;
	store_event_fn fn;
	void *ctx;
	int rc;        /* fn's non-zero value, or -ERANGE */
	bool done;     /* reached target */
	uint64_t last; /* the last revision handed to fn */
	int64_t heard; /* when the stream last sent something */
	struct kerr *err;
};

/* The events up to target exist (the watch thread has delivered them): a
 * stream that sends nothing for STALL_MS is on a stalled member. */
static int replay_tick(void *ctx)
{
	struct replay *rp = ctx;
	return time_mono_ms() - rp->heard > STALL_MS;
}

static int on_replay(void *ctx, json_t *res)
{
	struct replay *rp = ctx;
	struct store_etcd *e = rp->e;
	rp->heard = time_mono_ms();
	uint64_t crev = etcd_u64(res, "compact_revision");
	if (crev) {
		raise_to(&e->compacted, crev);
		rp->rc = kerr_set(rp->err, ERANGE,
		                  "revision %llu has been compacted (oldest available: %llu)",
		                  (unsigned long long)rp->after, (unsigned long long)crev);
		return 1;
	}
	size_t i;
	json_t *ev;
	json_array_foreach(json_object_get(res, "events"), i, ev)
	{
		struct store_event se = {0};
		_cleanup_free_ char *key = NULL;
		_cleanup_json_ json_t *obj = NULL;
		int r = decode_event(e, ev, &se, &key, &obj, rp->err);
		if (r < 0) {
			rp->rc = r;
			return 1;
		}
		if (se.rev > rp->target) {
			rp->done = true;
			return 1;
		}
		if (r == 0 && (rp->rc = rp->fn(rp->ctx, &se)) != 0)
			return 1;
		rp->last = se.rev;
		if (se.rev == rp->target) {
			rp->done = true;
			return 1;
		}
	}
	return 0;
}

int store_etcd_changes(struct store_etcd *e, uint64_t after, store_event_fn fn, void *ctx,
                       struct kerr *err)
{
	int r = store_etcd_enter(e, err);
	if (r < 0)
		return r;
	uint64_t compacted = atomic_load(&e->compacted), target = atomic_load(&e->revision);
	if (after < compacted) {
		store_etcd_leave(e);
		return kerr_set(err, ERANGE,
		                "revision %llu has been compacted (oldest available: %llu)",
		                (unsigned long long)after, (unsigned long long)compacted);
	}
	struct replay rp = {
	    .e = e, .after = after, .target = target, .fn = fn, .ctx = ctx, .err = err};
	r = 0;
	/* A stream that breaks or stalls resumes on the next member after the
	 * last event handed on (each member once). */
	for (size_t tries = 0; after < target && tries < e->gw.n; tries++) {
		_cleanup_json_ json_t *req =
		    watch_request(e, (rp.last > after ? rp.last : after) + 1);
		rp.heard = time_mono_ms();
		r = etcd_watch(&e->gw, store_etcd_thread_conn(), req, on_replay, replay_tick, &rp,
		               err);
		if (r >= 0 || rp.rc) {
			r = rp.rc;
			break;
		}
		if ((r != -ETIMEDOUT && r != -EIO) || tries + 1 == e->gw.n)
			break;
		kerr_clear(err);
	}
	store_etcd_leave(e);
	return r;
}
