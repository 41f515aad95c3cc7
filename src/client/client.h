/*
 * client — keel's API client (libcurl), used by the CLI, the controllers and
 * the node agents. It speaks the HTTP contract of DESIGN.md "API" and
 * notes/http-contract.md: Kubernetes paths under /apis/keel/v1, JSON bodies,
 * Status objects for errors, NDJSON watch streams.
 *
 * Threading: a `struct client` wraps one curl easy handle, so that
 * consecutive requests reuse one keep-alive connection. A handle is NOT
 * thread-safe: use one per thread (client_new is cheap; libcurl's global
 * initialisation is done once, thread-safely, by the first client_new).
 * client_config_* and client_path/client_query_encode are pure and
 * thread-safe.
 *
 * Errors: every function that can fail returns a negative errno value and
 * fills `err` (which may be NULL):
 *   - an HTTP error answer: the errno of its Status (api_errno_from_status:
 *     the reason first, then the code — ENOENT NotFound, EEXIST
 *     AlreadyExists, ESTALE Conflict, EINVAL Invalid, EACCES Unauthorized,
 *     EPERM Forbidden, ERANGE Gone, E2BIG RequestEntityTooLarge, ...);
 *     err->msg is Status.message and err->causes a copy of
 *     Status.details.causes (field causes of a validation failure). The
 *     Status itself stays readable through client_last_status().
 *   - the server cannot be reached: -ECONNREFUSED with "cannot reach keel
 *     server at URL: DETAIL (is `keel server` running?)"; -EHOSTUNREACH when
 *     the host name does not resolve; -ETIMEDOUT when the timeout expires.
 *     With several servers (see "Several servers") and none reachable: the
 *     last one's errno with "cannot reach any keel server (URL1: DETAIL;
 *     URL2: DETAIL)".
 *   - a 2xx answer that is not the JSON expected: -EBADMSG.
 * Output parameters are untouched on failure. Returned JSON is owned by the
 * caller (json_decref); object and string parameters are borrowed.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/kind.h"

struct kerr;
struct client;

#define CLIENT_DEFAULT_SERVER        "http://127.0.0.1:7700"
#define CLIENT_DEFAULT_FIELD_MANAGER "keel-apply"

/* ---- construction ---------------------------------------------------- */

struct client_opts {
	const char *server;      /* base URL "http://HOST:PORT", or several separated by commas
	                            (client_servers_parse; see "Several servers" below);
	                            NULL: CLIENT_DEFAULT_SERVER */
	const char *token;       /* bearer token; NULL or "" sends none */
	long timeout_ms;         /* whole request (not watches); 0: 30 s */
	long connect_timeout_ms; /* 0: 5 s */
	const char *ca_file;     /* PEM CA bundle to verify an https server (every request,
	                            watch and log stream); NULL: libcurl's default store */
	const char *user_agent;  /* NULL: "keel/VERSION" */
	/* Called after every request (and when a watch ends) with its method,
	 * URL, HTTP status (0: no answer) and duration; for the caller's debug
	 * log, since the library itself does not print. NULL: none. */
	void (*trace)(const char *method, const char *url, int http_code, long ms, void *ud);
	void *trace_ud;
	long watch_idle_s; /* a watch silent this long is dead: -ETIMEDOUT;
	                      0: 90 s. Only for servers that do not say their
	                      bookmark interval (keel's do: client_watch) */
};

