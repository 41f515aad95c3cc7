/*
 * cli_args: the flag parser. kubectl accepts flags before and after
 * positionals, `--flag value` and `--flag=value`, `-n value` and `-nvalue`,
 * and global flags after the command; so does this. getopt_long would
 * permute argv and print its own messages; ours must say which command a
 * flag is unknown to and which flag was probably meant.
 */
#include "cli/cli_internal.h"

#include <errno.h>
#include <stdlib.h>

#include "common/kerr.h"
#include "common/util.h"

struct cli_globals cli_globals;

static const struct cli_opt global_opts[] = {
    {"server", 0, CLI_OPT_STRING, &cli_globals.server, "URL[,URL...]",
     "API server URL, or several that fail over (env KEEL_SERVER; default " CLIENT_DEFAULT_SERVER
     ")"},
    {"token", 0, CLI_OPT_STRING, &cli_globals.token, "TOKEN", "bearer token (env KEEL_TOKEN)"},
    {"config", 0, CLI_OPT_STRING, &cli_globals.config, "FILE",
     "config file {\"server\" or \"servers\",\"token\",\"ca\"} (env KEEL_CONFIG)"},
    {"ca", 0, CLI_OPT_STRING, &cli_globals.ca, "FILE",
     "CA certificate (PEM) that verifies an https server (env KEEL_CA)"},
    {"log-level", 0, CLI_OPT_STRING, &cli_globals.log_level, "LEVEL", "debug|info|warn|error"},
};

size_t cli_global_opts(const struct cli_opt **out)
{
	*out = global_opts;
	return ARRAY_SIZE(global_opts);
}

void cli_strv_push(struct cli_strv *sv, const char *s)
{
	sv->v = xrealloc(sv->v, (sv->n + 1) * sizeof(*sv->v));
	sv->v[sv->n++] = s;
}

