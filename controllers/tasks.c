/*
 * tasks — the Deployment controller: each Deployment owns exactly
 * spec.replicas Tasks of its current template, and a template change is
 * rolled out within maxSurge/maxUnavailable (RollingUpdate) or by deleting
 * everything first (Recreate). The arithmetic is in rollout.c; this file
 * reads state, issues the creates and deletes of one step, and writes the
 * Deployment's status, revision history and Events.
 *
 * The informer cache plus expectations, as client-go's ReplicaSet
 * controller. reconcile reads the Deployment from the API server (one
 * GET) and its Tasks from the Task informer's owner index (no list over
 * HTTP: at 10,000 Tasks a list per reconcile made a rollout quadratic).
 * A cache may not show yet the creates and deletes this controller has
 * just issued, so each Deployment remembers them ("expectations": names
 * created, not yet in the cache; names deleted, still there) and a
 * reconcile that finds some pending waits for the cache instead of
 * acting again on a stale view — the Task events that satisfy them queue
 * the Deployment anyway. Expectations are dropped after EXPECT_TIMEOUT_MS
 * (a write that failed in a way not seen), and a controller that restarts
 * starts from a freshly synced cache, so it needs none.
 *
 * Creates go out in parallel through a client pool (client_pool.h), in
 * slow-start batches of 1, 2, 4, ... as Kubernetes' controllers do: a
 * Deployment whose Tasks all fail (a quota, a bad template) costs one
 * failed request, not replicas of them, and a good one has up to the
 * pool's size in flight, sharing the store's commits.
 *
 * Tasks: named DEPLOYMENT-HASH-SUFFIX (hash of the template, 5 random
 * characters), labels = the template's + keel/template-hash, annotation
 * keel/revision, ownerReference to the Deployment (controller,
 * blockOwnerDeletion). Only Tasks whose controller ownerReference has the
 * Deployment's uid count; other Tasks matching the selector are left alone
 * (no adoption). A ready Task (status.ready) is available; terminated
 * Tasks (Failed — including NodeLost — and Succeeded) are deleted and
 * replaced; Tasks with a deletionTimestamp are waited for. Scale-down
 * removes unscheduled, then Pending, then unready, then the newest Tasks
 * first. A paused Deployment (spec.paused) only gets its status updated.
 *
 * Status: observedGeneration, replicas (Tasks after this step),
 * updatedReplicas (of the current template), readyReplicas =
 * availableReplicas, unavailableReplicas, and conditions Available
 * (MinimumReplicasAvailable: at least replicas - maxUnavailable available)
 * and Progressing (NewTasksCreated when a new revision starts, TasksUpdated
 * on every step that changed something, NewTemplateAvailable when
 * complete, False/ProgressDeadlineExceeded when progressDeadlineSeconds
 * pass without progress), as Kubernetes keeps them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "api/kind.h"
#include "api/meta.h"
#include "api/selector.h"
#include "common/kerr.h"
#include "common/util.h"
#include "client/client_pool.h"
#include "common/log.h"
#include "controllers/controller.h"
#include "controllers/rollout.h"

#define MAX_TASK_NAME     253
#define CREATE_PARALLEL   64
#define EXPECT_TIMEOUT_MS 30000

struct tasks_ctl {
	struct controller_env *env;
	const struct api_kind *kdeploy, *ktask;
	struct informer *tasks;
	struct client_pool *pool;
	pthread_mutex_t mu;
	json_t *expect; /* deployment key -> {"at": ms, "names": {task name: "add" | "del"}} */
};

/* What one reconcile saw and decided, for the status and the Events. */
struct observed {
	json_t *deploy; /* borrowed */
	const char *key, *ns, *name;
	char hash[ROLLOUT_HASH_LEN + 1];
	long revision;
	json_t *new_tasks; /* arrays of borrowed tasks */
	json_t *old_tasks;
	struct rollout_counts counts;
	long surge, unavailable;
	bool acted;        /* created or deleted something */
	bool new_revision; /* the history got a new current entry */
};

/* ---- informer handlers ------------------------------------------------- */

