/*
 * placement — filter and choose over plain arrays (placement.h). The E-PVM
 * cost is epvm.h's formula, factored so that a decision over N nodes of K
 * distinct sizes costs about N multiplications and 2K expm1 calls (plus
 * two exp calls per node whose load changed since the last decision).
 * Scoring uses non-zero requests (placement.h); filtering the real ones.
 */
#include "controllers/placement.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

const char *const placement_why_text[PLACEMENT_WHY_N] = {
    "not ready", "unschedulable", "node selector mismatch", "insufficient cpu",
    "insufficient memory"};

static int cmp_cap(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;
	for (int r = 0; r < EPVM_RESOURCES; r++) {
		if (x[r] != y[r])
			return x[r] < y[r] ? -1 : 1;
	}
	return 0;
}

void placement_free(struct placement *p)
{
	free(p->nodes);
	free(p->cls_cap);
	free(p->factor);
	free(p->fgen);
	free(p->ok);
	memset(p, 0, sizeof *p);
}

void placement_reset(struct placement *p, struct placement_node *nodes, size_t n)
{
	size_t rr = p->rr_next;
	uint64_t gen = p->gen;
	placement_free(p);
	p->nodes = nodes;
	p->n = n;
	p->gen = gen;
	p->rr_next = n ? rr % n : 0;
	p->ok = xcalloc(n ? n : 1, 1);

	/* Distinct capacities: sort a copy, drop repeats, then look each
	 * node's up by binary search. */
	int64_t(*caps)[EPVM_RESOURCES] = xcalloc(n ? n : 1, sizeof *caps);
	for (size_t i = 0; i < n; i++)
		memcpy(caps[i], nodes[i].alloc, sizeof caps[i]);
	qsort(caps, n, sizeof *caps, cmp_cap);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k == 0 || cmp_cap(caps[k - 1], caps[i]) != 0)
			memcpy(caps[k++], caps[i], sizeof caps[i]);
	}
	p->cls_cap = caps;
	p->ncls = k;
	p->factor = xcalloc(k ? k : 1, sizeof(double) * EPVM_RESOURCES);
	p->fgen = xcalloc(k ? k : 1, sizeof *p->fgen);
	for (size_t i = 0; i < n; i++) {
		const int64_t(*hit)[EPVM_RESOURCES] =
		    bsearch(nodes[i].alloc, caps, k, sizeof *caps, cmp_cap);
		nodes[i].cls = (uint32_t)(hit - (const int64_t(*)[EPVM_RESOURCES])caps);
		nodes[i].base_n = 0;
	}
}

void placement_nonzero(const int64_t d[EPVM_RESOURCES], int64_t out[EPVM_RESOURCES])
{
	static const int64_t dflt[EPVM_RESOURCES] = {PLACEMENT_DEFAULT_CPU,
	                                             PLACEMENT_DEFAULT_MEMORY};
	for (int r = 0; r < EPVM_RESOURCES; r++)
		out[r] = d[r] > 0 ? d[r] : dflt[r];
}

void placement_add(struct placement *p, size_t i, const int64_t d[EPVM_RESOURCES], int sign)
{
	if (i >= p->n)
		return;
	int64_t nz[EPVM_RESOURCES];
	placement_nonzero(d, nz);
	for (int r = 0; r < EPVM_RESOURCES; r++) {
		p->nodes[i].bound[r] += sign * d[r];
		p->nodes[i].scored[r] += sign * nz[r];
	}
	p->nodes[i].base_n = 0;
}

void placement_set_usage(struct placement *p, size_t i, const int64_t usage[EPVM_RESOURCES])
{
	if (i >= p->n)
		return;
	memcpy(p->nodes[i].usage, usage, sizeof p->nodes[i].usage);
	p->nodes[i].base_n = 0;
}

static bool selector_matches(json_t *sel, json_t *labels)
{
	const char *k;
	json_t *v;
	json_object_foreach(sel, k, v)
	{
		if (!streq(json_string_value(json_object_get(labels, k)), json_string_value(v)))
			return false;
	}
	return true;
}

/* Marks p->ok[] for the nodes passing the filters; returns their count,
 * and their mean allocatable in mean (0 when none pass). */
