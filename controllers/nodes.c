/*
 * nodes — the node lifecycle controller (see nodes.h for what it does).
 *
 * Liveness comes from the leases the agents renew (GET
 * /apis/keel/v1/leases: Lease objects in the store, so every API server
 * and a newly elected nodes controller see the same renewals; the list
 * also holds the controllers' leader leases, keel-NAME, which no Node can
 * be named after): the loop thread reads them every second and queues
 * every Node; reconcile(node) judges it from the cached Node and the
 * lease table. Leases are polled rather than watched because they make no
 * watch events by design (a renewal must not wake every Node watcher);
 * one small list a second is the price.
 *
 * The Ready=Unknown write is a status merge patch with the cached
 * resourceVersion as a precondition, so it never overwrites a Ready=True
 * the agent has just written (a conflict is retried with backoff, and the
 * retry sees the fresh lease). Eviction lists the node's Tasks through the
 * API (fieldSelector spec.nodeName) and marks each unfinished one Failed
 * (NodeLost) with an Event; it is repeated at most every EVICT_SWEEP_MS
 * while the node stays silent, which also catches a Task bound to it in a
 * race with the Unknown write.
 *
 * A node is judged only on silence the controller could have observed
 * (nodes_observed_since): counted from the latest of the controller's
 * start, the start of its current leadership term, and the first good
 * lease poll after failed ones. In an etcd quorum loss no agent can renew
 * and the leader loses its own lease; once the store is back, the new term
 * gives every node one grace period instead of judging the outage against
 * it. While polls fail, nothing is judged (the table is stale). Not done:
 * Kubernetes' "full disruption" rule (no eviction when every node is
 * unready at once) — with one agent, or one agent simulating every node,
 * a real crash would then never be evicted.
 *
 * Tasks bound to a Node that does not exist have no lease to judge: the
 * loop finds them in a Task cache every second (nodes_orphans), and once
 * one has been so for the grace period, and a GET of the Node through the
 * API confirms it is gone (the cache may be behind a registration), marks
 * it Failed (NodeLost, "node m3 does not exist") with an Event.
 */
#include "controllers/nodes.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "api/kind.h"
#include "api/meta.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "controllers/controller.h"

#define POLL_MS        1000
#define EVICT_SWEEP_MS 10000
#define UNKNOWN_MSG    "keel agent stopped renewing its lease"

/* ---- pure part (nodes.h) ---- */

enum nodes_verdict nodes_judge(int64_t alive_ms, int64_t now_ms, long grace_ms, long eviction_ms)
{
	int64_t silent = now_ms - alive_ms;
	if (silent < grace_ms)
		return NODES_ALIVE;
	if (silent < (int64_t)grace_ms + eviction_ms)
		return NODES_UNKNOWN;
	return NODES_EVICT;
}

static int64_t time_at(json_t *obj, const char *dotted)
{
	const char *s = json_string_value(api_obj_get_path(obj, dotted));
	return s ? time_parse_rfc3339(s) : -1;
}

int64_t nodes_observed_since(int64_t controller_start, int64_t leading_since,
                             int64_t store_back)
{
	int64_t t = controller_start;
	if (leading_since > t)
		t = leading_since;
	if (store_back > t)
		t = store_back;
	return t;
}

int64_t nodes_last_heard(json_t *node, int64_t lease_renew, int64_t observed_since)
{
	int64_t t = observed_since;
	int64_t c[] = {lease_renew, time_at(node, "metadata.creationTimestamp"),
	               time_at(node, "status.heartbeatTime")};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		if (c[i] > t)
			t = c[i];
	return t;
}

static json_t *ready_condition(json_t *conditions)
{
	size_t i;
	json_t *c;
	json_array_foreach(conditions, i, c)
	{
		if (streq(json_string_value(json_object_get(c, "type")), "Ready"))
			return c;
	}
	return NULL;
}

const char *nodes_ready_status(json_t *node)
{
	json_t *c = ready_condition(api_obj_get_path(node, "status.conditions"));
	return json_string_value(json_object_get(c, "status"));
}

json_t *nodes_conditions_unknown(json_t *conditions, const char *now_rfc3339)
{
	json_t *ready = ready_condition(conditions);
	if (streq(json_string_value(json_object_get(ready, "status")), "Unknown"))
		return NULL;
	json_t *out = json_is_array(conditions) ? json_deep_copy(conditions) : json_array();
	json_t *c = ready_condition(out);
	if (!c) {
		c = json_pack("{s:s}", "type", "Ready");
		json_array_append_new(out, c);
	}
	json_object_set_new(c, "status", json_string("Unknown"));
	json_object_set_new(c, "reason", json_string("NodeStatusUnknown"));
	json_object_set_new(c, "message", json_string(UNKNOWN_MSG));
	json_object_set_new(c, "lastTransitionTime", json_string(now_rfc3339));
	return out;
}

