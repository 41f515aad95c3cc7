/*
 * server/tls — the API server's certificates, and plain HTTP on loopback
 * only (see tls.h for the contract).
 *
 * Why check what MHD will check anyway: MHD_start_daemon with a key that
 * does not fit its certificate just fails, with a GnuTLS line in the log
 * and no file name. Doing the parse and the key match here, before the
 * socket listens, lets the error say which file is wrong and what to do.
 *
 * Why the certificate must name the URL's host: the server's own clients
 * (the in-process controllers, keel up's agent, and every CLI that reads
 * DATA/config) reach it at that URL and verify its certificate as any
 * client does; a certificate that names only "keel.example.com" on a
 * server listening on 0.0.0.0 would start fine and then fail every one of
 * them. Trusting the server's own certificate file as their CA works for a
 * self-signed one and for one a CA signed (libcurl lets a trusted leaf end
 * the chain).
 *
 * The self-signed pair is ECDSA P-256 (small and fast; every TLS client of
 * the last decade speaks it), its own CA, for a year; a crash between the
 * key's and the certificate's rename leaves a mismatched pair, which the
 * next start detects and makes again.
 */
#include "server/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "server/opts.h"

#define TLS_FILE_MAX (1 << 20)

static void crt_freep(gnutls_x509_crt_t *c)
{
	if (*c)
		gnutls_x509_crt_deinit(*c);
}
static void key_freep(gnutls_x509_privkey_t *k)
{
	if (*k)
		gnutls_x509_privkey_deinit(*k);
}
#define _cleanup_crt_ __attribute__((cleanup(crt_freep)))
#define _cleanup_key_ __attribute__((cleanup(key_freep)))

static char *datum_take(gnutls_datum_t *d)
{
	char *s = xstrndup((const char *)d->data, d->size);
	gnutls_free(d->data);
	d->data = NULL;
	return s;
}

/* ---- generating ---------------------------------------------------------- */

static bool dns_name_ok(const char *h)
{
	if (!h || !*h || strlen(h) > 253 || streq(h, "localhost"))
		return false;
	for (const char *p = h; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return false;
	return true;
}

/* A listen host worth its own SAN: not a wildcard, not one of the fixed
 * names. */
static bool extra_host_ok(const char *h)
{
	return h && *h && !streq(h, "0.0.0.0") && !streq(h, "::") && !streq(h, "127.0.0.1") &&
	       !streq(h, "::1") && !streq(h, "localhost");
}

static int add_san_host(gnutls_x509_crt_t crt, const char *h)
{
	unsigned char ip[16];
	if (inet_pton(AF_INET, h, ip) == 1)
		return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
		                                            GNUTLS_FSAN_APPEND);
	if (inet_pton(AF_INET6, h, ip) == 1)
		return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
		                                            GNUTLS_FSAN_APPEND);
	if (!dns_name_ok(h))
		return 0;
	return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, h, (unsigned)strlen(h),
	                                            GNUTLS_FSAN_APPEND);
}

static int add_sans(gnutls_x509_crt_t crt, const char *hostname, const char *listen_host)
{
	unsigned char v4[4], v6[16];
	inet_pton(AF_INET, "127.0.0.1", v4);
	inet_pton(AF_INET6, "::1", v6);
	int r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, v4, sizeof v4,
	                                             GNUTLS_FSAN_APPEND);
	if (r >= 0)
		r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, v6, sizeof v6,
		                                         GNUTLS_FSAN_APPEND);
	if (r >= 0)
		r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
		                                         GNUTLS_FSAN_APPEND);
	if (r >= 0 && dns_name_ok(hostname))
		r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, hostname,
		                                         (unsigned)strlen(hostname),
		                                         GNUTLS_FSAN_APPEND);
	if (r >= 0 && extra_host_ok(listen_host) &&
	    !(hostname && strcasecmp(listen_host, hostname) == 0))
		r = add_san_host(crt, listen_host);
	return r;
}

