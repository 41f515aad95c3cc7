/*
 * agent_main — `keel agent`: parses the flags, resolves the server and
 * token, builds the runtime, starts the log server, registers the
 * Node(s) and runs the agent's threads (agent_internal.h) until SIGINT or
 * SIGTERM. Stopping the agent leaves its containers running, as a
 * kubelet does: the next agent adopts them.
 */
#include <ctype.h>
#include <errno.h>
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
	struct client_opts co = {.server = a->server, .token = a->token};
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
	struct agent_opts *o = a->o;
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

static int setup(struct agent *a, struct kerr *err)
{
	struct agent_opts *o = a->o;
	struct client_config cfg = {0};
	if (client_config_resolve(o->server, o->token, o->config, &cfg, err) < 0)
		return -EINVAL;
	a->server = TAKE_PTR(cfg.server);
	a->token = TAKE_PTR(cfg.token);
	client_config_clear(&cfg);
	struct client_opts co = {.server = a->server, .token = a->token};
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

static int run(struct agent *a)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (setup(a, &err) < 0) {
		fprintf(stderr, "keel agent: %s\n", kerr_msg(&err));
		return 1;
	}
	make_nodes(a);
	if (a->rt->ops != NULL && a->info.warning)
		log_warn("agent: %s", a->info.warning);
	if (agent_logsrv_start(a, &err) < 0) {
		fprintf(stderr, "keel agent: %s\n", kerr_msg(&err));
		return 1;
	}
	if (agent_nodes_register(a, &err) < 0) {
		fprintf(stderr, "keel agent: %s\n", kerr_msg(&err));
		return 1;
	}
	log_info("agent: %zu node(s) registered (%s%s) with runtime %s %s; logs at %s", a->nnodes,
	         a->nodes[0].name, a->nnodes > 1 ? ", ..." : "", a->info.name,
	         a->info.version ? a->info.version : "", a->log_endpoint);
	pthread_t th[4];
	void *(*fns[4])(void *) = {agent_watch_thread, agent_reconcile_thread, agent_nodes_thread,
	                           agent_health_thread};
	for (size_t i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, fns[i], a);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	int sig = 0;
	sigwait(&set, &sig);
	log_info("agent: signal %d; stopping (tasks keep running)", sig);
	atomic_store(&a->stop, true);
	agent_wake(a);
	/* the watch thread may sit in a long poll: do not wait for it */
	pthread_join(th[1], NULL);
	pthread_join(th[2], NULL);
	pthread_join(th[3], NULL);
	agent_logsrv_stop(a);
	return 0;
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
	/* signals go to sigwait in run(), not to a random thread */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	static struct agent a; /* static: threads left in a long poll may still read it at exit */
	a.o = &o;
	pthread_mutex_init(&a.mu, NULL);
	pthread_cond_init(&a.cond, NULL);
	a.cache = json_object();
	a.logs_index = json_object();
	a.tstates = json_object();
	int rc = run(&a);
	agent_opts_free(&o); /* the watch thread, still running, does not read it */
	return rc;
}
