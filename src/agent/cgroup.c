/*
 * cgroup — limits for the process runtime's tasks, on whatever cgroup setup
 * the host has. cgroup v2 is used when ROOT is a v2 mount whose controllers
 * include memory and cpu and keel may enable them for a "keel" child (the
 * delegation test is simply doing it). Otherwise the v1 hierarchies are
 * tried one by one (memory, then cpu or cpu,cpuacct, then cpuacct), as on
 * hosts that mount v1 with an almost empty v2 "unified" tree beside it.
 * What is missing is not an error: it becomes a warning the agent shows in
 * its Node's status, and tasks run without that limit.
 *
 * The helpers marked _raw run in a freshly forked child of a possibly
 * multi-threaded agent, so they use only system calls and stack buffers.
 */
#include "agent/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

#define CG_PERIOD_US 100000

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

static int write_str(const char *path, const char *s, struct kerr *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return kerr_set(err, errno, "%s: %s", path, strerror(errno));
	size_t n = strlen(s);
	ssize_t w = write(fd, s, n);
	if (w < 0)
		return kerr_set(err, errno, "write %s to %s: %s", s, path, strerror(errno));
	if ((size_t)w != n)
		return kerr_set(err, EIO, "write %s to %s: short write", s, path);
	return 0;
}

/* Reads a small control file; NULL when it cannot be read. Owned. */
static char *read_small(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	if (file_read_all(path, 1 << 16, &buf, &len, NULL) < 0)
		return NULL;
	return buf;
}

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == '\n')
			p++;
		size_t l = strcspn(p, " \n");
		if (l == n && strncmp(p, word, n) == 0)
			return true;
		p += l;
	}
	return false;
}

/* Enables +memory and +cpu in dir's cgroup.subtree_control. */
static int v2_enable(const char *dir, struct kerr *err)
{
	_cleanup_free_ char *path = xasprintf("%s/cgroup.subtree_control", dir);
	_cleanup_free_ char *cur = read_small(path);
	if (cur && has_word(cur, "memory") && has_word(cur, "cpu"))
		return 0;
	int r = write_str(path, "+memory", err);
	if (r >= 0)
		r = write_str(path, "+cpu", err);
	return r;
}

static int v2_setup(const char *root, struct cg_host *out, char **why)
{
	_cleanup_free_ char *cpath = xasprintf("%s/cgroup.controllers", root);
	_cleanup_free_ char *ctl = read_small(cpath);
	if (!ctl || !has_word(ctl, "memory") || !has_word(ctl, "cpu")) {
		*why = xasprintf("cgroup v2 at %s has no memory and cpu controllers (has: %s)",
		                 root, ctl && *ctl != '\n' && *ctl ? strtok(ctl, "\n") : "none");
		return -ENOTSUP;
	}
	_cleanup_kerr_ struct kerr e = KERR_INIT;
	_cleanup_free_ char *keel = xasprintf("%s/keel", root);
	if (v2_enable(root, &e) < 0 ||
	    (mkdir(keel, 0755) < 0 && errno != EEXIST &&
	     kerr_set(&e, errno, "mkdir %s: %s", keel, strerror(errno))) ||
	    v2_enable(keel, &e) < 0) {
		*why =
		    xasprintf("cgroup v2 at %s is not delegated to keel: %s", root, kerr_msg(&e));
		return -EPERM;
	}
	out->mode = CG_V2;
	out->v2 = TAKE_PTR(keel);
	return 0;
}

/* The keel parent in the first v1 hierarchy of names[] that has file;
 * NULL (and a reason appended to why) when none is usable. */
static char *v1_parent(const char *root, const char *const names[], const char *file,
                       struct sbuf *why)
{
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *dir = xasprintf("%s/%s", root, names[i]);
		_cleanup_free_ char *probe = xasprintf("%s/%s", dir, file);
		if (!is_fs(dir, CGROUP_SUPER_MAGIC) || access(probe, F_OK) < 0)
			continue;
		char *keel = xasprintf("%s/keel", dir);
		if (mkdir(keel, 0755) == 0 || errno == EEXIST)
			return keel;
		sbuf_printf(why, "%s%s: %s", why->len ? "; " : "", keel, strerror(errno));
		free(keel);
		return NULL;
	}
	sbuf_printf(why, "%sno cgroup v1 %s controller under %s", why->len ? "; " : "", names[0],
	            root);
	return NULL;
}

