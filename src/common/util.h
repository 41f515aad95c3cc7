/*
 * util — allocation that aborts on out-of-memory, cleanup attributes in the
 * systemd style, and small string/time helpers shared by every library.
 */
#pragma once

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Out of memory is not a recoverable condition in keel: these abort. */
void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0), returns_nonnull));

/* Cleanup attributes (jansson provides json_decrefp). Declare and initialise together:
 *   _cleanup_free_ char *s = xstrdup("x");
 *   _cleanup_json_ json_t *o = json_object();
 * and hand ownership over with TAKE_PTR(s). */
static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_json_ _cleanup_(json_decrefp)
#define _cleanup_close_ _cleanup_(closep)

#define TAKE_PTR(p)                        \
	({                                     \
		__typeof__(p) _take_tmp_ = (p);    \
		(p) = NULL;                        \
		_take_tmp_;                        \
	})
#define TAKE_FD(fd)                 \
	({                              \
		int _take_fd_ = (fd);       \
		(fd) = -1;                  \
		_take_fd_;                  \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline bool streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }
static inline bool strstartswith(const char *s, const char *prefix)
{
	return s && prefix && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Levenshtein distance, for "did you mean" hints. */
size_t str_edit_distance(const char *a, const char *b);

/* Of candidates[0..n), the one closest to word by edit distance, or NULL if
 * none is close enough to be a plausible typo; failing that, the only
 * candidate that word (4 characters or more) is the start of.
 * Borrowed from candidates. */
const char *str_closest(const char *word, const char *const *candidates, size_t n);

/* Wall clock as RFC 3339 UTC with second precision ("2026-12-03T08:53:58Z"),
 * written into buf (at least 32 bytes). Returns buf. */
char *time_rfc3339(char *buf, size_t len, int64_t unix_seconds);
int64_t time_now_unix(void);
/* Parses RFC 3339 UTC ("...Z"); returns -1 on bad input. */
int64_t time_parse_rfc3339(const char *s);
/* CLOCK_MONOTONIC in milliseconds / nanoseconds. */
int64_t time_mono_ms(void);
int64_t time_mono_ns(void);
/* Human age like kubectl's AGE column: "5s", "3m", "2h", "4d". */
char *time_age(char *buf, size_t len, int64_t seconds);

/* Is every address host resolves to a loopback one (127.0.0.0/8, ::1,
 * ::ffff:127.0.0.0/104)? "0.0.0.0", "::", "" and names that resolve to
 * any other address are not. A name that does not resolve is reported as
 * loopback: the listener's bind then fails with the resolver's message.
 * The rule of plain HTTP on loopback only: the API server's --listen
 * (server/tls.c) and the agent's --log-listen (agent/agent_opts.c). */
bool host_is_loopback(const char *host);

/* Reads a whole file (or stdin for "-") up to max bytes. Returns 0, -errno.
 * *out is NUL-terminated and owned by the caller. */
struct kerr;
int file_read_all(const char *path, size_t max, char **out, size_t *len, struct kerr *err);
/* The same from an open fd (path names it in messages). Past max bytes it
 * fails with -E2BIG, *len (when given) holding the bytes read by then. */
int fd_read_all(int fd, const char *path, size_t max, char **out, size_t *len, struct kerr *err);
/* Writes data to path atomically (temp file, fsync, rename) with mode. */
int file_write_atomic(const char *path, const void *data, size_t len, int mode, struct kerr *err);

/* A holder identity kept in a file: the file's content when it holds one
 * (1-200 bytes, trailing blanks dropped), else a new HOST-RANDOM (host: the
 * caller's, or gethostname() when NULL; 12 hex digits of getrandom) written
 * to path (0600, atomically; its directory must exist). *out
 * (owned) is always set; returns 0, or -errno with err filled when a new
 * identity could not be kept (the caller warns: its next run gets another).
 * Lease holders (agents' node leases, the controllers' leader leases) use it
 * so that a process restarted with the same directory is the same holder;
 * that is safe only where one live process at a time uses the directory. */
int identity_load(const char *path, const char *host, char **out, struct kerr *err);
