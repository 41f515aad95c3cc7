/*
 * cli_completion — `keel completion bash`: a bash completion script
 * generated from the commands themselves, so that it never falls behind
 * them. Each CLI command's flags are read from its own --help (printed
 * into memory, cli_set_help_file), the daemons' (server, agent,
 * controller) from their usage texts, and rollout's subcommands likewise.
 * The script completes commands, flags, kinds, the names of live objects
 * (asking `keel get KIND -o name`, with the -n given so far), namespaces,
 * -o formats, --runtime values and file names after -f.
 */
#include "cli/cli_internal.h"

#include <ctype.h>
#include <stdlib.h>

#include "agent/agent_opts.h"
#include "common/util.h"
#include "controllers/controller.h"
#include "server/opts.h"

/* Appends to b every flag ("--name", "-x") that starts an indented line of
 * help, once each. */
static void flags_from_help(const char *help, struct sbuf *b)
{
	for (const char *line = help; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *p = line;
		while (p < line + len && *p == ' ')
			p++;
		while (p > line && p < line + len && *p == '-') {
			const char *q = p;
			while (q < line + len && (isalnum((unsigned char)*q) || *q == '-'))
				q++;
			_cleanup_free_ char *flag = xstrndup(p, (size_t)(q - p));
			if (strlen(flag) > 1 && !streq(flag, "--")) {
				_cleanup_free_ char *padded = xasprintf(" %s ", flag);
				_cleanup_free_ char *have = xasprintf(" %s ", b->data ? b->data : "");
				if (!strstr(have, padded))
					sbuf_printf(b, "%s%s", b->len ? " " : "", flag);
			}
			if (q + 1 < line + len && q[0] == ',' && q[1] == ' ')
				p = q + 2; /* "-f, --filename" */
			else
				break;
		}
		line = nl ? nl + 1 : NULL;
	}
}

/* The --help text of `keel ARGV...` (a CLI command), owned. */
static char *help_of(const struct cli_command *c, int argc, char **argv)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return xstrdup("");
	cli_set_help_file(f);
	c->run(argc, argv);
	cli_set_help_file(NULL);
	fclose(f);
	return text ? text : xstrdup("");
}

static void shell_name(const char *cmd, char *out, size_t n)
{
	snprintf(out, n, "%s", cmd);
	for (char *p = out; *p; p++)
		if (!isalnum((unsigned char)*p))
			*p = '_';
}

static void emit_flags(FILE *f, const char *cmd, const char *help)
{
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	flags_from_help(help, &b);
	char name[64];
	shell_name(cmd, name, sizeof(name));
	fprintf(f, "_keel_flags_%s='%s'\n", name, b.data ? b.data : "");
}

static void emit_tables(FILE *f)
{
	const struct cli_command *cmds;
	size_t n = cli_commands(&cmds);
	_cleanup_sbuf_ struct sbuf names = SBUF_INIT;
	sbuf_puts(&names, "server agent controller");
	for (size_t i = 0; i < n; i++) {
		sbuf_printf(&names, " %s", cmds[i].name);
		if (streq(cmds[i].name, "help") || streq(cmds[i].name, "completion"))
			continue;
		char *argv[] = {(char *)"--help", NULL};
		_cleanup_free_ char *h = help_of(&cmds[i], 1, argv);
		emit_flags(f, cmds[i].name, h);
	}
	static const char *const subs[] = {"status", "history", "undo"};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		char *argv[] = {(char *)subs[i], (char *)"--help", NULL};
		_cleanup_free_ char *h = help_of(cli_command_find("rollout"), 2, argv);
		_cleanup_free_ char *cmd = xasprintf("rollout_%s", subs[i]);
		emit_flags(f, cmd, h);
	}
	static const char *const tsubs[] = {"create", "list", "revoke"};
	for (size_t i = 0; i < ARRAY_SIZE(tsubs); i++) {
		char *argv[] = {(char *)tsubs[i], (char *)"--help", NULL};
		_cleanup_free_ char *h = help_of(cli_command_find("token"), 2, argv);
		_cleanup_free_ char *cmd = xasprintf("token_%s", tsubs[i]);
		emit_flags(f, cmd, h);
	}
	_cleanup_free_ char *server = xasprintf("%s%s", srv_opts_usage(), controller_flags_usage());
	emit_flags(f, "server", server);
	emit_flags(f, "agent", agent_opts_usage());
	_cleanup_free_ char *ctl = xasprintf("  --server URL\n  --token TOKEN\n  --log-level L\n%s",
	                                     controller_flags_usage());
	emit_flags(f, "controller", ctl);
	fprintf(f, "_keel_commands='%s'\n", names.data);
	fprintf(f, "_keel_kinds='tasks deployments nodes namespaces events'\n");
}

