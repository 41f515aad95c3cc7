/*
 * manifests/yaml_scalar — what a plain YAML scalar means.
 *
 * keel reads manifests by the YAML 1.2 core schema (only true/false are
 * booleans; 0755 is decimal; 0o755 octal), but most manifests are written
 * for kubectl, whose YAML 1.1 reader turns `yes`, `on`, `0755` or `1:30`
 * into booleans and numbers. Resolution and the 1.1 check live together here
 * because the parser needs both (to build values and to warn) and the
 * emitter needs their union (to quote any string either reader would
 * mistake). The patterns are hand-written scanners over (pointer, length):
 * scalars may hold NUL bytes, and regex.h would allocate per call.
 */
#include "manifests/yaml_scalar.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "common/util.h"

enum kind { K_STR, K_NULL, K_TRUE, K_FALSE, K_DEC, K_OCT, K_HEX, K_FLOAT, K_INF, K_NAN };

static bool eq(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(s, word, n) == 0;
}

static bool eq3(const char *s, size_t n, const char *a, const char *b, const char *c)
{
	return eq(s, n, a) || eq(s, n, b) || eq(s, n, c);
}

static size_t span(const char *s, size_t n, size_t i, const char *set)
{
	size_t j = i;
	while (j < n && s[j] && strchr(set, s[j]))
		j++;
	return j - i;
}

#define DIGITS    "0123456789"
#define OCTDIGITS "01234567"
#define HEXDIGITS "0123456789abcdefABCDEF"

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool match_float(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	size_t d1 = span(s, n, i, DIGITS);
	i += d1;
	if (i < n && s[i] == '.') {
		i++;
		size_t d2 = span(s, n, i, DIGITS);
		i += d2;
		if (d1 == 0 && d2 == 0)
			return false;
	} else if (d1 == 0) {
		return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		size_t d3 = span(s, n, i, DIGITS);
		if (d3 == 0)
			return false;
		i += d3;
	}
	return i == n;
}

static bool match_dec(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	return n > i && span(s, n, i, DIGITS) == n - i;
}

static enum kind classify(const char *s, size_t n)
{
	if (n == 0 || eq3(s, n, "null", "Null", "NULL") || eq(s, n, "~"))
		return K_NULL;
	if (eq3(s, n, "true", "True", "TRUE"))
		return K_TRUE;
	if (eq3(s, n, "false", "False", "FALSE"))
		return K_FALSE;
	if (match_dec(s, n))
		return K_DEC;
	if (n > 2 && s[0] == '0' && s[1] == 'o' && span(s, n, 2, OCTDIGITS) == n - 2)
		return K_OCT;
	if (n > 2 && s[0] == '0' && s[1] == 'x' && span(s, n, 2, HEXDIGITS) == n - 2)
		return K_HEX;
	if (match_float(s, n))
		return K_FLOAT;
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	if (eq3(s + i, n - i, ".inf", ".Inf", ".INF"))
		return K_INF;
	if (eq3(s, n, ".nan", ".NaN", ".NAN"))
		return K_NAN;
	return K_STR;
}

/* Digits in base from s[i..n) into *v; false on int64 overflow. */
static bool parse_digits(const char *s, size_t n, size_t i, int base, bool neg, int64_t *v)
{
	uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		int d = isdigit((unsigned char)s[i]) ? s[i] - '0'
		                                     : tolower((unsigned char)s[i]) - 'a' + 10;
		if (acc > (limit - (uint64_t)d) / (uint64_t)base)
			return false;
		acc = acc * (uint64_t)base + (uint64_t)d;
	}
	*v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return true;
}

/* strtod in the C locale, whatever the process's LC_NUMERIC says. */
static double c_strtod(const char *s, size_t n, bool *range)
{
	_cleanup_free_ char *z = xstrndup(s, n);
	locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	errno = 0;
	double d = c ? strtod_l(z, NULL, c) : strtod(z, NULL);
	*range = errno == ERANGE && isinf(d);
	if (c)
		freelocale(c);
	return d;
}

