/*
 * runtime_sim — simulated containers for scale tests of the control plane
 * (`keel agent --runtime sim --simulate N`). Nothing runs: a container is
 * a record whose state is a function of time — Created until start_delay
 * has passed, then Running, and for the injected fraction of failures
 * Exited(1) run_ms later. Computing state lazily means an idle sim costs
 * nothing: no timers, no threads. One instance serves many nodes; list()
 * filters by node. The containers are indexed by id, by node and by Task
 * uid, so one agent simulating 1,000 nodes with 10 containers each does
 * not scan all 10,000 per node per round (list), per start (the previous
 * attempts) or per stop, stats and exec (find). Stats are the task's
 * requests, so the scheduler sees plausible usage. Health checks are not
 * run against simulated tasks (ops.simulated): they pass, as everything a
 * sim task does succeeds unless failure injection picked it.
 *
 * Thread-safety: every operation takes the instance mutex, so logs() and
 * exec() may run on other threads as runtime.h allows.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/runtime.h"
#include "api/quantity.h"
#include "common/kerr.h"
#include "common/util.h"

struct sim_ctr {
	char *id, *uid, *ns, *name, *node, *spec_hash;
	unsigned attempt;
	int64_t created_ms; /* monotonic */
	int64_t created_unix;
	bool fails;         /* failure injection picked this one */
	int64_t stopped_ms; /* 0: not stopped */
	int stop_code;
	int64_t cpu_milli, mem_bytes;
};

struct rt_sim {
	struct runtime base;
	pthread_mutex_t mu;
	struct rt_sim_options o;
	uint64_t rng;
	uint64_t next_id;
	struct sim_ctr *c; /* unordered: a removal moves the last one in its place */
	size_t n, cap;
	json_t *by_id;   /* id -> index in c */
	json_t *by_node; /* node -> [id, ...] */
	json_t *by_uid;  /* Task uid -> [id, ...] */
};

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: good enough to pick which tasks fail */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static struct sim_ctr *find(struct rt_sim *s, const char *id)
{
	json_t *ix = id ? json_object_get(s->by_id, id) : NULL;
	return ix ? &s->c[json_integer_value(ix)] : NULL;
}

/* Appends id to map[key]'s list. */
static void list_add(json_t *map, const char *key, const char *id)
{
	json_t *l = json_object_get(map, key);
	if (!l) {
		l = json_array();
		json_object_set_new(map, key, l);
	}
	json_array_append_new(l, json_string(id));
}

/* Removes id from map[key]'s list, and the list when it empties. */
static void list_del(json_t *map, const char *key, const char *id)
{
	json_t *l = json_object_get(map, key);
	size_t n = json_array_size(l);
	for (size_t i = 0; i < n; i++) {
		if (streq(json_string_value(json_array_get(l, i)), id)) {
			json_array_remove(l, i);
			break;
		}
	}
	if (l && json_array_size(l) == 0)
		json_object_del(map, key);
}

/* State of c at now; fills *exit_code and *finished (mono ms) when exited. */
static enum rt_state ctr_state(const struct rt_sim *s, const struct sim_ctr *c, int64_t now,
                               int *exit_code, int64_t *finished)
{
	int64_t run_at = c->created_ms + s->o.start_delay_ms;
	int64_t fail_at = run_at + (s->o.run_ms > 0 ? s->o.run_ms : 1000);
	if (c->fails && now >= fail_at && (!c->stopped_ms || c->stopped_ms > fail_at)) {
		*exit_code = 1;
		*finished = fail_at;
		return RT_EXITED;
	}
	if (c->stopped_ms) {
		*exit_code = c->stop_code;
		*finished = c->stopped_ms;
		return RT_EXITED;
	}
	return now >= run_at ? RT_RUNNING : RT_CREATED;
}

static void fill_status(const struct rt_sim *s, const struct sim_ctr *c, struct rt_status *st)
{
	int64_t now = time_mono_ms(), fin = 0;
	int code = 0;
	memset(st, 0, sizeof(*st));
	st->id = xstrdup(c->id);
	st->task_uid = xstrdup(c->uid);
	st->ns = xstrdup(c->ns);
	st->name = xstrdup(c->name);
	st->attempt = c->attempt;
	st->state = ctr_state(s, c, now, &code, &fin);
	int64_t base = c->created_unix - c->created_ms / 1000;
	if (st->state != RT_CREATED)
		st->started_at = c->created_unix + s->o.start_delay_ms / 1000;
	if (st->state == RT_EXITED) {
		st->exit_code = code;
		st->finished_at = base + fin / 1000;
		st->reason = xstrdup(code == 0 ? "Completed" : code == 137 ? "Killed" : "Error");
		if (code == 1)
			st->message = xstrdup("simulated failure (--sim-fail-fraction)");
	}
	st->ip = xstrdup("127.0.0.1");
	st->spec_hash = c->spec_hash ? xstrdup(c->spec_hash) : NULL;
}

