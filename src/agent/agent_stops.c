/*
 * agent_stops — stopping containers off the reconcile thread. A stop can
 * take a Task's whole terminationGracePeriodSeconds (a process that traps
 * SIGTERM); done inline it held up every other start and stop on the node
 * for that long. So the reconcile thread only queues a stop here and goes
 * on; AGENT_STOP_WORKERS threads carry the stops out (bounded concurrency,
 * as kubelet's per-pod workers) and wake the reconcile thread when one is
 * done, so that it sees the exit at once.
 *
 * A container id is queued at most once until its stop has finished
 * (`ids`), so the reconcile loop, which sees the container still running
 * on every tick of its grace period, never stops it twice. Jobs touch only
 * their own container, never the agent's per-task state, so a Task that
 * is forgotten, restarted (a new attempt is a new id) or adopted by a new
 * agent meanwhile is no hazard: the reconcile loop stays level-triggered
 * and queues again whatever still runs that should not.
 *
 * Shutdown (agent_stops_finish): the stops already under way are waited
 * for (their SIGTERM went out; what is left is at most the SIGKILL after
 * the grace period); queued ones are dropped — a restarted agent finds
 * their containers and queues them again — unless drain is asked for
 * (--stop-tasks-on-exit, which queues every container and waits).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

struct stop_job {
	struct stop_job *next;
	char *id;
	int grace_s;
	bool remove;
};

static void job_free(struct stop_job *j)
{
	free(j->id);
	free(j);
}

static void run_job(struct agent *a, const struct stop_job *j)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (a->rt->ops->stop(a->rt, j->id, j->grace_s, &err) < 0 && err.code != ENOENT) {
		log_warn("agent: stopping %s: %s", j->id, kerr_msg(&err));
		return;
	}
	if (!j->remove)
		return;
	kerr_clear(&err);
	if (a->rt->ops->remove(a->rt, j->id, &err) < 0 && err.code != ENOENT)
		log_warn("agent: removing %s: %s", j->id, kerr_msg(&err));
}

static void *worker(void *arg)
{
	struct agent *a = arg;
	pthread_mutex_lock(&a->stop_mu);
	for (;;) {
		while (!a->stop_q && !a->stop_quit)
			pthread_cond_wait(&a->stop_cond, &a->stop_mu);
		if (!a->stop_q)
			break; /* quitting, and nothing (more) to drain */
		struct stop_job *j = a->stop_q;
		a->stop_q = j->next;
		a->stop_busy++;
		pthread_mutex_unlock(&a->stop_mu);
		run_job(a, j);
		pthread_mutex_lock(&a->stop_mu);
		a->stop_busy--;
		json_object_del(a->stop_ids, j->id);
		job_free(j);
		pthread_cond_broadcast(&a->stop_cond);
		pthread_mutex_unlock(&a->stop_mu);
		agent_wake(a); /* look at the container now, not on the next tick */
		pthread_mutex_lock(&a->stop_mu);
	}
	pthread_mutex_unlock(&a->stop_mu);
	return NULL;
}

void agent_stops_init(struct agent *a)
{
	pthread_mutex_init(&a->stop_mu, NULL);
	pthread_cond_init(&a->stop_cond, NULL);
	a->stop_ids = json_object();
	for (size_t i = 0; i < AGENT_STOP_WORKERS; i++)
		a->stop_started[i] = pthread_create(&a->stop_threads[i], NULL, worker, a) == 0;
}

bool agent_stops_queue(struct agent *a, const char *id, int grace_s, bool remove)
{
	bool queued = false;
	pthread_mutex_lock(&a->stop_mu);
	if (!a->stop_quit && !json_object_get(a->stop_ids, id)) {
		struct stop_job *j = xcalloc(1, sizeof(*j));
		j->id = xstrdup(id);
		j->grace_s = grace_s;
		j->remove = remove;
		struct stop_job **p = &a->stop_q;
		while (*p)
			p = &(*p)->next;
		*p = j;
		json_object_set_new(a->stop_ids, id, json_true());
		pthread_cond_signal(&a->stop_cond);
		queued = true;
	}
	pthread_mutex_unlock(&a->stop_mu);
	return queued;
}

bool agent_stops_pending(struct agent *a, const char *id)
{
	pthread_mutex_lock(&a->stop_mu);
	bool r = json_object_get(a->stop_ids, id) != NULL;
	pthread_mutex_unlock(&a->stop_mu);
	return r;
}

void agent_stops_finish(struct agent *a, bool drain)
{
	if (!a->stop_ids)
		return; /* never initialised */
	pthread_mutex_lock(&a->stop_mu);
	size_t dropped = 0;
	while (!drain && a->stop_q) {
		struct stop_job *j = a->stop_q;
		a->stop_q = j->next;
		json_object_del(a->stop_ids, j->id);
		job_free(j);
		dropped++;
	}
	if (a->stop_busy || a->stop_q)
		log_info("agent: waiting for %zu stop(s) to finish",
		         (size_t)json_object_size(a->stop_ids));
	if (dropped)
		log_info("agent: %zu queued stop(s) left for the next agent", dropped);
	a->stop_quit = true;
	pthread_cond_broadcast(&a->stop_cond);
	pthread_mutex_unlock(&a->stop_mu);
	for (size_t i = 0; i < AGENT_STOP_WORKERS; i++)
		if (a->stop_started[i])
			pthread_join(a->stop_threads[i], NULL), a->stop_started[i] = false;
}

void agent_stops_free(struct agent *a)
{
	if (!a->stop_ids)
		return;
	while (a->stop_q) { /* only if finish was never called */
		struct stop_job *j = a->stop_q;
		a->stop_q = j->next;
		job_free(j);
	}
	json_decref(a->stop_ids);
	a->stop_ids = NULL;
	pthread_mutex_destroy(&a->stop_mu);
	pthread_cond_destroy(&a->stop_cond);
}
