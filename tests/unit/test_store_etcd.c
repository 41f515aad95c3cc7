/* Unit tests for the etcd backend of src/store only (test_store.c runs the
 * common suite on it as unit/store-etcd): two store handles on one etcd as
 * two API servers, endpoint failover, compacted replay, the worker pool's
 * asynchronous answers and close, bad endpoints, and a 3-member cluster
 * losing a member. A real etcd per test group (etcd_launch.h); a fresh key
 * prefix per test. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/util.h"
#include "store/store.h"
#include "etcd_launch.h"

static struct etcd_proc etcd;

struct fx {
	char prefix[64];
	struct store *a, *b;
};

static int fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof *f);
	static int seq;
	snprintf(f->prefix, sizeof f->prefix, "/keel-etcdtest-%ld-%d/", (long)getpid(), ++seq);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->a);
	store_close(f->b);
	free(f);
	return 0;
}

static struct store *open_at(struct fx *f, const char *endpoints, uint64_t history)
{
	struct store_options o = {
	    .history = history, .etcd_endpoints = endpoints, .etcd_prefix = f->prefix};
	struct store *s = NULL;
	struct kerr err = KERR_INIT;
	if (store_open(NULL, &o, &s, &err) < 0)
		fail_msg("store_open %s: %s", endpoints, kerr_msg(&err));
	return s;
}

static int fn_put(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)cur, (void)rev, (void)err;
	*next = json_deep_copy(ctx);
	return STORE_WRITE;
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

/* The server's PUT precondition: compare resourceVersion, then replace. */
struct cas {
	const char *expect_rv;
	json_t *obj;
};
static int fn_cas(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	struct cas *c = ctx;
	const char *rv =
	    json_string_value(json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
	if (!streq(rv, c->expect_rv))
		return kerr_set(err, ESTALE, "the object has been modified");
	return fn_put(c->obj, cur, rev, next, err);
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

static int put(struct store *s, const char *key, int n, uint64_t *rev)
{
	_cleanup_json_ json_t *o = obj(key, n);
	struct kerr err = KERR_INIT;
	int r = store_update(s, key, fn_put, o, NULL, rev, &err);
	if (r < 0)
		print_message("put %s: %s\n", key, kerr_msg(&err));
	kerr_clear(&err);
	return r;
}

/* ---- a commit hook that records what it sees ---------------------------------------- */

struct rec {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t revs[256];
	int types[256];
	char keys[256][48];
	size_t n;
	bool bad; /* out of order, or resourceVersion != rev */
};

static void rec_hook(void *ctx, const struct store_event *ev)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->lock);
	if (r->n && ev->rev <= r->revs[r->n - 1])
		r->bad = true;
	if (strtoull(rv_of(ev->object) ?: "0", NULL, 10) != ev->rev)
		r->bad = true;
	if (r->n < 256) {
		r->revs[r->n] = ev->rev;
		r->types[r->n] = ev->type;
		snprintf(r->keys[r->n], sizeof r->keys[0], "%s", ev->key);
		r->n++;
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Waits (5 s at most) until the hook has seen n changes. */
static size_t rec_wait(struct rec *r, size_t n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&r->lock);
	while (r->n < n && pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
		;
	size_t got = r->n;
	pthread_mutex_unlock(&r->lock);
	return got;
}

#define REC_INIT                                                                                   \
	{                                                                                          \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, {0}, {{0}}, 0, false     \
	}

struct seen {
	uint64_t revs[64];
	char keys[64][48];
	size_t n;
};

static int collect(void *ctx, const struct store_event *ev)
{
	struct seen *c = ctx;
	if (c->n >= 64)
		return -1;
	c->revs[c->n] = ev->rev;
	snprintf(c->keys[c->n], sizeof c->keys[0], "%s", ev->key);
	c->n++;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* Two servers on one etcd: every write through either is seen by both
 * hooks once, in revision order, and replayed by both stores. */
static void test_two_servers_see_each_other(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 0);
	f->b = open_at(f, etcd.url, 0);
	struct rec ra = REC_INIT, rb = REC_INIT;
	store_set_commit_hook(f->a, rec_hook, &ra);
	store_set_commit_hook(f->b, rec_hook, &rb);
	uint64_t start = store_revision(f->b), revs[6];
	for (int i = 0; i < 6; i++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/t%d", i % 3);
		assert_int_equal(put(i % 2 ? f->b : f->a, key, i, &revs[i]), STORE_WRITE);
	}
	assert_int_equal(store_update(f->b, "tasks/ns/t0", fn_delete, NULL, NULL, NULL, NULL),
	                 STORE_DELETE);
	assert_int_equal(rec_wait(&ra, 7), 7);
	assert_int_equal(rec_wait(&rb, 7), 7);
	assert_false(ra.bad);
	assert_false(rb.bad);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(ra.revs[i], revs[i]);
		assert_int_equal(rb.revs[i], revs[i]);
	}
	assert_int_equal(ra.types[0], STORE_ADDED);
	assert_int_equal(ra.types[3], STORE_MODIFIED);
	assert_int_equal(ra.types[6], STORE_DELETED);
	assert_string_equal(ra.keys[6], "tasks/ns/t0");

	/* a's view of b's write, and a replay from before it */
	json_t *o = NULL;
	assert_int_equal(store_get(f->a, "tasks/ns/t1", &o, NULL), 0);
	char want[24];
	snprintf(want, sizeof want, "%llu", (unsigned long long)revs[4]);
	assert_string_equal(rv_of(o), want);
	json_decref(o);
	struct seen c = {0};
	struct kerr err = KERR_INIT;
	assert_int_equal(store_changes(f->a, start, collect, &c, &err), 0);
	assert_int_equal(c.n, 7);
	for (int i = 0; i < 6; i++)
		assert_int_equal(c.revs[i], revs[i]);
	memset(&c, 0, sizeof c);
	assert_int_equal(store_changes(f->b, revs[2], collect, &c, &err), 0);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.revs[0], revs[3]);
	store_set_commit_hook(f->a, NULL, NULL);
	store_set_commit_hook(f->b, NULL, NULL);
}

