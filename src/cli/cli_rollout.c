/*
 * cli_rollout — `keel rollout status|history|undo deployment NAME`.
 *
 * status follows kubectl's rollout status: it reads the Deployment every
 * half second and prints a line each time the state of the rollout changes
 * ("Waiting for deployment "web" rollout to finish: 1 of 3 updated
 * replicas are available..."), exits 0 once the rollout is complete, and
 * 1 when the tasks controller has set Progressing=False with reason
 * ProgressDeadlineExceeded (or --timeout passes). Until the controller has
 * observed the Deployment's current generation nothing else is trusted.
 *
 * history and undo read the revision history the tasks controller keeps
 * in the Deployment's annotations (controllers/rollout.h); undo writes the
 * chosen template back into spec.template with a merge patch computed
 * against the live template (fields the old template lacks are removed),
 * and the controller then rolls out to it as to any other change. A later
 * `keel apply` of a manifest that sets the template puts the manifest's
 * version back, since the manifest owns those fields.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "api/kind.h"
#include "api/meta.h"
#include "cli/cli_internal.h"
#include "common/kerr.h"
#include "common/util.h"
#include "controllers/rollout.h"

#define POLL_MS 500

static int cmd_status(const struct cli_sub *s, int argc, char **argv);
static int cmd_history(const struct cli_sub *s, int argc, char **argv);
static int cmd_undo(const struct cli_sub *s, int argc, char **argv);

static const struct cli_sub subs[] = {
    {"status",
     {"rollout status", "Watch a Deployment's rollout until it completes",
      "keel rollout status deployment NAME [-n NS] [--timeout DURATION]",
      "Prints the progress of the Deployment's rollout each time it changes, and exits\n"
      "0 once every replica runs the current template and is available, or 1 when the\n"
      "rollout exceeded its progressDeadlineSeconds (or --timeout passed).",
      "  keel rollout status deployment web\n  keel rollout status deploy/web --timeout 2m", NULL},
     cmd_status},
    {"history",
     {"rollout history", "List a Deployment's revisions",
      "keel rollout history deployment NAME [-n NS] [--revision N]",
      "Lists the revisions kept (revisionHistoryLimit old ones and the current one),\n"
      "with each template's hash and image; --revision N prints that revision's\n"
      "template as JSON.",
      "  keel rollout history deployment web\n  keel rollout history deploy/web --revision 2",
      NULL},
     cmd_history},
    {"undo",
     {"rollout undo", "Roll a Deployment back to an earlier revision",
      "keel rollout undo deployment NAME [-n NS] [--to-revision N]",
      "Puts the template of the previous revision (or of --to-revision N) back into the\n"
      "Deployment, which then rolls out to it like any other change. Re-applying a\n"
      "manifest that sets the template brings the manifest's template back.",
      "  keel rollout undo deployment web\n  keel rollout undo deploy/web --to-revision 1", NULL},
     cmd_undo},
};

/* ---- arguments ---------------------------------------------------------- */

long cli_duration_ms(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	double mult = streq(end, "ms")             ? 1
	              : (streq(end, "s") || !*end) ? 1000
	              : streq(end, "m")            ? 60000
	              : streq(end, "h")            ? 3600000
	                                           : -1;
	if (mult < 0 || v * mult > 1e15)
		return -1;
	return (long)(v * mult);
}

static json_t *get_deployment(const char *ns, const char *name)
{
	struct client *c = cli_client();
	if (!c)
		return NULL;
	json_t *d = NULL;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (client_get(c, api_kind_by_kind("Deployment"), ns, name, &d, &err) < 0) {
		cli_report(&err, NULL);
		return NULL;
	}
	return d;
}

/* ---- status -------------------------------------------------------------- */

static long ival(json_t *o, const char *k)
{
	return (long)json_integer_value(json_object_get(o, k));
}

static const char *progressing_reason(json_t *status)
{
	size_t i;
	json_t *cond;
	json_array_foreach(json_object_get(status, "conditions"), i, cond)
	{
		if (streq(json_string_value(json_object_get(cond, "type")), "Progressing"))
			return json_string_value(json_object_get(cond, "reason"));
	}
	return NULL;
}

/* kubectl's DeploymentStatusViewer. Returns 1 complete, 0 waiting, -1
 * deadline exceeded; *msg owned. */
