/*
 * server/auth — bearer tokens from a token file, or from DATA/admin.token
 * and the tokens minted through the API (in the store).
 *
 * Every entry keeps the SHA-256 of its token; a presented token is hashed
 * once and compared with every known hash in full (the loop does not stop
 * at the first match), so timing reveals neither a prefix nor which entry
 * matched. Tokens are few (an admin, a handful of users and nodes), so the
 * linear scan is the cheap part of a request.
 *
 * The set changes at run time (mint, revoke) while MHD's worker threads
 * check tokens, hence the rwlock. Minted tokens live in the store (key
 * "tokens//NAME": name, role and the token's SHA-256, never the token), so
 * every server sharing a store (etcd) knows them: a mint or revoke is a
 * durable store write first and then made in this set; the commit hook
 * brings the other servers' changes in (srv_auth_commit_hook). A data
 * directory from before keeps its DATA/tokens: imported into the store at
 * the first start (srv_auth_use_store), then renamed DATA/tokens.imported.
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
#include <time.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"
#include "store/store.h"

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
	uint64_t rev; /* SRC_MINTED: the store revision it was put at (0: from
	                 DATA/tokens, not yet merged with the store) */
};

/* A minted name the store deleted, and when: a change older than it (a
 * late mint answer, a list read before it) does not bring it back. */
struct tomb {
	char *name;
	uint64_t rev;
};

struct srv_auth {
	pthread_rwlock_t lock;
	struct entry *v;
	size_t n;
	char *minted_path; /* DATA/tokens; NULL with a token file (no minting) */
	char *token_file;  /* for the refusal's message */
	char **warn;       /* from loading, for the server to log at start */
	size_t nwarn;
	struct store *store; /* where minted tokens live (srv_auth_use_store) */
	struct tomb *tombs;
	size_t ntombs;
	/* names whose live token the commit hook removed, for on_revoke,
	 * which runs on its own thread (the hook must not wait on it) */
	pthread_mutex_t rq_mu;
	pthread_cond_t rq_cond;
	char **rq;
	size_t nrq;
	bool rq_quit, rq_running;
	bool resync; /* the store lost changes: reread the tokens (on the thread) */
	pthread_t rq_thread;
	srv_auth_revoked_fn on_revoke;
	void *on_revoke_ud;
};

static struct srv_auth *auth_new(void)
{
	struct srv_auth *a = xcalloc(1, sizeof *a);
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->rq_mu, NULL);
	pthread_cond_init(&a->rq_cond, NULL);
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
	srv_auth_stop_revokes(a);
	for (size_t i = 0; i < a->n; i++)
		entry_free(&a->v[i]);
	for (size_t i = 0; i < a->ntombs; i++)
		free(a->tombs[i].name);
	free(a->tombs);
	for (size_t i = 0; i < a->nrq; i++)
		free(a->rq[i]);
	free(a->rq);
	pthread_mutex_destroy(&a->rq_mu);
	pthread_cond_destroy(&a->rq_cond);
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
	e->rev = 0;
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

static void hash_hex(const uint8_t hash[SHA256_LEN], char out[sizeof HASH_PREFIX + 2 * SHA256_LEN])
{
	memcpy(out, HASH_PREFIX, strlen(HASH_PREFIX));
	for (size_t k = 0; k < SHA256_LEN; k++)
		snprintf(out + strlen(HASH_PREFIX) + 2 * k, 3, "%02x", hash[k]);
}

/* ---- the minted tokens in the store ---- */

static ssize_t find_minted(struct srv_auth *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].src == SRC_MINTED && streq(a->v[i].name, name))
			return (ssize_t)i;
	return -1;
}

static void remove_at(struct srv_auth *a, size_t i)
{
	entry_free(&a->v[i]);
	memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof *a->v);
	a->n--;
}

static struct tomb *find_tomb(struct srv_auth *a, const char *name)
{
	for (size_t i = 0; i < a->ntombs; i++)
		if (streq(a->tombs[i].name, name))
			return &a->tombs[i];
	return NULL;
}

