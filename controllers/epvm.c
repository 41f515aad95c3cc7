/*
 * epvm — the E-PVM marginal cost (DESIGN.md "E-PVM"), as written in the
 * paper: each resource's cost is n^(load/capacity), n the number of
 * candidate (feasible) nodes, and a task costs the increase of the sum
 * over CPU and memory. Nothing else is folded in: no weights, no
 * normalisation, no special case for empty nodes, so the unit tests can
 * check it against costs computed by hand.
 *
 * With one feasible node (or none) n would be 1 and every cost 0; base 2
 * is used instead so that costs stay ordered and printable. The choice
 * among one node does not depend on it.
 */
#include "controllers/epvm.h"

#include <math.h>

double epvm_marginal_cost(const struct epvm_node *node, const int64_t demand[EPVM_RESOURCES],
                          double n)
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
		cost += pow(n, (l + d) / c) - pow(n, l / c);
	}
	return cost;
}

long epvm_choose(const struct epvm_node *nodes, size_t count, const int64_t demand[EPVM_RESOURCES],
                 double *costs)
{
	size_t feasible = 0;
	for (size_t i = 0; i < count; i++)
		feasible += nodes[i].feasible != 0;
	double n = (double)feasible;
	long best = -1;
	double best_cost = INFINITY;
	for (size_t i = 0; i < count; i++) {
		double c = nodes[i].feasible ? epvm_marginal_cost(&nodes[i], demand, n) : INFINITY;
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
