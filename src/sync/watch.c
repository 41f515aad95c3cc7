/*
 * watch — a recursive inotify(7) watch of a manifest directory.
 *
 * inotify watches one directory per watch descriptor (wd) and knows nothing
 * of subdirectories, so this module keeps an entry for every directory below
 * the root, in two chained hash tables over the same entries (wd -> entry for
 * events, path -> entry for directory events naming a child) and in a tree of
 * parents and children (so that a directory moved out drops the watches of
 * everything below it). A GitOps checkout may hold thousands of directories:
 * no event costs a scan of the table.
 *
 * The races it handles, and how:
 *  - files and directories created in a new directory before its watch is
 *    added: every new watch is followed by a scan of its directory; the
 *    subdirectories found are watched and scanned in turn, and any manifest
 *    found counts as a change;
 *  - IN_IGNORED arriving after we dropped a watch ourselves (inotify_rm_watch,
 *    or a directory moved out, or IN_DELETE_SELF), possibly once the kernel
 *    has handed the same wd to a new directory: an entry counts the
 *    IN_IGNORED events still due for its wd (a "ghost" once its directory is
 *    gone) and consumes them, so only an unexpected IN_IGNORED removes a
 *    live watch;
 *  - inotify_add_watch() returning a wd we already hold under another path
 *    (a directory reached again after a move we did not see, as during a
 *    rescan): the entry moves to the new path and its old subtree is dropped;
 *    a live entry left at a path now held by another directory is dropped;
 *  - IN_Q_OVERFLOW: events were lost, so every directory is watched again
 *    (mark and sweep: what is found is kept or added, what is not is dropped)
 *    and a change is reported.
 *
 * Linux allocates wds cyclically (idr_alloc_cyclic), so a wd comes back only
 * after 2^31 watches; the bookkeeping above keeps reuse harmless anyway.
 */
#include "sync/watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kerr.h"
#include "common/util.h"

/* What a directory is watched for. IN_CLOSE_WRITE rather than IN_MODIFY: a
 * file is re-read once its writer is done with it, not at every write(2). */
#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF |   \
	 IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

#define WATCH_TICK_MS      100   /* longest sleep between looks at *stop */
#define WATCH_BURST_MAX_MS 5000  /* a burst longer than this is reported anyway */
#define WATCH_RETRY_MIN_MS 1000  /* after a watch-limit error, first retry */
#define WATCH_RETRY_MAX_MS 30000 /* ... doubling up to this */
#define WATCH_READS_MAX    16    /* reads of the queue per wake-up, so a flood cannot pin us */
#define WATCH_MAX_WATCHES  "/proc/sys/fs/inotify/max_user_watches"

struct wentry {
	int wd;
	unsigned ignores; /* IN_IGNORED events still due for wd from watches we dropped */
	bool seen;        /* found by the rescan in progress */
	char *path;       /* owned; NULL for a ghost: dropped, awaiting its IN_IGNORED */
	struct wentry *parent, *child, *prev, *next; /* the tree of live entries */
	struct wentry *wd_next, *path_next;          /* hash chains */
};

struct sync_watch {
	int fd;
	char *root; /* the directory watched, as given, without trailing '/' */
	char *only; /* root named a file: its base name, the only relevant name */
	struct wentry **by_wd, **by_path;
	size_t nbuckets; /* a power of two, shared by both tables */
	size_t nentries; /* entries in by_wd: live ones and ghosts */
	struct sync_watch_stats stats;
	bool inject_overflow;
	bool incomplete; /* a directory could not be watched (limit): rescan later */
	bool pending;    /* a change seen by a wait that returned an error */
	dev_t root_dev;  /* the directory the root path led to when last watched: */
	ino_t root_ino;  /* a symlinked root swapped to another target changes it */
	int64_t retry_at_ms, retry_delay_ms;
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
};

enum drop_how {
	DROP_RM,     /* we remove the watch: an IN_IGNORED follows if it still existed */
	DROP_GONE,   /* the kernel removes it (IN_DELETE_SELF): one IN_IGNORED follows */
	DROP_FORGET, /* the kernel has removed it: its IN_IGNORED is read */
};

