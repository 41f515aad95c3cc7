/*
 * controller — the runner of controller.h: per controller, its informers,
 * one work queue, `workers` threads calling reconcile(key), an optional
 * loop thread, and an Event recorder; a manager starts and stops a set of
 * controllers (in `keel server`, or one in `keel controller NAME`).
 *
 * The controllers of one manager share their informers: one per kind and
 * selectors (controller_informer finds the manager's informer that
 * matches, or makes it, and adds the controller's handlers to it), so a
 * Task is cached once and watched over one stream however many loops look
 * at Tasks, as with client-go's shared informer factory. Hence the order:
 * every controller is set up (declaring its informers) before any informer
 * starts, so that no handler set misses the first list.
 *
 * Workers wait until every informer of their controller has synced before
 * the first reconcile, so a reconcile never acts on a half-loaded cache
 * (e.g. a scheduler that has seen no Node would call every Task
 * unschedulable). Stopping shuts the queue down first (workers finish the
 * key in hand and skip the rest), then stops the informers, then tears
 * down: the reverse of starting.
 */
#include "controllers/controller.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "controllers/events.h"
#include "controllers/leader.h"

/* Weak: a loop not linked in is "not built" (see controller.h). */
extern const struct controller_def controller_scheduler __attribute__((weak));
extern const struct controller_def controller_tasks __attribute__((weak));
extern const struct controller_def controller_nodes __attribute__((weak));
extern const struct controller_def controller_gc __attribute__((weak));

static const char *const names[] = {"scheduler", "tasks", "nodes", "gc", NULL};

#define MAX_INFORMERS 8

struct controller_env {
	const struct controller_def *def;
	struct controller_manager *m; /* owns the informers */
	struct controller_options opts;
	char *server, *token, *ca_file, *scheduler;
	struct workqueue *q;
	struct informer *infs[MAX_INFORMERS]; /* borrowed from m */
	size_t ninfs;
	struct events *events;
	void *state;
	bool set_up;
	pthread_t *threads;
	size_t nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct leader *lead; /* its Lease "keel-NAME"; NULL until started */
	bool leading;        /* mu: as the elector last said */
	int64_t leading_since; /* mu: wall-clock ms when leading last became true; 0: never */
};

#define MAX_SHARED (8 * MAX_INFORMERS)

struct controller_manager {
	struct controller_env *envs[8];
	size_t n;
	struct informer *infs[MAX_SHARED]; /* shared by the envs */
	size_t ninfs;
	char *identity; /* the holder identity of this process's leader leases */
};

const struct controller_def *controller_find(const char *name)
{
	const struct controller_def *defs[] = {&controller_scheduler, &controller_tasks,
	                                       &controller_nodes, &controller_gc};
	for (size_t i = 0; i < ARRAY_SIZE(defs); i++)
		if (defs[i] && streq(names[i], name))
			return defs[i];
	return NULL;
}

const char *const *controller_names(void)
{
	return names;
}

int controller_parse_list(const char *list, bool *enabled, size_t n, struct kerr *err)
{
	size_t count = ARRAY_SIZE(names) - 1;
	for (size_t i = 0; i < n; i++)
		enabled[i] = false;
	if (!list || streq(list, "all")) {
		for (size_t i = 0; i < n && i < count; i++)
			enabled[i] = true;
		return 0;
	}
	if (streq(list, "none") || !*list)
		return 0;
	_cleanup_free_ char *copy = xstrdup(list);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < count && !streq(names[i], t))
			i++;
		if (i == count)
			return kerr_set(err, EINVAL,
			                "--controllers: unknown controller \"%s\" (known: all, none, "
			                "scheduler, tasks, nodes, gc)",
			                t);
		if (i < n)
			enabled[i] = true;
	}
	return 0;
}

/* ---- env, for controllers ---------------------------------------------- */

static void default_enqueue(void *ctx, json_t *obj)
{
	_cleanup_free_ char *key = informer_key(obj);
	controller_enqueue(ctx, key);
}

static void default_update(void *ctx, json_t *old_obj, json_t *new_obj)
{
	(void)old_obj;
	default_enqueue(ctx, new_obj);
}

