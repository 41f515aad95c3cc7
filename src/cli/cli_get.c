/*
 * cli_get: `keel get`. Lists (every page, through client_list_all) or gets
 * by name, then prints a table, JSON, YAML or KIND/NAME lines; with -w it
 * then watches from the list's resourceVersion and prints one line (or
 * one JSON event) per change, re-watching when the server ends a stream
 * and relisting when the revision has been compacted away (410 Gone).
 */
#include "cli/cli_internal.h"

#include <errno.h>
#include <unistd.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/util.h"
#include "manifests/yaml.h"

enum out_fmt { OUT_TABLE, OUT_WIDE, OUT_JSON, OUT_YAML, OUT_NAME };

struct get_flags {
	const char *ns;
	bool all_ns;
	const char *selector;
	const char *field_selector;
	const char *output;
	bool watch;
	bool show_managed;
	enum out_fmt fmt;
	const struct api_kind *kind;
	const char *list_ns; /* NULL: every namespace / cluster-scoped */
};

static int parse_output(const char *o, enum out_fmt *fmt)
{
	static const struct {
		const char *name;
		enum out_fmt fmt;
	} t[] = {{"wide", OUT_WIDE}, {"json", OUT_JSON}, {"yaml", OUT_YAML}, {"name", OUT_NAME}};
	if (!o || !*o) {
		*fmt = OUT_TABLE;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (streq(o, t[i].name)) {
			*fmt = t[i].fmt;
			return 0;
		}
	fprintf(stderr, "error: unknown output format \"%s\" (wide|json|yaml|name)\n", o);
	return -EINVAL;
}

static void print_json(json_t *v)
{
	_cleanup_free_ char *s = json_dumps(v, JSON_INDENT(4));
	printf("%s\n", s ? s : "null");
}

static void print_yaml(json_t *v)
{
	_cleanup_free_ char *s = yaml_emit(v);
	fputs(s, stdout);
}

static void print_table(const struct get_flags *f, json_t *items, struct cli_table *t)
{
	bool wide = f->fmt == OUT_WIDE;
	bool ns_col = f->all_ns && f->kind->namespaced;
	int64_t now = time_now_unix();
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) cli_print_row(f->kind, it, wide, ns_col, now, t);
	_cleanup_sbuf_ struct sbuf out = SBUF_INIT;
	cli_table_render(t, &out);
	if (out.data)
		fputs(out.data, stdout);
}

/* Prints the objects in the chosen format; doc is what -o json|yaml
 * prints (the List, or the single object). */
static void print_objects(const struct get_flags *f, json_t *doc, json_t *items,
                          struct cli_table *t)
{
	if (!f->show_managed)
		cli_strip_managed(doc);
	size_t i;
	json_t *it;
	switch (f->fmt) {
	case OUT_JSON:
		print_json(doc);
		break;
	case OUT_YAML:
		print_yaml(doc);
		break;
	case OUT_NAME:
		json_array_foreach(items, i, it)
		{
			_cleanup_free_ char *ref = cli_obj_ref(f->kind, it);
			printf("%s\n", ref);
		}
		break;
	case OUT_TABLE:
	case OUT_WIDE:
		print_table(f, items, t);
		break;
	}
}

static void no_resources(const struct get_flags *f)
{
	if (f->kind->namespaced && f->list_ns)
		fprintf(stderr, "No resources found in %s namespace.\n", f->list_ns);
	else
		fprintf(stderr, "No resources found\n");
}

/* ---- watch ---- */

struct watch_ctx {
	const struct get_flags *f;
	struct cli_table *t;
	char *rv; /* the last resourceVersion seen */
};

static void remember_rv(struct watch_ctx *w, json_t *obj)
{
	const char *rv =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	if (rv && *rv) {
		free(w->rv);
		w->rv = xstrdup(rv);
	}
}

