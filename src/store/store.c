/*
 * store — opening and closing the LMDB environment, the data-directory lock,
 * and the read side (get, list, change-log replay).
 *
 * Reads never go through the writer: each opens its own short read-only
 * transaction (MDB_NOTLS, so any thread may do so), which is one consistent
 * snapshot — a list and the revision it reports are read in the same
 * transaction, and reads keep working when the map is full. Writes are the
 * writer thread's (store_writer.c), so LMDB's single-writer rule holds by
 * construction and many callers can share one commit.
 *
 * Every public call is counted in `inflight` so that store_close() can wait
 * for callers racing with it before it closes the environment.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "store/store_internal.h"

#define DEFAULT_MAP_SIZE  ((size_t)8 << 30)
#define DEFAULT_HISTORY   100000u
#define DEFAULT_MAX_BATCH 256u
#define MAX_READERS       1024u
#define MIN_MAP_SIZE      (64u * 1024u)

/* ---- errors --------------------------------------------------------------- */

static int mdb_to_errno(int rc)
{
	static const struct {
		int mdb, err;
	} table[] = {
	    {MDB_NOTFOUND, ENOENT},      {MDB_MAP_FULL, ENOSPC},   {MDB_KEYEXIST, EEXIST},
	    {MDB_TXN_FULL, ENOSPC},      {MDB_CORRUPTED, EIO},     {MDB_PANIC, EIO},
	    {MDB_VERSION_MISMATCH, EIO}, {MDB_INVALID, EIO},       {MDB_READERS_FULL, EBUSY},
	    {MDB_MAP_RESIZED, EIO},      {MDB_BAD_TXN, EIO},       {MDB_BAD_VALSIZE, EINVAL},
	    {MDB_DBS_FULL, EIO},         {MDB_PAGE_NOTFOUND, EIO}, {MDB_TLS_FULL, EBUSY},
	    {MDB_PAGE_FULL, EIO},        {MDB_INCOMPATIBLE, EIO},  {MDB_BAD_RSLOT, EIO},
	    {MDB_BAD_DBI, EIO},
	};
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].mdb == rc)
			return table[i].err;
	return rc > 0 ? rc : EIO; /* LMDB passes system errors through as errno */
}

int store_mdb_error(struct store *s, int rc, struct kerr *err, const char *fmt, ...)
{
	int code = mdb_to_errno(rc);
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *ctx = xvasprintf(fmt, ap);
	va_end(ap);
	if (rc == MDB_MAP_FULL && s)
		return store_full_error(s, err);
	return kerr_set(err, code, "%s: %s", ctx, mdb_strerror(rc));
}

int store_full_error(struct store *s, struct kerr *err)
{
	return kerr_set(err, ENOSPC,
	                "store is full (map size %zu bytes); delete objects or restart with a "
	                "larger --store-size",
	                s->quota);
}

int store_used_pages(struct store *s, MDB_txn *txn, uint64_t *out, struct kerr *err)
{
	const MDB_dbi dbis[] = {0 /* free list */, 1 /* main */, s->objects, s->log, s->meta};
	uint64_t pages = 2;
	for (size_t i = 0; i < ARRAY_SIZE(dbis); i++) {
		MDB_stat st;
		int rc = mdb_stat(txn, dbis[i], &st);
		if (rc)
			return store_mdb_error(s, rc, err, "store: database statistics");
		pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
	}
	*out = pages;
	return 0;
}

/* ---- small shared helpers --------------------------------------------------- */

int store_parse(const char *what, const MDB_val *v, json_t **out, struct kerr *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(v->mv_data, v->mv_size, 0, &jerr);
	if (!j)
		return kerr_set(err, EIO, "store: corrupt data at %s: %s (byte %d)", what,
		                jerr.text, jerr.position);
	if (!json_is_object(j)) {
		json_decref(j);
		return kerr_set(err, EIO, "store: corrupt data at %s: not a JSON object", what);
	}
	*out = j;
	return 0;
}

int store_check_key(struct store *s, const char *key, struct kerr *err)
{
	if (!key || !*key)
		return kerr_set(err, EINVAL, "store: empty key");
	size_t len = strlen(key), max = (size_t)mdb_env_get_maxkeysize(s->env);
	if (len > max)
		return kerr_set(err, EINVAL, "store: key of %zu bytes is longer than the limit %zu",
		                len, max);
	json_t *j = json_stringn(key, len); /* keys go into JSON log entries */
	if (!j)
		return kerr_set(err, EINVAL, "store: key is not valid UTF-8");
	json_decref(j);
	return 0;
}