static void set_tomb(struct srv_auth *a, const char *name, uint64_t rev)
{
	struct tomb *t = find_tomb(a, name);
	if (!t) {
		if (a->ntombs >= MAX_TOKENS) { /* forget the oldest */
			free(a->tombs[0].name);
			memmove(&a->tombs[0], &a->tombs[1], (a->ntombs - 1) * sizeof *a->tombs);
			a->ntombs--;
		}
		a->tombs = xrealloc(a->tombs, (a->ntombs + 1) * sizeof *a->tombs);
		t = &a->tombs[a->ntombs++];
		t->name = xstrdup(name);
	}
	t->rev = rev;
}

/* Applies one change of the store's "tokens//NAME" at rev, under the write
 * lock: a put (role and hash) or a delete (role NULL). Changes may arrive
 * twice and out of order (the writer's own answer, the commit hook, a
 * list), so each name keeps the revision it was last changed at and an
 * older change is ignored. Returns true when it removed a live token. */
static bool apply_locked(struct srv_auth *a, const char *name, const char *role,
                         const uint8_t *hash, uint64_t rev)
{
	ssize_t i = find_minted(a, name);
	struct tomb *t = find_tomb(a, name);
	if ((i >= 0 && a->v[i].rev >= rev && a->v[i].rev) || (t && t->rev >= rev))
		return false;
	if (!role) {
		set_tomb(a, name, rev);
		if (i < 0)
			return false;
		remove_at(a, (size_t)i);
		return true;
	}
	if (i >= 0) {
		free(a->v[i].role);
		a->v[i].role = xstrdup(role);
		memcpy(a->v[i].hash, hash, SHA256_LEN);
	} else if (a->n < MAX_TOKENS) {
		auth_add(a, hash, NULL, name, role, SRC_MINTED);
		i = (ssize_t)a->n - 1;
	} else {
		return false;
	}
	a->v[i].rev = rev;
	return false;
}

/* A stored Token: {"apiVersion":"keel/v1","kind":"Token","metadata":
 * {"name":N,"resourceVersion":R},"spec":{"role":R,"tokenHash":"sha256:HEX"}}.
 * Returns its parts (borrowed) or false when it is not one. */
static bool stored_token(json_t *obj, const char **name, const char **role, uint8_t *hash,
                         uint64_t *rev)
{
	*name = json_string_value(api_obj_get_path(obj, "metadata.name"));
	*role = json_string_value(api_obj_get_path(obj, "spec.role"));
	const char *h = json_string_value(api_obj_get_path(obj, "spec.tokenHash"));
	const char *rv = json_string_value(api_obj_get_path(obj, "metadata.resourceVersion"));
	if (!*name || !api_is_dns1123_subdomain(*name) || !*role || !role_ok(*role) || !h ||
	    !parse_hash(h, hash) || !rv)
		return false;
	char *end = NULL;
	*rev = strtoull(rv, &end, 10);
	return end && !*end && *rev > 0;
}

static void queue_revoked(struct srv_auth *a, const char *name)
{
	pthread_mutex_lock(&a->rq_mu);
	if (a->rq_running) {
		a->rq = xrealloc(a->rq, (a->nrq + 1) * sizeof *a->rq);
		a->rq[a->nrq++] = xstrdup(name);
		pthread_cond_signal(&a->rq_cond);
	}
	pthread_mutex_unlock(&a->rq_mu);
}

void srv_auth_commit_hook(struct srv_auth *a, const struct store_event *ev)
{
	/* a->store is not read here: the hook runs before srv_auth_use_store
	 * has set it, and applying a change early is harmless */
	if (!srv_auth_can_mint(a))
		return;
	if (ev->type == STORE_RESYNC) {
		/* no change but a gap (the etcd backend's watch lost changes):
		 * reread them all, on the thread */
		pthread_mutex_lock(&a->rq_mu);
		a->resync = true;
		pthread_cond_signal(&a->rq_cond);
		pthread_mutex_unlock(&a->rq_mu);
		return;
	}
	if (!strstartswith(ev->key, "tokens/"))
		return;
	const char *name = NULL, *role = NULL;
	uint8_t hash[SHA256_LEN];
	uint64_t rev = 0;
	if (!ev->object || !stored_token(ev->object, &name, &role, hash, &rev)) {
		/* not one of ours: the name is the key's last part */
		const char *slash = strrchr(ev->key, '/');
		name = slash ? slash + 1 : ev->key;
		if (ev->type != STORE_DELETED)
			return;
	}
	pthread_rwlock_wrlock(&a->lock);
	bool ended = apply_locked(a, name, ev->type == STORE_DELETED ? NULL : role, hash, ev->rev);
	pthread_rwlock_unlock(&a->lock);
	if (ended)
		queue_revoked(a, name);
}

