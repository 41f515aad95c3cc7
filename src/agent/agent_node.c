/*
 * agent_node — the agent's Nodes: registration (server-side apply of the
 * Node with its labels, then its status), lease renewals every heartbeat
 * interval, and status rewrites only when something in it changed (usage
 * is rounded to 10m CPU and 1Mi memory and refreshed at most every
 * --status-interval), so that a thousand idle nodes cost the store
 * nothing. Renewals of many simulated nodes are spread evenly over the
 * interval instead of coming in bursts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "api/kind.h"
#include "api/quantity.h"
#include "client/client.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

#define REGISTER_THREADS   8
#define UNAUTHORIZED_TRIES 3 /* 401s in a row before registration gives up */

void agent_host_capacity(int64_t *cpu_milli, int64_t *mem_bytes)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	*cpu_milli = (n > 0 ? n : 1) * 1000;
	*mem_bytes = 0;
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		long long kb = 0;
		if (sscanf(line, "MemTotal: %lld kB", &kb) == 1) {
			*mem_bytes = kb * 1024;
			break;
		}
	}
	if (f)
		fclose(f);
}

static json_t *quantities(int64_t cpu, int64_t mem)
{
	_cleanup_free_ char *c = api_quantity_format_cpu(cpu);
	_cleanup_free_ char *m = api_quantity_format_bytes(mem);
	return json_pack("{s:s, s:s}", "cpu", c, "memory", m);
}

/* The part of a Node's status that counts as "changed": no timestamps. */
static json_t *status_content(struct agent *a, struct anode *n)
{
	struct utsname u;
	uname(&u);
	pthread_mutex_lock(&a->mu);
	int64_t cpu = (n->usage_cpu + 5) / 10 * 10;
	int64_t mem = (n->usage_mem + (1 << 19)) >> 20 << 20;
	pthread_mutex_unlock(&a->mu);
	json_t *s = json_object();
	json_object_set_new(s, "capacity", quantities(a->cap_cpu, a->cap_mem));
	json_object_set_new(s, "allocatable", quantities(a->cap_cpu, a->cap_mem));
	json_object_set_new(s, "usage", quantities(cpu, mem));
	json_object_set_new(s, "address", json_string(a->address));
	json_object_set_new(s, "nodeInfo",
	                    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "runtime",
	                              a->info.name, "runtimeVersion",
	                              a->info.version ? a->info.version : "", "keelVersion",
	                              KEEL_VERSION, "os", u.sysname, "arch", u.machine, "hostname",
	                              a->hostname, "kernelVersion", u.release));
	if (a->log_endpoint)
		json_object_set_new(s, "logEndpoint", json_string(a->log_endpoint));
	json_t *conds = json_array();
	json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s}", "type", "Ready", "status",
	                                       "True", "reason", "AgentReady", "message",
	                                       "keel agent is running"));
	if (a->info.warning)
		json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s}", "type",
		                                       "ResourceLimitsEnforced", "status", "False",
		                                       "reason", "NoCgroupLimits", "message",
		                                       a->info.warning));
	json_object_set_new(s, "conditions", conds);
	return s;
}

static int put_status(struct agent *a, struct client *c, struct anode *n, json_t *content,
                      struct kerr *err)
{
	char now[40], since[40];
	time_rfc3339(now, sizeof now, time_now_unix());
	if (!n->ready_since)
		n->ready_since = time_now_unix();
	time_rfc3339(since, sizeof since, n->ready_since);
	_cleanup_json_ json_t *st = json_deep_copy(content);
	json_object_set_new(st, "heartbeatTime", json_string(now));
	size_t i;
	json_t *cond;
	json_array_foreach(json_object_get(st, "conditions"), i, cond)
	{
		json_object_set_new(cond, "lastHeartbeatTime", json_string(now));
		json_object_set_new(cond, "lastTransitionTime", json_string(since));
	}
	_cleanup_json_ json_t *obj =
	    json_pack("{s:s, s:s, s:{s:s}, s:O}", "apiVersion", "keel/v1", "kind", "Node",
	              "metadata", "name", n->name, "status", st);
	(void)a;
	int r = client_put_status(c, api_kind_by_plural("nodes"), NULL, obj, NULL, NULL, err);
	if (r < 0)
		return kerr_prefix(err, "node %s: writing status", n->name);
	json_decref(n->written);
	n->written = json_incref(content);
	return 0;
}

static void set_lease_lost(struct agent *a, struct anode *n, bool lost)
{
	pthread_mutex_lock(&a->mu);
	n->lease_lost = lost;
	pthread_mutex_unlock(&a->mu);
}