static int on_event(const char *type, json_t *obj, void *ud)
{
	struct watch_ctx *w = ud;
	const struct get_flags *f = w->f;
	remember_rv(w, obj);
	if (streq(type, "BOOKMARK"))
		return 0;
	if (!f->show_managed)
		cli_strip_managed(obj);
	if (f->fmt == OUT_JSON) {
		_cleanup_json_ json_t *ev = json_pack("{s:s, s:O}", "type", type, "object", obj);
		_cleanup_free_ char *s = json_dumps(ev, JSON_COMPACT);
		printf("%s\n", s);
	} else if (f->fmt == OUT_YAML) {
		printf("---\n");
		print_yaml(obj);
	} else if (f->fmt == OUT_NAME) {
		_cleanup_free_ char *ref = cli_obj_ref(f->kind, obj);
		printf("%s\n", ref);
	} else {
		bool ns_col = f->all_ns && f->kind->namespaced;
		cli_print_row(f->kind, obj, f->fmt == OUT_WIDE, ns_col, time_now_unix(), w->t);
		_cleanup_sbuf_ struct sbuf out = SBUF_INIT;
		cli_table_render_row(w->t, w->t->nrows - 1, &out);
		fputs(out.data ? out.data : "", stdout);
	}
	fflush(stdout);
	return 0;
}

static int watch_loop(struct client *c, const struct get_flags *f, struct client_query q,
                      const char *rv, struct cli_table *t)
{
	struct watch_ctx w = {.f = f, .t = t, .rv = xstrdup(rv ? rv : "0")};
	int code = CLI_OK;
	for (;;) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		q.resource_version = w.rv;
		int64_t start = time_mono_ms();
		int r = client_watch(c, f->kind, f->list_ns, &q, on_event, &w, &err);
		if (r == -ERANGE) {
			free(w.rv); /* compacted: start over with the current state */
			w.rv = xstrdup("0");
		} else if (r < 0 && r != -ETIMEDOUT) { /* a silent stream: watch again */
			cli_report(&err, NULL);
			code = CLI_FAIL;
			break;
		}
		if (time_mono_ms() - start < 1000)
			sleep(1); /* a server that ends streams at once must not make us spin */
	}
	free(w.rv);
	return code;
}

/* ---- get ---- */

static int get_named(struct client *c, struct get_flags *f, const struct cli_strv *names,
                     json_t **doc, json_t **items)
{
	int code = CLI_OK;
	json_t *arr = json_array();
	for (size_t i = 0; i < names->n; i++) {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		json_t *obj = NULL;
		if (client_get(c, f->kind, f->list_ns, names->v[i], &obj, &err) < 0) {
			cli_report(&err, NULL);
			code = CLI_FAIL;
			if (cli_error_is_fatal(&err))
				break;
			continue;
		}
		json_array_append_new(arr, obj);
	}
	*items = arr;
	if (json_array_size(arr) == 1 && names->n == 1)
		*doc = json_incref(json_array_get(arr, 0));
	else
		*doc = json_pack("{s:s, s:s, s:O, s:{s:s}}", "apiVersion", "v1", "kind", "List",
		                 "items", arr, "metadata", "resourceVersion", "");
	return code;
}

/* Checks the words after `get`; returns -1 when they are fine. */
static int check_get_args(struct get_flags *f, const struct cli_strv *pos)
{
	if (pos->n == 0) {
		fprintf(stderr, "error: you must specify the type of resource to get (tasks, "
		                "deployments, nodes, namespaces, events, leases)\n");
		return CLI_USAGE;
	}
	const struct api_kind *lease = api_kind_lease();
	bool leases = streq(pos->v[0], lease->plural) || streq(pos->v[0], lease->singular);
	if (!(f->kind = leases ? lease : cli_kind(pos->v[0])) ||
	    parse_output(f->output, &f->fmt) < 0)
		return CLI_USAGE;
	if (leases && (f->watch || f->selector || f->field_selector)) {
		fprintf(stderr, "error: leases cannot be watched or selected (-w, -l, "
		                "--field-selector): the server lists them whole\n");
		return CLI_USAGE;
	}
	if (f->all_ns && pos->n > 1) {
		fprintf(stderr, "error: a name cannot be combined with --all-namespaces\n");
		return CLI_USAGE;
	}
	if (f->selector && pos->n > 1) {
		fprintf(stderr, "error: a name cannot be combined with a label selector (-l)\n");
		return CLI_USAGE;
	}
	if (f->watch && pos->n > 2) {
		fprintf(stderr, "error: --watch takes at most one name\n");
		return CLI_USAGE;
	}
	return -1;
}

