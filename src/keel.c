/*
 * keel — one binary, subcommands as in k3s and nomad. The server side
 * (`server`, `agent`, `controller`) and the CLI (`apply`, `get`, ...,
 * and `up`, which runs server, controllers and an agent in one process
 * through their libraries: src/cli/cli_up.c) are libraries; this file only
 * dispatches, and joins the controllers to `keel server` (they run in its
 * process unless --controllers=none, talking to it over HTTP like any
 * client).
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "common/kerr.h"
#include "common/util.h"
#include "controllers/controller.h"
#include "controllers/leader.h"
#include "server/server.h"

struct in_process {
	struct controller_options opts;
	const char *list;
	struct controller_manager *m;
};

static int controllers_started(void *ud, const char *url, const char *token, const char *ca,
                               const char *data_dir, struct kerr *err)
{
	struct in_process *p = ud;
	p->opts.client.server = url;
	p->opts.client.token = token;
	p->opts.client.ca_file = ca;
	_cleanup_free_ char *id = leader_identity_of_dir(data_dir);
	p->opts.identity = id;
	int rc = controller_manager_start(&p->opts, p->list, &p->m, err);
	p->opts.identity = NULL;
	return rc;
}

static void controllers_stopping(void *ud)
{
	struct in_process *p = ud;
	controller_manager_release(p->m);
}

static void controllers_stopped(void *ud)
{
	struct in_process *p = ud;
	controller_manager_stop(p->m);
	p->m = NULL;
}

static int server_with_controllers(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct in_process p = {0};
	if (controller_take_flags(&argc, argv, &p.opts, &p.list, &err) < 0) {
		fprintf(stderr, "keel server: %s\n", kerr_msg(&err));
		return 2;
	}
	struct server_hooks h = {controllers_started, controllers_stopped, &p,
	                         controllers_stopping};
	server_set_hooks(&h);
	int rc = server_main(argc, argv);
	for (int i = 1; i < argc; i++)
		if (streq(argv[i], "--help") || streq(argv[i], "-h"))
			fputs(controller_flags_usage(), stdout);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "server") == 0)
		return server_with_controllers(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "controller") == 0)
		return controller_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "agent") == 0)
		return agent_main(argc - 1, argv + 1);
	return cli_main(argc, argv);
}
