/*
 * nodes — the node lifecycle controller (controllers/nodes.c): a Node
 * whose agent stopped renewing its lease becomes Ready=Unknown after the
 * grace period (the scheduler then skips it), and after the eviction
 * timeout more its unfinished Tasks are marked Failed with reason
 * NodeLost, so that their owners replace them elsewhere. When the agent
 * comes back it writes Ready=True itself, and stops the containers of
 * Tasks that were marked lost meanwhile.
 *
 * A Task bound to a Node that does not exist (deleted with `keel delete
 * node`, or a nodeName that never registered) is lost too, once it has
 * been so for the grace period, as Kubernetes' pod GC does: nothing else
 * would ever end it, and its Deployment would count it forever.
 *
 * This header is the pure part, unit-tested in tests/unit/test_nodes.c.
 * Threading: pure functions, thread-safe.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum nodes_verdict {
	NODES_ALIVE,   /* heard from within the grace period */
	NODES_UNKNOWN, /* silent longer than the grace period: Ready=Unknown */
	NODES_EVICT,   /* silent longer than grace + eviction: its Tasks are lost */
};

/* Verdict on a node last heard from at alive_ms (wall clock, ms), at
 * now_ms: silent for less than grace_ms is ALIVE, for less than grace_ms +
 * eviction_ms UNKNOWN, else EVICT. */
enum nodes_verdict nodes_judge(int64_t alive_ms, int64_t now_ms, long grace_ms, long eviction_ms);

/* Since when the controller could have heard from every node (unix
 * seconds): the latest of its start, the start of its current leadership
 * term (leading_since; a new leader cannot know whether its predecessor
 * could read or write, e.g. it lost leadership in an etcd quorum loss
 * during which no agent could renew its lease either), and the end of
 * the last period in which its own lease polls failed (store_back; the
 * store answered nothing, so no renewal could be seen or made). A node is
 * judged only on silence after this: once the store is back, every node
 * gets one grace period to renew. <= 0 values are ignored. */
int64_t nodes_observed_since(int64_t controller_start, int64_t leading_since,
                             int64_t store_back);

/* When a node was last heard from (unix seconds): the latest of its
 * lease's renewTime (lease_renew, <= 0: no lease), observed_since (see
 * nodes_observed_since: a node is never judged silent for longer than the
 * controller has been able to see it), and the Node's own
 * creationTimestamp and status.heartbeatTime (node borrowed). */
int64_t nodes_last_heard(json_t *node, int64_t lease_renew, int64_t observed_since);

/* The Node's status.conditions (borrowed array, may be NULL) with Ready
 * set to Unknown (reason NodeStatusUnknown, message saying the agent
 * stopped renewing its lease, lastTransitionTime now_rfc3339, other
 * fields and conditions kept): a new array (owned), or NULL when Ready is
 * Unknown already. */
json_t *nodes_conditions_unknown(json_t *conditions, const char *now_rfc3339);

/* The status of the Node's Ready condition ("True", "False", "Unknown"),
 * or NULL when it has none. Borrowed. */
const char *nodes_ready_status(json_t *node);

/* True when Task task (borrowed) is to be marked lost with its node: not
 * Succeeded or Failed already. */
bool nodes_task_evictable(json_t *task);

/* Tasks orphaned by a missing Node. tasks: array of Tasks (borrowed);
 * nodes: object whose keys are the names of the Nodes that exist
 * (borrowed). seen (task key -> now_ms when it was first found orphaned)
 * is kept by the caller between calls: an unfinished Task (see
 * nodes_task_evictable) whose spec.nodeName is not in nodes is added at
 * now_ms if new; every other entry is dropped. Returns the keys (new
 * array of strings, owned) of the orphans seen for at least grace_ms. */
json_t *nodes_orphans(json_t *seen, json_t *tasks, json_t *nodes, int64_t now_ms, long grace_ms);
