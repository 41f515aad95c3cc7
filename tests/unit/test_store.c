/* Unit tests for src/store: revisions, CAS, list, change log, compaction,
 * reopen, the directory lock, group commit, a full map and crash durability.
 * Each test gets a fresh data directory under $KEEL_TEST_TMP (or /tmp).
 *
 * With KEEL_TEST_STORE=etcd the same tests run against the etcd backend: a
 * real etcd is started for the run (etcd_launch.h) and each test gets a
 * fresh key prefix. Revisions are then etcd's: a test's revisions count
 * from the one its store opened at (B(n), RV(n); LMDB opens at 0); a
 * reopen keeps the revision on both (after a delete too: the etcd txn sets
 * the worker's write token in the same revision). Tests of LMDB-only
 * things (the lock file, the quota, batching behind one writer, the on-disk
 * format) skip there, saying why; test_store_etcd.c has the etcd-only ones. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <lmdb.h>

#include "common/kerr.h"
#include "common/util.h"
#include "store/store.h"
#include "etcd_launch.h"

/* ---- the backend under test ---------------------------------------------------- */

static bool on_etcd;
static struct etcd_proc etcd;
static uint64_t rev_base; /* the revision the test's store first opened at */
static bool base_set;
#define B(n)        (rev_base + (uint64_t)(n))

/* The decimal string of B(n), in one of a few rotating buffers. */
static const char *RV(uint64_t n)
{
	static char bufs[8][24];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof bufs[0], "%llu", (unsigned long long)B(n));
	return b;
}

#define SKIP_ON_ETCD(why)                                                                          \
	do {                                                                                       \
		if (on_etcd) {                                                                     \
			print_message("skipped on etcd: %s\n", why);                               \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* ---- fixtures ---------------------------------------------------------------------- */

struct fx {
	char dir[512];
	struct store *s;
	char prefix[64]; /* etcd: this test's key prefix */
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
	snprintf(f->dir, sizeof f->dir, "%s/store-XXXXXX", base);
	assert_non_null(mkdtemp(f->dir));
	static int seq;
	snprintf(f->prefix, sizeof f->prefix, "/keel-test-%ld-%d/", (long)getpid(), ++seq);
	rev_base = 0;
	base_set = false;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct store_options options(struct fx *f, size_t map_size, uint64_t history,
                                    unsigned max_batch)
{
	struct store_options o = {.map_size = map_size, .history = history, .max_batch = max_batch};
	if (on_etcd) {
		o.etcd_endpoints = etcd.url;
		o.etcd_prefix = f->prefix;
	}
	return o;
}

static struct store *open_with(struct fx *f, size_t map_size, uint64_t history, unsigned max_batch)
{
	struct store_options o = options(f, map_size, history, max_batch);
	struct kerr err = KERR_INIT;
	int r = store_open(f->dir, &o, &f->s, &err);
	if (r < 0)
		fail_msg("store_open: %s", kerr_msg(&err));
	if (!base_set) {
		rev_base = store_revision(f->s);
		base_set = true;
	}
	return f->s;
}

static struct store *open_default(struct fx *f)
{
	return open_with(f, 64 << 20, 0, 0);
}

/* ---- mutate callbacks ------------------------------------------------------------------ */

/* ctx: a JSON object to store as is. */
static int fn_put(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)cur, (void)rev, (void)err;
	*next = json_deep_copy(ctx);
	return STORE_WRITE;
}

static int fn_create(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	if (cur)
		return kerr_set(err, EEXIST, "already exists");
	return fn_put(ctx, cur, rev, next, err);
}

static int fn_delete(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)ctx, (void)cur, (void)rev, (void)next, (void)err;
	return STORE_DELETE;
}

static int fn_noop(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)ctx, (void)cur, (void)rev, (void)next, (void)err;
	return STORE_NOOP;
}

struct cas {
	const char *expect_rv;
	json_t *obj;
};

/* The server's PUT precondition: compare resourceVersion, then replace. */
static int fn_cas(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	struct cas *c = ctx;
	const char *rv =
	    json_string_value(json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
	if (!streq(rv, c->expect_rv))
		return kerr_set(err, ESTALE, "the object has been modified");
	return fn_put(c->obj, cur, rev, next, err);
}

/* Adds 1 to spec.n (creating it at 1). */
static int fn_incr(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)ctx, (void)rev, (void)err;
	json_t *o = cur ? json_deep_copy(cur) : json_pack("{s:{s:i}}", "spec", "n", 0);
	json_t *spec = json_object_get(o, "spec");
	json_object_set_new(spec, "n",
	                    json_integer(json_integer_value(json_object_get(spec, "n")) + 1));
	*next = o;
	return STORE_WRITE;
}

static json_t *obj(const char *name, int n)
{
	return json_pack("{s:s, s:{s:s}, s:{s:i}}", "kind", "Task", "metadata", "name", name,
	                 "spec", "n", n);
}

static const char *rv_of(json_t *o)
{
	return json_string_value(
	    json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
}

static int put(struct store *s, const char *key, json_t *o, json_t **result, uint64_t *rev)
{
	struct kerr err = KERR_INIT;
	int r = store_update(s, key, fn_put, o, result, rev, &err);
	kerr_clear(&err);
	return r;
}

/* ---- a commit hook that records what it sees ------------------------------------------- */

struct rec {
	pthread_mutex_t lock;
	uint64_t *revs;
	int *types;
	size_t n, cap;
	bool out_of_order;
};

static void rec_hook(void *ctx, const struct store_event *ev)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->lock);
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->revs = xrealloc(r->revs, r->cap * sizeof *r->revs);
		r->types = xrealloc(r->types, r->cap * sizeof *r->types);
	}
	if (r->n && ev->rev != r->revs[r->n - 1] + 1)
		r->out_of_order = true;
	if (!streq(rv_of(ev->object), NULL) && strtoull(rv_of(ev->object), NULL, 10) != ev->rev)
		r->out_of_order = true;
	r->revs[r->n] = ev->rev;
	r->types[r->n++] = ev->type;
	pthread_mutex_unlock(&r->lock);
}

