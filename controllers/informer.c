/*
 * informer — list, then watch from the list's resourceVersion, keeping a
 * local cache of one kind; relist on 410 Gone (and after errors that lose
 * the stream's position), as client-go's reflector does.
 *
 * The cache is a jansson object keyed by informer_key. It is updated
 * before the handler runs, and handlers run without the cache lock held,
 * so a handler (or a worker woken by it) already sees the new state and
 * may call informer_get. A relist diffs the fresh list against the cache
 * and delivers exactly the adds, updates (resourceVersion changed) and
 * deletes that were missed, so handlers never see a gap.
 *
 * What goes into the cache is interned first (intern.h): the objects of a
 * kind repeat most of their contents (a Deployment's Tasks share their
 * spec), and a cache of 100,000 Tasks as separate jansson trees took
 * ~5 KB each. The handlers are given the interned object, so they hold
 * no second copy either. Only this thread touches the intern table.
 *
 * Watch rounds are long (timeoutSeconds WATCH_ROUND_S, as client-go's
 * 5-10 minutes) so that the server's BOOKMARKs (every 15 s on a quiet
 * stream) keep the revision of a quiet kind current: a new round resumes
 * from at most a bookmark interval back. Short rounds (5 s, shorter than
 * the bookmark interval) made every round of a quiet kind's informer
 * resume from its last change, long ago, and the server replay (parse)
 * every change since, of every kind, every 5 s.
 *
 * Stopping: informer_request_stop sets the stop flag, which every event
 * checks, and cancels the watch in progress (client_watch_cancel), so
 * informer_stop returns within about a second even when the server stays
 * silent; when the server itself goes away, the stream ends at once.
 */
#include "controllers/informer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "controllers/intern.h"

#define WATCH_ROUND_S  300
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* One index (see "indexes" at the end). */
struct inf_index {
	char *name;
	informer_index_fn fn;
	json_t *map;
};

struct informer {
	struct client_opts copts;
	char *server, *token, *ca_file;
	const struct api_kind *kind;
	char *ns, *label_selector, *field_selector;
	long resync_ms;
	struct informer_handlers h[INFORMER_MAX_HANDLERS];
	size_t nh;

	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	json_t *cache; /* key -> object (interned) */
	struct intern *intern; /* informer thread only */
	struct client *watch_c; /* the thread's client, for informer_request_stop */
	char *rv;      /* revision of the cache (list or last event) */
	bool synced, stop;
	struct inf_index *idx; /* under mu; see "indexes" below */
	size_t nidx;
};

static void index_update(struct informer *inf, const char *key, json_t *old, json_t *obj);

static char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

int informer_new(const struct informer_opts *o, const struct informer_handlers *h,
                 struct informer **out, struct kerr *err)
{
	if (!o || !o->kind)
		return kerr_set(err, EINVAL, "informer: a kind is required");
	struct informer *inf = xcalloc(1, sizeof *inf);
	inf->copts = o->client;
	inf->server = dup_or_null(o->client.server);
	inf->token = dup_or_null(o->client.token);
	inf->ca_file = dup_or_null(o->client.ca_file);
	inf->copts.server = inf->server;
	inf->copts.token = inf->token;
	inf->copts.ca_file = inf->ca_file;
	inf->kind = o->kind;
	inf->ns = dup_or_null(o->ns);
	inf->label_selector = dup_or_null(o->label_selector);
	inf->field_selector = dup_or_null(o->field_selector);
	inf->resync_ms = o->resync_ms;
	if (h)
		inf->h[inf->nh++] = *h;
	pthread_mutex_init(&inf->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&inf->cv, &ca);
	pthread_condattr_destroy(&ca);
	inf->cache = json_object();
	inf->intern = intern_new();
	*out = inf;
	return 0;
}

char *informer_key(json_t *obj)
{
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	const char *ns =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
	if (!name)
		name = "";
	return ns && *ns ? xasprintf("%s/%s", ns, name) : xstrdup(name);
}

