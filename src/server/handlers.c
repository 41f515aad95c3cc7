/*
 * server/handlers — dispatch on (route, method), and the read-only verbs:
 * discovery, health, version, metrics, get and list.
 *
 * Lists read one consistent LMDB snapshot through store_list, which applies
 * the selectors as it goes so that `limit` counts matching objects.
 * `continue` resumes after the last key returned, against the current
 * state (not the first page's snapshot): a token stays valid however old
 * it is, and a continued list may see changes made since the first page.
 * Clients that need one snapshot use a single unlimited list, as the
 * informers do.
 */
#include "server/handlers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/kind.h"
#include "api/meta.h"
#include "api/selector.h"
#include "api/status.h"
#include "common/kerr.h"
#include "common/util.h"
#include "server/conns.h"
#include "server/etcdhealth.h"
#include "server/metrics.h"
#include "server/watch.h"
#include "store/store.h"

char *srv_req_key(struct srv_req *r)
{
	return store_key(r->route.kind->plural, r->route.kind->namespaced ? r->route.ns : NULL,
	                 r->route.name);
}

bool srv_req_dry_run(struct srv_req *r, bool *dry, enum MHD_Result *ret)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	*dry = false;
	if (srv_query_dry_run(srv_req_query(r, "dryRun"), dry, &err) < 0) {
		*ret = srv_reply_error(r, &err, NULL, NULL);
		return false;
	}
	return true;
}

enum MHD_Result srv_reply_not_found(struct srv_req *r)
{
	json_t *st =
	    api_status_new(404, "NotFound", NULL, NULL, r->route.kind->plural, r->route.name);
	_cleanup_free_ char *msg =
	    xasprintf("%s \"%s\" not found", r->route.kind->plural, r->route.name);
	json_object_set_new(st, "message", json_string(msg));
	return srv_reply_json(r, 404, st, NULL, NULL);
}

static json_t *str_array(const char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static json_t *resource_entry(const char *name, const char *singular, bool namespaced,
                              const char *kind, const char *const *verbs, const char *const *shorts)
{
	json_t *e = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", name, "singularName", singular,
	                      "namespaced", namespaced, "kind", kind, "verbs", str_array(verbs));
	if (shorts && *shorts)
		json_object_set_new(e, "shortNames", str_array(shorts));
	return e;
}

static json_t *resource_list(void)
{
	static const char *const verbs[] = {"create", "delete", "get",   "list",
	                                    "patch",  "update", "watch", NULL};
	static const char *const status_verbs[] = {"get", "patch", "update", NULL};
	static const char *const binding_verbs[] = {"create", NULL};
	json_t *res = json_array();
	for (size_t i = 0; i < api_kind_count(); i++) {
		const struct api_kind *k = api_kind_at(i);
		json_array_append_new(res, resource_entry(k->plural, k->singular, k->namespaced,
		                                          k->kind, verbs, k->short_names));
		_cleanup_free_ char *sub = xasprintf("%s/status", k->plural);
		if (k->has_status)
			json_array_append_new(res, resource_entry(sub, "", k->namespaced, k->kind,
			                                          status_verbs, NULL));
		if (streq(k->plural, "tasks"))
			json_array_append_new(res, resource_entry("tasks/binding", "", true,
			                                          "Binding", binding_verbs, NULL));
	}
	return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
	                 "groupVersion", API_GROUP_VERSION, "resources", res);
}

static json_t *api_group(void)
{
	return json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "kind", "APIGroup",
	                 "apiVersion", "v1", "name", API_GROUP, "versions", "groupVersion",
	                 API_GROUP_VERSION, "version", API_VERSION, "preferredVersion",
	                 "groupVersion", API_GROUP_VERSION, "version", API_VERSION);
}

static enum MHD_Result handle_discovery(struct srv_req *r)
{
	switch (r->route.type) {
	case SRV_ROUTE_APIS: {
		json_t *g = api_group();
		json_object_del(g, "kind");
		json_object_del(g, "apiVersion");
		return srv_reply_json(r, 200,
		                      json_pack("{s:s, s:s, s:[o]}", "kind", "APIGroupList",
		                                "apiVersion", "v1", "groups", g),
		                      NULL, NULL);
	}
	case SRV_ROUTE_GROUP:
		return srv_reply_json(r, 200, api_group(), NULL, NULL);
	default:
		return srv_reply_json(r, 200, resource_list(), NULL, NULL);
	}
}

