/*
 * server/verbs — create, replace, merge patch, server-side apply, delete.
 *
 * Each verb validates what it can from the request alone before touching
 * the store, then runs one srv_write (write.h): a compute step with the
 * live object, and a compare-and-swap write. A result equal to the live
 * object is a no-op — no revision, no watch event — which is what makes
 * re-applying an unchanged manifest free.
 *
 * Namespaces: creating in a namespace that does not exist is a 404, and
 * in one being deleted (it has a deletionTimestamp) a 403, as Kubernetes
 * answers. Deleting an empty Namespace removes it at once; deleting one
 * that still holds objects marks it Terminating (deletionTimestamp,
 * status.phase Terminating, finalizer "keel/namespace"): the gc
 * controller deletes what is in it and then removes the finalizer, and
 * the update that empties the finalizers of an object being deleted
 * deletes it (finish_update). "default" cannot be deleted. The existence
 * check is not in the write transaction, so a Namespace deleted at the
 * same moment as a create into it may leave that object behind; the gc
 * controller is the backstop.
 *
 * Deletion policies: Background (the default) deletes the object now and
 * gc deletes its dependents afterwards. Orphan and Foreground are
 * recorded as Kubernetes records them, as the finalizers "orphan" and
 * "foregroundDeletion" added together with the deletionTimestamp; gc
 * then orphans (removes the ownerReferences to the object) or deletes the
 * dependents, and removes the finalizer, which deletes the object.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/merge.h"
#include "api/meta.h"
#include "api/status.h"
#include "api/validate.h"
#include "common/kerr.h"
#include "common/util.h"
#include "manifests/yaml.h"
#include "server/handlers.h"
#include "server/objects.h"
#include "server/verbs.h"
#include "server/write.h"
#include "store/store.h"

static const char *plural(struct srv_write *w)
{
	return w->kind->plural;
}

enum MHD_Result srv_reply_write(struct srv_req *r, int rc, struct kerr *err, struct srv_write *w,
                                unsigned ok_code, const char *hdr, const char *hval)
{
	if (rc < 0)
		return srv_reply_error(r, err, r->route.kind->plural, r->route.name);
	if (w->result_text) { /* as stored: no second serialisation */
		size_t n = w->result_len;
		return srv_reply_json_text(r, ok_code, TAKE_PTR(w->result_text), n, hdr, hval);
	}
	json_t *obj = TAKE_PTR(w->result);
	if (!obj)
		obj = api_status_success(r->route.kind->plural, r->route.name);
	return srv_reply_json(r, ok_code, obj, hdr, hval);
}

int srv_check_namespace(struct server *srv, const struct api_kind *k, const char *ns,
                        struct kerr *err)
{
	if (!k->namespaced)
		return 0;
	_cleanup_free_ char *key = store_key("namespaces", NULL, ns);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int rc = store_get_text(srv->store, key, &text, &len, err);
	if (rc == -ENOENT)
		return kerr_set(err, ENOENT, "namespaces \"%s\" not found", ns);
	if (rc < 0)
		return rc;
	/* Every create in a namespace asks, so the text is parsed only when it
	 * could be terminating: the key is written literally by the store's
	 * serialiser, so a Namespace without it anywhere has no such field. */
	if (!strstr(text, "\"deletionTimestamp\""))
		return 0;
	_cleanup_json_ json_t *obj = json_loadb(text, len, 0, NULL);
	if (!obj)
		return kerr_set(err, EIO, "store: %s is not valid JSON", key);
	if (json_object_get(api_obj_meta(obj), "deletionTimestamp"))
		return kerr_set(err, EPERM,
		                "unable to create new content in namespace %s because it is being "
		                "terminated",
		                ns);
	return 0;
}

int srv_not_found(struct srv_write *w, struct kerr *err)
{
	const char *name = strrchr(w->key, '/');
	return kerr_set(err, ENOENT, "%s \"%s\" not found", plural(w), name ? name + 1 : w->key);
}

