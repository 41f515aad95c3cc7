/*
 * bench_api_create — issue 8, target #3: durable creates/s through the API,
 * 32 concurrent clients, 1 KiB objects, against a real `keel server`
 * (fsync on, its default; --controllers=none, so only the API and the
 * store are measured) and, in the same run, against etcd 3.4 through its
 * JSON gateway (/v3/kv/put), putting the same 1 KiB values at the same
 * concurrency, and against a second keel server on the etcd store
 * (--store etcd on that same etcd, a prefix of its own): the price of HA,
 * keel on etcd against keel on LMDB and against raw etcd.
 *
 * The machine is noisy, so the systems alternate in slices (keel, keel on
 * etcd, etcd, etcd, keel on etcd, keel, ...) against servers started once,
 * and the figures are the ratios of their totals. Each client is a thread with one libcurl easy
 * handle per server, kept alive across slices, so a create costs one HTTP round trip and no
 * connection setup; the client's own CPU time is printed so that one can
 * tell whether it, not the server, was the limit.
 *
 * Prints a table on stderr and one JSON line per figure on stdout.
 *
 *   bench_api_create [--smoke] [--clients N] [--slice SECS] [--rounds N]
 *                    [--size BYTES] [--keel PATH] [--no-etcd]
 *                    [--no-keel-etcd] [-- KEEL-SERVER-FLAGS...]
 * --no-etcd: keel on LMDB alone; --no-keel-etcd: no keel on etcd.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_srv.h"
#include "bench_stat.h"
#include "common/util.h"

#ifndef KEEL_BIN
#define KEEL_BIN "keel"
#endif

/* KEEL: on LMDB; KETCD: keel on the etcd store; ETCD: raw etcd puts */
enum { KEEL, KETCD, ETCD, NSYS };
static const char *const sys_name[NSYS] = {"keel", "keel-etcd", "etcd"};
#define IS_KEEL(s) ((s) != ETCD)

struct client {
	int id;
	int sys; /* this slice's server */
	CURL *h[NSYS];
	struct curl_slist *hdr[NSYS];
	char url[NSYS][256];
	uint64_t seq;
	uint64_t ok[NSYS], failed[NSYS];
	char first_error[300];
	struct bench_hist lat[NSYS];
	bool measure;
};

static size_t obj_size = 1024;
static atomic_int_fast64_t deadline_ns;

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p, (void)ud;
	return sz * n;
}

/* The Task body, exactly obj_size bytes (an annotation pads it). */
static size_t task_body(char *buf, size_t cap, const char *name)
{
	static const char fmt[] = "{\"apiVersion\":\"keel/v1\",\"kind\":\"Task\",\"metadata\":{"
	                          "\"name\":\"%s\",\"annotations\":{\"pad\":\"%s\"}},"
	                          "\"spec\":{\"image\":\"busybox\"}}";
	int bare = snprintf(NULL, 0, fmt, name, "");
	size_t pad = obj_size > (size_t)bare ? obj_size - (size_t)bare : 0;
	char *p = xmalloc(pad + 1);
	memset(p, 'x', pad);
	p[pad] = '\0';
	int n = snprintf(buf, cap, fmt, name, p);
	free(p);
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

static size_t b64(char *out, const unsigned char *in, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

/* etcd: the same value under the key Kubernetes would use for it. */
static size_t etcd_body(char *buf, const char *name, const char *value, size_t vlen)
{
	char key[128];
	int kn = snprintf(key, sizeof key, "/registry/tasks/default/%s", name);
	size_t o = (size_t)sprintf(buf, "{\"key\":\"");
	o += b64(buf + o, (const unsigned char *)key, (size_t)kn);
	o += (size_t)sprintf(buf + o, "\",\"value\":\"");
	o += b64(buf + o, (const unsigned char *)value, vlen);
	o += (size_t)sprintf(buf + o, "\"}");
	return o;
}

static void one_request(struct client *c, char *task, char *body)
{
	char name[64];
	snprintf(name, sizeof name, "c-%d-%llu", c->id, (unsigned long long)c->seq++);
	size_t tn = task_body(task, obj_size + 512, name), bn = tn;
	const char *send = task;
	if (c->sys == ETCD) {
		bn = etcd_body(body, name, task, tn);
		send = body;
	}
	CURL *h = c->h[c->sys];
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, send);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)bn);
	int64_t t0 = time_mono_ns();
	CURLcode rc = curl_easy_perform(h);
	int64_t dt = time_mono_ns() - t0;
	long code = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	bool good = IS_KEEL(c->sys) ? code == 201 || code == 200 : code == 200;
	if (!c->measure)
		return;
	if (good) {
		c->ok[c->sys]++;
		bench_hist_add(&c->lat[c->sys], dt);
	} else {
		if (!c->failed[c->sys]++)
			snprintf(c->first_error, sizeof c->first_error, "%s: %s, HTTP %ld",
			         sys_name[c->sys], rc ? curl_easy_strerror(rc) : "answered", code);
	}
}

