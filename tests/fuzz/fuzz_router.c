/*
 * Fuzz target for server/router: URL paths to routes, the raw-URI check,
 * continue tokens and the query parsers. The input is split at its first
 * NUL byte: before it the text every parser reads (path, URI, token,
 * query value), after it a list prefix for the continue-token decoder.
 * Properties, a broken one aborts:
 *   - srv_route_parse: a failure is -ENOENT with a message and leaves *out
 *     alone; a route prints back to a path that parses to the same route;
 *     every route allows GET or POST and its Allow header lists exactly
 *     the methods srv_route_allows accepts;
 *   - srv_url_check: 0, -EBADMSG or -EILSEQ, the latter two with a message;
 *   - continue tokens: decode(encode(key)) is key, for keys under the
 *     prefix; a token that decodes gives a key under the prefix;
 *   - the query parsers: a failure is -EBADMSG with a message and leaves
 *     *out alone; srv_query_u64 reads back what "%llu" prints.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kerr.h"
#include "common/util.h"
#include "server/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const char *in)
{
	if (!ok) {
		fprintf(stderr, "fuzz_router: %s (input \"%s\")\n", what, in ? in : "");
		abort();
	}
}

static void check_failure(int r, int want, const struct kerr *err, const char *in)
{
	check(r == -want && err->code == want && err->msg && *err->msg,
	      "failure without its code or message", in);
}

static const char *const sub_names[] = {"", "status", "binding", "log"};

static char *route_path(const struct srv_route *r)
{
	if (r->type == SRV_ROUTE_LEASE || r->type == SRV_ROUTE_TOKEN)
		return xasprintf("/apis/keel/v1/%s%s%s",
		                 r->type == SRV_ROUTE_LEASE ? "leases" : "tokens", r->name ? "/" : "",
		                 r->name ? r->name : "");
	return xasprintf("/apis/keel/v1%s%s/%s%s%s%s%s", r->ns ? "/namespaces/" : "",
	                 r->ns ? r->ns : "", r->kind->plural, r->name ? "/" : "",
	                 r->name ? r->name : "", r->sub ? "/" : "", sub_names[r->sub]);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || streq(a, b);
}

static bool same_route(const struct srv_route *a, const struct srv_route *b)
{
	return a->type == b->type && a->kind == b->kind && a->sub == b->sub &&
	       same_str(a->ns, b->ns) && same_str(a->name, b->name);
}

static void check_allow(const struct srv_route *r, const char *in)
{
	static const struct {
		enum srv_method m;
		const char *name;
	} methods[] = {{SRV_GET, "GET"},     {SRV_HEAD, "HEAD"},    {SRV_POST, "POST"},
	               {SRV_PUT, "PUT"},     {SRV_PATCH, "PATCH"},  {SRV_DELETE, "DELETE"}};
	const char *allow = srv_route_allow_header(r);
	check(allow && *allow, "no Allow header", in);
	/* every route answers GET or POST, but a token's (revoke: DELETE only) */
	check(srv_route_allows(r, SRV_GET) || srv_route_allows(r, SRV_POST) ||
	          (r->type == SRV_ROUTE_TOKEN && r->name && srv_route_allows(r, SRV_DELETE)),
	      "a route that answers neither GET nor POST", in);
	check(!srv_route_allows(r, SRV_OTHER), "a route answers an unknown method", in);
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
		/* the header is a ", "-separated list: look for the whole word */
		_cleanup_free_ char *list = xasprintf(", %s, ", allow);
		_cleanup_free_ char *word = xasprintf(", %s, ", methods[i].name);
		check(srv_route_allows(r, methods[i].m) == (strstr(list, word) != NULL),
		      "the Allow header disagrees with srv_route_allows", in);
		check(srv_method_parse(methods[i].name) == methods[i].m, "srv_method_parse", in);
	}
}

