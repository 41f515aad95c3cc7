/*
 * server — keel's API server: the HTTP API of DESIGN.md on libmicrohttpd,
 * over the LMDB store.
 */
#pragma once

/* `keel server [flags]`: argv[0] is "server". Returns the process exit code. */
int server_main(int argc, char **argv);
