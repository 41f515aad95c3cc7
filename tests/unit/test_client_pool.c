/* Unit tests for src/client/client_pool.c: every submitted job runs once,
 * up to `size` of them at the same time, each with a client; submit blocks
 * on a full queue instead of growing it; wait returns once all are done;
 * free runs what is still queued. No server is needed: the jobs do not
 * make requests. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "client/client_pool.h"
#include "common/kerr.h"
#include "common/util.h"

struct counter {
	atomic_int done, running, peak, with_client;
	int sleep_us;
};

static void job(struct client *c, void *arg)
{
	struct counter *k = arg;
	int now = atomic_fetch_add(&k->running, 1) + 1;
	int peak = atomic_load(&k->peak);
	while (now > peak && !atomic_compare_exchange_weak(&k->peak, &peak, now)) {
	}
	if (c)
		atomic_fetch_add(&k->with_client, 1);
	usleep((useconds_t)k->sleep_us);
	atomic_fetch_sub(&k->running, 1);
	atomic_fetch_add(&k->done, 1);
}

static struct client_pool *pool(int size)
{
	struct client_opts o = {.server = "http://127.0.0.1:1"};
	struct client_pool *p = NULL;
	assert_int_equal(client_pool_new(&o, size, &p, NULL), 0);
	assert_int_equal(client_pool_size(p), size);
	return p;
}

static void test_runs_all_in_parallel(void **state)
{
	(void)state;
	struct client_pool *p = pool(4);
	struct counter k = {.sleep_us = 20000};
	for (int i = 0; i < 40; i++) /* more than the queue holds: submit blocks */
		client_pool_submit(p, job, &k);
	client_pool_wait(p);
	assert_int_equal(atomic_load(&k.done), 40);
	assert_int_equal(atomic_load(&k.with_client), 40);
	assert_int_equal(atomic_load(&k.running), 0);
	assert_true(atomic_load(&k.peak) > 1);  /* in parallel ... */
	assert_true(atomic_load(&k.peak) <= 4); /* ... but never more than size */
	/* the pool is reusable after a wait */
	client_pool_submit(p, job, &k);
	client_pool_wait(p);
	assert_int_equal(atomic_load(&k.done), 41);
	client_pool_free(p);
}

static void test_free_runs_queued(void **state)
{
	(void)state;
	struct client_pool *p = pool(1);
	struct counter k = {.sleep_us = 1000};
	for (int i = 0; i < 2; i++)
		client_pool_submit(p, job, &k);
	client_pool_free(p);
	assert_int_equal(atomic_load(&k.done), 2);
	client_pool_free(NULL);
}

static void test_bad_size(void **state)
{
	(void)state;
	struct client_opts o = {0};
	struct client_pool *p = NULL;
	struct kerr err = KERR_INIT;
	assert_int_equal(client_pool_new(&o, 0, &p, &err), -EINVAL);
	assert_null(p);
	kerr_clear(&err);
}

static void count_servers(struct client *c, void *arg)
{
	if (c && streq(client_servers(c), "http://127.0.0.1:1,http://127.0.0.1:2"))
		atomic_fetch_add((atomic_int *)arg, 1);
}

/* Every thread's client has the whole server list; a bad list is refused
 * up front, naming the entry. */
static void test_server_list(void **state)
{
	(void)state;
	struct client_opts o = {.server = "http://127.0.0.1:1, http://127.0.0.1:2/"};
	struct client_pool *p = NULL;
	assert_int_equal(client_pool_new(&o, 3, &p, NULL), 0);
	atomic_int n = 0;
	for (int i = 0; i < 9; i++)
		client_pool_submit(p, count_servers, &n);
	client_pool_wait(p);
	assert_int_equal(atomic_load(&n), 9);
	client_pool_free(p);
	struct kerr err = KERR_INIT;
	o.server = "http://127.0.0.1:1,127.0.0.1:2";
	p = NULL;
	assert_int_equal(client_pool_new(&o, 3, &p, &err), -EINVAL);
	assert_null(p);
	assert_non_null(
	    strstr(err.msg, "client pool: invalid server URL \"127.0.0.1:2\" (entry 2"));
	kerr_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_runs_all_in_parallel),
	    cmocka_unit_test(test_free_runs_queued),
	    cmocka_unit_test(test_bad_size),
	    cmocka_unit_test(test_server_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
