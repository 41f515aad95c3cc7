/*
 * api/meta — names, label rules, field paths and envelope accessors.
 *
 * The name and label rules are Kubernetes' own (IsDNS1123Label,
 * IsDNS1123Subdomain, IsQualifiedName, IsValidLabelValue), written out as
 * small scanners rather than regexes: they run on every object the server
 * sees and must never allocate. Field paths use dots for identifier keys and
 * brackets for the rest, so "metadata.labels[app.kubernetes.io/name]" stays
 * unambiguous and can be looked up again by api_obj_get_path().
 */
#include "api/meta.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "common/util.h"

static bool is_ident_key(const char *k)
{
	if (!k || !(isalpha((unsigned char)*k) || *k == '_'))
		return false;
	for (const char *p = k + 1; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-'))
			return false;
	return true;
}

char *api_path_key(const char *parent, const char *key)
{
	bool root = !parent || !*parent;
	if (is_ident_key(key))
		return root ? xstrdup(key) : xasprintf("%s.%s", parent, key);
	return xasprintf("%s[%s]", root ? "" : parent, key ? key : "");
}

char *api_path_index(const char *parent, size_t index)
{
	return xasprintf("%s[%zu]", parent ? parent : "", index);
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One DNS-1123 label of s[0..n) without the length limit. */
static bool dns_label_n(const char *s, size_t n)
{
	if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool api_is_dns1123_label(const char *s)
{
	if (!s)
		return false;
	size_t n = strlen(s);
	return n <= 63 && dns_label_n(s, n);
}

static bool dns_subdomain_n(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!dns_label_n(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

bool api_is_dns1123_subdomain(const char *s)
{
	return s && dns_subdomain_n(s, strlen(s));
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])? of at most 63 characters. */
static bool label_name_n(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

bool api_is_label_key(const char *s)
{
	if (!s)
		return false;
	const char *slash = strchr(s, '/');
	if (!slash)
		return label_name_n(s, strlen(s));
	if (strchr(slash + 1, '/'))
		return false;
	return dns_subdomain_n(s, (size_t)(slash - s)) &&
	       label_name_n(slash + 1, strlen(slash + 1));
}

bool api_is_label_value(const char *s)
{
	if (!s)
		return false;
	size_t n = strlen(s);
	return n == 0 || label_name_n(s, n);
}

json_t *api_obj_meta(json_t *obj)
{
	json_t *m = json_object_get(obj, "metadata");
	return json_is_object(m) ? m : NULL;
}

static const char *meta_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(api_obj_meta(obj), key));
}

const char *api_obj_name(json_t *obj)
{
	return meta_str(obj, "name");
}

const char *api_obj_namespace(json_t *obj)
{
	return meta_str(obj, "namespace");
}

const char *api_obj_kind(json_t *obj)
{
	return json_string_value(json_object_get(obj, "kind"));
}

const char *api_obj_uid(json_t *obj)
{
	return meta_str(obj, "uid");
}

json_t *api_obj_labels(json_t *obj)
{
	json_t *l = json_object_get(api_obj_meta(obj), "labels");
	return json_is_object(l) ? l : NULL;
}

uint64_t api_obj_rv(json_t *obj)
{
	const char *s = meta_str(obj, "resourceVersion");
	if (!s || !*s || *s < '0' || *s > '9')
		return 0;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return 0;
	return (uint64_t)v;
}

int64_t api_obj_generation(json_t *obj)
{
	json_t *g = json_object_get(api_obj_meta(obj), "generation");
	return json_is_integer(g) ? (int64_t)json_integer_value(g) : 0;
}

/* Steps from cur by one segment s[0..n): an object key, or an array index. */
static json_t *path_step(json_t *cur, const char *s, size_t n)
{
	if (json_is_object(cur)) {
		char key[256];
		if (n >= sizeof key)
			return NULL;
		memcpy(key, s, n);
		key[n] = '\0';
		return json_object_get(cur, key);
	}
	if (json_is_array(cur) && n > 0 && n < 10) {
		size_t idx = 0;
		for (size_t i = 0; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return NULL;
			idx = idx * 10 + (size_t)(s[i] - '0');
		}
		return json_array_get(cur, idx);
	}
	return NULL;
}

json_t *api_obj_get_path(json_t *obj, const char *dotted)
{
	if (!obj || !dotted || !*dotted)
		return NULL;
	json_t *cur = obj;
	const char *p = dotted;
	while (*p && cur) {
		if (*p == '[') {
			const char *close = strchr(p, ']');
			if (!close)
				return NULL;
			cur = path_step(cur, p + 1, (size_t)(close - p - 1));
			p = close + 1;
		} else {
			size_t n = strcspn(p, ".[");
			if (n == 0)
				return NULL;
			cur = path_step(cur, p, n);
			p += n;
		}
		if (*p == '.') {
			p++;
			if (!*p)
				return NULL;
		}
	}
	return cur;
}
