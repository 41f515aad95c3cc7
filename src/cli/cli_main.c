/*
 * cli_main: keel's command line entry point. It finds the command (global
 * flags may come before it), hands the remaining words to the command, and
 * owns the few things every command shares: the client (created lazily, so
 * that `keel convert` and `keel help` never need a server), the error
 * printer and kind resolution with "did you mean" hints.
 *
 * The CLI is a thin layer: every request goes through the client library's
 * public API (client/client.h), as curl's tool uses only libcurl.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>

#include "api/status.h"
#include "cli/cli_internal.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"

static int cmd_help(int argc, char **argv);

static const struct cli_command commands[] = {
    {"apply", "Apply manifests to the cluster (server-side apply)",
     "keel apply -f PATH [-f PATH...] [-R] [--dry-run] [--wait [--timeout D]]\n"
     "  [--field-manager NAME] [-n NS] [--prune [--set NAME] [--allow-empty]]",
     "Reads every manifest (a file, a directory's *.yaml/*.yml/*.json files, or - for stdin),\n"
     "validates every document before writing any, then applies Namespaces first and the\n"
     "rest in file order. Each object prints \"KIND/NAME created|configured|unchanged\".\n"
     "A document that fails validation stops the whole apply: nothing is written.\n"
     "With --prune the manifests are one apply set: each object gets the label\n"
     "keel/apply-set=NAME, and the set's objects the manifests no longer define are\n"
     "deleted (\"KIND/NAME pruned\"), Namespaces last.\n"
     "With --wait it then follows each Deployment's rollout and each Task's state,\n"
     "printing progress, until all are running (or done): exit 1 when one failed.",
     "  keel apply -f web.yaml\n  keel apply -f manifests/ -R\n  cat web.yaml | keel apply -f -\n"
     "  keel apply -f web.yaml --dry-run\n  keel apply -f examples/web/ --wait\n"
     "  keel apply -R -f manifests/ --prune\n"
     "  keel apply -R -f manifests/ --prune --set prod --dry-run",
     cli_cmd_apply},
    {"get", "Display one or many objects",
     "keel get KIND [NAME...] [-n NS | -A] [-l SELECTOR] [--field-selector S] [-o FORMAT] [-w]",
     "Prints a table of objects of KIND (any of its names: tasks, task, tk, Task), or\n"
     "their JSON/YAML with -o json|yaml, or KIND/NAME lines with -o name. -w keeps\n"
     "watching and prints a line per change.",
     "  keel get tasks\n  keel get deploy web -o yaml\n  keel get tasks -A -l app=web -o wide\n"
     "  keel get tasks --field-selector status.phase=Running\n  keel get tasks -w",
     cli_cmd_get},
    {"describe", "Show details of an object, with its events",
     "keel describe KIND NAME... | KIND/NAME... [-n NS]",
     "Prints an object's metadata, spec, status, conditions and the last Events about it.\n"
     "For a Task it starts with what says why it is or is not running: its node, status,\n"
     "reason, message, last exit and ports.",
     "  keel describe task web-7c9f-abcde\n  keel describe node worker-1\n"
     "  keel describe -n web $(keel get tasks -n web -o name)",
     cli_cmd_describe},
    {"delete", "Delete objects by name or by manifest",
     "keel delete KIND NAME... [-n NS] | keel delete -f PATH [-R] [--ignore-not-found] "
     "[--cascade=background|orphan|foreground] [--dry-run]",
     "Deletes the named objects, or every object in the manifests (in reverse order:\n"
     "other kinds in reverse file order first, Namespaces last).",
     "  keel delete task web\n  keel delete -f manifests/ -R\n"
     "  keel delete deploy web --cascade=orphan",
     cli_cmd_delete},
    {"diff", "Show what apply would change",
     "keel diff -f PATH [-f PATH...] [-R] [-n NS] [--field-manager NAME] [--prune] [--set NAME]",
     "Asks the server for the result of applying each document (dry run) and prints a\n"
     "unified diff of the live object against it. With --prune, objects apply --prune\n"
     "would delete are shown as removed. Exit status: 0 no differences, 1 differences,\n"
     "2 an error.",
     "  keel diff -f web.yaml\n  keel diff -f manifests/ -R\n  keel diff -R -f manifests/ --prune",
     cli_cmd_diff},
    {"sync", "Keep the cluster equal to a manifest directory (GitOps)",
     "keel sync DIR [--interval 60s] [--once] [--set NAME] [--debounce 200ms] [--allow-empty]",
     "Applies DIR (recursively, *.yaml and *.yml) as one apply set with prune, then watches\n"
     "it (inotify) and applies again after every change, and every --interval puts back\n"
     "what was changed by hand. A file that does not parse or validate is reported and\n"
     "its objects are left as they were. One log line per pass on stderr. --once does\n"
     "one pass and exits 0, or 1 if anything failed; SIGINT/SIGTERM stop it.",
     "  keel sync examples/gitops\n  keel sync /srv/cluster-repo --interval 2m --set prod\n"
     "  keel sync examples/gitops --once",
     cli_cmd_sync},
    {"lint", "Validate manifests offline, without a server",
     "keel lint -f PATH [-f PATH...] [-o text|json]",
     "Reads manifests (directories recursively) and checks them with the same validation\n"
     "code the server runs: YAML errors, unknown fields, bad values, objects defined twice,\n"
     "each at FILE:LINE:COL with its field path; YAML 1.1 look-alikes are warnings.\n"
     "Exit status 1 when there is any error. -o json prints a list of\n"
     "{file, line, column, field, severity, message}.",
     "  keel lint -f examples\n  keel lint -f web.yaml -o json | jq '.[].message'", cli_cmd_lint},
    {"convert", "Print manifests as JSON, one document per line",
     "keel convert -f FILE|- [-f ...] [-R]",
     "Reads YAML documents and prints each one as a line of compact JSON, exactly as\n"
     "read (no validation); YAML warnings go to stderr.",
     "  keel convert -f web.yaml\n  cat web.yaml | keel convert -f -", cli_cmd_convert},
    {"logs", "Print the output of a Task", "keel logs TASK [-n NS] [-f] [--tail N] [--previous]",
     "Prints what the Task's container wrote to stdout and stderr, relayed by the server\n"
     "from the agent of the Task's node. -f keeps streaming; --previous shows the run\n"
     "before the current one (after a restart).",
     "  keel logs web\n  keel logs web -f --tail 20\n  keel logs web --previous", cli_cmd_logs},
    {"scale", "Set the number of replicas of a Deployment",
     "keel scale deployment NAME --replicas N [-n NS]",
     "Sets spec.replicas with a merge patch (field manager keel-scale). A manifest that\n"
     "leaves replicas out keeps the scaled value when applied again; one that sets it\n"
     "puts its own value back.",
     "  keel scale deployment web --replicas 5\n  keel scale deploy/web --replicas 0",
     cli_cmd_scale},
    {"rollout", "Watch, list and undo a Deployment's rollouts",
     "keel rollout status|history|undo deployment NAME [flags]",
     "status waits for the current rollout and prints its progress (exit 0 when complete,\n"
     "1 when progressDeadlineSeconds passed); history lists the revisions kept\n"
     "(revisionHistoryLimit); undo returns to the previous revision or --to-revision N.\n"
     "Run 'keel rollout COMMAND --help' for each command's flags.",
     "  keel rollout status deployment web\n  keel rollout history deployment web\n"
     "  keel rollout undo deployment web\n  keel rollout undo deploy/web --to-revision 2",
     cli_cmd_rollout},
    {"top", "Show CPU and memory of nodes or tasks",
     "keel top nodes [-l SELECTOR] | keel top tasks [-n NS | -A] [-l SELECTOR]",
     "nodes: per Node, the CPU and memory used (the agent's report), requested (the\n"
     "requests of its unfinished Tasks, as the scheduler counts them) and its capacity\n"
     "(allocatable), with percentages of capacity. tasks: per running Task, its usage\n"
     "from the runtime's stats, its requests and limits, and its node. Usage is\n"
     "refreshed every --status-interval of the agent (10s under keel up) when it moved.",
     "  keel top nodes\n  keel top tasks -n web\n  keel top tasks -A -l app=web", cli_cmd_top},
    {"up", "Run server, controllers and a local agent in one process",
     "keel up [-f DIR [--interval DUR]] [--data-dir DIR] [--listen HOST:PORT]\n"
     "  [--runtime docker|process] [--name NODE] [--docker-socket PATH] [--stop-tasks-on-exit]\n"
     "  [--no-user-config] [--tls | --tls-cert FILE --tls-key FILE] [--insecure-listen]\n"
     "  [--store lmdb|etcd --etcd-endpoints URLS [--etcd-prefix P]]",
     "Runs the API server with its LMDB store, every controller (scheduler, tasks, nodes,\n"
     "gc) and one agent for this machine, in the foreground, until Ctrl-C or SIGTERM.\n"
     "The runtime is docker when a Docker engine answers on its socket, else process\n"
     "(it says which, and why). It writes ~/.config/keel/config (unless that file is\n"
     "someone else's) so that the CLI finds it with no flags. -f DIR keeps the cluster\n"
     "equal to DIR as keel sync DIR does: applied now, after every change to its files,\n"
     "and fully every --interval (60s), which puts back what was changed by hand. On\n"
     "exit the tasks keep running unless --stop-tasks-on-exit; the next keel up adopts them.",
     "  keel up -f examples/web\n  keel up --data-dir /tmp/keel --listen 127.0.0.1:0\n"
     "  keel up --runtime process --stop-tasks-on-exit",
     cli_cmd_up},
    {"token", "Mint, list and revoke API tokens (admins)", "keel token create|list|revoke [flags]",
     "create mints a token for a node agent (--role node --node NAME) or a user\n"
     "(--role viewer|admin --user NAME) and prints it on the last line of stdout; list\n"
     "shows names and roles (never tokens); revoke NAME removes a minted one. Only a\n"
     "server without --token-file mints (keel server, keel up); it keeps hashes in\n"
     "the store, so every server sharing it knows them. Run 'keel token COMMAND --help' for each command's flags.",
     "  keel token create --role node --node worker-1\n"
     "  keel token create --role viewer --user alice\n  keel token list\n"
     "  keel token revoke alice",
     cli_cmd_token},
    {"version", "Print the client and server versions", "keel version",
     "Prints the client's version and, when the server can be reached, the server's.",
     "  keel version", cli_cmd_version},
    {"completion", "Print a shell completion script", "keel completion bash",
     "Prints a bash script that completes keel's commands, flags, kinds and the names\n"
     "of live objects (it asks the server with keel get). Load it in the current shell,\n"
     "or install it for every new one.",
     "  source <(keel completion bash)\n"
     "  keel completion bash > /etc/bash_completion.d/keel",
     cli_cmd_completion},
    {"help", "Help about any command", "keel help [COMMAND]",
     "Lists the commands, or shows the flags and examples of one.", "  keel help apply", cmd_help},
};

static FILE *help_file;

FILE *cli_help_file(void)
{
	return help_file ? help_file : stdout;
}

void cli_set_help_file(FILE *f)
{
	help_file = f;
}

size_t cli_commands(const struct cli_command **out)
{
	*out = commands;
	return ARRAY_SIZE(commands);
}

const struct cli_command *cli_command_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (streq(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void print_opt(const struct cli_opt *o, FILE *f)
{
	char left[64];
	if (o->short_name)
		snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
		         o->arg ? " " : "", o->arg ? o->arg : "");
	else
		snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->arg ? " " : "",
		         o->arg ? o->arg : "");
	fprintf(f, "  %-34s %s\n", left, o->help);
}

void cli_print_help(const struct cli_command *c, const struct cli_opt *opts, size_t n_opts, FILE *f)
{
	fprintf(f, "%s\n\n%s\n\nUsage:\n  %s\n", c->summary, c->description, c->usage);
	fprintf(f, "\nFlags:\n");
	bool durations = false;
	for (size_t i = 0; i < n_opts; i++) {
		print_opt(&opts[i], f);
		durations = durations || (opts[i].arg && streq(opts[i].arg, "DURATION"));
	}
	fprintf(f, "  %-34s %s\n", "-h, --help", "show this help");
	if (durations) /* one rule for every duration flag, as keel server and agent say */
		fprintf(f, "\n  %s\n", CLI_DURATION_HELP);
	const struct cli_opt *g;
	size_t ng = cli_global_opts(&g);
	fprintf(f, "\nGlobal flags:\n");
	for (size_t i = 0; i < ng; i++)
		print_opt(&g[i], f);
	fprintf(f, "\nExamples:\n%s\n", c->example);
}

