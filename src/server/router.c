/*
 * server/router — path -> route, plus the query-string parsers.
 *
 * Routing is a split on '/' and a walk over at most seven segments; the kind
 * table (api/kind.h) supplies plurals and scopes, so a new kind needs no
 * change here. Errors are written for the person who mistyped the URL: an
 * unknown plural lists every known one and the closest match, because that
 * is what `curl .../taks` users need to see.
 *
 * Continue tokens are the last key, base64url-encoded: opaque to clients,
 * trivially checked against the collection's prefix on the way back.
 */
#include "server/router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

#define MAX_SEGMENTS 8
#define MAX_NAME     253

enum srv_method srv_method_parse(const char *m)
{
	static const struct {
		const char *name;
		enum srv_method m;
	} t[] = {{"GET", SRV_GET},     {"POST", SRV_POST},     {"PUT", SRV_PUT},
	         {"PATCH", SRV_PATCH}, {"DELETE", SRV_DELETE}, {"HEAD", SRV_HEAD}};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (streq(m, t[i].name))
			return t[i].m;
	return SRV_OTHER;
}

/* Splits path into at most MAX_SEGMENTS non-empty segments (copied into
 * buf). Returns the count, or -1 when there are too many. */
static int split_path(const char *path, char *buf, size_t buflen, char **seg)
{
	snprintf(buf, buflen, "%s", path);
	int n = 0;
	char *save = NULL;
	for (char *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGMENTS)
			return -1;
		seg[n++] = s;
	}
	return n;
}

static int unknown_kind(const char *plural, struct kerr *err)
{
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	for (size_t i = 0; i < api_kind_count(); i++)
		sbuf_printf(&b, "%s%s", i ? ", " : "", api_kind_at(i)->plural);
	const struct api_kind *alias = api_kind_resolve(plural);
	const char *hint = alias ? alias->plural : api_kind_suggest(plural);
	if (hint)
		return kerr_set(
		    err, ENOENT,
		    "the server doesn't have a resource type \"%s\"; known: %s; did you mean %s?",
		    plural, b.data, hint);
	return kerr_set(err, ENOENT, "the server doesn't have a resource type \"%s\"; known: %s",
	                plural, b.data);
}

static int parse_sub(const struct api_kind *k, const char *s, enum srv_subresource *out,
                     struct kerr *err)
{
	if (streq(s, "status") && k->has_status)
		*out = SRV_SUB_STATUS;
	else if (streq(s, "binding") && streq(k->plural, "tasks"))
		*out = SRV_SUB_BINDING;
	else if (streq(s, "log") && streq(k->plural, "tasks"))
		*out = SRV_SUB_LOG;
	else if (streq(s, "logkey") && streq(k->plural, "nodes"))
		*out = SRV_SUB_LOGKEY;
	else
		return kerr_set(err, ENOENT, "%s have no subresource \"%s\"", k->plural, s);
	return 0;
}

static int check_name(const char *what, const char *s, struct kerr *err)
{
	if (strlen(s) > MAX_NAME)
		return kerr_set(err, ENOENT, "%s name too long (%zu characters, at most %d)", what,
		                strlen(s), MAX_NAME);
	return 0;
}

