/*
 * cli_internal — what the files of the CLI share: the context every command
 * gets, the flag parser, tables, printers, manifest loading and the line
 * diff. Private to src/cli (and its unit tests).
 *
 * Exit codes everywhere: CLI_OK 0, CLI_FAIL 1 (a failure, or "differences"
 * for diff), CLI_USAGE 2 (a usage error: unknown command, flag or kind, a
 * missing argument). kubectl exits 1 for an unknown kind; keel says 2
 * because the command line, not the cluster, is wrong.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "api/kind.h"
#include "client/client.h"
#include "common/sbuf.h"
#include "manifests/manifest.h"

struct kerr;

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* ---- flags ------------------------------------------------------------ */

/* Values point into argv (or are static); nothing is allocated. */
struct cli_strv {
	const char **v;
	size_t n;
};
void cli_strv_push(struct cli_strv *sv, const char *s);
void cli_strv_free(struct cli_strv *sv);

enum cli_opt_type {
	CLI_OPT_BOOL,   /* --x, --x=true|false; dest bool* */
	CLI_OPT_STRING, /* --x V, --x=V, -x V, -xV; dest const char** (last wins) */
	CLI_OPT_LIST,   /* like STRING, repeatable; dest struct cli_strv* */
	CLI_OPT_INT,    /* like STRING, a non-negative integer; dest long* */
};

struct cli_opt {
	const char *name; /* long name without "--" */
	char short_name;  /* 0 when none */
	enum cli_opt_type type;
	void *dest;
	const char *arg; /* the value's name in help ("PATH"); NULL for bools */
	const char *help;
};

/* Parses argv[0..argc) (the words after the command name) against opts and
 * then the global flags. Words that are not flags go to *pos, in order;
 * "--" ends flags; "-" alone is a positional (or a flag value). *help is set
 * by -h/--help. Returns 0, or -EINVAL with a one-line message naming the
 * flag (and the closest known one): `unknown flag "--namespcae" for "keel
 * get"; did you mean "--namespace"?`. cmd is "get" etc. */
int cli_args_parse(const char *cmd, const struct cli_opt *opts, size_t n_opts, int argc,
                   char **argv, struct cli_strv *pos, bool *help, struct kerr *err);

/* The flags every command accepts (--server, --token, --config,
 * --log-level); their values land in cli_globals. */
struct cli_globals {
	const char *server;
	const char *token;
	const char *config;
	const char *ca;
	const char *log_level;
};
extern struct cli_globals cli_globals;
size_t cli_global_opts(const struct cli_opt **out);

/* ---- commands ---------------------------------------------------------- */

struct cli_command {
	const char *name;
	const char *summary;     /* one line, for `keel help` */
	const char *usage;       /* "keel get KIND [NAME...] [flags]" */
	const char *description; /* a paragraph */
	const char *example;     /* lines of examples */
	int (*run)(int argc, char **argv);
};
const struct cli_command *cli_command_find(const char *name);
/* The command table (static). */
size_t cli_commands(const struct cli_command **out);
/* Where --help goes: stdout, unless cli_set_help_file(f) (NULL: stdout
 * again) redirects it, as `keel completion` does to read every command's
 * flags from its help. */
FILE *cli_help_file(void);
void cli_set_help_file(FILE *f);

/* The bash completion script (cli_completion.c), generated from the
 * commands' own help, written to f. */
void cli_completion_bash(FILE *f);

/* The usual beginning of a command: parses flags, prints help (returns 1
 * with *code 0) or a usage error (returns 1 with *code 2); 0 to go on. */
int cli_parse_or_help(const char *cmd, const struct cli_opt *opts, size_t n_opts, int argc,
                      char **argv, struct cli_strv *pos, int *code);
void cli_print_help(const struct cli_command *c, const struct cli_opt *opts, size_t n_opts,
                    FILE *f);

/* Commands with subcommands (keel rollout status|history|undo, keel token
 * create|list|revoke): each subcommand's name, its help (help.name is
 * "rollout status") and what runs it. */
struct cli_sub {
	const char *name;
	struct cli_command help;
	int (*run)(const struct cli_sub *s, int argc, char **argv);
};
/* A subcommand's flags: as cli_parse_or_help, with the subcommand's help. */
int cli_sub_parse(const struct cli_sub *s, const struct cli_opt *opts, size_t n, int argc,
                  char **argv, struct cli_strv *pos, int *code);
/* keel CMD SUB ...: runs the subcommand argv[0] names; an unknown one is a
 * usage error with a did-you-mean, none at all (or only flags) prints
 * CMD's help or says which subcommands there are. */
int cli_sub_dispatch(const char *cmd, const struct cli_sub *subs, size_t n, int argc, char **argv);