static int fill_cert(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *hostname,
                     const char *listen_host, int days)
{
	unsigned char serial[16];
	if (getrandom(serial, sizeof serial, 0) != (ssize_t)sizeof serial)
		return GNUTLS_E_RANDOM_FAILED;
	serial[0] &= 0x7f; /* a positive INTEGER */
	serial[0] |= 0x01; /* and no leading zero octet */
	time_t now = time(NULL);
	_cleanup_free_ char *cn =
	    xasprintf("keel self-signed %s", dns_name_ok(hostname) ? hostname : "localhost");
	unsigned char kid[64];
	size_t kid_len = sizeof kid;
	int r;
	if ((r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (r = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(crt, now - 60)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400)) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "keel",
	                                       4)) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
	                                       (unsigned)strlen(cn))) < 0 ||
	    (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 1, 0)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
	                                                GNUTLS_KEY_KEY_CERT_SIGN)) < 0 ||
	    (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (r = add_sans(crt, hostname, listen_host)) < 0 ||
	    (r = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, kid, &kid_len)) < 0 ||
	    (r = gnutls_x509_crt_set_subject_key_id(crt, kid, kid_len)) < 0)
		return r;
	return gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
}

int srv_tls_generate(const char *hostname, const char *listen_host, int days, char **cert_pem,
                     char **key_pem, struct kerr *err)
{
	_cleanup_key_ gnutls_x509_privkey_t key = NULL;
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t c = {0}, k = {0};
	int r;
	const char *step = "cannot make a key";
	if ((r = gnutls_x509_privkey_init(&key)) < 0 ||
	    (r = gnutls_x509_privkey_generate2(key, GNUTLS_PK_ECDSA,
	                                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0,
	                                       NULL, 0)) < 0)
		return kerr_set(err, EIO, "%s: %s", step, gnutls_strerror(r));
	step = "cannot make a certificate";
	if ((r = gnutls_x509_crt_init(&crt)) < 0 ||
	    (r = fill_cert(crt, key, hostname, listen_host, days)) < 0 ||
	    (r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c)) < 0)
		return kerr_set(err, EIO, "%s: %s", step, gnutls_strerror(r));
	r = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
	                                      &k);
	if (r < 0) {
		gnutls_free(c.data);
		return kerr_set(err, EIO, "cannot export the key: %s", gnutls_strerror(r));
	}
	*cert_pem = datum_take(&c);
	*key_pem = datum_take(&k);
	return 0;
}

/* ---- checking ------------------------------------------------------------ */

static int import_cert(const char *pem, const char *name, gnutls_x509_crt_t *out, struct kerr *err)
{
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
	gnutls_x509_crt_t crt = NULL;
	int r = gnutls_x509_crt_init(&crt);
	if (r >= 0)
		r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		if (crt)
			gnutls_x509_crt_deinit(crt);
		return kerr_set(err, EINVAL,
		                "%s: not a PEM certificate (want a \"-----BEGIN CERTIFICATE-----\" "
		                "block): %s",
		                name, gnutls_strerror(r));
	}
	*out = crt;
	return 0;
}

static int import_key(const char *pem, const char *name, gnutls_x509_privkey_t *out,
                      struct kerr *err)
{
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
	gnutls_x509_privkey_t key = NULL;
	int r = gnutls_x509_privkey_init(&key);
	if (r >= 0)
		r = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL,
		                                GNUTLS_PKCS_PLAIN);
	if (r < 0) {
		if (key)
			gnutls_x509_privkey_deinit(key);
		return kerr_set(
		    err, EINVAL,
		    "%s: not an unencrypted PEM private key (want a \"-----BEGIN "
		    "PRIVATE KEY-----\" block; a key with a passphrase cannot be read): %s",
		    name, gnutls_strerror(r));
	}
	*out = key;
	return 0;
}

