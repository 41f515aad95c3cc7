/*
 * bench_srv — the servers an API benchmark measures, started fresh for
 * each run: a real `keel server` and, as a baseline, a real etcd, each on
 * a free loopback port with its data directory in a temp dir that is
 * removed when the server is stopped. Both keep their defaults for
 * durability (keel and etcd fsync every acknowledged write).
 *
 * Not thread-safe: start and stop from the main thread.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct bench_srv {
	pid_t pid;
	char dir[512];  /* temp dir: data dir, log */
	char url[128];  /* http://127.0.0.1:PORT, no trailing slash */
	char auth[256]; /* "Authorization: Bearer ..." for keel; "" for etcd */
	char log[600];  /* the server's stdout+stderr */
};

/* Starts `KEEL server --controllers=none --data-dir DIR/data --listen
 * 127.0.0.1:0 EXTRA...` (extra: NULL-terminated, may be NULL) and waits
 * until /healthz answers (up to 20 s). keel: the binary. Returns 0, or -1
 * after printing why to stderr (the temp dir is removed). */
int bench_keel_start(struct bench_srv *s, const char *keel, const char *const *extra);

/* bench_keel_start on the etcd store: `--store etcd --etcd-endpoints
 * ETCD_URL --etcd-prefix /keel-bench-N/ EXTRA...` (etcd already started by
 * bench_etcd_start; a fresh prefix per call, so several keel servers can
 * share one etcd without seeing each other's objects). */
int bench_keel_etcd_start(struct bench_srv *s, const char *keel, const struct bench_srv *etcd,
                          const char *const *extra);

/* Starts etcd (PATH lookup of "etcd", or $ETCD) on two free loopback ports
 * and waits until a range request answers (up to 20 s). Returns 0, or -1
 * after printing why to stderr. */
int bench_etcd_start(struct bench_srv *s);

/* SIGTERM, wait (SIGKILL after 10 s), remove the temp dir. Accepts a
 * never-started (pid 0) server. */
void bench_srv_stop(struct bench_srv *s);

/* The temp base: $KEEL_TEST_TMP, else $TMPDIR, else /tmp. */
const char *bench_tmp_base(void);

/* Raises RLIMIT_NOFILE to its hard limit (watch benchmarks hold many
 * sockets). */
void bench_raise_nofile(void);
