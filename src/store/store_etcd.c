/*
 * store_etcd — the etcd backend: open/close, reads, lists and writes.
 *
 * Objects live at PREFIX + store key ("/keel/tasks/default/a"), as JSON text
 * whose metadata.resourceVersion is only a guess: every read sets it from
 * etcd's mod_revision, which IS the resourceVersion.
 *
 * A write (store_update, store_update_async) is queued for a pool of worker
 * threads, each with its own keep-alive connection. A worker ranges the key,
 * runs the mutate callback on what it read (rev argument: the read's
 * header.revision + 1, a guess), and commits with one txn that compares the
 * key's mod_revision (absent: create_revision == 0): a failed compare means
 * someone else wrote in between, so it re-reads and re-runs the callback
 * (bounded: -EBUSY). A failed compare's txn answer carries the key as it
 * is (a range in the failure branch), so a conflict costs no extra read.
 * A txn whose answer was lost (-EINPROGRESS from the gateway) or that
 * libcurl sent twice on a kept-alive connection is resolved by what the key
 * holds: exactly the bytes this write sent (or, for a delete, gone) means
 * the write is done at the key's mod_revision; otherwise the callback runs
 * again and the compare keeps the retry from applying twice
 * (update_round).
 *
 * A committed write is not answered by its worker: it waits in `pend`
 * (sorted by revision) until the watch thread (store_etcd_watch.c) has
 * handed that revision to the commit hook, as store.h promises.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/kerr.h"
#include "common/util.h"
#include "store/store_etcd.h"
#include "store/store_internal.h"

#define DEFAULT_PREFIX   "/keel/"
#define DEFAULT_HISTORY  100000u
#define DEFAULT_MAP_SIZE ((size_t)8 << 30)
#define WORKERS          32u
#define MAX_ATTEMPTS     64
#define LIST_PAGE        500
#define MAX_KEY          511u /* LMDB's limit, so keys move between backends */
#define STATS_EVERY_MS   5000 /* the stats thread refreshes map_used */
#define CATCH_UP_MS      50   /* a list waits for the watch to reach its revision */
#define CATCH_UP_MAX_MS  2000 /* ... and then for a marker past it */
#define CLOSE_WAIT_S     10   /* for the watch to deliver committed writes */

_Thread_local struct store_etcd *store_etcd_thread;

struct etcd_req {
	struct etcd_req *next;
	char *key;
	store_mutate_fn fn;
	void *ctx;
	store_done_fn done;
	void *done_ctx;

	int rc;
	struct kerr err;
	json_t *obj; /* owned: stored / deleted / current */
	char *text;  /* owned: WRITE's text with its real resourceVersion */
	size_t text_len, size;
	uint64_t rev;
};

/* ---- small helpers ------------------------------------------------------------------------ */

int store_etcd_set_rv(json_t *obj, uint64_t rev, const char *key, struct kerr *err)
{
	if (!json_is_object(obj))
		return kerr_set(err, EINVAL, "store: new value for %s is not a JSON object", key);
	json_t *md = json_object_get(obj, "metadata");
	if (!md)
		json_object_set_new(obj, "metadata", md = json_object());
	if (!json_is_object(md))
		return kerr_set(err, EINVAL, "store: metadata of %s is not a JSON object", key);
	json_object_set_new(md, "resourceVersion", etcd_u64_new(rev));
	return 0;
}

bool store_etcd_is_marker(struct store_etcd *e, const char *k, size_t len)
{
	return len <= e->plen || k[e->plen] == '.';
}

bool store_etcd_own_thread(struct store_etcd *e)
{
	return store_etcd_thread == e;
}

static char *full_key(struct store_etcd *e, const char *key)
{
	return xasprintf("%s%s", e->prefix, key);
}

static int check_key(const char *key, struct kerr *err)
{
	if (!key || !*key)
		return kerr_set(err, EINVAL, "store: empty key");
	size_t len = strlen(key);
	if (len > MAX_KEY)
		return kerr_set(err, EINVAL, "store: key of %zu bytes is longer than the limit %u",
		                len, MAX_KEY);
	if (key[0] == '.')
		return kerr_set(err, EINVAL, "store: key %s starts with '.' (reserved)", key);
	json_t *j = json_stringn(key, len);
	if (!j)
		return kerr_set(err, EINVAL, "store: key is not valid UTF-8");
	json_decref(j);
	return 0;
}

/* Decodes one kv of a range/watch answer into an object with its
 * resourceVersion = mod_revision. *raw (if non-NULL): the stored bytes. */
int store_etcd_kv_object(json_t *kv, const char *what, json_t **out, char **raw, struct kerr *err)
{
	size_t len = 0;
	_cleanup_free_ char *text = etcd_unb64(json_object_get(kv, "value"), &len);
	if (!text)
		return kerr_set(err, EIO, "store: corrupt data at %s: bad base64 from etcd", what);
	json_error_t jerr;
	json_t *o = json_loadb(text, len, 0, &jerr);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return kerr_set(err, EIO, "store: corrupt data at %s: not a JSON object", what);
	}
	store_etcd_set_rv(o, etcd_u64(kv, "mod_revision"), what, NULL);
	*out = o;
	if (raw)
		*raw = TAKE_PTR(text);
	return 0;
}