static int build(enum kind k, const char *s, size_t n, json_t **out, const char **why)
{
	int64_t v = 0;
	bool range = false, neg = n > 0 && s[0] == '-';
	size_t sign = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	switch (k) {
	case K_NULL:
		*out = json_null();
		return 0;
	case K_TRUE:
		*out = json_true();
		return 0;
	case K_FALSE:
		*out = json_false();
		return 0;
	case K_DEC:
		range = !parse_digits(s, n, sign, 10, neg, &v);
		break;
	case K_OCT:
		range = !parse_digits(s, n, 2, 8, false, &v);
		break;
	case K_HEX:
		range = !parse_digits(s, n, 2, 16, false, &v);
		break;
	case K_FLOAT: {
		double d = c_strtod(s, n, &range);
		if (range) {
			*why = "is out of range for a 64-bit float";
			return -ERANGE;
		}
		*out = json_real(d);
		return 0;
	}
	case K_INF:
	case K_NAN:
		*why = "is a float JSON cannot represent (infinity or NaN)";
		return -EDOM;
	case K_STR: {
		json_t *str = json_stringn(s, n);
		if (!str) {
			*why = "is not valid UTF-8";
			return -EINVAL;
		}
		*out = str;
		return 0;
	}
	}
	if (range) {
		*why = "is out of range for a 64-bit integer";
		return -ERANGE;
	}
	*out = json_integer(v);
	return 0;
}

int yaml_scalar_resolve(const char *s, size_t n, json_t **out, const char **why)
{
	return build(classify(s, n), s, n, out, why);
}

int yaml_scalar_resolve_tagged(const char *tag, const char *s, size_t n, json_t **out,
                               const char **why)
{
	enum kind k = classify(s, n);
	if (streq(tag, "str"))
		return build(K_STR, s, n, out, why);
	if (streq(tag, "null") && k == K_NULL)
		return build(k, s, n, out, why);
	if (streq(tag, "bool") && (k == K_TRUE || k == K_FALSE))
		return build(k, s, n, out, why);
	if (streq(tag, "int") && (k == K_DEC || k == K_OCT || k == K_HEX))
		return build(k, s, n, out, why);
	if (streq(tag, "float") && (k == K_DEC || k == K_FLOAT || k == K_INF || k == K_NAN))
		return build(k == K_DEC ? K_FLOAT : k, s, n, out, why);
	*why = streq(tag, "null")    ? "is not a valid !!null (null, Null, NULL, ~ or empty)"
	       : streq(tag, "bool")  ? "is not a valid !!bool (true or false)"
	       : streq(tag, "int")   ? "is not a valid !!int (decimal, 0o octal or 0x hex)"
	       : streq(tag, "float") ? "is not a valid !!float"
	                             : "does not fit its tag";
	return -EINVAL;
}

static bool is_bool_11(const char *s, size_t n)
{
	static const char *const words[] = {"y", "yes", "n", "no", "on", "off"};
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (n == strlen(words[i]) && strncasecmp(s, words[i], n) == 0)
			return true;
	return false;
}

/* [-+]?0[0-7]+ whose octal value differs from its decimal one. */
static bool is_octal_11(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	if (n < i + 2 || s[i] != '0' || span(s, n, i, OCTDIGITS) != n - i)
		return false;
	size_t zeros = span(s, n, i, "0");
	return n - i - zeros >= 2; /* 01 and 007 mean the same in both */
}

/* YAML 1.1 base 60: [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?, the
 * integer form without a leading 0. Computes the value into *v. */