static int load_store(struct srv_auth *a, bool at_start, struct kerr *err);

/* A resync: the list merged with the set (what it lacks is revoked); a
 * store that cannot answer now is tried again every second. */
static void resync(struct srv_auth *a)
{
	a->resync = false;
	struct store *st = a->store;
	pthread_mutex_unlock(&a->rq_mu);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int rc = st ? load_store(a, false, &err) : 0;
	if (rc < 0)
		log_warn("tokens: %s (trying again in 1 s)", kerr_msg(&err));
	else
		log_info("tokens: reread from the store (its watch had lost changes)");
	pthread_mutex_lock(&a->rq_mu);
	if (rc < 0 && !a->rq_quit) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&a->rq_cond, &a->rq_mu, &until);
		a->resync = true;
	}
}

static void *revoker_main(void *arg)
{
	struct srv_auth *a = arg;
	pthread_mutex_lock(&a->rq_mu);
	for (;;) {
		while (!a->nrq && !a->resync && !a->rq_quit)
			pthread_cond_wait(&a->rq_cond, &a->rq_mu);
		if (a->resync && !a->rq_quit) {
			resync(a);
			continue;
		}
		if (!a->nrq)
			break;
		char *name = a->rq[0];
		memmove(&a->rq[0], &a->rq[1], (a->nrq - 1) * sizeof *a->rq);
		a->nrq--;
		pthread_mutex_unlock(&a->rq_mu);
		log_info("token \"%s\" was revoked (seen in the store)", name);
		a->on_revoke(a->on_revoke_ud, name);
		free(name);
		pthread_mutex_lock(&a->rq_mu);
	}
	pthread_mutex_unlock(&a->rq_mu);
	return NULL;
}

int srv_auth_on_revoke(struct srv_auth *a, srv_auth_revoked_fn fn, void *ud, struct kerr *err)
{
	a->on_revoke = fn;
	a->on_revoke_ud = ud;
	a->rq_quit = false;
	int rc = pthread_create(&a->rq_thread, NULL, revoker_main, a);
	if (rc)
		return kerr_set(err, rc, "cannot start the token revoker thread: %s", strerror(rc));
	pthread_mutex_lock(&a->rq_mu);
	a->rq_running = true;
	pthread_mutex_unlock(&a->rq_mu);
	return 0;
}

void srv_auth_stop_revokes(struct srv_auth *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->rq_mu);
	bool running = a->rq_running;
	a->rq_running = false;
	a->rq_quit = true;
	pthread_cond_signal(&a->rq_cond);
	pthread_mutex_unlock(&a->rq_mu);
	if (running)
		pthread_join(a->rq_thread, NULL);
}

static json_t *token_object(const char *name, const char *role, const uint8_t hash[SHA256_LEN])
{
	char hex[sizeof HASH_PREFIX + 2 * SHA256_LEN];
	hash_hex(hash, hex);
	return json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s}}", "apiVersion", "keel/v1", "kind",
	                 "Token", "metadata", "name", name, "spec", "role", role, "tokenHash", hex);
}

struct create_ctx {
	const char *name, *role;
	const uint8_t *hash;
};

/* Creates tokens//NAME; -EEXIST when the name is taken. */
static int create_fn(void *ctx, json_t *current, uint64_t rev, json_t **next, struct kerr *err)
{
	struct create_ctx *c = ctx;
	(void)rev;
	if (current)
		return kerr_set(err, EEXIST, "tokens \"%s\" already exists", c->name);
	*next = token_object(c->name, c->role, c->hash);
	return STORE_WRITE;
}

