/*
 * agent_internal — what the agent's files share: the agent object and the
 * entry points of its threads.
 *
 * Threads and what they own:
 *   watch      (agent_watch.c)  keeps `cache` (uid -> Task) from list+watch
 *   reconcile  (agent_task.c)   the only user of the runtime (except logs and
 *                               exec), owns the per-task states `tstates`,
 *                               writes Task status
 *   nodes      (agent_node.c)   registers Nodes, renews leases, writes Node
 *                               status when it changed
 *   health     (agent_health.c) runs health checks, publishes results
 *   log server (agent_logsrv.c) MHD threads serving /logs
 *   stop workers (agent_stops.c) carry out the stops reconcile queues, so
 *                               that a grace period blocks nothing else
 *   job workers (agent_jobs.c)  carry out the starts and stats samples
 *                               reconcile queues (concurrent runtimes)
 * Everything marked "mu" below is guarded by agent.mu; the reconcile thread
 * is woken through agent.cond.
 */
#pragma once

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/agent_opts.h"
#include "agent/backoff.h"
#include "agent/runtime.h"

struct client;
struct kerr;

#define AGENT_THREADS 4
#define AGENT_STOP_WORKERS 4
/* starts and stats samples at once (agent_jobs.c); tests/bench/run's
 * docker floor uses the same parallelism (DOCKER_PARALLEL) */
#define AGENT_JOB_WORKERS 8

struct anode {
	char *name;
	int64_t next_lease_ms;        /* nodes thread */
	json_t *written;              /* nodes thread: last status content written */
	int64_t ready_since;          /* nodes thread: lastTransitionTime */
	bool registered;              /* nodes thread */
	int64_t lease_ok_ms;          /* nodes thread: last successful renewal (monotonic) */
	bool lease_failed;            /* nodes thread: the last renewal failed */
	bool lease_lost;              /* mu: another agent holds the lease */
	int64_t usage_cpu, usage_mem; /* mu: published by reconcile */
};

struct health_job; /* agent_health.c */

/* A start or a stats sample carried out by a job worker (agent_jobs.c). */
enum agent_job_kind { AGENT_JOB_START, AGENT_JOB_STATS };
struct agent_job {
	struct agent_job *next;
	enum agent_job_kind kind;
	char *key; /* start: the Task's uid; stats: the container id */
	/* start: what rt_task holds (owned copies); stats: uid (or NULL) */
	char *uid, *ns, *name, *node, *spec_hash;
	json_t *spec;
	unsigned attempt;
	/* the result: r < 0 with msg, else id (start) or stats */
	int r;
	char *id, *msg;
	struct rt_stats stats;
};

struct agent {
	const struct agent_opts *o; /* borrowed: outlives the agent */
	char *server, *token; /* resolved */
	char *ca;             /* resolved; NULL: the system's trust store */
	char *data_dir;
	struct runtime *rt;
	struct rt_info info;
	struct backoff bo;
	int64_t cap_cpu, cap_mem;
	struct anode *nodes;
	size_t nnodes;
	json_t *node_index; /* name -> index (integer); read-only after start */
	char *hostname;
	char *holder; /* lease holder identity, kept in DATA_DIR/agent-identity */
	char *log_endpoint; /* "http://HOST:PORT" once the log server runs */
	char *address;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool dirty;              /* mu: something changed, reconcile now */
	bool synced;             /* mu: the first list has arrived */
	json_t *cache;           /* mu: uid -> Task */
	json_t *logs_index;      /* mu: "ns/name" -> {"id": current, "prev": previous} */
	struct health_job *jobs; /* mu: linked list */
	atomic_bool stop;

	json_t *tstates; /* reconcile thread: uid -> struct atask * (as integer) */
	int64_t next_usage_ms;
	int64_t next_wake_ms; /* reconcile thread: earliest backoff end; 0 none */
	bool again;           /* reconcile thread: started something, look again soon */
	struct MHD_Daemon *mhd;
	struct srv_conns *conns; /* the log server's request deadlines */
	/* the log keys (agent_logsrv.c), under key_mu: log_keys[i] is
	 * nodes[i]'s (NULL: not read yet); keys_read_ms when last read */
	pthread_mutex_t key_mu;
	char **log_keys;
	int64_t keys_read_ms;

	/* stop workers (agent_stops.c); all under stop_mu */
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cond;
	struct stop_job *stop_q; /* queued, oldest first */
	json_t *stop_ids;        /* id -> true: queued or being stopped */
	size_t stop_busy;        /* jobs being carried out */
	bool stop_quit;
	pthread_t stop_threads[AGENT_STOP_WORKERS];
	bool stop_started[AGENT_STOP_WORKERS];

