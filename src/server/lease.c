/*
 * server/lease — Lease objects in the store: node heartbeats (PUT
 * /apis/keel/v1/leases/{node} by each agent) and the controllers' leader
 * leases (controllers/leader.c), under the store key "leases//NAME", so
 * that every API server sharing a store (LMDB here, etcd with several
 * servers) sees every renewal. GET reads one, GET /leases lists them
 * (LeaseList at one revision), PUT renews or acquires.
 *
 * A PUT is one read-compute-write (server/write.h): srv_lease_next judges
 * the live lease and the compare-and-swap on its resourceVersion makes the
 * judgement atomic — a renewal that raced another is recomputed on the new
 * state, on LMDB and on etcd alike. The rule: a lease held by another
 * holder that has not expired (renewTime + leaseDurationSeconds) is not
 * granted (409 naming the holder), so two agents started with the same
 * --name do not both run the node and two controllers do not both lead; a
 * metadata.resourceVersion in the body is a precondition (409 on
 * mismatch), which is what leader election's "take it only if it is still
 * the version I judged expired" needs. renewTime carries microseconds, as
 * Kubernetes' MicroTime, because leader leases are a few seconds long.
 *
 * The price: every heartbeat is a durable write and a revision (no watch
 * event: Lease is not a kind of the watch hub). 1,000 agents renewing
 * every 10 s are 100 writes/s.
 */
#include "server/lease.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/kind.h"
#include "api/meta.h"
#include "api/status.h"
#include "common/kerr.h"
#include "common/util.h"
#include "server/handlers.h"
#include "server/http.h"
#include "server/objects.h"
#include "server/verbs.h"
#include "server/write.h"
#include "store/store.h"

int64_t srv_lease_parse_us(const char *s)
{
	int64_t sec = time_parse_rfc3339(s);
	if (sec < 0)
		return -1;
	const char *dot = strchr(s, '.');
	int64_t us = 0;
	if (dot)
		for (int i = 1, scale = 100000; i <= 6 && dot[i] >= '0' && dot[i] <= '9';
		     i++, scale /= 10)
			us += (dot[i] - '0') * scale;
	return sec * 1000000 + us;
}

static char *format_us(char *buf, size_t len, int64_t us)
{
	char sec[32];
	time_rfc3339(sec, sizeof sec, us / 1000000);
	sec[strlen(sec) - 1] = '\0'; /* the 'Z' */
	snprintf(buf, len, "%s.%06dZ", sec, (int)(us % 1000000));
	return buf;
}

int64_t srv_lease_expiry_us(json_t *lease)
{
	json_t *spec = json_object_get(lease, "spec");
	int64_t renew = srv_lease_parse_us(json_string_value(json_object_get(spec, "renewTime")));
	if (renew < 0)
		return 0;
	return renew + json_integer_value(json_object_get(spec, "leaseDurationSeconds")) * 1000000;
}

int srv_lease_next(json_t *live, const char *name, const struct srv_lease_req *q, int64_t now_us,
                   json_t **next, struct kerr *err)
{
	if (q->want_rv && (!live || api_obj_rv(live) != q->want_rv))
		return kerr_set(err, ESTALE, SRV_CONFLICT_MSG);
	json_t *spec = json_object_get(live, "spec");
	const char *had = json_string_value(json_object_get(spec, "holderIdentity"));
	bool same = had && streq(had, q->holder);
	int64_t expires = srv_lease_expiry_us(live);
	if (live && had && *had && !same && *q->holder && now_us < expires) {
		int64_t renew =
		    srv_lease_parse_us(json_string_value(json_object_get(spec, "renewTime")));
		return kerr_set(err, EBUSY,
		                "lease %s is held by %s (renewed %llds ago, expires in %llds); not "
		                "granted to %s",
		                name, had, (long long)((now_us - renew) / 1000000),
		                (long long)((expires - now_us + 999999) / 1000000), q->holder);
	}
	char now[40];
	format_us(now, sizeof now, now_us);
	json_t *acquire = json_object_get(spec, "acquireTime");
	json_int_t transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
	if (live && !same && *q->holder)
		transitions++;
	json_t *n =
	    json_pack("{s:s, s:s, s:o, s:{s:s, s:I, s:s, s:s, s:I}}", "kind", "Lease", "apiVersion",
	              "keel/v1", "metadata",
	              live ? json_deep_copy(api_obj_meta(live)) : json_pack("{s:s}", "name", name),
	              "spec", "holderIdentity", q->holder, "leaseDurationSeconds",
	              (json_int_t)q->duration_s, "renewTime", now, "acquireTime",
	              same && json_is_string(acquire) ? json_string_value(acquire) : now,
	              "leaseTransitions", transitions);
	if (!live)
		srv_obj_init_created(n);
	json_object_del(api_obj_meta(n), "resourceVersion"); /* the store sets it */
	*next = n;
	return 0;
}

/* ---- the HTTP side ---- */

