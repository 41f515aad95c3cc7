/*
 * server/watch — watch streams: the hub, the per-watcher queues, and the
 * chunked, suspendable MHD responses that carry them.
 *
 * Events. The commit hook runs on the store's writer thread after each
 * batch is durable, in revision order; it only appends the change (a
 * reference to the stored object) to a hand-over list and signals the
 * fan-out thread, so the watchers never pace the commits. The fan-out
 * thread takes the whole list at once: it serialises each change once
 * (outside the hub lock), then, under the lock, walks only the watchers of
 * that kind, matches namespace and selectors, and appends a reference to
 * the shared event line to each matching watcher's queue. A watcher is
 * woken (MHD_resume_connection, after the lock is released) once per
 * round however many events it got, and its reader then copies as many
 * queued lines as fit into one chunk: under load the rounds grow, and one
 * send carries many events. Nothing blocks on a watcher: a queue over its
 * byte bound is dropped and its watcher marked too slow (it gets an ERROR
 * 410 and its stream ends; the client relists).
 *
 * No gap, no duplicate. A new watcher is registered first, at the hub's
 * last fanned-out revision H (head_rev, under the hub lock): from then on
 * the fan-out queues every matching change after H, and every change up
 * to H is in the store's log. Then, for resourceVersion=N < H, the
 * changes (N, H] are replayed from the store's change log (store_changes;
 * 410 when N is compacted); for resourceVersion=0 the current objects are
 * listed at a snapshot revision R >= H and sent as ADDED, and queued
 * changes <= R are dropped because the snapshot already reflects them. The
 * replay/list events are sent before the queue, so the client sees each
 * revision once, in order.
 *
 * Idle watchers hold no thread: when the reader has nothing to send it
 * suspends its connection and returns 0; the fan-out thread, or the
 * ticker thread (bookmarks every --bookmark-interval on idle streams,
 * timeoutSeconds, shutdown), resumes it. MHD cancels a suspend that a
 * resume overtook, so a wake-up between "nothing to send" and the suspend
 * is not lost.
 *
 * Limits: --max-watchers in all and --max-watchers-per-client per client,
 * a client being the token's user name (everything on loopback shares one
 * address, and one user's tokens are one user). Both are 429s. The
 * server's in-process controllers (SRV_AUTH_IN_PROCESS_USER) count in the
 * total but have no per-client quota: a human holding their quota's worth
 * of watches must not starve the reconcilers.
 *
 * Selectors filter on the new object only: an object that stops matching
 * a label or field selector is not sent as DELETED (a client that needs
 * that relists or watches without the selector).
 */
#include "server/watch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/kind.h"
#include "api/meta.h"
#include "api/selector.h"
#include "api/status.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "server/auth.h"
#include "server/handlers.h"
#include "server/http.h"
#include "store/store.h"

#define DEFAULT_BACKLOG   ((size_t)16 << 20)
#define MAX_INITIAL_BYTES ((size_t)256 << 20)
#define TICK_MS           100
#define BLOCK_SIZE        (64 * 1024)
/* fan-out pacing (see fanout_main) */
#define COALESCE_NS_PER_WAKE ((int64_t)10000)
#define COALESCE_MAX_NS      ((int64_t)20000000)

struct hub_event {
	atomic_size_t refs;
	uint64_t rev;
	bool final; /* the stream ends after this one */
	size_t len;
	char data[];
};

struct evvec {
	struct hub_event **v;
	size_t n, cap;
};

struct watcher {
	struct srv_hub *hub;
	struct watcher *prev, *next;
	size_t kind_idx;
	const struct api_kind *kind;
	struct MHD_Connection *conn;
	char *ns;
	char *user; /* owned; the client, for --max-watchers-per-client */
	struct api_selector *labels;
	struct api_fieldsel *fields;
	struct evvec init; /* replayed or listed events, sent first */
	size_t init_pos;
	struct hub_event **q; /* ring of live events */
	size_t q_head, q_len, q_cap, q_bytes;
	uint64_t skip_through; /* live events with rev <= this are dropped */
	struct hub_event *cur; /* being sent */
	size_t cur_off;
	int64_t deadline_ms, next_bookmark_ms;
	bool registered, suspended, too_slow, expired, bookmark_due, finished;
	bool revoked; /* its user's token was revoked: send the ERROR, end */
	bool resync;  /* the store lost changes (STORE_RESYNC): 410, end */
};

