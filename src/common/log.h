/*
 * log — one line per event on stderr, as text or JSON (--log-format=json).
 * Library code does not log (STYLE.md); the HTTP handler, controller loops
 * and main do. Thread-safe: each line is written with a single write(2).
 */
#pragma once

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void log_set_json(bool json);
/* Parses "debug|info|warn|error"; returns -1 on a bad name. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
