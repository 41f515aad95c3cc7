/*
 * client_watch: the watch stream. The server answers a watch=1 GET with
 * chunked newline-delimited JSON events; curl hands us the bytes in
 * arbitrary pieces, so they are gathered into a line buffer and each
 * complete line becomes one callback. A callback that wants to stop (or an
 * ERROR event) makes the write callback return 0, which aborts the
 * transfer; the reason is kept in the state so that the abort can be told
 * apart from a real write failure.
 *
 * With several servers a broken stream (reset, truncated, silent, 503, or
 * no connection at all) is resumed on the next server from the last
 * resourceVersion the callback was given, bookmarks included: the server
 * sends only what follows it, so the callback sees neither a gap nor a
 * duplicate. A watch that started from "0" (the initial ADDED burst, whose
 * objects come in key order, not revision order) has no such position
 * until it ends, so once it has delivered anything it is not resumed:
 * its error goes to the caller, which relists.
 *
 * A stream that stays silent is dead: a frozen server (SIGSTOP, a hung
 * host) keeps its connections open, so only silence tells. The server
 * says in the Keel-Bookmark-Interval header how often an idle stream gets
 * a BOOKMARK; silence for WATCH_IDLE_BOOKMARKS of those (at least
 * WATCH_IDLE_MIN_MS) ends the stream as broken, and it resumes on the next
 * server as above. From a server that does not say, opts.watch_idle_s.
 * Until the answer's head arrives the watch is an ordinary request waiting
 * for its answer, and opts.timeout_ms bounds the wait if it is shorter (a
 * server frozen before it answered; keel's servers send the head at once).
 */
#include "client/client.h"

#include <errno.h>
#include <strings.h>

#include "api/status.h"
#include "client/client_internal.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

/* One event carries one object; objects are bounded by the server at
 * 1.5 MiB, so a longer line is garbage. */
#define WATCH_MAX_LINE (16u * 1024 * 1024)

/* The idle deadline from the server's bookmark interval: a few missed
 * bookmarks, not one (a busy server sends late), and never under a few
 * seconds (a short interval is for tests and small clusters, not a
 * promise of sub-second scheduling). */
#define WATCH_IDLE_BOOKMARKS 3
#define WATCH_IDLE_MIN_MS    3000
/* A server's interval beyond this is not believed (a day). */
#define WATCH_IDLE_MAX_MS (24LL * 3600 * 1000)

struct watch_state {
	struct client *c;
	client_watch_fn fn;
	void *userdata;
	struct sbuf line;     /* an incomplete line, or an error answer's body */
	int http;             /* the answer's status, once known */
	int stop;             /* 0 go on; 1 fn asked to stop; <0 error */
	int64_t last_data_ms; /* when the last bytes arrived (monotonic) */
	int64_t idle_ms;      /* silence this long ends the stream (see top) */
	bool idle;            /* the idle timeout ended the stream */
	bool cancelled;       /* client_watch_cancel ended it */
	bool delivered;       /* the callback was given an event this round */
	char *last_rv;        /* owned; the last resourceVersion given to fn */
	struct kerr *err;
};

static int watch_error_event(struct watch_state *st, json_t *status)
{
	int e = api_errno_from_status(status);
	const char *msg = json_string_value(json_object_get(status, "message"));
	json_decref(st->c->last_status);
	st->c->last_status = json_incref(status);
	return kerr_set(st->err, e ? e : EIO, "watch: %s",
	                msg ? msg : "the server ended the watch");
}

static int watch_line(struct watch_state *st, const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return 0; /* keep-alive blank line */
	json_error_t jerr;
	_cleanup_json_ json_t *ev = json_loadb(line, len, 0, &jerr);
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj))
		return kerr_set(st->err, EBADMSG, "watch: not a JSON event: %.80s", line);
	if (streq(type, "ERROR"))
		return watch_error_event(st, obj);
	const char *rv =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	if (rv && *rv) {
		free(st->last_rv);
		st->last_rv = xstrdup(rv);
	}
	st->delivered = true;
	int r = st->fn(type, obj, st->userdata);
	return r > 0 ? 1 : r;
}

