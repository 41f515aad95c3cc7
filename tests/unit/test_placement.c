/*
 * placement (controllers/placement.c): the filters, the reasons counted
 * for the nodes filtered out, the three policies, and that the fast E-PVM
 * path chooses a node of the reference cost (epvm.c, itself checked
 * against hand computations in test_epvm.c).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "controllers/epvm.h"
#include "controllers/placement.h"

static struct placement_node mk(int64_t cpu, int64_t mem)
{
	struct placement_node x = {0};
	x.alloc[0] = cpu;
	x.alloc[1] = mem;
	x.ready = true;
	return x;
}

static void setup_nodes(struct placement *p, const struct placement_node *src, size_t n)
{
	struct placement_node *nodes = xcalloc(n, sizeof *nodes);
	memcpy(nodes, src, n * sizeof *nodes);
	placement_reset(p, nodes, n);
}

/* One node of each kind of failure, one that fits: the counts name them. */
static void test_filters_and_reasons(void **state)
{
	(void)state;
	json_t *lab_a = json_pack("{s:s}", "zone", "a");
	json_t *lab_b = json_pack("{s:s}", "zone", "b");
	struct placement_node src[6] = {mk(1000, 1000), mk(1000, 1000), mk(1000, 1000),
	                                mk(100, 1000),  mk(1000, 100),  mk(1000, 1000)};
	src[0].ready = false;
	src[1].unschedulable = true;
	src[2].labels = lab_b;
	src[3].labels = lab_a;
	src[4].labels = lab_a;
	src[5].labels = lab_a;
	struct placement p = PLACEMENT_INIT;
	setup_nodes(&p, src, 6);
	json_t *sel = json_pack("{s:s}", "zone", "a");
	int64_t d[2] = {500, 500};
	unsigned why[PLACEMENT_WHY_N] = {0};
	size_t feasible = 99;
	double cost = 0;
	long i = placement_choose(&p, PLACEMENT_EPVM, d, sel, why, &feasible, &cost);
	assert_int_equal(i, 5);
	assert_int_equal(feasible, 1);
	assert_int_equal(why[PLACEMENT_NOT_READY], 1);
	assert_int_equal(why[PLACEMENT_UNSCHEDULABLE], 1);
	assert_int_equal(why[PLACEMENT_SELECTOR], 1);
	assert_int_equal(why[PLACEMENT_CPU], 1);
	assert_int_equal(why[PLACEMENT_MEMORY], 1);
	/* One feasible node: base 2 (epvm.h); 2 * (2^(500/1000) - 1). */
	assert_float_equal(cost, 2 * (pow(2, 0.5) - 1), 1e-12);

	/* Bound requests count: after binding 600 there, 500 more does not fit. */
	const int64_t bound[2] = {600, 0};
	placement_add(&p, 5, bound, +1);
	memset(why, 0, sizeof why);
	assert_int_equal(placement_choose(&p, PLACEMENT_EPVM, d, sel, why, &feasible, NULL), -1);
	assert_int_equal(feasible, 0);
	assert_int_equal(why[PLACEMENT_CPU], 2);
	placement_add(&p, 5, bound, -1);
	assert_int_equal(placement_choose(&p, PLACEMENT_EPVM, d, sel, NULL, NULL, NULL), 5);

	placement_free(&p);
	json_decref(sel);
	json_decref(lab_a);
	json_decref(lab_b);
}

/* The "assume" step: binding into the placement moves the next choice. */
static void test_epvm_spreads_a_burst(void **state)
{
	(void)state;
	struct placement_node src[3] = {mk(4000, 8000), mk(4000, 8000), mk(4000, 8000)};
	struct placement p = PLACEMENT_INIT;
	setup_nodes(&p, src, 3);
	int64_t d[2] = {100, 100};
	unsigned count[3] = {0};
	for (int k = 0; k < 6; k++) {
		long i = placement_choose(&p, PLACEMENT_EPVM, d, NULL, NULL, NULL, NULL);
		assert_true(i >= 0 && i < 3);
		count[i]++;
		placement_add(&p, (size_t)i, d, +1);
	}
	/* Equal nodes: 0, 1, 2, 0, 1, 2 — two each. */
	assert_int_equal(count[0], 2);
	assert_int_equal(count[1], 2);
	assert_int_equal(count[2], 2);
	placement_free(&p);
}

/* Tasks that request nothing: scored as 100m and 200Mi each (kube-
 * scheduler's non-zero requests), so 12 of them spread 6/6 over two equal
 * nodes instead of all going to the first; the fit filter still sees 0. */