static void *client_run(void *arg)
{
	struct client *c = arg;
	char *task = xmalloc(obj_size + 512), *body = xmalloc(2 * obj_size + 1024);
	while (time_mono_ns() < atomic_load(&deadline_ns))
		one_request(c, task, body);
	free(task);
	free(body);
	return NULL;
}

static void client_init(struct client *c, int id, const struct bench_srv *srv)
{
	*c = (struct client){.id = id};
	for (int s = 0; s < NSYS; s++) {
		bench_hist_init(&c->lat[s]);
		if (!srv[s].pid)
			continue;
		c->h[s] = curl_easy_init();
		c->hdr[s] = curl_slist_append(NULL, "Content-Type: application/json");
		c->hdr[s] = curl_slist_append(c->hdr[s], "Expect:");
		if (srv[s].auth[0])
			c->hdr[s] = curl_slist_append(c->hdr[s], srv[s].auth);
		snprintf(c->url[s], sizeof c->url[s], "%s%s", srv[s].url,
		         IS_KEEL(s) ? "/apis/keel/v1/namespaces/default/tasks" : "/v3/kv/put");
		curl_easy_setopt(c->h[s], CURLOPT_URL, c->url[s]);
		curl_easy_setopt(c->h[s], CURLOPT_HTTPHEADER, c->hdr[s]);
		curl_easy_setopt(c->h[s], CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(c->h[s], CURLOPT_TIMEOUT_MS, 30000L);
		curl_easy_setopt(c->h[s], CURLOPT_NOSIGNAL, 1L);
	}
}

static void client_free(struct client *c)
{
	for (int s = 0; s < NSYS; s++) {
		if (c->h[s])
			curl_easy_cleanup(c->h[s]);
		curl_slist_free_all(c->hdr[s]);
		bench_hist_free(&c->lat[s]);
	}
}

/* CPU seconds (user + system) of a process; -1 if unknown. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	/* after "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct totals {
	double secs[NSYS], srv_cpu[NSYS], cli_cpu[NSYS];
	double commits, writes; /* keel's LMDB store, over the measured slices */
};

static size_t grow(char *p, size_t sz, size_t n, void *ud)
{
	struct {
		char *b;
		size_t len;
	} *m = ud;
	m->b = xrealloc(m->b, m->len + sz * n + 1);
	memcpy(m->b + m->len, p, sz * n);
	m->len += sz * n;
	m->b[m->len] = '\0';
	return sz * n;
}

/* keel's store counters from /metrics: what group commit batched. */
static void keel_commits(const struct bench_srv *k, double *commits, double *writes)
{
	struct {
		char *b;
		size_t len;
	} m = {NULL, 0};
	char url[300];
	snprintf(url, sizeof url, "%s/metrics", k->url);
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, k->auth);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
	*commits = *writes = NAN;
	if (curl_easy_perform(h) == CURLE_OK && m.b) {
		const char *c = strstr(m.b, "\nkeel_store_commits_total ");
		const char *w = strstr(m.b, "\nkeel_store_writes_total ");
		if (c)
			*commits = atof(c + strlen("\nkeel_store_commits_total "));
		if (w)
			*writes = atof(w + strlen("\nkeel_store_writes_total "));
	}
	free(m.b);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
}

