/*
 * runtime_process — the "process" runtime: each Task attempt runs as a host
 * process in its own session and process group, with cgroup limits where
 * the host allows (cgroup.h), its output appended to a log file.
 *
 * Layout of the state directory, one directory per attempt:
 *   DIR/tasks/UID/ATTEMPT/record  JSON written by the agent (atomically):
 *                                 who the task is, the supervisor's and the
 *                                 task's pid with their /proc start times
 *                                 (so a reused pid is never mistaken for
 *                                 ours), cgroup paths, env and cwd for exec,
 *                                 the Task's grace period (for a stop after
 *                                 the Task is gone)
 *                                 the ports it was given, the hash of
 *                                 the spec it runs (specHash)
 *                                 /exit    JSON written by the supervisor when the task ended
 *                                 /pid     the task's pid, written by the supervisor
 *                                 /log     stdout+stderr of the task, appended
 *                                 /work    the task's working directory (fresh per attempt)
 *
 * Why a supervisor: a task must outlive the agent (an agent killed with -9
 * and restarted adopts what runs), but only a process's parent learns its
 * exit status. So the agent forks a small supervisor (no exec: it is the
 * agent's code, using only async-signal-safe calls after the fork), which
 * setsid()s, forks the task, waits for it and writes the exit file. The
 * supervisor, not the agent, is the task's parent; the exit code survives
 * the agent's death. It forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to the task's
 * process group and otherwise stays out of the way; when the task ends it
 * kills what is left of the task's process group, as a container's end
 * would. No PR_SET_PDEATHSIG: tasks survive the agent, as under kubelet.
 * The code that runs in those children is in proc_supervisor.c.
 *
 * A record is written before the supervisor is told to start the task (a
 * "go" byte on a pipe), so there is never a task without a record: if the
 * agent dies in between, the supervisor sees EOF and exits without running
 * anything.
 *
 * Ids are "proc-UID-ATTEMPT", which name the attempt's directory, so they
 * stay the same across agent restarts.
 */
#include "agent/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "agent/cgroup.h"
#include "agent/proc_supervisor.h"
#include "api/quantity.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

#define DEFAULT_PATH  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define KEEP_ATTEMPTS 2
#define ORPHAN_LOG_S  3600
#define MAX_UID       128

struct cpu_sample {
	char *id;
	int64_t mono_ns;
	int64_t cpu_ns;
};

struct proc_rt {
	struct runtime base;
	char *tasks_dir; /* DIR/tasks */
	struct cg_host cg;
	pthread_mutex_t lock; /* children and samples */
	pid_t *children;      /* supervisors this instance forked, not reaped yet */
	size_t nchildren;
	struct cpu_sample *samples;
	size_t nsamples;
	int next_port; /* lock: where the search for a free port goes on */
};

/* Ports for spec.ports without a hostPort: a process shares the host's
 * network, so each replica needs a port of its own. Below the kernel's
 * ephemeral range (32768-60999 by default), as Kubernetes' NodePorts, so
 * that outgoing connections never take one between the pick and the
 * task's bind. */
#define PORT_MIN 30000
#define PORT_MAX 32767

/* A loaded record. */
struct prec {
	char *uid, *ns, *name, *node, *cwd, *dir;
	char *spec_hash; /* NULL: not recorded */
	unsigned attempt;
	pid_t spid, pid;
	uint64_t sstart, pstart;
	int64_t started_at;
	int grace_s; /* terminationGracePeriodSeconds; -1 not recorded */
	struct cg_set cg;
	json_t *env;   /* array of "K=V" strings */
	json_t *ports; /* array of {containerPort, hostPort, protocol}; may be NULL */
};

static void prec_clear(struct prec *r)
{
	free(r->uid);
	free(r->ns);
	free(r->name);
	free(r->node);
	free(r->cwd);
	free(r->dir);
	free(r->spec_hash);
	cg_set_clear(&r->cg);
	json_decref(r->env);
	json_decref(r->ports);
	memset(r, 0, sizeof(*r));
}
#define _cleanup_prec_ _cleanup_(prec_clear)

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}
static void strv_freep(char ***v)
{
	strv_free(*v);
}
#define _cleanup_strv_ _cleanup_(strv_freep)

/* ---- ids and paths ---------------------------------------------------- */

static bool uid_ok(const char *uid)
{
	size_t n = uid ? strlen(uid) : 0;
	if (n == 0 || n > MAX_UID || uid[0] == '.')
		return false;
	return strspn(uid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       n;
}

/* "proc-UID-ATTEMPT" -> uid (owned) and attempt. */
static int id_parse(const char *id, char **uid, unsigned *attempt, struct kerr *err)
{
	const char *dash = id ? strrchr(id, '-') : NULL;
	if (!strstartswith(id, "proc-") || !dash || dash < id + 6 || !dash[1] ||
	    strspn(dash + 1, "0123456789") != strlen(dash + 1) || strlen(dash + 1) > 9)
		return kerr_set(err, ENOENT,
		                "no such process task %s (ids look like proc-UID-ATTEMPT)",
		                id ? id : "(null)");
	_cleanup_free_ char *u = xstrndup(id + 5, (size_t)(dash - id - 5));
	if (!uid_ok(u))
		return kerr_set(err, ENOENT, "no such process task %s: bad uid", id);
	*attempt = (unsigned)strtoul(dash + 1, NULL, 10);
	*uid = TAKE_PTR(u);
	return 0;
}

static char *attempt_dir(const struct proc_rt *p, const char *uid, unsigned attempt)
{
	return xasprintf("%s/%s/%u", p->tasks_dir, uid, attempt);
}

static int mkdir_p(const char *path, mode_t mode, struct kerr *err)
{
	_cleanup_free_ char *buf = xstrdup(path);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return kerr_set(err, errno, "mkdir %s: %s", buf, strerror(errno));
		*s = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return kerr_set(err, errno, "mkdir %s: %s", buf, strerror(errno));
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* ---- /proc ------------------------------------------------------------ */

/* Start time (field 22) and state (field 3) of pid; -ENOENT if gone. */
static int proc_stat_of(pid_t pid, uint64_t *start, char *state)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_free_ char *s = NULL;
	size_t len = 0;
	if (pid <= 0 || file_read_all(path, 4096, &s, &len, NULL) < 0)
		return -ENOENT;
	char *p = strrchr(s, ')');
	unsigned long long st = 0;
	char c = '?';
	if (!p || sscanf(p + 2,
	                 "%c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
	                 "%*s %*s %llu",
	                 &c, &st) != 2)
		return -ENOENT;
	*start = st;
	*state = c;
	return 0;
}

/* Whether pid is alive and is the process that had start time start. An
 * unknown start time (0) counts as gone: a pid alone may have been reused
 * by anything. Zombies count as gone. */
static bool alive(pid_t pid, uint64_t start)
{
	uint64_t st;
	char c;
	if (pid <= 0 || proc_stat_of(pid, &st, &c) < 0)
		return false;
	if (c == 'Z' || c == 'X' || c == 'x')
		return false;
	return start != 0 && st == start;
}

/* ---- children (supervisors we forked) ---------------------------------- */

static void child_add(struct proc_rt *p, pid_t pid)
{
	pthread_mutex_lock(&p->lock);
	p->children = xrealloc(p->children, (p->nchildren + 1) * sizeof(pid_t));
	p->children[p->nchildren++] = pid;
	pthread_mutex_unlock(&p->lock);
}

/* Reaps supervisors that have exited. Only our own, by pid: a blanket
 * waitpid(-1) would steal exec()'s children on other threads. */
static void reap(struct proc_rt *p)
{
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nchildren;) {
		pid_t r = waitpid(p->children[i], NULL, WNOHANG);
		if (r == 0 || (r < 0 && errno == EINTR)) {
			i++;
			continue;
		}
		p->children[i] = p->children[--p->nchildren];
	}
	pthread_mutex_unlock(&p->lock);
}