static void rec_free(struct rec *r)
{
	free(r->revs);
	free(r->types);
	pthread_mutex_destroy(&r->lock);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_crud_revisions(void **state)
{
	struct fx *f = *state;
	struct store *s = open_default(f);
	struct rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
	store_set_commit_hook(s, rec_hook, &rec);
	struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *a = obj("a", 1), *a2 = obj("a", 2);
	json_t *res = NULL;
	uint64_t rev = 0;

	assert_int_equal(store_update(s, "tasks/default/a", fn_create, a, &res, &rev, &err),
	                 STORE_WRITE);
	assert_int_equal(rev, B(1));
	assert_string_equal(rv_of(res), RV(1));
	json_decref(res);
	assert_int_equal(store_update(s, "tasks/default/a", fn_create, a, NULL, NULL, &err),
	                 -EEXIST);
	assert_string_equal(err.msg, "already exists");
	kerr_clear(&err);

	assert_int_equal(store_get(s, "tasks/default/a", &res, &err), 0);
	assert_string_equal(rv_of(res), RV(1));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "spec"), "n")), 1);
	json_decref(res);

	assert_int_equal(put(s, "tasks/default/a", a2, &res, &rev), STORE_WRITE);
	assert_int_equal(rev, B(2));
	assert_string_equal(rv_of(res), RV(2));
	json_decref(res);

	assert_int_equal(store_update(s, "tasks/default/a", fn_delete, NULL, &res, &rev, &err),
	                 STORE_DELETE);
	assert_int_equal(rev, B(3));
	assert_string_equal(rv_of(res), RV(3)); /* the deleted object, as of its deletion */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "spec"), "n")), 2);
	json_decref(res);
	assert_int_equal(store_get(s, "tasks/default/a", &res, &err), -ENOENT);
	assert_string_equal(err.msg, "tasks/default/a not found");
	kerr_clear(&err);
	assert_int_equal(store_update(s, "tasks/default/a", fn_delete, NULL, NULL, NULL, &err),
	                 -ENOENT);
	kerr_clear(&err);

	assert_int_equal(store_revision(s), B(3));
	assert_int_equal(rec.n, 3);
	assert_false(rec.out_of_order);
	assert_int_equal(rec.types[0], STORE_ADDED);
	assert_int_equal(rec.types[1], STORE_MODIFIED);
	assert_int_equal(rec.types[2], STORE_DELETED);
	store_set_commit_hook(s, NULL, NULL);
	rec_free(&rec);
}

static void test_noop_writes_nothing(void **state)
{
	struct fx *f = *state;
	struct store *s = open_default(f);
	struct rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
	_cleanup_json_ json_t *a = obj("a", 1);
	assert_int_equal(put(s, "tasks/default/a", a, NULL, NULL), STORE_WRITE);
	store_set_commit_hook(s, rec_hook, &rec);
	struct store_stats before, after;
	store_get_stats(s, &before);

	json_t *res = NULL;
	uint64_t rev = 0;
	struct kerr err = KERR_INIT;
	assert_int_equal(store_update(s, "tasks/default/a", fn_noop, NULL, &res, &rev, &err),
	                 STORE_NOOP);
	assert_int_equal(rev, B(1));
	assert_string_equal(rv_of(res), RV(1)); /* the current object */
	json_decref(res);
	assert_int_equal(store_update(s, "tasks/default/zz", fn_noop, NULL, &res, &rev, &err),
	                 STORE_NOOP);
	assert_null(res);

	store_get_stats(s, &after);
	assert_int_equal(store_revision(s), B(1));
	assert_int_equal(after.commits, before.commits);
	assert_int_equal(after.writes, before.writes);
	assert_int_equal(rec.n, 0);
	store_set_commit_hook(s, NULL, NULL);
	rec_free(&rec);
}

static void test_cas_conflict(void **state)
{
	struct fx *f = *state;
	struct store *s = open_default(f);
	_cleanup_json_ json_t *a = obj("a", 1), *b = obj("a", 2), *c = obj("a", 3);
	assert_int_equal(put(s, "tasks/default/a", a, NULL, NULL), STORE_WRITE);
	assert_int_equal(put(s, "tasks/default/a", b, NULL, NULL), STORE_WRITE); /* rv 2 */

	struct kerr err = KERR_INIT;
	struct cas stale = {RV(1), c};
	assert_int_equal(store_update(s, "tasks/default/a", fn_cas, &stale, NULL, NULL, &err),
	                 -ESTALE);
	assert_int_equal(err.code, ESTALE);
	assert_string_equal(err.msg, "the object has been modified");
	kerr_clear(&err);
	assert_int_equal(store_revision(s), B(2));
	json_t *got = NULL;
	assert_int_equal(store_get(s, "tasks/default/a", &got, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(got, "spec"), "n")), 2);
	json_decref(got);

	struct cas fresh = {RV(2), c};
	uint64_t rev = 0;
	assert_int_equal(store_update(s, "tasks/default/a", fn_cas, &fresh, NULL, &rev, &err),
	                 STORE_WRITE);
	assert_int_equal(rev, B(3));
}

static bool filter_even(void *ctx, json_t *o)
{
	(void)ctx;
	return json_integer_value(json_object_get(json_object_get(o, "spec"), "n")) % 2 == 0;
}

static const char *name_at(json_t *items, size_t i)
{
	return json_string_value(
	    json_object_get(json_object_get(json_array_get(items, i), "metadata"), "name"));
}

