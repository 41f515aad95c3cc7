/*
 * server/subres — the /status and /binding subresources.
 *
 * /status writes only status: PUT replaces it, PATCH merge-patches it, and
 * neither touches spec, metadata or generation — the other half of the
 * rule that the main resource ignores status. /binding is how the
 * scheduler places a Task: it sets spec.nodeName once (rebinding to
 * another node is a conflict) and moves a Pending Task to Scheduled, in one
 * write, so a scheduler that crashed after binding never leaves a Task
 * bound but still Pending.
 */
#include <errno.h>
#include <string.h>

#include "api/merge.h"
#include "api/meta.h"
#include "api/validate.h"
#include "common/kerr.h"
#include "common/util.h"
#include "server/handlers.h"
#include "server/objects.h"
#include "server/verbs.h"
#include "store/store.h"

struct status_arg {
	json_t *status; /* NULL: remove status */
	uint64_t want_rv;
};

static int status_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err)
{
	struct status_arg *a = w->arg;
	if (!live)
		return srv_not_found(w, err);
	if (srv_check_precondition(live, a->want_rv, err) < 0)
		return -ESTALE;
	json_t *n = json_deep_copy(live);
	if (a->status)
		json_object_set(n, "status", a->status);
	else
		json_object_del(n, "status");
	if (api_json_equal(n, live)) {
		json_decref(n);
		return STORE_NOOP;
	}
	if (srv_obj_check_size(n, w->srv->opts.max_object, err) < 0) {
		json_decref(n);
		return -E2BIG;
	}
	*next = n;
	return STORE_WRITE;
}

