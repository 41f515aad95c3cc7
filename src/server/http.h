/*
 * server/http — the libmicrohttpd side of the API server: the server
 * object, one request's state, the access handler, and the reply helpers
 * every handler uses.
 *
 * Threading: MHD runs a pool of worker threads; each request lives on one
 * of them from its first callback to its completion. struct server is
 * shared and read-only after startup, except for what its parts guard
 * themselves (store, watch hub, metrics, the token set).
 */
#pragma once

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/opts.h"
#include "server/router.h"

struct kerr;
struct store;
struct srv_hub;
struct srv_auth;
struct srv_metrics;
struct srv_conns;
struct srv_write;
struct srv_etcdh;

struct server {
	struct srv_opts opts;
	struct store *store;
	struct srv_hub *hub;
	struct srv_auth *auth;
	const char *in_process_token; /* borrowed from auth */
	struct srv_metrics *metrics;
	struct srv_conns *conns;
	struct srv_etcdh *etcdh; /* with --store etcd: the health probe; else NULL */
	struct MHD_Daemon *mhd;
	char *url; /* owned: "http://HOST:PORT" once listening */
	atomic_bool ready;
	atomic_uint writes_pending; /* srv_write_submit's, not answered yet */
	atomic_bool stopping;       /* server_close began: writes no longer suspend */
	/* More /metrics text from the process the server runs in (keel up's
	 * sync loop), under metrics_mu: server_set_metrics_source. */
	pthread_mutex_t metrics_mu;
	void (*metrics_source)(void *ud, struct sbuf *out);
	void *metrics_ud;
};

struct srv_req {
	struct server *srv;
	struct MHD_Connection *conn;
	enum srv_method method;
	char *method_name; /* owned */
	char *path;        /* owned */
	char *raw_uri;     /* owned: as sent, before MHD decoded it (srv_http_uri_log) */
	bool began;        /* the access handler has seen the headers */
	struct srv_route route;
	bool routed;
	struct sbuf body;
	bool body_too_big;
	size_t discarded;
	int64_t start_ns;
	unsigned status; /* the code queued, for the log and metrics */
	bool queued;
	bool is_watch;
	int early_code;          /* an error decided before the body was read */
	json_t *early_status;    /* its Status object (owned) */
	struct srv_ident who;    /* the token's owner (owned; empty where no token is needed) */
	bool authz_body;         /* authorization waits for the body (a node's create) */
	bool early_close;        /* ... sent with Connection: close */
	enum srv_limit limit;    /* the limit this request hit, counted once at its end */
	struct srv_write *write; /* owned: a submitted write not answered yet (write.h) */
};

/* MHD's URI log callback (cls = struct server): allocates the request with
 * the raw URI, so that srv_http_access can check what decoding would hide. */
void *srv_http_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);

/* The MHD access handler and completion callback (cls = struct server). */
enum MHD_Result srv_http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls);
void srv_http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe);

/* Query parameter / header of the request (borrowed from MHD), or NULL. */
const char *srv_req_query(struct srv_req *r, const char *key);
const char *srv_req_header(struct srv_req *r, const char *key);
/* The name of the user whose token the request carries (borrowed from the
 * server's token set), "" without a valid one. */
const char *srv_req_user(struct srv_req *r);

/* Replies. Each queues exactly one response and returns MHD's result.
 * srv_reply_json steals obj. extra_header/extra_value may be NULL. */
enum MHD_Result srv_reply_json(struct srv_req *r, unsigned code, json_t *obj,
                               const char *extra_header, const char *extra_value);
/* The same with obj's JSON text already made (text owned, taken; n its
 * length without a NUL): one serialisation saved. */
enum MHD_Result srv_reply_json_text(struct srv_req *r, unsigned code, char *text, size_t n,
                                    const char *extra_header, const char *extra_value);
enum MHD_Result srv_reply_text(struct srv_req *r, unsigned code, const char *content_type,
                               const char *text);
/* A Status object for err (HTTP code from api/status.h); kind is the plural
 * resource name for details, may be NULL. */
enum MHD_Result srv_reply_error(struct srv_req *r, const struct kerr *err, const char *kind,
                                const char *name);
/* A Status object with an explicit code and reason. */
enum MHD_Result srv_reply_status(struct srv_req *r, unsigned code, const char *reason,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Queues a prepared response (taking it over) with code. */
enum MHD_Result srv_reply_response(struct srv_req *r, unsigned code, struct MHD_Response *resp);

/* Parses a request body as JSON: -EBADMSG "invalid JSON at byte N: ..." or
 * "request body must be a JSON object" when want_object and it is not. */
int srv_json_parse(const char *buf, size_t len, bool want_object, json_t **out, struct kerr *err);
