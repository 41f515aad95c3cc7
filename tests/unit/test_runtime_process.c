/*
 * Tests of the process runtime against real processes, a temp state
 * directory and (where the host has them) real cgroups: exit codes and
 * reasons, stop with grace and SIGKILL, adoption after the agent dies,
 * env, limits, OOM kills, logs (tail, follow, previous), exec, stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "agent/runtime.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

struct fx {
	char dir[512];
	struct runtime *rt;
};

static int counter;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	const char *base = getenv("KEEL_TEST_TMP");
	if (base)
		mkdir(base, 0755);
	snprintf(f->dir, sizeof(f->dir), "%s/rtproc.XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	struct kerr err = KERR_INIT;
	struct rt_process_options o = {.state_dir = f->dir};
	assert_int_equal(rt_process_new(&o, &f->rt, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct rt_status *sts = NULL;
	size_t n = 0;
	if (f->rt && f->rt->ops->list(f->rt, NULL, &sts, &n, NULL) == 0) {
		for (size_t i = 0; i < n; i++) {
			f->rt->ops->stop(f->rt, sts[i].id, 0, NULL);
			f->rt->ops->remove(f->rt, sts[i].id, NULL);
		}
		rt_status_array_free(sts, n);
	}
	runtime_free(f->rt);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A unique uid per task, so that parallel test runs never share cgroups. */
static char *new_uid(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return xasprintf("t%d-%ld-%d", (int)getpid(), (long)ts.tv_nsec, counter++);
}

/* Starts `sh -c SCRIPT` as attempt of uid (extra: more spec fields as JSON). */
static int start_sh(struct fx *f, const char *uid, unsigned attempt, const char *script,
                    const char *extra, char **id, struct kerr *err)
{
	json_t *spec =
	    json_pack("{s:s, s:[s, s, s]}", "image", "none", "command", "sh", "-c", script);
	if (extra) {
		json_t *x = json_loads(extra, 0, NULL);
		assert_non_null(x);
		json_object_update(spec, x);
		json_decref(x);
	}
	struct rt_task t = {uid, "default", "web", "n1", spec, attempt, "feedc0de01234567"};
	int rc = f->rt->ops->start(f->rt, &t, id, err);
	json_decref(spec);
	return rc;
}

static void inspect(struct fx *f, const char *id, struct rt_status *st)
{
	struct kerr err = KERR_INIT;
	int rc = f->rt->ops->inspect(f->rt, id, st, &err);
	if (rc < 0)
		fail_msg("inspect %s: %s", id, kerr_msg(&err));
}

/* Waits until id has ended; fills st. */
static void wait_exit(struct fx *f, const char *id, int timeout_s, struct rt_status *st)
{
	int64_t deadline = time_mono_ms() + timeout_s * 1000;
	for (;;) {
		inspect(f, id, st);
		if (st->state == RT_EXITED)
			return;
		rt_status_clear(st);
		if (time_mono_ms() > deadline)
			fail_msg("%s still running after %d s", id, timeout_s);
		usleep(20000);
	}
}

static int collect(void *ctx, const char *data, size_t len)
{
	sbuf_append(ctx, data, len);
	return 0;
}

/* The log of id as one string (owned). */
static char *logs(struct fx *f, const char *id, long tail, bool follow, bool previous)
{
	struct sbuf b = SBUF_INIT;
	struct kerr err = KERR_INIT;
	struct rt_log_opts o = {.follow = follow, .tail = tail, .previous = previous};
	int rc = f->rt->ops->logs(f->rt, id, &o, collect, &b, &err);
	if (rc < 0)
		fail_msg("logs %s: %s", id, kerr_msg(&err));
	return sbuf_take(&b);
}

