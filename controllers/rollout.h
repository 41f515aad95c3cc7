/*
 * rollout — the pure parts of the tasks controller (Deployments → Tasks):
 * resolving maxSurge/maxUnavailable, how many Tasks to create and delete in
 * one step of a rolling update, which Tasks go first on scale-down, the
 * template hash and Task names, and the revision history kept on the
 * Deployment. No I/O, no clock, no globals: thread-safe, unit-tested by
 * tests/unit/test_rollout.c. The CLI (`keel rollout history|undo`) reads
 * the same history through these functions.
 *
 * Vocabulary. For one Deployment: "new" Tasks carry the current template's
 * hash (label keel/template-hash), "old" Tasks any other hash; "ready" is a
 * Task's status.ready (the agent sets it from the health check, or true
 * when Running without one), and a ready Task counts as available
 * (minReadySeconds is not used). Terminated Tasks (Failed, Succeeded) and
 * Tasks being deleted are not counted: the controller deletes the former
 * and waits for the latter.
 *
 * Revision history. Kubernetes keeps old templates in ReplicaSets; keel
 * has none, so the Deployment carries annotation keel/revision-history, a
 * JSON array of {"revision": N, "hash": H, "template": T} sorted by
 * revision, the highest being the current template, bounded to
 * revisionHistoryLimit old entries plus the current one; annotation
 * keel/revision holds the current revision number, and each Task the
 * revision it was created for (annotation keel/revision). Returning to an
 * older template (`keel rollout undo`) gives it a new revision number, as
 * Kubernetes does, so the history never holds one template twice.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct kerr;

#define ROLLOUT_HASH_LABEL          "keel/template-hash"
#define ROLLOUT_REVISION_ANNOTATION "keel/revision"
#define ROLLOUT_HISTORY_ANNOTATION  "keel/revision-history"
#define ROLLOUT_HASH_LEN            10
#define ROLLOUT_SUFFIX_LEN          5

/* ---- maxSurge / maxUnavailable ---------------------------------------- */

/* Resolves an IntOrString: an integer >= 0 as it is, "N%" as N% of total,
 * rounded up (round_up) or down. NULL or JSON null is 0. Errors: -EINVAL
 * for a negative integer, a string that is not "N%", or another type
 * (message names the value). *out untouched on failure. */
int rollout_int_or_percent(json_t *v, long total, bool round_up, long *out, struct kerr *err);

/* Kubernetes' resolution for a rolling update of `replicas`: maxSurge
 * rounds up, maxUnavailable rounds down; when both come out 0 (e.g. 25%
 * of 1 for maxUnavailable and an explicit maxSurge 0), maxUnavailable
 * becomes 1 so the rollout can proceed. Both given as zero is invalid
 * (-EINVAL: "maxSurge and maxUnavailable may not both be 0"), as the
 * API's validation says. NULL values mean the default "25%". */
int rollout_limits(long replicas, json_t *max_surge, json_t *max_unavailable, long *surge,
                   long *unavailable, struct kerr *err);

/* ---- one step ---------------------------------------------------------- */

struct rollout_counts {
	long replicas;  /* spec.replicas */
	long new_total; /* live Tasks of the current template */
	long new_ready;
	long old_total; /* live Tasks of other templates */
	long old_ready;
};

struct rollout_step {
	long create;             /* new Tasks to create */
	long delete_new;         /* new Tasks to delete (scale-down) */
	long delete_old_unready; /* old Tasks that are not ready, to delete */
	long delete_old_ready;   /* old ready Tasks to delete */
};

/* Rolling update (and plain scaling, which is the case old_total == 0),
 * as Kubernetes' deployment controller does it, both halves in one step:
 *   - scale up: total may reach replicas + surge; create
 *     min(replicas + surge - total, replicas - new_total) when positive;
 *   - scale down: new Tasks beyond replicas are deleted; of the old ones,
 *     at most total - (replicas - unavailable) - (new_total - new_ready)
 *     go, unready ones first, and ready ones only while the ready count
 *     stays >= replicas - unavailable.
 * Creations are counted before deletions of the same step, as they are
 * issued first. With no old Tasks, this is just "make new_total ==
 * replicas". Pure; c, out must be non-NULL. */
void rollout_plan(const struct rollout_counts *c, long surge, long unavailable,
                  struct rollout_step *out);

/* Strategy Recreate: every old Task is deleted first; new ones are created
 * (up to replicas) only once no old Task is left. */
void rollout_plan_recreate(const struct rollout_counts *c, struct rollout_step *out);

/* True when the rollout is complete: replicas new Tasks, all ready, and no
 * old ones. */
bool rollout_complete(const struct rollout_counts *c);

/* ---- scale-down order --------------------------------------------------- */

struct rollout_victim {
	const char *name; /* borrowed; the final tie-break */
	bool scheduled;   /* has a node */
	int phase_rank;   /* 0 Pending, 1 Scheduled, 2 Running (rollout_phase_rank) */
	bool ready;
	int64_t created; /* creationTimestamp, unix seconds */
	size_t index;    /* the caller's; untouched */
};

/* 0 Pending (or no phase), 1 Scheduled, 2 Running; anything else 0. */
int rollout_phase_rank(const char *phase);

/* qsort comparator: the Task to delete first sorts first — unscheduled
 * before scheduled, Pending before Scheduled before Running, not ready
 * before ready, newest first, then name descending (deterministic). */
int rollout_victim_cmp(const void *a, const void *b);

/* ---- names --------------------------------------------------------------- */

/* A stable hash of a template: FNV-1a 64 over its compact JSON with sorted
 * keys, written as ROLLOUT_HASH_LEN characters of
 * "bcdfghjklmnpqrstvwxz2456789" (Kubernetes' alphabet without vowels, so no
 * words). out must hold ROLLOUT_HASH_LEN + 1 bytes. */
void rollout_template_hash(json_t *tmpl, char *out);

/* A Task name suffix: ROLLOUT_SUFFIX_LEN characters of the same alphabet
 * from the random value rnd. out must hold ROLLOUT_SUFFIX_LEN + 1 bytes. */
void rollout_name_suffix(uint64_t rnd, char *out);

/* ---- revision history --------------------------------------------------- */

/* Parses the history annotation text (NULL or "": an empty history).
 * Entries that are not {"revision": int > 0, "hash": string, "template":
 * object} are dropped; the result is sorted by revision. Owned; never
 * NULL. */
json_t *rollout_history_parse(const char *text);

/* Makes hash/tmpl (borrowed; copied in) the current revision of history
 * (modified in place): unchanged when it already is the highest entry;
 * an older entry with that hash moves to revision max + 1; otherwise a new
 * entry max + 1 is appended. Then only `limit` (>= 0) entries besides the
 * current one are kept, the newest. Returns the current revision; *changed
 * (may be NULL) says whether history was modified. */
long rollout_history_record(json_t *history, const char *hash, json_t *tmpl, long limit,
                            bool *changed);

/* The entry (borrowed from history) for revision; revision 0 means the one
 * before the current (the second highest). NULL when there is none. */
json_t *rollout_history_find(json_t *history, long revision);
