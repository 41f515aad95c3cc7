/*
 * agent — keel's node agent: registers its Node, renews its lease, watches
 * the Tasks bound to it and makes its runtime match them.
 *
 * As a command (agent_main) or as a library (agent_start/agent_stop/
 * agent_free), for `keel up`, which runs one agent beside the API server
 * and the controllers in its own process.
 */
#pragma once

#include <stdbool.h>

#include "agent/agent_opts.h"

struct kerr;
struct agent;

/* `keel agent [flags]`: argv[0] is "agent". Returns the process exit code. */
int agent_main(int argc, char **argv);

/* Resolves the server (o->server/token/config as the CLI does), builds the
 * runtime, starts the log server, registers the Node(s) (retrying for a
 * few seconds while the server starts) and starts the agent's threads.
 * o is borrowed and must outlive the agent. SIGINT/SIGTERM are the
 * caller's: block them before this call to sigwait for them (the threads
 * inherit the mask); SIGPIPE should be ignored. Nothing is printed (log
 * lines aside).
 * Errors (-errno, err filled): a bad server URL, no data directory, a
 * CA file that cannot be read (-EBADF, naming it and where it came
 * from), a runtime that cannot start (-EIO), registration refused
 * (-EACCES: the server does not know the token, "the token is not valid
 * for SERVER"). *out untouched
 * on failure. */
int agent_start(const struct agent_opts *o, struct agent **out, struct kerr *err);

/* Stops the agent's loops (the reconcile loop finishes its step). Its
 * tasks keep running, as under a kubelet — unless o->stop_tasks_on_exit,
 * in which case every container of its nodes is stopped (SIGTERM, then
 * SIGKILL after the Task's grace period) and removed. Idempotent; NULL ok. */
void agent_stop(struct agent *a);

/* agent_stop, then waits up to wait_ms for the watch thread (which ends
 * when its stream does: at once when the server has stopped) and frees.
 * Returns false when that thread did not end: the agent's memory is then
 * left to it (the process is about to exit). NULL ok. */
bool agent_free(struct agent *a, long wait_ms);

/* Borrowed strings, valid until agent_free. */
const char *agent_runtime_name(const struct agent *a); /* "docker", "process", "sim" */
const char *agent_node_name(const struct agent *a);    /* the (first) node's name */
const char *agent_log_endpoint(const struct agent *a);
