/*
 * cli_up — `keel up`: the whole of keel in one process, for a laptop or a
 * single box: the API server with its LMDB store (server_start), every
 * controller on its own threads (controller_manager_start, exactly as
 * `keel server` runs them), and one agent for this machine (agent_start),
 * each through its library entry point, talking to one another over the
 * loopback HTTP API as separate processes would. Nothing is forked.
 *
 * Signals: SIGINT and SIGTERM are blocked before the first thread starts,
 * so every thread inherits the mask and the one sigwait here receives
 * them; a second one during the shutdown exits at once. Shutdown runs the
 * start in reverse: manifests, agent (its tasks keep running unless
 * --stop-tasks-on-exit), controllers, server (in-flight writes commit,
 * watches end), then the agent's watch thread is joined.
 *
 * The runtime is docker when a Docker engine answers on its socket, else
 * process (cli_up_runtime, pure). The CLI finds the server through the
 * user's config file, which `keel up` writes unless it belongs to someone
 * else (cli_up_config_action, pure; the rule is in the README).
 *
 * --tls serves HTTPS with the self-signed pair in DATA/tls/ (server/tls.h;
 * --tls-cert/--tls-key with one's own), and every client of this process
 * — controllers, agent, sync, and the CLI through the config written —
 * trusts that certificate. The server's options are made and checked
 * (srv_tls_prepare) before anything starts, so that a bad file or a plain
 * HTTP --listen off loopback is a usage error.
 *
 * -f DIR is kept in sync as `keel sync DIR` keeps it (src/sync/sync.h):
 * the same loop on a thread of its own, with its own client, started once
 * the agent runs (up_manifests_start) and stopped first at shutdown.
 */
#include "cli/cli_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/runtime.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "controllers/controller.h"
#include "controllers/leader.h"
#include "server/opts.h"
#include "server/server.h"
#include "server/tls.h"
#include "client/client.h"
#include "sync/sync.h"

#define UP_WRITTEN_BY "keel up"

struct up_flags {
	const char *file;
	const char *data_dir;
	const char *listen;
	const char *runtime;
	const char *name;
	const char *docker_socket;
	bool stop_tasks;
	bool no_user_config;
	const char *interval; /* -f DIR's full re-apply period */
	bool tls;             /* the self-signed pair in DATA/tls/ */
	const char *tls_cert, *tls_key;
	bool insecure_listen;
	const char *limits[13]; /* the server's limit and store flags, up_limit_flags order */
};

/* keel server's limit and store flags, which keel up passes to its server
 * as given, in one srv_opts_parse call (it checks them, together: --store
 * etcd needs --etcd-endpoints, and names them in its messages). */
static const char *const up_limit_flags[] = {"max-body",        "max-object",
                                             "max-watchers",    "max-watchers-per-client",
                                             "max-connections", "max-header-bytes",
                                             "request-timeout", "idle-timeout",
                                             "store-size",      "store",
                                             "etcd-endpoints",  "etcd-prefix",
                                             "etcd-wait"};
_Static_assert(ARRAY_SIZE(up_limit_flags) == ARRAY_SIZE(((struct up_flags *)0)->limits),
               "one up_flags.limits slot per limit flag");

/* ---- pure parts (unit-tested) ------------------------------------------ */

int cli_up_runtime(const char *flag, const char *socket, bool docker_answers,
                   const char **runtime, char **why, struct kerr *err)
{
	const char *sock = socket && *socket ? socket : "/var/run/docker.sock";
	if (flag && streq(flag, "process")) {
		*runtime = "process";
		*why = xstrdup("--runtime process was given (the image is ignored: the command must "
		               "exist on this machine)");
		return 0;
	}
	if (flag && *flag && !streq(flag, "docker"))
		return kerr_set(err, EINVAL, "--runtime: unknown runtime \"%s\" (docker or process)",
		                flag);
	if (flag && *flag) {
		if (!docker_answers)
			return kerr_set(err, ECONNREFUSED,
			                "--runtime docker: no Docker engine answers on %s (start "
			                "dockerd, or use --runtime process)",
			                sock);
		*runtime = "docker";
		*why = xasprintf("--runtime docker was given (engine on %s)", sock);
		return 0;
	}
	if (docker_answers) {
		*runtime = "docker";
		*why = xasprintf("a Docker engine answers on %s, so tasks run as containers "
		                 "(--runtime process runs them as host processes)",
		                 sock);
	} else {
		*runtime = "process";
		*why = xasprintf("no Docker engine answers on %s, so tasks run as host processes "
		                 "(the image is ignored: the command must exist on this machine)",
		                 sock);
	}
	return 0;
}