static const char *rv_of(json_t *obj)
{
	return json_string_value(
	    json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

static bool stopping(struct informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	bool s = inf->stop;
	pthread_mutex_unlock(&inf->mu);
	return s;
}

static void set_rv(struct informer *inf, const char *rv)
{
	if (!rv || !*rv)
		return;
	pthread_mutex_lock(&inf->mu);
	free(inf->rv);
	inf->rv = xstrdup(rv);
	pthread_mutex_unlock(&inf->mu);
}

/* Each handler set in the order they were added; all on this thread. */
static void tell_add(struct informer *inf, json_t *obj)
{
	for (size_t i = 0; i < inf->nh; i++)
		if (inf->h[i].on_add)
			inf->h[i].on_add(inf->h[i].ctx, obj);
}

static void tell_update(struct informer *inf, json_t *old_obj, json_t *new_obj)
{
	for (size_t i = 0; i < inf->nh; i++)
		if (inf->h[i].on_update)
			inf->h[i].on_update(inf->h[i].ctx, old_obj, new_obj);
}

static void tell_delete(struct informer *inf, json_t *obj)
{
	for (size_t i = 0; i < inf->nh; i++)
		if (inf->h[i].on_delete)
			inf->h[i].on_delete(inf->h[i].ctx, obj);
}

/* Puts obj in the cache and tells the handlers (add or update). */
static void apply_upsert(struct informer *inf, json_t *fresh)
{
	_cleanup_json_ json_t *obj = intern_object(inf->intern, fresh);
	_cleanup_free_ char *key = informer_key(obj);
	pthread_mutex_lock(&inf->mu);
	json_t *old = json_incref(json_object_get(inf->cache, key));
	json_object_set(inf->cache, key, obj);
	index_update(inf, key, old, obj);
	pthread_mutex_unlock(&inf->mu);
	if (!old)
		tell_add(inf, obj);
	else
		tell_update(inf, old, obj);
	json_decref(old);
}

static void apply_delete(struct informer *inf, json_t *obj)
{
	_cleanup_free_ char *key = informer_key(obj);
	pthread_mutex_lock(&inf->mu);
	json_t *old = json_incref(json_object_get(inf->cache, key));
	json_object_del(inf->cache, key);
	index_update(inf, key, old, NULL);
	pthread_mutex_unlock(&inf->mu);
	tell_delete(inf, old ? old : obj);
	json_decref(old);
}

/* Replaces the cache with a fresh list, delivering what changed. */
static void apply_list(struct informer *inf, json_t *items)
{
	_cleanup_json_ json_t *fresh = json_object();
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		_cleanup_free_ char *key = informer_key(it);
		json_object_set(fresh, key, it);
	}
	pthread_mutex_lock(&inf->mu);
	_cleanup_json_ json_t *old = json_copy(inf->cache);
	pthread_mutex_unlock(&inf->mu);
	const char *key;
	json_t *v;
	json_object_foreach(old, key, v)
	{
		if (!json_object_get(fresh, key))
			apply_delete(inf, v);
	}
	json_object_foreach(fresh, key, v)
	{
		json_t *was = json_object_get(old, key);
		if (!was || !streq(rv_of(was), rv_of(v)))
			apply_upsert(inf, v);
	}
}

static int do_list(struct informer *inf, struct client *c, struct kerr *err)
{
	struct client_query q = {.label_selector = inf->label_selector,
	                         .field_selector = inf->field_selector,
	                         .limit = 500};
	_cleanup_json_ json_t *list = NULL;
	int r = client_list_all(c, inf->kind, inf->ns, &q, &list, err);
	if (r < 0)
		return r;
	apply_list(inf, json_object_get(list, "items"));
	set_rv(inf, json_string_value(
	                json_object_get(json_object_get(list, "metadata"), "resourceVersion")));
	pthread_mutex_lock(&inf->mu);
	inf->synced = true;
	pthread_cond_broadcast(&inf->cv);
	pthread_mutex_unlock(&inf->mu);
	return 0;
}

static int on_event(const char *type, json_t *obj, void *ud)
{
	struct informer *inf = ud;
	if (streq(type, "ADDED") || streq(type, "MODIFIED"))
		apply_upsert(inf, obj);
	else if (streq(type, "DELETED"))
		apply_delete(inf, obj);
	set_rv(inf, rv_of(obj));
	return stopping(inf) ? 1 : 0;
}

/* Sleeps ms unless stopped first. */
static void nap(struct informer *inf, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t)ts.tv_nsec + (int64_t)ms * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&inf->mu);
	while (!inf->stop && pthread_cond_timedwait(&inf->cv, &inf->mu, &ts) == 0) {
	}
	pthread_mutex_unlock(&inf->mu);
}

static void resync(struct informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	_cleanup_json_ json_t *all = json_copy(inf->cache);
	pthread_mutex_unlock(&inf->mu);
	const char *key;
	json_t *v;
	json_object_foreach(all, key, v)
	{
		tell_update(inf, v, v);
	}
}

/* One watch round from the cache's revision. */
static int watch_round(struct informer *inf, struct client *c, struct kerr *err)
{
	pthread_mutex_lock(&inf->mu);
	_cleanup_free_ char *rv = inf->rv ? xstrdup(inf->rv) : NULL;
	pthread_mutex_unlock(&inf->mu);
	struct client_query q = {.label_selector = inf->label_selector,
	                         .field_selector = inf->field_selector,
	                         .resource_version = rv,
	                         .timeout_seconds = WATCH_ROUND_S};
	if (inf->resync_ms > 0 &&
	    inf->resync_ms / 1000 < WATCH_ROUND_S) /* resyncs run between rounds */
		q.timeout_seconds = inf->resync_ms < 1000 ? 1 : inf->resync_ms / 1000;
	return client_watch(c, inf->kind, inf->ns, &q, on_event, inf, err);
}