/* Ranges one key: 0 with *obj, *mod (and *raw); -ENOENT (then *hrev is
 * still set); <0. */
static int read_key(struct store_etcd *e, struct etcd_conn *c, const char *key, json_t **obj,
                    uint64_t *mod, uint64_t *hrev, char **raw, struct kerr *err)
{
	_cleanup_free_ char *fk = full_key(e, key);
	_cleanup_json_ json_t *req = json_pack("{s:o}", "key", etcd_b64(fk, strlen(fk)));
	_cleanup_json_ json_t *resp = NULL;
	int r = etcd_call(&e->gw, c, "/v3/kv/range", req, true, &resp, err);
	if (r < 0)
		return r;
	if (hrev)
		*hrev = etcd_u64(json_object_get(resp, "header"), "revision");
	json_t *kv = json_array_get(json_object_get(resp, "kvs"), 0);
	if (!kv)
		return kerr_set(err, ENOENT, "%s not found", key);
	if (mod)
		*mod = etcd_u64(kv, "mod_revision");
	return store_etcd_kv_object(kv, key, obj, raw, err);
}

/* A thread's connection for calls made on a caller's thread (reads). */
static _Thread_local struct etcd_conn *caller_conn;
static pthread_key_t conn_key;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_destroy(void *p)
{
	etcd_conn_free(p);
	free(p);
}
static void conn_key_init(void)
{
	pthread_key_create(&conn_key, conn_destroy);
}

struct etcd_conn *store_etcd_thread_conn(void)
{
	if (!caller_conn) {
		pthread_once(&conn_once, conn_key_init);
		caller_conn = xmalloc(sizeof *caller_conn);
		etcd_conn_init(caller_conn);
		pthread_setspecific(conn_key, caller_conn);
	}
	return caller_conn;
}

/* Counts a call so close waits for it. */
int store_etcd_enter(struct store_etcd *e, struct kerr *err)
{
	pthread_mutex_lock(&e->lock);
	bool refuse = atomic_load(&e->stop);
	if (!refuse)
		e->inflight++;
	pthread_mutex_unlock(&e->lock);
	return refuse ? kerr_set(err, ESHUTDOWN, "store is closing") : 0;
}

void store_etcd_leave(struct store_etcd *e)
{
	pthread_mutex_lock(&e->lock);
	if (--e->inflight == 0)
		pthread_cond_broadcast(&e->idle_cond);
	pthread_mutex_unlock(&e->lock);
}

/* ---- reads ---------------------------------------------------------------------------------- */

int store_etcd_get(struct store_etcd *e, const char *key, json_t **out, struct kerr *err)
{
	int r = check_key(key, err);
	if (r < 0 || (r = store_etcd_enter(e, err)) < 0)
		return r;
	json_t *o = NULL;
	r = read_key(e, store_etcd_thread_conn(), key, &o, NULL, NULL, NULL, err);
	store_etcd_leave(e);
	if (r >= 0)
		*out = o;
	return r;
}

int store_etcd_get_text(struct store_etcd *e, const char *key, char **text, size_t *len,
                        struct kerr *err)
{
	_cleanup_json_ json_t *o = NULL;
	int r = store_etcd_get(e, key, &o, err);
	if (r < 0)
		return r;
	*text = json_dumps(o, JSON_COMPACT);
	*len = strlen(*text);
	return 0;
}

struct list_state {
	struct store_etcd *e;
	const char *prefix, *after;
	size_t limit, count;
	store_filter_fn filter;
	void *ctx;
	json_t *items;
	char *next;
};

/* One page's kvs; returns 1 when the limit is reached with keys left. */
static int list_page(struct list_state *ls, json_t *kvs, bool more, struct kerr *err)
{
	struct store_etcd *e = ls->e;
	size_t i, n = json_array_size(kvs);
	for (i = 0; i < n; i++) {
		json_t *kv = json_array_get(kvs, i);
		size_t klen = 0;
		_cleanup_free_ char *fk = etcd_unb64(json_object_get(kv, "key"), &klen);
		if (!fk)
			return kerr_set(err, EIO, "store: list %s: bad key from etcd", ls->prefix);
		if (store_etcd_is_marker(e, fk, klen))
			continue;
		const char *key = fk + e->plen;
		if (ls->after && streq(key, ls->after))
			continue;
		if (ls->limit && ls->count == ls->limit)
			return 1;
		json_t *o;
		int r = store_etcd_kv_object(kv, key, &o, NULL, err);
		if (r < 0)
			return r;
		if (ls->filter && !ls->filter(ls->ctx, o)) {
			json_decref(o);
			continue;
		}
		json_array_append_new(ls->items, o);
		free(ls->next);
		ls->next = xstrdup(key);
		ls->count++;
	}
	(void)more;
	return 0;
}