static bool is_sexagesimal_11(const char *s, size_t n, double *v)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0, parts = 0;
	size_t first = span(s, n, i, DIGITS "_");
	if (first == 0 || !isdigit((unsigned char)s[i]))
		return false;
	double acc = 0;
	for (size_t j = i; j < i + first; j++)
		if (s[j] != '_')
			acc = acc * 10 + (s[j] - '0');
	bool lead0 = s[i] == '0';
	for (i += first; i < n && s[i] == ':'; parts++) {
		size_t d = span(s, n, ++i, DIGITS);
		if (d == 0 || d > 2 || (d == 2 && s[i] > '5'))
			return false;
		acc = acc * 60 + (d == 2 ? (s[i] - '0') * 10 + (s[i + 1] - '0') : s[i] - '0');
		i += d;
	}
	if (parts == 0)
		return false;
	if (i < n && s[i] == '.') {
		size_t frac = span(s, n, i + 1, DIGITS "_");
		if (i + 1 + frac != n)
			return false;
		_cleanup_free_ char *f = xstrndup(s + i, n - i);
		size_t w = 1;
		for (size_t r = 1; f[r]; r++)
			if (f[r] != '_')
				f[w++] = f[r];
		f[w] = '\0';
		bool range;
		acc += w > 1 ? c_strtod(f, w, &range) : 0;
	} else if (i != n || lead0) {
		return false;
	}
	*v = s[0] == '-' ? -acc : acc;
	return true;
}

static char *fmt_number(double v)
{
	char buf[64];
	locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	locale_t old = c ? uselocale(c) : (locale_t)0;
	snprintf(buf, sizeof buf, "%.15g", v);
	if (c) {
		uselocale(old);
		freelocale(c);
	}
	return xstrdup(buf);
}

char *yaml_scalar_warning_11(const char *s, size_t n)
{
	if (memchr(s, '\0', n))
		return NULL;
	double v;
	if (is_bool_11(s, n))
		return xasprintf(
		    "\"%.*s\" is a string in YAML 1.2 but a boolean in YAML 1.1 (kubectl); "
		    "quote it, or write true/false",
		    (int)n, s);
	if (is_octal_11(s, n)) {
		bool neg = s[0] == '-';
		size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
		int64_t dec = 0, oct = 0;
		if (!parse_digits(s, n, i, 10, neg, &dec) || !parse_digits(s, n, i, 8, neg, &oct))
			return NULL;
		if (neg)
			return xasprintf("%.*s is the decimal %" PRId64
			                 " in YAML 1.2 but octal in YAML 1.1 "
			                 "(%" PRId64 "); write %" PRId64 " if you mean that",
			                 (int)n, s, dec, oct, oct);
		size_t z = i + span(s, n, i, "0");
		return xasprintf("%.*s is the decimal %" PRId64
		                 " in YAML 1.2 but octal in YAML 1.1; "
		                 "write 0o%.*s for octal",
		                 (int)n, s, dec, (int)(n - z), s + z);
	}
	if (is_sexagesimal_11(s, n, &v)) {
		_cleanup_free_ char *num = fmt_number(v);
		return xasprintf(
		    "%.*s is a string in YAML 1.2 but the number %s in YAML 1.1; quote it", (int)n,
		    s, num);
	}
	return NULL;
}

/* Starts like a number ([-+]?\.?[0-9]) and uses only characters numbers of
 * some YAML version are made of: 1_000, 0b101, 1:30, 1e3, 0x1F, 1.2.3. */
static bool looks_numeric(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i < n && s[i] == '.')
		i++;
	if (i >= n || !isdigit((unsigned char)s[i]))
		return false;
	return span(s, n, 0, DIGITS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.:+-") ==
	       n;
}

bool yaml_scalar_is_ambiguous(const char *s, size_t n)
{
	if (classify(s, n) != K_STR || looks_numeric(s, n) || is_bool_11(s, n))
		return true;
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	if (n - i == 4 && s[i] == '.' &&
	    (strncasecmp(s + i, ".inf", 4) == 0 || strncasecmp(s + i, ".nan", 4) == 0))
		return true;
	return eq(s, n, "<<") || eq(s, n, "=");
}
