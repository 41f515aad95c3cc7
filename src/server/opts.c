/*
 * server/opts — `keel server` flags.
 *
 * A table of flags drives parsing, so every flag has one place for its
 * name, its value parser and its line in --help. Values are checked here,
 * not where they are used, so a typo ("--bookmark-interval 1x") fails at
 * startup with the flag's name rather than later with a vague error.
 */
#include "server/opts.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kerr.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"

void srv_opts_init(struct srv_opts *o)
{
	*o = (struct srv_opts){
	    .data_dir = NULL,
	    .listen_host = xstrdup("127.0.0.1"),
	    .listen_port = 7700,
	    .threads = 4,
	    .max_watchers = 10000,
	    .max_watchers_per_client = 2000,
	    .max_connections = 0,
	    .max_body = (size_t)3 << 20,
	    .max_object = (size_t)3 << 19,
	    .max_header_bytes = (size_t)64 << 10,
	    .request_timeout_ms = 30000,
	    .idle_timeout_ms = 300000,
	    .bookmark_ms = 15000,
	    .store_max_bytes = (size_t)8 << 30,
	    .history = 100000,
	    .store_backend = SRV_STORE_LMDB,
	    .etcd_prefix = xstrdup("/keel/"),
	    .etcd_wait_ms = 10000,
	    .log_level = LOG_INFO,
	};
}

void srv_opts_free(struct srv_opts *o)
{
	free(o->data_dir);
	free(o->listen_host);
	free(o->token_file);
	free(o->tls_cert);
	free(o->tls_key);
	free(o->tls_cert_pem);
	if (o->tls_key_pem)
		explicit_bzero(o->tls_key_pem, strlen(o->tls_key_pem));
	free(o->tls_key_pem);
	free(o->tls_ca_file);
	free(o->tls_why);
	free(o->etcd_endpoints);
	free(o->etcd_prefix);
	o->tls_why = o->etcd_endpoints = o->etcd_prefix = NULL;
	o->data_dir = o->listen_host = o->token_file = NULL;
	o->tls_cert = o->tls_key = o->tls_cert_pem = o->tls_key_pem = o->tls_ca_file = NULL;
}

char *srv_default_data_dir(void)
{
	const char *d = getenv("KEEL_DATA_DIR");
	if (d && *d)
		return xstrdup(d);
	if (geteuid() == 0)
		return xstrdup("/var/lib/keel");
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && *xdg)
		return xasprintf("%s/keel", xdg);
	const char *home = getenv("HOME");
	return xasprintf("%s/.local/share/keel", home && *home ? home : ".");
}

/* Parses a non-negative decimal with an optional fraction; *end after it. */
static int parse_number(const char *s, double *v, const char **end)
{
	if (!s || !(*s >= '0' && *s <= '9'))
		return -1;
	char *e = NULL;
	errno = 0;
	*v = strtod(s, &e);
	if (errno || e == s || !isfinite(*v))
		return -1;
	*end = e;
	return 0;
}

int srv_parse_duration_ms(const char *s, int64_t *ms, struct kerr *err)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	double v;
	const char *end;
	if (parse_number(s, &v, &end) == 0)
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (streq(end, units[i].unit) && v * units[i].ms < 9.2e15) {
				*ms = (int64_t)llround(v * units[i].ms);
				return 0;
			}
	return kerr_set(err, EINVAL, "invalid duration \"%s\" (examples: 15s, 500ms, 2m)",
	                s ? s : "");
}

int srv_parse_size(const char *s, size_t *bytes, struct kerr *err)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {{"", 1},     {"K", 1e3},
	             {"k", 1e3},  {"Ki", 1024.0},
	             {"M", 1e6},  {"Mi", 1048576.0},
	             {"G", 1e9},  {"Gi", 1073741824.0},
	             {"T", 1e12}, {"Ti", 1099511627776.0}};
	double v;
	const char *end;
	if (parse_number(s, &v, &end) == 0)
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (streq(end, units[i].suffix)) {
				double b = v * units[i].mult;
				if (b >= 1.8e19)
					return kerr_set(err, ERANGE, "size \"%s\" is too large", s);
				*bytes = (size_t)b;
				return 0;
			}
	return kerr_set(err, EINVAL, "invalid size \"%s\" (examples: 64Mi, 8Gi, 1048576)",
	                s ? s : "");
}

