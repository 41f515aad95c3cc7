/*
 * events — Event creation and aggregation for the controllers.
 *
 * The recorder remembers, per (uid, reason, message), the Event it made
 * and its count, so a Task retried every few seconds for an hour leaves
 * one Event with a count, not a thousand. The memory is bounded
 * (MAX_REMEMBERED; when full it is simply forgotten and the next repeat
 * creates a fresh Event) and a repeat whose Event has expired (404) is
 * created again. Names are INVOLVED.HEX, unique by the time in
 * nanoseconds, as Kubernetes names them.
 *
 * The lock covers the bookkeeping only, not the request: each write takes
 * a client from a free list (making one when all are busy), so the
 * Events of many threads (the scheduler's binders, say) are written in
 * parallel and share the store's commits instead of queueing behind one
 * connection. A repeat's count is taken under the lock, so concurrent
 * repeats each send a distinct count.
 */
#include "controllers/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/kind.h"
#include "common/kerr.h"
#include "common/util.h"

#define MAX_REMEMBERED 4096

/* at least the scheduler's binds in flight (BIND_PARALLEL): each records
 * its Scheduled Event, and a client not kept is a new connection next time */
#define MAX_IDLE_CLIENTS 64

struct events {
	pthread_mutex_t mu;
	struct client_opts copts; /* strings owned below */
	char *server, *token, *ca_file, *user_agent;
	struct client *idle[MAX_IDLE_CLIENTS]; /* free list */
	size_t nidle;
	char *component;
	json_t *seen; /* "uid\x1freason\x1fmessage" -> {"ns","name","count"} */
};

int events_new(const struct client_opts *copts, const char *component, struct events **out,
               struct kerr *err)
{
	struct client *c = NULL;
	int r = client_new(copts, &c, err);
	if (r < 0)
		return r;
	struct events *ev = xcalloc(1, sizeof *ev);
	pthread_mutex_init(&ev->mu, NULL);
	ev->copts = *copts;
	ev->copts.server = ev->server = copts->server ? xstrdup(copts->server) : NULL;
	ev->copts.token = ev->token = copts->token ? xstrdup(copts->token) : NULL;
	ev->copts.ca_file = ev->ca_file = copts->ca_file ? xstrdup(copts->ca_file) : NULL;
	ev->copts.user_agent = ev->user_agent =
	    copts->user_agent ? xstrdup(copts->user_agent) : NULL;
	ev->idle[ev->nidle++] = c;
	ev->component = xstrdup(component ? component : "keel");
	ev->seen = json_object();
	*out = ev;
	return 0;
}

void events_free(struct events *ev)
{
	if (!ev)
		return;
	for (size_t i = 0; i < ev->nidle; i++)
		client_free(ev->idle[i]);
	free(ev->server);
	free(ev->token);
	free(ev->ca_file);
	free(ev->user_agent);
	free(ev->component);
	json_decref(ev->seen);
	pthread_mutex_destroy(&ev->mu);
	free(ev);
}

static const char *mstr(json_t *obj, const char *field)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

static json_t *new_event(struct events *ev, json_t *involved, const char *ns, const char *type,
                         const char *reason, const char *message, const char *now)
{
	const char *name = mstr(involved, "name");
	const char *kind = json_string_value(json_object_get(involved, "kind"));
	_cleanup_free_ char *ename = xasprintf("%s.%llx", name ? name : "object",
	                                       (unsigned long long)time_mono_ns() ^
	                                           ((unsigned long long)time_now_unix() << 20));
	json_t *io = json_pack("{s:s, s:s}", "kind", kind ? kind : "Unknown", "name",
	                       name ? name : "");
	const char *ins = mstr(involved, "namespace"), *uid = mstr(involved, "uid");
	const char *av = json_string_value(json_object_get(involved, "apiVersion"));
	if (ins)
		json_object_set_new(io, "namespace", json_string(ins));
	if (uid)
		json_object_set_new(io, "uid", json_string(uid));
	if (av)
		json_object_set_new(io, "apiVersion", json_string(av));
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:s, s:i, s:s, s:s, s:{s:s}}",
	                 "apiVersion", API_GROUP_VERSION, "kind", "Event", "metadata", "name",
	                 ename, "namespace", ns, "involvedObject", io, "reason", reason, "message",
	                 message, "type", type, "count", 1, "firstTimestamp", now, "lastTimestamp",
	                 now, "source", "component", ev->component);
}

