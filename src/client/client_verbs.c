/*
 * client_verbs: the API verbs (get, list, create, replace, patch, apply,
 * delete, status, binding, version), each one client_request with the
 * right method, path, query and content type. Kept apart from client.c so
 * that the transport and the vocabulary can be read separately.
 */
#include "client/client.h"

#include <errno.h>

#include "client/client_internal.h"
#include "common/kerr.h"
#include "common/util.h"

#define CT_MERGE "application/merge-patch+json"
#define CT_APPLY "application/apply-patch+json"

/* Sends one request to the object path (or collection when name is NULL)
 * and hands the JSON answer to *out. */
static int do_verb(struct client *c, const char *method, const struct api_kind *k, const char *ns,
                   const char *name, const char *sub, const struct client_query *q,
                   const char *ctype, json_t *body, json_t **out, char **apply_result,
                   struct kerr *err)
{
	/* A failure found before any request must not leave the previous
	 * request's Status visible through client_last_status(). */
	c->last_http = 0;
	json_decref(c->last_status);
	c->last_status = NULL;
	if (k->namespaced && name && (!ns || !*ns))
		return kerr_set(err, EINVAL, "%s \"%s\": a namespace is required", k->plural, name);
	_cleanup_free_ char *path = client_path(k, ns, name, sub);
	_cleanup_free_ char *query = client_query_encode(q);
	_cleanup_free_ char *pq = xasprintf("%s%s", path, query);
	struct client_response resp = {0};
	/* the answer is parsed only for a caller that takes it (a create, bind
	 * or status write whose result is not wanted costs no parse) */
	struct client_response *want = out || apply_result ? &resp : NULL;
	int r = client_request(c, method, pq, ctype, body, want, err);
	if (r < 0)
		return r;
	if (out && !resp.body) {
		int code = resp.http_code;
		client_response_clear(&resp);
		return kerr_set(err, EBADMSG, "%s %s: server answered %d without a JSON body",
		                method, path, code);
	}
	if (out)
		*out = TAKE_PTR(resp.body);
	if (apply_result)
		*apply_result = TAKE_PTR(resp.apply_result);
	client_response_clear(&resp);
	return 0;
}

static const char *obj_name(json_t *obj, const char *what, struct kerr *err)
{
	const char *name =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	if (!name || !*name)
		kerr_set(err, EINVAL, "%s: the object has no metadata.name", what);
	return name && *name ? name : NULL;
}

int client_get(struct client *c, const struct api_kind *k, const char *ns, const char *name,
               json_t **out, struct kerr *err)
{
	if (!name || !*name)
		return kerr_set(err, EINVAL, "get %s: a name is required", k->plural);
	return do_verb(c, "GET", k, ns, name, NULL, NULL, NULL, NULL, out, NULL, err);
}

int client_list(struct client *c, const struct api_kind *k, const char *ns,
                const struct client_query *q, json_t **out, struct kerr *err)
{
	json_t *list = NULL;
	struct client_query lq = q ? *q : (struct client_query){0};
	lq.watch = false;
	int r = do_verb(c, "GET", k, ns, NULL, NULL, &lq, NULL, NULL, &list, NULL, err);
	if (r < 0)
		return r;
	if (!json_is_array(json_object_get(list, "items"))) {
		json_decref(list);
		return kerr_set(err, EBADMSG, "list %s: the answer has no items array", k->plural);
	}
	if (out)
		*out = list;
	else
		json_decref(list);
	return 0;
}

int client_list_all(struct client *c, const struct api_kind *k, const char *ns,
                    const struct client_query *q, json_t **out, struct kerr *err)
{
	struct client_query lq = q ? *q : (struct client_query){0};
	_cleanup_json_ json_t *all = NULL;
	int r = client_list(c, k, ns, &lq, &all, err);
	if (r < 0)
		return r;
	json_t *items = json_object_get(all, "items");
	json_t *meta = json_object_get(all, "metadata");
	const char *first = json_string_value(json_object_get(meta, "continue"));
	_cleanup_free_ char *cont = first && *first ? xstrdup(first) : NULL;
	for (int pages = 1; cont; pages++) {
		if (pages > 100000)
			return kerr_set(err, EBADMSG, "list %s: the server keeps paginating",
			                k->plural);
		lq.continue_token = cont;
		_cleanup_json_ json_t *page = NULL;
		r = client_list(c, k, ns, &lq, &page, err);
		if (r < 0)
			return r;
		json_array_extend(items, json_object_get(page, "items"));
		const char *next = json_string_value(
		    json_object_get(json_object_get(page, "metadata"), "continue"));
		free(cont);
		cont = next && *next ? xstrdup(next) : NULL;
	}
	if (json_is_object(meta))
		json_object_del(meta, "continue");
	if (out)
		*out = TAKE_PTR(all);
	return 0;
}

