/*
 * api/schema — the static schema of every kind, and the cross-field checks.
 *
 * Each object level is a table of struct vfield (api/schema.h) terminated by
 * {NULL}; the engine in validate.c walks them. Rules that involve more than
 * one field (limits >= requests, a Deployment's selector must match its
 * template, exactly one health-check handler) are check functions attached
 * to the enclosing level; they run whenever that level has the right JSON
 * type, so they must inspect the types of what they read themselves.
 * The tables are the reference for what keel accepts; DESIGN.md "Objects"
 * is their prose form.
 */
#include <errno.h>
#include <stdio.h>

#include "api/meta.h"
#include "api/quantity.h"
#include "api/schema.h"
#include "api/selector.h"
#include "common/kerr.h"
#include "common/util.h"

#define MAX_LABELS           64
#define MAX_ANNOTATION_BYTES (256 * 1024)
#define END                                                                                        \
	{                                                                                          \
		NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, NULL                                        \
	}

#define STR(n, fl)                                                                                 \
	{                                                                                          \
		.name = n, .type = VT_STRING, .flags = fl                                          \
	}
#define STRC(n, fl, chk)                                                                           \
	{                                                                                          \
		.name = n, .type = VT_STRING, .flags = fl, .check = chk                            \
	}
#define INT(n, fl)                                                                                 \
	{                                                                                          \
		.name = n, .type = VT_INT, .flags = fl                                             \
	}
#define INTR(n, fl, lo, hi)                                                                        \
	{                                                                                          \
		.name = n, .type = VT_INT, .flags = (fl) | VF_MIN | VF_MAX, .min = lo, .max = hi   \
	}
#define INTMIN(n, fl, lo)                                                                          \
	{                                                                                          \
		.name = n, .type = VT_INT, .flags = (fl) | VF_MIN, .min = lo                       \
	}
#define BOOL(n)                                                                                    \
	{                                                                                          \
		.name = n, .type = VT_BOOL                                                         \
	}
#define QTY(n)                                                                                     \
	{                                                                                          \
		.name = n, .type = VT_QUANTITY                                                     \
	}
#define TIME(n)                                                                                    \
	{                                                                                          \
		.name = n, .type = VT_TIME                                                         \
	}
#define ENUM(n, fl, e)                                                                             \
	{                                                                                          \
		.name = n, .type = VT_ENUM, .flags = fl, .enums = e                                \
	}
#define OBJ(n, fl, f)                                                                              \
	{                                                                                          \
		.name = n, .type = VT_OBJECT, .flags = fl, .fields = f                             \
	}
#define OBJC(n, fl, f, chk)                                                                        \
	{                                                                                          \
		.name = n, .type = VT_OBJECT, .flags = fl, .fields = f, .check = chk               \
	}
#define ARR(n, fl, it)                                                                             \
	{                                                                                          \
		.name = n, .type = VT_ARRAY, .flags = fl, .item = it                               \
	}
#define ARRC(n, fl, it, chk)                                                                       \
	{                                                                                          \
		.name = n, .type = VT_ARRAY, .flags = fl, .item = it, .check = chk                 \
	}

static const struct vfield any_string = {.name = "", .type = VT_STRING};
static const struct vfield any_object = {.name = "", .type = VT_ANY_OBJECT};

/* ---- format checks ---- */

static void chk_dns_label(struct vctx *c, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	if (s && !api_is_dns1123_label(s))
		vc_cause(
		    c, path, R_INVALID,
		    "Invalid value: \"%s\": must be a lowercase RFC 1123 label: at most 63 "
		    "characters of a-z, "
		    "0-9 and '-', starting and ending with a letter or digit (e.g. \"my-name\")",
		    s);
}

static void chk_dns_subdomain(struct vctx *c, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	if (s && !api_is_dns1123_subdomain(s))
		vc_cause(c, path, R_INVALID,
		         "Invalid value: \"%s\": must be a lowercase RFC 1123 subdomain: at most "
		         "253 characters of "
		         "a-z, 0-9, '-' and '.', each part starting and ending with a letter or "
		         "digit (e.g. "
		         "\"web-1\" or \"example.com\")",
		         s);
}