int srv_parse_listen(const char *s, char **host, unsigned *port, struct kerr *err)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	if (!colon)
		return kerr_set(
		    err, EINVAL,
		    "invalid listen address \"%s\" (want HOST:PORT, e.g. 127.0.0.1:7700)",
		    s ? s : "");
	char *h = xstrndup(s, (size_t)(colon - s));
	size_t hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		memmove(h, h + 1, hl - 2);
		h[hl - 2] = '\0';
	}
	char *e = NULL;
	errno = 0;
	long p = strtol(colon + 1, &e, 10);
	if (!colon[1] || *e || errno || p < 0 || p > 65535 || strchr(h, '[') || strchr(h, ']')) {
		free(h);
		return kerr_set(err, EINVAL,
		                "invalid listen address \"%s\" (want HOST:PORT, port 0-65535)", s);
	}
	if (!*h) {
		free(h);
		h = xstrdup("127.0.0.1");
	}
	*host = h;
	*port = (unsigned)p;
	return 0;
}

/* One etcd endpoint's HOST (a DNS name, IPv4 or [IPv6]) — what curl will
 * be given, so no user info, path or spaces. */
static bool endpoint_host_ok(const char *h, size_t n)
{
	if (n >= 2 && h[0] == '[') {
		if (h[n - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < n; i++)
			if (!strchr("0123456789abcdefABCDEF:.", h[i]))
				return false;
		return n > 2;
	}
	for (size_t i = 0; i < n; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		      (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '.' || h[i] == '_'))
			return false;
	return n > 0;
}

/* Checks one entry; *norm (owned) is it without a final '/'. */
static int parse_endpoint(const char *e, size_t n, char **norm, struct kerr *err)
{
	_cleanup_free_ char *v = xstrndup(e, n);
	size_t len = strlen(v);
	if (len > 0 && v[len - 1] == '/')
		v[--len] = '\0';
	if (strstartswith(v, "https://"))
		return kerr_set(err, ENOTSUP,
		                "https is not supported yet (no client TLS to etcd): use http://");
	if (!strstartswith(v, "http://"))
		return kerr_set(err, EINVAL, "want http://HOST:PORT");
	const char *hp = v + strlen("http://");
	const char *colon = strrchr(hp, ':');
	if (colon && hp[0] == '[' && strrchr(hp, ']') > colon)
		colon = NULL; /* [v6] without a port */
	if (!colon)
		return kerr_set(err, EINVAL, "no port (want http://HOST:PORT)");
	if (!endpoint_host_ok(hp, (size_t)(colon - hp)))
		return kerr_set(err, EINVAL, "bad host (want http://HOST:PORT, no path)");
	char *end = NULL;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || colon[1] == '-' || colon[1] == '+' || port < 1 ||
	    port > 65535)
		return kerr_set(err, EINVAL, "bad port (want 1-65535, no path)");
	*norm = TAKE_PTR(v);
	return 0;
}

int srv_parse_etcd_endpoints(const char *s, char **out, struct kerr *err)
{
	if (!s || !*s)
		return kerr_set(err, EINVAL, "no endpoint (want http://HOST:PORT[,...])");
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	int idx = 1;
	for (const char *p = s;; idx++) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		_cleanup_free_ char *entry = xstrndup(p, n);
		_cleanup_free_ char *norm = NULL;
		if (n == 0)
			return kerr_set(err, EINVAL,
			                "entry %d is empty (want http://HOST:PORT[,...])", idx);
		if (parse_endpoint(p, n, &norm, err) < 0) {
			kerr_prefix(err, "entry %d \"%s\"", idx, entry);
			return -EINVAL;
		}
		sbuf_printf(&b, "%s%s", b.len ? "," : "", norm);
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = sbuf_take(&b);
	return 0;
}

char *srv_format_size(size_t b)
{
	static const char *const sfx[] = {"Ki", "Mi", "Gi", "Ti"};
	int i = -1;
	while (i < 3 && b >= 1024 && b % 1024 == 0) {
		b /= 1024;
		i++;
	}
	return i < 0 ? xasprintf("%zu", b) : xasprintf("%zu%s", b, sfx[i]);
}

