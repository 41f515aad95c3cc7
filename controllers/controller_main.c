/*
 * controller_main — the command-line side of the runner: the controller
 * flags shared by `keel server` (taken out of its argv before the server
 * parses the rest) and `keel controller NAME`, which runs one loop out of
 * process until SIGINT/SIGTERM, talking to --server with --token (or
 * $KEEL_SERVER/$KEEL_TOKEN and the config file, as the CLI resolves them).
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"
#include "controllers/controller.h"

static int parse_duration_ms(const char *flag, const char *v, long *out, struct kerr *err)
{
	char *end = NULL;
	errno = 0;
	double x = strtod(v, &end);
	double mul = 1000;
	if (end == v || errno || x < 0)
		goto bad;
	if (streq(end, "ms"))
		mul = 1;
	else if (streq(end, "s") || !*end)
		mul = 1000;
	else if (streq(end, "m"))
		mul = 60000;
	else if (streq(end, "h"))
		mul = 3600000;
	else
		goto bad;
	if (x * mul < 1 || x * mul > 1e12)
		goto bad;
	*out = (long)(x * mul);
	return 0;
bad:
	return kerr_set(err, EINVAL, "%s: invalid duration \"%s\" (e.g. 500ms, 40s, 2m, 1h)", flag,
	                v);
}

/* Matches argv[*i] against --name[=V] / --name V; *val gets V. */
static int match_flag(int argc, char **argv, int *i, const char *name, const char **val,
                      struct kerr *err)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return kerr_set(err, EINVAL, "%s needs a value", name);
	*val = argv[++*i];
	return 1;
}

/* One flag at argv[*i]: 1 taken, 0 not ours, <0 error. */
static int take_one(int argc, char **argv, int *i, struct controller_options *o,
                    const char **list, struct kerr *err)
{
	const char *v = NULL;
	int r;
	if ((r = match_flag(argc, argv, i, "--controllers", &v, err)) != 0) {
		if (r > 0)
			*list = v;
		return r;
	}
	if ((r = match_flag(argc, argv, i, "--scheduler", &v, err)) != 0) {
		if (r > 0 && !streq(v, "epvm") && !streq(v, "round-robin"))
			return kerr_set(err, EINVAL,
			                "--scheduler: unknown \"%s\" (epvm or round-robin)", v);
		if (r > 0)
			o->scheduler = v;
		return r;
	}
	static const struct {
		const char *flag;
		size_t off;
	} durs[] = {
	    {"--node-grace-period", offsetof(struct controller_options, node_grace_period_ms)},
	    {"--node-eviction-timeout",
	     offsetof(struct controller_options, node_eviction_timeout_ms)},
	    {"--event-ttl", offsetof(struct controller_options, event_ttl_ms)},
	    {"--leader-lease", offsetof(struct controller_options, leader_lease_ms)},
	};
	for (size_t k = 0; k < ARRAY_SIZE(durs); k++) {
		if ((r = match_flag(argc, argv, i, durs[k].flag, &v, err)) != 0) {
			long *dst = (long *)((char *)o + durs[k].off);
			if (r > 0 && parse_duration_ms(durs[k].flag, v, dst, err) < 0)
				return -EINVAL;
			if (r > 0 && dst == &o->leader_lease_ms && (*dst < 1000 || *dst > 3600000))
				return kerr_set(err, EINVAL,
				                "--leader-lease: \"%s\" is out of range (1s to 1h; "
				                "leader election cannot be turned off)",
				                v);
			return r;
		}
	}
	return 0;
}

int controller_take_flags(int *argc, char **argv, struct controller_options *o,
                          const char **list, struct kerr *err)
{
	*list = "all";
	int w = 1;
	for (int i = 1; i < *argc; i++) {
		if (streq(argv[i], "--")) {
			while (i < *argc)
				argv[w++] = argv[i++];
			break;
		}
		int r = take_one(*argc, argv, &i, o, list, err);
		if (r < 0)
			return r;
		if (r == 0)
			argv[w++] = argv[i];
	}
	*argc = w;
	argv[w] = NULL;
	bool on[8];
	return controller_parse_list(*list, on, ARRAY_SIZE(on), err);
}

const char *controller_flags_usage(void)
{
	return "Controller flags:\n"
	       "  --controllers=LIST           all (default), none, or a comma-separated list of\n"
	       "                               scheduler,tasks,nodes,gc to run in this process\n"
	       "  --scheduler epvm|round-robin placement policy (default epvm)\n"
	       "  --node-grace-period D        heartbeat age after which a Node is Ready=Unknown "
	       "(40s)\n"
	       "  --node-eviction-timeout D    then its Tasks are Failed/NodeLost (60s)\n"
	       "  --event-ttl D                Events older than this are deleted (1h)\n"
	       "  --leader-lease D             each controller runs only while it holds its Lease\n"
	       "                               keel-NAME (renewed every D/3, stops after 2D/3\n"
	       "                               without a renewal; 15s; whole seconds, 1s-1h)\n";
}

