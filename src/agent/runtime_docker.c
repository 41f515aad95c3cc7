/*
 * runtime_docker — the docker backend of runtime.h: the Docker Engine API
 * v1.41 over its unix socket, with libcurl (URLs http://localhost/v1.41/...).
 *
 * Why it is built this way:
 * - Every call uses a fresh curl easy handle and holds no engine state
 *   (no cached container ids, no kept connection), so a dockerd restart
 *   under the agent costs at most the calls that fail while it is down, and
 *   logs()/exec(), and start()/stats() (ops.concurrent), can run on other
 *   threads with no lock at all (but the stats samples' mu).
 * - Containers are found again by their labels (keel.managed, keel.node,
 *   keel.task.*), never by anything this process remembers; list() and
 *   inspect() read the engine every time.
 * - Names are keel-NS-NAME-ATTEMPT-UID8: a create that races a crash of the
 *   agent meets its own earlier container by name (409) and adopts it
 *   instead of making a twin.
 * - Restarts are keel's: RestartPolicy is always "no".
 * - The hash of the spec a container was made from rides along as the
 *   label keel.task.spec-hash, so that an agent adopting it after a restart
 *   can tell whether the Task was edited meanwhile.
 * - The Task's terminationGracePeriodSeconds rides along as a label, so
 *   that an agent that finds the container of a Task deleted while it was
 *   down stops it as the Task asked, not after a default.
 * - Docker deletes a container's logs with the container. To serve
 *   `keel logs --previous`, start() of attempt N removes the task's ended
 *   attempts older than N-1 itself, and the agent removes containers only
 *   when their Task is gone; attempt N-1 stays (ended, holding no
 *   resources but its log file) until attempt N+1 starts.
 */
#include "agent/docker_logs.h"
#include "agent/runtime.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/quantity.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

#define DK_API            "http://localhost/v1.41"
#define DK_DEFAULT_SOCKET "/var/run/docker.sock"
#define DK_MAX_BODY       (32u << 20) /* a buffered answer larger than this is refused */
#define DK_MAX_ERRBODY    4096u

/* The previous CPU counters of a container, for the rate between two
 * one-shot stats calls. */
struct dk_sample {
	char *id;
	int64_t cpu, sys;
};
#define DK_MAX_SAMPLES 1024

struct rt_docker {
	struct runtime base;
	char *socket;
	long timeout_ms;
	pthread_mutex_t mu; /* samples */
	struct dk_sample *samples;
	size_t nsamples;
};

/* ---- HTTP over the unix socket ---- */

struct dk_req {
	const char *method;
	const char *path;          /* after /v1.41, with its query, already escaped */
	json_t *body;              /* borrowed; NULL for none */
	long timeout_ms;           /* 0: none (follow streams) */
	curl_write_callback write; /* NULL: buffer into the response body */
	void *wctx;
};

struct dk_resp {
	long status;
	struct sbuf body;
	bool too_big;
};

static void dk_resp_free(struct dk_resp *r)
{
	sbuf_free(&r->body);
}
#define _cleanup_resp_ _cleanup_(dk_resp_free)

/* Keeps the status of the last status line (a 100 Continue comes first). */
static size_t dk_header_cb(char *p, size_t size, size_t n, void *ctx)
{
	struct dk_resp *r = ctx;
	size_t len = size * n;
	long code;
	if (len > 9 && strncmp(p, "HTTP/", 5) == 0 && sscanf(p, "HTTP/%*s %ld", &code) == 1)
		r->status = code;
	return len;
}

static size_t dk_buffer_cb(char *p, size_t size, size_t n, void *ctx)
{
	struct dk_resp *r = ctx;
	size_t len = size * n;
	if (r->body.len + len > DK_MAX_BODY) {
		r->too_big = true;
		return 0;
	}
	sbuf_append(&r->body, p, len);
	return len;
}

static int dk_curl_error(const struct rt_docker *d, const struct dk_req *rq, CURLcode c,
                         const char *detail, struct kerr *err)
{
	const char *what = detail[0] ? detail : curl_easy_strerror(c);
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		/* curl's detail names "localhost port 80", which is not where
		 * it tried: say what failed on the socket instead. */
		return kerr_set(err, ECONNREFUSED, "cannot reach the Docker engine at %s: %s",
		                d->socket, curl_easy_strerror(c));
	case CURLE_OPERATION_TIMEDOUT:
		return kerr_set(err, ETIMEDOUT, "docker %s %s: no answer in time: %s", rq->method,
		                rq->path, what);
	default:
		return kerr_set(err, EIO, "docker %s %s (engine at %s): %s", rq->method, rq->path,
		                d->socket, what);
	}
}

/* Performs rq. resp->status follows the answer's status line as soon as it
 * arrives, so that a streaming write callback can look at it. Any HTTP answer is a success here
 * (*status says which); transport failures are -ECONNREFUSED/-ETIMEDOUT/-EIO. When rq->write is
 * NULL the answer is buffered into resp->body. A write callback that stops
 * the transfer (returns short) yields CURLE_WRITE_ERROR, reported as
 * -ECANCELED so callers can tell it from a broken engine. */
static int dk_perform(const struct rt_docker *d, const struct dk_req *rq, struct dk_resp *resp,
                      struct kerr *err)
{
	CURL *c = curl_easy_init();
	if (!c)
		return kerr_set(err, ENOMEM, "curl_easy_init failed");
	_cleanup_free_ char *url = xasprintf(DK_API "%s", rq->path);
	_cleanup_free_ char *body = rq->body ? json_dumps(rq->body, JSON_COMPACT) : NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->socket);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                 d->timeout_ms < 5000 ? d->timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
	if (body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (streq(rq->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, dk_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rq->write ? rq->write : dk_buffer_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, rq->write ? rq->wctx : resp);
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code)
		resp->status = code;
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (rc == CURLE_WRITE_ERROR && resp->too_big)
		return kerr_set(err, E2BIG, "docker %s %s: answer larger than %u bytes", rq->method,
		                rq->path, DK_MAX_BODY);
	if (rc == CURLE_WRITE_ERROR)
		return -ECANCELED;
	if (rc != CURLE_OK)
		return dk_curl_error(d, rq, rc, errbuf, err);
	return 0;
}

