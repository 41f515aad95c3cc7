/* Unit tests for the store's pipelined durability (store_writer.c): an
 * acknowledged write's meta page has been flushed, whichever flush did it
 * (the writer's next data flush or the sync thread's); a failed flush fails
 * the whole batch.
 *
 * Fault injection: this executable defines pwrite, fdatasync and fsync, so
 * that LMDB's calls (from liblmdb.so) come here first and go on to libc's.
 * The meta pages are the first two pages of data.mdb; a pwrite there is a
 * meta page written, durable at once on an O_DSYNC descriptor, else once a
 * flush that began after it has returned. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/util.h"
#include "store/store.h"

/* ---- the stand-ins for pwrite and the flushes ------------------------------------------ */

static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t meta_writes;  /* meta page writes to data.mdb so far */
static uint64_t meta_durable; /* how many of them a flush (or O_DSYNC) covers */
static uint64_t flushes;      /* flush calls so far */
static uint64_t fail_from = UINT64_MAX, fail_to = UINT64_MAX; /* flush calls [from, to) fail */

static bool is_data_file(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n < 0)
		return false;
	path[n] = '\0';
	return n >= 9 && strcmp(path + n - 9, "/data.mdb") == 0;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	ssize_t r = real(fd, buf, len, off);
	if (r > 0 && off < 2 * sysconf(_SC_PAGESIZE) && is_data_file(fd)) {
		bool dsync = (fcntl(fd, F_GETFL) & O_DSYNC) != 0;
		pthread_mutex_lock(&io_lock);
		meta_writes++;
		if (dsync)
			meta_durable = meta_writes;
		pthread_mutex_unlock(&io_lock);
	}
	return r;
}

static int flush(int fd, const char *name)
{
	static int (*real_fdatasync)(int), (*real_fsync)(int);
	if (!real_fdatasync) {
		real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
		real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	}
	pthread_mutex_lock(&io_lock);
	uint64_t covers = meta_writes, call = flushes++;
	bool fail = call >= fail_from && call < fail_to;
	pthread_mutex_unlock(&io_lock);
	if (fail) {
		errno = EIO;
		return -1;
	}
	int r = name[0] == 'f' && name[1] == 'd' ? real_fdatasync(fd) : real_fsync(fd);
	if (r == 0) {
		pthread_mutex_lock(&io_lock);
		if (covers > meta_durable)
			meta_durable = covers;
		pthread_mutex_unlock(&io_lock);
	}
	return r;
}

int fdatasync(int fd)
{
	return flush(fd, "fdatasync");
}

int fsync(int fd)
{
	return flush(fd, "fsync");
}

/* The flush calls from the next `skip` on fail, `n` of them. */
static void fail_flushes(uint64_t skip, uint64_t n)
{
	pthread_mutex_lock(&io_lock);
	fail_from = flushes + skip;
	fail_to = fail_from + n;
	pthread_mutex_unlock(&io_lock);
}

static uint64_t now_meta_writes(void)
{
	pthread_mutex_lock(&io_lock);
	uint64_t v = meta_writes;
	pthread_mutex_unlock(&io_lock);
	return v;
}

static uint64_t now_flushes(void)
{
	pthread_mutex_lock(&io_lock);
	uint64_t v = flushes;
	pthread_mutex_unlock(&io_lock);
	return v;
}

static uint64_t now_meta_durable(void)
{
	pthread_mutex_lock(&io_lock);
	uint64_t v = meta_durable;
	pthread_mutex_unlock(&io_lock);
	return v;
}

/* ---- fixtures -------------------------------------------------------------------------- */