static int delete_fn(void *ctx, json_t *current, uint64_t rev, json_t **next, struct kerr *err)
{
	(void)rev;
	(void)next;
	if (!current)
		return kerr_set(err, ENOENT, "tokens \"%s\" not found", (const char *)ctx);
	return STORE_DELETE;
}

/* Lists the store's tokens and merges them: a minted token put at or
 * before the list's revision and absent from it was deleted. */
static int load_store(struct srv_auth *a, bool at_start, struct kerr *err)
{
	_cleanup_json_ json_t *items = NULL;
	_cleanup_free_ char *next = NULL;
	uint64_t lrev = 0;
	if (store_list(a->store, "tokens/", NULL, 0, NULL, NULL, &items, &lrev, &next, err) < 0)
		return kerr_prefix(err, "cannot read the tokens from the store");
	char **gone = NULL;
	size_t ngone = 0;
	pthread_rwlock_wrlock(&a->lock);
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		const char *name, *role;
		uint8_t hash[SHA256_LEN];
		uint64_t rev;
		if (!stored_token(it, &name, &role, hash, &rev)) {
			const char *n = json_string_value(api_obj_get_path(it, "metadata.name"));
			char *m = xasprintf("the store's tokens//%s is not a valid Token "
			                    "(metadata.name, spec.role, spec.tokenHash): ignored",
			                    n ? n : "?");
			if (at_start) {
				auth_warn(a, m);
			} else {
				log_warn("%s", m);
				free(m);
			}
			continue;
		}
		apply_locked(a, name, role, hash, rev);
	}
	for (size_t k = 0; k < a->n;) {
		struct entry *e = &a->v[k];
		bool listed = false;
		json_array_foreach(items, i, it)
		{
			const char *n = json_string_value(api_obj_get_path(it, "metadata.name"));
			if (n && streq(n, e->name))
				listed = true;
		}
		if (e->src == SRC_MINTED && e->rev <= lrev && !listed) {
			set_tomb(a, e->name, lrev);
			gone = xrealloc(gone, (ngone + 1) * sizeof *gone);
			gone[ngone++] = xstrdup(e->name);
			remove_at(a, k);
		} else {
			k++;
		}
	}
	pthread_rwlock_unlock(&a->lock);
	for (size_t k = 0; k < ngone; k++) {
		queue_revoked(a, gone[k]);
		free(gone[k]);
	}
	free(gone);
	return 0;
}

/* Moves what DATA/tokens held (loaded as minted entries of revision 0)
 * into the store, once: then the file is renamed DATA/tokens.imported. */
static int import_file(struct srv_auth *a, struct kerr *err)
{
	struct stat st;
	if (stat(a->minted_path, &st) < 0)
		return 0;
	/* a copy: the commit hook changes the set while the store is written */
	pthread_rwlock_rdlock(&a->lock);
	size_t nold = 0;
	struct entry *old = xcalloc(a->n + 1, sizeof *old);
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].src == SRC_MINTED && !a->v[i].rev) {
			old[nold] = a->v[i];
			old[nold].name = xstrdup(a->v[i].name);
			old[nold].role = xstrdup(a->v[i].role);
			old[nold++].token = NULL;
		}
	pthread_rwlock_unlock(&a->lock);
	size_t imported = 0;
	int rc = 0;
	for (size_t i = 0; i < nold && rc == 0; i++) {
		struct entry *e = &old[i];
		_cleanup_free_ char *key = store_key("tokens", NULL, e->name);
		struct create_ctx c = {.name = e->name, .role = e->role, .hash = e->hash};
		_cleanup_kerr_ struct kerr e2 = KERR_INIT;
		int r = store_update(a->store, key, create_fn, &c, NULL, NULL, &e2);
		if (r == -EEXIST)
			auth_warn(a, xasprintf("%s: token \"%s\" not imported: the store has a "
			                       "token of that name already (it is the one kept)",
			                       a->minted_path, e->name));
		else if (r < 0)
			rc = kerr_set(err, -r, "cannot import %s into the store: %s",
			              a->minted_path, kerr_msg(&e2));
		else
			imported++;
	}
	for (size_t i = 0; i < nold; i++)
		entry_free(&old[i]);
	free(old);
	if (rc < 0)
		return rc;
	_cleanup_free_ char *to = xasprintf("%s.imported", a->minted_path);
	if (rename(a->minted_path, to) < 0)
		return kerr_set(err, errno, "cannot rename %s to %s: %s", a->minted_path, to,
		                strerror(errno));
	_cleanup_free_ char *dir = xstrdup(a->minted_path);
	*strrchr(dir, '/') = '\0';
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return kerr_set(err, errno, "cannot sync %s: %s", dir, strerror(errno));
	auth_warn(a, xasprintf("imported %zu minted token%s from %s into the store; the file "
	                       "is now %s and is not read again",
	                       imported, imported == 1 ? "" : "s", a->minted_path, to));
	return 0;
}