int srv_tls_check_pair(const char *cert_pem, const char *key_pem, const char *cert_name,
                       const char *key_name, int64_t now, int64_t *not_after, struct kerr *err)
{
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	_cleanup_key_ gnutls_x509_privkey_t key = NULL;
	if (import_cert(cert_pem, cert_name, &crt, err) < 0 ||
	    import_key(key_pem, key_name, &key, err) < 0)
		return -EINVAL;
	unsigned char a[64], b[64];
	size_t al = sizeof a, bl = sizeof b;
	if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a, &al) < 0 ||
	    gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &bl) < 0 || al != bl ||
	    memcmp(a, b, al) != 0)
		return kerr_set(err, EINVAL,
		                "%s does not match the certificate in %s (the key of another "
		                "certificate?)",
		                key_name, cert_name);
	int64_t from = gnutls_x509_crt_get_activation_time(crt);
	int64_t until = gnutls_x509_crt_get_expiration_time(crt);
	char ts[32];
	if (until != -1 && until < now)
		return kerr_set(err, EINVAL, "%s: the certificate expired on %s", cert_name,
		                time_rfc3339(ts, sizeof ts, until));
	if (from != -1 && from > now + 300)
		return kerr_set(err, EINVAL, "%s: the certificate is not valid before %s",
		                cert_name, time_rfc3339(ts, sizeof ts, from));
	if (not_after)
		*not_after = until;
	return 0;
}

static void append_sans(gnutls_x509_crt_t crt, struct sbuf *out)
{
	for (unsigned i = 0;; i++) {
		char buf[1024];
		size_t len = sizeof buf - 1;
		int t = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len, NULL);
		if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (t < 0)
			continue;
		char ip[INET6_ADDRSTRLEN] = "";
		if (t == GNUTLS_SAN_IPADDRESS && (len == 4 || len == 16))
			inet_ntop(len == 4 ? AF_INET : AF_INET6, buf, ip, sizeof ip);
		buf[len] = '\0';
		if (t != GNUTLS_SAN_DNSNAME && !*ip)
			continue;
		sbuf_printf(out, "%s%s:%s", out->len ? ", " : "", *ip ? "IP" : "DNS",
		            *ip ? ip : buf);
	}
}

bool srv_tls_cert_names_host(const char *cert_pem, const char *host, char **names)
{
	_cleanup_crt_ gnutls_x509_crt_t crt = NULL;
	if (import_cert(cert_pem, "certificate", &crt, NULL) < 0)
		return false;
	if (names) {
		_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
		append_sans(crt, &b);
		sbuf_puts(&b, "");
		*names = sbuf_take(&b);
	}
	unsigned char ip[16];
	if (inet_pton(AF_INET, host, ip) == 1)
		return gnutls_x509_crt_check_ip(crt, ip, 4, 0) != 0;
	if (inet_pton(AF_INET6, host, ip) == 1)
		return gnutls_x509_crt_check_ip(crt, ip, 16, 0) != 0;
	return gnutls_x509_crt_check_hostname(crt, host) != 0;
}

/* ---- the self-signed pair in DATA/tls ------------------------------------ */

/* path and its missing parents, mode 0700. */
static int mkdir_0700(const char *path, struct kerr *err)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return kerr_set(err, errno, "cannot create %s: %s", p, strerror(errno));
		*s = c;
		if (!c)
			return 0;
	}
}