	/* job workers (agent_jobs.c); all under job_mu but the threads */
	pthread_mutex_t job_mu;
	pthread_cond_t job_cond;
	struct agent_job *job_q;    /* queued, oldest first */
	struct agent_job *job_done; /* carried out, newest first, not taken yet */
	json_t *job_keys;           /* key -> true: queued, under way or done */
	size_t job_busy;     /* jobs under way */
	size_t job_starting; /* of which starts: samples wait for them */
	bool job_quit;
	bool jobs_on; /* workers run: the runtime is concurrent */
	pthread_t job_threads[AGENT_JOB_WORKERS];
	bool job_started[AGENT_JOB_WORKERS];

	/* agent_start/agent_stop (agent_main.c), on the caller's thread */
	pthread_t threads[AGENT_THREADS]; /* watch, reconcile, nodes, health */
	bool started[AGENT_THREADS];
	bool stopped;
};

/* A client for one thread (its own connection). Never fails but on a bad
 * URL, which agent_main checked already. */
struct client *agent_client(struct agent *a);
/* Like agent_client, but with another bearer token (borrowed; copied). */
struct client *agent_client_as(struct agent *a, const char *token);

/* Wakes the reconcile thread. Takes mu. */
void agent_wake(struct agent *a);

/* Thread bodies (arg: struct agent *). */
void *agent_watch_thread(void *arg);
void *agent_reconcile_thread(void *arg);
void *agent_nodes_thread(void *arg);
void *agent_health_thread(void *arg);

/* Registers every node (several threads for many sim nodes); returns when
 * all are registered or -errno after the first hard failure. */
int agent_nodes_register(struct agent *a, struct kerr *err);
/* The leaseDurationSeconds an agent renewing every heartbeat_ms asks for. */
int agent_lease_duration_s(int64_t heartbeat_ms);
/* Capacity of this machine from /proc. */
void agent_host_capacity(int64_t *cpu_milli, int64_t *mem_bytes);

/* Health results for the reconcile thread, under mu. */
struct health_view {
	bool has_check;
	bool ready;
	bool unhealthy; /* failureThreshold consecutive failures */
	char *message;  /* owned: last failure, or NULL */
};
/* Makes sure a job exists for (uid, cid) with check; reads its result. */
void agent_health_sync(struct agent *a, const char *uid, const char *cid, const char *ip,
                       json_t *check, struct health_view *out);
/* Drops the job of uid (container gone or restarted). */
void agent_health_drop(struct agent *a, const char *uid);

/* The terminationGracePeriodSeconds the reconcile thread knows for the
 * Task uid (NULL or unknown: the default, 30). Only once the reconcile
 * thread has ended, or from it. */
int agent_task_grace_s(struct agent *a, const char *uid);
/* Frees the reconcile thread's per-task states (after it has ended). */
void agent_tasks_free(struct agent *a);
/* Frees the health jobs (after the health thread has ended). */
void agent_health_free(struct agent *a);

/* Stop workers (agent_stops.c). init starts them (before the reconcile
 * thread). queue: stops container id (SIGTERM, SIGKILL after grace_s) on
 * a worker, then removes it when remove is set; false when id is queued or
 * being stopped already, or the workers are shutting down. pending: id is
 * queued or being stopped. Both from any thread. finish: drops what is
 * queued (unless drain), waits for the stops under way, ends the workers;
 * after the reconcile thread has ended. free: after finish. */
void agent_stops_init(struct agent *a);
bool agent_stops_queue(struct agent *a, const char *id, int grace_s, bool remove);
bool agent_stops_pending(struct agent *a, const char *id);
void agent_stops_finish(struct agent *a, bool drain);
void agent_stops_free(struct agent *a);

/* Job workers (agent_jobs.c), for a concurrent runtime only (jobs_on:
 * else init starts none and the reconcile thread calls the runtime
 * itself). init: before the reconcile thread. start/stats queue a job
 * (false: its key is busy, or the workers are shutting down); busy: the
 * key's job is queued, under way or done and not taken. take: the jobs
 * carried out since the last take, oldest first, each to free with
 * agent_job_free; their keys are free again. The reconcile thread alone
 * queues and takes. finish: after the reconcile thread has ended; drops
 * what is queued, waits for what is under way. free: after finish. */
void agent_jobs_init(struct agent *a);
bool agent_jobs_on(const struct agent *a);
bool agent_jobs_start(struct agent *a, const struct rt_task *t);
bool agent_jobs_stats(struct agent *a, const char *id, const char *uid);
bool agent_jobs_busy(struct agent *a, const char *key);
struct agent_job *agent_jobs_take(struct agent *a);
void agent_job_free(struct agent_job *j);
void agent_jobs_finish(struct agent *a);
void agent_jobs_free(struct agent *a);

/* Log server (agent_logsrv.c). */
int agent_logsrv_start(struct agent *a, struct kerr *err);
void agent_logsrv_stop(struct agent *a);
