/*
 * api/status — the Kubernetes `Status` error object, and the one table that
 * turns keel's errno values into HTTP codes and Status reasons (kerr.h lists
 * them). Pure, thread-safe.
 */
#pragma once

#include <jansson.h>

struct kerr;

/* errno value (positive or negative) -> HTTP status; *reason (static) gets
 * the Status reason ("NotFound", "Conflict", ...). */
int api_http_status(int errcode, const char **reason);
/* HTTP status -> errno value (for the client side). 409 gives ESTALE;
 * other 4xx not in the table give EBADMSG, other 5xx EIO, 2xx 0. */
int api_errno_from_http(int http_code);
/* A Status object (borrowed) -> errno: its reason first (so a 409
 * AlreadyExists gives EEXIST and a 409 Conflict ESTALE), else its code. */
int api_errno_from_status(json_t *status);

/* {"kind":"Status","apiVersion":"v1","status":"Failure","code":C,
 *  "reason":R,"message":M,"details":{"kind":K,"name":N,"causes":[...]}}.
 * causes is stolen (may be NULL); kind and name may be NULL. Owned result. */
json_t *api_status_new(int http_code, const char *reason, const char *message,
                       json_t *causes, const char *kind, const char *name);
/* The Status for err (code mapped by api_http_status, causes copied). */
json_t *api_status_from_kerr(const struct kerr *err, const char *kind, const char *name);
/* {"kind":"Status","status":"Success",...} as DELETE answers. */
json_t *api_status_success(const char *kind, const char *name);
