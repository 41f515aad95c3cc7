/* Unit tests for the informer's indexes (controllers/informer.c,
 * informer_add_index / informer_by_index / informer_index_has) against a
 * scripted fake server on 127.0.0.1: a list, then a watch that moves a
 * Task to another owner, deletes one and adds one; the owner and
 * namespace indexes follow the cache, an index added after the sync is
 * built from it, and informer_stop ends a silent watch round at once
 * (client_watch_cancel) instead of waiting for the server. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/kind.h"
#include "common/util.h"
#include "controllers/informer.h"

struct fake {
	int lfd, port;
	const char *const *answers;
	size_t n;
	pthread_t thread;
};

static void drain_request(int fd)
{
	size_t got = 0;
	char all[8192];
	while (got < sizeof(all) - 1) {
		ssize_t r = read(fd, all + got, sizeof(all) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		all[got] = 0;
		if (strstr(all, "\r\n\r\n"))
			break;
	}
}

static void *serve(void *ud)
{
	struct fake *f = ud;
	for (size_t i = 0; i < f->n; i++) {
		int fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			break;
		drain_request(fd);
		const char *a = f->answers[i];
		const char *sleep_at = strstr(a, "SLEEP");
		size_t len = sleep_at ? (size_t)(sleep_at - a) : strlen(a);
		ssize_t w = write(fd, a, len);
		(void)w;
		if (sleep_at)
			sleep(3); /* a silent stream: only a cancel ends it early */
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f, const char *const *answers, size_t n)
{
	memset(f, 0, sizeof(*f));
	f->answers = answers;
	f->n = n;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	socklen_t sl = sizeof(sa);
	getsockname(f->lfd, (struct sockaddr *)&sa, &sl);
	f->port = ntohs(sa.sin_port);
	pthread_create(&f->thread, NULL, serve, f);
}

#define TASK(name, rv, owner)                                                                      \
	"{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"default\",\"uid\":\"u-" name         \
	"\",\"resourceVersion\":\"" rv "\",\"ownerReferences\":[{\"kind\":\"Deployment\","         \
	"\"name\":\"d\",\"uid\":\"" owner "\",\"controller\":true}]}}"

static const char *const script[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    "{\"kind\":\"TaskList\",\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[" TASK(
        "t1", "5", "A") "," TASK("t2", "6", "A") "," TASK("t3", "7", "B") "]}",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json;stream=watch\r\nConnection: "
    "close\r\n\r\n"
    "{\"type\":\"MODIFIED\",\"object\":" TASK(
        "t2", "11", "B") "}\n"
                         "{\"type\":\"DELETED\",\"object\":" TASK(
                             "t1", "12", "A") "}\n"
                                              "{\"type\":\"ADDED\",\"object\":" TASK(
                                                  "t4", "13", "A") "}\nSLEEP",
};

/* The sorted names of the objects in arr, comma-separated. Owned. */
static char *names(json_t *arr)
{
	const char *v[8] = {0};
	size_t n = json_array_size(arr);
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		v[i] = json_string_value(
		    json_object_get(json_object_get(json_array_get(arr, i), "metadata"), "name"));
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(v[j], v[i]) < 0) {
				const char *t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	char *out = xstrdup("");
	for (size_t i = 0; i < n; i++) {
		char *o = xasprintf("%s%s%s", out, i ? "," : "", v[i]);
		free(out);
		out = o;
	}
	return out;
}

static void expect_index(struct informer *inf, const char *index, const char *value,
                         const char *want)
{
	json_t *arr = informer_by_index(inf, index, value);
	char *got = names(arr);
	assert_string_equal(got, want);
	assert_int_equal(informer_index_has(inf, index, value), *want != 0);
	free(got);
	json_decref(arr);
}

static void test_indexes_follow_the_cache(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f, script, ARRAY_SIZE(script));
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
	struct informer_opts o = {.client = {.server = url}, .kind = api_kind_by_kind("Task")};
	struct informer *inf = NULL;
	assert_int_equal(informer_new(&o, NULL, &inf, NULL), 0);
	informer_add_index(inf, INFORMER_INDEX_OWNER, informer_index_owner_uids);
	informer_add_index(inf, INFORMER_INDEX_OWNER, informer_index_uid); /* kept: the first */
	assert_int_equal(informer_start(inf, NULL), 0);
	assert_int_equal(informer_wait_synced(inf, 5000), 0);
	for (int i = 0; i < 500 && informer_revision(inf) < 13; i++)
		usleep(10000);
	assert_int_equal(informer_revision(inf), 13);
	expect_index(inf, INFORMER_INDEX_OWNER, "A", "t4");
	expect_index(inf, INFORMER_INDEX_OWNER, "B", "t2,t3");
	expect_index(inf, INFORMER_INDEX_OWNER, "C", "");
	expect_index(inf, "no-such-index", "A", "");
	/* added after the sync: built from the cache */
	informer_add_index(inf, INFORMER_INDEX_NAMESPACE, informer_index_namespace);
	expect_index(inf, INFORMER_INDEX_NAMESPACE, "default", "t2,t3,t4");
	int64_t t0 = time_mono_ms();
	informer_stop(inf);
	assert_true(time_mono_ms() - t0 < 2500); /* the fake stays silent for 3 s */
	informer_free(inf);
	pthread_join(f.thread, NULL);
	close(f.lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_indexes_follow_the_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
