/*
 * cli_wait — `keel apply --wait`: after an apply, follows what it applied
 * until it runs. Deployments are followed as `keel rollout status` follows
 * them (cli_rollout_wait); a Task is polled until it runs and is ready, or
 * has succeeded, and each change of its state is printed as a line
 * ("task/hello: Pending: Unschedulable: 0/1 nodes fit: 1 insufficient
 * memory"), so a wait that does not end says why. Other kinds are applied
 * and not waited for.
 */
#include "cli/cli_internal.h"

#include <time.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"

#define WAIT_POLL_MS 500

/* "Running (ready)", "Pending: Unschedulable: 0/1 nodes fit: ...". Owned. */
static char *task_state(json_t *t)
{
	json_t *st = json_object_get(t, "status");
	const char *phase = json_string_value(json_object_get(st, "phase"));
	const char *reason = json_string_value(json_object_get(st, "reason"));
	const char *msg = json_string_value(json_object_get(st, "message"));
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	sbuf_puts(&b, phase ? phase : "Pending");
	if (streq(phase, "Running"))
		sbuf_puts(&b, json_is_true(json_object_get(st, "ready")) ? " (ready)" : " (not ready)");
	if (reason && !streq(reason, phase))
		sbuf_printf(&b, ": %s", reason);
	if (msg && *msg)
		sbuf_printf(&b, ": %s", msg);
	return sbuf_take(&b);
}

/* 1 done, 0 waiting, -1 failed. */
static int task_done(json_t *t)
{
	json_t *st = json_object_get(t, "status");
	const char *phase = json_string_value(json_object_get(st, "phase"));
	if (streq(phase, "Succeeded"))
		return 1;
	if (streq(phase, "Failed"))
		return -1;
	return streq(phase, "Running") && json_is_true(json_object_get(st, "ready")) ? 1 : 0;
}

static int wait_task(struct client *c, const char *ns, const char *name, int64_t deadline)
{
	const struct api_kind *k = api_kind_by_kind("Task");
	_cleanup_free_ char *last = NULL;
	for (;;) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		_cleanup_json_ json_t *t = NULL;
		if (client_get(c, k, ns, name, &t, &err) < 0) {
			cli_report(&err, NULL);
			return CLI_FAIL;
		}
		_cleanup_free_ char *state = task_state(t);
		if (!streq(state, last)) {
			printf("task/%s: %s\n", name, state);
			fflush(stdout);
			free(last);
			last = xstrdup(state);
		}
		int r = task_done(t);
		if (r != 0)
			return r > 0 ? CLI_OK : CLI_FAIL;
		if (time_mono_ms() >= deadline) {
			fprintf(stderr, "error: timed out waiting for task \"%s\" (%s)\n", name, state);
			return CLI_FAIL;
		}
		struct timespec ts = {0, WAIT_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

int cli_wait_applied(const struct manifest_set *m, long timeout_ms)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	int64_t deadline = time_mono_ms() + timeout_ms;
	int code = CLI_OK;
	for (size_t i = 0; i < m->n_docs; i++) {
		const struct manifest_doc *d = &m->docs[i];
		const char *ns = api_obj_namespace(d->obj), *name = api_obj_name(d->obj);
		if (!d->kind || !name)
			continue;
		int64_t left = deadline - time_mono_ms();
		int r = CLI_OK;
		if (left <= 0) {
			fprintf(stderr, "error: timed out before %s/%s\n", d->kind->singular, name);
			return CLI_FAIL;
		}
		if (streq(d->kind->kind, "Deployment"))
			r = cli_rollout_wait(ns ? ns : "default", name, (long)left);
		else if (streq(d->kind->kind, "Task"))
			r = wait_task(c, ns ? ns : "default", name, deadline);
		if (r != CLI_OK)
			code = CLI_FAIL;
	}
	return code;
}
