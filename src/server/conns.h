/*
 * server/conns — the open HTTP connections: the --max-connections count and
 * the --request-timeout deadline that stops slowloris clients.
 *
 * MHD tells us about every connection it accepts and closes
 * (srv_conns_notify, its MHD_OPTION_NOTIFY_CONNECTION callback); each gets
 * an entry holding its socket and the deadline by which its current
 * request must have been received. A reaper thread shuts down the socket of
 * every connection still receiving its request past the deadline. Only
 * receiving counts: once the request is in (srv_conns_received) the clock
 * stops, so watches and log follows may stream for as long as they like,
 * and when the response is done (srv_conns_next) the --idle-timeout clock
 * starts for the next request on the kept-alive connection.
 *
 * Threading: all functions are thread-safe. The set must outlive the MHD
 * daemon (free it after MHD_stop_daemon).
 */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_conns;
struct srv_metrics;

struct srv_conns_opts {
	size_t max_connections;     /* more open -> srv_conns_over_limit */
	int64_t request_timeout_ms; /* to receive a connection's first request; 0 = none */
	/* A kept-alive connection's life between a response and its next
	 * completed request (closed silently, not counted); 0 = none. */
	int64_t idle_timeout_ms;
	/* Write a 408 Status on the socket before shutting it down (only on a
	 * connection that has had no response yet, see conns.c). Only for
	 * plain HTTP: under TLS raw bytes would corrupt the stream. */
	bool answer_timeouts;
};

/* Creates the set and starts its reaper thread. m (borrowed, may be NULL)
 * counts the cut-off connections as SRV_LIMIT_REQUEST_TIME. */
struct srv_conns *srv_conns_new(const struct srv_conns_opts *o, struct srv_metrics *m);
/* Stops the reaper and frees the set. Accepts NULL. */
void srv_conns_free(struct srv_conns *c);

/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the set. */
void srv_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* Whether conn was accepted while --max-connections others were open (it
 * should be answered 503 and closed). */
bool srv_conns_over_limit(struct MHD_Connection *conn);
/* conn's request headers are in (its body may follow): a 408 then says
 * the body was not read in full, not that nothing was. */
void srv_conns_headers(struct MHD_Connection *conn);
/* conn's request has been received: its deadline stops. */
void srv_conns_received(struct MHD_Connection *conn);
/* conn's response is done: the deadline for its next request starts. */
void srv_conns_next(struct MHD_Connection *conn);

/* Connections open now. */
size_t srv_conns_open(struct srv_conns *c);
