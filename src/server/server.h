/*
 * server — keel's API server: the HTTP API of DESIGN.md on libmicrohttpd,
 * over the LMDB store. /work/notes/http-contract.md is the contract with
 * the client and CLI.
 *
 * Modules (one idea per file):
 *   server.c    flags -> startup (store, default Namespace, tokens,
 *               DATA/config, watch hub, MHD) and shutdown on SIGINT/SIGTERM
 *   opts.c      `keel server` flags, durations ("500ms") and sizes ("64Mi")
 *   http.c      request lifecycle, body limits, auth check, replies, the
 *               per-request log line and metrics
 *   router.c    URL -> (kind, namespace, name, subresource); query values
 *   handlers.c  dispatch, discovery, health, version, metrics, get, list
 *   verbs.c     create, replace, merge patch, server-side apply, delete
 *   subres.c    /status and /binding
 *   write.c     optimistic read-compute-CAS around store_update
 *   objects.c   envelope rules (server-owned fields, generation)
 *   watch.c     the watch hub and suspendable watch streams
 *   auth.c      bearer tokens; metrics.c Prometheus counters
 *
 * Choices where the contract leaves room:
 *   - A create body without apiVersion/kind/namespace gets the URL's; a
 *     cluster-scoped object's metadata.namespace is dropped (as Kubernetes).
 *   - PATCH accepts application/merge-patch+json (and
 *     strategic-merge-patch+json, treated as a merge patch), and
 *     application/apply-patch+json|+yaml for server-side apply; JSON patch
 *     is 415. PUT/PATCH writers are recorded in managedFields (manager:
 *     ?fieldManager, else the User-Agent's product name).
 *   - DELETE of a Namespace that still holds objects is 409; "default" is
 *     403. Removing the last finalizer of an object being deleted deletes it.
 *   - POST .../binding answers 201 with the bound Task (200 when it was
 *     already bound to that node).
 *   - `continue` lists from the current state after the token's key.
 *   - Watches with selectors send only matching objects; an object that
 *     stops matching is not sent as DELETED.
 *   - GET .../tasks/NAME/log is 501: logs are served by the agents.
 *   - Roles in the token file are parsed and kept, not yet enforced.
 */
#pragma once

/* `keel server [flags]`: argv[0] is "server". Returns the process exit
 * code: 0 after a clean shutdown, 1 when startup fails (locked or
 * unwritable data directory, bad token file, address in use), 2 for a
 * usage error. */
int server_main(int argc, char **argv);

struct kerr;

/* Hooks for what runs beside the API server in its process (the
 * controllers, see src/keel.c). started runs once the socket accepts and
 * DATA/config is written, with the server's URL and admin token (NULL when
 * the token file has no admin); an error stops the server (exit 1).
 * stopped runs after the HTTP server has shut down. Set before
 * server_main; h is copied; NULL clears. */
struct server_hooks {
	int (*started)(void *ud, const char *url, const char *admin_token, struct kerr *err);
	void (*stopped)(void *ud);
	void *ud;
};
void server_set_hooks(const struct server_hooks *h);
