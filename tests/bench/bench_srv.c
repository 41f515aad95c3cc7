/*
 * bench_srv — start and stop the servers an API benchmark measures.
 *
 * Each server is a child process with its own temp dir, so a run never
 * sees an earlier run's data, and its log stays in the temp dir until the
 * server is stopped (printed on a failed start, which is when it matters).
 * Readiness is asked over HTTP with libcurl, as the benchmark's clients
 * will ask, not inferred from the log.
 */
#include "bench_srv.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

const char *bench_tmp_base(void)
{
	const char *b = getenv("KEEL_TEST_TMP");
	if (!b || !*b)
		b = getenv("TMPDIR");
	return b && *b ? b : "/tmp";
}

void bench_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p, (void)ud;
	return sz * n;
}

/* 200 from GET (body NULL) or POST url? */
static bool http_ok(const char *url, const char *body)
{
	CURL *c = curl_easy_init();
	if (!c)
		return false;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	long code = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	return code == 200;
}

static void print_log(const struct bench_srv *s)
{
	FILE *f = fopen(s->log, "re");
	if (!f)
		return;
	char line[1024];
	while (fgets(line, sizeof line, f))
		fprintf(stderr, "  | %s", line);
	fclose(f);
}

static int make_dir(struct bench_srv *s, const char *name)
{
	snprintf(s->dir, sizeof s->dir, "%s/bench-%s-XXXXXX", bench_tmp_base(), name);
	if (!mkdtemp(s->dir)) {
		fprintf(stderr, "bench: mkdtemp %s: %s\n", s->dir, strerror(errno));
		s->dir[0] = '\0';
		return -1;
	}
	snprintf(s->log, sizeof s->log, "%s/log", s->dir);
	return 0;
}

static int spawn(struct bench_srv *s, const char *const argv[])
{
	int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "bench: %s: %s\n", s->log, strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bench: fork: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	s->pid = pid;
	return 0;
}

/* Reaps a child that ended, so that stop never signals a reused pid. */
static bool alive(struct bench_srv *s)
{
	if (waitpid(s->pid, NULL, WNOHANG) == 0)
		return true;
	s->pid = 0;
	return false;
}

/* The "listening on http://..." line keel prints once it accepts. */
static bool keel_url(struct bench_srv *s)
{
	FILE *f = fopen(s->log, "re");
	if (!f)
		return false;
	char line[1024];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		char *p = strstr(line, "listening on http://");
		if (!p)
			continue;
		p += strlen("listening on ");
		size_t n = strspn(p, "htp:/0123456789.");
		if (n < sizeof s->url) {
			memcpy(s->url, p, n);
			s->url[n] = '\0';
			found = true;
		}
	}
	fclose(f);
	return found;
}

static int start_failed(struct bench_srv *s, const char *what)
{
	fprintf(stderr, "bench: %s did not come up; its log:\n", what);
	print_log(s);
	bench_srv_stop(s);
	return -1;
}

static bool keel_token(struct bench_srv *s)
{
	char path[600];
	snprintf(path, sizeof path, "%s/data/admin.token", s->dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char tok[200] = "";
	bool ok = fgets(tok, sizeof tok, f) != NULL;
	fclose(f);
	tok[strcspn(tok, "\r\n")] = '\0';
	snprintf(s->auth, sizeof s->auth, "Authorization: Bearer %s", tok);
	return ok && tok[0];
}

int bench_keel_start(struct bench_srv *s, const char *keel, const char *const *extra)
{
	*s = (struct bench_srv){0};
	if (make_dir(s, "keel") < 0)
		return -1;
	char data[600];
	snprintf(data, sizeof data, "%s/data", s->dir);
	const char *argv[32] = {keel, "server",   "--controllers=none", "--data-dir",
	                        data, "--listen", "127.0.0.1:0"};
	size_t n = 7;
	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	if (spawn(s, argv) < 0)
		return start_failed(s, "keel server");
	for (int i = 0; i < 400; i++, sleep_ms(50)) {
		if (!alive(s))
			break;
		if (!s->url[0] && !keel_url(s))
			continue;
		char u[200];
		snprintf(u, sizeof u, "%s/healthz", s->url);
		if (http_ok(u, NULL) && keel_token(s))
			return 0;
	}
	return start_failed(s, "keel server");
}

int bench_keel_etcd_start(struct bench_srv *s, const char *keel, const struct bench_srv *etcd,
                          const char *const *extra)
{
	static int seq;
	char prefix[64];
	snprintf(prefix, sizeof prefix, "/keel-bench-%d-%d/", (int)getpid(), ++seq);
	const char *argv[32] = {"--store", "etcd",          "--etcd-endpoints",
	                        etcd->url, "--etcd-prefix", prefix};
	size_t n = 6;
	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	return bench_keel_start(s, keel, argv);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int bench_etcd_start(struct bench_srv *s)
{
	*s = (struct bench_srv){0};
	if (make_dir(s, "etcd") < 0)
		return -1;
	int cport = free_port(), pport = free_port();
	if (cport < 0 || pport < 0 || cport == pport) {
		fprintf(stderr, "bench: no free loopback port for etcd\n");
		return start_failed(s, "etcd");
	}
	char data[600], curl_[64], purl[64], cluster[96];
	snprintf(data, sizeof data, "%s/data", s->dir);
	snprintf(curl_, sizeof curl_, "http://127.0.0.1:%d", cport);
	snprintf(purl, sizeof purl, "http://127.0.0.1:%d", pport);
	snprintf(cluster, sizeof cluster, "bench=%s", purl);
	const char *etcd = getenv("ETCD");
	const char *argv[] = {etcd && *etcd ? etcd : "etcd",
	                      "--name",
	                      "bench",
	                      "--data-dir",
	                      data,
	                      "--listen-client-urls",
	                      curl_,
	                      "--advertise-client-urls",
	                      curl_,
	                      "--listen-peer-urls",
	                      purl,
	                      "--initial-advertise-peer-urls",
	                      purl,
	                      "--initial-cluster",
	                      cluster,
	                      "--log-level",
	                      "warn",
	                      NULL};
	if (spawn(s, argv) < 0)
		return start_failed(s, "etcd");
	snprintf(s->url, sizeof s->url, "%s", curl_);
	char u[200];
	snprintf(u, sizeof u, "%s/v3/kv/range", s->url);
	for (int i = 0; i < 400; i++, sleep_ms(50)) {
		if (!alive(s))
			break;
		if (http_ok(u, "{\"key\":\"AA==\"}"))
			return 0;
	}
	return start_failed(s, "etcd");
}

void bench_srv_stop(struct bench_srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		int st;
		for (int i = 0; i < 200 && waitpid(s->pid, &st, WNOHANG) == 0; i++)
			sleep_ms(50);
		if (waitpid(s->pid, &st, WNOHANG) == 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
		}
		s->pid = 0;
	}
	if (s->dir[0])
		nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	s->dir[0] = '\0';
}
