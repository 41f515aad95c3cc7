/*
 * client_logs — GET .../tasks/NAME/log: a Task's output, streamed to a
 * callback as it arrives (the server relays it from the node's agent).
 * Like a watch it has no overall timeout when following; an error
 * answer's Status becomes the usual -errno. With several servers it fails
 * over as any GET does, but only until the first byte of output was
 * handed on: resending the request then would repeat what was shown.
 */
#include "client/client.h"

#include <errno.h>

#include "api/kind.h"
#include "client/client_internal.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

struct logs_state {
	struct client *c;
	client_logs_fn fn;
	void *ud;
	int http;
	int stopped;
	bool delivered;
	struct sbuf errbody;
};

static size_t logs_write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct logs_state *st = ud;
	size_t n = size * nmemb;
	if (st->http == 0) {
		long http = 0;
		curl_easy_getinfo(st->c->curl, CURLINFO_RESPONSE_CODE, &http);
		st->http = (int)http;
	}
	if (st->http < 200 || st->http >= 300) {
		if (st->errbody.len + n <= 1024 * 1024)
			sbuf_append(&st->errbody, p, n);
		return n;
	}
	st->delivered = true;
	if (st->fn(st->ud, p, n) != 0) {
		st->stopped = 1;
		return 0;
	}
	return n;
}

/* One attempt on the current server; *again as client_should_fail_over. */
static int logs_once(struct client *c, const char *path, const struct client_logs_opts *o,
                     struct logs_state *st, struct sbuf *tried, bool *again, struct kerr *err)
{
	struct sbuf q = SBUF_INIT;
	sbuf_printf(&q, "%s%s", c->server, path);
	char sep = '?';
	if (o && o->follow)
		sbuf_printf(&q, "%cfollow=1", sep), sep = '&';
	if (o && o->previous)
		sbuf_printf(&q, "%cprevious=1", sep), sep = '&';
	if (o && o->tail >= 0)
		sbuf_printf(&q, "%ctail=%ld", sep, o->tail);
	_cleanup_free_ char *url = sbuf_take(&q);
	struct curl_slist *hdrs = NULL;
	client_curl_setup(c, url, &hdrs);
	CURL *h = c->curl;
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (o && o->follow)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, logs_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, st);
	char ebuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	json_decref(c->last_status);
	c->last_status = NULL;
	int64_t start = time_mono_ms();
	CURLcode rc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	long http = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
	c->last_http = (int)http;
	bool answered = http != 0 && (http < 200 || http >= 300);
	*again = !st->stopped && !st->delivered &&
	         client_should_fail_over(c, answered ? CURLE_OK : rc, http, true);
	if (*again)
		client_note_failure(c, answered ? CURLE_OK : rc, ebuf, http, tried);
	int r = 0;
	if (st->stopped)
		r = 0;
	else if (answered)
		r = client_http_error(c, (int)http, st->errbody.data, err);
	else if (rc != CURLE_OK)
		r = client_curl_error(c, rc, ebuf, err);
	client_trace(c, "GET", url, start);
	return r;
}

int client_logs(struct client *c, const char *ns, const char *name,
                const struct client_logs_opts *o, client_logs_fn fn, void *ud, struct kerr *err)
{
	_cleanup_free_ char *path = client_path(api_kind_by_plural("tasks"), ns, name, "log");
	_cleanup_sbuf_ struct sbuf tried = SBUF_INIT;
	for (size_t i = 1;; i++) {
		struct logs_state st = {.c = c, .fn = fn, .ud = ud};
		bool again = false;
		int r = logs_once(c, path, o, &st, &tried, &again, err);
		sbuf_free(&st.errbody);
		if (!again)
			return r;
		if (i == c->n_servers)
			return c->last_http == 0 ? client_all_failed(r, &tried, err) : r;
		client_next_server(c);
	}
}
