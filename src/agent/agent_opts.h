/*
 * agent_opts — `keel agent` flags and the duration parser they use. Pure
 * (reads nothing but argv), thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct kerr;

enum agent_runtime_kind { AGENT_RT_DOCKER, AGENT_RT_PROCESS, AGENT_RT_SIM };

struct agent_opts {
	char *server, *token, *config; /* owned or NULL: resolved later by client_config_resolve */
	char *ca;                      /* owned or NULL; --ca FILE, resolved the same way */
	char *name;                    /* owned or NULL: lowercased hostname */
	enum agent_runtime_kind runtime; /* --runtime, default process */
	bool runtime_set;
	long simulate;              /* --simulate N: N sim nodes NAME-0000...; 0: one node NAME */
	int64_t cpus_milli;         /* --cpus, millicores; 0: from /proc */
	int64_t memory_bytes;       /* --memory, bytes; 0: from /proc */
	char *labels;               /* owned or NULL; "k=v,k2=v2" */
	char *data_dir;             /* owned or NULL: DATA/agent */
	int64_t heartbeat_ms;       /* --heartbeat-interval, default 10s */
	int64_t status_ms;          /* --status-interval, default 30s */
	int64_t backoff_base_ms;    /* default 10s */
	int64_t backoff_max_ms;     /* default 5m */
	int64_t backoff_reset_ms;   /* default 10m */
	char *log_listen;           /* owned; default "127.0.0.1:0" */
	char *docker_socket;        /* owned or NULL */
	int64_t sim_start_delay_ms; /* default 1s */
	double sim_fail_fraction;   /* default 0 */
	int log_level;              /* enum log_level; default info */
	bool stop_tasks_on_exit;    /* --stop-tasks-on-exit: stop and remove them in agent_stop */
	bool insecure_listen;       /* --insecure-listen: --log-listen off loopback allowed */
	bool help;
};

void agent_opts_init(struct agent_opts *o);
void agent_opts_free(struct agent_opts *o);

/* Parses argv[1..argc) ("--flag value" or "--flag=value"); argv[0] is
 * "agent". Returns 0, or -EINVAL with a message naming the flag. */
int agent_opts_parse(struct agent_opts *o, int argc, char **argv, struct kerr *err);

/* The --help text (static). */
const char *agent_opts_usage(void);

/* "10s", "200ms", "5m", "1h", "1.5s"; a bare number is seconds. Returns 0
 * and *ms, or -EINVAL. */
int agent_parse_duration_ms(const char *s, int64_t *ms, struct kerr *err);

/* Validates "k=v,k2=v2" and fills obj (a JSON object) with the pairs.
 * Returns 0 or -EINVAL naming the bad pair. */
#include <jansson.h>
int agent_parse_labels(const char *s, json_t *obj, struct kerr *err);
