/* Unit tests for the client's HTTP side against a scripted fake server on
 * 127.0.0.1: Status errors -> errno/message/causes, the apply-result
 * header, pagination, watch streams split at awkward places, 410 Gone,
 * connection refused, and failover between several servers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>

#include "client/client.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

/* One scripted answer: head (status line + headers, without the blank
 * line) and body pieces written with a pause between them. */
struct answer {
	const char *head;
	const char *pieces[8];
};

struct fake {
	int lfd;
	int port;
	const struct answer *answers;
	size_t n;
	char requests[8][512]; /* "METHOD PATH" + " " + Content-Type */
	char bodies[8][512];
	pthread_t thread;
};

static void read_request(int fd, char *line, size_t linelen, char *body, size_t bodylen)
{
	struct sbuf b = SBUF_INIT;
	char buf[4096];
	size_t want = 0;
	char *hend = NULL;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r <= 0)
			break;
		sbuf_append(&b, buf, (size_t)r);
		if (!hend && (hend = strstr(b.data, "\r\n\r\n"))) {
			char *cl = strcasestr(b.data, "Content-Length:");
			want = (size_t)(hend - b.data) + 4 +
			       (cl && cl < hend ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (hend && b.len >= want)
			break;
	}
	char *eol = b.data ? strstr(b.data, " HTTP/1.1") : NULL;
	char *ct = b.data ? strcasestr(b.data, "Content-Type: ") : NULL;
	char *ctend = ct ? strstr(ct, "\r\n") : NULL;
	snprintf(line, linelen, "%.*s %.*s", eol ? (int)(eol - b.data) : 0, b.data ? b.data : "",
	         ct && ctend ? (int)(ctend - ct - 14) : 0, ct ? ct + 14 : "");
	hend = b.data ? strstr(b.data, "\r\n\r\n") : NULL;
	snprintf(body, bodylen, "%s", hend ? hend + 4 : "");
	sbuf_free(&b);
}

static void *serve(void *ud)
{
	struct fake *f = ud;
	for (size_t i = 0; i < f->n; i++) {
		int fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			break;
		read_request(fd, f->requests[i], sizeof(f->requests[i]), f->bodies[i],
		             sizeof(f->bodies[i]));
		if (streq(f->answers[i].head, "CLOSE")) { /* took the request, answers nothing */
			close(fd);
			continue;
		}
		if (streq(f->answers[i].head, "HANG")) { /* took it, then froze (SIGSTOP) */
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			poll(&pfd, 1, 20000); /* until the client hangs up */
			close(fd);
			continue;
		}
		char head[1024];
		snprintf(head, sizeof(head), "%s\r\nConnection: close\r\n\r\n", f->answers[i].head);
		ssize_t w = write(fd, head, strlen(head));
		for (size_t p = 0; w >= 0 && p < 8 && f->answers[i].pieces[p]; p++) {
			if (streq(f->answers[i].pieces[p], "SLEEP")) { /* a stalled server */
				sleep(3);
				continue;
			}
			if (streq(f->answers[i].pieces[p], "HANG")) { /* a frozen server */
				struct pollfd pfd = {.fd = fd, .events = POLLIN};
				poll(&pfd, 1, 20000); /* until the client hangs up */
				continue;
			}
			w = write(fd, f->answers[i].pieces[p], strlen(f->answers[i].pieces[p]));
			usleep(20000);
		}
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f, const struct answer *a, size_t n)
{
	memset(f, 0, sizeof(*f));
	f->answers = a;
	f->n = n;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	socklen_t sl = sizeof(sa);
	getsockname(f->lfd, (struct sockaddr *)&sa, &sl);
	f->port = ntohs(sa.sin_port);
	pthread_create(&f->thread, NULL, serve, f);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

static struct client *client_for(const struct fake *f)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->port);
	struct client_opts o = {.server = url, .token = "sekret", .timeout_ms = 5000};
	struct client *c = NULL;
	assert_int_equal(client_new(&o, &c, NULL), 0);
	return c;
}

#define JSON_HEAD(code) "HTTP/1.1 " code "\r\nContent-Type: application/json"

