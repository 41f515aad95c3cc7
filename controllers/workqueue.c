/*
 * workqueue — client-go's rate-limited work queue in C.
 *
 * Three sets make the guarantees of workqueue.h: `dirty` (keys waiting to
 * be processed), `processing` (keys a worker holds) and the FIFO `ready`
 * (the order dirty keys are handed out in). A key added while dirty is
 * dropped (dedup); a key added while processing is only marked dirty and
 * goes back on the FIFO at workqueue_done, so no two workers ever hold
 * one key. Delayed adds wait in a small array scanned by the waiting
 * getter (controllers keep few keys delayed at once; a heap is not worth
 * it). Per-key failure counts give the exponential backoff; a token bucket
 * gives the global rate limit; a rate-limited add waits for the larger of
 * the two, as client-go's default MaxOfRateLimiter does.
 *
 * The sets are jansson objects used as string-keyed hash tables: they are
 * already linked in and O(1) on average.
 */
#include "controllers/workqueue.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

struct delayed {
	char *key;
	int64_t at_ms; /* monotonic */
};

struct workqueue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct workqueue_opts o;
	char **ready; /* FIFO ring */
	size_t head, count, cap;
	json_t *dirty, *processing, *failures;
	struct delayed *delayed;
	size_t ndelayed, delayed_cap;
	double tokens;
	int64_t bucket_ms;
	bool shutdown;
};

struct workqueue *workqueue_new(const struct workqueue_opts *o)
{
	struct workqueue *q = xcalloc(1, sizeof *q);
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (o)
		q->o = *o;
	if (q->o.base_delay_ms <= 0)
		q->o.base_delay_ms = 5;
	if (q->o.max_delay_ms <= 0)
		q->o.max_delay_ms = 1000L * 1000;
	if (q->o.qps <= 0)
		q->o.qps = 10;
	if (q->o.burst <= 0)
		q->o.burst = 100;
	q->tokens = (double)q->o.burst;
	q->bucket_ms = time_mono_ms();
	q->dirty = json_object();
	q->processing = json_object();
	q->failures = json_object();
	return q;
}

static void ready_push(struct workqueue *q, const char *key)
{
	if (q->count == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 16;
		char **n = xcalloc(ncap, sizeof *n);
		for (size_t i = 0; i < q->count; i++)
			n[i] = q->ready[(q->head + i) % q->cap];
		free(q->ready);
		q->ready = n;
		q->head = 0;
		q->cap = ncap;
	}
	q->ready[(q->head + q->count) % q->cap] = xstrdup(key);
	q->count++;
}

