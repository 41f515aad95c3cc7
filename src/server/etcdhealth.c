/*
 * server/etcdhealth — the etcd health probe (see etcdhealth.h). One thread,
 * one easy handle per endpoint reused between probes, a 1 s timeout each;
 * results under a mutex, read by request threads.
 */
#include "server/etcdhealth.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "server/opts.h"
#include "store/store.h"

#define PROBE_PERIOD_MS  1000
#define PROBE_TIMEOUT_MS 1000

struct endpoint {
	char *url;  /* owned: "http://H:P" */
	CURL *curl; /* the probe thread's (or start's, before it runs) */
	bool ok;    /* under mu */
	char *why;  /* owned, under mu: why it is not ok */
};

struct srv_etcdh {
	struct endpoint *eps;
	size_t n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	pthread_t thread;
	bool running;
	struct store *store; /* under mu: told after every probe */
};

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	struct sbuf *b = ud;
	if (b->len < 4096)
		sbuf_append(b, p, size * n);
	return size * n;
}

/* One GET /health: 0, or -1 and *why (owned). */
static int probe_one(struct endpoint *e, char **why)
{
	_cleanup_sbuf_ struct sbuf body = SBUF_INIT;
	_cleanup_free_ char *url = xasprintf("%s/health", e->url);
	if (!e->curl)
		e->curl = curl_easy_init();
	CURL *c = e->curl;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		/* etcd 3.4's /health reads through raft: a member without a
		 * quorum does not answer it */
		*why = xasprintf("no answer in %dms (a member without quorum does not answer)",
		                 PROBE_TIMEOUT_MS);
		return -1;
	}
	if (rc != CURLE_OK) {
		*why = xstrdup(curl_easy_strerror(rc));
		return -1;
	}
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	json_t *j = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
	const char *h = json_string_value(json_object_get(j, "health"));
	bool ok = code == 200 && h && streq(h, "true");
	if (!ok)
		*why =
		    h ? xasprintf("unhealthy (HTTP %ld, health %s: no leader or an alarm)", code, h)
		      : xasprintf("not an etcd /health answer (HTTP %ld)", code);
	json_decref(j);
	return ok ? 0 : -1;
}

static char *reasons(struct srv_etcdh *h);
static size_t healthy_locked(struct srv_etcdh *h);

/* Probes every endpoint; returns how many are healthy. The store hears the
 * verdict (store_set_unreachable), so that its calls fail at once while no
 * endpoint is healthy rather than hold their threads. */
static size_t probe_all(struct srv_etcdh *h)
{
	for (size_t i = 0; i < h->n; i++) {
		char *why = NULL;
		bool ok = probe_one(&h->eps[i], &why) == 0;
		pthread_mutex_lock(&h->mu);
		h->eps[i].ok = ok;
		free(h->eps[i].why);
		h->eps[i].why = why;
		pthread_mutex_unlock(&h->mu);
	}
	pthread_mutex_lock(&h->mu);
	size_t healthy = healthy_locked(h);
	if (h->store) {
		_cleanup_free_ char *why = healthy ? NULL : reasons(h);
		store_set_unreachable(h->store, why);
	}
	pthread_mutex_unlock(&h->mu);
	return healthy;
}

static void *probe_main(void *ud)
{
	struct srv_etcdh *h = ud;
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += PROBE_PERIOD_MS / 1000;
		while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &until) != ETIMEDOUT)
			;
		if (h->stop)
			break;
		pthread_mutex_unlock(&h->mu);
		probe_all(h);
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void etcdh_free(struct srv_etcdh *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->eps[i].url);
		free(h->eps[i].why);
		if (h->eps[i].curl)
			curl_easy_cleanup(h->eps[i].curl);
	}
	free(h->eps);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

/* "http://H:P: REASON; ..." of the endpoints that are not ok. Owned. */
static char *reasons(struct srv_etcdh *h)
{
	struct sbuf b = SBUF_INIT;
	for (size_t i = 0; i < h->n; i++)
		if (!h->eps[i].ok)
			sbuf_printf(&b, "%s%s: %s", b.len ? "; " : "", h->eps[i].url,
			            h->eps[i].why ? h->eps[i].why : "not probed yet");
	return sbuf_take(&b);
}