static void test_list(void **state)
{
	struct fx *f = *state;
	struct store *s = open_default(f);
	const char *names[] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 5; i++) {
		_cleanup_free_ char *key = store_key("tasks", "default", names[i]);
		_cleanup_json_ json_t *o = obj(names[i], i);
		assert_int_equal(put(s, key, o, NULL, NULL), STORE_WRITE);
	}
	_cleanup_json_ json_t *x = obj("x", 9), *n1 = obj("n1", 0), *d2 = obj("a", 0);
	_cleanup_free_ char *nkey = store_key("nodes", NULL, "n1");
	assert_string_equal(nkey, "nodes//n1");
	assert_int_equal(put(s, "tasks/other/x", x, NULL, NULL), STORE_WRITE);
	assert_int_equal(put(s, nkey, n1, NULL, NULL), STORE_WRITE);
	assert_int_equal(put(s, "tasks/defaultx/a", d2, NULL, NULL), STORE_WRITE);

	struct kerr err = KERR_INIT;
	json_t *items = NULL;
	char *next = NULL;
	uint64_t rev = 0;
	assert_int_equal(
	    store_list(s, "tasks/default/", NULL, 0, NULL, NULL, &items, &rev, &next, &err), 0);
	assert_int_equal(json_array_size(items), 5);
	assert_string_equal(name_at(items, 0), "a");
	assert_string_equal(name_at(items, 4), "e");
	assert_null(next);
	assert_int_equal(rev, B(8));
	json_decref(items);

	/* pages of 2: a b | c d | e */
	const char *pages[3][2] = {{"a", "b"}, {"c", "d"}, {"e", NULL}};
	char *after = NULL;
	for (int p = 0; p < 3; p++) {
		assert_int_equal(store_list(s, "tasks/default/", after, 2, NULL, NULL, &items, &rev,
		                            &next, &err),
		                 0);
		assert_string_equal(name_at(items, 0), pages[p][0]);
		if (pages[p][1]) {
			assert_int_equal(json_array_size(items), 2);
			assert_string_equal(name_at(items, 1), pages[p][1]);
			_cleanup_free_ char *want = store_key("tasks", "default", pages[p][1]);
			assert_string_equal(next, want);
		} else {
			assert_int_equal(json_array_size(items), 1);
			assert_null(next);
		}
		json_decref(items);
		free(after);
		after = next;
	}
	/* a limit that ends exactly at the last item has no continuation */
	assert_int_equal(
	    store_list(s, "tasks/default/", NULL, 5, NULL, NULL, &items, NULL, &next, &err), 0);
	assert_int_equal(json_array_size(items), 5);
	assert_null(next);
	json_decref(items);

	/* filter: n even -> a(0) c(2) e(4); limit counts matches only */
	assert_int_equal(
	    store_list(s, "tasks/default/", NULL, 2, filter_even, NULL, &items, NULL, &next, &err),
	    0);
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(name_at(items, 0), "a");
	assert_string_equal(name_at(items, 1), "c");
	assert_string_equal(next, "tasks/default/c");
	json_decref(items);
	free(next);

	/* all tasks, every namespace; and everything */
	assert_int_equal(store_list(s, "tasks/", NULL, 0, NULL, NULL, &items, NULL, NULL, &err), 0);
	assert_int_equal(json_array_size(items), 7);
	json_decref(items);
	assert_int_equal(store_list(s, "", NULL, 0, NULL, NULL, &items, NULL, NULL, &err), 0);
	assert_int_equal(json_array_size(items), 8);
	json_decref(items);

	/* snapshot: a list read before a write reports the revision it saw */
	assert_int_equal(store_list(s, "nodes/", NULL, 0, NULL, NULL, &items, &rev, NULL, &err), 0);
	assert_int_equal(put(s, nkey, n1, NULL, NULL), STORE_WRITE);
	assert_int_equal(rev, B(8));
	assert_string_equal(rv_of(json_array_get(items, 0)), RV(7));
	json_decref(items);
	assert_int_equal(store_list(s, "nodes/", NULL, 0, NULL, NULL, &items, &rev, NULL, &err), 0);
	assert_int_equal(rev, B(9));
	assert_string_equal(rv_of(json_array_get(items, 0)), RV(9));
	json_decref(items);
}

struct seen {
	uint64_t revs[64];
	char keys[64][32];
	int types[64];
	size_t n, stop_at;
};

static int collect(void *ctx, const struct store_event *ev)
{
	struct seen *c = ctx;
	if (c->n >= 64)
		return -1;
	c->revs[c->n] = ev->rev;
	c->types[c->n] = ev->type;
	snprintf(c->keys[c->n], sizeof c->keys[0], "%s", ev->key);
	c->n++;
	if (strtoull(rv_of(ev->object), NULL, 10) != ev->rev)
		return -2;
	return c->stop_at && c->n == c->stop_at ? 42 : 0;
}

static void test_change_log_replay(void **state)
{
	struct fx *f = *state;
	struct store *s = open_default(f);
	for (int i = 0; i < 10; i++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/t%d", i % 4);
		_cleanup_json_ json_t *o = obj("t", i);
		assert_int_equal(put(s, key, o, NULL, NULL), STORE_WRITE);
	}
	assert_int_equal(store_update(s, "tasks/ns/t0", fn_delete, NULL, NULL, NULL, NULL),
	                 STORE_DELETE);

	struct kerr err = KERR_INIT;
	struct seen c = {0};
	assert_int_equal(store_changes(s, B(4), collect, &c, &err), 0);
	assert_int_equal(c.n, 7);
	for (size_t i = 0; i < c.n; i++)
		assert_int_equal(c.revs[i], B(5 + i));
	assert_string_equal(c.keys[0], "tasks/ns/t0"); /* rev 5 = write #4 */
	assert_int_equal(c.types[0], STORE_MODIFIED);
	assert_int_equal(c.types[6], STORE_DELETED);
	assert_string_equal(c.keys[6], "tasks/ns/t0");

	memset(&c, 0, sizeof c);
	assert_int_equal(store_changes(s, B(0), collect, &c, &err), 0);
	assert_int_equal(c.n, 11);
	assert_int_equal(c.types[0], STORE_ADDED);

	memset(&c, 0, sizeof c);
	assert_int_equal(store_changes(s, B(11), collect, &c, &err), 0);
	assert_int_equal(c.n, 0);

	memset(&c, 0, sizeof c);
	c.stop_at = 3;
	assert_int_equal(store_changes(s, B(0), collect, &c, &err), 42); /* fn's value stops it */
	assert_int_equal(c.n, 3);
}

static void test_compaction(void **state)
{
	struct fx *f = *state;
	struct store *s = open_with(f, 64 << 20, 10, 0);
	for (int i = 0; i < 30; i++) {
		_cleanup_json_ json_t *o = obj("t", i);
		assert_int_equal(put(s, "tasks/ns/t", o, NULL, NULL), STORE_WRITE);
	}
	assert_int_equal(store_revision(s), B(30));
	assert_int_equal(store_compacted(s), B(20));

	struct kerr err = KERR_INIT;
	struct seen c = {0};
	assert_int_equal(store_changes(s, B(5), collect, &c, &err), -ERANGE);
	char want[96];
	snprintf(want, sizeof want, "revision %s has been compacted (oldest available: %s)", RV(5),
	         RV(20));
	assert_string_equal(err.msg, want);
	kerr_clear(&err);
	assert_int_equal(store_changes(s, B(19), collect, &c, &err), -ERANGE);
	kerr_clear(&err);
	assert_int_equal(c.n, 0);

	assert_int_equal(store_changes(s, B(20), collect, &c, &err), 0);
	assert_int_equal(c.n, 10);
	assert_int_equal(c.revs[0], B(21));
	assert_int_equal(c.revs[9], B(30));
	memset(&c, 0, sizeof c);
	assert_int_equal(store_changes(s, B(25), collect, &c, &err), 0);
	assert_int_equal(c.n, 5);
}