enum cli_up_config_action cli_up_config_action(const char *existing, const char *url)
{
	if (!existing)
		return CLI_UP_CONFIG_WRITE;
	json_error_t jerr;
	_cleanup_json_ json_t *cfg = json_loads(existing, 0, &jerr);
	const char *server = json_string_value(json_object_get(cfg, "server"));
	const char *by = json_string_value(json_object_get(cfg, "writtenBy"));
	if (streq(by, UP_WRITTEN_BY))
		return CLI_UP_CONFIG_WRITE; /* ours from an earlier run: refresh it */
	if (server && streq(server, url))
		return CLI_UP_CONFIG_SAME; /* the user's, and it points here already */
	return CLI_UP_CONFIG_OTHER;
}

/* ---- the user's config file -------------------------------------------- */

static int mkdir_parents(const char *path)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return 0;
}

/* Does a keel server answer /healthz at url (within a second)? ca may be
 * NULL. */
static bool server_answers(const char *url, const char *ca)
{
	struct client_opts co = {
	    .server = url, .timeout_ms = 1000, .connect_timeout_ms = 500, .ca_file = ca};
	struct client *c = NULL;
	if (client_new(&co, &c, NULL) < 0)
		return false;
	struct client_response resp = {0};
	bool ok = client_request(c, "GET", "/healthz", NULL, NULL, &resp, NULL) == 0;
	client_response_clear(&resp);
	client_free(c);
	return ok;
}

/* Writes (or leaves) the user's config file per cli_up_config_action. A
 * file that cannot be read (other than missing) is not ours to replace,
 * nor is one an earlier keel up wrote for a server that still runs. */
static void write_user_config(struct server *srv)
{
	const char *url = server_url(srv), *token = server_admin_token(srv);
	_cleanup_free_ char *path = client_user_config_path();
	_cleanup_free_ char *text = NULL;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	size_t len = 0;
	if (!path)
		return;
	int r = file_read_all(path, 64 * 1024, &text, &len, &err);
	if (r < 0 && r != -ENOENT) {
		log_warn("keel up: %s; left as it is", kerr_msg(&err));
		return;
	}
	enum cli_up_config_action act = cli_up_config_action(r < 0 ? NULL : text, url);
	if (act == CLI_UP_CONFIG_WRITE && r >= 0) {
		_cleanup_json_ json_t *old = json_loads(text, 0, NULL);
		const char *was = json_string_value(json_object_get(old, "server"));
		const char *was_ca = json_string_value(json_object_get(old, "ca"));
		if (was && !streq(was, url) && server_answers(was, was_ca)) {
			log_warn("keel up: %s points at another keel up that is still running (%s); "
			         "left as it is",
			         path, was);
			return;
		}
	}
	if (act == CLI_UP_CONFIG_OTHER)
		log_warn("keel up: %s points at another server; left as it is", path);
	if (act != CLI_UP_CONFIG_WRITE)
		return;
	_cleanup_json_ json_t *cfg = json_pack("{s:s, s:s, s:s}", "server", url, "writtenBy",
	                                       UP_WRITTEN_BY, "dataDir", server_data_dir(srv));
	if (token)
		json_object_set_new(cfg, "token", json_string(token));
	if (server_ca_file(srv))
		json_object_set_new(cfg, "ca", json_string(server_ca_file(srv)));
	_cleanup_free_ char *s = json_dumps(cfg, JSON_INDENT(2));
	_cleanup_free_ char *data = xasprintf("%s\n", s);
	kerr_clear(&err);
	if (mkdir_parents(path) < 0)
		log_warn("keel up: cannot create the directory of %s: %s", path, strerror(errno));
	else if (file_write_atomic(path, data, strlen(data), 0600, &err) < 0)
		log_warn("keel up: cannot write %s: %s", path, kerr_msg(&err));
}

