/*
 * kerr: one error object carried up the stack (see kerr.h). Messages are
 * formatted once, where the failure is understood, and context is prepended
 * on the way up, so the boundary can print a single line such as
 * "apply web.yaml: spec.replicas: must be an integer".
 */
#include "common/kerr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int kerr_setv(struct kerr *err, int code, const char *fmt, va_list ap)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO;
	if (!err)
		return -code;
	char *msg = xvasprintf(fmt, ap);
	free(err->msg);
	err->msg = msg;
	err->code = code;
	return -code;
}

int kerr_set(struct kerr *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = kerr_setv(err, code, fmt, ap);
	va_end(ap);
	return r;
}

int kerr_prefix(struct kerr *err, const char *fmt, ...)
{
	if (!err)
		return -EIO;
	if (err->code == 0)
		err->code = EIO;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *ctx = xvasprintf(fmt, ap);
	va_end(ap);
	char *msg = xasprintf("%s: %s", ctx, err->msg ? err->msg : "unknown error");
	free(err->msg);
	err->msg = msg;
	return -err->code;
}

void kerr_add_cause(struct kerr *err, const char *field, const char *reason, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = xvasprintf(fmt, ap);
	va_end(ap);
	if (!err->causes)
		err->causes = json_array();
	json_array_append_new(err->causes, json_pack("{s:s, s:s, s:s}", "field", field ? field : "",
	                                             "reason", reason ? reason : "FieldValueInvalid",
	                                             "message", m));
	if (err->code == 0)
		err->code = EINVAL;
}

void kerr_clear(struct kerr *err)
{
	if (!err)
		return;
	free(err->msg);
	json_decref(err->causes);
	err->msg = NULL;
	err->causes = NULL;
	err->code = 0;
}

void kerr_move(struct kerr *dst, struct kerr *src)
{
	kerr_clear(dst);
	*dst = *src;
	src->msg = NULL;
	src->causes = NULL;
	src->code = 0;
}

const char *kerr_msg(const struct kerr *err)
{
	return err && err->msg ? err->msg : "unknown error";
}

int kerr_unknown_flag(struct kerr *err, const char *cmd, const char *word,
                      const char *const *names, size_t n)
{
	const char *best = str_closest(word, names, n);
	if (best)
		return kerr_set(err, EINVAL, "unknown flag \"--%s\" for \"%s\"; did you mean \"--%s\"?",
		                word, cmd, best);
	return kerr_set(err, EINVAL, "unknown flag \"--%s\" for \"%s\" (see %s --help)", word, cmd,
	                cmd);
}