char *srv_format_duration(int64_t ms)
{
	if (ms % 1000 == 0)
		return xasprintf("%llds", (long long)(ms / 1000));
	return xasprintf("%lldms", (long long)ms);
}

typedef int (*flag_fn)(struct srv_opts *o, const char *v, struct kerr *err);

static int f_data_dir(struct srv_opts *o, const char *v, struct kerr *err)
{
	if (!*v)
		return kerr_set(err, EINVAL, "empty data directory");
	free(o->data_dir);
	o->data_dir = xstrdup(v);
	return 0;
}

static int f_listen(struct srv_opts *o, const char *v, struct kerr *err)
{
	char *h = NULL;
	if (srv_parse_listen(v, &h, &o->listen_port, err) < 0)
		return -EINVAL;
	free(o->listen_host);
	o->listen_host = h;
	return 0;
}

static int f_token_file(struct srv_opts *o, const char *v, struct kerr *err)
{
	if (!*v)
		return kerr_set(err, EINVAL, "empty token file name");
	free(o->token_file);
	o->token_file = xstrdup(v);
	return 0;
}

static int f_tls_cert(struct srv_opts *o, const char *v, struct kerr *err)
{
	if (!*v)
		return kerr_set(err, EINVAL, "empty certificate file name");
	free(o->tls_cert);
	o->tls_cert = xstrdup(v);
	return 0;
}

static int f_tls_key(struct srv_opts *o, const char *v, struct kerr *err)
{
	if (!*v)
		return kerr_set(err, EINVAL, "empty key file name");
	free(o->tls_key);
	o->tls_key = xstrdup(v);
	return 0;
}

static int parse_count(const char *v, uint64_t min, uint64_t max, uint64_t *out, struct kerr *err)
{
	char *e = NULL;
	errno = 0;
	unsigned long long x = strtoull(v, &e, 10);
	if (!*v || *e || errno || *v == '-' || x < min || x > max)
		return kerr_set(err, EINVAL, "invalid number \"%s\" (want %llu..%llu)", v,
		                (unsigned long long)min, (unsigned long long)max);
	*out = x;
	return 0;
}

static int f_threads(struct srv_opts *o, const char *v, struct kerr *err)
{
	uint64_t x;
	if (parse_count(v, 1, 256, &x, err) < 0)
		return -EINVAL;
	o->threads = (unsigned)x;
	return 0;
}

static int f_max_watchers(struct srv_opts *o, const char *v, struct kerr *err)
{
	uint64_t x;
	if (parse_count(v, 1, 1000000, &x, err) < 0) /* 0 would refuse every watch */
		return -EINVAL;
	o->max_watchers = (size_t)x;
	return 0;
}

static int f_max_watchers_per_client(struct srv_opts *o, const char *v, struct kerr *err)
{
	uint64_t x;
	if (parse_count(v, 1, 1000000, &x, err) < 0)
		return -EINVAL;
	o->max_watchers_per_client = (size_t)x;
	return 0;
}

static int f_max_connections(struct srv_opts *o, const char *v, struct kerr *err)
{
	uint64_t x;
	if (parse_count(v, 1, 1000000, &x, err) < 0)
		return -EINVAL;
	o->max_connections = (size_t)x;
	return 0;
}

/* A size flag's value, min..max bytes. */
static int size_in(const char *v, size_t min, size_t max, size_t *out, struct kerr *err)
{
	size_t b;
	if (srv_parse_size(v, &b, err) < 0)
		return -EINVAL;
	if (b < min || b > max)
		return kerr_set(err, EINVAL, "size \"%s\" is out of range (%zu to %zu bytes)", v,
		                min, max);
	*out = b;
	return 0;
}

static int f_max_body(struct srv_opts *o, const char *v, struct kerr *err)
{
	return size_in(v, 1024, (size_t)1 << 30, &o->max_body, err);
}

static int f_max_object(struct srv_opts *o, const char *v, struct kerr *err)
{
	return size_in(v, 1024, (size_t)1 << 30, &o->max_object, err);
}