/* ---- record and exit files -------------------------------------------- */

static json_t *cg_to_json(const struct cg_set *s)
{
	static const char *const modes[] = {"none", "v1", "v2"};
	json_t *o = json_pack("{s:s}", "mode", modes[s->mode]);
	const char *keys[] = {"v2", "memory", "cpu", "cpuacct"};
	const char *vals[] = {s->v2, s->mem, s->cpu, s->cpuacct};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (vals[i])
			json_object_set_new(o, keys[i], json_string(vals[i]));
	return o;
}

static void cg_from_json(json_t *o, struct cg_set *s)
{
	const char *mode = json_string_value(json_object_get(o, "mode"));
	s->mode = streq(mode, "v2") ? CG_V2 : streq(mode, "v1") ? CG_V1 : CG_NONE;
	char **dst[] = {&s->v2, &s->mem, &s->cpu, &s->cpuacct};
	const char *keys[] = {"v2", "memory", "cpu", "cpuacct"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *v = json_string_value(json_object_get(o, keys[i]));
		*dst[i] = v ? xstrdup(v) : NULL;
	}
}

static int rec_save(const struct prec *r, struct kerr *err)
{
	_cleanup_json_ json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:O}", "uid", r->uid,
	    "namespace", r->ns, "name", r->name, "node", r->node, "attempt", (json_int_t)r->attempt,
	    "supervisorPid", (json_int_t)r->spid, "supervisorStart", (json_int_t)r->sstart, "pid",
	    (json_int_t)r->pid, "pidStart", (json_int_t)r->pstart, "startedAt",
	    (json_int_t)r->started_at, "cwd", r->cwd, "cgroup", cg_to_json(&r->cg), "env", r->env);
	if (r->grace_s >= 0)
		json_object_set_new(o, "grace", json_integer(r->grace_s));
	if (r->ports)
		json_object_set(o, "ports", r->ports);
	if (r->spec_hash)
		json_object_set_new(o, "specHash", json_string(r->spec_hash));
	_cleanup_free_ char *s = json_dumps(o, JSON_COMPACT);
	_cleanup_free_ char *path = xasprintf("%s/record", r->dir);
	return file_write_atomic(path, s, strlen(s), 0600, err);
}

static pid_t read_pid_file(const char *dir)
{
	_cleanup_free_ char *path = xasprintf("%s/pid", dir);
	_cleanup_free_ char *s = NULL;
	size_t len = 0;
	if (file_read_all(path, 64, &s, &len, NULL) < 0)
		return 0;
	return (pid_t)strtol(s, NULL, 10);
}

/* Loads the record of uid/attempt. -ENOENT when there is none. */
static int rec_load(const struct proc_rt *p, const char *uid, unsigned attempt, struct prec *out,
                    struct kerr *err)
{
	_cleanup_free_ char *dir = attempt_dir(p, uid, attempt);
	_cleanup_free_ char *path = xasprintf("%s/record", dir);
	_cleanup_free_ char *s = NULL;
	size_t len = 0;
	if (file_read_all(path, 1 << 20, &s, &len, NULL) < 0)
		return kerr_set(err, ENOENT, "no such process task proc-%s-%u", uid, attempt);
	json_error_t je;
	_cleanup_json_ json_t *o = json_loads(s, 0, &je);
	const char *u, *ns, *name, *node, *cwd;
	json_int_t att, spid, sst, pid, pst, sat;
	json_t *cg = NULL, *env = NULL;
	if (!o || json_unpack_ex(o, &je, 0,
	                         "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, "
	                         "s:o, s:o}",
	                         "uid", &u, "namespace", &ns, "name", &name, "node", &node,
	                         "attempt", &att, "supervisorPid", &spid, "supervisorStart", &sst,
	                         "pid", &pid, "pidStart", &pst, "startedAt", &sat, "cwd", &cwd,
	                         "cgroup", &cg, "env", &env) < 0)
		return kerr_set(err, EIO, "%s: bad record: %s", path, je.text);
	struct prec r = {.uid = xstrdup(u),
	                 .ns = xstrdup(ns),
	                 .name = xstrdup(name),
	                 .node = xstrdup(node),
	                 .cwd = xstrdup(cwd),
	                 .dir = TAKE_PTR(dir),
	                 .attempt = (unsigned)att,
	                 .spid = (pid_t)spid,
	                 .sstart = (uint64_t)sst,
	                 .pid = (pid_t)pid,
	                 .pstart = (uint64_t)pst,
	                 .started_at = sat,
	                 .grace_s = -1,
	                 .env = json_incref(env)};
	json_t *grace = json_object_get(o, "grace"); /* absent in older records */
	if (json_is_integer(grace) && json_integer_value(grace) >= 0 &&
	    json_integer_value(grace) <= INT_MAX)
		r.grace_s = (int)json_integer_value(grace);
	json_t *ports = json_object_get(o, "ports"); /* absent in records of older agents */
	r.ports = json_is_array(ports) ? json_incref(ports) : NULL;
	const char *sh = json_string_value(json_object_get(o, "specHash")); /* ditto */
	r.spec_hash = sh && *sh ? xstrdup(sh) : NULL;
	cg_from_json(cg, &r.cg);
	if (r.pid <= 0)
		r.pid = read_pid_file(r.dir);
	/* The agent died before recording the task's start time; while the
	 * supervisor lives, the pid is still its unreaped child, so read it. */
	char c;
	if (r.pid > 0 && !r.pstart && alive(r.spid, r.sstart))
		proc_stat_of(r.pid, &r.pstart, &c);
	*out = r;
	return 0;
}

