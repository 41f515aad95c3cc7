/*
 * agent_main — `keel agent`: parses the flags, resolves the server and
 * token, builds the runtime and hands over to the agent loop (agent.c).
 */
#include <errno.h>
#include <stdio.h>

#include "agent/agent.h"
#include "agent/agent_opts.h"
#include "common/kerr.h"
#include "common/log.h"

int agent_main(int argc, char **argv)
{
	struct agent_opts o;
	agent_opts_init(&o);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (agent_opts_parse(&o, argc, argv, &err) < 0) {
		fprintf(stderr, "keel agent: %s\n", kerr_msg(&err));
		agent_opts_free(&o);
		return 2;
	}
	if (o.help) {
		fputs(agent_opts_usage(), stdout);
		agent_opts_free(&o);
		return 0;
	}
	log_set_level(o.log_level);
	fprintf(stderr, "keel agent: the agent loop is not built yet\n");
	agent_opts_free(&o);
	return 1;
}
