/*
 * agent_task — the reconcile loop: level-triggered, as a kubelet's. Every
 * wake-up (a watch event) and every second it compares the Tasks bound to
 * each node (the watch cache) with what the runtime reports, and takes one
 * step per Task: start what is missing (unless it ended for good, or its
 * restart backoff has not run out), stop and remove what is no longer
 * wanted, notice exits and decide per restartPolicy, and write the Task's
 * status — only when it changed, so an idle node writes nothing; a
 * round's writes go out in parallel on a client pool (client_pool.h), and
 * the round waits for them before it forgets any Task's state. A
 * container whose recorded spec hash (agent_spec.h) is not its Task's is
 * replaced: stopped, then started anew (reason SpecChanged). Stops go to
 * the stop workers (agent_stops.c), so a grace period blocks nothing here.
 *
 * What must survive an agent restart lives outside the agent: the attempt
 * number and task uid in the runtime's containers, restartCount and the
 * phase in the Task's status. A fresh agent rebuilds its per-task state
 * from those two, adopts what runs and starts no duplicate.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "agent/agent_spec.h"
#include "agent/agent_usage.h"
#include "api/kind.h"
#include "api/quantity.h"
#include "client/client.h"
#include "client/client_pool.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"

#define DEFAULT_GRACE_S 30
#define LAST_LINES      20
#define STATUS_PARALLEL 64 /* status writes in flight per round */
/* why a container was stopped to start the Task's new spec */
#define REASON_SPEC_CHANGED "SpecChanged"

/* Per-task memory of the reconcile thread. */
struct atask {
	char *uid, *ns, *name;
	unsigned attempt;      /* attempt of the current/next container */
	unsigned restarts;     /* status.restartCount */
	unsigned failures;     /* consecutive, for the backoff */
	int64_t next_start_ms; /* monotonic; 0: now */
	int64_t delay_ms;      /* the backoff being waited out */
	bool terminal;         /* Succeeded/Failed: never start again */
	char *handled_id;      /* the exited container already accounted for */
	char *kill_reason;     /* "Unhealthy" when we stopped it for failing checks */
	char *kill_message;
	char *wait_reason, *wait_message; /* ImageNotFound/StartError while waiting */
	json_t *final;                    /* terminal status fields */
	json_t *last_state;               /* lastState */
	json_t *written;                  /* last status written */
	json_t *usage;                    /* status.usage as last accepted, or NULL */
	int64_t usage_cpu, usage_mem;     /* its values; -1 unknown */
	int64_t next_sample_ms;           /* monotonic: a Task without usage is sampled then */
	int grace_s;
	char *spec_hash;     /* agent_spec_hash of the Task's spec ... */
	json_int_t spec_gen; /* ... at this metadata.generation */
	uint64_t seen;       /* tick it was last seen wanted */
};

static void atask_free(struct atask *t)
{
	if (!t)
		return;
	free(t->uid);
	free(t->ns);
	free(t->name);
	free(t->handled_id);
	free(t->kill_reason);
	free(t->kill_message);
	free(t->wait_reason);
	free(t->wait_message);
	free(t->spec_hash);
	json_decref(t->final);
	json_decref(t->last_state);
	json_decref(t->written);
	json_decref(t->usage);
	free(t);
}

static struct atask *atask_get(struct agent *a, const char *uid)
{
	json_t *v = json_object_get(a->tstates, uid);
	return v ? (struct atask *)(intptr_t)json_integer_value(v) : NULL;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? xstrdup(v) : NULL;
}

static json_t *time_json(int64_t t)
{
	char buf[40];
	return t > 0 ? json_string(time_rfc3339(buf, sizeof buf, t)) : json_null();
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
	return json_string_value(json_object_get(json_object_get(o, a), b));
}

static struct atask *atask_new(struct agent *a, json_t *task, const struct rt_status *cur)
{
	struct atask *t = xcalloc(1, sizeof(*t));
	json_t *st = json_object_get(task, "status");
	json_t *spec = json_object_get(task, "spec");
	t->uid = xstrdup(str_at(task, "metadata", "uid"));
	t->ns = xstrdup(str_at(task, "metadata", "namespace"));
	t->name = xstrdup(str_at(task, "metadata", "name"));
	t->usage_cpu = t->usage_mem = -1;
	t->restarts = (unsigned)json_integer_value(json_object_get(st, "restartCount"));
	const char *phase = json_string_value(json_object_get(st, "phase"));
	t->terminal = streq(phase, "Succeeded") || streq(phase, "Failed");
	if (json_is_object(json_object_get(st, "lastState")))
		t->last_state = json_deep_copy(json_object_get(st, "lastState"));
	json_t *g = json_object_get(spec, "terminationGracePeriodSeconds");
	t->grace_s = json_is_integer(g) ? (int)json_integer_value(g) : DEFAULT_GRACE_S;
	t->attempt = cur ? cur->attempt : t->restarts;
	if (t->restarts < t->attempt)
		t->restarts = t->attempt; /* killed before it wrote the restart down */
	if (!cur && !t->terminal && json_string_value(json_object_get(st, "containerID"))) {
		/* it ran before, and its container is gone: a restart */
		t->restarts++;
		t->attempt = t->restarts;
	}
	if (t->terminal) {
		t->final = json_deep_copy(st);
		json_object_del(t->final, "lastState");
	}
	json_object_set_new(a->tstates, t->uid, json_integer((json_int_t)(intptr_t)t));
	return t;
}