struct fx {
	char dir[512];
	struct store *s;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof *f);
	const char *base = getenv("KEEL_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(f->dir, sizeof f->dir, "%s/store-flush-XXXXXX", base);
	assert_non_null(mkdtemp(f->dir));
	struct kerr err = KERR_INIT;
	if (store_open(f->dir, NULL, &f->s, &err) < 0)
		fail_msg("store_open: %s", kerr_msg(&err));
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	fail_flushes(UINT64_MAX / 2, 0);
	store_close(f->s);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A write whose commit must have had its meta page flushed by the time it is
 * answered: the callback runs inside the transaction, before the commit
 * writes its meta page, so that page is the next one written. */
struct wr {
	uint64_t need; /* meta writes that must be durable when answered */
	uint64_t rev;
	int rc;
	bool durable_when_answered;
	bool rev_published;
	struct store *s;
};

static int put_fn(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)cur, (void)rev, (void)err;
	struct wr *w = ctx;
	w->need = now_meta_writes() + 1;
	*next = json_pack("{s:{s:s}}", "metadata", "name", "x");
	return STORE_WRITE;
}

/* ---- acknowledged => durable ---------------------------------------------------------- */

static void test_sync_write_durable_when_acknowledged(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 20; i++) {
		struct wr w = {0};
		char key[64];
		snprintf(key, sizeof key, "tasks/ns/s%d", i);
		uint64_t rev = 0;
		assert_int_equal(store_update(f->s, key, put_fn, &w, NULL, &rev, NULL),
		                 STORE_WRITE);
		if (now_meta_durable() < w.need)
			fail_msg(
			    "write %d acknowledged before its meta page was flushed (%llu < %llu)",
			    i, (unsigned long long)now_meta_durable(), (unsigned long long)w.need);
		assert_true(store_revision(f->s) >= rev);
	}
}

struct async_set {
	pthread_mutex_t m;
	pthread_cond_t c;
	int done;
};

struct async_call {
	struct async_set *set;
	struct wr w;
};

static void async_done(void *ctx, const struct store_result *res)
{
	struct async_call *a = ctx;
	a->w.rc = res->rc;
	a->w.rev = res->rev;
	a->w.durable_when_answered = now_meta_durable() >= a->w.need;
	a->w.rev_published = store_revision(a->w.s) >= res->rev;
	pthread_mutex_lock(&a->set->m);
	a->set->done++;
	pthread_cond_signal(&a->set->c);
	pthread_mutex_unlock(&a->set->m);
}

#define NASYNC 400

/* Many asynchronous writes, queued as fast as they go: the writer is busy
 * with one batch after another, so most batches are made durable by the
 * next batch's data flush rather than by a flush of the sync thread. Each
 * is answered only once its meta page is covered, after the revision is
 * published, in revision order. */
static void test_async_writes_durable_when_acknowledged(void **state)
{
	struct fx *f = *state;
	struct async_set set = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
	struct async_call *calls = xcalloc(NASYNC, sizeof *calls);
	uint64_t flushes0 = now_flushes();
	for (int i = 0; i < NASYNC; i++) {
		calls[i] = (struct async_call){.set = &set, .w = {.s = f->s}};
		char key[64];
		snprintf(key, sizeof key, "tasks/ns/a%d", i);
		struct kerr err = KERR_INIT;
		assert_int_equal(
		    store_update_async(f->s, key, put_fn, &calls[i].w, async_done, &calls[i], &err),
		    0);
		if (i % 7 == 0)
			usleep(200); /* batches of several sizes */
	}
	pthread_mutex_lock(&set.m);
	while (set.done < NASYNC)
		pthread_cond_wait(&set.c, &set.m);
	pthread_mutex_unlock(&set.m);
	for (int i = 0; i < NASYNC; i++) {
		assert_int_equal(calls[i].w.rc, STORE_WRITE);
		if (!calls[i].w.durable_when_answered)
			fail_msg(
			    "async write %d (rev %llu) answered before its meta page was flushed",
			    i, (unsigned long long)calls[i].w.rev);
		assert_true(calls[i].w.rev_published);
		if (i > 0)
			assert_true(calls[i].w.rev > calls[i - 1].w.rev); /* queued in order */
	}
	struct store_stats st;
	store_get_stats(f->s, &st);
	/* fewer flushes than two per commit: the pipeline shares them */
	print_message("%llu commits, %llu flushes\n", (unsigned long long)st.commits,
	              (unsigned long long)(now_flushes() - flushes0));
	free(calls);
}