void cg_host_detect(const char *root, struct cg_host *out)
{
	memset(out, 0, sizeof(*out));
	if (streq(root, "none")) {
		out->warning = xstrdup("no cgroup limits: cgroups disabled (cgroup root \"none\")");
		return;
	}
	if (!root)
		root = "/sys/fs/cgroup";
	_cleanup_free_ char *why2 = NULL;
	if (is_fs(root, CGROUP2_SUPER_MAGIC)) {
		if (v2_setup(root, out, &why2) == 0)
			return;
	} else {
		why2 = xasprintf("%s is not a cgroup v2 mount", root);
	}
	static const char *const mem[] = {"memory", NULL};
	static const char *const cpu[] = {"cpu", "cpu,cpuacct", NULL};
	static const char *const acct[] = {"cpuacct", "cpu,cpuacct", NULL};
	_cleanup_sbuf_ struct sbuf why = SBUF_INIT;
	out->mem = v1_parent(root, mem, "memory.limit_in_bytes", &why);
	out->cpu = v1_parent(root, cpu, "cpu.cfs_quota_us", &why);
	out->cpuacct = v1_parent(root, acct, "cpuacct.usage", &why);
	if (out->mem || out->cpu || out->cpuacct)
		out->mode = CG_V1;
	if (!out->mem && !out->cpu)
		out->warning = xasprintf("no cgroup limits: %s, and %s", why2, why.data);
	else if (!out->mem || !out->cpu)
		out->warning = xasprintf("no cgroup %s limits: %s", out->mem ? "cpu" : "memory",
		                         why.data ? why.data : "");
}

void cg_host_clear(struct cg_host *h)
{
	if (!h)
		return;
	free(h->v2);
	free(h->mem);
	free(h->cpu);
	free(h->cpuacct);
	free(h->warning);
	memset(h, 0, sizeof(*h));
}

void cg_set_clear(struct cg_set *s)
{
	if (!s)
		return;
	free(s->v2);
	free(s->mem);
	free(s->cpu);
	free(s->cpuacct);
	memset(s, 0, sizeof(*s));
}

/* Kills whatever is left in dir (its cgroup.procs), so it can be removed. */
static void kill_members(const char *dir)
{
	_cleanup_free_ char *path = xasprintf("%s/cgroup.procs", dir);
	_cleanup_free_ char *procs = read_small(path);
	for (char *p = procs; p && *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 1)
			kill((pid_t)pid, SIGKILL);
		p = end;
	}
}

static int rmdir_cg(const char *dir, struct kerr *err)
{
	if (!dir)
		return 0;
	for (int i = 0; i < 40; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		if (i == 10)
			kill_members(dir);
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return kerr_set(err, errno, "remove cgroup %s: %s", dir, strerror(errno));
}

int cg_set_remove(const struct cg_set *s, struct kerr *err)
{
	int r = 0;
	const char *dirs[] = {s->v2, s->mem, s->cpu, s->cpuacct};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (i > 1 && dirs[i] && streq(dirs[i], dirs[i - 1]))
			continue;
		int q = rmdir_cg(dirs[i], r < 0 ? NULL : err);
		if (q < 0 && r == 0)
			r = q;
	}
	return r;
}

/* mkdir PARENT/NAME, replacing an empty leftover. Owned path or NULL. */
static char *make_cg(const char *parent, const char *name, struct kerr *err)
{
	if (!parent)
		return NULL;
	char *dir = xasprintf("%s/%s", parent, name);
	if (mkdir(dir, 0755) == 0)
		return dir;
	if (errno == EEXIST && (rmdir(dir) == 0 || errno == ENOENT) && mkdir(dir, 0755) == 0)
		return dir;
	int e = errno == ENOTEMPTY ? EBUSY : errno;
	kerr_set(err, e, "create cgroup %s: %s", dir,
	         e == EBUSY ? "it exists and still holds processes" : strerror(e));
	free(dir);
	return NULL;
}

static int set_limits(const struct cg_set *s, int64_t mem, int64_t cpu, struct kerr *err)
{
	char buf[64];
	int64_t quota = cpu * CG_PERIOD_US / 1000;
	if (quota < 1000)
		quota = 1000;
	if (s->mode == CG_V2) {
		_cleanup_free_ char *mmax = xasprintf("%s/memory.max", s->v2);
		_cleanup_free_ char *smax = xasprintf("%s/memory.swap.max", s->v2);
		_cleanup_free_ char *cmax = xasprintf("%s/cpu.max", s->v2);
		snprintf(buf, sizeof(buf), "%lld", (long long)mem);
		if (mem > 0 && (write_str(mmax, buf, err) < 0 ||
		                (access(smax, F_OK) == 0 && write_str(smax, "0", err) < 0)))
			return -err->code;
		snprintf(buf, sizeof(buf), "%lld %d", (long long)quota, CG_PERIOD_US);
		if (cpu > 0 && write_str(cmax, buf, err) < 0)
			return -err->code;
		return 0;
	}
	if (mem > 0 && s->mem) {
		_cleanup_free_ char *p = xasprintf("%s/memory.limit_in_bytes", s->mem);
		snprintf(buf, sizeof(buf), "%lld", (long long)mem);
		if (write_str(p, buf, err) < 0)
			return -err->code;
	}
	if (cpu > 0 && s->cpu) {
		_cleanup_free_ char *per = xasprintf("%s/cpu.cfs_period_us", s->cpu);
		_cleanup_free_ char *quo = xasprintf("%s/cpu.cfs_quota_us", s->cpu);
		snprintf(buf, sizeof(buf), "%lld", (long long)quota);
		if (write_str(per, "100000", err) < 0 || write_str(quo, buf, err) < 0)
			return -err->code;
	}
	return 0;
}

