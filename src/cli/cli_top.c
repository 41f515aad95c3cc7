/*
 * cli_top — `keel top nodes` and `keel top tasks`: monitoring at a glance,
 * from what is in the store already. A Node's capacity (status.allocatable,
 * else capacity) and usage (status.usage) are its agent's reports; what is
 * requested on it is the sum of the requests of its unfinished Tasks, the
 * load the scheduler counts. A Task's usage (status.usage) is its
 * runtime's stats, which the agent writes when they move materially, so a
 * value may be up to one --status-interval old. The arithmetic is pure
 * (cli_top_node_sum, cli_fmt_*) and unit-tested.
 */
#include "cli/cli_internal.h"

#include <errno.h>
#include <stdlib.h>

#include "api/meta.h"
#include "api/quantity.h"
#include "common/kerr.h"
#include "common/util.h"

/* ---- formatting ---------------------------------------------------------- */

char *cli_fmt_cpu(int64_t m)
{
	if (m > 0 && m % 1000 == 0)
		return xasprintf("%lld", (long long)(m / 1000));
	return xasprintf("%lldm", (long long)m);
}

char *cli_fmt_mem(int64_t b)
{
	static const char *const suf[] = {"Ki", "Mi", "Gi", "Ti"};
	if (b < 1024)
		return xasprintf("%lld", (long long)b);
	double v = (double)b / 1024.0;
	size_t i = 0;
	while (v >= 1024.0 && i + 1 < ARRAY_SIZE(suf))
		v /= 1024.0, i++;
	if (v < 10.0 && v - (double)(int64_t)v >= 0.05)
		return xasprintf("%.1f%s", v, suf[i]);
	return xasprintf("%.0f%s", v, suf[i]);
}

/* "120m (6%)", or "-" when v is unknown; the percentage of cap when known.
 * CPU in millicores always, so that a column reads the same all down. */
char *cli_top_cell(int64_t v, int64_t cap, bool cpu)
{
	if (v < 0)
		return xstrdup("-");
	_cleanup_free_ char *s = cpu ? xasprintf("%lldm", (long long)v) : cli_fmt_mem(v);
	if (cap <= 0)
		return TAKE_PTR(s);
	return xasprintf("%s (%lld%%)", s, (long long)((v * 100 + cap / 2) / cap));
}

/* ---- arithmetic ---------------------------------------------------------- */

static int64_t qty(json_t *obj, const char *path, bool cpu)
{
	json_t *v = api_obj_get_path(obj, path);
	int64_t x = -1;
	if (!v || (cpu ? api_quantity_cpu(v, &x, NULL) : api_quantity_memory(v, &x, NULL)) < 0)
		return -1;
	return x;
}

static bool task_unfinished(json_t *t)
{
	const char *p = json_string_value(api_obj_get_path(t, "status.phase"));
	return !streq(p, "Succeeded") && !streq(p, "Failed");
}

void cli_top_node_sum(json_t *node, json_t *tasks, struct cli_top_node *out)
{
	memset(out, 0, sizeof(*out));
	out->cap_cpu = qty(node, "status.allocatable.cpu", true);
	if (out->cap_cpu < 0)
		out->cap_cpu = qty(node, "status.capacity.cpu", true);
	out->cap_mem = qty(node, "status.allocatable.memory", false);
	if (out->cap_mem < 0)
		out->cap_mem = qty(node, "status.capacity.memory", false);
	out->used_cpu = qty(node, "status.usage.cpu", true);
	out->used_mem = qty(node, "status.usage.memory", false);
	const char *name = api_obj_name(node);
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		const char *n = json_string_value(api_obj_get_path(t, "spec.nodeName"));
		if (!name || !streq(n, name) || !task_unfinished(t))
			continue;
		int64_t c = qty(t, "spec.resources.requests.cpu", true);
		int64_t m = qty(t, "spec.resources.requests.memory", false);
		out->req_cpu += c > 0 ? c : 0;
		out->req_mem += m > 0 ? m : 0;
		out->tasks++;
	}
}

/* ---- keel top nodes ------------------------------------------------------ */

static json_t *list_all(struct client *c, const char *kind, const char *ns, const char *sel)
{
	struct client_query q = {.label_selector = sel};
	_cleanup_kerr_ struct kerr err = KERR_INIT;
	json_t *list = NULL;
	if (client_list_all(c, api_kind_by_plural(kind), ns, &q, &list, &err) < 0) {
		cli_report(&err, NULL);
		return NULL;
	}
	return list;
}

static void add_cells(struct cli_table *t, const char *const *fixed, size_t nfixed, char **owned,
                      size_t nowned)
{
	const char *row[16];
	size_t n = 0;
	for (size_t i = 0; i < nfixed; i++)
		row[n++] = fixed[i];
	for (size_t i = 0; i < nowned; i++)
		row[n++] = owned[i];
	cli_table_add(t, row);
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
}

static void print_table(struct cli_table *t)
{
	_cleanup_sbuf_ struct sbuf out = SBUF_INIT;
	cli_table_render(t, &out);
	fputs(out.data ? out.data : "", stdout);
	cli_table_free(t);
}

