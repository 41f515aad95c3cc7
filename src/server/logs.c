/*
 * server/logs — GET .../namespaces/{ns}/tasks/{name}/log?follow=&tail=
 * &previous=: the API server relays a Task's output from the agent of
 * its node. The Task names the node (spec.nodeName), the Node names its
 * agent's log server (status.logEndpoint), and the request goes there
 * with that node's log key as its bearer token (server/logkey.c), never
 * the caller's: the node writes its own logEndpoint, so whatever is sent
 * there may reach a node that lies about it, and its own key is all such
 * a node gets. The agent accepts that key only (agent/agent_logsrv.c).
 *
 * Relaying: a thread runs the libcurl transfer and appends what arrives
 * to a buffer; the MHD response is a chunked callback that hands the
 * buffer over and, when it is empty, suspends its connection until the
 * thread resumes it — no MHD worker waits on a quiet `--follow`. The
 * buffer is bounded: a slow client slows the transfer, not the memory.
 * If the client leaves, the next write makes the transfer stop.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "api/status.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "server/handlers.h"
#include "store/store.h"

#define RELAY_BUFFER_MAX ((size_t)1 << 20)
#define ERROR_BODY_MAX   ((size_t)64 << 10)

struct relay {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int refs;
	struct MHD_Connection *conn;
	char *url, *authz;
	struct sbuf buf;
	size_t off;
	long code;
	bool headers_done, done, gone, suspended;
	CURLcode rc;
	char errbuf[CURL_ERROR_SIZE];
};

static void relay_unref(struct relay *x)
{
	pthread_mutex_lock(&x->mu);
	bool last = --x->refs == 0;
	pthread_mutex_unlock(&x->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cond);
	sbuf_free(&x->buf);
	free(x->url);
	free(x->authz);
	free(x);
}

static void wake_reader(struct relay *x)
{
	pthread_cond_broadcast(&x->cond);
	if (x->suspended && !x->gone) {
		x->suspended = false;
		MHD_resume_connection(x->conn);
	}
}

static size_t on_header(char *p, size_t s, size_t n, void *ud)
{
	struct relay *x = ud;
	size_t len = s * n;
	if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) { /* end of a header block */
		pthread_mutex_lock(&x->mu);
		if (x->code >= 200) /* skip 1xx blocks */
			x->headers_done = true;
		pthread_cond_broadcast(&x->cond);
		pthread_mutex_unlock(&x->mu);
	} else if (len > 9 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', len);
		pthread_mutex_lock(&x->mu);
		x->code = sp ? strtol(sp + 1, NULL, 10) : 0;
		pthread_mutex_unlock(&x->mu);
	}
	return len;
}

static size_t on_data(char *p, size_t s, size_t n, void *ud)
{
	struct relay *x = ud;
	size_t len = s * n;
	pthread_mutex_lock(&x->mu);
	size_t limit = x->code == 200 ? RELAY_BUFFER_MAX : ERROR_BODY_MAX;
	while (!x->gone && x->buf.len - x->off + len > limit && x->code == 200)
		pthread_cond_wait(&x->cond, &x->mu);
	bool gone = x->gone;
	if (!gone && x->buf.len - x->off + len <= limit)
		sbuf_append(&x->buf, p, len);
	wake_reader(x);
	pthread_mutex_unlock(&x->mu);
	return gone ? 0 : len;
}

static void *relay_thread(void *arg)
{
	struct relay *x = arg;
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	if (h) {
		if (x->authz) {
			_cleanup_free_ char *line = xasprintf("Authorization: %s", x->authz);
			hdrs = curl_slist_append(hdrs, line);
		}
		curl_easy_setopt(h, CURLOPT_URL, x->url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	}
	CURLcode rc = h ? curl_easy_perform(h) : CURLE_FAILED_INIT;
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	pthread_mutex_lock(&x->mu);
	x->rc = rc;
	x->done = true;
	wake_reader(x);
	pthread_mutex_unlock(&x->mu);
	relay_unref(x);
	return NULL;
}

static ssize_t relay_read(void *cls, uint64_t pos, char *out, size_t max)
{
	(void)pos;
	struct relay *x = cls;
	pthread_mutex_lock(&x->mu);
	ssize_t n = 0;
	if (x->buf.len > x->off) {
		size_t k = x->buf.len - x->off < max ? x->buf.len - x->off : max;
		memcpy(out, x->buf.data + x->off, k);
		x->off += k;
		if (x->off == x->buf.len)
			x->off = 0, x->buf.len = 0;
		pthread_cond_broadcast(&x->cond);
		n = (ssize_t)k;
	} else if (x->done) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		x->suspended = true;
		MHD_suspend_connection(x->conn);
	}
	pthread_mutex_unlock(&x->mu);
	return n;
}

static void relay_free(void *cls)
{
	struct relay *x = cls;
	pthread_mutex_lock(&x->mu);
	x->gone = true;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->mu);
	relay_unref(x);
}

