/*
 * api/selector — label selectors and field selectors, parsed once and
 * matched many times. Pure; a parsed selector is immutable and may be shared
 * between threads.
 *
 * Label selector syntax (Kubernetes'): comma-separated requirements
 *   key=value  key==value  key!=value  key in (a,b)  key notin (a,b)  key  !key
 * "!=" and "notin" match objects that lack the key. The empty selector
 * matches everything.
 *
 * Field selector syntax: comma-separated `path=value`, `path==value`,
 * `path!=value`, where path is a dotted field path ("spec.nodeName",
 * "status.phase", "metadata.name", "metadata.namespace"); an absent field
 * compares as the empty string.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

struct kerr;
struct api_selector;
struct api_fieldsel;

/* Returns 0 and an owned selector, or -EINVAL naming the offending part. */
int api_selector_parse(const char *s, struct api_selector **out, struct kerr *err);
/* From a LabelSelector object (NULL or JSON null: the empty selector, which
 * matches everything; unknown fields are an error) {"matchLabels": {..}, "matchExpressions":
 * [{"key","operator": In|NotIn|Exists|DoesNotExist, "values": [..]}]}. */
int api_selector_from_json(json_t *label_selector, struct api_selector **out, struct kerr *err);
/* labels: a JSON object of string values (borrowed), or NULL for none. */
bool api_selector_match(const struct api_selector *sel, json_t *labels);
bool api_selector_empty(const struct api_selector *sel);
/* The selector in query-string syntax ("app=web,tier in (a,b)"), which
 * api_selector_parse() reads back to an equivalent selector. Owned. */
char *api_selector_format(const struct api_selector *sel);
void api_selector_free(struct api_selector *sel);

int api_fieldsel_parse(const char *s, struct api_fieldsel **out, struct kerr *err);
/* obj: a whole object (borrowed). */
bool api_fieldsel_match(const struct api_fieldsel *sel, json_t *obj);
/* If sel is exactly the one requirement `path=value` (or `path==value`),
 * returns value (borrowed from sel) — lets the server use an index for
 * spec.nodeName. Else NULL. */
const char *api_fieldsel_equals(const struct api_fieldsel *sel, const char *path);
void api_fieldsel_free(struct api_fieldsel *sel);
