/*
 * server/write — one optimistic read-compute-write, the shape of every
 * write verb.
 *
 * The verb's compute function runs on the request thread with the live
 * object (or NULL) and returns what to do: STORE_WRITE with *next,
 * STORE_DELETE, STORE_NOOP, or a -errno. All the work that needs the live
 * object — merging, defaulting, validation, the generation rule — happens
 * there, off the store's writer thread. The store write is then a
 * compare-and-swap on the live resourceVersion (a trivial callback on the
 * writer thread); when another writer got in between, the whole read and
 * compute is retried (a few times), so the result is as if the verb had
 * run inside the write transaction.
 *
 * A write does not hold its HTTP thread while it waits for the commit:
 * srv_write_submit suspends the request's MHD connection while the write
 * waits for its group commit (store_update_async) and the store's writer
 * resumes it once the commit is durable; the access handler then calls
 * srv_write_resume, which retries a lost race or answers through
 * w->reply. So the writes in flight, and in one commit, are as many as
 * the clients, not as many as the HTTP threads. A 2xx is still sent only
 * after the commit is on disk. Everything the compute step and the reply
 * use must therefore live as long as the write: the verb's arg and what
 * it points to are allocated and held through w (srv_write_alloc,
 * srv_write_hold, srv_write_strdup), or belong to the request.
 */
#pragma once

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/kerr.h"

#include "api/kind.h"

struct kerr;
struct server;
struct srv_write;

typedef int (*srv_compute_fn)(struct srv_write *w, json_t *live, json_t **next, struct kerr *err);
/* Answers the request once w is done (rc and err as srv_write_run's). */
struct srv_req;
typedef enum MHD_Result (*srv_write_reply_fn)(struct srv_req *r, int rc, struct kerr *err,
                                              struct srv_write *w);

struct srv_write {
	/* in */
	struct server *srv;
	const struct api_kind *kind;
	const char *key;
	bool dry_run;
	srv_compute_fn compute;
	void *arg;
	/* A node token writing its own Node (replace, patch, apply): the spec
	 * (unschedulable, taints) is the admins' and may not change; a change
	 * is -EPERM, the message this (borrowed) beginning, e.g. `user "n1"
	 * (role node) cannot patch nodes "n1"`, then the field. NULL: any. */
	const char *spec_locked;
	srv_write_reply_fn reply;
	/* out */
	json_t *result;    /* owned: the object as stored (NOOP: the live one; DELETE:
	                      the deleted one; dry run: what would be stored); after
	                      srv_write_submit it may be shared with the watch hub:
	                      treat it as immutable */
	char *result_text; /* owned: result's JSON text exactly as stored, when the
	                      write was submitted and stored it; else NULL */
	size_t result_len;
	bool existed; /* the object existed when last computed */
	/* private to write.c */
	struct srv_write_held *held;
	char *key_owned;
	json_t *next; /* owned: what the compare-and-swap stores */
	bool expect_absent, raced;
	uint64_t expect_rv;
	int op, rc, attempts;
	struct kerr err;
};

/* A write of key (copied); the caller sets dry_run, compute, arg,
 * spec_locked and reply, then submits it. */
struct srv_write *srv_write_new(struct server *srv, const struct api_kind *kind, const char *key);
/* Frees w, its result and what it holds. Accepts NULL. */
void srv_write_free(struct srv_write *w);
/* Zeroed memory of n bytes (the verb's arg), freed with w. */
void *srv_write_alloc(struct srv_write *w, size_t n);
/* w keeps j (taken; may be NULL) until it is freed; returns j, borrowed. */
json_t *srv_write_hold(struct srv_write *w, json_t *j);
/* A copy of s (NULL: NULL) freed with w. */
const char *srv_write_strdup(struct srv_write *w, const char *s);

/* Runs w (taken over: it becomes r's until answered) for request r without
 * holding the HTTP thread while the commit is waited for: either answers
 * at once through w->reply (an error, a no-op or a dry run; the connection
 * is then not suspended) or suspends r's connection and returns MHD_YES;
 * the access handler must then call srv_write_resume when MHD calls it
 * again for r (r->write is set). Called from the access handler only. */
enum MHD_Result srv_write_submit(struct srv_req *r, struct srv_write *w);
/* The write of r came back from the store: retries a lost race (suspending
 * again) or answers through w->reply and frees w. In the reply rc is
 * STORE_WRITE/STORE_DELETE/STORE_NOOP, or -errno with err (-ESTALE after
 * too many lost races); w->result is taken or left to srv_write_free. */
enum MHD_Result srv_write_resume(struct srv_req *r);
/* The request ends with its write unanswered (the client went away while
 * it was suspended and MHD did not call the handler again): uncounts and
 * frees it. For srv_http_completed; no-op without a write. */
void srv_write_abandon(struct srv_req *r);
/* Writes submitted and not answered yet, server-wide: the server waits for
 * none to be left before it stops MHD (which must not stop with suspended
 * connections). */
unsigned srv_write_pending(struct server *srv);