int controller_informer(struct controller_env *env, const struct api_kind *kind,
                        const char *label_selector, const char *field_selector,
                        const struct informer_handlers *h, struct informer **out,
                        struct kerr *err)
{
	if (env->ninfs == MAX_INFORMERS)
		return kerr_set(err, ENOSPC, "controller %s: more than %d informers",
		                env->def->name, MAX_INFORMERS);
	struct informer_handlers dh = {.on_add = default_enqueue,
	                               .on_update = default_update,
	                               .on_delete = default_enqueue,
	                               .ctx = env};
	struct controller_manager *m = env->m;
	struct informer *inf = NULL;
	for (size_t i = 0; i < m->ninfs && !inf; i++)
		if (informer_matches(m->infs[i], kind, NULL, label_selector, field_selector))
			inf = m->infs[i];
	if (inf) {
		int r = informer_add_handlers(inf, h ? h : &dh, err);
		if (r < 0)
			return r;
	} else {
		if (m->ninfs == MAX_SHARED)
			return kerr_set(err, ENOSPC, "controller %s: more than %d informers",
			                env->def->name, MAX_SHARED);
		struct informer_opts o = {.client = env->opts.client,
		                          .kind = kind,
		                          .label_selector = label_selector,
		                          .field_selector = field_selector,
		                          .resync_ms = env->opts.resync_ms};
		int r = informer_new(&o, h ? h : &dh, &inf, err);
		if (r < 0)
			return r;
		m->infs[m->ninfs++] = inf;
	}
	env->infs[env->ninfs++] = inf;
	if (out)
		*out = inf;
	return 0;
}

struct workqueue *controller_queue(struct controller_env *env)
{
	return env->q;
}

void controller_enqueue(struct controller_env *env, const char *key)
{
	workqueue_add(env->q, key);
}

void controller_enqueue_after(struct controller_env *env, const char *key, long delay_ms)
{
	workqueue_add_after(env->q, key, delay_ms);
}

const struct controller_options *controller_opts(struct controller_env *env)
{
	return &env->opts;
}

const char *controller_name(struct controller_env *env)
{
	return env->def->name;
}

void controller_event(struct controller_env *env, json_t *involved, const char *type,
                      const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (!env->events) {
		log_warn("controller %s: no event recorder; dropped %s: %s", env->def->name, reason,
		         msg);
		return;
	}
	if (events_record(env->events, involved, type, reason, msg, &err) < 0)
		log_warn("controller %s: cannot record Event %s: %s", env->def->name, reason,
		         kerr_msg(&err));
}

/* The runner is stopping (not: leadership lost). */
static bool env_stopped(struct controller_env *env)
{
	pthread_mutex_lock(&env->mu);
	bool s = env->stop;
	pthread_mutex_unlock(&env->mu);
	return s;
}

/* Whether the controller may act now: it leads its lease, and the renew
 * deadline has not passed (checked on the clock, so a process resumed
 * from a long pause does not act before its elector has looked). */
static bool env_leads(struct controller_env *env)
{
	return env->lead && leader_held(env->lead);
}

bool controller_stopping(struct controller_env *env)
{
	return env_stopped(env) || !env_leads(env);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t controller_leading_since(struct controller_env *env)
{
	pthread_mutex_lock(&env->mu);
	int64_t t = env->leading_since;
	pthread_mutex_unlock(&env->mu);
	return t;
}

bool controller_sleep(struct controller_env *env, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t)ts.tv_nsec + (int64_t)ms * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&env->mu);
	while (!env->stop && env->leading && pthread_cond_timedwait(&env->cv, &env->mu, &ts) == 0) {
	}
	bool go_on = !env->stop && env->leading;
	pthread_mutex_unlock(&env->mu);
	return go_on && env_leads(env);
}

/* Waits until the controller leads (or the runner stops: false). */
static bool wait_leading(struct controller_env *env)
{
	for (;;) {
		pthread_mutex_lock(&env->mu);
		while (!env->stop && !env->leading)
			pthread_cond_wait(&env->cv, &env->mu);
		bool stop = env->stop;
		pthread_mutex_unlock(&env->mu);
		if (stop)
			return false;
		if (env_leads(env))
			return true;
		/* said leading, but past its deadline: the elector is about to
		 * say lost; look again shortly */
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
}

/* The elector's news (its thread). */
static void leadership_changed(void *ctx, bool leading)
{
	struct controller_env *env = ctx;
	pthread_mutex_lock(&env->mu);
	if (leading && !env->leading)
		env->leading_since = wall_ms();
	env->leading = leading;
	pthread_cond_broadcast(&env->cv);
	pthread_mutex_unlock(&env->mu);
}

/* ---- threads ------------------------------------------------------------ */

/* Waits until every informer has synced; false when stopping first. */
static bool wait_synced(struct controller_env *env)
{
	for (size_t i = 0; i < env->ninfs; i++)
		while (informer_wait_synced(env->infs[i], 500) < 0)
			if (env_stopped(env))
				return false;
	return !env_stopped(env);
}

static struct client *worker_client(struct controller_env *env)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct client *c = NULL;
	if (client_new(&env->opts.client, &c, &err) < 0)
		log_error("controller %s: %s", env->def->name, kerr_msg(&err));
	return c;
}

