/*
 * cli_print: the columns `keel get` shows for each kind, as kubectl shows
 * them for its nearest equivalents (Task ~ Pod, Deployment, Node,
 * Namespace, Event; Lease as kubectl's coordination Leases, with whether
 * each is held). A kind without its own columns gets NAME and AGE.
 * Everything is read defensively: an object a controller has not touched
 * yet has no status, and a missing field prints as kubectl prints it.
 */
#include "cli/cli_internal.h"

#include <stdio.h>

#include "api/meta.h"
#include "api/quantity.h"
#include "common/util.h"

#define MAXCOLS 12

static json_t *at(json_t *obj, const char *path)
{
	return api_obj_get_path(obj, path);
}

static const char *str_at(json_t *obj, const char *path)
{
	return json_string_value(at(obj, path));
}

const char *cli_age(json_t *timestamp, int64_t now, char *buf, size_t len)
{
	int64_t t = time_parse_rfc3339(json_string_value(timestamp));
	if (t < 0) {
		snprintf(buf, len, "<unknown>");
		return buf;
	}
	return time_age(buf, len, now - t);
}

char *cli_obj_ref(const struct api_kind *k, json_t *obj)
{
	const char *name = str_at(obj, "metadata.name");
	return xasprintf("%s/%s", k ? k->singular : "object", name ? name : "");
}

void cli_strip_managed(json_t *obj)
{
	json_t *items = json_object_get(obj, "items");
	if (json_is_array(items)) {
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it) cli_strip_managed(it);
		return;
	}
	json_t *meta = json_object_get(obj, "metadata");
	if (json_is_object(meta))
		json_object_del(meta, "managedFields");
}

/* The condition of a type ("Ready") in status.conditions, or NULL. */
static json_t *condition(json_t *obj, const char *type)
{
	json_t *conds = at(obj, "status.conditions");
	size_t i;
	json_t *c;
	json_array_foreach(
	    conds, i, c) if (streq(json_string_value(json_object_get(c, "type")), type)) return c;
	return NULL;
}

static void fmt_int(char *buf, size_t len, json_t *v)
{
	snprintf(buf, len, "%lld", json_is_integer(v) ? (long long)json_integer_value(v) : 0LL);
}

/* ---- Task ---- */

const char *cli_task_status(json_t *obj)
{
	if (at(obj, "metadata.deletionTimestamp"))
		return "Terminating";
	const char *phase = str_at(obj, "status.phase");
	const char *reason = str_at(obj, "status.reason");
	/* A reason says more than the phase when it names a state of its own
	 * (CrashLoopBackOff, Unschedulable, NodeLost, ...). */
	if (reason && *reason && !streq(reason, phase))
		return reason;
	return phase && *phase ? phase : "Pending";
}

static bool task_ready(json_t *obj)
{
	json_t *c = condition(obj, "Ready");
	if (c)
		return streq(json_string_value(json_object_get(c, "status")), "True");
	if (json_is_boolean(at(obj, "status.ready")))
		return json_is_true(at(obj, "status.ready"));
	return streq(str_at(obj, "status.phase"), "Running");
}

/* "127.0.0.1:30412->8080" per published port (status.hostIP and
 * status.ports), comma-separated; the containerPorts of spec while none is
 * published yet; NULL when the Task has no ports. Owned. */
char *cli_task_ports(json_t *obj)
{
	json_t *ports = at(obj, "status.ports");
	bool published = json_array_size(ports) > 0;
	if (!published)
		ports = at(obj, "spec.ports");
	const char *ip = str_at(obj, "status.hostIP");
	_cleanup_sbuf_ struct sbuf b = SBUF_INIT;
	size_t i;
	json_t *p;
	json_array_foreach(ports, i, p)
	{
		json_int_t c = json_integer_value(json_object_get(p, "containerPort"));
		json_int_t h = json_integer_value(json_object_get(p, "hostPort"));
		bool udp = streq(json_string_value(json_object_get(p, "protocol")), "UDP");
		sbuf_puts(&b, i ? "," : "");
		if (published && h > 0)
			sbuf_printf(&b, "%s:%lld->", ip ? ip : "", (long long)h);
		sbuf_printf(&b, "%lld%s", (long long)c, udp ? "/udp" : "");
	}
	return b.len ? sbuf_take(&b) : NULL;
}

static void task_row(json_t *obj, bool wide, const char **cells, size_t *n, char (*bufs)[64],
                     int64_t now, char **owned)
{
	cells[(*n)++] = task_ready(obj) ? "1/1" : "0/1";
	cells[(*n)++] = cli_task_status(obj);
	fmt_int(bufs[0], 64, at(obj, "status.restartCount"));
	cells[(*n)++] = bufs[0];
	cells[(*n)++] = cli_age(at(obj, "metadata.creationTimestamp"), now, bufs[1], 64);
	if (wide) {
		const char *node = str_at(obj, "spec.nodeName");
		if (!node || !*node)
			node = str_at(obj, "status.nodeName");
		cells[(*n)++] = node && *node ? node : "<none>";
		owned[0] = cli_task_ports(obj);
		cells[(*n)++] = owned[0];
		cells[(*n)++] = str_at(obj, "spec.image");
	}
}

