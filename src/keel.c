/*
 * keel — one binary, subcommands as in k3s and nomad. The server side
 * (`server`, `agent`, later `up` and `controller`) and the CLI (`apply`,
 * `get`, ...) are libraries; this file only dispatches.
 */
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "server/server.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "server") == 0)
		return server_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "agent") == 0)
		return agent_main(argc - 1, argv + 1);
	return cli_main(argc, argv);
}