/* Open watchers of one client (token user name). */
struct client_count {
	struct client_count *next;
	size_t n;
	char name[];
};

/* A change handed over by the commit hook, waiting for the fan-out
 * thread. */
struct pending {
	struct pending *next;
	enum store_event_type type;
	uint64_t rev;
	json_t *object; /* a reference to the stored (immutable) object */
	char key[];
};

struct srv_hub {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* the hook -> fan-out hand-over; its own lock, so the writer thread
	 * never waits for the hub lock the stream readers hold */
	pthread_mutex_t pend_mu;
	pthread_cond_t pend_cond;
	struct pending *pend_head, *pend_tail;
	bool fan_quit;
	pthread_t fanout;
	struct store *store;
	struct srv_hub_opts opts;
	struct watcher **lists; /* per kind index */
	size_t n_kinds, n_watchers;
	struct client_count *clients; /* those with a watcher open; a short list */
	uint64_t head_rev;
	bool stopping, quit;
	pthread_t ticker;
};

struct connvec {
	struct MHD_Connection **v;
	size_t n, cap;
};

static void connvec_push(struct connvec *c, struct MHD_Connection *conn)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->v = xrealloc(c->v, c->cap * sizeof *c->v);
	}
	c->v[c->n++] = conn;
}

static void connvec_resume(struct connvec *c)
{
	for (size_t i = 0; i < c->n; i++)
		MHD_resume_connection(c->v[i]);
	free(c->v);
	*c = (struct connvec){0};
}

/* ---- events ---- */

static struct hub_event *event_new(const char *text, size_t len, uint64_t rev, bool final)
{
	struct hub_event *e = xmalloc(sizeof *e + len);
	atomic_init(&e->refs, 1);
	e->rev = rev;
	e->final = final;
	e->len = len;
	memcpy(e->data, text, len);
	return e;
}

static struct hub_event *event_for(const char *type, json_t *obj, uint64_t rev, bool final)
{
	_cleanup_free_ char *o = json_dumps(obj, JSON_COMPACT);
	_cleanup_free_ char *line =
	    xasprintf("{\"type\":\"%s\",\"object\":%s}\n", type, o ? o : "{}");
	return event_new(line, strlen(line), rev, final);
}

static struct hub_event *event_ref(struct hub_event *e)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	return e;
}

static void event_unref(struct hub_event *e)
{
	if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		free(e);
}

static const char *type_name(enum store_event_type t)
{
	return t == STORE_ADDED ? "ADDED" : t == STORE_MODIFIED ? "MODIFIED" : "DELETED";
}

static void evvec_push(struct evvec *v, struct hub_event *e)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 64;
		v->v = xrealloc(v->v, v->cap * sizeof *v->v);
	}
	v->v[v->n++] = e;
}

/* ---- per-watcher queue (hub lock held) ---- */

static void queue_push(struct watcher *w, struct hub_event *e)
{
	if (w->q_len == w->q_cap) {
		size_t cap = w->q_cap ? 2 * w->q_cap : 16;
		struct hub_event **nq = xmalloc(cap * sizeof *nq);
		for (size_t i = 0; i < w->q_len; i++)
			nq[i] = w->q[(w->q_head + i) % w->q_cap];
		free(w->q);
		w->q = nq;
		w->q_cap = cap;
		w->q_head = 0;
	}
	w->q[(w->q_head + w->q_len) % w->q_cap] = event_ref(e);
	w->q_len++;
	w->q_bytes += e->len;
}

static struct hub_event *queue_pop(struct watcher *w)
{
	if (w->q_len == 0)
		return NULL;
	struct hub_event *e = w->q[w->q_head];
	w->q_head = (w->q_head + 1) % w->q_cap;
	w->q_len--;
	w->q_bytes -= e->len;
	return e;
}

static void queue_drop_through(struct watcher *w, uint64_t rev)
{
	while (w->q_len > 0 && w->q[w->q_head]->rev <= rev)
		event_unref(queue_pop(w));
}

static void queue_clear(struct watcher *w)
{
	while (w->q_len > 0)
		event_unref(queue_pop(w));
}

/* ---- matching ---- */

static bool watcher_wants(const struct watcher *w, const char *ns, json_t *obj)
{
	if (w->ns && !streq(w->ns, ns))
		return false;
	if (w->labels && !api_selector_match(w->labels, api_obj_labels(obj)))
		return false;
	return !w->fields || api_fieldsel_match(w->fields, obj);
}

