/*
 * server/metrics — atomic counters rendered as Prometheus text.
 *
 * Counters are a fixed array indexed by (method, status code), so a
 * request costs two relaxed atomic adds and no lock; a scrape walks the
 * array and prints the non-zero cells. The histogram has the usual
 * Kubernetes-apiserver-like buckets, from 1 ms to 10 s.
 */
#include "server/metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/sbuf.h"
#include "common/util.h"
#include "store/store.h"

#define N_METHODS (SRV_OTHER + 1)
#define MIN_CODE  100
#define MAX_CODE  599
#define N_CODES   (MAX_CODE - MIN_CODE + 1)

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

struct srv_metrics {
	atomic_uint_fast64_t requests[N_METHODS][N_CODES];
	atomic_uint_fast64_t hist[N_METHODS][N_BUCKETS + 1]; /* last: +Inf */
	atomic_uint_fast64_t hist_sum_ns[N_METHODS];
	atomic_uint_fast64_t limits[SRV_LIMIT_COUNT];
};

static const char *const limit_names[SRV_LIMIT_COUNT] = {
    [SRV_LIMIT_NONE] = "",
    [SRV_LIMIT_BODY] = "body",
    [SRV_LIMIT_OBJECT] = "object",
    [SRV_LIMIT_LABELS] = "labels",
    [SRV_LIMIT_ANNOTATIONS] = "annotations",
    [SRV_LIMIT_WATCHES] = "watches",
    [SRV_LIMIT_WATCHES_PER_CLIENT] = "watches_per_client",
    [SRV_LIMIT_CONNECTIONS] = "connections",
    [SRV_LIMIT_HEADERS] = "headers",
    [SRV_LIMIT_REQUEST_TIME] = "request_time",
    [SRV_LIMIT_YAML] = "yaml",
    [SRV_LIMIT_STORE] = "store",
};

const char *srv_limit_name(enum srv_limit l)
{
	return (unsigned)l < SRV_LIMIT_COUNT ? limit_names[l] : "";
}

void srv_metrics_limit(struct srv_metrics *m, enum srv_limit l)
{
	if (m && l > SRV_LIMIT_NONE && l < SRV_LIMIT_COUNT)
		atomic_fetch_add_explicit(&m->limits[l], 1, memory_order_relaxed);
}

uint64_t srv_metrics_limit_count(struct srv_metrics *m, enum srv_limit l)
{
	if (!m || l <= SRV_LIMIT_NONE || l >= SRV_LIMIT_COUNT)
		return 0;
	return atomic_load_explicit(&m->limits[l], memory_order_relaxed);
}

static void render_limits(struct srv_metrics *m, struct sbuf *out)
{
	sbuf_puts(out, "# HELP keel_limit_rejections_total Requests and connections refused "
	               "or cut off by a server limit.\n"
	               "# TYPE keel_limit_rejections_total counter\n");
	for (int l = SRV_LIMIT_NONE + 1; l < SRV_LIMIT_COUNT; l++)
		sbuf_printf(out, "keel_limit_rejections_total{limit=\"%s\"} %llu\n", limit_names[l],
		            (unsigned long long)srv_metrics_limit_count(m, (enum srv_limit)l));
}

static const char *const method_names[N_METHODS] = {"GET",    "POST", "PUT",  "PATCH",
                                                    "DELETE", "HEAD", "OTHER"};

struct srv_metrics *srv_metrics_new(void)
{
	return xcalloc(1, sizeof(struct srv_metrics));
}

void srv_metrics_free(struct srv_metrics *m)
{
	free(m);
}

