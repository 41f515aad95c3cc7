/*
 * server/objects — object transforms shared by the write verbs.
 *
 * The rules here are the envelope rules of DESIGN.md: the server owns uid,
 * resourceVersion, generation and the timestamps; spec and metadata change
 * through the main resource and status through /status; generation moves
 * only with spec. Keeping them in one pure file keeps every verb honest and
 * makes them testable without a store.
 */
#include "server/objects.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "server/opts.h"

static const char *const server_fields[] = {
    "uid",          "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "managedFields"};

static json_t *ensure_meta(json_t *obj)
{
	json_t *m = json_object_get(obj, "metadata");
	if (!json_is_object(m)) {
		m = json_object();
		json_object_set_new(obj, "metadata", m);
	}
	return m;
}

static int check_string_field(json_t *obj, const char *key, const char *want, const char *where,
                              struct kerr *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		json_object_set_new(obj, key, json_string(want));
		return 0;
	}
	if (!json_is_string(v))
		return kerr_set(err, EBADMSG, "%s must be a string", where);
	if (!streq(json_string_value(v), want))
		return kerr_set(err, EBADMSG, "%s \"%s\" does not match the URL (want \"%s\")",
		                where, json_string_value(v), want);
	return 0;
}

int srv_obj_check_identity(const struct api_kind *k, json_t *body, const char *ns, const char *name,
                           struct kerr *err)
{
	if (check_string_field(body, "apiVersion", API_GROUP_VERSION, "apiVersion", err) < 0 ||
	    check_string_field(body, "kind", k->kind, "kind", err) < 0)
		return -EBADMSG;
	json_t *m = json_object_get(body, "metadata");
	if (m && !json_is_object(m))
		return kerr_set(err, EBADMSG, "metadata must be an object");
	m = ensure_meta(body);
	if (name) {
		json_t *n = json_object_get(m, "name");
		if (n && json_is_string(n) && !streq(json_string_value(n), name))
			return kerr_set(
			    err, EBADMSG,
			    "the name of the object (%s) does not match the name in the URL (%s)",
			    json_string_value(n), name);
		if (!n)
			json_object_set_new(m, "name", json_string(name));
	}
	if (!k->namespaced) {
		json_object_del(m, "namespace");
		return 0;
	}
	json_t *o = json_object_get(m, "namespace");
	if (o && json_is_string(o) && ns && !streq(json_string_value(o), ns))
		return kerr_set(
		    err, EBADMSG,
		    "the namespace of the object (%s) does not match the namespace in the URL (%s)",
		    json_string_value(o), ns);
	if (!o && ns)
		json_object_set_new(m, "namespace", json_string(ns));
	return 0;
}

void srv_obj_strip_server_fields(json_t *obj)
{
	json_t *m = json_object_get(obj, "metadata");
	if (!json_is_object(m))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(server_fields); i++)
		json_object_del(m, server_fields[i]);
}

void srv_obj_carry_from_live(const struct api_kind *k, json_t *next, json_t *live,
                             bool with_managed)
{
	json_t *nm = ensure_meta(next);
	json_t *lm = json_object_get(live, "metadata");
	for (size_t i = 0; i < ARRAY_SIZE(server_fields); i++) {
		if (!with_managed && streq(server_fields[i], "managedFields"))
			continue;
		json_t *v = json_object_get(lm, server_fields[i]);
		if (v)
			json_object_set(nm, server_fields[i], v);
		else
			json_object_del(nm, server_fields[i]);
	}
	if (!k->has_status)
		return;
	json_t *st = json_object_get(live, "status");
	if (st)
		json_object_set(next, "status", st);
	else
		json_object_del(next, "status");
}

void srv_obj_set_generation(json_t *next, json_t *live)
{
	int64_t gen = live ? api_obj_generation(live) : 0;
	if (gen <= 0)
		gen = 1;
	if (live) {
		json_t *a = json_object_get(live, "spec"), *b = json_object_get(next, "spec");
		bool same = (!a && !b) || (a && b && json_equal(a, b));
		if (!same)
			gen++;
	}
	json_object_set_new(ensure_meta(next), "generation", json_integer(gen));
}

void srv_obj_init_created(json_t *obj)
{
	uuid_t u;
	char uid[37];
	uuid_generate_random(u);
	uuid_unparse_lower(u, uid);
	char ts[32];
	time_rfc3339(ts, sizeof ts, time_now_unix());
	json_t *m = ensure_meta(obj);
	json_object_set_new(m, "uid", json_string(uid));
	json_object_set_new(m, "creationTimestamp", json_string(ts));
	json_object_set_new(m, "generation", json_integer(1));
}

void srv_obj_init_status(const struct api_kind *k, json_t *obj)
{
	if (streq(k->kind, "Namespace") && !json_object_get(obj, "status"))
		json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
	/* as Kubernetes does for Pods: `keel get` and field selectors agree */
	if (streq(k->kind, "Task") && !json_object_get(obj, "status"))
		json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Pending"));
}

int srv_obj_client_rv(json_t *obj, uint64_t *rv, struct kerr *err)
{
	json_t *v = json_object_get(json_object_get(obj, "metadata"), "resourceVersion");
	*rv = 0;
	if (!v || (json_is_string(v) && !*json_string_value(v)))
		return 0;
	const char *s = json_string_value(v);
	uint64_t x = 0;
	if (!s || strlen(s) > 20)
		return kerr_set(err, EBADMSG, "metadata.resourceVersion must be a decimal string");
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return kerr_set(err, EBADMSG,
			                "metadata.resourceVersion \"%s\" is not a decimal number",
			                s);
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*rv = x;
	return 0;
}

int srv_obj_check_size(json_t *obj, size_t max, struct kerr *err)
{
	size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
	return n > max ? srv_obj_size_error(n, max, err) : 0;
}

int srv_obj_size_error(size_t n, size_t max, struct kerr *err)
{
	_cleanup_free_ char *lim = srv_format_size(max);
	return kerr_set(err, E2BIG,
	                "object is too large: %zu bytes serialised, over the limit of %s "
	                "(--max-object)",
	                n, lim);
}

bool srv_obj_finalized(json_t *live, json_t *next)
{
	json_t *lm = json_object_get(live, "metadata");
	if (!json_object_get(lm, "deletionTimestamp"))
		return false;
	json_t *f = json_object_get(json_object_get(next, "metadata"), "finalizers");
	return json_array_size(f) == 0;
}