static void check_route(const char *in)
{
	struct srv_route r = {.type = SRV_ROUTE_VERSION, .ns = (char *)"x"};
	struct kerr err = KERR_INIT;
	int rc = srv_route_parse(in, &r, &err);
	if (rc < 0) {
		check_failure(rc, ENOENT, &err, in);
		check(r.type == SRV_ROUTE_VERSION && streq(r.ns, "x"), "*out written on failure",
		      in);
		kerr_clear(&err);
		return;
	}
	check_allow(&r, in);
	bool kindless = r.type == SRV_ROUTE_LEASE || r.type == SRV_ROUTE_TOKEN; /* not kinds */
	if (r.type == SRV_ROUTE_COLLECTION || r.type == SRV_ROUTE_ITEM || kindless) {
		check(kindless || r.kind, "a resource route without a kind", in);
		check(!kindless || (!r.kind && !r.ns), "a lease or token route with a kind", in);
		check(r.type != SRV_ROUTE_ITEM || (r.name && *r.name && !strchr(r.name, '/')),
		      "an item without a name", in);
		check(!r.ns || (*r.ns && !strchr(r.ns, '/')), "a bad namespace", in);
		check(!r.ns || r.kind->namespaced, "a namespace on a cluster-scoped route", in);
		_cleanup_free_ char *path = route_path(&r);
		struct srv_route again = {0};
		check(srv_route_parse(path, &again, NULL) == 0, "a route's path does not parse",
		      path);
		check(same_route(&r, &again), "a route's path parses to another route", path);
		srv_route_clear(&again);
	} else {
		check(!r.kind && !r.ns && !r.name, "a fixed route with a kind or name", in);
	}
	srv_route_clear(&r);
}

static void check_uri(const char *in)
{
	struct kerr err = KERR_INIT;
	int rc = srv_url_check(in, &err);
	if (rc == 0) {
		check(err.code == 0 && !err.msg, "srv_url_check set an error on success", in);
		return;
	}
	check(rc == -EBADMSG || rc == -EILSEQ, "srv_url_check: unexpected code", in);
	check_failure(rc, -rc, &err, in);
	kerr_clear(&err);
}

static void check_continue(const char *in, const char *prefix)
{
	if (strlen(in) <= 1024) {
		_cleanup_free_ char *key = xasprintf("%s%s", prefix, in);
		_cleanup_free_ char *tok = srv_continue_encode(key);
		check(tok && strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                         "0123456789-_") == strlen(tok),
		      "a token that is not base64url", in);
		if (*key && strlen(key) <= 1536) {
			char *back = NULL;
			struct kerr err = KERR_INIT;
			int rc = srv_continue_decode(tok, prefix, &back, &err);
			check(rc == 0, err.msg ? err.msg : "decode(encode(key)) fails", key);
			check(streq(back, key), "decode(encode(key)) is another key", key);
			free(back);
		}
	}
	char *key = (char *)"untouched";
	struct kerr err = KERR_INIT;
	int rc = srv_continue_decode(in, prefix, &key, &err);
	if (rc < 0) {
		check_failure(rc, EBADMSG, &err, in);
		check(streq(key, "untouched"), "*key written on failure", in);
		kerr_clear(&err);
		return;
	}
	check(strstartswith(key, prefix), "a decoded key outside the prefix", in);
	free(key);
}

static void check_query(const char *in)
{
	struct kerr err = KERR_INIT;
	bool b = true;
	int rc = srv_query_bool("watch", in, &b, &err);
	if (rc < 0) {
		check_failure(rc, EBADMSG, &err, in);
		check(b == true, "srv_query_bool wrote *out on failure", in);
	}
	kerr_clear(&err);
	b = false;
	rc = srv_query_dry_run(in, &b, &err);
	check(rc == 0 ? b && streq(in, "All") : !b, "srv_query_dry_run", in);
	if (rc < 0)
		check_failure(rc, EBADMSG, &err, in);
	kerr_clear(&err);
	uint64_t v = 42;
	rc = srv_query_u64("limit", in, &v, &err);
	if (rc < 0) {
		check_failure(rc, EBADMSG, &err, in);
		check(v == 42, "srv_query_u64 wrote *out on failure", in);
	} else {
		char buf[32];
		snprintf(buf, sizeof buf, "%" PRIu64, v);
		uint64_t back = 0;
		check(srv_query_u64("limit", buf, &back, NULL) == 0 && back == v,
		      "srv_query_u64 does not read back its value", in);
		check(strspn(in, "0123456789") == strlen(in) && *in, "srv_query_u64 took a non-number",
		      in);
	}
	kerr_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	_cleanup_free_ char *in = xstrndup((const char *)data, size);
	size_t n = strlen(in);
	_cleanup_free_ char *prefix =
	    n < size ? xstrndup((const char *)data + n + 1, size - n - 1) : xstrdup("tasks/web/");
	check_route(in);
	check_uri(in);
	check_continue(in, prefix);
	check_query(in);
	return 0;
}
