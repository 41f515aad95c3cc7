/*
 * cli_describe: `keel describe KIND NAME`, a page for humans: metadata in
 * aligned "Key: value" lines, spec and status as indented YAML (keel's
 * kinds are small enough that a generic rendering reads well, and it never
 * falls behind the schema), the conditions as a table, and the Events
 * whose involvedObject is this object, oldest first, as kubectl shows them
 * (the last MAX_EVENTS). A Task first gets the lines that say why it is or
 * is not running: node, status, reason, message, last exit, ports.
 */
#include "cli/cli_internal.h"

#include <errno.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "manifests/yaml.h"

#define MAX_EVENTS 20

static void put_kv(struct sbuf *o, const char *key, const char *value)
{
	/* a key as wide as the column ("Controlled By:") still gets its space */
	sbuf_printf(o, "%-14s%s%s\n", key, strlen(key) >= 14 ? " " : "",
	            value && *value ? value : "<none>");
}

static void put_map(struct sbuf *o, const char *key, json_t *map)
{
	if (json_object_size(map) == 0) {
		put_kv(o, key, "<none>");
		return;
	}
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach(map, k, v)
	{
		sbuf_printf(o, "%-14s%s=%s\n", first ? key : "", k,
		            json_is_string(v) ? json_string_value(v) : "");
		first = false;
	}
}

/* "  " + each line of the YAML of v. */
static void put_yaml_block(struct sbuf *o, const char *title, json_t *v)
{
	if (!v || (json_is_object(v) && json_object_size(v) == 0)) {
		sbuf_printf(o, "%s <none>\n", title);
		return;
	}
	_cleanup_free_ char *y = yaml_emit(v);
	sbuf_printf(o, "%s\n", title);
	for (char *line = y, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		sbuf_printf(o, "  %.*s\n", (int)(nl ? nl - line : (long)strlen(line)), line);
	}
}

static void put_meta(struct sbuf *o, json_t *obj, int64_t now)
{
	json_t *meta = api_obj_meta(obj);
	put_kv(o, "Name:", api_obj_name(obj));
	if (api_obj_namespace(obj))
		put_kv(o, "Namespace:", api_obj_namespace(obj));
	put_map(o, "Labels:", json_object_get(meta, "labels"));
	put_map(o, "Annotations:", json_object_get(meta, "annotations"));
	json_t *ts = json_object_get(meta, "creationTimestamp");
	char age[32];
	_cleanup_free_ char *created =
	    xasprintf("%s (%s ago)", json_string_value(ts) ? json_string_value(ts) : "<unknown>",
	              cli_age(ts, now, age, sizeof(age)));
	put_kv(o, "Created:", created);
	put_kv(o, "UID:", api_obj_uid(obj));
	put_kv(o, "Version:", json_string_value(json_object_get(meta, "resourceVersion")));
	json_t *del = json_object_get(meta, "deletionTimestamp");
	if (json_is_string(del))
		put_kv(o, "Deleting:", json_string_value(del));
	size_t i;
	json_t *ref;
	json_array_foreach(json_object_get(meta, "ownerReferences"), i, ref)
	{
		_cleanup_free_ char *s =
		    xasprintf("%s/%s", json_string_value(json_object_get(ref, "kind")),
		              json_string_value(json_object_get(ref, "name")));
		put_kv(o, i == 0 ? "Controlled By:" : "", s);
	}
}

/* What a user needs first to see why a Task is (not) running. */
static void put_task_summary(struct sbuf *o, json_t *obj)
{
	json_t *st = json_object_get(obj, "status");
	const char *node = json_string_value(api_obj_get_path(obj, "spec.nodeName"));
	put_kv(o, "Node:", node && *node ? node : "<none> (not scheduled yet)");
	const char *phase = json_string_value(json_object_get(st, "phase"));
	_cleanup_free_ char *status =
	    xasprintf("%s%s", cli_task_status(obj),
	              streq(phase, "Running") ? (json_is_true(json_object_get(st, "ready"))
	                                             ? " (ready)"
	                                             : " (not ready)")
	                                      : "");
	put_kv(o, "Status:", status);
	if (json_is_string(json_object_get(st, "reason")))
		put_kv(o, "Reason:", json_string_value(json_object_get(st, "reason")));
	if (json_is_string(json_object_get(st, "message")))
		put_kv(o, "Message:", json_string_value(json_object_get(st, "message")));
	json_t *last = json_object_get(st, "lastState");
	if (json_is_object(last)) {
		_cleanup_free_ char *s =
		    xasprintf("exit code %lld (%s)%s%s",
		              (long long)json_integer_value(json_object_get(last, "exitCode")),
		              json_string_value(json_object_get(last, "reason")) ?: "?",
		              json_is_string(json_object_get(last, "finishedAt")) ? " at " : "",
		              json_string_value(json_object_get(last, "finishedAt")) ?: "");
		put_kv(o, "Last Exit:", s);
	}
	_cleanup_free_ char *ports = cli_task_ports(obj);
	if (ports)
		put_kv(o, "Ports:", ports);
}