static bool differs(json_t *want, json_t *have)
{
	const char *k;
	json_t *v;
	json_object_foreach(want, k, v)
	{
		json_t *h = json_object_get(have, k);
		if (json_is_null(v) ? (h && !json_is_null(h)) : !json_equal(v, h))
			return true;
	}
	return false;
}

struct status_job {
	struct atask *t;
	json_t *patch, *want;
};

/* On a pool thread: one status write. t stays valid: the round waits for
 * its writes (client_pool_wait) before it forgets any Task. */
static void status_run(struct client *c, void *arg)
{
	struct status_job *j = arg;
	struct atask *t = j->t;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int r = c ? client_patch_status(c, api_kind_by_plural("tasks"), t->ns, t->name, j->patch,
	                                NULL, NULL, &err)
	          : kerr_set(&err, EINVAL, "no client");
	if (r < 0) {
		if (r != -ENOENT)
			log_warn("agent: task %s/%s: writing status: %s", t->ns, t->name,
			         kerr_msg(&err));
	} else {
		log_debug("agent: task %s/%s: phase %s%s%s", t->ns, t->name,
		          json_string_value(json_object_get(j->want, "phase")),
		          json_is_string(json_object_get(j->want, "reason")) ? " reason " : "",
		          json_is_string(json_object_get(j->want, "reason"))
		              ? json_string_value(json_object_get(j->want, "reason"))
		              : "");
		json_decref(t->written);
		t->written = json_incref(j->want);
	}
	json_decref(j->patch);
	json_decref(j->want);
	free(j);
}

/* Queues t's status write on the round's pool when want differs from what
 * was last written. Writes of one round go out in parallel (a 1,000-node
 * sim writes thousands at once when a Deployment lands, and one at a
 * time they would each wait for their own commit). */
static void write_status(struct client_pool *pool, struct atask *t, json_t *task, json_t *want)
{
	json_t *have = t->written ? t->written : json_object_get(task, "status");
	if (!differs(want, have))
		return;
	struct status_job *j = xcalloc(1, sizeof(*j));
	*j = (struct status_job){
	    .t = t, .patch = json_pack("{s:O}", "status", want), .want = json_incref(want)};
	client_pool_submit(pool, status_run, j);
}

/* A status with every field this agent owns; null ones are removed by the
 * merge patch. */
