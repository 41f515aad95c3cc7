/*
 * cli_token — `keel token create|list|revoke`: API tokens minted by the
 * server (POST/GET/DELETE /apis/keel/v1/tokens, admins only), for users
 * (roles admin, viewer) and node agents (role node: the token's name is
 * the node's). The server keeps only a hash of each token, so `create`
 * is the only time a token is shown: it goes alone on the last line of
 * stdout (what `$(keel token create ...)` captures); everything else goes
 * to stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/meta.h"
#include "cli/cli_internal.h"
#include "common/kerr.h"
#include "common/util.h"

#define TOKENS_PATH "/apis/keel/v1/tokens"

static int cmd_create(const struct cli_sub *s, int argc, char **argv);
static int cmd_list(const struct cli_sub *s, int argc, char **argv);
static int cmd_revoke(const struct cli_sub *s, int argc, char **argv);

static const struct cli_sub subs[] = {
    {"create",
     {"token create", "Mint an API token",
      "keel token create --role node --node NAME | --role viewer|admin --user NAME",
      "Asks the server for a new token and prints it on the last line of stdout; it is\n"
      "shown only this once (the server keeps a hash). Role node is for `keel agent\n"
      "--token T --name NAME`: it may write only that Node, its lease and the status of\n"
      "the Tasks bound to it. Role viewer may only read. A server started with\n"
      "--token-file refuses: the file is its only source of tokens.",
      "  keel token create --role node --node worker-1\n"
      "  keel token create --role viewer --user alice\n"
      "  T=$(keel token create --role node --node n1) && keel agent --token \"$T\" --name n1",
      NULL},
     cmd_create},
    {"list",
     {"token list", "List the API tokens (names and roles, never the tokens)", "keel token list",
      "Lists every token the server knows: its name, role and where it comes from\n"
      "(token-file, admin.token or minted).",
      "  keel token list", NULL},
     cmd_list},
    {"revoke",
     {"token revoke", "Revoke a minted API token", "keel token revoke NAME",
      "Removes the minted token NAME: requests with it get 401 from then on, and the\n"
      "watches open with it are ended (a log follow already open runs until it ends).",
      "  keel token revoke worker-1", NULL},
     cmd_revoke},
};

/* The usage checks of create (cli_internal.h). Pure, for the unit tests. */
const char *cli_token_check(const char *role, const char *node, const char *user, const char **name)
{
	if (!role)
		return "keel token create needs --role (admin, viewer or node)";
	if (!streq(role, "admin") && !streq(role, "viewer") && !streq(role, "node"))
		return "--role must be admin, viewer or node";
	if (streq(role, "node")) {
		if (user)
			return "--role node takes --node NAME, not --user";
		if (!node)
			return "--role node needs --node NAME (the name the agent runs as)";
		*name = node;
	} else {
		if (node)
			return "--node is for --role node; use --user NAME";
		if (!user)
			return "--role admin and --role viewer need --user NAME";
		*name = user;
	}
	if (!api_is_dns1123_subdomain(*name))
		return streq(role, "node") ? "--node: not a valid node name (a DNS-1123 subdomain: "
		                             "lower-case letters, digits, '-' and '.')"
		                           : "--user: not a valid name (a DNS-1123 subdomain: "
		                             "lower-case letters, digits, '-' and '.')";
	return NULL;
}

static int do_create(const char *name, const char *role)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	_cleanup_json_ json_t *body =
	    json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "keel/v1", "kind", "Token",
	              "metadata", "name", name, "spec", "role", role);
	struct client_response resp = {0};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (client_request(c, "POST", TOKENS_PATH, NULL, body, &resp, &err) < 0) {
		cli_report(&err, NULL);
		return CLI_FAIL;
	}
	const char *tok =
	    json_string_value(json_object_get(json_object_get(resp.body, "status"), "token"));
	int code = CLI_OK;
	if (!tok) {
		fprintf(stderr, "error: the server's answer holds no token\n");
		code = CLI_FAIL;
	} else {
		fprintf(stderr, "token/%s created (role %s); it is shown only now:\n", name, role);
		printf("%s\n", tok);
	}
	client_response_clear(&resp);
	return code;
}

static int cmd_create(const struct cli_sub *s, int argc, char **argv)
{
	const char *role = NULL, *node = NULL, *user = NULL;
	const struct cli_opt opts[] = {
	    {"role", 0, CLI_OPT_STRING, &role, "ROLE", "admin, viewer or node (required)"},
	    {"node", 0, CLI_OPT_STRING, &node, "NAME", "the node's name (role node)"},
	    {"user", 0, CLI_OPT_STRING, &user, "NAME", "the user's name (roles admin, viewer)"},
	};
	struct cli_strv pos = {0};
	int code;
	if (cli_sub_parse(s, opts, ARRAY_SIZE(opts), argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	const char *name = NULL;
	const char *bad = pos.n ? "keel token create takes no arguments (use --node or --user)"
	                        : cli_token_check(role, node, user, &name);
	cli_strv_free(&pos);
	if (bad) {
		fprintf(stderr, "error: %s\nSee 'keel token create --help' for usage.\n", bad);
		return CLI_USAGE;
	}
	return do_create(name, role);
}

static int cmd_list(const struct cli_sub *s, int argc, char **argv)
{
	struct cli_strv pos = {0};
	int code;
	if (cli_sub_parse(s, NULL, 0, argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	size_t npos = pos.n;
	cli_strv_free(&pos);
	if (npos) {
		fprintf(stderr, "error: keel token list takes no arguments\n");
		return CLI_USAGE;
	}
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	struct client_response resp = {0};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (client_request(c, "GET", TOKENS_PATH, NULL, NULL, &resp, &err) < 0) {
		cli_report(&err, NULL);
		return CLI_FAIL;
	}
	struct cli_table *t = cli_table_new(3);
	const char *head[] = {"NAME", "ROLE", "SOURCE"};
	cli_table_add(t, head);
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(resp.body, "items"), i, it)
	{
		const char *row[] = {
		    json_string_value(api_obj_get_path(it, "metadata.name")),
		    json_string_value(api_obj_get_path(it, "spec.role")),
		    json_string_value(api_obj_get_path(it, "status.source")),
		};
		cli_table_add(t, row);
	}
	_cleanup_sbuf_ struct sbuf out = SBUF_INIT;
	cli_table_render(t, &out);
	fputs(out.data ? out.data : "", stdout);
	cli_table_free(t);
	client_response_clear(&resp);
	return CLI_OK;
}

static int cmd_revoke(const struct cli_sub *s, int argc, char **argv)
{
	struct cli_strv pos = {0};
	int code;
	if (cli_sub_parse(s, NULL, 0, argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	if (pos.n != 1) {
		cli_strv_free(&pos);
		fprintf(stderr, "error: keel token revoke needs one NAME\n");
		return CLI_USAGE;
	}
	_cleanup_free_ char *name = xstrdup(pos.v[0]);
	cli_strv_free(&pos);
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	_cleanup_free_ char *esc = client_escape(name);
	_cleanup_free_ char *path = xasprintf(TOKENS_PATH "/%s", esc);
	struct client_response resp = {0};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (client_request(c, "DELETE", path, NULL, NULL, &resp, &err) < 0) {
		cli_report(&err, NULL);
		return CLI_FAIL;
	}
	client_response_clear(&resp);
	printf("token/%s revoked\n", name);
	return CLI_OK;
}

int cli_cmd_token(int argc, char **argv)
{
	return cli_sub_dispatch("token", subs, ARRAY_SIZE(subs), argc, argv);
}
