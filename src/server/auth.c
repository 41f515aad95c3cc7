/*
 * server/auth — bearer tokens from a token file, or from DATA/admin.token
 * and the tokens minted through the API (DATA/tokens).
 *
 * Every entry keeps the SHA-256 of its token; a presented token is hashed
 * once and compared with every known hash in full (the loop does not stop
 * at the first match), so timing reveals neither a prefix nor which entry
 * matched. Tokens are few (an admin, a handful of users and nodes), so the
 * linear scan is the cheap part of a request.
 *
 * The set changes at run time (mint, revoke) while MHD's worker threads
 * check tokens, hence the rwlock. A change is written to DATA/tokens
 * before it is made in memory, so what the server answers is what the
 * next start loads.
 */
#include "server/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/sha256.h"
#include "common/util.h"

#define MAX_TOKEN_FILE (1 << 20)
#define MAX_TOKENS     10000
#define HASH_PREFIX    "sha256:"

enum source { SRC_FILE, SRC_ADMIN, SRC_MINTED, SRC_IN_PROCESS };

struct entry {
	uint8_t hash[SHA256_LEN];
	char *token; /* in clear, when the source had it; NULL for hashes */
	char *name;
	char *role;
	enum source src;
};

struct srv_auth {
	pthread_rwlock_t lock;
	struct entry *v;
	size_t n;
	char *minted_path; /* DATA/tokens; NULL with a token file (no minting) */
	char *token_file;  /* for the refusal's message */
	char **warn;       /* from loading, for the server to log at start */
	size_t nwarn;
};

static struct srv_auth *auth_new(void)
{
	struct srv_auth *a = xcalloc(1, sizeof *a);
	pthread_rwlock_init(&a->lock, NULL);
	return a;
}

static void entry_free(struct entry *e)
{
	free(e->token);
	free(e->name);
	free(e->role);
}

void srv_auth_free(struct srv_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		entry_free(&a->v[i]);
	free(a->v);
	free(a->minted_path);
	free(a->token_file);
	for (size_t i = 0; i < a->nwarn; i++)
		free(a->warn[i]);
	free(a->warn);
	pthread_rwlock_destroy(&a->lock);
	free(a);
}

static void auth_freep(struct srv_auth **a)
{
	srv_auth_free(*a);
}

void srv_ident_clear(struct srv_ident *id)
{
	free(id->name);
	free(id->role);
	id->name = id->role = NULL;
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

static void auth_warn(struct srv_auth *a, char *msg)
{
	a->warn = xrealloc(a->warn, (a->nwarn + 1) * sizeof *a->warn);
	a->warn[a->nwarn++] = msg;
}

static bool has_non_ascii(const char *t)
{
	for (; *t; t++)
		if ((unsigned char)*t >= 0x80)
			return true;
	return false;
}

/* Length of the UTF-8 sequence at s (shortest form, no surrogates, at
 * most U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n = c < 0x80                 ? 1
	           : c >= 0xc2 && c <= 0xdf ? 2
	           : c >= 0xe0 && c <= 0xef ? 3
	           : c >= 0xf0 && c <= 0xf4 ? 4
	                                    : 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

/* A user name goes into log lines, Token objects (JSON) and DATA/tokens
 * (CSV without quoting): it may hold what a Kubernetes token file's user
 * does (UTF-8, spaces inside), but not a control character, nor '"' or
 * '\' (which would need quoting in a log line or a CSV). The comma is the
 * field separator already. Returns the offending byte's description or
 * NULL. */
static const char *name_bad_char(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p;) {
		if (*p < 0x20 || *p == 0x7f)
			return "a control character";
		if (*p == '"' || *p == '\\')
			return *p == '"' ? "a '\"'" : "a '\\'";
		size_t n = utf8_len(p);
		if (!n)
			return "a byte that is not UTF-8";
		if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			return "a control character";
		p += n;
	}
	return NULL;
}

