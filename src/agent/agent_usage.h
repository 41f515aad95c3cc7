/*
 * agent_usage — when a Task's observed usage is worth writing. The agent
 * samples each running Task's CPU and memory (runtime stats) every
 * --status-interval and writes status.usage only when it moved
 * materially, so that an idle node writes nothing while its tasks' usage
 * jitters by a few kilobytes. Pure, thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Whether usage (cpu millicores, memory bytes; -1 unknown) differs enough
 * from what was written last (old_*; -1 unknown, or nothing written) to be
 * written again: CPU by at least 10m and 20% of the old value, memory by
 * at least 1Mi and 10%; a value that becomes known (or unknown) counts. */
bool agent_usage_changed(int64_t old_cpu, int64_t old_mem, int64_t cpu, int64_t mem);
