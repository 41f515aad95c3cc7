/*
 * Fuzz target for the object path of the API server's writes: the
 * request body decoded as srv_json_parse() does (the server's own flags:
 * duplicate keys refused) and, as a server-side apply body sent as
 * application/apply-patch+yaml, by srv_apply_body_parse(); each object
 * checked against its URL for every kind
 * (srv_obj_check_identity), stripped of server fields, defaulted and
 * validated (api_default, api_validate), as create and replace do.
 * The input is split at its first NUL byte: before it the body, after it
 * a second (JSON) body, the object that would replace the first
 * (api_validate_update). Properties, a broken one aborts:
 *   - a refusal is an error code with a message, and every cause names a
 *     field, a reason and a message;
 *   - an accepted object defaults to itself (defaulting twice changes
 *     nothing), serialises as the store writes it (JSON_COMPACT), reads
 *     back as the store reads it, equal, and validates again;
 *   - replacing an accepted object by itself is a valid update.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kind.h"
#include "api/merge.h"
#include "api/meta.h"
#include "api/validate.h"
#include "common/kerr.h"
#include "common/util.h"
#include "server/http.h"
#include "server/objects.h"
#include "server/verbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const struct api_kind *k, const char *detail)
{
	if (!ok) {
		fprintf(stderr, "fuzz_json: %s: %s (%s)\n", k ? k->kind : "-", what,
		        detail ? detail : "");
		abort();
	}
}

static void check_refusal(int r, const struct kerr *err, const struct api_kind *k)
{
	check(r < 0 && err->code == -r && err->msg && *err->msg, "refusal without a message", k,
	      err->msg);
	size_t i;
	json_t *c;
	json_array_foreach(err->causes, i, c)
	{
		check(json_is_string(json_object_get(c, "field")) &&
		          json_is_string(json_object_get(c, "reason")) &&
		          json_is_string(json_object_get(c, "message")),
		      "cause without field, reason or message", k, err->msg);
	}
}

/* The server's create path for kind k: NULL when k refuses body (the
 * refusal checked), else the object it would store (owned). */
static json_t *accept_as(const struct api_kind *k, json_t *body)
{
	_cleanup_json_ json_t *obj = json_deep_copy(body);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	const char *ns = k->namespaced ? api_obj_namespace(obj) : NULL;
	int r = srv_obj_check_identity(k, obj, ns, NULL, &err);
	if (r < 0) {
		check_refusal(r, &err, k);
		return NULL;
	}
	srv_obj_strip_server_fields(obj);
	if (k->has_status)
		json_object_del(obj, "status");
	api_default(k, obj);
	r = api_validate(k, obj, &err);
	if (r < 0) {
		check(r == -EINVAL, "api_validate: not EINVAL", k, err.msg);
		check_refusal(r, &err, k);
		return NULL;
	}
	return TAKE_PTR(obj);
}

static void check_accepted(const struct api_kind *k, json_t *obj)
{
	_cleanup_json_ json_t *again = json_deep_copy(obj);
	api_default(k, again);
	check(api_json_equal(again, obj), "defaulting twice changes the object", k, NULL);
	_cleanup_free_ char *text = json_dumps(obj, JSON_COMPACT); /* store_writer.c */
	check(text != NULL, "accepted object does not serialise", k, NULL);
	json_error_t je;
	_cleanup_json_ json_t *back = json_loadb(text, strlen(text), 0, &je); /* store.c */
	check(back != NULL, "the store cannot read an accepted object back", k, je.text);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	check(api_json_equal(back, obj), "serialising changes the object", k, text);
	check(api_validate(k, back, &err) == 0, "serialised object does not validate", k,
	      err.msg);
	check(api_validate_update(k, obj, back, &err) == 0, "an unchanged object is not a valid update",
	      k, err.msg);
}

/* body, or NULL when the server refuses it (checked): as JSON
 * (srv_json_parse) or as an apply body sent as YAML. Owned. */
static json_t *parse_body(const char *buf, size_t len, bool yaml)
{
	json_t *v = NULL;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	int r = yaml ? srv_apply_body_parse(buf, len, true, &v, &err)
	             : srv_json_parse(buf, len, true, &v, &err);
	if (r < 0) {
		/* 400, or for YAML past its depth, node or size limits 413 */
		check((r == -EBADMSG || (yaml && r == -E2BIG)) && v == NULL,
		      "body parser: bad refusal", NULL, err.msg);
		check_refusal(r, &err, NULL);
		return NULL;
	}
	check(json_is_object(v), "body parser: not an object", NULL, NULL);
	return v;
}

static void check_bodies(json_t *a, json_t *b)
{
	for (size_t i = 0; a && i < api_kind_count(); i++) {
		const struct api_kind *k = api_kind_at(i);
		_cleanup_json_ json_t *live = accept_as(k, a);
		if (!live)
			continue;
		check_accepted(k, live);
		_cleanup_json_ json_t *next = b ? accept_as(k, b) : NULL;
		if (!next)
			continue;
		check_accepted(k, next);
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		int r = api_validate_update(k, live, next, &err);
		if (r < 0) {
			check(r == -EINVAL, "api_validate_update: not EINVAL", k, err.msg);
			check_refusal(r, &err, k);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);
	size_t len1 = nul ? (size_t)(nul - in) : size;
	_cleanup_json_ json_t *b = nul ? parse_body(nul + 1, size - len1 - 1, false) : NULL;
	_cleanup_json_ json_t *a = parse_body(in, len1, false);
	check_bodies(a, b);
	/* a body starting with '{' is JSON on either path: done above */
	if (len1 > 0 && in[0] != '{') {
		_cleanup_json_ json_t *y = parse_body(in, len1, true);
		check_bodies(y, b);
	}
	return 0;
}