static void test_status_errors(void **state)
{
	(void)state;
	static const struct answer a[] = {
	    {JSON_HEAD("404 Not Found"),
	     {"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"code\":404,"
	      "\"reason\":\"NotFound\",\"message\":\"tasks \\\"web\\\" not found\"}"}},
	    {JSON_HEAD("409 Conflict"),
	     {"{\"kind\":\"Status\",\"code\":409,\"reason\":\"AlreadyExists\",\"message\":"
	      "\"exists\"}"}},
	    {JSON_HEAD("422 Unprocessable Entity"),
	     {"{\"kind\":\"Status\",\"code\":422,\"reason\":\"Invalid\",\"message\":\"Task "
	      "\\\"w\\\" is invalid\","
	      "\"details\":{\"causes\":[{\"field\":\"spec.image\",\"reason\":"
	      "\"FieldValueRequired\","
	      "\"message\":\"Required value\"}]}}"}},
	    {"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain", {"proxy trouble"}},
	};
	struct fake f;
	fake_start(&f, a, ARRAY_SIZE(a));
	struct client *c = client_for(&f);
	const struct api_kind *task = api_kind_by_kind("Task");
	struct kerr err = KERR_INIT;
	json_t *out = NULL;
	assert_int_equal(client_get(c, task, "default", "web", &out, &err), -ENOENT);
	assert_null(out);
	assert_string_equal(err.msg, "tasks \"web\" not found");
	assert_int_equal(client_last_http_code(c), 404);
	assert_string_equal(json_string_value(json_object_get(client_last_status(c), "reason")),
	                    "NotFound");
	kerr_clear(&err);
	json_t *obj = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "keel/v1", "kind", "Task",
	                        "metadata", "name", "w");
	assert_int_equal(client_create(c, task, "default", obj, NULL, NULL, &err), -EEXIST);
	kerr_clear(&err);
	assert_int_equal(client_replace(c, task, "default", obj, NULL, NULL, &err), -EINVAL);
	assert_int_equal(json_array_size(err.causes), 1);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(err.causes, 0), "field")),
	    "spec.image");
	kerr_clear(&err);
	assert_int_equal(client_get(c, task, "default", "w", NULL, &err), -EIO);
	assert_non_null(strstr(err.msg, "502"));
	assert_null(client_last_status(c));
	kerr_clear(&err);
	fake_stop(&f);
	assert_string_equal(f.requests[0], "GET /apis/keel/v1/namespaces/default/tasks/web ");
	assert_string_equal(f.requests[1],
	                    "POST /apis/keel/v1/namespaces/default/tasks application/json");
	assert_string_equal(f.requests[2],
	                    "PUT /apis/keel/v1/namespaces/default/tasks/w application/json");
	assert_non_null(strstr(f.bodies[1], "\"name\":\"w\""));
	json_decref(obj);
	client_free(c);
}

static void test_apply_and_pages(void **state)
{
	(void)state;
	static const struct answer a[] = {
	    {JSON_HEAD("200 OK") "\r\nKeel-Apply-Result: unchanged",
	     {"{\"kind\":\"Task\",\"metadata\":{\"name\":\"w\",\"resourceVersion\":\"7\"}}"}},
	    {JSON_HEAD("200 OK"),
	     {"{\"kind\":\"TaskList\",\"metadata\":{\"resourceVersion\":\"9\",\"continue\":\"c1\"},"
	      "\"items\":[{\"metadata\":{\"name\":\"a\"}}]}"}},
	    {JSON_HEAD("200 OK"),
	     {"{\"kind\":\"TaskList\",\"metadata\":{\"resourceVersion\":\"10\",\"continue\":\"c2\"}"
	      ","
	      "\"items\":[{\"metadata\":{\"name\":\"b\"}}]}"}},
	    {JSON_HEAD("200 OK"),
	     {"{\"kind\":\"TaskList\",\"metadata\":{\"resourceVersion\":\"11\"},"
	      "\"items\":[{\"metadata\":{\"name\":\"c\"}}]}"}},
	};
	struct fake f;
	fake_start(&f, a, ARRAY_SIZE(a));
	struct client *c = client_for(&f);
	const struct api_kind *task = api_kind_by_kind("Task");
	json_t *obj = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "keel/v1", "kind", "Task",
	                        "metadata", "name", "w");
	enum client_apply_result res = CLIENT_APPLY_UNKNOWN;
	json_t *out = NULL;
	struct client_query q = {.dry_run = true};
	assert_int_equal(client_apply(c, task, "default", obj, &q, &out, &res, NULL), 0);
	assert_int_equal(res, CLIENT_APPLY_UNCHANGED);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(out, "metadata"), "resourceVersion")),
	    "7");
	json_decref(out);
	struct client_query lq = {.limit = 1, .label_selector = "app=web"};
	json_t *list = NULL;
	assert_int_equal(client_list_all(c, task, NULL, &lq, &list, NULL), 0);
	json_t *items = json_object_get(list, "items");
	assert_int_equal(json_array_size(items), 3);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_array_get(items, 2), "metadata"), "name")),
	                    "c");
	json_t *meta = json_object_get(list, "metadata");
	assert_string_equal(json_string_value(json_object_get(meta, "resourceVersion")), "9");
	assert_null(json_object_get(meta, "continue"));
	json_decref(list);
	fake_stop(&f);
	assert_string_equal(f.requests[0],
	                    "PATCH /apis/keel/v1/namespaces/default/tasks/w"
	                    "?dryRun=All&fieldManager=keel-apply application/apply-patch+json");
	assert_string_equal(f.requests[1],
	                    "GET /apis/keel/v1/tasks?labelSelector=app%3Dweb&limit=1 ");
	assert_string_equal(f.requests[3], "GET /apis/keel/v1/tasks?labelSelector=app%3Dweb&limit=1"
	                                   "&continue=c2 ");
	json_decref(obj);
	client_free(c);
}