static int watch_feed(struct watch_state *st, const char *data, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		if (st->line.len + take > WATCH_MAX_LINE)
			return kerr_set(st->err, E2BIG, "watch: an event is longer than %u bytes",
			                WATCH_MAX_LINE);
		if (!nl) {
			sbuf_append(&st->line, data, n);
			return 0;
		}
		int r;
		if (st->line.len > 0) {
			sbuf_append(&st->line, data, take);
			r = watch_line(st, st->line.data, st->line.len);
			sbuf_reset(&st->line);
		} else {
			r = watch_line(st, data, take);
		}
		if (r != 0)
			return r;
		data += take + 1;
		n -= take + 1;
	}
	return 0;
}

static size_t watch_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct watch_state *st = ud;
	size_t n = size * nmemb;
	st->last_data_ms = time_mono_ms();
	if (st->http == 0) {
		long http = 0;
		curl_easy_getinfo(st->c->curl, CURLINFO_RESPONSE_CODE, &http);
		st->http = (int)http;
		st->c->last_http = st->http;
	}
	if (st->http < 200 || st->http >= 300) {
		/* An error answer: keep its (small) Status body for later. */
		if (st->line.len + n <= 1024 * 1024)
			sbuf_append(&st->line, ptr, n);
		return n;
	}
	st->stop = watch_feed(st, ptr, n);
	/* Silence counts from here: a callback that took its time (a slow
	 * consumer) is not a silent server. */
	st->last_data_ms = time_mono_ms();
	return st->stop == 0 ? n : 0;
}

/* The idle deadline from "Keel-Bookmark-Interval: 1500ms" (or "15s"); 0
 * when v is not such a value. */
static int64_t idle_ms_from_interval(const char *v, const char *end)
{
	int64_t ms = 0;
	const char *p = v;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		ms = ms * 10 + (*p - '0');
		if (ms > WATCH_IDLE_MAX_MS)
			return 0;
	}
	if (p == v || ms == 0)
		return 0;
	if ((size_t)(end - p) == 1 && *p == 's')
		ms *= 1000;
	else if ((size_t)(end - p) != 2 || p[0] != 'm' || p[1] != 's')
		return 0;
	if (ms > WATCH_IDLE_MAX_MS)
		return 0;
	ms *= WATCH_IDLE_BOOKMARKS;
	return ms < WATCH_IDLE_MIN_MS ? WATCH_IDLE_MIN_MS : ms;
}

static size_t watch_header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	struct watch_state *st = ud;
	size_t n = size * nitems;
	st->last_data_ms = time_mono_ms();
	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) /* the status line: an answer */
		st->idle_ms = (int64_t)st->c->watch_idle_s * 1000;
	static const char name[] = "keel-bookmark-interval:";
	if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
		const char *v = buf + sizeof(name) - 1;
		const char *end = buf + n;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
			end--;
		int64_t ms = idle_ms_from_interval(v, end);
		if (ms > 0)
			st->idle_ms = ms;
	}
	return n;
}

static int watch_progress_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                             curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct watch_state *st = ud;
	if (atomic_load(&st->c->watch_cancelled)) {
		st->cancelled = true;
		return 1; /* abort: CURLE_ABORTED_BY_CALLBACK */
	}
	if (time_mono_ms() - st->last_data_ms > st->idle_ms) {
		st->idle = true;
		return 1; /* abort: CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

/* *broken: the stream could not be had or ended early (client.h,
 * "Several servers"); the result is then this server's error. */
static int watch_finish(struct watch_state *st, CURLcode rc, const char *ebuf, bool *broken)
{
	struct client *c = st->c;
	*broken = false;
	if (st->stop > 0 || st->cancelled)
		return 0; /* the callback, or client_watch_cancel, stopped it */
	if (st->stop < 0)
		return st->stop;
	if (st->idle) {
		*broken = c->n_servers > 1;
		return kerr_set(st->err, ETIMEDOUT, "watch: nothing from %s for %.1f s", c->server,
		                (double)st->idle_ms / 1000);
	}
	long http = 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http);
	c->last_http = (int)http;
	if (http != 0 && (http < 200 || http >= 300)) {
		*broken = client_should_fail_over(c, CURLE_OK, http, true);
		return client_http_error(c, (int)http, st->line.data, st->err);
	}
	*broken = rc != CURLE_OK && client_should_fail_over(c, rc, 0, true);
	if (rc != CURLE_OK && rc != CURLE_PARTIAL_FILE)
		return client_curl_error(c, rc, ebuf, st->err);
	if (*broken) /* truncated: the server went away mid-stream */
		return kerr_set(st->err, EIO, "watch: the stream from %s broke: %s", c->server,
		                *ebuf ? ebuf : curl_easy_strerror(rc));
	/* The server closed the stream (timeoutSeconds, or shutdown); a final
	 * line without '\n' is still an event. */
	if (st->line.len > 0) {
		_cleanup_free_ char *last = sbuf_take(&st->line);
		int r = watch_line(st, last, strlen(last));
		return r < 0 ? r : 0;
	}
	return 0;
}