static void ctr_free(struct sim_ctr *c)
{
	free(c->id);
	free(c->uid);
	free(c->ns);
	free(c->name);
	free(c->node);
	free(c->spec_hash);
}

/* With s->mu held: forgets s->c[i] (its indexes too) and moves the last
 * container into its place. */
static void ctr_drop(struct rt_sim *s, size_t i)
{
	struct sim_ctr *c = &s->c[i];
	list_del(s->by_node, c->node, c->id);
	list_del(s->by_uid, c->uid, c->id);
	json_object_del(s->by_id, c->id);
	ctr_free(c);
	if (i != --s->n) {
		*c = s->c[s->n];
		json_object_set_new(s->by_id, c->id, json_integer((json_int_t)i));
	}
}

static void requests_of(json_t *spec, int64_t *cpu, int64_t *mem)
{
	json_t *res = json_object_get(spec, "resources");
	json_t *req = json_object_get(res, "requests");
	json_t *lim = json_object_get(res, "limits");
	*cpu = 0, *mem = 0;
	json_t *c =
	    json_object_get(req, "cpu") ? json_object_get(req, "cpu") : json_object_get(lim, "cpu");
	json_t *m = json_object_get(req, "memory") ? json_object_get(req, "memory")
	                                           : json_object_get(lim, "memory");
	if (c)
		(void)api_quantity_cpu(c, cpu, NULL);
	if (m)
		(void)api_quantity_memory(m, mem, NULL);
}