struct seen {
	struct sbuf log;
	int stop_after;
	int count;
};

static int record(const char *type, json_t *obj, void *ud)
{
	struct seen *s = ud;
	const char *name =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	const char *rv =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	sbuf_printf(&s->log, "%s:%s:%s;", type, name ? name : "-", rv ? rv : "-");
	return ++s->count == s->stop_after ? 1 : 0;
}

#define WATCH_HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/json;stream=watch"

static void test_watch(void **state)
{
	(void)state;
	static const struct answer a[] = {
	    /* lines split mid-object and several per piece; a final line without '\n' */
	    {WATCH_HEAD,
	     {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
	      "\"5\"}}}\n{\"ty",
	      "pe\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
	      "\"6\"}}}\n\n",
	      "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Task\",\"metadata\":{"
	      "\"resourceVersion\":\"8\"}}}\n"
	      "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
	      "\"9\"}}}"}},
	    /* the callback stops after the first event */
	    {WATCH_HEAD,
	     {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}\n"
	      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"y\"}}}\n"}},
	    {JSON_HEAD("410 Gone"),
	     {"{\"kind\":\"Status\",\"code\":410,\"reason\":\"Gone\",\"message\":\"too old "
	      "resource version: 1 (5)\"}"}},
	    {WATCH_HEAD,
	     {"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":"
	      "\"Gone\","
	      "\"message\":\"compacted\"}}\n"}},
	    {WATCH_HEAD, {"this is not json\n"}},
	};
	struct fake f;
	fake_start(&f, a, ARRAY_SIZE(a));
	struct client *c = client_for(&f);
	const struct api_kind *task = api_kind_by_kind("Task");
	struct seen s = {SBUF_INIT, 0, 0};
	struct client_query q = {.resource_version = "4", .field_selector = "spec.nodeName=n1"};
	assert_int_equal(client_watch(c, task, "default", &q, record, &s, NULL), 0);
	assert_string_equal(s.log.data, "ADDED:a:5;MODIFIED:a:6;BOOKMARK:-:8;DELETED:a:9;");
	sbuf_reset(&s.log);
	s.count = 0;
	s.stop_after = 1;
	assert_int_equal(client_watch(c, task, NULL, NULL, record, &s, NULL), 0);
	assert_string_equal(s.log.data, "ADDED:x:-;");
	struct kerr err = KERR_INIT;
	assert_int_equal(client_watch(c, task, NULL, &q, record, &s, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "too old"));
	kerr_clear(&err);
	assert_int_equal(client_watch(c, task, NULL, &q, record, &s, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "compacted"));
	kerr_clear(&err);
	assert_int_equal(client_watch(c, task, NULL, &q, record, &s, &err), -EBADMSG);
	kerr_clear(&err);
	fake_stop(&f);
	assert_string_equal(f.requests[0], "GET /apis/keel/v1/namespaces/default/tasks?watch=1"
	                                   "&fieldSelector=spec.nodeName%3Dn1&resourceVersion=4 ");
	sbuf_free(&s.log);
	client_free(c);
}

