/*
 * bench_stat — latency histograms and the JSON lines benchmarks print.
 *
 * A histogram has 10 µs buckets up to 2 s (and one overflow bucket), so
 * millions of samples cost a fixed 1.6 MB and percentiles are exact to
 * 10 µs. Not thread-safe: give each thread its own and merge.
 */
#pragma once

#include <stdint.h>

#define BENCH_HIST_BUCKETS 200001 /* 10 µs each up to 2 s, + overflow */

struct bench_hist {
	uint64_t n;
	int64_t max_ns;
	uint64_t *b; /* BENCH_HIST_BUCKETS */
};

void bench_hist_init(struct bench_hist *h);
void bench_hist_free(struct bench_hist *h);
void bench_hist_add(struct bench_hist *h, int64_t ns);
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from);
/* q in [0,1]: the upper bound of the bucket holding that quantile, in ms;
 * 0 for an empty histogram. */
double bench_hist_ms(const struct bench_hist *h, double q);

/* One figure as a JSON line on stdout, the harness's format:
 * {"bench","figure","value","unit","target","baseline","ratio"}. A NaN
 * target, baseline or ratio is written as null. */
void bench_json(const char *bench, const char *figure, double value, const char *unit,
                double target, double baseline, double ratio);