/* Docker answers errors as {"message": "..."}; falls back to the raw text. */
static char *dk_error_text(const struct sbuf *body)
{
	if (!body->len)
		return xstrdup("(no message)");
	_cleanup_json_ json_t *j = json_loadb(body->data, body->len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));
	if (m)
		return xstrdup(m);
	size_t n = body->len;
	while (n && (body->data[n - 1] == '\n' || body->data[n - 1] == '\r'))
		n--;
	return xstrndup(body->data, n < 300 ? n : 300);
}

/* The one table from Docker's HTTP statuses to errno. */
static int dk_status_errno(long status)
{
	switch (status) {
	case 400:
		return EINVAL;
	case 401:
	case 403:
		return EACCES;
	case 404:
		return ENOENT;
	case 409:
		return EEXIST;
	case 304:
		return EALREADY;
	default:
		return EIO;
	}
}

static int dk_http_error(const struct dk_req *rq, const struct dk_resp *resp, struct kerr *err)
{
	_cleanup_free_ char *m = dk_error_text(&resp->body);
	return kerr_set(err, dk_status_errno(resp->status), "docker %s %s: %s (HTTP %ld)",
	                rq->method, rq->path, m, resp->status);
}

/* A buffered call expecting a 2xx answer; *out (may be NULL) gets the JSON
 * body, or NULL when it is empty. Other answers become errors through
 * dk_status_errno; *status (may be NULL) tells which answer came. */
static int dk_call(const struct rt_docker *d, const char *method, const char *path, json_t *body,
                   long *status, json_t **out, struct kerr *err)
{
	struct dk_req rq = {
	    .method = method, .path = path, .body = body, .timeout_ms = d->timeout_ms};
	_cleanup_resp_ struct dk_resp resp = {0};
	int r = dk_perform(d, &rq, &resp, err);
	if (r < 0)
		return r == -ECANCELED ? kerr_set(err, EIO, "docker %s %s: cut short", method, path)
		                       : r;
	if (status)
		*status = resp.status;
	if (resp.status < 200 || resp.status > 299)
		return dk_http_error(&rq, &resp, err);
	if (!out)
		return 0;
	json_t *j = NULL;
	if (resp.body.len) {
		json_error_t je;
		j = json_loadb(resp.body.data, resp.body.len, 0, &je);
		if (!j)
			return kerr_set(err, EIO, "docker %s %s: bad JSON in answer: %s", method,
			                path, je.text);
	}
	*out = j;
	return 0;
}

static char *dk_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	if (!e)
		abort(); /* only fails on out of memory */
	char *r = xstrdup(e);
	curl_free(e);
	return r;
}

/* ---- container JSON -> rt_status ---- */

/* Docker's times are RFC 3339 with nanoseconds; "0001-01-01T00:00:00Z" is
 * Go's zero time, meaning "not yet". */
static int64_t dk_time(json_t *v)
{
	int64_t t = time_parse_rfc3339(json_string_value(v));
	return t > 0 ? t : 0;
}

