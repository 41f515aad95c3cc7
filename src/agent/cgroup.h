/*
 * cgroup — the process runtime's private cgroup helpers: find out what this
 * host lets keel use (cgroup v2 with memory+cpu delegated, else the v1
 * memory / cpu / cpuacct hierarchies, else nothing), create one cgroup per
 * task attempt with its limits, read usage and OOM kills, remove it.
 *
 * A task's cgroup is named by the caller (the runtime uses UID-ATTEMPT) and
 * lives under a "keel" directory in each hierarchy:
 *   v2: ROOT/keel/NAME            (memory.max, cpu.max, cpu.stat, memory.events)
 *   v1: ROOT/memory/keel/NAME     (memory.limit_in_bytes, memory.oom_control)
 *       ROOT/cpu/keel/NAME        (cpu.cfs_quota_us / cpu.cfs_period_us;
 *                                  "cpu,cpuacct" when mounted together)
 *       ROOT/cpuacct/keel/NAME    (cpuacct.usage)
 * A struct cg_set names those directories (NULL where a controller is
 * missing); the runtime stores them in its record file so that a restarted
 * agent finds them again without detecting anything.
 *
 * Library code: nothing prints; errors are -errno with err filled.
 * Not thread-safe for one cg_host; the read helpers are pure file reads and
 * may run on any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct kerr;

enum cg_mode { CG_NONE = 0, CG_V1, CG_V2 };

/* What the host offers. Owned strings; cg_host_clear frees them. */
struct cg_host {
	enum cg_mode mode;
	char *v2;      /* v2: ROOT/keel, the parent of task cgroups */
	char *mem;     /* v1: ROOT/memory/keel, or NULL */
	char *cpu;     /* v1: ROOT/cpu/keel (cfs quota), or NULL */
	char *cpuacct; /* v1: ROOT/cpuacct/keel (usage), or NULL */
	char *warning; /* why limits are missing or partial, or NULL */
};

/* One task's cgroup directories. Owned strings. */
struct cg_set {
	enum cg_mode mode;
	char *v2, *mem, *cpu, *cpuacct;
};

/* Detects what is usable under root (NULL: /sys/fs/cgroup; "none": use no
 * cgroups). Creates the keel parent directories (and, for v2, enables
 * +memory +cpu in the root's and keel's cgroup.subtree_control). Never fails:
 * what cannot be used is explained in out->warning. */
void cg_host_detect(const char *root, struct cg_host *out);
void cg_host_clear(struct cg_host *h);

/* Creates the cgroup NAME (a single path component) in every available
 * hierarchy and applies the limits (memory_bytes <= 0 / cpu_millicores <= 0:
 * none). A leftover empty cgroup of the same name is replaced. Returns 0,
 * -EBUSY when NAME exists and holds processes, -errno when a directory or a
 * limit cannot be written (what was created is removed again). */
int cg_set_create(const struct cg_host *h, const char *name, int64_t memory_bytes,
                  int64_t cpu_millicores, struct cg_set *out, struct kerr *err);

/* The cgroup.procs files a new process must write its pid into to join s,
 * up to 4, as owned strings in paths[]; returns how many. Computed before a
 * fork so that the child only has to open and write. */
int cg_set_procs_paths(const struct cg_set *s, char *paths[4]);

/* Async-signal-safe: writes pid into each of paths[0..n) (after fork). */
int cg_join_raw(char *const paths[], int n, int pid);

/* Removes the directories of s (rmdir; retried briefly while the kernel
 * finishes tearing down exited processes). Missing directories are fine.
 * Returns 0 or -errno (-EBUSY: still has processes). */
int cg_set_remove(const struct cg_set *s, struct kerr *err);

/* Current memory charge in bytes (memory.current / memory.usage_in_bytes),
 * or -1 when there is no memory cgroup or it cannot be read. */
int64_t cg_set_memory(const struct cg_set *s);

/* Cumulative CPU time in nanoseconds (cpu.stat usage_usec / cpuacct.usage),
 * or -1. */
int64_t cg_set_cpu_ns(const struct cg_set *s);

/* Number of OOM kills inside s (memory.events oom_kill / memory.oom_control
 * oom_kill), 0 when none or unknown. Async-signal-safe (no allocation):
 * the supervisor calls it after the task exits. */
long cg_oom_kills_raw(enum cg_mode mode, const char *memdir);

void cg_set_clear(struct cg_set *s);