/* "tasks/default/web" -> kind index of "tasks", ns "default". -1 if the
 * plural is not a kind. */
static long split_key(const char *key, char *ns, size_t nslen)
{
	const char *s1 = strchr(key, '/');
	if (!s1)
		return -1;
	const char *s2 = strchr(s1 + 1, '/');
	size_t pl = (size_t)(s1 - key);
	size_t nl = s2 ? (size_t)(s2 - s1 - 1) : 0;
	if (nl >= nslen)
		return -1;
	memcpy(ns, s1 + 1, nl);
	ns[nl] = '\0';
	for (size_t i = 0; i < api_kind_count(); i++) {
		const char *p = api_kind_at(i)->plural;
		if (strlen(p) == pl && strncmp(p, key, pl) == 0)
			return (long)i;
	}
	return -1;
}

/* ---- the hook ---- */

static void deliver(struct srv_hub *h, struct watcher *w, struct hub_event *e, struct connvec *wake)
{
	if (w->q_bytes + e->len > h->opts.max_backlog_bytes) {
		queue_clear(w);
		w->too_slow = true;
	} else {
		queue_push(w, e);
	}
	if (w->suspended) {
		w->suspended = false;
		connvec_push(wake, w->conn);
	}
}

/* The hook's side: O(1) on the store's writer thread, so a commit is never
 * paced by the watchers. The change keeps a reference to the stored
 * object (immutable once hooked) and a copy of its key. */
void srv_hub_commit_hook(void *ctx, const struct store_event *ev)
{
	struct srv_hub *h = ctx;
	size_t klen = strlen(ev->key);
	struct pending *p = xmalloc(sizeof *p + klen + 1);
	p->next = NULL;
	p->type = ev->type;
	p->rev = ev->rev;
	p->object = json_incref(ev->object);
	memcpy(p->key, ev->key, klen + 1);
	pthread_mutex_lock(&h->pend_mu);
	bool was_empty = !h->pend_head;
	if (h->pend_tail)
		h->pend_tail->next = p;
	else
		h->pend_head = p;
	h->pend_tail = p;
	pthread_mutex_unlock(&h->pend_mu);
	if (was_empty)
		pthread_cond_signal(&h->pend_cond);
}

static void pending_free(struct pending *p)
{
	while (p) {
		struct pending *n = p->next;
		json_decref(p->object);
		free(p);
		p = n;
	}
}

/* One change of a batch, matched and serialised by the fan-out thread. */
struct fan_ev {
	struct pending *p;
	long idx;
	char ns[256];
	struct hub_event *e; /* NULL until some watcher wants it */
};

/* Queues each change of the batch fe[0..n) (in revision order) on every
 * watcher that wants it and collects the watchers to wake: each is woken
 * once per batch, however many of its events the batch holds, so one
 * wake-up (and one send) carries them all. Hub lock held. */
static void fan_out_locked(struct srv_hub *h, struct fan_ev *fe, size_t n, struct connvec *wake)
{
	for (size_t i = 0; i < n; i++) {
		struct pending *p = fe[i].p;
		if (p->rev > h->head_rev)
			h->head_rev = p->rev;
		if (p->type == STORE_RESYNC) { /* every live watch missed changes: 410 */
			for (size_t k = 0; k < h->n_kinds; k++)
				for (struct watcher *w = h->lists[k]; w; w = w->next) {
					if (w->finished || w->resync)
						continue;
					w->resync = true;
					queue_clear(w);
					if (w->suspended) {
						w->suspended = false;
						connvec_push(wake, w->conn);
					}
				}
			continue;
		}
		for (struct watcher *w = fe[i].idx >= 0 ? h->lists[fe[i].idx] : NULL; w;
		     w = w->next) {
			if (w->finished || w->too_slow || w->revoked || w->resync ||
			    p->rev <= w->skip_through || !watcher_wants(w, fe[i].ns, p->object))
				continue;
			if (!fe[i].e) /* a watcher that came after the serialisation pass */
				fe[i].e = event_for(type_name(p->type), p->object, p->rev, false);
			deliver(h, w, fe[i].e, wake);
		}
	}
}

/* Fans one batch of hooked changes out. Each change is serialised once,
 * outside the hub lock (so the stream readers are not held up by JSON
 * encoding), if its kind has watchers at all. */
