/*
 * agent_jobs — starts and stats samples off the reconcile thread, for a
 * runtime whose start() and stats() may run on several threads at once
 * (runtime_ops.concurrent: docker). A docker create + start takes most of
 * a second and a stats sample about one (the engine answers at its
 * collector's next tick); done one after the other on the reconcile
 * thread, fifty replicas took fifty seconds to start and fifty more before
 * the first status was written, and a restart waited behind them all. So
 * the reconcile thread queues them here and goes on; AGENT_JOB_WORKERS
 * threads carry them out (bounded concurrency, as the stop workers of
 * agent_stops.c), starts first — samples wait until no start is under
 * way, since they cost the engine the cores its starts need — and a
 * finished start wakes the
 * reconcile thread, which takes the results (agent_jobs_take) at the top
 * of its next round, before it lists the containers — so that the list it
 * decides on already shows what the start made, and the Task's status is
 * written in that round.
 *
 * A job is keyed (a start by its Task's uid, a sample by its container's
 * id) and busy from agent_jobs_queue until its result is taken: the
 * reconcile loop, which meets the Task again on every round meanwhile,
 * starts nothing twice and makes no decision on a Task whose start is
 * under way. Jobs hold copies of what they need, never the reconcile
 * thread's per-task state: a Task forgotten meanwhile only leaves a result
 * no one takes up (and, maybe, a container that the next round reaps).
 *
 * Shutdown (agent_jobs_finish, after the reconcile thread has ended):
 * queued jobs are dropped, those under way are waited for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

void agent_job_free(struct agent_job *j)
{
	if (!j)
		return;
	free(j->key);
	free(j->uid);
	free(j->ns);
	free(j->name);
	free(j->node);
	free(j->spec_hash);
	json_decref(j->spec);
	free(j->id);
	free(j->msg);
	free(j);
}

static void run_job(struct agent *a, struct agent_job *j)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (j->kind == AGENT_JOB_START) {
		struct rt_task t = {j->uid,  j->ns,      j->name,     j->node,
		                    j->spec, j->attempt, j->spec_hash};
		j->r = a->rt->ops->start(a->rt, &t, &j->id, &err);
	} else {
		j->stats = (struct rt_stats){-1, -1};
		j->r = a->rt->ops->stats(a->rt, j->key, &j->stats, &err);
		if (j->r < 0)
			j->stats = (struct rt_stats){-1, -1};
	}
	if (j->r < 0)
		j->msg = xstrdup(kerr_msg(&err));
}

/* The first queued start, else the first queued sample, but none while a
 * start is under way: a sample makes the engine read the container's
 * cgroups, on the cores the starts need; unlinked. NULL: nothing to do
 * now. */
static struct agent_job *pop(struct agent *a)
{
	struct agent_job **p = &a->job_q;
	while (*p && (*p)->kind != AGENT_JOB_START)
		p = &(*p)->next;
	if (!*p && a->job_starting)
		return NULL;
	if (!*p)
		p = &a->job_q;
	struct agent_job *j = *p;
	if (j)
		*p = j->next;
	if (j && j->kind == AGENT_JOB_START)
		a->job_starting++;
	return j;
}

static void *worker(void *arg)
{
	struct agent *a = arg;
	pthread_mutex_lock(&a->job_mu);
	for (;;) {
		struct agent_job *j = NULL;
		while (!a->job_quit && !(j = pop(a)))
			pthread_cond_wait(&a->job_cond, &a->job_mu);
		if (!j)
			break; /* quitting */
		a->job_busy++;
		pthread_mutex_unlock(&a->job_mu);
		run_job(a, j);
		pthread_mutex_lock(&a->job_mu);
		a->job_busy--;
		if (j->kind == AGENT_JOB_START)
			a->job_starting--;
		j->next = a->job_done;
		a->job_done = j;
		bool wake = j->kind == AGENT_JOB_START;
		pthread_cond_broadcast(&a->job_cond);
		pthread_mutex_unlock(&a->job_mu);
		if (wake) /* its status now, not on the next tick; samples wait for the tick */
			agent_wake(a);
		pthread_mutex_lock(&a->job_mu);
	}
	pthread_mutex_unlock(&a->job_mu);
	return NULL;
}