struct pexit {
	bool have;
	int code, sig;
	int64_t finished_at;
	long oom_kills;
};

static void exit_load(const char *dir, struct pexit *x)
{
	memset(x, 0, sizeof(*x));
	_cleanup_free_ char *path = xasprintf("%s/exit", dir);
	_cleanup_free_ char *s = NULL;
	size_t len = 0;
	if (file_read_all(path, 4096, &s, &len, NULL) < 0)
		return;
	_cleanup_json_ json_t *o = json_loads(s, 0, NULL);
	json_int_t code = -1, sig = 0, fin = 0, oom = 0;
	if (!o || json_unpack(o, "{s:I, s?I, s?I, s?I}", "exitCode", &code, "signal", &sig,
	                      "finishedAt", &fin, "oomKills", &oom) < 0)
		return;
	*x = (struct pexit){true, (int)code, (int)sig, fin, (long)oom};
}

static bool rec_ended(const struct prec *r)
{
	_cleanup_free_ char *path = xasprintf("%s/exit", r->dir);
	if (access(path, F_OK) == 0)
		return true;
	return !alive(r->spid, r->sstart) && !alive(r->pid, r->pstart);
}

static void status_exited(const struct pexit *x, struct rt_status *st)
{
	st->state = RT_EXITED;
	st->exit_code = x->code;
	st->finished_at = x->finished_at;
	if (x->oom_kills > 0 && x->code != 0) {
		st->reason = xstrdup("OOMKilled");
		st->message =
		    xasprintf("out of memory: the kernel killed %ld process%s of the task",
		              x->oom_kills, x->oom_kills == 1 ? "" : "es");
	} else if (x->code == 0) {
		st->reason = xstrdup("Completed");
	} else if (x->sig) {
		st->reason = xstrdup(x->sig == SIGKILL ? "Killed" : "Error");
		st->message = xasprintf("terminated by signal %d (SIG%s)", x->sig,
		                        sigabbrev_np(x->sig) ? sigabbrev_np(x->sig) : "?");
	} else {
		st->reason = xstrdup("Error");
		st->message = xasprintf("exited with code %d", x->code);
	}
}

static void rec_status(const struct prec *r, struct rt_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = xasprintf("proc-%s-%u", r->uid, r->attempt);
	st->task_uid = xstrdup(r->uid);
	st->ns = xstrdup(r->ns);
	st->name = xstrdup(r->name);
	st->attempt = r->attempt;
	st->started_at = r->started_at;
	st->has_grace = r->grace_s >= 0;
	st->grace_s = r->grace_s >= 0 ? r->grace_s : 0;
	st->ip = xstrdup("127.0.0.1");
	st->host_network = true;
	st->spec_hash = r->spec_hash ? xstrdup(r->spec_hash) : NULL;
	struct pexit x;
	exit_load(r->dir, &x);
	if (x.have) {
		status_exited(&x, st);
	} else if (alive(r->spid, r->sstart) || alive(r->pid, r->pstart)) {
		st->state = RT_RUNNING;
		size_t i;
		json_t *pt;
		st->ports = xcalloc(json_array_size(r->ports) + 1, sizeof(*st->ports));
		json_array_foreach(r->ports, i, pt)
		{
			st->ports[st->nports++] = (struct rt_port){
			    (int)json_integer_value(json_object_get(pt, "containerPort")),
			    (int)json_integer_value(json_object_get(pt, "hostPort")),
			    streq(json_string_value(json_object_get(pt, "protocol")), "UDP")};
		}
	} else {
		st->state = RT_EXITED;
		st->exit_code = -1;
		st->reason = xstrdup("Error");
		st->message = xstrdup("the task ended without its supervisor (killed, or the host "
		                      "rebooted); exit status unknown");
	}
}

/* ---- start ------------------------------------------------------------ */

static void launch_clear(struct proc_launch *l)
{
	free(l->path);
	strv_free(l->argv);
	strv_free(l->envp);
	free(l->cwd);
	for (int i = 0; i < l->nprocs; i++)
		free(l->procs[i]);
	free(l->exit_path);
	free(l->exit_tmp);
	free(l->pid_path);
	free(l->title);
	int fds[] = {l->log_fd, l->null_fd, l->go_r, l->go_w, l->rep_r, l->rep_w};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	memset(l, 0, sizeof(*l));
}

/* argv from spec.command + spec.args. Owned NULL-terminated vector. */
static int build_argv(json_t *spec, char ***out, struct kerr *err)
{
	json_t *parts[] = {json_object_get(spec, "command"), json_object_get(spec, "args")};
	const char *names[] = {"spec.command", "spec.args"};
	size_t n = 0;
	for (size_t i = 0; i < 2; i++) {
		if (parts[i] && !json_is_null(parts[i]) && !json_is_array(parts[i]))
			return kerr_set(err, EINVAL, "%s: must be an array of strings", names[i]);
		n += json_array_size(parts[i]);
	}
	if (n == 0)
		return kerr_set(err, EINVAL, "process runtime needs spec.command");
	char **v = xcalloc(n + 1, sizeof(char *));
	size_t k = 0, idx;
	json_t *s;
	for (size_t i = 0; i < 2; i++)
		json_array_foreach(parts[i], idx, s)
		{
			if (!json_is_string(s)) {
				strv_free(v);
				return kerr_set(err, EINVAL, "%s[%zu]: must be a string", names[i],
				                idx);
			}
			v[k++] = xstrdup(json_string_value(s));
		}
	*out = v;
	return 0;
}

/* Sets NAME=VALUE in env (an array of "K=V"), replacing an earlier NAME. */
static void env_set(json_t *env, const char *name, const char *value)
{
	size_t i, n = strlen(name);
	json_t *s;
	json_array_foreach(env, i, s)
	{
		const char *kv = json_string_value(s);
		if (strncmp(kv, name, n) == 0 && kv[n] == '=') {
			json_array_remove(env, i);
			break;
		}
	}
	json_array_append_new(env, json_sprintf("%s=%s", name, value));
}

