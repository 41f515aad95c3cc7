/*
 * watch — a recursive inotify(7) watch of a manifest directory, for
 * `keel sync` and `keel up -f DIR`.
 *
 * The watch does not say *what* changed: the caller re-reads the whole
 * tree from disk after every change, so an editor's rename-save or a
 * `git checkout` of many files is seen as one change (the files as they
 * are now), never as a delete followed by a create.
 *
 * Relevant events: a manifest file (name ending in .yaml or .yml, not
 * starting with '.', not an editor backup or swap file — see
 * watch_relevant_name()) created, written and closed, moved in or out,
 * deleted; and any directory created, moved in or out, or deleted under
 * the root. New and moved-in directories are watched at once, with
 * everything below them (their files count as a change). IN_Q_OVERFLOW
 * makes the watch rescan: every directory under the root is (re)watched
 * and a change is reported.
 *
 * Not thread-safe: one thread owns a watch.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct kerr;
struct sync_watch;

/* Opens a watch of the directory root and every directory below it
 * (symlinks are not followed). If root is a regular file, its directory
 * is watched and only that file is relevant. Returns NULL with err set
 * (ENOENT, ENOTDIR, EMFILE/ENOSPC when inotify's limits are reached —
 * the message names /proc/sys/fs/inotify/max_user_watches). */
struct sync_watch *sync_watch_open(const char *root, struct kerr *err);

/* Closes the inotify descriptor and frees w. Accepts NULL. */
void sync_watch_close(struct sync_watch *w);

/* Waits up to timeout_ms (-1: no limit) for a relevant change; after the
 * first one, keeps reading until debounce_ms pass with no further
 * relevant event (so a burst is one change). Returns 1 when something
 * changed, 0 when timeout_ms passed without a change or *stop became
 * non-zero (checked at least every 100 ms; stop may be NULL), -errno
 * with err set on an error. */
int sync_watch_wait(struct sync_watch *w, int timeout_ms, int debounce_ms,
                    const volatile int *stop, struct kerr *err);

/* Is name (a file's base name) a manifest file the watch reports? */
bool watch_relevant_name(const char *name);

/* Counters since open. */
struct sync_watch_stats {
	size_t dirs;      /* directories watched now */
	size_t overflows; /* IN_Q_OVERFLOW events seen (each a full rescan) */
	size_t rescans;   /* full rescans (overflows and watch-limit recovery) */
};
void sync_watch_stats(const struct sync_watch *w, struct sync_watch_stats *out);

/* Fault injection for tests: the next sync_watch_wait() behaves as if the
 * kernel had queued IN_Q_OVERFLOW (events are dropped, a rescan follows). */
void sync_watch_inject_overflow(struct sync_watch *w);
