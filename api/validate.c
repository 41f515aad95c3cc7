/*
 * api/validate — the validation engine and defaulting.
 *
 * The engine walks an object against the static schema tables of schema.c:
 * each level checks JSON types, ranges, enums and formats, reports unknown
 * keys with the closest sibling name, then runs the level's custom check
 * (cross-field rules such as "limits >= requests"). It never stops at the
 * first problem: every cause is collected, because a user fixing a manifest
 * wants the whole list at once. null counts as absent, as YAML's `key:`
 * with no value is null and Kubernetes treats it so.
 *
 * Causes carry the field path in "field" and a message without it, as
 * Kubernetes' StatusCause does; err->msg joins "path: message" pairs.
 * Unknown fields use the reason "FieldValueUnknown".
 */
#include "api/validate.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "api/merge.h"
#include "api/meta.h"
#include "api/quantity.h"
#include "api/schema.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

#define MAX_CAUSES 100

struct vctx {
	struct kerr *err;
	const struct api_kind *kind;
	size_t ncauses;
	json_t *causes; /* owned */
};

void vc_cause(struct vctx *c, const char *path, const char *reason, const char *fmt, ...)
{
	c->ncauses++;
	if (c->ncauses > MAX_CAUSES)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = xvasprintf(fmt, ap);
	va_end(ap);
	json_array_append_new(c->causes, json_pack("{s:s, s:s, s:s}", "field", path ? path : "",
	                                           "reason", reason, "message", m));
}

const struct api_kind *vc_kind(const struct vctx *c)
{
	return c->kind;
}

char *vc_render(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return xstrdup("?");
	if (strlen(s) > 64) {
		char *t = xasprintf("%.60s...", s);
		free(s);
		return t;
	}
	return s;
}

/* "the string \"yes\"", "the integer 3", "an object", ... Owned. */
static char *describe(json_t *v)
{
	_cleanup_free_ char *r = vc_render(v);
	switch (json_typeof(v)) {
	case JSON_STRING:
		return xasprintf("the string %s", r);
	case JSON_INTEGER:
		return xasprintf("the integer %s", r);
	case JSON_REAL:
		return xasprintf("the number %s", r);
	case JSON_TRUE:
	case JSON_FALSE:
		return xasprintf("the boolean %s", r);
	case JSON_OBJECT:
		return xstrdup("an object");
	case JSON_ARRAY:
		return xstrdup("an array");
	case JSON_NULL:
		break;
	}
	return xstrdup("null");
}

static void type_error(struct vctx *c, const char *path, const char *want, json_t *v)
{
	_cleanup_free_ char *d = describe(v);
	vc_cause(c, path, R_TYPE, "must be %s, got %s", want, d);
}

static bool yaml11_bool_word(const char *s)
{
	static const char *const words[] = {"yes", "no", "on", "off", "y", "n"};
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

static void check_bool(struct vctx *c, json_t *v, const char *path)
{
	if (json_is_boolean(v))
		return;
	const char *s = json_string_value(v);
	if (s && yaml11_bool_word(s))
		vc_cause(c, path, R_TYPE,
		         "must be a boolean, got the string \"%s\" (YAML 1.2 reads %s as a string; "
		         "write true or false)",
		         s, s);
	else if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0))
		vc_cause(c, path, R_TYPE,
		         "must be a boolean, got the string \"%s\" (write %s without quotes)", s,
		         strcasecmp(s, "true") == 0 ? "true" : "false");
	else
		type_error(c, path, "a boolean", v);
}

static void check_int(struct vctx *c, const struct vfield *f, json_t *v, const char *path)
{
	if (!json_is_integer(v)) {
		type_error(c, path, "an integer", v);
		return;
	}
	json_int_t i = json_integer_value(v);
	if ((f->flags & VF_MIN) && i < f->min)
		vc_cause(c, path, R_INVALID,
		         "Invalid value: %lld: must be greater than or equal to %lld", (long long)i,
		         (long long)f->min);
	else if ((f->flags & VF_MAX) && i > f->max)
		vc_cause(c, path, R_INVALID,
		         "Invalid value: %lld: must be less than or equal to %lld", (long long)i,
		         (long long)f->max);
}

