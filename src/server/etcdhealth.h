/*
 * server/etcdhealth — is the etcd behind the store answering? With --store
 * etcd the server asks every endpoint's GET /health (true when that member
 * has a leader, i.e. the cluster has quorum) once a second on a thread of
 * its own, so that /readyz, /metrics and the start-up wait read the last
 * answer without blocking a request on etcd.
 *
 * As kube-apiserver does, liveness (/healthz) does not depend on it: a
 * restart would not bring etcd back. Readiness (/readyz) does: 503 while
 * no endpoint reports a healthy cluster.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct kerr;
struct sbuf;
struct srv_etcdh;
struct store;

/* Probes endpoints ("http://H:P,http://H:P2", as checked by
 * srv_parse_etcd_endpoints) until one is healthy or wait_ms have passed,
 * then starts the probe thread. -EHOSTUNREACH "no etcd endpoint answers
 * after W: http://H:P: REASON; ..." when none did; *out untouched then. */
int srv_etcdh_start(const char *endpoints, int64_t wait_ms, struct srv_etcdh **out,
                    struct kerr *err);
/* Stops the thread and frees. Accepts NULL. */
void srv_etcdh_stop(struct srv_etcdh *h);

/* From now on (st non-NULL) every probe tells st its verdict
 * (store_set_unreachable): while no endpoint is healthy, store calls fail
 * at once. NULL (before the store closes): no longer. */
void srv_etcdh_set_store(struct srv_etcdh *h, struct store *st);

/* True when some endpoint reported a healthy cluster at the last probe. */
bool srv_etcdh_ok(struct srv_etcdh *h);
/* The last probe in words: "etcd ok (2/3 endpoints healthy)" or "etcd: no
 * healthy endpoint: http://H:P: connection refused; ...". Owned. */
char *srv_etcdh_describe(struct srv_etcdh *h);
/* NULL when some endpoint is healthy; else the message of an API request's
 * 503: "etcd: no healthy endpoint (http://H:P: REASON; ...); retry later".
 * Owned. */
char *srv_etcdh_unavailable(struct srv_etcdh *h);
/* keel_etcd_endpoint_healthy{endpoint="..."} 0|1 and
 * keel_etcd_healthy_endpoints, in the Prometheus text format. */
void srv_etcdh_render(struct srv_etcdh *h, struct sbuf *out);
