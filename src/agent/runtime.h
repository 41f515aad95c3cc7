/*
 * runtime — the one small interface every node runtime implements (docker,
 * process, sim), one file per backend, as crun does for cgroups. The agent
 * (agent.c) owns all policy: what should run, restarts, backoff, health,
 * status. A runtime only does what it is told and reports what it sees.
 *
 * Identity: every container a runtime starts carries the Task's uid, its
 * namespace/name, the attempt number and the Task's grace period (Docker
 * labels keel.task.uid / keel.task.namespace / keel.task.name /
 * keel.task.attempt / keel.task.grace / keel.node; for processes, a record
 * file in the runtime's state directory). list() finds them again after the
 * agent restarts, so it adopts instead of starting duplicates, and stops a
 * container whose Task was deleted meanwhile as that Task asked.
 *
 * Threading: a runtime instance is used by one agent thread at a time,
 * except logs() (and exec() for health checks) and stop() and remove()
 * (the agent's stop workers, agent_stop.c), which may run on other threads
 * concurrently with the rest, each on a different container; backends make
 * those four safe. A backend that sets ops.concurrent makes start() and
 * stats() safe that way too (each on a different task or container): the
 * agent then runs them on its job workers (agent_jobs.c), several at once.
 *
 * Errors: -errno with err filled. -ENOENT: no such container. -ENXIO: the
 * image does not exist (docker; the agent reports reason ImageNotFound).
 * -ECONNREFUSED/-EIO: the engine is unreachable (the agent keeps going and
 * retries). Output parameters are untouched on failure.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kerr;

/* What the agent asks a runtime to run: one attempt of one Task. */
struct rt_task {
	const char *uid;       /* metadata.uid of the Task */
	const char *ns;        /* metadata.namespace */
	const char *name;      /* metadata.name */
	const char *node;      /* the Node this agent runs as */
	json_t *spec;          /* borrowed TaskSpec: image, command, args, env,
	                          resources.requests/limits, ports, ... */
	unsigned attempt;      /* 0 for the first run, +1 per restart */
	const char *spec_hash; /* agent_spec_hash() of spec, recorded with the
	                          container (docker label keel.task.spec-hash,
	                          the process record's specHash); may be NULL */
};

enum rt_state {
	RT_CREATED,  /* created, not started yet */
	RT_RUNNING,
	RT_EXITED,   /* ended; exit_code and reason say how */
	RT_UNKNOWN,
};

/* A published port of a running container: containerPort (spec.ports[])
 * is reachable on the node's address at host_port. Ports: every entry of
 * spec.ports is published, on its hostPort when it names one, else on a
 * free port the runtime picks (docker: the engine's ephemeral range;
 * process: 30000-32767). The task finds the port to listen on in its
 * environment: KEEL_PORT_<NAME> (name upper-cased, '-' as '_') and
 * KEEL_PORT_<containerPort>, and PORT for the first port (unless spec.env
 * sets PORT): the containerPort in a container, which has its own network
 * namespace; host_port for a process, which shares the host's. */
struct rt_port {
	int container_port;
	int host_port; /* 0: not published */
	bool udp;
};

/* What a runtime sees of one of its containers. Strings are owned by the
 * struct (rt_status_clear frees them). */
struct rt_status {
	char *id;          /* runtime id: docker container id, "proc-PID-..." */
	char *task_uid, *ns, *name;
	unsigned attempt;
	enum rt_state state;
	int exit_code;     /* when RT_EXITED; 128+N for signal N */
	int64_t started_at, finished_at; /* unix seconds; 0 unknown */
	char *reason;      /* RT_EXITED: "Completed" (exit 0), "Error",
	                      "OOMKilled", "Killed"; else NULL */
	char *message;     /* optional human detail, or NULL */
	char *ip;          /* address health checks use (docker: the
	                      container's IP; process: "127.0.0.1"); or NULL */
	bool has_grace;    /* grace_s was recorded at start: */
	int grace_s;       /* the Task's terminationGracePeriodSeconds */
	struct rt_port *ports; /* owned; running containers' published ports */
	size_t nports;
	bool host_network; /* the task listens on host_port itself (process):
	                      checks go to ip:host_port, else ip:container_port */
	char *spec_hash;   /* the rt_task.spec_hash it was started with; NULL
	                      when none was recorded (containers of older agents) */
};
void rt_status_clear(struct rt_status *st);

/* The KEEL_PORT_* and PORT variables of the comment above for spec's
 * ports, as "K=V" strings appended to env (a JSON array); host_ports[i]
 * (NULL: the containerPorts) is the value for spec.ports[i]. PORT is left
 * out when spec.env sets it. */