int client_create(struct client *c, const struct api_kind *k, const char *ns, json_t *obj,
                  const struct client_query *q, json_t **out, struct kerr *err)
{
	if (k->namespaced && (!ns || !*ns))
		return kerr_set(err, EINVAL, "create %s: a namespace is required", k->plural);
	return do_verb(c, "POST", k, ns, NULL, NULL, q, NULL, obj, out, NULL, err);
}

int client_replace(struct client *c, const struct api_kind *k, const char *ns, json_t *obj,
                   const struct client_query *q, json_t **out, struct kerr *err)
{
	const char *name = obj_name(obj, "replace", err);
	if (!name)
		return -EINVAL;
	return do_verb(c, "PUT", k, ns, name, NULL, q, NULL, obj, out, NULL, err);
}

int client_patch(struct client *c, const struct api_kind *k, const char *ns, const char *name,
                 json_t *patch, const struct client_query *q, json_t **out, struct kerr *err)
{
	if (!name || !*name)
		return kerr_set(err, EINVAL, "patch %s: a name is required", k->plural);
	return do_verb(c, "PATCH", k, ns, name, NULL, q, CT_MERGE, patch, out, NULL, err);
}

const char *client_apply_result_name(enum client_apply_result r)
{
	switch (r) {
	case CLIENT_APPLY_CREATED:
		return "created";
	case CLIENT_APPLY_CONFIGURED:
		return "configured";
	case CLIENT_APPLY_UNCHANGED:
		return "unchanged";
	case CLIENT_APPLY_UNKNOWN:
		break;
	}
	return "unknown";
}

static enum client_apply_result parse_apply_result(const char *s)
{
	if (streq(s, "created"))
		return CLIENT_APPLY_CREATED;
	if (streq(s, "configured"))
		return CLIENT_APPLY_CONFIGURED;
	if (streq(s, "unchanged"))
		return CLIENT_APPLY_UNCHANGED;
	return CLIENT_APPLY_UNKNOWN;
}

int client_apply(struct client *c, const struct api_kind *k, const char *ns, json_t *obj,
                 const struct client_query *q, json_t **out, enum client_apply_result *result,
                 struct kerr *err)
{
	const char *name = obj_name(obj, "apply", err);
	if (!name)
		return -EINVAL;
	struct client_query aq = q ? *q : (struct client_query){0};
	if (!aq.field_manager || !*aq.field_manager)
		aq.field_manager = CLIENT_DEFAULT_FIELD_MANAGER;
	_cleanup_free_ char *ar = NULL;
	int r = do_verb(c, "PATCH", k, ns, name, NULL, &aq, CT_APPLY, obj, out, &ar, err);
	if (r < 0)
		return r;
	if (result)
		*result = parse_apply_result(ar);
	return 0;
}

int client_delete(struct client *c, const struct api_kind *k, const char *ns, const char *name,
                  const struct client_query *q, json_t **out, struct kerr *err)
{
	if (!name || !*name)
		return kerr_set(err, EINVAL, "delete %s: a name is required", k->plural);
	return do_verb(c, "DELETE", k, ns, name, NULL, q, NULL, NULL, out, NULL, err);
}

int client_put_status(struct client *c, const struct api_kind *k, const char *ns, json_t *obj,
                      const struct client_query *q, json_t **out, struct kerr *err)
{
	const char *name = obj_name(obj, "put status", err);
	if (!name)
		return -EINVAL;
	return do_verb(c, "PUT", k, ns, name, "status", q, NULL, obj, out, NULL, err);
}

int client_patch_status(struct client *c, const struct api_kind *k, const char *ns,
                        const char *name, json_t *patch, const struct client_query *q, json_t **out,
                        struct kerr *err)
{
	if (!name || !*name)
		return kerr_set(err, EINVAL, "patch %s status: a name is required", k->plural);
	return do_verb(c, "PATCH", k, ns, name, "status", q, CT_MERGE, patch, out, NULL, err);
}

int client_bind(struct client *c, const char *ns, const char *name, const char *node,
                struct kerr *err)
{
	const struct api_kind *k = api_kind_by_kind("Task");
	if (!k)
		return kerr_set(err, EINVAL, "the kind table has no Task");
	if (!name || !*name || !node || !*node)
		return kerr_set(err, EINVAL, "bind: a task name and a node name are required");
	_cleanup_json_ json_t *b =
	    json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", API_GROUP_VERSION, "kind",
	              "Binding", "metadata", "name", name, "target", "name", node);
	return do_verb(c, "POST", k, ns, name, "binding", NULL, NULL, b, NULL, NULL, err);
}

int client_version(struct client *c, json_t **out, struct kerr *err)
{
	struct client_response resp = {0};
	int r = client_request(c, "GET", "/version", NULL, NULL, &resp, err);
	if (r < 0)
		return r;
	if (!json_is_object(resp.body)) {
		client_response_clear(&resp);
		return kerr_set(err, EBADMSG, "/version: the answer is not a JSON object");
	}
	if (out)
		*out = TAKE_PTR(resp.body);
	client_response_clear(&resp);
	return 0;
}
