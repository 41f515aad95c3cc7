/*
 * E-PVM (controllers/epvm.c) against costs computed by hand. Every
 * expected value is written out as arithmetic from the formula of
 * DESIGN.md "E-PVM" and epvm.h:
 *     cost(m) = sum_r w_r * [ n^((l_r + d_r)/C_r) - n^(l_r/C_r) ],  n = #feasible,
 *     w_r = C_r / (mean C_r over the feasible nodes)   (1 on equal nodes)
 * Resources: r = 0 cpu, r = 1 memory.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "controllers/epvm.h"

#define EPS 1e-9

static struct epvm_node node(int64_t cap, int64_t load, int feasible)
{
	struct epvm_node n = {{cap, cap}, {load, load}, feasible};
	return n;
}

/* Two equal nodes (capacity 1000 of each), one half loaded: the empty one
 * is cheaper and wins. */
static void test_less_loaded_wins(void **state)
{
	(void)state;
	struct epvm_node ns[2] = {node(1000, 500, 1), node(1000, 0, 1)};
	int64_t d[2] = {100, 100};
	double costs[2];
	long i = epvm_choose(ns, 2, d, costs);
	/* n = 2 feasible.
	 * node 0: 2 * (2^(600/1000) - 2^(500/1000)) = 2 * (1.515717 - 1.414214) = 0.203006
	 * node 1: 2 * (2^(100/1000) - 2^(0/1000))   = 2 * (1.071773 - 1)        = 0.143547 */
	assert_float_equal(costs[0], 2 * (pow(2, 0.6) - pow(2, 0.5)), EPS);
	assert_float_equal(costs[0], 0.2030060, 1e-6);
	assert_float_equal(costs[1], 2 * (pow(2, 0.1) - 1), EPS);
	assert_float_equal(costs[1], 0.1435469, 1e-6);
	assert_int_equal(i, 1);
}

/* A unit of a resource is priced by how full it is, not by the size of
 * the node: 500 on an empty 1000 node against 500 on a 16000 node that is
 * half full. Mean capacity 8500: w = 1000/8500 = 2/17 and 16000/8500 =
 * 32/17.
 *   small: 2/17  * 2 * (2^(500/1000) - 2^0)             = 2/17 * 0.828427  = 0.097462
 *   big:   32/17 * 2 * (2^(8500/16000) - 2^(8000/16000)) = 32/17 * 0.061934 = 0.116583
 * The empty small node wins. (Unweighted, the paper's per-machine sum,
 * 0.828427 against 0.061934: the big busy node would win by 13x — what
 * sent small Tasks to big nodes.) */
static void test_empty_small_node_beats_half_full_big(void **state)
{
	(void)state;
	struct epvm_node ns[2] = {node(1000, 0, 1), node(16000, 8000, 1)};
	int64_t d[2] = {500, 500};
	double costs[2];
	long i = epvm_choose(ns, 2, d, costs);
	assert_float_equal(costs[0], 2.0 / 17 * 2 * (pow(2, 0.5) - 1), EPS);
	assert_float_equal(costs[0], 0.0974620, 1e-6);
	assert_float_equal(costs[1], 32.0 / 17 * 2 * (pow(2, 0.53125) - pow(2, 0.5)), EPS);
	assert_float_equal(costs[1], 0.1165826, 1e-6);
	assert_int_equal(i, 0);
	/* without a mean (NULL): w = 1, the unweighted per-node sum */
	assert_float_equal(epvm_marginal_cost(&ns[0], d, 2, NULL), 0.8284271, 1e-6);
	assert_float_equal(epvm_marginal_cost(&ns[1], d, 2, NULL), 0.0619345, 1e-6);
}

