/*
 * bench_watch — issue 8, target #4: watch fan-out. W watchers (1,000) on
 * one `keel server` while a writer creates Tasks at R writes/s (1,000) for
 * D seconds (30): every event must reach every watcher, and the p99 from
 * write to delivery must stay within 50 ms.
 *
 * The watchers are plain sockets in one process, on epoll, speaking just
 * enough HTTP/1.1 (status line, chunked body, newline-delimited events) to
 * count events: a libcurl handle per stream would cost the client more
 * than the server. Latency is per event and per watcher: the writer
 * records the monotonic time just before it sends the create of object
 * "e-N", the watcher side takes the time when a read returns the event for
 * "e-N" and subtracts. Both sides run in this process, so one clock.
 *
 * The writes are open loop: write N is due at t0 + N/R whatever became of
 * the earlier ones, and enough writers (threads, one connection each) are
 * in flight to keep that rate while a durable create takes up to 100 ms
 * (--writers, default R/10, at least 8): with 8, a create taking 7.6 ms
 * would cap the offer at ~1,050/s, and any slower one below the asked rate.
 * A write that goes out more than 10 ms after it was due is counted late:
 * all the writers were waiting for answers (or this process got no CPU),
 * so the benchmark, not the server, set the rate (raise --writers). A late
 * write's latency is still timed from its send.
 *
 * When the server cannot take R writes/s, the writers stop at 2 x D
 * seconds and the figures cover the writes made (the achieved rate is one
 * of them).
 *
 * Before the timed writes a marker object is created and every watcher
 * must have seen it: the streams are live, and connection setup is not
 * counted as delivery latency.
 *
 * Prints a summary on stderr and one JSON line per figure on stdout.
 *
 *   bench_watch [--smoke] [--watchers N] [--rate N] [--seconds S]
 *               [--writers N] [--keel PATH] [--etcd] [-- KEEL-SERVER-FLAGS...]
 *
 * --etcd: the server runs on the etcd store (--store etcd) of an etcd this
 * benchmark starts; the figures' bench is then "watch_fanout_etcd". The
 * server CPU figure is keel's alone, not etcd's.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_srv.h"
#include "bench_stat.h"
#include "common/util.h"

#ifndef KEEL_BIN
#define KEEL_BIN "keel"
#endif

#define LATE_NS ((int64_t)10000000)

enum { ST_HDR, ST_SIZE, ST_DATA, ST_CRLF, ST_DONE };

struct watcher {
	int fd;
	int state;
	size_t chunk_left;
	char *buf; /* headers, then the line being assembled */
	size_t len, cap;
	char szline[40];
	size_t szlen;
	uint64_t *seen; /* bitmap over e-N */
	uint64_t count, dups;
	bool ready, error_event;
};

static struct {
	int nwatchers, rate, writers;
	double seconds;
	uint64_t nwrites;
	_Atomic int64_t *send_ns;  /* per e-N: when its create was sent */
	atomic_uint_fast64_t next; /* the writers' next N */
	atomic_uint_fast64_t write_ok, write_failed;
	atomic_uint_fast64_t late; /* writes sent > LATE_NS after they were due */
	atomic_int ready, ended, stop;
	atomic_uint_fast64_t delivered;
	int64_t t0;
	struct bench_srv srv;
	char first_error[300];
	pthread_mutex_t err_lock;
	struct bench_hist write_hist; /* create sent -> its answer (under err_lock) */
} g;

__attribute__((format(printf, 1, 2))) static void note_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&g.err_lock);
	if (!g.first_error[0])
		vsnprintf(g.first_error, sizeof g.first_error, fmt, ap);
	pthread_mutex_unlock(&g.err_lock);
	va_end(ap);
}