static int list_scan(struct list_state *ls, uint64_t *at, struct kerr *err)
{
	struct store_etcd *e = ls->e;
	struct etcd_conn *c = store_etcd_thread_conn();
	_cleanup_free_ char *fprefix = full_key(e, ls->prefix);
	size_t plen = strlen(fprefix);
	_cleanup_free_ char *end = xstrdup(fprefix);
	end[plen - 1]++; /* the prefix ends in '/' or a name byte, never 0xff */
	const char *from = ls->after && strcmp(ls->after, ls->prefix) > 0 ? ls->after : ls->prefix;
	_cleanup_free_ char *start = full_key(e, from);
	size_t slen = strlen(start);
	uint64_t rev = 0;
	int page = LIST_PAGE, r = 0;
	for (;;) {
		_cleanup_json_ json_t *req =
		    json_pack("{s:o, s:o, s:i}", "key", etcd_b64(start, slen), "range_end",
		              etcd_b64(end, plen), "limit", page);
		if (rev)
			json_object_set_new(req, "revision", etcd_u64_new(rev));
		_cleanup_json_ json_t *resp = NULL;
		r = etcd_call(&e->gw, c, "/v3/kv/range", req, true, &resp, err);
		if (r == -E2BIG && page > 1) { /* the gateway's answer limit: smaller pages */
			kerr_clear(err);
			page /= 4;
			if (page < 1)
				page = 1;
			continue;
		}
		if (r < 0)
			return r;
		if (!rev)
			rev = etcd_u64(json_object_get(resp, "header"), "revision");
		json_t *kvs = json_object_get(resp, "kvs");
		bool more = json_is_true(json_object_get(resp, "more"));
		if ((r = list_page(ls, kvs, more, err)) != 0)
			break;
		size_t n = json_array_size(kvs);
		if (!more || !n)
			break;
		size_t klen = 0;
		_cleanup_free_ char *last =
		    etcd_unb64(json_object_get(json_array_get(kvs, n - 1), "key"), &klen);
		if (!last) {
			r = kerr_set(err, EIO, "store: list %s: bad key from etcd", ls->prefix);
			break;
		}
		free(start);
		start = xmalloc(klen + 1);
		memcpy(start, last, klen);
		start[klen] = '\0'; /* the smallest key after `last` */
		slen = klen + 1;
	}
	*at = rev;
	return r;
}

/* Waits until the watch has delivered through rev, at most ms; whether it has. */
static bool wait_delivered(struct store_etcd *e, uint64_t rev, long ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L)
		until.tv_sec++, until.tv_nsec -= 1000000000L;
	pthread_mutex_lock(&e->lock);
	while (atomic_load(&e->revision) < rev &&
	       pthread_cond_timedwait(&e->rev_cond, &e->lock, &until) == 0)
		;
	pthread_mutex_unlock(&e->lock);
	return atomic_load(&e->revision) >= rev;
}

/* A list read at etcd's revision `at` may include changes (another server's)
 * that this store's watch has not delivered yet; a watch from `at` would
 * then be refused by the server as ahead of store_revision(). So the list
 * returns once the watch has caught up with it. `at` is etcd's revision,
 * which need not be an event under the prefix (on an etcd shared with
 * others): if the watch does not reach it soon, a marker write under the
 * prefix makes an event past it. Not on the store's own threads (a hook
 * that lists would wait for itself). */
static void catch_up(struct store_etcd *e, uint64_t at)
{
	if (store_etcd_own_thread(e) || wait_delivered(e, at, CATCH_UP_MS))
		return;
	uint64_t m = 0;
	struct kerr err = KERR_INIT;
	if (store_etcd_put_marker(e, store_etcd_thread_conn(), &m, &err) == 0)
		wait_delivered(e, m, CATCH_UP_MAX_MS);
	kerr_clear(&err);
}

int store_etcd_list(struct store_etcd *e, const char *prefix, const char *after, size_t limit,
                    store_filter_fn filter, void *ctx, json_t **items, uint64_t *rev, char **next,
                    struct kerr *err)
{
	int r = store_etcd_enter(e, err);
	if (r < 0)
		return r;
	struct list_state ls = {.e = e,
	                        .prefix = prefix ? prefix : "",
	                        .after = after,
	                        .limit = limit,
	                        .filter = filter,
	                        .ctx = ctx,
	                        .items = json_array()};
	uint64_t at = 0;
	r = list_scan(&ls, &at, err);
	if (r >= 0)
		catch_up(e, at);
	store_etcd_leave(e);
	if (r < 0) {
		json_decref(ls.items);
		free(ls.next);
		return r;
	}
	if (r == 0) {
		free(ls.next);
		ls.next = NULL;
	}
	*items = ls.items;
	if (rev)
		*rev = at;
	if (next)
		*next = ls.next;
	else
		free(ls.next);
	return 0;
}

/* ---- writes ------------------------------------------------------------------------------- */

/* The key as a write round sees it: from a range, or from a failed txn's
 * failure branch (then no extra read). cur/raw owned. */
struct snap {
	bool have;
	json_t *cur; /* NULL: absent */
	char *raw;   /* the stored bytes */
	uint64_t mod, hrev;
};

static void snap_clear(struct snap *sn)
{
	json_decref(sn->cur);
	free(sn->raw);
	memset(sn, 0, sizeof *sn);
}

/* A worker's write token: the key PREFIX".w/STORE-ID/N" that each of its
 * txns also sets, to a number no other txn sets (see update_round). It is
 * a marker (never listed, replayed or handed to the hook) and stays after
 * close: deleting it would move etcd's revision past the last write, and a
 * restart would no longer keep the revision. So every open that writes
 * leaves up to 32 small keys under the prefix. */
