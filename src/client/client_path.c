/*
 * client_path: URL paths and query strings of the keel API, as pure string
 * functions so that they can be tested without a server. Namespaced kinds
 * live under /namespaces/NS/; a namespaced collection without a namespace
 * is the all-namespaces list (kubectl -A).
 */
#include "client/client.h"

#include <stdio.h>

#include "common/sbuf.h"
#include "common/util.h"

static bool unreserved(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

char *client_escape(const char *s)
{
	struct sbuf b = SBUF_INIT;
	sbuf_puts(&b, "");
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (unreserved(*p))
			sbuf_putc(&b, (char)*p);
		else
			sbuf_printf(&b, "%%%02X", *p);
	}
	return sbuf_take(&b);
}

static void put_segment(struct sbuf *b, const char *seg)
{
	_cleanup_free_ char *e = client_escape(seg);
	sbuf_putc(b, '/');
	sbuf_puts(b, e);
}

char *client_path(const struct api_kind *k, const char *ns, const char *name, const char *sub)
{
	struct sbuf b = SBUF_INIT;
	sbuf_puts(&b, "/apis/" API_GROUP_VERSION);
	if (k->namespaced && ns && *ns) {
		put_segment(&b, "namespaces");
		put_segment(&b, ns);
	}
	put_segment(&b, k->plural);
	if (name && *name) {
		put_segment(&b, name);
		if (sub && *sub)
			put_segment(&b, sub);
	}
	return sbuf_take(&b);
}

static void put_param(struct sbuf *b, const char *key, const char *value)
{
	_cleanup_free_ char *e = client_escape(value);
	sbuf_putc(b, b->len == 0 ? '?' : '&');
	sbuf_printf(b, "%s=%s", key, e);
}

char *client_query_encode(const struct client_query *q)
{
	struct sbuf b = SBUF_INIT;
	sbuf_puts(&b, "");
	if (!q)
		return sbuf_take(&b);
	char num[32];
	if (q->watch)
		put_param(&b, "watch", "1");
	if (q->label_selector && *q->label_selector)
		put_param(&b, "labelSelector", q->label_selector);
	if (q->field_selector && *q->field_selector)
		put_param(&b, "fieldSelector", q->field_selector);
	if (q->limit > 0) {
		snprintf(num, sizeof(num), "%ld", q->limit);
		put_param(&b, "limit", num);
	}
	if (q->continue_token && *q->continue_token)
		put_param(&b, "continue", q->continue_token);
	if (q->resource_version && *q->resource_version)
		put_param(&b, "resourceVersion", q->resource_version);
	if (q->timeout_seconds > 0) {
		snprintf(num, sizeof(num), "%ld", q->timeout_seconds);
		put_param(&b, "timeoutSeconds", num);
	}
	if (q->dry_run)
		put_param(&b, "dryRun", "All");
	if (q->field_manager && *q->field_manager)
		put_param(&b, "fieldManager", q->field_manager);
	if (q->propagation && *q->propagation)
		put_param(&b, "propagationPolicy", q->propagation);
	return sbuf_take(&b);
}