static size_t filter(struct placement *p, const int64_t d[EPVM_RESOURCES], json_t *selector,
                     unsigned why[PLACEMENT_WHY_N], double mean[EPVM_RESOURCES])
{
	bool use_sel = json_object_size(selector) > 0;
	size_t feasible = 0;
	double sum[EPVM_RESOURCES] = {0};
	for (size_t i = 0; i < p->n; i++) {
		const struct placement_node *x = &p->nodes[i];
		int w = -1;
		if (!x->ready)
			w = PLACEMENT_NOT_READY;
		else if (x->unschedulable)
			w = PLACEMENT_UNSCHEDULABLE;
		else if (use_sel && !selector_matches(selector, x->labels))
			w = PLACEMENT_SELECTOR;
		else if (x->alloc[0] <= 0 || x->bound[0] + d[0] > x->alloc[0])
			w = PLACEMENT_CPU;
		else if (x->alloc[1] <= 0 || x->bound[1] + d[1] > x->alloc[1])
			w = PLACEMENT_MEMORY;
		p->ok[i] = w < 0;
		if (w < 0) {
			feasible++;
			for (int r = 0; r < EPVM_RESOURCES; r++)
				sum[r] += (double)x->alloc[r];
		} else if (why) {
			why[w]++;
		}
	}
	for (int r = 0; r < EPVM_RESOURCES; r++)
		mean[r] = feasible ? sum[r] / (double)feasible : 0;
	return feasible;
}

/* The load E-PVM sees: the non-zero requests bound, or the usage when higher. */
static double load_of(const struct placement_node *x, int r)
{
	return (double)(x->scored[r] > x->usage[r] ? x->scored[r] : x->usage[r]);
}

static long choose_epvm(struct placement *p, const int64_t d[EPVM_RESOURCES], double n,
                        const double mean[EPVM_RESOURCES], double *cost)
{
	double ln = log(n < 2 ? 2 : n);
	double nn = n < 2 ? 2 : n;
	uint64_t gen = ++p->gen;
	long best = -1;
	double best_cost = INFINITY;
	for (size_t i = 0; i < p->n; i++) {
		if (!p->ok[i])
			continue;
		struct placement_node *x = &p->nodes[i];
		double *f = &p->factor[(size_t)x->cls * EPVM_RESOURCES];
		if (p->fgen[x->cls] != gen) {
			/* the weight alloc/mean (epvm.h) times n^(d/C) - 1 */
			for (int r = 0; r < EPVM_RESOURCES; r++)
				f[r] = (double)x->alloc[r] / mean[r] *
				       expm1((double)d[r] / (double)x->alloc[r] * ln);
			p->fgen[x->cls] = gen;
		}
		if (x->base_n != nn) {
			for (int r = 0; r < EPVM_RESOURCES; r++)
				x->base[r] = exp(load_of(x, r) / (double)x->alloc[r] * ln);
			x->base_n = nn;
		}
		double c = 0;
		for (int r = 0; r < EPVM_RESOURCES; r++)
			c += x->base[r] * f[r];
		/* Strictly less: of equal costs the lowest index wins. */
		if (c < best_cost) {
			best = (long)i;
			best_cost = c;
		}
	}
	if (cost)
		*cost = best >= 0 ? best_cost : INFINITY;
	return best;
}

long placement_choose(struct placement *p, enum placement_policy policy,
                      const int64_t d[EPVM_RESOURCES], json_t *selector,
                      unsigned why[PLACEMENT_WHY_N], size_t *feasible, double *cost)
{
	double mean[EPVM_RESOURCES];
	size_t nf = filter(p, d, selector, why, mean);
	if (feasible)
		*feasible = nf;
	if (cost)
		*cost = 0;
	if (nf == 0) {
		if (cost)
			*cost = INFINITY;
		return -1;
	}
	switch (policy) {
	case PLACEMENT_EPVM: {
		int64_t nz[EPVM_RESOURCES];
		placement_nonzero(d, nz);
		return choose_epvm(p, nz, (double)nf, mean, cost);
	}
	case PLACEMENT_ROUND_ROBIN:
		for (size_t k = 0; k < p->n; k++) {
			size_t i = (p->rr_next + k) % p->n;
			if (p->ok[i]) {
				p->rr_next = i + 1;
				return (long)i;
			}
		}
		return -1;
	case PLACEMENT_FIRST_FIT:
		for (size_t i = 0; i < p->n; i++) {
			if (p->ok[i])
				return (long)i;
		}
		return -1;
	}
	return -1;
}