static size_t fan_out(struct srv_hub *h, struct pending *batch)
{
	size_t n = 0;
	for (struct pending *p = batch; p; p = p->next)
		n++;
	struct fan_ev *fe = xcalloc(n, sizeof *fe);
	size_t i = 0;
	for (struct pending *p = batch; p; p = p->next, i++) {
		fe[i].p = p;
		fe[i].idx = split_key(p->key, fe[i].ns, sizeof fe[i].ns);
	}
	bool *wanted = xcalloc(h->n_kinds, sizeof *wanted);
	pthread_mutex_lock(&h->mu);
	for (size_t k = 0; k < h->n_kinds; k++)
		wanted[k] = h->lists[k] != NULL;
	pthread_mutex_unlock(&h->mu);
	for (i = 0; i < n; i++)
		if (fe[i].idx >= 0 && wanted[fe[i].idx])
			fe[i].e = event_for(type_name(fe[i].p->type), fe[i].p->object, fe[i].p->rev,
			                    false);
	/* the lock is taken per change, not for the whole batch: the stream
	 * readers (and a new watcher's registration) get in between, and a
	 * preempted fan-out thread holds them up for one change's worth at
	 * most; the wake-ups still wait for the end of the batch */
	struct connvec wake = {0};
	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&h->mu);
		fan_out_locked(h, fe + i, 1, &wake);
		pthread_mutex_unlock(&h->mu);
	}
	size_t woken = wake.n;
	connvec_resume(&wake);
	for (i = 0; i < n; i++)
		event_unref(fe[i].e);
	free(wanted);
	free(fe);
	pending_free(batch);
	return woken;
}

/* Waits until the next round is due (pend_mu held): COALESCE_NS_PER_WAKE
 * per watcher the last round woke, at most COALESCE_MAX_NS, from its start.
 * A quiet stream's first change goes out at once. */
static void fanout_pace(struct srv_hub *h, int64_t last_start_ns, size_t last_woken)
{
	int64_t pause = (int64_t)last_woken * COALESCE_NS_PER_WAKE;
	int64_t due = last_start_ns + (pause < COALESCE_MAX_NS ? pause : COALESCE_MAX_NS);
	while (!h->fan_quit && time_mono_ns() < due) {
		struct timespec ts = {due / 1000000000, due % 1000000000};
		pthread_cond_timedwait(&h->pend_cond, &h->pend_mu, &ts);
	}
}

/* The fan-out thread: takes everything hooked since its last round and
 * fans it out in one go. A round costs about one send per woken watcher
 * (kernel TCP on both ends, MHD's resume and suspend), whatever the number
 * of events it carries, so rounds are paced: the next starts no sooner
 * than COALESCE_NS_PER_WAKE per watcher the last one woke after it. That
 * bounds the CPU spent on wake-ups (~1,000 watchers: a round at most every
 * 10 ms, however fast the writes come) and adds at most that to a
 * change's delivery; a change after a quiet spell goes out at once. */
static void *fanout_main(void *arg)
{
	struct srv_hub *h = arg;
	int64_t last_start = 0;
	size_t last_woken = 0;
	pthread_mutex_lock(&h->pend_mu);
	for (;;) {
		while (!h->pend_head && !h->fan_quit)
			pthread_cond_wait(&h->pend_cond, &h->pend_mu);
		fanout_pace(h, last_start, last_woken);
		if (!h->pend_head)
			break; /* quit, and nothing left */
		struct pending *batch = h->pend_head;
		h->pend_head = h->pend_tail = NULL;
		pthread_mutex_unlock(&h->pend_mu);
		last_start = time_mono_ns();
		last_woken = fan_out(h, batch);
		pthread_mutex_lock(&h->pend_mu);
	}
	pthread_mutex_unlock(&h->pend_mu);
	return NULL;
}

/* ---- the stream reader (MHD thread) ---- */

static struct hub_event *next_event(struct watcher *w)
{
	if (w->init_pos < w->init.n) {
		struct hub_event *e = w->init.v[w->init_pos];
		w->init.v[w->init_pos++] = NULL;
		return e;
	}
	return queue_pop(w);
}

