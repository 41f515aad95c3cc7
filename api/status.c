/*
 * api/status — the errno -> HTTP table and Kubernetes Status objects.
 *
 * keel carries errno values up through every library (kerr.h); this file is
 * the one place they become HTTP codes and Status reasons, and — for the
 * client — the one place they turn back. 409 is ambiguous (Conflict vs
 * AlreadyExists), so api_errno_from_status() reads the reason first.
 */
#include "api/status.h"

#include <errno.h>

#include "common/kerr.h"
#include "common/util.h"

static const struct {
	int err;
	int http;
	const char *reason;
} table[] = {
    {EINVAL, 422, "Invalid"},
    {EBADMSG, 400, "BadRequest"},
    {ESTALE, 409, "Conflict"},
    {EEXIST, 409, "AlreadyExists"},
    {ENOENT, 404, "NotFound"},
    {EACCES, 401, "Unauthorized"},
    {EPERM, 403, "Forbidden"},
    {ERANGE, 410, "Gone"},
    {E2BIG, 413, "RequestEntityTooLarge"},
    {ENOSPC, 507, "InsufficientStorage"},
    {EOPNOTSUPP, 405, "MethodNotAllowed"},
    {ETIMEDOUT, 504, "Timeout"},
    {EBUSY, 429, "TooManyRequests"},
};

int api_http_status(int errcode, const char **reason)
{
	int e = errcode < 0 ? -errcode : errcode;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		if (table[i].err == e) {
			if (reason)
				*reason = table[i].reason;
			return table[i].http;
		}
	}
	if (reason)
		*reason = "InternalError";
	return 500;
}

int api_errno_from_http(int http_code)
{
	/* First match wins: 409 -> ESTALE (Conflict), as the table lists it first. */
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].http == http_code)
			return table[i].err;
	if (http_code == 503)
		return EBUSY;
	if (http_code >= 200 && http_code < 300)
		return 0;
	if (http_code >= 400 && http_code < 500)
		return EBADMSG;
	return EIO;
}

int api_errno_from_status(json_t *status)
{
	const char *reason = json_string_value(json_object_get(status, "reason"));
	for (size_t i = 0; reason && i < ARRAY_SIZE(table); i++)
		if (streq(table[i].reason, reason))
			return table[i].err;
	if (streq(reason, "ServiceUnavailable"))
		return EBUSY;
	json_t *code = json_object_get(status, "code");
	if (json_is_integer(code))
		return api_errno_from_http((int)json_integer_value(code));
	return EIO;
}

json_t *api_status_new(int http_code, const char *reason, const char *message, json_t *causes,
                       const char *kind, const char *name)
{
	json_t *st =
	    json_pack("{s:s, s:s, s:s, s:{}, s:s, s:s, s:i}", "kind", "Status", "apiVersion", "v1",
	              "status", http_code < 400 ? "Success" : "Failure", "metadata", "message",
	              message ? message : "", "reason", reason ? reason : "", "code", http_code);
	json_t *details = json_object();
	if (kind)
		json_object_set_new(details, "kind", json_string(kind));
	if (name)
		json_object_set_new(details, "name", json_string(name));
	if (causes && json_array_size(causes) > 0)
		json_object_set(details, "causes", causes);
	json_decref(causes);
	if (json_object_size(details) > 0)
		json_object_set_new(st, "details", details);
	else
		json_decref(details);
	return st;
}

json_t *api_status_from_kerr(const struct kerr *err, const char *kind, const char *name)
{
	const char *reason = NULL;
	int code = err ? err->code : EIO;
	int http = api_http_status(code ? code : EIO, &reason);
	json_t *causes = err && err->causes ? json_deep_copy(err->causes) : NULL;
	return api_status_new(http, reason, kerr_msg(err), causes, kind, name);
}

json_t *api_status_success(const char *kind, const char *name)
{
	json_t *st = api_status_new(200, NULL, NULL, NULL, kind, name);
	json_object_del(st, "reason");
	json_object_del(st, "message");
	return st;
}
