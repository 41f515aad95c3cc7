/*
 * client: the handle and the one request function every verb goes through.
 *
 * A handle owns one curl easy handle; curl keeps the connection alive
 * between requests made on the same easy handle, so a controller that
 * issues many small requests pays for one TCP connection. Options are
 * reset and set again per request (curl_easy_reset keeps the connection
 * cache), which keeps one request's settings from leaking into the next.
 *
 * With several servers (client.h, "Several servers") the request loop
 * tries them in turn; whether a failure may go to the next server is
 * decided in one place, client_should_fail_over, which the watch and log
 * streams share. "Was the request sent?" is read from what curl failed at
 * (connect, resolve, TLS handshake: never sent) rather than guessed from
 * timings, because only an unsent write is safe to send elsewhere.
 *
 * Errors are translated here, once: curl codes to errno (connection refused
 * gets the "is `keel server` running?" hint), and an HTTP error answer's
 * Status to errno + message + causes (api_errno_from_status).
 */
#include "client/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <strings.h>
#include <stdio.h>

#include "api/status.h"
#include "client/client_internal.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

/* An answer larger than this is refused: no keel object list gets near it,
 * and a bogus endpoint must not make a client allocate without bound. */
#define CLIENT_MAX_BODY (256u * 1024 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int client_new(const struct client_opts *opts, struct client **out, struct kerr *err)
{
	struct client_opts none = {0};
	if (!opts)
		opts = &none;
	const char *server = opts->server && *opts->server ? opts->server : CLIENT_DEFAULT_SERVER;
	char **servers = NULL;
	size_t n = 0;
	if (client_servers_parse(server, &servers, &n, err) < 0)
		return -EINVAL;
	pthread_once(&curl_once, curl_init_once);
	CURL *h = curl_easy_init();
	if (!h) {
		client_servers_free(servers);
		return kerr_set(err, ENOMEM, "cannot initialise libcurl");
	}
	struct client *c = xcalloc(1, sizeof(*c));
	c->curl = h;
	c->servers = servers;
	c->n_servers = n;
	c->server = servers[0];
	struct sbuf list = SBUF_INIT;
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&list, "%s%s", i ? "," : "", servers[i]);
	c->server_list = sbuf_take(&list);
	c->token = opts->token && *opts->token ? xstrdup(opts->token) : NULL;
	c->ca_file = opts->ca_file ? xstrdup(opts->ca_file) : NULL;
	c->user_agent = xstrdup(opts->user_agent ? opts->user_agent : "keel/" KEEL_VERSION);
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
	c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
	c->watch_idle_s = opts->watch_idle_s > 0 ? opts->watch_idle_s : 90;
	c->trace = opts->trace;
	c->trace_ud = opts->trace_ud;
	*out = c;
	return 0;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	json_decref(c->last_status);
	client_servers_free(c->servers);
	free(c->server_list);
	free(c->token);
	free(c->ca_file);
	free(c->user_agent);
	free(c);
}

const char *client_server(const struct client *c)
{
	return c->server;
}
const char *client_servers(const struct client *c)
{
	return c->server_list;
}
size_t client_server_count(const struct client *c)
{
	return c->n_servers;
}
int client_last_http_code(const struct client *c)
{
	return c->last_http;
}
json_t *client_last_status(const struct client *c)
{
	return c->last_status;
}

void client_response_clear(struct client_response *r)
{
	if (!r)
		return;
	json_decref(r->body);
	free(r->text);
	free(r->apply_result);
	memset(r, 0, sizeof(*r));
}

static size_t body_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sbuf *b = ud;
	size_t n = size * nmemb;
	if (b->len + n > CLIENT_MAX_BODY)
		return 0; /* curl reports CURLE_WRITE_ERROR */
	sbuf_append(b, ptr, n);
	return n;
}

/* Keel-Apply-Result: created|configured|unchanged */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	char **apply_result = ud;
	size_t n = size * nitems;
	static const char name[] = "keel-apply-result:";
	if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
		const char *v = buf + sizeof(name) - 1;
		const char *end = buf + n;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
			end--;
		free(*apply_result);
		*apply_result = xstrndup(v, (size_t)(end - v));
	}
	return n;
}

void client_trace(struct client *c, const char *method, const char *url, int64_t start_ms)
{
	if (c->trace)
		c->trace(method, url, c->last_http, (long)(time_mono_ms() - start_ms), c->trace_ud);
}

int client_curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return ETIMEDOUT;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return EINVAL;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
		return EPROTO;
	case CURLE_WRITE_ERROR:
		return E2BIG;
	default:
		return EIO;
	}
}