static int top_nodes(const char *sel)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	_cleanup_json_ json_t *nodes = list_all(c, "nodes", NULL, sel);
	_cleanup_json_ json_t *tasks = nodes ? list_all(c, "tasks", NULL, NULL) : NULL;
	if (!tasks)
		return CLI_FAIL;
	struct cli_table *t = cli_table_new(8);
	const char *h[] = {"NAME",        "CPU USED",          "CPU REQUESTED",   "CPU CAPACITY",
	                   "MEMORY USED", "MEMORY REQUESTED", "MEMORY CAPACITY", "TASKS"};
	cli_table_add(t, h);
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(nodes, "items"), i, n)
	{
		struct cli_top_node s;
		cli_top_node_sum(n, json_object_get(tasks, "items"), &s);
		const char *name = api_obj_name(n);
		char *cells[] = {cli_top_cell(s.used_cpu, s.cap_cpu, true),
		                 cli_top_cell(s.req_cpu, s.cap_cpu, true),
		                 s.cap_cpu >= 0 ? cli_fmt_cpu(s.cap_cpu) : xstrdup("-"),
		                 cli_top_cell(s.used_mem, s.cap_mem, false),
		                 cli_top_cell(s.req_mem, s.cap_mem, false),
		                 s.cap_mem >= 0 ? cli_fmt_mem(s.cap_mem) : xstrdup("-"),
		                 xasprintf("%zu", s.tasks)};
		add_cells(t, &name, 1, cells, ARRAY_SIZE(cells));
	}
	if (json_array_size(json_object_get(nodes, "items")) == 0) {
		cli_table_free(t);
		fprintf(stderr, "No nodes: is an agent running? (keel up runs one)\n");
		return CLI_OK;
	}
	print_table(t);
	return CLI_OK;
}

/* ---- keel top tasks ------------------------------------------------------ */

/* "100m/32Mi" of spec.resources.WHICH, "-" for a missing half. Owned. */
static char *res_pair(json_t *task, const char *which)
{
	_cleanup_free_ char *pc = xasprintf("spec.resources.%s.cpu", which);
	_cleanup_free_ char *pm = xasprintf("spec.resources.%s.memory", which);
	int64_t c = qty(task, pc, true), m = qty(task, pm, false);
	if (c < 0 && m < 0)
		return xstrdup("-");
	_cleanup_free_ char *cs = c >= 0 ? cli_fmt_cpu(c) : xstrdup("-");
	_cleanup_free_ char *ms = m >= 0 ? cli_fmt_mem(m) : xstrdup("-");
	return xasprintf("%s/%s", cs, ms);
}

static int top_tasks(const char *ns, bool all_ns, const char *sel)
{
	struct client *c = cli_client();
	if (!c)
		return CLI_FAIL;
	_cleanup_json_ json_t *tasks = list_all(c, "tasks", all_ns ? NULL : ns ? ns : "default", sel);
	if (!tasks)
		return CLI_FAIL;
	struct cli_table *t = cli_table_new(all_ns ? 7 : 6);
	const char *h[] = {"NAMESPACE", "NAME", "CPU", "MEMORY", "REQUESTS", "LIMITS", "NODE"};
	cli_table_add(t, all_ns ? h : h + 1);
	size_t i, shown = 0;
	json_t *k;
	json_array_foreach(json_object_get(tasks, "items"), i, k)
	{
		if (!streq(json_string_value(api_obj_get_path(k, "status.phase")), "Running"))
			continue;
		const char *fixed[] = {api_obj_namespace(k), api_obj_name(k)};
		const char *node = json_string_value(api_obj_get_path(k, "spec.nodeName"));
		char *cells[] = {cli_top_cell(qty(k, "status.usage.cpu", true), 0, true),
		                 cli_top_cell(qty(k, "status.usage.memory", false), 0, false),
		                 res_pair(k, "requests"), res_pair(k, "limits"),
		                 xstrdup(node ? node : "<none>")};
		add_cells(t, all_ns ? fixed : fixed + 1, all_ns ? 2 : 1, cells, ARRAY_SIZE(cells));
		shown++;
	}
	if (!shown) {
		cli_table_free(t);
		fprintf(stderr, "No running tasks%s%s.\n", all_ns ? "" : " in namespace ",
		        all_ns ? "" : ns ? ns : "default");
		return CLI_OK;
	}
	print_table(t);
	return CLI_OK;
}

int cli_cmd_top(int argc, char **argv)
{
	const char *ns = NULL, *sel = NULL;
	bool all_ns = false;
	const struct cli_opt opts[] = {
	    {"namespace", 'n', CLI_OPT_STRING, &ns, "NS", "tasks: namespace (default \"default\")"},
	    {"all-namespaces", 'A', CLI_OPT_BOOL, &all_ns, NULL, "tasks: every namespace"},
	    {"selector", 'l', CLI_OPT_STRING, &sel, "SELECTOR", "label selector (app=web)"},
	};
	struct cli_strv pos = {0};
	int code;
	if (cli_parse_or_help("top", opts, ARRAY_SIZE(opts), argc, argv, &pos, &code)) {
		cli_strv_free(&pos);
		return code;
	}
	const struct api_kind *k = pos.n == 1 ? cli_kind(pos.v[0]) : NULL;
	if (pos.n != 1) {
		fprintf(stderr, "error: keel top needs \"nodes\" or \"tasks\" (see keel top --help)\n");
		code = CLI_USAGE;
	} else if (!k) {
		code = CLI_USAGE;
	} else if (streq(k->kind, "Node")) {
		code = top_nodes(sel);
	} else if (streq(k->kind, "Task")) {
		code = top_tasks(ns, all_ns, sel);
	} else {
		fprintf(stderr, "error: keel top shows nodes or tasks, not %s\n", k->plural);
		code = CLI_USAGE;
	}
	cli_strv_free(&pos);
	return code;
}
