/*
 * server/http — libmicrohttpd glue: request lifecycle, body limits, auth,
 * replies, the per-request log line and metrics.
 *
 * MHD calls the access handler once with the headers, then once per chunk
 * of body, then once more with no data. Everything that can be decided
 * from the headers — route, method, the token (401), what its role may do
 * (403, server/authz.h), a Content-Length over the limit (413), the
 * connection and header limits (503, 431) — is decided on the first call
 * and answered on it: MHD then sends no 100 Continue and reads none of
 * the body, and the answer says Connection: close when a body was
 * announced (MHD will not read it, so the connection cannot be reused).
 * A client is told at once rather than after uploading what we would
 * throw away. Only a chunked body that runs over --max-body midway is
 * found out late: the rest is discarded as it arrives, up to a bound of
 * a small multiple of --max-body (past it the connection is dropped), and
 * the 413 is sent on the last call.
 *
 * Limits: a request that hits one records it in r->limit, counted once in
 * keel_limit_rejections_total when the request ends. The connection limit
 * and the header limit are checked first, before auth, because they guard
 * the server rather than the API; the request deadline is conns.c's, and
 * it stops once the access handler has the whole request.
 */
#include "server/http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/meta.h"
#include "api/status.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "server/auth.h"
#include "server/authz.h"
#include "server/conns.h"
#include "server/etcdhealth.h"
#include "server/handlers.h"
#include "server/metrics.h"
#include "server/write.h"
#include "store/store.h"

/* Past this much discarded body (a chunked body over --max-body) we stop
 * reading and close the connection: a small multiple of --max-body, at
 * least MIN_DISCARD, so that a body a little over the limit still gets
 * its 413. */
#define DISCARD_FACTOR 2
#define MIN_DISCARD    ((size_t)64 << 10)

const char *srv_req_query(struct srv_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *srv_req_header(struct srv_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}

const char *srv_req_user(struct srv_req *r)
{
	return r->who.name ? r->who.name : "";
}

enum MHD_Result srv_reply_response(struct srv_req *r, unsigned code, struct MHD_Response *resp)
{
	r->status = code;
	r->queued = true;
	enum MHD_Result ret = MHD_queue_response(r->conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static struct MHD_Response *buffer_response(char *data, size_t len, const char *content_type)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return resp;
}

enum MHD_Result srv_reply_json(struct srv_req *r, unsigned code, json_t *obj,
                               const char *extra_header, const char *extra_value)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!text)
		text = xstrdup("{}");
	return srv_reply_json_text(r, code, text, strlen(text), extra_header, extra_value);
}

enum MHD_Result srv_reply_json_text(struct srv_req *r, unsigned code, char *text, size_t n,
                                    const char *extra_header, const char *extra_value)
{
	text = xrealloc(text, n + 2);
	text[n] = '\n';
	text[n + 1] = '\0';
	struct MHD_Response *resp = buffer_response(text, n + 1, "application/json");
	if (!resp)
		return MHD_NO;
	if (extra_header && extra_value)
		MHD_add_response_header(resp, extra_header, extra_value);
	if (code == 405 && r->routed)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		                        srv_route_allow_header(&r->route));
	return srv_reply_response(r, code, resp);
}

enum MHD_Result srv_reply_text(struct srv_req *r, unsigned code, const char *content_type,
                               const char *text)
{
	struct MHD_Response *resp = buffer_response(xstrdup(text), strlen(text), content_type);
	return resp ? srv_reply_response(r, code, resp) : MHD_NO;
}

static bool strendswith(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* The limit that a validation Status reports, if any: a count or size
 * cause on a metadata.labels / metadata.annotations map itself (causes on
 * one key are about that key's syntax). */
static enum srv_limit limit_of_causes(json_t *st)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(json_object_get(st, "details"), "causes"), i, c)
	{
		const char *f = json_string_value(json_object_get(c, "field"));
		const char *why = json_string_value(json_object_get(c, "reason"));
		if (!f || !why ||
		    (!streq(why, "FieldValueTooMany") && !streq(why, "FieldValueTooLong")))
			continue;
		if (strendswith(f, "metadata.labels"))
			return SRV_LIMIT_LABELS;
		if (strendswith(f, "metadata.annotations"))
			return SRV_LIMIT_ANNOTATIONS;
	}
	return SRV_LIMIT_NONE;
}