static char *ready_pop(struct workqueue *q)
{
	char *k = q->ready[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	return k;
}

/* With q->mu held. */
static void add_locked(struct workqueue *q, const char *key)
{
	if (q->shutdown || json_object_get(q->dirty, key))
		return;
	json_object_set_new(q->dirty, key, json_true());
	if (json_object_get(q->processing, key))
		return; /* re-queued by workqueue_done */
	ready_push(q, key);
	pthread_cond_signal(&q->cv);
}

void workqueue_add(struct workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	add_locked(q, key);
	pthread_mutex_unlock(&q->mu);
}

static void add_after_locked(struct workqueue *q, const char *key, long delay_ms)
{
	if (q->shutdown)
		return;
	if (delay_ms <= 0) {
		add_locked(q, key);
		return;
	}
	int64_t at = time_mono_ms() + delay_ms;
	for (size_t i = 0; i < q->ndelayed; i++) {
		if (strcmp(q->delayed[i].key, key) == 0) {
			if (at < q->delayed[i].at_ms)
				q->delayed[i].at_ms = at;
			pthread_cond_broadcast(&q->cv);
			return;
		}
	}
	if (q->ndelayed == q->delayed_cap) {
		q->delayed_cap = q->delayed_cap ? q->delayed_cap * 2 : 8;
		q->delayed = xrealloc(q->delayed, q->delayed_cap * sizeof *q->delayed);
	}
	q->delayed[q->ndelayed++] = (struct delayed){xstrdup(key), at};
	/* Every waiter recomputes its deadline. */
	pthread_cond_broadcast(&q->cv);
}

void workqueue_add_after(struct workqueue *q, const char *key, long delay_ms)
{
	pthread_mutex_lock(&q->mu);
	add_after_locked(q, key, delay_ms);
	pthread_mutex_unlock(&q->mu);
}

/* Token bucket: the delay before the next rate-limited add may run. */
static long bucket_reserve(struct workqueue *q)
{
	int64_t now = time_mono_ms();
	q->tokens += (double)(now - q->bucket_ms) * q->o.qps / 1000.0;
	if (q->tokens > (double)q->o.burst)
		q->tokens = (double)q->o.burst;
	q->bucket_ms = now;
	q->tokens -= 1.0;
	if (q->tokens >= 0)
		return 0;
	return (long)ceil(-q->tokens * 1000.0 / q->o.qps);
}

static long backoff_next(struct workqueue *q, const char *key)
{
	json_t *f = json_object_get(q->failures, key);
	json_int_t n = f ? json_integer_value(f) : 0;
	json_object_set_new(q->failures, key, json_integer(n + 1));
	double d = (double)q->o.base_delay_ms * pow(2.0, (double)(n > 62 ? 62 : n));
	if (d > (double)q->o.max_delay_ms)
		d = (double)q->o.max_delay_ms;
	return (long)d;
}

void workqueue_add_rate_limited(struct workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	if (!q->shutdown) {
		long a = backoff_next(q, key);
		long b = bucket_reserve(q);
		add_after_locked(q, key, a > b ? a : b);
	}
	pthread_mutex_unlock(&q->mu);
}

void workqueue_forget(struct workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	json_object_del(q->failures, key);
	pthread_mutex_unlock(&q->mu);
}

unsigned workqueue_failures(struct workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	json_t *f = json_object_get(q->failures, key);
	unsigned n = f ? (unsigned)json_integer_value(f) : 0;
	pthread_mutex_unlock(&q->mu);
	return n;
}

/* Moves due delayed keys to the queue; returns the earliest deadline left
 * (INT64_MAX: none). */
static int64_t promote_due(struct workqueue *q)
{
	int64_t now = time_mono_ms(), next = INT64_MAX;
	for (size_t i = 0; i < q->ndelayed;) {
		if (q->delayed[i].at_ms <= now) {
			char *k = q->delayed[i].key;
			q->delayed[i] = q->delayed[--q->ndelayed];
			add_locked(q, k);
			free(k);
			continue;
		}
		if (q->delayed[i].at_ms < next)
			next = q->delayed[i].at_ms;
		i++;
	}
	return next;
}

static void wait_until(struct workqueue *q, int64_t deadline_ms)
{
	if (deadline_ms == INT64_MAX) {
		pthread_cond_wait(&q->cv, &q->mu);
		return;
	}
	struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
	pthread_cond_timedwait(&q->cv, &q->mu, &ts);
}

int workqueue_get(struct workqueue *q, char **key)
{
	pthread_mutex_lock(&q->mu);
	for (;;) {
		int64_t next = q->shutdown ? INT64_MAX : promote_due(q);
		if (q->count > 0)
			break;
		if (q->shutdown) {
			pthread_mutex_unlock(&q->mu);
			return -ESHUTDOWN;
		}
		wait_until(q, next);
	}
	char *k = ready_pop(q);
	json_object_del(q->dirty, k);
	json_object_set_new(q->processing, k, json_true());
	pthread_mutex_unlock(&q->mu);
	*key = k;
	return 0;
}

void workqueue_done(struct workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	json_object_del(q->processing, key);
	if (json_object_get(q->dirty, key) && !q->shutdown) {
		ready_push(q, key);
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
}

void workqueue_shutdown(struct workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->shutdown = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

size_t workqueue_len(struct workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->count;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void workqueue_free(struct workqueue *q)
{
	if (!q)
		return;
	while (q->count > 0)
		free(ready_pop(q));
	free(q->ready);
	for (size_t i = 0; i < q->ndelayed; i++)
		free(q->delayed[i].key);
	free(q->delayed);
	json_decref(q->dirty);
	json_decref(q->processing);
	json_decref(q->failures);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
