/*
 * scheduler — places every Task that has no spec.nodeName (DESIGN.md
 * "Controllers", issue 4 "Scheduler"): filter the Nodes (Ready,
 * schedulable, nodeSelector, requests fit allocatable minus what is bound
 * there), score the feasible ones with E-PVM (epvm.c) — or take the next
 * in name order with --scheduler round-robin — and bind through the
 * binding subresource with the Task's resourceVersion as a precondition.
 *
 * Why it is built this way:
 *   - Nodes live in plain arrays (placement.h; sorted by name, so "lowest
 *     index" ties are "lowest name") rebuilt only when a Node changes;
 *     what is bound to each node is kept incrementally from Task events.
 *     Filtering and scoring 5,000 nodes is one loop over those arrays, no
 *     JSON (but a nodeSelector's labels), and E-PVM's exponentials are
 *     cached per node and per node size (placement.c).
 *   - Each Task's contribution (node, cpu, memory) is remembered, and
 *     setting it is idempotent; a bind records it at once ("assume", as
 *     kube-scheduler does), so the next Task of a burst already sees it,
 *     and the watch event that follows changes nothing. One worker keeps
 *     decisions in order.
 *   - Scoring counts a Task that requests no CPU as 100m and no memory
 *     as 200Mi (kube-scheduler's non-zero requests, placement.h), in its
 *     demand and in the load it adds where it is bound; otherwise every
 *     request-less Task would cost 0 everywhere and go to the first node.
 *     Filtering uses the real requests.
 *   - A Task that fits nowhere gets status reason Unschedulable and a
 *     FailedScheduling Event, and is remembered: it is queued again when a
 *     Node changes or a bound Task frees resources — no hot loop — and,
 *     as a safety net, once a minute.
 *   - A conflict (the Task changed since the cache saw it) is an error:
 *     the key is retried with backoff against the newer cache. The server
 *     sets nodeName only when empty, so a retry never double-binds.
 *   - Binding is asynchronous, as kube-scheduler's binding cycle: the one
 *     worker decides and assumes, and hands the bind (and its Event) to a
 *     client pool (client_pool.h) that keeps up to BIND_PARALLEL binds in
 *     flight, so a burst of 10,000 Tasks is not 10,000 commits waited
 *     for one after another. A Task whose bind is in flight is not
 *     decided again; a failed bind forgets its assumption and re-queues
 *     the Task with backoff.
 *   - A Node update that moves only its observed usage (what sim and real
 *     agents report while Tasks start) updates that node in place; any
 *     other change rebuilds the arrays.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/meta.h"
#include "api/quantity.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "controllers/controller.h"
#include "controllers/epvm.h"
#include "controllers/placement.h"
#include "client/client_pool.h"

#define UNSCHEDULABLE_RETRY_MS 60000
#define BIND_PARALLEL          64

/* A Node as the scheduler holds it; its numbers are in pl.nodes[i]. */
struct snode {
	char *name;
	json_t *obj; /* owned; pl.nodes[i].labels points into it */
};

struct sched {
	struct controller_env *env;
	struct informer *nodes, *tasks;
	enum placement_policy policy;
	pthread_mutex_t mu;
	bool nodes_dirty;
	struct snode *arr; /* sorted by name; n entries, parallel to pl.nodes */
	size_t n;
	struct placement pl;
	json_t *index;        /* node name -> index in arr */
	json_t *bound;        /* node name -> [cpu, mem] */
	json_t *contrib;      /* task key -> [node, cpu, mem] */
	json_t *unsched;      /* task keys waiting for a change */
	json_t *binding;      /* task keys whose bind is in flight */
	struct client_pool *pool;
};

/* ---- what a Task asks for and holds ------------------------------------ */

static void task_requests(json_t *task, int64_t d[EPVM_RESOURCES])
{
	json_t *req = api_obj_get_path(task, "spec.resources.requests");
	json_t *cpu = json_object_get(req, "cpu"), *mem = json_object_get(req, "memory");
	d[0] = d[1] = 0;
	if (cpu && api_quantity_cpu(cpu, &d[0], NULL) < 0)
		d[0] = 0;
	if (mem && api_quantity_memory(mem, &d[1], NULL) < 0)
		d[1] = 0;
}

static const char *task_node(json_t *task)
{
	const char *n = json_string_value(api_obj_get_path(task, "spec.nodeName"));
	return n && *n ? n : NULL;
}

static bool task_terminal(json_t *task)
{
	const char *p = json_string_value(api_obj_get_path(task, "status.phase"));
	return streq(p, "Succeeded") || streq(p, "Failed");
}

