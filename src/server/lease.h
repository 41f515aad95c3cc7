/*
 * server/lease — Lease objects (keel/v1, cluster-scoped, store key
 * "leases//NAME"): the agents' node heartbeats and the controllers'
 * leadership (controllers/leader.h). The rule of one renewal is a pure
 * function, so that it can be tested without a server.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct kerr;

#define SRV_LEASE_DEFAULT_S  40 /* spec.leaseDurationSeconds when the body names none */
#define SRV_LEASE_MAX_S      3600
#define SRV_LEASE_MAX_HOLDER 253

/* What a PUT asks for. holder: borrowed; "" is a release (the lease is
 * free at once), which needs want_rv. want_rv: metadata.resourceVersion of
 * the body, 0 when absent (no precondition). */
struct srv_lease_req {
	const char *holder;
	int64_t duration_s;
	uint64_t want_rv;
};

/* The lease named name after the renewal q at now_us (unix microseconds),
 * given the live object (borrowed; NULL: absent, the PUT creates it).
 * Returns 0 with *next (owned, new) or, *next untouched:
 *   -ESTALE  q->want_rv is set and is not live's resourceVersion (or the
 *            lease is absent): the Kubernetes conflict message;
 *   -EBUSY   live is held by another holder whose lease has not expired
 *            (renewTime + leaseDurationSeconds > now): err names holder,
 *            age and time left (the API answers 409 Conflict).
 * renewTime is now (microseconds, as Kubernetes' MicroTime); acquireTime
 * and leaseTransitions change when the holder does. */
int srv_lease_next(json_t *live, const char *name, const struct srv_lease_req *q, int64_t now_us,
                   json_t **next, struct kerr *err);

/* spec.renewTime + spec.leaseDurationSeconds of lease, in unix
 * microseconds; 0 when it has no parsable renewTime. */
int64_t srv_lease_expiry_us(json_t *lease);

/* An RFC 3339 time with microseconds ("2024-05-01T10:00:00.250000Z") as
 * unix microseconds; -1 when s is not one (whole seconds are accepted). */
int64_t srv_lease_parse_us(const char *s);
