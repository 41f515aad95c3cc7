/*
 * api/selector — label and field selectors.
 *
 * A selector is parsed once into a flat array of requirements and matched
 * against many objects (list filtering, watches, informers), so matching
 * does no allocation. The label-selector parser is a small hand-written
 * scanner over Kubernetes' grammar:
 *   selector    ::= requirement ("," requirement)*
 *   requirement ::= "!" key | key | key ("=" | "==" | "!=") value
 *                 | key ("in" | "notin") "(" value ("," value)* ")"
 * with blanks allowed between tokens. Keys and values are checked with the
 * label rules of api/meta.h, and every error quotes the whole selector and
 * names the part that is wrong, since the selector usually came from a
 * command line.
 */
#include "api/selector.h"

#include <errno.h>
#include <stdio.h>

#include "api/meta.h"
#include "common/kerr.h"
#include "common/sbuf.h"
#include "common/util.h"

enum sel_op { OP_EQ, OP_NEQ, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };

struct sel_req {
	char *key;
	enum sel_op op;
	char **values;
	size_t nvalues;
};

struct api_selector {
	struct sel_req *reqs;
	size_t n;
};

/* Field selectors reuse the requirement shape with OP_EQ / OP_NEQ only. */
struct api_fieldsel {
	struct sel_req *reqs;
	size_t n;
};

struct scan {
	const char *in; /* whole input, for messages */
	const char *p;
	struct kerr *err;
};

static void reqs_free(struct sel_req *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(reqs[i].key);
		for (size_t j = 0; j < reqs[i].nvalues; j++)
			free(reqs[i].values[j]);
		free(reqs[i].values);
	}
	free(reqs);
}

void api_selector_free(struct api_selector *sel)
{
	if (!sel)
		return;
	reqs_free(sel->reqs, sel->n);
	free(sel);
}

void api_fieldsel_free(struct api_fieldsel *sel)
{
	if (!sel)
		return;
	reqs_free(sel->reqs, sel->n);
	free(sel);
}

static struct sel_req *add_req(struct sel_req **reqs, size_t *n, const char *key, size_t klen,
                               enum sel_op op)
{
	*reqs = xrealloc(*reqs, (*n + 1) * sizeof **reqs);
	struct sel_req *r = &(*reqs)[(*n)++];
	*r = (struct sel_req){xstrndup(key, klen), op, NULL, 0};
	return r;
}

