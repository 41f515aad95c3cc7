/*
 * store_etcd — the etcd backend behind store.h (not a public header).
 *
 * store.c's public functions hand over to these when the store was opened
 * with options.etcd_endpoints; the contract is store.h's. What differs:
 * revisions are etcd's (global over the whole etcd, so increasing but not
 * contiguous under one prefix), the data directory is not used, and writes
 * are answered by a pool of worker threads once the watch thread has
 * delivered the change to the commit hook.
 *
 * store_etcd_gw.c speaks the v3 JSON gateway (one CURL handle per thread,
 * endpoint failover, base64, error mapping); store_etcd.c opens, reads,
 * lists and writes; store_etcd_watch.c runs the watch thread (the commit
 * hook, store_revision, compaction) and replays changes.
 */
#pragma once

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "store/store.h"

/* ---- the gateway (store_etcd_gw.c) ------------------------------------------------- */

struct etcd_gw {
	char **urls; /* "http://H:P", no trailing slash */
	size_t n;
	char *list;         /* the endpoints as given, for messages */
	_Atomic size_t cur; /* the endpoint that worked last */
	_Atomic bool *stop; /* set when the store closes: streams end */
	/* Set by etcd_gw_set_down (the server's health probe says no endpoint
	 * is healthy): unary calls fail at once rather than waiting rounds. */
	_Atomic bool down;
	pthread_mutex_t down_mu;
	char *down_why; /* owned, under down_mu */
};

/* One thread's connection: a CURL handle kept alive between calls. */
struct etcd_conn {
	CURL *h;
	struct curl_slist *hdr;
	struct sbuf body;
};

/* -EINVAL naming the bad endpoint unless list is "http://H:P[,http://H:P...]". */
int etcd_gw_init(struct etcd_gw *gw, const char *list, struct kerr *err);
void etcd_gw_free(struct etcd_gw *gw);
void etcd_conn_init(struct etcd_conn *c);
void etcd_conn_free(struct etcd_conn *c);

/* A unary call: POSTs req (borrowed) to PATH ("/v3/kv/range") on the current
 * endpoint, moving on to the next ones (for a few rounds, with backoff) on a
 * connection error, a timeout, a 5xx or a leader error. *resp owned.
 * Errors: -ENOSPC (etcd's quota), -E2BIG (request too large), -ERANGE
 * (revision compacted), -EIO (every endpoint failed: the message names
 * them; or another etcd error), -EHOSTUNREACH (etcd_gw_set_down: no
 * endpoint is healthy; before a round, or a read in progress). With
 * idempotent false, a failure after the request may have reached etcd (a
 * timeout, a lost answer, a leader change) returns -EINPROGRESS at once:
 * the outcome is unknown and the caller must find out by reading. */
int etcd_call(struct etcd_gw *gw, struct etcd_conn *c, const char *path, json_t *req,
              bool idempotent, json_t **resp, struct kerr *err);

/* A watch stream: POSTs {"create_request": create} (borrowed) to /v3/watch
 * and calls fn with each response's "result" (borrowed) as it arrives,
 * until fn returns non-zero (returned), the stream breaks (-EIO: the caller
 * reconnects; gw->cur has moved past the endpoint) or gw->stop is set
 * (-ESHUTDOWN). tick (may be NULL) is called about once a second while the
 * stream is open and whenever data arrives: a non-zero return means the
 * member is stalled (it answers TCP but sends nothing: SIGSTOPped, cut off)
 * and ends the stream with -ETIMEDOUT, gw->cur moved past it. The stream
 * is tried on one endpoint: gw->cur. */
typedef int (*etcd_watch_fn)(void *ctx, json_t *result);
typedef int (*etcd_tick_fn)(void *ctx);
int etcd_watch(struct etcd_gw *gw, struct etcd_conn *c, json_t *create, etcd_watch_fn fn,
               etcd_tick_fn tick, void *ctx, struct kerr *err);
/* why non-NULL: no endpoint is healthy (why names them, copied); from now
 * on etcd_call fails at once, and a call between rounds stops, with
 * -EHOSTUNREACH "etcd: no healthy endpoint (WHY)". NULL: calls go to etcd
 * again. */
void etcd_gw_set_down(struct etcd_gw *gw, const char *why);
/* Moves gw->cur past the endpoint `failed` (after a broken stream). */
void etcd_gw_next(struct etcd_gw *gw, size_t failed);

/* base64 of len bytes: owned JSON string. */
json_t *etcd_b64(const void *data, size_t len);
/* Decodes a base64 JSON string value: owned, NUL-terminated; NULL if bad. */
char *etcd_unb64(json_t *s, size_t *len);
/* An int64 field sent as a JSON string ("12"); 0 if absent. */
uint64_t etcd_u64(json_t *obj, const char *field);
json_t *etcd_u64_new(uint64_t v);

/* ---- the backend (store_etcd.c, store_etcd_watch.c) ------------------------------------- */

struct etcd_req;