/* Several servers. opts.server may list several API servers that serve
 * the same cluster ("http://a:7700,http://b:7700"). Requests go to one of
 * them, the current one (first the first); the client stays with a server
 * while it answers (sticky) and moves on, in list order, trying each server
 * once per request, when one cannot be used:
 *   - any request fails over when it was never sent: connection refused,
 *     host not resolved, connect timeout, TLS handshake failure;
 *   - a GET (and so a watch or a log stream that has delivered nothing
 *     yet) also fails over when it may have been sent: connection reset,
 *     empty reply, timeout waiting for the answer, or a 503 answer (a
 *     server shutting down, or over its connection limit);
 *   - a write (POST, PUT, PATCH, DELETE) that may have reached a server is
 *     NOT sent again: it may have been applied, and a replay would answer
 *     409 or 404 for a write that succeeded (client-go likewise retries
 *     non-GETs only on connection-refused-like errors). The error then
 *     says so; the caller decides (reads, then retries).
 * Every other answer (4xx, 5xx) is an answer: no failover. When every
 * server failed, the error (the last server's errno) names each one:
 * "cannot reach any keel server (http://a: ...; http://b: ...)". With one
 * server, behaviour and messages are the single-server ones.
 * A watch whose stream breaks (reset, truncated, silent for watch_idle_s)
 * resumes on the next server from the last resourceVersion it delivered
 * (bookmarks included), so the callback sees no gap and no duplicate; see
 * client_watch. */

/* Creates a client. Strings in opts are copied. Returns 0, or -EINVAL when
 * the server list is not valid (client_servers_parse). */
int client_new(const struct client_opts *opts, struct client **out, struct kerr *err);
/* Closes the connection and frees c. Accepts NULL. */
void client_free(struct client *c);
static inline void client_freep(struct client **c)
{
	client_free(*c);
}
#define _cleanup_client_ __attribute__((cleanup(client_freep)))

/* The base URL the client talks to now: the server that answered last
 * (borrowed, valid while c lives). */
const char *client_server(const struct client *c);
/* Every server, "URL1,URL2" as normalised by client_servers_parse
 * (borrowed, valid while c lives); the same as client_server with one. */
const char *client_servers(const struct client *c);
/* How many servers c has (>= 1). */
size_t client_server_count(const struct client *c);

/* After a request: its HTTP status (0 if no answer came, e.g. connection
 * refused) and, for an error answer, the Status object (borrowed, valid
 * until the next request; NULL otherwise). Lets a CLI tell "Error from
 * server (NotFound)" apart from a local failure. */
int client_last_http_code(const struct client *c);
json_t *client_last_status(const struct client *c);

/* ---- paths and queries (pure) ---------------------------------------- */

/* Query parameters; zero/NULL members are left out of the URL. */
struct client_query {
	const char *label_selector;   /* labelSelector */
	const char *field_selector;   /* fieldSelector */
	long limit;                   /* limit (> 0) */
	const char *continue_token;   /* continue */
	bool dry_run;                 /* dryRun=All */
	const char *field_manager;    /* fieldManager */
	const char *resource_version; /* resourceVersion */
	bool watch;                   /* watch=1 (set by client_watch itself) */
	long timeout_seconds;         /* timeoutSeconds (> 0) */
	const char *propagation;      /* propagationPolicy: Background|Orphan|Foreground */
};

/* The path of a collection or an object, owned:
 *   namespaced kind, ns set:  /apis/keel/v1/namespaces/NS/PLURAL[/NAME[/SUB]]
 *   namespaced kind, ns NULL: /apis/keel/v1/PLURAL (every namespace; name
 *                             must then be NULL)
 *   cluster-scoped kind:      /apis/keel/v1/PLURAL[/NAME[/SUB]] (ns ignored)
 * Segments are percent-encoded. name and sub may be NULL. */
char *client_path(const struct api_kind *k, const char *ns, const char *name, const char *sub);

/* "?labelSelector=...&limit=..." (percent-encoded), or "" when q is NULL
 * or empty. Owned. */
char *client_query_encode(const struct client_query *q);

/* Percent-encodes s for a path segment or query value (RFC 3986
 * unreserved characters stay). Owned. */
char *client_escape(const char *s);

/* ---- raw requests ---------------------------------------------------- */

struct client_response {
	int http_code;      /* 2xx here; errors are returned as -errno */
	json_t *body;       /* owned; NULL when the body was empty or not JSON */
	char *text;         /* owned; the raw body, NUL-terminated */
	char *apply_result; /* owned; the Keel-Apply-Result header, or NULL */
};

