/*
 * cli_sync: `keel sync DIR`, the GitOps loop of src/sync/sync.h run in the
 * foreground: flags, signals and log lines; the loop itself is the
 * library's, so that `keel up -f DIR` can run the same one in-process.
 * Its lines go to stderr through the common log (one line per event,
 * "TIME LEVEL message", or JSON with --log-format json). SIGINT and
 * SIGTERM end the loop after the pass in progress, exit 0.
 */
#include "cli/cli_internal.h"

#include <errno.h>
#include <math.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>

#include "common/kerr.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "server/opts.h"
#include "sync/applyset.h"
#include "sync/sync.h"

struct sync_flags {
	const char *interval;
	const char *debounce;
	bool once;
	const char *set;
	const char *field_manager;
	bool allow_empty;
	bool overwrite_set;
	const char *log_format;
	const char *metrics_listen;
};

static volatile sig_atomic_t stop_requested;

/* ---- --metrics-listen: the sync's counters as Prometheus text ---------- */

static enum MHD_Result metrics_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	bool ok = streq(method, "GET") && streq(url, "/metrics");
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	if (ok)
		sync_metrics_render(cls, &b);
	else
		sbuf_printf(&b, "only GET /metrics here\n");
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    b.len, b.data ? b.data : (char *)"", MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	enum MHD_Result res = MHD_queue_response(conn, ok ? 200 : 404, r);
	MHD_destroy_response(r);
	return res;
}

/* Serves GET /metrics on HOST:PORT (port 0: a free one, printed). */
static struct MHD_Daemon *metrics_start(const char *listen, struct sync *s)
{
	_cleanup_free_ char *host = NULL;
	unsigned port = 0;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (srv_parse_listen(listen, &host, &port, &err) < 0) {
		fprintf(stderr, "error: --metrics-listen: %s\n", kerr_msg(&err));
		return NULL;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "error: --metrics-listen: \"%s\" is not an IPv4 address\n", host);
		return NULL;
	}
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, metrics_answer, s,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "error: --metrics-listen %s: cannot listen there\n", listen);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	log_info("sync metrics on http://%s:%u/metrics", host, info ? info->port : port);
	return d;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* "60s", "200ms", "1m", "1h", "1.5s", or a number of seconds. (The
 * server's and the agent's parsers take the same forms; neither is in a
 * library the CLI links.) */
static int parse_duration_ms(const char *flag, const char *s, int64_t min_ms, int64_t *out)
{
	static const struct {
		const char *suffix;
		double factor;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
	char *end = NULL;
	errno = 0;
	double v = s && *s ? strtod(s, &end) : -1;
	if (errno == 0 && end && end != s && v >= 0 && isfinite(v))
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			if (strcmp(end, units[i].suffix) != 0)
				continue;
			double ms = v * units[i].factor;
			if (ms > 9e15)
				break;
			*out = (int64_t)(ms + 0.5);
			if (*out < min_ms) {
				fprintf(stderr, "error: --%s %s is below the minimum of %lldms\n",
				        flag, s, (long long)min_ms);
				return -EINVAL;
			}
			return 0;
		}
	fprintf(stderr, "error: --%s: invalid duration \"%s\" (examples: 60s, 200ms, 5m)\n", flag,
	        s ? s : "");
	return -EINVAL;
}

static void log_line(void *ud, enum log_level level, const char *line)
{
	(void)ud;
	log_msg(level, "%s", line);
}

static void install_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wake poll() */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int run_sync(const struct sync_flags *f, const struct cli_strv *pos)
{
	if (pos->n != 1) {
		fprintf(stderr,
		        "error: usage: keel sync DIR [--interval 60s] [--once] [--set NAME]\n");
		return CLI_USAGE;
	}
	struct sync_opts o = {.dir = pos->v[0],
	                      .set = f->set,
	                      .field_manager = f->field_manager,
	                      .interval_ms = 60000,
	                      .debounce_ms = 200,
	                      .allow_empty = f->allow_empty,
	                      .overwrite_set = f->overwrite_set,
	                      .log = log_line};
	if ((f->interval && parse_duration_ms("interval", f->interval, 100, &o.interval_ms) < 0) ||
	    (f->debounce && parse_duration_ms("debounce", f->debounce, 0, &o.debounce_ms) < 0))
		return CLI_USAGE;
	if (f->log_format && !streq(f->log_format, "text") && !streq(f->log_format, "json")) {
		fprintf(stderr, "error: --log-format must be text or json, not \"%s\"\n",
		        f->log_format);
		return CLI_USAGE;
	}
	log_set_json(streq(f->log_format, "json"));
	if (!f->once)
		install_signals(); /* before anything slow: a stop now ends the loop cleanly */
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (f->set && applyset_name_check(f->set, &err) < 0) {
		fprintf(stderr, "error: --set: %s\n", kerr_msg(&err));
		return CLI_USAGE;
	}
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	struct sync *s = NULL;
	if (sync_new(c, &o, &s, &err) < 0) {
		fprintf(stderr, "error: %s\n", kerr_msg(&err));
		return CLI_FAIL;
	}
	struct MHD_Daemon *md = NULL;
	if (f->metrics_listen && !(md = metrics_start(f->metrics_listen, s))) {
		sync_free(s);
		return CLI_FAIL;
	}
	int code = CLI_OK;
	if (f->once)
		code = sync_pass(s, SYNC_TRIGGER_START, NULL) ? CLI_FAIL : CLI_OK;
	else
		sync_run(s, (const volatile int *)&stop_requested);
	if (md)
		MHD_stop_daemon(md);
	sync_free(s);
	return code;
}

int cli_cmd_sync(int argc, char **argv)
{
	struct sync_flags f = {0};
	const struct cli_opt opts[] = {
	    {"interval", 0, CLI_OPT_STRING, &f.interval, "DURATION",
	     "full re-apply (drift correction) every DURATION (default 60s)"},
	    {"once", 0, CLI_OPT_BOOL, &f.once, NULL,
	     "one pass, then exit: 0 if it had no error, else 1"},
	    {"set", 0, CLI_OPT_STRING, &f.set, "NAME",
	     "apply set name (label " APPLYSET_LABEL "; default: from DIR's path)"},
	    {"debounce", 0, CLI_OPT_STRING, &f.debounce, "DURATION",
	     "quiet time that ends a burst of file changes (default 200ms)"},
	    {"field-manager", 0, CLI_OPT_STRING, &f.field_manager, "NAME",
	     "field manager name (default " CLIENT_DEFAULT_FIELD_MANAGER ", as keel apply)"},
	    {"allow-empty", 0, CLI_OPT_BOOL, &f.allow_empty, NULL,
	     "let a directory with no objects prune the whole apply set"},
	    {"overwrite-set", 0, CLI_OPT_BOOL, &f.overwrite_set, NULL,
	     "move objects that belong to another apply set into this one (best with --once)"},
	    {"log-format", 0, CLI_OPT_STRING, &f.log_format, "FORMAT", "text|json (default text)"},
	    {"metrics-listen", 0, CLI_OPT_STRING, &f.metrics_listen, "HOST:PORT",
	     "serve the sync's counters at http://HOST:PORT/metrics (Prometheus text)"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("sync", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_sync(&f, &pos);
	cli_strv_free(&pos);
	return code;
}
