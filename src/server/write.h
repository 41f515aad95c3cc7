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
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "api/kind.h"

struct kerr;
struct server;
struct srv_write;

typedef int (*srv_compute_fn)(struct srv_write *w, json_t *live, json_t **next, struct kerr *err);

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
	/* out */
	json_t *result; /* owned: the object as stored (NOOP: the live one; DELETE:
	                   the deleted one; dry run: what would be stored) */
	bool existed;   /* the object existed when last computed */
};

/* Runs w. Returns STORE_WRITE/STORE_DELETE/STORE_NOOP, or -errno with err
 * (-ESTALE after too many lost races). Release w->result with
 * srv_write_clear. */
int srv_write_run(struct srv_write *w, struct kerr *err);
void srv_write_clear(struct srv_write *w);