static void chk_label_key_str(struct vctx *c, const char *k, const char *path)
{
	if (!api_is_label_key(k))
		vc_cause(c, path, R_INVALID,
		         "Invalid value: \"%s\": a label key must be [prefix/]name: name at most "
		         "63 characters of "
		         "letters, digits, '-', '_' and '.', starting and ending with a letter or "
		         "digit; prefix a "
		         "DNS subdomain (e.g. \"app\" or \"example.com/tier\")",
		         k);
}

static void chk_qualified(struct vctx *c, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	if (s)
		chk_label_key_str(c, s, path);
}

static void chk_label_map(struct vctx *c, json_t *v, const char *path)
{
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		_cleanup_free_ char *p = api_path_key(path, k);
		chk_label_key_str(c, k, p);
		const char *val = json_string_value(e);
		if (val && !api_is_label_value(val))
			vc_cause(c, p, R_INVALID,
			         "Invalid value: \"%s\": a label value must be empty or at most 63 "
			         "characters of "
			         "letters, digits, '-', '_' and '.', starting and ending with a "
			         "letter or digit",
			         val);
	}
}

static void chk_labels(struct vctx *c, json_t *v, const char *path)
{
	if (json_object_size(v) > MAX_LABELS) {
		vc_cause(c, path, R_TOOMANY, "Too many: %zu: must have at most %d labels",
		         json_object_size(v), MAX_LABELS);
		return;
	}
	chk_label_map(c, v, path);
}

static void chk_annotations(struct vctx *c, json_t *v, const char *path)
{
	size_t total = 0;
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		_cleanup_free_ char *p = api_path_key(path, k);
		chk_label_key_str(c, k, p);
		total += strlen(k) + json_string_length(e);
	}
	if (total > MAX_ANNOTATION_BYTES)
		vc_cause(c, path, R_TOOLONG,
		         "Too long: must have at most %d bytes (keys and values), got %zu",
		         MAX_ANNOTATION_BYTES, total);
}

static void chk_env_name(struct vctx *c, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	bool ok = s && *s && !(*s >= '0' && *s <= '9');
	for (const char *p = s; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.';
	if (s && !ok)
		vc_cause(c, path, R_INVALID,
		         "Invalid value: \"%s\": an environment variable name must consist of "
		         "letters, digits, "
		         "'_', '-' or '.', and must not start with a digit (e.g. \"MY_VAR\")",
		         s);
}

static void chk_port_name(struct vctx *c, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	if (s && (strlen(s) > 15 || !api_is_dns1123_label(s)))
		vc_cause(c, path, R_INVALID,
		         "Invalid value: \"%s\": a port name must be at most 15 characters of a-z, "
		         "0-9 and '-', "
		         "starting and ending with a letter or digit (e.g. \"http\")",
		         s);
}

static void chk_abs_path(struct vctx *c, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	if (s && *s != '/')
		vc_cause(c, path, R_INVALID,
		         "Invalid value: \"%s\": must be an absolute path starting with '/'", s);
}

static void chk_url(struct vctx *c, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	if (s && *s && !strstartswith(s, "http://") && !strstartswith(s, "https://"))
		vc_cause(c, path, R_INVALID,
		         "Invalid value: \"%s\": must be an http:// or https:// URL", s);
}

static void chk_obj_name(struct vctx *c, json_t *v, const char *path)
{
	if (streq(vc_kind(c)->kind, "Namespace"))
		chk_dns_label(c, v, path);
	else
		chk_dns_subdomain(c, v, path);
}

static void chk_owner_refs(struct vctx *c, json_t *v, const char *path)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(v, i, e) if (json_is_true(json_object_get(e, "controller"))) n++;
	if (n > 1)
		vc_cause(c, path, R_INVALID,
		         "Invalid value: only one reference can have controller set to true, "
		         "found %zu",
		         n);
}