bool watch_relevant_name(const char *name)
{
	if (!name || !name[0] || name[0] == '.' || name[0] == '#' || name[0] == '~' ||
	    strchr(name, '/'))
		return false;
	size_t n = strlen(name);
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/* ---- the tables ---------------------------------------------------------------------- */

static size_t hash_wd(int wd)
{
	return (size_t)((uint32_t)wd * 2654435761u);
}

static size_t hash_path(const char *s)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h ^ (h >> 32));
}

static struct wentry *find_wd(const struct sync_watch *w, int wd)
{
	struct wentry *e = w->by_wd[hash_wd(wd) & (w->nbuckets - 1)];
	while (e && e->wd != wd)
		e = e->wd_next;
	return e;
}

static struct wentry *find_path(const struct sync_watch *w, const char *path)
{
	struct wentry *e = w->by_path[hash_path(path) & (w->nbuckets - 1)];
	while (e && !streq(e->path, path))
		e = e->path_next;
	return e;
}

static void tables_grow(struct sync_watch *w)
{
	size_t nb = w->nbuckets * 2;
	struct wentry **bw = xcalloc(nb, sizeof(*bw)), **bp = xcalloc(nb, sizeof(*bp));
	for (size_t i = 0; i < w->nbuckets; i++) {
		for (struct wentry *e = w->by_wd[i], *n; e; e = n) {
			n = e->wd_next;
			e->wd_next = bw[hash_wd(e->wd) & (nb - 1)];
			bw[hash_wd(e->wd) & (nb - 1)] = e;
		}
		for (struct wentry *e = w->by_path[i], *n; e; e = n) {
			n = e->path_next;
			e->path_next = bp[hash_path(e->path) & (nb - 1)];
			bp[hash_path(e->path) & (nb - 1)] = e;
		}
	}
	free(w->by_wd);
	free(w->by_path);
	w->by_wd = bw;
	w->by_path = bp;
	w->nbuckets = nb;
}

static struct wentry *entry_new(struct sync_watch *w, int wd)
{
	if (w->nentries >= w->nbuckets)
		tables_grow(w);
	struct wentry *e = xcalloc(1, sizeof(*e));
	e->wd = wd;
	struct wentry **head = &w->by_wd[hash_wd(wd) & (w->nbuckets - 1)];
	e->wd_next = *head;
	*head = e;
	w->nentries++;
	return e;
}

/* Frees a ghost (e->path is NULL). */
static void entry_free(struct sync_watch *w, struct wentry *e)
{
	struct wentry **p = &w->by_wd[hash_wd(e->wd) & (w->nbuckets - 1)];
	while (*p != e)
		p = &(*p)->wd_next;
	*p = e->wd_next;
	w->nentries--;
	free(e);
}

static char *path_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	return xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	return xasprintf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

/* Makes e live at path, under its parent directory's entry. */
static void entry_attach(struct sync_watch *w, struct wentry *e, const char *path)
{
	e->path = xstrdup(path);
	struct wentry **head = &w->by_path[hash_path(path) & (w->nbuckets - 1)];
	e->path_next = *head;
	*head = e;
	if (!streq(path, w->root)) {
		_cleanup_free_ char *up = path_parent(path);
		e->parent = find_path(w, up);
	}
	if (e->parent) {
		e->next = e->parent->child;
		if (e->next)
			e->next->prev = e;
		e->parent->child = e;
	}
	w->stats.dirs++;
}

/* Takes e (whose children are gone) out of the path table and the tree. */
static void entry_detach(struct sync_watch *w, struct wentry *e)
{
	struct wentry **p = &w->by_path[hash_path(e->path) & (w->nbuckets - 1)];
	while (*p != e)
		p = &(*p)->path_next;
	*p = e->path_next;
	e->path_next = NULL;
	if (e->prev)
		e->prev->next = e->next;
	else if (e->parent)
		e->parent->child = e->next;
	if (e->next)
		e->next->prev = e->prev;
	e->parent = e->prev = e->next = NULL;
	free(e->path);
	e->path = NULL;
	w->stats.dirs--;
}