static void test_reopen_keeps_state(void **state)
{
	struct fx *f = *state;
	struct store *s = open_with(f, 64 << 20, 5, 0);
	for (int i = 0; i < 12; i++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/t%02d", i);
		_cleanup_json_ json_t *o = obj(key, i);
		assert_int_equal(put(s, key, o, NULL, NULL), STORE_WRITE);
	}
	assert_int_equal(store_update(s, "tasks/ns/t03", fn_delete, NULL, NULL, NULL, NULL),
	                 STORE_DELETE);
	store_close(s);
	f->s = NULL;

	s = open_with(f, 64 << 20, 5, 0);
	assert_int_equal(store_revision(s), B(13));
	assert_int_equal(store_compacted(s), B(8));
	struct kerr err = KERR_INIT;
	json_t *items = NULL;
	assert_int_equal(store_list(s, "tasks/ns/", NULL, 0, NULL, NULL, &items, NULL, NULL, &err),
	                 0);
	assert_int_equal(json_array_size(items), 11);
	json_decref(items);
	json_t *o = NULL;
	assert_int_equal(store_get(s, "tasks/ns/t11", &o, &err), 0);
	assert_string_equal(rv_of(o), RV(12));
	json_decref(o);
	struct seen c = {0};
	assert_int_equal(store_changes(s, B(8), collect, &c, &err), 0);
	assert_int_equal(c.n, 5);
	assert_int_equal(c.types[4], STORE_DELETED);
	/* and the next write continues the revision sequence */
	uint64_t rev = 0;
	assert_int_equal(put(s, "tasks/ns/t03", o = obj("t03", 0), NULL, &rev), STORE_WRITE);
	json_decref(o);
	assert_int_equal(rev, B(14));
}

static void test_second_open_busy(void **state)
{
	SKIP_ON_ETCD("no data directory lock: several servers share one etcd by design");
	struct fx *f = *state;
	open_default(f);
	struct store *s2 = NULL;
	struct kerr err = KERR_INIT;
	assert_int_equal(store_open(f->dir, NULL, &s2, &err), -EBUSY);
	assert_null(s2);
	char want[600];
	snprintf(want, sizeof want, "data directory %s is in use by another keel server (pid %ld)",
	         f->dir, (long)getpid());
	assert_string_equal(err.msg, want);
	kerr_clear(&err);
	/* after close the directory is free again */
	store_close(f->s);
	f->s = NULL;
	open_default(f);
}

struct worker {
	struct store *s;
	int id, n, failures;
};

static void *group_worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->n; i++) {
		struct kerr err = KERR_INIT;
		int r;
		if (i % 2) {
			r = store_update(w->s, "counters//shared", fn_incr, NULL, NULL, NULL, &err);
		} else {
			char key[48];
			snprintf(key, sizeof key, "tasks/w%d/t%d", w->id, i);
			_cleanup_json_ json_t *o = obj(key, i);
			r = store_update(w->s, key, fn_create, o, NULL, NULL, &err);
		}
		if (r != STORE_WRITE)
			w->failures++;
		kerr_clear(&err);
	}
	return NULL;
}

static void test_group_commit(void **state)
{
	struct fx *f = *state;
	struct store *s = open_default(f);
	struct rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
	store_set_commit_hook(s, rec_hook, &rec);
	enum { THREADS = 8, EACH = 200 };
	pthread_t t[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){s, i, EACH, 0};
		pthread_create(&t[i], NULL, group_worker, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	struct store_stats st;
	store_get_stats(s, &st);
	assert_int_equal(store_revision(s), B(THREADS * EACH));
	assert_int_equal(st.writes, THREADS * EACH);
	if (!on_etcd)                                /* etcd commits each write in its own txn */
		assert_true(st.commits < st.writes); /* some writes shared a commit */
	assert_int_equal(rec.n, THREADS * EACH);
	assert_false(rec.out_of_order);
	assert_int_equal(rec.revs[0], B(1));
	/* the read-modify-write counter lost no increment */
	json_t *c = NULL;
	assert_int_equal(store_get(s, "counters//shared", &c, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "spec"), "n")),
	                 THREADS * EACH / 2);
	json_decref(c);
	store_set_commit_hook(s, NULL, NULL);
	rec_free(&rec);
}

static int fn_bad_value(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)ctx, (void)cur, (void)rev, (void)err;
	*next = json_string("not an object");
	return STORE_WRITE;
}

static int fn_fail_silently(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)ctx, (void)cur, (void)rev, (void)next, (void)err;
	return -EPERM;
}

static void reentrant_hook(void *ctx, const struct store_event *ev)
{
	struct fx *f = ctx;
	struct kerr err = KERR_INIT;
	int *r = (int *)&f->dir[sizeof f->dir - sizeof(int)];
	*r = store_update(f->s, ev->key, fn_noop, NULL, NULL, NULL, &err);
	kerr_clear(&err);
}