int store_txn_get(struct store *s, MDB_txn *txn, const char *key, json_t **out, struct kerr *err)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	int rc = mdb_get(txn, s->objects, &k, &v);
	if (rc == MDB_NOTFOUND)
		return kerr_set(err, ENOENT, "%s not found", key);
	if (rc)
		return store_mdb_error(s, rc, err, "store: read %s", key);
	return store_parse(key, &v, out, err);
}

int store_meta_get(struct store *s, MDB_txn *txn, const char *name, uint64_t *out, struct kerr *err)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc)
		return store_mdb_error(s, rc, err, "store: read meta %s", name);
	if (v.mv_size != 8)
		return kerr_set(err, EIO, "store: corrupt meta %s (%zu bytes, want 8)", name,
		                v.mv_size);
	*out = store_unbe64(v.mv_data);
	return 0;
}

int store_meta_put(struct store *s, MDB_txn *txn, const char *name, uint64_t val, struct kerr *err)
{
	unsigned char buf[8];
	store_be64(val, buf);
	MDB_val k = {strlen(name), (void *)name}, v = {8, buf};
	int rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc)
		return store_mdb_error(s, rc, err, "store: write meta %s", name);
	return 0;
}

char *store_key(const char *plural, const char *ns, const char *name)
{
	return xasprintf("%s/%s/%s", plural ? plural : "", ns ? ns : "", name ? name : "");
}

/* ---- call accounting ---------------------------------------------------------- */

int store_enter(struct store *s, bool write, struct kerr *err)
{
	pthread_mutex_lock(&s->lock);
	bool refuse = s->closed || (write && s->closing);
	if (!refuse)
		s->inflight++;
	pthread_mutex_unlock(&s->lock);
	if (refuse)
		return kerr_set(err, ESHUTDOWN, "store is closing");
	return 0;
}

void store_leave(struct store *s)
{
	pthread_mutex_lock(&s->lock);
	if (--s->inflight == 0)
		pthread_cond_broadcast(&s->idle_cond);
	pthread_mutex_unlock(&s->lock);
}

/* ---- the data-directory lock ---------------------------------------------------- */

static int mkdir_p(const char *dir, struct kerr *err)
{
	_cleanup_free_ char *p = xstrdup(dir);
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return kerr_set(err, errno, "create %s: %s", p, strerror(errno));
		*c = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return kerr_set(err, errno, "create data directory %s: %s", p, strerror(errno));
	struct stat st;
	if (stat(p, &st) < 0)
		return kerr_set(err, errno, "data directory %s: %s", p, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return kerr_set(err, ENOTDIR, "data directory %s is not a directory", p);
	return 0;
}

static int lock_dir(const char *dir, int *out_fd, struct kerr *err)
{
	_cleanup_free_ char *path = xasprintf("%s/LOCK", dir);
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return kerr_set(err, errno, "open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e != EWOULDBLOCK)
			return kerr_set(err, e, "lock %s: %s", path, strerror(e));
		char buf[32] = {0};
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
		if (pid > 0)
			return kerr_set(
			    err, EBUSY,
			    "data directory %s is in use by another keel server (pid %ld)", dir,
			    pid);
		return kerr_set(err, EBUSY, "data directory %s is in use by another keel server",
		                dir);
	}
	char buf[32];
	int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
		return kerr_set(err, errno, "write %s: %s", path, strerror(errno));
	*out_fd = TAKE_FD(fd);
	return 0;
}

/* ---- open / close ------------------------------------------------------------------ */

/* LMDB needs free pages to delete anything (copy-on-write), and pages freed
 * by the last transactions are not reusable yet; a map filled to the last
 * page can then not even delete. So the LMDB map is the quota plus a
 * reserve: writes that create or grow objects stop at the quota, deletes may
 * use the reserve. The reserve is address space, not disk. */
static size_t map_with_reserve(size_t quota)
{
	size_t reserve = quota / 8;
	if (reserve < ((size_t)8 << 20))
		reserve = (size_t)8 << 20;
	return quota + reserve;
}

static int open_env(struct store *s, struct kerr *err)
{
	int rc = mdb_env_create(&s->env);
	if (rc)
		return store_mdb_error(s, rc, err, "store: create environment");
	if ((rc = mdb_env_set_mapsize(s->env, map_with_reserve(s->quota))) ||
	    (rc = mdb_env_set_maxdbs(s->env, 4)) ||
	    (rc = mdb_env_set_maxreaders(s->env, MAX_READERS)))
		return store_mdb_error(s, rc, err, "store: configure environment");
	/* MDB_NOMETASYNC: a commit flushes its data pages but only writes its
	 * meta page; the sync thread (store_writer.c) answers a batch once a
	 * later flush covers that page. Integrity is LMDB's as without it. */
	rc = mdb_env_open(s->env, s->dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
	if (rc)
		return store_mdb_error(s, rc, err, "store: open %s", s->dir);
	int dead = 0;
	mdb_reader_check(s->env, &dead); /* slots left by a killed process */
	MDB_stat st;
	mdb_env_stat(s->env, &st);
	s->psize = st.ms_psize;
	s->quota_pages = s->quota / s->psize;
	return 0;
}

static int open_dbs(struct store *s, struct kerr *err)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return store_mdb_error(s, rc, err, "store: begin");
	if ((rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &s->objects)) ||
	    (rc = mdb_dbi_open(txn, "log", MDB_CREATE, &s->log)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta))) {
		mdb_txn_abort(txn);
		return store_mdb_error(s, rc, err, "store: open databases in %s", s->dir);
	}
	uint64_t format, rev, compacted;
	int r;
	if ((r = store_meta_get(s, txn, "format", &format, err)) < 0 ||
	    (r = store_meta_get(s, txn, "revision", &rev, err)) < 0 ||
	    (r = store_meta_get(s, txn, "compacted", &compacted, err)) < 0)
		goto fail;
	if (format == 0 && (r = store_meta_put(s, txn, "format", STORE_FORMAT, err)) < 0)
		goto fail;
	if (format != 0 && format != STORE_FORMAT) {
		r = kerr_set(err, EIO, "store in %s has format %llu; this keel reads format %u",
		             s->dir, (unsigned long long)format, STORE_FORMAT);
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		return store_mdb_error(s, rc, err, "store: initialise %s", s->dir);
	atomic_store(&s->revision, rev);
	atomic_store(&s->compacted, compacted);
	return 0;
fail:
	mdb_txn_abort(txn);
	return r;
}

