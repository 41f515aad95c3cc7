/*
 * server/server — `keel server`: flags, startup, the MHD daemon, and a
 * clean shutdown on SIGINT/SIGTERM.
 *
 * Startup order matters: the store is opened first (a locked data
 * directory is the most likely failure and must not leave a half-started
 * server), then the default Namespace and the tokens, then the watch hub and
 * the token set are hooked to the store, then the minted tokens are read
 * from it (after the hook: no change in between is missed), and only then
 * does the socket accept. Shutdown runs
 * the other way: stop accepting, end the watch streams (MHD forbids
 * stopping with suspended connections), stop MHD, close the store.
 *
 * The listening socket is ours, not MHD's, so that bind errors carry a
 * clear message and port 0 can be resolved with getsockname.
 */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/validate.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "server/auth.h"
#include "server/conns.h"
#include "server/etcdhealth.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/objects.h"
#include "server/tls.h"
#include "server/watch.h"
#include "server/write.h"
#include "store/store.h"

static struct server_hooks hooks;

void server_set_hooks(const struct server_hooks *h)
{
	hooks = h ? *h : (struct server_hooks){0};
}

static int mkdir_p(const char *path, struct kerr *err)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return kerr_set(err, errno, "cannot create %s: %s", p, strerror(errno));
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return kerr_set(err, errno, "cannot create %s: %s", p, strerror(errno));
	return 0;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int ensure_default_ns(void *ctx, json_t *current, uint64_t rev, json_t **next,
                             struct kerr *err)
{
	(void)rev;
	(void)err;
	if (current)
		return STORE_NOOP;
	*next = json_incref(ctx);
	return STORE_WRITE;
}

static int create_default_namespace(struct store *s, struct kerr *err)
{
	const struct api_kind *k = api_kind_by_plural("namespaces");
	_cleanup_json_ json_t *ns =
	    json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", API_GROUP_VERSION, "kind", "Namespace",
	              "metadata", "name", "default");
	api_default(k, ns);
	srv_obj_init_created(ns);
	srv_obj_init_status(k, ns);
	_cleanup_free_ char *key = store_key("namespaces", NULL, "default");
	int rc = store_update(s, key, ensure_default_ns, ns, NULL, NULL, err);
	return rc < 0 ? kerr_prefix(err, "cannot create namespace \"default\"") : 0;
}

static int open_listener(const char *host, unsigned port, unsigned *bound, int *family,
                         struct kerr *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char ps[8];
	snprintf(ps, sizeof ps, "%u", port);
	int g = getaddrinfo(host, ps, &hints, &ai);
	if (g != 0)
		return kerr_set(err, EINVAL, "cannot resolve listen address %s: %s", host,
		                gai_strerror(g));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return kerr_set(err, e, "cannot listen on %s:%u: %s", host, port, strerror(e));
	}
	*family = ai->ai_family;
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                        : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static char *make_url(const char *host, unsigned port, bool tls)
{
	const char *scheme = tls ? "https" : "http";
	if (streq(host, "0.0.0.0") || !*host)
		host = "127.0.0.1";
	if (streq(host, "::"))
		host = "::1";
	if (strchr(host, ':'))
		return xasprintf("%s://[%s]:%u", scheme, host, port);
	return xasprintf("%s://%s:%u", scheme, host, port);
}

static int write_config(const char *dir, const char *url, const char *token, const char *ca,
                        struct kerr *err)
{
	_cleanup_json_ json_t *cfg = json_pack("{s:s}", "server", url);
	if (token)
		json_object_set_new(cfg, "token", json_string(token));
	if (ca)
		json_object_set_new(cfg, "ca", json_string(ca));
	_cleanup_free_ char *text = json_dumps(cfg, JSON_INDENT(2));
	_cleanup_free_ char *path = xasprintf("%s/config", dir);
	_cleanup_free_ char *data = xasprintf("%s\n", text);
	return file_write_atomic(path, data, strlen(data), 0600, err);
}

/* Connections past --max-connections are answered 503 by http.c; MHD's own
 * limit, set this much higher, is the backstop that closes them unanswered
 * (and logs "Server reached connection limit", which we count). MHD splits
 * its limit between the pool's threads, hence the per-thread share. */
#define CONN_SLACK_PER_THREAD 32

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct server *srv = cls;
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	size_t n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* MHD 0.9.75's words for what it refuses without asking us: connections
	 * past its backstop limit, and request lines or headers past the
	 * memory pool (its own 431 or 414, with an HTML body) */
	if (strstr(msg, "reached connection limit"))
		srv_metrics_limit(srv->metrics, SRV_LIMIT_CONNECTIONS);
	else if (strstr(msg, "response code is 431") || strstr(msg, "response code is 414"))
		srv_metrics_limit(srv->metrics, SRV_LIMIT_HEADERS);
	/* what a client going away looks like (a watch closed mid-stream, a TLS
	 * handshake the client gave up on): theirs, not ours to warn about */
	if (strstr(msg, "Failed to send the chunked response body") ||
	    strstr(msg, "handshake") || strstr(msg, "Error: The TLS connection was non-properly"))
		log_debug("http: %s", msg);
	else
		log_warn("http: %s", msg);
}