static const char script[] =
    "_keel_names() { # KIND: names of live objects, in the -n namespace given so far\n"
    "\tlocal ns=() i\n"
    "\tfor ((i = 1; i < cword; i++)); do\n"
    "\t\tcase ${words[i]} in -n | --namespace) ns=(-n \"${words[i + 1]}\") ;; -A | "
    "--all-namespaces) ns=(-A) ;; esac\n"
    "\tdone\n"
    "\t\"${words[0]}\" get \"$1\" \"${ns[@]}\" -o name 2>/dev/null | sed 's|.*/||'\n"
    "}\n"
    "\n"
    "_keel() {\n"
    "\tlocal cur prev words cword\n"
    "\tif declare -F _init_completion >/dev/null; then\n"
    "\t\t_init_completion || return\n"
    "\telse\n"
    "\t\twords=(\"${COMP_WORDS[@]}\") cword=$COMP_CWORD\n"
    "\t\tcur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
    "\tfi\n"
    "\tlocal cmd=\"\" args=() i\n"
    "\tfor ((i = 1; i < cword; i++)); do\n"
    "\t\tcase ${words[i]} in\n"
    "\t\t-n | --namespace | -l | --selector | -o | --output | -f | --filename | --server | "
    "--token | --config) ((i++)) ;;\n"
    "\t\t-*) ;;\n"
    "\t\t*) if [[ -z $cmd ]]; then cmd=${words[i]}; else args+=(\"${words[i]}\"); fi ;;\n"
    "\t\tesac\n"
    "\tdone\n"
    "\tif [[ -z $cmd && $cur != -* ]]; then\n"
    "\t\tCOMPREPLY=($(compgen -W \"$_keel_commands\" -- \"$cur\"))\n"
    "\t\treturn\n"
    "\tfi\n"
    "\tcase $prev in\n"
    "\t-f | --filename | --data-dir | --config | --token-file | --docker-socket)\n"
    "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
    "\t\tcompopt -o filenames 2>/dev/null\n"
    "\t\treturn ;;\n"
    "\t-o | --output) COMPREPLY=($(compgen -W 'wide yaml json name' -- \"$cur\")); return ;;\n"
    "\t--runtime) COMPREPLY=($(compgen -W 'docker process sim' -- \"$cur\")); return ;;\n"
    "\t--role) COMPREPLY=($(compgen -W 'admin viewer node' -- \"$cur\")); return ;;\n"
    "\t--node) COMPREPLY=($(compgen -W \"$(_keel_names nodes)\" -- \"$cur\")); return ;;\n"
    "\t--cascade) COMPREPLY=($(compgen -W 'background orphan foreground' -- \"$cur\")); "
    "return ;;\n"
    "\t-n | --namespace) COMPREPLY=($(compgen -W \"$(_keel_names namespaces)\" -- \"$cur\")); "
    "return ;;\n"
    "\tesac\n"
    "\tlocal key=$cmd\n"
    "\t[[ ($cmd == rollout || $cmd == token) && ${#args[@]} -gt 0 ]] && key=${cmd}_${args[0]}\n"
    "\tif [[ $cur == -* ]]; then\n"
    "\t\tlocal v=_keel_flags_${key//-/_}\n"
    "\t\tCOMPREPLY=($(compgen -W \"${!v}\" -- \"$cur\"))\n"
    "\t\treturn\n"
    "\tfi\n"
    "\tcase $cmd in\n"
    "\tget | describe | delete)\n"
    "\t\tif ((${#args[@]} == 0)); then\n"
    "\t\t\tCOMPREPLY=($(compgen -W \"$_keel_kinds\" -- \"$cur\"))\n"
    "\t\telse\n"
    "\t\t\tCOMPREPLY=($(compgen -W \"$(_keel_names \"${args[0]}\")\" -- \"$cur\"))\n"
    "\t\tfi ;;\n"
    "\ttop) ((${#args[@]} == 0)) && COMPREPLY=($(compgen -W 'nodes tasks' -- \"$cur\")) ;;\n"
    "\tlogs) COMPREPLY=($(compgen -W \"$(_keel_names tasks)\" -- \"$cur\")) ;;\n"
    "\tscale) if ((${#args[@]} == 0)); then COMPREPLY=($(compgen -W deployment -- \"$cur\"));\n"
    "\t\telse COMPREPLY=($(compgen -W \"$(_keel_names deployments)\" -- \"$cur\")); fi ;;\n"
    "\trollout)\n"
    "\t\tcase ${#args[@]} in\n"
    "\t\t0) COMPREPLY=($(compgen -W 'status history undo' -- \"$cur\")) ;;\n"
    "\t\t1) COMPREPLY=($(compgen -W deployment -- \"$cur\")) ;;\n"
    "\t\t*) COMPREPLY=($(compgen -W \"$(_keel_names deployments)\" -- \"$cur\")) ;;\n"
    "\t\tesac ;;\n"
    "\tcontroller) ((${#args[@]} == 0)) && COMPREPLY=($(compgen -W 'scheduler tasks nodes gc' "
    "-- \"$cur\")) ;;\n"
    "\ttoken) ((${#args[@]} == 0)) && COMPREPLY=($(compgen -W 'create list revoke' -- "
    "\"$cur\")) ;;\n"
    "\tcompletion) COMPREPLY=($(compgen -W bash -- \"$cur\")) ;;\n"
    "\thelp) COMPREPLY=($(compgen -W \"$_keel_commands\" -- \"$cur\")) ;;\n"
    "\tesac\n"
    "}\n"
    "complete -F _keel keel\n";

void cli_completion_bash(FILE *f)
{
	fprintf(f, "# bash completion for keel, generated by `keel completion bash` (keel %s).\n"
	           "# Load it with: source <(keel completion bash)\n"
	           "# or install it: keel completion bash > "
	           "/etc/bash_completion.d/keel\n",
	           KEEL_VERSION);
	emit_tables(f);
	fputs(script, f);
}

int cli_cmd_completion(int argc, char **argv)
{
	struct cli_strv pos = {0};
	int code;
	if (cli_parse_or_help("completion", NULL, 0, argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	if (pos.n != 1 || !streq(pos.v[0], "bash")) {
		fprintf(stderr, "error: keel completion needs the shell: bash (the only one so far)\n");
		code = CLI_USAGE;
	} else {
		cli_completion_bash(stdout);
		code = CLI_OK;
	}
	cli_strv_free(&pos);
	return code;
}