bool nodes_task_evictable(json_t *task)
{
	const char *phase = json_string_value(api_obj_get_path(task, "status.phase"));
	return !streq(phase, "Succeeded") && !streq(phase, "Failed");
}

json_t *nodes_orphans(json_t *seen, json_t *tasks, json_t *nodes, int64_t now_ms, long grace_ms)
{
	json_t *now_seen = json_object();
	json_t *due = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		const char *node = json_string_value(api_obj_get_path(t, "spec.nodeName"));
		if (!node || !*node || json_object_get(nodes, node) || !nodes_task_evictable(t))
			continue;
		const char *ns = api_obj_namespace(t), *name = api_obj_name(t);
		_cleanup_free_ char *key = xasprintf("%s/%s", ns ? ns : "", name ? name : "");
		json_t *first = json_object_get(seen, key);
		int64_t since = first ? json_integer_value(first) : now_ms;
		json_object_set_new(now_seen, key, json_integer(since));
		if (now_ms - since >= grace_ms)
			json_array_append_new(due, json_string(key));
	}
	json_object_clear(seen);
	json_object_update(seen, now_seen);
	json_decref(now_seen);
	return due;
}

/* ---- the controller ---- */

struct nodes {
	struct controller_env *env;
	struct informer *nodes, *tasks;
	int64_t start; /* unix seconds: setup */
	json_t *orphans; /* loop thread only: task key -> ms first seen on a missing node */
	pthread_mutex_t mu;
	json_t *leases; /* mu: node -> renew (unix seconds); NULL until the first poll */
	bool blind;         /* mu: the last lease poll failed (the table is stale) */
	int64_t store_back; /* mu: unix seconds of the first good poll after failed ones; 0 */
	json_t *swept;  /* mu: node -> monotonic ms of its last eviction sweep */
};

static int nodes_setup(struct controller_env *env, void **state, struct kerr *err)
{
	struct nodes *n = xcalloc(1, sizeof(*n));
	n->env = env;
	n->start = time_now_unix();
	pthread_mutex_init(&n->mu, NULL);
	n->swept = json_object();
	n->orphans = json_object();
	/* Tasks only for the orphan check, from the loop: no handlers, no keys */
	const struct informer_handlers quiet = {0};
	if (controller_informer(env, api_kind_by_plural("nodes"), NULL, NULL, NULL, &n->nodes,
	                        err) < 0 ||
	    controller_informer(env, api_kind_by_plural("tasks"), NULL, NULL, &quiet, &n->tasks,
	                        err) < 0) {
		json_decref(n->swept);
		json_decref(n->orphans);
		pthread_mutex_destroy(&n->mu);
		free(n);
		return -EINVAL;
	}
	*state = n;
	return 0;
}

static void nodes_teardown(void *state)
{
	struct nodes *n = state;
	pthread_mutex_destroy(&n->mu);
	json_decref(n->leases);
	json_decref(n->swept);
	json_decref(n->orphans);
	free(n);
}

/* Reads the lease table; 0, or -errno (the old table is kept). */
static int poll_leases(struct nodes *n, struct client *c, struct kerr *err)
{
	struct client_response resp = {0};
	int r = client_request(c, "GET", "/apis/keel/v1/leases", NULL, NULL, &resp, err);
	if (r < 0)
		return r;
	json_t *table = json_object();
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(resp.body, "items"), i, l)
	{
		const char *name = api_obj_name(l);
		int64_t t = time_at(l, "spec.renewTime");
		if (name && t > 0)
			json_object_set_new(table, name, json_integer(t));
	}
	client_response_clear(&resp);
	pthread_mutex_lock(&n->mu);
	json_decref(n->leases);
	n->leases = table;
	if (n->blind)
		n->store_back = time_now_unix();
	n->blind = false;
	pthread_mutex_unlock(&n->mu);
	return 0;
}

/* A poll failed: no judgement until one succeeds, and then from then. */
static void poll_failed(struct nodes *n)
{
	pthread_mutex_lock(&n->mu);
	n->blind = true;
	pthread_mutex_unlock(&n->mu);
}

