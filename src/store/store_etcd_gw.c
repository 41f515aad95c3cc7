/*
 * store_etcd_gw — etcd's v3 JSON gateway over libcurl: unary calls with
 * endpoint failover, the watch stream, base64 and the one etcd error ->
 * errno table.
 *
 * Every thread of the backend has its own CURL handle (etcd_conn), so
 * connections are kept alive and no handle is shared. Endpoints are tried in
 * order starting from the one that worked last (gw->cur, shared): a
 * connection error, a timeout, a 5xx or a leader error moves on to the next
 * one, for a few rounds with backoff (a 3-member cluster elects a new leader
 * within about a second). The gateway answers errors as {"error","code",
 * "message"} with a 4xx/5xx status; the message text is what identifies them.
 *
 * A non-idempotent call (a txn) is not retried once it may have reached
 * etcd: -EINPROGRESS tells the caller the outcome is unknown (store_etcd.c
 * re-reads the key to find out). It goes out on a kept-alive connection
 * like every call: libcurl then sends it again by itself when the
 * connection turns out closed before any answer, and store_etcd.c makes
 * such a second copy harmless (test_store_etcd.c test_lost_answer).
 *
 * While the server's health probe finds no endpoint healthy (quorum lost:
 * etcd_gw_set_down, store_set_unreachable), calls fail at once with
 * -EHOSTUNREACH instead of spending their rounds, and a read in progress
 * is ended by curl's progress callback: the callers' threads (the server's
 * HTTP threads) are not held by an etcd that cannot answer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kerr.h"
#include "common/util.h"
#include "store/store_etcd.h"

#define CALL_TIMEOUT_MS    3000L /* a stalled member costs this, then the next one */
#define CONNECT_TIMEOUT_MS 1000L
#define ROUNDS             6 /* backoff 50, 100, ... 1600 ms: about 3 s */
#define MAX_RESPONSE       ((size_t)256 << 20)

/* ---- base64 and int64 strings -------------------------------------------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

json_t *etcd_b64(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		*o++ = b64chars[v >> 18 & 63], *o++ = b64chars[v >> 12 & 63];
		*o++ = b64chars[v >> 6 & 63], *o++ = b64chars[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
		*o++ = b64chars[v >> 18 & 63], *o++ = b64chars[v >> 12 & 63];
		*o++ = i + 1 < len ? b64chars[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	json_t *j = json_stringn_nocheck(out, (size_t)(o - out));
	free(out);
	return j;
}

static int b64val(unsigned char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

char *etcd_unb64(json_t *s, size_t *len)
{
	const char *in = json_string_value(s);
	size_t n = json_string_length(s);
	if (!in || n % 4)
		return NULL;
	char *out = xmalloc(n / 4 * 3 + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++)
			v[k] = in[i + k] == '=' && i + 4 == n && k >= 2
			           ? 0
			           : b64val((unsigned char)in[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) {
			free(out);
			return NULL;
		}
		unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
		             (unsigned)v[3];
		out[o++] = (char)(w >> 16);
		if (in[i + 2] != '=')
			out[o++] = (char)(w >> 8 & 0xff);
		if (in[i + 3] != '=')
			out[o++] = (char)(w & 0xff);
	}
	out[o] = '\0';
	*len = o;
	return out;
}

uint64_t etcd_u64(json_t *obj, const char *field)
{
	json_t *v = json_object_get(obj, field);
	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	const char *s = json_string_value(v);
	return s ? strtoull(s, NULL, 10) : 0;
}

json_t *etcd_u64_new(uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
	return json_string(buf);
}

/* ---- endpoints and connections ---------------------------------------------------------- */