/* The key of obj's controlling Deployment, or NULL. Owned. */
static char *owner_key(json_t *obj)
{
	size_t i;
	json_t *ref;
	json_array_foreach(json_object_get(api_obj_meta(obj), "ownerReferences"), i, ref)
	{
		if (json_is_true(json_object_get(ref, "controller")) &&
		    streq(json_string_value(json_object_get(ref, "kind")), "Deployment")) {
			const char *n = json_string_value(json_object_get(ref, "name"));
			const char *ns = api_obj_namespace(obj);
			return n && ns ? xasprintf("%s/%s", ns, n) : NULL;
		}
	}
	return NULL;
}

static void enqueue_owner(struct tasks_ctl *t, json_t *obj)
{
	_cleanup_free_ char *k = owner_key(obj);
	if (k)
		controller_enqueue(t->env, k);
}

static void on_task_add(void *ctx, json_t *obj)
{
	enqueue_owner(ctx, obj);
}

static void on_task_update(void *ctx, json_t *old_obj, json_t *new_obj)
{
	(void)old_obj;
	enqueue_owner(ctx, new_obj);
}

static void on_task_delete(void *ctx, json_t *obj)
{
	enqueue_owner(ctx, obj);
}

static int tasks_setup(struct controller_env *env, void **state, struct kerr *err)
{
	struct tasks_ctl *t = xcalloc(1, sizeof(*t));
	t->env = env;
	t->kdeploy = api_kind_by_kind("Deployment");
	t->ktask = api_kind_by_kind("Task");
	struct informer_handlers h = {on_task_add, on_task_update, on_task_delete, t};
	int r = controller_informer(env, t->kdeploy, NULL, NULL, NULL, NULL, err);
	if (r >= 0)
		r = controller_informer(env, t->ktask, NULL, NULL, &h, &t->tasks, err);
	if (r >= 0)
		r = client_pool_new(&controller_opts(env)->client, CREATE_PARALLEL, &t->pool, err);
	if (r < 0) {
		free(t);
		return r;
	}
	informer_add_index(t->tasks, INFORMER_INDEX_OWNER, informer_index_owner_uids);
	pthread_mutex_init(&t->mu, NULL);
	t->expect = json_object();
	*state = t;
	return 0;
}