int cg_set_create(const struct cg_host *h, const char *name, int64_t memory_bytes,
                  int64_t cpu_millicores, struct cg_set *out, struct kerr *err)
{
	struct kerr e = KERR_INIT;
	struct cg_set s = {.mode = h->mode};
	if (h->mode == CG_V2) {
		s.v2 = make_cg(h->v2, name, &e);
	} else if (h->mode == CG_V1) {
		s.mem = make_cg(h->mem, name, &e);
		if (!e.code)
			s.cpu = make_cg(h->cpu, name, &e);
		if (!e.code)
			s.cpuacct = streq(h->cpuacct, h->cpu) ? (s.cpu ? xstrdup(s.cpu) : NULL)
			                                      : make_cg(h->cpuacct, name, &e);
	}
	if (!e.code)
		set_limits(&s, memory_bytes, cpu_millicores, &e);
	if (e.code) {
		cg_set_remove(&s, NULL);
		cg_set_clear(&s);
		int code = e.code;
		if (err)
			kerr_move(err, &e);
		kerr_clear(&e);
		return -code;
	}
	*out = s;
	return 0;
}

int cg_set_procs_paths(const struct cg_set *s, char *paths[4])
{
	int n = 0;
	const char *dirs[] = {s->v2, s->mem, s->cpu, s->cpuacct};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (!dirs[i] || (i == 3 && streq(dirs[3], dirs[2])))
			continue;
		paths[n++] = xasprintf("%s/cgroup.procs", dirs[i]);
	}
	return n;
}

/* Formats v in decimal into buf (>= 24 bytes); returns the length. */
static size_t fmt_long(char *buf, long v)
{
	char tmp[24];
	size_t n = 0, len = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	buf[len] = '\0';
	return len;
}

int cg_join_raw(char *const paths[], int n, int pid)
{
	char buf[24];
	size_t len = fmt_long(buf, pid);
	for (int i = 0; i < n; i++) {
		int fd = open(paths[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ssize_t w = write(fd, buf, len);
		int e = errno;
		close(fd);
		if (w != (ssize_t)len)
			return w < 0 ? -e : -EIO;
	}
	return 0;
}

/* Value of "KEY N" lines in the control file dir/file; -1 if absent. No
 * allocation (used by the supervisor after fork). */
static long long keyed_raw(const char *dir, const char *file, const char *key)
{
	char path[4096], buf[4096];
	size_t dl = strlen(dir), fl = strlen(file), kl = strlen(key);
	if (dl + fl + 2 > sizeof(path))
		return -1;
	memcpy(path, dir, dl);
	path[dl] = '/';
	memcpy(path + dl + 1, file, fl + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			long long v = 0;
			for (p += kl + 1; *p >= '0' && *p <= '9'; p++)
				v = v * 10 + (*p - '0');
			return v;
		}
	}
	return -1;
}

long cg_oom_kills_raw(enum cg_mode mode, const char *memdir)
{
	if (!memdir || mode == CG_NONE)
		return 0;
	long long v =
	    keyed_raw(memdir, mode == CG_V2 ? "memory.events" : "memory.oom_control", "oom_kill");
	return v > 0 ? (long)v : 0;
}

static int64_t read_int(const char *dir, const char *file)
{
	if (!dir)
		return -1;
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
	_cleanup_free_ char *s = read_small(path);
	char *end;
	if (!s)
		return -1;
	long long v = strtoll(s, &end, 10);
	return end == s ? -1 : (int64_t)v;
}

int64_t cg_set_memory(const struct cg_set *s)
{
	if (s->mode == CG_V2)
		return read_int(s->v2, "memory.current");
	return read_int(s->mem, "memory.usage_in_bytes");
}

int64_t cg_set_cpu_ns(const struct cg_set *s)
{
	if (s->mode == CG_V2) {
		long long us = s->v2 ? keyed_raw(s->v2, "cpu.stat", "usage_usec") : -1;
		return us < 0 ? -1 : (int64_t)us * 1000;
	}
	return read_int(s->cpuacct, "cpuacct.usage");
}