static void line(struct watcher *w, const char *p, size_t n, int64_t now, struct bench_hist *h)
{
	static const char pat[] = "\"name\":\"e-";
	const char *m = memmem(p, n, pat, sizeof pat - 1);
	if (m) {
		uint64_t seq = strtoull(m + sizeof pat - 1, NULL, 10);
		if (seq >= g.nwrites)
			return;
		uint64_t bit = (uint64_t)1 << (seq & 63);
		if (w->seen[seq >> 6] & bit) {
			w->dups++;
			return;
		}
		w->seen[seq >> 6] |= bit;
		w->count++;
		atomic_fetch_add_explicit(&g.delivered, 1, memory_order_relaxed);
		bench_hist_add(h,
		               now - atomic_load_explicit(&g.send_ns[seq], memory_order_acquire));
		return;
	}
	if (!w->ready && memmem(p, n, "\"name\":\"ready\"", 14)) {
		w->ready = true;
		atomic_fetch_add(&g.ready, 1);
	} else if (memmem(p, n, "\"type\":\"ERROR\"", 14)) {
		w->error_event = true;
		note_error("watch ERROR event: %.*s", (int)(n < 200 ? n : 200), p);
	}
}

static void buf_add(struct watcher *w, const char *p, size_t n)
{
	if (w->len + n + 1 > w->cap) {
		w->cap = (w->len + n + 1) * 2;
		w->buf = xrealloc(w->buf, w->cap);
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/* Chunk payload: split into lines, whole lines straight from the read
 * buffer, partial ones through w->buf. */
static void payload(struct watcher *w, const char *p, size_t n, int64_t now, struct bench_hist *h)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		if (!nl) {
			buf_add(w, p, n);
			return;
		}
		size_t k = (size_t)(nl - p);
		if (w->len) {
			buf_add(w, p, k);
			line(w, w->buf, w->len, now, h);
			w->len = 0;
		} else {
			line(w, p, k, now, h);
		}
		p += k + 1, n -= k + 1;
	}
}

static void end(struct watcher *w)
{
	if (w->state != ST_DONE) {
		w->state = ST_DONE;
		atomic_fetch_add(&g.ended, 1);
	}
}

static bool headers(struct watcher *w, const char **p, size_t *n)
{
	size_t old = w->len;
	buf_add(w, *p, *n);
	char *e = strstr(w->buf, "\r\n\r\n");
	if (!e)
		return false;
	size_t used = (size_t)(e + 4 - w->buf) - old;
	*p += used, *n -= used;
	if (strncmp(w->buf, "HTTP/1.1 200", 12) != 0) {
		note_error("watch refused: %.120s", w->buf);
		end(w);
		return false;
	}
	w->len = 0;
	w->state = ST_SIZE;
	return true;
}

static void feed(struct watcher *w, const char *p, size_t n, int64_t now, struct bench_hist *h)
{
	while (n && w->state != ST_DONE) {
		switch (w->state) {
		case ST_HDR:
			if (!headers(w, &p, &n))
				return;
			break;
		case ST_SIZE: {
			char c = *p++;
			n--;
			if (c != '\n') {
				if (w->szlen < sizeof w->szline - 1)
					w->szline[w->szlen++] = c;
				break;
			}
			w->szline[w->szlen] = '\0';
			w->szlen = 0;
			w->chunk_left = strtoul(w->szline, NULL, 16);
			w->state = w->chunk_left ? ST_DATA : ST_DONE;
			if (!w->chunk_left)
				end(w);
			break;
		}
		case ST_DATA: {
			size_t k = n < w->chunk_left ? n : w->chunk_left;
			payload(w, p, k, now, h);
			p += k, n -= k;
			w->chunk_left -= k;
			if (!w->chunk_left)
				w->state = ST_CRLF, w->szlen = 0;
			break;
		}
		case ST_CRLF:
			/* the CRLF after a chunk: skip through its LF */
			if (*p++ == '\n')
				w->state = ST_SIZE;
			n--;
			break;
		}
	}
}