/* Says how the CLI, resolving its config as always, will find this server. */
static void report_cli(struct server *srv)
{
	const char *url = server_url(srv);
	struct client_config cfg = {0};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	bool found = client_config_resolve(NULL, NULL, NULL, NULL, &cfg, &err) == 0 &&
	             streq(cfg.server, url);
	const char *from = err.msg                       ? kerr_msg(&err)
	                   : cfg.config_file               ? cfg.config_file
	                   : streq(cfg.server_from, "env") ? "KEEL_SERVER"
	                                                   : "the default";
	if (found) {
		printf("keel up: the CLI finds this server with no flags (through %s)\n", from);
		printf("keel up: from another user or config, reach it with:  export "
		       "KEEL_CONFIG=%s/config\n",
		       server_data_dir(srv));
	} else {
		printf("keel up: the CLI here would talk to %s (from %s); to reach this server:\n",
		       cfg.server ? cfg.server : "no server", from);
		printf("keel up:     export KEEL_CONFIG=%s/config\n", server_data_dir(srv));
	}
	client_config_clear(&cfg);
}

/* ---- manifests ----------------------------------------------------------- */

/* What -f DIR does while it runs. Today: one `keel apply -R -f DIR` at start;
 * keel sync (issue 5) will run here as a loop instead, and stop in
 * up_manifests_stop. */
struct up_manifests {
	const char *dir;
	struct server *srv; /* serves the sync's counters on /metrics */
	struct client *client;
	struct sync *sync;
	pthread_t thread;
	bool running;
	volatile int stop;
};

static void up_sync_log(void *ud, enum log_level level, const char *line)
{
	(void)ud;
	log_msg(level, "sync: %s", line);
}

static void up_sync_metrics(void *ud, struct sbuf *out)
{
	sync_metrics_render(ud, out);
}

static void *up_sync_main(void *arg)
{
	struct up_manifests *m = arg;
	sync_run(m->sync, &m->stop);
	return NULL;
}

static void up_manifests_stop(struct up_manifests *m)
{
	if (m->srv)
		server_set_metrics_source(m->srv, NULL, NULL);
	m->srv = NULL;
	if (m->running) {
		m->stop = 1;
		pthread_join(m->thread, NULL);
		m->running = false;
	}
	sync_free(m->sync);
	m->sync = NULL;
	client_free(m->client);
	m->client = NULL;
	m->dir = NULL;
}

static int up_manifests_start(struct up_manifests *m, struct server *srv, const char *dir,
                              long interval_ms)
{
	const char *url = server_url(srv), *token = server_in_process_token(srv);
	m->dir = dir;
	if (!dir)
		return 0;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct client_opts co = {.server = url, .token = token, .ca_file = server_ca_file(srv)};
	struct sync_opts so = {.dir = dir,
	                       .interval_ms = interval_ms,
	                       .debounce_ms = 200,
	                       .log = up_sync_log};
	if (client_new(&co, &m->client, &err) < 0 || sync_new(m->client, &so, &m->sync, &err) < 0 ||
	    (errno = pthread_create(&m->thread, NULL, up_sync_main, m)) != 0) {
		log_error("keel up: cannot keep %s in sync: %s", dir,
		          err.code ? kerr_msg(&err) : strerror(errno));
		up_manifests_stop(m);
		return -1;
	}
	m->running = true;
	m->srv = srv;
	server_set_metrics_source(srv, up_sync_metrics, m->sync);
	log_info("keel up: keeping %s in sync as apply set \"%s\" (on every change, and a full "
	         "re-apply every %llds)",
	         dir, sync_set_name(m->sync), (long long)(interval_ms / 1000));
	return 0;
}

/* ---- starting and stopping ----------------------------------------------- */

struct up {
	struct server *srv;
	struct controller_manager *ctl;
	struct agent *agent;
	struct agent_opts aopts;
	struct up_manifests man;
	char *why;
	char *tls_note; /* what --tls did (srv_tls_describe), or NULL */
	bool tls_warn;  /* tls_note is a warning */
};

/* The server's options from keel up's flags, parsed as keel server parses
 * its own (no TLS files read yet: srv_tls_prepare is the caller's); a
 * failure is a usage error. so is the caller's to free. */