/* The codes that are not in api/status.c's table: HTTP-only. EHOSTUNREACH
 * is the etcd store's "no healthy endpoint" (store_set_unreachable): 503,
 * as /readyz says, and the client may retry (on another server). */
static void http_only_status(json_t *st, const struct kerr *err)
{
	if (err && err->code == EMEDIUMTYPE) {
		json_object_set_new(st, "code", json_integer(415));
		json_object_set_new(st, "reason", json_string("UnsupportedMediaType"));
	} else if (err && err->code == EHOSTUNREACH) {
		json_object_set_new(st, "code", json_integer(503));
		json_object_set_new(st, "reason", json_string("ServiceUnavailable"));
	}
}

enum MHD_Result srv_reply_error(struct srv_req *r, const struct kerr *err, const char *kind,
                                const char *name)
{
	json_t *st = api_status_from_kerr(err, kind, name);
	/* E2BIG in a handler is the object limit (srv_obj_check_size); the YAML
	 * parser's E2BIG sets r->limit itself first. */
	if (!r->limit && err && err->code == E2BIG)
		r->limit = SRV_LIMIT_OBJECT;
	if (!r->limit && err && err->code == EINVAL)
		r->limit = limit_of_causes(st);
	if (!r->limit && err && err->code == ENOSPC) /* a full store: 507 */
		r->limit = SRV_LIMIT_STORE;
	http_only_status(st, err);
	unsigned code = (unsigned)json_integer_value(json_object_get(st, "code"));
	if (code >= 500)
		log_warn("%s %s: %u %s", r->method_name, r->path, code, kerr_msg(err));
	return srv_reply_json(r, code, st, code == 503 ? "Retry-After" : NULL, "1");
}

static json_t *status_v(unsigned code, const char *reason, const char *fmt, va_list ap)
{
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	return api_status_new((int)code, reason, msg, NULL, NULL, NULL);
}

enum MHD_Result srv_reply_status(struct srv_req *r, unsigned code, const char *reason,
                                 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_t *st = status_v(code, reason, fmt, ap);
	va_end(ap);
	return srv_reply_json(r, code, st, NULL, NULL);
}

int srv_json_parse(const char *buf, size_t len, bool want_object, json_t **out, struct kerr *err)
{
	if (!buf || len == 0)
		return kerr_set(err, EBADMSG, "request body is empty (want a JSON object)");
	json_error_t je;
	json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!v)
		return kerr_set(err, EBADMSG, "invalid JSON at byte %d: %s", je.position, je.text);
	if (want_object && !json_is_object(v)) {
		json_decref(v);
		return kerr_set(err, EBADMSG, "request body must be a JSON object");
	}
	*out = v;
	return 0;
}

/* Records an error to send once the body has been read (see top). */
static void set_early(struct srv_req *r, unsigned code, json_t *status)
{
	if (r->early_code)
		return json_decref(status);
	r->early_code = (int)code;
	r->early_status = status;
}

static void set_early_err(struct srv_req *r, const struct kerr *err)
{
	json_t *st = api_status_from_kerr(err, NULL, NULL);
	http_only_status(st, err);
	set_early(r, (unsigned)json_integer_value(json_object_get(st, "code")), st);
}

static bool needs_auth(const struct srv_route *rt)
{
	return rt->type != SRV_ROUTE_HEALTHZ && rt->type != SRV_ROUTE_READYZ;
}

/* Whether the route reads or writes the store (the rest — /healthz,
 * /readyz, /version, /metrics, discovery — never waits for it). */
static bool needs_store(const struct srv_route *rt)
{
	return rt->type == SRV_ROUTE_COLLECTION || rt->type == SRV_ROUTE_ITEM ||
	       rt->type == SRV_ROUTE_LEASE || rt->type == SRV_ROUTE_TOKEN;
}

/* With --store etcd, while the health probe finds no endpoint healthy
 * (quorum lost), a request that needs the store gets its 503 from the
 * headers at once, rather than holding an HTTP thread for the gateway's
 * rounds of retries: with every thread held, even /healthz went
 * unanswered. Returns whether it was refused. */