static void check_string(struct vctx *c, const struct vfield *f, json_t *v, const char *path)
{
	if (!json_is_string(v)) {
		type_error(c, path, "a string", v);
		return;
	}
	size_t n = json_string_length(v);
	if ((f->flags & VF_NONEMPTY) && n == 0)
		vc_cause(c, path, R_REQUIRED, "Required value: must not be empty");
	else if (f->max_len && n > f->max_len)
		vc_cause(c, path, R_TOOLONG, "Too long: may not be longer than %zu characters",
		         f->max_len);
}

static void check_enum(struct vctx *c, const struct vfield *f, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	if (!s) {
		type_error(c, path, "a string", v);
		return;
	}
	size_t n = 0;
	for (; f->enums[n]; n++)
		if (streq(s, f->enums[n]))
			return;
	struct sbuf b = SBUF_INIT;
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&b, "%s\"%s\"", i ? ", " : "", f->enums[i]);
	_cleanup_free_ char *list = sbuf_take(&b);
	const char *near = NULL;
	for (size_t i = 0; i < n && !near; i++)
		if (strcasecmp(s, f->enums[i]) == 0)
			near = f->enums[i];
	if (!near)
		near = str_closest(s, f->enums, n);
	if (near)
		vc_cause(c, path, R_UNSUPPORTED,
		         "Unsupported value: \"%s\": supported values: %s; did you mean \"%s\"?", s,
		         list, near);
	else
		vc_cause(c, path, R_UNSUPPORTED, "Unsupported value: \"%s\": supported values: %s",
		         s, list);
}

static void check_int_or_percent(struct vctx *c, json_t *v, const char *path)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			vc_cause(c, path, R_INVALID,
			         "Invalid value: %lld: must be greater than or equal to 0",
			         (long long)json_integer_value(v));
		return;
	}
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;
	bool ok = n >= 2 && n <= 4 && s[n - 1] == '%';
	for (size_t i = 0; ok && i + 1 < n; i++)
		ok = s[i] >= '0' && s[i] <= '9';
	if (!ok) {
		_cleanup_free_ char *d = describe(v);
		vc_cause(c, path, R_INVALID,
		         "must be an integer or a percentage such as \"25%%\", got %s", d);
	}
}

static void check_value(struct vctx *c, const struct vfield *f, json_t *v, const char *path);

static void check_object(struct vctx *c, const struct vfield *fields, json_t *obj, const char *path)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		const struct vfield *f = fields;
		while (f->name && !streq(f->name, k))
			f++;
		_cleanup_free_ char *p = api_path_key(path, k);
		if (f->name) {
			if (!json_is_null(v))
				check_value(c, f, v, p);
			continue;
		}
		const char *names[64];
		size_t n = 0;
		for (const struct vfield *g = fields; g->name && n < ARRAY_SIZE(names); g++)
			names[n++] = g->name;
		const char *near = str_closest(k, names, n);
		_cleanup_free_ char *sp = near ? api_path_key(path, near) : NULL;
		if (sp)
			vc_cause(c, p, R_UNKNOWN, "unknown field, did you mean %s?", sp);
		else {
			struct sbuf b = SBUF_INIT;
			for (size_t i = 0; i < n; i++)
				sbuf_printf(&b, "%s%s", i ? ", " : "", names[i]);
			_cleanup_free_ char *list = sbuf_take(&b);
			vc_cause(c, p, R_UNKNOWN, "unknown field (known fields here: %s)",
			         n ? list : "none");
		}
	}
	for (const struct vfield *f = fields; f->name; f++) {
		json_t *v2 = json_object_get(obj, f->name);
		if ((f->flags & VF_REQUIRED) && (!v2 || json_is_null(v2))) {
			_cleanup_free_ char *p = api_path_key(path, f->name);
			vc_cause(c, p, R_REQUIRED, "Required value");
		}
	}
}