static const char usage[] =
    "Usage: keel controller NAME[,NAME...]|all [--server URL[,URL...]] [--token TOKEN]\n"
    "       [--ca FILE] [flags]\n"
    "Runs controller loops (scheduler, tasks, nodes, gc) out of process, until\n"
    "SIGINT/SIGTERM. Each runs only while it leads its Lease (keel get leases), so\n"
    "several processes may run the same one: one acts, the others stand by.\n"
    "  --server URL[,URL...]  API server(s), tried in order on connection errors\n"
    "                    (default $KEEL_SERVER, the config file, " CLIENT_DEFAULT_SERVER ")\n"
    "  --token TOKEN     bearer token (default $KEEL_TOKEN or the config file)\n"
    "  --ca FILE         CA (PEM) that verifies an https server (default $KEEL_CA, \"ca\")\n"
    "  --log-level L     debug|info|warn|error (default info)\n"
    "Example:\n"
    "  keel server --controllers=none & keel controller scheduler --scheduler round-robin\n";

static int parse_main(int argc, char **argv, const char **server, const char **token,
                      const char **ca, struct kerr *err)
{
	for (int i = 2; i < argc; i++) {
		const char *v = NULL;
		int r;
		if ((r = match_flag(argc, argv, &i, "--server", &v, err)) > 0)
			*server = v;
		else if (r == 0 && (r = match_flag(argc, argv, &i, "--token", &v, err)) > 0)
			*token = v;
		else if (r == 0 && (r = match_flag(argc, argv, &i, "--ca", &v, err)) > 0)
			*ca = v;
		else if (r == 0 && (r = match_flag(argc, argv, &i, "--log-level", &v, err)) > 0) {
			int l = log_level_parse(v);
			if (l < 0)
				return kerr_set(err, EINVAL, "--log-level: unknown level \"%s\"", v);
			log_set_level((enum log_level)l);
		} else if (r == 0) {
			static const char *const known[] = {"--server",
			                                    "--token",
			                                    "--ca",
			                                    "--log-level",
			                                    "--controllers",
			                                    "--scheduler",
			                                    "--node-grace-period",
			                                    "--node-eviction-timeout",
			                                    "--event-ttl",
			                                    "--leader-lease",
			                                    "--help"};
			_cleanup_free_ char *w = xstrndup(argv[i], strcspn(argv[i], "="));
			const char *best = str_closest(w, known, ARRAY_SIZE(known));
			if (best)
				return kerr_set(err, EINVAL,
				                "unknown flag \"%s\" for \"keel controller\"; did "
				                "you mean \"%s\"?",
				                w, best);
			return kerr_set(err, EINVAL,
			                "unknown flag \"%s\" for \"keel controller\" (see --help)",
			                w);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int controller_main(int argc, char **argv)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
		printf("%s\n%s", usage, controller_flags_usage());
		return argc < 2 ? 2 : 0;
	}
	const char *name = argv[1];
	struct controller_options o = {0};
	const char *list = NULL, *server = NULL, *token = NULL, *ca = NULL;
	struct client_config cfg = {0};
	int r = controller_take_flags(&argc, argv, &o, &list, &err);
	if (r == 0)
		r = parse_main(argc, argv, &server, &token, &ca, &err);
	bool on[8];
	if (r == 0 && controller_parse_list(name, on, ARRAY_SIZE(on), &err) < 0) {
		kerr_clear(&err);
		r = kerr_set(&err, EINVAL,
		             "unknown controller \"%s\" (scheduler, tasks, nodes, gc, a "
		             "comma-separated list of them, or all)",
		             name);
	}
	if (r < 0) {
		fprintf(stderr, "keel controller: %s\n", kerr_msg(&err));
		return 2;
	}
	if (client_config_resolve(server, token, NULL, ca, &cfg, &err) < 0) {
		fprintf(stderr, "keel controller: %s\n", kerr_msg(&err));
		return 1;
	}
	o.client.server = cfg.server;
	o.client.token = cfg.token;
	o.client.ca_file = cfg.ca;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct controller_manager *m = NULL;
	if (controller_manager_start(&o, name, &m, &err) < 0) {
		fprintf(stderr, "keel controller: %s\n", kerr_msg(&err));
		client_config_clear(&cfg);
		return 1;
	}
	log_info("controller %s: talking to %s", name, cfg.server);
	int sig = 0;
	sigwait(&set, &sig);
	log_info("controller %s: received %s, stopping", name, sig == SIGINT ? "SIGINT" : "SIGTERM");
	controller_manager_stop(m);
	client_config_clear(&cfg);
	return 0;
}