/* segs after "/apis/keel/v1". */
static int parse_resource(char **seg, int n, struct srv_route *r, struct kerr *err)
{
	const char *ns = NULL;
	if (n >= 3 && streq(seg[0], "namespaces") && !streq(seg[2], "status")) {
		ns = seg[1];
		seg += 2;
		n -= 2;
		if (check_name("namespace", ns, err) < 0)
			return -ENOENT;
	}
	if (!ns && (streq(seg[0], "leases") || streq(seg[0], "tokens")) && n <= 2) {
		/* not kinds: server/lease.c, server/tokens.c */
		bool lease = streq(seg[0], "leases");
		if (n == 2 && check_name(lease ? "lease" : "token", seg[1], err) < 0)
			return -ENOENT;
		r->type = lease ? SRV_ROUTE_LEASE : SRV_ROUTE_TOKEN;
		r->name = n == 2 ? xstrdup(seg[1]) : NULL;
		return 0;
	}
	const struct api_kind *k = api_kind_by_plural(seg[0]);
	if (!k)
		return unknown_kind(seg[0], err);
	if (ns && !k->namespaced)
		return kerr_set(err, ENOENT, "%s are cluster-scoped; use /apis/%s/%s", k->plural,
		                API_GROUP_VERSION, k->plural);
	if (n > 3)
		return kerr_set(err, ENOENT, "no such path under /apis/%s/%s", API_GROUP_VERSION,
		                k->plural);
	if (n >= 2 && k->namespaced && !ns)
		return kerr_set(err, ENOENT,
		                "%s are namespaced; use /apis/%s/namespaces/NAMESPACE/%s/%s",
		                k->plural, API_GROUP_VERSION, k->plural, seg[1]);
	enum srv_subresource sub = SRV_SUB_NONE;
	if (n == 3 && parse_sub(k, seg[2], &sub, err) < 0)
		return -ENOENT;
	if (n >= 2 && check_name(k->singular, seg[1], err) < 0)
		return -ENOENT;
	r->type = n == 1 ? SRV_ROUTE_COLLECTION : SRV_ROUTE_ITEM;
	r->kind = k;
	r->ns = ns ? xstrdup(ns) : NULL;
	r->name = n >= 2 ? xstrdup(seg[1]) : NULL;
	r->sub = sub;
	return 0;
}

int srv_route_parse(const char *path, struct srv_route *out, struct kerr *err)
{
	static const struct {
		const char *path;
		enum srv_route_type type;
	} fixed[] = {{"healthz", SRV_ROUTE_HEALTHZ},
	             {"readyz", SRV_ROUTE_READYZ},
	             {"version", SRV_ROUTE_VERSION},
	             {"metrics", SRV_ROUTE_METRICS}};
	char buf[4 * (MAX_NAME + 1) + 64];
	char *seg[MAX_SEGMENTS];
	if (!path || strlen(path) >= sizeof buf)
		return kerr_set(err, ENOENT,
		                "the server could not find the requested resource (path too long)");
	int n = split_path(path, buf, sizeof buf, seg);
	struct srv_route r = {0};
	if (n == 1) {
		for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
			if (streq(seg[0], fixed[i].path)) {
				out->type = fixed[i].type;
				out->kind = NULL, out->ns = NULL, out->name = NULL,
				out->sub = SRV_SUB_NONE;
				return 0;
			}
	}
	if (n < 1 || !streq(seg[0], "apis"))
		return kerr_set(err, ENOENT,
		                "the server could not find the requested resource \"%s\"", path);
	if (n == 1)
		r.type = SRV_ROUTE_APIS;
	else if (!streq(seg[1], API_GROUP))
		return kerr_set(err, ENOENT, "the server does not serve API group \"%s\" (only %s)",
		                seg[1], API_GROUP);
	else if (n == 2)
		r.type = SRV_ROUTE_GROUP;
	else if (!streq(seg[2], API_VERSION))
		return kerr_set(err, ENOENT,
		                "the server does not serve version \"%s\" of %s (only %s)", seg[2],
		                API_GROUP, API_GROUP_VERSION);
	else if (n == 3)
		r.type = SRV_ROUTE_RESOURCES;
	else if (parse_resource(seg + 3, n - 3, &r, err) < 0)
		return -ENOENT;
	*out = r;
	return 0;
}

void srv_route_clear(struct srv_route *r)
{
	if (!r)
		return;
	free(r->ns);
	free(r->name);
	r->ns = r->name = NULL;
}