static int build_env(const struct rt_task *t, json_t **out, struct kerr *err)
{
	_cleanup_json_ json_t *env = json_array();
	const char *path = getenv("PATH");
	env_set(env, "PATH", path && *path ? path : DEFAULT_PATH);
	env_set(env, "HOSTNAME", t->name);
	env_set(env, "KEEL_TASK_NAME", t->name);
	env_set(env, "KEEL_TASK_NAMESPACE", t->ns);
	env_set(env, "KEEL_TASK_UID", t->uid);
	json_t *list = json_object_get(t->spec, "env"), *e;
	size_t i;
	if (list && !json_is_null(list) && !json_is_array(list))
		return kerr_set(err, EINVAL, "spec.env: must be an array of {name, value}");
	json_array_foreach(list, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		json_t *v = json_object_get(e, "value");
		if (!name || !*name || strchr(name, '='))
			return kerr_set(err, EINVAL,
			                "spec.env[%zu].name: must be a name without '='", i);
		if (v && !json_is_null(v) && !json_is_string(v))
			return kerr_set(err, EINVAL, "spec.env[%zu].value: must be a string", i);
		env_set(env, name, v ? json_string_value(v) ? json_string_value(v) : "" : "");
	}
	*out = TAKE_PTR(env);
	return 0;
}

static char **env_vector(json_t *env)
{
	char **v = xcalloc(json_array_size(env) + 1, sizeof(char *));
	size_t i;
	json_t *s;
	json_array_foreach(env, i, s) v[i] = xstrdup(json_string_value(s));
	return v;
}

/* Resolves argv0 on the task's PATH (as execvp would, but with the task's
 * environment, not the agent's). NULL when nothing executable is found. */
static char *find_exec(const char *argv0, json_t *env)
{
	if (strchr(argv0, '/'))
		return access(argv0, X_OK) == 0 ? xstrdup(argv0) : NULL;
	const char *path = DEFAULT_PATH;
	size_t i;
	json_t *s;
	json_array_foreach(env, i, s) if (strstartswith(json_string_value(s), "PATH=")) path =
	    json_string_value(s) + 5;
	for (const char *p = path; *p;) {
		size_t l = strcspn(p, ":");
		_cleanup_free_ char *cand = xasprintf("%.*s/%s", (int)l, l ? p : ".", argv0);
		struct stat sb;
		if (stat(cand, &sb) == 0 && S_ISREG(sb.st_mode) && access(cand, X_OK) == 0)
			return TAKE_PTR(cand);
		p += l;
		if (*p == ':')
			p++;
	}
	return NULL;
}

/* True when nothing listens on port (a bind to it works now). */
static bool port_free(int port, bool udp)
{
	_cleanup_close_ int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	return fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
}

/* A free port of PORT_MIN..PORT_MAX, going round from where the last
 * search stopped, so that two tasks started one after the other never get
 * the same one before the first has bound it. */
static int pick_port(struct proc_rt *p, bool udp, struct kerr *err)
{
	pthread_mutex_lock(&p->lock);
	int n = PORT_MAX - PORT_MIN + 1, found = -1;
	if (p->next_port < PORT_MIN || p->next_port > PORT_MAX)
		p->next_port = PORT_MIN + (int)(time_mono_ns() % n);
	for (int i = 0; i < n && found < 0; i++) {
		int cand = p->next_port;
		p->next_port = cand == PORT_MAX ? PORT_MIN : cand + 1;
		if (port_free(cand, udp))
			found = cand;
	}
	pthread_mutex_unlock(&p->lock);
	if (found < 0)
		return kerr_set(err, EADDRINUSE, "no free port in %d-%d", PORT_MIN, PORT_MAX);
	return found;
}

/* r->ports from spec.ports (hostPort, else a free one) and the KEEL_PORT_*
 * and PORT variables of runtime.h in r->env. */
static int assign_ports(struct proc_rt *p, json_t *spec, struct prec *r, struct kerr *err)
{
	json_t *ports = json_object_get(spec, "ports");
	size_t n = json_array_size(ports), i;
	if (n == 0)
		return 0;
	_cleanup_free_ int *host = xcalloc(n, sizeof(*host));
	json_t *pt;
	r->ports = json_array();
	json_array_foreach(ports, i, pt)
	{
		const char *proto = json_string_value(json_object_get(pt, "protocol"));
		bool udp = streq(proto, "UDP");
		int h = (int)json_integer_value(json_object_get(pt, "hostPort"));
		if (h <= 0 && (h = pick_port(p, udp, err)) < 0)
			return h;
		host[i] = h;
		json_array_append_new(
		    r->ports, json_pack("{s:O, s:i, s:s}", "containerPort",
		                        json_object_get(pt, "containerPort"), "hostPort", h,
		                        "protocol", udp ? "UDP" : "TCP"));
	}
	_cleanup_json_ json_t *vars = json_array();
	rt_port_env(spec, host, vars);
	json_array_foreach(vars, i, pt)
	{
		const char *kv = json_string_value(pt);
		_cleanup_free_ char *name = xstrndup(kv, (size_t)(strchr(kv, '=') - kv));
		env_set(r->env, name, strchr(kv, '=') + 1);
	}
	return 0;
}

/* limits.X, else requests.X. */
static int task_limits(json_t *spec, int64_t *mem, int64_t *cpu, struct kerr *err)
{
	json_t *res = json_object_get(spec, "resources");
	json_t *lim = json_object_get(res, "limits"), *req = json_object_get(res, "requests");
	json_t *m = json_object_get(lim, "memory"), *c = json_object_get(lim, "cpu");
	if (!m || json_is_null(m))
		m = json_object_get(req, "memory");
	if (!c || json_is_null(c))
		c = json_object_get(req, "cpu");
	*mem = *cpu = 0;
	if (m && !json_is_null(m) && api_quantity_memory(m, mem, err) < 0)
		return kerr_prefix(err, "spec.resources memory");
	if (c && !json_is_null(c) && api_quantity_cpu(c, cpu, err) < 0)
		return kerr_prefix(err, "spec.resources cpu");
	return 0;
}

/* An fd >= 3, so that the child's dup2 onto 0-2 never clobbers it. */
static int high_fd(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return n;
}