static void chk_meta(struct vctx *c, json_t *v, const char *path)
{
	const char *ns = json_string_value(json_object_get(v, "namespace"));
	if (!vc_kind(c)->namespaced && ns && *ns) {
		_cleanup_free_ char *p = api_path_key(path, "namespace");
		vc_cause(c, p, R_FORBIDDEN, "Forbidden: not allowed on %s, which is cluster-scoped",
		         vc_kind(c)->kind);
	}
}

/* Array elements' `key` must be unique; reports the later duplicates. */
static void chk_unique_key(struct vctx *c, json_t *arr, const char *path, const char *key)
{
	size_t i, j;
	json_t *e, *f;
	json_array_foreach(arr, i, e)
	{
		const char *s = json_string_value(json_object_get(e, key));
		for (j = 0; s && j < i; j++) {
			f = json_array_get(arr, j);
			if (streq(s, json_string_value(json_object_get(f, key)))) {
				_cleanup_free_ char *ip = api_path_index(path, i);
				_cleanup_free_ char *p = api_path_key(ip, key);
				vc_cause(c, p, R_DUPLICATE, "Duplicate value: \"%s\"", s);
				break;
			}
		}
	}
}

static void chk_env(struct vctx *c, json_t *v, const char *path)
{
	chk_unique_key(c, v, path, "name");
}

static void chk_ports(struct vctx *c, json_t *v, const char *path)
{
	chk_unique_key(c, v, path, "name");
	size_t i, j;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		json_t *port = json_object_get(e, "containerPort");
		const char *proto = json_string_value(json_object_get(e, "protocol"));
		for (j = 0; json_is_integer(port) && j < i; j++) {
			json_t *f = json_array_get(v, j);
			const char *fproto = json_string_value(json_object_get(f, "protocol"));
			if (json_equal(port, json_object_get(f, "containerPort")) &&
			    streq(proto ? proto : "TCP", fproto ? fproto : "TCP")) {
				_cleanup_free_ char *ip = api_path_index(path, i);
				_cleanup_free_ char *p = api_path_key(ip, "containerPort");
				vc_cause(c, p, R_DUPLICATE, "Duplicate value: %lld/%s",
				         (long long)json_integer_value(port),
				         proto ? proto : "TCP");
				break;
			}
		}
	}
}

static void chk_resources(struct vctx *c, json_t *v, const char *path)
{
	static const char *const names[] = {"cpu", "memory"};
	json_t *req = json_object_get(v, "requests"), *lim = json_object_get(v, "limits");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		json_t *r = json_object_get(req, names[i]), *l = json_object_get(lim, names[i]);
		int64_t rq, lq;
		if (!r || !l || api_quantity_from_json(r, &rq, NULL) < 0 ||
		    api_quantity_from_json(l, &lq, NULL) < 0)
			continue;
		if (rq > lq) {
			_cleanup_free_ char *rp = api_path_key(path, "requests");
			_cleanup_free_ char *p = api_path_key(rp, names[i]);
			_cleanup_free_ char *rs = vc_render(r), *ls = vc_render(l);
			vc_cause(
			    c, p, R_INVALID,
			    "Invalid value: %s: must be less than or equal to the %s limit (%s)",
			    rs, names[i], ls);
		}
	}
}

static void chk_health(struct vctx *c, json_t *v, const char *path)
{
	bool get = json_object_get(v, "httpGet") && !json_is_null(json_object_get(v, "httpGet"));
	bool ex = json_object_get(v, "exec") && !json_is_null(json_object_get(v, "exec"));
	if (!get && !ex)
		vc_cause(c, path, R_REQUIRED,
		         "Required value: must specify one handler, httpGet or exec");
	if (get && ex) {
		_cleanup_free_ char *p = api_path_key(path, "exec");
		vc_cause(c, p, R_FORBIDDEN,
		         "Forbidden: may not specify more than one handler (httpGet is set)");
	}
}

