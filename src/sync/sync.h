/*
 * sync — keeping the cluster equal to a manifest directory: `keel sync
 * DIR` and, in-process, `keel up -f DIR`. It is `keel apply -R -f DIR
 * --prune` kept running (sync/applyset.h), re-run after every change the
 * inotify watch (sync/watch.h) reports and every interval, so that what was
 * changed by hand is put back.
 *
 * A pass reads the whole tree from disk (only files watch_relevant_name()
 * accepts: *.yaml, *.yml; directories starting with '.' such as .git are
 * skipped), validates it offline, applies the documents of every file that
 * is good, and prunes the apply set's objects the tree no longer defines.
 *
 * Broken files. A file that does not parse or validate (or defines an
 * object another file already defines) is reported, and its objects are
 * left as they are: none of its documents is applied, and the objects it
 * defined the last time it was good — remembered per file, in memory —
 * are kept out of the prune. When a file is broken and no good version of
 * it has been seen since the sync started, the pass does not prune at all
 * (it cannot know what that file holds) and says so. Likewise no prune
 * when the directory cannot be read, when an apply failed (nothing old is
 * removed before everything new is in place), and when the tree holds no
 * object at all unless allow_empty (an emptied or half-checked-out
 * directory is a common accident).
 *
 * Other sets. An object the tree defines whose live label names another
 * apply set is not applied (sync/applyset.h): an error at its document,
 * logged once, and the pass does not prune, as for any failed apply; the
 * other objects are applied. opts.overwrite_set moves such objects instead.
 *
 * Logging. Library code does not print: each line goes to opts.log with a
 * level — one line per pass (counts and errors), one per object created,
 * configured or pruned, and each problem (FILE:LINE:COL: what). A problem
 * that is the same as in the previous pass is not logged again (the pass
 * line still counts it), so a broken file is reported once per change,
 * not once per interval.
 *
 * Threading: a sync is driven by one thread (sync_run or sync_pass), with
 * its own client; sync_stats_get may be called from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

struct client;
struct kerr;
struct sync;

/* Receives one log line (no newline); line is borrowed for the call. */
typedef void (*sync_log_fn)(void *ud, enum log_level level, const char *line);

struct sync_opts {
	const char *dir;           /* the manifest directory (a single file works too) */
	const char *set;           /* apply set name; NULL: applyset_default_name(dir) */
	const char *field_manager; /* NULL: CLIENT_DEFAULT_FIELD_MANAGER, as keel apply */
	int64_t interval_ms;       /* full re-apply period; <= 0: 60 s */
	int64_t debounce_ms;       /* quiet time that ends a burst of changes; < 0: 200 ms */
	bool allow_empty;          /* let a tree with no object prune the whole set */
	bool overwrite_set;        /* move objects of other sets into this one, every pass */
	sync_log_fn log;           /* NULL: nothing is logged */
	void *log_ud;
};

enum sync_trigger {
	SYNC_TRIGGER_START,    /* the first pass */
	SYNC_TRIGGER_CHANGE,   /* the watch reported a change */
	SYNC_TRIGGER_INTERVAL, /* the periodic full re-apply */
};
/* "start", "change", "interval". Static. */
const char *sync_trigger_name(enum sync_trigger t);

/* What one pass did. */
struct sync_pass_result {
	enum sync_trigger trigger;
	size_t files;        /* manifest files read */
	size_t broken_files; /* files with errors (left as they were) */
	size_t objects;      /* documents applied or attempted */
	size_t created, configured, unchanged, pruned;
	size_t errors;       /* diagnostics with error severity + failed applies/prunes */
	size_t warnings;     /* YAML 1.1 warnings, Namespaces not pruned */
	bool pruned_skipped; /* the prune did not run (see the pass's log line) */
	int64_t duration_ms;
};

/* Counters since sync_new; what `keel up` can serve on /metrics. */
struct sync_stats {
	uint64_t passes, failed_passes; /* failed: errors > 0 */
	uint64_t created, configured, unchanged, pruned, errors;
	uint64_t prunes_skipped;
	uint64_t watch_overflows, watch_rescans; /* from the watch (sync/watch.h) */
	int64_t last_pass_unix;                  /* wall clock of the last pass's end; 0: none */
	struct sync_pass_result last;
};

/* Creates a sync of opts->dir through c (borrowed: it must outlive the
 * sync; used only by the thread that runs it). Strings in opts are
 * copied. Returns 0, or -EINVAL (a bad set name), -ENOENT (dir cannot be
 * resolved for the default set name) with err set. */
int sync_new(struct client *c, const struct sync_opts *opts, struct sync **out, struct kerr *err);
void sync_free(struct sync *s); /* accepts NULL */

/* The apply set's name (borrowed, valid while s lives). */
const char *sync_set_name(const struct sync *s);

/* One pass (see the top). Fills *out (may be NULL) and the stats. Returns
 * 0 when the pass had no error, 1 when it had some (reported through the
 * log). */
int sync_pass(struct sync *s, enum sync_trigger trigger, struct sync_pass_result *out);

/* The loop: opens the watch, runs a first pass, then one pass after each
 * change the watch reports (debounced by opts.debounce_ms) and one every
 * opts.interval_ms after the last pass, until *stop becomes non-zero
 * (checked at least every 100 ms, and between passes). When the watch
 * cannot be opened or fails, it is logged and the loop goes on with the
 * periodic passes alone, trying to watch again at each of them. Returns 0
 * when stopped. */
int sync_run(struct sync *s, const volatile int *stop);

/* A copy of the counters; thread-safe. */
void sync_stats_get(struct sync *s, struct sync_stats *out);

/* Appends the counters of s as Prometheus text (keel_sync_passes_total,
 * ..._created_total, ..., each labelled set="NAME"), for a /metrics page.
 * Any thread. */
struct sbuf;
void sync_metrics_render(struct sync *s, struct sbuf *out);