static bool wants_node(json_t *task)
{
	return !task_node(task) && !task_terminal(task) &&
	       !json_object_get(api_obj_meta(task), "deletionTimestamp");
}

/* With s->mu held: adds sign * (cpu, mem) to node's bound load, and sign
 * * their non-zero requests (placement.h) to the load it is scored with.
 * s->bound keeps both, [cpu, mem, scored cpu, scored mem], for a node not
 * in the arrays yet (its Tasks seen before it) and for rebuilds. */
static void add_bound(struct sched *s, const char *node, int64_t cpu, int64_t mem, int sign)
{
	json_t *b = json_object_get(s->bound, node);
	if (!b) {
		b = json_pack("[I, I, I, I]", (json_int_t)0, (json_int_t)0, (json_int_t)0,
		              (json_int_t)0);
		json_object_set_new(s->bound, node, b);
	}
	const int64_t d[EPVM_RESOURCES] = {cpu, mem};
	int64_t nz[EPVM_RESOURCES];
	placement_nonzero(d, nz);
	const int64_t add[4] = {cpu, mem, nz[0], nz[1]};
	for (size_t k = 0; k < 4; k++)
		json_array_set_new(
		    b, k, json_integer(json_integer_value(json_array_get(b, k)) + sign * add[k]));
	json_t *ix = json_object_get(s->index, node);
	if (ix)
		placement_add(&s->pl, (size_t)json_integer_value(ix), d, sign);
}

/* With s->mu held: task key now holds (node, d) (node NULL: nothing).
 * Idempotent. Returns true when resources were freed. */
static bool set_contrib(struct sched *s, const char *key, const char *node,
                        const int64_t d[EPVM_RESOURCES])
{
	json_t *old = json_object_get(s->contrib, key);
	if (old) {
		const char *on = json_string_value(json_array_get(old, 0));
		int64_t oc = json_integer_value(json_array_get(old, 1));
		int64_t om = json_integer_value(json_array_get(old, 2));
		if (node && streq(on, node) && oc == d[0] && om == d[1])
			return false;
		add_bound(s, on, oc, om, -1);
		json_object_del(s->contrib, key);
	}
	if (node) {
		add_bound(s, node, d[0], d[1], +1);
		json_object_set_new(s->contrib, key,
		                    json_pack("[s, I, I]", node, (json_int_t)d[0], (json_int_t)d[1]));
	}
	return old != NULL;
}

/* With s->mu held: queue every Task waiting for a change. */
static void retry_unschedulable(struct sched *s)
{
	const char *key;
	json_t *v;
	json_object_foreach(s->unsched, key, v)
	{
		controller_enqueue(s->env, key);
	}
}

/* ---- informer handlers -------------------------------------------------- */

static void task_seen(struct sched *s, json_t *task, bool deleted)
{
	_cleanup_free_ char *key = informer_key(task);
	int64_t d[EPVM_RESOURCES];
	task_requests(task, d);
	const char *node = deleted || task_terminal(task) ? NULL : task_node(task);
	pthread_mutex_lock(&s->mu);
	bool freed = set_contrib(s, key, node, d);
	if (deleted || !wants_node(task))
		json_object_del(s->unsched, key);
	if (freed)
		retry_unschedulable(s);
	pthread_mutex_unlock(&s->mu);
	if (!deleted && wants_node(task))
		controller_enqueue(s->env, key);
}

static void task_add(void *ctx, json_t *obj)
{
	task_seen(ctx, obj, false);
}

static void task_update(void *ctx, json_t *old_obj, json_t *new_obj)
{
	(void)old_obj;
	task_seen(ctx, new_obj, false);
}

static void task_delete(void *ctx, json_t *obj)
{
	task_seen(ctx, obj, true);
}

static void node_changed(struct sched *s)
{
	pthread_mutex_lock(&s->mu);
	s->nodes_dirty = true;
	retry_unschedulable(s);
	pthread_mutex_unlock(&s->mu);
}

static void node_add(void *ctx, json_t *obj)
{
	(void)obj;
	node_changed(ctx);
}

static void quantity_pair(json_t *q, int64_t out[EPVM_RESOURCES]);

/* Whether old and new differ in anything the arrays hold but the usage. */
static bool node_moved(json_t *old_obj, json_t *new_obj)
{
	const char *paths[] = {"status.allocatable", "status.conditions", "spec.unschedulable",
	                       "metadata.labels", "metadata.name"};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (!json_equal(api_obj_get_path(old_obj, paths[i]),
		                api_obj_get_path(new_obj, paths[i])))
			return true;
	return old_obj == new_obj; /* a resync: rebuild, to be safe */
}