static bool is_zero_int_or_percent(json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v) == 0;
	const char *s = json_string_value(v);
	return s && strspn(s, "0") == strlen(s) - 1 && s[strlen(s) - 1] == '%';
}

static void chk_rolling(struct vctx *c, json_t *v, const char *path)
{
	json_t *surge = json_object_get(v, "maxSurge"),
	       *unav = json_object_get(v, "maxUnavailable");
	if (surge && unav && is_zero_int_or_percent(surge) && is_zero_int_or_percent(unav)) {
		_cleanup_free_ char *p = api_path_key(path, "maxUnavailable");
		_cleanup_free_ char *r = vc_render(unav);
		vc_cause(c, p, R_INVALID, "Invalid value: %s: may not be 0 when maxSurge is 0", r);
	}
	const char *s = json_string_value(unav);
	if (s && strlen(s) >= 2 && s[strlen(s) - 1] == '%' && atoi(s) > 100) {
		_cleanup_free_ char *p = api_path_key(path, "maxUnavailable");
		vc_cause(c, p, R_INVALID, "Invalid value: \"%s\": must not be greater than 100%%",
		         s);
	}
}

static void chk_strategy(struct vctx *c, json_t *v, const char *path)
{
	json_t *ru = json_object_get(v, "rollingUpdate");
	if (streq(json_string_value(json_object_get(v, "type")), "Recreate") && ru &&
	    !json_is_null(ru)) {
		_cleanup_free_ char *p = api_path_key(path, "rollingUpdate");
		vc_cause(c, p, R_FORBIDDEN,
		         "Forbidden: may not be specified when strategy type is 'Recreate'");
	}
}

static void chk_selector_matches(struct vctx *c, json_t *spec, const char *path)
{
	json_t *sel = json_object_get(spec, "selector");
	json_t *labels = json_object_get(
	    json_object_get(json_object_get(spec, "template"), "metadata"), "labels");
	if (!sel || json_is_null(sel) || !json_is_object(sel))
		return; /* absent: defaulted from the template labels */
	_cleanup_free_ char *sp = api_path_key(path, "selector");
	struct api_selector *s = NULL;
	struct kerr e = KERR_INIT;
	if (api_selector_from_json(sel, &s, &e) < 0) {
		kerr_clear(&e);
		return; /* the selector's own fields were reported */
	}
	if (api_selector_empty(s))
		vc_cause(c, sp, R_INVALID,
		         "Invalid value: {}: empty selector is invalid for a Deployment");
	else if (json_is_object(labels) && !api_selector_match(s, labels)) {
		_cleanup_free_ char *lp = xasprintf("%s.template.metadata.labels", path);
		_cleanup_free_ char *ls = vc_render(labels);
		_cleanup_free_ char *ss = api_selector_format(s);
		vc_cause(
		    c, lp, R_INVALID,
		    "Invalid value: %s: selector does not match template labels (selector: %s)", ls,
		    ss);
	}
	api_selector_free(s);
}

/* What a Deployment's Task template may not say, though a Task may:
 *   - restartPolicy other than Always: the Deployment keeps `replicas`
 *     Tasks running, so a Task that is let end is replaced at once, and
 *     again, in a loop (Kubernetes' apps/v1 rejects it the same way);
 *   - nodeName: it is the scheduler's to set (DESIGN.md), and a pinned
 *     template would put every replica on one node past the fit filter
 *     (Kubernetes allows it; keel chooses not to: nodeSelector on a label
 *     the agent was given with --labels does the same through the
 *     scheduler). */