int etcd_gw_init(struct etcd_gw *gw, const char *list, struct kerr *err)
{
	memset(gw, 0, sizeof *gw);
	pthread_mutex_init(&gw->down_mu, NULL);
	_cleanup_free_ char *copy = xstrdup(list);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		size_t n = strlen(t);
		while (n && (t[n - 1] == '/' || t[n - 1] == ' '))
			t[--n] = '\0';
		if (!strstartswith(t, "http://") || n <= strlen("http://")) {
			int r =
			    kerr_set(err, EINVAL,
			             "--etcd-endpoints: \"%s\" is not an http://HOST:PORT URL", t);
			etcd_gw_free(gw);
			return r;
		}
		gw->urls = xrealloc(gw->urls, (gw->n + 1) * sizeof *gw->urls);
		gw->urls[gw->n++] = xstrdup(t);
	}
	if (!gw->n)
		return kerr_set(err, EINVAL, "--etcd-endpoints: no endpoint given");
	gw->list = xstrdup(list);
	return 0;
}

void etcd_gw_free(struct etcd_gw *gw)
{
	for (size_t i = 0; i < gw->n; i++)
		free(gw->urls[i]);
	free(gw->urls);
	free(gw->list);
	free(gw->down_why);
	pthread_mutex_destroy(&gw->down_mu);
	memset(gw, 0, sizeof *gw);
}

void etcd_gw_set_down(struct etcd_gw *gw, const char *why)
{
	pthread_mutex_lock(&gw->down_mu);
	free(gw->down_why);
	gw->down_why = why ? xstrdup(why) : NULL;
	atomic_store(&gw->down, why != NULL);
	pthread_mutex_unlock(&gw->down_mu);
}

/* Whether the health probe says no endpoint is healthy; if so, err says so. */
static bool gw_down(struct etcd_gw *gw, struct kerr *err)
{
	if (!atomic_load(&gw->down))
		return false;
	pthread_mutex_lock(&gw->down_mu);
	bool down = gw->down_why != NULL;
	if (down)
		kerr_set(err, EHOSTUNREACH, "etcd: no healthy endpoint (%s)", gw->down_why);
	pthread_mutex_unlock(&gw->down_mu);
	return down;
}

void etcd_conn_init(struct etcd_conn *c)
{
	memset(c, 0, sizeof *c);
	c->h = curl_easy_init();
	if (!c->h)
		abort(); /* like OOM */
	c->hdr = curl_slist_append(NULL, "Content-Type: application/json");
}

void etcd_conn_free(struct etcd_conn *c)
{
	if (c->h)
		curl_easy_cleanup(c->h);
	curl_slist_free_all(c->hdr);
	sbuf_free(&c->body);
	memset(c, 0, sizeof *c);
}

void etcd_gw_next(struct etcd_gw *gw, size_t failed)
{
	size_t want = failed;
	atomic_compare_exchange_strong(&gw->cur, &want, (failed + 1) % gw->n);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct sbuf *b = ud;
	if (b->len + sz * n > MAX_RESPONSE)
		return 0;
	sbuf_append(b, p, sz * n);
	return sz * n;
}

static void setup(struct etcd_conn *c, const char *url, const char *body, size_t len)
{
	curl_easy_reset(c->h);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdr);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->body);
	sbuf_reset(&c->body);
}

/* ---- errors -----------------------------------------------------------------------------------
 */

enum outcome { OK, RETRY, UNKNOWN, FAIL };

/* The one etcd error table: message text -> errno; retry says the next
 * endpoint may do better (leader trouble, an unavailable member). */