static json_t *status_base(struct atask *t, const char *node, const char *phase)
{
	json_t *s = json_object();
	json_object_set_new(s, "phase", json_string(phase));
	json_object_set_new(s, "nodeName", json_string(node));
	json_object_set_new(s, "restartCount", json_integer(t->restarts));
	const char *keys[] = {"reason",   "message",  "containerID", "startedAt", "finishedAt",
	                      "exitCode", "hostIP",   "ports",       "usage"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		json_object_set_new(s, keys[i], json_null());
	json_object_set_new(s, "ready", json_false());
	json_object_set(s, "lastState", t->last_state ? t->last_state : json_null());
	return s;
}

static int tail_cb(void *ctx, const char *data, size_t len)
{
	sbuf_append(ctx, data, len);
	return 0;
}

/* The last LAST_LINES lines of a container's output, or NULL. */
static char *last_lines(struct agent *a, const char *id)
{
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	struct rt_log_opts o = {.follow = false, .tail = LAST_LINES};
	if (a->rt->ops->logs(a->rt, id, &o, tail_cb, &b, NULL) < 0 || b.len == 0)
		return NULL;
	if (b.len > 4096) /* keep the status small: the end of it */
		return xstrdup(b.data + b.len - 4096);
	return sbuf_take(&b);
}

static void handle_exit(struct agent *a, struct atask *t, json_t *spec, const struct rt_status *cur,
                        const char *node)
{
	const char *policy = json_string_value(json_object_get(spec, "restartPolicy"));
	if (!policy)
		policy = "Always";
	const char *reason = t->kill_reason ? t->kill_reason : cur->reason ? cur->reason : "Error";
	const char *msg = t->kill_reason ? t->kill_message : cur->message;
	_cleanup_free_ char *out = last_lines(a, cur->id);
	json_decref(t->last_state);
	t->last_state = json_pack("{s:i, s:s, s:o, s:o}", "exitCode", cur->exit_code, "reason",
	                          reason, "startedAt", time_json(cur->started_at), "finishedAt",
	                          time_json(cur->finished_at));
	if (msg)
		json_object_set_new(t->last_state, "message", json_string(msg));
	if (out)
		json_object_set_new(t->last_state, "output", json_string(out));
	/* replaced for a new spec: started again whatever the policy, at once */
	bool replaced = streq(t->kill_reason, REASON_SPEC_CHANGED);
	bool failed = !replaced && (cur->exit_code != 0 || t->kill_reason);
	bool restart =
	    replaced || streq(policy, "Always") || (streq(policy, "OnFailure") && failed);
	if (replaced) {
		t->next_start_ms = 0;
		t->delay_ms = 0;
		log_info("agent: task %s/%s on %s: old container %s ended (exit %d); starting "
		         "the new spec",
		         t->ns, t->name, node, cur->id, cur->exit_code);
	} else if (!restart) {
		t->terminal = true;
		json_decref(t->final);
		t->final = status_base(t, node, failed ? "Failed" : "Succeeded");
		json_object_set_new(t->final, "reason", json_string(failed ? reason : "Completed"));
		if (msg)
			json_object_set_new(t->final, "message", json_string(msg));
		json_object_set_new(t->final, "containerID", json_string(cur->id));
		json_object_set_new(t->final, "exitCode", json_integer(cur->exit_code));
		json_object_set_new(t->final, "startedAt", time_json(cur->started_at));
		json_object_set_new(t->final, "finishedAt", time_json(cur->finished_at));
		log_info("agent: task %s/%s on %s ended (exit %d): %s", t->ns, t->name, node,
		         cur->exit_code, failed ? "Failed" : "Succeeded");
	} else {
		int64_t ran_ms = (cur->finished_at - cur->started_at) * 1000;
		if (cur->started_at <= 0 || cur->finished_at <= 0)
			ran_ms = 0;
		t->failures = backoff_after_run(&a->bo, t->failures, ran_ms);
		int64_t delay = backoff_delay_ms(&a->bo, t->failures);
		t->next_start_ms = time_mono_ms() + delay;
		t->delay_ms = delay;
		log_info("agent: task %s/%s on %s exited %d (%s); restarting in %lldms", t->ns,
		         t->name, node, cur->exit_code, reason, (long long)delay);
	}
	set_str(&t->handled_id, cur->id);
	set_str(&t->kill_reason, NULL);
	set_str(&t->kill_message, NULL);
}

/* A start failed for a reason that is the Task's own, which the same spec
 * meets again on every attempt: no such image (-ENXIO), no such or no
 * executable command (-ENOEXEC), a spec the runtime refuses (-EINVAL,
 * docker's 400). Anything else (the engine unreachable, no free port, ...)
 * is the node's and passes. */
static bool start_error_is_tasks(int r)
{
	return r == -ENXIO || r == -ENOEXEC || r == -EINVAL;
}

/* For `keel logs` of a Task that has no container: why it has none. */
static void publish_start_error(struct agent *a, struct atask *t, const char *reason,
                                const char *msg)
{
	_cleanup_free_ char *key = xasprintf("%s/%s", t->ns, t->name);
	_cleanup_free_ char *why = xasprintf("%s: %s", reason, msg ? msg : "");
	pthread_mutex_lock(&a->mu);
	json_t *e = json_object_get(a->logs_index, key);
	if (!json_string_value(json_object_get(e, "id")))
		json_object_set_new(a->logs_index, key, json_pack("{s:s}", "notStarted", why));
	pthread_mutex_unlock(&a->mu);
}

/* The bookkeeping of one start of attempt (restart: it is a restart)
 * that returned r, and id or msg: on the reconcile thread, right after
 * the start (inline) or when its job's result is taken (agent_jobs.c). */
static void start_done(struct agent *a, struct atask *t, json_t *spec, const char *node,
                       unsigned attempt, bool restart, int r, const char *id, const char *msg)
{
	if (r < 0) {
		const char *reason = r == -ENXIO ? "ImageNotFound" : "StartError";
		const char *policy = json_string_value(json_object_get(spec, "restartPolicy"));
		if (start_error_is_tasks(r) && streq(policy, "Never")) {
			/* it would fail the same way again: ended, as a kubelet fails
			 * such a pod, rather than retried forever */
			t->terminal = true;
			json_decref(t->final);
			t->final = status_base(t, node, "Failed");
			json_object_set_new(t->final, "reason", json_string(reason));
			json_object_set_new(t->final, "message", json_string(msg));
			json_object_set_new(t->final, "finishedAt", time_json(time_now_unix()));
			set_str(&t->wait_reason, NULL);
			set_str(&t->wait_message, NULL);
			publish_start_error(a, t, reason, msg);
			log_warn("agent: task %s/%s on %s: start failed: %s; Failed (%s, "
			         "restartPolicy Never)",
			         t->ns, t->name, node, msg, reason);
			return;
		}
		t->failures++;
		int64_t delay = backoff_delay_ms(&a->bo, t->failures);
		t->next_start_ms = time_mono_ms() + delay;
		set_str(&t->wait_reason, reason);
		set_str(&t->wait_message, msg);
		publish_start_error(a, t, reason, msg);
		log_warn("agent: task %s/%s: start failed: %s (retrying in %lldms)", t->ns, t->name,
		         msg, (long long)delay);
		return;
	}
	if (restart)
		t->restarts++;
	t->attempt = attempt;
	set_str(&t->wait_reason, NULL);
	set_str(&t->wait_message, NULL);
	log_info("agent: task %s/%s on %s: started %s (attempt %u)", t->ns, t->name, node, id,
	         attempt);
}

/* Starts the Task's next attempt: on a job worker when the runtime is
 * concurrent (start_done runs when the result is taken), else here. */
static void start_attempt(struct agent *a, struct atask *t, json_t *spec, const char *node,
                          bool restart)
{
	unsigned attempt = restart ? t->attempt + 1 : t->attempt;
	struct rt_task rt = {t->uid, t->ns, t->name, node, spec, attempt, t->spec_hash};
	if (agent_jobs_on(a)) {
		(void)agent_jobs_start(a, &rt); /* never busy: reconcile_task looked */
		return;
	}
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_free_ char *id = NULL;
	int r = a->rt->ops->start(a->rt, &rt, &id, &err);
	start_done(a, t, spec, node, attempt, restart, r, id, r < 0 ? kerr_msg(&err) : NULL);
	if (r >= 0)
		a->again = true; /* look again soon: the next list shows it */
}

static void publish_log_id(struct agent *a, struct atask *t, const char *cur)
{
	if (!cur)
		return;
	_cleanup_free_ char *key = xasprintf("%s/%s", t->ns, t->name);
	pthread_mutex_lock(&a->mu);
	json_t *e = json_object_get(a->logs_index, key);
	if (!streq(json_string_value(json_object_get(e, "id")), cur))
		json_object_set_new(a->logs_index, key, json_pack("{s:s}", "id", cur));
	pthread_mutex_unlock(&a->mu);
}

struct ctrs {
	struct rt_status *v;
	size_t n;
};

/* The current container of uid: its highest attempt. Ended older attempts
 * stay (the runtime keeps attempt N-1 for `keel logs --previous` and
 * removes older ones itself); an older attempt still running — only a
 * crash between start and bookkeeping leaves one — is stopped. */
static const struct rt_status *find_current(struct ctrs *cs, const char *uid)
{
	const struct rt_status *cur = NULL;
	for (size_t i = 0; i < cs->n; i++)
		if (streq(cs->v[i].task_uid, uid) && (!cur || cs->v[i].attempt > cur->attempt))
			cur = &cs->v[i];
	return cur;
}

static const struct rt_status *pick_current(struct agent *a, struct ctrs *cs, const char *uid)
{
	const struct rt_status *cur = find_current(cs, uid);
	for (size_t i = 0; cur && i < cs->n; i++) {
		struct rt_status *o = &cs->v[i];
		if (o != cur && streq(o->task_uid, uid) && o->state != RT_EXITED &&
		    agent_stops_queue(a, o->id, 0, false))
			log_warn("agent: task %s: stopping duplicate %s (current is %s)", uid,
			         o->id, cur->id);
	}
	return cur;
}

/* The host port of spec port p in cur, or 0. */
static int host_port_of(const struct rt_status *cur, json_t *p)
{
	json_int_t cport = json_integer_value(json_object_get(p, "containerPort"));
	bool udp = streq(json_string_value(json_object_get(p, "protocol")), "UDP");
	for (size_t i = 0; i < cur->nports; i++)
		if (cur->ports[i].container_port == cport && cur->ports[i].udp == udp)
			return cur->ports[i].host_port;
	return 0;
}

/* status.ports: where each of spec.ports is published on the node. */
static json_t *status_ports(json_t *spec, const struct rt_status *cur)
{
	json_t *out = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(spec, "ports"), i, p)
	{
		int h = host_port_of(cur, p);
		json_t *e = json_pack("{s:O, s:s}", "containerPort",
		                      json_object_get(p, "containerPort"), "protocol",
		                      streq(json_string_value(json_object_get(p, "protocol")), "UDP")
		                          ? "UDP"
		                          : "TCP");
		if (json_is_string(json_object_get(p, "name")))
			json_object_set(e, "name", json_object_get(p, "name"));
		if (h > 0)
			json_object_set_new(e, "hostPort", json_integer(h));
		json_array_append_new(out, e);
	}
	return out;
}