/* One slice against server sys: all clients for secs seconds. */
static double run_slice(struct client *cl, int n, int sys, double secs, bool measure,
                        const struct bench_srv *srv, struct totals *t)
{
	pthread_t *th = xcalloc((size_t)n, sizeof *th);
	uint64_t before = 0, after = 0;
	for (int i = 0; i < n; i++) {
		cl[i].sys = sys;
		cl[i].measure = measure;
		before += cl[i].ok[sys];
	}
	double s0 = proc_cpu(srv[sys].pid), c0 = self_cpu(), k0c = 0, k0w = 0, k1c = 0, k1w = 0;
	if (sys == KEEL)
		keel_commits(&srv[KEEL], &k0c, &k0w);
	int64_t t0 = time_mono_ns();
	atomic_store(&deadline_ns, t0 + (int64_t)(secs * 1e9));
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, client_run, &cl[i]);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	double el = (double)(time_mono_ns() - t0) / 1e9;
	if (sys == KEEL)
		keel_commits(&srv[KEEL], &k1c, &k1w);
	for (int i = 0; i < n; i++)
		after += cl[i].ok[sys];
	free(th);
	double rate = (double)(after - before) / el;
	if (measure) {
		t->secs[sys] += el;
		t->srv_cpu[sys] += proc_cpu(srv[sys].pid) - s0;
		t->cli_cpu[sys] += self_cpu() - c0;
		t->commits += k1c - k0c;
		t->writes += k1w - k0w;
		fprintf(stderr, "  slice %-9s %6.2fs %9.0f/s", sys_name[sys], el, rate);
		if (sys == KEEL)
			fprintf(stderr, "  %.1f writes/commit", (k1w - k0w) / (k1c - k0c));
		fprintf(stderr, "\n");
	}
	return rate;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_api_create [--smoke] [--clients N] [--slice SECS] [--rounds N]\n"
	           "                        [--size BYTES] [--keel PATH] [--no-etcd]"
	           " [--no-keel-etcd] [-- KEEL-SERVER-FLAGS...]\n");
}