/* ---- failures -------------------------------------------------------------------------- */

/* A data flush that fails fails the commit: every write of the batch gets
 * the error, the revision is unchanged, and the store goes on. */
static void test_failed_data_flush_fails_batch(void **state)
{
	struct fx *f = *state;
	struct wr w0 = {0};
	assert_int_equal(store_update(f->s, "tasks/ns/before", put_fn, &w0, NULL, NULL, NULL),
	                 STORE_WRITE);
	uint64_t rev0 = store_revision(f->s);
	struct async_set set = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
	struct async_call calls[8];
	fail_flushes(0, 1000); /* every flush fails: nothing can commit */
	for (int i = 0; i < 8; i++) {
		calls[i] = (struct async_call){.set = &set, .w = {.s = f->s}};
		char key[64];
		snprintf(key, sizeof key, "tasks/ns/f%d", i);
		assert_int_equal(
		    store_update_async(f->s, key, put_fn, &calls[i].w, async_done, &calls[i], NULL),
		    0);
	}
	pthread_mutex_lock(&set.m);
	while (set.done < 8)
		pthread_cond_wait(&set.c, &set.m);
	pthread_mutex_unlock(&set.m);
	fail_flushes(UINT64_MAX / 2, 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(calls[i].w.rc, -EIO);
	assert_int_equal(store_revision(f->s), rev0);
	json_t *o = NULL;
	assert_int_equal(store_get(f->s, "tasks/ns/f0", &o, NULL), -ENOENT);
	struct wr w1 = {0};
	uint64_t rev = 0;
	assert_int_equal(store_update(f->s, "tasks/ns/after", put_fn, &w1, NULL, &rev, NULL),
	                 STORE_WRITE);
	assert_int_equal(rev, rev0 + 1);
}

/* A lone write: the writer's data flush, then the sync thread's flush of
 * the meta page. When that second one fails nobody can say whether the
 * write is on disk: it gets -EIO, and every later write is refused until
 * the store is reopened, which keeps whatever the disk holds. */
static void test_failed_meta_flush_breaks_store(void **state)
{
	struct fx *f = *state;
	struct wr w0 = {0};
	assert_int_equal(store_update(f->s, "tasks/ns/before", put_fn, &w0, NULL, NULL, NULL),
	                 STORE_WRITE);
	uint64_t rev0 = store_revision(f->s);
	fail_flushes(1, 1);
	struct wr w = {0};
	struct kerr err = KERR_INIT;
	assert_int_equal(store_update(f->s, "tasks/ns/m", put_fn, &w, NULL, NULL, &err), -EIO);
	assert_non_null(strstr(kerr_msg(&err), "may or may not be on disk"));
	kerr_clear(&err);
	assert_int_equal(store_revision(f->s), rev0); /* never published */
	struct wr w2 = {0};
	assert_int_equal(store_update(f->s, "tasks/ns/later", put_fn, &w2, NULL, NULL, &err), -EIO);
	kerr_clear(&err);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(f->dir, NULL, &f->s, &err), 0);
	uint64_t rev1 = store_revision(f->s);
	assert_true(rev1 == rev0 || rev1 == rev0 + 1); /* the page cache may have kept it */
	struct wr w3 = {0};
	uint64_t rev = 0;
	assert_int_equal(store_update(f->s, "tasks/ns/again", put_fn, &w3, NULL, &rev, NULL),
	                 STORE_WRITE);
	assert_int_equal(rev, rev1 + 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_sync_write_durable_when_acknowledged),
	    T(test_async_writes_durable_when_acknowledged),
	    T(test_failed_data_flush_fails_batch),
	    T(test_failed_meta_flush_breaks_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