/* ---- Deployment ---- */

static void deploy_row(json_t *obj, bool wide, const char **cells, size_t *n, char (*bufs)[64],
                       int64_t now, struct sbuf *sel)
{
	json_t *want = at(obj, "spec.replicas");
	snprintf(bufs[0], 64, "%lld/%lld",
	         (long long)json_integer_value(at(obj, "status.readyReplicas")),
	         json_is_integer(want) ? (long long)json_integer_value(want) : 1LL);
	cells[(*n)++] = bufs[0];
	fmt_int(bufs[1], 64, at(obj, "status.updatedReplicas"));
	cells[(*n)++] = bufs[1];
	fmt_int(bufs[2], 64, at(obj, "status.availableReplicas"));
	cells[(*n)++] = bufs[2];
	cells[(*n)++] = cli_age(at(obj, "metadata.creationTimestamp"), now, bufs[3], 64);
	if (wide) {
		cells[(*n)++] = str_at(obj, "spec.template.spec.image");
		const char *k;
		json_t *v;
		json_object_foreach(at(obj, "spec.selector.matchLabels"), k, v)
		    sbuf_printf(sel, "%s%s=%s", sel->len ? "," : "", k, json_string_value(v));
		cells[(*n)++] = sel->len ? sel->data : "<none>";
	}
}

/* ---- Node ---- */

static void node_status(json_t *obj, char *buf, size_t len)
{
	json_t *c = condition(obj, "Ready");
	const char *st = json_string_value(json_object_get(c, "status"));
	const char *s = streq(st, "True") ? "Ready" : streq(st, "False") ? "NotReady" : "Unknown";
	snprintf(buf, len, "%s%s", s,
	         json_is_true(at(obj, "spec.unschedulable")) ? ",SchedulingDisabled" : "");
}

static void node_row(json_t *obj, bool wide, const char **cells, size_t *n, char (*bufs)[64],
                     int64_t now, char **owned)
{
	node_status(obj, bufs[0], 64);
	cells[(*n)++] = bufs[0];
	cells[(*n)++] = cli_age(at(obj, "metadata.creationTimestamp"), now, bufs[1], 64);
	cells[(*n)++] = str_at(obj, "status.nodeInfo.keelVersion");
	if (!wide)
		return;
	int64_t cpu = 0, mem = 0;
	json_t *cap = at(obj, "status.capacity");
	if (api_quantity_cpu(json_object_get(cap, "cpu"), &cpu, NULL) == 0)
		owned[0] = cli_fmt_cpu(cpu);
	if (api_quantity_memory(json_object_get(cap, "memory"), &mem, NULL) == 0)
		owned[1] = cli_fmt_mem(mem);
	cells[(*n)++] = owned[0];
	cells[(*n)++] = owned[1];
	cells[(*n)++] = str_at(obj, "status.nodeInfo.runtime");
	cells[(*n)++] = str_at(obj, "status.address");
}

/* ---- Namespace, Event ---- */

static void ns_row(json_t *obj, const char **cells, size_t *n, char (*bufs)[64], int64_t now)
{
	const char *phase = str_at(obj, "status.phase");
	if (at(obj, "metadata.deletionTimestamp"))
		phase = "Terminating";
	cells[(*n)++] = phase ? phase : "Active";
	cells[(*n)++] = cli_age(at(obj, "metadata.creationTimestamp"), now, bufs[0], 64);
}

static json_t *event_time(json_t *obj)
{
	static const char *const fields[] = {"lastTimestamp", "eventTime", "firstTimestamp"};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		json_t *t = json_object_get(obj, fields[i]);
		if (json_is_string(t))
			return t;
	}
	return at(obj, "metadata.creationTimestamp");
}

static void event_row(json_t *obj, const char **cells, size_t *n, char (*bufs)[64], int64_t now,
                      char **owned)
{
	cells[(*n)++] = cli_age(event_time(obj), now, bufs[0], 64);
	cells[(*n)++] = str_at(obj, "type");
	cells[(*n)++] = str_at(obj, "reason");
	const char *kind = str_at(obj, "involvedObject.kind");
	const struct api_kind *k = api_kind_by_kind(kind);
	const char *name = str_at(obj, "involvedObject.name");
	owned[0] = xasprintf("%s/%s", k ? k->singular : kind ? kind : "", name ? name : "");
	cells[(*n)++] = owned[0];
	cells[(*n)++] = str_at(obj, "message");
}