/* Compare-and-swap across servers: a precondition read through one fails
 * after the other wrote; the loser is refused, the winner's write stays. */
static void test_cas_between_servers(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 0);
	f->b = open_at(f, etcd.url, 0);
	uint64_t r1 = 0;
	assert_int_equal(put(f->a, "tasks/ns/x", 1, &r1), STORE_WRITE);
	char rv1[24];
	snprintf(rv1, sizeof rv1, "%llu", (unsigned long long)r1);
	_cleanup_json_ json_t *fromb = obj("x", 2), *froma = obj("x", 3);
	struct cas cb = {rv1, fromb}, ca = {rv1, froma};
	struct kerr err = KERR_INIT;
	uint64_t r2 = 0;
	assert_int_equal(store_update(f->b, "tasks/ns/x", fn_cas, &cb, NULL, &r2, &err),
	                 STORE_WRITE);
	assert_true(r2 > r1);
	assert_int_equal(store_update(f->a, "tasks/ns/x", fn_cas, &ca, NULL, NULL, &err), -ESTALE);
	assert_string_equal(err.msg, "the object has been modified");
	kerr_clear(&err);
	json_t *o = NULL;
	assert_int_equal(store_get(f->a, "tasks/ns/x", &o, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "spec"), "n")), 2);
	json_decref(o);
}

/* Many increments racing from two servers on one key lose none. */
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

struct incr_worker {
	struct store *s;
	int n, failures;
};

static void *incr_main(void *arg)
{
	struct incr_worker *w = arg;
	for (int i = 0; i < w->n; i++)
		if (store_update(w->s, "counters//c", fn_incr, NULL, NULL, NULL, NULL) !=
		    STORE_WRITE)
			w->failures++;
	return NULL;
}

static void test_concurrent_increments(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 0);
	f->b = open_at(f, etcd.url, 0);
	enum { T = 4, N = 40 };
	pthread_t t[T];
	struct incr_worker w[T];
	for (int i = 0; i < T; i++) {
		w[i] = (struct incr_worker){i % 2 ? f->b : f->a, N, 0};
		pthread_create(&t[i], NULL, incr_main, &w[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	json_t *o = NULL;
	assert_int_equal(store_get(f->b, "counters//c", &o, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "spec"), "n")),
	                 T * N);
	json_decref(o);
}

/* A list through one server of what the other just wrote reports a
 * revision this server's store_revision has reached, so a watch from it
 * starts at once (the server refuses a resourceVersion above the store's). */
static void test_list_revision_reached(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 0);
	f->b = open_at(f, etcd.url, 0);
	for (int i = 0; i < 20; i++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/l%d", i);
		uint64_t rev = 0;
		assert_int_equal(put(f->b, key, i, &rev), STORE_WRITE);
		json_t *items = NULL;
		uint64_t at = 0;
		assert_int_equal(
		    store_list(f->a, "tasks/", NULL, 0, NULL, NULL, &items, &at, NULL, NULL), 0);
		assert_int_equal(json_array_size(items), (size_t)i + 1);
		json_decref(items);
		assert_true(at >= rev);
		assert_true(store_revision(f->a) >= at);
	}
}