static bool check_etcd(struct srv_req *r)
{
	if (!r->srv->etcdh || !needs_store(&r->route))
		return false;
	_cleanup_free_ char *why = srv_etcdh_unavailable(r->srv->etcdh);
	if (!why)
		return false;
	set_early(r, 503, api_status_new(503, "ServiceUnavailable", why, NULL, NULL, NULL));
	return true;
}

static void set_early_limit(struct srv_req *r, unsigned code, const char *reason,
                            enum srv_limit limit, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_early_limit(struct srv_req *r, unsigned code, const char *reason,
                            enum srv_limit limit, const char *fmt, ...)
{
	if (r->early_code)
		return;
	va_list ap;
	va_start(ap, fmt);
	set_early(r, code, status_v(code, reason, fmt, ap));
	va_end(ap);
	r->limit = limit;
}

static void body_too_big(struct srv_req *r, const char *what)
{
	_cleanup_free_ char *lim = srv_format_size(r->srv->opts.max_body);
	r->body_too_big = true;
	set_early_limit(r, 413, "RequestEntityTooLarge", SRV_LIMIT_BODY,
	                "request body too large: %sover the limit of %s (--max-body)", what, lim);
}

static void check_content_length(struct srv_req *r)
{
	const char *cl = srv_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!cl)
		return;
	char *end = NULL;
	unsigned long long n = strtoull(cl, &end, 10);
	if (end && *end == '\0' && n > r->srv->opts.max_body) {
		_cleanup_free_ char *what = xasprintf("Content-Length %llu is ", n);
		body_too_big(r, what);
	}
}

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
	(void)kind;
	*(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": ", CRLF */
	return MHD_YES;
}

/* The server-wide limits, checked before anything else. Returns whether
 * one was hit. */
static bool check_conn_limits(struct srv_req *r)
{
	const struct srv_opts *o = &r->srv->opts;
	if (srv_conns_over_limit(r->conn)) {
		r->early_close = true;
		set_early_limit(r, 503, "ServiceUnavailable", SRV_LIMIT_CONNECTIONS,
		                "too many connections (--max-connections %zu); retry later",
		                o->max_connections);
		return true;
	}
	size_t n = strlen(r->method_name) + strlen(r->raw_uri) + 11; /* " ", " HTTP/1.1", CRLF */
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_header_size, &n);
	if (n > o->max_header_bytes) {
		_cleanup_free_ char *lim = srv_format_size(o->max_header_bytes);
		r->early_close = true;
		set_early_limit(r, 431, "RequestHeaderFieldsTooLarge", SRV_LIMIT_HEADERS,
		                "request headers too large: %zu bytes, over the limit of %s "
		                "(--max-header-bytes)",
		                n, lim);
		return true;
	}
	return false;
}

/* A URI whose decoded path segments or query values hold a NUL or invalid
 * UTF-8 (srv_url_check): MHD's C strings would hide both. Returns whether
 * an error was set. A path segment that is not UTF-8 is a 404 when the path
 * does not route anyway and a 400 when it is a name. */
static bool check_raw_uri(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int rc = srv_url_check(r->raw_uri, &err);
	if (rc == 0)
		return false;
	if (rc == -EILSEQ) {
		_cleanup_kerr_ struct kerr rerr = KERR_INIT;
		struct srv_route rt = {0};
		if (srv_route_parse(r->path, &rt, &rerr) < 0) {
			size_t n = strcspn(r->raw_uri, "?#");
			_cleanup_free_ char *p = xstrndup(r->raw_uri, n < 512 ? n : 512);
			kerr_set(&err, ENOENT, "the server could not find the requested resource \"%s\"",
			         p);
		} else {
			err.code = EBADMSG;
		}
		srv_route_clear(&rt);
	}
	set_early_err(r, &err);
	return true;
}

