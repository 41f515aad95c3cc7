/*
 * server/auth — bearer tokens and who they belong to.
 *
 * Sources, in one set:
 *   - a token file (`--token-file`: lines TOKEN,NAME[,ROLE]; ROLE
 *     admin|viewer|node, default admin (with a warning); blank lines, #
 *     comments and a UTF-8 byte-order mark skipped; TOKEN printable ASCII;
 *     NAME UTF-8 with no control character, '"' or '\\'). With a token file, the file is the only
 * source: minting and revoking are refused (-EPERM), since the operator owns it.
 *   - without one: DATA/admin.token (32 random bytes as hex, mode 0600,
 *     created on first start, name "admin"; each server its own), plus the
 *     tokens minted through the API (srv_auth_mint), kept in the store
 *     under "tokens//NAME" (srv_auth_use_store), so shared by every server
 *     on one store. (Before, in DATA/tokens: imported once.)
 * Whatever the source, the server adds one more entry for what runs in
 * its own process (srv_auth_add_in_process): user "system:controllers",
 * role admin, a random token that lives in memory only.
 * A TOKEN field of the form "sha256:HEX" (64 hex digits) is the hash of
 * the token rather than the token; the store holds only such hashes, so
 * a copy of the data directory (or of etcd) does not give away the minted
 * tokens.
 * What the roles may do is server/authz.h's.
 *
 * Threading: a set may be shared by every HTTP thread: reads (check,
 * list) take a read lock, mint and revoke a write lock, and nothing a
 * reader gets back points into the set (except srv_auth_admin's token,
 * which is never removed).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct kerr;
struct srv_auth;
struct store;
struct store_event;

/* Who a valid token belongs to. Owned strings: srv_ident_clear. */
struct srv_ident {
	char *name;
	char *role; /* "admin", "viewer" or "node" */
};
void srv_ident_clear(struct srv_ident *id);

/* Parses token-file text. source names the file in messages
 * ("tokens.csv:3: unknown role \"root\" (admin, viewer or node)").
 * Returns 0 and an owned set, or -EINVAL (bad line, duplicate token, no
 * token at all). */
int srv_auth_parse(const char *source, const char *text, struct srv_auth **out, struct kerr *err);
/* Reads and parses a token file; a file whose mode lets others than its
 * owner in (mode & 077) is loaded with a warning. */
int srv_auth_load(const char *path, struct srv_auth **out, struct kerr *err);
/* The warnings from loading (a line without a role, a token file others
 * can read), one message each ("t:2: no role for \"alice\": ..."), for
 * the server to log at start. Borrowed, valid while a lives; i past the
 * count gives NULL. */
size_t srv_auth_nwarnings(struct srv_auth *a);
const char *srv_auth_warning(struct srv_auth *a, size_t i);
/* Reads DIR/admin.token, creating it first if absent, and DIR/tokens (the
 * minted tokens of a data directory from before they were kept in the
 * store) when present. Returns 0 and a set that can mint once given its
 * store (srv_auth_use_store), or -errno (-EINVAL naming DIR/tokens:LINE
 * for a bad line). */
int srv_auth_admin_token(const char *data_dir, struct srv_auth **out, struct kerr *err);
void srv_auth_free(struct srv_auth *a);

/* Checks an Authorization header value ("Bearer TOKEN", scheme
 * case-insensitive). Returns true and fills *id (owned copies) when the
 * token is known; false (id untouched) otherwise. Takes time independent
 * of where the presented token differs from the known ones: it is hashed
 * and every known hash is compared in full. */
bool srv_auth_check(struct srv_auth *a, const char *authorization, struct srv_ident *id);
/* The first admin token given in clear (token file or admin.token;
 * borrowed, valid while a lives), for DATA/config; NULL if none. */
const char *srv_auth_admin(struct srv_auth *a);
size_t srv_auth_count(struct srv_auth *a);

