/*
 * manifests/yaml_emit — JSON values to block-style YAML, as `kubectl get -o
 * yaml` writes it: two-space indentation, sequences under a key not indented
 * further ("containers:\n- name: web"), "{}" and "[]" for empty collections.
 *
 * The one hard requirement is that reading the text back (with our parser,
 * and as far as possible with a YAML 1.1 reader such as kubectl's) gives the
 * same value. So a string is written plain only when it is unmistakably a
 * string: not null/bool/number-like in either YAML version, no indicator
 * first, no ": " or " #", no leading or trailing space, printable. Otherwise
 * it is double-quoted with escapes, except multi-line text, which is written
 * as a "|" literal block when that is exact (no trailing spaces, no special
 * line breaks). Reals use the shortest of %.15g..%.17g that reads back
 * bit-exact, always with a "." so no reader takes them for integers. We
 * write the text ourselves rather than through libyaml's emitter to get
 * kubectl's layout and our own (stricter) quoting rules.
 */
#include "manifests/yaml.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/util.h"
#include "manifests/yaml_scalar.h"

#define MAX_SIMPLE_KEY 1000 /* libyaml: an implicit key spans at most 1024 characters */

enum style { PLAIN, DOUBLE, LITERAL };

/* Decodes one UTF-8 character at s[i..n); returns its length (1 for an
 * invalid byte, with *cp = -1). */
static size_t utf8_next(const unsigned char *s, size_t n, size_t i, long *cp)
{
	unsigned char c = s[i];
	size_t len = c < 0x80             ? 1
	             : (c & 0xE0) == 0xC0 ? 2
	             : (c & 0xF0) == 0xE0 ? 3
	             : (c & 0xF8) == 0xF0 ? 4
	                                  : 0;
	if (len == 0 || i + len > n) {
		*cp = -1;
		return 1;
	}
	long v = len == 1 ? c : c & (0x7F >> len);
	for (size_t k = 1; k < len; k++) {
		if ((s[i + k] & 0xC0) != 0x80) {
			*cp = -1;
			return 1;
		}
		v = (v << 6) | (s[i + k] & 0x3F);
	}
	*cp = v;
	return len;
}

/* Characters that must be escaped: not printable in YAML's sense, or a
 * line break other than \n, or the BOM. Tab too: it is trimmed or folded
 * at the edges of plain and literal text. */
static bool needs_escape(long cp)
{
	if (cp < 0)
		return true;
	if (cp < 0x20)
		return cp != '\n';
	return (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF ||
	       (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF || cp > 0x10FFFF;
}

static bool plain_ok(const char *s, size_t n)
{
	if (n == 0 || yaml_scalar_is_ambiguous(s, n) || strchr("-?:,[]{}#&*!|>'\"%@`", s[0]))
		return false;
	if (s[0] == ' ' || s[n - 1] == ' ' || s[n - 1] == ':')
		return false;
	if (n >= 3 && (memcmp(s, "...", 3) == 0 || memcmp(s, "---", 3) == 0))
		return false;
	for (size_t i = 0; i + 1 < n; i++)
		if ((s[i] == ':' && s[i + 1] == ' ') || (s[i] == ' ' && s[i + 1] == '#'))
			return false;
	return true;
}

static enum style choose_style(const char *s, size_t n, bool key)
{
	const unsigned char *u = (const unsigned char *)s;
	bool newline = false;
	for (size_t i = 0; i < n;) {
		long cp;
		i += utf8_next(u, n, i, &cp);
		if (needs_escape(cp))
			return DOUBLE;
		newline |= cp == '\n';
	}
	if (!newline)
		return plain_ok(s, n) ? PLAIN : DOUBLE;
	if (key || s[0] == ' ' || s[0] == '\n')
		return DOUBLE;
	for (size_t i = 0; i < n; i++)
		if (s[i] == ' ' && (i + 1 == n || s[i + 1] == '\n'))
			return DOUBLE; /* trailing spaces are invisible, and editors strip them */
	return LITERAL;
}

static void put_double(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	sbuf_putc(b, '"');
	for (size_t i = 0; i < n;) {
		long cp;
		size_t len = utf8_next(u, n, i, &cp);
		const char *esc = NULL;
		switch (cp) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\0':
			esc = "\\0";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case 0x85:
			esc = "\\N";
			break;
		case 0x2028:
			esc = "\\L";
			break;
		case 0x2029:
			esc = "\\P";
			break;
		default:
			break;
		}
		if (esc)
			sbuf_puts(b, esc);
		else if (cp < 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
			sbuf_printf(b, "\\x%02X", cp < 0 ? u[i] : (unsigned)cp);
		else if (needs_escape(cp))
			sbuf_printf(b, "\\u%04lX", cp);
		else
			sbuf_append(b, s + i, len);
		i += len;
	}
	sbuf_putc(b, '"');
}

static void put_indent(struct sbuf *b, size_t indent)
{
	for (size_t i = 0; i < indent; i++)
		sbuf_putc(b, ' ');
}

/* "|" block; the header goes where the scalar would, lines at indent. */
static void put_literal(struct sbuf *b, const char *s, size_t n, size_t indent)
{
	size_t trailing = 0;
	while (trailing < n && s[n - 1 - trailing] == '\n')
		trailing++;
	sbuf_puts(b, trailing == 0 ? "|-\n" : trailing == 1 ? "|\n" : "|+\n");
	for (size_t start = 0; start < n;) {
		const char *nl = memchr(s + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - s) : n;
		if (end > start) {
			put_indent(b, indent);
			sbuf_append(b, s + start, end - start);
		}
		sbuf_putc(b, '\n');
		start = end + 1;
	}
}

static void put_real(struct sbuf *b, double d)
{
	char buf[64];
	locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	locale_t old = c ? uselocale(c) : (locale_t)0;
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (c) {
		uselocale(old);
		freelocale(c);
	}
	char *e = strpbrk(buf, "eE");
	if (!strchr(buf, '.')) { /* 1000 -> 1000.0, 1e+20 -> 1.0e+20: a real to every reader */
		size_t at = e ? (size_t)(e - buf) : strlen(buf);
		sbuf_append(b, buf, at);
		sbuf_puts(b, ".0");
		sbuf_puts(b, buf + at);
		return;
	}
	sbuf_puts(b, buf);
}

/* A scalar or an empty collection, then the line end. indent is where a
 * literal block's lines go. */
static void put_scalar(struct sbuf *b, json_t *v, size_t indent)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		sbuf_puts(b, "{}");
		break;
	case JSON_ARRAY:
		sbuf_puts(b, "[]");
		break;
	case JSON_INTEGER:
		sbuf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		put_real(b, json_real_value(v));
		break;
	case JSON_TRUE:
		sbuf_puts(b, "true");
		break;
	case JSON_FALSE:
		sbuf_puts(b, "false");
		break;
	case JSON_NULL:
		sbuf_puts(b, "null");
		break;
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		switch (choose_style(s, n, false)) {
		case PLAIN:
			sbuf_append(b, s, n);
			break;
		case DOUBLE:
			put_double(b, s, n);
			break;
		case LITERAL:
			put_literal(b, s, n, indent);
			return;
		}
		break;
	}
	}
	sbuf_putc(b, '\n');
}