static char *dup_nonempty(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

static enum rt_state dk_state(const char *s)
{
	if (streq(s, "created"))
		return RT_CREATED;
	if (streq(s, "running") || streq(s, "paused") || streq(s, "restarting"))
		return RT_RUNNING;
	if (streq(s, "exited") || streq(s, "dead") || streq(s, "removing"))
		return RT_EXITED;
	return RT_UNKNOWN;
}

static const char *dk_exit_reason(int code, bool oom)
{
	if (oom)
		return "OOMKilled";
	if (code == 0)
		return "Completed";
	if (code == 128 + 9)
		return "Killed";
	return "Error";
}

static char *dk_ip(json_t *net)
{
	const char *ip = json_string_value(json_object_get(net, "IPAddress"));
	if (ip && *ip)
		return xstrdup(ip);
	const char *key;
	json_t *n;
	json_object_foreach(json_object_get(net, "Networks"), key, n)
	{
		ip = json_string_value(json_object_get(n, "IPAddress"));
		if (ip && *ip)
			return xstrdup(ip);
	}
	return NULL;
}

/* Appends one published port to st, skipping the second address family's
 * duplicate of the same binding (0.0.0.0 and ::). */
static void dk_port_add(struct rt_status *st, long cport, long hport, bool udp)
{
	if (cport <= 0 || hport <= 0 || hport > 65535)
		return;
	for (size_t i = 0; i < st->nports; i++)
		if (st->ports[i].container_port == cport && st->ports[i].udp == udp)
			return;
	st->ports = xrealloc(st->ports, (st->nports + 1) * sizeof(*st->ports));
	st->ports[st->nports++] = (struct rt_port){(int)cport, (int)hport, udp};
}

/* From a summary's "Ports": [{"PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"}]. */
static void dk_ports_from_summary(json_t *ports, struct rt_status *st)
{
	size_t i;
	json_t *p;
	json_array_foreach(ports, i, p)
	{
		dk_port_add(st, (long)json_integer_value(json_object_get(p, "PrivatePort")),
		            (long)json_integer_value(json_object_get(p, "PublicPort")),
		            streq(json_string_value(json_object_get(p, "Type")), "udp"));
	}
}

/* From inspect's NetworkSettings.Ports: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}]}. */
static void dk_ports_from_inspect(json_t *ports, struct rt_status *st)
{
	const char *key;
	json_t *binds;
	json_object_foreach(ports, key, binds)
	{
		long cport = strtol(key, NULL, 10);
		bool udp = strstr(key, "/udp") != NULL;
		size_t i;
		json_t *b;
		json_array_foreach(binds, i, b)
		{
			const char *hp = json_string_value(json_object_get(b, "HostPort"));
			dk_port_add(st, cport, hp ? strtol(hp, NULL, 10) : 0, udp);
		}
	}
}

/* The task identity keel's labels carry. */
static void dk_status_labels(json_t *labels, struct rt_status *st)
{
	st->task_uid = dup_nonempty(json_string_value(json_object_get(labels, "keel.task.uid")));
	st->ns = dup_nonempty(json_string_value(json_object_get(labels, "keel.task.namespace")));
	st->name = dup_nonempty(json_string_value(json_object_get(labels, "keel.task.name")));
	const char *att = json_string_value(json_object_get(labels, "keel.task.attempt"));
	st->attempt = att ? (unsigned)strtoul(att, NULL, 10) : 0;
	st->spec_hash =
	    dup_nonempty(json_string_value(json_object_get(labels, "keel.task.spec-hash")));
	const char *grace = json_string_value(json_object_get(labels, "keel.task.grace"));
	char *end = NULL;
	long g = grace ? strtol(grace, &end, 10) : -1;
	if (grace && *grace && !*end && g >= 0 && g <= INT_MAX) {
		st->has_grace = true;
		st->grace_s = (int)g;
	}
}

/* Fills st from GET /containers/{id}/json. */
static void dk_status_from_inspect(json_t *c, struct rt_status *st)
{
	json_t *state = json_object_get(c, "State");
	json_t *labels = json_object_get(json_object_get(c, "Config"), "Labels");
	memset(st, 0, sizeof(*st));
	st->id = xstrdup(json_string_value(json_object_get(c, "Id")) ?: "");
	dk_status_labels(labels, st);
	st->state = dk_state(json_string_value(json_object_get(state, "Status")));
	st->exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
	st->started_at = dk_time(json_object_get(state, "StartedAt"));
	st->finished_at = dk_time(json_object_get(state, "FinishedAt"));
	bool oom = json_is_true(json_object_get(state, "OOMKilled"));
	if (st->state == RT_EXITED)
		st->reason = xstrdup(dk_exit_reason(st->exit_code, oom));
	else
		st->finished_at = 0;
	st->message = dup_nonempty(json_string_value(json_object_get(state, "Error")));
	if (st->state == RT_RUNNING) {
		st->ip = dk_ip(json_object_get(c, "NetworkSettings"));
		dk_ports_from_inspect(
		    json_object_get(json_object_get(c, "NetworkSettings"), "Ports"), st);
	}
}

/* A running or created container from its GET /containers/json summary,
 * which has all inspect would say of it but StartedAt: its Created time
 * stands in (create and start are one step for keel's containers). Only
 * ended containers need an inspect each, for ExitCode, FinishedAt and
 * OOMKilled. A created one is most often being started by another of the
 * agent's threads, and an inspect would wait on the engine's lock of the
 * container until that start is done. */
static void dk_status_from_summary(json_t *c, struct rt_status *st)
{
	json_t *labels = json_object_get(c, "Labels");
	memset(st, 0, sizeof(*st));
	st->id = xstrdup(json_string_value(json_object_get(c, "Id")) ?: "");
	dk_status_labels(labels, st);
	st->state = dk_state(json_string_value(json_object_get(c, "State")));
	if (st->state != RT_RUNNING)
		return;
	st->started_at = json_integer_value(json_object_get(c, "Created"));
	st->ip = dk_ip(json_object_get(c, "NetworkSettings"));
	dk_ports_from_summary(json_object_get(c, "Ports"), st);
}

/* GET /containers/{id}/json; *out owned. id may also be a name. */
static int dk_inspect_json(const struct rt_docker *d, const char *id, json_t **out,
                           struct kerr *err)
{
	_cleanup_free_ char *eid = dk_escape(id);
	_cleanup_free_ char *path = xasprintf("/containers/%s/json", eid);
	json_t *j = NULL;
	int r = dk_call(d, "GET", path, NULL, NULL, &j, err);
	if (r == -ENOENT)
		return kerr_set(err, ENOENT, "no such container %s", id);
	if (r < 0)
		return r;
	if (!json_is_object(j)) {
		json_decref(j);
		return kerr_set(err, EIO, "docker GET %s: answer is not an object", path);
	}
	*out = j;
	return 0;
}

static int dk_inspect(struct runtime *rt, const char *id, struct rt_status *out, struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	_cleanup_json_ json_t *c = NULL;
	int r = dk_inspect_json(d, id, &c, err);
	if (r < 0)
		return r;
	dk_status_from_inspect(c, out);
	return 0;
}

/* Lists keel's containers matching the label filters (a NULL-terminated
 * array of "k=v"), inspecting those that have ended (or are in a state
 * the summary does not tell). Containers removed in between are skipped. */
static int dk_list_labels(const struct rt_docker *d, const char *const *labels,
                          struct rt_status **out, size_t *n, struct kerr *err)
{
	_cleanup_json_ json_t *filters = json_pack("{s:[]}", "label");
	for (size_t i = 0; labels[i]; i++)
		json_array_append_new(json_object_get(filters, "label"), json_string(labels[i]));
	_cleanup_free_ char *fs = json_dumps(filters, JSON_COMPACT);
	_cleanup_free_ char *efs = dk_escape(fs);
	_cleanup_free_ char *path = xasprintf("/containers/json?all=1&filters=%s", efs);
	_cleanup_json_ json_t *arr = NULL;
	int r = dk_call(d, "GET", path, NULL, NULL, &arr, err);
	if (r < 0)
		return r;
	if (!json_is_array(arr))
		return kerr_set(err, EIO, "docker GET /containers/json: answer is not an array");
	struct rt_status *sts = xcalloc(json_array_size(arr) + 1, sizeof(*sts));
	size_t k = 0, i;
	json_t *it;
	json_array_foreach(arr, i, it)
	{
		const char *id = json_string_value(json_object_get(it, "Id"));
		_cleanup_json_ json_t *c = NULL;
		_cleanup_kerr_ struct kerr e = KERR_INIT;
		if (!id)
			continue;
		const char *state = json_string_value(json_object_get(it, "State"));
		if (streq(state, "running") || streq(state, "created")) {
			dk_status_from_summary(it, &sts[k++]);
			continue;
		}
		r = dk_inspect_json(d, id, &c, &e);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			rt_status_array_free(sts, k);
			kerr_move(err, &e);
			return r;
		}
		dk_status_from_inspect(c, &sts[k++]);
	}
	*out = sts;
	*n = k;
	return 0;
}

