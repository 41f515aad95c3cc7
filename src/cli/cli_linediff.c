/*
 * cli_linediff: a unified line diff, for `keel diff`. The objects compared
 * are a few hundred lines of YAML at most, so the classic LCS table is fast
 * enough and simple to check; the common prefix and suffix are cut off
 * first, so a one-field change in a long object costs next to nothing.
 * Output follows `diff -u`: "---"/"+++" labels, "@@ -A,N +B,M @@" hunks
 * with three lines of context, hunks closer than that merged.
 */
#include "cli/cli_internal.h"

#include <stdint.h>

#include "common/util.h"

#define CONTEXT 3
/* Past this many table cells the middle is shown as removed-then-added. */
#define MAX_CELLS (8u * 1024 * 1024)

struct lines {
	const char **v; /* start of each line */
	size_t *len;    /* its length without '\n' */
	size_t n;
};

static void split_lines(const char *s, struct lines *l)
{
	size_t cap = 16;
	l->v = xcalloc(cap, sizeof(*l->v));
	l->len = xcalloc(cap, sizeof(*l->len));
	l->n = 0;
	for (const char *p = s; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (l->n == cap) {
			cap *= 2;
			l->v = xrealloc(l->v, cap * sizeof(*l->v));
			l->len = xrealloc(l->len, cap * sizeof(*l->len));
		}
		l->v[l->n] = p;
		l->len[l->n++] = len;
		p += len + (nl ? 1 : 0);
	}
}

static bool line_eq(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
	return a->len[i] == b->len[j] && memcmp(a->v[i], b->v[j], a->len[i]) == 0;
}

struct op {
	char kind; /* ' ', '-', '+' */
	size_t ai, bi;
};

struct ops {
	struct op *v;
	size_t n, cap;
};

static void op_push(struct ops *o, char kind, size_t ai, size_t bi)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->v = xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	o->v[o->n++] = (struct op){kind, ai, bi};
}

/* The edit script of a[lo_a..hi_a) against b[lo_b..hi_b). */
static void lcs_middle(const struct lines *a, size_t lo_a, size_t hi_a, const struct lines *b,
                       size_t lo_b, size_t hi_b, struct ops *o)
{
	size_t n = hi_a - lo_a, m = hi_b - lo_b;
	if ((uint64_t)(n + 1) * (m + 1) > MAX_CELLS) {
		for (size_t i = lo_a; i < hi_a; i++)
			op_push(o, '-', i, 0);
		for (size_t j = lo_b; j < hi_b; j++)
			op_push(o, '+', 0, j);
		return;
	}
	size_t w = m + 1;
	uint32_t *dp = xcalloc((n + 1) * w, sizeof(*dp));
	for (size_t i = n; i-- > 0;)
		for (size_t j = m; j-- > 0;)
			dp[i * w + j] =
			    line_eq(a, lo_a + i, b, lo_b + j)
			        ? dp[(i + 1) * w + j + 1] + 1
			        : (dp[(i + 1) * w + j] >= dp[i * w + j + 1] ? dp[(i + 1) * w + j]
			                                                    : dp[i * w + j + 1]);
	size_t i = 0, j = 0;
	while (i < n || j < m) {
		if (i < n && j < m && line_eq(a, lo_a + i, b, lo_b + j)) {
			op_push(o, ' ', lo_a + i++, lo_b + j++);
		} else if (j >= m || (i < n && dp[(i + 1) * w + j] >= dp[i * w + j + 1])) {
			op_push(o, '-', lo_a + i++, 0);
		} else {
			op_push(o, '+', 0, lo_b + j++);
		}
	}
	free(dp);
}

static void edit_script(const struct lines *a, const struct lines *b, struct ops *o)
{
	size_t pre = 0;
	while (pre < a->n && pre < b->n && line_eq(a, pre, b, pre))
		pre++;
	size_t suf = 0;
	while (suf < a->n - pre && suf < b->n - pre &&
	       line_eq(a, a->n - 1 - suf, b, b->n - 1 - suf))
		suf++;
	for (size_t i = 0; i < pre; i++)
		op_push(o, ' ', i, i);
	lcs_middle(a, pre, a->n - suf, b, pre, b->n - suf, o);
	for (size_t k = suf; k > 0; k--)
		op_push(o, ' ', a->n - k, b->n - k);
}

static void put_line(struct sbuf *out, char kind, const struct lines *l, size_t i)
{
	sbuf_putc(out, kind);
	sbuf_append(out, l->v[i], l->len[i]);
	sbuf_putc(out, '\n');
}

/* One hunk over ops[from..to). */
static void put_hunk(struct sbuf *out, const struct ops *o, size_t from, size_t to,
                     const struct lines *a, const struct lines *b)
{
	size_t a_before = 0, b_before = 0, a_len = 0, b_len = 0;
	for (size_t k = 0; k < from; k++) {
		a_before += o->v[k].kind != '+';
		b_before += o->v[k].kind != '-';
	}
	for (size_t k = from; k < to; k++) {
		a_len += o->v[k].kind != '+';
		b_len += o->v[k].kind != '-';
	}
	sbuf_printf(out, "@@ -%zu,%zu +%zu,%zu @@\n", a_len ? a_before + 1 : a_before, a_len,
	            b_len ? b_before + 1 : b_before, b_len);
	for (size_t k = from; k < to; k++) {
		const struct op *p = &o->v[k];
		if (p->kind == '+')
			put_line(out, '+', b, p->bi);
		else
			put_line(out, p->kind, a, p->ai);
	}
}

static void put_hunks(struct sbuf *out, const struct ops *o, const struct lines *a,
                      const struct lines *b)
{
	size_t k = 0;
	while (k < o->n) {
		while (k < o->n && o->v[k].kind == ' ')
			k++;
		if (k == o->n)
			break;
		size_t from = k > CONTEXT ? k - CONTEXT : 0;
		size_t last = k; /* the last changed op of this hunk */
		for (size_t j = k + 1; j < o->n && j <= last + 2 * CONTEXT; j++)
			if (o->v[j].kind != ' ')
				last = j;
		size_t to = last + 1 + CONTEXT < o->n ? last + 1 + CONTEXT : o->n;
		put_hunk(out, o, from, to, a, b);
		k = last + 1;
	}
}

bool cli_diff_text(const char *a, const char *b, const char *la, const char *lb, struct sbuf *out)
{
	if (streq(a ? a : "", b ? b : ""))
		return false;
	struct lines la_ = {0}, lb_ = {0};
	split_lines(a, &la_);
	split_lines(b, &lb_);
	struct ops o = {0};
	edit_script(&la_, &lb_, &o);
	sbuf_printf(out, "--- %s\n+++ %s\n", la, lb);
	put_hunks(out, &o, &la_, &lb_);
	free(o.v);
	free(la_.v);
	free(la_.len);
	free(lb_.v);
	free(lb_.len);
	return true;
}