static void chk_deploy_template(struct vctx *c, json_t *v, const char *path)
{
	json_t *ts = api_obj_get_path(v, "template.spec");
	if (!json_is_object(ts))
		return;
	const char *rp = json_string_value(json_object_get(ts, "restartPolicy"));
	/* values outside the enum were reported by the enum check */
	if (streq(rp, "OnFailure") || streq(rp, "Never")) {
		_cleanup_free_ char *p = xasprintf("%s.template.spec.restartPolicy", path);
		vc_cause(c, p, R_UNSUPPORTED,
		         "Unsupported value: \"%s\": supported values: \"Always\" (a "
		         "Deployment replaces every Task that ends; use a Task for a run to "
		         "completion)",
		         rp);
	}
	json_t *nn = json_object_get(ts, "nodeName");
	if (nn && !json_is_null(nn)) {
		_cleanup_free_ char *p = xasprintf("%s.template.spec.nodeName", path);
		vc_cause(c, p, R_FORBIDDEN,
		         "Forbidden: may not be set in a Deployment's template (the scheduler "
		         "sets it); use nodeSelector with a label of the node (keel agent "
		         "--labels)");
	}
}

static void chk_deploy_spec(struct vctx *c, json_t *v, const char *path)
{
	chk_selector_matches(c, v, path);
	chk_deploy_template(c, v, path);
	json_t *pd = json_object_get(v, "progressDeadlineSeconds"),
	       *mr = json_object_get(v, "minReadySeconds");
	if (json_is_integer(pd) && json_is_integer(mr) &&
	    json_integer_value(pd) <= json_integer_value(mr)) {
		_cleanup_free_ char *p = api_path_key(path, "progressDeadlineSeconds");
		vc_cause(c, p, R_INVALID,
		         "Invalid value: %lld: must be greater than minReadySeconds (%lld)",
		         (long long)json_integer_value(pd), (long long)json_integer_value(mr));
	}
}

static void chk_expr_values(struct vctx *c, json_t *v, const char *path)
{
	const char *op = json_string_value(json_object_get(v, "operator"));
	json_t *vals = json_object_get(v, "values");
	size_t n = json_is_array(vals) ? json_array_size(vals) : 0;
	_cleanup_free_ char *p = api_path_key(path, "values");
	if ((streq(op, "In") || streq(op, "NotIn")) && n == 0)
		vc_cause(c, p, R_REQUIRED, "Required value: must be specified when operator is %s",
		         op);
	if ((streq(op, "Exists") || streq(op, "DoesNotExist")) && n > 0)
		vc_cause(c, p, R_FORBIDDEN, "Forbidden: may not be specified when operator is %s",
		         op);
	size_t i;
	json_t *e;
	json_array_foreach(vals, i, e)
	{
		const char *s = json_string_value(e);
		if (s && !api_is_label_value(s)) {
			_cleanup_free_ char *ip = api_path_index(p, i);
			vc_cause(c, ip, R_INVALID,
			         "Invalid value: \"%s\": must be a valid label value", s);
		}
	}
}

/* ---- tables ---- */

static const char *const e_restart[] = {"Always", "OnFailure", "Never", NULL};
static const char *const e_protocol[] = {"TCP", "UDP", NULL};
static const char *const e_task_phase[] = {"Pending",   "Scheduled", "Running",
                                           "Succeeded", "Failed",    NULL};
static const char *const e_cond_status[] = {"True", "False", "Unknown", NULL};
static const char *const e_strategy[] = {"RollingUpdate", "Recreate", NULL};
static const char *const e_sel_op[] = {"In", "NotIn", "Exists", "DoesNotExist", NULL};
static const char *const e_taint[] = {"NoSchedule", "PreferNoSchedule", "NoExecute", NULL};
static const char *const e_ns_phase[] = {"Active", "Terminating", NULL};
static const char *const e_event_type[] = {"Normal", "Warning", NULL};

static const struct vfield owner_ref_fields[] = {
    STR("apiVersion", VF_REQUIRED | VF_NONEMPTY),
    STR("kind", VF_REQUIRED | VF_NONEMPTY),
    STR("name", VF_REQUIRED | VF_NONEMPTY),
    STR("uid", VF_REQUIRED | VF_NONEMPTY),
    BOOL("controller"),
    BOOL("blockOwnerDeletion"),
    END,
};
static const struct vfield owner_ref = OBJ("", 0, owner_ref_fields);
static const struct vfield finalizer = STRC("", 0, chk_qualified);