/* The renewal a PUT asks for: spec.holderIdentity (default: the lease's
 * name, what agents before holder checks sent, an empty body),
 * spec.leaseDurationSeconds (default SRV_LEASE_DEFAULT_S) and
 * metadata.resourceVersion. Strings are copied into w. */
static int lease_request(struct srv_req *r, struct srv_write *w, struct srv_lease_req *q,
                         struct kerr *err)
{
	_cleanup_json_ json_t *body = NULL;
	if (r->body.len && srv_json_parse(r->body.data, r->body.len, true, &body, err) < 0)
		return -EBADMSG;
	json_t *spec = json_object_get(body, "spec");
	json_t *h = json_object_get(spec, "holderIdentity");
	json_t *d = json_object_get(spec, "leaseDurationSeconds");
	if (h && (!json_is_string(h) || json_string_length(h) > SRV_LEASE_MAX_HOLDER))
		return kerr_set(err, EINVAL,
		                "spec.holderIdentity: must be a string of at most %d characters",
		                SRV_LEASE_MAX_HOLDER);
	if (d && (!json_is_integer(d) || json_integer_value(d) < 1 ||
	          json_integer_value(d) > SRV_LEASE_MAX_S))
		return kerr_set(err, EINVAL, "spec.leaseDurationSeconds: must be 1-%d",
		                SRV_LEASE_MAX_S);
	if (srv_obj_client_rv(body, &q->want_rv, err) < 0)
		return -EBADMSG;
	if (h && !json_string_length(h) && !q->want_rv)
		return kerr_set(err, EINVAL,
		                "spec.holderIdentity: an empty holder releases the lease and needs "
		                "metadata.resourceVersion (the version you hold)");
	q->holder = srv_write_strdup(w, h ? json_string_value(h) : r->route.name);
	q->duration_s = d ? json_integer_value(d) : SRV_LEASE_DEFAULT_S;
	return 0;
}

static int lease_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t t = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	const char *name = strrchr(w->key, '/') + 1;
	int r = srv_lease_next(live, name, w->arg, t, next, err);
	return r < 0 ? r : STORE_WRITE;
}

static enum MHD_Result lease_reply(struct srv_req *r, int rc, struct kerr *err, struct srv_write *w)
{
	if (rc == -EBUSY)
		return srv_reply_status(r, 409, "Conflict", "%s", kerr_msg(err));
	if (rc < 0) /* the route has no kind: name the resource here */
		return srv_reply_error(r, err, "leases", r->route.name);
	return srv_reply_write_ok(r, rc, err, w);
}

static enum MHD_Result lease_put(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	const char *ctl = api_lease_reserved_for(r->route.name);
	if (ctl && streq(r->who.role, "node"))
		return srv_reply_status(
		    r, 403, "Forbidden",
		    "user \"%s\" (role node) cannot update leases \"%s\": it is "
		    "the leader lease of the %s controller",
		    r->who.name, r->route.name, ctl);
	_cleanup_free_ char *key = store_key("leases", NULL, r->route.name);
	struct srv_write *w = srv_write_new(r->srv, NULL, key);
	struct srv_lease_req *q = srv_write_alloc(w, sizeof *q);
	if (lease_request(r, w, q, &err) < 0) {
		srv_write_free(w);
		return srv_reply_status(r, 400, "BadRequest", "lease %s: %s", r->route.name,
		                        kerr_msg(&err));
	}
	w->compute = lease_compute;
	w->arg = q;
	w->reply = lease_reply;
	return srv_write_submit(r, w);
}

static enum MHD_Result lease_get(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_free_ char *key = store_key("leases", NULL, r->route.name);
	json_t *obj = NULL;
	int rc = store_get(r->srv->store, key, &obj, &err);
	if (rc == -ENOENT)
		return srv_reply_status(r, 404, "NotFound", "leases \"%s\" not found",
		                        r->route.name);
	if (rc < 0)
		return srv_reply_error(r, &err, "leases", r->route.name);
	return srv_reply_json(r, 200, obj, NULL, NULL);
}

static enum MHD_Result lease_list(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	json_t *items = NULL;
	uint64_t rev = 0;
	_cleanup_free_ char *next = NULL;
	if (store_list(r->srv->store, "leases/", NULL, 0, NULL, NULL, &items, &rev, &next, &err) <
	    0)
		return srv_reply_error(r, &err, "leases", NULL);
	char rv[24];
	snprintf(rv, sizeof rv, "%llu", (unsigned long long)rev);
	return srv_reply_json(r, 200,
	                      json_pack("{s:s, s:s, s:{s:s}, s:o}", "kind", "LeaseList",
	                                "apiVersion", "keel/v1", "metadata", "resourceVersion", rv,
	                                "items", items),
	                      NULL, NULL);
}

enum MHD_Result srv_handle_lease(struct srv_req *r)
{
	if (!r->route.name)
		return lease_list(r);
	return r->method == SRV_PUT ? lease_put(r) : lease_get(r);
}
