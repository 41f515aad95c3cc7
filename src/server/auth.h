/*
 * server/auth — bearer tokens.
 *
 * Tokens come from a token file (`--token-file`: lines TOKEN,NAME[,ROLE];
 * ROLE admin|viewer|node, default admin; blank lines and # comments
 * skipped) or, without one, from DATA/admin.token, created on first start
 * (32 random bytes as hex, mode 0600) and reused after. Roles are recorded
 * but not enforced yet: every valid token acts as admin.
 *
 * A token set is immutable once built and may be shared between threads.
 */
#pragma once

#include <stddef.h>

struct kerr;
struct srv_auth;

struct srv_token {
	const char *token;
	const char *name;
	const char *role; /* "admin", "viewer" or "node" */
};

/* Parses token-file text. source names the file in messages
 * ("tokens.csv:3: unknown role \"root\" (admin, viewer or node)").
 * Returns 0 and an owned set, or -EINVAL (bad line, duplicate token, no
 * token at all). */
int srv_auth_parse(const char *source, const char *text, struct srv_auth **out, struct kerr *err);
/* Reads and parses a token file. */
int srv_auth_load(const char *path, struct srv_auth **out, struct kerr *err);
/* Reads DIR/admin.token, creating it first if absent. Returns 0 and a set
 * holding that one admin token (name "admin"), or -errno. */
int srv_auth_admin_token(const char *data_dir, struct srv_auth **out, struct kerr *err);
void srv_auth_free(struct srv_auth *a);

/* Checks an Authorization header value ("Bearer TOKEN", scheme
 * case-insensitive). Returns the matching token (borrowed from a) or NULL.
 * Each comparison takes time independent of where the strings differ. */
const struct srv_token *srv_auth_check(const struct srv_auth *a, const char *authorization);
/* The first admin token (borrowed), for DATA/config; NULL if none. */
const char *srv_auth_admin(const struct srv_auth *a);
size_t srv_auth_count(const struct srv_auth *a);
