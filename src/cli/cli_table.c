/*
 * cli_table: kubectl-style tables. Every column is as wide as its widest
 * cell, columns are three spaces apart, and the last column is not padded
 * (so lines carry no trailing blanks). Widths are measured in bytes, which
 * is right for the ASCII names and quantities keel prints; a UTF-8 message
 * only ever sits in the last column.
 */
#include "cli/cli_internal.h"

#include "common/util.h"

#define COL_GAP 3

struct cli_table *cli_table_new(size_t ncols)
{
	struct cli_table *t = xcalloc(1, sizeof(*t));
	t->ncols = ncols ? ncols : 1;
	t->widths = xcalloc(t->ncols, sizeof(*t->widths));
	return t;
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->widths);
	free(t);
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = xrealloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
	}
	for (size_t c = 0; c < t->ncols; c++) {
		const char *v = cells[c] ? cells[c] : "<none>";
		/* A newline would break the row; tabs would break alignment. */
		char *copy = xstrdup(v);
		for (char *p = copy; *p; p++)
			if (*p == '\n' || *p == '\t' || *p == '\r')
				*p = ' ';
		t->cells[t->nrows * t->ncols + c] = copy;
	}
	t->nrows++;
}

static void grow_widths(struct cli_table *t, size_t row)
{
	for (size_t c = 0; c < t->ncols; c++) {
		size_t w = strlen(t->cells[row * t->ncols + c]);
		if (w > t->widths[c])
			t->widths[c] = w;
	}
}

static void put_row(const struct cli_table *t, size_t row, struct sbuf *out)
{
	for (size_t c = 0; c < t->ncols; c++) {
		const char *cell = t->cells[row * t->ncols + c];
		sbuf_puts(out, cell);
		if (c + 1 < t->ncols) {
			size_t pad = t->widths[c] - strlen(cell) + COL_GAP;
			for (size_t i = 0; i < pad; i++)
				sbuf_putc(out, ' ');
		}
	}
	sbuf_putc(out, '\n');
}

void cli_table_render(struct cli_table *t, struct sbuf *out)
{
	for (size_t r = 0; r < t->nrows; r++)
		grow_widths(t, r);
	for (size_t r = 0; r < t->nrows; r++)
		put_row(t, r, out);
}

void cli_table_render_row(struct cli_table *t, size_t row, struct sbuf *out)
{
	if (row >= t->nrows)
		return;
	grow_widths(t, row);
	put_row(t, row, out);
}
