/*
 * cli_misc: the small commands. `keel convert` prints each YAML document
 * as one line of compact JSON, exactly as parsed (no validation, key order
 * kept), which makes manifests easy to feed to jq. `keel version` always
 * exits 0: not reaching the server is reported, not a failure, so that the
 * command can be used to find out which client is installed.
 */
#include "cli/cli_internal.h"

#include "common/kerr.h"
#include "common/util.h"

static int run_convert(const struct cli_strv *files, bool recursive, const struct cli_strv *pos)
{
	if (pos->n > 0 || files->n == 0) {
		fprintf(stderr, "error: usage: keel convert -f FILE|- [-f ...]\n");
		return CLI_USAGE;
	}
	struct manifest_set m = {0};
	size_t errors = cli_manifests_load(files, recursive, false, &m);
	for (size_t i = 0; i < m.n_docs; i++) {
		_cleanup_free_ char *s =
		    json_dumps(m.docs[i].obj, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		printf("%s\n", s ? s : "null");
	}
	manifest_set_free(&m);
	return errors ? CLI_FAIL : CLI_OK;
}

int cli_cmd_convert(int argc, char **argv)
{
	struct cli_strv files = {0};
	bool recursive = false;
	const struct cli_opt opts[] = {
	    {"filename", 'f', CLI_OPT_LIST, &files, "PATH", "YAML file, directory or - for stdin"},
	    {"recursive", 'R', CLI_OPT_BOOL, &recursive, NULL, "read directories recursively"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("convert", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_convert(&files, recursive, &pos);
	cli_strv_free(&pos);
	cli_strv_free(&files);
	return code;
}

static void print_server_version(void)
{
	struct client *c = cli_client();
	if (!c) {
		printf("Server Version: unknown (no usable configuration)\n");
		return;
	}
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *v = NULL;
	if (client_version(c, &v, &err) < 0) {
		printf("Server Version: unreachable (%s)\n", kerr_msg(&err));
		return;
	}
	const char *ver = json_string_value(json_object_get(v, "version"));
	const char *api = json_string_value(json_object_get(v, "apiVersion"));
	if (client_server_count(c) > 1) /* which one answered, and the list */
		printf("Server Version: %s (%s, %s of %s)\n", ver ? ver : "unknown",
		       api ? api : "keel/v1", client_server(c), client_servers(c));
	else
		printf("Server Version: %s (%s, %s)\n", ver ? ver : "unknown",
		       api ? api : "keel/v1", client_server(c));
}

int cli_cmd_version(int argc, char **argv)
{
	bool client_only = false;
	const struct cli_opt opts[] = {
	    {"client", 0, CLI_OPT_BOOL, &client_only, NULL, "print only the client version"},
	};
	struct cli_strv pos = {0};
	int code;
	if (cli_parse_or_help("version", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	if (pos.n > 0) {
		fprintf(stderr, "error: keel version takes no arguments\n");
		cli_strv_free(&pos);
		return CLI_USAGE;
	}
	cli_strv_free(&pos);
	printf("Client Version: %s (API %s)\n", KEEL_VERSION, API_GROUP_VERSION);
	if (!client_only)
		print_server_version();
	return CLI_OK;
}
