/*
 * Unit tests: the agent's job workers (src/agent/agent_jobs.c), which run
 * starts and stats samples of a concurrent runtime off the reconcile
 * thread. The runtime here is a gate: its start() and stats() block until
 * the test opens the gate, count how many run at once, and fail on
 * demand (fault injection) — what the real runtimes cannot be made to do
 * on cue.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "agent/agent_internal.h"
#include "common/kerr.h"
#include "common/util.h"

struct gate {
	struct runtime base;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool open;
	int inside, max_inside, starts, samples;
	const char *fail_name; /* start() of this task fails -ENXIO */
};

static void gate_enter(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->inside++;
	if (g->inside > g->max_inside)
		g->max_inside = g->inside;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->mu);
	g->inside--;
	pthread_mutex_unlock(&g->mu);
}

static int gate_start(struct runtime *rt, const struct rt_task *t, char **id, struct kerr *err)
{
	struct gate *g = (struct gate *)rt;
	gate_enter(g);
	pthread_mutex_lock(&g->mu);
	g->starts++;
	pthread_mutex_unlock(&g->mu);
	if (g->fail_name && streq(t->name, g->fail_name))
		return kerr_set(err, ENXIO, "image \"%s\" not found",
		                json_string_value(json_object_get(t->spec, "image")));
	*id = xasprintf("ctr-%s-%u", t->name, t->attempt);
	return 0;
}

static int gate_stats(struct runtime *rt, const char *id, struct rt_stats *out, struct kerr *err)
{
	struct gate *g = (struct gate *)rt;
	(void)err;
	(void)id;
	gate_enter(g);
	pthread_mutex_lock(&g->mu);
	g->samples++;
	pthread_mutex_unlock(&g->mu);
	*out = (struct rt_stats){250, 4096};
	return 0;
}

static const struct runtime_ops gate_ops = {
    .name = "gate", .concurrent = true, .start = gate_start, .stats = gate_stats};
static const struct runtime_ops serial_ops = {.name = "serial", .start = gate_start};

struct fixture {
	struct gate g;
	struct agent a;
	json_t *spec;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	pthread_mutex_init(&f->g.mu, NULL);
	pthread_cond_init(&f->g.cond, NULL);
	f->g.base.ops = &gate_ops;
	pthread_mutex_init(&f->a.mu, NULL);
	pthread_cond_init(&f->a.cond, NULL);
	f->a.rt = &f->g.base;
	f->spec = json_pack("{s:s}", "image", "keel/busybox:latest");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	agent_jobs_finish(&f->a);
	agent_jobs_free(&f->a);
	json_decref(f->spec);
	pthread_mutex_destroy(&f->a.mu);
	pthread_cond_destroy(&f->a.cond);
	pthread_mutex_destroy(&f->g.mu);
	pthread_cond_destroy(&f->g.cond);
	free(f);
	return 0;
}

static void open_gate(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
}

/* Waits (up to 10 s) until n calls are inside the gate. */
static void wait_inside(struct gate *g, int n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&g->mu);
	while (g->inside < n && pthread_cond_timedwait(&g->cond, &g->mu, &ts) == 0)
		;
	int inside = g->inside;
	pthread_mutex_unlock(&g->mu);
	assert_int_equal(inside, n);
}

static bool queue_start(struct fixture *f, const char *uid, const char *name, unsigned attempt)
{
	struct rt_task t = {uid, "default", name, "n1", f->spec, attempt, "h1"};
	return agent_jobs_start(&f->a, &t);
}

/* Takes results until n have come (up to 10 s); returns them in a list. */
static struct agent_job *take_n(struct agent *a, size_t n)
{
	struct agent_job *all = NULL, **tail = &all;
	size_t got = 0;
	for (int i = 0; i < 1000 && got < n; i++) {
		for (struct agent_job *j = agent_jobs_take(a); j; j = j->next, got++) {
			*tail = j;
			tail = &j->next;
		}
		*tail = NULL;
		if (got < n) {
			struct timespec d = {0, 10 * 1000000L};
			nanosleep(&d, NULL);
		}
	}
	assert_int_equal(got, n);
	return all;
}

static void free_list(struct agent_job *j)
{
	while (j) {
		struct agent_job *next = j->next;
		agent_job_free(j);
		j = next;
	}
}

static void test_starts_run_at_once_bounded(void **state)
{
	struct fixture *f = *state;
	agent_jobs_init(&f->a);
	assert_true(agent_jobs_on(&f->a));
	char uid[32], name[32];
	for (int i = 0; i < 20; i++) {
		snprintf(uid, sizeof uid, "uid-%d", i);
		snprintf(name, sizeof name, "t%d", i);
		assert_true(queue_start(f, uid, name, 0));
	}
	wait_inside(&f->g, AGENT_JOB_WORKERS); /* as many at once as there are workers */
	struct timespec d = {0, 50 * 1000000L};
	nanosleep(&d, NULL);
	assert_int_equal(f->g.inside, AGENT_JOB_WORKERS); /* and no more */
	assert_true(agent_jobs_busy(&f->a, "uid-19"));    /* queued is busy too */
	open_gate(&f->g);
	struct agent_job *all = take_n(&f->a, 20);
	assert_int_equal(f->g.max_inside, AGENT_JOB_WORKERS);
	bool seen[20] = {0};
	for (struct agent_job *j = all; j; j = j->next) {
		int i = atoi(j->uid + 4);
		assert_int_equal(j->kind, AGENT_JOB_START);
		assert_int_equal(j->r, 0);
		snprintf(name, sizeof name, "ctr-t%d-0", i);
		assert_string_equal(j->id, name);
		assert_string_equal(j->node, "n1");
		assert_string_equal(j->spec_hash, "h1");
		seen[i] = true;
	}
	for (int i = 0; i < 20; i++)
		assert_true(seen[i]);
	free_list(all);
	assert_false(agent_jobs_busy(&f->a, "uid-0")); /* taken: free again */
	pthread_mutex_lock(&f->a.mu);
	assert_true(f->a.dirty); /* a finished start woke the reconcile thread */
	pthread_mutex_unlock(&f->a.mu);
}