static int etcd_errno(const char *msg, bool *retry)
{
	static const struct {
		const char *text;
		int code;
		bool retry;
	} table[] = {
	    {"database space exceeded", ENOSPC, false},
	    {"request is too large", E2BIG, false},
	    {"larger than max", E2BIG, false},
	    {"required revision has been compacted", ERANGE, false},
	    {"required revision is a future revision", ERANGE, false},
	    {"no leader", EIO, true},
	    {"leader changed", EIO, true},
	    {"not leader", EIO, true},
	    {"timed out", EIO, true},
	    {"too many requests", EIO, true},
	    {"not capable", EIO, true},
	    {"unavailable", EIO, true},
	    {"stopped", EIO, true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (msg && strstr(msg, table[i].text)) {
			*retry = table[i].retry;
			return table[i].code;
		}
	*retry = false;
	return EIO;
}

/* A read in progress ends as soon as the health probe says no endpoint is
 * healthy (a member without quorum holds it for CALL_TIMEOUT_MS); a write
 * runs its course, as its outcome would be unknown. */
static int abort_if_down(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return atomic_load(&((struct etcd_gw *)ud)->down);
}

/* Classifies one attempt on url; fills err with what went wrong. */
static enum outcome attempt(struct etcd_gw *gw, struct etcd_conn *c, const char *url,
                            const char *path, const char *body, size_t len, bool idempotent,
                            json_t **resp, struct kerr *err)
{
	_cleanup_free_ char *full = xasprintf("%s%s", url, path);
	setup(c, full, body, len);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, CALL_TIMEOUT_MS);
	if (idempotent) {
		curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, abort_if_down);
		curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, gw);
	}
	CURLcode cc = curl_easy_perform(c->h);
	if (cc == CURLE_ABORTED_BY_CALLBACK && gw_down(gw, err))
		return FAIL;
	if (cc != CURLE_OK) {
		kerr_set(err, EIO, "etcd %s: %s", full, curl_easy_strerror(cc));
		return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ? RETRY
		                                                                       : UNKNOWN;
	}
	long status = 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	json_error_t jerr;
	json_t *j = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &jerr);
	if (status == 200 && json_is_object(j)) {
		*resp = j;
		return OK;
	}
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (!msg)
		msg = json_string_value(json_object_get(j, "error"));
	bool retry = false;
	int code = etcd_errno(msg, &retry);
	kerr_set(err, code, "etcd %s: HTTP %ld: %s", full, status, msg ? msg : "(no message)");
	json_decref(j);
	if (retry || (status >= 500 && code == EIO))
		return UNKNOWN;
	return FAIL;
}

int etcd_call(struct etcd_gw *gw, struct etcd_conn *c, const char *path, json_t *req,
              bool idempotent, json_t **resp, struct kerr *err)
{
	_cleanup_free_ char *body = json_dumps(req, JSON_COMPACT);
	size_t len = strlen(body);
	struct kerr last = KERR_INIT;
	for (int round = 0; round < ROUNDS; round++) {
		if (gw_down(gw, err)) { /* see etcd_gw_set_down */
			kerr_clear(&last);
			return -EHOSTUNREACH;
		}
		if (round) {
			struct timespec ts = {0, (50L << (round - 1)) * 1000000L};
			while (ts.tv_nsec >= 1000000000L)
				ts.tv_sec++, ts.tv_nsec -= 1000000000L;
			nanosleep(&ts, NULL);
		}
		size_t start = atomic_load(&gw->cur);
		for (size_t i = 0; i < gw->n; i++) {
			size_t idx = (start + i) % gw->n;
			kerr_clear(&last);
			enum outcome o =
			    attempt(gw, c, gw->urls[idx], path, body, len, idempotent, resp, &last);
			if (o == OK) {
				atomic_store(&gw->cur, idx);
				return 0;
			}
			if (o == FAIL) {
				kerr_move(err, &last);
				return -(err ? err->code : EIO);
			}
			if (o == UNKNOWN && !idempotent) {
				etcd_gw_next(gw, idx);
				int r = kerr_set(err, EINPROGRESS, "%s (outcome unknown)",
				                 kerr_msg(&last));
				kerr_clear(&last);
				return r;
			}
			etcd_gw_next(gw, idx);
		}
		if (gw->stop && atomic_load(gw->stop))
			break;
	}
	int r = kerr_set(err, EIO, "etcd cluster unreachable at %s: %s", gw->list, kerr_msg(&last));
	kerr_clear(&last);
	return r;
}

/* ---- the watch stream ----------------------------------------------------------------------- */