/* Failover: the first endpoint is a closed port; everything works through
 * the second. All endpoints dead: -EIO naming them. Bad lists: -EINVAL. */
static void test_failover_and_bad_endpoints(void **state)
{
	struct fx *f = *state;
	char two[160];
	snprintf(two, sizeof two, "http://127.0.0.1:%d,%s", etcd_free_port(), etcd.url);
	f->a = open_at(f, two, 0);
	struct rec ra = REC_INIT;
	store_set_commit_hook(f->a, rec_hook, &ra);
	uint64_t rev = 0;
	assert_int_equal(put(f->a, "tasks/ns/f", 1, &rev), STORE_WRITE);
	assert_int_equal(rec_wait(&ra, 1), 1);
	json_t *o = NULL;
	assert_int_equal(store_get(f->a, "tasks/ns/f", &o, NULL), 0);
	json_decref(o);
	store_set_commit_hook(f->a, NULL, NULL);

	struct store *s = NULL;
	struct kerr err = KERR_INIT;
	char dead[64];
	snprintf(dead, sizeof dead, "http://127.0.0.1:%d", etcd_free_port());
	struct store_options o1 = {.etcd_endpoints = dead, .etcd_prefix = f->prefix};
	assert_int_equal(store_open(NULL, &o1, &s, &err), -EIO);
	assert_non_null(strstr(err.msg, "etcd cluster unreachable at "));
	assert_non_null(strstr(err.msg, dead));
	kerr_clear(&err);
	struct store_options o2 = {.etcd_endpoints = "127.0.0.1:2379", .etcd_prefix = f->prefix};
	assert_int_equal(store_open(NULL, &o2, &s, &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "--etcd-endpoints: \"127.0.0.1:2379\" is not an http://HOST:PORT URL");
	kerr_clear(&err);
	struct store_options o3 = {.etcd_endpoints = etcd.url, .etcd_prefix = "/keel"};
	assert_int_equal(store_open(NULL, &o3, &s, &err), -EINVAL);
	assert_string_equal(err.msg, "--etcd-prefix \"/keel\" must end with '/'");
	kerr_clear(&err);
	assert_null(s);
}

/* A replay from below what etcd compacted is -ERANGE with store.h's message,
 * also when the compaction was another server's. */
static void test_compacted_replay(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 4);
	f->b = open_at(f, etcd.url, 0); /* never compacts itself: default history */
	uint64_t first = store_revision(f->b);
	for (int i = 0; i < 12; i++)
		assert_int_equal(put(f->a, "tasks/ns/c", i, NULL), STORE_WRITE);
	uint64_t head = store_revision(f->a);
	assert_int_equal(store_compacted(f->a), head - 4);
	struct seen c = {0};
	struct kerr err = KERR_INIT;
	int r = store_changes(f->b, first, collect, &c, &err);
	assert_int_equal(r, -ERANGE);
	char want[96];
	snprintf(want, sizeof want, "revision %llu has been compacted (oldest available: %llu)",
	         (unsigned long long)first, (unsigned long long)(head - 4));
	assert_string_equal(err.msg, want);
	kerr_clear(&err);
	assert_int_equal(store_compacted(f->b), head - 4); /* learnt from etcd */
	memset(&c, 0, sizeof c);
	assert_int_equal(store_changes(f->b, head - 4, collect, &c, &err), 0);
	assert_int_equal(c.n, 4);
}

/* Asynchronous updates on the pool: done runs after the hook saw the change,
 * with the text exactly as a read returns it; from done, updates are
 * refused (-EDEADLK); close answers what was queued. */
struct adone {
	pthread_mutex_t m;
	struct store *s;
	struct rec *rec;
	int n, bad, reentry;
	size_t ok;
};

static void adone_fn(void *ctx, const struct store_result *res)
{
	struct adone *d = ctx;
	pthread_mutex_lock(&d->rec->lock);
	bool hooked = false;
	for (size_t i = 0; i < d->rec->n; i++)
		hooked |= d->rec->revs[i] == res->rev;
	pthread_mutex_unlock(&d->rec->lock);
	int re = store_update_async(d->s, "tasks/ns/re", fn_noop, NULL, adone_fn, d, NULL);
	char rv[48];
	snprintf(rv, sizeof rv, "\"resourceVersion\":\"%llu\"", (unsigned long long)res->rev);
	pthread_mutex_lock(&d->m);
	d->n++;
	if (res->rc == STORE_WRITE && hooked && res->text && strstr(res->text, rv))
		d->ok++;
	else
		d->bad++;
	if (re == -EDEADLK)
		d->reentry++;
	pthread_mutex_unlock(&d->m);
}

