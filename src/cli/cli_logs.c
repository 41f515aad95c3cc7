/*
 * cli_logs — `keel logs TASK [-n NS] [-f] [--tail N] [--previous]`: prints
 * a Task's output, whichever node it runs on (the server relays it from
 * that node's agent). With -f it keeps printing until the task ends or
 * the user interrupts.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli_internal.h"
#include "common/kerr.h"
#include "common/util.h"

static int print_chunk(void *ud, const char *data, size_t len)
{
	(void)ud;
	if (fwrite(data, 1, len, stdout) != len)
		return 1; /* stdout closed (| head): stop quietly */
	fflush(stdout);
	return 0;
}

int cli_cmd_logs(int argc, char **argv)
{
	const char *ns = NULL;
	bool follow = false, previous = false;
	long tail = -1;
	const struct cli_opt opts[] = {
	    {"namespace", 'n', CLI_OPT_STRING, &ns, "NS", "namespace (default \"default\")"},
	    {"follow", 'f', CLI_OPT_BOOL, &follow, NULL, "keep streaming new output"},
	    {"tail", 0, CLI_OPT_INT, &tail, "N", "only the last N lines"},
	    {"previous", 'p', CLI_OPT_BOOL, &previous, NULL, "the run before the current one"},
	};
	struct cli_strv pos = {0};
	int code;
	if (cli_parse_or_help("logs", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	if (pos.n != 1) {
		fprintf(stderr, "error: keel logs takes one task name (see keel logs --help)\n");
		cli_strv_free(&pos);
		return CLI_USAGE;
	}
	const char *name = pos.v[0];
	if (strstartswith(name, "task/") || strstartswith(name, "tasks/"))
		name = strchr(name, '/') + 1;
	struct client *c = cli_client();
	if (!c) {
		cli_strv_free(&pos);
		return CLI_FAIL;
	}
	struct client_logs_opts lo = {.follow = follow, .tail = tail, .previous = previous};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int r = client_logs(c, ns ? ns : "default", name, &lo, print_chunk, NULL, &err);
	cli_strv_free(&pos);
	if (r < 0) {
		cli_report(&err, NULL);
		return CLI_FAIL;
	}
	return CLI_OK;
}
