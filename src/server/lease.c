/*
 * server/lease — node leases: the agents' heartbeats. PUT
 * /apis/keel/v1/leases/{node} renews the lease of a node, GET
 * /apis/keel/v1/leases lists them (LeaseList), GET .../leases/{node}
 * reads one. Leases live in this process's memory only — no store write,
 * no revision, no watch event — so a thousand agents renewing every few
 * seconds cost nothing durable; after a server restart the table is
 * empty until each agent renews (within one heartbeat interval). The
 * table is process-wide (one API server per process).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "api/status.h"
#include "common/util.h"
#include "server/handlers.h"

#define LEASE_DURATION_S 40
#define MAX_LEASES       100000

static pthread_mutex_t lease_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *leases; /* name -> renew time (unix seconds, integer) */

static json_t *lease_object(const char *name, int64_t renew)
{
	char buf[40];
	return json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:i}}", "kind", "Lease", "apiVersion",
	                 "keel/v1", "metadata", "name", name, "spec", "holderIdentity", name,
	                 "renewTime", time_rfc3339(buf, sizeof buf, renew), "leaseDurationSeconds",
	                 LEASE_DURATION_S);
}

static enum MHD_Result lease_put(struct srv_req *r)
{
	int64_t now = time_now_unix();
	pthread_mutex_lock(&lease_mu);
	if (!leases)
		leases = json_object();
	bool full =
	    !json_object_get(leases, r->route.name) && json_object_size(leases) >= MAX_LEASES;
	if (!full)
		json_object_set_new(leases, r->route.name, json_integer(now));
	pthread_mutex_unlock(&lease_mu);
	if (full)
		return srv_reply_status(r, 429, "TooManyRequests", "too many leases (at most %d)",
		                        MAX_LEASES);
	return srv_reply_json(r, 200, lease_object(r->route.name, now), NULL, NULL);
}

static enum MHD_Result lease_get(struct srv_req *r)
{
	pthread_mutex_lock(&lease_mu);
	json_t *v = leases ? json_object_get(leases, r->route.name) : NULL;
	int64_t renew = v ? json_integer_value(v) : 0;
	pthread_mutex_unlock(&lease_mu);
	if (!v)
		return srv_reply_status(r, 404, "NotFound", "leases \"%s\" not found",
		                        r->route.name);
	return srv_reply_json(r, 200, lease_object(r->route.name, renew), NULL, NULL);
}

static enum MHD_Result lease_list(struct srv_req *r)
{
	json_t *items = json_array();
	pthread_mutex_lock(&lease_mu);
	const char *name;
	json_t *v;
	json_object_foreach(leases, name, v)
	{
		json_array_append_new(items, lease_object(name, json_integer_value(v)));
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
