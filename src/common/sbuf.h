/*
 * sbuf — a growable byte string, for HTTP bodies, tables and YAML output.
 * Always NUL-terminated; `data` is owned by the sbuf until sbuf_take().
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

struct sbuf {
	char *data;
	size_t len;
	size_t cap;
};

#define SBUF_INIT {NULL, 0, 0}

void sbuf_append(struct sbuf *b, const char *data, size_t len);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_putc(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_vprintf(struct sbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Returns the owned string (never NULL) and resets b. */
char *sbuf_take(struct sbuf *b);
void sbuf_reset(struct sbuf *b);
void sbuf_free(struct sbuf *b);
#define _cleanup_sbuf_ __attribute__((cleanup(sbuf_free)))
