/*
 * server/conns — connection tracking for --max-connections and
 * --request-timeout (see conns.h).
 *
 * MHD's own CONNECTION_TIMEOUT is an idle timeout, reset by every byte, so
 * a client that sends one header byte a second holds its connection (and
 * its memory) forever. Our deadlines are absolute. A connection's first
 * request must be in within --request-timeout of the accept, or it gets a
 * 408 and is counted (limit="request_time"). After a response the
 * connection is a kept-alive one, and between responses it lives at most
 * --idle-timeout without a completed request: past that it is closed
 * silently and counted nowhere, since a client's own idle keep-alive
 * connection is no rejection. That is also the bound on a slow later
 * request, since we cannot tell idle from a slow next request (MHD has the
 * bytes).
 *
 * Race-free with MHD's threads: the reaper shuts a socket down only while
 * holding the set's lock and only if the connection's entry is still in
 * the set. MHD announces MHD_CONNECTION_NOTIFY_CLOSED, and we unlink the
 * entry under that lock, before it closes the socket (0.9.75 closes it
 * later, in its cleanup of closed connections), so the fd the reaper
 * touches is always the connection's own and never one reused by a newer
 * connection. shutdown(2) rather than close(2): the fd stays MHD's, MHD
 * sees the end of the stream, finishes the request with an error and
 * closes it itself.
 *
 * The 408 written before the shutdown is raw bytes on the socket. That is
 * safe because a connection still receiving its request has no response
 * queued, so MHD is not writing to it (MHD's own early answers — a 100
 * Continue, its 431 — are written at once, long before a deadline). It is
 * written only on a connection that has not had a response yet: one that
 * has may just be an idle keep-alive connection (we cannot tell idle from
 * a slow next request: MHD has the bytes), and a client sending its next
 * request as the 408 arrives would take it for the answer. Closed without
 * a word, it looks like any keep-alive connection the server let go, and
 * clients retry on a fresh one.
 */
#include "server/conns.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/status.h"
#include "common/log.h"
#include "common/util.h"
#include "server/metrics.h"
#include "server/opts.h"

#define REAP_MS 100

struct conn_entry {
	struct srv_conns *set;
	struct conn_entry *prev, *next;
	int fd;
	int64_t deadline_ms; /* 0: not receiving a request (responding) */
	bool over, cut;
	bool served;  /* a response has been sent on it */
	bool headers; /* the current request's headers are in */
};

struct srv_conns {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct srv_conns_opts opts;
	struct srv_metrics *metrics;
	struct conn_entry *head;
	size_t n_open;
	bool quit;
	pthread_t reaper;
};

/* The first request's deadline is --request-timeout; once a response has
 * gone out the connection is a kept-alive one and has --idle-timeout (see
 * top). */
static int64_t deadline_from_now(const struct srv_conns *c, bool served)
{
	int64_t t = served ? c->opts.idle_timeout_ms : c->opts.request_timeout_ms;
	return t ? time_mono_ms() + t : 0;
}

static void conn_started(struct srv_conns *c, struct MHD_Connection *conn, void **ctx)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct conn_entry *e = xcalloc(1, sizeof *e);
	e->set = c;
	e->fd = ci ? ci->connect_fd : -1;
	pthread_mutex_lock(&c->mu);
	e->deadline_ms = deadline_from_now(c, false);
	e->over = c->n_open >= c->opts.max_connections;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	c->n_open++;
	pthread_mutex_unlock(&c->mu);
	*ctx = e;
}

static void conn_closed(struct srv_conns *c, void **ctx)
{
	struct conn_entry *e = *ctx;
	if (!e)
		return;
	pthread_mutex_lock(&c->mu);
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	c->n_open--;
	pthread_mutex_unlock(&c->mu);
	free(e);
	*ctx = NULL;
}

void srv_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		conn_started(cls, conn, socket_context);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		conn_closed(cls, socket_context);
}

static struct conn_entry *entry_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

bool srv_conns_over_limit(struct MHD_Connection *conn)
{
	struct conn_entry *e = entry_of(conn);
	return e && e->over; /* set before MHD saw the connection: no lock needed */
}

static void set_deadline(struct MHD_Connection *conn, bool start)
{
	struct conn_entry *e = entry_of(conn);
	if (!e)
		return;
	pthread_mutex_lock(&e->set->mu);
	if (start)
		e->served = true, e->headers = false;
	e->deadline_ms = start ? deadline_from_now(e->set, true) : 0;
	pthread_mutex_unlock(&e->set->mu);
}

