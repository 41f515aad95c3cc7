/*
 * The work queue (controllers/workqueue.c): de-duplication, a key added
 * while processing comes back after done, backoff that doubles and stops
 * at its cap, forget, the global rate limit, and shutdown waking waiters.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/util.h"
#include "controllers/workqueue.h"

/* Gets one key and says how long it took (ms). */
static long timed_get(struct workqueue *q, const char *expect)
{
	int64_t t0 = time_mono_ms();
	char *k = NULL;
	assert_int_equal(workqueue_get(q, &k), 0);
	long ms = (long)(time_mono_ms() - t0);
	assert_string_equal(k, expect);
	workqueue_done(q, k);
	free(k);
	return ms;
}

static void test_dedup(void **state)
{
	(void)state;
	struct workqueue *q = workqueue_new(NULL);
	workqueue_add(q, "default/a");
	workqueue_add(q, "default/b");
	workqueue_add(q, "default/a");
	workqueue_add(q, "default/a");
	assert_int_equal(workqueue_len(q), 2);
	char *k = NULL;
	assert_int_equal(workqueue_get(q, &k), 0);
	assert_string_equal(k, "default/a"); /* FIFO by first add */
	workqueue_done(q, k);
	free(k);
	assert_int_equal(workqueue_get(q, &k), 0);
	assert_string_equal(k, "default/b");
	workqueue_done(q, k);
	free(k);
	assert_int_equal(workqueue_len(q), 0);
	workqueue_free(q);
}

static void test_processing_readd(void **state)
{
	(void)state;
	struct workqueue *q = workqueue_new(NULL);
	workqueue_add(q, "k");
	char *k = NULL;
	assert_int_equal(workqueue_get(q, &k), 0);
	/* Added while a worker holds it: not handed to a second worker... */
	workqueue_add(q, "k");
	workqueue_add(q, "k");
	assert_int_equal(workqueue_len(q), 0);
	/* ...but processed once more after done. */
	workqueue_done(q, k);
	free(k);
	assert_int_equal(workqueue_len(q), 1);
	assert_int_equal(timed_get(q, "k") < 100, 1);
	assert_int_equal(workqueue_len(q), 0);
	workqueue_free(q);
}

static void test_backoff_growth_and_cap(void **state)
{
	(void)state;
	struct workqueue_opts o = {.base_delay_ms = 20, .max_delay_ms = 160, .qps = 1000,
	                           .burst = 1000};
	struct workqueue *q = workqueue_new(&o);
	/* Delays 20, 40, 80, 160, then capped at 160 (not 320, 640). */
	long want[] = {20, 40, 80, 160, 160, 160};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		workqueue_add_rate_limited(q, "k");
		assert_int_equal(workqueue_failures(q, "k"), i + 1);
		assert_int_equal(workqueue_len(q), 0); /* not ready before its delay */
		long ms = timed_get(q, "k");
		assert_true(ms >= want[i] - 2);
		assert_true(ms < want[i] + 150);
	}
	/* Forget: the next failure waits the base delay again. */
	workqueue_forget(q, "k");
	assert_int_equal(workqueue_failures(q, "k"), 0);
	workqueue_add_rate_limited(q, "k");
	long ms = timed_get(q, "k");
	assert_true(ms >= 18 && ms < 150);
	workqueue_free(q);
}

static void test_add_after_and_global_rate(void **state)
{
	(void)state;
	struct workqueue_opts o = {.base_delay_ms = 1, .max_delay_ms = 10, .qps = 20, .burst = 1};
	struct workqueue *q = workqueue_new(&o);
	workqueue_add_after(q, "later", 60);
	workqueue_add(q, "now");
	assert_int_equal(timed_get(q, "now") < 30, 1);
	long ms = timed_get(q, "later");
	assert_true(ms >= 40);
	/* burst 1, 20 qps: the first rate-limited add is immediate-ish (1 ms
	 * backoff), the second waits for a token: 50 ms. */
	workqueue_add_rate_limited(q, "x");
	assert_true(timed_get(q, "x") < 30);
	workqueue_add_rate_limited(q, "y");
	ms = timed_get(q, "y");
	assert_true(ms >= 40);
	workqueue_free(q);
}

static void *getter(void *arg)
{
	struct workqueue *q = arg;
	char *k = NULL;
	intptr_t r = workqueue_get(q, &k);
	free(k);
	return (void *)r;
}

static void test_shutdown(void **state)
{
	(void)state;
	struct workqueue *q = workqueue_new(NULL);
	pthread_t t1, t2;
	pthread_create(&t1, NULL, getter, q);
	pthread_create(&t2, NULL, getter, q);
	struct timespec ts = {0, 50 * 1000000};
	nanosleep(&ts, NULL);
	workqueue_shutdown(q);
	void *r1, *r2;
	pthread_join(t1, &r1);
	pthread_join(t2, &r2);
	assert_int_equal((intptr_t)r1, -ESHUTDOWN);
	assert_int_equal((intptr_t)r2, -ESHUTDOWN);
	workqueue_add(q, "ignored");
	assert_int_equal(workqueue_len(q), 0);
	char *k = NULL;
	assert_int_equal(workqueue_get(q, &k), -ESHUTDOWN);
	assert_null(k);
	workqueue_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dedup),
	    cmocka_unit_test(test_processing_readd),
	    cmocka_unit_test(test_backoff_growth_and_cap),
	    cmocka_unit_test(test_add_after_and_global_rate),
	    cmocka_unit_test(test_shutdown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
