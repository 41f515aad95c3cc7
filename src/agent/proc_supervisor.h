/*
 * proc_supervisor — the part of the process runtime that runs in forked
 * children of the (possibly multi-threaded) agent: the supervisor that
 * starts a task and records its exit, and the task's own setup before
 * execve. Everything here is async-signal-safe: system calls and stack
 * buffers only, no allocation, no stdio. runtime_process.c prepares a
 * struct proc_launch before fork(); the child then only reads it.
 *
 * Protocol with the agent (pipes, both O_CLOEXEC):
 *   go:     the agent writes one byte after it saved the record; EOF instead
 *           means the agent died first, and the supervisor exits unstarted.
 *   report: the supervisor writes "P<task pid>\n"; the task writes
 *           "E<errno>\n" when it could not join its cgroup, chdir or exec.
 *           EOF (every writer closed or exec'd) ends the report.
 * Files: the supervisor writes DIR/pid (the task's pid) and, when the task
 * has ended, DIR/exit {"exitCode","signal","finishedAt","oomKills"},
 * both through a temp file and rename().
 */
#pragma once

#include <stdint.h>

#include "agent/cgroup.h"

/* What the children need, all computed before fork(). Owned by the
 * runtime (launch_clear in runtime_process.c). */
struct proc_launch {
	char *path; /* resolved executable */
	char **argv, **envp;
	char *cwd;
	char *procs[4];
	int nprocs;
	char *exit_path, *exit_tmp, *pid_path;
	char *title;                  /* the supervisor's command line in ps */
	uintptr_t arg_start, arg_end; /* where the kernel finds our cmdline */
	enum cg_mode mode;
	const char *memdir;
	int log_fd, null_fd, go_r, go_w, rep_r, rep_w;
};

/* The supervisor: setsid, a recognisable command line, all descriptors but
 * its own closed, then it waits for "go", forks the task (which setsid()s,
 * joins the cgroups, redirects 0-2, chdirs and execs), forwards SIGTERM,
 * SIGINT, SIGHUP and SIGQUIT to the task's process group, and when the task
 * has ended kills the rest of that group and writes the exit file. Never
 * returns. */
_Noreturn void proc_supervisor_main(const struct proc_launch *l);

/* Unblocks every signal and sets every disposition back to default (a child
 * must not inherit the agent's SIG_IGN or masks across execve). */
void proc_reset_signals(void);
