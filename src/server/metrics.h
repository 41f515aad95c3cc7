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

/* The server's hard limits, for keel_limit_rejections_total{limit=...}.
 * SRV_LIMIT_NONE is "no limit was hit" (struct srv_req's default). */
enum srv_limit {
	SRV_LIMIT_NONE,
	SRV_LIMIT_BODY,               /* --max-body */
	SRV_LIMIT_OBJECT,             /* --max-object */
	SRV_LIMIT_LABELS,             /* metadata.labels: at most 64 */
	SRV_LIMIT_ANNOTATIONS,        /* metadata.annotations: at most 256 KiB */
	SRV_LIMIT_WATCHES,            /* --max-watchers */
	SRV_LIMIT_WATCHES_PER_CLIENT, /* --max-watchers-per-client */
	SRV_LIMIT_CONNECTIONS,        /* --max-connections */
	SRV_LIMIT_HEADERS,            /* --max-header-bytes */
	SRV_LIMIT_REQUEST_TIME,       /* --request-timeout */
	SRV_LIMIT_YAML,               /* YAML depth, nodes (aliases), document size */
	SRV_LIMIT_STORE,              /* --store-size: the store is full (507) */
	SRV_LIMIT_COUNT
};

/* The limit's label value ("body", "watches_per_client", ...); "" for NONE. */
const char *srv_limit_name(enum srv_limit l);

struct srv_metrics *srv_metrics_new(void);
void srv_metrics_free(struct srv_metrics *m);

/* Records one finished request. Watch streams count in
 * keel_http_requests_total but not in the latency histogram (their
 * duration is the client's choice). */
void srv_metrics_observe(struct srv_metrics *m, enum srv_method method, unsigned code,
                         int64_t duration_ns, bool is_watch);

/* Counts one rejection by limit l (NONE and out-of-range are ignored). */
void srv_metrics_limit(struct srv_metrics *m, enum srv_limit l);
uint64_t srv_metrics_limit_count(struct srv_metrics *m, enum srv_limit l);

/* Appends the exposition text: keel_http_requests_total{method,code},
 * keel_http_request_duration_seconds (histogram), keel_store_revision,
 * keel_store_compacted_revision, keel_store_commits_total,
 * keel_store_writes_total, keel_store_map_size_bytes,
 * keel_store_map_used_bytes, keel_watchers,
 * keel_limit_rejections_total{limit} (every limit, zeros included, so that
 * the series exist before the first rejection). st may be NULL. */
void srv_metrics_render(struct srv_metrics *m, const struct store_stats *st, size_t watchers,
                        struct sbuf *out);