static int sim_start(struct runtime *rt, const struct rt_task *t, char **id, struct kerr *err)
{
	(void)err;
	struct rt_sim *s = (struct rt_sim *)rt;
	pthread_mutex_lock(&s->mu);
	/* keep attempt N-1 only, as docker does (a copy: dropping edits the list) */
	_cleanup_json_ json_t *prev = json_copy(json_object_get(s->by_uid, t->uid ? t->uid : ""));
	size_t k;
	json_t *pid;
	json_array_foreach(prev, k, pid)
	{
		json_t *ix = json_object_get(s->by_id, json_string_value(pid));
		if (ix && s->c[json_integer_value(ix)].attempt + 1 < t->attempt)
			ctr_drop(s, (size_t)json_integer_value(ix));
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->c = xrealloc(s->c, s->cap * sizeof(*s->c));
	}
	struct sim_ctr *c = &s->c[s->n++];
	memset(c, 0, sizeof(*c));
	c->id = xasprintf("sim-%" PRIu64, ++s->next_id);
	c->uid = xstrdup(t->uid ? t->uid : "");
	c->ns = xstrdup(t->ns);
	c->name = xstrdup(t->name);
	c->node = xstrdup(t->node ? t->node : "");
	c->spec_hash = t->spec_hash ? xstrdup(t->spec_hash) : NULL;
	c->attempt = t->attempt;
	c->created_ms = time_mono_ms();
	c->created_unix = time_now_unix();
	double r = (double)(rng_next(&s->rng) >> 11) / (double)(1ULL << 53);
	c->fails = r < s->o.fail_fraction;
	requests_of(t->spec, &c->cpu_milli, &c->mem_bytes);
	json_object_set_new(s->by_id, c->id, json_integer((json_int_t)(s->n - 1)));
	list_add(s->by_node, c->node, c->id);
	list_add(s->by_uid, c->uid, c->id);
	*id = xstrdup(c->id);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int sim_stop(struct runtime *rt, const char *id, int grace_s, struct kerr *err)
{
	(void)grace_s;
	struct rt_sim *s = (struct rt_sim *)rt;
	int ret = 0;
	pthread_mutex_lock(&s->mu);
	struct sim_ctr *c = find(s, id);
	int code = 0;
	int64_t fin = 0, now = time_mono_ms();
	if (!c)
		ret = kerr_set(err, ENOENT, "no simulated container %s", id);
	else if (ctr_state(s, c, now, &code, &fin) != RT_EXITED) {
		c->stopped_ms = now;
		c->stop_code = 143; /* SIGTERM honoured at once */
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static int sim_remove(struct runtime *rt, const char *id, struct kerr *err)
{
	struct rt_sim *s = (struct rt_sim *)rt;
	int ret = 0;
	pthread_mutex_lock(&s->mu);
	struct sim_ctr *c = find(s, id);
	if (!c)
		ret = kerr_set(err, ENOENT, "no simulated container %s", id);
	else
		ctr_drop(s, (size_t)(c - s->c));
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static int sim_list(struct runtime *rt, const char *node, struct rt_status **out, size_t *n,
                    struct kerr *err)
{
	(void)err;
	struct rt_sim *s = (struct rt_sim *)rt;
	pthread_mutex_lock(&s->mu);
	size_t k = 0;
	json_t *ids = node ? json_object_get(s->by_node, node) : NULL;
	size_t cnt = node ? json_array_size(ids) : s->n;
	struct rt_status *v = xcalloc(cnt ? cnt : 1, sizeof(*v));
	if (!node) {
		for (size_t i = 0; i < s->n; i++)
			fill_status(s, &s->c[i], &v[k++]);
	}
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id)
	{
		struct sim_ctr *c = find(s, json_string_value(id));
		if (c)
			fill_status(s, c, &v[k++]);
	}
	pthread_mutex_unlock(&s->mu);
	*out = v;
	*n = k;
	return 0;
}

static int sim_inspect(struct runtime *rt, const char *id, struct rt_status *out, struct kerr *err)
{
	struct rt_sim *s = (struct rt_sim *)rt;
	int ret = 0;
	pthread_mutex_lock(&s->mu);
	struct sim_ctr *c = find(s, id);
	if (c)
		fill_status(s, c, out);
	else
		ret = kerr_set(err, ENOENT, "no simulated container %s", id);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static int sim_logs(struct runtime *rt, const char *id, const struct rt_log_opts *o, rt_log_fn fn,
                    void *ctx, struct kerr *err)
{
	(void)o;
	struct rt_sim *s = (struct rt_sim *)rt;
	char line[512];
	int ret = 0;
	pthread_mutex_lock(&s->mu);
	struct sim_ctr *c = find(s, id);
	if (c)
		snprintf(line, sizeof line, "simulated task %s/%s (attempt %u) on node %s\n", c->ns,
		         c->name, c->attempt, c->node);
	else
		ret = kerr_set(err, ENOENT, "no simulated container %s", id);
	pthread_mutex_unlock(&s->mu);
	if (ret == 0 && o->tail != 0)
		fn(ctx, line, strlen(line));
	return ret;
}

static int sim_stats(struct runtime *rt, const char *id, struct rt_stats *out, struct kerr *err)
{
	struct rt_sim *s = (struct rt_sim *)rt;
	int ret = 0, code = 0;
	int64_t fin = 0;
	pthread_mutex_lock(&s->mu);
	struct sim_ctr *c = find(s, id);
	if (!c) {
		ret = kerr_set(err, ENOENT, "no simulated container %s", id);
	} else {
		bool running = ctr_state(s, c, time_mono_ms(), &code, &fin) == RT_RUNNING;
		out->cpu_millicores = running ? c->cpu_milli : 0;
		out->memory_bytes = running ? c->mem_bytes : 0;
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static int sim_exec(struct runtime *rt, const char *id, char *const argv[], int timeout_s,
                    int *exit_code, struct kerr *err)
{
	(void)argv, (void)timeout_s;
	struct rt_sim *s = (struct rt_sim *)rt;
	int ret = 0, code = 0;
	int64_t fin = 0;
	pthread_mutex_lock(&s->mu);
	struct sim_ctr *c = find(s, id);
	if (!c)
		ret = kerr_set(err, ENOENT, "no simulated container %s", id);
	else if (ctr_state(s, c, time_mono_ms(), &code, &fin) != RT_RUNNING)
		ret = kerr_set(err, ESRCH, "simulated container %s is not running", id);
	else
		*exit_code = 0;
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static int sim_info(struct runtime *rt, struct rt_info *out, struct kerr *err)
{
	(void)rt, (void)err;
	out->name = xstrdup("sim");
	out->version = xstrdup(KEEL_VERSION);
	out->warning = NULL;
	return 0;
}

static void sim_free(struct runtime *rt)
{
	struct rt_sim *s = (struct rt_sim *)rt;
	for (size_t i = 0; i < s->n; i++)
		ctr_free(&s->c[i]);
	free(s->c);
	json_decref(s->by_id);
	json_decref(s->by_node);
	json_decref(s->by_uid);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static const struct runtime_ops sim_ops = {
    .name = "sim",
    .simulated = true,
    .start = sim_start,
    .stop = sim_stop,
    .remove = sim_remove,
    .list = sim_list,
    .inspect = sim_inspect,
    .logs = sim_logs,
    .stats = sim_stats,
    .exec = sim_exec,
    .info = sim_info,
    .free = sim_free,
};

int rt_sim_new(const struct rt_sim_options *o, struct runtime **out, struct kerr *err)
{
	if (o->fail_fraction < 0 || o->fail_fraction > 1 || o->start_delay_ms < 0 || o->run_ms < 0)
		return kerr_set(err, EINVAL,
		                "sim runtime: fail fraction must be 0..1, delays >= 0");
	struct rt_sim *s = xcalloc(1, sizeof(*s));
	s->base.ops = &sim_ops;
	pthread_mutex_init(&s->mu, NULL);
	s->o = *o;
	s->rng = o->seed ? o->seed : 0x9E3779B97F4A7C15ULL;
	s->by_id = json_object();
	s->by_node = json_object();
	s->by_uid = json_object();
	*out = &s->base;
	return 0;
}