void srv_metrics_observe(struct srv_metrics *m, enum srv_method method, unsigned code,
                         int64_t duration_ns, bool is_watch)
{
	if (!m)
		return;
	if ((unsigned)method >= N_METHODS)
		method = SRV_OTHER;
	if (code < MIN_CODE || code > MAX_CODE)
		code = 500;
	atomic_fetch_add_explicit(&m->requests[method][code - MIN_CODE], 1, memory_order_relaxed);
	if (is_watch)
		return;
	if (duration_ns < 0)
		duration_ns = 0;
	double secs = (double)duration_ns / 1e9;
	size_t b = 0;
	while (b < N_BUCKETS && secs > buckets[b])
		b++;
	atomic_fetch_add_explicit(&m->hist[method][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->hist_sum_ns[method], (uint_fast64_t)duration_ns,
	                          memory_order_relaxed);
}

static void render_requests(struct srv_metrics *m, struct sbuf *out)
{
	sbuf_puts(
	    out,
	    "# HELP keel_http_requests_total HTTP requests answered, by method and status code.\n"
	    "# TYPE keel_http_requests_total counter\n");
	for (size_t mi = 0; mi < N_METHODS; mi++)
		for (size_t c = 0; c < N_CODES; c++) {
			uint64_t v =
			    atomic_load_explicit(&m->requests[mi][c], memory_order_relaxed);
			if (v)
				sbuf_printf(
				    out,
				    "keel_http_requests_total{method=\"%s\",code=\"%zu\"} %llu\n",
				    method_names[mi], c + MIN_CODE, (unsigned long long)v);
		}
}

static void render_histogram(struct srv_metrics *m, struct sbuf *out)
{
	sbuf_puts(out, "# HELP keel_http_request_duration_seconds Time to answer a request "
	               "(watches excluded).\n"
	               "# TYPE keel_http_request_duration_seconds histogram\n");
	for (size_t mi = 0; mi < N_METHODS; mi++) {
		uint64_t cum = 0, counts[N_BUCKETS + 1];
		for (size_t b = 0; b <= N_BUCKETS; b++)
			counts[b] = atomic_load_explicit(&m->hist[mi][b], memory_order_relaxed);
		uint64_t total = 0;
		for (size_t b = 0; b <= N_BUCKETS; b++)
			total += counts[b];
		if (total == 0)
			continue;
		for (size_t b = 0; b < N_BUCKETS; b++) {
			cum += counts[b];
			sbuf_printf(out,
			            "keel_http_request_duration_seconds_bucket{method=\"%s\",le=\"%"
			            "g\"} %llu\n",
			            method_names[mi], buckets[b], (unsigned long long)cum);
		}
		sbuf_printf(
		    out,
		    "keel_http_request_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n",
		    method_names[mi], (unsigned long long)total);
		double sum =
		    (double)atomic_load_explicit(&m->hist_sum_ns[mi], memory_order_relaxed) / 1e9;
		sbuf_printf(out, "keel_http_request_duration_seconds_sum{method=\"%s\"} %.9f\n",
		            method_names[mi], sum);
		sbuf_printf(out, "keel_http_request_duration_seconds_count{method=\"%s\"} %llu\n",
		            method_names[mi], (unsigned long long)total);
	}
}

static void gauge(struct sbuf *out, const char *name, const char *type, const char *help,
                  uint64_t v)
{
	sbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
	            (unsigned long long)v);
}

void srv_metrics_render(struct srv_metrics *m, const struct store_stats *st, size_t watchers,
                        struct sbuf *out)
{
	render_requests(m, out);
	render_histogram(m, out);
	if (st) {
		gauge(out, "keel_store_revision", "gauge", "Current store revision.", st->revision);
		gauge(out, "keel_store_compacted_revision", "gauge",
		      "Revision below which the change log was compacted.", st->compacted);
		gauge(out, "keel_store_commits_total", "counter",
		      "LMDB write transactions committed.", st->commits);
		gauge(out, "keel_store_writes_total", "counter", "Changes committed.", st->writes);
		gauge(out, "keel_store_map_size_bytes", "gauge",
		      "LMDB map size (the store's quota).", st->map_size);
		gauge(out, "keel_store_map_used_bytes", "gauge", "LMDB map bytes in use.",
		      st->map_used);
	}
	gauge(out, "keel_watchers", "gauge", "Open watch streams.", watchers);
	render_limits(m, out);
}