static void tasks_teardown(void *state)
{
	struct tasks_ctl *t = state;
	client_pool_free(t->pool);
	json_decref(t->expect);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* ---- expectations --------------------------------------------------------- */

/* Remembers that this controller created (op "add") or deleted ("del")
 * Task name of Deployment key. */
static void expect(struct tasks_ctl *t, const char *key, const char *name, const char *op)
{
	pthread_mutex_lock(&t->mu);
	json_t *e = json_object_get(t->expect, key);
	if (!e) {
		e = json_pack("{s:I,s:{}}", "at", (json_int_t)time_mono_ms(), "names");
		json_object_set_new(t->expect, key, e);
	}
	json_object_set_new(e, "at", json_integer((json_int_t)time_mono_ms()));
	json_object_set_new(json_object_get(e, "names"), name, json_string(op));
	pthread_mutex_unlock(&t->mu);
}

static void expect_forget(struct tasks_ctl *t, const char *key)
{
	pthread_mutex_lock(&t->mu);
	json_object_del(t->expect, key);
	pthread_mutex_unlock(&t->mu);
}

/* Whether the Task cache shows every create and delete issued for
 * Deployment key (in namespace ns); drops those it shows. */
static bool expect_satisfied(struct tasks_ctl *t, const char *key, const char *ns)
{
	pthread_mutex_lock(&t->mu);
	json_t *e = json_object_get(t->expect, key);
	json_t *names = json_object_get(e, "names");
	const char *name;
	json_t *op, *tmp;
	json_object_foreach_safe(names, tmp, name, op)
	{
		_cleanup_free_ char *tk = xasprintf("%s/%s", ns, name);
		_cleanup_json_ json_t *task = informer_get(t->tasks, tk);
		bool seen = streq(json_string_value(op), "add")
		                ? task != NULL
		                : !task || json_object_get(api_obj_meta(task), "deletionTimestamp");
		if (seen)
			json_object_del(names, name);
	}
	bool ok = json_object_size(names) == 0;
	if (!ok &&
	    time_mono_ms() - json_integer_value(json_object_get(e, "at")) > EXPECT_TIMEOUT_MS) {
		log_warn("tasks: %s: %zu create(s)/delete(s) not seen in %d s; looking again", key,
		         json_object_size(names), EXPECT_TIMEOUT_MS / 1000);
		ok = true;
	}
	if (ok && e)
		json_object_del(t->expect, key);
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* ---- reading ------------------------------------------------------------ */

static bool owned_by(json_t *task, const char *uid)
{
	size_t i;
	json_t *ref;
	json_array_foreach(json_object_get(api_obj_meta(task), "ownerReferences"), i, ref)
	{
		if (json_is_true(json_object_get(ref, "controller")))
			return streq(json_string_value(json_object_get(ref, "uid")), uid);
	}
	return false;
}

/* The Deployment's Tasks (new array of new references), from the cache:
 * those its selector matches that it controls. */
static int list_owned(struct tasks_ctl *t, json_t *d, json_t **out, struct kerr *err)
{
	struct api_selector *sel = NULL;
	if (api_selector_from_json(json_object_get(json_object_get(d, "spec"), "selector"), &sel,
	                           err) < 0)
		return kerr_prefix(err, "spec.selector");
	_cleanup_json_ json_t *all =
	    informer_by_index(t->tasks, INFORMER_INDEX_OWNER, api_obj_uid(d));
	json_t *owned = json_array();
	size_t i;
	json_t *task;
	json_array_foreach(all, i, task)
	{
		if (streq(api_obj_namespace(task), api_obj_namespace(d)) &&
		    owned_by(task, api_obj_uid(d)) && api_selector_match(sel, api_obj_labels(task)))
			json_array_append(owned, task);
	}
	api_selector_free(sel);
	*out = owned;
	return 0;
}

static const char *task_phase(json_t *task)
{
	return json_string_value(json_object_get(json_object_get(task, "status"), "phase"));
}

static bool task_ready(json_t *task)
{
	return json_is_true(json_object_get(json_object_get(task, "status"), "ready"));
}

static const char *task_hash(json_t *task)
{
	return json_string_value(json_object_get(api_obj_labels(task), ROLLOUT_HASH_LABEL));
}

static bool is_terminated(json_t *task)
{
	const char *p = task_phase(task);
	return streq(p, "Failed") || streq(p, "Succeeded");
}

/* ---- writing Tasks ------------------------------------------------------ */

static uint64_t random64(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint64_t)time_mono_ns() * 6364136223846793005ULL;
	return v;
}

/* A copy of obj (an object or absent), as a new object. */
static json_t *object_copy(json_t *obj)
{
	return json_is_object(obj) ? json_deep_copy(obj) : json_object();
}

static json_t *task_object(struct observed *o)
{
	json_t *tmpl = json_object_get(json_object_get(o->deploy, "spec"), "template");
	json_t *tm = json_object_get(tmpl, "metadata");
	json_t *labels = object_copy(json_object_get(tm, "labels"));
	json_object_set_new(labels, ROLLOUT_HASH_LABEL, json_string(o->hash));
	json_t *ann = object_copy(json_object_get(tm, "annotations"));
	json_object_set_new(ann, ROLLOUT_REVISION_ANNOTATION, json_sprintf("%ld", o->revision));
	char suffix[ROLLOUT_SUFFIX_LEN + 1];
	rollout_name_suffix(random64(), suffix);
	/* a long Deployment name is cut so that the Task's still fits */
	int room = MAX_TASK_NAME - ROLLOUT_HASH_LEN - ROLLOUT_SUFFIX_LEN - 2;
	_cleanup_free_ char *name = xasprintf("%.*s-%s-%s", room, o->name, o->hash, suffix);
	json_t *owner = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b}", "apiVersion", "keel/v1", "kind",
	                          "Deployment", "name", o->name, "uid", api_obj_uid(o->deploy),
	                          "controller", 1, "blockOwnerDeletion", 1);
	return json_pack("{s:s,s:s,s:{s:s,s:s,s:o,s:o,s:[o]},s:O}", "apiVersion", "keel/v1", "kind",
	                 "Task", "metadata", "name", name, "namespace", o->ns, "labels", labels,
	                 "annotations", ann, "ownerReferences", owner, "spec",
	                 json_object_get(tmpl, "spec"));
}