struct wtoken {
	char *key; /* full key */
	uint64_t seq;
};

/* The token's value now: 0 with *mod its mod_revision when it holds seq,
 * 1 when not; <0 an error. */
static int token_is(json_t *kv, uint64_t seq, uint64_t *mod)
{
	size_t len = 0;
	_cleanup_free_ char *v = kv ? etcd_unb64(json_object_get(kv, "value"), &len) : NULL;
	if (!v || strtoull(v, NULL, 10) != seq)
		return 1;
	*mod = etcd_u64(kv, "mod_revision");
	return 0;
}

/* The txn: compare the key's mod_revision (0: absent), then put text or
 * delete and set the write token to tok->seq; else range the key (into
 * *sn) and the token. 1 committed at *rev; 2 committed at *rev by an
 * earlier copy of this same txn (libcurl sent it twice); 0 the compare
 * failed; <0 an error (-EINPROGRESS: the outcome is unknown). */
static int txn(struct store_etcd *e, struct etcd_conn *c, const char *key, uint64_t mod,
               const char *text, size_t len, struct wtoken *tok, uint64_t *rev, struct snap *sn,
               struct kerr *err)
{
	_cleanup_free_ char *fk = full_key(e, key);
	char seq[24];
	snprintf(seq, sizeof seq, "%llu", (unsigned long long)tok->seq);
	json_t *k = etcd_b64(fk, strlen(fk)), *tk = etcd_b64(tok->key, strlen(tok->key));
	json_t *cmp = mod ? json_pack("{s:O, s:s, s:s, s:o}", "key", k, "target", "MOD", "result",
	                              "EQUAL", "mod_revision", etcd_u64_new(mod))
	                  : json_pack("{s:O, s:s, s:s, s:s}", "key", k, "target", "CREATE",
	                              "result", "EQUAL", "create_revision", "0");
	json_t *op = text ? json_pack("{s:{s:O, s:o}}", "request_put", "key", k, "value",
	                              etcd_b64(text, len))
	                  : json_pack("{s:{s:O}}", "request_delete_range", "key", k);
	json_t *mark = json_pack("{s:{s:O, s:o}}", "request_put", "key", tk, "value",
	                         etcd_b64(seq, strlen(seq)));
	json_t *fail_k = json_pack("{s:{s:O}}", "request_range", "key", k);
	json_t *fail_t = json_pack("{s:{s:O}}", "request_range", "key", tk);
	json_decref(k);
	json_decref(tk);
	_cleanup_json_ json_t *req = json_pack("{s:[o], s:[o, o], s:[o, o]}", "compare", cmp,
	                                       "success", op, mark, "failure", fail_k, fail_t);
	_cleanup_json_ json_t *resp = NULL;
	int r = etcd_call(&e->gw, c, "/v3/kv/txn", req, false, &resp, err);
	if (r == -E2BIG)
		return kerr_set(
		    err, E2BIG,
		    "object %s is %zu bytes serialised; etcd refused the request as too "
		    "large (raise etcd's --max-request-bytes)",
		    key, len);
	if (r < 0)
		return r;
	uint64_t hrev = etcd_u64(json_object_get(resp, "header"), "revision");
	if (json_is_true(json_object_get(resp, "succeeded"))) {
		*rev = hrev;
		return 1;
	}
	json_t *resps = json_object_get(resp, "responses");
	json_t *range = json_object_get(json_array_get(resps, 0), "response_range");
	json_t *tkv = json_array_get(
	    json_object_get(json_object_get(json_array_get(resps, 1), "response_range"), "kvs"), 0);
	if (token_is(tkv, tok->seq, rev) == 0)
		return 2;
	snap_clear(sn);
	if (!range)
		return 0; /* no failure answer: the next round reads */
	json_t *kv = json_array_get(json_object_get(range, "kvs"), 0);
	sn->hrev = hrev;
	if (kv) {
		struct kerr e2 = KERR_INIT;
		if (store_etcd_kv_object(kv, key, &sn->cur, &sn->raw, &e2) < 0) {
			kerr_clear(&e2); /* the next round reads and reports it */
			snap_clear(sn);
			return 0;
		}
		sn->mod = etcd_u64(kv, "mod_revision");
	}
	sn->have = true;
	return 0;
}

/* After a lost txn answer: whether that txn applied (0, *rev its
 * revision), by the token; 1 not; <0 an error. */
static int token_check(struct store_etcd *e, struct etcd_conn *c, struct wtoken *tok, uint64_t seq,
                       uint64_t *rev, struct kerr *err)
{
	_cleanup_json_ json_t *req =
	    json_pack("{s:o}", "key", etcd_b64(tok->key, strlen(tok->key)));
	_cleanup_json_ json_t *resp = NULL;
	int r = etcd_call(&e->gw, c, "/v3/kv/range", req, true, &resp, err);
	if (r < 0)
		return r;
	return token_is(json_array_get(json_object_get(resp, "kvs"), 0), seq, rev);
}

static void req_reset(struct etcd_req *q)
{
	q->rc = 0;
	kerr_clear(&q->err);
	json_decref(q->obj);
	q->obj = NULL;
	free(q->text);
	q->text = NULL;
	q->text_len = q->size = 0;
	q->rev = 0;
}

