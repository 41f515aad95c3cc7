/*
 * server/watch — the watch hub: fans committed changes out to watch
 * streams.
 *
 * The store's commit hook (srv_hub_commit_hook, on the writer thread)
 * hands every change to the hub's fan-out thread and returns; that thread
 * takes the changes in batches (what was committed since its last round),
 * and each watcher whose kind, namespace and selectors match gets a
 * reference to the event, serialised once and shared, and is woken once
 * per batch. Watch streams are chunked MHD responses whose reader suspends
 * the connection when it has nothing to send, so an idle watcher holds no
 * thread; the fan-out thread (or the bookmark/timeout ticker) resumes it.
 * Neither the writer nor the fan-out thread blocks on a watcher: one whose
 * backlog passes a bound is sent an ERROR event (410, "watch too slow")
 * and closed.
 *
 * Threading: all functions are thread-safe. The hub must outlive the MHD
 * daemon (it is freed after MHD_stop_daemon).
 */
#pragma once

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_event;
struct srv_hub;
struct srv_req;

struct srv_hub_opts {
	int64_t bookmark_ms;      /* BOOKMARK period on idle streams */
	size_t max_watchers;      /* more -> 429 */
	size_t max_per_client;    /* more with one token user name -> 429; 0 = no limit */
	size_t max_backlog_bytes; /* per watcher, before "watch too slow"; 0 = 16 MiB */
};

/* Creates the hub and starts its ticker thread. The caller installs
 * srv_hub_commit_hook on s (with the hub as ctx) before serving. */
struct srv_hub *srv_hub_new(struct store *s, const struct srv_hub_opts *opts);
/* Ends every watch stream (suspended ones are resumed to finish) and
 * refuses new ones. Returns at once; srv_hub_watchers() reaches 0 as MHD
 * completes the streams. */
void srv_hub_stop(struct srv_hub *h);
/* Stops the ticker and frees the hub. Accepts NULL. No watcher may remain
 * (call after MHD_stop_daemon). */
void srv_hub_free(struct srv_hub *h);
/* Ends the open watch streams of user (a token user name, as
 * srv_req_user gives it): its token was revoked. Each drops what it had
 * queued, sends an ERROR event (401 Unauthorized, "the token of this
 * watch was revoked") after the line in flight, and ends. Thread-safe. */
void srv_hub_end_user(struct srv_hub *h, const char *user);
size_t srv_hub_watchers(struct srv_hub *h);

/* store_commit_hook: ctx is the hub. Queues the change for the fan-out
 * thread (a reference to ev->object, which is then treated as immutable)
 * and returns without taking the hub lock. */
void srv_hub_commit_hook(void *ctx, const struct store_event *ev);