static void reconcile_one(struct controller_env *env, struct client *c, const char *key)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int r = env->def->reconcile(env->state, c, key, &err);
	if (r < 0) {
		log_warn("controller %s: %s: %s (retry %u)", env->def->name, key, kerr_msg(&err),
		         workqueue_failures(env->q, key) + 1);
		workqueue_add_rate_limited(env->q, key);
		return;
	}
	workqueue_forget(env->q, key);
	if (r > 0)
		workqueue_add_after(env->q, key, r);
}

static void *worker_thread(void *arg)
{
	struct controller_env *env = arg;
	struct client *c = worker_client(env);
	if (!c || !wait_synced(env)) {
		client_free(c);
		return NULL;
	}
	/* Keys queued while another process leads stay queued (the informers
	 * stay warm), and are reconciled once this one leads. */
	char *key = NULL;
	while (wait_leading(env) && workqueue_get(env->q, &key) == 0) {
		if (!env_stopped(env) && env_leads(env))
			reconcile_one(env, c, key);
		else if (!env_stopped(env))
			workqueue_add(env->q, key); /* again after done: for the next leader term */
		workqueue_done(env->q, key);
		free(key);
	}
	client_free(c);
	return NULL;
}

static void *loop_thread(void *arg)
{
	struct controller_env *env = arg;
	struct client *c = worker_client(env);
	if (c && wait_synced(env))
		while (wait_leading(env))
			env->def->loop(env->state,
			               c); /* returns when stopping or no longer leading */
	client_free(c);
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

/* After the manager's informers and the env's threads have stopped. */
static void env_free(struct controller_env *env)
{
	leader_stop(env->lead); /* releases the lease: the standby takes over at once */
	env->lead = NULL;
	if (env->set_up && env->def->teardown)
		env->def->teardown(env->state);
	workqueue_free(env->q);
	events_free(env->events);
	free(env->threads);
	free(env->server);
	free(env->token);
	free(env->ca_file);
	free(env->scheduler);
	pthread_cond_destroy(&env->cv);
	pthread_mutex_destroy(&env->mu);
	free(env);
}

static struct controller_env *env_new(struct controller_manager *m,
                                      const struct controller_def *def,
                                      const struct controller_options *o)
{
	struct controller_env *env = xcalloc(1, sizeof *env);
	env->m = m;
	env->def = def;
	env->opts = *o;
	env->server = o->client.server ? xstrdup(o->client.server) : NULL;
	env->token = o->client.token ? xstrdup(o->client.token) : NULL;
	env->ca_file = o->client.ca_file ? xstrdup(o->client.ca_file) : NULL;
	env->scheduler = xstrdup(o->scheduler ? o->scheduler : "epvm");
	env->opts.client.server = env->server;
	env->opts.client.token = env->token;
	env->opts.client.ca_file = env->ca_file;
	env->opts.scheduler = env->scheduler;
	if (env->opts.node_grace_period_ms <= 0)
		env->opts.node_grace_period_ms = 40000;
	if (env->opts.node_eviction_timeout_ms <= 0)
		env->opts.node_eviction_timeout_ms = 60000;
	if (env->opts.event_ttl_ms <= 0)
		env->opts.event_ttl_ms = 3600L * 1000;
	struct workqueue_opts qo = {.base_delay_ms = 5, .max_delay_ms = 30000, .qps = 50,
	                            .burst = 500};
	env->q = workqueue_new(&qo);
	pthread_mutex_init(&env->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&env->cv, &ca);
	pthread_condattr_destroy(&ca);
	return env;
}

static int env_spawn(struct controller_env *env, void *(*fn)(void *), struct kerr *err)
{
	int e = pthread_create(&env->threads[env->nthreads], NULL, fn, env);
	if (e)
		return kerr_set(err, e, "cannot start a thread: %s", strerror(e));
	env->nthreads++;
	return 0;
}

static void env_stop(struct controller_env *env)
{
	pthread_mutex_lock(&env->mu);
	env->stop = true;
	pthread_cond_broadcast(&env->cv);
	pthread_mutex_unlock(&env->mu);
	workqueue_shutdown(env->q);
	for (size_t i = 0; i < env->nthreads; i++)
		pthread_join(env->threads[i], NULL);
	env->nthreads = 0;
}

/* Builds the controller's state; its informers are declared, not started. */
static int env_setup(struct controller_env *env, struct kerr *err)
{
	_cleanup_free_ char *component = xasprintf("keel-%s", env->def->name);
	int r = events_new(&env->opts.client, component, &env->events, err);
	if (r < 0)
		return r;
	r = env->def->setup(env, &env->state, err);
	env->set_up = r == 0 || env->state; /* a half-built state is torn down too */
	return r;
}

/* Starts the workers (and loop); they wait for the informers to sync. */
static int env_start(struct controller_env *env, struct kerr *err)
{
	int r;
	int workers = env->opts.workers > 0 ? env->opts.workers
	                                    : (env->def->workers > 0 ? env->def->workers : 1);
	env->threads = xcalloc((size_t)workers + 1, sizeof *env->threads);
	for (int i = 0; i < workers; i++)
		if ((r = env_spawn(env, worker_thread, err)) < 0)
			return r;
	if (env->def->loop && (r = env_spawn(env, loop_thread, err)) < 0)
		return r;
	return 0;
}

int controller_manager_start(const struct controller_options *o, const char *list,
                             struct controller_manager **out, struct kerr *err)
{
	bool on[ARRAY_SIZE(names) - 1];
	int r = controller_parse_list(list, on, ARRAY_SIZE(on), err);
	if (r < 0)
		return r;
	const char *s = o->scheduler;
	if (s && !streq(s, "epvm") && !streq(s, "round-robin"))
		return kerr_set(err, EINVAL, "--scheduler: unknown \"%s\" (epvm or round-robin)", s);
	struct controller_manager *m = xcalloc(1, sizeof *m);
	m->identity = o->identity && *o->identity ? xstrdup(o->identity) : leader_identity_new();
	for (size_t i = 0; i < ARRAY_SIZE(on); i++) {
		if (!on[i])
			continue;
		const struct controller_def *def = controller_find(names[i]);
		if (!def) {
			/* "all" means every loop that is built; a named one must be. */
			if (list && !streq(list, "all")) {
				controller_manager_stop(m);
				return kerr_set(err, ENOENT, "controller \"%s\" is not built", names[i]);
			}
			continue;
		}
		struct controller_env *env = env_new(m, def, o);
		m->envs[m->n++] = env;
		if ((r = env_setup(env, err)) < 0) {
			kerr_prefix(err, "controller %s", def->name);
			controller_manager_stop(m);
			return r;
		}
	}
	for (size_t i = 0; i < m->ninfs; i++)
		if ((r = informer_start(m->infs[i], err)) < 0) {
			controller_manager_stop(m);
			return r;
		}
	for (size_t i = 0; i < m->n; i++) {
		struct controller_env *env = m->envs[i];
		_cleanup_free_ char *lease = xasprintf("keel-%s", env->def->name);
		struct leader_opts lo = {.client = env->opts.client,
		                         .lease = lease,
		                         .what = env->def->name,
		                         .identity = m->identity,
		                         .duration_ms = o->leader_lease_ms,
		                         .on_change = leadership_changed,
		                         .ctx = env};
		if ((r = leader_start(&lo, &env->lead, err)) < 0) {
			kerr_prefix(err, "controller %s", env->def->name);
			controller_manager_stop(m);
			return r;
		}
		if ((r = env_start(m->envs[i], err)) < 0) {
			kerr_prefix(err, "controller %s", m->envs[i]->def->name);
			controller_manager_stop(m);
			return r;
		}
		log_info("controller %s: started (leader lease %s, holder %s)", env->def->name,
		         lease, m->identity);
	}
	*out = m;
	return 0;
}

void controller_manager_request_stop(struct controller_manager *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		pthread_mutex_lock(&m->envs[i]->mu);
		m->envs[i]->stop = true;
		pthread_cond_broadcast(&m->envs[i]->cv);
		pthread_mutex_unlock(&m->envs[i]->mu);
		workqueue_shutdown(m->envs[i]->q);
	}
	for (size_t i = 0; i < m->ninfs; i++)
		informer_request_stop(m->infs[i]);
}

void controller_manager_release(struct controller_manager *m)
{
	if (!m)
		return;
	controller_manager_request_stop(m);
	for (size_t i = 0; i < m->n; i++)
		env_stop(m->envs[i]); /* no worker acts any more: now the lease may go */
	for (size_t i = 0; i < m->n; i++) {
		leader_stop(m->envs[i]->lead);
		m->envs[i]->lead = NULL;
	}
}

void controller_manager_stop(struct controller_manager *m)
{
	if (!m)
		return;
	/* Signal all first, so their informers wind down in parallel. */
	controller_manager_request_stop(m);
	for (size_t i = 0; i < m->ninfs; i++)
		informer_stop(m->infs[i]);
	for (size_t i = 0; i < m->n; i++)
		env_stop(m->envs[i]);
	for (size_t i = 0; i < m->n; i++)
		env_free(m->envs[i]);
	for (size_t i = 0; i < m->ninfs; i++)
		informer_free(m->infs[i]);
	free(m->identity);
	free(m);
}