static int watcher_connect(struct watcher *w, int ep, int port, const char *auth)
{
	w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	/* blocking connect and send: the request fits any socket buffer */
	if (connect(w->fd, (struct sockaddr *)&a, sizeof a) < 0)
		return -1;
	char req[512];
	int n = snprintf(req, sizeof req,
	                 "GET /apis/keel/v1/namespaces/default/tasks?watch=1&resourceVersion=0 "
	                 "HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n\r\n",
	                 auth);
	if (send(w->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
	return epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev);
}

struct reader {
	struct watcher *w;
	int n, ep;
	struct bench_hist hist;
};

static void *reader_run(void *arg)
{
	struct reader *r = arg;
	struct epoll_event evs[256];
	char *buf = xmalloc(1 << 16);
	while (!atomic_load(&g.stop)) {
		int n = epoll_wait(r->ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct watcher *w = evs[i].data.ptr;
			ssize_t k = recv(w->fd, buf, 1 << 16, MSG_DONTWAIT);
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
				epoll_ctl(r->ep, EPOLL_CTL_DEL, w->fd, NULL);
				end(w);
				continue;
			}
			if (k > 0)
				feed(w, buf, (size_t)k, time_mono_ns(), &r->hist);
		}
	}
	free(buf);
	return NULL;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p, (void)ud;
	return sz * n;
}

static bool create(CURL *h, const char *name)
{
	char body[256];
	snprintf(body, sizeof body,
	         "{\"apiVersion\":\"keel/v1\",\"kind\":\"Task\",\"metadata\":{\"name\":\"%s\"},"
	         "\"spec\":{\"image\":\"busybox\"}}",
	         name);
	curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body);
	char cerr[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	long code = 0;
	CURLcode rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (code == 201 || code == 200)
		return true;
	/* HTTP 0 is no response at all: say what curl saw */
	note_error("create %s: HTTP %ld (%s%s%s)", name, code, curl_easy_strerror(rc),
	           cerr[0] ? ": " : "", cerr);
	return false;
}

static CURL *writer_handle(struct curl_slist **hdr)
{
	/* the writers make their handles at once: a buffer of their own (curl
	 * copies it), since a shared static one being rewritten — glibc's
	 * snprintf clears the first byte before it formats — handed some of
	 * them an empty or cut-off URL, and every create of such a writer
	 * failed without reaching the server ("HTTP 0") */
	char url[256];
	snprintf(url, sizeof url, "%s/apis/keel/v1/namespaces/default/tasks", g.srv.url);
	CURL *h = curl_easy_init();
	*hdr = curl_slist_append(NULL, "Content-Type: application/json");
	*hdr = curl_slist_append(*hdr, g.srv.auth);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	return h;
}

static void sleep_until(int64_t t)
{
	int64_t d = t - time_mono_ns();
	if (d > 0) {
		struct timespec ts = {d / 1000000000, d % 1000000000};
		nanosleep(&ts, NULL);
	}
}

/* Writers share one schedule: write N goes out at t0 + N/rate, or at once
 * when the writers are behind it. */
static void *writer_run(void *arg)
{
	(void)arg;
	struct curl_slist *hdr;
	CURL *h = writer_handle(&hdr);
	struct bench_hist hist;
	bench_hist_init(&hist);
	for (;;) {
		uint64_t i = atomic_fetch_add(&g.next, 1);
		/* a server that cannot keep the rate gets twice the time, not forever */
		if (i >= g.nwrites || time_mono_ns() > g.t0 + (int64_t)(2e9 * g.seconds))
			break;
		int64_t due = g.t0 + (int64_t)((double)i * 1e9 / g.rate);
		sleep_until(due);
		char name[32];
		snprintf(name, sizeof name, "e-%llu", (unsigned long long)i);
		int64_t sent = time_mono_ns();
		if (sent - due > LATE_NS)
			atomic_fetch_add(&g.late, 1);
		atomic_store_explicit(&g.send_ns[i], sent, memory_order_release);
		if (create(h, name))
			atomic_fetch_add(&g.write_ok, 1);
		else
			atomic_fetch_add(&g.write_failed, 1);
		bench_hist_add(&hist, time_mono_ns() - sent);
	}
	pthread_mutex_lock(&g.err_lock);
	bench_hist_merge(&g.write_hist, &hist);
	pthread_mutex_unlock(&g.err_lock);
	bench_hist_free(&hist);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_watch [--smoke] [--watchers N] [--rate N] [--seconds S]\n"
	           "                   [--writers N] [--readers N] [--keel PATH] [--etcd]"
	           " [-- KEEL-SERVER-FLAGS...]\n");
}