/* The agent's URL for this request and the key to present there
 * (*key, owned), or NULL and a queued error (*ret). */
static char *agent_url(struct srv_req *r, char **key, enum MHD_Result *ret)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_free_ char *tkey = srv_req_key(r);
	_cleanup_json_ json_t *task = NULL;
	int rc = store_get(r->srv->store, tkey, &task, &err);
	if (rc < 0) {
		*ret = rc == -ENOENT ? srv_reply_not_found(r)
		                     : srv_reply_error(r, &err, "tasks", r->route.name);
		return NULL;
	}
	const char *node =
	    json_string_value(json_object_get(json_object_get(task, "spec"), "nodeName"));
	if (!node) {
		*ret = srv_reply_status(r, 404, "NotFound",
		                        "task \"%s\" is not bound to a node yet: it has no logs",
		                        r->route.name);
		return NULL;
	}
	_cleanup_free_ char *nkey = store_key("nodes", NULL, node);
	_cleanup_json_ json_t *nobj = NULL;
	if (store_get(r->srv->store, nkey, &nobj, NULL) < 0) {
		*ret = srv_reply_status(r, 404, "NotFound",
		                        "nodes \"%s\" not found (task \"%s\" is bound to it)", node,
		                        r->route.name);
		return NULL;
	}
	const char *ep =
	    json_string_value(json_object_get(json_object_get(nobj, "status"), "logEndpoint"));
	if (!ep || !*ep) {
		*ret = srv_reply_status(r, 503, "ServiceUnavailable",
		                        "node \"%s\" has no log endpoint (is its agent running?)",
		                        node);
		return NULL;
	}
	const char *tail = srv_req_query(r, "tail");
	uint64_t t = 0;
	bool follow = false, previous = false;
	if (srv_query_u64("tail", tail, &t, &err) < 0 ||
	    srv_query_bool("follow", srv_req_query(r, "follow"), &follow, &err) < 0 ||
	    srv_query_bool("previous", srv_req_query(r, "previous"), &previous, &err) < 0) {
		*ret = srv_reply_error(r, &err, NULL, NULL);
		return NULL;
	}
	_cleanup_free_ char *ns = curl_easy_escape(NULL, r->route.ns, 0);
	_cleanup_free_ char *name = curl_easy_escape(NULL, r->route.name, 0);
	*key = srv_logkey(node, &err);
	if (!*key) {
		*ret = srv_reply_status(r, 500, "InternalError", "log key of node %s: %s", node,
		                        kerr_msg(&err));
		return NULL;
	}
	_cleanup_free_ char *tq =
	    tail ? xasprintf("&tail=%llu", (unsigned long long)t) : xstrdup("");
	return xasprintf("%s/logs/%s/%s?follow=%d&previous=%d%s", ep, ns, name, follow, previous,
	                 tq);
}

static enum MHD_Result reply_relay_error(struct srv_req *r, struct relay *x)
{
	/* under x->mu, transfer done or failed before any 200 */
	if (x->code == 0) { /* no HTTP answer at all */
		return srv_reply_status(r, 503, "ServiceUnavailable",
		                        "cannot reach the node's agent at %s: %s", x->url,
		                        x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->rc));
	}
	_cleanup_json_ json_t *st = json_loadb(x->buf.data ? x->buf.data : "", x->buf.len, 0, NULL);
	if (json_is_object(st))
		return srv_reply_json(r, (unsigned)x->code, json_incref(st), NULL, NULL);
	return srv_reply_status(r, (unsigned)x->code, "InternalError",
	                        "the node's agent answered HTTP %ld", x->code);
}

enum MHD_Result srv_handle_log(struct srv_req *r)
{
	enum MHD_Result ret = MHD_NO;
	char *key = NULL;
	char *url = agent_url(r, &key, &ret);
	if (!url)
		return ret;
	signal(SIGPIPE, SIG_IGN);
	struct relay *x = xcalloc(1, sizeof(*x));
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cond, NULL);
	x->refs = 2;
	x->conn = r->conn;
	x->url = url;
	x->authz = xasprintf("Bearer %s", key); /* never the caller's: see the top */
	free(key);
	pthread_t th;
	if (pthread_create(&th, NULL, relay_thread, x) != 0) {
		x->refs = 1;
		relay_unref(x);
		return srv_reply_status(r, 500, "InternalError", "cannot start the log relay");
	}
	pthread_detach(th);
	pthread_mutex_lock(&x->mu);
	while (!x->done && !(x->headers_done && x->code == 200))
		pthread_cond_wait(&x->cond, &x->mu);
	bool ok = x->headers_done && x->code == 200;
	if (!ok) {
		ret = reply_relay_error(r, x);
		pthread_mutex_unlock(&x->mu);
		relay_unref(x);
		return ret;
	}
	pthread_mutex_unlock(&x->mu);
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, relay_read, x, relay_free);
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	return srv_reply_response(r, 200, resp);
}