/* Copies as much as fits; stops after a final event. Hub lock held. */
static size_t fill(struct watcher *w, char *buf, size_t max)
{
	size_t n = 0;
	while (n < max && !w->finished) {
		if (!w->cur) {
			if (w->expired || w->revoked)
				break; /* finish the line in flight, start no new one */
			w->cur = next_event(w);
			w->cur_off = 0;
			if (!w->cur)
				break;
		}
		size_t take = w->cur->len - w->cur_off;
		if (take > max - n)
			take = max - n;
		memcpy(buf + n, w->cur->data + w->cur_off, take);
		n += take;
		w->cur_off += take;
		if (w->cur_off == w->cur->len) {
			w->finished = w->cur->final;
			event_unref(w->cur);
			w->cur = NULL;
		}
	}
	return n;
}

static struct hub_event *error_event(int code, const char *reason, const char *msg)
{
	_cleanup_json_ json_t *st = api_status_new(code, reason, msg, NULL, NULL, NULL);
	return event_for("ERROR", st, 0, true);
}

static struct hub_event *bookmark_event(struct watcher *w)
{
	uint64_t rev = w->hub->head_rev > w->skip_through ? w->hub->head_rev : w->skip_through;
	char rv[24];
	snprintf(rv, sizeof rv, "%" PRIu64, rev);
	_cleanup_json_ json_t *o =
	    json_pack("{s:s, s:s, s:{s:s}}", "kind", w->kind->kind, "apiVersion", API_GROUP_VERSION,
	              "metadata", "resourceVersion", rv);
	return event_for("BOOKMARK", o, rev, false);
}