static int run_get(struct get_flags *f, const struct cli_strv *pos)
{
	int bad = check_get_args(f, pos);
	if (bad >= 0)
		return bad;
	struct cli_strv names = {pos->v + 1, pos->n - 1};
	f->list_ns = !f->kind->namespaced || f->all_ns ? NULL : f->ns ? f->ns : "default";
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	_cleanup_free_ char *fsel = NULL;
	if (names.n == 1 && f->watch)
		fsel = f->field_selector
		           ? xasprintf("%s,metadata.name=%s", f->field_selector, names.v[0])
		           : xasprintf("metadata.name=%s", names.v[0]);
	struct client_query q = {.label_selector = f->selector,
	                         .field_selector = fsel ? fsel : f->field_selector};
	_cleanup_json_ json_t *doc = NULL, *items_named = NULL;
	json_t *items;
	int code = CLI_OK;
	if (names.n > 0) {
		code = get_named(c, f, &names, &doc, &items_named);
		items = items_named;
	} else {
		_cleanup_kerr_ struct kerr err = KERR_INIT;
		if (client_list_all(c, f->kind, f->list_ns, &q, &doc, &err) < 0) {
			cli_report(&err, NULL);
			return CLI_FAIL;
		}
		items = json_object_get(doc, "items");
	}
	struct cli_table *t =
	    cli_print_table_new(f->kind, f->fmt == OUT_WIDE, f->all_ns && f->kind->namespaced);
	bool empty = json_array_size(items) == 0;
	bool table = f->fmt == OUT_TABLE || f->fmt == OUT_WIDE;
	if (empty && names.n == 0 && (table || f->fmt == OUT_NAME)) {
		if (!f->watch)
			no_resources(f);
		else if (table)
			print_table(f, items, t); /* the header alone */
	} else if (!(empty && names.n > 0)) {
		print_objects(f, doc, items, t);
	}
	fflush(stdout);
	if (f->watch && code == CLI_OK) {
		json_t *from = names.n == 0 ? doc : json_array_get(items, 0);
		const char *rv =
		    json_string_value(api_obj_get_path(from, "metadata.resourceVersion"));
		code = watch_loop(c, f, q, rv, t);
	}
	cli_table_free(t);
	return code;
}

int cli_cmd_get(int argc, char **argv)
{
	struct get_flags f = {0};
	const struct cli_opt opts[] = {
	    {"namespace", 'n', CLI_OPT_STRING, &f.ns, "NS", "namespace (default \"default\")"},
	    {"all-namespaces", 'A', CLI_OPT_BOOL, &f.all_ns, NULL, "list across all namespaces"},
	    {"selector", 'l', CLI_OPT_STRING, &f.selector, "SELECTOR",
	     "label selector (app=web, tier in (a,b), !canary)"},
	    {"field-selector", 0, CLI_OPT_STRING, &f.field_selector, "SELECTOR",
	     "field selector (status.phase=Running, spec.nodeName=n1)"},
	    {"output", 'o', CLI_OPT_STRING, &f.output, "FORMAT", "wide|json|yaml|name"},
	    {"watch", 'w', CLI_OPT_BOOL, &f.watch, NULL, "after listing, watch for changes"},
	    {"show-managed-fields", 0, CLI_OPT_BOOL, &f.show_managed, NULL,
	     "keep metadata.managedFields in json/yaml output"},
	};
	struct cli_strv pos = {0};
	int code;
	if (!cli_parse_or_help("get", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code))
		code = run_get(&f, &pos);
	cli_strv_free(&pos);
	return code;
}
