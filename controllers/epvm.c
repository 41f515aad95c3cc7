/*
 * epvm — the E-PVM marginal cost (DESIGN.md "E-PVM"): each resource's cost
 * is w * n^(load/capacity), n the number of candidate (feasible) nodes and
 * w the node's capacity over the candidates' mean (1 on equal nodes: the
 * paper's formula; epvm.h says why), and a task costs the increase of the
 * sum over CPU and memory. Nothing else is folded in: no tuning constants,
 * no special case for empty nodes, so the unit tests can check it against
 * costs computed by hand.
 *
 * With one feasible node (or none) n would be 1 and every cost 0; base 2
 * is used instead so that costs stay ordered and printable. The choice
 * among one node does not depend on it.
 */
#include "controllers/epvm.h"

#include <math.h>

double epvm_marginal_cost(const struct epvm_node *node, const int64_t demand[EPVM_RESOURCES],
                          double n, const double mean[EPVM_RESOURCES])
{
	if (n < 2)
		n = 2;
	double cost = 0;
	for (int r = 0; r < EPVM_RESOURCES; r++) {
		if (node->capacity[r] <= 0)
			return INFINITY;
		double c = (double)node->capacity[r];
		double l = (double)node->load[r];
		double d = (double)demand[r];
		double w = mean && mean[r] > 0 ? c / mean[r] : 1;
		cost += w * (pow(n, (l + d) / c) - pow(n, l / c));
	}
	return cost;
}

size_t epvm_mean_capacity(const struct epvm_node *nodes, size_t count,
                          double mean[EPVM_RESOURCES])
{
	size_t feasible = 0;
	double sum[EPVM_RESOURCES] = {0};
	for (size_t i = 0; i < count; i++) {
		if (!nodes[i].feasible)
			continue;
		feasible++;
		for (int r = 0; r < EPVM_RESOURCES; r++)
			sum[r] += (double)nodes[i].capacity[r];
	}
	for (int r = 0; r < EPVM_RESOURCES; r++)
		mean[r] = feasible ? sum[r] / (double)feasible : 0;
	return feasible;
}

long epvm_choose(const struct epvm_node *nodes, size_t count, const int64_t demand[EPVM_RESOURCES],
                 double *costs)
{
	double mean[EPVM_RESOURCES];
	double n = (double)epvm_mean_capacity(nodes, count, mean);
	long best = -1;
	double best_cost = INFINITY;
	for (size_t i = 0; i < count; i++) {
		double c = nodes[i].feasible ? epvm_marginal_cost(&nodes[i], demand, n, mean) : INFINITY;
		if (costs)
			costs[i] = c;
		/* Strictly less: of equal costs the lowest index wins. */
		if (nodes[i].feasible && !isinf(c) && (best < 0 || c < best_cost)) {
			best = (long)i;
			best_cost = c;
		}
	}
	return best;
}