/* Nothing queued: decide what to say, if anything. Hub lock held. */
static size_t idle_fill(struct watcher *w, char *buf, size_t max)
{
	if (w->revoked) {
		w->cur = error_event(401, "Unauthorized", "the token of this watch was revoked");
		w->cur_off = 0;
		return fill(w, buf, max);
	}
	if (w->too_slow) {
		w->cur = error_event(410, "Gone",
		                     "watch too slow: the client did not keep up with the "
		                     "changes; relist and watch again");
		w->cur_off = 0;
		w->expired = false;
		return fill(w, buf, max);
	}
	if (w->resync) {
		w->cur = error_event(410, "Gone",
		                     "too old resource version: the store lost changes (etcd "
		                     "compacted them before they were delivered); relist and "
		                     "watch again");
		w->cur_off = 0;
		w->expired = false;
		return fill(w, buf, max);
	}
	if (w->expired || w->hub->stopping) {
		w->finished = true;
		return 0;
	}
	if (w->bookmark_due || time_mono_ms() >= w->next_bookmark_ms) {
		w->bookmark_due = false;
		w->cur = bookmark_event(w);
		w->cur_off = 0;
		return fill(w, buf, max);
	}
	return 0;
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct watcher *w = cls;
	struct srv_hub *h = w->hub;
	pthread_mutex_lock(&h->mu);
	int64_t now = time_mono_ms();
	if (w->deadline_ms && now >= w->deadline_ms)
		w->expired = true;
	size_t n = fill(w, buf, max);
	if (n == 0 && !w->finished)
		n = idle_fill(w, buf, max);
	if (n > 0) {
		w->next_bookmark_ms = now + h->opts.bookmark_ms;
		pthread_mutex_unlock(&h->mu);
		return (ssize_t)n;
	}
	if (w->finished) {
		pthread_mutex_unlock(&h->mu);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	w->suspended = true;
	pthread_mutex_unlock(&h->mu);
	MHD_suspend_connection(w->conn);
	return 0;
}

/* ---- watcher lifetime ---- */

/* The count of user's open watchers, created at 0 (hub lock held). */
static struct client_count *client_get(struct srv_hub *h, const char *user)
{
	for (struct client_count *c = h->clients; c; c = c->next)
		if (streq(c->name, user))
			return c;
	size_t len = strlen(user);
	struct client_count *c = xcalloc(1, sizeof *c + len + 1);
	memcpy(c->name, user, len + 1);
	c->next = h->clients;
	h->clients = c;
	return c;
}

/* One watcher of user fewer; the entry goes at 0 (hub lock held). */
static void client_put(struct srv_hub *h, const char *user)
{
	for (struct client_count **pc = &h->clients; *pc; pc = &(*pc)->next) {
		struct client_count *c = *pc;
		if (!streq(c->name, user))
			continue;
		if (--c->n == 0) {
			*pc = c->next;
			free(c);
		}
		return;
	}
}

static void watcher_unlink(struct watcher *w)
{
	struct srv_hub *h = w->hub;
	pthread_mutex_lock(&h->mu);
	if (w->registered) {
		if (w->prev)
			w->prev->next = w->next;
		else
			h->lists[w->kind_idx] = w->next;
		if (w->next)
			w->next->prev = w->prev;
		h->n_watchers--;
		client_put(h, w->user);
		w->registered = false;
	}
	queue_clear(w);
	pthread_mutex_unlock(&h->mu);
}

static void watch_free(void *cls)
{
	struct watcher *w = cls;
	watcher_unlink(w);
	for (size_t i = w->init_pos; i < w->init.n; i++)
		event_unref(w->init.v[i]);
	free(w->init.v);
	event_unref(w->cur);
	free(w->q);
	free(w->ns);
	free(w->user);
	api_selector_free(w->labels);
	api_fieldsel_free(w->fields);
	free(w);
}

static long kind_index(const struct api_kind *k)
{
	for (size_t i = 0; i < api_kind_count(); i++)
		if (api_kind_at(i) == k)
			return (long)i;
	return -1;
}

/* Registers w; returns the hub's head revision, or -EBUSY (*limit says
 * which) / -ESHUTDOWN. */
static int64_t watcher_register(struct watcher *w, enum srv_limit *limit, struct kerr *err)
{
	struct srv_hub *h = w->hub;
	pthread_mutex_lock(&h->mu);
	if (h->stopping) {
		pthread_mutex_unlock(&h->mu);
		return kerr_set(err, ESHUTDOWN, "the server is shutting down");
	}
	if (h->n_watchers >= h->opts.max_watchers) {
		size_t n = h->n_watchers;
		pthread_mutex_unlock(&h->mu);
		*limit = SRV_LIMIT_WATCHES;
		return kerr_set(err, EBUSY,
		                "too many watchers (%zu open, --max-watchers %zu); retry later", n,
		                h->opts.max_watchers);
	}
	struct client_count *cc = client_get(h, w->user);
	/* the server's own controllers are not a client to hold back (their
	 * watches still count in the total) */
	if (h->opts.max_per_client && cc->n >= h->opts.max_per_client &&
	    !streq(w->user, SRV_AUTH_IN_PROCESS_USER)) {
		size_t n = cc->n; /* >= 1: the entry stays */
		pthread_mutex_unlock(&h->mu);
		*limit = SRV_LIMIT_WATCHES_PER_CLIENT;
		return kerr_set(err, EBUSY,
		                "too many watchers for client \"%s\" (%zu open, "
		                "--max-watchers-per-client %zu); retry later",
		                w->user, n, h->opts.max_per_client);
	}
	cc->n++;
	w->next = h->lists[w->kind_idx];
	if (w->next)
		w->next->prev = w;
	h->lists[w->kind_idx] = w;
	h->n_watchers++;
	w->registered = true;
	w->skip_through = h->head_rev;
	int64_t head = (int64_t)h->head_rev;
	pthread_mutex_unlock(&h->mu);
	return head;
}

/* Live events <= rev are already covered by what was replayed or listed. */
static void watcher_skip_through(struct watcher *w, uint64_t rev)
{
	pthread_mutex_lock(&w->hub->mu);
	if (rev > w->skip_through)
		w->skip_through = rev;
	queue_drop_through(w, w->skip_through);
	pthread_mutex_unlock(&w->hub->mu);
}

struct replay {
	struct watcher *w;
	uint64_t through;
	size_t bytes;
};

static int replay_one(void *ctx, const struct store_event *ev)
{
	struct replay *rp = ctx;
	if (ev->rev > rp->through)
		return 1; /* the hook queues the rest */
	char ns[256];
	long idx = split_key(ev->key, ns, sizeof ns);
	if (idx != (long)rp->w->kind_idx || !watcher_wants(rp->w, ns, ev->object))
		return 0;
	struct hub_event *e = event_for(type_name(ev->type), ev->object, ev->rev, false);
	rp->bytes += e->len;
	evvec_push(&rp->w->init, e);
	return rp->bytes > MAX_INITIAL_BYTES ? -E2BIG : 0;
}

static int watcher_replay(struct watcher *w, uint64_t from, uint64_t head, struct kerr *err)
{
	struct replay rp = {.w = w, .through = head};
	int rc = store_changes(w->hub->store, from, replay_one, &rp, err);
	if (rc == -E2BIG)
		return kerr_set(
		    err, ERANGE,
		    "too many changes since resourceVersion %" PRIu64 " to replay; relist", from);
	if (rc == -ERANGE)
		return kerr_set(err, ERANGE,
		                "too old resource version: %" PRIu64 " (compacted through %" PRIu64
		                ")",
		                from, store_compacted(w->hub->store));
	return rc < 0 ? rc : 0;
}

static bool list_wants(void *ctx, json_t *obj)
{
	struct watcher *w = ctx;
	return (!w->labels || api_selector_match(w->labels, api_obj_labels(obj))) &&
	       (!w->fields || api_fieldsel_match(w->fields, obj));
}

static int watcher_list(struct watcher *w, struct kerr *err)
{
	_cleanup_free_ char *prefix = w->ns && w->kind->namespaced
	                                  ? xasprintf("%s/%s/", w->kind->plural, w->ns)
	                                  : xasprintf("%s/", w->kind->plural);
	_cleanup_json_ json_t *items = NULL;
	_cleanup_free_ char *next = NULL;
	uint64_t rev = 0;
	int rc =
	    store_list(w->hub->store, prefix, NULL, 0, list_wants, w, &items, &rev, &next, err);
	if (rc < 0)
		return rc;
	size_t i;
	json_t *obj;
	json_array_foreach(items, i, obj)
	    evvec_push(&w->init, event_for("ADDED", obj, api_obj_rv(obj), false));
	watcher_skip_through(w, rev);
	return 0;
}

struct watch_params {
	uint64_t rv, timeout_s;
	struct api_selector *labels;
	struct api_fieldsel *fields;
};

static int watch_params(struct srv_req *r, struct watch_params *p, struct kerr *err)
{
	const char *rv = srv_req_query(r, "resourceVersion");
	if (rv && *rv && srv_query_u64("resourceVersion", rv, &p->rv, err) < 0)
		return -EBADMSG;
	if (srv_query_u64("timeoutSeconds", srv_req_query(r, "timeoutSeconds"), &p->timeout_s,
	                  err) < 0)
		return -EBADMSG;
	return srv_parse_selectors(r, &p->labels, &p->fields, err);
}

static struct watcher *watcher_new(struct srv_req *r, struct watch_params *p)
{
	struct watcher *w = xcalloc(1, sizeof *w);
	w->hub = r->srv->hub;
	w->kind = r->route.kind;
	w->kind_idx = (size_t)kind_index(w->kind);
	w->conn = r->conn;
	w->ns = r->route.ns && w->kind->namespaced ? xstrdup(r->route.ns) : NULL;
	w->user = xstrdup(srv_req_user(r));
	w->labels = TAKE_PTR(p->labels);
	w->fields = TAKE_PTR(p->fields);
	int64_t now = time_mono_ms();
	w->next_bookmark_ms = now + w->hub->opts.bookmark_ms;
	if (p->timeout_s)
		w->deadline_ms =
		    now + (int64_t)(p->timeout_s > 315360000 ? 315360000 : p->timeout_s) * 1000;
	return w;
}

/* Registers, then replays or lists (see top). */
static int watcher_start(struct watcher *w, uint64_t rv, enum srv_limit *limit, struct kerr *err)
{
	struct store *s = w->hub->store;
	if (rv > 0 && rv < store_compacted(s))
		return kerr_set(err, ERANGE,
		                "too old resource version: %" PRIu64 " (compacted through %" PRIu64
		                ")",
		                rv, store_compacted(s));
	uint64_t current = store_revision(s);
	if (rv > current) /* as Kubernetes: it would silently miss events up to rv */
		return kerr_set(err, ETIMEDOUT,
		                "Too large resource version: %" PRIu64 ", current: %" PRIu64, rv,
		                current);
	int64_t head = watcher_register(w, limit, err);
	if (head < 0)
		return (int)head;
	if (rv == 0)
		return watcher_list(w, err);
	if (rv < (uint64_t)head)
		return watcher_replay(w, rv, (uint64_t)head, err);
	watcher_skip_through(w, rv);
	return 0;
}

enum MHD_Result srv_handle_watch(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct watch_params p = {0};
	if (watch_params(r, &p, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	struct watcher *w = watcher_new(r, &p);
	int rc = watcher_start(w, p.rv, &r->limit, &err);
	if (rc < 0) {
		watch_free(w);
		if (rc == -ESHUTDOWN)
			return srv_reply_status(r, 503, "ServiceUnavailable", "%s", kerr_msg(&err));
		return srv_reply_error(r, &err, r->route.kind->plural, NULL);
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK_SIZE,
	                                                              watch_read, w, watch_free);
	if (!resp) {
		watch_free(w);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "application/json;stream=watch");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
	/* An idle stream carries a BOOKMARK at least this often: a client that
	 * hears nothing for a few of these is on a frozen server and resumes
	 * elsewhere (client_watch). Milliseconds, as "1500ms". */
	char interval[32];
	snprintf(interval, sizeof interval, "%" PRId64 "ms", w->hub->opts.bookmark_ms);
	MHD_add_response_header(resp, "Keel-Bookmark-Interval", interval);
	r->is_watch = true;
	return srv_reply_response(r, 200, resp);
}

/* ---- hub ---- */

static void tick_locked(struct srv_hub *h, struct connvec *wake)
{
	int64_t now = time_mono_ms();
	for (size_t k = 0; k < h->n_kinds; k++)
		for (struct watcher *w = h->lists[k]; w; w = w->next) {
			if (w->deadline_ms && now >= w->deadline_ms)
				w->expired = true;
			if (!w->suspended)
				continue;
			if (!w->expired && !h->stopping && now < w->next_bookmark_ms)
				continue;
			w->bookmark_due = !w->expired && !h->stopping;
			w->suspended = false;
			connvec_push(wake, w->conn);
		}
}

static void *ticker_main(void *arg)
{
	struct srv_hub *h = arg;
	pthread_mutex_lock(&h->mu);
	while (!h->quit) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->cond, &h->mu, &ts);
		if (h->quit)
			break;
		struct connvec wake = {0};
		tick_locked(h, &wake);
		pthread_mutex_unlock(&h->mu);
		connvec_resume(&wake);
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

struct srv_hub *srv_hub_new(struct store *s, const struct srv_hub_opts *opts)
{
	struct srv_hub *h = xcalloc(1, sizeof *h);
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	h->store = s;
	h->opts = *opts;
	if (!h->opts.max_backlog_bytes)
		h->opts.max_backlog_bytes = DEFAULT_BACKLOG;
	if (h->opts.bookmark_ms <= 0)
		h->opts.bookmark_ms = 15000;
	h->n_kinds = api_kind_count();
	h->lists = xcalloc(h->n_kinds, sizeof *h->lists);
	h->head_rev = store_revision(s);
	pthread_mutex_init(&h->pend_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->pend_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&h->ticker, NULL, ticker_main, h) != 0 ||
	    pthread_create(&h->fanout, NULL, fanout_main, h) != 0)
		abort(); /* like OOM: no thread at startup is not recoverable */
	return h;
}

void srv_hub_stop(struct srv_hub *h)
{
	struct connvec wake = {0};
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	tick_locked(h, &wake);
	pthread_mutex_unlock(&h->mu);
	connvec_resume(&wake);
}

void srv_hub_end_user(struct srv_hub *h, const char *user)
{
	struct connvec wake = {0};
	size_t n = 0;
	pthread_mutex_lock(&h->mu);
	for (size_t k = 0; k < h->n_kinds; k++)
		for (struct watcher *w = h->lists[k]; w; w = w->next) {
			if (w->revoked || w->finished || !streq(w->user, user))
				continue;
			w->revoked = true;
			n++;
			queue_clear(w); /* nothing more is sent on its authority */
			if (w->suspended) {
				w->suspended = false;
				connvec_push(&wake, w->conn);
			}
		}
	pthread_mutex_unlock(&h->mu);
	connvec_resume(&wake);
	if (n)
		log_info("ended %zu watch stream%s of \"%s\": the token was revoked", n,
		         n == 1 ? "" : "s", user);
}

void srv_hub_free(struct srv_hub *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->quit = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->ticker, NULL);
	pthread_mutex_lock(&h->pend_mu);
	h->fan_quit = true;
	pthread_cond_signal(&h->pend_cond);
	pthread_mutex_unlock(&h->pend_mu);
	pthread_join(h->fanout, NULL); /* it fans out what is left first */
	pthread_cond_destroy(&h->pend_cond);
	pthread_mutex_destroy(&h->pend_mu);
	if (h->n_watchers)
		log_warn("watch hub freed with %zu watchers still registered", h->n_watchers);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->mu);
	free(h->lists);
	for (struct client_count *c = h->clients, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	free(h);
}

size_t srv_hub_watchers(struct srv_hub *h)
{
	pthread_mutex_lock(&h->mu);
	size_t n = h->n_watchers;
	pthread_mutex_unlock(&h->mu);
	return n;
}