int cli_sub_parse(const struct cli_sub *s, const struct cli_opt *opts, size_t n, int argc,
                  char **argv, struct cli_strv *pos, int *code)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	bool help = false;
	if (cli_args_parse(s->help.name, opts, n, argc, argv, pos, &help, &err) < 0) {
		fprintf(stderr, "error: %s\nSee 'keel %s --help' for usage.\n", kerr_msg(&err),
		        s->help.name);
		*code = CLI_USAGE;
		return 1;
	}
	if (help) {
		cli_print_help(&s->help, opts, n, cli_help_file());
		*code = CLI_OK;
		return 1;
	}
	return 0;
}

int cli_sub_dispatch(const char *cmd, const struct cli_sub *subs, size_t n, int argc, char **argv)
{
	_cleanup_free_ const char **names = xcalloc(n, sizeof *names);
	for (size_t i = 0; i < n; i++)
		names[i] = subs[i].name;
	if (argc >= 1 && argv[0][0] != '-') {
		for (size_t i = 0; i < n; i++)
			if (streq(argv[0], subs[i].name))
				return subs[i].run(&subs[i], argc - 1, argv + 1);
		const char *best = str_closest(argv[0], names, n);
		fprintf(stderr, "error: unknown %s command \"%s\"%s%s%s\n", cmd, argv[0],
		        best ? "; did you mean \"" : "", best ? best : "", best ? "\"?" : "");
		return CLI_USAGE;
	}
	struct cli_strv pos = {0};
	int code;
	if (cli_parse_or_help(cmd, NULL, 0, argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	cli_strv_free(&pos);
	struct sbuf list = SBUF_INIT;
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&list, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
	fprintf(stderr, "error: keel %s needs a command: %s\nSee 'keel %s --help' for usage.\n",
	        cmd, list.data, cmd);
	sbuf_free(&list);
	return CLI_USAGE;
}

int cli_parse_or_help(const char *cmd, const struct cli_opt *opts, size_t n_opts, int argc,
                      char **argv, struct cli_strv *pos, int *code)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	bool help = false;
	if (cli_args_parse(cmd, opts, n_opts, argc, argv, pos, &help, &err) < 0) {
		fprintf(stderr, "error: %s\nSee 'keel %s --help' for usage.\n", kerr_msg(&err),
		        cmd);
		*code = CLI_USAGE;
		return 1;
	}
	if (help) {
		cli_print_help(cli_command_find(cmd), opts, n_opts, cli_help_file());
		*code = CLI_OK;
		return 1;
	}
	if (cli_globals.log_level && log_level_parse(cli_globals.log_level) < 0) {
		fprintf(stderr, "error: unknown log level \"%s\" (debug|info|warn|error)\n",
		        cli_globals.log_level);
		*code = CLI_USAGE;
		return 1;
	}
	if (cli_globals.log_level)
		log_set_level((enum log_level)log_level_parse(cli_globals.log_level));
	return 0;
}

static void print_overview(FILE *f)
{
	fprintf(f, "keel — a small declarative container orchestrator.\n\nUsage:\n"
	           "  keel COMMAND [flags]\n\nCommands:\n");
	fprintf(f, "  %-10s %s\n", "server", "Run the API server (keel server --help)");
	fprintf(f, "  %-10s %s\n", "agent", "Run a node agent (keel agent --help)");
	fprintf(f, "  %-10s %s\n", "controller", "Run one controller loop (keel controller --help)");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nExit status: 0 success, 1 failure (diff: differences), 2 usage error.\n"
	           "Run 'keel COMMAND --help' for a command's flags and examples.\n");
}