static int f_max_header_bytes(struct srv_opts *o, const char *v, struct kerr *err)
{
	return size_in(v, 1024, (size_t)16 << 20, &o->max_header_bytes, err);
}

/* A duration flag's value, at least min_ms. */
static int duration_min(const char *v, int64_t min_ms, int64_t *out, struct kerr *err)
{
	int64_t ms;
	if (srv_parse_duration_ms(v, &ms, err) < 0)
		return -EINVAL;
	if (ms < min_ms)
		return kerr_set(err, EINVAL, "duration \"%s\" is too short (at least %lldms)", v,
		                (long long)min_ms);
	*out = ms;
	return 0;
}

static int f_request_timeout(struct srv_opts *o, const char *v, struct kerr *err)
{
	return duration_min(v, 100, &o->request_timeout_ms, err);
}

static int f_idle_timeout(struct srv_opts *o, const char *v, struct kerr *err)
{
	int rc = duration_min(v, 1000, &o->idle_timeout_ms, err);
	if (rc == 0 && o->idle_timeout_ms % 1000)
		return kerr_set(err, EINVAL, "duration \"%s\" must be whole seconds", v);
	return rc;
}

static int f_bookmark(struct srv_opts *o, const char *v, struct kerr *err)
{
	int64_t ms;
	if (srv_parse_duration_ms(v, &ms, err) < 0)
		return -EINVAL;
	if (ms < 10)
		return kerr_set(err, EINVAL,
		                "bookmark interval \"%s\" is too short (at least 10ms)", v);
	o->bookmark_ms = ms;
	return 0;
}

static int f_store_size(struct srv_opts *o, const char *v, struct kerr *err)
{
	size_t b;
	if (srv_parse_size(v, &b, err) < 0)
		return -EINVAL;
	if (b < (size_t)256 << 10)
		return kerr_set(err, EINVAL, "store size \"%s\" is too small (at least 256Ki)", v);
	o->store_max_bytes = b;
	return 0;
}

static int f_history(struct srv_opts *o, const char *v, struct kerr *err)
{
	return parse_count(v, 1, UINT64_MAX / 2, &o->history, err);
}

static int f_store(struct srv_opts *o, const char *v, struct kerr *err)
{
	if (streq(v, "lmdb"))
		o->store_backend = SRV_STORE_LMDB;
	else if (streq(v, "etcd"))
		o->store_backend = SRV_STORE_ETCD;
	else
		return kerr_set(err, EINVAL, "invalid store \"%s\" (lmdb or etcd)", v);
	return 0;
}

static int f_etcd_endpoints(struct srv_opts *o, const char *v, struct kerr *err)
{
	char *eps = NULL;
	if (srv_parse_etcd_endpoints(v, &eps, err) < 0)
		return -EINVAL;
	free(o->etcd_endpoints);
	o->etcd_endpoints = eps;
	return 0;
}

