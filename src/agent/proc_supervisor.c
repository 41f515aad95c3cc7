/*
 * proc_supervisor — the async-signal-safe children of the process runtime;
 * see proc_supervisor.h for the protocol. Kept apart from
 * runtime_process.c so that what may run after fork() is in one place.
 */
#include "agent/proc_supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_task_pgid;

static void fwd_signal(int sig)
{
	int e = errno;
	if (g_task_pgid > 0)
		kill(-(pid_t)g_task_pgid, sig);
	errno = e;
}

static size_t fmt_num(char *buf, long long v)
{
	char tmp[24];
	size_t n = 0, len = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
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

/* Appends s to buf (capacity cap) at *len. */
static void raw_cat(char *buf, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 1 > cap)
		n = cap - *len - 1;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

static void raw_write_file(const char *tmp, const char *path, const char *data, size_t len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ssize_t w = write(fd, data, len);
	fsync(fd);
	close(fd);
	if (w == (ssize_t)len)
		rename(tmp, path);
}

void proc_reset_signals(void)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL);
}

/* Reports "E<errno>" to the agent after a failed step and exits 127. */
static _Noreturn void task_fail(const struct proc_launch *l, int e)
{
	char buf[32] = "E";
	size_t n = 1 + fmt_num(buf + 1, e);
	buf[n++] = '\n';
	if (write(l->rep_w, buf, n) < 0) {
	}
	_exit(127);
}

static _Noreturn void task_main(const struct proc_launch *l)
{
	setsid();
	if (cg_join_raw(l->procs, l->nprocs, (int)getpid()) < 0)
		task_fail(l, errno ? errno : EIO);
	if (dup2(l->null_fd, 0) < 0 || dup2(l->log_fd, 1) < 0 || dup2(l->log_fd, 2) < 0)
		task_fail(l, errno);
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	if (chdir(l->cwd) < 0)
		task_fail(l, errno);
	proc_reset_signals();
	execve(l->path, l->argv, l->envp);
	task_fail(l, errno);
}

/* Closes every descriptor but 0-2 and keep[0..4) (sorted here). */
static void close_all_but(int keep[4])
{
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			if (keep[j] < keep[i]) {
				int t = keep[i];
				keep[i] = keep[j];
				keep[j] = t;
			}
	unsigned lo = 3;
	for (int i = 0; i < 4; i++) {
		if ((unsigned)keep[i] > lo)
			close_range(lo, (unsigned)keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

static void write_exit(const struct proc_launch *l, int status)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	char buf[256], num[24];
	size_t len = 0;
	raw_cat(buf, sizeof(buf), &len, "{\"exitCode\":");
	fmt_num(num, code);
	raw_cat(buf, sizeof(buf), &len, num);
	raw_cat(buf, sizeof(buf), &len, ",\"signal\":");
	fmt_num(num, sig);
	raw_cat(buf, sizeof(buf), &len, num);
	raw_cat(buf, sizeof(buf), &len, ",\"finishedAt\":");
	fmt_num(num, now.tv_sec);
	raw_cat(buf, sizeof(buf), &len, num);
	raw_cat(buf, sizeof(buf), &len, ",\"oomKills\":");
	fmt_num(num, cg_oom_kills_raw(l->mode, l->memdir));
	raw_cat(buf, sizeof(buf), &len, num);
	raw_cat(buf, sizeof(buf), &len, "}\n");
	raw_write_file(l->exit_tmp, l->exit_path, buf, len);
}

/* Rewrites the supervisor's command line ("keel-supervise proc-UID-N") in
 * the argv area the kernel shows in /proc/PID/cmdline, so that ps shows
 * what it is and `pkill -f "keel agent"` does not kill it with the agent. */
static void set_title(const struct proc_launch *l)
{
	prctl(PR_SET_NAME, "keel-supervise", 0, 0, 0);
	if (l->arg_end <= l->arg_start + 1)
		return;
	char *a = (char *)l->arg_start;
	size_t n = l->arg_end - l->arg_start, t = strlen(l->title);
	memset(a, 0, n);
	memcpy(a, l->title, t < n - 1 ? t : n - 1);
}

_Noreturn void proc_supervisor_main(const struct proc_launch *l)
{
	close(l->go_w);
	close(l->rep_r);
	setsid();
	set_title(l);
	dup2(l->null_fd, 0);
	dup2(l->null_fd, 1);
	dup2(l->null_fd, 2);
	int keep[4] = {l->log_fd, l->null_fd, l->go_r, l->rep_w};
	close_all_but(keep);
	proc_reset_signals();
	struct sigaction fwd = {.sa_handler = fwd_signal, .sa_flags = SA_RESTART};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigaction(SIGTERM, &fwd, NULL);
	sigaction(SIGINT, &fwd, NULL);
	sigaction(SIGHUP, &fwd, NULL);
	sigaction(SIGQUIT, &fwd, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	char c;
	ssize_t n;
	while ((n = read(l->go_r, &c, 1)) < 0 && errno == EINTR) {
	}
	if (n != 1)
		_exit(0); /* the agent died before recording us: run nothing */
	close(l->go_r);
	pid_t t = fork();
	if (t == 0)
		task_main(l);
	if (t < 0)
		task_fail(l, errno);
	g_task_pgid = t;
	char buf[32] = "P";
	size_t len = 1 + fmt_num(buf + 1, t);
	raw_write_file(l->exit_tmp, l->pid_path, buf + 1, len - 1);
	buf[len++] = '\n';
	if (write(l->rep_w, buf, len) < 0) {
	}
	close(l->rep_w);
	close(l->log_fd);
	siginfo_t si;
	while (waitid(P_PID, (id_t)t, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
	}
	kill(-t, SIGKILL); /* the task's leftovers; its pid is held until reaped */
	int status = 0;
	while (waitpid(t, &status, 0) < 0 && errno == EINTR) {
	}
	g_task_pgid = 0;
	write_exit(l, status);
	_exit(0);
}