static void check_array(struct vctx *c, const struct vfield *f, json_t *v, const char *path)
{
	if (!json_is_array(v)) {
		type_error(
		    c, path,
		    f->item && f->item->type == VT_STRING ? "an array of strings" : "an array", v);
		return;
	}
	size_t n = json_array_size(v);
	if ((f->flags & VF_NONEMPTY) && n == 0)
		vc_cause(c, path, R_REQUIRED, "Required value: must not be empty");
	if (f->max_len && n > f->max_len) {
		vc_cause(c, path, R_TOOMANY, "Too many: %zu: must have at most %zu items", n,
		         f->max_len);
		return;
	}
	for (size_t i = 0; f->item && i < n; i++) {
		_cleanup_free_ char *p = api_path_index(path, i);
		json_t *e = json_array_get(v, i);
		if (json_is_null(e))
			vc_cause(c, p, R_TYPE, "must not be null");
		else
			check_value(c, f->item, e, p);
	}
}

static void check_strmap(struct vctx *c, const struct vfield *f, json_t *v, const char *path)
{
	if (!json_is_object(v)) {
		type_error(c, path, "an object of string values", v);
		return;
	}
	if ((f->flags & VF_NONEMPTY) && json_object_size(v) == 0)
		vc_cause(c, path, R_REQUIRED, "Required value: must not be empty");
	if (f->max_len && json_object_size(v) > f->max_len) {
		vc_cause(c, path, R_TOOMANY, "Too many: %zu: must have at most %zu entries",
		         json_object_size(v), f->max_len);
		return;
	}
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
	{
		if (json_is_string(e))
			continue;
		_cleanup_free_ char *p = api_path_key(path, k);
		type_error(c, p, "a string", e);
	}
}

static bool check_type(struct vctx *c, const struct vfield *f, json_t *v, const char *path)
{
	size_t before = c->ncauses;
	switch (f->type) {
	case VT_STRING:
		check_string(c, f, v, path);
		break;
	case VT_INT:
		check_int(c, f, v, path);
		break;
	case VT_BOOL:
		check_bool(c, v, path);
		break;
	case VT_QUANTITY: {
		int64_t q;
		struct kerr qe = KERR_INIT;
		if (api_quantity_from_json(v, &q, &qe) < 0)
			vc_cause(c, path,
			         json_is_string(v) || json_is_number(v) ? R_INVALID : R_TYPE, "%s",
			         kerr_msg(&qe));
		kerr_clear(&qe);
		break;
	}
	case VT_ENUM:
		check_enum(c, f, v, path);
		break;
	case VT_TIME:
		if (!json_is_string(v))
			type_error(c, path, "an RFC 3339 time string", v);
		else if (time_parse_rfc3339(json_string_value(v)) == -1)
			vc_cause(c, path, R_INVALID,
			         "Invalid value: \"%s\": must be an RFC 3339 UTC time such as "
			         "\"2024-05-01T12:00:00Z\"",
			         json_string_value(v));
		break;
	case VT_INT_OR_PERCENT:
		check_int_or_percent(c, v, path);
		break;
	case VT_ANY:
		break;
	case VT_OBJECT:
	case VT_ANY_OBJECT:
		if (!json_is_object(v))
			type_error(c, path, "an object", v);
		break;
	case VT_ARRAY:
	case VT_STRMAP:
		break;
	}
	return c->ncauses == before;
}

static void check_value(struct vctx *c, const struct vfield *f, json_t *v, const char *path)
{
	if (!check_type(c, f, v, path))
		return;
	if (f->type == VT_OBJECT) {
		check_object(c, f->fields, v, path);
	} else if (f->type == VT_ARRAY) {
		check_array(c, f, v, path);
		if (!json_is_array(v))
			return;
	} else if (f->type == VT_STRMAP) {
		check_strmap(c, f, v, path);
		if (!json_is_object(v))
			return;
	}
	if (f->check)
		f->check(c, v, path);
}