static int f_etcd_prefix(struct srv_opts *o, const char *v, struct kerr *err)
{
	if (v[0] != '/')
		return kerr_set(err, EINVAL, "prefix \"%s\" must start with / (e.g. /keel/)", v);
	for (const char *c = v; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return kerr_set(err, EINVAL,
			                "prefix \"%s\" has a space or control character", v);
	free(o->etcd_prefix);
	size_t n = strlen(v);
	o->etcd_prefix = v[n - 1] == '/' ? xstrdup(v) : xasprintf("%s/", v);
	return 0;
}

static int f_etcd_wait(struct srv_opts *o, const char *v, struct kerr *err)
{
	return duration_min(v, 0, &o->etcd_wait_ms, err);
}

static int f_log_level(struct srv_opts *o, const char *v, struct kerr *err)
{
	int l = log_level_parse(v);
	if (l < 0)
		return kerr_set(err, EINVAL,
		                "invalid log level \"%s\" (debug, info, warn or error)", v);
	o->log_level = l;
	return 0;
}

static int f_log_format(struct srv_opts *o, const char *v, struct kerr *err)
{
	if (streq(v, "json"))
		o->log_json = true;
	else if (streq(v, "text"))
		o->log_json = false;
	else
		return kerr_set(err, EINVAL, "invalid log format \"%s\" (text or json)", v);
	return 0;
}

static const struct {
	const char *name;
	flag_fn fn;
} flags[] = {
    {"data-dir", f_data_dir},
    {"listen", f_listen},
    {"token-file", f_token_file},
    {"threads", f_threads},
    {"max-watchers", f_max_watchers},
    {"bookmark-interval", f_bookmark},
    {"store-size", f_store_size},
    {"history", f_history},
    {"log-level", f_log_level},
    {"log-format", f_log_format},
    {"tls-cert", f_tls_cert},
    {"tls-key", f_tls_key},
    /* the flag's first name, kept as an alias; --help lists --store-size only */
    {"store-max-bytes", f_store_size},
    {"max-watchers-per-client", f_max_watchers_per_client},
    {"max-connections", f_max_connections},
    {"max-body", f_max_body},
    {"max-object", f_max_object},
    {"max-header-bytes", f_max_header_bytes},
    {"request-timeout", f_request_timeout},
    {"idle-timeout", f_idle_timeout},
    {"store", f_store},
    {"etcd-endpoints", f_etcd_endpoints},
    {"etcd-prefix", f_etcd_prefix},
    {"etcd-wait", f_etcd_wait},
};

/* Flags without a value. */
static const struct {
	const char *name;
	size_t off;
} bool_flags[] = {
    {"tls", offsetof(struct srv_opts, tls_self_signed)},
    {"insecure-listen", offsetof(struct srv_opts, insecure_listen)},
};

const char *srv_opts_usage(void)
{
	return "Usage: keel server [flags]\n"
	       "\n"
	       "Runs the keel API server (HTTP + JSON) over the LMDB store in the data directory,\n"
	       "or over an etcd cluster (--store etcd), which several servers can share.\n"
	       "\n"
	       "Flags (DUR: a number with a unit, ms, s, m or h: 500ms, 90s, 5m, 1.5h; a bare "
	       "number is seconds):\n"
	       "  --data-dir DIR             data directory (default $KEEL_DATA_DIR, /var/lib/keel "
	       "as root,\n"
	       "                             else $XDG_DATA_HOME/keel or ~/.local/share/keel)\n"
	       "  --listen HOST:PORT         address to listen on (default 127.0.0.1:7700; port 0 "
	       "picks a free one)\n"
	       "  --token-file FILE          bearer tokens, lines TOKEN,NAME[,ROLE] (default: "
	       "DATA/admin.token);\n"
	       "                             ROLE: admin, viewer or node; default admin (warned "
	       "at start)\n"
	       "  --threads N                HTTP worker threads (default 4)\n"
	       "  --max-watchers N           concurrent watch streams (default 10000)\n"
	       "  --max-watchers-per-client N  watch streams per client, i.e. per token user "
	       "name (default 2000)\n"
	       "  --max-connections N        open HTTP connections; past it a new one gets 503 "
	       "and is closed\n"
	       "                             (default --max-watchers + 1024)\n"
	       "  --max-body SIZE            request body (default 3Mi)\n"
	       "  --max-object SIZE          stored object, serialised (default 1536Ki)\n"
	       "  --max-header-bytes SIZE    request line and headers (default 64Ki)\n"
	       "  --request-timeout DUR      time to receive a connection's first request\n"
	       "                             (default 30s; streams are not cut)\n"
	       "  --idle-timeout DUR         close a kept-alive connection this long without a\n"
	       "                             completed request (default 300s)\n"
	       "  --bookmark-interval DUR    BOOKMARK period on idle watches (default 15s; e.g. "
	       "1s, 500ms)\n"
	       "  --store-size SIZE          LMDB map size, the store's quota (default 8Gi; e.g. "
	       "64Mi);\n"
	       "                             a full store answers 507; restart with a larger "
	       "size\n"
	       "                             (--store-max-bytes is an alias)\n"
	       "  --history N                change-log revisions kept for watches (default "
	       "100000)\n"
	       "  --store BACKEND            lmdb (default: in the data directory) or etcd\n"
	       "  --etcd-endpoints URLS      with --store etcd (required): etcd client URLs,\n"
	       "                             http://HOST:PORT[,http://HOST:PORT...]\n"
	       "  --etcd-prefix P            key prefix in etcd (default /keel/); servers that "
	       "share it\n"
	       "                             share one cluster state\n"
	       "  --etcd-wait DUR            at start, wait this long for an endpoint to answer,\n"
	       "                             then refuse to start (default 10s)\n"
	       "  --log-level LEVEL          debug, info, warn or error (default info)\n"
	       "  --log-format FORMAT        text or json (default text)\n"
	       "  --tls-cert FILE            serve HTTPS with this PEM certificate (and its "
	       "chain)\n"
	       "  --tls-key FILE             ... and this PEM private key (unencrypted)\n"
	       "  --tls                      serve HTTPS with a self-signed certificate made in "
	       "DATA/tls/\n"
	       "                             (clients trust it with --ca DATA/tls/ca.crt)\n"
	       "  --insecure-listen          allow plain HTTP on a --listen address that is not "
	       "loopback\n"
	       "  --help                     show this help\n"
	       "\n"
	       "Example:\n"
	       "  keel server --data-dir /tmp/keel --listen 127.0.0.1:7700\n"
	       "  KEEL_CONFIG=/tmp/keel/config keel get tasks\n";
}

static int apply_flag(struct srv_opts *o, const char *name, size_t nlen, const char *value,
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
	const char *names[ARRAY_SIZE(flags) + ARRAY_SIZE(bool_flags) + 1];
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		names[i] = flags[i].name;
	for (size_t i = 0; i < ARRAY_SIZE(bool_flags); i++)
		names[ARRAY_SIZE(flags) + i] = bool_flags[i].name;
	names[ARRAY_SIZE(names) - 1] = "help";
	_cleanup_free_ char *word = xstrndup(name, nlen);
	return kerr_unknown_flag(err, "keel server", word, names, ARRAY_SIZE(names));
}

/* --tls, --tls=true|false: 1 when name is a bool flag, 0 when not. */
static int apply_bool_flag(struct srv_opts *o, const char *name, size_t nlen, const char *value,
                           struct kerr *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(bool_flags); i++) {
		if (strlen(bool_flags[i].name) != nlen ||
		    strncmp(bool_flags[i].name, name, nlen) != 0)
			continue;
		bool *dest = (bool *)((char *)o + bool_flags[i].off);
		if (!value || streq(value, "true"))
			*dest = true;
		else if (streq(value, "false"))
			*dest = false;
		else
			return kerr_set(err, EINVAL, "flag --%s takes true or false, not \"%s\"",
			                bool_flags[i].name, value);
		return 1;
	}
	return 0;
}