/* Drops the live entry e and everything below it. */
static void watch_drop(struct sync_watch *w, struct wentry *e, enum drop_how how)
{
	while (e->child)
		watch_drop(w, e->child, DROP_RM);
	entry_detach(w, e);
	if ((how == DROP_RM && inotify_rm_watch(w->fd, e->wd) == 0) || how == DROP_GONE)
		e->ignores++;
	if (e->ignores == 0)
		entry_free(w, e);
}

/* ---- adding watches ------------------------------------------------------------------ */

static long read_proc_long(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int add_watch_error(const struct sync_watch *w, const char *path, int code, struct kerr *err)
{
	if (code == ENOSPC)
		return kerr_set(err, ENOSPC,
		                "cannot watch %s: the inotify watch limit is reached (%zu "
		                "directories watched by keel sync, limit %ld for the user); raise "
		                "%s (e.g. sysctl fs.inotify.max_user_watches=524288)",
		                path, w->stats.dirs, read_proc_long(WATCH_MAX_WATCHES),
		                WATCH_MAX_WATCHES);
	return kerr_set(err, code, "cannot watch %s: %s", path, strerror(code));
}

/* Adds (or confirms) the watch of the directory path. Returns 0 or the
 * -errno of inotify_add_watch(). */
static int watch_one(struct sync_watch *w, const char *path)
{
	/* The root may be a symlink the user named; nothing below it is followed. */
	uint32_t mask = WATCH_MASK | (streq(path, w->root) ? 0 : IN_DONT_FOLLOW);
	int wd = inotify_add_watch(w->fd, path, mask);
	if (wd < 0)
		return -errno;
	struct wentry *e = find_wd(w, wd);
	if (e && e->path && streq(e->path, path)) {
		e->seen = true;
		return 0;
	}
	if (e && e->path) { /* this directory moved here from e->path */
		while (e->child)
			watch_drop(w, e->child, DROP_RM);
		entry_detach(w, e);
	}
	struct wentry *stale = find_path(w, path); /* a directory that was replaced */
	if (stale)
		watch_drop(w, stale, DROP_RM);
	if (!e)
		e = entry_new(w, wd);
	entry_attach(w, e, path);
	e->seen = true;
	return 0;
}

struct pathv {
	char **v;
	size_t n, cap;
};

static void pathv_push(struct pathv *p, char *s)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n++] = s;
}

/* Lists the directory path (just watched): subdirectories go on todo, a
 * relevant file sets *found. A directory gone meanwhile lists as empty. */
static void scan_dir(const struct sync_watch *w, const char *path, struct pathv *todo, bool *found)
{
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		if (w->only) {
			*found |= streq(name, w->only);
			continue;
		}
		if (name[0] == '.') /* ".", "..", dotfiles, .git and other dot directories */
			continue;
		int type = de->d_type;
		struct stat st;
		if (type == DT_UNKNOWN && fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
		if (type == DT_DIR)
			pathv_push(todo, path_join(path, name));
		else if (watch_relevant_name(name))
			*found = true;
	}
	closedir(d);
}

/* Watches top and every directory below it, scanning each after its watch is
 * added. Returns 0, or -errno with err set: top's error as is (ENOENT when it
 * is gone), a descendant's only when it is not one of vanishing (ENOENT,
 * ENOTDIR: replaced by a file or symlink) or EACCES (what cannot be read is
 * not watched; the reader reports it). */
static int watch_tree(struct sync_watch *w, const char *top, bool *found, struct kerr *err)
{
	struct pathv todo = {0};
	pathv_push(&todo, xstrdup(top));
	int r = 0;
	bool first = true;
	while (todo.n) {
		_cleanup_free_ char *path = todo.v[--todo.n];
		if (r < 0)
			continue; /* emptying todo after an error */
		int a = watch_one(w, path);
		if (a == 0)
			scan_dir(w, path, &todo, found);
		else if (first || (a != -ENOENT && a != -ENOTDIR && a != -EACCES))
			r = add_watch_error(w, path, -a, err);
		first = false;
	}
	free(todo.v);
	return r;
}

/* Remembers which directory the root path leads to now. */
static void root_identity_note(struct sync_watch *w)
{
	struct stat st;
	if (stat(w->root, &st) == 0) {
		w->root_dev = st.st_dev;
		w->root_ino = st.st_ino;
	}
}

/* ---- rescans ------------------------------------------------------------------------- */