struct args {
	int clients, rounds;
	double slice;
	const char *keel;
	bool etcd, keel_etcd;
	char **extra;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option lo[] = {
	    {"smoke", no_argument, NULL, 'S'},       {"clients", required_argument, NULL, 'c'},
	    {"slice", required_argument, NULL, 's'}, {"rounds", required_argument, NULL, 'r'},
	    {"size", required_argument, NULL, 'z'},  {"keel", required_argument, NULL, 'k'},
	    {"no-etcd", no_argument, NULL, 'E'},     {"no-keel-etcd", no_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
	*a =
	    (struct args){32, 4, 3.0, getenv("KEEL") ? getenv("KEEL") : KEEL_BIN, true, true, NULL};
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'S':
			a->slice = 0.5, a->rounds = 1;
			break;
		case 'c':
			a->clients = atoi(optarg);
			break;
		case 's':
			a->slice = atof(optarg);
			break;
		case 'r':
			a->rounds = atoi(optarg);
			break;
		case 'z':
			obj_size = (size_t)atol(optarg);
			break;
		case 'k':
			a->keel = optarg;
			break;
		case 'E':
			a->etcd = false;
			break;
		case 'K':
			a->keel_etcd = false;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	a->extra = argv + optind;
	a->keel_etcd = a->keel_etcd && a->etcd;
	if (a->clients < 1 || a->rounds < 1 || !(a->slice > 0) || obj_size < 200 ||
	    obj_size > (1 << 20)) {
		fprintf(stderr,
		        "bench_api_create: --clients and --rounds must be >= 1, --slice > 0, "
		        "--size between 200 and 1048576\n");
		return -1;
	}
	return 0;
}

static void report(struct client *cl, int n, const struct args *a, const struct totals *t)
{
	struct bench_hist lat[NSYS];
	uint64_t ok[NSYS] = {0}, failed[NSYS] = {0};
	double rate[NSYS];
	for (int s = 0; s < NSYS; s++) {
		bench_hist_init(&lat[s]);
		for (int i = 0; i < n; i++) {
			bench_hist_merge(&lat[s], &cl[i].lat[s]);
			ok[s] += cl[i].ok[s];
			failed[s] += cl[i].failed[s];
		}
		rate[s] = t->secs[s] > 0 ? (double)ok[s] / t->secs[s] : NAN;
	}
	fprintf(stderr, "%-9s %9s %8s %10s %8s %8s %10s %10s\n", "", "ok", "failed", "per s",
	        "p50 ms", "p99 ms", "server cpu", "client cpu");
	for (int s = 0; s < NSYS; s++)
		if (ok[s] || failed[s])
			fprintf(stderr, "%-9s %9llu %8llu %10.0f %8.2f %8.2f %9.0f%% %9.0f%%\n",
			        sys_name[s], (unsigned long long)ok[s],
			        (unsigned long long)failed[s], rate[s], bench_hist_ms(&lat[s], 0.5),
			        bench_hist_ms(&lat[s], 0.99), 100 * t->srv_cpu[s] / t->secs[s],
			        100 * t->cli_cpu[s] / t->secs[s]);
	fprintf(stderr, "keel store: %.0f writes in %.0f commits, %.1f writes/commit\n", t->writes,
	        t->commits, t->writes / t->commits);
	for (int i = 0; i < n; i++)
		if (cl[i].first_error[0]) {
			fprintf(stderr, "first failure: %s\n", cl[i].first_error);
			break;
		}
	char fig[128];
	snprintf(fig, sizeof fig, "durable creates/s, %d clients, %zu B objects", a->clients,
	         obj_size);
	double ratio = rate[KEEL] / rate[ETCD];
	bench_json("api_create", fig, rate[KEEL], "creates/s", 10000, rate[ETCD], ratio);
	bench_json("api_create", "creates/s vs etcd puts/s", ratio, "x", 3, NAN, NAN);
	bench_json("api_create", "create p50 latency", bench_hist_ms(&lat[KEEL], 0.5), "ms", NAN,
	           bench_hist_ms(&lat[ETCD], 0.5),
	           bench_hist_ms(&lat[KEEL], 0.5) / bench_hist_ms(&lat[ETCD], 0.5));
	bench_json("api_create", "create p99 latency", bench_hist_ms(&lat[KEEL], 0.99), "ms", NAN,
	           bench_hist_ms(&lat[ETCD], 0.99),
	           bench_hist_ms(&lat[KEEL], 0.99) / bench_hist_ms(&lat[ETCD], 0.99));
	if (a->keel_etcd) {
		snprintf(fig, sizeof fig,
		         "durable creates/s on the etcd store, %d clients, %zu B objects",
		         a->clients, obj_size);
		bench_json("api_create", fig, rate[KETCD], "creates/s", NAN, rate[ETCD],
		           rate[KETCD] / rate[ETCD]);
		bench_json("api_create", "etcd store creates/s vs LMDB store creates/s",
		           rate[KETCD] / rate[KEEL], "x", NAN, NAN, NAN);
		bench_json("api_create", "create p99 latency on the etcd store",
		           bench_hist_ms(&lat[KETCD], 0.99), "ms", NAN,
		           bench_hist_ms(&lat[KEEL], 0.99),
		           bench_hist_ms(&lat[KETCD], 0.99) / bench_hist_ms(&lat[KEEL], 0.99));
	}
	for (int s = 0; s < NSYS; s++)
		bench_hist_free(&lat[s]);
}

int main(int argc, char **argv)
{
	struct args a;
	if (parse_args(argc, argv, &a) < 0)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct bench_srv srv[NSYS] = {{0}, {0}, {0}};
	if (bench_keel_start(&srv[KEEL], a.keel, (const char *const *)a.extra) < 0)
		return 1;
	if (a.etcd && bench_etcd_start(&srv[ETCD]) < 0) {
		bench_srv_stop(&srv[KEEL]);
		return 1;
	}
	if (a.keel_etcd && bench_keel_etcd_start(&srv[KETCD], a.keel, &srv[ETCD],
	                                         (const char *const *)a.extra) < 0) {
		bench_srv_stop(&srv[ETCD]);
		bench_srv_stop(&srv[KEEL]);
		return 1;
	}
	fprintf(stderr,
	        "bench_api_create: %d clients, %zu-byte objects, %d x %.1fs slices each; "
	        "keel %s, keel on etcd %s, etcd %s\n",
	        a.clients, obj_size, a.rounds, a.slice, srv[KEEL].url,
	        a.keel_etcd ? srv[KETCD].url : "(not run)", a.etcd ? srv[ETCD].url : "(not run)");
	struct client *cl = xcalloc((size_t)a.clients, sizeof *cl);
	for (int i = 0; i < a.clients; i++)
		client_init(&cl[i], i, srv);
	struct totals t;
	memset(&t, 0, sizeof t);
	int sys[NSYS], nsys = 0;
	for (int s = 0; s < NSYS; s++)
		if (srv[s].pid)
			sys[nsys++] = s;
	/* warm-up: connections opened, pages touched; not counted */
	for (int i = 0; i < nsys; i++)
		run_slice(cl, a.clients, sys[i], a.slice < 1 ? a.slice / 2 : 0.5, false, srv, &t);
	/* forwards, then backwards, ...: none always goes first */
	for (int r = 0; r < a.rounds; r++)
		for (int i = 0; i < nsys; i++)
			run_slice(cl, a.clients, sys[(r & 1) ? nsys - 1 - i : i], a.slice, true,
			          srv, &t);
	report(cl, a.clients, &a, &t);
	uint64_t failed = 0;
	for (int i = 0; i < a.clients; i++) {
		for (int k = 0; k < NSYS; k++)
			failed += cl[i].failed[k];
		client_free(&cl[i]);
	}
	free(cl);
	for (int s = 0; s < NSYS; s++)
		bench_srv_stop(&srv[s]);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