/* The health check as it must run: a process shares the host's network
 * and listens on its host port, not the containerPort the check names. */
static json_t *check_for(json_t *check, json_t *spec, const struct rt_status *cur)
{
	if (!json_is_object(check))
		return NULL;
	json_t *get = json_object_get(check, "httpGet");
	if (!cur->host_network || !json_is_object(get))
		return json_incref(check);
	json_int_t port = json_integer_value(json_object_get(get, "port"));
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(spec, "ports"), i, p)
	{
		int h = host_port_of(cur, p);
		if (json_integer_value(json_object_get(p, "containerPort")) != port || h <= 0 ||
		    h == port)
			continue;
		json_t *c = json_deep_copy(check);
		json_object_set_new(json_object_get(c, "httpGet"), "port", json_integer(h));
		return c;
	}
	return json_incref(check);
}

static json_t *running_status(struct agent *a, struct atask *t, json_t *spec,
                              const struct rt_status *cur, const char *node)
{
	json_t *s = status_base(t, node, cur->state == RT_CREATED ? "Pending" : "Running");
	json_object_set_new(s, "containerID", json_string(cur->id));
	json_object_set_new(s, "startedAt", time_json(cur->started_at));
	if (cur->state == RT_CREATED) {
		json_object_set_new(s, "reason", json_string("ContainerCreating"));
		return s;
	}
	json_object_set_new(s, "hostIP", json_string(a->address));
	if (json_array_size(json_object_get(spec, "ports")))
		json_object_set_new(s, "ports", status_ports(spec, cur));
	if (t->usage)
		json_object_set(s, "usage", t->usage);
	/* simulated tasks pass their checks without them being run */
	json_t *hc = a->rt->ops->simulated ? NULL : json_object_get(spec, "healthCheck");
	_cleanup_json_ json_t *check = check_for(hc, spec, cur);
	struct health_view hv = {0};
	agent_health_sync(a, t->uid, cur->id, cur->ip, check, &hv);
	json_object_set_new(s, "ready", json_boolean(hv.has_check ? hv.ready : true));
	if (hv.unhealthy) {
		set_str(&t->kill_reason, "Unhealthy");
		set_str(&t->kill_message, hv.message ? hv.message : "health check failed");
		log_info("agent: task %s/%s: unhealthy (%s); stopping it", t->ns, t->name,
		         t->kill_message);
		agent_health_drop(a, t->uid);
		(void)agent_stops_queue(a, cur->id, t->grace_s, false);
		json_object_set_new(s, "ready", json_false());
		json_object_set_new(s, "reason", json_string("Unhealthy"));
		json_object_set_new(s, "message", json_string(t->kill_message));
	} else if (hv.has_check && !hv.ready && hv.message) {
		json_object_set_new(s, "message", json_string(hv.message));
	}
	free(hv.message);
	int64_t now_unix = time_now_unix();
	if (cur->started_at > 0 && (now_unix - cur->started_at) * 1000 >= a->bo.reset_ms)
		t->failures = 0;
	return s;
}

