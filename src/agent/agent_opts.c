/*
 * agent_opts — the flags of `keel agent`. A table of flag names to small
 * setter functions, as `keel server` does, so that every bad value gets a
 * message naming the flag and the expected form.
 */
#include "agent/agent_opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/quantity.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/util.h"

void agent_opts_init(struct agent_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->runtime = AGENT_RT_PROCESS;
	o->heartbeat_ms = 10000;
	o->status_ms = 30000;
	o->backoff_base_ms = 10000;
	o->backoff_max_ms = 300000;
	o->backoff_reset_ms = 600000;
	o->log_listen = xstrdup("127.0.0.1:0");
	o->sim_start_delay_ms = 1000;
	o->log_level = LOG_INFO;
}

void agent_opts_free(struct agent_opts *o)
{
	free(o->server);
	free(o->token);
	free(o->config);
	free(o->ca);
	free(o->name);
	free(o->labels);
	free(o->data_dir);
	free(o->log_listen);
	free(o->docker_socket);
	memset(o, 0, sizeof(*o));
}

int agent_parse_duration_ms(const char *s, int64_t *ms, struct kerr *err)
{
	static const struct {
		const char *suffix;
		double factor;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
	char *end = NULL;
	errno = 0;
	double v = s && *s ? strtod(s, &end) : -1;
	if (errno == 0 && end && end != s && v >= 0 && v < 1e300) {
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			if (strcmp(end, units[i].suffix) != 0)
				continue;
			double r = v * units[i].factor;
			if (r > 9e15)
				break;
			*ms = (int64_t)(r + 0.5);
			return 0;
		}
	}
	return kerr_set(err, EINVAL, "invalid duration \"%s\" (examples: 10s, 200ms, 5m)",
	                s ? s : "");
}

static bool label_part_ok(const char *p, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '/'))
			return false;
	}
	return true;
}

int agent_parse_labels(const char *s, json_t *obj, struct kerr *err)
{
	const char *p = s;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		if (!eq || !label_part_ok(p, (size_t)(eq - p)) ||
		    (eq + 1 < p + n && !label_part_ok(eq + 1, (size_t)(p + n - eq - 1))))
			return kerr_set(err, EINVAL, "invalid label \"%.*s\" (want key=value)",
			                (int)n, p);
		_cleanup_free_ char *k = xstrndup(p, (size_t)(eq - p));
		json_object_set_new(obj, k, json_stringn(eq + 1, (size_t)(p + n - eq - 1)));
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

typedef int (*flag_fn)(struct agent_opts *o, const char *v, struct kerr *err);

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

static int f_server(struct agent_opts *o, const char *v, struct kerr *err)
{
	(void)err;
	return set_str(&o->server, v);
}
static int f_token(struct agent_opts *o, const char *v, struct kerr *err)
{
	(void)err;
	return set_str(&o->token, v);
}
static int f_config(struct agent_opts *o, const char *v, struct kerr *err)
{
	(void)err;
	return set_str(&o->config, v);
}
static int f_ca(struct agent_opts *o, const char *v, struct kerr *err)
{
	(void)err;
	return set_str(&o->ca, v);
}
static int f_name(struct agent_opts *o, const char *v, struct kerr *err)
{
	size_t n = strlen(v);
	bool ok = n > 0 && n <= 200;
	for (size_t i = 0; ok && i < n; i++)
		ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-' ||
		     v[i] == '.';
	if (!ok || v[0] == '-' || v[0] == '.' || v[n - 1] == '-' || v[n - 1] == '.')
		return kerr_set(err, EINVAL,
		                "invalid node name \"%s\" (lowercase letters, digits, '-' and '.')",
		                v);
	return set_str(&o->name, v);
}
static int f_runtime(struct agent_opts *o, const char *v, struct kerr *err)
{
	if (streq(v, "docker"))
		o->runtime = AGENT_RT_DOCKER;
	else if (streq(v, "process"))
		o->runtime = AGENT_RT_PROCESS;
	else if (streq(v, "sim"))
		o->runtime = AGENT_RT_SIM;
	else
		return kerr_set(err, EINVAL, "unknown runtime \"%s\" (docker, process or sim)", v);
	o->runtime_set = true;
	return 0;
}
static int f_simulate(struct agent_opts *o, const char *v, struct kerr *err)
{
	char *end = NULL;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n < 1 || n > 100000)
		return kerr_set(err, EINVAL, "invalid node count \"%s\" (1 to 100000)", v);
	o->simulate = n;
	return 0;
}
static int f_cpus(struct agent_opts *o, const char *v, struct kerr *err)
{
	int64_t m = 0;
	if (api_quantity_parse(v, &m, err) < 0 || m <= 0)
		return kerr_set(err, EINVAL, "invalid CPU quantity \"%s\" (examples: 2, 500m)", v);
	o->cpus_milli = m;
	return 0;
}
static int f_memory(struct agent_opts *o, const char *v, struct kerr *err)
{
	int64_t m = 0;
	if (api_quantity_parse(v, &m, err) < 0 || m < 1000)
		return kerr_set(err, EINVAL,
		                "invalid memory quantity \"%s\" (examples: 4Gi, 512Mi)", v);
	o->memory_bytes = (m + 999) / 1000;
	return 0;
}
static int f_labels(struct agent_opts *o, const char *v, struct kerr *err)
{
	_cleanup_json_ json_t *tmp = json_object();
	if (agent_parse_labels(v, tmp, err) < 0)
		return -EINVAL;
	return set_str(&o->labels, v);
}
static int f_data_dir(struct agent_opts *o, const char *v, struct kerr *err)
{
	if (!*v)
		return kerr_set(err, EINVAL, "empty directory");
	return set_str(&o->data_dir, v);
}
static int set_dur(int64_t *dst, const char *v, int64_t min_ms, struct kerr *err)
{
	int64_t ms = 0;
	if (agent_parse_duration_ms(v, &ms, err) < 0)
		return -EINVAL;
	if (ms < min_ms)
		return kerr_set(err, EINVAL, "duration \"%s\" is below the minimum %lldms", v,
		                (long long)min_ms);
	*dst = ms;
	return 0;
}
static int f_heartbeat(struct agent_opts *o, const char *v, struct kerr *err)
{
	return set_dur(&o->heartbeat_ms, v, 100, err);
}
static int f_status(struct agent_opts *o, const char *v, struct kerr *err)
{
	return set_dur(&o->status_ms, v, 100, err);
}
static int f_backoff_base(struct agent_opts *o, const char *v, struct kerr *err)
{
	return set_dur(&o->backoff_base_ms, v, 1, err);
}
static int f_backoff_max(struct agent_opts *o, const char *v, struct kerr *err)
{
	return set_dur(&o->backoff_max_ms, v, 1, err);
}
static int f_backoff_reset(struct agent_opts *o, const char *v, struct kerr *err)
{
	return set_dur(&o->backoff_reset_ms, v, 1, err);
}
static int f_log_listen(struct agent_opts *o, const char *v, struct kerr *err)
{
	const char *colon = strrchr(v, ':');
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || !colon[1] || *end || port < 0 || port > 65535)
		return kerr_set(err, EINVAL,
		                "invalid address \"%s\" (want HOST:PORT, e.g. 0.0.0.0:7701)", v);
	return set_str(&o->log_listen, v);
}
static int f_docker_socket(struct agent_opts *o, const char *v, struct kerr *err)
{
	(void)err;
	return set_str(&o->docker_socket, v);
}
static int f_sim_delay(struct agent_opts *o, const char *v, struct kerr *err)
{
	return set_dur(&o->sim_start_delay_ms, v, 0, err);
}
static int f_sim_fail(struct agent_opts *o, const char *v, struct kerr *err)
{
	char *end = NULL;
	double f = strtod(v, &end);
	if (!*v || *end || !(f >= 0 && f <= 1))
		return kerr_set(err, EINVAL, "invalid fraction \"%s\" (0 to 1, e.g. 0.1)", v);
	o->sim_fail_fraction = f;
	return 0;
}
static int f_log_level(struct agent_opts *o, const char *v, struct kerr *err)
{
	int l = log_level_parse(v);
	if (l < 0)
		return kerr_set(err, EINVAL, "invalid log level \"%s\" (debug, info, warn, error)",
		                v);
	o->log_level = l;
	return 0;
}

