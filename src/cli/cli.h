/*
 * cli — keel's command line (apply, get, describe, delete, diff, convert,
 * version, ...), a thin layer over the client library's public API.
 */
#pragma once

/* argv[0] is the program name; argv[1] the command. Returns the exit code:
 * 0 success, 1 failure (or "differences" for diff), 2 usage error. */
int cli_main(int argc, char **argv);