static int up_server_opts(const struct up_flags *f, struct srv_opts *so, struct kerr *err)
{
	srv_opts_init(so);
	if (f->data_dir) {
		free(so->data_dir);
		so->data_dir = xstrdup(f->data_dir);
	}
	if (f->listen) {
		char *host = NULL;
		if (srv_parse_listen(f->listen, &host, &so->listen_port, err) < 0)
			return kerr_prefix(err, "--listen");
		free(so->listen_host);
		so->listen_host = host;
	}
	so->tls_self_signed = f->tls;
	so->tls_cert = f->tls_cert ? xstrdup(f->tls_cert) : NULL;
	so->tls_key = f->tls_key ? xstrdup(f->tls_key) : NULL;
	so->insecure_listen = f->insecure_listen;
	char *argv[ARRAY_SIZE(up_limit_flags) + 2] = {"up"};
	int argc = 1;
	for (size_t i = 0; i < ARRAY_SIZE(up_limit_flags); i++)
		if (f->limits[i])
			argv[argc++] = xasprintf("--%s=%s", up_limit_flags[i], f->limits[i]);
	int rc = srv_opts_parse(so, argc, argv, err);
	for (int i = 1; i < argc; i++)
		free(argv[i]);
	return rc < 0 ? -EINVAL : 0;
}

static int start_agent(struct up *u, const struct up_flags *f, const char *runtime,
                       struct kerr *err)
{
	struct agent_opts *o = &u->aopts;
	agent_opts_init(o);
	o->server = xstrdup(server_url(u->srv));
	o->token = xstrdup(server_in_process_token(u->srv));
	o->ca = server_ca_file(u->srv) ? xstrdup(server_ca_file(u->srv)) : NULL;
	o->runtime = streq(runtime, "docker") ? AGENT_RT_DOCKER : AGENT_RT_PROCESS;
	o->runtime_set = true;
	o->name = f->name ? xstrdup(f->name) : NULL;
	o->data_dir = xasprintf("%s/agent", server_data_dir(u->srv));
	o->docker_socket = f->docker_socket ? xstrdup(f->docker_socket) : NULL;
	o->stop_tasks_on_exit = f->stop_tasks;
	o->status_ms = 10000; /* one node: fresher usage for keel top is cheap */
	return agent_start(o, &u->agent, err);
}

static int up_start(struct up *u, const struct up_flags *f, struct srv_opts *so, struct kerr *err)
{
	const char *runtime = NULL;
	bool probe = !(f->runtime && streq(f->runtime, "process"));
	bool answers = probe && rt_docker_available(f->docker_socket);
	if (cli_up_runtime(f->runtime, f->docker_socket, answers, &runtime, &u->why, err) < 0)
		return -err->code;
	if (server_start(so, &u->srv, err) < 0)
		return -err->code;
	struct controller_options co = {0};
	co.client.server = server_url(u->srv);
	co.client.token = server_in_process_token(u->srv);
	co.client.ca_file = server_ca_file(u->srv);
	_cleanup_free_ char *id = leader_identity_of_dir(server_data_dir(u->srv));
	co.identity = id;
	if (controller_manager_start(&co, "all", &u->ctl, err) < 0)
		return kerr_prefix(err, "controllers");
	if (start_agent(u, f, runtime, err) < 0)
		return kerr_prefix(err, "agent");
	return 0;
}

static void up_stop(struct up *u)
{
	up_manifests_stop(&u->man);
	agent_stop(u->agent);
	controller_manager_release(u->ctl); /* while the API answers: leader leases released */
	server_stop(u->srv); /* ends every watch stream: the loops' threads return at once */
	controller_manager_stop(u->ctl);
	agent_free(u->agent, 5000);
	agent_opts_free(&u->aopts);
	free(u->why);
	free(u->tls_note);
}