int cli_cmd_apply(int argc, char **argv);
int cli_cmd_get(int argc, char **argv);
int cli_cmd_describe(int argc, char **argv);
int cli_cmd_delete(int argc, char **argv);
int cli_cmd_diff(int argc, char **argv);
int cli_cmd_convert(int argc, char **argv);
int cli_cmd_version(int argc, char **argv);
int cli_cmd_logs(int argc, char **argv);
int cli_cmd_scale(int argc, char **argv);   /* cli_scale.c */
int cli_cmd_rollout(int argc, char **argv); /* cli_rollout.c */
int cli_cmd_sync(int argc, char **argv);    /* cli_sync.c */
int cli_cmd_lint(int argc, char **argv);    /* cli_lint.c */
int cli_cmd_up(int argc, char **argv);      /* cli_up.c */
int cli_cmd_top(int argc, char **argv);     /* cli_top.c */
int cli_cmd_completion(int argc, char **argv); /* cli_completion.c */
int cli_cmd_token(int argc, char **argv);      /* cli_token.c */
/* keel token create's flag checks: NULL when role/node/user are a valid
 * combination (*name then the token's name, borrowed), else the message
 * (static). */
const char *cli_token_check(const char *role, const char *node, const char *user,
                            const char **name);

/* ---- keel up (cli_up.c), pure parts ------------------------------------ */

/* Picks keel up's runtime. flag: --runtime (NULL or "" for the default),
 * socket: --docker-socket (NULL: /var/run/docker.sock, for messages),
 * docker_answers: whether GET /_ping answered on it (ignored for
 * "process"). *runtime is "docker" or "process" (static); *why (owned) a
 * sentence saying why, for the log. Errors: -EINVAL (unknown runtime),
 * -ECONNREFUSED (--runtime docker and no engine answers). */
int cli_up_runtime(const char *flag, const char *socket, bool docker_answers,
                   const char **runtime, char **why, struct kerr *err);

/* What keel up does with the user's config file (~/.config/keel/config),
 * given its text (NULL: there is none) and keel up's server URL: WRITE when
 * there is none or keel up wrote it ("writtenBy": "keel up"); SAME when it
 * is the user's own and names this server already; OTHER when it is the
 * user's and names another server (left alone: keel up never overwrites a
 * config it did not write). */
enum cli_up_config_action { CLI_UP_CONFIG_WRITE, CLI_UP_CONFIG_SAME, CLI_UP_CONFIG_OTHER };
enum cli_up_config_action cli_up_config_action(const char *existing, const char *url);

/* The deployment name of "deployment NAME" or "deployment/NAME" in
 * pos->v[first..] (borrowed from pos); prints a usage error naming cmd
 * ("scale", "rollout status") and returns NULL otherwise. (cli_scale.c) */
const char *cli_deployment_arg(const char *cmd, const struct cli_strv *pos, size_t first);

/* "90s", "2m", "1h", "500ms", or plain seconds, in ms; -1 when malformed.
 * (cli_rollout.c) */
long cli_duration_ms(const char *s);
/* What every duration flag takes, for --help (keel server's and keel
 * agent's say the same). */
#define CLI_DURATION_HELP                                                                          \
	"DURATION: a number with a unit, ms, s, m or h (500ms, 90s, 5m, 1.5h); a bare "            \
	"number is seconds"
/* Waits for the rollout of deployment ns/name as `keel rollout status`
 * does, printing a line each time its progress changes; timeout_ms 0: no
 * limit but the Deployment's progress deadline. Returns CLI_OK when
 * complete, CLI_FAIL otherwise (after printing why). (cli_rollout.c) */
int cli_rollout_wait(const char *ns, const char *name, long timeout_ms);
/* One look at the rollout of deployment ns/name: 1 complete, 0 waiting, -1
 * failed (progress deadline exceeded), -2 not read (reported); *msg
 * (owned) is what `keel rollout status` would print. (cli_rollout.c) */
int cli_rollout_poll(const char *ns, const char *name, char **msg);


/* ---- talking to the server --------------------------------------------- */

/* The client for this invocation (config resolved from cli_globals and the
 * environment), created on first use and freed at exit by cli_main.
 * Returns NULL after printing the error. */
struct client *cli_client(void);
void cli_client_cleanup(void);

/* Prints err for a failed request: "Error from server (Reason): MSG" when
 * the server answered with a Status, else "error: MSG". prefix (may be
 * NULL) goes first ("web.yaml:3:1: "). */
void cli_report(const struct kerr *err, const char *prefix);
/* True for errors after which further requests are pointless (server
 * unreachable, unauthorized). */
bool cli_error_is_fatal(const struct kerr *err);

/* Resolves a kind the user typed; on failure prints `error: the server
 * doesn't have a resource type "taks"; did you mean "tasks"?` and returns
 * NULL (exit CLI_USAGE). */
const struct api_kind *cli_kind(const char *name);

/* ---- tables ------------------------------------------------------------ */

/* Rows of cells, padded to the widest cell of their column, three spaces
 * apart; the last column is not padded. Row 0 is the header. */
struct cli_table {
	size_t ncols;
	size_t nrows;
	size_t cap;
	char **cells; /* nrows * ncols, owned */
	size_t *widths;
};
struct cli_table *cli_table_new(size_t ncols);
void cli_table_free(struct cli_table *t);
/* Appends a row of ncols cells (copied; NULL prints as "<none>"). */
void cli_table_add(struct cli_table *t, const char *const *cells);
/* Widths from every row so far, then every row into out. */
void cli_table_render(struct cli_table *t, struct sbuf *out);
/* One row with the current widths (grown to fit it): for watch output. */
void cli_table_render_row(struct cli_table *t, size_t row, struct sbuf *out);

