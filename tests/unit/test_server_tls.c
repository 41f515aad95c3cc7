/* Unit tests for src/server/tls: the self-signed generator (the pair
 * verifies, its names), the pair check's messages, DATA/tls/ kept and
 * renewed, the loopback rule and srv_tls_prepare's flag rules. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/kerr.h"
#include "common/util.h"
#include "server/opts.h"
#include "server/tls.h"

static char tmpdir[512];

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("KEEL_TEST_TMP");
	base = base ? base : "/tmp";
	mkdir(base, 0700);
	snprintf(tmpdir, sizeof tmpdir, "%s/tls.XXXXXX", base);
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	_cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The certificate verifies against itself as the only trust anchor, as a
 * client with --ca ca.crt sees it, for each of its names. */
static void verify_self(const char *pem, const char *host, bool want)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
	unsigned status = 99;
	assert_int_equal(gnutls_x509_crt_list_verify(&crt, 1, &crt, 1, NULL, 0, 0, &status), 0);
	assert_int_equal(status, 0);
	assert_int_equal(srv_tls_cert_names_host(pem, host, NULL), want);
	gnutls_x509_crt_deinit(crt);
}

static void test_generate(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	_cleanup_free_ char *c = NULL, *k = NULL;
	assert_int_equal(srv_tls_generate("box.example", NULL, 365, &c, &k, &err), 0);
	assert_non_null(strstr(c, "-----BEGIN CERTIFICATE-----"));
	assert_non_null(strstr(k, "-----BEGIN PRIVATE KEY-----"));
	int64_t until = 0, now = time_now_unix();
	assert_int_equal(srv_tls_check_pair(c, k, "cert", "key", now, &until, &err), 0);
	assert_true(until >= now + 364 * 86400 && until <= now + 366 * 86400);
	verify_self(c, "127.0.0.1", true);
	verify_self(c, "::1", true);
	verify_self(c, "localhost", true);
	verify_self(c, "box.example", true);
	verify_self(c, "other.example", false);
	verify_self(c, "10.0.0.1", false);
	_cleanup_free_ char *names = NULL;
	srv_tls_cert_names_host(c, "x", &names);
	assert_string_equal(names, "IP:127.0.0.1, IP:::1, DNS:localhost, DNS:box.example");
	/* an invalid host name is left out, not made a bad SAN */
	_cleanup_free_ char *c2 = NULL, *k2 = NULL, *names2 = NULL;
	assert_int_equal(srv_tls_generate("bad name!", "0.0.0.0", 1, &c2, &k2, &err), 0);
	srv_tls_cert_names_host(c2, "x", &names2);
	assert_string_equal(names2, "IP:127.0.0.1, IP:::1, DNS:localhost");
	/* the listen host, IP or name, is named too */
	_cleanup_free_ char *c3 = NULL, *k3 = NULL, *c4 = NULL, *k4 = NULL;
	assert_int_equal(srv_tls_generate("box", "192.168.7.7", 1, &c3, &k3, &err), 0);
	verify_self(c3, "192.168.7.7", true);
	verify_self(c3, "box", true);
	assert_int_equal(srv_tls_generate("box", "keel.example", 1, &c4, &k4, &err), 0);
	verify_self(c4, "keel.example", true);
	kerr_clear(&err);
}

static void test_check_pair_errors(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	_cleanup_free_ char *c1 = NULL, *k1 = NULL, *c2 = NULL, *k2 = NULL;
	assert_int_equal(srv_tls_generate("a", NULL, 30, &c1, &k1, &err), 0);
	assert_int_equal(srv_tls_generate("b", NULL, 30, &c2, &k2, &err), 0);
	int64_t now = time_now_unix();
	assert_int_equal(
	    srv_tls_check_pair(c1, k2, "--tls-cert a.crt", "--tls-key b.key", now, NULL, &err),
	    -EINVAL);
	assert_string_equal(err.msg, "--tls-key b.key does not match the certificate in "
	                             "--tls-cert a.crt (the key of another certificate?)");
	assert_int_equal(
	    srv_tls_check_pair(k1, k1, "--tls-cert k.pem", "--tls-key k.pem", now, NULL, &err),
	    -EINVAL);
	assert_true(strstartswith(err.msg, "--tls-cert k.pem: not a PEM certificate"));
	assert_int_equal(
	    srv_tls_check_pair(c1, c1, "--tls-cert a.crt", "--tls-key a.crt", now, NULL, &err),
	    -EINVAL);
	assert_true(strstartswith(err.msg, "--tls-key a.crt: not an unencrypted PEM private key"));
	assert_int_equal(srv_tls_check_pair(c1, k1, "a.crt", "a.key", now + 31 * 86400, NULL, &err),
	                 -EINVAL);
	assert_true(strstartswith(err.msg, "a.crt: the certificate expired on "));
	assert_int_equal(srv_tls_check_pair(c1, k1, "a.crt", "a.key", now - 86400, NULL, &err),
	                 -EINVAL);
	assert_true(strstartswith(err.msg, "a.crt: the certificate is not valid before "));
	kerr_clear(&err);
}