/* A committed write: the object with its real resourceVersion, and its text. */
static void committed(struct etcd_req *q, int act, json_t *obj, uint64_t rev)
{
	q->rc = act;
	q->rev = rev;
	store_etcd_set_rv(obj, rev, q->key, NULL);
	q->obj = obj;
	if (act == STORE_WRITE) {
		q->text = json_dumps(obj, JSON_COMPACT);
		q->text_len = q->size = strlen(q->text);
	}
}

/* What the callback returned, as a request outcome (for NOOP and errors). */
static void callback_error(struct etcd_req *q, int act)
{
	if (act > 0)
		q->rc = kerr_set(&q->err, EINVAL, "store: update of %s: bad callback result %d",
		                 q->key, act);
	else if (q->err.code == 0)
		q->rc = kerr_set(&q->err, -act, "update of %s failed: %s", q->key, strerror(-act));
	else
		q->rc = act;
}

struct attempt {
	int act;      /* what the last txn tried: STORE_WRITE / STORE_DELETE; 0 none */
	bool unknown; /* its answer was lost */
	uint64_t seq; /* its token */
	json_t *obj;  /* owned: what it wrote / deleted */
	bool rounds;  /* a round has run: the key is read, no more guessing */
};

/* One round: read (unless the last failed txn's answer said what the key
 * holds: *sn), run the callback, txn. 1 done (q filled), 0 retry.
 *
 * A txn may apply without its answer reaching us: the answer was lost
 * (-EINPROGRESS), or libcurl sent it a second time by itself because the
 * kept-alive connection it went out on turned out closed before any
 * answer (then the second copy's compare fails against the first's
 * write). The write token tells: every txn also sets the worker's token
 * key to a number no other txn sets, in the same revision, so the token
 * holding this txn's number means it applied, at the token's
 * mod_revision. Comparing the object's bytes instead would not do: two
 * writers that read the same version and make the same change (two
 * increments) send identical bytes, and both would count one write as
 * theirs. Otherwise the callback runs again on what the key holds now and
 * the compare keeps the retry from applying twice. */
static int update_round(struct store_etcd *e, struct etcd_conn *c, struct etcd_req *q,
                        struct attempt *a, struct snap *sn, struct wtoken *tok)
{
	int r;
	if (a->unknown) {
		uint64_t at = 0;
		a->unknown = false;
		r = token_check(e, c, tok, a->seq, &at, &q->err);
		if (r < 0) { /* not acknowledged: it may or may not have applied (504) */
			q->err.code = ETIMEDOUT;
			q->rc =
			    kerr_prefix(&q->err,
			                "the write of %s reached etcd but its outcome is unknown "
			                "(read it back to see)",
			                q->key);
			return 1;
		}
		if (r == 0) {
			atomic_fetch_add(&e->commits, 1);
			atomic_fetch_add(&e->writes, 1);
			committed(q, a->act, TAKE_PTR(a->obj), at);
			return 1;
		}
	}
	json_decref(TAKE_PTR(a->obj));
	json_t *cur = NULL;
	_cleanup_free_ char *raw = NULL;
	uint64_t mod = 0, hrev = 0;
	bool blind = !a->rounds;
	a->rounds = true;
	if (blind) /* guess absent: a create then costs no read (the compare
	              checks the guess; a failed one returns the key) */
		hrev = atomic_load(&e->revision);
	else if (sn->have) {
		cur = TAKE_PTR(sn->cur), raw = TAKE_PTR(sn->raw), mod = sn->mod, hrev = sn->hrev;
		snap_clear(sn);
	} else {
		r = read_key(e, c, q->key, &cur, &mod, &hrev, &raw, &q->err);
		if (r < 0 && r != -ENOENT) {
			q->rc = r;
			return 1;
		}
		kerr_clear(&q->err);
	}
	json_t *next = NULL;
	int act = q->fn(q->ctx, cur, hrev + 1, &next, &q->err);
	if (act != STORE_WRITE)
		json_decref(TAKE_PTR(next));
	if (blind && act != STORE_WRITE) { /* it needs what is there: read it */
		kerr_clear(&q->err);
		return 0;
	}
	if (act == STORE_NOOP) {
		uint64_t now = atomic_load(&e->revision);
		q->rc = STORE_NOOP, q->obj = cur, q->rev = mod > now ? mod : now;
		return 1;
	}
	if (act != STORE_WRITE && act != STORE_DELETE) {
		json_decref(cur);
		callback_error(q, act);
		return 1;
	}
	if (act == STORE_DELETE && !cur) {
		q->rc = kerr_set(&q->err, ENOENT, "%s not found", q->key);
		return 1;
	}
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (act == STORE_WRITE) {
		json_decref(cur);
		cur = NULL;
		if (!next) {
			q->rc =
			    kerr_set(&q->err, EINVAL, "store: write of %s without a value", q->key);
			return 1;
		}
		if ((r = store_etcd_set_rv(next, hrev + 1, q->key, &q->err)) < 0) {
			json_decref(next);
			q->rc = r;
			return 1;
		}
		text = json_dumps(next, JSON_COMPACT);
		len = text ? strlen(text) : 0;
		if (!text || len > e->max_object) {
			json_decref(next);
			q->size = len;
			q->rc =
			    text ? kerr_set(
			               &q->err, E2BIG,
			               "object %s is %zu bytes serialised; the limit is %zu bytes",
			               q->key, len, e->max_object)
			         : kerr_set(&q->err, EINVAL, "store: cannot serialise %s", q->key);
			return 1;
		}
	}
	json_t *o = act == STORE_WRITE ? next : cur;
	uint64_t rev = 0;
	tok->seq++;
	r = txn(e, c, q->key, mod, text, len, tok, &rev, sn, &q->err);
	if (r == 1 || r == 2) {
		atomic_fetch_add(&e->commits, 1);
		atomic_fetch_add(&e->writes, 1);
		committed(q, act, o, rev);
		return 1;
	}
	if (r == -EINPROGRESS) { /* find out by the token */
		kerr_clear(&q->err);
		a->act = act, a->unknown = true, a->seq = tok->seq, a->obj = o;
		return 0;
	}
	json_decref(o);
	if (r < 0) {
		q->rc = r;
		q->size = r == -E2BIG ? len : 0;
		return 1;
	}
	return 0; /* the compare failed: someone else wrote; again */
}