/* Column sets per kind (cli_print.c). now is the unix time for AGE. */
/* A new table with the kind's header row (NAMESPACE first with ns_col). */
struct cli_table *cli_print_table_new(const struct api_kind *k, bool wide, bool ns_col);
/* Appends obj's row; the table must come from cli_print_table_new with the
 * same k, wide and ns_col. */
void cli_print_row(const struct api_kind *k, json_t *obj, bool wide, bool ns_col, int64_t now,
                   struct cli_table *t);
/* A Task's STATUS column: "Terminating", its reason when that names a
 * state of its own (CrashLoopBackOff, Unschedulable, NodeLost), else its
 * phase ("Pending" when it has none). Borrowed from obj. */
const char *cli_task_status(json_t *obj);
/* A Task's published ports for -o wide ("127.0.0.1:30412->8080"), or NULL. Owned. */
char *cli_task_ports(json_t *obj);
/* For people (cli_top.c): CPU "250m", "1500m", "2" (whole cores);
 * memory "512", "900Ki", "32Mi", "1.5Gi", "24Gi" (rounded; one decimal
 * below 10 of a unit). Owned. */
char *cli_fmt_cpu(int64_t millicores);
char *cli_fmt_mem(int64_t bytes);
/* "120m (6%)": v formatted (CPU always in millicores), with its share of
 * cap when cap > 0; "-" when v < 0 (unknown). Owned. */
char *cli_top_cell(int64_t v, int64_t cap, bool cpu);

/* What `keel top nodes` shows for one Node. */
struct cli_top_node {
	int64_t cap_cpu, cap_mem;   /* status.allocatable, else capacity; -1 unknown */
	int64_t used_cpu, used_mem; /* status.usage (the agent's report); -1 unknown */
	int64_t req_cpu, req_mem;   /* requests of the unfinished Tasks bound to it */
	size_t tasks;               /* how many of those */
};
/* Fills out for node (a Node object) from tasks (a JSON array of Tasks of
 * any nodes; the others are skipped). Pure. */
void cli_top_node_sum(json_t *node, json_t *tasks, struct cli_top_node *out);
/* "5m" from an RFC 3339 time; "<unknown>" when absent. Writes buf. */
const char *cli_age(json_t *timestamp, int64_t now, char *buf, size_t len);
/* "task/web". Owned. */
char *cli_obj_ref(const struct api_kind *k, json_t *obj);
/* Removes metadata.managedFields from obj, or from each of a List's items. */
void cli_strip_managed(json_t *obj);

/* ---- manifests --------------------------------------------------------- */
/* Loading, validation and ordering live in manifests/manifest.h (shared
 * with keel_sync); the CLI prints what they found. */

/* manifest_set_load of every path (check_envelope as asked), then prints
 * the diagnostics it added to stderr. Returns the number of errors. */
size_t cli_manifests_load(const struct cli_strv *paths, bool recursive, bool check_envelope,
                          struct manifest_set *m);
/* Prints m->diags[from..] to stderr, one line each (manifest_diag_format). */
void cli_print_diags(const struct manifest_set *m, size_t from);
/* manifest_set_validate / manifest_set_check_duplicates, printing what
 * they found; return the number of errors. */
size_t cli_validate_docs(struct manifest_set *m, const char *flag_ns);
size_t cli_check_duplicates(struct manifest_set *m, const char *flag_ns);
/* `keel apply --wait`: waits until every Deployment of m has rolled out and
 * every Task of m runs ready or has succeeded, printing progress; CLI_FAIL
 * when a Task failed, a rollout missed its deadline or timeout_ms passed.
 * (cli_wait.c) */
int cli_wait_applied(const struct manifest_set *m, long timeout_ms);

/* Prints "FILE:LINE:COL: " + message for path in d (the document's start
 * when path is NULL or unknown). */
void cli_doc_error(const struct manifest_doc *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints err's causes (a server's Status) one per line at their fields'
 * positions in d. */
void cli_doc_report_causes(const struct manifest_doc *d, const struct kerr *err);

/* Prints an apply set event the way `keel apply` does: "task/web created"
 * on stdout, failures at the document's FILE:LINE:COL on stderr. quiet:
 * only failures. (cli_apply.c) */
struct applyset_event;
void cli_print_applyset_event(const struct applyset_event *ev, bool quiet);

/* The apply set of -f paths: --set NAME (checked), else the default name
 * of the one path (applyset_default_name). Prints a usage error and
 * returns NULL when it cannot be chosen (several paths, stdin). Owned.
 * (cli_apply.c) */
char *cli_applyset_name(const char *flag_set, const struct cli_strv *files, int *code);

/* ---- diff -------------------------------------------------------------- */

/* Unified diff (3 lines of context) of text a (labelled la) against b (lb)
 * into out. Returns true when they differ (and out got a diff). */
bool cli_diff_text(const char *a, const char *b, const char *la, const char *lb, struct sbuf *out);