void client_response_clear(struct client_response *r);

/* One request. path_query is "/path?query" (e.g. from client_path +
 * client_query_encode). body may be NULL; content_type defaults to
 * application/json when a body is given. On a 2xx answer fills *resp
 * (which the caller clears; resp NULL: the answer is not even parsed) and
 * returns 0; on an error answer returns the
 * Status' -errno as described at the top. */
int client_request(struct client *c, const char *method, const char *path_query,
                   const char *content_type, json_t *body, struct client_response *resp,
                   struct kerr *err);

/* ---- verbs ----------------------------------------------------------- */
/* For every verb: k is the kind (api_kind_resolve and friends), ns the
 * namespace (ignored for cluster-scoped kinds; required, non-NULL, for
 * namespaced object verbs), q may be NULL; *out receives the server's
 * answer (owned) and may be NULL when the caller does not want it. */

/* GET one object. -ENOENT when it does not exist. */
int client_get(struct client *c, const struct api_kind *k, const char *ns, const char *name,
               json_t **out, struct kerr *err);

/* GET one page of a collection (ns NULL: every namespace). *out is the
 * List object: {"kind":"TaskList","metadata":{"resourceVersion":..,
 * "continue":..},"items":[..]}. */
int client_list(struct client *c, const struct api_kind *k, const char *ns,
                const struct client_query *q, json_t **out, struct kerr *err);

/* Like client_list, but follows metadata.continue until the last page and
 * returns one List holding every item; its resourceVersion is the first
 * page's (the revision a watch should start from) and it has no continue.
 * q->limit is the page size (0: the server's default, one page). */
int client_list_all(struct client *c, const struct api_kind *k, const char *ns,
                    const struct client_query *q, json_t **out, struct kerr *err);

/* POST: create obj. -EEXIST when it exists. */
int client_create(struct client *c, const struct api_kind *k, const char *ns, json_t *obj,
                  const struct client_query *q, json_t **out, struct kerr *err);

/* PUT: replace obj (its metadata.name). A metadata.resourceVersion in obj
 * is a precondition: -ESTALE when the live object has moved on. */
int client_replace(struct client *c, const struct api_kind *k, const char *ns, json_t *obj,
                   const struct client_query *q, json_t **out, struct kerr *err);

/* PATCH application/merge-patch+json (RFC 7386) of object name. */
int client_patch(struct client *c, const struct api_kind *k, const char *ns, const char *name,
                 json_t *patch, const struct client_query *q, json_t **out, struct kerr *err);

/* What a server-side apply did. */
enum client_apply_result {
	CLIENT_APPLY_UNKNOWN = 0, /* the server sent no Keel-Apply-Result */
	CLIENT_APPLY_CREATED,
	CLIENT_APPLY_CONFIGURED,
	CLIENT_APPLY_UNCHANGED,
};
/* "created", "configured", "unchanged" ("unknown"): static. */
const char *client_apply_result_name(enum client_apply_result r);

/* PATCH application/apply-patch+json: server-side apply of obj (its
 * metadata.name) with q->field_manager (default CLIENT_DEFAULT_FIELD_MANAGER
 * when q or it is NULL). Creates the object when absent. *result (may be
 * NULL) gets the Keel-Apply-Result header. With q->dry_run nothing is
 * written and *out is what would have been stored. */
int client_apply(struct client *c, const struct api_kind *k, const char *ns, json_t *obj,
                 const struct client_query *q, json_t **out, enum client_apply_result *result,
                 struct kerr *err);

/* DELETE object name; q->propagation and q->dry_run are honoured. *out is
 * the deleted object (or the object marked for deletion when it has
 * finalizers). -ENOENT when it does not exist. */
int client_delete(struct client *c, const struct api_kind *k, const char *ns, const char *name,
                  const struct client_query *q, json_t **out, struct kerr *err);

/* PUT .../NAME/status with obj (its status, and its metadata.resourceVersion
 * as a precondition when set). */
