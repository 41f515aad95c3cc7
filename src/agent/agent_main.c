/*
 * agent_main — `keel agent`: parses the flags, resolves the server and
 * token, builds the runtime, starts the log server, registers the
 * Node(s) and runs the agent's threads (agent_internal.h) until SIGINT or
 * SIGTERM. Stopping the agent leaves its containers running, as a
 * kubelet does: the next agent adopts them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "client/client.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

struct client *agent_client(struct agent *a)
{
	return agent_client_as(a, a->token);
}

struct client *agent_client_as(struct agent *a, const char *token)
{
	struct client_opts co = {.server = a->server, .token = token, .ca_file = a->ca};
	struct client *c = NULL;
	if (client_new(&co, &c, NULL) < 0)
		abort(); /* agent_main checked the URL with the same options */
	return c;
}

void agent_wake(struct agent *a)
{
	pthread_mutex_lock(&a->mu);
	a->dirty = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->mu);
}

static char *default_name(void)
{
	char h[256] = "";
	if (gethostname(h, sizeof h - 1) < 0 || !*h)
		return xstrdup("node");
	for (char *p = h; *p; p++)
		*p = (char)(isalnum((unsigned char)*p) || *p == '.' || *p == '-'
		                ? tolower((unsigned char)*p)
		                : '-');
	return xstrdup(h);
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

static int make_runtime(struct agent *a, struct kerr *err)
{
	const struct agent_opts *o = a->o;
	switch (o->runtime) {
	case AGENT_RT_SIM: {
		struct rt_sim_options so = {.start_delay_ms = o->sim_start_delay_ms,
		                            .fail_fraction = o->sim_fail_fraction,
		                            .seed = (uint64_t)getpid()};
		return rt_sim_new(&so, &a->rt, err);
	}
	case AGENT_RT_DOCKER: {
		struct rt_docker_options d = {.socket = o->docker_socket};
		return rt_docker_new(&d, &a->rt, err);
	}
	case AGENT_RT_PROCESS: {
		if (mkdir_p(a->data_dir, err) < 0)
			return -EIO;
		struct rt_process_options p = {.state_dir = a->data_dir};
		return rt_process_new(&p, &a->rt, err);
	}
	}
	return kerr_set(err, EINVAL, "unknown runtime");
}

/* The lease holder identity of this agent, HOSTNAME-RANDOM: made on the
 * first start and kept in DATA_DIR/agent-identity, so that an agent
 * restarted (even after kill -9) with the same --data-dir is the same
 * holder and takes its nodes' leases over at once, while another agent
 * given the same --name is refused until they expire. Where the data
 * directory cannot be written, a new one per run, with a warning. */
static void load_identity(struct agent *a)
{
	_cleanup_free_ char *path = xasprintf("%s/agent-identity", a->data_dir);
	_cleanup_kerr_ struct kerr err = KERR_INIT, werr = KERR_INIT;
	bool made = mkdir_p(a->data_dir, &err) == 0;
	if (identity_load(path, a->hostname, &a->holder, &werr) < 0 || !made)
		log_warn("agent: cannot keep its identity %s in %s (%s): restarted, it will have "
		         "to wait for its leases to expire",
		         a->holder, a->data_dir, kerr_msg(made ? &werr : &err));
}

/* A CA file is read by libcurl only at the first https request, whose
 * failure registration would retry: one that cannot be read is a mistake
 * in the command line (or environment, or config file), reported at once. */
static int check_ca(const struct agent_opts *o, const char *ca, struct kerr *err)
{
	if (!ca)
		return 0;
	const char *from = o->ca && *o->ca                           ? "--ca"
	                   : getenv("KEEL_CA") && *getenv("KEEL_CA") ? "$KEEL_CA"
	                                                             : "the config file's \"ca\"";
	_cleanup_close_ int fd = open(ca, O_RDONLY | O_CLOEXEC);
	char byte;
	if (fd < 0 || read(fd, &byte, 1) < 0)
		return kerr_set(err, EBADF, "cannot read the CA file %s (%s): %s", ca, from,
		                strerror(errno));
	return 0;
}

static int setup(struct agent *a, struct kerr *err)
{
	const struct agent_opts *o = a->o;
	struct client_config cfg = {0};
	if (client_config_resolve(o->server, o->token, o->config, o->ca, &cfg, err) < 0)
		return -EINVAL;
	a->server = TAKE_PTR(cfg.server);
	a->token = TAKE_PTR(cfg.token);
	a->ca = TAKE_PTR(cfg.ca);
	client_config_clear(&cfg);
	if (check_ca(o, a->ca, err) < 0)
		return -EBADF;
	struct client_opts co = {.server = a->server, .token = a->token, .ca_file = a->ca};
	struct client *c = NULL;
	if (client_new(&co, &c, err) < 0)
		return -EINVAL;
	client_free(c);
	if (o->data_dir) {
		a->data_dir = xstrdup(o->data_dir);
	} else {
		_cleanup_free_ char *d = client_default_data_dir();
		if (!d)
			return kerr_set(err, ENOENT,
			                "no data directory: set --data-dir or $KEEL_DATA_DIR");
		a->data_dir = xasprintf("%s/agent", d);
	}
	char h[256] = "";
	gethostname(h, sizeof h - 1);
	a->hostname = xstrdup(*h ? h : "localhost");
	load_identity(a);
	a->address = xstrdup("127.0.0.1");
	agent_host_capacity(&a->cap_cpu, &a->cap_mem);
	if (o->cpus_milli)
		a->cap_cpu = o->cpus_milli;
	if (o->memory_bytes)
		a->cap_mem = o->memory_bytes;
	a->bo = (struct backoff){o->backoff_base_ms, o->backoff_max_ms, o->backoff_reset_ms};
	if (make_runtime(a, err) < 0)
		return -EIO;
	if (a->rt->ops->info(a->rt, &a->info, err) < 0)
		return kerr_prefix(err, "runtime %s", a->rt->ops->name);
	return 0;
}

static void make_nodes(struct agent *a)
{
	_cleanup_free_ char *base = a->o->name ? xstrdup(a->o->name) : default_name();
	a->nnodes = a->o->simulate ? (size_t)a->o->simulate : 1;
	a->nodes = xcalloc(a->nnodes, sizeof(*a->nodes));
	a->node_index = json_object();
	for (size_t i = 0; i < a->nnodes; i++) {
		a->nodes[i].name = a->o->simulate ? xasprintf("%s-%04zu", base, i) : xstrdup(base);
		json_object_set_new(a->node_index, a->nodes[i].name, json_integer((json_int_t)i));
	}
}

/* Stops and removes every container of every node (--stop-tasks-on-exit):
 * after the reconcile thread has ended, so that nothing starts them again;
 * on the stop workers, all at once, each after its own grace period. */
static void stop_all_tasks(struct agent *a)
{
	for (size_t i = 0; i < a->nnodes; i++) {
		struct rt_status *v = NULL;
		size_t n = 0;
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (a->rt->ops->list(a->rt, a->nodes[i].name, &v, &n, &err) < 0) {
			log_warn("agent: node %s: listing containers to stop them: %s",
			         a->nodes[i].name, kerr_msg(&err));
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			if (v[k].state != RT_EXITED)
				log_info("agent: stopping %s (task %s/%s)", v[k].id,
				         v[k].ns ? v[k].ns : "?", v[k].name ? v[k].name : "?");
			(void)agent_stops_queue(a, v[k].id, agent_task_grace_s(a, v[k].task_uid),
			                        true);
		}
		rt_status_array_free(v, n);
	}
}

/* After the stops of stop_all_tasks: removes what a stop that was under
 * way already (queued without removal, by the reconcile thread) left. */
static void remove_ended(struct agent *a)
{
	for (size_t i = 0; i < a->nnodes; i++) {
		struct rt_status *v = NULL;
		size_t n = 0;
		if (a->rt->ops->list(a->rt, a->nodes[i].name, &v, &n, NULL) < 0)
			continue;
		for (size_t k = 0; k < n; k++)
			if (v[k].state == RT_EXITED)
				(void)a->rt->ops->remove(a->rt, v[k].id, NULL);
		rt_status_array_free(v, n);
	}
}

int agent_start(const struct agent_opts *o, struct agent **out, struct kerr *err)
{
	struct agent *a = xcalloc(1, sizeof(*a));
	a->o = o;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	pthread_mutex_init(&a->key_mu, NULL);
	a->cache = json_object();
	a->logs_index = json_object();
	a->tstates = json_object();
	int r = setup(a, err);
	if (r == 0) {
		make_nodes(a);
		r = agent_logsrv_start(a, err);
	}
	if (r == 0)
		r = agent_nodes_register(a, err);
	if (r < 0) {
		atomic_store(&a->stop, true);
		agent_free(a, 0);
		return r;
	}
	agent_stops_init(a);
	agent_jobs_init(a);
	void *(*fns[AGENT_THREADS])(void *) = {agent_watch_thread, agent_reconcile_thread,
	                                       agent_nodes_thread, agent_health_thread};
	for (size_t i = 0; i < AGENT_THREADS; i++)
		a->started[i] = pthread_create(&a->threads[i], NULL, fns[i], a) == 0;
	if (a->info.warning)
		log_warn("agent: %s", a->info.warning);
	log_info("agent: %zu node(s) registered (%s%s) with runtime %s %s; logs at %s", a->nnodes,
	         a->nodes[0].name, a->nnodes > 1 ? ", ..." : "", a->info.name,
	         a->info.version ? a->info.version : "", a->log_endpoint);
	*out = a;
	return 0;
}

void agent_stop(struct agent *a)
{
	if (!a || a->stopped)
		return;
	a->stopped = true;
	atomic_store(&a->stop, true);
	agent_wake(a);
	/* all but the watch thread (0), which may sit in a long poll: agent_free */
	for (size_t i = 1; i < AGENT_THREADS; i++)
		if (a->started[i])
			pthread_join(a->threads[i], NULL), a->started[i] = false;
	agent_jobs_finish(a); /* before stop_all_tasks: no start may follow its list */
	if (a->o->stop_tasks_on_exit && a->rt && a->stop_ids)
		stop_all_tasks(a);
	agent_stops_finish(a, a->o->stop_tasks_on_exit);
	if (a->o->stop_tasks_on_exit && a->rt && a->stop_ids)
		remove_ended(a);
	agent_logsrv_stop(a);
}

const char *agent_runtime_name(const struct agent *a)
{
	return a->info.name;
}

const char *agent_node_name(const struct agent *a)
{
	return a->nnodes ? a->nodes[0].name : NULL;
}

const char *agent_log_endpoint(const struct agent *a)
{
	return a->log_endpoint;
}

bool agent_free(struct agent *a, long wait_ms)
{
	if (!a)
		return true;
	agent_stop(a);
	if (a->started[0]) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (int64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		if (pthread_timedjoin_np(a->threads[0], NULL, &ts) != 0) {
			/* still in a long poll: leave it the memory it reads */
			pthread_detach(a->threads[0]);
			return false;
		}
	}
	agent_tasks_free(a);
	agent_health_free(a);
	agent_stops_free(a);
	agent_jobs_free(a);
	for (size_t i = 0; i < a->nnodes; i++) {
		free(a->nodes[i].name);
		json_decref(a->nodes[i].written);
	}
	free(a->nodes);
	json_decref(a->node_index);
	json_decref(a->cache);
	json_decref(a->logs_index);
	json_decref(a->tstates);
	runtime_free(a->rt);
	rt_info_clear(&a->info);
	free(a->server);
	free(a->token);
	free(a->ca);
	free(a->data_dir);
	free(a->hostname);
	free(a->holder);
	free(a->log_endpoint);
	free(a->address);
	pthread_mutex_destroy(&a->mu);
	for (size_t i = 0; a->log_keys && i < a->nnodes; i++)
		free(a->log_keys[i]);
	free(a->log_keys);
	pthread_mutex_destroy(&a->key_mu);
	pthread_cond_destroy(&a->cond);
	free(a);
	return true;
}

int agent_main(int argc, char **argv)
{
	struct agent_opts o;
	agent_opts_init(&o);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (agent_opts_parse(&o, argc, argv, &err) < 0) {
		fprintf(stderr, "keel agent: %s\n", kerr_msg(&err));
		agent_opts_free(&o);
		return 2;
	}
	if (o.help) {
		fputs(agent_opts_usage(), stdout);
		agent_opts_free(&o);
		return 0;
	}
	log_set_level(o.log_level);
	signal(SIGPIPE, SIG_IGN);
	/* signals go to sigwait below, not to a random thread */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct agent *a = NULL;
	int r = agent_start(&o, &a, &err);
	if (r < 0) {
		fprintf(stderr, "keel agent: %s\n", kerr_msg(&err));
		agent_opts_free(&o);
		return r == -EBADF ? 2 : 1; /* 2: as for a bad flag */
	}
	int sig = 0;
	sigwait(&set, &sig);
	log_info("agent: %s; stopping (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
	         o.stop_tasks_on_exit ? "stopping its tasks" : "tasks keep running");
	/* the server is still up: the watch thread may wait for its next event
	 * (a bookmark, up to 15 s), so it is not waited for; what it still
	 * reads stays allocated (and reachable) until the process exits */
	static struct agent *left;
	if (!agent_free(a, 0))
		left = a;
	(void)left;
	agent_opts_free(&o);
	return 0;
}