static void test_async_and_close(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 0);
	struct rec ra = REC_INIT;
	store_set_commit_hook(f->a, rec_hook, &ra);
	struct adone d = {.m = PTHREAD_MUTEX_INITIALIZER, .s = f->a, .rec = &ra};
	_cleanup_json_ json_t *o = obj("a", 1);
	enum { N = 100 };
	for (int i = 0; i < N; i++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/a%03d", i);
		assert_int_equal(store_update_async(f->a, key, fn_put, o, adone_fn, &d, NULL), 0);
	}
	store_close(f->a); /* drains: every done has run when it returns */
	f->a = NULL;
	assert_int_equal(d.n, N);
	assert_int_equal(d.ok, N);
	assert_int_equal(d.bad, 0);
	assert_int_equal(d.reentry, N);
	assert_false(ra.bad);
	assert_int_equal(ra.n, N);

	/* what the done saw is what a read returns */
	f->b = open_at(f, etcd.url, 0);
	json_t *items = NULL;
	assert_int_equal(
	    store_list(f->b, "tasks/ns/", NULL, 0, NULL, NULL, &items, NULL, NULL, NULL), 0);
	assert_int_equal(json_array_size(items), N);
	json_decref(items);
	struct store_stats st;
	store_get_stats(f->b, &st);
	assert_true(st.map_used > 0); /* etcd's dbSizeInUse */
	assert_int_equal(st.revision, store_revision(f->b));
}

/* Lists page internally (500 keys a request) and still return one
 * snapshot in key order, with limit/continue as on LMDB. */
static void test_big_list(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 0);
	enum { N = 1200 };
	struct adone d = {.m = PTHREAD_MUTEX_INITIALIZER, .s = f->a};
	struct rec ra = REC_INIT;
	d.rec = &ra;
	_cleanup_json_ json_t *objs = json_array();
	for (int i = N - 1; i >= 0; i--) { /* written in reverse: the list sorts */
		char key[32];
		snprintf(key, sizeof key, "tasks/big/b%04d", i);
		json_t *o = obj(key + strlen("tasks/big/"), i);
		json_array_append_new(objs, o);
		assert_int_equal(store_update_async(f->a, key, fn_put, o, adone_fn, &d, NULL), 0);
	}
	store_close(f->a);
	f->a = open_at(f, etcd.url, 0);
	json_t *items = NULL;
	char *next = NULL;
	assert_int_equal(
	    store_list(f->a, "tasks/big/", NULL, 0, NULL, NULL, &items, NULL, &next, NULL), 0);
	assert_int_equal(json_array_size(items), N);
	assert_null(next);
	for (size_t i = 0; i < N; i++) {
		char want[16];
		snprintf(want, sizeof want, "b%04zu", i);
		assert_string_equal(
		    json_string_value(json_object_get(
		        json_object_get(json_array_get(items, i), "metadata"), "name")),
		    want);
	}
	json_decref(items);
	/* a page that ends past an internal page boundary */
	assert_int_equal(store_list(f->a, "tasks/big/", "tasks/big/b0400", 300, NULL, NULL, &items,
	                            NULL, &next, NULL),
	                 0);
	assert_int_equal(json_array_size(items), 300);
	assert_string_equal(next, "tasks/big/b0700");
	json_decref(items);
	free(next);
}

/* A 3-member cluster keeps taking writes when one member (the one the
 * store was talking to) dies. */