/* The user of the in-process identity. Not a DNS-1123 name, so no minted
 * token can take it; server/watch.c exempts it from
 * --max-watchers-per-client. */
#define SRV_AUTH_IN_PROCESS_USER "system:controllers"
/* Adds the identity of the server's in-process clients (its controllers,
 * keel up's agent and manifest sync): user SRV_AUTH_IN_PROCESS_USER, role
 * admin, a fresh random token that is never written anywhere (not
 * srv_auth_admin's, so not in DATA/config). It cannot be revoked. Returns 0
 * and *token (borrowed, valid while a lives), or -errno when no random
 * bytes could be had. Call once, before the set is shared. */
int srv_auth_add_in_process(struct srv_auth *a, const char **token, struct kerr *err);

/* Whether tokens can be minted here (false with a token file). The
 * message for the refusal is srv_auth_mint's. */
bool srv_auth_can_mint(struct srv_auth *a);

/* Keeps the minted tokens in s from now on (a set that cannot mint: no-op,
 * 0). Imports what DIR/tokens held into s (create; a name the store has
 * already keeps the store's, with a warning), renames the file
 * DIR/tokens.imported (fsynced), then loads every "tokens//NAME" of s.
 * Call once, after the commit hook feeds srv_auth_commit_hook (so no
 * change between the list and the hook is missed) and before the set is
 * used for minting. Store objects: {"kind":"Token","metadata":{"name"},
 * "spec":{"role","tokenHash":"sha256:HEX"}}; one that is not is ignored
 * with a warning. Returns 0 or -errno from the store. */
int srv_auth_use_store(struct srv_auth *a, struct store *s, struct kerr *err);
/* For the store's commit hook: applies a change of "tokens//NAME" (other
 * keys are ignored) to the set. Quick, never blocks on anything but the
 * set's lock. Changes are applied by revision per name, so one seen twice
 * or late (the writer's own answer and the hook) changes nothing. When it
 * removes a live token, the on_revoke callback gets the name, on the
 * set's own thread. An event with an empty key (the etcd backend's
 * STORE_RESYNC: its watch lost changes) makes that thread reread the
 * store's tokens (every second until the store answers); a token the
 * store no longer has is then revoked, on_revoke included. */
void srv_auth_commit_hook(struct srv_auth *a, const struct store_event *ev);
/* Starts the thread that calls fn(ud, name) for each token that a change
 * from the store revoked (to end that user's watches). Returns 0 or
 * -errno. Stop it (srv_auth_stop_revokes, also done by srv_auth_free)
 * before what fn uses goes. */
typedef void (*srv_auth_revoked_fn)(void *ud, const char *name);
int srv_auth_on_revoke(struct srv_auth *a, srv_auth_revoked_fn fn, void *ud, struct kerr *err);
void srv_auth_stop_revokes(struct srv_auth *a);

/* Mints a token for name with role: creates "tokens//NAME" in the store
 * (durable when it returns) and then adds it to the set. Returns 0 and
 * the token (owned: it is nowhere else in clear), or: -EPERM (tokens come
 * from a token file), -EINVAL (role not admin|viewer|node, or name not a
 * DNS-1123 subdomain, or no store), -EEXIST (a token with that name
 * exists, in the store or the server's own), -errno from the store (the
 * set unchanged). */
int srv_auth_mint(struct srv_auth *a, const char *name, const char *role, char **token,
                  struct kerr *err);
/* Revokes the minted token of name: deletes "tokens//NAME" from the
 * store, then from the set. Returns 0, -ENOENT (no token of that name in
 * the store), -EPERM (it is not a minted token: the token file's or
 * admin.token's), -errno from the store. */
int srv_auth_revoke(struct srv_auth *a, const char *name, struct kerr *err);
/* The tokens, as Token objects without the secret:
 * [{"metadata":{"name":..},"spec":{"role":..},"status":{"source":
 * "token-file"|"admin.token"|"minted"}}]. Owned. */
json_t *srv_auth_list(struct srv_auth *a);
