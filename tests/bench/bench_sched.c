/*
 * bench_sched — the scheduler's decision (controllers/placement.c) on one
 * core, with no server: the code keel's scheduler runs, over synthetic
 * nodes.
 *
 * 1. Placements per second at 100 / 1,000 / 5,000 / 10,000 nodes, every
 *    feasible node scored: E-PVM (placement_choose), the same formula
 *    computed directly for every node (epvm_choose, the reference), and
 *    round-robin, the baseline. The policies alternate in short slices
 *    and the median slice is reported, since these machines are noisy.
 *    The cluster stays in a steady state: each placement binds its Task,
 *    and the oldest Task is removed once 8 per node are bound.
 * 2. Placement quality on a heterogeneous cluster (three node sizes,
 *    mixed task sizes, one task stream for every policy): Tasks are placed
 *    until the first does not fit; reported are how many were placed and
 *    the spread of node utilization, for E-PVM, round-robin and first-fit.
 *    Every policy gets the same seeds, so the same stream (each stops at
 *    its own first failure). Spread: the standard deviation over the nodes
 *    (each node counts once, whatever its size) of its utilization, the
 *    mean of its CPU and memory requests bound over allocatable, at the
 *    end of the stream. Because at the end the cluster is nearly full for
 *    every policy and averaging CPU with memory can hide an imbalance of
 *    each, the same is also reported per resource, and at half fill: after
 *    the first K Tasks of the stream, K half the fewest any policy placed
 *    for that seed (the same Tasks placed by all three).
 *
 * Prints a table, and one JSON line per figure with --json.
 *   bench_sched [--quick] [--json] [--seconds S] [--max-nodes N] [--cpu-time]
 * (--max-nodes: only the node counts up to N, for the harness's smoke run,
 * 0 for the quality section alone; --cpu-time: rates over the thread's CPU
 * time rather than wall time, for loaded machines.)
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "controllers/epvm.h"
#include "controllers/placement.h"

static bool json_out;
static size_t max_nodes = SIZE_MAX;

/* --cpu-time: the thread's CPU time instead of the wall clock, so that on a
 * shared machine the time the benchmark waits for a core does not count
 * (the figure is per core either way). */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(clock_id, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A table line with prec decimals, and its JSON line with --json. */
static void figure_p(const char *name, double value, const char *unit, const char *target,
                     const char *baseline_name, double baseline, int prec)
{
	double ratio = baseline > 0 ? value / baseline : 0;
	printf("%-44s %12.*f %-8s %-12s %-26s %12.*f %7.2fx\n", name, prec, value, unit, target,
	       baseline_name, prec, baseline, ratio);
	int jp = prec > 0 ? prec + 1 : 1; /* JSON: a digit more than the table */
	if (json_out)
		printf("{\"bench\":\"sched\",\"figure\":\"%s\",\"value\":%.*f,\"unit\":\"%s\","
		       "\"target\":\"%s\",\"baseline\":\"%s\",\"baseline_value\":%.*f,"
		       "\"ratio\":%.3f}\n",
		       name, jp, value, unit, target, baseline_name, jp, baseline, ratio);
}

static void figure(const char *name, double value, const char *unit, const char *target,
                   const char *baseline_name, double baseline)
{
	figure_p(name, value, unit, target, baseline_name, baseline, 0);
}

/* ---- 1. throughput ------------------------------------------------------ */

static const int64_t node_sizes[3][EPVM_RESOURCES] = {
    {4000, 8LL << 30}, {16000, 32LL << 30}, {64000, 256LL << 30}};
static const int64_t task_sizes[4][EPVM_RESOURCES] = {
    {100, 128LL << 20}, {250, 512LL << 20}, {500, 1LL << 30}, {1000, 2LL << 30}};

struct cluster {
	struct placement pl;
	struct epvm_node *ref; /* the same nodes for epvm_choose */
	size_t n;
	size_t *ring_node; /* placed tasks, oldest first */
	int *ring_size;
	size_t ring_cap, ring_head, ring_len;
	unsigned seq;
};

static void cluster_init(struct cluster *c, size_t n)
{
	memset(c, 0, sizeof *c);
	struct placement_node *nodes = xcalloc(n, sizeof *nodes);
	c->ref = xcalloc(n, sizeof *c->ref);
	for (size_t i = 0; i < n; i++) {
		const int64_t *sz = node_sizes[i % 3];
		memcpy(nodes[i].alloc, sz, sizeof nodes[i].alloc);
		nodes[i].ready = true;
		memcpy(c->ref[i].capacity, sz, sizeof c->ref[i].capacity);
	}
	placement_reset(&c->pl, nodes, n);
	c->n = n;
	c->ring_cap = 8 * n;
	c->ring_node = xcalloc(c->ring_cap, sizeof *c->ring_node);
	c->ring_size = xcalloc(c->ring_cap, sizeof *c->ring_size);
}

static void cluster_free(struct cluster *c)
{
	placement_free(&c->pl);
	free(c->ref);
	free(c->ring_node);
	free(c->ring_size);
}

static void bind_to(struct cluster *c, size_t node, int size, int sign)
{
	placement_add(&c->pl, node, task_sizes[size], sign);
	for (int r = 0; r < EPVM_RESOURCES; r++)
		c->ref[node].load[r] += sign * task_sizes[size][r];
}

/* One decision of the given kind (0 E-PVM, 1 reference, 2 round-robin),
 * then bind, retiring the oldest Task when the ring is full. */
static void one(struct cluster *c, int kind)
{
	int size = (int)(c->seq++ % 4);
	const int64_t *d = task_sizes[size];
	long i;
	if (kind == 1) {
		for (size_t k = 0; k < c->n; k++) {
			struct epvm_node *e = &c->ref[k];
			e->feasible = e->load[0] + d[0] <= e->capacity[0] &&
			              e->load[1] + d[1] <= e->capacity[1];
		}
		i = epvm_choose(c->ref, c->n, d, NULL);
	} else {
		i = placement_choose(&c->pl, kind == 0 ? PLACEMENT_EPVM : PLACEMENT_ROUND_ROBIN, d, NULL,
		                     NULL, NULL, NULL);
	}
	if (c->ring_len == c->ring_cap || i < 0) {
		size_t h = c->ring_head;
		bind_to(c, c->ring_node[h], c->ring_size[h], -1);
		c->ring_head = (h + 1) % c->ring_cap;
		c->ring_len--;
	}
	if (i < 0)
		return;
	bind_to(c, (size_t)i, size, +1);
	size_t t = (c->ring_head + c->ring_len) % c->ring_cap;
	c->ring_node[t] = (size_t)i;
	c->ring_size[t] = size;
	c->ring_len++;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void throughput(double seconds)
{
	static const size_t counts[] = {100, 1000, 5000, 10000};
	enum { SLICES = 5 };
	for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
		size_t n = counts[ci];
		if (n > max_nodes)
			break;
		double rate[3][SLICES];
		struct cluster cl[3];
		for (int k = 0; k < 3; k++) {
			cluster_init(&cl[k], n);
			for (size_t w = 0; w < 4 * n; w++) /* warm: half the ring */
				one(&cl[k], k == 1 ? 0 : k);
		}
		for (int s = 0; s < SLICES; s++) {
			for (int k = 0; k < 3; k++) { /* alternate the policies */
				double t0 = now_s(), t;
				long done = 0;
				do {
					for (int j = 0; j < 16; j++)
						one(&cl[k], k);
					done += 16;
					t = now_s();
				} while (t - t0 < seconds / SLICES / 3);
				rate[k][s] = (double)done / (t - t0);
			}
		}
		double med[3];
		for (int k = 0; k < 3; k++) {
			qsort(rate[k], SLICES, sizeof(double), cmp_double);
			med[k] = rate[k][SLICES / 2];
			cluster_free(&cl[k]);
		}
		char name[96];
		snprintf(name, sizeof name, "E-PVM placements/s, %zu nodes", n);
		figure(name, med[0], "/s", n == 5000 ? ">= 20000" : "-", "round-robin", med[2]);
		snprintf(name, sizeof name, "E-PVM placements/s, %zu nodes (vs direct)", n);
		figure(name, med[0], "/s", "-", "epvm_choose, direct", med[1]);
	}
}

/* ---- 2. quality ----------------------------------------------------------- */

struct quality {
	size_t placed;
	double spread; /* stddev of per-node utilization, 0..1 */
	double mean;
	double spread_r[EPVM_RESOURCES]; /* stddev of per-node utilization of each resource */
};

/* Places the stream of seed until a Task does not fit, or limit Tasks. */
static struct quality quality_run(enum placement_policy pol, unsigned seed, size_t limit)
{
	/* 10 small (2 cpu, 4 GiB), 10 medium (8, 32), 5 large (32, 64). */
	static const int64_t sizes[3][EPVM_RESOURCES] = {
	    {2000, 4LL << 30}, {8000, 32LL << 30}, {32000, 64LL << 30}};
	static const int counts[3] = {10, 10, 5};
	size_t n = 0;
	for (int k = 0; k < 3; k++)
		n += (size_t)counts[k];
	struct placement_node *nodes = xcalloc(n, sizeof *nodes);
	size_t i = 0;
	for (int k = 0; k < 3; k++) {
		for (int j = 0; j < counts[k]; j++, i++) {
			memcpy(nodes[i].alloc, sizes[k], sizeof nodes[i].alloc);
			nodes[i].ready = true;
		}
	}
	/* Interleave sizes so that index order (round-robin, first-fit) is
	 * not by size. */
	for (size_t a = 0; a < n; a++) {
		size_t b = (a * 7) % n;
		struct placement_node t = nodes[a];
		nodes[a] = nodes[b];
		nodes[b] = t;
	}
	struct placement p = PLACEMENT_INIT;
	placement_reset(&p, nodes, n);
	/* Mixed tasks: cpu-heavy, memory-heavy, small and big. */
	static const int64_t mix[5][EPVM_RESOURCES] = {{100, 128LL << 20},
	                                               {500, 512LL << 20},
	                                               {1500, 1LL << 30},
	                                               {250, 3LL << 30},
	                                               {3000, 6LL << 30}};
	struct quality q = {0};
	while (q.placed < limit) {
		seed = seed * 1103515245u + 12345u;
		const int64_t *d = mix[(seed >> 16) % 5];
		long at = placement_choose(&p, pol, d, NULL, NULL, NULL, NULL);
		if (at < 0)
			break;
		placement_add(&p, (size_t)at, d, +1);
		q.placed++;
	}
	double sum = 0, sum2 = 0, rs[EPVM_RESOURCES] = {0}, rs2[EPVM_RESOURCES] = {0};
	for (size_t k = 0; k < n; k++) {
		const struct placement_node *x = &p.nodes[k];
		double ur[EPVM_RESOURCES];
		for (int r = 0; r < EPVM_RESOURCES; r++) {
			ur[r] = (double)x->bound[r] / (double)x->alloc[r];
			rs[r] += ur[r];
			rs2[r] += ur[r] * ur[r];
		}
		double u = (ur[0] + ur[1]) / 2;
		sum += u;
		sum2 += u * u;
	}
	q.mean = sum / (double)n;
	q.spread = sqrt(fmax(0, sum2 / (double)n - q.mean * q.mean));
	for (int r = 0; r < EPVM_RESOURCES; r++) {
		double m = rs[r] / (double)n;
		q.spread_r[r] = sqrt(fmax(0, rs2[r] / (double)n - m * m));
	}
	placement_free(&p);
	return q;
}

static void quality(int rounds)
{
	double placed[3] = {0}, spread[3] = {0}, spread_r[3][EPVM_RESOURCES] = {{0}}, half[3] = {0};
	static const enum placement_policy pols[3] = {PLACEMENT_EPVM, PLACEMENT_ROUND_ROBIN,
	                                              PLACEMENT_FIRST_FIT};
	static const char *const pname[3] = {"epvm", "round-robin", "first-fit"};
	for (int s = 0; s < rounds; s++) {
		unsigned seed = 1000u + (unsigned)s;
		size_t fewest = SIZE_MAX;
		for (int k = 0; k < 3; k++) {
			struct quality q = quality_run(pols[k], seed, SIZE_MAX);
			placed[k] += (double)q.placed / rounds;
			spread[k] += q.spread / rounds;
			for (int r = 0; r < EPVM_RESOURCES; r++)
				spread_r[k][r] += q.spread_r[r] / rounds;
			if (q.placed < fewest)
				fewest = q.placed;
		}
		for (int k = 0; k < 3; k++)
			half[k] += quality_run(pols[k], seed, fewest / 2).spread / rounds;
	}
	figure_p("quality: tasks placed, E-PVM vs round-robin", placed[0], "tasks", ">= baseline",
	         "round-robin", placed[1], 1);
	figure_p("quality: tasks placed, E-PVM vs first-fit", placed[0], "tasks", ">= baseline",
	         "first-fit", placed[2], 1);
	printf("%-44s %12.3f %-8s %-12s %-26s %12.3f\n", "quality: utilization spread (stddev)",
	       spread[0], "", "< baselines", "round-robin / first-fit", spread[1]);
	printf("%-44s %12s %-8s %-12s %-26s %12.3f\n", "", "", "", "", "", spread[2]);
	if (json_out) {
		for (int k = 0; k < 3; k++)
			printf("{\"bench\":\"sched\",\"figure\":\"quality spread %s\",\"value\":%.4f}\n",
			       pname[k], spread[k]);
	}
	/* The same spread per resource and at half fill, E-PVM against each. */
	static const char *const what[3] = {"CPU util. spread", "memory util. spread",
	                                    "spread at half fill"};
	for (int w = 0; w < 3; w++) {
		double v[3];
		for (int k = 0; k < 3; k++)
			v[k] = w == 2 ? half[k] : spread_r[k][w];
		for (int b = 1; b < 3; b++) {
			char name[96];
			snprintf(name, sizeof name, "quality: %s vs %s", what[w], pname[b]);
			figure_p(name, v[0], "stddev", "-", pname[b], v[b], 3);
		}
	}
}

int main(int argc, char **argv)
{
	double seconds = 3;
	bool quick = false;
	static const struct option opts[] = {{"quick", no_argument, NULL, 'q'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"seconds", required_argument, NULL, 's'},
	                                     {"max-nodes", required_argument, NULL, 'n'},
	                                     {"cpu-time", no_argument, NULL, 'c'},
	                                     {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "qjs:n:c", opts, NULL)) != -1) {
		switch (o) {
		case 'q':
			quick = true;
			break;
		case 'j':
			json_out = true;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'n':
			max_nodes = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'c':
			clock_id = CLOCK_THREAD_CPUTIME_ID;
			break;
		default:
			fprintf(stderr, "usage: bench_sched [--quick] [--json] [--seconds S] "
			                "[--max-nodes N] [--cpu-time]\n");
			return 2;
		}
	}
	if (quick)
		seconds = 0.15;
	printf("%-44s %12s %-8s %-12s %-26s %12s %8s\n", "figure", "value", "unit", "target",
	       "baseline", "baseline", "ratio");
	throughput(seconds);
	quality(quick ? 2 : 20);
	return 0;
}