int srv_etcdh_start(const char *endpoints, int64_t wait_ms, struct srv_etcdh **out,
                    struct kerr *err)
{
	struct srv_etcdh *h = xcalloc(1, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	for (const char *p = endpoints; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		h->eps = xrealloc(h->eps, (h->n + 1) * sizeof(*h->eps));
		h->eps[h->n++] = (struct endpoint){.url = xstrndup(p, len)};
		p = comma ? comma + 1 : p + len;
	}
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (probe_all(h) > 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t spent =
		    (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= wait_ms) {
			_cleanup_free_ char *why = reasons(h);
			_cleanup_free_ char *w = srv_format_duration(wait_ms);
			kerr_set(err, EHOSTUNREACH,
			         "no etcd endpoint answers with a healthy cluster after "
			         "--etcd-wait %s: %s",
			         w, why);
			etcdh_free(h);
			return -EHOSTUNREACH;
		}
		struct timespec pause = {0, 200 * 1000000L};
		nanosleep(&pause, NULL);
	}
	if (pthread_create(&h->thread, NULL, probe_main, h) != 0) {
		etcdh_free(h);
		return kerr_set(err, EAGAIN, "cannot start the etcd health thread");
	}
	h->running = true;
	*out = h;
	return 0;
}

void srv_etcdh_stop(struct srv_etcdh *h)
{
	if (!h)
		return;
	if (h->running) {
		pthread_mutex_lock(&h->mu);
		h->stop = true;
		pthread_cond_signal(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
	}
	etcdh_free(h);
}

void srv_etcdh_set_store(struct srv_etcdh *h, struct store *st)
{
	pthread_mutex_lock(&h->mu);
	h->store = st;
	if (st && healthy_locked(h) == 0) {
		_cleanup_free_ char *why = reasons(h);
		store_set_unreachable(st, why);
	}
	pthread_mutex_unlock(&h->mu);
}

static size_t healthy_locked(struct srv_etcdh *h)
{
	size_t k = 0;
	for (size_t i = 0; i < h->n; i++)
		k += h->eps[i].ok;
	return k;
}

bool srv_etcdh_ok(struct srv_etcdh *h)
{
	pthread_mutex_lock(&h->mu);
	bool ok = healthy_locked(h) > 0;
	pthread_mutex_unlock(&h->mu);
	return ok;
}

char *srv_etcdh_describe(struct srv_etcdh *h)
{
	pthread_mutex_lock(&h->mu);
	size_t k = healthy_locked(h);
	char *s;
	if (k > 0) {
		s = xasprintf("etcd ok (%zu/%zu endpoints healthy)", k, h->n);
	} else {
		_cleanup_free_ char *why = reasons(h);
		s = xasprintf("etcd: no healthy endpoint: %s", why);
	}
	pthread_mutex_unlock(&h->mu);
	return s;
}

char *srv_etcdh_unavailable(struct srv_etcdh *h)
{
	pthread_mutex_lock(&h->mu);
	char *s = NULL;
	if (healthy_locked(h) == 0) {
		_cleanup_free_ char *why = reasons(h);
		s = xasprintf("etcd: no healthy endpoint (%s); retry later", why);
	}
	pthread_mutex_unlock(&h->mu);
	return s;
}

void srv_etcdh_render(struct srv_etcdh *h, struct sbuf *out)
{
	pthread_mutex_lock(&h->mu);
	sbuf_puts(out, "# HELP keel_etcd_endpoint_healthy 1 when the endpoint's GET /health said "
	               "true at the last probe.\n# TYPE keel_etcd_endpoint_healthy gauge\n");
	for (size_t i = 0; i < h->n; i++)
		sbuf_printf(out, "keel_etcd_endpoint_healthy{endpoint=\"%s\"} %d\n", h->eps[i].url,
		            h->eps[i].ok ? 1 : 0);
	sbuf_printf(out,
	            "# HELP keel_etcd_healthy_endpoints Endpoints healthy at the last probe.\n"
	            "# TYPE keel_etcd_healthy_endpoints gauge\nkeel_etcd_healthy_endpoints %zu\n",
	            healthy_locked(h));
	pthread_mutex_unlock(&h->mu);
}
