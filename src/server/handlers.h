/*
 * server/handlers — the API's verbs, one function per (route, method).
 * Each is called on an MHD worker thread once the request body is in
 * (r->body), queues exactly one response and returns MHD's result.
 *
 *   handlers.c   dispatch, discovery, /healthz /readyz /version /metrics,
 *                get and list
 *   verbs.c      create, replace, merge patch, apply, delete
 *   subres.c     status and binding subresources
 *   watch.c      watch streams (srv_handle_watch)
 */
#pragma once

#include <microhttpd.h>

#include "server/http.h"

enum MHD_Result srv_handle(struct srv_req *r);

enum MHD_Result srv_handle_create(struct srv_req *r);
enum MHD_Result srv_handle_replace(struct srv_req *r);
enum MHD_Result srv_handle_patch(struct srv_req *r);
enum MHD_Result srv_handle_delete(struct srv_req *r);
enum MHD_Result srv_handle_status_write(struct srv_req *r);
enum MHD_Result srv_handle_binding(struct srv_req *r);
enum MHD_Result srv_handle_watch(struct srv_req *r);
/* Leases, in the store (lease.c): PUT renews or acquires, GET reads one or lists. */
enum MHD_Result srv_handle_lease(struct srv_req *r);
/* Minted API tokens (tokens.c): POST mints, GET lists, DELETE revokes. */
enum MHD_Result srv_handle_tokens(struct srv_req *r);
/* GET tasks/{name}/log: relayed from the agent of the Task's node (logs.c). */
enum MHD_Result srv_handle_log(struct srv_req *r);
/* GET nodes/{name}/logkey: the node's log key (logkey.c). */
enum MHD_Result srv_handle_logkey(struct srv_req *r);
/* The log key of node `node` (made on first use; in memory, new at every
 * server start): 64 hex digits, owned, or NULL (err set) when no random
 * bytes can be had or the table is full. */
char *srv_logkey(const char *node, struct kerr *err);

/* The store key of the item the route names ("tasks/default/web"). Owned. */
char *srv_req_key(struct srv_req *r);
/* Reads ?dryRun; on a bad value queues a 400 and returns false (*ret set). */
bool srv_req_dry_run(struct srv_req *r, bool *dry, enum MHD_Result *ret);
/* ?labelSelector and ?fieldSelector; owned results (NULL when absent);
 * -EBADMSG naming the parameter on a bad selector. */
struct api_selector;
struct api_fieldsel;
int srv_parse_selectors(struct srv_req *r, struct api_selector **labels,
                        struct api_fieldsel **fields, struct kerr *err);
/* `tasks "web" not found` for the route's item, as a 404 reply. */
enum MHD_Result srv_reply_not_found(struct srv_req *r);
