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
 * Two ways to run one. srv_write_run waits on the request thread until
 * the write is durable. srv_write_submit does not hold the thread: it
 * suspends the request's MHD connection while the write waits for its
 * group commit (store_update_async) and resumes it from the store's
 * writer once the commit is durable; the access handler then calls
 * srv_write_resume, which retries a lost race or answers through
 * w->reply. So the writes in flight, and in one commit, are as many as
 * the clients, not as many as the HTTP threads. A 2xx is still sent only
 * after the commit is on disk.
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
	/* in, for srv_write_submit (w from srv_write_new) */
	srv_write_reply_fn reply;
	void (*arg_free)(void *arg); /* frees arg with w; NULL: arg is not w's */
	/* out */
	json_t *result; /* owned: the object as stored (NOOP: the live one; DELETE:
	                   the deleted one; dry run: what would be stored); after
	                   srv_write_submit it may be shared with the watch hub:
	                   treat it as immutable */
	char *result_text; /* owned: result's JSON text exactly as stored, when the
	                      write was submitted and stored it; else NULL */
	size_t result_len;
	bool existed; /* the object existed when last computed */
	/* private to write.c */
	char *key_owned;
	json_t *next; /* owned: what the compare-and-swap stores */
	bool expect_absent, raced;
	uint64_t expect_rv;
	int op, rc, attempts;
	struct kerr err;
};

/* Runs w. Returns STORE_WRITE/STORE_DELETE/STORE_NOOP, or -errno with err
 * (-ESTALE after too many lost races). Release w->result with
 * srv_write_clear. */
int srv_write_run(struct srv_write *w, struct kerr *err);
void srv_write_clear(struct srv_write *w);

/* A heap srv_write for srv_write_submit, its key copied; the caller sets
 * the rest (dry_run, compute, arg and arg_free, spec_locked must then live
 * as long as the request, reply). */
struct srv_write *srv_write_new(struct server *srv, const struct api_kind *kind,
                                const char *key);
/* Frees w (its result, text, and arg through arg_free). Accepts NULL. */
void srv_write_free(struct srv_write *w);

/* Runs w (taken over: it becomes r's until answered) for request r without
 * holding the HTTP thread while the commit is waited for: either answers
 * at once through w->reply (an error, a no-op or a dry run; the connection
 * is then not suspended) or suspends r's connection and returns MHD_YES;
 * the access handler must then call srv_write_resume when MHD calls it
 * again for r (r->write is set). Called from the access handler only. */
enum MHD_Result srv_write_submit(struct srv_req *r, struct srv_write *w);
/* The write of r came back from the store: retries a lost race (suspending
 * again) or answers through w->reply and frees w. */
enum MHD_Result srv_write_resume(struct srv_req *r);
/* Writes submitted and not answered yet, server-wide: the server waits for
 * none to be left before it stops MHD (which must not stop with suspended
 * connections). */
unsigned srv_write_pending(struct server *srv);
