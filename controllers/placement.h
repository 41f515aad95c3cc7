/*
 * placement — the scheduler's decision as a pure function over plain
 * arrays: filter the nodes (Ready, schedulable, nodeSelector, requests
 * fit allocatable minus what is bound), then choose among the feasible
 * ones by policy: E-PVM (epvm.h), round-robin (the baseline E-PVM is
 * measured against) or first-fit (lowest index; for comparisons).
 *
 * No I/O, no clock, no locking: the scheduler (scheduler.c) keeps one
 * placement under its mutex, fed from its informers; the benchmarks
 * (tests/bench/bench_sched.c) drive the same code with synthetic nodes.
 *
 * E-PVM, fast and exact. Every feasible node is scored. The marginal cost
 * of epvm.h is rewritten with the identity
 *     n^((l+d)/C) - n^(l/C) = n^(l/C) * (n^(d/C) - 1)
 * where n^(l/C) depends only on the node (kept per node, recomputed when
 * its load or n changes) and n^(d/C) - 1, times the weight C/mean, only
 * on the demand and the node's capacity (computed once per distinct
 * capacity per decision, with expm1 for accuracy; the mean capacity of
 * the feasible nodes is summed by the filter pass). So scoring a node is two multiplications and no
 * transcendental call in the common case. The result equals
 * epvm_marginal_cost() up to floating-point rounding (tests/unit/
 * test_placement.c checks that the chosen node's cost is the reference
 * minimum).
 *
 * Non-zero requests, as kube-scheduler has them: for scoring only, a Task
 * that requests no CPU counts as PLACEMENT_DEFAULT_CPU and one that
 * requests no memory as PLACEMENT_DEFAULT_MEMORY, both in the demand d
 * and in the load its binding adds to a node (placement_node.scored).
 * Without it, a demand of 0 costs 0 everywhere and every request-less
 * Task goes to the first node. The filters use the real requests (bound):
 * a Task asking nothing fits wherever there is room for nothing.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controllers/epvm.h"

/* kube-scheduler's DefaultMilliCPURequest and DefaultMemoryRequest. */
#define PLACEMENT_DEFAULT_CPU    100                /* millicores */
#define PLACEMENT_DEFAULT_MEMORY (200LL * 1024 * 1024) /* bytes: 200Mi */

enum placement_policy { PLACEMENT_EPVM, PLACEMENT_ROUND_ROBIN, PLACEMENT_FIRST_FIT };

/* Why a node was filtered out, in filter order (one reason per node). */
enum placement_why {
	PLACEMENT_NOT_READY,
	PLACEMENT_UNSCHEDULABLE,
	PLACEMENT_SELECTOR,
	PLACEMENT_CPU,
	PLACEMENT_MEMORY,
	PLACEMENT_WHY_N
};

/* "not ready", "unschedulable", "node selector mismatch", "insufficient
 * cpu", "insufficient memory". */
extern const char *const placement_why_text[PLACEMENT_WHY_N];

struct placement_node {
	int64_t alloc[EPVM_RESOURCES]; /* allocatable: cpu millicores, memory bytes */
	int64_t usage[EPVM_RESOURCES]; /* observed, as the agent reports it */
	int64_t bound[EPVM_RESOURCES]; /* requests of the unfinished Tasks bound here */
	int64_t scored[EPVM_RESOURCES]; /* their non-zero requests (placement_nonzero):
	                                   the load E-PVM scores with */
	bool ready, unschedulable;
	json_t *labels; /* borrowed; NULL: no labels */

	/* Kept by placement.c; callers leave them alone. */
	uint32_t cls;                 /* index of the node's capacity class */
	double base_n;                /* n that base[] was computed for; 0: stale */
	double base[EPVM_RESOURCES];  /* n^(load_r / alloc_r) */
};

struct placement {
	struct placement_node *nodes; /* owned */
	size_t n;

	/* Private. */
	int64_t (*cls_cap)[EPVM_RESOURCES]; /* distinct capacities */
	size_t ncls;
	double *factor;   /* ncls x EPVM_RESOURCES: C/mean * (n^(d/C) - 1) */
	uint64_t *fgen;   /* per class: the decision factor[] was made for */
	uint64_t gen;     /* decision counter */
	uint8_t *ok;      /* per node: feasible in the current decision */
	size_t rr_next;
};

#define PLACEMENT_INIT {0}

/* Takes ownership of nodes (n entries, from malloc; NULL when n is 0),
 * frees what p held, and groups the nodes by capacity. Keeps the
 * round-robin position (modulo the new count). */
void placement_reset(struct placement *p, struct placement_node *nodes, size_t n);

/* Frees everything p holds and zeroes it. Accepts a zeroed p. */
void placement_free(struct placement *p);

/* out = d with each 0 (or negative) entry replaced by its default
 * (PLACEMENT_DEFAULT_CPU, PLACEMENT_DEFAULT_MEMORY): what a Task asking d
 * counts for in scoring. out may be d. */
void placement_nonzero(const int64_t d[EPVM_RESOURCES], int64_t out[EPVM_RESOURCES]);

/* Node i's bound requests change by sign * d (sign +1 on bind, -1 when a
 * Task ends or moves), and its scored load by sign * placement_nonzero(d).
 * Its cached cost is refreshed lazily. */
void placement_add(struct placement *p, size_t i, const int64_t d[EPVM_RESOURCES], int sign);

/* Node i's observed usage is now usage. */
void placement_set_usage(struct placement *p, size_t i, const int64_t usage[EPVM_RESOURCES]);

/* Filters the nodes for a Task asking d with nodeSelector selector (a JSON
 * object of label: value, or NULL) and chooses one by policy. Returns the
 * node's index, or -1 when none is feasible. why (may be NULL; zeroed by
 * the caller) counts the reasons of the nodes filtered out; *feasible
 * (may be NULL) gets how many passed; *cost (may be NULL) the chosen
 * node's E-PVM cost (0 for the other policies) for the demand
 * placement_nonzero(d) over the nodes' scored loads. The filters use d
 * and bound as they are. Does not bind: call placement_add() for the
 * chosen node. */
long placement_choose(struct placement *p, enum placement_policy policy,
                      const int64_t d[EPVM_RESOURCES], json_t *selector,
                      unsigned why[PLACEMENT_WHY_N], size_t *feasible, double *cost);