static void put_conditions(struct sbuf *o, json_t *conds)
{
	if (!json_is_array(conds) || json_array_size(conds) == 0)
		return;
	sbuf_puts(o, "Conditions:\n");
	struct cli_table *t = cli_table_new(4);
	const char *h[] = {"TYPE", "STATUS", "REASON", "MESSAGE"};
	cli_table_add(t, h);
	size_t i;
	json_t *c;
	json_array_foreach(conds, i, c)
	{
		const char *row[4];
		static const char *const keys[] = {"type", "status", "reason", "message"};
		for (size_t k = 0; k < 4; k++) {
			row[k] = json_string_value(json_object_get(c, keys[k]));
			if (!row[k])
				row[k] = "";
		}
		cli_table_add(t, row);
	}
	_cleanup_sbuf_ struct sbuf tb = SBUF_INIT;
	cli_table_render(t, &tb);
	cli_table_free(t);
	for (char *line = tb.data, *nl; line && *line; line = nl + 1) {
		nl = strchr(line, '\n');
		sbuf_printf(o, "  %.*s\n", (int)(nl - line), line);
	}
}

static int cmp_event_time(const void *a, const void *b)
{
	json_t *ea = *(json_t *const *)a, *eb = *(json_t *const *)b;
	const char *ta = json_string_value(json_object_get(ea, "lastTimestamp"));
	const char *tb = json_string_value(json_object_get(eb, "lastTimestamp"));
	if (!ta)
		ta = json_string_value(api_obj_get_path(ea, "metadata.creationTimestamp"));
	if (!tb)
		tb = json_string_value(api_obj_get_path(eb, "metadata.creationTimestamp"));
	return strcmp(ta ? ta : "", tb ? tb : "");
}

static void put_events(struct sbuf *o, struct client *c, const struct api_kind *k, json_t *obj,
                       int64_t now)
{
	const struct api_kind *ek = api_kind_by_kind("Event");
	_cleanup_free_ char *fsel =
	    xasprintf("involvedObject.name=%s,involvedObject.kind=%s", api_obj_name(obj), k->kind);
	struct client_query q = {.field_selector = fsel};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	_cleanup_json_ json_t *list = NULL;
	/* Events about cluster-scoped objects may sit in any namespace. */
	const char *ns = k->namespaced ? api_obj_namespace(obj) : NULL;
	if (!ek || client_list_all(c, ek, ns, &q, &list, &err) < 0) {
		sbuf_printf(o, "Events:       <unavailable: %s>\n", kerr_msg(&err));
		return;
	}
	json_t *items = json_object_get(list, "items");
	size_t n = json_array_size(items);
	if (n == 0) {
		sbuf_puts(o, "Events:       <none>\n");
		return;
	}
	json_t **v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(items, i);
	qsort(v, n, sizeof(*v), cmp_event_time);
	struct cli_table *t = cli_table_new(5);
	const char *h[] = {"TYPE", "REASON", "AGE", "FROM", "MESSAGE"};
	cli_table_add(t, h);
	size_t first = n > MAX_EVENTS ? n - MAX_EVENTS : 0;
	for (size_t i = first; i < n; i++) {
		char age[32];
		json_t *ts = json_object_get(v[i], "lastTimestamp");
		if (!ts)
			ts = api_obj_get_path(v[i], "metadata.creationTimestamp");
		const char *row[5] = {json_string_value(json_object_get(v[i], "type")),
		                      json_string_value(json_object_get(v[i], "reason")),
		                      cli_age(ts, now, age, sizeof(age)),
		                      json_string_value(api_obj_get_path(v[i], "source.component")),
		                      json_string_value(json_object_get(v[i], "message"))};
		cli_table_add(t, row);
	}
	free(v);
	_cleanup_sbuf_ struct sbuf tb = SBUF_INIT;
	cli_table_render(t, &tb);
	cli_table_free(t);
	if (first)
		sbuf_printf(o, "Events:       (the last %d of %zu)\n", MAX_EVENTS, n);
	else
		sbuf_puts(o, "Events:\n");
	for (char *line = tb.data, *nl; line && *line; line = nl + 1) {
		nl = strchr(line, '\n');
		sbuf_printf(o, "  %.*s\n", (int)(nl - line), line);
	}
}