/* One watch request on the current server, from wq->resource_version. */
static int watch_once(struct watch_state *st, const char *path, const struct client_query *wq,
                      struct sbuf *note, bool *broken)
{
	struct client *c = st->c;
	_cleanup_free_ char *query = client_query_encode(wq);
	_cleanup_free_ char *url = xasprintf("%s%s%s", c->server, path, query);
	struct curl_slist *hdrs = NULL;
	client_curl_setup(c, url, &hdrs);
	CURL *h = c->curl;
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
	/* curl's low-speed check averages over several seconds; a progress
	 * callback sees the idle time exactly. */
	st->last_data_ms = time_mono_ms();
	st->idle_ms = (int64_t)c->watch_idle_s * 1000; /* until the answer (see top) */
	if (c->timeout_ms < st->idle_ms)
		st->idle_ms = c->timeout_ms;
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, watch_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, st);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, st);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, st);
	char ebuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	json_decref(c->last_status);
	c->last_status = NULL;
	c->last_http = 0;
	int64_t start = time_mono_ms();
	CURLcode rc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	int r = watch_finish(st, rc, ebuf, broken);
	client_trace(c, "WATCH", url, start);
	if (*broken)
		client_note_failure(c, st->idle ? CURLE_OPERATION_TIMEDOUT : rc,
		                    st->idle ? "no data (idle timeout)" : ebuf, c->last_http, note);
	return r;
}

int client_watch(struct client *c, const struct api_kind *k, const char *ns,
                 const struct client_query *q, client_watch_fn fn, void *userdata, struct kerr *err)
{
	struct client_query wq = q ? *q : (struct client_query){0};
	wq.watch = true;
	wq.limit = 0;
	wq.continue_token = NULL;
	bool positioned =
	    wq.resource_version && *wq.resource_version && !streq(wq.resource_version, "0");
	bool delivered = false;
	_cleanup_free_ char *path = client_path(k, ns, NULL, NULL);
	_cleanup_sbuf_ struct sbuf tried = SBUF_INIT, note = SBUF_INIT;
	struct watch_state st = {.c = c, .fn = fn, .userdata = userdata, .err = err};
	int r;
	for (size_t tries = 1;; tries++) {
		bool broken = false;
		st.http = 0, st.stop = 0, st.idle = false, st.cancelled = false;
		st.delivered = false;
		sbuf_reset(&st.line);
		r = watch_once(&st, path, &wq, &note, &broken);
		delivered |= st.delivered;
		if (st.delivered) { /* the server was good: every other one may be tried */
			tries = 1;
			sbuf_reset(&tried);
		}
		if (note.len > 0)
			sbuf_printf(&tried, "%s%s", tried.len ? "; " : "", note.data);
		sbuf_reset(&note);
		if (!broken || (delivered && !positioned))
			break;
		if (tries == c->n_servers) {
			r = client_all_failed(r, &tried, err);
			break;
		}
		client_next_server(c);
		if (st.last_rv)
			wq.resource_version = st.last_rv;
	}
	sbuf_free(&st.line);
	free(st.last_rv);
	return r;
}

void client_watch_cancel(struct client *c)
{
	atomic_store(&c->watch_cancelled, true);
}