static enum MHD_Result handle_metrics(struct srv_req *r)
{
	struct store_stats st = {0};
	store_get_stats(r->srv->store, &st);
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	srv_metrics_render(r->srv->metrics, &st, srv_hub_watchers(r->srv->hub), &b);
	sbuf_printf(&b,
	            "# HELP keel_http_connections Open HTTP connections.\n"
	            "# TYPE keel_http_connections gauge\nkeel_http_connections %zu\n",
	            srv_conns_open(r->srv->conns));
	sbuf_printf(&b,
	            "# HELP keel_store_backend The store's backend (--store).\n"
	            "# TYPE keel_store_backend gauge\nkeel_store_backend{backend=\"%s\"} 1\n",
	            r->srv->opts.store_backend == SRV_STORE_ETCD ? "etcd" : "lmdb");
	if (r->srv->etcdh)
		srv_etcdh_render(r->srv->etcdh, &b);
	pthread_mutex_lock(&r->srv->metrics_mu);
	if (r->srv->metrics_source)
		r->srv->metrics_source(r->srv->metrics_ud, &b);
	pthread_mutex_unlock(&r->srv->metrics_mu);
	return srv_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	                      b.data ? b.data : "");
}

/* Ready: serving, and with etcd, some endpoint reports a healthy cluster
 * (server/etcdhealth.h). The body says what is missing. */
static enum MHD_Result handle_readyz(struct srv_req *r)
{
	if (!atomic_load(&r->srv->ready))
		return srv_reply_text(r, 503, "text/plain; charset=utf-8", "not ready");
	if (r->srv->etcdh && !srv_etcdh_ok(r->srv->etcdh)) {
		_cleanup_free_ char *why = srv_etcdh_describe(r->srv->etcdh);
		_cleanup_free_ char *body = xasprintf("not ready: %s", why);
		return srv_reply_text(r, 503, "text/plain; charset=utf-8", body);
	}
	return srv_reply_text(r, 200, "text/plain; charset=utf-8", "ok");
}

static enum MHD_Result handle_get(struct srv_req *r)
{
	_cleanup_free_ char *key = srv_req_key(r);
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	json_t *obj = NULL;
	int rc = store_get(r->srv->store, key, &obj, &err);
	if (rc == -ENOENT)
		return srv_reply_not_found(r);
	if (rc < 0)
		return srv_reply_error(r, &err, r->route.kind->plural, r->route.name);
	return srv_reply_json(r, 200, obj, NULL, NULL);
}

struct list_filter {
	struct api_selector *labels;
	struct api_fieldsel *fields;
};

static bool list_match(void *ctx, json_t *obj)
{
	struct list_filter *f = ctx;
	return (!f->labels || api_selector_match(f->labels, api_obj_labels(obj))) &&
	       (!f->fields || api_fieldsel_match(f->fields, obj));
}

static void list_filter_clear(struct list_filter *f)
{
	api_selector_free(f->labels);
	api_fieldsel_free(f->fields);
}

int srv_parse_selectors(struct srv_req *r, struct api_selector **labels,
                        struct api_fieldsel **fields, struct kerr *err)
{
	const char *ls = srv_req_query(r, "labelSelector"), *fs = srv_req_query(r, "fieldSelector");
	*labels = NULL;
	*fields = NULL;
	if (ls && *ls && api_selector_parse(ls, labels, err) < 0) {
		err->code = EBADMSG;
		return kerr_prefix(err, "labelSelector");
	}
	if (fs && *fs && api_fieldsel_parse(fs, fields, err) < 0) {
		api_selector_free(*labels);
		*labels = NULL;
		err->code = EBADMSG;
		return kerr_prefix(err, "fieldSelector");
	}
	return 0;
}

static char *list_prefix(struct srv_req *r)
{
	const struct api_kind *k = r->route.kind;
	if (k->namespaced && r->route.ns)
		return xasprintf("%s/%s/", k->plural, r->route.ns);
	return xasprintf("%s/", k->plural);
}

