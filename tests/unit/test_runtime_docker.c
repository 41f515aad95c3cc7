/*
 * Unit tests for the docker runtime: the log demultiplexer always; the
 * runtime itself against a real Docker engine and the keel/busybox:latest
 * image (tests/e2e/busybox-image.sh) when one answers — else those tests
 * skip and say why.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/docker_logs.h"
#include "agent/runtime.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

#define IMAGE "keel/busybox:latest"

/* ---- demultiplexer ---- */

struct collect {
	struct sbuf out, err;
	int pieces;
	int stop_after; /* stop (return 7) after this many pieces; 0 never */
};

static int collect_fn(void *ctx, enum docker_stream stream, const char *data, size_t len)
{
	struct collect *c = ctx;
	sbuf_append(stream == DOCKER_STDERR ? &c->err : &c->out, data, len);
	c->pieces++;
	return c->stop_after && c->pieces >= c->stop_after ? 7 : 0;
}

static void collect_free(struct collect *c)
{
	sbuf_free(&c->out);
	sbuf_free(&c->err);
}

static void frame(struct sbuf *b, int stream, const char *payload)
{
	size_t n = strlen(payload);
	unsigned char h[8] = {(unsigned char)stream,
	                      0,
	                      0,
	                      0,
	                      (unsigned char)(n >> 24),
	                      (unsigned char)(n >> 16),
	                      (unsigned char)(n >> 8),
	                      (unsigned char)n};
	sbuf_append(b, (const char *)h, 8);
	sbuf_append(b, payload, n);
}

static void test_demux_frames(void **state)
{
	(void)state;
	struct sbuf s = SBUF_INIT;
	frame(&s, 1, "hello\n");
	frame(&s, 2, "oops\n");
	frame(&s, 1, "");
	frame(&s, 1, "world\n");
	struct docker_demux d;
	docker_demux_init(&d, false);
	struct collect c = {SBUF_INIT, SBUF_INIT, 0, 0};
	assert_int_equal(docker_demux_feed(&d, s.data, s.len, collect_fn, &c), 0);
	assert_string_equal(c.out.data, "hello\nworld\n");
	assert_string_equal(c.err.data, "oops\n");
	assert_int_equal(d.frames, 4);
	assert_true(docker_demux_complete(&d));
	collect_free(&c);
	sbuf_free(&s);
}

/* Every way of cutting the stream in two, and byte by byte, decodes the same. */
static void test_demux_split(void **state)
{
	(void)state;
	struct sbuf s = SBUF_INIT;
	frame(&s, 1, "line one\n");
	frame(&s, 2, "err\n");
	frame(&s, 1, "line two\n");
	for (size_t cut = 0; cut <= s.len; cut++) {
		struct docker_demux d;
		docker_demux_init(&d, false);
		struct collect c = {SBUF_INIT, SBUF_INIT, 0, 0};
		assert_int_equal(docker_demux_feed(&d, s.data, cut, collect_fn, &c), 0);
		assert_int_equal(docker_demux_complete(&d),
		                 cut == 0 || cut == 17 || cut == 29 || cut == s.len);
		assert_int_equal(docker_demux_feed(&d, s.data + cut, s.len - cut, collect_fn, &c),
		                 0);
		assert_string_equal(c.out.data, "line one\nline two\n");
		assert_string_equal(c.err.data, "err\n");
		assert_true(docker_demux_complete(&d));
		collect_free(&c);
	}
	struct docker_demux d;
	docker_demux_init(&d, false);
	struct collect c = {SBUF_INIT, SBUF_INIT, 0, 0};
	for (size_t i = 0; i < s.len; i++)
		assert_int_equal(docker_demux_feed(&d, s.data + i, 1, collect_fn, &c), 0);
	assert_string_equal(c.out.data, "line one\nline two\n");
	assert_int_equal(d.frames, 3);
	collect_free(&c);
	sbuf_free(&s);
}