static int launch_fds(struct proc_launch *l, const char *dir, struct kerr *err)
{
	_cleanup_free_ char *log = xasprintf("%s/log", dir);
	l->log_fd = high_fd(open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
	if (l->log_fd < 0)
		return kerr_set(err, errno, "%s: %s", log, strerror(errno));
	l->null_fd = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (l->null_fd < 0)
		return kerr_set(err, errno, "/dev/null: %s", strerror(errno));
	int go[2], rep[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		return kerr_set(err, errno, "pipe: %s", strerror(errno));
	l->go_r = high_fd(go[0]);
	l->go_w = high_fd(go[1]);
	if (pipe2(rep, O_CLOEXEC) < 0)
		return kerr_set(err, errno, "pipe: %s", strerror(errno));
	l->rep_r = high_fd(rep[0]);
	l->rep_w = high_fd(rep[1]);
	if (l->go_r < 0 || l->go_w < 0 || l->rep_r < 0 || l->rep_w < 0)
		return kerr_set(err, EMFILE, "no file descriptors left");
	return 0;
}

/* Reads the supervisor's report until EOF: "P<pid>" and, when the task
 * could not exec, "E<errno>". */
static void read_report(int fd, pid_t *pid, int *exec_errno)
{
	char buf[128];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(buf) - 1 &&
	       ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	buf[len] = '\0';
	for (char *p = buf; *p; p++) {
		if (*p == 'P')
			*pid = (pid_t)strtol(p + 1, NULL, 10);
		else if (*p == 'E')
			*exec_errno = (int)strtol(p + 1, NULL, 10);
	}
}

static void log_append(const char *dir, const char *msg)
{
	_cleanup_free_ char *path = xasprintf("%s/log", dir);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && write(fd, msg, strlen(msg)) < 0) {
	}
}

/* The argv area of this process (/proc/self/stat fields 48 and 49). */
static void cmdline_area(uintptr_t *start, uintptr_t *end)
{
	_cleanup_free_ char *s = NULL;
	size_t len = 0;
	*start = *end = 0;
	if (file_read_all("/proc/self/stat", 4096, &s, &len, NULL) < 0)
		return;
	char *p = strrchr(s, ')');
	for (int field = 2; p && field < 48; field++)
		p = strchr(p + 1, ' ');
	unsigned long a = 0, b = 0;
	if (p && sscanf(p + 1, "%lu %lu", &a, &b) == 2 && b > a)
		*start = a, *end = b;
}

/* Everything the child needs, computed before fork. */
static int launch_prepare(struct proc_rt *p, const struct rt_task *t, struct prec *r,
                          struct proc_launch *l, struct kerr *err)
{
	int rc = build_argv(t->spec, &l->argv, err);
	if (rc < 0 || (rc = build_env(t, &r->env, err)) < 0 ||
	    (rc = assign_ports(p, t->spec, r, err)) < 0)
		return rc;
	l->path = find_exec(l->argv[0], r->env);
	if (!l->path)
		return kerr_set(err, ENOEXEC, "exec \"%s\": executable file not found in $PATH",
		                l->argv[0]);
	int64_t mem, cpu;
	if ((rc = task_limits(t->spec, &mem, &cpu, err)) < 0)
		return rc;
	r->cwd = xasprintf("%s/work", r->dir);
	if ((rc = mkdir_p(r->cwd, 0700, err)) < 0)
		return rc;
	_cleanup_free_ char *cgname = xasprintf("%s-%u", t->uid, t->attempt);
	if (p->cg.mode != CG_NONE &&
	    (rc = cg_set_create(&p->cg, cgname, mem, cpu, &r->cg, err)) < 0)
		return kerr_prefix(err, "limits");
	l->envp = env_vector(r->env);
	l->cwd = xstrdup(r->cwd);
	l->nprocs = cg_set_procs_paths(&r->cg, l->procs);
	l->exit_path = xasprintf("%s/exit", r->dir);
	l->exit_tmp = xasprintf("%s/.exit.tmp", r->dir);
	l->pid_path = xasprintf("%s/pid", r->dir);
	l->title = xasprintf("keel-supervise proc-%s-%u", t->uid, t->attempt);
	cmdline_area(&l->arg_start, &l->arg_end);
	l->mode = r->cg.mode;
	l->memdir = r->cg.mode == CG_V2 ? r->cg.v2 : r->cg.mem;
	return launch_fds(l, r->dir, err);
}

/* Forks the supervisor, records it, lets it go and waits for its report. */
static int launch_run(struct proc_rt *p, struct prec *r, struct proc_launch *l, struct kerr *err)
{
	pid_t s = fork();
	if (s < 0)
		return kerr_set(err, errno, "fork: %s", strerror(errno));
	if (s == 0)
		proc_supervisor_main(l);
	close(TAKE_FD(l->go_r));
	close(TAKE_FD(l->rep_w));
	child_add(p, s);
	char c;
	r->spid = s;
	proc_stat_of(s, &r->sstart, &c);
	r->started_at = time_now_unix();
	int rc = rec_save(r, err);
	if (rc < 0) {
		kill(s, SIGKILL);
		return rc; /* closing go makes the supervisor exit unstarted */
	}
	if (write(l->go_w, "g", 1) != 1)
		return kerr_set(err, EIO, "supervisor of %s did not start", r->name);
	close(TAKE_FD(l->go_w));
	int exec_errno = 0;
	read_report(l->rep_r, &r->pid, &exec_errno);
	if (exec_errno) {
		_cleanup_free_ char *msg =
		    xasprintf("keel: exec %s: %s\n", l->path, strerror(exec_errno));
		log_append(r->dir, msg);
		return kerr_set(err, ENOEXEC, "exec %s: %s", l->path, strerror(exec_errno));
	}
	if (r->pid > 0)
		proc_stat_of(r->pid, &r->pstart, &c);
	return rec_save(r, err);
}

/* Undoes a failed start: waits for the supervisor (it ends at once), removes
 * the record and the cgroup; the log stays. */
static void start_undo(struct proc_rt *p, struct prec *r)
{
	for (int i = 0; i < 100 && r->spid > 0 && alive(r->spid, r->sstart); i++) {
		reap(p);
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	reap(p);
	const char *files[] = {"record", "exit", "pid"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *f = xasprintf("%s/%s", r->dir, files[i]);
		unlink(f);
	}
	cg_set_remove(&r->cg, NULL);
}

static void remove_older(struct proc_rt *p, const char *uid, unsigned n);

static int proc_start(struct runtime *rt, const struct rt_task *t, char **id, struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	if (!uid_ok(t->uid))
		return kerr_set(err, EINVAL,
		                "task uid \"%s\": must be 1-%d letters, digits, '.', '_' "
		                "or '-'",
		                t->uid ? t->uid : "", MAX_UID);
	if (!t->ns || !t->name || !t->node)
		return kerr_set(err, EINVAL, "task needs a namespace, a name and a node");
	json_t *grace = json_object_get(t->spec, "terminationGracePeriodSeconds");
	_cleanup_prec_ struct prec r = {.uid = xstrdup(t->uid),
	                                .ns = xstrdup(t->ns),
	                                .name = xstrdup(t->name),
	                                .node = xstrdup(t->node),
	                                .attempt = t->attempt,
	                                .grace_s = json_is_integer(grace) &&
	                                                   json_integer_value(grace) >= 0 &&
	                                                   json_integer_value(grace) <= INT_MAX
	                                               ? (int)json_integer_value(grace)
	                                               : -1,
	                                .spec_hash = t->spec_hash ? xstrdup(t->spec_hash) : NULL,
	                                .dir = attempt_dir(p, t->uid, t->attempt)};
	int rc = mkdir_p(r.dir, 0700, err);
	if (rc < 0)
		return rc;
	_cleanup_prec_ struct prec old = {0};
	if (rec_load(p, t->uid, t->attempt, &old, NULL) == 0) {
		if (!rec_ended(&old)) { /* already running: adopt it */
			*id = xasprintf("proc-%s-%u", t->uid, t->attempt);
			return 0;
		}
		return kerr_set(err, EEXIST, "attempt %u of task %s/%s already ran (proc-%s-%u)",
		                t->attempt, t->ns, t->name, t->uid, t->attempt);
	}
	_cleanup_free_ char *exitpath = xasprintf("%s/exit", r.dir);
	unlink(exitpath);
	struct proc_launch l = {
	    .log_fd = -1, .null_fd = -1, .go_r = -1, .go_w = -1, .rep_r = -1, .rep_w = -1};
	rc = launch_prepare(p, t, &r, &l, err);
	if (rc >= 0)
		rc = launch_run(p, &r, &l, err);
	launch_clear(&l);
	if (rc < 0) {
		start_undo(p, &r);
		return kerr_prefix(err, "start %s/%s", t->ns, t->name);
	}
	remove_older(p, t->uid, t->attempt);
	*id = xasprintf("proc-%s-%u", t->uid, t->attempt);
	return 0;
}

/* ---- stop, remove ----------------------------------------------------- */

static int load_id(struct proc_rt *p, const char *id, struct prec *r, struct kerr *err)
{
	_cleanup_free_ char *uid = NULL;
	unsigned attempt;
	int rc = id_parse(id, &uid, &attempt, err);
	return rc < 0 ? rc : rec_load(p, uid, attempt, r, err);
}

static void signal_task(const struct prec *r, int sig)
{
	if (alive(r->pid, r->pstart) && kill(-r->pid, sig) < 0 && errno == ESRCH)
		kill(r->pid, sig);
}

/* Polls until the attempt ended or ms passed. */
static bool wait_ended(struct proc_rt *p, const struct prec *r, int64_t ms)
{
	int64_t deadline = time_mono_ms() + ms;
	for (;;) {
		reap(p);
		if (rec_ended(r))
			return true;
		if (time_mono_ms() >= deadline)
			return false;
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
	}
}

static int proc_stop(struct runtime *rt, const char *id, int grace_s, struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	_cleanup_prec_ struct prec r = {0};
	_cleanup_free_ char *uid = NULL;
	unsigned attempt;
	int rc = id_parse(id, &uid, &attempt, err);
	if (rc < 0)
		return rc;
	if (rec_load(p, uid, attempt, &r, NULL) < 0 || wait_ended(p, &r, 0))
		return 0; /* removed already, or ended */
	signal_task(&r, SIGTERM);
	if (wait_ended(p, &r, grace_s > 0 ? (int64_t)grace_s * 1000 : 0))
		return 0;
	signal_task(&r, SIGKILL);
	if (wait_ended(p, &r, 2000))
		return 0;
	return kerr_set(err, ETIMEDOUT, "stop %s: still running 2 s after SIGKILL", id);
}

static void sample_drop(struct proc_rt *p, const char *id)
{
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nsamples; i++)
		if (streq(p->samples[i].id, id)) {
			free(p->samples[i].id);
			p->samples[i] = p->samples[--p->nsamples];
			break;
		}
	pthread_mutex_unlock(&p->lock);
}

static int cmp_desc(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Numeric attempt directories of uid, newest first. Owned array. */
static size_t attempts_of(const struct proc_rt *p, const char *uid, unsigned **out)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", p->tasks_dir, uid);
	DIR *d = opendir(dir);
	size_t n = 0, cap = 0;
	unsigned *v = NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l == 0 || l > 9 || strspn(de->d_name, "0123456789") != l)
			continue;
		if (n == cap)
			v = xrealloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
		v[n++] = (unsigned)strtoul(de->d_name, NULL, 10);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_desc);
	*out = v;
	return n;
}

