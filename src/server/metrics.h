/*
 * server/metrics — request counters and latency histograms for /metrics,
 * in the Prometheus text format. Lock-free (atomic counters): observe()
 * is called once per request from any MHD thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "server/router.h"

struct sbuf;
struct store_stats;
struct srv_metrics;

struct srv_metrics *srv_metrics_new(void);
void srv_metrics_free(struct srv_metrics *m);

/* Records one finished request. Watch streams count in
 * keel_http_requests_total but not in the latency histogram (their
 * duration is the client's choice). */
void srv_metrics_observe(struct srv_metrics *m, enum srv_method method, unsigned code,
                         int64_t duration_ns, bool is_watch);

/* Appends the exposition text: keel_http_requests_total{method,code},
 * keel_http_request_duration_seconds (histogram), keel_store_revision,
 * keel_store_compacted_revision, keel_store_commits_total,
 * keel_store_writes_total, keel_store_map_size_bytes,
 * keel_store_map_used_bytes, keel_watchers. st may be NULL. */
void srv_metrics_render(struct srv_metrics *m, const struct store_stats *st, size_t watchers,
                        struct sbuf *out);