struct create_job {
	struct tasks_ctl *t;
	struct observed *o;
	int r;
	struct kerr err;
	char *name; /* of the Task created, owned */
};

static void create_one(struct client *c, void *arg)
{
	struct create_job *j = arg;
	j->r = -EEXIST;
	for (int attempt = 0; attempt < 3 && j->r == -EEXIST; attempt++) {
		_cleanup_json_ json_t *task = task_object(j->o);
		kerr_clear(&j->err);
		j->r = c ? client_create(c, j->t->ktask, j->o->ns, task, NULL, NULL, &j->err)
		         : kerr_set(&j->err, EINVAL, "no client");
		if (j->r >= 0)
			j->name = xstrdup(api_obj_name(task));
	}
}

/* Creates n Tasks in slow-start batches (1, 2, 4, ...) on the pool; stops
 * at the first batch with a failure. o->counts are not touched (step
 * does). */
static int create_tasks(struct tasks_ctl *t, struct observed *o, long n, struct kerr *err)
{
	long done = 0, batch = 1;
	while (done < n) {
		long k = n - done < batch ? n - done : batch;
		_cleanup_free_ struct create_job *jobs = xcalloc((size_t)k, sizeof(*jobs));
		for (long i = 0; i < k; i++) {
			jobs[i] = (struct create_job){.t = t, .o = o, .err = KERR_INIT};
			client_pool_submit(t->pool, create_one, &jobs[i]);
		}
		client_pool_wait(t->pool);
		int r = 0;
		for (long i = 0; i < k; i++) {
			if (jobs[i].name) {
				expect(t, o->key, jobs[i].name, "add");
				o->acted = true;
				free(jobs[i].name);
			} else if (r == 0) {
				r = jobs[i].r;
				kerr_move(err, &jobs[i].err);
			}
			kerr_clear(&jobs[i].err);
		}
		if (r < 0)
			return kerr_prefix(err, "creating a task");
		done += k;
		batch *= 2;
	}
	return 0;
}

enum pick { PICK_ANY, PICK_READY, PICK_UNREADY };

/* Deletes up to n Tasks of arr that match pick, in rollout_victim_cmp
 * order. *ready_deleted (may be NULL) counts the ready ones. */
static int delete_some(struct tasks_ctl *t, struct client *c, struct observed *o, json_t *arr,
                       long n, enum pick pick, long *ready_deleted, struct kerr *err)
{
	size_t cnt = json_array_size(arr), nv = 0;
	if (n <= 0 || cnt == 0)
		return 0;
	_cleanup_free_ struct rollout_victim *v = xcalloc(cnt, sizeof(*v));
	for (size_t i = 0; i < cnt; i++) {
		json_t *task = json_array_get(arr, i);
		bool ready = task_ready(task);
		if ((pick == PICK_READY && !ready) || (pick == PICK_UNREADY && ready))
			continue;
		json_t *ts = json_object_get(api_obj_meta(task), "creationTimestamp");
		v[nv++] = (struct rollout_victim){
		    .name = api_obj_name(task),
		    .scheduled = json_string_value(json_object_get(json_object_get(task, "spec"),
		                                                   "nodeName")) != NULL,
		    .phase_rank = rollout_phase_rank(task_phase(task)),
		    .ready = ready,
		    .created = json_is_string(ts) ? time_parse_rfc3339(json_string_value(ts)) : 0,
		    .index = i};
	}
	qsort(v, nv, sizeof(*v), rollout_victim_cmp);
	for (size_t i = 0; i < nv && (long)i < n; i++) {
		int r = client_delete(c, t->ktask, o->ns, v[i].name, NULL, NULL, err);
		if (r < 0 && r != -ENOENT)
			return kerr_prefix(err, "deleting task %s", v[i].name);
		kerr_clear(err);
		expect(t, o->key, v[i].name, "del");
		o->acted = true;
		if (v[i].ready && ready_deleted)
			(*ready_deleted)++;
	}
	return 0;
}

