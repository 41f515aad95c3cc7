/*
 * server/write — optimistic concurrency around store_update_async (see
 * write.h).
 *
 * The writer-thread callback only compares the current resourceVersion
 * with the one the compute step saw, and hands over the precomputed
 * object. That keeps group commit fast however heavy the verb is (apply of
 * a large Deployment), and is still atomic: a change that slipped in makes
 * the callback refuse, and the request thread recomputes on the new state.
 */
#include "server/write.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "server/http.h"
#include "server/objects.h"
#include "store/store.h"

/* Each lost race means another write to the same key committed, so the
 * bound is only reached under heavy contention on one object. */
#define MAX_ATTEMPTS 64

static int cas_mutate(void *ctx, json_t *current, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)rev;
	struct srv_write *w = ctx;
	bool same = w->expect_absent ? current == NULL
	                             : (current != NULL && api_obj_rv(current) == w->expect_rv);
	if (!same) {
		w->raced = true;
		return kerr_set(err, ESTALE, SRV_CONFLICT_MSG);
	}
	if (w->op == STORE_WRITE)
		*next = json_incref(w->next);
	return w->op;
}

/* The read and compute of one attempt. Returns the op; when it is final
 * without a store write (an error, NOOP, a dry run) *final is set and
 * w->result holds the answer; else w->next/expect_* are set for cas_mutate. */
static int prepare(struct srv_write *w, bool *final, struct kerr *err)
{
	json_t *live = NULL;
	_cleanup_kerr_ struct kerr gerr = KERR_INIT;
	*final = true;
	int r = store_get(w->srv->store, w->key, &live, &gerr);
	if (r < 0 && r != -ENOENT) {
		kerr_move(err, &gerr);
		return r;
	}
	_cleanup_json_ json_t *live_ref = live;
	w->existed = live != NULL;
	json_t *next = NULL;
	int op = w->compute(w, live, &next, err);
	_cleanup_json_ json_t *next_ref = next;
	if (op < 0)
		return op;
	if (op == STORE_NOOP || w->dry_run) {
		json_decref(w->result);
		w->result = op == STORE_WRITE ? json_incref(next) : json_incref(live);
		return op;
	}
	*final = false;
	w->expect_absent = live == NULL;
	w->expect_rv = live ? api_obj_rv(live) : 0;
	w->op = op;
	w->raced = false;
	json_decref(w->next);
	w->next = TAKE_PTR(next_ref);
	return op;
}

/* ---- submitted writes ---------------------------------------------------------------- */

struct srv_write *srv_write_new(struct server *srv, const struct api_kind *kind, const char *key)
{
	struct srv_write *w = xcalloc(1, sizeof *w);
	w->srv = srv;
	w->kind = kind;
	w->key = w->key_owned = xstrdup(key);
	return w;
}

/* What a write holds for its verb: memory, JSON, strings. */
struct srv_write_held {
	struct srv_write_held *next;
	json_t *json;
	max_align_t data[];
};

static struct srv_write_held *held_new(struct srv_write *w, size_t n)
{
	struct srv_write_held *h = xcalloc(1, sizeof *h + n);
	h->next = w->held;
	w->held = h;
	return h;
}

void *srv_write_alloc(struct srv_write *w, size_t n)
{
	return held_new(w, n)->data;
}

json_t *srv_write_hold(struct srv_write *w, json_t *j)
{
	if (j)
		held_new(w, 0)->json = j;
	return j;
}

const char *srv_write_strdup(struct srv_write *w, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	return memcpy(srv_write_alloc(w, n), s, n);
}

static void write_clear(struct srv_write *w)
{
	json_decref(w->result);
	w->result = NULL;
	free(w->result_text);
	w->result_text = NULL;
	w->result_len = 0;
}

void srv_write_free(struct srv_write *w)
{
	if (!w)
		return;
	write_clear(w);
	for (struct srv_write_held *h = w->held, *n; h; h = n) {
		n = h->next;
		json_decref(h->json);
		free(h);
	}
	json_decref(w->next);
	kerr_clear(&w->err);
	free(w->key_owned);
	free(w);
}

unsigned srv_write_pending(struct server *srv)
{
	return atomic_load(&srv->writes_pending);
}

