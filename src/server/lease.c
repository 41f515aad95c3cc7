/*
 * server/lease — node leases: the agents' heartbeats. PUT
 * /apis/keel/v1/leases/{node} renews the lease of a node, GET
 * /apis/keel/v1/leases lists them (LeaseList), GET .../leases/{node}
 * reads one. Leases live in this process's memory only — no store write,
 * no revision, no watch event — so a thousand agents renewing every few
 * seconds cost nothing durable; after a server restart the table is
 * empty until each agent renews (within one heartbeat interval). The
 * table is process-wide (one API server per process).
 *
 * Each lease has a holder (spec.holderIdentity: which agent) and a
 * duration; while it has not expired no other holder gets it (409), so
 * two agents started with the same --name do not both run the node.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "api/status.h"
#include "common/kerr.h"
#include "server/http.h"
#include "common/util.h"
#include "server/handlers.h"

#define LEASE_DURATION_S 40 /* when the holder names none */
#define MAX_DURATION_S   3600
#define MAX_HOLDER       253
#define MAX_LEASES       100000

static pthread_mutex_t lease_mu = PTHREAD_MUTEX_INITIALIZER;
/* name -> {"holder": s, "renew": unix s, "acquire": unix s, "duration": s} */
static json_t *leases;

static json_t *lease_object(const char *name, json_t *l)
{
	char renew[40], acquire[40];
	const char *holder = json_string_value(json_object_get(l, "holder"));
	return json_pack(
	    "{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:s, s:I}}", "kind", "Lease", "apiVersion", "keel/v1",
	    "metadata", "name", name, "spec", "holderIdentity", holder ? holder : name, "renewTime",
	    time_rfc3339(renew, sizeof renew, json_integer_value(json_object_get(l, "renew"))),
	    "acquireTime",
	    time_rfc3339(acquire, sizeof acquire, json_integer_value(json_object_get(l, "acquire"))),
	    "leaseDurationSeconds", json_integer_value(json_object_get(l, "duration")));
}

/* The holder and duration a PUT asks for: spec.holderIdentity (default:
 * the lease's name, what agents before holder checks sent, an empty
 * body) and spec.leaseDurationSeconds (default LEASE_DURATION_S). */
static int lease_request(struct srv_req *r, char **holder, json_int_t *duration,
                         struct kerr *err)
{
	_cleanup_json_ json_t *body = NULL;
	if (r->body.len && srv_json_parse(r->body.data, r->body.len, true, &body, err) < 0)
		return -EBADMSG;
	json_t *spec = json_object_get(body, "spec");
	json_t *h = json_object_get(spec, "holderIdentity");
	json_t *d = json_object_get(spec, "leaseDurationSeconds");
	if (h && (!json_is_string(h) || !json_string_length(h) ||
	          json_string_length(h) > MAX_HOLDER))
		return kerr_set(err, EINVAL, "spec.holderIdentity: must be a string of 1-%d characters",
		                MAX_HOLDER);
	if (d && (!json_is_integer(d) || json_integer_value(d) < 1 ||
	          json_integer_value(d) > MAX_DURATION_S))
		return kerr_set(err, EINVAL, "spec.leaseDurationSeconds: must be 1-%d", MAX_DURATION_S);
	*holder = xstrdup(h ? json_string_value(h) : r->route.name);
	*duration = d ? json_integer_value(d) : LEASE_DURATION_S;
	return 0;
}

/* Renews (or acquires) a lease. One held by another holder that has not
 * expired (renewTime + leaseDurationSeconds) is not taken: 409 Conflict
 * naming the holder, as etcd and Consul refuse a held lock, so that a
 * second agent started with a node's name cannot run that node's Tasks
 * too. An expired one passes to the new holder. */
static enum MHD_Result lease_put(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_free_ char *holder = NULL;
	json_int_t duration = 0;
	if (lease_request(r, &holder, &duration, &err) < 0)
		return srv_reply_status(r, 400, "BadRequest", "lease %s: %s", r->route.name,
		                        kerr_msg(&err));
	int64_t now = time_now_unix();
	pthread_mutex_lock(&lease_mu);
	if (!leases)
		leases = json_object();
	json_t *l = json_object_get(leases, r->route.name);
	bool full = !l && json_object_size(leases) >= MAX_LEASES;
	const char *had = json_string_value(json_object_get(l, "holder"));
	int64_t expires = json_integer_value(json_object_get(l, "renew")) +
	                  json_integer_value(json_object_get(l, "duration"));
	bool held = l && had && !streq(had, holder) && now < expires;
	_cleanup_free_ char *other = held ? xstrdup(had) : NULL;
	int64_t renewed = now - json_integer_value(json_object_get(l, "renew"));
	json_t *out = NULL;
	if (!full && !held) {
		int64_t acquire = l && streq(had, holder)
		                      ? json_integer_value(json_object_get(l, "acquire"))
		                      : now;
		json_object_set_new(leases, r->route.name,
		                    json_pack("{s:s, s:I, s:I, s:I}", "holder", holder, "renew",
		                              (json_int_t)now, "acquire", (json_int_t)acquire,
		                              "duration", duration));
		out = lease_object(r->route.name, json_object_get(leases, r->route.name));
	}
	pthread_mutex_unlock(&lease_mu);
	if (full)
		return srv_reply_status(r, 429, "TooManyRequests", "too many leases (at most %d)",
		                        MAX_LEASES);
	if (held)
		return srv_reply_status(r, 409, "Conflict",
		                        "lease %s is held by %s (renewed %llds ago, expires in "
		                        "%llds); not granted to %s",
		                        r->route.name, other, (long long)renewed,
		                        (long long)(expires - now), holder);
	return srv_reply_json(r, 200, out, NULL, NULL);
}

static enum MHD_Result lease_get(struct srv_req *r)
{
	pthread_mutex_lock(&lease_mu);
	json_t *v = leases ? json_object_get(leases, r->route.name) : NULL;
	json_t *out = v ? lease_object(r->route.name, v) : NULL;
	pthread_mutex_unlock(&lease_mu);
	if (!out)
		return srv_reply_status(r, 404, "NotFound", "leases \"%s\" not found",
		                        r->route.name);
	return srv_reply_json(r, 200, out, NULL, NULL);
}

static enum MHD_Result lease_list(struct srv_req *r)
{
	json_t *items = json_array();
	pthread_mutex_lock(&lease_mu);
	const char *name;
	json_t *v;
	json_object_foreach(leases, name, v)
	{
		json_array_append_new(items, lease_object(name, v));
	}
	pthread_mutex_unlock(&lease_mu);
	return srv_reply_json(r, 200,
	                      json_pack("{s:s, s:s, s:{}, s:o}", "kind", "LeaseList", "apiVersion",
	                                "keel/v1", "metadata", "items", items),
	                      NULL, NULL);
}

enum MHD_Result srv_handle_lease(struct srv_req *r)
{
	if (!r->route.name)
		return lease_list(r);
	return r->method == SRV_PUT ? lease_put(r) : lease_get(r);
}
