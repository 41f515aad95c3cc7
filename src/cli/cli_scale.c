/*
 * cli_scale — `keel scale deployment NAME --replicas N`: a merge patch of
 * spec.replicas, under its own field manager ("keel-scale"), so that the
 * server's apply keeps it when a manifest that leaves replicas out is
 * applied again (a manifest that does set replicas owns the field and puts
 * its value back, as in Kubernetes). Deployment is the only scalable kind.
 */
#include <errno.h>
#include <stdio.h>

#include "cli/cli_internal.h"
#include "common/kerr.h"
#include "common/util.h"

#define SCALE_MAX_REPLICAS 100000 /* api/schema.c's bound on spec.replicas */

const char *cli_deployment_arg(const char *cmd, const struct cli_strv *pos, size_t first)
{
	size_t n = pos->n - first;
	const char *kind = n >= 1 ? pos->v[first] : NULL, *name = NULL;
	const char *slash = kind ? strchr(kind, '/') : NULL;
	char kbuf[64] = "";
	if (slash && n == 1) {
		snprintf(kbuf, sizeof(kbuf), "%.*s", (int)(slash - kind), kind);
		name = slash + 1;
		kind = kbuf;
	} else if (!slash && n == 2) {
		name = pos->v[first + 1];
	} else {
		fprintf(stderr, "error: keel %s needs \"deployment NAME\" (see keel %s --help)\n",
		        cmd, cmd);
		return NULL;
	}
	const struct api_kind *k = cli_kind(kind);
	if (!k)
		return NULL;
	if (!streq(k->kind, "Deployment")) {
		fprintf(stderr, "error: keel %s works on deployments, not %s\n", cmd, k->plural);
		return NULL;
	}
	if (!*name) {
		fprintf(stderr, "error: keel %s: the deployment name is empty\n", cmd);
		return NULL;
	}
	return name;
}

static int do_scale(const char *ns, const char *name, long replicas)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	_cleanup_json_ json_t *patch =
	    json_pack("{s:{s:I}}", "spec", "replicas", (json_int_t)replicas);
	struct client_query q = {.field_manager = "keel-scale"};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	const struct api_kind *k = api_kind_by_kind("Deployment");
	if (client_patch(c, k, ns, name, patch, &q, NULL, &err) < 0) {
		cli_report(&err, NULL);
		return CLI_FAIL;
	}
	printf("deployment/%s scaled\n", name);
	return CLI_OK;
}

int cli_cmd_scale(int argc, char **argv)
{
	const char *ns = NULL;
	long replicas = -1;
	const struct cli_opt opts[] = {
	    {"replicas", 0, CLI_OPT_INT, &replicas, "N", "the new number of replicas (required)"},
	    {"namespace", 'n', CLI_OPT_STRING, &ns, "NS", "namespace (default \"default\")"},
	};
	struct cli_strv pos = {0};
	int code;
	if (cli_parse_or_help("scale", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	const char *name = cli_deployment_arg("scale", &pos, 0);
	if (!name)
		code = CLI_USAGE;
	else if (replicas < 0) {
		fprintf(stderr, "error: keel scale needs --replicas N\n");
		code = CLI_USAGE;
	} else if (replicas > SCALE_MAX_REPLICAS) {
		fprintf(stderr, "error: --replicas %ld: at most %d\n", replicas,
		        SCALE_MAX_REPLICAS);
		code = CLI_USAGE;
	} else {
		code = do_scale(ns ? ns : "default", name, replicas);
	}
	cli_strv_free(&pos);
	return code;
}