static json_t *waiting_status(struct atask *t, const char *node, const struct rt_status *cur)
{
	json_t *s = status_base(t, node, t->wait_reason || !cur ? "Pending" : "Running");
	if (cur)
		json_object_set_new(s, "containerID", json_string(cur->id));
	if (t->wait_reason) {
		json_object_set_new(s, "reason", json_string(t->wait_reason));
		json_object_set_new(s, "message", json_string(t->wait_message));
	} else {
		/* the whole delay, not what is left: the status must not change every tick */
		_cleanup_free_ char *m = xasprintf("back-off %.1fs restarting failed container",
		                                   (double)t->delay_ms / 1000.0);
		json_object_set_new(s, "reason", json_string("CrashLoopBackOff"));
		json_object_set_new(s, "message", json_string(m));
		if (cur)
			json_object_set_new(s, "exitCode", json_integer(cur->exit_code));
	}
	return s;
}

/* The status of a Task whose current container is being stopped so that
 * it can be replaced (reason SpecChanged or Unhealthy); NULL when that
 * stop was not the Task's doing (nothing to write). */
static json_t *stopping_status(struct agent *a, struct atask *t, const struct rt_status *cur,
                               const char *node)
{
	if (!t->kill_reason)
		return NULL;
	json_t *s = status_base(t, node, "Running");
	json_object_set_new(s, "containerID", json_string(cur->id));
	json_object_set_new(s, "startedAt", time_json(cur->started_at));
	json_object_set_new(s, "hostIP", json_string(a->address));
	json_object_set_new(s, "reason", json_string(t->kill_reason));
	if (t->kill_message)
		json_object_set_new(s, "message", json_string(t->kill_message));
	return s;
}

/* cur runs an older spec than its Task's (an edit, maybe while this agent
 * was down): it is stopped, with the grace period, and handle_exit starts
 * the new spec when it has ended. */
static json_t *replace_container(struct agent *a, struct atask *t, const struct rt_status *cur,
                                 const char *node)
{
	_cleanup_free_ char *m =
	    xasprintf("spec changed (generation %" JSON_INTEGER_FORMAT "): replacing container %s",
	              t->spec_gen, cur->id);
	set_str(&t->kill_reason, REASON_SPEC_CHANGED);
	set_str(&t->kill_message, m);
	agent_health_drop(a, t->uid);
	if (agent_stops_queue(a, cur->id, t->grace_s, false))
		log_info("agent: task %s/%s on %s: %s (spec %s, now %s)", t->ns, t->name, node, m,
		         cur->spec_hash, t->spec_hash);
	return stopping_status(a, t, cur, node);
}

static bool runs_other_spec(const struct atask *t, const struct rt_status *cur)
{
	/* a container recorded no hash (an older agent's): adopted as it is */
	return cur && cur->spec_hash && t->spec_hash && !streq(cur->spec_hash, t->spec_hash);
}

/* One step for one wanted Task. Returns the status it should have (owned),
 * or NULL when nothing is to be written. */
static json_t *reconcile_task(struct agent *a, struct atask *t, json_t *spec, struct ctrs *cs,
                              const char *node)
{
	const struct rt_status *cur = pick_current(a, cs, t->uid);
	publish_log_id(a, t, cur ? cur->id : NULL);
	if (agent_jobs_busy(a, t->uid))
		return NULL; /* its start is under way: decided when its result is in */
	if (t->terminal) {
		/* ended for good, or marked so by someone else (the nodes
		 * controller's NodeLost while we were away): nothing may run */
		if (cur && cur->state != RT_EXITED &&
		    agent_stops_queue(a, cur->id, t->grace_s, false)) {
			log_info("agent: task %s/%s is %s: stopping %s", t->ns, t->name,
			         json_string_value(json_object_get(t->final, "phase")), cur->id);
			agent_health_drop(a, t->uid);
		}
		return t->final ? json_incref(t->final) : NULL;
	}
	if (cur && cur->state == RT_EXITED && !streq(t->handled_id, cur->id))
		handle_exit(a, t, spec, cur, node);
	if (t->terminal)
		return json_incref(t->final);
	if (cur && cur->state != RT_EXITED) {
		if (agent_stops_pending(a, cur->id))
			return stopping_status(a, t, cur, node);
		if (runs_other_spec(t, cur))
			return replace_container(a, t, cur, node);
		return running_status(a, t, spec, cur, node);
	}
	agent_health_drop(a, t->uid);
	if (t->next_start_ms && runs_other_spec(t, cur)) {
		/* edited while it waited out a crash loop's back-off: the new spec
		 * may well be the fix, so it starts now, with a fresh back-off */
		log_info("agent: task %s/%s: spec changed during back-off; starting it now", t->ns,
		         t->name);
		t->next_start_ms = 0;
		t->failures = 0;
	}
	if (time_mono_ms() < t->next_start_ms) {
		if (!a->next_wake_ms || t->next_start_ms < a->next_wake_ms)
			a->next_wake_ms = t->next_start_ms;
		return waiting_status(t, node, cur);
	}
	start_attempt(a, t, spec, node, cur != NULL); /* the ended attempt stays, for --previous */
	if (t->terminal)
		return json_incref(t->final);
	if (t->wait_reason)
		return waiting_status(t, node, NULL);
	return NULL;
}