/* TLS failures, with what to do about each. */
static int tls_error(struct client *c, CURLcode rc, const char *what, struct kerr *err)
{
	if (rc == CURLE_SSL_CACERT_BADFILE)
		return kerr_set(err, EPROTO, "cannot use CA file %s to reach %s: %s",
		                c->ca_file ? c->ca_file : "(libcurl's default)", c->server, what);
	if (rc == CURLE_PEER_FAILED_VERIFICATION && c->ca_file)
		return kerr_set(err, EPROTO,
		                "the TLS certificate of keel server at %s does not verify with CA "
		                "file %s: %s (is that the CA of this server? keel up --tls and "
		                "keel server --tls use DATA/tls/ca.crt)",
		                c->server, c->ca_file, what);
	if (rc == CURLE_PEER_FAILED_VERIFICATION)
		return kerr_set(
		    err, EPROTO,
		    "the TLS certificate of keel server at %s does not verify: %s (pass "
		    "the CA that signed it: --ca FILE, KEEL_CA, or \"ca\" in the config "
		    "file; keel up --tls and keel server --tls use DATA/tls/ca.crt)",
		    c->server, what);
	return kerr_set(err, EPROTO,
	                "TLS handshake with keel server at %s failed: %s (does it serve https?)",
	                c->server, what);
}

int client_curl_error(struct client *c, CURLcode rc, const char *detail, struct kerr *err)
{
	int e = client_curl_errno(rc);
	const char *what = detail && *detail ? detail : curl_easy_strerror(rc);
	if (e == EPROTO)
		return tls_error(c, rc, what, err);
	if ((rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR) &&
	    strstartswith(c->server, "http://"))
		return kerr_set(err, EIO,
		                "request to %s failed: %s (if the server serves https, use an "
		                "https:// URL)",
		                c->server, what);
	if (e == ECONNREFUSED || e == EHOSTUNREACH)
		return kerr_set(err, e,
		                "cannot reach keel server at %s: %s (is `keel server` running?)",
		                c->server, what);
	if (e == ETIMEDOUT)
		return kerr_set(err, e, "keel server at %s did not answer in time: %s", c->server,
		                what);
	if (e == E2BIG)
		return kerr_set(err, e, "answer from %s is larger than %u bytes", c->server,
		                CLIENT_MAX_BODY);
	return kerr_set(err, e, "request to %s failed: %s", c->server, what);
}

bool client_should_fail_over(struct client *c, CURLcode rc, long http, bool get)
{
	if (c->n_servers < 2)
		return false;
	switch (rc) {
	case CURLE_OK:
		return get && http == 503; /* shutting down, or over its connection limit */
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		return true; /* never sent: safe for any method */
	case CURLE_OPERATION_TIMEDOUT: {
		curl_off_t connected = 0; /* 0: the connect itself timed out */
		curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME_T, &connected);
		return get || connected == 0;
	}
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return get; /* it may have reached the server */
	default:
		return false; /* local problems (CA file, body too large, cancel) */
	}
}

void client_note_failure(struct client *c, CURLcode rc, const char *ebuf, long http,
                         struct sbuf *tried)
{
	long os = 0;
	if (rc == CURLE_COULDNT_CONNECT)
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os);
	const char *what = rc == CURLE_OK  ? NULL
	                   : os > 0        ? strerror((int)os)
	                   : ebuf && *ebuf ? ebuf
	                                   : curl_easy_strerror(rc);
	if (what)
		sbuf_printf(tried, "%s%s: %s", tried->len ? "; " : "", c->server, what);
	else
		sbuf_printf(tried, "%s%s: HTTP %ld", tried->len ? "; " : "", c->server, http);
}

void client_next_server(struct client *c)
{
	c->cur = (c->cur + 1) % c->n_servers;
	c->server = c->servers[c->cur];
}

int client_all_failed(int r, const struct sbuf *tried, struct kerr *err)
{
	int e = r < 0 ? -r : EIO;
	/* Servers of one cluster share a CA: a TLS failure on the last is
	 * most likely a missing or wrong --ca for all. */
	return kerr_set(err, e, "cannot reach any keel server (%s)%s",
	                tried->data ? tried->data : "",
	                e == EPROTO ? " (one CA verifies them all: pass it with --ca FILE, "
	                              "KEEL_CA, or \"ca\" in the config file)"
	                            : "");
}

int client_not_retried(struct client *c, int r, CURLcode rc, struct kerr *err)
{
	if (c->n_servers < 2 || !err || !err->msg)
		return r;
	if (rc != CURLE_SEND_ERROR && rc != CURLE_RECV_ERROR && rc != CURLE_GOT_NOTHING &&
	    rc != CURLE_PARTIAL_FILE && rc != CURLE_OPERATION_TIMEDOUT)
		return r;
	_cleanup_free_ char *msg = xstrdup(err->msg);
	return kerr_set(err, err->code,
	                "%s (not sent to another server: the write may have been applied; "
	                "read it back before retrying)",
	                msg);
}