/* Deletes attempt directories beyond the newest KEEP_ATTEMPTS that have
 * no record (live attempts are never touched). */
static void prune_attempts(struct proc_rt *p, const char *uid)
{
	_cleanup_free_ unsigned *v = NULL;
	size_t n = attempts_of(p, uid, &v);
	for (size_t i = KEEP_ATTEMPTS; i < n; i++) {
		_cleanup_free_ char *dir = attempt_dir(p, uid, v[i]);
		_cleanup_free_ char *rec = xasprintf("%s/record", dir);
		if (access(rec, F_OK) < 0)
			rm_rf(dir);
	}
}

/* Removes an ended attempt's cgroup, record and work directory. */
static int remove_rec(struct proc_rt *p, const struct prec *r, const char *id, struct kerr *err)
{
	int rc = cg_set_remove(&r->cg, err);
	if (rc < 0)
		return kerr_prefix(err, "remove %s", id);
	_cleanup_free_ char *work = xasprintf("%s/work", r->dir);
	rm_rf(work);
	const char *files[] = {"exit", "pid", "record"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *f = xasprintf("%s/%s", r->dir, files[i]);
		if (unlink(f) < 0 && errno != ENOENT)
			return kerr_set(err, errno, "remove %s: %s: %s", id, f, strerror(errno));
	}
	sample_drop(p, id);
	return 0;
}

static int proc_remove(struct runtime *rt, const char *id, struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	_cleanup_prec_ struct prec r = {0};
	int rc = load_id(p, id, &r, err);
	if (rc < 0)
		return rc;
	reap(p);
	if (!rec_ended(&r))
		return kerr_set(err, EBUSY, "remove %s: still running; stop it first", id);
	if ((rc = remove_rec(p, &r, id, err)) < 0)
		return rc;
	prune_attempts(p, r.uid);
	return 0;
}

/* After attempt n started: the ended attempts before n-1 are removed (their
 * logs pruned to the last KEEP_ATTEMPTS), as the docker runtime does, so an
 * agent that never calls remove() for old attempts leaks nothing and
 * `keel logs --previous` still has attempt n-1. */
static void remove_older(struct proc_rt *p, const char *uid, unsigned n)
{
	_cleanup_free_ unsigned *v = NULL;
	size_t na = attempts_of(p, uid, &v);
	for (size_t i = 0; i < na; i++) {
		_cleanup_prec_ struct prec r = {0};
		if (v[i] + 1 >= n || rec_load(p, uid, v[i], &r, NULL) < 0 || !rec_ended(&r))
			continue;
		_cleanup_free_ char *id = xasprintf("proc-%s-%u", uid, v[i]);
		remove_rec(p, &r, id, NULL);
	}
	prune_attempts(p, uid);
}