int client_put_status(struct client *c, const struct api_kind *k, const char *ns, json_t *obj,
                      const struct client_query *q, json_t **out, struct kerr *err);

/* PATCH .../NAME/status, application/merge-patch+json. */
int client_patch_status(struct client *c, const struct api_kind *k, const char *ns,
                        const char *name, json_t *patch, const struct client_query *q, json_t **out,
                        struct kerr *err);

/* POST .../tasks/NAME/binding: binds Task ns/name to node. -ESTALE when it
 * is bound to another node, -ENOENT when the task or the node is missing. */
int client_bind(struct client *c, const char *ns, const char *name, const char *node,
                struct kerr *err);

/* GET /version: {"version":..,"apiVersion":..}. */
int client_version(struct client *c, json_t **out, struct kerr *err);

/* ---- watch ----------------------------------------------------------- */

/* Called once per event, in order. type is "ADDED", "MODIFIED", "DELETED"
 * or "BOOKMARK" (object then carries only metadata.resourceVersion; a
 * caller that resumes a watch should remember it). object is borrowed for
 * the call. Return 0 to go on, > 0 to stop the watch cleanly
 * (client_watch then returns 0), < 0 (a -errno) to stop it with that error
 * (client_watch returns it; the callback fills err itself if it wants to). */
typedef int (*client_watch_fn)(const char *type, json_t *object, void *userdata);

/* GET the collection with watch=1, from q->resource_version (NULL or "0":
 * ADDED for every current object first), with q's selectors and
 * timeoutSeconds. Blocks, calling fn for each event line, until the server
 * ends the stream (returns 0: re-watch from the last resourceVersion seen),
 * fn stops it, or an error:
 *   -ERANGE  the resourceVersion is older than the compacted history (410
 *            Gone, before or during the stream): relist, then watch again;
 *   -EBADMSG a line that is not a JSON event;
 *   any error of a failed request.
 * No overall timeout applies (the server's bookmarks keep idle streams
 * alive); only the connect timeout, and -ETIMEDOUT when nothing at all
 * arrives for three of the server's bookmark intervals (its
 * Keel-Bookmark-Interval header; at least 3 s; opts.watch_idle_s when it
 * does not say), or no answer within opts.timeout_ms (a server that
 * vanished or froze without closing the connection): watch again from the
 * last resourceVersion.
 * With several servers, a stream that breaks (or a server that cannot be
 * reached or answers 503) is resumed inside client_watch on the next
 * server, from the last resourceVersion given to fn (q's until then), each
 * server tried once after the last one that delivered an event; only when
 * all fail is the error returned ("cannot reach any keel server (..)").
 * A watch from "0"/NULL is resumed only while it has delivered nothing
 * (the initial ADDED events carry no resumable position): after that its
 * error is returned, for the caller to relist. */
int client_watch(struct client *c, const struct api_kind *k, const char *ns,
                 const struct client_query *q, client_watch_fn fn, void *userdata,
                 struct kerr *err);

/* From any thread: makes a client_watch in progress on c end within about
 * a second (libcurl's idle progress interval) and return 0, as if the
 * server had ended the stream; every later client_watch on c returns 0 at
 * once. For a watcher being stopped that holds long watch rounds (an
 * informer): c is then only for client_free. */
void client_watch_cancel(struct client *c);

/* ---- logs ------------------------------------------------------------ */

struct client_logs_opts {
	bool follow;   /* keep streaming while the task runs */
	long tail;     /* last N lines; < 0: all */
	bool previous; /* the run before the current one */
};
/* Called with each chunk of output as it arrives; return non-zero to stop
 * (client_logs then returns 0). */
typedef int (*client_logs_fn)(void *ud, const char *data, size_t len);

/* GET .../namespaces/NS/tasks/NAME/log: the Task's stdout and stderr,
 * relayed by the server from its node's agent. With several servers it
 * fails over as a GET does until the first output arrives, never after
 * (that would repeat output). -ENOENT when the task, its
 * node or (with previous) an earlier run does not exist; -EBUSY (503)
 * when the node's agent cannot be reached. No overall timeout when
 * following. */