static int put_lease(struct agent *a, struct client *c, struct anode *n, struct kerr *err);

static int register_one(struct agent *a, struct client *c, struct anode *n, struct kerr *err)
{
	/* the lease first: a node another live agent runs is not touched */
	int lr = put_lease(a, c, n, err);
	if (lr == -EBUSY)
		return kerr_prefix(err,
		                   "node %s is run by another agent (same --name?); stop it, or "
		                   "give this one another --name (an agent restarted with the "
		                   "same --data-dir takes over at once; any other only once the "
		                   "lease has expired)",
		                   n->name);
	if (lr < 0)
		return kerr_prefix(err, "node %s: taking its lease", n->name);
	_cleanup_json_ json_t *labels = json_object();
	if (a->o->labels && agent_parse_labels(a->o->labels, labels, err) < 0)
		return -EINVAL;
	_cleanup_json_ json_t *obj =
	    json_pack("{s:s, s:s, s:{s:s, s:O}, s:{}}", "apiVersion", "keel/v1", "kind", "Node",
	              "metadata", "name", n->name, "labels", labels, "spec");
	struct client_query q = {.field_manager = "keel-agent"};
	int r = client_apply(c, api_kind_by_plural("nodes"), NULL, obj, &q, NULL, NULL, err);
	if (r < 0)
		return kerr_prefix(err, "registering node %s", n->name);
	json_decref(n->written);
	n->written = NULL;
	_cleanup_json_ json_t *content = status_content(a, n);
	if (put_status(a, c, n, content, err) < 0)
		return -EIO;
	n->registered = true;
	return 0;
}

struct reg_slice {
	struct agent *a;
	size_t from, step;
	int ret;
	struct kerr err;
};

static void *register_slice(void *arg)
{
	struct reg_slice *s = arg;
	struct client *c = agent_client(s->a);
	for (size_t i = s->from; i < s->a->nnodes && !atomic_load(&s->a->stop); i += s->step) {
		for (int tries = 0, refused = 0;; tries++) {
			kerr_clear(&s->err);
			s->ret = register_one(s->a, c, &s->a->nodes[i], &s->err);
			/* a 401 is definite, but a server restarting (a token file
			 * being replaced) may answer one briefly: a few tries */
			refused = s->ret < 0 && client_last_http_code(c) == 401 ? refused + 1 : 0;
			if (refused >= UNAUTHORIZED_TRIES) {
				_cleanup_free_ char *m = xstrdup(kerr_msg(&s->err));
				kerr_clear(&s->err);
				s->ret =
				    kerr_set(&s->err, EACCES,
				             "the token is not valid for %s (%s): check --token, "
				             "$KEEL_TOKEN or the config file's \"token\"",
				             s->a->server, m);
				break;
			}
			if (s->ret == 0 || s->ret == -EBUSY || tries >= 20 ||
			    atomic_load(&s->a->stop))
				break;
			usleep(250 * 1000); /* the server may still be starting */
		}
		if (s->ret < 0)
			break;
	}
	client_free(c);
	return NULL;
}

int agent_nodes_register(struct agent *a, struct kerr *err)
{
	size_t nt = a->nnodes < REGISTER_THREADS ? a->nnodes : REGISTER_THREADS;
	struct reg_slice sl[REGISTER_THREADS];
	pthread_t th[REGISTER_THREADS];
	for (size_t i = 0; i < nt; i++) {
		sl[i] = (struct reg_slice){a, i, nt, 0, KERR_INIT};
		pthread_create(&th[i], NULL, register_slice, &sl[i]);
	}
	int ret = 0;
	for (size_t i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		if (sl[i].ret < 0 && ret == 0) {
			ret = sl[i].ret;
			kerr_move(err, &sl[i].err);
		}
		kerr_clear(&sl[i].err);
	}
	return ret;
}

/* PUTs n's lease as this agent's holder identity. 0; -EBUSY (err names
 * the other holder) when another agent holds it and it has not expired;
 * or the request's error. */
int agent_lease_duration_s(int64_t heartbeat_ms)
{
	int64_t d = heartbeat_ms * 4 / 1000; /* as kubelet's 40 s for its 10 s renewals */
	return d < 4 ? 4 : d > 3600 ? 3600 : (int)d;
}