static void test_cluster_loses_member(void **state)
{
	struct fx *f = *state;
	const char *base = etcd_test_base();
	struct etcd_proc m[3];
	char cluster[512] = "";
	for (int i = 0; i < 3; i++) {
		char name[8];
		snprintf(name, sizeof name, "m%d", i);
		etcd_prepare(&m[i], base, name);
		snprintf(cluster + strlen(cluster), sizeof cluster - strlen(cluster), "%s%s=%s",
		         i ? "," : "", name, m[i].peer);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(etcd_spawn(&m[i], cluster), 0);
	for (int i = 0; i < 3; i++)
		if (etcd_wait(&m[i]) < 0) {
			for (int k = 0; k < 3; k++)
				etcd_stop(&m[k]);
			fail_msg("3-member cluster did not come up");
		}
	char eps[256];
	snprintf(eps, sizeof eps, "%s,%s,%s", m[0].url, m[1].url, m[2].url);
	f->a = open_at(f, eps, 0);
	struct rec ra = REC_INIT;
	store_set_commit_hook(f->a, rec_hook, &ra);
	int n = 0;
	for (; n < 10; n++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/k%02d", n);
		assert_int_equal(put(f->a, key, n, NULL), STORE_WRITE);
	}
	kill(m[0].pid, SIGKILL); /* the endpoint in use (the first that answered) */
	int failures = 0;
	for (; n < 30; n++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/k%02d", n);
		if (put(f->a, key, n, NULL) != STORE_WRITE)
			failures++;
	}
	assert_int_equal(failures, 0);
	assert_int_equal(rec_wait(&ra, 30), 30); /* the watch moved too */
	assert_false(ra.bad);
	json_t *items = NULL;
	assert_int_equal(
	    store_list(f->a, "tasks/ns/", NULL, 0, NULL, NULL, &items, NULL, NULL, NULL), 0);
	assert_int_equal(json_array_size(items), 30);
	json_decref(items);
	store_set_commit_hook(f->a, NULL, NULL);
	store_close(f->a);
	f->a = NULL;
	for (int i = 0; i < 3; i++)
		etcd_stop(&m[i]);
}

/* A 3-member cluster whose member in use stops (SIGSTOP: the kernel still
 * accepts its connections, so only deadlines notice): writes keep being
 * answered within a few seconds, the watch moves to another member and
 * loses nothing, and a replay from before the stop completes. */
static struct etcd_proc stall_m[3];

static int stall_teardown(void **state)
{
	for (int i = 0; i < 3; i++) {
		if (stall_m[i].pid > 0)
			kill(stall_m[i].pid, SIGCONT);
	}
	fx_teardown(state);
	for (int i = 0; i < 3; i++)
		etcd_stop(&stall_m[i]);
	return 0;
}

static void test_stalled_member(void **state)
{
	struct fx *f = *state;
	struct etcd_proc *m = stall_m;
	const char *base = etcd_test_base();
	char cluster[512] = "";
	for (int i = 0; i < 3; i++) {
		char name[8];
		snprintf(name, sizeof name, "s%d", i);
		etcd_prepare(&m[i], base, name);
		snprintf(cluster + strlen(cluster), sizeof cluster - strlen(cluster), "%s%s=%s",
		         i ? "," : "", name, m[i].peer);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(etcd_spawn(&m[i], cluster), 0);
	for (int i = 0; i < 3; i++)
		if (etcd_wait(&m[i]) < 0)
			fail_msg("3-member cluster did not come up");
	char eps[256];
	snprintf(eps, sizeof eps, "%s,%s,%s", stall_m[0].url, stall_m[1].url, stall_m[2].url);
	f->a = open_at(f, eps, 0);
	struct rec ra = REC_INIT;
	store_set_commit_hook(f->a, rec_hook, &ra);
	int n = 0;
	for (; n < 5; n++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/k%02d", n);
		assert_int_equal(put(f->a, key, n, NULL), STORE_WRITE);
	}
	uint64_t before = store_revision(f->a);
	assert_int_equal(kill(m[0].pid, SIGSTOP), 0); /* the endpoint in use */
	int64_t worst = 0, total0 = now_ms();
	for (; n < 25; n++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/k%02d", n);
		int64_t t0 = now_ms();
		assert_int_equal(put(f->a, key, n, NULL), STORE_WRITE);
		int64_t dt = now_ms() - t0;
		worst = dt > worst ? dt : worst;
	}
	int64_t total = now_ms() - total0;
	print_message("stalled member: worst write %lld ms, 20 writes in %lld ms\n",
	              (long long)worst, (long long)total);
	assert_true(worst < 10000); /* one unary deadline plus one watch deadline */
	assert_true(total < 15000); /* not every write pays them */
	assert_int_equal(rec_wait(&ra, 25), 25);
	assert_false(ra.bad);
	/* a replay from before the stop (a new watch stream) completes */
	struct seen c = {0};
	int64_t t0 = now_ms();
	assert_int_equal(store_changes(f->a, before, collect, &c, NULL), 0);
	assert_true(now_ms() - t0 < 10000);
	assert_int_equal(c.n, 20);
	store_set_commit_hook(f->a, NULL, NULL);
}

/* store_get_stats is /metrics: with etcd stopped it answers at once, with
 * the size etcd last reported (fetched at open, then in the background). */
static void test_stats_do_not_block(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 0);
	assert_int_equal(kill(etcd.pid, SIGSTOP), 0);
	struct store_stats st;
	int64_t t0 = now_ms();
	for (int i = 0; i < 3; i++)
		store_get_stats(f->a, &st);
	int64_t dt = now_ms() - t0;
	kill(etcd.pid, SIGCONT);
	assert_true(dt < 500);
	assert_true(st.map_used > 0);
	assert_true(st.revision > 0);
}

/* store_set_unreachable (the server's health probe found no healthy
 * endpoint): a read waiting on a member that answers nothing ends at once,
 * later reads and writes fail at once, with -EHOSTUNREACH naming etcd and
 * the probe's reasons; NULL makes the store use etcd again. */
struct reader {
	struct store *s;
	int rc;
	int64_t took;
	char msg[512];
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct kerr err = KERR_INIT;
	json_t *obj = NULL;
	int64_t t0 = now_ms();
	rd->rc = store_get(rd->s, "tasks/default/a", &obj, &err);
	rd->took = now_ms() - t0;
	snprintf(rd->msg, sizeof rd->msg, "%s", kerr_msg(&err));
	json_decref(obj);
	kerr_clear(&err);
	return NULL;
}

static void test_unreachable_fails_fast(void **state)
{
	struct fx *f = *state;
	f->a = open_at(f, etcd.url, 0);
	json_t *obj = json_pack("{s:{s:s}}", "metadata", "name", "a");
	struct kerr err = KERR_INIT;
	assert_int_equal(store_update(f->a, "tasks/default/a", fn_put, obj, NULL, NULL, &err),
	                 STORE_WRITE);
	assert_int_equal(kill(etcd.pid, SIGSTOP), 0);
	struct reader rd = {.s = f->a};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, reader_main, &rd), 0);
	usleep(300 * 1000);
	int64_t t0 = now_ms();
	store_set_unreachable(f->a, "http://H:P: no answer");
	pthread_join(t, NULL);
	int64_t waited = now_ms() - t0;
	assert_true(waited < 1500); /* libcurl calls the progress callback at least once a second */
	assert_int_equal(rd.rc, -EHOSTUNREACH);
	assert_string_equal(rd.msg, "etcd: no healthy endpoint (http://H:P: no answer)");
	t0 = now_ms();
	json_t *got = NULL;
	assert_int_equal(store_get(f->a, "tasks/default/a", &got, &err), -EHOSTUNREACH);
	kerr_clear(&err);
	assert_int_equal(store_update(f->a, "tasks/default/b", fn_put, obj, NULL, NULL, &err),
	                 -EHOSTUNREACH);
	assert_string_equal(kerr_msg(&err), "etcd: no healthy endpoint (http://H:P: no answer)");
	kerr_clear(&err);
	assert_true(now_ms() - t0 < 200);
	kill(etcd.pid, SIGCONT);
	store_set_unreachable(f->a, NULL);
	assert_int_equal(store_get(f->a, "tasks/default/a", &got, &err), 0);
	json_decref(got);
	assert_int_equal(store_update(f->a, "tasks/default/b", fn_put, obj, NULL, NULL, &err),
	                 STORE_WRITE);
	json_decref(obj);
}