static void test_requestless_tasks_spread(void **state)
{
	(void)state;
	struct placement_node src[2] = {mk(4000, 8LL << 30), mk(4000, 8LL << 30)};
	struct placement p = PLACEMENT_INIT;
	setup_nodes(&p, src, 2);
	const int64_t zero[2] = {0, 0};
	unsigned count[2] = {0};
	for (int k = 0; k < 12; k++) {
		double cost;
		long i = placement_choose(&p, PLACEMENT_EPVM, zero, NULL, NULL, NULL, &cost);
		assert_true(i == 0 || i == 1);
		assert_true(cost > 0);
		count[i]++;
		placement_add(&p, (size_t)i, zero, +1);
	}
	assert_int_equal(count[0], 6);
	assert_int_equal(count[1], 6);
	/* the real requests bound stay 0; the scored load is 6 x (100m, 200Mi) */
	assert_int_equal(p.nodes[0].bound[0], 0);
	assert_int_equal(p.nodes[0].bound[1], 0);
	assert_int_equal(p.nodes[0].scored[0], 600);
	assert_int_equal(p.nodes[0].scored[1], 6 * (200LL << 20));
	/* the first decision's cost, on an empty node, n = 2:
	 * (2^(100/4000) - 1) + (2^(200Mi/8Gi) - 1) */
	struct placement q = PLACEMENT_INIT;
	setup_nodes(&q, src, 2);
	double cost;
	assert_int_equal(placement_choose(&q, PLACEMENT_EPVM, zero, NULL, NULL, NULL, &cost), 0);
	assert_float_equal(cost, (pow(2, 100.0 / 4000) - 1) + (pow(2, 200.0 / 8192) - 1), 1e-12);
	/* unbinding takes the same non-zero amounts back */
	placement_add(&p, 0, zero, -1);
	assert_int_equal(p.nodes[0].scored[0], 500);
	/* a node with 0 real room left for CPU still fits a Task asking 0 CPU */
	struct placement_node full[1] = {mk(100, 1LL << 30)};
	full[0].bound[0] = 100;
	struct placement f = PLACEMENT_INIT;
	setup_nodes(&f, full, 1);
	const int64_t mem_only[2] = {0, 1 << 20};
	assert_int_equal(placement_choose(&f, PLACEMENT_EPVM, mem_only, NULL, NULL, NULL, NULL), 0);
	placement_free(&f);
	placement_free(&q);
	placement_free(&p);
}

/* Observed usage counts when it is above the bound requests. */
static void test_usage_is_load(void **state)
{
	(void)state;
	struct placement_node src[2] = {mk(1000, 1000), mk(1000, 1000)};
	struct placement p = PLACEMENT_INIT;
	setup_nodes(&p, src, 2);
	int64_t d[2] = {100, 100};
	assert_int_equal(placement_choose(&p, PLACEMENT_EPVM, d, NULL, NULL, NULL, NULL), 0);
	const int64_t busy[2] = {700, 700};
	placement_set_usage(&p, 0, busy);
	double cost;
	assert_int_equal(placement_choose(&p, PLACEMENT_EPVM, d, NULL, NULL, NULL, &cost), 1);
	/* n = 2: node 1 is empty: 2 * (2^(100/1000) - 1). */
	assert_float_equal(cost, 2 * (pow(2, 0.1) - 1), 1e-12);
	placement_free(&p);
}

/* Unequal nodes fill to about the same utilization (epvm.h, the weight):
 * a 2-CPU and an 8-CPU node, memory in proportion, 20 Tasks of 100m and
 * 100Mi go 4 and 16; after every one, the two utilizations are within one
 * Task's step on the small node (100/2000). Unweighted (the per-node sum),
 * all 20 would have gone to the big node. */
static void test_epvm_unequal_nodes_fill_evenly(void **state)
{
	(void)state;
	struct placement_node src[2] = {mk(2000, 2000LL << 20), mk(8000, 8000LL << 20)};
	struct placement p = PLACEMENT_INIT;
	setup_nodes(&p, src, 2);
	int64_t d[2] = {100, 100LL << 20};
	unsigned count[2] = {0};
	for (int k = 0; k < 20; k++) {
		long i = placement_choose(&p, PLACEMENT_EPVM, d, NULL, NULL, NULL, NULL);
		assert_true(i == 0 || i == 1);
		count[i]++;
		placement_add(&p, (size_t)i, d, +1);
		double u0 = (double)p.nodes[0].bound[0] / 2000, u1 = (double)p.nodes[1].bound[0] / 8000;
		assert_true(fabs(u0 - u1) <= 100.0 / 2000 + 1e-12);
	}
	assert_int_equal(count[0], 4);
	assert_int_equal(count[1], 16);
	placement_free(&p);
}