static void test_bad_requests(void **state)
{
	struct fx *f = *state;
	struct store *s = open_default(f);
	struct kerr err = KERR_INIT;

	/* an object over 1.5 MiB serialised */
	_cleanup_json_ json_t *big = obj("big", 0);
	_cleanup_free_ char *blob = xmalloc(1600 * 1024);
	memset(blob, 'x', 1600 * 1024 - 1);
	blob[1600 * 1024 - 1] = '\0';
	json_object_set_new(json_object_get(big, "spec"), "blob", json_string(blob));
	assert_int_equal(store_update(s, "tasks/ns/big", fn_put, big, NULL, NULL, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "object tasks/ns/big is 16"));
	kerr_clear(&err);

	assert_int_equal(store_update(s, "tasks/ns/x", fn_bad_value, NULL, NULL, NULL, &err),
	                 -EINVAL);
	assert_string_equal(err.msg, "store: new value for tasks/ns/x is not a JSON object");
	kerr_clear(&err);

	assert_int_equal(store_update(s, "tasks/ns/x", fn_fail_silently, NULL, NULL, NULL, &err),
	                 -EPERM);
	assert_non_null(strstr(err.msg, "update of tasks/ns/x failed"));
	kerr_clear(&err);

	assert_int_equal(store_update(s, "", fn_noop, NULL, NULL, NULL, &err), -EINVAL);
	kerr_clear(&err);
	char longkey[600];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	assert_int_equal(store_get(s, longkey, &big, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "longer than the limit"));
	kerr_clear(&err);
	assert_int_equal(store_update(s, "tasks/ns/\xff", fn_noop, NULL, NULL, NULL, &err),
	                 -EINVAL);
	kerr_clear(&err);
	assert_int_equal(store_revision(s), B(0));

	/* a hook that writes would deadlock: refused */
	int *hook_r = (int *)&f->dir[sizeof f->dir - sizeof(int)];
	store_set_commit_hook(s, reentrant_hook, f);
	_cleanup_json_ json_t *a = obj("a", 1);
	assert_int_equal(put(s, "tasks/ns/a", a, NULL, NULL), STORE_WRITE);
	assert_int_equal(*hook_r, -EDEADLK);
	store_set_commit_hook(s, NULL, NULL);
	*hook_r = 0;
	if (on_etcd) /* the data directory and map size are LMDB's */
		return;

	/* bad data directory and options */
	struct store *s2 = NULL;
	struct store_options tiny = {.map_size = 4096};
	assert_int_equal(store_open(f->dir, &tiny, &s2, &err), -EINVAL);
	assert_string_equal(err.msg, "store map size 4096 bytes is too small (minimum 65536)");
	kerr_clear(&err);
	assert_int_equal(store_open("", NULL, &s2, &err), -EINVAL);
	kerr_clear(&err);
	char file[600];
	snprintf(file, sizeof file, "%s/LOCK", f->dir);
	assert_int_equal(store_open(file, NULL, &s2, &err), -ENOTDIR);
	assert_non_null(strstr(err.msg, "is not a directory"));
	kerr_clear(&err);
}

/* A gate: a write whose callback holds the writer thread until opened, so
 * that a test can queue requests behind it deterministically. */
struct gate {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool entered, open;
	struct store *s;
	int r;
	pthread_t t;
};

static int fn_gated(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)cur, (void)rev, (void)err;
	struct gate *g = ctx;
	pthread_mutex_lock(&g->m);
	g->entered = true;
	pthread_cond_broadcast(&g->c);
	while (!g->open)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
	*next = obj("gate", 0);
	return STORE_WRITE;
}

static void *gate_thread(void *arg)
{
	struct gate *g = arg;
	g->r = store_update(g->s, "tasks/ns/gate", fn_gated, g, NULL, NULL, NULL);
	return NULL;
}

static void gate_close(struct store *s, struct gate *g)
{
	*g = (struct gate){
	    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, s, 0, 0};
	pthread_create(&g->t, NULL, gate_thread, g);
	pthread_mutex_lock(&g->m);
	while (!g->entered)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->m);
	g->open = true;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
}

static void wait_queued(struct store *s, uint64_t n)
{
	struct store_stats st;
	for (int i = 0; i < 10000; i++) {
		store_get_stats(s, &st);
		if (st.queued == n)
			return;
		usleep(1000);
	}
	fail_msg("write queue never reached %llu (at %llu)", (unsigned long long)n,
	         (unsigned long long)st.queued);
}

struct drain {
	struct store *s;
	int i, r;
	json_t *o;
};

static void *drain_worker(void *arg)
{
	struct drain *d = arg;
	char key[32];
	snprintf(key, sizeof key, "tasks/ns/d%02d", d->i);
	struct kerr err = KERR_INIT;
	d->r = store_update(d->s, key, fn_put, d->o, NULL, NULL, &err);
	kerr_clear(&err);
	return NULL;
}

static void *closer(void *arg)
{
	store_close(arg);
	return NULL;
}

static void *open_later(void *arg)
{
	usleep(500 * 1000);
	gate_open(arg);
	return NULL;
}

/* store_close drains queued writes (they succeed), refuses new ones with
 * -ESHUTDOWN, and reads keep working while it drains. */
static void test_close_drains_queue(void **state)
{
	SKIP_ON_ETCD("queues behind LMDB's one writer thread; etcd's pool: test_store_etcd.c");
	struct fx *f = *state;
	struct store *s = open_default(f);
	enum { N = 16 };
	struct gate g;
	gate_close(s, &g);
	pthread_t t[N], ct, ot;
	struct drain d[N];
	_cleanup_json_ json_t *o = obj("d", 1);
	for (int i = 0; i < N; i++) {
		d[i] = (struct drain){s, i, 0, o};
		pthread_create(&t[i], NULL, drain_worker, &d[i]);
	}
	wait_queued(s, N);
	pthread_create(&ct, NULL, closer, s);
	pthread_create(&ot, NULL, open_later, &g); /* the writer is held for 0.5 s */
	usleep(200 * 1000);
	struct kerr err = KERR_INIT;
	assert_int_equal(store_update(s, "tasks/ns/late", fn_put, o, NULL, NULL, &err), -ESHUTDOWN);
	assert_string_equal(err.msg, "store is closing; tasks/ns/late not written");
	kerr_clear(&err);
	json_t *items = NULL;
	assert_int_equal(store_list(s, "", NULL, 0, NULL, NULL, &items, NULL, NULL, &err), 0);
	json_decref(items);
	pthread_join(ot, NULL);
	pthread_join(ct, NULL);
	pthread_join(g.t, NULL);
	assert_int_equal(g.r, STORE_WRITE);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(d[i].r, STORE_WRITE);
	}
	f->s = NULL;
	s = open_default(f);
	assert_int_equal(store_revision(s), N + 1);
}

/* ---- asynchronous updates ----------------------------------------------------------- */

enum { ASYNC_N = 6 };

struct async_done {
	pthread_mutex_t m;
	pthread_cond_t c;
	struct store *s;
	struct rec *rec; /* the hook's record, to check that it ran first */
	int n;
	int rc[ASYNC_N], reentry[ASYNC_N];
	uint64_t rev[ASYNC_N];
	size_t hooked[ASYNC_N]; /* changes the hook had seen when done ran */
	char *text[ASYNC_N], *object[ASYNC_N], *msg[ASYNC_N];
};