static void test_watch_idle_timeout(void **state)
{
	(void)state;
	static const struct answer a[] = {
	    {WATCH_HEAD,
	     {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n", "SLEEP"}},
	};
	struct fake f;
	fake_start(&f, a, ARRAY_SIZE(a));
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
	struct client_opts o = {.server = url, .watch_idle_s = 1};
	struct client *c = NULL;
	assert_int_equal(client_new(&o, &c, NULL), 0);
	struct seen s = {SBUF_INIT, 0, 0};
	struct kerr err = KERR_INIT;
	int64_t t0 = time_mono_ms();
	assert_int_equal(client_watch(c, api_kind_by_kind("Task"), NULL, NULL, record, &s, &err),
	                 -ETIMEDOUT);
	assert_true(time_mono_ms() - t0 < 2900);
	assert_string_equal(s.log.data, "ADDED:a:-;");
	kerr_clear(&err);
	fake_stop(&f);
	sbuf_free(&s.log);
	client_free(c);
}

static void *cancel_later(void *ud)
{
	usleep(300000);
	client_watch_cancel(ud);
	return NULL;
}

/* client_watch_cancel from another thread ends a silent stream within
 * about a second, as a clean end (0), and later watches end at once. */
static void test_watch_cancel(void **state)
{
	(void)state;
	static const struct answer a[] = {
	    {WATCH_HEAD,
	     {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n", "SLEEP"}},
	};
	struct fake f;
	fake_start(&f, a, ARRAY_SIZE(a));
	struct client *c = client_for(&f);
	struct seen s = {SBUF_INIT, 0, 0};
	pthread_t t;
	pthread_create(&t, NULL, cancel_later, c);
	int64_t t0 = time_mono_ms();
	assert_int_equal(client_watch(c, api_kind_by_kind("Task"), NULL, NULL, record, &s, NULL),
	                 0);
	assert_true(time_mono_ms() - t0 < 2500); /* not the server's 3 s */
	pthread_join(t, NULL);
	assert_string_equal(s.log.data, "ADDED:a:-;");
	fake_stop(&f);
	sbuf_free(&s.log);
	client_free(c);
}

static void test_connection_refused(void **state)
{
	(void)state;
	/* A port nobody listens on: bind one, note it, close it. */
	struct fake f;
	fake_start(&f, NULL, 0);
	fake_stop(&f);
	struct client *c = client_for(&f);
	struct kerr err = KERR_INIT;
	json_t *v = NULL;
	assert_int_equal(client_version(c, &v, &err), -ECONNREFUSED);
	assert_non_null(strstr(err.msg, "cannot reach keel server at http://127.0.0.1:"));
	assert_non_null(strstr(err.msg, "(is `keel server` running?)"));
	assert_int_equal(client_last_http_code(c), 0);
	kerr_clear(&err);
	client_free(c);
}

/* ---- several servers ---- */

/* A port nobody listens on. */
static int dead_port(void)
{
	struct fake f;
	fake_start(&f, NULL, 0);
	fake_stop(&f);
	return f.port;
}

static void trace_log(const char *method, const char *url, int http, long ms, void *ud)
{
	(void)ms;
	/* "GET 4711/version 200;": the port and path of each attempt */
	const char *p = strstartswith(url, "http://127.0.0.1:") ? url + 17 : url;
	const char *q = strchr(p, '?');
	sbuf_printf(ud, "%s %.*s %d;", method, q ? (int)(q - p) : (int)strlen(p), p, http);
}

/* Servers "http://127.0.0.1:P1,..." with a trace of each attempt. */
static struct client *client_list_for(const int *ports, size_t n, struct sbuf *trace)
{
	struct sbuf url = SBUF_INIT;
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&url, "%shttp://127.0.0.1:%d", i ? "," : "", ports[i]);
	struct client_opts o = {
	    .server = url.data, .timeout_ms = 5000, .trace = trace_log, .trace_ud = trace};
	struct client *c = NULL;
	assert_int_equal(client_new(&o, &c, NULL), 0);
	sbuf_free(&url);
	return c;
}

static char *url_of(int port)
{
	return xasprintf("http://127.0.0.1:%d", port);
}

#define VERSION_OK                                                                                 \
	{                                                                                          \
		JSON_HEAD("200 OK"),                                                               \
		{                                                                                  \
			"{\"version\":\"v\",\"apiVersion\":\"keel/v1\"}"                           \
		}                                                                                  \
	}

/* The first server's port is closed: the second answers, and the client
 * stays with it (the dead one is not tried again). */
static void test_failover_refused_then_sticky(void **state)
{
	(void)state;
	static const struct answer a[] = {VERSION_OK, VERSION_OK};
	struct fake f;
	fake_start(&f, a, ARRAY_SIZE(a));
	int ports[] = {dead_port(), f.port};
	struct sbuf trace = SBUF_INIT;
	struct client *c = client_list_for(ports, 2, &trace);
	_cleanup_free_ char *live = url_of(f.port);
	json_t *v = NULL;
	assert_int_equal(client_version(c, &v, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(v, "version")), "v");
	json_decref(v);
	assert_string_equal(client_server(c), live);
	assert_int_equal(client_version(c, NULL, NULL), 0);
	_cleanup_free_ char *want = xasprintf("GET %d/version 0;GET %d/version 200;"
	                                      "GET %d/version 200;",
	                                      ports[0], f.port, f.port);
	assert_string_equal(trace.data, want);
	fake_stop(&f);
	client_free(c);
	sbuf_free(&trace);
}

/* The first server answers, then dies: the next request goes to the
 * second; then the second dies and the first is back: it wraps around. */
static void test_failover_after_death(void **state)
{
	(void)state;
	static const struct answer one[] = {VERSION_OK};
	static const struct answer two[] = {VERSION_OK, VERSION_OK};
	struct fake a, b;
	fake_start(&a, one, 1);
	fake_start(&b, two, 1);
	int ports[] = {a.port, b.port};
	struct sbuf trace = SBUF_INIT;
	struct client *c = client_list_for(ports, 2, &trace);
	assert_int_equal(client_version(c, NULL, NULL), 0);
	fake_stop(&a); /* served its one answer; its port is closed now */
	assert_int_equal(client_version(c, NULL, NULL), 0);
	_cleanup_free_ char *burl = url_of(b.port);
	assert_string_equal(client_server(c), burl);
	fake_stop(&b);
	/* both dead: the error names each, with the errno of a refusal */
	struct kerr err = KERR_INIT;
	assert_int_equal(client_version(c, NULL, &err), -ECONNREFUSED);
	_cleanup_free_ char *want =
	    xasprintf("cannot reach any keel server (http://127.0.0.1:%d: Connection refused; "
	              "http://127.0.0.1:%d: Connection refused)",
	              b.port, a.port);
	assert_string_equal(err.msg, want);
	kerr_clear(&err);
	_cleanup_free_ char *tr =
	    xasprintf("GET %d/version 200;GET %d/version 0;GET %d/version 200;"
	              "GET %d/version 0;GET %d/version 0;",
	              a.port, a.port, b.port, b.port, a.port);
	assert_string_equal(trace.data, tr);
	client_free(c);
	sbuf_free(&trace);
}

/* A server that took the request and closed without answering: a GET goes
 * to the next server, a write is not sent again (it may have been applied)
 * and says so. A 503 is failed over for a GET, an answer for a write. */
static void test_failover_only_idempotent(void **state)
{
	(void)state;
	static const struct answer first[] = {
	    {"CLOSE", {NULL}},
	    VERSION_OK,
	    {JSON_HEAD("503 Service Unavailable"),
	     {"{\"kind\":\"Status\",\"code\":503,\"reason\":\"ServiceUnavailable\","
	      "\"message\":\"too many connections\"}"}},
	};
	static const struct answer second[] = {
	    VERSION_OK,
	    {"CLOSE", {NULL}},
	    {JSON_HEAD("503 Service Unavailable"),
	     {"{\"kind\":\"Status\",\"code\":503,\"reason\":\"ServiceUnavailable\","
	      "\"message\":\"the server is shutting down\"}"}},
	};
	struct fake a, b;
	fake_start(&a, first, ARRAY_SIZE(first));
	fake_start(&b, second, ARRAY_SIZE(second));
	int ports[] = {a.port, b.port};
	struct sbuf trace = SBUF_INIT;
	struct client *c = client_list_for(ports, 2, &trace);
	_cleanup_free_ char *aurl = url_of(a.port), *burl = url_of(b.port);
	/* GET: a's empty reply -> b */
	assert_int_equal(client_version(c, NULL, NULL), 0);
	assert_string_equal(client_server(c), burl);
	/* POST: b takes it and closes; not sent to a */
	struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *obj = json_pack("{s:{s:s}}", "metadata", "name", "x");
	const struct api_kind *task = api_kind_by_kind("Task");
	assert_int_equal(client_create(c, task, "default", obj, NULL, NULL, &err), -EIO);
	assert_non_null(strstr(err.msg, "not sent to another server"));
	assert_string_equal(client_server(c), burl);
	kerr_clear(&err);
	/* GET: b's 503 -> a */
	assert_int_equal(client_version(c, NULL, NULL), 0);
	assert_string_equal(client_server(c), aurl);
	/* POST: a's 503 is the answer */
	assert_int_equal(client_create(c, task, "default", obj, NULL, NULL, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "too many connections"));
	kerr_clear(&err);
	fake_stop(&a);
	fake_stop(&b);
	assert_string_equal(a.requests[1], "GET /version ");
	assert_true(strstartswith(a.requests[2], "POST /apis/keel/v1/namespaces/default/tasks"));
	assert_true(strstartswith(b.requests[1], "POST /apis/keel/v1/namespaces/default/tasks"));
	_cleanup_free_ char *tr = xasprintf(
	    "GET %d/version 0;GET %d/version 200;POST %d/apis/keel/v1/namespaces/default/tasks 0;"
	    "GET %d/version 503;GET %d/version 200;POST %d/apis/keel/v1/namespaces/default/tasks "
	    "503;",
	    a.port, b.port, b.port, b.port, a.port, a.port);
	assert_string_equal(trace.data, tr);
	client_free(c);
	sbuf_free(&trace);
}

#define EV(type, name, rv)                                                                         \
	"{\"type\":\"" type "\",\"object\":{\"metadata\":{\"name\":\"" name                        \
	"\",\"resourceVersion\":\"" rv "\"}}}\n"
#define BOOKMARK(rv)                                                                               \
	"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"" rv "\"}}}\n"

/* A watch whose stream breaks mid-way (the answer is cut short of its
 * length) resumes on the other server from the last resourceVersion
 * delivered, a bookmark's included; the callback sees every event once. */
static void test_watch_resumes_on_next_server(void **state)
{
	(void)state;
	static const struct answer first[] = {
	    {WATCH_HEAD "\r\nContent-Length: 100000", {EV("ADDED", "a", "5"), BOOKMARK("7")}},
	};
	static const struct answer second[] = {
	    {WATCH_HEAD, {EV("MODIFIED", "a", "8"), EV("DELETED", "a", "9")}},
	};
	struct fake a, b;
	fake_start(&a, first, ARRAY_SIZE(first));
	fake_start(&b, second, ARRAY_SIZE(second));
	int ports[] = {a.port, b.port};
	struct sbuf trace = SBUF_INIT;
	struct client *c = client_list_for(ports, 2, &trace);
	struct seen s = {SBUF_INIT, 0, 0};
	struct client_query q = {.resource_version = "4"};
	assert_int_equal(client_watch(c, api_kind_by_kind("Task"), "default", &q, record, &s, NULL),
	                 0);
	assert_string_equal(s.log.data, "ADDED:a:5;BOOKMARK:-:7;MODIFIED:a:8;DELETED:a:9;");
	fake_stop(&a);
	fake_stop(&b);
	assert_string_equal(
	    a.requests[0], "GET /apis/keel/v1/namespaces/default/tasks?watch=1&resourceVersion=4 ");
	assert_string_equal(
	    b.requests[0], "GET /apis/keel/v1/namespaces/default/tasks?watch=1&resourceVersion=7 ");
	_cleanup_free_ char *burl = url_of(b.port);
	assert_string_equal(client_server(c), burl);
	sbuf_free(&s.log);
	client_free(c);
	sbuf_free(&trace);
}

/* A watch from "0" that broke after its initial ADDED burst started has
 * no position to resume from: the error goes to the caller (which
 * relists), and the other server is not asked. A dead first server before
 * anything was delivered is skipped. */
static void test_watch_from_zero_not_resumed(void **state)
{
	(void)state;
	static const struct answer first[] = {
	    {WATCH_HEAD "\r\nContent-Length: 100000", {EV("ADDED", "b", "9")}},
	};
	static const struct answer second[] = {
	    {WATCH_HEAD, {EV("ADDED", "x", "3")}},
	};
	struct fake a, b;
	fake_start(&a, first, ARRAY_SIZE(first));
	fake_start(&b, second, ARRAY_SIZE(second));
	int ports[] = {a.port, b.port};
	struct sbuf trace = SBUF_INIT;
	struct client *c = client_list_for(ports, 2, &trace);
	struct seen s = {SBUF_INIT, 0, 0};
	struct kerr err = KERR_INIT;
	const struct api_kind *task = api_kind_by_kind("Task");
	assert_int_equal(client_watch(c, task, NULL, NULL, record, &s, &err), -EIO);
	assert_non_null(strstr(err.msg, "broke"));
	kerr_clear(&err);
	assert_string_equal(s.log.data, "ADDED:b:9;");
	fake_stop(&a); /* now dead: the next watch from 0 goes to b */
	sbuf_reset(&s.log);
	assert_int_equal(client_watch(c, task, NULL, NULL, record, &s, NULL), 0);
	assert_string_equal(s.log.data, "ADDED:x:3;");
	fake_stop(&b);
	sbuf_free(&s.log);
	client_free(c);
	sbuf_free(&trace);
}

/* A frozen server (SIGSTOP) keeps the connection open and sends nothing.
 * It said its bookmark interval (1 s): after a few missed bookmarks (3 s,
 * the floor), not the 90 s default, the watch resumes on the other server
 * from the last resourceVersion. */
static void test_watch_silent_server_resumes_by_bookmark_interval(void **state)
{
	(void)state;
	static const struct answer first[] = {
	    {WATCH_HEAD "\r\nKeel-Bookmark-Interval: 1000ms", {EV("ADDED", "a", "5"), "HANG"}},
	};
	static const struct answer second[] = {
	    {WATCH_HEAD, {EV("MODIFIED", "a", "8")}},
	};
	struct fake a, b;
	fake_start(&a, first, ARRAY_SIZE(first));
	fake_start(&b, second, ARRAY_SIZE(second));
	int ports[] = {a.port, b.port};
	struct sbuf trace = SBUF_INIT;
	struct client *c = client_list_for(ports, 2, &trace);
	struct seen s = {SBUF_INIT, 0, 0};
	struct client_query q = {.resource_version = "4"};
	int64_t t0 = time_mono_ms();
	assert_int_equal(client_watch(c, api_kind_by_kind("Task"), NULL, &q, record, &s, NULL), 0);
	int64_t took = time_mono_ms() - t0;
	assert_true(took >= 2900);
	assert_true(took < 6000);
	assert_string_equal(s.log.data, "ADDED:a:5;MODIFIED:a:8;");
	fake_stop(&a);
	fake_stop(&b);
	assert_string_equal(b.requests[0], "GET /apis/keel/v1/tasks?watch=1&resourceVersion=5 ");
	sbuf_free(&s.log);
	client_free(c);
	sbuf_free(&trace);
}

/* A bookmark interval that is not one (garbage, zero) is ignored: the
 * client's own idle timeout applies. */
static void test_watch_bad_bookmark_interval_ignored(void **state)
{
	(void)state;
	static const struct answer a[] = {
	    {WATCH_HEAD "\r\nKeel-Bookmark-Interval: 0ms", {EV("ADDED", "a", "5"), "HANG"}},
	    {WATCH_HEAD "\r\nKeel-Bookmark-Interval: soon", {EV("ADDED", "b", "6"), "HANG"}},
	};
	struct fake f;
	fake_start(&f, a, ARRAY_SIZE(a));
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
	struct client_opts o = {.server = url, .watch_idle_s = 1};
	struct client *c = NULL;
	assert_int_equal(client_new(&o, &c, NULL), 0);
	struct seen s = {SBUF_INIT, 0, 0};
	for (int i = 0; i < 2; i++) {
		struct kerr err = KERR_INIT;
		int64_t t0 = time_mono_ms();
		assert_int_equal(
		    client_watch(c, api_kind_by_kind("Task"), NULL, NULL, record, &s, &err),
		    -ETIMEDOUT);
		assert_true(time_mono_ms() - t0 < 2900); /* 1 s, not the 3 s floor */
		assert_non_null(strstr(err.msg, "nothing from"));
		kerr_clear(&err);
	}
	assert_string_equal(s.log.data, "ADDED:a:5;ADDED:b:6;");
	fake_stop(&f);
	sbuf_free(&s.log);
	client_free(c);
}

/* A server frozen before it answered a watch: the wait for the answer's
 * head is bounded by the request timeout (2 s here), not the 90 s idle
 * default, then the watch goes to the other server. */
static void test_watch_unanswered_goes_to_next_server(void **state)
{
	(void)state;
	static const struct answer first[] = {{"HANG", {NULL}}};
	static const struct answer second[] = {{WATCH_HEAD, {EV("ADDED", "x", "3")}}};
	struct fake a, b;
	fake_start(&a, first, ARRAY_SIZE(first));
	fake_start(&b, second, ARRAY_SIZE(second));
	char url[96];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d,http://127.0.0.1:%d", a.port, b.port);
	struct client_opts o = {.server = url, .timeout_ms = 2000};
	struct client *c = NULL;
	assert_int_equal(client_new(&o, &c, NULL), 0);
	struct seen s = {SBUF_INIT, 0, 0};
	int64_t t0 = time_mono_ms();
	assert_int_equal(client_watch(c, api_kind_by_kind("Task"), NULL, NULL, record, &s, NULL),
	                 0);
	int64_t took = time_mono_ms() - t0;
	assert_true(took >= 1900);
	assert_true(took < 5000);
	assert_string_equal(s.log.data, "ADDED:x:3;");
	fake_stop(&a);
	fake_stop(&b);
	sbuf_free(&s.log);
	client_free(c);
}

static int record_slowly(const char *type, json_t *obj, void *ud)
{
	struct seen *s = ud;
	if (s->count == 0)
		usleep(4500 * 1000); /* longer than the 3 s idle deadline */
	return record(type, obj, ud);
}

/* The idle deadline counts the server's silence, not the callback's own
 * time: a callback slower than the deadline does not end the stream. */
static void test_watch_slow_callback_not_idle(void **state)
{
	(void)state;
	static const struct answer a[] = {
	    {WATCH_HEAD "\r\nKeel-Bookmark-Interval: 1s",
	     {EV("ADDED", "a", "5"), "SLEEP", "SLEEP", EV("ADDED", "b", "6")}},
	};
	/* b comes 6 s after a: 1.5 s after the callback is done with a */
	struct fake f;
	fake_start(&f, a, ARRAY_SIZE(a));
	struct client *c = client_for(&f);
	struct seen s = {SBUF_INIT, 0, 0};
	struct kerr err = KERR_INIT;
	struct client_query q = {.resource_version = "4"};
	assert_int_equal(
	    client_watch(c, api_kind_by_kind("Task"), NULL, &q, record_slowly, &s, &err), 0);
	assert_string_equal(s.log.data, "ADDED:a:5;ADDED:b:6;");
	kerr_clear(&err);
	fake_stop(&f);
	sbuf_free(&s.log);
	client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_errors),
	    cmocka_unit_test(test_apply_and_pages),
	    cmocka_unit_test(test_watch),
	    cmocka_unit_test(test_watch_idle_timeout),
	    cmocka_unit_test(test_watch_cancel),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_failover_refused_then_sticky),
	    cmocka_unit_test(test_failover_after_death),
	    cmocka_unit_test(test_failover_only_idempotent),
	    cmocka_unit_test(test_watch_resumes_on_next_server),
	    cmocka_unit_test(test_watch_from_zero_not_resumed),
	    cmocka_unit_test(test_watch_silent_server_resumes_by_bookmark_interval),
	    cmocka_unit_test(test_watch_bad_bookmark_interval_ignored),
	    cmocka_unit_test(test_watch_unanswered_goes_to_next_server),
	    cmocka_unit_test(test_watch_slow_callback_not_idle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