static bool is_block(json_t *v)
{
	return (json_is_object(v) && json_object_size(v) > 0) ||
	       (json_is_array(v) && json_array_size(v) > 0);
}

static void put_seq(struct sbuf *b, json_t *a, size_t indent, bool inline_first);

static void put_map(struct sbuf *b, json_t *o, size_t indent, bool inline_first)
{
	const char *k;
	size_t klen;
	json_t *v;
	bool first = true;
	json_object_keylen_foreach(o, k, klen, v)
	{
		if (!(first && inline_first))
			put_indent(b, indent);
		first = false;
		struct sbuf key = SBUF_INIT;
		if (choose_style(k, klen, true) == PLAIN)
			sbuf_append(&key, k, klen);
		else
			put_double(&key, k, klen);
		bool explicit_key = key.len > MAX_SIMPLE_KEY;
		if (explicit_key) {
			sbuf_puts(b, "? ");
			sbuf_append(b, key.data, key.len);
			sbuf_putc(b, '\n');
			put_indent(b, indent);
		} else {
			sbuf_append(b, key.data, key.len);
		}
		sbuf_free(&key);
		sbuf_putc(b, ':');
		if (json_is_object(v) && is_block(v)) {
			sbuf_putc(b, '\n');
			put_map(b, v, indent + 2, false);
		} else if (is_block(v)) {
			sbuf_putc(b, '\n');
			put_seq(b, v, explicit_key ? indent + 2 : indent, false);
		} else {
			sbuf_putc(b, ' ');
			put_scalar(b, v, indent + 2);
		}
	}
}

static void put_seq(struct sbuf *b, json_t *a, size_t indent, bool inline_first)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (!(i == 0 && inline_first))
			put_indent(b, indent);
		sbuf_puts(b, "- ");
		if (json_is_object(v) && is_block(v))
			put_map(b, v, indent + 2, true);
		else if (is_block(v))
			put_seq(b, v, indent + 2, true);
		else
			put_scalar(b, v, indent + 2);
	}
}

char *yaml_emit(json_t *value)
{
	struct sbuf b = SBUF_INIT;
	if (!value)
		sbuf_puts(&b, "null\n");
	else if (json_is_object(value) && is_block(value))
		put_map(&b, value, 0, false);
	else if (is_block(value))
		put_seq(&b, value, 0, false);
	else
		put_scalar(&b, value, 2);
	return sbuf_take(&b);
}