struct async_call {
	void *d; /* struct async_done or struct close_async */
	int i;
};

static void async_done_fn(void *ctx, const struct store_result *res)
{
	struct async_call *c = ctx;
	struct async_done *d = c->d;
	int i = c->i;
	pthread_mutex_lock(&d->rec->lock);
	size_t hooked = d->rec->n;
	pthread_mutex_unlock(&d->rec->lock);
	/* done runs on the writer thread: no updates from there */
	struct kerr err = KERR_INIT;
	int reentry =
	    store_update_async(d->s, "tasks/ns/re", fn_noop, NULL, async_done_fn, c, &err);
	kerr_clear(&err);
	pthread_mutex_lock(&d->m);
	d->rc[i] = res->rc;
	d->rev[i] = res->rev;
	d->hooked[i] = hooked;
	d->reentry[i] = reentry;
	d->text[i] = res->text ? xstrndup(res->text, res->text_len) : NULL;
	d->object[i] = res->object ? json_dumps(res->object, JSON_COMPACT) : NULL;
	d->msg[i] = res->rc < 0 ? xstrdup(kerr_msg(res->err)) : NULL;
	d->n++;
	pthread_cond_broadcast(&d->c);
	pthread_mutex_unlock(&d->m);
}

/* Queued without waiting, behind a held writer: all of them share one
 * commit; each done runs after the hook saw its change, with the result,
 * the stored text and the error of its own request. */
static void test_async_updates(void **state)
{
	SKIP_ON_ETCD("one commit behind LMDB's one writer thread; etcd's pool: test_store_etcd.c");
	struct fx *f = *state;
	struct store *s = open_default(f);
	struct rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
	store_set_commit_hook(s, rec_hook, &rec);
	struct gate g;
	gate_close(s, &g); /* revision 1, once opened */
	struct async_done d = {
	    .m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER, .s = s, .rec = &rec};
	struct async_call calls[ASYNC_N];
	_cleanup_json_ json_t *o = obj("a", 7);
	const char *keys[ASYNC_N] = {"tasks/ns/a0", "tasks/ns/a1", "tasks/ns/a1",
	                             "tasks/ns/a2", "tasks/ns/zz", "tasks/ns/a3"};
	store_mutate_fn fns[ASYNC_N] = {fn_put,           fn_put,  fn_create,
	                                fn_fail_silently, fn_noop, fn_put};
	struct kerr err = KERR_INIT;
	for (int i = 0; i < ASYNC_N; i++) {
		calls[i] = (struct async_call){&d, i};
		assert_int_equal(
		    store_update_async(s, keys[i], fns[i], o, async_done_fn, &calls[i], &err), 0);
	}
	wait_queued(s, ASYNC_N);
	assert_int_equal(d.n, 0); /* nothing answered before its commit */
	struct store_stats st0;
	store_get_stats(s, &st0);
	gate_open(&g);
	pthread_join(g.t, NULL);
	pthread_mutex_lock(&d.m);
	while (d.n < ASYNC_N)
		pthread_cond_wait(&d.c, &d.m);
	pthread_mutex_unlock(&d.m);
	struct store_stats st;
	store_get_stats(s, &st);
	assert_int_equal(st.commits - st0.commits, 2); /* the gate's, then one for all six */
	/* writes a0, a1 get revisions 2 and 3; the create of a1 finds it: -EEXIST
	 * from fn_create; a2 fails; zz is a no-op; a3 is revision 4 */
	int want_rc[ASYNC_N] = {STORE_WRITE, STORE_WRITE, -EEXIST, -EPERM, STORE_NOOP, STORE_WRITE};
	uint64_t want_rev[ASYNC_N] = {2, 3, 0, 0, 3, 4};
	for (int i = 0; i < ASYNC_N; i++) {
		assert_int_equal(d.rc[i], want_rc[i]);
		assert_int_equal(d.reentry[i], -EDEADLK);
		assert_int_equal(d.hooked[i], 4); /* gate + three writes, all before any done */
		if (want_rc[i] == STORE_WRITE) {
			assert_int_equal(d.rev[i], want_rev[i]);
			assert_non_null(d.text[i]);
			assert_string_equal(d.text[i], d.object[i]); /* exactly as stored */
			char rv[40];
			snprintf(rv, sizeof rv, "\"resourceVersion\":\"%llu\"",
			         (unsigned long long)want_rev[i]);
			assert_non_null(strstr(d.text[i], rv));
			json_t *got = NULL;
			assert_int_equal(store_get(s, keys[i], &got, NULL), 0);
			_cleanup_free_ char *stored = json_dumps(got, JSON_COMPACT);
			json_decref(got);
			assert_string_equal(stored, d.text[i]);
		} else {
			assert_null(d.text[i]);
		}
		if (want_rc[i] < 0)
			assert_non_null(d.msg[i]);
		else
			assert_null(d.msg[i]);
	}
	assert_int_equal(d.rev[4], 3); /* a no-op reports the revision it saw */
	assert_null(d.object[4]);      /* ... and no object for an absent key */
	assert_non_null(strstr(d.msg[2], "exists"));
	for (int i = 0; i < ASYNC_N; i++) {
		free(d.text[i]);
		free(d.object[i]);
		free(d.msg[i]);
	}
	/* refused before queueing: done never runs */
	assert_int_equal(store_update_async(s, "", fn_noop, NULL, async_done_fn, &calls[0], &err),
	                 -EINVAL);
	kerr_clear(&err);
	assert_int_equal(store_update_async(s, "tasks/ns/x", fn_noop, NULL, NULL, NULL, &err),
	                 -EINVAL);
	kerr_clear(&err);
	assert_int_equal(d.n, ASYNC_N);
	store_set_commit_hook(s, NULL, NULL);
	rec_free(&rec);
}

struct close_async {
	pthread_mutex_t m;
	int done, rc[4];
};

static void close_done_fn(void *ctx, const struct store_result *res)
{
	struct async_call *c = ctx;
	struct close_async *ca = c->d;
	pthread_mutex_lock(&ca->m);
	ca->rc[c->i] = res->rc;
	ca->done++;
	pthread_mutex_unlock(&ca->m);
}

/* store_close answers the asynchronous updates already queued (they commit)
 * and refuses new ones; by the time it returns every done has run. */