static void node_update(void *ctx, json_t *old_obj, json_t *new_obj)
{
	struct sched *s = ctx;
	if (node_moved(old_obj, new_obj)) {
		node_changed(s);
		return;
	}
	pthread_mutex_lock(&s->mu);
	json_t *ix = json_object_get(s->index, api_obj_name(new_obj) ? api_obj_name(new_obj) : "");
	if (!s->nodes_dirty && ix) {
		size_t i = (size_t)json_integer_value(ix);
		int64_t usage[EPVM_RESOURCES];
		quantity_pair(api_obj_get_path(new_obj, "status.usage"), usage);
		placement_set_usage(&s->pl, i, usage);
		/* the arrays' labels point into the node object they hold */
		json_decref(s->arr[i].obj);
		s->arr[i].obj = json_incref(new_obj);
		s->pl.nodes[i].labels = json_object_get(api_obj_meta(new_obj), "labels");
	}
	pthread_mutex_unlock(&s->mu);
	if (!ix)
		node_changed(s);
}

/* ---- node arrays ------------------------------------------------------- */

static bool node_ready(json_t *node)
{
	size_t i;
	json_t *c;
	json_array_foreach(api_obj_get_path(node, "status.conditions"), i, c)
	{
		if (streq(json_string_value(json_object_get(c, "type")), "Ready"))
			return streq(json_string_value(json_object_get(c, "status")), "True");
	}
	return false;
}

static void quantity_pair(json_t *q, int64_t out[EPVM_RESOURCES])
{
	json_t *cpu = json_object_get(q, "cpu"), *mem = json_object_get(q, "memory");
	out[0] = out[1] = 0;
	if (cpu && api_quantity_cpu(cpu, &out[0], NULL) < 0)
		out[0] = 0;
	if (mem && api_quantity_memory(mem, &out[1], NULL) < 0)
		out[1] = 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct snode *)a)->name, ((const struct snode *)b)->name);
}

static void free_nodes(struct sched *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->arr[i].name);
		json_decref(s->arr[i].obj);
	}
	free(s->arr);
	s->arr = NULL;
	s->n = 0;
}

/* With s->mu held: rebuilds the arrays from the node cache. */
static void rebuild_nodes(struct sched *s)
{
	_cleanup_json_ json_t *list = informer_list(s->nodes, NULL, NULL);
	free_nodes(s);
	s->n = json_array_size(list);
	s->arr = xcalloc(s->n ? s->n : 1, sizeof *s->arr);
	for (size_t i = 0; i < s->n; i++) {
		json_t *o = json_array_get(list, i);
		s->arr[i].obj = json_incref(o);
		s->arr[i].name = xstrdup(api_obj_name(o) ? api_obj_name(o) : "");
	}
	qsort(s->arr, s->n, sizeof *s->arr, by_name);
	struct placement_node *pn = s->n ? xcalloc(s->n, sizeof *pn) : NULL;
	json_object_clear(s->index);
	for (size_t i = 0; i < s->n; i++) {
		json_t *o = s->arr[i].obj;
		struct placement_node *x = &pn[i];
		quantity_pair(api_obj_get_path(o, "status.allocatable"), x->alloc);
		quantity_pair(api_obj_get_path(o, "status.usage"), x->usage);
		x->ready = node_ready(o);
		x->unschedulable = json_is_true(api_obj_get_path(o, "spec.unschedulable"));
		x->labels = json_object_get(api_obj_meta(o), "labels");
		json_object_set_new(s->index, s->arr[i].name, json_integer((json_int_t)i));
		json_t *b = json_object_get(s->bound, s->arr[i].name);
		for (int r = 0; r < EPVM_RESOURCES; r++) {
			x->bound[r] = json_integer_value(json_array_get(b, (size_t)r));
			x->scored[r] = json_integer_value(json_array_get(b, (size_t)r + 2));
		}
	}
	placement_reset(&s->pl, pn, s->n);
	s->nodes_dirty = false;
}

/* ---- choosing ---------------------------------------------------------- */

/* "0/4 nodes fit: 2 insufficient memory, 1 not ready, 1 node selector
 * mismatch": most frequent reason first, then in filter order. Owned. */