int srv_check_precondition(json_t *live, uint64_t want_rv, struct kerr *err)
{
	if (want_rv && api_obj_rv(live) != want_rv)
		return kerr_set(err, ESTALE, SRV_CONFLICT_MSG);
	return 0;
}

/* Validation of a finished object, with the object's kind and name in the
 * message as Kubernetes words it. */
static int validate(const struct api_kind *k, json_t *obj, struct kerr *err)
{
	api_default(k, obj);
	return api_validate(k, obj, err);
}

/* ---- create ---- */

static int create_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err)
{
	json_t *obj = w->arg;
	if (live)
		return kerr_set(err, EEXIST, "%s \"%s\" already exists", plural(w),
		                api_obj_name(obj));
	*next = json_incref(obj);
	return STORE_WRITE;
}

enum MHD_Result srv_reply_write_ok(struct srv_req *r, int rc, struct kerr *err, struct srv_write *w)
{
	return srv_reply_write(r, rc, err, w, 200, NULL, NULL);
}

static enum MHD_Result create_reply(struct srv_req *r, int rc, struct kerr *err,
                                    struct srv_write *w)
{
	if (rc < 0)
		return srv_reply_error(r, err, w->kind->plural, api_obj_name(w->arg));
	return srv_reply_write(r, rc, err, w, 201, NULL, NULL);
}

