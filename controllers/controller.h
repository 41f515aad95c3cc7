/*
 * controller — the runner every controller loop plugs into, in process
 * (`keel server`, default) or alone (`keel controller NAME`). A controller
 * is a `struct controller_def`: setup() declares the informers it needs
 * (controller_informer) and builds its state; the runner starts those
 * informers, waits until each has synced, then runs `workers` threads that
 * take keys from the controller's work queue and call reconcile(key).
 *
 * Controllers are level-triggered (DESIGN.md "Controllers"): reconcile
 * reads the cached desired and observed state (informer_get/_list) and
 * makes one step toward it through the API (the worker's client), never
 * the store. A controller may be killed and restarted at any moment.
 *
 * reconcile's return value:
 *   0     done: the key's failures are forgotten;
 *   > 0   done for now, look again after that many milliseconds (e.g. a
 *         heartbeat deadline); failures are forgotten;
 *   < 0   a -errno, with err filled: the runner logs it once
 *         ("controller NAME: KEY: MSG") and re-queues the key with per-key
 *         exponential backoff (workqueue_add_rate_limited).
 *
 * Threading: setup and teardown run on the starting thread; reconcile runs
 * on worker threads, but never twice at once for one key (the work queue
 * guarantees it). Informer handlers run on informer threads. env functions
 * are thread-safe unless said otherwise.
 *
 * Leader election: every controller runs only while it holds its Lease
 * "keel-NAME" (controllers/leader.h), so that of several processes running
 * it (several `keel server`s on one etcd, or `keel controller` processes)
 * exactly one acts. Informers run (warm) everywhere; workers and the loop
 * of a controller that does not lead wait, keeping the keys queued, and
 * controller_stopping() is true while it does not lead.
 *
 * Registry: each loop's .c file defines one `const struct controller_def`
 * (controller_scheduler in scheduler.c, controller_tasks in tasks.c,
 * controller_nodes in nodes.c, controller_gc in gc.c). controller.c lists
 * them (weak references: a loop that is not linked in is reported as
 * "not built", so the library builds while loops are being written).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/kind.h"
#include "client/client.h"
#include "controllers/informer.h"
#include "controllers/workqueue.h"

struct kerr;
struct controller_env;
struct controller_manager;

/* Options shared by every controller; the flags of `keel server` and
 * `keel controller`. Zero means the default given here. */
struct controller_options {
	struct client_opts client;     /* server URL + admin token (copied) */
	const char *scheduler;         /* --scheduler: "epvm" (default) | "round-robin" */
	long node_grace_period_ms;     /* --node-grace-period; default 40 s */
	long node_eviction_timeout_ms; /* --node-eviction-timeout; default 60 s */
	long event_ttl_ms;             /* --event-ttl; default 1 h */
	long resync_ms;                /* informer resync; default 0 (none) */
	long leader_lease_ms;          /* --leader-lease: each controller's leader Lease
	                                  duration (controllers/leader.h); default 15 s */
	const char *identity;          /* holder of the leader Leases (copied); NULL: a new
	                                  HOSTNAME-PID-RANDOM per process. A server passes
	                                  the one kept in its locked data directory, so that
	                                  restarted (even after kill -9) it takes its leases
	                                  back at once instead of waiting for them to lapse */
	int workers;                   /* 0: each def's own default */
};

struct controller_def {
	const char *name; /* "scheduler", "tasks", "nodes", "gc" */
	int workers;      /* worker threads; 0: 1 */
	/* Declares informers (controller_informer) and builds *state. May
	 * fail with -errno + err (the controller then does not start). */
	int (*setup)(struct controller_env *env, void **state, struct kerr *err);
	/* One step for key ("namespace/name" or "name"). c is the worker's own
	 * client (not shared with other threads). See the return values above. */
	int (*reconcile)(void *state, struct client *c, const char *key, struct kerr *err);
	/* Called after workers and informers have stopped. May be NULL. */
	void (*teardown)(void *state);
	/* Optional: runs on its own thread after the informers have synced,
	 * until controller_stopping(env) (e.g. a periodic sweep; it should
	 * wait with controller_sleep). May be NULL. */
	void (*loop)(void *state, struct client *c);
};

/* ---- for controllers (from setup, handlers, reconcile) ---------------- */

/* Declares an informer on kind (optionally restricted by the selectors,
 * copied; NULL: all). h NULL: every add/update/delete queues the object's
 * informer_key. With h, the handlers decide (typically mapping a Task to
 * its owner's key with controller_enqueue). Only from setup. The
 * informer is owned by the runner (started after setup, stopped before
 * teardown); *out (may be NULL) is borrowed, valid until teardown. */