static char *why_message(size_t total, const unsigned why[PLACEMENT_WHY_N])
{
	struct sbuf b = SBUF_INIT;
	sbuf_printf(&b, "0/%zu nodes fit", total);
	if (total == 0)
		sbuf_printf(&b, ": no nodes registered");
	bool used[PLACEMENT_WHY_N] = {0};
	for (int round = 0; round < PLACEMENT_WHY_N; round++) {
		int best = -1;
		for (int w = 0; w < PLACEMENT_WHY_N; w++) {
			if (used[w] || !why[w])
				continue;
			if (best < 0 || why[w] > why[best])
				best = w;
		}
		if (best < 0)
			break;
		used[best] = true;
		sbuf_printf(&b, "%s%u %s", round == 0 ? ": " : ", ", why[best], placement_why_text[best]);
	}
	return sbuf_take(&b);
}

/* ---- writing ------------------------------------------------------------ */

/* POST .../binding with the Task's resourceVersion as a precondition:
 * -ESTALE when the Task changed (or was bound elsewhere) meanwhile. */
static int bind_task(struct client *c, json_t *task, const char *node, struct kerr *err)
{
	const char *ns = api_obj_namespace(task), *name = api_obj_name(task);
	const char *rv = json_string_value(json_object_get(api_obj_meta(task), "resourceVersion"));
	_cleanup_json_ json_t *b = json_pack(
	    "{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s}}", "apiVersion", API_GROUP_VERSION, "kind",
	    "Binding", "metadata", "name", name, "namespace", ns, "resourceVersion", rv ? rv : "",
	    "target", "kind", "Node", "name", node);
	const struct api_kind *k = api_kind_by_kind("Task");
	_cleanup_free_ char *path = client_path(k, ns, name, "binding");
	return client_request(c, "POST", path, NULL, b, NULL, err);
}

static int mark_unschedulable(struct sched *s, struct client *c, json_t *task, const char *msg,
                              struct kerr *err)
{
	json_t *st = json_object_get(task, "status");
	if (!streq(json_string_value(json_object_get(st, "reason")), "Unschedulable") ||
	    !streq(json_string_value(json_object_get(st, "message")), msg)) {
		_cleanup_json_ json_t *patch =
		    json_pack("{s:{s:s, s:s, s:s}}", "status", "phase", "Pending", "reason",
		              "Unschedulable", "message", msg);
		int r = client_patch_status(c, api_kind_by_kind("Task"), api_obj_namespace(task),
		                            api_obj_name(task), patch, NULL, NULL, err);
		if (r < 0)
			return kerr_prefix(err, "cannot mark the task Unschedulable");
	}
	controller_event(s->env, task, "Warning", "FailedScheduling", "%s", msg);
	return 0;
}

static void clear_unschedulable(struct client *c, json_t *task)
{
	if (!streq(json_string_value(api_obj_get_path(task, "status.reason")), "Unschedulable"))
		return;
	_cleanup_json_ json_t *patch = json_pack("{s:{s:n, s:n}}", "status", "reason", "message");
	client_patch_status(c, api_kind_by_kind("Task"), api_obj_namespace(task),
	                    api_obj_name(task), patch, NULL, NULL, NULL);
}

/* ---- reconcile ---------------------------------------------------------- */

/* With s->mu held: the chosen node's name (owned), or NULL with *msg. */
static char *choose(struct sched *s, json_t *task, const int64_t d[EPVM_RESOURCES], char **msg)
{
	if (s->nodes_dirty)
		rebuild_nodes(s);
	unsigned why[PLACEMENT_WHY_N] = {0};
	json_t *sel = api_obj_get_path(task, "spec.nodeSelector");
	long i = placement_choose(&s->pl, s->policy, d, sel, why, NULL, NULL);
	if (i < 0) {
		*msg = why_message(s->n, why);
		return NULL;
	}
	return xstrdup(s->arr[i].name);
}

struct bind_job {
	struct sched *s;
	char *key, *node;
	json_t *task;
	int64_t d[EPVM_RESOURCES];
};