static json_t *list_object(const struct api_kind *k, json_t *items, uint64_t rev, const char *next)
{
	char rv[24];
	snprintf(rv, sizeof rv, "%" PRIu64, rev);
	json_t *meta = json_pack("{s:s}", "resourceVersion", rv);
	if (next) {
		_cleanup_free_ char *tok = srv_continue_encode(next);
		json_object_set_new(meta, "continue", json_string(tok));
	}
	return json_pack("{s:s, s:s, s:o, s:o}", "kind", k->list_kind, "apiVersion",
	                 API_GROUP_VERSION, "metadata", meta, "items", items);
}

static enum MHD_Result handle_list(struct srv_req *r)
{
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_(list_filter_clear) struct list_filter f = {0};
	uint64_t limit = 0;
	_cleanup_free_ char *prefix = list_prefix(r);
	_cleanup_free_ char *after = NULL;
	const char *cont = srv_req_query(r, "continue");
	if (srv_parse_selectors(r, &f.labels, &f.fields, &err) < 0 ||
	    srv_query_u64("limit", srv_req_query(r, "limit"), &limit, &err) < 0 ||
	    (cont && *cont && srv_continue_decode(cont, prefix, &after, &err) < 0))
		return srv_reply_error(r, &err, NULL, NULL);
	json_t *items = NULL;
	uint64_t rev = 0;
	_cleanup_free_ char *next = NULL;
	if (store_list(r->srv->store, prefix, after, (size_t)limit, list_match, &f, &items, &rev,
	               &next, &err) < 0)
		return srv_reply_error(r, &err, r->route.kind->plural, NULL);
	return srv_reply_json(r, 200, list_object(r->route.kind, items, rev, next), NULL, NULL);
}

static enum MHD_Result handle_collection(struct srv_req *r)
{
	if (r->method == SRV_POST)
		return srv_handle_create(r);
	bool watch = false;
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	if (srv_query_bool("watch", srv_req_query(r, "watch"), &watch, &err) < 0)
		return srv_reply_error(r, &err, NULL, NULL);
	return watch ? srv_handle_watch(r) : handle_list(r);
}

static enum MHD_Result handle_item(struct srv_req *r)
{
	switch (r->route.sub) {
	case SRV_SUB_NONE:
		switch (r->method) {
		case SRV_PUT:
			return srv_handle_replace(r);
		case SRV_PATCH:
			return srv_handle_patch(r);
		case SRV_DELETE:
			return srv_handle_delete(r);
		default:
			return handle_get(r);
		}
	case SRV_SUB_STATUS:
		return r->method == SRV_GET || r->method == SRV_HEAD ? handle_get(r)
		                                                     : srv_handle_status_write(r);
	case SRV_SUB_BINDING:
		return srv_handle_binding(r);
	case SRV_SUB_LOG:
		return srv_handle_log(r);
	case SRV_SUB_LOGKEY:
		return srv_handle_logkey(r);
	}
	return srv_reply_status(r, 500, "InternalError", "unroutable subresource");
}

enum MHD_Result srv_handle(struct srv_req *r)
{
	switch (r->route.type) {
	case SRV_ROUTE_HEALTHZ:
		return srv_reply_text(r, 200, "text/plain; charset=utf-8", "ok");
	case SRV_ROUTE_READYZ:
		return handle_readyz(r);
	case SRV_ROUTE_VERSION:
		return srv_reply_json(r, 200,
		                      json_pack("{s:s, s:s}", "version", KEEL_VERSION, "apiVersion",
		                                API_GROUP_VERSION),
		                      NULL, NULL);
	case SRV_ROUTE_METRICS:
		return handle_metrics(r);
	case SRV_ROUTE_APIS:
	case SRV_ROUTE_GROUP:
	case SRV_ROUTE_RESOURCES:
		return handle_discovery(r);
	case SRV_ROUTE_COLLECTION:
		return handle_collection(r);
	case SRV_ROUTE_ITEM:
		return handle_item(r);
	case SRV_ROUTE_LEASE:
		return srv_handle_lease(r);
	case SRV_ROUTE_TOKEN:
		return srv_handle_tokens(r);
	}
	return srv_reply_status(r, 500, "InternalError", "unroutable request");
}
