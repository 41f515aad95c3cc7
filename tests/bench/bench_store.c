/*
 * bench_store — what group commit buys: N writer threads each create M
 * objects, once with group commit (max_batch 256) and once with one write
 * per transaction (max_batch 1) as the baseline, each in a fresh data
 * directory. Prints writes/s, commits per write and per-write latency.
 *
 * An LMDB commit without MDB_NOSYNC/MDB_NOMETASYNC syncs twice (data pages,
 * then the meta page), so "fsyncs/write" is 2 x commits/write.
 *
 * With -e ENDPOINTS the same runs go to etcd too (the etcd backend, a fresh
 * key prefix each; "commits" are then txns, one per write).
 *
 *   bench_store [-t THREADS] [-n WRITES_PER_THREAD] [-s OBJECT_BYTES] [-d DIR] [-e ENDPOINTS]
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kerr.h"
#include "common/util.h"
#include "store/store.h"

struct run {
	struct store *s;
	int id, n;
	const char *blob;
	int64_t *lat_ns; /* n entries */
	int failures;
};

static int fn_create(void *ctx, json_t *cur, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)rev;
	if (cur)
		return kerr_set(err, EEXIST, "exists");
	*next = json_deep_copy(ctx);
	return STORE_WRITE;
}

static void *writer(void *arg)
{
	struct run *r = arg;
	for (int i = 0; i < r->n; i++) {
		char name[64], key[96];
		snprintf(name, sizeof name, "bench-%d-%d", r->id, i);
		snprintf(key, sizeof key, "tasks/bench/%s", name);
		json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "keel/v1",
		                      "kind", "Task", "metadata", "name", name, "namespace",
		                      "bench", "spec", "image", r->blob);
		int64_t t0 = time_mono_ns();
		if (store_update(r->s, key, fn_create, o, NULL, NULL, NULL) != STORE_WRITE)
			r->failures++;
		r->lat_ns[i] = time_mono_ns() - t0;
		json_decref(o);
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static const char *etcd_endpoints; /* -e: NULL for LMDB */

static int bench(const char *base, const char *label, unsigned max_batch, int threads, int each,
                 const char *blob)
{
	static int seq;
	char prefix[64];
	snprintf(prefix, sizeof prefix, "/keel-bench-%ld-%d/", (long)getpid(), ++seq);
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/bench-store-XXXXXX", base);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench_store: mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	struct store_options o = {.map_size = (size_t)1 << 30,
	                          .max_batch = max_batch,
	                          .etcd_endpoints = etcd_endpoints,
	                          .etcd_prefix = prefix};
	struct store *s = NULL;
	struct kerr err = KERR_INIT;
	if (store_open(dir, &o, &s, &err) < 0) {
		fprintf(stderr, "bench_store: %s\n", kerr_msg(&err));
		return 1;
	}
	pthread_t *t = xcalloc((size_t)threads, sizeof *t);
	struct run *r = xcalloc((size_t)threads, sizeof *r);
	int64_t *lat = xcalloc((size_t)threads * (size_t)each, sizeof *lat);
	int64_t t0 = time_mono_ns();
	for (int i = 0; i < threads; i++) {
		r[i] = (struct run){s, i, each, blob, lat + (size_t)i * (size_t)each, 0};
		pthread_create(&t[i], NULL, writer, &r[i]);
	}
	int failures = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		failures += r[i].failures;
	}
	double secs = (double)(time_mono_ns() - t0) / 1e9;
	struct store_stats st;
	store_get_stats(s, &st);
	size_t total = (size_t)threads * (size_t)each;
	qsort(lat, total, sizeof *lat, cmp_i64);
	double cpw = st.writes ? (double)st.commits / (double)st.writes : 0;
	printf("%-14s %7d %8llu %8.2f %10.0f %9llu %9.3f %9.3f %9.2f %9.2f\n", label, threads,
	       (unsigned long long)st.writes, secs, (double)st.writes / secs,
	       (unsigned long long)st.commits, cpw, 2 * cpw, (double)lat[total / 2] / 1e6,
	       (double)lat[total * 99 / 100] / 1e6);
	store_close(s);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	free(r);
	free(lat);
	if (failures)
		fprintf(stderr, "bench_store: %s: %d writes failed\n", label, failures);
	return failures != 0;
}

int main(int argc, char **argv)
{
	int threads = 8, each = 500, size = 256, c;
	const char *base = getenv("KEEL_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	while ((c = getopt(argc, argv, "t:n:s:d:e:h")) != -1) {
		switch (c) {
		case 't':
			threads = atoi(optarg);
			break;
		case 'n':
			each = atoi(optarg);
			break;
		case 's':
			size = atoi(optarg);
			break;
		case 'd':
			base = optarg;
			break;
		case 'e':
			etcd_endpoints = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_store [-t THREADS] [-n WRITES_PER_THREAD] "
			                "[-s OBJECT_BYTES] [-d DIR] [-e ENDPOINTS]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (threads < 1 || each < 1 || size < 0) {
		fprintf(stderr, "bench_store: -t and -n must be >= 1, -s >= 0\n");
		return 2;
	}
	mkdir(base, 0700);
	char *blob = xmalloc((size_t)size + 1);
	memset(blob, 'x', (size_t)size);
	blob[size] = '\0';
	printf("bench_store: %d threads x %d creates, ~%d-byte objects, data in %s\n", threads,
	       each, size, base);
	printf("%-14s %7s %8s %8s %10s %9s %9s %9s %9s %9s\n", "mode", "threads", "writes", "secs",
	       "writes/s", "commits", "commit/w", "fsync/w", "p50 ms", "p99 ms");
	const char *e = etcd_endpoints;
	etcd_endpoints = NULL;
	int rc = bench(base, "group-commit", 256, threads, each, blob);
	rc |= bench(base, "max_batch=1", 1, threads, each, blob);
	rc |= bench(base, "1 thread", 256, 1, each, blob);
	if ((etcd_endpoints = e)) {
		rc |= bench(base, "etcd", 256, threads, each, blob);
		rc |= bench(base, "etcd 1 thread", 256, 1, each, blob);
	}
	free(blob);
	return rc;
}