struct store_etcd {
	struct etcd_gw gw;
	char id[20]; /* random, per open: names the workers' write tokens */
	_Atomic unsigned next_worker;
	char *prefix; /* "/keel/" */
	size_t plen;
	uint64_t history;
	size_t max_object, map_size;

	pthread_mutex_t lock;
	pthread_cond_t work_cond;     /* workers wait for requests */
	pthread_cond_t idle_cond;     /* close waits for inflight == 0 */
	pthread_cond_t rev_cond;      /* waiters for a delivered revision */
	struct etcd_req *head, *tail; /* queued */
	struct etcd_req *pend;        /* committed, waiting for the watch (by rev) */
	uint64_t queued;
	unsigned inflight; /* requests accepted and not answered + calls in progress */
	bool closing;      /* no new writes */
	_Atomic bool stop; /* the watch thread ends */
	unsigned nworkers;
	pthread_t *workers;
	pthread_t watcher;
	bool watcher_running;
	store_commit_hook hook;
	void *hook_ctx;

	_Atomic uint64_t revision, compacted, commits, writes;
	/* The newest revision known to be an event under the prefix (a txn
	 * this store committed, a marker): the watch must deliver it; one
	 * that makes no progress towards it for STALL_MS is on a stalled
	 * member and moves on (store_etcd_watch.c). */
	_Atomic uint64_t expect;

	/* store_get_stats is /metrics: it never waits for etcd. The stats
	 * thread refreshes etcd's dbSizeInUse every STATS_EVERY_MS (and open
	 * once) on stats_conn (open's connection before that). */
	struct etcd_conn stats_conn;
	pthread_t stats_thread;
	bool stats_running;
	pthread_cond_t stats_cond; /* with lock: close wakes the stats thread */
	_Atomic uint64_t used;
};

int store_etcd_open(const struct store_options *opt, struct store_etcd **out, struct kerr *err);
void store_etcd_close(struct store_etcd *e);
int store_etcd_get(struct store_etcd *e, const char *key, json_t **out, struct kerr *err);
int store_etcd_get_text(struct store_etcd *e, const char *key, char **text, size_t *len,
                        struct kerr *err);
int store_etcd_list(struct store_etcd *e, const char *prefix, const char *after, size_t limit,
                    store_filter_fn filter, void *ctx, json_t **items, uint64_t *rev, char **next,
                    struct kerr *err);
int store_etcd_update(struct store_etcd *e, const char *key, store_mutate_fn fn, void *ctx,
                      json_t **result, uint64_t *rev, struct kerr *err);
int store_etcd_update_async(struct store_etcd *e, const char *key, store_mutate_fn fn, void *ctx,
                            store_done_fn done, void *done_ctx, struct kerr *err);
void store_etcd_set_commit_hook(struct store_etcd *e, store_commit_hook hook, void *ctx);
int store_etcd_changes(struct store_etcd *e, uint64_t after, store_event_fn fn, void *ctx,
                       struct kerr *err);
void store_etcd_get_stats(struct store_etcd *e, struct store_stats *st);

/* Shared between store_etcd.c and store_etcd_watch.c. */
/* The watch thread: delivers every change under the prefix to the hook. */
void *store_etcd_watch_main(void *arg);
/* Tells the watch thread that rev is an event under the prefix. */
void store_etcd_expect(struct store_etcd *e, uint64_t rev);
/* Answers the committed requests whose revision the watch has delivered. */
void store_etcd_complete_through(struct store_etcd *e, uint64_t rev);
/* Sets metadata.resourceVersion of obj to rev; -EINVAL if obj is no object. */
int store_etcd_set_rv(json_t *obj, uint64_t rev, const char *key, struct kerr *err);
/* Whether full key k (len bytes) is the store's own (a marker), not an object's. */
bool store_etcd_is_marker(struct store_etcd *e, const char *k, size_t len);
/* Puts the marker PREFIX".open": *rev its revision (an event under the prefix). */
int store_etcd_put_marker(struct store_etcd *e, struct etcd_conn *c, uint64_t *rev,
                          struct kerr *err);
/* Whether the current thread is one of the store's (worker, watch). */
bool store_etcd_own_thread(struct store_etcd *e);
/* Decodes a kv of a range/watch answer: *out owned, with resourceVersion =
 * mod_revision; *raw (if non-NULL) the stored text. -EIO naming what. */
int store_etcd_kv_object(json_t *kv, const char *what, json_t **out, char **raw, struct kerr *err);
/* The calling thread's own connection (kept until the thread ends). */
struct etcd_conn *store_etcd_thread_conn(void);
/* Counts a call so that close waits for it; -ESHUTDOWN once closing. */
int store_etcd_enter(struct store_etcd *e, struct kerr *err);
void store_etcd_leave(struct store_etcd *e);
/* Learns etcd's compacted revision (a watch from revision 1 on no key). */
int store_etcd_probe_compacted(struct store_etcd *e, struct etcd_conn *c, struct kerr *err);
extern _Thread_local struct store_etcd *store_etcd_thread;