/* Deletes terminated Tasks (they are replaced by the step that follows)
 * and sorts the live ones into o->new_tasks / o->old_tasks. */
static int sort_tasks(struct tasks_ctl *t, struct client *c, struct observed *o, json_t *tasks,
                      struct kerr *err)
{
	size_t i;
	json_t *task;
	json_array_foreach(tasks, i, task)
	{
		if (json_object_get(api_obj_meta(task), "deletionTimestamp"))
			continue;
		if (is_terminated(task)) {
			json_t *st = json_object_get(task, "status");
			const char *why = json_string_value(json_object_get(st, "reason"));
			int r =
			    client_delete(c, t->ktask, o->ns, api_obj_name(task), NULL, NULL, err);
			if (r < 0 && r != -ENOENT)
				return kerr_prefix(err, "deleting task %s", api_obj_name(task));
			kerr_clear(err);
			expect(t, o->key, api_obj_name(task), "del");
			o->acted = true;
			controller_event(t->env, o->deploy, "Warning", "ReplacingTask",
			                 "Task %s %s%s%s%s: replacing it", api_obj_name(task),
			                 task_phase(task), why ? " (" : "", why ? why : "",
			                 why ? ")" : "");
			continue;
		}
		bool cur = streq(task_hash(task), o->hash);
		json_array_append(cur ? o->new_tasks : o->old_tasks, task);
		long *total = cur ? &o->counts.new_total : &o->counts.old_total;
		long *ready = cur ? &o->counts.new_ready : &o->counts.old_ready;
		(*total)++;
		if (task_ready(task))
			(*ready)++;
	}
	return 0;
}

/* ---- revision history ----------------------------------------------------- */

static const char *annotation(json_t *obj, const char *key)
{
	return json_string_value(
	    json_object_get(json_object_get(api_obj_meta(obj), "annotations"), key));
}

/* Makes the current template the Deployment's current revision. */
static int record_revision(struct tasks_ctl *t, struct client *c, struct observed *o,
                           struct kerr *err)
{
	json_t *spec = json_object_get(o->deploy, "spec");
	json_t *tmpl = json_object_get(spec, "template");
	json_t *jl = json_object_get(spec, "revisionHistoryLimit");
	long limit = json_is_integer(jl) ? (long)json_integer_value(jl) : 10;
	rollout_template_hash(tmpl, o->hash);
	_cleanup_json_ json_t *h =
	    rollout_history_parse(annotation(o->deploy, ROLLOUT_HISTORY_ANNOTATION));
	bool changed = false;
	o->revision = rollout_history_record(h, o->hash, tmpl, limit, &changed);
	char rev[32];
	snprintf(rev, sizeof(rev), "%ld", o->revision);
	if (!changed && streq(annotation(o->deploy, ROLLOUT_REVISION_ANNOTATION), rev))
		return 0;
	o->new_revision = changed;
	_cleanup_free_ char *text = json_dumps(h, JSON_COMPACT);
	_cleanup_json_ json_t *patch =
	    json_pack("{s:{s:{s:s,s:s}}}", "metadata", "annotations", ROLLOUT_HISTORY_ANNOTATION,
	              text, ROLLOUT_REVISION_ANNOTATION, rev);
	struct client_query q = {.field_manager = "keel-tasks"};
	if (client_patch(c, t->kdeploy, o->ns, o->name, patch, &q, NULL, err) < 0)
		return kerr_prefix(err, "recording revision %ld", o->revision);
	if (changed && o->revision > 1)
		controller_event(
		    t->env, o->deploy, "Normal", "NewRevision",
		    "Rolling out revision %ld (image %s)", o->revision,
		    json_string_value(json_object_get(json_object_get(tmpl, "spec"), "image")));
	return 0;
}