/* err->msg: `Task "web" is invalid: spec.image: Required value; ...`. */
static int finish(struct vctx *c, json_t *obj)
{
	if (c->ncauses == 0) {
		json_decref(c->causes);
		return 0;
	}
	const char *name = api_obj_name(obj);
	struct sbuf b = SBUF_INIT;
	if (name && *name)
		sbuf_printf(&b, "%s \"%s\" is invalid: ", c->kind->kind, name);
	else
		sbuf_printf(&b, "%s is invalid: ", c->kind->kind);
	size_t shown = json_array_size(c->causes) < 10 ? json_array_size(c->causes) : 10;
	for (size_t i = 0; i < shown; i++) {
		json_t *cause = json_array_get(c->causes, i);
		const char *field = json_string_value(json_object_get(cause, "field"));
		const char *msg = json_string_value(json_object_get(cause, "message"));
		sbuf_printf(&b, "%s%s%s%s", i ? "; " : "", field && *field ? field : "",
		            field && *field ? ": " : "", msg);
	}
	if (c->ncauses > shown)
		sbuf_printf(&b, ", and %zu more", c->ncauses - shown);
	_cleanup_free_ char *msg = sbuf_take(&b);
	if (!c->err) {
		json_decref(c->causes);
		return -EINVAL;
	}
	kerr_set(c->err, EINVAL, "%s", msg);
	json_decref(c->err->causes);
	c->err->causes = c->causes;
	return -EINVAL;
}

static void check_envelope(struct vctx *c, json_t *obj)
{
	json_t *av = json_object_get(obj, "apiVersion");
	json_t *kd = json_object_get(obj, "kind");
	if (json_is_string(av) && !streq(json_string_value(av), API_GROUP_VERSION))
		vc_cause(c, "apiVersion", R_UNSUPPORTED,
		         "Unsupported value: \"%s\": supported values: \"%s\"",
		         json_string_value(av), API_GROUP_VERSION);
	if (json_is_string(kd) && !streq(json_string_value(kd), c->kind->kind))
		vc_cause(c, "kind", R_INVALID, "Invalid value: \"%s\": must be \"%s\"",
		         json_string_value(kd), c->kind->kind);
}

/* Node leases and the controllers' leader leases share the Lease names
 * (server/lease.c, controllers/leader.h): a Node named like a leader lease
 * would have its agent fight the controller for it. */
static void check_reserved_node_name(struct vctx *c, json_t *obj)
{
	const char *name =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	const char *ctl = streq(c->kind->plural, "nodes") ? api_lease_reserved_for(name) : NULL;
	if (ctl)
		vc_cause(c, "metadata.name", R_INVALID,
		         "Invalid value: \"%s\": reserved for the leader Lease of the %s "
		         "controller (Node names keel-scheduler, keel-tasks, keel-nodes and "
		         "keel-gc are not allowed)",
		         name, ctl);
}

int api_validate(const struct api_kind *k, json_t *obj, struct kerr *err)
{
	if (!k)
		return kerr_set(err, EINVAL, "unknown kind");
	if (!json_is_object(obj))
		return kerr_set(err, EINVAL, "%s is invalid: the object must be a JSON object",
		                k->kind);
	struct vctx c = {err, k, 0, json_array()};
	check_object(&c, api_schema_top(k), obj, "");
	check_envelope(&c, obj);
	check_reserved_node_name(&c, obj);
	return finish(&c, obj);
}

int api_validate_status(const struct api_kind *k, json_t *status, struct kerr *err)
{
	if (!k)
		return kerr_set(err, EINVAL, "unknown kind");
	const struct vfield *f = api_schema_status(k);
	if (!f)
		return kerr_set(err, EINVAL, "%s has no status", k->kind);
	struct vctx c = {err, k, 0, json_array()};
	if (status && !json_is_null(status))
		check_value(&c, f, status, "status");
	return finish(&c, NULL);
}

/* ---- updates ---- */

int api_validate_update(const struct api_kind *k, json_t *live, json_t *next, struct kerr *err)
{
	if (!k)
		return kerr_set(err, EINVAL, "unknown kind");
	struct vctx c = {err, k, 0, json_array()};
	if (streq(k->kind, "Task")) {
		const char *cur = json_string_value(api_obj_get_path(live, "spec.nodeName"));
		const char *want = json_string_value(api_obj_get_path(next, "spec.nodeName"));
		if (cur && *cur && !streq(want, cur))
			vc_cause(&c, "spec.nodeName", R_INVALID, "field is immutable once set");
	} else if (streq(k->kind, "Deployment")) {
		json_t *cur = api_obj_get_path(live, "spec.selector");
		json_t *want = api_obj_get_path(next, "spec.selector");
		if (json_is_null(cur))
			cur = NULL;
		if (json_is_null(want))
			want = NULL;
		if (!api_json_equal(cur, want))
			vc_cause(&c, "spec.selector", R_INVALID, "field is immutable");
	}
	return finish(&c, live);
}