static int cmd_help(int argc, char **argv)
{
	struct cli_strv pos = {0};
	int code;
	if (cli_parse_or_help("help", NULL, 0, argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	int r = CLI_OK;
	if (pos.n == 0) {
		print_overview(stdout);
	} else if (streq(pos.v[0], "help")) {
		cli_print_help(cli_command_find("help"), NULL, 0, stdout);
	} else if (cli_command_find(pos.v[0])) {
		char *hargv[] = {(char *)"--help"};
		r = cli_command_find(pos.v[0])->run(1, hargv);
	} else {
		fprintf(stderr, "error: unknown help topic \"%s\"\n", pos.v[0]);
		r = CLI_USAGE;
	}
	cli_strv_free(&pos);
	return r;
}

/* ---- shared services ---- */

static struct client *the_client;

static void trace_request(const char *method, const char *url, int http, long ms, void *ud)
{
	(void)ud;
	log_debug("%s %s -> %d (%ld ms)", method, url, http, ms);
}

struct client *cli_client(void)
{
	if (the_client)
		return the_client;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	struct client_config cfg = {0};
	if (client_config_resolve(cli_globals.server, cli_globals.token, cli_globals.config,
	                          cli_globals.ca, &cfg, &err) < 0) {
		fprintf(stderr, "error: %s\n", kerr_msg(&err));
		return NULL;
	}
	struct client_opts o = {
	    .server = cfg.server, .token = cfg.token, .ca_file = cfg.ca, .trace = trace_request};
	if (client_new(&o, &the_client, &err) < 0)
		fprintf(stderr, "error: %s\n", kerr_msg(&err));
	else
		log_debug("server %s (%s), token from %s, CA %s%s%s%s%s", cfg.server,
		          cfg.server_from, cfg.token_from ? cfg.token_from : "nowhere",
		          cfg.ca ? cfg.ca : "the system's", cfg.ca ? " from " : "",
		          cfg.ca ? cfg.ca_from : "", cfg.config_file ? ", config " : "",
		          cfg.config_file ? cfg.config_file : "");
	client_config_clear(&cfg);
	return the_client;
}

void cli_client_cleanup(void)
{
	client_free(the_client);
	the_client = NULL;
}

void cli_report(const struct kerr *err, const char *prefix)
{
	int http = the_client ? client_last_http_code(the_client) : 0;
	json_t *st = the_client ? client_last_status(the_client) : NULL;
	const char *reason = json_string_value(json_object_get(st, "reason"));
	if (http >= 400 && !reason)
		api_http_status(err ? err->code : EIO, &reason);
	if (http >= 400)
		fprintf(stderr, "%sError from server (%s): %s\n", prefix ? prefix : "", reason,
		        kerr_msg(err));
	else
		fprintf(stderr, "%serror: %s\n", prefix ? prefix : "", kerr_msg(err));
}

bool cli_error_is_fatal(const struct kerr *err)
{
	int c = err ? err->code : 0;
	return c == ECONNREFUSED || c == EHOSTUNREACH || c == ETIMEDOUT || c == EACCES ||
	       c == EPROTO;
}

const struct api_kind *cli_kind(const char *name)
{
	const struct api_kind *k = api_kind_resolve(name);
	if (k)
		return k;
	/* Kubernetes' name for what keel calls a Task. */
	if (streq(name, "pod") || streq(name, "pods") || streq(name, "po")) {
		fprintf(stderr,
		        "error: the server doesn't have a resource type \"%s\"; did you mean "
		        "\"tasks\"? (a keel Task is one container, as a Pod is)\n",
		        name);
		return NULL;
	}
	const char *hint = api_kind_suggest(name);
	if (hint)
		fprintf(
		    stderr,
		    "error: the server doesn't have a resource type \"%s\"; did you mean \"%s\"?\n",
		    name, hint);
	else
		fprintf(stderr,
		        "error: the server doesn't have a resource type \"%s\"; known types: "
		        "deployments, events, namespaces, nodes, tasks\n",
		        name);
	return NULL;
}

/* Skips global flags before the command; returns the command's index. */
static int find_command(int argc, char **argv)
{
	const struct cli_opt *g;
	size_t ng = cli_global_opts(&g);
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		bool known = false;
		for (size_t k = 0; k < ng; k++) {
			size_t len = strlen(g[k].name);
			if (strncmp(argv[i] + 2, g[k].name, len) == 0 &&
			    strstartswith(argv[i], "--")) {
				if (argv[i][2 + len] == '=') {
					*(const char **)g[k].dest = argv[i] + 3 + len;
					known = true, i += 1;
				} else if (argv[i][2 + len] == '\0' && i + 1 < argc) {
					*(const char **)g[k].dest = argv[i + 1];
					known = true, i += 2;
				}
				break;
			}
		}
		if (!known)
			break;
	}
	return i;
}

static int unknown_command(const char *name)
{
	const char *names[ARRAY_SIZE(commands) + 3];
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		names[i] = commands[i].name;
	names[ARRAY_SIZE(commands)] = "server";
	names[ARRAY_SIZE(commands) + 1] = "agent";
	names[ARRAY_SIZE(commands) + 2] = "controller";
	const char *best = str_closest(name, names, ARRAY_SIZE(names));
	if (best)
		fprintf(stderr, "error: unknown command \"%s\"; did you mean \"%s\"?\n", name,
		        best);
	else
		fprintf(stderr, "error: unknown command \"%s\"\n", name);
	fprintf(stderr, "Run 'keel help' for usage.\n");
	return CLI_USAGE;
}

int cli_main(int argc, char **argv)
{
	int i = find_command(argc, argv);
	if (i >= argc) {
		print_overview(stderr);
		return CLI_USAGE;
	}
	const char *name = argv[i];
	if (streq(name, "-h") || streq(name, "--help")) {
		print_overview(stdout);
		return CLI_OK;
	}
	if (streq(name, "--version"))
		name = "version";
	const struct cli_command *c = cli_command_find(name);
	if (!c) {
		if (name[0] == '-') {
			fprintf(stderr, "error: unknown flag \"%s\"\nRun 'keel help' for usage.\n",
			        name);
			return CLI_USAGE;
		}
		return unknown_command(name);
	}
	int r = c->run(argc - i - 1, argv + i + 1);
	cli_client_cleanup();
	fflush(stdout);
	return r;
}