/* Watches everything under the root again: directories found are kept or
 * added, live ones not found are dropped. After an overflow the IN_IGNORED
 * events ghosts wait for may have been lost with the rest, so ghosts are
 * forgotten (forget_ghosts). On an error other than the root being gone,
 * nothing is dropped: the walk did not see everything. */
static int watch_rescan(struct sync_watch *w, bool forget_ghosts, struct kerr *err)
{
	w->stats.rescans++;
	for (size_t i = 0; i < w->nbuckets; i++) {
		for (struct wentry *e = w->by_wd[i], *n; e; e = n) {
			n = e->wd_next;
			e->seen = false;
			if (!e->path && forget_ghosts)
				entry_free(w, e);
		}
	}
	bool found = false;
	root_identity_note(w);
	int r = watch_tree(w, w->root, &found, err);
	if (r < 0 && r != -ENOENT && r != -ENOTDIR)
		return r;
	size_t n = 0;
	_cleanup_free_ int *unseen = xcalloc(w->nentries + 1, sizeof(*unseen));
	for (size_t i = 0; i < w->nbuckets; i++)
		for (struct wentry *e = w->by_wd[i]; e; e = e->wd_next)
			if (e->path && !e->seen)
				unseen[n++] = e->wd;
	for (size_t i = 0; i < n; i++) {
		struct wentry *e = find_wd(w, unseen[i]); /* an ancestor's drop may have taken it */
		if (e && e->path && !e->seen)
			watch_drop(w, e, DROP_RM);
	}
	return r;
}

/* Something could not be watched: rescan later, 1 s after the first
 * failure, doubling up to 30 s while failures go on. */
static void watch_incomplete(struct sync_watch *w, int64_t now)
{
	if (!w->incomplete)
		w->retry_delay_ms = WATCH_RETRY_MIN_MS;
	else if (w->retry_delay_ms < WATCH_RETRY_MAX_MS / 2)
		w->retry_delay_ms *= 2;
	else
		w->retry_delay_ms = WATCH_RETRY_MAX_MS;
	w->incomplete = true;
	w->retry_at_ms = now + w->retry_delay_ms;
}

/* The root path leads to another directory than the one watched, and no
 * event says so: a symlinked root swapped atomically (git-sync's
 * `ln -sfn wt-B current.tmp && mv -T current.tmp current`) changes only
 * the link, in a directory we do not watch. Checked at every tick. */
static bool root_swapped(const struct sync_watch *w)
{
	struct stat st;
	return stat(w->root, &st) == 0 && S_ISDIR(st.st_mode) &&
	       (st.st_dev != w->root_dev || st.st_ino != w->root_ino);
}

/* Between reads: when the root has gone (deleted, moved away), watches it
 * again once a directory is back at its path (looked for at every tick);
 * after a watch could not be added, retries a rescan with backoff. Sets
 * *changed when the root came back or a retry watched everything. Errors
 * are not reported again: the one that made the watch incomplete was. */
static void watch_recover(struct sync_watch *w, int64_t now, bool *changed)
{
	bool lost = !find_path(w, w->root);
	if (!lost && root_swapped(w)) {
		/* rewatch by path: the old target's entries are dropped as stale */
		int r = watch_rescan(w, false, NULL);
		if (r < 0 && r != -ENOENT && r != -ENOTDIR)
			watch_incomplete(w, now);
		*changed = true;
		return;
	}
	if ((!lost && !w->incomplete) || (w->incomplete && now < w->retry_at_ms))
		return;
	struct stat st;
	if (lost && (stat(w->root, &st) < 0 || !S_ISDIR(st.st_mode)))
		return;
	int r = watch_rescan(w, false, NULL);
	bool back = find_path(w, w->root) != NULL;
	if (r == 0 && back)
		w->incomplete = false;
	else if (r != -ENOENT && r != -ENOTDIR) /* gone again at once: keep looking */
		watch_incomplete(w, now);
	if (back && (r == 0 || lost))
		*changed = true;
}

/* IN_Q_OVERFLOW, real or injected: events are lost, so look at everything. */
static int watch_overflow(struct sync_watch *w, bool *changed, struct kerr *err)
{
	w->stats.overflows++;
	*changed = true;
	int r = watch_rescan(w, true, err);
	if (r == -ENOENT || r == -ENOTDIR)
		return 0; /* the root is gone: watch_recover() waits for it */
	if (r < 0)
		watch_incomplete(w, time_mono_ms());
	return r;
}