/* ---- a TCP proxy that loses answers (fault injection) --------------------------------- */

/* Forwards 127.0.0.1:port to etcd; while drop_txn > 0, the answer to a txn
 * is swallowed and the connection closed after etcd has applied it: the
 * store sees a write whose outcome it cannot know. */
struct proxy {
	int lfd, port;
	int target_port;
	_Atomic int drop_txn, dropped;
	_Atomic bool stop;
	/* while hold_watch, watch streams get nothing from etcd; cut_watch
	 * closes them (watch_open counts them) */
	_Atomic bool hold_watch, cut_watch;
	_Atomic int watch_open;
	pthread_t t;
};

struct pconn {
	struct proxy *p;
	int c, u;
	bool watch;
};

static void *pconn_main(void *arg)
{
	struct pconn *pc = arg;
	bool drop = false;
	char buf[65536];
	struct pollfd fds[2] = {{pc->c, POLLIN, 0}, {pc->u, POLLIN, 0}};
	while (!atomic_load(&pc->p->stop)) {
		if (pc->watch && atomic_load(&pc->p->cut_watch))
			break;
		if (pc->watch && atomic_load(&pc->p->hold_watch)) {
			usleep(10 * 1000);
			continue;
		}
		if (poll(fds, 2, 100) <= 0)
			continue;
		if (fds[0].revents) {
			ssize_t n = read(pc->c, buf, sizeof buf);
			if (n <= 0)
				break;
			if (!pc->watch && memmem(buf, (size_t)n, "POST /v3/watch", 14)) {
				pc->watch = true;
				atomic_fetch_add(&pc->p->watch_open, 1);
			}
			if (memmem(buf, (size_t)n, "POST /v3/kv/txn", 15) &&
			    atomic_load(&pc->p->drop_txn) > 0) {
				atomic_fetch_sub(&pc->p->drop_txn, 1);
				drop = true;
			}
			if (write(pc->u, buf, (size_t)n) != n)
				break;
		}
		if (fds[1].revents) {
			ssize_t n = read(pc->u, buf, sizeof buf);
			if (n <= 0)
				break;
			if (drop) { /* etcd answered: it has applied the txn */
				atomic_fetch_add(&pc->p->dropped, 1);
				break;
			}
			if (write(pc->c, buf, (size_t)n) != n)
				break;
		}
	}
	if (pc->watch)
		atomic_fetch_sub(&pc->p->watch_open, 1);
	close(pc->c);
	close(pc->u);
	free(pc);
	return NULL;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	while (!atomic_load(&p->stop)) {
		struct pollfd pf = {p->lfd, POLLIN, 0};
		if (poll(&pf, 1, 100) <= 0)
			continue;
		int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons((uint16_t)p->target_port),
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (connect(u, (struct sockaddr *)&a, sizeof a) < 0) {
			close(c);
			close(u);
			continue;
		}
		struct pconn *pc = xmalloc(sizeof *pc);
		*pc = (struct pconn){p, c, u, false};
		pthread_t t;
		pthread_create(&t, NULL, pconn_main, pc);
		pthread_detach(t);
	}
	return NULL;
}