int srv_auth_use_store(struct srv_auth *a, struct store *s, struct kerr *err)
{
	if (!srv_auth_can_mint(a))
		return 0;
	pthread_mutex_lock(&a->rq_mu); /* the thread reads it for a resync */
	a->store = s;
	pthread_mutex_unlock(&a->rq_mu);
	int rc = import_file(a, err);
	if (rc < 0)
		return rc;
	return load_store(a, true, err);
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

static int no_store(struct kerr *err)
{
	return kerr_set(err, EINVAL, "the token set has no store (srv_auth_use_store)");
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
	if (!a->store)
		return no_store(err);
	_cleanup_free_ char *tok = random_token(err);
	if (!tok)
		return -err->code;
	uint8_t hash[SHA256_LEN];
	sha256(tok, strlen(tok), hash);
	/* the server's own names (admin) are not in the store */
	pthread_rwlock_rdlock(&a->lock);
	ssize_t i = find_name(a, name);
	bool own = i >= 0 && a->v[i].src != SRC_MINTED;
	size_t n = a->n;
	pthread_rwlock_unlock(&a->lock);
	if (own)
		return kerr_set(err, EEXIST, "tokens \"%s\" already exists", name);
	if (n >= MAX_TOKENS)
		return kerr_set(err, ENOSPC, "too many tokens (at most %d)", MAX_TOKENS);
	_cleanup_free_ char *key = store_key("tokens", NULL, name);
	struct create_ctx c = {.name = name, .role = role, .hash = hash};
	uint64_t rev = 0;
	int rc = store_update(a->store, key, create_fn, &c, NULL, &rev, err);
	if (rc < 0)
		return rc;
	/* at once here, whether or not the commit hook has run yet */
	pthread_rwlock_wrlock(&a->lock);
	apply_locked(a, name, role, hash, rev);
	pthread_rwlock_unlock(&a->lock);
	*token = TAKE_PTR(tok);
	return 0;
}

int srv_auth_revoke(struct srv_auth *a, const char *name, struct kerr *err)
{
	if (!srv_auth_can_mint(a))
		return refuse(a, "revoke", err);
	pthread_rwlock_rdlock(&a->lock);
	ssize_t i = find_name(a, name);
	enum source src = i >= 0 ? a->v[i].src : SRC_MINTED;
	pthread_rwlock_unlock(&a->lock);
	if (src == SRC_IN_PROCESS)
		return kerr_set(err, EPERM,
		                "token \"%s\" is the in-process controllers' own (in memory only, "
		                "new at every start); it cannot be revoked",
		                name);
	if (src != SRC_MINTED)
		return kerr_set(err, EPERM,
		                "token \"%s\" is the server's own (DATA/admin.token), not a minted "
		                "one; it cannot be revoked (replace the file and restart instead)",
		                name);
	if (!a->store)
		return no_store(err);
	/* the store decides: a token minted on another server may not have
	 * reached this one's set yet */
	_cleanup_free_ char *key = store_key("tokens", NULL, name);
	uint64_t rev = 0;
	int rc = store_update(a->store, key, delete_fn, (void *)name, NULL, &rev, err);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&a->lock);
	apply_locked(a, name, NULL, NULL, rev);
	pthread_rwlock_unlock(&a->lock);
	return 0;
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