static int put_lease(struct agent *a, struct client *c, struct anode *n, struct kerr *err)
{
	_cleanup_free_ char *esc = client_escape(n->name);
	_cleanup_free_ char *path = xasprintf("/apis/keel/v1/leases/%s", esc);
	_cleanup_json_ json_t *body =
	    json_pack("{s:{s:s, s:I}}", "spec", "holderIdentity", a->holder,
	              "leaseDurationSeconds", (json_int_t)agent_lease_duration_s(a->o->heartbeat_ms));
	struct client_response resp = {0};
	int r = client_request(c, "PUT", path, NULL, body, &resp, err);
	client_response_clear(&resp);
	if (r < 0 && client_last_http_code(c) == 409) {
		_cleanup_free_ char *m = xstrdup(kerr_msg(err));
		kerr_clear(err);
		return kerr_set(err, EBUSY, "%s", m);
	}
	return r;
}

/* Renews n's lease. Returns true when the node was out of touch before
 * this renewal (the last one failed, or came much later than due: the
 * agent was stopped, or the server away), so that the nodes controller
 * may have marked it Ready=Unknown meanwhile: its status must then be
 * written again even if nothing in it changed for the agent. */
static bool renew_lease(struct agent *a, struct client *c, struct anode *n)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int r = put_lease(a, c, n, &err);
	set_lease_lost(a, n, r == -EBUSY);
	if (r < 0) {
		if (r == -EBUSY)
			log_error("agent: node %s: lost its lease to another agent: %s; this agent "
			          "starts and stops nothing on it until it has the lease again",
			          n->name, kerr_msg(&err));
		else
			log_warn("agent: node %s: renewing lease: %s", n->name, kerr_msg(&err));
		n->lease_failed = true;
		return false;
	}
	/* late by more than half an interval (0.5 s to 5 s): well inside any
	 * sane grace period, and above the loop's own jitter */
	int64_t now = time_mono_ms(), slack = a->o->heartbeat_ms / 2;
	slack = slack < 500 ? 500 : slack > 5000 ? 5000 : slack;
	bool gap = n->lease_failed ||
	           (n->lease_ok_ms && now - n->lease_ok_ms > a->o->heartbeat_ms + slack);
	n->lease_failed = false;
	n->lease_ok_ms = now;
	return gap;
}

static void refresh_status(struct agent *a, struct client *c, struct anode *n)
{
	_cleanup_json_ json_t *content = status_content(a, n);
	if (n->registered && n->written && json_equal(content, n->written))
		return;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int r = n->registered ? put_status(a, c, n, content, &err) : -ENOENT;
	if (r == -ENOENT) { /* the Node was deleted under us, or never made it: register again */
		kerr_clear(&err);
		n->registered = false;
		r = register_one(a, c, n, &err);
		if (r == 0)
			log_info("agent: node %s registered again", n->name);
	}
	if (r < 0)
		log_warn("agent: %s", kerr_msg(&err));
}

void *agent_nodes_thread(void *arg)
{
	struct agent *a = arg;
	struct client *c = agent_client(a);
	int64_t start = time_mono_ms();
	for (size_t i = 0; i < a->nnodes; i++) /* spread renewals evenly */
		a->nodes[i].next_lease_ms =
		    start + (int64_t)((double)a->o->heartbeat_ms * (double)i / (double)a->nnodes);
	/* usage changes at most every status interval (the reconcile thread
	 * samples it then); checking 1,000 nodes more often would be waste */
	int64_t next_status = start + a->o->status_ms;
	while (!atomic_load(&a->stop)) {
		int64_t now = time_mono_ms(), soonest = now + 1000;
		for (size_t i = 0; i < a->nnodes && !atomic_load(&a->stop); i++) {
			struct anode *n = &a->nodes[i];
			if (n->next_lease_ms <= now) {
				if (renew_lease(a, c, n) && n->registered) {
					json_decref(n->written); /* rewrite: Ready=True again */
					n->written = NULL;
					n->ready_since = time_now_unix();
					refresh_status(a, c, n);
				}
				n->next_lease_ms += a->o->heartbeat_ms;
				if (n->next_lease_ms <= now)
					n->next_lease_ms = now + a->o->heartbeat_ms;
			}
			if (n->next_lease_ms < soonest)
				soonest = n->next_lease_ms;
		}
		if (now >= next_status) {
			for (size_t i = 0; i < a->nnodes && !atomic_load(&a->stop); i++)
				refresh_status(a, c, &a->nodes[i]);
			next_status = time_mono_ms() + a->o->status_ms;
		}
		if (next_status < soonest)
			soonest = next_status;
		int64_t wait = soonest - time_mono_ms();
		if (wait > 0)
			usleep((useconds_t)(wait > 1000 ? 1000 : wait) * 1000);
	}
	client_free(c);
	return NULL;
}
