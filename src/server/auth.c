/*
 * server/auth — bearer tokens from a token file or DATA/admin.token.
 *
 * Comparison is constant-time in the content of the presented token: every
 * known token is compared in full, and the loop does not stop at the first
 * match, so timing reveals neither a prefix nor which entry matched.
 * Tokens are few (an admin, a handful of nodes), so the linear scan is the
 * cheap part of a request.
 */
#include "server/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "common/kerr.h"
#include "common/util.h"

#define MAX_TOKEN_FILE (1 << 20)

struct srv_auth {
	struct srv_token *v;
	size_t n;
};

void srv_auth_free(struct srv_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free((char *)a->v[i].token);
		free((char *)a->v[i].name);
		free((char *)a->v[i].role);
	}
	free(a->v);
	free(a);
}

static void auth_freep(struct srv_auth **a)
{
	srv_auth_free(*a);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static bool token_chars_ok(const char *t)
{
	for (; *t; t++)
		if (*t <= ' ' || *t == 0x7f)
			return false;
	return true;
}

static void auth_add(struct srv_auth *a, const char *tok, const char *name, const char *role)
{
	a->v = xrealloc(a->v, (a->n + 1) * sizeof *a->v);
	a->v[a->n++] = (struct srv_token){xstrdup(tok), xstrdup(name), xstrdup(role)};
}

static int parse_line(struct srv_auth *a, const char *src, int lineno, char *line, struct kerr *err)
{
	char *fields[4] = {0};
	int nf = 0;
	for (char *p = line; nf < 4; nf++) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		fields[nf] = trim(p);
		if (!comma) {
			nf++;
			break;
		}
		p = comma + 1;
	}
	if (nf < 2 || nf > 3)
		return kerr_set(err, EINVAL, "%s:%d: want TOKEN,NAME[,ROLE]", src, lineno);
	const char *tok = fields[0], *name = fields[1];
	const char *role = nf == 3 && *fields[2] ? fields[2] : "admin";
	if (!*tok || !token_chars_ok(tok))
		return kerr_set(err, EINVAL, "%s:%d: empty token or token with spaces", src,
		                lineno);
	if (!*name)
		return kerr_set(err, EINVAL, "%s:%d: empty name", src, lineno);
	if (!streq(role, "admin") && !streq(role, "viewer") && !streq(role, "node"))
		return kerr_set(err, EINVAL, "%s:%d: unknown role \"%s\" (admin, viewer or node)",
		                src, lineno, role);
	for (size_t i = 0; i < a->n; i++)
		if (streq(a->v[i].token, tok))
			return kerr_set(err, EINVAL, "%s:%d: duplicate token (also given for %s)",
			                src, lineno, a->v[i].name);
	auth_add(a, tok, name, role);
	return 0;
}

int srv_auth_parse(const char *source, const char *text, struct srv_auth **out, struct kerr *err)
{
	_cleanup_(auth_freep) struct srv_auth *a = xcalloc(1, sizeof *a);
	_cleanup_free_ char *copy = xstrdup(text);
	char *save = NULL;
	int lineno = 0;
	for (char *p = copy; p; p = save) {
		save = strchr(p, '\n');
		if (save)
			*save++ = '\0';
		lineno++;
		char *line = trim(p);
		if (!*line || *line == '#')
			continue;
		if (parse_line(a, source, lineno, line, err) < 0)
			return -EINVAL;
	}
	if (a->n == 0)
		return kerr_set(err, EINVAL, "%s: no tokens (want lines TOKEN,NAME[,ROLE])",
		                source);
	*out = TAKE_PTR(a);
	return 0;
}

int srv_auth_load(const char *path, struct srv_auth **out, struct kerr *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (file_read_all(path, MAX_TOKEN_FILE, &text, &len, err) < 0)
		return kerr_prefix(err, "token file %s", path);
	if (strlen(text) != len)
		return kerr_set(err, EINVAL, "token file %s: contains NUL bytes", path);
	return srv_auth_parse(path, text, out, err);
}

static int new_admin_token(const char *path, char **out, struct kerr *err)
{
	unsigned char raw[32];
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		return kerr_set(err, errno ? errno : EIO, "cannot get random bytes: %s",
		                strerror(errno));
	char hex[2 * sizeof raw + 2];
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	size_t n = 2 * sizeof raw;
	hex[n] = '\n';
	hex[n + 1] = '\0';
	if (file_write_atomic(path, hex, n + 1, 0600, err) < 0)
		return kerr_prefix(err, "cannot write %s", path);
	hex[n] = '\0';
	*out = xstrdup(hex);
	return 0;
}

int srv_auth_admin_token(const char *data_dir, struct srv_auth **out, struct kerr *err)
{
	_cleanup_free_ char *path = xasprintf("%s/admin.token", data_dir);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			return kerr_set(err, errno, "cannot stat %s: %s", path, strerror(errno));
		int r = new_admin_token(path, &text, err);
		if (r < 0)
			return r;
	} else if (file_read_all(path, 4096, &text, &len, err) < 0) {
		return kerr_prefix(err, "cannot read %s", path);
	}
	char *tok = trim(text);
	char *nl = strchr(tok, '\n');
	if (nl)
		*nl = '\0';
	tok = trim(tok);
	if (!*tok || !token_chars_ok(tok))
		return kerr_set(err, EINVAL,
		                "%s: empty or malformed token (delete it to get a new one)", path);
	struct srv_auth *a = xcalloc(1, sizeof *a);
	auth_add(a, tok, "admin", "admin");
	*out = a;
	return 0;
}

/* Compares presented (length pn) with known in time that depends only on
 * the lengths. */
static bool ct_equal(const char *presented, size_t pn, const char *known)
{
	size_t kn = strlen(known);
	unsigned char diff = (unsigned char)(pn != kn);
	for (size_t i = 0; i < kn; i++) {
		unsigned char p = i < pn ? (unsigned char)presented[i] : 0;
		diff |= (unsigned char)(p ^ (unsigned char)known[i]);
	}
	return diff == 0;
}

const struct srv_token *srv_auth_check(const struct srv_auth *a, const char *authz)
{
	if (!a || !authz || strncasecmp(authz, "Bearer ", 7) != 0)
		return NULL;
	const char *tok = authz + 7;
	while (*tok == ' ')
		tok++;
	size_t n = strlen(tok);
	while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		n--;
	if (n == 0)
		return NULL;
	const struct srv_token *found = NULL;
	for (size_t i = 0; i < a->n; i++)
		if (ct_equal(tok, n, a->v[i].token) && !found)
			found = &a->v[i];
	return found;
}

const char *srv_auth_admin(const struct srv_auth *a)
{
	for (size_t i = 0; a && i < a->n; i++)
		if (streq(a->v[i].role, "admin"))
			return a->v[i].token;
	return NULL;
}

size_t srv_auth_count(const struct srv_auth *a)
{
	return a ? a->n : 0;
}