/* An Event has no spec: its own fields are what there is to show. */
static void put_event_fields(struct sbuf *o, json_t *obj)
{
	_cleanup_json_ json_t *c = json_deep_copy(obj);
	json_object_del(c, "apiVersion");
	json_object_del(c, "kind");
	json_object_del(c, "metadata");
	put_yaml_block(o, "Event:", c);
}

static int describe_all(const char *ns_flag, const struct api_kind **kinds, const char **names,
                        size_t n);

/* "KIND NAME..." or "KIND/NAME..." (as `keel get -o name` prints them):
 * fills kinds[i] and names[i] (borrowed from pos, or from slashed, which
 * holds copies of the KIND parts). Returns how many, or 0 after printing a
 * usage error. */
static size_t describe_targets(const struct cli_strv *pos, const struct api_kind **kinds,
                               const char **names, char **slashed)
{
	size_t n = 0;
	bool slash = pos->n >= 1 && strchr(pos->v[0], '/');
	if (!slash && pos->n < 2) {
		fprintf(stderr, "error: usage: keel describe KIND NAME... | KIND/NAME...\n");
		return 0;
	}
	const struct api_kind *k = slash ? NULL : cli_kind(pos->v[0]);
	for (size_t i = slash ? 0 : 1; i < pos->n; i++) {
		const char *name = pos->v[i];
		const char *s = strchr(name, '/');
		if (slash) {
			if (!s) {
				fprintf(stderr, "error: \"%s\": want KIND/NAME like the others\n", name);
				return 0;
			}
			slashed[n] = xstrndup(name, (size_t)(s - name));
			k = cli_kind(slashed[n]);
			name = s + 1;
		}
		if (!k)
			return 0;
		kinds[n] = k;
		names[n++] = name;
	}
	return n;
}

static int run_describe(const char *ns_flag, const struct cli_strv *pos)
{
	const struct api_kind **kinds = xcalloc(pos->n + 1, sizeof(*kinds));
	const char **names = xcalloc(pos->n + 1, sizeof(*names));
	char **slashed = xcalloc(pos->n + 1, sizeof(*slashed));
	size_t n = describe_targets(pos, kinds, names, slashed);
	int code = n ? describe_all(ns_flag, kinds, names, n) : CLI_USAGE;
	for (size_t i = 0; i < pos->n; i++)
		free(slashed[i]);
	free(slashed);
	free(names);
	free(kinds);
	return code;
}

static int describe_all(const char *ns_flag, const struct api_kind **kinds, const char **names,
                        size_t n)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	int code = CLI_OK;
	int64_t now = time_now_unix();
	for (size_t i = 0; i < n; i++) {
		const struct api_kind *k = kinds[i];
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		_cleanup_json_ json_t *obj = NULL;
		if (client_get(c, k, ns_flag ? ns_flag : "default", names[i], &obj, &err) < 0) {
			cli_report(&err, NULL);
			code = CLI_FAIL;
			continue;
		}
		_cleanup_sbuf_ struct sbuf o = SBUF_INIT;
		if (i > 0)
			sbuf_puts(&o, "\n");
		put_meta(&o, obj, now);
		if (streq(k->kind, "Task"))
			put_task_summary(&o, obj);
		if (json_object_get(obj, "spec"))
			put_yaml_block(&o, "Spec:", json_object_get(obj, "spec"));
		if (streq(k->kind, "Event"))
			put_event_fields(&o, obj);
		json_t *status = json_deep_copy(json_object_get(obj, "status"));
		json_t *conds = json_incref(json_object_get(status, "conditions"));
		json_object_del(status, "conditions");
		if (status || k->has_status)
			put_yaml_block(&o, "Status:", status);
		put_conditions(&o, conds);
		json_decref(conds);
		json_decref(status);
		if (!streq(k->kind, "Event"))
			put_events(&o, c, k, obj, now);
		fputs(o.data, stdout);
	}
	return code;
}

int cli_cmd_describe(int argc, char **argv)
{
	const char *ns = NULL;
	const struct cli_opt opts[] = {
	    {"namespace", 'n', CLI_OPT_STRING, &ns, "NS", "namespace (default \"default\")"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("describe", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_describe(ns, &pos);
	cli_strv_free(&pos);
	return code;
}
