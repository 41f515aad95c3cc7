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
 * deleted; a directory deleted or moved out below the root (what it held
 * is gone); a directory created or moved in below the root when it holds
 * a manifest at any depth. New and moved-in directories are watched at
 * once, with everything below them, and scanned after their watch is
 * added, so files created before the watch existed are not missed.
 * Directories whose name starts with '.' (.git) are neither watched nor
 * relevant, as `keel apply -f DIR` skips them; symlinks are not followed
 * below the root. IN_Q_OVERFLOW makes the watch rescan: every directory
 * under the root is (re)watched and a change is reported.
 *
 * Files are reported when closed after writing (IN_CLOSE_WRITE), not at
 * each write(2): a file kept open, or changed by truncate(2) alone, is
 * seen at its next close or by the caller's periodic re-read.
 *
 * The root path leading to another directory (a symlinked root swapped to
 * a new target, as git-sync does; checked at every tick, so within 100 ms)
 * is a change: everything is watched again through the new target.
 *
 * The root itself removed or moved away is a change; the watch then looks
 * for a directory at the root's path every 100 ms and, once there is one,
 * watches it and reports a change. The root is used as given: a relative
 * root is relative to the current directory at every (re)watch.
 *
 * Not thread-safe: one thread owns a watch.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct kerr;
struct sync_watch;

/* Opens a watch of the directory root and every directory below it
 * (symlinks are not followed, except root itself). If root is a regular
 * file, its directory alone is watched (not recursively) and only that
 * file's name is relevant, whatever it is. Returns an owned watch (free
 * with sync_watch_close()), or NULL with err set, the message naming the
 * path: ENOENT (root does not exist), ENOTDIR (neither a directory nor a
 * regular file), EACCES, ENOSPC (inotify's watch limit reached — the
 * message names /proc/sys/fs/inotify/max_user_watches), EMFILE (too many
 * inotify instances — it names /proc/sys/fs/inotify/max_user_instances —
 * or open files), ENOMEM. Directories below root that vanish or cannot
 * be read while it is walked are skipped. */
struct sync_watch *sync_watch_open(const char *root, struct kerr *err);

/* Closes the inotify descriptor and frees w. Accepts NULL. */
void sync_watch_close(struct sync_watch *w);

/* Waits up to timeout_ms (-1: no limit) for a relevant change; after the
 * first one, keeps reading until debounce_ms pass with no further
 * relevant event (so a burst is one change). It never blocks past
 * timeout_ms: a change still settling then is reported at once; nor more
 * than 5 s (or debounce_ms if longer) past a burst's first event, so a
 * file rewritten without pause cannot starve the caller. Returns 1 when
 * something changed, 0 when timeout_ms passed without a change or *stop
 * became non-zero (checked at least every 100 ms; stop may be NULL;
 * a change not yet reported then is dropped), -errno with err set on an
 * error: ENOSPC/ENOMEM when a new directory could not be watched (the
 * message names the directory and, for ENOSPC,
 * /proc/sys/fs/inotify/max_user_watches), or a failed read(2)/poll(2).
 * After ENOSPC/ENOMEM the watch stays usable: what is watched still is,
 * the next call reports the change that came with the error, and rescans
 * retry the rest (after 1 s, doubling up to 30 s) without reporting the
 * error again, until one succeeds and reports a change. EINTR is retried,
 * never returned. */
int sync_watch_wait(struct sync_watch *w, int timeout_ms, int debounce_ms, const volatile int *stop,
                    struct kerr *err);

/* Is name (a file's base name) a manifest file the watch reports? True for
 * names ending in ".yaml" or ".yml" with something before the suffix, false
 * for names starting with '.' (dotfiles, vim's .x.yaml.swp, emacs' .#x.yaml),
 * '#' or '~', names with a '/', and anything else (x.yaml~, #x.yaml#,
 * vim's 4913 probe, x.yaml.bak, x.json). NULL is false. */
bool watch_relevant_name(const char *name);

/* Counters since open, copied into *out. */
struct sync_watch_stats {
	size_t dirs;      /* directories watched now */
	size_t overflows; /* IN_Q_OVERFLOW events seen (each a full rescan) */
	size_t rescans;   /* full rescans (overflows, watch-limit retries, the root back) */
};
void sync_watch_stats(const struct sync_watch *w, struct sync_watch_stats *out);

/* Fault injection for tests: the next sync_watch_wait() behaves as if the
 * kernel had queued IN_Q_OVERFLOW (events are dropped, a rescan follows,
 * stats.overflows and stats.rescans count it, and a change is reported). */
void sync_watch_inject_overflow(struct sync_watch *w);
