/* A real etcd for the store tests: started on free loopback ports with its
 * data directory under $KEEL_TEST_TMP, stopped (SIGTERM, then SIGKILL) and
 * removed at the end. The binary is $KEEL_ETCD or /usr/bin/etcd; without one
 * the tests skip, except under CI=true, where they fail. */
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct etcd_proc {
	pid_t pid;
	char dir[512];
	char url[64];  /* http://127.0.0.1:PORT */
	char peer[64]; /* http://127.0.0.1:PEER */
	char name[32];
};

static const char *etcd_binary(void)
{
	const char *b = getenv("KEEL_ETCD");
	if (!b || !*b)
		b = "/usr/bin/etcd";
	return access(b, X_OK) == 0 ? b : NULL;
}

/* A free loopback port (bound and released: etcd takes it right after). */
static int etcd_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

static size_t etcd_discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p, (void)ud;
	return sz * n;
}

/* Whether the member at url answers /v3/maintenance/status. */
static bool etcd_ready(const char *url)
{
	CURL *h = curl_easy_init();
	char full[128];
	snprintf(full, sizeof full, "%s/v3/kv/range", url);
	curl_easy_setopt(h, CURLOPT_URL, full);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"key\":\"AA==\"}");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, etcd_discard);
	long status = 0;
	bool ok = curl_easy_perform(h) == CURLE_OK &&
	          curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
	          status == 200;
	curl_easy_cleanup(h);
	return ok;
}

/* Prepares member `name` of a cluster under base (ports chosen, not started). */
static void etcd_prepare(struct etcd_proc *p, const char *base, const char *name)
{
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	snprintf(p->dir, sizeof p->dir, "%s/etcd-%s-XXXXXX", base, name);
	if (!mkdtemp(p->dir))
		p->dir[0] = '\0';
	snprintf(p->url, sizeof p->url, "http://127.0.0.1:%d", etcd_free_port());
	snprintf(p->peer, sizeof p->peer, "http://127.0.0.1:%d", etcd_free_port());
}

/* Starts a prepared member; cluster: "n1=PEER1,n2=PEER2" (NULL: alone). */
static int etcd_spawn(struct etcd_proc *p, const char *cluster)
{
	const char *bin = etcd_binary();
	if (!bin || !p->dir[0])
		return -1;
	char data[600], log[600], init[512], token[32];
	snprintf(token, sizeof token, "keel-test-%ld", (long)getpid()); /* one per cluster */
	snprintf(data, sizeof data, "%s/data", p->dir);
	snprintf(log, sizeof log, "%s/etcd.log", p->dir);
	if (cluster)
		snprintf(init, sizeof init, "%s", cluster);
	else
		snprintf(init, sizeof init, "%s=%s", p->name, p->peer);
	p->pid = fork();
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that crashes leaves no etcd behind */
		FILE *l = freopen(log, "w", stderr);
		(void)l;
		dup2(2, 1);
		execl(bin, bin, "--name", p->name, "--data-dir", data, "--listen-client-urls",
		      p->url, "--advertise-client-urls", p->url, "--listen-peer-urls", p->peer,
		      "--initial-advertise-peer-urls", p->peer, "--initial-cluster", init,
		      "--initial-cluster-state", "new", "--initial-cluster-token", token,
		      "--max-request-bytes", "2097152", "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	return p->pid > 0 ? 0 : -1;
}

/* Waits (10 s at most) for the member to answer. */
static int etcd_wait(struct etcd_proc *p)
{
	for (int i = 0; i < 200; i++) {
		if (etcd_ready(p->url))
			return 0;
		int st;
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return -1;
		}
		usleep(50 * 1000);
	}
	return -1;
}

static int etcd_start(struct etcd_proc *p, const char *base)
{
	etcd_prepare(p, base, "solo");
	if (etcd_spawn(p, NULL) < 0)
		return -1;
	return etcd_wait(p);
}

static int etcd_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void etcd_stop(struct etcd_proc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		int st;
		for (int i = 0; i < 100 && waitpid(p->pid, &st, WNOHANG) == 0; i++)
			usleep(50 * 1000);
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &st, 0);
		p->pid = 0;
	}
	if (p->dir[0])
		nftw(p->dir, etcd_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	p->dir[0] = '\0';
}

static const char *etcd_test_base(void)
{
	const char *base = getenv("KEEL_TEST_TMP");
	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0700);
	return base;
}

/* No etcd binary: 0 to skip, or 1 (after saying why) when CI requires it. */
static int etcd_missing(void)
{
	const char *ci = getenv("CI");
	bool required = ci && strcmp(ci, "true") == 0;
	fprintf(stderr, "%s: no etcd binary (set KEEL_ETCD or install etcd-server)%s\n",
	        required ? "FAIL" : "SKIP", required ? " and CI=true requires it" : "");
	return required ? 1 : 0;
}
