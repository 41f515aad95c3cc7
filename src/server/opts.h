/*
 * server/opts — `keel server` flags, and the duration and size parsers they
 * use. Pure (no I/O besides reading the environment for the default data
 * directory), thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kerr;

/* --store: where objects live. */
enum srv_store_backend {
	SRV_STORE_LMDB, /* the LMDB store in the data directory (default) */
	SRV_STORE_ETCD, /* an etcd 3.4 cluster through its v3 JSON gateway */
};

struct srv_opts {
	char *data_dir;         /* owned; --data-dir, default srv_default_data_dir() */
	char *listen_host;      /* owned; from --listen HOST:PORT, default 127.0.0.1 */
	unsigned listen_port;   /* default 7700; 0 = any free port */
	char *token_file;       /* owned or NULL; --token-file */
	unsigned threads;       /* --threads, MHD thread pool size, default 4 */
	size_t max_watchers;    /* --max-watchers, default 10000 */
	size_t max_watchers_per_client; /* --max-watchers-per-client (per token
	                                   user name), default 2000 */
	size_t max_connections;         /* --max-connections; 0 = max_watchers + 1024 */
	size_t max_body;                /* --max-body, default 3Mi */
	size_t max_object;              /* --max-object, default 1.5Mi (1536Ki) */
	size_t max_header_bytes;        /* --max-header-bytes, default 64Ki */
	int64_t request_timeout_ms;     /* --request-timeout, default 30s */
	int64_t idle_timeout_ms;        /* --idle-timeout, default 300s */
	int64_t bookmark_ms;    /* --bookmark-interval, default 15s */
	size_t store_max_bytes; /* --store-size (alias --store-max-bytes), default 8Gi */
	uint64_t history;       /* --history, default 100000 */
	int store_backend;      /* enum srv_store_backend; --store lmdb|etcd, default lmdb */
	char *etcd_endpoints;   /* owned or NULL; --etcd-endpoints, checked: each entry
	                           http://HOST:PORT, joined by commas */
	char *etcd_prefix;      /* owned; --etcd-prefix, default "/keel/"; starts and
	                           ends with '/' (a missing final '/' is added) */
	int64_t etcd_wait_ms;   /* --etcd-wait: how long start waits for an endpoint
	                           to answer, default 10s */
	int log_level;          /* enum log_level; --log-level, default info */
	bool log_json;          /* --log-format json */
	bool help;              /* --help was given */
	/* HTTPS (server/tls.h) */
	char *tls_cert;       /* owned or NULL; --tls-cert FILE (PEM) */
	char *tls_key;        /* owned or NULL; --tls-key FILE (PEM) */
	bool tls_self_signed; /* --tls: the self-signed pair in DATA/tls/ */
	bool insecure_listen; /* --insecure-listen: plain HTTP off loopback */
	/* filled by srv_tls_prepare */
	bool tls_prepared;
	char *tls_cert_pem; /* owned; NULL: plain HTTP */
	char *tls_key_pem;  /* owned */
	char *tls_ca_file;  /* owned; absolute path of the certificate the
	                       server's own clients trust (DATA/config "ca") */
	int tls_made;       /* with --tls: enum srv_tls_made */
	char *tls_why;      /* owned or NULL; with --tls: why it was renewed */
};

/* Fills defaults. */
void srv_opts_init(struct srv_opts *o);
void srv_opts_free(struct srv_opts *o);

/* Parses argv[1..argc) ("--flag value" or "--flag=value"); argv[0] is
 * "server". Returns 0, or -EINVAL with a one-line message naming the flag
 * (unknown flag, missing or bad value, flags that do not go together:
 * --store etcd without --etcd-endpoints, --etcd-* with --store lmdb). Files
 * are not read here: see srv_tls_prepare. */
int srv_opts_parse(struct srv_opts *o, int argc, char **argv, struct kerr *err);

/* The --help text (static). */
const char *srv_opts_usage(void);

/* "$KEEL_DATA_DIR", else /var/lib/keel for root, else
 * "$XDG_DATA_HOME/keel" (default ~/.local/share/keel). Owned. */
char *srv_default_data_dir(void);

/* "15s", "500ms", "2m", "1h", "1.5s"; a bare number is seconds.
 * Returns 0 and *ms, or -EINVAL. */
int srv_parse_duration_ms(const char *s, int64_t *ms, struct kerr *err);
/* "64Mi", "8Gi", "1G", "4096", "1.5Gi"; suffixes K/Ki M/Mi G/Gi T/Ti (k too).
 * Returns 0 and *bytes, or -EINVAL / -ERANGE. */
int srv_parse_size(const char *s, size_t *bytes, struct kerr *err);
/* "HOST:PORT", "[v6]:PORT", ":PORT" (host 127.0.0.1). *host owned. */
int srv_parse_listen(const char *s, char **host, unsigned *port, struct kerr *err);
/* "http://H:P,http://H2:P2" (etcd client URLs): every entry http://HOST:PORT
 * with HOST a name, an IPv4 address or [IPv6], PORT 1-65535, nothing after
 * (a final '/' is dropped). *out owned: the entries re-joined by commas.
 * -EINVAL naming the entry (and its position) that is wrong. */
int srv_parse_etcd_endpoints(const char *s, char **out, struct kerr *err);

/* A flag value as a user would write it, for messages: sizes as "3Mi",
 * "1536Ki" or plain bytes; durations as "30s" or "1500ms". Owned. */
char *srv_format_size(size_t bytes);
char *srv_format_duration(int64_t ms);