static void test_async_close_drains(void **state)
{
	SKIP_ON_ETCD("queues behind LMDB's one writer thread; etcd's pool: test_store_etcd.c");
	struct fx *f = *state;
	struct store *s = open_default(f);
	struct gate g;
	gate_close(s, &g);
	struct close_async ca = {.m = PTHREAD_MUTEX_INITIALIZER};
	struct async_call calls[4];
	_cleanup_json_ json_t *o = obj("c", 1);
	struct kerr err = KERR_INIT;
	for (int i = 0; i < 4; i++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/c%d", i);
		calls[i] = (struct async_call){&ca, i};
		assert_int_equal(
		    store_update_async(s, key, fn_put, o, close_done_fn, &calls[i], &err), 0);
	}
	wait_queued(s, 4);
	pthread_t ct;
	pthread_create(&ct, NULL, closer, s);
	usleep(100 * 1000);
	assert_int_equal(
	    store_update_async(s, "tasks/ns/late", fn_put, o, close_done_fn, &calls[0], &err),
	    -ESHUTDOWN);
	assert_string_equal(err.msg, "store is closing; tasks/ns/late not written");
	kerr_clear(&err);
	gate_open(&g);
	pthread_join(ct, NULL);
	pthread_join(g.t, NULL);
	assert_int_equal(ca.done, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ca.rc[i], STORE_WRITE);
	f->s = NULL;
	s = open_default(f);
	assert_int_equal(store_revision(s), 5);
}

/* A batch stops at 64 MiB written; the rest is requeued, in order. */
static void test_batch_byte_cap(void **state)
{
	SKIP_ON_ETCD("LMDB's batch byte cap; etcd commits each write alone");
	struct fx *f = *state;
	struct store *s = open_with(f, (size_t)1 << 30, 0, 0);
	struct rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
	store_set_commit_hook(s, rec_hook, &rec);
	enum { N = 32 };
	_cleanup_free_ char *blob = xmalloc(1400 * 1024);
	memset(blob, 'b', 1400 * 1024 - 1);
	blob[1400 * 1024 - 1] = '\0';
	_cleanup_json_ json_t *big = obj("big", 0);
	json_object_set_new(json_object_get(big, "spec"), "blob", json_string(blob));
	struct gate g;
	gate_close(s, &g);
	pthread_t t[N];
	struct drain d[N];
	for (int i = 0; i < N; i++) {
		d[i] = (struct drain){s, i, 0, big};
		pthread_create(&t[i], NULL, drain_worker, &d[i]);
	}
	wait_queued(s, N);
	gate_open(&g);
	pthread_join(g.t, NULL);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(d[i].r, STORE_WRITE);
	}
	struct store_stats st;
	store_get_stats(s, &st);
	assert_int_equal(st.writes, N + 1);
	assert_true(st.commits >= 3); /* the gate, then at least two batches */
	assert_true(st.commits < N);  /* but still batched */
	assert_int_equal(rec.n, N + 1);
	assert_false(rec.out_of_order);
	store_set_commit_hook(s, NULL, NULL);
	rec_free(&rec);
}

/* Crash durability: a child writes and reports each acknowledged key on a
 * pipe; it is SIGKILLed mid-stream; every acknowledged key must be there. */
static void *crash_writer(void *arg)
{
	struct worker *w = arg;
	int fd = w->n;
	for (int i = 0;; i++) {
		char key[64];
		snprintf(key, sizeof key, "tasks/crash/w%d-%d", w->id, i);
		_cleanup_json_ json_t *o = obj(key, i);
		if (store_update(w->s, key, fn_put, o, NULL, NULL, NULL) != STORE_WRITE)
			_exit(3);
		char line[80];
		int len = snprintf(line, sizeof line, "%s\n", key);
		if (write(fd, line, (size_t)len) != len)
			_exit(4);
	}
	return NULL;
}

static void crash_child(struct fx *f, int fd)
{
	struct store *s = NULL;
	struct store_options o = options(f, 64 << 20, 0, 0);
	if (store_open(f->dir, &o, &s, NULL) < 0)
		_exit(2);
	pthread_t t[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){s, i, fd, 0};
		pthread_create(&t[i], NULL, crash_writer, &w[i]);
	}
	pause();
	_exit(0);
}

static void test_crash_durability(void **state)
{
	struct fx *f = *state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		crash_child(f, p[1]);
	}
	close(p[1]);
	FILE *in = fdopen(p[0], "r");
	char **keys = NULL;
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	bool killed = false;
	while ((len = getline(&line, &lcap, in)) > 0) {
		line[len - 1] = '\0';
		if (n == cap)
			keys = xrealloc(keys, (cap = cap ? cap * 2 : 256) * sizeof *keys);
		keys[n++] = xstrdup(line);
		if (n == 300 && !killed) {
			kill(pid, SIGKILL); /* the rest of the pipe still holds acknowledged keys */
			killed = true;
		}
	}
	free(line);
	fclose(in);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("writer child ended by itself (status %#x) after %zu writes", status, n);
	assert_true(n >= 300);

	struct store *s = open_default(f);
	assert_true(store_revision(s) >= n);
	for (size_t i = 0; i < n; i++) {
		json_t *o = NULL;
		struct kerr err = KERR_INIT;
		if (store_get(s, keys[i], &o, &err) != 0)
			fail_msg("acknowledged key %s lost after SIGKILL: %s", keys[i],
			         kerr_msg(&err));
		json_decref(o);
		free(keys[i]);
	}
	free(keys);
}

/* A full map: history is given up first (early compaction), then writes fail
 * -ENOSPC with a message saying what to do; reads keep working, deletes still
 * succeed (LMDB needs free pages even to delete), writes fit again after
 * deletes, and the store reopens intact. */