void rt_port_env(json_t *spec, const int *host_ports, json_t *env);
void rt_status_array_free(struct rt_status *sts, size_t n);

struct rt_stats {
	int64_t cpu_millicores; /* average over the last interval; -1 unknown */
	int64_t memory_bytes;   /* current usage; -1 unknown */
};

/* What a runtime tells about itself, for the Node's status. Owned strings. */
struct rt_info {
	char *name;     /* "docker", "process", "sim" */
	char *version;  /* engine version, or keel's */
	char *warning;  /* e.g. "no cgroup limits: cgroup v2 not delegated and no v1 memory controller"; or NULL */
};
void rt_info_clear(struct rt_info *info);

struct rt_log_opts {
	bool follow;      /* keep streaming until the container ends or fn stops */
	long tail;        /* last N lines only; <0 all */
	bool previous;    /* the attempt before the current one (if kept) */
	unsigned attempt; /* which attempt to read when several are kept */
};
/* Called with chunks of output (stdout and stderr interleaved); return
 * non-zero to stop. */
typedef int (*rt_log_fn)(void *ctx, const char *data, size_t len);

struct runtime;

struct runtime_ops {
	const char *name;
	/* Nothing really runs (sim): the agent does not run health checks,
	 * which would probe 127.0.0.1 for a server no one started, and takes
	 * them as passing. */
	bool simulated;
	/* start() and stats() may run on several threads at once (the header
	 * comment's Threading): docker, where each is an engine round trip of
	 * most of a second */
	bool concurrent;
	/* Creates and starts one attempt; *id owned. -ENXIO image not found. */
	int (*start)(struct runtime *rt, const struct rt_task *t, char **id, struct kerr *err);
	/* SIGTERM (docker stop), then SIGKILL after grace_s. Idempotent: a
	 * container that already ended is fine. */
	int (*stop)(struct runtime *rt, const char *id, int grace_s, struct kerr *err);
	/* Removes an ended container and its resources (logs of the attempt may
	 * be kept for `keel logs --previous`). */
	int (*remove)(struct runtime *rt, const char *id, struct kerr *err);
	/* Every container this runtime started for node (running or ended),
	 * keel's only. *out owned (rt_status_array_free). */
	int (*list)(struct runtime *rt, const char *node, struct rt_status **out, size_t *n,
	            struct kerr *err);
	int (*inspect)(struct runtime *rt, const char *id, struct rt_status *out, struct kerr *err);
	int (*logs)(struct runtime *rt, const char *id, const struct rt_log_opts *o, rt_log_fn fn,
	            void *ctx, struct kerr *err);
	int (*stats)(struct runtime *rt, const char *id, struct rt_stats *out, struct kerr *err);
	/* Runs argv inside the container (health checks); *exit_code on
	 * completion; -ETIMEDOUT after timeout_s. */
	int (*exec)(struct runtime *rt, const char *id, char *const argv[], int timeout_s,
	            int *exit_code, struct kerr *err);
	int (*info)(struct runtime *rt, struct rt_info *out, struct kerr *err);
	void (*free)(struct runtime *rt);
};

/* Every backend's struct starts with this. */
struct runtime {
	const struct runtime_ops *ops;
};

static inline void runtime_free(struct runtime *rt)
{
	if (rt)
		rt->ops->free(rt);
}

/* Backends. */
struct rt_docker_options {
	const char *socket;  /* default /var/run/docker.sock */
	long timeout_ms;     /* per API call; default 30 s */
};
int rt_docker_new(const struct rt_docker_options *o, struct runtime **out, struct kerr *err);
/* Answers whether a Docker engine responds on socket (for `keel up`'s choice). */
bool rt_docker_available(const char *socket);

struct rt_process_options {
	const char *state_dir; /* records and logs: DIR/tasks/UID/ATTEMPT/{record,log} */
	const char *cgroup_root; /* NULL: detect (v2 delegated, else v1, else none) */
};
int rt_process_new(const struct rt_process_options *o, struct runtime **out, struct kerr *err);

struct rt_sim_options {
	long start_delay_ms;   /* Created -> Running after this long */
	double fail_fraction;  /* this fraction of tasks exit 1 after run_ms */
	long run_ms;           /* how long a failing task runs; 0: 1 s */
	uint64_t seed;
};
/* One sim runtime may serve many simulated nodes (list filters by node). */
int rt_sim_new(const struct rt_sim_options *o, struct runtime **out, struct kerr *err);
