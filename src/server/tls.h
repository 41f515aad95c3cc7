/*
 * server/tls — HTTPS for the API server: checking the certificate and key
 * an operator gives (--tls-cert/--tls-key), making and keeping the
 * self-signed one of `keel up --tls` / `keel server --tls` in DATA/tls/,
 * and the rule that plain HTTP is served on loopback only.
 *
 * GnuTLS's x509 API does the work (libmicrohttpd serves TLS with GnuTLS
 * too, so what passes here is what MHD will accept). Everything here is
 * thread-safe; nothing prints.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct kerr;
struct srv_opts;

/* The self-signed pair in a data directory: DATA/tls/ca.crt (the server's
 * certificate, which is its own CA: clients trust it with --ca
 * DATA/tls/ca.crt) and DATA/tls/ca.key (mode 0600). */
#define SRV_TLS_DIR       "tls"
#define SRV_TLS_CERT_FILE "ca.crt"
#define SRV_TLS_KEY_FILE  "ca.key"
#define SRV_TLS_DAYS      365
/* A self-signed certificate this close to its end is made again. */
#define SRV_TLS_RENEW_S (7 * 86400)

/* Makes an ECDSA P-256 key and a self-signed certificate for it, valid
 * from now (less a minute, for clock skew) for `days` days, with the
 * subjectAltNames IP 127.0.0.1, IP ::1, DNS localhost, DNS hostname
 * (when hostname is a valid DNS name other than localhost; may be NULL)
 * and listen_host (an IP or DNS SAN; may be NULL; left out when it is a
 * wildcard such as 0.0.0.0 or already one of the others),
 * CA:TRUE, key usage digitalSignature + keyCertSign, extended key usage
 * serverAuth. *cert_pem and *key_pem (PKCS#8, unencrypted) are owned by
 * the caller. Returns 0, or -EIO naming what GnuTLS refused; outputs
 * untouched on failure. */
int srv_tls_generate(const char *hostname, const char *listen_host, int days, char **cert_pem,
                     char **key_pem, struct kerr *err);

/* Checks a PEM certificate (the first of the file is the server's; any
 * others are its chain) and a PEM private key: both parse, the key is the
 * certificate's, and the certificate is valid at `now` (unix seconds).
 * cert_name and key_name name them in messages ("--tls-cert server.crt").
 * *not_after (may be NULL) gets the certificate's expiry.
 * Errors (-EINVAL): "CERT_NAME: not a PEM certificate ...", "KEY_NAME:
 * not a PEM private key ...", "KEY_NAME does not match the certificate in
 * CERT_NAME ...", "CERT_NAME: the certificate expired on DATE" / "is not
 * valid before DATE". */
int srv_tls_check_pair(const char *cert_pem, const char *key_pem, const char *cert_name,
                       const char *key_name, int64_t now, int64_t *not_after, struct kerr *err);

/* Does the certificate name host (a DNS name, or an IPv4/IPv6 address
 * matched against its IP subjectAltNames)? *names (may be NULL) gets its
 * subjectAltNames as "DNS:a, IP:1.2.3.4" (owned). */
bool srv_tls_cert_names_host(const char *cert_pem, const char *host, char **names);

/* What srv_tls_self_signed did. */
enum srv_tls_made {
	SRV_TLS_REUSED,  /* a valid pair was there */
	SRV_TLS_CREATED, /* there was none */
	SRV_TLS_RENEWED, /* the one there was expired, near its end, or broken */
};

/* Makes sure data_dir/tls/ holds a valid self-signed pair, making one
 * (srv_tls_generate, for this host's name and listen_host) when there is
 * none or the one there is expired, within SRV_TLS_RENEW_S of its end, not
 * a matching pair, or does not name listen_host (a --listen on another
 * address than before). The key is written first, then the certificate, each atomically
 * (temp file, fsync, rename), the key with mode 0600; a pair left
 * mismatched by a crash in between is made again next time. *cert_file and
 * *key_file get their paths (owned); *made (may be NULL) what happened and
 * *why (may be NULL; owned, NULL when reused) the reason for a renewal.
 * Errors: -errno naming the file that cannot be created or written. */
int srv_tls_self_signed(const char *data_dir, const char *listen_host, char **cert_file,
                        char **key_file, enum srv_tls_made *made, char **why, struct kerr *err);

/* Makes o ready for server_start's listener, before anything listens;
 * server_main calls it itself so that a mistake here is a usage error
 * (exit 2), and server_start calls it when its caller did not:
 *   - the data directory defaults (srv_default_data_dir);
 *   - --tls-cert and --tls-key come together, and not with --tls;
 *   - --tls: srv_tls_self_signed in the data directory;
 *   - the cert and key files are read and checked (srv_tls_check_pair),
 *     their PEM kept in o for MHD, and the certificate must name the host
 *     the server's URL will use (127.0.0.1 for 0.0.0.0, ::1 for ::), since
 *     the in-process controllers and DATA/config's clients verify it;
 *   - without TLS, a --listen host that is not loopback is refused unless
 *     o->insecure_listen.
 * Idempotent (o->tls_prepared). Returns 0 or -errno with a message that
 * names the flag or file and says how to fix it. */
int srv_tls_prepare(struct srv_opts *o, struct kerr *err);

/* After srv_tls_prepare with --tls: one line saying what was done with the
 * self-signed pair ("made the self-signed certificate DIR/tls/ca.crt ...",
 * "serving ...", "made a new ... (why)") and how clients trust it; NULL
 * without --tls. *warn is set when the line is a warning: a new pair
 * replaced one that clients may hold as their CA (the listen host
 * changed, the old one neared its end or did not match its key), so
 * those clients fail to verify the server until they take the new
 * ca.crt. Owned. */
char *srv_tls_describe(const struct srv_opts *o, bool *warn);