/* A client for one request (from the free list, or a new one). */
static int client_take(struct events *ev, struct client **out, struct kerr *err)
{
	pthread_mutex_lock(&ev->mu);
	struct client *c = ev->nidle ? ev->idle[--ev->nidle] : NULL;
	pthread_mutex_unlock(&ev->mu);
	if (c) {
		*out = c;
		return 0;
	}
	return client_new(&ev->copts, out, err);
}

static void client_give(struct events *ev, struct client *c)
{
	pthread_mutex_lock(&ev->mu);
	if (ev->nidle < MAX_IDLE_CLIENTS) {
		ev->idle[ev->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&ev->mu);
	client_free(c);
}

/* The remembered Event's count + 1 (n, taken under the lock). -ENOENT
 * when it is gone (expired). */
static int bump(struct client *c, const struct api_kind *k, const char *ns, const char *name,
                json_int_t n, const char *now, struct kerr *err)
{
	_cleanup_json_ json_t *patch = json_pack("{s:I, s:s}", "count", n, "lastTimestamp", now);
	return client_patch(c, k, ns, name, patch, NULL, NULL, err);
}

int events_record(struct events *ev, json_t *involved, const char *type, const char *reason,
                  const char *message, struct kerr *err)
{
	const struct api_kind *k = api_kind_by_kind("Event");
	if (!k)
		return kerr_set(err, EINVAL, "the kind table has no Event");
	const char *ns = mstr(involved, "namespace");
	if (!ns || !*ns)
		ns = "default";
	const char *uid = mstr(involved, "uid");
	_cleanup_free_ char *key = xasprintf("%s\x1f%s\x1f%s", uid ? uid : mstr(involved, "name"),
	                                     reason, message);
	char now[40];
	time_rfc3339(now, sizeof now, time_now_unix());
	struct client *c = NULL;
	int r = client_take(ev, &c, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ev->mu);
	json_t *rec = json_object_get(ev->seen, key);
	_cleanup_free_ char *rname = NULL;
	json_int_t n = 0;
	if (rec) {
		n = json_integer_value(json_object_get(rec, "count")) + 1;
		json_object_set_new(rec, "count", json_integer(n));
		rname = xstrdup(json_string_value(json_object_get(rec, "name")));
	}
	pthread_mutex_unlock(&ev->mu);
	r = -ENOENT;
	if (rname) {
		r = bump(c, k, ns, rname, n, now, err);
		if (r == -ENOENT) {
			kerr_clear(err);
			pthread_mutex_lock(&ev->mu);
			json_object_del(ev->seen, key);
			pthread_mutex_unlock(&ev->mu);
		}
	}
	if (r == -ENOENT) {
		_cleanup_json_ json_t *e = new_event(ev, involved, ns, type, reason, message, now);
		r = client_create(c, k, ns, e, NULL, NULL, err);
		if (r == 0) {
			pthread_mutex_lock(&ev->mu);
			if (json_object_size(ev->seen) >= MAX_REMEMBERED)
				json_object_clear(ev->seen);
			json_object_set_new(ev->seen, key,
			                    json_pack("{s:s, s:s, s:i}", "ns", ns, "name",
			                              mstr(e, "name"), "count", 1));
			pthread_mutex_unlock(&ev->mu);
		}
	}
	client_give(ev, c);
	return r;
}
