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
 *   auth.c      bearer tokens (token file, admin.token, minted tokens)
 *   authz.c     what each role may do (admin, viewer, node)
 *   tokens.c    /apis/keel/v1/tokens: mint, list, revoke
 *   metrics.c   Prometheus counters
 *   tls.c       HTTPS: --tls-cert/--tls-key checks, the self-signed pair
 *               of --tls in DATA/tls/, plain HTTP on loopback only
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
 *   - GET .../tasks/NAME/log is relayed from the agent of the Task's node
 *     (logs.c), authenticated there with that node's log key (logkey.c),
 *     never with the caller's token.
 *   - Roles are enforced (server/authz.h): a valid token whose role may
 *     not do a thing gets 403 Forbidden naming the user, the verb, the
 *     resource and why; a missing or unknown token stays 401.
 */
#pragma once

#include <stdint.h>

/* `keel server [flags]`: argv[0] is "server". Returns the process exit
 * code: 0 after a clean shutdown, 1 when startup fails (locked or
 * unwritable data directory, bad token file, address in use), 2 for a
 * usage error (including every srv_tls_prepare error: a missing, bad or
 * mismatched certificate or key, plain HTTP off loopback). */
int server_main(int argc, char **argv);

struct kerr;
struct srv_opts;
struct server;

/* The server as a library, for `keel up` (which runs it beside the
 * controllers and an agent in one process) and server_main.
 *
 * server_start opens the store in o->data_dir (default
 * srv_default_data_dir()), creates the default Namespace, loads or makes
 * the tokens, listens on o->listen_host:o->listen_port (port 0: a free
 * one), starts the HTTP threads (HTTPS with o->tls_cert/tls_key or
 * o->tls_self_signed: srv_tls_prepare, server/tls.h, runs first unless the
 * caller ran it) and writes DATA/config (mode 0600) with the URL, admin
 * token and, with TLS, "ca": the certificate clients should trust. *o is
 * moved into the server (zeroed; the caller frees nothing). Nothing is
 * printed.
 * Process-wide setup is the caller's: SIGPIPE ignored, and SIGINT/SIGTERM
 * blocked before this call when the caller wants them for sigwait (the
 * HTTP threads inherit the mask).
 * Errors (-errno, err filled): any of srv_tls_prepare's, a locked data
 * directory ("in use by another keel server (pid N)"), an unwritable one,
 * a bad token file, an address in use. *out untouched on failure.
 *
 * server_stop stops accepting, ends the watch streams, waits for the
 * requests in flight (so every write that was accepted commits), closes
 * the store and frees. Accepts NULL.
 *
 * The accessors return borrowed strings valid until server_stop. */
int server_start(struct srv_opts *o, struct server **out, struct kerr *err);
void server_stop(struct server *srv);
const char *server_url(const struct server *srv);         /* "http://127.0.0.1:7700" */
const char *server_admin_token(const struct server *srv); /* NULL with --token-file without admin */
/* The token of the server's own in-process clients (user
 * "system:controllers", role admin, srv_auth_add_in_process): in memory
 * only, new at every start, never NULL. */
const char *server_in_process_token(const struct server *srv);
const char *server_data_dir(const struct server *srv);
/* With TLS: the absolute path of the certificate this server's own
 * clients trust (its --tls-cert, or DATA/tls/ca.crt); else NULL. */
const char *server_ca_file(const struct server *srv);
/* Appends render's text (Prometheus exposition lines) to every /metrics
 * answer; render runs on an HTTP thread, under a lock that this call also
 * takes, so after server_set_metrics_source(srv, NULL, NULL) returns it
 * runs no more. For what runs in the server's process: keel up's sync. */
struct sbuf;
void server_set_metrics_source(struct server *srv, void (*render)(void *ud, struct sbuf *out),
                               void *ud);
uint64_t server_revision(const struct server *srv);       /* the store's current revision */

/* Hooks for what runs beside the API server in its process (the
 * controllers, see src/keel.c). started runs once the socket accepts and
 * DATA/config is written, with the server's URL, the in-process token
 * (server_in_process_token, whatever the token source), CA file (server_ca_file: NULL without
 * TLS) and data directory (locked by this process: one server per directory, on
 * every store backend); an error stops the server (exit 1).
 * stopped runs after the HTTP server has shut down; stopping (may be NULL)
 * before, once a signal asked the server to stop, while the API still
 * answers (the controllers release their leader leases then). Set before
 * server_main; h is copied; NULL clears. */
struct server_hooks {
	int (*started)(void *ud, const char *url, const char *token, const char *ca_file,
	               const char *data_dir, struct kerr *err);
	void (*stopped)(void *ud);
	void *ud;
	void (*stopping)(void *ud);
};
void server_set_hooks(const struct server_hooks *h);
