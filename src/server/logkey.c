/*
 * server/logkey — GET /apis/keel/v1/nodes/{name}/logkey: the secret the
 * API server's log relay (logs.c) presents to that node's agent instead
 * of the caller's token. The relay goes to the URL in the Node's
 * status.logEndpoint, which the node itself writes; so whatever the relay
 * sends, a node may receive. Sending the caller's (an admin's) token
 * would hand it to any node that points its endpoint at a listener of
 * its own. A per-node key instead gives a node only what it has anyway:
 * the key that reads its own logs.
 *
 * Keys live in this process's memory, like the leases (lease.c): made on
 * first use (getrandom, 32 bytes as hex), never stored, new at every
 * server start. An agent reads its node's key with its own token (authz:
 * the node itself or an admin) and, when a relay presents another key,
 * reads it again (agent/agent_logsrv.c), so a restart costs nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/kerr.h"
#include "common/util.h"
#include "server/handlers.h"

#define MAX_KEYS 100000 /* as many nodes as leases */

static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *keys; /* node name -> key (string) */

static int random_key(char out[65], struct kerr *err)
{
	unsigned char raw[32];
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		return kerr_set(err, errno ? errno : EIO, "cannot get random bytes: %s",
		                strerror(errno));
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

char *srv_logkey(const char *node, struct kerr *err)
{
	char *out = NULL;
	pthread_mutex_lock(&key_mu);
	if (!keys)
		keys = json_object();
	const char *k = json_string_value(json_object_get(keys, node));
	if (k) {
		out = xstrdup(k);
	} else if (json_object_size(keys) >= MAX_KEYS) {
		kerr_set(err, EAGAIN, "too many node log keys (at most %d)", MAX_KEYS);
	} else {
		char fresh[65];
		if (random_key(fresh, err) == 0) {
			json_object_set_new(keys, node, json_string(fresh));
			out = xstrdup(fresh);
		}
	}
	pthread_mutex_unlock(&key_mu);
	return out;
}

enum MHD_Result srv_handle_logkey(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_free_ char *key = srv_logkey(r->route.name, &err);
	if (!key)
		return srv_reply_status(r, err.code == EAGAIN ? 429 : 500,
		                        err.code == EAGAIN ? "TooManyRequests" : "InternalError",
		                        "log key of node %s: %s", r->route.name, kerr_msg(&err));
	return srv_reply_json(r, 200,
	                      json_pack("{s:s, s:s, s:{s:s}, s:s}", "kind", "NodeLogKey",
	                                "apiVersion", "keel/v1", "metadata", "name", r->route.name,
	                                "key", key),
	                      NULL, NULL);
}