static void banner(struct up *u, const struct up_flags *f)
{
	printf("keel up: API server listening on %s (data dir %s)\n", server_url(u->srv),
	       server_data_dir(u->srv));
	if (u->tls_note)
		printf("keel up: %s%s\n", u->tls_warn ? "warning: " : "", u->tls_note);
	printf("keel up: node %s runs tasks with the %s runtime: %s\n", agent_node_name(u->agent),
	       agent_runtime_name(u->agent), u->why);
	if (!f->no_user_config)
		write_user_config(u->srv);
	report_cli(u->srv);
	printf("keel up: try  keel get nodes;  keel get tasks -A -o wide;  keel top nodes\n");
	printf("keel up: Ctrl-C stops keel; tasks %s\n",
	       f->stop_tasks ? "are stopped too (--stop-tasks-on-exit)"
	                     : "keep running and the next keel up adopts them");
	fflush(stdout);
}

/* A second SIGINT/SIGTERM while shutting down: the user does not want to
 * wait (for a task's grace period, say). */
static void *second_signal(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;
	if (sigwait(set, &sig) == 0) {
		log_warn("keel up: second %s: exiting without finishing the shutdown",
		         sig == SIGINT ? "SIGINT" : "SIGTERM");
		_exit(130); /* on purpose: nothing may wait any longer */
	}
	return NULL;
}