static int dk_list(struct runtime *rt, const char *node, struct rt_status **out, size_t *n,
                   struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	_cleanup_free_ char *nl = xasprintf("keel.node=%s", node);
	const char *labels[] = {"keel.managed=true", nl, NULL};
	return dk_list_labels(d, labels, out, n, err);
}

/* ---- start ---- */

static json_t *str_array(json_t *a)
{
	json_t *out = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (json_is_string(v))
			json_array_append(out, v);
	}
	return out;
}

static json_t *dk_env(json_t *env)
{
	json_t *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(env, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *value = json_string_value(json_object_get(e, "value"));
		if (!name)
			continue;
		_cleanup_free_ char *kv = xasprintf("%s=%s", name, value ? value : "");
		json_array_append_new(out, json_string(kv));
	}
	return out;
}

/* limits.KEY, else requests.KEY, as a JSON quantity; NULL when neither. */
static json_t *dk_resource(json_t *spec, const char *key, const char **from)
{
	json_t *res = json_object_get(spec, "resources");
	json_t *v = json_object_get(json_object_get(res, "limits"), key);
	*from = "limits";
	if (!v) {
		v = json_object_get(json_object_get(res, "requests"), key);
		*from = "requests";
	}
	return v;
}

static int dk_host_resources(json_t *spec, json_t *hc, struct kerr *err)
{
	const char *from;
	json_t *mem = dk_resource(spec, "memory", &from);
	if (mem) {
		int64_t bytes;
		if (api_quantity_memory(mem, &bytes, err) < 0)
			return kerr_prefix(err, "spec.resources.%s.memory", from);
		json_object_set_new(hc, "Memory", json_integer(bytes));
	}
	json_t *cpu = dk_resource(spec, "cpu", &from);
	if (cpu) {
		int64_t mc;
		if (api_quantity_cpu(cpu, &mc, err) < 0)
			return kerr_prefix(err, "spec.resources.%s.cpu", from);
		json_object_set_new(hc, "NanoCpus", json_integer(mc * 1000000));
	}
	return 0;
}

/* ExposedPorts {"80/tcp": {}} and PortBindings {"80/tcp": [{"HostPort": "8080"}]}
 * for every port: on its hostPort, or (HostPort "") on a free port the
 * engine picks, so that each replica is reachable from the host whatever
 * the network (runtime.h, struct rt_port). */
static void dk_ports(json_t *spec, json_t *body, json_t *hc)
{
	json_t *exposed = json_object(), *bind = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(spec, "ports"), i, p)
	{
		json_int_t cport = json_integer_value(json_object_get(p, "containerPort"));
		json_int_t hport = json_integer_value(json_object_get(p, "hostPort"));
		const char *proto = json_string_value(json_object_get(p, "protocol"));
		if (cport <= 0)
			continue;
		char key[32];
		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT "/%s", cport,
		         streq(proto, "UDP") ? "udp" : "tcp");
		json_object_set_new(exposed, key, json_object());
		char hp[24] = "";
		if (hport > 0)
			snprintf(hp, sizeof(hp), "%" JSON_INTEGER_FORMAT, hport);
		json_object_set_new(bind, key, json_pack("[{s:s}]", "HostPort", hp));
	}
	json_object_set_new(body, "ExposedPorts", exposed);
	json_object_set_new(hc, "PortBindings", bind);
}

static json_t *dk_labels(const struct rt_task *t)
{
	char att[16];
	snprintf(att, sizeof(att), "%u", t->attempt);
	json_t *l = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "keel.managed", "true", "keel.node",
	                      t->node, "keel.task.uid", t->uid, "keel.task.namespace", t->ns,
	                      "keel.task.name", t->name, "keel.task.attempt", att);
	json_t *g = json_object_get(t->spec, "terminationGracePeriodSeconds");
	if (json_is_integer(g) && json_integer_value(g) >= 0)
		json_object_set_new(l, "keel.task.grace",
		                    json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(g)));
	if (t->spec_hash)
		json_object_set_new(l, "keel.task.spec-hash", json_string(t->spec_hash));
	return l;
}

/* The body of POST /containers/create. command maps to Entrypoint and args
 * to Cmd, as Kubernetes maps them: a Task with only args keeps the image's
 * entrypoint; one with a command drops the image's CMD too. */