bool srv_route_allows(const struct srv_route *r, enum srv_method m)
{
	if (m == SRV_HEAD)
		m = SRV_GET;
	switch (r->type) {
	case SRV_ROUTE_COLLECTION:
		/* create needs a namespace in the URL for namespaced kinds */
		return m == SRV_GET || (m == SRV_POST && (!r->kind->namespaced || r->ns));
	case SRV_ROUTE_ITEM:
		switch (r->sub) {
		case SRV_SUB_NONE:
			return m == SRV_GET || m == SRV_PUT || m == SRV_PATCH || m == SRV_DELETE;
		case SRV_SUB_STATUS:
			return m == SRV_GET || m == SRV_PUT || m == SRV_PATCH;
		case SRV_SUB_BINDING:
			return m == SRV_POST;
		case SRV_SUB_LOG:
		case SRV_SUB_LOGKEY:
			return m == SRV_GET;
		}
		return false;
	case SRV_ROUTE_LEASE:
		return m == SRV_GET || (r->name && m == SRV_PUT);
	case SRV_ROUTE_TOKEN:
		return r->name ? m == SRV_DELETE : m == SRV_GET || m == SRV_POST;
	default:
		return m == SRV_GET;
	}
}

const char *srv_route_allow_header(const struct srv_route *r)
{
	if (r->type == SRV_ROUTE_COLLECTION)
		return (!r->kind->namespaced || r->ns) ? "GET, HEAD, POST" : "GET, HEAD";
	if (r->type == SRV_ROUTE_ITEM) {
		switch (r->sub) {
		case SRV_SUB_NONE:
			return "GET, HEAD, PUT, PATCH, DELETE";
		case SRV_SUB_STATUS:
			return "GET, HEAD, PUT, PATCH";
		case SRV_SUB_BINDING:
			return "POST";
		case SRV_SUB_LOG:
		case SRV_SUB_LOGKEY:
			return "GET, HEAD";
		}
	}
	if (r->type == SRV_ROUTE_LEASE && r->name)
		return "GET, HEAD, PUT";
	if (r->type == SRV_ROUTE_TOKEN)
		return r->name ? "DELETE" : "GET, HEAD, POST";
	return "GET, HEAD";
}

int srv_query_bool(const char *name, const char *v, bool *out, struct kerr *err)
{
	if (!v)
		return 0;
	if (streq(v, "1") || streq(v, "true") || streq(v, ""))
		*out = true;
	else if (streq(v, "0") || streq(v, "false"))
		*out = false;
	else
		return kerr_set(err, EBADMSG,
		                "invalid value for %s: \"%s\" (want true, false, 1 or 0)", name, v);
	return 0;
}

int srv_query_u64(const char *name, const char *v, uint64_t *out, struct kerr *err)
{
	if (!v)
		return 0;
	if (!*v || strlen(v) > 20)
		return kerr_set(err, EBADMSG,
		                "invalid value for %s: \"%s\" (want a non-negative integer)", name,
		                v);
	uint64_t x = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return kerr_set(
			    err, EBADMSG,
			    "invalid value for %s: \"%s\" (want a non-negative integer)", name, v);
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*out = x;
	return 0;
}

int srv_query_dry_run(const char *v, bool *out, struct kerr *err)
{
	if (!v)
		return 0;
	if (!streq(v, "All"))
		return kerr_set(err, EBADMSG,
		                "invalid value for dryRun: \"%s\" (the only value is All)", v);
	*out = true;
	return 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *srv_continue_encode(const char *key)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t n = strlen(key);
	struct sbuf b = SBUF_INIT;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		sbuf_putc(&b, b64url[(v >> 18) & 63]);
		sbuf_putc(&b, b64url[(v >> 12) & 63]);
		if (i + 1 < n)
			sbuf_putc(&b, b64url[(v >> 6) & 63]);
		if (i + 2 < n)
			sbuf_putc(&b, b64url[v & 63]);
	}
	return sbuf_take(&b);
}

static int b64url_value(char c)
{
	const char *p = c ? strchr(b64url, c) : NULL;
	return p ? (int)(p - b64url) : -1;
}