static void update_run(struct store_etcd *e, struct etcd_conn *c, struct etcd_req *q,
                       struct wtoken *tok)
{
	struct attempt a = {0};
	struct snap sn = {0};
	int n = 0;
	for (; n < MAX_ATTEMPTS; n++) {
		req_reset(q);
		if (update_round(e, c, q, &a, &sn, tok))
			break;
	}
	snap_clear(&sn);
	json_decref(a.obj);
	if (n == MAX_ATTEMPTS) {
		req_reset(q);
		q->rc =
		    kerr_set(&q->err, EBUSY,
		             "store: update of %s lost to %d concurrent writes in a row; try again",
		             q->key, MAX_ATTEMPTS);
	}
}

/* ---- answering ------------------------------------------------------------------------------ */

static void answer(struct store_etcd *e, struct etcd_req *q)
{
	bool ok = q->rc >= 0;
	struct store_result res = {.rc = q->rc,
	                           .err = &q->err,
	                           .object = ok ? q->obj : NULL,
	                           .text = ok && q->rc == STORE_WRITE ? q->text : NULL,
	                           .text_len = ok && q->rc == STORE_WRITE ? q->text_len : 0,
	                           .rev = q->rev,
	                           .size = q->rc == STORE_WRITE || q->rc == -E2BIG ? q->size : 0};
	q->done(q->done_ctx, &res);
	req_reset(q);
	free(q->key);
	free(q);
	store_etcd_leave(e);
}

void store_etcd_complete_through(struct store_etcd *e, uint64_t rev)
{
	pthread_mutex_lock(&e->lock);
	struct etcd_req *list = NULL, **tail = &list;
	while (e->pend && e->pend->rev <= rev) {
		*tail = e->pend;
		e->pend = e->pend->next;
		tail = &(*tail)->next;
	}
	*tail = NULL;
	pthread_cond_broadcast(&e->rev_cond);
	pthread_mutex_unlock(&e->lock);
	while (list) {
		struct etcd_req *q = list;
		list = q->next;
		answer(e, q);
	}
}

/* A committed write waits for the watch to deliver its revision. */
static void park(struct store_etcd *e, struct etcd_req *q)
{
	store_etcd_expect(e, q->rev);
	pthread_mutex_lock(&e->lock);
	if (atomic_load(&e->revision) >= q->rev) {
		pthread_mutex_unlock(&e->lock);
		answer(e, q);
		return;
	}
	struct etcd_req **p = &e->pend;
	while (*p && (*p)->rev <= q->rev)
		p = &(*p)->next;
	q->next = *p;
	*p = q;
	pthread_mutex_unlock(&e->lock);
}