static int dk_create_body(const struct rt_task *t, json_t **out, struct kerr *err)
{
	json_t *spec = t->spec;
	const char *image = json_string_value(json_object_get(spec, "image"));
	if (!image || !*image)
		return kerr_set(err, EINVAL, "task %s/%s: spec.image is missing", t->ns, t->name);
	_cleanup_json_ json_t *body =
	    json_pack("{s:s, s:o, s:o, s:b, s:b}", "Image", image, "Labels", dk_labels(t), "Env",
	              dk_env(json_object_get(spec, "env")), "Tty", 0, "OpenStdin", 0);
	json_t *cmd = json_object_get(spec, "command");
	json_t *args = json_object_get(spec, "args");
	if (json_array_size(cmd))
		json_object_set_new(body, "Entrypoint", str_array(cmd));
	if (json_array_size(args))
		json_object_set_new(body, "Cmd", str_array(args));
	if (strlen(t->name) <= 63 && !strchr(t->name, '.'))
		json_object_set_new(body, "Hostname", json_string(t->name));
	/* Init: the engine's init (tini) runs as PID 1 and forwards signals, so
	 * that the Task's own process gets SIGTERM on a stop as it would on the
	 * host; as PID 1 itself, a process without a handler (httpd) ignores
	 * it and every stop would wait out the grace period. */
	_cleanup_json_ json_t *hc =
	    json_pack("{s:{s:s, s:i}, s:b}", "RestartPolicy", "Name", "no", "MaximumRetryCount", 0,
	              "Init", 1);
	if (dk_host_resources(spec, hc, err) < 0)
		return -err->code;
	dk_ports(spec, body, hc);
	json_t *env = json_object_get(body, "Env");
	json_array_append_new(env, json_sprintf("KEEL_TASK_NAME=%s", t->name));
	json_array_append_new(env, json_sprintf("KEEL_TASK_NAMESPACE=%s", t->ns));
	json_array_append_new(env, json_sprintf("KEEL_TASK_UID=%s", t->uid));
	rt_port_env(spec, NULL, env); /* as the process runtime sets them */
	json_object_set_new(body, "HostConfig", TAKE_PTR(hc));
	*out = TAKE_PTR(body);
	return 0;
}

static char *dk_name(const struct rt_task *t)
{
	return xasprintf("keel-%s-%s-%u-%.8s", t->ns, t->name, t->attempt, t->uid);
}

/* Create answered 409 (the name is taken): it is ours when it carries the
 * same task uid and attempt — a create whose start the agent did not see
 * (crash, timeout). Adopt it; anything else is a real conflict. */
static int dk_adopt_by_name(const struct rt_docker *d, const struct rt_task *t, const char *name,
                            char **id, struct kerr *err)
{
	_cleanup_json_ json_t *c = NULL;
	_cleanup_kerr_ struct kerr e = KERR_INIT;
	if (dk_inspect_json(d, name, &c, &e) < 0)
		return kerr_set(err, EEXIST,
		                "container name %s is taken and cannot be inspected: %s", name,
		                kerr_msg(&e));
	struct rt_status st;
	dk_status_from_inspect(c, &st);
	bool ours = streq(st.task_uid, t->uid) && st.attempt == t->attempt;
	enum rt_state state = st.state;
	char *cid = TAKE_PTR(st.id);
	rt_status_clear(&st);
	if (!ours || state == RT_EXITED || state == RT_UNKNOWN) {
		free(cid);
		return kerr_set(err, EEXIST, "container %s exists already%s", name,
		                ours ? " and has ended (attempt numbers must grow)"
		                     : " and is not this task's");
	}
	*id = cid;
	return 0;
}

/* Removes the task's ended containers of attempts below keep_from. */
static void dk_prune_attempts(const struct rt_docker *d, const struct rt_task *t,
                              unsigned keep_from)
{
	_cleanup_free_ char *ul = xasprintf("keel.task.uid=%s", t->uid);
	const char *labels[] = {"keel.managed=true", ul, NULL};
	struct rt_status *sts = NULL;
	size_t n = 0;
	if (dk_list_labels(d, labels, &sts, &n, NULL) < 0)
		return; /* best effort: the next start prunes again */
	for (size_t i = 0; i < n; i++) {
		if (sts[i].attempt < keep_from && sts[i].state == RT_EXITED) {
			_cleanup_free_ char *eid = dk_escape(sts[i].id);
			_cleanup_free_ char *path = xasprintf("/containers/%s?force=1&v=1", eid);
			dk_call(d, "DELETE", path, NULL, NULL, NULL, NULL);
		}
	}
	rt_status_array_free(sts, n);
}

static int dk_create(const struct rt_docker *d, const struct rt_task *t, char **id,
                     struct kerr *err)
{
	_cleanup_json_ json_t *body = NULL;
	if (dk_create_body(t, &body, err) < 0)
		return -err->code;
	_cleanup_free_ char *name = dk_name(t);
	_cleanup_free_ char *ename = dk_escape(name);
	_cleanup_free_ char *path = xasprintf("/containers/create?name=%s", ename);
	_cleanup_json_ json_t *ans = NULL;
	_cleanup_kerr_ struct kerr e = KERR_INIT;
	long status = 0;
	int r = dk_call(d, "POST", path, body, &status, &ans, &e);
	const char *image = json_string_value(json_object_get(t->spec, "image"));
	if (r == -ENOENT && e.msg && strstr(e.msg, "No such image"))
		return kerr_set(
		    err, ENXIO,
		    "image \"%s\" not found (no registry is reachable; build it locally)", image);
	if (r == -EEXIST && status == 409)
		return dk_adopt_by_name(d, t, name, id, err);
	if (r < 0) {
		kerr_move(err, &e);
		return kerr_prefix(err, "creating container for task %s/%s", t->ns, t->name);
	}
	const char *cid = json_string_value(json_object_get(ans, "Id"));
	if (!cid)
		return kerr_set(err, EIO, "docker create for task %s/%s answered no Id", t->ns,
		                t->name);
	*id = xstrdup(cid);
	return 0;
}

