/*
 * epvm — the E-PVM opportunity-cost placement of Amir, Awerbuch, Barak,
 * Borgstrom and Keren ("An Opportunity Cost Approach for Job Assignment in
 * a Scalable Computing Cluster", IEEE TPDS 2000), as a pure function over
 * plain arrays, so it is fast and can be checked against hand computations.
 *
 * Each resource r of node m with capacity C_r(m) and load l_r(m) costs
 * n^(l_r(m)/C_r(m)), n the number of candidate nodes. Placing a task with
 * demand d_r on m costs the marginal
 *     cost(m) = sum_r [ n^((l_r(m) + d_r)/C_r(m)) - n^(l_r(m)/C_r(m)) ]
 * and the task goes to the feasible node of least cost (ties: lowest index).
 * Load is the larger of the sum of requests bound there and the observed use.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EPVM_RESOURCES 2 /* 0: cpu (millicores), 1: memory (bytes) */

struct epvm_node {
	int64_t capacity[EPVM_RESOURCES]; /* allocatable; > 0 */
	int64_t load[EPVM_RESOURCES];     /* max(bound requests, observed usage) */
	int feasible;                     /* filters passed (Ready, schedulable,
	                                     selector, fits); 0: never chosen */
};

/* Marginal cost of placing demand on node with base n (n >= 2 is used
 * when fewer than two nodes are feasible, so costs stay ordered). */
double epvm_marginal_cost(const struct epvm_node *node, const int64_t demand[EPVM_RESOURCES],
                          double n);

/* Index of the feasible node of least marginal cost, or -1 when none is
 * feasible. n is the number of feasible nodes. costs (may be NULL) gets
 * each node's cost (infeasible: INFINITY). */
long epvm_choose(const struct epvm_node *nodes, size_t count, const int64_t demand[EPVM_RESOURCES],
                 double *costs);
