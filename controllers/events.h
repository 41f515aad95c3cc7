/*
 * events — the Event recorder controllers share: creates Events about an
 * object and aggregates repeats as Kubernetes' EventRecorder does (the
 * same involvedObject uid + reason + message again: count + 1 and a new
 * lastTimestamp, through a merge patch, instead of a new Event).
 *
 * Threading: a recorder has its own client behind a lock; events_record
 * may be called from any thread. Best effort: a failure is returned (and
 * the caller logs it) but leaves the recorder usable.
 */
#pragma once

#include <jansson.h>
#include <stdarg.h>

#include "client/client.h"

struct kerr;
struct events;

/* component: source.component of the Events ("keel-scheduler"). Strings
 * in copts are copied. */
int events_new(const struct client_opts *copts, const char *component, struct events **out,
               struct kerr *err);
void events_free(struct events *ev);

/* Records one Event about involved (borrowed: its kind, apiVersion,
 * metadata.name/namespace/uid). Cluster-scoped objects' Events go to
 * namespace "default". type "Normal" | "Warning". Returns 0 or -errno
 * with err. */
int events_record(struct events *ev, json_t *involved, const char *type, const char *reason,
                  const char *message, struct kerr *err);