/* Ready=Unknown on node (cached), once. */
static int mark_unknown(struct nodes *n, struct client *c, json_t *node, struct kerr *err)
{
	char now[32];
	time_rfc3339(now, sizeof now, time_now_unix());
	_cleanup_json_ json_t *conds =
	    nodes_conditions_unknown(api_obj_get_path(node, "status.conditions"), now);
	if (!conds)
		return 0;
	_cleanup_json_ json_t *patch = json_pack(
	    "{s:{s:O}, s:{s:O}}", "metadata", "resourceVersion",
	    json_object_get(api_obj_meta(node), "resourceVersion"), "status", "conditions", conds);
	int r = client_patch_status(c, api_kind_by_plural("nodes"), NULL, api_obj_name(node), patch,
	                            NULL, NULL, err);
	if (r == -ENOENT) {
		kerr_clear(err);
		return 0;
	}
	if (r < 0)
		return kerr_prefix(err, "marking node %s Ready=Unknown", api_obj_name(node));
	log_info("nodes: node %s is Ready=Unknown: " UNKNOWN_MSG, api_obj_name(node));
	controller_event(n->env, node, "Warning", "NodeNotReady",
	                 "Node %s status is now: NodeNotReady (" UNKNOWN_MSG ")",
	                 api_obj_name(node));
	return 0;
}

/* Marks task Failed (NodeLost) with msg, and an Event. */
static int evict_task(struct nodes *n, struct client *c, json_t *task, const char *msg,
                      struct kerr *err)
{
	_cleanup_json_ json_t *patch =
	    json_pack("{s:{s:O}, s:{s:s, s:s, s:s, s:b}}", "metadata", "resourceVersion",
	              json_object_get(api_obj_meta(task), "resourceVersion"), "status", "phase",
	              "Failed", "reason", "NodeLost", "message", msg, "ready", 0);
	int r = client_patch_status(c, api_kind_by_plural("tasks"), api_obj_namespace(task),
	                            api_obj_name(task), patch, NULL, NULL, err);
	if (r == -ENOENT) {
		kerr_clear(err);
		return 0;
	}
	if (r < 0)
		return kerr_prefix(err, "marking task %s/%s lost", api_obj_namespace(task),
		                   api_obj_name(task));
	log_info("nodes: task %s/%s marked Failed (NodeLost): %s", api_obj_namespace(task),
	         api_obj_name(task), msg);
	controller_event(n->env, task, "Warning", "NodeLost", "Marked Failed: %s", msg);
	return 0;
}

static int evict_tasks(struct nodes *n, struct client *c, const char *node, struct kerr *err)
{
	_cleanup_free_ char *sel = xasprintf("spec.nodeName=%s", node);
	struct client_query q = {.field_selector = sel, .limit = 500};
	_cleanup_json_ json_t *list = NULL;
	int r = client_list_all(c, api_kind_by_plural("tasks"), NULL, &q, &list, err);
	if (r < 0)
		return kerr_prefix(err, "listing the tasks of node %s", node);
	int ret = 0;
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(list, "items"), i, t)
	{
		if (!nodes_task_evictable(t))
			continue;
		_cleanup_kerr_ struct kerr e = KERR_INIT;
		_cleanup_free_ char *msg = xasprintf("node %s was lost: " UNKNOWN_MSG, node);
		r = evict_task(n, c, t, msg, &e);
		if (r < 0 && ret == 0) {
			ret = r;
			kerr_move(err, &e);
		}
	}
	return ret;
}

/* Whether Node name is gone according to the API itself, not only the
 * cache (which may lag behind a registration): 1 gone, 0 there, -errno. */
static int node_gone(struct client *c, const char *name)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *obj = NULL;
	int r = client_get(c, api_kind_by_plural("nodes"), NULL, name, &obj, &err);
	if (r == -ENOENT)
		return 1;
	return r < 0 ? r : 0;
}

static bool task_bound(void *ctx, json_t *t)
{
	(void)ctx;
	const char *node = json_string_value(api_obj_get_path(t, "spec.nodeName"));
	return node && *node && nodes_task_evictable(t);
}

/* Marks lost the unfinished Tasks bound to a Node that has not existed
 * for the grace period (nodes_orphans). From the loop thread, once the
 * caches are complete (before that every Task would look orphaned). */