/* A Task the API says has ended (Failed or Succeeded) although this agent
 * did not end it — the nodes controller marks the Tasks of a silent node
 * Failed (NodeLost) — has ended: its status is kept and its container
 * stopped, never restarted. */
static void adopt_terminal(struct atask *t, json_t *task)
{
	json_t *st = json_object_get(task, "status");
	const char *phase = json_string_value(json_object_get(st, "phase"));
	if (t->terminal || (!streq(phase, "Failed") && !streq(phase, "Succeeded")))
		return;
	t->terminal = true;
	json_decref(t->final);
	t->final = json_deep_copy(st);
	json_object_del(t->final, "lastState");
	log_info("agent: task %s/%s was marked %s (%s) by the control plane", t->ns, t->name, phase,
	         json_string_value(json_object_get(st, "reason")) ?: "no reason");
}

/* Containers no wanted Task claims: stop (grace period), then remove. The
 * grace period is the Task's: from the agent's memory, or, for a Task
 * deleted while the agent was down, as the container recorded it. */
static void reap_unwanted(struct agent *a, struct ctrs *cs, json_t *wanted, const char *node)
{
	for (size_t i = 0; i < cs->n; i++) {
		struct rt_status *o = &cs->v[i];
		if (json_object_get(wanted, o->task_uid ? o->task_uid : "") ||
		    agent_stops_pending(a, o->id))
			continue;
		struct atask *t = o->task_uid ? atask_get(a, o->task_uid) : NULL;
		int grace = t ? t->grace_s : o->has_grace ? o->grace_s : DEFAULT_GRACE_S;
		if (o->state != RT_EXITED) {
			/* on a stop worker, which removes it after the grace period */
			if (agent_stops_queue(a, o->id, grace, true))
				log_info("agent: node %s: stopping %s (task %s/%s is gone or bound "
				         "elsewhere)",
				         node, o->id, o->ns ? o->ns : "?", o->name ? o->name : "?");
		} else {
			_cleanup_kerr_ struct kerr err = KERR_INIT;
			if (a->rt->ops->remove(a->rt, o->id, &err) < 0 && err.code != ENOENT)
				log_warn("agent: removing %s: %s", o->id, kerr_msg(&err));
		}
		if (o->ns && o->name) {
			_cleanup_free_ char *key = xasprintf("%s/%s", o->ns, o->name);
			pthread_mutex_lock(&a->mu);
			json_object_del(a->logs_index, key);
			pthread_mutex_unlock(&a->mu);
		}
		if (o->task_uid)
			agent_health_drop(a, o->task_uid);
	}
}

/* The whole host's usage from /proc: for docker, whose stats() takes a
 * second or two per container, too slow to sum in the reconcile loop. */
static void host_usage(int64_t *cpu, int64_t *mem)
{
	static unsigned long long last_busy, last_total; /* reconcile thread only */
	FILE *f = fopen("/proc/stat", "re");
	unsigned long long v[8] = {0};
	if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
	                &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		unsigned long long total = 0, busy;
		for (int i = 0; i < 8; i++)
			total += v[i];
		busy = total - v[3] - v[4];
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		if (last_total && total > last_total)
			*cpu = (int64_t)((double)(busy - last_busy) / (double)(total - last_total) *
			                 (double)(n > 0 ? n : 1) * 1000.0);
		last_busy = busy, last_total = total;
	}
	if (f)
		fclose(f);
	f = fopen("/proc/meminfo", "re");
	long long total_kb = 0, avail_kb = 0, x;
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		if (sscanf(line, "MemTotal: %lld kB", &x) == 1)
			total_kb = x;
		else if (sscanf(line, "MemAvailable: %lld kB", &x) == 1)
			avail_kb = x;
	}
	if (f)
		fclose(f);
	if (total_kb > avail_kb)
		*mem = (total_kb - avail_kb) * 1024;
}

/* One stats call per running container this round ({-1, -1} for the
 * rest): all of them when the node's usage is due, else only those whose
 * Task has no complete usage yet, so that a new Task shows in keel top
 * within seconds rather than a whole status interval later. Owned. With
 * job workers (a concurrent runtime: docker, where a sample takes about a
 * second) the calls are queued instead, all -1 here, and their results
 * taken up next round: fifty of them inline held up every status write
 * for fifty seconds. */
