/*
 * cli_wait — `keel apply --wait`: after an apply, follows what it applied
 * until it runs. Deployments are followed as `keel rollout status` follows
 * them (the messages of cli_rollout_poll); a Task until it runs and is
 * ready, or has succeeded. All of them are polled in each round, and each
 * change of one's state is printed as a line ("task/hello: Pending:
 * Unschedulable: 0/1 nodes fit: 1 insufficient memory"), so a wait that
 * does not end says why, for every object. Other kinds are applied and not
 * waited for.
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

/* One object followed by cli_wait_applied. */
struct waited {
	bool deploy; /* else a Task */
	const char *ns, *name;
	char *last;  /* the state last printed; owned */
	int done;    /* 1 done, 0 waiting, -1 failed */
};

/* Looks at w once, printing its state when it changed. CLI_FAIL when it
 * could not be read (reported). */
static int poll_one(struct client *c, struct waited *w)
{
	_cleanup_free_ char *state = NULL;
	if (w->deploy) {
		int r = cli_rollout_poll(w->ns, w->name, &state);
		if (r == -2)
			return CLI_FAIL;
		w->done = r;
	} else {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		_cleanup_json_ json_t *t = NULL;
		if (client_get(c, api_kind_by_kind("Task"), w->ns, w->name, &t, &err) < 0) {
			cli_report(&err, NULL);
			return CLI_FAIL;
		}
		_cleanup_free_ char *st = task_state(t);
		state = xasprintf("task/%s: %s", w->name, st);
		w->done = task_done(t);
	}
	if (!streq(state, w->last)) {
		fprintf(w->deploy && w->done < 0 ? stderr : stdout, "%s\n", state);
		fflush(stdout);
		free(w->last);
		w->last = xstrdup(state);
	}
	return CLI_OK;
}

/* Every Deployment and Task of m is looked at in each round, so one that
 * does not get anywhere neither hides nor holds up the others. Ends when
 * all are done, when one has failed, or at the deadline (saying, for each
 * one not done, where it stands). */
int cli_wait_applied(const struct manifest_set *m, long timeout_ms)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	int64_t deadline = time_mono_ms() + timeout_ms;
	struct waited *w = xcalloc(m->n_docs ? m->n_docs : 1, sizeof(*w));
	size_t n = 0;
	for (size_t i = 0; i < m->n_docs; i++) {
		const struct manifest_doc *d = &m->docs[i];
		const char *ns = api_obj_namespace(d->obj), *name = api_obj_name(d->obj);
		if (!d->kind || !name)
			continue;
		bool deploy = streq(d->kind->kind, "Deployment");
		if (!deploy && !streq(d->kind->kind, "Task"))
			continue;
		w[n++] = (struct waited){.deploy = deploy, .ns = ns ? ns : "default", .name = name};
	}
	int code = CLI_OK;
	for (;;) {
		size_t waiting = 0;
		bool failed = false;
		for (size_t i = 0; i < n; i++) {
			if (w[i].done > 0)
				continue;
			if (poll_one(c, &w[i]) != CLI_OK) {
				code = CLI_FAIL;
				goto out;
			}
			if (w[i].done < 0) {
				if (!w[i].deploy)
					fprintf(stderr, "error: task \"%s\" failed\n", w[i].name);
				failed = true;
			} else if (w[i].done == 0)
				waiting++;
		}
		if (failed) {
			code = CLI_FAIL;
			break;
		}
		if (!waiting)
			break;
		if (time_mono_ms() >= deadline) {
			for (size_t i = 0; i < n; i++) {
				if (w[i].done > 0)
					continue;
				if (w[i].deploy)
					fprintf(stderr,
					        "error: timed out waiting for the rollout of deployment "
					        "\"%s\" (%s)\n",
					        w[i].name, w[i].last);
				else
					fprintf(stderr, "error: timed out waiting for task \"%s\" (%s)\n",
					        w[i].name, w[i].last + strlen("task/: ") + strlen(w[i].name));
			}
			code = CLI_FAIL;
			break;
		}
		struct timespec ts = {0, WAIT_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(w[i].last);
	free(w);
	return code;
}