/* ---- Lease ---- */

/* HOLDER, DURATION, RENEWED (ago), STATUS: Held, Expired (renewTime +
 * duration has passed, by this machine's clock) or Released (no holder). */
static void lease_row(json_t *obj, bool wide, const char **cells, size_t *n, char bufs[][64],
                      int64_t now)
{
	const char *holder = str_at(obj, "spec.holderIdentity");
	json_t *d = at(obj, "spec.leaseDurationSeconds");
	int64_t renew = time_parse_rfc3339(str_at(obj, "spec.renewTime"));
	cells[(*n)++] = holder && *holder ? holder : "<none>";
	snprintf(bufs[0], 64, "%llds", (long long)json_integer_value(d));
	cells[(*n)++] = bufs[0];
	cells[(*n)++] = cli_age(at(obj, "spec.renewTime"), now, bufs[1], 64);
	cells[(*n)++] = !holder || !*holder                                 ? "Released"
	                : renew >= 0 && now < renew + json_integer_value(d) ? "Held"
	                                                                    : "Expired";
	if (wide) {
		cells[(*n)++] = cli_age(at(obj, "spec.acquireTime"), now, bufs[2], 64);
		fmt_int(bufs[3], 64, at(obj, "spec.leaseTransitions"));
		cells[(*n)++] = bufs[3];
	}
}

struct cli_table *cli_print_table_new(const struct api_kind *k, bool wide, bool ns_col)
{
	const char *h[MAXCOLS];
	size_t n = 0;
	if (ns_col)
		h[n++] = "NAMESPACE";
	const char *kind = k ? k->kind : "";
	if (streq(kind, "Event")) {
		static const char *const cols[] = {"LAST SEEN", "TYPE", "REASON", "OBJECT",
		                                   "MESSAGE"};
		for (size_t i = 0; i < ARRAY_SIZE(cols); i++)
			h[n++] = cols[i];
	} else {
		h[n++] = "NAME";
	}
	if (streq(kind, "Task")) {
		h[n++] = "READY", h[n++] = "STATUS", h[n++] = "RESTARTS", h[n++] = "AGE";
		if (wide)
			h[n++] = "NODE", h[n++] = "PORTS", h[n++] = "IMAGE";
	} else if (streq(kind, "Deployment")) {
		h[n++] = "READY", h[n++] = "UP-TO-DATE", h[n++] = "AVAILABLE", h[n++] = "AGE";
		if (wide)
			h[n++] = "IMAGE", h[n++] = "SELECTOR";
	} else if (streq(kind, "Node")) {
		h[n++] = "STATUS", h[n++] = "AGE", h[n++] = "VERSION";
		if (wide)
			h[n++] = "CPU", h[n++] = "MEMORY", h[n++] = "RUNTIME", h[n++] = "ADDRESS";
	} else if (streq(kind, "Namespace")) {
		h[n++] = "STATUS", h[n++] = "AGE";
	} else if (streq(kind, "Lease")) {
		h[n++] = "HOLDER", h[n++] = "DURATION", h[n++] = "RENEWED", h[n++] = "STATUS";
		if (wide)
			h[n++] = "ACQUIRED", h[n++] = "TRANSITIONS";
	} else if (!streq(kind, "Event")) {
		h[n++] = "AGE";
	}
	struct cli_table *t = cli_table_new(n);
	cli_table_add(t, h);
	return t;
}

void cli_print_row(const struct api_kind *k, json_t *obj, bool wide, bool ns_col, int64_t now,
                   struct cli_table *t)
{
	const char *cells[MAXCOLS] = {0};
	char bufs[4][64];
	char *owned[2] = {NULL, NULL};
	_cleanup_sbuf_ struct sbuf sel = SBUF_INIT;
	size_t n = 0;
	const char *kind = k ? k->kind : "";
	if (ns_col)
		cells[n++] = str_at(obj, "metadata.namespace");
	if (!streq(kind, "Event"))
		cells[n++] = str_at(obj, "metadata.name");
	if (streq(kind, "Task"))
		task_row(obj, wide, cells, &n, bufs, now, owned);
	else if (streq(kind, "Deployment"))
		deploy_row(obj, wide, cells, &n, bufs, now, &sel);
	else if (streq(kind, "Node"))
		node_row(obj, wide, cells, &n, bufs, now, owned);
	else if (streq(kind, "Namespace"))
		ns_row(obj, cells, &n, bufs, now);
	else if (streq(kind, "Event"))
		event_row(obj, cells, &n, bufs, now, owned);
	else if (streq(kind, "Lease"))
		lease_row(obj, wide, cells, &n, bufs, now);
	else
		cells[n++] = cli_age(at(obj, "metadata.creationTimestamp"), now, bufs[0], 64);
	cli_table_add(t, cells);
	free(owned[0]);
	free(owned[1]);
}