/* MHD holds the request line and headers in the connection's memory pool,
 * whose first half is the read buffer; it must leave room past
 * --max-header-bytes for http.c to see them and answer 431 itself; beyond
 * the pool MHD answers its own 431. No bigger than that: MHD 0.9.75 zeroes
 * the whole pool at the end of every request (a 256 KiB pool was 14% of the
 * server's CPU time under small creates), and the body and the response do
 * not need it (a body is handed over as it is read; a response is sent
 * from its own buffer). */
static size_t mhd_memory_limit(const struct srv_opts *o)
{
	size_t want = 2 * o->max_header_bytes + ((size_t)16 << 10);
	return want > ((size_t)32 << 10) ? want : (size_t)32 << 10;
}

static struct MHD_Daemon *start_mhd(struct server *srv, int fd, int family)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* HTTPS: srv_tls_prepare checked the pair; MHD copies neither string */
	struct MHD_OptionItem tls[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->opts.tls_cert_pem},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->opts.tls_key_pem},
	    {MHD_OPTION_END, 0, NULL}};
	if (srv->opts.tls_cert_pem)
		flags |= MHD_USE_TLS;
	else
		tls[0].option = MHD_OPTION_END;
	unsigned conn_limit = (unsigned)(srv->opts.max_connections +
	                                 CONN_SLACK_PER_THREAD * (size_t)srv->opts.threads);
	return MHD_start_daemon(
	    flags, 0, NULL, NULL, srv_http_access, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, srv,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)srv->opts.threads, MHD_OPTION_NOTIFY_COMPLETED, srv_http_completed, srv,
	    MHD_OPTION_URI_LOG_CALLBACK, srv_http_uri_log, srv, MHD_OPTION_NOTIFY_CONNECTION,
	    srv_conns_notify, srv->conns, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(srv->opts.idle_timeout_ms / 1000),
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, mhd_memory_limit(&srv->opts), MHD_OPTION_ARRAY, tls,
	    MHD_OPTION_END);
}

static int load_auth(struct server *srv, struct kerr *err)
{
	return srv->opts.token_file ? srv_auth_load(srv->opts.token_file, &srv->auth, err)
	                            : srv_auth_admin_token(srv->opts.data_dir, &srv->auth, err);
}

/* A restart with a --store-size under what the store holds starts (reads
 * and deletes work), but say so: the writes that grow it will be 507s. */
static void warn_if_over_quota(struct store *st)
{
	struct store_stats ss;
	store_get_stats(st, &ss);
	if (ss.map_used <= ss.map_size)
		return;
	_cleanup_free_ char *q = srv_format_size((size_t)ss.map_size);
	log_warn("the store holds %" PRIu64 " bytes, more than --store-size %s (%" PRIu64
	         " bytes): writes that grow it get 507 InsufficientStorage until objects are "
	         "deleted or the server restarts with a larger --store-size",
	         ss.map_used, q, ss.map_size);
}

/* With --store etcd, waits (--etcd-wait) until an endpoint reports a
 * healthy cluster, then opens the store on it: a server that cannot reach
 * its store refuses to start, with every endpoint's reason, rather than
 * serving 503s (it is systemd's job to try again). The data directory
 * still holds the tokens, DATA/config and DATA/tls, not the objects. */
static int open_store(struct server *srv, struct kerr *err)
{
	struct store_options so = {.map_size = srv->opts.store_max_bytes,
	                           .history = srv->opts.history,
	                           .max_object = srv->opts.max_object};
	if (srv->opts.store_backend == SRV_STORE_ETCD) {
		if (srv_etcdh_start(srv->opts.etcd_endpoints, srv->opts.etcd_wait_ms, &srv->etcdh,
		                    err) < 0)
			return kerr_prefix(err, "--store etcd");
		so.etcd_endpoints = srv->opts.etcd_endpoints;
		so.etcd_prefix = srv->opts.etcd_prefix;
		int rc = store_open(srv->opts.data_dir, &so, &srv->store, err);
		if (rc < 0)
			return kerr_prefix(err, "cannot open the store on etcd %s (prefix %s)",
			                   srv->opts.etcd_endpoints, srv->opts.etcd_prefix);
		srv_etcdh_set_store(srv->etcdh, srv->store);
		return 0;
	}
	int rc = store_open(srv->opts.data_dir, &so, &srv->store, err);
	if (rc < 0)
		return kerr_prefix(err, "cannot open the store in %s", srv->opts.data_dir);
	return 0;
}

