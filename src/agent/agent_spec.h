/*
 * agent_spec — which spec a container runs: a short hash over the fields
 * of a TaskSpec that the runtime bakes into a container when it creates
 * it (image, command, args, env, resources, ports). The agent records it
 * with every container it starts (runtime.h: rt_task.spec_hash) and
 * replaces a container whose hash is not its Task's, as kubelet does with
 * its container hash; an agent that adopts containers after a restart
 * compares the same way.
 *
 * Left out on purpose: nodeName (immutable once bound), nodeSelector
 * (scheduling only), restartPolicy (read when a container ends),
 * healthCheck and terminationGracePeriodSeconds (the agent applies new
 * values to the running container). Editing only those never restarts.
 *
 * Pure; thread-safe.
 */
#pragma once

#include <jansson.h>

/* 16 lower-case hex digits (64-bit FNV-1a of the canonical JSON of those
 * fields, keys sorted), owned by the caller. A NULL or non-object spec
 * hashes like an empty one. Never NULL. */
char *agent_spec_hash(json_t *spec);