static void req_add_value(struct sel_req *r, const char *v, size_t len)
{
	r->values = xrealloc(r->values, (r->nvalues + 1) * sizeof *r->values);
	r->values[r->nvalues++] = xstrndup(v, len);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_word_char(char c)
{
	return c && !is_blank(c) && !strchr(",=!()", c);
}

static void skip_blank(struct scan *s)
{
	while (is_blank(*s->p))
		s->p++;
}

/* Reads a word at s->p (after blanks); returns its length (0 if none). */
static size_t read_word(struct scan *s, const char **start)
{
	skip_blank(s);
	*start = s->p;
	while (is_word_char(*s->p))
		s->p++;
	return (size_t)(s->p - *start);
}

static int sel_fail(struct scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sel_fail(struct scan *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = xvasprintf(fmt, ap);
	va_end(ap);
	return kerr_set(s->err, EINVAL, "invalid label selector \"%s\": %s", s->in, m);
}

static int check_key(struct scan *s, const char *k, size_t n)
{
	_cleanup_free_ char *key = xstrndup(k, n);
	if (n == 0)
		return sel_fail(s, "missing label key at offset %zu", (size_t)(k - s->in));
	if (!api_is_label_key(key))
		return sel_fail(
		    s,
		    "invalid label key \"%s\": must be [prefix/]name, name at most 63 "
		    "characters of letters, digits, '-', '_' or '.', beginning and ending "
		    "with a letter or digit",
		    key);
	return 0;
}

static int check_value(struct scan *s, const char *v, size_t n)
{
	_cleanup_free_ char *val = xstrndup(v, n);
	if (!api_is_label_value(val))
		return sel_fail(
		    s,
		    "invalid label value \"%s\": must be empty or at most 63 characters of "
		    "letters, digits, '-', '_' or '.', beginning and ending with a letter or digit",
		    val);
	return 0;
}

/* "(" value ("," value)* ")" */
static int parse_set(struct scan *s, struct sel_req *r)
{
	skip_blank(s);
	if (*s->p != '(')
		return sel_fail(s, "expected '(' after \"%s %s\"", r->key,
		                r->op == OP_IN ? "in" : "notin");
	s->p++;
	for (;;) {
		const char *v;
		size_t n = read_word(s, &v);
		if (n == 0 && r->nvalues == 0 && *s->p == ')')
			return sel_fail(s, "\"%s %s ()\": the set of values must not be empty",
			                r->key, r->op == OP_IN ? "in" : "notin");
		if (check_value(s, v, n) < 0)
			return -EINVAL;
		req_add_value(r, v, n);
		skip_blank(s);
		if (*s->p == ',') {
			s->p++;
			continue;
		}
		if (*s->p == ')') {
			s->p++;
			return 0;
		}
		if (!*s->p)
			return sel_fail(s, "missing ')'");
		return sel_fail(s, "unexpected '%c' in the values of \"%s\"", *s->p, r->key);
	}
}

/* After the key: an operator and its operand, or nothing (exists). */
static int parse_op(struct scan *s, struct sel_req **reqs, size_t *n, const char *key, size_t klen)
{
	skip_blank(s);
	const char *p = s->p;
	enum sel_op op;
	if (*p == '\0' || *p == ',') {
		add_req(reqs, n, key, klen, OP_EXISTS);
		return 0;
	}
	if (p[0] == '=' && p[1] == '=')
		op = OP_EQ, s->p += 2;
	else if (p[0] == '=')
		op = OP_EQ, s->p += 1;
	else if (p[0] == '!' && p[1] == '=')
		op = OP_NEQ, s->p += 2;
	else {
		const char *w;
		size_t wl = read_word(s, &w);
		if (wl == 2 && strncmp(w, "in", 2) == 0)
			op = OP_IN;
		else if (wl == 5 && strncmp(w, "notin", 5) == 0)
			op = OP_NOTIN;
		else if (wl > 0)
			return sel_fail(
			    s,
			    "expected =, ==, !=, in, notin or ',' after \"%.*s\", found \"%.*s\"",
			    (int)klen, key, (int)wl, w);
		else
			return sel_fail(s, "unexpected '%c' after \"%.*s\"", *s->p, (int)klen, key);
		struct sel_req *r = add_req(reqs, n, key, klen, op);
		return parse_set(s, r);
	}
	const char *v;
	size_t vl = read_word(s, &v);
	if (*s->p && *s->p != ',' && !is_blank(*s->p))
		return sel_fail(s, "unexpected '%c' in the value of \"%.*s\"", *s->p, (int)klen,
		                key);
	if (check_value(s, v, vl) < 0)
		return -EINVAL;
	struct sel_req *r = add_req(reqs, n, key, klen, op);
	req_add_value(r, v, vl);
	return 0;
}

static int parse_requirement(struct scan *s, struct sel_req **reqs, size_t *n)
{
	skip_blank(s);
	bool negate = false;
	if (*s->p == '!') {
		negate = true;
		s->p++;
	}
	const char *k;
	size_t kl = read_word(s, &k);
	if (kl == 0) {
		if (!*s->p || *s->p == ',')
			return sel_fail(s, "missing label key%s",
			                *s->p == ',' ? " before ','" : " at the end");
		return sel_fail(s, "unexpected '%c' where a label key belongs", *s->p);
	}
	if (check_key(s, k, kl) < 0)
		return -EINVAL;
	if (negate) {
		add_req(reqs, n, k, kl, OP_NOTEXISTS);
		skip_blank(s);
		if (*s->p && *s->p != ',')
			return sel_fail(s, "\"!%.*s\" takes no operator or value", (int)kl, k);
		return 0;
	}
	return parse_op(s, reqs, n, k, kl);
}

int api_selector_parse(const char *str, struct api_selector **out, struct kerr *err)
{
	struct scan s = {str ? str : "", str ? str : "", err};
	struct sel_req *reqs = NULL;
	size_t n = 0;
	skip_blank(&s);
	while (*s.p) {
		if (parse_requirement(&s, &reqs, &n) < 0) {
			reqs_free(reqs, n);
			return -EINVAL;
		}
		skip_blank(&s);
		if (*s.p && *s.p != ',') {
			reqs_free(reqs, n);
			return sel_fail(&s, "expected ',' before \"%s\"", s.p);
		}
		if (*s.p == ',') {
			s.p++;
			skip_blank(&s);
			if (!*s.p) {
				reqs_free(reqs, n);
				return sel_fail(&s, "trailing ','");
			}
		}
	}
	struct api_selector *sel = xmalloc(sizeof *sel);
	sel->reqs = reqs;
	sel->n = n;
	*out = sel;
	return 0;
}

static const char *expr_op_names[] = {"In", "NotIn", "Exists", "DoesNotExist"};

static int lsel_fail(struct kerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lsel_fail(struct kerr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = xvasprintf(fmt, ap);
	va_end(ap);
	return kerr_set(err, EINVAL, "invalid selector: %s", m);
}

static int from_match_labels(json_t *ml, struct sel_req **reqs, size_t *n, struct kerr *err)
{
	if (!ml || json_is_null(ml))
		return 0;
	if (!json_is_object(ml))
		return lsel_fail(err, "matchLabels must be an object of label keys to values");
	const char *k;
	json_t *v;
	json_object_foreach(ml, k, v)
	{
		if (!api_is_label_key(k))
			return lsel_fail(err, "matchLabels: invalid label key \"%s\"", k);
		if (!json_is_string(v) || !api_is_label_value(json_string_value(v)))
			return lsel_fail(
			    err, "matchLabels[%s]: must be a valid label value (a string)", k);
		struct sel_req *r = add_req(reqs, n, k, strlen(k), OP_EQ);
		req_add_value(r, json_string_value(v), strlen(json_string_value(v)));
	}
	return 0;
}

static int from_expression(json_t *e, size_t i, struct sel_req **reqs, size_t *n, struct kerr *err)
{
	if (!json_is_object(e))
		return lsel_fail(err, "matchExpressions[%zu] must be an object", i);
	const char *k;
	json_t *v;
	json_object_foreach(
	    e, k,
	    v) if (!streq(k, "key") && !streq(k, "operator") &&
	           !streq(k, "values")) return lsel_fail(err,
	                                                 "matchExpressions[%zu].%s: unknown field",
	                                                 i, k);
	const char *key = json_string_value(json_object_get(e, "key"));
	const char *op = json_string_value(json_object_get(e, "operator"));
	json_t *vals = json_object_get(e, "values");
	if (!key || !api_is_label_key(key))
		return lsel_fail(err, "matchExpressions[%zu].key: must be a valid label key", i);
	int o = -1;
	for (int j = 0; op && j < 4; j++)
		if (streq(op, expr_op_names[j]))
			o = j;
	if (o < 0)
		return lsel_fail(
		    err,
		    "matchExpressions[%zu].operator: must be In, NotIn, Exists or DoesNotExist", i);
	size_t nv = json_is_array(vals) ? json_array_size(vals) : 0;
	if (vals && !json_is_null(vals) && !json_is_array(vals))
		return lsel_fail(err, "matchExpressions[%zu].values: must be an array of strings",
		                 i);
	if (o <= 1 && nv == 0)
		return lsel_fail(err, "matchExpressions[%zu].values: must be non-empty for %s", i,
		                 op);
	if (o >= 2 && nv > 0)
		return lsel_fail(err, "matchExpressions[%zu].values: must be empty for %s", i, op);
	static const enum sel_op map[] = {OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS};
	struct sel_req *r = add_req(reqs, n, key, strlen(key), map[o]);
	for (size_t j = 0; j < nv; j++) {
		const char *s = json_string_value(json_array_get(vals, j));
		if (!s || !api_is_label_value(s))
			return lsel_fail(
			    err, "matchExpressions[%zu].values[%zu]: must be a valid label value",
			    i, j);
		req_add_value(r, s, strlen(s));
	}
	return 0;
}

int api_selector_from_json(json_t *ls, struct api_selector **out, struct kerr *err)
{
	struct sel_req *reqs = NULL;
	size_t n = 0;
	int r = 0;
	if (ls && !json_is_null(ls) && !json_is_object(ls))
		return lsel_fail(err, "must be an object with matchLabels and/or matchExpressions");
	const char *k;
	json_t *v;
	json_object_foreach(
	    ls, k,
	    v) if (!streq(k, "matchLabels") &&
	           !streq(k, "matchExpressions")) return lsel_fail(err,
	                                                           "%s: unknown field (known: "
	                                                           "matchLabels, matchExpressions)",
	                                                           k);
	r = from_match_labels(json_object_get(ls, "matchLabels"), &reqs, &n, err);
	json_t *me = json_object_get(ls, "matchExpressions");
	if (r == 0 && me && !json_is_null(me) && !json_is_array(me))
		r = lsel_fail(err, "matchExpressions must be an array");
	for (size_t i = 0; r == 0 && i < json_array_size(me); i++)
		r = from_expression(json_array_get(me, i), i, &reqs, &n, err);
	if (r < 0) {
		reqs_free(reqs, n);
		return r;
	}
	struct api_selector *sel = xmalloc(sizeof *sel);
	sel->reqs = reqs;
	sel->n = n;
	*out = sel;
	return 0;
}

static bool in_values(const struct sel_req *r, const char *v)
{
	for (size_t i = 0; i < r->nvalues; i++)
		if (streq(r->values[i], v))
			return true;
	return false;
}

static bool req_match(const struct sel_req *r, const char *v)
{
	switch (r->op) {
	case OP_EQ:
		return v && streq(v, r->values[0]);
	case OP_NEQ:
		return !v || !streq(v, r->values[0]);
	case OP_IN:
		return v && in_values(r, v);
	case OP_NOTIN:
		return !v || !in_values(r, v);
	case OP_EXISTS:
		return v != NULL;
	case OP_NOTEXISTS:
		return v == NULL;
	}
	return false;
}

bool api_selector_match(const struct api_selector *sel, json_t *labels)
{
	if (!sel)
		return true;
	for (size_t i = 0; i < sel->n; i++) {
		/* A non-string label value is malformed; treat it as absent. */
		const char *v = json_string_value(json_object_get(labels, sel->reqs[i].key));
		if (!req_match(&sel->reqs[i], v))
			return false;
	}
	return true;
}

bool api_selector_empty(const struct api_selector *sel)
{
	return !sel || sel->n == 0;
}

char *api_selector_format(const struct api_selector *sel)
{
	struct sbuf b = SBUF_INIT;
	for (size_t i = 0; sel && i < sel->n; i++) {
		const struct sel_req *r = &sel->reqs[i];
		if (i)
			sbuf_putc(&b, ',');
		switch (r->op) {
		case OP_EQ:
		case OP_NEQ:
			sbuf_printf(&b, "%s%s%s", r->key,
			            r->op == OP_EQ ? "=" : "!=", r->values[0]);
			break;
		case OP_IN:
		case OP_NOTIN:
			sbuf_printf(&b, "%s %s (", r->key, r->op == OP_IN ? "in" : "notin");
			for (size_t j = 0; j < r->nvalues; j++)
				sbuf_printf(&b, "%s%s", j ? "," : "", r->values[j]);
			sbuf_putc(&b, ')');
			break;
		case OP_EXISTS:
			sbuf_puts(&b, r->key);
			break;
		case OP_NOTEXISTS:
			sbuf_printf(&b, "!%s", r->key);
			break;
		}
	}
	return sbuf_take(&b);
}

/* ---- field selectors ---- */

static char *trim_dup(const char *s, size_t n)
{
	while (n && is_blank(*s))
		s++, n--;
	while (n && is_blank(s[n - 1]))
		n--;
	return xstrndup(s, n);
}

static int fs_fail(const char *in, struct kerr *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fs_fail(const char *in, struct kerr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = xvasprintf(fmt, ap);
	va_end(ap);
	return kerr_set(err, EINVAL, "invalid field selector \"%s\": %s", in, m);
}

static int fs_term(const char *in, const char *t, size_t len, struct sel_req **reqs, size_t *n,
                   struct kerr *err)
{
	_cleanup_free_ char *term = trim_dup(t, len);
	char *eq = strchr(term, '=');
	if (!*term)
		return fs_fail(in, err, "empty requirement");
	if (!eq)
		return fs_fail(in, err, "\"%s\": expected path=value, path==value or path!=value",
		               term);
	enum sel_op op = OP_EQ;
	char *kend = eq;
	char *val = eq + 1;
	if (eq > term && eq[-1] == '!') {
		op = OP_NEQ;
		kend = eq - 1;
	} else if (*val == '=') {
		val++;
	}
	_cleanup_free_ char *key = trim_dup(term, (size_t)(kend - term));
	_cleanup_free_ char *v = trim_dup(val, strlen(val));
	if (!*key)
		return fs_fail(in, err, "\"%s\": missing field path", term);
	for (const char *p = key; *p; p++)
		if (is_blank(*p) || *p == '!' || *p == '(' || *p == ')')
			return fs_fail(in, err, "invalid field path \"%s\"", key);
	if (strpbrk(v, "=!"))
		return fs_fail(in, err, "\"%s\": a value may not contain '=' or '!'", term);
	struct sel_req *r = add_req(reqs, n, key, strlen(key), op);
	req_add_value(r, v, strlen(v));
	return 0;
}

int api_fieldsel_parse(const char *s, struct api_fieldsel **out, struct kerr *err)
{
	const char *in = s ? s : "";
	struct sel_req *reqs = NULL;
	size_t n = 0;
	const char *p = in;
	while (*p && is_blank(*p))
		p++;
	while (*p) {
		size_t len = strcspn(p, ",");
		if (fs_term(in, p, len, &reqs, &n, err) < 0) {
			reqs_free(reqs, n);
			return -EINVAL;
		}
		p += len;
		if (*p == ',' && !*++p) {
			reqs_free(reqs, n);
			return fs_fail(in, err, "trailing ','");
		}
	}
	struct api_fieldsel *sel = xmalloc(sizeof *sel);
	sel->reqs = reqs;
	sel->n = n;
	*out = sel;
	return 0;
}

/* The field as a string for comparison: "" when absent or null, decimal
 * for numbers, true/false for booleans; NULL for objects and arrays. */
static const char *field_string(json_t *v, char *buf, size_t len)
{
	if (!v || json_is_null(v))
		return "";
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	if (json_is_real(v)) {
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	}
	return NULL;
}

bool api_fieldsel_match(const struct api_fieldsel *sel, json_t *obj)
{
	for (size_t i = 0; sel && i < sel->n; i++) {
		const struct sel_req *r = &sel->reqs[i];
		char buf[64];
		const char *v = field_string(api_obj_get_path(obj, r->key), buf, sizeof buf);
		bool eq = v && streq(v, r->values[0]);
		if (eq != (r->op == OP_EQ))
			return false;
	}
	return true;
}

const char *api_fieldsel_equals(const struct api_fieldsel *sel, const char *path)
{
	if (!sel || sel->n != 1 || sel->reqs[0].op != OP_EQ || !streq(sel->reqs[0].key, path))
		return NULL;
	return sel->reqs[0].values[0];
}
