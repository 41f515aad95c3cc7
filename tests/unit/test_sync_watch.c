/* Unit tests for src/sync/watch: the recursive inotify watch of a manifest
 * directory, on real directories under $KEEL_TEST_TMP (or /tmp). Each test
 * gets a fresh root (the watched tree) and, beside it, an "out" directory to
 * move things in from and out to.
 *
 * inotify_add_watch() is wrapped (-Wl,--wrap, see tests/CMakeLists.txt) so
 * that the watch limit (ENOSPC) can be reached without lowering the host's. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/util.h"
#include "sync/watch.h"

/* ---- the inotify_add_watch() stand-in ---------------------------------------------------- */

int __real_inotify_add_watch(int fd, const char *path, uint32_t mask);
int __wrap_inotify_add_watch(int fd, const char *path, uint32_t mask);

/* When set, adding a watch of a path containing it fails with fail_errno
 * (ENOSPC unless set; "" = every path). */
static const char *volatile enospc_for;
static volatile int fail_errno;

int __wrap_inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	const char *f = enospc_for;
	if (f && strstr(path, f)) {
		errno = fail_errno ? fail_errno : ENOSPC;
		return -1;
	}
	return __real_inotify_add_watch(fd, path, mask);
}

/* ---- fixtures ---------------------------------------------------------------------------- */

struct fx {
	char base[512];
	char root[600];
	char out[600];
	struct sync_watch *w;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	const char *base = getenv("KEEL_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0700);
	snprintf(f->base, sizeof(f->base), "%s/watch-XXXXXX", base);
	assert_non_null(mkdtemp(f->base));
	snprintf(f->root, sizeof(f->root), "%s/root", f->base);
	snprintf(f->out, sizeof(f->out), "%s/out", f->base);
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(f->out, 0755), 0);
	enospc_for = NULL;
	fail_errno = 0;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	enospc_for = NULL;
	sync_watch_close(f->w);
	rm_rf(f->base);
	free(f);
	return 0;
}

/* root/REL, formatted. */
static char *at(const struct fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *at(const struct fx *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *rel = xvasprintf(fmt, ap);
	va_end(ap);
	return xasprintf("%s/%s", f->root, rel);
}

static void write_path(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void put(const struct fx *f, const char *rel, const char *text)
{
	_cleanup_free_ char *p = at(f, "%s", rel);
	write_path(p, text);
}

static void mkdir_p(const char *path)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0755);
			*s = '/';
		}
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