/* On a pool thread: binds, or forgets the assumption and retries later. */
static void bind_run(struct client *c, void *arg)
{
	struct bind_job *j = arg;
	struct sched *s = j->s;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int r = c ? bind_task(c, j->task, j->node, &err) : kerr_set(&err, EINVAL, "no client");
	pthread_mutex_lock(&s->mu);
	if (r < 0) {
		/* Forget the assumption — unless the Task is bound after all (a
		 * conflict: another bind won, and the informer may already have
		 * delivered it): then its real node counts, as task_seen would
		 * have it. The cache is read under s->mu, so a handler that runs
		 * later sets the same or newer. */
		_cleanup_json_ json_t *cur = informer_get(s->tasks, j->key);
		const char *node = cur && !task_terminal(cur) ? task_node(cur) : NULL;
		int64_t d[EPVM_RESOURCES];
		if (cur)
			task_requests(cur, d);
		set_contrib(s, j->key, node, node ? d : j->d);
	}
	json_object_del(s->binding, j->key);
	pthread_mutex_unlock(&s->mu);
	if (r < 0) {
		log_warn("controller scheduler: %s: cannot bind to %s: %s", j->key, j->node,
		         kerr_msg(&err));
		workqueue_add_rate_limited(controller_queue(s->env), j->key);
	} else {
		workqueue_forget(controller_queue(s->env), j->key);
		clear_unschedulable(c, j->task); /* c is set: the bind went through it */
		controller_event(s->env, j->task, "Normal", "Scheduled",
		                 "Successfully assigned %s to %s", j->key, j->node);
	}
	json_decref(j->task);
	free(j->key);
	free(j->node);
	free(j);
}

static int sched_reconcile(void *state, struct client *c, const char *key, struct kerr *err)
{
	struct sched *s = state;
	_cleanup_json_ json_t *task = informer_get(s->tasks, key);
	if (!task || !wants_node(task)) {
		pthread_mutex_lock(&s->mu);
		json_object_del(s->unsched, key);
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	int64_t d[EPVM_RESOURCES];
	task_requests(task, d);
	_cleanup_free_ char *msg = NULL;
	pthread_mutex_lock(&s->mu);
	if (json_object_get(s->binding, key)) {
		pthread_mutex_unlock(&s->mu);
		return 0; /* decided; its bind is in flight (and re-queues it if it fails) */
	}
	char *node = choose(s, task, d, &msg);
	if (node) {
		json_object_del(s->unsched, key);
		set_contrib(s, key, node, d); /* assume: the next Task sees it */
		json_object_set_new(s->binding, key, json_true());
	} else {
		json_object_set_new(s->unsched, key, json_true());
	}
	pthread_mutex_unlock(&s->mu);
	if (!node) {
		int r = mark_unschedulable(s, c, task, msg, err);
		return r < 0 ? r : UNSCHEDULABLE_RETRY_MS;
	}
	struct bind_job *j = xcalloc(1, sizeof(*j));
	*j =
	    (struct bind_job){.s = s, .key = xstrdup(key), .node = node, .task = json_incref(task)};
	memcpy(j->d, d, sizeof(j->d));
	client_pool_submit(s->pool, bind_run, j);
	return 0;
}

/* ---- setup -------------------------------------------------------------- */

static int sched_setup(struct controller_env *env, void **state, struct kerr *err)
{
	struct sched *s = xcalloc(1, sizeof *s);
	s->env = env;
	s->policy = streq(controller_opts(env)->scheduler, "round-robin") ? PLACEMENT_ROUND_ROBIN
	                                                                   : PLACEMENT_EPVM;
	pthread_mutex_init(&s->mu, NULL);
	s->nodes_dirty = true;
	s->index = json_object();
	s->bound = json_object();
	s->contrib = json_object();
	s->unsched = json_object();
	s->binding = json_object();
	*state = s;
	int pr = client_pool_new(&controller_opts(env)->client, BIND_PARALLEL, &s->pool, err);
	if (pr < 0)
		return pr;
	struct informer_handlers th = {task_add, task_update, task_delete, s};
	struct informer_handlers nh = {node_add, node_update, node_add, s};
	int r = controller_informer(env, api_kind_by_kind("Node"), NULL, NULL, &nh, &s->nodes, err);
	if (r == 0)
		r = controller_informer(env, api_kind_by_kind("Task"), NULL, NULL, &th, &s->tasks,
		                        err);
	return r;
}

static void sched_teardown(void *state)
{
	struct sched *s = state;
	if (!s)
		return;
	client_pool_free(s->pool); /* runs the binds still queued */
	free_nodes(s);
	placement_free(&s->pl);
	json_decref(s->index);
	json_decref(s->bound);
	json_decref(s->contrib);
	json_decref(s->unsched);
	json_decref(s->binding);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

const struct controller_def controller_scheduler = {
    .name = "scheduler",
    .workers = 1, /* decisions in order: the "assume" step relies on it */
    .setup = sched_setup,
    .reconcile = sched_reconcile,
    .teardown = sched_teardown,
};