/* ---- events -------------------------------------------------------------------------- */

/* A directory created or moved in below a watched one: watch it and all below
 * it at once; it is a change when it holds a manifest. */
static int watch_new_dir(struct sync_watch *w, const char *path, bool *changed, struct kerr *err)
{
	bool found = false;
	struct kerr e = KERR_INIT;
	int r = watch_tree(w, path, &found, &e);
	*changed |= found;
	if (r == -ENOENT || r == -ENOTDIR) /* gone again: its removal is an event of its own */
		r = 0;
	if (r == -EACCES) { /* not watchable; the reader will say why */
		*changed = true;
		r = 0;
	}
	if (r < 0) {
		*changed = true;
		watch_incomplete(w, time_mono_ms());
		kerr_move(err, &e);
	}
	kerr_clear(&e);
	return r;
}

static void watch_ignored(struct sync_watch *w, struct wentry *e, bool *changed)
{
	if (e->ignores) { /* one we expected: e's wd may be live again, for another directory */
		if (--e->ignores == 0 && !e->path)
			entry_free(w, e);
	} else if (e->path) { /* removed by the kernel, unasked (an unmount) */
		watch_drop(w, e, DROP_FORGET);
		*changed = true;
	}
}

/* Applies one event. Sets *changed when it is relevant, *overflow on
 * IN_Q_OVERFLOW. Returns 0, or -errno with err set when a new directory
 * could not be watched. */
static int watch_event(struct sync_watch *w, const struct inotify_event *ev, bool *changed,
                       bool *overflow, struct kerr *err)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		*overflow = true;
		return 0;
	}
	struct wentry *e = find_wd(w, ev->wd);
	if (!e)
		return 0; /* the late event of a watch already forgotten */
	if (ev->mask & IN_IGNORED) {
		watch_ignored(w, e, changed);
		return 0;
	}
	if (!e->path)
		return 0; /* the late event of a ghost */
	if (ev->mask & IN_DELETE_SELF) {
		watch_drop(w, e, DROP_GONE);
		*changed = true;
		return 0;
	}
	if (ev->mask & IN_MOVE_SELF) { /* below the root, the parent's IN_MOVED_FROM did it */
		if (streq(e->path, w->root)) {
			watch_drop(w, e, DROP_RM);
			*changed = true;
		}
		return 0;
	}
	if (!ev->len || !ev->name[0])
		return 0;
	if (w->only) {
		*changed |= streq(ev->name, w->only);
		return 0;
	}
	if (!(ev->mask & IN_ISDIR)) {
		*changed |= watch_relevant_name(ev->name);
		return 0;
	}
	if (ev->name[0] == '.')
		return 0;
	_cleanup_free_ char *path = path_join(e->path, ev->name);
	if (ev->mask & (IN_CREATE | IN_MOVED_TO))
		return watch_new_dir(w, path, changed, err);
	if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
		struct wentry *c = find_path(w, path);
		if (c)
			watch_drop(w, c, DROP_RM);
		*changed = true; /* what it held is gone, whether we saw it go or not */
	}
	return 0;
}

/* Reads and applies what is queued (a bounded number of reads). Returns 0,
 * or -errno with err set (the first error; the rest of the events are still
 * applied). */