static void test_map_full(void **state)
{
	SKIP_ON_ETCD("the LMDB map quota; etcd's quota is the cluster's (--quota-backend-bytes)");
	struct fx *f = *state;
	struct store *s = open_with(f, 1 << 20, 0, 0); /* default history: 100,000 */
	_cleanup_free_ char *blob = xmalloc(8192);
	memset(blob, 'y', 8191);
	blob[8191] = '\0';
	struct kerr err = KERR_INIT;
	int n = 0, r = 0;
	for (; n < 1000; n++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/f%04d", n);
		_cleanup_json_ json_t *o = obj(key, n);
		json_object_set_new(json_object_get(o, "spec"), "blob", json_string(blob));
		r = store_update(s, key, fn_put, o, NULL, NULL, &err);
		if (r < 0)
			break;
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(n > 10);
	print_message("map full after %d objects: %s\n", n, err.msg);
	assert_string_equal(err.msg, "store is full (map size 1048576 bytes); delete objects or "
	                             "restart with a larger --store-size");
	kerr_clear(&err);
	uint64_t rev = store_revision(s);
	assert_int_equal(rev, n);
	assert_true(store_compacted(s) > 0); /* the log was trimmed to make room */
	struct store_stats st;
	store_get_stats(s, &st);
	assert_int_equal(st.map_size, 1 << 20);
	assert_true(st.map_used <= st.map_size);
	assert_true(st.map_used > st.map_size / 2);

	/* reads keep working */
	json_t *items = NULL, *o = NULL;
	assert_int_equal(store_list(s, "tasks/", NULL, 0, NULL, NULL, &items, NULL, NULL, &err), 0);
	assert_int_equal(json_array_size(items), n);
	json_decref(items);
	assert_int_equal(store_get(s, "tasks/ns/f0000", &o, &err), 0);
	json_decref(o);

	/* deletes free space; then writes fit again */
	for (int i = 0; i < n / 2; i++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/f%04d", i);
		r = store_update(s, key, fn_delete, NULL, NULL, NULL, &err);
		if (r != STORE_DELETE)
			fail_msg("delete %s on a full map: %s", key, kerr_msg(&err));
	}
	_cleanup_json_ json_t *small = obj("small", 1);
	assert_int_equal(put(s, "tasks/ns/small", small, NULL, NULL), STORE_WRITE);
	assert_int_equal(store_revision(s), rev + (uint64_t)(n / 2) + 1);

	store_close(s);
	f->s = NULL;
	s = open_with(f, 1 << 20, 0, 0);
	assert_int_equal(store_revision(s), rev + (uint64_t)(n / 2) + 1);
	assert_int_equal(store_list(s, "tasks/", NULL, 0, NULL, NULL, &items, NULL, NULL, &err), 0);
	assert_int_equal(json_array_size(items), n - n / 2 + 1);
	json_decref(items);
}

/* Writes raw bytes into one of the store's databases, behind its back. */
static void raw_put(const char *dir, const char *db, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	mdb_env_set_mapsize(env, (64u << 20) + (8u << 20));
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Corrupt data is reported as -EIO naming the key, never skipped. */
static void test_corruption_is_eio(void **state)
{
	SKIP_ON_ETCD("writes LMDB's files behind the store's back");
	struct fx *f = *state;
	struct store *s = open_default(f);
	_cleanup_json_ json_t *a = obj("a", 1);
	assert_int_equal(put(s, "tasks/ns/a", a, NULL, NULL), STORE_WRITE);
	store_close(s);
	f->s = NULL;
	raw_put(f->dir, "objects", "tasks/ns/bad", 12, "{\"metadata\": tru", 15);
	unsigned char rev2[8] = {0, 0, 0, 0, 0, 0, 0, 2};
	raw_put(f->dir, "log", rev2, 8, "[]", 2);

	s = open_default(f);
	struct kerr err = KERR_INIT;
	json_t *o = NULL, *items = NULL;
	assert_int_equal(store_get(s, "tasks/ns/bad", &o, &err), -EIO);
	assert_non_null(strstr(err.msg, "store: corrupt data at tasks/ns/bad: "));
	kerr_clear(&err);
	assert_int_equal(store_list(s, "tasks/", NULL, 0, NULL, NULL, &items, NULL, NULL, &err),
	                 -EIO);
	assert_non_null(strstr(err.msg, "tasks/ns/bad"));
	kerr_clear(&err);
	assert_int_equal(store_update(s, "tasks/ns/bad", fn_noop, NULL, NULL, NULL, &err), -EIO);
	kerr_clear(&err);
	assert_int_equal(store_get(s, "tasks/ns/a", &o, &err), 0); /* the rest still reads */
	json_decref(o);
	struct seen c = {0};
	assert_int_equal(store_changes(s, 0, collect, &c, &err), -EIO);
	assert_string_equal(err.msg,
	                    "store: corrupt data at change log revision 2: not a JSON object");
	assert_int_equal(c.n, 1); /* revision 1 was delivered first */
	kerr_clear(&err);

	/* a store written by a future keel is refused, not misread */
	store_close(s);
	f->s = NULL;
	unsigned char fmt2[8] = {0, 0, 0, 0, 0, 0, 0, 2};
	raw_put(f->dir, "meta", "format", 6, fmt2, 8);
	assert_int_equal(store_open(f->dir, NULL, &s, &err), -EIO);
	assert_non_null(strstr(err.msg, "has format 2; this keel reads format 1"));
	kerr_clear(&err);
}

/* KEEL_TEST_STORE=etcd: one real etcd for the run. */
static int group_setup(void **state)
{
	(void)state;
	const char *which = getenv("KEEL_TEST_STORE");
	if (!which || !*which || streq(which, "lmdb"))
		return 0;
	if (!streq(which, "etcd")) {
		fprintf(stderr, "KEEL_TEST_STORE=%s: want lmdb or etcd\n", which);
		return -1;
	}
	on_etcd = true;
	if (etcd_start(&etcd, etcd_test_base()) < 0) {
		fprintf(stderr, "could not start etcd (log in %s/etcd.log)\n", etcd.dir);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	etcd_stop(&etcd);
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	if (streq(getenv("KEEL_TEST_STORE"), "etcd") && !etcd_binary())
		return etcd_missing(); /* under CI=true a failure, else a skip that says so */
	const struct CMUnitTest tests[] = {
	    T(test_crud_revisions),     T(test_noop_writes_nothing),
	    T(test_cas_conflict),       T(test_list),
	    T(test_change_log_replay),  T(test_compaction),
	    T(test_reopen_keeps_state), T(test_second_open_busy),
	    T(test_group_commit),       T(test_bad_requests),
	    T(test_close_drains_queue), T(test_crash_durability),
	    T(test_map_full),           T(test_batch_byte_cap),
	    T(test_corruption_is_eio),  T(test_async_updates),
	    T(test_async_close_drains),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
