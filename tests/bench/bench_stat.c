/*
 * bench_stat — fixed-bucket latency histograms and JSON figure lines.
 *
 * Fixed 10 µs buckets rather than stored samples: the watch benchmark
 * records a million deliveries a second, and a sorted array of them would
 * cost more memory and time than the thing measured.
 */
#include "bench_stat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"

void bench_hist_init(struct bench_hist *h)
{
	*h = (struct bench_hist){0, 0, xcalloc(BENCH_HIST_BUCKETS, sizeof(uint64_t))};
}

void bench_hist_free(struct bench_hist *h)
{
	free(h->b);
	h->b = NULL;
}

void bench_hist_add(struct bench_hist *h, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	int64_t i = ns / 10000;
	if (i >= BENCH_HIST_BUCKETS - 1)
		i = BENCH_HIST_BUCKETS - 1;
	h->b[i]++;
	h->n++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from)
{
	for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->n += from->n;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
}

double bench_hist_ms(const struct bench_hist *h, double q)
{
	if (!h->n)
		return 0;
	uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
	if (want < 1)
		want = 1;
	for (size_t i = 0; i < BENCH_HIST_BUCKETS - 1; i++) {
		seen += h->b[i];
		if (seen >= want)
			return (double)(i + 1) * 0.01;
	}
	return (double)h->max_ns / 1e6;
}

static void num(const char *key, double v, const char *sep)
{
	if (isnan(v) || isinf(v))
		printf("\"%s\":null%s", key, sep);
	else
		printf("\"%s\":%.6g%s", key, v, sep);
}

void bench_json(const char *bench, const char *figure, double value, const char *unit,
                double target, double baseline, double ratio)
{
	printf("{\"bench\":\"%s\",\"figure\":\"%s\",", bench, figure);
	num("value", value, ",");
	printf("\"unit\":\"%s\",", unit);
	num("target", target, ",");
	num("baseline", baseline, ",");
	num("ratio", ratio, "}\n");
	fflush(stdout);
}