static char *slurp(const char *path)
{
	char *s = NULL;
	assert_int_equal(file_read_all(path, 1 << 20, &s, NULL, NULL), 0);
	return s;
}

static void test_self_signed_kept(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	_cleanup_free_ char *data = xasprintf("%s/data", tmpdir);
	assert_int_equal(mkdir(data, 0700), 0);
	_cleanup_free_ char *cf = NULL, *kf = NULL, *why = NULL;
	enum srv_tls_made made = SRV_TLS_REUSED;
	assert_int_equal(srv_tls_self_signed(data, "127.0.0.1", &cf, &kf, &made, &why, &err), 0);
	assert_int_equal(made, SRV_TLS_CREATED);
	assert_null(why);
	_cleanup_free_ char *want_c = xasprintf("%s/tls/ca.crt", data);
	assert_string_equal(cf, want_c);
	struct stat st;
	assert_int_equal(stat(kf, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	_cleanup_free_ char *first = slurp(cf);

	/* reused as it is */
	_cleanup_free_ char *cf2 = NULL, *kf2 = NULL;
	assert_int_equal(srv_tls_self_signed(data, "127.0.0.1", &cf2, &kf2, &made, NULL, &err), 0);
	assert_int_equal(made, SRV_TLS_REUSED);
	_cleanup_free_ char *second = slurp(cf2);
	assert_string_equal(first, second);

	/* a key that is not the certificate's (a crash between the renames) */
	_cleanup_free_ char *c = NULL, *k = NULL;
	assert_int_equal(srv_tls_generate("x", NULL, 30, &c, &k, &err), 0);
	assert_int_equal(file_write_atomic(kf, k, strlen(k), 0600, &err), 0);
	_cleanup_free_ char *cf3 = NULL, *kf3 = NULL;
	assert_int_equal(srv_tls_self_signed(data, "127.0.0.1", &cf3, &kf3, &made, &why, &err), 0);
	assert_int_equal(made, SRV_TLS_RENEWED);
	assert_non_null(strstr(why, "does not match"));
	_cleanup_free_ char *third = slurp(cf3), *key3 = slurp(kf3);
	assert_string_not_equal(first, third);
	assert_int_equal(srv_tls_check_pair(third, key3, "c", "k", time_now_unix(), NULL, &err), 0);
	free(why);
	why = NULL;

	/* one near its end is made again */
	free(c);
	free(k);
	c = k = NULL;
	assert_int_equal(srv_tls_generate("x", NULL, 3, &c, &k, &err), 0);
	assert_int_equal(file_write_atomic(kf, k, strlen(k), 0600, &err), 0);
	assert_int_equal(file_write_atomic(cf, c, strlen(c), 0644, &err), 0);
	_cleanup_free_ char *cf4 = NULL, *kf4 = NULL;
	assert_int_equal(srv_tls_self_signed(data, "127.0.0.1", &cf4, &kf4, &made, &why, &err), 0);
	assert_int_equal(made, SRV_TLS_RENEWED);
	assert_non_null(strstr(why, "the certificate expires on"));
	free(why);
	why = NULL;

	/* a --listen on an address the one there does not name */
	_cleanup_free_ char *cf5 = NULL, *kf5 = NULL, *cf6 = NULL, *kf6 = NULL;
	assert_int_equal(srv_tls_self_signed(data, "10.9.8.7", &cf5, &kf5, &made, &why, &err), 0);
	assert_int_equal(made, SRV_TLS_RENEWED);
	assert_non_null(strstr(why, "does not name 10.9.8.7"));
	_cleanup_free_ char *fifth = slurp(cf5);
	assert_true(srv_tls_cert_names_host(fifth, "10.9.8.7", NULL));
	assert_int_equal(srv_tls_self_signed(data, "0.0.0.0", &cf6, &kf6, &made, NULL, &err), 0);
	assert_int_equal(made, SRV_TLS_REUSED);
	kerr_clear(&err);
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(host_is_loopback("127.0.0.1"));
	assert_true(host_is_loopback("127.3.4.5"));
	assert_true(host_is_loopback("::1"));
	assert_true(host_is_loopback("localhost"));
	assert_false(host_is_loopback("0.0.0.0"));
	assert_false(host_is_loopback("::"));
	assert_false(host_is_loopback(""));
	assert_false(host_is_loopback("10.1.2.3"));
	assert_false(host_is_loopback("192.168.0.1"));
}

static void test_prepare_rules(void **state)
{
	(void)state;
	struct kerr err = KERR_INIT;
	struct srv_opts o;
	srv_opts_init(&o);
	o.data_dir = xasprintf("%s/p", tmpdir);
	o.tls_cert = xstrdup("a.crt");
	assert_int_equal(srv_tls_prepare(&o, &err), -EINVAL);
	assert_string_equal(
	    err.msg, "--tls-cert a.crt needs --tls-key FILE (the certificate's private key)");
	o.tls_self_signed = true;
	o.tls_key = xstrdup("a.key");
	assert_int_equal(srv_tls_prepare(&o, &err), -EINVAL);
	assert_true(strstartswith(err.msg, "--tls makes its own certificate"));
	o.tls_self_signed = false;
	assert_int_equal(srv_tls_prepare(&o, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "--tls-cert"));
	assert_non_null(strstr(err.msg, "a.crt"));
	free(o.tls_cert);
	free(o.tls_key);
	o.tls_cert = o.tls_key = NULL;
	free(o.listen_host);
	o.listen_host = xstrdup("0.0.0.0");
	assert_int_equal(srv_tls_prepare(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--listen 0.0.0.0:7700 is not a loopback address"));
	assert_non_null(strstr(err.msg, "--insecure-listen"));
	o.insecure_listen = true;
	assert_int_equal(srv_tls_prepare(&o, &err), 0);
	assert_null(o.tls_cert_pem);
	srv_opts_free(&o);

	/* --tls on 0.0.0.0: the self-signed pair names 127.0.0.1, the URL's host */
	srv_opts_init(&o);
	o.data_dir = xasprintf("%s/p2", tmpdir);
	free(o.listen_host);
	o.listen_host = xstrdup("0.0.0.0");
	o.tls_self_signed = true;
	assert_int_equal(srv_tls_prepare(&o, &err), 0);
	assert_non_null(o.tls_cert_pem);
	_cleanup_free_ char *ca = xasprintf("%s/p2/tls/ca.crt", tmpdir);
	assert_string_equal(o.tls_ca_file, ca);
	assert_int_equal(o.tls_made, SRV_TLS_CREATED);
	srv_opts_free(&o);

	/* a certificate that does not name where its own clients reach it */
	srv_opts_init(&o);
	o.data_dir = xasprintf("%s/p2", tmpdir);
	free(o.listen_host);
	o.listen_host = xstrdup("127.0.0.2");
	o.tls_cert = xasprintf("%s/p2/tls/ca.crt", tmpdir);
	o.tls_key = xasprintf("%s/p2/tls/ca.key", tmpdir);
	assert_int_equal(srv_tls_prepare(&o, &err), -EINVAL);
	assert_non_null(
	    strstr(err.msg, "the certificate does not name 127.0.0.2 (it names IP:127.0.0.1"));
	srv_opts_free(&o);

	/* --tls on another host: a new CA, which every client must take (a warning) */
	srv_opts_init(&o);
	o.data_dir = xasprintf("%s/p2", tmpdir);
	free(o.listen_host);
	o.listen_host = xstrdup("127.0.0.2");
	o.tls_self_signed = true;
	assert_int_equal(srv_tls_prepare(&o, &err), 0);
	assert_int_equal(o.tls_made, SRV_TLS_RENEWED);
	bool warn = false;
	_cleanup_free_ char *note = srv_tls_describe(&o, &warn);
	assert_true(warn);
	assert_non_null(strstr(note, "tls: made a new self-signed certificate "));
	assert_non_null(strstr(note, "does not name 127.0.0.2"));
	_cleanup_free_ char *take = xasprintf("clients holding the old ca.crt must take the new "
	                                      "one: --ca %s (or \"ca\" in their config)",
	                                      ca);
	assert_non_null(strstr(note, take));
	srv_opts_free(&o);
	/* the same again: reused, no warning */
	srv_opts_init(&o);
	o.data_dir = xasprintf("%s/p2", tmpdir);
	free(o.listen_host);
	o.listen_host = xstrdup("127.0.0.2");
	o.tls_self_signed = true;
	assert_int_equal(srv_tls_prepare(&o, &err), 0);
	_cleanup_free_ char *note2 = srv_tls_describe(&o, &warn);
	assert_false(warn);
	assert_non_null(strstr(note2, "tls: serving the self-signed certificate "));
	srv_opts_free(&o);
	kerr_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_generate),
	    cmocka_unit_test(test_check_pair_errors),
	    cmocka_unit_test_setup_teardown(test_self_signed_kept, setup, teardown),
	    cmocka_unit_test(test_loopback),
	    cmocka_unit_test_setup_teardown(test_prepare_rules, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
