/*
 * agent_logsrv — the agent's log server: GET /logs/{ns}/{task}
 * ?follow=1&tail=N&previous=1, for the API server to relay
 * (`keel logs`). The server relays with the node's log key as bearer
 * token, never its caller's (server/logkey.c says why); the agent accepts
 * that and nothing else: the key of one of its nodes, compared in
 * constant time. It reads its nodes' keys with its own token (GET
 * /apis/keel/v1/nodes/NAME/logkey: the node itself or an admin may) at
 * start, and again when a request presents a key it does not hold (the
 * server restarted: new keys), at most once a second: a request that
 * comes sooner waits for that second to pass, so a stream of wrong keys
 * costs the server one read per node per second, and a right one is
 * never refused because a wrong one came just before.
 *
 * A follow stream is a pipe fed by a thread that runs the runtime's
 * logs(follow); MHD reads the other end, so a slow reader throttles the
 * writer and a reader that goes away ends it (EPIPE). MHD runs a thread
 * per connection for that reason (a blocking pipe read would stall a
 * shared pool), bounded by a connection limit.
 *
 * Idle sockets must not use up that limit: each connection has until
 * REQUEST_TIMEOUT_MS to send its whole request, or is shut down — the API
 * server's deadline (server/conns.h), absolute from accept, not reset by
 * a trickle of bytes, and stopped once the request is in, so a quiet
 * follow stream is never cut. MHD's own CONNECTION_TIMEOUT stays 0: it is
 * an idle timeout and would end quiet follows.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "api/kind.h"
#include "client/client.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "server/conns.h"

#define MAX_LOG_CONNECTIONS 1024
#define REQUEST_TIMEOUT_MS  10000 /* the API server sends its request at once */
#define MAX_LOG_BYTES       (8 << 20)

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *reason,
                             const char *msg)
{
	_cleanup_json_ json_t *st =
	    json_pack("{s:s, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion", "v1", "status",
	              "Failure", "reason", reason, "code", (int)code);
	json_object_set_new(st, "message", json_string(msg));
	_cleanup_free_ char *body = json_dumps(st, JSON_COMPACT);
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

struct follow {
	struct agent *a;
	char *id;
	struct rt_log_opts o;
	int fd;
};

static int to_pipe(void *ctx, const char *data, size_t len)
{
	struct follow *f = ctx;
	while (len > 0) {
		ssize_t w = write(f->fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 1; /* the reader went away */
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

static void *follow_thread(void *arg)
{
	struct follow *f = arg;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (f->a->rt->ops->logs(f->a->rt, f->id, &f->o, to_pipe, f, &err) < 0)
		log_debug("agent: log stream of %s ended: %s", f->id, kerr_msg(&err));
	close(f->fd);
	free(f->id);
	free(f);
	return NULL;
}

static int to_sbuf(void *ctx, const char *data, size_t len)
{
	struct sbuf *b = ctx;
	if (b->len + len > MAX_LOG_BYTES)
		return 1;
	sbuf_append(b, data, len);
	return 0;
}

static enum MHD_Result serve(struct agent *a, struct MHD_Connection *conn, const char *id,
                             const struct rt_log_opts *o)
{
	if (!o->follow) {
		_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (a->rt->ops->logs(a->rt, id, o, to_sbuf, &b, &err) < 0)
			return reply(conn, err.code == ENOENT ? 404 : 500,
			             err.code == ENOENT ? "NotFound" : "InternalError",
			             kerr_msg(&err));
		struct MHD_Response *r = MHD_create_response_from_buffer(
		    b.len, b.data ? b.data : (char *)"", MHD_RESPMEM_MUST_COPY);
		MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
		enum MHD_Result ret = MHD_queue_response(conn, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return reply(conn, 500, "InternalError", "cannot create a pipe");
	struct follow *f = xcalloc(1, sizeof(*f));
	*f = (struct follow){a, xstrdup(id), *o, p[1]};
	pthread_t th;
	if (pthread_create(&th, NULL, follow_thread, f) != 0) {
		close(p[0]), close(p[1]);
		free(f->id), free(f);
		return reply(conn, 500, "InternalError", "cannot start a log stream");
	}
	pthread_detach(th);
	struct MHD_Response *r = MHD_create_response_from_pipe(p[0]);
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static bool query_flag(struct MHD_Connection *conn, const char *k)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, k);
	return v && (streq(v, "1") || streq(v, "true") || !*v);
}

#define KEY_REREAD_MS 1000

/* Reads every node's log key from the API server into a->log_keys (a
 * node whose read fails keeps the key it had). Takes key_mu. */
static void read_keys(struct agent *a)
{
	_cleanup_client_ struct client *c = agent_client(a);
	for (size_t i = 0; i < a->nnodes; i++) {
		_cleanup_free_ char *path =
		    client_path(api_kind_by_plural("nodes"), NULL, a->nodes[i].name, "logkey");
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		struct client_response resp = {0};
		const char *k = NULL;
		if (client_request(c, "GET", path, NULL, NULL, &resp, &err) == 0)
			k = json_string_value(json_object_get(resp.body, "key"));
		if (!k || !*k)
			log_warn("agent: cannot read the log key of node %s: %s", a->nodes[i].name,
			         kerr_msg(&err)[0] ? kerr_msg(&err) : "no key in the answer");
		pthread_mutex_lock(&a->key_mu);
		if (k && *k) {
			free(a->log_keys[i]);
			a->log_keys[i] = xstrdup(k);
		}
		pthread_mutex_unlock(&a->key_mu);
		client_response_clear(&resp);
	}
	pthread_mutex_lock(&a->key_mu);
	a->keys_read_ms = time_mono_ms();
	pthread_mutex_unlock(&a->key_mu);
}

/* Compares two strings in time independent of where they differ (the
 * length of the presented one aside). */
static bool ct_streq(const char *x, const char *y)
{
	size_t n = strlen(x), m = strlen(y);
	unsigned char diff = n != m;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(x[i] ^ y[i % (m ? m : 1)]);
	return m && diff == 0;
}

/* Whether key is one of our nodes' log keys (under key_mu). */
static bool key_held(struct agent *a, const char *key)
{
	bool ok = false;
	for (size_t i = 0; i < a->nnodes; i++)
		ok |= a->log_keys[i] && ct_streq(key, a->log_keys[i]);
	return ok;
}

/* See the top: one of our nodes' log keys, and nothing else. A key we
 * do not hold makes us read ours again; within KEY_REREAD_MS of the last
 * read, after waiting out the rest of it (a wrong key moments before must
 * not make the server's first request after its restart fail). */
static bool log_reader_ok(struct agent *a, const char *authz)
{
	if (!authz || strncasecmp(authz, "Bearer ", 7) != 0 || !authz[7])
		return false;
	const char *key = authz + 7;
	pthread_mutex_lock(&a->key_mu);
	bool ok = key_held(a, key);
	int64_t wait = a->keys_read_ms + KEY_REREAD_MS - time_mono_ms();
	pthread_mutex_unlock(&a->key_mu);
	if (ok)
		return true;
	if (wait > 0) {
		struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_lock(&a->key_mu);
	ok = key_held(a, key); /* another request may have read them meanwhile */
	bool reread = !ok && time_mono_ms() - a->keys_read_ms >= KEY_REREAD_MS;
	if (reread)
		a->keys_read_ms = time_mono_ms(); /* one reader at a time */
	pthread_mutex_unlock(&a->key_mu);
	if (!reread)
		return ok;
	read_keys(a);
	pthread_mutex_lock(&a->key_mu);
	ok = key_held(a, key);
	pthread_mutex_unlock(&a->key_mu);
	return ok;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
	(void)version, (void)upload, (void)upload_size;
	struct agent *a = cls;
	if (!*con_cls) { /* answer after the (empty) body */
		*con_cls = (void *)1;
		return MHD_YES;
	}
	srv_conns_received(conn); /* the request is in: no deadline while answering */
	if (!streq(method, "GET"))
		return reply(conn, 405, "MethodNotAllowed", "only GET is served here");
	const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	if (!log_reader_ok(a, authz))
		return reply(conn, 401, "Unauthorized",
		             "Unauthorized: the bearer token must be this node's log key "
		             "(the API server's GET nodes/NAME/logkey)");
	char ns[256], name[256];
	if (sscanf(url, "/logs/%255[^/]/%255[^/?]", ns, name) != 2)
		return reply(conn, 404, "NotFound", "no such path (want /logs/NAMESPACE/TASK)");
	struct rt_log_opts o = {.follow = query_flag(conn, "follow"),
	                        .tail = -1,
	                        .previous = query_flag(conn, "previous")};
	const char *tail = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "tail");
	if (tail) {
		char *end = NULL;
		o.tail = strtol(tail, &end, 10);
		if (!*tail || *end || o.tail < 0)
			return reply(conn, 400, "BadRequest", "invalid tail (want a number >= 0)");
	}
	_cleanup_free_ char *key = xasprintf("%s/%s", ns, name);
	_cleanup_free_ char *id = NULL;
	pthread_mutex_lock(&a->mu);
	json_t *e = json_object_get(a->logs_index, key);
	const char *v = json_string_value(json_object_get(e, "id"));
	const char *why = json_string_value(json_object_get(e, "notStarted"));
	id = v ? xstrdup(v) : NULL;
	_cleanup_free_ char *m = id ? NULL
	                         : why ? xasprintf("task %s never started: %s", key, why)
	                               : xasprintf("task %s has no container on this node", key);
	pthread_mutex_unlock(&a->mu);
	if (!id)
		return reply(conn, 404, "NotFound", m);
	return serve(a, conn, id, &o); /* previous: the runtime reads the attempt before id's */
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)con_cls, (void)toe;
	srv_conns_next(conn); /* a keep-alive connection's next request has a deadline too */
}

int agent_logsrv_start(struct agent *a, struct kerr *err)
{
	signal(SIGPIPE, SIG_IGN);
	a->log_keys = xcalloc(a->nnodes, sizeof(*a->log_keys));
	read_keys(a);
	_cleanup_free_ char *host = xstrdup(a->o->log_listen);
	char *colon = strrchr(host, ':');
	unsigned port = (unsigned)atoi(colon + 1);
	*colon = '\0';
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, *host ? host : "0.0.0.0", &sa.sin_addr) != 1)
		return kerr_set(err, EINVAL, "--log-listen: \"%s\" is not an IPv4 address", host);
	/* more than the MHD limit: MHD refuses those itself, srv_conns only times out */
	struct srv_conns_opts co = {.max_connections = (size_t)MAX_LOG_CONNECTIONS + 1,
	                            .request_timeout_ms = REQUEST_TIMEOUT_MS};
	a->conns = srv_conns_new(&co, NULL);
	a->mhd = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, access_cb, a, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)MAX_LOG_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, 0u,
	    MHD_OPTION_NOTIFY_CONNECTION, srv_conns_notify, a->conns, MHD_OPTION_NOTIFY_COMPLETED,
	    completed, a, MHD_OPTION_END);
	if (!a->mhd) {
		srv_conns_free(a->conns);
		a->conns = NULL;
		return kerr_set(err, EADDRINUSE, "cannot listen on %s for logs", a->o->log_listen);
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = di ? di->port : port;
	const char *adv = streq(host, "0.0.0.0") || !*host ? a->address : host;
	a->log_endpoint = xasprintf("http://%s:%u", adv, bound);
	return 0;
}

void agent_logsrv_stop(struct agent *a)
{
	if (a->mhd)
		MHD_stop_daemon(a->mhd);
	a->mhd = NULL;
	srv_conns_free(a->conns); /* after MHD: see server/conns.h */
	a->conns = NULL;
}
