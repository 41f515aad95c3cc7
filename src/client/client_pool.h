/*
 * client_pool — a fixed set of threads, each with its own client (one
 * keep-alive connection), that run requests in parallel. The API server
 * commits many writers' changes in one fsync (group commit), but a loop
 * that issues one durable write at a time waits a whole commit for each:
 * 10,000 Task creates, binds or status writes in a row are 10,000
 * commits. With a pool, a controller keeps up to `size` writes in flight
 * and they share commits, as Kubernetes' controllers do with their
 * slow-start batches and kube-scheduler with its asynchronous binding.
 *
 * Jobs are functions run on a pool thread with that thread's client.
 * client_pool_submit queues one (blocking while `2 * size` are queued, so
 * memory stays bounded); client_pool_wait waits until every job submitted
 * so far has run. Jobs report their own results (through their argument);
 * the pool never looks at them.
 *
 * Threading: submit and wait may be called from any thread; a job must not
 * submit to or wait on its own pool.
 */
#pragma once

#include <stddef.h>

#include "client/client.h"

struct kerr;
struct client_pool;

/* A job: runs on a pool thread with that thread's client (borrowed; NULL
 * when it could not be made from the options: the job then fails). */
typedef void (*client_pool_fn)(struct client *c, void *arg);

/* Starts size threads (1..256), each with a client made from o (copied).
 * Errors: -EINVAL (bad size or options), a thread that cannot start. */
int client_pool_new(const struct client_opts *o, int size, struct client_pool **out,
                    struct kerr *err);
/* Queues fn(c, arg); blocks while the queue is full. */
void client_pool_submit(struct client_pool *p, client_pool_fn fn, void *arg);
/* Waits until every job submitted so far has returned. */
void client_pool_wait(struct client_pool *p);
/* The number of threads. */
int client_pool_size(const struct client_pool *p);
/* Runs the queued jobs, stops the threads, frees. Accepts NULL. */
void client_pool_free(struct client_pool *p);