static void store_free(struct store *s)
{
	if (s->env)
		mdb_env_close(s->env);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->queue_cond);
	pthread_cond_destroy(&s->idle_cond);
	pthread_cond_destroy(&s->sync_cond);
	free(s->dir);
	free(s);
}

int store_open(const char *dir, const struct store_options *opt, struct store **out,
               struct kerr *err)
{
	if (opt && opt->etcd_endpoints && *opt->etcd_endpoints) {
		/* the objects are in etcd; a data directory given is still one
		 * server's own (its tokens, its controllers' identity): locked */
		_cleanup_close_ int lock_fd = -1;
		int r;
		if (dir && *dir && ((r = mkdir_p(dir, err)) < 0 || (r = lock_dir(dir, &lock_fd, err)) < 0))
			return r;
		struct store_etcd *e = NULL;
		if ((r = store_etcd_open(opt, &e, err)) < 0)
			return r;
		struct store *s = xcalloc(1, sizeof *s);
		s->etcd = e;
		s->lock_fd = TAKE_FD(lock_fd);
		*out = s;
		return 0;
	}
	if (!dir || !*dir)
		return kerr_set(err, EINVAL, "store: no data directory given");
	if (opt && opt->map_size && opt->map_size < MIN_MAP_SIZE)
		return kerr_set(err, EINVAL, "store map size %zu bytes is too small (minimum %zu)",
		                opt->map_size, (size_t)MIN_MAP_SIZE);
	struct store *s = xcalloc(1, sizeof *s);
	s->dir = xstrdup(dir);
	s->lock_fd = -1;
	s->history = opt && opt->history ? opt->history : DEFAULT_HISTORY;
	s->max_batch = opt && opt->max_batch ? opt->max_batch : DEFAULT_MAX_BATCH;
	s->quota = opt && opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE;
	s->max_object = opt && opt->max_object && opt->max_object < STORE_MAX_OBJECT
	                    ? opt->max_object
	                    : STORE_MAX_OBJECT;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->queue_cond, NULL);
	pthread_cond_init(&s->idle_cond, NULL);
	pthread_cond_init(&s->sync_cond, NULL);

	int r;
	if ((r = mkdir_p(dir, err)) < 0 || (r = lock_dir(dir, &s->lock_fd, err)) < 0 ||
	    (r = open_env(s, err)) < 0 || (r = open_dbs(s, err)) < 0)
		goto fail;
	s->wrev = atomic_load(&s->revision);
	s->wcompacted = atomic_load(&s->compacted);
	r = pthread_create(&s->syncer, NULL, store_syncer_main, s);
	if (r) {
		r = kerr_set(err, r, "store: start sync thread: %s", strerror(r));
		goto fail;
	}
	s->syncer_running = true;
	r = pthread_create(&s->writer, NULL, store_writer_main, s);
	if (r) {
		r = kerr_set(err, r, "store: start writer thread: %s", strerror(r));
		pthread_mutex_lock(&s->lock);
		s->writer_done = true;
		pthread_cond_signal(&s->sync_cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->syncer, NULL);
		goto fail;
	}
	s->writer_running = true;
	*out = s;
	return 0;