static enum MHD_Result status_put(struct srv_req *r, bool dry)
{
	const struct api_kind *k = r->route.kind;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *body = NULL;
	uint64_t want_rv = 0;
	if (srv_json_parse(r->body.data, r->body.len, true, &body, &err) < 0 ||
	    srv_obj_check_identity(k, body, r->route.ns, r->route.name, &err) < 0 ||
	    srv_obj_client_rv(body, &want_rv, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	json_t *status = json_object_get(body, "status");
	if (status && api_validate_status(k, status, &err) < 0)
		return srv_reply_error(r, &err, k->plural, r->route.name);
	_cleanup_free_ char *key = srv_req_key(r);
	struct srv_write *w = srv_write_new(r->srv, k, key);
	struct status_arg *a = srv_write_alloc(w, sizeof *a);
	a->status = status; /* borrowed from body, which w holds */
	a->want_rv = want_rv;
	srv_write_hold(w, TAKE_PTR(body));
	w->dry_run = dry;
	w->compute = status_compute;
	w->arg = a;
	w->reply = srv_reply_write_ok;
	return srv_write_submit(r, w);
}

static enum MHD_Result status_patch(struct srv_req *r, bool dry)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *patch = NULL;
	uint64_t want_rv = 0;
	if (srv_patch_parse(r, false, &patch, &want_rv, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	_cleanup_free_ char *key = srv_req_key(r);
	struct srv_write *w = srv_write_new(r->srv, r->route.kind, key);
	struct srv_patch_arg *a = srv_write_alloc(w, sizeof *a);
	a->status_only = true;
	a->patch = srv_write_hold(w, TAKE_PTR(patch));
	a->want_rv = want_rv;
	w->dry_run = dry;
	w->compute = srv_patch_compute;
	w->arg = a;
	w->reply = srv_reply_write_ok;
	return srv_write_submit(r, w);
}

enum MHD_Result srv_handle_status_write(struct srv_req *r)
{
	enum MHD_Result ret;
	bool dry;
	if (!srv_req_dry_run(r, &dry, &ret))
		return ret;
	return r->method == SRV_PUT ? status_put(r, dry) : status_patch(r, dry);
}

struct binding_arg {
	const char *node;
	const char *rv; /* Binding metadata.resourceVersion: a precondition, or NULL */
};

static int binding_compute(struct srv_write *w, json_t *live, json_t **next, struct kerr *err)
{
	struct binding_arg *a = w->arg;
	if (!live)
		return srv_not_found(w, err);
	const char *cur = json_string_value(api_obj_get_path(live, "spec.nodeName"));
	if (cur && *cur) {
		if (streq(cur, a->node))
			return STORE_NOOP;
		return kerr_set(err, ESTALE, "task \"%s\" is already bound to node \"%s\"",
		                api_obj_name(live), cur);
	}
	if (json_object_get(api_obj_meta(live), "deletionTimestamp"))
		return kerr_set(err, ESTALE, "task \"%s\" is being deleted", api_obj_name(live));
	const char *live_rv = json_string_value(api_obj_get_path(live, "metadata.resourceVersion"));
	if (a->rv && *a->rv && !streq(a->rv, live_rv))
		return kerr_set(err, ESTALE,
		                "task \"%s\" has changed (resourceVersion %s, the binding expects %s)",
		                api_obj_name(live), live_rv ? live_rv : "?", a->rv);
	json_t *n = json_deep_copy(live);
	json_t *spec = json_object_get(n, "spec");
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(n, "spec", spec);
	}
	json_object_set_new(spec, "nodeName", json_string(a->node));
	json_t *status = json_object_get(n, "status");
	if (!json_is_object(status)) {
		status = json_object();
		json_object_set_new(n, "status", status);
	}
	const char *phase = json_string_value(json_object_get(status, "phase"));
	if (!phase || streq(phase, "Pending"))
		json_object_set_new(status, "phase", json_string("Scheduled"));
	srv_obj_set_generation(n, live);
	*next = n;
	return STORE_WRITE;
}

/* Parses and checks a Binding body; *node borrowed from *body. */
static int binding_parse(struct srv_req *r, json_t **body, const char **node, const char **rv,
                         struct kerr *err)
{
	if (srv_json_parse(r->body.data, r->body.len, true, body, err) < 0)
		return -EBADMSG;
	const char *kind = json_string_value(json_object_get(*body, "kind"));
	if (kind && !streq(kind, "Binding"))
		return kerr_set(err, EBADMSG, "kind \"%s\" is not Binding", kind);
	const char *name = api_obj_name(*body);
	if (name && !streq(name, r->route.name))
		return kerr_set(
		    err, EBADMSG,
		    "the name of the binding (%s) does not match the task in the URL (%s)", name,
		    r->route.name);
	*rv = json_string_value(api_obj_get_path(*body, "metadata.resourceVersion"));
	json_t *tkind = api_obj_get_path(*body, "target.kind");
	if (tkind && !(json_is_string(tkind) && streq(json_string_value(tkind), "Node"))) {
		const char *tk = json_is_string(tkind) ? json_string_value(tkind) : "(not a string)";
		kerr_add_cause(err, "target.kind", "FieldValueNotSupported",
		               "Unsupported value \"%s\": supported values: \"Node\"", tk);
		return kerr_set(err, EINVAL,
		                "Binding \"%s\" is invalid: target.kind: Unsupported value \"%s\": "
		                "supported values: \"Node\"",
		                r->route.name, tk);
	}
	*node = json_string_value(api_obj_get_path(*body, "target.name"));
	if (!*node || !**node) {
		kerr_add_cause(err, "target.name", "FieldValueRequired", "Required value");
		return kerr_set(err, EINVAL,
		                "Binding \"%s\" is invalid: target.name: Required value",
		                r->route.name);
	}
	if (!api_is_dns1123_subdomain(*node)) {
		kerr_add_cause(err, "target.name", "FieldValueInvalid",
		               "must be a DNS-1123 subdomain");
		return kerr_set(err, EINVAL,
		                "Binding \"%s\" is invalid: target.name: Invalid value \"%s\"",
		                r->route.name, *node);
	}
	return 0;
}

static enum MHD_Result binding_reply(struct srv_req *r, int rc, struct kerr *err,
                                     struct srv_write *w)
{
	return srv_reply_write(r, rc, err, w, rc == STORE_NOOP ? 200 : 201, NULL, NULL);
}

enum MHD_Result srv_handle_binding(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	enum MHD_Result ret;
	bool dry;
	if (!srv_req_dry_run(r, &dry, &ret))
		return ret;
	_cleanup_json_ json_t *body = NULL;
	struct binding_arg parsed = {0};
	if (binding_parse(r, &body, &parsed.node, &parsed.rv, &err) < 0)
		return srv_reply_error(r, &err, "tasks", r->route.name);
	_cleanup_free_ char *node_key = store_key("nodes", NULL, parsed.node);
	json_t *node = NULL;
	int rc = store_get(r->srv->store, node_key, &node, &err);
	json_decref(node);
	if (rc == -ENOENT)
		return srv_reply_status(r, 404, "NotFound", "nodes \"%s\" not found", parsed.node);
	if (rc < 0)
		return srv_reply_error(r, &err, "nodes", parsed.node);
	_cleanup_free_ char *key = srv_req_key(r);
	struct srv_write *w = srv_write_new(r->srv, r->route.kind, key);
	struct binding_arg *a = srv_write_alloc(w, sizeof *a);
	*a = parsed; /* borrowed from body, which w holds */
	srv_write_hold(w, TAKE_PTR(body));
	w->dry_run = dry;
	w->compute = binding_compute;
	w->arg = a;
	w->reply = binding_reply;
	return srv_write_submit(r, w);
}