static void test_demux_garbage(void **state)
{
	(void)state;
	struct docker_demux d;
	struct collect c = {SBUF_INIT, SBUF_INIT, 0, 0};
	/* Raw text where a header belongs: "hello wo" has stream 'h'. */
	docker_demux_init(&d, false);
	assert_int_equal(docker_demux_feed(&d, "hello world\n", 12, collect_fn, &c), -EBADMSG);
	assert_int_equal(docker_demux_feed(&d, "\1\0\0\0\0\0\0\1x", 9, collect_fn, &c), -EBADMSG);
	assert_false(docker_demux_complete(&d));
	assert_int_equal(c.pieces, 0);
	/* Non-zero padding (a garbage length field) after a good frame. */
	struct sbuf s = SBUF_INIT;
	frame(&s, 1, "ok\n");
	sbuf_append(&s, "\1\0\7\0\0\0\0\3abc", 11);
	docker_demux_init(&d, false);
	assert_int_equal(docker_demux_feed(&d, s.data, s.len, collect_fn, &c), -EBADMSG);
	assert_string_equal(c.out.data, "ok\n");
	/* A huge length is legal: the stream just ends inside it. */
	docker_demux_init(&d, false);
	assert_int_equal(docker_demux_feed(&d,
	                                   "\2\0\0\0\xff\xff\xff\xff"
	                                   "abc",
	                                   11, collect_fn, &c),
	                 0);
	assert_false(docker_demux_complete(&d));
	assert_string_equal(c.err.data, "abc");
	collect_free(&c);
	sbuf_free(&s);
}

static void test_demux_raw_and_stop(void **state)
{
	(void)state;
	struct docker_demux d;
	struct collect c = {SBUF_INIT, SBUF_INIT, 0, 0};
	docker_demux_init(&d, true);
	assert_int_equal(docker_demux_feed(&d, "tty text\r\n", 10, collect_fn, &c), 0);
	assert_string_equal(c.out.data, "tty text\r\n");
	collect_free(&c);

	struct sbuf s = SBUF_INIT;
	frame(&s, 1, "a");
	frame(&s, 1, "b");
	frame(&s, 1, "c");
	struct collect c2 = {SBUF_INIT, SBUF_INIT, 0, 2};
	docker_demux_init(&d, false);
	assert_int_equal(docker_demux_feed(&d, s.data, s.len, collect_fn, &c2), 7);
	assert_string_equal(c2.out.data, "ab");
	collect_free(&c2);
	sbuf_free(&s);
}

/* ---- no engine ---- */

static void test_unreachable(void **state)
{
	(void)state;
	assert_false(rt_docker_available("/nonexistent/docker.sock"));
	struct runtime *rt = NULL;
	struct kerr err = KERR_INIT;
	struct rt_docker_options o = {.socket = "/nonexistent/docker.sock", .timeout_ms = 2000};
	assert_int_equal(rt_docker_new(&o, &rt, &err), 0);
	struct rt_info info = {0};
	assert_int_equal(rt->ops->info(rt, &info, &err), -ECONNREFUSED);
	assert_non_null(
	    strstr(err.msg, "cannot reach the Docker engine at /nonexistent/docker.sock"));
	assert_null(info.name);
	kerr_clear(&err);
	struct rt_status *sts = NULL;
	size_t n = 99;
	assert_int_equal(rt->ops->list(rt, "n1", &sts, &n, &err), -ECONNREFUSED);
	assert_int_equal(n, 99);
	kerr_clear(&err);
	runtime_free(rt);
}

/* ---- against a real engine ---- */

static char node[64];
static struct runtime *drt;

static int docker_setup(void **state)
{
	(void)state;
	if (!rt_docker_available(NULL))
		return 0;
	snprintf(node, sizeof(node), "unit-%ld", (long)getpid());
	struct rt_docker_options o = {0};
	struct kerr err = KERR_INIT;
	assert_int_equal(rt_docker_new(&o, &drt, &err), 0);
	return 0;
}