/* ---- one step ------------------------------------------------------------ */

static bool is_recreate(json_t *spec)
{
	return streq(json_string_value(json_object_get(json_object_get(spec, "strategy"), "type")),
	             "Recreate");
}

/* Plans and issues one step; updates o->counts to what it leaves. */
static int step(struct tasks_ctl *t, struct client *c, struct observed *o, struct kerr *err)
{
	json_t *spec = json_object_get(o->deploy, "spec");
	struct rollout_step st;
	if (is_recreate(spec))
		rollout_plan_recreate(&o->counts, &st);
	else
		rollout_plan(&o->counts, o->surge, o->unavailable, &st);
	struct rollout_counts *k = &o->counts;
	long before_new = k->new_total, before_old = k->old_total, ready_gone = 0;
	int r = create_tasks(t, o, st.create, err);
	if (r >= 0)
		r = delete_some(t, c, o, o->new_tasks, st.delete_new, PICK_ANY, &ready_gone, err);
	if (r >= 0)
		r = delete_some(t, c, o, o->old_tasks, st.delete_old_unready, PICK_UNREADY, NULL,
		                err);
	if (r >= 0)
		r = delete_some(t, c, o, o->old_tasks, st.delete_old_ready, PICK_READY, NULL, err);
	if (r < 0)
		return r;
	k->new_total += st.create - st.delete_new;
	k->new_ready -= ready_gone;
	k->old_total -= st.delete_old_unready + st.delete_old_ready;
	k->old_ready -= st.delete_old_ready;
	if (k->new_total > before_new)
		controller_event(t->env, o->deploy, "Normal", "ScaledUp",
		                 "Scaled up revision %ld to %ld task%s", o->revision, k->new_total,
		                 k->new_total == 1 ? "" : "s");
	else if (k->new_total < before_new)
		controller_event(t->env, o->deploy, "Normal", "ScaledDown",
		                 "Scaled down revision %ld to %ld task%s", o->revision,
		                 k->new_total, k->new_total == 1 ? "" : "s");
	if (k->old_total < before_old)
		controller_event(t->env, o->deploy, "Normal", "ScaledDown",
		                 "Scaled down older revisions to %ld task%s", k->old_total,
		                 k->old_total == 1 ? "" : "s");
	return 0;
}

/* ---- status ------------------------------------------------------------- */

static json_t *find_condition(json_t *status, const char *type)
{
	size_t i;
	json_t *cond;
	json_array_foreach(json_object_get(status, "conditions"), i, cond)
	{
		if (streq(json_string_value(json_object_get(cond, "type")), type))
			return cond;
	}
	return NULL;
}

/* The condition type as it should be now: the old one when nothing about
 * it changed (and !touch), else a new one; lastTransitionTime moves only
 * when the status does. New reference. */
static json_t *condition(json_t *old, const char *type, const char *status, const char *reason,
                         const char *message, bool touch, const char *now)
{
	const char *os = json_string_value(json_object_get(old, "status"));
	if (old && !touch && streq(os, status) &&
	    streq(json_string_value(json_object_get(old, "reason")), reason) &&
	    streq(json_string_value(json_object_get(old, "message")), message))
		return json_incref(old);
	json_t *lt = json_object_get(old, "lastTransitionTime");
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", type, "status", status, "reason",
	                 reason, "message", message, "lastUpdateTime", now, "lastTransitionTime",
	                 streq(os, status) && json_is_string(lt) ? json_string_value(lt) : now);
}

static long ival(json_t *o, const char *k)
{
	return (long)json_integer_value(json_object_get(o, k));
}

/* Whether this reconcile saw progress since the status was written. */
static bool progressed(struct observed *o, json_t *old)
{
	const struct rollout_counts *k = &o->counts;
	long ready = k->new_ready + k->old_ready;
	return o->acted || o->new_revision || ival(old, "updatedReplicas") != k->new_total ||
	       ival(old, "readyReplicas") != ready ||
	       ival(old, "replicas") != k->new_total + k->old_total ||
	       ival(old, "observedGeneration") != api_obj_generation(o->deploy);
}