static int rollout_state(json_t *d, const char *name, char **msg)
{
	json_t *spec = json_object_get(d, "spec"), *st = json_object_get(d, "status");
	if (api_obj_generation(d) > ival(st, "observedGeneration")) {
		*msg = xstrdup("Waiting for deployment spec update to be observed...");
		return 0;
	}
	if (streq(progressing_reason(st), "ProgressDeadlineExceeded")) {
		*msg = xasprintf("error: deployment \"%s\" exceeded its progress deadline", name);
		return -1;
	}
	long want = ival(spec, "replicas"), updated = ival(st, "updatedReplicas"),
	     replicas = ival(st, "replicas"), available = ival(st, "availableReplicas");
	if (updated < want)
		*msg =
		    xasprintf("Waiting for deployment \"%s\" rollout to finish: %ld out of %ld new "
		              "replicas have been updated...",
		              name, updated, want);
	else if (replicas > updated)
		*msg =
		    xasprintf("Waiting for deployment \"%s\" rollout to finish: %ld old replicas "
		              "are pending termination...",
		              name, replicas - updated);
	else if (available < updated)
		*msg =
		    xasprintf("Waiting for deployment \"%s\" rollout to finish: %ld of %ld updated "
		              "replicas are available...",
		              name, available, updated);
	else {
		*msg = xasprintf("deployment \"%s\" successfully rolled out", name);
		return 1;
	}
	return 0;
}

int cli_rollout_poll(const char *ns, const char *name, char **msg)
{
	_cleanup_json_ json_t *d = get_deployment(ns, name);
	if (!d)
		return -2;
	return rollout_state(d, name, msg);
}