static struct rt_stats *sample_stats(struct agent *a, struct ctrs *cs, bool all)
{
	struct rt_stats *v = xcalloc(cs->n + 1, sizeof(*v));
	int64_t now = time_mono_ms();
	for (size_t i = 0; i < cs->n; i++) {
		v[i] = (struct rt_stats){-1, -1};
		if (cs->v[i].state != RT_RUNNING)
			continue;
		struct atask *t = cs->v[i].task_uid ? atask_get(a, cs->v[i].task_uid) : NULL;
		bool early = t && (!t->usage || t->usage_cpu < 0) && now >= t->next_sample_ms;
		if (!all && !early)
			continue;
		if (t)
			t->next_sample_ms = now + 2000;
		if (agent_jobs_on(a)) /* taken up next round (take_jobs) */
			(void)agent_jobs_stats(a, cs->v[i].id, cs->v[i].task_uid);
		else if (a->rt->ops->stats(a->rt, cs->v[i].id, &v[i], NULL) < 0)
			v[i] = (struct rt_stats){-1, -1};
	}
	return v;
}

/* Takes a sample into t->usage when it moved materially (agent_usage.h);
 * memory is kept to the KiB. */
static void usage_take(struct atask *t, const struct rt_stats *st)
{
	int64_t cpu = st->cpu_millicores, mem = st->memory_bytes;
	if (cpu < 0 && mem < 0)
		return;
	if (mem > 0)
		mem = (mem + 512) / 1024 * 1024;
	if (t->usage && !agent_usage_changed(t->usage_cpu, t->usage_mem, cpu, mem))
		return;
	json_decref(t->usage);
	t->usage = json_object();
	if (cpu >= 0) {
		_cleanup_free_ char *c = api_quantity_format_cpu(cpu);
		json_object_set_new(t->usage, "cpu", json_string(c));
	}
	if (mem >= 0) {
		_cleanup_free_ char *m = api_quantity_format_bytes(mem);
		json_object_set_new(t->usage, "memory", json_string(m));
	}
	t->usage_cpu = cpu;
	t->usage_mem = mem;
}

static void node_usage(struct agent *a, struct ctrs *cs, const struct rt_stats *stv,
                       int64_t *cpu, int64_t *mem)
{
	if (streq(a->info.name, "docker")) {
		host_usage(cpu, mem); /* the host's load, as E-PVM should see it */
		return;
	}
	for (size_t i = 0; i < cs->n; i++) {
		*cpu += stv[i].cpu_millicores > 0 ? stv[i].cpu_millicores : 0;
		*mem += stv[i].memory_bytes > 0 ? stv[i].memory_bytes : 0;
	}
}

/* Keeps the per-task states of tasks for a round that does nothing. */
static void keep_seen(struct agent *a, json_t *tasks, uint64_t tick)
{
	size_t k;
	json_t *tk;
	json_array_foreach(tasks, k, tk)
	{
		const char *uid = str_at(tk, "metadata", "uid");
		struct atask *t = atask_get(a, uid ? uid : "");
		if (t)
			t->seen = tick;
	}
}

static void reconcile_node(struct agent *a, struct client_pool *pool, size_t ni, json_t *tasks,
                           uint64_t tick, bool do_usage)
{
	const char *node = a->nodes[ni].name;
	struct ctrs cs = {0};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	pthread_mutex_lock(&a->mu);
	bool lost = a->nodes[ni].lease_lost;
	pthread_mutex_unlock(&a->mu);
	if (lost) { /* another agent holds the node now: hands off (agent_node.c) */
		keep_seen(a, tasks, tick);
		return;
	}
	if (a->rt->ops->list(a->rt, node, &cs.v, &cs.n, &err) < 0) {
		log_warn("agent: node %s: listing containers: %s", node, kerr_msg(&err));
		keep_seen(a, tasks, tick); /* keep what we know until the runtime answers again */
		return;
	}
	_cleanup_json_ json_t *wanted = json_object();
	_cleanup_free_ struct rt_stats *stv = sample_stats(a, &cs, do_usage);
	size_t i;
	json_t *task;
	json_array_foreach(tasks, i, task)
	{
		const char *uid = str_at(task, "metadata", "uid");
		if (!uid || json_object_get(task, "metadata") == NULL ||
		    json_is_string(
		        json_object_get(json_object_get(task, "metadata"), "deletionTimestamp")))
			continue;
		json_object_set(wanted, uid, task);
		struct atask *t = atask_get(a, uid);
		if (!t)
			t = atask_new(a, task, pick_current(a, &cs, uid));
		t->seen = tick;
		adopt_terminal(t, task);
		json_t *spec = json_object_get(task, "spec");
		json_int_t gen = json_integer_value(
		    json_object_get(json_object_get(task, "metadata"), "generation"));
		if (!t->spec_hash || gen != t->spec_gen) {
			free(t->spec_hash);
			t->spec_hash = agent_spec_hash(spec);
			t->spec_gen = gen;
		}
		json_t *g = json_object_get(spec, "terminationGracePeriodSeconds");
		if (json_is_integer(g))
			t->grace_s = (int)json_integer_value(g);
		const struct rt_status *cur = find_current(&cs, uid);
		if (cur && cur->state == RT_RUNNING)
			usage_take(t, &stv[cur - cs.v]);
		_cleanup_json_ json_t *want = reconcile_task(a, t, spec, &cs, node);
		if (want)
			write_status(pool, t, task, want);
	}
	reap_unwanted(a, &cs, wanted, node);
	if (do_usage) {
		int64_t cpu = 0, mem = 0;
		node_usage(a, &cs, stv, &cpu, &mem);
		pthread_mutex_lock(&a->mu);
		a->nodes[ni].usage_cpu = cpu;
		a->nodes[ni].usage_mem = mem;
		pthread_mutex_unlock(&a->mu);
	}
	rt_status_array_free(cs.v, cs.n);
}