/* NULL when the pair in the files is good for a while yet, else why not. */
static char *pair_problem(const char *cert_file, const char *key_file, const char *listen_host)
{
	_cleanup_free_ char *c = NULL, *k = NULL;
	_cleanup_kerr_ struct kerr e = KERR_INIT;
	if (file_read_all(cert_file, TLS_FILE_MAX, &c, NULL, &e) < 0 ||
	    file_read_all(key_file, TLS_FILE_MAX, &k, NULL, &e) < 0)
		return xstrdup(kerr_msg(&e));
	int64_t until = 0, now = time_now_unix();
	if (srv_tls_check_pair(c, k, cert_file, key_file, now, &until, &e) < 0)
		return xstrdup(kerr_msg(&e));
	char ts[32];
	if (until != -1 && until < now + SRV_TLS_RENEW_S)
		return xasprintf("%s: the certificate expires on %s", cert_file,
		                 time_rfc3339(ts, sizeof ts, until));
	if (extra_host_ok(listen_host) && !srv_tls_cert_names_host(c, listen_host, NULL))
		return xasprintf("%s: the certificate does not name %s", cert_file, listen_host);
	return NULL;
}

int srv_tls_self_signed(const char *data_dir, const char *listen_host, char **cert_file,
                        char **key_file, enum srv_tls_made *made, char **why, struct kerr *err)
{
	_cleanup_free_ char *dir = xasprintf("%s/" SRV_TLS_DIR, data_dir);
	_cleanup_free_ char *cf = xasprintf("%s/" SRV_TLS_CERT_FILE, dir);
	_cleanup_free_ char *kf = xasprintf("%s/" SRV_TLS_KEY_FILE, dir);
	struct stat st;
	bool exists = stat(cf, &st) == 0 || stat(kf, &st) == 0;
	_cleanup_free_ char *problem = exists ? pair_problem(cf, kf, listen_host) : NULL;
	if (!exists || problem) {
		char host[256] = "";
		gethostname(host, sizeof host - 1);
		for (char *p = host; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		_cleanup_free_ char *cpem = NULL, *kpem = NULL;
		if (mkdir_0700(dir, err) < 0 ||
		    srv_tls_generate(host, listen_host, SRV_TLS_DAYS, &cpem, &kpem, err) < 0)
			return -err->code;
		if (file_write_atomic(kf, kpem, strlen(kpem), 0600, err) < 0 ||
		    file_write_atomic(cf, cpem, strlen(cpem), 0644, err) < 0)
			return kerr_prefix(err, "cannot write the self-signed certificate");
		explicit_bzero(kpem, strlen(kpem));
	}
	if (made)
		*made = !exists ? SRV_TLS_CREATED : problem ? SRV_TLS_RENEWED : SRV_TLS_REUSED;
	if (why)
		*why = TAKE_PTR(problem);
	*cert_file = TAKE_PTR(cf);
	*key_file = TAKE_PTR(kf);
	return 0;
}

/* ---- srv_tls_prepare ----------------------------------------------------- */

/* The host in the server's URL (server.c's make_url agrees). */
static const char *url_host(const char *listen_host)
{
	if (!*listen_host || streq(listen_host, "0.0.0.0"))
		return "127.0.0.1";
	if (streq(listen_host, "::"))
		return "::1";
	return listen_host;
}

static int read_named(const char *path, const char *flag, char **out, struct kerr *err)
{
	if (file_read_all(path, TLS_FILE_MAX, out, NULL, err) < 0)
		return kerr_prefix(err, "%s", flag);
	return 0;
}

static int check_flags(const struct srv_opts *o, struct kerr *err)
{
	if (o->tls_self_signed && (o->tls_cert || o->tls_key))
		return kerr_set(err, EINVAL,
		                "--tls makes its own certificate: give either --tls or "
		                "--tls-cert and --tls-key, not both");
	if (o->tls_cert && !o->tls_key)
		return kerr_set(
		    err, EINVAL,
		    "--tls-cert %s needs --tls-key FILE (the certificate's private key)",
		    o->tls_cert);
	if (o->tls_key && !o->tls_cert)
		return kerr_set(err, EINVAL, "--tls-key %s needs --tls-cert FILE (its certificate)",
		                o->tls_key);
	if (!o->tls_cert && !o->tls_self_signed && !o->insecure_listen &&
	    !host_is_loopback(o->listen_host))
		return kerr_set(
		    err, EINVAL,
		    "--listen %s:%u is not a loopback address, and plain HTTP there would send "
		    "tokens in the clear: serve HTTPS with --tls-cert FILE --tls-key FILE (or "
		    "--tls "
		    "for a self-signed certificate), or give --insecure-listen to serve plain HTTP "
		    "anyway",
		    o->listen_host, o->listen_port);
	return 0;
}

static int load_pair(struct srv_opts *o, struct kerr *err)
{
	_cleanup_free_ char *cflag = xasprintf("--tls-cert %s", o->tls_cert);
	_cleanup_free_ char *kflag = xasprintf("--tls-key %s", o->tls_key);
	_cleanup_free_ char *c = NULL, *k = NULL, *names = NULL;
	/* file_read_all's message names the file */
	if (read_named(o->tls_cert, "--tls-cert", &c, err) < 0 ||
	    read_named(o->tls_key, "--tls-key", &k, err) < 0)
		return -err->code;
	if (srv_tls_check_pair(c, k, cflag, kflag, time_now_unix(), NULL, err) < 0)
		return -EINVAL;
	const char *host = url_host(o->listen_host);
	if (!srv_tls_cert_names_host(c, host, &names))
		return kerr_set(err, EINVAL,
		                "%s: the certificate does not name %s (it names %s), where this "
		                "server's own clients reach it (the controllers, DATA/config): "
		                "add it to the certificate's subjectAltName, or --listen on a name "
		                "it has",
		                cflag, host, *names ? names : "no DNS or IP subjectAltName");
	char abs[PATH_MAX];
	if (!realpath(o->tls_cert, abs))
		return kerr_set(err, errno, "%s: %s", cflag, strerror(errno));
	o->tls_ca_file = xstrdup(abs);
	o->tls_cert_pem = TAKE_PTR(c);
	o->tls_key_pem = TAKE_PTR(k);
	return 0;
}

int srv_tls_prepare(struct srv_opts *o, struct kerr *err)
{
	if (o->tls_prepared)
		return 0;
	if (!o->data_dir)
		o->data_dir = srv_default_data_dir();
	if (check_flags(o, err) < 0)
		return -EINVAL;
	if (o->tls_self_signed) {
		enum srv_tls_made made = SRV_TLS_REUSED;
		if (mkdir_0700(o->data_dir, err) < 0 ||
		    srv_tls_self_signed(o->data_dir, o->listen_host, &o->tls_cert, &o->tls_key,
		                        &made, &o->tls_why, err) < 0)
			return kerr_prefix(err, "--tls");
		o->tls_made = (int)made;
	}
	if (o->tls_cert && load_pair(o, err) < 0)
		return -err->code;
	o->tls_prepared = true;
	return 0;
}

char *srv_tls_describe(const struct srv_opts *o, bool *warn)
{
	*warn = false;
	if (!o->tls_self_signed || !o->tls_prepared)
		return NULL;
	const char *why = o->tls_why ? o->tls_why : "";
	const char *a = o->tls_why ? " (" : "", *b = o->tls_why ? ")" : "";
	if (o->tls_made == SRV_TLS_RENEWED) {
		/* its own CA changed: what clients trusted no longer verifies it */
		*warn = true;
		return xasprintf("tls: made a new self-signed certificate %s%s%s%s: clients "
		                 "holding the old ca.crt must take the new one: --ca %s (or "
		                 "\"ca\" in their config)",
		                 o->tls_ca_file, a, why, b, o->tls_ca_file);
	}
	const char *what = o->tls_made == SRV_TLS_CREATED ? "made the self-signed certificate"
	                                                  : "serving the self-signed certificate";
	return xasprintf("tls: %s %s%s%s%s; clients trust it with --ca %s (or \"ca\" in their "
	                 "config)",
	                 what, o->tls_ca_file, a, why, b, o->tls_ca_file);
}