/* ---- defaulting ---- */

/* The object at key in parent, created when absent; NULL when the key
 * holds something else (validation will name it). */
static json_t *obj_at(json_t *parent, const char *key)
{
	if (!json_is_object(parent))
		return NULL;
	json_t *v = json_object_get(parent, key);
	if (!v || json_is_null(v)) {
		v = json_object();
		json_object_set_new(parent, key, v);
	}
	return json_is_object(v) ? v : NULL;
}

static void set_default(json_t *parent, const char *key, json_t *value)
{
	json_t *cur = json_object_get(parent, key);
	if (json_is_object(parent) && (!cur || json_is_null(cur)))
		json_object_set_new(parent, key, value);
	else
		json_decref(value);
}

static void default_resources(json_t *spec)
{
	json_t *res = json_object_get(spec, "resources");
	json_t *lim = json_object_get(res, "limits");
	if (!json_is_object(lim) || json_object_size(lim) == 0)
		return;
	json_t *req = obj_at(res, "requests");
	const char *k;
	json_t *v;
	json_object_foreach(lim, k, v) set_default(req, k, json_deep_copy(v));
}

static void default_health(json_t *spec)
{
	json_t *hc = json_object_get(spec, "healthCheck");
	if (!json_is_object(hc))
		return;
	set_default(hc, "periodSeconds", json_integer(10));
	set_default(hc, "timeoutSeconds", json_integer(1));
	set_default(hc, "failureThreshold", json_integer(3));
	set_default(hc, "initialDelaySeconds", json_integer(0));
	json_t *get = json_object_get(hc, "httpGet");
	if (json_is_object(get))
		set_default(get, "path", json_string("/"));
}

static void default_task_spec(json_t *spec)
{
	if (!json_is_object(spec))
		return;
	set_default(spec, "restartPolicy", json_string("Always"));
	set_default(spec, "terminationGracePeriodSeconds", json_integer(30));
	default_resources(spec);
	default_health(spec);
	size_t i;
	json_t *port;
	json_array_foreach(json_object_get(spec, "ports"), i, port) if (json_is_object(port))
	    set_default(port, "protocol", json_string("TCP"));
}

static void default_deployment(json_t *spec)
{
	if (!json_is_object(spec))
		return;
	set_default(spec, "replicas", json_integer(1));
	set_default(spec, "revisionHistoryLimit", json_integer(10));
	set_default(spec, "progressDeadlineSeconds", json_integer(600));
	set_default(spec, "minReadySeconds", json_integer(0));
	json_t *tmpl = json_object_get(spec, "template");
	json_t *labels = json_object_get(json_object_get(tmpl, "metadata"), "labels");
	json_t *sel = json_object_get(spec, "selector");
	if ((!sel || json_is_null(sel)) && json_is_object(labels) && json_object_size(labels) > 0)
		json_object_set_new(spec, "selector", json_pack("{s:O}", "matchLabels", labels));
	json_t *strat = obj_at(spec, "strategy");
	set_default(strat, "type", json_string("RollingUpdate"));
	if (streq(json_string_value(json_object_get(strat, "type")), "RollingUpdate")) {
		json_t *ru = obj_at(strat, "rollingUpdate");
		set_default(ru, "maxSurge", json_string("25%"));
		set_default(ru, "maxUnavailable", json_string("25%"));
	}
	default_task_spec(json_object_get(tmpl, "spec"));
}

void api_default(const struct api_kind *k, json_t *obj)
{
	if (!k || !json_is_object(obj))
		return;
	if (k->namespaced) {
		json_t *meta = obj_at(obj, "metadata");
		json_t *ns = json_object_get(meta, "namespace");
		if (meta && (!ns || json_is_null(ns) || streq(json_string_value(ns), "")))
			json_object_set_new(meta, "namespace", json_string("default"));
	}
	if (streq(k->kind, "Task"))
		default_task_spec(json_object_get(obj, "spec"));
	else if (streq(k->kind, "Deployment"))
		default_deployment(json_object_get(obj, "spec"));
	else if (streq(k->kind, "Event")) {
		set_default(obj, "type", json_string("Normal"));
		set_default(obj, "count", json_integer(1));
	}
}