/* ---- list, inspect ---------------------------------------------------- */

/* A task whose attempts were all removed keeps its last logs for
 * `keel logs --previous`; once the newest is ORPHAN_LOG_S old, the Task is
 * taken to be gone and its directory is deleted (the runtime cannot tell a
 * deleted Task from one waiting for its next restart). */
static void gc_orphan(struct proc_rt *p, const char *uid, const unsigned *att, size_t na)
{
	time_t newest = 0;
	for (size_t i = 0; i < na; i++) {
		_cleanup_free_ char *dir = attempt_dir(p, uid, att[i]);
		_cleanup_free_ char *rec = xasprintf("%s/record", dir);
		_cleanup_free_ char *log = xasprintf("%s/log", dir);
		struct stat sb;
		if (access(rec, F_OK) == 0)
			return;
		if (stat(log, &sb) == 0 && sb.st_mtime > newest)
			newest = sb.st_mtime;
		if (stat(dir, &sb) == 0 && sb.st_mtime > newest)
			newest = sb.st_mtime;
	}
	if (time_now_unix() - (int64_t)newest < ORPHAN_LOG_S)
		return;
	_cleanup_free_ char *dir = xasprintf("%s/%s", p->tasks_dir, uid);
	rm_rf(dir);
}

static int proc_list(struct runtime *rt, const char *node, struct rt_status **out, size_t *n,
                     struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	(void)err;
	reap(p);
	struct rt_status *v = NULL;
	size_t len = 0, cap = 0;
	DIR *d = opendir(p->tasks_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!uid_ok(de->d_name))
			continue;
		_cleanup_free_ unsigned *att = NULL;
		size_t na = attempts_of(p, de->d_name, &att);
		for (size_t i = 0; i < na; i++) {
			_cleanup_prec_ struct prec r = {0};
			if (rec_load(p, de->d_name, att[i], &r, NULL) < 0 ||
			    (node && !streq(node, r.node)))
				continue;
			if (len == cap)
				v = xrealloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
			rec_status(&r, &v[len++]);
		}
		gc_orphan(p, de->d_name, att, na);
	}
	if (d)
		closedir(d);
	*out = v;
	*n = len;
	return 0;
}

static int proc_inspect(struct runtime *rt, const char *id, struct rt_status *out, struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	_cleanup_prec_ struct prec r = {0};
	int rc = load_id(p, id, &r, err);
	if (rc < 0)
		return rc;
	reap(p);
	rec_status(&r, out);
	return 0;
}

/* ---- logs ------------------------------------------------------------- */

/* Offset where the last n lines of fd begin (a final newline ends the last
 * line, it does not start another). */
static off_t tail_offset(int fd, long n)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return 0;
	off_t size = sb.st_size, pos = size;
	if (n == 0)
		return size;
	long count = 0;
	char buf[8192];
	while (pos > 0) {
		size_t len = pos < (off_t)sizeof(buf) ? (size_t)pos : sizeof(buf);
		pos -= (off_t)len;
		if (pread(fd, buf, len, pos) != (ssize_t)len)
			return 0;
		for (size_t i = len; i-- > 0;)
			if (buf[i] == '\n' && pos + (off_t)i != size - 1 && ++count == n)
				return pos + (off_t)i + 1;
	}
	return 0;
}

/* Sends what fd has from its offset on; 1 when fn asked to stop. */
static int drain(int fd, rt_log_fn fn, void *ctx)
{
	char buf[16384];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		if (fn(ctx, buf, (size_t)n) != 0)
			return 1;
	}
}

/* The attempt whose log to read: the id's, or the newest kept before it. */
static int log_attempt(struct proc_rt *p, const char *uid, unsigned attempt, bool previous,
                       unsigned *out, struct kerr *err)
{
	if (!previous) {
		*out = attempt;
		return 0;
	}
	_cleanup_free_ unsigned *v = NULL;
	size_t n = attempts_of(p, uid, &v);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *dir = attempt_dir(p, uid, v[i]);
		_cleanup_free_ char *log = xasprintf("%s/log", dir);
		if (v[i] < attempt && access(log, F_OK) == 0) {
			*out = v[i];
			return 0;
		}
	}
	return kerr_set(err, ENOENT, "no previous attempt of task %s is kept (current: %u)", uid,
	                attempt);
}

static int proc_logs(struct runtime *rt, const char *id, const struct rt_log_opts *o, rt_log_fn fn,
                     void *ctx, struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	_cleanup_free_ char *uid = NULL;
	unsigned attempt = 0, which = 0;
	int rc = id_parse(id, &uid, &attempt, err);
	if (rc < 0 || (rc = log_attempt(p, uid, attempt, o && o->previous, &which, err)) < 0)
		return rc;
	_cleanup_free_ char *dir = attempt_dir(p, uid, which);
	_cleanup_free_ char *path = xasprintf("%s/log", dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kerr_set(err, ENOENT, "no log for %s: %s", id, strerror(errno));
	if (o && o->tail >= 0 && lseek(fd, tail_offset(fd, o->tail), SEEK_SET) < 0)
		return kerr_set(err, errno, "%s: %s", path, strerror(errno));
	if (drain(fd, fn, ctx) || !o || !o->follow || o->previous)
		return 0;
	_cleanup_prec_ struct prec r = {0};
	if (rec_load(p, uid, which, &r, NULL) < 0)
		return 0; /* removed: nothing more will be written */
	for (;;) {
		bool ended = rec_ended(&r);
		if (drain(fd, fn, ctx) || ended)
			return 0;
		nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
	}
}

/* ---- stats ------------------------------------------------------------ */

/* CPU ns and RSS bytes of the processes in session sid, from /proc (for
 * hosts without cgroups). */
static void session_usage(pid_t sid, int64_t *cpu_ns, int64_t *rss)
{
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long ticks = 0, pages = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!(de->d_name[0] >= '1' && de->d_name[0] <= '9'))
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		_cleanup_free_ char *s = NULL;
		size_t len = 0;
		if (file_read_all(path, 4096, &s, &len, NULL) < 0)
			continue;
		char *q = strrchr(s, ')');
		int sess = 0;
		unsigned long long ut = 0, stt = 0, rs = 0;
		if (!q ||
		    sscanf(q + 2,
		           "%*c %*d %*d %d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
		           "%*d %*d %*d %*d %*u %*u %llu",
		           &sess, &ut, &stt, &rs) != 4)
			continue;
		/* The task's own pid counts before it has called setsid(). */
		if (sess != sid && strtol(de->d_name, NULL, 10) != (long)sid)
			continue;
		ticks += ut + stt;
		pages += rs;
	}
	if (d)
		closedir(d);
	*cpu_ns = (int64_t)(ticks * (1000000000ULL / (unsigned long long)(tck > 0 ? tck : 100)));
	*rss = (int64_t)(pages * (unsigned long long)(page > 0 ? page : 4096));
}