enum MHD_Result srv_handle_create(struct srv_req *r)
{
	const struct api_kind *k = r->route.kind;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	enum MHD_Result ret;
	bool dry;
	if (!srv_req_dry_run(r, &dry, &ret))
		return ret;
	_cleanup_json_ json_t *obj = NULL;
	if (srv_json_parse(r->body.data, r->body.len, true, &obj, &err) < 0 ||
	    srv_obj_check_identity(k, obj, r->route.ns, NULL, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	srv_obj_strip_server_fields(obj);
	if (k->has_status)
		json_object_del(obj, "status");
	if (validate(k, obj, &err) < 0)
		return srv_reply_error(r, &err, k->plural, api_obj_name(obj));
	srv_obj_init_created(obj);
	srv_obj_init_status(k, obj);
	const char *ns = k->namespaced ? api_obj_namespace(obj) : NULL;
	/* The size: a dry run measures it here; a write is measured where the
	 * store serialises it to write it (options.max_object, write.c). */
	if ((dry && srv_obj_check_size(obj, r->srv->opts.max_object, &err) < 0) ||
	    srv_check_namespace(r->srv, k, ns, &err) < 0)
		return srv_reply_error(r, &err, k->plural, api_obj_name(obj));
	_cleanup_free_ char *key = store_key(k->plural, ns, api_obj_name(obj));
	struct srv_write *w = srv_write_new(r->srv, k, key);
	w->dry_run = dry;
	w->compute = create_compute;
	w->arg = srv_write_hold(w, TAKE_PTR(obj));
	w->reply = create_reply;
	return srv_write_submit(r, w);
}

/* ---- replace (PUT) ---- */

struct replace_arg {
	json_t *body;
	uint64_t want_rv;
	const char *manager;
};

/* For w->spec_locked: a node token writing a Node (authz lets it write
 * only its own). Owned; NULL for anyone else. */
static char *spec_locked(struct srv_req *r)
{
	if (!streq(r->who.role, "node") || !streq(r->route.kind->plural, "nodes"))
		return NULL;
	return xasprintf("user \"%s\" (role node) cannot %s nodes \"%s\"", r->who.name,
	                 r->method == SRV_PUT ? "update" : "patch", r->route.name);
}

const char *srv_update_manager(struct srv_req *r, char *buf, size_t len)
{
	const char *fm = srv_req_query(r, "fieldManager");
	if (fm && *fm && strlen(fm) < len)
		return fm;
	/* as Kubernetes does: the User-Agent's product name ("curl/8.1" -> "curl") */
	const char *ua = srv_req_header(r, MHD_HTTP_HEADER_USER_AGENT);
	size_t n = 0;
	for (; ua && ua[n] && ua[n] != '/' && ua[n] != ' ' && n + 1 < len; n++)
		buf[n] = ua[n];
	buf[n] = '\0';
	return n ? buf : "unknown";
}

/* Records a PUT/patch writer in managedFields (api/merge.h), so that an
 * applier no longer removes the fields this write took over. */
static void record_update(json_t *next, json_t *live, const char *manager)
{
	char now[32];
	time_rfc3339(now, sizeof now, time_now_unix());
	api_managed_update(next, live, manager, now);
}

/* w->spec_locked: the first spec field that next changes, as -EPERM. */
static int check_spec_locked(struct srv_write *w, json_t *live, json_t *next, struct kerr *err)
{
	json_t *ls = json_object_get(live, "spec"), *ns = json_object_get(next, "spec");
	json_t *both[] = {ls, ns};
	for (size_t i = 0; i < 2; i++) {
		const char *f;
		json_t *v;
		json_object_foreach(both[i], f, v)
		{
			json_t *l = json_object_get(ls, f), *n = json_object_get(ns, f);
			if ((l || n) && !json_equal(l, n))
				return kerr_set(
				    err, EPERM,
				    "%s: spec.%s: a node may not change its own Node's spec "
				    "(admins set it: cordon, taints); it writes its labels "
				    "and status",
				    w->spec_locked, f);
		}
	}
	return 0;
}

/* The common tail of replace/patch/apply: generation, finalization,
 * no-op detection, the spec of a node's own Node and the size limit.
 * Takes next. */
static int finish_update(struct srv_write *w, json_t *live, json_t *next, json_t **out,
                         struct kerr *err)
{
	_cleanup_json_ json_t *n = next;
	srv_obj_set_generation(n, live);
	if (live && srv_obj_finalized(live, n))
		return STORE_DELETE;
	if (live && api_json_equal(n, live))
		return STORE_NOOP;
	if (live && w->spec_locked && check_spec_locked(w, live, n, err) < 0)
		return -EPERM;
	/* what may not change once set: a Task's nodeName, a Deployment's
	 * selector (api/validate.h) */
	if (live && api_validate_update(w->kind, live, n, err) < 0)
		return -EINVAL;
	if (srv_obj_check_size(n, w->srv->opts.max_object, err) < 0)
		return -E2BIG;
	*out = TAKE_PTR(n);
	return STORE_WRITE;
}

static int replace_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err)
{
	struct replace_arg *a = w->arg;
	if (!live)
		return srv_not_found(w, err);
	if (srv_check_precondition(live, a->want_rv, err) < 0)
		return -ESTALE;
	json_t *n = json_deep_copy(a->body);
	srv_obj_carry_from_live(w->kind, n, live, true);
	record_update(n, live, a->manager);
	return finish_update(w, live, n, next, err);
}

enum MHD_Result srv_handle_replace(struct srv_req *r)
{
	const struct api_kind *k = r->route.kind;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	enum MHD_Result ret;
	bool dry;
	if (!srv_req_dry_run(r, &dry, &ret))
		return ret;
	_cleanup_json_ json_t *body = NULL;
	uint64_t want_rv = 0;
	if (srv_json_parse(r->body.data, r->body.len, true, &body, &err) < 0 ||
	    srv_obj_check_identity(k, body, r->route.ns, r->route.name, &err) < 0 ||
	    srv_obj_client_rv(body, &want_rv, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	srv_obj_strip_server_fields(body);
	if (k->has_status)
		json_object_del(body, "status");
	if (validate(k, body, &err) < 0)
		return srv_reply_error(r, &err, k->plural, r->route.name);
	_cleanup_free_ char *key = srv_req_key(r);
	struct srv_write *w = srv_write_new(r->srv, k, key);
	struct replace_arg *a = srv_write_alloc(w, sizeof *a);
	a->body = srv_write_hold(w, TAKE_PTR(body));
	a->want_rv = want_rv;
	char mbuf[128];
	a->manager = srv_write_strdup(w, srv_update_manager(r, mbuf, sizeof mbuf));
	_cleanup_free_ char *locked = spec_locked(r);
	w->spec_locked = srv_write_strdup(w, locked);
	w->dry_run = dry;
	w->compute = replace_compute;
	w->arg = a;
	w->reply = srv_reply_write_ok;
	return srv_write_submit(r, w);
}

/* ---- merge patch (PATCH, application/merge-patch+json) ---- */

int srv_patch_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err)
{
	struct srv_patch_arg *a = w->arg;
	if (!live)
		return srv_not_found(w, err);
	if (srv_check_precondition(live, a->want_rv, err) < 0)
		return -ESTALE;
	json_t *merged = api_merge_patch(live, a->patch);
	/* /status too, as its PUT: a body naming another object is a mistake */
	if (srv_obj_check_identity(w->kind, merged, api_obj_namespace(live), api_obj_name(live),
	                           err) < 0) {
		json_decref(merged);
		return kerr_prefix(err, "the patch may not change the object's identity");
	}
	if (a->status_only) {
		json_t *n = json_deep_copy(live);
		json_t *st = json_object_get(merged, "status");
		if (st)
			json_object_set(n, "status", st);
		else
			json_object_del(n, "status");
		json_decref(merged);
		if (api_validate_status(w->kind, json_object_get(n, "status"), err) < 0) {
			json_decref(n);
			return -EINVAL;
		}
		return finish_update(w, live, n, next, err);
	}
	srv_obj_carry_from_live(w->kind, merged, live, true);
	if (validate(w->kind, merged, err) < 0) {
		json_decref(merged);
		return -EINVAL;
	}
	record_update(merged, live, a->manager);
	return finish_update(w, live, merged, next, err);
}

/* ---- server-side apply (PATCH, application/apply-patch+json) ---- */

struct apply_arg {
	json_t *applied;
	const char *manager;
	const char *ns;
};

static int apply_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err)
{
	struct apply_arg *a = w->arg;
	if (!live && srv_check_namespace(w->srv, w->kind, a->ns, err) < 0)
		return -ENOENT;
	char now[32];
	time_rfc3339(now, sizeof now, time_now_unix());
	json_t *merged = api_apply(live, a->applied, a->manager, now);
	if (live)
		srv_obj_carry_from_live(w->kind, merged, live, false);
	else {
		srv_obj_init_created(merged);
		srv_obj_init_status(w->kind, merged);
	}
	if (validate(w->kind, merged, err) < 0) {
		json_decref(merged);
		return -EINVAL;
	}
	if (!live) {
		if (srv_obj_check_size(merged, w->srv->opts.max_object, err) < 0) {
			json_decref(merged);
			return -E2BIG;
		}
		*next = merged;
		return STORE_WRITE;
	}
	return finish_update(w, live, merged, next, err);
}

static enum MHD_Result apply_reply(struct srv_req *r, int rc, struct kerr *err, struct srv_write *w)
{
	const char *res = rc == STORE_NOOP ? "unchanged" : w->existed ? "configured" : "created";
	unsigned code = rc == STORE_WRITE && !w->existed ? 201 : 200;
	return srv_reply_write(r, rc, err, w, code, "Keel-Apply-Result", res);
}

static enum MHD_Result handle_apply(struct srv_req *r, bool dry)
{
	const struct api_kind *k = r->route.kind;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *body = NULL;
	if (srv_body_parse_manifest(r, &body, &err) < 0 ||
	    srv_obj_check_identity(k, body, r->route.ns, r->route.name, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	srv_obj_strip_server_fields(body);
	if (k->has_status)
		json_object_del(body, "status");
	const char *manager = srv_req_query(r, "fieldManager"); /* the request's */
	_cleanup_free_ char *key = srv_req_key(r);
	struct srv_write *w = srv_write_new(r->srv, k, key);
	struct apply_arg *a = srv_write_alloc(w, sizeof *a);
	a->applied = srv_write_hold(w, TAKE_PTR(body));
	a->manager = manager && *manager ? manager : "keel-apply";
	a->ns = k->namespaced ? api_obj_namespace(a->applied) : NULL;
	_cleanup_free_ char *locked = spec_locked(r);
	w->spec_locked = srv_write_strdup(w, locked);
	w->dry_run = dry;
	w->compute = apply_compute;
	w->arg = a;
	w->reply = apply_reply;
	return srv_write_submit(r, w);
}

/* The media type without parameters, lower-cased into buf. */
const char *srv_media_type(struct srv_req *r, char *buf, size_t len)
{
	const char *ct = srv_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ct)
		return NULL;
	size_t i = 0;
	for (; ct[i] && ct[i] != ';' && ct[i] != ' ' && i + 1 < len; i++)
		buf[i] = (char)(ct[i] >= 'A' && ct[i] <= 'Z' ? ct[i] + 32 : ct[i]);
	buf[i] = '\0';
	return buf;
}

enum MHD_Result srv_handle_patch(struct srv_req *r)
{
	const struct api_kind *k = r->route.kind;
	enum MHD_Result ret;
	bool dry;
	if (!srv_req_dry_run(r, &dry, &ret))
		return ret;
	char buf[128];
	const char *mt = srv_media_type(r, buf, sizeof buf);
	if (streq(mt, "application/apply-patch+json") || streq(mt, "application/apply-patch+yaml"))
		return handle_apply(r, dry);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *patch = NULL;
	uint64_t want_rv = 0;
	if (srv_patch_parse(r, true, &patch, &want_rv, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	_cleanup_free_ char *key = srv_req_key(r);
	struct srv_write *w = srv_write_new(r->srv, k, key);
	struct srv_patch_arg *a = srv_write_alloc(w, sizeof *a);
	a->patch = srv_write_hold(w, TAKE_PTR(patch));
	a->want_rv = want_rv;
	char mbuf[128];
	a->manager = srv_write_strdup(w, srv_update_manager(r, mbuf, sizeof mbuf));
	_cleanup_free_ char *locked = spec_locked(r);
	w->spec_locked = srv_write_strdup(w, locked);
	w->dry_run = dry;
	w->compute = srv_patch_compute;
	w->arg = a;
	w->reply = srv_reply_write_ok;
	return srv_write_submit(r, w);
}

int srv_patch_parse(struct srv_req *r, bool apply_ok, json_t **patch, uint64_t *want_rv,
                    struct kerr *err)
{
	char buf[128];
	const char *mt = srv_media_type(r, buf, sizeof buf);
	const char *where = apply_ok ? "" : " for the status subresource";
	const char *use = apply_ok ? "application/merge-patch+json or application/apply-patch+json"
	                           : "application/merge-patch+json";
	if (streq(mt, "application/json-patch+json"))
		return kerr_set(
		    err, EMEDIUMTYPE,
		    "JSON patch (application/json-patch+json) is not supported%s; use %s", where,
		    use);
	if (!streq(mt, "application/merge-patch+json") &&
	    !streq(mt, "application/strategic-merge-patch+json"))
		return kerr_set(err, EMEDIUMTYPE,
		                "unsupported patch Content-Type \"%s\"%s (use %s)", mt ? mt : "",
		                where, use);
	if (srv_json_parse(r->body.data, r->body.len, true, patch, err) < 0)
		return -EBADMSG;
	return srv_obj_client_rv(*patch, want_rv, err);
}

/* ---- delete ---- */

struct delete_arg {
	uint64_t want_rv;
	const char *policy; /* NULL, "Background", "Orphan" or "Foreground" */
};

static int namespace_empty(struct server *srv, const char *ns, struct kerr *err)
{
	for (size_t i = 0; i < api_kind_count(); i++) {
		const struct api_kind *k = api_kind_at(i);
		if (!k->namespaced)
			continue;
		_cleanup_free_ char *prefix = xasprintf("%s/%s/", k->plural, ns);
		_cleanup_json_ json_t *items = NULL;
		_cleanup_free_ char *next = NULL;
		uint64_t rev;
		int rc =
		    store_list(srv->store, prefix, NULL, 1, NULL, NULL, &items, &rev, &next, err);
		if (rc < 0)
			return rc;
		if (json_array_size(items) > 0)
			return 0;
	}
	return 1;
}

/* Adds finalizer f to the finalizers of metadata m, unless it is there. */
static void add_finalizer(json_t *m, const char *f)
{
	json_t *fin = json_object_get(m, "finalizers");
	if (!json_is_array(fin)) {
		fin = json_array();
		json_object_set_new(m, "finalizers", fin);
	}
	size_t i;
	json_t *v;
	json_array_foreach(fin, i, v) if (streq(json_string_value(v), f)) return;
	json_array_append_new(fin, json_string(f));
}

/* The finalizer a deletion policy stands for, or NULL (Background). */
static const char *policy_finalizer(const char *policy)
{
	if (streq(policy, "Orphan"))
		return "orphan";
	if (streq(policy, "Foreground"))
		return "foregroundDeletion";
	return NULL;
}

static int delete_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err)
{
	struct delete_arg *a = w->arg;
	if (!live)
		return srv_not_found(w, err);
	if (srv_check_precondition(live, a->want_rv, err) < 0)
		return -ESTALE;
	bool terminate = false; /* a non-empty Namespace: mark it Terminating */
	if (streq(w->kind->plural, "namespaces")) {
		if (streq(api_obj_name(live), "default"))
			return kerr_set(err, EPERM, "namespace \"default\" cannot be deleted");
		int rc = namespace_empty(w->srv, api_obj_name(live), err);
		if (rc < 0)
			return rc;
		terminate = rc == 0;
	}
	const char *pf = policy_finalizer(a->policy);
	json_t *fin = json_object_get(api_obj_meta(live), "finalizers");
	bool deleting = json_object_get(api_obj_meta(live), "deletionTimestamp") != NULL;
	if (json_array_size(fin) == 0 && !pf && !terminate)
		return STORE_DELETE;
	if (deleting && !pf && !terminate)
		return STORE_NOOP;
	json_t *n = json_deep_copy(live);
	json_t *m = api_obj_meta(n);
	if (pf)
		add_finalizer(m, pf);
	if (terminate) {
		add_finalizer(m, "keel/namespace");
		json_object_set_new(n, "status", json_pack("{s:s}", "phase", "Terminating"));
	}
	if (!deleting) {
		char now[32];
		time_rfc3339(now, sizeof now, time_now_unix());
		json_object_set_new(m, "deletionTimestamp", json_string(now));
	}
	if (api_json_equal(n, live)) {
		json_decref(n);
		return STORE_NOOP;
	}
	*next = n;
	return STORE_WRITE;
}

static int delete_options(struct srv_req *r, struct delete_arg *a, struct kerr *err)
{
	const char *policy = srv_req_query(r, "propagationPolicy");
	_cleanup_json_ json_t *opts = NULL;
	if (r->body.len > 0) {
		if (srv_json_parse(r->body.data, r->body.len, true, &opts, err) < 0)
			return -EBADMSG;
		json_t *pre =
		    json_object_get(json_object_get(opts, "preconditions"), "resourceVersion");
		if (pre) {
			_cleanup_json_ json_t *tmp =
			    json_pack("{s:{s:O}}", "metadata", "resourceVersion", pre);
			if (srv_obj_client_rv(tmp, &a->want_rv, err) < 0)
				return kerr_prefix(err, "preconditions");
		}
		if (!policy)
			policy = json_string_value(json_object_get(opts, "propagationPolicy"));
	}
	if (policy && !streq(policy, "Background") && !streq(policy, "Orphan") &&
	    !streq(policy, "Foreground"))
		return kerr_set(
		    err, EBADMSG,
		    "invalid propagationPolicy \"%s\" (Background, Orphan or Foreground)", policy);
	/* static strings: a policy from the body does not outlive opts */
	a->policy = streq(policy, "Orphan")       ? "Orphan"
	            : streq(policy, "Foreground") ? "Foreground"
	                                          : NULL;
	return 0;
}

enum MHD_Result srv_handle_delete(struct srv_req *r)
{
	const struct api_kind *k = r->route.kind;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	enum MHD_Result ret;
	bool dry;
	if (!srv_req_dry_run(r, &dry, &ret))
		return ret;
	struct delete_arg opts = {0};
	if (delete_options(r, &opts, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	_cleanup_free_ char *key = srv_req_key(r);
	struct srv_write *w = srv_write_new(r->srv, k, key);
	struct delete_arg *a = srv_write_alloc(w, sizeof *a);
	*a = opts; /* its policy is a static string */
	w->dry_run = dry;
	w->compute = delete_compute;
	w->arg = a;
	w->reply = srv_reply_write_ok;
	return srv_write_submit(r, w);
}

static void yaml_stream_freep(struct yaml_stream **s)
{
	yaml_stream_free(*s);
}

int srv_body_parse_manifest(struct srv_req *r, json_t **out, struct kerr *err)
{
	char buf[128];
	bool yaml = streq(srv_media_type(r, buf, sizeof buf), "application/apply-patch+yaml");
	int rc = srv_apply_body_parse(r->body.data, r->body.len, yaml, out, err);
	if (rc == -E2BIG)
		r->limit = SRV_LIMIT_YAML; /* counted */
	return rc;
}

/* The path of the first string in v holding a NUL, or NULL. Owned. YAML
 * can spell one ("\0", "\x00"); JSON bodies cannot (srv_json_parse), and
 * neither can what the store reads back. */
static char *nul_string_path(json_t *v, const char *path)
{
	if (json_is_string(v))
		return memchr(json_string_value(v), 0, json_string_length(v)) ? xstrdup(path)
		                                                               : NULL;
	const char *k;
	size_t i;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		_cleanup_free_ char *p = api_path_key(path, k);
		char *found = nul_string_path(e, p);
		if (found)
			return found;
	}
	json_array_foreach(v, i, e)
	{
		_cleanup_free_ char *p = api_path_index(path, i);
		char *found = nul_string_path(e, p);
		if (found)
			return found;
	}
	return NULL;
}

int srv_apply_body_parse(const char *data, size_t len, bool yaml, json_t **out, struct kerr *err)
{
	if (!yaml || (len > 0 && data[0] == '{'))
		return srv_json_parse(data, len, true, out, err);
	_cleanup_(yaml_stream_freep) struct yaml_stream *ys = NULL;
	if (yaml_stream_parse("request body", data ? data : "", len, NULL, &ys, err) < 0) {
		if (err->code == E2BIG) /* depth, nodes or document size: 413 */
			return -E2BIG;
		err->code = EBADMSG;
		return -EBADMSG;
	}
	if (ys->n_docs != 1)
		return kerr_set(err, EBADMSG,
		                "an apply body must be one YAML mapping (got %zu documents)",
		                ys->n_docs);
	if (!json_is_object(ys->docs[0].value))
		return kerr_set(err, EBADMSG, "request body:%d:%d: an apply body must be a YAML mapping",
		                ys->docs[0].line, ys->docs[0].col);
	_cleanup_free_ char *nul = nul_string_path(ys->docs[0].value, "");
	if (nul) {
		int line = ys->docs[0].line, col = ys->docs[0].col;
		yaml_doc_position(&ys->docs[0], nul, &line, &col);
		return kerr_set(err, EBADMSG,
		                "request body:%d:%d: %s: a string must not contain a NUL character",
		                line, col, nul);
	}
	*out = json_incref(ys->docs[0].value);
	return 0;
}