static void test_exit_code_and_logs(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	struct kerr err = KERR_INIT;
	assert_int_equal(start_sh(f, uid, 0, "echo hi; echo oops >&2; exit 3", NULL, &id, &err), 0);
	struct rt_status st;
	wait_exit(f, id, 10, &st);
	rt_status_clear(&st);

	struct rt_status *sts = NULL;
	size_t n = 0;
	assert_int_equal(f->rt->ops->list(f->rt, "n1", &sts, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(sts[0].id, id);
	assert_string_equal(sts[0].task_uid, uid);
	assert_string_equal(sts[0].ns, "default");
	assert_string_equal(sts[0].name, "web");
	assert_int_equal(sts[0].state, RT_EXITED);
	assert_int_equal(sts[0].exit_code, 3);
	assert_string_equal(sts[0].reason, "Error");
	assert_string_equal(sts[0].ip, "127.0.0.1");
	assert_true(sts[0].started_at > 0 && sts[0].finished_at >= sts[0].started_at);
	assert_false(sts[0].has_grace); /* the spec had none */
	assert_string_equal(sts[0].spec_hash, "feedc0de01234567"); /* the record keeps it */
	rt_status_array_free(sts, n);

	assert_int_equal(f->rt->ops->list(f->rt, "other-node", &sts, &n, &err), 0);
	assert_int_equal(n, 0);
	free(sts);

	_cleanup_free_ char *out = logs(f, id, -1, false, false);
	assert_string_equal(out, "hi\noops\n");
}

static void test_exit_zero_completed(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	assert_int_equal(start_sh(f, uid, 0, "true", NULL, &id, NULL), 0);
	struct rt_status st;
	wait_exit(f, id, 10, &st);
	assert_int_equal(st.exit_code, 0);
	assert_string_equal(st.reason, "Completed");
	rt_status_clear(&st);
}

static void test_stop_with_grace(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	assert_int_equal(start_sh(f, uid, 0, "exec sleep 100", NULL, &id, NULL), 0);
	struct rt_status st;
	inspect(f, id, &st);
	assert_int_equal(st.state, RT_RUNNING);
	rt_status_clear(&st);
	int64_t t0 = time_mono_ms();
	struct kerr err = KERR_INIT;
	assert_int_equal(f->rt->ops->stop(f->rt, id, 3, &err), 0);
	assert_true(time_mono_ms() - t0 < 1000); /* sleep dies of SIGTERM at once */
	inspect(f, id, &st);
	assert_int_equal(st.state, RT_EXITED);
	assert_int_equal(st.exit_code, 128 + SIGTERM);
	assert_string_equal(st.reason, "Error");
	assert_non_null(strstr(st.message, "SIGTERM"));
	rt_status_clear(&st);
	/* idempotent */
	assert_int_equal(f->rt->ops->stop(f->rt, id, 3, &err), 0);
}

static void test_stop_kills_after_grace(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	assert_int_equal(start_sh(f, uid, 0,
	                          "trap '' TERM; echo ready; while :; do sleep 0.1; done", NULL,
	                          &id, NULL),
	                 0);
	for (int i = 0; i < 100; i++) { /* the trap must be set before we signal */
		_cleanup_free_ char *out = logs(f, id, -1, false, false);
		if (strstr(out, "ready"))
			break;
		usleep(20000);
	}
	int64_t t0 = time_mono_ms();
	struct kerr err = KERR_INIT;
	assert_int_equal(f->rt->ops->stop(f->rt, id, 1, &err), 0);
	int64_t took = time_mono_ms() - t0;
	assert_true(took >= 1000);
	assert_true(took < 2000);
	struct rt_status st;
	inspect(f, id, &st);
	assert_int_equal(st.state, RT_EXITED);
	assert_int_equal(st.exit_code, 128 + SIGKILL);
	assert_string_equal(st.reason, "Killed");
	rt_status_clear(&st);
}

/* The agent is a child process that starts a task and dies (_exit, like
 * kill -9: no cleanup); a new runtime object adopts the task. */
static void test_adopt_after_agent_death(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid();
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t agent = fork();
	assert_true(agent >= 0);
	if (agent == 0) {
		struct runtime *rt = NULL;
		struct rt_process_options o = {.state_dir = f->dir};
		char *id = NULL;
		json_t *spec = json_pack("{s:[s,s,s], s:i}", "command", "sh", "-c",
		                         "sleep 1; exit 7", "terminationGracePeriodSeconds", 3);
		struct rt_task t = {uid, "default", "web", "n1", spec, 4, NULL};
		if (rt_process_new(&o, &rt, NULL) < 0 || rt->ops->start(rt, &t, &id, NULL) < 0)
			_exit(1);
		if (write(p[1], id, strlen(id)) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	char buf[256] = {0};
	assert_true(read(p[0], buf, sizeof(buf) - 1) > 0);
	close(p[0]);
	int status;
	assert_int_equal(waitpid(agent, &status, 0), agent);
	assert_int_equal(WEXITSTATUS(status), 0);

	runtime_free(f->rt);
	struct rt_process_options o = {.state_dir = f->dir};
	assert_int_equal(rt_process_new(&o, &f->rt, NULL), 0);
	struct rt_status *sts = NULL;
	size_t n = 0;
	assert_int_equal(f->rt->ops->list(f->rt, "n1", &sts, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(sts[0].id, buf);
	assert_int_equal(sts[0].attempt, 4);
	assert_int_equal(sts[0].state, RT_RUNNING);
	/* the Task's grace period, for a stop after the Task is gone */
	assert_true(sts[0].has_grace);
	assert_int_equal(sts[0].grace_s, 3);
	rt_status_array_free(sts, n);
	struct rt_status st;
	wait_exit(f, buf, 10, &st);
	assert_int_equal(st.exit_code, 7);
	assert_string_equal(st.reason, "Error");
	rt_status_clear(&st);
}

static void test_env(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	assert_int_equal(
	    start_sh(
	        f, uid, 0,
	        "echo \"$FOO|$EMPTY|$KEEL_TASK_NAME|$KEEL_TASK_NAMESPACE|$HOSTNAME\"; "
	        "echo \"$KEEL_TASK_UID\"; pwd",
	        "{\"env\": [{\"name\": \"FOO\", \"value\": \"bar baz\"}, {\"name\": \"EMPTY\"}]}",
	        &id, NULL),
	    0);
	struct rt_status st;
	wait_exit(f, id, 10, &st);
	rt_status_clear(&st);
	_cleanup_free_ char *out = logs(f, id, -1, false, false);
	_cleanup_free_ char *want =
	    xasprintf("bar baz||web|default|web\n%s\n%s/tasks/%s/0/work\n", uid, f->dir, uid);
	assert_string_equal(out, want);
}

/* Ports: a process shares the host's network, so each one gets a host port
 * of its own (its hostPort, else a free one of 30000-32767), in its
 * environment and in what the runtime reports, also after a restart of the
 * runtime (adoption). */
static void test_ports(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid1 = new_uid(), *uid2 = new_uid(), *id1 = NULL, *id2 = NULL;
	const char *spec = "{\"ports\": [{\"name\": \"http\", \"containerPort\": 8080}, "
	                   "{\"containerPort\": 9000, \"hostPort\": 29999}]}";
	const char *script = "echo \"$PORT $KEEL_PORT_HTTP $KEEL_PORT_8080 $KEEL_PORT_9000\"; "
	                     "exec sleep 30";
	assert_int_equal(start_sh(f, uid1, 0, script, spec, &id1, NULL), 0);
	assert_int_equal(start_sh(f, uid2, 0, script, spec, &id2, NULL), 0);
	struct rt_status a, b;
	inspect(f, id1, &a);
	inspect(f, id2, &b);
	assert_true(a.host_network);
	assert_int_equal(a.nports, 2);
	assert_int_equal(a.ports[0].container_port, 8080);
	assert_true(a.ports[0].host_port >= 30000 && a.ports[0].host_port <= 32767);
	assert_int_equal(a.ports[1].container_port, 9000);
	assert_int_equal(a.ports[1].host_port, 29999);
	assert_int_not_equal(a.ports[0].host_port, b.ports[0].host_port); /* one each */
	_cleanup_free_ char *want = xasprintf("%d %d %d 29999\n", a.ports[0].host_port,
	                                      a.ports[0].host_port, a.ports[0].host_port);
	_cleanup_free_ char *out = NULL;
	for (int i = 0; i < 250 && (!out || !*out); i++) {
		free(out);
		usleep(20000);
		out = logs(f, id1, -1, false, false);
	}
	assert_string_equal(out, want);
	/* a new runtime on the same state directory (the agent restarted) sees the same */
	struct kerr err = KERR_INIT;
	struct runtime *rt2 = NULL;
	struct rt_process_options o = {.state_dir = f->dir};
	assert_int_equal(rt_process_new(&o, &rt2, &err), 0);
	struct rt_status c;
	assert_int_equal(rt2->ops->inspect(rt2, id1, &c, &err), 0);
	assert_int_equal(c.nports, 2);
	assert_int_equal(c.ports[0].host_port, a.ports[0].host_port);
	runtime_free(rt2);
	rt_status_clear(&a);
	rt_status_clear(&b);
	rt_status_clear(&c);
}

/* The task's cgroup file, v2 or v1; NULL when the host has neither. */
static char *cg_file(const char *uid, unsigned attempt, const char *v2file, const char *v1ctl,
                     const char *v1file)
{
	char *p = xasprintf("/sys/fs/cgroup/keel/%s-%u/%s", uid, attempt, v2file);
	if (access(p, F_OK) == 0)
		return p;
	free(p);
	p = xasprintf("/sys/fs/cgroup/%s/keel/%s-%u/%s", v1ctl, uid, attempt, v1file);
	if (access(p, F_OK) == 0)
		return p;
	free(p);
	return NULL;
}

static long long read_ll(const char *path)
{
	char *s = NULL;
	size_t len = 0;
	assert_int_equal(file_read_all(path, 4096, &s, &len, NULL), 0);
	long long v = strtoll(s, NULL, 10);
	free(s);
	return v;
}

static bool have_memory_cgroup(struct fx *f)
{
	struct rt_info info = {0};
	assert_int_equal(f->rt->ops->info(f->rt, &info, NULL), 0);
	assert_string_equal(info.name, "process");
	assert_string_equal(info.version, KEEL_VERSION);
	bool ok = !info.warning || (!strstr(info.warning, "no cgroup limits") &&
	                            !strstr(info.warning, "no cgroup memory"));
	if (!ok)
		print_message("skipped: %s\n", info.warning);
	rt_info_clear(&info);
	return ok;
}

static void test_limits_applied(void **state)
{
	struct fx *f = *state;
	if (!have_memory_cgroup(f))
		return;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	struct kerr err = KERR_INIT;
	int rc = start_sh(
	    f, uid, 0, "exec sleep 30",
	    "{\"resources\": {\"limits\": {\"memory\": \"64Mi\", \"cpu\": \"500m\"}}}", &id, &err);
	if (rc < 0)
		fail_msg("start: %s", kerr_msg(&err));
	_cleanup_free_ char *mem = cg_file(uid, 0, "memory.max", "memory", "memory.limit_in_bytes");
	assert_non_null(mem);
	assert_int_equal(read_ll(mem), 64LL * 1024 * 1024);
	_cleanup_free_ char *procs = cg_file(uid, 0, "cgroup.procs", "memory", "cgroup.procs");
	struct rt_status st;
	inspect(f, id, &st);
	rt_status_clear(&st);
	char *s = NULL;
	size_t len = 0;
	assert_int_equal(file_read_all(procs, 4096, &s, &len, NULL), 0);
	assert_true(len > 0); /* the task runs inside it */
	free(s);
	_cleanup_free_ char *cpu = cg_file(uid, 0, "cpu.max", "cpu", "cpu.cfs_quota_us");
	if (cpu) {
		char *c = NULL;
		assert_int_equal(file_read_all(cpu, 4096, &c, &len, NULL), 0);
		assert_true(strstartswith(c, "50000"));
		free(c);
	}
	/* requests stand in when there are no limits */
	_cleanup_free_ char *uid2 = new_uid(), *id2 = NULL;
	assert_int_equal(start_sh(f, uid2, 0, "exec sleep 30",
	                          "{\"resources\": {\"requests\": {\"memory\": \"32Mi\"}}}", &id2,
	                          &err),
	                 0);
	_cleanup_free_ char *mem2 =
	    cg_file(uid2, 0, "memory.max", "memory", "memory.limit_in_bytes");
	assert_int_equal(read_ll(mem2), 32LL * 1024 * 1024);

	assert_int_equal(f->rt->ops->stop(f->rt, id, 1, &err), 0);
	assert_int_equal(f->rt->ops->remove(f->rt, id, &err), 0);
	assert_int_equal(access(mem, F_OK), -1); /* the cgroup is gone */
}

static void test_oom_killed(void **state)
{
	struct fx *f = *state;
	if (!have_memory_cgroup(f))
		return;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	struct kerr err = KERR_INIT;
	assert_int_equal(
	    start_sh(f, uid, 0, "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
	             "{\"resources\": {\"limits\": {\"memory\": \"32Mi\"}}}", &id, &err),
	    0);
	struct rt_status st;
	wait_exit(f, id, 60, &st);
	assert_int_not_equal(st.exit_code, 0);
	assert_string_equal(st.reason, "OOMKilled");
	rt_status_clear(&st);
	_cleanup_free_ char *out = logs(f, id, -1, false, false);
	assert_null(strstr(out, "survived"));
}

static void test_logs_tail_and_follow(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	assert_int_equal(start_sh(f, uid, 0, "printf 'a\\nb\\nc\\nd\\n'", NULL, &id, NULL), 0);
	struct rt_status st;
	wait_exit(f, id, 10, &st);
	rt_status_clear(&st);
	char *out = logs(f, id, 2, false, false);
	assert_string_equal(out, "c\nd\n");
	free(out);
	out = logs(f, id, 0, false, false);
	assert_string_equal(out, "");
	free(out);
	out = logs(f, id, 10, false, false);
	assert_string_equal(out, "a\nb\nc\nd\n");
	free(out);

	_cleanup_free_ char *uid2 = new_uid(), *id2 = NULL;
	assert_int_equal(start_sh(f, uid2, 0, "echo one; sleep 1; echo two", NULL, &id2, NULL), 0);
	int64_t t0 = time_mono_ms();
	out = logs(f, id2, -1, true, false);
	assert_string_equal(out, "one\ntwo\n");
	assert_true(time_mono_ms() - t0 >= 900); /* it waited for the end */
	free(out);
}

static void test_exec(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	assert_int_equal(start_sh(f, uid, 0, "exec sleep 30",
	                          "{\"env\": [{\"name\": \"FOO\", \"value\": \"bar\"}]}", &id,
	                          NULL),
	                 0);
	struct kerr err = KERR_INIT;
	int code = -1;
	char *exit5[] = {"sh", "-c", "exit 5", NULL};
	assert_int_equal(f->rt->ops->exec(f->rt, id, exit5, 5, &code, &err), 0);
	assert_int_equal(code, 5);
	char *envchk[] = {"sh", "-c", "test \"$FOO\" = bar && test \"$KEEL_TASK_NAME\" = web",
	                  NULL};
	assert_int_equal(f->rt->ops->exec(f->rt, id, envchk, 5, &code, &err), 0);
	assert_int_equal(code, 0);
	char *missing[] = {"no-such-command-keel", NULL};
	assert_int_equal(f->rt->ops->exec(f->rt, id, missing, 5, &code, &err), 0);
	assert_int_equal(code, 127);
	char *slow[] = {"sleep", "10", NULL};
	int64_t t0 = time_mono_ms();
	assert_int_equal(f->rt->ops->exec(f->rt, id, slow, 1, &code, &err), -ETIMEDOUT);
	assert_true(time_mono_ms() - t0 < 2000);
	assert_non_null(strstr(kerr_msg(&err), "timed out"));
	kerr_clear(&err);
	assert_int_equal(f->rt->ops->stop(f->rt, id, 1, &err), 0);
	assert_int_equal(f->rt->ops->exec(f->rt, id, exit5, 5, &code, &err), -ESRCH);
	kerr_clear(&err);
}

static void test_remove_keeps_previous_log(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid();
	struct kerr err = KERR_INIT;
	char *ids[4] = {0};
	for (unsigned a = 0; a < 4; a++) {
		_cleanup_free_ char *script = xasprintf("echo run %u", a);
		assert_int_equal(start_sh(f, uid, a, script, NULL, &ids[a], &err), 0);
		struct rt_status st;
		wait_exit(f, ids[a], 10, &st);
		rt_status_clear(&st);
		if (a < 3)
			assert_int_equal(f->rt->ops->remove(f->rt, ids[a], &err), 0);
	}
	char *out = logs(f, ids[3], -1, false, true);
	assert_string_equal(out, "run 2\n");
	free(out);
	out = logs(f, ids[2], -1, false, false); /* removed, but its log is kept */
	assert_string_equal(out, "run 2\n");
	free(out);
	_cleanup_free_ char *old = xasprintf("%s/tasks/%s/0", f->dir, uid);
	assert_int_equal(access(old, F_OK), -1); /* beyond the last 2: deleted */
	struct rt_status st;
	assert_int_equal(f->rt->ops->inspect(f->rt, ids[2], &st, &err), -ENOENT);
	kerr_clear(&err);
	struct rt_status *sts = NULL;
	size_t n = 0;
	assert_int_equal(f->rt->ops->list(f->rt, NULL, &sts, &n, &err), 0);
	assert_int_equal(n, 1);
	rt_status_array_free(sts, n);
	_cleanup_free_ char *uid2 = new_uid(), *id2 = NULL;
	assert_int_equal(start_sh(f, uid2, 0, "true", NULL, &id2, &err), 0);
	assert_int_equal(f->rt->ops->logs(f->rt, id2,
	                                  &(struct rt_log_opts){.tail = -1, .previous = true},
	                                  collect, NULL, &err),
	                 -ENOENT);
	kerr_clear(&err);
	for (int i = 0; i < 4; i++)
		free(ids[i]);
}

/* Once every attempt of a task is removed and its logs are an hour old,
 * list() deletes what is left; fresher logs stay. */
static void test_gc_orphan_logs(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *old = new_uid(), *fresh = NULL, *id = NULL, *id2 = NULL;
	fresh = new_uid();
	struct kerr err = KERR_INIT;
	assert_int_equal(start_sh(f, old, 0, "echo old", NULL, &id, &err), 0);
	assert_int_equal(start_sh(f, fresh, 0, "echo fresh", NULL, &id2, &err), 0);
	struct rt_status st;
	wait_exit(f, id, 10, &st);
	rt_status_clear(&st);
	wait_exit(f, id2, 10, &st);
	rt_status_clear(&st);
	assert_int_equal(f->rt->ops->remove(f->rt, id, &err), 0);
	assert_int_equal(f->rt->ops->remove(f->rt, id2, &err), 0);
	_cleanup_free_ char *dir = xasprintf("%s/tasks/%s/0", f->dir, old);
	_cleanup_free_ char *log = xasprintf("%s/log", dir);
	struct timespec ago[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
	assert_int_equal(utimensat(AT_FDCWD, log, ago, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, dir, ago, 0), 0);
	struct rt_status *sts = NULL;
	size_t n = 0;
	assert_int_equal(f->rt->ops->list(f->rt, NULL, &sts, &n, &err), 0);
	assert_int_equal(n, 0);
	free(sts);
	_cleanup_free_ char *top = xasprintf("%s/tasks/%s", f->dir, old);
	assert_int_equal(access(top, F_OK), -1);
	_cleanup_free_ char *out = logs(f, id2, -1, false, false);
	assert_string_equal(out, "fresh\n");
}

/* Starting attempt N removes the ended attempts before N-1 by itself. */
static void test_start_removes_older_attempts(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid();
	char *ids[3] = {0};
	for (unsigned a = 0; a < 3; a++) {
		_cleanup_free_ char *script = xasprintf("echo run %u", a);
		assert_int_equal(start_sh(f, uid, a, script, NULL, &ids[a], NULL), 0);
		struct rt_status st;
		wait_exit(f, ids[a], 10, &st);
		rt_status_clear(&st);
	}
	struct rt_status *sts = NULL;
	size_t n = 0;
	assert_int_equal(f->rt->ops->list(f->rt, "n1", &sts, &n, NULL), 0);
	assert_int_equal(n, 2);
	unsigned seen = 0;
	for (size_t i = 0; i < n; i++)
		seen |= 1u << sts[i].attempt;
	assert_int_equal(seen, 6); /* attempts 1 and 2 */
	rt_status_array_free(sts, n);
	_cleanup_free_ char *out = logs(f, ids[2], -1, false, true);
	assert_string_equal(out, "run 1\n");
	for (int i = 0; i < 3; i++)
		free(ids[i]);
}

static void test_stats(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	assert_int_equal(start_sh(f, uid, 0, "while :; do :; done",
	                          "{\"resources\": {\"limits\": {\"cpu\": \"300m\"}}}", &id, NULL),
	                 0);
	struct kerr err = KERR_INIT;
	struct rt_stats s;
	assert_int_equal(f->rt->ops->stats(f->rt, id, &s, &err), 0);
	usleep(1500 * 1000);
	assert_int_equal(f->rt->ops->stats(f->rt, id, &s, &err), 0);
	print_message("busy loop under a 300m limit: %lld millicores, %lld bytes\n",
	              (long long)s.cpu_millicores, (long long)s.memory_bytes);
	assert_true(s.cpu_millicores > 100);
	assert_true(s.memory_bytes > 0);
	if (have_memory_cgroup(f))
		assert_true(s.cpu_millicores < 450); /* the quota holds */
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	struct kerr err = KERR_INIT;
	json_t *spec = json_pack("{s:s}", "image", "x");
	struct rt_task t = {uid, "default", "web", "n1", spec, 0, NULL};
	assert_int_equal(f->rt->ops->start(f->rt, &t, &id, &err), -EINVAL);
	assert_non_null(strstr(kerr_msg(&err), "process runtime needs spec.command"));
	kerr_clear(&err);
	json_object_set_new(spec, "command", json_pack("[s]", "no-such-command-keel"));
	assert_int_equal(f->rt->ops->start(f->rt, &t, &id, &err), -ENOEXEC);
	assert_non_null(strstr(kerr_msg(&err), "executable file not found"));
	kerr_clear(&err);
	json_object_set_new(spec, "command", json_pack("[s]", "/etc/passwd"));
	assert_int_equal(f->rt->ops->start(f->rt, &t, &id, &err), -ENOEXEC);
	kerr_clear(&err);
	json_decref(spec);
	struct rt_task bad = {"../x", "default", "web", "n1", NULL, 0, NULL};
	assert_int_equal(f->rt->ops->start(f->rt, &bad, &id, &err), -EINVAL);
	kerr_clear(&err);

	assert_int_equal(start_sh(f, uid, 1, "exec sleep 30", NULL, &id, &err), 0);
	_cleanup_free_ char *dup = NULL;
	assert_int_equal(start_sh(f, uid, 1, "true", NULL, &dup, &err), 0); /* adopts */
	assert_string_equal(dup, id);
	_cleanup_free_ char *uid3 = new_uid(), *id3 = NULL, *again = NULL;
	assert_int_equal(start_sh(f, uid3, 0, "true", NULL, &id3, &err), 0);
	struct rt_status done;
	wait_exit(f, id3, 10, &done);
	rt_status_clear(&done);
	assert_int_equal(start_sh(f, uid3, 0, "true", NULL, &again, &err), -EEXIST);
	assert_non_null(strstr(kerr_msg(&err), "already ran"));
	kerr_clear(&err);
	assert_int_equal(f->rt->ops->remove(f->rt, id, &err), -EBUSY);
	assert_non_null(strstr(kerr_msg(&err), "still running"));
	kerr_clear(&err);
	struct rt_status st;
	assert_int_equal(f->rt->ops->inspect(f->rt, "proc-nope-3", &st, &err), -ENOENT);
	kerr_clear(&err);
	assert_int_equal(f->rt->ops->inspect(f->rt, "garbage", &st, &err), -ENOENT);
	kerr_clear(&err);
	assert_int_equal(f->rt->ops->stop(f->rt, "proc-../..-1", 1, &err), -ENOENT);
	kerr_clear(&err);
}

static void test_no_cgroups_warning(void **state)
{
	struct fx *f = *state;
	runtime_free(f->rt);
	struct rt_process_options o = {.state_dir = f->dir, .cgroup_root = "none"};
	assert_int_equal(rt_process_new(&o, &f->rt, NULL), 0);
	struct rt_info info = {0};
	assert_int_equal(f->rt->ops->info(f->rt, &info, NULL), 0);
	assert_non_null(info.warning);
	assert_true(strstartswith(info.warning, "no cgroup limits"));
	rt_info_clear(&info);
	/* limits are then ignored, and stats come from /proc */
	_cleanup_free_ char *uid = new_uid(), *id = NULL;
	assert_int_equal(start_sh(f, uid, 0, "exec sleep 30",
	                          "{\"resources\": {\"limits\": {\"memory\": \"64Mi\"}}}", &id,
	                          NULL),
	                 0);
	struct rt_stats s;
	assert_int_equal(f->rt->ops->stats(f->rt, id, &s, NULL), 0);
	assert_true(s.memory_bytes > 0);
	assert_int_equal(access("/sys/fs/cgroup/memory/keel/x", F_OK), -1);
	struct kerr err = KERR_INIT;
	assert_int_equal(
	    rt_process_new(&(struct rt_process_options){0}, &(struct runtime *){NULL}, &err),
	    -EINVAL);
	kerr_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_exit_code_and_logs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exit_zero_completed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_with_grace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_kills_after_grace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_adopt_after_agent_death, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_env, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ports, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limits_applied, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oom_killed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logs_tail_and_follow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exec, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_keeps_previous_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_removes_older_attempts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gc_orphan_logs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_cgroups_warning, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