/* The store's sync thread, once the commit holding the write is durable
 * (or the write failed): keep the outcome and let the request go on. */
static void write_done(void *ctx, const struct store_result *res)
{
	struct srv_req *r = ctx;
	struct srv_write *w = r->write;
	w->rc = res->rc;
	if (res->rc < 0)
		kerr_move(&w->err, res->err);
	if (res->rc == -E2BIG && res->size > w->srv->opts.max_object) { /* --max-object's words */
		kerr_clear(&w->err);
		srv_obj_size_error(res->size, w->srv->opts.max_object, &w->err);
	}
	json_decref(w->result);
	w->result = json_incref(res->object);
	free(w->result_text);
	w->result_text = res->text ? xstrndup(res->text, res->text_len) : NULL;
	w->result_len = res->text ? res->text_len : 0;
	MHD_resume_connection(r->conn); /* MHD's lock orders this before the access handler */
}

static enum MHD_Result answer(struct srv_req *r, int rc, struct kerr *err)
{
	struct srv_write *w = TAKE_PTR(r->write);
	enum MHD_Result ret = w->reply(r, rc, err, w);
	srv_write_free(w);
	return ret;
}

/* Waits for the write on this HTTP thread (store_update): once the
 * server is stopping, since MHD must not stop with suspended connections. */
static int write_here(struct srv_write *w, struct kerr *err)
{
	json_t *result = NULL;
	int rc = store_update(w->srv->store, w->key, cas_mutate, w, &result, NULL, err);
	if (rc == -E2BIG) { /* the store measured it; --max-object's words need the size */
		_cleanup_kerr_ struct kerr big = KERR_INIT;
		if (srv_obj_check_size(w->next, w->srv->opts.max_object, &big) < 0) {
			kerr_clear(err);
			kerr_move(err, &big);
		}
	}
	json_decref(TAKE_PTR(w->next));
	json_decref(w->result);
	w->result = result;
	return rc;
}

/* Attempts of r->write until one answers, or suspends until write_done. */
static enum MHD_Result step(struct srv_req *r)
{
	struct srv_write *w = r->write;
	struct server *srv = w->srv;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	for (;;) {
		bool final;
		int op = prepare(w, &final, &err);
		if (final)
			return answer(r, op, &err);
		/* counted before `stopping` is read, and server_close sets
		 * `stopping` before it reads the count: either it waits for
		 * this write or this write does not suspend */
		atomic_fetch_add(&srv->writes_pending, 1);
		if (!atomic_load(&srv->stopping))
			break;
		atomic_fetch_sub(&srv->writes_pending, 1);
		int rc = write_here(w, &err);
		if (rc != -ESTALE || !w->raced || ++w->attempts >= MAX_ATTEMPTS)
			return answer(r, rc, &err);
		kerr_clear(&err);
	}
	/* suspended before the write is queued: write_done may resume it at
	 * once, and a resume must follow its suspend */
	MHD_suspend_connection(r->conn);
	if (store_update_async(srv->store, w->key, cas_mutate, w, write_done, r, &err) < 0) {
		w->rc = -err.code;
		kerr_move(&w->err, &err);
		MHD_resume_connection(r->conn);
	}
	return MHD_YES;
}

enum MHD_Result srv_write_submit(struct srv_req *r, struct srv_write *w)
{
	srv_write_free(r->write); /* there is none: one write per request */
	r->write = w;
	return step(r);
}

void srv_write_abandon(struct srv_req *r)
{
	if (!r->write)
		return;
	/* set at the end of a request only when it was suspended (counted) and
	 * MHD ended the request without calling the handler again */
	atomic_fetch_sub(&r->srv->writes_pending, 1);
	srv_write_free(TAKE_PTR(r->write));
}

enum MHD_Result srv_write_resume(struct srv_req *r)
{
	struct srv_write *w = r->write;
	atomic_fetch_sub(&r->srv->writes_pending, 1);
	json_decref(TAKE_PTR(w->next));
	if (w->rc == -ESTALE && w->raced && ++w->attempts < MAX_ATTEMPTS) {
		kerr_clear(&w->err);
		write_clear(w);
		return step(r);
	}
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	kerr_move(&err, &w->err);
	return answer(r, w->rc, &err);
}