static bool token_chars_ok(const char *t)
{
	for (; *t; t++)
		if (*t <= ' ' || *t == 0x7f)
			return false;
	return true;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* "sha256:HEX" -> hash; false when tok is not of that form. */
static bool parse_hash(const char *tok, uint8_t hash[SHA256_LEN])
{
	if (!strstartswith(tok, HASH_PREFIX))
		return false;
	const char *h = tok + strlen(HASH_PREFIX);
	if (strlen(h) != 2 * SHA256_LEN)
		return false;
	for (size_t i = 0; i < SHA256_LEN; i++) {
		int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		hash[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static void auth_add(struct srv_auth *a, const uint8_t hash[SHA256_LEN], const char *clear,
                     const char *name, const char *role, enum source src)
{
	a->v = xrealloc(a->v, (a->n + 1) * sizeof *a->v);
	struct entry *e = &a->v[a->n++];
	memcpy(e->hash, hash, SHA256_LEN);
	e->token = clear ? xstrdup(clear) : NULL;
	e->name = xstrdup(name);
	e->role = xstrdup(role);
	e->src = src;
}

static bool role_ok(const char *role)
{
	return streq(role, "admin") || streq(role, "viewer") || streq(role, "node");
}

static int parse_line(struct srv_auth *a, const char *src, int lineno, char *line, enum source from,
                      struct kerr *err)
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
	const char *want = from == SRC_MINTED ? "want HASH,NAME,ROLE (DATA/tokens is written by "
	                                        "the server)"
	                                      : "want TOKEN,NAME[,ROLE]";
	if (nf < 2 || nf > 3)
		return kerr_set(err, EINVAL, "%s:%d: %s", src, lineno, want);
	const char *tok = fields[0], *name = fields[1];
	const char *role = nf == 3 && *fields[2] ? fields[2] : "admin";
	if (has_non_ascii(tok))
		return kerr_set(err, EINVAL, "%s:%d: non-ASCII character in the token", src,
		                lineno);
	if (!*tok || !token_chars_ok(tok))
		return kerr_set(err, EINVAL, "%s:%d: empty token or token with spaces", src,
		                lineno);
	if (!*name)
		return kerr_set(err, EINVAL, "%s:%d: empty name", src, lineno);
	const char *bad = name_bad_char(name);
	if (bad)
		return kerr_set(err, EINVAL,
		                "%s:%d: the name holds %s (a name may not hold control "
		                "characters, '\"' or '\\')",
		                src, lineno, bad);
	if (strstartswith(name, "system:"))
		return kerr_set(err, EINVAL,
		                "%s:%d: the name \"%s\" is reserved (names starting with "
		                "\"system:\" are keel's own)",
		                src, lineno, name);
	if (!role_ok(role))
		return kerr_set(err, EINVAL, "%s:%d: unknown role \"%s\" (admin, viewer or node)",
		                src, lineno, role);
	uint8_t hash[SHA256_LEN];
	bool hashed = parse_hash(tok, hash);
	if (!hashed && from == SRC_MINTED)
		return kerr_set(err, EINVAL, "%s:%d: want a sha256:HEX token hash", src, lineno);
	if (!hashed)
		sha256(tok, strlen(tok), hash);
	for (size_t i = 0; i < a->n; i++)
		if (memcmp(a->v[i].hash, hash, SHA256_LEN) == 0)
			return kerr_set(err, EINVAL, "%s:%d: duplicate token (also given for %s)",
			                src, lineno, a->v[i].name);
	if (a->n >= MAX_TOKENS)
		return kerr_set(err, EINVAL, "%s:%d: more than %d tokens", src, lineno, MAX_TOKENS);
	auth_add(a, hash, hashed ? NULL : tok, name, role, from);
	if (nf < 3 || !*fields[2])
		auth_warn(a, xasprintf("%s:%d: no role for \"%s\": it gets admin (give ROLE admin, "
		                       "viewer or node to choose)",
		                       src, lineno, name));
	return 0;
}

static int parse_into(struct srv_auth *a, const char *source, const char *text, enum source from,
                      struct kerr *err)
{
	/* an editor's byte-order mark is not part of the first token */
	_cleanup_free_ char *copy = xstrdup(strstartswith(text, "\xEF\xBB\xBF") ? text + 3 : text);
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
		if (parse_line(a, source, lineno, line, from, err) < 0)
			return -EINVAL;
	}
	return 0;
}

int srv_auth_parse(const char *source, const char *text, struct srv_auth **out, struct kerr *err)
{
	_cleanup_(auth_freep) struct srv_auth *a = auth_new();
	if (parse_into(a, source, text, SRC_FILE, err) < 0)
		return -EINVAL;
	if (a->n == 0)
		return kerr_set(err, EINVAL, "%s: no tokens (want lines TOKEN,NAME[,ROLE])",
		                source);
	a->token_file = xstrdup(source);
	*out = TAKE_PTR(a);
	return 0;
}

static int read_text(const char *path, char **text, struct kerr *err)
{
	size_t len = 0;
	if (file_read_all(path, MAX_TOKEN_FILE, text, &len, err) < 0)
		return -err->code;
	if (strlen(*text) != len) {
		free(TAKE_PTR(*text));
		return kerr_set(err, EINVAL, "%s: contains NUL bytes", path);
	}
	return 0;
}

int srv_auth_load(const char *path, struct srv_auth **out, struct kerr *err)
{
	_cleanup_free_ char *text = NULL;
	if (read_text(path, &text, err) < 0)
		return kerr_prefix(err, "token file %s", path);
	struct stat st;
	if (stat(path, &st) < 0)
		return kerr_set(err, errno, "token file %s: %s", path, strerror(errno));
	struct srv_auth *a = NULL;
	if (srv_auth_parse(path, text, &a, err) < 0)
		return -err->code;
	/* as ssh says of a private key: the tokens are the keys to the cluster */
	if (st.st_mode & 077)
		auth_warn(a, xasprintf("token file %s is accessible by others than its owner (mode "
		                       "%04o): chmod 600 it",
		                       path, (unsigned)(st.st_mode & 07777)));
	*out = a;
	return 0;
}

size_t srv_auth_nwarnings(struct srv_auth *a)
{
	return a ? a->nwarn : 0;
}

const char *srv_auth_warning(struct srv_auth *a, size_t i)
{
	return i < srv_auth_nwarnings(a) ? a->warn[i] : NULL;
}

static char *random_token(struct kerr *err)
{
	unsigned char raw[32];
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		kerr_set(err, errno ? errno : EIO, "cannot get random bytes: %s", strerror(errno));
		return NULL;
	}
	char hex[2 * sizeof raw + 1];
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	return xstrdup(hex);
}

static int new_admin_token(const char *path, char **out, struct kerr *err)
{
	_cleanup_free_ char *tok = random_token(err);
	if (!tok)
		return -err->code;
	_cleanup_free_ char *line = xasprintf("%s\n", tok);
	if (file_write_atomic(path, line, strlen(line), 0600, err) < 0)
		return kerr_prefix(err, "cannot write %s", path);
	*out = TAKE_PTR(tok);
	return 0;
}

static int load_minted(struct srv_auth *a, const char *data_dir, struct kerr *err)
{
	a->minted_path = xasprintf("%s/tokens", data_dir);
	_cleanup_free_ char *text = NULL;
	struct stat st;
	if (stat(a->minted_path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return kerr_set(err, errno, "cannot stat %s: %s", a->minted_path, strerror(errno));
	}
	if (read_text(a->minted_path, &text, err) < 0)
		return kerr_prefix(err, "cannot read %s", a->minted_path);
	return parse_into(a, a->minted_path, text, SRC_MINTED, err);
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
	_cleanup_(auth_freep) struct srv_auth *a = auth_new();
	uint8_t hash[SHA256_LEN];
	sha256(tok, strlen(tok), hash);
	auth_add(a, hash, tok, "admin", "admin", SRC_ADMIN);
	if (load_minted(a, data_dir, err) < 0)
		return -err->code;
	*out = TAKE_PTR(a);
	return 0;
}

/* Compares two digests in time independent of their contents. */
static bool ct_equal(const uint8_t *x, const uint8_t *y)
{
	uint8_t diff = 0;
	for (size_t i = 0; i < SHA256_LEN; i++)
		diff |= (uint8_t)(x[i] ^ y[i]);
	return diff == 0;
}

bool srv_auth_check(struct srv_auth *a, const char *authz, struct srv_ident *id)
{
	if (!a || !authz || strncasecmp(authz, "Bearer ", 7) != 0)
		return false;
	const char *tok = authz + 7;
	while (*tok == ' ')
		tok++;
	size_t n = strlen(tok);
	while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		n--;
	if (n == 0)
		return false;
	uint8_t hash[SHA256_LEN];
	sha256(tok, n, hash);
	pthread_rwlock_rdlock(&a->lock);
	const struct entry *found = NULL;
	for (size_t i = 0; i < a->n; i++)
		if (ct_equal(hash, a->v[i].hash) && !found)
			found = &a->v[i];
	if (found) {
		id->name = xstrdup(found->name);
		id->role = xstrdup(found->role);
	}
	pthread_rwlock_unlock(&a->lock);
	return found != NULL;
}

const char *srv_auth_admin(struct srv_auth *a)
{
	const char *t = NULL;
	if (!a)
		return NULL;
	pthread_rwlock_rdlock(&a->lock);
	for (size_t i = 0; i < a->n && !t; i++)
		if (streq(a->v[i].role, "admin") && a->v[i].token &&
		    (a->v[i].src == SRC_FILE || a->v[i].src == SRC_ADMIN))
			t = a->v[i].token; /* never revoked, so it outlives the lock */
	pthread_rwlock_unlock(&a->lock);
	return t;
}

int srv_auth_add_in_process(struct srv_auth *a, const char **token, struct kerr *err)
{
	_cleanup_free_ char *tok = random_token(err);
	if (!tok)
		return -err->code;
	uint8_t hash[SHA256_LEN];
	sha256(tok, strlen(tok), hash);
	pthread_rwlock_wrlock(&a->lock);
	auth_add(a, hash, tok, SRV_AUTH_IN_PROCESS_USER, "admin", SRC_IN_PROCESS);
	*token = a->v[a->n - 1].token; /* never revoked, so it outlives the lock */
	pthread_rwlock_unlock(&a->lock);
	return 0;
}

size_t srv_auth_count(struct srv_auth *a)
{
	if (!a)
		return 0;
	pthread_rwlock_rdlock(&a->lock);
	size_t n = a->n;
	pthread_rwlock_unlock(&a->lock);
	return n;
}

bool srv_auth_can_mint(struct srv_auth *a)
{
	return a && a->minted_path;
}

/* Writes the minted entries of a, plus extra (may be NULL) and minus the
 * one at index skip (SIZE_MAX: none), to DATA/tokens. Under the write lock. */
static int write_minted(struct srv_auth *a, const struct entry *extra, size_t skip,
                        struct kerr *err)
{
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	sbuf_puts(&b,
	          "# keel: tokens minted with `keel token create` (SHA-256 of each token),\n"
	          "# HASH,NAME,ROLE. Written by the server; revoke with `keel token revoke`.\n");
	for (size_t i = 0; i <= a->n; i++) {
		const struct entry *e = i < a->n ? &a->v[i] : extra;
		if (!e || (i < a->n && (e->src != SRC_MINTED || i == skip)))
			continue;
		sbuf_puts(&b, HASH_PREFIX);
		for (size_t k = 0; k < SHA256_LEN; k++)
			sbuf_printf(&b, "%02x", e->hash[k]);
		sbuf_printf(&b, ",%s,%s\n", e->name, e->role);
	}
	if (file_write_atomic(a->minted_path, b.data, b.len, 0600, err) < 0)
		return kerr_prefix(err, "cannot write %s", a->minted_path);
	/* the rename is durable only once the directory is on disk */
	_cleanup_free_ char *dir = xstrdup(a->minted_path);
	*strrchr(dir, '/') = '\0';
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return kerr_set(err, errno, "cannot sync %s: %s", dir, strerror(errno));
	return 0;
}

static int refuse(struct srv_auth *a, const char *what, struct kerr *err)
{
	return kerr_set(err, EPERM,
	                "cannot %s tokens: this server's tokens come from the token file %s "
	                "(--token-file), which is the only source; edit it and restart the "
	                "server",
	                what, a->token_file ? a->token_file : "(unknown)");
}

static ssize_t find_name(struct srv_auth *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (streq(a->v[i].name, name))
			return (ssize_t)i;
	return -1;
}

int srv_auth_mint(struct srv_auth *a, const char *name, const char *role, char **token,
                  struct kerr *err)
{
	if (!srv_auth_can_mint(a))
		return refuse(a, "mint", err);
	if (!role_ok(role))
		return kerr_set(err, EINVAL,
		                "spec.role: Unsupported value \"%s\": supported values: \"admin\", "
		                "\"node\", \"viewer\"",
		                role ? role : "");
	if (!name || !api_is_dns1123_subdomain(name))
		return kerr_set(err, EINVAL,
		                "metadata.name: Invalid value \"%s\": a token's name (a user's, or "
		                "a node's for role node) must be a DNS-1123 subdomain (lower-case "
		                "letters, digits, '-' and '.')",
		                name ? name : "");
	_cleanup_free_ char *tok = random_token(err);
	if (!tok)
		return -err->code;
	struct entry e = {.name = (char *)name, .role = (char *)role, .src = SRC_MINTED};
	sha256(tok, strlen(tok), e.hash);
	pthread_rwlock_wrlock(&a->lock);
	int rc = 0;
	if (find_name(a, name) >= 0)
		rc = kerr_set(err, EEXIST, "tokens \"%s\" already exists", name);
	else if (a->n >= MAX_TOKENS)
		rc = kerr_set(err, ENOSPC, "too many tokens (at most %d)", MAX_TOKENS);
	else if ((rc = write_minted(a, &e, SIZE_MAX, err)) == 0)
		auth_add(a, e.hash, NULL, name, role, SRC_MINTED);
	pthread_rwlock_unlock(&a->lock);
	if (rc < 0)
		return rc;
	*token = TAKE_PTR(tok);
	return 0;
}

int srv_auth_revoke(struct srv_auth *a, const char *name, struct kerr *err)
{
	if (!srv_auth_can_mint(a))
		return refuse(a, "revoke", err);
	pthread_rwlock_wrlock(&a->lock);
	int rc = 0;
	ssize_t i = find_name(a, name);
	if (i < 0)
		rc = kerr_set(err, ENOENT, "tokens \"%s\" not found", name);
	else if (a->v[i].src == SRC_IN_PROCESS)
		rc = kerr_set(err, EPERM,
		              "token \"%s\" is the in-process controllers' own (in memory only, "
		              "new at every start); it cannot be revoked",
		              name);
	else if (a->v[i].src != SRC_MINTED)
		rc = kerr_set(err, EPERM,
		              "token \"%s\" is the server's own (DATA/admin.token), not a minted "
		              "one; it cannot be revoked (replace the file and restart instead)",
		              name);
	else if ((rc = write_minted(a, NULL, (size_t)i, err)) == 0) {
		entry_free(&a->v[i]);
		memmove(&a->v[i], &a->v[i + 1], (a->n - (size_t)i - 1) * sizeof *a->v);
		a->n--;
	}
	pthread_rwlock_unlock(&a->lock);
	return rc;
}

json_t *srv_auth_list(struct srv_auth *a)
{
	static const char *const src[] = {"token-file", "admin.token", "minted", "in-process"};
	json_t *items = json_array();
	pthread_rwlock_rdlock(&a->lock);
	for (size_t i = 0; i < a->n; i++)
		json_array_append_new(items, json_pack("{s:s, s:s, s:{s:s}, s:{s:s}, s:{s:s}}",
		                                       "apiVersion", "keel/v1", "kind", "Token",
		                                       "metadata", "name", a->v[i].name, "spec",
		                                       "role", a->v[i].role, "status", "source",
		                                       src[a->v[i].src]));
	pthread_rwlock_unlock(&a->lock);
	return items;
}