int srv_continue_decode(const char *token, const char *prefix, char **key, struct kerr *err)
{
	size_t n = token ? strlen(token) : 0;
	if (n == 0 || n % 4 == 1 || n > 2048)
		return kerr_set(err, EBADMSG, "invalid continue token \"%s\"", token ? token : "");
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value(token[i]);
		if (v < 0)
			return kerr_set(err, EBADMSG, "invalid continue token \"%s\"", token);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			char c = (char)((acc >> bits) & 0xff);
			if (c == '\0')
				return kerr_set(err, EBADMSG, "invalid continue token \"%s\"",
				                token);
			sbuf_putc(&b, c);
		}
	}
	if (!b.data || !strstartswith(b.data, prefix))
		return kerr_set(err, EBADMSG, "continue token \"%s\" does not belong to this list",
		                token);
	*key = sbuf_take(&b);
	return 0;
}

/* Whether s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
		                          : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 0 || i + len > n)
			return false;
		uint32_t cp = len == 1 ? c : c & (0x7f >> len);
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into b (plus as space when query); sets *nul
 * when a byte decodes to NUL. Malformed escapes are kept literally, as MHD
 * does. */
static void pct_decode(const char *s, size_t n, bool query, struct sbuf *b, bool *nul)
{
	*nul = false;
	for (size_t i = 0; i < n; i++) {
		int hi = -1, lo = -1;
		if (s[i] == '%' && i + 2 < n) {
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
		}
		char c = s[i];
		if (hi >= 0 && lo >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (query && c == '+') {
			c = ' ';
		}
		if (c == '\0')
			*nul = true;
		sbuf_putc(b, c);
	}
}

/* The raw text s[0..n), with bytes outside printable ASCII (and quotes)
 * percent-encoded, for a message. */
static char *printable(const char *s, size_t n)
{
	struct sbuf b = SBUF_INIT;
	for (size_t i = 0; i < n && i < 256; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '"')
			sbuf_printf(&b, "%%%02X", c);
		else
			sbuf_putc(&b, (char)c);
	}
	return sbuf_take(&b);
}

/* Decodes and checks one piece; what is "path segment" or "query parameter". */
static int check_piece(const char *s, size_t n, bool query, const char *what, const char *name,
                       size_t name_len, struct kerr *err)
{
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	bool nul;
	pct_decode(s, n, query, &b, &nul);
	_cleanup_free_ char *shown = printable(name, name_len);
	if (nul)
		return kerr_set(err, EBADMSG, "invalid %%00 in the URL (%s \"%s\")", what, shown);
	if (!utf8_valid((const unsigned char *)b.data, b.len)) {
		if (!query)
			return kerr_set(err, EILSEQ, "invalid URL path segment \"%s\": not valid UTF-8",
			                shown);
		return kerr_set(err, EBADMSG, "invalid %s \"%s\": not valid UTF-8", what, shown);
	}
	return 0;
}

static int check_query(const char *q, struct kerr *err)
{
	while (*q) {
		size_t n = strcspn(q, "&");
		size_t klen = strcspn(q, "=");
		if (klen > n)
			klen = n;
		int rc = check_piece(q, klen, true, "query parameter", q, klen, err);
		if (rc == 0 && klen < n)
			rc = check_piece(q + klen + 1, n - klen - 1, true, "query parameter", q, klen,
			                 err);
		if (rc < 0)
			return rc;
		q += n;
		if (*q)
			q++;
	}
	return 0;
}

int srv_url_check(const char *uri, struct kerr *err)
{
	if (!uri)
		return 0;
	size_t plen = strcspn(uri, "?#");
	int bad_utf8 = 0;
	for (size_t i = 0; i < plen;) {
		size_t n = strcspn(uri + i, "/?#");
		if (n > plen - i)
			n = plen - i;
		struct kerr e = KERR_INIT;
		int rc = check_piece(uri + i, n, false, "path segment", uri + i, n, &e);
		if (rc == -EBADMSG) {
			kerr_move(err, &e);
			return rc;
		}
		if (rc == -EILSEQ && !bad_utf8) {
			bad_utf8 = rc;
			kerr_move(err, &e);
		}
		kerr_clear(&e);
		i += n + 1;
	}
	if (uri[plen] == '?') {
		struct kerr e = KERR_INIT;
		if (check_query(uri + plen + 1, &e) < 0) {
			kerr_clear(err);
			kerr_move(err, &e);
			return -EBADMSG;
		}
	}
	return bad_utf8;
}