static void lose_orphans(struct nodes *n, struct client *c)
{
	if (!informer_synced(n->nodes) || !informer_synced(n->tasks))
		return;
	_cleanup_json_ json_t *names = json_object();
	_cleanup_json_ json_t *all = informer_list(n->nodes, NULL, NULL);
	size_t i;
	json_t *v;
	json_array_foreach(all, i, v)
	{
		if (api_obj_name(v))
			json_object_set_new(names, api_obj_name(v), json_true());
	}
	_cleanup_json_ json_t *tasks = informer_list(n->tasks, task_bound, NULL);
	_cleanup_json_ json_t *due =
	    nodes_orphans(n->orphans, tasks, names, time_mono_ms(),
	                  controller_opts(n->env)->node_grace_period_ms);
	_cleanup_json_ json_t *gone = json_object(); /* node -> checked through the API */
	json_array_foreach(due, i, v)
	{
		_cleanup_json_ json_t *t = informer_get(n->tasks, json_string_value(v));
		const char *node = json_string_value(api_obj_get_path(t, "spec.nodeName"));
		if (!t || !node)
			continue;
		json_t *g = json_object_get(gone, node);
		if (!g) {
			g = json_boolean(node_gone(c, node) == 1);
			json_object_set_new(gone, node, g);
		}
		if (!json_is_true(g))
			continue;
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		_cleanup_free_ char *msg =
		    xasprintf("node %s does not exist (the Task was bound to it)", node);
		if (evict_task(n, c, t, msg, &err) < 0)
			log_warn("nodes: %s", kerr_msg(&err)); /* tried again next round */
	}
}

static void nodes_loop(void *state, struct client *c)
{
	struct nodes *n = state;
	bool warned = false;
	do {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		lose_orphans(n, c);
		if (poll_leases(n, c, &err) < 0) {
			poll_failed(n);
			if (!warned)
				log_warn("nodes: reading leases: %s", kerr_msg(&err));
			warned = true;
			continue;
		}
		warned = false;
		_cleanup_json_ json_t *all = informer_list(n->nodes, NULL, NULL);
		size_t i;
		json_t *node;
		json_array_foreach(all, i, node)
		{
			if (api_obj_name(node))
				controller_enqueue(n->env, api_obj_name(node));
		}
	} while (controller_sleep(n->env, POLL_MS));
}

/* Claims an eviction sweep of node's Tasks when one is due (none yet, or
 * the last EVICT_SWEEP_MS ago). */
static bool sweep_claim(struct nodes *n, const char *node)
{
	int64_t now = time_mono_ms();
	pthread_mutex_lock(&n->mu);
	json_t *last = json_object_get(n->swept, node);
	bool go = !last || now - json_integer_value(last) >= EVICT_SWEEP_MS;
	if (go)
		json_object_set_new(n->swept, node, json_integer(now));
	pthread_mutex_unlock(&n->mu);
	return go;
}

static void sweep_forget(struct nodes *n, const char *node)
{
	pthread_mutex_lock(&n->mu);
	json_object_del(n->swept, node);
	pthread_mutex_unlock(&n->mu);
}

static int nodes_reconcile(void *state, struct client *c, const char *key, struct kerr *err)
{
	struct nodes *n = state;
	_cleanup_json_ json_t *node = informer_get(n->nodes, key);
	pthread_mutex_lock(&n->mu);
	bool polled = n->leases != NULL && !n->blind;
	int64_t renew = polled ? json_integer_value(json_object_get(n->leases, key)) : 0;
	int64_t store_back = n->store_back;
	pthread_mutex_unlock(&n->mu);
	if (!node) {
		sweep_forget(n, key);
		return 0;
	}
	if (!polled)
		return POLL_MS; /* no judgement on no or stale leases */
	const struct controller_options *o = controller_opts(n->env);
	int64_t since = nodes_observed_since(n->start, controller_leading_since(n->env) / 1000,
	                                     store_back);
	int64_t heard = nodes_last_heard(node, renew, since);
	/* the times have whole seconds: count from the end of that second, so
	 * a node is never judged silent for longer than it really was (the
	 * agent's own check for a lease gap relies on that) */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	enum nodes_verdict v = nodes_judge((heard + 1) * 1000, now_ms, o->node_grace_period_ms,
	                                   o->node_eviction_timeout_ms);
	if (v == NODES_ALIVE) {
		sweep_forget(n, key);
		return 0;
	}
	int r = mark_unknown(n, c, node, err);
	if (r < 0 || v != NODES_EVICT || !sweep_claim(n, key))
		return r;
	r = evict_tasks(n, c, key, err);
	if (r < 0)
		sweep_forget(n, key);
	return r;
}

const struct controller_def controller_nodes = {
    .name = "nodes",
    .workers = 2,
    .setup = nodes_setup,
    .reconcile = nodes_reconcile,
    .teardown = nodes_teardown,
    .loop = nodes_loop,
};