static const struct vfield meta_fields[] = {
    STRC("name", VF_REQUIRED, chk_obj_name),
    STRC("namespace", 0, chk_dns_label),
    {.name = "labels", .type = VT_STRMAP, .check = chk_labels},
    {.name = "annotations", .type = VT_STRMAP, .check = chk_annotations},
    STR("uid", 0),
    STR("resourceVersion", 0),
    INTMIN("generation", 0, 0),
    TIME("creationTimestamp"),
    TIME("deletionTimestamp"),
    INTMIN("deletionGracePeriodSeconds", 0, 0),
    ARRC("ownerReferences", 0, &owner_ref, chk_owner_refs),
    ARR("finalizers", 0, &finalizer),
    ARR("managedFields", 0, &any_object),
    END,
};

static const struct vfield template_meta_fields[] = {
    {.name = "labels", .type = VT_STRMAP, .flags = VF_REQUIRED | VF_NONEMPTY, .check = chk_labels},
    {.name = "annotations", .type = VT_STRMAP, .check = chk_annotations},
    END,
};

static const struct vfield env_fields[] = {
    STRC("name", VF_REQUIRED, chk_env_name),
    STR("value", 0),
    END,
};
static const struct vfield env_item = OBJ("", 0, env_fields);

static const struct vfield resource_list[] = {QTY("cpu"), QTY("memory"), END};
static const struct vfield resources_fields[] = {
    OBJ("requests", 0, resource_list),
    OBJ("limits", 0, resource_list),
    END,
};

static const struct vfield port_fields[] = {
    STRC("name", 0, chk_port_name),
    INTR("containerPort", VF_REQUIRED, 1, 65535),
    INTR("hostPort", 0, 1, 65535),
    ENUM("protocol", 0, e_protocol),
    END,
};
static const struct vfield port_item = OBJ("", 0, port_fields);

static const struct vfield http_get_fields[] = {
    STRC("path", 0, chk_abs_path),
    INTR("port", VF_REQUIRED, 1, 65535),
    END,
};
static const struct vfield exec_fields[] = {
    ARR("command", VF_REQUIRED | VF_NONEMPTY, &any_string),
    END,
};
static const struct vfield health_fields[] = {
    OBJ("httpGet", 0, http_get_fields),
    OBJ("exec", 0, exec_fields),
    INTMIN("periodSeconds", 0, 1),
    INTMIN("timeoutSeconds", 0, 1),
    INTMIN("failureThreshold", 0, 1),
    INTMIN("initialDelaySeconds", 0, 0),
    END,
};

static const struct vfield task_spec_fields[] = {
    STR("image", VF_REQUIRED | VF_NONEMPTY),
    ARR("command", 0, &any_string),
    ARR("args", 0, &any_string),
    ARRC("env", 0, &env_item, chk_env),
    OBJC("resources", 0, resources_fields, chk_resources),
    ENUM("restartPolicy", 0, e_restart),
    {.name = "nodeSelector", .type = VT_STRMAP, .check = chk_label_map},
    STRC("nodeName", 0, chk_dns_subdomain),
    ARRC("ports", 0, &port_item, chk_ports),
    OBJC("healthCheck", 0, health_fields, chk_health),
    INTMIN("terminationGracePeriodSeconds", 0, 0),
    END,
};

static const struct vfield condition_fields[] = {
    STR("type", VF_REQUIRED | VF_NONEMPTY),
    ENUM("status", VF_REQUIRED, e_cond_status),
    STR("reason", 0),
    STR("message", 0),
    TIME("lastUpdateTime"),
    TIME("lastTransitionTime"),
    TIME("lastHeartbeatTime"),
    INTMIN("observedGeneration", 0, 0),
    END,
};
static const struct vfield condition = OBJ("", 0, condition_fields);