/* The results of the jobs carried out since the last round: a start's
 * bookkeeping (its Task's status is written in this round, from the list
 * taken after this), a sample into its Task's usage. A Task forgotten
 * meanwhile takes nothing up; its container, if one was made, is not
 * wanted and the round reaps it. */
static void take_jobs(struct agent *a)
{
	for (struct agent_job *j = agent_jobs_take(a); j;) {
		struct agent_job *next = j->next;
		struct atask *t = j->uid ? atask_get(a, j->uid) : NULL;
		if (t && j->kind == AGENT_JOB_START)
			start_done(a, t, j->spec, j->node, j->attempt, j->attempt > t->attempt, j->r,
			           j->id, j->msg);
		else if (t && j->kind == AGENT_JOB_STATS)
			usage_take(t, &j->stats);
		agent_job_free(j);
		j = next;
	}
}

/* Task lists per node index, from a snapshot of the cache. */
static json_t *group_by_node(struct agent *a, json_t *snap)
{
	json_t *by = json_array();
	for (size_t i = 0; i < a->nnodes; i++)
		json_array_append_new(by, json_array());
	const char *uid;
	json_t *task;
	json_object_foreach(snap, uid, task)
	{
		const char *node = str_at(task, "spec", "nodeName");
		json_t *idx = node ? json_object_get(a->node_index, node) : NULL;
		if (idx)
			json_array_append(json_array_get(by, (size_t)json_integer_value(idx)),
			                  task);
	}
	return by;
}

static void forget_gone(struct agent *a, uint64_t tick)
{
	const char *uid;
	json_t *v, *tmp;
	json_object_foreach_safe(a->tstates, tmp, uid, v)
	{
		struct atask *t = (struct atask *)(intptr_t)json_integer_value(v);
		if (t->seen == tick)
			continue;
		/* a start error it left for `keel logs` (a container's entry goes
		 * with the container) */
		_cleanup_free_ char *key = xasprintf("%s/%s", t->ns, t->name);
		pthread_mutex_lock(&a->mu);
		json_t *e = json_object_get(a->logs_index, key);
		if (e && !json_object_get(e, "id"))
			json_object_del(a->logs_index, key);
		pthread_mutex_unlock(&a->mu);
		atask_free(t);
		json_object_del(a->tstates, uid);
	}
}

void *agent_reconcile_thread(void *arg)
{
	struct agent *a = arg;
	struct client_opts co = {.server = a->server, .token = a->token, .ca_file = a->ca};
	struct client_pool *pool = NULL;
	if (client_pool_new(&co, STATUS_PARALLEL, &pool, NULL) < 0)
		abort(); /* agent_main checked the URL with the same options */
	uint64_t tick = 0;
	while (!atomic_load(&a->stop)) {
		pthread_mutex_lock(&a->mu);
		if (!a->dirty || !a->synced) {
			/* a tick a second, sooner when a backoff runs out */
			int64_t wait_ms = 1000, now_ms = time_mono_ms();
			if (a->next_wake_ms && a->next_wake_ms - now_ms < wait_ms)
				wait_ms =
				    a->next_wake_ms - now_ms > 0 ? a->next_wake_ms - now_ms + 1 : 0;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (wait_ms % 1000) * 1000000;
			ts.tv_sec += wait_ms / 1000 + ts.tv_nsec / 1000000000;
			ts.tv_nsec %= 1000000000;
			if (wait_ms > 0)
				pthread_cond_timedwait(&a->cond, &a->mu, &ts);
		}
		a->next_wake_ms = 0;
		bool synced = a->synced;
		a->dirty = false;
		_cleanup_json_ json_t *snap = json_copy(a->cache);
		pthread_mutex_unlock(&a->mu);
		if (!synced)
			continue; /* never reap before the first list: the cache is not the truth
			             yet */
		tick++;
		int64_t now = time_mono_ms();
		bool do_usage = now >= a->next_usage_ms;
		if (do_usage)
			a->next_usage_ms = now + a->o->status_ms;
		take_jobs(a); /* before the lists: they show what the starts made */
		_cleanup_json_ json_t *by = group_by_node(a, snap);
		for (size_t i = 0; i < a->nnodes && !atomic_load(&a->stop); i++)
			reconcile_node(a, pool, i, json_array_get(by, i), tick, do_usage);
		client_pool_wait(pool); /* before any Task's state is forgotten */
		forget_gone(a, tick);
		if (a->again) {
			/* just started something: give it a moment, then look again */
			a->again = false;
			struct timespec d = {0, 200 * 1000 * 1000};
			nanosleep(&d, NULL);
			pthread_mutex_lock(&a->mu);
			a->dirty = true;
			pthread_mutex_unlock(&a->mu);
		}
	}
	client_pool_free(pool);
	return NULL;
}

int agent_task_grace_s(struct agent *a, const char *uid)
{
	struct atask *t = uid ? atask_get(a, uid) : NULL;
	return t ? t->grace_s : DEFAULT_GRACE_S;
}

void agent_tasks_free(struct agent *a)
{
	const char *uid;
	json_t *v;
	json_object_foreach(a->tstates, uid, v)
	    atask_free((struct atask *)(intptr_t)json_integer_value(v));
	json_object_clear(a->tstates);
}