int controller_informer(struct controller_env *env, const struct api_kind *kind,
                        const char *label_selector, const char *field_selector,
                        const struct informer_handlers *h, struct informer **out,
                        struct kerr *err);

/* The controller's work queue (borrowed). */
struct workqueue *controller_queue(struct controller_env *env);
/* Shorthands: workqueue_add / workqueue_add_after on the queue. */
void controller_enqueue(struct controller_env *env, const char *key);
void controller_enqueue_after(struct controller_env *env, const char *key, long delay_ms);

/* The options (borrowed; defaults filled in). */
const struct controller_options *controller_opts(struct controller_env *env);
/* The controller's name (borrowed). */
const char *controller_name(struct controller_env *env);

/* Records an Event about object `involved` (borrowed; its kind, namespace,
 * name, uid are used): type "Normal" | "Warning", reason a CamelCase word
 * ("Scheduled", "FailedScheduling", "NodeLost", "ScalingReplicaSet"),
 * message printf-style. Events are aggregated as Kubernetes does: the same
 * involvedObject + reason + message again increments `count` and moves
 * `lastTimestamp` instead of creating a new Event. Cluster-scoped objects'
 * Events go to namespace "default". Best effort: failures are logged, not
 * returned. Thread-safe (the recorder has its own client). */
void controller_event(struct controller_env *env, json_t *involved, const char *type,
                      const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* True once the runner is stopping, or the controller no longer leads (for
 * `loop`, which should then return, and long reconciles). */
bool controller_stopping(struct controller_env *env);
/* When the controller's current (or last) leadership term began: wall
 * clock, unix ms, stamped when the elector said it leads (before any
 * worker or loop of that term runs); 0 before it first led. For a
 * controller that must not count time before it could observe anything
 * (the nodes controller's grace period). */
int64_t controller_leading_since(struct controller_env *env);
/* Sleeps up to ms, waking early when the runner stops or leadership is
 * lost. Returns false when stopping (as controller_stopping). */
bool controller_sleep(struct controller_env *env, long ms);

/* ---- for `keel server` and `keel controller` -------------------------- */

/* The definition named name, or NULL (unknown or not built). */
const struct controller_def *controller_find(const char *name);
/* Every known name, NULL-terminated (static). */
const char *const *controller_names(void);

/* Parses a --controllers value: "all", "none", or a comma-separated list
 * of names. Fills enabled[i] for controller_names()[i]. -EINVAL naming an
 * unknown name. */
int controller_parse_list(const char *list, bool *enabled, size_t n, struct kerr *err);

/* Starts the controllers named in list (as controller_parse_list) with
 * options o (copied). Each runs its informers and workers on its own
 * threads; returns once all are started (informers syncing in the
 * background). "none" gives a manager that runs nothing. Errors: -EINVAL
 * (bad list or options), a setup's error, prefixed with the controller's
 * name. *out untouched on failure. */
int controller_manager_start(const struct controller_options *o, const char *list,
                             struct controller_manager **out, struct kerr *err);
/* Stops every controller (workers finish their current key), joins the
 * threads, tears down and frees. Accepts NULL. */
void controller_manager_stop(struct controller_manager *m);
/* Asks every controller to stop (queues shut down, informers told) without
 * waiting; controller_manager_stop then joins. For `keel up`, which stops
 * the API server in between, so that the informers' watch streams end at
 * once instead of at their next round. Accepts NULL. */
void controller_manager_request_stop(struct controller_manager *m);

/* Stops every controller's workers and loop (joined) and releases its
 * leader lease, so that a standby elsewhere takes over at once; the
 * informers keep running until controller_manager_stop. For a process
 * whose API server is about to stop (the release needs it). Accepts NULL. */
void controller_manager_release(struct controller_manager *m);

/* For `keel server`: removes the controller flags from argv (so the
 * server's own parser never sees them) into *o and *list (borrowed from
 * argv; "all" when absent): --controllers=LIST, --scheduler NAME,
 * --node-grace-period D, --node-eviction-timeout D, --event-ttl D
 * (durations: 500ms, 40s, 2m, 1h; a bare number is seconds), both
 * "--flag VALUE" and "--flag=VALUE". -EINVAL naming a bad value. */
int controller_take_flags(int *argc, char **argv, struct controller_options *o,
                          const char **list, struct kerr *err);
/* Help text of those flags (static). */
const char *controller_flags_usage(void);

/* `keel controller NAME [--server URL] [--token T] [flags]`: runs one
 * controller until SIGINT/SIGTERM. Returns the process exit status. */
int controller_main(int argc, char **argv);