struct args {
	int readers;
	const char *keel;
	bool etcd;
	char **extra;
};

static const char *bench_name = "watch_fanout";
static const char *fig_prefix = ""; /* "etcd store: " with --etcd, for the table */

static void emit(const char *figure, double value, const char *unit, double target, double baseline,
                 double ratio)
{
	char f[200];
	snprintf(f, sizeof f, "%s%s", fig_prefix, figure);
	bench_json(bench_name, f, value, unit, target, baseline, ratio);
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option lo[] = {
	    {"smoke", no_argument, NULL, 'S'},         {"watchers", required_argument, NULL, 'w'},
	    {"rate", required_argument, NULL, 'r'},    {"seconds", required_argument, NULL, 's'},
	    {"writers", required_argument, NULL, 'W'}, {"readers", required_argument, NULL, 'R'},
	    {"keel", required_argument, NULL, 'k'},    {"etcd", no_argument, NULL, 'E'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
	g.nwatchers = 1000, g.rate = 1000, g.seconds = 30, g.writers = 0;
	*a = (struct args){1, getenv("KEEL") ? getenv("KEEL") : KEEL_BIN, false, NULL};
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'S':
			g.nwatchers = 100, g.seconds = 2;
			break;
		case 'w':
			g.nwatchers = atoi(optarg);
			break;
		case 'r':
			g.rate = atoi(optarg);
			break;
		case 's':
			g.seconds = atof(optarg);
			break;
		case 'W':
			g.writers = atoi(optarg);
			break;
		case 'R':
			a->readers = atoi(optarg);
			break;
		case 'k':
			a->keel = optarg;
			break;
		case 'E':
			a->etcd = true;
			bench_name = "watch_fanout_etcd";
			fig_prefix = "etcd store: ";
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
	if (!g.writers) /* in flight enough for R/s at 100 ms a create */
		g.writers = g.rate / 10 > 8 ? g.rate / 10 : 8;
	if (g.nwatchers < 1 || g.rate < 1 || !(g.seconds > 0) || g.writers < 1 || a->readers < 1) {
		fprintf(stderr,
		        "bench_watch: --watchers, --rate, --writers, --readers must be >= 1, "
		        "--seconds > 0\n");
		return -1;
	}
	g.nwrites = (uint64_t)(g.rate * g.seconds);
	return 0;
}

/* Waits until cond() or timeout_s pass; true if cond() held. */
static bool wait_for(bool (*cond)(void), double timeout_s)
{
	int64_t until = time_mono_ns() + (int64_t)(timeout_s * 1e9);
	while (!cond()) {
		if (time_mono_ns() > until || atomic_load(&g.ended) >= g.nwatchers)
			return cond();
		sleep_until(time_mono_ns() + 5000000);
	}
	return true;
}

static bool all_ready(void)
{
	return atomic_load(&g.ready) + atomic_load(&g.ended) >= g.nwatchers;
}

static bool all_delivered(void)
{
	return atomic_load(&g.delivered) >= atomic_load(&g.write_ok) * (uint64_t)g.nwatchers;
}

static int connect_all(struct watcher *w, struct reader *rd, int nr)
{
	int port = atoi(strrchr(g.srv.url, ':') + 1);
	for (int i = 0; i < g.nwatchers; i++) {
		w[i].seen = xcalloc((size_t)(g.nwrites / 64 + 1), sizeof(uint64_t));
		if (watcher_connect(&w[i], rd[i % nr].ep, port, g.srv.auth) < 0) {
			fprintf(stderr, "bench_watch: watcher %d: %s\n", i, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* srv_cpu: the server's CPU seconds over the writes; drained_cpu: the same
 * through the last delivery (or the wait for it) */
static void report(struct watcher *w, struct reader *rd, int nr, double write_secs, double srv_cpu,
                   double drained_cpu)
{
	struct bench_hist h;
	bench_hist_init(&h);
	for (int i = 0; i < nr; i++)
		bench_hist_merge(&h, &rd[i].hist);
	uint64_t ok = atomic_load(&g.write_ok), expected = ok * (uint64_t)g.nwatchers;
	uint64_t got = 0, dups = 0;
	int short_watchers = 0, errors = 0;
	for (int i = 0; i < g.nwatchers; i++) {
		got += w[i].count, dups += w[i].dups;
		short_watchers += w[i].count < ok;
		errors += w[i].error_event;
	}
	double wrate = (double)ok / write_secs;
	/* the fan-out's cost, less noisy than the latencies on a shared machine:
	 * the server's CPU time (all threads) over the writes, per event delivered */
	double cpu_per_event_us = got ? drained_cpu * 1e6 / (double)got : NAN;
	fprintf(stderr,
	        "writes: %llu ok, %llu failed, %.0f/s (asked %d/s)\n"
	        "deliveries: %llu of %llu (%llu missing; %d watchers short, %d got an ERROR, "
	        "%llu duplicates)\n"
	        "write->delivery: p50 %.2f ms, p99 %.2f ms, max %.2f ms; server cpu %.0f%%, "
	        "%.2f us per delivered event\n",
	        (unsigned long long)ok, (unsigned long long)atomic_load(&g.write_failed), wrate,
	        g.rate, (unsigned long long)got, (unsigned long long)expected,
	        (unsigned long long)(expected - got), short_watchers, errors,
	        (unsigned long long)dups, bench_hist_ms(&h, 0.5), bench_hist_ms(&h, 0.99),
	        (double)h.max_ns / 1e6, 100 * srv_cpu / write_secs, cpu_per_event_us);
	/* how much of write->delivery is the durable write itself */
	fprintf(stderr, "write (create sent -> 201): p50 %.2f ms, p99 %.2f ms\n",
	        bench_hist_ms(&g.write_hist, 0.5), bench_hist_ms(&g.write_hist, 0.99));
	uint64_t late = atomic_load(&g.late);
	if (late)
		fprintf(stderr,
		        "writes late: %llu went out more than %lld ms after they were due (all %d "
		        "writers waiting, or no CPU): the offer fell short of %d/s (raise "
		        "--writers)\n",
		        (unsigned long long)late, (long long)(LATE_NS / 1000000), g.writers,
		        g.rate);
	if (g.first_error[0])
		fprintf(stderr, "first error: %s\n", g.first_error);
	char fig[160];
	snprintf(fig, sizeof fig, "watch events missing, %d watchers x %llu writes", g.nwatchers,
	         (unsigned long long)ok);
	emit(fig, (double)(expected - got), "events", 0, NAN, NAN);
	emit("writes/s during fan-out", wrate, "writes/s", g.rate, NAN, NAN);
	emit("write->delivery p50", bench_hist_ms(&h, 0.5), "ms", NAN, NAN, NAN);
	emit("write->delivery p99", bench_hist_ms(&h, 0.99), "ms", 50, NAN, NAN);
	emit("writes sent > 10 ms after due", (double)late, "writes", NAN, NAN, NAN);
	emit("write (create -> 201) p99", bench_hist_ms(&g.write_hist, 0.99), "ms", NAN, NAN, NAN);
	emit("server CPU per delivered event", cpu_per_event_us, "us", NAN, NAN, NAN);
	bench_hist_free(&h);
}

static int run(struct watcher *w, struct reader *rd, int nr)
{
	pthread_t *rt = xcalloc((size_t)nr, sizeof *rt), *wt = NULL;
	for (int i = 0; i < nr; i++) {
		bench_hist_init(&rd[i].hist);
		rd[i].ep = epoll_create1(EPOLL_CLOEXEC);
	}
	int rc = 1;
	if (connect_all(w, rd, nr) < 0)
		goto out;
	for (int i = 0; i < nr; i++)
		pthread_create(&rt[i], NULL, reader_run, &rd[i]);
	struct curl_slist *hdr;
	CURL *h = writer_handle(&hdr);
	bool marker = create(h, "ready");
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	if (!marker || !wait_for(all_ready, 60) || atomic_load(&g.ended)) {
		fprintf(stderr, "bench_watch: only %d of %d watchers live (%d ended)%s%s\n",
		        atomic_load(&g.ready), g.nwatchers, atomic_load(&g.ended),
		        g.first_error[0] ? ": " : "", g.first_error);
		goto stop;
	}
	fprintf(stderr, "bench_watch: %d watchers live on %s; %llu writes at %d/s, %d writers\n",
	        g.nwatchers, g.srv.url, (unsigned long long)g.nwrites, g.rate, g.writers);
	wt = xcalloc((size_t)g.writers, sizeof *wt);
	double c0 = proc_cpu(g.srv.pid);
	g.t0 = time_mono_ns() + 10000000;
	for (int i = 0; i < g.writers; i++)
		pthread_create(&wt[i], NULL, writer_run, NULL);
	for (int i = 0; i < g.writers; i++)
		pthread_join(wt[i], NULL);
	double secs = (double)(time_mono_ns() - g.t0) / 1e9, cpu = proc_cpu(g.srv.pid) - c0;
	wait_for(all_delivered, 10);
	report(w, rd, nr, secs, cpu, proc_cpu(g.srv.pid) - c0);
	rc = all_delivered() && !atomic_load(&g.write_failed) ? 0 : 1;
stop:
	atomic_store(&g.stop, 1);
	for (int i = 0; i < nr; i++)
		pthread_join(rt[i], NULL);
out:
	for (int i = 0; i < nr; i++) {
		close(rd[i].ep);
		bench_hist_free(&rd[i].hist);
	}
	free(rt);
	free(wt);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a;
	if (parse_args(argc, argv, &a) < 0)
		return 2;
	bench_raise_nofile();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_mutex_init(&g.err_lock, NULL);
	bench_hist_init(&g.write_hist);
	g.send_ns = xcalloc(g.nwrites + 1, sizeof *g.send_ns);
	struct bench_srv etcd = {0};
	if (a.etcd && bench_etcd_start(&etcd) < 0)
		return 1;
	if ((a.etcd ? bench_keel_etcd_start(&g.srv, a.keel, &etcd, (const char *const *)a.extra)
	            : bench_keel_start(&g.srv, a.keel, (const char *const *)a.extra)) < 0) {
		bench_srv_stop(&etcd);
		return 1;
	}
	struct watcher *w = xcalloc((size_t)g.nwatchers, sizeof *w);
	struct reader *rd = xcalloc((size_t)a.readers, sizeof *rd);
	for (int i = 0; i < g.nwatchers; i++)
		w[i].fd = -1;
	int rc = run(w, rd, a.readers);
	for (int i = 0; i < g.nwatchers; i++) {
		if (w[i].fd >= 0)
			close(w[i].fd);
		free(w[i].buf);
		free(w[i].seen);
	}
	free(w);
	free(rd);
	bench_srv_stop(&g.srv);
	bench_srv_stop(&etcd);
	free((void *)g.send_ns);
	bench_hist_free(&g.write_hist);
	curl_global_cleanup();
	return rc;
}
