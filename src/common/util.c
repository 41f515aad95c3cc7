/*
 * util: the small helpers every keel library needs. Allocation failures abort
 * (STYLE.md: out of memory is not an error a caller can handle); everything a
 * client can make keel allocate is bounded elsewhere, at the edge.
 */
#include "common/util.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/kerr.h"

static void oom(void)
{
	fputs("keel: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s ? s : "", n);
	if (!p)
		oom();
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

size_t str_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	_cleanup_free_ size_t *row = xcalloc(lb + 1, sizeof(size_t));
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *str_closest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		if (!candidates[i])
			continue;
		size_t d = str_edit_distance(word, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	/* A typo is a few edits away; anything further is a different word. */
	size_t len = strlen(word);
	size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
	if (best_d <= limit)
		return best;
	/* or the start of exactly one candidate ("--heartbeat" for
	 * "--heartbeat-interval") */
	const char *prefix_of = NULL;
	for (size_t i = 0; len >= 4 && i < n; i++) {
		if (!candidates[i] || strncmp(candidates[i], word, len) != 0)
			continue;
		if (prefix_of)
			return NULL;
		prefix_of = candidates[i];
	}
	return prefix_of;
}

char *time_rfc3339(char *buf, size_t len, int64_t unix_seconds)
{
	time_t t = (time_t)unix_seconds;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

int64_t time_now_unix(void)
{
	return (int64_t)time(NULL);
}

int64_t time_parse_rfc3339(const char *s)
{
	struct tm tm = {0};
	if (!s)
		return -1;
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -1;
	if (*end == '.') /* fractional seconds are accepted and dropped */
		while (*++end >= '0' && *end <= '9')
			;
	if (*end != 'Z' || end[1] != '\0')
		return -1;
	return (int64_t)timegm(&tm);
}

int64_t time_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t time_mono_ms(void)
{
	return time_mono_ns() / 1000000;
}

char *time_age(char *buf, size_t len, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600 * 3)
		snprintf(buf, len, "%lldm", (long long)(s / 60));
	else if (s < 86400 * 2)
		snprintf(buf, len, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, len, "%lldd", (long long)(s / 86400));
	return buf;
}

int file_read_all(const char *path, size_t max, char **out, size_t *len, struct kerr *err)
{
	_cleanup_close_ int fd = streq(path, "-") ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kerr_set(err, errno, "%s: %s", path, strerror(errno));
	return fd_read_all(fd, path, max, out, len, err);
}

int fd_read_all(int fd, const char *path, size_t max, char **out, size_t *len, struct kerr *err)
{
	size_t cap = 4096, n = 0;
	_cleanup_free_ char *buf = xmalloc(cap);
	for (;;) {
		if (n + 1 >= cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return kerr_set(err, errno, "%s: %s", path, strerror(errno));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			if (len)
				*len = n;
			return kerr_set(err, E2BIG, "%s: larger than %zu bytes", path, max);
		}
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	*out = TAKE_PTR(buf);
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, int mode, struct kerr *err)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return kerr_set(err, errno, "%s: %s", tmp, strerror(errno));
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			unlink(tmp);
			return kerr_set(err, e, "%s: %s", tmp, strerror(e));
		}
		p += w;
		len -= (size_t)w;
	}
	if (fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return kerr_set(err, e, "%s: %s", tmp, strerror(e));
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kerr_set(err, e, "%s: %s", path, strerror(e));
	}
	return 0;
}

int identity_load(const char *path, const char *host, char **out, struct kerr *err)
{
	_cleanup_free_ char *s = NULL;
	size_t len = 0;
	if (file_read_all(path, 512, &s, &len, NULL) == 0) {
		while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
			s[--len] = '\0';
		if (len > 0 && len <= 200 && !memchr(s, '\0', len)) {
			*out = TAKE_PTR(s);
			return 0;
		}
	}
	char name[256] = "";
	if (!host) {
		if (gethostname(name, sizeof name - 1) < 0 || !*name)
			snprintf(name, sizeof name, "keel");
		host = name;
	}
	unsigned char rnd[6] = {0};
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		memcpy(rnd, &x, sizeof rnd);
	}
	*out = xasprintf("%.100s-%02x%02x%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2], rnd[3],
	                 rnd[4], rnd[5]);
	return file_write_atomic(path, *out, strlen(*out), 0600, err);
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return (a >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

bool host_is_loopback(const char *host)
{
	if (!host || !*host)
		return false;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return true; /* the bind reports it */
	bool all = true;
	for (struct addrinfo *p = ai; p; p = p->ai_next)
		all = all && addr_is_loopback(p->ai_addr);
	freeaddrinfo(ai);
	return all;
}