int cli_rollout_wait(const char *ns, const char *name, long timeout_ms)
{
	int64_t deadline = timeout_ms > 0 ? time_mono_ms() + timeout_ms : 0;
	_cleanup_free_ char *last = NULL;
	for (;;) {
		_cleanup_json_ json_t *d = get_deployment(ns, name);
		if (!d)
			return CLI_FAIL;
		_cleanup_free_ char *msg = NULL;
		int r = rollout_state(d, name, &msg);
		if (!streq(msg, last)) {
			fprintf(r < 0 ? stderr : stdout, "%s\n", msg);
			fflush(stdout);
			free(last);
			last = xstrdup(msg);
		}
		if (r != 0)
			return r > 0 ? CLI_OK : CLI_FAIL;
		if (deadline && time_mono_ms() >= deadline) {
			fprintf(stderr,
			        "error: timed out waiting for the rollout of deployment \"%s\"\n",
			        name);
			return CLI_FAIL;
		}
		struct timespec ts = {0, POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static int cmd_status(const struct cli_sub *s, int argc, char **argv)
{
	const char *ns = NULL, *timeout = NULL;
	const struct cli_opt opts[] = {
	    {"namespace", 'n', CLI_OPT_STRING, &ns, "NS", "namespace (default \"default\")"},
	    {"timeout", 0, CLI_OPT_STRING, &timeout, "DURATION",
	     "give up after this long (90s, 5m; default: wait until done or the deadline)"},
	};
	struct cli_strv pos = {0};
	int code;
	if (cli_sub_parse(s, opts, ARRAY_SIZE(opts), argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	const char *name = cli_deployment_arg("rollout status", &pos, 0);
	long tmo = timeout ? cli_duration_ms(timeout) : 0;
	if (!name)
		code = CLI_USAGE;
	else if (tmo < 0) {
		fprintf(stderr, "error: --timeout \"%s\": not a duration (90s, 5m, 1h)\n", timeout);
		code = CLI_USAGE;
	} else
		code = cli_rollout_wait(ns ? ns : "default", name, tmo);
	cli_strv_free(&pos);
	return code;
}

/* ---- history ------------------------------------------------------------- */

static json_t *history_of(json_t *d)
{
	json_t *ann = json_object_get(api_obj_meta(d), "annotations");
	return rollout_history_parse(
	    json_string_value(json_object_get(ann, ROLLOUT_HISTORY_ANNOTATION)));
}

static void print_history(const char *name, json_t *h)
{
	printf("deployment.keel/%s\n", name);
	struct cli_table *t = cli_table_new(3);
	const char *hdr[] = {"REVISION", "TEMPLATE-HASH", "IMAGE"};
	cli_table_add(t, hdr);
	size_t i;
	json_t *e;
	json_array_foreach(h, i, e)
	{
		char rev[32];
		snprintf(rev, sizeof(rev), "%ld", ival(e, "revision"));
		json_t *spec = json_object_get(json_object_get(e, "template"), "spec");
		const char *row[] = {rev, json_string_value(json_object_get(e, "hash")),
		                     json_string_value(json_object_get(spec, "image"))};
		cli_table_add(t, row);
	}
	_cleanup_sbuf_ struct sbuf out = SBUF_INIT;
	cli_table_render(t, &out);
	if (out.data)
		fputs(out.data, stdout);
	cli_table_free(t);
}

static int show_history(const char *ns, const char *name, long revision)
{
	_cleanup_json_ json_t *d = get_deployment(ns, name);
	if (!d)
		return CLI_FAIL;
	_cleanup_json_ json_t *h = history_of(d);
	if (json_array_size(h) == 0) {
		printf(
		    "No rollout history found for deployment \"%s\" (has the tasks controller seen "
		    "it?)\n",
		    name);
		return CLI_OK;
	}
	if (revision < 0) {
		print_history(name, h);
		return CLI_OK;
	}
	json_t *e = revision > 0 ? rollout_history_find(h, revision) : NULL;
	if (!e) {
		fprintf(stderr, "error: unable to find revision %ld of deployment \"%s\"\n",
		        revision, name);
		return CLI_FAIL;
	}
	_cleanup_free_ char *text = json_dumps(json_object_get(e, "template"), JSON_INDENT(2));
	printf("deployment.keel/%s with revision #%ld\n%s\n", name, revision, text);
	return CLI_OK;
}

static int cmd_history(const struct cli_sub *s, int argc, char **argv)
{
	const char *ns = NULL;
	long revision = -1;
	const struct cli_opt opts[] = {
	    {"namespace", 'n', CLI_OPT_STRING, &ns, "NS", "namespace (default \"default\")"},
	    {"revision", 0, CLI_OPT_INT, &revision, "N", "print the template of revision N"},
	};
	struct cli_strv pos = {0};
	int code;
	if (cli_sub_parse(s, opts, ARRAY_SIZE(opts), argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	const char *name = cli_deployment_arg("rollout history", &pos, 0);
	code = name ? show_history(ns ? ns : "default", name, revision) : CLI_USAGE;
	cli_strv_free(&pos);
	return code;
}

/* ---- undo ---------------------------------------------------------------- */

/* The RFC 7386 merge patch that turns from into to (both objects). */
static json_t *merge_diff(json_t *from, json_t *to)
{
	json_t *patch = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(from, k, v)
	{
		if (!json_object_get(to, k))
			json_object_set_new(patch, k, json_null());
	}
	json_object_foreach(to, k, v)
	{
		json_t *old = json_object_get(from, k);
		if (json_is_object(old) && json_is_object(v)) {
			json_t *sub = merge_diff(old, v);
			if (json_object_size(sub) > 0)
				json_object_set_new(patch, k, sub);
			else
				json_decref(sub);
		} else if (!old || !json_equal(old, v)) {
			json_object_set(patch, k, v);
		}
	}
	return patch;
}

static int undo(const char *ns, const char *name, long to_revision)
{
	_cleanup_json_ json_t *d = get_deployment(ns, name);
	if (!d)
		return CLI_FAIL;
	_cleanup_json_ json_t *h = history_of(d);
	json_t *e = rollout_history_find(h, to_revision);
	if (!e && to_revision == 0) {
		fprintf(stderr, "error: no earlier revision of deployment \"%s\" to roll back to\n",
		        name);
		return CLI_FAIL;
	}
	if (!e) {
		fprintf(stderr, "error: unable to find revision %ld of deployment \"%s\"\n",
		        to_revision, name);
		return CLI_FAIL;
	}
	json_t *cur = json_object_get(json_object_get(d, "spec"), "template");
	json_t *want = json_object_get(e, "template");
	char hcur[ROLLOUT_HASH_LEN + 1];
	rollout_template_hash(cur, hcur);
	if (streq(hcur, json_string_value(json_object_get(e, "hash")))) {
		printf("deployment/%s skipped rollback (current template already matches revision "
		       "%ld)\n",
		       name, ival(e, "revision"));
		return CLI_OK;
	}
	_cleanup_json_ json_t *patch =
	    json_pack("{s:{s:o}}", "spec", "template", merge_diff(cur, want));
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct client_query q = {.field_manager = "keel-rollout"};
	if (client_patch(cli_client(), api_kind_by_kind("Deployment"), ns, name, patch, &q, NULL,
	                 &err) < 0) {
		cli_report(&err, NULL);
		return CLI_FAIL;
	}
	printf("deployment/%s rolled back to revision %ld\n", name, ival(e, "revision"));
	return CLI_OK;
}

static int cmd_undo(const struct cli_sub *s, int argc, char **argv)
{
	const char *ns = NULL;
	long to = 0;
	const struct cli_opt opts[] = {
	    {"namespace", 'n', CLI_OPT_STRING, &ns, "NS", "namespace (default \"default\")"},
	    {"to-revision", 0, CLI_OPT_INT, &to, "N",
	     "the revision to roll back to (default: the previous one)"},
	};
	struct cli_strv pos = {0};
	int code;
	if (cli_sub_parse(s, opts, ARRAY_SIZE(opts), argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	const char *name = cli_deployment_arg("rollout undo", &pos, 0);
	code = name ? undo(ns ? ns : "default", name, to) : CLI_USAGE;
	cli_strv_free(&pos);
	return code;
}

/* ---- dispatch ------------------------------------------------------------ */

int cli_cmd_rollout(int argc, char **argv)
{
	return cli_sub_dispatch("rollout", subs, ARRAY_SIZE(subs), argc, argv);
}