struct stream {
	struct etcd_gw *gw;
	struct sbuf line;
	etcd_watch_fn fn;
	etcd_tick_fn tick;
	void *ctx;
	bool stalled;    /* tick said so */
	int rc;          /* fn's non-zero return */
	struct kerr err; /* an error the stream itself reported */
};

/* One newline-terminated JSON message of the stream. */
static int stream_line(struct stream *st, const char *p, size_t n)
{
	json_error_t jerr;
	_cleanup_json_ json_t *j = json_loadb(p, n, 0, &jerr);
	if (!j)
		return kerr_set(&st->err, EIO, "etcd watch: bad message: %s", jerr.text);
	json_t *res = json_object_get(j, "result");
	if (!res) {
		json_t *e = json_object_get(j, "error");
		const char *msg = json_string_value(json_object_get(e, "message"));
		if (!msg)
			msg = json_string_value(e);
		bool retry;
		int code = etcd_errno(msg, &retry);
		return kerr_set(&st->err, code, "etcd watch: %s", msg ? msg : "error");
	}
	return st->fn(st->ctx, res);
}

static size_t on_stream(char *p, size_t sz, size_t n, void *ud)
{
	struct stream *st = ud;
	sbuf_append(&st->line, p, sz * n);
	char *nl;
	size_t off = 0;
	while ((nl = memchr(st->line.data + off, '\n', st->line.len - off))) {
		size_t len = (size_t)(nl - (st->line.data + off));
		int r = len ? stream_line(st, st->line.data + off, len) : 0;
		off += len + 1;
		if (r) {
			st->rc = r;
			return 0; /* ends the transfer */
		}
	}
	if (off) {
		memmove(st->line.data, st->line.data + off, st->line.len - off);
		st->line.len -= off;
		st->line.data[st->line.len] = '\0';
	}
	if (st->line.len > MAX_RESPONSE)
		return 0;
	return sz * n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	struct stream *st = ud;
	if (st->gw->stop && atomic_load(st->gw->stop))
		return 1;
	if (st->tick && st->tick(st->ctx)) {
		st->stalled = true;
		return 1;
	}
	return 0;
}

int etcd_watch(struct etcd_gw *gw, struct etcd_conn *c, json_t *create, etcd_watch_fn fn,
               etcd_tick_fn tick, void *ctx, struct kerr *err)
{
	_cleanup_json_ json_t *req = json_pack("{s:O}", "create_request", create);
	_cleanup_free_ char *body = json_dumps(req, JSON_COMPACT);
	size_t idx = atomic_load(&gw->cur);
	_cleanup_free_ char *url = xasprintf("%s/v3/watch", gw->urls[idx]);
	struct stream st = {.gw = gw, .fn = fn, .tick = tick, .ctx = ctx};
	setup(c, url, body, strlen(body));
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &st);
	curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, &st);
	curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->h, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(c->h, CURLOPT_TCP_KEEPINTVL, 2L);
	CURLcode cc = curl_easy_perform(c->h);
	sbuf_free(&st.line);
	int r;
	if (st.rc > 0 || (st.rc < 0 && !st.err.code)) {
		r = st.rc; /* fn stopped it */
		if (r < 0 && err && !err->code)
			kerr_set(err, -r, "etcd watch stopped");
	} else if (st.err.code) {
		r = -st.err.code;
		kerr_move(err, &st.err);
	} else if (gw->stop && atomic_load(gw->stop)) {
		r = kerr_set(err, ESHUTDOWN, "store is closing");
	} else if (st.stalled) {
		r = kerr_set(err, ETIMEDOUT, "etcd watch at %s stalled: no progress",
		             gw->urls[idx]);
		etcd_gw_next(gw, idx);
	} else {
		long status = 0;
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
		r = kerr_set(err, EIO, "etcd watch at %s ended: %s (HTTP %ld)", gw->urls[idx],
		             cc == CURLE_OK ? "stream closed" : curl_easy_strerror(cc), status);
		etcd_gw_next(gw, idx);
	}
	kerr_clear(&st.err);
	return r;
}