void cli_strv_free(struct cli_strv *sv)
{
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

struct parser {
	const char *cmd;
	const struct cli_opt *opts;
	size_t n_opts;
	struct kerr *err;
};

static const struct cli_opt *find_long(const struct parser *p, const char *name, size_t len)
{
	const struct cli_opt *g;
	size_t ng = cli_global_opts(&g);
	for (size_t i = 0; i < p->n_opts + ng; i++) {
		const struct cli_opt *o = i < p->n_opts ? &p->opts[i] : &g[i - p->n_opts];
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	}
	return NULL;
}

static const struct cli_opt *find_short(const struct parser *p, char c)
{
	for (size_t i = 0; i < p->n_opts; i++)
		if (p->opts[i].short_name == c)
			return &p->opts[i];
	return NULL;
}

static int unknown_flag(const struct parser *p, const char *word, size_t len)
{
	const struct cli_opt *g;
	size_t ng = cli_global_opts(&g);
	size_t n = p->n_opts + ng + 1;
	char **names = xcalloc(n, sizeof(*names));
	for (size_t i = 0; i < p->n_opts + ng; i++)
		names[i] =
		    xasprintf("--%s", i < p->n_opts ? p->opts[i].name : g[i - p->n_opts].name);
	names[n - 1] = xstrdup("--help");
	_cleanup_free_ char *w = xstrndup(word, len);
	const char *best = str_closest(w, (const char *const *)names, n);
	int r = best ? kerr_set(p->err, EINVAL,
	                        "unknown flag \"%s\" for \"keel %s\"; did you mean \"%s\"?", w,
	                        p->cmd, best)
	             : kerr_set(p->err, EINVAL, "unknown flag \"%s\" for \"keel %s\"", w, p->cmd);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int set_bool(const struct parser *p, const struct cli_opt *o, const char *v)
{
	bool *b = o->dest;
	if (!v || streq(v, "true") || streq(v, "1")) {
		*b = true;
	} else if (streq(v, "false") || streq(v, "0")) {
		*b = false;
	} else if (streq(o->name, "dry-run") && (streq(v, "server") || streq(v, "all"))) {
		*b = true; /* kubectl's spelling; keel's dry runs are always the server's */
	} else if (streq(o->name, "dry-run") && streq(v, "none")) {
		*b = false;
	} else {
		return kerr_set(p->err, EINVAL,
		                "flag --%s for \"keel %s\" takes true or false, not \"%s\"",
		                o->name, p->cmd, v);
	}
	return 0;
}

static int set_value(const struct parser *p, const struct cli_opt *o, const char *v)
{
	switch (o->type) {
	case CLI_OPT_BOOL:
		return set_bool(p, o, v);
	case CLI_OPT_STRING:
		*(const char **)o->dest = v;
		return 0;
	case CLI_OPT_LIST:
		cli_strv_push(o->dest, v);
		return 0;
	case CLI_OPT_INT: {
		char *end = NULL;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (!*v || *end || errno || n < 0)
			return kerr_set(
			    p->err, EINVAL,
			    "flag --%s for \"keel %s\" takes a non-negative integer, not \"%s\"",
			    o->name, p->cmd, v);
		*(long *)o->dest = n;
		return 0;
	}
	}
	return kerr_set(p->err, EINVAL, "flag --%s: bad type", o->name);
}

/* --name, --name=value, --name value. Returns words consumed or <0. */
static int parse_long(const struct parser *p, char **argv, int i, int argc, bool *help)
{
	const char *word = argv[i] + 2;
	const char *eq = strchr(word, '=');
	size_t len = eq ? (size_t)(eq - word) : strlen(word);
	if (len == 4 && strncmp(word, "help", 4) == 0) {
		*help = true;
		return 1;
	}
	const struct cli_opt *o = find_long(p, word, len);
	if (!o)
		return unknown_flag(p, argv[i], len + 2);
	if (o->type == CLI_OPT_BOOL) {
		int r = set_bool(p, o, eq ? eq + 1 : NULL);
		return r < 0 ? r : 1;
	}
	if (eq) {
		int r = set_value(p, o, eq + 1);
		return r < 0 ? r : 1;
	}
	if (i + 1 >= argc)
		return kerr_set(p->err, EINVAL, "flag --%s for \"keel %s\" needs a value (%s)",
		                o->name, p->cmd, o->arg ? o->arg : "VALUE");
	int r = set_value(p, o, argv[i + 1]);
	return r < 0 ? r : 2;
}

/* -x, -x value, -xvalue; bools may be grouped (-AR). */
static int parse_short(const struct parser *p, char **argv, int i, int argc, bool *help)
{
	const char *word = argv[i] + 1;
	for (size_t k = 0; word[k]; k++) {
		if (word[k] == 'h') {
			*help = true;
			continue;
		}
		const struct cli_opt *o = find_short(p, word[k]);
		if (!o) {
			char flag[3] = {'-', word[k], 0};
			return unknown_flag(p, flag, 2);
		}
		if (o->type == CLI_OPT_BOOL) {
			*(bool *)o->dest = true;
			continue;
		}
		if (word[k + 1]) {
			int r = set_value(p, o, word + k + 1);
			return r < 0 ? r : 1;
		}
		if (i + 1 >= argc)
			return kerr_set(p->err, EINVAL,
			                "flag -%c for \"keel %s\" needs a value (%s)", word[k],
			                p->cmd, o->arg ? o->arg : "VALUE");
		int r = set_value(p, o, argv[i + 1]);
		return r < 0 ? r : 2;
	}
	return 1;
}

int cli_args_parse(const char *cmd, const struct cli_opt *opts, size_t n_opts, int argc,
                   char **argv, struct cli_strv *pos, bool *help, struct kerr *err)
{
	struct parser p = {cmd, opts, n_opts, err};
	*help = false;
	for (int i = 0; i < argc;) {
		const char *a = argv[i];
		int used;
		if (streq(a, "--")) {
			for (i++; i < argc; i++)
				cli_strv_push(pos, argv[i]);
			break;
		}
		if (strstartswith(a, "--"))
			used = parse_long(&p, argv, i, argc, help);
		else if (a[0] == '-' && a[1])
			used = parse_short(&p, argv, i, argc, help);
		else {
			cli_strv_push(pos, a);
			used = 1;
		}
		if (used < 0)
			return used;
		i += used;
	}
	return 0;
}