static void forbid(struct srv_req *r, char *msg)
{
	const struct srv_route *rt = &r->route;
	json_t *st = api_status_new(403, "Forbidden", msg, NULL,
	                            rt->kind                      ? rt->kind->plural
	                            : rt->type == SRV_ROUTE_LEASE ? "leases"
	                            : rt->type == SRV_ROUTE_TOKEN ? "tokens"
	                                                          : NULL,
	                            rt->name);
	free(msg);
	set_early(r, 403, st);
}

/* The stored Task's spec.nodeName for a node's status write: "" when
 * unbound; NULL (and a 404 set) when there is no such Task. Owned. */
static char *task_node(struct srv_req *r)
{
	_cleanup_free_ char *key = store_key("tasks", r->route.ns, r->route.name);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *obj = NULL;
	int rc = store_get(r->srv->store, key, &obj, &err);
	if (rc == -ENOENT)
		kerr_set(&err, ENOENT, "tasks \"%s\" not found", r->route.name);
	if (rc < 0) {
		json_t *st = api_status_from_kerr(&err, "tasks", r->route.name);
		http_only_status(st, &err);
		set_early(r, (unsigned)json_integer_value(json_object_get(st, "code")), st);
		return NULL;
	}
	const char *n = json_string_value(api_obj_get_path(obj, "spec.nodeName"));
	return xstrdup(n ? n : "");
}

/* Asks server/authz whether the token's owner may do this; a denial is a
 * 403 sent in place of the handler's answer. body_name: the name in a
 * create's body, once it is in (NULL before). */
static void authorize(struct srv_req *r, const char *body_name)
{
	struct srv_authz_req q = {.user = r->who.name,
	                          .role = r->who.role,
	                          .method = r->method,
	                          .route = &r->route,
	                          .body_name = body_name};
	char *msg = NULL;
	enum srv_authz_result res = srv_authz_decide(&q, &msg);
	_cleanup_free_ char *node = NULL;
	if (res == SRV_AUTHZ_NEED_TASK_NODE) {
		if (!(node = task_node(r)))
			return;
		q.task_node = node;
		res = srv_authz_decide(&q, &msg);
	}
	if (res == SRV_AUTHZ_NEED_BODY_NAME)
		r->authz_body = true;
	else if (res == SRV_AUTHZ_DENY)
		forbid(r, msg);
}

/* The deferred decision of a create: metadata.name of the body ("" when
 * it names none or is not JSON: denied, not parsed any further). */
static void authorize_body(struct srv_req *r)
{
	r->authz_body = false;
	json_t *obj = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
	const char *name = json_string_value(api_obj_get_path(obj, "metadata.name"));
	_cleanup_free_ char *copy = xstrdup(name ? name : "");
	json_decref(obj);
	authorize(r, copy);
	if (r->authz_body) /* cannot happen: the name is known now */
		set_early(
		    r, 500,
		    api_status_new(500, "InternalError", "authorization loop", NULL, NULL, NULL));
}

/* First callback: decide all that the headers allow. */
static void req_begin(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (check_conn_limits(r) || check_raw_uri(r))
		return;
	if (srv_route_parse(r->path, &r->route, &err) < 0) {
		r->routed = false;
		/* unknown paths still need a token, so that they do not reveal what exists */
		const char *authz = srv_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
		struct srv_ident who = {0};
		bool ok = srv_auth_check(r->srv->auth, authz, &who);
		srv_ident_clear(&who);
		if (!ok)
			set_early(r, 401,
			          api_status_new(401, "Unauthorized",
			                         "Unauthorized: a valid bearer token is required",
			                         NULL, NULL, NULL));
		set_early_err(r, &err);
		return;
	}
	r->routed = true;
	if (needs_auth(&r->route)) {
		const char *authz = srv_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
		if (!srv_auth_check(r->srv->auth, authz, &r->who)) {
			set_early(r, 401,
			          api_status_new(401, "Unauthorized",
			                         authz
			                             ? "Unauthorized: the bearer token is not valid"
			                             : "Unauthorized: a bearer token is required "
			                               "(Authorization: Bearer TOKEN)",
			                         NULL, NULL, NULL));
			return;
		}
	}
	if (!srv_route_allows(&r->route, r->method)) {
		set_early(r, 405,
		          api_status_new(405, "MethodNotAllowed", "method not allowed here", NULL,
		                         NULL, NULL));
		_cleanup_free_ char *msg =
		    xasprintf("%s is not allowed on %s (allowed: %s)", r->method_name, r->path,
		              srv_route_allow_header(&r->route));
		json_object_set_new(r->early_status, "message", json_string(msg));
		return;
	}
	if (check_etcd(r))
		return;
	if (r->who.role)
		authorize(r, NULL);
	check_content_length(r);
}

