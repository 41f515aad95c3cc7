/*
 * epvm — the E-PVM opportunity-cost placement of Amir, Awerbuch, Barak,
 * Borgstrom and Keren ("An Opportunity Cost Approach for Job Assignment in
 * a Scalable Computing Cluster", IEEE TPDS 2000), as a pure function over
 * plain arrays, so it is fast and can be checked against hand computations.
 *
 * Each resource r of node m with capacity C_r(m) and load l_r(m) costs
 * w_r(m) * n^(l_r(m)/C_r(m)), n the number of candidate (feasible) nodes
 * and w_r(m) = C_r(m) / mean_r the node's capacity relative to the mean
 * capacity of the candidates. Placing a task with demand d_r on m costs the
 * marginal
 *     cost(m) = sum_r w_r(m) * [ n^((l_r(m) + d_r)/C_r(m)) - n^(l_r(m)/C_r(m)) ]
 * and the task goes to the feasible node of least cost (ties: lowest index).
 * Load is the larger of the sum of requests bound there and the observed use.
 *
 * The weight. The paper's cost of a machine is sum_r n^(u_r), u_r its
 * utilization; on equal machines w = 1 and this is that formula. On
 * unequal ones, unweighted, a unit of CPU at utilization u would cost
 * n^u ln n / C(m): 16 times less on a node 16 times bigger, so small Tasks
 * went to the big nodes first (at equilibrium a big node ran log_n 16
 * fuller than a small one: 0.86 with 25 nodes) and used up the only room
 * big Tasks fit in. Weighted, a unit costs n^u ln n / mean on every node:
 * the price of a resource depends on how full it is, not on the size of
 * the machine it is on, and load spreads to equal utilization.
 * tests/bench/bench_sched.c measures both (section 2).
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
 * when fewer than two nodes are feasible, so costs stay ordered) and the
 * candidates' mean capacity mean (> 0; NULL: the node's own, w = 1). */
double epvm_marginal_cost(const struct epvm_node *node, const int64_t demand[EPVM_RESOURCES],
                          double n, const double mean[EPVM_RESOURCES]);

/* mean = the mean capacity of the feasible nodes (0 when none); returns
 * how many are feasible. */
size_t epvm_mean_capacity(const struct epvm_node *nodes, size_t count,
                          double mean[EPVM_RESOURCES]);

/* Index of the feasible node of least marginal cost, or -1 when none is
 * feasible. n is the number of feasible nodes, mean their mean capacity
 * (epvm_mean_capacity). costs (may be NULL) gets
 * each node's cost (infeasible: INFINITY). */
long epvm_choose(const struct epvm_node *nodes, size_t count, const int64_t demand[EPVM_RESOURCES],
                 double *costs);