/* The Progressing condition; *requeue_ms gets when to look again for the
 * deadline (0: no need). */
static json_t *progressing(struct tasks_ctl *t, struct observed *o, json_t *old_status,
                           const char *now, long *requeue_ms)
{
	json_t *spec = json_object_get(o->deploy, "spec");
	json_t *old = find_condition(old_status, "Progressing");
	const char *old_reason = json_string_value(json_object_get(old, "reason"));
	_cleanup_free_ char *m_ok =
	    xasprintf("Deployment \"%s\" has successfully progressed.", o->name);
	_cleanup_free_ char *m_prog = xasprintf("Deployment \"%s\" is progressing.", o->name);
	*requeue_ms = 0;
	if (json_is_true(json_object_get(spec, "paused")))
		return condition(old, "Progressing", "Unknown", "DeploymentPaused",
		                 "Deployment is paused", false, now);
	if (rollout_complete(&o->counts)) {
		if (!streq(old_reason, "NewTemplateAvailable"))
			controller_event(t->env, o->deploy, "Normal", "RolloutComplete",
			                 "Revision %ld is available: %ld of %ld task%s ready",
			                 o->revision, o->counts.new_ready, o->counts.replicas,
			                 o->counts.replicas == 1 ? "" : "s");
		return condition(old, "Progressing", "True", "NewTemplateAvailable", m_ok, false,
		                 now);
	}
	if (!old || o->new_revision)
		return condition(old, "Progressing", "True", "NewTasksCreated", m_prog, true, now);
	if (progressed(o, old_status))
		return condition(old, "Progressing", "True", "TasksUpdated", m_prog, true, now);
	if (streq(old_reason, "ProgressDeadlineExceeded"))
		return json_incref(old);
	json_t *pd = json_object_get(spec, "progressDeadlineSeconds");
	int64_t deadline = json_is_integer(pd) ? json_integer_value(pd) : 600;
	int64_t last =
	    time_parse_rfc3339(json_string_value(json_object_get(old, "lastUpdateTime")));
	int64_t left = last < 0 ? 0 : last + deadline - time_now_unix();
	if (left > 0) {
		*requeue_ms = left * 1000 + 200;
		return json_incref(old);
	}
	controller_event(t->env, o->deploy, "Warning", "ProgressDeadlineExceeded",
	                 "Revision %ld made no progress for %lld s", o->revision,
	                 (long long)deadline);
	_cleanup_free_ char *m_dl =
	    xasprintf("Deployment \"%s\" has exceeded its progress deadline", o->name);
	return condition(old, "Progressing", "False", "ProgressDeadlineExceeded", m_dl, true, now);
}

static json_t *build_status(struct tasks_ctl *t, struct observed *o, json_t *old, long *requeue_ms)
{
	const struct rollout_counts *k = &o->counts;
	char now[32];
	time_rfc3339(now, sizeof(now), time_now_unix());
	long ready = k->new_ready + k->old_ready;
	bool avail = ready >= k->replicas - o->unavailable;
	json_t *conds = json_array();
	json_array_append_new(
	    conds,
	    condition(find_condition(old, "Available"), "Available", avail ? "True" : "False",
	              avail ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
	              avail ? "Deployment has minimum availability."
	                    : "Deployment does not have minimum availability.",
	              false, now));
	json_array_append_new(conds, progressing(t, o, old, now, requeue_ms));
	long unavail = k->replicas - ready;
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "observedGeneration",
	                 (json_int_t)api_obj_generation(o->deploy), "replicas",
	                 (json_int_t)(k->new_total + k->old_total), "updatedReplicas",
	                 (json_int_t)k->new_total, "readyReplicas", (json_int_t)ready,
	                 "availableReplicas", (json_int_t)ready, "unavailableReplicas",
	                 (json_int_t)(unavail > 0 ? unavail : 0), "conditions", conds);
}

