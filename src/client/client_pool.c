/*
 * client_pool — see client_pool.h. A mutex-protected ring of jobs and two
 * condition variables (work for the threads, progress for submitters and
 * waiters); each thread makes its client lazily, on its first job, so an
 * idle pool opens no connections. Each thread's client gets the whole
 * server list and fails over on its own (client.h, "Several servers").
 */
#include "client/client_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

struct job {
	client_pool_fn fn;
	void *arg;
};

struct client_pool {
	struct client_opts o;
	char *server, *token, *ca_file, *user_agent;
	int size;
	pthread_t *threads;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t work, progress;
	struct job *ring;
	size_t cap, head, len;
	size_t running; /* jobs taken but not finished */
	bool stop;
};

static void *pool_thread(void *arg)
{
	struct client_pool *p = arg;
	struct client *c = NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->len == 0 && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->len == 0)
			break; /* stopping, and nothing left */
		struct job j = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		p->running++;
		pthread_cond_broadcast(&p->progress); /* room in the queue */
		pthread_mutex_unlock(&p->mu);
		if (!c) {
			_cleanup_kerr_ struct kerr err = KERR_INIT;
			if (client_new(&p->o, &c, &err) < 0)
				log_warn("client pool: %s", kerr_msg(&err)); /* c stays NULL */
		}
		j.fn(c, j.arg);
		pthread_mutex_lock(&p->mu);
		p->running--;
		pthread_cond_broadcast(&p->progress);
	}
	pthread_mutex_unlock(&p->mu);
	client_free(c);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int client_pool_new(const struct client_opts *o, int size, struct client_pool **out,
                    struct kerr *err)
{
	if (!o || size < 1 || size > 256)
		return kerr_set(err, EINVAL, "client pool: size %d out of 1..256", size);
	/* A bad server list is said once, here, not by every thread's first job. */
	char **servers = NULL;
	size_t n = 0;
	if (o->server && *o->server) {
		if (client_servers_parse(o->server, &servers, &n, err) < 0)
			return kerr_prefix(err, "client pool");
		client_servers_free(servers);
	}
	struct client_pool *p = xcalloc(1, sizeof(*p));
	p->o = *o;
	p->o.server = p->server = dup_or_null(o->server);
	p->o.token = p->token = dup_or_null(o->token);
	p->o.ca_file = p->ca_file = dup_or_null(o->ca_file);
	p->o.user_agent = p->user_agent = dup_or_null(o->user_agent);
	p->size = size;
	p->cap = (size_t)size * 2;
	p->ring = xcalloc(p->cap, sizeof(*p->ring));
	p->threads = xcalloc((size_t)size, sizeof(*p->threads));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->progress, NULL);
	for (int i = 0; i < size; i++) {
		int e = pthread_create(&p->threads[i], NULL, pool_thread, p);
		if (e) {
			client_pool_free(p);
			return kerr_set(err, e, "client pool: cannot start a thread: %s",
			                strerror(e));
		}
		p->started++;
	}
	*out = p;
	return 0;
}

void client_pool_submit(struct client_pool *p, client_pool_fn fn, void *arg)
{
	pthread_mutex_lock(&p->mu);
	while (p->len == p->cap)
		pthread_cond_wait(&p->progress, &p->mu);
	p->ring[(p->head + p->len) % p->cap] = (struct job){fn, arg};
	p->len++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

void client_pool_wait(struct client_pool *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->len > 0 || p->running > 0)
		pthread_cond_wait(&p->progress, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

int client_pool_size(const struct client_pool *p)
{
	return p->size;
}

void client_pool_free(struct client_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->progress);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p->ring);
	free(p->server);
	free(p->token);
	free(p->ca_file);
	free(p->user_agent);
	free(p);
}