static void cleanup_node(void)
{
	struct rt_status *sts = NULL;
	size_t n = 0;
	if (drt && drt->ops->list(drt, node, &sts, &n, NULL) == 0)
		for (size_t i = 0; i < n; i++)
			drt->ops->remove(drt, sts[i].id, NULL);
	rt_status_array_free(sts, n);
}

static int docker_teardown(void **state)
{
	(void)state;
	cleanup_node();
	runtime_free(drt);
	drt = NULL;
	return 0;
}

static bool image_present(void)
{
	return system("docker image inspect " IMAGE " >/dev/null 2>&1") == 0;
}

#define NEED_DOCKER()                                                                              \
	do {                                                                                       \
		if (!drt) {                                                                        \
			fprintf(stderr, "SKIP: no Docker engine answers on "                       \
			                "/var/run/docker.sock\n");                                 \
			skip();                                                                    \
		}                                                                                  \
		if (!image_present()) {                                                            \
			fprintf(stderr,                                                            \
			        "SKIP: no image " IMAGE " (run tests/e2e/busybox-image.sh)\n");    \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

struct task {
	char uid[40], name[32];
	json_t *spec;
	struct rt_task t;
};

static void task_init(struct task *k, const char *name, json_t *spec, unsigned attempt)
{
	static unsigned seq;
	/* The pid first: container names carry the uid's first 8 characters,
	 * and must not meet those of another run on the same engine (a
	 * concurrent one, or the leftovers of one that failed). */
	snprintf(k->uid, sizeof(k->uid), "%08lx-%04x-4000-8000-000000000000", (long)getpid(),
	         ++seq & 0xffff);
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->spec = spec;
	k->t = (struct rt_task){.uid = k->uid,
	                        .ns = "default",
	                        .name = k->name,
	                        .node = node,
	                        .spec = spec,
	                        .attempt = attempt};
}

static void wait_exited(const char *id, struct rt_status *st)
{
	struct kerr err = KERR_INIT;
	for (int i = 0; i < 200; i++) {
		rt_status_clear(st);
		assert_int_equal(drt->ops->inspect(drt, id, st, &err), 0);
		if (st->state == RT_EXITED)
			return;
		usleep(50 * 1000);
	}
	fail_msg("container %s did not exit within 10 s", id);
}

static int sbuf_fn(void *ctx, const char *data, size_t len)
{
	sbuf_append(ctx, data, len);
	return 0;
}

/* `docker inspect -f FORMAT ID` through the real CLI, as a user checks. */
static char *docker_inspect(const char *id, const char *format)
{
	_cleanup_free_ char *cmd = xasprintf("docker inspect -f '%s' %s 2>&1", format, id);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char buf[512] = "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	pclose(p);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return xstrdup(buf);
}

static void test_docker_exit_logs_limits(void **state)
{
	(void)state;
	NEED_DOCKER();
	struct task k;
	task_init(&k, "exit3",
	          json_pack("{s:s, s:[s], s:[s,s], s:[{s:s,s:s}], s:{s:{s:s,s:s}}, s:i}", "image",
	                    IMAGE, "command", "sh", "args", "-c",
	                    "echo hello; echo oops >&2; sleep 0.3; echo foo=$FOO; exit 3", "env",
	                    "name", "FOO", "value", "bar baz", "resources", "limits", "memory",
	                    "64Mi", "cpu", "250m", "terminationGracePeriodSeconds", 7),
	          0);
	struct kerr err = KERR_INIT;
	_cleanup_free_ char *id = NULL;
	assert_int_equal(drt->ops->start(drt, &k.t, &id, &err), 0);
	assert_non_null(id);
	struct rt_status st = {0};
	wait_exited(id, &st);
	assert_int_equal(st.exit_code, 3);
	assert_string_equal(st.reason, "Error");
	assert_string_equal(st.task_uid, k.uid);
	assert_string_equal(st.ns, "default");
	assert_string_equal(st.name, "exit3");
	assert_int_equal(st.attempt, 0);
	assert_true(st.started_at > 1700000000 && st.finished_at >= st.started_at);
	assert_true(st.finished_at <= time_now_unix() + 1);
	rt_status_clear(&st);

	struct rt_status *sts = NULL;
	size_t n = 0;
	assert_int_equal(drt->ops->list(drt, node, &sts, &n, &err), 0);
	bool found = false;
	for (size_t i = 0; i < n; i++)
		if (streq(sts[i].id, id)) {
			found = true;
			assert_int_equal(sts[i].state, RT_EXITED);
			assert_int_equal(sts[i].exit_code, 3);
			/* the Task's grace period, for a stop after the Task is gone */
			assert_true(sts[i].has_grace);
			assert_int_equal(sts[i].grace_s, 7);
		}
	assert_true(found);
	rt_status_array_free(sts, n);

	struct sbuf out = SBUF_INIT;
	struct rt_log_opts lo = {.tail = -1};
	assert_int_equal(drt->ops->logs(drt, id, &lo, sbuf_fn, &out, &err), 0);
	assert_non_null(strstr(out.data, "hello\n"));
	assert_non_null(strstr(out.data, "oops\n"));
	assert_non_null(strstr(out.data, "foo=bar baz\n"));
	sbuf_reset(&out);
	lo.tail = 1;
	assert_int_equal(drt->ops->logs(drt, id, &lo, sbuf_fn, &out, &err), 0);
	assert_string_equal(out.data, "foo=bar baz\n");
	sbuf_free(&out);

	_cleanup_free_ char *mem = docker_inspect(id, "{{.HostConfig.Memory}}");
	assert_string_equal(mem, "67108864");
	_cleanup_free_ char *cpu = docker_inspect(id, "{{.HostConfig.NanoCpus}}");
	assert_string_equal(cpu, "250000000");
	_cleanup_free_ char *rp = docker_inspect(id, "{{.HostConfig.RestartPolicy.Name}}");
	assert_string_equal(rp, "no");
	_cleanup_free_ char *lab = docker_inspect(
	    id, "{{index .Config.Labels \"keel.managed\"}} {{index .Config.Labels \"keel.node\"}} "
	        "{{index .Config.Labels \"keel.task.name\"}}");
	_cleanup_free_ char *want = xasprintf("true %s exit3", node);
	assert_string_equal(lab, want);

	assert_int_equal(drt->ops->remove(drt, id, &err), 0);
	assert_int_equal(drt->ops->inspect(drt, id, &st, &err), -ENOENT);
	kerr_clear(&err);
	assert_int_equal(drt->ops->remove(drt, id, &err), 0);
	json_decref(k.spec);
}

static void test_docker_missing_image(void **state)
{
	(void)state;
	NEED_DOCKER();
	struct task k;
	task_init(&k, "noimage", json_pack("{s:s}", "image", "keel/does-not-exist:1"), 0);
	struct kerr err = KERR_INIT;
	char *id = NULL;
	assert_int_equal(drt->ops->start(drt, &k.t, &id, &err), -ENXIO);
	assert_null(id);
	assert_string_equal(err.msg, "image \"keel/does-not-exist:1\" not found (no registry is "
	                             "reachable; build it locally)");
	kerr_clear(&err);
	json_decref(k.spec);
}

static void test_docker_running_exec_stats_stop(void **state)
{
	(void)state;
	NEED_DOCKER();
	struct task k;
	task_init(
	    &k, "sleeper",
	    json_pack("{s:s, s:[s,s,s], s:{s:{s:s}}, s:[{s:i,s:i},{s:i,s:s}]}", "image", IMAGE,
	              "command", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done",
	              "resources", "requests", "memory", "32Mi", "ports", "containerPort", 8080,
	              "hostPort", 20000 + getpid() % 20000, "containerPort", 53, "protocol", "UDP"),
	    0);
	struct kerr err = KERR_INIT;
	_cleanup_free_ char *id = NULL;
	assert_int_equal(drt->ops->start(drt, &k.t, &id, &err), 0);
	struct rt_status st = {0};
	assert_int_equal(drt->ops->inspect(drt, id, &st, &err), 0);
	assert_int_equal(st.state, RT_RUNNING);
	assert_non_null(st.ip);
	assert_null(st.reason);
	/* both ports published: 8080 on its hostPort, 53/udp on one the engine picked */
	assert_int_equal(st.nports, 2);
	for (size_t i = 0; i < st.nports; i++) {
		if (st.ports[i].container_port == 8080) {
			assert_false(st.ports[i].udp);
			assert_int_equal(st.ports[i].host_port, 20000 + getpid() % 20000);
		} else {
			assert_int_equal(st.ports[i].container_port, 53);
			assert_true(st.ports[i].udp);
			assert_true(st.ports[i].host_port > 0);
		}
	}
	assert_false(st.host_network);
	rt_status_clear(&st);
	struct rt_status *sts = NULL;
	size_t n = 0;
	assert_int_equal(drt->ops->list(drt, node, &sts, &n, &err), 0);
	size_t me = n;
	for (size_t i = 0; i < n; i++)
		if (streq(sts[i].id, id))
			me = i;
	assert_true(me < n);
	assert_int_equal(sts[me].state, RT_RUNNING);
	assert_string_equal(sts[me].task_uid, k.uid);
	assert_string_equal(sts[me].name, "sleeper");
	assert_non_null(sts[me].ip);
	assert_int_equal(sts[me].nports, 2); /* the summary's Ports, one per address family */
	assert_true(sts[me].started_at > 1700000000 && sts[me].started_at <= time_now_unix());
	rt_status_array_free(sts, n);

	/* The same attempt again (an agent that crashed after create) adopts it. */
	_cleanup_free_ char *id2 = NULL;
	assert_int_equal(drt->ops->start(drt, &k.t, &id2, &err), 0);
	assert_string_equal(id2, id);

	int code = -1;
	char *const ex7[] = {"sh", "-c", "echo out; exit 7", NULL};
	assert_int_equal(drt->ops->exec(drt, id, ex7, 5, &code, &err), 0);
	assert_int_equal(code, 7);
	char *const ok[] = {"true", NULL};
	assert_int_equal(drt->ops->exec(drt, id, ok, 5, &code, &err), 0);
	assert_int_equal(code, 0);
	/* in its own network namespace a container listens on the containerPort */
	char *const envchk[] = {"sh", "-c",
	                        "test \"$KEEL_PORT_8080\" = 8080 && test \"$KEEL_PORT_53\" = 53 && "
	                        "test \"$PORT\" = 8080",
	                        NULL};
	assert_int_equal(drt->ops->exec(drt, id, envchk, 5, &code, &err), 0);
	assert_int_equal(code, 0);
	char *const slow[] = {"sleep", "5", NULL};
	int64_t t0 = time_mono_ms();
	assert_int_equal(drt->ops->exec(drt, id, slow, 1, &code, &err), -ETIMEDOUT);
	assert_true(time_mono_ms() - t0 < 4000);
	kerr_clear(&err);

	struct rt_stats s = {0};
	assert_int_equal(drt->ops->stats(drt, id, &s, &err), 0);
	assert_true(s.memory_bytes > 0 && s.memory_bytes < 32 * 1024 * 1024);
	assert_true(s.cpu_millicores >= -1 && s.cpu_millicores < 2000 * 4);
	_cleanup_free_ char *mem = docker_inspect(id, "{{.HostConfig.Memory}}");
	assert_string_equal(mem, "33554432");
	_cleanup_free_ char *ports = docker_inspect(
	    id, "{{range $p, $b := .HostConfig.PortBindings}}{{$p}}={{(index $b 0).HostPort}} "
	        "{{end}}{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}");
	_cleanup_free_ char *want_ports =
	    xasprintf("53/udp= 8080/tcp=%d 53/udp 8080/tcp ", 20000 + getpid() % 20000);
	assert_string_equal(ports, want_ports);

	assert_int_equal(drt->ops->stop(drt, id, 5, &err), 0);
	wait_exited(id, &st);
	assert_int_equal(st.exit_code, 0); /* the trap ran: SIGTERM came first */
	assert_string_equal(st.reason, "Completed");
	rt_status_clear(&st);
	assert_int_equal(drt->ops->stop(drt, id, 5, &err), 0); /* idempotent */
	char *const ex[] = {"true", NULL};
	assert_int_equal(drt->ops->exec(drt, id, ex, 5, &code, &err), -ESRCH);
	kerr_clear(&err);
	assert_int_equal(drt->ops->remove(drt, id, &err), 0);
	assert_int_equal(drt->ops->stop(drt, id, 5, &err), 0); /* gone is stopped */
	json_decref(k.spec);
}

static void test_docker_previous_and_prune(void **state)
{
	(void)state;
	NEED_DOCKER();
	struct task k;
	task_init(&k, "attempts", json_pack("{s:s, s:[s,s]}", "image", IMAGE, "args", "sh", "-c"),
	          0);
	struct kerr err = KERR_INIT;
	char *ids[3] = {NULL};
	for (unsigned a = 0; a < 3; a++) {
		json_t *args = json_object_get(k.spec, "args");
		_cleanup_free_ char *script = xasprintf("echo attempt-%u", a);
		if (json_array_size(args) == 3)
			json_array_remove(args, 2);
		json_array_append_new(args, json_string(script));
		k.t.attempt = a;
		assert_int_equal(drt->ops->start(drt, &k.t, &ids[a], &err), 0);
		struct rt_status st = {0};
		wait_exited(ids[a], &st);
		assert_int_equal(st.exit_code, 0);
		assert_string_equal(st.reason, "Completed");
		assert_int_equal(st.attempt, a);
		rt_status_clear(&st);
	}
	/* Attempt 0 was pruned when attempt 2 started; 1 is kept for --previous. */
	struct rt_status st = {0};
	assert_int_equal(drt->ops->inspect(drt, ids[0], &st, &err), -ENOENT);
	kerr_clear(&err);
	assert_int_equal(drt->ops->inspect(drt, ids[1], &st, &err), 0);
	rt_status_clear(&st);

	struct sbuf out = SBUF_INIT;
	struct rt_log_opts lo = {.tail = -1, .previous = true};
	assert_int_equal(drt->ops->logs(drt, ids[2], &lo, sbuf_fn, &out, &err), 0);
	assert_string_equal(out.data, "attempt-1\n");
	sbuf_reset(&out);
	lo.previous = false;
	lo.follow = true; /* an ended container: follow returns at its end */
	assert_int_equal(drt->ops->logs(drt, ids[2], &lo, sbuf_fn, &out, &err), 0);
	assert_string_equal(out.data, "attempt-2\n");
	sbuf_free(&out);
	lo.previous = true;
	assert_int_equal(drt->ops->logs(drt, ids[1], &lo, sbuf_fn, &out, &err), -ENOENT);
	kerr_clear(&err);
	for (int i = 0; i < 3; i++)
		free(ids[i]);
	json_decref(k.spec);
}

struct follow {
	struct sbuf out;
	bool stop_at_two; /* stop once "two" was seen */
};

static int follow_fn(void *ctx, const char *data, size_t len)
{
	struct follow *f = ctx;
	sbuf_append(&f->out, data, len);
	return f->stop_at_two && strstr(f->out.data, "two\n") ? 1 : 0;
}

/* follow streams a running container's output as it comes and returns when
 * the container ends, or as soon as the callback asks to stop. */
/* A process without a SIGTERM handler (sleep) would ignore the stop's
 * SIGTERM as a container's PID 1 and make every stop wait out the grace
 * period; under the engine's init it gets the signal as on the host. */
static void test_docker_stop_reaches_the_task(void **state)
{
	(void)state;
	NEED_DOCKER();
	struct task k;
	task_init(&k, "pid1", json_pack("{s:s, s:[s,s]}", "image", IMAGE, "command", "sleep", "300"),
	          0);
	struct kerr err = KERR_INIT;
	_cleanup_free_ char *id = NULL;
	assert_int_equal(drt->ops->start(drt, &k.t, &id, &err), 0);
	int64_t t0 = time_mono_ms();
	assert_int_equal(drt->ops->stop(drt, id, 20, &err), 0);
	assert_true(time_mono_ms() - t0 < 10000); /* not the 20 s grace */
	struct rt_status st = {0};
	wait_exited(id, &st);
	assert_int_equal(st.exit_code, 128 + 15); /* SIGTERM, not SIGKILL */
	rt_status_clear(&st);
	assert_int_equal(drt->ops->remove(drt, id, &err), 0);
	json_decref(k.spec);
}

static void test_docker_follow(void **state)
{
	(void)state;
	NEED_DOCKER();
	struct task k;
	task_init(&k, "follow",
	          json_pack("{s:s, s:[s,s,s]}", "image", IMAGE, "command", "sh", "-c",
	                    "echo one; sleep 1; echo two >&2; sleep 1; echo three"),
	          0);
	struct kerr err = KERR_INIT;
	_cleanup_free_ char *id = NULL;
	assert_int_equal(drt->ops->start(drt, &k.t, &id, &err), 0);
	struct follow f = {SBUF_INIT, true};
	struct rt_log_opts lo = {.tail = -1, .follow = true};
	int64_t t0 = time_mono_ms();
	assert_int_equal(drt->ops->logs(drt, id, &lo, follow_fn, &f, &err), 0);
	assert_string_equal(f.out.data, "one\ntwo\n");
	assert_true(time_mono_ms() - t0 < 1900); /* did not wait for "three" */
	sbuf_free(&f.out);
	f = (struct follow){SBUF_INIT, false};
	assert_int_equal(drt->ops->logs(drt, id, &lo, follow_fn, &f, &err), 0);
	assert_string_equal(f.out.data, "one\ntwo\nthree\n");
	struct rt_status st = {0};
	assert_int_equal(drt->ops->inspect(drt, id, &st, &err), 0);
	assert_int_equal(st.state, RT_EXITED); /* follow ended with the container */
	rt_status_clear(&st);
	sbuf_free(&f.out);
	json_decref(k.spec);
}

static void test_docker_info(void **state)
{
	(void)state;
	NEED_DOCKER();
	struct rt_info info = {0};
	struct kerr err = KERR_INIT;
	assert_int_equal(drt->ops->info(drt, &info, &err), 0);
	assert_string_equal(info.name, "docker");
	assert_true(strlen(info.version) > 0 && strcmp(info.version, "unknown") != 0);
	rt_info_clear(&info);
}

int main(void)
{
	const struct CMUnitTest demux[] = {
	    cmocka_unit_test(test_demux_frames),  cmocka_unit_test(test_demux_split),
	    cmocka_unit_test(test_demux_garbage), cmocka_unit_test(test_demux_raw_and_stop),
	    cmocka_unit_test(test_unreachable),
	};
	const struct CMUnitTest docker[] = {
	    cmocka_unit_test(test_docker_info),
	    cmocka_unit_test(test_docker_exit_logs_limits),
	    cmocka_unit_test(test_docker_missing_image),
	    cmocka_unit_test(test_docker_running_exec_stats_stop),
	    cmocka_unit_test(test_docker_previous_and_prune),
	    cmocka_unit_test(test_docker_stop_reaches_the_task),
	    cmocka_unit_test(test_docker_follow),
	};
	int r = cmocka_run_group_tests_name("demux", demux, NULL, NULL);
	r += cmocka_run_group_tests_name("docker", docker, docker_setup, docker_teardown);
	return r;
}