int client_http_error(struct client *c, int http, const char *text, struct kerr *err)
{
	json_error_t jerr;
	json_t *st = text && *text ? json_loads(text, 0, &jerr) : NULL;
	if (st && !streq(json_string_value(json_object_get(st, "kind")), "Status")) {
		json_decref(st);
		st = NULL;
	}
	json_decref(c->last_status);
	c->last_status = st;
	if (!st) {
		int e = api_errno_from_http(http);
		return kerr_set(err, e ? e : EIO, "server at %s answered HTTP %d%s%.200s",
		                c->server, http, text && *text ? ": " : "", text ? text : "");
	}
	int e = api_errno_from_status(st);
	if (e == 0)
		e = EIO;
	const char *msg = json_string_value(json_object_get(st, "message"));
	const char *reason = json_string_value(json_object_get(st, "reason"));
	int r = kerr_set(err, e, "%s", msg && *msg ? msg : reason ? reason : "unknown error");
	json_t *causes = json_object_get(json_object_get(st, "details"), "causes");
	if (err && json_is_array(causes) && json_array_size(causes) > 0) {
		json_decref(err->causes);
		err->causes = json_deep_copy(causes);
	}
	return r;
}

/* Options every request shares; curl_easy_reset dropped the previous ones. */
void client_curl_setup(struct client *c, const char *url, struct curl_slist **hdrs)
{
	CURL *h = c->curl;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->token) {
		_cleanup_free_ char *auth = xasprintf("Authorization: Bearer %s", c->token);
		*hdrs = curl_slist_append(*hdrs, auth);
	}
	*hdrs = curl_slist_append(*hdrs, "Accept: application/json");
	/* No "Expect: 100-continue" round trip for larger bodies. */
	*hdrs = curl_slist_append(*hdrs, "Expect:");
}

static void set_method_body(CURL *h, const char *method, const char *payload)
{
	if (streq(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (streq(method, "POST") && payload) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	if (payload) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
	}
}

static int finish_response(struct client *c, int http, struct sbuf *body, char **apply_result,
                           struct client_response *resp, struct kerr *err)
{
	c->last_http = http;
	if (http < 200 || http >= 300)
		return client_http_error(c, http, body->data, err);
	if (!resp)
		return 0; /* nobody reads the answer: do not parse it */
	struct client_response r = {.http_code = http};
	r.text = sbuf_take(body);
	if (*r.text) {
		json_error_t jerr;
		r.body = json_loads(r.text, JSON_ALLOW_NUL, &jerr);
	}
	r.apply_result = TAKE_PTR(*apply_result);
	*resp = r;
	return 0;
}

/* One attempt on the current server. *again: it failed in a way that may
 * go to the next server (client_should_fail_over), noted in *tried. */
static int request_once(struct client *c, const char *method, const char *path_query,
                        const char *content_type, const char *payload, struct client_response *resp,
                        struct sbuf *tried, bool *again, struct kerr *err)
{
	_cleanup_free_ char *url = xasprintf("%s%s", c->server, path_query);
	struct curl_slist *hdrs = NULL;
	client_curl_setup(c, url, &hdrs);
	if (payload) {
		_cleanup_free_ char *ct =
		    xasprintf("Content-Type: %s", content_type ? content_type : "application/json");
		hdrs = curl_slist_append(hdrs, ct);
	}
	_cleanup_sbuf_ struct sbuf rbody = SBUF_INIT;
	_cleanup_free_ char *apply_result = NULL;
	CURL *h = c->curl;
	set_method_body(h, method, payload);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rbody);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &apply_result);
	char ebuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	json_decref(c->last_status);
	c->last_status = NULL;
	c->last_http = 0;
	int64_t start = time_mono_ms();
	CURLcode rc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	long http = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
	c->last_http = (int)http;
	client_trace(c, method, url, start);
	*again = client_should_fail_over(c, rc, http, streq(method, "GET"));
	if (*again)
		client_note_failure(c, rc, ebuf, http, tried);
	if (rc != CURLE_OK) {
		int r = client_curl_error(c, rc, ebuf, err);
		return *again ? r : client_not_retried(c, r, rc, err);
	}
	sbuf_puts(&rbody, ""); /* a NUL-terminated, non-NULL data even when empty */
	return finish_response(c, (int)http, &rbody, &apply_result, resp, err);
}

int client_request(struct client *c, const char *method, const char *path_query,
                   const char *content_type, json_t *body, struct client_response *resp,
                   struct kerr *err)
{
	_cleanup_free_ char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body && !payload)
		return kerr_set(err, EINVAL, "request body cannot be serialised as JSON");
	_cleanup_sbuf_ struct sbuf tried = SBUF_INIT;
	for (size_t i = 1;; i++) {
		bool again = false;
		int r = request_once(c, method, path_query, content_type, payload, resp, &tried,
		                     &again, err);
		if (!again)
			return r;
		if (i == c->n_servers) {
			if (r < 0 && client_last_http_code(c) == 0)
				return client_all_failed(r, &tried, err);
			return r; /* the last server's 503 is its answer */
		}
		client_next_server(c);
	}
}