static void *informer_thread(void *arg)
{
	struct informer *inf = arg;
	struct client *c = NULL;
	bool need_list = true;
	long backoff = BACKOFF_MIN_MS;
	int64_t last_resync = time_mono_ms();
	while (!stopping(inf)) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		int r = 0;
		if (!c && (r = client_new(&inf->copts, &c, &err)) == 0) {
			pthread_mutex_lock(&inf->mu);
			inf->watch_c = c;
			if (inf->stop)
				client_watch_cancel(c);
			pthread_mutex_unlock(&inf->mu);
		}
		if (r == 0 && need_list && (r = do_list(inf, c, &err)) == 0)
			need_list = false;
		if (r == 0)
			r = watch_round(inf, c, &err);
		if (r == 0) {
			backoff = BACKOFF_MIN_MS;
		} else if (r == -ERANGE) {
			need_list = true; /* compacted: relist, deliver the diff */
		} else if (!stopping(inf)) {
			log_debug("informer %s: %s; retrying in %ld ms", inf->kind->plural,
			          kerr_msg(&err), backoff);
			nap(inf, backoff);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			/* The stream's position may be lost with the connection:
			 * relisting is always correct, and cheap after an error. */
			need_list = true;
		}
		if (inf->resync_ms > 0 && time_mono_ms() - last_resync >= inf->resync_ms) {
			resync(inf);
			last_resync = time_mono_ms();
		}
	}
	pthread_mutex_lock(&inf->mu);
	inf->watch_c = NULL;
	pthread_mutex_unlock(&inf->mu);
	client_free(c);
	return NULL;
}

int informer_add_handlers(struct informer *inf, const struct informer_handlers *h,
                          struct kerr *err)
{
	if (inf->started)
		return kerr_set(err, EBUSY, "informer %s: handlers must be added before it starts",
		                inf->kind->plural);
	if (inf->nh == INFORMER_MAX_HANDLERS)
		return kerr_set(err, ENOSPC, "informer %s: more than %d handler sets",
		                inf->kind->plural, INFORMER_MAX_HANDLERS);
	inf->h[inf->nh++] = *h;
	return 0;
}

bool informer_matches(struct informer *inf, const struct api_kind *kind, const char *ns,
                      const char *label_selector, const char *field_selector)
{
	return inf->kind == kind && streq(inf->ns ? inf->ns : "", ns ? ns : "") &&
	       streq(inf->label_selector ? inf->label_selector : "",
	             label_selector ? label_selector : "") &&
	       streq(inf->field_selector ? inf->field_selector : "",
	             field_selector ? field_selector : "");
}

int informer_start(struct informer *inf, struct kerr *err)
{
	if (inf->started)
		return 0;
	int e = pthread_create(&inf->thread, NULL, informer_thread, inf);
	if (e)
		return kerr_set(err, e, "informer %s: cannot start its thread: %s", inf->kind->plural,
		                strerror(e));
	inf->started = true;
	return 0;
}

int informer_wait_synced(struct informer *inf, long timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t)ts.tv_nsec + (int64_t)timeout_ms * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	int rc = 0;
	pthread_mutex_lock(&inf->mu);
	while (!inf->synced && !inf->stop && rc == 0)
		rc = pthread_cond_timedwait(&inf->cv, &inf->mu, &ts);
	bool ok = inf->synced;
	pthread_mutex_unlock(&inf->mu);
	return ok ? 0 : -ETIMEDOUT;
}

bool informer_synced(struct informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	bool s = inf->synced;
	pthread_mutex_unlock(&inf->mu);
	return s;
}

void informer_request_stop(struct informer *inf)
{
	if (!inf)
		return;
	pthread_mutex_lock(&inf->mu);
	inf->stop = true;
	if (inf->watch_c)
		client_watch_cancel(inf->watch_c);
	pthread_cond_broadcast(&inf->cv);
	pthread_mutex_unlock(&inf->mu);
}

void informer_stop(struct informer *inf)
{
	if (!inf)
		return;
	informer_request_stop(inf);
	if (inf->started) {
		pthread_join(inf->thread, NULL);
		inf->started = false;
	}
}

void informer_free(struct informer *inf)
{
	if (!inf)
		return;
	informer_stop(inf);
	for (size_t i = 0; i < inf->nidx; i++) {
		free(inf->idx[i].name);
		json_decref(inf->idx[i].map);
	}
	free(inf->idx);
	json_decref(inf->cache);
	intern_free(inf->intern);
	free(inf->rv);
	free(inf->server);
	free(inf->token);
	free(inf->ca_file);
	free(inf->ns);
	free(inf->label_selector);
	free(inf->field_selector);
	pthread_cond_destroy(&inf->cv);
	pthread_mutex_destroy(&inf->mu);
	free(inf);
}