fail:
	store_free(s);
	return r;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->etcd) {
		store_etcd_close(s->etcd);
		if (s->lock_fd >= 0)
			close(s->lock_fd);
		free(s);
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_cond_broadcast(&s->queue_cond);
	pthread_mutex_unlock(&s->lock);
	if (s->writer_running)
		pthread_join(s->writer, NULL); /* it drains the queue first */
	if (s->syncer_running)
		pthread_join(s->syncer, NULL); /* and this one answers what it committed */
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	while (s->inflight > 0)
		pthread_cond_wait(&s->idle_cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	store_free(s);
}

/* ---- simple accessors -------------------------------------------------------------- */

uint64_t store_revision(struct store *s)
{
	if (s->etcd)
		return atomic_load(&s->etcd->revision);
	return atomic_load(&s->revision);
}
uint64_t store_compacted(struct store *s)
{
	if (s->etcd)
		return atomic_load(&s->etcd->compacted);
	return atomic_load(&s->compacted);
}

void store_set_commit_hook(struct store *s, store_commit_hook hook, void *ctx)
{
	if (s->etcd)
		return store_etcd_set_commit_hook(s->etcd, hook, ctx);
	pthread_mutex_lock(&s->lock);
	s->hook = hook;
	s->hook_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}

void store_set_unreachable(struct store *s, const char *why)
{
	if (s->etcd)
		etcd_gw_set_down(&s->etcd->gw, why);
}

void store_get_stats(struct store *s, struct store_stats *st)
{
	if (s->etcd)
		return store_etcd_get_stats(s->etcd, st);
	uint64_t used = 0;
	MDB_txn *txn;
	if (store_enter(s, false, NULL) == 0) {
		if (store_read_begin(s, &txn, NULL) == 0) {
			store_used_pages(s, txn, &used, NULL);
			mdb_txn_abort(txn);
		}
		store_leave(s);
	}
	st->revision = atomic_load(&s->revision);
	st->compacted = atomic_load(&s->compacted);
	st->commits = atomic_load(&s->commits);
	st->writes = atomic_load(&s->writes);
	pthread_mutex_lock(&s->lock);
	st->queued = s->queued;
	pthread_mutex_unlock(&s->lock);
	st->map_size = s->quota;
	st->map_used = used * s->psize;
}

/* ---- reads ---------------------------------------------------------------------------- */

int store_read_begin(struct store *s, MDB_txn **txn, struct kerr *err)
{
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
	if (rc)
		return store_mdb_error(s, rc, err, "store: begin read");
	return 0;
}

int store_get(struct store *s, const char *key, json_t **out, struct kerr *err)
{
	if (s->etcd)
		return store_etcd_get(s->etcd, key, out, err);
	int r = store_enter(s, false, err);
	if (r < 0)
		return r;
	MDB_txn *txn = NULL;
	json_t *obj = NULL;
	if ((r = store_check_key(s, key, err)) >= 0 && (r = store_read_begin(s, &txn, err)) >= 0) {
		r = store_txn_get(s, txn, key, &obj, err);
		mdb_txn_abort(txn);
	}
	store_leave(s);
	if (r >= 0)
		*out = obj;
	return r;
}

int store_get_text(struct store *s, const char *key, char **text, size_t *len, struct kerr *err)
{
	if (s->etcd)
		return store_etcd_get_text(s->etcd, key, text, len, err);
	int r = store_enter(s, false, err);
	if (r < 0)
		return r;
	MDB_txn *txn = NULL;
	if ((r = store_check_key(s, key, err)) >= 0 && (r = store_read_begin(s, &txn, err)) >= 0) {
		MDB_val k = {strlen(key), (void *)key}, v;
		int rc = mdb_get(txn, s->objects, &k, &v);
		if (rc == MDB_NOTFOUND)
			r = kerr_set(err, ENOENT, "%s not found", key);
		else if (rc)
			r = store_mdb_error(s, rc, err, "store: read %s", key);
		else {
			*text = xstrndup(v.mv_data, v.mv_size);
			*len = v.mv_size;
		}
		mdb_txn_abort(txn);
	}
	store_leave(s);
	return r;
}