static const struct vfield last_state_fields[] = {
    INT("exitCode", 0),
    STR("reason", 0),
    STR("message", 0),
    TIME("startedAt"),
    TIME("finishedAt"),
    STR("output", 0),
    END,
};

static const struct vfield status_port_fields[] = {
    STRC("name", 0, chk_port_name),
    INTR("containerPort", VF_REQUIRED, 1, 65535),
    INTR("hostPort", 0, 1, 65535),
    ENUM("protocol", 0, e_protocol),
    END,
};
static const struct vfield status_port_item = OBJ("", 0, status_port_fields);

static const struct vfield task_status_fields[] = {
    ENUM("phase", 0, e_task_phase),
    STR("reason", 0),
    STR("message", 0),
    STRC("nodeName", 0, chk_dns_subdomain),
    STR("containerID", 0),
    INTMIN("restartCount", 0, 0),
    TIME("startedAt"),
    TIME("finishedAt"),
    INT("exitCode", 0),
    BOOL("ready"),
    OBJ("lastState", 0, last_state_fields),
    ARR("conditions", 0, &condition),
    STR("hostIP", 0),
    ARR("ports", 0, &status_port_item),
    OBJ("usage", 0, resource_list),
    END,
};

static const struct vfield match_expr_fields[] = {
    STRC("key", VF_REQUIRED, chk_qualified),
    ENUM("operator", VF_REQUIRED, e_sel_op),
    ARR("values", 0, &any_string),
    END,
};
static const struct vfield match_expr = OBJC("", 0, match_expr_fields, chk_expr_values);
static const struct vfield selector_fields[] = {
    {.name = "matchLabels", .type = VT_STRMAP, .check = chk_label_map},
    ARR("matchExpressions", 0, &match_expr),
    END,
};

static const struct vfield template_fields[] = {
    OBJ("metadata", VF_REQUIRED, template_meta_fields),
    OBJ("spec", VF_REQUIRED, task_spec_fields),
    END,
};

static const struct vfield rolling_fields[] = {
    {.name = "maxSurge", .type = VT_INT_OR_PERCENT},
    {.name = "maxUnavailable", .type = VT_INT_OR_PERCENT},
    END,
};
static const struct vfield strategy_fields[] = {
    ENUM("type", 0, e_strategy),
    OBJC("rollingUpdate", 0, rolling_fields, chk_rolling),
    END,
};

static const struct vfield deploy_spec_fields[] = {
    INTR("replicas", 0, 0, 100000),
    OBJ("selector", 0, selector_fields),
    OBJ("template", VF_REQUIRED, template_fields),
    OBJC("strategy", 0, strategy_fields, chk_strategy),
    INTMIN("revisionHistoryLimit", 0, 0),
    INTMIN("progressDeadlineSeconds", 0, 1),
    INTMIN("minReadySeconds", 0, 0),
    BOOL("paused"),
    END,
};

static const struct vfield deploy_status_fields[] = {
    INTMIN("observedGeneration", 0, 0),
    INTMIN("replicas", 0, 0),
    INTMIN("readyReplicas", 0, 0),
    INTMIN("updatedReplicas", 0, 0),
    INTMIN("availableReplicas", 0, 0),
    INTMIN("unavailableReplicas", 0, 0),
    INTMIN("collisionCount", 0, 0),
    ARR("conditions", 0, &condition),
    END,
};

static const struct vfield taint_fields[] = {
    STRC("key", VF_REQUIRED, chk_qualified),
    STR("value", 0),
    ENUM("effect", VF_REQUIRED, e_taint),
    END,
};
static const struct vfield taint = OBJ("", 0, taint_fields);

static const struct vfield node_spec_fields[] = {
    BOOL("unschedulable"),
    ARR("taints", 0, &taint),
    END,
};

static const struct vfield node_info_fields[] = {
    STR("runtime", 0), STR("runtimeVersion", 0), STR("keelVersion", 0),   STR("os", 0),
    STR("arch", 0),    STR("hostname", 0),       STR("kernelVersion", 0), END,
};

