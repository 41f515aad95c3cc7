/*
 * controllers/leader — leader election for the controllers that must run
 * once in a cluster (scheduler, tasks, nodes, gc), through the API itself
 * as client-go's leaderelection does, so that it works alike on every
 * store backend and across API servers.
 *
 * Each elected controller has its own Lease (keel/v1, e.g. "keel-tasks";
 * Node names "keel-scheduler", "keel-tasks", "keel-nodes" and "keel-gc"
 * are refused by validation so that no agent renews one). An elector
 * reads its lease; when it is absent, released (empty holder), ours, or
 * has not changed for its leaseDurationSeconds on this process's
 * monotonic clock (so clocks of different machines need not agree), it
 * PUTs it with holderIdentity = this process's identity and the version
 * it read as a precondition; the server also refuses a lease another
 * holder renewed less than leaseDurationSeconds ago (409).
 *
 * Timing, with D the lease duration: the leader renews every D/3 (retries
 * every D/10 after a failure); it holds leadership only until
 * (monotonic time it sent its last successful renewal) + 2D/3, the renew
 * deadline, and so stops before any other process can take the lease
 * (which needs D since that renewal's renewTime, stamped by the server
 * after the request was sent). A standby looks every D/10. On clean stop
 * the leader releases the lease (empty holder) and the standby takes it
 * at its next look.
 *
 * The state machine (struct leader_fsm) is pure, with the clock passed
 * in, for tests; struct leader runs it on a thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "client/client.h"

struct kerr;

/* ---- the state machine (times: monotonic ms; not thread-safe) ---- */

/* What a read of the lease showed. */
struct leader_record {
	bool exists;
	const char *holder;  /* borrowed; "" when released */
	uint64_t rv;         /* its resourceVersion */
	int64_t duration_ms; /* its leaseDurationSeconds, in ms */
};

struct leader_fsm {
	int64_t duration_ms; /* D */
	bool leading;
	int64_t held_until; /* leading only while now < held_until */
	bool seen;          /* a record was observed: */
	uint64_t seen_rv;   /*   its version */
	int64_t seen_at;    /*   when this process first saw that version */
};

void leader_fsm_init(struct leader_fsm *f, int64_t duration_ms);
/* Observes rec (read at now) and says whether to write the lease now. */
bool leader_fsm_should_try(struct leader_fsm *f, const struct leader_record *rec, const char *me,
                           int64_t now);
/* The write sent at sent succeeded. Returns true when this made us leader. */
bool leader_fsm_won(struct leader_fsm *f, int64_t sent);
/* The write was refused (another holds the lease, or it changed).
 * Returns true when we were leading (leadership lost). */
bool leader_fsm_refused(struct leader_fsm *f);
/* Drops leadership whose renew deadline passed at now. Returns true when
 * it did (leadership lost). */
bool leader_fsm_expire(struct leader_fsm *f, int64_t now);
/* Leading at now: leading and the renew deadline not passed. */
bool leader_fsm_held(const struct leader_fsm *f, int64_t now);
/* How long to wait before the next look, from now (ms). */
int64_t leader_fsm_next_ms(const struct leader_fsm *f, bool failed, int64_t now);

/* ---- the elector ---- */

struct leader;

struct leader_opts {
	struct client_opts client; /* copied (strings too) */
	const char *lease;         /* the Lease's name, e.g. "keel-tasks" (copied) */
	const char *what;          /* for the log: "tasks" (copied) */
	const char *identity;      /* holderIdentity (copied) */
	long duration_ms;          /* D; 0: LEADER_DEFAULT_MS; rounded up to whole seconds */
	/* Called on the elector's thread when leadership is won (true) or lost
	 * (false). May be NULL. */
	void (*on_change)(void *ctx, bool leading);
	void *ctx;
};

#define LEADER_DEFAULT_MS 15000

/* Starts an elector on its own thread. -errno (client or thread). */
int leader_start(const struct leader_opts *o, struct leader **out, struct kerr *err);
/* Whether this process leads now (thread-safe; checks the renew deadline
 * on the monotonic clock, so a process resumed after a pause answers false
 * before its elector thread has run). */
bool leader_held(struct leader *l);
/* Stops the elector; when it leads, releases the lease (best effort, one
 * request) so that another takes over at once. Frees l. Accepts NULL. */
void leader_stop(struct leader *l);

/* "HOSTNAME-PID-RANDOM": this process's holder identity. Owned. */
char *leader_identity_new(void);
/* The holder identity of the controllers of the server whose data directory
 * is dir, kept in DIR/controller-identity (made on the first start): the
 * directory is locked by one live server at a time, so a server restarted
 * on it — even after kill -9 — holds its leader leases again at once, as an
 * agent restarted with its data directory holds its node leases. Falls back
 * to leader_identity_new() (with a warning) where the file cannot be kept.
 * Owned. */
char *leader_identity_of_dir(const char *dir);
