/*
 * kerr — the one error object of keel.
 *
 * A function that can fail returns a negative errno value (or NULL) and fills
 * a `struct kerr *err` passed as its last parameter. Callers may add context
 * with kerr_prefix(); the boundary (HTTP handler, controller loop, main)
 * reports it once. `err` may always be NULL when the caller does not care.
 *
 * errno values used across keel, and what they mean at the API edge
 * (the one errno -> HTTP table is api/status.c):
 *   ENOENT NotFound 404       EEXIST AlreadyExists 409   ESTALE Conflict 409
 *   EINVAL Invalid 422        EBADMSG BadRequest 400     EACCES Unauthorized 401
 *   EPERM Forbidden 403       ERANGE Gone 410 (compacted revision)
 *   E2BIG RequestEntityTooLarge 413   ENOSPC InsufficientStorage 507
 *   EOPNOTSUPP MethodNotAllowed 405   ETIMEDOUT Timeout 504
 *   EBUSY ServiceUnavailable/TooManyRequests 429   anything else InternalError 500
 */
#pragma once

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

struct kerr {
	int code;       /* positive errno value; 0 when no error is set */
	char *msg;      /* owned; human-readable, one line */
	json_t *causes; /* owned; NULL or a JSON array of
	                   {"field": PATH, "reason": R, "message": M} */
};

#define KERR_INIT {0, NULL, NULL}

/* Sets err (replacing what was there) and returns -code. err may be NULL. */
int kerr_set(struct kerr *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int kerr_setv(struct kerr *err, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Prepends "CONTEXT: " to err->msg. Returns -err->code (or -EIO if unset). */
int kerr_prefix(struct kerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends one field cause; sets err->code to EINVAL if no code is set yet.
 * field and reason are copied. */
void kerr_add_cause(struct kerr *err, const char *field, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sets EINVAL for an unknown command-line flag of command cmd ("keel
 * agent"): 'unknown flag "--WORD" for "CMD"; did you mean "--X"?' with the
 * closest of names (str_closest), else '... (see CMD --help)'. Returns
 * -EINVAL. */
int kerr_unknown_flag(struct kerr *err, const char *cmd, const char *word,
                      const char *const *names, size_t n);

/* Frees msg and causes and zeroes err. Accepts NULL. */
void kerr_clear(struct kerr *err);

/* Moves src into dst (dst cleared first); src is left empty. */
void kerr_move(struct kerr *dst, struct kerr *src);

/* err->msg or "unknown error"; never NULL. */
const char *kerr_msg(const struct kerr *err);

static inline void kerr_clearp(struct kerr *err) { kerr_clear(err); }
#define _cleanup_kerr_ __attribute__((cleanup(kerr_clearp)))
