/*
 * agent_watch — the agent's informer: list the Tasks bound to its node(s),
 * then watch from the list's revision, keeping `cache` (uid -> Task) for
 * the reconcile thread. A single node uses fieldSelector
 * spec.nodeName=NODE; a simulator with many nodes watches every Task once
 * and keeps those bound to one of its nodes, which is cheaper than a
 * thousand streams. On 410 Gone it relists; on any other failure it
 * waits a little and resumes from the last revision it saw.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "api/kind.h"
#include "client/client.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

struct watch_state {
	struct agent *a;
	char *rv; /* owned */
};

static bool ours(struct agent *a, json_t *task)
{
	const char *node =
	    json_string_value(json_object_get(json_object_get(task, "spec"), "nodeName"));
	return node && json_object_get(a->node_index, node);
}

static const char *uid_of(json_t *obj)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
}

static void set_rv(struct watch_state *w, json_t *obj)
{
	const char *rv =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	if (rv && *rv) {
		free(w->rv);
		w->rv = xstrdup(rv);
	}
}

static int on_event(const char *type, json_t *obj, void *ud)
{
	struct watch_state *w = ud;
	struct agent *a = w->a;
	if (atomic_load(&a->stop))
		return 1;
	set_rv(w, obj);
	if (streq(type, "BOOKMARK"))
		return 0;
	const char *uid = uid_of(obj);
	if (!uid)
		return 0;
	pthread_mutex_lock(&a->mu);
	if (streq(type, "DELETED") || !ours(a, obj))
		json_object_del(a->cache, uid);
	else if (streq(type, "ADDED") || streq(type, "MODIFIED"))
		json_object_set(a->cache, uid, obj);
	a->dirty = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

static void query_for(struct agent *a, struct client_query *q, char **sel)
{
	memset(q, 0, sizeof(*q));
	if (a->nnodes == 1) {
		*sel = xasprintf("spec.nodeName=%s", a->nodes[0].name);
		q->field_selector = *sel;
	}
}

static int relist(struct agent *a, struct client *c, struct watch_state *w, struct kerr *err)
{
	struct client_query q;
	_cleanup_free_ char *sel = NULL;
	query_for(a, &q, &sel);
	q.limit = 500;
	_cleanup_json_ json_t *list = NULL;
	int r = client_list_all(c, api_kind_by_plural("tasks"), NULL, &q, &list, err);
	if (r < 0)
		return r;
	json_t *fresh = json_object();
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(list, "items"), i, t)
	{
		if (uid_of(t) && ours(a, t))
			json_object_set(fresh, uid_of(t), t);
	}
	set_rv(w, list);
	pthread_mutex_lock(&a->mu);
	json_decref(a->cache);
	a->cache = fresh;
	a->synced = true;
	a->dirty = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->mu);
	log_debug("agent: listed %zu task(s) at revision %s", json_object_size(fresh), w->rv);
	return 0;
}

void *agent_watch_thread(void *arg)
{
	struct agent *a = arg;
	struct client *c = agent_client(a);
	struct watch_state w = {a, NULL};
	int64_t delay_ms = 200;
	while (!atomic_load(&a->stop)) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		int r = 0;
		if (!w.rv) {
			r = relist(a, c, &w, &err);
		} else {
			struct client_query q;
			_cleanup_free_ char *sel = NULL;
			query_for(a, &q, &sel);
			q.resource_version = w.rv;
			q.timeout_seconds = 600;
			r = client_watch(c, api_kind_by_plural("tasks"), NULL, &q, on_event, &w,
			                 &err);
			if (r == -ERANGE) {
				log_info("agent: watch revision %s is compacted; relisting", w.rv);
				free(w.rv);
				w.rv = NULL;
				continue;
			}
		}
		if (r == 0) {
			delay_ms = 200;
			continue;
		}
		if (atomic_load(&a->stop))
			break; /* the stream ended because we are stopping (keel up) */
		log_warn("agent: watching tasks: %s (retrying in %lldms)", kerr_msg(&err),
		         (long long)delay_ms);
		usleep((useconds_t)delay_ms * 1000);
		delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
	}
	free(w.rv);
	client_free(c);
	return NULL;
}
