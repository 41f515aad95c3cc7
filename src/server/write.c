/*
 * server/write — optimistic concurrency around store_update (see write.h).
 *
 * The writer-thread callback only compares the current resourceVersion
 * with the one the compute step saw, and hands over the precomputed
 * object. That keeps group commit fast however heavy the verb is (apply of
 * a large Deployment), and is still atomic: a change that slipped in makes
 * the callback refuse, and the request thread recomputes on the new state.
 */
#include "server/write.h"

#include <errno.h>
#include <stdint.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "server/http.h"
#include "server/objects.h"
#include "store/store.h"

/* Each lost race means another write to the same key committed, so the
 * bound is only reached under heavy contention on one object. */
#define MAX_ATTEMPTS 64

struct cas {
	bool expect_absent;
	uint64_t expect_rv;
	int op;
	json_t *next; /* borrowed */
	bool raced;
};

static int cas_mutate(void *ctx, json_t *current, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)rev;
	struct cas *c = ctx;
	bool same = c->expect_absent ? current == NULL
	                             : (current != NULL && api_obj_rv(current) == c->expect_rv);
	if (!same) {
		c->raced = true;
		return kerr_set(err, ESTALE, SRV_CONFLICT_MSG);
	}
	if (c->op == STORE_WRITE)
		*next = json_incref(c->next);
	return c->op;
}

static int attempt(struct srv_write *w, bool *raced, struct kerr *err)
{
	json_t *live = NULL;
	_cleanup_kerr_ struct kerr gerr = KERR_INIT;
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
	struct cas c = {.expect_absent = live == NULL,
	                .expect_rv = live ? api_obj_rv(live) : 0,
	                .op = op,
	                .next = next};
	json_t *result = NULL;
	r = store_update(w->srv->store, w->key, cas_mutate, &c, &result, NULL, err);
	*raced = c.raced;
	if (r < 0)
		return r;
	json_decref(w->result);
	w->result = result;
	return r;
}

int srv_write_run(struct srv_write *w, struct kerr *err)
{
	for (int i = 0;; i++) {
		bool raced = false;
		int r = attempt(w, &raced, err);
		if (r != -ESTALE || !raced || i + 1 == MAX_ATTEMPTS)
			return r;
		kerr_clear(err);
	}
}

void srv_write_clear(struct srv_write *w)
{
	json_decref(w->result);
	w->result = NULL;
}