json_t *informer_get(struct informer *inf, const char *key)
{
	pthread_mutex_lock(&inf->mu);
	json_t *o = json_incref(json_object_get(inf->cache, key));
	pthread_mutex_unlock(&inf->mu);
	return o;
}

json_t *informer_list(struct informer *inf, bool (*match)(void *ctx, json_t *obj), void *ctx)
{
	json_t *out = json_array();
	pthread_mutex_lock(&inf->mu);
	const char *key;
	json_t *v;
	json_object_foreach(inf->cache, key, v)
	{
		if (!match || match(ctx, v))
			json_array_append(out, v);
	}
	pthread_mutex_unlock(&inf->mu);
	return out;
}

uint64_t informer_revision(struct informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	uint64_t r = inf->rv ? strtoull(inf->rv, NULL, 10) : 0;
	pthread_mutex_unlock(&inf->mu);
	return r;
}

/* ---- indexes ----
 *
 * Each index is a jansson object: value -> {key: true, ...}, a hash of
 * hashes, so adding and removing one object's entries is O(its values)
 * and a lookup is O(the objects it finds). */

static void index_put(struct inf_index *ix, const char *key, json_t *obj, bool add)
{
	_cleanup_json_ json_t *vals = obj ? ix->fn(obj) : NULL;
	size_t i;
	json_t *v;
	json_array_foreach(vals, i, v)
	{
		const char *val = json_string_value(v);
		if (!val)
			continue;
		json_t *set = json_object_get(ix->map, val);
		if (add) {
			if (!set) {
				set = json_object();
				json_object_set_new(ix->map, val, set);
			}
			json_object_set(set, key, json_true());
		} else if (set) {
			json_object_del(set, key);
			if (json_object_size(set) == 0)
				json_object_del(ix->map, val);
		}
	}
}

/* With inf->mu held: moves key's entries from old's values to obj's. */
static void index_update(struct informer *inf, const char *key, json_t *old, json_t *obj)
{
	for (size_t i = 0; i < inf->nidx; i++) {
		index_put(&inf->idx[i], key, old, false);
		index_put(&inf->idx[i], key, obj, true);
	}
}

static struct inf_index *index_find(struct informer *inf, const char *name)
{
	for (size_t i = 0; i < inf->nidx; i++)
		if (streq(inf->idx[i].name, name))
			return &inf->idx[i];
	return NULL;
}

void informer_add_index(struct informer *inf, const char *name, informer_index_fn fn)
{
	pthread_mutex_lock(&inf->mu);
	if (!index_find(inf, name)) {
		inf->idx = xrealloc(inf->idx, (inf->nidx + 1) * sizeof(*inf->idx));
		struct inf_index *ix = &inf->idx[inf->nidx++];
		*ix = (struct inf_index){.name = xstrdup(name), .fn = fn, .map = json_object()};
		const char *key;
		json_t *v;
		json_object_foreach(inf->cache, key, v) index_put(ix, key, v, true);
	}
	pthread_mutex_unlock(&inf->mu);
}

json_t *informer_by_index(struct informer *inf, const char *name, const char *value)
{
	json_t *out = json_array();
	pthread_mutex_lock(&inf->mu);
	struct inf_index *ix = index_find(inf, name);
	json_t *set = ix && value ? json_object_get(ix->map, value) : NULL;
	const char *key;
	json_t *v;
	json_object_foreach(set, key, v)
	{
		json_t *o = json_object_get(inf->cache, key);
		if (o)
			json_array_append(out, o);
	}
	pthread_mutex_unlock(&inf->mu);
	return out;
}

bool informer_index_has(struct informer *inf, const char *name, const char *value)
{
	pthread_mutex_lock(&inf->mu);
	struct inf_index *ix = index_find(inf, name);
	bool has = ix && value && json_object_size(json_object_get(ix->map, value)) > 0;
	pthread_mutex_unlock(&inf->mu);
	return has;
}

static json_t *one_string(const char *s)
{
	if (!s || !*s)
		return NULL;
	json_t *a = json_array();
	json_array_append_new(a, json_string(s));
	return a;
}

json_t *informer_index_owner_uids(json_t *obj)
{
	json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
	if (json_array_size(refs) == 0)
		return NULL;
	json_t *a = json_array();
	size_t i;
	json_t *ref;
	json_array_foreach(refs, i, ref)
	{
		json_t *uid = json_object_get(ref, "uid");
		if (json_is_string(uid))
			json_array_append(a, uid);
	}
	return a;
}

json_t *informer_index_namespace(json_t *obj)
{
	return one_string(
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace")));
}

json_t *informer_index_uid(json_t *obj)
{
	return one_string(
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid")));
}