void agent_jobs_init(struct agent *a)
{
	pthread_mutex_init(&a->job_mu, NULL);
	pthread_cond_init(&a->job_cond, NULL);
	a->job_keys = json_object();
	if (!a->rt->ops->concurrent)
		return; /* everything runs on the reconcile thread */
	for (size_t i = 0; i < AGENT_JOB_WORKERS; i++) {
		a->job_started[i] = pthread_create(&a->job_threads[i], NULL, worker, a) == 0;
		a->jobs_on |= a->job_started[i];
	}
}

bool agent_jobs_on(const struct agent *a)
{
	return a->jobs_on;
}

/* Takes ownership of j; false (j freed) when its key is busy or the
 * workers are shutting down. */
static bool queue(struct agent *a, struct agent_job *j)
{
	bool queued = false;
	pthread_mutex_lock(&a->job_mu);
	if (!a->job_quit && !json_object_get(a->job_keys, j->key)) {
		struct agent_job **p = &a->job_q;
		while (*p)
			p = &(*p)->next;
		*p = j;
		json_object_set_new(a->job_keys, j->key, json_true());
		pthread_cond_signal(&a->job_cond);
		queued = true;
	}
	pthread_mutex_unlock(&a->job_mu);
	if (!queued)
		agent_job_free(j);
	return queued;
}

bool agent_jobs_start(struct agent *a, const struct rt_task *t)
{
	struct agent_job *j = xcalloc(1, sizeof(*j));
	j->kind = AGENT_JOB_START;
	j->key = xstrdup(t->uid);
	j->uid = xstrdup(t->uid);
	j->ns = xstrdup(t->ns);
	j->name = xstrdup(t->name);
	j->node = xstrdup(t->node);
	j->spec = json_deep_copy(t->spec);
	j->attempt = t->attempt;
	j->spec_hash = t->spec_hash ? xstrdup(t->spec_hash) : NULL;
	return queue(a, j);
}

bool agent_jobs_stats(struct agent *a, const char *id, const char *uid)
{
	struct agent_job *j = xcalloc(1, sizeof(*j));
	j->kind = AGENT_JOB_STATS;
	j->key = xstrdup(id);
	j->uid = uid ? xstrdup(uid) : NULL;
	return queue(a, j);
}

bool agent_jobs_busy(struct agent *a, const char *key)
{
	pthread_mutex_lock(&a->job_mu);
	bool r = json_object_get(a->job_keys, key) != NULL;
	pthread_mutex_unlock(&a->job_mu);
	return r;
}

struct agent_job *agent_jobs_take(struct agent *a)
{
	pthread_mutex_lock(&a->job_mu);
	struct agent_job *done = a->job_done, *rev = NULL;
	a->job_done = NULL;
	for (struct agent_job *j = done; j;) { /* oldest first */
		struct agent_job *next = j->next;
		json_object_del(a->job_keys, j->key);
		j->next = rev;
		rev = j;
		j = next;
	}
	pthread_mutex_unlock(&a->job_mu);
	return rev;
}

void agent_jobs_finish(struct agent *a)
{
	if (!a->job_keys)
		return; /* never initialised */
	pthread_mutex_lock(&a->job_mu);
	size_t dropped = 0;
	while (a->job_q) {
		struct agent_job *j = a->job_q;
		a->job_q = j->next;
		json_object_del(a->job_keys, j->key);
		agent_job_free(j);
		dropped++;
	}
	if (a->job_busy)
		log_info("agent: waiting for %zu start(s) or sample(s) under way", a->job_busy);
	if (dropped)
		log_info("agent: %zu queued start(s) or sample(s) dropped", dropped);
	a->job_quit = true;
	pthread_cond_broadcast(&a->job_cond);
	pthread_mutex_unlock(&a->job_mu);
	for (size_t i = 0; i < AGENT_JOB_WORKERS; i++)
		if (a->job_started[i])
			pthread_join(a->job_threads[i], NULL), a->job_started[i] = false;
}

void agent_jobs_free(struct agent *a)
{
	if (!a->job_keys)
		return;
	while (a->job_q) { /* only if finish was never called */
		struct agent_job *j = a->job_q;
		a->job_q = j->next;
		agent_job_free(j);
	}
	for (struct agent_job *j = agent_jobs_take(a); j;) {
		struct agent_job *next = j->next;
		agent_job_free(j);
		j = next;
	}
	json_decref(a->job_keys);
	a->job_keys = NULL;
	pthread_mutex_destroy(&a->job_mu);
	pthread_cond_destroy(&a->job_cond);
}