static void proxy_start(struct proxy *p, const char *url)
{
	memset(p, 0, sizeof *p);
	p->target_port = atoi(strrchr(url, ':') + 1);
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(p->lfd, 64), 0);
	getsockname(p->lfd, (struct sockaddr *)&a, &len);
	p->port = ntohs(a.sin_port);
	pthread_create(&p->t, NULL, proxy_main, p);
}

static void proxy_stop(struct proxy *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->t, NULL);
	close(p->lfd);
	usleep(200 * 1000); /* connection threads see stop within 100 ms */
}

static int fn_create(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	if (cur)
		return kerr_set(err, EEXIST, "already exists");
	return fn_put(ctx, cur, rev, next, err);
}

/* A txn applied by etcd whose answer is lost is found out by re-reading: a
 * create is answered as created (not "already exists" by a blind retry),
 * a delete as deleted (not "not found"), each exactly once in the hook. */
static void test_lost_answer(void **state)
{
	struct fx *f = *state;
	static struct proxy p; /* static: its threads outlive a failed assertion */
	proxy_start(&p, etcd.url);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", p.port);
	f->a = open_at(f, url, 0);
	struct rec ra = REC_INIT;
	store_set_commit_hook(f->a, rec_hook, &ra);
	_cleanup_json_ json_t *o = obj("lost", 1);
	struct kerr err = KERR_INIT;
	uint64_t rev = 0;
	atomic_store(&p.drop_txn, 1);
	assert_int_equal(store_update(f->a, "tasks/ns/lost", fn_create, o, NULL, &rev, &err),
	                 STORE_WRITE);
	assert_int_equal(atomic_load(&p.dropped), 1);
	json_t *got = NULL;
	assert_int_equal(store_get(f->a, "tasks/ns/lost", &got, NULL), 0);
	char want[24];
	snprintf(want, sizeof want, "%llu", (unsigned long long)rev);
	assert_string_equal(rv_of(got), want);
	json_decref(got);

	atomic_store(&p.drop_txn, 1);
	assert_int_equal(store_update(f->a, "tasks/ns/lost", fn_delete, NULL, NULL, NULL, &err),
	                 STORE_DELETE);
	assert_int_equal(atomic_load(&p.dropped), 2);
	assert_int_equal(store_get(f->a, "tasks/ns/lost", &got, &err), -ENOENT);
	kerr_clear(&err);
	assert_int_equal(rec_wait(&ra, 2), 2);
	usleep(100 * 1000);
	assert_int_equal(ra.n, 2); /* once each */
	assert_int_equal(ra.types[0], STORE_ADDED);
	assert_int_equal(ra.types[1], STORE_DELETED);
	store_set_commit_hook(f->a, NULL, NULL);
	store_close(f->a);
	f->a = NULL;
	proxy_stop(&p);
}

