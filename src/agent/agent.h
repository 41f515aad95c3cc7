/*
 * agent — keel's node agent: registers its Node, renews its lease, watches
 * the Tasks bound to it and makes its runtime match them.
 */
#pragma once

/* `keel agent [flags]`: argv[0] is "agent". Returns the process exit code. */
int agent_main(int argc, char **argv);