static int run_up(const struct up_flags *f, const struct cli_strv *pos)
{
	if (pos->n > 0) {
		fprintf(stderr, "error: unexpected argument \"%s\"; manifests are given with -f DIR\n",
		        pos->v[0]);
		return CLI_USAGE;
	}
	if (cli_globals.server || cli_globals.token || cli_globals.config) {
		fprintf(stderr, "error: keel up runs its own server: --server, --token and --config "
		                "are for the commands that talk to one (--listen sets its address)\n");
		return CLI_USAGE;
	}
	if (f->interval && cli_duration_ms(f->interval) < 1000) {
		fprintf(stderr, "error: --interval \"%s\": not a duration of 1s or more (30s, 5m)\n",
		        f->interval);
		return CLI_USAGE;
	}
	if (f->interval && !f->file) {
		fprintf(stderr, "error: --interval is for -f DIR (how often DIR is re-applied)\n");
		return CLI_USAGE;
	}
	if (f->runtime && !streq(f->runtime, "docker") && !streq(f->runtime, "process")) {
		fprintf(stderr, "error: --runtime: unknown runtime \"%s\" (docker or process)\n",
		        f->runtime);
		return CLI_USAGE;
	}
	struct srv_opts so;
	_cleanup_kerr_ struct kerr serr = KERR_INIT;
	if (up_server_opts(f, &so, &serr) < 0) {
		srv_opts_free(&so);
		fprintf(stderr, "error: %s\n", kerr_msg(&serr));
		return CLI_USAGE;
	}
	struct stat st;
	if (f->file && stat(f->file, &st) < 0) {
		srv_opts_free(&so);
		fprintf(stderr, "error: -f %s: %s\n", f->file, strerror(errno));
		return CLI_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct up u = {0};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (srv_tls_prepare(&so, &err) < 0) {
		fprintf(stderr, "keel up: %s\n", kerr_msg(&err));
		srv_opts_free(&so);
		return CLI_USAGE;
	}
	u.tls_note = srv_tls_describe(&so, &u.tls_warn);
	int r = up_start(&u, f, &so, &err);
	srv_opts_free(&so);
	if (r < 0) {
		fprintf(stderr, "keel up: %s\n", kerr_msg(&err));
		up_stop(&u);
		return CLI_FAIL;
	}
	banner(&u, f);
	up_manifests_start(&u.man, u.srv, f->file,
	                   f->interval ? cli_duration_ms(f->interval) : 60000);
	int sig = 0;
	sigwait(&set, &sig);
	log_info("keel up: %s: stopping (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
	         f->stop_tasks ? "and stopping the tasks" : "tasks keep running");
	pthread_t th;
	if (pthread_create(&th, NULL, second_signal, &set) == 0)
		pthread_detach(th);
	up_stop(&u);
	log_info("keel up: stopped cleanly");
	return CLI_OK;
}

int cli_cmd_up(int argc, char **argv)
{
	struct up_flags f = {0};
	const struct cli_opt opts[] = {
	    {"filename", 'f', CLI_OPT_STRING, &f.file, "DIR",
	     "keep the cluster equal to the manifests in DIR, as keel sync DIR does"},
	    {"interval", 0, CLI_OPT_STRING, &f.interval, "DURATION",
	     "with -f: a full re-apply this often, putting back what was changed by hand "
	     "(default 60s)"},
	    {"data-dir", 0, CLI_OPT_STRING, &f.data_dir, "DIR",
	     "store and agent state (default as keel server: $KEEL_DATA_DIR, /var/lib/keel for "
	     "root, else ~/.local/share/keel)"},
	    {"listen", 0, CLI_OPT_STRING, &f.listen, "HOST:PORT",
	     "API address (default 127.0.0.1:7700; port 0 picks a free one)"},
	    {"runtime", 0, CLI_OPT_STRING, &f.runtime, "RUNTIME",
	     "docker or process (default: docker when an engine answers, else process)"},
	    {"name", 0, CLI_OPT_STRING, &f.name, "NODE",
	     "this node's name (default: the host name)"},
	    {"docker-socket", 0, CLI_OPT_STRING, &f.docker_socket, "PATH",
	     "Docker engine socket (default /var/run/docker.sock)"},
	    {"stop-tasks-on-exit", 0, CLI_OPT_BOOL, &f.stop_tasks, NULL,
	     "stop and remove this node's tasks when keel up stops (default: they keep running)"},
	    {"no-user-config", 0, CLI_OPT_BOOL, &f.no_user_config, NULL,
	     "do not write ~/.config/keel/config (the CLI's default config file)"},
	    {"tls", 0, CLI_OPT_BOOL, &f.tls, NULL,
	     "serve HTTPS with a self-signed certificate made (once) in DATA/tls/; the config "
	     "written trusts it"},
	    {"tls-cert", 0, CLI_OPT_STRING, &f.tls_cert, "FILE",
	     "serve HTTPS with this PEM certificate (with --tls-key)"},
	    {"tls-key", 0, CLI_OPT_STRING, &f.tls_key, "FILE", "the certificate's PEM private key"},
	    {"insecure-listen", 0, CLI_OPT_BOOL, &f.insecure_listen, NULL,
	     "allow plain HTTP on a --listen address that is not loopback"},
	    {"max-body", 0, CLI_OPT_STRING, &f.limits[0], "SIZE",
	     "the server's limits, as keel server's: request body (default 3Mi)"},
	    {"max-object", 0, CLI_OPT_STRING, &f.limits[1], "SIZE",
	     "stored object (default 1536Ki)"},
	    {"max-watchers", 0, CLI_OPT_STRING, &f.limits[2], "N", "watch streams (default 10000)"},
	    {"max-watchers-per-client", 0, CLI_OPT_STRING, &f.limits[3], "N",
	     "watch streams per token user name (default 2000)"},
	    {"max-connections", 0, CLI_OPT_STRING, &f.limits[4], "N",
	     "HTTP connections (default --max-watchers + 1024)"},
	    {"max-header-bytes", 0, CLI_OPT_STRING, &f.limits[5], "SIZE",
	     "request line and headers (default 64Ki)"},
	    {"request-timeout", 0, CLI_OPT_STRING, &f.limits[6], "DURATION",
	     "time to receive a connection's first request (default 30s)"},
	    {"idle-timeout", 0, CLI_OPT_STRING, &f.limits[7], "DURATION",
	     "close a kept-alive connection without a request (default 300s)"},
	    {"store-size", 0, CLI_OPT_STRING, &f.limits[8], "SIZE",
	     "the store's quota; a full store answers 507 (default 8Gi)"},
	    {"store", 0, CLI_OPT_STRING, &f.limits[9], "BACKEND",
	     "lmdb (default, in the data directory) or etcd"},
	    {"etcd-endpoints", 0, CLI_OPT_STRING, &f.limits[10], "URLS",
	     "with --store etcd: http://HOST:PORT[,...]"},
	    {"etcd-prefix", 0, CLI_OPT_STRING, &f.limits[11], "PREFIX",
	     "key prefix in etcd (default /keel/)"},
	    {"etcd-wait", 0, CLI_OPT_STRING, &f.limits[12], "DURATION",
	     "wait this long at start for etcd to answer (default 10s)"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("up", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_up(&f, &pos);
	cli_strv_free(&pos);
	return code;
}