static const struct {
	const char *name;
	flag_fn fn;
} flags[] = {
    {"server", f_server},
    {"token", f_token},
    {"config", f_config},
    {"ca", f_ca},
    {"name", f_name},
    {"runtime", f_runtime},
    {"simulate", f_simulate},
    {"cpus", f_cpus},
    {"memory", f_memory},
    {"labels", f_labels},
    {"data-dir", f_data_dir},
    {"heartbeat-interval", f_heartbeat},
    {"status-interval", f_status},
    {"backoff-base", f_backoff_base},
    {"backoff-max", f_backoff_max},
    {"backoff-reset", f_backoff_reset},
    {"log-listen", f_log_listen},
    {"docker-socket", f_docker_socket},
    {"sim-start-delay", f_sim_delay},
    {"sim-fail-fraction", f_sim_fail},
    {"log-level", f_log_level},
};

const char *agent_opts_usage(void)
{
	return "Usage: keel agent [flags]\n"
	       "\n"
	       "Runs a node agent: registers its Node, renews its lease, watches the Tasks bound "
	       "to\n"
	       "it and runs them with its runtime, restarting them per restartPolicy.\n"
	       "\n"
	       "Flags (DUR: a number with a unit, ms, s, m or h: 500ms, 90s, 5m, 1.5h; a bare "
	       "number is seconds):\n"
	       "  --server URL[,URL...]      API server(s) (default $KEEL_SERVER, the config "
	       "file, or\n"
	       "                             http://127.0.0.1:7700); with several, requests fail "
	       "over\n"
	       "                             to the next on connection errors\n"
	       "  --token TOKEN              bearer token (default $KEEL_TOKEN or the config "
	       "file)\n"
	       "  --config FILE              client config file (default $KEEL_CONFIG, ...)\n"
	       "  --ca FILE                  CA certificate (PEM) that verifies an https server\n"
	       "                             (default $KEEL_CA, the config file's \"ca\", or "
	       "the system's)\n"
	       "  --name NODE                node name (default: the lowercased host name)\n"
	       "  --runtime R                docker, process or sim (default process)\n"
	       "  --simulate N               with --runtime sim: N nodes NAME-0000, NAME-0001, "
	       "...\n"
	       "  --cpus N                   CPU capacity per node (default: online CPUs; e.g. 4, "
	       "500m)\n"
	       "  --memory SIZE              memory capacity per node (default: MemTotal; e.g. "
	       "8Gi)\n"
	       "  --labels k=v,...           Node labels\n"
	       "  --data-dir DIR             agent state (default DATA/agent of the keel data "
	       "dir)\n"
	       "  --heartbeat-interval DUR   lease renewal period (default 10s)\n"
	       "  --status-interval DUR      how often usage may be rewritten (default 30s)\n"
	       "  --backoff-base DUR         first restart delay (default 10s)\n"
	       "  --backoff-max DUR          restart delay cap (default 5m)\n"
	       "  --backoff-reset DUR        clean running time that resets the backoff (default "
	       "10m)\n"
	       "  --log-listen HOST:PORT     log server address (default 127.0.0.1:0, a free "
	       "port)\n"
	       "  --docker-socket PATH       Docker socket (default /var/run/docker.sock)\n"
	       "  --sim-start-delay DUR      sim: Created -> Running delay (default 1s)\n"
	       "  --sim-fail-fraction F      sim: fraction of tasks that exit 1 (default 0)\n"
	       "  --log-level LEVEL          debug, info, warn or error (default info)\n"
	       "  --insecure-listen          allow a --log-listen address off loopback (the log\n"
	       "                             server speaks plain HTTP)\n"
	       "  --stop-tasks-on-exit       on SIGINT/SIGTERM stop and remove this node's tasks\n"
	       "                             (default: they keep running and the next agent\n"
	       "                             adopts them)\n"
	       "  --help                     show this help\n"
	       "\n"
	       "Examples:\n"
	       "  keel agent --runtime process --name n1 --data-dir /tmp/agent\n"
	       "  keel agent --runtime sim --simulate 1000 --name sim --cpus 4 --memory 8Gi\n";
}