static int dk_start(struct runtime *rt, const struct rt_task *t, char **id, struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	_cleanup_free_ char *cid = NULL;
	if (dk_create(d, t, &cid, err) < 0)
		return -err->code;
	_cleanup_free_ char *eid = dk_escape(cid);
	_cleanup_free_ char *path = xasprintf("/containers/%s/start", eid);
	long status = 0;
	_cleanup_kerr_ struct kerr e = KERR_INIT;
	int r = dk_call(d, "POST", path, NULL, &status, NULL, &e);
	if (r < 0 && status != 304) {
		/* A container that cannot start (no such executable, ...) would
		 * only be in the way of the next attempt. */
		if (status >= 400) {
			_cleanup_free_ char *dpath = xasprintf("/containers/%s?force=1&v=1", eid);
			dk_call(d, "DELETE", dpath, NULL, NULL, NULL, NULL);
		}
		kerr_move(err, &e);
		return kerr_prefix(err, "starting container for task %s/%s", t->ns, t->name);
	}
	if (t->attempt >= 2)
		dk_prune_attempts(d, t, t->attempt - 1);
	*id = TAKE_PTR(cid);
	return 0;
}

/* ---- stop, remove ---- */

static int dk_stop(struct runtime *rt, const char *id, int grace_s, struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	if (grace_s < 0)
		grace_s = 0;
	_cleanup_free_ char *eid = dk_escape(id);
	_cleanup_free_ char *path = xasprintf("/containers/%s/stop?t=%d", eid, grace_s);
	struct dk_req rq = {
	    .method = "POST", .path = path, .timeout_ms = d->timeout_ms + grace_s * 1000L};
	_cleanup_resp_ struct dk_resp resp = {0};
	int r = dk_perform(d, &rq, &resp, err);
	if (r < 0)
		return r == -ECANCELED ? kerr_set(err, EIO, "docker POST %s: cut short", path) : r;
	/* 304: it was not running; 404: it is gone already. Both are "stopped". */
	if ((resp.status >= 200 && resp.status < 300) || resp.status == 304 || resp.status == 404)
		return 0;
	return dk_http_error(&rq, &resp, err);
}

static int dk_remove(struct runtime *rt, const char *id, struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	_cleanup_free_ char *eid = dk_escape(id);
	_cleanup_free_ char *path = xasprintf("/containers/%s?force=1&v=1", eid);
	long status = 0;
	_cleanup_kerr_ struct kerr e = KERR_INIT;
	int r = dk_call(d, "DELETE", path, NULL, &status, NULL, &e);
	/* 404: gone already; 409: "removal already in progress". */
	if (r < 0 && status != 404 && status != 409) {
		kerr_move(err, &e);
		return r;
	}
	return 0;
}

/* ---- logs ---- */

struct dk_stream {
	struct dk_resp *resp; /* its status tells a log stream from an error body */
	struct docker_demux dm;
	rt_log_fn fn;
	void *ctx;
	int demux_error;
	bool stopped; /* fn asked to stop */
};

static int dk_stream_piece(void *ctx, enum docker_stream stream, const char *data, size_t len)
{
	struct dk_stream *s = ctx;
	(void)stream; /* stdout and stderr interleave, as `docker logs` shows them */
	if (s->fn(s->ctx, data, len)) {
		s->stopped = true;
		return 1;
	}
	return 0;
}

static size_t dk_stream_cb(char *p, size_t size, size_t n, void *ctx)
{
	struct dk_stream *s = ctx;
	size_t len = size * n;
	if (s->resp->status < 200 || s->resp->status > 299) {
		if (s->resp->body.len < DK_MAX_ERRBODY)
			sbuf_append(&s->resp->body, p, len);
		return len;
	}
	int r = docker_demux_feed(&s->dm, p, len, dk_stream_piece, s);
	if (r < 0) {
		s->demux_error = r;
		return 0;
	}
	return r ? 0 : len;
}

/* The container of the attempt before c's, for the same task uid: the
 * highest attempt below c's. *out owned. */
static int dk_previous_id(const struct rt_docker *d, const struct rt_status *c, char **out,
                          struct kerr *err)
{
	if (!c->task_uid)
		return kerr_set(err, ENOENT,
		                "container %s is not keel's: it has no previous attempt", c->id);
	_cleanup_free_ char *ul = xasprintf("keel.task.uid=%s", c->task_uid);
	const char *labels[] = {"keel.managed=true", ul, NULL};
	struct rt_status *sts = NULL;
	size_t n = 0;
	int r = dk_list_labels(d, labels, &sts, &n, err);
	if (r < 0)
		return r;
	const struct rt_status *best = NULL;
	for (size_t i = 0; i < n; i++)
		if (sts[i].attempt < c->attempt && (!best || sts[i].attempt > best->attempt))
			best = &sts[i];
	if (best)
		*out = xstrdup(best->id);
	rt_status_array_free(sts, n);
	if (!best)
		return kerr_set(
		    err, ENOENT,
		    "task %s/%s: no previous attempt is kept (attempt %u is the oldest)",
		    c->ns ? c->ns : "?", c->name ? c->name : "?", c->attempt);
	return 0;
}

