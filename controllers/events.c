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

struct events {
	pthread_mutex_t mu;
	struct client *c;
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
	ev->c = c;
	ev->component = xstrdup(component ? component : "keel");
	ev->seen = json_object();
	*out = ev;
	return 0;
}

void events_free(struct events *ev)
{
	if (!ev)
		return;
	client_free(ev->c);
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

/* With ev->mu held: count + 1 on the remembered Event. -ENOENT when it is
 * gone (expired). */
static int bump(struct events *ev, const struct api_kind *k, json_t *rec, const char *now,
                struct kerr *err)
{
	json_int_t n = json_integer_value(json_object_get(rec, "count")) + 1;
	_cleanup_json_ json_t *patch = json_pack("{s:I, s:s}", "count", n, "lastTimestamp", now);
	int r = client_patch(ev->c, k, json_string_value(json_object_get(rec, "ns")),
	                     json_string_value(json_object_get(rec, "name")), patch, NULL, NULL, err);
	if (r == 0)
		json_object_set_new(rec, "count", json_integer(n));
	return r;
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
	pthread_mutex_lock(&ev->mu);
	json_t *rec = json_object_get(ev->seen, key);
	int r = -ENOENT;
	if (rec) {
		r = bump(ev, k, rec, now, err);
		if (r == -ENOENT) {
			kerr_clear(err);
			json_object_del(ev->seen, key);
		}
	}
	if (r == -ENOENT) {
		_cleanup_json_ json_t *e = new_event(ev, involved, ns, type, reason, message, now);
		r = client_create(ev->c, k, ns, e, NULL, NULL, err);
		if (r == 0) {
			if (json_object_size(ev->seen) >= MAX_REMEMBERED)
				json_object_clear(ev->seen);
			json_object_set_new(ev->seen, key,
			                    json_pack("{s:s, s:s, s:i}", "ns", ns, "name",
			                              mstr(e, "name"), "count", 1));
		}
	}
	pthread_mutex_unlock(&ev->mu);
	return r;
}