void srv_conns_headers(struct MHD_Connection *conn)
{
	struct conn_entry *e = entry_of(conn);
	if (!e)
		return;
	pthread_mutex_lock(&e->set->mu);
	e->headers = true;
	pthread_mutex_unlock(&e->set->mu);
}

void srv_conns_received(struct MHD_Connection *conn)
{
	set_deadline(conn, false);
}

void srv_conns_next(struct MHD_Connection *conn)
{
	set_deadline(conn, true);
}

size_t srv_conns_open(struct srv_conns *c)
{
	pthread_mutex_lock(&c->mu);
	size_t n = c->n_open;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* The 408 for a cut-off connection: a whole HTTP response. Owned. It says
 * what the server knows: how far it had read the request. The bytes may
 * well be on their way or in the socket (a slow client, or every HTTP
 * thread busy so none read them), so it does not say "not received". */
static char *timeout_response(const struct srv_conns *c, bool headers, size_t *len)
{
	_cleanup_free_ char *d = srv_format_duration(c->opts.request_timeout_ms);
	_cleanup_free_ char *msg = xasprintf(
	    "request %s within the request timeout (--request-timeout %s): the client sent it "
	    "too slowly or the server was too busy to read it; closing the connection",
	    headers ? "body not read in full" : "headers not read in full", d);
	_cleanup_json_ json_t *st = api_status_new(408, "RequestTimeout", msg, NULL, NULL, NULL);
	_cleanup_free_ char *body = json_dumps(st, JSON_COMPACT);
	char *resp = xasprintf("HTTP/1.1 408 Request Timeout\r\n"
	                       "Content-Type: application/json\r\n"
	                       "Connection: close\r\n"
	                       "Content-Length: %zu\r\n\r\n%s\n",
	                       strlen(body) + 1, body);
	*len = strlen(resp);
	return resp;
}

/* Cuts off every connection past its deadline (lock held). resp[h], len[h]:
 * the 408 for a connection whose headers are in (h = 1) or not (NULL: no
 * 408s). */
static void reap_locked(struct srv_conns *c, char *const resp[2], const size_t len[2])
{
	int64_t now = time_mono_ms();
	for (struct conn_entry *e = c->head; e; e = e->next) {
		if (e->cut || !e->deadline_ms || now < e->deadline_ms || e->fd < 0)
			continue;
		e->cut = true;
		if (e->served) { /* a kept-alive connection: see top */
			shutdown(e->fd, SHUT_RDWR);
			log_debug("http: closed a kept-alive connection idle for %lldms",
			          (long long)c->opts.idle_timeout_ms);
			continue;
		}
		if (resp[e->headers]) /* best effort: see top */
			(void)!send(e->fd, resp[e->headers], len[e->headers],
			            MSG_DONTWAIT | MSG_NOSIGNAL);
		shutdown(e->fd, SHUT_RDWR);
		srv_metrics_limit(c->metrics, SRV_LIMIT_REQUEST_TIME);
		log_info(
		    "http: closed a connection whose request was not read in full within %lldms",
		    (long long)c->opts.request_timeout_ms);
	}
}

static void *reaper_main(void *arg)
{
	struct srv_conns *c = arg;
	size_t len[2] = {0, 0};
	char *resp[2] = {NULL, NULL};
	if (c->opts.answer_timeouts)
		resp[0] = timeout_response(c, false, &len[0]),
		resp[1] = timeout_response(c, true, &len[1]);
	pthread_mutex_lock(&c->mu);
	while (!c->quit) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += REAP_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cond, &c->mu, &ts);
		if (!c->quit)
			reap_locked(c, resp, len);
	}
	pthread_mutex_unlock(&c->mu);
	free(resp[0]);
	free(resp[1]);
	return NULL;
}

struct srv_conns *srv_conns_new(const struct srv_conns_opts *o, struct srv_metrics *m)
{
	struct srv_conns *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->opts = *o;
	c->metrics = m;
	if (pthread_create(&c->reaper, NULL, reaper_main, c) != 0)
		abort(); /* like OOM: no thread at startup is not recoverable */
	return c;
}

void srv_conns_free(struct srv_conns *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->quit = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->reaper, NULL);
	if (c->n_open)
		log_warn("connection set freed with %zu connections still open", c->n_open);
	for (struct conn_entry *e = c->head, *n; e; e = n) {
		n = e->next;
		free(e);
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