static bool given(char **argv, int argc, const char *flag)
{
	size_t n = strlen(flag);
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], flag, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '='))
			return true;
	return false;
}

/* Flags that only mean something together: said at start, not ignored. */
static int check_store_flags(const struct srv_opts *o, char **argv, int argc, struct kerr *err)
{
	if (o->store_backend == SRV_STORE_ETCD && !o->etcd_endpoints)
		return kerr_set(err, EINVAL,
		                "--store etcd needs --etcd-endpoints http://HOST:PORT[,...]");
	static const char *const etcd_only[] = {"--etcd-endpoints", "--etcd-prefix", "--etcd-wait"};
	for (size_t i = 0; o->store_backend == SRV_STORE_LMDB && i < ARRAY_SIZE(etcd_only); i++)
		if (given(argv, argc, etcd_only[i]))
			return kerr_set(err, EINVAL, "%s needs --store etcd (the store is lmdb)",
			                etcd_only[i]);
	return 0;
}

int srv_opts_parse(struct srv_opts *o, int argc, char **argv, struct kerr *err)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (streq(a, "--help") || streq(a, "-h")) {
			o->help = true;
			continue;
		}
		if (!strstartswith(a, "--") || !a[2])
			return kerr_set(err, EINVAL,
			                "unexpected argument \"%s\" (see keel server --help)", a);
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		int b = apply_bool_flag(o, name, nlen, eq ? eq + 1 : NULL, err);
		if (b < 0)
			return -EINVAL;
		if (b > 0)
			continue;
		if (apply_flag(o, name, nlen, value, err) < 0)
			return -EINVAL;
		if (!eq)
			i++;
	}
	return check_store_flags(o, argv, argc, err);
}
