/*
 * workqueue — a de-duplicating queue of string keys ("namespace/name") with
 * per-key exponential backoff and a global rate limit, as client-go's
 * rate-limited work queue: a key is never processed by two workers at
 * once; a key added while it is being processed is processed again after
 * workqueue_done(); a key added many times while queued is processed once.
 *
 * Threading: every function is thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct workqueue;

struct workqueue_opts {
	long base_delay_ms;  /* first retry delay for a failing key; default 5 ms */
	long max_delay_ms;   /* cap; default 1000 s as client-go (controllers pass less) */
	double qps;          /* global rate limit of rate-limited adds; default 10 */
	long burst;          /* default 100 */
};

struct workqueue *workqueue_new(const struct workqueue_opts *o); /* o may be NULL */
/* Queues key now (copied). */
void workqueue_add(struct workqueue *q, const char *key);
/* Queues key after delay_ms. */
void workqueue_add_after(struct workqueue *q, const char *key, long delay_ms);
/* Queues key after its next backoff delay (base * 2^failures, capped, and
 * not faster than the global rate limit). */
void workqueue_add_rate_limited(struct workqueue *q, const char *key);
/* Forgets key's failures (after a successful reconcile). */
void workqueue_forget(struct workqueue *q, const char *key);
/* How many times key has failed since the last forget. */
unsigned workqueue_failures(struct workqueue *q, const char *key);
/* Blocks for the next key; *key owned by the caller. Returns 0, or
 * -ESHUTDOWN once the queue is shut down (and empty of ready keys). */
int workqueue_get(struct workqueue *q, char **key);
/* Marks key processed (must follow every successful get). */
void workqueue_done(struct workqueue *q, const char *key);
/* Wakes every waiter with -ESHUTDOWN; later adds are ignored. */
void workqueue_shutdown(struct workqueue *q);
void workqueue_free(struct workqueue *q);
size_t workqueue_len(struct workqueue *q);