static int watch_read(struct sync_watch *w, bool *changed, struct kerr *err)
{
	bool overflow = false;
	int ret = 0;
	for (int i = 0; i < WATCH_READS_MAX; i++) {
		ssize_t n = read(w->fd, w->buf, sizeof(w->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return kerr_set(err, errno, "inotify: read: %s", strerror(errno));
		if (n == 0)
			break;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev = (const void *)(w->buf + off);
			int r = watch_event(w, ev, changed, &overflow, ret < 0 ? NULL : err);
			if (r < 0 && ret == 0)
				ret = r;
			off += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
	if (overflow) {
		int r = watch_overflow(w, changed, ret < 0 ? NULL : err);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

/* Throws away what is queued: what a real overflow does to the events after it. */
static void watch_discard(struct sync_watch *w)
{
	for (int i = 0; i < WATCH_READS_MAX; i++) {
		ssize_t n = read(w->fd, w->buf, sizeof(w->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
}

/* ---- the public functions ------------------------------------------------------------ */

struct burst {
	bool changed;
	int64_t quiet_at; /* report when no relevant event came since */
	int64_t cap_at;   /* report then even if events keep coming */
};

static void burst_note(struct burst *b, int64_t now, int debounce_ms)
{
	if (!b->changed)
		b->cap_at =
		    now + (debounce_ms > WATCH_BURST_MAX_MS ? debounce_ms : WATCH_BURST_MAX_MS);
	b->changed = true;
	b->quiet_at = now + debounce_ms;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int sync_watch_wait(struct sync_watch *w, int timeout_ms, int debounce_ms, const volatile int *stop,
                    struct kerr *err)
{
	int64_t now = time_mono_ms();
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms;
	struct burst b = {0};
	bool changed = w->pending;
	w->pending = false;
	if (debounce_ms < 0)
		debounce_ms = 0;
	if (w->inject_overflow) {
		w->inject_overflow = false;
		watch_discard(w);
		int r = watch_overflow(w, &changed, err);
		if (r < 0) {
			w->pending = true;
			return r;
		}
	}
	for (;;) {
		if (stop && *stop)
			return 0;
		now = time_mono_ms();
		watch_recover(w, now, &changed);
		if (changed)
			burst_note(&b, now, debounce_ms);
		changed = false;
		if (b.changed && (now >= b.quiet_at || now >= b.cap_at || now >= deadline))
			return 1;
		if (!b.changed && now >= deadline)
			return 0;
		int64_t until = b.changed ? min64(min64(b.quiet_at, b.cap_at), deadline) : deadline;
		struct pollfd p = {.fd = w->fd, .events = POLLIN};
		int n = poll(&p, 1, (int)min64(until - now, WATCH_TICK_MS));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kerr_set(err, errno, "inotify: poll: %s", strerror(errno));
		if (n == 0)
			continue;
		int r = watch_read(w, &changed, err);
		if (r < 0) {
			w->pending = changed || b.changed;
			return r;
		}
	}
}

struct sync_watch *sync_watch_open(const char *root, struct kerr *err)
{
	struct stat st;
	if (stat(root, &st) < 0) {
		kerr_set(err, errno, "cannot watch %s: %s", root, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		kerr_set(err, ENOTDIR, "cannot watch %s: not a directory or a regular file", root);
		return NULL;
	}
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		kerr_set(err, e, "cannot watch %s: inotify_init1: %s%s", root, strerror(e),
		         e == EMFILE
		             ? " (the limit of inotify instances is "
		               "/proc/sys/fs/inotify/max_user_instances, or the open-file limit)"
		             : "");
		return NULL;
	}
	struct sync_watch *w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	w->nbuckets = 64;
	w->by_wd = xcalloc(w->nbuckets, sizeof(*w->by_wd));
	w->by_path = xcalloc(w->nbuckets, sizeof(*w->by_path));
	size_t n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	w->root = xstrndup(root, n);
	if (S_ISREG(st.st_mode)) {
		const char *slash = strrchr(w->root, '/');
		w->only = xstrdup(slash ? slash + 1 : w->root);
		char *dir = path_parent(w->root);
		free(w->root);
		w->root = dir;
	}
	bool found = false;
	root_identity_note(w);
	if (watch_tree(w, w->root, &found, err) < 0) {
		sync_watch_close(w);
		return NULL;
	}
	return w;
}

void sync_watch_close(struct sync_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->nbuckets; i++) {
		for (struct wentry *e = w->by_wd[i], *n; e; e = n) {
			n = e->wd_next;
			free(e->path);
			free(e);
		}
	}
	free(w->by_wd);
	free(w->by_path);
	if (w->fd >= 0)
		close(w->fd);
	free(w->root);
	free(w->only);
	free(w);
}

void sync_watch_stats(const struct sync_watch *w, struct sync_watch_stats *out)
{
	*out = w->stats;
}

void sync_watch_inject_overflow(struct sync_watch *w)
{
	w->inject_overflow = true;
}