int client_logs(struct client *c, const char *ns, const char *name,
                const struct client_logs_opts *o, client_logs_fn fn, void *ud, struct kerr *err);

/* ---- configuration (pure, reads files and the environment) ------------ */

/* The most servers one list may hold. */
#define CLIENT_MAX_SERVERS 16

/* Splits a server list "URL1,URL2,..." (one URL is a list of one): entries
 * are separated by commas, blanks around them are ignored, a trailing '/'
 * is dropped. *out (owned, a NULL-terminated array; free with
 * client_servers_free) and *n receive the entries in order; both untouched
 * on failure. Errors, all -EINVAL, naming the entry (its 1-based position
 * when the list has several): an empty list or entry, an entry not
 * http:// or https:// or without a host, one listed twice, more than
 * CLIENT_MAX_SERVERS. */
int client_servers_parse(const char *list, char ***out, size_t *n, struct kerr *err);
void client_servers_free(char **v);

struct client_config {
	char *server;            /* owned; never NULL after a successful resolve */
	char *token;             /* owned; NULL when no token was found */
	char *ca;                /* owned; CA file (PEM) for https; NULL: the system's */
	char *config_file;       /* owned; the config file used, or NULL */
	const char *server_from; /* static: "flag", "env", "config", "default" */
	const char *token_from;  /* static: "flag", "env", "config", or NULL */
	const char *ca_from;     /* static: "flag", "env", "config", or NULL */
};

/* The default data directory (server and CLI agree): $KEEL_DATA_DIR, else
 * /var/lib/keel when running as root, else $XDG_DATA_HOME/keel, else
 * $HOME/.local/share/keel. Owned; NULL only when none of these can be
 * formed (no HOME). */
char *client_default_data_dir(void);

/* The user's config file: $XDG_CONFIG_HOME/keel/config, else
 * $HOME/.config/keel/config (whether or not it exists). Owned; NULL
 * without HOME. */
char *client_user_config_path(void);

/* Resolves server, token and CA file, each independently, in this order:
 *   1. flag_server / flag_token / flag_ca (command-line flags; NULL when
 *      not given);
 *   2. $KEEL_SERVER / $KEEL_TOKEN / $KEEL_CA;
 *   3. the config file: flag_config, else $KEEL_CONFIG (either must
 *      exist: -ENOENT otherwise); else $XDG_CONFIG_HOME/keel/config
 *      (default ~/.config/keel/config); else DATA_DIR/config of
 *      client_default_data_dir() — the first of those that exists;
 *   4. server CLIENT_DEFAULT_SERVER; no token; no CA (libcurl's default
 *      trust store).
 * A config file is JSON: {"server": "https://HOST:PORT", "token": "TOKEN",
 * "ca": "PATH"} (each optional; a relative "ca" is relative to the config
 * file's directory). Several servers: "server": "URL1,URL2", or
 * "servers": ["URL1", "URL2"] (not both). The server (list) of every
 * source is normalised by client_servers_parse, so cfg.server is
 * "URL1,URL2" whatever the form. One CA file verifies every server (they
 * share a CA). The CA file is not read here: a request fails when
 * it cannot be. Errors: -ENOENT (an explicit config file is missing),
 * -EACCES (unreadable), -EINVAL (not a JSON object, a member not a
 * string, "servers" not an array of strings, both "server" and
 * "servers") naming the file; -EINVAL for a bad server list naming its
 * source (--server, KEEL_SERVER, the file) and the entry. *out is
 * untouched on failure; clear it with
 * client_config_clear(). Empty strings in flags or env count as unset. */
int client_config_resolve(const char *flag_server, const char *flag_token, const char *flag_config,
                          const char *flag_ca, struct client_config *out, struct kerr *err);
void client_config_clear(struct client_config *cfg);