/* At the same utilization the price per unit is the same, so a small
 * demand costs nearly the same on both; what differs is the step: 10 is
 * 1% of the small node and 0.0625% of the big one, and the exponential is
 * convex, so the small node is dearer by a hair and the big one wins.
 *   small: 2/17  * 2 * (2^(510/1000) - 2^0.5)     = 0.00231450
 *   big:   32/17 * 2 * (2^(8010/16000) - 2^0.5)   = 0.00230699 */
static void test_same_utilization_same_price(void **state)
{
	(void)state;
	struct epvm_node ns[2] = {node(1000, 500, 1), node(16000, 8000, 1)};
	int64_t d[2] = {10, 10};
	double costs[2];
	long i = epvm_choose(ns, 2, d, costs);
	assert_float_equal(costs[0], 2.0 / 17 * 2 * (pow(2, 0.51) - pow(2, 0.5)), EPS);
	assert_float_equal(costs[0], 0.00231450, 1e-8);
	assert_float_equal(costs[1], 32.0 / 17 * 2 * (pow(2, 8010.0 / 16000) - pow(2, 0.5)), EPS);
	assert_float_equal(costs[1], 0.00230699, 1e-8);
	assert_int_equal(i, 1);
}

/* A nearly full big node (15000 of 16000) against an empty 10000 node,
 * demand 900; mean 13000, w = 10/13 and 16/13:
 *   small: 10/13 * 2 * (2^0.09 - 1)                        = 10/13 * 0.128740 = 0.099031
 *   big:   16/13 * 2 * (2^(15900/16000) - 2^(15000/16000)) = 16/13 * 0.152300 = 0.187441
 * The small node wins. And 500 on the big node alone, n = 2 and no
 * mean (w = 1): 2 * (2^(15500/16000) - 2^0.9375) = 2 * (1.957144 - 1.915207) = 0.083874. */
static void test_nearly_full_big_node_loses(void **state)
{
	(void)state;
	struct epvm_node ns[2] = {node(10000, 0, 1), node(16000, 15000, 1)};
	int64_t d[2] = {900, 900};
	double costs[2];
	long i = epvm_choose(ns, 2, d, costs);
	assert_float_equal(costs[0], 10.0 / 13 * 2 * (pow(2, 0.09) - 1), EPS);
	assert_float_equal(costs[0], 0.099031, 1e-5);
	assert_float_equal(costs[1], 16.0 / 13 * 2 * (pow(2, 15900.0 / 16000) - pow(2, 0.9375)), EPS);
	assert_float_equal(costs[1], 0.187441, 1e-5);
	assert_int_equal(i, 0);
	int64_t d2[2] = {500, 500};
	assert_float_equal(epvm_marginal_cost(&ns[1], d2, 2, NULL), 0.083874, 1e-5);
}

/* The mean is over the feasible nodes only, per resource. */
static void test_mean_capacity(void **state)
{
	(void)state;
	struct epvm_node ns[3] = {{{1000, 4000}, {0, 0}, 1}, {{3000, 2000}, {0, 0}, 1},
	                          {{100000, 100000}, {0, 0}, 0}};
	double mean[2];
	assert_int_equal(epvm_mean_capacity(ns, 3, mean), 2);
	assert_float_equal(mean[0], 2000, EPS);
	assert_float_equal(mean[1], 3000, EPS);
	/* node 0: w = (1000/2000, 4000/3000), demand (100, 300), n = 2:
	 * 0.5 * (2^0.1 - 1) + 4/3 * (2^0.075 - 1) = 0.5 * 0.071773 + 4/3 * 0.053361 = 0.107035 */
	int64_t d[2] = {100, 300};
	assert_float_equal(epvm_marginal_cost(&ns[0], d, 2, mean),
	                   0.5 * (pow(2, 0.1) - 1) + 4.0 / 3 * (pow(2, 0.075) - 1), EPS);
	assert_float_equal(epvm_marginal_cost(&ns[0], d, 2, mean), 0.107035, 1e-5);
	struct epvm_node none[1] = {{{1000, 1000}, {0, 0}, 0}};
	assert_int_equal(epvm_mean_capacity(none, 1, mean), 0);
	assert_float_equal(mean[0], 0, EPS);
}