/* Average millicores since the previous sample of id (or since start). */
static int64_t cpu_rate(struct proc_rt *p, const char *id, int64_t cpu_ns, int64_t started_at)
{
	int64_t now = time_mono_ns(), rate = -1;
	pthread_mutex_lock(&p->lock);
	struct cpu_sample *s = NULL;
	for (size_t i = 0; i < p->nsamples && !s; i++)
		if (streq(p->samples[i].id, id))
			s = &p->samples[i];
	if (s && now > s->mono_ns && cpu_ns >= s->cpu_ns) {
		rate = (cpu_ns - s->cpu_ns) * 1000 / (now - s->mono_ns);
	} else if (!s) {
		int64_t el = (time_now_unix() - started_at) * 1000000000LL;
		rate = cpu_ns * 1000 / (el > 1000000000LL ? el : 1000000000LL);
		p->samples = xrealloc(p->samples, (p->nsamples + 1) * sizeof(*p->samples));
		s = &p->samples[p->nsamples++];
		s->id = xstrdup(id);
	}
	s->mono_ns = now;
	s->cpu_ns = cpu_ns;
	pthread_mutex_unlock(&p->lock);
	return rate;
}

static int proc_stats(struct runtime *rt, const char *id, struct rt_stats *out, struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	_cleanup_prec_ struct prec r = {0};
	int rc = load_id(p, id, &r, err);
	if (rc < 0)
		return rc;
	if (rec_ended(&r)) {
		*out = (struct rt_stats){0, 0};
		return 0;
	}
	int64_t cpu = cg_set_cpu_ns(&r.cg), mem = cg_set_memory(&r.cg);
	if (cpu < 0 || mem < 0) {
		int64_t pc, pm;
		session_usage(r.pid, &pc, &pm);
		cpu = cpu < 0 ? pc : cpu;
		mem = mem < 0 ? pm : mem;
	}
	*out = (struct rt_stats){cpu_rate(p, id, cpu, r.started_at), mem};
	return 0;
}

/* ---- exec ------------------------------------------------------------- */

static _Noreturn void exec_child(const char *path, char *const argv[], char **envp, char *procs[],
                                 int nprocs, const char *cwd, int null_fd)
{
	setsid();
	if (cg_join_raw(procs, nprocs, (int)getpid()) < 0)
		_exit(126);
	if (dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0)
		_exit(126);
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	if (chdir(cwd) < 0)
		_exit(126);
	proc_reset_signals();
	execve(path, argv, envp);
	_exit(127);
}

static int exec_wait(pid_t pid, int timeout_s, int *exit_code, struct kerr *err)
{
	int64_t deadline = time_mono_ms() + (int64_t)(timeout_s > 0 ? timeout_s : 1) * 1000;
	int status = 0;
	for (long nap = 1;; nap = nap < 50 ? nap * 2 : 50) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return kerr_set(err, errno, "exec: waitpid: %s", strerror(errno));
		if (time_mono_ms() >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
			}
			return kerr_set(err, ETIMEDOUT, "exec timed out after %d s",
			                timeout_s > 0 ? timeout_s : 1);
		}
		nanosleep(&(struct timespec){0, nap * 1000 * 1000}, NULL);
	}
	*exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return 0;
}

static int proc_exec(struct runtime *rt, const char *id, char *const argv[], int timeout_s,
                     int *exit_code, struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	_cleanup_prec_ struct prec r = {0};
	int rc = load_id(p, id, &r, err);
	if (rc < 0)
		return rc;
	if (!argv || !argv[0])
		return kerr_set(err, EINVAL, "exec %s: empty command", id);
	if (rec_ended(&r))
		return kerr_set(err, ESRCH, "exec %s: the task is not running", id);
	_cleanup_free_ char *path = find_exec(argv[0], r.env);
	if (!path) {
		*exit_code = 127; /* as a shell reports a command it cannot find */
		return 0;
	}
	_cleanup_strv_ char **envp = env_vector(r.env);
	char *procs[4];
	int nprocs = cg_set_procs_paths(&r.cg, procs);
	_cleanup_close_ int null_fd = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
	pid_t pid = null_fd < 0 ? -1 : fork();
	if (pid == 0)
		exec_child(path, argv, envp, procs, nprocs, r.cwd, null_fd);
	for (int i = 0; i < nprocs; i++)
		free(procs[i]);
	if (pid < 0)
		return kerr_set(err, errno, "exec %s: %s", id, strerror(errno));
	int code = 0;
	if ((rc = exec_wait(pid, timeout_s, &code, err)) < 0)
		return kerr_prefix(err, "exec %s in %s", argv[0], id);
	*exit_code = code;
	return 0;
}

/* ---- info, lifecycle -------------------------------------------------- */

static int proc_info(struct runtime *rt, struct rt_info *out, struct kerr *err)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	(void)err;
	*out = (struct rt_info){xstrdup("process"), xstrdup(KEEL_VERSION),
	                        p->cg.warning ? xstrdup(p->cg.warning) : NULL};
	return 0;
}

static void proc_free(struct runtime *rt)
{
	struct proc_rt *p = (struct proc_rt *)rt;
	if (!p)
		return;
	reap(p);
	for (size_t i = 0; i < p->nsamples; i++)
		free(p->samples[i].id);
	free(p->samples);
	free(p->children);
	free(p->tasks_dir);
	cg_host_clear(&p->cg);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct runtime_ops proc_ops = {
    .name = "process",
    .start = proc_start,
    .stop = proc_stop,
    .remove = proc_remove,
    .list = proc_list,
    .inspect = proc_inspect,
    .logs = proc_logs,
    .stats = proc_stats,
    .exec = proc_exec,
    .info = proc_info,
    .free = proc_free,
};

int rt_process_new(const struct rt_process_options *o, struct runtime **out, struct kerr *err)
{
	if (!o || !o->state_dir || !*o->state_dir)
		return kerr_set(err, EINVAL, "process runtime needs a state directory");
	_cleanup_free_ char *tasks = xasprintf("%s/tasks", o->state_dir);
	int rc = mkdir_p(tasks, 0700, err);
	if (rc < 0)
		return kerr_prefix(err, "process runtime");
	struct proc_rt *p = xcalloc(1, sizeof(*p));
	p->base.ops = &proc_ops;
	p->tasks_dir = TAKE_PTR(tasks);
	pthread_mutex_init(&p->lock, NULL);
	cg_host_detect(o->cgroup_root, &p->cg);
	*out = &p->base;
	return 0;
}