static void test_a_key_is_busy_until_its_result_is_taken(void **state)
{
	struct fixture *f = *state;
	agent_jobs_init(&f->a);
	open_gate(&f->g);
	assert_true(queue_start(f, "u1", "web", 0));
	assert_false(queue_start(f, "u1", "web", 0)); /* no second start of the same Task */
	assert_true(agent_jobs_stats(&f->a, "ctr-x", "u2"));
	assert_false(agent_jobs_stats(&f->a, "ctr-x", "u2"));
	struct agent_job *all = take_n(&f->a, 2);
	for (struct agent_job *j = all; j; j = j->next) {
		if (j->kind == AGENT_JOB_STATS) {
			assert_string_equal(j->key, "ctr-x");
			assert_string_equal(j->uid, "u2");
			assert_int_equal(j->stats.cpu_millicores, 250);
			assert_int_equal(j->stats.memory_bytes, 4096);
		} else {
			assert_string_equal(j->uid, "u1");
		}
	}
	free_list(all);
	/* taken: the same Task may start again (its next attempt) */
	assert_true(queue_start(f, "u1", "web", 1));
	all = take_n(&f->a, 1);
	assert_string_equal(all->id, "ctr-web-1");
	assert_int_equal(all->attempt, 1);
	free_list(all);
}

static void test_a_failed_start_carries_its_error(void **state)
{
	struct fixture *f = *state;
	f->g.fail_name = "bad";
	agent_jobs_init(&f->a);
	open_gate(&f->g);
	assert_true(queue_start(f, "u1", "bad", 0));
	struct agent_job *j = take_n(&f->a, 1);
	assert_int_equal(j->r, -ENXIO);
	assert_null(j->id);
	assert_non_null(strstr(j->msg, "image \"keel/busybox:latest\" not found"));
	free_list(j);
}

static void test_samples_wait_for_the_starts(void **state)
{
	struct fixture *f = *state;
	agent_jobs_init(&f->a);
	assert_true(agent_jobs_stats(&f->a, "ctr-a", "ua"));
	wait_inside(&f->g, 1); /* nothing else to do: a sample runs */
	assert_true(queue_start(f, "u1", "web", 0));
	wait_inside(&f->g, 2); /* a start does not wait for a sample */
	assert_true(agent_jobs_stats(&f->a, "ctr-b", "ub"));
	assert_true(agent_jobs_stats(&f->a, "ctr-c", "uc"));
	struct timespec d = {0, 100 * 1000000L};
	nanosleep(&d, NULL);
	assert_int_equal(f->g.inside, 2); /* but these wait while the start is under way */
	open_gate(&f->g);
	free_list(take_n(&f->a, 4));
	assert_int_equal(f->g.starts, 1);
	assert_int_equal(f->g.samples, 3);
}

struct opener {
	struct gate *g;
	pthread_t th;
};

static void *open_later(void *arg)
{
	struct opener *o = arg;
	struct timespec d = {0, 100 * 1000000L};
	nanosleep(&d, NULL);
	open_gate(o->g);
	return NULL;
}

static void test_finish_drops_the_queued_and_waits_for_the_rest(void **state)
{
	struct fixture *f = *state;
	agent_jobs_init(&f->a);
	char uid[32];
	for (int i = 0; i < AGENT_JOB_WORKERS + 5; i++) {
		snprintf(uid, sizeof uid, "uid-%d", i);
		assert_true(queue_start(f, uid, "t", 0));
	}
	wait_inside(&f->g, AGENT_JOB_WORKERS);
	struct opener o = {.g = &f->g};
	pthread_create(&o.th, NULL, open_later, &o);
	agent_jobs_finish(&f->a); /* returns once the ones under way are done */
	pthread_join(o.th, NULL);
	assert_int_equal(f->g.starts, AGENT_JOB_WORKERS);
	assert_false(queue_start(f, "late", "t", 0)); /* shut down: nothing more */
	struct agent_job *all = agent_jobs_take(&f->a);
	size_t n = 0;
	for (struct agent_job *j = all; j; j = j->next)
		n++;
	assert_int_equal(n, AGENT_JOB_WORKERS);
	free_list(all);
}

static void test_a_serial_runtime_gets_no_workers(void **state)
{
	struct fixture *f = *state;
	f->g.base.ops = &serial_ops;
	agent_jobs_init(&f->a);
	assert_false(agent_jobs_on(&f->a));
	assert_false(agent_jobs_busy(&f->a, "u1"));
	assert_null(agent_jobs_take(&f->a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_starts_run_at_once_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_key_is_busy_until_its_result_is_taken, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_failed_start_carries_its_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_samples_wait_for_the_starts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_finish_drops_the_queued_and_waits_for_the_rest,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_serial_runtime_gets_no_workers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