static void take_body(struct srv_req *r, const char *data, size_t n)
{
	if (r->early_code || r->body_too_big) {
		r->discarded += n;
		return;
	}
	if (r->body.len + n > r->srv->opts.max_body) {
		sbuf_free(&r->body);
		body_too_big(r, "");
		r->discarded += n;
		return;
	}
	sbuf_append(&r->body, data, n);
}

static size_t discard_bound(const struct srv_req *r)
{
	size_t b = r->srv->opts.max_body * DISCARD_FACTOR;
	return b > MIN_DISCARD ? b : MIN_DISCARD;
}

/* Whether the request says a body follows (Content-Length other than 0,
 * or Transfer-Encoding). */
static bool announces_body(struct srv_req *r)
{
	const char *cl = srv_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return srv_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) || (cl && !streq(cl, "0"));
}

static enum MHD_Result reply_early(struct srv_req *r)
{
	json_t *st = TAKE_PTR(r->early_status);
	return srv_reply_json(r, (unsigned)r->early_code, st,
	                      r->early_close ? MHD_HTTP_HEADER_CONNECTION : NULL, "close");
}

void *srv_http_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct srv_req *r = xcalloc(1, sizeof *r);
	r->srv = cls;
	r->conn = conn;
	r->raw_uri = xstrdup(uri ? uri : "");
	r->start_ns = time_mono_ns();
	return r;
}

enum MHD_Result srv_http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct srv_req *r = *con_cls;
	if (!r) /* no URI log callback ran (it always should) */
		*con_cls = r = srv_http_uri_log(cls, url, conn);
	if (!r->began) {
		r->began = true;
		r->method = srv_method_parse(method);
		r->method_name = xstrdup(method);
		r->path = xstrdup(url);
		srv_conns_headers(conn);
		req_begin(r);
		if (r->early_code) {
			if (announces_body(r))
				r->early_close = true;
			srv_conns_received(conn);
			return reply_early(r);
		}
		return MHD_YES;
	}
	if (r->queued) /* answered early: MHD reads no body after that */
		return MHD_YES;
	if (r->write) /* resumed: its write is done (server/write.h) */
		return srv_write_resume(r);
	if (*upload_data_size) {
		take_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return r->discarded > discard_bound(r) ? MHD_NO : MHD_YES;
	}
	srv_conns_received(conn);
	if (r->authz_body && !r->early_code)
		authorize_body(r);
	if (r->early_code)
		return reply_early(r);
	return srv_handle(r);
}

void srv_http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
	struct server *srv = cls;
	struct srv_req *r = *con_cls;
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		srv_conns_next(conn);
	if (!r)
		return;
	*con_cls = NULL;
	if (!r->began) { /* the connection ended before the headers were complete */
		free(r->raw_uri);
		free(r);
		return;
	}
	srv_metrics_limit(srv->metrics, r->limit);
	int64_t dur = time_mono_ns() - r->start_ns;
	unsigned code = r->queued ? r->status : 500;
	srv_metrics_observe(srv->metrics, r->method, code, dur, r->is_watch);
	if (code >= 500 && code != 507)
		log_warn("%s %s %u %.1fms%s", r->method_name, r->path, code, (double)dur / 1e6,
		         toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
		                                                    : " (connection ended early)");
	else
		log_debug("%s %s %u %.1fms%s", r->method_name, r->path, code, (double)dur / 1e6,
		          toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
		                                                     : " (connection ended early)");
	srv_write_abandon(r); /* none unless MHD ended the request early */
	srv_route_clear(&r->route);
	srv_ident_clear(&r->who);
	sbuf_free(&r->body);
	json_decref(r->early_status);
	free(r->method_name);
	free(r->path);
	free(r->raw_uri);
	free(r);
}