static const struct vfield node_status_fields[] = {
    OBJ("capacity", 0, resource_list),
    OBJ("allocatable", 0, resource_list),
    OBJ("usage", 0, resource_list),
    ARR("conditions", 0, &condition),
    STR("address", 0),
    TIME("heartbeatTime"),
    OBJ("nodeInfo", 0, node_info_fields),
    STRC("logEndpoint", 0, chk_url),
    END,
};

static const struct vfield ns_spec_fields[] = {
    ARR("finalizers", 0, &finalizer),
    END,
};
static const struct vfield ns_status_fields[] = {
    ENUM("phase", 0, e_ns_phase),
    END,
};

static const struct vfield involved_fields[] = {
    STR("kind", VF_REQUIRED | VF_NONEMPTY),
    STR("name", VF_REQUIRED | VF_NONEMPTY),
    STR("namespace", 0),
    STR("uid", 0),
    STR("apiVersion", 0),
    STR("resourceVersion", 0),
    STR("fieldPath", 0),
    END,
};
static const struct vfield source_fields[] = {STR("component", 0), STR("host", 0), END};

#define ENVELOPE                                                                                   \
	STR("apiVersion", VF_REQUIRED), STR("kind", VF_REQUIRED),                                  \
	    OBJC("metadata", VF_REQUIRED, meta_fields, chk_meta)

static const struct vfield top_task[] = {
    ENVELOPE,
    OBJ("spec", VF_REQUIRED, task_spec_fields),
    OBJ("status", 0, task_status_fields),
    END,
};
static const struct vfield top_deployment[] = {
    ENVELOPE,
    OBJC("spec", VF_REQUIRED, deploy_spec_fields, chk_deploy_spec),
    OBJ("status", 0, deploy_status_fields),
    END,
};
static const struct vfield top_node[] = {
    ENVELOPE,
    OBJ("spec", 0, node_spec_fields),
    OBJ("status", 0, node_status_fields),
    END,
};
static const struct vfield top_namespace[] = {
    ENVELOPE,
    OBJ("spec", 0, ns_spec_fields),
    OBJ("status", 0, ns_status_fields),
    END,
};
static const struct vfield top_event[] = {
    ENVELOPE,
    OBJ("involvedObject", VF_REQUIRED, involved_fields),
    {.name = "reason", .type = VT_STRING, .flags = VF_REQUIRED | VF_NONEMPTY, .max_len = 128},
    {.name = "message", .type = VT_STRING, .flags = VF_REQUIRED, .max_len = 4096},
    ENUM("type", 0, e_event_type),
    INTMIN("count", 0, 1),
    TIME("firstTimestamp"),
    TIME("lastTimestamp"),
    OBJ("source", 0, source_fields),
    STR("reportingComponent", 0),
    STR("reportingInstance", 0),
    STR("action", 0),
    END,
};

static const struct {
	const char *kind;
	const struct vfield *top;
	const struct vfield status; /* name "" unless the kind has one */
} schemas[] = {
    {"Task", top_task, OBJ("status", 0, task_status_fields)},
    {"Deployment", top_deployment, OBJ("status", 0, deploy_status_fields)},
    {"Node", top_node, OBJ("status", 0, node_status_fields)},
    {"Namespace", top_namespace, OBJ("status", 0, ns_status_fields)},
    {"Event", top_event, END},
};

const struct vfield *api_schema_top(const struct api_kind *k)
{
	static const struct vfield none[] = {END};
	for (size_t i = 0; k && i < ARRAY_SIZE(schemas); i++)
		if (streq(schemas[i].kind, k->kind))
			return schemas[i].top;
	return none;
}

const struct vfield *api_schema_status(const struct api_kind *k)
{
	for (size_t i = 0; k && i < ARRAY_SIZE(schemas); i++)
		if (streq(schemas[i].kind, k->kind))
			return schemas[i].status.name ? &schemas[i].status : NULL;
	return NULL;
}