static void mkd(const struct fx *f, const char *rel)
{
	_cleanup_free_ char *p = at(f, "%s", rel);
	mkdir_p(p);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static struct sync_watch *open_root(struct fx *f, const char *path)
{
	struct kerr err = KERR_INIT;
	f->w = sync_watch_open(path ? path : f->root, &err);
	if (!f->w)
		fail_msg("sync_watch_open: %s", kerr_msg(&err));
	return f->w;
}

/* sync_watch_wait() that fails the test on an error. */
static int wait_for(struct fx *f, int timeout_ms, int debounce_ms)
{
	struct kerr err = KERR_INIT;
	int r = sync_watch_wait(f->w, timeout_ms, debounce_ms, NULL, &err);
	if (r < 0)
		fail_msg("sync_watch_wait: %s", kerr_msg(&err));
	return r;
}

static size_t dirs(const struct fx *f)
{
	struct sync_watch_stats st;
	sync_watch_stats(f->w, &st);
	return st.dirs;
}

/* A change is reported, and then nothing more for a while: one change. */
static void expect_one_change(struct fx *f, int timeout_ms)
{
	assert_int_equal(wait_for(f, timeout_ms, 200), 1);
	assert_int_equal(wait_for(f, 500, 200), 0);
}

/* Runs fn(f) on a thread, so that events arrive while a wait is running. */
struct job {
	pthread_t t;
	struct fx *f;
	void (*fn)(struct fx *f);
};

static void *job_main(void *p)
{
	struct job *j = p;
	j->fn(j->f);
	return NULL;
}

static void job_start(struct job *j, struct fx *f, void (*fn)(struct fx *f))
{
	j->f = f;
	j->fn = fn;
	assert_int_equal(pthread_create(&j->t, NULL, job_main, j), 0);
}

static void job_join(struct job *j)
{
	pthread_join(j->t, NULL);
}

/* ---- watch_relevant_name ------------------------------------------------------------------ */

static void test_relevant_name(void **state)
{
	(void)state;
	const char *yes[] = {"a.yaml", "deploy.yml", "x.y.yaml",
	                     "A.yaml", "web-1.yaml", "4913.yaml"};
	const char *no[] = {".yaml",
	                    ".yml",
	                    "yaml",
	                    "a.yaml~",
	                    "#a.yaml#",
	                    ".a.yaml.swp",
	                    ".a.yaml.swx",
	                    "4913",
	                    ".hidden.yaml",
	                    ".#a.yaml",
	                    "a.yaml.bak",
	                    "a.yaml.orig",
	                    "a.json",
	                    "a.txt",
	                    "a.YAML",
	                    "a.yaml.tmp",
	                    "~a.yaml",
	                    "#a.yaml",
	                    "a.yaml___jb_tmp___",
	                    "",
	                    "dir/a.yaml",
	                    "a.ym",
	                    "a.yamll"};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		if (!watch_relevant_name(yes[i]))
			fail_msg("%s should be relevant", yes[i]);
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (watch_relevant_name(no[i]))
			fail_msg("%s should not be relevant", no[i]);
	assert_false(watch_relevant_name(NULL));
}

/* ---- files ------------------------------------------------------------------------------- */

static void test_create_file(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	assert_int_equal(dirs(f), 1);
	put(f, "app.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
	put(f, "app.yaml", "kind: Task # edited in place\n");
	expect_one_change(f, 2000);
	_cleanup_free_ char *p = at(f, "app.yaml");
	assert_int_equal(unlink(p), 0);
	expect_one_change(f, 2000);
}

static void test_irrelevant_files(void **state)
{
	struct fx *f = *state;
	mkd(f, ".git/objects/ab");
	open_root(f, NULL);
	assert_int_equal(dirs(f), 1); /* .git is not watched */
	put(f, "notes.txt", "x");
	put(f, ".hidden.yaml", "x");
	put(f, ".app.yaml.swp", "x");
	put(f, "app.yaml~", "x");
	put(f, "#app.yaml#", "x");
	put(f, "4913", "x");
	put(f, ".git/objects/ab/app.yaml", "x");
	put(f, ".git/index", "x");
	mkd(f, ".git/refs/heads");
	mkd(f, "empty");
	mkd(f, "docs");
	put(f, "docs/README.md", "x");
	int64_t t0 = time_mono_ms();
	assert_int_equal(wait_for(f, 400, 200), 0);
	assert_true(time_mono_ms() - t0 >= 380);
	assert_int_equal(dirs(f), 3); /* root, empty, docs */
}

/* vim's save: probe file 4913, the file renamed to its backup, a new file
 * written, the backup removed; swap file writes all along. */
static void vim_save(struct fx *f)
{
	_cleanup_free_ char *file = at(f, "app.yaml");
	_cleanup_free_ char *backup = at(f, "app.yaml~");
	_cleanup_free_ char *probe = at(f, "4913");
	put(f, ".app.yaml.swp", "swap");
	sleep_ms(20);
	put(f, "4913", "");
	unlink(probe);
	sleep_ms(20);
	rename(file, backup);
	sleep_ms(20);
	put(f, "app.yaml", "kind: Task # saved by vim\n");
	sleep_ms(20);
	unlink(backup);
	put(f, ".app.yaml.swp", "swap 2");
}

/* Most editors and tools: write a temporary file, rename it over. */
static void rename_save(struct fx *f)
{
	_cleanup_free_ char *tmp = at(f, ".app.yaml.tmp123");
	_cleanup_free_ char *file = at(f, "app.yaml");
	write_path(tmp, "kind: Task # saved\n");
	sleep_ms(30);
	rename(tmp, file);
}

static void test_rename_save(void **state)
{
	struct fx *f = *state;
	put(f, "app.yaml", "kind: Task\n");
	open_root(f, NULL);
	struct job j;
	job_start(&j, f, vim_save);
	int r = wait_for(f, 3000, 200);
	job_join(&j);
	assert_int_equal(r, 1);
	assert_int_equal(wait_for(f, 500, 200), 0);

	job_start(&j, f, rename_save);
	r = wait_for(f, 3000, 200);
	job_join(&j);
	assert_int_equal(r, 1);
	assert_int_equal(wait_for(f, 500, 200), 0);
}

/* Events closer together than the debounce are one change, reported once
 * they stop. The writer notes when it wrote, so that a machine too loaded
 * to keep 100 ms between writes (a gap of a whole debounce is rightly two
 * changes) is told apart from a watcher that reports too early. */
static int64_t write_ms[5];

static void five_writes(struct fx *f)
{
	for (int i = 0; i < 5; i++) {
		put(f, "app.yaml", "kind: Task\n");
		write_ms[i] = time_mono_ms();
		sleep_ms(100);
	}
}

static void test_debounce(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	for (int attempt = 0; attempt < 5; attempt++) {
		struct job j;
		job_start(&j, f, five_writes);
		int r = wait_for(f, 5000, 200);
		int64_t seen = time_mono_ms();
		job_join(&j);
		int64_t gap = 0;
		for (int i = 1; i < 5; i++)
			if (write_ms[i] - write_ms[i - 1] > gap)
				gap = write_ms[i] - write_ms[i - 1];
		if (gap >= 170) { /* not a burst: settle and write it again */
			while (wait_for(f, 500, 200) > 0)
				;
			continue;
		}
		assert_int_equal(r, 1);
		int64_t after_last = seen - write_ms[4];
		if (after_last < 150 || after_last > 1600)
			fail_msg("a burst of writes 100 ms apart with a 200 ms debounce was reported "
			         "%lld ms after the last write",
			         (long long)after_last);
		assert_int_equal(wait_for(f, 500, 200), 0);
		return;
	}
	skip(); /* five tries, never 100 ms between writes: the machine is too loaded */
}

static void many_files(struct fx *f)
{
	for (int i = 0; i < 500; i++) {
		char name[64];
		snprintf(name, sizeof(name), "obj-%03d.yaml", i);
		put(f, name, "kind: Task\n");
		if (i % 25 == 0)
			sleep_ms(2);
	}
}

static void test_burst_of_500(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	struct job j;
	job_start(&j, f, many_files);
	int r = wait_for(f, 10000, 200);
	job_join(&j);
	assert_int_equal(r, 1);
	assert_int_equal(wait_for(f, 500, 200), 0);
}

static volatile int keep_writing;

static void write_until_told(struct fx *f)
{
	while (keep_writing) {
		put(f, "busy.yaml", "kind: Task\n");
		sleep_ms(50);
	}
}

/* A file rewritten without pause is still reported, 5 s into the burst. */
static void test_endless_burst(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	keep_writing = 1;
	struct job j;
	job_start(&j, f, write_until_told);
	int64_t t0 = time_mono_ms();
	int r = wait_for(f, 20000, 200);
	int64_t took = time_mono_ms() - t0;
	keep_writing = 0;
	job_join(&j);
	assert_int_equal(r, 1);
	if (took < 4900 || took > 6500)
		fail_msg("an endless burst was reported after %lld ms, not about 5 s",
		         (long long)took);
}

/* ---- directories ------------------------------------------------------------------------- */

static void test_mkdir_p_then_file(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	mkd(f, "a/b/c"); /* b and c exist before a's watch does: the scan finds them */
	put(f, "a/b/c/app.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 4);
	put(f, "a/b/c/later.yaml", "kind: Task\n"); /* c's watch was added */
	expect_one_change(f, 2000);
	put(f, "a/b/mid.yml", "kind: Task\n");
	expect_one_change(f, 2000);
}

static void dir_and_file_at_once(struct fx *f)
{
	mkd(f, "new/deeper");
	put(f, "new/deeper/app.yaml", "kind: Task\n");
}

static void test_new_dir_race(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	mkd(f, "empty/sub");
	put(f, "empty/sub/README.md", "x");
	assert_int_equal(wait_for(f, 400, 200), 0); /* no manifest in it: not a change */
	assert_int_equal(dirs(f), 3);

	struct job j;
	job_start(&j, f, dir_and_file_at_once);
	int r = wait_for(f, 2000, 200);
	job_join(&j);
	assert_int_equal(r, 1);
	assert_int_equal(wait_for(f, 500, 200), 0);
	assert_int_equal(dirs(f), 5);
}

static void test_dir_moved_in(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	char src[700], sub[720], file[740];
	snprintf(src, sizeof(src), "%s/team", f->out);
	snprintf(sub, sizeof(sub), "%s/sub", src);
	mkdir_p(sub);
	snprintf(file, sizeof(file), "%s/app.yaml", sub);
	write_path(file, "kind: Task\n");
	_cleanup_free_ char *dst = at(f, "team");
	assert_int_equal(rename(src, dst), 0);
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 3);
	put(f, "team/sub/more.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
}

static void test_dir_moved_within(void **state)
{
	struct fx *f = *state;
	mkd(f, "a/sub");
	put(f, "a/sub/app.yaml", "kind: Task\n");
	open_root(f, NULL);
	assert_int_equal(dirs(f), 3);
	_cleanup_free_ char *a = at(f, "a");
	_cleanup_free_ char *b = at(f, "b");
	assert_int_equal(rename(a, b), 0);
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 3);
	put(f, "b/sub/more.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
	mkd(f, "a"); /* the old name, a new directory */
	put(f, "a/x.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 4);
}

static void test_dir_removed(void **state)
{
	struct fx *f = *state;
	mkd(f, "gone/sub");
	put(f, "gone/app.yaml", "kind: Task\n");
	put(f, "gone/sub/more.yaml", "kind: Task\n");
	mkd(f, "empty");
	open_root(f, NULL);
	assert_int_equal(dirs(f), 4);
	_cleanup_free_ char *gone = at(f, "gone");
	rm_rf(gone);
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 2);
	_cleanup_free_ char *empty = at(f, "empty");
	assert_int_equal(rmdir(empty), 0);
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 1);

	/* The same name again, at once: a new directory, watched. */
	mkd(f, "gone");
	put(f, "gone/again.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 2);
	put(f, "gone/later.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
}

static void test_dir_moved_out(void **state)
{
	struct fx *f = *state;
	mkd(f, "away/sub");
	put(f, "away/sub/app.yaml", "kind: Task\n");
	open_root(f, NULL);
	assert_int_equal(dirs(f), 3);
	_cleanup_free_ char *src = at(f, "away");
	char dst[700], file[740];
	snprintf(dst, sizeof(dst), "%s/away", f->out);
	assert_int_equal(rename(src, dst), 0);
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 1);
	/* Its watches were dropped: what happens there now is not ours. */
	snprintf(file, sizeof(file), "%s/sub/new.yaml", dst);
	write_path(file, "kind: Task\n");
	assert_int_equal(wait_for(f, 400, 200), 0);
}

static void test_many_dirs(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 100; i++)
		for (int j = 0; j < 20; j++) {
			_cleanup_free_ char *p = at(f, "d%03d/e%02d", i, j);
			mkdir_p(p);
		}
	open_root(f, NULL);
	assert_int_equal(dirs(f), 1 + 100 + 100 * 20);
	put(f, "d099/e19/app.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
	_cleanup_free_ char *d = at(f, "d050");
	rm_rf(d);
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 1 + 99 + 99 * 20);
}

/* ---- overflow, limits, the root --------------------------------------------------------- */

static void test_injected_overflow(void **state)
{
	struct fx *f = *state;
	mkd(f, "a/b");
	open_root(f, NULL);
	sync_watch_inject_overflow(f->w);
	/* Made while "overflowed": its events are dropped, the rescan finds it. */
	mkd(f, "new/deep");
	put(f, "notes.txt", "x");
	assert_int_equal(wait_for(f, 2000, 200), 1);
	struct sync_watch_stats st;
	sync_watch_stats(f->w, &st);
	assert_int_equal(st.overflows, 1);
	assert_int_equal(st.rescans, 1);
	assert_int_equal(st.dirs, 5);
	assert_int_equal(wait_for(f, 400, 200), 0);
	put(f, "new/deep/app.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
	put(f, "a/b/app.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
}

static void test_real_overflow(void **state)
{
	struct fx *f = *state;
	long max = 16384;
	FILE *p = fopen("/proc/sys/fs/inotify/max_queued_events", "re");
	if (p) {
		if (fscanf(p, "%ld", &max) != 1)
			max = 16384;
		fclose(p);
	}
	if (max > 200000)
		skip();
	mkd(f, "sub");
	open_root(f, NULL);
	/* Two events per file (IN_CREATE, IN_CLOSE_WRITE), none read meanwhile. */
	for (long i = 0; i < max / 2 + 100; i++) {
		char name[64];
		snprintf(name, sizeof(name), "sub/f%05ld.txt", i);
		put(f, name, "");
	}
	mkd(f, "late");
	assert_int_equal(wait_for(f, 5000, 200), 1);
	struct sync_watch_stats st;
	sync_watch_stats(f->w, &st);
	assert_true(st.overflows >= 1);
	assert_int_equal(st.dirs, 3);
	assert_int_equal(wait_for(f, 500, 200), 0);
	put(f, "late/app.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
}

static void test_watch_limit_open(void **state)
{
	struct fx *f = *state;
	enospc_for = "";
	struct kerr err = KERR_INIT;
	assert_null(sync_watch_open(f->root, &err));
	assert_int_equal(err.code, ENOSPC);
	assert_non_null(strstr(kerr_msg(&err), "/proc/sys/fs/inotify/max_user_watches"));
	assert_non_null(strstr(kerr_msg(&err), f->root));
	kerr_clear(&err);
}

static void test_watch_limit_wait(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	enospc_for = "/limited";
	mkd(f, "limited");
	put(f, "limited/app.yaml", "kind: Task\n");
	struct kerr err = KERR_INIT;
	int r = sync_watch_wait(f->w, 2000, 200, NULL, &err);
	assert_int_equal(r, -ENOSPC);
	assert_non_null(strstr(kerr_msg(&err), "/proc/sys/fs/inotify/max_user_watches"));
	assert_non_null(strstr(kerr_msg(&err), "limited"));
	kerr_clear(&err);
	assert_int_equal(dirs(f), 1);
	/* The change that came with the error is reported next; the error not again. */
	assert_int_equal(wait_for(f, 300, 50), 1);
	assert_int_equal(wait_for(f, 300, 50), 0);
	enospc_for = NULL; /* the limit raised: a retry watches it */
	assert_int_equal(wait_for(f, 5000, 200), 1);
	struct sync_watch_stats st;
	sync_watch_stats(f->w, &st);
	assert_int_equal(st.dirs, 2);
	assert_true(st.rescans >= 1);
	put(f, "limited/more.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
}

static void test_root_removed_and_back(void **state)
{
	struct fx *f = *state;
	mkd(f, "sub");
	open_root(f, NULL);
	rm_rf(f->root);
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 0);
	mkd(f, "again");
	put(f, "again/app.yaml", "kind: Task\n");
	assert_int_equal(wait_for(f, 3000, 200), 1);
	assert_int_equal(dirs(f), 2);
	put(f, "again/more.yaml", "kind: Task\n");
	assert_int_equal(wait_for(f, 2000, 200), 1);
}

/* A root back but not watchable (EACCES here) is retried with backoff, and
 * is not reported as a change at every tick meanwhile. */
static void test_root_back_unwatchable(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	rm_rf(f->root);
	expect_one_change(f, 2000);
	fail_errno = EACCES;
	enospc_for = f->root;
	mkd(f, "sub");
	put(f, "sub/app.yaml", "kind: Task\n");
	assert_int_equal(wait_for(f, 600, 100), 0);
	assert_int_equal(dirs(f), 0);
	enospc_for = NULL;
	assert_int_equal(wait_for(f, 5000, 100), 1);
	assert_int_equal(dirs(f), 2);
	put(f, "sub/more.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
}

static void test_root_is_file(void **state)
{
	struct fx *f = *state;
	mkd(f, "sub");
	put(f, "app.yaml", "kind: Task\n");
	put(f, "other.yaml", "kind: Task\n");
	_cleanup_free_ char *file = at(f, "app.yaml");
	open_root(f, file);
	assert_int_equal(dirs(f), 1);
	put(f, "other.yaml", "kind: Task # edited\n");
	put(f, "sub/x.yaml", "kind: Task\n");
	mkd(f, "newdir");
	put(f, "newdir/y.yaml", "kind: Task\n");
	assert_int_equal(wait_for(f, 400, 200), 0);
	assert_int_equal(dirs(f), 1);
	put(f, "app.yaml", "kind: Task # edited\n");
	expect_one_change(f, 2000);
	struct job j;
	job_start(&j, f, rename_save);
	int r = wait_for(f, 3000, 200);
	job_join(&j);
	assert_int_equal(r, 1);
	assert_int_equal(wait_for(f, 500, 200), 0);
}

static void test_open_errors(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *missing = at(f, "no/such/dir");
	struct kerr err = KERR_INIT;
	assert_null(sync_watch_open(missing, &err));
	assert_int_equal(err.code, ENOENT);
	assert_non_null(strstr(kerr_msg(&err), missing));
	kerr_clear(&err);
	assert_null(sync_watch_open("/dev/null", &err));
	assert_int_equal(err.code, ENOTDIR);
	kerr_clear(&err);
	sync_watch_close(NULL);
	/* A trailing slash is the same root. */
	_cleanup_free_ char *slash = xasprintf("%s//", f->root);
	open_root(f, slash);
	mkd(f, "sub");
	put(f, "sub/app.yaml", "kind: Task\n");
	expect_one_change(f, 2000);
	assert_int_equal(dirs(f), 2);
}

/* ---- timeout and stop ------------------------------------------------------------------- */

static void test_timeout(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	int64_t t0 = time_mono_ms();
	assert_int_equal(wait_for(f, 300, 200), 0);
	int64_t took = time_mono_ms() - t0;
	if (took < 290 || took > 600)
		fail_msg("a 300 ms timeout took %lld ms", (long long)took);
	t0 = time_mono_ms();
	assert_int_equal(wait_for(f, 0, 200), 0);
	assert_true(time_mono_ms() - t0 < 50);
	/* A change near the deadline is reported at the deadline, not after it. */
	put(f, "app.yaml", "kind: Task\n");
	t0 = time_mono_ms();
	assert_int_equal(wait_for(f, 50, 1000), 1);
	took = time_mono_ms() - t0;
	if (took > 300)
		fail_msg("a 50 ms timeout with a change took %lld ms", (long long)took);
}

static volatile int stop_flag;

static void stop_later(struct fx *f)
{
	(void)f;
	sleep_ms(150);
	stop_flag = 1;
}

static void test_stop(void **state)
{
	struct fx *f = *state;
	open_root(f, NULL);
	struct kerr err = KERR_INIT;
	stop_flag = 1;
	int64_t t0 = time_mono_ms();
	assert_int_equal(sync_watch_wait(f->w, -1, 200, &stop_flag, &err), 0);
	assert_true(time_mono_ms() - t0 < 50);

	stop_flag = 0;
	struct job j;
	job_start(&j, f, stop_later);
	t0 = time_mono_ms();
	int r = sync_watch_wait(f->w, -1, 200, &stop_flag, &err);
	int64_t took = time_mono_ms() - t0;
	job_join(&j);
	assert_int_equal(r, 0);
	if (took < 140 || took > 400)
		fail_msg("stop set after 150 ms returned after %lld ms", (long long)took);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_relevant_name),
	    cmocka_unit_test_setup_teardown(test_create_file, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_irrelevant_files, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rename_save, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_debounce, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_burst_of_500, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_endless_burst, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mkdir_p_then_file, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_new_dir_race, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dir_moved_in, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dir_moved_within, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dir_removed, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dir_moved_out, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_many_dirs, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_injected_overflow, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_real_overflow, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_watch_limit_open, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_watch_limit_wait, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_root_removed_and_back, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_root_back_unwatchable, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_root_is_file, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_stop, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