static int dk_logs(struct runtime *rt, const char *id, const struct rt_log_opts *o, rt_log_fn fn,
                   void *ctx, struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	_cleanup_json_ json_t *c = NULL;
	int r = dk_inspect_json(d, id, &c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *target = xstrdup(id);
	if (o->previous) {
		struct rt_status st;
		dk_status_from_inspect(c, &st);
		free(TAKE_PTR(target));
		r = dk_previous_id(d, &st, &target, err);
		rt_status_clear(&st);
		json_decref(TAKE_PTR(c));
		if (r < 0)
			return r;
		if ((r = dk_inspect_json(d, target, &c, err)) < 0)
			return r;
	}
	bool tty = json_is_true(json_object_get(json_object_get(c, "Config"), "Tty"));
	char tail[24] = "all";
	if (o->tail >= 0)
		snprintf(tail, sizeof(tail), "%ld", o->tail);
	_cleanup_free_ char *eid = dk_escape(target);
	_cleanup_free_ char *path =
	    xasprintf("/containers/%s/logs?stdout=1&stderr=1&tail=%s&follow=%d", eid, tail,
	              o->follow ? 1 : 0);
	_cleanup_resp_ struct dk_resp resp = {0};
	struct dk_stream s = {.resp = &resp, .fn = fn, .ctx = ctx};
	docker_demux_init(&s.dm, tty);
	struct dk_req rq = {.method = "GET",
	                    .path = path,
	                    .write = dk_stream_cb,
	                    .wctx = &s,
	                    .timeout_ms = o->follow ? 0 : d->timeout_ms};
	r = dk_perform(d, &rq, &resp, err);
	if (s.stopped)
		return 0;
	if (s.demux_error)
		return kerr_set(
		    err, EBADMSG,
		    "docker logs of %s: not a multiplexed stream (bad frame header after %" PRIu64
		    " frames)",
		    target, s.dm.frames);
	if (r < 0)
		return r;
	if (resp.status < 200 || resp.status > 299)
		return dk_http_error(&rq, &resp, err);
	if (!docker_demux_complete(&s.dm))
		return kerr_set(err, EIO, "docker logs of %s: the stream ended inside a frame",
		                target);
	return 0;
}

/* ---- stats ---- */

static int64_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* Swaps (*cpu, *sys) with the previous sample of id: on return they hold
 * the previous counters, or 0 when there was none. */
static void dk_sample_swap(struct rt_docker *d, const char *id, int64_t *cpu, int64_t *sys)
{
	pthread_mutex_lock(&d->mu);
	struct dk_sample *s = NULL;
	for (size_t i = 0; i < d->nsamples && !s; i++)
		if (streq(d->samples[i].id, id))
			s = &d->samples[i];
	if (!s) {
		if (d->nsamples >= DK_MAX_SAMPLES) { /* containers come and go: forget all */
			for (size_t i = 0; i < d->nsamples; i++)
				free(d->samples[i].id);
			d->nsamples = 0;
		}
		d->samples = xrealloc(d->samples, (d->nsamples + 1) * sizeof(*d->samples));
		s = &d->samples[d->nsamples++];
		*s = (struct dk_sample){xstrdup(id), 0, 0};
	}
	int64_t c = s->cpu, y = s->sys;
	s->cpu = *cpu, s->sys = *sys;
	*cpu = c, *sys = y;
	pthread_mutex_unlock(&d->mu);
}

/* CPU between this one-shot sample and the previous one of id (docker's
 * own precpu_stats are empty with one-shot=1); -1 on the first. */
static int64_t dk_cpu_millicores(struct rt_docker *d, const char *id, json_t *s)
{
	json_t *cur = json_object_get(s, "cpu_stats");
	int64_t pcpu = jint(json_object_get(cur, "cpu_usage"), "total_usage");
	int64_t psys = jint(cur, "system_cpu_usage");
	dk_sample_swap(d, id, &pcpu, &psys);
	int64_t cpu = jint(json_object_get(cur, "cpu_usage"), "total_usage") - pcpu;
	int64_t sys = jint(cur, "system_cpu_usage") - psys;
	int64_t ncpu = jint(cur, "online_cpus");
	if (ncpu <= 0)
		ncpu = (int64_t)json_array_size(
		    json_object_get(json_object_get(cur, "cpu_usage"), "percpu_usage"));
	if (ncpu <= 0)
		ncpu = 1;
	if (psys <= 0 || sys <= 0 || cpu < 0)
		return -1;
	return (int64_t)((double)cpu / (double)sys * (double)ncpu * 1000.0 + 0.5);
}

/* Working set as `docker stats` and the kubelet count it: usage minus the
 * inactive page cache (cgroup v1 total_inactive_file, v2 inactive_file),
 * else minus all cache. */
static int64_t dk_memory(json_t *s)
{
	json_t *m = json_object_get(s, "memory_stats");
	json_t *usage = json_object_get(m, "usage");
	if (!json_is_integer(usage))
		return -1;
	int64_t u = json_integer_value(usage);
	json_t *st = json_object_get(m, "stats");
	const char *keys[] = {"total_inactive_file", "inactive_file", "cache"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(st, keys[i]);
		if (json_is_integer(v))
			return json_integer_value(v) < u ? u - json_integer_value(v) : 0;
	}
	return u;
}

static int dk_stats(struct runtime *rt, const char *id, struct rt_stats *out, struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	_cleanup_free_ char *eid = dk_escape(id);
	/* one-shot: at once, instead of waiting a second or two for docker's own
	 * second sample; the rate is taken between our calls instead */
	_cleanup_free_ char *path = xasprintf("/containers/%s/stats?stream=false&one-shot=true", eid);
	_cleanup_json_ json_t *s = NULL;
	int r = dk_call(d, "GET", path, NULL, NULL, &s, err);
	if (r == -ENOENT)
		return kerr_set(err, ENOENT, "no such container %s", id);
	if (r < 0)
		return r;
	out->cpu_millicores = dk_cpu_millicores(d, id, s);
	out->memory_bytes = dk_memory(s);
	return 0;
}

/* ---- exec ---- */

static size_t dk_discard_cb(char *p, size_t size, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * n;
}

/* Polls GET /exec/{id}/json until Running is false (the attached stream can
 * close a moment before the engine records the exit). */
static int dk_exec_wait(const struct rt_docker *d, const char *eid, int64_t deadline_ms,
                        int *exit_code, struct kerr *err)
{
	_cleanup_free_ char *path = xasprintf("/exec/%s/json", eid);
	for (;;) {
		_cleanup_json_ json_t *j = NULL;
		int r = dk_call(d, "GET", path, NULL, NULL, &j, err);
		if (r < 0)
			return r;
		if (!json_is_true(json_object_get(j, "Running"))) {
			*exit_code = (int)jint(j, "ExitCode");
			return 0;
		}
		if (time_mono_ms() >= deadline_ms)
			return -ETIMEDOUT;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static int dk_exec(struct runtime *rt, const char *id, char *const argv[], int timeout_s,
                   int *exit_code, struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	if (!argv || !argv[0])
		return kerr_set(err, EINVAL, "exec in %s: empty command", id);
	if (timeout_s <= 0)
		timeout_s = 1;
	int64_t deadline = time_mono_ms() + timeout_s * 1000L;
	_cleanup_json_ json_t *body = json_pack("{s:[], s:b, s:b, s:b}", "Cmd", "AttachStdin", 0,
	                                        "AttachStdout", 1, "AttachStderr", 1);
	for (size_t i = 0; argv[i]; i++)
		json_array_append_new(json_object_get(body, "Cmd"), json_string(argv[i]));
	_cleanup_free_ char *cid = dk_escape(id);
	_cleanup_free_ char *path = xasprintf("/containers/%s/exec", cid);
	_cleanup_json_ json_t *ans = NULL;
	long status = 0;
	int r = dk_call(d, "POST", path, body, &status, &ans, err);
	if (r < 0 && status == 409)
		return kerr_set(err, ESRCH, "exec in %s: the container is not running", id);
	if (r < 0)
		return r;
	const char *xid = json_string_value(json_object_get(ans, "Id"));
	if (!xid)
		return kerr_set(err, EIO, "docker exec create in %s answered no Id", id);
	_cleanup_free_ char *exid = dk_escape(xid);
	_cleanup_free_ char *spath = xasprintf("/exec/%s/start", exid);
	_cleanup_json_ json_t *sbody = json_pack("{s:b, s:b}", "Detach", 0, "Tty", 0);
	/* Detach false: the engine streams the output until the command ends,
	 * so draining the answer is waiting for the exit. */
	_cleanup_resp_ struct dk_resp resp = {0};
	struct dk_req rq = {.method = "POST",
	                    .path = spath,
	                    .body = sbody,
	                    .timeout_ms = timeout_s * 1000L,
	                    .write = dk_discard_cb};
	r = dk_perform(d, &rq, &resp, err);
	if (r == -ETIMEDOUT || (r == 0 && time_mono_ms() >= deadline + 1000)) {
		kerr_clear(err);
		return kerr_set(err, ETIMEDOUT, "exec %s in %s: no exit within %d s", argv[0], id,
		                timeout_s);
	}
	if (r < 0)
		return r;
	if (resp.status < 200 || resp.status > 299)
		return dk_http_error(&rq, &resp, err);
	r = dk_exec_wait(d, exid, deadline + 2000, exit_code, err);
	if (r == -ETIMEDOUT)
		return kerr_set(err, ETIMEDOUT, "exec %s in %s: no exit within %d s", argv[0], id,
		                timeout_s);
	return r;
}

/* ---- info, lifecycle ---- */

static int dk_info(struct runtime *rt, struct rt_info *out, struct kerr *err)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	_cleanup_json_ json_t *v = NULL, *info = NULL;
	int r = dk_call(d, "GET", "/version", NULL, NULL, &v, err);
	if (r < 0)
		return r;
	_cleanup_kerr_ struct kerr e = KERR_INIT;
	char *warning = NULL;
	/* A warning only where the engine says so; /info failing is not an error. */
	if (dk_call(d, "GET", "/info", NULL, NULL, &info, &e) == 0 && json_is_object(info)) {
		bool mem = json_is_true(json_object_get(info, "MemoryLimit"));
		bool cpu = json_is_true(json_object_get(info, "CpuCfsQuota"));
		if (!mem || !cpu)
			warning = xasprintf("docker: the engine cannot enforce %s limits",
			                    !mem && !cpu ? "memory and CPU"
			                    : !mem       ? "memory"
			                                 : "CPU");
	}
	const char *ver = json_string_value(json_object_get(v, "Version"));
	out->name = xstrdup("docker");
	out->version = xstrdup(ver ? ver : "unknown");
	out->warning = warning;
	return 0;
}

static void dk_free(struct runtime *rt)
{
	struct rt_docker *d = (struct rt_docker *)rt;
	if (!d)
		return;
	for (size_t i = 0; i < d->nsamples; i++)
		free(d->samples[i].id);
	free(d->samples);
	pthread_mutex_destroy(&d->mu);
	free(d->socket);
	free(d);
}

static const struct runtime_ops docker_ops = {
    .name = "docker",
    .concurrent = true, /* fresh curl handles, no engine state; samples under mu */
    .start = dk_start,
    .stop = dk_stop,
    .remove = dk_remove,
    .list = dk_list,
    .inspect = dk_inspect,
    .logs = dk_logs,
    .stats = dk_stats,
    .exec = dk_exec,
    .info = dk_info,
    .free = dk_free,
};

int rt_docker_new(const struct rt_docker_options *o, struct runtime **out, struct kerr *err)
{
	const char *sock = o && o->socket && *o->socket ? o->socket : DK_DEFAULT_SOCKET;
	if (strlen(sock) >= 108)
		return kerr_set(err, EINVAL, "docker socket path %s is too long for a unix socket",
		                sock);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct rt_docker *d = xcalloc(1, sizeof(*d));
	d->base.ops = &docker_ops;
	d->socket = xstrdup(sock);
	d->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : 30000;
	pthread_mutex_init(&d->mu, NULL);
	*out = &d->base;
	return 0;
}

bool rt_docker_available(const char *socket)
{
	struct rt_docker d = {.socket = (char *)(socket && *socket ? socket : DK_DEFAULT_SOCKET),
	                      .timeout_ms = 2000};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct dk_req rq = {.method = "GET", .path = "/_ping", .timeout_ms = 2000};
	_cleanup_resp_ struct dk_resp resp = {0};
	if (dk_perform(&d, &rq, &resp, NULL) < 0)
		return false;
	return resp.status == 200;
}