static void *worker_main(void *arg)
{
	struct store_etcd *e = arg;
	store_etcd_thread = e;
	struct etcd_conn c;
	etcd_conn_init(&c);
	struct wtoken tok = {
	    .key = xasprintf("%s.w/%s/%u", e->prefix, e->id, atomic_fetch_add(&e->next_worker, 1))};
	pthread_mutex_lock(&e->lock);
	for (;;) {
		while (!e->head && !e->closing)
			pthread_cond_wait(&e->work_cond, &e->lock);
		struct etcd_req *q = e->head;
		if (!q)
			break;
		e->head = q->next;
		if (!e->head)
			e->tail = NULL;
		e->queued--;
		pthread_mutex_unlock(&e->lock);
		update_run(e, &c, q, &tok);
		if ((q->rc == STORE_WRITE || q->rc == STORE_DELETE) && q->rev)
			park(e, q);
		else
			answer(e, q);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	etcd_conn_free(&c);
	free(tok.key);
	return NULL;
}

int store_etcd_update_async(struct store_etcd *e, const char *key, store_mutate_fn fn, void *ctx,
                            store_done_fn done, void *done_ctx, struct kerr *err)
{
	if (!fn)
		return kerr_set(err, EINVAL, "store: update of %s without a callback",
		                key ? key : "");
	int r = check_key(key, err);
	if (r < 0)
		return r;
	if (!done)
		return kerr_set(err, EINVAL,
		                "store: asynchronous update of %s without a done callback", key);
	if (store_etcd_own_thread(e))
		return kerr_set(err, EDEADLK,
		                "store: update of %s from a mutate callback or commit hook", key);
	struct etcd_req *q = xcalloc(1, sizeof *q);
	q->key = xstrdup(key);
	q->fn = fn, q->ctx = ctx, q->done = done, q->done_ctx = done_ctx;
	pthread_mutex_lock(&e->lock);
	if (e->closing) {
		pthread_mutex_unlock(&e->lock);
		r = kerr_set(err, ESHUTDOWN, "store is closing; %s not written", key);
		free(q->key);
		free(q);
		return r;
	}
	e->inflight++;
	if (e->tail)
		e->tail->next = q;
	else
		e->head = q;
	e->tail = q;
	e->queued++;
	pthread_cond_signal(&e->work_cond);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
	struct kerr err;
	json_t *obj;
	uint64_t rev;
};

static void sync_done(void *ctx, const struct store_result *res)
{
	struct sync_wait *w = ctx;
	pthread_mutex_lock(&w->lock);
	w->rc = res->rc;
	if (res->rc < 0)
		kerr_move(&w->err, res->err);
	w->obj = json_incref(res->object);
	w->rev = res->rev;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int store_etcd_update(struct store_etcd *e, const char *key, store_mutate_fn fn, void *ctx,
                      json_t **result, uint64_t *rev, struct kerr *err)
{
	struct sync_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	int r = store_etcd_update_async(e, key, fn, ctx, sync_done, &w, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	if (w.rc < 0) {
		if (err)
			kerr_move(err, &w.err);
		kerr_clear(&w.err);
		return w.rc;
	}
	if (result)
		*result = w.obj;
	else
		json_decref(w.obj);
	if (rev)
		*rev = w.rev;
	return w.rc;
}

/* ---- open / close / stats ----------------------------------------------------------------------
 */

int store_etcd_put_marker(struct store_etcd *e, struct etcd_conn *c, uint64_t *rev,
                          struct kerr *err)
{
	_cleanup_free_ char *fk = full_key(e, ".open");
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	_cleanup_free_ char *val = xasprintf("{\"host\":\"%s\",\"pid\":%ld}", host, (long)getpid());
	_cleanup_json_ json_t *req = json_pack("{s:o, s:o}", "key", etcd_b64(fk, strlen(fk)),
	                                       "value", etcd_b64(val, strlen(val)));
	_cleanup_json_ json_t *resp = NULL;
	int r = etcd_call(&e->gw, c, "/v3/kv/put", req, true, &resp, err);
	if (r < 0)
		return r;
	*rev = etcd_u64(json_object_get(resp, "header"), "revision");
	store_etcd_expect(e, *rev);
	return 0;
}

/* The revision the store starts at must be an event under the prefix (see
 * store_etcd_watch.c). When the newest key under it was written last (etcd's
 * revision is its mod_revision), that is it: a restart keeps the revision.
 * Otherwise (a delete came last, or writes elsewhere in etcd) the open
 * marker is written to make one. */
static int start_revision(struct store_etcd *e, struct etcd_conn *c, uint64_t *rev,
                          struct kerr *err)
{
	_cleanup_free_ char *end = xstrdup(e->prefix);
	end[e->plen - 1]++;
	_cleanup_json_ json_t *req =
	    json_pack("{s:o, s:o, s:i, s:s, s:s, s:b}", "key", etcd_b64(e->prefix, e->plen),
	              "range_end", etcd_b64(end, e->plen), "limit", 1, "sort_order", "DESCEND",
	              "sort_target", "MOD", "keys_only", 1);
	_cleanup_json_ json_t *resp = NULL;
	int r = etcd_call(&e->gw, c, "/v3/kv/range", req, true, &resp, err);
	if (r < 0)
		return r;
	uint64_t head = etcd_u64(json_object_get(resp, "header"), "revision");
	uint64_t newest = etcd_u64(json_array_get(json_object_get(resp, "kvs"), 0), "mod_revision");
	if (newest && newest == head) {
		*rev = head;
		return 0;
	}
	return store_etcd_put_marker(e, c, rev, err);
}

/* etcd's dbSizeInUse into e->used (kept when etcd does not answer). */
static void stats_refresh(struct store_etcd *e)
{
	_cleanup_json_ json_t *req = json_object(), *resp = NULL;
	if (etcd_call(&e->gw, &e->stats_conn, "/v3/maintenance/status", req, true, &resp, NULL) ==
	    0)
		atomic_store(&e->used, etcd_u64(resp, "dbSizeInUse"));
}

static void *stats_main(void *arg)
{
	struct store_etcd *e = arg;
	store_etcd_thread = e;
	pthread_mutex_lock(&e->lock);
	while (!atomic_load(&e->stop)) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += STATS_EVERY_MS / 1000;
		while (!atomic_load(&e->stop) &&
		       pthread_cond_timedwait(&e->stats_cond, &e->lock, &until) == 0)
			;
		if (atomic_load(&e->stop))
			break;
		pthread_mutex_unlock(&e->lock);
		stats_refresh(e);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

static void etcd_free(struct store_etcd *e)
{
	etcd_gw_free(&e->gw);
	etcd_conn_free(&e->stats_conn);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->stats_cond);
	pthread_cond_destroy(&e->work_cond);
	pthread_cond_destroy(&e->idle_cond);
	pthread_cond_destroy(&e->rev_cond);
	free(e->workers);
	free(e->prefix);
	free(e);
}

static int start_threads(struct store_etcd *e, struct kerr *err)
{
	int r = pthread_create(&e->watcher, NULL, store_etcd_watch_main, e);
	if (r)
		return kerr_set(err, r, "store: start etcd watch thread: %s", strerror(r));
	e->watcher_running = true;
	if ((r = pthread_create(&e->stats_thread, NULL, stats_main, e)))
		return kerr_set(err, r, "store: start etcd stats thread: %s", strerror(r));
	e->stats_running = true;
	e->workers = xcalloc(WORKERS, sizeof *e->workers);
	for (; e->nworkers < WORKERS; e->nworkers++) {
		r = pthread_create(&e->workers[e->nworkers], NULL, worker_main, e);
		if (r)
			return kerr_set(err, r, "store: start etcd worker thread: %s", strerror(r));
	}
	return 0;
}

int store_etcd_open(const struct store_options *opt, struct store_etcd **out, struct kerr *err)
{
	struct store_etcd *e = xcalloc(1, sizeof *e);
	const char *prefix =
	    opt->etcd_prefix && *opt->etcd_prefix ? opt->etcd_prefix : DEFAULT_PREFIX;
	e->prefix = xstrdup(prefix);
	e->plen = strlen(prefix);
	e->history = opt->history ? opt->history : DEFAULT_HISTORY;
	e->map_size = opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE;
	e->max_object = opt->max_object && opt->max_object < STORE_MAX_OBJECT ? opt->max_object
	                                                                      : STORE_MAX_OBJECT;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->stats_cond, NULL);
	pthread_cond_init(&e->work_cond, NULL);
	pthread_cond_init(&e->idle_cond, NULL);
	pthread_cond_init(&e->rev_cond, NULL);
	etcd_conn_init(&e->stats_conn);
	int r = etcd_gw_init(&e->gw, opt->etcd_endpoints, err);
	if (r < 0) {
		etcd_free(e);
		return r;
	}
	e->gw.stop = &e->stop;
	if (prefix[e->plen - 1] != '/') {
		r = kerr_set(err, EINVAL, "--etcd-prefix \"%s\" must end with '/'", prefix);
		etcd_free(e);
		return r;
	}
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		rnd = (uint64_t)time_mono_ms() * 1000003u ^ (uint64_t)getpid() << 32;
	snprintf(e->id, sizeof e->id, "%016llx", (unsigned long long)rnd);
	uint64_t rev = 0;
	if ((r = start_revision(e, &e->stats_conn, &rev, err)) < 0) {
		kerr_prefix(err, "store: open etcd at %s", e->gw.list);
		etcd_free(e);
		return r;
	}
	atomic_store(&e->revision, rev);
	if ((r = store_etcd_probe_compacted(e, &e->stats_conn, err)) < 0) {
		etcd_free(e);
		return r;
	}
	stats_refresh(e);
	if ((r = start_threads(e, err)) < 0) {
		store_etcd_close(e);
		return r;
	}
	*out = e;
	return 0;
}

void store_etcd_close(struct store_etcd *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->closing = true;
	pthread_cond_broadcast(&e->work_cond);
	pthread_mutex_unlock(&e->lock);
	for (unsigned i = 0; i < e->nworkers; i++)
		pthread_join(e->workers[i], NULL); /* they drain the queue */
	/* Committed writes wait for the watch to deliver them; then it stops. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CLOSE_WAIT_S;
	pthread_mutex_lock(&e->lock);
	while (e->pend && e->watcher_running &&
	       pthread_cond_timedwait(&e->rev_cond, &e->lock, &until) == 0)
		;
	pthread_mutex_unlock(&e->lock);
	pthread_mutex_lock(&e->lock);
	atomic_store(&e->stop, true);
	pthread_cond_broadcast(&e->stats_cond);
	pthread_mutex_unlock(&e->lock);
	if (e->watcher_running)
		pthread_join(e->watcher, NULL);
	if (e->stats_running)
		pthread_join(e->stats_thread, NULL);
	store_etcd_complete_through(e, UINT64_MAX); /* whatever is left (the watch failed) */
	pthread_mutex_lock(&e->lock);
	while (e->inflight > 0)
		pthread_cond_wait(&e->idle_cond, &e->lock);
	pthread_mutex_unlock(&e->lock);
	etcd_free(e);
}

void store_etcd_set_commit_hook(struct store_etcd *e, store_commit_hook hook, void *ctx)
{
	pthread_mutex_lock(&e->lock);
	e->hook = hook;
	e->hook_ctx = ctx;
	pthread_mutex_unlock(&e->lock);
}

void store_etcd_get_stats(struct store_etcd *e, struct store_stats *st)
{
	st->map_used = atomic_load(&e->used); /* the stats thread's: never waits */
	st->map_size = e->map_size;
	st->revision = atomic_load(&e->revision);
	st->compacted = atomic_load(&e->compacted);
	st->commits = atomic_load(&e->commits);
	st->writes = atomic_load(&e->writes);
	pthread_mutex_lock(&e->lock);
	st->queued = e->queued;
	pthread_mutex_unlock(&e->lock);
}