/* The store's one commit hook: the minted tokens' set, then the watch hub
 * (both quick). */
static void commit_hook(void *ctx, const struct store_event *ev)
{
	struct server *srv = ctx;
	srv_auth_commit_hook(srv->auth, ev);
	srv_hub_commit_hook(srv->hub, ev);
}

/* A token revoked on another server: what its user has open here ends. */
static void end_user(void *ud, const char *name)
{
	struct server *srv = ud;
	srv_hub_end_user(srv->hub, name);
}

/* Opens the store, the tokens and the hub. */
static int server_open(struct server *srv, struct kerr *err)
{
	if (mkdir_p(srv->opts.data_dir, err) < 0)
		return -err->code;
	int rc = open_store(srv, err);
	if (rc < 0)
		return rc;
	warn_if_over_quota(srv->store);
	if ((rc = create_default_namespace(srv->store, err)) < 0 ||
	    (rc = load_auth(srv, err)) < 0 ||
	    (rc = srv_auth_add_in_process(srv->auth, &srv->in_process_token, err)) < 0)
		return rc;
	struct srv_hub_opts ho = {.bookmark_ms = srv->opts.bookmark_ms,
	                          .max_watchers = srv->opts.max_watchers,
	                          .max_per_client = srv->opts.max_watchers_per_client};
	srv->hub = srv_hub_new(srv->store, &ho);
	store_set_commit_hook(srv->store, commit_hook, srv);
	if ((rc = srv_auth_on_revoke(srv->auth, end_user, srv, err)) < 0 ||
	    (rc = srv_auth_use_store(srv->auth, srv->store, err)) < 0)
		return rc;
	for (size_t i = 0; i < srv_auth_nwarnings(srv->auth); i++)
		log_warn("%s", srv_auth_warning(srv->auth, i));
	srv->metrics = srv_metrics_new();
	if (!srv->opts.max_connections)
		srv->opts.max_connections = srv->opts.max_watchers + 1024;
	struct srv_conns_opts co = {.max_connections = srv->opts.max_connections,
	                            .request_timeout_ms = srv->opts.request_timeout_ms,
	                            .idle_timeout_ms = srv->opts.idle_timeout_ms,
	                            /* the 408 is written raw to the socket, which
	                             * would corrupt a TLS stream: those are just closed */
	                            .answer_timeouts = !srv->opts.tls_cert_pem};
	srv->conns = srv_conns_new(&co, srv->metrics);
	return 0;
}

static void server_close(struct server *srv)
{
	if (srv->mhd) {
		MHD_socket lfd = MHD_quiesce_daemon(srv->mhd);
		srv_hub_stop(srv->hub);
		for (int i = 0; i < 300 && srv_hub_watchers(srv->hub) > 0; i++)
			usleep(10000);
		/* Submitted writes hold suspended connections, which MHD must
		 * not be stopped with. From now on a write waits on its thread
		 * instead (write.c); those already suspended are answered, as
		 * the store's writer still runs. */
		atomic_store(&srv->stopping, true);
		while (srv_write_pending(srv) > 0)
			usleep(1000);
		/* waits for the requests in flight: their writes commit first */
		MHD_stop_daemon(srv->mhd);
		if (lfd != MHD_INVALID_SOCKET)
			close(lfd);
		srv->mhd = NULL;
	}
	if (srv->store)
		store_set_commit_hook(srv->store, NULL, NULL);
	srv_auth_stop_revokes(srv->auth);
	srv_hub_free(srv->hub);
	srv_conns_free(srv->conns);
	srv_etcdh_stop(srv->etcdh); /* before the store it tells (srv_etcdh_set_store) */
	srv->etcdh = NULL;
	store_close(srv->store);
	srv_auth_free(srv->auth);
	srv_metrics_free(srv->metrics);
	pthread_mutex_destroy(&srv->metrics_mu);
	srv_opts_free(&srv->opts);
	free(srv->url);
}

/* Binds, starts MHD and writes DATA/config. */
static int serve(struct server *srv, struct kerr *err)
{
	unsigned port = 0;
	int family = AF_INET;
	bool tls = srv->opts.tls_cert_pem != NULL;
	if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return kerr_set(err, ENOTSUP,
		                "this libmicrohttpd is built without TLS: --tls-cert and --tls cannot "
		                "be served (install Debian's libmicrohttpd12, which has GnuTLS)");
	int fd = open_listener(srv->opts.listen_host, srv->opts.listen_port, &port, &family, err);
	if (fd < 0)
		return fd;
	srv->mhd = start_mhd(srv, fd, family);
	if (!srv->mhd) {
		close(fd);
		return kerr_set(err, EIO, "cannot start the HTTP server on %s:%u",
		                srv->opts.listen_host, port);
	}
	srv->url = make_url(srv->opts.listen_host, port, tls);
	if (write_config(srv->opts.data_dir, srv->url, srv_auth_admin(srv->auth),
	                 srv->opts.tls_ca_file, err) < 0)
		return kerr_prefix(err, "cannot write %s/config", srv->opts.data_dir);
	atomic_store(&srv->ready, true);
	return 0;
}