static int write_status(struct tasks_ctl *t, struct client *c, struct observed *o, long *requeue_ms,
                        struct kerr *err)
{
	json_t *old = json_object_get(o->deploy, "status");
	_cleanup_json_ json_t *st = build_status(t, o, old, requeue_ms);
	if (json_equal(st, old))
		return 0;
	_cleanup_json_ json_t *patch = json_pack("{s:O}", "status", st);
	if (client_patch_status(c, t->kdeploy, o->ns, o->name, patch, NULL, NULL, err) < 0)
		return kerr_prefix(err, "writing status");
	return 0;
}

/* ---- reconcile ----------------------------------------------------------- */

static int load_limits(struct observed *o, struct kerr *err)
{
	json_t *spec = json_object_get(o->deploy, "spec");
	json_t *ru = json_object_get(json_object_get(spec, "strategy"), "rollingUpdate");
	json_t *jr = json_object_get(spec, "replicas");
	o->counts.replicas = json_is_integer(jr) ? (long)json_integer_value(jr) : 1;
	if (is_recreate(spec)) {
		o->surge = 0;
		o->unavailable = o->counts.replicas;
		return 0;
	}
	if (rollout_limits(o->counts.replicas, json_object_get(ru, "maxSurge"),
	                   json_object_get(ru, "maxUnavailable"), &o->surge, &o->unavailable,
	                   err) < 0)
		return kerr_prefix(err, "spec.strategy.rollingUpdate");
	return 0;
}

static int reconcile_deployment(struct tasks_ctl *t, struct client *c, struct observed *o,
                                struct kerr *err)
{
	int r = record_revision(t, c, o, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *tasks = NULL;
	r = list_owned(t, o->deploy, &tasks, err);
	if (r >= 0)
		r = load_limits(o, err);
	if (r >= 0)
		r = sort_tasks(t, c, o, tasks, err);
	if (r >= 0 && !json_is_true(json_object_get(json_object_get(o->deploy, "spec"), "paused")))
		r = step(t, c, o, err);
	long requeue_ms = 0;
	/* the status is written even after a failed step: it says what is there */
	struct kerr serr = KERR_INIT;
	int sr = write_status(t, c, o, &requeue_ms, r < 0 ? &serr : err);
	kerr_clear(&serr);
	if (r < 0)
		return r;
	if (sr < 0)
		return sr;
	return requeue_ms > 0 ? (int)(requeue_ms > 3600000 ? 3600000 : requeue_ms) : 0;
}

static int tasks_reconcile(void *state, struct client *c, const char *key, struct kerr *err)
{
	struct tasks_ctl *t = state;
	const char *slash = strchr(key, '/');
	if (!slash)
		return 0; /* not a namespaced key: nothing of ours */
	_cleanup_free_ char *ns = xstrndup(key, (size_t)(slash - key));
	const char *name = slash + 1;
	_cleanup_json_ json_t *d = NULL;
	int r = client_get(c, t->kdeploy, ns, name, &d, err);
	if (r == -ENOENT) {
		kerr_clear(err);
		expect_forget(t, key);
		return 0; /* deleted: the garbage collector removes its Tasks */
	}
	if (r < 0)
		return kerr_prefix(err, "reading deployment");
	if (json_object_get(api_obj_meta(d), "deletionTimestamp"))
		return 0;
	if (!expect_satisfied(t, key, ns))
		return 1000; /* the cache is behind our own writes: their events queue us */
	_cleanup_json_ json_t *new_tasks = json_array();
	_cleanup_json_ json_t *old_tasks = json_array();
	struct observed o = {.deploy = d,
	                     .key = key,
	                     .ns = ns,
	                     .name = name,
	                     .new_tasks = new_tasks,
	                     .old_tasks = old_tasks};
	return reconcile_deployment(t, c, &o, err);
}

const struct controller_def controller_tasks = {
    .name = "tasks",
    .workers = 2,
    .setup = tasks_setup,
    .reconcile = tasks_reconcile,
    .teardown = tasks_teardown,
};