static void test_round_robin_and_first_fit(void **state)
{
	(void)state;
	struct placement_node src[4] = {mk(1000, 1000), mk(16000, 16000), mk(1000, 1000),
	                                mk(1000, 1000)};
	src[2].ready = false;
	struct placement p = PLACEMENT_INIT;
	setup_nodes(&p, src, 4);
	int64_t d[2] = {10, 10};
	long seq[6];
	for (int k = 0; k < 6; k++)
		seq[k] = placement_choose(&p, PLACEMENT_ROUND_ROBIN, d, NULL, NULL, NULL, NULL);
	/* In turn, skipping the node that is not ready, whatever the sizes. */
	long want[6] = {0, 1, 3, 0, 1, 3};
	for (int k = 0; k < 6; k++)
		assert_int_equal(seq[k], want[k]);
	assert_int_equal(placement_choose(&p, PLACEMENT_FIRST_FIT, d, NULL, NULL, NULL, NULL), 0);
	/* E-PVM: all empty, so a unit costs the same everywhere (epvm.h); the
	 * step of 10 is 1% of a small node and 0.0625% of the big one, and the
	 * exponential is convex: n = 3, mean 6000,
	 * small 1/6 * 2 * (3^0.01 - 1) = 0.0036823, big 16/6 * 2 * (3^(10/16000) - 1)
	 * = 0.0036633: the big node, by a hair. */
	assert_int_equal(placement_choose(&p, PLACEMENT_EPVM, d, NULL, NULL, NULL, NULL), 1);
	placement_free(&p);
}

/* Random clusters of a few node sizes with random loads and demands: the
 * node chosen has the least reference cost (epvm_choose), to rounding, and
 * where the reference cost is unique by a margin, it is the same node. */
static void test_fast_path_matches_reference(void **state)
{
	(void)state;
	srand(12345);
	const int64_t sizes[4][2] = {
	    {2000, 4LL << 30}, {8000, 16LL << 30}, {32000, 64LL << 30}, {4000, 32LL << 30}};
	for (int round = 0; round < 300; round++) {
		size_t n = 1 + (size_t)(rand() % 200);
		struct placement_node *nodes = xcalloc(n, sizeof *nodes);
		struct epvm_node *ref = xcalloc(n, sizeof *ref);
		for (size_t i = 0; i < n; i++) {
			const int64_t *sz = sizes[rand() % 4];
			nodes[i] = mk(sz[0], sz[1]);
			nodes[i].bound[0] = sz[0] * (rand() % 90) / 100;
			nodes[i].bound[1] = sz[1] * (rand() % 90) / 100;
			/* what scoring counts: at least the real requests */
			nodes[i].scored[0] = nodes[i].bound[0] + (rand() % 2) * 100;
			nodes[i].scored[1] = nodes[i].bound[1] + (rand() % 2) * (200LL << 20);
			nodes[i].usage[0] = sz[0] * (rand() % 90) / 100;
			nodes[i].usage[1] = 0;
			nodes[i].ready = rand() % 10 != 0;
		}
		int64_t d[2] = {50 + rand() % 2000, ((int64_t)(rand() % 4096) + 1) << 20};
		/* one round in four asks no CPU or no memory: scored as 100m / 200Mi */
		if (rand() % 4 == 0)
			d[rand() % 2] = 0;
		const int64_t nz[2] = {d[0] ? d[0] : 100, d[1] ? d[1] : 200LL << 20};
		for (size_t i = 0; i < n; i++) {
			for (int r = 0; r < 2; r++) {
				ref[i].capacity[r] = nodes[i].alloc[r];
				ref[i].load[r] = nodes[i].scored[r] > nodes[i].usage[r] ? nodes[i].scored[r]
				                                                        : nodes[i].usage[r];
			}
			ref[i].feasible = nodes[i].ready && nodes[i].bound[0] + d[0] <= nodes[i].alloc[0] &&
			                  nodes[i].bound[1] + d[1] <= nodes[i].alloc[1];
		}
		double *costs = xcalloc(n, sizeof *costs);
		long want = epvm_choose(ref, n, nz, costs);
		struct placement p = PLACEMENT_INIT;
		placement_reset(&p, nodes, n);
		double got_cost;
		long got = placement_choose(&p, PLACEMENT_EPVM, d, NULL, NULL, NULL, &got_cost);
		if (want < 0) {
			assert_int_equal(got, -1);
		} else {
			assert_true(got >= 0);
			assert_true(ref[got].feasible);
			double tol = 1e-9 * costs[want];
			assert_float_equal(costs[got], costs[want], tol);
			assert_float_equal(got_cost, costs[want], tol);
			double second = INFINITY;
			for (size_t i = 0; i < n; i++) {
				if ((long)i != want && costs[i] < second)
					second = costs[i];
			}
			if (second - costs[want] > tol)
				assert_int_equal(got, want);
		}
		placement_free(&p);
		free(ref);
		free(costs);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_filters_and_reasons),
	    cmocka_unit_test(test_epvm_spreads_a_burst),
	    cmocka_unit_test(test_usage_is_load),
	    cmocka_unit_test(test_requestless_tasks_spread),
	    cmocka_unit_test(test_epvm_unequal_nodes_fill_evenly),
	    cmocka_unit_test(test_round_robin_and_first_fit),
	    cmocka_unit_test(test_fast_path_matches_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