int server_start(struct srv_opts *o, struct server **out, struct kerr *err)
{
	struct server *srv = xcalloc(1, sizeof(*srv));
	pthread_mutex_init(&srv->metrics_mu, NULL);
	srv->opts = *o;
	memset(o, 0, sizeof(*o));
	int rc = srv_tls_prepare(&srv->opts, err);
	if (rc == 0)
		rc = server_open(srv, err);
	if (rc == 0)
		rc = serve(srv, err);
	if (rc < 0) {
		server_close(srv);
		free(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

void server_stop(struct server *srv)
{
	if (!srv)
		return;
	atomic_store(&srv->ready, false);
	server_close(srv);
	free(srv);
}

const char *server_url(const struct server *srv)
{
	return srv->url;
}

const char *server_admin_token(const struct server *srv)
{
	return srv_auth_admin(srv->auth);
}

const char *server_in_process_token(const struct server *srv)
{
	return srv->in_process_token;
}

const char *server_data_dir(const struct server *srv)
{
	return srv->opts.data_dir;
}

const char *server_ca_file(const struct server *srv)
{
	return srv->opts.tls_ca_file;
}

uint64_t server_revision(const struct server *srv)
{
	return store_revision(srv->store);
}

int server_main(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct srv_opts opts;
	srv_opts_init(&opts);
	if (srv_opts_parse(&opts, argc, argv, &err) < 0) {
		fprintf(stderr, "keel server: %s\n", kerr_msg(&err));
		srv_opts_free(&opts);
		return 2;
	}
	if (opts.help) {
		fputs(srv_opts_usage(), stdout);
		srv_opts_free(&opts);
		return 0;
	}
	/* TLS files and the listen address are checked before anything starts:
	 * a mistake there is a usage error */
	if (srv_tls_prepare(&opts, &err) < 0) {
		fprintf(stderr, "keel server: %s\n", kerr_msg(&err));
		srv_opts_free(&opts);
		return 2;
	}
	log_set_level((enum log_level)opts.log_level);
	log_set_json(opts.log_json);
	bool tls_warn = false;
	_cleanup_free_ char *tls_note = srv_tls_describe(&opts, &tls_warn);
	if (tls_note)
		log_msg(tls_warn ? LOG_WARN : LOG_INFO, "%s", tls_note);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	/* before any thread starts, so that every thread inherits the mask and
	 * the signals reach sigwait below */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct server *srv = NULL;
	int rc = server_start(&opts, &srv, &err);
	if (rc == 0 && hooks.started &&
	    hooks.started(hooks.ud, server_url(srv), server_in_process_token(srv),
	                  server_ca_file(srv), server_data_dir(srv), &err) < 0)
		rc = -err.code;
	if (rc == 0) {
		printf("keel server listening on %s (data dir %s)\n", server_url(srv),
		       server_data_dir(srv));
		fflush(stdout);
		if (srv->opts.store_backend == SRV_STORE_ETCD)
			log_info(
			    "listening on %s, data dir %s, store etcd %s prefix %s, revision %llu",
			    server_url(srv), server_data_dir(srv), srv->opts.etcd_endpoints,
			    srv->opts.etcd_prefix, (unsigned long long)server_revision(srv));
		else
			log_info("listening on %s, data dir %s, revision %llu", server_url(srv),
			         server_data_dir(srv), (unsigned long long)server_revision(srv));
		int sig = 0;
		sigwait(&set, &sig);
		log_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
		if (hooks.stopping)
			hooks.stopping(hooks.ud);
	}
	if (rc < 0)
		fprintf(stderr, "keel server: %s\n", kerr_msg(&err));
	server_stop(srv);
	if (hooks.stopped)
		hooks.stopped(hooks.ud);
	if (rc == 0)
		log_info("stopped cleanly");
	return rc < 0 ? 1 : 0;
}

void server_set_metrics_source(struct server *srv, void (*render)(void *ud, struct sbuf *out),
                               void *ud)
{
	pthread_mutex_lock(&srv->metrics_mu);
	srv->metrics_source = render;
	srv->metrics_ud = ud;
	pthread_mutex_unlock(&srv->metrics_mu);
}