static int apply_flag(struct agent_opts *o, const char *name, size_t nlen, const char *value,
                      struct kerr *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		if (strlen(flags[i].name) != nlen || strncmp(flags[i].name, name, nlen) != 0)
			continue;
		if (!value)
			return kerr_set(err, EINVAL, "flag --%s needs a value", flags[i].name);
		if (flags[i].fn(o, value, err) < 0)
			return kerr_prefix(err, "--%s", flags[i].name);
		return 0;
	}
	const char *names[ARRAY_SIZE(flags) + 1];
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		names[i] = flags[i].name;
	names[ARRAY_SIZE(flags)] = "help";
	_cleanup_free_ char *word = xstrndup(name, nlen);
	return kerr_unknown_flag(err, "keel agent", word, names, ARRAY_SIZE(names));
}

int agent_opts_parse(struct agent_opts *o, int argc, char **argv, struct kerr *err)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (streq(a, "--help") || streq(a, "-h")) {
			o->help = true;
			continue;
		}
		if (!strstartswith(a, "--") || !a[2])
			return kerr_set(err, EINVAL,
			                "unexpected argument \"%s\" (see keel agent --help)", a);
		const char *name = a + 2;
		if (streq(name, "stop-tasks-on-exit") || streq(name, "stop-tasks-on-exit=true")) {
			o->stop_tasks_on_exit = true;
			continue;
		}
		if (streq(name, "stop-tasks-on-exit=false")) {
			o->stop_tasks_on_exit = false;
			continue;
		}
		if (streq(name, "insecure-listen") || streq(name, "insecure-listen=true") ||
		    streq(name, "insecure-listen=false")) {
			o->insecure_listen = !streq(name, "insecure-listen=false");
			continue;
		}
		const char *eq = strchr(name, '=');
		const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		if (apply_flag(o, name, nlen, value, err) < 0)
			return -EINVAL;
		if (!eq)
			i++;
	}
	if (o->simulate && o->runtime != AGENT_RT_SIM)
		return kerr_set(err, EINVAL, "--simulate needs --runtime sim");
	/* the log server is plain HTTP: loopback only, as the API server's */
	_cleanup_free_ char *host =
	    xstrndup(o->log_listen, (size_t)(strrchr(o->log_listen, ':') - o->log_listen));
	if (!o->insecure_listen && !host_is_loopback(*host ? host : "0.0.0.0"))
		return kerr_set(err, EINVAL,
		                "--log-listen %s is not a loopback address, and the log server "
		                "speaks plain HTTP (task output, the node's log key in the clear): "
		                "give --insecure-listen to serve it there anyway",
		                o->log_listen);
	if (o->backoff_max_ms < o->backoff_base_ms)
		return kerr_set(err, EINVAL,
		                "--backoff-max (%lldms) is below --backoff-base (%lldms)",
		                (long long)o->backoff_max_ms, (long long)o->backoff_base_ms);
	return 0;
}