/* A hook that records the STORE_RESYNC signals it gets. */
struct gap_rec {
	_Atomic int resyncs, changes;
	_Atomic uint64_t rev;
};

static void gap_hook(void *ctx, const struct store_event *ev)
{
	struct gap_rec *g = ctx;
	if (ev->type == STORE_RESYNC) {
		assert_null(ev->object);
		assert_string_equal(ev->key, "");
		atomic_store(&g->rev, ev->rev);
		atomic_fetch_add(&g->resyncs, 1);
	} else
		atomic_fetch_add(&g->changes, 1);
}

/* A watch gap: store a's watch stream is held (a proxy passes nothing from
 * etcd) while store b writes and compacts past it; when a's stream breaks,
 * its resume is refused as compacted, and a's hook gets STORE_RESYNC, once,
 * at a revision past the gap; replays from before it are -ERANGE. */
static void test_watch_gap_resync(void **state)
{
	struct fx *f = *state;
	static struct proxy p; /* static: its threads outlive a failed assertion */
	proxy_start(&p, etcd.url);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", p.port);
	f->a = open_at(f, url, 0);
	f->b = open_at(f, etcd.url, 1); /* compacts to head - 1 as it goes */
	struct gap_rec g = {0};
	store_set_commit_hook(f->a, gap_hook, &g);
	assert_int_equal(put(f->b, "tasks/ns/before", 0, NULL), STORE_WRITE);
	for (int i = 0; i < 100 && store_revision(f->a) < store_revision(f->b); i++)
		usleep(20 * 1000);
	assert_int_equal(atomic_load(&g.changes), 1);
	uint64_t delivered = store_revision(f->a);
	assert_int_equal(delivered, store_revision(f->b));

	atomic_store(&p.hold_watch, true);
	usleep(300 * 1000); /* the proxy's threads poll every 100 ms */
	for (int i = 0; i < 20; i++) {
		char key[32];
		snprintf(key, sizeof key, "tasks/ns/g%02d", i);
		assert_int_equal(put(f->b, key, i, NULL), STORE_WRITE);
	}
	for (int i = 0; i < 100 && store_compacted(f->b) <= delivered + 1; i++)
		usleep(20 * 1000);
	assert_true(store_compacted(f->b) > delivered + 1);
	assert_int_equal(store_revision(f->a), delivered); /* a saw none of it */
	atomic_store(&p.cut_watch, true);
	for (int i = 0; i < 200 && atomic_load(&p.watch_open) > 0; i++)
		usleep(10 * 1000);
	atomic_store(&p.hold_watch, false);
	atomic_store(&p.cut_watch, false);

	for (int i = 0; i < 250 && atomic_load(&g.resyncs) < 1; i++)
		usleep(20 * 1000);
	assert_int_equal(atomic_load(&g.resyncs), 1);
	assert_int_equal(atomic_load(&g.changes), 1); /* the lost ones are not made up */
	assert_true(atomic_load(&g.rev) > delivered);
	assert_true(store_compacted(f->a) >= atomic_load(&g.rev));
	struct seen c = {0};
	struct kerr err = KERR_INIT;
	assert_int_equal(store_changes(f->a, delivered, collect, &c, &err), -ERANGE);
	kerr_clear(&err);
	/* and it carries on: a's own write after the gap is delivered */
	assert_int_equal(put(f->a, "tasks/ns/after", 1, NULL), STORE_WRITE);
	assert_int_equal(atomic_load(&g.changes), 2);
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&g.resyncs), 1);
	store_set_commit_hook(f->a, NULL, NULL);
	store_close(f->a);
	f->a = NULL;
	proxy_stop(&p);
}

static int group_setup(void **state)
{
	(void)state;
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
	if (!etcd_binary())
		return etcd_missing();
	const struct CMUnitTest tests[] = {
	    T(test_two_servers_see_each_other),
	    T(test_cas_between_servers),
	    T(test_concurrent_increments),
	    T(test_list_revision_reached),
	    T(test_failover_and_bad_endpoints),
	    T(test_compacted_replay),
	    T(test_async_and_close),
	    T(test_big_list),
	    T(test_cluster_loses_member),
	    T(test_lost_answer),
	    T(test_stats_do_not_block),
	    T(test_unreachable_fails_fast),
	    T(test_watch_gap_resync),
	    cmocka_unit_test_setup_teardown(test_stalled_member, fx_setup, stall_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