/* A node that is not feasible is never chosen, even when it would be the
 * cheapest (an empty huge node), and its cost is reported as infinite. */
static void test_infeasible_never_chosen(void **state)
{
	(void)state;
	struct epvm_node ns[3] = {node(1000000, 0, 0), node(1000, 900, 1), node(1000, 950, 0)};
	int64_t d[2] = {50, 50};
	double costs[3];
	long i = epvm_choose(ns, 3, d, costs);
	assert_int_equal(i, 1);
	assert_true(isinf(costs[0]));
	assert_true(isinf(costs[2]));
	/* one feasible: base 2 (n < 2), 2 * (2^(950/1000) - 2^(900/1000))
	 *   = 2 * (1.931873 - 1.866066) = 0.131615 */
	assert_float_equal(costs[1], 2 * (pow(2, 0.95) - pow(2, 0.9)), EPS);
	assert_float_equal(costs[1], 0.131615, 1e-5);
	struct epvm_node none[2] = {node(1000, 0, 0), node(1000, 0, 0)};
	assert_int_equal(epvm_choose(none, 2, d, NULL), -1);
	assert_int_equal(epvm_choose(NULL, 0, d, NULL), -1);
}

/* The base is the number of feasible nodes: three feasible, base 3:
 * 2 * (3^(200/1000) - 3^0) = 2 * (1.245731 - 1) = 0.491462. n < 2 uses 2. */
static void test_base_is_feasible_count(void **state)
{
	(void)state;
	struct epvm_node ns[4] = {node(1000, 0, 1), node(1000, 0, 1), node(1000, 0, 1),
	                          node(1000, 0, 0)};
	int64_t d[2] = {200, 200};
	double costs[4];
	long i = epvm_choose(ns, 4, d, costs);
	assert_float_equal(costs[0], 2 * (pow(3, 0.2) - 1), EPS);
	assert_float_equal(costs[0], 0.4914619, 1e-6);
	assert_int_equal(i, 0); /* equal costs: lowest index */
	assert_float_equal(epvm_marginal_cost(&ns[0], d, 1, NULL), 2 * (pow(2, 0.2) - 1), EPS);
	assert_float_equal(epvm_marginal_cost(&ns[0], d, 0, NULL),
	                   epvm_marginal_cost(&ns[0], d, 2, NULL), EPS);
}

/* Resources are summed separately: a CPU-heavy node and a memory-heavy
 * node, a CPU-only task (memory 0): only the CPU term counts.
 * node 0 cpu 800/1000: 2^(900/1000) - 2^(800/1000) = 1.866066 - 1.741101 = 0.124965
 * node 1 cpu 100/1000: 2^(200/1000) - 2^(100/1000) = 1.148698 - 1.071773 = 0.076925 */
static void test_resources_separately(void **state)
{
	(void)state;
	struct epvm_node ns[2] = {{{1000, 1000}, {800, 0}, 1}, {{1000, 1000}, {100, 900}, 1}};
	int64_t d[2] = {100, 0};
	double costs[2];
	assert_int_equal(epvm_choose(ns, 2, d, costs), 1);
	assert_float_equal(costs[0], 0.124965, 1e-5);
	assert_float_equal(costs[1], 0.076925, 1e-5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_less_loaded_wins),
	    cmocka_unit_test(test_empty_small_node_beats_half_full_big),
	    cmocka_unit_test(test_same_utilization_same_price),
	    cmocka_unit_test(test_mean_capacity),
	    cmocka_unit_test(test_nearly_full_big_node_loses),
	    cmocka_unit_test(test_infeasible_never_chosen),
	    cmocka_unit_test(test_base_is_feasible_count),
	    cmocka_unit_test(test_resources_separately),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
